/* aa_conf.c - Kong's ai-proxy-advanced configuration schema.
 *
 * Field names, defaults and ranges follow Kong 3.14's public schema
 * (AiProxyAdvanced.json).  Each target is turned into an ai-proxy config
 * (the target's route_type, model, auth and logging plus the top-level
 * llm_format, response_streaming, model_name_header, max_request_body_size)
 * and parsed by ai-proxy's own conf.c, so a target accepts exactly what
 * ai-proxy accepts, with errors named by their path under targets[i].
 * Then the targets are sorted into groups (by alias, name, provider,name)
 * that the balancer works on.  Not a hot path: json-c.
 */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "aa.h"

const char *const sl_aa_scen_names[SL_AA_SCEN_MAX] = {"image", "long_context", "background",
                                                      "web_search", "think"};

typedef struct sl_aa_cp {
    sl_aa_err_fn err;
    void *ud;
    int nerr;
    int oom;
    int target;       /* index of the target being parsed by ai-proxy's conf.c */
    int top_reported; /* a top-level field's error was reported once */
} sl_aa_cp_t;

static void sl_aa_err(sl_aa_cp_t *cp, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sl_aa_err(sl_aa_cp_t *cp, const char *field, const char *fmt, ...)
{
    char msg[384];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cp->err(cp->ud, field, msg);
    cp->nerr++;
}

#define UNSET(v) ((v) == NULL || json_object_get_type(v) == json_type_null)

static const char *const sl_aa_top_keys[] = {
    "targets",
    "balancer",
    "llm_format",
    "response_streaming",
    "model_name_header",
    "max_request_body_size",
    "genai_category",
    "embeddings",
    "vectordb",
    "acls",
    "scenarios",
    "max_stream_event_size",
    NULL,
};
/* top-level keys handed to every target's ai-proxy config */
static const char *const sl_aa_shared_keys[] = {
    "llm_format",
    "response_streaming",
    "model_name_header",
    "max_request_body_size",
    "genai_category",
    "max_stream_event_size",
    NULL,
};
static const char *const sl_aa_target_keys[] = {
    "route_type", "model", "auth", "logging", "weight", "description", "metadata", NULL,
};
static const char *const sl_aa_balancer_keys[] = {
    "algorithm",
    "retries",
    "failover_criteria",
    "connect_timeout",
    "read_timeout",
    "write_timeout",
    "hash_on_header",
    "latency_strategy",
    "tokens_count_strategy",
    "slots",
    "max_fails",
    "fail_timeout",
    NULL,
};
static const char *const sl_aa_scen_keys[] = {
    "image", "long_context", "background", "web_search", "think", "long_context_threshold", NULL,
};

static int
sl_aa_in(const char *k, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(k, *list) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Report keys of `o` not in `known`; prefix is the object's path ("" top). */
static void
sl_aa_unknown(sl_aa_cp_t *cp, json_object *o, const char *const *known, const char *prefix)
{
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        if (!sl_aa_in(k, known)) {
            char f[256];

            snprintf(f, sizeof(f), "%s%s%s", prefix, prefix[0] ? "." : "", k);
            sl_aa_err(cp, f, "unknown field");
        }
    }
}

static json_object *
sl_aa_get(json_object *o, const char *k)
{
    json_object *v = NULL;

    if (o == NULL || !json_object_object_get_ex(o, k, &v) || UNSET(v)) {
        return NULL;
    }
    return v;
}

/* Integer field with a default and a range. */
static int64_t
sl_aa_int(sl_aa_cp_t *cp, json_object *o, const char *k, const char *path, int64_t def, int64_t min,
          int64_t max)
{
    json_object *v = sl_aa_get(o, k);
    int64_t n;

    if (v == NULL) {
        return def;
    }
    if (json_object_get_type(v) != json_type_int) {
        sl_aa_err(cp, path, "expected an integer");
        return def;
    }
    n = json_object_get_int64(v);
    if (n < min || n > max) {
        sl_aa_err(cp, path, "value should be between %lld and %lld", (long long)min,
                  (long long)max);
        return def;
    }
    return n;
}

/* String field: NULL when unset (or wrong type, reported). */
static const char *
sl_aa_str(sl_aa_cp_t *cp, json_object *o, const char *k, const char *path)
{
    json_object *v = sl_aa_get(o, k);

    if (v == NULL) {
        return NULL;
    }
    if (json_object_get_type(v) != json_type_string) {
        sl_aa_err(cp, path, "expected a string");
        return NULL;
    }
    return json_object_get_string(v);
}

/* One of `names` (index), or def when unset; an unknown value is reported
 * with the accepted list. */
static int
sl_aa_enum(sl_aa_cp_t *cp, json_object *o, const char *k, const char *path,
           const char *const *names, int def)
{
    const char *s = sl_aa_str(cp, o, k, path);
    char list[256] = "";
    size_t off = 0;

    if (s == NULL) {
        return def;
    }
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            return i;
        }
        off +=
            (size_t)snprintf(list + off, sizeof(list) - off, "%s\"%s\"", i ? ", " : "", names[i]);
        if (off >= sizeof(list)) {
            off = sizeof(list) - 1;
        }
    }
    sl_aa_err(cp, path, "expected one of: %s", list);
    return def;
}

