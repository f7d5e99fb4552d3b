#!/usr/bin/env node
/* dashscope.mjs - a mock DashScope (Alibaba Model Studio) compatible-mode chat API
 *
 * Speaks the wire format described in the DashScope fact sheet, so that sluice's
 * ai-proxy can be tested (and benchmarked) without an account:
 *   POST /compatible-mode/v1/chat/completions   (any query string)
 * Bearer auth (401 with DashScope's exact body), 400 for max_tokens over the
 * cap and the other request checks DashScope makes, SSE chunks shaped like
 * DashScope's (first chunk role + "", reasoning_content, tool-call argument
 * fragments with "id":"" on continuations, a finish chunk, a usage chunk only
 * with stream_options.include_usage, "data: [DONE]"), non-streaming JSON with
 * usage, and DashScope's response headers.
 *
 * What it answers is scripted, in this order of precedence:
 *  1. a queue filled with POST /__mock/scenario (a scenario object, or an
 *     array of them; each applies to the next `count` chat requests, default 1);
 *  2. a magic word in a message of the current turn (after the last
 *     assistant message):
 *     MOCK:tool_call, MOCK:parallel_tools, MOCK:thinking, MOCK:long,
 *     MOCK:length (see PRESETS);
 *  3. when the current turn has tool results: a text quoting them;
 *  4. otherwise a short text.
 * Scenario fields (all optional):
 *   type       text | tool_call | thinking | error | reset | invalid_json |
 *              garbage | stream_error
 *   text, reasoning, tool_calls [{name, arguments}], finish_reason,
 *   tokens     (text made of N tokens), usage {prompt_tokens,
 *              completion_tokens, cached_tokens, reasoning_tokens},
 *   status, body, content_type (error), reset_after (chunks before a reset),
 *   first_token_delay_ms, token_delay_ms, headers_first (send the response
 *   headers at once and only then wait first_token_delay_ms), count.
 * Every request received is recorded: GET /__mock/requests returns
 * [{seq, method, path, headers, body, bodyBytes, unknownFields, answer}],
 * DELETE /__mock/requests clears them, POST /__mock/reset clears everything.
 *
 * Explicit context cache: cache_control markers on content parts are
 * honoured as DashScope documents them (applyCache): a repeat within 5
 * minutes reports prompt_tokens_details.cached_tokens, new prefixes
 * cache_creation_input_tokens; the request record's answer.cache shows
 * {markers, counted, cached, created}.  enable_search (recorded in
 * answer.search; 400 for models without it), response_format json_schema
 * (400 for models without it) and json_object (400 without the word json).
 *
 * Also DashScope's Anthropic-compatible endpoint, POST /apps/anthropic/v1/
 * messages (answerAnthropic; explicit cache too).
 *
 * Usage: node dashscope.mjs --port 0 --key sk-test [--max-tokens-cap 8192]
 *        [--per-model-caps] [--host 127.0.0.1] [--no-record]
 * Prints "listening <port>" on stdout. Also importable: startMock(options).
 */
import http from 'node:http';
import crypto from 'node:crypto';
import { pathToFileURL } from 'node:url';

export const CHAT_PATH = '/compatible-mode/v1/chat/completions';

const APIKEY_MESSAGE =
    'Incorrect API key provided. For details, see: https://www.alibabacloud.com/help/en/model-studio/error-code#apikey-error';

/* Top-level request keys DashScope's compatible mode knows; anything else is
 * recorded in unknownFields so tests can prove no Anthropic field leaked. */
const KNOWN_FIELDS = new Set([
    'model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'temperature',
    'top_p', 'top_k', 'presence_penalty', 'frequency_penalty', 'repetition_penalty', 'seed', 'n', 'stop',
    'tools', 'tool_choice', 'parallel_tool_calls', 'response_format', 'logprobs', 'top_logprobs', 'user',
    'enable_thinking', 'thinking_budget', 'enable_search', 'search_options', 'modalities', 'audio',
    'vl_high_resolution_images', 'translation_options', 'result_format', 'incremental_output',
]);

