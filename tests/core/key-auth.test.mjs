// key-auth.test.mjs - end-to-end: the key-auth plugin and consumers through
// the real binary: Kong's answers (401 texts, WWW-Authenticate), the
// X-Consumer-* headers upstream (client-sent ones overwritten), key in
// header/query/body, hide_credentials, anonymous, run_on_preflight,
// duplicate keys, consumer-scoped plugins (Kong's precedence, and only
// plugins after key-auth see the consumer), config errors, and curl.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

import { startUpstream } from './upstream.mjs';
import { startSluice, runSluice, request, tmpDir } from './helpers.mjs';
import fs from 'node:fs';
import path from 'node:path';

let up, gw;

const ALICE = '11111111-1111-4111-8111-111111111111';
const config = (upPort) => `_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${upPort}/base
  routes:
  - name: plain
    paths: [/plain]
    plugins:
    - name: key-auth
  - name: custom
    paths: [/custom]
    plugins:
    - name: key-auth
      config:
        key_names: [x-api-key, apikey]
        hide_credentials: true
        realm: sluice
        run_on_preflight: false
  - name: anon
    paths: [/anon]
    plugins:
    - name: key-auth
      config: {anonymous: guest}
  - name: ghost
    paths: [/ghost]
    plugins:
    - name: key-auth
      config: {anonymous: nobody-here}
  - name: body
    paths: [/body]
    plugins:
    - name: key-auth
      config: {key_in_body: true, key_in_header: false, key_in_query: false, hide_credentials: true}
  - name: long-name
    paths: [/long]
    plugins:
    - name: key-auth
      config: {key_names: [X-Long_Key-Name-123], key_in_query: false}
  - name: short-names
    paths: [/short]
    plugins:
    - name: key-auth
      config: {key_names: [k_1, Key_5, kEy-Six7], key_in_query: false}
  - name: open
    paths: [/open]
  - name: paused
    paths: [/paused]
    plugins:
    - name: t-pause
      config: {action: continue, delay_ms: 5, consumer: alice}
consumers:
- username: alice
  id: ${ALICE}
  custom_id: team-a
  keyauth_credentials:
  - key: alice-key-1
    id: aaaaaaaa-0000-4000-8000-000000000001
  plugins:
  - name: t-headers
    config: {replace: {name: X-Who, value: alice}}
  - name: t-deny
- username: bob
  keyauth_credentials:
  - key: bob-key
- custom_id: guest-c
  username: guest
keyauth_credentials:
- key: alice-key-2
  consumer: alice
plugins:
- name: t-headers
  config: {replace: {name: X-Who, value: global}}
`;

before(async () => {
    up = await startUpstream();
    gw = await startSluice(config(up.port), { workers: 1 });
});
after(async () => {
    await gw?.stop();
    await up?.close();
});

const get = (p, headers = {}, extra = {}) => request(gw.port, { path: p, headers, ...extra });

function kongError(res, status, message) {
    assert.equal(res.status, status, res.text);
    assert.match(res.headers['content-type'], /^application\/json/);
    const j = res.json();
    assert.equal(j.message, message);
    assert.match(j.request_id, /^[0-9a-f]{32}$/);
}

test('no key: 401 "No API key found in request" with WWW-Authenticate: Key', async () => {
    const res = await get('/plain');
    kongError(res, 401, 'No API key found in request');
    assert.equal(res.headers['www-authenticate'], 'Key');
    assert.equal(up.requests.filter((q) => q.url.startsWith('/base')).length, 0);
    /* an empty key counts as none */
    kongError(await get('/plain', { apikey: '' }), 401, 'No API key found in request');
});

test('unknown key: 401 "Unauthorized"; realm in WWW-Authenticate', async () => {
    const res = await get('/plain', { apikey: 'not-a-key' });
    kongError(res, 401, 'Unauthorized');
    const r2 = await get('/custom', { 'x-api-key': 'alice-key-1x' });
    kongError(r2, 401, 'Unauthorized');
    assert.equal(r2.headers['www-authenticate'], 'Key realm="sluice"');
});

