/* rate_limiting.c - Kong's rate-limiting plugin: request counts per
 * second/minute/hour/day/month/year and identifier, in fixed UTC windows,
 * counted exactly across the workers of a node (shared memory) or across
 * nodes (Redis), with Kong's headers and refusal.
 *
 *   local           shm_incr per period; a refused request is taken back.
 *   redis, sync -1  the access phase waits for one pipelined round trip
 *                   (Kong's INCR script); Redis unreachable -> local counts.
 *   redis, sync>0   no round trip on the request path: the node counts in
 *                   shared memory and every worker flushes what it owes to
 *                   Redis every sync_rate seconds, reading the cluster's
 *                   total back (rl_redis.c). */

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/identifier.h"
#include "../shared/json_escape.h"
#include "rl.h"

#define RL_PRIORITY 910

/* What one request decided, kept for header_filter. */
typedef struct rl_ctx {
    const rl_conf_t *conf;
    int n; /* limited periods */
    rl_period_t period[RL_NPERIODS];
    char key[RL_NPERIODS][300];
    size_t key_len[RL_NPERIODS];
    int64_t ttl_s[RL_NPERIODS];
    int64_t start_ms[RL_NPERIODS];
    int64_t now_ms;
    int headers; /* 1 when usage is known */
    int64_t limit[RL_NPERIODS], remaining[RL_NPERIODS];
    int64_t rl_limit, rl_remaining, rl_reset;
    int denied;
    sl_req_t *r;
    const sl_api_t *api;
} rl_ctx_t;

/* Usage known (counts after this request's increment): decide, and work
 * out Kong's headers.  Returns 1 when the request is refused. */
static int
decide(rl_ctx_t *x, const int64_t *after)
{
    const rl_conf_t *c = x->conf;
    int stop = -1;
    int best = -1;

    for (int i = 0; i < x->n; i++) {
        x->limit[i] = (int64_t)c->s->limit[x->period[i]];
        /* Kong: remaining = limit - usage before this request; refuse when
         * that is <= 0. */
        int64_t before = after[i] - 1;
        x->remaining[i] = x->limit[i] - before;
        if (x->remaining[i] <= 0)
            stop = i;
    }
    for (int i = 0; i < x->n; i++) {
        if (stop < 0 || stop == i)
            x->remaining[i] -= 1;
        if (x->remaining[i] < 0)
            x->remaining[i] = 0;
        /* The most restrictive period: lowest remaining, then the longer. */
        if (best < 0 || x->remaining[i] < x->remaining[best] ||
            (x->remaining[i] == x->remaining[best] && x->period[i] > x->period[best]))
            best = i;
    }
    x->rl_limit = x->limit[best];
    x->rl_remaining = x->remaining[best];
    x->rl_reset = rl_period_seconds[x->period[best]] - (x->now_ms - x->start_ms[best]) / 1000;
    if (x->rl_reset < 1)
        x->rl_reset = 1;
    x->headers = !c->s->hide_client_headers;
    x->denied = stop >= 0;
    return x->denied;
}

static const sl_str_t limit_names[RL_NPERIODS] = {
    {"X-RateLimit-Limit-Second", 24}, {"X-RateLimit-Limit-Minute", 24},
    {"X-RateLimit-Limit-Hour", 22},   {"X-RateLimit-Limit-Day", 21},
    {"X-RateLimit-Limit-Month", 23},  {"X-RateLimit-Limit-Year", 22}};
static const sl_str_t remaining_names[RL_NPERIODS] = {
    {"X-RateLimit-Remaining-Second", 28}, {"X-RateLimit-Remaining-Minute", 28},
    {"X-RateLimit-Remaining-Hour", 26},   {"X-RateLimit-Remaining-Day", 25},
    {"X-RateLimit-Remaining-Month", 27},  {"X-RateLimit-Remaining-Year", 26}};

/* Every header in one host call (resp_headers_set: one pass over the
 * response's fields, one copy): at most 2 per period + 4. */
