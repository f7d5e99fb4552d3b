// dns.test.mjs - upstream host names resolved by c-ares on the worker's
// loop through the name servers of `dns_resolver` (docs/upstream.md "DNS"):
// answers cached for the record's TTL (one query for many requests), a
// changed record followed once the TTL ran out, a stale answer kept while
// the name server is gone (dns_stale_ttl), an unknown name answered 502
// with the reason in the log, and a bad dns_resolver refused at start.
// The name server is tests/core/dns-server.mjs on a loopback UDP port.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { startSluice, runSluice, request, waitFor } from './helpers.mjs';
import { startDnsServer } from './dns-server.mjs';

const closers = [];
after(async () => { for (const c of closers) await c(); });

// An HTTP server on ip:port answering its name; `hosts` collects the Host
// headers it saw.  It closes every connection: pooled upstream connections
// are keyed by host name, so a kept one would hide which address a new
// connection goes to.
function named(name, ip, port = 0, hosts = []) {
    const server = http.createServer((req, res) => {
        hosts.push(req.headers.host);
        res.writeHead(200, { 'x-target': name, connection: 'close' });
        res.end(name);
    });
    const close = () => new Promise((r) => {
        if (!server.listening) return r();
        server.closeAllConnections();
        server.close(() => r());
    });
    closers.push(close);
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, ip, () => resolve({ port: server.address().port, close }));
    });
}

function config(host, port) {
    return `_format_version: "3.0"
services:
- name: svc
  host: ${host}
  port: ${port}
  retries: 0
  connect_timeout: 2000
  routes: [{name: r, paths: ["/"]}]
`;
}

test('a host name is resolved through dns_resolver and cached for its TTL', async () => {
    const dns = await startDnsServer({ 'cached.test': { A: [{ address: '127.0.0.1', ttl: 3600 }] } });
    closers.push(() => dns.close());
    const { port } = await named('a', '127.0.0.1');
    const g = await startSluice(config('cached.test', port),
                                { workers: 1, args: ['--dns-resolver', `127.0.0.1:${dns.port}`] });
    try {
        for (let i = 0; i < 5; i++) {
            const r = await request(g.port, { path: '/x' });
            assert.equal(r.status, 200);
            assert.equal(r.text, 'a');
        }
        assert.equal(dns.count('cached.test', 'A'), 1, JSON.stringify(dns.queries));
    } finally {
        await g.stop();
    }
});

test('a changed record is followed after its TTL; a stale answer outlives the server', async () => {
    const dns = await startDnsServer({ 'moving.test': { A: [{ address: '127.0.0.1', ttl: 1 }] } });
    const { port } = await named('a', '127.0.0.1');
    await named('b', '127.0.0.2', port);
    const g = await startSluice(config('moving.test', port),
                                { workers: 1, args: ['--dns-resolver', `127.0.0.1:${dns.port}`] });
    try {
        assert.equal((await request(g.port, { path: '/x' })).text, 'a');
        dns.set('moving.test', { A: [{ address: '127.0.0.2', ttl: 1 }] });
        // Once the TTL ran out the next request is answered from the old
        // address while a query runs (stale), the ones after from the new.
        const moved = await waitFor(async () => (await request(g.port, { path: '/x' })).text === 'b', 15000, 100);
        assert.ok(moved, 'the new address was never used');
        const queries = dns.count('moving.test', 'A');
        assert.ok(queries >= 2, `A queries: ${queries}`);
        // The name server goes away: the last answer keeps serving.
        await dns.close();
        await new Promise((r) => setTimeout(r, 1500)); // past the TTL
        for (let i = 0; i < 3; i++) {
            const r = await request(g.port, { path: '/x' });
            assert.equal(r.status, 200);
            assert.equal(r.text, 'b');
        }
    } finally {
        await g.stop();
    }
});

test('an unknown name is a 502 naming the host; retried no more', async () => {
    const dns = await startDnsServer({});
    closers.push(() => dns.close());
    const g = await startSluice(config('nowhere.test', 9),
                                { workers: 1, args: ['--dns-resolver', `127.0.0.1:${dns.port}`] });
    try {
        const r = await request(g.port, { path: '/x' });
        assert.equal(r.status, 502);
        await waitFor(() => /could not resolve host "nowhere\.test"/.test(g.stderr), 5000);
        assert.match(g.stderr, /could not resolve host "nowhere\.test"/);
        assert.ok(dns.count('nowhere.test', 'A') >= 1);
        // dns_not_found_ttl (30 s): the second request asks nobody.
        const before = dns.count('nowhere.test');
        assert.equal((await request(g.port, { path: '/x' })).status, 502);
        assert.equal(dns.count('nowhere.test'), before);
    } finally {
        await g.stop();
    }
});

