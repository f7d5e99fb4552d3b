// ocsp-fetch.test.mjs - OCSP stapling fetched by the gateway (ssl_stapling
// on): `openssl ocsp` is the CA's responder on a loopback port.  The
// responder named in the certificate (AIA) is asked once for the whole node
// (two workers) and every worker staples the answer, and once more by the
// new workers after a reload; with
// ssl_stapling_responder and a responder that is down, the failure is
// logged once, nothing is stapled, and the response appears once the
// responder is up; a later refresh that says "revoked" stops the stapling;
// `sluice -t` explains what it will not staple.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';

import { startSluice, runSluice, freePort, tmpDir, waitFor, sleep, PLUGINS_DIR, slow } from './helpers.mjs';
import { makePki, indexLine, pemYaml } from './tls-certs.mjs';

let pki, dir, cadir, aiaPort, aiaResponder;
const responders = [];
const gws = [];

// `openssl ocsp` answering from the CA's index on `port`; .log() is its
// output (-text prints every request it answers).
async function startResponder(port) {
    const p = spawn('openssl', ['ocsp', '-index', 'index.txt', '-port', String(port), '-rsigner', 'ca.pem',
        '-rkey', 'ca.key', '-CA', 'ca.pem', '-text', '-nmin', '5'], { cwd: cadir, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    p.stdout.on('data', (d) => { log += d; });
    p.stderr.on('data', (d) => { log += d; });
    p.on('exit', (c, sig) => { log += `[exit ${c} ${sig}]`; });
    const r = { proc: p, log: () => log, requests: () => (log.match(/OCSP Request Data:/g) ?? []).length };
    responders.push(r);
    assert.ok(await waitFor(() => /ACCEPT/.test(log) || /exit/.test(log), slow(10000)), log);
    assert.match(log, /ACCEPT/, `the responder did not start: ${log}`);
    return r;
}

function stopResponder(r) {
    return new Promise((resolve) => {
        if (r.proc.exitCode !== null || r.proc.signalCode !== null)
            return resolve();
        r.proc.on('exit', () => resolve());
        r.proc.kill();
    });
}

function run(cmd, args, input = '') {
    return new Promise((resolve) => {
        const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { out += d; });
        const t = setTimeout(() => p.kill('SIGKILL'), 15000);
        p.on('close', () => { clearTimeout(t); resolve(out); });
        p.stdin.end(input);
    });
}

const status = (port) => run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost',
    '-CAfile', pki.ca, '-tls1_3', '-status'], 'Q\n');
const stapled = (out) => /OCSP Response Status: successful/.test(out) && /Cert Status: good/.test(out);

async function gateway(cert, key, extra, workers = 2) {
    const port = await freePort();
    const gw = await startSluice('_format_version: "3.0"\nservices: []\n', {
        workers,
        args: ['-l', `127.0.0.1:${port} ssl`, '--ssl-cert', cert, '--ssl-cert-key', key, '--ssl-stapling', 'on',
            '--log-level', 'debug', ...extra],
    });
    gws.push(gw);
    return { gw, port };
}

