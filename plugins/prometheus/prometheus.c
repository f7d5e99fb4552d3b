/* prometheus.c - Kong's prometheus plugin: the schema, and the log phase
 * that counts each request into the shared-memory zone (Kong's metric
 * names, labels and buckets; see prometheus.h for the zone's keys). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "prometheus.h"

static const double kong_buckets[] = {1,  2,   5,   7,   10,  15,   20,   30,  50,
                                      75, 100, 200, 500, 750, 1000, 3000, 6000};
static const double upstream_buckets[] = {25,   50,   80,   100,   250,   400,  700,
                                          1000, 2000, 5000, 10000, 30000, 60000};
static const double ai_buckets[] = {250,  500,  1000, 1500, 2000,  2500,  3000,
                                    3500, 4000, 4500, 5000, 10000, 30000, 60000};

#define AI_LABELS                                                                                  \
    "ai_provider", "ai_model", "cache_status", "vector_db", "embeddings_provider",                 \
        "embeddings_model"
#define NB(a) (sizeof(a) / sizeof((a)[0]))

const prom_family_t prom_families[PROM_FAMILY_MAX] = {
    [PROM_HTTP_REQUESTS] = {"http_requests_total",
                            PROM_COUNTER,
                            "HTTP status codes per consumer/service/route in Kong",
                            {"service", "route", "code", "source", "workspace", "consumer"}},
    [PROM_KONG_LATENCY] =
        {"kong_latency_ms",
         PROM_HISTOGRAM,
         "Latency added by Kong and enabled plugins for each service/route in Kong",
         {"service", "route", "workspace"},
         kong_buckets,
         NB(kong_buckets)},
    [PROM_UPSTREAM_LATENCY] = {"upstream_latency_ms",
                               PROM_HISTOGRAM,
                               "Latency added by upstream response for each service/route in Kong",
                               {"service", "route", "workspace"},
                               upstream_buckets,
                               NB(upstream_buckets)},
    [PROM_REQUEST_LATENCY] = {"request_latency_ms",
                              PROM_HISTOGRAM,
                              "Total latency incurred during requests for each service/route in "
                              "Kong",
                              {"service", "route", "workspace"},
                              upstream_buckets,
                              NB(upstream_buckets)},
    [PROM_BANDWIDTH] = {"bandwidth_bytes",
                        PROM_COUNTER,
                        "Total bandwidth (ingress/egress) throughput in bytes",
                        {"service", "route", "direction", "workspace", "consumer"}},
    [PROM_AI_REQUESTS] = {"ai_llm_requests_total",
                          PROM_COUNTER,
                          "AI requests total per ai_provider in Kong",
                          {AI_LABELS, "workspace"}},
    [PROM_AI_COST] = {"ai_llm_cost_total",
                      PROM_COUNTER,
                      "AI requests cost per ai_provider/cache in Kong",
                      {AI_LABELS, "workspace"}},
    [PROM_AI_TOKENS] = {"ai_llm_tokens_total",
                        PROM_COUNTER,
                        "AI requests cost per ai_provider/cache in Kong",
                        {AI_LABELS, "token_type", "workspace"}},
    [PROM_AI_LATENCY] = {"ai_llm_provider_latency_ms",
                         PROM_HISTOGRAM,
                         "LLM response Latency for each AI plugins per ai_provider in Kong",
                         {AI_LABELS, "workspace"},
                         ai_buckets,
                         NB(ai_buckets)},
};

/* Kong has workspaces; sluice serves Kong's only one. */
static const sl_str_t workspace = {"default", 7};

/* ---- schema ---------------------------------------------------------------- */

typedef struct {
    const char *name;
    size_t off;
} prom_flag_t;

static const prom_flag_t flags[] = {
    {"per_consumer", offsetof(prom_conf_t, per_consumer)},
    {"status_code_metrics", offsetof(prom_conf_t, status_code_metrics)},
    {"latency_metrics", offsetof(prom_conf_t, latency_metrics)},
    {"bandwidth_metrics", offsetof(prom_conf_t, bandwidth_metrics)},
    {"upstream_health_metrics", offsetof(prom_conf_t, upstream_health_metrics)},
    {"ai_metrics", offsetof(prom_conf_t, ai_metrics)},
    {"wasm_metrics", offsetof(prom_conf_t, wasm_metrics)},
};

