/* config.c - load and validate a Kong/decK declarative configuration:
 * services, routes and plugins (consumers and credentials: consumers.c);
 * stable ids; plugin configs through each plugin's config_parse; then the
 * chains (chain.c) and the router.
 *
 * Validation never stops at the first problem: every error is collected as
 * "file:line: key.path: what is wrong", the line coming from the YAML line
 * table (the key's own line, or its closest existing ancestor's).  The
 * field readers and validators are in config_check.c. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/utf8.h"
#include "conf/config_check.h"
#include "conf/router.h"

/* ---- services ---- */

static const char *const service_keys[] = {"name",
                                           "id",
                                           "url",
                                           "protocol",
                                           "host",
                                           "port",
                                           "path",
                                           "retries",
                                           "connect_timeout",
                                           "read_timeout",
                                           "write_timeout",
                                           "tls_verify",
                                           "tls_verify_depth",
                                           "tags",
                                           "enabled",
                                           "routes",
                                           "plugins",
                                           NULL};

static void load_route(sl_loader_t *L, json_object *o, const char *path, sl_service_t *svc,
                       int top);

void
sl_conf_pending_add(sl_loader_t *L, json_object *arr, const char *base, sl_route_t *r,
                    sl_service_t *s, sl_consumer_t *c, int top)
{
    sl_pending_t *pp = L->pending;
    char p[SL_PATH_MAX];

    sl_conf_kpath(p, base, "plugins");
    if (!json_object_is_type(arr, json_type_array)) {
        sl_conf_err(L, p, "expected an array");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        char ip[SL_PATH_MAX];
        sl_conf_pathf(ip, "%s[%zu]", p, i);
        pp->items = sl_xgrow(pp->items, pp->n, sizeof(*pp->items));
        pp->items[pp->n++] = (sl_pending_plugin_t){
            json_object_array_get_idx(arr, i), sl_strndup(ip, strlen(ip)), r, s, c, top};
    }
}

static const char *
service_name(const sl_conf_t *conf, size_t i)
{
    return conf->services[i]->name;
}

static const char *
service_id(const sl_conf_t *conf, size_t i)
{
    return conf->services[i]->id;
}

