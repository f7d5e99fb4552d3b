/* balancer.c - target selection and health checks for Kong's upstreams
 * (balancer.h, docs/upstream.md). */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "base/time.h"
#include "upstream/balancer_int.h"

#define SL_CH_SERVER_POINTS 160 /* Kong: points per target when weights are equal */
#define SL_CH_MIN_POINTS 1000
#define SL_EWMA_DECAY_S 10.0 /* Kong's latency algorithm */

struct sl_probe {
    sl_probe_t *next, **prev;
    sl_balancer_t *b;
    sl_target_health_t *h; /* the entry's health slot */
    size_t t;              /* its target */
    char where[200];       /* "target (address ip:port)" for the log */
    sl_upconnect_t *pending;
    sl_upconn_t *c;
    uv_timer_t *timer;
    char *req;
    size_t req_len;
    char line[64];
    size_t got;
};

/* ---- xxHash32 ---- */

#define XXP1 2654435761U
#define XXP2 2246822519U
#define XXP3 3266489917U
#define XXP4 668265263U
#define XXP5 374761393U

static uint32_t
rotl32(uint32_t x, int r)
{
    return (x << r) | (x >> (32 - r));
}

static uint32_t
rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t
sl_xxh32(const void *data, size_t len)
{
    const unsigned char *p = data, *end = p + len;
    uint32_t h;

    if (len >= 16) {
        const unsigned char *limit = end - 16;
        uint32_t v1 = XXP1 + XXP2, v2 = XXP2, v3 = 0, v4 = 0 - XXP1;
        do {
            v1 = rotl32(v1 + rd32(p) * XXP2, 13) * XXP1;
            v2 = rotl32(v2 + rd32(p + 4) * XXP2, 13) * XXP1;
            v3 = rotl32(v3 + rd32(p + 8) * XXP2, 13) * XXP1;
            v4 = rotl32(v4 + rd32(p + 12) * XXP2, 13) * XXP1;
            p += 16;
        } while (p <= limit);
        h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
    } else {
        h = XXP5;
    }
    h += (uint32_t)len;
    for (; p + 4 <= end; p += 4)
        h = rotl32(h + rd32(p) * XXP3, 17) * XXP4;
    for (; p < end; p++)
        h = rotl32(h + *p * XXP5, 11) * XXP1;
    h ^= h >> 15;
    h *= XXP2;
    h ^= h >> 13;
    h *= XXP3;
    h ^= h >> 16;
    return h;
}

/* ---- shared health ---- */

static int
available(const sl_balancer_t *b, size_t e)
{
    return b->e[e].weight > 0 &&
           !(atomic_load_explicit(&b->e[e].h->state, memory_order_relaxed) & SL_HEALTH_UNHEALTHY);
}

static int
weight(const sl_balancer_t *b, size_t e)
{
    return b->e[e].weight;
}

/* One report into a target's packed state: a success (counter shift
 * SL_HEALTH_CTR_SUCCESS) resets the failure counters, a failure the
 * success counter; a counter reaching its threshold flips the health and
 * zeroes every counter.  limit 0: that counter is off (Kong).  One CAS,
 * so workers reporting at once are all counted. */
static void
health_report(sl_balancer_t *b, sl_target_health_t *h, const char *where, int shift, int limit,
              const char *why)
{
    uint64_t old, nw;
    int success = shift == SL_HEALTH_CTR_SUCCESS, flipped;

    if (limit <= 0)
        return;
    old = atomic_load(&h->state);
    do {
        int unhealthy = (old & SL_HEALTH_UNHEALTHY) != 0;
        flipped = 0;
        if (success ? !unhealthy : unhealthy) {
            /* already there: a success clears failures, a failure clears successes */
            nw = success ? (old & (SL_HEALTH_UNHEALTHY | 0xffu)) : (old & ~(uint64_t)0xffu);
            if (nw == old)
                return;
        } else {
            uint64_t c = ((old >> shift) & 0xff) + 1;
            if ((int)c >= limit) {
                nw = success ? 0 : SL_HEALTH_UNHEALTHY;
                flipped = 1;
            } else {
                nw = success ? (old & SL_HEALTH_UNHEALTHY) : (old & ~(uint64_t)0xffu);
                nw = (nw & ~((uint64_t)0xff << shift)) | (c << shift);
            }
        }
    } while (!atomic_compare_exchange_weak(&h->state, &old, nw));
    if (flipped)
        sl_log_warn("[healthchecks] upstream %s: target %s is now %s (%s)", b->u->name, where,
                    success ? "healthy" : "unhealthy", why);
}

