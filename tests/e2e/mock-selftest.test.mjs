/* mock-selftest.test.mjs - self-tests of the test tools themselves (no gateway):
 * the mock DashScope driven by the official OpenAI SDK, its scripting and
 * recording, and the real Claude Code CLI against the Anthropic recorder.
 * When these fail, the e2e results mean nothing. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import path from 'node:path';
import {
    startMock, startProcess, runClaude, claudeSkip, show, ROOT, MOCK_KEY, CLIENT_KEY, slow,
} from './harness.mjs';

describe('mock DashScope self-test', { timeout: slow(60000) }, () => {
    let mock;
    let client;
    before(async () => {
        mock = await startMock();
        client = new OpenAI({ apiKey: MOCK_KEY, baseURL: mock.baseUrl, maxRetries: 0 });
    });
    after(async () => { await mock?.stop(); });

    test('non-streaming answer with usage and DashScope headers', { timeout: slow(10000) }, async () => {
        await mock.reset();
        const { data, response } = await client.chat.completions
            .create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] })
            .withResponse();
        assert.equal(data.object, 'chat.completion');
        assert.equal(data.choices[0].message.content, 'Hello from mock DashScope.');
        assert.equal(data.choices[0].finish_reason, 'stop');
        assert.ok(data.usage.prompt_tokens > 0);
        assert.equal(data.usage.total_tokens, data.usage.prompt_tokens + data.usage.completion_tokens);
        assert.equal(data.usage.prompt_tokens_details.cached_tokens, 0);
        const rid = response.headers.get('x-request-id');
        assert.match(rid, /^[0-9a-f-]{36}$/);
        assert.equal(data.id, `chatcmpl-${rid}`);
        assert.equal(response.headers.get('x-dashscope-call-gateway'), 'true');
        const [rec] = await mock.requests();
        assert.equal(rec.method, 'POST');
        assert.equal(rec.path, '/compatible-mode/v1/chat/completions');
        assert.equal(rec.headers.authorization, `Bearer ${MOCK_KEY}`);
        assert.deepEqual(rec.answer.usage, data.usage);
    });

    test('streaming: role chunk first, usage chunk only with include_usage, [DONE]', { timeout: slow(10000) }, async () => {
        await mock.reset();
        const chunks = [];
        const s = await client.chat.completions.create({
            model: 'qwen-plus', stream: true, stream_options: { include_usage: true },
            messages: [{ role: 'user', content: 'MOCK:long' }],
        });
        for await (const c of s) chunks.push(c);
        assert.deepEqual(chunks[0].choices[0].delta, { content: '', role: 'assistant' });
        const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
        assert.equal(text.split(' ').length, 200);
        const fin = chunks.find((c) => c.choices[0]?.finish_reason);
        assert.equal(fin.choices[0].finish_reason, 'stop');
        const last = chunks.at(-1);
        assert.deepEqual(last.choices, []);
        assert.equal(last.usage.completion_tokens, 200);

        const chunks2 = [];
        const s2 = await client.chat.completions.create({
            model: 'qwen-plus', stream: true, messages: [{ role: 'user', content: 'hi' }],
        });
        for await (const c of s2) chunks2.push(c);
        assert.ok(chunks2.every((c) => c.usage === null), 'no usage without include_usage');
    });

    test('raw SSE framing is exactly DashScope\'s', { timeout: slow(10000) }, async () => {
        const r = await fetch(mock.url, {
            method: 'POST',
            headers: { authorization: `Bearer ${MOCK_KEY}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'qwen-plus', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
        });
        assert.equal(r.headers.get('content-type'), 'text/event-stream;charset=UTF-8');
        const body = await r.text();
        assert.ok(body.endsWith('data: [DONE]\n\n'));
        assert.ok(!/^event:/m.test(body), 'no event: lines');
        for (const ev of body.split('\n\n').filter(Boolean)) assert.match(ev, /^data: /);
    });

    test('tool calls: argument fragments split across chunks, id "" on continuations, parallel', { timeout: slow(10000) }, async () => {
        await mock.reset();
        const chunks = [];
        const s = await client.chat.completions.create({
            model: 'qwen-plus', stream: true, messages: [{ role: 'user', content: 'weather? MOCK:parallel_tools' }],
            tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }],
        });
        for await (const c of s) chunks.push(c);
        const calls = {};
        let continuations = 0;
        for (const c of chunks) {
            for (const tc of c.choices[0]?.delta?.tool_calls ?? []) {
                const cur = calls[tc.index] ?? (calls[tc.index] = { id: '', name: '', args: '' });
                if (tc.id) { assert.equal(cur.id, '', 'id only on the first delta'); cur.id = tc.id; } else continuations++;
                if (tc.function?.name) cur.name = tc.function.name;
                cur.args += tc.function?.arguments ?? '';
            }
        }
        assert.equal(Object.keys(calls).length, 2);
        assert.ok(continuations > 4);
        assert.deepEqual(JSON.parse(calls[0].args), { location: 'Hangzhou', unit: 'celsius' });
        assert.deepEqual(JSON.parse(calls[1].args), { location: 'Singapore', unit: 'celsius' });
        assert.notEqual(calls[0].id, calls[1].id);
        assert.equal(chunks.find((c) => c.choices[0]?.finish_reason).choices[0].finish_reason, 'tool_calls');

        /* the SDK's own accumulator agrees */
        const final = await client.chat.completions.stream({
            model: 'qwen-plus', messages: [{ role: 'user', content: 'MOCK:parallel_tools' }],
        }).finalChatCompletion();
        assert.equal(final.choices[0].message.tool_calls.length, 2);
    });

    test('thinking: reasoning_content before content', { timeout: slow(10000) }, async () => {
        const chunks = [];
        const s = await client.chat.completions.create({
            model: 'qwen-plus', stream: true, enable_thinking: true, messages: [{ role: 'user', content: 'MOCK:thinking' }],
        });
        for await (const c of s) chunks.push(c);
        const reasoning = chunks.map((c) => c.choices[0]?.delta?.reasoning_content ?? '').join('');
        const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
        assert.equal(reasoning, 'The user greets me. A short, friendly answer fits.');
        assert.equal(text, 'Hello! How can I help?');
        const lastReasoning = chunks.findLastIndex((c) => c.choices[0]?.delta?.reasoning_content);
        const firstText = chunks.findIndex((c) => c.choices[0]?.delta?.content);
        assert.ok(lastReasoning < firstText);
    });

    test('errors: 401 exact body, 400 on max_tokens over the cap, thinking without stream', { timeout: slow(10000) }, async () => {
        const bad = new OpenAI({ apiKey: CLIENT_KEY, baseURL: mock.baseUrl, maxRetries: 0 });
        await assert.rejects(bad.chat.completions.create({ model: 'qwen-plus', messages: [{ role: 'user', content: 'x' }] }),
            (e) => e.status === 401 && e.code === 'invalid_api_key' && /Incorrect API key provided/.test(e.message));
        await assert.rejects(client.chat.completions.create({
            model: 'qwen-plus', max_tokens: 32000, messages: [{ role: 'user', content: 'x' }],
        }), (e) => e.status === 400 && /Range of max_tokens should be \[1, 8192\]/.test(e.message));
        await assert.rejects(client.chat.completions.create({
            model: 'qwen-plus', enable_thinking: true, messages: [{ role: 'user', content: 'x' }],
        }), (e) => e.status === 400 && /enable_thinking/.test(e.message));
        await assert.rejects(client.chat.completions.create({
            model: 'qwen-plus', messages: [{ role: 'tool', tool_call_id: 'x', content: 'x' }],
        }), (e) => e.status === 400 && /must be a response to a preceding message/.test(e.message));
    });

    test('scenario queue: error for the next K requests only, then normal', { timeout: slow(10000) }, async () => {
        await mock.reset();
        await mock.scenario({ type: 'error', status: 429, count: 2 });
        const msgs = [{ role: 'user', content: 'x' }];
        for (let i = 0; i < 2; i++) {
            await assert.rejects(client.chat.completions.create({ model: 'qwen-plus', messages: msgs }),
                (e) => e.status === 429 && e.code === 'limit_requests');
        }
        const ok = await client.chat.completions.create({ model: 'qwen-plus', messages: msgs });
        assert.equal(ok.choices[0].message.content, 'Hello from mock DashScope.');
        await mock.scenario([{ type: 'error', status: 500 }, { type: 'text', text: 'second', usage: { prompt_tokens: 7, completion_tokens: 3, cached_tokens: 2 } }]);
        await assert.rejects(client.chat.completions.create({ model: 'qwen-plus', messages: msgs }), (e) => e.status === 500);
        const second = await client.chat.completions.create({ model: 'qwen-plus', messages: msgs });
        assert.equal(second.choices[0].message.content, 'second');
        assert.deepEqual(second.usage, { prompt_tokens: 7, completion_tokens: 3, total_tokens: 10, prompt_tokens_details: { cached_tokens: 2 } });
    });

    test('slow first token and inter-token delay', { timeout: slow(10000) }, async () => {
        await mock.scenario({ type: 'text', text: 'a b c d', first_token_delay_ms: 300, token_delay_ms: 50 });
        const t0 = Date.now();
        const s = await client.chat.completions.create({ model: 'qwen-plus', stream: true, messages: [{ role: 'user', content: 'x' }] });
        let first = 0;
        for await (const c of s) { if (!first && c.choices[0]?.delta?.content) first = Date.now() - t0; }
        const total = Date.now() - t0;
        assert.ok(first >= 280, `first token after ${first} ms`);
        assert.ok(total >= first + 150, `total ${total} ms`);
    });

    test('faults: mid-stream reset, in-stream error, invalid JSON, garbage HTTP', { timeout: slow(15000) }, async () => {
        const msgs = [{ role: 'user', content: 'x' }];
        await mock.scenario({ type: 'reset', reset_after: 3 });
        await assert.rejects((async () => {
            const s = await client.chat.completions.create({ model: 'qwen-plus', stream: true, messages: msgs });
            for await (const c of s) void c;
        })());
        await mock.scenario({ type: 'stream_error' });
        const r = await fetch(mock.url, {
            method: 'POST', headers: { authorization: `Bearer ${MOCK_KEY}` },
            body: JSON.stringify({ model: 'qwen-plus', stream: true, messages: msgs }),
        });
        const body = await r.text();
        assert.equal(r.status, 200);
        assert.match(body, /data: \{"error":\{"message":"Output data may contain inappropriate content\."/);
        assert.ok(!body.includes('[DONE]'));
        await mock.scenario({ type: 'invalid_json' });
        await assert.rejects(client.chat.completions.create({ model: 'qwen-plus', messages: msgs }));
        await mock.scenario({ type: 'garbage' });
        await assert.rejects(fetch(mock.url, {
            method: 'POST', headers: { authorization: `Bearer ${MOCK_KEY}` },
            body: JSON.stringify({ model: 'qwen-plus', messages: msgs }),
        }).then((x) => x.text()));
        const after = await client.chat.completions.create({ model: 'qwen-plus', messages: msgs });
        assert.equal(after.choices[0].message.content, 'Hello from mock DashScope.');
    });

    test('records unknown (non-DashScope) top-level fields', { timeout: slow(10000) }, async () => {
        await mock.reset();
        await client.chat.completions.create({
            model: 'qwen-plus', messages: [{ role: 'user', content: 'x' }], system: 'leaked', thinking: { type: 'adaptive' },
        });
        const [rec] = await mock.requests();
        assert.deepEqual(rec.unknownFields.sort(), ['system', 'thinking']);
    });
});

