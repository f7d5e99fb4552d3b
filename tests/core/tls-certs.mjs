// tls-certs.mjs - a throwaway test CA and server certificates made with the
// openssl command line (req, x509), for the TLS tests.
//
//   const pki = makePki(dir, [{ name: 'a', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' },
//                             { name: 'b', cn: 'x.example.test', san: 'DNS:*.example.test', ec: true }]);
//   pki.ca (path), pki.a.cert, pki.a.key (paths), pki.a.certPem, pki.a.keyPem (text)

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
        fs.writeFileSync(path.join(dir, ext), `subjectAltName=${s.san}\n`);
        openssl(['x509', '-req', '-in', csr, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
                 '-out', crt, '-days', '2', '-extfile', ext], dir);
        pki[s.name] = {
            cert: path.join(dir, crt), key: path.join(dir, key),
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
