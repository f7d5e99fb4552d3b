/* exporter.c - GET /metrics for the prometheus plugin: the node's gauges
 * (Kong's kong_node_info, kong_nginx_connections_total,
 * kong_nginx_requests_total, kong_memory_lua_shared_dict_*), then every
 * series of the shared-memory zone, copied out (api->shm_iter), sorted
 * bytewise so each family is one group, and written in the Prometheus text
 * format.  Costs O(n log n) in the number of series, not in requests. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prometheus.h"

typedef struct {
    sl_write_fn write;
    void *w;
} out_t;

static void
put(out_t *o, const char *p, size_t n)
{
    o->write(o->w, p, n);
}

#define PUT_LIT(o, lit) put((o), "" lit, sizeof(lit) - 1)

static void putf(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
putf(out_t *o, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* A label value, escaped as the exposition format says (\\, \", \n). */
static void
put_label_value(out_t *o, const char *p, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = p[i] == '\\'   ? "\\\\"
                          : p[i] == '"'  ? "\\\""
                          : p[i] == '\n' ? "\\n"
                                         : NULL;
        if (esc == NULL)
            continue;
        put(o, p + start, i - start);
        put(o, esc, 2);
        start = i + 1;
    }
    put(o, p + start, n - start);
}

static void
put_num(out_t *o, double v)
{
    char b[64];
    int n = snprintf(b, sizeof(b), "%.15g", v);
    put(o, b, (size_t)n);
}

static void
put_header(out_t *o, const char *name, const char *help, const char *type)
{
    putf(o, "# HELP kong_%s %s\n# TYPE kong_%s %s\n", name, help, name, type);
}

/* ---- node-level gauges ----------------------------------------------------- */

static void
node_gauges(const sl_api_t *api, out_t *o)
{
    sl_node_status_t ns;
    sl_shm_info_t in;

    if (api->node_status(&ns) != 0)
        return;
    put_header(o, "nginx_connections_total", "Number of connections by subsystem", "gauge");
    const struct {
        const char *state;
        uint64_t v;
    } conns[] = {
        {"accepted", ns.connections_accepted}, {"active", ns.connections_active},
        {"handled", ns.connections_handled},   {"reading", ns.connections_reading},
        {"total", ns.connections_handled},     {"waiting", ns.connections_waiting},
        {"writing", ns.connections_writing},
    };
    for (size_t i = 0; i < sizeof(conns) / sizeof(conns[0]); i++)
        putf(o,
             "kong_nginx_connections_total{node_id=\"%s\",subsystem=\"http\",state=\"%s\"} %llu\n",
             ns.node_id, conns[i].state, (unsigned long long)conns[i].v);
    put_header(o, "nginx_requests_total", "Number of requests total", "gauge");
    putf(o, "kong_nginx_requests_total{node_id=\"%s\",subsystem=\"http\"} %llu\n", ns.node_id,
         (unsigned long long)ns.total_requests);
    put_header(o, "node_info", "Kong Node metadata information", "gauge");
    putf(o, "kong_node_info{node_id=\"%s\",version=\"%s\"} 1\n", ns.node_id, ns.version);

    put_header(o, "memory_lua_shared_dict_bytes", "Allocated slabs in bytes in a shared_dict",
               "gauge");
    for (size_t i = 0; api->shm_info(NULL, i, &in) == 0; i++)
        putf(o,
             "kong_memory_lua_shared_dict_bytes{node_id=\"%s\",shared_dict=\"%s\","
             "kong_subsystem=\"http\"} %zu\n",
             ns.node_id, in.name, in.used_bytes);
    put_header(o, "memory_lua_shared_dict_total_bytes", "Total capacity in bytes of a shared_dict",
               "gauge");
    for (size_t i = 0; api->shm_info(NULL, i, &in) == 0; i++)
        putf(o,
             "kong_memory_lua_shared_dict_total_bytes{node_id=\"%s\",shared_dict=\"%s\","
             "kong_subsystem=\"http\"} %zu\n",
             ns.node_id, in.name, in.size);
}

