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
 * Two forms: llm_providers[] (limits per provider, counted per identifier,
 * checked in access) and Kong 3.14's policies[] (limits per policy whose
 * match[] entries all hold, counted per partition_by value, checked in the
 * body phase, where the requested model is known).  Policies also reject
 * early, as Kong 3.14 does: a request whose estimated prompt tokens alone
 * exceed what a prompt_tokens, total_tokens or cost limit has left is
 * refused without reaching the provider (estimate_prompt).
 *
 * Counts: strategy local = a shared-memory zone (exact across the workers
 * of a node); strategy redis = the node counts in shared memory and owes its
 * charges to Redis, flushed every sync_rate seconds (0 or unset: every
 * 20 ms) by rate-limiting's Redis store, which reads the cluster's totals
 * back; the request path never waits for Redis. */

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../shared/decimal.h"
#include "../shared/identifier.h"
#include "../shared/json_escape.h"
#include "airl.h"

#define AIRL_PRIORITY 905 /* Kong EE's */
#define AIRL_MAX_LIMITS 16
#define AIRL_MIN_FLUSH 0.02

typedef struct airl_limit {
    char label[24]; /* the provider, or "policy-<n>" */
    airl_count_t count;
    int64_t window_s;
    double limit;
    double usage;
    int over; /* exhausted, or (early rejection) this request's estimate exceeds what is left */
    int64_t reset_s;
    char key[300]; /* current window */
} airl_limit_t;

typedef struct airl_ctx {
    const airl_route_info_t *route;
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

/* ai-proxy-advanced's targets: their provider when they all share one
 * (DashScope behind several Qwen models, the usual case), else "" (the
 * balancer picks the target after this plugin has run). */
static void
targets_provider(json_object *root, char *out, size_t cap)
{
    json_object *targets, *model, *v;
    const char *first = NULL;

    out[0] = '\0';
    if (!json_object_object_get_ex(root, "targets", &targets) ||
        !json_object_is_type(targets, json_type_array))
        return;
    for (size_t i = 0; i < json_object_array_length(targets); i++) {
        const char *p;
        if (!json_object_object_get_ex(json_object_array_get_idx(targets, i), "model", &model) ||
            !json_object_object_get_ex(model, "provider", &v))
            return;
        p = json_object_get_string(v);
        if (first != NULL && strcmp(first, p) != 0)
            return;
        first = p;
    }
    if (first != NULL)
        snprintf(out, cap, "%s", first);
}

/* The route's ai-proxy (or ai-proxy-advanced): provider name, model and
 * client format, cached per worker. */
static const airl_route_info_t *
route_info(const sl_api_t *api, sl_req_t *r, airl_conf_t *c)
{
    sl_str_t js;
    airl_route_info_t *ri;
    json_object *root, *model = NULL, *v, *opts, *out;
    int advanced = 0;

    if (!api->chain_plugin_config(r, "ai-proxy", &js)) {
        if (!api->chain_plugin_config(r, "ai-proxy-advanced", &js))
            return NULL;
        advanced = 1;
    }
    for (unsigned i = 0; i < c->nroutes; i++)
        if (c->routes[i].json == js.ptr)
            return &c->routes[i];
    ri = &c->routes[c->nroutes < AIRL_ROUTE_CACHE ? c->nroutes++
                                                  : (unsigned)(js.len % AIRL_ROUTE_CACHE)];
    memset(ri, 0, sizeof(*ri));
    ri->json = js.ptr;
    root = json_tokener_parse(js.ptr);
    if (advanced) {
        targets_provider(root, ri->provider, sizeof(ri->provider));
        ri->mixed = ri->provider[0] == '\0';
    } else if (json_object_object_get_ex(root, "model", &model) &&
               json_object_object_get_ex(model, "provider", &v)) {
        snprintf(ri->provider, sizeof(ri->provider), "%s", json_object_get_string(v));
    }
    if (json_object_object_get_ex(model, "name", &v) && json_object_is_type(v, json_type_string))
        snprintf(ri->model, sizeof(ri->model), "%s", json_object_get_string(v));
    ri->input_cost = -1;
    if (json_object_object_get_ex(model, "options", &opts) &&
        json_object_object_get_ex(opts, "input_cost", &v) &&
        json_object_object_get_ex(opts, "output_cost", &out) &&
        !json_object_is_type(v, json_type_null) && !json_object_is_type(out, json_type_null))
        ri->input_cost = json_object_get_double(v);
    if (json_object_object_get_ex(root, "llm_format", &v))
        ri->anthropic = strcmp(json_object_get_string(v), "anthropic") == 0;
    /* the plugin's own llm_format, when set, names the client format */
    if (c->s->llm_format != NULL)
        ri->anthropic = strcmp(c->s->llm_format, "anthropic") == 0;
    json_object_put(root);
    if (ri->mixed && !c->policies)
        api->log(r, SL_LOG_WARN,
                 "ai-proxy-advanced's targets on this route use several providers: "
                 "llm_providers limits are not applied here (use policies)");
    return ri;
}

/* The pieces end to end into buf (NUL-terminated): their length, or -1
 * when they do not fit (never truncated). */
static int
join(char *buf, size_t cap, const sl_str_t *parts, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        if (parts[i].len >= cap - o)
            return -1;
        if (parts[i].len)
            memcpy(buf + o, parts[i].ptr, parts[i].len);
        o += parts[i].len;
    }
    buf[o] = '\0';
    return (int)o;
}