static void
load_service(sl_loader_t *L, json_object *o, const char *path)
{
    sl_conf_t *conf = L->conf;
    sl_service_t *s;
    const char *name = NULL, *str;
    json_object *v;
    char p[SL_PATH_MAX];
    int has_parts = 0;
    size_t i;

    if (sl_conf_check_record(L, o, path, service_keys) < 0)
        return;
    s = sl_xcalloc(1, sizeof(*s));
    s->port = -1;
    s->retries = SL_SERVICE_DEFAULT_RETRIES;
    s->connect_timeout = s->read_timeout = s->write_timeout = SL_SERVICE_DEFAULT_TIMEOUT_MS;
    s->tls_verify = -1;
    s->tls_verify_depth = -1;
    s->enabled = 1;
    conf->services = sl_xgrow(conf->services, conf->nservices, sizeof(s));
    L->svc_paths = sl_xgrow(L->svc_paths, conf->nservices, sizeof(char *));
    L->svc_paths[conf->nservices] = sl_strndup(path, strlen(path));
    conf->services[conf->nservices++] = s;

    L->svc_names.name_of = service_name;
    L->svc_ids.name_of = service_id;
    if (sl_conf_check_name(L, o, path, &name) > 0) {
        s->name = sl_strndup(name, strlen(name));
        if ((i = sl_names_claim(&L->svc_names, conf, name, conf->nservices - 1)) != 0) {
            sl_conf_kpath(p, path, "name");
            sl_conf_err(L, p, "duplicate service name '%s' (also %s)", name, L->svc_paths[i - 1]);
        }
    }
    sl_conf_entity_id(L, o, path, "service", s->name ? s->name : path, s->id);
    if ((i = sl_names_claim(&L->svc_ids, conf, s->id, conf->nservices - 1)) != 0 &&
        sl_conf_field(o, "id")) {
        sl_conf_kpath(p, path, "id");
        sl_conf_err(L, p, "duplicate service id '%s' (also %s)", s->id, L->svc_paths[i - 1]);
    }

    for (const char *const *k = (const char *const[]){"protocol", "host", "port", "path", NULL}; *k;
         k++)
        has_parts |= sl_conf_field(o, *k) != NULL;
    if (sl_conf_get_str(L, o, path, "url", &str) > 0) {
        sl_conf_kpath(p, path, "url");
        if (has_parts)
            sl_conf_err(L, p, "url cannot be combined with protocol, host, port or path");
        else
            sl_conf_parse_url(L, p, str, s);
    } else {
        if (sl_conf_get_str(L, o, path, "protocol", &str) > 0) {
            sl_conf_kpath(p, path, "protocol");
            if (strcmp(str, "http") && strcmp(str, "https"))
                sl_conf_err(L, p, "protocol '%s' is not supported (http, https)", str);
            else
                s->protocol = sl_strndup(str, strlen(str));
        }
        if (s->protocol == NULL)
            s->protocol = sl_strndup("http", 4);
        if (sl_conf_get_str(L, o, path, "host", &str) > 0) {
            sl_conf_kpath(p, path, "host");
            if (sl_conf_check_host(L, p, str))
                s->host = sl_strndup(str, strlen(str));
        } else if (sl_conf_field(o, "host") == NULL) {
            sl_conf_kpath(p, path, "host");
            sl_conf_err(L, p, "required field missing (give url, or protocol/host/port/path)");
        }
        sl_conf_get_int(L, o, path, "port", 0, 65535, &s->port);
        if (sl_conf_get_str(L, o, path, "path", &str) > 0) {
            sl_conf_kpath(p, path, "path");
            if (sl_conf_check_path(L, p, str))
                s->path = sl_strndup(str, strlen(str));
        }
    }
    if (s->port < 0)
        s->port = s->protocol && !strcmp(s->protocol, "https") ? 443 : 80;
    sl_conf_get_int(L, o, path, "retries", 0, SL_SERVICE_MAX_RETRIES, &s->retries);
    sl_conf_get_int(L, o, path, "connect_timeout", 1, 2147483646, &s->connect_timeout);
    sl_conf_get_int(L, o, path, "read_timeout", 1, 2147483646, &s->read_timeout);
    sl_conf_get_int(L, o, path, "write_timeout", 1, 2147483646, &s->write_timeout);
    sl_conf_get_bool(L, o, path, "enabled", &s->enabled);
    sl_conf_get_strs(L, o, path, "tags", &v);
    for (const char *const *k = (const char *const[]){"tls_verify", "tls_verify_depth", NULL}; *k;
         k++) {
        if (sl_conf_field(o, *k) && s->protocol && strcmp(s->protocol, "https") != 0) {
            sl_conf_kpath(p, path, *k);
            sl_conf_err(L, p, "can only be set when protocol is 'https'");
        }
    }
    sl_conf_get_bool(L, o, path, "tls_verify", &s->tls_verify);
    sl_conf_get_int(L, o, path, "tls_verify_depth", 0, 64, &s->tls_verify_depth);

    if ((v = sl_conf_field(o, "routes")) != NULL) {
        sl_conf_kpath(p, path, "routes");
        if (!json_object_is_type(v, json_type_array)) {
            sl_conf_err(L, p, "expected an array");
        } else {
            for (size_t i = 0; i < json_object_array_length(v); i++) {
                char rp[SL_PATH_MAX];
                sl_conf_pathf(rp, "%s[%zu]", p, i);
                load_route(L, json_object_array_get_idx(v, i), rp, s, 0);
            }
        }
    }
    if ((v = sl_conf_field(o, "plugins")) != NULL)
        sl_conf_pending_add(L, v, path, NULL, s, NULL, 0);
}

static void
service_entity(sl_service_t *s, json_object *o)
{
    json_object *e = json_object_new_object(), *v;

    json_object_object_add(e, "id", json_object_new_string(s->id));
    if (s->name)
        json_object_object_add(e, "name", json_object_new_string(s->name));
    json_object_object_add(e, "protocol",
                           json_object_new_string(s->protocol ? s->protocol : "http"));
    json_object_object_add(e, "host", json_object_new_string(s->host ? s->host : ""));
    json_object_object_add(e, "port", json_object_new_int(s->port));
    if (s->path)
        json_object_object_add(e, "path", json_object_new_string(s->path));
    json_object_object_add(e, "retries", json_object_new_int(s->retries));
    json_object_object_add(e, "connect_timeout", json_object_new_int(s->connect_timeout));
    json_object_object_add(e, "read_timeout", json_object_new_int(s->read_timeout));
    json_object_object_add(e, "write_timeout", json_object_new_int(s->write_timeout));
    json_object_object_add(e, "enabled", json_object_new_boolean(s->enabled));
    if (s->tls_verify >= 0)
        json_object_object_add(e, "tls_verify", json_object_new_boolean(s->tls_verify));
    if (s->tls_verify_depth >= 0)
        json_object_object_add(e, "tls_verify_depth", json_object_new_int(s->tls_verify_depth));
    if ((v = sl_conf_field(o, "tags")) != NULL)
        json_object_object_add(e, "tags", json_object_get(v));
    s->entity = e;
}

/* ---- routes ---- */

static const char *const route_keys[] = {"name",
                                         "id",
                                         "tags",
                                         "service",
                                         "protocols",
                                         "methods",
                                         "hosts",
                                         "paths",
                                         "headers",
                                         "snis",
                                         "strip_path",
                                         "preserve_host",
                                         "regex_priority",
                                         "path_handling",
                                         "https_redirect_status_code",
                                         "request_buffering",
                                         "response_buffering",
                                         "plugins",
                                         NULL};

/* The first of entity numbers + 1 a and b that is set (0: neither). */
static size_t
first_of(size_t a, size_t b)
{
    return a && (b == 0 || a < b) ? a : b;
}

