/* callout.c - HTTP requests sent by the host for plugins (api->callout):
 * HTTP/1.1 over core/upstream's connections (keep-alive pool, DNS cache,
 * TLS), the answer parsed with llhttp and handed to the plugin in one
 * callback.  A callout is bound to a request (cancelled when it ends) or
 * to the worker (cancelled at exit).  Every completion, success or error,
 * goes through finish(), which unlinks the callout first, so a callback
 * never runs twice or after a cancel.  Errors found before the exchange
 * is under way are delivered from a zero timer: fn never runs inside
 * api->callout(). */

#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

#include "base/chars.h"
#include "base/log.h"
#include "base/pool.h"
#include "base/strbuf.h"
#include "http/hdr_accum.h"
#include "http/headers.h"
#include "http/server.h"
#include "plugin/host.h"
#include "plugin/platform.h"
#include "upstream/upstream.h"

#define CALLOUT_TIMEOUT_MS 10000
#define CALLOUT_MAX_BODY (1024 * 1024)

struct sl_callout {
    struct sl_callout *prev, *next; /* in r->callouts or the worker's list */
    sl_req_t *r;
    int plugin; /* chain index of the caller (r != NULL) */
    const char *plugin_name;
    sl_callout_fn fn;
    void *arg;
    uv_timer_t timer; /* the deadline; 0 ms to deliver an early error */
    int err;          /* early error to deliver */
    sl_upconnect_t *pending;
    sl_upconn_t *conn;
    char *host; /* NUL-terminated */
    int port, tls, tls_verify, head_req;
    char *out; /* request head + body */
    size_t out_len, max_body;
    llhttp_t parser;
    sl_pool_t *pool;
    sl_headers_t headers;
    sl_hdr_accum_t hdr;
    char *body;
    size_t body_len, body_cap;
    int complete, too_big, got_bytes;
    int ended; /* co_end ran: the timer is closing */
};

static sl_callout_t *worker_callouts;

static const char *const callout_errs[] = {
    "ok",          "invalid request", "out of memory", "name did not resolve",    "connect failed",
    "TLS failure", "timed out",       "invalid HTTP",  "response body too large",
};

const char *
sl_api_callout_strerror(int err)
{
    if (err > 0 || -err >= (int)sl_nelems(callout_errs))
        return "unknown error";
    return callout_errs[-err];
}

/* ---- lifetime --------------------------------------------------------- */

static sl_callout_t **
list_of(sl_callout_t *co)
{
    return co->r ? &co->r->callouts : &worker_callouts;
}

static void
co_closed(uv_handle_t *h)
{
    sl_callout_t *co = h->data;

    sl_hdr_accum_free(&co->hdr);
    if (co->pool)
        sl_pool_destroy(co->pool);
    free(co->body);
    free(co->out);
    free(co->host);
    free(co);
}

/* Unlink, drop the connection (back to the pool if reuse), free later. */
static void
co_end(sl_callout_t *co, int reuse)
{
    sl_callout_t **head = list_of(co);

    if (co->ended)
        return;
    co->ended = 1;
    if (co->prev)
        co->prev->next = co->next;
    else if (*head == co)
        *head = co->next;
    if (co->next)
        co->next->prev = co->prev;
    co->prev = co->next = NULL;
    co->fn = NULL;
    if (co->pending) {
        sl_upconnect_cancel(co->pending);
        co->pending = NULL;
    }
    if (co->conn) {
        sl_upconn_release(co->conn, reuse);
        co->conn = NULL;
    }
    uv_timer_stop(&co->timer);
    uv_close((uv_handle_t *)&co->timer, co_closed);
}

static void
finish(sl_callout_t *co, int err, int reuse)
{
    sl_callout_fn fn = co->fn;
    sl_req_t *r = co->r;
    sl_callout_resp_t resp;
    sl_str_t *hv = NULL;
    int saved_cur = r ? r->cur : -1;
    const char *saved_name = sl_api_plugin_name;

    if (fn == NULL)
        return;
    co->fn = NULL; /* no second completion, whatever fn does */
    if (err == SL_CALLOUT_OK) {
        hv = sl_palloc(co->pool, (co->headers.n * 2 + 1) * sizeof(sl_str_t));
        for (size_t i = 0; i < co->headers.n; i++) {
            hv[2 * i] = co->headers.items[i].name;
            hv[2 * i + 1] = co->headers.items[i].value;
        }
        resp.status = (int)llhttp_get_status_code(&co->parser);
        resp.headers = hv;
        resp.nheaders = co->headers.n;
        resp.body = (sl_str_t){co->body ? co->body : "", co->body_len};
    }
    /* The connection goes back before fn runs (fn may start another
     * callout to the same host); the answer's bytes live until co_closed. */
    if (co->conn) {
        sl_upconn_release(co->conn, reuse);
        co->conn = NULL;
    }
    if (r)
        r->cur = co->plugin;
    sl_api_plugin_name = co->plugin_name;
    fn(&sl_api, r, err, err == SL_CALLOUT_OK ? &resp : NULL, co->arg);
    sl_api_plugin_name = saved_name;
    /* fn may have ended the request (resume is deferred, so r is alive;
     * but it may have cancelled other callouts): co is still ours. */
    if (r)
        r->cur = saved_cur;
    co_end(co, 0);
}

