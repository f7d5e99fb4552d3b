/* claude-code.test.mjs - the how-to end to end: the real Claude Code CLI
 * (pinned in package-lock.json) through the real sluice binary (2 workers)
 * with etc/kong.yaml pointed at the mock DashScope; after each case, what
 * reached the provider and what file-log wrote.
 * Errors are only ever injected for the first attempt: the CLI retries
 * 429/5xx for minutes. */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
    startHowtoStack, runClaude, claudeSkip, claudeRequired, logMark, newLogRecords, show, tmpDir, CLIENT_KEY,
    startMock, startGateway, howtoConfig, readLog, waitLog, sleep, freePort, startProcess, ROOT, slow,
} from './harness.mjs';
import { checkUpstreamRequest, checkChatLogRecord, checkNoKeys, pairRecordsWithAnswers, UPSTREAM_URI } from './checks.mjs';

const skip = claudeSkip();
const CASE = { timeout: slow(120000) };

describe('Claude Code CLI through sluice with the how-to config', { skip, timeout: 900000 }, () => {
    let st;
    let mark = 0;
    before(async () => {
        claudeRequired();
        st = await startHowtoStack({ workers: 2 });
    });
    after(async () => { await st?.stop(); });
    beforeEach(async () => {
        await st.mock.reset();
        mark = logMark(st.logPath);
    });

    const claude = (opts) => runClaude({ baseUrl: st.anthropicBase, ...opts });
    const why = (r) => show({ code: r.code, stdout: r.stdout, stderr: r.stderr, gateway: st.gw.stderr.slice(-3000) }, 8000);

    test('a plain question, answered in streamed text', CASE, async () => {
        const text = 'Niketas Choniates was a Byzantine Greek historian who saw the sack of Constantinople in 1204.';
        await st.mock.scenario({ type: 'text', text, first_token_delay_ms: 300, token_delay_ms: 5 });
        const r = await claude({ prompt: 'Tell me who Niketas Choniates was.' });
        assert.equal(r.code, 0, why(r));
        assert.equal(r.json.is_error, false, why(r));
        assert.equal(r.json.result, text, why(r));
        const up = await st.mock.chatRequests();
        assert.equal(up.length, 1, show(up.map((q) => q.path)));
        checkUpstreamRequest(up[0], { stream: true, toolNames: ['Bash', 'Read', 'Edit'] });
        /* the usage the CLI shows is the provider's */
        assert.equal(r.json.usage.input_tokens + (r.json.usage.cache_read_input_tokens ?? 0) +
            (r.json.usage.cache_creation_input_tokens ?? 0), up[0].answer.usage.prompt_tokens);
        assert.equal(r.json.usage.output_tokens, up[0].answer.usage.completion_tokens);
        const recs = await newLogRecords(st.logPath, mark, 1);
        assert.equal(recs.length, 1, show(recs));
        checkChatLogRecord(recs[0], up[0].answer, { mode: 'stream' });
        assert.ok(recs[0].ai.proxy.usage.time_to_first_token >= 250,
            `time_to_first_token ${recs[0].ai.proxy.usage.time_to_first_token} ms with a 300 ms first token`);
        /* request.headers are the client's, as Kong logs them (the how-to's
         * sample record shows anthropic-version), not the upstream request's */
        assert.equal(recs[0].request.headers['anthropic-version'], '2023-06-01',
            `file-log request.headers lack the client's anthropic-version: ${show(recs[0].request.headers)}`);
    });

    /* DashScope International prices for qwen-plus (per 1M input tokens,
     * USD): input 0.4; explicit cache hit 10 %, cache creation 125 %. */
    const PRICE = { input: 0.4, read: 0.04, write: 0.5 };

    test('prompt caching: three turns of one session, cache reads reach the CLI\'s usage', CASE, async () => {
        const home = tmpDir('claude-home-');
        const work = tmpDir('claude-work-');
        const turns = [];
        try {
            for (const [i, prompt] of ['Say hello.', 'Say hello again.', 'And once more.'].entries()) {
                const r = await claude({ prompt, home, work, args: i ? ['--continue'] : [] });
                assert.equal(r.code, 0, why(r));
                assert.equal(r.json.is_error, false, why(r));
                turns.push(r);
            }
        } finally {
            fs.rmSync(home, { recursive: true, force: true });
            fs.rmSync(work, { recursive: true, force: true });
        }
        const up = (await st.mock.chatRequests()).filter((q) => q.answer?.status === 200);
        assert.equal(up.length, 3, show(up.map((q) => q.answer)));
        let withCache = 0;
        let without = 0;
        for (const [i, q] of up.entries()) {
            checkUpstreamRequest(q, { stream: true });
            const c = q.answer.cache;
            assert.ok(c && c.markers >= 1 && c.markers <= 4, `turn ${i + 1}: markers ${show(c)}`);
            const u = turns[i].json.usage;
            /* what the CLI shows is DashScope's, split the Anthropic way */
            assert.equal(u.cache_read_input_tokens, c.cached, `turn ${i + 1}: ${show(u)}`);
            assert.equal(u.cache_creation_input_tokens, c.created, `turn ${i + 1}: ${show(u)}`);
            assert.equal(u.input_tokens + c.cached + c.created, q.answer.usage.prompt_tokens);
            if (i > 0) assert.ok(u.cache_read_input_tokens > 0, `turn ${i + 1} read nothing from the cache: ${show(u)}`);
            withCache += u.input_tokens * PRICE.input + c.cached * PRICE.read + c.created * PRICE.write;
            without += q.answer.usage.prompt_tokens * PRICE.input;
        }
        const recs = await newLogRecords(st.logPath, mark, 3);
        assert.equal(recs.length, 3);
        for (const [rec, ans] of pairRecordsWithAnswers(recs, up)) {
            assert.equal(rec.ai.proxy.usage.prompt_tokens_details.cached_tokens, ans.cache.cached);
        }
        console.log(`# three-turn input cost (qwen-plus prices): ${(without / 1e6).toFixed(6)} USD without cache ` +
            `pass-through, ${(withCache / 1e6).toFixed(6)} USD with (${(100 * (1 - withCache / without)).toFixed(1)} % saved)`);
    });

    test('a tool round trip: Bash tool call, the CLI runs it, tool_result, final text quotes it', CASE, async () => {
        const r = await claude({
            prompt: 'Run the marker command with Bash and tell me what it printed. MOCK:tool_call',
            args: ['--allowedTools', 'Bash'],
        });
        assert.equal(r.code, 0, why(r));
        assert.match(r.json.result, /sluice-e2e-marker/, why(r));
        const up = await st.mock.chatRequests();
        assert.equal(up.length, 2, show(up.map((q) => q.answer)));
        for (const q of up) checkUpstreamRequest(q, { stream: true, toolNames: ['Bash'] });
        assert.equal(up[0].answer.tool_calls[0].name, 'Bash');
        /* second turn: assistant tool_calls with JSON-string arguments, then the tool result */
        const msgs = up[1].body.messages;
        const ai = msgs.findLast((m) => m.role === 'assistant');
        assert.ok(ai?.tool_calls?.length === 1, show(msgs.slice(-3)));
        const call = ai.tool_calls[0];
        assert.equal(call.type, 'function');
        assert.equal(call.function.name, 'Bash');
        assert.equal(JSON.parse(call.function.arguments).command, 'echo sluice-e2e-marker');
        const tool = msgs.find((m) => m.role === 'tool');
        assert.equal(tool.tool_call_id, call.id);
        assert.match(typeof tool.content === 'string' ? tool.content : JSON.stringify(tool.content), /sluice-e2e-marker/);
        assert.ok(msgs.indexOf(tool) > msgs.indexOf(ai));
        const recs = await newLogRecords(st.logPath, mark, 2);
        assert.equal(recs.length, 2);
        for (const [rec, ans] of pairRecordsWithAnswers(recs, up)) checkChatLogRecord(rec, ans, { mode: 'stream' });
    });

    test('a thinking answer (reasoning_content): the final text carries no reasoning', CASE, async () => {
        const reasoning = 'The user asks about a Byzantine historian; recall Choniates.';
        const text = 'He was a Byzantine historian.';
        await st.mock.scenario({ type: 'thinking', reasoning, text });
        const r = await claude({ prompt: 'Think, then answer: who was Niketas Choniates?', outputFormat: 'stream-json' });
        assert.equal(r.code, 0, why(r));
        const result = r.json.find((e) => e.type === 'result');
        assert.equal(result?.is_error, false, why(r));
        assert.equal(result.result, text, why(r));
        const blocks = r.json.filter((e) => e.type === 'assistant').flatMap((e) => e.message.content);
        assert.ok(!blocks.some((b) => b.type === 'text' && b.text.includes('Choniates.')), 'reasoning leaked into text');
        const up = await st.mock.chatRequests();
        assert.equal(up.length, 1);
        checkUpstreamRequest(up[0], { stream: true });
        const recs = await newLogRecords(st.logPath, mark, 1);
        checkChatLogRecord(recs[0], up[0].answer, { mode: 'stream' });
    });

    for (const status of [429, 500]) {
        test(`an upstream ${status} on the first attempt: the CLI retries and completes`, CASE, async () => {
            await st.mock.scenario({ type: 'error', status, count: 1 });
            const r = await claude({ prompt: 'Say hello.' });
            assert.equal(r.code, 0, why(r));
            assert.equal(r.json.result, 'Hello from mock DashScope.', why(r));
            const up = await st.mock.chatRequests();
            assert.equal(up.length, 2, show(up.map((q) => q.answer)));
            assert.equal(up[0].answer.status, status);
            for (const q of up) checkUpstreamRequest(q, { stream: true });
            const recs = await newLogRecords(st.logPath, mark, 2);
            assert.equal(recs.length, 2, show(recs));
            const failed = recs.filter((x) => x.response.status === status);
            assert.equal(failed.length, 1, show(recs.map((x) => x.response.status)));
            assert.equal(failed[0].upstream_uri, UPSTREAM_URI);
            assert.equal(failed[0].response.headers['x-kong-llm-model'], undefined, 'x-kong-llm-model only on 200');
            checkNoKeys(failed[0]);
            for (const [rec, ans] of pairRecordsWithAnswers(recs, up)) checkChatLogRecord(rec, ans, { mode: 'stream' });
        });
    }

    test('a model other than qwen-plus: the CLI exits non-zero with Kong\'s message', CASE, async () => {
        const r = await claude({ prompt: 'Say hello.', model: 'qwen-max' });
        assert.notEqual(r.code, 0, why(r));
        assert.match(r.stdout + r.stderr, /cannot use own model - must be: qwen-plus/, why(r));
        const up = await st.mock.chatRequests();
        assert.equal(up.length, 0, 'a refused request reached the provider');
        const recs = await newLogRecords(st.logPath, mark, 1, 400);
        assert.ok(recs.length >= 1);
        for (const rec of recs) {
            assert.equal(rec.response.status, 400, show(rec));
            checkNoKeys(rec);
        }
    });

    /* Measured with 2.1.332: a stream that ends in an error event before any
     * content block makes the CLI re-send with stream:false; after some text
     * it retries streaming instead. So the upstream breaks right after its
     * first (role-only) chunk. */
    test('the non-streaming fallback: after a broken stream the CLI sends stream:false', CASE, async () => {
        await st.mock.scenario({ type: 'reset', reset_after: 1 });
        const r = await claude({ prompt: 'Say hello.' });
        assert.equal(r.code, 0, why(r));
        assert.equal(r.json.result, 'Hello from mock DashScope.', why(r));
        const up = await st.mock.chatRequests();
        assert.ok(up.length >= 2, show(up.map((q) => q.answer)));
        assert.equal(up[0].body.stream, true);
        /* the CLI's stream:false request asks for thinking, which DashScope
         * does only when streaming: sluice streams it upstream and answers
         * the CLI with one message (request_mode oneshot in the log) */
        const recs = await newLogRecords(st.logPath, mark, up.length);
        assert.equal(recs.length, up.length);
        const oneshot = recs.filter((x) => x.ai?.proxy?.meta?.request_mode === 'oneshot');
        assert.equal(oneshot.length, 1, `the CLI did not fall back to stream:false: ${show(recs.map((x) => x.ai?.proxy?.meta))}`);
        const last = up[up.length - 1];
        checkUpstreamRequest(last, { stream: true });
        assert.equal(last.body.enable_thinking, true);
        assert.equal(last.answer.status, 200, show(last.answer));
        assert.equal(oneshot[0].ai.proxy.usage.completion_tokens, last.answer.usage.completion_tokens);
    });

    test('with non-essential traffic (as users run it): HEAD /api/hello is answered locally', CASE, async () => {
        const r = await claude({ prompt: 'Say hello.', nonessential: true });
        assert.equal(r.code, 0, why(r));
        assert.equal(r.json.result, 'Hello from mock DashScope.', why(r));
        const all = await st.mock.requests();
        assert.ok(all.every((q) => q.path.startsWith('/compatible-mode/v1/chat/completions')),
            `non-chat calls reached the provider: ${show(all.map((q) => `${q.method} ${q.path}`))}`);
        assert.equal(all.length, 1);
        const recs = await newLogRecords(st.logPath, mark, 2, 300);
        const hello = recs.filter((x) => /\/api\/hello$/.test(x.request.uri));
        assert.equal(hello.length, 1, show(recs.map((x) => `${x.request.method} ${x.request.uri} ${x.response.status}`)));
        assert.equal(hello[0].request.method, 'HEAD');
        assert.equal(hello[0].response.status, 404);
        for (const [rec, ans] of pairRecordsWithAnswers(recs, all)) checkChatLogRecord(rec, ans, { mode: 'stream' });
    });

    test('with ANTHROPIC_AUTH_TOKEN (Authorization: Bearer): replaced upstream, REDACTED in the log', CASE, async () => {
        const r = await claude({ prompt: 'Say hello.', env: { ANTHROPIC_AUTH_TOKEN: CLIENT_KEY, ANTHROPIC_API_KEY: null } });
        assert.equal(r.code, 0, why(r));
        const up = await st.mock.chatRequests();
        assert.equal(up.length, 1);
        checkUpstreamRequest(up[0], { stream: true });
        const recs = await newLogRecords(st.logPath, mark, 1);
        assert.equal(recs[0].request.headers.authorization, 'REDACTED');
        checkChatLogRecord(recs[0], up[0].answer, { mode: 'stream' });
    });

    test('the gateway stops cleanly on SIGTERM (exit 0, no sanitizer report)', { timeout: slow(30000) }, async () => {
        const s = await st.gw.stop();
        assert.equal(s.code, 0, `sluice exited ${s.code ?? s.signal}\n${st.gw.stderr.slice(-4000)}`);
        assert.ok(!/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(st.gw.stderr), st.gw.stderr.slice(-4000));
    });
});

