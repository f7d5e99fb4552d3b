// helpers.mjs - shared pieces of the end-to-end tests: where the binaries
// are, starting/stopping a real sluice on a free loopback port, and small
// HTTP clients (node:http for ordinary requests, raw sockets for what
// node:http cannot express: pipelining, malformed input, slow clients).
//
// Environment (paths relative to the repository root):
//   SLUICE_BIN               default build/core/sluice
//   SLUICE_PLUGINS_DIR       default build/plugins
//   SLUICE_TEST_PLUGINS_DIR  default build/tests/plugins

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const abs = (p) => path.resolve(REPO, p);
export const SLUICE_BIN = abs(process.env.SLUICE_BIN ?? 'build/core/sluice');
export const PLUGINS_DIR = abs(process.env.SLUICE_PLUGINS_DIR ?? 'build/plugins');
export const TEST_PLUGINS_DIR = abs(process.env.SLUICE_TEST_PLUGINS_DIR ?? 'build/tests/plugins');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A sanitizer build (ASan+UBSan, tests/run's second pass) runs ~3x slower:
// a bound on how long the gateway may take is multiplied by SLOW.  Bounds
// are also set for a loaded CI machine: generous enough that only a wrong
// behaviour (a timer that never fires, a back-off, a hang) can exceed them.
export const SANITIZED = (() => {
    try { return fs.readFileSync(SLUICE_BIN).includes('__asan_init'); } catch { return false; }
})();
export const SLOW = SANITIZED ? 3 : 1;
export const slow = (ms) => ms * SLOW;

export function tmpDir(prefix = 'sluice-e2e-') {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

// The test suites' one port helper (tests/e2e and tests/hardening import it).
// A sluice started by a test listens on port 0 and the test reads the port
// the master bound from its log ("listening on 127.0.0.1:PORT"): no window
// in which another process can take the port.  freePort() remains for a
// port nothing should listen on (a dead upstream) and for servers that
// cannot report theirs.
export function boundPort(log, host = '127.0.0.1') {
    const m = new RegExp(`listening on ${host.replaceAll('.', '\\.')}:(\\d+)`).exec(log);
    return m ? Number(m[1]) : null;
}

export function freePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.once('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

// Every sluice started by a test file, killed at exit whatever happens.
const live = new Set();
process.on('exit', () => {
    for (const p of live) {
        try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    }
});

// Child pids of `pid` (the workers of a master), from /proc.
export function childPids(pid) {
    const out = [];
    for (const d of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
            const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
            const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
            if (Number(rest[1]) === pid && rest[0] !== 'Z') out.push(Number(d));
        } catch { /* raced with exit */ }
    }
    return out.sort((a, b) => a - b);
}

export function alive(pid) {
    try {
        process.kill(pid, 0);
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
        return false;
    }
}

export async function waitFor(pred, timeoutMs = slow(5000), stepMs = 20) {
    const end = Date.now() + timeoutMs;
    for (;;) {
        const v = await pred();
        if (v) return v;
        if (Date.now() > end) return v;
        await sleep(stepMs);
    }
}

// A sanitizer build (-Db_sanitize=address,undefined) reports on stderr;
// any report fails the test that owned the process.
export function assertNoSanitizerReport(stderr) {
    const m = /^.*(ERROR: (Address|Leak)Sanitizer|runtime error: |SUMMARY: \w+Sanitizer).*$/m.exec(stderr);
    if (m) throw new Error(`sanitizer report from sluice: ${m[0]}\n${stderr.slice(m.index, m.index + 4000)}`);
}

// Run `sluice args...` to completion (for -t, -V): { code, stdout, stderr }.
export function runSluice(args, { env = {}, timeoutMs = 10000, cwd } = {}) {
    return new Promise((resolve, reject) => {
        const p = spawn(SLUICE_BIN, args, { env: { ...process.env, ...env }, cwd });
        let stdout = '', stderr = '';
        p.stdout.on('data', (d) => { stdout += d; });
        p.stderr.on('data', (d) => { stderr += d; });
        const t = setTimeout(() => { p.kill('SIGKILL'); reject(new Error('sluice timed out')); },
                             timeoutMs);
        p.on('error', reject);
        p.on('close', (code, signal) => {
            clearTimeout(t);
            try {
                assertNoSanitizerReport(stderr);
            } catch (e) {
                reject(e);
                return;
            }
            resolve({ code, signal, stdout, stderr });
        });
    });
}

// Start a gateway with `config` (YAML text).  Options: workers, env,
// pluginsDirs (array), args (extra), bin (another sluice binary), dir,
// startMs (how long to wait for the port and the first answer, 8000; more
// for a config that takes long to load).  Resolves once it answers HTTP.
export async function startSluice(config, opts = {}) {
    const dir = opts.dir ?? tmpDir();
    const cfg = path.join(dir, 'kong.yaml');
    const pidFile = path.join(dir, 'sluice.pid');
    fs.writeFileSync(cfg, config);
    const port = opts.port ?? 0;
    const dirs = opts.pluginsDirs ?? [PLUGINS_DIR, TEST_PLUGINS_DIR];
    const args = ['-d', cfg, '-l', `127.0.0.1:${port}`, '-w', String(opts.workers ?? 2),
                  '--plugins-dir', dirs.join(':'), '--pid', pidFile, ...(opts.args ?? [])];
    const proc = spawn(opts.bin ?? SLUICE_BIN, args, {
        env: { ...process.env, ...(opts.env ?? {}) },
        stdio: ['ignore', 'pipe', 'pipe'],
    });
    const g = {
        dir, cfg, pidFile, port, proc, pid: proc.pid, stderr: '', exit: null,
        exited: new Promise((resolve) => proc.on('exit', (code, signal) => {
            g.exit = { code, signal };
            live.delete(proc);
            resolve(g.exit);
        })),
    };
    live.add(proc);
    proc.stdout.on('data', (d) => { g.stderr += d; });
    proc.stderr.on('data', (d) => { g.stderr += d; });
    g.workers = () => childPids(proc.pid);
    g.writeConfig = (text) => fs.writeFileSync(cfg, text);
    g.reload = async (text) => {
        if (text !== undefined) g.writeConfig(text);
        proc.kill('SIGHUP');
    };
    g.stop = async () => {
        if (!g.exit) {
            proc.kill('SIGTERM');
            const t = setTimeout(() => proc.kill('SIGKILL'), 8000);
            await g.exited;
            clearTimeout(t);
        }
        assertNoSanitizerReport(g.stderr);
        return g.exit;
    };
    if (port === 0) {
        g.port = await waitFor(() => g.exit ? -1 : boundPort(g.stderr), opts.startMs ?? 8000, 10);
        if (!g.port || g.port < 0)
            throw new Error(`sluice did not report its port (exit ${JSON.stringify(g.exit)}):\n${g.stderr}`);
    }
    const ok = await waitFor(async () => {
        if (g.exit) return true;
        try {
            await request(g.port, { path: '/__sluice_ready__', timeoutMs: 500 });
            return true;
        } catch { return false; }
    }, opts.startMs ?? 8000, 30);
    if (!ok || g.exit)
        throw new Error(`sluice did not start (exit ${JSON.stringify(g.exit)}):\n${g.stderr}`);
    // One worker answering does not mean all are forked yet (under a sanitizer
    // the master's fork loop can lag behind the first worker's readiness): tests
    // that count or kill workers need every one of them.
    const want = opts.workers ?? 2;
    await waitFor(() => g.exit || g.workers().length >= want, 10000, 10);
    return g;
}

// One request with node:http (a fresh connection unless opts.agent).
// Resolves { status, headers, rawHeaders, body (Buffer), text, json() }.
export function request(port, opts = {}) {
    return new Promise((resolve, reject) => {
        const req = http.request({
            host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/',
            headers: opts.headers ?? {}, agent: opts.agent ?? false,
        }, (res) => {
            const parts = [];
            const localPort = res.socket?.localPort;
            res.on('data', (d) => parts.push(d));
            res.on('end', () => {
                const body = Buffer.concat(parts);
                resolve({
                    status: res.statusCode, headers: res.headers, rawHeaders: res.rawHeaders,
                    body, text: body.toString('utf8'), complete: res.complete,
                    localPort,
                    json: () => JSON.parse(body.toString('utf8')),
                });
            });
            res.on('error', reject);
            res.on('aborted', () => reject(Object.assign(new Error('response aborted'),
                                                         { partial: Buffer.concat(parts), res })));
        });
        req.on('error', reject);
        if (opts.timeoutMs)
            req.setTimeout(opts.timeoutMs, () => req.destroy(new Error('client timeout')));
        if (opts.body !== undefined) req.end(opts.body);
        else req.end();
    });
}

// ---- raw HTTP/1.1 over a socket -------------------------------------------

export function connect(port) {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
    });
}

