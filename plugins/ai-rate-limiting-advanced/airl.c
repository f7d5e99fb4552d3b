/* airl.c - ai-rate-limiting-advanced: LLM token (or cost) quotas per
 * provider and identifier, in sliding or fixed windows of any length.
 *
 * As in Kong, a response is charged when it completes, with ai-proxy's
 * usage (ai.proxy.usage, published at the end of the response), and the
 * limit stops the NEXT request: the request that crosses a limit finishes.
 * The provider and the client format come from the ai-proxy instance on the
 * same route (api->chain_plugin_config), so a refusal on an Anthropic route
 * is an Anthropic rate_limit_error that Claude Code shows and backs off on.
 *
 * Counts: strategy local = a shared-memory zone (exact across the workers
 * of a node); strategy redis = the node counts in shared memory and owes its
 * charges to Redis, flushed every sync_rate seconds (0 or unset: every
 * 20 ms) by rate-limiting's Redis store, which reads the cluster's totals
 * back; the request path never waits for Redis. */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../shared/identifier.h"
#include "../shared/json_escape.h"
#include "airl.h"

#define AIRL_PRIORITY 905 /* Kong EE's */
#define AIRL_MAX_LIMITS 16
#define AIRL_MIN_FLUSH 0.02

typedef struct airl_limit {
    const char *provider;
    int64_t window_s;
    double limit;
    double usage;
    int64_t reset_s;
    char key[300]; /* current window */
} airl_limit_t;

typedef struct airl_ctx {
    const airl_route_info_t *route;
    sl_str_t identifier;
    int n;
    airl_limit_t lim[AIRL_MAX_LIMITS];
    int denied;
} airl_ctx_t;

static sl_str_t
str_of(const char *s)
{
    sl_str_t r = {s, s ? strlen(s) : 0};
    return r;
}

/* The route's ai-proxy: provider name and client format, cached per worker. */
static const airl_route_info_t *
route_info(const sl_api_t *api, sl_req_t *r, airl_conf_t *c)
{
    sl_str_t js;
    airl_route_info_t *ri;
    json_object *root, *model, *v;

    if (!api->chain_plugin_config(r, "ai-proxy", &js))
        return NULL;
    for (unsigned i = 0; i < c->nroutes; i++)
        if (c->routes[i].json == js.ptr)
            return &c->routes[i];
    ri = &c->routes[c->nroutes < AIRL_ROUTE_CACHE ? c->nroutes++
                                                  : (unsigned)(js.len % AIRL_ROUTE_CACHE)];
    memset(ri, 0, sizeof(*ri));
    ri->json = js.ptr;
    root = json_tokener_parse(js.ptr);
    if (json_object_object_get_ex(root, "model", &model) &&
        json_object_object_get_ex(model, "provider", &v))
        snprintf(ri->provider, sizeof(ri->provider), "%s", json_object_get_string(v));
    if (json_object_object_get_ex(root, "llm_format", &v))
        ri->anthropic = strcmp(json_object_get_string(v), "anthropic") == 0;
    /* the plugin's own llm_format, when set, names the client format */
    if (c->s->llm_format != NULL)
        ri->anthropic = strcmp(c->s->llm_format, "anthropic") == 0;
    json_object_put(root);
    return ri;
}

