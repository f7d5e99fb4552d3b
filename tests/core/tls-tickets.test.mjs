// tls-tickets.test.mjs - session ticket key rotation, in seconds thanks to
// ssl_session_ticket_rotation: a ticket resumes on every worker before the
// rotation and after one (renewed under the new key), and once its key is
// two rotations old the server refuses it and a full handshake happens.
// `openssl s_client -sess_out/-sess_in` is the client; the gateway's debug
// log says, for each connection, which worker took it and which key the
// ticket names against the current one, so every observation is placed in
// its rotation period exactly, whatever the machine's load (no timing
// assumption: a period the test happened to miss is waited out again).
// Also: a TLS 1.3 resumption brings a fresh ticket (clients use one once),
// and ssl_session_tickets off gives none.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { spawn } from 'node:child_process';

import { startSluice, freePort, tmpDir, waitFor, sleep, slow } from './helpers.mjs';
import { makePki } from './tls-certs.mjs';

const ROTATION_S = 2;
let gw, pki, dir, tlsPort;

before(async () => {
    dir = tmpDir('sluice-tickets-');
    pki = makePki(path.join(dir, 'pki'), [{ name: 'a', cn: 'localhost', san: 'DNS:localhost,IP:127.0.0.1' }]);
    tlsPort = await freePort();
    gw = await startSluice('_format_version: "3.0"\nservices: []\n', {
        workers: 2,
        args: ['-l', `127.0.0.1:${tlsPort} ssl`, '--ssl-cert', pki.a.cert, '--ssl-cert-key', pki.a.key,
            '--ssl-session-ticket-rotation', String(ROTATION_S), '--log-level', 'debug'],
    });
});

after(async () => {
    await gw?.stop();
});

function run(cmd, args, input = '') {
    return new Promise((resolve) => {
        const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d) => { out += d; });
        p.stderr.on('data', (d) => { out += d; });
        const t = setTimeout(() => p.kill('SIGKILL'), 15000);
        p.on('close', (code) => { clearTimeout(t); resolve({ code, out }); });
        p.stdin.end(input);
    });
}

// a request read to the end, so TLS 1.3's ticket (sent after the handshake) arrives
const GET_CLOSE = 'GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n';

// One connection, alone: what the client saw and what the gateway logged
// for it (connections are sequential, so the log lines between its start
// and its "handshake done" line are its own).
async function connect(v, sessArgs) {
    const from = gw.stderr.length;
    const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${tlsPort}`, '-servername', 'localhost',
        '-CAfile', pki.ca, `-tls${v}`, '-ign_eof', ...sessArgs], GET_CLOSE);
    assert.match(r.out, /Verify return code: 0 \(ok\)/, r.out.slice(0, 800));
    const done = /\[debug\] (worker \d+): TLS handshake done: \S+, (full|resumed)/;
    assert.ok(await waitFor(() => done.test(gw.stderr.slice(from)), slow(10000)), gw.stderr.slice(from));
    const log = gw.stderr.slice(from);
    const d = done.exec(log);
    const t = /TLS session ticket of key (\d+), current key (\d+): (.*)/.exec(log);
    return {
        reused: /^Reused, /m.test(r.out),
        worker: d[1],
        serverResumed: d[2] === 'resumed',
        key: t ? Number(t[1]) : null,
        current: t ? Number(t[2]) : null,
    };
}

// Resume one ticket until the gateway refuses it; every attempt is checked
// against the key ages: 0 or 1 rotation old resumes, 2 or more does not.
async function ticketLife(v) {
    const sess = path.join(dir, `sess-${v}.pem`);
    const issued = await connect(v, ['-sess_out', sess]);
    assert.equal(issued.reused, false, 'the first connection is a full handshake');
    const seen = [];
    for (let i = 0; i < 400; i++) {
        const c = await connect(v, ['-sess_in', sess]);
        assert.notEqual(c.key, null, `TLSv${v}: the client sent its ticket`);
        assert.equal(c.reused, c.serverResumed, 'client and gateway agree');
        const age = c.current - c.key;
        seen.push({ age, reused: c.reused, worker: c.worker });
        if (age <= 1)
            assert.equal(c.reused, true, `TLSv${v}: a ticket ${age} rotation(s) old resumes`);
        else
            assert.equal(c.reused, false, `TLSv${v}: a ticket ${age} rotations old is refused`);
        if (!c.reused)
            return { issuedBy: issued.worker, seen };
        await sleep(150);
    }
    assert.fail(`TLSv${v}: the ticket was never refused: ${JSON.stringify(seen)}`);
}

// The pid of each worker, from the debug log's "worker N started (pid P)".
function workerPid(name) {
    const m = [...gw.stderr.matchAll(/\[debug\] worker \d+: (worker \d+) started \(pid (\d+)\)/g)].filter((x) => x[1] === name);
    return m.length ? Number(m.at(-1)[2]) : null;
}

// The workers share one listening socket, and which of them accepts a
// connection is the kernel's choice (under load one worker may take them
// all). So the worker that issued a ticket is stopped: the other must take
// the next connection, and resume the ticket with the key they share.
async function resumesOnOtherWorker(v) {
    const sess = path.join(dir, `sess-x-${v}.pem`);
    const issued = await connect(v, ['-sess_out', sess]);
    const pid = workerPid(issued.worker);
    assert.ok(pid, `the log names ${issued.worker}'s pid`);
    process.kill(pid, 'SIGSTOP');
    let c;
    try {
        c = await connect(v, ['-sess_in', sess]);
    } finally {
        process.kill(pid, 'SIGCONT');
    }
    assert.notEqual(c.worker, issued.worker, 'the stopped worker took no connection');
    const age = c.current - c.key;
    // a rotation may fall between the two connections; two cannot (2 s each)
    assert.ok(age <= 1, JSON.stringify(c));
    assert.equal(c.reused, true, `TLSv${v}: a ticket issued by ${issued.worker} resumes on ${c.worker}`);
}

