/* native-providers.test.mjs - the gemini and bedrock providers through the
 * real binary, with the Anthropic SDK, against mocks speaking each one's
 * wire format (tests/mock/native.mjs): Gemini's generateContent and
 * streamGenerateContent?alt=sse with its key in a header or the query (a
 * wrong key gets Google's 400), Bedrock's Converse and ConverseStream
 * (event-stream frames with real CRCs) signed with SigV4 that the mock
 * recomputes (a wrong secret gets AWS's 403); text, streamed text, a
 * streamed tool round trip (Gemini's thought signature carried back),
 * errors, usage in the log, the client's key never upstream. */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startGateway, tmpDir, waitLog, CLIENT_KEY, runClaude, claudeSkip, show, slow } from './harness.mjs';
import { startNativeMock, GEMINI_KEY, AWS, TEXT, embedVector } from '../mock/native.mjs';

const CASE = { timeout: slow(30000) };
const BEDROCK_MODEL = 'anthropic.claude-3-5-sonnet-20240620-v1:0';

function route(name, p, provider, model, { auth = {}, options = {}, format = 'anthropic', routeType = 'llm/v1/chat' } = {}) {
    return {
        name, paths: [p],
        plugins: [{
            name: 'ai-proxy',
            config: {
                route_type: routeType, llm_format: format,
                logging: { log_statistics: true }, auth,
                model: { provider, name: model, options: { upstream_url: 'MOCK', ...options } },
            },
        }],
    };
}

const TOOLS = [{
    name: 'get_weather', description: 'Weather of a city',
    input_schema: { type: 'object', properties: { city: { type: 'string' }, unit: { type: 'string' } }, required: ['city'], additionalProperties: false, $schema: 'http://json-schema.org/draft-07/schema#' },
}];

