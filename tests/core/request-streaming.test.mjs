// request-streaming.test.mjs - request bodies: buffered by default (Kong's
// request_buffering: true), streamed to the upstream as they arrive on a
// route with request_buffering: false, also behind key-auth without
// key_in_body (its instance skips the body phase, ABI 1.8).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';

import { startSluice, sleep, waitFor, slow } from './helpers.mjs';

// An upstream that notes when the first body byte of each request arrived
// and answers with what it received.
function startRecorder() {
    const seen = [];
    const server = http.createServer((req, res) => {
        const rec = { url: req.url, headers: req.headers, firstByteAt: null, bytes: 0 };
        seen.push(rec);
        if (req.url.includes('early')) {
            // answer before reading the body (like a 413 from a picky server)
            res.writeHead(413, { 'content-type': 'text/plain', connection: 'close' });
            res.end('too big for me');
            return;
        }
        const h = crypto.createHash('sha256');
        req.on('data', (d) => {
            if (rec.firstByteAt === null) rec.firstByteAt = Date.now();
            rec.bytes += d.length;
            h.update(d);
        });
        req.on('end', () => {
            const body = JSON.stringify({ bytes: rec.bytes, sha256: h.digest('hex'),
                                          te: req.headers['transfer-encoding'] ?? null,
                                          cl: req.headers['content-length'] ?? null });
            res.writeHead(200, { 'content-type': 'application/json' });
            res.end(body);
        });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () =>
        resolve({ server, port: server.address().port, seen })));
}

function config(upPort) {
    return `_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${upPort}/base
  routes:
  - name: streamed
    paths: [/s]
    request_buffering: false
  - name: buffered
    paths: [/b]
- name: quick-writes
  url: http://127.0.0.1:${upPort}/base
  write_timeout: 300
  routes:
  - name: streamed-slow-client
    paths: [/w]
    request_buffering: false
`;
}

// Send a chunked body in two halves with a pause between them; resolve the
// response and the time the second half was sent.
function twoPartUpload(port, path, first, second, pauseMs) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false,
                                   headers: { 'transfer-encoding': 'chunked' } }, (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('end', () => resolve({ status: res.statusCode, secondAt,
                                          body: Buffer.concat(parts).toString() }));
        });
        let secondAt = 0;
        req.on('error', reject);
        req.write(first);
        setTimeout(() => {
            secondAt = Date.now();
            req.end(second);
        }, pauseMs);
    });
}

test('request bodies: streamed with request_buffering false, buffered by default', async (t) => {
    const up = await startRecorder();
    const g = await startSluice(config(up.port), { workers: 1 });
    t.after(async () => { await g.stop(); up.server.close(); });

    await t.test('a streamed body reaches the upstream before the client has finished', async () => {
        const a = Buffer.alloc(64 * 1024, 'a'), b = Buffer.alloc(64 * 1024, 'b');
        const res = await twoPartUpload(g.port, '/s/up', a, b, 600);
        assert.equal(res.status, 200);
        const j = JSON.parse(res.body);
        assert.equal(j.bytes, a.length + b.length);
        assert.equal(j.sha256, crypto.createHash('sha256').update(a).update(b).digest('hex'));
        assert.equal(j.te, 'chunked', 'chunked framing kept towards the upstream');
        const rec = up.seen.at(-1);
        assert.ok(rec.firstByteAt !== null && rec.firstByteAt < res.secondAt - 200,
                  'first body bytes arrived upstream while the client was still sending');
    });

    await t.test('a client slower than write_timeout: only the client body timeout applies', async () => {
        /* the upstream has everything it was sent; waiting for the client's
         * next chunk is not an upstream write taking too long */
        const res = await twoPartUpload(g.port, '/w/slow', 'a'.repeat(100), 'b'.repeat(100), 900);
        assert.equal(res.status, 200);
        assert.equal(JSON.parse(res.body).bytes, 200);
    });

    await t.test('a buffered body reaches the upstream only when complete', async () => {
        const a = Buffer.alloc(1000, 'a'), b = Buffer.alloc(1000, 'b');
        const res = await twoPartUpload(g.port, '/b/up', a, b, 400);
        assert.equal(res.status, 200);
        const j = JSON.parse(res.body);
        assert.equal(j.bytes, 2000);
        assert.equal(j.cl, '2000', 'buffered bodies go out with Content-Length');
        assert.ok(up.seen.at(-1).firstByteAt >= res.secondAt, 'nothing sent before the body ended');
    });

    await t.test('a 10 MB Content-Length body streams intact', async () => {
        const big = crypto.randomBytes(10 * 1024 * 1024);
        const res = await new Promise((resolve, reject) => {
            const req = http.request({ host: '127.0.0.1', port: g.port, method: 'POST',
                                       path: '/s/big', agent: false,
                                       headers: { 'content-length': big.length } }, (r) => {
                const parts = [];
                r.on('data', (d) => parts.push(d));
                r.on('end', () => resolve({ status: r.statusCode, body: Buffer.concat(parts).toString() }));
            });
            req.on('error', reject);
            req.end(big);
        });
        assert.equal(res.status, 200);
        const j = JSON.parse(res.body);
        assert.equal(j.bytes, big.length);
        assert.equal(j.cl, String(big.length));
        assert.equal(j.sha256, crypto.createHash('sha256').update(big).digest('hex'));
    });

    await t.test('an upstream that answers before the body ended: answer passes, connection closes', async () => {
        const res = await new Promise((resolve, reject) => {
            const req = http.request({ host: '127.0.0.1', port: g.port, method: 'POST',
                                       path: '/s/early', agent: false,
                                       headers: { 'transfer-encoding': 'chunked' } }, (r) => {
                const parts = [];
                r.on('data', (d) => parts.push(d));
                r.on('end', () => resolve({ status: r.statusCode, headers: r.headers,
                                            body: Buffer.concat(parts).toString() }));
            });
            req.on('error', () => { /* the gateway may close while we still write */ });
            req.write('x'.repeat(1000));
            setTimeout(() => { try { req.write('y'.repeat(1000)); } catch { /* closed */ } }, 300);
        });
        assert.equal(res.status, 413);
        assert.equal(res.body, 'too big for me');
        assert.equal(res.headers.connection, 'close');
    });

    // the worker is still fine
    await sleep(100);
    const ok = await waitFor(async () => {
        const r = await twoPartUpload(g.port, '/s/after', 'a', 'b', 10);
        return r.status === 200;
    }, slow(10000));
    assert.ok(ok);
});