static int
make_key(char *buf, size_t cap, sl_str_t ns, sl_str_t id, const char *provider, int64_t window_s,
         int64_t start_s)
{
    int n = snprintf(buf, cap, "ai-ratelimit:%.*s:%.*s:%s:%lld:%lld", (int)ns.len, ns.ptr,
                     (int)id.len, id.ptr, provider, (long long)window_s, (long long)start_s);
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* Tokens (or cost) counted in a window: the node's own count, plus, with
 * Redis, the cluster's last total and what this node owes since. */
static double
count_of(const airl_conf_t *c, const char *key)
{
    const sl_api_t *api = c->api;
    char k[310];
    double v = 0, t = 0, p = 0;
    int n;

    if (!c->strategy_redis) {
        api->shm_get(c->zone, str_of(key), NULL, 0, NULL, &v);
        return v;
    }
    n = snprintf(k, sizeof(k), "t:%s", key);
    api->shm_get(c->zone, (sl_str_t){k, (size_t)n}, NULL, 0, NULL, &t);
    k[0] = 'p';
    api->shm_get(c->zone, (sl_str_t){k, (size_t)n}, NULL, 0, NULL, &p);
    return t + p;
}

static void
set_num(const sl_api_t *api, sl_req_t *r, const char *name, double v)
{
    char num[32];
    int n = snprintf(num, sizeof(num), "%.0f", v < 0 ? 0 : floor(v));
    api->resp_header_set(r, str_of(name), (sl_str_t){num, (size_t)n});
}

static void
apply_headers(const sl_api_t *api, sl_req_t *r, const airl_conf_t *c, const airl_ctx_t *x)
{
    char name[128];
    int64_t reset = 0;

    if (c->s->hide_client_headers)
        return;
    for (int i = 0; i < x->n; i++) {
        const airl_limit_t *l = &x->lim[i];
        snprintf(name, sizeof(name), "X-AI-RateLimit-Limit-%lld-%s", (long long)l->window_s,
                 l->provider);
        set_num(api, r, name, l->limit);
        snprintf(name, sizeof(name), "X-AI-RateLimit-Remaining-%lld-%s", (long long)l->window_s,
                 l->provider);
        set_num(api, r, name, l->limit - l->usage);
        if (x->denied && l->usage >= l->limit) {
            snprintf(name, sizeof(name), "X-AI-RateLimit-Reset-%lld-%s", (long long)l->window_s,
                     l->provider);
            set_num(api, r, name, (double)l->reset_s);
            snprintf(name, sizeof(name), "X-AI-RateLimit-Retry-After-%lld-%s",
                     (long long)l->window_s, l->provider);
            set_num(api, r, name, (double)l->reset_s);
            if (l->reset_s > reset)
                reset = l->reset_s;
        }
    }
    if (x->denied) {
        double jitter = c->s->retry_after_jitter_max > 0
                            ? floor((double)rand() / RAND_MAX * c->s->retry_after_jitter_max)
                            : 0;
        set_num(api, r, "X-AI-RateLimit-Reset", (double)reset);
        set_num(api, r, "X-AI-RateLimit-Retry-After", (double)reset + jitter);
        set_num(api, r, "Retry-After", (double)reset + jitter);
    }
}

static sl_status_t
refuse(const sl_api_t *api, sl_req_t *r, const airl_conf_t *c, const airl_ctx_t *x)
{
    size_t cap = strlen(c->s->error_message) * 6 + 512, n = 0;
    char *body = api->palloc(r, cap);
    char msg[256];
    size_t m = 0;

    msg[0] = '\0';
    m += (size_t)snprintf(msg, sizeof(msg), "%s", c->s->error_message);
    if (!c->s->error_hide_providers) {
        for (int i = 0, first = 1; i < x->n && m < sizeof(msg); i++) {
            const airl_limit_t *l = &x->lim[i];
            if (l->usage < l->limit || (i > 0 && strcmp(x->lim[i - 1].provider, l->provider) == 0))
                continue;
            m += (size_t)snprintf(msg + m, sizeof(msg) - m, "%s%s", first ? "" : ", ", l->provider);
            first = 0;
        }
    }
    if (x->route->anthropic) {
        /* what Anthropic answers: Claude Code shows it and retries later */
        n += (size_t)snprintf(body, cap,
                              "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\","
                              "\"message\":\"");
        sl_json_escape(body, cap, &n, msg);
        n += (size_t)snprintf(body + n, cap - n, "\"}}");
    } else {
        n += (size_t)snprintf(body, cap, "{\"message\":\"");
        sl_json_escape(body, cap, &n, msg);
        n += (size_t)snprintf(body + n, cap - n, "\"}");
    }
    apply_headers(api, r, c, x);
    api->respond(r, c->error_code, str_of("application/json"), (sl_str_t){body, n});
    return SL_STATUS_RESPOND;
}

static sl_status_t
airl_access(const sl_api_t *api, sl_req_t *r, void *conf)
{
    airl_conf_t *c = conf;
    const airl_route_info_t *ri = route_info(api, r, c);
    airl_ctx_t *x;
    sl_str_t ns;
    int64_t now_s = api->now_us() / 1000000;

    if (ri == NULL || ri->provider[0] == '\0')
        return SL_STATUS_CONTINUE; /* no LLM traffic on this route */
    x = api->palloc(r, sizeof(*x));
    memset(x, 0, sizeof(*x));
    x->route = ri;
    x->identifier = sl_quota_identifier(api, r, c->identifier, c->s->header_name, c->s->path);
    ns = c->s->namespace_ ? str_of(c->s->namespace_) : api->plugin_id(r);
    for (size_t i = 0; i < c->s->llm_providers.n; i++) {
        const airl_provider_t *p = (const airl_provider_t *)c->s->llm_providers.items + i;
        if (strcmp(p->name, ri->provider) != 0)
            continue;
        for (size_t j = 0; j < p->limit.n && x->n < AIRL_MAX_LIMITS; j++) {
            airl_limit_t *l = &x->lim[x->n];
            int64_t w = (int64_t)((const double *)p->window_size.items)[j];
            int64_t start = now_s - now_s % w, elapsed = now_s - start;
            char prev[300];
            l->provider = p->name;
            l->window_s = w;
            l->limit = ((const double *)p->limit.items)[j];
            if (make_key(l->key, sizeof(l->key), ns, x->identifier, p->name, w, start) < 0 ||
                make_key(prev, sizeof(prev), ns, x->identifier, p->name, w, start - w) < 0)
                continue;
            l->usage = count_of(c, l->key);
            if (c->sliding) /* Kong: the previous window weighs in by what is left of it */
                l->usage += count_of(c, prev) * (double)(w - elapsed) / (double)w;
            l->reset_s = w - elapsed;
            if (l->usage >= l->limit)
                x->denied = 1;
            x->n++;
        }
    }
    api->ctx_set(r, x);
    return x->denied ? refuse(api, r, c, x) : SL_STATUS_CONTINUE;
}

static sl_status_t
airl_header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    airl_ctx_t *x = api->ctx_get(r);

    if (x != NULL && !x->denied)
        apply_headers(api, r, conf, x);
    return SL_STATUS_CONTINUE;
}

