/* providers.test.mjs - every provider sluice serves, through the real
 * binary, against mocks speaking each provider's wire format
 * (tests/mock/providers.mjs), with the official OpenAI and Anthropic SDKs:
 * the provider's default path (upstream_url gives only scheme://host:port),
 * its credential (a wrong one gets the provider's own 401, mapped into the
 * client's error shape), Azure's api-version and api-key, Anthropic's
 * anthropic-version and count_tokens, streaming in the client's grammar,
 * a tool round trip, usage in the log, and the client's key never reaching
 * a provider. docs/providers.md names the cases. */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway, tmpDir, readLog, CLIENT_KEY, runClaude, claudeSkip, show, logMark, waitLog, waitRecord, slow } from './harness.mjs';
import { startProviders, KEYS } from '../mock/providers.mjs';

const CASE = { timeout: slow(30000) };

/* provider -> [its default chat path, extra model.options] */
const OPENAI_FAMILY = {
    openai: ['/v1/chat/completions', {}],
    azure: ['/openai/deployments/gpt4o-dep/chat/completions',
        { azure_instance: 'myinst', azure_deployment_id: 'gpt4o-dep', azure_api_version: '2024-10-21' }],
    mistral: ['/v1/chat/completions', { mistral_format: 'openai' }],
    deepseek: ['/v1/chat/completions', {}],
    xai: ['/v1/chat/completions', {}],
    cerebras: ['/v1/chat/completions', {}],
    ollama: ['/v1/chat/completions', {}],
    vllm: ['/v1/chat/completions', {}],
    llama2: ['/v1/chat/completions', { llama2_format: 'openai' }],
    /* Kong's rule: upstream_url + /v1/chat/completions (the HF router's path) */
    huggingface: ['/v1/chat/completions', {}],
    databricks: ['/serving-endpoints/chat/completions', {}],
};
/* preserve cases under /pres-<p>/v1/chat/completions */
const PRESERVE_FAMILY = ['mistral', 'deepseek', 'xai', 'cerebras', 'ollama', 'vllm', 'llama2', 'huggingface', 'databricks', 'dashscope'];
const AUTH = {
    azure: { header_name: 'api-key', header_value: KEYS.azure },
    anthropic: { header_name: 'x-api-key', header_value: KEYS.anthropic },
};
const auth = (p) => AUTH[p] ?? { header_name: 'Authorization', header_value: `Bearer ${KEYS[p]}` };

function route(name, p, { provider, fmt, model = `${provider}-model`, alias, options = {}, authv = auth(provider), routeType = 'llm/v1/chat' }) {
    return {
        name, paths: [p],
        plugins: [{
            name: 'ai-proxy',
            config: {
                route_type: routeType, llm_format: fmt,
                logging: { log_statistics: true },
                auth: authv,
                model: { provider, name: model, ...(alias ? { model_alias: alias } : {}), options: { upstream_url: `MOCK`, ...options } },
            },
        }],
    };
}

