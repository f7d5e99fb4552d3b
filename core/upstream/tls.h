/* tls.h - client-side TLS over memory BIOs (OpenSSL 3).
 *
 * The sockets belong to libuv, so OpenSSL never touches a file descriptor:
 * ciphertext read from the network is fed in with sl_tls_feed(), ciphertext
 * to send is taken out with sl_tls_out_take(), and the upstream layer moves
 * it with uv_read/uv_write.  This keeps TLS on the worker's single loop.
 *
 * sl_tls_ctx_t holds one SSL_CTX per verify mode (created on first use, so
 * the system CA store - or SSL_CERT_FILE - is read then) and a small
 * per-(host, port, verify) session cache for resumption.  It is reference
 * counted: connections keep it alive after sl_tls_ctx_free(). */

#ifndef SL_TLS_H
#define SL_TLS_H

#include <sys/types.h>
#include <uv.h>

#include "base/common.h"

typedef struct sl_tls_ctx sl_tls_ctx_t;
typedef struct sl_tls sl_tls_t;

sl_tls_ctx_t *sl_tls_ctx_new(void);
/* Drop the owner's reference; the contexts go when the last connection
 * using them is freed. */
void sl_tls_ctx_free(sl_tls_ctx_t *ctx);

/* A client connection to host:port.  verify = 1: the peer's chain must
 * verify against the CA store and match host (name or IP literal).  SNI is
 * sent for names only.  Returns NULL with a message in err on failure.
 * Free with sl_tls_free(). */
sl_tls_t *sl_tls_new(sl_tls_ctx_t *ctx, const char *host, int port, int verify, char *err,
                     size_t errlen);
void sl_tls_free(sl_tls_t *t);

/* Drive the handshake.  Returns 1 when done, 0 when it needs more input
 * from the peer (send sl_tls_out_take() first), SL_UPERR_TLS (upstream.h)
 * on failure with OpenSSL's reason in err ("certificate verify failed: ..."). */
int sl_tls_handshake(sl_tls_t *t, char *err, size_t errlen);

/* Hand ciphertext received from the peer to OpenSSL. */
void sl_tls_feed(sl_tls_t *t, const char *data, size_t n);

/* Decrypt into buf.  Returns > 0 bytes, 0 when more input is needed,
 * UV_EOF on the peer's close_notify, SL_UPERR_TLS on a protocol error. */
ssize_t sl_tls_read(sl_tls_t *t, char *buf, size_t size);

/* Encrypt all of bufs; the ciphertext waits for sl_tls_out_take().
 * Returns 0 or SL_UPERR_TLS. */
int sl_tls_write(sl_tls_t *t, const uv_buf_t *bufs, unsigned nbufs);

/* Ciphertext waiting to be sent: a malloc'd buffer the caller frees, and
 * its length in *len; NULL (and *len 0) when there is none. */
char *sl_tls_out_take(sl_tls_t *t, size_t *len);

/* 1 if received bytes (plaintext or ciphertext) are buffered unread. */
int sl_tls_has_input(const sl_tls_t *t);

/* 1 if the handshake resumed a cached session. */
int sl_tls_resumed(const sl_tls_t *t);

#endif
