// dns-server.mjs - a DNS server on a loopback UDP port for the tests: the
// real wire format (RFC 1035; SRV per RFC 2782), records the test sets and
// changes while it runs, a count of the queries it answered, and answers
// held back until the test releases them.  A name
// with records answers NOERROR (an empty answer when it has none of the
// asked type), any other name NXDOMAIN.  UDP only: answers stay small.

import dgram from 'node:dgram';

const TYPES = { A: 1, AAAA: 28, SRV: 33 };

function encodeName(name) {
    const parts = name.replace(/\.$/, '').split('.').filter(Boolean);
    const out = [];
    for (const p of parts) {
        const b = Buffer.from(p, 'ascii');
        out.push(Buffer.from([b.length]), b);
    }
    out.push(Buffer.from([0]));
    return Buffer.concat(out);
}

function ipv6Bytes(ip) {
    const [head, tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const t = tail ? tail.split(':') : [];
    const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
    const b = Buffer.alloc(16);
    groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
    return b;
}

function rdata(type, r) {
    if (type === TYPES.A) return Buffer.from(r.address.split('.').map(Number));
    if (type === TYPES.AAAA) return ipv6Bytes(r.address);
    const b = Buffer.alloc(6);
    b.writeUInt16BE(r.priority ?? 10, 0);
    b.writeUInt16BE(r.weight ?? 10, 2);
    b.writeUInt16BE(r.port, 4);
    return Buffer.concat([b, encodeName(r.target)]);
}

// Parse the question of a query: { id, rd, name, type, end } or null.
function parseQuery(msg) {
    if (msg.length < 12 || msg.readUInt16BE(4) !== 1) return null;
    const labels = [];
    let off = 12;
    for (;;) {
        if (off >= msg.length) return null;
        const len = msg[off++];
        if (len === 0) break;
        if (len > 63 || off + len > msg.length) return null;
        labels.push(msg.toString('ascii', off, off + len));
        off += len;
    }
    if (off + 4 > msg.length) return null;
    return { id: msg.readUInt16BE(0), rd: msg[2] & 1, name: labels.join('.').toLowerCase(),
             type: msg.readUInt16BE(off), end: off + 4 };
}

// records: { 'api.test': { A: [{address, ttl}], AAAA: [...], SRV: [{target, port, weight, priority, ttl}] } }
export async function startDnsServer(records = {}) {
    const sock = dgram.createSocket('udp4');
    const state = { records, queries: [], held: new Map() };
    sock.on('message', (msg, rinfo) => {
        const q = parseQuery(msg);
        if (q === null) return;
        state.queries.push({ name: q.name, type: Object.keys(TYPES).find((k) => TYPES[k] === q.type) ?? q.type, id: q.id });
        const entry = state.records[q.name];
        const kind = Object.keys(TYPES).find((k) => TYPES[k] === q.type);
        const answers = entry && kind ? (entry[kind] ?? []) : [];
        const head = Buffer.alloc(12);
        head.writeUInt16BE(q.id, 0);
        head.writeUInt16BE(0x8080 | (q.rd << 8) | (entry ? 0 : 3), 2); // QR RA [RD], NXDOMAIN when unknown
        head.writeUInt16BE(1, 4);
        head.writeUInt16BE(answers.length, 6);
        const parts = [head, msg.subarray(12, q.end)];
        for (const r of answers) {
            const rr = Buffer.alloc(12);
            rr.writeUInt16BE(0xc00c, 0); // the question's name
            rr.writeUInt16BE(q.type, 2);
            rr.writeUInt16BE(1, 4); // IN
            rr.writeUInt32BE(r.ttl ?? 60, 6);
            const d = rdata(q.type, r);
            rr.writeUInt16BE(d.length, 10);
            parts.push(rr, d);
        }
        const reply = () => sock.send(Buffer.concat(parts), rinfo.port, rinfo.address);
        if (state.held.has(q.name)) state.held.get(q.name).push(reply);
        else reply();
    });
    await new Promise((resolve) => sock.bind(0, '127.0.0.1', resolve));
    return {
        port: sock.address().port,
        get queries() { return state.queries; },
        count(name, type) { return state.queries.filter((q) => q.name === name && (!type || q.type === type)).length; },
        // distinct queries (a resend after a timeout keeps its id)
        countIds(name, type) { return new Set(state.queries.filter((q) => q.name === name && (!type || q.type === type)).map((q) => q.id)).size; },
        set(name, recs) { state.records[name] = recs; },
        remove(name) { delete state.records[name]; },
        // hold(name): answers to name wait until release(name) sends them
        hold(name) { state.held.set(name, []); },
        release(name) { const q = state.held.get(name) ?? []; state.held.delete(name); for (const r of q) r(); },
        close() { return new Promise((resolve) => sock.close(resolve)); },
    };
}
