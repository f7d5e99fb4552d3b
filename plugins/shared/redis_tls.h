/* redis_tls.h - TLS to Redis under a hiredis without TLS (Debian's 0.14):
 * hiredis talks to one end of a socketpair, and a bridge on the worker's
 * libuv loop carries the bytes between the other end and an OpenSSL client
 * connection on the real socket.  RESP stays hiredis's; only the transport
 * changes. */

#ifndef SL_REDIS_TLS_H
#define SL_REDIS_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <uv.h>

#include <hiredis/async.h>

typedef struct rl_tls rl_tls_t;

/* A client context: TLS 1.2 or later; with verify, the peer's chain is
 * checked against the system CA store (OpenSSL's default paths, which
 * honour SSL_CERT_FILE and SSL_CERT_DIR, as for upstreams).  NULL with a
 * reason in err. */
SSL_CTX *rl_tls_ctx_new(int verify, char *err, size_t errlen);

/* Put TLS under ac, just made by redisAsyncConnect and not attached to a
 * loop yet: ac's fd becomes one end of a socketpair, and the bridge owns
 * the socket hiredis opened.  The peer is told `name` (SNI, unless an IP
 * address) and, with verify, its certificate must match it (a host name,
 * or an IP address against the certificate's addresses).  The bridge frees
 * itself when hiredis closes its end or the TLS connection fails; then
 * *self is set to NULL and, on failure, the reason written to why (whylen
 * bytes) for the caller's disconnect callback, which follows (hiredis
 * reads the end of its stream).  0, or -1 with a reason in why. */
int rl_tls_wrap(redisAsyncContext *ac, uv_loop_t *loop, SSL_CTX *ctx, const char *name, int verify,
                rl_tls_t **self, char *why, size_t whylen);

/* The caller lets go of t (it may be NULL): the bridge no longer touches
 * *self or why, and closes when it sees hiredis's end closed. */
void rl_tls_forget(rl_tls_t *t);
/* Close t now (it may be NULL), its context already freed by hiredis: for
 * the owner's own end (exit_worker), when the loop may not wait for the
 * hang-up to be seen. */
void rl_tls_close(rl_tls_t *t);

#endif