/* What this response costs under tokens_count_strategy, from ai-proxy's
 * ai.proxy.usage (Kong's field names). */
static double
charge(const sl_api_t *api, sl_req_t *r, const airl_conf_t *c)
{
    sl_str_t js;
    json_object *u, *v;
    double amount = 0;
    static const char *const field[] = {"total_tokens", "prompt_tokens", "completion_tokens",
                                        "cost"};

    if (!api->serialize_value_get(r, "ai.proxy.usage", &js))
        return 0;
    u = json_tokener_parse(js.ptr);
    if (json_object_object_get_ex(u, field[c->count], &v))
        amount = json_object_get_double(v);
    json_object_put(u);
    return amount > 0 ? amount : 0;
}

static void
airl_log(const sl_api_t *api, sl_req_t *r, void *conf)
{
    airl_conf_t *c = conf;
    airl_ctx_t *x = api->ctx_get(r);
    double amount;

    if (x == NULL || x->denied || x->n == 0 || (amount = charge(api, r, c)) == 0)
        return;
    for (int i = 0; i < x->n; i++) {
        const airl_limit_t *l = &x->lim[i];
        /* the previous window is read by sliding windows: keep two */
        uint64_t ttl_ms = (uint64_t)l->window_s * 2000;
        if (c->strategy_redis && c->redis != NULL) {
            rl_redis_add(c->redis, l->key, l->window_s * 2, (int64_t)ceil(amount));
        } else if (api->shm_incr(c->zone, str_of(l->key), amount, ttl_ms, NULL) != 0) {
            api->log(r, SL_LOG_ERROR, "could not count %.0f tokens: shared memory zone full",
                     amount);
        }
    }
}

static int
airl_init_worker(const sl_api_t *api, void *conf)
{
    airl_conf_t *c = conf;

    if (c->strategy_redis) {
        double every =
            c->s->sync_rate_set && c->s->sync_rate > 0 ? c->s->sync_rate : AIRL_MIN_FLUSH;
        c->redis = rl_redis_new(api, &c->s->redis.base, c->zone, every);
    }
    return 0;
}

static void
airl_exit_worker(const sl_api_t *api, void *conf)
{
    airl_conf_t *c = conf;

    (void)api;
    rl_redis_free(c->redis);
    c->redis = NULL;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    .abi_major = SL_PLUGIN_ABI_MAJOR,
    .abi_minor = SL_PLUGIN_ABI_MINOR,
    .name = "ai-rate-limiting-advanced",
    .version = "1.0.0",
    .priority = AIRL_PRIORITY,
    .config_parse = airl_conf_parse,
    .config_free = airl_conf_free,
    .init_worker = airl_init_worker,
    .exit_worker = airl_exit_worker,
    .access = airl_access,
    .header_filter = airl_header_filter,
    .log = airl_log,
};