/* A token quota (ai-rate-limiting-advanced) refusing the CLI: what it shows
 * and how it backs off. Measured with 2.1.332: a 429 whose Retry-After is
 * short (17-21 s seen) is waited out and retried once; a long one (127 s
 * and more) is not retried: the CLI exits at once with the message. */
describe('Claude Code CLI refused by a token quota', { skip, timeout: 300000 }, () => {
    let mock;
    before(async () => { claudeRequired(); mock = await startMock(); });
    after(async () => { await mock?.stop(); });

    async function quotaGateway(window) {
        const dir = tmpDir('sluice-quota-cli-');
        const logPath = path.join(dir, 'log.json');
        let cfg = howtoConfig({ upstreamUrl: mock.url, logPath });
        const i = cfg.indexOf('\nplugins:\n') + '\nplugins:\n'.length;
        cfg = `${cfg.slice(0, i)}  - name: ai-rate-limiting-advanced
    config:
      identifier: ip
      window_type: fixed
      llm_providers:
      - {name: dashscope, limit: [10], window_size: [${window}]}
${cfg.slice(i)}`;
        const gw = await startGateway({ config: cfg, workers: 2, env: { DECK_DASHSCOPE_API_KEY: mock.key } });
        return { gw, logPath, base: `${gw.base}/anything` };
    }

    /* Use up the quota with one answer of 25 tokens (limit 10). */
    async function spend(base) {
        const r = await fetch(`${base}/v1/messages`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', 'x-api-key': CLIENT_KEY },
            body: JSON.stringify({ model: 'qwen-plus', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
        });
        const text = await r.text();
        assert.equal(r.status, 200, text);
    }

    test('a long Retry-After: the CLI shows the rate_limit_error at once and does not retry', CASE, async () => {
        /* a day's fixed window (an hour's ended during a loaded run: the
         * CLI got a short Retry-After, waited and was answered); not within
         * 3 minutes of its end, the CLI takes seconds to start */
        const day = 86400;
        const toEnd = day * 1000 - Date.now() % (day * 1000);
        if (toEnd < 180000) await sleep(toEnd + 100);
        const { gw, logPath, base } = await quotaGateway(day);
        try {
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 20, completion_tokens: 5 }, count: 10 });
            await spend(base);
            const r = await runClaude({ baseUrl: base, prompt: 'Say hello.', timeoutMs: 60000 });
            const why = show({ code: r.code, stdout: r.stdout, stderr: r.stderr }, 6000);
            assert.notEqual(r.code, 0, why);
            assert.equal(r.json?.is_error, true, why);
            /* what the user reads */
            assert.match(r.json.result, /429.*AI token rate limit exceeded for provider\(s\): dashscope/, why);
            // file-log writes after the answer: the spend's record and the 429's
            await waitLog(logPath, 2, slow(10000));
            await sleep(300);
            const refused = readLog(logPath).filter((x) => x.response.status === 429);
            assert.equal(refused.length, 1, 'one attempt, no hammering');
            assert.ok(Number(refused[0].response.headers['retry-after']) > 60);
            assert.equal((await mock.chatRequests()).length, 1, 'the refused request never reached the provider');
        } finally { await gw.stop(); }
    });

    test('a short Retry-After: the CLI waits it out, retries once and gets its answer', CASE, async () => {
        const window = 20;
        const { gw, logPath, base } = await quotaGateway(window);
        try {
            await mock.reset();
            await mock.scenario({ usage: { prompt_tokens: 20, completion_tokens: 5 }, count: 10 });
            /* spend early in a window, so that the CLI (a few seconds to
             * start) is refused in the same window */
            while (Math.floor(Date.now() / 1000) % window > 4) await sleep(100);
            await spend(base);
            const r = await runClaude({ baseUrl: base, prompt: 'Say hello.', timeoutMs: 90000 });
            const why = show({ code: r.code, stdout: r.stdout, stderr: r.stderr, log: readLog(logPath) }, 6000);
            assert.equal(r.code, 0, why);
            assert.equal(r.json.result, 'Hello from mock DashScope.', why);
            await waitLog(logPath, 3, slow(10000));
            await sleep(300);
            const recs = readLog(logPath).slice(1).sort((a, b) => a.started_at - b.started_at);
            assert.deepEqual(recs.map((x) => x.response.status), [429, 200], why);
            const ra = Number(recs[0].response.headers['retry-after']);
            assert.ok(ra >= 1 && ra <= window, why);
            const waited = recs[1].started_at - recs[0].started_at;
            assert.ok(waited >= (ra - 1) * 1000, `the CLI retried after ${waited} ms, Retry-After ${ra} s`);
        } finally { await gw.stop(); }
    });
});

