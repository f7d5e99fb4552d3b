// timeouts.test.mjs - end-to-end: timeouts that move while a connection
// lives.  A client connection's and an upstream exchange's timers are
// re-armed lazily (core/base/lazytimer.h): a deadline moved later leaves the
// armed timer alone, which then fires early and arms itself for the time
// left; a deadline moved earlier re-arms it.  Each test fails if an early
// firing were taken for the deadline, or if a later deadline hid an earlier
// one.  Lower bounds only where load can make the gateway late (never early).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startUpstream } from './upstream.mjs';
import { startSluice, RawClient, get, sleep, slow } from './helpers.mjs';

let up, gw;

before(async () => {
    up = await startUpstream();
    gw = await startSluice(`_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up.port}/base
  read_timeout: 500
  routes:
  - name: r
    paths: [/p]
`, {
        env: { SLUICE_CLIENT_HEADER_TIMEOUT: '300', SLUICE_KEEPALIVE_TIMEOUT: '5000' },
    });
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

test('an idle keep-alive connection outlives the shorter header deadline armed before it', { timeout: slow(15000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write(get(gw.port, '/p/one'));
    assert.equal((await c.next()).status, 200);
    // the accept's 300 ms header deadline was armed first; the keep-alive
    // deadline (5 s) replaced it
    await sleep(900);
    assert.equal(c.closed, false, 'closed at the header deadline, not the keep-alive one');
    c.write(get(gw.port, '/p/two'));
    assert.equal((await c.next()).status, 200);
    const t0 = Date.now();
    assert.ok(await c.waitClosed(10000), 'the idle connection is closed');
    const took = Date.now() - t0;
    assert.ok(took >= 4500, `closed ${took} ms after the last answer (keepalive_timeout 5000)`);
});

test('a head begun on a keep-alive connection gets the shorter header deadline', { timeout: slow(15000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write(get(gw.port, '/p/one'));
    assert.equal((await c.next()).status, 200);
    const t0 = Date.now();
    c.write('GET /p/slow HTTP/1.1\r\nHost: x\r\n'); // never finished
    const r = await c.next({ timeoutMs: 10000 });
    const took = Date.now() - t0;
    assert.equal(r.status, 408);
    assert.ok(took >= 250, `408 after ${took} ms (client_header_timeout 300)`);
    // 5 s is the keep-alive deadline armed before the head began (a loaded
    // machine may make the 300 ms one late, never by seconds)
    assert.ok(took < 4000, `408 after ${took} ms: the keep-alive deadline hid the header one`);
});

test('a stream whose reads come closer than read_timeout is not cut; a stall still is', { timeout: slow(20000) }, async () => {
    const c = await RawClient.open(gw.port);
    // six events 300 ms apart (1.8 s in all) on a 500 ms read_timeout: each
    // read moves the deadline later
    c.write(get(gw.port, '/p/_/sse?n=6&interval=300'));
    const r = await c.next({ timeoutMs: 15000 });
    assert.equal(r.status, 200);
    assert.equal((r.text.match(/^data:/gm) || []).length, 6, r.text);

    const s = await RawClient.open(gw.port);
    const t0 = Date.now();
    s.write(get(gw.port, '/p/_/stall-body'));
    assert.ok(await s.waitClosed(10000), 'the stalled answer is cut');
    assert.ok(Date.now() - t0 >= 450, `cut after ${Date.now() - t0} ms (read_timeout 500)`);
});