/* ------------------------------------------------------------- balancer */

static const char *const sl_aa_alg_names[] = {
    "round-robin",        "priority", "lowest-latency", "lowest-usage", "least-connections",
    "consistent-hashing", NULL,
};
static const char *const sl_aa_fo_names[] = {
    "error",    "timeout",  "invalid_header", "http_403", "http_404",       "http_429",
    "http_500", "http_502", "http_503",       "http_504", "non_idempotent", NULL,
};
static const char *const sl_aa_lat_names[] = {"tpot", "e2e", NULL};
static const char *const sl_aa_tok_names[] = {
    "total-tokens", "prompt-tokens", "completion-tokens", "cost", "llm-accuracy", NULL,
};

static void
sl_aa_parse_balancer(sl_aa_cp_t *cp, json_object *b, sl_aa_balancer_t *out)
{
    const int64_t tmax = 2147483646;
    const char *alg;
    json_object *fo;

    if (b != NULL && json_object_get_type(b) != json_type_object) {
        sl_aa_err(cp, "balancer", "expected a record");
        b = NULL;
    }
    if (b != NULL) {
        sl_aa_unknown(cp, b, sl_aa_balancer_keys, "balancer");
    }
    alg = sl_aa_str(cp, b, "algorithm", "balancer.algorithm");
    if (alg != NULL && strcmp(alg, "semantic") == 0) {
        sl_aa_err(cp, "balancer.algorithm",
                  "\"semantic\" is not supported yet by sluice (it needs embeddings and a "
                  "vector database); use one of round-robin, priority, lowest-latency, "
                  "lowest-usage, least-connections, consistent-hashing");
        out->algorithm = SL_AA_ALG_ROUND_ROBIN;
    } else {
        out->algorithm = sl_aa_enum(cp, b, "algorithm", "balancer.algorithm", sl_aa_alg_names,
                                    SL_AA_ALG_ROUND_ROBIN);
    }
    out->retries = sl_aa_int(cp, b, "retries", "balancer.retries", 5, 0, 32767);
    out->connect_timeout =
        sl_aa_int(cp, b, "connect_timeout", "balancer.connect_timeout", 60000, 1, tmax);
    out->read_timeout = sl_aa_int(cp, b, "read_timeout", "balancer.read_timeout", 60000, 1, tmax);
    out->write_timeout =
        sl_aa_int(cp, b, "write_timeout", "balancer.write_timeout", 60000, 1, tmax);
    out->slots = sl_aa_int(cp, b, "slots", "balancer.slots", 10000, 10, 65536);
    out->max_fails = sl_aa_int(cp, b, "max_fails", "balancer.max_fails", 0, 0, 32767);
    out->fail_timeout = sl_aa_int(cp, b, "fail_timeout", "balancer.fail_timeout", 10000, 1, tmax);
    out->latency_strategy = sl_aa_enum(cp, b, "latency_strategy", "balancer.latency_strategy",
                                       sl_aa_lat_names, SL_AA_LAT_TPOT);
    out->tokens_count_strategy =
        sl_aa_enum(cp, b, "tokens_count_strategy", "balancer.tokens_count_strategy",
                   sl_aa_tok_names, SL_AA_TOK_TOTAL);
    if (out->tokens_count_strategy == SL_AA_TOK_ACCURACY) {
        sl_aa_err(cp, "balancer.tokens_count_strategy",
                  "\"llm-accuracy\" is not supported yet by sluice (it needs an evaluation "
                  "plugin's scores)");
    }
    {
        const char *h = sl_aa_str(cp, b, "hash_on_header", "balancer.hash_on_header");

        out->hash_on_header = strdup(h ? h : "X-Kong-LLM-Request-ID");
        if (out->hash_on_header == NULL) {
            cp->oom = 1;
        }
    }
    fo = sl_aa_get(b, "failover_criteria");
    if (fo == NULL) {
        out->failover = SL_AA_FO_ERROR | SL_AA_FO_TIMEOUT;
    } else if (json_object_get_type(fo) != json_type_array) {
        sl_aa_err(cp, "balancer.failover_criteria", "expected an array");
    } else {
        size_t n = json_object_array_length(fo);

        out->failover = 0;
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(fo, i);
            const char *s =
                json_object_get_type(e) == json_type_string ? json_object_get_string(e) : NULL;
            char path[64];
            int k;

            snprintf(path, sizeof(path), "balancer.failover_criteria[%zu]", i);
            for (k = 0; s && sl_aa_fo_names[k]; k++) {
                if (strcmp(s, sl_aa_fo_names[k]) == 0) {
                    break;
                }
            }
            if (s == NULL || sl_aa_fo_names[k] == NULL) {
                sl_aa_err(cp, path,
                          "expected one of: error, timeout, invalid_header, http_403, "
                          "http_404, http_429, http_500, http_502, http_503, http_504, "
                          "non_idempotent");
                continue;
            }
            out->failover |= 1u << k;
        }
    }
}

