/* providers.mjs - in-process mock LLM providers speaking their real wire
 * formats, for the provider e2e suite (tests/e2e/providers.test.mjs).
 *
 * One HTTP server, routed by path as the providers are:
 *   POST /v1/chat/completions, /chat/completions   OpenAI chat and the
 *        OpenAI-compatible family (openai, mistral, deepseek, xai, cerebras,
 *        ollama's /v1, vllm, llama2; huggingface's messages API under
 *        <model URL>/v1/chat/completions; databricks'
 *        /serving-endpoints/chat/completions): `Authorization: Bearer <key>`
 *   POST /openai/deployments/<dep>/chat/completions?api-version=...  Azure
 *        OpenAI: `api-key: <key>`, or `Authorization: Bearer <Entra ID
 *        token>` issued by the mock token endpoints (tests/mock/oauth.mjs,
 *        served here too) and unexpired; api-version required
 *   POST /v1/embeddings, /openai/deployments/<dep>/embeddings
 *   POST /v1/completions, /openai/deployments/<dep>/completions   OpenAI's
 *        legacy Completions API: `prompt` required, text_completion answers
 *        and chunks (the usage chunk only for include_usage)
 *   POST /v2/embed  Cohere's v2 Embed API: `Authorization: Bearer`, input_type
 *        required, unknown fields refused; embeddings by type, billed units
 *   POST /v2/chat   Cohere's v2 Chat API: `Authorization: Bearer`, unknown
 *        fields refused (400), answers and typed SSE events in v2's shapes
 *   POST /v1/messages, /v1/messages/count_tokens   Anthropic Messages:
 *        `x-api-key`, `anthropic-version` required
 * A key names its provider (sk-<provider>-...): a wrong or missing key gets
 * that provider's own 401 body. Streams follow each provider's grammar
 * (OpenAI chunks with the usage chunk only for include_usage, Mistral's
 * usage in the last chunk, Anthropic's event/data pairs).
 *
 * What it answers: the next scripted answer (mock.next({...})), else a
 * magic word in the last user text (MOCK:tool_call, MOCK:error429), else
 * a text. Every request is recorded (mock.requests).
 */
import { createOAuth } from './oauth.mjs';
import http from 'node:http';

export const KEYS = {
    openai: 'sk-openai-0123456789', azure: 'azure-key-0123456789', anthropic: 'sk-ant-api-0123456789',
    mistral: 'sk-mistral-0123456789', deepseek: 'sk-deepseek-0123456789', xai: 'xai-key-0123456789',
    cerebras: 'csk-cerebras-0123456789', ollama: 'sk-ollama-0123456789', vllm: 'sk-vllm-0123456789',
    llama2: 'sk-llama2-0123456789', dashscope: 'sk-dashscope-0123456789',
    huggingface: 'hf_mockHuggingFace0123456789', databricks: 'dapi-mock-databricks-0123456789',
    cohere: 'co-mock-cohere-0123456789',
};
const KEY_OWNER = Object.fromEntries(Object.entries(KEYS).map(([p, k]) => [k, p]));

const TEXT = 'Hello from the mock provider.';
const TOOL = { id: 'call_mock_1', name: 'get_weather', arguments: { city: 'Paris', unit: 'celsius' } };

function words(text) {
    return text.match(/\S+\s*/g) ?? [text];
}

function lastUserText(body) {
    const msgs = body?.messages ?? [];
    for (let i = msgs.length - 1; i >= 0; i--) {
        if (msgs[i].role !== 'user') continue;
        const c = msgs[i].content;
        if (typeof c === 'string') return c;
        if (Array.isArray(c)) return c.filter((b) => b.type === 'text').map((b) => b.text).join(' ');
    }
    return '';
}

