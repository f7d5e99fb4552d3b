/* balancer.h - Kong's ring-balancer for `upstreams`: picking a target for
 * each try of a request (round-robin, consistent-hashing,
 * least-connections, latency), passive health reports from the tries, and
 * active health checks.  docs/upstream.md ("Upstreams and targets").
 *
 * Per worker: the algorithms' state (current weights, the hash continuum,
 * connection counts, latency averages).  Per node: each target's health,
 * in the configuration's shared table (conf->health), so every worker
 * agrees; an active check of a target is claimed by one worker per
 * interval with a compare-and-swap on the target's next-check time. */

#ifndef SL_BALANCER_H
#define SL_BALANCER_H

#include "conf/config.h"
#include "upstream/upstream.h"

typedef struct sl_balancers sl_balancers_t;
typedef struct sl_balancer sl_balancer_t;

/* One request's walk through an upstream's targets (lives in the request). */
typedef struct sl_bal_pick {
    const sl_upstream_conf_t *u;
    sl_balancer_t *b;
    int entry;                  /* the last entry (address) picked, -1 none */
    int target;                 /* its target, index into u->targets */
    unsigned gen;               /* the balancer's entries when picked */
    struct sl_target_health *h; /* the entry's health slot */
    char host[256];             /* its address (or SRV target); "" = the target's own host */
    int port;                   /* the port to connect to */
    int counted;                /* least-connections: the pick holds a connection count */
    uint32_t hash;              /* consistent-hashing: the request's point on the continuum */
    uint64_t tried[4];          /* entries already tried (the first 256) */
} sl_bal_pick_t;

typedef enum {
    SL_BAL_HTTP,    /* the target answered with `status` */
    SL_BAL_TCP,     /* connecting or talking to it failed */
    SL_BAL_TIMEOUT, /* it timed out */
} sl_bal_report_t;

/* The worker's balancers for conf (active checks start on loop; probes
 * resolve names with dns, the worker's resolver, freed after the
 * balancers are stopped).  NULL when conf has no upstreams. */
sl_balancers_t *sl_balancers_new(uv_loop_t *loop, const sl_conf_t *conf, sl_dns_t *dns);
/* Stop the active checks (a draining worker). */
void sl_balancers_stop(sl_balancers_t *bs);
/* After the loop ran the closes of sl_balancers_stop. */
void sl_balancers_free(sl_balancers_t *bs);

/* Start a request's walk: `value` is the consistent-hashing input (Kong's
 * get_value_to_hash; "" when none).  Returns 0, or -1 when bs has no
 * balancer for u. */
int sl_balancer_begin(sl_balancers_t *bs, const sl_upstream_conf_t *u, sl_bal_pick_t *pk,
                      const char *value, size_t len);
/* The target for the next try (index into u->targets; pk->ip is the
 * address to connect to, "" for the target's own host), or -1 when no
 * address is available: Kong's 503 "failure to get a peer from the
 * ring-balancer". */
int sl_balancer_next(sl_bal_pick_t *pk);
/* What the try at pk->target came to (passive health checks). */
void sl_balancer_report(sl_bal_pick_t *pk, sl_bal_report_t kind, int status);
/* The request is over: release the pick (least-connections) and record
 * its round-trip time (latency), rtt_us < 0 when unknown. */
void sl_balancer_done(sl_bal_pick_t *pk, int64_t rtt_us);

/* A target's health as the node sees it: 1 healthy, 0 unhealthy, -1 health
 * checks off for its upstream (Kong's "HEALTHCHECKS_OFF"). */
int sl_balancer_target_health(const sl_conf_t *conf, const sl_upstream_conf_t *u, size_t t);
/* One address of a target as a worker's balancer has it (Kong's
 * getTargetStatus addresses). */
typedef struct sl_bal_addr_status {
    const char *ip; /* an address, an SRV record's target, or the target's host while unresolved */
    int port;
    int weight;
    int health; /* 1 healthy, 0 unhealthy, -1 no health checks (or weight 0): HEALTHCHECKS_OFF */
} sl_bal_addr_status_t;

typedef void (*sl_bal_addr_fn)(void *arg, const sl_bal_addr_status_t *a);

#define SL_BAL_DNS_ERROR 2 /* a named target whose lookups fail: no address */

/* Target t of u as this worker's balancer has it: fn (may be NULL) for
 * each of its addresses, in balancer order.  Returns the target's health
 * as Kong's Admin API derives it: 1 HEALTHY (an address is), 0 UNHEALTHY
 * (none is and one is unhealthy), -1 HEALTHCHECKS_OFF, SL_BAL_DNS_ERROR (no
 * address: the last lookup failed).  *dns (may be NULL) gets the last
 * answer's record type ("A", "AAAA", "SRV"), the lookup's error, or
 * "unknown" before the first.  Without a balancer for u (bs NULL): the
 * node's view, the target's own host as its one address. */
int sl_balancer_target_status(const sl_balancers_t *bs, const sl_conf_t *conf,
                              const sl_upstream_conf_t *u, size_t t, sl_bal_addr_fn fn, void *arg,
                              const char **dns);
/* Active probes sent to a target by every worker of the node (tests). */
uint64_t sl_balancer_target_probes(const sl_conf_t *conf, const sl_upstream_conf_t *u, size_t t);

/* xxHash32 with seed 0 (Kong's consistent-hashing hash). */
uint32_t sl_xxh32(const void *data, size_t len);

#endif
