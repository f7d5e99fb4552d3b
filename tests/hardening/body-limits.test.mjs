/* body-limits.test.mjs - a route's body limit applies before the body is
 * read.  ai-proxy declares max_request_body_size (1 MiB) in its access
 * phase: a larger Content-Length is answered 413 at once, before any body
 * byte (it used to be buffered up to the node's 64 MiB first), and a
 * chunked body is cut off at the limit.  Held uploads then cost the worker
 * nothing (peak RSS checked).  An early 413 on a 65 MB body reaches the
 * client: the connection lingers (output shut down, input drained) instead
 * of being reset under the client's feet. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';

import { startStack, rawExchange, anthropicErrorProblem, bodyOf } from './lib.mjs';

let st, workers0;

before(async () => {
    st = await startStack({ workers: 1 });
    workers0 = st.workers();
});

after(async () => {
    if (!st) return;
    assert.deepEqual(st.workers(), workers0, 'a worker died');
    await st.stop();
});

const AI_HEAD = (extra) => `POST /ai/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nanthropic-version: 2023-06-01\r\n${extra}\r\n`;

function hwmKb(pid) {
    return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

test('a declared Content-Length over the route limit is a 413 before any body byte', async () => {
    const r = await rawExchange(st.port, AI_HEAD('Content-Length: 5000000\r\n'), { timeoutMs: 3000 });
    assert.equal(r.status, 413, r.text.slice(0, 200));
    assert.ok(r.ms < 1500, `answered after ${r.ms} ms`);
    assert.equal(anthropicErrorProblem(bodyOf(r.text)), '', bodyOf(r.text));
    assert.equal(st.mock.chatRequests?.length ?? 0, 0);
});

test('a chunked body is cut off at the route limit', async () => {
    const piece = `${(64 * 1024).toString(16)}\r\n${'a'.repeat(64 * 1024)}\r\n`;
    const chunks = [AI_HEAD('Transfer-Encoding: chunked\r\n')];
    for (let i = 0; i < 40; i++) chunks.push(piece); // 2.5 MB
    const r = await rawExchange(st.port, chunks, { timeoutMs: 3000 });
    assert.equal(r.status, 413, r.text.slice(0, 200));
});

test('eight held uploads declaring 60 MB cost the worker nothing', async () => {
    const [w] = st.workers();
    const before = hwmKb(w);
    const socks = [];
    const statuses = [];
    for (let i = 0; i < 8; i++) {
        const s = net.connect(st.port, '127.0.0.1');
        s.on('error', () => {});
        let got = '';
        s.on('data', (d) => { got += d.toString('latin1'); });
        s.on('close', () => statuses.push(Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0)));
        s.write(AI_HEAD('Content-Length: 60000000\r\n'));
        const blob = Buffer.alloc(4 * 1024 * 1024, 'x');
        s.write(blob);
        s.write(blob);
        socks.push(s);
    }
    const t0 = Date.now();
    while (statuses.length < 8 && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 50));
    for (const s of socks) s.destroy();
    const grew = hwmKb(w) - before;
    console.log(`# 8 held uploads: worker peak RSS ${before} -> ${before + grew} kB`);
    assert.deepEqual(statuses, Array(8).fill(413));
    assert.ok(grew < 8 * 1024, `worker peak RSS grew by ${grew} kB`);
});

test('a 413 on a 65 MB body is readable by a client that keeps sending', async () => {
    const r = await new Promise((resolve) => {
        const s = net.connect(st.port, '127.0.0.1');
        let got = '';
        let err = null;
        s.on('data', (d) => { got += d.toString('latin1'); });
        s.on('error', (e) => { err = e.code; });
        s.on('close', () => resolve({ got, err }));
        s.on('connect', async () => {
            s.write(`POST /plain/big HTTP/1.1\r\nHost: x\r\nContent-Length: ${65 * 1024 * 1024}\r\n\r\n`);
            const blob = Buffer.alloc(1024 * 1024, 'y');
            for (let i = 0; i < 65 && !s.destroyed; i++) {
                if (!s.write(blob)) await new Promise((ok) => { s.once('drain', ok); s.once('close', ok); });
            }
            s.end();
        });
    });
    assert.match(r.got, /^HTTP\/1\.1 413 /, `got ${JSON.stringify(r.got.slice(0, 80))}, error ${r.err}`);
});
