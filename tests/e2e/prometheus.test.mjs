// prometheus.test.mjs - end-to-end: the status listener (status_listen) and
// the prometheus plugin (Kong's metric names) on the how-to stack (ai-proxy
// to the mock DashScope, two workers).  A known mix of requests, then
// /metrics is checked value by value against the file-log records (the same
// numbers Kong's exporter reads), `promtool check metrics` parses it, and a
// real Prometheus server started here scrapes sluice and answers a query
// for kong_ai_llm_tokens_total.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import {
    startMock, howtoConfig, startGateway, tmpDir, freePort, waitLog, startProcess, sleep, slow,
} from './harness.mjs';

let mock, gw, logPath, statusPort;

const PROM = `
  - name: prometheus
    config:
      per_consumer: true
      status_code_metrics: true
      latency_metrics: true
      bandwidth_metrics: true
      upstream_health_metrics: true
      ai_metrics: true
`;

before(async () => {
    mock = await startMock();
    const dir = tmpDir('sluice-prom-');
    logPath = path.join(dir, 'claude.json');
    statusPort = await freePort();
    gw = await startGateway({
        config: howtoConfig({ upstreamUrl: mock.url, logPath, extra: PROM }),
        workers: 2,
        env: { DECK_DASHSCOPE_API_KEY: mock.key, SLUICE_STATUS_LISTEN: String(statusPort) },
    });
});

after(async () => {
    await gw?.stop();
    await mock?.stop();
});

// One request on a fresh connection (so both workers get some).
function req(port, { method = 'GET', path: p = '/', body, headers = {} } = {}) {
    return new Promise((resolve, reject) => {
        const r = http.request({
            host: '127.0.0.1', port, method, path: p, agent: false,
            headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
        }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => { text += d; });
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
        });
        r.on('error', reject);
        if (body) r.write(typeof body === 'string' ? body : JSON.stringify(body));
        r.end();
    });
}

