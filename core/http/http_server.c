/* http_server.c - client connections.
 *
 * Every byte read goes through conn_process(), which runs llhttp over it
 * where it lies (the read buffer) when nothing is waiting before it, else
 * over the connection's pending buffer; only bytes the parser left (a
 * pipelined request, input of a paused connection) are copied into
 * pending.  Callbacks copy what they keep, except a large body that arrived
 * whole in one read: its request takes the read buffer (on_body).  The
 * parser pauses at the end of each message; the request is then handed to
 * request.c and parsing resumes only when that request has been answered
 * and logged (sl_conn_request_done), so pipelined requests are served
 * strictly in order.  Callbacks from llhttp never write to the socket
 * themselves: what they decide is acted upon after llhttp_execute()
 * returns, which keeps the code free of re-entrancy. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "base/chars.h"
#include "base/lazytimer.h"
#include "base/log.h"
#include "base/time.h"
#include "http/http_server.h"
#include "http/proxy.h"

#define SL_READ_BUF (64 * 1024)
#define SL_LEND_MIN (16 * 1024)     /* a body this large takes the read buffer it is in */
#define SL_PENDING_MAX (64 * 1024)  /* pipelined bytes buffered per conn */
#define SL_PENDING_KEEP (16 * 1024) /* input buffer kept between requests */
#define SL_LINGER_MS 5000           /* lingering after the last byte is written */
#define SL_FLUSH_IDLE_MS 60000      /* closing: a client that takes nothing this long */

/* One loop per process, one read buffer: allocated when a read needs it,
 * after a request took the last one (on_body lends a whole large body's
 * buffer to its request instead of copying the body out of it). */
static char *sl_read_buf;

typedef struct sl_write {
    uv_write_t req;
    sl_conn_t *c;
    size_t len;
    char data[];
} sl_write_t;

static void conn_process(sl_conn_t *c, const char *in, size_t in_len);
static void conn_timer_start(sl_conn_t *c, int ms);
static void on_linger_timeout(uv_timer_t *t);

/* ---- giving freed memory back (server.h) --------------------------- */

/* A trim is considered once this much was freed since the last one (one
 * big request body) and no such free came for SL_TRIM_QUIET_MS (the burst
 * that freed it is over), and it runs only when the heap holds at least
 * SL_TRIM_MIN_FREE of free memory.  A burst of held streams leaves tens of
 * MiB free, which goes back within a fraction of a second of its end; what
 * steady load frees (lane 3: ~1 MiB, twenty 49 KB stream starts) is taken
 * again by the next requests, and trimming it only held the loop (five
 * madvise calls, 0.5-2 ms) and cost ~190 page faults after it, every
 * second. */
#define SL_TRIM_AFTER (64u * 1024)
#define SL_TRIM_QUIET_MS 100
#define SL_TRIM_EVERY_MS 1000
#define SL_TRIM_MAX_WAIT_MS 10000 /* frees that never stop: looked at anyway */
#define SL_TRIM_MIN_FREE (4u * 1024 * 1024)
#define SL_TRIM_PAD (64u * 1024) /* free space kept at the heap's top */

static struct {
    uv_timer_t timer;
    uv_loop_t *loop;    /* the timer's (a test host makes a loop per test) */
    size_t freed;       /* since the last look */
    uint64_t last;      /* when the last trim ran */
    uint64_t last_free; /* when the last big free came */
    uint64_t armed;     /* when the timer was started by a free */
} heap_trim;

static void
heap_trim_cb(uv_timer_t *t)
{
    uint64_t now = uv_now(t->loop), quiet = now - heap_trim.last_free;

    if ((quiet < SL_TRIM_QUIET_MS && now - heap_trim.armed < SL_TRIM_MAX_WAIT_MS) ||
        now - heap_trim.last < SL_TRIM_EVERY_MS) {
        uint64_t wait = SL_TRIM_QUIET_MS - (quiet < SL_TRIM_QUIET_MS ? quiet : 0);
        if (now - heap_trim.last < SL_TRIM_EVERY_MS &&
            heap_trim.last + SL_TRIM_EVERY_MS - now > wait)
            wait = heap_trim.last + SL_TRIM_EVERY_MS - now;
        uv_timer_start(t, heap_trim_cb, wait, 0);
        return;
    }
    heap_trim.freed = 0;
#if defined(__GLIBC__)
    /* the free chunks of every arena are counted, not touched (a walk of
     * the bins, microseconds); below the bound they stay for reuse */
    if (mallinfo2().fordblks < SL_TRIM_MIN_FREE)
        return;
    heap_trim.last = now;
    /* every free page of the heap, not only its top (madvise) */
    malloc_trim(SL_TRIM_PAD);
#endif
}

