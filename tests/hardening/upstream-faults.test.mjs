/* upstream-faults.test.mjs - the provider misbehaves: refuses, resets
 * mid-headers and mid-stream, stalls, sends garbage HTTP, invalid JSON or
 * invalid SSE, answers 429/500/503, fails the TLS handshake, does not
 * resolve.  The client always gets a well-formed Anthropic error (in-stream
 * `event: error` once the headers are out), the file-log record says what
 * happened, and the workers live. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';

import {
    startStack, postMessages, anthropicErrorProblem, readLog, waitFor, sleep, slow,
} from './lib.mjs';
import { freePort } from '../e2e/harness.mjs';

const READ_TIMEOUT = 1000;
let st, raw, plain, workers0;
let faults = 0;
const rawState = { mode: 'reset-headers' };

/* A raw TCP "provider" whose misbehaviour is chosen by rawState.mode. */
function startRaw() {
    const sockets = new Set();
    const server = net.createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
        let seen = '';
        s.on('data', (d) => {
            seen += d.toString('latin1');
            if (!seen.includes('\r\n\r\n')) return;
            seen = '';
            switch (rawState.mode) {
            case 'reset-headers':
                s.write('HTTP/1.1 200 OK\r\nContent-Type: applic');
                setTimeout(() => s.resetAndDestroy(), 20);
                break;
            case 'reset-no-answer':
                s.resetAndDestroy();
                break;
            case 'garbage':
                s.end('\x16\x03\x01 NOT HTTP AT ALL\r\n\r\n');
                break;
            case 'bad-status':
                s.end('HTTP/1.1 2000000 OK\r\nContent-Length: 2\r\n\r\n{}');
                break;
            case 'stall-after-head':
                s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n');
                break;
            case 'close-mid-body':
                s.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"id":"x","choices":[');
                setTimeout(() => s.destroy(), 20);
                break;
            case 'sse-reset':
                s.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
                s.write(chunk('data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"}}]}\n\n'));
                setTimeout(() => s.resetAndDestroy(), 50);
                break;
            case 'sse-garbage':
                s.write('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n');
                s.write(chunk('data: {"id":"c1","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'));
                s.write(chunk('data: \x00\x01{{{not json\n\ndata: [1,2\n\n'));
                s.end(chunk('') );
                break;
            default:
                s.destroy();
            }
        });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
        port: server.address().port,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
    })));
}

function chunk(s) {
    const b = Buffer.from(s, 'latin1');
    return `${b.length.toString(16)}\r\n${s}\r\n`;
}

before(async () => {
    raw = await startRaw();
    plain = http.createServer((q, r) => r.end('plain http'));
    await new Promise((r) => plain.listen(0, '127.0.0.1', r));
    const closed = await freePort();
    st = await startStack({
        workers: 2,
        readTimeout: READ_TIMEOUT,
        extraAi: [
            { name: 'refused', path: '/refused', upstreamUrl: `http://127.0.0.1:${closed}/compatible-mode/v1/chat/completions` },
            { name: 'raw', path: '/raw', upstreamUrl: `http://127.0.0.1:${raw.port}/compatible-mode/v1/chat/completions` },
            { name: 'dns', path: '/dns', upstreamUrl: 'http://nonexistent.invalid/compatible-mode/v1/chat/completions' },
            /* https:// to a plain HTTP port: the handshake fails */
            { name: 'tls', path: '/tls', upstreamUrl: `https://127.0.0.1:${plain.address().port}/compatible-mode/v1/chat/completions` },
        ],
    });
    workers0 = st.workers();
});

after(async () => {
    await st?.stop();
    await raw?.close();
    plain?.closeAllConnections();
    await new Promise((r) => (plain ? plain.close(r) : r()));
});

const body = (stream, extra = {}) => JSON.stringify({
    model: 'qwen-plus', max_tokens: 64, stream, messages: [{ role: 'user', content: 'hello' }], ...extra,
});

/* The record file-log wrote for the request just made on `path`: the one
 * with the answer's X-Kong-Request-Id.  The writer thread batches records
 * (up to 10 ms), so the previous test's record for the same path may land
 * after `mark` was read; matching the id never takes that one. */