static void
on_timer(uv_timer_t *h)
{
    sl_callout_t *co = h->data;
    finish(co, co->err ? co->err : SL_CALLOUT_ETIMEOUT, 0);
}

static void
fail_later(sl_callout_t *co, int err)
{
    co->err = err;
    if (co->pending) {
        sl_upconnect_cancel(co->pending);
        co->pending = NULL;
    }
    uv_timer_start(&co->timer, on_timer, 0, 0);
}

/* ---- the response ----------------------------------------------------- */

static int
on_h_field(llhttp_t *p, const char *at, size_t len)
{
    sl_callout_t *co = p->data;
    sl_str_t n, v;

    if (co->hdr.in_value && sl_hdr_accum_take(&co->hdr, &n, &v))
        sl_headers_add(&co->headers, co->pool, n, v);
    sl_hdr_accum_field(&co->hdr, at, len);
    return 0;
}

static int
on_h_value(llhttp_t *p, const char *at, size_t len)
{
    sl_hdr_accum_value(&((sl_callout_t *)p->data)->hdr, at, len);
    return 0;
}

static int
on_h_complete(llhttp_t *p)
{
    sl_callout_t *co = p->data;
    sl_str_t n, v;

    if (sl_hdr_accum_take(&co->hdr, &n, &v))
        sl_headers_add(&co->headers, co->pool, n, v);
    return co->head_req ? 1 : 0; /* 1: no body follows */
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
    sl_callout_t *co = p->data;

    if (co->body_len + len > co->max_body) {
        co->too_big = 1;
        return HPE_USER;
    }
    if (co->body_len + len > co->body_cap) {
        size_t cap = co->body_cap ? co->body_cap * 2 : 4096;
        while (cap < co->body_len + len)
            cap *= 2;
        char *nb = realloc(co->body, cap);
        if (nb == NULL)
            return HPE_USER;
        co->body = nb;
        co->body_cap = cap;
    }
    memcpy(co->body + co->body_len, at, len);
    co->body_len += len;
    return 0;
}

static int
on_complete(llhttp_t *p)
{
    ((sl_callout_t *)p->data)->complete = 1;
    return HPE_PAUSED;
}

/* llhttp's callbacks for a callout's response. */
static const llhttp_settings_t resp_settings = {
    .on_header_field = on_h_field,
    .on_header_value = on_h_value,
    .on_headers_complete = on_h_complete,
    .on_body = on_body,
    .on_message_complete = on_complete,
};

static void
on_read(void *arg, const char *data, ssize_t n)
{
    sl_callout_t *co = arg;

    if (n < 0) {
        /* a close also ends a body framed by the connection */
        if (n == UV_EOF && co->got_bytes && llhttp_finish(&co->parser) == HPE_OK && co->complete)
            finish(co, SL_CALLOUT_OK, 0);
        else
            finish(co,
                   n == SL_UPERR_TLS ? SL_CALLOUT_ETLS
                   : co->got_bytes   ? SL_CALLOUT_EPROTOCOL
                                     : SL_CALLOUT_ECONNECT,
                   0);
        return;
    }
    co->got_bytes = 1;
    llhttp_errno_t e = llhttp_execute(&co->parser, data, (size_t)n);
    sl_hdr_accum_settle(&co->hdr); /* data is the read buffer */
    if (e == HPE_PAUSED && co->complete) {
        int reuse =
            llhttp_should_keep_alive(&co->parser) && llhttp_get_error_pos(&co->parser) == data + n;
        finish(co, SL_CALLOUT_OK, reuse);
        return;
    }
    if (e != HPE_OK)
        finish(co, co->too_big ? SL_CALLOUT_ETOOBIG : SL_CALLOUT_EPROTOCOL, 0);
}