/* The first service whose id or name is key; NULL if none. */
static sl_service_t *
find_service(sl_loader_t *L, const char *key)
{
    size_t i = first_of(sl_names_find(&L->svc_ids, L->conf, key),
                        sl_names_find(&L->svc_names, L->conf, key));

    return i ? L->conf->services[i - 1] : NULL;
}

/* The first route whose id or name is key; NULL if none. */
static sl_route_t *
find_route(sl_loader_t *L, const char *key)
{
    size_t i = first_of(sl_names_find(&L->route_ids, L->conf, key),
                        sl_names_find(&L->route_names, L->conf, key));

    return i ? L->conf->routes[i - 1] : NULL;
}

static const char *
route_name(const sl_conf_t *conf, size_t i)
{
    return conf->routes[i]->name;
}

static const char *
route_id(const sl_conf_t *conf, size_t i)
{
    return conf->routes[i]->id;
}

static char *
lowerdup(const char *s)
{
    char *d = sl_strndup(s, strlen(s));
    for (char *c = d; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    return d;
}

/* Kong's `snis` (https routes: the server name the client asked for) and
 * `headers` ({name: [values]}) of a route. */
static void
route_match_extra(sl_loader_t *L, json_object *o, const char *path, sl_route_t *r)
{
    char p[SL_PATH_MAX], ep[SL_PATH_MAX];
    json_object *v;

    if (sl_conf_get_strs(L, o, path, "snis", &v) > 0 && json_object_array_length(v) > 0) {
        sl_conf_kpath(p, path, "snis");
        if (!(r->protocols & SL_ROUTE_HTTPS))
            sl_conf_err(L, p, "'snis' can only be set when 'protocols' is 'https'");
        r->nsnis = json_object_array_length(v);
        r->snis = sl_xcalloc(r->nsnis, sizeof(char *));
        for (size_t k = 0; k < r->nsnis; k++)
            r->snis[k] = lowerdup(json_object_get_string(json_object_array_get_idx(v, k)));
    }
    if ((v = sl_conf_field(o, "headers")) == NULL)
        return;
    sl_conf_kpath(p, path, "headers");
    if (!json_object_is_type(v, json_type_object)) {
        sl_conf_err(L, p, "expected a map");
        return;
    }
    r->headers = sl_xcalloc((size_t)json_object_object_length(v) + 1, sizeof(*r->headers));
    json_object_object_foreach(v, name, vals)
    {
        sl_route_header_t *h;
        sl_conf_kpath(ep, p, name);
        if (strcasecmp(name, "host") == 0) {
            sl_conf_err(L, ep,
                        "cannot contain 'host' header, which must be specified in the "
                        "'hosts' attribute");
            continue;
        }
        if (vals == NULL || !json_object_is_type(vals, json_type_array) ||
            json_object_array_length(vals) == 0) {
            sl_conf_err(L, ep, "expected a non-empty array of strings");
            continue;
        }
        h = &r->headers[r->nheaders++];
        h->name = lowerdup(name);
        h->values = sl_xcalloc(json_object_array_length(vals), sizeof(char *));
        for (size_t k = 0; k < json_object_array_length(vals); k++) {
            json_object *s = json_object_array_get_idx(vals, k);
            if (!json_object_is_type(s, json_type_string)) {
                sl_conf_err(L, ep, "expected a non-empty array of strings");
                continue;
            }
            h->values[h->nvalues++] =
                sl_strndup(json_object_get_string(s), strlen(json_object_get_string(s)));
        }
    }
}

static void
route_lists(sl_loader_t *L, json_object *o, const char *path, sl_route_t *r)
{
    json_object *v;
    char p[SL_PATH_MAX], ep[SL_PATH_MAX], err[256];

    if (sl_conf_get_strs(L, o, path, "paths", &v) > 0) {
        sl_conf_kpath(p, path, "paths");
        r->paths = sl_xcalloc(json_object_array_length(v), sizeof(*r->paths));
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(v, i));
            sl_conf_pathf(ep, "%s[%zu]", p, i);
            if (*s != '/' && *s != '~')
                sl_conf_err(L, ep, "should start with: / (fixed path) or ~/ (regex path)");
            else if (*s == '/' && strstr(s, "//"))
                sl_conf_err(L, ep, "must not have empty segments");
            else if (sl_router_compile_path(&r->paths[r->npaths], s, err, sizeof(err)) != SL_OK)
                sl_conf_err(L, ep, "%s", err);
            else
                r->npaths++;
        }
    }
    if (sl_conf_get_strs(L, o, path, "methods", &v) > 0) {
        sl_conf_kpath(p, path, "methods");
        r->methods = sl_xcalloc(json_object_array_length(v), sizeof(char *));
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(v, i));
            int ok = *s != '\0';
            for (const char *c = s; *c; c++)
                ok &= *c >= 'A' && *c <= 'Z';
            sl_conf_pathf(ep, "%s[%zu]", p, i);
            if (!ok)
                sl_conf_err(L, ep, "invalid value '%s': methods must be uppercase letters", s);
            else
                r->methods[r->nmethods++] = sl_strndup(s, strlen(s));
        }
    }
    if (sl_conf_get_strs(L, o, path, "hosts", &v) > 0) {
        sl_conf_kpath(p, path, "hosts");
        r->hosts = sl_xcalloc(json_object_array_length(v), sizeof(char *));
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            const char *s = json_object_get_string(json_object_array_get_idx(v, i));
            const char *star = strchr(s, '*');
            size_t n = strlen(s);
            sl_conf_pathf(ep, "%s[%zu]", p, i);
            if (star && strchr(star + 1, '*'))
                sl_conf_err(L, ep, "invalid wildcard: must have at most one wildcard");
            else if (star && !(star == s && s[1] == '.') &&
                     !(star == s + n - 1 && n > 2 && s[n - 2] == '.'))
                sl_conf_err(L, ep,
                            "invalid wildcard: must be placed at leftmost or rightmost label");
            else if (strchr(s, ':'))
                sl_conf_err(L, ep, "ports in route hosts are not supported");
            else if (sl_conf_check_host(L, ep, star == s ? s + 2 : star ? "x" : s)) {
                char *h = sl_strndup(s, n);
                for (char *c = h; *c; c++)
                    *c = (char)(*c >= 'A' && *c <= 'Z' ? *c | 0x20 : *c);
                r->hosts[r->nhosts++] = h;
            }
        }
    }
}

