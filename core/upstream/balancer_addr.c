/* balancer_addr.c - a balancer's entries: one per address of each target,
 * as Kong's balancer has (balancer_int.h, docs/upstream.md).
 *
 * A target named by an IP address is one entry.  A target named by a host
 * name is resolved through the worker's DNS cache (dns.c) and becomes one
 * entry per address, each with the target's weight; the cache is asked
 * again every second, so a new answer (after the records' TTL) replaces
 * the entries within a second of arriving.  Until the first answer, or
 * when a name never resolved, the target is one entry carrying the name
 * (the connector resolves it and the try fails with the DNS error).
 *
 * Health is per address: each named target has SL_TARGET_ADDR_SLOTS slots
 * in the shared table, claimed by the first worker that sees an address
 * (compare-and-swap of the address's tag), so all workers report into the
 * same slot for the same address. */

#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "upstream/balancer_int.h"

#define SL_BAL_DNS_TICK_MS 1000
#define SL_BAL_MAX_ADDRS 16 /* dns.c answers with at most this many */

struct sl_bal_dns {
    sl_balancer_t *b;
    size_t t;
    sl_dns_req_t *req; /* a lookup in flight */
    int last_a;        /* Kong's dns_order LAST: the A lookup answered last, ask it first */
    int full_logged;   /* "more addresses than slots" said once */
};

/* One address (or SRV target) of a target, as the DNS answered. */
typedef struct addr {
    char host[256];
    int port, weight;
} addr_t;

/* The slot of address a of target d->t: the one already claimed for it,
 * else a free one claimed now; the target's own slot when all are taken. */
static sl_target_health_t *
addr_slot(sl_balancer_t *b, sl_bal_dns_t *d, const addr_t *ad)
{
    const sl_target_conf_t *tc = &b->u->targets[d->t];
    sl_target_health_t *s = &b->bs->conf->health[tc->addr_slot];
    char key[300];
    int len = snprintf(key, sizeof(key), "%s:%d", ad->host, ad->port);
    uint64_t tag = ((uint64_t)sl_xxh32(key, (size_t)len) << 1) | 1; /* never 0 */

    for (size_t a = 0; a < SL_TARGET_ADDR_SLOTS; a++)
        if (atomic_load(&s[a].addr) == tag)
            return &s[a];
    for (size_t a = 0; a < SL_TARGET_ADDR_SLOTS; a++) {
        uint64_t cur = 0;
        if (atomic_compare_exchange_strong(&s[a].addr, &cur, tag) || cur == tag)
            return &s[a];
    }
    if (!d->full_logged) {
        sl_log_warn("upstream %s: target %s has more than %d addresses; the others share "
                    "the target's health",
                    b->u->name, tc->target, SL_TARGET_ADDR_SLOTS);
        d->full_logged = 1;
    }
    return &b->bs->conf->health[tc->slot];
}

static void
entry_set(sl_bal_entry_t *e, size_t t, const char *host, int port, int weight,
          sl_target_health_t *h)
{
    memset(e, 0, sizeof(*e));
    e->t = t;
    snprintf(e->host, sizeof(e->host), "%s", host);
    e->port = port;
    e->weight = weight;
    e->h = h;
}

static int
same_addr(const sl_bal_entry_t *e, const addr_t *a)
{
    return e->port == a->port && e->weight == a->weight && strcmp(e->host, a->host) == 0;
}

/* Replace target d->t's entries with the n addresses ads, unless they are
 * the same already (state of addresses that stay is kept).  1 if replaced. */
static int
entries_replace(sl_balancer_t *b, sl_bal_dns_t *d, const addr_t *ads, size_t n)
{
    size_t keep = 0, k = 0, same = 0, cur = 0;
    sl_bal_entry_t *ne;

    for (size_t i = 0; i < b->ne; i++) {
        if (b->e[i].t != d->t) {
            keep++;
            continue;
        }
        same += cur < n && same_addr(&b->e[i], &ads[cur]);
        cur++;
    }
    if (cur == n && same == n)
        return 0;
    ne = sl_xcalloc(keep + n, sizeof(*ne));
    for (size_t t = 0; t < b->u->ntargets; t++) {
        if (t != d->t) {
            for (size_t i = 0; i < b->ne; i++)
                if (b->e[i].t == t)
                    ne[k++] = b->e[i];
            continue;
        }
        for (size_t a = 0; a < n; a++, k++) {
            entry_set(&ne[k], t, ads[a].host, ads[a].port, ads[a].weight, addr_slot(b, d, &ads[a]));
            for (size_t i = 0; i < b->ne; i++) /* an address that stays keeps its state */
                if (b->e[i].t == t && same_addr(&b->e[i], &ads[a]))
                    ne[k] = b->e[i];
        }
    }
    free(b->e);
    b->e = ne;
    b->ne = k;
    b->gen++;
    if (b->u->algorithm == SL_LB_CONSISTENT_HASHING)
        sl_bal_continuum_build(b);
    return 1;
}

static void
addr_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
    if (ss->ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)ss, out, size);
    else
        uv_ip4_name((const struct sockaddr_in *)ss, out, size);
}

static void lookup(sl_bal_dns_t *d, int srv);

