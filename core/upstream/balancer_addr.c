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
 * same slot for the same address.  Every worker touches the slots of the
 * addresses it has once a second; a slot untouched for
 * SL_TARGET_ADDR_IDLE_MS (an address no worker resolves any more) is
 * taken by the next new address.
 *
 * A lookup that fails with nothing usable in the cache (no stale answer
 * either) leaves the target without entries, as Kong's balancer does: its
 * DNS_ERROR state, asked again every second. */

#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/time.h"
#include "upstream/balancer_int.h"

#define SL_BAL_DNS_TICK_MS 1000
#define SL_BAL_MAX_ADDRS SL_TARGET_ADDR_SLOTS /* dns.c answers with at most this many */

struct sl_bal_dns {
    sl_balancer_t *b;
    size_t t;
    sl_dns_req_t *req; /* a lookup in flight */
    int first_srv;     /* dns_order: SRV is asked first (LAST: it answered last) */
    int asked;         /* this round: 1 addresses asked, 2 SRV asked */
    int full_logged;   /* "every slot is taken" said once */
    int error;         /* the last lookup failed: no entries (DNS_ERROR) */
    char source[160];  /* "A", "AAAA", "SRV" or the error; "" before the first answer */
};

/* One address (or SRV target) of a target, as the DNS answered. */
typedef struct addr {
    char host[256];
    int port, weight;
} addr_t;

static void
slot_reset(sl_target_health_t *h, int64_t now)
{
    atomic_store(&h->state, 0);
    atomic_store(&h->next_check_ms, 0);
    atomic_store(&h->seen_ms, now);
}

/* The slot among slots[0..n) for the address tagged `want` at time `now`
 * (sl_mono_ms): the one already claimed for it, else a free one, else one
 * no worker has marked for more than SL_TARGET_ADDR_IDLE_MS; a slot taken
 * is reset (healthy, never checked, seen now).  -1 when every slot is in
 * use.  The time is a parameter so that tests can move it. */
int
sl_bal_addr_claim(sl_target_health_t *slots, size_t n, uint64_t want, int64_t now)
{
    for (size_t a = 0; a < n; a++)
        if (atomic_load(&slots[a].addr) == want) {
            atomic_store(&slots[a].seen_ms, now);
            return (int)a;
        }
    for (size_t a = 0; a < n; a++) {
        uint64_t cur = 0;
        if (atomic_compare_exchange_strong(&slots[a].addr, &cur, want)) {
            slot_reset(&slots[a], now);
            return (int)a;
        }
        if (cur == want)
            return (int)a;
    }
    for (size_t a = 0; a < n; a++) {
        uint64_t cur = atomic_load(&slots[a].addr);
        int64_t seen = atomic_load(&slots[a].seen_ms);
        /* seen 0: claimed a moment ago, not marked yet */
        if (seen != 0 && now - seen > SL_TARGET_ADDR_IDLE_MS &&
            atomic_compare_exchange_strong(&slots[a].addr, &cur, want)) {
            slot_reset(&slots[a], now);
            return (int)a;
        }
    }
    return -1;
}

/* The slot of address host:port of target d->t (sl_bal_addr_claim); the
 * target's own slot when all are in use (*tag 0 then). */
static sl_target_health_t *
addr_slot(sl_balancer_t *b, sl_bal_dns_t *d, const char *host, int port, uint64_t *tag)
{
    const sl_target_conf_t *tc = &b->u->targets[d->t];
    sl_target_health_t *s = &b->bs->conf->health[tc->addr_slot];
    char key[300];
    int len = snprintf(key, sizeof(key), "%s:%d", host, port);
    uint64_t want = ((uint64_t)sl_xxh32(key, (size_t)len) << 1) | 1; /* never 0 */
    int a = sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, want, sl_mono_ms());

    *tag = want;
    if (a >= 0)
        return &s[a];
    if (!d->full_logged) {
        sl_log_warn("upstream %s: target %s: all %d address health slots are in use; "
                    "address %s shares the target's health until one is free",
                    b->u->name, tc->target, SL_TARGET_ADDR_SLOTS, key);
        d->full_logged = 1;
    }
    *tag = 0;
    return &b->bs->conf->health[tc->slot];
}

/* Once a second: mark the slots of this worker's addresses as used, and
 * claim again a slot another address took meanwhile (this worker's loop
 * was held longer than SL_TARGET_ADDR_IDLE_MS) or one that is free now. */
