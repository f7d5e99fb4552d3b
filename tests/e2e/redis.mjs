/* redis.mjs - a real redis-server for the quota suites, started on a free
 * loopback port (or a given one, to restart it where it was), with no
 * persistence, and a redis-cli wrapper. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { freePort, tmpDir, waitFor } from '../core/helpers.mjs';

export async function startRedis(port, extraArgs = []) {
    port = port ?? await freePort();
    const dir = tmpDir('sluice-redis-');
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
                                     '--appendonly', 'no', '--dir', dir, ...extraArgs],
                    { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const ok = await waitFor(() => /Ready to accept connections/.test(out), 5000);
    assert.ok(ok, `redis-server did not start: ${out}`);
    return {
        port, proc: p,
        cli: (...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim(),
        stop: () => new Promise((res) => { p.once('exit', res); p.kill('SIGKILL'); }),
    };
}

/* A Redis Sentinel (redis-server --sentinel) watching the master on
 * masterPort as `name` (quorum 1: it alone decides a failover). */
export async function startSentinel(masterPort, name = 'mymaster') {
    const port = await freePort();
    const dir = tmpDir('sluice-sentinel-');
    const conf = path.join(dir, 'sentinel.conf');
    fs.writeFileSync(conf, [
        `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${name} 1000`,
        `sentinel failover-timeout ${name} 10000`, '',
    ].join('\n'));
    const p = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const ok = await waitFor(() => /\+monitor master/.test(out), 5000);
    assert.ok(ok, `redis-server --sentinel did not start: ${out}`);
    const cli = (...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();
    return {
        port, proc: p, cli,
        get log() { return out; },
        masterPort: () => Number(cli('SENTINEL', 'get-master-addr-by-name', name).split('\n')[1]),
        stop: () => new Promise((res) => { p.once('exit', res); p.kill('SIGKILL'); }),
    };
}
