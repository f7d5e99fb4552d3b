/* stream-memory.test.mjs - what a held ai-proxy stream costs its worker
 * (issue 20: at most 16 KiB).  One worker, an upstream that answers each
 * streamed request with its first token and then stays silent (a model
 * thinking), and N clients sending the captured 49 KB Claude Code turn at
 * once.  Once every client has its first token, the worker's RSS less its
 * RSS before (after a few warm-up streams) is divided by N.  The request
 * (49 KB in, 49 KB translated out), its JSON tokens and every read buffer
 * must be gone while the stream is held; only per-stream state remains.
 *
 * Deltas, not absolute RSS, and only the worker's own memory, so other load
 * on the machine does not move it; the lowest reading after the streams
 * are up counts, read until it is within the budget or 10 s
 * passed (the worker gives a burst's freed pages back 100 ms after its
 * end when they are 4 MiB or more: http/server.h sl_server_freed). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { startStack, rssKb, sleep } from './lib.mjs';
import { ROOT, SLUICE_BIN } from '../e2e/harness.mjs';

const N = 200;
/* Issue 20's goal.  This build measures 12.5-13.5 KiB per stream (live heap
 * ~10.6 KiB: the request's 4 KiB pool block, ai-proxy's context, the client
 * and upstream connections); the rest is allocator rounding and pages a
 * live object shares with freed ones.  The burst's freed pages (~20 MiB)
 * go back 100 ms after its last request (a timer, http_server.c), and the
 * reading is the lowest over 10 s, so a slow or loaded machine delays it but
 * does not raise it.  A per-connection buffer (64 KiB), a kept request or
 * translated body, or an 8 KiB pool block coming back fails it. */
const BUDGET_KIB = 16;
const SANITIZED = (() => {
    try { return fs.readFileSync(SLUICE_BIN).includes('__asan_init'); } catch { return false; }
})();

let st, up, workers0;

const SSE_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n';
function chunk(s) {
    const b = Buffer.from(s);
    return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
}
const FIRST = chunk('data: {"id":"chatcmpl-held","model":"qwen-plus","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n');

/* Reads each whole request, answers the head and one token, then holds. */
function startHolder() {
    const sockets = new Set();
    let requests = 0;
    const server = net.createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
        let buf = Buffer.alloc(0);
        s.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            const he = buf.indexOf('\r\n\r\n');
            if (he < 0) return;
            const cl = Number(/content-length: *(\d+)/i.exec(buf.subarray(0, he).toString())?.[1] ?? 0);
            if (buf.length < he + 4 + cl) return;
            buf = Buffer.alloc(0);
            requests++;
            s.write(SSE_HEAD);
            s.write(FIRST);
        });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
        port: server.address().port,
        requests: () => requests,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
    })));
}

const turn = JSON.parse(fs.readFileSync(path.join(ROOT, 'tests/fixtures/claude-code/tool-result-turn.body.json'), 'utf8'));
const BODY = Buffer.from(JSON.stringify({ ...turn, model: 'qwen-plus', stream: true }));
const HEAD = Buffer.from('POST /held/v1/messages?beta=true HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n' +
    'anthropic-version: 2023-06-01\r\nx-api-key: sk-ant-client\r\nuser-agent: claude-cli/2.1.332 (external, cli)\r\n' +
    `Content-Length: ${BODY.length}\r\n\r\n`);

/* Open n streams at once; resolves the sockets once each has its first
 * text delta. */
async function hold(port, n) {
    const streams = await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => s.write(Buffer.concat([HEAD, BODY])));
        let text = '';
        s.on('data', (d) => {
            text += d.toString('latin1');
            if (text.includes('text_delta')) resolve(s);
            else if (/^HTTP\/1\.1 (?!200)/.test(text)) reject(new Error(`not a stream: ${text.slice(0, 300)}`));
        });
        s.on('error', reject);
        s.on('close', () => reject(new Error(`closed before the first token: ${text.slice(0, 300)}`)));
    })));
    return streams;
}

before(async () => {
    up = await startHolder();
    st = await startStack({
        workers: 1,
        extraAi: [{ name: 'held', path: '/held', upstreamUrl: `http://127.0.0.1:${up.port}/compatible-mode/v1/chat/completions` }],
    });
    workers0 = st.workers();
});

after(async () => {
    if (!st) return;
    assert.deepEqual(st.workers(), workers0, 'a worker died');
    await st.stop();
    await up.close();
});

test(`a held ai-proxy stream costs the worker at most ${BUDGET_KIB} KiB (${N} streams of a 49 KB Claude Code turn)`, async () => {
    const [w] = st.workers();
    /* one-time allocations (token arrays, lent buffers, the pool's keys) */
    for (const s of await hold(st.port, 4)) s.destroy();
    await sleep(1500);
    const base = rssKb(w);
    const streams = await hold(st.port, N);
    /* the lowest reading until it is within the budget, for up to 10 s
     * (the burst's freed pages go back within about a second) */
    let low = Infinity;
    for (const end = Date.now() + 10000; Date.now() < end; await sleep(100)) {
        low = Math.min(low, rssKb(w));
        if ((low - base) / N <= BUDGET_KIB) break;
    }
    const perStream = (low - base) / N;
    console.log(`# ${N} held streams: worker RSS ${base} -> ${low} kB, ${perStream.toFixed(1)} KiB per stream`);
    for (const s of streams) s.destroy();
    if (SANITIZED) {
        /* ASan's redzones and quarantine are most of the heap there */
        console.log('# sanitizer build: budget not applied');
        return;
    }
    assert.ok(perStream <= BUDGET_KIB, `${perStream.toFixed(1)} KiB per held stream (budget ${BUDGET_KIB} KiB)`);
});