void
sl_server_freed(sl_server_t *w, size_t bytes)
{
    if (w == NULL || w->loop == NULL)
        return;
    heap_trim.freed += bytes;
    heap_trim.last_free = uv_now(w->loop);
    if (heap_trim.freed < SL_TRIM_AFTER)
        return;
    if (heap_trim.loop != w->loop) {
        if (uv_timer_init(w->loop, &heap_trim.timer) != 0)
            return;
        uv_unref((uv_handle_t *)&heap_trim.timer); /* never keeps a draining worker */
        heap_trim.loop = w->loop;
    }
    if (uv_is_active((uv_handle_t *)&heap_trim.timer))
        return;
    heap_trim.armed = heap_trim.last_free;
    uv_timer_start(&heap_trim.timer, heap_trim_cb, SL_TRIM_QUIET_MS, 0);
}

/* ---- protocol errors before/while a request is read ------------------- */

/* An error answer to the request being read, with one extra response
 * header (hname.len == 0: none; a connection without a request gets none). */
static void
conn_fail_hdr(sl_conn_t *c, int status, const char *msg, sl_str_t hname, sl_str_t hvalue)
{
    if (c->req != NULL && c->req->stream_body && !c->req->body_complete) {
        /* The body was going to the upstream: drop that exchange. */
        sl_req_t *r = c->req;
        c->want_close = 1;
        r->close_after = 1;
        if (r->proxy)
            sl_proxy_cancel(r->proxy);
        if (!r->head_sent) {
            sl_req_error_response_hdr(r, status, msg, hname, hvalue);
        } else {
            sl_req_abort(r);
            sl_conn_close(c);
        }
        return;
    }
    if (c->req != NULL && c->req->state == SL_REQ_READING) {
        /* The request exists: answer through the normal path so that
         * plugins' filters and log phase see it. */
        c->want_close = 1;
        c->req->close_after = 1;
        sl_req_error_response_hdr(c->req, status, msg, hname, hvalue);
        return;
    }
    if (c->req != NULL) { /* garbage while another request is served */
        c->want_close = 1;
        return;
    }
    char body[256], head[256];
    int bl = snprintf(body, sizeof(body), "{\n  \"message\":\"%s\"\n}", msg);
    int hl =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                 "Content-Length: %d\r\nConnection: close\r\nServer: sluice/" SL_VERSION "\r\n\r\n",
                 status, msg, bl);
    uv_buf_t b[2] = {uv_buf_init(head, (unsigned)hl), uv_buf_init(body, (unsigned)bl)};
    sl_conn_write(c, b, 2);
    c->want_close = 1;
    sl_conn_close(c);
}

static void
conn_fail(sl_conn_t *c, int status, const char *msg)
{
    conn_fail_hdr(c, status, msg, (sl_str_t){NULL, 0}, (sl_str_t){NULL, 0});
}

/* ---- llhttp callbacks ----------------------------------------------- */

static int
on_message_begin(llhttp_t *p)
{
    sl_conn_t *c = p->data;

    c->url_len = 0;
    c->msg_open = 1;
    sl_hdr_accum_reset(&c->hdr);
    c->head_bytes = 0;
    c->req = sl_req_new(c);
    /* client_header_timeout bounds a head as a whole, however it drips in.
     * The first request's clock runs from the accept (TLS handshake and
     * idle start included), as nginx's; a later one's from its first byte,
     * the keep-alive timeout having run before. */
    if (c->nreqs > 0)
        conn_timer_start(c, c->w->settings->client_header_timeout_ms);
    return 0;
}

static int
head_grow(sl_conn_t *c, size_t add)
{
    c->head_bytes += add;
    if (c->head_bytes > c->w->settings->max_header_size) {
        llhttp_set_error_reason(&c->parser, "header too large");
        return HPE_USER;
    }
    return 0;
}

static int
on_url(llhttp_t *p, const char *at, size_t len)
{
    sl_conn_t *c = p->data;

    if (head_grow(c, len))
        return HPE_USER;
    if (c->url_len + len > c->url_cap) {
        c->url_cap = (c->url_len + len) * 2;
        c->url = sl_xrealloc(c->url, c->url_cap);
    }
    memcpy(c->url + c->url_len, at, len);
    c->url_len += len;
    return 0;
}

static void
header_flush(sl_conn_t *c)
{
    sl_str_t name, value;

    if (sl_hdr_accum_take(&c->hdr, &name, &value))
        sl_headers_add(&c->req->headers, c->req->pool, name, value);
}

