/* native.mjs - mock Gemini and Bedrock speaking their own wire formats, for
 * tests/e2e/native-providers.test.mjs.
 *
 * Gemini (generativelanguage API):
 *   POST /v1beta/models/<model>:generateContent
 *   POST /v1beta/models/<model>:streamGenerateContent?alt=sse   (SSE; without
 *        alt=sse a JSON array, as Google does)
 *   key: x-goog-api-key header or ?key=. None: 403 PERMISSION_DENIED; a wrong
 *   one: 400 INVALID_ARGUMENT with reason API_KEY_INVALID (Google's bodies).
 *   Unknown query parameters and unknown request fields are refused with
 *   Google's 400 ("Cannot bind query parameter", "Unknown name").
 *   A functionCall answered with a thoughtSignature must come back with it
 *   (Gemini 3's rule).
 * Bedrock runtime:
 *   POST /model/<model id>/converse, /model/<model id>/converse-stream
 *   (application/vnd.amazon.eventstream frames, CRC32s from zlib)
 *   Every request's SigV4 signature is recomputed (canonical URI encoded
 *   once more than the path as received, the signed headers as received,
 *   the body's SHA-256): unknown key id -> 403 UnrecognizedClientException,
 *   wrong signature -> 403 InvalidSignatureException, AWS's bodies and
 *   x-amzn-ErrorType header.  Converse's rules are checked (roles
 *   alternate starting with user, toolConfig present when the history has
 *   tool blocks, no unknown fields: 400 ValidationException).
 *
 * Vertex AI (the same generateContent under
 *   /v1/projects/<p>/locations/<l>/publishers/google/models/<model>:<op>):
 *   an OAuth access token from the mock token endpoint (tests/mock/
 *   oauth.mjs, served here too), unexpired; otherwise Google's 401
 *   UNAUTHENTICATED.
 *
 * Embeddings (what llm/v1/embeddings sends; vectors from embedVector()):
 *   Gemini POST /v1beta/models/<model>:batchEmbedContents (each request's
 *   model must be models/<model of the URL>; unknown fields refused);
 *   Vertex POST .../models/<model>:predict (instances[].content,
 *   parameters.outputDimensionality; statistics.token_count per input);
 *   Bedrock POST /model/<id>/invoke, signed: Titan's {inputText,
 *   dimensions, normalize} -> {embedding, inputTextTokenCount}, Cohere
 *   Embed's {texts, input_type, ...} -> {embeddings, id, response_type,
 *   texts}; both with x-amzn-bedrock-input-token-count, AWS's
 *   ValidationException for an extraneous or missing key.
 *
 * Answers: MOCK:tool_call in the last user text -> a get_weather call;
 * a function/tool result last -> a text naming it; MOCK:error429 -> the
 * provider's 429; MOCK:stream_error -> an error inside the stream;
 * otherwise TEXT.  Every request is recorded (mock.requests).
 */
import crypto from 'node:crypto';
import http from 'node:http';
import zlib from 'node:zlib';
import { createOAuth } from './oauth.mjs';

export const GEMINI_KEY = 'AIzaSy-mock-gemini-key-0123456789';
export const AWS = { accessKeyId: 'AKIAMOCKBEDROCK0001', secretAccessKey: 'mock/secret+Key0123456789abcdefghij', region: 'us-east-1' };
export const TEXT = 'Hello from the mock provider.';
export const THOUGHT_SIG = 'c2lnbmF0dXJlLW9mLWEtdGhvdWdodA==';

const words = (t) => t.match(/\S+\s*/g) ?? [t];

/* A deterministic embedding of text: dims numbers (8 unless asked). */
export function embedVector(text, dims = 8) {
    return Array.from({ length: dims }, (_, i) => Number(((((text.length * 7 + i * 13) % 97) / 97) - 0.5).toFixed(6)));
}
const embTokens = (text) => Math.max(1, Math.ceil(text.length / 4));

/* --------------------------------------------------------------- gemini */