/* --------------------------------------------------------------- targets */

typedef struct {
    sl_aa_cp_t *cp;
} sl_aa_fwd_t;

/* ai-proxy's conf.c reports "model.provider": it becomes
 * "targets[i].model.provider"; a shared top-level field is reported once,
 * under its own name. */
static void
sl_aa_fwd(void *ud, const char *field, const char *msg)
{
    sl_aa_cp_t *cp = ud;
    char first[64];
    size_t n = strcspn(field, ".[");
    char path[320];

    snprintf(first, sizeof(first), "%.*s", (int)(n < 63 ? n : 63), field);
    if (sl_aa_in(first, sl_aa_shared_keys)) {
        if (cp->top_reported) {
            cp->nerr++;
            return;
        }
        cp->top_reported = 1;
        sl_aa_err(cp, field, "%s", msg);
        return;
    }
    snprintf(path, sizeof(path), "targets[%d]%s%s", cp->target, field[0] ? "." : "", field);
    sl_aa_err(cp, path, "%s", msg);
}

static int
sl_aa_parse_target(sl_aa_cp_t *cp, json_object *root, json_object *t, int i, sl_aa_target_t *out)
{
    char path[96];
    json_object *ap, *model, *v;
    const char *alias, *text;
    int rc;

    snprintf(path, sizeof(path), "targets[%d]", i);
    if (json_object_get_type(t) != json_type_object) {
        sl_aa_err(cp, path, "expected a record");
        return -1;
    }
    sl_aa_unknown(cp, t, sl_aa_target_keys, path);
    snprintf(path, sizeof(path), "targets[%d].weight", i);
    out->weight = (uint32_t)sl_aa_int(cp, t, "weight", path, 100, 1, 65535);
    snprintf(path, sizeof(path), "targets[%d].description", i);
    text = sl_aa_str(cp, t, "description", path);
    if (text && (out->description = strdup(text)) == NULL) {
        return -2;
    }
    if (sl_aa_get(t, "route_type") == NULL) {
        snprintf(path, sizeof(path), "targets[%d].route_type", i);
        sl_aa_err(cp, path, "required field missing");
    }
    model = sl_aa_get(t, "model");
    if (model == NULL) {
        snprintf(path, sizeof(path), "targets[%d].model", i);
        sl_aa_err(cp, path, "required field missing");
        return -1;
    }
    if (json_object_get_type(model) != json_type_object) {
        return -1; /* ai-proxy's conf.c reports it below */
    }
    snprintf(path, sizeof(path), "targets[%d].model.model_alias", i);
    alias = sl_aa_str(cp, model, "model_alias", path);
    if (alias != NULL) {
        if (alias[0] == '\0') {
            sl_aa_err(cp, path, "length must be at least 1");
        } else if ((out->alias = strdup(alias)) == NULL) {
            return -2;
        }
    }

    /* the target as an ai-proxy config */
    ap = json_object_new_object();
    if (ap == NULL) {
        return -2;
    }
    for (int k = 0; sl_aa_shared_keys[k]; k++) {
        if ((v = sl_aa_get(root, sl_aa_shared_keys[k])) != NULL) {
            json_object_object_add(ap, sl_aa_shared_keys[k], json_object_get(v));
        }
    }
    static const char *const own[] = {"route_type", "auth", "logging", NULL};
    for (int k = 0; own[k]; k++) {
        if ((v = sl_aa_get(t, own[k])) != NULL) {
            json_object_object_add(ap, own[k], json_object_get(v));
        }
    }
    {
        json_object *mc = NULL;

        if (json_object_deep_copy(model, &mc, NULL) != 0 || mc == NULL) {
            json_object_put(ap);
            return -2;
        }
        json_object_object_del(mc, "model_alias"); /* ours: selects the target */
        json_object_object_add(ap, "model", mc);
    }
    text = json_object_to_json_string_ext(ap, JSON_C_TO_STRING_PLAIN);
    cp->target = i;
    rc = text ? sl_ap_conf_parse(text, strlen(text), &out->ap, sl_aa_fwd, cp) : -2;
    json_object_put(ap);
    if (rc != 0) {
        return rc;
    }
    if (out->ap->t.token) {
        /* a try picked in the balancer phase cannot wait for a token */
        sl_aa_fwd(cp, "auth",
                  "OAuth token credentials (gcp_use_service_account, azure_use_managed_identity) "
                  "are not supported yet by sluice in ai-proxy-advanced targets");
        return -1;
    }
    snprintf(out->label, sizeof(out->label), "%s/%s", out->ap->t.provider_name,
             out->ap->t.model_name ? out->ap->t.model_name : "(request model)");
    return 0;
}

