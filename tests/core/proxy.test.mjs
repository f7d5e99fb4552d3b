// proxy.test.mjs - end-to-end: the real sluice binary proxying to a local
// upstream over loopback: request forwarding, keep-alive, pipelining,
// bodies, streaming, and how upstream failures reach the client.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';

import { startUpstream, nowMs } from './upstream.mjs';
import { startSluice, request, RawClient, get, sleep, percentile, freePort, slow } from './helpers.mjs';

let up, gw, deadPort;

before(async () => {
    up = await startUpstream();
    deadPort = await freePort();      // nothing listens here
    gw = await startSluice(`_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up.port}/base
  read_timeout: 500
  retries: 1
  routes:
  - name: strip
    paths: [/p]
  - name: nostrip
    paths: [/keep]
    strip_path: false
  - name: preserve
    paths: [/ph]
    preserve_host: true
  - name: posts
    paths: [/only-post]
    methods: [POST]
  - name: tls-only
    paths: [/secure]
    protocols: [https]
  - name: tls-redirect
    paths: [/moved]
    protocols: [https]
    https_redirect_status_code: 301
- name: svc-big
  url: http://127.0.0.1:${up.port}/base
  routes:
  - name: big
    paths: [/big]
- name: dead
  url: http://127.0.0.1:${deadPort}/
  retries: 1
  routes:
  - name: dead
    paths: [/dead]
`);
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

test('plain proxying: method, path joining, query, X-Forwarded-*, Host', { timeout: slow(10000) }, async () => {
    let r = await request(gw.port, {
        method: 'PUT', path: '/p/x/y?a=1&b=%20two', body: 'hello',
        headers: { 'X-Custom': 'v1', 'X-Forwarded-For': '10.0.0.1', 'Host': 'client.example:1234' },
    });
    assert.equal(r.status, 200);
    let e = r.json();
    assert.equal(e.method, 'PUT');
    assert.equal(e.url, '/base/x/y?a=1&b=%20two');
    assert.equal(e.body, 'hello');
    assert.equal(e.headers['x-custom'], 'v1');
    assert.equal(e.headers['host'], `127.0.0.1:${up.port}`);
    assert.equal(e.headers['x-forwarded-for'], '10.0.0.1, 127.0.0.1');
    assert.equal(e.headers['x-forwarded-proto'], 'http');
    assert.equal(e.headers['x-forwarded-host'], 'client.example');
    assert.equal(e.headers['x-forwarded-port'], String(gw.port));
    assert.equal(e.headers['x-forwarded-path'], '/p/x/y');
    assert.equal(r.headers['x-upstream'], 'yes');
    assert.match(r.headers['via'] ?? '', /sluice/);
    assert.match(r.headers['x-kong-request-id'] ?? '', /^[0-9a-f]{32}$/);

    // Kong's joining: exact prefix -> service path; trailing slash kept.
    r = await request(gw.port, { path: '/p' });
    assert.equal(r.json().url, '/base');
    r = await request(gw.port, { path: '/p/' });
    assert.equal(r.json().url, '/base/');
    r = await request(gw.port, { path: '/p?x=1' });
    assert.equal(r.json().url, '/base?x=1');

    // strip_path: false keeps the matched prefix.
    r = await request(gw.port, { path: '/keep/z?q' });
    assert.equal(r.json().url, '/base/keep/z?q');

    // preserve_host forwards the client's Host.
    r = await request(gw.port, { path: '/ph/a', headers: { Host: 'client.example:1234' } });
    assert.equal(r.json().headers.host, 'client.example:1234');

    // methods
    r = await request(gw.port, { path: '/only-post', method: 'POST', body: 'x' });
    assert.equal(r.status, 200);
    r = await request(gw.port, { path: '/only-post', method: 'GET' });
    assert.equal(r.status, 404);
});

test('hop-by-hop request headers are not forwarded', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write(`GET /p/hop HTTP/1.1\r\nHost: x\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\n` +
            `Keep-Alive: timeout=5\r\nTE: trailers\r\nX-End: 2\r\n\r\n`);
    const r = await c.next();
    c.destroy();
    const e = JSON.parse(r.text);
    assert.equal(e.headers['x-hop'], undefined);
    assert.equal(e.headers['keep-alive'], undefined);
    assert.equal(e.headers['te'], undefined);
    assert.equal(e.headers['x-end'], '2');
});

test('404 when no route matches, with a JSON body', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/nothing/here' });
    assert.equal(r.status, 404);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.equal(r.json().message, 'no Route matched with those values');
});