export const PRESETS = {
    tool_call: {
        type: 'tool_call',
        text: '',
        tool_calls: [{ name: 'Bash', arguments: { command: 'echo sluice-e2e-marker', description: 'Print a marker' } }],
    },
    parallel_tools: {
        type: 'tool_call',
        text: 'Let me check both.',
        tool_calls: [
            { name: 'get_weather', arguments: { location: 'Hangzhou', unit: 'celsius' } },
            { name: 'get_weather', arguments: { location: 'Singapore', unit: 'celsius' } },
        ],
    },
    thinking: { type: 'thinking', reasoning: 'The user greets me. A short, friendly answer fits.', text: 'Hello! How can I help?' },
    long: { type: 'text', tokens: 200 },
    length: { type: 'text', tokens: 20, finish_reason: 'length' },
};

const DEFAULT_TEXT = 'Hello from mock DashScope.';

/* max_tokens bounds per model (with --per-model-caps; dashscope-extra.md) */
export const MODEL_CAPS = {
    'qwen3-max': 65536, 'qwen-max': 8192, 'qwen-plus': 32768, 'qwen3.5-plus': 65536,
    'qwen-flash': 32768, 'qwen-turbo': 16384, 'qwen3-coder-plus': 65536,
};
/* models with enable_search (International, 2026) and json_schema */
const SEARCH_MODELS = new Set(['qwen3-max', 'qwen-plus', 'qwen-flash', 'qwen3.5-plus']);
const SCHEMA_MODELS = new Set(['qwen3-max', 'qwen-plus', 'qwen-flash']);
const CACHE_TTL_MS = 5 * 60 * 1000;
const CACHE_MIN_TOKENS = 1024;

/* Explicit context cache, as DashScope documents it: a marker caches the
 * prompt from its start (tools, then messages) up to the marked part; only
 * the last 4 markers count; a prefix under 1024 tokens is not cached; an
 * entry lives 5 minutes, renewed by each hit.  A request's cached_tokens is
 * its longest prefix found; cache_creation_input_tokens what its last
 * marker adds beyond that.  Tokens here are bytes / 4 of the JSON. */
function cachePrefixes(body) {
    const out = [];
    let acc = JSON.stringify(body.tools ?? []);
    for (const m of body.messages) {
        acc += `|${m.role}|`;
        if (Array.isArray(m.content)) {
            for (const p of m.content) {
                acc += JSON.stringify(p.text ?? p.image_url ?? '');
                if (p.cache_control) out.push({ key: `${body.model}\u0000${acc}`, tokens: Math.ceil(acc.length / 4) });
            }
        } else {
            acc += JSON.stringify(m.content ?? '');
        }
        if (m.tool_calls) acc += JSON.stringify(m.tool_calls);
    }
    return out;
}

function applyCache(state, body) {
    const marks = cachePrefixes(body);
    if (!marks.length) return null;
    const now = Date.now();
    const used = marks.slice(-4).filter((x) => x.tokens >= CACHE_MIN_TOKENS);
    let cached = 0;
    for (const x of used) {
        const e = state.cache.get(x.key);
        if (e && e.expires > now) {
            cached = Math.max(cached, x.tokens);
            e.expires = now + CACHE_TTL_MS;
        }
    }
    const last = used.length ? used[used.length - 1].tokens : 0;
    const created = Math.max(0, last - cached);
    for (const x of used) {
        if (!state.cache.has(x.key)) state.cache.set(x.key, { expires: now + CACHE_TTL_MS });
    }
    return { markers: marks.length, counted: used.length, cached, created };
}

function uuid() {
    return crypto.randomUUID();
}

/* Split a text into "tokens": a word with the spaces after it. */
export function tokenize(text) {
    if (!text) return [];
    return text.match(/\s*\S+\s*|\s+/g) ?? [text];
}

function splitEvery(s, n) {
    const out = [];
    for (let i = 0; i < s.length; i += n) out.push(s.slice(i, i + n));
    return out.length ? out : [''];
}

function contentText(content) {
    if (typeof content === 'string') return content;
    if (Array.isArray(content)) {
        return content.map((p) => (p && p.type === 'text' ? p.text : '')).join('\n');
    }
    return '';
}

function dsError(status, code, type, message, requestId, withId = true) {
    const error = { code, param: null, message, type };
    const body = { error };
    if (withId) body.id = `chatcmpl-${requestId}`;
    body.request_id = requestId;
    return body;
}

