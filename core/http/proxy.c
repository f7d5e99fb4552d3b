/* proxy.c - the upstream HTTP/1.1 exchange of one request.
 *
 *   sl_proxy_start -> next_try: balancer phase (plugins may pick the
 *   target), head built -> connect (pooled) -> write head+body -> llhttp
 *   parses the response -> sl_req_resp_headers / sl_req_resp_body /
 *   sl_req_resp_end.
 *
 * When a try fails before anything reached the client, two rules decide
 * whether the request goes again (docs/upstream.md, "The combined rule"):
 *   - retry_fresh: a reused keep-alive connection that fails before any
 *     response byte is retried on another connection to the same target,
 *     not charged to the budget, only as retry.h's rule allows (Go
 *     net/http's).  A POST that may have reached the provider is never
 *     sent twice this way.
 *   - try_failed: otherwise a failed try is followed by a next one while
 *     the budget (r->retries) lasts: without a balancer callback in the
 *     chain only for connection failures (Kong's default), with one for
 *     any failure before the response head, and for a response a
 *     header_filter rejected (api->upstream_retry); the balancer callback
 *     is told whether the request may have reached the upstream and
 *     decides. */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <llhttp.h>

#include "base/fmt.h"
#include "base/lazytimer.h"
#include "base/log.h"
#include "base/strbuf.h"
#include "http/balance.h"
#include "http/downstream.h"
#include "http/hdr_accum.h"
#include "http/proxy.h"
#include "http/retry.h"
#include "http/server.h"
#include "upstream/upstream.h"

/* A piece of a streamed request body waiting to be written upstream. */
typedef struct sl_bodyq {
    struct sl_bodyq *next;
    size_t len;
    char data[];
} sl_bodyq_t;

#define SL_BODYQ_HIGH (1024 * 1024) /* pause the client above this */

/* src into dst[cap], cut to fit, NUL-terminated (snprintf "%s" costs a
 * few hundred instructions per request). */
static void
copy_cstr(char *dst, size_t cap, const char *src)
{
    size_t n = strnlen(src, cap - 1);

    memcpy(dst, src, n);
    dst[n] = '\0';
}

struct sl_proxy {
    /* ---- one request's: zeroed when a kept proxy is taken again ---- */
    sl_req_t *r;
    sl_upconn_t *c;
    sl_upconnect_t *pending;
    uint64_t timer_due; /* the timer's deadline (base/lazytimer.h) */
    llhttp_t parser;
    const char *target_host; /* the upstream target's host (Host header, TLS name); NULL: host */
    int port;
    /* Kong's upstreams: the service's host names one, each try gets a
     * target (upstream/balancer.h) */
    const sl_upstream_conf_t *ups;
    sl_bal_pick_t pick;
    const char *set_cookie; /* hash_on cookie: Set-Cookie for the response */
    int keep_target;        /* the next connection goes to the same target */
    char *head;
    size_t head_len;
    int tls;
    int tries;     /* counted tries */
    int got_bytes; /* response bytes seen on this conn */
    int wrote;     /* bytes of the request may have gone out on this conn */
    int headers_done;
    int complete;
    int paused;
    int reading;
    size_t hdr_bytes; /* of this response head (interim ones apart) */
    size_t hdr_lines;
    int ninterim; /* 1xx responses seen */
    /* streamed request body (r->stream_body) */
    sl_bodyq_t *bq_head, *bq_tail;
    size_t bq_bytes;
    sl_bodyq_t *inflight; /* being written (kept for a retry) */
    int head_written;
    int body_end;     /* client finished the body */
    int end_written;  /* last chunk (or last byte) sent */
    int body_sent;    /* bytes went out and were dropped: no retry */
    sl_bodyq_t *sent; /* written, kept for a retry (bounded) */
    size_t sent_bytes;
    sl_bodyq_t *resend; /* raw bytes to write again first */
    int client_paused;
    int written; /* the request is fully written */
    /* tries (next_try / try_failed) */
    int retries_used; /* retries charged to r->retries */
    int balanced;     /* the chain has a balancer callback */
    int discard;      /* the response was rejected (api->upstream_retry) */
    int up_err;       /* libuv / SL_UPERR code of a failed connect */
    int reused;       /* this try's connection came from the keep-alive pool */

    /* loop time the response head must be in by (0: not running) */
    uint64_t head_deadline;

    /* ---- kept from request to request (proxy_take) ---- */
    sl_server_t *w;
    sl_proxy_t *next_kept; /* w->proxy_kept or w->proxy_retired */
    uv_timer_t timer;      /* open while kept; unreferenced, maybe still armed */
    char *host;            /* NUL-terminated target host (proxy_host) */
    size_t host_cap;
    sl_hdr_accum_t hdr; /* response header being parsed */
};

/* Up to this many finished exchanges are kept per worker for the next
 * requests, with their timer handle open and their host and header
 * buffers: a request then allocates no proxy, no timer handle and no
 * buffers, and its timeouts find the timer already armed (a lazy timer,
 * base/lazytimer.h).  A finished proxy is retired first and taken again
 * only from the loop's check phase on (proxy_check_cb): code that ended
 * an exchange may still read it until the callback it runs in returns. */
#define SL_PROXY_KEEP 32
#define SL_PROXY_HDR_KEEP 4096 /* a bigger header buffer is not kept */

/* The service's timeout of one kind, Kong's default without a service. */
typedef enum { SL_TIMEOUT_CONNECT, SL_TIMEOUT_READ, SL_TIMEOUT_WRITE } sl_timeout_kind_t;

static int
svc_timeout(const sl_req_t *r, sl_timeout_kind_t kind)
{
    const sl_service_t *s = r->service;
    int own = kind == SL_TIMEOUT_CONNECT ? r->timeout_connect
              : kind == SL_TIMEOUT_READ  ? r->timeout_read
                                         : r->timeout_write;

    if (own > 0)
        return own; /* api->upstream_timeouts_set */
    if (s == NULL)
        return SL_SERVICE_DEFAULT_TIMEOUT_MS;
    switch (kind) {
    case SL_TIMEOUT_CONNECT:
        return s->connect_timeout;
    case SL_TIMEOUT_READ:
        return s->read_timeout;
    case SL_TIMEOUT_WRITE:
        break;
    }
    return s->write_timeout;
}

static void stream_flush(sl_proxy_t *p);

/* Once the request is written and the upstream has answered, nothing will
 * send the body again (no retry after a response byte): give its memory
 * back instead of holding it for the whole, maybe minutes-long, answer. */