static int
on_header_field(llhttp_t *p, const char *at, size_t len)
{
    sl_conn_t *c = p->data;

    /* llhttp (built without strict mode) lets spaces and other separators
     * through in header names; forwarding such a name would hand the
     * upstream a request it may parse differently. */
    for (size_t i = 0; i < len; i++) {
        if (!sl_is_tchar((unsigned char)at[i])) {
            llhttp_set_error_reason(p, "invalid character in header name");
            return HPE_USER;
        }
    }
    if (c->hdr.in_value)
        header_flush(c);
    /* Count each header line's ": " and CRLF too, so that max_header_size
     * bounds the bytes on the wire: thousands of tiny headers must not pass
     * a limit meant for the head as a whole. */
    if (sl_hdr_accum_empty(&c->hdr) && head_grow(c, 4))
        return HPE_USER;
    if (head_grow(c, len))
        return HPE_USER;
    sl_hdr_accum_field(&c->hdr, at, len);
    return 0;
}

static int
on_header_value(llhttp_t *p, const char *at, size_t len)
{
    sl_conn_t *c = p->data;

    if (head_grow(c, len))
        return HPE_USER;
    sl_hdr_accum_value(&c->hdr, at, len);
    return 0;
}

/* The body limit of the request being read: the node's max_body_size, or
 * less when a plugin of its route declared less (api->req_body_limit: an
 * ai-proxy route takes 1 MiB).  0 = none. */
static size_t
body_max(const sl_conn_t *c)
{
    size_t max = c->w->settings->max_body_size;
    uint64_t lim = c->req ? c->req->body_limit : 0;

    if (lim && (max == 0 || lim < max))
        max = (size_t)lim;
    return max;
}

/* Whether `len` more body bytes would not fit in max_body_memory now. */
static int
body_no_room(const sl_conn_t *c, uint64_t len)
{
    const sl_server_t *w = c->w;
    uint64_t max = w->settings->max_body_memory;
    const int64_t *node = w->body_bytes_node ? w->body_bytes_node : &w->body_bytes_own;
    int64_t used = __atomic_load_n(node, __ATOMIC_RELAXED);

    if (max == 0 || c->req == NULL || c->req->stream_body || c->req->discard_body)
        return 0;
    return used < 0 ? len > max : len > max - (uint64_t)used || (uint64_t)used > max;
}

static int
on_headers_complete(llhttp_t *p)
{
    sl_conn_t *c = p->data;
    sl_req_t *r = c->req;

    header_flush(c);
    r->uri.ptr = sl_pstrndup(r->pool, c->url, c->url_len);
    r->uri.len = c->url_len;
    r->method = sl_str_c(llhttp_method_name(llhttp_get_method(p)));
    r->http_major = llhttp_get_http_major(p);
    r->http_minor = llhttp_get_http_minor(p);
    r->keepalive = llhttp_should_keep_alive(p);
    r->req_size = c->head_bytes;
    r->req_chunked = (p->flags & F_CHUNKED) != 0;
    r->req_content_length = (p->flags & F_CONTENT_LENGTH) ? p->content_length : 0;
    sl_req_headers_done(r);
    if (llhttp_get_method(p) == HTTP_HEAD)
        r->no_body = 1;
    conn_timer_start(c, c->w->settings->client_body_timeout_ms);
    /* A declared length over the limit is refused now, not after the
     * client has sent (or we have waited for) that much.  llhttp reports
     * any failure here as HPE_CB_HEADERS_COMPLETE; this is the only one. */
    if ((p->flags & F_CONTENT_LENGTH) && body_max(c) && p->content_length > body_max(c))
        return -1;
    /* A declared body that the node's max_body_memory has no room for now
     * is a 503 before any body byte (only a hint: bytes are counted as they
     * arrive, in on_body). */
    if ((p->flags & F_CONTENT_LENGTH) && body_no_room(c, p->content_length)) {
        r->body_refused = 503;
        return -1;
    }
    return 0;
}

/* Same for a chunk whose size alone would cross the limit: llhttp reports
 * the failure as HPE_CB_CHUNK_HEADER. */
static int
on_chunk_header(llhttp_t *p)
{
    sl_conn_t *c = p->data;
    size_t max = body_max(c);

    if (max && c->req != NULL &&
        (p->content_length > max || c->req->body_len + p->content_length > max))
        return -1;
    return 0;
}