/* Kong's balancer health: more than `threshold` % of the weight available
 * (any at all with the default 0). */
static int
balancer_healthy(const sl_balancer_t *b)
{
    int64_t total = 0, avail = 0;

    for (size_t e = 0; e < b->ne; e++) {
        total += weight(b, e);
        if (available(b, e))
            avail += weight(b, e);
    }
    return total > 0 && (double)avail * 100.0 / (double)total > b->u->threshold;
}

int
sl_balancer_target_health(const sl_conf_t *conf, const sl_upstream_conf_t *u, size_t t)
{
    const sl_target_conf_t *tc = &u->targets[t];
    int claimed = 0;

    if (!u->active_on && !u->passive_on)
        return -1;
    /* a named target is healthy while one of its addresses is */
    for (size_t a = 0; tc->named && a < SL_TARGET_ADDR_SLOTS; a++) {
        const sl_target_health_t *h = &conf->health[tc->addr_slot + a];
        if (atomic_load(&h->addr) == 0)
            continue;
        claimed = 1;
        if (!(atomic_load(&h->state) & SL_HEALTH_UNHEALTHY))
            return 1;
    }
    if (claimed)
        return 0;
    return !(atomic_load(&conf->health[tc->slot].state) & SL_HEALTH_UNHEALTHY);
}

int
sl_balancer_target_status(const sl_balancers_t *bs, const sl_conf_t *conf,
                          const sl_upstream_conf_t *u, size_t t, sl_bal_addr_fn fn, void *arg,
                          const char **dns)
{
    const sl_target_conf_t *tc = &u->targets[t];
    const sl_balancer_t *b;
    int off = (!u->active_on && !u->passive_on) || tc->weight == 0, any = 0, sick = 0, err;
    size_t n = 0;
    const char *src;

    if (bs == NULL || u->idx >= bs->n || bs->b[u->idx].u != u) {
        int h = sl_balancer_target_health(conf, u, t);
        sl_bal_addr_status_t a = {tc->host, tc->port, tc->weight, off ? -1 : h};
        if (fn)
            fn(arg, &a);
        if (dns)
            *dns = "unknown";
        return a.health;
    }
    b = &bs->b[u->idx];
    src = sl_bal_dns_source(b, t, &err);
    if (dns)
        *dns = src;
    for (size_t e = 0; e < b->ne; e++) {
        const sl_bal_entry_t *en = &b->e[e];
        if (en->t != t)
            continue;
        int healthy =
            !(atomic_load_explicit(&en->h->state, memory_order_relaxed) & SL_HEALTH_UNHEALTHY);
        sl_bal_addr_status_t a = {sl_bal_entry_host(b, en), en->port, en->weight,
                                  off ? -1 : healthy};
        any |= a.health == 1;
        sick |= a.health == 0;
        n++;
        if (fn)
            fn(arg, &a);
    }
    if (n == 0) /* only a failed lookup leaves a target without entries */
        return err ? SL_BAL_DNS_ERROR : -1;
    return any ? 1 : sick ? 0 : -1;
}

uint64_t
sl_balancer_target_probes(const sl_conf_t *conf, const sl_upstream_conf_t *u, size_t t)
{
    const sl_target_conf_t *tc = &u->targets[t];
    uint64_t n = atomic_load(&conf->health[tc->slot].probes);

    for (size_t a = 0; tc->named && a < SL_TARGET_ADDR_SLOTS; a++)
        n += atomic_load(&conf->health[tc->addr_slot + a].probes);
    return n;
}

/* ---- consistent hashing (Kong's continuum, same points) ---- */

