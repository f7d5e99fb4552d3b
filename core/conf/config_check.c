/* config_check.c - the config loader's field readers and validators: typed
 * access with Kong's messages, entity names, paths, hosts, the url
 * shorthand, ids, and error reporting with the line of the offending key
 * (or of its closest existing ancestor). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>

#include "conf/config_check.h"

void
sl_conf_errv(sl_loader_t *L, const char *path, const char *fmt, va_list ap)
{
    char *msg = NULL;
    int line = sl_yaml_line_near(L->lines, path);

    if (vasprintf(&msg, fmt, ap) < 0)
        abort();
    if (line > 0 && *path)
        sl_errors_add(L->errs, "%s:%d: %s: %s", L->file, line, path, msg);
    else if (line > 0)
        sl_errors_add(L->errs, "%s:%d: %s", L->file, line, msg);
    else if (*path)
        sl_errors_add(L->errs, "%s: %s: %s", L->file, path, msg);
    else
        sl_errors_add(L->errs, "%s: %s", L->file, msg);
    free(msg);
    L->nerr++;
}

void
sl_conf_err(sl_loader_t *L, const char *path, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sl_conf_errv(L, path, fmt, ap);
    va_end(ap);
}

void
sl_conf_ctx_error(sl_conf_ctx_t *cx, const char *field, const char *fmt, ...)
{
    char full[SL_PATH_MAX];
    va_list ap;

    if (field == NULL || *field == '\0')
        snprintf(full, sizeof(full), "%s", cx->path);
    else
        snprintf(full, sizeof(full), "%s%s%s", cx->path, *field == '[' ? "" : ".", field);
    va_start(ap, fmt);
    sl_conf_errv(cx->L, full, fmt, ap);
    va_end(ap);
    cx->nerr++;
}

int
sl_conf_ctx_phases_skip(sl_conf_ctx_t *cx, unsigned phases)
{
    const unsigned all = SL_PLUGIN_PHASE_ACCESS | SL_PLUGIN_PHASE_BODY |
                         SL_PLUGIN_PHASE_HEADER_FILTER | SL_PLUGIN_PHASE_BODY_FILTER |
                         SL_PLUGIN_PHASE_LOG | SL_PLUGIN_PHASE_BALANCER;

    if (cx == NULL || (phases & ~all) != 0)
        return -1;
    cx->skip |= phases;
    return 0;
}

sl_shm_t *
sl_conf_ctx_shm_zone(sl_conf_ctx_t *cx, const char *name, size_t size, size_t value_max)
{
    sl_conf_t *conf = cx->L->conf;
    sl_shm_zone_t *z;
    sl_shm_info_t in;
    char err[256];

    /* One name, one shape per configuration. */
    for (size_t i = 0; name && i < conf->nzones; i++) {
        sl_shm_zone_info(conf->zones[i], &in);
        if (strcmp(in.name, name) == 0 && (in.size != size || in.value_max != value_max)) {
            sl_conf_ctx_error(cx, "",
                              "shared memory zone '%s' already declared with size %zu and "
                              "value_max %zu (here %zu, %zu)",
                              name, in.size, in.value_max, size, value_max);
            return NULL;
        }
    }
    z = sl_shm_zone_get(name, size, value_max, err, sizeof(err));
    if (z == NULL) {
        sl_conf_ctx_error(cx, "", "shared memory: %s", err);
        return NULL;
    }
    conf->zones = sl_xrealloc(conf->zones, (conf->nzones + 1) * sizeof(*conf->zones));
    conf->zones[conf->nzones++] = z;
    return z;
}

int
sl_conf_ctx_metrics_register(sl_conf_ctx_t *cx, sl_metrics_fn fn, void *arg)
{
    sl_conf_t *conf = cx->L->conf;

    if (fn == NULL)
        return -1;
    for (size_t i = 0; i < conf->nmetrics; i++)
        if (conf->metrics[i].fn == fn)
            return 1;
    conf->metrics = sl_xrealloc(conf->metrics, (conf->nmetrics + 1) * sizeof(*conf->metrics));
    conf->metrics[conf->nmetrics++] = (sl_conf_metrics_t){fn, arg};
    return 0;
}