function gError(res, status, code, message, extra = {}) {
    res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify({ error: { code: status, message, status: code, ...extra } }));
}

const G_FIELDS = new Set(['contents', 'systemInstruction', 'generationConfig', 'tools', 'toolConfig', 'safetySettings', 'cachedContent']);

function geminiAnswer(body) {
    const contents = body.contents ?? [];
    const last = contents[contents.length - 1] ?? {};
    const parts = last.parts ?? [];
    const think = body.generationConfig?.thinkingConfig?.includeThoughts === true;
    const fr = parts.find((p) => p.functionResponse);
    const out = [];
    if (think) out.push({ text: 'Thinking it over.', thought: true });
    if (fr) {
        out.push({ text: `The weather: ${JSON.stringify(fr.functionResponse.response)}` });
        return { parts: out };
    }
    const text = parts.filter((p) => typeof p.text === 'string').map((p) => p.text).join(' ');
    if (text.includes('MOCK:tool_call')) {
        out.push({ text: 'Let me check.' });
        out.push({ functionCall: { name: 'get_weather', args: { city: 'Paris', unit: 'celsius' } }, thoughtSignature: THOUGHT_SIG });
        return { parts: out, tool: true };
    }
    out.push({ text: TEXT });
    return { parts: out, text };
}

function gUsage(body) {
    const prompt = Math.max(1, Math.ceil(JSON.stringify(body.contents ?? []).length / 4));
    return { promptTokenCount: prompt + 100, candidatesTokenCount: 7, totalTokenCount: prompt + 107 + 3, cachedContentTokenCount: 100, thoughtsTokenCount: 3 };
}

/* Google's TaskType values (the Gemini API's taskType, Vertex AI's task_type) */
const TASK_TYPES = ['TASK_TYPE_UNSPECIFIED', 'RETRIEVAL_QUERY', 'RETRIEVAL_DOCUMENT', 'SEMANTIC_SIMILARITY', 'CLASSIFICATION', 'CLUSTERING', 'QUESTION_ANSWERING', 'FACT_VERIFICATION', 'CODE_RETRIEVAL_QUERY'];

