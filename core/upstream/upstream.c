/* upstream.c - connections to upstream servers and the per-worker
 * keep-alive pool: reading, writing, releasing, idle watching.  Getting a
 * new connection (DNS, connect, TLS handshake) is upconnect.c.
 *
 * Lifetimes, because libuv frees nothing for us:
 *  - a connection owns two handles (socket, timer) and is freed in the
 *    close callback of the last one; `closing` is set the moment we decide
 *    to close, and every libuv callback that still arrives (ECANCELED
 *    writes, a late connect) checks it and stays silent;
 *  - a connect in progress owns one timer and is freed in its close
 *    callback, so a late DNS/connect/handshake event can never reach a
 *    caller who cancelled or already got an answer;
 *  - idle connections keep reading: data or EOF on an idle connection means
 *    the peer closed it (or talks out of turn), so it is closed before
 *    anyone can be handed a dead socket. */

#include "base/lazytimer.h"
#include "base/log.h"
#include "base/time.h"
#include "upstream/upstream_int.h"

/* ---- completed writes: callbacks from the loop, never from inside
 * sl_upconn_write (the contract), without uv_write's POLLOUT round trip,
 * which costs an epoll_ctl per request ---- */

#define SL_UPWRITE_KEEP 16 /* write records kept per pool */

/* A write record for c, every field set (a kept one when there is one). */
static sl_upwrite_t *
upwrite_new(sl_upconn_t *c, sl_upconn_write_cb cb, void *arg, int user)
{
    sl_uppool_t *pool = c->pool;
    sl_upwrite_t *w;

    if (pool != NULL && pool->wfree != NULL) {
        w = pool->wfree;
        pool->wfree = w->dnext;
        pool->nwfree--;
    } else {
        w = sl_xmalloc(sizeof(*w));
    }
    w->c = c;
    w->cb = cb;
    w->arg = arg;
    w->owned = NULL;
    w->user = user;
    w->dnext = NULL;
    return w;
}

/* w is done: kept for the next write by pool (NULL: freed). */
static void
upwrite_free(sl_uppool_t *pool, sl_upwrite_t *w)
{
    if (pool == NULL || pool->nwfree >= SL_UPWRITE_KEEP) {
        free(w);
        return;
    }
    w->dnext = pool->wfree;
    pool->wfree = w;
    pool->nwfree++;
}

static void
done_run(uv_idle_t *h)
{
    sl_uppool_t *pool = h->data;
    sl_upwrite_t *w = pool->done_head, *next;

    pool->done_head = pool->done_tail = NULL;
    uv_idle_stop(h);
    for (; w != NULL; w = next) {
        next = w->dnext;
        if (w->c != NULL) {
            w->c->user_writes--;
            if (w->cb != NULL && !w->c->closing)
                w->cb(w->arg, 0);
        }
        upwrite_free(pool, w);
    }
}

static void
done_push(sl_uppool_t *pool, sl_upwrite_t *w)
{
    w->dnext = NULL;
    if (pool->done_tail)
        pool->done_tail->dnext = w;
    else
        pool->done_head = w;
    pool->done_tail = w;
    uv_idle_start(pool->done_idle, done_run);
}

/* c is going away or changing hands: its completed writes stay silent. */
static void
done_forget(sl_upconn_t *c)
{
    if (c->pool == NULL)
        return;
    for (sl_upwrite_t *w = c->pool->done_head; w != NULL; w = w->dnext) {
        if (w->c == c) {
            c->user_writes--;
            w->c = NULL;
        }
    }
}

static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* ---- pool ---- */