/* ---------------------------------------------------------------- groups */

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

int
sl_aa_group_find(const sl_aa_conf_t *c, const char *key, size_t len, unsigned kinds)
{
    for (size_t i = 0; i < c->ng; i++) {
        const sl_aa_group_t *g = &c->g[i];

        if ((kinds & (1u << g->kind)) && g->key && strlen(g->key) == len &&
            (g->kind == SL_AA_GK_EXPLICIT ? strncasecmp(g->key, key, len) == 0
                                          : memcmp(g->key, key, len) == 0)) {
            return (int)i;
        }
    }
    return -1;
}

/* Add target ti to the group (kind, key), creating it. */
static int
sl_aa_group_add(sl_aa_conf_t *c, int kind, const char *key, uint16_t ti)
{
    int gi = key ? sl_aa_group_find(c, key, strlen(key), 1u << kind) : -1;
    sl_aa_group_t *g;
    uint16_t *idx;

    if (kind == SL_AA_GK_ALL && c->all_group >= 0) {
        gi = c->all_group;
    }
    if (gi < 0) {
        sl_aa_group_t *ng = realloc(c->g, (c->ng + 1) * sizeof(*ng));

        if (ng == NULL) {
            return -2;
        }
        c->g = ng;
        gi = (int)c->ng++;
        memset(&c->g[gi], 0, sizeof(c->g[gi]));
        c->g[gi].kind = kind;
        c->g[gi].gid = gi;
        if (key && (c->g[gi].key = strdup(key)) == NULL) {
            return -2;
        }
        if (kind == SL_AA_GK_ALL) {
            c->all_group = gi;
        }
    }
    g = &c->g[gi];
    idx = realloc(g->idx, (g->n + 1) * sizeof(*idx));
    if (idx == NULL) {
        return -2;
    }
    g->idx = idx;
    g->idx[g->n++] = ti;
    return 0;
}