void
sl_bal_continuum_build(sl_balancer_t *b)
{
    size_t n = b->ne, *order = sl_xcalloc(n ? n : 1, sizeof(size_t));
    int64_t total = 0;

    b->npoints = b->u->slots >= SL_CH_MIN_POINTS ? (uint32_t)b->u->slots : SL_CH_MIN_POINTS;
    if (b->continuum == NULL)
        b->continuum = sl_xmalloc(b->npoints * sizeof(int32_t));
    for (uint32_t i = 0; i < b->npoints; i++)
        b->continuum[i] = -1;
    for (size_t e = 0; e < n; e++) {
        order[e] = e;
        total += weight(b, e);
    }
    /* Kong adds addresses sorted by name then port, so that collisions
     * always resolve the same way */
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            const sl_bal_entry_t *a = &b->e[order[j - 1]], *c = &b->e[order[j]];
            int cmp = strcmp(sl_bal_entry_host(b, a), sl_bal_entry_host(b, c));
            if (cmp < 0 || (cmp == 0 && a->port <= c->port))
                break;
            size_t tmp = order[j];
            order[j] = order[j - 1];
            order[j - 1] = tmp;
        }
    for (size_t k = 0; k < n && total > 0; k++) {
        const sl_bal_entry_t *en = &b->e[order[k]];
        int w = weight(b, order[k]), port = en->port;
        long entries = (long)floor((double)w / (double)total * (double)n * SL_CH_SERVER_POINTS);
        if (w > 0 && entries == 0)
            entries = 1;
        for (long i = 1; i <= entries; i++) {
            char name[300];
            /* Kong's key is ip .. ":" .. (":" .. port) .. " " .. i */
            int len = snprintf(name, sizeof(name), "%s::%d %ld", sl_bal_entry_host(b, en), port, i);
            uint32_t idx = sl_xxh32(name, (size_t)len) % b->npoints;
            if (b->continuum[idx] < 0)
                b->continuum[idx] = (int32_t)order[k];
            else
                entries++;
            if (i > (long)b->npoints)
                break; /* more addresses than points: Kong stops too */
        }
    }
    free(order);
}

/* ---- picking ---- */

static int
tried(const sl_bal_pick_t *pk, size_t t)
{
    return t < 256 && (pk->tried[t / 64] >> (t % 64)) & 1;
}

static int
pick_rr(sl_bal_pick_t *pk, int skip_tried)
{
    sl_balancer_t *b = pk->b;
    int64_t total = 0;
    int best = -1;

    for (size_t e = 0; e < b->ne; e++) {
        if (!available(b, e) || (skip_tried && tried(pk, e)))
            continue;
        b->e[e].cw += weight(b, e);
        total += weight(b, e);
        if (best < 0 || b->e[e].cw > b->e[best].cw)
            best = (int)e;
    }
    if (best >= 0)
        b->e[best].cw -= total;
    return best;
}

static int
pick_ch(sl_bal_pick_t *pk)
{
    sl_balancer_t *b = pk->b;
    uint32_t start = pk->hash % b->npoints, i = start;

    /* Kong walks down from the hashed point to the first available target
     * (a retry starts from the same point) */
    do {
        int32_t t = b->continuum[i];
        if (t >= 0 && available(b, (size_t)t))
            return t;
        i = i == 0 ? b->npoints - 1 : i - 1;
    } while (i != start);
    return -1;
}

static int
pick_lc(sl_bal_pick_t *pk, int skip_tried)
{
    sl_balancer_t *b = pk->b;
    size_t n = b->ne;
    int best = -1;
    double bs = 0;

    for (size_t k = 0; k < n; k++) {
        size_t t = (b->rr_start + k) % n;
        if (!available(b, t) || (skip_tried && tried(pk, t)))
            continue;
        double s = (double)(b->e[t].conns + 1) / weight(b, t);
        if (best < 0 || s < bs) {
            best = (int)t;
            bs = s;
        }
    }
    b->rr_start++;
    return best;
}

static double
ewma_now(const sl_balancer_t *b, size_t t, double now)
{
    double td = now - b->e[t].ewma_at;
    return b->e[t].ewma * exp(-(td > 0 ? td : 0) / SL_EWMA_DECAY_S);
}

static int
pick_latency(sl_bal_pick_t *pk, int skip_tried)
{
    sl_balancer_t *b = pk->b;
    double now = (double)sl_mono_ms() / 1000.0, bs = 0;
    size_t n = b->ne;
    int best = -1;

    for (size_t k = 0; k < n; k++) {
        size_t t = (b->rr_start + k) % n;
        if (!available(b, t) || (skip_tried && tried(pk, t)))
            continue;
        double s = ewma_now(b, t, now) / weight(b, t);
        if (best < 0 || s < bs) {
            best = (int)t;
            bs = s;
        }
    }
    b->rr_start++;
    return best;
}