sl_uppool_t *
sl_uppool_new(uv_loop_t *loop, const sl_uppool_options_t *opts)
{
    sl_uppool_t *pool = sl_xcalloc(1, sizeof(*pool));

    pool->loop = loop;
    if (opts != NULL)
        pool->opts = *opts;
    else
        pool->opts.keepalive_max_idle = SL_UP_DEFAULT_MAX_IDLE;
    /* keepalive_max_idle 0 turns pooling off (as Kong's pool size 0);
     * the other fields take their default when 0. */
    if (pool->opts.keepalive_timeout_ms == 0)
        pool->opts.keepalive_timeout_ms = SL_UP_DEFAULT_KEEPALIVE_MS;
    if (pool->opts.dns == NULL) {
        char err[200];
        pool->dns = sl_dns_new(loop, NULL, err, sizeof(err));
        pool->own_dns = 1;
        if (pool->dns == NULL)
            sl_log_error("upstream pool: %s", err); /* connects to names then fail */
    } else {
        pool->dns = pool->opts.dns;
    }
    pool->tls = sl_tls_ctx_new();
    pool->done_idle = sl_xmalloc(sizeof(*pool->done_idle));
    uv_idle_init(loop, pool->done_idle);
    pool->done_idle->data = pool;
    return pool;
}

void
sl_uppool_free(sl_uppool_t *pool)
{
    sl_upconn_t *c;

    if (pool == NULL)
        return;
    while (pool->connects != NULL)
        sl_upconnect_cancel(pool->connects);
    while (pool->idle != NULL)
        sl_upc_close(pool->idle);
    /* Connections in use stay with their users and close on release. */
    while ((c = pool->busy) != NULL) {
        SL_LIST_REMOVE(c);
        c->pool = NULL;
    }
    for (sl_upwrite_t *w = pool->done_head, *n; w != NULL; w = n) {
        n = w->dnext;
        if (w->c != NULL)
            w->c->user_writes--;
        free(w);
    }
    for (sl_upwrite_t *w = pool->wfree, *n; w != NULL; w = n) {
        n = w->dnext;
        free(w);
    }
    pool->wfree = NULL;
    pool->nwfree = 0;
    uv_close((uv_handle_t *)pool->done_idle, (uv_close_cb)free);
    for (sl_upkey_t *k = pool->keys, *n; k != NULL; k = n) {
        n = k->next;
        free(k->host);
        free(k);
    }
    if (pool->own_dns)
        sl_dns_free(pool->dns);
    sl_tls_ctx_free(pool->tls);
    /* a buffer lent out right now (the pool freed from inside a read
     * callback) becomes its borrower's own */
    if (pool->rbuf_user != NULL) {
        free(pool->rbuf_user->rbuf);
        pool->rbuf_user->rbuf = pool->rbuf;
        pool->rbuf_user->lent_r = NULL;
        pool->rbuf = NULL;
    }
    if (pool->pbuf_user != NULL) {
        free(pool->pbuf_user->pbuf);
        pool->pbuf_user->pbuf = pool->pbuf;
        pool->pbuf_user->lent_p = NULL;
        pool->pbuf = NULL;
    }
    free(pool->rbuf);
    free(pool->pbuf);
    free(pool);
}

/* ---- connections ---- */

static void
conn_close_cb(uv_handle_t *h)
{
    sl_upconn_t *c = h->data;

    if (--c->open_handles > 0)
        return;
    sl_tls_free(c->tls);
    free(c->stash);
    free(c->rbuf);
    free(c->pbuf);
    free(c->host);
    free(c->tls_name);
    free(c);
}

void
sl_upc_close(sl_upconn_t *c)
{
    if (c->closing)
        return;
    done_forget(c);
    c->closing = 1;
    c->reading = 0;
    c->read_cb = NULL;
    if (c->state == C_IDLE && c->key != NULL && c->pool != NULL)
        c->key->nidle--;
    SL_LIST_REMOVE(c);
    /* Pending writes and a pending connect get ECANCELED before the close
     * callbacks run; they see `closing` and stay silent. */
    uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
    uv_close((uv_handle_t *)&c->timer, conn_close_cb);
}

