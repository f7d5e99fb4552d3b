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

#include "../shared/decimal.h"
#include "../shared/identifier.h"
#include "../shared/json_escape.h"
#include "rl.h"

#define RL_PRIORITY 910

/* What one request decided, kept for header_filter.  Period i is
 * conf->period[i]. */
typedef struct rl_ctx {
    const rl_conf_t *conf;
    sl_req_t *r;
    const sl_api_t *api;
    int64_t now_ms;
    int n;       /* limited periods */
    int best;    /* the most restrictive: RateLimit-* describe it */
    int headers; /* 1 when usage is known and the headers are not hidden */
    int denied;
    sl_str_t key[RL_NPERIODS]; /* NUL-terminated, with 2 bytes of room before */
    int64_t start_ms[RL_NPERIODS];
    int64_t remaining[RL_NPERIODS];
    int64_t reset;
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
        /* Kong: remaining = limit - usage before this request; refuse when
         * that is <= 0. */
        int64_t before = after[i] - 1;
        x->remaining[i] = c->limit[c->period[i]] - before;
        if (x->remaining[i] <= 0)
            stop = i;
    }
    for (int i = 0; i < x->n; i++) {
        if (stop < 0 || stop == i)
            x->remaining[i] -= 1;
        if (x->remaining[i] < 0)
            x->remaining[i] = 0;
        /* The most restrictive period: lowest remaining, then the longer
         * (periods are shortest first). */
        if (best < 0 || x->remaining[i] <= x->remaining[best])
            best = i;
    }
    x->best = best;
    x->reset = rl_period_seconds[c->period[best]] - (x->now_ms - x->start_ms[best]) / 1000;
    if (x->reset < 1)
        x->reset = 1;
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
 * response's fields, one copy): at most 2 per period + 4.  The limits'
 * texts are the config's; RateLimit-Remaining is the text of its period's
 * X-RateLimit-Remaining, Retry-After that of RateLimit-Reset. */
static void
apply_headers(const sl_api_t *api, sl_req_t *r, const rl_ctx_t *x)
{
    const rl_conf_t *c = x->conf;
    sl_str_t names[2 * RL_NPERIODS + 4], values[2 * RL_NPERIODS + 4];
    char num[RL_NPERIODS + 1][SL_DEC_MAX];
    size_t n = 0;

    if (!x->headers)
        return;
    for (int i = 0; i < x->n; i++) {
        rl_period_t p = c->period[i];
        names[n] = limit_names[p];
        values[n++] = (sl_str_t){c->limit_txt[p], c->limit_len[p]};
        names[n] = remaining_names[p];
        values[n++] = (sl_str_t){num[i], sl_dec(num[i], x->remaining[i])};
    }
    names[n] = SL_STR("RateLimit-Limit");
    values[n++] = values[2 * x->best];
    names[n] = SL_STR("RateLimit-Remaining");
    values[n++] = values[2 * x->best + 1];
    names[n] = SL_STR("RateLimit-Reset");
    values[n++] = (sl_str_t){num[x->n], sl_dec(num[x->n], x->reset)};
    if (x->denied) {
        names[n] = SL_STR("Retry-After");
        values[n] = values[n - 1];
        n++;
    }
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
        uint64_t ttl_ms = (uint64_t)rl_period_seconds[c->period[i]] * 1000;
        if (api->shm_incr(c->zone, x->key[i], 1, ttl_ms, &v) != 0)
            goto fail;
        after[i] = (int64_t)v;
    }
    return 0;
fail:
    while (i-- > 0)
        api->shm_incr(c->zone, x->key[i], -1, 0, NULL);
    return -1;
}

static void
uncount_local(const sl_api_t *api, rl_ctx_t *x)
{
    for (int i = 0; i < x->n; i++)
        api->shm_incr(x->conf->zone, x->key[i], -1, 0, NULL);
}

/* Batched Redis: usage = the cluster total last read ("t:" + key) + what
 * this node counted since ("p:" + key); this request is then owed to
 * Redis.  The prefixes go in the 2 bytes kept before each key. */
