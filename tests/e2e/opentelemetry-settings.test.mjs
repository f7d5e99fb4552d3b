// opentelemetry-settings.test.mjs - end-to-end: Kong's node tracing
// settings (tracing_instrumentations, tracing_sampling_rate) reaching the
// opentelemetry plugin through api->setting_get (ABI 1.3), from a settings
// file and from SLUICE_* variables, against the stub OTLP collector:
// `request` records the kong span without kong.balancer (the upstream's
// parent is the root span), the node rate applies to instances without
// sampling_rate and the plugin's rate overrides it, `off` only propagates
// (nothing recorded, the sampled flag off); http.flavor is the request's
// real HTTP version; bad values are refused at start.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import { PLUGINS_DIR, startGateway, runSluice, tmpDir, sleep } from './harness.mjs';
import { startCollector } from './otlp.mjs';

const stops = [];
after(async () => {
    for (const s of stops.reverse()) await s();
});

async function startEcho() {
    const seen = [];
    const server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
            seen.push({ url: req.url, headers: req.headers });
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.end('ok');
        });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const stop = () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); });
    stops.push(stop);
    return { port: server.address().port, seen };
}

function get(port, p, headers = {}) {
    return new Promise((resolve, reject) => {
        const r = http.request({ host: '127.0.0.1', port, path: p, agent: false, headers }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
        });
        r.on('error', reject);
        r.end();
    });
}

// An HTTP/1.0 request (node's client only speaks 1.1): the response head.
function get10(port, p, headers = {}) {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        let data = '';
        s.on('connect', () => {
            const h = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
            s.write(`GET ${p} HTTP/1.0\r\nHost: 127.0.0.1\r\n${h}\r\n`);
        });
        s.on('data', (d) => { data += d; });
        s.on('end', () => resolve(data));
        s.on('error', reject);
    });
}

async function waitSpans(col, pred, what, timeoutMs = 15000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const s = col.spans().filter(pred);
        if (s.length) return s;
        if (Date.now() > end) throw new Error(`no span: ${what}; got ${JSON.stringify(col.spans().map((x) => x.name))}`);
        await sleep(25);
    }
}

function otel(url, rate) {
    return `
          - name: opentelemetry
            config:
              traces_endpoint: "${url}"
              http_response_header_for_traceid: x-trace-id${rate === undefined ? '' : `
              sampling_rate: ${rate}`}
              queue: {max_coalescing_delay: 0.05}`;
}

function config(echoPort, colUrl) {
    return `_format_version: "3.0"
services:
  - name: plain
    url: http://127.0.0.1:${echoPort}/echo
    routes:
      - name: own-rate
        paths: ["/own"]
        plugins:${otel(colUrl, 1)}
      - name: node-rate
        paths: ["/node"]
        plugins:${otel(colUrl)}
`;
}

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

test('settings file: instrumentations "request" and node rate 0; the plugin\'s sampling_rate overrides the node\'s', async () => {
    const col = await startCollector();
    stops.push(() => col.stop());
    const up = await startEcho();
    const dir = tmpDir('sluice-otel-set-');
    const settings = path.join(dir, 'sluice.conf');
    fs.writeFileSync(settings, 'tracing_instrumentations = request\ntracing_sampling_rate = 0\n');
    const gw = await startGateway({ config: config(up.port, col.url), workers: 1, args: ['-c', settings] });
    stops.push(() => gw.stop());

    // the node's rate (0) for the instance without sampling_rate: not
    // sampled, the flag says so upstream, the trace id still comes back
    const quiet = await get(gw.port, '/node/a');
    assert.equal(quiet.status, 200);
    const q = TP.exec(up.seen.at(-1).headers.traceparent);
    assert.ok(q, up.seen.at(-1).headers.traceparent);
    assert.equal(q[1], quiet.headers['x-trace-id']);
    assert.equal(q[3], '00', 'node rate 0: not sampled');

    // the instance's own sampling_rate 1 wins over the node's 0
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const res = await get(gw.port, '/own/b', { traceparent: `00-${traceId}-b7ad6b7169203331-01` });
    assert.equal(res.status, 200);
    const m = TP.exec(up.seen.at(-1).headers.traceparent);
    assert.equal(m[1], traceId);
    assert.equal(m[3], '01');
    const root = (await waitSpans(col, (s) => s.traceId === traceId && s.name === 'kong', 'root'))[0];
    // "request" alone: no kong.balancer span; the upstream's parent is the root span
    assert.equal(m[2], root.spanId, 'without balancer instrumentation the upstream\'s parent is kong');
    assert.equal(root.parentSpanId, 'b7ad6b7169203331');
    assert.equal(root.attributes['http.flavor'], '1.1');

    // HTTP/1.0 from the client: http.flavor says so
    const head = await get10(gw.port, '/own/old');
    assert.match(head, /^HTTP\/1\.[01] 200 /);
    const tid10 = /x-trace-id: ([0-9a-f]{32})/i.exec(head)[1];
    const root10 = (await waitSpans(col, (s) => s.traceId === tid10 && s.name === 'kong', 'HTTP/1.0 root'))[0];
    assert.equal(root10.attributes['http.flavor'], '1.0');

    // give the other instance's exporter time to have sent anything it had
    await sleep(500);
    assert.equal(col.spans().filter((s) => s.name === 'kong.balancer').length, 0, 'no balancer spans');
    assert.equal(col.spans().filter((s) => s.traceId === quiet.headers['x-trace-id']).length, 0,
        'node rate 0: nothing exported for the instance without sampling_rate');
});