describe('Claude Code CLI against the Anthropic recorder (no gateway)', { timeout: slow(120000) }, () => {
    let rec;
    let port;
    before(async () => {
        rec = startProcess(process.execPath, [path.join(ROOT, 'tests/mock/anthropic-recorder.mjs'), '--port', '0']);
        /* a node process starting: seconds on a loaded machine */
        for (const end = Date.now() + 30000; Date.now() < end && !/listening (\d+)/.test(rec.stdout);)
            await new Promise((r) => setTimeout(r, 25));
        port = Number(/listening (\d+)/.exec(rec.stdout)[1]);
    });
    after(async () => { await rec?.stop(); });

    test('the pinned CLI runs offline, sends what the fixtures describe and completes a tool round trip',
        { skip: claudeSkip(), timeout: slow(60000) }, async () => {
            const r = await runClaude({
                baseUrl: `http://127.0.0.1:${port}/anything`, prompt: 'TOOLTEST run the marker', args: ['--allowedTools', 'Bash'],
            });
            assert.equal(r.code, 0, show(r));
            assert.equal(r.json.result, 'The command printed: sluice-tool-output-42', show(r.json));
            const reqs = await (await fetch(`http://127.0.0.1:${port}/__rec/requests`)).json();
            const posts = reqs.filter((q) => q.method === 'POST');
            assert.equal(posts.length, 2, show(reqs.map((q) => `${q.method} ${q.path}`)));
            for (const q of posts) {
                assert.equal(q.path, '/anything/v1/messages?beta=true');
                assert.match(q.headers['user-agent'], /^claude-cli\//);
                assert.equal(q.headers['x-api-key'], 'sk-ant-PLACEHOLDER');
                assert.equal(q.body.model, 'qwen-plus');
                assert.equal(q.body.stream, true);
                assert.ok(q.body.tools.some((t) => t.name === 'Bash'));
            }
            const trMsg = posts[1].body.messages.at(-1);
            assert.equal(trMsg.content[0].type, 'tool_result');
            assert.equal(trMsg.content[0].content, 'sluice-tool-output-42');
        });
});