static sl_upkey_t *
pool_key(sl_uppool_t *pool, const sl_upconn_t *c)
{
    sl_upkey_t *k;
    int verify = c->tls_on ? c->verify : 0;

    for (k = pool->keys; k != NULL; k = k->next)
        if (k->port == c->port && k->tls_on == c->tls_on && k->verify == verify &&
            strcasecmp(k->host, c->host) == 0)
            return k;
    k = sl_xcalloc(1, sizeof(*k));
    k->host = sl_strndup(c->host, strlen(c->host));
    k->port = c->port;
    k->tls_on = c->tls_on;
    k->verify = verify;
    k->next = pool->keys;
    pool->keys = k;
    return k;
}

static void conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
static void conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* libuv reading on the socket, tracked so that a connection going from
 * busy to idle to busy again keeps one registration (no epoll_ctl churn). */
int
sl_upc_uv_read(sl_upconn_t *c, int on)
{
    int rc = 0;

    if (on && !c->uv_reading) {
        rc = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc_cb, conn_on_read);
        if (rc == 0)
            c->uv_reading = 1;
    } else if (!on && c->uv_reading) {
        rc = uv_read_stop((uv_stream_t *)&c->tcp);
        c->uv_reading = 0;
    }
    return rc;
}

sl_upconn_t *
sl_upc_new(sl_uppool_t *pool, const sl_upconnect_t *uc)
{
    sl_upconn_t *c = sl_xcalloc(1, sizeof(*c));
    int rc;

    rc = uv_tcp_init(pool->loop, &c->tcp);
    if (rc < 0) {
        free(c);
        return NULL;
    }
    c->tcp.data = c;
    c->open_handles = 1;
    rc = uv_timer_init(pool->loop, &c->timer);
    if (rc < 0) {
        c->closing = 1;
        uv_close((uv_handle_t *)&c->tcp, conn_close_cb);
        return NULL;
    }
    c->timer.data = c;
    c->idle_due = SL_LAZY_TIMER_OFF;
    c->open_handles = 2;
    c->connect_req.data = c;
    c->pool = pool;
    c->tls_on = uc->tls_on;
    c->verify = uc->verify;
    c->port = uc->port;
    c->host = sl_strndup(uc->host, strlen(uc->host));
    c->tls_name = uc->tls_name ? sl_strndup(uc->tls_name, strlen(uc->tls_name)) : NULL;
    c->key = pool_key(pool, c);
    c->state = C_CONNECTING;
    uv_tcp_nodelay(&c->tcp, 1); /* requests are small and latency matters */
    return c;
}

/* The read buffer for one read: the pool's when it is free (a held
 * stream then owns no buffer between reads), else the connection's own. */
static char *
buf_borrow(sl_upconn_t *c, int decrypted)
{
    sl_uppool_t *pool = c->pool;
    char **mine = decrypted ? &c->pbuf : &c->rbuf;
    char **shared = pool ? (decrypted ? &pool->pbuf : &pool->rbuf) : NULL;
    sl_upconn_t **user = pool ? (decrypted ? &pool->pbuf_user : &pool->rbuf_user) : NULL;

    if (pool != NULL && *user == NULL) {
        if (*shared == NULL)
            *shared = sl_xmalloc(SL_UP_READ_BUF);
        *user = c;
        if (decrypted)
            c->lent_p = pool;
        else
            c->lent_r = pool;
        return *shared;
    }
    if (*mine == NULL)
        *mine = sl_xmalloc(SL_UP_READ_BUF);
    return *mine;
}

/* The read is over: the data has been handed on (or copied). */
static void
buf_return(sl_upconn_t *c, int decrypted)
{
    sl_uppool_t *pool = decrypted ? c->lent_p : c->lent_r;

    if (pool == NULL)
        return;
    if (decrypted) {
        if (pool->pbuf_user == c)
            pool->pbuf_user = NULL;
        c->lent_p = NULL;
    } else {
        if (pool->rbuf_user == c)
            pool->rbuf_user = NULL;
        c->lent_r = NULL;
    }
}