int
sl_balancer_begin(sl_balancers_t *bs, const sl_upstream_conf_t *u, sl_bal_pick_t *pk,
                  const char *value, size_t len)
{
    memset(pk, 0, sizeof(*pk));
    pk->target = pk->entry = -1;
    if (bs == NULL || u->idx >= bs->n || bs->b[u->idx].u != u)
        return -1;
    pk->u = u;
    pk->b = &bs->b[u->idx];
    pk->gen = pk->b->gen;
    if (u->algorithm == SL_LB_CONSISTENT_HASHING)
        pk->hash = sl_xxh32(value ? value : "", value ? len : 0);
    return 0;
}

/* The entry of pk's last pick in the current entries (found again by
 * target and address when they were replaced since), NULL if gone. */
static sl_bal_entry_t *
pick_entry(sl_balancer_t *b, const sl_bal_pick_t *pk)
{
    if (pk->entry < 0)
        return NULL;
    if (pk->gen == b->gen)
        return &b->e[pk->entry];
    for (size_t e = 0; e < b->ne; e++)
        if ((int)b->e[e].t == pk->target && b->e[e].port == pk->port &&
            strcmp(b->e[e].host, pk->host) == 0)
            return &b->e[e];
    return NULL;
}

int
sl_balancer_next(sl_bal_pick_t *pk)
{
    sl_balancer_t *b = pk->b;
    int e = -1;

    if (b == NULL)
        return -1;
    if (pk->counted) {
        sl_bal_entry_t *last = pick_entry(b, pk);
        if (last != NULL)
            last->conns--;
        pk->counted = 0;
    }
    if (pk->gen != b->gen) { /* the addresses changed since the last try */
        memset(pk->tried, 0, sizeof(pk->tried));
        pk->gen = b->gen;
    }
    pk->entry = pk->target = -1;
    if (!balancer_healthy(b))
        return -1;
    switch (b->u->algorithm) {
    case SL_LB_CONSISTENT_HASHING:
        e = pick_ch(pk);
        break;
    case SL_LB_ROUND_ROBIN:
        /* a retry goes to an address not tried yet, while there is one */
        if ((e = pick_rr(pk, 1)) < 0)
            e = pick_rr(pk, 0);
        break;
    case SL_LB_LEAST_CONNECTIONS:
        if ((e = pick_lc(pk, 1)) < 0)
            e = pick_lc(pk, 0);
        if (e >= 0) {
            b->e[e].conns++;
            pk->counted = 1;
        }
        break;
    case SL_LB_LATENCY:
        if ((e = pick_latency(pk, 1)) < 0)
            e = pick_latency(pk, 0);
        break;
    }
    if (e < 0)
        return -1;
    if (e < 256)
        pk->tried[e / 64] |= (uint64_t)1 << (e % 64);
    pk->entry = e;
    pk->target = (int)b->e[e].t;
    pk->h = b->e[e].h;
    pk->port = b->e[e].port;
    memcpy(pk->host, b->e[e].host, sizeof(pk->host));
    return pk->target;
}

void
sl_balancer_report(sl_bal_pick_t *pk, sl_bal_report_t kind, int status)
{
    sl_balancer_t *b = pk->b;
    const sl_hc_passive_t *ps;
    char where[200];

    if (b == NULL || pk->entry < 0)
        return;
    ps = &b->u->passive;
    if (pk->host[0] && b->u->targets[pk->target].named)
        snprintf(where, sizeof(where), "%s (address %.100s:%d)", b->u->targets[pk->target].target,
                 pk->host, pk->port);
    else
        snprintf(where, sizeof(where), "%s", b->u->targets[pk->target].target);
    switch (kind) {
    case SL_BAL_TCP:
        health_report(b, pk->h, where, SL_HEALTH_CTR_TCP, ps->unhealthy_tcp_failures,
                      "passive: tcp failures");
        break;
    case SL_BAL_TIMEOUT:
        health_report(b, pk->h, where, SL_HEALTH_CTR_TIMEOUT, ps->unhealthy_timeouts,
                      "passive: timeouts");
        break;
    case SL_BAL_HTTP:
        if (sl_status_set_has(&ps->unhealthy_statuses, status))
            health_report(b, pk->h, where, SL_HEALTH_CTR_HTTP, ps->unhealthy_http_failures,
                          "passive: http failures");
        else if (sl_status_set_has(&ps->healthy_statuses, status))
            health_report(b, pk->h, where, SL_HEALTH_CTR_SUCCESS, ps->healthy_successes,
                          "passive: successes");
        break;
    }
}

