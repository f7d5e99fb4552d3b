// redis-tls.test.mjs - rate-limiting counting in a real redis-server that
// speaks only TLS (--tls-port, a test CA made with the openssl CLI): two
// gateways share one limit with the certificate verified (server_name,
// the CA from SSL_CERT_FILE); a certificate from another CA, or one that
// does not name server_name, is refused and logged once per interval while
// requests flow on local counts; ssl_verify false takes any certificate;
// a Redis Cluster whose nodes speak only TLS.

import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { request, simpleConfig, slow, startSluice, tmpDir, waitFor } from '../core/helpers.mjs';
import { makePki } from '../core/tls-certs.mjs';
import { startUpstream } from '../core/upstream.mjs';
import { startRedisClusterTls, startRedisTls } from './redis.mjs';

let up, redis, pki, otherCa;
before(async () => {
    up = await startUpstream();
    const dir = tmpDir('sluice-redis-pki-');
    pki = makePki(path.join(dir, 'a'), [{ name: 'redis', cn: 'redis.test', san: 'DNS:redis.test' }]);
    otherCa = makePki(path.join(dir, 'b'), []).ca;
    redis = await startRedisTls({ cert: pki.redis.cert, key: pki.redis.key, ca: pki.ca });
});
after(async () => { await up?.close(); await redis?.stop(); });

const conf = (limit, redisExtra) => simpleConfig(up.port, {
    plugins: `plugins:\n- name: rate-limiting\n  config:\n    hour: ${limit}\n    limit_by: ip\n    policy: redis\n` +
        // a Redis answer may take seconds on a loaded machine (the ASan build
        // under CI load): past the timeout the count would go local
        `    redis:\n      host: 127.0.0.1\n      port: ${redis.port}\n      timeout: ${slow(5000)}\n      ssl: true\n` +
        redisExtra.split('\n').filter(Boolean).map((l) => `      ${l}\n`).join(''),
});

const burst = (port, n) => Promise.all(Array.from({ length: n }, () => request(port, { path: '/p/x' })));
const keys = () => redis.cli('KEYS', 'ratelimit:*').split('\n').filter(Boolean);

// Counting across an hour boundary would split the counts: run again.
async function inOneHour(fn) {
    for (let attempt = 0; attempt < 3; attempt++) {
        const h0 = Math.floor(Date.now() / 3600e3);
        const r = await fn();
        if (Math.floor(Date.now() / 3600e3) === h0) return r;
    }
    throw new Error('could not stay in one hour');
}

/* A gateway whose TLS to Redis must fail: every request passes on local
 * counts, Redis counts nothing, and the reason is logged once per interval
 * (10 s) however many connections failed. */
async function refused(cfg, env, reason) {
    redis.cli('FLUSHALL');
    const g = await startSluice(cfg, { workers: 1, env });
    try {
        const t0 = Date.now();
        for (let round = 0; round < 3; round++) { // a connection (and a failure) per back-off second
            const rs = await burst(g.port, 10);
            assert.deepEqual(rs.map((r) => r.status), Array(10).fill(200), 'fault tolerant: no request refused or failed');
            await new Promise((r) => setTimeout(r, 1100));
        }
        assert.ok(await waitFor(() => reason.test(g.stderr), slow(10000)), g.stderr);
        const n = (g.stderr.match(/Redis 127\.0\.0\.1:\d+ .*counting locally/g) ?? []).length;
        assert.ok(n >= 1 && n <= 1 + Math.floor((Date.now() - t0) / 10000), `warned ${n} times:\n${g.stderr}`);
        assert.match(g.stderr, /\(\d+ failure\(s\) in the last interval\)/);
        assert.deepEqual(keys(), [], 'nothing counted in Redis');
        assert.doesNotMatch(g.stderr, /Redis .*answered an error/);
    } finally { await g.stop(); }
}