static void
conn_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    sl_upconn_t *c = h->data;

    (void)suggested;
    buf->base = buf_borrow(c, 0);
    buf->len = SL_UP_READ_BUF;
}

static void
conn_write_cb(uv_write_t *req, int status)
{
    sl_upwrite_t *w = (sl_upwrite_t *)req;
    sl_upconn_t *c = w->c;

    free(w->owned);
    if (w->user)
        c->user_writes--;
    if (status < 0)
        c->broken = 1;
    if (w->user && w->cb != NULL && !c->closing)
        w->cb(w->arg, status);
    /* a closing connection's pool may be gone (sl_uppool_free closes the
     * idle ones and leaves their cancelled writes to come back here) */
    upwrite_free(c->closing ? NULL : c->pool, w);
}

/* Send whatever ciphertext OpenSSL produced on its own (handshake
 * messages, alerts, key updates).  Failure shows up as `broken`. */
void
sl_upc_flush_tls(sl_upconn_t *c)
{
    sl_upwrite_t *w;
    uv_buf_t b;
    size_t len;
    char *out;

    if (c->tls == NULL || c->closing)
        return;
    out = sl_tls_out_take(c->tls, &len);
    if (out == NULL)
        return;
    w = upwrite_new(c, NULL, NULL, 0);
    w->owned = out;
    b = uv_buf_init(out, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb) < 0) {
        c->broken = 1;
        free(out);
        upwrite_free(c->pool, w);
    }
}

/* Is a socket we are about to reuse still good?  Checked without waiting:
 * EOF or unexpected bytes already queued mean it is not. */
static int
conn_socket_fresh(sl_upconn_t *c)
{
    uv_os_fd_t fd;
    char b;
    ssize_t n;

    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) < 0)
        return 0;
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0)
        return 0;
    /* Bytes on a TLS connection may be session tickets, which are fine;
     * on plain HTTP nothing may arrive between responses. */
    return c->tls_on;
}

/* Consume TLS records that arrived while nobody was reading.  Returns 1
 * if they were only protocol messages (session tickets) and nothing is
 * left, 2 if a partial record is still buffered, 0 if real data, EOF or
 * an error came - then the connection must not be reused. */
static int
conn_tls_quiet(sl_upconn_t *c)
{
    char scratch[256];
    ssize_t n;
    int res = 1;

    while (sl_tls_has_input(c->tls)) {
        n = sl_tls_read(c->tls, scratch, sizeof(scratch));
        if (n != 0)
            return 0;
        if (sl_tls_has_input(c->tls)) { /* incomplete record: no progress */
            res = 2;
            break;
        }
    }
    sl_upc_flush_tls(c);
    return c->broken ? 0 : res;
}

static void
conn_idle_timer_cb(uv_timer_t *t)
{
    sl_upconn_t *c = t->data;

    if (sl_lazy_timer_early(t, &c->idle_due))
        return;
    sl_upc_close(c);
}

/* Stop what the timer is armed for.  The idle timeout is lazy (a taken
 * connection only forgets its deadline, and goes back to idle without
 * touching libuv's timer heap while the old firing is still ahead); a
 * deferred delivery is stopped for real. */
static void
conn_timer_cancel(sl_upconn_t *c)
{
    if (c->timer.timer_cb == conn_idle_timer_cb)
        sl_lazy_timer_stop(&c->idle_due);
    else
        uv_timer_stop(&c->timer);
}

/* Data or EOF on an idle connection: the peer closed it or broke the
 * protocol; either way it must not be handed out. */
static void
conn_idle_input(sl_upconn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    if (nread < 0 || !c->tls_on) {
        sl_upc_close(c);
        return;
    }
    sl_tls_feed(c->tls, buf->base, (size_t)nread);
    if (!conn_tls_quiet(c))
        sl_upc_close(c);
}