void
sl_balancer_done(sl_bal_pick_t *pk, int64_t rtt_us)
{
    sl_balancer_t *b = pk->b;
    sl_bal_entry_t *e;

    if (b == NULL || (e = pick_entry(b, pk)) == NULL) {
        pk->b = NULL;
        return;
    }
    if (pk->counted) {
        e->conns--;
        pk->counted = 0;
    }
    if (b->u->algorithm == SL_LB_LATENCY && rtt_us >= 0) {
        double now = (double)sl_mono_ms() / 1000.0, td = now - e->ewma_at;
        double w = exp(-(td > 0 ? td : 0) / SL_EWMA_DECAY_S);
        e->ewma = e->ewma * w + (double)rtt_us / 1e6 * (1.0 - w);
        e->ewma_at = now;
    }
    pk->b = NULL;
}

/* ---- active health checks ---- */

static void probe_close_cb(uv_handle_t *h);

static void
probe_end(sl_probe_t *pr, int shift, int limit, const char *why)
{
    sl_balancer_t *b = pr->b;

    if (shift >= 0)
        health_report(b, pr->h, pr->where, shift, limit, why);
    if (pr->pending)
        sl_upconnect_cancel(pr->pending);
    if (pr->c)
        sl_upconn_release(pr->c, 0);
    pr->pending = NULL;
    pr->c = NULL;
    *pr->prev = pr->next;
    if (pr->next)
        pr->next->prev = pr->prev;
    b->inflight--;
    uv_timer_stop(pr->timer);
    uv_close((uv_handle_t *)pr->timer, probe_close_cb);
}

static void
probe_close_cb(uv_handle_t *h)
{
    sl_probe_t *pr = h->data;
    free(pr->req);
    free(pr->timer);
    free(pr);
}

static void
probe_timeout(uv_timer_t *t)
{
    sl_probe_t *pr = t->data;
    probe_end(pr, SL_HEALTH_CTR_TIMEOUT, pr->b->u->active.unhealthy_timeouts, "active: timeouts");
}

static void
probe_status(sl_probe_t *pr, int status)
{
    const sl_hc_active_t *a = &pr->b->u->active;

    if (sl_status_set_has(&a->healthy_statuses, status))
        probe_end(pr, SL_HEALTH_CTR_SUCCESS, a->healthy_successes, "active: successes");
    else if (sl_status_set_has(&a->unhealthy_statuses, status))
        probe_end(pr, SL_HEALTH_CTR_HTTP, a->unhealthy_http_failures, "active: http failures");
    else
        probe_end(pr, -1, 0, NULL);
}

static void
probe_read(void *arg, const char *data, ssize_t n)
{
    sl_probe_t *pr = arg;
    const sl_hc_active_t *a = &pr->b->u->active;
    char *eol;

    if (n < 0) {
        probe_end(pr, SL_HEALTH_CTR_TCP, a->unhealthy_tcp_failures, "active: tcp failures");
        return;
    }
    size_t take =
        (size_t)n < sizeof(pr->line) - 1 - pr->got ? (size_t)n : sizeof(pr->line) - 1 - pr->got;
    memcpy(pr->line + pr->got, data, take);
    pr->got += take;
    pr->line[pr->got] = '\0';
    if ((eol = strchr(pr->line, '\n')) == NULL && pr->got < sizeof(pr->line) - 1)
        return;
    int status = 0;
    if (sscanf(pr->line, "HTTP/%*d.%*d %3d", &status) != 1)
        status = 0;
    if (status < 100) /* not HTTP: as a failed connection */
        probe_end(pr, SL_HEALTH_CTR_TCP, a->unhealthy_tcp_failures, "active: tcp failures");
    else
        probe_status(pr, status);
}

