// upstream.mjs - a tiny test upstream for the end-to-end tests.
//
// What it does depends on the path segment after "/_/" (anything else
// echoes), with parameters in the query string:
//   (default)            200 JSON echo: method, url, path, query, httpVersion,
//                        rawHeaders, headers, body (utf8), bodyLength, bodySha256
//   /_/body              echoes the request body back, streamed, as octets
//   /_/sse?n=5&interval=100
//                        text/event-stream, one "data: {...}" event every
//                        `interval` ms; each event carries its send time
//                        (ms, performance.timeOrigin + performance.now())
//   /_/chunked?n=4&size=10&interval=0
//                        Transfer-Encoding: chunked body, n chunks of `size`
//   /_/big?size=N        N bytes of a repeating pattern, Content-Length set
//   /_/stall?ms=M        answers after M ms (never without ms)
//   /_/stall-body        sends headers and half a body, then stalls forever
//   /_/reset-headers     writes half a status line/headers, then a TCP RST
//   /_/reset-body        headers (Content-Length 1000), 100 bytes, then RST
//   /_/close-after-headers
//                        headers with Content-Length 100, then closes (FIN)
//   /_/garbage           writes bytes that are not HTTP, then closes
//   /_/status?code=C     empty answer with status C
//   /_/headers           200 with X-Remove-Me, X-Keep-Me, X-Replace-Me
//
// Use it in-process (startUpstream) or standalone:
//   node tests/core/upstream.mjs [PORT]     (prints the port)

import http from 'node:http';
import crypto from 'node:crypto';
import { performance } from 'node:perf_hooks';

export function nowMs() {
    return performance.timeOrigin + performance.now();
}

function params(url) {
    const q = url.indexOf('?');
    return new URLSearchParams(q >= 0 ? url.slice(q + 1) : '');
}

function mode(url) {
    const path = url.split('?')[0];
    const i = path.indexOf('/_/');
    if (i < 0) return 'echo';
    return path.slice(i + 3).split('/')[0];
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const parts = [];
        req.on('data', (d) => parts.push(d));
        req.on('end', () => resolve(Buffer.concat(parts)));
        req.on('error', reject);
    });
}

function handle(state, req, res) {
    const url = req.url;
    const p = params(url);
    const m = mode(url);
    state.requests.push({ method: req.method, url, headers: req.headers, mode: m });
    const sock = req.socket;

    switch (m) {
    case 'body': {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        req.pipe(res);
        return;
    }
    case 'sse': {
        const n = Number(p.get('n') ?? 5);
        const interval = Number(p.get('interval') ?? 100);
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        let i = 0;
        const tick = () => {
            if (res.destroyed || sock.destroyed) return;
            res.write(`data: {"i":${i},"t":${nowMs()},"text":"chunk number ${i}"}\n\n`);
            i++;
            if (i < n) state.timers.add(setTimeout(tick, interval));
            else res.end();
        };
        readBody(req).then(() => tick());
        return;
    }
    case 'chunked': {
        const n = Number(p.get('n') ?? 4);
        const size = Number(p.get('size') ?? 10);
        const interval = Number(p.get('interval') ?? 0);
        res.writeHead(200, { 'content-type': 'text/plain' }); // no length: chunked
        let i = 0;
        const tick = () => {
            if (res.destroyed) return;
            res.write(String(i % 10).repeat(size));
            i++;
            if (i < n) {
                if (interval) state.timers.add(setTimeout(tick, interval));
                else tick();
            } else res.end();
        };
        readBody(req).then(() => tick());
        return;
    }
    case 'big': {
        const size = Number(p.get('size') ?? 1024);
        const buf = Buffer.alloc(size);
        for (let i = 0; i < size; i++) buf[i] = 97 + (i % 26);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
        res.end(buf);
        return;
    }
    case 'stall': {
        const ms = p.get('ms');
        if (ms !== null) {
            state.timers.add(setTimeout(() => {
                if (res.destroyed) return;
                res.writeHead(200, { 'content-type': 'text/plain' });
                res.end(`stalled ${ms}`);
            }, Number(ms)));
        }
        return;
    }
    case 'stall-body':
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 100 });
        res.write('x'.repeat(50));
        return;
    case 'reset-headers':
        sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/pl');
        setTimeout(() => sock.resetAndDestroy(), 20);
        return;
    case 'reset-body':
        sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n' +
                   'y'.repeat(100));
        setTimeout(() => sock.resetAndDestroy(), 50);
        return;
    case 'close-after-headers':
        sock.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n');
        setTimeout(() => sock.end(), 20);
        return;
    case 'garbage':
        sock.write('this is not HTTP at all\r\n\r\n\x00\x01\x02');
        setTimeout(() => sock.destroy(), 20);
        return;
    case 'status': {
        const code = Number(p.get('code') ?? 204);
        res.writeHead(code, code === 204 || code === 304 ? {} : { 'content-length': 0 });
        res.end();
        return;
    }
    case 'headers':
        res.writeHead(200, { 'content-type': 'text/plain', 'x-remove-me': 'bye',
                             'x-keep-me': 'kept', 'x-replace-me': 'old' });
        res.end('headers');
        return;
    default:
        break;
    }
    readBody(req).then((body) => {
        const out = {
            method: req.method,
            url,
            path: url.split('?')[0],
            query: url.includes('?') ? url.slice(url.indexOf('?') + 1) : null,
            httpVersion: req.httpVersion,
            rawHeaders: req.rawHeaders,
            headers: req.headers,
            bodyLength: body.length,
            bodySha256: crypto.createHash('sha256').update(body).digest('hex'),
            body: body.length <= 65536 ? body.toString('utf8') : null,
            remotePort: sock.remotePort,
        };
        const json = JSON.stringify(out);
        res.writeHead(200, { 'content-type': 'application/json',
                             'content-length': Buffer.byteLength(json),
                             'x-upstream': 'yes' });
        res.end(json);
    }, () => {});
}

// Start an upstream on 127.0.0.1 (port 0 = any).  Returns
// { port, requests, connections, close() }.
export function startUpstream(port = 0) {
    const state = { requests: [], connections: 0, sockets: new Set(), timers: new Set() };
    const server = http.createServer({ keepAlive: true, requestTimeout: 0, headersTimeout: 0 },
                                     (req, res) => handle(state, req, res));
    server.keepAliveTimeout = 120000;
    server.on('connection', (s) => {
        state.connections++;
        state.sockets.add(s);
        s.on('close', () => state.sockets.delete(s));
    });
    server.on('clientError', (err, s) => s.destroy());
    return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
            state.port = server.address().port;
            state.server = server;
            state.close = () => new Promise((res) => {
                for (const t of state.timers) clearTimeout(t);
                for (const s of state.sockets) s.destroy();
                server.close(() => res());
            });
            resolve(state);
        });
    });
}

if (import.meta.url === `file://${process.argv[1]}`) {
    const up = await startUpstream(Number(process.argv[2] ?? 0));
    console.log(up.port);
}