static void
count_batched(const sl_api_t *api, rl_ctx_t *x, int64_t *after)
{
    const rl_conf_t *c = x->conf;

    for (int i = 0; i < x->n; i++) {
        char *k = (char *)x->key[i].ptr - 2;
        sl_str_t pk = {k, x->key[i].len + 2};
        double t = 0, p = 0;
        k[0] = 't';
        k[1] = ':';
        api->shm_get(c->zone, pk, NULL, 0, NULL, &t);
        k[0] = 'p';
        api->shm_get(c->zone, pk, NULL, 0, NULL, &p);
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

/* The worker's key parts for this request's scope and time: the head
 * built once per scope, a period's tail once per window.  -1 when the
 * scope's ids are too long for a key. */
static int
keys_current(const sl_api_t *api, sl_req_t *r, rl_conf_t *c, int64_t now_ms)
{
    rl_keys_t *k = &c->keys;
    sl_str_t route_id = {NULL, 0}, service_id = {NULL, 0};

    api->plugin_scope(r, &route_id, &service_id);
    if (!k->head_ok || route_id.ptr != k->route_id.ptr || route_id.len != k->route_id.len ||
        service_id.ptr != k->service_id.ptr || service_id.len != k->service_id.len) {
        k->head_len = rl_key_head(k->head, sizeof(k->head), route_id, service_id);
        if (k->head_len == 0)
            return -1;
        k->route_id = route_id;
        k->service_id = service_id;
        k->head_ok = 1;
    }
    for (int i = 0; i < c->nperiods; i++) {
        rl_period_t p = c->period[i];
        if (now_ms >= k->start_ms[p] && now_ms < k->end_ms[p])
            continue;
        k->start_ms[p] = rl_window_start(p, now_ms);
        k->end_ms[p] = rl_window_end(p, k->start_ms[p]);
        k->tail_len[p] = rl_key_tail(k->tail[p], k->start_ms[p], p);
    }
    return 0;
}

/* This request's keys, head + identifier + tail, in one pool block, each
 * with 2 bytes of room before it (count_batched's prefixes) and a NUL
 * after.  -1 when a key would be longer than RL_KEY_MAX. */
static int
keys_build(const sl_api_t *api, sl_req_t *r, rl_ctx_t *x, sl_str_t id)
{
    const rl_keys_t *k = &x->conf->keys;
    size_t fixed = k->head_len + id.len;
    char *b;

    if (fixed + RL_KEY_TAIL_MAX > RL_KEY_MAX)
        return -1;
    b = api->palloc(r, (size_t)x->n * (2 + fixed + RL_KEY_TAIL_MAX + 1));
    for (int i = 0; i < x->n; i++) {
        rl_period_t p = x->conf->period[i];
        char *o = b + 2;
        memcpy(o, k->head, k->head_len);
        memcpy(o + k->head_len, id.ptr, id.len);
        memcpy(o + fixed, k->tail[p], k->tail_len[p]);
        o[fixed + k->tail_len[p]] = '\0';
        x->key[i] = (sl_str_t){o, fixed + k->tail_len[p]};
        x->start_ms[i] = k->start_ms[p];
        b = o + fixed + k->tail_len[p] + 1;
    }
    return 0;
}

static sl_status_t
rl_access(const sl_api_t *api, sl_req_t *r, void *conf)
{
    rl_conf_t *c = conf;
    sl_str_t id = sl_quota_identifier(api, r, c->limit_by, c->s->header_name, c->s->path);
    int64_t now_ms = api->now_us() / 1000;
    rl_ctx_t *x;

    if (keys_current(api, r, c, now_ms) != 0) {
        api->log(r, SL_LOG_WARN, "route or service id too long to count; request not limited");
        return SL_STATUS_CONTINUE;
    }
    x = api->palloc(r, sizeof(*x));
    memset(x, 0, sizeof(*x));
    x->conf = c;
    x->r = r;
    x->api = api;
    x->now_ms = now_ms;
    x->n = c->nperiods;
    if (keys_build(api, r, x, id) != 0) {
        api->log(r, SL_LOG_WARN, "identifier too long to count; request not limited");
        return SL_STATUS_CONTINUE;
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
            rl_redis_add(c->redis, x->key[i].ptr, rl_period_seconds[c->period[i]], 1);
        return SL_STATUS_CONTINUE;
    }

    const char *keys[RL_NPERIODS];
    int64_t ttl_s[RL_NPERIODS];
    for (int i = 0; i < x->n; i++) {
        keys[i] = x->key[i].ptr;
        ttl_s[i] = rl_period_seconds[c->period[i]];
    }
    if (rl_redis_incr(c->redis, keys, ttl_s, x->n, on_redis, x) != 0)
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