static void
apply_headers(const sl_api_t *api, sl_req_t *r, const rl_ctx_t *x)
{
    sl_str_t names[2 * RL_NPERIODS + 4], values[2 * RL_NPERIODS + 4];
    char num[2 * RL_NPERIODS + 4][24];
    size_t n = 0;

    if (!x->headers)
        return;
#define RL_HDR(nm, v)                                                                              \
    do {                                                                                           \
        names[n] = (nm);                                                                           \
        values[n] = (sl_str_t){num[n], rl_int(num[n], (v))};                                       \
        n++;                                                                                       \
    } while (0)
    for (int i = 0; i < x->n; i++) {
        RL_HDR(limit_names[x->period[i]], x->limit[i]);
        RL_HDR(remaining_names[x->period[i]], x->remaining[i]);
    }
    RL_HDR(SL_STR("RateLimit-Limit"), x->rl_limit);
    RL_HDR(SL_STR("RateLimit-Remaining"), x->rl_remaining);
    RL_HDR(SL_STR("RateLimit-Reset"), x->rl_reset);
    if (x->denied)
        RL_HDR(SL_STR("Retry-After"), x->rl_reset);
#undef RL_HDR
    if (api->resp_headers_set(r, names, values, n) != 0)
        api->log(r, SL_LOG_WARN, "could not set the rate-limit headers");
}

/* Kong's kong.response.error body. */
static sl_status_t
refuse(const sl_api_t *api, sl_req_t *r, const rl_ctx_t *x)
{
    const rl_conf_t *c = x->conf;
    sl_str_t rid = api->req_id(r);
    size_t cap = strlen(c->s->error_message) * 6 + rid.len + 64;
    char *body = api->palloc(r, cap);
    size_t n = 0;

    n += (size_t)snprintf(body, cap, "{\"message\":\"");
    sl_json_escape(body, cap, &n, c->s->error_message);
    n += (size_t)snprintf(body + n, cap - n, "\",\"request_id\":\"%.*s\"}", (int)rid.len, rid.ptr);
    apply_headers(api, r, x);
    api->respond(r, c->error_code, rl_str("application/json; charset=utf-8"), (sl_str_t){body, n});
    return SL_STATUS_RESPOND;
}

/* Local counting: increment every period; a refused request is taken back
 * (Kong does not count refused requests under the local policy).  Returns
 * 0 with after[] set, or -1 when the zone failed. */
static int
count_local(const sl_api_t *api, rl_ctx_t *x, int64_t *after)
{
    const rl_conf_t *c = x->conf;
    int i;

    for (i = 0; i < x->n; i++) {
        double v;
        sl_str_t k = {x->key[i], x->key_len[i]};
        if (api->shm_incr(c->zone, k, 1, (uint64_t)x->ttl_s[i] * 1000, &v) != 0)
            goto fail;
        after[i] = (int64_t)v;
    }
    return 0;
fail:
    while (i-- > 0)
        api->shm_incr(c->zone, (sl_str_t){x->key[i], x->key_len[i]}, -1, 0, NULL);
    return -1;
}

static void
uncount_local(const sl_api_t *api, rl_ctx_t *x)
{
    for (int i = 0; i < x->n; i++)
        api->shm_incr(x->conf->zone, (sl_str_t){x->key[i], x->key_len[i]}, -1, 0, NULL);
}

/* Batched Redis: usage = the cluster total last read + what this node
 * counted since; this request is then owed to Redis. */
static void
count_batched(const sl_api_t *api, rl_ctx_t *x, int64_t *after)
{
    const rl_conf_t *c = x->conf;

    for (int i = 0; i < x->n; i++) {
        char k[310];
        double t = 0, p = 0;
        int n = snprintf(k, sizeof(k), "t:%s", x->key[i]);
        api->shm_get(c->zone, (sl_str_t){k, (size_t)n}, NULL, 0, NULL, &t);
        k[0] = 'p';
        api->shm_get(c->zone, (sl_str_t){k, (size_t)n}, NULL, 0, NULL, &p);
        after[i] = (int64_t)(t + p) + 1;
    }
}

static sl_status_t
finish_local(const sl_api_t *api, sl_req_t *r, rl_ctx_t *x)
{
    int64_t after[RL_NPERIODS];

    if (count_local(api, x, after) != 0) {
        if (!x->conf->s->fault_tolerant) {
            api->log(r, SL_LOG_ERROR, "failed to count: shared memory zone full");
            return SL_STATUS_ERROR;
        }
        api->log(r, SL_LOG_ERROR, "failed to get usage: shared memory zone full");
        return SL_STATUS_CONTINUE;
    }
    if (decide(x, after)) {
        uncount_local(api, x);
        return refuse(api, r, x);
    }
    return SL_STATUS_CONTINUE;
}