static void
load_route(sl_loader_t *L, json_object *o, const char *path, sl_service_t *svc, int top)
{
    sl_conf_t *conf = L->conf;
    sl_route_t *r;
    const char *name = NULL, *str;
    json_object *v;
    char p[SL_PATH_MAX];
    int i;
    size_t had;

    if (sl_conf_check_record(L, o, path, route_keys) < 0)
        return;
    r = sl_xcalloc(1, sizeof(*r));
    r->strip_path = 1;
    r->request_buffering = 1;
    r->service = svc;
    conf->routes = sl_xgrow(conf->routes, conf->nroutes, sizeof(r));
    L->route_paths = sl_xgrow(L->route_paths, conf->nroutes, sizeof(char *));
    L->route_paths[conf->nroutes] = sl_strndup(path, strlen(path));
    conf->routes[conf->nroutes++] = r;

    L->route_names.name_of = route_name;
    L->route_ids.name_of = route_id;
    if (sl_conf_check_name(L, o, path, &name) > 0) {
        r->name = sl_strndup(name, strlen(name));
        if ((had = sl_names_claim(&L->route_names, conf, name, conf->nroutes - 1)) != 0) {
            sl_conf_kpath(p, path, "name");
            sl_conf_err(L, p, "duplicate route name '%s' (also %s)", name, L->route_paths[had - 1]);
        }
    }
    sl_conf_entity_id(L, o, path, "route", r->name ? r->name : path, r->id);
    if ((had = sl_names_claim(&L->route_ids, conf, r->id, conf->nroutes - 1)) != 0 &&
        sl_conf_field(o, "id")) {
        sl_conf_kpath(p, path, "id");
        sl_conf_err(L, p, "duplicate route id '%s' (also %s)", r->id, L->route_paths[had - 1]);
    }
    if ((v = sl_conf_field(o, "service")) != NULL) {
        sl_conf_kpath(p, path, "service");
        if (!top) {
            sl_conf_err(L, p, "cannot be set on a route nested under a service");
        } else if ((str = sl_conf_ref_key(L, v, p)) != NULL) {
            if ((r->service = find_service(L, str)) == NULL)
                sl_conf_err(L, p, "service '%s' not found", str);
        }
    }
    r->protocols = SL_ROUTE_HTTP | SL_ROUTE_HTTPS;
    if (sl_conf_get_strs(L, o, path, "protocols", &v) > 0) {
        sl_conf_kpath(p, path, "protocols");
        for (size_t k = 0; k < json_object_array_length(v); k++) {
            const char *s = json_object_get_string(json_object_array_get_idx(v, k));
            char ep[SL_PATH_MAX];
            sl_conf_pathf(ep, "%s[%zu]", p, k);
            if (strcmp(s, "http") && strcmp(s, "https"))
                sl_conf_err(L, ep, "protocol '%s' is not supported (http, https)", s);
        }
        if (json_object_array_length(v) == 0)
            sl_conf_err(L, p, "length must be at least 1");
        r->https_only = 1;
        r->protocols = 0;
        for (size_t k = 0; k < json_object_array_length(v); k++) {
            const char *s = json_object_get_string(json_object_array_get_idx(v, k));
            if (!strcmp(s, "http")) {
                r->https_only = 0;
                r->protocols |= SL_ROUTE_HTTP;
            } else if (!strcmp(s, "https")) {
                r->protocols |= SL_ROUTE_HTTPS;
            }
        }
    }
    route_match_extra(L, o, path, r);
    route_lists(L, o, path, r);
    if (!sl_conf_field(o, "paths") && !sl_conf_field(o, "methods") && !sl_conf_field(o, "hosts") &&
        !sl_conf_field(o, "headers"))
        sl_conf_err(L, path,
                    "must set one of 'methods', 'hosts', 'headers', 'paths' when 'protocols' "
                    "is 'http' or 'https'");
    sl_conf_get_bool(L, o, path, "strip_path", &r->strip_path);
    sl_conf_get_bool(L, o, path, "preserve_host", &r->preserve_host);
    sl_conf_get_int(L, o, path, "regex_priority", -2147483647LL, 2147483647LL, &r->regex_priority);
    sl_conf_get_bool(L, o, path, "request_buffering", &r->request_buffering);
    sl_conf_get_bool(L, o, path, "response_buffering", &i);
    if (sl_conf_get_str(L, o, path, "path_handling", &str) > 0 && strcmp(str, "v0") &&
        strcmp(str, "v1")) {
        sl_conf_kpath(p, path, "path_handling");
        sl_conf_err(L, p, "expected one of: v0, v1");
    }
    r->https_redirect = 426;
    if (sl_conf_get_int(L, o, path, "https_redirect_status_code", 0, 999, &i) > 0) {
        if (i != 426 && i != 301 && i != 302 && i != 307 && i != 308) {
            sl_conf_kpath(p, path, "https_redirect_status_code");
            sl_conf_err(L, p, "expected one of: 426, 301, 302, 307, 308");
        } else {
            r->https_redirect = (int)i;
        }
    }
    sl_conf_get_strs(L, o, path, "tags", &v);
    if ((v = sl_conf_field(o, "plugins")) != NULL)
        sl_conf_pending_add(L, v, path, r, NULL, NULL, 0);
}

