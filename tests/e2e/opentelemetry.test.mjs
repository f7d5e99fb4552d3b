// opentelemetry.test.mjs - end-to-end: the opentelemetry plugin exporting
// OTLP/HTTP protobuf to a stub collector (otlp.mjs decodes what it gets,
// and `protoc --decode` parses one body with the repository's otlp.proto).
// A plain route to an echo upstream and the Claude Code route through
// ai-proxy to the mock DashScope: span names, kinds, ids and parent links,
// W3C trace context continued from the client to the upstream (never the
// client's header unchanged), b3 on a route-scoped instance, the trace id
// response header, GenAI attributes against the file-log record, batching;
// then a collector that fails or stalls: requests stay fast, the queue stays
// bounded and drops are counted on /metrics, and export recovers.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import {
    ROOT, PLUGINS_DIR, startMock, startGateway, runSluice, tmpDir, freePort, waitRecord, readLog, sleep, slow,
} from './harness.mjs';
import { startCollector } from './otlp.mjs';

let mock, col, up, gw, logPath, statusPort;

// An upstream that records the headers it gets.
async function startEcho() {
    const seen = [];
    const server = http.createServer((req, res) => {
        req.resume();
        req.on('end', () => {
            seen.push({ url: req.url, headers: req.headers });
            const st = /[?&]status=(\d{3})/.exec(req.url); // ?status=NNN: answer that
            res.writeHead(st ? Number(st[1]) : 200, { 'content-type': 'text/plain' });
            res.end('ok');
        });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    return { port: server.address().port, seen, stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) };
}

function otelConf(url, indent = 6) {
    const pad = ' '.repeat(indent);
    return `
      traces_endpoint: "${url}"
      headers:
        X-Collector-Token: test-token-123
      resource_attributes:
        deployment.environment: e2e
      http_response_header_for_traceid: x-trace-id
      sampling_rate: 1
      queue:
        max_batch_size: 20
        max_coalescing_delay: 0.2`.replace(/\n {6}/g, `\n${pad}`);
}

function config({ mockUrl, echoPort, colUrl, logFile, deadPort }) {
    return `_format_version: "3.0"
upstreams:
  - name: flaky.internal
    targets:
      - target: 127.0.0.1:${deadPort}
      - target: 127.0.0.1:${echoPort}
services:
  - name: flaky
    host: flaky.internal
    path: /echo
    retries: 3
    routes:
      - name: flaky
        paths: ["/flaky"]
  - name: llm
    url: http://127.0.0.1:9/unused
    routes:
      - name: claude
        paths: ["/anything"]
        plugins:
          - name: ai-proxy
            config:
              llm_format: anthropic
              route_type: llm/v1/chat
              logging:
                log_statistics: true
                log_payloads: false
              auth:
                header_name: Authorization
                header_value: Bearer \${{ env "DECK_DASHSCOPE_API_KEY" }}
              model:
                provider: dashscope
                name: qwen-plus
                options:
                  max_tokens: 8192
                  temperature: 1.0
                  upstream_url: "${mockUrl}"
  - name: plain
    url: http://127.0.0.1:${echoPort}/echo
    routes:
      - name: plain
        paths: ["/plain"]
      - name: locked
        paths: ["/locked"]
        plugins:
          - name: key-auth
      - name: b3
        paths: ["/b3"]
        plugins:
          - name: opentelemetry
            config:${otelConf(colUrl, 14)}
              propagation:
                extract: [b3]
                inject: [b3, w3c]
plugins:
  - name: opentelemetry
    config:${otelConf(colUrl)}
  - name: file-log
    config:
      path: "${logFile}"
`;
}

before(async () => {
    mock = await startMock();
    col = await startCollector();
    up = await startEcho();
    const dir = tmpDir('sluice-otel-');
    logPath = path.join(dir, 'log.json');
    statusPort = await freePort();
    gw = await startGateway({
        config: config({ mockUrl: mock.url, echoPort: up.port, colUrl: col.url, logFile: logPath, deadPort: await freePort() }),
        workers: 1,
        env: { DECK_DASHSCOPE_API_KEY: mock.key, SLUICE_STATUS_LISTEN: String(statusPort) },
    });
});

after(async () => {
    await gw?.stop();
    await mock?.stop();
    await col?.stop();
    await up?.stop();
});

function req(port, { method = 'GET', path: p = '/', body, headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const t0 = performance.now();
        const r = http.request({ host: '127.0.0.1', port, method, path: p, agent: false, headers }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text, ms: performance.now() - t0 }));
        });
        r.on('error', reject);
        if (body) r.write(body);
        r.end();
    });
}

