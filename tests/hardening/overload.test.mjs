/* overload.test.mjs - connection limits and memory under sustained load.
 *
 * SLUICE_MAX_CONNECTIONS=N per worker: the N+1th connection gets 503 with
 * Retry-After and is closed; a freed slot is usable again.
 *
 * Soak: mixed load (keep-alive and fresh connections, plain and ai-proxy,
 * streaming and not, some bad requests) for SLUICE_SOAK_SECONDS (default 30;
 * 600 for the manual 10-minute run, see docs/hardening.md); every worker's
 * RSS is sampled from /proc each second, and the growth between the 10 s
 * mark and the end must stay under SLUICE_SOAK_MAX_DRIFT_KB (default 2048). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';

import {
    startStack, loadLoop, httpRequest, rawExchange, rssKb, sleep, waitFor, slow,
} from './lib.mjs';
import { SLUICE_BIN } from '../e2e/harness.mjs';

const SOAK_S = Number(process.env.SLUICE_SOAK_SECONDS ?? 30);
const MAX_DRIFT_KB = Number(process.env.SLUICE_SOAK_MAX_DRIFT_KB ?? 2048);
/* tests/soak: SIGHUP the master every HUP_S seconds and SIGKILL a worker
 * every KILL_S seconds during the soak (0 = never, the CI default) */
const HUP_S = Number(process.env.SLUICE_SOAK_HUP_SECONDS ?? 0);
const KILL_S = Number(process.env.SLUICE_SOAK_KILL_SECONDS ?? 0);
const CHAOS = HUP_S > 0 || KILL_S > 0;
const SANITIZED = (() => {
    try { return fs.readFileSync(SLUICE_BIN).includes('__asan_init'); } catch { return false; }
})();

function openSocket(port) {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.on('error', reject);
    });
}

/* One keep-alive request on an open socket; resolves the status. */
function getOn(s, path) {
    return new Promise((resolve) => {
        let buf = '';
        const on = (d) => {
            buf += d.toString('latin1');
            const i = buf.indexOf('\r\n\r\n');
            const m = /content-length: (\d+)/i.exec(buf);
            if (i >= 0 && m && buf.length >= i + 4 + Number(m[1])) {
                s.off('data', on);
                resolve(Number(buf.slice(9, 12)));
            }
        };
        s.on('data', on);
        s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
}

test('max_connections: the N+1th connection gets 503 with Retry-After', { timeout: slow(20000) }, async () => {
    const N = 8;
    const st = await startStack({ workers: 1, env: { SLUICE_MAX_CONNECTIONS: String(N) } });
    const held = [];
    try {
        for (let i = 0; i < N; i++) {
            const s = await openSocket(st.port);
            held.push(s);
            assert.equal(await getOn(s, `/plain/held${i}`), 200, `connection ${i + 1} of ${N} served`);
        }
        for (let k = 0; k < 3; k++) {
            const r = await rawExchange(st.port, `GET /plain/over HTTP/1.1\r\nHost: x\r\n\r\n`, { timeoutMs: slow(8000) });
            assert.equal(r.status, 503, `N+1th: ${JSON.stringify(r.text.slice(0, 200))}`);
            assert.match(r.text, /\r\nRetry-After: \d+\r\n/i);
            assert.ok(r.closed, '503 connection closed');
            const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4));
            assert.equal(typeof body.message, 'string');
        }
        /* the held connections still work */
        assert.equal(await getOn(held[0], '/plain/still'), 200);
        /* a freed slot is usable again */
        held.pop().destroy();
        const ok = await waitFor(async () => (await httpRequest(st.port, { path: '/plain/after' }).catch(() => ({}))).status === 200, slow(10000), 50);
        assert.ok(ok, 'a connection is served once a slot is free');
    } finally {
        for (const s of held) s.destroy();
        await st.stop();
    }
});