static void
route_entity(sl_route_t *r, json_object *o)
{
    static const char *const copy[] = {"paths", "methods", "hosts", "headers",
                                       "snis",  "tags",    NULL};
    json_object *e = json_object_new_object(), *v;
    int b;

    json_object_object_add(e, "id", json_object_new_string(r->id));
    if (r->name)
        json_object_object_add(e, "name", json_object_new_string(r->name));
    if ((v = sl_conf_field(o, "protocols")) != NULL) {
        json_object_object_add(e, "protocols", json_object_get(v));
    } else {
        v = json_object_new_array();
        json_object_array_add(v, json_object_new_string("http"));
        json_object_array_add(v, json_object_new_string("https"));
        json_object_object_add(e, "protocols", v);
    }
    for (size_t i = 0; copy[i]; i++)
        if ((v = sl_conf_field(o, copy[i])) != NULL)
            json_object_object_add(e, copy[i], json_object_get(v));
    json_object_object_add(e, "strip_path", json_object_new_boolean(r->strip_path));
    json_object_object_add(e, "preserve_host", json_object_new_boolean(r->preserve_host));
    json_object_object_add(e, "regex_priority", json_object_new_int(r->regex_priority));
    v = sl_conf_field(o, "https_redirect_status_code");
    json_object_object_add(e, "https_redirect_status_code",
                           json_object_new_int(v ? json_object_get_int(v) : 426));
    v = sl_conf_field(o, "path_handling");
    json_object_object_add(e, "path_handling",
                           json_object_new_string(v ? json_object_get_string(v) : "v0"));
    v = sl_conf_field(o, "request_buffering");
    b = v ? json_object_get_boolean(v) : 1;
    json_object_object_add(e, "request_buffering", json_object_new_boolean(b));
    v = sl_conf_field(o, "response_buffering");
    b = v ? json_object_get_boolean(v) : 1;
    json_object_object_add(e, "response_buffering", json_object_new_boolean(b));
    if (r->service) {
        v = json_object_new_object();
        json_object_object_add(v, "id", json_object_new_string(r->service->id));
        json_object_object_add(e, "service", v);
    }
    r->entity = e;
}

/* ---- plugins ---- */

static const char *const plugin_keys[] = {"name",          "config", "enabled", "id",
                                          "instance_name", "route",  "service", "consumer",
                                          "protocols",     "tags",   NULL};

/* The index tag of a plugin instance's scope: its four pointers mixed
 * (they are the loader's own, not chosen by the config's author). */