static int
conn_poolable(sl_upconn_t *c)
{
    if (c->pool == NULL || c->closing || c->state != C_ACTIVE || c->eof || c->broken ||
        c->user_writes > 0)
        return 0;
    if (c->tls_on && (conn_tls_quiet(c) != 1 || !conn_socket_fresh(c)))
        return 0;
    /* plain TCP: the idle watcher will see anything the peer does next */
    return c->key->nidle < c->pool->opts.keepalive_max_idle;
}

static void
conn_to_idle(sl_upconn_t *c)
{
    sl_uppool_t *pool = c->pool;

    SL_LIST_REMOVE(c);
    c->state = C_IDLE;
    /* Idle connections may be many; their buffers come back on demand. */
    free(c->rbuf);
    free(c->pbuf);
    c->rbuf = c->pbuf = NULL;
    c->idle_since = uv_now(pool->loop);
    if (sl_upc_uv_read(c, 1) < 0) {
        sl_upc_close(c);
        return;
    }
    if (pool->opts.keepalive_timeout_ms != SL_UP_KEEPALIVE_FOREVER)
        sl_lazy_timer_start(&c->timer, &c->idle_due, conn_idle_timer_cb,
                            pool->opts.keepalive_timeout_ms);
    SL_LIST_INSERT(pool->idle, c);
    c->key->nidle++;
}

/* Take a matching idle connection, dropping stale ones met on the way. */
sl_upconn_t *
sl_uppool_take_idle(sl_uppool_t *pool, const sl_upstream_target_t *t)
{
    sl_upconn_t *c, *next;
    uint64_t now = uv_now(pool->loop);

    for (c = pool->idle; c != NULL; c = next) {
        next = c->next;
        if (c->tls_on != (t->tls ? 1 : 0) || c->port != t->port ||
            (c->tls_on && c->verify != (t->tls_verify ? 1 : 0)) ||
            strcasecmp(c->host, t->host) != 0 ||
            (c->tls_on && strcasecmp(c->tls_name ? c->tls_name : c->host,
                                     t->tls_name ? t->tls_name : t->host) != 0))
            continue;
        if (now - c->idle_since >= SL_UP_PROBE_AFTER_MS && !conn_socket_fresh(c)) {
            sl_upc_close(c);
            continue;
        }
        SL_LIST_REMOVE(c);
        c->key->nidle--;
        /* libuv keeps reading: conn_on_read stashes anything that arrives
         * before the user's read_start */
        conn_timer_cancel(c);
        c->state = C_ACTIVE;
        c->reused = 1;
        SL_LIST_INSERT(pool->busy, c);
        return c;
    }
    return NULL;
}

/* ---- reading ---- */

/* Hand decrypted data (TLS) and then the end of the stream to the reader,
 * for as long as it keeps reading.  `eof` means the final status is
 * known; with TLS the socket may have ended (`net_eof`) while records
 * are still buffered, and those go out first. */
static void
conn_deliver(sl_upconn_t *c)
{
    ssize_t n;

    while (c->reading && !c->closing && c->state == C_ACTIVE && !c->eof_told) {
        if (c->tls != NULL && !c->eof) {
            char *pb = buf_borrow(c, 1);

            n = sl_tls_read(c->tls, pb, SL_UP_READ_BUF);
            sl_upc_flush_tls(c);
            if (n > 0) {
                c->read_cb(c->read_arg, pb, n);
                buf_return(c, 1);
                continue;
            }
            buf_return(c, 1);
            if (n < 0) { /* close_notify or a TLS error */
                c->eof = 1;
                c->read_err = (int)n;
            } else if (c->net_eof) {
                c->eof = 1; /* read_err was set by the socket */
            } else {
                return; /* wait for more records */
            }
        }
        if (!c->eof)
            return;
        c->eof_told = 1;
        c->reading = 0;
        sl_upc_uv_read(c, 0);
        c->read_cb(c->read_arg, NULL, c->read_err);
        return;
    }
}

static void conn_on_read_data(sl_upconn_t *c, ssize_t nread, const uv_buf_t *buf);