test('a known key: consumer headers upstream, spoofed ones replaced, key kept without hide_credentials', async () => {
    // again and again: after the first, a worker applies the credential's
    // prepared headers (ABI 1.7 header block), which must clear the same
    // spoofed ones (any case, given twice)
    for (let i = 0; i < 6; i++) {
        const res = await get('/plain?x=1', {
            apikey: 'bob-key', 'X-Consumer-Custom-ID': 'spoofed', 'X-Anonymous-Consumer': 'true',
            'X-Consumer-Username': 'mallory', 'x-credential-identifier': ['forged', 'twice'],
        });
        assert.equal(res.status, 200, res.text);
        const h = res.json().headers;
        assert.match(h['x-consumer-id'], /^[0-9a-f-]{36}$/);
        assert.equal(h['x-consumer-username'], 'bob');
        assert.equal(h['x-consumer-custom-id'], undefined);
        assert.match(h['x-credential-identifier'], /^[0-9a-f-]{36}$/);
        assert.equal(h['x-anonymous-consumer'], undefined);
        assert.equal(h.apikey, 'bob-key');
        assert.equal(res.headers['x-who'], 'global');
    }
});

test('key in the query (percent-encoded), hidden upstream with hide_credentials; header names any case', async () => {
    const res = await get('/custom/q?a=1&apikey=alice%2Dkey%2D2&b=2');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().headers['x-consumer-username'], 'alice');
    const ok = await get('/custom/q?a=1&apikey=bob-key&b=2');
    assert.equal(ok.status, 200, ok.text);
    const e = ok.json();
    assert.equal(e.query ?? e.url.split('?')[1], e.query ?? 'a=1&b=2');
    assert.ok(!e.url.includes('bob-key'), e.url);
    const hdr = await get('/custom', { 'X-API-KEY': 'bob-key' });
    assert.equal(hdr.status, 200);
    assert.equal(hdr.json().headers['x-api-key'], undefined);
    assert.equal(hdr.json().headers['x-consumer-username'], 'bob');
});

test('a key name of more than eight bytes with an underscore: any case, and nothing else', async () => {
    for (const name of ['X-Long_Key-Name-123', 'x-long_key-name-123', 'X-LONG_KEY-NAME-123']) {
        const res = await get('/long', { [name]: 'bob-key' });
        assert.equal(res.status, 200, `${name}: ${res.text}`);
        assert.equal(res.json().headers['x-consumer-username'], 'bob');
    }
    /* '-' for '_', one byte off in the first eight or in the tail */
    for (const name of ['X-Long-Key-Name-123', 'X-Long_Key-Name-124', 'Y-Long_Key-Name-123',
                        'X-Long_Kez-Name-123'])
        kongError(await get('/long', { [name]: 'bob-key' }), 401, 'No API key found in request');
});

test('key names of 3, 5 and 8 bytes: any case, and nothing else', async () => {
    for (const name of ['K_1', 'kEY_5', 'KEY-SIX7', 'key-six7']) {
        const res = await get('/short', { [name]: 'bob-key' });
        assert.equal(res.status, 200, `${name}: ${res.text}`);
        assert.equal(res.json().headers['x-consumer-username'], 'bob');
    }
    for (const name of ['k-1', 'k_2', 'key-5', 'Kez_5', 'key_6', 'key-six8', 'keY_six7'])
        kongError(await get('/short', { [name]: 'bob-key' }), 401, 'No API key found in request');
});

test('a name given twice: 401 "Duplicate API key found"', async () => {
    kongError(await get('/plain?apikey=a&apikey=b'), 401, 'Duplicate API key found');
    const res = await request(gw.port, { path: '/plain', headers: { apikey: ['bob-key', 'bob-key'] } });
    kongError(res, 401, 'Duplicate API key found');
    /* the header wins over the query: the query is not looked at */
    assert.equal((await get('/plain?apikey=a&apikey=b', { apikey: 'bob-key' })).status, 200);
});

test('consumer-scoped plugins: only for that consumer, and only those after key-auth', async () => {
    /* alice: her t-headers (800, after key-auth 1250) replaces the global
     * one; her t-deny (1500) would run before key-auth, where the consumer
     * is not known yet: as in Kong, it does not apply */
    const res = await get('/plain', { apikey: 'alice-key-1' });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.headers['x-who'], 'alice');
    const h = res.json().headers;
    assert.equal(h['x-consumer-id'], ALICE);
    assert.equal(h['x-consumer-custom-id'], 'team-a');
    assert.equal(h['x-credential-identifier'], 'aaaaaaaa-0000-4000-8000-000000000001');
    /* bob gets the global one */
    assert.equal((await get('/plain', { apikey: 'bob-key' })).headers['x-who'], 'global');
    /* no consumer: global */
    assert.equal((await get('/open')).headers['x-who'], 'global');
});

test('consumer_set from a paused access phase (a timer callback, as after an identity service)', async () => {
    const res = await get('/paused');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json().headers['x-paused-as'], '0');
    assert.equal(res.headers['x-who'], 'alice'); /* her t-headers, re-resolved after the pause */
});

