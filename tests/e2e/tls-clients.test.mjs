/* tls-clients.test.mjs - the how-to over TLS: sluice listens with "ssl"
 * (a test CA and certificate made with the openssl CLI), and the real
 * clients trust that CA the way users do: the Anthropic SDK and the Claude
 * Code CLI through NODE_EXTRA_CA_CERTS, curl with --cacert. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { spawn } from 'node:child_process';

import {
    startMock, startGateway, howtoConfig, runClaude, claudeAvailable, freePort, tmpDir, show, ROOT, CLIENT_KEY, slow,
} from './harness.mjs';
import { makePki } from '../core/tls-certs.mjs';

let mock, gw, pki, tlsPort;

before(async () => {
    const dir = tmpDir('sluice-tls-e2e-');
    pki = makePki(path.join(dir, 'pki'), [{ name: 'a', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' }]);
    mock = await startMock();
    tlsPort = await freePort();
    gw = await startGateway({
        config: howtoConfig({ upstreamUrl: mock.url, logPath: path.join(dir, 'claude.json') }),
        env: { DECK_DASHSCOPE_API_KEY: mock.key },
        args: ['-l', `127.0.0.1:${tlsPort} ssl`, '--ssl-cert', pki.a.cert, '--ssl-cert-key', pki.a.key],
    });
});

after(async () => {
    await gw?.stop();
    await mock?.stop();
});

function runNode(code, env) {
    return new Promise((resolve) => {
        const p = spawn(process.execPath, ['--input-type=module', '-e', code], {
            cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '', err = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { err += d; });
        p.on('close', (code) => resolve({ code, out, err }));
    });
}

test('curl: the how-to route over https with the test CA', { timeout: slow(20000) }, async () => {
    const r = await new Promise((resolve) => {
        const p = spawn('curl', ['-sS', '--cacert', pki.ca, `https://localhost:${tlsPort}/anything/v1/messages`,
                                 '-H', 'content-type: application/json', '-H', 'anthropic-version: 2023-06-01',
                                 '-H', `x-api-key: ${CLIENT_KEY}`,
                                 '-d', '{"model":"qwen-plus","max_tokens":50,"messages":[{"role":"user","content":"hi"}]}']);
        let out = '', err = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { err += d; });
        p.on('close', (code) => resolve({ code, out, err }));
    });
    assert.equal(r.code, 0, r.err);
    assert.equal(JSON.parse(r.out).type, 'message', r.out);
});

test('the Anthropic SDK over https (NODE_EXTRA_CA_CERTS)', { timeout: slow(30000) }, async () => {
    const r = await runNode(`
        import Anthropic from '@anthropic-ai/sdk';
        const c = new Anthropic({ baseURL: 'https://localhost:${tlsPort}/anything', apiKey: '${CLIENT_KEY}', maxRetries: 0 });
        const m = await c.messages.create({ model: 'qwen-plus', max_tokens: 64, messages: [{ role: 'user', content: 'hello' }] });
        const s = await c.messages.create({ model: 'qwen-plus', max_tokens: 64, stream: true, messages: [{ role: 'user', content: 'hello' }] });
        let text = '';
        for await (const e of s) if (e.type === 'content_block_delta' && e.delta.type === 'text_delta') text += e.delta.text;
        console.log(JSON.stringify({ type: m.type, text: m.content[0].text, streamed: text }));
    `, { NODE_EXTRA_CA_CERTS: pki.ca });
    assert.equal(r.code, 0, r.err);
    const j = JSON.parse(r.out);
    assert.equal(j.type, 'message');
    assert.ok(j.text.length > 0 && j.streamed.length > 0, r.out);
});

describe('the Claude Code CLI over https', { skip: !claudeAvailable() && 'Claude Code CLI not installed' }, () => {
    test('claude -p through https://localhost:PORT/anything with NODE_EXTRA_CA_CERTS', { timeout: slow(120000) }, async () => {
        const text = 'Answered over TLS by the mock.';
        await mock.scenario({ type: 'text', text });
        const r = await runClaude({ baseUrl: `https://localhost:${tlsPort}/anything`, prompt: 'hello over tls',
                                    env: { NODE_EXTRA_CA_CERTS: pki.ca } });
        assert.equal(r.code, 0, show({ stdout: r.stdout, stderr: r.stderr, gw: gw.stderr.slice(-2000) }, 6000));
        assert.equal(r.json.is_error, false, r.stdout);
        assert.equal(r.json.result, text);
    });
});