/* ai-ratelimit:<namespace>:<identifier>:<provider or policy>:<window>:<start>;
 * an identifier over 128 bytes (a long header value) is replaced by its
 * 64-bit FNV-1a hash so that every key fits.  Written piece by piece (two
 * keys per limit per request: snprintf was most of the access phase). */
static int
make_key(char *buf, size_t cap, sl_str_t ns, sl_str_t id, const char *label, int64_t window_s,
         int64_t start_s)
{
    char hashed[24], w[SL_DEC_MAX], st[SL_DEC_MAX];
    size_t wl = sl_dec(w, window_s), stl = sl_dec(st, start_s);

    if (id.len > 128) {
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < id.len; i++)
            h = (h ^ (unsigned char)id.ptr[i]) * 1099511628211ull;
        int n = snprintf(hashed, sizeof(hashed), "#%016llx", (unsigned long long)h);
        id = (sl_str_t){hashed, (size_t)n};
    }
    const sl_str_t parts[] = {
        SL_STR("ai-ratelimit:"), ns,          SL_STR(":"), id,          SL_STR(":"),
        str_of(label),           SL_STR(":"), {w, wl},     SL_STR(":"), {st, stl}};
    return join(buf, cap, parts, sizeof(parts) / sizeof(parts[0]));
}

/* Tokens (or cost) counted in a window: the node's own count, plus, with
 * Redis, the cluster's last total and what this node owes since. */
static double
count_of(const airl_conf_t *c, const char *key)
{
    const sl_api_t *api = c->api;
    char k[310];
    double v = 0, t = 0, p = 0;
    size_t n = strnlen(key, sizeof(k) - 2);

    if (!c->strategy_redis) {
        api->shm_get(c->zone, (sl_str_t){key, n}, NULL, 0, NULL, &v);
        return v;
    }
    /* "t:" + key, then "p:" + key (no snprintf: twice per limit per request) */
    k[0] = 't';
    k[1] = ':';
    memcpy(k + 2, key, n);
    api->shm_get(c->zone, (sl_str_t){k, n + 2}, NULL, 0, NULL, &t);
    k[0] = 'p';
    api->shm_get(c->zone, (sl_str_t){k, n + 2}, NULL, 0, NULL, &p);
    return t + p;
}

/* The headers gathered, then set in one host call (resp_headers_set). */
#define AIRL_MAX_HDRS (4 * AIRL_MAX_LIMITS + 3)
typedef struct airl_hdrs {
    sl_str_t name[AIRL_MAX_HDRS], value[AIRL_MAX_HDRS];
    char text[AIRL_MAX_HDRS][112]; /* name (< 80), then the value after it */
    size_t n;
} airl_hdrs_t;

/* One header: name `prefix` (then "-<window>-<label>" when label is not
 * NULL), value floor(v) (0 when negative), without printf (two headers on
 * every answer). */
static void
add_num(airl_hdrs_t *h, double v, const char *prefix, int64_t window_s, const char *label)
{
    char *t = h->text[h->n], w[SL_DEC_MAX];
    size_t wl = sl_dec(w, window_s);
    int nl, vl;

    if (label != NULL) {
        const sl_str_t parts[] = {str_of(prefix), SL_STR("-"), {w, wl}, SL_STR("-"), str_of(label)};
        nl = join(t, 80, parts, sizeof(parts) / sizeof(parts[0]));
    } else {
        nl = join(t, 80, (sl_str_t[]){str_of(prefix)}, 1);
    }
    if (nl <= 0)
        return;
    v = v < 0 ? 0 : floor(v);
    if (v < 9e18) /* room for SL_DEC_MAX after the name (< 80) */
        vl = (int)sl_dec(t + nl, (int64_t)v);
    else
        vl = snprintf(t + nl, 32, "%.0f", v);
    if (vl <= 0 || vl >= 32)
        return;
    h->name[h->n] = (sl_str_t){t, (size_t)nl};
    h->value[h->n] = (sl_str_t){t + nl, (size_t)vl};
    h->n++;
}

