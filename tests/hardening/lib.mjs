/* lib.mjs - shared pieces of the hardening suite: a gateway with a plain
 * route (to a tiny in-process upstream) and an Anthropic-format ai-proxy
 * route (to the mock DashScope), raw-socket exchanges, a keep-alive load
 * loop, worker pids and RSS from /proc.
 *
 * Processes are started through tests/e2e/harness.mjs, which kills whatever
 * is left when the test process exits. */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';

import {
    startGateway, startMock, tmpDir, sleep, readLog, waitLog, MOCK_KEY, SANITIZED, SLOW, slow,
} from '../e2e/harness.mjs';

export { sleep, readLog, waitLog, MOCK_KEY, tmpDir, SANITIZED, SLOW, slow };

/* ---- /proc ------------------------------------------------------------ */

function statOf(pid) {
    try {
        const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return s.slice(s.lastIndexOf(')') + 2).split(' ');
    } catch {
        return null;
    }
}

/* Live (non-zombie) children of pid, sorted: the master's workers. */
export function childPids(pid) {
    const out = [];
    for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        const st = statOf(d);
        if (st && Number(st[1]) === pid && st[0] !== 'Z') out.push(Number(d));
    }
    return out.sort((a, b) => a - b);
}

export function alive(pid) {
    const st = statOf(pid);
    return st !== null && st[0] !== 'Z';
}

/* Resident set size in kB (VmRSS), or -1. */
export function rssKb(pid) {
    try {
        const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
        return m ? Number(m[1]) : -1;
    } catch {
        return -1;
    }
}

export async function waitFor(pred, timeoutMs = slow(5000), stepMs = 10) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const v = await pred();
        if (v || Date.now() > end) return v;
        await sleep(stepMs);
    }
}

/* ---- a tiny upstream for the plain route ------------------------------- */

/* /echo (default): 200 JSON {method,url,headers,bodyLength}
 * /stall?ms=N: answer after N ms; /sse?n=N&interval=MS: SSE events. */
export function startUpstream() {
    const state = { requests: [], sockets: new Set() };
    const server = http.createServer((req, res) => {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => {
            const body = Buffer.concat(parts);
            const url = new URL(req.url, 'http://x');
            state.requests.push({ method: req.method, url: req.url, headers: req.headers, bodyLength: body.length,
                body: body.toString('latin1') });
            const tail = url.pathname.split('/').pop();
            if (tail === 'stall') {
                setTimeout(() => {
                    if (!res.destroyed) res.end(`stalled ${url.searchParams.get('ms')}`);
                }, Number(url.searchParams.get('ms') ?? 1000));
                return;
            }
            if (tail === 'sse') {
                const n = Number(url.searchParams.get('n') ?? 5);
                const iv = Number(url.searchParams.get('interval') ?? 50);
                res.writeHead(200, { 'content-type': 'text/event-stream' });
                let i = 0;
                const tick = () => {
                    if (res.destroyed) return;
                    res.write(`data: {"i":${i}}\n\n`);
                    if (++i < n) setTimeout(tick, iv);
                    else res.end();
                };
                tick();
                return;
            }
            const out = JSON.stringify({ method: req.method, url: req.url, headers: req.headers,
                bodyLength: body.length });
            res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
            res.end(out);
        });
    });
    server.keepAliveTimeout = 60000;
    server.on('connection', (s) => { state.sockets.add(s); s.on('close', () => state.sockets.delete(s)); });
    server.on('clientError', (e, s) => s.destroy());
    return new Promise((resolve) => {
        server.listen(0, '127.0.0.1', () => {
            state.port = server.address().port;
            state.close = () => new Promise((r) => {
                for (const s of state.sockets) s.destroy();
                server.close(() => r());
            });
            resolve(state);
        });
    });
}

/* ---- the gateway under test ------------------------------------------ */