/* ai-proxy-advanced (docs/ai-proxy-advanced.md): Claude Code's own model
 * names map to three Qwen models through glob aliases, so the CLI runs with
 * ANTHROPIC_MODEL unset; every request it makes must succeed, and the log
 * shows which target served which. */
describe('Claude Code CLI through ai-proxy-advanced, ANTHROPIC_MODEL unset', { skip, timeout: 600000 }, () => {
    let mock, gw, logPath;
    const TARGETS = { sonnet: 'qwen3-coder-plus', opus: 'qwen3-max', haiku: 'qwen-flash' };
    before(async () => {
        claudeRequired();
        mock = await startMock({ maxTokensCap: 65536 }); /* the models' own bounds (ai-proxy clamps to them) */
        const dir = tmpDir('sluice-cc-aa-');
        logPath = `${dir}/claude.json`;
        const t = (name, alias, weight = 100) => `
        - route_type: llm/v1/chat
          weight: ${weight}
          auth: {header_name: Authorization, header_value: "Bearer ${mock.key}"}
          logging: {log_statistics: true}
          model: {provider: dashscope, name: ${name}, model_alias: "${alias}", options: {upstream_url: "${mock.url}"}}`;
        gw = await startGateway({
            config: `_format_version: "3.0"
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
        balancer: {algorithm: priority, retries: 2, failover_criteria: [error, timeout, http_429, http_500, non_idempotent]}
        targets:${t(TARGETS.sonnet, 'claude-sonnet-*')}${t(TARGETS.opus, 'claude-opus-*')}${t(TARGETS.haiku, 'claude-haiku-*')}${t('qwen-plus', 'claude-sonnet-*', 10)}${t('qwen-plus', 'claude-opus-*', 10)}
    - name: file-log
      config: {path: "${logPath}"}
`,
        });
    });
    after(async () => { await gw?.stop(); await mock?.stop(); });

    const why = (r) => show({ code: r.code, stdout: r.stdout, stderr: r.stderr, gateway: gw.stderr.slice(-3000) }, 8000);
    const claude = (opts) => runClaude({ baseUrl: `${gw.base}/anything`, nonessential: true, ...opts,
        env: { ANTHROPIC_MODEL: null, ...(opts.env ?? {}) } });

    test('the default model, non-essential traffic on: every request succeeds through the aliases', CASE, async () => {
        await mock.reset();
        const mark = logMark(logPath);
        const r = await claude({ prompt: 'Say hello.' });
        assert.equal(r.code, 0, why(r));
        assert.equal(r.json.is_error, false, why(r));
        const up = await mock.chatRequests();
        assert.ok(up.length >= 1);
        assert.ok(up.every((q) => Object.values(TARGETS).includes(q.body.model)), show(up.map((q) => q.body.model)));
        /* the CLI's default main model is a Sonnet or Opus name, depending on the release */
        assert.ok(up.some((q) => [TARGETS.sonnet, TARGETS.opus].includes(q.body.model)), show(up.map((q) => q.body.model)));
        const recs = (await newLogRecords(logPath, mark, up.length)).filter((x) => /\/v1\/messages/.test(x.request.uri));
        for (const rec of recs) {
            assert.ok(rec.response.status < 400, show(rec));
            if (!/count_tokens/.test(rec.request.uri)) {
                assert.equal(rec.response.headers['x-kong-llm-model'], `dashscope/${rec.ai.proxy.meta.request_model}`);
            }
        }
    });

    test('a 429 from the first choice: the fallback answers, the CLI never sees it', CASE, async () => {
        await mock.reset();
        const mark = logMark(logPath);
        await mock.scenario({ type: 'error', status: 429, count: 1 });
        const r = await claude({ prompt: 'Say hello.' });
        assert.equal(r.code, 0, why(r));
        assert.equal(r.json.is_error, false, why(r));
        const up = await mock.chatRequests();
        assert.equal(up[0].answer.status, 429, show(up.map((q) => q.answer)));
        assert.equal(up[1].body.model, 'qwen-plus', show(up.map((q) => q.body.model)));
        const recs = (await newLogRecords(logPath, mark, up.length - 1))
            .filter((x) => /\/v1\/messages\?/.test(x.request.uri));
        const failed = recs.find((x) => x.tries.length === 2);
        assert.ok(failed, show(recs.map((x) => x.tries)));
        assert.equal(failed.response.status, 200);
        assert.equal(failed.response.headers['x-kong-llm-model'], 'dashscope/qwen-plus');
        assert.equal(failed.ai.proxy.meta.request_model, 'qwen-plus');
    });

    test('--model haiku with ANTHROPIC_DEFAULT_HAIKU_MODEL, --model opus: each alias reaches its target', CASE, async () => {
        await mock.reset();
        let r = await claude({ prompt: 'Say hello.', args: ['--model', 'haiku'],
            env: { ANTHROPIC_DEFAULT_HAIKU_MODEL: 'claude-haiku-4-5-20251001' } });
        assert.equal(r.code, 0, why(r));
        let up = await mock.chatRequests();
        assert.ok(up.length >= 1 && up.every((q) => q.body.model === TARGETS.haiku), show(up.map((q) => q.body.model)));
        await mock.reset();
        r = await claude({ prompt: 'Say hello.', args: ['--model', 'opus'] });
        assert.equal(r.code, 0, why(r));
        up = await mock.chatRequests();
        assert.ok(up.some((q) => q.body.model === TARGETS.opus), show(up.map((q) => q.body.model)));
        assert.ok(up.every((q) => Object.values(TARGETS).includes(q.body.model)), show(up.map((q) => q.body.model)));
    });
});

