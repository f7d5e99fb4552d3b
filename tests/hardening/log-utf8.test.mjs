/* log-utf8.test.mjs - every file-log record is valid JSON in valid UTF-8,
 * whatever bytes the client sent.  Header values may carry any byte but
 * controls (obs-text), the path and query may carry raw or percent-encoded
 * bytes that are not UTF-8 (the record's querystring is percent-decoded),
 * and the record cuts long URLs and header names at a byte count, which
 * may fall inside a character.  Kong's cjson writes such bytes as they
 * are, so its line is not valid UTF-8; sluice writes each byte of an
 * invalid sequence as U+FFFD (\ufffd), as Go's encoding/json does, and
 * leaves valid UTF-8 alone. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { startStack, startUpstream, rawExchange, waitFor, tmpDir, slow } from './lib.mjs';
import { startGateway } from '../e2e/harness.mjs';
import path from 'node:path';

let st;
before(async () => { st = await startStack({ workers: 1 }); });
after(async () => { await st?.stop(); });

/* The complete lines of the log, each checked as strict UTF-8 then JSON;
 * none while file-log has not created the file yet (it opens it when the
 * first record is written, after the answer went out). */
function strictRecords(path) {
    let buf;
    try {
        buf = fs.readFileSync(path);
    } catch (e) {
        if (e.code === 'ENOENT') return [];
        throw e;
    }
    const end = buf.lastIndexOf(0x0a);
    const out = [];
    let from = 0;
    while (from <= end) {
        const nl = buf.indexOf(0x0a, from);
        const line = buf.subarray(from, nl);
        from = nl + 1;
        let text;
        try {
            text = new TextDecoder('utf-8', { fatal: true }).decode(line);
        } catch {
            out.push({ bad: `not UTF-8: ${line.toString('latin1').slice(0, 300)}` });
            continue;
        }
        try {
            out.push(JSON.parse(text));
        } catch (e) {
            out.push({ bad: `not JSON (${e.message}): ${text.slice(0, 300)}` });
        }
    }
    return out;
}

test('records stay valid UTF-8 JSON with invalid UTF-8 in headers, path and query', async () => {
    const bad = Buffer.from([0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0xe2, 0x82]);
    const cases = [
        /* header value: raw bytes, a lone continuation byte, a cut sequence */
        Buffer.concat([Buffer.from('GET /plain/h HTTP/1.1\r\nHost: x\r\nX-Bad: a'), bad, Buffer.from('z\r\nX-Cut: \xe2\x82\r\nUser-Agent: \x80\x80\r\nConnection: close\r\n\r\n', 'latin1')]),
        /* query: percent-encoded bytes that decode to invalid UTF-8, keys too */
        Buffer.from('GET /plain/q?a=%FF%FE&%C0%AF=1&ok=%E2%82%AC&cut=%E2%82 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        /* raw bytes in the path and query (when the parser takes them) */
        Buffer.concat([Buffer.from('GET /plain/'), bad, Buffer.from('?r='), bad, Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')]),
        /* a 3,000-byte path of 3-byte characters: request.url is cut at 2,047 bytes */
        Buffer.from(`GET /plain/${'%E2%82%AC'.repeat(1000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
        Buffer.from(`GET /plain/${'€'.repeat(1000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`),
        /* an unmatched route, and an ai-proxy route (its own 4xx) */
        Buffer.concat([Buffer.from('GET /nowhere?x='), bad, Buffer.from(' HTTP/1.1\r\nHost: x\r\nX-Bad: '), bad, Buffer.from('\r\nConnection: close\r\n\r\n')]),
        Buffer.concat([Buffer.from('POST /ai/v1/messages?beta=%FF HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Bad: '), bad,
            Buffer.from('\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}')]),
    ];
    const statuses = [];
    for (const c of cases) statuses.push((await rawExchange(st.port, c, { timeoutMs: slow(8000) })).status);
    const logged = statuses.filter((s) => s !== 0 && s !== 400).length;
    const recs = await waitFor(() => {
        const r = strictRecords(st.logPath);
        return r.length >= logged ? r : null;
    }, slow(10000));
    assert.ok(recs, `log has ${strictRecords(st.logPath).length} records, ${logged} expected (statuses ${statuses})`);
    assert.deepEqual(recs.filter((r) => r.bad).map((r) => r.bad), []);
    /* the bytes became U+FFFD, valid text stayed as it was */
    const h = recs.find((r) => r.request.uri === '/plain/h');
    assert.equal(h.request.headers['x-bad'], `a${'\ufffd'.repeat(bad.length)}z`);
    assert.equal(h.request.headers['x-cut'], '\ufffd\ufffd');
    const q = recs.find((r) => r.request.uri.startsWith('/plain/q'));
    assert.equal(q.request.querystring.a, '\ufffd\ufffd');
    assert.equal(q.request.querystring['\ufffd\ufffd'], '1');
    assert.equal(q.request.querystring.ok, '€');
    assert.equal(q.request.querystring.cut, '\ufffd\ufffd');
    console.log(`# log-utf8: ${recs.length} records (statuses ${statuses.join(',')}), all valid UTF-8 JSON`);
});

/* The route's, service's and consumer's JSON is copied into every record
 * unchecked: it is made valid UTF-8 when the configuration is loaded.  A
 * JSON configuration (which libyaml refuses when it holds bytes that are
 * not UTF-8, and json-c then reads as they are) puts such bytes in a tag. */
test('entities with invalid UTF-8 in the configuration are logged as valid UTF-8', async () => {
    const up = await startUpstream();
    const logPath = path.join(tmpDir('sluice-hard-'), 'entity.log');
    const config = Buffer.concat([
        Buffer.from(`{"_format_version":"3.0","services":[{"name":"s","url":"http://127.0.0.1:${up.port}","tags":["svc-`),
        Buffer.from([0xff]), Buffer.from('-\u00e9"],"routes":[{"name":"r","paths":["/t"],"tags":["a'),
        Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('b","ok-\u20ac"],'),
        Buffer.from(`"plugins":[{"name":"file-log","config":{"path":"${logPath}"}}]}]}]}`),
    ]);
    const gw = await startGateway({ config, workers: 1 });
    try {
        for (let i = 0; i < 2; i++) {
            const res = await rawExchange(gw.port, 'GET /t/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
            assert.equal(res.status, 200);
        }
        const recs = await waitFor(() => {
            const r = strictRecords(logPath);
            return r.length >= 2 ? r : null;
        }, slow(10000));
        assert.ok(recs, 'two records');
        assert.deepEqual(recs.filter((r) => r.bad).map((r) => r.bad), []);
        for (const r of recs) {
            assert.deepEqual(r.route.tags, ['a\ufffd\ufffd\ufffdb', 'ok-\u20ac']);
            assert.deepEqual(r.service.tags, ['svc-\ufffd-\u00e9']);
        }
    } finally {
        await gw.stop();
        await up.close();
    }
});