test('ticket keys rotate every ssl_session_ticket_rotation seconds, shared by the workers', { timeout: slow(120000) }, async () => {
    for (const v of ['1_3', '1_2']) {
        // a slow moment may skip the whole "one rotation old" period; take
        // another ticket then (three tries)
        let life;
        for (let tries = 0; tries < 3; tries++) {
            life = await ticketLife(v);
            if (life.seen.some((s) => s.age === 0) && life.seen.some((s) => s.age === 1))
                break;
        }
        const ages = life.seen.map((s) => s.age);
        assert.ok(ages.includes(0), `TLSv${v}: resumed before a rotation: ${JSON.stringify(life.seen)}`);
        assert.ok(ages.includes(1), `TLSv${v}: resumed after one rotation: ${JSON.stringify(life.seen)}`);
        assert.ok(ages.at(-1) >= 2, `TLSv${v}: refused when two rotations old`);
        await resumesOnOtherWorker(v);
    }
    assert.match(gw.stderr, /TLS session ticket keys rotated \(key \d+ is current\)/);
});

test('a ticket taken after rotations resumes on the current key', { timeout: slow(30000) }, async () => {
    const sess = path.join(dir, 'sess-late.pem');
    const first = await connect('1_3', ['-sess_out', sess]);
    assert.equal(first.reused, false);
    const again = await connect('1_3', ['-sess_in', sess]);
    assert.ok(again.key >= 2, `issued under a rotated key: ${JSON.stringify(again)}`);
    assert.ok(again.current - again.key <= 1 ? again.reused : !again.reused, JSON.stringify(again));
});

// One TLS 1.3 connection to `port` offering `session` (a ticket from an
// earlier one): whether it resumed, and the tickets the gateway sent on it.
function tls13(port, session) {
    return new Promise((resolve, reject) => {
        const tickets = [];
        let reused = null, text = '';
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: [fs.readFileSync(pki.ca)], session,
                                minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' }, () => {
            reused = s.isSessionReused();
            s.write(GET_CLOSE);
        });
        s.on('session', (t) => tickets.push(t));
        s.on('data', (d) => { text += d; });
        s.on('error', reject);
        s.on('close', () => resolve({ reused, tickets, text }));
    });
}

// A client uses a TLS 1.3 ticket once (RFC 8446 C.4; OpenSSL's and node's
// clients do), so each resumption must bring a fresh ticket, or every other
// connection of a client is a full handshake.
test('TLS 1.3: every resumption gets a fresh ticket, so a client resumes on each connection', { timeout: slow(20000) }, async () => {
    const first = await tls13(tlsPort, undefined);
    assert.equal(first.reused, false);
    assert.match(first.text, /^HTTP\/1\.1 /);
    assert.equal(first.tickets.length, 1, 'one ticket after a full handshake');
    let ticket = first.tickets[0];
    for (let i = 2; i <= 5; i++) {
        const r = await tls13(tlsPort, ticket);
        assert.equal(r.reused, true, `connection ${i} resumed with the ticket of the one before`);
        assert.match(r.text, /^HTTP\/1\.1 /);
        assert.equal(r.tickets.length, 1, `connection ${i}: a fresh ticket after the resumption`);
        assert.notDeepEqual(r.tickets[0], ticket, `connection ${i}: a new ticket, not the one just used`);
        ticket = r.tickets[0];
    }
});

test('ssl_session_tickets off: no ticket is sent', { timeout: slow(20000) }, async () => {
    const port = await freePort();
    const off = await startSluice('_format_version: "3.0"\nservices: []\n', {
        workers: 1,
        args: ['-l', `127.0.0.1:${port} ssl`, '--ssl-cert', pki.a.cert, '--ssl-cert-key', pki.a.key,
            '--ssl-session-tickets', 'off'],
    });
    try {
        const r = await tls13(port, undefined);
        assert.match(r.text, /^HTTP\/1\.1 /);
        assert.equal(r.reused, false);
        assert.equal(r.tickets.length, 0, 'no ticket');
    } finally {
        await off.stop();
    }
});
