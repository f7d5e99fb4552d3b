/* lsan.test.mjs - e2e flows against the AddressSanitizer + UBSan build:
 * plain proxying, keep-alive, pipelining, ai-proxy (streaming and not, tool
 * calls, errors), bad input, client aborts, upstream faults, a reload; then
 * a graceful SIGTERM, through which the workers exit their normal path and
 * LeakSanitizer checks each process.  stderr must hold no report.  Skipped
 * when no sanitizer build is found (see findAsanBuild in lib.mjs). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';

import {
    findAsanBuild, hardeningConfig, startUpstream, httpRequest, postMessages, rawExchange, sleep, waitFor,
    childPids, readLog, slow,
} from './lib.mjs';
import { startMock, startProcess, freePort, tmpDir, ROOT } from '../e2e/harness.mjs';
import fs from 'node:fs';
import net from 'node:net';

const asan = findAsanBuild();

function canConnect(port) {
    return new Promise((resolve) => {
        const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
        c.on('error', () => resolve(false));
    });
}

test('no LeakSanitizer / AddressSanitizer / UBSan report after e2e flows and a graceful stop',
    { timeout: 120000, skip: asan ? false : 'no sanitizer build found (set SLUICE_ASAN_BIN)' }, async () => {
        const up = await startUpstream();
        const mock = await startMock();
        const dir = tmpDir('sluice-lsan-');
        const logPath = path.join(dir, 'file.log');
        const refused = await freePort();
        const cfg = path.join(dir, 'kong.yaml');
        fs.writeFileSync(cfg, hardeningConfig({ upPort: up.port, mockUrl: mock.url, logPath, readTimeout: 1500,
            extraAi: [{ name: 'refused', path: '/refused', upstreamUrl: `http://127.0.0.1:${refused}/x` }] }));
        const port = await freePort();
        const gw = startProcess(asan.bin, ['-d', cfg, '-l', `127.0.0.1:${port}`, '-w', '2',
            '--plugins-dir', asan.pluginsDir], {
            env: {
                DECK_DASHSCOPE_API_KEY: mock.key,
                SLUICE_CLIENT_HEADER_TIMEOUT: '800',
                SLUICE_MAX_BODY_SIZE: '1m',
                ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0:halt_on_error=0',
                UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=0',
                LSAN_OPTIONS: `suppressions=${path.join(ROOT, 'tests/lsan.supp')}`,
            },
        });
        try {
            assert.ok(await waitFor(() => canConnect(port), slow(20000), 50), `ASan sluice did not start:\n${gw.stderr}`);
            const msg = (extra = {}) => JSON.stringify({ model: 'qwen-plus', max_tokens: 64,
                messages: [{ role: 'user', content: 'hello' }], ...extra });
            let n = 0;
            for (let round = 0; round < 2; round++) {
                for (let i = 0; i < 10; i++, n++) assert.equal((await httpRequest(port, { path: `/plain/a${i}` })).status, 200);
                const pipe = await rawExchange(port, 'GET /plain/p1 HTTP/1.1\r\nHost: x\r\n\r\nGET /plain/p2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
                assert.deepEqual(pipe.statuses, [200, 200]);
                assert.equal((await postMessages(port, msg())).status, 200);
                assert.equal((await postMessages(port, msg({ stream: true }))).status, 200);
                assert.equal((await postMessages(port, msg({ stream: true, messages: [{ role: 'user', content: 'MOCK:tool_call' }],
                    tools: [{ name: 'Bash', input_schema: { type: 'object' } }] }))).status, 200);
                assert.equal((await postMessages(port, msg({ stream: true, messages: [{ role: 'user', content: 'MOCK:thinking' }],
                    thinking: { type: 'enabled', budget_tokens: 100 } }))).status, 200);
                assert.equal((await postMessages(port, '{"broken')).status, 400);
                assert.equal((await postMessages(port, msg({ max_tokens: 'x' }))).status, 400);
                assert.equal((await postMessages(port, msg(), { path: '/refused/v1/messages' })).status, 502);
                await mock.scenario({ type: 'reset', reset_after: 3 });
                await postMessages(port, msg({ stream: true }));
                await mock.scenario({ type: 'error', status: 429 });
                assert.equal((await postMessages(port, msg())).status, 429);
                await mock.scenario({ type: 'text', first_token_delay_ms: 3000 });
                assert.equal((await postMessages(port, msg())).status, 504);
                await rawExchange(port, 'POST /plain/x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n');
                await rawExchange(port, `GET /plain/${'u'.repeat(20000)} HTTP/1.1\r\nHost: x\r\n\r\n`);
                await rawExchange(port, 'GET /plain/slow HTTP/1.1\r\nHost: x\r\n', { timeoutMs: 1500 });   /* 408 */
                await rawExchange(port, ['GET /plain/sse?n=50&interval=20 HTTP/1.1\r\nHost: x\r\n\r\n', { delay: 150 }], { timeoutMs: 200 });
                await rawExchange(port, ['POST /ai/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"mo'], { timeoutMs: 100 });
                if (round === 0) {
                    const before = childPids(gw.proc.pid);
                    gw.proc.kill('SIGHUP');    /* the old generation exits through the normal path too */
                    await waitFor(() => {
                        const now = childPids(gw.proc.pid);
                        return now.length === 2 && !now.some((p) => before.includes(p));
                    }, slow(10000), 50);
                }
            }
            await sleep(300);
        } finally {
            gw.proc.kill('SIGTERM');
            const t = setTimeout(() => { try { process.kill(-gw.proc.pid, 'SIGKILL'); } catch { /* gone */ } }, 30000);
            var ex = await gw.exited;        // eslint-disable-line no-var
            clearTimeout(t);
            await mock.stop();
            await up.close();
        }
        const err = gw.stderr;
        const m = /(LeakSanitizer|ERROR: AddressSanitizer|runtime error)/.exec(err);
        assert.equal(m, null, `sanitizer report:\n${m ? err.slice(Math.max(0, m.index - 200), m.index + 6000) : ''}`);
        assert.deepEqual({ code: ex.code, signal: ex.signal }, { code: 0, signal: null }, err.slice(-2000));
        assert.ok(readLog(logPath).length > 20);
        console.log(`# lsan: clean (${asan.bin})`);
    });

test('an empty plugins directory: no UBSan report (a NULL list reached qsort)',
    { timeout: slow(30000), skip: asan ? false : 'no sanitizer build found (set SLUICE_ASAN_BIN)' }, async () => {
        const { spawnSync } = await import('node:child_process');
        const dir = tmpDir('sluice-noplugins-');
        const empty = path.join(dir, 'plugins');
        fs.mkdirSync(empty);
        const cfg = path.join(dir, 'kong.yaml');
        fs.writeFileSync(cfg, '_format_version: "3.0"\nservices:\n  - name: s\n    url: http://127.0.0.1:9/\n    routes:\n      - name: r\n        paths: ["/"]\n');
        const r = spawnSync(asan.bin, ['-t', '-d', cfg, '--plugins-dir', empty], {
            encoding: 'utf8', timeout: 20000,
            env: { ...process.env, UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=0', ASAN_OPTIONS: 'detect_leaks=1' },
        });
        assert.equal(r.status, 0, r.stderr);
        assert.doesNotMatch(r.stderr, /runtime error|Sanitizer/, r.stderr);
    });
