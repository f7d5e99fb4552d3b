/* config.h - the declarative configuration (Kong/decK format) as the core
 * uses it: services, routes, plugin instances, and per-route plugin chains
 * computed once per configuration generation.
 *
 * OWNERSHIP: everything hangs off one sl_conf_t and is freed by
 * sl_conf_free(), which also calls each plugin's config_free. */

#ifndef SL_CONFIG_H
#define SL_CONFIG_H

#include <json-c/json.h>
#include <regex.h>

#include "base/common.h"
#include "base/errors.h"
#include "base/shm.h"
#include "conf/plugin_loader.h"

typedef struct sl_service sl_service_t;
typedef struct sl_route sl_route_t;

typedef struct sl_plugin_inst {
    char id[37];                      /* UUID (from config or generated) */
    const sl_loaded_plugin_t *plugin; /* registry entry */
    void *conf;                       /* from plugin->desc->config_parse */
    int enabled;
    sl_route_t *route; /* scope: NULL/NULL = global */
    sl_service_t *service;
} sl_plugin_inst_t;

/* A chain: instances ordered by priority (desc), ties by name (reverse
 * alphabetical, as Kong). At most one instance per plugin name. */
typedef struct sl_chain {
    sl_plugin_inst_t **items;
    size_t n;
    unsigned has_body; /* some item has a body callback */
    unsigned has_body_filter;
} sl_chain_t;

struct sl_service {
    char id[37];
    char *name;     /* may be NULL */
    char *protocol; /* "http" | "https" */
    char *host;
    int port;
    char *path;                                       /* NULL = none ("/" when proxying) */
    int connect_timeout, read_timeout, write_timeout; /* ms */
    int retries;
    int tls_verify;       /* -1 unset (= verify), 0, 1 */
    int tls_verify_depth; /* -1 unset */
    int enabled;          /* 0: its routes are not routed (Kong) */
    json_object *entity;  /* the entity as Kong would log it */
    char *entity_json;    /* entity as compact JSON (log records) */
    sl_chain_t chain;     /* service + global plugins (no route) */
};

typedef struct sl_route_path {
    char *path; /* as configured (regex without the '~') */
    size_t len;
    int is_regex;
    regex_t re; /* compiled, anchored at start, if is_regex */
} sl_route_path_t;

struct sl_route {
    char id[37];
    char *name; /* may be NULL */
    sl_route_path_t *paths;
    size_t npaths;
    char **methods;
    size_t nmethods; /* uppercase */
    char **hosts;
    size_t nhosts;     /* lowercase; "*.x" / "x.*" wildcards */
    int strip_path;    /* default 1 */
    int preserve_host; /* default 0 */
    int regex_priority;
    int request_buffering; /* default 1 */
    sl_service_t *service; /* may be NULL */
    json_object *entity;
    char *entity_json; /* entity as compact JSON (log records) */
    sl_chain_t chain;  /* effective plugins for this route */
};

/* Consumers are kept for the log record; no auth plugin uses them yet. */
typedef struct sl_consumer {
    char id[37];
    json_object *entity; /* id, username, custom_id, tags as given */
} sl_consumer_t;

typedef struct sl_conf {
    char *file;
    sl_service_t **services;
    size_t nservices;
    sl_route_t **routes;
    size_t nroutes; /* in match order (router sorts) */
    sl_plugin_inst_t **plugins;
    size_t nplugins; /* configuration order */
    sl_consumer_t **consumers;
    size_t nconsumers;
    sl_chain_t global_chain; /* global plugins only (no route matched) */
    json_object *root;       /* parsed document (after env substitution) */
    void *router;            /* router's private index (router.c) */
    sl_shm_zone_t **zones;   /* references taken by plugins' shm_zone */
    size_t nzones;
} sl_conf_t;

/* Load and validate `file` (YAML or JSON; chosen by content). Every problem
 * is added to `errs` as "file:line: key.path: message"; returns NULL if
 * there was any.  Plugin configs are parsed with their plugin's
 * config_parse; a plugin name missing from `reg` is an error naming the
 * plugin and reg->dir. */
sl_conf_t *sl_conf_load(const char *file, const sl_plugin_registry_t *reg, const sl_api_t *api,
                        sl_errors_t *errs);

/* Same from a buffer (tests, fuzzing). `name` is used in messages. */
sl_conf_t *sl_conf_load_buffer(const char *name, const char *buf, size_t len,
                               const sl_plugin_registry_t *reg, const sl_api_t *api,
                               sl_errors_t *errs);

/* The host's api->conf_error implementation (the table lives in api.c; the
 * context type is private to config.c).  `api` is passed to config_parse. */
void sl_conf_ctx_error(sl_conf_ctx_t *cx, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The host's api->shm_zone: a shared-memory zone for the configuration
 * being loaded (a reference the configuration keeps until sl_conf_free). */
sl_shm_t *sl_conf_ctx_shm_zone(sl_conf_ctx_t *cx, const char *name, size_t size, size_t value_max);

void sl_conf_free(sl_conf_t *conf);

/* decK template substitution of ${{ env "DECK_X" }} (and `| toInt` etc.).
 * Returns a malloc'd string, or NULL with errors added (with line numbers). */
char *sl_conf_env_substitute(const char *name, const char *buf, size_t len, sl_errors_t *errs);

#endif