static void
release_body(sl_proxy_t *p)
{
    sl_req_t *r = p->r;

    /* not before header_filter accepted the response: a plugin may still
     * reject it and fail over (api->upstream_retry) */
    if (r && p->written && p->headers_done && !p->discard) {
        sl_server_freed(r->w, r->body_cap + p->head_len);
        if (r->body) {
            sl_req_body_count(r, 0, 1);
            sl_req_body_free(r);
        }
        /* nor the request head (no other try will write it) */
        free(p->head);
        p->head = NULL;
        p->head_len = 0;
    }
}
static void try_connect(sl_proxy_t *p);

static void
bodyq_free(sl_bodyq_t **head)
{
    for (sl_bodyq_t *q = *head, *n; q; q = n) {
        n = q->next;
        free(q);
    }
    *head = NULL;
}

/* The connection failed before the upstream said anything.  If it was a
 * reused keep-alive connection (the server may have closed it while idle)
 * and retry.h's rule allows it, start over on another connection (not
 * counted as a try) and return 1; else log why not and return 0.  For a
 * streamed body, what was already written (kept in p->sent, bounded) is
 * written again, as raw bytes, before anything new. */
static int
retry_fresh(sl_proxy_t *p)
{
    sl_req_t *r = p->r;
    const char *why;
    sl_retry_facts_t f = {
        .reused = p->c != NULL && sl_upconn_reused(p->c),
        .got_bytes = p->got_bytes,
        .written = p->wrote,
        .cannot_replay = p->body_sent,
    };

    if (!sl_retry_allowed(r->method, &r->headers, &f, &why)) {
        if (f.reused && !f.got_bytes)
            sl_log_warn("upstream %s:%d: reused connection failed before responding, not retried "
                        "(%s), request %s",
                        p->host, p->port, why, r->id);
        return 0;
    }
    sl_log_debug("upstream %s:%d: reused connection failed before responding, retrying on "
                 "another (%s), request %s",
                 p->host, p->port, f.written ? "replayable request" : "nothing was written", r->id);
    sl_upconn_release(p->c, 0);
    p->c = NULL;
    if (p->r->stream_body) {
        sl_bodyq_t **tail = &p->sent;
        while (*tail)
            tail = &(*tail)->next;
        *tail = p->inflight; /* sent + in flight, in order */
        p->inflight = NULL;
        p->resend = p->sent;
        p->sent = NULL;
        p->sent_bytes = 0;
    }
    p->keep_target = 1; /* the keep-alive race is no try: same target */
    try_connect(p);
    return 1;
}

/* The upstream's response head is bounded as a client's is (counted the
 * same way: names, values and 4 bytes of separators per line), with room
 * for big Set-Cookie and CSP headers; a run of interim (1xx) responses is
 * bounded too. */
#define SL_UPSTREAM_HEAD_MAX (64 * 1024)
#define SL_UPSTREAM_HEADER_LINES_MAX 1000
#define SL_UPSTREAM_INTERIM_MAX 16

static void try_connect(sl_proxy_t *p);
static void proxy_fail(sl_proxy_t *p, sl_req_error_t err, int status, const char *msg);

/* Kong's answers when the upstream fails before a response byte. */
static void
bad_gateway(sl_proxy_t *p, sl_req_error_t err)
{
    proxy_fail(p, err, 502, "An invalid response was received from the upstream server");
}

static void
gateway_timeout(sl_proxy_t *p, sl_req_error_t err)
{
    proxy_fail(p, err, 504, "The upstream server is timing out");
}

/* ---- tries ------------------------------------------------------------ */

static void next_try(sl_proxy_t *p, sl_try_failure_t f, int status, int may_have_reached,
                     int reused);

/* Kong's try states in the log record: "failed" for a connection-level
 * failure (code 502, 504 after a timeout), "next" for a response a plugin
 * rejected (code: its status). */
static void
try_mark(sl_req_t *r, sl_try_failure_t f, int status)
{
    sl_try_t *t = &r->tries[r->ntries - 1];

    if (t->failed)
        return; /* on_connected marked it */
    t->failed = 1;
    if (f == SL_TRY_STATUS) {
        t->code = status;
        copy_cstr(t->state, sizeof(t->state), "next");
    } else {
        t->code = f == SL_TRY_CONNECT_TIMEOUT || f == SL_TRY_TIMEOUT ? 504 : 502;
        copy_cstr(t->state, sizeof(t->state), "failed");
    }
}

/* The client's answer when the tries end with failure f. */
static void
fail_with(sl_proxy_t *p, sl_try_failure_t f)
{
    switch (f) {
    case SL_TRY_CONNECT_TIMEOUT:
    case SL_TRY_TIMEOUT:
        gateway_timeout(p, SL_REQERR_UPSTREAM_TIMEOUT);
        return;
    case SL_TRY_CONNECT_FAILED:
        bad_gateway(p, SL_REQERR_UPSTREAM_CONNECT);
        return;
    case SL_TRY_INVALID_RESPONSE:
        bad_gateway(p, SL_REQERR_UPSTREAM_PROTOCOL);
        return;
    case SL_TRY_STATUS: /* the plugin discarded the answer, then gave up */
        bad_gateway(p, SL_REQERR_PLUGIN);
        return;
    default:
        bad_gateway(p, SL_REQERR_UPSTREAM_RESET);
        return;
    }
}

/* May a try that failed with f be followed by another?  Only while nothing
 * reached the client, the budget lasts and the request can be sent again
 * whole (a streamed body only before its head went out).  Without a
 * balancer callback the target cannot change, so only connection failures
 * that another attempt may fix go again (Kong's default: error and
 * timeout while connecting; not TLS, not an unknown name). */
static int
may_try_again(const sl_proxy_t *p, sl_try_failure_t f)
{
    const sl_req_t *r = p->r;

    if (r->head_sent || r->resp_bytes || p->body_sent || p->retries_used >= r->retries)
        return 0;
    if (r->stream_body && p->head_written)
        return 0;
    if (!p->balanced && f != SL_TRY_STATUS) /* STATUS: a plugin asked for it */
        return (f == SL_TRY_CONNECT_FAILED || f == SL_TRY_CONNECT_TIMEOUT) &&
               p->up_err != SL_UPERR_TLS && p->up_err != UV_EAI_NONAME;
    return 1;
}

/* The per-try state back to "nothing happened yet". */
static void
try_reset(sl_proxy_t *p)
{
    sl_req_t *r = p->r;

    sl_lazy_timer_stop(&p->timer_due);
    p->got_bytes = p->wrote = p->written = 0;
    p->headers_done = p->complete = p->paused = p->reading = 0;
    p->discard = p->ninterim = p->up_err = p->reused = 0;
    p->head_deadline = 0;
    sl_hdr_accum_reset(&p->hdr);
    r->retry_asked = 0;
    r->hold_head = 0; /* the next response's header_filter decides again */
    r->held_len = 0;
}

