// tls.test.mjs - client-side TLS: a listener with "ssl" (settings
// certificate + the declarative config's certificates/snis), SNI choosing
// the certificate, TLS versions, ALPN, session resumption with ticket keys
// shared by every worker (and kept across a reload), Kong's route
// protocols/snis/headers matching, X-Forwarded-Proto, and a reload that
// swaps certificates without dropping a kept-alive TLS connection.
// The CA and certificates are made by the test with the openssl CLI.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';

import { startUpstream } from './upstream.mjs';
import { startSluice, request, freePort, tmpDir, waitFor, SLUICE_BIN, slow } from './helpers.mjs';
import { makePki, pemYaml } from './tls-certs.mjs';

let up, gw, pki, tlsPort, dir;

function config({ swap = false } = {}) {
    // b: *.example.test (ECDSA), c: api.other.test (RSA, via a top-level snis entity)
    const wild = swap ? pki.c : pki.b;
    return `_format_version: "3.0"
certificates:
- id: 2b1e3c36-3f0b-4c8e-9d59-5f1d1f0e0b01
  cert: ${pemYaml(wild.certPem, 4)}  key: ${pemYaml(wild.keyPem, 4)}  snis: ["*.example.test"]
- id: 2b1e3c36-3f0b-4c8e-9d59-5f1d1f0e0b02
  cert: ${pemYaml(pki.c.certPem, 4)}  key: ${pemYaml(pki.c.keyPem, 4)}
snis:
- name: api.other.test
  certificate: { id: 2b1e3c36-3f0b-4c8e-9d59-5f1d1f0e0b02 }
- name: "trail.*"
  certificate: { id: 2b1e3c36-3f0b-4c8e-9d59-5f1d1f0e0b02 }
services:
- name: svc
  url: http://127.0.0.1:${up.port}/base
  routes:
  - name: any
    paths: [/any]
  - name: secure
    paths: [/secure]
    protocols: [https]
  - name: redirect
    paths: [/redir]
    protocols: [https]
    https_redirect_status_code: 301
  - name: plain-only
    paths: [/plain-only]
    protocols: [http]
  - name: by-sni
    paths: [/sni]
    protocols: [https]
    snis: [api.other.test]
  - name: no-header
    paths: [/h]
- name: svc2
  url: http://127.0.0.1:${up.port}/two
  routes:
  - name: by-header
    paths: [/h]
    headers: { x-tenant: [blue, green] }
`;
}

before(async () => {
    dir = tmpDir('sluice-tls-');
    pki = makePki(path.join(dir, 'pki'), [
        { name: 'a', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' },
        { name: 'b', cn: 'wild.example.test', san: 'DNS:*.example.test', ec: true },
        { name: 'c', cn: 'api.other.test', san: 'DNS:api.other.test' },
    ]);
    pki.caPem = fs.readFileSync(pki.ca, 'utf8');
    up = await startUpstream();
    tlsPort = await freePort();
    gw = await startSluice(config(), {
        workers: 2,
        args: ['-l', `127.0.0.1:${tlsPort} ssl`, '--ssl-cert', pki.a.cert, '--ssl-cert-key', pki.a.key],
    });
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

// Run a command without blocking this process (the upstream lives here).
function run(cmd, args, input = '') {
    return new Promise((resolve) => {
        const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '', err = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { err += d; });
        const t = setTimeout(() => p.kill('SIGKILL'), 10000);
        p.on('close', (code) => { clearTimeout(t); resolve({ code, out, err }); });
        p.stdin.end(input);
    });
}

const curl = (args) => run('curl', ['-sS', '--max-time', '5', '--cacert', pki.ca, ...args]);

async function sclient(args, input = '') {
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-CAfile', pki.ca, ...args], input);
    return r.out + r.err;
}

// One HTTPS request with node (servername = SNI); resolves { status, headers, text, json() }.
const GET_CLOSE = 'GET /any/r HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

function hget(p, { servername = 'localhost', headers = {}, agent = false } = {}) {
    return new Promise((resolve, reject) => {
        const req = https.request({ host: '127.0.0.1', port: tlsPort, path: p, servername, ca: [pki.caPem],
                                    headers: { host: servername, ...headers }, agent }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text,
                                          json: () => JSON.parse(text), socket: res.socket }));
        });
        req.on('error', reject);
        req.end();
    });
}