static void
answer_a(void *arg, int status, const struct sockaddr_storage *addrs, size_t n, const char *errmsg)
{
    sl_bal_dns_t *d = arg;
    sl_balancer_t *b = d->b;
    const sl_target_conf_t *tc = &b->u->targets[d->t];
    addr_t ads[SL_BAL_MAX_ADDRS] = {0};

    d->req = NULL;
    if (status < 0) {
        if (d->last_a) { /* Kong's order: LAST (A), then SRV */
            d->last_a = 0;
            lookup(d, 1);
            return;
        }
        /* keep what we have (Kong: the previous addresses until a new answer) */
        sl_log_debug("upstream %s: %s", b->u->name, errmsg ? errmsg : "DNS lookup failed");
        return;
    }
    d->last_a = 1;
    if (n > SL_BAL_MAX_ADDRS)
        n = SL_BAL_MAX_ADDRS;
    for (size_t a = 0; a < n; a++) {
        addr_text(&addrs[a], ads[a].host, sizeof(ads[a].host));
        ads[a].port = tc->port;
        ads[a].weight = tc->weight;
    }
    if (entries_replace(b, d, ads, n))
        sl_log_info("upstream %s: target %s now has %zu address%s", b->u->name, tc->target, n,
                    n == 1 ? "" : "es");
}

/* SRV records: one entry per record of the best priority, with its port
 * and weight (0 counts as 1, as Kong); the record's target is resolved
 * when connecting.  No SRV records: the A/AAAA records. */
static void
answer_srv(void *arg, int status, const sl_srv_rec_t *recs, size_t n, const char *errmsg)
{
    sl_bal_dns_t *d = arg;
    sl_balancer_t *b = d->b;
    const sl_target_conf_t *tc = &b->u->targets[d->t];
    addr_t ads[SL_BAL_MAX_ADDRS] = {0};
    size_t k = 0;

    d->req = NULL;
    if (status < 0) {
        if (!d->last_a)
            lookup(d, 0);
        return;
    }
    d->last_a = 0;
    for (size_t i = 0; i < n && k < SL_BAL_MAX_ADDRS && recs[i].priority == recs[0].priority;
         i++, k++) {
        snprintf(ads[k].host, sizeof(ads[k].host), "%s", recs[i].target);
        ads[k].port = recs[i].port ? recs[i].port : tc->port;
        ads[k].weight = tc->weight == 0 ? 0 : recs[i].weight ? recs[i].weight : 1;
    }
    if (entries_replace(b, d, ads, k))
        sl_log_info("upstream %s: target %s now has %zu SRV record%s", b->u->name, tc->target, k,
                    k == 1 ? "" : "s");
}

/* Ask the DNS cache for target d->t: its SRV records or its addresses. */
static void
lookup(sl_bal_dns_t *d, int srv)
{
    sl_balancer_t *b = d->b;
    const char *name = b->u->targets[d->t].host;
    sl_dns_req_t *req = NULL;
    int rc;

    rc = srv ? sl_dns_resolve_srv(b->bs->dns, name, answer_srv, d, &req)
             : sl_dns_resolve(b->bs->dns, name, answer_a, d, &req);
    if (rc == 0 && req != NULL)
        d->req = req; /* NULL when answered already */
}

static void
resolve_all(sl_balancer_t *b)
{
    for (size_t t = 0; t < b->u->ntargets; t++) {
        sl_bal_dns_t *d = &b->dns[t];
        if (!b->u->targets[t].named || d->req != NULL || b->bs->dns == NULL)
            continue;
        lookup(d, !d->last_a); /* Kong's dns_order LAST,SRV,A */
    }
}

static void
dns_tick(uv_timer_t *tm)
{
    resolve_all(tm->data);
}

void
sl_bal_entries_init(sl_balancer_t *b)
{
    const sl_upstream_conf_t *u = b->u;
    int named = 0;

    b->e = sl_xcalloc(u->ntargets ? u->ntargets : 1, sizeof(*b->e));
    b->ne = u->ntargets;
    b->dns = sl_xcalloc(u->ntargets ? u->ntargets : 1, sizeof(*b->dns));
    for (size_t t = 0; t < u->ntargets; t++) {
        entry_set(&b->e[t], t, u->targets[t].named ? "" : u->targets[t].host, u->targets[t].port,
                  u->targets[t].weight, &b->bs->conf->health[u->targets[t].slot]);
        b->dns[t].b = b;
        b->dns[t].t = t;
        named |= u->targets[t].named;
    }
    if (!named || b->bs->dns == NULL)
        return;
    b->dns_timer = sl_xmalloc(sizeof(*b->dns_timer));
    uv_timer_init(b->bs->loop, b->dns_timer);
    b->dns_timer->data = b;
    uv_timer_start(b->dns_timer, dns_tick, SL_BAL_DNS_TICK_MS, SL_BAL_DNS_TICK_MS);
    uv_unref((uv_handle_t *)b->dns_timer);
    resolve_all(b);
}

static void
timer_free_cb(uv_handle_t *h)
{
    free(h);
}

void
sl_bal_entries_stop(sl_balancer_t *b)
{
    for (size_t t = 0; b->dns != NULL && t < b->u->ntargets; t++) {
        sl_dns_cancel(b->dns[t].req);
        b->dns[t].req = NULL;
    }
    if (b->dns_timer) {
        uv_timer_stop(b->dns_timer);
        uv_close((uv_handle_t *)b->dns_timer, timer_free_cb);
        b->dns_timer = NULL;
    }
}

void
sl_bal_entries_free(sl_balancer_t *b)
{
    sl_bal_entries_stop(b);
    free(b->e);
    free(b->dns);
    b->e = NULL;
    b->dns = NULL;
    b->ne = 0;
}