describe('providers through sluice', { timeout: slow(300000) }, () => {
    let mock;
    let gw;
    let logPath;
    before(async () => {
        mock = await startProviders();
        logPath = path.join(tmpDir(), 'log.json');
        const routes = [];
        for (const [p, [, opts]] of Object.entries(OPENAI_FAMILY)) {
            routes.push(route(`oa-${p}`, `/oa/${p}`, { provider: p, fmt: 'openai', options: opts }));
            routes.push(route(`an-${p}`, `/an/${p}`, { provider: p, fmt: 'anthropic', options: opts }));
        }
        routes.push(route('an-anthropic', '/an/anthropic', {
            provider: 'anthropic', fmt: 'anthropic', model: 'claude-sonnet-4-5', alias: 'claude-team',
            options: { anthropic_version: '2023-06-01', max_tokens: 1024 },
        }));
        routes.push(route('oa-anthropic', '/oa/anthropic', {
            provider: 'anthropic', fmt: 'openai', model: 'claude-sonnet-4-5',
            options: { anthropic_version: '2023-06-01' },
        }));
        routes.push(route('bad-oa-anthropic', '/bad/anthropic', {
            provider: 'anthropic', fmt: 'openai', model: 'claude-sonnet-4-5',
            options: { anthropic_version: '2023-06-01' }, authv: { header_name: 'x-api-key', header_value: 'wrong' },
        }));
        routes.push(route('bad-key', '/bad/openai', {
            provider: 'openai', fmt: 'anthropic', authv: { header_name: 'Authorization', header_value: 'Bearer sk-wrong' },
        }));
        routes.push(route('oa-cohere', '/oa/cohere', { provider: 'cohere', fmt: 'openai', options: { top_k: 40 } }));
        routes.push(route('an-cohere', '/an/cohere', { provider: 'cohere', fmt: 'anthropic' }));
        routes.push(route('bad-cohere', '/bad/cohere', {
            provider: 'cohere', fmt: 'openai', authv: { header_name: 'Authorization', header_value: 'Bearer co-wrong' },
        }));
        routes.push(route('bad-hf', '/bad/huggingface', {
            provider: 'huggingface', fmt: 'anthropic', authv: { header_name: 'Authorization', header_value: 'Bearer hf_wrong' },
        }));
        routes.push(route('bad-db', '/bad/databricks', {
            provider: 'databricks', fmt: 'anthropic', authv: { header_name: 'Authorization', header_value: 'Bearer dapi-wrong' },
        }));
        routes.push(route('bad-azure', '/bad/azure', {
            provider: 'azure', fmt: 'openai', options: OPENAI_FAMILY.azure[1], authv: { header_name: 'api-key', header_value: 'nope' },
        }));
        routes.push(route('pres', '/pres', { provider: 'openai', fmt: 'openai', routeType: 'preserve' }));
        /* preserve for every other provider: the client's own path (the
         * ones the mock routes exactly are the provider's real paths) */
        for (const p of PRESERVE_FAMILY) {
            routes.push(route(`pres-${p}`, `/pres-${p}`, { provider: p, fmt: 'openai', routeType: 'preserve', options: OPENAI_FAMILY[p]?.[1] ?? {} }));
        }
        routes.push(route('pres-azure', '/openai/deployments', { provider: 'azure', fmt: 'openai', routeType: 'preserve', options: OPENAI_FAMILY.azure[1] }));
        routes.push(route('pres-anthropic', '/v1/messages', { provider: 'anthropic', fmt: 'anthropic', routeType: 'preserve', options: { anthropic_version: '2023-06-01' } }));
        routes.push(route('pres-cohere', '/v2/chat', { provider: 'cohere', fmt: 'openai', routeType: 'preserve' }));
        routes.push(route('pres-cohere-embed', '/v2/embed', { provider: 'cohere', fmt: 'openai', routeType: 'preserve' }));
        routes.push(route('emb', '/emb/openai', { provider: 'openai', fmt: 'openai', model: 'text-embedding-3-small', routeType: 'llm/v1/embeddings' }));
        routes.push(route('emb-az', '/emb/azure', {
            provider: 'azure', fmt: 'openai', model: 'text-embedding-3-small', routeType: 'llm/v1/embeddings',
            options: { azure_instance: 'myinst', azure_deployment_id: 'emb-dep' },
        }));
        for (const p of ['mistral', 'dashscope', 'databricks', 'ollama']) {
            routes.push(route(`emb-${p}`, `/emb/${p}`, {
                provider: p, fmt: 'openai', model: `${p}-embed`, routeType: 'llm/v1/embeddings',
                options: { ...OPENAI_FAMILY[p]?.[1], ...(p === 'mistral' ? { embeddings_dimensions: 256 } : {}) },
            }));
        }
        routes.push(route('emb-co', '/emb/cohere', {
            provider: 'cohere', fmt: 'openai', model: 'embed-v4.0', routeType: 'llm/v1/embeddings',
            options: { embeddings_dimensions: 3, cohere: { embedding_input_type: 'search_query' } },
        }));
        routes.push(route('emb-co-bad', '/emb/cohere-bad', {
            provider: 'cohere', fmt: 'openai', model: 'embed-v4.0', routeType: 'llm/v1/embeddings',
            authv: { header_name: 'Authorization', header_value: 'Bearer co-wrong' },
        }));
        routes.push(route('cmp', '/cmp/openai', {
            provider: 'openai', fmt: 'openai', model: 'gpt-3.5-turbo-instruct', routeType: 'llm/v1/completions',
            options: { max_tokens: 64 },
        }));
        /* llama2 (llama2_format openai): the self-hosted server's
         * /v1/completions, or upstream_url's own path */
        routes.push(route('cmp-llama2', '/cmp/llama2', {
            provider: 'llama2', fmt: 'openai', model: 'llama-2-7b', routeType: 'llm/v1/completions',
            options: { llama2_format: 'openai', max_tokens: 32 },
        }));
        routes.push(route('cmp-llama2-url', '/cmp/llama2-url', {
            provider: 'llama2', fmt: 'openai', model: 'llama-2-7b', routeType: 'llm/v1/completions',
            options: { llama2_format: 'openai', upstream_url: `${mock.base}/llama/v1/completions` },
        }));
        routes.push(route('cmp-az', '/cmp/azure', {
            provider: 'azure', fmt: 'openai', model: 'gpt-35-instruct', routeType: 'llm/v1/completions',
            options: { azure_instance: 'myinst', azure_deployment_id: 'instruct-dep' },
        }));
        const config = JSON.stringify({
            _format_version: '3.0',
            services: [{ name: 'llm', url: 'http://127.0.0.1:9/', routes }],
            plugins: [{ name: 'file-log', config: { path: logPath } }],
        }).replaceAll('"MOCK"', JSON.stringify(mock.base));
        gw = await startGateway({ workers: 1, config });
    });
    after(async () => {
        await gw?.stop();
        await mock?.stop();
    });
    beforeEach(() => mock.reset());

    /* every request to the gateway carries x-test-seq (gwFetch, the SDK
     * clients' fetch): lastLog waits for the record of the latest one
     * rather than sleeping and hoping it was written */
    let seq = 0;
    const gwFetch = (url, init = {}) => {
        const headers = new Headers(init.headers);
        headers.set('x-test-seq', String(++seq));
        return fetch(url, { ...init, headers });
    };
    const lastLog = async () => {
        const want = String(seq);
        const rec = await waitRecord(logPath, (r) => r.request?.headers?.['x-test-seq'] === want, 10000);
        assert.ok(rec, `no log record for request ${want}`);
        return rec;
    };
    const noClientKey = (rec) => {
        const h = JSON.stringify(rec.headers);
        assert.ok(!h.includes(CLIENT_KEY), 'the client key reached the provider');
    };
    const oa = (p) => new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/oa/${p}/v1`, maxRetries: 0, fetch: gwFetch });
    const an = (p, prefix = '/an') => new Anthropic({ apiKey: CLIENT_KEY, baseURL: `${gw.base}${prefix}/${p}`, maxRetries: 0, fetch: gwFetch });

    for (const [p, [chatPath]] of Object.entries(OPENAI_FAMILY)) {
        test(`${p}: OpenAI SDK, non-streamed and streamed with include_usage`, CASE, async () => {
            const client = oa(p);
            const { data, response } = await client.chat.completions.create({
                model: `${p}-model`, messages: [{ role: 'user', content: 'Hello' }],
            }).withResponse();
            assert.equal(data.choices[0].message.content, mock.TEXT);
            assert.equal(response.headers.get('x-kong-llm-model'), `${p}/${p}-model`);
            const up = mock.requests[0];
            assert.equal(up.path, chatPath);
            assert.equal(up.provider, p);
            noClientKey(up);
            if (p === 'azure') assert.match(up.query, /api-version=2024-10-21/);
            let rec = await lastLog();
            assert.equal(rec.ai.proxy.meta.provider_name, p);
            assert.equal(rec.ai.proxy.usage.prompt_tokens, 21);

            const stream = await client.chat.completions.create({
                model: `${p}-model`, stream: true, stream_options: { include_usage: true },
                messages: [{ role: 'user', content: 'Hello' }],
            });
            let text = '';
            let usage = null;
            for await (const c of stream) {
                text += c.choices[0]?.delta?.content ?? '';
                if (c.usage) usage = c.usage;
            }
            assert.equal(text, mock.TEXT);
            assert.equal(usage?.prompt_tokens, 21);
            rec = await lastLog();
            assert.equal(rec.ai.proxy.meta.request_mode, 'stream');
            assert.equal(rec.ai.proxy.usage.completion_tokens, usage.completion_tokens);

            /* tools: the provider's call reaches the client, the result goes back */
            const otools = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
            const ask = [{ role: 'user', content: 'MOCK:tool_call weather?' }];
            const tc = await client.chat.completions.create({ model: `${p}-model`, tools: otools, messages: ask });
            assert.equal(tc.choices[0].finish_reason, 'tool_calls');
            const call = tc.choices[0].message.tool_calls[0];
            assert.equal(call.function.name, mock.TOOL.name);
            assert.deepEqual(JSON.parse(call.function.arguments), mock.TOOL.arguments);
            assert.equal(mock.requests.at(-1).body.tools[0].function.name, 'get_weather');
            await client.chat.completions.create({
                model: `${p}-model`, tools: otools,
                messages: [...ask, tc.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '21C' }],
            });
            assert.ok(mock.requests.at(-1).body.messages.some((m) => m.role === 'tool' && m.tool_call_id === call.id && m.content === '21C'));
        });

        test(`${p}: Anthropic SDK, streamed text and a tool call`, CASE, async () => {
            const client = an(p);
            const msg = await client.messages.stream({
                model: `${p}-model`, max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }],
            }).finalMessage();
            assert.equal(msg.content[0].text, mock.TEXT);
            assert.equal(msg.usage.output_tokens, mock.requests[0].usage.output);
            const srec = await lastLog();
            assert.equal(srec.ai.proxy.meta.provider_name, p);
            assert.equal(srec.ai.proxy.meta.request_mode, 'stream');
            assert.equal(srec.ai.proxy.usage.prompt_tokens, 21);
            assert.equal(srec.ai.proxy.usage.completion_tokens, mock.requests[0].usage.output);
            const up = mock.requests[0];
            assert.equal(up.path, chatPath);
            assert.equal(up.body.stream, true);
            if (p === 'mistral') {
                assert.equal(up.body.stream_options, undefined, 'Mistral refuses stream_options');
            } else {
                assert.deepEqual(up.body.stream_options, { include_usage: true });
            }
            noClientKey(up);
            const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
            const t = await client.messages.create({
                model: `${p}-model`, max_tokens: 256, tools, tool_choice: { type: 'any' },
                messages: [{ role: 'user', content: 'MOCK:tool_call weather?' }],
            });
            assert.equal(t.stop_reason, 'tool_use');
            const tu = t.content.find((b) => b.type === 'tool_use');
            assert.deepEqual(tu.input, mock.TOOL.arguments);
            assert.equal(mock.requests[1].body.tool_choice, 'required');
            // the round trip: the tool result goes back as a tool message
            await client.messages.create({
                model: `${p}-model`, max_tokens: 256, tools,
                messages: [{ role: 'user', content: 'weather?' }, { role: 'assistant', content: t.content },
                    { role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: '21C' }] }],
            });
            const back = mock.requests[2].body.messages;
            assert.ok(back.some((m) => m.role === 'tool' && m.tool_call_id === tu.id && m.content === '21C'));
        });
    }

    for (const p of Object.keys(OPENAI_FAMILY)) {
        test(`${p}: thinking passes untouched: reasoning_effort up, reasoning_content back (OpenAI SDK, streamed and not); an Anthropic client gets a thinking block`, CASE, async () => {
            const client = oa(p);
            const model = `${p}-model`;
            const r = await client.chat.completions.create({ model, reasoning_effort: 'high', messages: [{ role: 'user', content: 'Hello' }] });
            assert.equal(mock.requests[0].body.reasoning_effort, 'high');
            assert.equal(r.choices[0].message.reasoning_content, 'Reasoning at high effort.');
            assert.equal(r.choices[0].message.content, mock.TEXT);
            const stream = await client.chat.completions.create({ model, stream: true, reasoning_effort: 'low', messages: [{ role: 'user', content: 'Hello' }] });
            let reasoning = '';
            let text = '';
            for await (const c of stream) {
                reasoning += c.choices[0]?.delta?.reasoning_content ?? '';
                text += c.choices[0]?.delta?.content ?? '';
            }
            assert.equal(mock.requests[1].body.reasoning_effort, 'low');
            assert.equal(reasoning, 'Reasoning at low effort.');
            assert.equal(text, mock.TEXT);
            /* Anthropic client: the provider's reasoning_content is a thinking block, streamed and not */
            mock.next({ reasoning: 'Thinking it over.' });
            const m = await an(p).messages.create({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] });
            assert.equal(m.content[0].type, 'thinking');
            assert.equal(m.content[0].thinking, 'Thinking it over.');
            assert.equal(m.content.at(-1).text, mock.TEXT);
            mock.next({ reasoning: 'Thinking it over.' });
            const st = await an(p).messages.stream({ model, max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] }).finalMessage();
            assert.equal(st.content[0].type, 'thinking');
            assert.equal(st.content[0].thinking, 'Thinking it over.');
            assert.equal(st.content.at(-1).text, mock.TEXT);
            const rec = await lastLog();
            assert.equal(rec.ai.proxy.meta.provider_name, p);
        });
    }

    test('cohere: thinking: reasoning_effort asks for it, thinking parts come back as reasoning_content (OpenAI SDK, streamed and not); an Anthropic client gets a thinking block', CASE, async () => {
        const client = oa('cohere');
        const r = await client.chat.completions.create({ model: 'cohere-model', reasoning_effort: 'medium', messages: [{ role: 'user', content: 'Hello' }] });
        assert.deepEqual(mock.requests[0].body.thinking, { type: 'enabled', token_budget: 2048 });
        assert.equal(mock.requests[0].body.reasoning_effort, undefined);
        assert.equal(r.choices[0].message.reasoning_content, 'Thinking it over.');
        assert.equal(r.choices[0].message.content, mock.TEXT);
        const stream = await client.chat.completions.create({ model: 'cohere-model', stream: true, reasoning_effort: 'low', messages: [{ role: 'user', content: 'Hello' }] });
        let reasoning = '';
        let text = '';
        for await (const c of stream) {
            reasoning += c.choices[0]?.delta?.reasoning_content ?? '';
            text += c.choices[0]?.delta?.content ?? '';
        }
        assert.deepEqual(mock.requests[1].body.thinking, { type: 'enabled', token_budget: 1024 });
        assert.equal(reasoning, 'Thinking it over.');
        assert.equal(text, mock.TEXT);
        mock.next({ thinking: true }); /* a reasoning model that thinks unless told not to */
        const off = await client.chat.completions.create({ model: 'cohere-model', reasoning_effort: 'none', messages: [{ role: 'user', content: 'Hello' }] });
        assert.deepEqual(mock.requests[2].body.thinking, { type: 'disabled' });
        assert.equal(off.choices[0].message.reasoning_content, undefined);
        const n = mock.requests.length;
        await assert.rejects(client.chat.completions.create({ model: 'cohere-model', reasoning_effort: 'extreme', messages: [{ role: 'user', content: 'Hello' }] }),
            (e) => e instanceof OpenAI.BadRequestError && /reasoning_effort: must be one of/.test(e.message));
        assert.equal(mock.requests.length, n, 'a refused request reached the provider');
        /* Anthropic client through the pivot: the thinking parts become a thinking block */
        mock.next({ thinking: true });
        const m = await an('cohere').messages.create({ model: 'cohere-model', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] });
        assert.equal(m.content[0].type, 'thinking');
        assert.equal(m.content[0].thinking, 'Thinking it over.');
        assert.equal(m.content.at(-1).text, mock.TEXT);
        mock.next({ thinking: true });
        const st = await an('cohere').messages.stream({ model: 'cohere-model', max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }] }).finalMessage();
        assert.equal(st.content[0].type, 'thinking');
        assert.equal(st.content[0].thinking, 'Thinking it over.');
        assert.equal(st.content.at(-1).text, mock.TEXT);
    });

    test('huggingface, databricks: a wrong key is the provider\'s own 401 in Anthropic\'s shape', CASE, async () => {
        await assert.rejects(an('huggingface', '/bad').messages.create({
            model: 'huggingface-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e.status === 401 && e.error?.error?.type === 'authentication_error' &&
            /Invalid credentials in Authorization header/.test(e.error.error.message));
        assert.equal(mock.requests.at(-1).path, '/v1/chat/completions');
        await assert.rejects(an('databricks', '/bad').messages.create({
            model: 'databricks-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e.status === 401 && e.error?.error?.type === 'authentication_error' &&
            /Credential was not sent/.test(e.error.error.message));
        assert.equal(mock.requests.at(-1).path, '/serving-endpoints/chat/completions');
        assert.equal(mock.requests.at(-1).headers.authorization, 'Bearer dapi-wrong');
    });

    const OTOOLS = [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];

    test('cohere: OpenAI SDK, the v2 Chat API: request fields, answer, stream with include_usage, a tool round trip', CASE, async () => {
        const client = oa('cohere');
        const { data, response } = await client.chat.completions.create({
            model: 'cohere-model', max_completion_tokens: 200, top_p: 0.5, stop: 'END', user: 'u1',
            messages: [{ role: 'developer', content: 'be brief' }, { role: 'user', content: 'Hello' }],
        }).withResponse();
        assert.equal(data.choices[0].message.content, mock.TEXT);
        assert.equal(data.choices[0].finish_reason, 'stop');
        assert.equal(data.usage.prompt_tokens, 21);
        assert.equal(response.headers.get('x-kong-llm-model'), 'cohere/cohere-model');
        const up = mock.requests[0];
        assert.equal(up.path, '/v2/chat');
        assert.equal(up.headers.authorization, `Bearer ${KEYS.cohere}`);
        noClientKey(up);
        assert.deepEqual(up.body, {
            messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Hello' }],
            p: 0.5, stop_sequences: ['END'], model: 'cohere-model', max_tokens: 200, k: 40,
        });
        let rec = await lastLog();
        assert.equal(rec.ai.proxy.meta.provider_name, 'cohere');
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 21);

        const stream = await client.chat.completions.create({
            model: 'cohere-model', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'Hello' }],
        });
        const chunks = [];
        for await (const c of stream) chunks.push(c);
        assert.equal(chunks[0].choices[0].delta.role, 'assistant');
        assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), mock.TEXT);
        assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).length, 1);
        assert.equal(chunks.at(-1).usage.prompt_tokens, 21);
        assert.equal(mock.requests[1].body.stream, true);
        assert.equal(mock.requests[1].body.stream_options, undefined, 'v2 has no stream_options');
        rec = await lastLog();
        assert.equal(rec.ai.proxy.meta.request_mode, 'stream');
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 21);

        const ts = await client.chat.completions.create({
            model: 'cohere-model', stream: true, tools: OTOOLS, tool_choice: 'required',
            messages: [{ role: 'user', content: 'MOCK:tool_call weather?' }],
        });
        let args = '';
        let id = null;
        let name = null;
        let finish = null;
        for await (const c of ts) {
            const tc = c.choices[0]?.delta?.tool_calls?.[0];
            if (tc?.id) id = tc.id;
            if (tc?.function?.name) name = tc.function.name;
            args += tc?.function?.arguments ?? '';
            finish = c.choices[0]?.finish_reason ?? finish;
        }
        assert.equal(mock.requests[2].body.tool_choice, 'REQUIRED');
        assert.deepEqual(mock.requests[2].body.tools, OTOOLS);
        assert.equal(name, 'get_weather');
        assert.equal(id, 'get_weather_mock1');
        assert.equal(finish, 'tool_calls');
        assert.deepEqual(JSON.parse(args), mock.TOOL.arguments);
        const back = await client.chat.completions.create({
            model: 'cohere-model', tools: OTOOLS,
            messages: [{ role: 'user', content: 'weather?' },
                { role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name, arguments: args } }] },
                { role: 'tool', tool_call_id: id, content: '21C' }],
        });
        assert.match(back.choices[0].message.content, /21C/);
        assert.deepEqual(mock.requests[3].body.messages[2], { role: 'tool', tool_call_id: id, content: '21C' });
    });

    test('cohere: Anthropic SDK through the pivot, streamed text and a tool call; Cohere\'s errors in each client\'s shape', CASE, async () => {
        const client = an('cohere');
        const msg = await client.messages.stream({
            model: 'cohere-model', max_tokens: 256, system: 'be brief', messages: [{ role: 'user', content: 'Hello' }],
        }).finalMessage();
        assert.equal(msg.content[0].text, mock.TEXT);
        assert.equal(msg.usage.input_tokens, 21);
        assert.equal(mock.requests[0].path, '/v2/chat');
        assert.equal(mock.requests[0].body.messages[0].role, 'system');
        const rec = await lastLog();
        assert.equal(rec.ai.proxy.meta.provider_name, 'cohere');
        assert.equal(rec.ai.proxy.meta.request_mode, 'stream');
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 21);
        assert.equal(rec.ai.proxy.usage.completion_tokens, msg.usage.output_tokens);
        const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
        const t = await client.messages.create({
            model: 'cohere-model', max_tokens: 256, tools, tool_choice: { type: 'any' },
            messages: [{ role: 'user', content: 'MOCK:tool_call weather?' }],
        });
        assert.equal(t.stop_reason, 'tool_use');
        const tu = t.content.find((b) => b.type === 'tool_use');
        assert.deepEqual(tu.input, mock.TOOL.arguments);
        await client.messages.create({
            model: 'cohere-model', max_tokens: 256, tools,
            messages: [{ role: 'user', content: 'weather?' }, { role: 'assistant', content: t.content },
                { role: 'user', content: [{ type: 'tool_result', tool_use_id: tu.id, content: '21C' }] }],
        });
        assert.ok(mock.requests[2].body.messages.some((m) => m.role === 'tool' && m.tool_call_id === tu.id));
        await assert.rejects(oa('cohere').chat.completions.create({
            model: 'cohere-model', messages: [{ role: 'user', content: 'MOCK:error429' }],
        }), (e) => e instanceof OpenAI.RateLimitError && /Trial key/.test(e.message));
        await assert.rejects(client.messages.create({
            model: 'cohere-model', max_tokens: 10, messages: [{ role: 'user', content: 'MOCK:error429' }],
        }), (e) => e instanceof Anthropic.RateLimitError && /Trial key/.test(e.message));
        const bad = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/bad/cohere`, maxRetries: 0, fetch: gwFetch });
        await assert.rejects(bad.chat.completions.create({
            model: 'cohere-model', messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e instanceof OpenAI.AuthenticationError && /invalid api token/.test(e.message));
    });

    test('the Claude Code CLI against anthropic (native: its requests pass with the gateway\'s key, model and anthropic-version)', { timeout: slow(120000), skip: claudeSkip() }, async () => {
        const r = await runClaude({ baseUrl: `${gw.base}/an/anthropic`, model: 'claude-sonnet-4-5', prompt: 'Say hello.', timeoutMs: 90000 });
        assert.equal(r.code, 0, show(r));
        assert.equal(r.json?.is_error, false, show(r));
        assert.equal(r.json?.result, mock.TEXT, show(r));
        const ups = mock.requests.filter((q) => q.path === '/v1/messages');
        assert.ok(ups.length >= 1, show(mock.requests.map((q) => q.path)));
        const turn = ups.find((q) => Array.isArray(q.body?.tools) && q.body.tools.length > 0);
        assert.ok(turn, 'the CLI\'s turn with its tools reached the provider');
        assert.equal(turn.body.stream, true);
        assert.equal(turn.body.model, 'claude-sonnet-4-5');
        assert.ok(turn.body.max_tokens <= 1024, 'the configured max_tokens caps the CLI\'s');
        for (const up of mock.requests) {
            assert.equal(up.provider, 'anthropic');
            assert.equal(up.headers['x-api-key'], KEYS.anthropic);
            assert.equal(up.headers['anthropic-version'], '2023-06-01');
            noClientKey(up);
        }
        await waitRecord(logPath, (x) => x.route?.name === 'an-anthropic' && x.ai?.proxy, 10000);
        const recs = readLog(logPath).filter((x) => x.route?.name === 'an-anthropic' && x.ai?.proxy);
        assert.ok(recs.length >= 1);
        assert.equal(recs.at(-1).ai.proxy.meta.provider_name, 'anthropic');
        assert.equal(recs.at(-1).ai.proxy.usage.prompt_tokens, 21);
    });

    test('a wrong provider key: the provider\'s 401 becomes the client\'s error shape', CASE, async () => {
        await assert.rejects(an('openai', '/bad').messages.create({
            model: 'openai-model', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e.status === 401 && e.error?.type === 'error' && e.error.error.type === 'authentication_error' &&
            /Incorrect API key/.test(e.error.error.message));
        // Azure's own error body reaches an OpenAI client as Azure sent it (Kong)
        const r = await gwFetch(`${gw.base}/bad/azure/chat/completions`, {
            method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
            body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
        });
        assert.equal(r.status, 401);
        assert.match((await r.json()).error.message, /Access denied/);
        assert.equal(mock.requests.at(-1).headers['api-key'], 'nope');
        assert.equal(mock.requests.at(-1).headers.authorization, undefined);
    });

    test('anthropic native: auth, model and version rewritten, the stream untouched', CASE, async () => {
        const client = an('anthropic');
        const s = client.messages.stream({
            model: 'claude-team', max_tokens: 99999, messages: [{ role: 'user', content: 'Hello' }],
            system: [{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }],
        }, { headers: { 'anthropic-version': '2020-01-01', 'anthropic-beta': 'interleaved-thinking-2025-05-14' } });
        const msg = await s.finalMessage();
        assert.equal(msg.content[0].text, mock.TEXT);
        const up = mock.requests[0];
        assert.equal(up.path, '/v1/messages');
        assert.equal(up.headers['x-api-key'], KEYS.anthropic);
        assert.equal(up.headers['anthropic-version'], '2023-06-01');
        assert.equal(up.headers['anthropic-beta'], 'interleaved-thinking-2025-05-14');
        assert.equal(up.body.model, 'claude-sonnet-4-5');
        assert.equal(up.body.max_tokens, 1024);
        assert.deepEqual(up.body.system, [{ type: 'text', text: 'be brief', cache_control: { type: 'ephemeral' } }]);
        noClientKey(up);
        const rec = await lastLog();
        assert.equal(rec.ai.proxy.meta.provider_name, 'anthropic');
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 21, 'message_start input kept after message_delta');
        assert.equal(rec.ai.proxy.usage.completion_tokens, mock.requests[0].usage.output);
        assert.equal(rec.response.headers['x-kong-llm-model'], 'anthropic/claude-sonnet-4-5');

        const t = await client.messages.create({
            model: 'claude-sonnet-4-5', max_tokens: 100, messages: [{ role: 'user', content: 'MOCK:tool_call' }],
            tools: [{ name: 'get_weather', input_schema: { type: 'object' } }],
        });
        assert.equal(t.stop_reason, 'tool_use');
        assert.deepEqual(t.content[1].input, mock.TOOL.arguments);
    });

    test('anthropic native: a tool round trip, streamed tool_use then the tool_result turn, passed as sent', CASE, async () => {
        const client = an('anthropic');
        const tools = [{ name: 'get_weather', description: 'Weather', input_schema: { type: 'object', properties: { city: { type: 'string' } } } }];
        const first = [{ role: 'user', content: 'MOCK:tool_call weather in Paris?' }];
        const msg = await client.messages.stream({ model: 'claude-team', max_tokens: 100, tools, tool_choice: { type: 'any' }, messages: first }).finalMessage();
        assert.equal(msg.stop_reason, 'tool_use');
        const use = msg.content.find((b) => b.type === 'tool_use');
        assert.equal(use.id, 'toolu_mock1');
        assert.equal(use.name, 'get_weather');
        assert.deepEqual(use.input, mock.TOOL.arguments, 'the streamed input_json_delta pieces, untouched');
        assert.deepEqual(mock.requests[0].body.tools, tools, 'tools as sent');
        assert.deepEqual(mock.requests[0].body.tool_choice, { type: 'any' });

        const second = [...first, { role: 'assistant', content: msg.content },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: '21C' }] }];
        const back = await client.messages.create({ model: 'claude-team', max_tokens: 100, tools, messages: second });
        assert.equal(back.stop_reason, 'end_turn');
        assert.equal(back.content[0].text, 'The weather: 21C', "the provider read the tool's result");
        const up = mock.requests[1];
        assert.deepEqual(up.body.messages, second, 'the tool_use and tool_result turns as sent');
        assert.equal(up.body.model, 'claude-sonnet-4-5');
        assert.equal(up.headers['x-api-key'], KEYS.anthropic);
        noClientKey(up);
        const rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 21);
        /* a result whose tool_use is not in the turn before: Anthropic's 400, as sent */
        await assert.rejects(client.messages.create({ model: 'claude-team', max_tokens: 100, tools, messages: [first[0], second[2]] }),
            (e) => e.status === 400 && e.error.error.type === 'invalid_request_error' && /tool_use_id/.test(e.error.error.message));
    });

    test('anthropic native: count_tokens forwarded with the provider key, errors as Anthropic sent them', CASE, async () => {
        const client = an('anthropic');
        const n = await client.messages.countTokens({ model: 'claude-team', messages: [{ role: 'user', content: 'count me' }] });
        assert.equal(typeof n.input_tokens, 'number');
        const up = mock.requests[0];
        assert.equal(up.path, '/v1/messages/count_tokens');
        assert.equal(up.headers['x-api-key'], KEYS.anthropic);
        assert.equal(up.body.model, 'claude-sonnet-4-5');
        assert.equal(up.body.max_tokens, undefined, 'no sampling options on count_tokens');
        mock.next({ type: 'error429' });
        await assert.rejects(client.messages.create({
            model: 'claude-sonnet-4-5', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e.status === 429 && e.error.error.type === 'rate_limit_error');
    });

    test('preserve: the client\'s path and body pass untouched with the gateway key', CASE, async () => {
        const body = JSON.stringify({ model: 'whatever-model', messages: [{ role: 'user', content: 'hi' }], extra_field: 1 });
        const r = await gwFetch(`${gw.base}/pres/v1/chat/completions?x=1`, {
            method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` }, body,
        });
        assert.equal(r.status, 200);
        const up = mock.requests[0];
        assert.equal(up.path, '/pres/v1/chat/completions', "Kong's preserve: the client's path");
        assert.equal(up.raw, body);
        assert.equal(up.headers.authorization, `Bearer ${KEYS.openai}`);
        const rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 21);
        assert.equal(rec.ai.proxy.meta.request_model, 'whatever-model');
    });

    test('preserve: every other provider gets the client\'s path and body untouched with the gateway\'s credential, usage read from the answer', CASE, async () => {
        const chat = { model: 'client-model', messages: [{ role: 'user', content: 'hi' }], extra_field: 1 };
        const cases = [
            ...PRESERVE_FAMILY.map((p) => [p, `/pres-${p}/v1/chat/completions`, chat]),
            ['azure', '/openai/deployments/gpt4o-dep/chat/completions?api-version=2024-10-21', chat],
            ['anthropic', '/v1/messages', { model: 'claude-client', max_tokens: 50, messages: [{ role: 'user', content: 'hi' }] }],
            ['cohere', '/v2/chat', { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'hi' }] }],
        ];
        for (const [p, url, obj] of cases) {
            mock.reset();
            const body = JSON.stringify(obj);
            const r = await gwFetch(`${gw.base}${url}`, {
                method: 'POST', body,
                headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}`, 'x-api-key': CLIENT_KEY, 'api-key': CLIENT_KEY, 'anthropic-version': '2023-06-01' },
            });
            const text = await r.text();
            assert.equal(r.status, 200, `${p}: ${text}`);
            const up = mock.requests[0];
            assert.equal(up.provider, p, `${p}: the provider's credential`);
            assert.equal(up.path, url.split('?')[0], `${p}: the client's path`);
            assert.equal(up.raw, body, `${p}: the body untouched`);
            noClientKey(up);
            const rec = await lastLog();
            assert.equal(rec.ai.proxy.meta.provider_name, p);
            assert.equal(rec.ai.proxy.meta.request_model, obj.model, `${p}: the client's model`);
            /* Cohere: usage.billed_units (21), not usage.tokens (230) */
            assert.equal(rec.ai.proxy.usage?.prompt_tokens, 21, `${p}: usage from the answer`);
        }
    });

    test('preserve: cohere\'s billed units read from a streamed chat (message-end) and from embed (meta)', CASE, async () => {
        const stream = { model: 'command-a-03-2025', messages: [{ role: 'user', content: 'hi' }], stream: true };
        const r = await gwFetch(`${gw.base}/v2/chat`, { method: 'POST', body: JSON.stringify(stream), headers: { 'content-type': 'application/json' } });
        const text = await r.text();
        assert.equal(r.status, 200, text);
        assert.match(text, /event: message-end/, 'the stream passes untouched');
        let rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 21, 'billed_units.input_tokens, not tokens (230)');
        assert.equal(rec.ai.proxy.usage.completion_tokens, mock.TEXT.split(' ').length);
        assert.equal(rec.ai.proxy.meta.request_mode, 'stream');
        const emb = { model: 'embed-v4.0', texts: ['hello', 'world!'], input_type: 'search_query' };
        const e = await gwFetch(`${gw.base}/v2/embed`, { method: 'POST', body: JSON.stringify(emb), headers: { 'content-type': 'application/json' } });
        const ej = await e.json();
        assert.equal(e.status, 200, JSON.stringify(ej));
        assert.equal(ej.meta.billed_units.input_tokens, 4, 'the answer untouched');
        assert.equal(mock.requests.at(-1).headers.authorization, `Bearer ${KEYS.cohere}`);
        rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 4, 'meta.billed_units.input_tokens');
    });

    test('embeddings: OpenAI and Azure', CASE, async () => {
        const client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/emb/openai/v1`, maxRetries: 0, fetch: gwFetch });
        const e = await client.embeddings.create({ model: 'text-embedding-3-small', input: ['a', 'b'] });
        assert.equal(e.data.length, 2);
        assert.equal(mock.requests[0].path, '/v1/embeddings');
        assert.equal(mock.requests[0].body.model, 'text-embedding-3-small');
        const az = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/emb/azure`, maxRetries: 0, fetch: gwFetch });
        await az.embeddings.create({ model: 'text-embedding-3-small', input: 'a' });
        assert.equal(mock.requests[1].path, '/openai/deployments/emb-dep/embeddings');
        assert.match(mock.requests[1].query, /api-version=2023-05-15/);
        const rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 4);
    });

    test('embeddings: OpenAI SDK to mistral, dashscope, databricks, ollama (each one\'s path and key; embeddings_dimensions)', CASE, async () => {
        const paths = { mistral: '/v1/embeddings', dashscope: '/compatible-mode/v1/embeddings', databricks: '/serving-endpoints/embeddings', ollama: '/v1/embeddings' };
        for (const [p, want] of Object.entries(paths)) {
            mock.reset();
            const client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/emb/${p}`, maxRetries: 0, fetch: gwFetch });
            const e = await client.embeddings.create({ model: `${p}-embed`, input: ['a', 'b'], encoding_format: 'float', dimensions: 64 });
            assert.equal(e.data.length, 2, p);
            const up = mock.requests[0];
            assert.equal(up.path, want, p);
            assert.equal(up.provider, p);
            assert.equal(up.headers.authorization, `Bearer ${KEYS[p]}`);
            noClientKey(up);
            assert.equal(up.body.model, `${p}-embed`);
            assert.equal(up.body.dimensions, p === 'mistral' ? 256 : 64, 'options.embeddings_dimensions replaces the client\'s');
            const rec = await lastLog();
            assert.equal(rec.ai.proxy.meta.provider_name, p);
            assert.equal(rec.ai.proxy.usage.prompt_tokens, 8);
        }
    });

    test('embeddings: OpenAI SDK to cohere\'s v2 Embed (input type and dimensions from the config, billed units, errors)', CASE, async () => {
        const mark = logMark(logPath);
        const client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/emb/cohere`, maxRetries: 0, fetch: gwFetch });
        const e = await client.embeddings.create({ model: 'embed-v4.0', input: ['hello', 'world!'], encoding_format: 'float' });
        const up = mock.requests[0];
        assert.equal(up.path, '/v2/embed');
        assert.equal(up.headers.authorization, `Bearer ${KEYS.cohere}`);
        assert.deepEqual(up.body, { model: 'embed-v4.0', texts: ['hello', 'world!'], input_type: 'search_query', embedding_types: ['float'], output_dimension: 3 });
        assert.deepEqual(e.data.map((d) => d.embedding), [[0.1, 0.2, 0.3], [0.3, 0.4, -0.4]]);
        assert.equal(e.usage.prompt_tokens, 4, 'billed_units.input_tokens');
        /* the OpenAI SDK's default: base64 float32s */
        const b = await client.embeddings.create({ model: 'embed-v4.0', input: 'hello' });
        assert.deepEqual(Array.from(b.data[0].embedding), [0.1, 0.2, 0.3].map(Math.fround));
        await assert.rejects(client.embeddings.create({ model: 'embed-v4.0', input: 'MOCK:error429' }), (err) => err instanceof OpenAI.RateLimitError && /Trial key/.test(err.message));
        const bad = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/emb/cohere-bad`, maxRetries: 0, fetch: gwFetch });
        await assert.rejects(bad.embeddings.create({ model: 'embed-v4.0', input: 'hi' }), (err) => err instanceof OpenAI.AuthenticationError && /invalid api token/.test(err.message));
        const recs = await waitLog(logPath, mark + 4, 10000);
        assert.equal(recs[mark].ai.proxy.usage.prompt_tokens, 4);
        assert.equal(recs[mark].ai.proxy.usage.completion_tokens, 0);
        assert.equal(recs[mark].ai.proxy.meta.provider_name, 'cohere');
        assert.equal(recs[mark].ai.proxy.meta.response_model, 'embed-v4.0');
    });

    test('completions: OpenAI SDK to OpenAI and Azure, streamed and not, usage in the log', CASE, async () => {
        const mark = logMark(logPath);
        const client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/cmp/openai/v1`, maxRetries: 0, fetch: gwFetch });
        const one = await client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'Say hello', max_tokens: 5, temperature: 0.2 });
        assert.equal(one.object, 'text_completion');
        assert.equal(one.choices[0].text, mock.TEXT);
        let up = mock.requests[0];
        assert.equal(up.path, '/v1/completions');
        assert.equal(up.headers.authorization, `Bearer ${KEYS.openai}`);
        noClientKey(up);
        assert.equal(up.body.prompt, 'Say hello');
        assert.equal(up.body.max_tokens, 64, "the gateway's max_tokens wins, as Kong");
        assert.equal(up.body.temperature, 0.2);

        const chunks = [];
        for await (const c of await client.completions.create({
            model: 'gpt-3.5-turbo-instruct', prompt: ['Say', 'hello'], stream: true, stream_options: { include_usage: true },
        })) chunks.push(c);
        assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), mock.TEXT);
        assert.deepEqual(chunks.at(-1).choices, []);
        assert.equal(chunks.at(-1).usage.completion_tokens, mock.TEXT.split(' ').length);
        assert.deepEqual(mock.requests[1].body.prompt, ['Say', 'hello']);

        const az = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/cmp/azure`, maxRetries: 0, fetch: gwFetch });
        const a = await az.completions.create({ model: 'gpt-35-instruct', prompt: 'Say hello' });
        assert.equal(a.choices[0].text, mock.TEXT);
        up = mock.requests[2];
        assert.equal(up.path, '/openai/deployments/instruct-dep/completions');
        assert.match(up.query, /api-version=2023-05-15/);
        assert.equal(up.headers['api-key'], KEYS.azure);

        const recs = (await waitLog(logPath, mark + 3)).slice(mark);
        assert.equal(recs.length, 3);
        for (const [i, rec] of recs.entries()) {
            assert.equal(rec.ai.proxy.usage.prompt_tokens, 5, `record ${i}`);
            assert.equal(rec.ai.proxy.usage.completion_tokens, mock.TEXT.split(' ').length, `record ${i}`);
            assert.equal(rec.ai.proxy.usage.total_tokens, 5 + mock.TEXT.split(' ').length, `record ${i}`);
        }
        assert.equal(recs[0].ai.proxy.meta.request_model, 'gpt-3.5-turbo-instruct');
        assert.equal(recs[0].ai.proxy.meta.response_model, 'gpt-3.5-turbo-instruct');
        assert.equal(recs[1].ai.proxy.meta.request_mode, 'stream');
        assert.equal(recs[2].ai.proxy.meta.provider_name, 'azure');
    });

    test('completions: OpenAI SDK to llama2 (llama2_format openai), streamed and not, upstream_url\'s path, usage in the log', CASE, async () => {
        const mark = logMark(logPath);
        const client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/cmp/llama2/v1`, maxRetries: 0, fetch: gwFetch });
        const one = await client.completions.create({ model: 'llama-2-7b', prompt: 'Say hello', max_tokens: 5 });
        assert.equal(one.object, 'text_completion');
        assert.equal(one.choices[0].text, mock.TEXT);
        let up = mock.requests[0];
        assert.equal(up.path, '/v1/completions');
        assert.equal(up.provider, 'llama2');
        assert.equal(up.headers.authorization, `Bearer ${KEYS.llama2}`);
        noClientKey(up);
        assert.equal(up.body.model, 'llama-2-7b');
        assert.equal(up.body.prompt, 'Say hello');
        assert.equal(up.body.max_tokens, 32, "the gateway's max_tokens wins, as Kong");

        const chunks = [];
        for await (const c of await client.completions.create({
            model: 'llama-2-7b', prompt: 'Say hello', stream: true, stream_options: { include_usage: true },
        })) chunks.push(c);
        assert.equal(chunks.map((c) => c.choices[0]?.text ?? '').join(''), mock.TEXT);
        assert.equal(chunks.at(-1).usage.prompt_tokens, 5);
        assert.equal(mock.requests[1].body.stream, true);

        const url = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/cmp/llama2-url/v1`, maxRetries: 0, fetch: gwFetch });
        const u = await url.completions.create({ model: 'llama-2-7b', prompt: 'Say hello' });
        assert.equal(u.choices[0].text, mock.TEXT);
        up = mock.requests[2];
        assert.equal(up.path, '/llama/v1/completions', "upstream_url's path");
        assert.equal(up.headers.authorization, `Bearer ${KEYS.llama2}`);

        const recs = (await waitLog(logPath, mark + 3)).slice(mark);
        assert.equal(recs.length, 3);
        for (const [i, rec] of recs.entries()) {
            assert.equal(rec.ai.proxy.meta.provider_name, 'llama2', `record ${i}`);
            assert.equal(rec.ai.proxy.usage.prompt_tokens, 5, `record ${i}`);
            assert.equal(rec.ai.proxy.usage.completion_tokens, mock.TEXT.split(' ').length, `record ${i}`);
        }
        assert.equal(recs[1].ai.proxy.meta.request_mode, 'stream');
        assert.equal(recs[2].upstream_uri, '/llama/v1/completions');
    });

    test('completions: no prompt is refused by the gateway; the provider\'s 429 reaches the client as sent', CASE, async () => {
        const r = await gwFetch(`${gw.base}/cmp/openai/v1/completions`, {
            method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
            body: JSON.stringify({ model: 'gpt-3.5-turbo-instruct', messages: [{ role: 'user', content: 'hi' }] }),
        });
        assert.equal(r.status, 400);
        assert.match((await r.json()).error.message, /request body doesn't contain valid prompts/);
        assert.equal(mock.requests.length, 0);
        const client = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/cmp/openai/v1`, maxRetries: 0, fetch: gwFetch });
        await assert.rejects(client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt: 'MOCK:error429' }),
            (e) => e.status === 429 && e.code === 'rate_limit_exceeded');
    });

    test('OpenAI SDK -> anthropic: the request as Anthropic Messages, the answer as a chat completion', CASE, async () => {
        const client = oa('anthropic');
        const { data, response } = await client.chat.completions.create({
            model: 'claude-sonnet-4-5', temperature: 0.5, stop: 'END', user: 'u-1',
            messages: [{ role: 'system', content: 'be brief' }, { role: 'developer', content: 'no lists' },
                { role: 'user', content: 'Hello' }],
        }).withResponse();
        assert.equal(data.object, 'chat.completion');
        assert.equal(data.choices[0].message.content, mock.TEXT);
        assert.equal(data.choices[0].finish_reason, 'stop');
        assert.deepEqual(data.usage, { prompt_tokens: 21, completion_tokens: 5, total_tokens: 26, prompt_tokens_details: { cached_tokens: 0 } });
        assert.equal(response.headers.get('x-kong-llm-model'), 'anthropic/claude-sonnet-4-5');
        const up = mock.requests[0];
        assert.equal(up.path, '/v1/messages');
        assert.equal(up.headers['x-api-key'], KEYS.anthropic);
        assert.equal(up.headers['anthropic-version'], '2023-06-01');
        noClientKey(up);
        assert.deepEqual(up.body, {
            model: 'claude-sonnet-4-5', system: [{ type: 'text', text: 'be brief' }, { type: 'text', text: 'no lists' }],
            messages: [{ role: 'user', content: 'Hello' }], max_tokens: 4096, temperature: 0.5,
            stop_sequences: ['END'], metadata: { user_id: 'u-1' },
        });
        const rec = await lastLog();
        assert.equal(rec.ai.proxy.meta.provider_name, 'anthropic');
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 21);
        assert.equal(rec.ai.proxy.usage.completion_tokens, 5);
    });

    test('OpenAI SDK -> anthropic: streamed, OpenAI chunk grammar, usage chunk only with include_usage', CASE, async () => {
        const client = oa('anthropic');
        for (const include of [true, false]) {
            mock.reset();
            const stream = await client.chat.completions.create({
                model: 'claude-sonnet-4-5', stream: true, max_tokens: 300,
                ...(include ? { stream_options: { include_usage: true } } : {}),
                messages: [{ role: 'user', content: 'Hello' }],
            });
            const chunks = [];
            for await (const c of stream) chunks.push(c);
            assert.equal(chunks[0].choices[0].delta.role, 'assistant');
            assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), mock.TEXT);
            const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
            assert.equal(fin.length, 1);
            assert.equal(fin[0].choices[0].finish_reason, 'stop');
            const withUsage = chunks.filter((c) => c.usage);
            if (include) {
                assert.equal(withUsage.length, 1);
                assert.deepEqual(withUsage[0].choices, []);
                assert.equal(withUsage[0].usage.prompt_tokens, 21);
                assert.equal(withUsage[0].usage.completion_tokens, 5);
                assert.equal(chunks.at(-1), withUsage[0]);
            } else {
                assert.equal(withUsage.length, 0);
            }
            assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
            assert.equal(mock.requests[0].body.max_tokens, 300);
            assert.equal(mock.requests[0].body.stream, true);
            const rec = await lastLog();
            assert.equal(rec.ai.proxy.meta.request_mode, 'stream');
            assert.equal(rec.ai.proxy.usage.prompt_tokens, 21, 'usage logged with or without include_usage');
            assert.equal(rec.ai.proxy.usage.completion_tokens, 5);
        }
    });

    test('OpenAI SDK -> anthropic: tool calls streamed and not, and the round trip', CASE, async () => {
        const client = oa('anthropic');
        const tools = [{ type: 'function', function: { name: 'get_weather', description: 'Weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } }];
        const r = await client.chat.completions.create({
            model: 'claude-sonnet-4-5', tools, tool_choice: 'required', parallel_tool_calls: false,
            messages: [{ role: 'user', content: 'MOCK:tool_call weather?' }],
        });
        const call = r.choices[0].message.tool_calls[0];
        assert.equal(r.choices[0].finish_reason, 'tool_calls');
        assert.equal(r.choices[0].message.content, 'Checking.');
        assert.equal(call.function.name, 'get_weather');
        assert.deepEqual(JSON.parse(call.function.arguments), mock.TOOL.arguments);
        assert.deepEqual(mock.requests[0].body.tools, [{ name: 'get_weather', description: 'Weather', input_schema: tools[0].function.parameters }]);
        assert.deepEqual(mock.requests[0].body.tool_choice, { type: 'any', disable_parallel_tool_use: true });

        const stream = await client.chat.completions.create({
            model: 'claude-sonnet-4-5', tools, stream: true, messages: [{ role: 'user', content: 'MOCK:tool_call' }],
        });
        let args = '';
        let name = null;
        let id = null;
        let finish = null;
        for await (const c of stream) {
            const tc = c.choices[0]?.delta?.tool_calls?.[0];
            if (tc?.id) id = tc.id;
            if (tc?.function?.name) name = tc.function.name;
            args += tc?.function?.arguments ?? '';
            finish = c.choices[0]?.finish_reason ?? finish;
        }
        assert.equal(name, 'get_weather');
        assert.equal(id, 'toolu_mock1');
        assert.equal(finish, 'tool_calls');
        assert.deepEqual(JSON.parse(args), mock.TOOL.arguments);

        await client.chat.completions.create({
            model: 'claude-sonnet-4-5', tools,
            messages: [{ role: 'user', content: 'weather?' }, r.choices[0].message,
                { role: 'tool', tool_call_id: call.id, content: '21C' }, { role: 'user', content: 'thanks' }],
        });
        const sent = mock.requests[2].body.messages;
        assert.deepEqual(sent[1], { role: 'assistant', content: [{ type: 'text', text: 'Checking.' },
            { type: 'tool_use', id: call.id, name: 'get_weather', input: mock.TOOL.arguments }] });
        assert.deepEqual(sent[2], { role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: [{ type: 'text', text: '21C' }] }] });
        assert.deepEqual(sent[3], { role: 'user', content: 'thanks' });
    });

    test('thinking: an Anthropic client\'s thinking passes to anthropic and back with its signature; an OpenAI client gets it as reasoning_content, streamed and not', CASE, async () => {
        const thinking = { type: 'enabled', budget_tokens: 1024 };
        const one = await an('anthropic').messages.create({
            model: 'claude-sonnet-4-5', max_tokens: 2048, thinking, messages: [{ role: 'user', content: 'Hello' }],
        });
        assert.deepEqual(one.content[0], { type: 'thinking', thinking: 'Thinking it over.', signature: 'ErUBCkYIBxgCIkB-mock-signature' });
        assert.deepEqual(mock.requests[0].body.thinking, thinking);
        const st = await an('anthropic').messages.stream({
            model: 'claude-sonnet-4-5', max_tokens: 2048, thinking, messages: [{ role: 'user', content: 'Hello' }],
        }).finalMessage();
        assert.equal(st.content[0].type, 'thinking');
        assert.equal(st.content[0].thinking, 'Thinking it over.');
        assert.equal(st.content[0].signature, 'ErUBCkYIBxgCIkB-mock-signature');
        assert.equal(st.content[1].text, mock.TEXT);

        const client = oa('anthropic');
        mock.next({ thinking: 'Let me think this through.' });
        const r = await client.chat.completions.create({ model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'Hello' }] });
        assert.equal(r.choices[0].message.reasoning_content, 'Let me think this through.');
        assert.equal(r.choices[0].message.content, mock.TEXT);
        mock.next({ thinking: 'Let me think this through.' });
        const stream = await client.chat.completions.create({ model: 'claude-sonnet-4-5', stream: true, messages: [{ role: 'user', content: 'Hello' }] });
        let reasoning = '';
        let text = '';
        for await (const c of stream) {
            reasoning += c.choices[0]?.delta?.reasoning_content ?? '';
            text += c.choices[0]?.delta?.content ?? '';
        }
        assert.equal(reasoning, 'Let me think this through.');
        assert.equal(text, mock.TEXT);
        /* reasoning_effort asks Anthropic for thinking: a budget, max_tokens with room for it */
        const re = await client.chat.completions.create({ model: 'claude-sonnet-4-5', reasoning_effort: 'low', messages: [{ role: 'user', content: 'Hello' }] });
        assert.deepEqual(mock.requests.at(-1).body.thinking, { type: 'enabled', budget_tokens: 1024 });
        assert.equal(mock.requests.at(-1).body.max_tokens, 4096 + 1024);
        assert.equal(re.choices[0].message.reasoning_content, 'Thinking it over.');
    });

    test('OpenAI SDK -> anthropic: Anthropic errors in OpenAI\'s shape and status', CASE, async () => {
        mock.next({ type: 'error429' });
        await assert.rejects(oa('anthropic').chat.completions.create({
            model: 'claude-sonnet-4-5', messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e instanceof OpenAI.RateLimitError && e.error?.type === 'rate_limit_error' &&
            /per-minute rate limit/.test(e.message));
        const bad = new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/bad/anthropic`, maxRetries: 0, fetch: gwFetch });
        await assert.rejects(bad.chat.completions.create({
            model: 'claude-sonnet-4-5', stream: true, messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e instanceof OpenAI.AuthenticationError && /invalid x-api-key/.test(e.message));
        const r = await gwFetch(`${gw.base}/oa/anthropic/chat/completions`, {
            method: 'POST', headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'claude-sonnet-4-5', n: 2, messages: [{ role: 'user', content: 'hi' }] }),
        });
        assert.equal(r.status, 400);
        assert.match((await r.json()).error.message, /n: only one choice/);
    });
});
