/* ai-rate-limiting.test.mjs - token quotas on the how-to route
 * (ai-proxy, Anthropic format, mock DashScope): the response that crosses
 * the limit completes, the next request gets Anthropic's rate_limit_error
 * (RateLimitError in the SDK) with Kong's X-AI-RateLimit-* headers; counts
 * are exact across two workers; streams are charged too; per-consumer
 * quotas with key-auth; config errors. */
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, howtoConfig, runSluice, tmpDir, CLIENT_KEY } from './harness.mjs';
import fs from 'node:fs';
import path from 'node:path';

const airl = (conf) => `
  - name: ai-rate-limiting-advanced
    config:
${conf.split('\n').filter(Boolean).map((l) => `      ${l}`).join('\n')}
`;

/* the how-to config with extra global plugins (the file's top-level plugins list) */
function config(mock, extraPlugins, tail = '') {
    const dir = tmpDir('sluice-airl-');
    const base = howtoConfig({ upstreamUrl: mock.url, logPath: path.join(dir, 'log.json') });
    const i = base.indexOf('\nplugins:\n');
    assert.ok(i >= 0, 'how-to config has a top-level plugins list');
    return base.slice(0, i + '\nplugins:\n'.length) + extraPlugins.replace(/^\n/, '') + base.slice(i + '\nplugins:\n'.length) + (tail ? `\n${tail}` : '');
}

const ask = (client, text = 'hi', extra = {}) => client.messages.create({
    model: 'qwen-plus', max_tokens: 64, messages: [{ role: 'user', content: text }], ...extra,
});

/* This SDK sends its key as Authorization: Bearer; key-auth reads the
 * x-api-key header here (Claude Code's), so the clients set it too. */