/* The Redis answer for a waiting request. */
static void
on_redis(void *arg, int err, const int64_t *counts)
{
    rl_ctx_t *x = arg;
    const sl_api_t *api = x->api;
    sl_req_t *r = x->r;
    sl_status_t st;

    if (err != 0) {
        if (!x->conf->s->fault_tolerant) {
            api->log(r, SL_LOG_ERROR, "failed to get usage from Redis");
            api->resume(r, SL_STATUS_ERROR);
            return;
        }
        st = finish_local(api, r, x); /* Redis away: this node's counts */
    } else {
        st = decide(x, counts) ? refuse(api, r, x) : SL_STATUS_CONTINUE;
    }
    api->resume(r, st);
}

static void
on_cancel(const sl_api_t *api, sl_req_t *r, sl_req_error_t why, void *arg)
{
    rl_ctx_t *x = arg;

    (void)api;
    (void)r;
    (void)why;
    if (x->conf->redis)
        rl_redis_forget(x->conf->redis, x);
}

static sl_status_t
rl_access(const sl_api_t *api, sl_req_t *r, void *conf)
{
    rl_conf_t *c = conf;
    rl_ctx_t *x = api->palloc(r, sizeof(*x));
    sl_str_t route_id = {NULL, 0}, service_id = {NULL, 0};
    sl_str_t id = sl_quota_identifier(api, r, c->limit_by, c->s->header_name, c->s->path);

    memset(x, 0, offsetof(rl_ctx_t, key)); /* the keys are written as needed */
    memset(&x->key_len, 0, sizeof(*x) - offsetof(rl_ctx_t, key_len));
    x->conf = c;
    x->r = r;
    x->api = api;
    x->now_ms = api->now_us() / 1000;
    api->plugin_scope(r, &route_id, &service_id);
    for (int p = 0; p < RL_NPERIODS; p++) {
        if (c->s->limit[p] <= 0)
            continue;
        int i = x->n;
        x->period[i] = (rl_period_t)p;
        x->start_ms[i] = rl_window_start((rl_period_t)p, x->now_ms);
        x->ttl_s[i] = rl_period_seconds[p];
        int kl = rl_key(x->key[i], sizeof(x->key[i]), route_id, service_id, id, x->start_ms[i],
                        (rl_period_t)p);
        if (kl < 0) {
            api->log(r, SL_LOG_WARN, "identifier too long to count; request not limited");
            return SL_STATUS_CONTINUE;
        }
        x->key_len[i] = (size_t)kl;
        x->n++;
    }
    api->ctx_set(r, x);

    if (c->policy == RL_POLICY_LOCAL || c->redis == NULL)
        return finish_local(api, r, x);

    if (c->s->sync_rate > 0) {
        int64_t after[RL_NPERIODS];
        count_batched(api, x, after);
        if (decide(x, after))
            return refuse(api, r, x);
        for (int i = 0; i < x->n; i++)
            rl_redis_add(c->redis, x->key[i], x->ttl_s[i], 1);
        return SL_STATUS_CONTINUE;
    }

    const char *keys[RL_NPERIODS];
    for (int i = 0; i < x->n; i++)
        keys[i] = x->key[i];
    if (rl_redis_incr(c->redis, keys, x->ttl_s, x->n, on_redis, x) != 0)
        return finish_local(api, r, x); /* Redis away (logged once per interval) */
    if (api->pend(r, (uint64_t)c->s->redis.timeout * 2 + 1000, on_cancel, x) != 0) {
        rl_redis_forget(c->redis, x);
        return finish_local(api, r, x);
    }
    return SL_STATUS_PENDING;
}

static sl_status_t
rl_header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    rl_ctx_t *x = api->ctx_get(r);

    (void)conf;
    if (x != NULL && !x->denied)
        apply_headers(api, r, x);
    return SL_STATUS_CONTINUE;
}

static int
rl_init_worker(const sl_api_t *api, void *conf)
{
    rl_conf_t *c = conf;

    if (c->policy == RL_POLICY_REDIS)
        c->redis = rl_redis_new(api, &c->s->redis, c->zone, c->s->sync_rate);
    return 0;
}

static void
rl_exit_worker(const sl_api_t *api, void *conf)
{
    rl_conf_t *c = conf;

    (void)api;
    rl_redis_free(c->redis);
    c->redis = NULL;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    .abi_major = SL_PLUGIN_ABI_MAJOR,
    .abi_minor = SL_PLUGIN_ABI_MINOR,
    .name = "rate-limiting",
    .version = "1.0.0",
    .priority = RL_PRIORITY,
    .config_parse = rl_conf_parse,
    .config_free = rl_conf_free,
    .init_worker = rl_init_worker,
    .exit_worker = rl_exit_worker,
    .access = rl_access,
    .header_filter = rl_header_filter,
};
