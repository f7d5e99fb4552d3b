// shm.test.mjs - end-to-end: a shared-memory zone (ABI 1.1) declared by a
// test plugin (t-shmcount) counts requests across two workers; the count
// survives a worker killed with SIGKILL and a reload (SIGHUP) that keeps
// the zone's name and size, and starts again when the size changes.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startUpstream } from './upstream.mjs';
import { startSluice, request, waitFor, alive, simpleConfig, slow } from './helpers.mjs';

let up;

before(async () => { up = await startUpstream(); });
after(async () => { await up?.close(); });

const config = (size = 65536) => simpleConfig(up.port, {
    plugins: `plugins:\n- name: t-shmcount\n  config: { size: ${size} }\n`,
});

async function count(g) {
    const r = await request(g.port, { path: '/p/__shm' });
    assert.equal(r.status, 200);
    return JSON.parse(r.text).requests;
}

// Fresh connections, so the kernel spreads them over both workers.
async function traffic(g, n) {
    for (let i = 0; i < n; i++) {
        const r = await request(g.port, { path: `/p/x${i}` });
        assert.equal(r.status, 200);
    }
}

async function newGeneration(g, old) {
    const ok = await waitFor(() => {
        const w = g.workers();
        return w.length === 2 && old.every((p) => !w.includes(p) && !alive(p));
    }, slow(10000), 20);
    assert.ok(ok, `workers replaced: was ${old}, now ${g.workers()}`);
}

test('a zone counts across workers, survives a worker kill and a reload', { timeout: slow(30000) }, async () => {
    const g = await startSluice(config(), { workers: 2 });
    try {
        await traffic(g, 40);
        assert.equal(await count(g), 40);

        // SIGKILL one worker: the respawned one maps the same zone.
        const [victim, other] = g.workers();
        process.kill(victim, 'SIGKILL');
        const respawned = await waitFor(() => {
            const w = g.workers();
            return w.length === 2 && !w.includes(victim);
        }, slow(10000), 10);
        assert.ok(respawned);
        await traffic(g, 20);
        assert.equal(await count(g), 60);
        assert.ok(alive(other));

        // Reload with the same zone name and size: contents kept.
        let old = g.workers();
        await g.reload(config() + '\n');
        await newGeneration(g, old);
        assert.equal(await count(g), 60);
        await traffic(g, 5);
        assert.equal(await count(g), 65);

        // A new size is a new zone: the count starts over.
        old = g.workers();
        await g.reload(config(131072));
        await newGeneration(g, old);
        assert.equal(await count(g), 0);
        await traffic(g, 3);
        assert.equal(await count(g), 3);
        assert.doesNotMatch(g.stderr, /shared memory|reload failed/);
    } finally {
        await g.stop();
    }
});

test('a zone that does not fit is a config error', { timeout: slow(10000) }, async () => {
    const { runSluice, tmpDir, PLUGINS_DIR, TEST_PLUGINS_DIR } = await import('./helpers.mjs');
    const fs = await import('node:fs');
    const dir = tmpDir();
    fs.writeFileSync(`${dir}/k.yaml`, config(1024));
    const r = await runSluice(['-t', '-d', `${dir}/k.yaml`, '--plugins-dir',
                               [PLUGINS_DIR, TEST_PLUGINS_DIR].join(':')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, /plugins\[0\]\.config: shared memory: zone 't-shmcount': size 1024 out of range/);
});
