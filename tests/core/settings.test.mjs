// settings.test.mjs - the command line of the real binary: a settings file
// passed in every spelling is read (a bad one fails -t), --help and
// --help-man come from the one directive table, -V is meson's version.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { runSluice, tmpDir, REPO, PLUGINS_DIR } from './helpers.mjs';

const dir = tmpDir('sluice-settings-');
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const cfg = path.join(dir, 'kong.yaml');
fs.writeFileSync(cfg, '_format_version: "3.0"\nservices: []\n');
const bad = path.join(dir, 'bad.conf');
fs.writeFileSync(bad, 'no_such_setting = 1\n');
const good = path.join(dir, 'good.conf');
fs.writeFileSync(good, `# a comment\ndeclarative_config = ${cfg}\nplugins_dir = ${PLUGINS_DIR}\n`);

for (const spelling of [['-c', bad], ['--settings', bad], [`--settings=${bad}`], [`-c${bad}`]]) {
    test(`a bad settings file given as ${spelling.join(' ').replace(dir, 'DIR')} fails -t`, async () => {
        const r = await runSluice(['-t', '-d', cfg, '--plugins-dir', PLUGINS_DIR, ...spelling]);
        assert.equal(r.code, 1, r.stdout + r.stderr);
        assert.match(r.stderr, /bad\.conf:1: no_such_setting: unknown setting/);
        assert.doesNotMatch(r.stdout, /configuration ok/);
    });
}

test('a good settings file is read, SLUICE_SETTINGS too', async () => {
    let r = await runSluice(['-t', `--settings=${good}`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /configuration ok/);
    r = await runSluice(['-t'], { env: { SLUICE_SETTINGS: bad } });
    assert.equal(r.code, 1);
    r = await runSluice(['-t'], { env: { SLUICE_SETTINGS: good } });
    assert.equal(r.code, 0, r.stderr);
});

test('invalid values name the setting and what was expected', async () => {
    let r = await runSluice(['-t', '-d', cfg, '--max-body-size', 'lots']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--max-body-size: invalid value 'lots' \(expected a size/);
    r = await runSluice(['-t', '-d', cfg], { env: { SLUICE_KEEPALIVE_TIMEOUT: '0' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /SLUICE_KEEPALIVE_TIMEOUT: invalid value '0' \(expected a number 1-86400000\)/);
    r = await runSluice(['-t', 'stray']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unexpected argument 'stray'/);
});

test('--help and --help-man list every setting, its flag and its variable', async () => {
    const help = await runSluice(['--help']);
    const man = await runSluice(['--help-man']);
    assert.equal(help.code, 0);
    assert.equal(man.code, 0);
    assert.match(man.stdout, /^\.TH SLUICE 8 /);
    assert.doesNotMatch(help.stdout, /help-man/);
    // the settings file keys, from the manual page's FILES section
    const keys = man.stdout.split('.SH FILES')[1].split('.SH')[0]
        .split('\n').filter((l) => l.startsWith('.B ')).map((l) => l.slice(3).replaceAll('\\-', '-'));
    assert.ok(keys.length >= 14, keys.join(','));
    for (const k of keys) {
        assert.ok(help.stdout.includes(`--${k.replaceAll('_', '-')}`), `--help lacks --${k}`);
        assert.ok(help.stdout.includes(`SLUICE_${k.toUpperCase()}`), `--help lacks SLUICE_${k}`);
        assert.ok(man.stdout.includes(`SLUICE_${k.toUpperCase()}`), `--help-man lacks SLUICE_${k}`);
    }
    for (const line of help.stdout.split('\n'))
        assert.ok(line.length <= 80 || !line.trim().includes(' '), `help line too long: ${line}`);
});

test('-V prints the version of meson.build', async () => {
    const version = /version\s*:\s*'([^']+)'/.exec(fs.readFileSync(path.join(REPO, 'meson.build'), 'utf8'))[1];
    const r = await runSluice(['-V']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`^sluice ${version.replaceAll('.', '\\.')} \\(plugin ABI \\d+\\.\\d+\\)`));
});
