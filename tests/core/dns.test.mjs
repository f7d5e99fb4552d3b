// dns.test.mjs - upstream host names resolved by c-ares on the worker's
// loop through the name servers of `dns_resolver` (docs/upstream.md "DNS"):
// answers cached for the record's TTL (one query for many requests), a
// changed record followed once the TTL ran out, a stale answer kept while
// the name server is gone (dns_stale_ttl), an unknown name answered 502
// with the reason in the log, and a bad dns_resolver refused at start.
// The name server is tests/core/dns-server.mjs on a loopback UDP port.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

import { startSluice, runSluice, request, waitFor, freePort, tmpDir, slow } from './helpers.mjs';
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

// Kong's dns_no_sync: off (the default) makes requests that miss the
// cache together share one query; on sends one per request.  The server
// holds its answers until all five requests are in flight (the status
// listener's connections_writing), so every one of them missed the cache.
test('dns_no_sync: concurrent misses share one query; on, each request asks its own', async () => {
    const { port } = await named('a', '127.0.0.1');
    for (const noSync of ['off', 'on']) {
        const name = `sync-${noSync}.test`;
        const dns = await startDnsServer({ [name]: { A: [{ address: '127.0.0.1', ttl: 3600 }] } });
        closers.push(() => dns.close());
        dns.hold(name);
        const statusPort = await freePort();
        const g = await startSluice(config(name, port).replace('paths: ["/"]', 'paths: ["/x"]'), {
            workers: 1,
            args: ['--dns-resolver', `127.0.0.1:${dns.port}`, '--dns-no-sync', noSync,
                '--status-listen', `127.0.0.1:${statusPort}`],
        });
        try {
            const reqs = Array.from({ length: 5 }, () => request(g.port, { path: '/x', timeoutMs: 30000 }));
            const inFlight = async () => JSON.parse((await request(statusPort, { path: '/status' })).text).server.connections_writing;
            assert.ok(await waitFor(async () => await inFlight() >= 5, slow(10000)), 'five requests waiting for the name');
            assert.ok(await waitFor(() => dns.countIds(name, 'A') >= (noSync === 'on' ? 5 : 1), slow(10000)), JSON.stringify(dns.queries));
            dns.release(name);
            for (const r of await Promise.all(reqs))
                assert.equal(r.status, 200);
            assert.equal(dns.countIds(name, 'A'), noSync === 'on' ? 5 : 1, `dns_no_sync ${noSync}: ${JSON.stringify(dns.queries)}`);
        } finally {
            await g.stop();
        }
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
        await waitFor(() => /could not resolve host "nowhere\.test"/.test(g.stderr), slow(10000));
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
        }, slow(15000), 200), g.stderr);
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
        assert.ok(await waitFor(() => /target llm\.test:9 now has 2 SRV records/.test(g.stderr), slow(10000)), g.stderr);
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

// The status listener's GET /upstreams/{name}/health and prometheus's
// kong_upstream_target_health, each address of the target on its own.
function healthView(statusPort) {
    const health = async () => (await request(statusPort, { path: '/upstreams/pool.internal/health' })).json();
    const gauge = async () => {
        const text = (await request(statusPort, { path: '/metrics' })).text;
        const m = {};
        for (const [, target, address, state, v] of text.matchAll(
            /^kong_upstream_target_health\{upstream="pool\.internal",target="([^"]+)",address="([^"]*)",state="(\w+)",subsystem="http"\} (\d)$/gm))
            if (v === '1') m[`${target}@${address}`] = state;
        return m;
    };
    return { health, gauge };
}

const withPrometheus = '\nplugins:\n- name: prometheus\n  config: {upstream_health_metrics: true}\n';

