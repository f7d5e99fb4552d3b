// busy-poll.test.mjs - the busy_poll setting on the real binary: a worker
// that read bytes keeps polling (its CPU time grows with the wall clock while
// requests trickle in), goes back to sleeping once busy_poll passes without a
// read, proxies as it does without it, and a bad value is refused by name.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';

import { startUpstream } from './upstream.mjs';
import { startSluice, runSluice, request, simpleConfig, sleep, tmpDir, PLUGINS_DIR } from './helpers.mjs';

let up;
before(async () => { up = await startUpstream(); });
after(async () => { await up?.close(); });

// utime + stime of a process, in ms (clock ticks of 10 ms).
function cpuMs(pid) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * 10;
}

// One request every `gapMs` for `ms` on one keep-alive connection; the
// worker's CPU time over that window as a share of the wall clock, and the
// answers' statuses.
async function trickle(gw, ms, gapMs) {
    const [worker] = gw.workers();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const statuses = [];
    const get = async () => (await request(gw.port, { path: '/p/x', agent })).status;
    statuses.push(await get()); /* the connection is open before the clock starts */
    const c0 = cpuMs(worker), t0 = Date.now();
    while (Date.now() - t0 < ms) {
        statuses.push(await get());
        await sleep(gapMs);
    }
    const used = cpuMs(worker) - c0, wall = Date.now() - t0;
    agent.destroy();
    return { share: used / wall, statuses, worker };
}

test('busy_poll: the worker spins while requests trickle in, sleeps when they stop, proxies as without it', async () => {
    const gw = await startSluice(simpleConfig(up.port), { workers: 1, args: ['--busy-poll', '5000'] });
    try {
        const t = await trickle(gw, 1500, 2);
        assert.ok(t.statuses.length > 50 && t.statuses.every((s) => s === 200), JSON.stringify(t.statuses));
        /* gaps of ~2 ms, well inside 5 ms: the loop never waited */
        assert.ok(t.share > 0.5, `worker CPU ${(t.share * 100).toFixed(0)} % of the wall clock while spinning`);
        /* 5 ms after the last read it waits again */
        await sleep(200);
        const c0 = cpuMs(t.worker);
        await sleep(1000);
        const idle = cpuMs(t.worker) - c0;
        assert.ok(idle <= 100, `an idle worker used ${idle} ms of CPU in 1 s`);
    } finally { assert.equal((await gw.stop()).code, 0); }
});

test('busy_poll off (the default): the worker sleeps between requests', async () => {
    const gw = await startSluice(simpleConfig(up.port), { workers: 1 });
    try {
        const t = await trickle(gw, 1500, 2);
        assert.ok(t.statuses.every((s) => s === 200));
        assert.ok(t.share < 0.4, `worker CPU ${(t.share * 100).toFixed(0)} % of the wall clock without busy_poll`);
    } finally { assert.equal((await gw.stop()).code, 0); }
});

test('busy_poll: a bad value is refused with the setting named', async () => {
    const dir = tmpDir('sluice-bp-');
    const cfg = `${dir}/kong.yaml`;
    fs.writeFileSync(cfg, '_format_version: "3.0"\nservices: []\n');
    let r = await runSluice(['-t', '-d', cfg, '--plugins-dir', PLUGINS_DIR, '--busy-poll', '-1']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--busy-poll: invalid value '-1' \(expected a number 0-100000\)/);
    r = await runSluice(['-t', '-d', cfg, '--plugins-dir', PLUGINS_DIR], { env: { SLUICE_BUSY_POLL: 'soon' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /SLUICE_BUSY_POLL: invalid value 'soon'/);
    r = await runSluice(['-t', '-d', cfg, '--plugins-dir', PLUGINS_DIR, '--busy-poll', '50']);
    assert.equal(r.code, 0, r.stderr);
    fs.rmSync(dir, { recursive: true, force: true });
});
