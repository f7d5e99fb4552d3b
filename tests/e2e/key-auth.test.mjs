/* key-auth.test.mjs - the how-to config plus key-auth (key_names:
 * [x-api-key], hide_credentials) and two consumers: each Claude Code user
 * authenticates with their own ANTHROPIC_API_KEY.  With the Anthropic SDK
 * and the real Claude Code CLI: a consumer's key works, an unknown key is
 * refused with Kong's 401 (and the CLI shows it), the client key never
 * reaches the provider and the provider key never reaches the client,
 * file-log carries the consumer, and a consumer-scoped ai-proxy applies
 * to that consumer only. */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import {
    startMock, startGateway, howtoConfig, tmpDir, runClaude, claudeSkip, logMark,
    newLogRecords, show, MOCK_KEY, slow,
} from './harness.mjs';
import { checkUpstreamRequest, checkNoKeys } from './checks.mjs';
import path from 'node:path';

const ALICE_KEY = 'sk-ant-alice-0123456789';
const BOB_KEY = 'sk-ant-bob-9876543210';
const WRONG_KEY = 'sk-ant-nobody-000';
const CASE = { timeout: slow(120000) };

/* appended to the how-to's top-level plugins list, then consumers */
const extra = (mockUrl) => `
  - name: key-auth
    config:
      key_names: [x-api-key]
      hide_credentials: true
consumers:
  - username: alice
    custom_id: team-a
    keyauth_credentials:
      - key: ${ALICE_KEY}
  - username: bob
    keyauth_credentials:
      - key: ${BOB_KEY}
    plugins:
      - name: ai-proxy
        config:
          llm_format: anthropic
          route_type: llm/v1/chat
          logging: {log_statistics: true, log_payloads: false}
          auth:
            header_name: Authorization
            header_value: Bearer \${{ env "DECK_DASHSCOPE_API_KEY" }}
          model:
            provider: dashscope
            name: qwen-max
            options: {max_tokens: 8192, temperature: 1.0, upstream_url: "${mockUrl}"}
`;