test('a route with protocols [https] on a plain listener: Kong\'s 426, or its redirect', { timeout: slow(10000) }, async () => {
    let r = await request(gw.port, { path: '/secure/x?a=1', headers: { Host: 'api.example' } });
    assert.equal(r.status, 426);
    assert.equal(r.json().message, 'Please use HTTPS protocol');
    assert.equal(r.headers.upgrade, 'TLS/1.2, HTTP/1.1');
    r = await request(gw.port, { path: '/moved/x?a=1', headers: { Host: 'api.example' } });
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, 'https://api.example/moved/x?a=1');
});

test('keep-alive: several requests on one connection', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    const ports = new Set();
    for (let i = 0; i < 5; i++) {
        c.write(get(gw.port, `/p/ka/${i}`));
        const r = await c.next();
        assert.equal(r.status, 200);
        assert.equal(JSON.parse(r.text).url, `/base/ka/${i}`);
        assert.notEqual(r.headers.connection, 'close');
        ports.add(c.sock.localPort);
    }
    assert.equal(c.closed, false);
    c.destroy();
    // The agent in node:http does the same through a keep-alive agent.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const seen = new Set();
    for (let i = 0; i < 3; i++) {
        const r = await request(gw.port, { path: '/p/agent', agent });
        seen.add(r.localPort);
    }
    agent.destroy();
    assert.equal(seen.size, 1, 'one client socket reused');
});

// Header fields usually arrive whole in one read and are taken from the
// read buffer without a copy; one cut by the end of a read is copied and
// completed by the next read.  Both heads here come one byte per write.
test('request and response heads cut at every byte: every field arrives whole', { timeout: slow(20000) }, async () => {
    const pause = () => new Promise((r) => setTimeout(r, 2));
    const seen = [];
    const raw = net.createServer((s) => {
        s.setNoDelay(true);
        let head = '';
        s.on('data', async (d) => {
            head += d.toString('latin1');
            if (!head.includes('\r\n\r\n')) return;
            seen.push(head);
            const resp = 'HTTP/1.1 200 OK\r\nX-Split-Field: value one\r\nX-Spaces:   two words \t \r\n' +
                'Content-Length: 2\r\n\r\nok';
            for (const ch of resp) {
                s.write(ch);
                await pause();
            }
        });
    });
    await new Promise((r) => raw.listen(0, '127.0.0.1', r));
    const g = await startSluice(`_format_version: "3.0"
services:
- name: raw
  url: http://127.0.0.1:${raw.address().port}/r
  routes:
  - name: raw
    paths: [/raw]
`, { workers: 1 });
    try {
        const c = await RawClient.open(g.port);
        c.sock.setNoDelay(true);
        const req = 'GET /raw/x HTTP/1.1\r\nHost: cut.example\r\nX-Long-Field-Name: a value  \r\n' +
            'X-Second: 2\r\n\r\n';
        for (const ch of req) {
            c.write(ch);
            await pause();
        }
        const r = await c.next();
        c.destroy();
        assert.equal(r.status, 200);
        assert.equal(r.text, 'ok');
        assert.equal(r.headers['x-split-field'], 'value one');
        assert.equal(r.headers['x-spaces'], 'two words');
        assert.equal(seen.length, 1);
        assert.match(seen[0], /^GET \/r\/x HTTP\/1\.1\r\n/);
        assert.match(seen[0], /\r\nX-Long-Field-Name: a value\r\n/);
        assert.match(seen[0], /\r\nX-Second: 2\r\n/);
        assert.match(seen[0], /\r\nX-Forwarded-Host: cut\.example\r\n/);
    } finally {
        await g.stop();
        raw.close();
    }
});

test('pipelining: 3 requests in one write, answered in order', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    // The slow one first: answers must still come back in request order.
    c.write(get(gw.port, '/p/_/stall?ms=200') + get(gw.port, '/p/second') +
            `POST /p/third HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nthree`);
    const a = await c.next(), b = await c.next(), d = await c.next();
    c.destroy();
    assert.equal(a.text, 'stalled 200');
    assert.equal(JSON.parse(b.text).url, '/base/second');
    const e = JSON.parse(d.text);
    assert.equal(e.url, '/base/third');
    assert.equal(e.body, 'three');
});

test('chunked request bodies are forwarded whole', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write('POST /p/chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
    c.write('5\r\nhello\r\n');
    await sleep(30);
    c.write('1;ext=1\r\n \r\n6\r\nworld!\r\n0\r\n\r\n');
    const r = await c.next();
    c.destroy();
    const e = JSON.parse(r.text);
    assert.equal(e.body, 'hello world!');
    assert.equal(e.headers['transfer-encoding'], undefined);
    assert.equal(e.headers['content-length'], '12');
});

test('chunked upstream responses pass through', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/p/_/chunked?n=5&size=7&interval=10' });
    assert.equal(r.status, 200);
    assert.equal(r.text, '0000000111111122222223333333' + '4444444');
});