static int
on_body(llhttp_t *p, const char *at, size_t len)
{
    sl_conn_t *c = p->data;
    sl_req_t *r = c->req;
    size_t max = body_max(c);

    if (r == NULL)
        return HPE_USER; /* the request already ended (early answer) */
    r->req_size += len;
    if (max && r->body_len + len > max) {
        llhttp_set_error_reason(p, "body too large");
        return HPE_USER;
    }
    conn_timer_start(c, c->w->settings->client_body_timeout_ms);
    if (r->stream_body) {
        if (r->proxy)
            sl_proxy_body(r->proxy, at, len);
        r->body_len += len; /* counted, not kept */
        return 0;
    }
    if (r->discard_body)
        return 0;
    /* The whole declared body, large, in one read parsed where it lies (see
     * conn_process): the request takes that read buffer, counted whole in
     * max_body_memory, instead of a copy of its bytes. */
    if (r->body == NULL && len >= SL_LEND_MIN && len == r->req_content_length && !r->req_chunked &&
        sl_read_buf != NULL && (uintptr_t)at >= (uintptr_t)sl_read_buf &&
        (uintptr_t)at + len <= (uintptr_t)sl_read_buf + SL_READ_BUF &&
        sl_req_body_count(r, SL_READ_BUF, 0) == 0) {
        r->body_buf = sl_read_buf;
        r->body = (char *)at;
        r->body_len = r->body_cap = len;
        sl_read_buf = NULL;
        return 0;
    }
    if (r->body_len + len > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 16384;
        while (cap < r->body_len + len)
            cap *= 2;
        /* no more than a declared length: a 3 MB body takes 3 MB, not 4 */
        if (r->req_content_length && cap > r->req_content_length &&
            r->req_content_length >= r->body_len + len)
            cap = (size_t)r->req_content_length;
        if (sl_req_body_count(r, cap, 0) < 0) {
            r->body_refused = 503;
            llhttp_set_error_reason(p, "no memory for the body");
            return HPE_USER;
        }
        if (r->body_buf != NULL) { /* more than declared (llhttp stops there): copied out */
            char *nb = sl_xmalloc(cap);
            memcpy(nb, r->body, r->body_len);
            free(r->body_buf);
            r->body_buf = NULL;
            r->body = nb;
        } else {
            r->body = sl_xrealloc(r->body, cap);
        }
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    return 0;
}

static int
on_message_complete(llhttp_t *p)
{
    sl_conn_t *c = p->data;

    sl_lazy_timer_stop(&c->timer_due);
    c->msg_open = 0;
    c->paused = 1;
    return HPE_PAUSED;
}

/* ---- reading ------------------------------------------------------- */

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    if (sl_read_buf == NULL)
        sl_read_buf = sl_xmalloc(SL_READ_BUF);
    buf->base = sl_read_buf;
    buf->len = SL_READ_BUF;
}

static void
pending_append(sl_conn_t *c, const char *data, size_t len)
{
    if (c->pending_len + len > c->pending_cap) {
        c->pending_cap = (c->pending_len + len) * 2;
        c->pending = sl_xrealloc(c->pending, c->pending_cap);
    }
    memmove(c->pending + c->pending_len, data, len);
    c->pending_len += len;
}

static int raw_write_now(sl_conn_t *c, const uv_buf_t *bufs, unsigned n);

/* Send the ciphertext OpenSSL has produced (handshake, tickets, records). */
static int
tls_flush(sl_conn_t *c)
{
    const char *p;
    size_t len = sl_stls_conn_out(c->tls, &p);
    int rc = SL_OK;

    if (len > 0) {
        uv_buf_t b = uv_buf_init((char *)p, (unsigned)len);
        rc = raw_write_now(c, &b, 1); /* copies what the socket does not take */
    }
    sl_stls_conn_out_done(c->tls);
    return rc;
}

/* Ciphertext from a TLS client: handshake, then plaintext straight into
 * c->pending.  -1: bad handshake, protocol error or close_notify. */
static int
tls_input(sl_conn_t *c, const char *data, size_t len)
{
    ssize_t n;

    if (sl_stls_conn_feed(c->tls, data, len) < 0)
        return -1;
    for (;;) {
        /* room for a record (16 KiB); a buffer of SL_PENDING_KEEP stays
         * between requests, so a kept-alive connection does not reallocate */
        if (c->pending_cap - c->pending_len < 4096) {
            c->pending_cap =
                c->pending_len < SL_PENDING_KEEP / 2 ? SL_PENDING_KEEP : c->pending_len + 16384;
            c->pending = sl_xrealloc(c->pending, c->pending_cap);
        }
        n = sl_stls_conn_read(c->tls, c->pending + c->pending_len, c->pending_cap - c->pending_len);
        if (n <= 0)
            break;
        c->pending_len += (size_t)n;
    }
    /* A TLS 1.3 ticket produced with a request's bytes (the client's
     * Finished and its request in one read) waits for the answer, which
     * the client waits for anyway, and leaves with it in one write: one
     * write and one wakeup of the client fewer.  Without a request the
     * ticket goes at once, for a client that only connects. */
    int hold = n >= 0 && c->pending_len > 0 && sl_stls_conn_post_handshake(c->tls);
    if ((!hold && tls_flush(c) < 0) || n < 0) {
        if (n < 0 && n != UV_EOF && !sl_stls_conn_established(c->tls))
            sl_log_debug("TLS handshake from %s failed", c->client_ip);
        return -1;
    }
    return 0;
}