async function lastRecord(mark, path, r) {
    const id = r.headers['x-kong-request-id'];
    assert.match(id ?? '', /^[0-9a-f]{32}$/, `${path}: X-Kong-Request-Id ${id}`);
    const rec = await waitFor(() => readLog(st.logPath).slice(mark)
        .find((x) => x.request.uri.startsWith(path) && x.request.id === id) ?? null, slow(10000));
    assert.ok(rec, `no log record for ${path} with request id ${id}`);
    return rec;
}

/* A non-streaming fault: an Anthropic error with `status`, logged. */
async function expectFault(name, path, { status, statuses, errType, logError, upstreamStatus, stream = false } = {}) {
    faults++;
    const mark = readLog(st.logPath).length;
    const r = await postMessages(st.port, body(stream), { path: `${path}/v1/messages` });
    const want = statuses ?? [status];
    assert.ok(want.includes(r.status), `${name}: status ${r.status}, want ${want}: ${r.text.slice(0, 300)}`);
    assert.match(r.headers['content-type'] ?? '', /application\/json/, `${name}: content-type`);
    assert.equal(anthropicErrorProblem(r.text, errType), '', `${name}: ${r.text.slice(0, 300)}`);
    const rec = await lastRecord(mark, path, r);
    assert.equal(rec.response.status, r.status, `${name}: logged status`);
    if (logError) assert.equal(rec.error, logError, `${name}: log error field: ${JSON.stringify(rec).slice(0, 600)}`);
    if (upstreamStatus !== undefined) assert.equal(rec.upstream_status, upstreamStatus, `${name}: upstream_status`);
    return { r, rec };
}

/* A streaming fault after the headers went out: 200, then event: error. */
async function expectStreamError(name, path, { logError } = {}) {
    faults++;
    const mark = readLog(st.logPath).length;
    const r = await postMessages(st.port, body(true), { path: `${path}/v1/messages` });
    assert.equal(r.status, 200, `${name}: ${r.text.slice(0, 300)}`);
    assert.match(r.headers['content-type'] ?? '', /text\/event-stream/);
    const m = /event: error\ndata: (.*)\n/.exec(r.text);
    assert.ok(m, `${name}: no event: error in ${JSON.stringify(r.text.slice(-600))}`);
    assert.equal(anthropicErrorProblem(m[1]), '', `${name}: ${m[1]}`);
    assert.doesNotMatch(r.text.slice(r.text.indexOf('event: error')), /event: message_stop/, `${name}: message_stop after the error`);
    const rec = await lastRecord(mark, path, r);
    if (logError) assert.equal(rec.error, logError, `${name}: log error: ${JSON.stringify(rec).slice(0, 600)}`);
    return { r, rec };
}

test('connection refused, DNS failure, TLS handshake failure -> 502-class Anthropic errors', { timeout: slow(30000) }, async () => {
    for (const stream of [false, true]) {
        await expectFault(`refused stream=${stream}`, '/refused', { statuses: [502, 503], errType: 'api_error', logError: 'upstream_connect', stream });
        await expectFault(`dns stream=${stream}`, '/dns', { statuses: [502, 503], errType: 'api_error', stream });
        await expectFault(`tls stream=${stream}`, '/tls', { statuses: [502], errType: 'api_error', stream });
    }
});

test('reset mid-headers, garbage HTTP, bad status line, close mid-body -> 502', { timeout: slow(30000) }, async () => {
    for (const mode of ['reset-headers', 'garbage', 'bad-status']) {
        rawState.mode = mode;
        for (const stream of [false, true]) {
            const { rec } = await expectFault(`${mode} stream=${stream}`, '/raw', { status: 502, errType: 'api_error', stream });
            assert.ok(['upstream_reset', 'upstream_protocol', 'upstream_connect'].includes(rec.error), `${mode}: error ${rec.error}`);
        }
    }
    /* mock's own garbage scenario too */
    await st.mock.scenario({ type: 'garbage' });
    await expectFault('mock garbage', '/ai', { status: 502, errType: 'api_error' });
});

test('reset and invalid SSE mid-stream -> event: error in the stream', { timeout: slow(30000) }, async () => {
    rawState.mode = 'sse-reset';
    await expectStreamError('raw SSE reset', '/raw', { logError: 'upstream_reset' });
    rawState.mode = 'sse-garbage';
    await expectStreamError('raw SSE garbage', '/raw');
    await st.mock.scenario({ type: 'reset', reset_after: 3 });
    await expectStreamError('mock reset after 3 chunks', '/ai', { logError: 'upstream_reset' });
    await st.mock.scenario({ type: 'invalid_json' });
    await expectStreamError('mock invalid SSE JSON', '/ai');
    await st.mock.scenario({ type: 'stream_error' });
    await expectStreamError('mock in-stream error object', '/ai');
});

