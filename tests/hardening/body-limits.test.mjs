/* body-limits.test.mjs - a route's body limit applies before the body is
 * read.  ai-proxy declares max_request_body_size (1 MiB) in its access
 * phase: a larger Content-Length is answered 413 at once, before any body
 * byte (it used to be buffered up to the node's 64 MiB first), and a
 * chunked body is cut off at the limit.  Held uploads then cost the worker
 * nothing (peak RSS checked).  An early 413 on a 65 MB body reaches the
 * client: the connection lingers (output shut down, input drained) instead
 * of being reset under the client's feet. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';

import { startStack, rawExchange, anthropicErrorProblem, bodyOf, waitFor, sleep, slow } from './lib.mjs';

let st, workers0;

before(async () => {
    st = await startStack({ workers: 1 });
    workers0 = st.workers();
});

after(async () => {
    if (!st) return;
    assert.deepEqual(st.workers(), workers0, 'a worker died');
    await st.stop();
});

const AI_HEAD = (extra) => `POST /ai/v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nanthropic-version: 2023-06-01\r\n${extra}\r\n`;

function hwmKb(pid) {
    return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
}

test('a declared Content-Length over the route limit is a 413 before any body byte', async () => {
    /* a gateway waiting for the body would not answer before the timeout */
    const r = await rawExchange(st.port, AI_HEAD('Content-Length: 5000000\r\n'), { timeoutMs: slow(8000) });
    assert.equal(r.status, 413, r.text.slice(0, 200));
    assert.ok(r.ms < slow(5000), `answered after ${r.ms} ms`);
    assert.equal(anthropicErrorProblem(bodyOf(r.text)), '', bodyOf(r.text));
    assert.equal(st.mock.chatRequests?.length ?? 0, 0);
});

test('a chunked body is cut off at the route limit', async () => {
    const piece = `${(64 * 1024).toString(16)}\r\n${'a'.repeat(64 * 1024)}\r\n`;
    const chunks = [AI_HEAD('Transfer-Encoding: chunked\r\n')];
    for (let i = 0; i < 40; i++) chunks.push(piece); // 2.5 MB
    const r = await rawExchange(st.port, chunks, { timeoutMs: slow(10000), doneWhen: (t) => t.includes('\r\n\r\n') });
    assert.equal(r.status, 413, r.text.slice(0, 200));
});

test('eight held uploads declaring 60 MB cost the worker nothing', async () => {
    const [w] = st.workers();
    const before = hwmKb(w);
    const socks = [];
    const statuses = [];
    for (let i = 0; i < 8; i++) {
        const s = net.connect(st.port, '127.0.0.1');
        s.on('error', () => {});
        let got = '';
        s.on('data', (d) => { got += d.toString('latin1'); });
        s.on('close', () => statuses.push(Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0)));
        s.write(AI_HEAD('Content-Length: 60000000\r\n'));
        const blob = Buffer.alloc(4 * 1024 * 1024, 'x');
        s.write(blob);
        s.write(blob);
        socks.push(s);
    }
    const t0 = Date.now();
    while (statuses.length < 8 && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 50));
    for (const s of socks) s.destroy();
    const grew = hwmKb(w) - before;
    console.log(`# 8 held uploads: worker peak RSS ${before} -> ${before + grew} kB`);
    assert.deepEqual(statuses, Array(8).fill(413));
    assert.ok(grew < 8 * 1024, `worker peak RSS grew by ${grew} kB`);
});

test('a 413 on a 65 MB body is readable by a client that keeps sending', async () => {
    const r = await new Promise((resolve) => {
        const s = net.connect(st.port, '127.0.0.1');
        let got = '';
        let err = null;
        s.on('data', (d) => { got += d.toString('latin1'); });
        s.on('error', (e) => { err = e.code; });
        s.on('close', () => resolve({ got, err }));
        s.on('connect', async () => {
            s.write(`POST /plain/big HTTP/1.1\r\nHost: x\r\nContent-Length: ${65 * 1024 * 1024}\r\n\r\n`);
            const blob = Buffer.alloc(1024 * 1024, 'y');
            for (let i = 0; i < 65 && !s.destroyed; i++) {
                if (!s.write(blob)) await new Promise((ok) => { s.once('drain', ok); s.once('close', ok); });
            }
            s.end();
        });
    });
    assert.match(r.got, /^HTTP\/1\.1 413 /, `got ${JSON.stringify(r.got.slice(0, 80))}, error ${r.err}`);
});

/* ---- max_body_memory: one budget for the bodies all workers buffer ----- */

/* The worker (of `pids`) holding the server side of the connection from
 * the client's local port `clientPort` to the gateway's `gwPort`. */
function workerOf(pids, gwPort, clientPort) {
    let inode = null;
    for (const l of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
        const f = l.trim().split(/\s+/);
        if (f.length < 10) continue;
        if (parseInt(f[1].split(':')[1], 16) === gwPort && parseInt(f[2].split(':')[1], 16) === clientPort) inode = f[9];
    }
    for (const pid of pids) {
        let fds = [];
        try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { continue; }
        for (const fd of fds) {
            try {
                if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === `socket:[${inode}]`) return pid;
            } catch { /* closed meanwhile */ }
        }
    }
    return null;
}

const MIB = 1024 * 1024;

/* POST /plain/echo declaring 4 MiB, send `first` bytes now (3 MiB by
 * default); more(n) sends n more, finish() the rest.  `answer` resolves with
 * the status once a whole response or a close arrived (0: none). */
