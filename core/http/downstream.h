/* downstream.h - what the upstream exchange (proxy.c) may do to the client
 * side of a request: flow control, write batching and the peer's address.
 * The connection stays opaque here; http_server.c implements these. */

#ifndef SL_DOWNSTREAM_H
#define SL_DOWNSTREAM_H

typedef struct sl_conn sl_conn_t;

/* Between cork and uncork, writes are gathered and go out as one (a
 * response head and its first body bytes in one segment).  Nests. */
void sl_conn_cork(sl_conn_t *c);
void sl_conn_uncork(sl_conn_t *c);
/* Flow control of a streamed request body. */
void sl_conn_pause_read(sl_conn_t *c);
void sl_conn_resume_read(sl_conn_t *c);
/* The client's address as text ("" when unknown) and the local port it
 * connected to. */
const char *sl_conn_client_ip(const sl_conn_t *c);
int sl_conn_server_port(const sl_conn_t *c);
/* 1 if the client came over TLS; the server name it asked for (or NULL). */
int sl_conn_is_tls(const sl_conn_t *c);
const char *sl_conn_sni(const sl_conn_t *c);

#endif
