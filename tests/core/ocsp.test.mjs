// ocsp.test.mjs - OCSP stapling on a listener with "ssl" (ssl_stapling_file,
// nginx's directive): the test runs `openssl ocsp` as the CA's responder on
// a loopback port, fetches each certificate's response from it into a file
// as a cron job would, and `openssl s_client -status` must see the stapled
// response (TLS 1.3 and 1.2); a client that does not ask gets none; a
// certificate listed with '-' has none; a response for another
// certificate or a file that is no OCSP response is refused by `sluice -t`;
// a reload reads the file again.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';

import { startSluice, runSluice, freePort, tmpDir, waitFor, PLUGINS_DIR, slow } from './helpers.mjs';
import { makePki, indexLine } from './tls-certs.mjs';

let pki, dir, responder, respPort, gw, tlsPort;
let respLog = () => '';

function run(cmd, args, input = '') {
    return new Promise((resolve) => {
        const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '', err = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { err += d; });
        const t = setTimeout(() => p.kill('SIGKILL'), 15000);
        p.on('close', (code) => { clearTimeout(t); resolve({ code, out: out + err }); });
        p.stdin.end(input);
    });
}

// Ask the responder for cert's status; the DER response lands in `out`.
async function fetchResponse(cert, out) {
    const r = await run('openssl', ['ocsp', '-issuer', pki.ca, '-cert', cert, '-url', `http://127.0.0.1:${respPort}`,
        '-respout', out, '-CAfile', pki.ca]);
    assert.equal(r.code, 0, `${r.out}\nresponder: ${respLog()}`);
    return r.out;
}

const sclient = (args) => run('openssl', ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-servername', 'localhost',
    '-CAfile', pki.ca, ...args], 'Q\n').then((r) => r.out);

