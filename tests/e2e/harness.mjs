/* harness.mjs - start and stop the real sluice binary, the mock DashScope and
 * the Claude Code CLI for the end-to-end tests (node:test)
 *
 * Every process started here is remembered and killed when the test process
 * exits, whatever happens to the test, so no run leaves a gateway behind.
 * Paths: SLUICE_BIN (default build/core/sluice), SLUICE_PLUGINS_DIR (default
 * build/plugins), CLAUDE_BIN (default node_modules/.bin/claude), relative to
 * the repository root.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SLUICE_BIN = path.resolve(ROOT, process.env.SLUICE_BIN ?? 'build/core/sluice');
export const PLUGINS_DIR = path.resolve(ROOT, process.env.SLUICE_PLUGINS_DIR ?? 'build/plugins');
export const CLAUDE_BIN = path.resolve(ROOT, process.env.CLAUDE_BIN ?? 'node_modules/.bin/claude');
export const MOCK_KEY = 'sk-mock-dashscope-0123456789abcdef';
export const CLIENT_KEY = 'sk-ant-client-key-must-not-leak-42';

const live = new Set();

function killAll() {
    for (const p of live) {
        try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
        try { p.kill('SIGKILL'); } catch { /* already gone */ }
    }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        killAll();
        process.exit(130);
    });
}