/* batchEmbedContents (Gemini API) or :predict (Vertex AI); auth checked */
function geminiEmbed(res, url, body, vertex, model, mock) {
    const dimsOk = (d) => d === undefined || (Number.isInteger(d) && d > 0 && d <= 3072);
    if (vertex) {
        for (const k of Object.keys(body)) if (k !== 'instances' && k !== 'parameters') return gError(res, 400, 'INVALID_ARGUMENT', `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
        if (!Array.isArray(body.instances) || body.instances.length === 0) return gError(res, 400, 'INVALID_ARGUMENT', 'List of found errors:\t1.Field: instances; Message: Required field is not set.');
        const dims = body.parameters?.outputDimensionality;
        if (!dimsOk(dims)) return gError(res, 400, 'INVALID_ARGUMENT', `outputDimensionality must be between 1 and 3072, got ${dims}`);
        if (body.instances.some((i) => typeof i.content !== 'string')) return gError(res, 400, 'INVALID_ARGUMENT', 'Invalid instance: content must be a string.');
        for (const i of body.instances) {
            const extra = Object.keys(i).find((k) => !['content', 'task_type', 'title'].includes(k));
            if (extra) return gError(res, 400, 'INVALID_ARGUMENT', `Invalid instance: unknown field ${extra}.`);
            if (i.task_type !== undefined && !TASK_TYPES.includes(i.task_type)) return gError(res, 400, 'INVALID_ARGUMENT', `Unsupported task type: ${i.task_type}.`);
        }
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return res.end(JSON.stringify({
            predictions: body.instances.map((i) => ({ embeddings: { statistics: { truncated: false, token_count: embTokens(i.content) }, values: embedVector(i.content, dims) } })),
            metadata: { billableCharacterCount: body.instances.reduce((n, i) => n + i.content.length, 0) },
        }));
    }
    for (const k of Object.keys(body)) if (k !== 'requests') return gError(res, 400, 'INVALID_ARGUMENT', `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
    if (!Array.isArray(body.requests) || body.requests.length === 0 || body.requests.length > 100) return gError(res, 400, 'INVALID_ARGUMENT', '* BatchEmbedContentsRequest.requests: at least 1 and at most 100 requests.');
    const texts = [];
    for (const [i, r] of body.requests.entries()) {
        for (const k of Object.keys(r)) {
            if (!['model', 'content', 'taskType', 'title', 'outputDimensionality'].includes(k)) return gError(res, 400, 'INVALID_ARGUMENT', `Invalid JSON payload received. Unknown name "${k}" at 'requests[${i}]': Cannot find field.`);
        }
        if (r.model !== `models/${model}`) return gError(res, 400, 'INVALID_ARGUMENT', `* BatchEmbedContentsRequest.requests[${i}].model: Model names must match; expected models/${model}, got ${r.model}.`);
        const parts = r.content?.parts;
        if (!Array.isArray(parts) || parts.length === 0 || parts.some((p) => typeof p.text !== 'string')) return gError(res, 400, 'INVALID_ARGUMENT', `* BatchEmbedContentsRequest.requests[${i}].content: content must have text parts.`);
        if (r.taskType !== undefined && !TASK_TYPES.includes(r.taskType)) return gError(res, 400, 'INVALID_ARGUMENT', `Invalid value at 'requests[${i}].task_type' (type.googleapis.com/google.ai.generativelanguage.v1beta.TaskType), "${r.taskType}"`);
        if (!dimsOk(r.outputDimensionality)) return gError(res, 400, 'INVALID_ARGUMENT', `* BatchEmbedContentsRequest.requests[${i}].output_dimensionality: must be between 1 and 3072.`);
        texts.push([parts.map((p) => p.text).join(''), r.outputDimensionality]);
    }
    if (texts.some(([t]) => t.includes('MOCK:error429'))) return gError(res, 429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).');
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify({ embeddings: texts.map(([t, d]) => ({ values: embedVector(t, d) })) }));
}

function handleGemini(req, res, url, raw, mock) {
    const e = url.pathname.match(/^(?:\/v1\/projects\/[^/]+\/locations\/[^/]+\/publishers\/google|\/v1beta)\/models\/([^/:]+):(batchEmbedContents|predict)$/);
    if (e) {
        const vertex = url.pathname.startsWith('/v1/projects/');
        if (vertex && e[2] !== 'predict') return gError(res, 404, 'NOT_FOUND', `Method not found: ${url.pathname}`);
        if (!vertex && e[2] !== 'batchEmbedContents') return gError(res, 404, 'NOT_FOUND', `Method not found: ${url.pathname}`);
    }
    /* Gemini API, or Vertex AI's publisher model path (m[1..2]: project, location) */
    const v = e ? null : url.pathname.match(/^\/v1\/projects\/([^/]+)\/locations\/([^/]+)\/publishers\/google\/models\/([^/:]+):(generateContent|streamGenerateContent)$/);
    const m = e ? [e[0], e[1], e[2]] : v ? [v[0], v[3], v[4]] : url.pathname.match(/^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/);
    const isVertex = url.pathname.startsWith('/v1/projects/');
    if (!m) return gError(res, 404, 'NOT_FOUND', `Method not found: ${url.pathname}`);
    for (const k of url.searchParams.keys()) {
        if (k !== 'key' && k !== 'alt') {
            return gError(res, 400, 'INVALID_ARGUMENT', `Invalid JSON payload received. Unknown name "${k}": Cannot bind query parameter. Field '${k}' could not be found in request message.`);
        }
    }
    const key = req.headers['x-goog-api-key'] ?? url.searchParams.get('key');
    if (isVertex) {
        /* Vertex AI: an OAuth access token, never a key */
        if (key || !mock.oauth.tokenValid(req.headers.authorization)) {
            mock.refused.push({ path: url.pathname, authorization: req.headers.authorization });
            return gError(res, 401, 'UNAUTHENTICATED', 'Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.', {
                details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'ACCESS_TOKEN_TYPE_UNSUPPORTED', metadata: { service: 'aiplatform.googleapis.com', method: 'google.cloud.aiplatform.v1.PredictionService.GenerateContent' } }],
            });
        }
    } else if (!key) {
        return gError(res, 403, 'PERMISSION_DENIED', 'Method doesn\'t allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.');
    }
    if (!isVertex && key !== GEMINI_KEY) {
        return gError(res, 400, 'INVALID_ARGUMENT', 'API key not valid. Please pass a valid API key.', {
            details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason: 'API_KEY_INVALID', domain: 'googleapis.com', metadata: { service: 'generativelanguage.googleapis.com' } }],
        });
    }
    let body;
    try { body = JSON.parse(raw); } catch { return gError(res, 400, 'INVALID_ARGUMENT', 'Invalid JSON payload received.'); }
    mock.requests.push({ provider: isVertex ? 'vertex' : 'gemini', path: url.pathname, query: url.search, headers: req.headers, body, model: decodeURIComponent(m[1]) });
    if (e) return geminiEmbed(res, url, body, isVertex, decodeURIComponent(m[1]), mock);
    for (const k of Object.keys(body)) {
        if (!G_FIELDS.has(k)) return gError(res, 400, 'INVALID_ARGUMENT', `Invalid JSON payload received. Unknown name "${k}": Cannot find field.`);
    }
    if (!Array.isArray(body.contents) || body.contents.length === 0) {
        return gError(res, 400, 'INVALID_ARGUMENT', '* GenerateContentRequest.contents: contents is not specified');
    }
    for (const [i, c] of body.contents.entries()) {
        if (c.role !== 'user' && c.role !== 'model') return gError(res, 400, 'INVALID_ARGUMENT', `Please use a valid role: user, model. (contents[${i}])`);
        if (!Array.isArray(c.parts) || c.parts.length === 0) return gError(res, 400, 'INVALID_ARGUMENT', `* GenerateContentRequest.contents[${i}].parts: contents.parts must not be empty.`);
        for (const p of c.parts) {
            if (p.functionCall && mock.signedCalls && p.thoughtSignature !== THOUGHT_SIG) {
                return gError(res, 400, 'INVALID_ARGUMENT', 'Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly.');
            }
            if (p.functionResponse && typeof p.functionResponse.name !== 'string') {
                return gError(res, 400, 'INVALID_ARGUMENT', `* GenerateContentRequest.contents[${i}].parts.function_response.name: Name cannot be empty.`);
            }
        }
    }
    const text = body.contents.at(-1).parts.filter((p) => p.text).map((p) => p.text).join(' ');
    if (text.includes('MOCK:error429')) {
        return gError(res, 429, 'RESOURCE_EXHAUSTED', 'Resource has been exhausted (e.g. check quota).');
    }
    const ans = geminiAnswer(body);
    if (ans.tool) mock.signedCalls = true;
    const usage = gUsage(body);
    const meta = { modelVersion: m[1], responseId: 'mockresp' + mock.requests.length };
    const finish = ans.tool ? 'STOP' : 'STOP';
    if (m[2] === 'generateContent') {
        res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
        return res.end(JSON.stringify({ candidates: [{ content: { parts: ans.parts, role: 'model' }, finishReason: finish, index: 0 }], usageMetadata: usage, ...meta }));
    }
    /* streamed: thought, then the text word by word, calls whole */
    const chunks = [];
    for (const p of ans.parts) {
        if (p.functionCall) chunks.push([p]);
        else for (const w of words(p.text)) chunks.push([{ ...p, text: w }]);
    }
    const events = chunks.map((parts, i) => ({
        candidates: [{ content: { parts, role: 'model' }, index: 0, ...(i === chunks.length - 1 ? { finishReason: finish } : {}) }],
        usageMetadata: i === chunks.length - 1 ? usage : { promptTokenCount: usage.promptTokenCount, totalTokenCount: usage.promptTokenCount },
        ...meta,
    }));
    if (text.includes('MOCK:stream_error')) {
        events.splice(1, events.length, { error: { code: 503, message: 'The model is overloaded. Please try again later.', status: 'UNAVAILABLE' } });
    }
    if (url.searchParams.get('alt') === 'sse') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'x-mock': 'gemini' });
        for (const e of events) res.write(`data: ${JSON.stringify(e)}\r\n\r\n`);
        return res.end();
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=UTF-8' });
    res.end(JSON.stringify(events, null, 2));
}