/* The current try failed (f; status for SL_TRY_STATUS) before anything
 * reached the client: record it and, if may_try_again, release its
 * connection and start the next try (balancer phase first).  1 = the
 * request goes on (or was answered by the balancer phase), 0 = the caller
 * fails the request as it would without retries. */
static int
try_failed(sl_proxy_t *p, sl_try_failure_t f, int status)
{
    sl_req_t *r = p->r;
    int may_have_reached = f == SL_TRY_STATUS || p->wrote;
    int reused = p->reused; /* 0 after a failed connect (try_reset) */

    try_mark(r, f, status);
    if (!may_try_again(p, f))
        return 0;
    if (p->c) {
        sl_upconn_release(p->c, 0);
        p->c = NULL;
    }
    try_reset(p);
    p->retries_used++;
    sl_log_info("upstream %s:%d: try %d failed (%s), trying again (%d of %d retries), request %s",
                p->host, p->port, p->retries_used,
                f == SL_TRY_STATUS ? "response rejected by a plugin" : "no response",
                p->retries_used, r->retries, r->id);
    next_try(p, f, status, may_have_reached, reused);
    return 1;
}

/* ---- teardown ------------------------------------------------------- */

/* What one request's exchange holds beyond the proxy itself. */
static void
proxy_clear(sl_proxy_t *p)
{
    bodyq_free(&p->bq_head);
    p->bq_tail = NULL;
    free(p->inflight);
    p->inflight = NULL;
    bodyq_free(&p->sent);
    bodyq_free(&p->resend);
    free(p->head);
    p->head = NULL;
}

static void
proxy_free_cb(uv_handle_t *h)
{
    sl_proxy_t *p = h->data;

    proxy_clear(p);
    sl_hdr_accum_free(&p->hdr);
    free(p->host);
    free(p);
}

/* The target host of this try, kept NUL-terminated in the proxy's buffer. */
static void
proxy_host(sl_proxy_t *p, const char *host, size_t len)
{
    if (len + 1 > p->host_cap) {
        p->host_cap = len + 1 < 64 ? 64 : len + 1;
        free(p->host);
        p->host = sl_xmalloc(p->host_cap);
    }
    memcpy(p->host, host, len);
    p->host[len] = '\0';
}

/* The loop's check phase: no callback that ended an exchange is running
 * any more, so the retired proxies may serve new requests. */
static void
proxy_check_cb(uv_check_t *h)
{
    sl_server_t *w = h->data;

    while (w->proxy_retired != NULL) {
        sl_proxy_t *p = w->proxy_retired;
        w->proxy_retired = p->next_kept;
        p->next_kept = w->proxy_kept;
        w->proxy_kept = p;
    }
    uv_check_stop(h);
}

/* A proxy for r: a kept one, or a new one with its timer. */
static sl_proxy_t *
proxy_take(sl_req_t *r)
{
    sl_server_t *w = r->w;
    sl_proxy_t *p = w->proxy_kept;

    if (p != NULL) {
        w->proxy_kept = p->next_kept;
        w->nproxy_kept--;
        memset(p, 0, offsetof(sl_proxy_t, w));
        p->next_kept = NULL;
        uv_ref((uv_handle_t *)&p->timer);
    } else {
        p = sl_xcalloc(1, sizeof(*p));
        p->w = w;
        uv_timer_init(w->loop, &p->timer);
        p->timer.data = p;
    }
    p->timer_due = SL_LAZY_TIMER_OFF;
    return p;
}

/* The exchange is over: keep the proxy for a later request, or close it. */
static void
proxy_retire(sl_proxy_t *p)
{
    sl_server_t *w = p->w;

    proxy_clear(p);
    sl_lazy_timer_stop(&p->timer_due); /* an armed firing does nothing */
    if (w->nproxy_kept >= SL_PROXY_KEEP || p->hdr.cap > SL_PROXY_HDR_KEEP) {
        uv_close((uv_handle_t *)&p->timer, proxy_free_cb);
        return;
    }
    if (!w->proxy_check_on) {
        uv_check_init(w->loop, &w->proxy_check);
        uv_unref((uv_handle_t *)&w->proxy_check);
        w->proxy_check.data = w;
        w->proxy_check_on = 1;
    }
    sl_hdr_accum_reset(&p->hdr);
    uv_unref((uv_handle_t *)&p->timer); /* a kept proxy keeps no loop alive */
    p->next_kept = w->proxy_retired;
    w->proxy_retired = p;
    w->nproxy_kept++; /* counted from the retirement on */
    uv_check_start(&w->proxy_check, proxy_check_cb);
}

void
sl_proxy_keep_free(sl_server_t *w)
{
    sl_proxy_t *lists[2] = {w->proxy_kept, w->proxy_retired};

    for (int i = 0; i < 2; i++) {
        for (sl_proxy_t *p = lists[i], *n; p != NULL; p = n) {
            n = p->next_kept;
            uv_close((uv_handle_t *)&p->timer, proxy_free_cb);
        }
    }
    w->proxy_kept = w->proxy_retired = NULL;
    w->nproxy_kept = 0;
    if (w->proxy_check_on && !uv_is_closing((uv_handle_t *)&w->proxy_check))
        uv_close((uv_handle_t *)&w->proxy_check, NULL);
    w->proxy_check_on = 0;
}

/* A try that ends before it connected names its target by address too
 * (Kong's tries) when the host is one; a connected try has the peer's. */
static void
try_name_target(const sl_proxy_t *p, sl_try_t *t)
{
    unsigned char addr[16];

    if (p->host != NULL && inet_pton(strchr(p->host, ':') ? AF_INET6 : AF_INET, p->host, addr) == 1)
        copy_cstr(t->ip, sizeof(t->ip), p->host);
}

/* Detach from the request and release everything. */
static void
proxy_close(sl_proxy_t *p, int reuse)
{
    if (p->pick.b) { /* the request's last try is over */
        sl_req_t *r = p->r;
        int64_t rtt = r && r->ntries && p->complete
                          ? sl_turn_now_us() - r->tries[r->ntries - 1].start_us
                          : -1;
        sl_balancer_done(&p->pick, rtt);
    }
    if (p->pending) {
        sl_upconnect_cancel(p->pending);
        p->pending = NULL;
        if (p->r != NULL && p->r->ntries > 0)
            try_name_target(p, &p->r->tries[p->r->ntries - 1]);
    }
    if (p->c) {
        sl_upconn_release(p->c, reuse);
        p->c = NULL;
    }
    if (p->r) {
        if (p->client_paused && p->r->conn)
            sl_conn_resume_read(p->r->conn);
        p->r->proxy = NULL;
        p->r = NULL;
    }
    proxy_retire(p);
}