static void
on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sl_conn_t *c = (sl_conn_t *)s;

    if (nread == 0)
        return;
    if (nread < 0) {
        c->peer_closed = 1;
        if (c->req != NULL)
            sl_req_abort(c->req);
        sl_conn_close(c);
        return;
    }
    sl_turn_io();
    if (c->tls != NULL) {
        if (tls_input(c, buf->base, (size_t)nread) < 0) {
            if (c->req != NULL)
                sl_req_abort(c->req);
            sl_conn_close(c);
            return;
        }
    } else if (c->pending_len == 0 && !c->paused && !c->in_process) {
        conn_process(c, buf->base, (size_t)nread); /* parsed where it lies */
        return;
    } else {
        pending_append(c, buf->base, (size_t)nread);
    }
    if (c->paused && c->pending_len > SL_PENDING_MAX && c->reading) {
        uv_read_stop(s); /* back-pressure on a pipelining client */
        c->reading = 0;
    }
    conn_process(c, NULL, 0);
}

/* sl_req_body_done() can answer synchronously, and sl_conn_request_done()
 * then asks to process the next pipelined request: the loop below picks it
 * up instead of recursing (c->in_process).  `in` (in_len bytes) is a read
 * to parse where it lies, given only while c->pending is empty: what the
 * parser leaves of it goes to c->pending, the rest is never copied (a 50 KB
 * body is copied once, into the request, instead of twice; not at all when
 * the request takes the read buffer, see on_body: `in` then belongs to the
 * request, which lives at least until sl_req_body_done() below). */
static void
conn_process(sl_conn_t *c, const char *in, size_t in_len)
{
    if (c->in_process)
        return;
    c->in_process = 1;
    while (!c->closing && !c->paused && (in_len > 0 || c->pending_len > 0)) {
        int direct = in_len > 0; /* c->pending is empty */
        const char *data = direct ? in : c->pending;
        size_t len = direct ? in_len : c->pending_len;
        llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
        size_t used = len;

        sl_hdr_accum_settle(&c->hdr); /* data moves or goes */

        if (err == HPE_PAUSED) {
            used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
            llhttp_resume(&c->parser);
        }
        if (err != HPE_OK && err != HPE_PAUSED) {
            const char *reason = llhttp_get_error_reason(&c->parser);
            c->pending_len = 0;
            in_len = 0;
            if (c->req && c->req->body_refused == 503)
                conn_fail_hdr(c, 503, "Service unavailable", SL_STR("Retry-After"), SL_STR("1"));
            else if ((err == HPE_USER && reason && strcmp(reason, "body too large") == 0) ||
                     err == HPE_CB_HEADERS_COMPLETE || err == HPE_CB_CHUNK_HEADER)
                conn_fail(c, 413, "Request body too large");
            else if (err == HPE_USER && reason && strcmp(reason, "header too large") == 0)
                conn_fail(c, c->url_len > c->w->settings->max_header_size / 2 ? 414 : 431,
                          c->url_len > c->w->settings->max_header_size / 2
                              ? "URI too long"
                              : "Request header fields too large");
            else {
                sl_log_debug("bad request from %s: %s", c->client_ip,
                             reason ? reason : llhttp_errno_name(err));
                conn_fail(c, 400, "Bad request");
            }
            break;
        }
        if (direct) {
            in_len = 0;
            if (used < len)
                pending_append(c, data + used, len - used);
        } else {
            memmove(c->pending, c->pending + used, len - used);
            c->pending_len = len - used;
        }
        if (c->pending_len == 0 && c->pending_cap > SL_PENDING_KEEP) {
            /* a big request passed: don't hold its buffer for the rest of
             * a long-lived (streaming, keep-alive) connection */
            free(c->pending);
            sl_server_freed(c->w, c->pending_cap);
            c->pending = NULL;
            c->pending_cap = 0;
        }
        if (err == HPE_PAUSED) {
            c->nreqs++;
            if (c->req)
                sl_req_body_done(c->req); /* may finish synchronously */
        }
    }
    c->in_process = 0;
}

/* ---- timers -------------------------------------------------------- */

static void
on_timer(uv_timer_t *t)
{
    sl_conn_t *c = t->data;

    if (sl_lazy_timer_early(t, &c->timer_due))
        return;
    if (c->req != NULL &&
        (c->req->state == SL_REQ_READING || (c->req->stream_body && !c->req->body_complete))) {
        c->pending_len = 0;
        conn_fail(c, 408, "Request timeout");
        return;
    }
    if (c->req == NULL)
        sl_conn_close(c); /* idle keep-alive connection */
}

