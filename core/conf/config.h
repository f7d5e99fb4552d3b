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
#include <stdatomic.h>
#include <stdint.h>

#include "base/common.h"
#include "base/errors.h"
#include "base/shm.h"
#include "conf/keyed_index.h"
#include "conf/plugin_loader.h"

typedef struct sl_service sl_service_t;
typedef struct sl_route sl_route_t;
/* sl_consumer_t and sl_credential_t are the ABI's opaque handles
 * (sluice/plugin.h); the core defines the structs below. */

typedef struct sl_plugin_inst {
    char id[37];                      /* UUID (from config or generated) */
    const sl_loaded_plugin_t *plugin; /* registry entry */
    void *conf;                       /* from plugin->desc->config_parse */
    char *conf_json;                  /* the `config` object as parsed (compact JSON) */
    int enabled;
    sl_route_t *route; /* scope: NULL/NULL/NULL = global */
    sl_service_t *service;
    sl_consumer_t *consumer;
    unsigned skip; /* SL_PLUGIN_PHASE_* bits config_parse said it never needs (ABI 1.8) */
} sl_plugin_inst_t;

/* A chain: instances ordered by priority (desc), ties by name (reverse
 * alphabetical, as Kong). At most one instance per plugin name. */
typedef struct sl_chain {
    sl_plugin_inst_t **items;
    size_t n;
    unsigned has_body; /* some item has a body callback */
    unsigned has_body_filter;
    unsigned has_header_filter; /* the phase runs only when set */
    unsigned has_balancer;      /* a balancer callback (ABI 1.2) */
} sl_chain_t;

/* A service's defaults, as Kong's. */
#define SL_SERVICE_DEFAULT_TIMEOUT_MS 60000 /* connect, read and write */
#define SL_SERVICE_DEFAULT_RETRIES 5
#define SL_SERVICE_MAX_RETRIES 32767

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
    size_t entity_json_len;
    sl_chain_t chain; /* service + global plugins (no route) */
};

typedef struct sl_route_path {
    char *path; /* as configured (regex without the '~') */
    size_t len;
    int is_regex;
    regex_t re; /* compiled, anchored at start, if is_regex */
} sl_route_path_t;

/* A route's `headers` entry: the request must carry `name` with one of
 * `values` (case-insensitive), as Kong matches them. */
typedef struct sl_route_header {
    char *name; /* lowercase */
    char **values;
    size_t nvalues;
} sl_route_header_t;

#define SL_ROUTE_HTTP 0x1
#define SL_ROUTE_HTTPS 0x2

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
    unsigned protocols;    /* SL_ROUTE_HTTP | SL_ROUTE_HTTPS (default both) */
    char **snis;           /* lowercase; "*.x" / "x.*" wildcards */
    size_t nsnis;
    sl_route_header_t *headers;
    size_t nheaders;
    int https_only;        /* protocols lists https but not http */
    int https_redirect;    /* https_redirect_status_code (default 426) */
    sl_service_t *service; /* may be NULL */
    json_object *entity;
    char *entity_json; /* entity as compact JSON (log records) */
    size_t entity_json_len;
    sl_chain_t chain; /* effective plugins for this route */
    size_t idx;       /* position in conf->routes (after the router sorted) */
};

/* A consumer (Kong's entity): who a request is, once an auth plugin said so
 * (api->consumer_set).  Plugins may be scoped to it. */
struct sl_consumer {
    char id[37];
    size_t idx;          /* position in conf->consumers */
    char *username;      /* NULL if not set */
    char *custom_id;     /* NULL if not set */
    json_object *entity; /* id, username, custom_id, tags (log records) */
    char *entity_json;
    size_t entity_json_len;
    size_t nplugins;    /* plugin instances scoped to this consumer */
    sl_chain_t *chains; /* nplugins > 0: per route (route->idx), the chain
                           with this consumer's plugins; NULL otherwise */
};

/* A key-auth credential (keyauth_credentials).  Look-ups find it by a keyed
 * hash of the key and compare the key itself in constant time
 * (conf/consumers.c).  The key never goes into messages or log records. */
struct sl_credential {
    char id[37];
    sl_consumer_t *consumer;
    size_t idx; /* position in conf->keyauth */
    char *key;  /* malloc'd, wiped when freed */
    size_t keylen;
};

/* A TLS certificate (Kong's `certificates`): PEM text, checked at load. */
typedef struct sl_certificate {
    char id[37];
    char *cert, *key;         /* PEM */
    char *cert_alt, *key_alt; /* a second key type (RSA + ECDSA); NULL if none */
    size_t idx;               /* position in conf->certs */
} sl_certificate_t;