test('a dns_resolver that is not a list of ip[:port] is refused', async () => {
    for (const bad of ['localhost:53', '127.0.0.1:99999', '127.0.0.1,', '[::1', '127.0.0.1:0']) {
        const r = await runSluice(['-t', '-d', '/dev/null', '--dns-resolver', bad]);
        assert.equal(r.code, 1, bad);
        assert.match(r.stderr, /dns.resolver.*name servers, each an IP address/, bad);
    }
    const ok = await runSluice(['--dns-resolver', '127.0.0.1:5353,[::1]:53,::1', '-h']);
    assert.equal(ok.code, 0);
});

function upstreamConfig(target, healthchecks = '') {
    return `_format_version: "3.0"
services:
- name: svc
  host: pool.internal
  retries: 2
  connect_timeout: 2000
  routes: [{name: r, paths: ["/"]}]
upstreams:
- name: pool.internal
${healthchecks}
  targets:
  - {target: "${target}", weight: 100}
`;
}

test('a host-name target is one balancer entry per address, re-resolved, health per address', async () => {
    const dns = await startDnsServer({ 'pool.test': { A: [{ address: '127.0.0.1', ttl: 1 }] } });
    closers.push(() => dns.close());
    const hostsA = [], hostsB = [];
    const a = await named('a', '127.0.0.1', 0, hostsA);
    const b = await named('b', '127.0.0.2', a.port, hostsB);
    const hc = '  healthchecks: {passive: {unhealthy: {tcp_failures: 1}}}';
    const g = await startSluice(upstreamConfig(`pool.test:${a.port}`, hc),
                                { workers: 1, args: ['--dns-resolver', `127.0.0.1:${dns.port}`] });
    try {
        // The record gains an address: after its TTL the target has two
        // entries, each with the target's weight (round-robin alternates).
        dns.set('pool.test', { A: [{ address: '127.0.0.1', ttl: 3600 }, { address: '127.0.0.2', ttl: 3600 }] });
        const two = new RegExp(`target pool\\.test:${a.port} now has 2 addresses`);
        assert.ok(await waitFor(async () => {
            await request(g.port, { path: '/x' }); // finds the answer stale, starts the refresh
            return two.test(g.stderr);
        }, 15000, 200), g.stderr);
        const seen = { a: 0, b: 0 };
        for (let i = 0; i < 20; i++) {
            const r = await request(g.port, { path: '/x' });
            assert.equal(r.status, 200);
            seen[r.text]++;
        }
        assert.deepEqual(seen, { a: 10, b: 10 });
        // Each address is sent the target's name as Host.
        assert.equal(hostsB.at(-1), `pool.test:${a.port}`);
        assert.equal(hostsA.at(-1), `pool.test:${a.port}`);

        // One address stops listening: its first refused connection marks
        // that address (not the target) unhealthy and the try goes to the
        // other address; every request is answered by it afterwards.
        await b.close();
        for (let i = 0; i < 10; i++) {
            const r = await request(g.port, { path: '/x' });
            assert.equal(r.status, 200);
            assert.equal(r.text, 'a');
        }
        assert.match(g.stderr, new RegExp(`target pool\\.test:${a.port} \\(address 127\\.0\\.0\\.2:${a.port}\\) is now unhealthy`));
        assert.doesNotMatch(g.stderr, /address 127\.0\.0\.1:\d+\) is now unhealthy/);
    } finally {
        await g.stop();
    }
});

test('a target with SRV records: one entry per record of the best priority, its port and weight', async () => {
    const a = await named('a', '127.0.0.1');
    const b = await named('b', '127.0.0.1');
    const c = await named('c', '127.0.0.1');
    const dns = await startDnsServer({
        'llm.test': { SRV: [{ target: 'a.llm.test', port: a.port, weight: 30, priority: 10, ttl: 3600 },
                            { target: 'b.llm.test', port: b.port, weight: 10, priority: 10, ttl: 3600 },
                            { target: 'c.llm.test', port: c.port, weight: 50, priority: 20, ttl: 3600 }] },
        'a.llm.test': { A: [{ address: '127.0.0.1', ttl: 3600 }] },
        'b.llm.test': { A: [{ address: '127.0.0.1', ttl: 3600 }] },
        'c.llm.test': { A: [{ address: '127.0.0.1', ttl: 3600 }] },
    });
    closers.push(() => dns.close());
    const g = await startSluice(upstreamConfig('llm.test:9'),
                                { workers: 1, args: ['--dns-resolver', `127.0.0.1:${dns.port}`] });
    try {
        assert.ok(await waitFor(() => /target llm\.test:9 now has 2 SRV records/.test(g.stderr), 10000), g.stderr);
        const seen = { a: 0, b: 0, c: 0 };
        for (let i = 0; i < 40; i++) {
            const r = await request(g.port, { path: '/x' });
            assert.equal(r.status, 200);
            seen[r.text]++;
        }
        assert.deepEqual(seen, { a: 30, b: 10, c: 0 }); // 30:10 weights, priority 20 unused
        assert.ok(dns.count('llm.test', 'SRV') >= 1);
    } finally {
        await g.stop();
    }
});
