// upstreams.test.mjs - Kong's upstreams and targets (docs/upstream.md):
// weighted round-robin, consistent hashing, failover to another target on
// a refused connection, passive health checks marking a target down and
// active checks bringing it back, active probes counted per node (not per
// worker), the all-unhealthy 503, and health kept across a reload.  Targets
// are real HTTP servers on loopback; each answers with its name.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { startSluice, runSluice, request, waitFor, sleep, freePort, tmpDir, slow } from './helpers.mjs';

const servers = [];
after(async () => { for (const s of servers) await s.close(); });

// A target: answers `name` on every path; /health answers health.status.
// Counts proxied requests and health probes.
function target(name, port = 0) {
    const st = { name, hits: 0, probes: 0, healthStatus: 200, hosts: [], sockets: new Set() };
    const server = http.createServer((req, res) => {
        if (req.url === '/health') {
            st.probes++;
            res.writeHead(st.healthStatus);
            res.end('health');
            return;
        }
        if (req.url.startsWith('/x')) { // not startSluice's readiness request
            st.hits++;
            st.hosts.push(req.headers.host);
        }
        res.writeHead(st.status ?? 200, { 'x-target': name });
        res.end(name);
    });
    server.on('connection', (s) => { st.sockets.add(s); s.on('close', () => st.sockets.delete(s)); });
    return new Promise((resolve) => server.listen(port, '127.0.0.1', () => {
        st.port = server.address().port;
        st.close = () => new Promise((r) => {
            for (const s of st.sockets) s.destroy();
            server.close(() => r());
        });
        servers.push(st);
        resolve(st);
    }));
}

function config(upstream, { retries = 5, log, prometheus } = {}) {
    const plugins = [];
    if (log) plugins.push(`- name: file-log\n  config: {path: ${log}}`);
    if (prometheus) plugins.push('- name: prometheus\n  config: {upstream_health_metrics: true}');
    return `_format_version: "3.0"
services:
- name: svc
  host: pool.internal
  retries: ${retries}
  connect_timeout: 2000
  routes: [{name: r, paths: ["/"]}]
upstreams:
- name: pool.internal
${upstream.trim().split('\n').map((l) => '  ' + l).join('\n')}
${plugins.length ? `plugins:\n${plugins.join('\n')}\n` : ''}`;
}

async function many(port, n, headers = {}) {
    const out = [];
    for (let i = 0; i < n; i++)
        out.push(await request(port, { path: '/x', headers: typeof headers === 'function' ? headers(i) : headers }));
    return out;
}

