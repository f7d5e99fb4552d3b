// config-scale.test.mjs - a large declarative config loads in time linear
// in its entities: 60,000 services with a nested route each, 30,000
// top-level routes naming their service, plugins naming routes and
// services, 2,000 upstreams with targets naming them in another case.
// Every duplicate check and every reference is a hash probe; scanning the
// entities loaded before (as the duplicate service and route checks and
// the references did) made this load take over two minutes of CPU (40,000
// and 20,000 took 59 s), linear takes a few seconds.  The bound (60 s of
// the child's CPU time, not wall time) is far from both, and the
// duplicates planted at the end must still be reported with file:line and
// key path.  The same for server names: 30,000 nested in 10 certificates
// and 10,000 top-level ones naming their certificate by id (the duplicate
// SNI check and the certificate reference scanned what was loaded before).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

import { SLUICE_BIN, PLUGINS_DIR, tmpDir, assertNoSanitizerReport } from './helpers.mjs';
import { makePki, pemYaml } from './tls-certs.mjs';

const NSVC = 60000, NTOP = 30000, NUP = 2000, NPLUG = 2000;
const CPU_BOUND_S = 60;

// The config's YAML and the line each planted duplicate is on.
function bigConfig() {
    const L = ['_format_version: "3.0"', 'services:'];
    const line = {};
    for (let i = 0; i < NSVC; i++)
        L.push(`- name: svc-${i}`, `  url: http://127.0.0.1:9/s${i}`, '  routes:',
               `  - name: r-${i}`, `    paths: [/p${i}]`);
    L.push(`- name: svc-7`); // a duplicate name: services[NSVC]
    line.svcName = L.length;
    L.push('  url: http://127.0.0.1:9/dup');
    L.push('routes:');
    for (let i = 0; i < NTOP; i++)
        L.push(`- name: top-${i}`, `  service: svc-${(i * 2) % NSVC}`, `  paths: [/t${i}]`);
    L.push(`- name: top-0`); // a duplicate route name: routes[NTOP]
    line.routeName = L.length;
    L.push(`  service: svc-1`, `  paths: [/dup]`);
    L.push(`- service: svc-does-not-exist`); // routes[NTOP + 1]
    line.missing = L.length;
    L.push(`  paths: [/nowhere]`);
    L.push('upstreams:');
    for (let i = 0; i < NUP; i++)
        L.push(`- name: up-${i}.example`);
    L.push(`- name: UP-3.example`); // upstream names compare without case
    line.upName = L.length;
    L.push('targets:');
    for (let i = 0; i < NUP; i++)
        L.push(`- target: 127.0.0.1:${1000 + i}`, `  upstream: UP-${i}.EXAMPLE`);
    L.push('plugins:');
    for (let i = 0; i < NPLUG; i++)
        L.push('- name: key-auth', i % 2 ? `  route: top-${i}` : `  service: svc-${i}`);
    return { text: L.join('\n') + '\n', line };
}

// sluice -t under sh, whose `times` gives the child's user and system CPU.
function checkConfig(file) {
    const script = '"$0" -t -d "$1" --plugins-dir "$2"; rc=$?; times >&2; exit $rc';
    return new Promise((resolve) => {
        execFile('sh', ['-c', script, SLUICE_BIN, file, PLUGINS_DIR],
                 { maxBuffer: 64 << 20, timeout: 600000 },
                 (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
    });
}

const seconds = (m, s) => Number(m) * 60 + Number(s);

// The child's user + system CPU from `times`' last line.
function cpuUsed(stderr) {
    const cpu = [...stderr.matchAll(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/g)].at(-1);
    assert.ok(cpu, `no CPU times in: ${stderr.slice(-400)}`);
    return seconds(cpu[1], cpu[2]) + seconds(cpu[3], cpu[4]);
}

test('60,000 services, 90,000 routes, 2,000 upstreams: linear load, duplicates still found', async (t) => {
    const dir = tmpDir();
    const file = path.join(dir, 'big.yaml');
    const { text, line } = bigConfig();
    fs.writeFileSync(file, text);

    const res = await checkConfig(file);
    assertNoSanitizerReport(res.stderr);
    const out = res.stdout + res.stderr;
    assert.notEqual(res.code, 0, 'the planted duplicates fail the load');

    // `times`: the shell's line, then its children's "XmY.YYYs XmY.YYYs"
    const used = cpuUsed(res.stderr);
    assert.ok(used < CPU_BOUND_S, `loading took ${used} s of CPU (bound ${CPU_BOUND_S} s)`);
    t.diagnostic(`loading took ${used.toFixed(1)} s of CPU`);

    const errors = out.split('\n').filter((l) => l.startsWith(file));
    assert.deepEqual(errors, [
        `${file}:${line.svcName}: services[${NSVC}].name: duplicate service name 'svc-7' (also services[7])`,
        `${file}:${line.routeName}: routes[${NTOP}].name: duplicate route name 'top-0' (also routes[0])`,
        `${file}:${line.missing}: routes[${NTOP + 1}].service: service 'svc-does-not-exist' not found`,
        `${file}:${line.upName}: upstreams[${NUP}].name: duplicate upstream name 'UP-3.example' (also upstreams[3])`,
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
});

const NCERT = 10, NNESTED = 30000, NSNI = 10000;

test('40,000 server names over 10 certificates: linear load, duplicates and missing certificates still found', async (t) => {
    const dir = tmpDir();
    const pki = makePki(path.join(dir, 'pki'), [{ name: 'a', cn: 'localhost', san: 'DNS:localhost' }]);
    const L = ['_format_version: "3.0"', 'certificates:'];
    const line = {};
    const id = (c) => `00000000-0000-4000-8000-${String(c).padStart(12, '0')}`;
    for (let c = 0; c < NCERT; c++) {
        L.push(`- id: ${id(c)}`, `  cert: ${pemYaml(pki.a.certPem, 4)}  key: ${pemYaml(pki.a.keyPem, 4).trimEnd()}`, '  snis:');
        for (let i = 0; i < NNESTED / NCERT; i++)
            L.push(`  - h${c}-${i}.example.test`);
    }
    L.push('snis:');
    for (let i = 0; i < NSNI; i++)
        L.push(`- name: t-${i}.example.test`, `  certificate: { id: ${id(i % NCERT)} }`);
    // the line L's last entry ends on (the PEM entries span several)
    const lineNow = () => L.join('\n').split('\n').length;
    L.push('- name: H3-7.Example.Test'); // server names compare without case
    line.dup = lineNow();
    L.push(`  certificate: { id: ${id(1)} }`);
    L.push('- name: lost.example.test', `  certificate: { id: ${id(NCERT)} }`);
    line.missing = lineNow();
    const file = path.join(dir, 'snis.yaml');
    fs.writeFileSync(file, L.join('\n') + '\n');

    const res = await checkConfig(file);
    assertNoSanitizerReport(res.stderr);
    assert.notEqual(res.code, 0, 'the planted errors fail the load');
    const used = cpuUsed(res.stderr);
    assert.ok(used < CPU_BOUND_S, `loading took ${used} s of CPU (bound ${CPU_BOUND_S} s)`);
    t.diagnostic(`loading took ${used.toFixed(1)} s of CPU`);
    const errors = (res.stdout + res.stderr).split('\n').filter((l) => l.startsWith(file));
    assert.deepEqual(errors, [
        `${file}:${line.dup}: snis[${NSNI}].name: duplicate SNI 'H3-7.Example.Test'`,
        `${file}:${line.missing}: snis[${NSNI + 1}].certificate: certificate '${id(NCERT)}' not found`,
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
});
