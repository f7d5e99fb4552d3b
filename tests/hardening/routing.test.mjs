/* routing.test.mjs - the path a route sees is the path Kong's router sees
 * (percent-decoded unreserved characters, dot segments removed, slashes
 * merged), and the upstream gets that path, not the client's: a request
 * cannot climb out of its route with "..", nor dodge a route with "%65" or
 * "//".  Malformed request lines and Host headers are refused (RFC 9112). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startStack, httpRequest, rawExchange } from './lib.mjs';

let st, workers0;

before(async () => {
    st = await startStack({
        workers: 1,
        extraServices: ({ upPort }) => `
  - name: public-service
    url: http://127.0.0.1:${upPort}/pub
    routes:
      - name: public-route
        paths: ["/public"]
  - name: admin-service
    url: http://127.0.0.1:${upPort}/adm
    routes:
      - name: admin-route
        paths: ["/admin"]
  - name: echo-service
    url: http://127.0.0.1:${upPort}/echo-svc
    routes:
      - name: echo-route
        paths: ["/echo"]`,
    });
    workers0 = st.workers();
});

after(async () => {
    if (!st) return;
    assert.deepEqual(st.workers(), workers0, 'a worker died');
    await st.stop();
});

/* GET path through the gateway: {status, url the upstream saw, its X-Forwarded-Path}. */
async function via(path) {
    const n = st.up.requests.length;
    const r = await httpRequest(st.port, { path });
    const seen = st.up.requests.length > n ? st.up.requests[st.up.requests.length - 1] : null;
    return { status: r.status, url: seen?.url ?? null, fwdPath: seen?.headers['x-forwarded-path'] ?? null };
}

const CASES = [
    // [client path, upstream path] — issue 21's escapes first
    ['/public/../admin/secret', '/adm/secret'],
    ['/public/%2e%2e/admin/secret', '/adm/secret'],
    ['/public/%2E%2E/admin/secret', '/adm/secret'],
    ['/public/./../admin/secret', '/adm/secret'],
    ['/public/x/../../admin/secret', '/adm/secret'],
    ['/%65cho/x', '/echo-svc/x'],
    ['//echo/x', '/echo-svc/x'],
    ['/echo//x///y', '/echo-svc/x/y'],
    ['/public/../../../etc/passwd', null],          // climbs to "/etc/passwd": no route -> 404
    ['/plain/a%20b', '/up/a%20b'],                  // decoded for matching, escaped again upstream
    ['/plain/%7euser', '/up/~user'],
    ['/plain/a%2fb', '/up/a%2Fb'],                  // reserved: stays encoded
    ['/plain/a%2Fb/..', '/up/'],
    ['/plain/endel%C3%B8st', '/up/endel%C3%B8st'],
    ['/plain/a/./b/../c?q=/../x', '/up/a/c?q=/../x'], // the query is not touched
];

test('routes match and forward the normalised path', async () => {
    const bad = [];
    for (const [p, want] of CASES) {
        const r = await via(p);
        if (want === null) {
            if (r.status !== 404 || r.url !== null) bad.push(`${p}: want 404, got ${r.status} upstream ${r.url}`);
        } else if (r.status !== 200 || r.url !== want) {
            bad.push(`${p}: want ${want}, got ${r.status} upstream ${r.url}`);
        } else if (r.fwdPath !== p.split('?')[0]) {
            bad.push(`${p}: X-Forwarded-Path ${r.fwdPath}, want the client's path`);
        }
    }
    assert.deepEqual(bad, []);
});

test('bad percent-encoding is a 400', async () => {
    for (const p of ['/plain/%zz', '/plain/a%2', '/plain/a%', '/plain/a%00b']) {
        const r = await rawExchange(st.port, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`);
        assert.equal(r.status, 400, `${p}: ${r.text.slice(0, 80)}`);
    }
});

test('two Host headers, a Host with a path or a bad port, HTTP/2.0 and version-less lines: 400', async () => {
    const cases = [
        'GET /plain/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
        'GET /plain/x HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n',
        'GET /plain/x HTTP/1.1\r\nHost: example.com/admin\r\n\r\n',
        'GET /plain/x HTTP/1.1\r\nHost: example.com:99999\r\n\r\n',
        'GET /plain/x HTTP/1.1\r\nHost: example.com:80x\r\n\r\n',
        'GET /plain/x HTTP/1.1\r\nHost: user@example.com\r\n\r\n',
        'GET /plain/x HTTP/1.1\r\nHost: [::1\r\n\r\n',
        'GET /plain/x HTTP/2.0\r\nHost: a\r\n\r\n',
        'GET /plain/x HTTP/1.2\r\nHost: a\r\n\r\n',
        'GET /plain/x\r\nHost: a\r\n\r\n',
        'GET /plain/x\r\n\r\n',
    ];
    for (const c of cases) {
        const r = await rawExchange(st.port, c);
        assert.equal(r.status, 400, `${JSON.stringify(c)}: ${r.text.slice(0, 80)}`);
    }
    for (const h of ['example.com', 'example.com:8080', '[::1]:80', '127.0.0.1:65535', 'x:']) {
        const r = await rawExchange(st.port, `GET /plain/x HTTP/1.1\r\nHost: ${h}\r\nConnection: close\r\n\r\n`);
        assert.equal(r.status, 200, `Host ${h}: ${r.text.slice(0, 80)}`);
    }
});
