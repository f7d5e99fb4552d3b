// callout.test.mjs - end-to-end: ABI 1.1 HTTP callouts (t-callout).  A
// paused access phase asks another HTTP server and resumes with its answer;
// timeouts, refused connections, oversize bodies and invalid URLs come back
// as error codes; a cancelled callout never calls back; a worker-level
// callout (from a worker timer, no request) works too.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { startUpstream } from './upstream.mjs';
import { startSluice, request, waitFor, tmpDir, freePort, slow } from './helpers.mjs';

let up, gw, file;

const route = (name, conf) => `  - name: ${name}
    paths: [/${name}]
    plugins:
    - name: t-callout
      config: ${JSON.stringify({ ...conf, file })}
`;
const lines = () => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '');

before(async () => {
    up = await startUpstream();
    file = path.join(tmpDir(), 'callout.log');
    const dead = await freePort();
    const base = `http://127.0.0.1:${up.port}`;
    gw = await startSluice(`_format_version: "3.0"
services:
- name: svc
  url: ${base}/
  routes:
${route('co', { url: base })}\
${route('copost', { url: base, method: 'POST' })}\
${route('cofast', { url: base, timeout_ms: 200 })}\
${route('codead', { url: `http://127.0.0.1:${dead}` })}\
${route('cosmall', { url: base, max_body: 100 })}\
${route('cobad', { url: 'ftp://127.0.0.1/' })}\
${route('cocancel', { url: `${base}/_/stall?ms=300`, cancel: true })}\
${route('coworker', { url: `${base}/_/status?code=204`, worker: true })}\
`, { workers: 1 });
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

const via = async (route, p) => (await request(gw.port, { path: `/${route}`, headers: p ? { 'x-callout-path': p } : {} })).json().headers;

test('a paused access phase resumes with the callout answer', { timeout: slow(10000) }, async () => {
    const h = await via('co', '/check?x=1');
    assert.equal(h['x-callout-status'], '200');
    assert.match(h['x-callout-type'], /application\/json/);
    assert.match(h['x-callout-body'], /^\{/);
    const s = await via('co', '/_/status?code=418');
    assert.equal(s['x-callout-status'], '418');
    // the callout carried the plugin's header and body (the echo shows them)
    const r = await request(gw.port, { path: '/copost', headers: { 'x-callout-path': '/_/body' } });
    assert.equal(r.json().headers['x-callout-body'], 'ping');
    // keep-alive: many in a row reuse pooled connections and all succeed
    for (let i = 0; i < 20; i++)
        assert.equal((await via('co', `/n${i}`))['x-callout-status'], '200');
});

test('callout failures come back as error codes', { timeout: slow(10000) }, async () => {
    assert.equal((await via('cofast', '/_/stall?ms=3000'))['x-callout-err'], 'timed out');
    assert.equal((await via('codead'))['x-callout-err'], 'connect failed');
    assert.equal((await via('cosmall', '/_/big?size=5000'))['x-callout-err'], 'response body too large');
    assert.equal((await via('cosmall', '/_/garbage'))['x-callout-err'], 'invalid HTTP');
    assert.equal((await via('cobad'))['x-callout-err'], 'refused');
    assert.equal((await via('co', '/a b'))['x-callout-err'], 'refused'); // space in the URL
});

test('a cancelled callout never calls back', { timeout: slow(10000) }, async () => {
    const h = await via('cocancel');
    assert.equal(h['x-callout-err'], 'cancelled');
    // the upstream answers after 300 ms; wait for a later request to pass that mark
    await request(gw.port, { path: '/co', headers: { 'x-callout-path': '/_/stall?ms=400' } });
    assert.ok(!lines().includes('late callback'), lines());
});

test('a worker-level callout from a worker timer', { timeout: slow(10000) }, async () => {
    assert.ok(await waitFor(() => lines().includes('worker 204 r=null')), lines());
});