static uint64_t
scope_tag(const void *plugin, const void *route, const void *svc, const void *consumer)
{
    const void *part[] = {plugin, route, svc, consumer};
    uint64_t h = 0;

    for (size_t i = 0; i < sl_nelems(part); i++)
        h = (h ^ (uint64_t)(uintptr_t)part[i]) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

static void
load_plugin(sl_loader_t *L, const sl_pending_plugin_t *pp)
{
    sl_conf_t *conf = L->conf;
    json_object *o = pp->o, *v;
    const char *path = pp->path, *name, *str;
    const sl_loaded_plugin_t *lp;
    sl_route_t *route = pp->route;
    sl_service_t *svc = pp->service;
    sl_consumer_t *consumer = pp->consumer;
    sl_plugin_inst_t *inst;
    char p[SL_PATH_MAX], key[256];
    int enabled = 1, r;
    uint64_t tag;

    if (sl_conf_check_record(L, o, path, plugin_keys) < 0)
        return;
    r = sl_conf_get_str(L, o, path, "name", &name);
    if (r == 0) {
        sl_conf_kpath(p, path, "name");
        sl_conf_err(L, p, "required field missing");
    }
    sl_conf_get_bool(L, o, path, "enabled", &enabled);
    sl_conf_get_strs(L, o, path, "tags", &v);
    sl_conf_get_strs(L, o, path, "protocols", &v);
    sl_conf_get_str(L, o, path, "instance_name", &str);
    for (const char *const *k = (const char *const[]){"route", "service", NULL}; *k; k++) {
        if ((v = sl_conf_field(o, *k)) == NULL)
            continue;
        sl_conf_kpath(p, path, *k);
        if (!pp->top) {
            sl_conf_err(L, p, "cannot be set on a nested plugin");
        } else if ((str = sl_conf_ref_key(L, v, p)) != NULL) {
            if (**k == 'r' && (route = find_route(L, str)) == NULL)
                sl_conf_err(L, p, "route '%s' not found", str);
            else if (**k == 's' && (svc = find_service(L, str)) == NULL)
                sl_conf_err(L, p, "service '%s' not found", str);
        }
    }
    if ((v = sl_conf_field(o, "consumer")) != NULL) {
        sl_conf_kpath(p, path, "consumer");
        if (pp->consumer)
            sl_conf_err(L, p, "cannot be set on a plugin nested under a consumer");
        else if ((consumer = sl_conf_consumer_ref(L, v, p)) == NULL)
            return;
    }
    if (r <= 0)
        return;
    sl_conf_kpath(p, path, "name");
    lp = L->reg ? sl_plugins_find(L->reg, name) : NULL;
    if (lp == NULL) {
        sl_conf_err(L, p, "plugin '%s' is not installed (not found in plugins directory %s)", name,
                    L->reg && L->reg->dir ? L->reg->dir : "(none)");
        return;
    }
    tag = scope_tag(lp, route, svc, consumer);
    for (size_t cur = SL_KINDEX_START, i;
         (i = (size_t)(uintptr_t)sl_kindex_next(&L->scopes, tag, &cur)) != 0;) {
        sl_plugin_inst_t *o2 = conf->plugins[--i];
        if (o2->route == route && o2->service == svc && o2->consumer == consumer &&
            o2->plugin == lp) {
            sl_conf_err(L, p, "plugin '%s' is configured more than once for the same %s (also %s)",
                        name,
                        route      ? "route"
                        : svc      ? "service"
                        : consumer ? "consumer"
                                   : "global scope",
                        L->inst_paths[i]);
            return;
        }
    }

    inst = sl_xcalloc(1, sizeof(*inst));
    inst->plugin = lp;
    inst->enabled = enabled;
    inst->route = route;
    inst->service = svc;
    inst->consumer = consumer;
    if (consumer) {
        consumer->nplugins++;
        conf->nconsumer_plugins++;
        snprintf(key, sizeof(key), "%s|%s|%s|%s", name, route ? route->id : "", svc ? svc->id : "",
                 consumer->id);
    } else {
        snprintf(key, sizeof(key), "%s|%s|%s", name, route ? route->id : "", svc ? svc->id : "");
    }
    sl_conf_entity_id(L, o, path, "plugin", key, inst->id);
    conf->plugins = sl_xgrow(conf->plugins, conf->nplugins, sizeof(inst));
    L->inst_paths = sl_xgrow(L->inst_paths, conf->nplugins, sizeof(char *));
    L->inst_paths[conf->nplugins] = sl_strndup(path, strlen(path));
    conf->plugins[conf->nplugins++] = inst;
    sl_kindex_add(&L->scopes, tag, (void *)(uintptr_t)conf->nplugins);

    v = sl_conf_field(o, "config");
    sl_conf_kpath(p, path, "config");
    if (v != NULL && !json_object_is_type(v, json_type_object)) {
        sl_conf_err(L, p, "expected a record");
        return;
    }
    {
        const char *js = v ? json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                                   JSON_C_TO_STRING_NOSLASHESCAPE)
                           : "{}";
        sl_conf_ctx_t cx = {L, p, 0, 0};
        void *pc = NULL;
        int rc = lp->desc->config_parse(L->api, &cx, js, strlen(js), &pc);

        if (rc != 0 && cx.nerr == 0)
            sl_conf_err(L, p, "invalid configuration for plugin '%s'", name);
        if (rc != 0 || cx.nerr > 0) {
            if (pc && lp->desc->config_free)
                lp->desc->config_free(pc);
            pc = NULL;
        }
        inst->conf = pc;
        inst->skip = cx.skip;
        inst->conf_json = sl_strndup(js, strlen(js));
    }
}

