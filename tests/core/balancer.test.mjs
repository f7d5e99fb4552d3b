// balancer.test.mjs - the balancer phase and failover (ABI 1.2,
// docs/plugins.md "Balancer phase and failover", docs/upstream.md "The
// combined rule"), driven through the test plugin t-balancer
// (tests/plugins/balancer.c): try N goes to the plugin's N-th target, a
// 429/503 is rejected from header_filter (api->upstream_retry).  Mock
// providers on loopback count what they receive, so each test proves which
// upstream got which try.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import { startSluice, request, waitFor, freePort, tmpDir, sleep, slow } from './helpers.mjs';

/* ---- mock providers ------------------------------------------------------ */

// mode: 'ok' | 'sse' | 429 | 503 | '503-slow' (503 whose body never ends) |
// 'hang' (never answers) | 'sse-break' (200, one event, then a reset)
function startMock(name) {
    const m = { name, mode: 'ok', seen: [], sockets: new Set(), closed: 0 };
    const server = http.createServer((req, res) => {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => {
            const seen = { id: req.headers['x-test-id'], body: Buffer.concat(parts).toString(),
                           headers: req.headers, url: req.url, socket: req.socket, closed: false };
            m.seen.push(seen);
            const mode = m.mode;
            if (mode === 'hang') return;
            if (mode === 429 || mode === 503) {
                const body = JSON.stringify({ error: { type: 'rate_limit', from: name } });
                res.writeHead(mode, { 'content-type': 'application/json', 'x-mock': name,
                                      'retry-after': '7', 'content-length': body.length });
                res.end(body);
                return;
            }
            if (mode === '503-slow') {
                res.writeHead(503, { 'content-type': 'text/plain', 'x-mock': name });
                res.write('busy');       // chunked, never ended: cannot be drained
                return;
            }
            if (mode === 'sse' || mode === 'sse-break') {
                res.writeHead(200, { 'content-type': 'text/event-stream', 'x-mock': name });
                res.write(`data: ${name}-1\n\n`);
                if (mode === 'sse-break') {
                    setTimeout(() => res.socket.resetAndDestroy(), 100);
                    return;
                }
                setTimeout(() => { res.write(`data: ${name}-2\n\n`); res.end(); }, 30);
                return;
            }
            const body = JSON.stringify({ served: name, body: seen.body });
            res.writeHead(200, { 'content-type': 'application/json', 'x-mock': name,
                                 'content-length': body.length });
            res.end(body);
        });
    });
    server.on('connection', (s) => {
        m.sockets.add(s);
        s.on('close', () => {
            m.closed++;
            for (const seen of m.seen) if (seen.socket === s) seen.closed = true;
        });
    });
    m.count = (id) => m.seen.filter((s) => s.id === id).length;
    m.of = (id) => m.seen.filter((s) => s.id === id);
    m.close = () => new Promise((r) => {
        for (const s of m.sockets) s.destroy();
        server.close(r);
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
        m.port = server.address().port;
        resolve(m);
    }));
}

/* ---- the gateway ------------------------------------------------------------ */

let A, B, C, dead1, dead2, gw, dir, seq = 0;
const logFile = () => path.join(dir, 'records.json');
const triesFile = () => path.join(dir, 'tries.txt');

function route(name, cfg) {
    return `  - name: ${name}
    paths: [/${name}]
    plugins:
    - name: t-balancer
      config: ${JSON.stringify({ file: triesFile(), ...cfg })}
`;
}

