// plugins.test.mjs - end-to-end: the plugin ABI as the test plugins in
// tests/plugins/ see it through the real binary: phase order, priorities
// and ties, route > service > global precedence, short-circuits, filters,
// serialize values, the log phase on every kind of ending, config errors
// and refused plugins.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';

import { startUpstream, nowMs } from './upstream.mjs';
import {
    startSluice, runSluice, request, sleep, waitFor, tmpDir, freePort,
    PLUGINS_DIR, TEST_PLUGINS_DIR, slow,
} from './helpers.mjs';

let up, gw, dir, traceFile, logFile, deadPort;

const trace = (name, tag) =>
    `    - name: ${name}\n      config: {tag: ${tag}, file: ${JSON.stringify(traceFile)}}\n`;
const logger = () => `    - name: t-logger\n      config: {path: ${JSON.stringify(logFile)}}\n`;

before(async () => {
    up = await startUpstream();
    dir = tmpDir();
    traceFile = path.join(dir, 'trace.log');
    logFile = path.join(dir, 'logger.log');
    deadPort = await freePort();
    gw = await startSluice(`_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up.port}/base
  read_timeout: 800
  plugins:
  - name: t-trace-hi
    config: {tag: service, file: ${JSON.stringify(traceFile)}}
  routes:
  - name: order
    paths: [/order]
    plugins:
${trace('t-trace-hi', 'hi')}${trace('t-trace-lo', 'lo')}${trace('t-trace-tie-a', 'a')}${trace('t-trace-tie-b', 'b')}
  - name: skip
    paths: [/skip]
    plugins:
${trace('t-trace-hi', 'full')}    - name: t-trace-lo
      config: {tag: skip, skip: "body,header_filter,log", file: ${JSON.stringify(traceFile)}}
  - name: svc-level
    paths: [/svc]
  - name: disabled
    paths: [/disabled]
    plugins:
    - name: t-trace-hi
      enabled: false
      config: {tag: route-disabled}
  - name: deny
    paths: [/deny]
    plugins:
    - name: t-deny
${trace('t-trace-lo', 'lo')}${logger()}
  - name: err
    paths: [/err]
    plugins:
    - name: t-error
${logger()}
  - name: hdr
    paths: [/hdr]
    plugins:
    - name: t-headers
      config:
        remove: [X-Remove-Me]
        replace: {name: X-Replace-Me, value: new}
        status: 299
  - name: upper
    paths: [/upper]
    plugins:
    - name: t-upper
  - name: ser
    paths: [/ser]
    plugins:
    - name: t-serialize
${logger()}
  - name: log
    paths: [/log]
    plugins:
${logger()}${trace('t-trace-lo', 'log')}
- name: other
  url: http://127.0.0.1:${up.port}/other
  routes:
  - name: other
    paths: [/other]
- name: dead
  url: http://127.0.0.1:${deadPort}/
  retries: 0
  routes:
  - name: dead
    paths: [/dead]
    plugins:
${logger()}
- name: dead-many
  url: http://127.0.0.1:${deadPort}/
  retries: 20
  routes:
  - name: dead-many
    paths: [/dead-many]
    plugins:
${logger()}
plugins:
- name: t-trace-hi
  config: {tag: global, file: ${JSON.stringify(traceFile)}}
`, { workers: 2 });
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

const traceLines = (id) => (fs.existsSync(traceFile) ? fs.readFileSync(traceFile, 'utf8') : '')
    .split('\n').filter((l) => l.startsWith(id + ' ')).map((l) => l.slice(id.length + 1));

/* Only lines ended by '\n': a worker may be mid-write. */
const loggerRecords = () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '')
    .split('\n').slice(0, -1).filter(Boolean).map((l) => JSON.parse(l));

const loggerFor = (id) => waitFor(() => loggerRecords().find((r) => r.id === id), slow(10000));

const headerValues = (raw, name) => {
    const out = [];
    for (let i = 0; i < raw.length; i += 2)
        if (raw[i].toLowerCase() === name) out.push(raw[i + 1]);
    return out;
};

test('phases run in priority order, ties reverse alphabetical', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { method: 'POST', path: '/order/x', body: 'body!' });
    assert.equal(r.status, 200);
    const id = r.headers['x-kong-request-id'];
    const e = r.json();
    // hi 2000 > tie-b 100 = tie-a 100 > lo 5 (Kong: same priority, name desc)
    const order = ['t-trace-hi/hi', 't-trace-tie-b/b', 't-trace-tie-a/a', 't-trace-lo/lo'];
    assert.deepEqual(headerValues(e.rawHeaders, 'x-trace'),
                     [...order.map((o) => `${o}:access`), ...order.map((o) => `${o}:body`)]);
    assert.equal(e.body, 'body!');
    assert.deepEqual(headerValues(r.rawHeaders, 'x-trace'),
                     order.map((o) => `${o}:header_filter`));
    // each plugin has its own per-request context
    for (const n of ['t-trace-hi', 't-trace-tie-a', 't-trace-tie-b', 't-trace-lo'])
        assert.equal(r.headers[`x-trace-seen-${n}`], 'access,body,header_filter');
    // log phase and the file view of every phase
    const lines = await waitFor(() => {
        const l = traceLines(id);
        return l.filter((x) => x.includes(' summary ')).length === 4 ? l : null;
    }, slow(10000));
    assert.ok(lines, 'log phase ran for all four');
    const phases = ['access', 'body', 'header_filter', 'body_filter_eof', 'log'];
    const expected = [];
    for (const ph of phases) for (const o of order) expected.push(`${o} ${ph}`);
    assert.deepEqual(lines.filter((l) => !l.includes(' summary ')), expected);
    for (const l of lines.filter((x) => x.includes(' summary '))) {
        assert.match(l, /status=200 err=0 chunks=\d+ seen=access,body,header_filter,body_filter_eof,log/);
    }
});

