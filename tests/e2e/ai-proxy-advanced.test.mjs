/* ai-proxy-advanced.test.mjs - Kong's multi-target ai-proxy through the real
 * binary: several mock DashScope processes on loopback are the targets (one
 * spoken to as provider dashscope, one as provider openai, one through
 * DashScope's Anthropic-compatible endpoint), each scripted to succeed,
 * answer 429/500, answer slowly, or not listen at all.  Model aliases (glob
 * included), weighted round-robin proportions, priority fallback, the circuit
 * breaker opening and half-opening (the failing mock's request count proves
 * it is skipped), lowest-latency, consistent hashing on Claude Code's session
 * header, x-kong-llm-model and file-log's ai.proxy.meta naming the target
 * that answered.  Failover within one request (ABI 1.2's balancer phase) is
 * tested when the binary has it. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import net from 'node:net';
import Anthropic from '@anthropic-ai/sdk';
import { startMock, startGateway, runSluice, tmpDir, waitLog, sleep, CLIENT_KEY, PLUGINS_DIR, slow } from './harness.mjs';

const CASE = { timeout: slow(60000) };
const ABI_MINOR = Number((/plugin ABI 1\.(\d+)/.exec(runSluice(['-V']).stdout) || [0, 0])[1]);
const FAILOVER = ABI_MINOR >= 2;

/* a loopback port nobody listens on (bound, then closed) */
async function deadPort() {
    const s = net.createServer();
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    const p = s.address().port;
    await new Promise((r) => s.close(r));
    return p;
}

function target(mock, { name, alias, provider = 'dashscope', weight, url, extra = '' }) {
    const u = url ?? mock.url;
    return `
        - route_type: llm/v1/chat
          ${weight ? `weight: ${weight}` : ''}
          auth: {header_name: Authorization, header_value: "Bearer ${mock ? mock.key : 'unused'}"}
          logging: {log_statistics: true}
          model:
            provider: ${provider}
            name: ${name}
            ${alias ? `model_alias: "${alias}"` : ''}
            options: {upstream_url: "${u}"${extra}}`;
}

function config({ targets, balancer = '{}', extra = '', logPath, service = '' }) {
    return `_format_version: "3.0"
services:
- name: llm
  url: http://127.0.0.1:9/unused
  ${service}
  routes:
  - name: claude
    paths: ["/anything"]
    plugins:
    - name: ai-proxy-advanced
      config:
        llm_format: anthropic
        balancer: ${balancer}
        ${extra}
        targets:${targets.join('')}
    - name: file-log
      config: {path: "${logPath}"}
`;
}