test('curl over TLS with the test CA; X-Forwarded-Proto says https (http on the plain listener)', { timeout: slow(15000) }, async () => {
    const r = await curl([`https://localhost:${tlsPort}/any/hello?x=1`]);
    assert.equal(r.code, 0, r.err);
    const e = JSON.parse(r.out);
    assert.equal(e.url, '/base/hello?x=1');
    assert.equal(e.headers['x-forwarded-proto'], 'https');
    assert.equal(e.headers['x-forwarded-port'], String(tlsPort));
    const p = await request(gw.port, { path: '/any/hello' });
    assert.equal(p.json().headers['x-forwarded-proto'], 'http');
});

test('SNI picks the certificate: exact (snis entity), wildcards (certificate.snis, snis entity), default (settings)', { timeout: slow(15000) }, async () => {
    for (const [host, cn] of [['a.example.test', 'wild.example.test'], ['api.other.test', 'api.other.test'],
                              ['localhost', 'localhost'], ['unknown.test', 'localhost'],
                              ['A.Example.TEST', 'wild.example.test'], ['API.other.test', 'api.other.test'],
                              ['trail.anything', 'api.other.test'], ['TRAIL.x', 'api.other.test'],
                              // one label only on either side of a wildcard
                              ['a.b.example.test', 'localhost'], ['x.trail.anything', 'localhost'],
                              ['trail.a.b', 'localhost'], ['example.test', 'localhost']]) {
        const out = await sclient(['-servername', host], '');
        assert.match(out, new RegExp(`subject=CN\\s*=\\s*${cn.replace(/\./g, '\\.')}`), `${host}: ${out.slice(0, 800)}`);
    }
    // and verified by curl, which checks the name against the certificate
    for (const host of ['a.example.test', 'api.other.test']) {
        const r = await curl(['--resolve', `${host}:${tlsPort}:127.0.0.1`, `https://${host}:${tlsPort}/any/x`]);
        assert.equal(r.code, 0, `${host}: ${r.err}`);
    }
});

test('TLS 1.2 and 1.3 only; ALPN http/1.1', { timeout: slow(15000) }, async () => {
    let out = await sclient(['-tls1_1', '-servername', 'localhost']);
    assert.match(out, /Cipher is \(NONE\)/, out.slice(0, 800));   // no session: TLS 1.1 refused
    assert.match(out, /alert protocol version|no protocols available|unsupported protocol|wrong version/i, out.slice(0, 800));
    for (const v of ['1_2', '1_3']) {
        out = await sclient([`-tls${v}`, '-servername', 'localhost', '-alpn', 'http/1.1', '-ign_eof'], GET_CLOSE);
        assert.match(out, new RegExp(`Protocol\\s*:\\s*TLSv${v.replace('_', '\\.')}`), out.slice(0, 800));
        assert.match(out, /ALPN protocol: http\/1\.1/, out.slice(0, 800));
        assert.match(out, /Verify return code: 0 \(ok\)/);
    }
});


async function resumeCheck(v, sess, n) {
    const reused = [];
    for (let i = 0; i < n; i++) {
        const out = await sclient([`-tls${v}`, '-servername', 'localhost', '-sess_in', sess, '-ign_eof'], GET_CLOSE);
        reused.push(/^Reused, /m.test(out));
    }
    return reused;
}

