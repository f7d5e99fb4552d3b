/* upstream.h - connections to upstream servers: asynchronous DNS with a
 * cache, TCP connect with a timeout, TLS (OpenSSL, SNI, peer verification),
 * and a per-worker keep-alive pool keyed by (tls, host, port, verify).
 *
 * This layer moves bytes only; HTTP framing lives in proxy.c.
 *
 * Errors are negative libuv codes (UV_ECONNREFUSED, UV_ETIMEDOUT, UV_EOF,
 * UV_EAI_NONAME ...) or SL_UPERR_TLS for TLS failures; a short text for the
 * log comes with each failure. */

#ifndef SL_UPSTREAM_H
#define SL_UPSTREAM_H

#include "base/common.h"
#include "upstream/dns.h"
#include <uv.h>

#define SL_UPERR_TLS (-20001) /* TLS handshake / verification failed */
/* keepalive_timeout_ms: idle connections never expire */
#define SL_UP_KEEPALIVE_FOREVER UINT32_MAX

typedef struct sl_uppool sl_uppool_t;
typedef struct sl_upconn sl_upconn_t;
typedef struct sl_upconnect sl_upconnect_t; /* a connect in progress */

typedef struct sl_upstream_target {
    int tls;          /* 1 = https */
    const char *host; /* NUL-terminated name or IP literal */
    int port;
    int tls_verify; /* 1 = verify peer (default), 0 = don't */
    int connect_timeout_ms;
    const char *tls_name; /* SNI and the name verified, when host is one of its addresses;
                             NULL = host */
} sl_upstream_target_t;

typedef struct sl_uppool_options {
    unsigned keepalive_max_idle;   /* idle connections kept per pool key (default 64) */
    unsigned keepalive_timeout_ms; /* idle close (default 60000; SL_UP_KEEPALIVE_FOREVER) */
    sl_dns_t *dns;                 /* the worker's resolver, shared (the caller frees it after
                                      the pool); NULL = the pool's own with Kong's defaults */
} sl_uppool_options_t;             /* opts NULL = all defaults; keepalive_max_idle 0 = no pooling;
                                     other fields 0 = their default */

/* status: 0 = connected (c valid), < 0 = failed (c NULL, errmsg set).
 * `reused` is 1 when c came from the idle pool (it may turn out stale: the
 * caller may retry once on a write/first-read failure). */
typedef void (*sl_upconnect_cb)(void *arg, sl_upconn_t *c, int status, const char *errmsg);

/* n > 0: data (valid during the call only); n < 0: UV_EOF on clean close,
 * another negative code on error (SL_UPERR_TLS for a TLS record error).
 * After n < 0 no more reads arrive.  Writes use write(2): the process must
 * ignore SIGPIPE so a peer that went away gives UV_EPIPE. */
typedef void (*sl_upconn_read_cb)(void *arg, const char *data, ssize_t n);
typedef void (*sl_upconn_write_cb)(void *arg, int status);

sl_uppool_t *sl_uppool_new(uv_loop_t *loop, const sl_uppool_options_t *opts);
/* Close idle connections; in-use ones are closed when released.  Connects
 * still pending are abandoned (their callbacks never run).  Run the loop
 * afterwards so the closes complete before uv_loop_close(). */
void sl_uppool_free(sl_uppool_t *pool);

/* Get a connection: an idle pooled one if any (callback may run
 * synchronously before this returns), else resolve + connect (+ TLS).
 * *pending receives a handle usable with sl_upconnect_cancel() until the
 * callback runs.  Returns 0, or < 0 if it could not even start (then the
 * callback is never called). */
int sl_upconnect_start(sl_uppool_t *pool, const sl_upstream_target_t *t, sl_upconnect_cb cb,
                       void *arg, sl_upconnect_t **pending);
/* Abandon a pending connect; the callback will not be called. */
void sl_upconnect_cancel(sl_upconnect_t *pending);

/* Write bufs in order.  The buffers' memory must stay valid until cb runs.
 * cb is never called synchronously.  Returns 0 or < 0 (cb not called). */
int sl_upconn_write(sl_upconn_t *c, const uv_buf_t *bufs, unsigned nbufs, sl_upconn_write_cb cb,
                    void *arg);

int sl_upconn_read_start(sl_upconn_t *c, sl_upconn_read_cb cb, void *arg);
int sl_upconn_read_stop(sl_upconn_t *c);

/* Done with c: reuse = 1 puts it back in the idle pool (only if nothing
 * unread is pending and the peer has not closed), 0 closes it.  No callback
 * of c runs after this. */
void sl_upconn_release(sl_upconn_t *c, int reuse);

int sl_upconn_reused(const sl_upconn_t *c);
/* Peer address as text ("127.0.0.1" / "::1") and port. */
const char *sl_upconn_peer_ip(const sl_upconn_t *c);
int sl_upconn_peer_port(const sl_upconn_t *c);
/* 1 if c is TLS and its handshake resumed a cached session. */
int sl_upconn_tls_resumed(const sl_upconn_t *c);

#endif