async function waitSpans(pred, what, timeoutMs = slow(10000)) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const s = col.spans().filter(pred);
        if (s.length) return s;
        if (Date.now() > end) throw new Error(`no span: ${what}; got ${JSON.stringify(col.spans().map((x) => x.name))}`);
        await sleep(50);
    }
}

const byTrace = (t) => (s) => s.traceId === t;

test('config: Kong\'s schema, and what sluice does not do refused with a clear error', () => {
    const dir = tmpDir('sluice-otel-conf-');
    const f = path.join(dir, 'kong.yaml');
    fs.writeFileSync(f, `_format_version: "3.0"
plugins:
  - name: opentelemetry
    config:
      traces_endpoint: http://127.0.0.1:4318/v1/traces
      logs_endpoint: http://127.0.0.1:4318/v1/logs
      sampling_rate: 1.5
      batch_span_count: 50
      headers:
        "bad header": x
      propagation:
        extract: [w3c, datadog]
        inject: [preserve, instana]
      queue:
        concurrency_limit: 0
`);
    const r = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /kong\.yaml:10: plugins\[0\]\.config\.headers\.bad header: bad header name/);
    fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace(/\n {6}headers:\n.*\n/, '\n'));
    const r2 = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR]);
    assert.notEqual(r2.code, 0);
    assert.match(r2.stderr, /config\.logs_endpoint: not supported by sluice/);
    assert.match(r2.stderr, /config\.sampling_rate: value should be between 0 and 1/);
    assert.match(r2.stderr, /config\.propagation\.extract: propagation format 'datadog' is not supported by sluice/);
    assert.match(r2.stderr, /config\.propagation\.inject: propagation format 'instana' is not supported by sluice/);
    assert.match(r2.stderr, /config\.queue\.concurrency_limit: expected one of: -1, 1/);
    fs.writeFileSync(f, `_format_version: "3.0"
plugins:
  - name: opentelemetry
    config:
      endpoint: http://127.0.0.1:4318/v1/traces
      batch_span_count: 50
      batch_flush_delay: 2
      header_type: b3
      resource_attributes: {service.name: gw}
      queue: {max_entries: 100, max_bytes: 100000}
`);
    const ok = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR]);
    assert.equal(ok.code, 0, ok.stderr);
});

