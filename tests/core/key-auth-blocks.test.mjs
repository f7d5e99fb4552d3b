// key-auth-blocks.test.mjs - end-to-end: key-auth past its cache of
// prepared header blocks.  A worker keeps one block per credential it has
// seen, at most 16,384 per instance (KA_BLOCKS_MAX in
// plugins/key-auth/ka_headers.c); the credentials it meets after that get
// their X-Consumer-* headers through req_headers_set on every request.
// One worker, 16,400 consumers: every key is presented once (the first
// 16,384 fill the cache), then the credentials past the cap and some
// cached ones again, with spoofed consumer headers, and the upstream must
// see each request's own consumer and nothing the client forged.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';

import { startUpstream } from './upstream.mjs';
import { startSluice, request } from './helpers.mjs';

const CAP = 16384; // KA_BLOCKS_MAX
const N = CAP + 16;
const hex12 = (i) => i.toString(16).padStart(12, '0');
const consumerId = (i) => `00000000-0000-4000-8000-${hex12(i)}`;
const credId = (i) => `00000000-0000-4000-a000-${hex12(i)}`;
const key = (i) => `blocks-key-${i}-0123456789`;

function config(upPort) {
    const L = ['_format_version: "3.0"', 'services:', '- name: svc',
               `  url: http://127.0.0.1:${upPort}/base`, '  routes:', '  - name: ka',
               '    paths: [/ka]', '    plugins:', '    - name: key-auth', 'consumers:'];
    for (let i = 0; i < N; i++) {
        L.push(`- username: user-${i}`, `  id: ${consumerId(i)}`);
        if (i % 2) L.push(`  custom_id: custom-${i}`); // even ones have none: cleared
        L.push('  keyauth_credentials:', `  - key: ${key(i)}`, `    id: ${credId(i)}`);
    }
    return L.join('\n') + '\n';
}

let up, gw;
before(async () => {
    up = await startUpstream();
    // 16,400 consumers take a few seconds to load, more under a sanitizer
    gw = await startSluice(config(up.port), { workers: 1, startMs: 120000 });
});
after(async () => {
    await gw?.stop();
    await up?.close();
});

const spoofed = {
    'X-Consumer-ID': 'forged', 'X-Consumer-Username': 'mallory',
    'X-Consumer-Custom-ID': 'spoofed', 'X-Credential-Identifier': 'forged',
    'X-Anonymous-Consumer': 'true',
};

// What the upstream saw for consumer i's key.
function assertConsumer(res, i) {
    assert.equal(res.status, 200, res.text);
    const h = res.json().headers;
    assert.equal(h['x-consumer-id'], consumerId(i));
    assert.equal(h['x-consumer-username'], `user-${i}`);
    assert.equal(h['x-consumer-custom-id'], i % 2 ? `custom-${i}` : undefined);
    assert.equal(h['x-credential-identifier'], credId(i));
    assert.equal(h['x-anonymous-consumer'], undefined);
}

test(`past ${CAP} prepared blocks a worker still forwards each consumer's headers`, async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    try {
        // every credential once, eight requests in flight: the first CAP
        // seen fill the worker's cache, the rest take the fallback
        let next = 0;
        const statuses = new Map();
        const worker = async () => {
            while (next < N) {
                const i = next++;
                const res = await request(gw.port, { path: '/ka', headers: { apikey: key(i) }, agent });
                statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
                if (res.status === 200 && res.json().headers['x-consumer-username'] !== `user-${i}`)
                    statuses.set('wrong consumer', (statuses.get('wrong consumer') ?? 0) + 1);
            }
        };
        await Promise.all(Array.from({ length: 8 }, worker));
        assert.deepEqual([...statuses], [[200, N]]);

        // at least N - CAP credentials are past the cap (which ones depends
        // on arrival order): check them all again, and cached ones, spoofed
        for (let i = 0; i < N; i += i < 32 || i >= CAP - 64 ? 1 : 997) {
            const res = await request(gw.port, {
                path: '/ka', headers: { apikey: key(i), ...spoofed }, agent,
            });
            assertConsumer(res, i);
        }
        // an unknown key is still refused
        const bad = await request(gw.port, { path: '/ka', headers: { apikey: key(N) }, agent });
        assert.equal(bad.status, 401);
    } finally {
        agent.destroy();
    }
});