/* ---- the document ---- */

static void
each(sl_loader_t *L, json_object *root, const char *key,
     void (*fn)(sl_loader_t *, json_object *, const char *))
{
    json_object *v = sl_conf_field(root, key);
    char p[SL_PATH_MAX];

    if (v == NULL)
        return;
    if (!json_object_is_type(v, json_type_array)) {
        sl_conf_err(L, key, "expected an array");
        return;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        sl_conf_pathf(p, "%s[%zu]", key, i);
        fn(L, json_object_array_get_idx(v, i), p);
    }
}

static void
load_top_route(sl_loader_t *L, json_object *o, const char *path)
{
    load_route(L, o, path, NULL, 1);
}

static void
load_document(sl_loader_t *L, json_object *root)
{
    static const char *const keys[] = {
        "_format_version", "_transform", "_comment",  "_info",     "_ignore",
        "services",        "routes",     "plugins",   "consumers", "keyauth_credentials",
        "certificates",    "snis",       "upstreams", "targets",   NULL};
    sl_pending_t pending = {0};
    const char *fv;
    int b;
    json_object *v;

    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        sl_conf_err(L, "", root ? "expected a record at the top level" : "empty configuration");
        return;
    }
    sl_conf_check_record(L, root, "", keys);
    if (sl_conf_get_str(L, root, "", "_format_version", &fv) > 0) {
        if (strcmp(fv, "1.1") && strcmp(fv, "2.1") && strcmp(fv, "3.0"))
            sl_conf_err(L, "_format_version",
                        "unsupported version '%s' (expected \"1.1\", \"2.1\" or \"3.0\")", fv);
    } else if (sl_conf_field(root, "_format_version") == NULL) {
        sl_conf_err(L, "_format_version", "required field missing");
    }
    sl_conf_get_bool(L, root, "", "_transform", &b);

    L->pending = &pending;
    each(L, root, "services", load_service);
    each(L, root, "routes", load_top_route);
    each(L, root, "consumers", sl_conf_load_consumer);
    each(L, root, "keyauth_credentials", sl_conf_load_keyauth);
    each(L, root, "certificates", sl_conf_load_certificate);
    each(L, root, "snis", sl_conf_load_sni);
    each(L, root, "upstreams", sl_conf_load_upstream);
    each(L, root, "targets", sl_conf_load_target);
    sl_conf_upstreams_finish(L);
    if ((v = sl_conf_field(root, "plugins")) != NULL)
        sl_conf_pending_add(L, v, "", NULL, NULL, NULL, 1);
    L->pending = NULL;
    for (size_t i = 0; i < pending.n; i++) {
        load_plugin(L, &pending.items[i]);
        free(pending.items[i].path);
    }
    free(pending.items);
}

static char *
entity_text(json_object *e)
{
    const char *t;

    if (e == NULL)
        return NULL;
    t = json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    return sl_utf8_json_dup(t); /* the log record copies it without a check */
}

sl_conf_t *
sl_conf_load_buffer(const char *name, const char *buf, size_t len, const sl_plugin_registry_t *reg,
                    const sl_api_t *api, sl_errors_t *errs)
{
    size_t n0 = errs->n;
    char *text;
    json_object *root;
    sl_yaml_lines_t *lines;
    sl_conf_t *conf;
    sl_loader_t L = {.file = name, .errs = errs, .reg = reg, .api = api};

    if ((text = sl_conf_env_substitute(name, buf, len, errs)) == NULL)
        return NULL;
    if (sl_yaml_parse(name, text, strlen(text), &root, &lines, errs) != SL_OK) {
        free(text);
        return NULL;
    }
    conf = sl_xcalloc(1, sizeof(*conf));
    sl_conf_hash(text, strlen(text), conf->hash);
    free(text);
    conf->file = sl_strndup(name, strlen(name));
    conf->root = root;
    L.conf = conf;
    L.lines = lines;
    load_document(&L, root);

    if (L.nerr == 0) {
        json_object *svcs = sl_conf_field(root, "services"), *rts = sl_conf_field(root, "routes");
        size_t ns = 0, nr = 0;
        /* entities, in the same order services/routes were loaded */
        for (size_t i = 0; svcs && i < json_object_array_length(svcs); i++) {
            json_object *so = json_object_array_get_idx(svcs, i), *sr = sl_conf_field(so, "routes");
            service_entity(conf->services[ns++], so);
            for (size_t k = 0; sr && k < json_object_array_length(sr); k++)
                route_entity(conf->routes[nr++], json_object_array_get_idx(sr, k));
        }
        for (size_t i = 0; rts && i < json_object_array_length(rts); i++)
            route_entity(conf->routes[nr++], json_object_array_get_idx(rts, i));
        sl_router_build(conf, errs);
        sl_conf_chains_build(conf); /* after the router ordered the routes */
        /* every log record carries route and service: serialize them once */
        for (size_t i = 0; i < conf->nroutes; i++) {
            sl_route_t *rt = conf->routes[i];
            rt->entity_json = entity_text(rt->entity);
            rt->entity_json_len = rt->entity_json ? strlen(rt->entity_json) : 0;
        }
        for (size_t i = 0; i < conf->nservices; i++) {
            sl_service_t *sv = conf->services[i];
            sv->entity_json = entity_text(sv->entity);
            sv->entity_json_len = sv->entity_json ? strlen(sv->entity_json) : 0;
        }
    }

    sl_yaml_lines_free(lines);
    for (size_t i = 0; i < conf->nservices; i++)
        free(L.svc_paths[i]);
    for (size_t i = 0; i < conf->nroutes; i++)
        free(L.route_paths[i]);
    for (size_t i = 0; i < conf->nplugins; i++)
        free(L.inst_paths[i]);
    for (size_t i = 0; i < conf->nconsumers; i++)
        free(L.consumer_paths[i]);
    for (size_t i = 0; i < conf->nkeyauth; i++)
        free(L.cred_paths[i]);
    for (size_t i = 0; i < conf->nupstreams; i++)
        free(L.upstream_paths[i]);
    free(L.upstream_paths);
    free(L.consumer_paths);
    free(L.cred_paths);
    free(L.svc_paths);
    free(L.route_paths);
    free(L.inst_paths);
    sl_kindex_free(&L.scopes);
    sl_names_free(&L.svc_names);
    sl_names_free(&L.svc_ids);
    sl_names_free(&L.route_names);
    sl_names_free(&L.route_ids);
    conf->upstream_names = L.upstream_names.ix; /* per request (sl_conf_upstream_find) */
    L.upstream_names.ix = (sl_kindex_t){0};
    sl_names_free(&L.upstream_names);
    sl_names_free(&L.upstream_ids);
    sl_names_free(&L.sni_names);
    sl_kindex_free(&L.cert_ids);
    if (errs->n > n0) {
        sl_conf_free(conf);
        return NULL;
    }
    return conf;
}