/* The error body DashScope sends for a given status (compatible mode). */
export function errorBodyFor(status, requestId, message) {
    switch (status) {
    case 400:
        return dsError(400, 'invalid_parameter_error', 'invalid_request_error',
            message ?? '<400> InternalError.Algo.InvalidParameter: The request is invalid.', requestId);
    case 401:
        return {
            error: { message: APIKEY_MESSAGE, type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
            request_id: requestId,
        };
    case 403:
        return dsError(403, 'access_denied', 'access_denied', message ?? 'Access denied.', requestId);
    case 404:
        return dsError(404, 'model_not_found', 'invalid_request_error',
            message ?? 'The model does not exist or you do not have access to it.', requestId);
    case 429:
        return dsError(429, 'limit_requests', 'limit_requests',
            message ?? 'Requests rate limit exceeded, try again later.', requestId);
    case 500:
        return dsError(500, 'internal_error', 'internal_error',
            message ?? 'An internal error has occured, try again later or contact service support.', requestId);
    case 503:
        return dsError(503, 'ModelUnavailable', 'internal_error',
            message ?? 'Model is unavailable, try again later.', requestId);
    default:
        return dsError(status, 'internal_error', 'internal_error', message ?? `mock error ${status}`, requestId);
    }
}

/* Checks DashScope makes before answering; returns [status, message] or null. */
function validate(body, opts) {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        return [400, '<400> InternalError.Algo.InvalidParameter: Request body must be a JSON object'];
    }
    if (!body.model) return [400, 'you must provide a model parameter.'];
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
        return [400, '<400> InternalError.Algo.InvalidParameter: [] is too short - \'messages\''];
    }
    const mt = body.max_tokens;
    const cap = (opts.perModelCaps && MODEL_CAPS[body.model]) || opts.maxTokensCap;
    if (mt !== undefined && mt !== null && (!Number.isInteger(mt) || mt < 1 || mt > cap)) {
        return [400, `<400> InternalError.Algo.InvalidParameter: Range of max_tokens should be [1, ${cap}]`];
    }
    if (body.enable_search === true && !SEARCH_MODELS.has(body.model)) {
        return [400, '<400> InternalError.Algo.InvalidParameter: This model does not support enable_search.'];
    }
    const rf = body.response_format;
    if (rf && rf.type === 'json_schema' && !SCHEMA_MODELS.has(body.model)) {
        return [400, '<400> InternalError.Algo.InvalidParameter: json_schema is not supported by this model'];
    }
    if (rf && rf.type === 'json_object' && !JSON.stringify(body.messages).toLowerCase().includes('json')) {
        return [400, '<400> InternalError.Algo.InvalidParameter: \'messages\' must contain the word \'json\' in some form, to use \'response_format\' of type \'json_object\'.'];
    }
    const t = body.temperature;
    if (t !== undefined && t !== null && (typeof t !== 'number' || t < 0 || t >= 2)) {
        return [400, '<400> InternalError.Algo.InvalidParameter: Temperature should be in [0.0, 2.0)'];
    }
    const tp = body.top_p;
    if (tp !== undefined && tp !== null && (typeof tp !== 'number' || tp <= 0 || tp > 1)) {
        return [400, '<400> InternalError.Algo.InvalidParameter: Range of top_p should be (0.0, 1.0]'];
    }
    if (body.enable_thinking === true && !body.stream) {
        return [400, '<400> InternalError.Algo.InvalidParameter: parameter.enable_thinking must be set to false for non-streaming calls'];
    }
    if (body.enable_thinking === true && body.response_format && body.response_format.type === 'json_object') {
        return [400, '<400> InternalError.Algo.InvalidParameter: Json mode response is not supported when enable_thinking is true'];
    }
    if (body.tools !== undefined) {
        if (!Array.isArray(body.tools)) return [400, '<400> InternalError.Algo.InvalidParameter: tools must be a list'];
        for (const tool of body.tools) {
            if (!tool || tool.type !== 'function' || !tool.function || typeof tool.function.name !== 'string') {
                return [400, '<400> InternalError.Algo.InvalidParameter: tools must be of type function with a name'];
            }
            if (tool.function.name === 'search') {
                return [400, '<400> InternalError.Algo.InvalidParameter: Tool names are not allowed to be [search]'];
            }
        }
    }
    const tc = body.tool_choice;
    if (tc !== undefined && typeof tc === 'string' && tc !== 'auto' && tc !== 'none') {
        return [400, '<400> InternalError.Algo.InvalidParameter: tool_choice is one of the strings that should be ["none", "auto"]'];
    }
    let lastHadToolCalls = false;
    for (const [i, m] of body.messages.entries()) {
        if (!m || !['system', 'user', 'assistant', 'tool'].includes(m.role)) {
            return [400, `<400> InternalError.Algo.InvalidParameter: messages[${i}].role is invalid`];
        }
        if (m.role === 'tool') {
            if (!lastHadToolCalls) {
                return [400, '<400> InternalError.Algo.InvalidParameter: Messages with role "tool" must be a response to a preceding message with "tool_calls"'];
            }
            if (typeof m.tool_call_id !== 'string') {
                return [400, `<400> InternalError.Algo.InvalidParameter: messages[${i}].tool_call_id is required`];
            }
            continue;
        }
        lastHadToolCalls = m.role === 'assistant' && Array.isArray(m.tool_calls) && m.tool_calls.length > 0;
        if (m.role === 'assistant' && Array.isArray(m.tool_calls)) {
            for (const call of m.tool_calls) {
                if (!call || typeof call.id !== 'string' || !call.function || typeof call.function.arguments !== 'string') {
                    return [400, `<400> InternalError.Algo.InvalidParameter: messages[${i}].tool_calls: arguments must be a JSON string`];
                }
            }
        }
    }
    return null;
}

