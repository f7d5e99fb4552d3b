#!/usr/bin/env node
/* capture-claude-code.mjs - record what the real Claude Code CLI sends, into
 * tests/fixtures/claude-code/
 *
 * Runs the pinned CLI (node_modules/.bin/claude) in print mode against
 * anthropic-recorder.mjs in a few situations and writes, for every request:
 *   NAME.json       method, path, HTTP version, headers (credentials replaced
 *                   by sk-ant-PLACEHOLDER), body size, what the case was
 *   NAME.body.json  the request body exactly as received (byte for byte)
 * plus index.json listing them. Re-run after changing the pinned CLI version:
 *   node tests/mock/capture-claude-code.mjs [--out DIR]
 * Fixed scratch directories are used for HOME and the working directory so
 * that the system prompt the CLI builds is the same from run to run.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLAUDE = path.join(ROOT, 'node_modules/.bin/claude');
const outArg = process.argv.indexOf('--out');
const OUT = outArg > 0 ? path.resolve(process.argv[outArg + 1]) : path.join(ROOT, 'tests/fixtures/claude-code');
const HOME = '/tmp/claude-capture-home';
const WORK = '/tmp/claude-capture-project';

const version = spawnSync(CLAUDE, ['--version'], { encoding: 'utf8', env: { ...process.env, HOME } }).stdout.trim();

function startRecorder(extra) {
    return new Promise((resolve, reject) => {
        const p = spawn(process.execPath, [path.join(ROOT, 'tests/mock/anthropic-recorder.mjs'), '--port', '0', ...extra],
            { stdio: ['ignore', 'pipe', 'inherit'] });
        let buf = '';
        p.stdout.on('data', (d) => {
            buf += d;
            const m = /listening (\d+)/.exec(buf);
            if (m) resolve({ proc: p, port: Number(m[1]) });
        });
        p.once('exit', (c) => reject(new Error(`recorder exited ${c}`)));
    });
}

function runCli(port, prompt, { args = [], env = {}, nonessential = false } = {}) {
    fs.rmSync(HOME, { recursive: true, force: true });
    fs.rmSync(WORK, { recursive: true, force: true });
    fs.mkdirSync(HOME, { recursive: true });
    fs.mkdirSync(WORK, { recursive: true });
    const e = {
        ...process.env,
        HOME,
        ANTHROPIC_BASE_URL: `http://127.0.0.1:${port}/anything`,
        ANTHROPIC_API_KEY: 'sk-ant-test',
        ANTHROPIC_MODEL: 'qwen-plus',
        DISABLE_TELEMETRY: '1',
        DISABLE_AUTOUPDATER: '1',
        ...env,
    };
    if (!nonessential) e.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC = '1';
    if (env.ANTHROPIC_API_KEY === undefined && 'ANTHROPIC_AUTH_TOKEN' in env) delete e.ANTHROPIC_API_KEY;
    for (const k of ['CLAUDECODE', 'CLAUDE_CODE_ENTRYPOINT']) delete e[k];
    const r = spawnSync(CLAUDE, ['-p', prompt, '--output-format', 'json', ...args],
        { cwd: WORK, env: e, encoding: 'utf8', timeout: 120000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function capture(recArgs, prompt, opts) {
    const rec = await startRecorder(recArgs);
    const run = runCli(rec.port, prompt, opts);
    const reqs = await (await fetch(`http://127.0.0.1:${rec.port}/__rec/requests`)).json();
    rec.proc.kill('SIGTERM');
    return { run, reqs };
}

const index = [];
fs.mkdirSync(OUT, { recursive: true });

function save(name, req, description) {
    const meta = {
        description,
        cli_version: version,
        method: req.method,
        path: req.path,
        http_version: req.httpVersion,
        headers: req.headers,
        body_bytes: req.bodyBytes,
        body_file: req.bodyBytes ? `${name}.body.json` : null,
    };
    fs.writeFileSync(path.join(OUT, `${name}.json`), JSON.stringify(meta, null, 2) + '\n');
    if (req.bodyBytes) fs.writeFileSync(path.join(OUT, `${name}.body.json`), req.rawBody);
    index.push({ name, method: req.method, path: req.path, body_bytes: req.bodyBytes, description });
}

const posts = (reqs) => reqs.filter((r) => r.method === 'POST');

{
    const { run, reqs } = await capture([], 'Tell me who Niketas Choniates was.');
    if (run.code !== 0) throw new Error(`first-turn run failed: ${run.stdout}${run.stderr}`);
    save('first-turn', posts(reqs)[0], 'First turn of a plain question (the how-to\'s), stream:true.');
}
{
    const { run, reqs } = await capture([], 'TOOLTEST run the marker command and tell me what it printed.',
        { args: ['--allowedTools', 'Bash'] });
    if (run.code !== 0) throw new Error(`tool run failed: ${run.stdout}${run.stderr}`);
    const p = posts(reqs);
    save('tool-first-turn', p[0], 'First turn of a tool round trip; answered with text + a Bash tool_use.');
    save('tool-result-turn', p[1], 'Second turn: assistant text + tool_use, then a user tool_result (string content, is_error, cache_control).');
}
{
    const { run, reqs } = await capture([], 'THINKTEST run the marker command.', { args: ['--allowedTools', 'Bash'] });
    if (run.code !== 0) throw new Error(`thinking run failed: ${run.stdout}${run.stderr}`);
    save('thinking-tool-result-turn', posts(reqs)[1],
        'Second turn after an answer with a thinking block (with signature), text and a Bash tool_use.');
}
{
    const { run, reqs } = await capture(['--break-streams', '1', '--break-kind', 'error'], 'Say hello.');
    if (run.code !== 0) throw new Error(`fallback run failed: ${run.stdout}${run.stderr}`);
    const p = posts(reqs);
    save('nonstream-fallback', p[1],
        'stream:false retry the CLI sends right after its streamed answer ended in an in-stream error event (api_error).');
}
{
    const { run, reqs } = await capture([], 'Say hello.', { nonessential: true });
    if (run.code !== 0) throw new Error(`nonessential run failed: ${run.stdout}${run.stderr}`);
    const hello = reqs.find((r) => /\/api\/hello$/.test(r.path));
    if (hello) save('api-hello', hello, 'Connectivity probe sent first when CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC is not set (no auth).');
    const others = reqs.filter((r) => r !== hello && !/\/v1\/messages\?/.test(r.path));
    others.forEach((r, i) => save(`other-${i + 1}`, r, 'Other call seen without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC.'));
    save('first-turn-nonessential', posts(reqs).find((r) => /\/v1\/messages\?/.test(r.path)),
        'First turn when non-essential traffic is allowed (as users run it).');
}
{
    const { run, reqs } = await capture([], 'Say hello.', { env: { ANTHROPIC_AUTH_TOKEN: 'sk-ant-token' } });
    if (run.code !== 0) throw new Error(`auth-token run failed: ${run.stdout}${run.stderr}`);
    save('first-turn-auth-token', posts(reqs)[0], 'First turn with ANTHROPIC_AUTH_TOKEN instead of ANTHROPIC_API_KEY: Authorization: Bearer, no x-api-key.');
}
{
    const { run, reqs } = await capture(['--fail-first', '100', '--fail-status', '400'], 'Say hello.');
    if (run.code === 0) throw new Error('the 400 run should fail');
    posts(reqs).forEach((r, i) => save(`retry-after-400-${i + 1}`, r,
        `Attempt ${i + 1} of the cut-down variants the CLI re-sends when every answer is a 400 (it gives up after ${posts(reqs).length}).`));
}

fs.writeFileSync(path.join(OUT, 'index.json'), JSON.stringify({ cli_version: version, fixtures: index }, null, 2) + '\n');
fs.rmSync(HOME, { recursive: true, force: true });
fs.rmSync(WORK, { recursive: true, force: true });
process.stdout.write(`captured ${index.length} requests from ${version} into ${OUT}\n`);