static void
apply_headers(const sl_api_t *api, sl_req_t *r, const airl_conf_t *c, const airl_ctx_t *x)
{
    airl_hdrs_t hs, *h = &hs;
    int64_t reset = 0;

    if (c->s->hide_client_headers)
        return;
    h->n = 0;
    for (int i = 0; i < x->n; i++) {
        const airl_limit_t *l = &x->lim[i];
        int64_t w = l->window_s;
        add_num(h, l->limit, "X-AI-RateLimit-Limit", w, l->label);
        add_num(h, l->limit - l->usage, "X-AI-RateLimit-Remaining", w, l->label);
        if (x->denied && l->over) {
            add_num(h, (double)l->reset_s, "X-AI-RateLimit-Reset", w, l->label);
            add_num(h, (double)l->reset_s, "X-AI-RateLimit-Retry-After", w, l->label);
            if (l->reset_s > reset)
                reset = l->reset_s;
        }
    }
    if (x->denied) {
        double jitter = c->s->retry_after_jitter_max > 0
                            ? floor((double)rand() / RAND_MAX * c->s->retry_after_jitter_max)
                            : 0;
        add_num(h, (double)reset, "X-AI-RateLimit-Reset", 0, NULL);
        add_num(h, (double)reset + jitter, "X-AI-RateLimit-Retry-After", 0, NULL);
        add_num(h, (double)reset + jitter, "Retry-After", 0, NULL);
    }
    if (api->resp_headers_set(r, h->name, h->value, h->n) != 0)
        api->log(r, SL_LOG_WARN, "could not set the AI rate-limit headers");
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
            if (!l->over || (i > 0 && strcmp(x->lim[i - 1].label, l->label) == 0))
                continue;
            m += (size_t)snprintf(msg + m, sizeof(msg) - m, "%s%s", first ? "" : ", ", l->label);
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

/* One limit of this request: its key in the current window and its usage
 * (sliding: the previous window weighs in by what is left of it, as Kong). */
static void
add_limit(const airl_conf_t *c, airl_ctx_t *x, sl_str_t ns, sl_str_t id, const char *label,
          int64_t w, double limit, int sliding, airl_count_t count, int64_t now_s)
{
    airl_limit_t *l;
    int64_t start = now_s - now_s % w, elapsed = now_s - start;
    char prev[300];

    if (x->n >= AIRL_MAX_LIMITS)
        return;
    l = &x->lim[x->n];
    memset(l, 0, offsetof(airl_limit_t, key));
    memcpy(l->label, label, strnlen(label, sizeof(l->label) - 1)); /* NUL: the memset */
    l->count = count;
    l->window_s = w;
    l->limit = limit;
    if (make_key(l->key, sizeof(l->key), ns, id, label, w, start) < 0 ||
        make_key(prev, sizeof(prev), ns, id, label, w, start - w) < 0)
        return;
    l->usage = count_of(c, l->key);
    if (sliding)
        l->usage += count_of(c, prev) * (double)(w - elapsed) / (double)w;
    l->reset_s = w - elapsed;
    if (l->usage >= l->limit)
        x->denied = l->over = 1;
    x->n++;
}

static sl_str_t
namespace_of(const sl_api_t *api, sl_req_t *r, const airl_conf_t *c)
{
    return c->s->namespace_ ? str_of(c->s->namespace_) : api->plugin_id(r);
}

static airl_ctx_t *
new_ctx(const sl_api_t *api, sl_req_t *r, const airl_route_info_t *ri)
{
    airl_ctx_t *x = api->palloc(r, sizeof(*x));

    /* the limits are filled by add_limit as they are added (~6 KB not
     * cleared per request) */
    x->n = 0;
    x->denied = 0;
    x->route = ri;
    api->ctx_set(r, x);
    return x;
}

/* llm_providers[]: the route's provider's limits, per identifier. */
static sl_status_t
airl_access(const sl_api_t *api, sl_req_t *r, void *conf)
{
    airl_conf_t *c = conf;
    const airl_route_info_t *ri;
    airl_ctx_t *x;
    sl_str_t ns, id;
    int64_t now_s = api->now_us() / 1000000;

    if (c->policies)
        return SL_STATUS_CONTINUE; /* the body phase decides */
    ri = route_info(api, r, c);
    if (ri == NULL || ri->provider[0] == '\0')
        return SL_STATUS_CONTINUE; /* no LLM traffic on this route */
    x = new_ctx(api, r, ri);
    id = sl_quota_identifier(api, r, c->identifier, c->s->header_name, c->s->path);
    ns = namespace_of(api, r, c);
    for (size_t i = 0; i < c->s->llm_providers.n; i++) {
        const airl_provider_t *p = (const airl_provider_t *)c->s->llm_providers.items + i;
        if (strcmp(p->name, ri->provider) != 0)
            continue;
        for (size_t j = 0; j < p->limit.n; j++)
            add_limit(c, x, ns, id, p->name, (int64_t)((const double *)p->window_size.items)[j],
                      ((const double *)p->limit.items)[j], c->sliding, c->count, now_s);
    }
    return x->denied ? refuse(api, r, c, x) : SL_STATUS_CONTINUE;
}

/* The request body as JSON, parsed once for the body phase (NULL when it
 * is not JSON); the caller puts it. */
static json_object *
parse_body(const sl_api_t *api, sl_req_t *r)
{
    sl_str_t body = api->req_body(r);
    json_tokener *tok;
    json_object *root;

    if (body.len == 0 || body.len > INT32_MAX || (tok = json_tokener_new()) == NULL)
        return NULL;
    root = json_tokener_parse_ex(tok, body.ptr, (int)body.len);
    json_tokener_free(tok);
    return root;
}

/* The model the request asks for: the route's ai-proxy model.name, else
 * the body's "model" (Kong: limits apply to the requested model). */
static sl_str_t
requested_model(const sl_api_t *api, sl_req_t *r, const airl_route_info_t *ri, json_object *root)
{
    sl_str_t out = {NULL, 0};
    json_object *v;

    if (ri->model[0])
        return str_of(ri->model);
    if (json_object_object_get_ex(root, "model", &v) && json_object_is_type(v, json_type_string)) {
        size_t n = (size_t)json_object_get_string_len(v);
        char *m = api->palloc(r, n + 1);
        memcpy(m, json_object_get_string(v), n + 1);
        out = (sl_str_t){m, n};
    }
    return out;
}

/* Kong's count_words (kong/llm/drivers/shared.lua): runs of non-space
 * characters in a string, or in the text parts of a content array. */
static double
count_words(json_object *v)
{
    double n = 0;

    if (json_object_is_type(v, json_type_string)) {
        const char *p = json_object_get_string(v);
        int in = 0;
        for (; *p; p++) {
            int sp = *p == ' ' || (*p >= '\t' && *p <= '\r');
            n += !sp && !in;
            in = !sp;
        }
    } else if (json_object_is_type(v, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *part = json_object_array_get_idx(v, i), *t, *text;
            if (json_object_object_get_ex(part, "type", &t) &&
                json_object_is_type(t, json_type_string) &&
                strcmp(json_object_get_string(t), "text") == 0 &&
                json_object_object_get_ex(part, "text", &text))
                n += count_words(text);
        }
    }
    return n;
}

/* The prompt tokens of this request, estimated as Kong does before the
 * provider answers (ai_shared.calculate_cost, called by the normalize-
 * request filter: words of every message's content, or of the prompt,
 * times 1.8 for a streamed request, rounded).  An Anthropic request's
 * top-level `system` counts too: Kong counts it as the system message of
 * the request it converted. */
static double
estimate_prompt(json_object *root)
{
    json_object *msgs, *v, *content;
    double words = 0;

    if (json_object_object_get_ex(root, "messages", &msgs) &&
        json_object_is_type(msgs, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(msgs); i++)
            if (json_object_object_get_ex(json_object_array_get_idx(msgs, i), "content", &content))
                words += count_words(content);
        if (json_object_object_get_ex(root, "system", &v))
            words += count_words(v);
    } else if (json_object_object_get_ex(root, "prompt", &v)) {
        if (json_object_is_type(v, json_type_array))
            for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *item = json_object_array_get_idx(v, i);
                words += json_object_is_type(item, json_type_string) ? count_words(item) : 1;
            }
        else
            words += count_words(v);
    }
    if (json_object_object_get_ex(root, "stream", &v) && json_object_get_boolean(v))
        words *= 1.8;
    return floor(words + 0.5);
}

