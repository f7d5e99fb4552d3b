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
import http from 'node:http';

import { startStack, httpRequest, rawExchange, readLog, waitFor, slow } from './lib.mjs';
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

test('no client or provider key in stderr or file-log; the provider key goes only to the provider', { timeout: slow(60000) }, async () => {
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
        await waitFor(() => readLog(st.logPath).length >= n - 3, slow(10000));
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

/* A provider that echoes the credential it was sent: in WWW-Authenticate
 * and X-Echo-* headers (on errors and on 200s) and inside its error bodies
 * (as a buggy or malicious upstream would).  Whatever ai-proxy does with
 * the answer (translate it, pass it through), the configured key must not
 * reach the client nor the log. */
function startEchoProvider() {
    const server = http.createServer((req, res) => {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => {
            const qkey = new URL(req.url, 'http://x').searchParams.get('key');
            const auth = req.headers.authorization ?? (qkey ? `Bearer ${qkey}` : '');
            const key = auth.replace(/^Bearer /, '');
            let stream = false;
            try { stream = JSON.parse(Buffer.concat(parts).toString()).stream === true; } catch { /* */ }
            const echo = { 'www-authenticate': `Bearer realm="provider", error="invalid_token", token="${key}"`,
                'x-echo-authorization': auth, 'x-echo-key': `key=${key};` };
            /* more names than one pass of the scrubber takes, and one name
             * many times */
            for (let i = 0; i < 100; i++) echo[`x-echo-${i}`] = `${i}:${key}`;
            echo['x-echo-many'] = Array.from({ length: 80 }, (_, i) => `${i} ${key}`);
            if (!req.url.includes('/ok')) {
                const body = JSON.stringify({ error: { message: `Incorrect API key provided: ${key} (sent as "${auth}")`,
                    type: 'invalid_request_error', code: 'invalid_api_key', param: key } });
                res.writeHead(401, { 'content-type': 'application/json', ...echo });
                res.end(body);
                return;
            }
            const msg = { id: 'chatcmpl-1', object: 'chat.completion', created: 1, model: 'qwen-plus',
                choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }],
                usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 } };
            if (stream) {
                res.writeHead(200, { 'content-type': 'text/event-stream', ...echo });
                res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'qwen-plus',
                    choices: [{ index: 0, delta: { role: 'assistant', content: 'hi' }, finish_reason: null }] })}\n\n`);
                res.write(`data: ${JSON.stringify({ id: 'c', object: 'chat.completion.chunk', model: 'qwen-plus',
                    choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: msg.usage })}\n\n`);
                res.end('data: [DONE]\n\n');
                return;
            }
            res.writeHead(200, { 'content-type': 'application/json', ...echo });
            res.end(JSON.stringify(msg));
        });
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
        port: server.address().port, close: () => new Promise((r) => server.close(r)) })));
}

test('a provider echoing its key in headers and error bodies: scrubbed before the client and the log', { timeout: slow(60000) }, async () => {
    const echo = await startEchoProvider();
    const modes = {
        translate: 'llm_format: anthropic',
        passthrough: 'llm_format: anthropic',
        openai: 'llm_format: openai',
        query: 'llm_format: anthropic',
    };
    let services = '';
    for (const [mode, fmt] of Object.entries(modes)) {
        for (const kind of ['ok', 'err']) {
            services += `
  - name: leak-${mode}-${kind}
    url: http://127.0.0.1:9/unused
    routes:
      - name: leak-${mode}-${kind}-route
        paths: ["/leak-${mode}-${kind}"]
        plugins:
          - name: ai-proxy
            config:
              route_type: llm/v1/chat
              ${fmt}
              auth:${mode === 'query' ? `
                param_name: key
                param_location: query
                param_value: \${{ env "DECK_DASHSCOPE_API_KEY" }}` : `
                header_name: Authorization
                header_value: Bearer \${{ env "DECK_DASHSCOPE_API_KEY" }}`}
              model:
                provider: dashscope
                name: qwen-plus
                options:
                  upstream_url: "http://127.0.0.1:${echo.port}/${kind}"${mode === 'passthrough' ? `
                  dashscope: {api: anthropic}` : ''}`;
        }
    }
    const st = await startStack({ workers: 1, args: ['--log-level', 'debug'], extraServices: services });
    const key = st.mock.key;
    const leaks = [];
    let n = 0;
    try {
        for (const mode of Object.keys(modes)) {
            for (const kind of ['ok', 'err']) {
                for (const stream of [false, true]) {
                    const body = mode === 'openai'
                        ? JSON.stringify({ model: 'qwen-plus', stream, messages: [{ role: 'user', content: 'hi' }] })
                        : JSON.stringify({ model: 'qwen-plus', max_tokens: 16, stream, messages: [{ role: 'user', content: 'hi' }] });
                    const path = mode === 'openai' ? `/leak-${mode}-${kind}/v1/chat/completions` : `/leak-${mode}-${kind}/v1/messages`;
                    const r = await rawExchange(st.port, `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
                        `anthropic-version: 2023-06-01\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
                    { timeoutMs: 5000 });
                    n++;
                    const expect = kind === 'ok' ? 200 : 401;
                    if (r.status !== expect) leaks.push(`${mode} ${kind} stream=${stream}: status ${r.status}: ${r.text.slice(0, 300)}`);
                    if (r.text.includes(key) || r.text.includes(key.slice(-12))) {
                        leaks.push(`${mode} ${kind} stream=${stream}: key in the answer: ${r.text.slice(0, 1200)}`);
                    }
                }
            }
        }
        await waitFor(() => readLog(st.logPath).length >= n, slow(10000));
    } finally {
        await st.gw.stop();
        await st.mock.stop();
        await st.up.close();
        await echo.close();
    }
    const logText = fs.readFileSync(st.logPath, 'utf8');
    if (logText.includes(key) || logText.includes(key.slice(-12))) {
        const i = logText.indexOf(key.slice(-12));
        leaks.push(`key in file-log: ${logText.slice(Math.max(0, i - 300), i + 100)}`);
    }
    if (st.gw.stderr.includes(key.slice(-12))) {
        const i = st.gw.stderr.indexOf(key.slice(-12));
        leaks.push(`key in stderr: ${st.gw.stderr.slice(Math.max(0, i - 300), i + 100)}`);
    }
    for (const l of leaks) console.log(`# leak: ${l.slice(0, 160).replace(/\r?\n/g, ' ')}`);
    assert.deepEqual(leaks, []);
    assert.ok(readLog(st.logPath).length >= n, 'every answer was logged');
    assert.match(logText, /\[REDACTED\]/, 'the scrubbed values are still there, redacted');
});
