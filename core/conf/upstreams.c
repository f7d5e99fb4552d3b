/* upstreams.c - Kong's `upstreams` (with nested `targets`) and top-level
 * `targets` entities, checked as Kong's schemas check them, and the table of
 * target health the workers of a node share.
 *
 * The health table is one MAP_SHARED anonymous mapping made in the master
 * while the configuration is loaded, so every worker forked for this
 * generation sees the same slots (upstream/balancer.c reads and reports,
 * lock-free).  On a reload the new table starts from the previous one: a
 * target still configured (same upstream name, same host:port) keeps its
 * health and counters, as Kong keeps a health checker's state for targets
 * that survive a configuration change. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/mman.h>

#include <arpa/inet.h>

#include "conf/config_check.h"

#define SL_TARGET_DEFAULT_PORT 8000
#define SL_TARGET_DEFAULT_WEIGHT 100

static const char *const upstream_keys[] = {"id",
                                            "name",
                                            "algorithm",
                                            "hash_on",
                                            "hash_fallback",
                                            "hash_on_header",
                                            "hash_fallback_header",
                                            "hash_on_cookie",
                                            "hash_on_cookie_path",
                                            "hash_on_query_arg",
                                            "hash_fallback_query_arg",
                                            "hash_on_uri_capture",
                                            "hash_fallback_uri_capture",
                                            "slots",
                                            "healthchecks",
                                            "tags",
                                            "host_header",
                                            "client_certificate",
                                            "use_srv_name",
                                            "targets",
                                            "created_at",
                                            "updated_at",
                                            NULL};

static const char *const target_keys[] = {"id",   "target",     "weight",     "upstream",
                                          "tags", "created_at", "updated_at", NULL};

/* in sl_hash_on_t's order */
static const char *const hash_names[] = {"none", "consumer",  "ip",          "header", "cookie",
                                         "path", "query_arg", "uri_capture", NULL};

/* ---- small readers ---- */

static int
get_num(sl_loader_t *L, json_object *o, const char *base, const char *key, double min, double max,
        double *out)
{
    json_object *v = sl_conf_field(o, key);
    char p[SL_PATH_MAX];
    double d;

    if (v == NULL)
        return 0;
    sl_conf_kpath(p, base, key);
    if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
        sl_conf_err(L, p, "expected a number");
        return -1;
    }
    d = json_object_get_double(v);
    if (!(d >= min && d <= max)) {
        sl_conf_err(L, p, "value should be between %g and %g", min, max);
        return -1;
    }
    *out = d;
    return 1;
}

static char *
dup_str(sl_loader_t *L, json_object *o, const char *base, const char *key)
{
    const char *s;

    if (sl_conf_get_str(L, o, base, key, &s) > 0) {
        if (*s == '\0') {
            char p[SL_PATH_MAX];
            sl_conf_kpath(p, base, key);
            sl_conf_err(L, p, "length must be at least 1");
            return NULL;
        }
        return sl_strndup(s, strlen(s));
    }
    return NULL;
}

static int
get_enum(sl_loader_t *L, json_object *o, const char *base, const char *key,
         const char *const *names, int *out)
{
    const char *s;
    char p[SL_PATH_MAX], list[256] = "";

    if (sl_conf_get_str(L, o, base, key, &s) <= 0)
        return 0;
    for (int i = 0; names[i]; i++) {
        if (!strcmp(s, names[i])) {
            *out = i;
            return 1;
        }
        snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s\"%s\"", i ? ", " : "",
                 names[i]);
    }
    sl_conf_kpath(p, base, key);
    sl_conf_err(L, p, "expected one of: %s", list);
    return -1;
}

/* An array of statuses 100..999 into *set (replacing the default). */
static void
get_statuses(sl_loader_t *L, json_object *o, const char *base, const char *key,
             sl_status_set_t *set)
{
    json_object *v = sl_conf_field(o, key);
    char p[SL_PATH_MAX], ip[SL_PATH_MAX];

    if (v == NULL)
        return;
    sl_conf_kpath(p, base, key);
    if (!json_object_is_type(v, json_type_array)) {
        sl_conf_err(L, p, "expected an array");
        return;
    }
    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *e = json_object_array_get_idx(v, i);
        sl_conf_pathf(ip, "%s[%zu]", p, i);
        if (!json_object_is_type(e, json_type_int)) {
            sl_conf_err(L, ip, "expected an integer");
            continue;
        }
        int64_t st = json_object_get_int64(e);
        if (st < 100 || st > 999) {
            sl_conf_err(L, ip, "value should be between 100 and 999");
            continue;
        }
        set->bits[st / 8] |= (unsigned char)(1u << (st % 8));
    }
}

