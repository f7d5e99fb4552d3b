/* aa_balancer.c - the balancer's algorithms and the circuit breaker.
 *
 * Pure functions over a group of targets and a view of their state
 * (sl_aa_view_t: breaker, latency, usage, in-flight requests), so the same
 * code decides in a worker (the view read from shared memory) and in the unit
 * tests.  Kong's descriptions (load-balancing.md) are the contract:
 *   round-robin         weighted, interleaved: position seq * stride mod W
 *                       over the cumulative weights (every W consecutive
 *                       picks give each target exactly its weight)
 *   priority            the highest weight present among live targets takes
 *                       everything; lower weights only when every target of
 *                       the higher one is down or already tried
 *   lowest-latency      the lowest peak EWMA, with a probe share for the rest
 *   lowest-usage        the lowest accumulated usage / weight
 *   least-connections   the fewest in-flight requests / weight
 *   consistent-hashing  a ring of `slots` points, weighted
 */

#include <math.h>
#include <string.h>

#include "aa.h"

uint32_t
sl_aa_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    }
    /* murmur3's finaliser: FNV alone clusters similar short keys */
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

double
sl_aa_ewma(double avg, int64_t last_us, double sample, int64_t now_us, double tau_us)
{
    double dt, w;

    if (avg <= 0 || sample >= avg) {
        return sample; /* first sample, or peak: taken at once */
    }
    dt = (double)(now_us - last_us);
    if (dt < 0) {
        dt = 0;
    }
    w = exp(-dt / tau_us);
    return avg * w + sample * (1 - w);
}

static uint64_t
sl_aa_gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* is target k (index into g->idx) a candidate in this pass? */
static int
sl_aa_ok(const sl_aa_conf_t *c, const sl_aa_group_t *g, const sl_aa_view_t *v, size_t k, int strict)
{
    const sl_aa_view_t *t = &v[g->idx[k]];

    (void)c;
    return t->up && !(strict && t->tried);
}

static int
sl_aa_rr(const sl_aa_conf_t *c, const sl_aa_group_t *g, const sl_aa_view_t *v, uint64_t seq,
         int strict)
{
    uint64_t pos, w = 0, s;
    size_t lo, hi;

    if (g->total_w == 0) {
        return -1;
    }
    pos = (seq * g->stride) % g->total_w;
    lo = 0;
    hi = g->n - 1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (g->cum[mid] > pos) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if (sl_aa_ok(c, g, v, lo, strict)) {
        return g->idx[lo];
    }
    /* that target is out: the same interleaving over the live ones */
    for (size_t k = 0; k < g->n; k++) {
        if (sl_aa_ok(c, g, v, k, strict)) {
            w += c->t[g->idx[k]].weight;
        }
    }
    if (w == 0) {
        return -1;
    }
    s = (uint64_t)((double)w * 0.6180339887) | 1u;
    while (w > 1 && sl_aa_gcd(s, w) != 1) {
        s++;
    }
    pos = (seq * s) % w;
    for (size_t k = 0; k < g->n; k++) {
        if (!sl_aa_ok(c, g, v, k, strict)) {
            continue;
        }
        if (pos < c->t[g->idx[k]].weight) {
            return g->idx[k];
        }
        pos -= c->t[g->idx[k]].weight;
    }
    return -1;
}

static int
sl_aa_priority(const sl_aa_conf_t *c, const sl_aa_group_t *g, const sl_aa_view_t *v, uint64_t seq,
               int strict)
{
    uint32_t top = 0;
    size_t count = 0, want;

    for (size_t k = 0; k < g->n; k++) {
        if (sl_aa_ok(c, g, v, k, strict) && c->t[g->idx[k]].weight > top) {
            top = c->t[g->idx[k]].weight;
        }
    }
    if (top == 0) {
        return -1;
    }
    for (size_t k = 0; k < g->n; k++) {
        count += sl_aa_ok(c, g, v, k, strict) && c->t[g->idx[k]].weight == top;
    }
    want = (size_t)(seq % count);
    for (size_t k = 0; k < g->n; k++) {
        if (sl_aa_ok(c, g, v, k, strict) && c->t[g->idx[k]].weight == top && want-- == 0) {
            return g->idx[k];
        }
    }
    return -1;
}

/* the candidate with the lowest score; ties go round from seq */
static int
sl_aa_lowest(const sl_aa_conf_t *c, const sl_aa_group_t *g, const sl_aa_view_t *v, uint64_t seq,
             int strict, int what)
{
    int best = -1;
    double bs = 0;

    for (size_t j = 0; j < g->n; j++) {
        size_t k = (size_t)((seq + j) % g->n);
        const sl_aa_view_t *t = &v[g->idx[k]];
        double w = c->t[g->idx[k]].weight, s;

        if (!sl_aa_ok(c, g, v, k, strict)) {
            continue;
        }
        s = what == SL_AA_ALG_LOWEST_LATENCY ? t->latency
            : what == SL_AA_ALG_LOWEST_USAGE ? t->usage / w
                                             : (t->inflight + 1) / w;
        if (best < 0 || s < bs) {
            best = (int)k;
            bs = s;
        }
    }
    return best < 0 ? -1 : g->idx[best];
}