/* -------------------------------------------------------------- bedrock */

function awsError(res, status, type, message) {
    res.writeHead(status, { 'content-type': 'application/json', 'x-amzn-errortype': `${type}:http://internal.amazon.com/coral/com.amazon.coral.service/`, 'x-amzn-requestid': crypto.randomUUID() });
    res.end(JSON.stringify({ message }));
}

const hmac = (k, s) => crypto.createHmac('sha256', k).update(s).digest();
const sha256hex = (b) => crypto.createHash('sha256').update(b).digest('hex');
/* AWS's URI encoding: every byte but unreserved ones; '/' kept in a path */
const awsEncode = (s, keepSlash) => Array.from(Buffer.from(s, 'utf8')).map((b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-._~]/.test(c) || (keepSlash && c === '/') ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
}).join('');

export function sigv4Check(req, rawPath, rawQuery, body, now = Date.now()) {
    const auth = req.headers.authorization ?? '';
    const m = auth.match(/^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/);
    if (!m) return [403, 'IncompleteSignatureException', `Authorization header requires 'Credential', 'Signature', 'SignedHeaders' parameters. Authorization=${auth.split(' ')[0] ?? ''}`];
    const [, ak, date, region, service, signed, sig] = m;
    if (ak !== AWS.accessKeyId) return [403, 'UnrecognizedClientException', 'The security token included in the request is invalid.'];
    const amz = req.headers['x-amz-date'] ?? '';
    const t = Date.UTC(+amz.slice(0, 4), +amz.slice(4, 6) - 1, +amz.slice(6, 8), +amz.slice(9, 11), +amz.slice(11, 13), +amz.slice(13, 15));
    if (!/^\d{8}T\d{6}Z$/.test(amz) || Math.abs(now - t) > 5 * 60 * 1000 || amz.slice(0, 8) !== date) {
        return [403, 'InvalidSignatureException', `Signature expired: ${amz} is now earlier than the allowed window.`];
    }
    const names = signed.split(';');
    if (!names.includes('host')) return [403, 'InvalidSignatureException', 'Signature must include the host header.'];
    const canonHeaders = names.map((n) => `${n}:${String(req.headers[n] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
    const canonQuery = rawQuery ? rawQuery.split('&').filter(Boolean).map((kv) => (kv.includes('=') ? kv : kv + '=')).sort().join('&') : '';
    const canon = [req.method, awsEncode(rawPath, true), canonQuery, canonHeaders, signed, sha256hex(body)].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const sts = ['AWS4-HMAC-SHA256', amz, scope, sha256hex(canon)].join('\n');
    let k = hmac('AWS4' + AWS.secretAccessKey, date);
    for (const part of [region, service, 'aws4_request']) k = hmac(k, part);
    const want = hmac(k, sts).toString('hex');
    if (want !== sig || region !== AWS.region || service !== 'bedrock') {
        return [403, 'InvalidSignatureException', 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.'];
    }
    return null;
}

/* One event-stream message with string headers. */
export function evFrame(headers, payload) {
    const hb = [];
    for (const [k, v] of Object.entries(headers)) {
        const kb = Buffer.from(k); const vb = Buffer.from(v);
        hb.push(Buffer.from([kb.length]), kb, Buffer.from([7, vb.length >> 8, vb.length & 255]), vb);
    }
    const h = Buffer.concat(hb);
    const p = Buffer.from(payload);
    const total = 16 + h.length + p.length;
    const prelude = Buffer.alloc(8);
    prelude.writeUInt32BE(total, 0);
    prelude.writeUInt32BE(h.length, 4);
    const pcrc = Buffer.alloc(4);
    pcrc.writeUInt32BE(zlib.crc32(prelude), 0);
    const head = Buffer.concat([prelude, pcrc, h, p]);
    const mcrc = Buffer.alloc(4);
    mcrc.writeUInt32BE(zlib.crc32(head), 0);
    return Buffer.concat([head, mcrc]);
}
const ev = (type, body) => evFrame({ ':event-type': type, ':content-type': 'application/json', ':message-type': 'event' }, JSON.stringify({ ...body, p: 'abcdefghijklmnopqrstuvwxyzABCDEF'.slice(0, 5 + (type.length % 20)) }));

const B_FIELDS = new Set(['messages', 'system', 'inferenceConfig', 'toolConfig', 'guardrailConfig', 'additionalModelRequestFields', 'additionalModelResponseFieldPaths', 'performanceConfig', 'promptVariables', 'requestMetadata']);
const B_BLOCKS = new Set(['text', 'image', 'document', 'toolUse', 'toolResult', 'reasoningContent', 'cachePoint', 'video', 'guardContent']);

function converseCheck(body) {
    for (const k of Object.keys(body)) {
        if (!B_FIELDS.has(k)) return `Malformed input request: extraneous key [${k}] is not permitted, please reformat your input and try again.`;
    }
    const msgs = body.messages;
    if (!Array.isArray(msgs) || msgs.length === 0) return 'The model returned the following errors: messages: at least one message is required';
    let tools = false;
    for (const [i, m] of msgs.entries()) {
        if (m.role !== (i % 2 === 0 ? 'user' : 'assistant')) return 'A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again.';
        if (!Array.isArray(m.content) || m.content.length === 0) return `The content field in the Message object at messages.${i} is empty. Add a ContentBlock object to the content field and try again.`;
        for (const b of m.content) {
            const ks = Object.keys(b);
            if (ks.length !== 1 || !B_BLOCKS.has(ks[0])) return `Malformed input request: #/messages/${i}/content: extraneous key [${ks.join(',')}] is not permitted`;
            if ('text' in b && !b.text) return `The text field in the ContentBlock object at messages.${i}.content is blank. Add text to the text field, and try again.`;
            if (b.toolUse || b.toolResult) tools = true;
        }
    }
    if (tools && !body.toolConfig) return 'The toolConfig field must be defined when using toolUse and toolResult content blocks.';
    /* Claude's extended thinking: a budget of 1024 or more, below max_tokens */
    const th = body.additionalModelRequestFields?.thinking;
    if (th?.type === 'enabled') {
        if (!(th.budget_tokens >= 1024)) return 'The model returned the following errors: thinking.enabled.budget_tokens: Input should be greater than or equal to 1024';
        if (!(body.inferenceConfig?.maxTokens > th.budget_tokens)) return 'The model returned the following errors: `max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size';
    }
    return null;
}

