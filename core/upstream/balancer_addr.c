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
    int full_logged;   /* "more addresses than slots" said once */
};

/* The slot of address ip of target tc: the one already claimed for it, else
 * a free one claimed now; the target's own slot when all are taken. */
static sl_target_health_t *
addr_slot(sl_balancer_t *b, sl_bal_dns_t *d, const char *ip)
{
    const sl_target_conf_t *tc = &b->u->targets[d->t];
    sl_target_health_t *s = &b->bs->conf->health[tc->addr_slot];
    uint64_t tag = ((uint64_t)sl_xxh32(ip, strlen(ip)) << 1) | 1; /* never 0 */

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
entry_set(sl_balancer_t *b, sl_bal_entry_t *e, size_t t, const char *ip, sl_target_health_t *h)
{
    memset(e, 0, sizeof(*e));
    e->t = t;
    snprintf(e->ip, sizeof(e->ip), "%s", ip);
    e->h = h;
}

/* Replace target t's entries with the n addresses ips (state of addresses
 * that stay is kept). */
static void
entries_replace(sl_balancer_t *b, sl_bal_dns_t *d, char (*ips)[46], size_t n)
{
    size_t keep = 0, k = 0;
    sl_bal_entry_t *ne;

    for (size_t i = 0; i < b->ne; i++)
        keep += b->e[i].t != d->t;
    ne = sl_xcalloc(keep + n, sizeof(*ne));
    for (size_t t = 0; t < b->u->ntargets; t++) {
        if (t != d->t) {
            for (size_t i = 0; i < b->ne; i++)
                if (b->e[i].t == t)
                    ne[k++] = b->e[i];
            continue;
        }
        for (size_t a = 0; a < n; a++, k++) {
            entry_set(b, &ne[k], t, ips[a], addr_slot(b, d, ips[a]));
            for (size_t i = 0; i < b->ne; i++) /* an address that stays keeps its state */
                if (b->e[i].t == t && strcmp(b->e[i].ip, ips[a]) == 0)
                    ne[k] = b->e[i];
        }
    }
    free(b->e);
    b->e = ne;
    b->ne = k;
    b->gen++;
    if (b->u->algorithm == SL_LB_CONSISTENT_HASHING)
        sl_bal_continuum_build(b);
}

static void
addr_text(const struct sockaddr_storage *ss, char *out, size_t size)
{
    if (ss->ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)ss, out, size);
    else
        uv_ip4_name((const struct sockaddr_in *)ss, out, size);
}

static void
dns_answer(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
           const char *errmsg)
{
    sl_bal_dns_t *d = arg;
    sl_balancer_t *b = d->b;
    char ips[SL_BAL_MAX_ADDRS][46];
    size_t same = 0, cur = 0;

    d->req = NULL;
    if (status < 0) { /* keep what we have (Kong: the previous addresses until a new answer) */
        sl_log_debug("upstream %s: %s", b->u->name, errmsg ? errmsg : "DNS lookup failed");
        return;
    }
    if (n > SL_BAL_MAX_ADDRS)
        n = SL_BAL_MAX_ADDRS;
    for (size_t a = 0; a < n; a++)
        addr_text(&addrs[a], ips[a], sizeof(ips[a]));
    for (size_t i = 0; i < b->ne; i++) {
        if (b->e[i].t != d->t)
            continue;
        same += cur < n && strcmp(b->e[i].ip, ips[cur]) == 0;
        cur++;
    }
    if (cur == n && same == n)
        return;
    entries_replace(b, d, ips, n);
    sl_log_info("upstream %s: target %s now has %zu address%s", b->u->name,
                b->u->targets[d->t].target, n, n == 1 ? "" : "es");
}

static void
resolve_all(sl_balancer_t *b)
{
    for (size_t t = 0; t < b->u->ntargets; t++) {
        sl_bal_dns_t *d = &b->dns[t];
        sl_dns_req_t *req = NULL;
        if (!b->u->targets[t].named || d->req != NULL || b->bs->dns == NULL)
            continue;
        if (sl_dns_resolve(b->bs->dns, b->u->targets[t].host, dns_answer, d, &req) == 0)
            d->req = req; /* NULL when answered already */
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
        entry_set(b, &b->e[t], t, u->targets[t].named ? "" : u->targets[t].host,
                  &b->bs->conf->health[u->targets[t].slot]);
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
