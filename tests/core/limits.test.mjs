// limits.test.mjs - end-to-end: request limits and malformed input.  The
// limits come from SLUICE_* settings environment variables; every answer is
// a JSON body, and a broken request closes the connection.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';

import { startUpstream } from './upstream.mjs';
import { startSluice, request, RawClient, get, sleep, simpleConfig, slow } from './helpers.mjs';

let up, gw;

before(async () => {
    up = await startUpstream();
    gw = await startSluice(simpleConfig(up.port), {
        env: {
            SLUICE_MAX_BODY_SIZE: '1k',
            SLUICE_MAX_HEADER_SIZE: '4k',
            SLUICE_CLIENT_HEADER_TIMEOUT: '500',
            SLUICE_CLIENT_BODY_TIMEOUT: '500',
        },
    });
});

after(async () => {
    await gw?.stop();
    await up?.close();
});

function assertJsonError(r, status) {
    assert.equal(r.status, status);
    assert.match(r.headers['content-type'] ?? '', /application\/json/);
    assert.equal(typeof JSON.parse(r.text).message, 'string');
}

test('requests within the limits pass', { timeout: slow(10000) }, async () => {
    const r = await request(gw.port, { method: 'POST', path: '/p/ok', body: 'x'.repeat(1024),
                                       headers: { 'X-Big': 'h'.repeat(2000) } });
    assert.equal(r.status, 200);
    assert.equal(r.json().bodyLength, 1024);
});

test('431 for oversized headers', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write(get(gw.port, '/p/x', { 'X-Huge': 'h'.repeat(8000) }));
    const r = await c.next();
    assertJsonError(r, 431);
    assert.ok(await c.waitClosed(), 'connection closed');
    assert.equal(up.requests.filter((q) => q.headers['x-huge']).length, 0);
});

test('413 for an oversized body (Content-Length and chunked)', { timeout: slow(10000) }, async () => {
    let c = await RawClient.open(gw.port);
    c.write(`POST /p/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2048\r\n\r\n` + 'b'.repeat(2048));
    let r = await c.next();
    assertJsonError(r, 413);
    assert.ok(await c.waitClosed(), 'connection closed');

    c = await RawClient.open(gw.port);
    c.write(`POST /p/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
    for (let i = 0; i < 3; i++) c.write(`200\r\n${'c'.repeat(512)}\r\n`);
    r = await c.next();
    assertJsonError(r, 413);
    c.destroy();
});

test('408 when headers arrive too slowly', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    const t0 = Date.now();
    c.write('GET /p/slow HTTP/1.1\r\nHost: x\r\n');   // never finished
    const r = await c.next({ timeoutMs: slow(8000) });
    const took = Date.now() - t0;
    assertJsonError(r, 408);
    assert.ok(took >= 400 && took < 2500, `took ${took} ms`);
    assert.ok(await c.waitClosed(), 'connection closed');
});

test('408 when the body arrives too slowly', { timeout: slow(10000) }, async () => {
    const c = await RawClient.open(gw.port);
    c.write('POST /p/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc');
    const r = await c.next({ timeoutMs: slow(8000) });
    assertJsonError(r, 408);
    assert.ok(await c.waitClosed(), 'connection closed');
});

test('malformed requests get 400 and the connection closes', { timeout: slow(10000) }, async () => {
    const bad = [
        'GARBAGE\r\n\r\n',
        'GET /p HTTP/1.1\r\nHost: x\r\nBad Header Name: 1\r\n\r\n',
        'GET /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello',
        'POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
        'GET /p HTTP/1.1\r\n\r\n',                         // no Host in HTTP/1.1
        '\x00\x01\x02\x03 / HTTP/1.1\r\n\r\n',
    ];
    for (const b of bad) {
        const c = await RawClient.open(gw.port);
        c.write(b);
        const r = await c.next({ timeoutMs: slow(8000) });
        assertJsonError(r, 400);
        assert.ok(await c.waitClosed(), `connection closed after ${JSON.stringify(b)}`);
    }
    // a good request after a bad one on the same connection is not served
    const c = await RawClient.open(gw.port);
    c.write('BROKEN LINE\r\n\r\n' + get(gw.port, '/p/after'));
    const r = await c.next();
    assert.equal(r.status, 400);
    assert.ok(await c.waitClosed());
    assert.equal(up.requests.filter((q) => q.url === '/base/after').length, 0);
});

test('garbage never kills a worker', { timeout: slow(10000) }, async () => {
    const before = gw.workers();
    for (let i = 0; i < 20; i++) {
        const c = await RawClient.open(gw.port);
        const junk = Buffer.alloc(512);
        for (let k = 0; k < junk.length; k++) junk[k] = (k * 7919 + i * 31) & 0xff;
        c.write(junk);
        await sleep(5);
        c.destroy();
    }
    // half-written requests, then abrupt close
    for (let i = 0; i < 10; i++) {
        const c = await RawClient.open(gw.port);
        c.write(`POST /p/x HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n${'a'.repeat(i * 10)}`);
        c.destroy();
    }
    await sleep(100);
    const r = await request(gw.port, { path: '/p/still-alive' });
    assert.equal(r.status, 200);
    assert.deepEqual(gw.workers(), before, 'same worker pids');
    assert.doesNotMatch(gw.stderr, /killed by signal/);
});
