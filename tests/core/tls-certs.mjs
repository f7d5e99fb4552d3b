// tls-certs.mjs - a throwaway test CA and server certificates made with the
// openssl command line (req, x509), for the TLS tests.
//
//   const pki = makePki(dir, [{ name: 'a', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' },
//                             { name: 'b', cn: 'x.example.test', san: 'DNS:*.example.test', ec: true }]);
//   pki.ca (path), pki.a.cert, pki.a.key (paths), pki.a.certPem, pki.a.keyPem (text),
//   pki.a.chain (the certificate followed by the CA's, as a server presents it)
// A server entry with `ocsp: URL` names that OCSP responder (Authority
// Information Access).

import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';

function openssl(args, cwd) {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makePki(dir, servers) {
    fs.mkdirSync(dir, { recursive: true });
    openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
             '-days', '2', '-subj', '/CN=sluice test CA'], dir);
    const pki = { ca: path.join(dir, 'ca.pem') };
    for (const s of servers) {
        const key = `${s.name}.key`, csr = `${s.name}.csr`, crt = `${s.name}.pem`, ext = `${s.name}.ext`;
        if (s.ec) {
            openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${s.name}.ec`], dir);
            openssl(['pkcs8', '-topk8', '-nocrypt', '-in', `${s.name}.ec`, '-out', key], dir);
            openssl(['req', '-new', '-key', key, '-out', csr, '-subj', `/CN=${s.cn}`], dir);
        } else {
            openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${s.cn}`], dir);
        }
        fs.writeFileSync(path.join(dir, ext), `subjectAltName=${s.san}\n` +
            (s.ocsp ? `authorityInfoAccess=OCSP;URI:${s.ocsp}\n` : ''));
        openssl(['x509', '-req', '-in', csr, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
                 '-out', crt, '-days', '2', '-extfile', ext], dir);
        fs.writeFileSync(path.join(dir, `${s.name}.chain.pem`),
            fs.readFileSync(path.join(dir, crt), 'utf8') + fs.readFileSync(path.join(dir, 'ca.pem'), 'utf8'));
        pki[s.name] = {
            cert: path.join(dir, crt), key: path.join(dir, key), chain: path.join(dir, `${s.name}.chain.pem`),
            certPem: fs.readFileSync(path.join(dir, crt), 'utf8'),
            keyPem: fs.readFileSync(path.join(dir, key), 'utf8'),
        };
    }
    return pki;
}

// YAML block scalar of a PEM text, indented by `ind` spaces.
export function pemYaml(pem, ind) {
    const pad = ' '.repeat(ind);
    return '|\n' + pem.trim().split('\n').map((l) => pad + l).join('\n') + '\n';
}

// One line of an `openssl ca` index (what `openssl ocsp -index` answers
// from): status V (valid) or R (revoked), expiry, serial, subject.
export function indexLine(cert, status = 'V') {
    const serial = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-serial']).toString().trim().split('=')[1];
    const subj = execFileSync('openssl', ['x509', '-in', cert, '-noout', '-subject', '-nameopt', 'compat'])
        .toString().trim().replace(/^subject=/, '');
    const exp = new Date(Date.now() + 2 * 86400e3).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
    const rev = status === 'R' ? exp.replace(/^\d\d/, (y) => String(Number(y) - 1).padStart(2, '0')) : '';
    return `${status}\t${exp}\t${rev}\t${serial}\tunknown\t${subj}\n`;
}
