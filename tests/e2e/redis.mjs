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
    const ok = await waitFor(() => /Ready to accept connections/.test(out), 30000);
    assert.ok(ok, `redis-server did not start: ${out}`);
    return {
        port, proc: p,
        cli: (...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim(),
        stop: () => new Promise((res) => {
            if (p.exitCode !== null || p.signalCode !== null) return res(); // already stopped
            p.once('exit', res);
            p.kill('SIGKILL');
        }),
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
    const ok = await waitFor(() => /\+monitor master/.test(out), 30000);
    assert.ok(ok, `redis-server --sentinel did not start: ${out}`);
    const cli = (...args) => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim();
    return {
        port, proc: p, cli,
        get log() { return out; },
        masterPort: () => Number(cli('SENTINEL', 'get-master-addr-by-name', name).split('\n')[1]),
        stop: () => new Promise((res) => { p.once('exit', res); p.kill('SIGKILL'); }),
    };
}

/* A Redis Cluster of n masters (no replicas), each a redis-server
 * --cluster-enabled on free loopback ports (client port and cluster bus
 * port both chosen free), joined with redis-cli --cluster create, waited on
 * until every node reports cluster_state:ok. */
export async function startRedisCluster(n = 3) {
    const nodes = [];
    try {
        for (let i = 0; i < n; i++) {
            const bus = await freePort();
            const dir = tmpDir('sluice-rcluster-');
            nodes.push(await startRedis(undefined, ['--cluster-enabled', 'yes', '--cluster-port', String(bus),
                '--cluster-config-file', path.join(dir, 'nodes.conf'), '--cluster-node-timeout', '1000',
                // a dead master's slots fail, the others' keep serving (by
                // default the whole cluster refuses once it notices, about a
                // node timeout later: a test then raced that second)
                '--cluster-require-full-coverage', 'no']));
        }
        const r = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((x) => `127.0.0.1:${x.port}`),
                                          '--cluster-yes'], { encoding: 'utf8', timeout: 30000 });
        assert.equal(r.status, 0, `redis-cli --cluster create: ${r.stdout}${r.stderr}`);
        const ok = await waitFor(() => nodes.every((x) => /cluster_state:ok/.test(x.cli('CLUSTER', 'INFO'))), 60000, 100);
        assert.ok(ok, 'the cluster did not become ready');
    } catch (e) {
        await Promise.all(nodes.map((x) => x.stop()));
        throw e;
    }
    const id = (x) => x.cli('CLUSTER', 'MYID');
    // any node that still runs (a test may have stopped nodes[0])
    const live = () => nodes.find((x) => x.proc.exitCode === null && x.proc.signalCode === null);
    return {
        nodes,
        slotOf(key) {
            const slot = Number(live().cli('CLUSTER', 'KEYSLOT', key));
            assert.ok(Number.isInteger(slot) && slot >= 0 && slot < 16384, `CLUSTER KEYSLOT ${key}: ${slot}`);
            return slot;
        },
        // the master serving a slot, as the first live node's CLUSTER NODES says
        ownerOf(slot) {
            const live = nodes.find((x) => x.proc.exitCode === null && x.proc.signalCode === null);
            for (const l of live.cli('CLUSTER', 'NODES').split('\n')) {
                const f = l.split(' '); // id ip:port@bus flags master ping pong epoch link slots...
                if (!f[2]?.split(',').includes('master')) continue;
                const port = Number(f[1].split('@')[0].split(':').pop());
                for (const range of f.slice(8).filter((r) => !r.startsWith('['))) {
                    const [lo, hi = lo] = range.split('-').map(Number);
                    if (slot >= lo && slot <= hi) return nodes.find((y) => y.port === port);
                }
            }
            return null;
        },
        // Move one slot from one master to another as redis-cli --cluster
        // reshard does, in two halves so a test can act in between: the
        // keys migrated (their old master now answers ASK), then the slot
        // given to its new master on every node (MOVED).
        migrateKeys(slot, from, to) {
            assert.equal(to.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', id(from)), 'OK');
            assert.equal(from.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', id(to)), 'OK');
            const keys = from.cli('CLUSTER', 'GETKEYSINSLOT', String(slot), '1000').split('\n').filter(Boolean);
            for (const k of keys) assert.equal(from.cli('MIGRATE', '127.0.0.1', String(to.port), k, '0', '5000'), 'OK');
            return keys.length;
        },
        // GET on a node importing the key's slot (ASKING first, one connection)
        getAsking: (x, key) => spawnSync('redis-cli', ['-p', String(x.port)], { input: `ASKING\nGET ${key}\n`, encoding: 'utf8' })
            .stdout.trim().split('\n').pop(),
        assignSlot(slot, to) {
            for (const x of [to, ...nodes.filter((y) => y !== to)]) assert.equal(x.cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', id(to)), 'OK');
        },
        stop: () => Promise.all(nodes.map((x) => x.stop())),
    };
}

/* A redis-server speaking only TLS (--port 0, --tls-port on a free loopback
 * port) with the certificate and key given, clients not asked for one;
 * cli() talks TLS, trusting the CA file given.  extraArgs: more options
 * (a cluster node's). */
export async function startRedisTls({ cert, key, ca }, extraArgs = []) {
    const port = await freePort();
    const dir = tmpDir('sluice-redis-tls-');
    const p = spawn('redis-server', ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1',
                                     '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', ca,
                                     '--tls-auth-clients', 'no', '--save', '', '--appendonly', 'no', '--dir', dir,
                                     ...extraArgs],
                    { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const ok = await waitFor(() => /Ready to accept connections/.test(out), 30000);
    assert.ok(ok, `redis-server --tls-port did not start: ${out}`);
    return {
        port, proc: p,
        cli: (...args) => spawnSync('redis-cli', ['--tls', '--cacert', ca, '-p', String(port), ...args],
                                    { encoding: 'utf8' }).stdout.trim(),
        stop: () => new Promise((res) => {
            if (p.exitCode !== null || p.signalCode !== null) return res();
            p.once('exit', res);
            p.kill('SIGKILL');
        }),
    };
}

/* A Redis Cluster of n masters speaking only TLS, the cluster bus too
 * (tls-cluster: CLUSTER SLOTS then names the TLS ports), made as
 * startRedisCluster does. */
export async function startRedisClusterTls(tls, n = 3) {
    const nodes = [];
    try {
        for (let i = 0; i < n; i++) {
            const bus = await freePort();
            const dir = tmpDir('sluice-rcluster-tls-');
            nodes.push(await startRedisTls(tls, ['--cluster-enabled', 'yes', '--cluster-port', String(bus), '--tls-cluster', 'yes',
                '--cluster-config-file', path.join(dir, 'nodes.conf'), '--cluster-node-timeout', '1000']));
        }
        const r = spawnSync('redis-cli', ['--tls', '--cacert', tls.ca, '--cluster', 'create', ...nodes.map((x) => `127.0.0.1:${x.port}`),
                                          '--cluster-yes'], { encoding: 'utf8', timeout: 30000 });
        assert.equal(r.status, 0, `redis-cli --cluster create: ${r.stdout}${r.stderr}`);
        const ok = await waitFor(() => nodes.every((x) => /cluster_state:ok/.test(x.cli('CLUSTER', 'INFO'))), 60000, 100);
        assert.ok(ok, 'the TLS cluster did not become ready');
    } catch (e) {
        await Promise.all(nodes.map((x) => x.stop()));
        throw e;
    }
    return { nodes, stop: () => Promise.all(nodes.map((x) => x.stop())) };
}

/* A Redis Sentinel speaking only TLS, to its clients and to the master it
 * watches (tls-replication), on masterPort as `name`; cli() talks TLS. */
export async function startSentinelTls({ cert, key, ca }, masterPort, name = 'mymaster') {
    const port = await freePort();
    const dir = tmpDir('sluice-sentinel-tls-');
    const conf = path.join(dir, 'sentinel.conf');
    fs.writeFileSync(conf, [
        'port 0', `tls-port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
        `tls-cert-file ${cert}`, `tls-key-file ${key}`, `tls-ca-cert-file ${ca}`, 'tls-auth-clients no', 'tls-replication yes',
        `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${name} 1000`, '',
    ].join('\n'));
    const p = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    const ok = await waitFor(() => /\+monitor master/.test(out), 30000);
    assert.ok(ok, `redis-server --sentinel (TLS) did not start: ${out}`);
    return {
        port, proc: p,
        cli: (...args) => spawnSync('redis-cli', ['--tls', '--cacert', ca, '-p', String(port), ...args], { encoding: 'utf8' }).stdout.trim(),
        stop: () => new Promise((res) => { if (p.exitCode !== null || p.signalCode !== null) return res(); p.once('exit', res); p.kill('SIGKILL'); }),
    };
}
