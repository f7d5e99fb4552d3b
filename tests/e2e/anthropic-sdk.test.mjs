/* anthropic-sdk.test.mjs - the official Anthropic TypeScript SDK through
 * sluice (how-to config, llm_format anthropic) to the mock DashScope:
 * messages.create, messages.stream with the SDK's own accumulator, thinking,
 * parallel tool calls, a tool round trip, countTokens and error mapping. */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startHowtoStack, logMark, newLogRecords, show, CLIENT_KEY, slow } from './harness.mjs';
import { checkUpstreamRequest, checkChatLogRecord, pairRecordsWithAnswers } from './checks.mjs';

const CASE = { timeout: slow(30000) };
const UA = /.+/;
const WEATHER = {
    name: 'get_weather',
    description: 'Current weather for a city',
    input_schema: {
        type: 'object',
        properties: { location: { type: 'string' }, unit: { type: 'string', enum: ['celsius', 'fahrenheit'] } },
        required: ['location'],
    },
};

describe('Anthropic SDK through sluice', { timeout: slow(300000) }, () => {
    let st;
    let client;
    let mark = 0;
    before(async () => {
        st = await startHowtoStack({ workers: 2 });
        /* the SDK appends /v1/messages; the query the CLI adds is not needed */
        client = new Anthropic({ apiKey: CLIENT_KEY, baseURL: st.anthropicBase, maxRetries: 0 });
    });
    after(async () => { await st?.stop(); });
    beforeEach(async () => {
        await st.mock.reset();
        mark = logMark(st.logPath);
    });

    test('messages.create: text, usage, headers', CASE, async () => {
        const { data: msg, response } = await client.messages.create({
            model: 'qwen-plus', max_tokens: 1024, messages: [{ role: 'user', content: 'Hello' }],
        }).withResponse();
        assert.equal(msg.type, 'message');
        assert.equal(msg.role, 'assistant');
        assert.match(msg.id, /^msg_/);
        assert.equal(msg.model, 'qwen-plus');
        assert.deepEqual(msg.content, [{ type: 'text', text: 'Hello from mock DashScope.' }]);
        assert.equal(msg.stop_reason, 'end_turn');
        assert.equal(msg.stop_sequence, null);
        const [up] = await st.mock.chatRequests();
        checkUpstreamRequest(up, { stream: false, path: '/compatible-mode/v1/chat/completions' });
        assert.equal(msg.usage.input_tokens, up.answer.usage.prompt_tokens);
        assert.equal(msg.usage.output_tokens, up.answer.usage.completion_tokens);
        assert.equal(response.headers.get('x-kong-llm-model'), 'dashscope/qwen-plus');
        const recs = await newLogRecords(st.logPath, mark, 1);
        const rec = recs[0];
        assert.equal(rec.upstream_uri, '/compatible-mode/v1/chat/completions');
        assert.equal(rec.ai.proxy.meta.request_mode, 'oneshot');
        assert.equal(rec.ai.proxy.usage.prompt_tokens, up.answer.usage.prompt_tokens);
    });

    test('messages.stream: the SDK accumulator gets one well-formed message', CASE, async () => {
        await st.mock.scenario({ type: 'text', tokens: 50, token_delay_ms: 2 });
        const texts = [];
        const events = [];
        const stream = client.messages.stream({
            model: 'qwen-plus', max_tokens: 1024, messages: [{ role: 'user', content: 'Count' }],
        });
        stream.on('text', (t) => texts.push(t));
        stream.on('streamEvent', (e) => events.push(e.type));
        const msg = await stream.finalMessage();
        const [up] = await st.mock.chatRequests();
        checkUpstreamRequest(up, { stream: true, path: '/compatible-mode/v1/chat/completions' });
        assert.equal(texts.join(''), up.answer.text);
        assert.ok(texts.length >= 10, `text arrived in ${texts.length} pieces: not streamed token by token`);
        assert.equal(msg.content.length, 1);
        assert.equal(msg.content[0].text, up.answer.text);
        assert.equal(msg.stop_reason, 'end_turn');
        assert.equal(msg.usage.output_tokens, up.answer.usage.completion_tokens);
        assert.equal(msg.usage.input_tokens, up.answer.usage.prompt_tokens);
        assert.equal(events[0], 'message_start');
        assert.equal(events.at(-1), 'message_stop');
        assert.equal(events.filter((e) => e === 'message_start').length, 1);
        const recs = await newLogRecords(st.logPath, mark, 1);
        for (const [rec, ans] of pairRecordsWithAnswers(recs, [up])) checkChatLogRecord(rec, ans, {
            mode: 'stream', userAgent: UA, upstreamUri: '/compatible-mode/v1/chat/completions' });
    });

    test('messages.stream: reasoning_content becomes a thinking block before the text', CASE, async () => {
        await st.mock.scenario({ type: 'thinking', reasoning: 'Think step by step.', text: 'Done thinking.' });
        const stream = client.messages.stream({
            model: 'qwen-plus', max_tokens: 4096, thinking: { type: 'enabled', budget_tokens: 2048 },
            messages: [{ role: 'user', content: 'Think' }],
        });
        const msg = await stream.finalMessage();
        assert.deepEqual(msg.content.map((b) => b.type), ['thinking', 'text'], show(msg.content));
        assert.equal(msg.content[0].thinking, 'Think step by step.');
        assert.equal(msg.content[1].text, 'Done thinking.');
        const [up] = await st.mock.chatRequests();
        checkUpstreamRequest(up, { stream: true, path: '/compatible-mode/v1/chat/completions' });
        assert.equal(up.body.enable_thinking, true, 'thinking enabled was not mapped to enable_thinking');
    });

    test('messages.stream: parallel tool calls become tool_use blocks with parsed input', CASE, async () => {
        await st.mock.scenario({ ...{ type: 'tool_call', text: 'Let me check both.' },
            tool_calls: [{ name: 'get_weather', arguments: { location: 'Hangzhou', unit: 'celsius' } },
                { name: 'get_weather', arguments: { location: 'Singapore', unit: 'celsius' } }] });
        const msg = await client.messages.stream({
            model: 'qwen-plus', max_tokens: 1024, tools: [WEATHER],
            messages: [{ role: 'user', content: 'Weather in Hangzhou and Singapore?' }],
        }).finalMessage();
        assert.deepEqual(msg.content.map((b) => b.type), ['text', 'tool_use', 'tool_use'], show(msg.content));
        assert.equal(msg.stop_reason, 'tool_use');
        assert.deepEqual(msg.content[1].input, { location: 'Hangzhou', unit: 'celsius' });
        assert.deepEqual(msg.content[2].input, { location: 'Singapore', unit: 'celsius' });
        assert.notEqual(msg.content[1].id, msg.content[2].id);
        const [up] = await st.mock.chatRequests();
        checkUpstreamRequest(up, { stream: true, path: '/compatible-mode/v1/chat/completions', toolNames: ['get_weather'] });
        assert.deepEqual(up.body.tools[0].function.parameters, WEATHER.input_schema);
    });

    test('a tool round trip with messages.create', CASE, async () => {
        await st.mock.scenario({ type: 'tool_call', text: '', tool_calls: [{ name: 'get_weather', arguments: { location: 'Paris' } }] });
        const messages = [{ role: 'user', content: 'Weather in Paris?' }];
        const first = await client.messages.create({ model: 'qwen-plus', max_tokens: 512, tools: [WEATHER], messages });
        assert.equal(first.stop_reason, 'tool_use');
        const use = first.content.find((b) => b.type === 'tool_use');
        assert.deepEqual(use.input, { location: 'Paris' });
        messages.push({ role: 'assistant', content: first.content });
        messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '18 degrees and sunny' }] });
        const second = await client.messages.create({ model: 'qwen-plus', max_tokens: 512, tools: [WEATHER], messages });
        assert.equal(second.content[0].text, 'The tool said: 18 degrees and sunny');
        const ups = await st.mock.chatRequests();
        assert.equal(ups.length, 2);
        const m = ups[1].body.messages;
        const ai = m.find((x) => x.role === 'assistant');
        const tool = m.find((x) => x.role === 'tool');
        assert.equal(ai.tool_calls[0].function.name, 'get_weather');
        assert.deepEqual(JSON.parse(ai.tool_calls[0].function.arguments), { location: 'Paris' });
        assert.equal(tool.tool_call_id, ai.tool_calls[0].id);
    });

    test('countTokens is answered locally with a plausible count', CASE, async () => {
        const small = await client.messages.countTokens({ model: 'qwen-plus', messages: [{ role: 'user', content: 'Hi' }] });
        const text = 'The quick brown fox jumps over the lazy dog. '.repeat(200);
        const big = await client.messages.countTokens({
            model: 'qwen-plus', system: 'You are terse.', tools: [WEATHER], messages: [{ role: 'user', content: text }],
        });
        assert.ok(small.input_tokens > 0 && small.input_tokens < 50, show(small));
        /* ~2000 words: any sane estimate is within a factor of two */
        assert.ok(big.input_tokens > 1000 && big.input_tokens < 4000, show(big));
        assert.equal((await st.mock.requests()).length, 0, 'count_tokens reached the provider');
    });

    test('errors map to the SDK\'s typed errors', CASE, async () => {
        await assert.rejects(client.messages.create({ model: 'qwen-max', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof Anthropic.BadRequestError && /cannot use own model - must be: qwen-plus/.test(e.message));
        await st.mock.scenario({ type: 'error', status: 429 });
        await assert.rejects(client.messages.create({ model: 'qwen-plus', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof Anthropic.RateLimitError && e.error?.error?.type === 'rate_limit_error');
        await st.mock.scenario({ type: 'error', status: 500 });
        await assert.rejects(client.messages.create({ model: 'qwen-plus', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
            (e) => e instanceof Anthropic.InternalServerError && e.error?.type === 'error');
        await st.mock.scenario({ type: 'error', status: 502, body: '<html><body>Bad gateway</body></html>', content_type: 'text/html' });
        await assert.rejects(client.messages.create({ model: 'qwen-plus', max_tokens: 10, messages: [{ role: 'user', content: 'x' }] }),
            (e) => e.status >= 500 && e.error?.type === 'error', 'an HTML error page becomes an Anthropic error');
        await assert.rejects(client.messages.create({ model: 'qwen-plus', max_tokens: 10, messages: 'not a list' }),
            (e) => e instanceof Anthropic.BadRequestError && e.error?.error?.type === 'invalid_request_error');
    });

    test('a mid-stream upstream failure ends the stream with an error event', CASE, async () => {
        await st.mock.scenario({ type: 'reset', reset_after: 3 });
        const stream = client.messages.stream({ model: 'qwen-plus', max_tokens: 100, messages: [{ role: 'user', content: 'x' }] });
        await assert.rejects(stream.finalMessage(), (e) => e instanceof Anthropic.APIError);
    });
    /* DashScope thinks only when streaming: a non-streaming request that asks
     * for thinking streams upstream and is answered as one message */
    test('thinking without streaming: streamed upstream, one message back', CASE, async () => {
        const msg = await client.messages.create({
            model: 'qwen-plus', max_tokens: 1000, thinking: { type: 'adaptive' },
            messages: [{ role: 'user', content: 'Think first. MOCK:thinking' }],
        });
        const [up] = await st.mock.chatRequests();
        assert.equal(up.body.stream, true);
        assert.equal(up.body.enable_thinking, true);
        assert.equal(msg.content[0].type, 'thinking');
        assert.equal(msg.content[0].thinking, up.answer.reasoning);
        assert.equal(msg.content[1].text, up.answer.text);
        assert.equal(msg.usage.output_tokens, up.answer.usage.completion_tokens);
    });
});