sl_conf_t *
sl_conf_load(const char *file, const sl_plugin_registry_t *reg, const sl_api_t *api,
             sl_errors_t *errs)
{
    FILE *f = fopen(file, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    sl_conf_t *conf;

    if (f == NULL) {
        sl_errors_add(errs, "%s: cannot open: %s", file, strerror(errno));
        return NULL;
    }
    do {
        if (len + 4096 > cap) {
            cap = cap ? cap * 2 : 16384;
            buf = sl_xrealloc(buf, cap);
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
    } while (n > 0);
    if (ferror(f)) {
        sl_errors_add(errs, "%s: cannot read: %s", file, strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    conf = sl_conf_load_buffer(file, buf, len, reg, api, errs);
    free(buf);
    return conf;
}

static void
route_free(sl_route_t *r)
{
    for (size_t i = 0; i < r->npaths; i++)
        sl_router_path_free(&r->paths[i]);
    for (size_t i = 0; i < r->nmethods; i++)
        free(r->methods[i]);
    for (size_t i = 0; i < r->nhosts; i++)
        free(r->hosts[i]);
    free(r->paths);
    free(r->methods);
    free(r->hosts);
    for (size_t i = 0; i < r->nsnis; i++)
        free(r->snis[i]);
    free(r->snis);
    for (size_t i = 0; i < r->nheaders; i++) {
        for (size_t k = 0; k < r->headers[i].nvalues; k++)
            free(r->headers[i].values[k]);
        free(r->headers[i].values);
        free(r->headers[i].name);
    }
    free(r->headers);
    free(r->name);
    json_object_put(r->entity);
    free(r->entity_json);
    free(r->chain.items);
    free(r);
}

void
sl_conf_free(sl_conf_t *conf)
{
    if (conf == NULL)
        return;
    sl_router_free(conf);
    for (size_t i = 0; i < conf->nplugins; i++) {
        sl_plugin_inst_t *in = conf->plugins[i];
        if (in->conf && in->plugin->desc->config_free)
            in->plugin->desc->config_free(in->conf);
        free(in->conf_json);
        free(in);
    }
    for (size_t i = 0; i < conf->nroutes; i++)
        route_free(conf->routes[i]);
    for (size_t i = 0; i < conf->nservices; i++) {
        sl_service_t *s = conf->services[i];
        free(s->name);
        free(s->protocol);
        free(s->host);
        free(s->path);
        json_object_put(s->entity);
        free(s->entity_json);
        free(s->chain.items);
        free(s);
    }
    for (size_t i = 0; i < conf->nzones; i++)
        sl_shm_zone_release(conf->zones[i]);
    free(conf->zones);
    sl_conf_consumers_free(conf);
    sl_conf_certs_free(conf);
    sl_conf_upstreams_free(conf);
    free(conf->metrics);
    free(conf->plugins);
    free(conf->routes);
    free(conf->services);
    free(conf->global_chain.items);
    json_object_put(conf->root);
    free(conf->file);
    free(conf);
}
