/* ai-rate-limiting.test.mjs - token quotas on the how-to route
 * (ai-proxy, Anthropic format, mock DashScope): the response that crosses
 * the limit completes, the next request gets Anthropic's rate_limit_error
 * (RateLimitError in the SDK) with Kong's X-AI-RateLimit-* headers; counts
 * are exact across two workers; streams are charged too; per-consumer
 * quotas with key-auth; two gateways sharing one quota through a real
 * redis-server (the overshoot measured), Redis Sentinel, and a Redis Cluster
 * of three masters; config errors. */
import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, howtoConfig, runSluice, tmpDir, sleep, CLIENT_KEY, slow } from './harness.mjs';
import { makePki } from '../core/tls-certs.mjs';
import { startRedis, startRedisCluster, startRedisTls, startSentinel, startSentinelTls } from './redis.mjs';
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
describe('ai-rate-limiting-advanced', { timeout: slow(120000) }, () => {
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

    test('policies (Kong 3.14): match all of, partition_by, a fallback policy; headers name the policy', async () => {
        const tail = `consumers:
- username: alice
  keyauth_credentials: [{key: sk-alice}]
- username: bob
  keyauth_credentials: [{key: sk-bob}]
`;
        const policies = `identifier: ip
policies:
- match: [{type: consumer, key: username, values: [alice]}]
  limits: [{limit: 10, window_size: 3600}]
- match: [{type: provider, values: [dashscope], partition_by: true}, {type: header, key: x-team, partition_by: true}]
  limits: [{limit: 15, window_size: 3600, tokens_count_strategy: prompt_tokens}]
- match: [{type: model, values: [qwen-max]}]
  limits: [{limit: 1, window_size: 60}]
- limits: [{limit: 1000, window_size: 60}]
  window_type: fixed`;
        const gw = await startGateway({
            config: config(mock, `
  - name: key-auth
    config: {key_names: [x-api-key]}
` + airl(policies), tail),
            workers: 2, env: { DECK_DASHSCOPE_API_KEY: mock.key },
        });
        try {
            const as = (key, headers = {}) => new Anthropic({ apiKey: key, defaultHeaders: { 'x-api-key': key, ...headers }, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 4 }, count: 100 });
            // alice: policy 1 (12 tokens > 10 after one answer)
            const a1 = await ask(as('sk-alice')).withResponse();
            assert.equal(a1.response.headers.get('x-ai-ratelimit-limit-3600-policy-1'), '10');
            assert.equal(a1.response.headers.get('x-ai-ratelimit-limit-60-policy-4'), null, 'the fallback only when nothing matched');
            let err;
            try { await ask(as('sk-alice')); } catch (e) { err = e; }
            assert.ok(err instanceof Anthropic.RateLimitError, `expected RateLimitError, got ${err}`);
            assert.match(err.error.error.message, /AI token rate limit exceeded for provider\(s\): policy-1$/);
            assert.equal(err.headers.get('x-ai-ratelimit-remaining-3600-policy-1'), '0');
            assert.ok(Number(err.headers.get('retry-after')) >= 1);
            // bob without x-team: no named policy holds (the model is qwen-plus) -> the fallback
            const b1 = await ask(as('sk-bob')).withResponse();
            assert.equal(b1.response.headers.get('x-ai-ratelimit-limit-60-policy-4'), '1000');
            assert.equal(b1.response.headers.get('x-ai-ratelimit-limit-60-policy-3'), null);
            assert.equal(b1.response.headers.get('x-ai-ratelimit-limit-3600-policy-1'), null);
            // bob with x-team: policy 2, one counter per team, prompt tokens only (8 per answer)
            const red = as('sk-bob', { 'x-team': 'red' });
            const r1 = await ask(red).withResponse();
            assert.equal(r1.response.headers.get('x-ai-ratelimit-limit-3600-policy-2'), '15');
            assert.equal(r1.response.headers.get('x-ai-ratelimit-remaining-3600-policy-2'), '15');
            const r2 = await ask(red).withResponse();
            assert.equal(r2.response.headers.get('x-ai-ratelimit-remaining-3600-policy-2'), '7');
            await assert.rejects(ask(red), Anthropic.RateLimitError);
            const blue = await ask(as('sk-bob', { 'x-team': 'blue' })).withResponse();
            assert.equal(blue.response.headers.get('x-ai-ratelimit-remaining-3600-policy-2'), '15');
        } finally { await gw.stop(); }
    });

    test('on an ai-proxy-advanced route: the targets\' provider, the requested model from the body', async () => {
        const target = (name, alias) => `
        - route_type: llm/v1/chat
          auth: {header_name: Authorization, header_value: "Bearer ${mock.key}"}
          logging: {log_statistics: true}
          model: {provider: dashscope, name: ${name}, model_alias: "${alias}", options: {upstream_url: "${mock.url}"}}`;
        const cfg = `_format_version: "3.0"
services:
- name: llm
  url: http://127.0.0.1:9/unused
  routes:
  - name: claude
    paths: ["/anything"]
    plugins:
    - name: ai-proxy-advanced
      config:
        llm_format: anthropic
        targets:${target('qwen-plus', 'claude-sonnet-*')}${target('qwen-flash', 'claude-haiku-*')}
    - name: ai-rate-limiting-advanced
      config:
        policies:
        - match: [{type: provider, values: [dashscope]}, {type: model, partition_by: true}]
          limits: [{limit: 20, window_size: 3600}]
`;
        const gw = await startGateway({ config: cfg, workers: 2 });
        try {
            const client = new Anthropic({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 20, completion_tokens: 5 }, count: 10 });
            const first = await ask(client, 'hi', { model: 'claude-sonnet-4-5' }).withResponse();
            assert.equal(first.response.headers.get('x-ai-ratelimit-limit-3600-policy-1'), '20');
            let err;
            try { await ask(client, 'hi', { model: 'claude-sonnet-4-5' }); } catch (e) { err = e; }
            assert.ok(err instanceof Anthropic.RateLimitError, `expected RateLimitError, got ${err}`);
            // another requested model has its own counter
            const haiku = await ask(client, 'hi', { model: 'claude-haiku-4-5' }).withResponse();
            assert.equal(haiku.response.headers.get('x-ai-ratelimit-remaining-3600-policy-1'), '20');
        } finally { await gw.stop(); }
    });

    test('policies reject early (Kong 3.14): a prompt estimated over what a limit has left never reaches the provider', async () => {
        const policies = `window_type: fixed
policies:
- match: [{type: header, key: x-completion}]
  limits: [{limit: 5, window_size: 3600, tokens_count_strategy: completion_tokens}]
- match: [{type: header, key: x-cost}]
  limits: [{limit: 0.0005, window_size: 3600, tokens_count_strategy: cost}]
- limits: [{limit: 50, window_size: 3600}]`;
        // ai-proxy prices the answer: 10 per million prompt tokens, 20 per million completion ones
        const cfg = config(mock, airl(policies)).replace(/\n( *)temperature: 1\.0\n/, '\n$1temperature: 1.0\n$1input_cost: 10\n$1output_cost: 20\n');
        assert.match(cfg, /input_cost: 10/);
        const gw = await startGateway({ config: cfg, workers: 2, env: { DECK_DASHSCOPE_API_KEY: mock.key } });
        try {
            const as = (headers = {}) => new Anthropic({ apiKey: CLIENT_KEY, defaultHeaders: headers, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            const words = (n) => Array.from({ length: n }, (_, i) => `w${i}`).join(' ');
            const calls = async () => (await mock.chatRequests()).length;
            // each call is started only after the provider's count is read:
            // started earlier, its answer could come before a handler is
            // attached (an unhandled rejection) or its call be counted in n0
            const refused = async (start, label) => {
                const n0 = await calls();
                let err;
                try { await start(); } catch (e) { err = e; }
                assert.ok(err instanceof Anthropic.RateLimitError, `expected RateLimitError, got ${err}`);
                assert.match(err.error.error.message, new RegExp(`exceeded for provider\\(s\\): ${label}$`));
                assert.ok(Number(err.headers.get('retry-after')) >= 1);
                assert.equal(await calls(), n0, 'the provider was not called');
                return err;
            };
            const passed = async (start) => {
                const n0 = await calls();
                const r = await start().withResponse();
                assert.equal(await calls(), n0 + 1, 'the provider was called');
                return r;
            };
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 4 }, count: 100 });
            const client = as();
            // nothing used yet, 50 left: 51 words alone are too many, refused before the provider
            const e1 = await refused(() => ask(client, words(51)), 'policy-3');
            assert.equal(e1.headers.get('x-ai-ratelimit-remaining-3600-policy-3'), '50');
            assert.ok(e1.headers.get('x-ai-ratelimit-retry-after-3600-policy-3'));
            // the system prompt counts too (Kong counts the converted system message)
            await refused(() => ask(client, words(30), { system: words(21) }), 'policy-3');
            // 50 words fit exactly; the answer is charged 12 tokens (not the estimate)
            const ok = await passed(() => ask(client, words(50)));
            assert.equal(ok.response.headers.get('x-ai-ratelimit-remaining-3600-policy-3'), '50');
            // 38 left: 22 words pass, but streamed Kong counts them x1.8 (40)
            await refused(() => ask(client, words(22), { stream: true }), 'policy-3');
            await passed(() => ask(client, words(22)));
            // 26 left
            await refused(() => ask(client, words(27)), 'policy-3');
            await passed(() => ask(client, words(26)));
            // completion_tokens limits are not estimated: a long prompt goes through
            await passed(() => ask(as({ 'x-completion': '1' }), words(300)));
            // cost: 0.0005 at 10 per million prompt tokens = 50 tokens' worth
            await refused(() => ask(as({ 'x-cost': '1' }), words(51)), 'policy-2');
            await passed(() => ask(as({ 'x-cost': '1' }), words(49)));
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
        await check('strategy: redis\nredis: {host: 127.0.0.1, sentinel_master: m}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.sentinel_role: required with sentinel_master/);
        await check('strategy: redis\nredis: {sentinel_master: m, sentinel_role: master}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.sentinel_nodes: required with sentinel_master/);
        await check('strategy: redis\nredis: {sentinel_master: m, sentinel_role: slave, sentinel_nodes: [{host: 127.0.0.1, port: 26379}]}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.sentinel_role: 'slave' is not supported: sluice counts with writes/);
        await check('strategy: redis\nredis: {cluster_nodes: [{ip: 127.0.0.1, port: 7000}], sentinel_master: m, sentinel_role: master, sentinel_nodes: [{host: 127.0.0.1, port: 26379}]}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.cluster_nodes: Redis Cluster and Redis Sentinel exclude each other/);
        await check('strategy: redis\nredis: {cluster_nodes: [{ip: 127.0.0.1, port: 7000}], database: 2}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.database: a Redis Cluster has only database 0/);
        await check('strategy: redis\nredis: {cluster_nodes: [{ip: "", port: 7000}]}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.cluster_nodes\[0\]: expected an ip/);
        await check('strategy: redis\nredis: {cluster_nodes: [{ip: 127.0.0.1, port: 70000}]}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.cluster_nodes\[0\]\.port/);
        await check('strategy: redis\nredis: {cluster_nodes: [{ip: 127.0.0.1}], cluster_max_redirections: -1}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.cluster_max_redirections/);
        await check('strategy: redis\nredis: {host: 127.0.0.1, cloud_authentication: {auth_provider: aws}}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.cloud_authentication: cloud authentication is not supported/);
        await check('strategy: redis\nredis: {host: 127.0.0.1, keepalive_pool_size: 0}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.keepalive_pool_size: value should be between 1 and 2147483646/);
        await check('strategy: redis\nredis: {host: 127.0.0.1, keepalive_backlog: -1}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.keepalive_backlog: value should be between 0 and 2147483646/);
        await check('strategy: redis\nredis: {host: 127.0.0.1, keepalive_backlog: many}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /redis\.keepalive_backlog: value should be between 0 and 2147483646/);
        await check('policies: [{match: [{type: consumer_group, key: name, values: [g]}], limits: [{limit: 1, window_size: 60}]}]', /config\.policies\[0\]\.match\[0\].*consumer groups are not supported/);
        await check('policies: [{id: 3c1d7a56-6b7b-4a36-8d4d-2b4c3a1e9f00}]', /config\.policies\[0\]\.id.*inline/);
        await check('policies: [{match: [{type: header}], limits: [{limit: 1, window_size: 60}]}]', /config\.policies\[0\]\.match\[0\]\.key.*required/);
        await check('policies: [{match: [{type: header, key: "x team"}], limits: [{limit: 1, window_size: 60}]}]', /config\.policies\[0\]\.match\[0\]\.key.*bad header name/);
        await check('policies: [{match: [{type: consumer, key: email}], limits: [{limit: 1, window_size: 60}]}]', /config\.policies\[0\]\.match\[0\]\.key.*id, username, custom_id/);
        await check('policies: [{limits: [{limit: 1, window_size: 60, tokens_count_strategy: words}]}]', /config\.policies\[0\]\.limits\[0\]\.tokens_count_strategy/);
        await check('policies: [{limits: [{limit: 1, window_size: 60}]}]\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]', /mutually exclusive/);
        // Kong EE's default (127.0.0.1) fills a sentinel or cluster node's omitted address
        for (const redis of ['{sentinel_master: m, sentinel_role: master, sentinel_nodes: [{port: 26379}]}', '{cluster_nodes: [{port: 7000}]}']) {
            const f = path.join(tmpDir('sluice-airl-'), 'kong.yaml');
            fs.writeFileSync(f, config(mock, airl(`strategy: redis\nredis: ${redis}\nllm_providers: [{name: dashscope, limit: [1], window_size: [60]}]`)));
            const r = await runSluice(['-t', '-d', f], { env: { DECK_DASHSCOPE_API_KEY: 'x' } });
            assert.equal(r.code, 0, `${redis}: ${r.stderr}`);
        }
    });
});

/* Connections accepted on `port` (a stopped Redis: the kernel still
 * accepts) with bytes the server has not read: batches sent to it. */
function unreadConnections(port) {
    const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
    return fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1).map((l) => l.trim().split(/\s+/))
        .filter((f) => f.length > 9 && f[1].endsWith(hex) && f[3] === '01' && parseInt(f[4].split(':')[1], 16) > 0)
        .length;
}

async function waitUntil(pred, what, timeoutMs) {
    const end = Date.now() + timeoutMs;
    while (!(await pred())) {
        if (Date.now() > end) throw new Error(`timed out waiting: ${what}`);
        await sleep(50);
    }
}

/* One Anthropic Messages call over plain fetch (fast enough to pace). */
async function post(gw) {
    const r = await fetch(`${gw.base}/anything/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': CLIENT_KEY },
        body: JSON.stringify({ model: 'qwen-plus', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await r.arrayBuffer();
    return r.status;
}

describe('ai-rate-limiting-advanced, strategy redis (real redis-server)', { timeout: slow(120000) }, () => {
    let mock, redis;
    before(async () => { mock = await startMock(); redis = await startRedis(); });
    after(async () => { await mock?.stop(); await redis?.stop(); });

    const redisAirl = (limit, syncRate) => airl(`identifier: ip
window_type: fixed
strategy: redis
sync_rate: ${syncRate}
redis: {host: 127.0.0.1, port: ${redis.port}, timeout: 500}
llm_providers:
- {name: dashscope, limit: [${limit}], window_size: [3600]}`);

    /* Each node sends one request at a time, every `gapMs`, until it has
     * been refused `stopAfter` times in a row; every answer costs 10 tokens. */
    async function drain(gw, gapMs, stopAfter = 3, max = 400) {
        let passed = 0, refused = 0, last = Date.now();
        for (let i = 0; i < max && refused < stopAfter; i++) {
            const st = await post(gw);
            if (st === 200) { passed++; refused = 0; last = Date.now(); } else { assert.equal(st, 429); refused++; }
            await sleep(gapMs);
        }
        return { passed, last };
    }

    test('Redis Sentinel: the master is asked of a sentinel, and counting follows a failover', async () => {
        const master = await startRedis();
        const replica = await startRedis(undefined, ['--replicaof', '127.0.0.1', String(master.port)]);
        const sentinel = await startSentinel(master.port);
        let gw;
        try {
            // the sentinel must know the replica before it can promote it
            await waitUntil(() => sentinel.cli('SENTINEL', 'replicas', 'mymaster').includes(String(replica.port)), 'sentinel sees the replica', 20000);
            gw = await startGateway({
                config: config(mock, airl(`identifier: ip
window_type: fixed
strategy: redis
sync_rate: 0.1
redis:
  sentinel_master: mymaster
  sentinel_role: master
  sentinel_nodes: [{host: 127.0.0.1, port: ${sentinel.port}}]
  timeout: 500
llm_providers:
- {name: dashscope, limit: [1000000], window_size: [3600]}`)),
                workers: 1, env: { DECK_DASHSCOPE_API_KEY: mock.key },
            });
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 2 }, count: 1000 });
            const count = (r) => {
                const keys = r.cli('KEYS', 'ai-ratelimit:*').split('\n').filter(Boolean);
                return keys.length ? Number(r.cli('GET', keys[0])) : 0;
            };
            // the counts reach the master the sentinel names
            await waitUntil(async () => { assert.equal(await post(gw), 200); return count(master) > 0; }, 'counts on the master', 20000);
            await waitUntil(() => gw.stderr.includes(`Redis Sentinel: master 'mymaster' is at 127.0.0.1:${master.port}`), 'the address logged', 5000);
            // fail over: the replica becomes the master, the old one a replica
            assert.equal(sentinel.cli('SENTINEL', 'FAILOVER', 'mymaster'), 'OK');
            await waitUntil(() => sentinel.masterPort() === replica.port, 'the sentinel names the new master', 20000);
            await waitUntil(() => /role:master/.test(replica.cli('INFO', 'replication')), 'the replica is promoted', 20000);
            const before = count(replica);
            await waitUntil(async () => { assert.equal(await post(gw), 200); return count(replica) > before; }, 'counts on the new master', 30000);
            await waitUntil(() => gw.stderr.includes(`Redis Sentinel: master 'mymaster' is at 127.0.0.1:${replica.port}`), 'the new address logged', 5000);
        } finally {
            await gw?.stop();
            await sentinel.stop();
            await replica.stop();
            await master.stop();
        }
    });

    test('redis.ssl: counts in a redis-server that speaks only TLS, the certificate verified (Kong EE\'s ssl_verify default: true)', async () => {
        const pki = makePki(tmpDir('sluice-airl-pki-'), [{ name: 'redis', cn: 'redis.test', san: 'DNS:redis.test' }]);
        const tls = await startRedisTls({ cert: pki.redis.cert, key: pki.redis.key, ca: pki.ca });
        let gw;
        try {
            gw = await startGateway({
                config: config(mock, airl(`identifier: ip
window_type: fixed
strategy: redis
sync_rate: 0.1
redis: {host: 127.0.0.1, port: ${tls.port}, timeout: ${slow(5000)}, ssl: true, server_name: redis.test}
llm_providers:
- {name: dashscope, limit: [1000000], window_size: [3600]}`)),
                workers: 1, env: { DECK_DASHSCOPE_API_KEY: mock.key, SSL_CERT_FILE: pki.ca },
            });
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 2 }, count: 1000 });
            for (let i = 0; i < 3; i++) assert.equal(await post(gw), 200);
            const total = () => tls.cli('KEYS', 'ai-ratelimit:*').split('\n').filter(Boolean)
                .reduce((n, k) => n + Number(tls.cli('GET', k)), 0);
            await waitUntil(() => total() === 30, 'three answers of 10 tokens counted in Redis over TLS', slow(10000));
            assert.doesNotMatch(gw.stderr, /Redis .*counting locally/);
        } finally {
            await gw?.stop();
            await tls.stop();
        }
    });

    test('redis.ssl with Sentinel: the sentinel is asked over TLS, and the counts reach the master it names over TLS', async () => {
        const pki = makePki(tmpDir('sluice-airl-pki-'), [{ name: 'redis', cn: 'redis.test', san: 'DNS:redis.test' }]);
        const tlsConf = { cert: pki.redis.cert, key: pki.redis.key, ca: pki.ca };
        const master = await startRedisTls(tlsConf);
        const sentinel = await startSentinelTls(tlsConf, master.port);
        let gw;
        try {
            gw = await startGateway({
                config: config(mock, airl(`identifier: ip
window_type: fixed
strategy: redis
sync_rate: 0.1
redis:
  sentinel_master: mymaster
  sentinel_role: master
  sentinel_nodes: [{host: 127.0.0.1, port: ${sentinel.port}}]
  timeout: 1000
  ssl: true
  server_name: redis.test
llm_providers:
- {name: dashscope, limit: [1000000], window_size: [3600]}`)),
                workers: 1, env: { DECK_DASHSCOPE_API_KEY: mock.key, SSL_CERT_FILE: pki.ca },
            });
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 2 }, count: 1000 });
            const total = () => master.cli('KEYS', 'ai-ratelimit:*').split('\n').filter(Boolean)
                .reduce((n, k) => n + Number(master.cli('GET', k)), 0);
            await waitUntil(async () => { assert.equal(await post(gw), 200); return total() > 0; }, 'counts on the master', 20000);
            await waitUntil(() => gw.stderr.includes(`Redis Sentinel: master 'mymaster' is at 127.0.0.1:${master.port}`), 'the address logged', 5000);
            await gw.stop();
            // the sentinel's certificate from a CA the gateway does not trust: requests flow, the reason is logged
            gw = await startGateway({
                config: fs.readFileSync(gw.cfgPath, 'utf8'), workers: 1,
                env: { DECK_DASHSCOPE_API_KEY: mock.key, SSL_CERT_FILE: makePki(tmpDir('sluice-airl-pki-'), []).ca },
            });
            for (let i = 0; i < 3; i++) assert.equal(await post(gw), 200);
            await waitUntil(() => /Redis Sentinel master 'mymaster' sentinel (unreachable|could not name the master): 127\.0\.0\.1:\d+: TLS handshake failed: certificate refused/.test(gw.stderr),
                            'the refused certificate logged', 10000);
        } finally {
            await gw?.stop();
            await sentinel.stop();
            await master.stop();
        }
    });

    test('Kong EE\'s split timeouts: the longest of connect/read/send_timeout replaces redis.timeout', async () => {
        const stalled = await startRedis();
        let gw;
        try {
            gw = await startGateway({
                config: config(mock, airl(`identifier: ip
strategy: redis
sync_rate: 0.1
redis: {host: 127.0.0.1, port: ${stalled.port}, connect_timeout: 100, send_timeout: 100, read_timeout: 600000}
llm_providers:
- {name: dashscope, limit: [1000000], window_size: [3600]}`)),
                workers: 1, env: { DECK_DASHSCOPE_API_KEY: mock.key },
            });
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 2 }, count: 100 });
            stalled.proc.kill('SIGSTOP'); // connections are accepted, nothing is answered
            assert.equal(await post(gw), 200);
            // with redis.timeout's 2000 ms the silent Redis would be dropped
            // (and warned about) about 2 s after the first flush
            await sleep(3500);
            assert.ok(!/timed out/.test(gw.stderr), gw.stderr.slice(-400));
        } finally {
            stalled.proc.kill('SIGCONT');
            await gw?.stop();
            await stalled.stop();
        }
    });

    test('keepalive_pool_size + keepalive_backlog bound the batches waiting on Redis; unset, none is held back', async () => {
        const stalled = await startRedis();
        const gws = [];
        try {
            for (const extra of ['keepalive_pool_size: 1, keepalive_backlog: 0', 'keepalive_pool_size: 1']) {
                gws.push(await startGateway({
                    config: config(mock, airl(`identifier: header
header_name: x-team
strategy: redis
sync_rate: 0.1
redis: {host: 127.0.0.1, port: ${stalled.port}, read_timeout: 600000, ${extra}}
llm_providers:
- {name: dashscope, limit: [1000000], window_size: [3600]}`)),
                    workers: 1, env: { DECK_DASHSCOPE_API_KEY: mock.key },
                }));
            }
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 2 }, count: 100 });
            stalled.proc.kill('SIGSTOP'); // connections are accepted, nothing is answered
            const send = (gw, team) => fetch(`${gw.base}/anything/v1/messages`, {
                method: 'POST',
                headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': CLIENT_KEY, 'x-team': team },
                body: JSON.stringify({ model: 'qwen-plus', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
            }).then(async (r) => { await r.arrayBuffer(); return r.status; });
            // team a's batch is sent and never answered; team b's then finds no room
            for (const gw of gws) assert.equal(await send(gw, 'a'), 200);
            // each gateway's flush of team a has reached the stopped Redis
            // (a fixed wait missed the flush on a loaded machine)
            await waitUntil(() => unreadConnections(stalled.port) >= gws.length, 'team a\'s batches sent', slow(10000));
            for (const gw of gws) assert.equal(await send(gw, 'b'), 200);
            await waitUntil(() => /Redis 127\.0\.0\.1:\d+ is busy: keepalive_pool_size \+ keepalive_backlog/.test(gws[0].stderr), 'the bounded gateway holds team b back', 10000);
            await sleep(400);
            assert.doesNotMatch(gws[1].stderr, /is busy/, 'without a backlog nothing is held back');
        } finally {
            stalled.proc.kill('SIGCONT');
            for (const gw of gws) await gw.stop();
            await stalled.stop();
        }
    });

    test('Redis Cluster: two gateways share one token quota through three masters; a master killed degrades to local counts', async (t) => {
        const cluster = await startRedisCluster(3);
        let a, b;
        try {
            const cfg = config(mock, airl(`identifier: ip
window_type: fixed
strategy: redis
sync_rate: 0.1
redis:
  cluster_nodes: [{ip: 127.0.0.1, port: ${cluster.nodes[2].port}}]
  cluster_max_redirections: 3
  timeout: 500
llm_providers:
- {name: dashscope, limit: [200], window_size: [3600]}`));
            a = await startGateway({ config: cfg, workers: 1, env: { DECK_DASHSCOPE_API_KEY: mock.key } });
            b = await startGateway({ config: cfg, workers: 1, env: { DECK_DASHSCOPE_API_KEY: mock.key } });
            const toHour = 3600000 - Date.now() % 3600000; // one window for the whole run
            if (toHour < 60000) await sleep(toHour + 100);
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 2 }, count: 1000 });
            const counter = () => {
                for (const x of cluster.nodes) {
                    const k = x.cli('KEYS', 'ai-ratelimit:*').split('\n').filter(Boolean);
                    if (k.length) return { node: x, key: k[0], tokens: Number(x.cli('GET', k[0])) };
                }
                return null;
            };
            // 10 tokens per answer, limit 200: the gateways take turns until
            // both refuse (each alone would let 200 tokens through: 400)
            for (let i = 0; i < 100; i++) {
                const st = [await post(a), await post(b)];
                if (st.every((x) => x === 429)) break;
                await sleep(30);
            }
            // the last charges flushed: the counter reaches the limit and
            // stays (a fixed 400 ms missed a flush on a loaded machine)
            let c = null;
            await waitUntil(async () => {
                const c1 = counter();
                if (!c1 || c1.tokens < 200) return false;
                await sleep(500);
                c = counter();
                return c.tokens === c1.tokens;
            }, `the counter reaches the limit of 200: ${JSON.stringify(counter()?.tokens)}`, slow(15000));
            assert.ok(c, 'the counter is in the cluster');
            assert.equal(cluster.ownerOf(cluster.slotOf(c.key)), c.node, 'on the master serving its slot');
            t.diagnostic(`limit 200 tokens, 10 per answer, two gateways alternating every ~30 ms, sync_rate 0.1: ${c.tokens} tokens charged`);
            assert.ok(c.tokens >= 200 && c.tokens < 400, `one quota for both gateways: ${c.tokens} tokens`);
            assert.equal(await post(a), 429);
            assert.equal(await post(b), 429);
            // its master dies: the charges stay local, requests are answered
            await c.node.stop();
            const t0 = Date.now();
            for (let i = 0; i < 5; i++) assert.notEqual(await post(a), 500);
            assert.ok(Date.now() - t0 < 5000, 'no request waits for a dead master');
            await waitUntil(() => /Redis Cluster .*counting locally/.test(a.stderr), 'warned', 5000);
        } finally {
            await a?.stop();
            await b?.stop();
            await cluster.stop();
        }
    });

    for (const syncRate of [0.1, 0.5]) {
        test(`two gateways share one token quota (sync_rate ${syncRate}); overshoot measured`, async (t) => {
            const limit = 1000;
            const cfg = config(mock, redisAirl(limit, syncRate));
            const a = await startGateway({ config: cfg, workers: 2, env: { DECK_DASHSCOPE_API_KEY: mock.key } });
            const b = await startGateway({ config: cfg, workers: 2, env: { DECK_DASHSCOPE_API_KEY: mock.key } });
            try {
                for (let attempt = 0; ; attempt++) {
                    const hour = Math.floor(Date.now() / 3600000);
                    redis.cli('FLUSHALL');
                    await mock.reset();
                    await mock.scenario({ usage: { prompt_tokens: 8, completion_tokens: 2 }, count: 1000 });
                    const t0 = Date.now();
                    const [da, db] = await Promise.all([drain(a, 10), drain(b, 10)]);
                    const pa = da.passed, pb = db.passed;
                    const secs = (Math.max(da.last, db.last) - t0) / 1000;
                    if (Math.floor(Date.now() / 3600000) !== hour && attempt < 2) continue; // crossed a window
                    const tokens = (pa + pb) * 10;
                    // the last charges flushed (a fixed wait missed one on a loaded machine)
                    const keys = redis.cli('KEYS', 'ai-ratelimit:*').split('\n').filter(Boolean);
                    assert.equal(keys.length, 1, `one shared counter: ${keys}`);
                    assert.match(keys[0], /^ai-ratelimit:[0-9a-f-]{36}:127\.0\.0\.1:dashscope:3600:\d+$/);
                    const inRedis = () => Number(redis.cli('GET', keys[0]));
                    await waitUntil(() => inRedis() >= tokens, `Redis holds every charged token (${inRedis()} of ${tokens})`, slow(10000));
                    assert.equal(inRedis(), tokens, 'Redis holds every charged token');
                    const rate = tokens / secs;
                    t.diagnostic(`limit ${limit} tokens, 10 per answer, two gateways x 2 workers, one request at a time per gateway every ~10 ms ` +
                        `(${rate.toFixed(0)} tokens/s together), sync_rate ${syncRate}: ${pa}+${pb} answers = ${tokens} tokens, ` +
                        `overshoot ${tokens - limit} tokens (${((tokens - limit) / limit * 100).toFixed(0)} %)`);
                    // each gateway lets through what the other charged during
                    // one flush interval (plus timer slack: a loaded machine's
                    // timers are late), and the request that crosses; without
                    // sharing it would be 2 x limit.
                    assert.ok(tokens >= limit, `at least the limit: ${tokens}`);
                    assert.ok(tokens <= limit + rate * (syncRate + slow(0.4)) + 40, `overshoot bounded: ${tokens}`);
                    assert.ok(tokens < 2 * limit, `the gateways share the quota: ${tokens}`);
                    assert.ok(pa > 0 && pb > 0, 'both gateways served');
                    break;
                }
                // the quota is now shared: both nodes refuse
                assert.equal(await post(a), 429);
                assert.equal(await post(b), 429);
            } finally { await a.stop(); await b.stop(); }
        });
    }
});
