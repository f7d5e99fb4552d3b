/* request.c - one request's life: routing, the plugin phases, gateway-made
 * responses, response framing towards the client, and the end (log phase,
 * free).  See request.h for the order of events. */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/time.h>

#include "base/chars.h"
#include "base/fmt.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "base/uri.h"
#include "http/http_server.h"
#include "http/proxy.h"
#include "http/request.h"
#include "http/server.h"

static uint64_t rng_s[2];

static uint64_t
rng_next(void)
{
    /* xorshift128+: request ids need to be unique, not secret */
    uint64_t s1 = rng_s[0];
    const uint64_t s0 = rng_s[1];
    if (s1 == 0 && s0 == 0) {
        if (getrandom(rng_s, sizeof(rng_s), 0) != sizeof(rng_s)) {
            struct timeval tv;
            gettimeofday(&tv, NULL);
            rng_s[0] = (uint64_t)tv.tv_usec * 0x9E3779B97F4A7C15ull ^ (uint64_t)getpid();
            rng_s[1] = (uint64_t)tv.tv_sec | 1;
        }
        return rng_next();
    }
    rng_s[0] = s0;
    s1 ^= s1 << 23;
    rng_s[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return rng_s[1] + s0;
}

void
sl_req_mark(sl_req_t *r, sl_time_point_t t)
{
    /* Wall clock at start plus monotonic elapsed: immune to clock steps.
     * The loop turn's reading, as nginx's cached time. */
    r->times[t] =
        r->times[SL_TIME_START] + (int64_t)((sl_turn_mono_ns() - r->start_mono_ns) / 1000);
}

sl_try_t *
sl_req_add_try(sl_req_t *r)
{
    if (r->ntries == r->tries_cap) {
        int cap = r->tries_cap ? r->tries_cap * 2 : 4;
        sl_try_t *t = sl_palloc(r->pool, (size_t)cap * sizeof(*t));
        if (r->ntries)
            memcpy(t, r->tries, (size_t)r->ntries * sizeof(*t));
        r->tries = t;
        r->tries_cap = cap;
    }
    memset(&r->tries[r->ntries], 0, sizeof(r->tries[0]));
    return &r->tries[r->ntries++];
}

int
sl_req_body_count(sl_req_t *r, size_t bytes, int force)
{
    sl_server_t *w = r->w;
    int64_t d = (int64_t)bytes - (int64_t)r->body_counted;
    int64_t *node = w->body_bytes_node ? w->body_bytes_node : &w->body_bytes_own;
    uint64_t max = w->settings->max_body_memory;

    if (d == 0)
        return 0;
    /* Own slot first, then the node's total: a worker killed between the
     * two leaves the total short of one step, never above the truth. */
    if (w->counters)
        sl_counter_add(w->counters->body_bytes, d);
    int64_t total = __atomic_add_fetch(node, d, __ATOMIC_RELAXED);
    if (d > 0 && !force && max && total > (int64_t)max) {
        __atomic_sub_fetch(node, d, __ATOMIC_RELAXED);
        if (w->counters)
            sl_counter_sub(w->counters->body_bytes, d);
        return -1;
    }
    r->body_counted = bytes;
    return 0;
}

void
sl_req_body_free(sl_req_t *r)
{
    free(r->body_buf ? r->body_buf : r->body);
    r->body = r->body_buf = NULL;
    r->body_len = r->body_cap = 0;
}

static void
body_cleanup(void *arg)
{
    sl_req_t *r = arg;
    sl_req_body_count(r, 0, 1);
    sl_req_body_free(r);
    free(r->held);
    if (r->ser)
        json_object_put(r->ser);
}

sl_req_t *
sl_req_new(sl_conn_t *c)
{
    /* 4 KiB: what a proxied request with a dozen headers uses; more takes
     * another block, so a held stream keeps only what it used */
    sl_pool_t *pool = sl_pool_create(4096);
    sl_req_t *r = sl_pcalloc(pool, sizeof(*r));
    uint64_t a = rng_next(), b = rng_next();

    r->pool = pool;
    r->conn = c;
    r->w = c->w;
    r->cur = -1;
    r->phase = SL_PHASE_MAX;
    memcpy(r->client_ip, c->client_ip, sizeof(r->client_ip));
    r->server_port = c->server_port;
    sl_fmt_hex16(r->id, a);
    sl_fmt_hex16(r->id + 16, b);
    r->id[32] = '\0';
    r->times[SL_TIME_START] = sl_turn_now_us();
    r->start_mono_ns = sl_turn_mono_ns();
    r->status = 0;
    r->retries = SL_SERVICE_DEFAULT_RETRIES;
    sl_pool_cleanup_add(pool, body_cleanup, r);
    r->w->nrequests++;
    if (r->w->counters) {
        sl_counter_add(r->w->counters->requests, 1);
        sl_counter_add(r->w->counters->inflight, 1);
        sl_counter_add(r->w->counters->reading, 1);
        r->reading_head = 1;
    }
    return r;
}

/* The head is read: the request counts as "writing" from now on. */
static void
head_read(sl_req_t *r)
{
    if (r->reading_head) {
        r->reading_head = 0;
        sl_counter_sub(r->w->counters->reading, 1);
    }
}

void
sl_req_free(sl_req_t *r)
{
    head_read(r);
    if (r->w->counters)
        sl_counter_sub(r->w->counters->inflight, 1);
    sl_pool_destroy(r->pool); /* r lives in its own pool */
}

/* ---- routing and the request-side phases ------------------------------ */

/* Refuse the request as malformed: 400 once the body is read, then close. */
static void
req_malformed(sl_req_t *r)
{
    r->status = 400;
    r->discard_body = 1;
    r->responded = SL_ANSWER_BAD_REQUEST;
}

/* RFC 9112 3.2 / RFC 3986 3.2.2: uri-host [":" port] with a port in
 * 0-65535; IP literals in brackets.  No path, userinfo or spaces. */
static int
host_valid(sl_str_t v)
{
    size_t i = 0;
    unsigned long port = 0;

    if (v.len && v.ptr[0] == '[') {
        while (i < v.len && v.ptr[i] != ']') {
            unsigned char ch = (unsigned char)v.ptr[i++];
            if (i > 1 && !isxdigit(ch) && ch != ':' && ch != '.')
                return 0;
        }
        if (i++ == v.len)
            return 0; /* no ']' */
    } else {
        for (; i < v.len && v.ptr[i] != ':'; i++) {
            if (!sl_is_host_char((unsigned char)v.ptr[i]))
                return 0;
        }
    }
    if (i == v.len)
        return 1;
    if (v.ptr[i++] != ':')
        return 0;
    if (i == v.len)
        return 1; /* "host:" : empty port, allowed by the grammar */
    for (; i < v.len; i++) {
        if (!isdigit((unsigned char)v.ptr[i]) ||
            (port = port * 10 + (unsigned)(v.ptr[i] - '0')) > 65535)
            return 0;
    }
    return 1;
}

/* No '%', no '.' and no "//" in path: normalising leaves it as it is
 * (one pass; paths are short). */
static int
path_plain(sl_str_t path)
{
    for (size_t i = 0; i < path.len; i++) {
        char ch = path.ptr[i];
        if (ch == '%' || ch == '.' || (ch == '/' && i + 1 < path.len && path.ptr[i + 1] == '/'))
            return 0;
    }
    return 1;
}

/* Kong matches and forwards the normalised path (kong/router/utils.lua
 * strip_uri_args -> normalize(uri, true)).  r->path becomes a pool copy;
 * the raw one stays for X-Forwarded-Path and the log.  SL_ERROR: bad
 * percent-encoding. */
static int
normalise_path(sl_req_t *r)
{
    char *p;
    ssize_t n;

    r->raw_path = r->path;
    if (path_plain(r->path))
        return SL_OK; /* nothing to do: the common case allocates nothing */
    p = sl_pstrndup(r->pool, r->path.ptr, r->path.len);
    if ((n = sl_uri_normalize(p, r->path.len)) < 0)
        return SL_ERROR;
    p[n] = '\0';
    r->path.ptr = p;
    r->path.len = (size_t)n;
    return SL_OK;
}

static void
set_default_upstream(sl_req_t *r)
{
    const sl_service_t *s = r->service;
    sl_str_t up[3];
    size_t el = 0, o = 0;
    char *esc;

    /* Kong forwards escape(upstream_uri): what normalisation decoded
     * beyond the unreserved characters is encoded again. */
    sl_router_upstream_parts(&r->match, r->path, up);
    for (int i = 0; i < 3; i++) {
        el += sl_uri_escaped_len(up[i].ptr, up[i].len);
        o += up[i].len;
    }
    esc = sl_palloc(r->pool, el + 1);
    if (el == o) { /* nothing to escape (the usual path): the pieces copied */
        o = 0;
        for (int i = 0; i < 3; i++) {
            if (up[i].len)
                memcpy(esc + o, up[i].ptr, up[i].len);
            o += up[i].len;
        }
    } else {
        o = 0;
        for (int i = 0; i < 3; i++)
            o += sl_uri_escape(esc + o, up[i].ptr, up[i].len);
    }
    esc[el] = '\0';
    r->up_scheme = sl_str_c(s->protocol);
    r->up_host = sl_str_c(s->host);
    r->up_port = s->port;
    r->up_path.ptr = esc;
    r->up_path.len = el;
    r->up_query = r->query;
    r->up_has_query = r->has_query;
    r->retries = s->retries;
}

static void access_done(sl_req_t *r, sl_status_t st);

/* sl_router_req_t.header: the idx-th request header called name. */
static int
route_header(void *arg, const char *name, size_t idx, sl_str_t *value)
{
    const sl_req_t *r = arg;
    sl_str_t n = sl_str_c(name);

    for (size_t i = 0; i < r->headers.n; i++) {
        if (sl_str_caseeq(r->headers.items[i].name, n) && idx-- == 0) {
            *value = r->headers.items[i].value;
            return 1;
        }
    }
    return 0;
}

void
sl_req_headers_done(sl_req_t *r)
{
    const sl_header_t *h;
    const char *q;

    head_read(r);
    /* split the request target */
    q = memchr(r->uri.ptr, '?', r->uri.len);
    r->path.ptr = r->uri.ptr;
    r->path.len = q ? (size_t)(q - r->uri.ptr) : r->uri.len;
    if (q) {
        r->has_query = 1;
        r->query.ptr = q + 1;
        r->query.len = r->uri.len - r->path.len - 1;
    }
    /* the Host field, and whether there is a second one */
    h = NULL;
    for (size_t k = 0; k < r->headers.n; k++) {
        const sl_header_t *f = &r->headers.items[k];
        if (f->name.len == 4 && sl_str_caseeq(f->name, SL_STR("host"))) {
            if (h != NULL) {
                req_malformed(r); /* RFC 9112 3.2: two Hosts */
                return;
            }
            h = f;
        }
    }
    if (h && !host_valid(h->value)) {
        req_malformed(r); /* RFC 9112 3.2: an invalid Host */
        return;
    }
    if (h) {
        sl_str_t host = h->value;
        const char *colon = NULL;
        if (host.len && host.ptr[0] == '[') { /* [v6]:port */
            const char *rb = memchr(host.ptr, ']', host.len);
            if (rb)
                host.len = (size_t)(rb - host.ptr) + 1;
        } else if ((colon = memchr(host.ptr, ':', host.len)) != NULL) {
            host.len = (size_t)(colon - host.ptr);
        }
        r->host = host;
    }
    /* Plugins may rewrite r->headers for the upstream; the log record shows
     * what the client sent.  The strings are shared (never modified in
     * place), only the array is copied. */
    r->client_headers.n = r->client_headers.cap = r->headers.n;
    r->client_headers.items = sl_palloc(r->pool, (r->headers.n + 1) * sizeof(sl_header_t));
    if (r->headers.n)
        memcpy(r->client_headers.items, r->headers.items, r->headers.n * sizeof(sl_header_t));
    if (sl_headers_has_token(&r->headers, SL_STR("expect"), SL_STR("100-continue")))
        r->expect_continue = 1;

    if (r->http_major != 1 || r->http_minor > 1) {
        req_malformed(r); /* HTTP/2.0 and others are not HTTP/1.x requests */
        return;
    }
    if (r->path.len == 0 || r->path.ptr[0] != '/') {
        /* absolute-form or asterisk-form targets are not proxied */
        req_malformed(r);
        return;
    }
    if (normalise_path(r) != SL_OK) {
        req_malformed(r); /* "%zz", "%0", "%00": nginx says 400 too */
        return;
    }
    if (h == NULL && r->http_major == 1 && r->http_minor >= 1) {
        r->status = 400; /* RFC 9112 §3.2: Host is mandatory in 1.1 */
        r->discard_body = 1;
        r->responded = SL_ANSWER_BAD_REQUEST;
        return;
    }

    if (r->conn && r->conn->is_status) {
        /* The status listener: answered by the worker, never proxied, no
         * plugin chain (its requests are not the gateway's traffic). */
        static const sl_chain_t none;
        r->chain = &none;
        r->discard_body = 1;
        r->w->status(r); /* sets the response, responded = 1 */
        return;
    }
    sl_router_req_t rq = {.method = r->method,
                          .host = r->host,
                          .path = r->path,
                          .tls = sl_conn_is_tls(r->conn),
                          .sni = sl_conn_sni(r->conn),
                          .header = route_header,
                          .arg = r};
    if (sl_router_match_req(r->w->conf, &rq, &r->match) != SL_OK) {
        r->chain = &r->w->conf->global_chain;
        r->discard_body = 1;
        r->responded = SL_ANSWER_NO_ROUTE;
    } else {
        r->route = r->match.route;
        r->service = r->route->service;
        r->chain = &r->route->chain;
        if (r->service)
            set_default_upstream(r);
        /* a route that only takes https, reached over plain HTTP, is
         * answered as Kong does: 426 or a redirect */
        if (r->route->https_only && !rq.tls) {
            r->discard_body = 1;
            r->responded = SL_ANSWER_HTTPS_REQUIRED;
        }
    }
    if (r->chain->n)
        r->plugin_ctx = sl_pcalloc(r->pool, r->chain->n * sizeof(void *));
    if (r->responded != SL_ANSWER_NONE)
        return;

    sl_status_t st = r->w->phases->run(r, SL_PHASE_ACCESS);
    if (st == SL_STATUS_PENDING) {
        r->paused = 1; /* the body is buffered meanwhile */
        r->access_paused = 1;
        return;
    }
    access_done(r, st);
}

/* The access phase ended with st (at once or after a pause). */
static void
access_done(sl_req_t *r, sl_status_t st)
{
    if (st != SL_STATUS_CONTINUE) {
        r->discard_body = 1;
        if (st == SL_STATUS_ERROR)
            r->responded = r->err == SL_REQERR_PENDING_TIMEOUT ? SL_ANSWER_PLUGIN_TIMEOUT
                                                               : SL_ANSWER_PLUGIN_ERROR;
        return;
    }
    if (r->expect_continue && r->conn) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        uv_buf_t b = uv_buf_init((char *)cont, sizeof(cont) - 1);
        sl_conn_write(r->conn, &b, 1);
    }
    /* Kong's request_buffering: false — send the body as it arrives, when
     * no plugin needs to see it whole. */
    if (r->route && !r->route->request_buffering && !r->chain->has_body && r->up_host.len &&
        !r->access_paused && (r->req_chunked || r->req_content_length > 0)) {
        r->stream_body = 1;
        r->state = SL_REQ_PROXYING;
        sl_proxy_start(r);
    }
}