/* ---- the zone's series ------------------------------------------------------- */

typedef struct {
    char *key; /* in the arena */
    uint16_t klen;
    double v;
} series_t;

typedef struct {
    series_t *s;
    size_t n, cap;
    char *arena;
    size_t alen, acap;
    double errors;
    int oom;
} collect_t;

static int
collect_one(void *arg, const sl_shm_entry_t *e)
{
    collect_t *c = arg;
    if (e->type != SL_SHM_NUMBER)
        return 0;
    if (e->key.len == sizeof(PROM_ERRORS_KEY) - 1 &&
        memcmp(e->key.ptr, PROM_ERRORS_KEY, e->key.len) == 0) {
        c->errors = e->num;
        return 0;
    }
    unsigned char f = (unsigned char)e->key.ptr[0];
    if (f == 0 || f >= PROM_FAMILY_MAX)
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        series_t *s = realloc(c->s, cap * sizeof(*s));
        if (s == NULL) {
            c->oom = 1;
            return 1;
        }
        c->s = s;
        c->cap = cap;
    }
    if (c->alen + e->key.len > c->acap) {
        /* Keys are referenced by offset until the arena stops moving. */
        size_t cap = (c->alen + e->key.len) * 2 + 65536;
        char *a = realloc(c->arena, cap);
        if (a == NULL) {
            c->oom = 1;
            return 1;
        }
        c->arena = a;
        c->acap = cap;
    }
    memcpy(c->arena + c->alen, e->key.ptr, e->key.len);
    c->s[c->n].key = (char *)(uintptr_t)c->alen;
    c->s[c->n].klen = (uint16_t)e->key.len;
    c->s[c->n].v = e->num;
    c->alen += e->key.len;
    c->n++;
    return 0;
}

static int
series_cmp(const void *a, const void *b)
{
    const series_t *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (int)x->klen - (int)y->klen;
}

/* name{label="v",...[,le="x"]} value */
static void
put_series(out_t *o, const prom_family_t *fam, const char *suffix, const char *key, size_t klen,
           const char *le, double v)
{
    size_t i = 1, li = 0;

    putf(o, "kong_%s%s{", fam->name, suffix);
    while (i < klen && key[i] != PROM_END && fam->labels[li]) {
        const char *sep = memchr(key + i, PROM_SEP, klen - i);
        size_t n = sep ? (size_t)(sep - (key + i)) : klen - i;
        putf(o, "%s%s=\"", li ? "," : "", fam->labels[li]);
        put_label_value(o, key + i, n);
        PUT_LIT(o, "\"");
        i += n + 1;
        li++;
    }
    if (le)
        putf(o, "%sle=\"%s\"", li ? "," : "", le);
    PUT_LIT(o, "} ");
    put_num(o, v);
    PUT_LIT(o, "\n");
}

/* One histogram's lines from its run of keys [from, to) (same labels):
 * cumulative buckets, +Inf, then _count (the +Inf bucket: the buckets
 * are stored non-cumulative, so their total is the count; no series of
 * its own to increment per observation) and _sum. */
static void
put_histogram(out_t *o, const prom_family_t *fam, const series_t *s, size_t from, size_t to)
{
    double per[32] = {0}, sum = 0;
    char le[32];

    for (size_t i = from; i < to; i++) {
        unsigned char part = (unsigned char)s[i].key[s[i].klen - 1];
        if (part == PROM_PART_SUM)
            sum = s[i].v;
        else if (part >= 1 && part <= fam->nbuckets + 1)
            per[part - 1] = s[i].v;
    }
    size_t plen = s[from].klen - 1; /* the key without its part byte */
    double cum = 0;
    for (size_t b = 0; b <= fam->nbuckets; b++) {
        cum += per[b];
        if (b < fam->nbuckets)
            snprintf(le, sizeof(le), "%.15g", fam->buckets[b]);
        else
            snprintf(le, sizeof(le), "+Inf");
        put_series(o, fam, "_bucket", s[from].key, plen, le, cum);
    }
    put_series(o, fam, "_count", s[from].key, plen, NULL, cum);
    put_series(o, fam, "_sum", s[from].key, plen, NULL, sum);
}