typedef struct {
    uint32_t h;
    uint16_t t;
} sl_aa_point_t;

static int
sl_aa_point_cmp(const void *a, const void *b)
{
    const sl_aa_point_t *x = a, *y = b;

    return x->h < y->h ? -1 : x->h > y->h ? 1 : x->t < y->t ? -1 : x->t > y->t;
}

/* Weights, round-robin stride and (consistent hashing) the ring. */
static int
sl_aa_group_finish(sl_aa_conf_t *c, sl_aa_group_t *g)
{
    uint64_t w = 0;

    g->cum = malloc(g->n * sizeof(*g->cum));
    if (g->cum == NULL) {
        return -2;
    }
    for (size_t i = 0; i < g->n; i++) {
        w += c->t[g->idx[i]].weight;
        g->cum[i] = w;
    }
    g->total_w = w;
    g->stride = (uint64_t)((double)w * 0.6180339887) | 1u;
    while (w > 1 && sl_aa_gcd(g->stride, w) != 1) {
        g->stride++;
    }
    if (c->bal.algorithm == SL_AA_ALG_CONSISTENT_HASHING) {
        size_t total = 0, k = 0;
        sl_aa_point_t *pts;

        for (size_t i = 0; i < g->n; i++) {
            uint64_t p = (uint64_t)c->bal.slots * c->t[g->idx[i]].weight / w;
            total += p ? p : 1;
        }
        pts = malloc(total * sizeof(*pts));
        g->ring = malloc(total * sizeof(*g->ring));
        g->ring_t = malloc(total * sizeof(*g->ring_t));
        if (pts == NULL || g->ring == NULL || g->ring_t == NULL) {
            free(pts);
            return -2;
        }
        for (size_t i = 0; i < g->n; i++) {
            const sl_aa_target_t *t = &c->t[g->idx[i]];
            uint64_t p = (uint64_t)c->bal.slots * t->weight / w;

            for (uint64_t j = 0; j < (p ? p : 1); j++) {
                char pk[200];
                int n = snprintf(pk, sizeof(pk), "%s#%u#%llu", t->label, (unsigned)g->idx[i],
                                 (unsigned long long)j);

                pts[k].h = sl_aa_hash(pk, (size_t)n);
                pts[k].t = (uint16_t)i;
                k++;
            }
        }
        qsort(pts, total, sizeof(*pts), sl_aa_point_cmp);
        for (size_t i = 0; i < total; i++) {
            g->ring[i] = pts[i].h;
            g->ring_t[i] = pts[i].t;
        }
        g->ring_n = total;
        free(pts);
    }
    return 0;
}

static int
sl_aa_has_glob(const char *s)
{
    return strchr(s, '*') != NULL || strchr(s, '?') != NULL;
}