void
sl_proxy_cancel(sl_proxy_t *p)
{
    proxy_close(p, 0);
}

void
sl_proxy_pause(sl_proxy_t *p)
{
    if (p->c && p->reading) {
        sl_upconn_read_stop(p->c);
        p->reading = 0;
        p->paused = 1;
    }
}

static void on_up_read(void *arg, const char *data, ssize_t n);

void
sl_proxy_resume(sl_proxy_t *p)
{
    if (p->c && p->paused) {
        p->paused = 0;
        if (sl_upconn_read_start(p->c, on_up_read, p) == 0)
            p->reading = 1;
    }
}

static void
proxy_fail(sl_proxy_t *p, sl_req_error_t err, int status, const char *msg)
{
    sl_req_t *r = p->r;

    proxy_close(p, 0);
    if (r == NULL)
        return;
    if (r->err == SL_REQERR_NONE)
        r->err = err;
    if (r->head_sent || r->hold_head)
        sl_req_resp_end(r, err); /* the response began: filters end it */
    else
        sl_req_error_response(r, status, msg);
}

/* ---- timers --------------------------------------------------------- */

static void
on_timeout(uv_timer_t *t)
{
    sl_proxy_t *p = t->data;

    if (sl_lazy_timer_early(t, &p->timer_due))
        return;
    if (p->r)
        sl_log_warn("upstream timed out (%s:%d) while %s, request %s", p->host, p->port,
                    p->headers_done ? "reading the response body" : "waiting for the response",
                    p->r->id);
    if (!p->headers_done)
        sl_balancer_report(&p->pick, SL_BAL_TIMEOUT, 0);
    if (p->r && !p->headers_done && try_failed(p, SL_TRY_TIMEOUT, 0))
        return;
    gateway_timeout(p, SL_REQERR_UPSTREAM_TIMEOUT);
}

static void
timer_arm(sl_proxy_t *p, int ms)
{
    if (ms > 0)
        sl_lazy_timer_start(&p->timer, &p->timer_due, on_timeout, (uint64_t)ms);
}

/* The response head is bounded as a whole by read_timeout (nginx and Kong
 * bound each read; a head dripping in would never hit that): the clock
 * starts when the request is written or when the first byte of the head
 * arrives, whichever comes first, and no later read, write or wait for
 * a streaming client moves it.  Each interim (1xx) head starts it again.
 * Starts the clock if needed; the ms left (at least 1), 0 without a
 * read timeout. */
static int
head_left(sl_proxy_t *p)
{
    int ms = svc_timeout(p->r, SL_TIMEOUT_READ);
    uint64_t now = uv_now(p->timer.loop);

    if (ms <= 0)
        return 0;
    if (p->head_deadline == 0)
        p->head_deadline = now + (uint64_t)ms;
    return p->head_deadline > now ? (int)(p->head_deadline - now) : 1;
}

/* A write in flight on this try (its write_timeout timer is running). */
static int
writing(const sl_proxy_t *p)
{
    return p->r->stream_body ? p->inflight != NULL || p->resend != NULL : !p->written;
}

/* Waiting for the head with nothing being written: the head's clock. */
static void
head_wait(sl_proxy_t *p)
{
    if (!p->headers_done && !writing(p))
        timer_arm(p, head_left(p));
}

/* write_timeout, but no later than the head's deadline once it runs. */
static int
write_ms(sl_proxy_t *p)
{
    int ms = svc_timeout(p->r, SL_TIMEOUT_WRITE);

    if (p->head_deadline && !p->headers_done) {
        int left = head_left(p);
        if (left > 0 && (ms <= 0 || left < ms))
            ms = left;
    }
    return ms;
}

/* ---- response parsing ------------------------------------------------ */

static void
header_flush(sl_proxy_t *p)
{
    sl_req_t *r = p->r;
    sl_str_t name, value;

    if (sl_hdr_accum_take(&p->hdr, &name, &value) && !sl_header_is_hop_by_hop(name))
        sl_headers_add(&r->resp_headers, r->pool, name, value);
}

static int
head_grow(sl_proxy_t *p, size_t add)
{
    if ((p->hdr_bytes += add) > SL_UPSTREAM_HEAD_MAX) {
        llhttp_set_error_reason(&p->parser, "response head too large");
        return HPE_USER;
    }
    return 0;
}

static int
on_h_field(llhttp_t *ps, const char *at, size_t len)
{
    sl_proxy_t *p = ps->data;
    if (p->hdr.in_value)
        header_flush(p);
    if (sl_hdr_accum_empty(&p->hdr)) { /* a new line */
        if (++p->hdr_lines > SL_UPSTREAM_HEADER_LINES_MAX) {
            llhttp_set_error_reason(ps, "too many response headers");
            return HPE_USER;
        }
        if (head_grow(p, 4))
            return HPE_USER;
    }
    if (head_grow(p, len))
        return HPE_USER;
    sl_hdr_accum_field(&p->hdr, at, len);
    return 0;
}

static int
on_h_value(llhttp_t *ps, const char *at, size_t len)
{
    sl_proxy_t *p = ps->data;
    if (head_grow(p, len))
        return HPE_USER;
    sl_hdr_accum_value(&p->hdr, at, len);
    return 0;
}

static int
on_h_complete(llhttp_t *ps)
{
    sl_proxy_t *p = ps->data;
    sl_req_t *r = p->r;
    int status = llhttp_get_status_code(ps);

    header_flush(p);
    if (status < 100 || status > 599) {
        /* llhttp takes any three digits ("099", "600"): forwarding one
         * would leave the client unable to frame the response */
        llhttp_set_error_reason(ps, "response status outside 100-599");
        return -1;
    }
    if (status == 101) {
        llhttp_set_error_reason(ps, "101 Switching Protocols without an upgrade asked for");
        return -1;
    }
    if (status < 200) { /* interim: pass on, keep parsing for the final one */
        if (++p->ninterim > SL_UPSTREAM_INTERIM_MAX) {
            llhttp_set_error_reason(ps, "too many interim responses");
            return -1;
        }
        sl_req_resp_interim(r, status);
        r->resp_headers.n = 0;
        p->head_deadline = 0; /* the final head gets its own read_timeout */
        head_wait(p);
        /* RFC 9112 6.3: a 1xx ends at its empty line whatever its framing
         * headers say; llhttp skips a body on its own only after a 100 */
        return 1;
    }
    r->status = status;
    r->upstream_status = status;
    p->headers_done = 1;
    sl_balancer_report(&p->pick, SL_BAL_HTTP, status);
    if (p->set_cookie)
        sl_headers_add(&r->resp_headers, r->pool, SL_STR("Set-Cookie"), sl_str_c(p->set_cookie));
    /* Headers named in Connection are hop-by-hop too; they were kept in
     * resp_headers only if not in the fixed list. */
    timer_arm(p, svc_timeout(r, SL_TIMEOUT_READ));
    int rc = sl_req_resp_headers(r);
    if (p->r == NULL)
        return HPE_USER; /* client vanished meanwhile */
    if (rc == SL_AGAIN)
        p->discard = 1; /* parsed on (to drain it) but never forwarded */
    else
        release_body(p);
    return SL_STR_EQ(r->method, "HEAD") ? 1 : 0;
}

