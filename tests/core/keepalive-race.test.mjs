// keepalive-race.test.mjs - the retry rule (core/http/retry.h, docs/upstream.md)
// against an upstream that closes keep-alive connections at a chosen moment:
// the keep-alive race (the provider closes a pooled connection just as the
// gateway sends a request on it), one test per branch of the rule, counting
// the requests the upstream saw.  A POST without an idempotency key that may
// have reached the provider must never be seen twice.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startSluice, request, RawClient, waitFor, slow } from './helpers.mjs';

/* ---- an HTTP/1.1 upstream whose every connection we control ---------- */

// plan(req, conn) for each request: 'answer', 'fin' (close without a byte of
// response) or 'reset' (RST without a byte).  req = { method, id, key, nth },
// nth = 1 for a connection's first request (2+ = it was reused).
function startRawUpstream() {
    const st = { seen: [], conns: new Set(), plan: () => 'answer', closedByPeer: 0 };
    const server = net.createServer((sock) => {
        const conn = { sock, n: 0, idle: true };
        st.conns.add(conn);
        let buf = Buffer.alloc(0);
        sock.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            for (;;) {
                const end = buf.indexOf('\r\n\r\n');
                if (end < 0) return;
                const head = buf.subarray(0, end).toString('latin1').split('\r\n');
                const h = {};
                for (const l of head.slice(1)) {
                    const i = l.indexOf(':');
                    h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
                }
                const len = Number(h['content-length'] ?? 0);
                if (buf.length < end + 4 + len) return;
                buf = buf.subarray(end + 4 + len);
                conn.n++;
                conn.idle = false;
                const req = { method: head[0].split(' ')[0], id: h['x-test-id'], nth: conn.n,
                              key: h['idempotency-key'] ?? h['x-idempotency-key'] };
                st.seen.push(req);
                const what = st.plan(req, conn);
                if (what === 'fin') { sock.end(); return; }
                if (what === 'reset') { sock.resetAndDestroy(); return; }
                const body = JSON.stringify({ id: req.id, nth: req.nth });
                sock.write(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n` +
                           `Content-Length: ${body.length}\r\n\r\n${body}`);
                conn.idle = true;
            }
        });
        sock.on('end', () => { st.closedByPeer++; sock.end(); });
        sock.on('error', () => {});
        sock.on('close', () => st.conns.delete(conn));
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
        st.port = server.address().port;
        st.count = (id) => st.seen.filter((r) => r.id === id).length;
        st.close = () => new Promise((r) => {
            for (const c of st.conns) c.sock.destroy();
            server.close(r);
        });
        resolve(st);
    }));
}

let up, gw, seq = 0;

before(async () => {
    up = await startRawUpstream();
    // one worker: its keep-alive pool is the one the next request uses
    gw = await startSluice(`_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up.port}/
  retries: 0
  routes:
  - name: r
    paths: [/r]
`, { workers: 1, args: ['--log-level', 'debug'] });
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

function send(method, headers = {}) {
    const id = `t${++seq}`;
    const body = method === 'POST' ? '{"model":"m","messages":[]}' : undefined;
    return request(gw.port, {
        method, path: '/r/x', body, timeoutMs: slow(10000),
        headers: { 'x-test-id': id, ...(body ? { 'content-type': 'application/json' } : {}), ...headers },
    }).then((r) => ({ ...r, id }));
}

// A pooled connection exists (a request was answered on it and the
// gateway keeps it), then `plan` decides what the next request meets.
async function race(method, headers, what) {
    up.plan = () => 'answer';
    const warm = await send('GET');
    assert.equal(warm.status, 200);
    up.plan = (req) => (req.nth >= 2 ? what : 'answer');   // only on the reused connection
    const r = await send(method, headers);
    up.plan = () => 'answer';
    return r;
}

for (const what of ['fin', 'reset']) {
    test(`race (${what} after the request arrived), POST without key: not retried, seen once`, { timeout: slow(10000) }, async () => {
        const r = await race('POST', {}, what);
        assert.equal(r.status, 502, r.text);
        assert.equal(up.count(r.id), 1, 'duplicates seen by the upstream');
        assert.ok(await waitFor(() => /not retried \(the request may have reached the upstream/.test(gw.stderr),
            slow(10000)), 'the refusal to retry is logged');
    });
}

for (const hdr of ['Idempotency-Key', 'X-Idempotency-Key']) {
    test(`race, POST with ${hdr}: retried once on another connection`, { timeout: slow(10000) }, async () => {
        const key = `k-${seq}`;
        const r = await race('POST', { [hdr]: key }, 'fin');
        assert.equal(r.status, 200, r.text);
        const seen = up.seen.filter((s) => s.id === r.id);
        assert.equal(seen.length, 2, 'the failed try and the retry');
        assert.equal(seen[1].nth, 1, 'the retry went out on a new connection');
        assert.ok(seen.every((s) => s.key === key), 'the key travels with both');
    });
}

test('race, GET (idempotent): retried on another connection', { timeout: slow(10000) }, async () => {
    const r = await race('GET', {}, 'reset');
    assert.equal(r.status, 200, r.text);
    assert.equal(up.count(r.id), 2);
    assert.equal(r.json().nth, 1);
});

test('a new connection closed before any response byte: never retried, even a GET', { timeout: slow(10000) }, async () => {
    for (const c of up.conns) c.sock.end();         // no pooled connection left
    assert.ok(await waitFor(() => up.conns.size === 0, slow(10000)));
    up.plan = (req) => (req.nth === 1 ? 'fin' : 'answer');
    const r = await send('GET');
    up.plan = () => 'answer';
    assert.equal(r.status, 502, r.text);
    assert.equal(up.count(r.id), 1);
});

test('nothing written (the pooled connection was reset before the write): POST retried, seen once', { timeout: slow(15000) }, async () => {
    // The worker is stopped while a client request arrives and then the
    // upstream resets the idle pooled connection, so that on waking the
    // worker reads the request first (epoll reports in order of readiness)
    // and its write on the pooled connection fails on the spot.
    up.plan = () => 'answer';
    const client = await RawClient.open(gw.port);
    const warmReq = (id, method = 'GET', body = '') =>
        `${method} /r/x HTTP/1.1\r\nHost: x\r\nX-Test-Id: ${id}\r\n` +
        (body ? `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n` : '') + `\r\n${body}`;
    client.write(warmReq(`w${seq}`));
    assert.equal((await client.next()).status, 200);
    const [worker] = gw.workers();
    const pooled = [...up.conns].find((c) => c.idle);
    assert.ok(worker && pooled);
    const id = `t${++seq}`;
    process.kill(worker, 'SIGSTOP');
    try {
        await new Promise((r) => client.sock.write(warmReq(id, 'POST', '{"a":1}'), r));
        await new Promise((r) => { pooled.sock.once('close', r); pooled.sock.resetAndDestroy(); });
    } finally {
        process.kill(worker, 'SIGCONT');
    }
    const r = await client.next();
    client.destroy();
    assert.equal(r.status, 200, r.text);
    assert.equal(up.count(id), 1, 'duplicates seen by the upstream');
    assert.match(gw.stderr, new RegExp(`retrying on another \\(nothing was written\\), request`));
});

test('upstream_keepalive_idle_timeout: the gateway closes idle pooled connections before the provider does', { timeout: slow(15000) }, async () => {
    // A provider would close idle connections after a few seconds; the
    // gateway is told 1 s, so it is always the one to close and the race
    // cannot happen.  The bound allows a loaded machine's late timer, not
    // the default idle timeout (60 s).
    const up2 = await startRawUpstream();
    const gw2 = await startSluice(`_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up2.port}/
  routes:
  - name: r
    paths: [/r]
`, { workers: 1, args: ['--upstream-keepalive-idle-timeout', '1'] });
    try {
        const t0 = Date.now();
        let r = await request(gw2.port, { path: '/r/a', headers: { 'x-test-id': 'a' } });
        assert.equal(r.status, 200);
        assert.ok(await waitFor(() => up2.closedByPeer === 1, slow(15000)), 'the gateway closed the idle connection');
        const idle = Date.now() - t0;
        assert.ok(idle >= 900 && idle < slow(10000), `closed after ${idle} ms`);
        r = await request(gw2.port, { method: 'POST', path: '/r/b', body: '{}', headers: { 'x-test-id': 'b' } });
        assert.equal(r.status, 200);
        assert.equal(r.json().nth, 1, 'a new connection');
        assert.equal(up2.count('b'), 1);
    } finally {
        await gw2.stop();
        await up2.close();
    }
});