static int
prom_config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    json_object *o = json_tokener_parse(json);
    prom_conf_t *c;
    int bad = 0;

    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        api->conf_error(cx, "", "expected a record");
        json_object_put(o);
        return -1;
    }
    if (api->size < offsetof(sl_api_t, req_stats) + sizeof(void *)) {
        api->conf_error(cx, "", "needs a host with plugin ABI 1.1 (metrics, shared memory)");
        json_object_put(o);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        json_object_put(o);
        return -1;
    }
    c->shm_size = PROM_ZONE_SIZE_DEFAULT;
    json_object_object_foreach(o, key, v)
    {
        size_t i;
        for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
            if (strcmp(key, flags[i].name) == 0)
                break;
        if (i < sizeof(flags) / sizeof(flags[0])) {
            if (v == NULL)
                continue; /* null: the default */
            if (!json_object_is_type(v, json_type_boolean)) {
                api->conf_error(cx, key, "expected a boolean");
                bad = 1;
                continue;
            }
            *(int *)((char *)c + flags[i].off) = json_object_get_boolean(v);
        } else if (strcmp(key, "shm_size") == 0) { /* sluice: the zone's size */
            int64_t n = json_object_get_int64(v);
            if (!json_object_is_type(v, json_type_int) || n < 65536 || n > 1024LL * 1024 * 1024) {
                api->conf_error(cx, key, "expected an integer between 65536 and 1073741824");
                bad = 1;
                continue;
            }
            c->shm_size = (size_t)n;
        } else {
            api->conf_error(cx, key, "unknown field");
            bad = 1;
        }
    }
    json_object_put(o);
    *out = c;
    if (bad)
        return -1;
    c->zone = api->shm_zone(cx, PROM_ZONE, c->shm_size, 0);
    if (c->zone == NULL)
        return -1;
    /* The error counter exists before any series can fill the zone. */
    if (api->shm_incr(c->zone, SL_STR(PROM_ERRORS_KEY), 0, 0, NULL) != 0) {
        api->conf_error(cx, "", "shared memory zone '%s' is full", PROM_ZONE);
        return -1;
    }
    /* upstream_health_metrics is global in Kong: on if any instance sets
     * it.  The first instance of a configuration is the exporter's arg;
     * the later ones (register answers 1) tell it. */
    static prom_conf_t *exporter;
    int rc = api->metrics_register(cx, prom_export, c);
    if (rc < 0)
        return -1;
    if (rc == 0)
        exporter = c;
    if (exporter && c->upstream_health_metrics)
        exporter->upstream_health_any = 1;
    return 0;
}

static void
prom_config_free(void *conf)
{
    free(conf);
}

/* ---- recording --------------------------------------------------------- */

/* One request's increments, handed to the zone together (shm_incr_many:
 * one lock for all of them). */
#define PROM_BATCH_MAX 48

typedef struct {
    const sl_api_t *api;
    prom_conf_t *c;
    sl_str_t keys[PROM_BATCH_MAX];
    double deltas[PROM_BATCH_MAX];
    size_t n;
    size_t used;
    unsigned dropped; /* series that could not be counted */
    char arena[PROM_BATCH_MAX * SL_SHM_KEY_MAX];
} prom_batch_t;

/* Count what the batch holds; it is empty again after. */
static void
flush(prom_batch_t *bt)
{
    int failed = bt->n ? bt->api->shm_incr_many(bt->c->zone, bt->keys, bt->deltas, bt->n, 0) : 0;
    unsigned dropped = bt->dropped + (failed < 0 ? (unsigned)bt->n : (unsigned)failed);

    if (dropped > 0) /* series dropped */
        bt->api->shm_incr(bt->c->zone, SL_STR(PROM_ERRORS_KEY), dropped, 0, NULL);
    bt->n = bt->used = 0;
    bt->dropped = 0;
}

typedef struct {
    char p[SL_SHM_KEY_MAX];
    size_t len;
    int overflow;
} prom_key_t;

static void
key_byte(prom_key_t *k, char c)
{
    if (k->len < sizeof(k->p))
        k->p[k->len++] = c;
    else
        k->overflow = 1;
}

static void
key_label(prom_key_t *k, sl_str_t v)
{
    size_t room = sizeof(k->p) - k->len, n = v.len < room ? v.len : room;
    char *q = k->p + k->len;

    /* copied and cleaned in one pass (label values are short: no memcpy
     * call), the separators becoming spaces without a branch */
    for (size_t i = 0; i < n; i++) {
        char c = v.ptr[i];
        q[i] = c == PROM_SEP || c == PROM_END ? ' ' : c;
    }
    k->len += n;
    if (n < v.len)
        k->overflow = 1;
    key_byte(k, PROM_SEP);
}