function bedrockAnswer(body) {
    const last = body.messages.at(-1);
    const tr = last.content.find((b) => b.toolResult);
    const think = body.additionalModelRequestFields?.thinking?.type === 'enabled';
    const blocks = [];
    if (think) blocks.push({ reasoningContent: { reasoningText: { text: 'Thinking it over.', signature: 'EqQBCkYIBxgCKkD-mock-signature' } } });
    if (tr) {
        blocks.push({ text: `The weather: ${JSON.stringify(tr.toolResult.content)}` });
        return { blocks, stop: 'end_turn' };
    }
    const text = last.content.filter((b) => b.text).map((b) => b.text).join(' ');
    if (text.includes('MOCK:tool_call')) {
        blocks.push({ text: 'Let me check.' });
        blocks.push({ toolUse: { toolUseId: 'tooluse_mock01', name: 'get_weather', input: { city: 'Paris', unit: 'celsius' } } });
        return { blocks, stop: 'tool_use', text };
    }
    blocks.push({ text: TEXT });
    return { blocks, stop: 'end_turn', text };
}

/* InvokeModel for the embedding models (Titan, Cohere Embed) */
function bedrockInvoke(res, model, body) {
    const extraneous = (allowed) => Object.keys(body).find((k) => !allowed.includes(k));
    let out;
    let tokens;
    if (model.includes('amazon.titan-embed')) {
        const v2 = model.includes('titan-embed-text-v2');
        const bad = extraneous(v2 ? ['inputText', 'dimensions', 'normalize', 'embeddingTypes'] : ['inputText']);
        if (bad) return awsError(res, 400, 'ValidationException', `Malformed input request: extraneous key [${bad}] is not permitted, please reformat your input and try again.`);
        if (typeof body.inputText !== 'string') return awsError(res, 400, 'ValidationException', 'Malformed input request: #: required key [inputText] not found, please reformat your input and try again.');
        if (body.dimensions !== undefined && ![256, 512, 1024].includes(body.dimensions)) return awsError(res, 400, 'ValidationException', `Malformed input request: #/dimensions: ${body.dimensions} is not a valid enum value, please reformat your input and try again.`);
        tokens = embTokens(body.inputText);
        out = { embedding: embedVector(body.inputText, body.dimensions), inputTextTokenCount: tokens };
        if (v2) out.embeddingsByType = { float: out.embedding };
    } else if (model.includes('cohere.embed')) {
        const bad = extraneous(['texts', 'images', 'input_type', 'truncate', 'embedding_types', 'output_dimension', 'max_tokens']);
        if (bad) return awsError(res, 400, 'ValidationException', `Malformed input request: extraneous key [${bad}] is not permitted, please reformat your input and try again.`);
        if (typeof body.input_type !== 'string') return awsError(res, 400, 'ValidationException', 'Malformed input request: #: required key [input_type] not found, please reformat your input and try again.');
        if (!Array.isArray(body.texts) || body.texts.length === 0 || body.texts.length > 96) return awsError(res, 400, 'ValidationException', 'Malformed input request: #/texts: expected between 1 and 96 items, please reformat your input and try again.');
        tokens = body.texts.reduce((n, t) => n + embTokens(t), 0);
        out = { embeddings: body.texts.map((t) => embedVector(t, body.output_dimension)), id: crypto.randomUUID(), response_type: 'embeddings_floats', texts: body.texts };
    } else {
        return awsError(res, 400, 'ValidationException', 'The provided model identifier is invalid.');
    }
    res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': crypto.randomUUID(), 'x-amzn-bedrock-input-token-count': String(tokens), 'x-amzn-bedrock-invocation-latency': '42' });
    res.end(JSON.stringify(out));
}

