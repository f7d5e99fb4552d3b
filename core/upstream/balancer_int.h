/* balancer_int.h - the balancer's internals, shared by balancer.c
 * (picking, health, active checks) and balancer_addr.c (the entries: one
 * per target address, host names resolved and re-resolved on their TTL). */

#ifndef SL_BALANCER_INT_H
#define SL_BALANCER_INT_H

#include "upstream/balancer.h"

/* One balancer entry: an address of a target (Kong's "address"). */
typedef struct sl_bal_entry {
    size_t t;              /* its target, index into u->targets */
    char host[256];        /* an IP address, or an SRV record's target name; "" = a named
                              target not resolved yet (its own host) */
    int port;              /* the target's, or the SRV record's */
    int weight;            /* the target's, or the SRV record's (0 counts as 1, as Kong) */
    sl_target_health_t *h; /* its health slot, shared by the node's workers */
    uint64_t tag;          /* the address's tag in h->addr (0: the target's own slot) */
    int64_t cw;            /* round-robin: smooth weighted current weight */
    int conns;             /* least-connections: this worker's open tries */
    double ewma, ewma_at;  /* latency: seconds, and when last updated */
} sl_bal_entry_t;

typedef struct sl_bal_dns sl_bal_dns_t; /* a named target's lookups */

struct sl_balancer {
    sl_balancers_t *bs;
    const sl_upstream_conf_t *u;
    sl_bal_entry_t *e; /* in target order */
    size_t ne;
    unsigned gen;       /* bumped when e changes: picks made before are stale */
    int32_t *continuum; /* consistent-hashing: entry per point, -1 none */
    uint32_t npoints;
    unsigned rr_start;     /* rotates ties */
    uv_timer_t *timer;     /* active checks */
    int inflight;          /* probes of this worker */
    uv_timer_t *dns_timer; /* named targets: the DNS cache asked again every second */
    sl_bal_dns_t *dns;     /* one per target (named ones used) */
};

typedef struct sl_probe sl_probe_t;

struct sl_balancers {
    uv_loop_t *loop;
    const sl_conf_t *conf;
    sl_dns_t *dns;
    sl_balancer_t *b; /* one per upstream, conf->upstreams order */
    size_t n;
    sl_uppool_t *probe_pool; /* no keep-alive: every probe is a new connection */
    sl_probe_t *probes;
    int stopped;
};

/* The host a connection to entry e goes to: its address, or the target's
 * name while not resolved (the connector resolves it then). */
static inline const char *
sl_bal_entry_host(const sl_balancer_t *b, const sl_bal_entry_t *e)
{
    return e->host[0] ? e->host : b->u->targets[e->t].host;
}

/* balancer_addr.c: the first entries (IP targets, named ones unresolved)
 * and their resolution; stop cancels the lookups, free releases. */
void sl_bal_entries_init(sl_balancer_t *b);
/* Target t's last DNS answer: "A", "AAAA", "SRV", the lookup's error
 * message, or "unknown" before the first; *error is set when the last
 * lookup failed (the target has no entries then: Kong's DNS_ERROR). */
const char *sl_bal_dns_source(const sl_balancer_t *b, size_t t, int *error);
void sl_bal_entries_stop(sl_balancer_t *b);
void sl_bal_entries_free(sl_balancer_t *b);

/* balancer.c: rebuild the consistent-hashing continuum after e changed. */
void sl_bal_continuum_build(sl_balancer_t *b);

/* The address slot for the address tagged `want` (never 0) among a named
 * target's slots at time `now` (ms, monotonic): its own, a free one, or
 * one unmarked for more than SL_TARGET_ADDR_IDLE_MS; -1 if all are in use
 * (balancer_addr.c). */
int sl_bal_addr_claim(sl_target_health_t *slots, size_t n, uint64_t want, int64_t now);

#endif
