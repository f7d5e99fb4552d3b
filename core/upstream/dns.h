/* dns.h - asynchronous host name resolution with a small cache.
 *
 * One resolver per worker (owned by the upstream pool).  Lookups go through
 * uv_getaddrinfo (libuv's thread pool), concurrent lookups of the same name
 * share one getaddrinfo call, answers are cached for `ttl_ms` and failures
 * for `neg_ttl_ms`.  IP literals never reach getaddrinfo, and names under
 * ".invalid" fail at once (RFC 6761 6.4). */

#ifndef SL_DNS_H
#define SL_DNS_H

#include <sys/socket.h>
#include <uv.h>

#include "base/common.h"

typedef struct sl_dns sl_dns_t;
typedef struct sl_dns_req sl_dns_req_t; /* a lookup in progress */

/* status 0: `addrs` holds n >= 1 addresses (port 0) in getaddrinfo's order;
 * status < 0 (UV_EAI_*): `errmsg` says why, addrs is NULL.
 * OWNERSHIP: addrs and errmsg are borrowed, valid during the call only. */
typedef void (*sl_dns_cb)(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                          const char *errmsg);

/* ttl_ms / neg_ttl_ms of 0 mean the defaults (30 s / 1 s).  Free with
 * sl_dns_free(). */
sl_dns_t *sl_dns_new(uv_loop_t *loop, unsigned ttl_ms, unsigned neg_ttl_ms);

/* Forget the cache and abandon every lookup in progress (their callbacks
 * are not called).  getaddrinfo calls still running in the thread pool
 * finish on their own and free themselves on the loop. */
void sl_dns_free(sl_dns_t *d);

/* Resolve `host`.  When the answer is already known (IP literal, fresh
 * cache entry, ".invalid"), *req is set to NULL and cb runs before this
 * returns; otherwise *req is a handle for sl_dns_cancel() valid until cb
 * runs.  Returns 0, or < 0 when the lookup could not start (cb not called). */
int sl_dns_resolve(sl_dns_t *d, const char *host, sl_dns_cb cb, void *arg, sl_dns_req_t **req);

/* Abandon a lookup: its callback will not run.  NULL is allowed. */
void sl_dns_cancel(sl_dns_req_t *req);

/* Parse an IPv4/IPv6 literal ("127.0.0.1", "::1", "[::1]") into ss (port 0).
 * Returns 1 if it is one, 0 if not. */
int sl_dns_parse_ip(const char *host, struct sockaddr_storage *ss);

#endif
