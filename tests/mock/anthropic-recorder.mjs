#!/usr/bin/env node
/* anthropic-recorder.mjs - a fake Anthropic API that records what a client sends
 *
 * Used to capture what the real Claude Code CLI puts on the wire (the fixtures
 * under tests/fixtures/claude-code/ come from it). It answers
 *   POST /v1/messages              Anthropic SSE stream, or JSON when stream:false
 *   POST /v1/messages/count_tokens {"input_tokens": N}
 *   HEAD|GET /api/hello            200 (the CLI's connectivity probe)
 *   anything else                  404 Anthropic error body
 * under any path prefix (ANTHROPIC_BASE_URL may carry one, e.g. /anything).
 *
 * The first /v1/messages turn whose last user message contains the word
 * TOOLTEST is answered with a Bash tool_use (command from --tool-command),
 * THINKTEST the same preceded by a thinking block (with a signature);
 * a turn that carries a tool_result is answered with text quoting it. That
 * gives a capture of both the first turn and a tool_result turn.
 *
 * --break-streams N cuts the first N streamed answers after message_start
 * (to capture the CLI's retry and its non-streaming fallback); --break-kind
 * reset (default: drop the socket) | end (clean end, no message_stop) |
 * empty (200 SSE with no event) | json (200 JSON to a stream request) | idle |
 * error (message_start, then event: error of --break-error-type, then a clean end) |
 * error-after-text (the same after a text block).
 *
 * --fail-first N --fail-status S answers the first N /v1/messages calls with
 * status S and an Anthropic error body (to see how the CLI retries).
 *
 * Usage: node anthropic-recorder.mjs --port 0 [--out DIR] [--tool-command CMD]
 * Prints "listening <port>". Every request is kept in memory (GET
 * /__rec/requests) and, with --out, written to DIR/NNN-<what>.json with any
 * credential replaced by a placeholder.
 */
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const args = parseArgs(process.argv.slice(2));
const port = Number(args.port ?? 0);
const outDir = args.out ?? null;
const toolCommand = args['tool-command'] ?? 'echo sluice-tool-output-42';
const breakStreams = Number(args['break-streams'] ?? 0);
const breakKind = args['break-kind'] ?? 'reset';
const records = [];
let streamsBroken = 0;
const failFirst = Number(args['fail-first'] ?? 0);
const failStatus = Number(args['fail-status'] ?? 429);
let failed = 0;
let seq = 0;

function parseArgs(argv) {
    const o = {};
    for (let i = 0; i < argv.length; i++) {
        if (argv[i].startsWith('--')) {
            const k = argv[i].slice(2);
            const v = argv[i + 1] !== undefined && !argv[i + 1].startsWith('--') ? argv[++i] : 'true';
            o[k] = v;
        }
    }
    return o;
}

/* Credentials never land in a fixture: keep the header, replace the secret. */
export function redactHeaders(h) {
    const out = {};
    for (const [k, v] of Object.entries(h)) {
        const lk = k.toLowerCase();
        if (lk === 'x-api-key') out[k] = 'sk-ant-PLACEHOLDER';
        else if (lk === 'authorization' || lk === 'proxy-authorization')
            out[k] = String(v).replace(/^(\w+)\s+.*/, '$1 sk-ant-PLACEHOLDER');
        else out[k] = v;
    }
    return out;
}

function lastUserText(body) {
    const msgs = Array.isArray(body?.messages) ? body.messages : [];
    for (let i = msgs.length - 1; i >= 0; i--) {
        if (msgs[i].role !== 'user') continue;
        const c = msgs[i].content;
        if (typeof c === 'string') return { text: c, msg: msgs[i] };
        if (Array.isArray(c)) {
            return {
                text: c.filter((b) => b.type === 'text').map((b) => b.text).join('\n'),
                msg: msgs[i],
            };
        }
        return { text: '', msg: msgs[i] };
    }
    return { text: '', msg: null };
}

function toolResultText(msg) {
    if (!msg || !Array.isArray(msg.content)) return null;
    const tr = msg.content.find((b) => b.type === 'tool_result');
    if (!tr) return null;
    if (typeof tr.content === 'string') return tr.content;
    if (Array.isArray(tr.content)) return tr.content.filter((b) => b.type === 'text').map((b) => b.text).join('\n');
    return '';
}

/* Decide the answer: a list of content blocks plus a stop reason. */
function answerFor(body) {
    const { text, msg } = lastUserText(body);
    const tr = toolResultText(msg);
    if (tr !== null) {
        return { blocks: [{ type: 'text', text: `The command printed: ${tr.trim()}` }], stop: 'end_turn' };
    }
    if (/TOOLTEST|THINKTEST/.test(text)) {
        const thinking = /THINKTEST/.test(text)
            ? [{ type: 'thinking', thinking: 'The user wants the marker printed.', signature: 'c2lnLXJlY29yZGVy' }]
            : [];
        return {
            blocks: [
                ...thinking,
                { type: 'text', text: 'Running it.' },
                {
                    type: 'tool_use',
                    id: `toolu_rec${String(seq).padStart(4, '0')}`,
                    name: 'Bash',
                    input: { command: toolCommand, description: 'Print a marker' },
                },
            ],
            stop: 'tool_use',
        };
    }
    return { blocks: [{ type: 'text', text: 'Hello from the recorder.' }], stop: 'end_turn' };
}

function sse(res, type, data) {
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
}

