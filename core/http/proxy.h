/* proxy.h - the HTTP/1.1 exchange with the upstream for one request:
 * serialize the request head, send head + body over a pooled connection
 * (retrying connection failures), parse the response with llhttp and feed
 * it to request.c as it arrives. */

#ifndef SL_PROXY_H
#define SL_PROXY_H

#include "http/request.h"

/* Start proxying r (target in r->up_*).  Errors before any response byte
 * end as a gateway response (502/504) through request.c. */
void sl_proxy_start(sl_req_t *r);
/* Streamed request bodies (route request_buffering: false): a piece of
 * the body (copied), and its end. */
void sl_proxy_body(sl_proxy_t *p, const char *data, size_t len);
void sl_proxy_body_end(sl_proxy_t *p);
/* The client is gone: drop the upstream connection, no more callbacks. */
void sl_proxy_cancel(sl_proxy_t *p);
/* May the response being filtered be rejected for another try
 * (api->upstream_retry)?  Nothing went to the client, budget left, the
 * request can be sent again whole. */
int sl_proxy_can_retry(const sl_proxy_t *p);
/* A streamed request body's head went out (setters refused after). */
int sl_proxy_head_written(const sl_proxy_t *p);
/* Flow control from the client side. */
void sl_proxy_pause(sl_proxy_t *p);
void sl_proxy_resume(sl_proxy_t *p);
/* Close the proxies w keeps for later requests (server.h), before the
 * owner closes the loop's handles; their memory goes in the close
 * callbacks. */
void sl_proxy_keep_free(sl_server_t *w);

#endif