test('a 10 MB body round trip', { timeout: slow(30000) }, async () => {
    /* on a service with the default read_timeout: /p's 500 ms (for the 504
     * test) is shorter than a loaded machine may take to echo 10 MB */
    const body = crypto.randomBytes(10 * 1024 * 1024);
    const r = await request(gw.port, { method: 'POST', path: '/big/_/body', body,
                                       headers: { 'Content-Type': 'application/octet-stream' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, body.length);
    assert.ok(r.body.equals(body), 'same bytes back');
    // and 10 MB down only
    const big = await request(gw.port, { path: `/big/_/big?size=${10 * 1024 * 1024}` });
    assert.equal(big.body.length, 10 * 1024 * 1024);
    assert.equal(big.body[10 * 1024 * 1024 - 1], 97 + ((10 * 1024 * 1024 - 1) % 26));
});

test('large bodies read whole in one read reach the upstream intact, concurrently and pipelined', { timeout: slow(20000) }, async () => {
    /* A body of 16 KiB or more that arrives whole with its head is not
     * copied: its request takes the read buffer (http_server.c on_body).
     * Eight connections send at once, so while one request waits for its
     * upstream connection other reads arrive; each also pipelines a second
     * request behind the first (its bytes left in the same read), and a
     * third follows on the kept-alive connection. */
    const body = (i, k) => crypto.randomBytes(20 * 1024 + i * 997 + k).toString('hex');
    const post = (path, b) => `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${b.length}\r\n\r\n${b}`;
    const sha = (b) => crypto.createHash('sha256').update(b).digest('hex');
    await Promise.all(Array.from({ length: 8 }, async (_, i) => {
        const c = await RawClient.open(gw.port);
        const [a, b, d] = [body(i, 0), body(i, 1), body(i, 2)];
        c.write(post(`/big/lent/${i}/a`, a) + post(`/big/lent/${i}/b`, b));
        const ra = await c.next(), rb = await c.next();
        c.write(post(`/big/lent/${i}/d`, d));
        const rd = await c.next();
        c.destroy();
        for (const [r, sent, name] of [[ra, a, 'a'], [rb, b, 'b'], [rd, d, 'd']]) {
            assert.equal(r.status, 200, r.text.slice(0, 200));
            const e = JSON.parse(r.text);
            assert.equal(e.url, `/base/lent/${i}/${name}`);
            assert.equal(e.bodyLength, sent.length);
            assert.equal(e.bodySha256, sha(sent), `connection ${i}, request ${name}: other bytes upstream`);
        }
    }));
});

// Read an SSE stream; returns per-event { i, sentMs, gotMs }.
function readSse(port, path) {
    return new Promise((resolve, reject) => {
        const events = [];
        let buf = '';
        const req = http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
            if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
            res.setEncoding('utf8');
            res.on('data', (d) => {
                const got = nowMs();
                buf += d;
                let k;
                while ((k = buf.indexOf('\n\n')) >= 0) {
                    const ev = buf.slice(0, k);
                    buf = buf.slice(k + 2);
                    const m = /^data: (.*)$/m.exec(ev);
                    if (m) {
                        const j = JSON.parse(m[1]);
                        events.push({ i: j.i, sentMs: j.t, gotMs: got, text: j.text, raw: m[1] });
                    }
                }
            });
            res.on('end', () => resolve({ events, headers: res.headers }));
        });
        req.on('error', reject);
    });
}

test('SSE streams chunk by chunk; pass-through delay measured', { timeout: slow(20000) }, async (t) => {
    // 200 ms apart (600 under ASan): an event may take up to 100 ms on a
    // loaded machine (the test's own loop sends and receives), while a proxy
    // that buffers holds an event for at least the next interval.
    const n = 10, interval = slow(200);
    const direct = await readSse(up.port, `/base/_/sse?n=${n}&interval=${interval}`);
    // /big: the default read_timeout (/p's 500 ms is shorter than ASan's
    // 600 ms interval and cut the stream after its first event)
    const via = await readSse(gw.port, `/big/_/sse?n=${n}&interval=${interval}`);
    assert.equal(via.events.length, n);
    assert.equal(via.headers['content-type'], 'text/event-stream');
    const d = via.events.map((e) => e.gotMs - e.sentMs).sort((a, b) => a - b);
    const dd = direct.events.map((e) => e.gotMs - e.sentMs).sort((a, b) => a - b);
    // Each event must arrive long before the next one is even sent.
    for (const e of via.events) assert.ok(e.gotMs - e.sentMs < interval / 2,
                                          `event ${e.i} took ${e.gotMs - e.sentMs} ms`);
    // Arrivals are spread like the sends (not buffered then flushed).
    const span = via.events[n - 1].gotMs - via.events[0].gotMs;
    assert.ok(span > (n - 1) * interval * 0.8, `arrival span ${span} ms`);
    const fmt = (x) => x.toFixed(3);
    const msg = `SSE pass-through delay via sluice: p50 ${fmt(percentile(d, 50))} ms, ` +
        `max ${fmt(d[d.length - 1])} ms; direct: p50 ${fmt(percentile(dd, 50))} ms, ` +
        `max ${fmt(dd[dd.length - 1])} ms; added p50 ` +
        `${fmt(percentile(d, 50) - percentile(dd, 50))} ms`;
    t.diagnostic(msg);
    if (process.env.SLUICE_E2E_REPORT) console.log(msg);
});