/* Cohere v2: the fields it knows (an unknown one is a 400), its roles. */
const COHERE_FIELDS = new Set(['model', 'messages', 'tools', 'documents', 'citation_options', 'response_format', 'safety_mode', 'max_tokens', 'stop_sequences', 'temperature', 'seed', 'frequency_penalty', 'presence_penalty', 'k', 'p', 'logprobs', 'tool_choice', 'strict_tools', 'stream', 'thinking', 'priority']);
function cohereCheck(body) {
    for (const k of Object.keys(body)) if (!COHERE_FIELDS.has(k)) return `unknown field: parameter ${k} is not a valid field`;
    if (!Array.isArray(body.messages) || body.messages.length === 0) return 'messages: must not be empty';
    for (const m of body.messages) {
        if (!['user', 'assistant', 'system', 'tool'].includes(m.role)) return `invalid role: ${m.role}`;
        for (const k of Object.keys(m)) if (!['role', 'content', 'tool_calls', 'tool_plan', 'tool_call_id', 'citations'].includes(k)) return `unknown field: message.${k}`;
        if (m.role === 'tool' && !m.tool_call_id) return 'tool message needs tool_call_id';
    }
    if (body.tool_choice !== undefined && !['REQUIRED', 'NONE'].includes(body.tool_choice)) return `invalid tool_choice ${body.tool_choice}`;
    return null;
}
function cohereLastUser(body) {
    const u = [...body.messages].reverse().find((m) => m.role === 'user');
    if (!u) return '';
    return typeof u.content === 'string' ? u.content : (u.content ?? []).map((c) => c.text ?? '').join(' ');
}

/* Anthropic's rule for tool results: each tool_result names a tool_use of
 * the assistant message right before it (its 400 text otherwise). */
function anthropicToolOrphan(body) {
    const msgs = body?.messages ?? [];
    for (let i = 0; i < msgs.length; i++) {
        if (msgs[i].role !== 'user' || !Array.isArray(msgs[i].content)) continue;
        const prev = i > 0 && msgs[i - 1].role === 'assistant' && Array.isArray(msgs[i - 1].content) ? msgs[i - 1].content : [];
        const ids = new Set(prev.filter((b) => b.type === 'tool_use').map((b) => b.id));
        for (const [k, b] of msgs[i].content.entries()) {
            if (b.type === 'tool_result' && !ids.has(b.tool_use_id)) {
                return `messages.${i}.content.${k}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${b.tool_use_id}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`;
            }
        }
    }
    return null;
}

/* The text of the tool results of the last message, when it carries any. */
function anthropicToolResult(body) {
    const last = body?.messages?.at(-1);
    if (last?.role !== 'user' || !Array.isArray(last.content)) return null;
    const res = last.content.filter((b) => b.type === 'tool_result');
    if (res.length === 0) return null;
    const text = (c) => (typeof c === 'string' ? c : (c ?? []).map((x) => x.text ?? '').join(''));
    return `The weather: ${res.map((b) => text(b.content)).join(', ')}`;
}

/* The error body each provider sends for a bad key. */
function authError(provider) {
    switch (provider) {
    case 'azure':
        return [401, { error: { code: '401', message: 'Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource.' } }];
    case 'anthropic':
        return [401, { type: 'error', error: { type: 'authentication_error', message: 'invalid x-api-key' }, request_id: 'req_mock401' }];
    case 'mistral':
        return [401, { message: 'Unauthorized', request_id: 'mock401' }];
    case 'huggingface': // the router and the Inference API: a bare error string
        return [401, { error: 'Invalid credentials in Authorization header' }];
    case 'databricks': // Databricks REST errors: error_code and message
        return [401, { error_code: '401', message: 'Credential was not sent or was of an unsupported type for this API. [ReqId: mock401]' }];
    default:
        return [401, { error: { message: 'Incorrect API key provided: sk-****. You can find your API key at https://platform.openai.com/account/api-keys.', type: 'invalid_request_error', param: null, code: 'invalid_api_key' } }];
    }
}