/* README.md's "Metrics" section, as written: its prometheus plugin block
 * added to the how-to config, the status listener as its command line sets
 * it, a Claude Code session, the README's `curl .../metrics | grep`, and a
 * real Prometheus scraping the README's target answering the README's
 * query with the session's tokens per model (the file-log records' usage,
 * the numbers Kong's exporter reads). */
describe('README "Metrics": a Claude Code session scraped by Prometheus', { skip, timeout: 300000 }, () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const at = readme.indexOf('\n## Metrics\n');
    const section = readme.slice(at, readme.indexOf('\n## ', at + 1));
    let mock, gw, prom, logPath, statusPort;
    after(async () => {
        await prom?.stop();
        await gw?.stop();
        await mock?.stop();
    });

    test('the README\'s config, listener, scrape target and query give the session\'s tokens per model', CASE, async () => {
        claudeRequired();
        assert.ok(at >= 0, 'README.md has a "## Metrics" section');
        const yaml = /```yaml\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
        assert.match(yaml, /^plugins:\n- name: prometheus\n/, 'the README shows a prometheus plugin block');
        const sh = /```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
        const listen = /SLUICE_STATUS_LISTEN=(\d+) sluice -d kong\.yaml/.exec(sh);
        const curl = /curl -s 127\.0\.0\.1:(\d+)\/metrics \| grep (\w+)/.exec(sh);
        const target = /static_configs: \[\{targets: \['127\.0\.0\.1:(\d+)'\]\}\]/.exec(section);
        const query = /`(sum by \(ai_model, token_type\) \([^`]*\))`/.exec(section)?.[1];
        assert.ok(listen && curl && target && query, 'the README shows the listener, the curl, the target and the query');
        assert.ok(listen[1] === curl[1] && curl[1] === target[1], 'one status port throughout');

        // the README's block, as one more entry of the how-to config's plugins list
        const extra = `\n${yaml.replace(/^plugins:\n/, '').split('\n').filter(Boolean).map((l) => `  ${l}`).join('\n')}\n`;
        mock = await startMock();
        logPath = path.join(tmpDir('sluice-readme-metrics-'), 'claude.json');
        statusPort = await freePort(); // the README's 8100 may be taken here
        gw = await startGateway({
            config: howtoConfig({ upstreamUrl: mock.url, logPath, extra }), workers: 2,
            env: { DECK_DASHSCOPE_API_KEY: mock.key, SLUICE_STATUS_LISTEN: String(statusPort) },
        });

        await mock.scenario({ type: 'text', text: 'Prometheus scrapes the status listener.', token_delay_ms: 2 });
        const r = await runClaude({ baseUrl: `${gw.base}/anything`, prompt: 'How does Prometheus get the metrics?' });
        assert.equal(r.code, 0, show({ stdout: r.stdout, stderr: r.stderr }));
        assert.equal(r.json.is_error, false, show(r.json));
        const up = await mock.chatRequests();
        assert.ok(up.length >= 1);
        const recs = (await newLogRecords(logPath, 0, up.length)).filter((x) => x.ai?.proxy?.usage);
        assert.equal(recs.length, up.length, show(recs.map((x) => x.request.uri)));
        const want = {};
        for (const x of recs) {
            for (const t of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
                const k = `${x.ai.proxy.meta.request_model}/${t}`;
                want[k] = (want[k] ?? 0) + x.ai.proxy.usage[t];
            }
        }
        assert.ok(want['qwen-plus/total_tokens'] > 0, show(want));

        // curl -s 127.0.0.1:PORT/metrics | grep kong_ai_llm_tokens_total
        const text = await fetch(`http://127.0.0.1:${statusPort}/metrics`).then((x) => x.text());
        const lines = text.split('\n').filter((l) => l.includes(curl[2]) && !l.startsWith('#'));
        const shown = /^# (kong_ai_llm_tokens_total\{[^}]*\}) \d+$/m.exec(sh)?.[1];
        assert.ok(shown, 'the README shows a kong_ai_llm_tokens_total line');
        const line = lines.find((l) => l.startsWith(`${shown} `));
        assert.ok(line, `the README's series ${shown} is not in:\n${lines.join('\n')}`);
        assert.equal(Number(line.slice(shown.length + 1)), want['qwen-plus/prompt_tokens']);

        // Prometheus with the README's target (this run's port) and query
        const pdir = tmpDir('sluice-readme-prometheus-');
        const pport = await freePort();
        fs.writeFileSync(path.join(pdir, 'prometheus.yml'),
            'global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sluice\n' +
            `    static_configs: [{targets: ['127.0.0.1:${statusPort}']}]\n`);
        prom = startProcess('prometheus', [
            `--config.file=${path.join(pdir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(pdir, 'data')}`,
            `--web.listen-address=127.0.0.1:${pport}`, '--log.level=warn',
        ]);
        let got = {};
        for (const t0 = Date.now(); Date.now() - t0 < 60000; await sleep(250)) {
            try {
                const res = await fetch(`http://127.0.0.1:${pport}/api/v1/query?query=${encodeURIComponent(query)}`)
                    .then((x) => x.json());
                got = Object.fromEntries(res.data.result.map((s) => [`${s.metric.ai_model}/${s.metric.token_type}`, Number(s.value[1])]));
                if (JSON.stringify(Object.entries(got).sort()) === JSON.stringify(Object.entries(want).sort())) break;
            } catch { /* not up yet */ }
        }
        assert.deepEqual(got, want, `prometheus stderr:\n${prom.stderr}`);
    });
});
