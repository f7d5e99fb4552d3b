/* howto.test.mjs - the how-to on the INSTALLED package (run by
 * tests/package/run after installing it, as root): the installed binary,
 * started the way the installed systemd unit starts it (its ExecStart, User,
 * EnvironmentFile, RuntimeDirectory), with the installed configuration
 * pointed at the offline mock DashScope; the real Claude Code CLI's answer,
 * the file-log record in /var/log/sluice, a reload (HUP through the pid
 * file), logrotate's rule (USR1: a new file gets the next record), a
 * graceful stop.  systemd is not running in CI, so the unit's lines are
 * read and applied here. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { startMock, startProcess, runClaude, claudeAvailable, freePort, waitLog, show, tmpDir } from '../e2e/harness.mjs';
import { checkChatLogRecord, checkNoKeys } from '../e2e/checks.mjs';

const UNIT = '/lib/systemd/system/sluice.service';
const CONFIG = '/etc/sluice/kong.yaml';
const LOG = '/var/log/sluice/claude.json';

/* The [Service] lines the test applies: ExecStart, User, ... */
function unitLines(file) {
    const kv = {};
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
        if (m) (kv[m[1]] ??= []).push(m[2]);
    }
    return kv;
}

/* systemd's EnvironmentFile= syntax, the subset a packaged file uses. */
function envFile(file) {
    const env = {};
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
        const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
        if (m) env[m[1]] = m[2].replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
    }
    return env;
}

function canConnect(port) {
    return new Promise((resolve) => {
        const c = net.connect({ port, host: '127.0.0.1' });
        c.once('connect', () => { c.destroy(); resolve(true); });
        c.once('error', () => resolve(false));
    });
}

async function until(cond, what, ms = 15000) {
    const t0 = Date.now();
    while (Date.now() - t0 < ms) {
        if (await cond()) return;
        await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`${what}: not within ${ms} ms`);
}

/* One small Anthropic-format request through the how-to route. */
const ask = (port) => fetch(`http://127.0.0.1:${port}/anything/v1/messages`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
    body: JSON.stringify({ model: 'qwen-plus', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }),
});