function upload(port, first = 3 * MIB, { chunked = false } = {}) {
    const s = net.connect(port, '127.0.0.1');
    let got = '';
    let sent = first;
    const u = { sock: s, got: () => got, answered: false };
    u.answer = new Promise((resolve) => {
        const done = () => { u.answered = true; resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(got)?.[1] ?? 0)); };
        s.on('data', (d) => {
            got += d.toString('latin1');
            const end = got.indexOf('\r\n\r\n');
            const m = /content-length: (\d+)/i.exec(got);
            if (end >= 0 && m && got.length >= end + 4 + Number(m[1])) done();
        });
        s.on('close', done);
        s.on('error', () => {});
    });
    u.connected = new Promise((ok) => s.on('connect', ok));
    const piece = (n) => (chunked ? Buffer.concat([Buffer.from(`${n.toString(16)}\r\n`),
        Buffer.alloc(n, 'b'), Buffer.from('\r\n')]) : Buffer.alloc(n, 'b'));
    s.write(`POST /plain/echo HTTP/1.1\r\nHost: x\r\n${chunked ? 'Transfer-Encoding: chunked'
        : `Content-Length: ${4 * MIB}`}\r\n\r\n`);
    s.write(piece(first));
    u.more = (n) => { sent += n; s.write(piece(n)); };
    u.finish = () => u.more(4 * MIB - sent);
    return u;
}

/* The worker reading u, once the gateway has accepted it. */
async function workerOfUpload(st, u) {
    await u.connected;
    return waitFor(() => workerOf(st.workers(), st.port, u.sock.localPort), slow(10000));
}

test('max_body_memory: concurrent uploads over the budget get 503 + Retry-After, the rest go through', async () => {
    /* 10 MiB for the node; a 4 MiB body held at 3 MiB takes 4 MiB (the
     * buffer grows up to the declared length), so two fit and four of six
     * concurrent uploads are refused, whatever the interleaving */
    const s2 = await startStack({ workers: 2, env: { SLUICE_MAX_BODY_MEMORY: '10m' } });
    try {
        const ups = [];
        for (let i = 0; i < 6; i++) ups.push(upload(s2.port));
        const statuses = new Map();
        ups.forEach((u, i) => u.answer.then((st) => statuses.set(i, st)));
        await waitFor(() => statuses.size >= 4, slow(10000));
        await sleep(300); /* and no more */
        assert.equal(statuses.size, 4, `answered: ${JSON.stringify([...statuses])}`);
        for (const [i, st] of statuses) {
            assert.equal(st, 503, ups[i].got().slice(0, 200));
            assert.match(ups[i].got(), /\r\nretry-after: 1\r\n/i);
        }
        /* the two held ones complete: 200 with the whole body upstream */
        const held = ups.filter((_, i) => !statuses.has(i));
        held.forEach((u) => u.finish());
        for (const u of held) {
            assert.equal(await u.answer, 200, u.got().slice(0, 300));
            assert.match(u.got(), new RegExp(`"bodyLength":${4 * MIB}`));
        }
        /* their memory was given back: two fit again */
        const again = [upload(s2.port), upload(s2.port)];
        await sleep(300);
        again.forEach((u) => u.finish());
        for (const u of again) assert.equal(await u.answer, 200, u.got().slice(0, 300));
        for (const u of ups.concat(again)) u.sock.destroy();
        /* 6 refused bodies are in the log as 503s */
    } finally {
        await s2.stop();
    }
});

test('max_body_memory is one budget for all workers, and a killed worker\'s share comes back', async () => {
    /* 6 MiB: one 4 MiB body fits, a second one does not, on any worker */
    const s2 = await startStack({ workers: 2, env: { SLUICE_MAX_BODY_MEMORY: '6m' } });
    try {
        const a = upload(s2.port);
        const wa = await workerOfUpload(s2, a);
        assert.ok(wa, 'no worker holds the first upload');
        await sleep(200);
        assert.equal(a.answered, false, a.got().slice(0, 200));
        /* an upload read by the other worker (chunked: no length to refuse
         * at the head): 1 MiB fits beside a's 4 MiB, 3 MiB do not (with a
         * budget per worker they would) */
        let b = null;
        for (let i = 0; i < 40 && !b; i++) {
            const u = upload(s2.port, MIB, { chunked: true });
            const wu = await workerOfUpload(s2, u);
            if (wu && wu !== wa) b = u;
            else u.sock.destroy();
        }
        assert.ok(b, 'no connection reached the second worker in 40 tries');
        await sleep(100);
        assert.equal(b.answered, false, b.got().slice(0, 200));
        b.more(2 * MIB);
        assert.equal(await b.answer, 503, b.got().slice(0, 200));
        assert.match(b.got(), /\r\nretry-after: 1\r\n/i);
        a.finish();
        assert.equal(await a.answer, 200, a.got().slice(0, 200));

        /* kill -9 the worker holding an upload: the master takes its 4 MiB
         * back (else the next 4 MiB body would not fit) */
        const c = upload(s2.port);
        const wc = await workerOfUpload(s2, c);
        await sleep(200);
        assert.equal(c.answered, false, c.got().slice(0, 200));
        process.kill(wc, 'SIGKILL');
        await c.answer;
        await waitFor(() => s2.workers().length === 2 && !s2.workers().includes(wc), slow(10000));
        const d = upload(s2.port);
        await sleep(200);
        d.finish();
        assert.equal(await d.answer, 200, d.got().slice(0, 300));
        for (const u of [a, b, c, d]) u.sock.destroy();
    } finally {
        await s2.stop();
    }
});