void
sl_conf_hash(const char *text, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    out[0] = '\0';
    if (!EVP_Digest(text, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
        return;
    for (unsigned i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* ---- typed field access: 0 absent/null, 1 ok, -1 wrong type (reported) ---- */

json_object *
sl_conf_field(json_object *o, const char *key)
{
    json_object *v = NULL;

    json_object_object_get_ex(o, key, &v);
    return v;
}

void
sl_conf_pathf(char *out, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, SL_PATH_MAX, fmt, ap);
    va_end(ap);
}

void
sl_conf_kpath(char *out, const char *base, const char *key)
{
    snprintf(out, SL_PATH_MAX, "%s%s%s", base, *base ? "." : "", key);
}

int
sl_conf_get_str(sl_loader_t *L, json_object *o, const char *base, const char *key, const char **out)
{
    json_object *v = sl_conf_field(o, key);
    char p[SL_PATH_MAX];

    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_string)) {
        sl_conf_kpath(p, base, key);
        sl_conf_err(L, p, "expected a string");
        return -1;
    }
    *out = json_object_get_string(v);
    return 1;
}

int
sl_conf_get_int(sl_loader_t *L, json_object *o, const char *base, const char *key, long long min,
                long long max, int *out)
{
    json_object *v = sl_conf_field(o, key);
    char p[SL_PATH_MAX];
    long long i;

    if (v == NULL)
        return 0;
    sl_conf_kpath(p, base, key);
    if (!json_object_is_type(v, json_type_int)) {
        sl_conf_err(L, p, "expected an integer");
        return -1;
    }
    i = json_object_get_int64(v);
    if (i < min || i > max) {
        sl_conf_err(L, p, "value should be between %lld and %lld", min, max);
        return -1;
    }
    *out = (int)i;
    return 1;
}

int
sl_conf_get_bool(sl_loader_t *L, json_object *o, const char *base, const char *key, int *out)
{
    json_object *v = sl_conf_field(o, key);
    char p[SL_PATH_MAX];

    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_boolean)) {
        sl_conf_kpath(p, base, key);
        sl_conf_err(L, p, "expected a boolean");
        return -1;
    }
    *out = json_object_get_boolean(v);
    return 1;
}

/* An array of strings (each element checked). */
int
sl_conf_get_strs(sl_loader_t *L, json_object *o, const char *base, const char *key,
                 json_object **out)
{
    json_object *v = sl_conf_field(o, key);
    char p[SL_PATH_MAX], ep[SL_PATH_MAX];
    int ok = 1;

    if (v == NULL)
        return 0;
    sl_conf_kpath(p, base, key);
    if (!json_object_is_type(v, json_type_array)) {
        sl_conf_err(L, p, "expected an array");
        return -1;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        if (!json_object_is_type(json_object_array_get_idx(v, i), json_type_string)) {
            sl_conf_pathf(ep, "%s[%zu]", p, i);
            sl_conf_err(L, ep, "expected a string");
            ok = 0;
        }
    }
    *out = v;
    return ok ? 1 : -1;
}

int
sl_conf_check_record(sl_loader_t *L, json_object *o, const char *path, const char *const *allowed)
{
    char p[SL_PATH_MAX];

    if (!json_object_is_type(o, json_type_object)) {
        sl_conf_err(L, path, "expected a record");
        return -1;
    }
    json_object_object_foreach(o, k, v)
    {
        size_t i;
        (void)v;
        for (i = 0; allowed[i] && strcmp(allowed[i], k) != 0; i++)
            ;
        if (allowed[i] == NULL) {
            sl_conf_kpath(p, path, k);
            sl_conf_err(L, p, "unknown field");
        }
    }
    return 0;
}

/* ---- ids ---- */