static void
statuses_default(sl_status_set_t *set, const int *list, size_t n)
{
    memset(set, 0, sizeof(*set));
    for (size_t i = 0; i < n; i++)
        set->bits[list[i] / 8] |= (unsigned char)(1u << (list[i] % 8));
}

/* A header name as Kong's typedefs.header_name: an RFC 7230 token. */
static int
header_name_ok(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("!#$%&'*+-.^_`|~", *s)))
            return 0;
    return 1;
}

static char *
get_header_name(sl_loader_t *L, json_object *o, const char *base, const char *key)
{
    char *s = dup_str(L, o, base, key), p[SL_PATH_MAX];

    if (s == NULL)
        return NULL;
    if (!header_name_ok(s)) {
        sl_conf_kpath(p, base, key);
        sl_conf_err(L, p,
                    "bad header name '%s', allowed characters are A-Z, a-z, 0-9, '_', and '-'", s);
        free(s);
        return NULL;
    }
    for (char *c = s; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c | 0x20);
    return s;
}

/* ---- healthchecks ---- */

static const char *const hc_types[] = {"http", "https", "tcp", "grpc", "grpcs", NULL};

static void
hc_type(sl_loader_t *L, json_object *o, const char *base, sl_hc_type_t *out)
{
    int t;
    char p[SL_PATH_MAX];

    if (get_enum(L, o, base, "type", hc_types, &t) <= 0)
        return;
    if (t >= 3) {
        sl_conf_kpath(p, base, "type");
        sl_conf_err(L, p, "'%s' health checks are not supported (http, https, tcp)", hc_types[t]);
        return;
    }
    *out = (sl_hc_type_t)t;
}

static void
hc_defaults(sl_upstream_conf_t *u)
{
    static const int a_healthy[] = {200, 302};
    static const int a_unhealthy[] = {429, 404, 500, 501, 502, 503, 504, 505};
    static const int p_healthy[] = {200, 201, 202, 203, 204, 205, 206, 207, 208, 226,
                                    300, 301, 302, 303, 304, 305, 306, 307, 308};
    static const int p_unhealthy[] = {429, 500, 503};
    sl_hc_active_t *a = &u->active;
    sl_hc_passive_t *ps = &u->passive;

    a->type = SL_HC_HTTP;
    a->timeout = 1;
    a->concurrency = 10;
    a->https_verify_certificate = 1;
    statuses_default(&a->healthy_statuses, a_healthy, sl_nelems(a_healthy));
    statuses_default(&a->unhealthy_statuses, a_unhealthy, sl_nelems(a_unhealthy));
    ps->type = SL_HC_HTTP;
    statuses_default(&ps->healthy_statuses, p_healthy, sl_nelems(p_healthy));
    statuses_default(&ps->unhealthy_statuses, p_unhealthy, sl_nelems(p_unhealthy));
}

static int
sub_record(sl_loader_t *L, json_object *o, const char *base, const char *key,
           const char *const *keys, json_object **out, char *path)
{
    *out = sl_conf_field(o, key);
    sl_conf_kpath(path, base, key);
    if (*out == NULL)
        return 0;
    return sl_conf_check_record(L, *out, path, keys) < 0 ? -1 : 1;
}

static void
hc_headers(sl_loader_t *L, json_object *o, const char *base, sl_hc_active_t *a)
{
    json_object *v = sl_conf_field(o, "headers");
    char p[SL_PATH_MAX], kp[SL_PATH_MAX];
    size_t len = 0;
    char *buf = NULL;

    if (v == NULL)
        return;
    sl_conf_kpath(p, base, "headers");
    if (!json_object_is_type(v, json_type_object)) {
        sl_conf_err(L, p, "expected a map");
        return;
    }
    json_object_object_foreach(v, name, vals)
    {
        sl_conf_kpath(kp, p, name);
        if (!header_name_ok(name)) {
            sl_conf_err(L, kp, "bad header name");
            continue;
        }
        if (!json_object_is_type(vals, json_type_array)) {
            sl_conf_err(L, kp, "expected an array");
            continue;
        }
        for (size_t i = 0; i < json_object_array_length(vals); i++) {
            json_object *e = json_object_array_get_idx(vals, i);
            const char *s = json_object_get_string(e);
            if (!json_object_is_type(e, json_type_string) || strpbrk(s, "\r\n")) {
                sl_conf_err(L, kp, "expected strings without line breaks");
                break;
            }
            size_t add = strlen(name) + strlen(s) + 4;
            buf = sl_xrealloc(buf, len + add + 1);
            len += (size_t)snprintf(buf + len, add + 1, "%s: %s\r\n", name, s);
        }
    }
    a->headers = buf;
}