describe('key-auth with consumers in front of the how-to', { timeout: slow(600000) }, () => {
    let mock;
    let gw;
    let logPath;
    let mark = 0;
    let base;
    before(async () => {
        mock = await startMock();
        logPath = path.join(tmpDir('sluice-keyauth-'), 'claude.json');
        const config = howtoConfig({ upstreamUrl: mock.url, logPath, extra: extra(mock.url) });
        gw = await startGateway({ config, workers: 2, env: { DECK_DASHSCOPE_API_KEY: mock.key } });
        base = `${gw.base}/anything`;
    });
    after(async () => {
        await gw?.stop();
        await mock?.stop();
    });
    beforeEach(async () => {
        await mock.reset();
        mark = logMark(logPath);
    });

    /* The SDK (1.x) sends apiKey as Authorization: Bearer, which ai-proxy
     * replaces; key-auth reads x-api-key, the header Claude Code sends. */
    const sdk = (apiKey) => new Anthropic({
        apiKey, baseURL: base, maxRetries: 0, defaultHeaders: { 'x-api-key': apiKey },
    });
    const ask = (apiKey, model = 'qwen-plus') => sdk(apiKey).messages.create({
        model, max_tokens: 256, messages: [{ role: 'user', content: 'Hello' }],
    }).withResponse();

    test('SDK: a consumer\'s key works; keys stay where they belong; file-log has the consumer', CASE, async () => {
        const { data: msg, response } = await ask(ALICE_KEY);
        assert.equal(msg.type, 'message');
        assert.ok(!JSON.stringify([...response.headers]).includes(MOCK_KEY), 'provider key sent to the client');
        const [up] = await mock.chatRequests();
        checkUpstreamRequest(up, { stream: false, path: '/compatible-mode/v1/chat/completions' });
        assert.ok(!JSON.stringify(up.headers).includes(ALICE_KEY), 'client key reached the provider');
        assert.equal(up.headers['x-consumer-username'], 'alice');
        assert.equal(up.headers['x-consumer-custom-id'], 'team-a');
        const [rec] = await newLogRecords(logPath, mark, 1);
        assert.equal(rec.consumer?.username, 'alice', show(rec));
        assert.equal(rec.consumer.custom_id, 'team-a');
        assert.equal(rec.authenticated_entity.consumer_id, rec.consumer.id);
        assert.match(rec.authenticated_entity.id, /^[0-9a-f-]{36}$/);
        assert.ok(!JSON.stringify(rec).includes(ALICE_KEY), 'client key in the log');
        checkNoKeys(rec);
    });

    test('SDK: an unknown key is an AuthenticationError with Kong\'s message; a missing one too', CASE, async () => {
        await assert.rejects(ask(WRONG_KEY), (err) => {
            assert.ok(err instanceof Anthropic.AuthenticationError, String(err));
            assert.equal(err.status, 401);
            assert.equal(err.error?.message, 'Unauthorized', show(err.error));
            assert.equal(err.headers?.get?.('www-authenticate') ?? err.headers?.['www-authenticate'], 'Key');
            return true;
        });
        const res = await fetch(`${base}/v1/messages`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
        assert.equal(res.status, 401);
        assert.equal((await res.json()).message, 'No API key found in request');
        assert.equal((await mock.chatRequests()).length, 0, 'a refused request reached the provider');
        const recs = await newLogRecords(logPath, mark, 2);
        for (const rec of recs) {
            assert.equal(rec.response.status, 401);
            assert.equal(rec.consumer, undefined);
            assert.ok(!JSON.stringify(rec).includes(WRONG_KEY), 'the refused key is in the log');
        }
    });

    test('a consumer-scoped ai-proxy applies to that consumer only', CASE, async () => {
        await ask(BOB_KEY, 'qwen-max');
        await ask(ALICE_KEY, 'qwen-plus');
        const ups = await mock.chatRequests();
        assert.equal(ups.length, 2);
        const byUser = Object.fromEntries(ups.map((u) => [u.headers['x-consumer-username'], u.body.model]));
        assert.deepEqual(byUser, { bob: 'qwen-max', alice: 'qwen-plus' });
        /* bob's ai-proxy is the one that runs for him: Kong's model check */
        await assert.rejects(ask(BOB_KEY, 'qwen-plus'), /must be: qwen-max/);
        await assert.rejects(ask(ALICE_KEY, 'qwen-max'), /must be: qwen-plus/);
    });

    const skip = claudeSkip();
    test('Claude Code: alice\'s ANTHROPIC_API_KEY works', { ...CASE, skip }, async () => {
        const text = 'Keys checked, welcome alice.';
        await mock.scenario({ type: 'text', text });
        const r = await runClaude({ baseUrl: base, prompt: 'Say hello.', env: { ANTHROPIC_API_KEY: ALICE_KEY } });
        const why = show({ code: r.code, stdout: r.stdout, stderr: r.stderr, gateway: gw.stderr.slice(-2000) }, 6000);
        assert.equal(r.code, 0, why);
        assert.equal(r.json?.result, text, why);
        const ups = await mock.chatRequests();
        assert.ok(ups.length >= 1, why);
        for (const up of ups) {
            assert.equal(up.headers['x-consumer-username'], 'alice');
            assert.ok(!JSON.stringify(up.headers).includes(ALICE_KEY), 'client key reached the provider');
        }
    });

    test('Claude Code: an unknown key is refused and the CLI shows the 401 message', { ...CASE, skip }, async () => {
        /* the CLI retries 401s with backoff for minutes by its own policy
         * (as it would against Kong): one attempt is enough here */
        const r = await runClaude({
            baseUrl: base, prompt: 'Say hello.',
            env: { ANTHROPIC_API_KEY: WRONG_KEY, CLAUDE_CODE_MAX_RETRIES: '0' },
        });
        const why = show({ code: r.code, stdout: r.stdout, stderr: r.stderr }, 6000);
        assert.notEqual(r.code, 0, why);
        assert.equal(r.json?.is_error, true, why);
        /* what the user reads: "Failed to authenticate. API Error: 401 Unauthorized" */
        assert.match(r.json.result, /401 Unauthorized/, why);
        assert.equal((await mock.chatRequests()).length, 0, 'a refused request reached the provider');
    });
});