// "name{labels}" -> value, for samples of the exposition text.
function samples(text) {
    const m = new Map();
    for (const line of text.split('\n')) {
        if (!line || line.startsWith('#')) continue;
        const i = line.lastIndexOf(' ');
        m.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
    return m;
}

const AI = 'ai_provider="dashscope",ai_model="qwen-plus",cache_status="",vector_db="",' +
    'embeddings_provider="",embeddings_model=""';
const SR = 'service="example-service",route="example-route"';

test('status listener: /status, /status/ready, /metrics; not on the proxy port', async () => {
    const s = await req(statusPort, { path: '/status' });
    assert.equal(s.status, 200);
    const j = JSON.parse(s.text);
    for (const k of ['connections_accepted', 'connections_handled', 'total_requests',
        'connections_active', 'connections_reading', 'connections_writing', 'connections_waiting']) {
        assert.equal(typeof j.server[k], 'number', k);
    }
    assert.match(j.configuration_hash, /^[0-9a-f]{32}$/);
    assert.ok(j.memory.lua_shared_dicts.prometheus_metrics.capacity);
    const ready = await req(statusPort, { path: '/status/ready' });
    assert.equal(ready.status, 200);
    assert.equal(JSON.parse(ready.text).message, 'ready');
    assert.equal((await req(statusPort, { path: '/nope' })).status, 404);
    assert.equal((await req(statusPort, { method: 'POST', path: '/metrics' })).status, 405);
    // The proxy listener routes /metrics and /status like any path: no route.
    assert.equal((await req(gw.port, { path: '/metrics' })).status, 404);
    assert.equal((await req(gw.port, { path: '/status' })).status, 404);
    // The status listener is never proxied.
    assert.equal((await req(statusPort, { path: '/anything/v1/messages' })).status, 404);
});

test('a known mix of requests over two workers: exact values; promtool; a real Prometheus', { timeout: slow(60000) }, async () => {
    const N_CHAT = 6, N_STREAM = 3, N_BAD = 2;
    const before = (await fetch(`http://127.0.0.1:${statusPort}/status`).then((r) => r.json())).server;
    for (let i = 0; i < N_CHAT; i++) {
        const r = await req(gw.port, {
            method: 'POST', path: '/anything/v1/messages',
            body: { model: 'qwen-plus', max_tokens: 100, messages: [{ role: 'user', content: `hello ${i}` }] },
        });
        assert.equal(r.status, 200, r.text);
    }
    for (let i = 0; i < N_STREAM; i++) {
        const r = await req(gw.port, {
            method: 'POST', path: '/anything/v1/messages',
            body: { model: 'qwen-plus', max_tokens: 100, stream: true, messages: [{ role: 'user', content: `stream ${i}` }] },
        });
        assert.equal(r.status, 200, r.text);
    }
    for (let i = 0; i < N_BAD; i++) {
        const r = await req(gw.port, { method: 'POST', path: '/anything/v1/messages', body: '{not json' });
        assert.equal(r.status, 400);
    }
    await req(gw.port, { path: '/no-route' }); // no route: not recorded (Kong)
    // The log also holds earlier tests' unrouted requests, and two workers
    // append in any order: wait for this test's routed records themselves.
    let routed = [];
    for (const t0 = Date.now(); Date.now() - t0 < slow(10000); await sleep(25)) {
        routed = (await waitLog(logPath, 0)).filter((r) => r.route);
        if (routed.length >= N_CHAT + N_STREAM + N_BAD) break;
    }
    assert.equal(routed.length, N_CHAT + N_STREAM + N_BAD);

    const text = (await req(statusPort, { path: '/metrics' })).text;
    const m = samples(text);
    const L = `${SR},workspace="default"`;
    // kong_http_requests_total: one series per status code
    assert.equal(m.get(`kong_http_requests_total{${SR},code="200",source="service",workspace="default",consumer=""}`), N_CHAT + N_STREAM);
    assert.equal(m.get(`kong_http_requests_total{${SR},code="400",source="kong",workspace="default",consumer=""}`), N_BAD);
    // histograms: counts and sums from the records' latencies
    const sum = (f) => routed.reduce((a, r) => a + f(r), 0);
    assert.equal(m.get(`kong_request_latency_ms_count{${L}}`), routed.length);
    assert.equal(m.get(`kong_request_latency_ms_bucket{${L},le="+Inf"}`), routed.length);
    assert.equal(m.get(`kong_request_latency_ms_sum{${L}}`), sum((r) => r.latencies.request));
    assert.equal(m.get(`kong_kong_latency_ms_count{${L}}`), routed.length);
    assert.equal(m.get(`kong_upstream_latency_ms_count{${L}}`), routed.filter((r) => r.latencies.proxy >= 0).length);
    // bandwidth: the records' sizes
    assert.equal(m.get(`kong_bandwidth_bytes{${SR},direction="ingress",workspace="default",consumer=""}`), sum((r) => r.request.size));
    assert.equal(m.get(`kong_bandwidth_bytes{${SR},direction="egress",workspace="default",consumer=""}`), sum((r) => r.response.size));
    // AI metrics from ai.proxy.usage / meta
    const ai = routed.filter((r) => r.ai?.proxy?.usage);
    assert.equal(ai.length, N_CHAT + N_STREAM);
    assert.equal(m.get(`kong_ai_llm_requests_total{${AI},workspace="default"}`), ai.length);
    for (const t of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
        const want = ai.reduce((a, r) => a + r.ai.proxy.usage[t], 0);
        assert.ok(want > 0);
        assert.equal(m.get(`kong_ai_llm_tokens_total{${AI},token_type="${t}",workspace="default"}`), want, t);
    }
    assert.equal(m.get(`kong_ai_llm_provider_latency_ms_count{${AI},workspace="default"}`), ai.length);
    assert.equal(m.get('kong_nginx_metric_errors_total'), 0);
    // node gauges
    assert.ok([...m.keys()].some((k) => /^kong_node_info\{node_id="[0-9a-f-]{36}",version="/.test(k)));
    const reqs = [...m.entries()].find(([k]) => k.startsWith('kong_nginx_requests_total{'))[1];
    assert.ok(reqs >= before.total_requests + routed.length + 1, `${reqs}`);
    assert.ok(m.get('kong_memory_lua_shared_dict_total_bytes{node_id="' +
        /node_id="([^"]+)"/.exec(text)[1] + '",shared_dict="prometheus_metrics",kong_subsystem="http"}') > 0);
    // one HELP/TYPE per family
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    assert.equal(new Set(types).size, types.length);

    // promtool parses it; Kong's own names only draw its naming lints.
    const pt = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.ok(pt.status === 0 || pt.status === 3, `promtool: ${pt.status} ${pt.stdout}${pt.stderr}`);
    for (const line of (pt.stdout + pt.stderr).split('\n').filter(Boolean)) {
        assert.match(line, /should have "_total" suffix|should not contain abbreviated units|should not have "_total" suffix/, line);
    }

    // A real Prometheus scrapes the status listener.
    const want = ai.reduce((a, r) => a + r.ai.proxy.usage.total_tokens, 0);
    const pdir = tmpDir('sluice-prometheus-');
    const pport = await freePort();
    fs.writeFileSync(path.join(pdir, 'prometheus.yml'),
        `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n` +
        `  - job_name: sluice\n    static_configs:\n      - targets: ['127.0.0.1:${statusPort}']\n`);
    const prom = startProcess('prometheus', [
        `--config.file=${path.join(pdir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(pdir, 'data')}`,
        `--web.listen-address=127.0.0.1:${pport}`, '--log.level=warn',
    ]);
    try {
        const api = `http://127.0.0.1:${pport}/api/v1`;
        let up = null, value = null;
        for (let t0 = Date.now(); Date.now() - t0 < 60000 && (up !== 'up' || value !== want);) {
            await sleep(200);
            try {
                const targets = await fetch(`${api}/targets`).then((r) => r.json());
                up = targets.data.activeTargets[0]?.health ?? null;
                const q = encodeURIComponent('sum(kong_ai_llm_tokens_total{token_type="total_tokens"})');
                const r = await fetch(`${api}/query?query=${q}`).then((x) => x.json());
                value = r.data.result.length ? Number(r.data.result[0].value[1]) : null;
            } catch { /* not up yet */ }
        }
        assert.equal(up, 'up', `target health; prometheus stderr:\n${prom.stderr}`);
        assert.equal(value, want);
    } finally {
        await prom.stop();
        fs.rmSync(pdir, { recursive: true, force: true });
    }
});

test('connections_reading: a request whose head is still arriving, as nginx counts it', async () => {
    const status = async () => JSON.parse((await req(statusPort, { path: '/status' })).text).server;
    const gauge = async (state) => {
        const t = (await req(statusPort, { path: '/metrics' })).text;
        const m = new RegExp(`^kong_nginx_connections_total\\{[^}]*state="${state}"[^}]*\\} (\\d+)$`, 'm').exec(t);
        return m ? Number(m[1]) : null;
    };
    const before = await status();
    assert.equal(before.connections_reading, 0);
    const sock = net.connect({ port: gw.port, host: '127.0.0.1' });
    await new Promise((r) => sock.once('connect', r));
    let answer = '';
    sock.on('data', (d) => { answer += d; });
    sock.write('GET /anything/slow-head HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Part: 1\r\n');
    let s;
    for (const end = Date.now() + slow(10000); Date.now() < end; await sleep(20)) {
        s = await status();
        if (s.connections_reading >= 1) break;
    }
    assert.equal(s.connections_reading, 1, JSON.stringify(s));
    assert.equal(await gauge('reading'), 1);
    assert.equal(s.connections_active, s.connections_reading + s.connections_writing + s.connections_waiting);
    sock.write('\r\n');
    for (const end = Date.now() + slow(10000); Date.now() < end && !/\r\n\r\n/.test(answer);) await sleep(20);
    assert.match(answer, /^HTTP\/1\.1 \d{3}/);
    s = await status();
    assert.equal(s.connections_reading, 0, JSON.stringify(s));
    assert.ok(s.connections_waiting >= 1, 'the answered keep-alive connection is waiting');
    sock.destroy();
});
