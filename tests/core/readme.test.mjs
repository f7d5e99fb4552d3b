// readme.test.mjs - the commands README.md shows are run, so they cannot
// rot: every `build/core/sluice ...` command (from the build tree under
// test), every `sluice ...` command line of the "Running it" usage block
// (placeholders filled in, run with -t), and `sluice --help` / `sluice -V`.
// Commands that need a network, an account or root (claude, apt-get,
// systemctl) are not run here; ./quickstart --demo and the how-to are
// covered by tests/e2e.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { runSluice, tmpDir, REPO, SLUICE_BIN } from './helpers.mjs';

const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const inline = [...readme.matchAll(/`((?:build\/core\/)?sluice [^`]*)`/g)].map((m) => m[1]);
const env = { DECK_DASHSCOPE_API_KEY: 'sk-readme-test' };
// run from the repository root, as the README's commands are
const opts = { env, cwd: REPO };

// "build/core/sluice ARGS" -> the binary under test (a build tree's binary
// either way: build/, or build-asan/ under tests/run)
const words = (cmd) => cmd.trim().split(/\s+/);

test('README: every build/core/sluice command works as written', async () => {
    const cmds = inline.filter((c) => c.startsWith('build/core/sluice '));
    assert.ok(cmds.length >= 1, 'README shows build/core/sluice commands');
    for (const c of cmds) {
        const r = await runSluice(words(c).slice(1), opts);
        assert.equal(r.code, 0, `${c}\n${r.stdout}${r.stderr}`);
    }
});

test('README: sluice --help and -V as shown', async () => {
    for (const c of inline.filter((x) => /^sluice (--help|-V|-h)$/.test(x))) {
        const r = await runSluice(words(c).slice(1), opts);
        assert.equal(r.code, 0, c);
        assert.ok(r.stdout.length > 0, c);
    }
});

test('README: the usage block parses, every flag in it exists, placeholders filled', async () => {
    const block = /## Running it\n\n```\n([\s\S]*?)```/.exec(readme);
    assert.ok(block, 'README has a "Running it" usage block');
    const usage = block[1].replace(/\n\s+/g, ' ').trim();
    const help = (await runSluice(['--help'])).stdout;
    for (const flag of usage.match(/(?<=[\s[])--?(?:[a-z][a-z-]*|[A-Z])(?=[\s\]])/g))
        assert.ok(new RegExp(`(^|[\\s,])${flag}[\\s,]`, 'm').test(help), `usage flag ${flag} not in --help`);
    for (const f of ['-c', '-V', '-t', '-d', '-l', '-w'])
        assert.ok(usage.includes(`[${f} `) || usage.includes(`[${f}]`) || usage.includes(` ${f} `), `usage lacks ${f}`);
    // a concrete instance of it, checked with -t
    const dir = tmpDir('sluice-readme-');
    const settings = path.join(dir, 'sluice.conf');
    fs.writeFileSync(settings, 'workers = 1\n');
    const args = ['-t', '-c', settings, '-d', 'etc/kong.yaml', '-l', '127.0.0.1:0', '-w', '1',
                  '--pid', path.join(dir, 'sluice.pid'), '--log-level', 'info',
                  '--max-body-size', '16m'];
    const r = await runSluice(args, opts);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configuration ok/);
});

test('README: the binary under test is a build-tree binary', () => {
    assert.match(SLUICE_BIN, /\/core\/sluice$/);
});
