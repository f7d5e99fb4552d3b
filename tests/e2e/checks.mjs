/* checks.mjs - assertions shared by the e2e tests: what must reach the
 * provider, and what a file-log record of an ai-proxy request must say
 * (Kong's record format and the how-to's ai.proxy statistics). */
import assert from 'node:assert/strict';
import { MOCK_KEY, CLIENT_KEY, show } from './harness.mjs';

export const UPSTREAM_URI = '/compatible-mode/v1/chat/completions?beta=true';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/* A request the mock DashScope received through the gateway. */
export function checkUpstreamRequest(rec, { stream, path = UPSTREAM_URI, toolNames = [], requireUsage = true } = {}) {
    const ctx = show({ path: rec.path, headers: rec.headers, unknownFields: rec.unknownFields });
    assert.equal(rec.method, 'POST', ctx);
    assert.equal(rec.path, path, ctx);
    assert.equal(rec.headers.authorization, `Bearer ${MOCK_KEY}`, ctx);
    assert.equal(rec.headers['x-api-key'], undefined, `client x-api-key reached the provider\n${ctx}`);
    assert.ok(!JSON.stringify(rec.headers).includes(CLIENT_KEY), `client key reached the provider\n${ctx}`);
    assert.ok(!JSON.stringify(rec.body).includes(CLIENT_KEY), 'client key in the upstream body');
    const b = rec.body;
    assert.equal(typeof b, 'object', `upstream body is not JSON: ${show(b, 300)}`);
    assert.equal(b.model, 'qwen-plus');
    assert.equal(b.max_tokens, 8192);
    assert.equal(b.temperature, 1);
    assert.deepEqual(rec.unknownFields, [], `fields DashScope does not know reached it: ${rec.unknownFields}`);
    if (stream !== undefined) assert.equal(b.stream === true, stream, `stream=${b.stream}`);
    if (b.stream === true && requireUsage) assert.equal(b.stream_options?.include_usage, true, 'stream_options.include_usage');
    for (const m of b.messages) assert.ok(['system', 'user', 'assistant', 'tool'].includes(m.role), `role ${m.role}`);
    if (toolNames.length) {
        assert.ok(Array.isArray(b.tools), 'tools missing upstream');
        for (const t of b.tools) {
            assert.equal(t.type, 'function', show(t, 300));
            assert.equal(typeof t.function?.name, 'string', show(t, 300));
            assert.equal(typeof t.function.parameters, 'object', show(t, 300));
            assert.equal(t.input_schema, undefined);
            assert.equal(t.defer_loading, undefined);
            assert.equal(t.function.defer_loading, undefined);
        }
        const names = b.tools.map((t) => t.function.name);
        for (const n of toolNames) assert.ok(names.includes(n), `tool ${n} not sent upstream (${names})`);
    }
}

/* No secret of any kind in a log record. */
export function checkNoKeys(rec) {
    const s = JSON.stringify(rec);
    assert.ok(!s.includes(MOCK_KEY), 'the provider key is in the log');
    assert.ok(!s.includes(CLIENT_KEY), 'the client key is in the log');
    const h = rec.request?.headers ?? {};
    if (h.authorization !== undefined) assert.equal(h.authorization, 'REDACTED');
    if (h['x-api-key'] !== undefined) assert.equal(h['x-api-key'], 'REDACTED');
}

/* A file-log record of a successful ai-proxy chat request, against the
 * answer the mock recorded for it. */
export function checkChatLogRecord(rec, answer, { mode, userAgent = /^claude-cli\//, upstreamUri = UPSTREAM_URI } = {}) {
    const ctx = show(rec, 4000);
    assert.equal(rec.upstream_uri, upstreamUri, ctx);
    assert.equal(rec.request.method, 'POST', ctx);
    if (userAgent) assert.match(rec.request.headers['user-agent'], userAgent, ctx);
    assert.equal(rec.response.status, 200, ctx);
    assert.equal(rec.upstream_status, '200', ctx);
    assert.equal(rec.response.headers['x-kong-llm-model'], 'dashscope/qwen-plus', ctx);
    assert.equal(rec.response.headers['x-dashscope-call-gateway'], 'true', ctx);
    checkNoKeys(rec);
    const usage = rec.ai?.proxy?.usage;
    const meta = rec.ai?.proxy?.meta;
    assert.ok(usage && meta, `no ai.proxy statistics\n${ctx}`);
    assert.equal(usage.prompt_tokens, answer.usage.prompt_tokens, ctx);
    assert.equal(usage.completion_tokens, answer.usage.completion_tokens, ctx);
    assert.equal(usage.total_tokens, answer.usage.total_tokens, ctx);
    assert.deepEqual(usage.prompt_tokens_details, { cached_tokens: answer.usage.prompt_tokens_details.cached_tokens }, ctx);
    assert.deepEqual(usage.completion_tokens_details, answer.usage.completion_tokens_details ?? {}, ctx);
    assert.equal(usage.cost, 0, ctx);
    assert.equal(meta.provider_name, 'dashscope', ctx);
    assert.equal(meta.request_model, 'qwen-plus', ctx);
    assert.equal(meta.response_model, 'qwen-plus', ctx);
    assert.match(meta.plugin_id, UUID, ctx);
    if (mode) assert.equal(meta.request_mode, mode, ctx);
    assert.equal(typeof meta.llm_latency, 'number', ctx);
    assert.ok(meta.llm_latency >= 0 && meta.llm_latency < 60000, `llm_latency ${meta.llm_latency}`);
    assert.equal(typeof usage.time_to_first_token, 'number', ctx);
    assert.ok(usage.time_to_first_token >= 0 && usage.time_to_first_token <= meta.llm_latency + 1,
        `time_to_first_token ${usage.time_to_first_token} vs llm_latency ${meta.llm_latency}`);
    const tpt = usage.completion_tokens ? meta.llm_latency / usage.completion_tokens : 0;
    assert.ok(Math.abs(usage.time_per_token - tpt) <= 1e-6 * Math.max(1, tpt) + 1e-9,
        `time_per_token ${usage.time_per_token}, expected ${tpt}`);
}

/* Pair each complete upstream answer with the log record of the same usage
 * (records and answers may come in any order with several workers). Broken
 * answers (reset, in-stream error) are left out: their records carry no
 * provider usage to match. */
export function pairRecordsWithAnswers(records, upstreamReqs) {
    const answers = upstreamReqs.filter((r) => r.answer?.status === 200 && !r.answer.broken).map((r) => r.answer);
    const ok = records.filter((r) => r.response?.status === 200 && r.upstream_uri?.startsWith('/compatible-mode/v1/chat/completions'));
    return answers.map((a) => {
        const found = ok.filter((rec) => rec.ai?.proxy?.usage?.prompt_tokens === a.usage.prompt_tokens &&
            rec.ai?.proxy?.usage?.completion_tokens === a.usage.completion_tokens);
        assert.equal(found.length, 1, `log records with the usage the provider sent ${show(a.usage)}: ${found.length}\n` +
            `records: ${show(records.map((r) => [r.request?.method, r.request?.uri, r.response?.status, r.ai?.proxy?.usage]), 4000)}`);
        return [found[0], a];
    });
}
