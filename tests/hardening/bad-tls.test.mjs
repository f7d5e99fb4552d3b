/* bad-tls.test.mjs - hostile TLS clients against a listener with "ssl":
 * garbage, plaintext HTTP, truncated and dribbled ClientHellos, TLS 1.2
 * renegotiation, a crowd of stalled handshakes.  Every case must end in a
 * close (or the handshake going on), with no worker crash, and a normal
 * TLS client must be served all along. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { spawn } from 'node:child_process';

import { startUpstream } from '../core/upstream.mjs';
import { startSluice, freePort, tmpDir, waitFor, slow } from '../core/helpers.mjs';
import { makePki } from '../core/tls-certs.mjs';

let up, gw, pki, ca, port, workers, hello;

before(async () => {
    const dir = tmpDir('sluice-badtls-');
    pki = makePki(path.join(dir, 'pki'), [{ name: 'a', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' }]);
    ca = fs.readFileSync(pki.ca, 'utf8');
    up = await startUpstream();
    port = await freePort();
    gw = await startSluice(`_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:${up.port}/
  routes:
  - name: r
    paths: [/]
`, { workers: 2, args: ['-l', `127.0.0.1:${port} ssl`, '--ssl-cert', pki.a.cert, '--ssl-cert-key', pki.a.key,
                        '--client-header-timeout', '3000'] });
    workers = gw.workers();
    hello = await captureClientHello();
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

/* A real ClientHello, as node's TLS client sends it. */
function captureClientHello() {
    return new Promise((resolve) => {
        const srv = net.createServer((s) => {
            s.once('data', (d) => { resolve(d); s.destroy(); srv.close(); });
        });
        srv.listen(0, '127.0.0.1', () => {
            const c = tls.connect({ host: '127.0.0.1', port: srv.address().port, servername: 'localhost' });
            c.on('error', () => {});
        });
    });
}

/* Write chunks (with a pause between: gapMs, or gapMs(i) for the i-th, 0
 * for the next loop turn), then resolve what came back and whether the
 * gateway closed within timeoutMs. */
function raw(chunks, { gapMs = 0, timeoutMs = 5000, untilData = false } = {}) {
    return new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let got = Buffer.alloc(0), done = false;
        const finish = (closed) => { if (!done) { done = true; s.destroy(); resolve({ got, closed }); } };
        s.setNoDelay(true);
        s.on('data', (d) => { got = Buffer.concat([got, d]); if (untilData) finish(false); });
        s.on('close', () => finish(true));
        s.on('error', () => finish(true));
        setTimeout(() => finish(false), timeoutMs);
        s.on('connect', async () => {
            for (const [i, c] of chunks.entries()) {
                if (s.destroyed) return;
                s.write(c);
                const gap = typeof gapMs === 'function' ? gapMs(i) : gapMs;
                if (gap) await new Promise((r) => setTimeout(r, gap));
                else if (typeof gapMs === 'function') await new Promise((r) => setImmediate(r));
            }
        });
    });
}

function hget(p) {
    return new Promise((resolve, reject) => {
        https.get({ host: '127.0.0.1', port, path: p, servername: 'localhost', ca, agent: false }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode));
        }).on('error', reject);
    });
}

test('garbage, plaintext HTTP and a wrong record type are closed', { timeout: slow(20000) }, async () => {
    for (const [what, bytes] of [
        ['random bytes', crypto.randomBytes(4096)],
        ['plaintext HTTP', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
        ['SSLv2-style hello', Buffer.from('802e010300150000001000000100', 'hex')],
        ['alert record first', Buffer.from('150303000202280000', 'hex')],
        ['record length 0xffff', Buffer.concat([Buffer.from('160303ffff', 'hex'), crypto.randomBytes(200)])],
    ]) {
        const r = await raw([bytes]);
        assert.ok(r.closed, `${what}: closed`);
        assert.ok(!r.got.toString('latin1').includes('HTTP/1.1'), `${what}: no HTTP answer in clear`);
    }
    assert.equal(await hget('/ok'), 200);
});

test('truncated ClientHellos are closed (or time out), never answered with data', { timeout: slow(30000) }, async () => {
    // the gateway waits for the rest until client_header_timeout (3 s), then closes
    const cuts = [1, 5, 6, 40, hello.length - 1];
    const rs = await Promise.all(cuts.map((n) => raw([hello.subarray(0, n)], { timeoutMs: slow(10000) })));
    rs.forEach((r, i) => assert.ok(r.closed, `cut at ${cuts[i]} of ${hello.length}: closed`));
    // a ClientHello whose inner length lies
    const liar = Buffer.from(hello);
    liar.writeUIntBE(0xfffff0 & 0xffffff, 6, 3);
    assert.ok((await raw([liar])).closed, 'inner length larger than the record: closed');
    assert.equal(await hget('/ok'), 200);
});

test('a ClientHello dribbled one byte at a time still gets a ServerHello', { timeout: slow(20000) }, async () => {
    /* a pause after each byte of the record header and the handshake's
     * start, then one write per loop turn: the whole dribble must fit in
     * the 3 s header timeout on a loaded machine, where a 1 ms timer takes
     * several (a pause after each of its ~370 bytes took over 3 s) */
    const chunks = [...hello].map((b) => Buffer.from([b]));
    const r = await raw(chunks, { gapMs: (i) => (i < 64 ? 1 : 0), timeoutMs: slow(15000), untilData: true });
    assert.equal(r.got[0], 0x16, 'a handshake record came back');
});

test('TLS 1.2 renegotiation is refused without harm', { timeout: slow(20000) }, async () => {
    const out = await new Promise((resolve) => {
        const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-tls1_2', '-CAfile', pki.ca,
                                    '-servername', 'localhost']);
        let text = '';
        p.stdout.on('data', (d) => { text += d; });
        p.stderr.on('data', (d) => { text += d; });
        setTimeout(() => p.stdin.write('R\n'), 500);           // s_client: renegotiate
        setTimeout(() => p.kill('SIGKILL'), 3000);
        p.on('close', () => resolve(text));
    });
    assert.match(out, /RENEGOTIATING/, out.slice(-600));
    assert.doesNotMatch(out, /Reused|New, TLSv1\.2.*\n[\s\S]*New, TLSv1\.2/, 'no second handshake completed');
    assert.equal(await hget('/ok'), 200);
});

test('200 stalled handshakes do not hold up a normal TLS client', { timeout: slow(30000) }, async () => {
    const socks = [];
    for (let i = 0; i < 200; i++) {
        const s = net.connect(port, '127.0.0.1');
        s.on('error', () => {});
        s.write(hello.subarray(0, 60));
        socks.push(s);
    }
    const t0 = Date.now();
    for (let i = 0; i < 5; i++) assert.equal(await hget(`/ok${i}`), 200);
    const ms = Date.now() - t0;
    for (const s of socks) s.destroy();
    assert.ok(ms < slow(5000), `5 requests took ${ms} ms beside 200 stalled handshakes`);
});

test('no worker crashed', { timeout: slow(10000) }, async () => {
    assert.deepEqual(gw.workers(), workers, 'same worker pids as at the start');
    assert.ok(!/signal|crash|respawn/i.test(gw.stderr), gw.stderr.slice(-2000));
    assert.equal(await hget('/end'), 200);
});