static void
probe_written(void *arg, int status)
{
    sl_probe_t *pr = arg;

    if (status < 0)
        probe_end(pr, SL_HEALTH_CTR_TCP, pr->b->u->active.unhealthy_tcp_failures,
                  "active: tcp failures");
}

static void
probe_connected(void *arg, sl_upconn_t *c, int status, const char *errmsg)
{
    sl_probe_t *pr = arg;
    const sl_hc_active_t *a = &pr->b->u->active;

    (void)errmsg;
    pr->pending = NULL;
    if (status < 0) {
        if (status == UV_ETIMEDOUT)
            probe_end(pr, SL_HEALTH_CTR_TIMEOUT, a->unhealthy_timeouts, "active: timeouts");
        else
            probe_end(pr, SL_HEALTH_CTR_TCP, a->unhealthy_tcp_failures, "active: tcp failures");
        return;
    }
    pr->c = c;
    if (a->type == SL_HC_TCP) {
        probe_end(pr, SL_HEALTH_CTR_SUCCESS, a->healthy_successes, "active: successes");
        return;
    }
    uv_buf_t buf = uv_buf_init(pr->req, (unsigned)pr->req_len);
    if (sl_upconn_write(c, &buf, 1, probe_written, pr) < 0 ||
        sl_upconn_read_start(c, probe_read, pr) < 0)
        probe_end(pr, SL_HEALTH_CTR_TCP, a->unhealthy_tcp_failures, "active: tcp failures");
}

static void
probe_start(sl_balancer_t *b, size_t e)
{
    const sl_hc_active_t *a = &b->u->active;
    const sl_bal_entry_t *en = &b->e[e];
    const sl_target_conf_t *tc = &b->u->targets[en->t];
    sl_probe_t *pr = sl_xcalloc(1, sizeof(*pr));
    int tls = a->type == SL_HC_HTTPS;
    uint64_t timeout_ms = (uint64_t)(a->timeout * 1000.0);
    char host[300];

    if (timeout_ms == 0)
        timeout_ms = 1;
    pr->b = b;
    pr->t = en->t;
    pr->h = en->h;
    if (en->host[0] && tc->named)
        snprintf(pr->where, sizeof(pr->where), "%s (address %.100s:%d)", tc->target, en->host,
                 en->port);
    else
        snprintf(pr->where, sizeof(pr->where), "%s", tc->target);
    pr->timer = sl_xmalloc(sizeof(*pr->timer));
    uv_timer_init(b->bs->loop, pr->timer);
    pr->timer->data = pr;
    if (b->u->host_header)
        snprintf(host, sizeof(host), "%s", b->u->host_header);
    else
        snprintf(host, sizeof(host), strchr(tc->host, ':') ? "[%s]:%d" : "%s:%d", tc->host,
                 tc->port);
    if (asprintf(&pr->req,
                 "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: sluice-healthcheck\r\n"
                 "Connection: close\r\n%s\r\n",
                 a->http_path ? a->http_path : "/", host, a->headers ? a->headers : "") < 0)
        abort();
    pr->req_len = strlen(pr->req);
    pr->next = b->bs->probes;
    pr->prev = &b->bs->probes;
    if (pr->next)
        pr->next->prev = &pr->next;
    b->bs->probes = pr;
    b->inflight++;
    atomic_fetch_add(&en->h->probes, 1);
    uv_timer_start(pr->timer, probe_timeout, timeout_ms, 0);
    sl_upstream_target_t ut = {
        .tls = tls,
        .host = sl_bal_entry_host(b, en),
        .tls_name = tc->named && en->host[0] ? tc->host : NULL,
        .port = en->port,
        .tls_verify = a->https_verify_certificate,
        .connect_timeout_ms = (int)timeout_ms,
    };
    if (sl_upconnect_start(b->bs->probe_pool, &ut, probe_connected, pr, &pr->pending) < 0) {
        pr->pending = NULL;
        probe_end(pr, SL_HEALTH_CTR_TCP, a->unhealthy_tcp_failures, "active: tcp failures");
    }
}

/* Every worker ticks; a target due for a check is claimed by the one
 * worker whose compare-and-swap moves its next-check time, so the node
 * probes it once per interval whatever the number of workers. */