function handleBedrock(req, res, url, rawPath, rawQuery, raw, mock) {
    const m = rawPath.match(/^\/model\/([^/]+)\/(converse|converse-stream|invoke)$/);
    if (!m) return awsError(res, 404, 'UnknownOperationException', 'Unknown operation');
    const bad = sigv4Check(req, rawPath, rawQuery, raw);
    mock.requests.push({ provider: 'bedrock', path: rawPath, query: rawQuery, headers: req.headers, model: decodeURIComponent(m[1]), sigError: bad?.[1] });
    if (bad) return awsError(res, ...bad);
    let body;
    try { body = JSON.parse(raw); } catch { return awsError(res, 400, 'ValidationException', 'Malformed input request, please reformat your input and try again.'); }
    mock.requests.at(-1).body = body;
    if (m[2] === 'invoke') return bedrockInvoke(res, decodeURIComponent(m[1]), body);
    const v = converseCheck(body);
    if (v) return awsError(res, 400, 'ValidationException', v);
    const ans = bedrockAnswer(body);
    if ((ans.text ?? '').includes('MOCK:error429')) return awsError(res, 429, 'ThrottlingException', 'Too many requests, please wait before trying again.');
    const usage = { inputTokens: 20, outputTokens: 9, totalTokens: 129, cacheReadInputTokens: 100, cacheWriteInputTokens: 0 };
    if (m[2] === 'converse') {
        res.writeHead(200, { 'content-type': 'application/json', 'x-amzn-requestid': crypto.randomUUID() });
        return res.end(JSON.stringify({ metrics: { latencyMs: 321 }, output: { message: { role: 'assistant', content: ans.blocks } }, stopReason: ans.stop, usage }));
    }
    const frames = [ev('messageStart', { role: 'assistant' })];
    ans.blocks.forEach((b, i) => {
        if (b.reasoningContent) {
            frames.push(ev('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { text: b.reasoningContent.reasoningText.text } } }));
            frames.push(ev('contentBlockDelta', { contentBlockIndex: i, delta: { reasoningContent: { signature: b.reasoningContent.reasoningText.signature } } }));
        } else if (b.text) {
            for (const w of words(b.text)) frames.push(ev('contentBlockDelta', { contentBlockIndex: i, delta: { text: w } }));
        } else if (b.toolUse) {
            frames.push(ev('contentBlockStart', { contentBlockIndex: i, start: { toolUse: { toolUseId: b.toolUse.toolUseId, name: b.toolUse.name } } }));
            const js = JSON.stringify(b.toolUse.input);
            for (let k = 0; k < js.length; k += 7) frames.push(ev('contentBlockDelta', { contentBlockIndex: i, delta: { toolUse: { input: js.slice(k, k + 7) } } }));
        }
        frames.push(ev('contentBlockStop', { contentBlockIndex: i }));
    });
    frames.push(ev('messageStop', { stopReason: ans.stop }));
    frames.push(ev('metadata', { usage, metrics: { latencyMs: 321 } }));
    if ((ans.text ?? '').includes('MOCK:stream_error')) {
        frames.splice(2, frames.length, evFrame({ ':exception-type': 'modelStreamErrorException', ':content-type': 'application/json', ':message-type': 'exception' }, JSON.stringify({ message: 'Model stream error: the model stopped unexpectedly.', originalStatusCode: 500 })));
    }
    res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': crypto.randomUUID() });
    /* in odd pieces, so frames straddle reads */
    const all = Buffer.concat(frames);
    for (let k = 0; k < all.length; k += 97) res.write(all.subarray(k, k + 97));
    res.end();
}

export async function startNativeMock() {
    const mock = { requests: [], refused: [], signedCalls: false, TEXT, oauth: createOAuth() };
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (d) => chunks.push(d));
        req.on('end', () => {
            const raw = Buffer.concat(chunks);
            const q = req.url.indexOf('?');
            const rawPath = q < 0 ? req.url : req.url.slice(0, q);
            const rawQuery = q < 0 ? '' : req.url.slice(q + 1);
            const url = new URL(req.url, 'http://mock');
            if (mock.oauth.handle(req, res, url, raw.toString())) return;
            if (req.method !== 'POST') { res.writeHead(405); return res.end(); }
            if (rawPath.startsWith('/v1beta/') || rawPath.startsWith('/v1/projects/')) return handleGemini(req, res, url, raw.toString(), mock);
            if (rawPath.startsWith('/model/')) return handleBedrock(req, res, url, rawPath, rawQuery, raw, mock);
            res.writeHead(404); res.end();
        });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    mock.port = server.address().port;
    mock.base = `http://127.0.0.1:${mock.port}`;
    mock.oauth.base = mock.base;
    mock.reset = () => { mock.requests.length = 0; mock.refused.length = 0; mock.signedCalls = false; mock.oauth.reset(); };
    mock.stop = () => new Promise((r) => server.close(r));
    return mock;
}