static int
on_h_begin(llhttp_t *ps)
{
    sl_proxy_t *p = ps->data;
    sl_hdr_accum_reset(&p->hdr);
    p->hdr_bytes = 0;
    p->hdr_lines = 0;
    return 0;
}

static int
on_r_body(llhttp_t *ps, const char *at, size_t len)
{
    sl_proxy_t *p = ps->data;
    if (p->r == NULL)
        return HPE_USER;
    if (p->discard)
        return 0;
    sl_req_resp_body(p->r, at, len);
    return p->r == NULL ? HPE_USER : 0;
}

static int
on_r_complete(llhttp_t *ps)
{
    sl_proxy_t *p = ps->data;
    if (p->headers_done) {
        p->complete = 1;
        return HPE_PAUSED;
    }
    return 0;
}

static void
response_complete(sl_proxy_t *p, int reusable)
{
    sl_req_t *r = p->r;

    sl_req_mark(r, SL_TIME_UPSTREAM_LAST_BYTE);
    proxy_close(p, reusable);
    sl_req_resp_end(r, SL_REQERR_NONE);
}

static void
on_up_read(void *arg, const char *data, ssize_t n)
{
    sl_proxy_t *p = arg;
    sl_req_t *r = p->r;

    if (r == NULL)
        return;
    if (n < 0) {
        p->reading = 0;
        if (p->headers_done && n == UV_EOF) {
            /* close-delimited body ends here */
            llhttp_errno_t fe = llhttp_finish(&p->parser);
            if (fe == HPE_OK || p->complete) {
                response_complete(p, 0);
                return;
            }
        }
        if (retry_fresh(p))
            return; /* stale keep-alive connection, and the rule allows it */
        if (!p->headers_done)
            sl_balancer_report(&p->pick, SL_BAL_TCP, 0);
        sl_log_warn("upstream %s:%d closed the connection %s: %s, request %s", p->host, p->port,
                    p->headers_done ? "mid-response" : "before responding", uv_strerror((int)n),
                    r->id);
        if (!p->headers_done && try_failed(p, SL_TRY_RESET, 0))
            return;
        bad_gateway(p, SL_REQERR_UPSTREAM_RESET);
        return;
    }
    if (!p->got_bytes) {
        p->got_bytes = 1;
        if (!p->headers_done)
            head_left(p); /* the head's clock runs from its first byte */
        sl_req_mark(r, SL_TIME_UPSTREAM_FIRST_BYTE);
        bodyq_free(&p->sent); /* no keep-alive-race resend once the upstream answers */
        p->sent_bytes = 0;
    }
    /* Everything this read produces for the client (head, body, the last
     * chunk) leaves in one write. */
    sl_conn_t *cc = r->conn;
    if (cc)
        sl_conn_cork(cc);
    llhttp_errno_t err = llhttp_execute(&p->parser, data, (size_t)n);
    sl_hdr_accum_settle(&p->hdr); /* the read buffer goes back */
    if (p->r == NULL) {
        if (cc)
            sl_conn_uncork(cc);
        return; /* client aborted from a callback */
    }
    if (p->discard) {
        /* a header_filter rejected this response (api->upstream_retry):
         * keep the connection only if the whole response was in what we
         * read, else close it; then the next try */
        if (cc)
            sl_conn_uncork(cc);
        int reusable = err == HPE_PAUSED && p->complete && llhttp_should_keep_alive(&p->parser) &&
                       llhttp_get_error_pos(&p->parser) == data + n;
        sl_upconn_release(p->c, reusable);
        p->c = NULL;
        if (!try_failed(p, SL_TRY_STATUS, r->upstream_status))
            bad_gateway(p, SL_REQERR_PLUGIN); /* api->upstream_retry checked: not reached */
        return;
    }
    if (err == HPE_PAUSED && p->complete) {
        const char *pos = llhttp_get_error_pos(&p->parser);
        int reusable = llhttp_should_keep_alive(&p->parser) && pos == data + n;
        response_complete(p, reusable);
        if (cc)
            sl_conn_uncork(cc);
        return;
    }
    if (cc)
        sl_conn_uncork(cc);
    if (err != HPE_OK) {
        sl_log_warn("invalid response from upstream %s:%d: %s, request %s", p->host, p->port,
                    llhttp_get_error_reason(&p->parser) ? llhttp_get_error_reason(&p->parser)
                                                        : llhttp_errno_name(err),
                    r->id);
        if (!p->headers_done && try_failed(p, SL_TRY_INVALID_RESPONSE, 0))
            return;
        bad_gateway(p, SL_REQERR_UPSTREAM_PROTOCOL);
        return;
    }
    if (p->headers_done)
        timer_arm(p, svc_timeout(r, SL_TIMEOUT_READ));
    else
        head_wait(p);
}

/* ---- sending ---------------------------------------------------------- */

static void
on_written(void *arg, int status)
{
    sl_proxy_t *p = arg;
    sl_req_t *r = p->r;

    if (r == NULL)
        return;
    if (status < 0) {
        if (p->c && retry_fresh(p))
            return;
        if (p->got_bytes)
            return; /* the response is already coming */
        sl_log_warn("writing to upstream %s:%d failed: %s, request %s", p->host, p->port,
                    uv_strerror(status), r->id);
        if (try_failed(p, SL_TRY_WRITE_FAILED, 0))
            return;
        bad_gateway(p, SL_REQERR_UPSTREAM_RESET);
        return;
    }
    if (r->stream_body) {
        if (p->inflight) {
            /* keep it for a retry until the upstream answers, within bounds */
            if (!p->body_sent && !p->got_bytes &&
                p->sent_bytes + p->inflight->len <= SL_BODYQ_HIGH) {
                sl_bodyq_t **tail = &p->sent;
                while (*tail)
                    tail = &(*tail)->next;
                p->inflight->next = NULL;
                *tail = p->inflight;
                p->sent_bytes += p->inflight->len;
            } else {
                free(p->inflight);
                bodyq_free(&p->sent);
                p->sent_bytes = 0;
                p->body_sent = 1;
            }
            p->inflight = NULL;
        }
        if (!p->end_written) {
            stream_flush(p);
            return;
        }
    }
    sl_req_mark(r, SL_TIME_UPSTREAM_SENT);
    p->written = 1;
    release_body(p);
    head_wait(p);
}