/* Pick the scenario for a request (see the header comment for the order). */
function chooseScenario(state, body) {
    if (state.queue.length) {
        const head = state.queue[0];
        head.remaining = (head.remaining ?? head.count ?? 1) - 1;
        if (head.remaining <= 0) state.queue.shift();
        return { ...head, source: 'queue' };
    }
    /* Look only at the current turn: the messages after the last assistant
     * message (Claude Code puts system messages in the middle of the list,
     * even last, and a translator may turn them into user messages). */
    const lastAssistant = body.messages.findLastIndex((m) => m.role === 'assistant');
    const turn = body.messages.slice(lastAssistant + 1);
    const tool = turn.find((m) => m.role === 'tool');
    if (tool) {
        const all = turn.filter((m) => m.role === 'tool').map((m) => contentText(m.content).trim()).join(' | ');
        return { type: 'text', text: `The tool said: ${all}`, source: 'tool_result' };
    }
    for (const m of turn) {
        const w = /MOCK:([a-z_]+)/.exec(contentText(m.content));
        if (w && PRESETS[w[1]]) return { ...PRESETS[w[1]], source: `magic:${w[1]}` };
    }
    return { type: 'text', text: DEFAULT_TEXT, source: 'default' };
}

function answerText(sc) {
    if (sc.tokens) {
        const words = [];
        for (let i = 0; i < sc.tokens; i++) words.push(`tok${i}`);
        return words.join(' ');
    }
    if (sc.text !== undefined) return sc.text;
    return sc.type === 'tool_call' ? '' : DEFAULT_TEXT;
}

function argString(a) {
    return typeof a === 'string' ? a : JSON.stringify(a ?? {});
}

/* Build the answer as a list of delta pieces plus the final message. */
function planAnswer(sc, body, requestId, bodyBytes) {
    const thinking = sc.type === 'thinking' || (body.enable_thinking === true && sc.type !== 'tool_call') ||
        sc.reasoning !== undefined;
    const reasoning = thinking ? (sc.reasoning ?? 'Thinking about the request.') : null;
    const text = answerText(sc);
    const calls = (sc.type === 'tool_call' ? sc.tool_calls ?? PRESETS.tool_call.tool_calls : []).map((c, i) => ({
        index: i,
        id: `call_${crypto.randomBytes(12).toString('hex')}`,
        name: c.name,
        arguments: argString(c.arguments),
    }));
    const reasoningTokens = tokenize(reasoning ?? '');
    const textTokens = tokenize(text);
    let completion = reasoningTokens.length + textTokens.length;
    for (const c of calls) completion += Math.max(1, Math.ceil(c.arguments.length / 4));
    const u = sc.usage ?? {};
    const usage = {
        prompt_tokens: u.prompt_tokens ?? Math.max(1, Math.ceil(bodyBytes / 4)),
        completion_tokens: u.completion_tokens ?? Math.max(1, completion),
    };
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    usage.prompt_tokens_details = { cached_tokens: u.cached_tokens ?? 0 };
    if (sc.cache) {
        /* explicit cache: DashScope's shape */
        usage.prompt_tokens_details = {
            cached_tokens: sc.cache.cached,
            cache_creation_input_tokens: sc.cache.created,
            cache_type: 'ephemeral',
            cache_creation: { ephemeral_5m_input_tokens: sc.cache.created },
        };
        usage.prompt_tokens = Math.max(usage.prompt_tokens, sc.cache.cached + sc.cache.created + 5);
        usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    }
    if (thinking || u.reasoning_tokens !== undefined) {
        usage.completion_tokens_details = { reasoning_tokens: u.reasoning_tokens ?? reasoningTokens.length };
    }
    const finish = sc.finish_reason ?? (calls.length ? 'tool_calls' : 'stop');
    return { thinking, reasoning, reasoningTokens, text, textTokens, calls, usage, finish, requestId, model: body.model };
}

