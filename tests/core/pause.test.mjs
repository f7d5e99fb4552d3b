// pause.test.mjs - end-to-end: ABI 1.1 pausing a phase (t-pause) and the
// host's checks at the ABI boundary (t-guard).  A paused access or body
// phase resumes with continue/respond/error, from a timer or from the
// handler itself; a client that disconnects mid-pause cancels it (the plugin
// is told once, the log phase runs, nothing runs after); a pause that
// outlives its timeout answers 504 with a log line naming the plugin.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';

import { startUpstream } from './upstream.mjs';
import { startSluice, request, waitFor, tmpDir, RawClient, slow } from './helpers.mjs';

let up, gw, file;

const route = (name, conf) => `  - name: ${name}
    paths: [/${name}]
    plugins:
    - name: t-pause
      config: ${JSON.stringify({ ...conf, file })}
`;

const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n') : []);

before(async () => {
    up = await startUpstream();
    file = path.join(tmpDir(), 'pause.log');
    gw = await startSluice(`_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up.port}/
  routes:
${route('pa', { phase: 'access', delay_ms: 30, action: 'continue' })}\
${route('pb', { phase: 'body', delay_ms: 30, action: 'continue' })}\
${route('pr', { phase: 'access', delay_ms: 10, action: 'respond' })}\
${route('pbr', { phase: 'body', delay_ms: 0, action: 'respond' })}\
${route('pe', { phase: 'access', delay_ms: 0, action: 'error' })}\
${route('early', { phase: 'access', early: true, action: 'continue' })}\
${route('never', { phase: 'access', action: 'never', timeout_ms: 20000 })}\
${route('slow', { phase: 'body', action: 'never', timeout_ms: 150 })}\
  - name: guard
    paths: [/guard]
    plugins:
    - name: t-guard
`, { workers: 1 });
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

test('a paused access phase resumes and the request is proxied', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/pa/x' });
    assert.equal(r.status, 200);
    assert.equal(r.json().headers['x-paused'], 'access');
    // a body that arrives while access is paused is buffered and forwarded whole
    const body = 'b'.repeat(300000);
    const p = await request(gw.port, { path: '/pa/y', method: 'POST', body });
    assert.equal(p.status, 200);
    assert.equal(p.json().bodyLength, body.length);
});

test('a paused body phase resumes with the body intact', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/pb', method: 'POST', body: 'hello' });
    assert.equal(r.status, 200);
    const j = r.json();
    assert.equal(j.body, 'hello');
    assert.equal(j.headers['x-paused'], 'body');
});

test('resume with respond or error, and from inside the handler', { timeout: slow(10000) }, async () => {
    const a = await request(gw.port, { path: '/pr' });
    assert.equal(a.status, 202);
    assert.equal(a.text, 'access');
    const b = await request(gw.port, { path: '/pbr', method: 'POST', body: 'x' });
    assert.equal(b.status, 202);
    assert.equal(b.text, 'body');
    const e = await request(gw.port, { path: '/pe' });
    assert.equal(e.status, 500);
    assert.ok(await waitFor(() => /\[t-pause\] access phase failed/.test(gw.stderr)), gw.stderr);
    const q = await request(gw.port, { path: '/early' });
    assert.equal(q.status, 200);
    assert.equal(q.json().headers['x-paused'], 'access');
});

test('keep-alive connections carry paused requests one after another', { timeout: slow(10000) }, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const ports = new Set();
    for (let i = 0; i < 5; i++) {
        const r = await request(gw.port, { path: `/pa/${i}`, agent });
        assert.equal(r.status, 200);
        ports.add(r.localPort);
    }
    agent.destroy();
    assert.equal(ports.size, 1);
});

test('a client that disconnects mid-pause cancels it: plugin told once, log runs', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write('GET /never HTTP/1.1\r\nHost: x\r\n\r\n');
    let id;
    assert.ok(await waitFor(() => {
        const all = lines();
        const l = all.find((x) => x.startsWith('pend ') && !all.some((y) => y.startsWith(`log ${x.slice(5)} `)));
        if (l) id = l.slice(5);
        return !!l;
    }, slow(10000)), 'the request paused');
    c.destroy();
    assert.ok(await waitFor(() => lines().includes(`log ${id} 1`), slow(10000)), lines().join('\n'));
    const mine = lines().filter((l) => l.includes(id));
    assert.deepEqual(mine, [`pend ${id}`, `cancel ${id} 1`, `log ${id} 1`]); // 1 = CLIENT_ABORT
    // the worker is fine
    const r = await request(gw.port, { path: '/pa/after' });
    assert.equal(r.status, 200);
});

test('a pause that outlives its timeout answers 504 and says which plugin', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/slow', method: 'POST', body: 'x' });
    assert.equal(r.status, 504);
    assert.match(r.json().message, /did not finish in time/);
    const line = /\[t-pause\] body phase still pending after 150 ms, request [0-9a-f]{32}: answering 504/;
    assert.ok(await waitFor(() => line.test(gw.stderr)), gw.stderr);
    const id = r.headers['x-kong-request-id'];
    // 7 = SL_REQERR_PENDING_TIMEOUT: on_cancel once, then the log phase sees it
    assert.deepEqual(lines().filter((l) => l.includes(id)), [`pend ${id}`, `cancel ${id} 7`, `log ${id} 7`]);
});

test('the host refuses what would split the upstream request or come too late', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/guard', method: 'POST', body: 'original', headers: { 'X-Gone': '1', 'X-Gone-Too': '1' } });
    assert.equal(r.status, 200);
    // then req_headers_set (1.5): one accepted, five refused; then header
    // blocks (1.7): three refused, a NULL one refused, one applied
    assert.equal(r.headers['x-guard-access'], '+' + '-'.repeat(14) + '+' + '-'.repeat(5) + '----+');
    assert.equal(r.headers['x-guard-body'], '++');
    assert.equal(r.headers['x-guard-late'], '--------+');
    const j = r.json();
    assert.equal(j.headers['x-ok'], 'fine');
    assert.equal(j.headers['x-val'], undefined);
    assert.equal(j.headers['x-long'], '0123456789abcdef-long-ok');
    assert.equal(j.headers['x-gone'], undefined); // a NULL value removes
    assert.equal(j.headers['x-block'], 'b1'); // the block was freed after it was applied
    assert.equal(j.headers['x-gone-too'], undefined);
    assert.equal(j.headers['x-many'], undefined); // refused calls set nothing
    assert.equal(j.body, 'replaced');
});