before(async () => {
    dir = tmpDir('sluice-ocspf-');
    cadir = path.join(dir, 'pki');
    aiaPort = await freePort();
    pki = makePki(cadir, [
        { name: 'a', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1', ocsp: `http://127.0.0.1:${aiaPort}/` },
        { name: 'n', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' }, // names no responder
    ]);
    fs.writeFileSync(path.join(cadir, 'index.txt'), indexLine(pki.a.cert) + indexLine(pki.n.cert));
    fs.writeFileSync(path.join(cadir, 'index.txt.attr'), 'unique_subject = no\n');
    aiaResponder = await startResponder(aiaPort);
});

after(async () => {
    for (const g of gws)
        await g.stop();
    for (const r of responders)
        await stopResponder(r);
});

test('the certificate\'s responder is asked once for the node, every worker staples the answer', { timeout: slow(60000) }, async () => {
    const resp = aiaResponder;
    const { gw, port } = await gateway(pki.a.chain, pki.a.key, []);
    assert.ok(await waitFor(async () => stapled(await status(port)), slow(20000), 200),
        `never stapled:\n${gw.stderr}\nresponder:\n${resp.log()}`);
    // both workers staple: connections until each has taken some
    const from = gw.stderr.length;
    for (let i = 0; i < 60; i++) {
        const out = await status(port);
        assert.ok(stapled(out), out);
        const workers = new Set(gw.stderr.slice(from).match(/worker \d+(?=: TLS handshake done)/g) ?? []);
        if (workers.size === 2)
            break;
    }
    const workers = new Set(gw.stderr.slice(from).match(/worker \d+(?=: TLS handshake done)/g) ?? []);
    assert.equal(workers.size, 2, 'both workers stapled');
    assert.equal(resp.requests(), 1, `one request for the whole node:\n${resp.log()}`);
    assert.doesNotMatch(gw.stderr, /ssl_stapling: .*not stapled/);

    // a reload: the new generation's workers fetch for themselves, once
    const old = gw.workers();
    await gw.reload();
    assert.ok(await waitFor(() => gw.workers().length === 2 && gw.workers().every((p) => !old.includes(p)), slow(15000)),
        'new workers after the reload');
    assert.ok(await waitFor(async () => stapled(await status(port)), slow(20000), 200), gw.stderr);
    assert.ok(await waitFor(() => resp.requests() >= 2, slow(10000)), resp.log());
    assert.equal(resp.requests(), 2, `one more request for the new generation:\n${resp.log()}`);
});

test('a certificate of the declarative config is stapled too', { timeout: slow(60000) }, async () => {
    const port = await freePort();
    const chainPem = fs.readFileSync(pki.a.chain, 'utf8');
    const gw = await startSluice(`_format_version: "3.0"
certificates:
- id: 7d2c3a10-5b7e-4c41-9a55-0c7c1b0f2e01
  cert: ${pemYaml(chainPem, 4)}  key: ${pemYaml(pki.a.keyPem, 4)}  snis: [localhost]
services: []
`, { workers: 1, args: ['-l', `127.0.0.1:${port} ssl`, '--ssl-stapling', 'on'] });
    gws.push(gw);
    assert.ok(await waitFor(async () => stapled(await status(port)), slow(20000), 200), gw.stderr);
});

test('ssl_stapling_responder: down -> logged once, no staple; up -> stapled; revoked on a refresh -> unstapled', { timeout: slow(60000) }, async () => {
    const rport = await freePort();
    const { gw, port } = await gateway(pki.n.chain, pki.n.key,
        ['--ssl-stapling-responder', `http://127.0.0.1:${rport}/`, '--ssl-stapling-refresh', '1'], 1);
    const warned = /\[warn\] .*ssl_stapling: certificate .*responder http:\/\/127\.0\.0\.1:\d+\/: .*; not stapled until/;
    assert.ok(await waitFor(() => warned.test(gw.stderr), slow(15000)), gw.stderr);
    let out = await status(port);
    assert.match(out, /OCSP response: no response sent/, out);
    await sleep(2500); // a few retries (every second) fail meanwhile, silently
    assert.equal(gw.stderr.split('\n').filter((l) => warned.test(l)).length, 1, `the failure is logged once:\n${gw.stderr}`);

    let resp = await startResponder(rport);
    assert.ok(await waitFor(async () => stapled(await status(port)), slow(20000), 200), `${gw.stderr}\n${resp.log()}`);
    // stored for the workers first, logged after: the line may come later
    assert.ok(await waitFor(() => /ssl_stapling: certificate .* answers again/.test(gw.stderr)), gw.stderr);

    // the CA revokes it: the next refresh is refused and the staple goes
    fs.writeFileSync(path.join(cadir, 'index.txt'), indexLine(pki.a.cert) + indexLine(pki.n.cert, 'R'));
    await stopResponder(resp);
    resp = await startResponder(rport);
    assert.ok(await waitFor(async () => /OCSP response: no response sent/.test(await status(port)), slow(20000), 200),
        gw.stderr);
    // logged even when a refresh failed while the responder restarted
    assert.ok(await waitFor(() => /the certificate is revoked; not stapled until a fetch succeeds/.test(gw.stderr)),
        gw.stderr);
    fs.writeFileSync(path.join(cadir, 'index.txt'), indexLine(pki.a.cert) + indexLine(pki.n.cert));
});

test('sluice -t: no issuer after the certificate, no responder, a responder without ssl_stapling', async () => {
    const cfg = path.join(dir, 'empty.yaml');
    fs.writeFileSync(cfg, '_format_version: "3.0"\nservices: []\n');
    const t = (cert, extra) => runSluice(['-t', '-d', cfg, '-l', '127.0.0.1:0 ssl', '--plugins-dir', PLUGINS_DIR,
        '--ssl-cert', cert, '--ssl-cert-key', cert === pki.n.chain ? pki.n.key : pki.a.key, ...extra]);
    let r = await t(pki.a.cert, ['--ssl-stapling', 'on']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /ssl_stapling: certificate .*CN ?= ?localhost: its issuer is not in the chain after it, not stapled/);
    r = await t(pki.n.chain, ['--ssl-stapling', 'on']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /names no OCSP responder \(set ssl_stapling_responder\), not stapled/);
    r = await t(pki.a.chain, ['--ssl-stapling-responder', 'http://127.0.0.1:1/']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ssl_stapling_responder needs ssl_stapling on/);
    r = await t(pki.a.chain, ['--ssl-stapling', 'maybe']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ssl.stapling: invalid value 'maybe' \(expected on or off\)/);
});