before(async () => {
    [A, B, C] = await Promise.all([startMock('A'), startMock('B'), startMock('C')]);
    dead1 = await freePort();
    dead2 = await freePort();
    dir = tmpDir('sluice-balancer-');
    const t = (name, port, extra = {}) => ({ name, port, path: `/${name.toLowerCase()}`, ...extra });
    const cfg = `_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${dead1}/
  read_timeout: 400
  plugins:
  - name: file-log
    config: { path: ${JSON.stringify(logFile())} }
  routes:
${route('refused', { targets: [t('dead', dead1), t('B', B.port)] })}
${route('status', { targets: [t('A', A.port), t('B', B.port, { body: '{"model":"b-model"}' })],
                    retry_on: [429, 503], non_idempotent: true })}
${route('stream', { targets: [t('A', A.port), t('B', B.port)], retry_on: [503],
                    non_idempotent: true })}
${route('timeout-ni', { targets: [t('A', A.port), t('B', B.port)], non_idempotent: true })}
${route('timeout', { targets: [t('A', A.port), t('B', B.port)] })}
${route('budget', { targets: [t('A', A.port), t('B', B.port), t('C', C.port)], retry_on: [429],
                    retries: 1, non_idempotent: true })}
${route('giveup', { targets: [t('dead', dead1), t('dead2', dead2)] })}
${route('pool', { targets: [t('P1', 80, { host: 'pool.internal' }), t('P2', 80, { host: 'pool.internal' })] })}
upstreams:
- name: pool.internal
  targets:
  - {target: "127.0.0.1:${dead2}"}
  - {target: "127.0.0.1:${B.port}"}
`;
    gw = await startSluice(cfg, { workers: 1 });
});

after(async () => {
    await gw?.stop();
    await Promise.all([A, B, C].map((m) => m?.close()));
});

function send(p, { method = 'POST', body = '{"model":"a-model"}', headers = {}, timeoutMs = 5000 } = {}) {
    const id = `b${++seq}`;
    return request(gw.port, {
        method, path: `/${p}/v1/chat`, body, timeoutMs,
        headers: { 'x-test-id': id, 'content-type': 'application/json', ...headers },
    }).then((r) => ({ ...r, id }));
}

function triesLines(id) {
    if (!fs.existsSync(triesFile())) return [];
    return fs.readFileSync(triesFile(), 'utf8').split('\n').filter((l) => l.startsWith(`${id} `));
}

async function record(id) {
    let rec;
    await waitFor(() => {
        if (!fs.existsSync(logFile())) return false;
        const text = fs.readFileSync(logFile(), 'utf8');
        const lines = text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l);
        rec = lines.map((l) => JSON.parse(l)).find((x) => x.request.headers['x-test-id'] === id);
        return rec !== undefined;
    }, slow(10000));
    assert.ok(rec, `log record of ${id}`);
    return rec;
}

/* ---- tests ------------------------------------------------------------------ */

test('a refused connection fails over to the next target; both tries are in the record', { timeout: slow(10000) }, async () => {
    B.mode = 'ok';
    const r = await send('refused');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-served-by'], 'B');
    assert.equal(B.count(r.id), 1);
    const [seen] = B.of(r.id);
    assert.equal(seen.url, '/b', 'the path upstream_set chose');
    assert.equal(seen.headers['x-try'], '2');
    const lines = triesLines(r.id);
    assert.equal(lines.length, 2, lines.join('\n'));
    assert.match(lines[0], /try=1 fail=0 status=0 reached=0 reused=0 left=5 ip= port=0$/);
    assert.match(lines[1], new RegExp(`try=2 fail=1 status=0 reached=0 reused=0 left=4 ip=127.0.0.1 port=${dead1}$`));
    const rec = await record(r.id);
    assert.equal(rec.tries.length, 2);
    assert.deepEqual([rec.tries[0].ip, rec.tries[0].port, rec.tries[0].state, rec.tries[0].code],
                     ['127.0.0.1', dead1, 'failed', 502]);
    assert.equal(rec.tries[1].port, B.port);
    assert.equal(rec.tries[1].state, undefined);
    assert.ok(rec.tries.every((x) => typeof x.balancer_latency === 'number'));
    assert.equal(rec.upstream_status, '502, 200', "nginx's $upstream_status, as Kong logs it");
});