test('a reset before any response byte -> 502, and a POST is never sent twice', { timeout: slow(20000) }, async () => {
    rawState.mode = 'reset-no-answer';
    for (const stream of [false, true]) {
        const { rec } = await expectFault(`reset, no answer, stream=${stream}`, '/raw', { status: 502, errType: 'api_error', stream });
        assert.equal(rec.error, 'upstream_reset');
    }
    /* On a reused keep-alive connection a reset after the request went out
     * looks like the provider closing it while idle; the core retries only
     * what may be sent twice (docs/upstream.md), and a Messages POST without
     * an Idempotency-Key is not: an honest 502, one request at the provider. */
    faults++;
    await postMessages(st.port, body(false));            /* warm the pool */
    await st.mock.clearRequests();
    await st.mock.scenario({ type: 'reset' });
    const r = await postMessages(st.port, body(false));
    const seen = (await st.mock.chatRequests()).length;
    assert.equal(r.status, 502, r.text);
    assert.equal(anthropicErrorProblem(r.text, 'api_error'), '');
    assert.equal(seen, 1, 'the provider saw the POST once');
});

/* A non-streaming answer's head is held back (api->resp_buffer) until
 * ai-proxy has translated the body, so an invalid or truncated body still
 * gets an honest 502. */
test('invalid JSON body / close mid-body (non-streaming) -> 502', {
    timeout: 20000,
}, async () => {
    await st.mock.scenario({ type: 'invalid_json' });
    await expectFault('invalid JSON body', '/ai', { status: 502, errType: 'api_error', upstreamStatus: '200' });
    rawState.mode = 'close-mid-body';
    await expectFault('close mid-body', '/raw', { status: 502, errType: 'api_error' });
});

test('429, 500, 503 from the provider keep their status as Anthropic errors', { timeout: slow(20000) }, async () => {
    for (const [status, type] of [[429, 'rate_limit_error'], [500, 'api_error'], [503, null], [400, 'invalid_request_error']]) {
        for (const stream of [false, true]) {
            await st.mock.scenario({ type: 'error', status, retry_after: 7 });
            const { r } = await expectFault(`${status} stream=${stream}`, '/ai',
                { status, errType: type ?? undefined, upstreamStatus: String(status), stream });
            if (status === 429) assert.equal(r.headers['retry-after'], '7', 'Retry-After passed through');
        }
    }
});

test('a stalled provider: read_timeout gives 504 (or event: error once streaming)', { timeout: slow(20000) }, async () => {
    await st.mock.scenario({ type: 'text', first_token_delay_ms: READ_TIMEOUT * 3 });
    const t0 = Date.now();
    await expectFault('stall before headers', '/ai', { status: 504, errType: 'api_error', logError: 'upstream_timeout' });
    assert.ok(Date.now() - t0 < READ_TIMEOUT * 2.5, `timeout after ${Date.now() - t0} ms`);
    await st.mock.scenario({ type: 'text', headers_first: true, first_token_delay_ms: READ_TIMEOUT * 3 });
    await expectStreamError('stall after headers', '/ai', { logError: 'upstream_timeout' });
    /* not streaming: the head is held, so the client still gets a status,
     * and it is the timeout's 504, not a 502 "connection closed" */
    rawState.mode = 'stall-after-head';
    await expectFault('stall after headers, not streaming', '/raw', { status: 504, logError: 'upstream_timeout' });
    await st.mock.scenario({ type: 'text', tokens: 50, token_delay_ms: READ_TIMEOUT * 3 });
    await expectStreamError('stall mid-stream', '/ai', { logError: 'upstream_timeout' });
});

test('after every fault the gateway still serves and no worker died', { timeout: slow(10000) }, async () => {
    await sleep(100);
    for (const stream of [false, true]) {
        const r = await postMessages(st.port, body(stream));
        assert.equal(r.status, 200, r.text.slice(0, 300));
    }
    assert.deepEqual(st.workers(), workers0, 'worker pids changed');
    assert.doesNotMatch(st.gw.stderr, /killed by signal|exited with status/);
    console.log(`# upstream-faults: ${faults} faults survived`);
});
