/* howto-config.test.mjs - etc/kong.yaml (the how-to's decK file) loads
 * unchanged with `sluice -t`, and names the missing variable without it. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { runSluice, ROOT, PLUGINS_DIR, howtoConfig, tmpDir, slow } from './harness.mjs';

const CFG = path.join(ROOT, 'etc/kong.yaml');

describe('the how-to configuration', { timeout: slow(60000) }, () => {
    test('etc/kong.yaml has the how-to\'s shape', { timeout: slow(10000) }, () => {
        const y = fs.readFileSync(CFG, 'utf8');
        for (const s of ['_format_version: "3.0"', 'name: example-service', 'url: http://httpbin.konghq.com/anything',
            'name: example-route', '"/anything"', 'name: ai-proxy', 'llm_format: anthropic', 'route_type: llm/v1/chat',
            'log_statistics: true', 'log_payloads: false', 'header_name: Authorization',
            'header_value: Bearer ${{ env "DECK_DASHSCOPE_API_KEY" }}', 'provider: dashscope', 'name: qwen-plus',
            'max_tokens: 8192', 'temperature: 1.0', 'name: file-log', 'path: "/tmp/claude.json"']) {
            assert.ok(y.includes(s), `etc/kong.yaml lacks ${s}`);
        }
    });

    test('sluice -t accepts it unchanged', { timeout: slow(15000) }, () => {
        const r = runSluice(['-t', '-d', CFG, '--plugins-dir', PLUGINS_DIR], { env: { DECK_DASHSCOPE_API_KEY: 'sk-anything' } });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        assert.match(r.stdout + r.stderr, /configuration ok/);
    });

    test('without DECK_DASHSCOPE_API_KEY it fails naming the variable', { timeout: slow(15000) }, () => {
        const r = runSluice(['-t', '-d', CFG, '--plugins-dir', PLUGINS_DIR], { env: { DECK_DASHSCOPE_API_KEY: undefined } });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stdout + r.stderr, /DECK_DASHSCOPE_API_KEY/);
    });

    /* the how-to's ai-proxy as Kong 3.14's Admin API / decK dump it: every
     * field, defaults filled in, the key as an env vault reference */
    test('a Kong 3.14 dump with every default filled in loads', { timeout: slow(15000) }, () => {
        const dir = tmpDir();
        const f = path.join(dir, 'kong.yaml');
        const conf = fs.readFileSync(path.join(ROOT, 'tests/fixtures/kong/ai-proxy-3.14-defaults.json'), 'utf8');
        fs.writeFileSync(f, `_format_version: "3.0"
services:
- name: example-service
  url: http://httpbin.konghq.com/anything
  routes:
  - name: example-route
    paths: ["/anything"]
    plugins:
    - name: ai-proxy
      config: ${conf.replace(/\n\s*/g, ' ')}
`);
        let r = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR], { env: { DASHSCOPE_API_KEY: 'Bearer sk-x' } });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        r = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR], { env: { DASHSCOPE_API_KEY: undefined } });
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stdout + r.stderr, /auth\.header_value: vault reference: environment variable DASHSCOPE_API_KEY is not set/);
        fs.rmSync(dir, { recursive: true, force: true });
    });

    /* ai-proxy's config goes through the host's schema checker: every
     * error, with file, line and Kong's path; ai-proxy-advanced's targets
     * under their own index */
    test('a wrong ai-proxy config is refused with file:line and Kong paths', { timeout: slow(15000) }, () => {
        const dir = tmpDir();
        const f = path.join(dir, 'kong.yaml');
        fs.writeFileSync(f, `_format_version: "3.0"
services:
- name: s
  url: http://127.0.0.1:9/x
  routes:
  - name: r
    paths: ["/a"]
  - name: r2
    paths: ["/b"]
    plugins:
    - name: ai-proxy-advanced
      config:
        targets:
        - route_type: llm/v1/chat
          model: { provider: dashscope, name: a }
        - route_type: llm/v1/chat
          model:
            provider: openai
            name: b
            options: { top_p: 1.5 }
plugins:
- name: ai-proxy
  route: r
  config:
    route_type: llm/v1/chat
    colour: red
    model:
      provider: dashscope
      options:
        max_tokens: 0
        temperature: hot
    logging:
      log_statistics: maybe
    response_streaming: sometimes
`);
        const r = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR]);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        const out = r.stdout + r.stderr;
        for (const want of [
            /kong\.yaml:26: plugins\[0\]\.config\.colour: unknown field$/m,
            /kong\.yaml:30: plugins\[0\]\.config\.model\.options\.max_tokens: value should be between 1 and 2147483647$/m,
            /kong\.yaml:31: plugins\[0\]\.config\.model\.options\.temperature: expected a number$/m,
            /kong\.yaml:33: plugins\[0\]\.config\.logging\.log_statistics: expected a boolean$/m,
            /kong\.yaml:34: plugins\[0\]\.config\.response_streaming: expected one of: allow, deny, always$/m,
            /kong\.yaml:\d+: services\[0\]\.routes\[1\]\.plugins\[0\]\.config\.targets\[1\]\.model\.options\.top_p: value should be between 0 and 1$/m,
        ]) assert.match(out, want);
        fs.rmSync(dir, { recursive: true, force: true });
    });

    test('the test-time copy (upstream_url + log path) is valid too', { timeout: slow(15000) }, () => {
        const dir = tmpDir();
        const f = path.join(dir, 'kong.yaml');
        fs.writeFileSync(f, howtoConfig({ upstreamUrl: 'http://127.0.0.1:9/compatible-mode/v1/chat/completions', logPath: path.join(dir, 'l.json') }));
        const r = runSluice(['-t', '-d', f, '--plugins-dir', PLUGINS_DIR], { env: { DECK_DASHSCOPE_API_KEY: 'sk-anything' } });
        assert.equal(r.code, 0, r.stdout + r.stderr);
        fs.rmSync(dir, { recursive: true, force: true });
    });
});