static void
conn_timer_start(sl_conn_t *c, int ms)
{
    if (ms > 0)
        sl_lazy_timer_start(&c->timer, &c->timer_due, on_timer, (uint64_t)ms);
}

/* ---- writing ------------------------------------------------------- */

static void
on_write(uv_write_t *wr, int status)
{
    sl_write_t *w = (sl_write_t *)wr;
    sl_conn_t *c = w->c;

    c->write_bytes -= w->len;
    free(w);
    if (status < 0) {
        c->write_failed = 1;
        if (c->req != NULL)
            sl_req_abort(c->req);
        sl_conn_close(c);
        return;
    }
    if (c->closing) {
        /* flushing before the close: the client takes bytes, so give it
         * more time; the linger bound counts from the last byte written */
        if (!uv_is_closing((uv_handle_t *)&c->timer))
            uv_timer_start(&c->timer, on_linger_timeout,
                           c->write_bytes > 0 ? SL_FLUSH_IDLE_MS : SL_LINGER_MS, 0);
        return;
    }
    if (c->req != NULL && c->write_bytes < SL_CONN_HIGH_WATER / 2)
        sl_req_on_drain(c->req);
}

/* Write now: straight from the caller's buffers when the socket takes
 * them (the common case: no copy, one writev), else copy what is left into
 * a write request. */
static int
raw_write_now(sl_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    size_t total = 0, skip = 0, off = 0;
    sl_write_t *w;

    for (unsigned i = 0; i < n; i++)
        total += bufs[i].len;
    if (total == 0)
        return SL_OK;
    if (c->write_bytes == 0) {
        int nw = uv_try_write((uv_stream_t *)&c->tcp, bufs, n);
        if (nw == (int)total)
            return SL_OK;
        if (nw > 0)
            skip = (size_t)nw;
        else if (nw != UV_EAGAIN && nw != UV_ENOSYS)
            return SL_ERROR;
    }
    w = sl_xmalloc(sizeof(*w) + (total - skip));
    w->c = c;
    w->len = total - skip;
    for (unsigned i = 0; i < n; i++) {
        size_t l = bufs[i].len;
        const char *p = bufs[i].base;
        if (skip >= l) {
            skip -= l;
            continue;
        }
        p += skip;
        l -= skip;
        skip = 0;
        memcpy(w->data + off, p, l);
        off += l;
    }
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    c->write_bytes += w->len;
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write) < 0) {
        c->write_bytes -= w->len;
        free(w);
        return SL_ERROR;
    }
    return SL_OK;
}

/* TLS: encrypt, then write the records. */
static int
conn_write_now(sl_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->tls == NULL)
        return raw_write_now(c, bufs, n);
    if (!sl_stls_conn_established(c->tls) || sl_stls_conn_write(c->tls, bufs, n) < 0)
        return SL_ERROR;
    return tls_flush(c);
}

/* What a corked connection writes is gathered in one buffer of the
 * worker's, lent from the first write to the uncork (a corked stretch is
 * one upstream read, and reads are not nested), so a held stream owns no
 * output buffer between its tokens.  A connection corked while another
 * holds it gathers into a buffer of its own. */
static struct {
    char *buf;
    size_t cap;
    sl_conn_t *user;
} cork_pool;

#define SL_CORK_KEEP (256 * 1024) /* a bigger lent buffer is freed when returned */

static void
cork_return(sl_conn_t *c)
{
    if (!c->cork_lent)
        return;
    cork_pool.buf = c->cork_buf;
    cork_pool.cap = c->cork_cap;
    if (cork_pool.cap > SL_CORK_KEEP) {
        free(cork_pool.buf);
        cork_pool.buf = NULL;
        cork_pool.cap = 0;
    }
    cork_pool.user = NULL;
    c->cork_buf = NULL;
    c->cork_cap = c->cork_len = 0;
    c->cork_lent = 0;
}

int
sl_conn_write(sl_conn_t *c, const uv_buf_t *bufs, unsigned n)
{
    if (c->closing)
        return SL_ERROR;
    if (c->corked) {
        size_t total = 0;
        for (unsigned i = 0; i < n; i++)
            total += bufs[i].len;
        if (c->cork_buf == NULL && cork_pool.user == NULL) {
            c->cork_buf = cork_pool.buf;
            c->cork_cap = cork_pool.cap;
            c->cork_lent = 1;
            cork_pool.user = c;
        }
        if (c->cork_len + total > c->cork_cap) {
            c->cork_cap = (c->cork_len + total) * 2;
            c->cork_buf = sl_xrealloc(c->cork_buf, c->cork_cap);
        }
        for (unsigned i = 0; i < n; i++) {
            memcpy(c->cork_buf + c->cork_len, bufs[i].base, bufs[i].len);
            c->cork_len += bufs[i].len;
        }
        return SL_OK;
    }
    return conn_write_now(c, bufs, n);
}

