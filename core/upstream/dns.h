/* dns.h - asynchronous host name resolution with Kong's DNS cache.
 *
 * One resolver per worker, shared by its connection pools.  Names are
 * looked up with c-ares on the worker's loop (dns_ares.c: the hosts file,
 * then the DNS servers of `resolver` or /etc/resolv.conf); concurrent
 * lookups of one name share one query unless opts->no_sync (Kong's
 * dns_no_sync).  An answer is cached for its records' TTL (or
 * dns_valid_ttl), then served stale for up to dns_stale_ttl while one new
 * query runs in the background; a name that does not exist is cached for
 * dns_not_found_ttl, other failures for dns_error_ttl (Kong's node
 * settings, docs/upstream.md "DNS").  IP literals never reach a server,
 * and names under ".invalid" fail at once (RFC 6761 6.4). */

#ifndef SL_DNS_H
#define SL_DNS_H

#include <sys/socket.h>
#include <uv.h>

#include "base/common.h"
#include "conf/resolver.h"

typedef struct sl_dns sl_dns_t;
typedef struct sl_dns_req sl_dns_req_t; /* a lookup in progress */

typedef struct sl_dns_options {
    const char *resolver;     /* "ip[:port],..."; NULL or "" = /etc/resolv.conf's servers */
    unsigned valid_ttl_s;     /* > 0: every answer's TTL; 0: the records' own */
    unsigned stale_ttl_s;     /* an expired answer is still used this long while refreshed */
    unsigned not_found_ttl_s; /* cache time of "no such name" / "no address" */
    unsigned error_ttl_s;     /* cache time of other failures (timeouts, server failures) */
    const char *hostsfile;    /* read before DNS; NULL = /etc/hosts */
    sl_dns_order_t order;     /* dns_order; all zero = Kong's LAST,SRV then A before AAAA */
    unsigned cache_size;      /* answers cached (one per name and kind); 0 = 10000 */
    int no_sync;              /* dns_no_sync: a cache miss sends its own query, not sharing */
} sl_dns_options_t;

/* Kong's defaults (dns_stale_ttl 3600, dns_not_found_ttl 30, dns_error_ttl 1). */
#define SL_DNS_OPTIONS_DEFAULT                                                                     \
    {                                                                                              \
        .resolver = NULL, .valid_ttl_s = 0, .stale_ttl_s = 3600, .not_found_ttl_s = 30,            \
        .error_ttl_s = 1                                                                           \
    }

/* The record types asked for upstream targets (dns_order). */
const sl_dns_order_t *sl_dns_order(const sl_dns_t *d);

/* status 0: `addrs` holds n >= 1 addresses (port 0), IPv4 first;
 * status < 0 (UV_EAI_*): `errmsg` says why, addrs is NULL.
 * OWNERSHIP: addrs and errmsg are borrowed, valid during the call only.
 * A callback must not free the resolver. */
typedef void (*sl_dns_cb)(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                          const char *errmsg);

/* One SRV record (RFC 2782). */
typedef struct sl_srv_rec {
    char target[256]; /* a host name (or IP literal) */
    int port, weight, priority;
} sl_srv_rec_t;

/* An SRV lookup's answer: status 0 with n >= 1 records sorted by priority
 * (then target, port), or < 0 with errmsg; same ownership as sl_dns_cb. */
typedef void (*sl_dns_srv_cb)(void *arg, int status, const sl_srv_rec_t *recs, size_t n,
                              const char *errmsg);

/* A resolver on loop (opts NULL: Kong's defaults).  NULL with a message in
 * err when opts->resolver is not a list of ip[:port].  Free with
 * sl_dns_free(). */
sl_dns_t *sl_dns_new(uv_loop_t *loop, const sl_dns_options_t *opts, char *err, size_t errlen);

/* Forget the cache and abandon every lookup in progress (their callbacks
 * are not called).  Run the loop afterwards so handle closes complete. */
void sl_dns_free(sl_dns_t *d);

/* Resolve `host`.  When the answer is already known (IP literal, cached,
 * ".invalid", or an answer c-ares gave at once), *req is set to NULL and
 * cb runs before this returns; otherwise *req is a handle for
 * sl_dns_cancel() valid until cb runs.  Returns 0, or < 0 when the lookup
 * could not start (cb not called). */
int sl_dns_resolve(sl_dns_t *d, const char *host, sl_dns_cb cb, void *arg, sl_dns_req_t **req);

/* The SRV records of name, cached like addresses (sl_dns_resolve's
 * rules; no literals). */
int sl_dns_resolve_srv(sl_dns_t *d, const char *name, sl_dns_srv_cb cb, void *arg,
                       sl_dns_req_t **req);

/* Abandon a lookup: its callback will not run.  NULL is allowed. */
void sl_dns_cancel(sl_dns_req_t *req);

/* Parse an IPv4/IPv6 literal ("127.0.0.1", "::1", "[::1]") into ss (port 0).
 * Returns 1 if it is one, 0 if not. */
int sl_dns_parse_ip(const char *host, struct sockaddr_storage *ss);

#endif