/* A server name (Kong's `snis`, top-level or nested in a certificate):
 * lowercase; "*.example.com" / "example.*" wildcards. */
typedef struct sl_sni {
    char *name;
    sl_certificate_t *cert;
} sl_sni_t;

/* ---- upstreams and targets (Kong's entities; conf/upstreams.c) ---- */

typedef enum {
    SL_LB_ROUND_ROBIN = 0,
    SL_LB_CONSISTENT_HASHING,
    SL_LB_LEAST_CONNECTIONS,
    SL_LB_LATENCY,
} sl_lb_algorithm_t;

typedef enum {
    SL_HASH_NONE = 0,
    SL_HASH_CONSUMER,
    SL_HASH_IP,
    SL_HASH_HEADER,
    SL_HASH_COOKIE,
    SL_HASH_PATH,
    SL_HASH_QUERY_ARG,
    SL_HASH_URI_CAPTURE,
} sl_hash_on_t;

/* A set of HTTP statuses 100..999 (health check lists). */
typedef struct sl_status_set {
    unsigned char bits[(1000 + 7) / 8];
} sl_status_set_t;

static inline int
sl_status_set_has(const sl_status_set_t *s, int status)
{
    return status >= 0 && status < 1000 && (s->bits[status / 8] >> (status % 8)) & 1;
}

typedef enum { SL_HC_HTTP = 0, SL_HC_HTTPS, SL_HC_TCP } sl_hc_type_t;

typedef struct sl_hc_active {
    sl_hc_type_t type;
    double timeout; /* seconds */
    int concurrency;
    char *http_path;
    char *https_sni; /* NULL: the target's host */
    int https_verify_certificate;
    char *headers; /* extra probe header lines ("Name: value\r\n"...), NULL if none */
    double healthy_interval;
    int healthy_successes;
    sl_status_set_t healthy_statuses;
    double unhealthy_interval;
    int unhealthy_http_failures, unhealthy_tcp_failures, unhealthy_timeouts;
    sl_status_set_t unhealthy_statuses;
} sl_hc_active_t;

typedef struct sl_hc_passive {
    sl_hc_type_t type;
    int healthy_successes;
    sl_status_set_t healthy_statuses;
    int unhealthy_http_failures, unhealthy_tcp_failures, unhealthy_timeouts;
    sl_status_set_t unhealthy_statuses;
} sl_hc_passive_t;

typedef struct sl_target_conf {
    char id[37];
    char *host; /* name or IP literal (no brackets) */
    int port;
    int weight;       /* 0 = disabled */
    char *target;     /* "host:port" ("[v6]:port"), as Kong logs it */
    size_t slot;      /* index in the shared health table (conf->health) */
    int named;        /* host is a name: one balancer entry per address it resolves to */
    size_t addr_slot; /* named: first of SL_TARGET_ADDR_SLOTS slots, one per address */
} sl_target_conf_t;

/* Health slots reserved per host-name target, one per DNS address: as many
 * as the DNS layer keeps per answer (SL_ARES_MAX_ADDRS), so every address
 * of one answer has its own.  The shared table is sized when the
 * configuration loads; a slot no worker has used for
 * SL_TARGET_ADDR_IDLE_MS goes to a new address (docs/upstream.md). */
#define SL_TARGET_ADDR_SLOTS 16
#define SL_TARGET_ADDR_IDLE_MS 60000

typedef struct sl_upstream_conf {
    char id[37];
    char *name; /* a host name; a service whose host is this name is balanced */
    size_t name_len;
    sl_lb_algorithm_t algorithm;
    sl_hash_on_t hash_on, hash_fallback;
    char *hash_on_header, *hash_fallback_header; /* lowercase */
    char *hash_on_cookie, *hash_on_cookie_path;
    char *hash_on_query_arg, *hash_fallback_query_arg;
    char *hash_on_uri_capture, *hash_fallback_uri_capture;
    int slots;
    sl_hc_active_t active;
    sl_hc_passive_t passive;
    double threshold;  /* healthchecks.threshold: % of weight that must be healthy */
    char *host_header; /* NULL: the target's host */
    int active_on;     /* an active interval is set */
    int passive_on;    /* a passive threshold is set */
    sl_target_conf_t *targets;
    size_t ntargets;
    size_t idx; /* position in conf->upstreams */
} sl_upstream_conf_t;

/* A target's health, in memory shared by the master and every worker of
 * the node (conf->health, one slot per target of every upstream).  `state`
 * packs the health (SL_HEALTH_UNHEALTHY) and the running counters (one byte
 * each) so that a report is one compare-and-swap. */
