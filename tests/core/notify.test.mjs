// notify.test.mjs - end-to-end: under a service manager (NOTIFY_SOCKET set,
// as systemd does for Type=notify), the master reports READY=1 once it
// serves, RELOADING=1 then READY=1 around a reload (a refused one too), and
// STOPPING=1 when a graceful stop begins.  The service manager's side is a
// datagram socket held by a small python3 listener (node has no AF_UNIX
// datagrams).  Skipped when sluice is built without libsystemd.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';

import { startUpstream } from './upstream.mjs';
import { startSluice, simpleConfig, tmpDir, waitFor, SLUICE_BIN, slow } from './helpers.mjs';

const built = spawnSync(SLUICE_BIN, ['-V'], { encoding: 'utf8' }).stdout ?? '';
const python = spawnSync('python3', ['-c', 'pass']).status === 0;
const skip = !/^systemd notify yes$/m.test(built) ? 'built without libsystemd'
    : !python ? 'python3 is not installed' : false;

const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(s.recv(4096).decode().replace("\\n", " "), flush=True)
`;

let up, listener, sock;
const messages = [];

before(async () => {
    if (skip) return;
    up = await startUpstream();
    sock = path.join(tmpDir('sluice-notify-'), 'notify.sock');
    listener = spawn('python3', ['-c', LISTENER, sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    listener.stdout.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
            messages.push(buf.slice(0, i));
            buf = buf.slice(i + 1);
        }
    });
    assert.ok(await waitFor(() => messages.includes('bound'), slow(30000)), 'notify listener (python3 starting)');
});

after(async () => {
    listener?.kill();
    await up?.close();
});

const seen = (re, from = 0) => messages.slice(from).findIndex((m) => re.test(m));

test('READY, RELOADING/READY on reload, STOPPING on stop', { skip, timeout: slow(30000) }, async () => {
    const config = simpleConfig(up.port);
    const g = await startSluice(config, { workers: 1, env: { NOTIFY_SOCKET: sock } });
    try {
        assert.ok(await waitFor(() => seen(/^READY=1/) >= 0), `READY=1: ${messages}`);
        let mark = messages.length;
        await g.reload();
        assert.ok(await waitFor(() => seen(/^READY=1/, mark) >= 0), `READY=1 after reload: ${messages}`);
        const r = seen(/^RELOADING=1 .*MONOTONIC_USEC=\d+/, mark);
        assert.ok(r >= 0 && r < seen(/^READY=1/, mark), `RELOADING=1 before READY=1: ${messages.slice(mark)}`);
        mark = messages.length;
        await g.reload('this: is: not: a config');
        assert.ok(await waitFor(() => seen(/^READY=1/, mark) >= 0), `READY=1 after a refused reload: ${messages}`);
        assert.ok(seen(/^RELOADING=1/, mark) >= 0);
        mark = messages.length;
        const st = await g.stop();
        assert.equal(st.code, 0);
        assert.ok(seen(/^STOPPING=1/, mark) >= 0, `STOPPING=1: ${messages.slice(mark)}`);
    } finally {
        await g.stop();
    }
});