static int
sl_aa_build_groups(sl_aa_cp_t *cp, sl_aa_conf_t *c)
{
    char key[320];
    size_t cap = 1, off = 0;
    int rc;

    for (size_t i = 0; i < c->nt; i++) {
        const sl_aa_target_t *t = &c->t[i];

        if (t->alias &&
            (rc = sl_aa_group_add(c, sl_aa_has_glob(t->alias) ? SL_AA_GK_GLOB : SL_AA_GK_ALIAS,
                                  t->alias, (uint16_t)i)) != 0) {
            return rc;
        }
        if (t->ap->t.model_name) {
            if ((rc = sl_aa_group_add(c, SL_AA_GK_NAME, t->ap->t.model_name, (uint16_t)i)) != 0) {
                return rc;
            }
            snprintf(key, sizeof(key), "%s,%s", t->ap->t.provider_name, t->ap->t.model_name);
            if ((rc = sl_aa_group_add(c, SL_AA_GK_EXPLICIT, key, (uint16_t)i)) != 0) {
                return rc;
            }
        }
        if ((rc = sl_aa_group_add(c, SL_AA_GK_ALL, NULL, (uint16_t)i)) != 0) {
            return rc;
        }
    }
    /* An exact alias that is also another target's model name selects a
     * different set of targets depending on which rule wins: refused. */
    for (size_t i = 0; i < c->nt; i++) {
        const char *a = c->t[i].alias;
        int ng;

        if (a == NULL || sl_aa_has_glob(a)) {
            continue;
        }
        ng = sl_aa_group_find(c, a, strlen(a), 1u << SL_AA_GK_NAME);
        if (ng < 0) {
            continue;
        }
        for (size_t k = 0; k < c->g[ng].n; k++) {
            const sl_aa_target_t *o = &c->t[c->g[ng].idx[k]];

            if (o->alias == NULL || strcmp(o->alias, a) != 0) {
                snprintf(key, sizeof(key), "targets[%zu].model.model_alias", i);
                sl_aa_err(cp, key,
                          "alias conflict: \"%s\" is also the model.name of targets[%u], which "
                          "does not have this alias (a request for \"%s\" would be ambiguous)",
                          a, (unsigned)c->g[ng].idx[k], a);
                break;
            }
        }
    }
    for (size_t i = 0; i < c->ng; i++) {
        if ((rc = sl_aa_group_finish(c, &c->g[i])) != 0) {
            return rc;
        }
        if (c->g[i].kind <= SL_AA_GK_NAME) {
            cap += strlen(c->g[i].key) + 2;
        }
    }
    /* the names a request may use, for Kong's 400 */
    c->accepted = malloc(cap);
    if (c->accepted == NULL) {
        return -2;
    }
    c->accepted[0] = '\0';
    for (int kind = SL_AA_GK_ALIAS; kind <= SL_AA_GK_NAME; kind++) {
        for (size_t i = 0; i < c->ng; i++) {
            if (c->g[i].kind == kind) {
                off += (size_t)snprintf(c->accepted + off, cap - off, "%s%s", off ? ", " : "",
                                        c->g[i].key);
            }
        }
    }
    return 0;
}

static void
sl_aa_parse_scenarios(sl_aa_cp_t *cp, sl_aa_conf_t *c, json_object *s)
{
    for (int i = 0; i < SL_AA_SCEN_MAX; i++) {
        c->scen[i] = -1;
    }
    c->long_context_threshold = 60000;
    if (s == NULL) {
        return;
    }
    if (json_object_get_type(s) != json_type_object) {
        sl_aa_err(cp, "scenarios", "expected a record");
        return;
    }
    sl_aa_unknown(cp, s, sl_aa_scen_keys, "scenarios");
    c->long_context_threshold = sl_aa_int(cp, s, "long_context_threshold",
                                          "scenarios.long_context_threshold", 60000, 1, 100000000);
    for (int i = 0; i < SL_AA_SCEN_MAX; i++) {
        char path[64];
        const char *v;
        int gi;

        snprintf(path, sizeof(path), "scenarios.%s", sl_aa_scen_names[i]);
        v = sl_aa_str(cp, s, sl_aa_scen_names[i], path);
        if (v == NULL) {
            continue;
        }
        gi = sl_aa_group_find(c, v, strlen(v),
                              (1u << SL_AA_GK_ALIAS) | (1u << SL_AA_GK_GLOB) |
                                  (1u << SL_AA_GK_NAME) | (1u << SL_AA_GK_EXPLICIT));
        if (gi < 0) {
            sl_aa_err(cp, path,
                      "no target has \"%s\" as its model_alias or model.name (nor "
                      "\"provider,name\")",
                      v);
            continue;
        }
        c->scen[i] = gi;
        c->any_scenario = 1;
    }
}