/* Kong 3.14's early rejection: a limit counting prompt_tokens,
 * total_tokens or cost that this request's estimated prompt alone would
 * exceed (estimate > what is left) refuses it now.  The estimate is not
 * charged: the answer's real usage is, as for every request. */
static void
early_reject(const sl_api_t *api, sl_req_t *r, airl_ctx_t *x, const airl_route_info_t *ri,
             json_object **root)
{
    size_t body_len = api->req_body(r).len;
    double least = INFINITY, est, bound;

    for (int i = 0; i < x->n; i++) {
        const airl_limit_t *l = &x->lim[i];
        double left = l->limit - l->usage;
        if (l->count == AIRL_COMPLETION || (l->count == AIRL_COST && ri->input_cost <= 0))
            continue;
        if (l->count == AIRL_COST)
            left = left * 1e6 / ri->input_cost; /* in prompt tokens */
        if (left < least)
            least = left;
    }
    /* a body of n bytes holds at most n/2 + 1 words: most requests are far
     * below what is left and are not read at all */
    bound = floor(((double)body_len / 2 + 1) * 1.8 + 0.5);
    if (least == INFINITY || bound <= least)
        return;
    if (*root == NULL && (*root = parse_body(api, r)) == NULL)
        return;
    est = estimate_prompt(*root);
    for (int i = 0; i < x->n; i++) {
        airl_limit_t *l = &x->lim[i];
        double need = l->count == AIRL_COST ? est * ri->input_cost / 1e6 : est;
        if (l->count == AIRL_COMPLETION || (l->count == AIRL_COST && ri->input_cost <= 0))
            continue;
        if (need > l->limit - l->usage)
            x->denied = l->over = 1;
    }
}

