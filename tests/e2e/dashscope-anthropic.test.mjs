/* dashscope-anthropic.test.mjs - model.options.dashscope.api: anthropic (a
 * sluice extension): Anthropic Messages requests pass through to DashScope's
 * Anthropic-compatible endpoint with the gateway's key, model and options;
 * answers (streamed or not) pass through unchanged; usage for the log comes
 * from message_delta, not from message_start (which carries the whole
 * prompt there); count_tokens stays local. Against the mock, real sluice. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startMock, startGateway, tmpDir, waitLog, show, CLIENT_KEY, slow } from './harness.mjs';

describe('DashScope\'s Anthropic-compatible endpoint (api: anthropic)', { timeout: slow(60000) }, () => {
    let mock;
    let gw;
    let logPath;
    before(async () => {
        mock = await startMock();
        logPath = path.join(tmpDir(), 'log.json');
        gw = await startGateway({
            workers: 1,
            config: `_format_version: "3.0"
services:
- name: llm
  url: http://127.0.0.1:9/
  routes:
  - name: claude
    paths: ["/anything"]
    plugins:
    - name: ai-proxy
      config:
        route_type: llm/v1/chat
        llm_format: anthropic
        logging: {log_statistics: true}
        auth: {header_name: x-api-key, header_value: ${mock.key}}
        model:
          provider: dashscope
          name: qwen-plus
          options:
            max_tokens: 2048
            upstream_url: http://127.0.0.1:${mock.port}
            dashscope: {api: anthropic}
plugins:
- name: file-log
  config: {path: ${JSON.stringify(logPath)}}
`,
        });
    });
    after(async () => {
        await gw?.stop();
        await mock?.stop?.();
    });

    const big = 'x'.repeat(8000);
    const body = (stream) => JSON.stringify({
        model: 'qwen-plus', max_tokens: 32000, stream,
        system: [{ type: 'text', text: big, cache_control: { type: 'ephemeral' } }],
        messages: [{ role: 'user', content: 'Say hello.' }],
    });
    const post = (p, b) => fetch(`${gw.base}${p}`, {
        method: 'POST', body: b,
        headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY, 'anthropic-version': '2023-06-01' },
    });

    test('non-streamed and streamed: passed through, cache usage in the log from message_delta', async () => {
        let r = await post('/anything/v1/messages', body(false));
        assert.equal(r.status, 200);
        const msg = await r.json();
        assert.equal(msg.type, 'message');
        assert.equal(msg.content[0].text, 'Hello from mock DashScope.');
        r = await post('/anything/v1/messages', body(true));
        assert.equal(r.status, 200);
        const sse = await r.text();
        assert.match(sse, /event: message_start/);
        assert.match(sse, /event: message_stop/);
        const up = (await mock.requests()).filter((q) => q.path.startsWith('/apps/anthropic/v1/messages'));
        assert.equal(up.length, 2, show(up.map((q) => q.path)));
        for (const q of up) {
            assert.equal(q.headers['x-api-key'], mock.key);
            assert.ok(!JSON.stringify(q.headers).includes(CLIENT_KEY));
            assert.equal(q.body.model, 'qwen-plus');
            assert.equal(q.body.max_tokens, 2048, 'the config option applies');
            assert.equal(q.body.system[0].cache_control.type, 'ephemeral', 'markers pass through');
        }
        /* the second request hits the cache the first one wrote */
        assert.ok(up[1].answer.cache.cached > 0, show(up[1].answer));
        const recs = await waitLog(logPath, 2);
        const s = recs.find((x) => x.ai?.proxy?.meta?.request_mode === 'stream');
        assert.ok(s, show(recs));
        assert.equal(s.ai.proxy.usage.prompt_tokens, up[1].answer.prompt_tokens);
        assert.equal(s.ai.proxy.usage.prompt_tokens_details.cached_tokens, up[1].answer.cache.cached);
        assert.equal(s.ai.proxy.usage.completion_tokens, up[1].answer.usage.output_tokens);
    });

    test('count_tokens stays local', async () => {
        await mock.reset();
        const r = await post('/anything/v1/messages/count_tokens',
            JSON.stringify({ model: 'qwen-plus', messages: [{ role: 'user', content: 'hi' }] }));
        assert.equal(r.status, 200);
        assert.ok((await r.json()).input_tokens > 0);
        assert.equal((await mock.requests()).length, 0);
    });
});