// Incremental response parser over a socket: next() resolves the next full
// response { status, reason, headers (lowercased names, last wins),
// rawHeaders, body (Buffer) }; closed is set when the peer closed.
export class RawClient {
    constructor(sock) {
        this.sock = sock;
        this.buf = Buffer.alloc(0);
        this.closed = false;
        this.waiters = [];
        sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.#wake(); });
        sock.on('end', () => { this.closed = true; this.#wake(); });
        sock.on('close', () => { this.closed = true; this.#wake(); });
        sock.on('error', () => { this.closed = true; this.#wake(); });
    }

    static async open(port) {
        return new RawClient(await connect(port));
    }

    write(data) { this.sock.write(data); }
    destroy() { this.sock.destroy(); }

    #wake() {
        const w = this.waiters;
        this.waiters = [];
        for (const f of w) f();
    }

    #more(timeoutMs) {
        return new Promise((resolve, reject) => {
            const t = setTimeout(() => reject(new Error('timeout waiting for data')), timeoutMs);
            this.waiters.push(() => { clearTimeout(t); resolve(); });
        });
    }

    // Try to parse one response from this.buf; null if incomplete.
    #parse(noBody) {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return null;
        const head = this.buf.subarray(0, end).toString('latin1').split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(head[0]);
        if (!m) throw new Error(`bad status line: ${JSON.stringify(head[0])}`);
        const headers = {}, rawHeaders = [];
        for (const l of head.slice(1)) {
            const i = l.indexOf(':');
            const name = l.slice(0, i).trim(), value = l.slice(i + 1).trim();
            rawHeaders.push([name, value]);
            headers[name.toLowerCase()] = value;
        }
        const status = Number(m[1]);
        let pos = end + 4;
        let body = Buffer.alloc(0);
        if (noBody || status === 204 || status === 304 || status < 200) {
            // no body
        } else if ((headers['transfer-encoding'] ?? '').toLowerCase().includes('chunked')) {
            const parts = [];
            for (;;) {
                const le = this.buf.indexOf('\r\n', pos);
                if (le < 0) return null;
                const size = parseInt(this.buf.subarray(pos, le).toString('latin1'), 16);
                if (Number.isNaN(size)) throw new Error('bad chunk size');
                if (size === 0) {
                    const te = this.buf.indexOf('\r\n\r\n', le);
                    if (te < 0 && this.buf.length < le + 4) return null;
                    if (this.buf.subarray(le, le + 4).toString() === '\r\n\r\n') pos = le + 4;
                    else if (te < 0) return null;
                    else pos = te + 4;
                    break;
                }
                if (this.buf.length < le + 2 + size + 2) return null;
                parts.push(this.buf.subarray(le + 2, le + 2 + size));
                pos = le + 2 + size + 2;
            }
            body = Buffer.concat(parts);
        } else if (headers['content-length'] !== undefined) {
            const n = Number(headers['content-length']);
            if (this.buf.length < pos + n) return null;
            body = this.buf.subarray(pos, pos + n);
            pos += n;
        } else {
            if (!this.closed) return null;           // close-delimited
            body = this.buf.subarray(pos);
            pos = this.buf.length;
        }
        this.buf = this.buf.subarray(pos);
        return { status, reason: m[2], headers, rawHeaders, body, text: body.toString('utf8') };
    }

    async next({ timeoutMs = slow(10000), noBody = false } = {}) {
        const end = Date.now() + timeoutMs;
        for (;;) {
            const r = this.#parse(noBody);
            if (r) return r;
            if (this.closed) throw Object.assign(new Error('connection closed'), { partial: this.buf });
            await this.#more(Math.max(1, end - Date.now()));
        }
    }

    // Resolves true when the peer closes within timeoutMs.
    async waitClosed(timeoutMs = slow(10000)) {
        const end = Date.now() + timeoutMs;
        while (!this.closed && Date.now() < end) {
            try { await this.#more(Math.max(1, end - Date.now())); } catch { break; }
        }
        return this.closed;
    }
}

export function get(port, p, headers = {}) {
    return `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n';
}

// A YAML config with one service pointing at the upstream and the given
// routes/plugins snippets (already-indented YAML).
export function simpleConfig(upPort, { routes, plugins = '', service = '' } = {}) {
    return `_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${upPort}/base
${service}  routes:
${routes ?? '  - name: r1\n    paths: [/p]\n'}
${plugins}`;
}

export function percentile(sorted, p) {
    if (sorted.length === 0) return NaN;
    const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
    return sorted[Math.max(0, i)];
}