test('a 429 is rejected before anything reaches the client; the next target gets the body the balancer set', { timeout: slow(10000) }, async () => {
    A.mode = 429;
    B.mode = 'ok';
    const r = await send('status');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-mock'], 'B', 'no header of the rejected answer leaks');
    assert.equal(r.headers['retry-after'], undefined);
    assert.equal(r.json().served, 'B');
    assert.equal(A.count(r.id), 1);
    assert.equal(A.of(r.id)[0].body, '{"model":"a-model"}');
    assert.equal(A.of(r.id)[0].headers['x-target'], 'A');
    const [b] = B.of(r.id);
    assert.equal(b.body, '{"model":"b-model"}', 'the second upstream receives the new body');
    assert.equal(b.headers['content-length'], String('{"model":"b-model"}'.length));
    assert.equal(b.headers['x-target'], 'B');
    assert.equal(b.headers['x-try'], '2');
    assert.match(triesLines(r.id)[1], new RegExp(`try=2 fail=7 status=429 reached=1 reused=0 left=4 ip=127.0.0.1 port=${A.port}$`));
    const rec = await record(r.id);
    assert.equal(rec.tries.length, 2);
    assert.deepEqual([rec.tries[0].port, rec.tries[0].state, rec.tries[0].code], [A.port, 'next', 429]);
    assert.equal(rec.tries[1].port, B.port);
    assert.equal(rec.response.status, 200);
    assert.equal(rec.upstream_status, '429, 200');
});

test('a rejected answer that was read whole keeps its keep-alive connection', { timeout: slow(10000) }, async () => {
    A.mode = 429;
    B.mode = 'ok';
    const r1 = await send('status');
    const r2 = await send('status');
    assert.equal(r1.status, 200);
    assert.equal(r2.status, 200);
    const s1 = A.of(r1.id)[0], s2 = A.of(r2.id)[0];
    assert.equal(s1.socket, s2.socket, 'the drained connection went back to the pool');
    assert.equal(s1.closed, false);
});

test('a rejected answer whose body is still coming is not drained: its connection is closed', { timeout: slow(10000) }, async () => {
    A.mode = '503-slow';
    B.mode = 'ok';
    const r = await send('status');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-served-by'], 'B');
    assert.ok(await waitFor(() => A.of(r.id)[0].closed, slow(10000)), 'the gateway closed it');
});

test('a streaming request fails over before the first byte (503 on A, SSE from B)', { timeout: slow(10000) }, async () => {
    A.mode = 503;
    B.mode = 'sse';
    const r = await send('stream', { body: '{"model":"m","stream":true}' });
    assert.equal(r.status, 200, r.text);
    assert.match(r.headers['content-type'], /text\/event-stream/);
    assert.equal(r.text, 'data: B-1\n\ndata: B-2\n\n');
    assert.equal(A.count(r.id), 1);
    assert.equal(B.count(r.id), 1);
});

test('after the first byte went to the client nothing is retried', { timeout: slow(10000) }, async () => {
    A.mode = 'sse-break';
    B.mode = 'sse';
    let text = '';
    try {
        const r = await send('stream', { body: '{"model":"m","stream":true}' });
        text = r.text;
        assert.equal(r.complete, false, 'the stream ends broken');
    } catch (e) {
        text = e.partial?.toString() ?? '';
    }
    assert.ok(text === '' || text.startsWith('data: A-1'), text);
    assert.ok(!text.includes('B-'), 'no second answer spliced in');
    await sleep(200);
    const id = `b${seq}`;
    assert.equal(A.count(id), 1);
    assert.equal(B.count(id), 0, 'B never asked');
    const rec = await record(id);
    assert.equal(rec.tries.length, 1);
});

test('read timeout with non_idempotent: the plugin is told the request may have arrived, and goes on', { timeout: slow(10000) }, async () => {
    A.mode = 'hang';
    B.mode = 'ok';
    const r = await send('timeout-ni');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers['x-served-by'], 'B');
    assert.match(triesLines(r.id)[1], /try=2 fail=4 status=0 reached=1 /);
    const rec = await record(r.id);
    assert.deepEqual([rec.tries[0].state, rec.tries[0].code], ['failed', 504]);
});