test('precedence: route > service > global; disabled falls back', { timeout: slow(10000) }, async () => {
    const tag = async (p) => {
        const r = await request(gw.port, { path: p });
        return [r.status, headerValues(r.rawHeaders, 'x-trace').filter((v) => v.startsWith('t-trace-hi/'))];
    };
    assert.deepEqual(await tag('/order/a'), [200, ['t-trace-hi/hi:header_filter']]);
    assert.deepEqual(await tag('/svc/a'), [200, ['t-trace-hi/service:header_filter']]);
    assert.deepEqual(await tag('/disabled/a'), [200, ['t-trace-hi/service:header_filter']]);
    assert.deepEqual(await tag('/other/a'), [200, ['t-trace-hi/global:header_filter']]);
    // no route matched: global plugins still see the 404
    assert.deepEqual(await tag('/nowhere'), [404, ['t-trace-hi/global:header_filter']]);
});

test('short-circuit in access: 403 JSON, upstream untouched, filters and log still run', { timeout: slow(10000) }, async () => {
    const n = up.requests.length;
    const r = await request(gw.port, { path: '/deny/x' });
    assert.equal(r.status, 403);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.deepEqual(r.json(), { message: 'denied by t-deny' });
    assert.equal(r.headers['x-denied-by'], 't-deny');
    assert.equal(up.requests.length, n, 'upstream not contacted');
    const id = r.headers['x-kong-request-id'];
    // The service's t-trace-hi (2000) ran before t-deny (1500); t-trace-lo
    // (5) comes after it: no access, but header_filter and log still run.
    assert.deepEqual(headerValues(r.rawHeaders, 'x-trace'),
                     ['t-trace-hi/service:header_filter', 't-trace-lo/lo:header_filter']);
    assert.equal(r.headers['x-trace-seen-t-trace-hi'], 'access,header_filter');
    assert.equal(r.headers['x-trace-seen-t-trace-lo'], 'header_filter');
    const rec = await loggerFor(id);
    assert.ok(rec, 'log phase ran');
    assert.equal(rec.status, 403);
    assert.equal(rec.source, 1, 'SL_SOURCE_GATEWAY');
    assert.equal(rec.err, 0);
});

test('SL_STATUS_ERROR in access: 500 JSON, logged with the plugin name', { timeout: slow(10000) }, async () => {
    const n = up.requests.length;
    const r = await request(gw.port, { path: '/err/x' });
    assert.equal(r.status, 500);
    assert.match(r.headers['content-type'], /application\/json/);
    assert.equal(typeof r.json().message, 'string');
    assert.equal(up.requests.length, n);
    await waitFor(() => /\[t-error\]/.test(gw.stderr), slow(10000));
    assert.match(gw.stderr, /\[t-error\]/);
    const rec = await loggerFor(r.headers['x-kong-request-id']);
    assert.equal(rec.status, 500);
    assert.equal(rec.err, 6, 'SL_REQERR_PLUGIN');
});