static void
conn_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    sl_upconn_t *c = s->data;

    /* c stays allocated until its close callbacks, after this returns */
    conn_on_read_data(c, nread, buf);
    buf_return(c, 0);
}

static void
conn_on_read_data(sl_upconn_t *c, ssize_t nread, const uv_buf_t *buf)
{
    if (c->closing || nread == 0)
        return;
    sl_turn_io();

    switch (c->state) {
    case C_IDLE:
        conn_idle_input(c, nread, buf);
        return;

    case C_HANDSHAKE:
        if (nread < 0) {
            char msg[300];
            snprintf(msg, sizeof(msg), "TLS handshake with %s:%d failed: %s", c->host, c->port,
                     nread == UV_EOF ? "connection closed by peer" : uv_strerror((int)nread));
            sl_upconnect_fail(c->uc, SL_UPERR_TLS, msg);
            return;
        }
        sl_tls_feed(c->tls, buf->base, (size_t)nread);
        sl_upc_handshake(c);
        return;

    case C_ACTIVE:
        if (nread < 0) {
            c->net_eof = 1;
            c->read_err = (int)nread;
            if (c->tls == NULL)
                c->eof = 1;
            sl_upc_uv_read(c, 0);
            conn_deliver(c);
            return;
        }
        if (c->tls != NULL) {
            sl_tls_feed(c->tls, buf->base, (size_t)nread);
            conn_deliver(c);
        } else if (c->reading && c->read_cb != NULL) {
            c->read_cb(c->read_arg, buf->base, nread);
        } else {
            /* nobody reading yet (taken from the pool, read_start to come):
             * keep the bytes and stop until the user asks */
            c->stash = sl_xrealloc(c->stash, c->stash_len + (size_t)nread);
            memcpy(c->stash + c->stash_len, buf->base, (size_t)nread);
            c->stash_len += (size_t)nread;
            sl_upc_uv_read(c, 0);
        }
        return;

    default:
        return;
    }
}

static void
conn_deferred_cb(uv_timer_t *t)
{
    sl_upconn_t *c = t->data;

    if (c->stash_len && c->reading && c->read_cb != NULL && !c->closing) {
        char *s = c->stash;
        size_t n = c->stash_len;
        c->stash = NULL;
        c->stash_len = 0;
        c->read_cb(c->read_arg, s, (ssize_t)n);
        free(s);
        if (c->closing || !c->reading || c->state != C_ACTIVE)
            return;
        if (!c->net_eof)
            sl_upc_uv_read(c, 1);
    }
    conn_deliver(c);
}

int
sl_upconn_read_start(sl_upconn_t *c, sl_upconn_read_cb cb, void *arg)
{
    int rc;

    if (c == NULL || cb == NULL || c->closing || c->state != C_ACTIVE)
        return UV_EINVAL;
    c->read_cb = cb;
    c->read_arg = arg;
    if (c->reading)
        return 0; /* already on: just a new callback */
    c->reading = 1;
    if (c->eof_told)
        return 0; /* the end was already reported */
    if (c->stash_len) {
        /* stashed bytes first, from the loop; reading resumes after */
        uv_timer_start(&c->timer, conn_deferred_cb, 0, 0);
        return 0;
    }
    if (!c->net_eof) {
        rc = sl_upc_uv_read(c, 1);
        if (rc < 0) {
            c->reading = 0;
            return rc;
        }
    }
    /* Bytes buffered while we were not reading, or an end of stream not yet
     * told, would otherwise wait for the next socket event - which may
     * never come.  Deliver them from the loop, never from inside this call. */
    if (c->eof || c->net_eof || (c->tls != NULL && sl_tls_has_input(c->tls)))
        uv_timer_start(&c->timer, conn_deferred_cb, 0, 0);
    return 0;
}

int
sl_upconn_read_stop(sl_upconn_t *c)
{
    if (c == NULL || c->closing)
        return UV_EINVAL;
    c->reading = 0;
    if (c->state == C_ACTIVE) {
        conn_timer_cancel(c);
        return sl_upc_uv_read(c, 0);
    }
    return 0;
}

