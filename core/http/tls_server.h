/* tls_server.h - TLS towards clients (listeners with "ssl"), over memory
 * BIOs as upstream/tls.c does towards upstreams: http_server.c feeds the
 * ciphertext it reads, takes the ciphertext to write, and OpenSSL never
 * sees a socket, so a handshake never blocks the loop.
 *
 *  - One sl_stls_t per configuration generation (built by the master from
 *    the settings' ssl_cert/ssl_cert_key and the declarative config's
 *    certificates/snis): a reload swaps certificates for new connections
 *    while the old workers finish theirs.
 *  - SNI picks the certificate: exact name, then "*.example.com", then
 *    "example.*" (Kong's order); else the default (settings, or the first
 *    certificate).  TLS 1.2/1.3 (ssl_protocols), ssl_ciphers, ALPN
 *    http/1.1, no renegotiation, no compression.
 *  - Session tickets: keys shared by every worker (http/tls_tickets.c). */

#ifndef SL_TLS_SERVER_H
#define SL_TLS_SERVER_H

#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "base/errors.h"
#include "conf/config.h"
#include "conf/settings.h"
#include "http/ocsp.h"
#include "http/tls_tickets.h"

typedef struct sl_stls sl_stls_t;
typedef struct sl_stls_conn sl_stls_conn_t;

/* Build the contexts of a generation into conf->tls_server when a listener
 * has "ssl" (errors into errs: unreadable files, no certificate at all). */
int sl_stls_build(const sl_settings_t *s, sl_conf_t *conf, sl_errors_t *errs);
/* The generation's fetched OCSP responses (ssl_stapling), for the workers'
 * fetchers; NULL when off. */
const sl_ocsp_t *sl_stls_ocsp(const sl_stls_t *t);

/* A connection; NULL on OOM.  Free with sl_stls_conn_free(). */
sl_stls_conn_t *sl_stls_conn_new(sl_stls_t *t);
void sl_stls_conn_free(sl_stls_conn_t *tc);

/* Ciphertext from the client. */
int sl_stls_conn_feed(sl_stls_conn_t *tc, const char *data, size_t len);
/* Drive the handshake, then decrypt into buf: > 0 bytes, 0 = needs more
 * input (write sl_stls_conn_out() first), UV_EOF at the client's
 * close_notify, -1 on a failed handshake or a protocol error. */
ssize_t sl_stls_conn_read(sl_stls_conn_t *tc, char *buf, size_t cap);
/* Encrypt all of bufs; the ciphertext waits in sl_stls_conn_out().  0 or -1. */
int sl_stls_conn_write(sl_stls_conn_t *tc, const uv_buf_t *bufs, unsigned n);
/* Ciphertext to send: *p points into the connection's buffer, valid until
 * sl_stls_conn_out_done() (call it once the bytes are written or copied). */
size_t sl_stls_conn_out(sl_stls_conn_t *tc, const char **p);
void sl_stls_conn_out_done(sl_stls_conn_t *tc);
/* Queue a close_notify (the caller sends sl_stls_conn_out()). */
void sl_stls_conn_shutdown(sl_stls_conn_t *tc);

int sl_stls_conn_established(const sl_stls_conn_t *tc);
/* Whether the handshake is done at TLS 1.3: what OpenSSL writes from now
 * on unasked (tickets, a KeyUpdate answer) is post-handshake and may wait
 * for the next application data (RFC 8446 4.6). */
int sl_stls_conn_post_handshake(const sl_stls_conn_t *tc);
/* Whether the client sent bytes not read out yet (a record or part of one;
 * 0 for NULL). */
int sl_stls_conn_has_input(const sl_stls_conn_t *tc);
/* The server name the client asked for (NULL if none). */
const char *sl_stls_conn_sni(const sl_stls_conn_t *tc);

#endif