function rateError(provider) {
    if (provider === 'anthropic') {
        return [429, { type: 'error', error: { type: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit' } }];
    }
    if (provider === 'mistral') return [429, { object: 'error', message: 'Requests rate limit exceeded', type: 'rate_limited', param: null, code: '1300' }];
    return [429, { error: { message: 'Rate limit reached for requests', type: 'requests', param: null, code: 'rate_limit_exceeded' } }];
}

export async function startProviders() {
    const requests = [];
    const queue = [];
    const oauth = createOAuth(); /* Entra ID's token endpoint and IMDS, for azure */
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            const raw = Buffer.concat(chunks).toString('utf8');
            let body = null;
            try { body = raw ? JSON.parse(raw) : null; } catch { body = null; }
            const url = new URL(req.url, 'http://mock');
            if (oauth.handle(req, res, url, raw)) return;
            const rec = { method: req.method, path: url.pathname, query: url.search, headers: req.headers, raw, body };
            requests.push(rec);
            handle(req, res, url, body, rec).catch((e) => {
                res.writeHead(500, { 'content-type': 'application/json' });
                res.end(JSON.stringify({ error: { message: String(e) } }));
            });
        });
    });
    const send = (res, status, obj, headers = {}) => {
        const s = JSON.stringify(obj);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(s), ...headers });
        res.end(s);
    };

    async function handle(req, res, url, body, rec) {
        const p = url.pathname;
        const azure = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|completions|embeddings)$/.exec(p);
        const anthropic = p === '/v1/messages' || p === '/v1/messages/count_tokens';
        let provider;
        if (azure) {
            /* a key, or an Entra ID access token (Bearer) */
            const entra = req.headers['api-key'] === undefined && req.headers.authorization !== undefined;
            provider = KEY_OWNER[req.headers['api-key']] === 'azure' || (entra && oauth.tokenValid(req.headers.authorization)) ? 'azure' : null;
            rec.provider = provider;
            if (!provider && entra) return send(res, 401, { error: { code: '401', message: 'Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), or have expired.' } });
            if (!provider) return send(res, ...authError('azure'));
            if (!url.searchParams.get('api-version')) {
                return send(res, 404, { error: { code: '404', message: 'Resource not found' } });
            }
        } else if (p === '/v2/chat') {
            const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
            provider = m && KEY_OWNER[m[1]] === 'cohere' ? 'cohere' : null;
            rec.provider = provider;
            if (!provider) return send(res, 401, { id: 'mock-401', message: 'invalid api token' });
            if (body === null) return send(res, 400, { id: 'mock-400', message: 'invalid request: could not parse body' });
            const bad = cohereCheck(body);
            if (bad) return send(res, 400, { id: 'mock-400', message: `invalid request: ${bad}` });
            const sc = queue.shift() ?? {};
            const word = /MOCK:(\w+)/.exec(cohereLastUser(body))?.[1];
            const type = sc.type ?? (word === 'tool_call' ? 'tool_call' : word === 'error429' ? 'error429' : 'text');
            if (type === 'error429') return send(res, 429, { id: 'mock-429', message: 'You are using a Trial key, which is limited to 10 API calls / minute.' });
            const th = body.thinking;
            if (th !== undefined && !(['enabled', 'disabled'].includes(th.type) && Object.keys(th).every((k) => ['type', 'token_budget'].includes(k)) && (th.token_budget === undefined || Number.isInteger(th.token_budget)))) {
                return send(res, 400, { id: 'mock-400', message: 'invalid request: thinking: type must be enabled or disabled, token_budget an integer' });
            }
            /* a reasoning model thinks when asked, or (scripted) by default */
            const think = th?.type === 'enabled' || (sc.thinking === true && th?.type !== 'disabled');
            return answerCohere(res, body, type, body.messages.at(-1).role === 'tool' ? `The weather: ${body.messages.at(-1).content}` : TEXT, think);
        } else if (p === '/v2/embed') {
            /* Cohere's v2 Embed: model, texts, input_type (v3+ models), embedding_types */
            const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
            rec.provider = m && KEY_OWNER[m[1]] === 'cohere' ? 'cohere' : null;
            if (!rec.provider) return send(res, 401, { id: 'mock-401', message: 'invalid api token' });
            if (body === null) return send(res, 400, { id: 'mock-400', message: 'invalid request: could not parse body' });
            const known = ['model', 'texts', 'images', 'inputs', 'input_type', 'embedding_types', 'output_dimension', 'max_tokens', 'truncate'];
            const unknown = Object.keys(body).find((k) => !known.includes(k));
            if (unknown) return send(res, 400, { id: 'mock-400', message: `invalid request: unknown field: parameter ${unknown} is not a valid field` });
            if (typeof body.model !== 'string') return send(res, 400, { id: 'mock-400', message: 'invalid request: model must be specified' });
            if (!body.input_type) return send(res, 400, { id: 'mock-400', message: 'invalid request: valid input_type must be provided with the provided model' });
            if (!Array.isArray(body.texts) || body.texts.length === 0 || body.texts.length > 96) return send(res, 400, { id: 'mock-400', message: 'invalid request: texts must be an array of 1 to 96 strings' });
            if (body.texts.some((t) => t.includes('MOCK:error429'))) return send(res, 429, { id: 'mock-429', message: 'You are using a Trial key, which is limited to 10 API calls / minute.' });
            const types = body.embedding_types ?? ['float'];
            const vec = (t, i) => Array.from({ length: body.output_dimension ?? 4 }, (_, k) => Number((((t.length + i + k) % 9) / 10 - 0.4).toFixed(3)));
            const tokens = body.texts.reduce((n, t) => n + Math.max(1, Math.ceil(t.length / 4)), 0);
            return send(res, 200, {
                id: 'mock-embed-1', texts: body.texts, response_type: 'embeddings_by_type',
                embeddings: Object.fromEntries(types.map((ty) => [ty, body.texts.map(vec)])),
                meta: { api_version: { version: '2' }, billed_units: { input_tokens: tokens } },
            });
        } else if (anthropic) {
            provider = KEY_OWNER[req.headers['x-api-key']] === 'anthropic' ? 'anthropic' : null;
            rec.provider = provider;
            if (!provider) return send(res, ...authError('anthropic'));
            if (!req.headers['anthropic-version']) {
                return send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'anthropic-version: header is required' } });
            }
            const orphan = anthropicToolOrphan(body);
            if (orphan) return send(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: orphan } });
        } else if (/\/(chat\/completions|completions|embeddings)$/.test(p)) {
            const m = /^Bearer (.+)$/.exec(req.headers.authorization ?? '');
            provider = m ? KEY_OWNER[m[1]] : null;
            rec.provider = provider;
            /* whose API this is: by its path, else by the key's shape
             * (Hugging Face tokens start hf_, Databricks ones dapi) */
            const owner = p.startsWith('/serving-endpoints/') || /^dapi/.test(m?.[1] ?? '') ? 'databricks'
                : p.startsWith('/models/') || /^hf_/.test(m?.[1] ?? '') ? 'huggingface' : null;
            if (!provider || provider === 'azure' || provider === 'anthropic' || (owner && provider !== owner)) {
                return send(res, ...authError(owner ?? (m ? (KEY_OWNER[m[1]] ?? 'openai') : 'openai')));
            }
        } else {
            return send(res, 404, { error: { message: `mock: no route ${p}` } });
        }
        if (req.method !== 'POST' || body === null) {
            return send(res, 400, { error: { message: 'mock: POST a JSON body' } });
        }
        const sc = queue.shift() ?? {};
        const legacy = /\/completions$/.test(p) && !/\/chat\/completions$/.test(p);
        const word = /MOCK:(\w+)/.exec(legacy ? String(body.prompt ?? '') : lastUserText(body))?.[1];
        const type = sc.type ?? (word === 'tool_call' ? 'tool_call' : word === 'error429' ? 'error429' : 'text');
        rec.answerType = type;
        if (type === 'error429') return send(res, ...rateError(provider));
        if (type === 'error') return send(res, sc.status ?? 400, sc.body ?? { error: { message: 'bad' } });
        if (p.endsWith('/embeddings')) return embeddings(res, body, provider);
        if (legacy) return answerCompletion(res, body, sc);
        if (p === '/v1/messages/count_tokens') {
            return send(res, 200, { input_tokens: 7 + JSON.stringify(body.messages ?? []).length % 50 });
        }
        const usage = { input: 21, output: words(TEXT).length, cacheRead: sc.cacheRead ?? 0 };
        rec.usage = usage;
        if (anthropic) return answerAnthropic(res, body, type, usage, sc);
        return answerOpenAI(res, body, type, usage, provider, sc);
    }

    function embeddings(res, body, provider) {
        const inputs = Array.isArray(body.input) ? body.input : [body.input];
        send(res, 200, {
            object: 'list',
            data: inputs.map((_, i) => ({ object: 'embedding', index: i, embedding: [0.1 * (i + 1), -0.2, 0.3] })),
            model: body.model ?? provider, usage: { prompt_tokens: 4 * inputs.length, total_tokens: 4 * inputs.length },
        });
    }

    /* OpenAI's legacy Completions API: choices[].text, object
     * text_completion, the same usage rules as chat. */
    function answerCompletion(res, body, sc) {
        if (body.prompt === undefined) {
            return send(res, 400, { error: { message: "Missing required parameter: 'prompt'.", type: 'invalid_request_error', param: 'prompt', code: 'missing_required_parameter' } });
        }
        if (body.messages !== undefined) {
            return send(res, 400, { error: { message: 'Unrecognized request argument supplied: messages', type: 'invalid_request_error', param: null, code: null } });
        }
        const text = sc.text ?? TEXT;
        const usage = { prompt_tokens: 5, completion_tokens: words(text).length, total_tokens: 5 + words(text).length };
        const base = { id: 'cmpl-mock1', object: 'text_completion', created: 1700000000, model: body.model ?? 'unknown' };
        if (!body.stream) {
            return send(res, 200, { ...base, choices: [{ text, index: 0, logprobs: null, finish_reason: 'stop' }], usage });
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const out = (o) => res.write(`data: ${JSON.stringify({ ...base, ...o })}\n\n`);
        for (const w of words(text)) out({ choices: [{ text: w, index: 0, logprobs: null, finish_reason: null }] });
        out({ choices: [{ text: '', index: 0, logprobs: null, finish_reason: 'stop' }] });
        if (body.stream_options?.include_usage) out({ choices: [], usage });
        res.end('data: [DONE]\n\n');
    }

    async function answerOpenAI(res, body, type, usage, provider, sc) {
        const model = body.model ?? 'unknown';
        const ousage = {
            prompt_tokens: usage.input, completion_tokens: usage.output, total_tokens: usage.input + usage.output,
            ...(usage.cacheRead ? { prompt_tokens_details: { cached_tokens: usage.cacheRead } } : {}),
        };
        const tool = type === 'tool_call';
        /* a reasoning model (DeepSeek, xAI, vLLM, ...): reasoning_content
         * first, when the request asks (reasoning_effort) or the script says */
        const reasoning = sc.reasoning ?? (body.reasoning_effort ? `Reasoning at ${body.reasoning_effort} effort.` : null);
        if (!body.stream) {
            const message = tool
                ? { role: 'assistant', content: null, tool_calls: [{ id: TOOL.id, type: 'function', function: { name: TOOL.name, arguments: JSON.stringify(TOOL.arguments) } }] }
                : { role: 'assistant', content: sc.text ?? TEXT };
            if (reasoning) message.reasoning_content = reasoning;
            return send(res, 200, {
                id: 'chatcmpl-mock1', object: 'chat.completion', created: 1700000000, model,
                choices: [{ index: 0, message, finish_reason: tool ? 'tool_calls' : 'stop' }], usage: ousage,
            });
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const base = { id: 'chatcmpl-mock1', object: 'chat.completion.chunk', created: 1700000000, model };
        const out = (o) => res.write(`data: ${JSON.stringify({ ...base, ...o })}\n\n`);
        const mistral = provider === 'mistral';
        out({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }] });
        for (const w of reasoning ? words(reasoning) : []) {
            out({ choices: [{ index: 0, delta: { reasoning_content: w }, finish_reason: null }] });
        }
        if (tool) {
            const args = JSON.stringify(TOOL.arguments);
            out({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: TOOL.id, type: 'function', function: { name: TOOL.name, arguments: '' } }] }, finish_reason: null }] });
            for (let i = 0; i < args.length; i += 7) {
                out({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: args.slice(i, i + 7) } }] }, finish_reason: null }] });
            }
        } else {
            for (const w of words(sc.text ?? TEXT)) {
                out({ choices: [{ index: 0, delta: { content: w }, finish_reason: null }] });
            }
        }
        const fin = { choices: [{ index: 0, delta: {}, finish_reason: tool ? 'tool_calls' : 'stop' }] };
        if (mistral) {
            out({ ...fin, usage: ousage }); // Mistral: usage in the last chunk, always
        } else {
            out(fin);
            if (body.stream_options?.include_usage) out({ choices: [], usage: ousage });
        }
        res.end('data: [DONE]\n\n');
    }

    function answerCohere(res, body, type, text, think) {
        const thought = 'Thinking it over.';
        const tool = type === 'tool_call';
        const usage = { billed_units: { input_tokens: 21, output_tokens: words(text).length }, tokens: { input_tokens: 230, output_tokens: words(text).length + 2 } };
        const call = { id: 'get_weather_mock1', type: 'function', function: { name: TOOL.name, arguments: JSON.stringify(TOOL.arguments) } };
        if (!body.stream) {
            const message = tool
                ? { role: 'assistant', tool_plan: 'I will check the weather.', tool_calls: [call] }
                : { role: 'assistant', content: [...(think ? [{ type: 'thinking', thinking: thought }] : []), { type: 'text', text }] };
            return send(res, 200, { id: 'co-mock-1', finish_reason: tool ? 'TOOL_CALL' : 'COMPLETE', message, usage });
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        const ev = (type, o) => res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...o })}\n\n`);
        ev('message-start', { id: 'co-mock-1', delta: { message: { role: 'assistant', content: [], tool_plan: '', tool_calls: [], citations: [] } } });
        if (tool) {
            ev('tool-plan-delta', { delta: { message: { tool_plan: 'I will check the weather.' } } });
            ev('tool-call-start', { index: 0, delta: { message: { tool_calls: { ...call, function: { name: TOOL.name, arguments: '' } } } } });
            for (let i = 0; i < call.function.arguments.length; i += 6) {
                ev('tool-call-delta', { index: 0, delta: { message: { tool_calls: { function: { arguments: call.function.arguments.slice(i, i + 6) } } } } });
            }
            ev('tool-call-end', { index: 0 });
        } else {
            let i = 0;
            if (think) {
                ev('content-start', { index: i, delta: { message: { content: { type: 'thinking', thinking: '' } } } });
                for (const w of words(thought)) ev('content-delta', { index: i, delta: { message: { content: { thinking: w } } } });
                ev('content-end', { index: i++ });
            }
            ev('content-start', { index: i, delta: { message: { content: { type: 'text', text: '' } } } });
            for (const w of words(text)) ev('content-delta', { index: i, delta: { message: { content: { text: w } } } });
            ev('content-end', { index: i });
        }
        ev('message-end', { delta: { finish_reason: tool ? 'TOOL_CALL' : 'COMPLETE', usage } });
        res.end();
    }

    async function answerAnthropic(res, body, type, usage, sc) {
        const model = body.model ?? 'claude-mock';
        const tool = type === 'tool_call';
        const content = tool
            ? [{ type: 'text', text: 'Checking.' }, { type: 'tool_use', id: 'toolu_mock1', name: TOOL.name, input: TOOL.arguments }]
            : [{ type: 'text', text: sc.text ?? anthropicToolResult(body) ?? TEXT }];
        /* extended thinking: asked for by the request (or scripted), a
         * signed thinking block first */
        if (body.thinking?.type === 'enabled' || sc.thinking) {
            content.unshift({ type: 'thinking', thinking: sc.thinking ?? 'Thinking it over.', signature: 'ErUBCkYIBxgCIkB-mock-signature' });
        }
        const au = { input_tokens: usage.input, output_tokens: usage.output, cache_creation_input_tokens: 0, cache_read_input_tokens: usage.cacheRead };
        if (!body.stream) {
            return send(res, 200, {
                id: 'msg_mock1', type: 'message', role: 'assistant', model, content,
                stop_reason: tool ? 'tool_use' : 'end_turn', stop_sequence: null, usage: au,
            }, { 'request-id': 'req_mock1' });
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'request-id': 'req_mock1' });
        const ev = (name, o) => res.write(`event: ${name}\ndata: ${JSON.stringify({ type: name, ...o })}\n\n`);
        ev('message_start', { message: { id: 'msg_mock1', type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { ...au, output_tokens: 1 } } });
        ev('ping', {});
        content.forEach((b, i) => {
            if (b.type === 'text') {
                ev('content_block_start', { index: i, content_block: { type: 'text', text: '' } });
                for (const w of words(b.text)) ev('content_block_delta', { index: i, delta: { type: 'text_delta', text: w } });
            } else if (b.type === 'thinking') {
                ev('content_block_start', { index: i, content_block: { type: 'thinking', thinking: '', signature: '' } });
                for (const w of words(b.thinking)) ev('content_block_delta', { index: i, delta: { type: 'thinking_delta', thinking: w } });
                ev('content_block_delta', { index: i, delta: { type: 'signature_delta', signature: b.signature } });
            } else {
                ev('content_block_start', { index: i, content_block: { type: 'tool_use', id: b.id, name: b.name, input: {} } });
                const args = JSON.stringify(b.input);
                ev('content_block_delta', { index: i, delta: { type: 'input_json_delta', partial_json: '' } });
                for (let k = 0; k < args.length; k += 5) ev('content_block_delta', { index: i, delta: { type: 'input_json_delta', partial_json: args.slice(k, k + 5) } });
            }
            ev('content_block_stop', { index: i });
        });
        ev('message_delta', { delta: { stop_reason: tool ? 'tool_use' : 'end_turn', stop_sequence: null }, usage: { output_tokens: usage.output } });
        ev('message_stop', {});
        res.end();
    }

    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const port = server.address().port;
    oauth.base = `http://127.0.0.1:${port}`;
    return {
        oauth,
        port,
        base: `http://127.0.0.1:${port}`,
        requests,
        next: (sc) => queue.push(sc),
        reset: () => { requests.length = 0; queue.length = 0; oauth.reset(); },
        stop: () => new Promise((r) => server.close(r)),
        TEXT, TOOL,
    };
}