test('anonymous: failures pass as the anonymous consumer; a missing one is a 500', async () => {
    const res = await get('/anon', { apikey: 'wrong' });
    assert.equal(res.status, 200, res.text);
    const h = res.json().headers;
    assert.equal(h['x-consumer-username'], 'guest');
    assert.equal(h['x-consumer-custom-id'], 'guest-c');
    assert.equal(h['x-anonymous-consumer'], 'true');
    assert.equal(h['x-credential-identifier'], undefined);
    for (let i = 0; i < 3; i++) { // later failures: the consumer found once per worker
        const again = await get('/anon', {});
        assert.equal(again.status, 200, again.text);
        assert.equal(again.json().headers['x-consumer-username'], 'guest');
    }
    const ok = await get('/anon', { apikey: 'bob-key', 'x-anonymous-consumer': 'true' });
    assert.equal(ok.json().headers['x-anonymous-consumer'], undefined);
    assert.equal(ok.json().headers['x-consumer-username'], 'bob');
    kongError(await get('/ghost'), 500, "anonymous consumer nobody-here is configured but doesn't exist");
});

test('run_on_preflight: false lets OPTIONS through', async () => {
    const res = await get('/custom', {}, { method: 'OPTIONS' });
    assert.equal(res.status, 200, res.text);
    kongError(await get('/plain', {}, { method: 'OPTIONS' }), 401, 'No API key found in request');
});

test('key_in_body: form and JSON bodies, removed upstream with hide_credentials', async () => {
    const form = await request(gw.port, {
        method: 'POST', path: '/body', body: 'a=1&apikey=bob-key&b=2',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(form.status, 200, form.text);
    assert.equal(form.json().body, 'a=1&b=2');
    assert.equal(form.json().headers['x-consumer-username'], 'bob');
    const js = await request(gw.port, {
        method: 'POST', path: '/body', body: JSON.stringify({ apikey: 'bob-key', q: 1 }),
        headers: { 'content-type': 'application/json' },
    });
    assert.equal(js.status, 200, js.text);
    assert.deepEqual(JSON.parse(js.json().body), { q: 1 });
    const none = await request(gw.port, {
        method: 'POST', path: '/body', body: '{"q":1}', headers: { 'content-type': 'application/json', apikey: 'bob-key' },
    });
    kongError(none, 401, 'No API key found in request');
});

test('curl: one consumer works, a wrong key is refused with Kong\'s body', async () => {
    let curl;
    try { curl = execFileSync('curl', ['--version']).toString(); } catch { curl = null; }
    if (!curl) return;
    /* async: the upstream lives in this process */
    const ok = (await run('curl', ['-s', '--noproxy', '*', '-H', 'apikey: bob-key', `http://127.0.0.1:${gw.port}/plain`])).stdout;
    assert.equal(JSON.parse(ok).headers['x-consumer-username'], 'bob');
    const bad = (await run('curl', ['-s', '--noproxy', '*', '-i', '-H', 'apikey: nope', `http://127.0.0.1:${gw.port}/plain`])).stdout;
    assert.match(bad, /^HTTP\/1\.1 401 Unauthorized/);
    assert.match(bad, /WWW-Authenticate: Key\r\n/i);
    assert.match(bad, /"message":"Unauthorized"/);
});

test('config errors: duplicate keys across consumers, bad key_names, unknown fields', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'bad.yaml');
    fs.writeFileSync(file, `_format_version: "3.0"
consumers:
- username: a
  keyauth_credentials: [{key: same}]
- username: b
  keyauth_credentials: [{key: same}]
plugins:
- name: key-auth
  config: {key_names: ["x api key"], hide_credentials: "yes", colour: red}
`);
    const r = await runSluice(['-t', '-d', file]);
    assert.notEqual(r.code, 0);
    const out = r.stdout + r.stderr;
    assert.match(out, /bad\.yaml:6: consumers\[1\]\.keyauth_credentials\[0\]\.key: duplicate key: the same key is given at consumers\[0\]\.keyauth_credentials\[0\]/);
    assert.ok(!out.includes('same}') && !/key: same|'same'/.test(out), 'the key is never printed');
    assert.match(out, /plugins\[0\]\.config\.key_names\[0\]: bad header name/);
    assert.match(out, /plugins\[0\]\.config\.hide_credentials: expected a boolean/);
    assert.match(out, /plugins\[0\]\.config\.colour: unknown field/);
});
