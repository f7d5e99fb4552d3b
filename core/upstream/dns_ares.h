/* dns_ares.h - c-ares driven on a libuv loop: one channel, its sockets
 * watched with uv_poll, its retransmissions timed with one uv_timer.
 *
 * The lookup half of dns.c.  Queries go to the servers of `resolver`
 * (Kong's dns_resolver: "ip[:port],...") or, when it is empty, to those of
 * /etc/resolv.conf.  Nothing here blocks the loop and nothing is cached
 * (dns.c caches). */

#ifndef SL_DNS_ARES_H
#define SL_DNS_ARES_H

#include <sys/socket.h>
#include <uv.h>

#include "base/common.h"
#include "upstream/dns.h"

#define SL_ARES_MAX_ADDRS 16
#define SL_ARES_MAX_SRV 16

typedef struct sl_ares sl_ares_t;

/* An address lookup's answer.  status 0: n >= 1 addresses (port 0), IPv4
 * before IPv6, and the smallest TTL of the records in seconds; status < 0
 * (UV_EAI_NONAME for a name that does not exist or has no address,
 * UV_EAI_AGAIN for a timeout or a server failure, UV_EAI_FAIL otherwise):
 * n is 0 and `errmsg` says why.  Addresses come in the channel's family
 * order (IPv4 first by default).  Also called with UV_ECANCELED when the
 * channel is freed before the answer came.
 * OWNERSHIP: addrs and errmsg are borrowed, valid during the call only. */
typedef void (*sl_ares_addr_cb)(void *arg, int status, const struct sockaddr_storage *addrs,
                                size_t n, unsigned ttl_s, const char *errmsg);

/* An SRV lookup's answer, as sl_ares_addr_cb: status 0 with n >= 1
 * records (sorted by priority, then target and port) and their smallest
 * TTL, or < 0 with errmsg. */
typedef void (*sl_ares_srv_cb)(void *arg, int status, const sl_srv_rec_t *recs, size_t n,
                               unsigned ttl_s, const char *errmsg);

/* A channel on loop.  `hostsfile` (NULL: /etc/hosts) is read before DNS
 * (c-ares 1.18 takes its path from CARES_HOSTS, set here for the process);
 * `family` lists AF_INET / AF_INET6 in the order addresses are asked and
 * returned (0 ends it; NULL: both, IPv4 first).  Returns NULL with a
 * message in err when c-ares refuses `resolver` (settings.c checked its
 * syntax) or cannot start.  Free with sl_ares_free(). */
sl_ares_t *sl_ares_new(uv_loop_t *loop, const char *resolver, const char *hostsfile,
                       const int family[2], char *err, size_t errlen);

/* Cancel every lookup (their callbacks run with UV_ECANCELED, before this
 * returns) and close the channel's handles; run the loop afterwards so the
 * closes complete. */
void sl_ares_free(sl_ares_t *a);

/* Look up the A and AAAA records of host (a name, not an IP literal).
 * cb runs exactly once, possibly before this returns (c-ares answers some
 * failures at once). */
void sl_ares_addrinfo(sl_ares_t *a, const char *host, sl_ares_addr_cb cb, void *arg);

/* Look up the SRV records of name (resolv.conf's search list applies).
 * cb runs exactly once, possibly before this returns. */
void sl_ares_srv(sl_ares_t *a, const char *name, sl_ares_srv_cb cb, void *arg);

#endif
