/* secrets.test.mjs - no key leaks.  After a run of mixed requests carrying
 * client keys (x-api-key, Authorization: Bearer, Proxy-Authorization,
 * api-key, x-goog-api-key, anthropic-api-key, Cookie, x-amz-security-token)
 * through ai-proxy, plain and unmatched routes, successes and
 * errors, with the gateway logging at debug level: neither a client key nor
 * the configured provider key appears in the gateway's stderr or the
 * file-log output; the provider key reaches only the configured provider,
 * never the plain upstream nor a second mock behind a route without
 * ai-proxy; client keys never reach the provider. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';

import { startStack, httpRequest, rawExchange, readLog, waitFor } from './lib.mjs';
import { startMock } from '../e2e/harness.mjs';

const CLIENT = {
    xApiKey: 'sk-ant-api03-CLIENTKEY-xapikey-1111aaaa',
    bearer: 'sk-ant-oat01-CLIENTTOKEN-bearer-2222bbbb',
    proxy: 'proxy-secret-CLIENT-3333cccc',
    apiKey: 'azure-api-key-CLIENT-4444dddd',
    goog: 'AIzaSy-CLIENT-goog-5555eeee',
    anthropicApiKey: 'sk-ant-api03-CLIENT-anthropic-api-key-6666ffff',
    cookie: 'session=CLIENT-cookie-7777gggg',
    amz: 'IQoJb3JpZ2luX2VjEJr-CLIENT-amz-8888hhhh',
};

test('no client or provider key in stderr or file-log; the provider key goes only to the provider', { timeout: 60000 }, async () => {
    const other = await startMock({ key: 'sk-other-mock-key' });
    const st = await startStack({
        workers: 2,
        args: ['--log-level', 'debug'],
        extraServices: `
  - name: other-service
    url: ${other.url}
    routes:
      - name: other-route
        paths: ["/other"]`,
    });
    const providerKey = st.mock.key;
    let n = 0;
    try {
        const allKeys = {
            'x-api-key': CLIENT.xApiKey,
            authorization: `Bearer ${CLIENT.bearer}`,
            'proxy-authorization': `Basic ${CLIENT.proxy}`,
            'api-key': CLIENT.apiKey,
            'x-goog-api-key': CLIENT.goog,
            'anthropic-api-key': CLIENT.anthropicApiKey,
            cookie: CLIENT.cookie,
            'x-amz-security-token': CLIENT.amz,
        };
        const variants = [
            { 'x-api-key': CLIENT.xApiKey },
            { authorization: `Bearer ${CLIENT.bearer}` },
            allKeys,
        ];
        const good = (stream) => JSON.stringify({ model: 'qwen-plus', max_tokens: 32, stream,
            messages: [{ role: 'user', content: 'hello' }] });
        for (const h of variants) {
            const headers = { 'content-type': 'application/json', 'anthropic-version': '2023-06-01', ...h };
            for (const [path, body, method] of [
                ['/ai/v1/messages', good(false), 'POST'],
                ['/ai/v1/messages?beta=true', good(true), 'POST'],
                ['/ai/v1/messages', '{"broken', 'POST'],                       // 400 from ai-proxy
                ['/ai/v1/messages/count_tokens', good(false), 'POST'],
                ['/plain/echo', 'x', 'POST'],
                ['/other', good(false), 'POST'],                                // second mock, no ai-proxy
                ['/nowhere', undefined, 'GET'],                                 // 404
            ]) {
                n++;
                const r = await httpRequest(st.port, { path, method, headers, body });
                assert.ok(r.status > 0);
            }
        }
        /* provider errors: 401 and 500 relayed as Anthropic errors */
        for (const status of [401, 500]) {
            await st.mock.scenario({ type: 'error', status });
            n++;
            await httpRequest(st.port, { path: '/ai/v1/messages', method: 'POST',
                headers: { 'content-type': 'application/json', ...allKeys }, body: good(false) });
        }
        /* raw: a key in a malformed request, an aborted one, a slow one */
        for (const bad of [
            `GET /plain/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${CLIENT.bearer}\r\nBad Header: 1\r\n\r\n`,
            `POST /ai/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${CLIENT.xApiKey}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello`,
            `POST /ai/v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ${CLIENT.xApiKey}\r\nContent-Length: 100\r\n\r\n{"a":`,
        ]) {
            n++;
            await rawExchange(st.port, bad, { timeoutMs: 300 });
        }
        await waitFor(() => readLog(st.logPath).length >= n - 3, 5000);
    } finally {
        await st.gw.stop();
    }
    const stderr = st.gw.stderr;
    const logText = fs.readFileSync(st.logPath, 'utf8');
    const providerSeen = await st.mock.requests();
    const otherSeen = await other.requests();
    const upSeen = st.up.requests;
    await st.mock.stop();
    await st.up.close();
    await other.stop();

    assert.ok(stderr.length > 0 && logText.length > 0, 'there is output to check');
    assert.ok(readLog(st.logPath).length >= 20, `only ${readLog(st.logPath).length} log records`);
    const secrets = { ...CLIENT, provider: providerKey };
    for (const [name, v] of Object.entries(secrets)) {
        assert.ok(!stderr.includes(v), `${name} key in stderr: ${stderr.slice(Math.max(0, stderr.indexOf(v) - 200), stderr.indexOf(v) + 100)}`);
        assert.ok(!logText.includes(v), `${name} key in file-log: ${logText.slice(Math.max(0, logText.indexOf(v) - 300), logText.indexOf(v) + 100)}`);
        /* nor a recognisable part of it */
        const core = v.slice(-12);
        assert.ok(!stderr.includes(core) && !logText.includes(core), `${name} key fragment logged`);
    }
    /* the provider got the configured key, never a client's */
    const chats = providerSeen.filter((q) => q.path.startsWith('/compatible-mode/'));
    assert.ok(chats.length >= 6, `provider saw ${chats.length} requests`);
    for (const q of chats) {
        assert.equal(q.headers.authorization, `Bearer ${providerKey}`);
        const all = JSON.stringify(q.headers) + JSON.stringify(q.body);
        for (const [name, v] of Object.entries(CLIENT)) assert.ok(!all.includes(v), `client ${name} key sent to the provider`);
    }
    /* the provider key never went anywhere else */
    assert.ok(otherSeen.length >= 3, `second mock saw ${otherSeen.length} requests`);
    for (const q of otherSeen) assert.ok(!JSON.stringify(q).includes(providerKey), 'provider key sent to a route without ai-proxy');
    assert.ok(upSeen.length >= 3);
    for (const q of upSeen) assert.ok(!JSON.stringify(q).includes(providerKey), 'provider key sent to the plain upstream');
    console.log(`# secrets: ${n} requests, ${Object.keys(secrets).length} secrets, none in ${stderr.length} B of stderr or ${logText.length} B of file-log`);
});
