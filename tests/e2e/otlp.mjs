// otlp.mjs - a stub OTLP/HTTP trace receiver for the tests, and a small
// protobuf reader for what it receives.  The reader knows the official
// field numbers of ExportTraceServiceRequest (opentelemetry-proto
// collector/trace/v1, trace/v1, resource/v1, common/v1) on its own, written
// from the specification, not from sluice's otlp.proto, so a wrong field
// number on either side shows up.

import http from 'node:http';

/* ---- protobuf wire format ---- */

function* fields(buf) {
    let i = 0;
    const varint = () => {
        let v = 0n, shift = 0n;
        for (;;) {
            if (i >= buf.length) throw new Error('truncated varint');
            const b = buf[i++];
            v |= BigInt(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
            shift += 7n;
            if (shift > 63n) throw new Error('varint too long');
        }
    };
    while (i < buf.length) {
        const key = Number(varint());
        const no = key >>> 3, wt = key & 7;
        if (wt === 0) yield { no, wt, v: varint() };
        else if (wt === 1) { if (i + 8 > buf.length) throw new Error('truncated fixed64'); yield { no, wt, b: buf.subarray(i, i + 8) }; i += 8; }
        else if (wt === 5) { if (i + 4 > buf.length) throw new Error('truncated fixed32'); yield { no, wt, b: buf.subarray(i, i + 4) }; i += 4; }
        else if (wt === 2) {
            const n = Number(varint());
            if (i + n > buf.length) throw new Error('truncated bytes');
            yield { no, wt, b: buf.subarray(i, i + n) };
            i += n;
        } else throw new Error(`wire type ${wt} of field ${no}`);
    }
}

const str = (f) => Buffer.from(f.b).toString('utf8');
const hex = (f) => Buffer.from(f.b).toString('hex');

function anyValue(buf) {
    for (const f of fields(buf)) {
        switch (f.no) {
        case 1: return str(f);
        case 2: return f.v !== 0n;
        case 3: return Number(BigInt.asIntN(64, f.v));
        case 4: return f.b.readDoubleLE ? Buffer.from(f.b).readDoubleLE(0) : NaN;
        case 5: return [...fields(f.b)].filter((x) => x.no === 1).map((x) => anyValue(x.b));
        case 6: return keyValues([...fields(f.b)].filter((x) => x.no === 1));
        case 7: return Buffer.from(f.b);
        default: break;
        }
    }
    return undefined;
}

function keyValues(list) {
    const out = {};
    for (const kv of list) {
        let k = '', v;
        for (const f of fields(kv.b)) {
            if (f.no === 1) k = str(f);
            else if (f.no === 2) v = anyValue(f.b);
        }
        out[k] = v;
    }
    return out;
}

function span(buf) {
    const s = { traceId: '', spanId: '', parentSpanId: '', traceState: '', name: '', kind: 0, flags: 0, attributes: {}, status: { code: 0, message: '' } };
    const attrs = [];
    for (const f of fields(buf)) {
        switch (f.no) {
        case 1: s.traceId = hex(f); break;
        case 2: s.spanId = hex(f); break;
        case 3: s.traceState = str(f); break;
        case 4: s.parentSpanId = hex(f); break;
        case 5: s.name = str(f); break;
        case 6: s.kind = Number(f.v); break;
        case 7: s.start = Buffer.from(f.b).readBigUInt64LE(0); break;
        case 8: s.end = Buffer.from(f.b).readBigUInt64LE(0); break;
        case 9: attrs.push(f); break;
        case 15:
            for (const g of fields(f.b)) {
                if (g.no === 2) s.status.message = str(g);
                if (g.no === 3) s.status.code = Number(g.v);
            }
            break;
        case 16: s.flags = Buffer.from(f.b).readUInt32LE(0); break;
        default: break;
        }
    }
    s.attributes = keyValues(attrs);
    return s;
}

/* ExportTraceServiceRequest -> { resources: [{ attributes, scopes: [{ name, version, spans }] }] } */
export function decodeTraces(buf) {
    const resources = [];
    for (const rs of fields(buf)) {
        if (rs.no !== 1 || rs.wt !== 2) throw new Error(`unexpected top-level field ${rs.no}`);
        const r = { attributes: {}, scopes: [] };
        for (const f of fields(rs.b)) {
            if (f.no === 1) r.attributes = keyValues([...fields(f.b)].filter((x) => x.no === 1));
            else if (f.no === 2) {
                const sc = { name: '', version: '', spans: [] };
                for (const g of fields(f.b)) {
                    if (g.no === 1) {
                        for (const h of fields(g.b)) {
                            if (h.no === 1) sc.name = str(h);
                            if (h.no === 2) sc.version = str(h);
                        }
                    } else if (g.no === 2) sc.spans.push(span(g.b));
                }
                r.scopes.push(sc);
            }
        }
        resources.push(r);
    }
    return { resources };
}

/* ---- the receiver ---- */

// mode: 'ok' (200 + empty ExportTraceServiceResponse), 'fail' (503),
// 'stall' (never answers), 'bad' (400).
export async function startCollector() {
    const st = { mode: 'ok', posts: [], stalled: [], delayMs: 0 };
    const server = http.createServer((req, res) => {
        const chunks = [];
        req.on('data', (d) => chunks.push(d));
        req.on('end', () => {
            const body = Buffer.concat(chunks);
            const post = { time: Date.now(), method: req.method, url: req.url, headers: req.headers, body, mode: st.mode };
            try { post.decoded = decodeTraces(body); } catch (e) { post.error = String(e); }
            st.posts.push(post);
            if (st.mode === 'stall') { st.stalled.push(res); return; }
            if (st.mode === 'fail') { res.writeHead(503, { 'content-type': 'application/json' }); res.end('{"code":14,"message":"unavailable"}'); return; }
            if (st.mode === 'bad') { res.writeHead(400); res.end(); return; }
            const ok = () => { res.writeHead(200, { 'content-type': 'application/x-protobuf' }); res.end(); };
            if (st.delayMs > 0) setTimeout(ok, st.delayMs); // a slow collector: the queue grows meanwhile
            else ok();
        });
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const port = server.address().port;
    return {
        port,
        url: `http://127.0.0.1:${port}/v1/traces`,
        st,
        set mode(m) {
            st.mode = m;
            if (m !== 'stall') for (const res of st.stalled.splice(0)) res.destroy();
        },
        get mode() { return st.mode; },
        accepted: () => st.posts.filter((p) => p.mode === 'ok' && p.decoded),
        spans: () => st.posts.filter((p) => p.mode === 'ok' && p.decoded)
            .flatMap((p) => p.decoded.resources.flatMap((r) => r.scopes.flatMap((s) => s.spans))),
        clear: () => { st.posts.length = 0; },
        stop: () => new Promise((r) => {
            for (const res of st.stalled.splice(0)) res.destroy();
            server.closeAllConnections?.();
            server.close(() => r());
        }),
    };
}