/* Write to the upstream connection.  A write refused on the spot sent
 * nothing: the request may go again on another connection (retry_fresh),
 * else it fails.  Returns 0 when the write is under way. */
static int
upstream_write(sl_proxy_t *p, const uv_buf_t *bufs, unsigned nbufs)
{
    if (sl_upconn_write(p->c, bufs, nbufs, on_written, p) == 0) {
        p->wrote = 1;
        return 0;
    }
    if (!retry_fresh(p) && !try_failed(p, SL_TRY_WRITE_FAILED, 0))
        bad_gateway(p, SL_REQERR_UPSTREAM_RESET);
    return -1;
}

/* Write what is queued of a streamed body: one write in flight at a time,
 * queued pieces joined (and chunk-framed when the client sent chunked). */
static void
stream_flush(sl_proxy_t *p)
{
    sl_req_t *r = p->r;
    size_t total = 0, off = 0;
    sl_bodyq_t *w;

    if (p->c == NULL || p->inflight)
        return;
    if (p->resend) { /* after a retry: old bytes first */
        w = p->resend;
        p->resend = w->next;
        w->next = NULL;
        p->inflight = w;
        timer_arm(p, write_ms(p));
        uv_buf_t rb = uv_buf_init(w->data, (unsigned)w->len);
        upstream_write(p, &rb, 1);
        return;
    }
    if (p->end_written)
        return;
    int last = p->body_end;
    if (p->head_written && p->bq_bytes == 0 && !last) {
        /* waiting for the client: its body timeout applies, and the
         * head's clock if the upstream has begun to answer */
        if (!p->headers_done) {
            if (p->head_deadline)
                timer_arm(p, head_left(p));
            else
                sl_lazy_timer_stop(&p->timer_due);
        }
        return;
    }
    total = (p->head_written ? 0 : p->head_len) + p->bq_bytes +
            (r->req_chunked ? 24 + (last ? 5 : 0) : 0);
    timer_arm(p, write_ms(p));
    w = sl_xmalloc(sizeof(*w) + total + 1);
    if (!p->head_written) {
        memcpy(w->data, p->head, p->head_len);
        off = p->head_len;
        p->head_written = 1;
    }
    if (p->bq_bytes) {
        if (r->req_chunked)
            off += (size_t)sprintf(w->data + off, "%zx\r\n", p->bq_bytes);
        for (sl_bodyq_t *q = p->bq_head, *n; q; q = n) {
            n = q->next;
            memcpy(w->data + off, q->data, q->len);
            off += q->len;
            free(q);
        }
        if (r->req_chunked) {
            memcpy(w->data + off, "\r\n", 2);
            off += 2;
        }
        p->bq_head = p->bq_tail = NULL;
        p->bq_bytes = 0;
    }
    if (last) {
        if (r->req_chunked) {
            memcpy(w->data + off, "0\r\n\r\n", 5);
            off += 5;
        }
        p->end_written = 1;
    }
    if (p->client_paused && r->conn) {
        p->client_paused = 0;
        sl_conn_resume_read(r->conn);
    }
    if (off == 0) {
        free(w);
        if (last)
            on_written(p, 0);
        return;
    }
    w->len = off;
    p->inflight = w;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)off);
    upstream_write(p, &b, 1);
}

void
sl_proxy_body(sl_proxy_t *p, const char *data, size_t len)
{
    sl_bodyq_t *q;

    if (len == 0 || p->r == NULL)
        return;
    q = sl_xmalloc(sizeof(*q) + len);
    q->next = NULL;
    q->len = len;
    memcpy(q->data, data, len);
    if (p->bq_tail)
        p->bq_tail->next = q;
    else
        p->bq_head = q;
    p->bq_tail = q;
    p->bq_bytes += len;
    if (p->bq_bytes > SL_BODYQ_HIGH && !p->client_paused && p->r->conn) {
        p->client_paused = 1; /* the upstream is slower than the client */
        sl_conn_pause_read(p->r->conn);
    }
    stream_flush(p);
}

void
sl_proxy_body_end(sl_proxy_t *p)
{
    if (p->r == NULL)
        return;
    p->body_end = 1;
    stream_flush(p);
}

/* llhttp's callbacks for an upstream response. */
static const llhttp_settings_t resp_settings = {
    .on_message_begin = on_h_begin,
    .on_header_field = on_h_field,
    .on_header_value = on_h_value,
    .on_headers_complete = on_h_complete,
    .on_body = on_r_body,
    .on_message_complete = on_r_complete,
};

static void
on_connected(void *arg, sl_upconn_t *c, int status, const char *errmsg)
{
    sl_proxy_t *p = arg;
    sl_req_t *r = p->r;
    sl_try_t *t = &r->tries[r->ntries - 1]; /* try_connect added it */

    p->pending = NULL;
    t->latency_us = sl_turn_now_us() - t->start_us;
    if (status < 0) {
        int timeout = status == UV_ETIMEDOUT;
        try_name_target(p, t);
        t->failed = 1;
        t->code = timeout ? 504 : 502;
        copy_cstr(t->state, sizeof(t->state), "failed");
        sl_balancer_report(&p->pick, timeout ? SL_BAL_TIMEOUT : SL_BAL_TCP, 0);
        sl_log_warn("connecting to upstream %s:%d failed (try %d): %s, request %s", p->host,
                    p->port, p->tries, errmsg ? errmsg : uv_strerror(status), r->id);
        p->up_err = status;
        if (try_failed(p, timeout ? SL_TRY_CONNECT_TIMEOUT : SL_TRY_CONNECT_FAILED, 0))
            return;
        if (timeout)
            gateway_timeout(p, SL_REQERR_UPSTREAM_TIMEOUT);
        else
            bad_gateway(p, SL_REQERR_UPSTREAM_CONNECT);
        return;
    }
    p->c = c;
    p->got_bytes = 0;
    p->wrote = 0;
    p->reused = sl_upconn_reused(c);
    copy_cstr(t->ip, sizeof(t->ip), sl_upconn_peer_ip(c));
    t->port = sl_upconn_peer_port(c);
    if (!r->times[SL_TIME_UPSTREAM_CONNECTED] || sl_upconn_reused(c))
        sl_req_mark(r, SL_TIME_UPSTREAM_CONNECTED);
    llhttp_init(&p->parser, HTTP_RESPONSE, &resp_settings);
    p->parser.data = p;
    p->headers_done = 0;
    p->head_deadline = 0;
    r->resp_headers.n = 0;

    if (r->stream_body) {
        if (sl_upconn_read_start(c, on_up_read, p) < 0) {
            bad_gateway(p, SL_REQERR_UPSTREAM_RESET);
            return;
        }
        p->reading = 1;
        timer_arm(p, write_ms(p));
        stream_flush(p);
        return;
    }
    uv_buf_t b[2] = {uv_buf_init(p->head, (unsigned)p->head_len),
                     uv_buf_init(r->body ? r->body : "", (unsigned)r->body_len)};
    if (upstream_write(p, b, r->body_len ? 2 : 1) < 0)
        return;
    if (sl_upconn_read_start(c, on_up_read, p) < 0) {
        bad_gateway(p, SL_REQERR_UPSTREAM_RESET);
        return;
    }
    p->reading = 1;
    timer_arm(p, write_ms(p));
}