// key-auth (ABI 1.8): without key_in_body its instance tells the host it
// never needs the body phase, so a request_buffering: false route streams
// the body; with key_in_body the body is buffered and the key read from it.
function keyAuthConfig(upPort) {
    return `_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${upPort}/base
  routes:
  - name: ka-streamed
    paths: [/ka-s]
    request_buffering: false
    plugins:
    - name: key-auth
  - name: ka-body
    paths: [/ka-b]
    request_buffering: false
    plugins:
    - name: key-auth
      config: {key_in_body: true}
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key-1
`;
}

// A chunked upload in two parts; `between` runs after the first part was
// written and before the second is sent.
function uploadWith(port, path, headers, first, second, between) {
    return new Promise((resolve, reject) => {
        let secondAt = 0;
        const req = http.request({ host: '127.0.0.1', port, method: 'POST', path, agent: false,
                                   headers: { 'transfer-encoding': 'chunked', ...headers } }, (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('end', () => resolve({ status: res.statusCode, secondAt,
                                          body: Buffer.concat(parts).toString() }));
        });
        req.on('error', reject);
        req.write(first, () => {
            between().then(() => { secondAt = Date.now(); req.end(second); }, reject);
        });
    });
}

test('key-auth without key_in_body streams the body (request_buffering false); with it the key is read from the buffered body', async (t) => {
    const up = await startRecorder();
    const g = await startSluice(keyAuthConfig(up.port), { workers: 1 });
    t.after(async () => { await g.stop(); up.server.close(); });

    await t.test('no key_in_body: the upstream has the first bytes before the client sends the rest', async () => {
        const a = Buffer.alloc(256 * 1024, 'a'), b = Buffer.alloc(256 * 1024, 'b');
        const n0 = up.seen.length;
        const res = await uploadWith(g.port, '/ka-s/up', { apikey: 'alice-key-1' }, a, b, async () => {
            // buffered, nothing would reach the upstream before the second part: this times out
            const arrived = await waitFor(() => up.seen.length > n0 && up.seen.at(-1).bytes > 0, slow(10000));
            assert.ok(arrived, 'the upstream saw the first part while the client held the rest back');
        });
        assert.equal(res.status, 200);
        const j = JSON.parse(res.body);
        assert.equal(j.bytes, a.length + b.length);
        assert.equal(j.sha256, crypto.createHash('sha256').update(a).update(b).digest('hex'));
        assert.equal(j.te, 'chunked', 'streamed: chunked framing kept towards the upstream');
        assert.equal(up.seen.at(-1).headers['x-consumer-username'], 'alice');
    });

    await t.test('no key_in_body: a request without a key is still refused, nothing goes upstream', async () => {
        const n0 = up.seen.length;
        const res = await uploadWith(g.port, '/ka-s/up', {}, 'x'.repeat(100), 'y'.repeat(100), async () => {});
        assert.equal(res.status, 401);
        assert.match(res.body, /No API key found in request/);
        assert.equal(up.seen.length, n0);
    });

    await t.test('key_in_body: the key is found in the body, which is buffered whole', async () => {
        const first = 'apikey=alice-key-1&x=' + 'a'.repeat(1000), second = 'b'.repeat(1000);
        const res = await uploadWith(g.port, '/ka-b/up', { 'content-type': 'application/x-www-form-urlencoded' },
                                     first, second, () => sleep(300));
        assert.equal(res.status, 200);
        const j = JSON.parse(res.body);
        assert.equal(j.bytes, first.length + second.length);
        assert.equal(j.cl, String(first.length + second.length), 'buffered: sent with a Content-Length');
        const rec = up.seen.at(-1);
        assert.ok(rec.firstByteAt >= res.secondAt, 'nothing went upstream before the body ended');
        assert.equal(rec.headers['x-consumer-username'], 'alice');

        const bad = await uploadWith(g.port, '/ka-b/up', { 'content-type': 'application/x-www-form-urlencoded' },
                                     'apikey=wrong&x=1', '&y=2', async () => {});
        assert.equal(bad.status, 401);
        assert.match(bad.body, /Unauthorized/);
    });
});
