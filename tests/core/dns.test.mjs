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

// An HTTP server on ip:port answering its name.  It closes every
// connection: pooled upstream connections are keyed by host name, so a
// kept one would hide which address a new connection goes to.
function named(name, ip, port = 0) {
    const server = http.createServer((req, res) => {
        res.writeHead(200, { 'x-target': name, connection: 'close' });
        res.end(name);
    });
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, ip, () => {
            closers.push(() => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }));
            resolve(server.address().port);
        });
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
    const port = await named('a', '127.0.0.1');
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
    const port = await named('a', '127.0.0.1');
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