static void build_head(sl_proxy_t *p);

/* Kong's balancer for a service whose host names an upstream: the target
 * of this try (another one than the tries before, while there is one, as
 * the algorithm allows).  0, or -1 when no target is available (answered
 * 503 as Kong). */
static int
pick_target(sl_proxy_t *p)
{
    int t = sl_balancer_next(&p->pick);
    const sl_target_conf_t *tc;

    if (t < 0) {
        sl_log_warn("upstream %s: no target available (all unhealthy or weight 0), request %s",
                    p->ups->name, p->r->id);
        proxy_fail(p, SL_REQERR_UPSTREAM_CONNECT, 503,
                   p->tries ? "The upstream server is currently unavailable"
                            : "failure to get a peer from the ring-balancer");
        return -1;
    }
    tc = &p->ups->targets[t];
    /* one of the target's addresses (Kong's balancer entry), or its host */
    if (p->pick.host[0])
        proxy_host(p, p->pick.host, strlen(p->pick.host));
    else
        proxy_host(p, tc->host, strlen(tc->host));
    p->target_host = tc->host;
    p->port = p->pick.port;
    if (!p->head_written) { /* the Host header names the target */
        free(p->head);
        build_head(p);
    }
    return 0;
}

static void
try_connect(sl_proxy_t *p)
{
    sl_req_t *r = p->r;
    /* core target selection first; a plugin that pointed the request
     * elsewhere (another host than the upstream's name) wins */
    if (p->ups && !p->keep_target && sl_str_caseeq(r->up_host, sl_str_c(p->ups->name))) {
        if (pick_target(p) < 0)
            return;
    } else if (p->head == NULL) {
        build_head(p);
    }
    p->keep_target = 0;
    sl_upstream_target_t t = {
        .tls = p->tls,
        .host = p->host,
        .tls_name = p->target_host && strcmp(p->target_host, p->host) != 0 ? p->target_host : NULL,
        .port = p->port,
        .tls_verify = r->service ? r->service->tls_verify != 0 : 1,
        .connect_timeout_ms = svc_timeout(r, SL_TIMEOUT_CONNECT),
    };
    sl_try_t *try = sl_req_add_try(r);
    try->start_us = sl_turn_now_us();
    try->port = p->port;
    p->tries++;
    sl_lazy_timer_stop(&p->timer_due);
    if (sl_upconnect_start(r->w->uppool, &t, on_connected, p, &p->pending) < 0) {
        p->pending = NULL;
        try_name_target(p, try);
        bad_gateway(p, SL_REQERR_UPSTREAM_CONNECT);
    }
}

/* ---- the request head ---------------------------------------------- */

static int
default_port(const sl_proxy_t *p, int port)
{
    return (p->tls && port == 443) || (!p->tls && port == 80);
}

static void
build_head(sl_proxy_t *p)
{
    sl_req_t *r = p->r;
    sl_conn_t *c = r->conn;
    sl_strbuf_t b = {0};
    const sl_header_t *xff = NULL, *via = NULL;
    char num[SL_FMT_DEC_MAX + 1];

    SL_STRBUF_STR(&b, r->method);
    SL_STRBUF_LIT(&b, " ");
    SL_STRBUF_STR(&b, r->up_path);
    if (r->up_has_query || r->up_query.len) {
        SL_STRBUF_LIT(&b, "?");
        SL_STRBUF_STR(&b, r->up_query);
    }
    r->upstream_uri = sl_pstrndup(r->pool, b.p + r->method.len + 1, b.len - r->method.len - 1);
    SL_STRBUF_LIT(&b, " HTTP/1.1\r\nHost: ");
    const sl_header_t *host = sl_headers_get(&r->headers, SL_STR("host"));
    const char *th = p->target_host ? p->target_host : p->host;
    if (r->route && r->route->preserve_host && host) {
        SL_STRBUF_STR(&b, host->value);
    } else {
        if (p->ups && p->ups->host_header)
            sl_strbuf_add(&b, p->ups->host_header, strlen(p->ups->host_header));
        else if (p->ups && strchr(th, ':')) { /* an IPv6 target */
            SL_STRBUF_LIT(&b, "[");
            sl_strbuf_add(&b, th, strlen(th));
            SL_STRBUF_LIT(&b, "]");
        } else if (p->ups)
            sl_strbuf_add(&b, th, strlen(th));
        else
            SL_STRBUF_STR(&b, r->up_host);
        if (!default_port(p, p->port)) {
            num[0] = ':';
            sl_strbuf_add(&b, num, 1 + sl_fmt_i64(num + 1, p->port));
        }
    }
    SL_STRBUF_LIT(&b, "\r\n");
    /* the fields a Connection header names are hop-by-hop too: looked up
     * per field only when there is one (else a walk of the list per field) */
    const int conn_tokens = sl_headers_get(&r->headers, SL_STR("connection")) != NULL;
    for (size_t i = 0; i < r->headers.n; i++) {
        const sl_header_t *h = &r->headers.items[i];
        if (sl_header_is_hop_by_hop(h->name) || sl_str_caseeq(h->name, SL_STR("host")) ||
            sl_str_caseeq(h->name, SL_STR("content-length")) ||
            sl_str_caseeq(h->name, SL_STR("expect")) ||
            (conn_tokens && sl_headers_has_token(&r->headers, SL_STR("connection"), h->name)))
            continue;
        if (sl_str_caseeq(h->name, SL_STR("x-forwarded-for"))) {
            xff = h;
            continue;
        }
        /* (two bytes first: an auth plugin's X-Consumer-* are not) */
        if (h->name.len > 12 && (h->name.ptr[2] | 0x20) == 'f' && h->name.ptr[1] == '-' &&
            strncasecmp(h->name.ptr, "x-forwarded-", 12) == 0)
            continue; /* replaced below (untrusted client) */
        if (sl_str_caseeq(h->name, SL_STR("x-real-ip")))
            continue;
        if (sl_str_caseeq(h->name, SL_STR("via"))) {
            via = h;
            continue;
        }
        SL_STRBUF_STR(&b, h->name);
        SL_STRBUF_LIT(&b, ": ");
        SL_STRBUF_STR(&b, h->value);
        SL_STRBUF_LIT(&b, "\r\n");
    }
    const char *cip = sl_conn_client_ip(c);
    SL_STRBUF_LIT(&b, "X-Forwarded-For: ");
    if (xff) {
        SL_STRBUF_STR(&b, xff->value);
        SL_STRBUF_LIT(&b, ", ");
    }
    sl_strbuf_add(&b, cip, strlen(cip));
    if (sl_conn_is_tls(c))
        SL_STRBUF_LIT(&b, "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: ");
    else
        SL_STRBUF_LIT(&b, "\r\nX-Forwarded-Proto: http\r\nX-Forwarded-Host: ");
    SL_STRBUF_STR(&b, r->host);
    SL_STRBUF_LIT(&b, "\r\nX-Forwarded-Port: ");
    sl_strbuf_add(&b, num, sl_fmt_i64(num, sl_conn_server_port(c)));
    SL_STRBUF_LIT(&b, "\r\nX-Forwarded-Path: ");
    SL_STRBUF_STR(&b, r->raw_path);
    SL_STRBUF_LIT(&b, "\r\nX-Real-IP: ");
    sl_strbuf_add(&b, cip, strlen(cip));
    /* RFC 9110 §7.6.3: add ourselves to Via (Kong does the same) */
    SL_STRBUF_LIT(&b, "\r\nVia: ");
    if (via) {
        SL_STRBUF_STR(&b, via->value);
        SL_STRBUF_LIT(&b, ", ");
    }
    SL_STRBUF_LIT(&b, "1.1 sluice/" SL_VERSION "\r\n");
    if (r->stream_body) {
        if (r->req_chunked) {
            SL_STRBUF_LIT(&b, "Transfer-Encoding: chunked\r\n");
        } else {
            SL_STRBUF_LIT(&b, "Content-Length: ");
            sl_strbuf_add(&b, num, sl_fmt_u64(num, r->req_content_length));
            SL_STRBUF_LIT(&b, "\r\n");
        }
    } else if (r->body_len || !SL_STR_EQ(r->method, "GET")) {
        if (r->body_len || SL_STR_EQ(r->method, "POST") || SL_STR_EQ(r->method, "PUT") ||
            SL_STR_EQ(r->method, "PATCH")) {
            SL_STRBUF_LIT(&b, "Content-Length: ");
            sl_strbuf_add(&b, num, sl_fmt_u64(num, r->body_len));
            SL_STRBUF_LIT(&b, "\r\n");
        }
    }
    SL_STRBUF_LIT(&b, "\r\n");
    p->head = b.p;
    p->head_len = b.len;
}