test('header_filter edits status and headers', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/hdr/_/headers' });
    assert.equal(r.status, 299);
    assert.equal(r.headers['x-edited'], 'yes');
    assert.equal(r.headers['x-remove-me'], undefined);
    assert.equal(r.headers['x-keep-me'], 'kept');
    assert.equal(r.headers['x-replace-me'], 'new');
    assert.equal(r.text, 'headers');
});

test('body_filter rewrites a streamed response chunk by chunk', { timeout: slow(15000) }, async () => {
    const n = 8, interval = 150;
    const events = await new Promise((resolve, reject) => {
        const got = [];
        let buf = '';
        http.get({ host: '127.0.0.1', port: gw.port, path: `/upper/_/sse?n=${n}&interval=${interval}`,
                   agent: false }, (res) => {
            assert.equal(res.headers['x-upper'], 'on');
            res.setEncoding('utf8');
            res.on('data', (d) => {
                const t = nowMs();
                buf += d;
                let k;
                while ((k = buf.indexOf('\n\n')) >= 0) {
                    const ev = buf.slice(0, k);
                    buf = buf.slice(k + 2);
                    const m = /^DATA: \{"I":(\d+),"T":([0-9.E+]+),"TEXT":"CHUNK NUMBER (\d+)"\}$/.exec(ev);
                    if (!m) return reject(new Error(`not upper-cased: ${JSON.stringify(ev)}`));
                    got.push({ i: Number(m[1]), sent: Number(m[2]), at: t });
                }
            });
            res.on('end', () => resolve(got));
        }).on('error', reject);
    });
    assert.equal(events.length, n);
    for (const e of events)
        assert.ok(e.at - e.sent < interval / 2, `chunk ${e.i} held for ${e.at - e.sent} ms`);
    const span = events[n - 1].at - events[0].at;
    assert.ok(span > (n - 1) * interval * 0.8, `chunks arrived over ${span} ms, not at once`);
    // a plain body with Content-Length keeps it right
    const r = await request(gw.port, { path: '/upper/plain?q=abc' });
    assert.equal(r.status, 200);
    assert.equal(Number(r.headers['content-length']), r.body.length);
    assert.match(r.text, /"URL":"\/BASE\/PLAIN\?Q=ABC"/);
});

test('serialize values reach the log record; invalid JSON is refused', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/ser/x',
                                       headers: { 'X-Secret': 's3cret', Authorization: 'Bearer t' } });
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-serialize-rc'], '0,0,0,-1');
    const rec = await loggerFor(r.headers['x-kong-request-id']);
    assert.ok(rec?.record, 'log_serialize gave a record');
    assert.deepEqual(rec.record.t.serialize.obj, { n: 1, s: 'a' });
    assert.equal(rec.record.t.serialize.twice, 'second');
    assert.equal(rec.record.t.serialize.bad, undefined);
    assert.equal(rec.record.request.headers['x-secret'], 'REDACTED');
    assert.equal(rec.record.request.headers['authorization'], 'REDACTED');
    assert.equal(rec.record.response.status, 200);
});

test('log phase runs for client aborts mid-stream and upstream failures', { timeout: slow(15000) }, async () => {
    // client abort in the middle of an SSE stream
    const id = await new Promise((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port: gw.port, path: '/log/_/sse?n=100&interval=50',
                               agent: false }, (res) => {
            let seen = 0;
            res.on('data', () => {
                if (++seen === 2) {
                    resolve(res.headers['x-kong-request-id']);
                    req.destroy();
                }
            });
        });
        req.on('error', () => {});
        req.on('close', () => {});
        setTimeout(() => reject(new Error('no data')), 5000);
    });
    const rec = await loggerFor(id);
    assert.ok(rec, 'log phase ran after the client aborted');
    assert.equal(rec.err, 1, 'SL_REQERR_CLIENT_ABORT');
    assert.equal(rec.status, 200);
    const lines = await waitFor(() => traceLines(id).find((l) => l.includes('summary')), slow(10000));
    assert.match(lines, /err=1 .*seen=access,body,header_filter,body_filter_eof,log/);

    // client gone while the upstream has not answered yet
    const n = up.requests.length;
    await assert.rejects(request(gw.port, { path: '/log/_/stall?ms=1500', timeoutMs: 300 }));
    let lr = await waitFor(() => loggerRecords().find((x) => x.path === '/log/_/stall'), slow(10000));
    assert.ok(lr, 'log phase ran after the client left before the upstream answered');
    assert.equal(lr.err, 1, 'SL_REQERR_CLIENT_ABORT');
    assert.equal(lr.status, 499);
    assert.equal(up.requests.length, n + 1);

    // upstream connection refused
    let r = await request(gw.port, { path: '/dead/x' });
    assert.equal(r.status, 502);
    lr = await loggerFor(r.headers['x-kong-request-id']);
    assert.equal(lr.status, 502);
    assert.equal(lr.err, 2, 'SL_REQERR_UPSTREAM_CONNECT');

    // upstream timeout
    r = await request(gw.port, { path: '/log/_/stall' });
    assert.equal(r.status, 504);
    lr = await loggerFor(r.headers['x-kong-request-id']);
    assert.equal(lr.status, 504);
    assert.equal(lr.err, 3, 'SL_REQERR_UPSTREAM_TIMEOUT');

    // upstream reset mid-body: the client gets a truncated response
    await assert.rejects(request(gw.port, { path: '/log/_/reset-body' }));
    lr = await waitFor(() => loggerRecords().find((x) => x.path === '/log/_/reset-body'), slow(10000));
    assert.ok(lr, 'log phase ran after the upstream reset');
    assert.equal(lr.err, 4, 'SL_REQERR_UPSTREAM_RESET');
});

