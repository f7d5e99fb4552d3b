// install.test.mjs - end-to-end: sluice installed into a temporary prefix
// (meson install --destdir) is enough to build a third-party plugin out of
// tree with a plain `cc $(pkg-config --cflags sluice)`, and the plugin,
// dropped into a plugins directory and enabled on one route, works there
// and not on another route.
//
// The build directory installed is SLUICE_BUILD_DIR, or the one SLUICE_BIN
// lives in (default build/).  examples/request-id-header is built too when
// it exists.

import { spawnSync } from 'node:child_process';
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import http from 'node:http';

import { startUpstream } from './upstream.mjs';
import { startSluice, runSluice, request, tmpDir, SLUICE_BIN, REPO, slow } from './helpers.mjs';

const BUILD_DIR = path.resolve(REPO, process.env.SLUICE_BUILD_DIR ??
                               path.dirname(path.dirname(SLUICE_BIN)));

let up, root, prefix, libdir, bin, pcDir;

function sh(cmd, args, opts = {}) {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

before(async () => {
    up = await startUpstream();
    root = tmpDir('sluice-install-');
    const destdir = path.join(root, 'dest');
    sh('meson', ['install', '-C', BUILD_DIR, '--destdir', destdir, '--no-rebuild', '--quiet']);
    const opts = JSON.parse(sh('meson', ['introspect', '--buildoptions', BUILD_DIR]));
    const opt = (n) => opts.find((o) => o.name === n).value;
    prefix = path.join(destdir, opt('prefix'));
    libdir = path.isAbsolute(opt('libdir')) ? path.join(destdir, opt('libdir'))
                                            : path.join(prefix, opt('libdir'));
    bin = path.join(prefix, opt('bindir'), 'sluice');
    pcDir = path.join(libdir, 'pkgconfig');
});

after(async () => {
    await up?.close();
    if (root) fs.rmSync(root, { recursive: true, force: true });
});

function pkgCflags() {
    // PKG_CONFIG_SYSROOT_DIR maps the .pc file's prefix into the destdir.
    return sh('pkg-config', ['--cflags', 'sluice'], {
        env: { ...process.env, PKG_CONFIG_PATH: pcDir, PKG_CONFIG_SYSROOT_DIR: path.join(root, 'dest') },
    }).trim().split(/\s+/).filter(Boolean);
}

const OOT_PLUGIN = `/* oot.c - a third-party plugin built out of tree */
#include <string.h>
#include <sluice/plugin.h>

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    *out = NULL;
    return 0;
}

static sl_status_t
access_cb(const sl_api_t *api, sl_req_t *r, void *conf)
{
    sl_str_t id = api->req_id(r);
    api->req_header_set(r, SL_STR("X-Oot-Request-Id"), id);
    api->set_serialize_value(r, "oot.seen", SL_STR("true"));
    return SL_STATUS_CONTINUE;
}

static sl_status_t
header_filter_cb(const sl_api_t *api, sl_req_t *r, void *conf)
{
    api->resp_header_set(r, SL_STR("X-Oot"), SL_STR("on"));
    return SL_STATUS_CONTINUE;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI, "oot-test", "1.0.0", 1000,
    .config_parse = config_parse,
    .access = access_cb,
    .header_filter = header_filter_cb,
};
`;

test('the install has the binary, header, pkg-config file and bundled plugins', { timeout: slow(30000) }, () => {
    assert.ok(fs.existsSync(bin), `${bin} installed`);
    assert.ok(fs.existsSync(path.join(prefix, 'include', 'sluice', 'plugin.h')), 'plugin.h installed');
    assert.ok(fs.existsSync(path.join(pcDir, 'sluice.pc')), 'sluice.pc installed');
    const plugdir = path.join(libdir, 'sluice', 'plugins');
    const installed = fs.readdirSync(plugdir);
    assert.ok(installed.includes('ai-proxy.so') && installed.includes('file-log.so'),
              `bundled plugins in ${plugdir}: ${installed}`);
    const v = sh(bin, ['-V']);
    assert.match(v, /\d+\.\d+\.\d+/);
    const cflags = pkgCflags();
    assert.ok(cflags.some((f) => f.startsWith('-I') && f.includes(root)), `cflags ${cflags}`);
});

test('an out-of-tree plugin built with plain cc works on its route only', { timeout: slow(60000) }, async () => {
    const work = path.join(root, 'oot');
    const plugins = path.join(root, 'my-plugins');
    fs.mkdirSync(work, { recursive: true });
    fs.mkdirSync(plugins, { recursive: true });
    fs.writeFileSync(path.join(work, 'oot.c'), OOT_PLUGIN);
    sh('cc', [...pkgCflags(), '-std=c11', '-Wall', '-Wextra', '-Werror', '-Wno-unused-parameter',
              '-shared', '-fPIC', '-o', path.join(plugins, 'oot-test.so'), path.join(work, 'oot.c')],
       { cwd: work });

    const config = `_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up.port}/base
  routes:
  - name: with-plugin
    paths: [/with]
    plugins:
    - name: oot-test
  - name: without
    paths: [/without]
`;
    const cfgFile = path.join(root, 'oot.yaml');
    fs.writeFileSync(cfgFile, config);
    const t = await runSluice(['-t', '-d', cfgFile, '--plugins-dir', plugins]);
    assert.equal(t.code, 0, t.stderr);

    const g = await startSluice(config, { workers: 1, pluginsDirs: [plugins], dir: root,
                                          bin });
    try {
        const a = await request(g.port, { path: '/with/x' });
        assert.equal(a.status, 200);
        assert.equal(a.headers['x-oot'], 'on');
        assert.equal(a.json().headers['x-oot-request-id'], a.headers['x-kong-request-id']);
        const b = await request(g.port, { path: '/without/x' });
        assert.equal(b.status, 200);
        assert.equal(b.headers['x-oot'], undefined);
        assert.equal(b.json().headers['x-oot-request-id'], undefined);
    } finally {
        await g.stop();
    }
});

const EXAMPLE = path.join(REPO, 'examples', 'request-id-header');

test('examples/request-id-header builds out of tree and works on its route only', {
    timeout: 60000,
    skip: !fs.existsSync(EXAMPLE) || !fs.readdirSync(EXAMPLE).some((f) => f.endsWith('.c'))
        ? 'examples/request-id-header not there yet' : false,
}, async () => {
    const plugins = path.join(root, 'example-plugins');
    fs.mkdirSync(plugins, { recursive: true });
    const srcs = fs.readdirSync(EXAMPLE).filter((f) => f.endsWith('.c')).map((f) => path.join(EXAMPLE, f));
    const so = path.join(plugins, 'request-id-header.so');
    sh('cc', [...pkgCflags(), '-shared', '-fPIC', '-o', so, ...srcs], { cwd: root });
    // it loads (ABI accepted) before anything enables it
    const probe = path.join(root, 'probe.yaml');
    fs.writeFileSync(probe, '_format_version: "3.0"\n');
    assert.equal((await runSluice(['-t', '-d', probe, '--plugins-dir', plugins])).code, 0);
    const name = 'request-id-header';
    const config = `_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up.port}/base
  routes:
  - name: with-plugin
    paths: [/with]
    plugins:
    - name: ${name}
  - name: without
    paths: [/without]
`;
    const g = await startSluice(config, { workers: 1, pluginsDirs: [plugins], bin });
    try {
        // The plugin adds a request-id header somewhere: on the request the
        // upstream sees, or on the response.  Whatever it adds on /with must
        // be absent on /without.
        const ids = (r) => {
            const up = Object.keys(r.json().headers).filter((h) => /request-id/i.test(h));
            const down = Object.keys(r.headers).filter((h) => /request-id/i.test(h) &&
                                                        h !== 'x-kong-request-id');
            return [...up.map((h) => `up:${h}`), ...down.map((h) => `down:${h}`)];
        };
        const a = await request(g.port, { path: '/with/x' });
        const b = await request(g.port, { path: '/without/x' });
        assert.equal(a.status, 200);
        assert.equal(b.status, 200);
        const added = ids(a).filter((h) => !ids(b).includes(h));
        assert.ok(added.length > 0, `no request-id header added on /with (with: ${ids(a)}, without: ${ids(b)})`);
        // its documented default: X-Request-Id both ways, the same id
        if (a.headers['x-request-id'] !== undefined)
            assert.equal(a.json().headers['x-request-id'], a.headers['x-request-id']);
        // a client-sent id is kept
        const c = await request(g.port, { path: '/with/y', headers: { 'X-Request-Id': 'client-id-1' } });
        assert.equal(c.json().headers['x-request-id'], 'client-id-1');
    } finally {
        await g.stop();
    }
});

const EXT_AUTHZ = path.join(REPO, 'examples', 'ext-authz');

test('examples/ext-authz builds out of tree, passes its test-host unit test, and authorizes through a real gateway', {
    timeout: 90000,
}, async () => {
    const work = path.join(root, 'ext-authz');
    fs.cpSync(EXT_AUTHZ, work, { recursive: true });
    const env = {
        ...process.env,
        PKG_CONFIG_PATH: pcDir,
        PKG_CONFIG_SYSROOT_DIR: path.join(root, 'dest'),
        LD_LIBRARY_PATH: libdir,
    };
    const cflags = 'CFLAGS=-O2 -g -Wall -Wextra -Werror -Wno-unused-parameter';
    sh('make', [cflags, 'ext-authz.so'], { cwd: work, env });
    // A sanitizer build installs a sanitized test host: its runtime must come
    // first in the test program too.
    const ldd = spawnSync('ldd', [path.join(libdir, 'libsluice-testhost.so')], { encoding: 'utf8' }).stdout ?? '';
    const san = /libasan/.test(ldd) ? ' -fsanitize=address,undefined' : '';
    const unit = sh('make', [cflags + san, 'test'], { cwd: work, env });
    assert.match(unit, /ext-authz: all checks passed/);

    // the authorization service: "Bearer good" passes as alice
    const seen = [];
    const authz = http.createServer((req, res) => {
        seen.push({ url: req.url, method: req.headers['x-original-method'], uri: req.headers['x-original-uri'] });
        if (req.headers.authorization === 'Bearer good') {
            res.writeHead(200, { 'X-Auth-User': 'alice' });
            res.end();
        } else {
            res.writeHead(403, { 'Content-Type': 'application/json' });
            res.end('{"message":"not you"}');
        }
    });
    await new Promise((r) => authz.listen(0, '127.0.0.1', r));
    const plugins = path.join(root, 'authz-plugins');
    fs.mkdirSync(plugins, { recursive: true });
    fs.copyFileSync(path.join(work, 'ext-authz.so'), path.join(plugins, 'ext-authz.so'));
    const g = await startSluice(`_format_version: "3.0"
services:
- name: svc
  url: http://127.0.0.1:${up.port}/base
  routes:
  - name: guarded
    paths: [/api]
    plugins:
    - name: ext-authz
      config: {url: "http://127.0.0.1:${authz.address().port}/check", timeout_ms: 2000}
`, { workers: 1, pluginsDirs: [plugins], bin });
    try {
        const ok = await request(g.port, { path: '/api/orders?id=1', headers: { Authorization: 'Bearer good' } });
        assert.equal(ok.status, 200);
        assert.equal(ok.json().headers['x-auth-user'], 'alice');
        assert.deepEqual(seen.at(-1), { url: '/check/api/orders', method: 'GET', uri: '/api/orders?id=1' });
        const no = await request(g.port, { path: '/api/orders', headers: { Authorization: 'Bearer bad' } });
        assert.equal(no.status, 403);
        assert.equal(no.text, '{"message":"not you"}');
        // many in a row over kept-alive callout connections
        for (let i = 0; i < 10; i++)
            assert.equal((await request(g.port, { path: `/api/${i}`, headers: { Authorization: 'Bearer good' } })).status, 200);
    } finally {
        await g.stop();
        await new Promise((r) => authz.close(r));
    }
});