/* The ai-proxy plugin block (Anthropic format, DashScope provider). */
export function aiProxyYaml(upstreamUrl, indent, extra = '') {
    const y = `- name: ai-proxy
  config:
    llm_format: anthropic
    route_type: llm/v1/chat
${extra}    logging:
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
    return y.split('\n').map((l) => (l ? indent + l : l)).join('\n');
}

/* services: "plain" (→ upstream, routes /plain), "ai" (route /ai with
 * ai-proxy → mock), plus extra routes given as {name, path, upstreamUrl,
 * readTimeout, aiExtra}; file-log global. */
export function hardeningConfig({ upPort, mockUrl, logPath, readTimeout = 60000, extraAi = [], extraServices = '' }) {
    let y = `_format_version: "3.0"
services:
  - name: plain-service
    url: http://127.0.0.1:${upPort}/up
    read_timeout: ${readTimeout}
    routes:
      - name: plain-route
        paths: ["/plain"]
  - name: ai-service
    url: http://127.0.0.1:9/unused
    read_timeout: ${readTimeout}
    routes:
      - name: ai-route
        paths: ["/ai"]
        plugins:
${aiProxyYaml(mockUrl, '          ')}`;
    for (const e of extraAi) {
        y += `
  - name: ${e.name}-service
    url: http://127.0.0.1:9/unused
    read_timeout: ${e.readTimeout ?? readTimeout}
    connect_timeout: ${e.connectTimeout ?? 2000}
    retries: ${e.retries ?? 0}
    routes:
      - name: ${e.name}-route
        paths: ["${e.path}"]
        plugins:
${aiProxyYaml(e.upstreamUrl, '          ', e.aiExtra ?? '')}`;
    }
    /* a function gets the ports: ({upPort, mockUrl}) => yaml */
    y += typeof extraServices === 'function' ? extraServices({ upPort, mockUrl }) : extraServices;
    y += `
plugins:
  - name: file-log
    config:
      path: "${logPath}"
`;
    return y;
}

/* Start upstream + mock + gateway; returns a stack with stop(). */
export async function startStack({ workers = 2, env = {}, readTimeout, extraAi, extraServices, args,
    logPath: logOverride } = {}) {
    const up = await startUpstream();
    const mock = await startMock();
    const dir = tmpDir('sluice-hard-');
    const logPath = logOverride ?? path.join(dir, 'file.log');
    const config = hardeningConfig({ upPort: up.port, mockUrl: mock.url, logPath, readTimeout, extraAi,
        extraServices });
    let gw;
    try {
        gw = await startGateway({ config, workers, env: { DECK_DASHSCOPE_API_KEY: mock.key, ...env }, args });
    } catch (e) {
        await mock.stop();
        await up.close();
        throw e;
    }
    const master = gw.child.proc.pid;
    /* the first worker may accept before the others exist (slow under ASan) */
    await waitFor(() => childPids(master).length >= workers, 15000, 20);
    return {
        up, mock, gw, dir, logPath, config, port: gw.port, master,
        workers: () => childPids(master),
        async stop() {
            const st = await gw.stop();
            await mock.stop();
            await up.close();
            /* under the sanitizer build every file is an ASan/UBSan check */
            const m = /(ERROR: (Address|Leak)Sanitizer|runtime error: )/.exec(gw.stderr);
            if (m) throw new Error(`sanitizer report:\n${gw.stderr.slice(Math.max(0, m.index - 200), m.index + 4000)}`);
            return st;
        },
    };
}

/* ---- raw sockets ------------------------------------------------------ */

/* Send `chunks` (strings/Buffers, or {delay} entries) on a fresh socket and
 * collect what comes back until the peer closes, doneWhen(text so far)
 * holds, or timeoutMs passes.  Resolves {status, head, text, closed, ms}. */
export function rawExchange(port, chunks, { timeoutMs = 3000, endAfterWrite = false, doneWhen = null } = {}) {
    return new Promise((resolve) => {
        const t0 = Date.now();
        const s = net.connect(port, '127.0.0.1');
        const got = [];
        let done = false;
        const finish = (closed) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            s.destroy();
            const buf = Buffer.concat(got);
            const text = buf.toString('latin1');
            const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
            resolve({ status: m ? Number(m[1]) : 0, text, closed, ms: Date.now() - t0,
                statuses: [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((x) => Number(x[1])) });
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        s.on('data', (d) => {
            got.push(d);
            if (doneWhen && doneWhen(Buffer.concat(got).toString('latin1'))) finish(false);
        });
        s.on('close', () => finish(true));
        s.on('error', () => finish(true));
        s.on('connect', async () => {
            for (const c of [].concat(chunks)) {
                if (done) return;
                if (c && typeof c === 'object' && !Buffer.isBuffer(c) && 'delay' in c) await sleep(c.delay);
                else s.write(c);
            }
            if (endAfterWrite) s.end();
        });
    });
}

/* Parse the body of a complete Content-Length response text. */
export function bodyOf(text) {
    const i = text.indexOf('\r\n\r\n');
    return i < 0 ? '' : text.slice(i + 4);
}

/* ---- a keep-alive client looping requests ---------------------------- */

/* Loops GET `path` (or POST body) over one keep-alive connection per
 * client until stop(); counts ok and failed requests (with the reasons). */
export function loadLoop(port, { clients = 1, path: p = '/plain/loop', method = 'GET', body, headers = {},
    expect = 200, fresh = false, pauseMs = 0 } = {}) {
    const stats = { ok: 0, failed: 0, errors: [] };
    let running = true;
    const one = async (agent) => {
        while (running) {
            try {
                const r = await httpRequest(port, { path: p, method, body, headers, agent, timeoutMs: 10000 });
                if (r.status === expect) stats.ok++;
                else {
                    stats.failed++;
                    stats.errors.push(`status ${r.status}: ${r.text.slice(0, 200)}`);
                }
            } catch (e) {
                stats.failed++;
                stats.errors.push(String(e.message ?? e));
            }
            if (pauseMs) await sleep(pauseMs);
        }
    };
    const agents = [];
    const loops = [];
    for (let i = 0; i < clients; i++) {
        const agent = fresh ? false : new http.Agent({ keepAlive: true, maxSockets: 1 });
        if (agent) agents.push(agent);
        loops.push(one(agent));
    }
    return {
        stats,
        async stop() {
            running = false;
            await Promise.all(loops);
            for (const a of agents) a.destroy();
            return stats;
        },
    };
}

/* One request with node:http. Resolves {status, headers, text, json()}. */
export function httpRequest(port, { path: p = '/', method = 'GET', headers = {}, body, agent = false,
    timeoutMs = 10000 } = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: '127.0.0.1', port, path: p, method, headers, agent }, (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('end', () => {
                const text = Buffer.concat(parts).toString('utf8');
                resolve({ status: res.statusCode, headers: res.headers, text, complete: res.complete,
                    json: () => JSON.parse(text) });
            });
            res.on('error', reject);
            res.on('aborted', () => reject(new Error('response aborted')));
        });
        req.on('error', reject);
        req.setTimeout(timeoutMs, () => req.destroy(new Error('client timeout')));
        req.end(body);
    });
}

/* An Anthropic Messages request body. */
export function anthropicBody(extra = {}) {
    return JSON.stringify({
        model: 'qwen-plus',
        max_tokens: 64,
        messages: [{ role: 'user', content: 'hello' }],
        ...extra,
    });
}

export const ANTHROPIC_HEADERS = {
    'content-type': 'application/json',
    'anthropic-version': '2023-06-01',
    'x-api-key': 'sk-ant-hardening-client-key-0000',
};

/* POST an Anthropic request to path; resolves the httpRequest result. */
export function postMessages(port, body, { path: p = '/ai/v1/messages', headers = {}, timeoutMs = 15000 } = {}) {
    return httpRequest(port, { path: p, method: 'POST', body, headers: { ...ANTHROPIC_HEADERS, ...headers },
        timeoutMs });
}

/* Assert-free check of an Anthropic error body: returns a reason string or ''. */
export function anthropicErrorProblem(text, type) {
    let j;
    try { j = JSON.parse(text); } catch { return `not JSON: ${text.slice(0, 200)}`; }
    if (j.type !== 'error') return `type is ${j.type}: ${text.slice(0, 200)}`;
    if (!j.error || typeof j.error.message !== 'string' || typeof j.error.type !== 'string') {
        return `no error.type/message: ${text.slice(0, 200)}`;
    }
    if (type && j.error.type !== type) return `error.type ${j.error.type}, want ${type}: ${text.slice(0, 200)}`;
    return '';
}

/* ---- another binary (the ASan build) ---------------------------------- */

/* The sanitizer build to use: SLUICE_ASAN_BIN / SLUICE_ASAN_PLUGINS_DIR, else
 * SLUICE_BIN when it is itself a sanitizer build, else build-asan/ or
 * build-hard-asan/ under the repository; null when there is none. */
export function findAsanBuild() {
    const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
    const isAsan = (bin) => {
        try { return fs.readFileSync(bin).includes('__asan_init'); } catch { return false; }
    };
    const cands = [];
    if (process.env.SLUICE_ASAN_BIN) {
        cands.push([process.env.SLUICE_ASAN_BIN, process.env.SLUICE_ASAN_PLUGINS_DIR
            ?? path.join(path.dirname(path.dirname(process.env.SLUICE_ASAN_BIN)), 'plugins')]);
    }
    if (process.env.SLUICE_BIN) cands.push([process.env.SLUICE_BIN, process.env.SLUICE_PLUGINS_DIR ?? 'build/plugins']);
    for (const b of ['build-asan', 'build-hard-asan']) cands.push([`${b}/core/sluice`, `${b}/plugins`]);
    for (const [bin, plugins] of cands) {
        const b = path.resolve(root, bin);
        if (isAsan(b)) return { bin: b, pluginsDir: path.resolve(root, plugins) };
    }
    return null;
}