static void
on_written(void *arg, int status)
{
    sl_callout_t *co = arg;

    if (status < 0 && co->fn)
        finish(co, SL_CALLOUT_ECONNECT, 0);
}

static void
on_connected(void *arg, sl_upconn_t *c, int status, const char *errmsg)
{
    sl_callout_t *co = arg;
    uv_buf_t b;

    co->pending = NULL;
    if (status < 0) {
        int err = SL_CALLOUT_ECONNECT;
        if (status == SL_UPERR_TLS)
            err = SL_CALLOUT_ETLS;
        else if (status == UV_ETIMEDOUT)
            err = SL_CALLOUT_ETIMEOUT;
        else if (status == UV_EAI_NONAME || status == UV_EAI_AGAIN || status == UV_EAI_FAIL ||
                 status == UV_EAI_NODATA)
            err = SL_CALLOUT_EDNS;
        sl_log_debug("callout to %s:%d: %s", co->host, co->port, errmsg ? errmsg : "failed");
        fail_later(co, err); /* may run inside sl_upconnect_start */
        return;
    }
    co->conn = c;
    llhttp_init(&co->parser, HTTP_RESPONSE, &resp_settings);
    co->parser.data = co;
    b = uv_buf_init(co->out, (unsigned)co->out_len);
    if (sl_upconn_read_start(c, on_read, co) < 0 || sl_upconn_write(c, &b, 1, on_written, co) < 0)
        fail_later(co, SL_CALLOUT_ECONNECT);
}

/* ---- the request ------------------------------------------------------ */

static int
token(sl_str_t s)
{
    if (s.len == 0 || s.ptr == NULL)
        return 0;
    for (size_t i = 0; i < s.len; i++)
        if (!sl_is_tchar((unsigned char)s.ptr[i]))
            return 0;
    return 1;
}

static int
clean(sl_str_t s, int no_space)
{
    if (s.len && s.ptr == NULL)
        return 0;
    for (size_t i = 0; i < s.len; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch == '\r' || ch == '\n' || ch == '\0' || (no_space && (ch <= ' ' || ch == 0x7f)))
            return 0;
    }
    return 1;
}

/* The host's own headers: a plugin does not set them. */
static int
reserved_header(sl_str_t n)
{
    static const char *const names[] = {"host", "content-length", "connection",
                                        "transfer-encoding"};
    for (size_t i = 0; i < sl_nelems(names); i++)
        if (n.len == strlen(names[i]) && strncasecmp(n.ptr, names[i], n.len) == 0)
            return 1;
    return 0;
}

/* "http[s]://host[:port][/path][?query]" -> parts.  0 or -1. */
static int
parse_url(sl_callout_t *co, sl_str_t url, sl_str_t *target, sl_str_t *hostport)
{
    const char *p = url.ptr, *end = url.ptr + url.len, *h, *he, *slash;
    int port = 0;

    if (!clean(url, 1))
        return -1;
    if (url.len > 7 && strncasecmp(p, "http://", 7) == 0) {
        co->tls = 0;
        p += 7;
    } else if (url.len > 8 && strncasecmp(p, "https://", 8) == 0) {
        co->tls = 1;
        p += 8;
    } else {
        return -1;
    }
    slash = p;
    while (slash < end && *slash != '/' && *slash != '?')
        slash++;
    *hostport = (sl_str_t){p, (size_t)(slash - p)};
    if (*p == '[') { /* [v6]:port */
        h = p + 1;
        he = memchr(h, ']', (size_t)(slash - h));
        if (he == NULL)
            return -1;
        p = he + 1;
    } else {
        h = p;
        he = memchr(h, ':', (size_t)(slash - h));
        if (he == NULL)
            he = slash;
        p = he;
    }
    if (he == h || memchr(h, '@', (size_t)(he - h)))
        return -1;
    if (p < slash) {
        if (*p != ':' || p + 1 == slash)
            return -1;
        for (p++; p < slash; p++) {
            if (*p < '0' || *p > '9' || (port = port * 10 + (*p - '0')) > 65535)
                return -1;
        }
        if (port == 0)
            return -1;
    }
    co->port = port ? port : (co->tls ? 443 : 80);
    co->host = strndup(h, (size_t)(he - h));
    if (co->host == NULL)
        return -1;
    *target = slash < end ? (sl_str_t){slash, (size_t)(end - slash)} : SL_STR("/");
    return 0;
}