test('config_parse errors surface in -t with file:line and nested paths', { timeout: slow(10000) }, async () => {
    const d = tmpDir();
    const cfg = path.join(d, 'conferr.yaml');
    fs.writeFileSync(cfg, `_format_version: "3.0"
plugins:
- name: t-conferr
  config:
    x:
      y: 5
      n: -1
    z: true
`);
    const r = await runSluice(['-t', '-d', cfg, '--plugins-dir', TEST_PLUGINS_DIR]);
    assert.equal(r.code, 1);
    const out = r.stdout + r.stderr;
    assert.match(out, new RegExp(`^${cfg}:6: plugins\\[0\\]\\.config\\.x\\.y: expected a string$`, 'm'));
    assert.match(out, new RegExp(`^${cfg}:7: plugins\\[0\\]\\.config\\.x\\.n: must be a number >= 0$`, 'm'));
    assert.match(out, new RegExp(`^${cfg}:8: plugins\\[0\\]\\.config\\.z: unknown field$`, 'm'));
    assert.doesNotMatch(out, /configuration ok/);

    // the same plugin, valid config
    fs.writeFileSync(cfg, `_format_version: "3.0"\nplugins:\n- name: t-conferr\n  config: {x: {y: "ok", n: 1}}\n`);
    const ok = await runSluice(['-t', '-d', cfg, '--plugins-dir', TEST_PLUGINS_DIR]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /configuration ok/);
});

test('ABI 1.8: an instance that said it does not need some phases is not called for them, the others are', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { method: 'POST', path: '/skip/x', body: 'body!' });
    assert.equal(r.status, 200);
    const id = r.headers['x-kong-request-id'];
    const e = r.json();
    assert.deepEqual(headerValues(e.rawHeaders, 'x-trace'),
                     ['t-trace-hi/full:access', 't-trace-lo/skip:access', 't-trace-hi/full:body']);
    assert.equal(e.body, 'body!');
    assert.deepEqual(headerValues(r.rawHeaders, 'x-trace'), ['t-trace-hi/full:header_filter']);
    const lines = await waitFor(() => {
        const l = traceLines(id);
        return l.some((x) => x.startsWith('t-trace-hi/full summary')) ? l : null;
    }, slow(5000));
    assert.ok(lines, 'the log phase ran for the instance that needs it');
    assert.deepEqual(lines.filter((l) => !l.includes(' summary ')), [
        't-trace-hi/full access', 't-trace-lo/skip access', 't-trace-hi/full body',
        't-trace-hi/full header_filter', 't-trace-hi/full body_filter_eof',
        't-trace-lo/skip body_filter_eof', 't-trace-hi/full log']);
    await sleep(200);
    assert.ok(!traceLines(id).some((l) => l.startsWith('t-trace-lo/skip summary')), 'no log phase for the other');

    // bits that name no phase are refused (the plugin reports it)
    const d = tmpDir();
    const cfg = path.join(d, 'skip.yaml');
    fs.writeFileSync(cfg, `_format_version: "3.0"\nplugins:\n- name: t-trace-lo\n  config: {skip_bits: 64}\n`);
    const bad = await runSluice(['-t', '-d', cfg, '--plugins-dir', TEST_PLUGINS_DIR]);
    assert.equal(bad.code, 1);
    assert.match(bad.stdout + bad.stderr, /plugins\[0\]\.config\.skip: conf_phases_skip refused 0x40/);
});