test('SLUICE_TRACING_SAMPLING_RATE=1 with instrumentations from the environment: the node rate samples, balancer spans come back', async () => {
    const col = await startCollector();
    stops.push(() => col.stop());
    const up = await startEcho();
    const gw = await startGateway({
        config: config(up.port, col.url), workers: 1,
        env: { SLUICE_TRACING_INSTRUMENTATIONS: 'request,balancer', SLUICE_TRACING_SAMPLING_RATE: '1' },
    });
    stops.push(() => gw.stop());
    const res = await get(gw.port, '/node/c');
    const m = TP.exec(up.seen.at(-1).headers.traceparent);
    assert.equal(m[3], '01');
    const bal = (await waitSpans(col, (s) => s.traceId === res.headers['x-trace-id'] && s.name === 'kong.balancer', 'balancer'))[0];
    assert.equal(bal.spanId, m[2], 'the upstream\'s parent is kong.balancer');
});

test('tracing_instrumentations off: trace context propagated, nothing recorded', async () => {
    const col = await startCollector();
    stops.push(() => col.stop());
    const up = await startEcho();
    const gw = await startGateway({
        config: config(up.port, col.url), workers: 1,
        env: { SLUICE_TRACING_INSTRUMENTATIONS: 'off', SLUICE_TRACING_SAMPLING_RATE: '1' },
    });
    stops.push(() => gw.stop());
    const traceId = '5bf92f3577b34da6a3ce929d0e0e4737';
    const res = await get(gw.port, '/own/d', { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-trace-id'], traceId);
    const m = TP.exec(up.seen.at(-1).headers.traceparent);
    assert.equal(m[1], traceId, 'the trace continues upstream');
    assert.notEqual(m[2], '00f067aa0ba902b7');
    assert.equal(m[3], '00', 'Kong: propagation only, never sampled');
    await get(gw.port, '/node/e');
    await sleep(600);
    assert.equal(col.st.posts.length, 0, 'nothing exported');
});

test('bad node tracing settings are refused with Kong\'s rule in the message', () => {
    const dir = tmpDir('sluice-otel-bad-');
    const f = path.join(dir, 'kong.yaml');
    fs.writeFileSync(f, '_format_version: "3.0"\n');
    const a = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR], { env: { SLUICE_TRACING_INSTRUMENTATIONS: 'off,request' } });
    assert.notEqual(a.code, 0);
    assert.match(a.stderr, /SLUICE_TRACING_INSTRUMENTATIONS: invalid value 'off,request' \(expected off alone/);
    const b = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR, '--tracing-instrumentations', 'request,sql']);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /--tracing-instrumentations: invalid value 'request,sql'/);
    const c = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR, '--tracing-sampling-rate', '1.5']);
    assert.notEqual(c.code, 0);
    assert.match(c.stderr, /--tracing-sampling-rate: invalid value '1\.5' \(expected a number between 0 and 1\)/);
    const ok = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR, '--tracing-instrumentations', 'request, balancer, router']);
    assert.equal(ok.code, 0, ok.stderr);
});