/* ------------------------------------------------------------------ entry */

static uint64_t
sl_aa_hash64(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;

    for (size_t i = 0; i < n; i++) {
        h = (h ^ (unsigned char)p[i]) * 1099511628211ull;
    }
    return h;
}

int
sl_aa_conf_parse(const char *json, size_t len, sl_aa_conf_t **out, sl_aa_err_fn err, void *ud)
{
    sl_aa_cp_t cp = {err, ud, 0, 0, 0, 0};
    json_tokener *tok;
    json_object *root, *targets;
    sl_aa_conf_t *c;
    size_t n;
    int rc = 0;

    *out = NULL;
    tok = json_tokener_new();
    if (tok == NULL) {
        return -2;
    }
    root = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    if (root == NULL || json_object_get_type(root) != json_type_object) {
        json_object_put(root);
        sl_aa_err(&cp, "", "expected a JSON object");
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        json_object_put(root);
        return -2;
    }
    c->all_group = -1;
    c->id = sl_aa_hash64(json, len);
    sl_aa_unknown(&cp, root, sl_aa_top_keys, "");

    static const char *const unsupported[] = {"embeddings", "vectordb", "acls", NULL};
    for (int k = 0; unsupported[k]; k++) {
        if (sl_aa_get(root, unsupported[k]) != NULL) {
            sl_aa_err(&cp, unsupported[k],
                      "not supported yet by sluice (used by semantic routing and ACLs); "
                      "leave it null");
        }
    }
    sl_aa_parse_balancer(&cp, sl_aa_get(root, "balancer"), &c->bal);
    c->max_request_body_size = sl_aa_int(&cp, root, "max_request_body_size",
                                         "max_request_body_size", 1048576, 0, INT64_MAX);

    targets = sl_aa_get(root, "targets");
    if (targets == NULL) {
        sl_aa_err(&cp, "targets", "required field missing");
    } else if (json_object_get_type(targets) != json_type_array) {
        sl_aa_err(&cp, "targets", "expected an array");
    } else if ((n = json_object_array_length(targets)) == 0) {
        sl_aa_err(&cp, "targets", "length must be at least 1 (no target to route to)");
    } else if (n > 1024) {
        sl_aa_err(&cp, "targets", "length must be at most 1024");
    } else if ((c->t = calloc(n, sizeof(*c->t))) == NULL) {
        rc = -2;
    } else {
        c->nt = n;
        for (size_t i = 0; i < n && rc != -2; i++) {
            rc = sl_aa_parse_target(&cp, root, json_object_array_get_idx(targets, i), (int)i,
                                    &c->t[i]);
        }
        if (rc == -1) {
            rc = 0; /* counted in cp.nerr */
        }
    }
    if (rc == 0 && cp.nerr == 0 && c->nt > 0) {
        c->llm_format = c->t[0].ap->t.llm_format;
        rc = sl_aa_build_groups(&cp, c);
        if (rc == 0) {
            sl_aa_parse_scenarios(&cp, c, sl_aa_get(root, "scenarios"));
        }
    }
    json_object_put(root);
    if (cp.oom && rc == 0) {
        rc = -2;
    }
    if (rc == 0 && cp.nerr > 0) {
        rc = -1;
    }
    if (rc != 0) {
        sl_aa_conf_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void
sl_aa_conf_free(sl_aa_conf_t *c)
{
    if (c == NULL) {
        return;
    }
    for (size_t i = 0; i < c->nt; i++) {
        sl_ap_conf_free(c->t[i].ap);
        free(c->t[i].alias);
        free(c->t[i].description);
    }
    free(c->t);
    for (size_t i = 0; i < c->ng; i++) {
        free(c->g[i].key);
        free(c->g[i].idx);
        free(c->g[i].cum);
        free(c->g[i].ring);
        free(c->g[i].ring_t);
    }
    free(c->g);
    free(c->bal.hash_on_header);
    free(c->accepted);
    free(c);
}
