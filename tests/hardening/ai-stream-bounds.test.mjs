/* ai-stream-bounds.test.mjs - what one upstream stream can make a worker
 * hold, and how a broken stream ends for the client.  A 16 MB "data:"
 * line, or a 16 MB non-SSE body answering a streaming request, stops at
 * max_stream_event_size (default 1 MiB): the client's stream ends with a
 * well-formed `event: error`, the log record says why, and the worker's
 * peak RSS (VmHWM) grows by far less than the event.  An invalid JSON chunk
 * in the middle of a stream ends it with `event: error` even when a
 * finish_reason follows (it used to be dropped and the stream ended
 * `end_turn`, a broken answer passing for a complete one). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';

import { startStack, postMessages, readLog, waitFor, slow } from './lib.mjs';

let st, raw, workers0;
const BIG = 16 * 1024 * 1024;

function chunk(s) {
    const b = Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1');
    return Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]);
}

const SSE_HEAD = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n';
const first = chunk('data: {"id":"c1","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}\n\n');
const finish = chunk('data: {"id":"c1","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n');

/* The upstream reads the whole request and picks its answer from the
 * "mode:NAME" text in the prompt. */
async function answer(s, mode) {
    const w = (b) => new Promise((r) => (s.write(b) ? r() : s.once('drain', r)));
    switch (mode) {
    case 'bigline': {
        await w(SSE_HEAD);
        await w(first);
        await w(chunk('data: {"id":"c1","choices":[{"index":0,"delta":{"content":"'));
        const piece = Buffer.alloc(256 * 1024, 'a');
        for (let sent = 0; sent < BIG && !s.destroyed; sent += piece.length) await w(chunk(piece));
        await w(chunk('"}}]}\n\n'));
        await w(finish);
        s.end('0\r\n\r\n');
        break;
    }
    case 'bigjson': {
        await w(`HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${BIG}\r\n\r\n`);
        const piece = Buffer.alloc(256 * 1024, 'b');
        for (let sent = 0; sent < BIG && !s.destroyed; sent += piece.length) await w(piece);
        s.end();
        break;
    }
    case 'badchunk':
        await w(SSE_HEAD);
        await w(first);
        await w(chunk('data: {"id":"c1","choices":[{"index":0,"delta":{"content":" wor\n\n'));
        await w(chunk('data: {"id":"c1","choices":[{"index":0,"delta":{"content":"ld"}}]}\n\n'));
        await w(finish);
        s.end('0\r\n\r\n');
        break;
    default:
        s.end('HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n');
    }
}

function startRaw() {
    const sockets = new Set();
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
            const m = /mode:(\w+)/.exec(buf.toString('latin1'));
            buf = Buffer.alloc(0);
            answer(s, m ? m[1] : '');
        });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
        port: server.address().port,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
    })));
}

function hwmKb(pid) {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : -1;
}

before(async () => {
    raw = await startRaw();
    st = await startStack({
        workers: 1,
        extraAi: [{ name: 'raw', path: '/raw', upstreamUrl: `http://127.0.0.1:${raw.port}/compatible-mode/v1/chat/completions` }],
    });
    workers0 = st.workers();
});

after(async () => {
    if (!st) return;
    assert.deepEqual(st.workers(), workers0, 'a worker died');
    await st.stop();
    await raw.close();
});

const streamBody = (mode) => JSON.stringify({ model: 'qwen-plus', max_tokens: 64, stream: true,
    messages: [{ role: 'user', content: `mode:${mode}` }] });

/* The SSE events of a text/event-stream answer: [{event, data}]. */
function events(text) {
    return text.split('\n\n').filter((b) => b.trim()).map((b) => {
        const ev = /^event: (.*)$/m.exec(b)?.[1];
        const data = b.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
        return { event: ev, data };
    });
}

async function recordFor(path) {
    let rec;
    await waitFor(() => (rec = readLog(st.logPath).findLast((x) => x.request?.uri === path)), slow(10000));
    return rec;
}

for (const mode of ['bigline', 'bigjson']) {
    test(`a ${BIG >> 20} MB ${mode === 'bigline' ? 'data: line' : 'non-SSE body'} ends the stream with event: error; worker RSS stays bounded`, async () => {
        const [w] = st.workers();
        const before = hwmKb(w);
        const path = `/raw/v1/messages?${mode}`;
        const r = await postMessages(st.port, streamBody(mode), { path, timeoutMs: 30000 });
        const grew = hwmKb(w) - before;
        console.log(`# ${mode}: worker peak RSS ${before} -> ${before + grew} kB`);
        assert.equal(r.status, 200);
        const evs = events(r.text);
        const last = evs[evs.length - 1];
        assert.equal(last?.event, 'error', r.text.slice(-300));
        const j = JSON.parse(last.data);
        assert.equal(j.type, 'error');
        assert.match(j.error.message, /max_stream_event_size/);
        assert.ok(!evs.some((e) => e.event === 'message_stop'), 'stream must not end as complete');
        assert.ok(grew < 8 * 1024, `worker peak RSS grew by ${grew} kB for a ${BIG >> 20} MB event`);
        const rec = await recordFor(path);
        assert.equal(rec.ai?.proxy?.stream_error ?? rec['ai.proxy.stream_error'] ?? rec.ai?.['proxy']?.['stream_error'],
            'event_too_large', JSON.stringify(rec).slice(0, 400));
        /* the warning crosses a pipe: it may arrive after the response */
        assert.ok(await waitFor(() => /max_stream_event_size/.test(st.gw.stderr), slow(10000)), 'no warning logged');
    });
}

test('an invalid JSON chunk mid-stream ends with event: error even if a finish_reason follows', async () => {
    const path = '/raw/v1/messages?badchunk';
    const r = await postMessages(st.port, streamBody('badchunk'), { path });
    assert.equal(r.status, 200);
    const evs = events(r.text);
    assert.equal(evs[evs.length - 1]?.event, 'error', r.text);
    assert.ok(!evs.some((e) => e.event === 'message_stop'), r.text);
    assert.ok(!r.text.includes('"ld"'), 'nothing after the broken chunk');
    const rec = await recordFor(path);
    assert.ok(JSON.stringify(rec).includes('invalid_chunk'), JSON.stringify(rec).slice(0, 400));
});