static void
load_healthchecks(sl_loader_t *L, json_object *o, const char *base, sl_upstream_conf_t *u)
{
    static const char *const hc_keys[] = {"active", "passive", "threshold", NULL};
    static const char *const active_keys[] = {
        "type",    "timeout", "concurrency", "http_path", "https_sni", "https_verify_certificate",
        "headers", "healthy", "unhealthy",   NULL};
    static const char *const passive_keys[] = {"type", "healthy", "unhealthy", NULL};
    static const char *const a_healthy_keys[] = {"interval", "http_statuses", "successes", NULL};
    static const char *const a_unhealthy_keys[] = {"interval", "http_statuses", "tcp_failures",
                                                   "timeouts", "http_failures", NULL};
    static const char *const p_healthy_keys[] = {"http_statuses", "successes", NULL};
    static const char *const p_unhealthy_keys[] = {"http_statuses", "tcp_failures", "timeouts",
                                                   "http_failures", NULL};
    json_object *hc, *a, *ps, *h;
    char p[SL_PATH_MAX], ap[SL_PATH_MAX], pp[SL_PATH_MAX], hp[SL_PATH_MAX];
    const char *s;

    hc_defaults(u);
    if (sub_record(L, o, base, "healthchecks", hc_keys, &hc, p) <= 0)
        return;
    get_num(L, hc, p, "threshold", 0, 100, &u->threshold);
    if (sub_record(L, hc, p, "active", active_keys, &a, ap) > 0) {
        sl_hc_active_t *ac = &u->active;
        hc_type(L, a, ap, &ac->type);
        get_num(L, a, ap, "timeout", 0, 65535, &ac->timeout);
        sl_conf_get_int(L, a, ap, "concurrency", 1, 2147483647, &ac->concurrency);
        if (sl_conf_get_str(L, a, ap, "http_path", &s) > 0) {
            sl_conf_kpath(hp, ap, "http_path");
            if (sl_conf_check_path(L, hp, s))
                ac->http_path = sl_strndup(s, strlen(s));
        }
        if (sl_conf_field(a, "https_sni")) {
            sl_conf_kpath(hp, ap, "https_sni");
            sl_conf_err(L, hp, "not supported: probes send the target's host as SNI");
        }
        sl_conf_get_bool(L, a, ap, "https_verify_certificate", &ac->https_verify_certificate);
        hc_headers(L, a, ap, ac);
        if (sub_record(L, a, ap, "healthy", a_healthy_keys, &h, hp) > 0) {
            get_num(L, h, hp, "interval", 0, 65535, &ac->healthy_interval);
            get_statuses(L, h, hp, "http_statuses", &ac->healthy_statuses);
            sl_conf_get_int(L, h, hp, "successes", 0, 255, &ac->healthy_successes);
        }
        if (sub_record(L, a, ap, "unhealthy", a_unhealthy_keys, &h, hp) > 0) {
            get_num(L, h, hp, "interval", 0, 65535, &ac->unhealthy_interval);
            get_statuses(L, h, hp, "http_statuses", &ac->unhealthy_statuses);
            sl_conf_get_int(L, h, hp, "tcp_failures", 0, 255, &ac->unhealthy_tcp_failures);
            sl_conf_get_int(L, h, hp, "timeouts", 0, 255, &ac->unhealthy_timeouts);
            sl_conf_get_int(L, h, hp, "http_failures", 0, 255, &ac->unhealthy_http_failures);
        }
    }
    if (sub_record(L, hc, p, "passive", passive_keys, &ps, pp) > 0) {
        sl_hc_passive_t *pa = &u->passive;
        hc_type(L, ps, pp, &pa->type);
        if (pa->type == SL_HC_HTTPS)
            pa->type = SL_HC_HTTP;
        if (sub_record(L, ps, pp, "healthy", p_healthy_keys, &h, hp) > 0) {
            get_statuses(L, h, hp, "http_statuses", &pa->healthy_statuses);
            sl_conf_get_int(L, h, hp, "successes", 0, 255, &pa->healthy_successes);
        }
        if (sub_record(L, ps, pp, "unhealthy", p_unhealthy_keys, &h, hp) > 0) {
            get_statuses(L, h, hp, "http_statuses", &pa->unhealthy_statuses);
            sl_conf_get_int(L, h, hp, "tcp_failures", 0, 255, &pa->unhealthy_tcp_failures);
            sl_conf_get_int(L, h, hp, "timeouts", 0, 255, &pa->unhealthy_timeouts);
            sl_conf_get_int(L, h, hp, "http_failures", 0, 255, &pa->unhealthy_http_failures);
        }
    }
}