/* A plain-HTTP request on a route whose protocols are [https]: Kong's
 * answer, 426 "Please use HTTPS protocol" with an Upgrade header, or the
 * route's https_redirect_status_code with a Location on https. */
static void
sl_req_https_required(sl_req_t *r)
{
    int code = r->route->https_redirect;
    char *loc;
    int n;

    if (code == 426) {
        sl_req_error_response_hdr(r, 426, "Please use HTTPS protocol", SL_STR("Upgrade"),
                                  SL_STR("TLS/1.2, HTTP/1.1"));
        return;
    }
    loc = sl_palloc(r->pool, r->host.len + r->uri.len + 16);
    n = sprintf(loc, "https://%.*s%.*s", (int)r->host.len, r->host.ptr, (int)r->uri.len,
                r->uri.ptr);
    sl_req_error_response_hdr(r, code, "Moved", SL_STR("Location"), (sl_str_t){loc, (size_t)n});
}

static void body_phase_done(sl_req_t *r, sl_status_t st);

/* The whole body is here and the access phase is over. */
static void
body_continue(sl_req_t *r)
{
    switch (r->responded) {
    case SL_ANSWER_PLUGIN:
        sl_req_send_gateway(r);
        return;
    case SL_ANSWER_BAD_REQUEST:
        r->close_after = 1;
        if (r->conn)
            r->conn->want_close = 1;
        sl_req_error_response(r, 400, "Bad request");
        return;
    case SL_ANSWER_NO_ROUTE:
        sl_req_error_response(r, 404, "no Route matched with those values");
        return;
    case SL_ANSWER_PLUGIN_ERROR:
        sl_req_error_response(r, 500, "An unexpected error occurred");
        return;
    case SL_ANSWER_PLUGIN_TIMEOUT:
        sl_req_error_response(r, 504, "A plugin did not finish in time");
        return;
    case SL_ANSWER_HTTPS_REQUIRED:
        sl_req_https_required(r);
        return;
    case SL_ANSWER_NONE:
        break;
    }
    if (r->chain->has_body) {
        sl_status_t st = r->w->phases->run(r, SL_PHASE_BODY);
        if (st == SL_STATUS_PENDING) {
            r->paused = 1;
            return;
        }
        body_phase_done(r, st);
        return;
    }
    body_phase_done(r, SL_STATUS_CONTINUE);
}