test('read timeout without non_idempotent: the plugin gives up, 504, the next target is never asked', { timeout: slow(10000) }, async () => {
    A.mode = 'hang';
    B.mode = 'ok';
    const r = await send('timeout');
    assert.equal(r.status, 504, r.text);
    assert.equal(r.json().message, 'The upstream server is timing out');
    assert.equal(A.count(r.id), 1);
    assert.equal(B.count(r.id), 0);
    assert.equal(triesLines(r.id).length, 2, 'the balancer was asked, and said no');
});

test('the retry budget (upstream_retries_set 1): the third target is never tried, the last 429 goes through', { timeout: slow(10000) }, async () => {
    A.mode = 429;
    B.mode = 429;
    C.mode = 'ok';
    const r = await send('budget');
    assert.equal(r.status, 429, r.text);
    assert.equal(r.headers['x-mock'], 'B');
    assert.equal(r.headers['x-retry-refused'], '1');
    assert.equal(JSON.parse(r.text).error.from, 'B');
    assert.equal(C.count(r.id), 0);
    const lines = triesLines(r.id);
    assert.match(lines[0], /try=1 .* left=1 /);
    assert.match(lines.at(-1), /refused$/);
    const rec = await record(r.id);
    assert.equal(rec.tries.length, 2);
});

test('the balancer gives up with its own answer when no target is left', { timeout: slow(10000) }, async () => {
    const r = await send('giveup');
    assert.equal(r.status, 503, r.text);
    assert.equal(r.json().message, 'no target left');
    assert.equal(triesLines(r.id).length, 3);
    const rec = await record(r.id);
    assert.equal(rec.tries.length, 2);
    assert.ok(rec.tries.every((x) => x.state === 'failed' && x.code === 502));
    assert.equal(rec.upstream_status, '502, 502');
    assert.equal(rec.source, 'kong');
});

test('a client that goes away during the second try frees it; the gateway goes on', { timeout: slow(10000) }, async () => {
    A.mode = 503;
    B.mode = 'hang';
    const id = `b${++seq}`;
    const sock = net.connect(gw.port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    const body = '{"model":"m"}';
    sock.write(`POST /stream/v1/chat HTTP/1.1\r\nHost: x\r\nX-Test-Id: ${id}\r\n` +
               `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    assert.ok(await waitFor(() => B.count(id) === 1, slow(10000)), 'the second try reached B');
    sock.destroy();
    assert.ok(await waitFor(() => B.of(id)[0].closed, slow(10000)), 'the gateway dropped the upstream connection');
    const rec = await record(id);
    assert.equal(rec.response.status, 499);
    assert.equal(rec.tries.length, 2);
    B.mode = 'ok';
    const r = await send('refused');
    assert.equal(r.status, 200);
});

test("a plugin that points a try at a Kong upstream's name: the core picks the target, the next try the next one", { timeout: slow(10000) }, async () => {
    B.mode = 'ok';
    const rs = [await send('pool'), await send('pool')];   // round-robin: one of them starts on the dead target
    for (const r of rs) {
        assert.equal(r.status, 200, r.text);
        assert.equal(r.headers['x-mock'], 'B');
    }
    const recs = await Promise.all(rs.map((r) => record(r.id)));
    const failedOver = recs.filter((x) => x.tries.length === 2);
    assert.equal(failedOver.length, 1, JSON.stringify(recs.map((x) => x.tries)));
    assert.deepEqual(failedOver[0].tries.map((x) => x.port), [dead2, B.port]);
    assert.equal(failedOver[0].tries[0].state, 'failed');
    const r2 = rs[recs.indexOf(failedOver[0])];
    assert.equal(B.of(r2.id)[0].headers['x-try'], '2');
    assert.equal(B.of(r2.id)[0].headers.host, `127.0.0.1:${B.port}`, 'the Host names the picked target');
});