static int
sl_aa_latency(const sl_aa_conf_t *c, const sl_aa_group_t *g, const sl_aa_view_t *v, uint64_t seq,
              uint32_t rnd, int strict)
{
    int best = sl_aa_lowest(c, g, v, seq, strict, SL_AA_ALG_LOWEST_LATENCY);
    size_t others = 0, want;

    if (best < 0 || rnd % 1000 >= SL_AA_PROBE_PERMILLE) {
        return best;
    }
    for (size_t k = 0; k < g->n; k++) {
        others += g->idx[k] != best && sl_aa_ok(c, g, v, k, strict);
    }
    if (others == 0) {
        return best;
    }
    want = (rnd / 1000) % others;
    for (size_t k = 0; k < g->n; k++) {
        if (g->idx[k] != best && sl_aa_ok(c, g, v, k, strict) && want-- == 0) {
            return g->idx[k];
        }
    }
    return best;
}

static int
sl_aa_chash(const sl_aa_conf_t *c, const sl_aa_group_t *g, const sl_aa_view_t *v, uint32_t hash,
            int strict)
{
    size_t lo = 0, hi = g->ring_n;

    if (g->ring_n == 0) {
        return sl_aa_rr(c, g, v, hash, strict);
    }
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;

        if (g->ring[mid] < hash) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    for (size_t j = 0; j < g->ring_n; j++) {
        size_t k = g->ring_t[(lo + j) % g->ring_n];

        if (sl_aa_ok(c, g, v, k, strict)) {
            return g->idx[k];
        }
    }
    return -1;
}

int
sl_aa_pick(const sl_aa_conf_t *c, const sl_aa_group_t *g, const sl_aa_view_t *v, uint64_t seq,
           uint32_t hash, uint32_t rnd)
{
    for (int strict = 1; strict >= 0; strict--) {
        int t;

        switch (c->bal.algorithm) {
        case SL_AA_ALG_PRIORITY:
            t = sl_aa_priority(c, g, v, seq, strict);
            break;
        case SL_AA_ALG_LOWEST_LATENCY:
            t = sl_aa_latency(c, g, v, seq, rnd, strict);
            break;
        case SL_AA_ALG_LOWEST_USAGE:
        case SL_AA_ALG_LEAST_CONNECTIONS:
            t = sl_aa_lowest(c, g, v, seq, strict, c->bal.algorithm);
            break;
        case SL_AA_ALG_CONSISTENT_HASHING:
            t = sl_aa_chash(c, g, v, hash, strict);
            break;
        default:
            t = sl_aa_rr(c, g, v, seq, strict);
            break;
        }
        if (t >= 0) {
            return t;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------- breaker */

sl_aa_cb_state_t
sl_aa_cb_state(const sl_aa_cb_t *s, int64_t now_ms, int64_t max_fails, int64_t fail_timeout_ms)
{
    if (max_fails <= 0 || s->fails < max_fails) {
        return SL_AA_CB_CLOSED;
    }
    return now_ms - s->last_fail_ms >= fail_timeout_ms ? SL_AA_CB_HALF_OPEN : SL_AA_CB_OPEN;
}

int
sl_aa_cb_allow(const sl_aa_cb_t *s, int64_t now_ms, int64_t max_fails, int64_t fail_timeout_ms)
{
    switch (sl_aa_cb_state(s, now_ms, max_fails, fail_timeout_ms)) {
    case SL_AA_CB_CLOSED:
        return 1;
    case SL_AA_CB_HALF_OPEN:
        /* one probe at a time; a probe that never reported is forgotten
         * after fail_timeout */
        return s->probe_ms <= s->last_fail_ms || now_ms - s->probe_ms >= fail_timeout_ms;
    default:
        return 0;
    }
}

void
sl_aa_cb_probe(sl_aa_cb_t *s, int64_t now_ms)
{
    s->probe_ms = now_ms;
}

void
sl_aa_cb_failure(sl_aa_cb_t *s, int64_t now_ms)
{
    s->fails++;
    s->last_fail_ms = now_ms;
}

void
sl_aa_cb_success(sl_aa_cb_t *s, int64_t now_ms, int64_t max_fails, int64_t fail_timeout_ms)
{
    (void)max_fails;
    if (s->fails > 0 && now_ms - s->last_fail_ms >= fail_timeout_ms) {
        s->fails = 0;
        s->probe_ms = 0;
    }
}