function baseHeaders(requestId, arrive, stream) {
    const now = Date.now();
    return {
        'content-type': stream ? 'text/event-stream;charset=UTF-8' : 'application/json',
        'x-request-id': requestId,
        'x-dashscope-call-gateway': 'true',
        'req-arrive-time': String(arrive),
        'resp-start-time': String(now),
        'req-cost-time': String(now - arrive),
        'x-envoy-upstream-service-time': String(now - arrive),
        server: 'istio-envoy',
        vary: 'Origin,Access-Control-Request-Method,Access-Control-Request-Headers, Accept-Encoding',
    };
}

function nonStreamBody(plan, created) {
    const message = { role: 'assistant', content: plan.text };
    if (plan.thinking) message.reasoning_content = plan.reasoning;
    if (plan.calls.length) {
        message.tool_calls = plan.calls.map((c) => ({
            index: c.index, id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments },
        }));
    }
    return {
        choices: [{ message, finish_reason: plan.finish, index: 0, logprobs: null }],
        object: 'chat.completion',
        usage: plan.usage,
        created,
        system_fingerprint: null,
        model: plan.model,
        id: `chatcmpl-${plan.requestId}`,
    };
}

/* The sequence of SSE "data:" payloads (objects, or raw strings) for a plan. */
function streamEvents(plan, created, includeUsage) {
    const id = `chatcmpl-${plan.requestId}`;
    const chunk = (delta, finish = null) => ({
        choices: [{ delta, finish_reason: finish, index: 0, logprobs: null }],
        object: 'chat.completion.chunk',
        usage: null,
        created,
        system_fingerprint: null,
        model: plan.model,
        id,
    });
    const ev = [];
    const first = { content: '', role: 'assistant' };
    if (plan.thinking) first.reasoning_content = '';
    ev.push(chunk(first));
    for (const r of plan.reasoningTokens) ev.push(chunk({ content: null, reasoning_content: r }));
    for (const t of plan.textTokens) {
        ev.push(chunk(plan.thinking ? { content: t, reasoning_content: null } : { content: t }));
    }
    for (const c of plan.calls) {
        /* The first call carries a partial JSON right away, later ones start
         * with ""; continuations have "id":"" and no name; one empty
         * function object follows, as DashScope sometimes sends. */
        const frags = splitEvery(c.arguments, 7);
        const head = c.index === 0 ? frags.shift() : '';
        ev.push(chunk({
            content: null,
            tool_calls: [{ index: c.index, id: c.id, type: 'function', function: { name: c.name, arguments: head } }],
        }));
        for (const f of frags) {
            ev.push(chunk({ tool_calls: [{ index: c.index, id: '', type: 'function', function: { arguments: f } }] }));
        }
        ev.push(chunk({ tool_calls: [{ index: c.index, id: '', type: 'function', function: {} }] }));
    }
    let finDelta = { content: '' };
    if (plan.calls.length) finDelta = {};
    else if (plan.thinking) finDelta = { content: '', reasoning_content: null };
    ev.push(chunk(finDelta, plan.finish));
    if (includeUsage) {
        ev.push({ choices: [], object: 'chat.completion.chunk', usage: plan.usage, created, system_fingerprint: null,
            model: plan.model, id });
    }
    ev.push('[DONE]');
    return ev;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function sendJson(res, status, headers, obj) {
    const b = typeof obj === 'string' ? obj : JSON.stringify(obj);
    res.writeHead(status, { ...headers, 'content-length': Buffer.byteLength(b) });
    res.end(b);
}

/* DashScope's Anthropic-compatible Messages API (POST /apps/anthropic/v1/
 * messages): the key as x-api-key or Bearer; the answer in Anthropic's
 * shape with DashScope's usage quirk when streaming - message_start carries
 * the FULL prompt as input_tokens, message_delta the split counts. */
export const ANTHROPIC_PATH = '/apps/anthropic/v1/messages';

async function answerAnthropic(state, req, res, raw, rec, arrive) {
    const requestId = uuid();
    const key = req.headers['x-api-key'] ?? (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const aerr = (status, type, message) => sendJson(res, status, baseHeaders(requestId, arrive, false),
        { type: 'error', error: { type, message }, request_id: requestId });
    if (key !== state.opts.key) {
        rec.answer = { status: 401 };
        return aerr(401, 'authentication_error', 'invalid x-api-key');
    }
    let body;
    try { body = JSON.parse(raw.toString('utf8')); } catch {
        rec.answer = { status: 400 };
        return aerr(400, 'invalid_request_error', 'invalid JSON');
    }
    if (!body.model || !Array.isArray(body.messages) || !body.messages.length || !Number.isInteger(body.max_tokens)) {
        rec.answer = { status: 400 };
        return aerr(400, 'invalid_request_error', 'model, messages and max_tokens are required');
    }
    const sys = typeof body.system === 'string' ? [{ type: 'text', text: body.system }] : (body.system ?? []);
    const cache = applyCache(state, { model: body.model, tools: body.tools,
        messages: [{ role: 'system', content: sys }, ...body.messages.map((m) => ({ role: m.role,
            content: typeof m.content === 'string' ? m.content : m.content })) ] });
    const text = DEFAULT_TEXT;
    const prompt = Math.max(1, Math.ceil(raw.length / 4), cache ? cache.cached + cache.created + 5 : 0);
    const usage = {
        input_tokens: prompt - (cache?.cached ?? 0) - (cache?.created ?? 0),
        output_tokens: tokenize(text).length,
        cache_creation_input_tokens: cache?.created ?? 0,
        cache_read_input_tokens: cache?.cached ?? 0,
    };
    rec.answer = { status: 200, anthropic: true, stream: body.stream === true, usage, prompt_tokens: prompt, text };
    if (cache) rec.answer.cache = cache;
    const id = `msg_${requestId.replace(/-/g, '')}`;
    if (body.stream !== true) {
        return sendJson(res, 200, baseHeaders(requestId, arrive, false), {
            id, type: 'message', role: 'assistant', model: body.model, content: [{ type: 'text', text }],
            stop_reason: 'end_turn', stop_sequence: null, usage,
        });
    }
    res.writeHead(200, baseHeaders(requestId, arrive, true));
    const ev = (type, data) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
    ev('message_start', { message: { id, type: 'message', role: 'assistant', model: body.model, content: [],
        stop_reason: null, stop_sequence: null, usage: { input_tokens: prompt, output_tokens: 0 } } });
    ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } });
    for (const t of tokenize(text)) ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } });
    ev('content_block_stop', { index: 0 });
    ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null },
        usage: { ...usage, cache_creation: { ephemeral_5m_input_tokens: usage.cache_creation_input_tokens } } });
    ev('message_stop', {});
    res.end();
    return undefined;
}