static void
key_start(prom_key_t *k, prom_family_id_t f, const sl_str_t *labels, size_t n)
{
    k->len = 0;
    k->overflow = 0;
    key_byte(k, (char)f);
    for (size_t i = 0; i < n; i++)
        key_label(k, labels[i]);
    key_byte(k, PROM_END);
}

static void
add(prom_batch_t *bt, prom_key_t *k, size_t base, char part, double v)
{
    k->len = base;
    key_byte(k, part);
    if (k->overflow) {
        bt->dropped++;
        return;
    }
    if (bt->n == PROM_BATCH_MAX || sizeof(bt->arena) - bt->used < k->len)
        flush(bt); /* many AI namespaces */
    char *dst = bt->arena + bt->used;
    memcpy(dst, k->p, k->len);
    bt->used += k->len;
    bt->keys[bt->n] = (sl_str_t){dst, k->len};
    bt->deltas[bt->n++] = v;
}

/* A histogram observation on a key already holding its labels (k->p[0] is
 * set to the family here: the latency families share their labels). */
static void
observe_key(prom_batch_t *bt, prom_key_t *k, prom_family_id_t f, double v)
{
    const prom_family_t *fam = &prom_families[f];
    size_t base = k->len, b = 0;

    k->p[0] = (char)f;
    while (b < fam->nbuckets && v > fam->buckets[b])
        b++;
    add(bt, k, base, (char)(b + 1), 1); /* b == nbuckets: +Inf */
    add(bt, k, base, PROM_PART_SUM, v); /* _count is the buckets' total */
    k->len = base;
}

static void
observe(prom_batch_t *bt, prom_family_id_t f, const sl_str_t *labels, size_t n, double v)
{
    prom_key_t k;

    key_start(&k, f, labels, n);
    observe_key(bt, &k, f, v);
}

static void
count(prom_batch_t *bt, prom_family_id_t f, const sl_str_t *labels, size_t n, double v)
{
    prom_key_t k;
    key_start(&k, f, labels, n);
    add(bt, &k, k.len, PROM_PART_VALUE, v);
}

/* A path under one `ai.<namespace>.` (ai-proxy's statistics), read as
 * the value itself, no JSON text (ABI 1.5). */
typedef struct {
    char key[320];
    size_t base; /* "ai.<namespace>." */
} ai_path_t;

static int
ai_value(const sl_api_t *api, sl_req_t *r, ai_path_t *p, const char *sub, sl_value_t *v)
{
    size_t n = strlen(sub);

    if (p->base + n >= sizeof(p->key))
        return 0;
    memcpy(p->key + p->base, sub, n + 1);
    return api->serialize_value_typed(r, p->key, v);
}

static sl_str_t
ai_str(const sl_api_t *api, sl_req_t *r, ai_path_t *p, const char *sub)
{
    sl_value_t v;
    if (ai_value(api, r, p, sub, &v) == 1 && v.type == SL_VALUE_STRING)
        return v.s;
    return (sl_str_t){"", 0};
}

static double
ai_num(const sl_api_t *api, sl_req_t *r, ai_path_t *p, const char *sub, double dflt)
{
    sl_value_t v;
    if (ai_value(api, r, p, sub, &v) == 1 && (v.type == SL_VALUE_INT || v.type == SL_VALUE_DOUBLE))
        return v.d;
    return dflt;
}

#define AI_MAX_NS 8

/* Kong's exporter loops over every namespace under `ai` (ai.proxy, ...). */
static void
log_ai(const sl_api_t *api, sl_req_t *r, prom_batch_t *bt)
{
    static const char *const tokens[] = {"prompt_tokens", "completion_tokens", "total_tokens"};
    static const char *const usage_tokens[] = {"usage.prompt_tokens", "usage.completion_tokens",
                                               "usage.total_tokens"};
    sl_str_t ns[AI_MAX_NS];
    int nns = api->serialize_value_keys(r, "ai", ns, AI_MAX_NS);
    ai_path_t p;
    sl_value_t v;

    for (int i = 0; i < nns && i < AI_MAX_NS; i++) {
        if (ns[i].len == 0 || ns[i].len > 255 || memchr(ns[i].ptr, '.', ns[i].len) != NULL)
            continue; /* not a name a dotted key reaches */
        memcpy(p.key, "ai.", 3);
        memcpy(p.key + 3, ns[i].ptr, ns[i].len);
        p.base = 3 + ns[i].len;
        p.key[p.base] = '\0';
        if (api->serialize_value_typed(r, p.key, &v) != 1 || v.type != SL_VALUE_OBJECT)
            continue;
        p.key[p.base++] = '.';
        sl_str_t l[8] = {
            ai_str(api, r, &p, "meta.provider_name"),
            ai_str(api, r, &p, "meta.request_model"),
            ai_str(api, r, &p, "cache.cache_status"),
            ai_str(api, r, &p, "cache.vector_db"),
            ai_str(api, r, &p, "cache.embeddings_provider"),
            ai_str(api, r, &p, "cache.embeddings_model"),
            workspace,
        };
        count(bt, PROM_AI_REQUESTS, l, 7, 1);
        double cost = ai_num(api, r, &p, "usage.cost", 0);
        if (cost > 0)
            count(bt, PROM_AI_COST, l, 7, cost);
        double lat = ai_num(api, r, &p, "meta.llm_latency", -1);
        if (lat >= 0)
            observe(bt, PROM_AI_LATENCY, l, 7, lat);
        for (size_t t = 0; t < 3; t++) {
            double n = ai_num(api, r, &p, usage_tokens[t], 0);
            if (n <= 0)
                continue;
            sl_str_t lt[8] = {l[0], l[1], l[2], l[3], l[4], l[5]};
            lt[6] = (sl_str_t){tokens[t], strlen(tokens[t])};
            lt[7] = workspace;
            count(bt, PROM_AI_TOKENS, lt, 8, n);
        }
    }
}