void
sl_req_body_done(sl_req_t *r)
{
    sl_req_mark(r, SL_TIME_REQUEST_END);
    r->body_complete = 1;
    if (r->stream_body) {
        if (r->proxy)
            sl_proxy_body_end(r->proxy);
        return;
    }
    if (r->paused)
        return; /* the access phase waits: it goes on from sl_req_phase_done */
    body_continue(r);
}

void
sl_req_phase_done(sl_req_t *r, sl_phase_t phase, sl_status_t st)
{
    if (r->w->phase_done) {
        r->w->phase_done(r, phase, st);
        return;
    }
    r->paused = 0;
    if (phase == SL_PHASE_ACCESS) {
        access_done(r, st);
        if (r->body_complete && !r->stream_body)
            body_continue(r);
        return;
    }
    body_phase_done(r, st);
}

/* The body phase ended with st: answer, or go upstream. */
static void
body_phase_done(sl_req_t *r, sl_status_t st)
{
    if (st == SL_STATUS_RESPOND) {
        sl_req_send_gateway(r);
        return;
    }
    if (st == SL_STATUS_ERROR) {
        if (r->err == SL_REQERR_PENDING_TIMEOUT)
            sl_req_error_response(r, 504, "A plugin did not finish in time");
        else
            sl_req_error_response(r, 500, "An unexpected error occurred");
        return;
    }
    if (r->up_host.len == 0) {
        sl_req_error_response(r, 503, "no Service found with those values");
        return;
    }
    r->state = SL_REQ_PROXYING;
    sl_proxy_start(r);
}