describe('gemini and bedrock through sluice', { timeout: slow(120000) }, () => {
    let mock;
    let gw;
    let logPath;
    before(async () => {
        mock = await startNativeMock();
        logPath = path.join(tmpDir(), 'log.json');
        const awsAuth = { aws_access_key_id: AWS.accessKeyId, aws_secret_access_key: AWS.secretAccessKey };
        const routes = [
            route('gem', '/gem', 'gemini', 'gemini-2.5-flash', { auth: { header_name: 'x-goog-api-key', header_value: GEMINI_KEY } }),
            route('gemq', '/gemq', 'gemini', 'gemini-2.5-flash', { auth: { param_name: 'key', param_value: GEMINI_KEY, param_location: 'query' } }),
            route('gembad', '/gembad', 'gemini', 'gemini-2.5-flash', { auth: { header_name: 'x-goog-api-key', header_value: 'AIza-wrong' } }),
            route('br', '/br', 'bedrock', BEDROCK_MODEL, { auth: awsAuth, options: { bedrock: { aws_region: AWS.region } } }),
            route('brbad', '/brbad', 'bedrock', BEDROCK_MODEL, { auth: { ...awsAuth, aws_secret_access_key: 'not-the-secret' }, options: { bedrock: { aws_region: AWS.region } } }),
            /* OpenAI clients of the same providers */
            route('ogem', '/ogem', 'gemini', 'gemini-2.5-flash', { format: 'openai', auth: { header_name: 'x-goog-api-key', header_value: GEMINI_KEY } }),
            route('ogembad', '/ogembad', 'gemini', 'gemini-2.5-flash', { format: 'openai', auth: { header_name: 'x-goog-api-key', header_value: 'AIza-wrong' } }),
            route('obr', '/obr', 'bedrock', BEDROCK_MODEL, { format: 'openai', auth: awsAuth, options: { bedrock: { aws_region: AWS.region } } }),
            /* preserve: the client's own path and body, the gateway's credential */
            { ...route('pgem', '/v1beta', 'gemini', 'gemini-2.5-flash', { routeType: 'preserve', auth: { header_name: 'x-goog-api-key', header_value: GEMINI_KEY } }), paths: ['/v1beta'] },
            { ...route('pbr', '/model', 'bedrock', BEDROCK_MODEL, { routeType: 'preserve', auth: awsAuth, options: { bedrock: { aws_region: AWS.region } } }), paths: ['/model'] },
            route('obrbad', '/obrbad', 'bedrock', BEDROCK_MODEL, { format: 'openai', auth: { ...awsAuth, aws_secret_access_key: 'not-the-secret' }, options: { bedrock: { aws_region: AWS.region } } }),
            /* llm/v1/embeddings: Gemini's batchEmbedContents, Bedrock's InvokeModel */
            route('egem', '/egem', 'gemini', 'gemini-embedding-001', { format: 'openai', routeType: 'llm/v1/embeddings', auth: { param_name: 'key', param_value: GEMINI_KEY, param_location: 'query' } }),
            route('egemtask', '/egemtask', 'gemini', 'gemini-embedding-001', { format: 'openai', routeType: 'llm/v1/embeddings', auth: { header_name: 'x-goog-api-key', header_value: GEMINI_KEY }, options: { gemini: { embedding_input_type: 'retrieval_document' } } }),
            route('egembad', '/egembad', 'gemini', 'gemini-embedding-001', { format: 'openai', routeType: 'llm/v1/embeddings', auth: { header_name: 'x-goog-api-key', header_value: 'AIza-wrong' } }),
            route('etitan', '/etitan', 'bedrock', 'amazon.titan-embed-text-v2:0', { format: 'openai', routeType: 'llm/v1/embeddings', auth: awsAuth, options: { bedrock: { aws_region: AWS.region, embeddings_normalize: true } } }),
            route('etitanbad', '/etitanbad', 'bedrock', 'amazon.titan-embed-text-v2:0', { format: 'openai', routeType: 'llm/v1/embeddings', auth: { ...awsAuth, aws_secret_access_key: 'not-the-secret' }, options: { bedrock: { aws_region: AWS.region } } }),
            route('ecohere', '/ecohere', 'bedrock', 'cohere.embed-english-v3', { format: 'openai', routeType: 'llm/v1/embeddings', auth: awsAuth, options: { bedrock: { aws_region: AWS.region }, cohere: { embedding_input_type: 'search_document' } } }),
        ];
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

    /* every request to the gateway before the Claude Code cases goes
     * through gwFetch (one log record each, in order): the record of the
     * latest is the sent-th, waited for rather than slept for */
    let sent = 0;
    const gwFetch = (...a) => { sent++; return fetch(...a); };
    const an = (p) => new Anthropic({ apiKey: CLIENT_KEY, baseURL: `${gw.base}${p}`, maxRetries: 0, fetch: gwFetch });
    const oa = (p) => new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}${p}`, maxRetries: 0, fetch: gwFetch });
    const OTOOLS = [{ type: 'function', function: { name: 'get_weather', description: 'Weather of a city', parameters: TOOLS[0].input_schema } }];
    const lastLog = async () => {
        const recs = await waitLog(logPath, sent, 10000);
        assert.ok(recs.length >= sent, `log records: ${recs.length} of ${sent}`);
        return recs[sent - 1];
    };
    test('preserve: gemini with its key, bedrock signed with SigV4 over the client\'s own path, query and body', CASE, async () => {
        const post = (p, body) => gwFetch(`${gw.base}${p}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}`, 'x-api-key': CLIENT_KEY }, body: JSON.stringify(body) });
        const g = await post('/v1beta/models/gemini-2.5-flash:generateContent', { contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] });
        assert.equal(g.status, 200);
        assert.equal((await g.json()).candidates[0].content.parts.at(-1).text, TEXT);
        assert.equal(mock.requests[0].path, '/v1beta/models/gemini-2.5-flash:generateContent');
        let rec = await lastLog(); /* statistics read from the answer as it passed */
        assert.equal(rec.ai.proxy.usage.completion_tokens, 10);
        assert.equal(rec.ai.proxy.usage.prompt_tokens_details.cached_tokens, 100);
        assert.equal(rec.ai.proxy.meta.response_model, 'gemini-2.5-flash');
        assert.equal(rec.ai.proxy.meta.request_mode, 'oneshot');
        const gs = await post('/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse', { contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] });
        assert.equal(gs.status, 200);
        assert.match(gs.headers.get('content-type'), /text\/event-stream/);
        assert.match(await gs.text(), /usageMetadata/);
        rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.completion_tokens, 10, 'the last usageMetadata of the stream');
        assert.equal(rec.ai.proxy.meta.request_mode, 'stream');
        const b = await post(`/model/${encodeURIComponent(BEDROCK_MODEL)}/converse`, { messages: [{ role: 'user', content: [{ text: 'Hello' }] }] });
        const bj = await b.json();
        assert.equal(b.status, 200, JSON.stringify(bj));
        assert.equal(bj.output.message.content[0].text, TEXT);
        assert.equal(mock.requests[2].provider, 'bedrock');
        rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 120);
        assert.equal(rec.ai.proxy.usage.completion_tokens, 9);
        assert.equal(rec.ai.proxy.usage.prompt_tokens_details.cached_tokens, 100);
        const bs = await post(`/model/${encodeURIComponent(BEDROCK_MODEL)}/converse-stream`, { messages: [{ role: 'user', content: [{ text: 'Hello' }] }] });
        assert.equal(bs.status, 200);
        assert.match(bs.headers.get('content-type'), /application\/vnd\.amazon\.eventstream/);
        assert.ok((await bs.arrayBuffer()).byteLength > 0);
        rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 120, 'the metadata frame of the event-stream');
        assert.equal(rec.ai.proxy.usage.completion_tokens, 9);
        assert.equal(rec.ai.proxy.meta.request_mode, 'stream');
        for (const up of mock.requests) assert.ok(!JSON.stringify(up.headers).includes(CLIENT_KEY), 'the client key reached the provider');
        /* a query the client sends is signed too */
        const bq = await post(`/model/${encodeURIComponent(BEDROCK_MODEL)}/converse?b=2&a=1`, { messages: [{ role: 'user', content: [{ text: 'Hello' }] }] });
        assert.equal(bq.status, 200, await bq.text());
    });

    test('embeddings: gemini\'s taskType from options.gemini.embedding_input_type, on every request of the batch; none without it', CASE, async () => {
        const e = await oa('/egemtask').embeddings.create({ model: 'gemini-embedding-001', input: ['doc one', 'doc two'], encoding_format: 'float' });
        assert.deepEqual(e.data.map((d) => d.embedding), [embedVector('doc one'), embedVector('doc two')]);
        const up = mock.requests[0];
        assert.equal(up.headers['x-goog-api-key'], GEMINI_KEY);
        assert.deepEqual(up.body.requests.map((r) => r.taskType), ['RETRIEVAL_DOCUMENT', 'RETRIEVAL_DOCUMENT']);
        await oa('/egem').embeddings.create({ model: 'gemini-embedding-001', input: 'doc', encoding_format: 'float' });
        assert.equal(mock.requests[1].body.requests[0].taskType, undefined, 'no task type unless configured');
    });

    test('embeddings: the OpenAI SDK to gemini (batchEmbedContents) and bedrock (InvokeModel: Titan, Cohere Embed), base64 and float, usage, errors', CASE, async () => {
        const f32 = (v) => v.map(Math.fround);
        /* gemini: the SDK's default encoding_format base64 (float32s) */
        const g = await oa('/egem').embeddings.create({ model: 'gemini-embedding-001', input: ['hello', 'a longer text'] });
        assert.equal(g.data.length, 2);
        assert.deepEqual(Array.from(g.data[0].embedding), f32(embedVector('hello')));
        assert.deepEqual(Array.from(g.data[1].embedding), f32(embedVector('a longer text')));
        assert.equal(g.model, 'gemini-embedding-001');
        let up = mock.requests[0];
        assert.equal(up.path, '/v1beta/models/gemini-embedding-001:batchEmbedContents');
        assert.match(up.query, /key=/);
        assert.equal(up.headers.authorization, undefined, 'the client key reached the provider');
        assert.equal(up.body.requests[1].content.parts[0].text, 'a longer text');
        assert.ok(g.usage.prompt_tokens > 0, 'Gemini reports no count: the estimate');
        let rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, g.usage.prompt_tokens);
        assert.equal(rec.ai.proxy.usage.completion_tokens, 0);
        assert.equal(rec.ai.proxy.meta.provider_name, 'gemini');
        assert.equal(rec.ai.proxy.meta.request_model, 'gemini-embedding-001');
        const gf = await oa('/egem').embeddings.create({ model: 'gemini-embedding-001', input: 'hello', encoding_format: 'float', dimensions: 4 });
        assert.deepEqual(gf.data[0].embedding, embedVector('hello', 4));
        assert.equal(mock.requests[1].body.requests[0].outputDimensionality, 4);
        /* errors in OpenAI's shape, with the provider's status and message */
        await assert.rejects(oa('/egembad').embeddings.create({ model: 'gemini-embedding-001', input: 'hi' }),
            (e) => e instanceof OpenAI.BadRequestError && /API key not valid/.test(e.message));
        await assert.rejects(oa('/egem').embeddings.create({ model: 'gemini-embedding-001', input: 'MOCK:error429' }),
            (e) => e instanceof OpenAI.RateLimitError);
        const n = mock.requests.length;
        await assert.rejects(oa('/egem').embeddings.create({ model: 'gemini-embedding-001', input: [[1, 2, 3]] }),
            (e) => e.status === 400 && /token arrays cannot be sent/.test(e.message));
        assert.equal(mock.requests.length, n, 'a refused request reached the provider');

        /* bedrock Titan v2: one input, signed (the mock recomputes SigV4) */
        mock.reset();
        const t = await oa('/etitan').embeddings.create({ model: 'amazon.titan-embed-text-v2:0', input: 'hello world', dimensions: 256 });
        assert.equal(t.data[0].embedding.length, 256);
        assert.deepEqual(Array.from(t.data[0].embedding), f32(embedVector('hello world', 256)));
        up = mock.requests[0];
        assert.equal(up.path, '/model/amazon.titan-embed-text-v2%3A0/invoke');
        assert.equal(up.sigError, undefined);
        assert.deepEqual(up.body, { inputText: 'hello world', dimensions: 256, normalize: true });
        assert.equal(t.usage.prompt_tokens, 3, 'inputTextTokenCount');
        rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 3);
        assert.equal(rec.ai.proxy.meta.provider_name, 'bedrock');
        await assert.rejects(oa('/etitan').embeddings.create({ model: 'amazon.titan-embed-text-v2:0', input: ['a', 'b'] }),
            (e) => e.status === 400 && /Titan embedding models take one input per request/.test(e.message));
        await assert.rejects(oa('/etitanbad').embeddings.create({ model: 'amazon.titan-embed-text-v2:0', input: 'hi' }),
            (e) => e instanceof OpenAI.PermissionDeniedError && /signature we calculated does not match/.test(e.message));
        /* bedrock Cohere Embed: a batch, Kong's input type, the count from the header */
        mock.reset();
        const c = await oa('/ecohere').embeddings.create({ model: 'cohere.embed-english-v3', input: ['first text', 'second'], encoding_format: 'float' });
        assert.deepEqual(c.data.map((d) => d.embedding), [embedVector('first text'), embedVector('second')]);
        assert.deepEqual(c.data.map((d) => d.index), [0, 1]);
        up = mock.requests[0];
        assert.equal(up.path, '/model/cohere.embed-english-v3/invoke');
        assert.deepEqual(up.body, { texts: ['first text', 'second'], input_type: 'search_document' });
        assert.equal(c.usage.prompt_tokens, 5, 'x-amzn-bedrock-input-token-count');
        rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 5);
        assert.equal(rec.ai.proxy.usage.total_tokens, 5);
        for (const r of mock.requests) noClientKey(r);
    });

    const noClientKey = (up) => assert.ok(!JSON.stringify(up.headers).includes(CLIENT_KEY), 'the client key reached the provider');

    for (const [p, label] of [['/gem', 'key header'], ['/gemq', 'key query parameter']]) {
        test(`gemini (${label}): a message, then streamed`, CASE, async () => {
            const client = an(p);
            const { data, response } = await client.messages.create({
                model: 'gemini-2.5-flash', max_tokens: 100, system: 'Be terse.',
                messages: [{ role: 'user', content: 'Hello' }],
            }).withResponse();
            assert.equal(data.content[0].text, TEXT);
            assert.equal(data.stop_reason, 'end_turn');
            assert.equal(data.usage.cache_read_input_tokens, 100);
            assert.equal(response.headers.get('x-kong-llm-model'), 'gemini/gemini-2.5-flash');
            const up = mock.requests[0];
            assert.equal(up.path, '/v1beta/models/gemini-2.5-flash:generateContent');
            assert.equal(up.body.systemInstruction.parts[0].text, 'Be terse.');
            assert.equal(up.body.generationConfig.maxOutputTokens, 100);
            noClientKey(up);
            const rec = await lastLog();
            assert.equal(rec.ai.proxy.usage.completion_tokens, 10);
            assert.equal(rec.ai.proxy.usage.prompt_tokens_details.cached_tokens, 100);
            assert.equal(rec.ai.proxy.meta.provider_name, 'gemini');

            const stream = client.messages.stream({
                model: 'gemini-2.5-flash', max_tokens: 100, messages: [{ role: 'user', content: 'Hello again' }],
            });
            let text = '';
            stream.on('text', (t) => { text += t; });
            const final = await stream.finalMessage();
            assert.equal(text, TEXT);
            assert.equal(final.usage.output_tokens, 10);
            assert.equal(mock.requests[1].path, '/v1beta/models/gemini-2.5-flash:streamGenerateContent');
            assert.match(mock.requests[1].query, /alt=sse/);
        });
    }

    test('gemini: streamed tool round trip with thinking, the thought signature carried back', CASE, async () => {
        const client = an('/gem');
        const messages = [{ role: 'user', content: 'Weather in Paris? MOCK:tool_call' }];
        const first = await client.messages.stream({
            model: 'gemini-2.5-flash', max_tokens: 2048, tools: TOOLS,
            thinking: { type: 'enabled', budget_tokens: 1024 }, messages,
        }).finalMessage();
        assert.equal(first.stop_reason, 'tool_use');
        assert.equal(first.content[0].type, 'thinking');
        const call = first.content.find((b) => b.type === 'tool_use');
        assert.deepEqual(call.input, { city: 'Paris', unit: 'celsius' });
        assert.ok(mock.requests[0].body.tools[0].functionDeclarations[0].parametersJsonSchema.$schema);
        messages.push({ role: 'assistant', content: first.content });
        messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '18C, sunny' }] });
        const second = await client.messages.stream({
            model: 'gemini-2.5-flash', max_tokens: 2048, tools: TOOLS, messages,
        }).finalMessage();
        assert.match(second.content.find((b) => b.type === 'text').text, /18C, sunny/);
        const parts = mock.requests[1].body.contents;
        assert.equal(parts[2].parts[0].functionResponse.name, 'get_weather');
    });

    test('gemini: a wrong key is Google\'s 400, an overload mid-stream an error event, a 429 a RateLimitError', CASE, async () => {
        await assert.rejects(an('/gembad').messages.create({
            model: 'gemini-2.5-flash', max_tokens: 10, messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e.status === 400 && /API key not valid/.test(e.message));
        await assert.rejects(an('/gem').messages.create({
            model: 'gemini-2.5-flash', max_tokens: 10, messages: [{ role: 'user', content: 'MOCK:error429' }],
        }), (e) => e instanceof Anthropic.RateLimitError);
        await assert.rejects(an('/gem').messages.stream({
            model: 'gemini-2.5-flash', max_tokens: 10, messages: [{ role: 'user', content: 'MOCK:stream_error' }],
        }).finalMessage(), /overloaded/);
    });

    test('bedrock: Converse and ConverseStream, signed (the mock recomputes SigV4), usage', CASE, async () => {
        const client = an('/br');
        const { data } = await client.messages.create({
            model: BEDROCK_MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'Hello' }],
        }).withResponse();
        assert.equal(data.content[0].text, TEXT);
        assert.equal(data.usage.input_tokens, 20);
        assert.equal(data.usage.cache_read_input_tokens, 100);
        const up = mock.requests[0];
        assert.equal(up.sigError, undefined);
        assert.equal(up.path, '/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse');
        assert.equal(up.query, '', 'the client query is dropped');
        assert.equal(up.model, BEDROCK_MODEL);
        noClientKey(up);
        const rec = await lastLog();
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 120);
        assert.equal(rec.ai.proxy.usage.completion_tokens, 9);

        const stream = client.messages.stream({
            model: BEDROCK_MODEL, max_tokens: 100, messages: [{ role: 'user', content: 'Hello again' }],
        });
        let text = '';
        stream.on('text', (t) => { text += t; });
        const final = await stream.finalMessage();
        assert.equal(text, TEXT);
        assert.equal(final.usage.output_tokens, 9);
        assert.equal(mock.requests[1].path, '/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream');
        assert.equal(mock.requests[1].sigError, undefined);
    });

    test('bedrock: streamed tool round trip with thinking (signatures kept)', CASE, async () => {
        const client = an('/br');
        const messages = [{ role: 'user', content: 'Weather in Paris? MOCK:tool_call' }];
        const first = await client.messages.stream({
            model: BEDROCK_MODEL, max_tokens: 2048, tools: TOOLS,
            thinking: { type: 'enabled', budget_tokens: 1024 }, messages,
        }).finalMessage();
        assert.equal(first.stop_reason, 'tool_use');
        assert.equal(first.content[0].type, 'thinking');
        assert.equal(first.content[0].signature, 'EqQBCkYIBxgCKkD-mock-signature');
        const call = first.content.find((b) => b.type === 'tool_use');
        assert.equal(call.id, 'tooluse_mock01');
        assert.deepEqual(call.input, { city: 'Paris', unit: 'celsius' });
        messages.push({ role: 'assistant', content: first.content });
        messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: call.id, content: '18C, sunny' }] });
        const second = await client.messages.stream({
            model: BEDROCK_MODEL, max_tokens: 2048, tools: TOOLS,
            thinking: { type: 'enabled', budget_tokens: 1024 }, messages,
        }).finalMessage();
        assert.match(second.content.find((b) => b.type === 'text').text, /18C, sunny/);
        const hist = mock.requests[1].body.messages;
        assert.equal(hist[1].content[0].reasoningContent.reasoningText.signature, 'EqQBCkYIBxgCKkD-mock-signature');
        assert.equal(hist[2].content[0].toolResult.toolUseId, 'tooluse_mock01');
    });

    test('bedrock: a wrong secret is AWS\'s 403, throttling a RateLimitError, a stream exception an error event', CASE, async () => {
        await assert.rejects(an('/brbad').messages.create({
            model: BEDROCK_MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e.status === 403 && e instanceof Anthropic.PermissionDeniedError && /signature we calculated does not match/.test(e.message));
        assert.equal(mock.requests[0].sigError, 'InvalidSignatureException');
        await assert.rejects(an('/br').messages.create({
            model: BEDROCK_MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'MOCK:error429' }],
        }), (e) => e instanceof Anthropic.RateLimitError);
        await assert.rejects(an('/br').messages.stream({
            model: BEDROCK_MODEL, max_tokens: 10, messages: [{ role: 'user', content: 'MOCK:stream_error' }],
        }).finalMessage(), /Model stream error/);
    });

    for (const [p, model, provider] of [['/ogem', 'gemini-2.5-flash', 'gemini'], ['/obr', BEDROCK_MODEL, 'bedrock']]) {
        test(`${provider}: OpenAI SDK, a chat completion, then streamed with and without include_usage`, CASE, async () => {
            const client = oa(p);
            const { data, response } = await client.chat.completions.create({
                model, max_tokens: 100, messages: [{ role: 'system', content: 'Be terse.' }, { role: 'user', content: 'Hello' }],
            }).withResponse();
            assert.equal(data.object, 'chat.completion');
            assert.equal(data.choices[0].message.content, TEXT);
            assert.equal(data.choices[0].finish_reason, 'stop');
            assert.equal(data.usage.prompt_tokens_details.cached_tokens, 100);
            assert.equal(response.headers.get('x-kong-llm-model'), `${provider}/${model}`);
            const up = mock.requests[0];
            noClientKey(up);
            if (provider === 'gemini') {
                assert.equal(up.path, '/v1beta/models/gemini-2.5-flash:generateContent');
                assert.equal(up.body.systemInstruction.parts[0].text, 'Be terse.');
                assert.equal(up.body.generationConfig.maxOutputTokens, 100);
                assert.equal(data.usage.completion_tokens, 10);
            } else {
                assert.equal(up.sigError, undefined);
                assert.equal(up.path, '/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse');
                assert.equal(up.body.system[0].text, 'Be terse.');
                assert.equal(up.body.inferenceConfig.maxTokens, 100);
                assert.deepEqual(data.usage, { prompt_tokens: 120, completion_tokens: 9, total_tokens: 129, prompt_tokens_details: { cached_tokens: 100 } });
            }
            let rec = await lastLog();
            assert.equal(rec.ai.proxy.meta.provider_name, provider);
            assert.equal(rec.ai.proxy.usage.prompt_tokens_details.cached_tokens, 100);
            assert.equal(rec.ai.proxy.usage.completion_tokens, provider === 'gemini' ? 10 : 9);

            for (const include of [true, false]) {
                mock.reset();
                const stream = await client.chat.completions.create({
                    model, stream: true, max_tokens: 50,
                    ...(include ? { stream_options: { include_usage: true } } : {}),
                    messages: [{ role: 'user', content: 'Hello again' }],
                });
                const chunks = [];
                for await (const c of stream) chunks.push(c);
                assert.equal(chunks[0].choices[0].delta.role, 'assistant');
                assert.equal(chunks.map((c) => c.choices[0]?.delta?.content ?? '').join(''), TEXT);
                const fin = chunks.filter((c) => c.choices[0]?.finish_reason);
                assert.equal(fin.length, 1);
                assert.equal(fin[0].choices[0].finish_reason, 'stop');
                const withUsage = chunks.filter((c) => c.usage);
                assert.equal(withUsage.length, include ? 1 : 0);
                if (include) {
                    assert.deepEqual(withUsage[0].choices, []);
                    assert.equal(withUsage[0].usage.prompt_tokens_details.cached_tokens, 100);
                    assert.equal(chunks.at(-1), withUsage[0]);
                }
                assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0].id));
                assert.match(mock.requests[0].path, provider === 'gemini' ? /:streamGenerateContent$/ : /\/converse-stream$/);
                if (provider === 'bedrock') assert.equal(mock.requests[0].sigError, undefined);
                rec = await lastLog();
                assert.equal(rec.ai.proxy.meta.request_mode, 'stream');
                assert.equal(rec.ai.proxy.usage.prompt_tokens_details.cached_tokens, 100, 'usage logged with or without include_usage');
            }
        });

        test(`${provider}: OpenAI SDK, reasoning_effort asks for thinking, which comes back as reasoning_content, streamed and not`, CASE, async () => {
            const client = oa(p);
            const asked = (up) => (provider === 'gemini' ? up.body.generationConfig.thinkingConfig : up.body.additionalModelRequestFields?.thinking);
            const maxTokens = (up) => (provider === 'gemini' ? up.body.generationConfig.maxOutputTokens : up.body.inferenceConfig.maxTokens);
            const budget = (n) => (provider === 'gemini' ? { includeThoughts: true, thinkingBudget: n } : { type: 'enabled', budget_tokens: n });
            const r = await client.chat.completions.create({ model, reasoning_effort: 'medium', messages: [{ role: 'user', content: 'Hello' }] });
            assert.equal(r.choices[0].message.reasoning_content, 'Thinking it over.');
            assert.equal(r.choices[0].message.content, TEXT);
            assert.deepEqual(asked(mock.requests[0]), budget(2048));
            assert.equal(maxTokens(mock.requests[0]), 4096 + 2048, 'the default max_tokens leaves room for the budget');
            if (provider === 'bedrock') assert.equal(mock.requests[0].sigError, undefined);
            const rec = await lastLog();
            if (provider === 'gemini') assert.equal(rec.ai.proxy.usage.completion_tokens_details.reasoning_tokens, 3, "Gemini's thoughtsTokenCount");

            /* streamed, with a max_tokens below the budget: the budget shrinks to fit */
            const stream = await client.chat.completions.create({
                model, stream: true, max_tokens: 1500, reasoning_effort: 'high', messages: [{ role: 'user', content: 'Hello' }],
            });
            let reasoning = '';
            let text = '';
            for await (const c of stream) {
                reasoning += c.choices[0]?.delta?.reasoning_content ?? '';
                text += c.choices[0]?.delta?.content ?? '';
            }
            assert.equal(reasoning, 'Thinking it over.');
            assert.equal(text, TEXT);
            assert.deepEqual(asked(mock.requests[1]), budget(1499));
            assert.equal(maxTokens(mock.requests[1]), 1500);

            /* none: no thinking asked, none answered */
            const off = await client.chat.completions.create({ model, reasoning_effort: 'none', messages: [{ role: 'user', content: 'Hello' }] });
            assert.equal(off.choices[0].message.reasoning_content, undefined);
            assert.equal(asked(mock.requests[2]), undefined);

            /* a tool-result turn: not asked (Claude wants the signed thinking back, which OpenAI's format cannot carry) */
            const first = await client.chat.completions.create({ model, tools: OTOOLS, reasoning_effort: 'low', messages: [{ role: 'user', content: 'Weather in Paris? MOCK:tool_call' }] });
            const call = first.choices[0].message.tool_calls[0];
            assert.equal(first.choices[0].message.reasoning_content, 'Thinking it over.');
            const second = await client.chat.completions.create({
                model, tools: OTOOLS, reasoning_effort: 'low',
                messages: [{ role: 'user', content: 'Weather in Paris? MOCK:tool_call' }, first.choices[0].message, { role: 'tool', tool_call_id: call.id, content: '18C, sunny' }],
            });
            assert.match(second.choices[0].message.content, /18C, sunny/);
            assert.equal(asked(mock.requests[4]), undefined);

            /* refused before the provider: an unknown effort, no room for a budget */
            const n = mock.requests.length;
            await assert.rejects(client.chat.completions.create({ model, reasoning_effort: 'extreme', messages: [{ role: 'user', content: 'Hello' }] }),
                (e) => e instanceof OpenAI.BadRequestError && /reasoning_effort: must be one of/.test(e.message));
            await assert.rejects(client.chat.completions.create({ model, max_tokens: 800, reasoning_effort: 'low', messages: [{ role: 'user', content: 'Hello' }] }),
                (e) => e instanceof OpenAI.BadRequestError && /max_tokens must be above 1024/.test(e.message));
            assert.equal(mock.requests.length, n, 'a refused request reached the provider');
        });

        test(`${provider}: OpenAI SDK, a streamed tool call and the tool result going back`, CASE, async () => {
            const client = oa(p);
            const messages = [{ role: 'user', content: 'Weather in Paris? MOCK:tool_call' }];
            const stream = await client.chat.completions.create({ model, tools: OTOOLS, stream: true, messages });
            let args = '';
            let name = null;
            let id = null;
            let finish = null;
            let content = '';
            for await (const c of stream) {
                const tc = c.choices[0]?.delta?.tool_calls?.[0];
                if (tc?.id) id = tc.id;
                if (tc?.function?.name) name = tc.function.name;
                args += tc?.function?.arguments ?? '';
                content += c.choices[0]?.delta?.content ?? '';
                finish = c.choices[0]?.finish_reason ?? finish;
            }
            assert.equal(name, 'get_weather');
            assert.equal(finish, 'tool_calls');
            assert.equal(content, 'Let me check.');
            assert.deepEqual(JSON.parse(args), { city: 'Paris', unit: 'celsius' });
            messages.push({ role: 'assistant', content, tool_calls: [{ id, type: 'function', function: { name, arguments: args } }] });
            messages.push({ role: 'tool', tool_call_id: id, content: '18C, sunny' });
            const second = await client.chat.completions.create({ model, tools: OTOOLS, messages });
            assert.match(second.choices[0].message.content, /18C, sunny/);
            assert.equal(second.choices[0].finish_reason, 'stop');
            const up = mock.requests[1];
            if (provider === 'gemini') {
                /* the thought signature came back inside the call id */
                assert.equal(up.body.contents[1].parts[1].functionCall.name, 'get_weather');
                assert.equal(up.body.contents[2].parts[0].functionResponse.name, 'get_weather');
            } else {
                assert.equal(up.sigError, undefined);
                assert.equal(up.body.messages[1].content[1].toolUse.toolUseId, 'tooluse_mock01');
                assert.equal(up.body.messages[2].content[0].toolResult.toolUseId, 'tooluse_mock01');
            }
        });
    }

    test('OpenAI SDK: the providers\' errors in OpenAI\'s shape and status', CASE, async () => {
        await assert.rejects(oa('/ogembad').chat.completions.create({
            model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e instanceof OpenAI.BadRequestError && /API key not valid/.test(e.message));
        await assert.rejects(oa('/ogem').chat.completions.create({
            model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'MOCK:error429' }],
        }), (e) => e instanceof OpenAI.RateLimitError);
        await assert.rejects(async () => {
            const s = await oa('/ogem').chat.completions.create({
                model: 'gemini-2.5-flash', stream: true, messages: [{ role: 'user', content: 'MOCK:stream_error' }],
            });
            for await (const c of s) void c;
        }, /overloaded/);
        await assert.rejects(oa('/obrbad').chat.completions.create({
            model: BEDROCK_MODEL, messages: [{ role: 'user', content: 'hi' }],
        }), (e) => e instanceof OpenAI.PermissionDeniedError && /signature we calculated does not match/.test(e.message));
        await assert.rejects(oa('/obr').chat.completions.create({
            model: BEDROCK_MODEL, messages: [{ role: 'user', content: 'MOCK:error429' }],
        }), (e) => e instanceof OpenAI.RateLimitError);
        await assert.rejects(async () => {
            const s = await oa('/obr').chat.completions.create({
                model: BEDROCK_MODEL, stream: true, messages: [{ role: 'user', content: 'MOCK:stream_error' }],
            });
            for await (const c of s) void c;
        }, /Model stream error/);
    });

    for (const [p, model, provider] of [['/gem', 'gemini-2.5-flash', 'gemini'], ['/br', BEDROCK_MODEL, 'bedrock']]) {
        test(`the Claude Code CLI against ${provider}`, { timeout: slow(120000), skip: claudeSkip() }, async () => {
            const r = await runClaude({ baseUrl: `${gw.base}${p}`, model, prompt: 'Say hello.', timeoutMs: 90000 });
            assert.equal(r.code, 0, show(r));
            assert.equal(r.json?.is_error, false, show(r));
            assert.equal(r.json?.result, TEXT, show(r));
            const ups = mock.requests.filter((q) => q.provider === provider);
            assert.ok(ups.length >= 1);
            for (const up of ups) {
                noClientKey(up);
                assert.equal(up.sigError, undefined);
            }
        });
    }
});