/* ---- writing ---- */

int
sl_upconn_write(sl_upconn_t *c, const uv_buf_t *bufs, unsigned nbufs, sl_upconn_write_cb cb,
                void *arg)
{
    static char empty[1];
    sl_upwrite_t *w;
    uv_buf_t b;
    size_t len;
    int rc;

    if (c == NULL || c->closing || c->state != C_ACTIVE || (nbufs > 0 && bufs == NULL))
        return UV_EINVAL;
    if (c->broken)
        return UV_EPIPE;

    w = upwrite_new(c, cb, arg, 1);

    if (c->tls != NULL) {
        /* Encrypt now into a buffer we own; the caller's bytes are no
         * longer needed once this returns, but the contract stays simple. */
        if (sl_tls_write(c->tls, bufs, nbufs) < 0) {
            upwrite_free(c->pool, w);
            c->broken = 1;
            return SL_UPERR_TLS;
        }
        w->owned = sl_tls_out_take(c->tls, &len);
        b = w->owned ? uv_buf_init(w->owned, (unsigned)len) : uv_buf_init(empty, 0);
        rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
    } else if (nbufs == 0) {
        b = uv_buf_init(empty, 0);
        rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_cb);
    } else if (c->pool != NULL && uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0 &&
               c->user_writes == 0) {
        /* Try to write it all now (the usual case for a request head). */
        size_t total = 0, skip;
        int nw = uv_try_write((uv_stream_t *)&c->tcp, bufs, nbufs);

        for (unsigned i = 0; i < nbufs; i++)
            total += bufs[i].len;
        if (nw == (int)total) {
            c->user_writes++;
            done_push(c->pool, w);
            return 0;
        }
        if (nw < 0 && nw != UV_EAGAIN) {
            upwrite_free(c->pool, w);
            c->broken = 1;
            return nw;
        }
        /* partial: hand uv_write what is left (descriptors are copied by
         * libuv, the bytes stay the caller's until the callback) */
        skip = nw > 0 ? (size_t)nw : 0;
        uv_buf_t rest_small[8];
        uv_buf_t *rest = nbufs <= 8 ? rest_small : sl_xmalloc(nbufs * sizeof(uv_buf_t));
        unsigned nrest = 0;
        for (unsigned i = 0; i < nbufs; i++) {
            if (skip >= bufs[i].len) {
                skip -= bufs[i].len;
                continue;
            }
            rest[nrest++] = uv_buf_init(bufs[i].base + skip, (unsigned)(bufs[i].len - skip));
            skip = 0;
        }
        rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, rest, nrest, conn_write_cb);
        if (rest != rest_small)
            free(rest);
    } else {
        rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, bufs, nbufs, conn_write_cb);
    }
    if (rc < 0) {
        free(w->owned);
        upwrite_free(c->pool, w);
        c->broken = 1;
        return rc;
    }
    c->user_writes++;
    return 0;
}

/* ---- release and accessors ---- */

void
sl_upconn_release(sl_upconn_t *c, int reuse)
{
    if (c == NULL || c->closing)
        return;
    done_forget(c);
    c->reading = 0;
    c->read_cb = NULL;
    c->read_arg = NULL;
    conn_timer_cancel(c);
    if (reuse && !c->net_eof && c->stash_len == 0 && conn_poolable(c))
        conn_to_idle(c);
    else
        sl_upc_close(c);
}

int
sl_upconn_reused(const sl_upconn_t *c)
{
    return c->reused;
}

const char *
sl_upconn_peer_ip(const sl_upconn_t *c)
{
    return c->peer_ip;
}

int
sl_upconn_peer_port(const sl_upconn_t *c)
{
    return c->peer_port;
}

int
sl_upconn_tls_resumed(const sl_upconn_t *c)
{
    return c->tls != NULL && sl_tls_resumed(c->tls);
}