export function tmpDir(prefix = 'sluice-e2e-') {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* A loopback port nobody listens on right now. */
// One port helper for every suite (tests/core/helpers.mjs).
export { freePort, boundPort, SANITIZED, SLOW, slow } from '../core/helpers.mjs';
import { boundPort, slow } from '../core/helpers.mjs';

function canConnect(port, host = '127.0.0.1') {
    return new Promise((resolve) => {
        const c = net.connect({ port, host });
        c.once('connect', () => { c.destroy(); resolve(true); });
        c.once('error', () => resolve(false));
    });
}

/* Spawn a child in its own process group, capturing its output. */
export function startProcess(cmd, args, { env = {}, cwd = ROOT } = {}) {
    const proc = spawn(cmd, args, {
        cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    live.add(proc);
    const out = { stdout: '', stderr: '' };
    proc.stdout.on('data', (d) => { out.stdout += d; });
    proc.stderr.on('data', (d) => { out.stderr += d; });
    const exited = new Promise((resolve) => {
        proc.once('exit', (code, signal) => {
            live.delete(proc);
            resolve({ code, signal });
        });
        proc.once('error', (err) => {
            live.delete(proc);
            out.stderr += `\nspawn error: ${err.message}`;
            resolve({ code: -1, signal: null, error: err });
        });
    });
    return {
        proc, out, exited,
        get stdout() { return out.stdout; },
        get stderr() { return out.stderr; },
        /* SIGTERM, then SIGKILL after graceMs; resolves to the exit status. */
        async stop(graceMs = 5000) {
            if (proc.exitCode !== null || proc.signalCode !== null) return exited;
            try { proc.kill('SIGTERM'); } catch { /* gone */ }
            const t = setTimeout(() => {
                try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
            }, graceMs);
            const st = await exited;
            clearTimeout(t);
            return st;
        },
    };
}

async function waitFor(cond, what, timeoutMs, child) {
    const t0 = Date.now();
    while (Date.now() - t0 < timeoutMs) {
        if (child && (child.proc.exitCode !== null || child.proc.signalCode !== null)) {
            throw new Error(`${what}: process exited early (${child.proc.exitCode ?? child.proc.signalCode})\n` +
                `stdout:\n${child.stdout}\nstderr:\n${child.stderr}`);
        }
        if (await cond()) return;
        await sleep(25);
    }
    throw new Error(`${what}: not ready after ${timeoutMs} ms\nstderr:\n${child?.stderr ?? ''}`);
}

/* ---- mock DashScope ---------------------------------------------------- */

export async function startMock({ key = MOCK_KEY, maxTokensCap = 8192 } = {}) {
    const child = startProcess(process.execPath,
        [path.join(ROOT, 'tests/mock/dashscope.mjs'), '--port', '0', '--key', key, '--max-tokens-cap', String(maxTokensCap)]);
    let port = 0;
    await waitFor(async () => {
        const m = /listening (\d+)/.exec(child.stdout);
        if (m) port = Number(m[1]);
        return port > 0;
    }, 'mock DashScope', 30000, child);
    const base = `http://127.0.0.1:${port}`;
    const ctl = async (method, p, body) => {
        const r = await fetch(base + p, {
            method, headers: { 'content-type': 'application/json' },
            body: body === undefined ? undefined : JSON.stringify(body),
        });
        if (!r.ok) throw new Error(`mock control ${method} ${p}: ${r.status}`);
        return r.json();
    };
    return {
        port,
        key,
        base,
        url: `${base}/compatible-mode/v1/chat/completions`,
        baseUrl: `${base}/compatible-mode/v1`,
        child,
        /* Queue answers for the next chat requests (see dashscope.mjs). */
        scenario: (sc) => ctl('POST', '/__mock/scenario', sc),
        requests: () => ctl('GET', '/__mock/requests'),
        chatRequests: async () => (await ctl('GET', '/__mock/requests'))
            .filter((r) => r.path.startsWith('/compatible-mode/v1/chat/completions')),
        clearRequests: () => ctl('DELETE', '/__mock/requests'),
        reset: () => ctl('POST', '/__mock/reset'),
        stop: () => child.stop(),
    };
}

/* ---- configuration ------------------------------------------------------ */

/* etc/kong.yaml as a user has it, with only the two lines a test must change:
 * the provider URL (model.options.upstream_url, pointed at the mock) and the
 * file-log path (a temp file). Everything else stays byte for byte. */
export function howtoConfig({ upstreamUrl, logPath, extra = '' }) {
    const src = fs.readFileSync(path.join(ROOT, 'etc/kong.yaml'), 'utf8');
    let n = 0;
    let out = src.replace(/^(\s*)temperature: 1\.0\s*$/m, (line, ind) => {
        n++;
        return `${line}\n${ind}upstream_url: "${upstreamUrl}"`;
    });
    out = out.replace(/^(\s*)path: "?\/tmp\/claude\.json"?\s*$/m, (line, ind) => {
        n++;
        return `${ind}path: "${logPath}"`;
    });
    if (n !== 2) throw new Error('etc/kong.yaml no longer has the how-to shape the e2e tests expect');
    return out + extra;
}

/* A second service + route with ai-proxy in its default OpenAI format, for
 * OpenAI SDK clients; it overrides the global (Anthropic-format) ai-proxy. */
export function openaiRouteYaml(upstreamUrl) {
    return `
  - name: openai-service
    url: http://127.0.0.1:9/unused
    routes:
      - name: openai-route
        paths:
          - "/openai"
        plugins:
          - name: ai-proxy
            config:
              route_type: llm/v1/chat
              logging:
                log_statistics: true
                log_payloads: false
              auth:
                header_name: Authorization
                header_value: Bearer \${{ env "DECK_DASHSCOPE_API_KEY" }}
              model:
                provider: dashscope
                name: qwen-plus
                options:
                  max_tokens: 8192
                  temperature: 1.0
                  upstream_url: "${upstreamUrl}"
`;
}

/* Insert extra services into a config made by howtoConfig. */
export function withExtraServices(yaml, servicesYaml) {
    const i = yaml.indexOf('\nroutes:');
    if (i < 0) throw new Error('config has no top-level routes');
    return yaml.slice(0, i) + servicesYaml.replace(/\n$/, '') + yaml.slice(i);
}

/* ---- the gateway ------------------------------------------------------- */

export function requireSluice() {
    if (!fs.existsSync(SLUICE_BIN)) {
        throw new Error(`sluice binary not found at ${SLUICE_BIN}: build it first ` +
            '(meson setup build && meson compile -C build), or set SLUICE_BIN');
    }
}

/* Start sluice with a config text; resolves once it accepts connections. */
export async function startGateway({ config, workers = 2, env = {}, args = [] }) {
    requireSluice();
    const dir = tmpDir('sluice-gw-');
    const cfgPath = path.join(dir, 'kong.yaml');
    fs.writeFileSync(cfgPath, config);
    const pidFile = path.join(dir, 'sluice.pid');
    // port 0: the master binds a free port and logs it (no reserve-then-release race)
    const child = startProcess(SLUICE_BIN, [
        '-d', cfgPath, '-l', '127.0.0.1:0', '-w', String(workers),
        '--plugins-dir', PLUGINS_DIR, '--pid', pidFile, ...args,
    ], { env });
    let port = null;
    await waitFor(() => (port = boundPort(child.stderr)) !== null, 'sluice reports its port', slow(20000), child);
    await waitFor(() => canConnect(port), `sluice on port ${port}`, slow(20000), child);
    return {
        port, dir, cfgPath, pidFile, child,
        base: `http://127.0.0.1:${port}`,
        get stderr() { return child.stderr; },
        stop: () => child.stop(),
    };
}

/* Run `sluice ARGS` to completion (e.g. -t). */
export function runSluice(args, { env = {}, timeoutMs = 15000 } = {}) {
    requireSluice();
    const e = { ...process.env, ...env };
    for (const [k, v] of Object.entries(e)) if (v === undefined || v === null) delete e[k];
    const r = spawnSync(SLUICE_BIN, args, { cwd: ROOT, env: e, encoding: 'utf8', timeout: timeoutMs });
    return { code: r.status, signal: r.signal, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/* ---- file-log ---------------------------------------------------------- */

export function readLog(file) {
    if (!fs.existsSync(file)) return [];
    /* A worker may be mid-write: only lines ended by '\n' are records yet. */
    const text = fs.readFileSync(file, 'utf8');
    return text.slice(0, text.lastIndexOf('\n') + 1).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/* file-log writes in the log phase, after the response: wait for n records. */
export async function waitLog(file, n, timeoutMs = slow(10000)) {
    const t0 = Date.now();
    let recs = readLog(file);
    while (recs.length < n && Date.now() - t0 < timeoutMs) {
        await sleep(25);
        recs = readLog(file);
    }
    return recs;
}

/* The first record that satisfies pred, waiting for it to be written
 * (other requests' records may already be in the file). */
export async function waitRecord(file, pred, timeoutMs = slow(10000)) {
    const t0 = Date.now();
    for (;;) {
        const rec = readLog(file).find(pred);
        if (rec || Date.now() - t0 >= timeoutMs) return rec;
        await sleep(25);
    }
}

/* ---- Claude Code CLI ---------------------------------------------------- */

/* Run `claude -p PROMPT` as a user would, with a scratch HOME and working
 * directory. Resolves to {code, stdout, stderr, json, ms}. */
export async function runClaude({
    baseUrl, prompt, model = 'qwen-plus', args = [], env = {}, nonessential = false,
    outputFormat = 'json', timeoutMs = 90000, home: keepHome, work: keepWork,
}) {
    /* home/work given: a session that a later run continues (kept) */
    const home = keepHome ?? tmpDir('claude-home-');
    const work = keepWork ?? tmpDir('claude-work-');
    const e = {
        HOME: home,
        ANTHROPIC_BASE_URL: baseUrl,
        ANTHROPIC_MODEL: model,
        ANTHROPIC_API_KEY: CLIENT_KEY,
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        DISABLE_ERROR_REPORTING: '1',
        ...env,
    };
    if (!nonessential) e.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = '1';
    for (const k of ['ANTHROPIC_AUTH_TOKEN', 'CLAUDE_CODE_USE_BEDROCK', 'CLAUDE_CODE_USE_VERTEX']) {
        if (!(k in env)) delete e[k];
    }
    const env2 = { ...process.env, ...e };
    for (const [k, v] of Object.entries(env2)) if (v === null || v === undefined) delete env2[k];
    for (const k of ['ANTHROPIC_AUTH_TOKEN', 'CLAUDECODE', 'CLAUDE_CODE_ENTRYPOINT']) {
        if (!(k in env)) delete env2[k];
    }
    const t0 = Date.now();
    const child = spawn(CLAUDE_BIN, ['-p', prompt, '--output-format', outputFormat,
        ...(outputFormat === 'stream-json' ? ['--verbose'] : []), ...args], {
        cwd: work, env: env2, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => {
        stderr += `\n[harness] claude killed after ${timeoutMs} ms`;
        try { process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, timeoutMs);
    const code = await new Promise((resolve) => {
        child.once('exit', (c, s) => resolve(c ?? (s ? 128 : -1)));
        child.once('error', (err) => { stderr += String(err); resolve(-1); });
    });
    clearTimeout(timer);
    live.delete(child);
    let json = null;
    if (outputFormat === 'json') {
        try { json = JSON.parse(stdout); } catch { /* left null: the caller shows stdout */ }
    } else if (outputFormat === 'stream-json') {
        json = stdout.split('\n').filter((l) => l.trim().startsWith('{')).map((l) => JSON.parse(l));
    }
    if (!keepHome) fs.rmSync(home, { recursive: true, force: true });
    if (!keepWork) fs.rmSync(work, { recursive: true, force: true });
    return { code, stdout, stderr, json, ms: Date.now() - t0 };
}

export function claudeAvailable() {
    return fs.existsSync(CLAUDE_BIN);
}

/* The skip reason for tests that need the Claude Code CLI: a missing CLI
 * skips them on a developer's machine, but under CI (CI=true) nothing is
 * skipped and the tests fail loudly (claudeRequired says why). */
export function claudeSkip() {
    if (claudeAvailable() || process.env.CI === 'true') return false;
    return 'the Claude Code CLI is not installed (npm ci)';
}

export function claudeRequired() {
    if (!claudeAvailable())
        throw new Error(`CI=true and the Claude Code CLI is missing (${CLAUDE_BIN}): ` +
                        'npm ci failed or package-lock.json lost it');
}

/* A readable summary for assertion messages. */
export function show(obj, max = 3000) {
    const s = typeof obj === 'string' ? obj : JSON.stringify(obj, null, 1);
    return s.length > max ? `${s.slice(0, max)}…(${s.length} chars)` : s;
}

/* ---- the how-to stack: mock DashScope + sluice with etc/kong.yaml ------- */

/* Start the mock and sluice (how-to config pointed at the mock; optionally
 * the extra OpenAI-format route). Returns {mock, gw, logPath, dir, stop()}. */
export async function startHowtoStack({ workers = 2, openaiRoute = false } = {}) {
    const mock = await startMock();
    const dir = tmpDir('sluice-howto-');
    const logPath = path.join(dir, 'claude.json');
    let config = howtoConfig({ upstreamUrl: mock.url, logPath });
    if (openaiRoute) config = withExtraServices(config, openaiRouteYaml(mock.url));
    let gw;
    try {
        gw = await startGateway({ config, workers, env: { DECK_DASHSCOPE_API_KEY: mock.key } });
    } catch (e) {
        await mock.stop();
        throw e;
    }
    return {
        mock, gw, logPath, dir, config,
        anthropicBase: `${gw.base}/anything`,
        openaiBase: `${gw.base}/openai`,
        async stop() {
            const st = await gw.stop();
            await mock.stop();
            return st;
        },
    };
}

/* Count the records already in the log, to look only at a case's own. */
export function logMark(file) {
    return readLog(file).length;
}

/* The records a case added: waits for `n`, then a little longer to catch
 * any unexpected extra record. */
export async function newLogRecords(file, mark, n, settleMs = 150) {
    await waitLog(file, mark + n);
    await sleep(settleMs);
    return readLog(file).slice(mark);
}