describe('ai-rate-limiting-advanced', { timeout: 120000 }, () => {
    let mock;
    before(async () => { mock = await startMock(); });
    after(async () => { await mock?.stop(); });

    test('charged after the response; the next request is refused as Anthropic would; headers', async () => {
        const gw = await startGateway({
            config: config(mock, airl('identifier: ip\nwindow_type: fixed\nllm_providers:\n- {name: dashscope, limit: [30], window_size: [3600]}')),
            workers: 2, env: { DECK_DASHSCOPE_API_KEY: mock.key },
        });
        try {
            const client = new Anthropic({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            await mock.scenario([{ usage: { prompt_tokens: 20, completion_tokens: 5 } }, { usage: { prompt_tokens: 20, completion_tokens: 5 } }]);
            const first = await ask(client).withResponse();
            assert.equal(first.response.headers.get('x-ai-ratelimit-limit-3600-dashscope'), '30');
            assert.equal(first.response.headers.get('x-ai-ratelimit-remaining-3600-dashscope'), '30');
            // 25 used, 5 left: the second request runs and crosses the limit
            const second = await ask(client).withResponse();
            assert.equal(second.response.headers.get('x-ai-ratelimit-remaining-3600-dashscope'), '5');
            const before = (await mock.chatRequests()).length;
            let err;
            try { await ask(client); } catch (e) { err = e; }
            assert.ok(err instanceof Anthropic.RateLimitError, `expected RateLimitError, got ${err}`);
            assert.equal(err.status, 429);
            assert.equal(err.error.type, 'error');
            assert.equal(err.error.error.type, 'rate_limit_error');
            assert.match(err.error.error.message, /AI token rate limit exceeded for provider\(s\): dashscope/);
            assert.equal(err.headers.get('x-ai-ratelimit-remaining-3600-dashscope'), '0');
            const ra = Number(err.headers.get('retry-after'));
            assert.ok(ra >= 1 && ra <= 3600, `retry-after ${ra}`);
            assert.equal(err.headers.get('x-ai-ratelimit-retry-after-3600-dashscope'), String(ra));
            assert.equal((await mock.chatRequests()).length, before, 'the refused request never reached the provider');
        } finally { await gw.stop(); }
    });

    test('streams are charged; prompt_tokens strategy; exact across two workers', async () => {
        const gw = await startGateway({
            config: config(mock, airl('identifier: ip\nwindow_type: fixed\ntokens_count_strategy: prompt_tokens\nllm_providers:\n- {name: dashscope, limit: [100], window_size: [60, ]}'.replace('[60, ]', '[3600]'))),
            workers: 2, env: { DECK_DASHSCOPE_API_KEY: mock.key },
        });
        try {
            const client = new Anthropic({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            const n = 4;
            await mock.scenario(Array.from({ length: n }, () => ({ usage: { prompt_tokens: 30, completion_tokens: 1000 } })));
            // 4 streamed answers of 30 prompt tokens each, in parallel on two workers
            await Promise.all(Array.from({ length: n }, async () => {
                const s = client.messages.stream({ model: 'qwen-plus', max_tokens: 64, messages: [{ role: 'user', content: 'x' }] });
                await s.finalMessage();
            }));
            // 120 prompt tokens counted: over 100 on whichever worker answers
            let err;
            try { await ask(client); } catch (e) { err = e; }
            assert.ok(err instanceof Anthropic.RateLimitError, `expected RateLimitError, got ${err}`);
            assert.equal(err.headers.get('x-ai-ratelimit-limit-3600-dashscope'), '100');
        } finally { await gw.stop(); }
    });

    test('per consumer with key-auth: one developer at the limit, another unaffected', async () => {
        const tail = `consumers:
- username: alice
  keyauth_credentials: [{key: sk-alice}]
- username: bob
  keyauth_credentials: [{key: sk-bob}]
`;
        const gw = await startGateway({
            config: config(mock, `
  - name: key-auth
    config: {key_names: [x-api-key]}
` + airl('identifier: consumer\nwindow_type: sliding\nllm_providers:\n- {name: dashscope, limit: [10], window_size: [60]}'), tail),
            workers: 1, env: { DECK_DASHSCOPE_API_KEY: mock.key },
        });
        try {
            const alice = new Anthropic({ apiKey: 'sk-alice', defaultHeaders: { 'x-api-key': 'sk-alice' }, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            const bob = new Anthropic({ apiKey: 'sk-bob', defaultHeaders: { 'x-api-key': 'sk-bob' }, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            await mock.scenario([{ usage: { prompt_tokens: 8, completion_tokens: 4 } }, { usage: { prompt_tokens: 1, completion_tokens: 1 } }]);
            await ask(alice);
            await assert.rejects(ask(alice), Anthropic.RateLimitError);
            await ask(bob);
            const nokey = new Anthropic({ apiKey: 'sk-nobody', defaultHeaders: { 'x-api-key': 'sk-nobody' }, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            await assert.rejects(ask(nokey), Anthropic.AuthenticationError);
        } finally { await gw.stop(); }
    });

    test('config errors name the field', async () => {
        const check = async (conf, re) => {
            const d = tmpDir();
            const f = path.join(d, 'kong.yaml');
            fs.writeFileSync(f, config(mock, airl(conf)));
            const r = await runSluice(['-t', '-d', f], { env: { DECK_DASHSCOPE_API_KEY: 'x' } });
            assert.notEqual(r.code, 0, r.stderr);
            assert.match(r.stderr, re);
        };
        await check('strategy: cluster\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /config\.strategy.*database/);
        await check('llm_providers: [{name: dashscope, limit: [1, 2], window_size: [60]}]', /llm_providers\[0\].*equal length/);
        await check('llm_providers: [{name: nosuch, limit: [1], window_size: [60]}]', /llm_providers\[0\]\.name/);
        await check('strategy: redis\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.host.*required/);
        await check('strategy: redis\nredis: {host: 127.0.0.1, sentinel_master: m}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.sentinel_master.*not supported/);
        await check('policies: [{match: [{type: provider, values: [dashscope]}], limits: [{limit: 1, window_size: 60}]}]', /config\.policies.*not supported yet/);
    });
});