/* The request's value for one match entry; 0 when the entry does not hold. */
static int
match_one(const sl_api_t *api, sl_req_t *r, const airl_route_info_t *ri, sl_str_t model,
          const airl_match_t *m, sl_str_t *val)
{
    sl_str_t v = {NULL, 0};
    const sl_consumer_t *cons;

    switch (m->kind) {
    case AIRL_MATCH_CONSUMER:
        if ((cons = api->consumer_get(r)) == NULL)
            return 0;
        if (m->key == NULL || strcmp(m->key, "id") == 0)
            api->consumer_info(cons, &v, NULL, NULL);
        else if (strcmp(m->key, "username") == 0)
            api->consumer_info(cons, NULL, &v, NULL);
        else
            api->consumer_info(cons, NULL, NULL, &v);
        break;
    case AIRL_MATCH_HEADER:
        if (!api->req_header_get(r, str_of(m->key), &v))
            return 0;
        break;
    case AIRL_MATCH_IP:
        v = api->client_ip(r);
        break;
    case AIRL_MATCH_MODEL:
        v = model;
        break;
    case AIRL_MATCH_PATH:
        v = api->req_path(r);
        break;
    case AIRL_MATCH_PROVIDER:
        v = str_of(ri->provider);
        break;
    case AIRL_MATCH_CONSUMER_GROUP:
        return 0; /* refused when parsing */
    }
    if (v.len == 0)
        return 0;
    *val = v;
    if (m->values.n == 0)
        return 1;
    for (size_t i = 0; i < m->values.n; i++) {
        const char *want = ((char *const *)m->values.items)[i];
        if (strlen(want) == v.len && memcmp(want, v.ptr, v.len) == 0)
            return 1;
    }
    return 0;
}

/* Does policy p apply?  Its partition (the partition_by values, joined by
 * '|') goes to part. */
static int
policy_applies(const sl_api_t *api, sl_req_t *r, const airl_route_info_t *ri, sl_str_t model,
               const airl_policy_t *p, char *part, size_t cap)
{
    size_t n = 0;

    part[0] = '\0';
    for (size_t j = 0; j < p->match.n; j++) {
        const airl_match_t *m = (const airl_match_t *)p->match.items + j;
        sl_str_t v;
        if (!match_one(api, r, ri, model, m, &v))
            return 0;
        if (m->partition_by && n < cap) {
            int k = snprintf(part + n, cap - n, "%s%.*s", n ? "|" : "", (int)v.len, v.ptr);
            n = k > 0 ? n + (size_t)k : n;
        }
    }
    return 1;
}

