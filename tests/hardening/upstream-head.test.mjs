/* upstream-head.test.mjs - the upstream's response head is checked before
 * anything of it reaches the client: a status outside 100-599 (llhttp
 * accepts "099" and "600") is a 502, never forwarded; 101 without an
 * upgrade asked for is a 502; other 1xx are interim (RFC 9110 15.2) and the
 * final answer follows on the same connection; a head of 20,000 headers is
 * a 502; a head that drips in never outlives read_timeout, also while the
 * client is still streaming its body.  Each case
 * checks that the client's keep-alive connection still reads the next
 * response correctly (a forwarded "99" with a Content-Length and no body
 * desynchronised it). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';

import { startStack, rawExchange, readLog, waitFor, slow } from './lib.mjs';

const READ_TIMEOUT = 1000;
let st, raw, workers0;

/* A raw upstream: the first path segment after /raw/ picks the answer. */
const ANSWERS = {
    s099: ['HTTP/1.1 099 Odd\r\nContent-Length: 5\r\n\r\n'],
    s600: ['HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok'],
    s999: ['HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok'],
    s000: ['HTTP/1.1 000 Odd\r\nContent-Length: 2\r\n\r\nok'],
    s101: ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nraw bytes'],
    s102: ['HTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'],
    s103: ['HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'],
    s100: ['HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'],
    /* RFC 9112 6.3: a 1xx has no body whatever its framing headers say */
    s103te: ['HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'],
    s103cl: ['HTTP/1.1 103 Early Hints\r\nContent-Length: 4\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal'],
    s150: ['HTTP/1.1 150 Whatever\r\nX-A: 1\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nfinal'],
    manyinterim: [`${'HTTP/1.1 102 Processing\r\n\r\n'.repeat(200)}HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal`],
    manyheaders: [`HTTP/1.1 200 OK\r\n${Array.from({ length: 20000 }, (_, i) => `X-H${i}: v\r\n`).join('')}Content-Length: 2\r\n\r\nok`],
    bighead: [`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(300 * 1024)}\r\nContent-Length: 2\r\n\r\nok`],
};

function startRaw() {
    const sockets = new Set();
    const server = net.createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => {});
        let seen = '';
        s.on('data', async (d) => {
            seen += d.toString('latin1');
            if (!seen.includes('\r\n\r\n')) return;
            const m = /^\w+ \/r\/(\w+)/.exec(seen);
            seen = '';
            const what = m ? m[1] : '';
            if (what === 'drip') {
                /* one byte of the head every 100 ms, forever; what the
                 * client streams meanwhile is ignored */
                s.removeAllListeners('data');
                s.on('data', () => {});
                const head = `HTTP/1.1 200 OK\r\n${'X-Slow: y\r\n'.repeat(1000)}\r\n`;
                for (let i = 0; i < head.length && !s.destroyed; i++) {
                    s.write(head[i]);
                    await new Promise((r) => setTimeout(r, 100));
                }
                return;
            }
            for (const part of ANSWERS[what] ?? ['HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n']) s.write(part);
        });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
        port: server.address().port,
        close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
    })));
}

before(async () => {
    raw = await startRaw();
    st = await startStack({
        workers: 1,
        extraServices: `
  - name: raw-service
    url: http://127.0.0.1:${raw.port}/r
    read_timeout: ${READ_TIMEOUT}
    retries: 0
    routes:
      - name: raw-route
        paths: ["/r"]
      - name: raw-stream-route
        paths: ["/rs"]
        request_buffering: false`,
    });
    workers0 = st.workers();
});

after(async () => {
    if (!st) return;
    assert.deepEqual(st.workers(), workers0, 'a worker died');
    await st.stop();
    await raw.close();
});

/* One request to /r/<what>, then a plain request on the same connection:
 * the second response must be the plain upstream's 200. */
async function twoOnOne(what) {
    const r = await rawExchange(st.port, [
        `GET /r/${what} HTTP/1.1\r\nHost: x\r\n\r\n`,
        'GET /plain/next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n',
    ], { timeoutMs: slow(10000) });
    return r;
}