function sendStream(res, body, ans) {
    res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'request-id': `req_rec${seq}`,
    });
    sse(res, 'message_start', {
        message: {
            id: `msg_rec${seq}`, type: 'message', role: 'assistant', model: body.model ?? 'unknown',
            content: [], stop_reason: null, stop_sequence: null,
            usage: { input_tokens: 10, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
        },
    });
    ans.blocks.forEach((b, index) => {
        if (b.type === 'thinking') {
            sse(res, 'content_block_start', { index, content_block: { type: 'thinking', thinking: '', signature: '' } });
            sse(res, 'content_block_delta', { index, delta: { type: 'thinking_delta', thinking: b.thinking } });
            sse(res, 'content_block_delta', { index, delta: { type: 'signature_delta', signature: b.signature } });
        } else if (b.type === 'text') {
            sse(res, 'content_block_start', { index, content_block: { type: 'text', text: '' } });
            if (index === 0) sse(res, 'ping', {});
            sse(res, 'content_block_delta', { index, delta: { type: 'text_delta', text: b.text } });
        } else {
            sse(res, 'content_block_start', { index, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } });
            const j = JSON.stringify(b.input);
            const mid = Math.floor(j.length / 2);
            sse(res, 'content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: '' } });
            sse(res, 'content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: j.slice(0, mid) } });
            sse(res, 'content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: j.slice(mid) } });
        }
        sse(res, 'content_block_stop', { index });
    });
    sse(res, 'message_delta', { delta: { stop_reason: ans.stop, stop_sequence: null }, usage: { output_tokens: 7 } });
    sse(res, 'message_stop', {});
    res.end();
}

function sendJson(res, status, obj) {
    const b = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(b), 'request-id': `req_rec${seq}` });
    res.end(b);
}

function save(rec, raw) {
    records.push({ ...rec, rawBody: raw.toString('utf8') });
    if (!outDir) return;
    fs.mkdirSync(outDir, { recursive: true });
    const what = `${rec.method}-${rec.path.split('?')[0].replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '')}`;
    fs.writeFileSync(path.join(outDir, `${String(rec.seq).padStart(3, '0')}-${what}.json`), JSON.stringify(rec, null, 2) + '\n');
}

const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const url = req.url;
        if (url.startsWith('/__rec/requests')) return sendJson(res, 200, records);
        seq++;
        let body = null;
        let parseError = null;
        if (raw.length) {
            try { body = JSON.parse(raw.toString('utf8')); } catch (e) { parseError = String(e); }
        }
        const p = url.split('?')[0];
        save({
            seq, method: req.method, path: url, httpVersion: req.httpVersion,
            headers: redactHeaders(req.headers), bodyBytes: raw.length,
            body: body ?? (parseError ? raw.toString('utf8') : null),
        }, raw);
        if (/\/api\/hello$/.test(p)) {
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': 2 });
            return res.end(req.method === 'HEAD' ? undefined : '{}');
        }
        if (req.method === 'POST' && /\/v1\/messages\/count_tokens$/.test(p)) {
            return sendJson(res, 200, { input_tokens: Math.ceil(raw.length / 4) });
        }
        if (req.method === 'POST' && /\/v1\/messages$/.test(p)) {
            if (!body) return sendJson(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'bad json' } });
            if (failed < failFirst) {
                failed++;
                const type = { 400: 'invalid_request_error', 401: 'authentication_error', 429: 'rate_limit_error',
                               529: 'overloaded_error' }[failStatus] ?? 'api_error';
                return sendJson(res, failStatus, { type: 'error', error: { type, message: `recorder says ${failStatus}` } });
            }
            const ans = answerFor(body);
            if (body.stream && streamsBroken < breakStreams) {
                /* Start a stream and drop the connection: what a dying upstream
                 * looks like; the CLI then retries or falls back to stream:false. */
                streamsBroken++;
                if (breakKind === 'json') {
                    return sendJson(res, 200, { type: 'message', note: 'not a stream' });
                }
                if (breakKind === 'empty') {
                    res.writeHead(200, { 'content-type': 'text/event-stream' });
                    return res.end();
                }
                res.writeHead(200, { 'content-type': 'text/event-stream' });
                sse(res, 'message_start', {
                    message: {
                        id: `msg_rec${seq}`, type: 'message', role: 'assistant', model: body.model, content: [],
                        stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 },
                    },
                });
                if (breakKind === 'end') return res.end();
                if (breakKind === 'error-after-text') {
                    sse(res, 'content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
                    sse(res, 'content_block_delta', { index: 0, delta: { type: 'text_delta', text: 'Hello ' } });
                    sse(res, 'content_block_stop', { index: 0 });
                    sse(res, 'error', { error: { type: args['break-error-type'] ?? 'api_error', message: 'upstream stream broke' } });
                    return res.end();
                }
                if (breakKind === 'error') {
                    sse(res, 'error', { error: { type: args['break-error-type'] ?? 'api_error', message: 'upstream stream broke' } });
                    return res.end();
                }
                if (breakKind === 'idle') return; /* never finishes */
                return setTimeout(() => res.socket.destroy(), 20);
            }
            if (body.stream) return sendStream(res, body, ans);
            return sendJson(res, 200, {
                id: `msg_rec${seq}`, type: 'message', role: 'assistant', model: body.model,
                content: ans.blocks, stop_reason: ans.stop, stop_sequence: null,
                usage: { input_tokens: 10, output_tokens: 7, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
            });
        }
        sendJson(res, 404, { type: 'error', error: { type: 'not_found_error', message: `Not found: ${req.method} ${p}` } });
    });
});

server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