static int
build(sl_callout_t *co, const sl_callout_req_t *q, sl_str_t method)
{
    sl_str_t target, hostport;
    sl_strbuf_t b = {0};
    char num[32];

    if (parse_url(co, q->url, &target, &hostport) != 0)
        return SL_CALLOUT_EINVAL;
    if (q->nheaders && q->headers == NULL)
        return SL_CALLOUT_EINVAL;
    for (size_t i = 0; i < q->nheaders; i++)
        if (!token(q->headers[2 * i]) || !clean(q->headers[2 * i + 1], 0) ||
            reserved_header(q->headers[2 * i]))
            return SL_CALLOUT_EINVAL;
    if (q->body.len && q->body.ptr == NULL)
        return SL_CALLOUT_EINVAL;
    sl_strbuf_add(&b, method.ptr, method.len);
    sl_strbuf_add(&b, " ", 1);
    if (target.ptr[0] == '?')
        sl_strbuf_add(&b, "/", 1);
    sl_strbuf_add(&b, target.ptr, target.len);
    SL_STRBUF_LIT(&b, " HTTP/1.1\r\nHost: ");
    sl_strbuf_add(&b, hostport.ptr, hostport.len);
    SL_STRBUF_LIT(&b, "\r\n");
    for (size_t i = 0; i < q->nheaders; i++) {
        sl_strbuf_add(&b, q->headers[2 * i].ptr, q->headers[2 * i].len);
        sl_strbuf_add(&b, ": ", 2);
        sl_strbuf_add(&b, q->headers[2 * i + 1].ptr, q->headers[2 * i + 1].len);
        sl_strbuf_add(&b, "\r\n", 2);
    }
    if (q->body.len || !(SL_STR_EQ(method, "GET") || SL_STR_EQ(method, "HEAD"))) {
        int n = snprintf(num, sizeof(num), "Content-Length: %zu\r\n", q->body.len);
        sl_strbuf_add(&b, num, (size_t)n);
    }
    SL_STRBUF_LIT(&b, "\r\n");
    sl_strbuf_add(&b, q->body.ptr, q->body.len);
    co->out = b.p;
    co->out_len = b.len;
    return SL_CALLOUT_OK;
}

sl_callout_t *
sl_api_callout(sl_req_t *r, const sl_callout_req_t *q, sl_callout_fn fn, void *arg)
{
    uv_loop_t *loop = sl_host_loop();
    sl_uppool_t *pool = sl_host_uppool();
    sl_str_t method;
    sl_callout_t *co, **head;

    if (q == NULL || fn == NULL || loop == NULL || pool == NULL)
        return NULL;
    if (r != NULL && r->state == SL_REQ_DONE)
        return NULL;
    method = q->method.len ? q->method : SL_STR("GET");
    if (!token(method))
        return NULL;
    co = calloc(1, sizeof(*co));
    if (co == NULL)
        return NULL;
    if (build(co, q, method) != SL_CALLOUT_OK || uv_timer_init(loop, &co->timer) != 0) {
        free(co->out);
        free(co->host);
        free(co);
        return NULL;
    }
    co->timer.data = co;
    co->pool = sl_pool_create(2048);
    co->r = r;
    co->plugin = r ? r->cur : -1;
    co->plugin_name = sl_api_plugin_name;
    co->fn = fn;
    co->arg = arg;
    co->head_req = SL_STR_EQ(method, "HEAD");
    co->max_body = q->max_body ? q->max_body : CALLOUT_MAX_BODY;
    co->tls_verify = q->tls_verify != -1;
    head = list_of(co);
    co->next = *head;
    if (*head)
        (*head)->prev = co;
    *head = co;

    uint64_t timeout = q->timeout_ms ? q->timeout_ms : CALLOUT_TIMEOUT_MS;
    uv_timer_start(&co->timer, on_timer, timeout, 0);
    sl_upstream_target_t t = {
        .tls = co->tls,
        .host = co->host,
        .port = co->port,
        .tls_verify = co->tls_verify,
        .connect_timeout_ms = (int)(timeout > 600000 ? 600000 : timeout),
    };
    if (sl_upconnect_start(pool, &t, on_connected, co, &co->pending) < 0) {
        co->pending = NULL;
        co_end(co, 0);
        return NULL;
    }
    return co;
}

void
sl_api_callout_cancel(sl_callout_t *co)
{
    if (co == NULL || co->fn == NULL)
        return;
    co_end(co, 0);
}

void
sl_callouts_cancel_all(sl_req_t *r)
{
    sl_callout_t **head = r ? &r->callouts : &worker_callouts;

    while (*head)
        co_end(*head, 0);
}
