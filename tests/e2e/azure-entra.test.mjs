/* azure-entra.test.mjs - Azure OpenAI with an Entra ID token (Kong's
 * auth.azure_use_managed_identity) through the real binary: a service
 * principal's client-credentials grant at Entra's token endpoint, and the
 * managed identity from the instance metadata service, both mocked
 * (tests/mock/oauth.mjs: Entra's AADSTS errors, IMDS's Metadata header and
 * string expires_in) at the addresses AZURE_AUTHORITY_HOST and
 * AZURE_POD_IDENTITY_AUTHORITY_HOST give, as Azure's SDKs read them.  The
 * Azure mock accepts only unexpired tokens it issued. */
import { test, describe, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { startGateway, CLIENT_KEY, slow } from './harness.mjs';
import { startProviders } from '../mock/providers.mjs';
import { AZ } from '../mock/oauth.mjs';

const CASE = { timeout: slow(30000) };
const TEXT = 'Hello from the mock provider.'; /* tests/mock/providers.mjs */
const OPTS = { azure_instance: 'myinst', azure_deployment_id: 'gpt4o-dep', azure_api_version: '2024-10-21', upstream_url: 'MOCK' };

function route(name, auth, fmt = 'openai') {
    return {
        name, paths: [`/${name}`],
        plugins: [{ name: 'ai-proxy', config: { route_type: 'llm/v1/chat', llm_format: fmt, auth: { azure_use_managed_identity: true, ...auth }, model: { provider: 'azure', name: 'gpt-4o', options: OPTS } } }],
    };
}

describe('azure with Entra ID tokens', { timeout: slow(120000) }, () => {
    let mock;
    let gw;
    before(async () => {
        mock = await startProviders();
        const sp = { azure_tenant_id: AZ.tenant, azure_client_id: AZ.clientId, azure_client_secret: AZ.clientSecret };
        const routes = [
            route('sp', sp),
            route('asp', sp, 'anthropic'),
            route('mi', { azure_client_id: AZ.miClientId }),
            route('badsecret', { ...sp, azure_client_secret: 'not-the-secret' }),
            route('badmi', { azure_client_id: 'nobody' }),
        ];
        const config = JSON.stringify({ _format_version: '3.0', services: [{ name: 'llm', url: 'http://127.0.0.1:9/', routes }] })
            .replaceAll('"MOCK"', JSON.stringify(mock.base));
        gw = await startGateway({ workers: 1, config, env: { AZURE_AUTHORITY_HOST: mock.base, AZURE_POD_IDENTITY_AUTHORITY_HOST: mock.base } });
    });
    after(async () => {
        await gw?.stop();
        await mock?.stop();
    });
    beforeEach(() => mock.reset());

    const oa = (p) => new OpenAI({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/${p}`, maxRetries: 0 });
    const chat = (p) => oa(p).chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'Hello' }] });
    const azureReqs = () => mock.requests.filter((r) => r.path.startsWith('/openai/'));

    test('client credentials: one token for many requests, as Bearer instead of api-key', CASE, async () => {
        for (let i = 0; i < 3; i++) assert.equal((await chat('sp')).choices[0].message.content, TEXT);
        const g = mock.oauth.grants;
        assert.equal(g.length, 1);
        assert.equal(g[0].kind, 'entra');
        assert.equal(g[0].granted, true);
        assert.equal(g[0].form.client_id, AZ.clientId);
        const up = azureReqs();
        assert.equal(up.length, 3);
        for (const r of up) {
            assert.match(r.headers.authorization, /^Bearer eyJ\.mock-azure-\d+$/);
            assert.equal(r.headers['api-key'], undefined);
            assert.match(r.query, /api-version=2024-10-21/);
            assert.ok(!JSON.stringify(r.headers).includes(CLIENT_KEY));
        }
    });

    test('an Anthropic client of the same deployment, streamed', CASE, async () => {
        const an = new Anthropic({ apiKey: CLIENT_KEY, baseURL: `${gw.base}/asp`, maxRetries: 0 });
        let text = '';
        const s = an.messages.stream({ model: 'gpt-4o', max_tokens: 50, messages: [{ role: 'user', content: 'Hi' }] });
        s.on('text', (t) => { text += t; });
        await s.finalMessage();
        assert.equal(text, TEXT);
        assert.match(azureReqs()[0].headers.authorization, /^Bearer eyJ\.mock-azure-/);
    });

    test('managed identity (user-assigned): IMDS with its Metadata header, expires_in as a string', CASE, async () => {
        assert.equal((await chat('mi')).choices[0].message.content, TEXT);
        assert.equal((await chat('mi')).choices[0].message.content, TEXT);
        const g = mock.oauth.grants;
        assert.equal(g.length, 1);
        assert.equal(g[0].kind, 'imds');
        assert.equal(g[0].granted, true);
        assert.equal(g[0].query.client_id, AZ.miClientId);
    });

    test('Entra refusing the secret, IMDS not knowing the identity: a clear 502, no provider call', CASE, async () => {
        const e = await chat('badsecret').catch((x) => x);
        assert.equal(e.status, 502);
        assert.match(e.message, /Azure Entra ID: the token endpoint answered 401: .*invalid_client: AADSTS7000215: Invalid client secret provided\./);
        const m = await chat('badmi').catch((x) => x);
        assert.equal(m.status, 502);
        assert.match(m.message, /Azure Entra ID: the token endpoint answered 400: .*Identity not found/);
        assert.equal(azureReqs().length, 0);
        assert.equal((await chat('sp')).choices[0].message.content, TEXT);
    });
});