test('session resumption with tickets, across the 2 workers and across a reload (new workers)', { timeout: slow(40000) }, async () => {
    for (const v of ['1_2', '1_3']) {
        const sess = path.join(dir, `sess-${v}.pem`);
        const out = await sclient([`-tls${v}`, '-servername', 'localhost', '-sess_out', sess, '-ign_eof'], GET_CLOSE);
        assert.match(out, /^New, /m, out.slice(0, 800));
        assert.match(out, /HTTP\/1\.1 200/);
        assert.deepEqual(await resumeCheck(v, sess, 6), Array(6).fill(true), `TLSv${v}: every reconnection resumed`);
    }
    // a reload starts workers that never issued the tickets: they still resume
    const before = gw.workers();
    const sess = path.join(dir, 'sess-1_2.pem');
    await gw.reload();
    assert.ok(await waitFor(() => gw.workers().length === 2 && gw.workers().every((p) => !before.includes(p)), slow(10000)),
              'new workers after the reload');
    assert.deepEqual(await resumeCheck('1_2', sess, 3), [true, true, true], 'resumed on a new generation of workers');
});

test("route protocols as Kong: https-only gets 426 or the route's redirect on plain HTTP; http-only is not routed over TLS", { timeout: slow(15000) }, async () => {
    let r = await request(gw.port, { path: '/secure/x' });
    assert.equal(r.status, 426);
    assert.match(r.text, /Please use HTTPS protocol/);
    r = await request(gw.port, { path: '/redir/x?a=1', headers: { host: 'gw.example' } });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://gw.example/redir/x?a=1');
    assert.equal((await hget('/secure/x')).status, 200);
    assert.equal((await hget('/redir/x')).status, 200);
    assert.equal((await request(gw.port, { path: '/plain-only/x' })).status, 200);
    assert.equal((await hget('/plain-only/x')).status, 404);
});

test('route snis and headers matching as Kong', { timeout: slow(15000) }, async () => {
    assert.equal((await hget('/sni/x', { servername: 'api.other.test' })).status, 200);
    assert.equal((await hget('/sni/x', { servername: 'localhost' })).status, 404);
    assert.equal((await request(gw.port, { path: '/sni/x' })).status, 404);
    let r = await request(gw.port, { path: '/h/x', headers: { 'x-tenant': 'Blue' } });
    assert.equal(r.json().url, '/two/x');
    r = await request(gw.port, { path: '/h/x', headers: { 'x-tenant': 'red' } });
    assert.equal(r.json().url, '/base/x');
    r = await hget('/h/x', { headers: { 'x-tenant': 'green' } });
    assert.equal(r.json().url, '/two/x');
});

test('a reload swaps certificates; a TLS request in flight across it is not dropped', { timeout: slow(30000) }, async () => {
    const before = gw.workers();
    const stalled = hget('/any/_/stall?ms=1500', { servername: 'a.example.test' });
    await new Promise((r) => setTimeout(r, 300));   // the request is at the upstream now
    await gw.reload(config({ swap: true }));     // *.example.test now served with c's certificate
    assert.ok(await waitFor(() => gw.workers().every((p) => !before.includes(p)) && gw.workers().length === 2, slow(10000)));
    const r = await stalled;
    assert.equal(r.status, 200, 'the old worker finished the TLS request');
    const out = await sclient(['-servername', 'a.example.test']);
    assert.match(out, /subject=CN\s*=\s*api\.other\.test/, 'new connections get the new certificate');
    await gw.reload(config());
});

test('sluice -t refuses a bad certificate and an ssl listener without any', { timeout: slow(15000) }, async () => {
    const bad = config().replace(/cert: \|\n {4}-----BEGIN CERTIFICATE-----\n {4}[A-Za-z0-9+/]{10}/, 'cert: |\n    -----BEGIN CERTIFICATE-----\n    AAAAAAAAAA');
    const f = path.join(dir, 'bad.yaml');
    fs.writeFileSync(f, bad);
    let r = spawnSync(SLUICE_BIN, ['-t', '-d', f, '-l', '127.0.0.1:1 ssl'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /certificates\[0\]\.cert: invalid certificate/);
    const none = path.join(dir, 'none.yaml');
    fs.writeFileSync(none, '_format_version: "3.0"\n');
    r = spawnSync(SLUICE_BIN, ['-t', '-d', none, '-l', '127.0.0.1:1 ssl'], { encoding: 'utf8' });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /no certificate/);
});