static void
add_policy(const airl_conf_t *c, airl_ctx_t *x, sl_str_t ns, size_t i, const char *part,
           int64_t now_s)
{
    const airl_policy_t *p = (const airl_policy_t *)c->s->policies.items + i;
    char label[24];

    snprintf(label, sizeof(label), "policy-%zu", i + 1);
    for (size_t j = 0; j < p->limits.n; j++) {
        const airl_policy_limit_t *l = (const airl_policy_limit_t *)p->limits.items + j;
        add_limit(c, x, ns, str_of(part[0] ? part : "*"), label, l->window_size, l->limit,
                  p->sliding, l->count, now_s);
    }
}

/* policies[]: every policy whose match[] all hold applies; a policy
 * without match[] applies when no other policy does. */
static sl_status_t
airl_body(const sl_api_t *api, sl_req_t *r, void *conf)
{
    airl_conf_t *c = conf;
    const airl_route_info_t *ri;
    airl_ctx_t *x;
    sl_str_t ns, model = {NULL, 0};
    int64_t now_s = api->now_us() / 1000000;
    int matched = 0;
    char part[1024];
    json_object *root = NULL;

    if (!c->policies)
        return SL_STATUS_CONTINUE;
    ri = route_info(api, r, c);
    if (ri == NULL)
        return SL_STATUS_CONTINUE; /* no LLM traffic on this route */
    x = new_ctx(api, r, ri);
    ns = namespace_of(api, r, c);
    if (c->need_model && !ri->model[0])
        root = parse_body(api, r);
    if (c->need_model)
        model = requested_model(api, r, ri, root);
    for (size_t i = 0; i < c->s->policies.n; i++) {
        const airl_policy_t *p = (const airl_policy_t *)c->s->policies.items + i;
        if (p->match.n > 0 && policy_applies(api, r, ri, model, p, part, sizeof(part))) {
            add_policy(c, x, ns, i, part, now_s);
            matched = 1;
        }
    }
    for (size_t i = 0; !matched && i < c->s->policies.n; i++)
        if (((const airl_policy_t *)c->s->policies.items)[i].match.n == 0)
            add_policy(c, x, ns, i, "", now_s);
    if (!x->denied)
        early_reject(api, r, x, ri, &root);
    json_object_put(root);
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

/* What this response costs under the tokens_count_strategy values in
 * `need` (a bit per airl_count_t), from ai-proxy's ai.proxy.usage (Kong's
 * field names), each number read as a value (ABI 1.5): no JSON text
 * written or parsed, and only the fields a limit counts. */
static int
charges(const sl_api_t *api, sl_req_t *r, unsigned need, double amount[4])
{
    static const char *const field[] = {
        [AIRL_TOTAL] = "ai.proxy.usage.total_tokens",
        [AIRL_PROMPT] = "ai.proxy.usage.prompt_tokens",
        [AIRL_COMPLETION] = "ai.proxy.usage.completion_tokens",
        [AIRL_COST] = "ai.proxy.usage.cost",
    };
    sl_value_t v;
    int any = 0;

    for (int i = 0; i < 4; i++) {
        amount[i] = 0;
        if ((need & 1u << i) && api->serialize_value_typed(r, field[i], &v) == 1 &&
            (v.type == SL_VALUE_INT || v.type == SL_VALUE_DOUBLE) && v.d > 0)
            amount[i] = v.d;
        any |= amount[i] > 0;
    }
    return any;
}

static void
airl_log(const sl_api_t *api, sl_req_t *r, void *conf)
{
    airl_conf_t *c = conf;
    airl_ctx_t *x = api->ctx_get(r);
    double amount[4];
    unsigned need = 0;

    if (x == NULL || x->denied || x->n == 0)
        return;
    for (int i = 0; i < x->n; i++)
        need |= 1u << x->lim[i].count;
    if (!charges(api, r, need, amount))
        return;
    for (int i = 0; i < x->n; i++) {
        const airl_limit_t *l = &x->lim[i];
        double a = amount[l->count];
        /* the previous window is read by sliding windows: keep two */
        uint64_t ttl_ms = (uint64_t)l->window_s * 2000;
        if (a == 0)
            continue;
        if (c->strategy_redis && c->redis != NULL) {
            rl_redis_add(c->redis, l->key, l->window_s * 2, (int64_t)ceil(a));
        } else if (api->shm_incr(c->zone, str_of(l->key), a, ttl_ms, NULL) != 0) {
            api->log(r, SL_LOG_ERROR, "could not count %.0f tokens: shared memory zone full", a);
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
    .body = airl_body,
    .header_filter = airl_header_filter,
    .log = airl_log,
};