test('upstream read timeout -> 504 JSON', { timeout: slow(10000) }, async () => {
    const t0 = Date.now();
    const r = await request(gw.port, { path: '/p/_/stall' });
    const took = Date.now() - t0;
    assert.equal(r.status, 504);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.match(r.json().message, /timing out/i);
    assert.ok(took >= 450 && took < 4000, `took ${took} ms`);
});

test('upstream connection refused -> 502 JSON', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/dead/x' });
    assert.equal(r.status, 502);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.ok(r.json().message);
});

test('upstream reset mid-headers -> 502', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/p/_/reset-headers' });
    assert.equal(r.status, 502);
});

test('upstream garbage -> 502', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/p/_/garbage' });
    assert.equal(r.status, 502);
});

test('upstream reset mid-body -> client sees a truncated response', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write(get(gw.port, '/p/_/reset-body'));
    await assert.rejects(c.next({ timeoutMs: 5000 }), (err) => {
        const s = err.partial?.toString('latin1') ?? '';
        assert.match(s, /^HTTP\/1\.1 200/);
        const body = s.slice(s.indexOf('\r\n\r\n') + 4);
        assert.ok(body.length >= 100 && body.length < 1000, `partial body ${body.length} bytes`);
        return true;
    });
    assert.ok(c.closed, 'connection closed after the truncated body');
});

test('upstream closes after headers -> truncated, connection closed', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write(get(gw.port, '/p/_/close-after-headers'));
    await assert.rejects(c.next({ timeoutMs: 5000 }), /closed/);
    // and the gateway still serves new connections
    const r = await request(gw.port, { path: '/p/after' });
    assert.equal(r.status, 200);
});

test('upstream status codes and empty bodies pass through', { timeout: slow(10000) }, async () => {
    let r = await request(gw.port, { path: '/p/_/status?code=204' });
    assert.equal(r.status, 204);
    assert.equal(r.body.length, 0);
    r = await request(gw.port, { path: '/p/_/status?code=418' });
    assert.equal(r.status, 418);
    r = await request(gw.port, { path: '/p/head', method: 'HEAD' });
    assert.equal(r.status, 200);
    assert.equal(r.body.length, 0);
    // HEAD then GET on one connection: the HEAD response must not eat the next one
    const c = await RawClient.open(gw.port);
    c.write(`HEAD /p/h1 HTTP/1.1\r\nHost: x\r\n\r\n`);
    const h = await c.next({ noBody: true });
    assert.equal(h.status, 200);
    c.write(get(gw.port, '/p/h2'));
    const g2 = await c.next();
    assert.equal(JSON.parse(g2.text).url, '/base/h2');
    c.destroy();
});

test('Expect: 100-continue gets an interim 100 before the body is sent', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write('POST /p/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n');
    const cont = await c.next({ noBody: true });
    assert.equal(cont.status, 100);
    c.write('data');
    const r = await c.next();
    c.destroy();
    assert.equal(r.status, 200);
    const e = JSON.parse(r.text);
    assert.equal(e.body, 'data');
    assert.equal(e.headers.expect, undefined);
});

test('HTTP/1.0 client: answered, then the connection closes', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write('GET /p/old HTTP/1.0\r\n\r\n');
    const r = await c.next();
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.text).url, '/base/old');
    assert.ok(await c.waitClosed());
    // chunked upstream body to a 1.0 client: close-delimited, not chunked
    const c2 = await RawClient.open(gw.port);
    c2.write('GET /p/_/chunked?n=3&size=4 HTTP/1.0\r\n\r\n');
    await c2.waitClosed();
    const raw = c2.buf.toString('latin1');
    assert.match(raw, /^HTTP\/1\.1 200/);
    assert.doesNotMatch(raw, /transfer-encoding/i);
    assert.ok(raw.endsWith('000011112222'), JSON.stringify(raw.slice(-40)));
});