function records(file) {
    const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

test('config errors name the file, line and key path', async () => {
    const dir = tmpDir();
    const f = path.join(dir, 'bad.yaml');
    fs.writeFileSync(f, `_format_version: "3.0"
upstreams:
- name: pool.internal
  hash_on: header
  healthchecks:
    active:
      type: grpc
      unhealthy: {tcp_failures: 300}
  targets:
  - {target: "127.0.0.1:0"}
  - {target: 127.0.0.1:8080, weight: 70000}
- name: 10.0.0.1
targets:
- {target: 127.0.0.1:9, upstream: nowhere}
`);
    const r = await runSluice(['-t', '-d', f]);
    assert.equal(r.code, 1);
    const e = r.stderr;
    assert.match(e, /bad\.yaml:3: upstreams\[0\]\.hash_on_header: required field missing/);
    assert.match(e, /bad\.yaml:7: upstreams\[0\]\.healthchecks\.active\.type: 'grpc' health checks are not supported/);
    assert.match(e, /bad\.yaml:8: upstreams\[0\]\.healthchecks\.active\.unhealthy\.tcp_failures: value should be between 0 and 255/);
    assert.match(e, /bad\.yaml:10: upstreams\[0\]\.targets\[0\]\.target: Invalid target \('127\.0\.0\.1:0'\)/);
    assert.match(e, /bad\.yaml:11: upstreams\[0\]\.targets\[1\]\.weight: value should be between 0 and 65535/);
    assert.match(e, /bad\.yaml:12: upstreams\[1\]\.name: Invalid name \('10\.0\.0\.1'\); no ip addresses allowed/);
    assert.match(e, /bad\.yaml:14: targets\[0\]\.upstream: upstream 'nowhere' not found/);
});

test('round-robin follows the weights; weight 0 is never used', async () => {
    const [a, b, c] = await Promise.all([target('a'), target('b'), target('c')]);
    const g = await startSluice(config(`
targets:
- {target: 127.0.0.1:${a.port}, weight: 300}
- {target: 127.0.0.1:${b.port}, weight: 100}
- {target: 127.0.0.1:${c.port}, weight: 0}
`), { workers: 2 });
    try {
        const rs = await many(g.port, 400);
        assert.ok(rs.every((r) => r.status === 200));
        assert.equal(c.hits, 0);
        // smooth weighted round-robin per worker: 3:1 within a cycle per worker
        assert.ok(a.hits >= 290 && a.hits <= 310, `a ${a.hits} b ${b.hits}`);
        assert.equal(a.hits + b.hits, 400);
        // the Host header names the target (Kong's balancer hostname)
        assert.equal(a.hosts[0], `127.0.0.1:${a.port}`);
    } finally { await g.stop(); }
});

test('consistent hashing on a header is sticky, falls back, and spreads keys', async () => {
    const ts = await Promise.all([target('a'), target('b'), target('c')]);
    const g = await startSluice(config(`
hash_on: header
hash_on_header: x-user
hash_fallback: query_arg
hash_fallback_query_arg: user
host_header: api.internal
targets:
${ts.map((t) => `- {target: 127.0.0.1:${t.port}}`).join('\n')}
`), { workers: 2 });
    try {
        const seen = new Map();
        for (let round = 0; round < 3; round++) {
            for (let u = 0; u < 30; u++) {
                const r = await request(g.port, { path: '/x', headers: { 'x-user': `user-${u}` } });
                assert.equal(r.status, 200);
                const t = r.headers['x-target'];
                if (seen.has(u)) assert.equal(t, seen.get(u), `user-${u} moved`);
                seen.set(u, t);
            }
        }
        assert.ok(new Set(seen.values()).size >= 2, 'keys spread over several targets');
        // the fallback (query arg) hashes like the header with the same value
        for (const u of [0, 7, 21]) {
            const r = await request(g.port, { path: `/x?user=user-${u}` });
            assert.equal(r.headers['x-target'], seen.get(u));
        }
        assert.ok(ts.every((t) => t.hosts.every((h) => h === `api.internal:${t.port}`)));
    } finally { await g.stop(); }
});

test('consistent hashing on a cookie sets the cookie and sticks to it', async () => {
    const ts = await Promise.all([target('a'), target('b')]);
    const g = await startSluice(config(`
hash_on: cookie
hash_on_cookie: sticky
targets:
${ts.map((t) => `- {target: 127.0.0.1:${t.port}}`).join('\n')}
`), { workers: 2 });
    try {
        const r = await request(g.port, { path: '/x' });
        const sc = r.headers['set-cookie']?.[0] ?? '';
        assert.match(sc, /^sticky=[0-9a-f-]{36}; Path=\/; Same-Site=Lax; HttpOnly$/);
        const cookie = sc.split(';')[0];
        const first = r.headers['x-target'];
        for (let i = 0; i < 10; i++) {
            const r2 = await request(g.port, { path: '/x', headers: { cookie: `a=b; ${cookie}` } });
            assert.equal(r2.headers['x-target'], first);
            assert.equal(r2.headers['set-cookie'], undefined);
        }
    } finally { await g.stop(); }
});

test('a refused target: the next try goes to another target, every try in the log', async () => {
    const [a, b] = await Promise.all([target('a'), target('b')]);
    const dead = await freePort();
    const dir = tmpDir();
    const log = path.join(dir, 'log.json');
    const g = await startSluice(config(`
targets:
- {target: 127.0.0.1:${dead}}
- {target: 127.0.0.1:${a.port}}
- {target: 127.0.0.1:${b.port}}
`, { retries: 2, log }), { workers: 1 });
    try {
        const rs = await many(g.port, 30);
        assert.ok(rs.every((r) => r.status === 200), rs.map((r) => r.status).join());
        assert.equal(a.hits + b.hits, 30);
        const recs = () => records(log).filter((x) => x.request.uri === '/x');
        await waitFor(() => recs().length === 30, slow(10000));
        const failed = recs().filter((x) => x.tries.length > 1);
        // about one request in three meets the dead target first
        assert.ok(failed.length >= 8 && failed.length <= 12, `${failed.length} requests retried`);
        for (const x of failed) {
            assert.equal(x.tries.length, 2);
            assert.deepEqual([x.tries[0].ip, x.tries[0].port, x.tries[0].state, x.tries[0].code],
                             ['127.0.0.1', dead, 'failed', 502]);
            assert.notEqual(x.tries[1].port, dead);
        }
    } finally { await g.stop(); }
});

test('passive checks mark a target down; active checks bring it back', async () => {
    const a = await target('a');
    const port = await freePort();
    const g = await startSluice(config(`
healthchecks:
  passive:
    unhealthy: {tcp_failures: 2}
  active:
    http_path: /health
    healthy: {interval: 0, successes: 1}
    unhealthy: {interval: 0.2, http_failures: 1}
targets:
- {target: 127.0.0.1:${a.port}}
- {target: 127.0.0.1:${port}}
`, { retries: 3 }), { workers: 2 });
    // healthy targets are not probed (interval 0): only the passive checks
    // can mark the dead one down, however long the start takes
    try {
        // two failed connects (across workers: health is per node) mark it down
        await many(g.port, 8);
        assert.ok(await waitFor(() => /target 127\.0\.0\.1:\d+ is now unhealthy \(passive: tcp failures\)/.test(g.stderr),
            slow(10000)), g.stderr);
        const failures = (g.stderr.match(new RegExp(`upstream 127\\.0\\.0\\.1:${port} failed`, 'g')) ?? []).length;
        assert.equal(failures, 2, 'no try after the second failure');
        await many(g.port, 10);
        assert.equal((g.stderr.match(new RegExp(`upstream 127\\.0\\.0\\.1:${port} failed`, 'g')) ?? []).length, 2);
        // the target comes up: an active probe sees it healthy again
        const b = await target('b', port);
        assert.ok(await waitFor(() => /target 127\.0\.0\.1:\d+ is now healthy \(active: successes\)/.test(g.stderr),
            slow(10000)), g.stderr);
        assert.ok(b.probes >= 1);
        await many(g.port, 20);
        assert.ok(b.hits >= 8, `b got ${b.hits}`);
    } finally { await g.stop(); }
});

test('active checks probe each target once per interval per node, not per worker', async () => {
    const ts = await Promise.all([target('a'), target('b')]);
    const g = await startSluice(config(`
healthchecks:
  active:
    http_path: /health
    healthy: {interval: 0.5}
    unhealthy: {interval: 0.5}
targets:
${ts.map((t) => `- {target: 127.0.0.1:${t.port}}`).join('\n')}
`), { workers: 4 });
    try {
        await sleep(300);
        const p0 = ts.map((t) => t.probes);
        const t0 = Date.now();
        await sleep(3000);
        const ms = Date.now() - t0;   // more than 3 s on a loaded machine
        for (const [i, t] of ts.entries()) {
            const n = t.probes - p0[i];
            // one probe per 0.5 s (a late tick only makes fewer); four
            // workers probing each would be four times as many
            const most = Math.floor(ms / 500) + 1;
            assert.ok(n >= 2 && n <= most, `target ${t.name}: ${n} probes in ${ms} ms (at most ${most})`);
        }
    } finally { await g.stop(); }
});

test('all targets unhealthy: 503 failure to get a peer; health on the status listener', async () => {
    const ts = await Promise.all([target('a'), target('b')]);
    const statusPort = await freePort();
    const health = async () => (await request(statusPort, { path: '/upstreams/pool.internal/health' })).json();
    const g = await startSluice(config(`
healthchecks:
  active:
    http_path: /health
    healthy: {interval: 0.2, successes: 1}
    unhealthy: {interval: 0.2, http_failures: 1}
targets:
${ts.map((t) => `- {target: 127.0.0.1:${t.port}}`).join('\n')}
`, { prometheus: true }), { workers: 2, env: { SLUICE_STATUS_LISTEN: String(statusPort) } });
    // Kong's kong_upstream_target_health: four series per target, the current state 1
    const gauge = async () => {
        const text = (await request(statusPort, { path: '/metrics' })).text;
        const m = {};
        for (const [, target, address, state, v] of text.matchAll(
            /^kong_upstream_target_health\{upstream="pool\.internal",target="([^"]+)",address="([^"]*)",state="(\w+)",subsystem="http"\} (\d)$/gm))
            if (v === '1') m[target] = `${state}@${address}`;
        return m;
    };
    try {
        assert.match((await request(statusPort, { path: '/metrics' })).text,
                     /^# TYPE kong_upstream_target_health gauge$/m);
        const h0 = await health();
        assert.equal(h0.total, 2);
        assert.deepEqual(h0.data.map((d) => [d.target, d.weight, d.health]),
                         ts.map((t) => [`127.0.0.1:${t.port}`, 100, 'HEALTHY']));
        // the targets fail their probes only now (set before the start, a
        // slow start saw them UNHEALTHY already)
        for (const t of ts) t.healthStatus = 500;
        await waitFor(async () => (await request(g.port, { path: '/x' })).status === 503, slow(10000));
        assert.deepEqual((await health()).data.map((d) => d.health), ['UNHEALTHY', 'UNHEALTHY']);
        assert.deepEqual(await gauge(), Object.fromEntries(ts.map((t) => [`127.0.0.1:${t.port}`, `unhealthy@127.0.0.1:${t.port}`])));
        assert.equal((await request(statusPort, { path: '/upstreams/nope/health' })).status, 404);
        const r = await request(g.port, { path: '/x' });
        assert.equal(r.status, 503);
        assert.equal(r.json().message, 'failure to get a peer from the ring-balancer');
        const hits = ts.map((t) => t.hits);
        await many(g.port, 5);
        assert.deepEqual(ts.map((t) => t.hits), hits);
        // back to healthy
        for (const t of ts) t.healthStatus = 200;
        await waitFor(async () => (await request(g.port, { path: '/x' })).status === 200, slow(10000));
        await waitFor(async () => (await health()).data.every((d) => d.health === 'HEALTHY'), slow(10000));
        assert.deepEqual(Object.values(await gauge()), ['healthy@127.0.0.1:' + ts[0].port, 'healthy@127.0.0.1:' + ts[1].port]);
    } finally { await g.stop(); }
});

test('weight 0 everywhere: 503 without trying', async () => {
    const a = await target('a');
    const statusPort = await freePort();
    const g = await startSluice(config(`
targets:
- {target: 127.0.0.1:${a.port}, weight: 0}
`), { workers: 1, env: { SLUICE_STATUS_LISTEN: String(statusPort) } });
    try {
        const h = (await request(statusPort, { path: '/upstreams/pool.internal/health' })).json();
        assert.equal(h.data[0].health, 'HEALTHCHECKS_OFF');
        const r = await request(g.port, { path: '/x' });
        assert.equal(r.status, 503);
        assert.equal(r.json().message, 'failure to get a peer from the ring-balancer');
        assert.equal(a.hits, 0);
    } finally { await g.stop(); }
});

test('a reload keeps the health of targets still configured, as Kong', async () => {
    const [a, b] = await Promise.all([target('a'), target('b')]);
    b.healthStatus = 500;
    const up = (extra = '') => config(`
healthchecks:
  active:
    http_path: /health
    healthy: {interval: 0.3, successes: 2}
    unhealthy: {interval: 30, http_failures: 1}
targets:
- {target: 127.0.0.1:${a.port}}
- {target: 127.0.0.1:${b.port}}
${extra}`);
    const g = await startSluice(up(), { workers: 2 });
    try {
        await waitFor(() => /target 127\.0\.0\.1:\d+ is now unhealthy \(active: http failures\)/.test(g.stderr), slow(10000));
        b.healthStatus = 200; // would recover only at the next unhealthy interval (30 s)
        const c = await target('c');
        const workers = g.workers();
        await g.reload(up(`- {target: 127.0.0.1:${c.port}}`));
        await waitFor(() => g.workers().every((w) => !workers.includes(w)), slow(10000));
        const before = b.hits;
        const rs = await many(g.port, 30);
        assert.ok(rs.every((r) => r.status === 200));
        assert.equal(b.hits, before, 'b is still unhealthy after the reload');
        assert.ok(c.hits > 0 && a.hits > 0);
    } finally { await g.stop(); }
});