static void
on_tick(uv_timer_t *tm)
{
    sl_balancer_t *b = tm->data;
    const sl_upstream_conf_t *u = b->u;
    int64_t now = sl_mono_ms();

    for (size_t t = 0; t < b->ne && !b->bs->stopped; t++) {
        sl_target_health_t *h = b->e[t].h;
        int healthy = !(atomic_load(&h->state) & SL_HEALTH_UNHEALTHY);
        double iv = healthy ? u->active.healthy_interval : u->active.unhealthy_interval;
        int64_t due = atomic_load(&h->next_check_ms), next;

        if (weight(b, t) == 0 || iv <= 0)
            continue;
        next = now + (int64_t)(iv * 1000.0);
        if (due == 0) { /* first sight: the first check is one interval away */
            atomic_compare_exchange_strong(&h->next_check_ms, &due, next);
            continue;
        }
        if (now < due || b->inflight >= u->active.concurrency)
            continue;
        if (atomic_compare_exchange_strong(&h->next_check_ms, &due, next))
            probe_start(b, t);
    }
}

/* ---- the worker's set ---- */

sl_balancers_t *
sl_balancers_new(uv_loop_t *loop, const sl_conf_t *conf, sl_dns_t *dns)
{
    sl_balancers_t *bs;
    sl_uppool_options_t po = {.keepalive_max_idle = 0, .dns = dns};

    if (conf == NULL || conf->nupstreams == 0)
        return NULL;
    bs = sl_xcalloc(1, sizeof(*bs));
    bs->loop = loop;
    bs->conf = conf;
    bs->dns = dns;
    bs->n = conf->nupstreams;
    bs->b = sl_xcalloc(bs->n, sizeof(*bs->b));
    for (size_t i = 0; i < bs->n; i++) {
        sl_balancer_t *b = &bs->b[i];
        const sl_upstream_conf_t *u = conf->upstreams[i];
        b->bs = bs;
        b->u = u;
        b->rr_start = (unsigned)getpid();
        sl_bal_entries_init(b); /* may rebuild the continuum (a cached answer) */
        if (u->algorithm == SL_LB_CONSISTENT_HASHING && b->continuum == NULL)
            sl_bal_continuum_build(b);
        if (u->active_on && u->ntargets) {
            double lo = 0;
            if (u->active.healthy_interval > 0)
                lo = u->active.healthy_interval;
            if (u->active.unhealthy_interval > 0 && (lo == 0 || u->active.unhealthy_interval < lo))
                lo = u->active.unhealthy_interval;
            /* tick a few times per interval so a due check is late by a
             * fraction of it at most */
            uint64_t tick = (uint64_t)(lo * 1000.0 / 5.0);
            if (tick < 20)
                tick = 20;
            if (bs->probe_pool == NULL)
                bs->probe_pool = sl_uppool_new(loop, &po);
            b->timer = sl_xmalloc(sizeof(*b->timer));
            uv_timer_init(loop, b->timer);
            b->timer->data = b;
            uv_timer_start(b->timer, on_tick, tick, tick);
        }
    }
    return bs;
}

static void
timer_free_cb(uv_handle_t *h)
{
    free(h);
}

void
sl_balancers_stop(sl_balancers_t *bs)
{
    if (bs == NULL || bs->stopped)
        return;
    bs->stopped = 1;
    for (size_t i = 0; i < bs->n; i++) {
        sl_bal_entries_stop(&bs->b[i]);
        if (bs->b[i].timer) {
            uv_timer_stop(bs->b[i].timer);
            uv_close((uv_handle_t *)bs->b[i].timer, timer_free_cb);
            bs->b[i].timer = NULL;
        }
    }
    while (bs->probes)
        probe_end(bs->probes, -1, 0, NULL);
    if (bs->probe_pool) {
        sl_uppool_free(bs->probe_pool);
        bs->probe_pool = NULL;
    }
}

void
sl_balancers_free(sl_balancers_t *bs)
{
    if (bs == NULL)
        return;
    sl_balancers_stop(bs);
    for (size_t i = 0; i < bs->n; i++) {
        sl_bal_entries_free(&bs->b[i]);
        free(bs->b[i].continuum);
    }
    free(bs->b);
    free(bs);
}
