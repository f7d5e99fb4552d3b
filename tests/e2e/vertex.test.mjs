/* vertex.test.mjs - gemini on Vertex AI with a service account (Kong's
 * auth.gcp_use_service_account) through the real binary: sluice signs an
 * RS256 JWT with the account's key, the mock token endpoint verifies it
 * with the public key and grants an access token, the mock Vertex AI
 * endpoint accepts that token only while it is unexpired
 * (tests/mock/oauth.mjs, tests/mock/native.mjs).  Covered: Kong's Vertex
 * URL (project, location, model, operation), one token per worker for many
 * requests, the refresh before expiry, GCP_SERVICE_ACCOUNT, a token
 * endpoint that is down, failing or refusing the signature (a clear 502 to
 * the client, the gateway still serving), and load-time refusals. */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { startGateway, tmpDir, waitLog, waitRecord, sleep, CLIENT_KEY, runSluice, freePort, slow } from './harness.mjs';
import { startNativeMock, TEXT, embedVector } from '../mock/native.mjs';
import { GCP_EMAIL, GCP_SHORT_EMAIL } from '../mock/oauth.mjs';

const CASE = { timeout: slow(60000) };
const VERTEX = { api_endpoint: 'us-central1-aiplatform.googleapis.com', project_id: 'mock-project', location_id: 'us-central1' };
const VPATH = '/v1/projects/mock-project/locations/us-central1/publishers/google/models/gemini-2.5-flash';

function route(name, auth, { format = 'anthropic', options = {}, routeType = 'llm/v1/chat', model = 'gemini-2.5-flash' } = {}) {
    return {
        name, paths: [`/${name}`],
        plugins: [{
            name: 'ai-proxy',
            config: {
                route_type: routeType, llm_format: format,
                logging: { log_statistics: true }, auth,
                model: { provider: 'gemini', name: model, options: { upstream_url: 'MOCK', gemini: VERTEX, ...options } },
            },
        }],
    };
}

function configOf(mock, routes, logPath) {
    return JSON.stringify({
        _format_version: '3.0',
        services: [{ name: 'llm', url: 'http://127.0.0.1:9/', routes }],
        plugins: logPath ? [{ name: 'file-log', config: { path: logPath } }] : [],
    }).replaceAll('"MOCK"', JSON.stringify(mock.base));
}