describe('the installed package runs the how-to', { timeout: 300000 }, () => {
    const unit = unitLines(UNIT);
    const user = unit.User?.[0];
    const envPath = unit.EnvironmentFile?.[0]?.replace(/^-/, '');
    let mock, gw, port, env, pidFile;

    /* env -i + the unit's environment, User=/Group=, UMask=, then exec. */
    const asService = (argv) => ['env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        'setpriv', `--reuid=${user}`, `--regid=${unit.Group?.[0] ?? user}`, '--init-groups',
        '/bin/sh', '-c', `umask ${unit.UMask?.[0] ?? '0022'} && exec "$@"`, 'sh', ...argv];

    before(async () => {
        assert.ok(user && envPath && unit.ExecStart, `unit ${UNIT}: ${show(unit)}`);
        mock = await startMock();
        /* What an administrator does: the key into the environment file ... */
        const ef = fs.readFileSync(envPath, 'utf8');
        assert.match(ef, /^DECK_DASHSCOPE_API_KEY=$/m, 'the packaged environment file has an empty key line');
        fs.writeFileSync(envPath, ef.replace(/^DECK_DASHSCOPE_API_KEY=$/m, `DECK_DASHSCOPE_API_KEY=${mock.key}`));
        /* ... and, for this offline run only, the provider URL to the mock
         * (the one line etc/kong-demo.yaml adds to etc/kong.yaml). */
        const cfg = fs.readFileSync(CONFIG, 'utf8');
        let n = 0;
        fs.writeFileSync(CONFIG, cfg.replace(/^(\s*)temperature: 1\.0\s*$/m, (line, ind) => {
            n++;
            return `${line}\n${ind}upstream_url: "${mock.url}"`;
        }));
        assert.equal(n, 1, `${CONFIG} no longer has the how-to's shape`);
        /* The unit's RuntimeDirectory= (where sluice.conf puts the pid file). */
        for (const d of unit.RuntimeDirectory ?? []) {
            fs.mkdirSync(path.join('/run', d), { recursive: true });
            execFileSync('chown', [`${user}:`, path.join('/run', d)]);
        }
        port = await freePort();
        /* systemd's environment for the service: the file's variables, plus
         * a loopback port for this test (SLUICE_* beats sluice.conf). */
        env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', ...envFile(envPath),
                SLUICE_LISTEN: `127.0.0.1:${port}`, SLUICE_WORKERS: '2' };
        pidFile = (/^pid\s*=\s*(\S+)/m.exec(fs.readFileSync('/etc/sluice/sluice.conf', 'utf8')) ?? [])[1];
    });

    after(async () => {
        await gw?.stop();
        await mock?.stop();
        /* systemd removes a RuntimeDirectory= when the service stops */
        for (const d of unit.RuntimeDirectory ?? []) fs.rmSync(path.join('/run', d), { recursive: true, force: true });
    });

    test('ExecStartPre (sluice -t) accepts the installed configuration as the service user', () => {
        for (const pre of unit.ExecStartPre ?? []) {
            const argv = asService(pre.split(/\s+/));
            const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
            assert.equal(r.status, 0, `${pre}: ${r.stdout}${r.stderr}`);
            assert.match(r.stdout, /configuration ok/);
        }
    });

    test('ExecStart starts the installed binary as the service user', async () => {
        const argv = asService(unit.ExecStart[0].split(/\s+/));
        assert.match(unit.ExecStart[0], /^\/usr\/s?bin\/sluice /, 'the installed binary, not a build tree');
        gw = startProcess(argv[0], argv.slice(1), { cwd: '/' });
        await until(() => canConnect(port), `sluice on ${port}:\n${gw.stderr}`);
        const st = fs.statSync(`/proc/${gw.proc.pid}`);
        assert.equal(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim(), String(st.uid),
            'the master runs as the service user');
        if (pidFile) {
            await until(() => fs.existsSync(pidFile), `pid file ${pidFile}`);
            assert.equal(fs.readFileSync(pidFile, 'utf8').trim(), String(gw.proc.pid));
        }
    });

    test('Claude Code answers through it; file-log writes the record to /var/log/sluice', {
        skip: !claudeAvailable() && 'the Claude Code CLI is not installed (npm ci)',
    }, async () => {
        const text = 'Hello from the installed sluice.';
        await mock.scenario({ type: 'text', text });
        const before = fs.existsSync(LOG) ? fs.readFileSync(LOG, 'utf8').split('\n').filter(Boolean).length : 0;
        const r = await runClaude({ baseUrl: `http://127.0.0.1:${port}/anything`, prompt: 'Say hello.' });
        assert.equal(r.code, 0, show({ stdout: r.stdout, stderr: r.stderr, gateway: gw.stderr.slice(-3000) }));
        assert.equal(r.json?.result, text, show(r.stdout));
        const recs = (await waitLog(LOG, before + 1)).slice(before);
        assert.equal(recs.length, 1, show(recs));
        const up = (await mock.chatRequests()).at(-1);
        checkChatLogRecord(recs[0], up.answer, { mode: 'stream' });
        checkNoKeys(recs[0]);
        assert.equal(recs[0].route.name, 'example-route');
        const st = fs.statSync(LOG);
        assert.equal(st.uid, Number(execFileSync('id', ['-u', user], { encoding: 'utf8' })), 'log owned by the service user');
        assert.equal(st.mode & 0o007, 0, `log file not world-readable (${(st.mode & 0o777).toString(8)})`);
    });

    test('HUP (ExecReload) reloads the installed configuration', async () => {
        assert.match(unit.ExecReload?.[0] ?? '', /kill -HUP \$MAINPID/);
        process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGHUP');
        await until(() => /configuration generation 1 started/.test(gw.stderr), `reload:\n${gw.stderr}`);
        const r = await ask(port);
        assert.equal(r.status, 200, await r.text());
    });

    test('logrotate\'s rule rotates the log and USR1 makes sluice write a new one', {
        skip: !fs.existsSync('/usr/sbin/logrotate') && 'logrotate is not installed',
    }, async () => {
        const state = path.join(tmpDir('sluice-logrotate-'), 'status');
        execFileSync('/usr/sbin/logrotate', ['-f', '-s', state, '/etc/logrotate.d/sluice'], { stdio: 'inherit' });
        assert.ok(fs.existsSync(`${LOG}.1`), `${LOG}.1 after rotation: ${fs.readdirSync(path.dirname(LOG))}`);
        await until(() => fs.existsSync(LOG) && fs.statSync(LOG).size === 0 || !fs.existsSync(LOG), 'fresh log');
        /* The workers reopen when they take USR1: until then a record may
         * still go to the renamed file, so ask until one lands in the new. */
        let sent = 0;
        await until(async () => {
            assert.equal((await ask(port)).status, 200);
            sent++;
            return (await waitLog(LOG, 1, 200)).length > 0;
        }, `a record in the new ${LOG} (USR1 reopen)`, 10000);
        assert.ok(sent < 50);
        const rotated = fs.readFileSync(`${LOG}.1`, 'utf8').split('\n').filter(Boolean).length;
        assert.ok(rotated >= 2, `the rotated file kept the earlier records (${rotated})`);
    });

    test('TERM stops it gracefully and removes the pid file', async () => {
        const st = await gw.stop(10000);
        assert.equal(st.code, 0, gw.stderr.slice(-2000));
        if (pidFile) assert.ok(!fs.existsSync(pidFile));
        assert.doesNotMatch(gw.stderr, /\b(error|ERROR)\b/, gw.stderr.slice(-3000));
    });
});
