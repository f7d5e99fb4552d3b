/* openai-sdk.test.mjs - the official OpenAI SDK through sluice on a route
 * whose ai-proxy uses the default llm_format openai (added next to the how-to
 * config; the route-level plugin overrides the global Anthropic-format one):
 * auth, model and options applied, streaming passed through, stats logged. */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startHowtoStack, logMark, newLogRecords, show, CLIENT_KEY, slow } from './harness.mjs';
import { checkUpstreamRequest, checkChatLogRecord } from './checks.mjs';

const CASE = { timeout: slow(30000) };
const PATH = '/compatible-mode/v1/chat/completions';

describe('OpenAI SDK through sluice (llm_format openai)', { timeout: slow(300000) }, () => {
    let st;
    let client;
    let mark = 0;
    before(async () => {
        st = await startHowtoStack({ workers: 2, openaiRoute: true });
        client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${st.openaiBase}/v1`, maxRetries: 0 });
    });
    after(async () => { await st?.stop(); });
    beforeEach(async () => {
        await st.mock.reset();
        mark = logMark(st.logPath);
    });

    test('chat.completions.create, non-streaming', CASE, async () => {
        const { data, response } = await client.chat.completions.create({
            model: 'qwen-plus', messages: [{ role: 'user', content: 'Hello' }],
        }).withResponse();
        assert.equal(data.choices[0].message.content, 'Hello from mock DashScope.');
        assert.equal(response.headers.get('x-kong-llm-model'), 'dashscope/qwen-plus');
        const [up] = await st.mock.chatRequests();
        checkUpstreamRequest(up, { stream: false, path: PATH });
        assert.deepEqual(data.usage, up.answer.usage);
        const [rec] = await newLogRecords(st.logPath, mark, 1);
        checkChatLogRecord(rec, up.answer, { mode: 'oneshot', userAgent: /^OpenAI\//, upstreamUri: PATH });
    });

    test('streaming with include_usage: chunks pass through token by token', CASE, async () => {
        await st.mock.scenario({ type: 'text', tokens: 40, token_delay_ms: 2 });
        const stream = await client.chat.completions.create({
            model: 'qwen-plus', stream: true, stream_options: { include_usage: true },
            messages: [{ role: 'user', content: 'Count' }],
        });
        const pieces = [];
        let usage = null;
        for await (const c of stream) {
            const t = c.choices[0]?.delta?.content;
            if (t) pieces.push(t);
            if (c.usage) usage = c.usage;
        }
        const [up] = await st.mock.chatRequests();
        checkUpstreamRequest(up, { stream: true, path: PATH });
        assert.equal(pieces.join(''), up.answer.text);
        assert.equal(pieces.length, 40);
        assert.deepEqual(usage, up.answer.usage);
        const [rec] = await newLogRecords(st.logPath, mark, 1);
        checkChatLogRecord(rec, up.answer, { mode: 'stream', userAgent: /^OpenAI\//, upstreamUri: PATH });
    });

    test('thinking passes untouched: enable_thinking and thinking_budget reach DashScope, reasoning_content streams back', CASE, async () => {
        const stream = await client.chat.completions.create({
            model: 'qwen-plus', stream: true, enable_thinking: true, thinking_budget: 512,
            messages: [{ role: 'user', content: 'Hello' }],
        });
        let reasoning = '';
        let text = '';
        for await (const c of stream) {
            reasoning += c.choices[0]?.delta?.reasoning_content ?? '';
            text += c.choices[0]?.delta?.content ?? '';
        }
        const [up] = await st.mock.chatRequests();
        assert.equal(up.body.enable_thinking, true);
        assert.equal(up.body.thinking_budget, 512);
        assert.ok(up.answer.reasoning, 'the mock thought');
        assert.equal(reasoning, up.answer.reasoning);
        assert.equal(text, up.answer.text);
    });

    test('the SDK\'s stream helper accumulates parallel tool calls', CASE, async () => {
        const final = await client.chat.completions.stream({
            model: 'qwen-plus', messages: [{ role: 'user', content: 'Weather? MOCK:parallel_tools' }],
            tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } } }],
        }).finalChatCompletion();
        const calls = final.choices[0].message.tool_calls;
        assert.equal(calls.length, 2, show(final));
        assert.deepEqual(JSON.parse(calls[0].function.arguments), { location: 'Hangzhou', unit: 'celsius' });
        assert.deepEqual(JSON.parse(calls[1].function.arguments), { location: 'Singapore', unit: 'celsius' });
        assert.equal(final.choices[0].finish_reason, 'tool_calls');
        const [up] = await st.mock.chatRequests();
        /* the client did not ask for include_usage: an openai-format route passes the stream as it is */
        checkUpstreamRequest(up, { stream: true, path: PATH, toolNames: ['get_weather'], requireUsage: false });
    });

    test('another model is refused; upstream errors come back as they are', CASE, async () => {
        await assert.rejects(client.chat.completions.create({ model: 'qwen-max', messages: [{ role: 'user', content: 'x' }] }),
            (e) => e.status === 400 && /cannot use own model - must be: qwen-plus/.test(e.message));
        await st.mock.scenario({ type: 'error', status: 429 });
        await assert.rejects(client.chat.completions.create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'x' }] }),
            (e) => e.status === 429);
        assert.equal((await st.mock.chatRequests()).length, 1);
    });
});
