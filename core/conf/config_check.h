/* config_check.h - private to the config loader (config.c, config_check.c):
 * the loader state, and the helpers that read typed fields and report
 * errors as "file:line: key.path: what is wrong".
 *
 * Field readers return 0 when the key is absent or null, 1 when it is
 * present with the right type (and range), -1 when not (error reported). */

#ifndef SL_CONFIG_CHECK_H
#define SL_CONFIG_CHECK_H

#include <stdarg.h>

#include "conf/config.h"
#include "conf/name_index.h"
#include "conf/yaml_json.h"

#define SL_PATH_MAX 512

typedef struct sl_pending_plugin {
    json_object *o;
    char *path;
    sl_route_t *route;
    sl_service_t *service;
    sl_consumer_t *consumer; /* nested under a consumer */
    int top;
} sl_pending_plugin_t;

typedef struct sl_pending {
    sl_pending_plugin_t *items;
    size_t n;
} sl_pending_t;

typedef struct sl_loader {
    const char *file;
    sl_yaml_lines_t *lines;
    sl_errors_t *errs;
    size_t nerr;
    sl_conf_t *conf;
    const sl_plugin_registry_t *reg;
    const sl_api_t *api;
    char **svc_paths;      /* per service: "services[0]" */
    char **route_paths;    /* per route */
    char **inst_paths;     /* per plugin instance */
    char **consumer_paths; /* per consumer */
    char **cred_paths;     /* per keyauth credential */
    char **upstream_paths; /* per upstream */
    sl_pending_t *pending; /* plugins, loaded last */
    /* plugin instances by scope (plugin, route, service, consumer): the
     * item is the instance's index + 1 */
    sl_kindex_t scopes;
    /* services, routes and upstreams by name and by id, for the duplicate
     * checks and the references (conf/name_index.h) */
    sl_name_index_t svc_names, svc_ids, route_names, route_ids, upstream_names, upstream_ids;
    /* server names (the duplicate check) and certificates by id (every
     * one, a later one with the same id wins: conf/certs.c) */
    sl_name_index_t sni_names;
    sl_kindex_t cert_ids;
} sl_loader_t;

/* The context handed to config_parse: where the plugin's `config` is. */
struct sl_conf_ctx {
    sl_loader_t *L;
    const char *path; /* "services[0].plugins[1].config" */
    int nerr;
    unsigned skip; /* api->conf_phases_skip (ABI 1.8) */
};

void sl_conf_err(sl_loader_t *L, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void sl_conf_errv(sl_loader_t *L, const char *path, const char *fmt, va_list ap);

/* Key paths: at most SL_PATH_MAX bytes; deeper ones are cut (messages only). */
void sl_conf_pathf(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_conf_kpath(char *out, const char *base, const char *key); /* base.key */

json_object *sl_conf_field(json_object *o, const char *key); /* NULL if absent/null */
int sl_conf_get_str(sl_loader_t *L, json_object *o, const char *base, const char *key,
                    const char **out);
int sl_conf_get_int(sl_loader_t *L, json_object *o, const char *base, const char *key,
                    long long min, long long max, int *out);
int sl_conf_get_bool(sl_loader_t *L, json_object *o, const char *base, const char *key, int *out);
int sl_conf_get_strs(sl_loader_t *L, json_object *o, const char *base, const char *key,
                     json_object **out); /* array of strings */

/* `o` must be an object whose keys are all in the NULL-terminated `allowed`
 * (each other key: "unknown field").  -1 if `o` is not an object. */
int sl_conf_check_record(sl_loader_t *L, json_object *o, const char *path,
                         const char *const *allowed);

/* The entity's `id` (validated, lowercased) or a stable generated one:
 * UUIDv5-style from SHA-1 of kind and key.  0 if the given id is bad. */
int sl_conf_entity_id(sl_loader_t *L, json_object *o, const char *path, const char *kind,
                      const char *key, char out[37]);

int sl_conf_check_name(sl_loader_t *L, json_object *o, const char *path, const char **out);
int sl_conf_check_path(sl_loader_t *L, const char *p, const char *path); /* 1 = ok */
int sl_conf_check_host(sl_loader_t *L, const char *p, const char *host); /* 1 = ok */

/* url shorthand -> s->protocol/host/port/path (errors reported at p). */
void sl_conf_parse_url(sl_loader_t *L, const char *p, const char *url, sl_service_t *s);

/* A foreign reference: {name: x}, {id: x} or "x".  NULL if malformed. */
const char *sl_conf_ref_key(sl_loader_t *L, json_object *v, const char *p);

/* conf/consumers.c: consumers (with nested keyauth_credentials and
 * plugins) and top-level keyauth_credentials, each key indexed as it is
 * added (a duplicate is reported there). */
void sl_conf_load_consumer(sl_loader_t *L, json_object *o, const char *path);
void sl_conf_load_keyauth(sl_loader_t *L, json_object *o, const char *path);
/* A consumer reference: "name-or-id", {id: x} or {username: x}; NULL if
 * malformed (reported) or not found (reported). */
sl_consumer_t *sl_conf_consumer_ref(sl_loader_t *L, json_object *v, const char *p);
void sl_conf_consumers_free(sl_conf_t *conf);

/* conf/certs.c: certificates (with nested snis) and top-level snis. */
void sl_conf_load_certificate(sl_loader_t *L, json_object *o, const char *path);
void sl_conf_load_sni(sl_loader_t *L, json_object *o, const char *path);
void sl_conf_certs_free(sl_conf_t *conf);

/* conf/upstreams.c: upstreams (with nested targets) and top-level targets;
 * then the shared health table (after every target is known). */
void sl_conf_load_upstream(sl_loader_t *L, json_object *o, const char *path);
void sl_conf_load_target(sl_loader_t *L, json_object *o, const char *path);
void sl_conf_upstreams_finish(sl_loader_t *L);
void sl_conf_upstreams_free(sl_conf_t *conf);

/* conf/chain.c: per-route/service/global chains, and per consumer with
 * scoped plugins one chain per route (after the router sorted routes). */
void sl_conf_chain_build(sl_conf_t *conf, sl_chain_t *ch, const sl_route_t *r,
                         const sl_service_t *s, const sl_consumer_t *c);
void sl_conf_chains_build(sl_conf_t *conf);

/* Append a `plugins` array's items to the pending list (loaded last). */
void sl_conf_pending_add(sl_loader_t *L, json_object *arr, const char *base, sl_route_t *r,
                         sl_service_t *s, sl_consumer_t *c, int top);

#endif