describe('gemini on Vertex AI with a service account', { timeout: slow(240000) }, () => {
    let mock;
    let gw;
    let logPath;
    before(async () => {
        mock = await startNativeMock();
        logPath = path.join(tmpDir(), 'log.json');
        const sa = (email, opts) => ({ gcp_use_service_account: true, gcp_service_account_json: mock.oauth.serviceAccount(email, opts) });
        const dead = await freePort(); /* nothing listens there */
        const routes = [
            route('vx', sa(GCP_EMAIL)),
            route('ovx', sa(GCP_EMAIL), { format: 'openai', options: { upstream_url: `${mock.base}${VPATH}:generateContent` } }),
            route('short', sa(GCP_SHORT_EMAIL, { ttl: 10 })),
            route('down', sa(GCP_EMAIL, { tokenUri: `http://127.0.0.1:${dead}/token` })),
            route('flaky', sa(GCP_EMAIL)),
            route('forged', sa(GCP_EMAIL, { forged: true })),
            route('envsa', { gcp_use_service_account: true }),
            route('evx', sa(GCP_EMAIL), { format: 'openai', routeType: 'llm/v1/embeddings', model: 'gemini-embedding-001' }),
            route('evxtask', sa(GCP_EMAIL), { format: 'openai', routeType: 'llm/v1/embeddings', model: 'gemini-embedding-001', options: { gemini: { ...VERTEX, embedding_input_type: 'question_answering' } } }),
            /* preserve: the client's own Vertex path and body, the account's token */
            { ...route('pvx', sa(GCP_EMAIL), { routeType: 'preserve' }), paths: ['/v1/projects'] },
        ];
        gw = await startGateway({
            workers: 1, config: configOf(mock, routes, logPath),
            env: { GCP_SERVICE_ACCOUNT: mock.oauth.serviceAccount('env-account@mock-project.iam.gserviceaccount.com') },
        });
    });
    after(async () => {
        await gw?.stop();
        await mock?.stop();
    });
    beforeEach(() => mock.reset());

    const an = (p) => new Anthropic({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/${p}`, maxRetries: 0 });
    const oa = (p) => new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/${p}`, maxRetries: 0 });
    const ask = (p, content = 'Hello') => an(p).messages.create({ model: 'gemini-2.5-flash', max_tokens: 64, messages: [{ role: 'user', content }] });
    /* the one record a request made after mark, waited for */
    /* file-log writes after the answer, and an earlier case's records may
     * still come: a case's record is found by its request's path */
    const recordOf = async (prefix) => {
        const rec = await waitRecord(logPath, (x) => x.request?.uri?.startsWith(prefix), slow(10000));
        assert.ok(rec, `no log record for ${prefix}`);
        return rec;
    };
    const granted = () => mock.oauth.grants.filter((g) => g.granted);

    test('Anthropic SDK: Kong\'s Vertex URL, a signed JWT for one token, used for every request, stream included', CASE, async () => {
        const { data, response } = await an('vx').messages.create({
            model: 'gemini-2.5-flash', max_tokens: 64, messages: [{ role: 'user', content: 'Hello' }],
        }).withResponse();
        assert.equal(data.content[0].text, TEXT);
        assert.equal(response.headers.get('x-kong-llm-model'), 'gemini/gemini-2.5-flash');
        const up = mock.requests[0];
        assert.equal(up.provider, 'vertex');
        assert.equal(up.path, `${VPATH}:generateContent`);
        assert.ok(!JSON.stringify(up.headers).includes(CLIENT_KEY), 'the client key reached the provider');
        assert.equal(up.headers['x-goog-api-key'], undefined);
        /* the JWT the token endpoint verified */
        const g = granted();
        assert.equal(g.length, 1);
        assert.equal(g[0].claims.iss, GCP_EMAIL);
        assert.equal(g[0].claims.exp - g[0].claims.iat, 3600);
        assert.equal(up.headers.authorization, `Bearer ya29.mock-${mock.oauth.issued}`);

        let text = '';
        const stream = an('vx').messages.stream({ model: 'gemini-2.5-flash', max_tokens: 64, messages: [{ role: 'user', content: 'Again' }] });
        stream.on('text', (t) => { text += t; });
        await stream.finalMessage();
        assert.equal(text, TEXT);
        assert.equal(mock.requests[1].path, `${VPATH}:streamGenerateContent`);
        assert.match(mock.requests[1].query, /alt=sse/);
        for (let i = 0; i < 3; i++) assert.equal((await ask('vx')).content[0].text, TEXT);
        assert.equal(mock.oauth.grants.length, 1, 'the cached token serves every request');
        assert.equal(new Set(mock.requests.map((r) => r.headers.authorization)).size, 1);
        const recs = await waitLog(logPath, 5, slow(10000));   // this case's five answers
        assert.ok(!fs.readFileSync(logPath, 'utf8').includes('ya29.mock-'), 'an access token reached the log');
        assert.equal(recs.at(-1).ai.proxy.meta.provider_name, 'gemini');
    });

    test('OpenAI SDK with upstream_url naming the operation: the streaming twin, the same account\'s own token', CASE, async () => {
        const r = await oa('ovx').chat.completions.create({ model: 'gemini-2.5-flash', messages: [{ role: 'user', content: 'Hello' }] });
        assert.equal(r.choices[0].message.content, TEXT);
        const stream = await oa('ovx').chat.completions.create({ model: 'gemini-2.5-flash', stream: true, messages: [{ role: 'user', content: 'Hello' }] });
        let text = '';
        for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
        assert.equal(text, TEXT);
        assert.deepEqual(mock.requests.map((q) => q.path), [`${VPATH}:generateContent`, `${VPATH}:streamGenerateContent`]);
        /* a target of its own: its own token source, one fetch */
        assert.equal(granted().length, 1);
    });

    test('embeddings: the OpenAI SDK to Vertex AI\'s predict with the account\'s token, the counts Vertex reports', CASE, async () => {
        const e = await oa('evx').embeddings.create({ model: 'gemini-embedding-001', input: ['hello', 'a longer text'], dimensions: 3 });
        assert.deepEqual(e.data.map((d) => Array.from(d.embedding)), [embedVector('hello', 3), embedVector('a longer text', 3)].map((v) => v.map(Math.fround)));
        const up = mock.requests[0];
        assert.equal(up.provider, 'vertex');
        assert.equal(up.path, '/v1/projects/mock-project/locations/us-central1/publishers/google/models/gemini-embedding-001:predict');
        assert.deepEqual(up.body, { instances: [{ content: 'hello' }, { content: 'a longer text' }], parameters: { outputDimensionality: 3 } });
        assert.match(up.headers.authorization, /^Bearer ya29\.mock-/);
        assert.equal(mock.refused.length, 0);
        assert.equal(e.usage.prompt_tokens, 2 + 4, 'the sum of statistics.token_count');
        const rec = await recordOf('/evx/');
        assert.equal(rec.ai.proxy.usage.prompt_tokens, 6);
        assert.equal(rec.ai.proxy.meta.provider_name, 'gemini');
        /* options.gemini.embedding_input_type: each instance's task_type */
        mock.reset();
        await oa('evxtask').embeddings.create({ model: 'gemini-embedding-001', input: ['hello', 'world'] });
        assert.deepEqual(mock.requests[0].body.instances, [{ content: 'hello', task_type: 'QUESTION_ANSWERING' }, { content: 'world', task_type: 'QUESTION_ANSWERING' }]);
    });

    test('preserve: the client\'s Vertex path and body with the account\'s token, statistics from the answer', CASE, async () => {
        const r = await fetch(`${gw.base}${VPATH}:generateContent`, {
            method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${CLIENT_KEY}` },
            body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'Hello' }] }] }),
        });
        const body = await r.json();
        assert.equal(r.status, 200, JSON.stringify(body));
        assert.equal(body.candidates[0].content.parts.at(-1).text, TEXT);
        const up = mock.requests[0];
        assert.equal(up.provider, 'vertex');
        assert.equal(up.path, `${VPATH}:generateContent`);
        assert.match(up.headers.authorization, /^Bearer ya29\.mock-/);
        assert.equal(mock.refused.length, 0);
        const rec = await recordOf('/v1/projects/');
        assert.equal(rec.ai.proxy.usage.completion_tokens, 10);
        assert.equal(rec.ai.proxy.usage.prompt_tokens_details.cached_tokens, 100);
    });

    test('a token is fetched again before it expires, in the background; never used expired', CASE, async () => {
        /* a 10 s token: used until 9 s, fetched again from 5 s on */
        assert.equal((await ask('short')).content[0].text, TEXT);
        const first = mock.requests[0].headers.authorization;
        mock.oauth.hold = true;
        try {
            const t0 = Date.now();
            while (mock.oauth.held.length === 0 && Date.now() - t0 < 30000) {
                assert.equal((await ask('short')).content[0].text, TEXT);
                await sleep(250);
            }
            assert.equal(mock.oauth.held.length, 1, 'no background fetch within 30 s');
            /* the fetch is in flight, unanswered: a request does not wait for it */
            assert.equal((await ask('short')).content[0].text, TEXT);
            assert.equal(mock.requests.at(-1).headers.authorization, first);
            assert.equal(mock.oauth.held.length, 1, 'one fetch in flight, not one per request');
        } finally {
            mock.oauth.release();
        }
        const t1 = Date.now();
        while (mock.requests.at(-1).headers.authorization === first && Date.now() - t1 < 10000) {
            await sleep(100);
            assert.equal((await ask('short')).content[0].text, TEXT);
        }
        assert.notEqual(mock.requests.at(-1).headers.authorization, first);
        assert.equal(granted().length, 2);
        assert.equal(mock.refused.length, 0, 'an expired or unknown token reached Vertex');
    });

    test('GCP_SERVICE_ACCOUNT serves a route without gcp_service_account_json (as Kong)', CASE, async () => {
        assert.equal((await ask('envsa')).content[0].text, TEXT);
        assert.equal(granted()[0].claims.iss, 'env-account@mock-project.iam.gserviceaccount.com');
    });

    test('token endpoint down, failing, or refusing the signature: a clear 502, the gateway still serving', CASE, async () => {
        const down = await ask('down').catch((e) => e);
        assert.equal(down.status, 502);
        assert.equal(down.error.type, 'error');
        assert.match(down.error.error.message, /Vertex AI service account: the token endpoint could not be reached/);

        mock.oauth.failNext = 1;
        const flaky = await ask('flaky').catch((e) => e);
        assert.equal(flaky.status, 502);
        assert.match(flaky.error.error.message, /token endpoint answered 500: .*internal_failure: Backend Error/);
        /* the next request fetches again and succeeds */
        assert.equal((await ask('flaky')).content[0].text, TEXT);

        const forged = await ask('forged').catch((e) => e);
        assert.equal(forged.status, 502);
        assert.match(forged.error.error.message, /answered 400: .*invalid_grant: Invalid JWT Signature\./);
        assert.equal(mock.refused.length, 0);
        /* no crash: the same worker answers */
        assert.equal((await ask('vx')).content[0].text, TEXT);
        assert.match(gw.stderr, /token endpoint could not be reached/);
    });
});

describe('Vertex AI: refused at load time with the field named', () => {
    const check = (auth, options, want) => {
        const dir = tmpDir();
        const cfg = path.join(dir, 'kong.json');
        fs.writeFileSync(cfg, JSON.stringify({
            _format_version: '3.0',
            services: [{ name: 's', url: 'http://127.0.0.1:9/', routes: [{ name: 'r', paths: ['/r'], plugins: [{ name: 'ai-proxy', config: { route_type: 'llm/v1/chat', llm_format: 'anthropic', auth, model: { provider: 'gemini', name: 'gemini-2.5-flash', options } } }] }] }],
        }));
        const r = runSluice(['-t', '-d', cfg], { env: { GCP_SERVICE_ACCOUNT: undefined } });
        assert.notEqual(r.code, 0);
        assert.match(r.stderr, want);
    };
    test('a key that is not one, a missing one, two of three Vertex fields', () => {
        check({ gcp_use_service_account: true, gcp_service_account_json: '{"type":"service_account","client_email":"a@b","private_key":"-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----\\n"}' }, { gemini: VERTEX },
            /auth\.gcp_service_account_json: private_key is not a PEM RSA private key/);
        check({ gcp_use_service_account: true, gcp_service_account_json: 'nope' }, { gemini: VERTEX }, /auth\.gcp_service_account_json: not a JSON object/);
        check({ gcp_use_service_account: true }, { gemini: VERTEX }, /auth\.gcp_service_account_json: gcp_use_service_account needs a service account key here or in GCP_SERVICE_ACCOUNT/);
        check({ header_name: 'x-goog-api-key', header_value: 'k' }, { gemini: { api_endpoint: 'x', project_id: 'p' } },
            /model\.options\.gemini: all or none of these fields must be set: 'api_endpoint', 'project_id', 'location_id'/);
    });
});