test('a client traceparent: the trace continues upstream under sluice\'s client span, exported as protobuf', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736', parent = '00f067aa0ba902b7';
    up.seen.length = 0;
    const res = await req(gw.port, { path: '/plain/x?a=1', headers: { traceparent: `00-${traceId}-${parent}-01`, tracestate: 'vendor=abc' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers['x-trace-id'], traceId);

    const tp = up.seen[0].headers.traceparent;
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(tp);
    assert.ok(m, `upstream traceparent ${tp}`);
    assert.equal(m[1], traceId, 'same trace id upstream');
    assert.notEqual(m[2], parent, 'the client\'s header is not forwarded unchanged');
    assert.equal(up.seen[0].headers.tracestate, 'vendor=abc');

    const spans = await waitSpans((s) => s.traceId === traceId && s.name === 'kong.balancer', 'balancer');
    await waitSpans((s) => s.traceId === traceId && s.name === 'kong', 'root');
    const all = col.spans().filter(byTrace(traceId));
    const root = all.find((s) => s.name === 'kong');
    const bal = spans[0];
    assert.ok(root, 'root span');
    assert.equal(root.kind, 2, 'kong is SERVER');
    assert.equal(root.parentSpanId, parent, 'root\'s parent is the client\'s span');
    assert.equal(root.traceState, 'vendor=abc');
    assert.equal(bal.kind, 3, 'kong.balancer is CLIENT');
    assert.equal(bal.parentSpanId, root.spanId);
    assert.equal(bal.spanId, m[2], 'the upstream\'s parent is the balancer span');
    assert.equal(all.filter((s) => s.name === 'kong.gen_ai').length, 0, 'no GenAI span on a plain route');
    assert.equal(root.attributes['http.method'], 'GET');
    assert.equal(root.attributes['http.url'], `http://127.0.0.1/plain/x?a=1`);
    assert.equal(root.attributes['http.status_code'], 200);
    assert.equal(root.attributes['net.peer.ip'], '127.0.0.1');
    assert.match(root.attributes['kong.request.id'], /^[0-9a-f]{32}$/);
    assert.equal(bal.attributes['net.peer.name'], '127.0.0.1');
    assert.equal(bal.attributes['net.peer.port'], up.port);
    assert.ok(root.start <= bal.start && bal.end <= root.end, 'balancer within the request');
    assert.ok(root.end > root.start);
    const now = BigInt(Date.now()) * 1000000n;
    assert.ok(now - root.start < 60n * 1000000000n, 'start time is now-ish (ns since the epoch)');

    const post = col.accepted().find((p) => p.decoded.resources.some((r) => r.scopes.some((s) => s.spans.some(byTrace(traceId)))));
    assert.equal(post.method, 'POST');
    assert.equal(post.url, '/v1/traces');
    assert.equal(post.headers['content-type'], 'application/x-protobuf');
    assert.equal(post.headers['x-collector-token'], 'test-token-123');
    const r0 = post.decoded.resources[0];
    assert.equal(r0.attributes['service.name'], 'kong');
    assert.equal(r0.attributes['deployment.environment'], 'e2e');
    assert.match(r0.attributes['service.instance.id'], /^[0-9a-f-]{36}$/);
    assert.ok(r0.attributes['service.version']);
    assert.equal(r0.scopes[0].name, 'kong-internal');
});

test('protoc --decode parses what sluice sent with the repository\'s otlp.proto', { skip: spawnSync('protoc', ['--version']).status !== 0 && 'protoc (Debian protobuf-compiler) not installed' }, () => {
    const post = col.accepted()[0];
    assert.ok(post, 'a body was received');
    const r = spawnSync('protoc', ['--decode=opentelemetry.proto.trace.v1.ExportTraceServiceRequest',
        '--proto_path', path.join(ROOT, 'plugins/opentelemetry'), 'otlp.proto'], { input: post.body });
    assert.equal(r.status, 0, r.stderr.toString());
    const text = r.stdout.toString();
    assert.match(text, /name: "kong"/);
    assert.match(text, /kind: SPAN_KIND_SERVER/);
    assert.match(text, /key: "service.name"/);
});

test('without trace context a new trace starts, sampled, and is injected as w3c', async () => {
    up.seen.length = 0;
    const res = await req(gw.port, { path: '/plain/new' });
    assert.equal(res.status, 200);
    const tid = res.headers['x-trace-id'];
    assert.match(tid, /^[0-9a-f]{32}$/);
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(up.seen[0].headers.traceparent);
    assert.ok(m);
    assert.equal(m[1], tid);
    const root = (await waitSpans((s) => s.traceId === tid && s.name === 'kong', 'root'))[0];
    assert.equal(root.parentSpanId, '', 'a root without parent');
    // the log record carries Kong's trace_id value
    const rec = await waitRecord(logPath, (x) => x.trace_id?.w3c === tid);
    assert.ok(rec, 'file-log record with trace_id.w3c');
});

test('an unsampled parent is followed: nothing exported, the flag propagated', async () => {
    const traceId = 'aaaabbbbccccddddeeeeffff00001111';
    up.seen.length = 0;
    await req(gw.port, { path: '/plain/unsampled', headers: { traceparent: `00-${traceId}-1111222233334444-00` } });
    assert.match(up.seen[0].headers.traceparent, new RegExp(`^00-${traceId}-[0-9a-f]{16}-00$`));
    await sleep(600);
    assert.equal(col.spans().filter(byTrace(traceId)).length, 0);
});

test('a request refused by an earlier plugin (key-auth 401) still has its kong span, without an upstream one', async () => {
    up.seen.length = 0;
    const traceId = '11112222333344445555666677778888';
    const res = await req(gw.port, { path: '/locked/x', headers: { traceparent: `00-${traceId}-0123456789abcdef-01` } });
    assert.equal(res.status, 401);
    assert.equal(res.headers['x-trace-id'], traceId);
    assert.equal(up.seen.length, 0);
    const root = (await waitSpans((s) => s.traceId === traceId && s.name === 'kong', '401 root'))[0];
    assert.equal(root.attributes['http.status_code'], 401);
    assert.equal(root.parentSpanId, '0123456789abcdef');
    await sleep(300);
    assert.deepEqual(col.spans().filter(byTrace(traceId)).map((s) => s.name), ['kong']);
});

test('attribute strings are valid UTF-8 whatever the request path holds', async () => {
    up.seen.length = 0;
    const res = await req(gw.port, { path: '/plain/caf%C3%A9/%FF%FE/x?q=%FF' });
    const tid = res.headers['x-trace-id'];
    const root = (await waitSpans((s) => s.traceId === tid && s.name === 'kong', 'utf-8 root'))[0];
    const url = root.attributes['http.url'];
    assert.ok(!url.includes('\uFFFD'), `a valid UTF-8 string was sent: ${JSON.stringify(url)}`);
    assert.match(url, /^http:\/\/127\.0\.0\.1\/plain\/caf/);
});

test('a failed try and its retry: one kong.balancer span each, the upstream sees the last one as parent', async () => {
    // round-robin over a dead target and the echo: some request's first try fails
    const ids = [];
    up.seen.length = 0;
    for (let i = 0; i < 4; i++) {
        const tid = `c0ffee${String(i).padStart(2, '0')}` + '0'.repeat(23) + '1';
        ids.push(tid);
        const res = await req(gw.port, { path: `/flaky/t${i}`, headers: { traceparent: `00-${tid}-0102030405060708-01` } });
        assert.equal(res.status, 200);
    }
    for (const tid of ids) {
        await waitSpans((s) => s.traceId === tid && s.name === 'kong', `root of ${tid}`);
        await waitSpans((s) => s.traceId === tid && s.name === 'kong.balancer', `balancer of ${tid}`);
    }
    let found = 0;
    for (const tid of ids) {
        const bal = col.spans().filter((s) => s.traceId === tid && s.name === 'kong.balancer')
            .sort((x, y) => (x.attributes.try_count - y.attributes.try_count));
        const root = col.spans().find((s) => s.traceId === tid && s.name === 'kong');
        assert.ok(root && bal.length >= 1, `spans of ${tid}`);
        const seen = up.seen.find((x) => x.headers.traceparent?.startsWith(`00-${tid}-`));
        assert.equal(seen.headers.traceparent.split('-')[2], bal[bal.length - 1].spanId, 'the upstream\'s parent is the last try');
        for (const b of bal) assert.equal(b.parentSpanId, root.spanId);
        if (bal.length === 2) {
            found++;
            assert.equal(bal[0].status.code, 2, 'the failed try is an error');
            assert.equal(bal[0].status.message, 'connect failed');
            assert.match(bal[0].attributes['net.peer.ip'] ?? '', /^127\.0\.0\.1/);
            assert.equal(bal[1].status.code, 0);
            assert.equal(bal[1].attributes.try_count, 2);
            assert.ok(bal[0].end <= bal[1].start, 'tries in order');
            assert.notEqual(bal[0].spanId, bal[1].spanId);
        }
    }
    assert.ok(found >= 1, 'a request was retried');
});

test('b3 on a route-scoped instance: extracted from X-B3-*, injected as b3 and w3c', async () => {
    const traceId = '463ac35c9f6413ad48485a3953bb6124', sid = 'a2fb4a1d1a96d312';
    up.seen.length = 0;
    const res = await req(gw.port, { path: '/b3/z', headers: { 'x-b3-traceid': traceId, 'x-b3-spanid': sid, 'x-b3-sampled': '1' } });
    assert.equal(res.status, 200);
    const h = up.seen[0].headers;
    assert.equal(h['x-b3-traceid'], traceId);
    assert.match(h['x-b3-spanid'], /^[0-9a-f]{16}$/);
    assert.notEqual(h['x-b3-spanid'], sid);
    assert.equal(h['x-b3-sampled'], '1');
    assert.match(h.traceparent, new RegExp(`^00-${traceId}-${h['x-b3-spanid']}-01$`));
    const root = (await waitSpans((s) => s.traceId === traceId && s.name === 'kong', 'b3 root'))[0];
    assert.equal(root.parentSpanId, sid);
    assert.equal(h['x-b3-parentspanid'], root.spanId);
});

test('a Claude Code request through ai-proxy: the kong.gen_ai span carries the GenAI attributes', async () => {
    const fx = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/fixtures/claude-code/first-turn.json'), 'utf8'));
    const body = fs.readFileSync(path.join(ROOT, 'tests/fixtures/claude-code/first-turn.body.json'));
    const headers = { ...fx.headers, 'x-api-key': 'sk-ant-client', traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    delete headers.host;
    delete headers['content-length'];
    headers['content-length'] = String(body.length);
    await mock.clearRequests();
    const mark = readLog(logPath).length;
    const res = await req(gw.port, { method: 'POST', path: fx.path, headers, body });
    assert.equal(res.status, 200, res.text.slice(0, 300));
    assert.match(res.text, /message_stop/);

    const up0 = (await mock.chatRequests())[0];
    assert.match(up0.headers.traceparent, /^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);

    const gen = (await waitSpans((s) => s.traceId === '0af7651916cd43dd8448eb211c80319c' && s.name === 'kong.gen_ai', 'kong.gen_ai'))[0];
    for (const name of ['kong', 'kong.balancer'])
        await waitSpans((s) => s.traceId === '0af7651916cd43dd8448eb211c80319c' && s.name === name, name);
    const all = col.spans().filter(byTrace('0af7651916cd43dd8448eb211c80319c'));
    const root = all.find((s) => s.name === 'kong');
    const bal = all.find((s) => s.name === 'kong.balancer');
    assert.equal(bal.spanId, up0.headers.traceparent.split('-')[2]);
    assert.equal(gen.kind, 3);
    assert.equal(gen.parentSpanId, root.spanId);

    const rec = await waitRecord(logPath, (x, i) => i >= mark && x.request.uri === fx.path);
    const usage = rec.ai.proxy.usage, meta = rec.ai.proxy.meta;
    const a = gen.attributes;
    assert.equal(a['gen_ai.operation.name'], 'chat');
    assert.equal(a['gen_ai.provider.name'], 'dashscope');
    assert.equal(a['gen_ai.system'], 'dashscope');
    assert.equal(a['gen_ai.request.model'], meta.request_model);
    assert.equal(a['gen_ai.response.model'], meta.response_model);
    assert.equal(a['gen_ai.usage.input_tokens'], usage.prompt_tokens);
    assert.equal(a['gen_ai.usage.output_tokens'], usage.completion_tokens);
    assert.ok(usage.completion_tokens > 0);
    assert.equal(a['gen_ai.request.max_tokens'], 8192);
    assert.equal(a['gen_ai.request.temperature'], 1.0);
    assert.equal(a['gen_ai.request.stream'], true);
    assert.deepEqual(a['gen_ai.response.finish_reasons'], ['end_turn']);
    assert.equal(typeof a['gen_ai.response.time_to_first_chunk'], 'number');
    assert.ok(gen.start >= root.start && gen.end <= root.end);
});

test('spans are batched: one POST carries many', async () => {
    col.clear();
    const n = 15;
    await Promise.all(Array.from({ length: n }, (_, i) => req(gw.port, { path: `/plain/batch${i}` })));
    const end = Date.now() + 5000;
    while (col.spans().filter((s) => /\/plain\/batch/.test(s.attributes['http.url'] ?? '')).length < n && Date.now() < end) await sleep(50);
    const roots = col.spans().filter((s) => s.name === 'kong' && /\/plain\/batch/.test(s.attributes['http.url'] ?? ''));
    assert.equal(roots.length, n);
    const posts = col.accepted();
    const sizes = posts.map((p) => p.decoded.resources[0].scopes[0].spans.length);
    assert.ok(posts.length < n, `${posts.length} POSTs for ${2 * n} spans: ${sizes}`);
    assert.ok(Math.max(...sizes) <= 20, 'max_batch_size respected');
    assert.ok(Math.max(...sizes) > 2, `batches: ${sizes}`);
});

test('values that repeat are encoded once and reused, never stale: each span keeps its own request\'s', async () => {
    // a worker keeps the last encoding of each attribute and of each span's
    // name, kind and repeating attributes; alternating values must each
    // reach their own span
    const cases = [];
    for (let i = 0; i < 12; i++) {
        const c = { method: ['GET', 'POST', 'DELETE'][i % 3], host: i % 2 ? 'a.example' : 'b.example',
            status: [200, 404, 201, 200][i % 4], path: `/plain/alt${i}` };
        const res = await req(gw.port, { method: c.method, path: `${c.path}?status=${c.status}`, headers: { host: c.host } });
        assert.equal(res.status, c.status);
        cases.push({ ...c, tid: res.headers['x-trace-id'] });
    }
    for (const c of cases) {
        const spans = await waitSpans((s) => s.traceId === c.tid, `spans of ${c.path}`);
        const end = Date.now() + 5000;
        while (col.spans().filter(byTrace(c.tid)).length < 2 && Date.now() < end) await sleep(50);
        const root = col.spans().find((s) => s.traceId === c.tid && s.name === 'kong');
        const bal = col.spans().find((s) => s.traceId === c.tid && s.name === 'kong.balancer');
        assert.ok(root && bal, `${c.path}: ${spans.map((s) => s.name)}`);
        assert.equal(root.kind, 2);
        assert.equal(bal.kind, 3);
        assert.equal(root.attributes['http.method'], c.method, c.path);
        assert.equal(root.attributes['http.host'], c.host, c.path);
        assert.equal(root.attributes['http.status_code'], c.status, c.path);
        assert.equal(root.attributes['http.url'], `http://${c.host}${c.path}?status=${c.status}`);
        assert.equal(bal.attributes.try_count, 1);
        assert.equal(bal.parentSpanId, root.spanId);
    }
});

async function metrics() {
    const r = await req(statusPort, { path: '/metrics' });
    const m = {};
    for (const line of r.text.split('\n')) {
        if (line.startsWith('sluice_opentelemetry')) {
            const i = line.lastIndexOf(' ');
            m[line.slice(0, i)] = Number(line.slice(i + 1));
        }
    }
    return m;
}

test('a slow collector: batches leave from the front of the queue while new spans come in at its end, and every span leaves intact', async () => {
    // each answer waits 20 ms, one batch of 5 is in flight at a time and
    // the queue holds 30 spans (~800 bytes each with their long URL), so
    // while 300 requests come in the spans pile up to the end of the
    // queue's buffer with room freed at its front: the waiting spans move
    // there, again and again (the rest is dropped, counted)
    const col3 = await startCollector();
    col3.st.delayMs = 20;
    const cfg = `_format_version: "3.0"
services:
  - name: plain
    url: http://127.0.0.1:${up.port}/echo
    routes:
      - name: plain
        paths: ["/plain"]
plugins:
  - name: opentelemetry
    config:
      traces_endpoint: "${col3.url}"
      queue:
        max_batch_size: 5
        max_coalescing_delay: 0.01
        max_entries: 30
`;
    const gw3 = await startGateway({ config: cfg, workers: 1 });
    try {
        const pad = 'p'.repeat(500);
        const n = 300;
        for (let i = 0; i < n; i++) await req(gw3.port, { path: `/plain/slow${i}/${pad}` });
        // what is queued leaves: wait until no batch came for 500 ms
        for (let last = -1, t0 = Date.now(); Date.now() - t0 < 15000; await sleep(500)) {
            if (col3.st.posts.length === last) break;
            last = col3.st.posts.length;
        }
        const bad = col3.st.posts.filter((p) => p.error);
        assert.equal(bad.length, 0, `undecodable batches: ${bad.map((p) => p.error)}`);
        const spans = col3.spans();
        const roots = spans.filter((s) => s.name === 'kong');
        // How many leave depends on how fast the requests came (the rest is
        // dropped); whatever the timing, the 30 spans queued at the end and
        // the batches sent while requests came leave: at least 15 roots.
        assert.ok(roots.length >= 15, `root spans exported: ${roots.length}`);
        const ours = new Set(Array.from({ length: n }, (_, i) => `http://127.0.0.1/plain/slow${i}/${pad}`));
        const seen = new Set();
        for (const r of roots) {
            const u = r.attributes['http.url'];
            assert.ok(ours.has(u), `an intact URL: ${String(u).slice(0, 80)}`);
            assert.ok(!seen.has(u), `exported once: ${u.slice(0, 40)}`);
            seen.add(u);
            assert.equal(r.attributes['http.method'], 'GET');
        }
        const byTraceId = new Map(roots.map((s) => [s.traceId, s]));
        const bals = spans.filter((s) => s.name === 'kong.balancer');
        assert.ok(bals.length >= 15, `balancer spans exported: ${bals.length}`);
        assert.ok(roots.length + bals.length >= 35, `spans exported: ${roots.length + bals.length}`);
        for (const b of bals) {
            const r = byTraceId.get(b.traceId);
            if (r) assert.equal(b.parentSpanId, r.spanId, 'a balancer span under its own root');
            assert.equal(b.attributes.try_count, 1);
        }
        assert.ok(Math.max(...col3.st.posts.map((p) => p.decoded.resources[0].scopes[0].spans.length)) <= 5);
    } finally {
        await gw3.stop();
        await col3.stop();
    }
});

test('a collector that fails, then stalls: requests stay fast, drops are counted, export recovers', async () => {
    // a second gateway with a small queue and short retries; a stalled
    // collector holds its one batch for the whole stalled burst however slow
    // the machine (read_timeout), so the queue fills and drops
    const col2 = await startCollector();
    const sp = await freePort();
    const small = `
      traces_endpoint: "${col2.url}"
      connect_timeout: 200
      send_timeout: 200
      read_timeout: ${slow(20000)}
      queue:
        max_batch_size: 10
        max_coalescing_delay: 0.05
        max_entries: 20
        max_retry_time: 0.5
        initial_retry_delay: 0.05
        max_retry_delay: 0.1`;
    const cfg = `_format_version: "3.0"
services:
  - name: plain
    url: http://127.0.0.1:${up.port}/echo
    routes:
      - name: plain
        paths: ["/plain"]
plugins:
  - name: opentelemetry
    config:${small}
`;
    const gw2 = await startGateway({ config: cfg, workers: 1, env: { SLUICE_STATUS_LISTEN: String(sp) } });
    const started = Date.now();
    const m2 = async () => {
        const r = await req(sp, { path: '/metrics' });
        const m = {};
        for (const line of r.text.split('\n')) {
            if (line.startsWith('sluice_opentelemetry')) {
                const i = line.lastIndexOf(' ');
                m[line.slice(0, i)] = Number(line.slice(i + 1));
            }
        }
        return m;
    };
    try {
        const burst = async (n, tag) => {
            const lat = [];
            for (let i = 0; i < n; i++) lat.push((await req(gw2.port, { path: `/plain/${tag}${i}` })).ms);
            lat.sort((a, b) => a - b);
            return lat[Math.floor(lat.length * 0.99) - 1] ?? lat[lat.length - 1];
        };
        const base = await burst(50, 'warm');

        col2.mode = 'fail';
        const pFail = await burst(100, 'fail');
        // past max_retry_time (0.5 s) the batches in flight are given up
        let m = {};
        for (const end = Date.now() + slow(15000); Date.now() < end; await sleep(100)) {
            m = await m2();
            if (m['sluice_opentelemetry_export_errors_total'] > 0 &&
                m['sluice_opentelemetry_spans_dropped_total{reason="export_failed"}'] > 0) break;
        }
        assert.ok(m['sluice_opentelemetry_export_errors_total'] > 0, JSON.stringify(m));
        assert.ok(m['sluice_opentelemetry_spans_dropped_total{reason="export_failed"}'] > 0, JSON.stringify(m));
        assert.ok(m['sluice_opentelemetry_spans_dropped_total{reason="queue_full"}'] > 0, JSON.stringify(m));

        col2.mode = 'stall';
        const pStall = await burst(100, 'stall');
        m = await m2();
        const dropped = m['sluice_opentelemetry_spans_dropped_total{reason="queue_full"}'];
        assert.ok(dropped >= 60, `queue bounded at max_entries: ${JSON.stringify(m)}`);
        // the proxy did not wait for the collector (retries take 0.5 s, a
        // stalled answer seconds; a loaded machine adds tens of ms)
        assert.ok(pFail < Math.max(slow(200), base * 5), `p99 with a failing collector ${pFail.toFixed(1)} ms (base ${base.toFixed(1)})`);
        assert.ok(pStall < Math.max(slow(500), base * 5), `p99 with a stalled collector ${pStall.toFixed(1)} ms (base ${base.toFixed(1)})`);
        const stalledPosts = col2.st.posts.filter((p) => p.mode === 'stall').length;
        assert.ok(stalledPosts <= 10, `one batch at a time while stalled: ${stalledPosts} POSTs`);
        assert.match(gw2.stderr, /exporting to http.*dropped with the queue full/);

        col2.mode = 'ok'; // the stalled answer is cut: retried or dropped
        col2.clear();
        // Until the stalled batch is answered or cut (read_timeout at worst)
        // the queue may still be full, so a new request's span can be
        // dropped: requests keep coming until one of theirs is exported.
        const isBack = (s) => /\/plain\/back/.test(s.attributes['http.url'] ?? '');
        const end = Date.now() + slow(20000) + slow(10000);
        for (let k = 0; !col2.spans().some(isBack) && Date.now() < end; k++) {
            await burst(5, `back${k}-`);
            for (const e = Date.now() + 1000; Date.now() < e && !col2.spans().some(isBack);) await sleep(50);
        }
        assert.ok(col2.spans().some(isBack),
            `export recovered: ${JSON.stringify(await m2())} posts ${JSON.stringify(col2.st.posts.map((p) => [p.mode, p.decoded?.resources[0].scopes[0].spans.length, p.error]))}\n${gw2.stderr}`);
        const after = await m2();
        assert.ok(after['sluice_opentelemetry_spans_exported_total'] > m['sluice_opentelemetry_spans_exported_total']);
        const lines = gw2.stderr.split('\n').filter((l) => /exporting to http.*dropped/.test(l));
        // each kind of trouble said at once, then one line per 10 s at most
        // (a loaded machine makes the test last longer)
        const most = 3 + Math.ceil((Date.now() - started) / 10000);
        assert.ok(lines.length <= most, `drop log is rate-limited: ${lines.length} lines (at most ${most})`);
    } finally {
        await gw2.stop();
        await col2.stop();
    }
});

test('/metrics on the main gateway shows exported spans and no drops', async () => {
    const m = await metrics();
    assert.ok(m['sluice_opentelemetry_spans_exported_total'] > 0, JSON.stringify(m));
    assert.equal(m['sluice_opentelemetry_spans_dropped_total{reason="queue_full"}'], 0);
});