before(async () => {
    dir = tmpDir('sluice-ocsp-');
    pki = makePki(path.join(dir, 'pki'), [
        { name: 'a', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' },
        { name: 'b', cn: 'localhost', san: 'DNS:localhost', ec: true },
        { name: 'r', cn: 'revoked.test', san: 'DNS:revoked.test' },
    ]);
    const cadir = path.join(dir, 'pki');
    fs.writeFileSync(path.join(cadir, 'index.txt'),
        indexLine(pki.a.cert) + indexLine(pki.b.cert) + indexLine(pki.r.cert, 'R'));
    fs.writeFileSync(path.join(cadir, 'index.txt.attr'), 'unique_subject = no\n'); // a and b share a name
    responder = spawn('openssl', ['ocsp', '-index', 'index.txt', '-port', '0', '-rsigner', 'ca.pem', '-rkey', 'ca.key',
        '-CA', 'ca.pem'], { cwd: cadir, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    responder.stdout.on('data', (d) => { log += d; });
    responder.stderr.on('data', (d) => { log += d; });
    respLog = () => log;
    responder.on('exit', (c, sig) => { log += `[exit ${c} ${sig}]`; });
    respPort = await waitFor(() => Number((/ACCEPT .*:(\d+)/.exec(log) ?? [])[1]) || 0, 10000);
    assert.ok(respPort, `the responder did not start: ${log}`);
    assert.match(await fetchResponse(pki.a.cert, path.join(dir, 'a.der')), /: good/);
    assert.match(await fetchResponse(pki.b.cert, path.join(dir, 'b.der')), /: good/);
    assert.match(await fetchResponse(pki.r.cert, path.join(dir, 'r.der')), /: revoked/);
    fs.copyFileSync(path.join(dir, 'a.der'), path.join(dir, 'staple.der'));

    tlsPort = await freePort();
    gw = await startSluice('_format_version: "3.0"\nservices: []\n', {
        workers: 1,
        args: ['-l', `127.0.0.1:${tlsPort} ssl`, '--ssl-cert', `${pki.a.cert},${pki.b.cert}`,
            '--ssl-cert-key', `${pki.a.key},${pki.b.key}`, '--ssl-stapling-file', `${path.join(dir, 'staple.der')},-`],
    });
});

after(async () => {
    await gw?.stop();
    responder?.kill();
});

test('a client asking for the status gets the responder\'s answer stapled, TLS 1.3 and 1.2', async () => {
    for (const v of ['-tls1_3', '-tls1_2']) {
        const out = await sclient([v, '-status', '-sigalgs', 'rsa_pss_rsae_sha256:RSA+SHA256']);
        assert.match(out, /OCSP Response Status: successful/, `${v}: ${out}`);
        assert.match(out, /Cert Status: good/, v);
        assert.match(out, /Verify return code: 0 \(ok\)/, v);
    }
});

test('no staple for a client that does not ask, nor for a certificate listed with "-"', async () => {
    const plain = await sclient(['-tls1_3']);
    assert.doesNotMatch(plain, /OCSP Response Data/);
    assert.match(plain, /Verify return code: 0 \(ok\)/);
    // the ECDSA certificate (second in ssl_cert) has '-'
    const ec = await sclient(['-tls1_3', '-status', '-sigalgs', 'ecdsa_secp256r1_sha256']);
    assert.match(ec, /Server certificate/, ec);
    assert.match(ec, /OCSP response: no response sent/, ec);
});

test('sluice -t refuses a response for another certificate and a file that is no OCSP response', async () => {
    const cfg = path.join(dir, 'empty.yaml');
    fs.writeFileSync(cfg, '_format_version: "3.0"\nservices: []\n');
    const t = (staple) => runSluice(['-t', '-d', cfg, '-l', '127.0.0.1:0 ssl', '--plugins-dir', PLUGINS_DIR,
        '--ssl-cert', pki.a.cert, '--ssl-cert-key', pki.a.key, '--ssl-stapling-file', staple]);
    const other = await t(path.join(dir, 'b.der'));
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /ssl_stapling_file .*b\.der: the response is not for this certificate/);
    const junk = await t(pki.a.cert);
    assert.notEqual(junk.code, 0);
    assert.match(junk.stderr, /ssl_stapling_file .*a\.pem: not a DER OCSP response/);
    const ok = await t(path.join(dir, 'a.der'));
    assert.equal(ok.code, 0, ok.stderr);
});

test('a reload reads the file again: a revoked certificate\'s response is not stapled', async () => {
    // the revoked certificate's response for the same serial would be
    // refused as another certificate's; a revoked status for *this*
    // certificate comes from the responder once its index says so
    const cadir = path.join(dir, 'pki');
    fs.writeFileSync(path.join(cadir, 'index.txt'),
        indexLine(pki.a.cert, 'R') + indexLine(pki.b.cert) + indexLine(pki.r.cert, 'R'));
    responder.kill();
    let log = '';
    responder = spawn('openssl', ['ocsp', '-index', 'index.txt', '-port', '0', '-rsigner', 'ca.pem', '-rkey', 'ca.key',
        '-CA', 'ca.pem'], { cwd: cadir, stdio: ['ignore', 'pipe', 'pipe'] });
    responder.stdout.on('data', (d) => { log += d; });
    responder.stderr.on('data', (d) => { log += d; });
    respPort = await waitFor(() => Number((/ACCEPT .*:(\d+)/.exec(log) ?? [])[1]) || 0, 10000);
    assert.match(await fetchResponse(pki.a.cert, path.join(dir, 'staple.der')), /: revoked/);
    const before = gw.stderr.length;
    await gw.reload();
    assert.ok(await waitFor(() => /certificate status is revoked, not stapled/.test(gw.stderr.slice(before)), 10000),
        gw.stderr.slice(before));
    // the new generation's worker answers without a staple
    assert.ok(await waitFor(async () => /OCSP response: no response sent/.test(
        await sclient(['-tls1_3', '-status', '-sigalgs', 'rsa_pss_rsae_sha256'])), slow(10000), 200));
});