test(`soak: ${SOAK_S} s of mixed load, worker RSS flat`, { timeout: (SOAK_S + 60) * 1000 }, async () => {
    const st = await startStack({ workers: 2, logPath: '/dev/null' });
    const ai = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': 'sk-ant-soak' };
    const msg = (stream) => JSON.stringify({ model: 'qwen-plus', max_tokens: 32, stream,
        messages: [{ role: 'user', content: 'hello soak' }] });
    const loops = [
        loadLoop(st.port, { clients: 3, path: '/plain/soak', pauseMs: 2 }),
        loadLoop(st.port, { clients: 2, path: '/plain/soak-fresh', fresh: true, pauseMs: 5 }),
        loadLoop(st.port, { clients: 2, path: '/plain/sse?n=5&interval=1', pauseMs: 5 }),
        loadLoop(st.port, { clients: 2, path: '/ai/v1/messages', method: 'POST', headers: ai, body: msg(false), pauseMs: 2 }),
        loadLoop(st.port, { clients: 2, path: '/ai/v1/messages', method: 'POST', headers: ai, body: msg(true), pauseMs: 2 }),
        loadLoop(st.port, { clients: 1, path: '/ai/v1/messages', method: 'POST', headers: ai, body: '{"broken', expect: 400, pauseMs: 5 }),
        loadLoop(st.port, { clients: 1, path: '/nowhere', expect: 404, pauseMs: 5 }),
    ];
    const workers = st.workers();
    const samples = new Map(workers.map((w) => [w, []]));
    let badHttp = 0, hups = 0, kills = 0;
    try {
        const t0 = Date.now();
        for (let sec = 1; sec <= SOAK_S; sec++) {
            /* a few hostile connections per second too */
            for (let k = 0; k < 3; k++) {
                badHttp++;
                rawExchange(st.port, `POST /plain/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`, { timeoutMs: 1000 });
            }
            rawExchange(st.port, ['GET /plain/abort HTTP/1.1\r\nHo'], { timeoutMs: 50 });
            if (HUP_S > 0 && sec % HUP_S === 0) { process.kill(st.master, 'SIGHUP'); hups++; }
            if (KILL_S > 0 && sec % KILL_S === 0) {
                const live = st.workers();
                if (live.length) { process.kill(live[sec % live.length], 'SIGKILL'); kills++; }
            }
            const wait = t0 + sec * 1000 - Date.now();
            if (wait > 0) await sleep(wait);
            for (const w of CHAOS ? st.workers() : workers) {
                if (!samples.has(w)) samples.set(w, []);
                samples.get(w).push(rssKb(w));
            }
        }
    } finally {
        var stats = await Promise.all(loops.map((l) => l.stop()));   // eslint-disable-line no-var
    }
    const total = stats.reduce((a, s) => a + s.ok, 0);
    const failed = stats.reduce((a, s) => a + s.failed, 0);
    const report = [];
    for (const [w, s] of samples) {
        const at10 = s[Math.min(9, s.length - 1)];
        const end = s[s.length - 1];
        report.push({ worker: w, start: s[0], at10s: at10, end, max: Math.max(...s), driftKb: end - at10 });
    }
    console.log(`# soak ${SOAK_S} s: ${total} requests (${(total / SOAK_S).toFixed(0)}/s), ${failed} failed, ${badHttp} hostile; RSS kB ${JSON.stringify(report)}`);
    if (CHAOS) {
        /* workers change with every reload and kill: no worker may die of
         * anything but our SIGKILL; requests cut by a kill are counted, not
         * failed; RSS is reported per worker, the drift bound not applied */
        const deaths = [...st.gw.stderr.matchAll(/worker \d+ \(pid \d+\) killed by signal (\d+)/g)].map((m) => Number(m[1]));
        const crashes = deaths.filter((sig) => sig !== 9);
        console.log(`# soak chaos: ${hups} SIGHUP, ${kills} SIGKILL, ${deaths.length} workers killed, ` +
            `${crashes.length} other deaths, ${failed} requests cut, max worker RSS ${Math.max(...report.map((r) => r.max))} kB`);
        assert.deepEqual(crashes, [], st.gw.stderr.slice(-6000));
        assert.ok(st.workers().length === 2, 'the master keeps two workers');
        assert.ok(total > SOAK_S * 50, `only ${total} requests`);
        await st.stop();
        return;
    }
    assert.deepEqual(st.workers(), workers, `a worker died during the soak: ${st.gw.stderr.slice(-6000)}`);
    assert.equal(failed, 0, `failures: ${stats.flatMap((s) => s.errors).slice(0, 5)}`);
    if (SANITIZED) {
        /* ASan's quarantine and shadow memory grow for minutes: RSS says
         * nothing about leaks there (LeakSanitizer does, see lsan.test.mjs) */
        console.log('# soak: sanitizer build, RSS bound not applied');
        await st.stop();
        return;
    }
    for (const r of report) {
        assert.ok(r.end > 0, `no RSS for worker ${r.worker}`);
        assert.ok(r.driftKb < MAX_DRIFT_KB, `worker ${r.worker} RSS grew ${r.driftKb} kB after the 10 s mark: ${JSON.stringify(samples.get(r.worker))}`);
    }
    await st.stop();
});