static int
is_uuid(const char *s)
{
    for (int i = 0; i < 36; i++) {
        int hy = i == 8 || i == 13 || i == 18 || i == 23;
        char c = s[i];
        if (hy ? c != '-' : !((c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')))
            return 0;
    }
    return s[36] == '\0';
}

/* UUIDv5-style: SHA-1 over a fixed namespace, the entity kind and a key
 * (its name, or its position), so reloading the same file keeps the ids. */
static void
gen_id(char out[37], const char *kind, const char *key)
{
    static const char hex[] = "0123456789abcdef";
    static const unsigned char ns[16] = {0x6b, 0x8f, 0x1e, 0x52, 0x3c, 0x1a, 0x4d, 0x7e,
                                         0x9a, 0x51, 0x2e, 0x0c, 0x5b, 0x73, 0x61, 0x9d};
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* fetched once: an implicit fetch per id is most of its cost (configs
     * load on the master's one thread); kept for the process */
    static EVP_MD *sha1;
    EVP_MD_CTX *c;

    if (sha1 == NULL && (sha1 = EVP_MD_fetch(NULL, "SHA1", NULL)) == NULL)
        abort();
    c = EVP_MD_CTX_new();
    if (c == NULL || !EVP_DigestInit_ex(c, sha1, NULL) || !EVP_DigestUpdate(c, ns, sizeof(ns)) ||
        !EVP_DigestUpdate(c, kind, strlen(kind) + 1) || !EVP_DigestUpdate(c, key, strlen(key)) ||
        !EVP_DigestFinal_ex(c, md, &mdlen))
        abort();
    EVP_MD_CTX_free(c);
    md[6] = (unsigned char)((md[6] & 0x0f) | 0x50);
    md[8] = (unsigned char)((md[8] & 0x3f) | 0x80);
    for (int i = 0, o = 0; i < 16; i++) { /* 8-4-4-4-12, without snprintf's cost */
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[md[i] >> 4];
        out[o++] = hex[md[i] & 15];
    }
    out[36] = '\0';
}

/* Take `id` from the entity, or generate one.  Returns 0 if bad. */
int
sl_conf_entity_id(sl_loader_t *L, json_object *o, const char *path, const char *kind,
                  const char *key, char out[37])
{
    const char *id;
    char p[SL_PATH_MAX];
    int r = sl_conf_get_str(L, o, path, "id", &id);

    if (r < 0)
        return 0;
    if (r == 0) {
        gen_id(out, kind, key);
        return 1;
    }
    if (strlen(id) != 36 || !is_uuid(id)) {
        sl_conf_kpath(p, path, "id");
        sl_conf_err(L, p, "expected a valid UUID");
        return 0;
    }
    for (int i = 0; i < 37; i++)
        out[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] | 0x20 : id[i]);
    return 1;
}

/* Kong's name rule: ASCII alphanumerics and . - _ ~ (UTF-8 letters ok). */
int
sl_conf_check_name(sl_loader_t *L, json_object *o, const char *path, const char **out)
{
    char p[SL_PATH_MAX];
    int r = sl_conf_get_str(L, o, path, "name", out);

    if (r <= 0)
        return r;
    sl_conf_kpath(p, path, "name");
    for (const unsigned char *c = (const unsigned char *)*out; *c; c++) {
        if (!(*c >= 0x80 || (*c >= '0' && *c <= '9') ||
              ((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || *c == '.' || *c == '-' || *c == '_' ||
              *c == '~')) {
            sl_conf_err(L, p,
                        "invalid value '%s': the only accepted ascii characters are "
                        "alphanumerics or ., -, _, and ~",
                        *out);
            return -1;
        }
    }
    if (**out == '\0') {
        sl_conf_err(L, p, "length must be at least 1");
        return -1;
    }
    return 1;
}

/* RFC 3986 path characters only, starting with '/', no empty segment. */
int
sl_conf_check_path(sl_loader_t *L, const char *p, const char *path)
{
    if (*path != '/') {
        sl_conf_err(L, p, "should start with: /");
        return 0;
    }
    if (strstr(path, "//")) {
        sl_conf_err(L, p, "must not have empty segments");
        return 0;
    }
    for (const char *c = path; *c; c++) {
        if (!(((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || (*c >= '0' && *c <= '9') ||
              strchr("-._~:/?#[]@!$&'()*+,;=%", *c))) {
            sl_conf_err(L, p,
                        "invalid path: '%s' (characters outside of the reserved list of "
                        "RFC 3986 found)",
                        path);
            return 0;
        }
    }
    return 1;
}

int
sl_conf_check_host(sl_loader_t *L, const char *p, const char *host)
{
    int colons = 0;

    for (const char *c = host; *c; c++) {
        colons += *c == ':';
        if (!(((*c | 0x20) >= 'a' && (*c | 0x20) <= 'z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '-' || *c == '_' || *c == ':')) {
            sl_conf_err(L, p, "invalid hostname: %s", host);
            return 0;
        }
    }
    if (*host == '\0' || colons == 1) {
        sl_conf_err(L, p, colons ? "must not have a port" : "invalid hostname: %s", host);
        return 0;
    }
    return 1;
}

/* ---- services: the url shorthand ---- */

/* url shorthand -> protocol/host/port/path. */
void
sl_conf_parse_url(sl_loader_t *L, const char *p, const char *url, sl_service_t *s)
{
    const char *sep = strstr(url, "://"), *a, *hend, *pend;
    char *host = NULL;
    long port = -1;

    if (sep == NULL) {
        sl_conf_err(L, p, "invalid url '%s': missing scheme (http:// or https://)", url);
        return;
    }
    if (!((sep - url == 4 && !strncasecmp(url, "http", 4)) ||
          (sep - url == 5 && !strncasecmp(url, "https", 5)))) {
        sl_conf_err(L, p, "invalid url '%s': protocol '%.*s' is not supported (http, https)", url,
                    (int)(sep - url), url);
        return;
    }
    a = sep + 3;
    pend = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t)(pend - a))) {
        sl_conf_err(L, p, "invalid url '%s': credentials in the url are not supported", url);
        return;
    }
    if (*a == '[') {
        hend = memchr(a, ']', (size_t)(pend - a));
        if (hend == NULL) {
            sl_conf_err(L, p, "invalid url '%s': bad IPv6 address", url);
            return;
        }
        host = sl_strndup(a + 1, (size_t)(hend - a - 1));
        hend++;
    } else {
        hend = memchr(a, ':', (size_t)(pend - a));
        if (hend == NULL)
            hend = pend;
        host = sl_strndup(a, (size_t)(hend - a));
    }
    if (hend < pend) {
        char *e;
        if (*hend != ':' || hend + 1 == pend || (port = strtol(hend + 1, &e, 10), e != pend) ||
            port < 0 || port > 65535) {
            sl_conf_err(L, p, "invalid url '%s': bad port", url);
            free(host);
            return;
        }
    }
    if (*host == '\0') {
        sl_conf_err(L, p, "invalid url '%s': missing host", url);
        free(host);
        return;
    }
    if (*pend == '?' || *pend == '#' || strpbrk(pend, "?#")) {
        sl_conf_err(L, p, "invalid url '%s': query strings and fragments are not allowed", url);
        free(host);
        return;
    }
    s->protocol = sl_strndup(url, (size_t)(sep - url));
    for (char *c = s->protocol; *c; c++)
        *c = (char)(*c | 0x20);
    s->host = host;
    s->port = port >= 0 ? (int)port : !strcmp(s->protocol, "https") ? 443 : 80;
    if (*pend) {
        if (sl_conf_check_path(L, p, pend))
            s->path = sl_strndup(pend, strlen(pend));
    }
}

/* A reference {name: x} / {id: x} / "x" to a service or route. */
const char *
sl_conf_ref_key(sl_loader_t *L, json_object *v, const char *p)
{
    const char *s = NULL;
    char kp[SL_PATH_MAX];

    if (json_object_is_type(v, json_type_string))
        return json_object_get_string(v);
    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, k, x)
        {
            (void)x;
            if (strcmp(k, "name") && strcmp(k, "id")) {
                sl_conf_kpath(kp, p, k);
                sl_conf_err(L, kp, "unknown field");
                return NULL;
            }
        }
        if (sl_conf_get_str(L, v, p, "id", &s) > 0 || sl_conf_get_str(L, v, p, "name", &s) > 0)
            return s;
    }
    sl_conf_err(L, p, "expected a reference: {name: ...}, {id: ...} or a name");
    return NULL;
}