test('each address on the status listener and in prometheus; a name that stops resolving is DNS_ERROR', async () => {
    const dns = await startDnsServer({ 'pool.test': { A: [{ address: '127.0.0.1', ttl: 1 }, { address: '127.0.0.2', ttl: 1 }] } });
    closers.push(() => dns.close());
    const a = await named('a', '127.0.0.1');
    const b = await named('b', '127.0.0.2', a.port);
    const statusPort = await freePort();
    const { health, gauge } = healthView(statusPort);
    const hc = '  healthchecks: {passive: {unhealthy: {tcp_failures: 1}}}';
    const g = await startSluice(upstreamConfig(`pool.test:${a.port}`, hc) + withPrometheus, {
        workers: 1, env: { SLUICE_STATUS_LISTEN: String(statusPort) },
        args: ['--dns-resolver', `127.0.0.1:${dns.port}`, '--dns-stale-ttl', '0', '--dns-not-found-ttl', '1'],
    });
    const t = `pool.test:${a.port}`;
    const addrs = async () => (await health()).data[0].data.addresses.map((x) => `${x.ip}:${x.port}=${x.health}`);
    try {
        assert.ok(await waitFor(async () => (await addrs()).length === 2, slow(10000)), JSON.stringify(await health()));
        let h = (await health()).data[0];
        assert.equal(h.health, 'HEALTHY');
        assert.equal(h.data.dns, 'A');
        assert.deepEqual(h.data.weight, { total: 200, unavailable: 0, available: 200 });
        assert.deepEqual(await addrs(), [`127.0.0.1:${a.port}=HEALTHY`, `127.0.0.2:${a.port}=HEALTHY`]);
        assert.deepEqual(await gauge(), { [`${t}@127.0.0.1:${a.port}`]: 'healthy', [`${t}@127.0.0.2:${a.port}`]: 'healthy' });

        // One address refuses: it alone turns UNHEALTHY; the target stays
        // HEALTHY while the other address is.
        await b.close();
        assert.ok(await waitFor(async () => {
            await request(g.port, { path: '/x' });
            return (await addrs()).includes(`127.0.0.2:${a.port}=UNHEALTHY`);
        }, slow(10000)), JSON.stringify(await health()));
        h = (await health()).data[0];
        assert.equal(h.health, 'HEALTHY');
        assert.deepEqual(h.data.weight, { total: 200, unavailable: 100, available: 100 });
        assert.deepEqual(await gauge(), { [`${t}@127.0.0.1:${a.port}`]: 'healthy', [`${t}@127.0.0.2:${a.port}`]: 'unhealthy' });

        // The name goes away (NXDOMAIN, no stale answer allowed): no
        // address left, Kong's DNS_ERROR, and no peer for a request.
        dns.remove('pool.test');
        assert.ok(await waitFor(async () => (await health()).data[0].health === 'DNS_ERROR', slow(10000)), JSON.stringify(await health()));
        h = (await health()).data[0];
        assert.deepEqual(h.data.addresses, []);
        assert.match(h.data.dns, /could not resolve (SRV of )?host "pool\.test"/);
        assert.deepEqual(await gauge(), { [`${t}@`]: 'dns_error' });
        assert.match(g.stderr, new RegExp(`target ${t} has no address \\(DNS_ERROR\\)`));
        const r = await request(g.port, { path: '/x' });
        assert.equal(r.status, 503);
        assert.equal(r.json().message, 'failure to get a peer from the ring-balancer');

        // It resolves again: the address comes back with its health.
        dns.set('pool.test', { A: [{ address: '127.0.0.1', ttl: 3600 }] });
        assert.ok(await waitFor(async () => (await health()).data[0].health === 'HEALTHY', slow(10000)), JSON.stringify(await health()));
        assert.deepEqual(await addrs(), [`127.0.0.1:${a.port}=HEALTHY`]);
        assert.equal((await request(g.port, { path: '/x' })).text, 'a');
    } finally {
        await g.stop();
    }
});

test('an address keeps its health over a reload while it is still resolved', async () => {
    const dns = await startDnsServer({ 'pool.test': { A: [{ address: '127.0.0.1', ttl: 3600 }, { address: '127.0.0.2', ttl: 3600 }] } });
    closers.push(() => dns.close());
    const a = await named('a', '127.0.0.1');
    const b = await named('b', '127.0.0.2', a.port);
    const statusPort = await freePort();
    const { health } = healthView(statusPort);
    const hc = '  healthchecks: {passive: {unhealthy: {tcp_failures: 1}}}';
    const g = await startSluice(upstreamConfig(`pool.test:${a.port}`, hc), {
        workers: 1, env: { SLUICE_STATUS_LISTEN: String(statusPort) },
        args: ['--dns-resolver', `127.0.0.1:${dns.port}`],
    });
    const addrs = async () => (await health()).data[0].data.addresses.map((x) => `${x.ip}=${x.health}`);
    try {
        assert.ok(await waitFor(async () => (await addrs()).length === 2, slow(10000)));
        await b.close();
        assert.ok(await waitFor(async () => {
            await request(g.port, { path: '/x' });
            return (await addrs()).includes('127.0.0.2=UNHEALTHY');
        }, slow(10000)));
        const hash = (await request(statusPort, { path: '/status' })).json().configuration_hash;
        await g.reload(upstreamConfig(`pool.test:${a.port}`, hc).replace('retries: 2', 'retries: 3'));
        // the new generation's worker answers once it resolved the name
        assert.ok(await waitFor(async () => {
            const s = (await request(statusPort, { path: '/status' })).json();
            return s.configuration_hash !== hash && (await addrs()).length === 2;
        }, slow(10000)), g.stderr);
        assert.deepEqual((await addrs()).sort(), ['127.0.0.1=HEALTHY', '127.0.0.2=UNHEALTHY']);
        for (let i = 0; i < 4; i++)
            assert.equal((await request(g.port, { path: '/x' })).text, 'a');
        assert.doesNotMatch(g.stderr, /address 127\.0\.0\.2:\d+\) is now unhealthy[^]*address 127\.0\.0\.2:\d+\) is now unhealthy/);
    } finally {
        await g.stop();
    }
});