/* Kong's upstreams: does the host of this try name one?  A new one (the
 * first try, or a plugin chose another host) starts a new walk over its
 * targets; the same one goes on with its walk (the next target). */
static void
upstream_resolve(sl_proxy_t *p)
{
    sl_req_t *r = p->r;
    const sl_upstream_conf_t *u = sl_conf_upstream_find(r->w->conf, r->up_host);

    if (u != NULL && u == p->pick.u && p->ups == u)
        return;
    if (p->pick.b) {
        sl_balancer_done(&p->pick, -1);
        memset(&p->pick, 0, sizeof(p->pick));
    }
    p->ups = u;
    p->set_cookie = NULL;
    if (u) {
        sl_str_t v = {NULL, 0};
        if (u->algorithm == SL_LB_CONSISTENT_HASHING)
            v = sl_balance_hash_value(r, u, &p->set_cookie);
        if (sl_balancer_begin(r->w->balancers, u, &p->pick, v.ptr, v.len) < 0)
            p->ups = NULL; /* no balancer in this process (the plugin test host) */
    }
}

/* One try: the balancer phase (plugins may change target, headers and
 * body, or give up), then the head for what it chose, then connect.
 * f/status/may_have_reached/reused describe the previous try. */
static void
next_try(sl_proxy_t *p, sl_try_failure_t f, int status, int may_have_reached, int reused)
{
    sl_req_t *r = p->r;
    sl_try_info_t ti = {
        .try_number = p->retries_used + 1,
        .retries_left = r->retries - p->retries_used,
        .failure = f,
        .status = f == SL_TRY_STATUS ? status : 0,
        .may_have_reached = may_have_reached,
        .reused = reused,
    };
    sl_status_t st = SL_STATUS_CONTINUE;
    int ran = 0;

    if (f != SL_TRY_FIRST && r->ntries > 0) {
        const sl_try_t *prev = &r->tries[r->ntries - 1];
        if (prev->ip[0])
            ti.ip = sl_str_c(prev->ip);
        ti.port = prev->port;
    }
    if (r->w->phases->balancer && r->chain && r->chain->has_balancer)
        st = r->w->phases->balancer(r, &ti, &ran);
    if (f == SL_TRY_FIRST)
        p->balanced = ran > 0;
    if (st == SL_STATUS_RESPOND) {
        proxy_close(p, 0);
        sl_req_send_gateway(r);
        return;
    }
    if (st != SL_STATUS_CONTINUE) {
        if (f == SL_TRY_FIRST)
            proxy_fail(p, SL_REQERR_PLUGIN, 500, "An unexpected error occurred");
        else
            fail_with(p, f);
        return;
    }
    /* what is left of a rejected response was for the balancer phase */
    r->status = 0;
    r->resp_headers.n = 0;
    /* the target as the balancer phase left it */
    p->tls = SL_STR_EQ(r->up_scheme, "https");
    proxy_host(p, r->up_host.ptr, r->up_host.len);
    p->target_host = NULL;
    p->port = r->up_port;
    free(p->head);
    p->head = NULL; /* try_connect builds it, for the target it picks */
    upstream_resolve(p);
    try_connect(p);
}

void
sl_proxy_start(sl_req_t *r)
{
    sl_proxy_t *p = proxy_take(r);

    p->r = r;
    r->proxy = p;
    p->tls = SL_STR_EQ(r->up_scheme, "https");
    proxy_host(p, r->up_host.ptr, r->up_host.len);
    p->target_host = NULL;
    p->port = r->up_port;
    sl_req_mark(r, SL_TIME_UPSTREAM_START);
    next_try(p, SL_TRY_FIRST, 0, 0, 0);
}

int
sl_proxy_can_retry(const sl_proxy_t *p)
{
    const sl_req_t *r = p->r;

    return r && !p->discard && may_try_again(p, SL_TRY_STATUS);
}

int
sl_proxy_head_written(const sl_proxy_t *p)
{
    return p->head_written;
}