async function answerChat(state, req, res, raw, rec, arrive) {
    const requestId = uuid();
    const opts = state.opts;
    const auth = req.headers.authorization ?? '';
    if (auth !== `Bearer ${opts.key}`) {
        rec.answer = { status: 401 };
        return sendJson(res, 401, baseHeaders(requestId, arrive, false), errorBodyFor(401, requestId));
    }
    let body;
    try {
        body = JSON.parse(raw.toString('utf8'));
    } catch {
        rec.answer = { status: 400, reason: 'invalid json' };
        return sendJson(res, 400, baseHeaders(requestId, arrive, false),
            errorBodyFor(400, requestId, '<400> InternalError.Algo.InvalidParameter: Request body is not valid JSON'));
    }
    const bad = validate(body, opts);
    if (bad) {
        rec.answer = { status: bad[0], reason: bad[1] };
        return sendJson(res, bad[0], baseHeaders(requestId, arrive, false), errorBodyFor(bad[0], requestId, bad[1]));
    }
    const sc = { ...chooseScenario(state, body) };
    const cache = applyCache(state, body);
    if (cache) sc.cache = cache;
    if (body.enable_search === true && sc.type === undefined) sc.type = 'text';
    const stream = body.stream === true;
    const includeUsage = stream && body.stream_options?.include_usage === true;
    rec.answer = { scenario: sc.type ?? 'text', source: sc.source, stream };
    if (cache) rec.answer.cache = cache;
    if (body.enable_search === true) rec.answer.search = { search_options: body.search_options ?? null };

    if (sc.type === 'error') {
        const status = sc.status ?? 500;
        rec.answer.status = status;
        if (sc.first_token_delay_ms) await sleep(sc.first_token_delay_ms);
        const headers = baseHeaders(requestId, arrive, false);
        if (sc.content_type) headers['content-type'] = sc.content_type;
        if (sc.retry_after !== undefined) headers['retry-after'] = String(sc.retry_after);
        return sendJson(res, status, headers, sc.body ?? errorBodyFor(status, requestId, sc.message));
    }
    if (sc.type === 'garbage') {
        rec.answer.status = 'garbage';
        if (sc.first_token_delay_ms) await sleep(sc.first_token_delay_ms);
        res.socket.end('HTTP/1.1 2oo WHAT\r\nthis is: not http\r\n\r\n\x00\x01garbage');
        return undefined;
    }
    const created = Math.floor(Date.now() / 1000);
    const plan = planAnswer(sc, body, requestId, raw.length);
    rec.answer.status = 200;
    rec.answer.usage = plan.usage;
    rec.answer.finish_reason = plan.finish;
    rec.answer.text = plan.text;
    rec.answer.reasoning = plan.reasoning;
    rec.answer.tool_calls = plan.calls;
    if (['reset', 'stream_error', 'invalid_json'].includes(sc.type)) rec.answer.broken = true;

    if (!stream) {
        if (sc.first_token_delay_ms) await sleep(sc.first_token_delay_ms);
        if (sc.type === 'reset') {
            res.socket.destroy();
            return undefined;
        }
        if (sc.type === 'invalid_json') {
            return sendJson(res, 200, baseHeaders(requestId, arrive, false), '{"choices":[{"message":{"role":"assistant","content":"tru');
        }
        return sendJson(res, 200, baseHeaders(requestId, arrive, false), nonStreamBody(plan, created));
    }

    if (sc.headers_first) {
        res.writeHead(200, baseHeaders(requestId, arrive, true));
        res.flushHeaders();
    }
    if (sc.first_token_delay_ms) await sleep(sc.first_token_delay_ms);
    if (!res.headersSent) res.writeHead(200, baseHeaders(requestId, arrive, true));
    const events = streamEvents(plan, created, includeUsage);
    const resetAfter = sc.type === 'reset' ? (sc.reset_after ?? 3) : -1;
    const errorAfter = sc.type === 'stream_error' ? (sc.error_after ?? 3) : -1;
    const badAfter = sc.type === 'invalid_json' ? (sc.error_after ?? 2) : -1;
    const delay = sc.token_delay_ms ?? 0;
    for (let i = 0; i < events.length; i++) {
        if (res.destroyed) return undefined;
        if (i === resetAfter) {
            /* let what was written reach the client first, then reset */
            await sleep(30);
            res.socket.resetAndDestroy?.() ?? res.socket.destroy();
            return undefined;
        }
        if (i === errorAfter) {
            res.end(`data: ${JSON.stringify({ error: {
                message: sc.message ?? 'Output data may contain inappropriate content.',
                type: 'data_inspection_failed', param: null, code: 'data_inspection_failed' } })}\n\n`);
            return undefined;
        }
        if (i === badAfter) {
            res.end('data: {"choices":[{"delta":{"content":"tru\n\ndata: [DONE]\n\n');
            return undefined;
        }
        const e = events[i];
        const line = `data: ${typeof e === 'string' ? e : JSON.stringify(e)}\n\n`;
        if (resetAfter >= 0) await new Promise((r) => res.write(line, r));
        else res.write(line);
        if (delay && i + 1 < events.length) await sleep(delay);
    }
    res.end();
    return undefined;
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => resolve(Buffer.concat(chunks)));
        req.on('error', reject);
    });
}