/* Kong's four series per address of a target, in its (sorted) order:
 * dns_error, healthchecks_off, healthy, unhealthy; the current state is 1
 * and all four carry the address (Kong: "" for a target whose name does
 * not resolve, its one series being dns_error).  A state this build does
 * not know counts as unhealthy. */
static void
target_health(void *arg, sl_str_t upstream, sl_str_t target, sl_str_t address,
              sl_target_state_t state)
{
    out_t *o = arg;
    static const char *const states[] = {"dns_error", "healthchecks_off", "healthy", "unhealthy"};
    int cur = state == SL_TARGET_DNS_ERROR          ? 0
              : state == SL_TARGET_HEALTHCHECKS_OFF ? 1
              : state == SL_TARGET_HEALTHY          ? 2
                                                    : 3;

    for (int i = 0; i < 4; i++) {
        PUT_LIT(o, "kong_upstream_target_health{upstream=\"");
        put_label_value(o, upstream.ptr, upstream.len);
        PUT_LIT(o, "\",target=\"");
        put_label_value(o, target.ptr, target.len);
        PUT_LIT(o, "\",address=\"");
        put_label_value(o, address.ptr, address.len);
        putf(o, "\",state=\"%s\",subsystem=\"http\"} %d\n", states[i], i == cur);
    }
}

void
prom_export(const sl_api_t *api, void *arg, sl_write_fn write, void *w)
{
    prom_conf_t *conf = arg;
    out_t o = {write, w};
    collect_t c = {0};

    node_gauges(api, &o);
    if (api->shm_iter(conf->zone, collect_one, &c) != 0 || c.oom) {
        api->log(NULL, SL_LOG_ERROR, "prometheus: out of memory while scraping");
        free(c.s);
        free(c.arena);
        return;
    }
    for (size_t i = 0; i < c.n; i++)
        c.s[i].key = c.arena + (uintptr_t)c.s[i].key;
    if (c.n > 1) /* qsort must not get NULL, even for 0 items (UBSan) */
        qsort(c.s, c.n, sizeof(*c.s), series_cmp);

    unsigned char fam_id = 0;
    for (size_t i = 0; i < c.n;) {
        unsigned char f = (unsigned char)c.s[i].key[0];
        const prom_family_t *fam = &prom_families[f];
        if (f != fam_id) {
            put_header(&o, fam->name, fam->help,
                       fam->type == PROM_HISTOGRAM ? "histogram"
                       : fam->type == PROM_GAUGE   ? "gauge"
                                                   : "counter");
            fam_id = f;
        }
        if (fam->type != PROM_HISTOGRAM) {
            put_series(&o, fam, "", c.s[i].key, c.s[i].klen - 1, NULL, c.s[i].v);
            i++;
            continue;
        }
        /* the run of keys with the same family and labels */
        size_t j = i + 1, plen = c.s[i].klen - 1;
        while (j < c.n && c.s[j].klen == c.s[i].klen && memcmp(c.s[j].key, c.s[i].key, plen) == 0)
            j++;
        put_histogram(&o, fam, c.s, i, j);
        i = j;
    }
    if (conf->upstream_health_any && api->abi_minor >= 2 &&
        api->size >= offsetof(sl_api_t, upstream_health) + sizeof(void *)) {
        put_header(&o, "upstream_target_health",
                   "Health status of targets of upstream. States = "
                   "healthchecks_off|healthy|unhealthy|dns_error, value is 1 when state is "
                   "populated.",
                   "gauge");
        api->upstream_health(target_health, &o);
    }
    put_header(&o, "nginx_metric_errors_total", "Number of nginx-lua-prometheus errors", "counter");
    PUT_LIT(&o, "kong_nginx_metric_errors_total ");
    put_num(&o, c.errors);
    PUT_LIT(&o, "\n");
    free(c.s);
    free(c.arena);
}