async function ask(gw, { model = 'claude-sonnet-4-5', headers = {}, stream = false, body = {} } = {}) {
    const r = await fetch(`${gw.base}/anything/v1/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-api-key': CLIENT_KEY, ...headers },
        body: JSON.stringify({ model, max_tokens: 64, stream, messages: [{ role: 'user', content: 'Hello' }], ...body }),
    });
    return { status: r.status, model: r.headers.get('x-kong-llm-model'), text: await r.text() };
}

const count = async (m) => (await m.chatRequests()).length;

describe('ai-proxy-advanced', { timeout: slow(600000) }, () => {
    let A, B, C, dir;
    before(async () => {
        [A, B, C] = await Promise.all([startMock(), startMock(), startMock()]);
        dir = tmpDir('sluice-aa-');
    });
    after(async () => { await Promise.all([A?.stop(), B?.stop(), C?.stop()]); });

    async function gateway(opts, workers = 2) {
        const logPath = path.join(dir, `log-${Math.random().toString(36).slice(2)}.json`);
        await Promise.all([A.reset(), B.reset(), C.reset()]);
        const gw = await startGateway({ config: config({ ...opts, logPath }), workers });
        gw.logPath = logPath;
        const stop = gw.stop;
        /* a clean exit, and no sanitizer report in a sanitizer build */
        gw.stop = async () => {
            const st = await stop();
            assert.equal(st.code, 0, gw.stderr.slice(-3000));
            assert.ok(!/ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:/.test(gw.stderr), gw.stderr.slice(-4000));
            return st;
        };
        return gw;
    }

    test('aliases: glob and exact aliases, names, provider,model; Kong\'s 400 lists the accepted names', CASE, async () => {
        const gw = await gateway({
            targets: [
                target(A, { name: 'qwen3-coder-plus', alias: 'claude-sonnet-*' }),
                target(B, { name: 'qwen-flash', alias: 'claude-haiku-*', provider: 'openai' }),
                target(C, { name: 'qwen3-max', alias: 'opus' }),
            ],
        });
        try {
            const client = new Anthropic({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/anything`, maxRetries: 0 });
            const { data: msg, response } = await client.messages.create({
                model: 'claude-sonnet-4-5', max_tokens: 64, messages: [{ role: 'user', content: 'Hello' }],
            }, { headers: { 'x-seq': '0' } }).withResponse();
            assert.equal(msg.type, 'message');
            assert.equal(response.headers.get('x-kong-llm-model'), 'dashscope/qwen3-coder-plus');
            /* the provider is called with the target's name, not the alias */
            const [sent] = await A.chatRequests();
            assert.equal(sent.body.model, 'qwen3-coder-plus');

            let r = await ask(gw, { model: 'claude-haiku-4-5-20251001', headers: { 'x-seq': '1' } });
            assert.equal(r.status, 200, r.text);
            assert.equal(r.model, 'openai/qwen-flash');
            r = await ask(gw, { model: 'opus', headers: { 'x-seq': '2' } });
            assert.equal(r.model, 'dashscope/qwen3-max');
            r = await ask(gw, { model: 'qwen-flash', headers: { 'x-seq': '3' } }); /* a target's name */
            assert.equal(r.model, 'openai/qwen-flash');
            r = await ask(gw, { model: 'dashscope,qwen3-max', headers: { 'x-seq': '4' } }); /* claude-code-router's form */
            assert.equal(r.model, 'dashscope/qwen3-max');
            r = await ask(gw, { model: 'gpt-4o' });
            assert.equal(r.status, 400);
            assert.deepEqual(JSON.parse(r.text).error, {
                type: 'invalid_request_error',
                message: 'cannot use own model - must be one of: opus, claude-sonnet-*, claude-haiku-*, qwen3-coder-plus, qwen-flash, qwen3-max',
            });
            /* count_tokens is answered locally for an alias too */
            const ct = await fetch(`${gw.base}/anything/v1/messages/count_tokens`, {
                method: 'POST', headers: { 'content-type': 'application/json' },
                body: JSON.stringify({ model: 'claude-haiku-4-5', messages: [{ role: 'user', content: 'Hello there' }] }),
            });
            assert.equal(ct.status, 200);
            assert.ok((await ct.json()).input_tokens > 0);
            /* malformed JSON: ai-proxy's own 400, whatever the model scan saw */
            const bad = await fetch(`${gw.base}/anything/v1/messages`, {
                method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":"opus","messages":[',
            });
            assert.equal(bad.status, 400);
            assert.match((await bad.json()).error.message, /invalid JSON/);
            assert.equal(await count(A), 1);
            assert.equal(await count(B), 2);
            assert.equal(await count(C), 2);
            /* file-log: ai.proxy.meta names the target that answered */
            /* eight requests, two workers: a record is written after its
             * answer, so the next request's worker may write first; the
             * x-seq header each request carries puts them back in order */
            const recs = (await waitLog(gw.logPath, 8))
                .sort((x, y) => Number(x.request.headers['x-seq'] ?? 99) - Number(y.request.headers['x-seq'] ?? 99));
            assert.equal(recs.length, 8);
            const meta = recs.filter((x) => x.ai).map((x) => `${x.ai.proxy.meta.provider_name}/${x.ai.proxy.meta.request_model}`);
            assert.deepEqual(meta, ['dashscope/qwen3-coder-plus', 'openai/qwen-flash', 'dashscope/qwen3-max',
                'openai/qwen-flash', 'dashscope/qwen3-max']);
            assert.equal(recs[1].tries.at(-1).port, B.port);
            /* no key of one target reaches another, none reaches the log */
            const all = fs.readFileSync(gw.logPath, 'utf8');
            assert.ok(!all.includes(A.key) && !all.includes(CLIENT_KEY));
        } finally { await gw.stop(); }
    });

    test('config errors are named by their path', CASE, async () => {
        const cfgPath = path.join(dir, 'bad.yaml');
        fs.writeFileSync(cfgPath, config({
            targets: [target(A, { name: 'qwen-plus', alias: 'x' })],
            balancer: '{algorithm: semantic}', logPath: '/dev/null',
        }));
        let r = runSluice(['-t', '-d', cfgPath, '--plugins-dir', PLUGINS_DIR]);
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, /config\.balancer\.algorithm: "semantic" is not supported yet by sluice/);
        fs.writeFileSync(cfgPath, config({ targets: [], logPath: '/dev/null' }).replace('targets:', 'targets: []'));
        r = runSluice(['-t', '-d', cfgPath, '--plugins-dir', PLUGINS_DIR]);
        assert.match(r.stderr, /config\.targets: length must be at least 1/);
    });

    test('weighted round-robin: 70/30 within 5 % over 1,000 requests, across 2 workers', CASE, async () => {
        const gw = await gateway({
            targets: [
                target(A, { name: 'qwen-plus', alias: 'claude-*', weight: 70 }),
                target(B, { name: 'qwen-plus', alias: 'claude-*', weight: 30, provider: 'openai' }),
            ],
        });
        try {
            const seen = {};
            for (let i = 0; i < 100; i++) {
                const rs = await Promise.all(Array.from({ length: 10 }, () => ask(gw)));
                for (const r of rs) {
                    assert.equal(r.status, 200);
                    seen[r.model] = (seen[r.model] ?? 0) + 1;
                }
            }
            assert.ok(Math.abs(seen['dashscope/qwen-plus'] - 700) <= 50, JSON.stringify(seen));
            assert.ok(Math.abs(seen['openai/qwen-plus'] - 300) <= 50, JSON.stringify(seen));
            assert.equal(await count(A), seen['dashscope/qwen-plus']);
        } finally { await gw.stop(); }
    });

    test('circuit breaker: max_fails opens it, the failing target is skipped, half-open after fail_timeout', CASE, async () => {
        /* long enough that the requests between two half-open probes all
         * fit in it on a loaded machine (1.5 s did not: a probe came early) */
        const failTimeout = slow(4000);
        const gw = await gateway({
            balancer: `{algorithm: priority, max_fails: 2, fail_timeout: ${failTimeout}, retries: 0, failover_criteria: [error, timeout, http_500]}`,
            targets: [
                target(A, { name: 'qwen-max', alias: 'm', weight: 100 }),
                target(B, { name: 'qwen-plus', alias: 'm', weight: 10 }),
            ],
        });
        try {
            await A.scenario({ type: 'error', status: 500, count: 1000 });
            const statuses = [];
            for (let i = 0; i < 10; i++) statuses.push((await ask(gw, { model: 'm' })).status);
            /* two 500s count, then the breaker is open: B (the lower priority) answers */
            assert.deepEqual(statuses.slice(0, 2), [500, 500]);
            assert.deepEqual(statuses.slice(2), Array(8).fill(200));
            assert.equal(await count(A), 2, 'the open target was not skipped');
            assert.equal(await count(B), 8);
            /* half-open: one probe reaches A after fail_timeout; it fails: open again */
            await sleep(failTimeout + 200);
            const probe = await Promise.all(Array.from({ length: 4 }, () => ask(gw, { model: 'm' })));
            assert.equal(await count(A), 3, 'exactly one probe in the half-open state');
            assert.equal(probe.filter((r) => r.status === 500).length, 1);
            for (let i = 0; i < 3; i++) assert.equal((await ask(gw, { model: 'm' })).status, 200);
            assert.equal(await count(A), 3);
            /* A recovers: the next probe succeeds and A takes the traffic again */
            await A.reset();
            await sleep(failTimeout + 200);
            const rs = [];
            for (let i = 0; i < 5; i++) rs.push(await ask(gw, { model: 'm' }));
            assert.ok(rs.every((r) => r.status === 200));
            assert.equal(await count(A), 5, 'closed again after a successful probe');
        } finally { await gw.stop(); }
    });

    test('consistent hashing on the Claude Code session header keeps a session on one target', CASE, async () => {
        const gw = await gateway({
            balancer: '{algorithm: consistent-hashing, hash_on_header: x-claude-code-session-id}',
            targets: [
                target(A, { name: 'qwen-plus', alias: 'claude-*' }),
                target(B, { name: 'qwen-plus', alias: 'claude-*', provider: 'openai' }),
                target(C, { name: 'qwen-flash', alias: 'claude-*' }),
            ],
        });
        try {
            const used = new Set();
            for (let s = 0; s < 12; s++) {
                const sid = `7b4cba80-4357-4160-93be-${String(s).padStart(12, '0')}`;
                const models = new Set();
                for (let i = 0; i < 4; i++) {
                    const r = await ask(gw, { headers: { 'x-claude-code-session-id': sid } });
                    assert.equal(r.status, 200);
                    models.add(r.model);
                }
                assert.equal(models.size, 1, `session ${sid} moved: ${[...models]}`);
                used.add([...models][0]);
            }
            assert.ok(used.size >= 2, 'sessions spread over the targets');
        } finally { await gw.stop(); }
    });

    test('lowest-latency moves traffic to the faster target', CASE, async () => {
        const gw = await gateway({
            balancer: '{algorithm: lowest-latency, latency_strategy: e2e}',
            targets: [
                target(A, { name: 'qwen-plus', alias: 'm' }),
                target(B, { name: 'qwen-flash', alias: 'm' }),
            ],
        }, 1);
        try {
            /* A's delay is far above what a loaded machine adds to B: the
             * latency EWMA moves slowly (10 s decay), so one slow first
             * sample of B above A's used to keep traffic on A for the run */
            await A.scenario({ type: 'text', first_token_delay_ms: 1000, count: 1000 });
            for (let i = 0; i < 40; i++) assert.equal((await ask(gw, { model: 'm', stream: true })).status, 200);
            const a = await count(A), b = await count(B);
            assert.ok(b >= 34 && a >= 1, `fast target B ${b}, slow A ${a}`);
        } finally { await gw.stop(); }
    });

    test('scenarios: background and thinking go to their groups (sluice extension)', CASE, async () => {
        const gw = await gateway({
            extra: 'scenarios: {background: fast, think: deep}',
            targets: [
                target(A, { name: 'qwen3-coder-plus', alias: 'claude-*' }),
                target(B, { name: 'qwen-flash', alias: 'fast' }),
                target(C, { name: 'qwen3-max', alias: 'deep' }),
            ],
        });
        try {
            assert.equal((await ask(gw, { model: 'claude-sonnet-4-5' })).model, 'dashscope/qwen3-coder-plus');
            assert.equal((await ask(gw, { model: 'claude-haiku-4-5-20251001' })).model, 'dashscope/qwen-flash');
            const r = await ask(gw, { model: 'claude-opus-4-1', stream: true, body: { max_tokens: 2048, thinking: { type: 'enabled', budget_tokens: 1024 } } });
            assert.equal(r.model, 'dashscope/qwen3-max');
            assert.match(r.text, /message_stop/);
        } finally { await gw.stop(); }
    });

    describe('failover within a request (ABI 1.2 balancer phase)', { skip: FAILOVER ? false : 'the binary has plugin ABI 1.' + ABI_MINOR }, () => {
        test('429, 500 and a refused connection fail over to the next target, streams included', CASE, async () => {
            const dead = await deadPort();
            const gw = await gateway({
                balancer: '{algorithm: priority, retries: 3, failover_criteria: [error, timeout, http_429, http_500, non_idempotent]}',
                targets: [
                    target(null, { name: 'qwen-max', alias: 'm', weight: 100, url: `http://127.0.0.1:${dead}/compatible-mode/v1/chat/completions` }),
                    target(A, { name: 'qwen-plus', alias: 'm', weight: 50 }),
                    target(B, { name: 'qwen-flash', alias: 'm', weight: 10, provider: 'openai' }),
                ],
            });
            try {
                /* refused on the first, 429 on the second, the third answers */
                await A.scenario({ type: 'error', status: 429, count: 1 });
                let r = await ask(gw, { model: 'm' });
                assert.equal(r.status, 200, r.text);
                assert.equal(r.model, 'openai/qwen-flash');
                /* a stream fails over before its first byte: one clean stream */
                await A.scenario({ type: 'error', status: 500, count: 1 });
                r = await ask(gw, { model: 'm', stream: true });
                assert.equal(r.status, 200);
                assert.equal(r.model, 'openai/qwen-flash');
                assert.equal((r.text.match(/event: message_start/g) || []).length, 1);
                assert.match(r.text, /event: message_stop/);
                const recs = await waitLog(gw.logPath, 2);
                assert.deepEqual(recs[0].tries.map((t) => t.port), [dead, A.port, B.port]);
                assert.equal(recs[0].ai.proxy.meta.request_model, 'qwen-flash');
            } finally { await gw.stop(); }
        });

        test('across formats: a DashScope target falls back to an Anthropic-native one', CASE, async () => {
            const gw = await gateway({
                balancer: '{algorithm: priority, retries: 2, failover_criteria: [error, timeout, http_503, non_idempotent]}',
                targets: [
                    target(A, { name: 'qwen-max', alias: 'm', weight: 100 }),
                    `
        - route_type: llm/v1/chat
          weight: 10
          auth: {header_name: x-api-key, header_value: "${B.key}"}
          logging: {log_statistics: true}
          model:
            provider: anthropic
            name: qwen-plus
            model_alias: m
            options: {anthropic_version: "2023-06-01", upstream_url: "${B.base}/apps/anthropic/v1/messages"}`,
                ],
            });
            try {
                for (const stream of [false, true]) {
                    await A.scenario({ type: 'error', status: 503, count: 1 });
                    const r = await ask(gw, { model: 'm', stream });
                    assert.equal(r.status, 200, r.text);
                    assert.equal(r.model, 'anthropic/qwen-plus');
                    if (stream) assert.match(r.text, /event: message_stop/);
                    else assert.equal(JSON.parse(r.text).type, 'message');
                }
                const up = (await B.requests()).filter((q) => q.path.startsWith('/apps/anthropic/v1/messages'));
                assert.equal(up.length, 2);
                assert.equal(up[0].body.model, 'qwen-plus');
                assert.ok(up[0].body.messages, 'the Anthropic target got an Anthropic body');
                assert.equal(up[0].headers['x-api-key'], B.key);
                assert.equal(up[0].headers.authorization, undefined, "the first target's credential header is gone");
            } finally { await gw.stop(); }
        });

        test('a slow first byte: the read timeout fails over; one refused try adds little', CASE, async (t) => {
            const dead = await deadPort();
            const gw = await gateway({
                /* the balancer's timeouts, not the service's, apply to each try */
                service: 'read_timeout: 60000',
                balancer: '{algorithm: priority, retries: 2, read_timeout: 400, failover_criteria: [error, timeout, non_idempotent]}',
                targets: [
                    target(A, { name: 'qwen-max', alias: 'slow', weight: 100 }),
                    target(B, { name: 'qwen-plus', alias: 'slow', weight: 10 }),
                    target(null, { name: 'qwen-max', alias: 'dead', weight: 100, url: `http://127.0.0.1:${dead}/compatible-mode/v1/chat/completions` }),
                    target(B, { name: 'qwen-flash', alias: 'dead', weight: 10 }),
                    target(B, { name: 'qwen-turbo', alias: 'direct' }),
                ],
            }, 1);
            try {
                /* B's answer proves the failover; the bound, below A's
                 * delay, that it came at the 400 ms read timeout and did not
                 * wait for A, whatever a loaded machine adds to B's time */
                await A.scenario({ type: 'text', first_token_delay_ms: 8000, count: 1 });
                const t0 = Date.now();
                const r = await ask(gw, { model: 'slow', stream: true });
                assert.equal(r.status, 200, r.text);
                assert.equal(r.model, 'dashscope/qwen-plus');
                assert.ok(Date.now() - t0 < 7000, `answered after ${Date.now() - t0} ms`);
                /* the delay one refused connection adds: interleaved, medians of 21 each */
                const times = { direct: [], dead: [] };
                for (let i = 0; i < 23; i++) {
                    for (const model of ['direct', 'dead']) {
                        const s0 = process.hrtime.bigint();
                        assert.equal((await ask(gw, { model })).status, 200);
                        if (i >= 2) times[model].push(Number(process.hrtime.bigint() - s0) / 1e6);
                    }
                }
                const med = (a) => a.sort((x, y) => x - y)[a.length >> 1];
                const direct = med(times.direct), failover = med(times.dead);
                t.diagnostic(`one refused try adds ${(failover - direct).toFixed(2)} ms (median ${failover.toFixed(2)} vs ${direct.toFixed(2)} ms)`);
                assert.ok(failover - direct < slow(50), `failover over a refused connection added ${failover - direct} ms`);
            } finally { await gw.stop(); }
        });

        test('a failure after the first byte ends the stream with an error event', CASE, async () => {
            const gw = await gateway({
                balancer: '{retries: 3, failover_criteria: [error, timeout, http_500, non_idempotent]}',
                targets: [
                    target(A, { name: 'qwen-plus', alias: 'm' }),
                    target(B, { name: 'qwen-plus', alias: 'm' }),
                ],
            }, 1);
            try {
                await A.scenario({ type: 'reset', reset_after: 2, count: 1 });
                await B.scenario({ type: 'reset', reset_after: 2, count: 1 });
                const r = await ask(gw, { model: 'm', stream: true });
                assert.equal(r.status, 200);
                assert.match(r.text, /event: error/);
                assert.equal((r.text.match(/event: message_start/g) || []).length, 1, 'no second answer spliced in');
                assert.equal((await count(A)) + (await count(B)), 1);
            } finally { await gw.stop(); }
        });
    });
});