function record(state, req, raw) {
    let body = null;
    const text = raw.toString('utf8');
    if (raw.length) {
        try { body = JSON.parse(text); } catch { body = text; }
    }
    const unknownFields = body && typeof body === 'object' && !Array.isArray(body)
        ? Object.keys(body).filter((k) => !KNOWN_FIELDS.has(k)) : [];
    const rec = {
        seq: ++state.seq,
        time: Date.now(),
        method: req.method,
        path: req.url,
        httpVersion: req.httpVersion,
        headers: { ...req.headers },
        rawHeaders: req.rawHeaders,
        bodyBytes: raw.length,
        body,
        unknownFields,
        answer: null,
    };
    if (state.opts.record) {
        state.requests.push(rec);
        if (state.requests.length > state.opts.maxRecords) state.requests.shift();
    }
    return rec;
}

async function control(state, req, res, raw) {
    const p = req.url.split('?')[0];
    const ok = (obj) => sendJson(res, 200, { 'content-type': 'application/json' }, obj);
    if (p === '/__mock/requests' && req.method === 'GET') return ok(state.requests);
    if (p === '/__mock/requests' && req.method === 'DELETE') {
        state.requests = [];
        return ok({ cleared: true });
    }
    if (p === '/__mock/reset' && req.method === 'POST') {
        state.requests = [];
        state.queue = [];
        state.cache = new Map();
        return ok({ reset: true });
    }
    if (p === '/__mock/scenario' && req.method === 'POST') {
        let sc;
        try { sc = JSON.parse(raw.toString('utf8')); } catch {
            return sendJson(res, 400, { 'content-type': 'application/json' }, { error: 'scenario must be JSON' });
        }
        const list = Array.isArray(sc) ? sc : [sc];
        for (const s of list) state.queue.push({ ...s, remaining: s.count ?? 1 });
        return ok({ queued: list.length, pending: state.queue.length });
    }
    if (p === '/__mock/scenario' && req.method === 'GET') return ok(state.queue);
    if (p === '/__mock/scenario' && req.method === 'DELETE') {
        state.queue = [];
        return ok({ cleared: true });
    }
    if (p === '/__mock/health') return ok({ ok: true });
    return sendJson(res, 404, { 'content-type': 'application/json' }, { error: `no control endpoint ${p}` });
}