test('plugins with a wrong ABI major, a newer minor or no name are refused with clear errors', { timeout: slow(10000) }, async () => {
    const refused = path.join(TEST_PLUGINS_DIR, 'refused');
    const d = tmpDir();
    const cfg = path.join(d, 'empty.yaml');
    fs.writeFileSync(cfg, '_format_version: "3.0"\n');
    const r = await runSluice(['-t', '-d', cfg, '--plugins-dir', refused]);
    assert.equal(r.code, 1);
    const out = r.stdout + r.stderr;
    assert.match(out, /t-bad-abi\.so: built for plugin ABI 2\.0, this sluice has ABI 1\.\d+/);
    assert.match(out, /t-no-name\.so: .*no name/);
    // built against 1.(N+1) on a 1.N host: both versions named
    const m = out.match(/t-newer-minor\.so: built for plugin ABI 1\.(\d+), newer than this sluice's 1\.(\d+)/);
    assert.ok(m, out);
    assert.equal(Number(m[1]), Number(m[2]) + 1);
    // refused at startup too, before binding anything
    const port = await freePort();
    const s = await runSluice(['-d', cfg, '--plugins-dir', refused, '-l', `127.0.0.1:${port}`, '-w', '1']);
    assert.equal(s.code, 1);
    assert.match(s.stderr, /t-bad-abi\.so: built for plugin ABI/);
});

test('duplicate plugin names and missing plugins are errors', { timeout: slow(10000) }, async () => {
    const d = tmpDir();
    const cfg = path.join(d, 'c.yaml');
    fs.writeFileSync(cfg, '_format_version: "3.0"\n');
    const dup = await runSluice(['-t', '-d', cfg, '--plugins-dir', `${TEST_PLUGINS_DIR}:${TEST_PLUGINS_DIR}`]);
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /name 't-deny' is already taken/);
    fs.writeFileSync(cfg, '_format_version: "3.0"\nplugins:\n- name: t-absent\n');
    const miss = await runSluice(['-t', '-d', cfg, '--plugins-dir', TEST_PLUGINS_DIR]);
    assert.equal(miss.code, 1);
    assert.match(miss.stderr, /t-absent/);
    assert.ok(miss.stderr.includes(TEST_PLUGINS_DIR), 'names the plugins directory');
});

test('bundled plugins load next to the test plugins', { timeout: slow(10000) }, async () => {
    const d = tmpDir();
    const cfg = path.join(d, 'c.yaml');
    fs.writeFileSync(cfg, '_format_version: "3.0"\n');
    const r = await runSluice(['-t', '-d', cfg, '--plugins-dir', `${PLUGINS_DIR}:${TEST_PLUGINS_DIR}`]);
    assert.equal(r.code, 0, r.stderr);
});

test('every try is in the log record, however many retries', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { path: '/dead-many/x' });
    assert.equal(r.status, 502);
    const lr = await loggerFor(r.headers['x-kong-request-id']);
    assert.equal(lr.record.tries.length, 21, JSON.stringify(lr.record.tries));
    for (const t of lr.record.tries) {
        assert.equal(t.state, 'failed');
        assert.equal(t.code, 502);
    }
});

test('every loader refusal: no descriptor symbol, no config_parse, not a loadable object', { timeout: slow(10000) }, async () => {
    // (wrong major, newer minor, no name and duplicates: the tests above)
    const refused = path.join(TEST_PLUGINS_DIR, 'refused');
    const d = tmpDir();
    const cfg = path.join(d, 'empty.yaml');
    fs.writeFileSync(cfg, '_format_version: "3.0"\n');
    const junk = path.join(d, 'junk');
    fs.mkdirSync(junk);
    fs.writeFileSync(path.join(junk, 't-junk.so'), 'not an ELF object\n');
    const r = await runSluice(['-t', '-d', cfg, '--plugins-dir', `${refused}:${junk}`]);
    assert.equal(r.code, 1);
    const out = r.stdout + r.stderr;
    assert.match(out, /t-no-symbol\.so: no 'sluice_plugin' symbol: not a sluice plugin/);
    assert.match(out, /t-no-config-parse\.so \(t-no-config-parse\): descriptor has no config_parse/);
    assert.match(out, /t-junk\.so: cannot load: /);
    assert.doesNotMatch(out, /configuration ok/);
    // the good plugins beside them still load: only the refusals are errors
    const ok = await runSluice(['-t', '-d', cfg, '--plugins-dir', TEST_PLUGINS_DIR]);
    assert.equal(ok.code, 0, ok.stderr);
});
