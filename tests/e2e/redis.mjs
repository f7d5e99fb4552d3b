/* redis.mjs - a real redis-server for the quota suites, started on a free
 * loopback port (or a given one, to restart it where it was), with no
 * persistence, and a redis-cli wrapper. */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';

import { freePort, tmpDir, waitFor } from '../core/helpers.mjs';

export async function startRedis(port) {
    port = port ?? await freePort();
    const dir = tmpDir('sluice-redis-');
    const p = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '',
                                     '--appendonly', 'no', '--dir', dir],
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