test('a status outside 100-599 is a 502 and the connection stays in sync', async () => {
    for (const w of ['s099', 's600', 's999', 's000']) {
        const r = await twoOnOne(w);
        assert.equal(r.statuses[0], 502, `${w}: ${r.text.slice(0, 200)}`);
        assert.ok(!/HTTP\/1\.1 (99|600|999|0) /.test(r.text), `${w} reached the client: ${r.text.slice(0, 200)}`);
        /* the answer after an upstream error may close the connection, but
         * what the client reads must never be a desynchronised body */
        if (r.statuses.length > 1) assert.equal(r.statuses[1], 200, `${w}: ${r.text}`);
    }
});

test('101 without an upgrade asked for is a 502; other 1xx are interim, the final answer follows', async () => {
    const r101 = await twoOnOne('s101');
    assert.equal(r101.statuses[0], 502, r101.text.slice(0, 200));
    assert.ok(!r101.text.includes('raw bytes'));
    for (const [w, final] of [['s100', 200], ['s102', 200], ['s103', 200], ['s103te', 200], ['s103cl', 200], ['s150', 201]]) {
        const r = await twoOnOne(w);
        const finals = r.statuses.filter((s) => s >= 200);
        assert.deepEqual(finals, [final, 200], `${w}: ${r.text.slice(0, 300)}`);
        assert.ok(r.text.includes('final'), w);
        assert.ok(!r.statuses.includes(100) && !r.statuses.includes(101), `${w}: ${r.statuses}`);
    }
    /* 200 interim responses in a row: refused, not looped over */
    const many = await twoOnOne('manyinterim');
    assert.equal(many.statuses.find((s) => s >= 200), 502, many.text.slice(0, 200));
});

test('an upstream head of 20,000 headers or 300 kB is a 502', async () => {
    for (const w of ['manyheaders', 'bighead']) {
        const r = await twoOnOne(w);
        assert.equal(r.statuses[0], 502, `${w}: ${r.text.slice(0, 200)}`);
        assert.ok(!r.text.includes('X-H19999') && !r.text.includes('aaaaaaaa'), w);
    }
});

test('a head dripping one byte at a time ends with 504 within read_timeout', async () => {
    const t0 = Date.now();
    const r = await rawExchange(st.port, 'GET /r/drip HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { timeoutMs: 8000 });
    const ms = Date.now() - t0;
    assert.equal(r.status, 504, r.text.slice(0, 200));
    assert.ok(ms < READ_TIMEOUT * 2 + 500, `took ${ms} ms`);
});

test('a head dripping while the client still streams its body ends with 504, not when the body ends', async () => {
    /* request_buffering: false: the upstream gets the head at once and
     * starts dripping its answer; the client sends a body byte every 200 ms
     * for up to 20 s.  Waiting for the client used to stop the upstream's
     * timer, so the head was bounded only once the body was complete. */
    const TOTAL = 100;
    const r = await new Promise((resolve) => {
        const s = net.connect(st.port, '127.0.0.1');
        let got = '', sent = 0, done = false;
        const finish = () => {
            if (done) return;
            done = true;
            s.destroy();
            resolve({ status: Number((/^HTTP\/1\.1 (\d{3})/.exec(got) ?? [0, 0])[1]), sent, text: got });
        };
        s.on('data', (d) => {
            got += d.toString('latin1');
            if (got.includes('\r\n\r\n')) finish();
        });
        s.on('close', finish);
        s.on('error', finish);
        s.on('connect', async () => {
            s.write('POST /rs/drip HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n');
            for (; sent < TOTAL && !done; sent++) {
                s.write('1\r\nx\r\n');
                await new Promise((res) => setTimeout(res, 200));
            }
            if (!done) s.write('0\r\n\r\n');
            setTimeout(finish, 8000);
        });
    });
    assert.equal(r.status, 504, r.text.slice(0, 200));
    assert.ok(r.sent < TOTAL, `the 504 came only after the whole body (${r.sent} pieces sent)`);
});