/* ---- the response towards the client ---------------------------------- */

static const char *
status_text(int s)
{
    switch (s) {
    case 100:
        return "Continue";
    case 102:
        return "Processing";
    case 103:
        return "Early Hints";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 206:
        return "Partial Content";
    case 301:
        return "Moved Permanently";
    case 302:
        return "Found";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 411:
        return "Length Required";
    case 413:
        return "Payload Too Large";
    case 414:
        return "URI Too Long";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Entity";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 529:
        return "Site Overloaded";
    default:
        return "Unknown";
    }
}

/* "HTTP/1.1 <status> <text>\r\n" at out (SL_STATUS_LINE_MAX bytes at
 * most); returns its length. */
#define SL_STATUS_LINE_MAX 96
static size_t
status_line(char *out, int status)
{
    const char *text = status_text(status);
    size_t n = sizeof("HTTP/1.1 ") - 1, tl = strlen(text);

    memcpy(out, "HTTP/1.1 ", n);
    n += sl_fmt_i64(out + n, status);
    out[n++] = ' ';
    memcpy(out + n, text, tl);
    n += tl;
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

/* Decide framing, add the gateway's own headers, run header_filter. */
static void
prepare_head(sl_req_t *r)
{
    char buf[SL_FMT_DEC_MAX + 1];
    size_t n;

    /* the names are literals and the values live in the pool (r->id is in
     * r): stored without copies */
    sl_headers_set_ref(&r->resp_headers, r->pool, SL_STR("X-Kong-Request-Id"),
                       (sl_str_t){r->id, 32});
    if (r->source == SL_SOURCE_UPSTREAM) {
        sl_headers_t *h = &r->resp_headers;
        char *lat = sl_palloc(r->pool, 2 * (SL_FMT_DEC_MAX + 1));
        int64_t up = r->times[SL_TIME_UPSTREAM_FIRST_BYTE] - r->times[SL_TIME_UPSTREAM_SENT];
        int64_t px = r->times[SL_TIME_UPSTREAM_START] - r->times[SL_TIME_START];

        sl_headers_add_ref(h, r->pool, SL_STR("Via"), SL_STR("1.1 sluice/" SL_VERSION));
        n = sl_fmt_i64(lat, up > 0 ? up / 1000 : 0);
        lat[n] = '\0'; /* as a copied value would be */
        sl_headers_set_ref(h, r->pool, SL_STR("X-Kong-Upstream-Latency"), (sl_str_t){lat, n});
        lat += SL_FMT_DEC_MAX + 1;
        n = sl_fmt_i64(lat, px > 0 ? px / 1000 : 0);
        lat[n] = '\0';
        sl_headers_set_ref(h, r->pool, SL_STR("X-Kong-Proxy-Latency"), (sl_str_t){lat, n});
    } else {
        if (!sl_headers_get(&r->resp_headers, SL_STR("server")))
            sl_headers_add(&r->resp_headers, r->pool, SL_STR("Server"),
                           SL_STR("sluice/" SL_VERSION));
        int64_t lat = (int64_t)((sl_turn_mono_ns() - r->start_mono_ns) / 1000000);
        n = sl_fmt_i64(buf, lat);
        sl_headers_set(&r->resp_headers, r->pool, SL_STR("X-Kong-Response-Latency"),
                       (sl_str_t){buf, n});
    }
    if (r->chain && r->chain->has_header_filter) {
        if (r->w->phases->run(r, SL_PHASE_HEADER_FILTER) == SL_STATUS_ERROR && !r->err)
            r->err = SL_REQERR_PLUGIN;
    }
}

static void
write_head(sl_req_t *r)
{
    sl_conn_t *c = r->conn;
    size_t cap = 256, len = 0;
    char local[2048], *buf = local; /* the client queue copies it */

    if (r->status == 204 || r->status == 304 || r->status < 200 || SL_STR_EQ(r->method, "HEAD"))
        r->no_body = 1;
    /* one pass: the framing headers the gateway writes itself go, a
     * Content-Length is noticed, the head's size is counted */
    sl_headers_t *hs = &r->resp_headers;
    int has_length = 0;
    size_t j = 0;
    for (size_t i = 0; i < hs->n; i++) {
        sl_str_t name = hs->items[i].name;
        if ((name.len == 10 && sl_str_caseeq(name, SL_STR("connection"))) ||
            (name.len == 17 && sl_str_caseeq(name, SL_STR("transfer-encoding"))))
            continue;
        if (name.len == 14 && sl_str_caseeq(name, SL_STR("content-length")))
            has_length = 1;
        cap += name.len + hs->items[i].value.len + 4;
        hs->items[j++] = hs->items[i];
    }
    hs->n = j;
    r->chunked = 0;
    if (!r->no_body && !has_length) {
        if (r->http_major == 1 && r->http_minor >= 1)
            r->chunked = 1;
        else
            r->close_after = 1; /* HTTP/1.0: body ends with the connection */
    }
    if (!r->keepalive || (c && (c->want_close || c->w->draining)))
        r->close_after = 1;
    if (c && r->close_after)
        c->want_close = 1;

    if (cap > sizeof(local))
        buf = sl_xmalloc(cap);
    len = status_line(buf, r->status);
    for (size_t i = 0; i < r->resp_headers.n; i++) {
        const sl_header_t *h = &r->resp_headers.items[i];
        memcpy(buf + len, h->name.ptr, h->name.len);
        len += h->name.len;
        buf[len++] = ':';
        buf[len++] = ' ';
        memcpy(buf + len, h->value.ptr, h->value.len);
        len += h->value.len;
        buf[len++] = '\r';
        buf[len++] = '\n';
    }
    r->head_sent = 1;
    r->state = SL_REQ_RESPONDING;
    if (c == NULL) {
        if (buf != local)
            free(buf);
        return;
    }
    static const char te[] = "Transfer-Encoding: chunked\r\n";
    static const char cl[] = "Connection: close\r\n";
    static const char ka[] = "Connection: keep-alive\r\n";
    uv_buf_t b[4];
    unsigned nb = 0;
    b[nb++] = uv_buf_init(buf, (unsigned)len);
    if (r->chunked)
        b[nb++] = uv_buf_init((char *)te, sizeof(te) - 1);
    if (r->close_after)
        b[nb++] = uv_buf_init((char *)cl, sizeof(cl) - 1);
    else if (r->http_minor == 0)
        b[nb++] = uv_buf_init((char *)ka, sizeof(ka) - 1);
    b[nb++] = uv_buf_init("\r\n", 2);
    for (unsigned i = 0; i < nb; i++)
        r->resp_bytes += b[i].len;
    sl_conn_write(c, b, nb);
    if (buf != local)
        free(buf);
}

void
sl_req_write_body(sl_req_t *r, const char *data, size_t len)
{
    sl_conn_t *c = r->conn;

    if (len == 0 || r->no_body || c == NULL)
        return;
    if (r->chunked) {
        char hdr[SL_FMT_HEX_MAX + 2];
        size_t n = sl_fmt_hex(hdr, len);
        hdr[n++] = '\r';
        hdr[n++] = '\n';
        uv_buf_t b[3] = {uv_buf_init(hdr, (unsigned)n), uv_buf_init((char *)data, (unsigned)len),
                         uv_buf_init("\r\n", 2)};
        sl_conn_write(c, b, 3);
        r->resp_bytes += n + len + 2;
    } else {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        sl_conn_write(c, &b, 1);
        r->resp_bytes += len;
    }
    if (c->write_bytes > SL_CONN_HIGH_WATER && r->proxy)
        sl_proxy_pause(r->proxy);
}

void
sl_req_on_drain(sl_req_t *r)
{
    if (r->proxy)
        sl_proxy_resume(r->proxy);
}

/* The body of a held response is complete: send head and body at once. */
static void
release_held(sl_req_t *r)
{
    char buf[24];
    int n;

    if (r->err >= SL_REQERR_UPSTREAM_CONNECT && r->err <= SL_REQERR_UPSTREAM_PROTOCOL &&
        r->status < 400) {
        /* truncated upstream body that no plugin turned into an error */
        r->status = 502;
        r->resp_headers.n = 0;
        sl_headers_set(&r->resp_headers, r->pool, SL_STR("Content-Type"),
                       SL_STR("application/json; charset=utf-8"));
        r->held_len = (size_t)snprintf(
            r->held, r->held_cap, "{\n  \"message\":\"%s\",\n  \"request_id\":\"%s\"\n}",
            "An invalid response was received from the upstream server", r->id);
        if (r->held_len >= r->held_cap)
            r->held_len = 0;
    }
    sl_headers_remove(&r->resp_headers, SL_STR("transfer-encoding"));
    n = snprintf(buf, sizeof(buf), "%zu", r->held_len);
    sl_headers_set(&r->resp_headers, r->pool, SL_STR("Content-Length"), (sl_str_t){buf, (size_t)n});
    r->hold_head = 0;
    write_head(r);
    sl_req_write_body(r, r->held, r->held_len);
}

static void
filter_and_write(sl_req_t *r, const char *data, size_t len, int eof)
{
    sl_str_t out = {data, len};

    if (r->chain && r->chain->has_body_filter) {
        if (r->w->phases->body_filter(r, out, eof, &out) == SL_STATUS_ERROR) {
            r->err = SL_REQERR_PLUGIN;
            if (r->conn)
                r->conn->want_close = 1;
            out.len = 0;
        }
    }
    if (r->hold_head && !r->head_sent) {
        /* room for the 502 body release_held may write instead */
        size_t need = r->held_len + out.len + 256;
        if (need > r->held_cap) {
            r->held_cap = need * 2;
            r->held = sl_xrealloc(r->held, r->held_cap);
        }
        if (out.len)
            memcpy(r->held + r->held_len, out.ptr, out.len);
        r->held_len += out.len;
        if (eof)
            release_held(r);
        return;
    }
    sl_req_write_body(r, out.ptr, out.len);
}

static void
finish(sl_req_t *r)
{
    sl_conn_t *c = r->conn;

    if (c && r->stream_body && !r->body_complete)
        c->want_close = 1; /* answered before the body ended: close */

    r->state = SL_REQ_DONE;
    sl_req_mark(r, SL_TIME_RESPONSE_END);
    r->w->phases->log(r);
    if (c) {
        c->req = NULL;
        r->conn = NULL;
    }
    sl_req_free(r);
    if (c)
        sl_conn_request_done(c);
}

void
sl_req_send_gateway(sl_req_t *r)
{
    char buf[24];
    int n;

    sl_conn_t *c = r->conn;

    if (c)
        sl_conn_cork(c); /* head and body in one write */
    r->source = SL_SOURCE_GATEWAY;
    if (r->status == 0)
        r->status = 200;
    n = snprintf(buf, sizeof(buf), "%zu", r->gw_body.len);
    sl_headers_set(&r->resp_headers, r->pool, SL_STR("Content-Length"), (sl_str_t){buf, (size_t)n});
    prepare_head(r);
    if (!r->hold_head)
        write_head(r);
    filter_and_write(r, r->gw_body.ptr, r->gw_body.len, 1);
    if (r->chunked && r->conn) {
        uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
        sl_conn_write(r->conn, &b, 1);
        r->resp_bytes += 5;
    }
    finish(r);
    if (c)
        sl_conn_uncork(c);
}

void
sl_req_error_response(sl_req_t *r, int status, const char *msg)
{
    sl_req_error_response_hdr(r, status, msg, (sl_str_t){NULL, 0}, (sl_str_t){NULL, 0});
}

void
sl_req_error_response_hdr(sl_req_t *r, int status, const char *msg, sl_str_t hname, sl_str_t hvalue)
{
    char *body;
    int n;

    if (r->head_sent) {
        /* Too late for a status: end the stream as broken. */
        if (r->conn)
            r->conn->want_close = 1;
        sl_req_resp_end(r, r->err ? r->err : SL_REQERR_PLUGIN);
        return;
    }
    r->hold_head = 0; /* a new response: nothing held any more */
    r->held_len = 0;
    body = sl_palloc(r->pool, strlen(msg) + 128);
    n = sprintf(body, "{\n  \"message\":\"%s\",\n  \"request_id\":\"%s\"\n}", msg, r->id);
    r->status = status;
    r->resp_headers.n = 0;
    sl_headers_set(&r->resp_headers, r->pool, SL_STR("Content-Type"),
                   SL_STR("application/json; charset=utf-8"));
    if (status == 503 || status == 429)
        sl_headers_set(&r->resp_headers, r->pool, SL_STR("Retry-After"), SL_STR("1"));
    if (hname.len)
        sl_headers_set(&r->resp_headers, r->pool, hname, hvalue);
    r->gw_body.ptr = body;
    r->gw_body.len = (size_t)n;
    sl_req_send_gateway(r);
}

int
sl_req_resp_headers(sl_req_t *r)
{
    r->source = SL_SOURCE_UPSTREAM;
    prepare_head(r);
    if (r->retry_asked)
        return SL_AGAIN; /* rejected: nothing sent, the proxy tries again */
    if (!r->hold_head)
        write_head(r);
    return SL_OK;
}

void
sl_req_resp_interim(sl_req_t *r, int status)
{
    sl_strbuf_t b = {0};
    char line[SL_STATUS_LINE_MAX];
    size_t n;

    if (status == 100 || r->conn == NULL || r->http_minor == 0 || r->hold_head || r->head_sent)
        return;
    n = status_line(line, status);
    sl_strbuf_add(&b, line, n);
    for (size_t i = 0; i < r->resp_headers.n; i++) {
        SL_STRBUF_STR(&b, r->resp_headers.items[i].name);
        SL_STRBUF_LIT(&b, ": ");
        SL_STRBUF_STR(&b, r->resp_headers.items[i].value);
        SL_STRBUF_LIT(&b, "\r\n");
    }
    SL_STRBUF_LIT(&b, "\r\n");
    uv_buf_t ub = uv_buf_init(b.p, (unsigned)b.len);
    sl_conn_write(r->conn, &ub, 1);
    r->resp_bytes += b.len;
    free(b.p);
}

void
sl_req_resp_body(sl_req_t *r, const char *data, size_t len)
{
    filter_and_write(r, data, len, 0);
}

void
sl_req_resp_end(sl_req_t *r, sl_req_error_t err)
{
    if (err != SL_REQERR_NONE && r->err == SL_REQERR_NONE)
        r->err = err;
    r->proxy = NULL;
    filter_and_write(r, NULL, 0, 1);
    if (r->conn) {
        if (r->err != SL_REQERR_NONE && !(r->chain && r->chain->has_body_filter)) {
            /* Upstream broke mid-body and no plugin turned that into a clean
             * ending: close without the terminating chunk so the client
             * can tell the body is incomplete. */
            r->conn->want_close = 1;
        } else if (r->chunked) {
            uv_buf_t b = uv_buf_init("0\r\n\r\n", 5);
            sl_conn_write(r->conn, &b, 1);
            r->resp_bytes += 5;
        }
        if (r->err != SL_REQERR_NONE)
            r->conn->want_close = 1;
    }
    finish(r);
}

void
sl_req_abort(sl_req_t *r)
{
    sl_conn_t *c = r->conn;

    if (r->state == SL_REQ_DONE)
        return;
    if (c) {
        c->req = NULL;
        r->conn = NULL;
    }
    if (r->err == SL_REQERR_NONE)
        r->err = SL_REQERR_CLIENT_ABORT;
    if (r->proxy) {
        sl_proxy_cancel(r->proxy);
        r->proxy = NULL;
    }
    if (r->status == 0)
        r->status = 499; /* nginx's "client closed request" */
    if (r->head_sent && r->chain && r->chain->has_body_filter) {
        sl_str_t out; /* let filters see the end (stats); output dropped */
        r->w->phases->body_filter(r, (sl_str_t){NULL, 0}, 1, &out);
    }
    r->state = SL_REQ_DONE;
    sl_req_mark(r, SL_TIME_RESPONSE_END);
    r->w->phases->log(r);
    sl_req_free(r);
}