test('a name with more addresses than the DNS layer keeps: 16 entries, each with its own health', async () => {
    const many = Array.from({ length: 20 }, (_, i) => ({ address: `127.0.1.${i + 1}`, ttl: 3600 }));
    const dns = await startDnsServer({ 'pool.test': { A: many } });
    closers.push(() => dns.close());
    const statusPort = await freePort();
    const { health } = healthView(statusPort);
    const g = await startSluice(upstreamConfig('pool.test:9', '  healthchecks: {passive: {unhealthy: {tcp_failures: 1}}}'), {
        workers: 1, env: { SLUICE_STATUS_LISTEN: String(statusPort) },
        args: ['--dns-resolver', `127.0.0.1:${dns.port}`],
    });
    try {
        assert.ok(await waitFor(() => /target pool\.test:9 now has 16 addresses/.test(g.stderr), slow(10000)), g.stderr);
        // nothing listens on port 9: each try marks its own address down
        // (startSluice's readiness request may have taken some already)
        const downs = async () => (await health()).data[0].data.addresses.filter((x) => x.health === 'UNHEALTHY').length;
        const before = await downs();
        assert.equal((await request(g.port, { path: '/x' })).status, 502);
        const h = (await health()).data[0].data.addresses;
        assert.equal(h.length, 16);
        assert.equal(new Set(h.map((x) => x.ip)).size, 16);
        assert.equal(await downs(), before + 3, g.stderr); // 1 + retries 2, one address each
        assert.doesNotMatch(g.stderr, /health slots are in use/);
    } finally {
        await g.stop();
    }
});

test('dns_hostsfile, dns_order, dns_cache_size and NONE in the settings file; bad values refused with file:line', async () => {
    const dir = tmpDir();
    const hosts = path.join(dir, 'hosts');
    fs.writeFileSync(hosts, '127.0.0.1 fromhosts.test\n');
    const settings = path.join(dir, 'sluice.conf');
    const bad = [
        ['dns_order = LAST,SRV,MX', /sluice\.conf:2: dns_order: invalid value 'LAST,SRV,MX' \(expected a comma-separated list of LAST, SRV, A, AAAA and CNAME/],
        ['dns_order = SRV,CNAME', /sluice\.conf:2: dns_order: invalid value 'SRV,CNAME' \(expected .*with A or AAAA among them/],
        ['dns_order = A,A', /sluice\.conf:2: dns_order: invalid value 'A,A'/],
        [`dns_hostsfile = ${path.join(dir, 'nope')}`, /sluice\.conf:2: dns_hostsfile: invalid value .*the file does not exist/],
        ['dns_cache_size = 0', /sluice\.conf:2: dns_cache_size: invalid value '0'/],
        ['dns_stale_ttl = NONE', /sluice\.conf:2: dns_stale_ttl: invalid value 'NONE'/],
    ];
    for (const [line, re] of bad) {
        fs.writeFileSync(settings, `log_level = info\n${line}\n`);
        const r = await runSluice(['-t', '-d', '/dev/null', '-c', settings]);
        assert.equal(r.code, 1, line);
        assert.match(r.stderr, re, line);
    }
    // Kong's NONE (its default for dns_resolver and dns_valid_ttl) is the default here
    const kong = path.join(dir, 'kong.yaml');
    fs.writeFileSync(kong, '_format_version: "3.0"\n');
    fs.writeFileSync(settings, 'dns_resolver = NONE\ndns_valid_ttl = NONE\ndns_order = last,a,srv,cname\n');
    const ok = await runSluice(['-t', '-d', kong, '-c', settings]);
    assert.equal(ok.code, 0, ok.stderr);

    // The hosts file named by dns_hostsfile answers first; dns_order
    // without SRV never asks for SRV records (A only: no AAAA either).
    const dns = await startDnsServer({ 'pool.test': { A: [{ address: '127.0.0.1', ttl: 3600 }] } });
    closers.push(() => dns.close());
    const { port } = await named('a', '127.0.0.1');
    fs.writeFileSync(settings, `dns_hostsfile = ${hosts}\ndns_order = A\ndns_cache_size = 16\ndns_resolver = 127.0.0.1:${dns.port}\n`);
    const g = await startSluice(config('fromhosts.test', port), { workers: 1, args: ['-c', settings] });
    try {
        const r = await request(g.port, { path: '/x' });
        assert.equal(r.status, 200);
        assert.equal(r.text, 'a');
        assert.equal(dns.count('fromhosts.test'), 0, JSON.stringify(dns.queries));
    } finally {
        await g.stop();
    }
    const g2 = await startSluice(upstreamConfig(`pool.test:${port}`), { workers: 1, args: ['-c', settings] });
    try {
        assert.ok(await waitFor(() => /target pool\.test:\d+ now has 1 address/.test(g2.stderr), slow(10000)), g2.stderr);
        assert.equal((await request(g2.port, { path: '/x' })).text, 'a');
        assert.equal(dns.count('pool.test', 'SRV'), 0, JSON.stringify(dns.queries));
        assert.equal(dns.count('pool.test', 'AAAA'), 0, JSON.stringify(dns.queries));
        assert.ok(dns.count('pool.test', 'A') >= 1);
    } finally {
        await g2.stop();
    }
});