static void
slots_touch(sl_balancer_t *b)
{
    int64_t now = sl_mono_ms();

    for (size_t i = 0; i < b->ne; i++) {
        sl_bal_entry_t *e = &b->e[i];
        if (!e->host[0] || !b->u->targets[e->t].named)
            continue;
        if (e->tag != 0 && atomic_load(&e->h->addr) == e->tag)
            atomic_store(&e->h->seen_ms, now);
        else
            e->h = addr_slot(b, &b->dns[e->t], e->host, e->port, &e->tag);
    }
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

/* An entry for address ad of named target d->t, with its health slot. */
static void
entry_addr(sl_balancer_t *b, sl_bal_dns_t *d, sl_bal_entry_t *e, const addr_t *ad)
{
    entry_set(e, d->t, ad->host, ad->port, ad->weight, NULL);
    e->h = addr_slot(b, d, ad->host, ad->port, &e->tag);
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
    ne = sl_xcalloc(keep + n ? keep + n : 1, sizeof(*ne));
    for (size_t t = 0; t < b->u->ntargets; t++) {
        if (t != d->t) {
            for (size_t i = 0; i < b->ne; i++)
                if (b->e[i].t == t)
                    ne[k++] = b->e[i];
            continue;
        }
        for (size_t a = 0; a < n; a++, k++) {
            size_t i = 0;
            while (i < b->ne && !(b->e[i].t == t && same_addr(&b->e[i], &ads[a])))
                i++;
            if (i < b->ne)
                ne[k] = b->e[i]; /* an address that stays keeps its state and slot */
            else
                entry_addr(b, d, &ne[k], &ads[a]);
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
static void dns_failed(sl_bal_dns_t *d, const char *errmsg);

/* A lookup of this round failed: dns_order's other kind when it is asked
 * and was not yet, else the target has no address. */
static void
next_or_fail(sl_bal_dns_t *d, const char *errmsg)
{
    int srv_on = sl_dns_order(d->b->bs->dns)->srv != 0;

    if (!(d->asked & 1)) {
        lookup(d, 0);
        return;
    }
    if (srv_on && !(d->asked & 2)) {
        lookup(d, 1);
        return;
    }
    d->asked = 0;
    dns_failed(d, errmsg);
}

/* A lookup answered: with LAST in dns_order, its kind is asked first from
 * now on. */
static void
answered(sl_bal_dns_t *d, int srv)
{
    d->asked = 0;
    if (sl_dns_order(d->b->bs->dns)->last)
        d->first_srv = srv;
}

/* Neither SRV nor A/AAAA gave anything usable (the cache serves a stale
 * answer while it has one, so this is after dns_stale_ttl): the target
 * has no entries until a lookup succeeds (Kong's DNS_ERROR). */
static void
dns_failed(sl_bal_dns_t *d, const char *errmsg)
{
    sl_balancer_t *b = d->b;

    snprintf(d->source, sizeof(d->source), "%s", errmsg ? errmsg : "DNS lookup failed");
    if (!d->error)
        sl_log_warn("upstream %s: target %s has no address (DNS_ERROR): %s", b->u->name,
                    b->u->targets[d->t].target, d->source);
    d->error = 1;
    entries_replace(b, d, NULL, 0);
}

static void
answer_a(void *arg, int status, const struct sockaddr_storage *addrs, size_t n, const char *errmsg)
{
    sl_bal_dns_t *d = arg;
    sl_balancer_t *b = d->b;
    const sl_target_conf_t *tc = &b->u->targets[d->t];
    addr_t ads[SL_BAL_MAX_ADDRS] = {0};

    d->req = NULL;
    if (status < 0) {
        next_or_fail(d, errmsg);
        return;
    }
    answered(d, 0);
    d->error = 0;
    snprintf(d->source, sizeof(d->source), "%s", addrs[0].ss_family == AF_INET6 ? "AAAA" : "A");
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
        next_or_fail(d, errmsg);
        return;
    }
    answered(d, 1);
    d->error = 0;
    snprintf(d->source, sizeof(d->source), "SRV");
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

    d->asked |= srv ? 2 : 1;
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
        d->asked = 0;
        lookup(d, d->first_srv); /* dns_order: SRV first or the addresses first */
    }
}

static void
dns_tick(uv_timer_t *tm)
{
    slots_touch(tm->data);
    resolve_all(tm->data);
}

const char *
sl_bal_dns_source(const sl_balancer_t *b, size_t t, int *error)
{
    const sl_target_conf_t *tc = &b->u->targets[t];

    *error = 0;
    if (!tc->named)
        return strchr(tc->host, ':') ? "AAAA" : "A"; /* an IP literal: Kong's own record */
    *error = b->dns[t].error;
    return b->dns[t].source[0] ? b->dns[t].source : "unknown";
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
        b->dns[t].first_srv = b->bs->dns != NULL && sl_dns_order(b->bs->dns)->srv == 1;
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