static void
prom_log(const sl_api_t *api, sl_req_t *r, void *conf)
{
    prom_conf_t *c = conf;
    sl_req_stats_t st;
    prom_batch_t bt;
    char code[16];

    if (c == NULL || api->req_stats(r, &st) != 0 || st.route_id.len == 0)
        return; /* Kong records only requests that matched a route */
    bt.api = api;
    bt.c = c;
    bt.n = bt.used = 0;
    bt.dropped = 0;
    sl_str_t service = st.service_name.len ? st.service_name : st.service_host;
    sl_str_t route = st.route_name.len ? st.route_name : st.route_id;
    sl_str_t consumer = {"", 0};
    if (c->per_consumer) { /* username, else custom_id (Kong 3.12) */
        const sl_consumer_t *who = api->consumer_get(r);
        sl_str_t id, username = {NULL, 0}, custom_id = {NULL, 0};
        if (who && api->consumer_info(who, &id, &username, &custom_id) == 0)
            consumer = username.len ? username : custom_id.len ? custom_id : consumer;
    }

    if (c->status_code_metrics) {
        size_t n = 0;
        unsigned v = st.status > 0 && st.status < 1000 ? (unsigned)st.status : 0;
        if (v >= 100)
            code[n++] = (char)('0' + v / 100);
        if (v >= 10)
            code[n++] = (char)('0' + v / 10 % 10);
        code[n++] = (char)('0' + v % 10);
        sl_str_t source =
            api->resp_source(r) == SL_SOURCE_UPSTREAM ? SL_STR("service") : SL_STR("kong");
        sl_str_t l[6] = {service, route, {code, n}, source, workspace, consumer};
        count(&bt, PROM_HTTP_REQUESTS, l, 6, 1);
    }
    if (c->latency_metrics) {
        sl_str_t l[3] = {service, route, workspace};
        prom_key_t k;
        key_start(&k, PROM_KONG_LATENCY, l, 3); /* the three families' labels */
        if (st.latency_kong_ms >= 0)
            observe_key(&bt, &k, PROM_KONG_LATENCY, (double)st.latency_kong_ms);
        if (st.latency_proxy_ms >= 0)
            observe_key(&bt, &k, PROM_UPSTREAM_LATENCY, (double)st.latency_proxy_ms);
        observe_key(&bt, &k, PROM_REQUEST_LATENCY, (double)st.latency_request_ms);
    }
    if (c->bandwidth_metrics) {
        sl_str_t l[5] = {service, route, SL_STR("ingress"), workspace, consumer};
        if (st.request_size > 0)
            count(&bt, PROM_BANDWIDTH, l, 5, (double)st.request_size);
        l[2] = SL_STR("egress");
        if (st.response_size > 0)
            count(&bt, PROM_BANDWIDTH, l, 5, (double)st.response_size);
    }
    if (c->ai_metrics)
        log_ai(api, r, &bt);
    flush(&bt);
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "prometheus",      /* name */
    "1.0.0",           /* version */
    13,                /* priority (Kong's) */
    prom_config_parse, /* config_parse */
    prom_config_free,  /* config_free */
    NULL,              /* init_worker */
    NULL,              /* exit_worker */
    NULL,              /* access */
    NULL,              /* body */
    NULL,              /* header_filter */
    NULL,              /* body_filter */
    prom_log,          /* log */
    NULL,              /* balancer */
    {NULL},            /* reserved */
};