/* ---- names and targets ---- */

static int
is_ip(const char *s)
{
    unsigned char b[16];
    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

/* A host name as Kong's hostname check: labels of letters, digits, '-'
 * and '_' separated by dots. */
static int
hostname_ok(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len > 253 || s[0] == '.' || s[0] == '-')
        return 0;
    for (const char *c = s; *c; c++)
        if (!(((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '-' || *c == '_'))
            return 0;
    return strstr(s, "..") == NULL;
}

/* "host", "host:port", "ip", "ip:port", "[v6]:port" or a bare IPv6 address.
 * Returns 1 with *host (malloc'd) and *port, or 0. */
static int
parse_target(const char *t, char **host, int *port)
{
    const char *colon;
    char *h;
    long pn = SL_TARGET_DEFAULT_PORT;

    if (t[0] == '[') {
        const char *end = strchr(t, ']');
        if (end == NULL)
            return 0;
        h = sl_strndup(t + 1, (size_t)(end - t - 1));
        if (end[1] == ':') {
            char *e;
            pn = strtol(end + 2, &e, 10);
            if (*e || e == end + 2)
                pn = -1;
        } else if (end[1] != '\0') {
            pn = -1;
        }
        if (!is_ip(h) || !strchr(h, ':') || pn < 1 || pn > 65535) {
            free(h);
            return 0;
        }
    } else if ((colon = strchr(t, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
        char *e;
        h = sl_strndup(t, (size_t)(colon - t));
        pn = strtol(colon + 1, &e, 10);
        if (*e || e == colon + 1 || pn < 1 || pn > 65535 || (!is_ip(h) && !hostname_ok(h))) {
            free(h);
            return 0;
        }
    } else {
        h = sl_strndup(t, strlen(t));
        if (!is_ip(h) && !hostname_ok(h)) {
            free(h);
            return 0;
        }
    }
    *host = h;
    *port = (int)pn;
    return 1;
}

static void
add_target(sl_loader_t *L, sl_upstream_conf_t *u, json_object *o, const char *path)
{
    sl_target_conf_t t = {.weight = SL_TARGET_DEFAULT_WEIGHT};
    const char *s;
    char p[SL_PATH_MAX], key[200];

    sl_conf_kpath(p, path, "target");
    if (sl_conf_get_str(L, o, path, "target", &s) <= 0) {
        if (sl_conf_field(o, "target") == NULL)
            sl_conf_err(L, p, "required field missing");
        return;
    }
    if (!parse_target(s, &t.host, &t.port)) {
        sl_conf_err(L, p, "Invalid target ('%s'); not a valid hostname or ip address", s);
        return;
    }
    sl_conf_get_int(L, o, path, "weight", 0, 65535, &t.weight);
    {
        json_object *tags;
        sl_conf_get_strs(L, o, path, "tags", &tags);
    }
    char buf[300];
    snprintf(buf, sizeof(buf), strchr(t.host, ':') ? "[%s]:%d" : "%s:%d", t.host, t.port);
    t.target = sl_strndup(buf, strlen(buf));
    for (size_t i = 0; i < u->ntargets; i++) {
        if (!strcasecmp(u->targets[i].target, t.target)) {
            sl_conf_err(L, p, "target '%s' is already declared for upstream '%s'", t.target,
                        u->name ? u->name : "?");
            free(t.host);
            free(t.target);
            return;
        }
    }
    snprintf(key, sizeof(key), "%s|%s", u->id, t.target);
    sl_conf_entity_id(L, o, path, "target", key, t.id);
    u->targets = sl_xgrow(u->targets, u->ntargets, sizeof(*u->targets));
    u->targets[u->ntargets++] = t;
}

/* ---- upstreams ---- */

static const char *
upstream_name(const sl_conf_t *conf, size_t i)
{
    return conf->upstreams[i]->name;
}

static const char *
upstream_id(const sl_conf_t *conf, size_t i)
{
    return conf->upstreams[i]->id;
}

/* Upstream names compare without case (Kong's hostnames); ids too, as a
 * target's reference did. */
static void
upstream_index_init(sl_loader_t *L)
{
    L->upstream_names.name_of = upstream_name;
    L->upstream_ids.name_of = upstream_id;
    L->upstream_names.fold = L->upstream_ids.fold = 1;
}

void
sl_conf_load_upstream(sl_loader_t *L, json_object *o, const char *path)
{
    sl_conf_t *conf = L->conf;
    sl_upstream_conf_t *u;
    const char *s;
    char p[SL_PATH_MAX];
    json_object *v;
    int alg = -1, hon = -1, hfb = -1, b;
    size_t had;
    static const char *const algs[] = {"round-robin", "consistent-hashing", "least-connections",
                                       "latency", NULL};

    if (sl_conf_check_record(L, o, path, upstream_keys) < 0)
        return;
    upstream_index_init(L);
    u = sl_xcalloc(1, sizeof(*u));
    u->slots = 10000;
    u->idx = conf->nupstreams;
    conf->upstreams = sl_xgrow(conf->upstreams, conf->nupstreams, sizeof(u));
    L->upstream_paths = sl_xgrow(L->upstream_paths, conf->nupstreams, sizeof(char *));
    L->upstream_paths[conf->nupstreams] = sl_strndup(path, strlen(path));
    conf->upstreams[conf->nupstreams++] = u;

    sl_conf_kpath(p, path, "name");
    if (sl_conf_get_str(L, o, path, "name", &s) > 0) {
        if (is_ip(s))
            sl_conf_err(L, p, "Invalid name ('%s'); no ip addresses allowed", s);
        else if (strchr(s, ':'))
            sl_conf_err(L, p, "Invalid name ('%s'); no port allowed", s);
        else if (!hostname_ok(s))
            sl_conf_err(L, p, "Invalid name ('%s'); must be a valid hostname", s);
        else
            u->name = sl_strndup(s, u->name_len = strlen(s));
        if (u->name && (had = sl_names_claim(&L->upstream_names, conf, u->name, u->idx)) != 0)
            sl_conf_err(L, p, "duplicate upstream name '%s' (also %s)", u->name,
                        L->upstream_paths[had - 1]);
    } else if (sl_conf_field(o, "name") == NULL) {
        sl_conf_err(L, p, "required field missing");
    }
    sl_conf_entity_id(L, o, path, "upstream", u->name ? u->name : path, u->id);
    if ((had = sl_names_claim(&L->upstream_ids, conf, u->id, u->idx)) != 0 &&
        sl_conf_field(o, "id")) {
        sl_conf_kpath(p, path, "id");
        sl_conf_err(L, p, "duplicate upstream id '%s' (also %s)", u->id,
                    L->upstream_paths[had - 1]);
    }

    get_enum(L, o, path, "algorithm", algs, &alg);
    {
        int i;
        if (get_enum(L, o, path, "hash_on", hash_names, &i) > 0)
            hon = i;
        if (get_enum(L, o, path, "hash_fallback", hash_names, &i) > 0)
            hfb = i;
    }
    /* Kong's shorthands, in its order: least-connections and latency drop
     * hash_on; then a hash_on other than none means consistent-hashing,
     * and an explicit "none" means round-robin. */
    u->algorithm = alg >= 0 ? (sl_lb_algorithm_t)alg : SL_LB_ROUND_ROBIN;
    if (alg == SL_LB_LEAST_CONNECTIONS || alg == SL_LB_LATENCY)
        hon = -1;
    if (hon == 0)
        u->algorithm = SL_LB_ROUND_ROBIN;
    else if (hon > 0)
        u->algorithm = SL_LB_CONSISTENT_HASHING;
    u->hash_on = hon > 0 ? (sl_hash_on_t)hon : SL_HASH_NONE;
    u->hash_fallback = hfb > 0 ? (sl_hash_on_t)hfb : SL_HASH_NONE;
    u->hash_on_header = get_header_name(L, o, path, "hash_on_header");
    u->hash_fallback_header = get_header_name(L, o, path, "hash_fallback_header");
    u->hash_on_cookie = dup_str(L, o, path, "hash_on_cookie");
    if (sl_conf_get_str(L, o, path, "hash_on_cookie_path", &s) > 0) {
        sl_conf_kpath(p, path, "hash_on_cookie_path");
        if (sl_conf_check_path(L, p, s))
            u->hash_on_cookie_path = sl_strndup(s, strlen(s));
    }
    if (u->hash_on_cookie && strpbrk(u->hash_on_cookie, " \t;,=\"")) {
        sl_conf_kpath(p, path, "hash_on_cookie");
        sl_conf_err(L, p, "bad cookie name '%s'", u->hash_on_cookie);
    }
    u->hash_on_query_arg = dup_str(L, o, path, "hash_on_query_arg");
    u->hash_fallback_query_arg = dup_str(L, o, path, "hash_fallback_query_arg");
    u->hash_on_uri_capture = dup_str(L, o, path, "hash_on_uri_capture");
    u->hash_fallback_uri_capture = dup_str(L, o, path, "hash_fallback_uri_capture");

    /* Kong's entity checks */
    struct {
        sl_hash_on_t on;
        const char *field;
        const void *on_val, *fb_val;
        const char *fb_field;
    } req[] = {
        {SL_HASH_HEADER, "hash_on_header", u->hash_on_header, u->hash_fallback_header,
         "hash_fallback_header"},
        {SL_HASH_COOKIE, "hash_on_cookie", u->hash_on_cookie, u->hash_on_cookie, "hash_on_cookie"},
        {SL_HASH_QUERY_ARG, "hash_on_query_arg", u->hash_on_query_arg, u->hash_fallback_query_arg,
         "hash_fallback_query_arg"},
        {SL_HASH_URI_CAPTURE, "hash_on_uri_capture", u->hash_on_uri_capture,
         u->hash_fallback_uri_capture, "hash_fallback_uri_capture"},
    };
    for (size_t i = 0; i < sl_nelems(req); i++) {
        if (u->hash_on == req[i].on && req[i].on_val == NULL) {
            sl_conf_kpath(p, path, req[i].field);
            sl_conf_err(L, p, "required field missing (hash_on is '%s')",
                        hash_names[(int)u->hash_on]);
        }
        if (u->hash_fallback == req[i].on && req[i].fb_val == NULL) {
            sl_conf_kpath(p, path, req[i].fb_field);
            sl_conf_err(L, p, "required field missing (hash_fallback is '%s')",
                        hash_names[(int)u->hash_fallback]);
        }
    }
    sl_conf_kpath(p, path, "hash_fallback");
    if (u->hash_fallback != SL_HASH_NONE) {
        if (u->hash_on == SL_HASH_NONE)
            sl_conf_err(L, p, "must be 'none' when hash_on is 'none'");
        else if (u->hash_on == SL_HASH_COOKIE)
            sl_conf_err(L, p, "must be 'none' when hash_on is 'cookie'");
        else if (u->hash_on == u->hash_fallback && u->hash_on != SL_HASH_HEADER &&
                 u->hash_on != SL_HASH_QUERY_ARG && u->hash_on != SL_HASH_URI_CAPTURE)
            sl_conf_err(L, p, "must differ from hash_on");
    }
    if (u->hash_on_header && u->hash_fallback_header &&
        !strcmp(u->hash_on_header, u->hash_fallback_header)) {
        sl_conf_kpath(p, path, "hash_fallback_header");
        sl_conf_err(L, p,
                    "values of these fields must be distinct: 'hash_on_header', "
                    "'hash_fallback_header'");
    }
    if (u->hash_on_query_arg && u->hash_fallback_query_arg &&
        !strcmp(u->hash_on_query_arg, u->hash_fallback_query_arg)) {
        sl_conf_kpath(p, path, "hash_fallback_query_arg");
        sl_conf_err(L, p,
                    "values of these fields must be distinct: 'hash_on_query_arg', "
                    "'hash_fallback_query_arg'");
    }
    if (u->hash_on_uri_capture && u->hash_fallback_uri_capture &&
        !strcmp(u->hash_on_uri_capture, u->hash_fallback_uri_capture)) {
        sl_conf_kpath(p, path, "hash_fallback_uri_capture");
        sl_conf_err(L, p,
                    "values of these fields must be distinct: 'hash_on_uri_capture', "
                    "'hash_fallback_uri_capture'");
    }

    sl_conf_get_int(L, o, path, "slots", 10, 65536, &u->slots);
    load_healthchecks(L, o, path, u);
    u->active_on = u->active.healthy_interval > 0 || u->active.unhealthy_interval > 0;
    u->passive_on = u->passive.unhealthy_http_failures || u->passive.unhealthy_tcp_failures ||
                    u->passive.unhealthy_timeouts || u->passive.healthy_successes;
    sl_conf_get_strs(L, o, path, "tags", &v);
    if (sl_conf_get_str(L, o, path, "host_header", &s) > 0) {
        const char *c = strrchr(s, ':');
        char *h = c ? sl_strndup(s, (size_t)(c - s)) : sl_strndup(s, strlen(s));
        char *e = NULL;
        long port = c ? strtol(c + 1, &e, 10) : 1;
        sl_conf_kpath(p, path, "host_header");
        if ((!hostname_ok(h) && !is_ip(h)) || (c && (*e || port < 1 || port > 65535)))
            sl_conf_err(L, p, "invalid host '%s'", s);
        else
            u->host_header = sl_strndup(s, strlen(s));
        free(h);
    }
    if (sl_conf_field(o, "client_certificate")) {
        sl_conf_kpath(p, path, "client_certificate");
        sl_conf_err(L, p, "client certificates towards upstreams are not supported");
    }
    sl_conf_get_bool(L, o, path, "use_srv_name", &b);

    if ((v = sl_conf_field(o, "targets")) != NULL) {
        sl_conf_kpath(p, path, "targets");
        if (!json_object_is_type(v, json_type_array)) {
            sl_conf_err(L, p, "expected an array");
            return;
        }
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            json_object *t = json_object_array_get_idx(v, i);
            char tp[SL_PATH_MAX];
            sl_conf_pathf(tp, "%s[%zu]", p, i);
            if (sl_conf_check_record(L, t, tp, target_keys) < 0)
                continue;
            if (sl_conf_field(t, "upstream")) {
                char up[SL_PATH_MAX];
                sl_conf_kpath(up, tp, "upstream");
                sl_conf_err(L, up, "a nested target belongs to the upstream it is nested in");
                continue;
            }
            add_target(L, u, t, tp);
        }
    }
}

/* A top-level target: `upstream` names its upstream (name or id); the
 * upstreams are loaded before the targets. */
void
sl_conf_load_target(sl_loader_t *L, json_object *o, const char *path)
{
    sl_conf_t *conf = L->conf;
    json_object *ref;
    size_t i, had;
    const char *key;
    char p[SL_PATH_MAX];

    if (sl_conf_check_record(L, o, path, target_keys) < 0)
        return;
    sl_conf_kpath(p, path, "upstream");
    if ((ref = sl_conf_field(o, "upstream")) == NULL) {
        sl_conf_err(L, p, "required field missing");
        return;
    }
    if ((key = sl_conf_ref_key(L, ref, p)) == NULL)
        return;
    /* the first upstream whose name or id is key, in any case */
    i = sl_names_find(&L->upstream_names, conf, key);
    had = sl_names_find(&L->upstream_ids, conf, key);
    if (had && (i == 0 || had < i))
        i = had;
    if (i != 0)
        add_target(L, conf->upstreams[i - 1], o, path);
    else
        sl_conf_err(L, p, "upstream '%s' not found", key);
}

/* ---- the shared health table ---- */

typedef struct health_map {
    sl_target_health_t *slots;
    size_t n, bytes;
    int refs;
} health_map_t;

/* The table of the configuration loaded last (master), which the next
 * load starts from. */
static health_map_t *last_map;

static void
map_unref(health_map_t *m)
{
    if (m == NULL || --m->refs > 0)
        return;
    if (m->slots)
        munmap(m->slots, m->bytes);
    free(m);
}

/* The previous table's slot with key (a target still configured), NULL
 * if none.  A named target's address slots follow its slot. */
static const sl_target_health_t *
old_slot(const char *key)
{
    for (size_t j = 0; last_map && j < last_map->n; j++)
        if (!strcasecmp(last_map->slots[j].key, key))
            return &last_map->slots[j];
    return NULL;
}

/* An address slot of the new table: the previous generation's claim and
 * health for the same target's address when there was one (o), so an
 * address still resolved keeps its health over a reload. */
static void
addr_slot_init(sl_target_health_t *ah, const sl_target_health_t *o)
{
    atomic_init(&ah->state, o ? atomic_load(&o->state) : 0);
    atomic_init(&ah->next_check_ms, o ? atomic_load(&o->next_check_ms) : 0);
    atomic_init(&ah->probes, 0);
    atomic_init(&ah->addr, o ? atomic_load(&o->addr) : 0);
    atomic_init(&ah->seen_ms, o ? atomic_load(&o->seen_ms) : 0);
}

void
sl_conf_upstreams_finish(sl_loader_t *L)
{
    sl_conf_t *conf = L->conf;
    size_t n = 0, k = 0;
    health_map_t *m;

    for (size_t i = 0; i < conf->nupstreams; i++)
        for (size_t t = 0; t < conf->upstreams[i]->ntargets; t++) {
            sl_target_conf_t *tc = &conf->upstreams[i]->targets[t];
            tc->named = !is_ip(tc->host);
            n += 1 + (tc->named ? SL_TARGET_ADDR_SLOTS : 0);
        }
    if (n == 0 || L->nerr)
        return;
    m = sl_xcalloc(1, sizeof(*m));
    m->bytes = n * sizeof(sl_target_health_t);
    m->slots = mmap(NULL, m->bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m->slots == MAP_FAILED) {
        free(m);
        sl_conf_err(L, "upstreams", "cannot map the shared health table: %s", strerror(errno));
        return;
    }
    m->n = n;
    m->refs = 1;
    for (size_t i = 0; i < conf->nupstreams; i++) {
        sl_upstream_conf_t *u = conf->upstreams[i];
        for (size_t t = 0; t < u->ntargets; t++, k++) {
            sl_target_health_t *h = &m->slots[k];
            u->targets[t].slot = k;
            snprintf(h->key, sizeof(h->key), "%s|%s", u->name ? u->name : u->id,
                     u->targets[t].target);
            atomic_init(&h->state, 0);
            atomic_init(&h->next_check_ms, 0);
            atomic_init(&h->probes, 0);
            const sl_target_health_t *o = old_slot(h->key);
            if (o != NULL) {
                atomic_store(&h->state, atomic_load(&o->state));
                atomic_store(&h->next_check_ms, atomic_load(&o->next_check_ms));
            }
            if (u->targets[t].named) { /* address slots: claimed by the workers (balancer.c) */
                u->targets[t].addr_slot = k + 1;
                for (size_t a = 0; a < SL_TARGET_ADDR_SLOTS; a++)
                    addr_slot_init(&m->slots[++k], o != NULL ? &o[1 + a] : NULL);
            }
        }
    }
    conf->health = m->slots;
    conf->nhealth = n;
    conf->health_map = m;
    map_unref(last_map);
    m->refs++;
    last_map = m;
}

/* Every request asks with its upstream host: one probe of the names the
 * load indexed (kept with the configuration), not a walk over them. */
const sl_upstream_conf_t *
sl_conf_upstream_find(const sl_conf_t *conf, sl_str_t host)
{
    size_t cur = SL_KINDEX_START, i;

    if (conf == NULL || conf->upstream_names.n == 0)
        return NULL;
    uint64_t tag = sl_names_tag(host.ptr, host.len, 1);
    while ((i = (size_t)(uintptr_t)sl_kindex_next(&conf->upstream_names, tag, &cur)) != 0) {
        const sl_upstream_conf_t *u = conf->upstreams[i - 1];
        if (u->name_len == host.len && !strncasecmp(u->name, host.ptr, host.len))
            return u;
    }
    return NULL;
}

void
sl_conf_upstreams_free(sl_conf_t *conf)
{
    for (size_t i = 0; i < conf->nupstreams; i++) {
        sl_upstream_conf_t *u = conf->upstreams[i];
        for (size_t t = 0; t < u->ntargets; t++) {
            free(u->targets[t].host);
            free(u->targets[t].target);
        }
        free(u->targets);
        free(u->name);
        free(u->hash_on_header);
        free(u->hash_fallback_header);
        free(u->hash_on_cookie);
        free(u->hash_on_cookie_path);
        free(u->hash_on_query_arg);
        free(u->hash_fallback_query_arg);
        free(u->hash_on_uri_capture);
        free(u->hash_fallback_uri_capture);
        free(u->active.http_path);
        free(u->active.https_sni);
        free(u->active.headers);
        free(u->host_header);
        free(u);
    }
    free(conf->upstreams);
    sl_kindex_free(&conf->upstream_names);
    map_unref(conf->health_map);
}