void
sl_conn_cork(sl_conn_t *c)
{
    c->corked++;
}

static void
cork_flush(sl_conn_t *c)
{
    if (c->cork_len && !c->write_failed) {
        uv_buf_t b = uv_buf_init(c->cork_buf, (unsigned)c->cork_len);
        c->cork_len = 0;
        if (conn_write_now(c, &b, 1) < 0)
            c->write_failed = 1;
    }
    c->cork_len = 0;
}

void
sl_conn_uncork(sl_conn_t *c)
{
    if (c->corked == 0 || --c->corked > 0)
        return;
    if (!c->closing)
        cork_flush(c); /* what the socket does not take is copied */
    cork_return(c);
}

/* ---- lifecycle ----------------------------------------------------- */

static void
on_close(uv_handle_t *h)
{
    sl_conn_t *c = h->data;

    /* Two handles (tcp, timer) close; libuv gives no order guarantee. */
    if (++c->handles_closed < 2)
        return;
    sl_server_t *w = c->w;
    sl_hdr_accum_free(&c->hdr);
    if (c->cork_lent)
        cork_return(c);
    else
        free(c->cork_buf);
    free(c->url);
    free(c->pending);
    sl_stls_conn_free(c->tls);
    free(c);
    w->nconns--;
    if (w->counters)
        sl_counter_sub(w->counters->active, 1);
    if (w->conn_closed)
        w->conn_closed(w);
}

static void
close_handles(sl_conn_t *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->timer, on_close);
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

static void
on_shutdown(uv_shutdown_t *req, int status)
{
    sl_conn_t *c = req->data;

    free(req);
    if (!c->lingering || status < 0)
        close_handles(c); /* else the peer's EOF or the linger timer */
}

/* Lingering close (nginx's lingering_close): after an early answer (413
 * while the client still sends a 65 MB body) closing with unread input
 * would send a reset, and the client could lose the answer it has not read
 * yet.  The output is shut down and the input read and dropped until the
 * client closes or the linger timer ends it. */
static void
on_linger_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0)
        close_handles((sl_conn_t *)s);
}

static void
on_linger_timeout(uv_timer_t *t)
{
    sl_conn_t *c = t->data;

    /* The client does not read what is left: give up on it. */
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->timer, on_close);
        uv_close((uv_handle_t *)&c->tcp, on_close);
    }
}

/* What is left to send before the close: the corked bytes and, over TLS,
 * close_notify, encrypted together so they leave in one write. */
static void
close_flush(sl_conn_t *c)
{
    if (c->tls == NULL || c->write_failed || !sl_stls_conn_established(c->tls)) {
        cork_flush(c);
        return;
    }
    if (c->cork_len) {
        uv_buf_t b = uv_buf_init(c->cork_buf, (unsigned)c->cork_len);
        if (sl_stls_conn_write(c->tls, &b, 1) < 0)
            c->write_failed = 1;
        c->cork_len = 0;
    }
    sl_stls_conn_shutdown(c->tls); /* close_notify */
    if (tls_flush(c) < 0)
        c->write_failed = 1;
}

/* Closing: what is queued is flushed first (uv_close would cancel it).
 * Then, as nginx decides whether to linger: a connection whose last
 * request was read whole with nothing after it (c->input_done) is closed
 * at once, the kernel sending what it holds and then a FIN; any other one
 * (an early answer to a request still being sent, pipelined input, an
 * error, a timeout) lingers (on_linger_read). */
void
sl_conn_close(sl_conn_t *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    if (c->req != NULL && c->req->state != SL_REQ_DONE)
        sl_req_abort(c->req);
    if (c->prev)
        c->prev->next = c->next;
    else
        c->w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    close_flush(c);
    c->corked = 0;
    int linger = !c->peer_closed && !c->input_done;
    if (!c->write_failed && (c->write_bytes > 0 || linger)) {
        uv_shutdown_t *sd = sl_xmalloc(sizeof(*sd));
        sd->data = c;
        if (uv_shutdown(sd, (uv_stream_t *)&c->tcp, on_shutdown) == 0) {
            uv_read_stop((uv_stream_t *)&c->tcp);
            c->reading = 0;
            if (linger && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_linger_read) == 0)
                c->lingering = 1;
            /* what is queued may take a slow client long to read: only a
             * client that takes nothing for SL_FLUSH_IDLE_MS (nginx's
             * send_timeout) is cut; after the last byte, SL_LINGER_MS */
            uv_timer_start(&c->timer, on_linger_timeout,
                           c->write_bytes > 0 ? SL_FLUSH_IDLE_MS : SL_LINGER_MS, 0);
            return;
        }
        free(sd);
    }
    uv_close((uv_handle_t *)&c->timer, on_close);
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