/* Start a mock; resolves to {port, url, baseUrl, state, close()}. */
export function startMock(options = {}) {
    const opts = {
        host: options.host ?? '127.0.0.1',
        port: options.port ?? 0,
        key: options.key ?? 'sk-test',
        maxTokensCap: options.maxTokensCap ?? 8192,
        perModelCaps: options.perModelCaps ?? false,
        record: options.record ?? true,
        maxRecords: options.maxRecords ?? 1000,
    };
    const state = { opts, queue: [], requests: [], seq: 0, cache: new Map() };
    const server = http.createServer(async (req, res) => {
        const arrive = Date.now();
        try {
            const raw = await readBody(req);
            if (req.url.startsWith('/__mock/')) return await control(state, req, res, raw);
            const rec = record(state, req, raw);
            const p = req.url.split('?')[0];
            if (p === CHAT_PATH && req.method === 'POST') return await answerChat(state, req, res, raw, rec, arrive);
            if (p === ANTHROPIC_PATH && req.method === 'POST') return await answerAnthropic(state, req, res, raw, rec, arrive);
            const requestId = uuid();
            rec.answer = { status: 404 };
            return sendJson(res, 404, baseHeaders(requestId, arrive, false),
                errorBodyFor(404, requestId, `Not found: ${req.method} ${p}`));
        } catch (e) {
            if (!res.headersSent) sendJson(res, 500, {}, { error: String(e) });
            else res.destroy();
        }
        return undefined;
    });
    server.keepAliveTimeout = 65000;
    server.headersTimeout = 66000;
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
            const port = server.address().port;
            resolve({
                port,
                url: `http://${opts.host}:${port}${CHAT_PATH}`,
                baseUrl: `http://${opts.host}:${port}/compatible-mode/v1`,
                state,
                server,
                close: () => new Promise((r) => {
                    server.close(() => r());
                    server.closeAllConnections?.();
                }),
            });
        });
    });
}

function parseArgs(argv) {
    const o = {};
    for (let i = 0; i < argv.length; i++) {
        if (!argv[i].startsWith('--')) continue;
        const k = argv[i].slice(2);
        if (argv[i + 1] !== undefined && !argv[i + 1].startsWith('--')) o[k] = argv[++i];
        else o[k] = true;
    }
    return o;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
    const a = parseArgs(process.argv.slice(2));
    const m = await startMock({
        host: a.host ?? '127.0.0.1',
        port: Number(a.port ?? 0),
        key: a.key ?? process.env.MOCK_DASHSCOPE_KEY ?? 'sk-test',
        maxTokensCap: Number(a['max-tokens-cap'] ?? 8192),
        perModelCaps: !!a['per-model-caps'],
        record: !a['no-record'],
    });
    process.stdout.write(`listening ${m.port}\n`);
    const stop = () => m.close().then(() => process.exit(0));
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}