#define SL_HEALTH_UNHEALTHY ((uint64_t)1 << 32)
#define SL_HEALTH_CTR_SUCCESS 0
#define SL_HEALTH_CTR_HTTP 8
#define SL_HEALTH_CTR_TCP 16
#define SL_HEALTH_CTR_TIMEOUT 24
typedef struct sl_target_health {
    _Atomic uint64_t state;
    _Atomic int64_t next_check_ms; /* active checks: when this target is due (ms, monotonic) */
    _Atomic uint64_t probes;       /* active probes sent (all workers) */
    _Atomic uint64_t addr;         /* address slots: 0 free, else the address's tag (claimed) */
    _Atomic int64_t seen_ms;       /* address slots: when a worker last had the address */
    char key[120];                 /* "upstream-name|host:port": carried over on reload */
} sl_target_health_t;

typedef struct sl_conf_metrics {
    sl_metrics_fn fn;
    void *arg;
} sl_conf_metrics_t;

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
    sl_shm_zone_t **zones; /* references taken by plugins' shm_zone */
    size_t nzones;
    sl_credential_t **keyauth; /* keyauth_credentials */
    size_t nkeyauth;
    sl_khash_t khash;                /* keys the five indexes below */
    sl_kindex_t keyauth_keys;        /* credentials by key */
    sl_kindex_t keyauth_ids;         /* credentials by id */
    sl_kindex_t consumer_ids;        /* consumers by id (lowercase) */
    sl_kindex_t consumer_names;      /* consumers by username */
    sl_kindex_t consumer_custom_ids; /* consumers by custom_id */
    size_t nconsumer_plugins;        /* plugin instances scoped to a consumer */
    sl_chain_t global_chain;         /* global plugins only (no route matched) */
    json_object *root;               /* parsed document (after env substitution) */
    void *router;                    /* router's private index (router.c) */
    sl_certificate_t **certs;        /* certificates, configuration order */
    size_t ncerts;
    sl_sni_t *snis;
    size_t nsnis;
    /* TLS contexts built from certs and the settings for this generation
     * (http/tls_server.c, set by the master); freed with the conf */
    void *tls_server;
    void (*tls_server_free)(void *);
    sl_conf_metrics_t *metrics; /* exporters for GET /metrics (metrics_register) */
    size_t nmetrics;
    char hash[33];                  /* MD5 of the config text (Kong's configuration_hash) */
    sl_upstream_conf_t **upstreams; /* configuration order */
    size_t nupstreams;
    sl_kindex_t upstream_names; /* by name: number + 1 (conf/name_index.c's tag) */
    sl_target_health_t *health; /* MAP_SHARED: one slot per target, all upstreams */
    size_t nhealth;
    void *health_map; /* the mapping's reference (conf/upstreams.c) */
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

/* The host's api->conf_phases_skip. */
int sl_conf_ctx_phases_skip(sl_conf_ctx_t *cx, unsigned phases);

/* The host's api->metrics_register. */
int sl_conf_ctx_metrics_register(sl_conf_ctx_t *cx, sl_metrics_fn fn, void *arg);

/* MD5 of text as 32 lowercase hex characters and a NUL. */
void sl_conf_hash(const char *text, size_t len, char out[33]);

void sl_conf_free(sl_conf_t *conf);

/* The upstream named `host` (case-insensitive), or NULL. */
const sl_upstream_conf_t *sl_conf_upstream_find(const sl_conf_t *conf, sl_str_t host);

/* ---- identity look-ups (conf/consumers.c), for the plugin API ---- */

/* A consumer by id or username; NULL if none. */
const sl_consumer_t *sl_conf_consumer_find(const sl_conf_t *conf, sl_str_t id_or_username);
/* The keyauth credential whose key is `key` (keyed hash, then a
 * constant-time comparison of the key); NULL if none. */
const sl_credential_t *sl_conf_keyauth_find(const sl_conf_t *conf, sl_str_t key);
/* The chain for route `r` once `c` is known: c's own chain when plugins are
 * scoped to it, else NULL (the route's chain stands). */
/* Set a chain's has_* flags from its items' callbacks. */
void sl_conf_chain_flags(sl_chain_t *ch);
const sl_chain_t *sl_conf_consumer_chain(const sl_consumer_t *c, const sl_route_t *r);
/* Chain order: <0 when a runs before b (priority desc, then name reverse
 * alphabetical), 0 for the same plugin. */
int sl_conf_chain_order(const sl_plugin_inst_t *a, const sl_plugin_inst_t *b);

/* decK template substitution of ${{ env "DECK_X" }} (and `| toInt` etc.).
 * Returns a malloc'd string, or NULL with errors added (with line numbers). */
char *sl_conf_env_substitute(const char *name, const char *buf, size_t len, sl_errors_t *errs);

#endif