void
sl_conn_pause_read(sl_conn_t *c)
{
    if (c->reading && !c->closing) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

void
sl_conn_resume_read(sl_conn_t *c)
{
    if (!c->reading && !c->closing) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = 1;
    }
}

/* The worker drains: an idle keep-alive connection is not closed at once,
 * because its client may be sending the next request right now and would
 * see that request fail.  It gets a short grace instead: a request that
 * arrives is served with "Connection: close" (sl_conn_request_done sees
 * w->draining), otherwise the idle timer closes the connection. */
void
sl_conn_drain_idle(sl_conn_t *c, int grace_ms)
{
    if (c->req == NULL && !c->closing)
        conn_timer_start(c, grace_ms);
}

void
sl_conn_request_done(sl_conn_t *c)
{
    c->req = NULL;
    if (c->closing)
        return;
    if (c->want_close || c->w->draining) {
        /* nginx's test for lingering: the request was read to its end
         * and nothing of the client's is waiting behind it */
        c->input_done = !c->msg_open && c->pending_len == 0 && !sl_stls_conn_has_input(c->tls);
        sl_conn_close(c);
        return;
    }
    c->paused = 0;
    conn_timer_start(c, c->w->settings->keepalive_timeout_ms);
    if (!c->reading) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        c->reading = 1;
    }
    if (c->pending_len)
        conn_process(c, NULL, 0);
}

/* llhttp's callbacks for a client request. */
static const llhttp_settings_t sl_http_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_chunk_header = on_chunk_header,
    .on_message_complete = on_message_complete,
};

void
sl_http_on_connection(uv_stream_t *server, int status)
{
    sl_server_t *w = server->data;
    sl_conn_t *c;

    if (status < 0)
        return;
    c = sl_xcalloc(1, sizeof(*c));
    c->w = w;
    uv_tcp_init(w->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    uv_timer_init(w->loop, &c->timer);
    c->timer.data = c;
    c->timer_due = SL_LAZY_TIMER_OFF;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    c->is_status = w->status_listener && server == (uv_stream_t *)w->status_listener;
    if (w->counters) {
        sl_counter_add(w->counters->accepted, 1);
        sl_counter_add(w->counters->handled, 1);
        sl_counter_add(w->counters->active, 1);
    }
    uv_tcp_nodelay(&c->tcp, 1);

    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, c->client_ip, sizeof(c->client_ip));
            c->client_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        } else {
            uv_ip4_name((struct sockaddr_in *)&ss, c->client_ip, sizeof(c->client_ip));
            c->client_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        }
    }
    size_t li = w->listeners != NULL ? (size_t)((uv_tcp_t *)server - w->listeners) : SIZE_MAX;
    sl = sizeof(ss);
    if (li <= w->nlisteners && w->listener_port != NULL && w->listener_port[li] != 0)
        c->server_port = w->listener_port[li]; /* the listener's (worker.c) */
    else if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &sl) == 0)
        c->server_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                        : ((struct sockaddr_in *)&ss)->sin_port);

    if (li < w->nlisteners && w->listener_tls != NULL && w->listener_tls[li]) {
        if ((c->tls = sl_stls_conn_new(w->conf->tls_server)) == NULL) {
            sl_conn_close(c);
            return;
        }
    }

    llhttp_init(&c->parser, HTTP_REQUEST, &sl_http_settings);
    /* Strict parsing: reject what smuggling relies on. */
    c->parser.data = c;

    if (w->settings->max_connections > 0 && w->nconns > (size_t)w->settings->max_connections) {
        static const char resp[] =
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json; charset=utf-8\r\n"
            "Retry-After: 1\r\nContent-Length: 54\r\nConnection: close\r\n\r\n"
            "{\n  \"message\":\"Too many connections, try again later\"}";
        uv_buf_t b = uv_buf_init((char *)resp, sizeof(resp) - 1);
        sl_conn_write(c, &b, 1);
        sl_conn_close(c);
        return;
    }
    conn_timer_start(c, w->settings->client_header_timeout_ms);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    c->reading = 1;
}

const char *
sl_conn_client_ip(const sl_conn_t *c)
{
    return c ? c->client_ip : "";
}

int
sl_conn_server_port(const sl_conn_t *c)
{
    return c ? c->server_port : 0;
}

int
sl_conn_is_tls(const sl_conn_t *c)
{
    return c != NULL && c->tls != NULL;
}

const char *
sl_conn_sni(const sl_conn_t *c)
{
    return c != NULL ? sl_stls_conn_sni(c->tls) : NULL;
}