describe('rate-limiting, redis policy over TLS (real redis-server --tls-port)', () => {
    test('two gateways share one limit over TLS, the certificate verified against server_name', async () => {
        const cfg = conf(10, 'ssl_verify: true\nserver_name: redis.test');
        const env = { SSL_CERT_FILE: pki.ca };
        const a = await startSluice(cfg, { workers: 2, env }), b = await startSluice(cfg, { workers: 2, env });
        try {
            await inOneHour(async () => {
                redis.cli('FLUSHALL');
                const rs = (await Promise.all([burst(a.port, 12), burst(b.port, 12)])).flat();
                assert.equal(rs.filter((r) => r.status === 200).length, 10, 'the limit is shared');
                assert.equal(rs.filter((r) => r.status === 429).length, 14);
                const k = keys();
                assert.equal(k.length, 1);
                assert.equal(redis.cli('GET', k[0]), '24', 'every request counted in Redis');
            });
            assert.doesNotMatch(a.stderr + b.stderr, /Redis .*counting locally/);
        } finally { await a.stop(); await b.stop(); }
    });

    test('a certificate from another CA is refused with ssl_verify: requests flow on local counts, logged once per interval', async () => {
        await refused(conf(1000, 'ssl_verify: true\nserver_name: redis.test'), { SSL_CERT_FILE: otherCa },
                      /Redis 127\.0\.0\.1:\d+ connection lost: TLS handshake failed: certificate refused: (unable to get local issuer certificate|self-signed certificate in certificate chain)/);
    });

    test('a certificate that does not name server_name (or the host, without it) is refused', async () => {
        await refused(conf(1000, 'ssl_verify: true\nserver_name: other.test'), { SSL_CERT_FILE: pki.ca },
                      /connection lost: TLS handshake failed: certificate refused: hostname mismatch/);
        await refused(conf(1000, 'ssl_verify: true'), { SSL_CERT_FILE: pki.ca },
                      /connection lost: TLS handshake failed: certificate refused: IP address mismatch/);
    });

    test('ssl_verify false (rate-limiting\'s default) takes a certificate from any CA; the idle close ends the TLS connection', async () => {
        // connections other than redis-cli's own
        const clients = () => Number(/connected_clients:(\d+)/.exec(redis.cli('INFO', 'clients'))[1]) - 1;
        assert.ok(await waitFor(() => clients() === 0, slow(10000)), 'earlier gateways gone');
        const g = await startSluice(conf(1000, ''), { workers: 1, env: { SSL_CERT_FILE: otherCa } });
        try {
            await inOneHour(async () => {
                redis.cli('FLUSHALL');
                const rs = await burst(g.port, 5);
                assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200]);
                assert.equal(redis.cli('GET', keys()[0]), '5');
            });
            assert.equal(clients(), 1);
            // hiredis closes its end after 10 s idle: the bridge closes the TLS connection
            assert.ok(await waitFor(() => clients() === 0, slow(25000), 200), 'closed when idle');
            const r = await request(g.port, { path: '/p/x' });
            assert.equal(r.status, 200);
            assert.equal(clients(), 1, 'the next request reconnects');
            assert.doesNotMatch(g.stderr, /Redis .*(lost|failed)/, 'an idle close is not a failure');
        } finally { await g.stop(); }
    });

    test('a Redis Cluster speaking only TLS: two gateways share one limit through its masters, certificates verified', { timeout: slow(120000) }, async () => {
        const cluster = await startRedisClusterTls({ cert: pki.redis.cert, key: pki.redis.key, ca: pki.ca });
        const nodes = cluster.nodes.map((x) => `{ip: 127.0.0.1, port: ${x.port}}`).join(', ');
        const cfg = simpleConfig(up.port, {
            plugins: 'plugins:\n- name: rate-limiting\n  config:\n    hour: 10\n    limit_by: ip\n    policy: redis\n' +
                `    redis: {cluster_nodes: [${nodes}], timeout: ${slow(5000)}, ssl: true, ssl_verify: true, server_name: redis.test}\n`,
        });
        const env = { SSL_CERT_FILE: pki.ca };
        const a = await startSluice(cfg, { workers: 2, env }), b = await startSluice(cfg, { workers: 2, env });
        try {
            // the slot map is asked for when a worker starts: wait until counting reaches the cluster
            const total = () => cluster.nodes.reduce((n, x) => n + x.cli('KEYS', 'ratelimit:*').split('\n').filter(Boolean)
                .reduce((m, k) => m + Number(x.cli('GET', k)), 0), 0);
            assert.ok(await waitFor(async () => {
                for (const x of cluster.nodes) x.cli('FLUSHALL');
                await Promise.all([request(a.port, { path: '/p/x' }), request(b.port, { path: '/p/x' })]);
                return total() === 2;
            }, slow(20000), 300), `counting did not reach the TLS cluster:\n${a.stderr}${b.stderr}`);
            await inOneHour(async () => {
                for (const x of cluster.nodes) x.cli('FLUSHALL');
                const rs = (await Promise.all([burst(a.port, 12), burst(b.port, 12)])).flat();
                assert.equal(rs.filter((r) => r.status === 200).length, 10, 'the limit is shared');
                assert.equal(total(), 24, 'every request counted in the cluster');
            });
        } finally { await a.stop(); await b.stop(); await cluster.stop(); }
    });
});
