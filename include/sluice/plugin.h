/* sluice/plugin.h - the sluice plugin ABI (pure C, standard library only).
 *
 * A plugin is a shared object that exports ONE symbol:
 *
 *     const sl_plugin_t sluice_plugin = { SL_PLUGIN_ABI, "my-plugin", "1.0.0", 1000, ... };
 *
 * The host dlopen()s every *.so in its plugins directory (RTLD_NOW|RTLD_LOCAL),
 * reads `sluice_plugin`, refuses it when `abi_major` differs from the host's
 * SL_PLUGIN_ABI_MAJOR (or when the name is missing or already taken), and
 * otherwise calls it through the callbacks below.  The plugin talks back to
 * the host only through the `sl_api_t` function table it is handed; it never
 * sees host structures.
 *
 * Names: types `sl_*_t`; callbacks the plugin implements are members of
 * sl_plugin_t; functions the host implements are members of sl_api_t.
 *
 * THREADING: every callback runs on the event-loop thread of one worker
 * process.  A request is handled by exactly one worker.  Plugins may start
 * their own threads (init_worker) but must not call sl_api_t functions from
 * them, except those marked "thread-safe".
 *
 * STRINGS cross the ABI as (ptr, len) pairs (sl_str_t); they are NOT
 * NUL-terminated unless a comment says so.
 *
 * COMPATIBILITY PROMISE: within one major version, fields are only ever
 * appended to sl_plugin_t and sl_api_t, never reordered or removed.  A plugin
 * built against minor N runs on any host with minor >= N; a plugin that uses
 * a function added in minor M checks `api->abi_minor >= M` first.  The host
 * fills `api->size` with sizeof(sl_api_t) as it knows it.
 */

#ifndef SLUICE_PLUGIN_H
#define SLUICE_PLUGIN_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SL_PLUGIN_ABI_MAJOR 1
#define SL_PLUGIN_ABI_MINOR 8

/* First fields of every descriptor: SL_PLUGIN_ABI, name, version, ... */
#define SL_PLUGIN_ABI SL_PLUGIN_ABI_MAJOR, SL_PLUGIN_ABI_MINOR

/* The exported symbol's name. */
#define SL_PLUGIN_SYMBOL "sluice_plugin"

/* Compiler attributes, only where the compiler knows them (GCC, Clang). */
#if defined(__GNUC__) || defined(__clang__)
#define SL_ATTR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define SL_ATTR_VISIBLE __attribute__((visibility("default")))
#else
#define SL_ATTR_PRINTF(fmt, args)
#define SL_ATTR_VISIBLE
#endif

/* Export macro for the descriptor (visibility may be hidden by default).
 * C++ plugins also need C linkage and external linkage for a const object:
 *     extern "C" SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {...}; */
#define SL_PLUGIN_EXPORT SL_ATTR_VISIBLE

/* A length-delimited byte string.  OWNERSHIP: always borrowed; the comment
 * of the function that hands it out says how long it stays valid. */
typedef struct sl_str {
    const char *ptr;
    size_t len;
} sl_str_t;

#ifdef __cplusplus
#define SL_STR(lit) (sl_str_t{(lit), sizeof(lit) - 1})
#else
#define SL_STR(lit) ((sl_str_t){(lit), sizeof(lit) - 1})
#endif

/* What a phase callback returns. */
typedef enum sl_status {
    /* Go on with the next plugin / phase. */
    SL_STATUS_CONTINUE = 0,
    /* Stop the chain: the plugin called api->respond() (access/body phases),
     * and that response is sent.  The upstream is not contacted.  In filter
     * phases this is the same as CONTINUE. */
    SL_STATUS_RESPOND = 1,
    /* Internal failure: the host logs it with the plugin name and answers
     * 500 with a JSON body (if nothing was sent yet; otherwise it aborts the
     * connection).  The log phase still runs. */
    SL_STATUS_ERROR = 2,
    /* since 1.1: the phase waits (access and body phases only).  The
     * handler calls api->pend() (optional: defaults apply without it) and
     * returns this; the request then sits until the plugin calls
     * api->resume() from a later callback on the same worker.  The plugins
     * after this one have not run yet; they run on resume.  Returned from
     * another phase it counts as SL_STATUS_ERROR. */
    SL_STATUS_PENDING = 3
} sl_status_t;

/* Opaque handles.  OWNERSHIP: the host owns all of them.
 *   sl_req_t     one request; valid from the first phase callback until the
 *                log callback returns (also after a client abort: the
 *                connection may be gone, the request handle is not).
 *   sl_conf_ctx_t  passed to config_parse only, valid during that call.
 */
typedef struct sl_req sl_req_t;
typedef struct sl_conf_ctx sl_conf_ctx_t;
typedef struct sl_timer sl_timer_t;
typedef struct sl_api sl_api_t;
typedef struct sl_shm sl_shm_t;
/* since 1.1 */
typedef struct sl_worker_timer sl_worker_timer_t;
typedef struct sl_callout sl_callout_t;
/* since 1.7: request header fields checked once, applied to many requests
 * (api->header_block_new).  OWNERSHIP: the plugin's, from header_block_new
 * to header_block_free. */
typedef struct sl_header_block sl_header_block_t;

/* Identity handles (since 1.1).  OWNERSHIP: the host owns them; they belong
 * to the configuration generation the request runs under and stay valid
 * until that request's log callback returns.
 *   sl_consumer_t    a configured consumer (Kong's consumers entity)
 *   sl_credential_t  one of a consumer's credentials (keyauth_credentials)
 */
typedef struct sl_consumer sl_consumer_t;
typedef struct sl_credential sl_credential_t;

/* Log levels for api->log(). */
typedef enum sl_log_level {
    SL_LOG_DEBUG = 0,
    SL_LOG_INFO = 1,
    SL_LOG_WARN = 2,
    SL_LOG_ERROR = 3
} sl_log_level_t;

/* Timestamps of a request, for api->req_time(). Values are microseconds since
 * the Unix epoch (wall clock at request start plus monotonic offsets), or 0
 * when the event has not happened (yet). */
typedef enum sl_time_point {
    SL_TIME_START = 0,           /* first byte of the request received */
    SL_TIME_REQUEST_END,         /* whole request (body) received */
    SL_TIME_UPSTREAM_START,      /* upstream connection attempt began */
    SL_TIME_UPSTREAM_CONNECTED,  /* connected (TLS handshake included) */
    SL_TIME_UPSTREAM_SENT,       /* request fully written to the upstream */
    SL_TIME_UPSTREAM_FIRST_BYTE, /* first byte of the upstream response */
    SL_TIME_UPSTREAM_LAST_BYTE,  /* last byte of the upstream response */
    SL_TIME_RESPONSE_END,        /* last byte written to the client */
    SL_TIME_MAX
} sl_time_point_t;

/* Where the response being filtered comes from (api->resp_source()). */
typedef enum sl_resp_source {
    SL_SOURCE_UPSTREAM = 0, /* the upstream answered */
    SL_SOURCE_GATEWAY = 1   /* a plugin or the gateway made it (Kong: "kong") */
} sl_resp_source_t;

/* Why a request ended abnormally (api->req_error()). */
typedef enum sl_req_error {
    SL_REQERR_NONE = 0,
    SL_REQERR_CLIENT_ABORT,      /* client closed before the response ended */
    SL_REQERR_UPSTREAM_CONNECT,  /* connect/DNS/TLS failure (502) */
    SL_REQERR_UPSTREAM_TIMEOUT,  /* connect/read/write timeout (504) */
    SL_REQERR_UPSTREAM_RESET,    /* upstream closed or reset mid-response */
    SL_REQERR_UPSTREAM_PROTOCOL, /* upstream sent invalid HTTP */
    SL_REQERR_PLUGIN,            /* a plugin returned SL_STATUS_ERROR */
    SL_REQERR_PENDING_TIMEOUT    /* since 1.1: a pending phase timed out (504) */
} sl_req_error_t;

/* ------------------------------------------------------------------------
 * Shared memory across workers (since 1.1): types for the shm_* members.
 * ------------------------------------------------------------------------ */

/* Bounds: keys are 1..SL_SHM_KEY_MAX bytes (any bytes); string values are
 * 0..value_max bytes, value_max chosen when the zone is declared (at most
 * 65536).  Every entry takes one fixed-size slot of about
 * 48 + SL_SHM_KEY_MAX + value_max bytes, so a zone of `size` bytes holds
 * roughly size / (52 + SL_SHM_KEY_MAX + value_max) entries. */
#define SL_SHM_KEY_MAX 255

/* Results of shm_* beyond the usual 0 / -1 (bad argument). */
#define SL_SHM_NOT_FOUND 0 /* shm_get, shm_delete: no such (live) entry */
#define SL_SHM_STRING 1    /* shm_get: a string entry (copied to buf) */
#define SL_SHM_NUMBER 2    /* shm_get: a number entry (in *num) */
#define SL_SHM_ENOSPC (-3) /* no free slot, even after reclaiming expired entries */
#define SL_SHM_ETYPE (-4)  /* shm_incr on a string entry */
#define SL_SHM_ETRUNC (-5) /* shm_get: buf too small (*len says how much is needed) */

/* One entry as handed to a shm_iter callback.  OWNERSHIP: borrowed, valid
 * during the callback only (copied out of the zone, no lock held). */
typedef struct sl_shm_entry {
    sl_str_t key;
    sl_str_t value; /* SL_SHM_STRING entries; len 0 for numbers */
    double num;     /* SL_SHM_NUMBER entries */
    int type;       /* SL_SHM_STRING or SL_SHM_NUMBER */
    int64_t ttl_ms; /* milliseconds left, 0 = never expires */
} sl_shm_entry_t;

/* Return 0 to go on, anything else to stop the iteration. */
typedef int (*sl_shm_iter_fn)(void *arg, const sl_shm_entry_t *e);

/* A zone as shm_info describes it. name is NUL-terminated, valid as long as
 * the zone. */
typedef struct sl_shm_info {
    const char *name;
    size_t size;       /* bytes mapped (as declared) */
    size_t value_max;  /* as declared */
    size_t capacity;   /* entries it can hold */
    size_t used;       /* live entries (expired ones not yet reclaimed count) */
    size_t used_bytes; /* header + used slots, in bytes */
} sl_shm_info_t;

/* ------------------------------------------------------------------------
 * Config schemas (since 1.1).
 *
 * A plugin describes its `config` as a table of fields; the host checks the
 * JSON against it (api->conf_schema_parse), reports every problem with a
 * Kong-style path ("plugins[2].config.limits[0].window: value should be
 * between 1 and 86400"), applies defaults, and fills a plugin struct:
 * each field's value is written at `offset` in a block of `size` bytes.
 * A JSON null is "not set" (decK dumps unset fields as null).  Keys not in
 * the table are errors ("unknown field").
 *
 * C storage per type (at `offset`):
 *   SL_FIELD_BOOLEAN  int (0/1)
 *   SL_FIELD_INTEGER  int64_t
 *   SL_FIELD_NUMBER   double
 *   SL_FIELD_STRING   char * (malloc'd, NUL-terminated; NULL when unset
 *                     without default; embedded NULs are refused)
 *   SL_FIELD_JSON     char * (any JSON value as compact text; NULL unset)
 *   SL_FIELD_RECORD   the nested struct itself, inline (`record->size`
 *                     bytes); its fields get their defaults when absent
 *   SL_FIELD_ARRAY    sl_conf_array_t; items are `elements` values stored
 *                     back to back (element size as above: int, int64_t,
 *                     double, char *, record->size, sl_conf_array_t)
 *   SL_FIELD_MAP      sl_conf_array_t of sl_conf_pair_t: a JSON object's
 *                     keys (each checked by `check`) with their values as
 *                     compact JSON text
 * OWNERSHIP: the filled block belongs to the plugin and is released with
 * api->conf_schema_free(schema, block) (also from config_free, which may
 * keep the api pointer handed to config_parse for it).
 * ------------------------------------------------------------------------ */

typedef enum sl_field_type {
    SL_FIELD_END = 0, /* terminates a field table */
    SL_FIELD_BOOLEAN,
    SL_FIELD_INTEGER,
    SL_FIELD_NUMBER,
    SL_FIELD_STRING,
    SL_FIELD_JSON,
    SL_FIELD_RECORD,
    SL_FIELD_ARRAY,
    SL_FIELD_MAP
} sl_field_type_t;

/* Field flags. */
#define SL_FIELD_REQUIRED 0x1u /* absent/null without default: "required field missing" */
#define SL_FIELD_RANGE 0x2u    /* INTEGER/NUMBER: min <= v <= max; STRING/ARRAY/MAP: length */
/* since 1.4: a BOOLEAN, INTEGER or NUMBER left unset (absent or null, no
 * default) is stored as a marker no value can take - BOOLEAN -1, INTEGER
 * INT64_MIN, NUMBER NAN - instead of 0, for Kong's optional fields where 0
 * is a value (a temperature of 0 is not "no temperature").  Hosts before
 * 1.4 leave 0: a plugin using it checks api->abi_minor >= 4. */
#define SL_FIELD_MARK_UNSET 0x4u

typedef struct sl_conf_array {
    void *items; /* n elements back to back (malloc'd; NULL when n == 0) */
    size_t n;
} sl_conf_array_t;

typedef struct sl_conf_pair {
    char *key;  /* NUL-terminated */
    char *json; /* the value as compact JSON text */
} sl_conf_pair_t;

typedef struct sl_schema sl_schema_t;
typedef struct sl_field sl_field_t;

/* since 1.4: where conf_schema_check reports a problem: `path` relative to
 * the checked object ("" for the object itself), `msg` Kong's wording.
 * Both borrowed for the call. */
typedef void (*sl_schema_err_fn)(void *ud, const char *path, const char *msg);

struct sl_field {
    const char *name; /* JSON key; ignored for array elements */
    sl_field_type_t type;
    unsigned flags;             /* SL_FIELD_REQUIRED | SL_FIELD_RANGE */
    size_t offset;              /* where the value goes in the enclosing block */
    const char *def;            /* default as JSON text ("true", "[\"apikey\"]"), or NULL */
    double min, max;            /* with SL_FIELD_RANGE */
    const char *const *one_of;  /* STRING: allowed values, NULL-terminated */
    const sl_schema_t *record;  /* RECORD, or ARRAY of records */
    const sl_field_t *elements; /* ARRAY: the element's description */
    /* Extra check of a STRING value (array elements and map keys included):
     * NULL if fine, else a static message ("invalid value: ..."). */
    const char *(*check)(const char *value, size_t len);
    void *reserved[2];
};

struct sl_schema {
    size_t size;              /* bytes of the block to fill */
    const sl_field_t *fields; /* terminated by a SL_FIELD_END entry */
    /* Cross-field check after every field passed, e.g. "one of a or b":
     * report with api->conf_error and return -1.  May be NULL. */
    int (*check)(const sl_api_t *api, sl_conf_ctx_t *cx, void *block);
};

/* ------------------------------------------------------------------------
 * Metrics and node status (since 1.1): types for metrics_register and
 * node_status.
 * ------------------------------------------------------------------------ */

/* Append len bytes to the response being built; 0, or -2 (no memory: stop
 * writing). */
typedef int (*sl_write_fn)(void *w, const char *data, size_t len);

/* A plugin's contribution to GET /metrics on the status listener: write
 * Prometheus text exposition lines (complete families: # HELP, # TYPE and
 * samples, each line ending in '\n') with write(w, ...).  Runs on a
 * worker's loop thread; `arg` is what was registered. */
typedef void (*sl_metrics_fn)(const sl_api_t *api, void *arg, sl_write_fn write, void *w);

/* The gateway node as a whole (every worker, every generation), like
 * nginx's stub_status and Kong's /status. */
typedef struct sl_node_status {
    const char *node_id;            /* UUID, fixed for the master's life, NUL-terminated */
    const char *version;            /* sluice's version */
    const char *configuration_hash; /* 32 hex chars (MD5 of the declarative config) */
    uint64_t connections_accepted;  /* since the master started */
    uint64_t connections_handled;
    uint64_t total_requests;
    uint64_t connections_active; /* open client connections now */
    uint64_t connections_reading;
    uint64_t connections_writing; /* with a request in progress */
    uint64_t connections_waiting; /* idle keep-alive */
    int workers;                  /* configured worker processes */
} sl_node_status_t;

/* The numbers and names of a request's log record (Kong's request.size,
 * response.size, latencies.*, route and service), without building the
 * record: what a metrics plugin needs in the log phase (api->req_stats).
 * Strings are borrowed, valid until the end of the request; len 0 when
 * absent (no route matched, no service, no name). */
typedef struct sl_req_stats {
    uint64_t request_size;      /* bytes received from the client */
    uint64_t response_size;     /* bytes sent to the client */
    int64_t latency_request_ms; /* latencies.request: first byte in to last byte out */
    int64_t latency_proxy_ms;   /* latencies.proxy: upstream start to first byte, -1 none */
    int64_t latency_kong_ms;    /* latencies.kong: time spent in the gateway */
    int status;                 /* response status */
    sl_str_t route_id, route_name;
    sl_str_t service_id, service_name, service_host;
} sl_req_stats_t;

/* since 1.5: one value of a request's log record as what it is
 * (api->serialize_value_typed), with no JSON text written or parsed. */
typedef enum sl_value_type {
    SL_VALUE_NULL = 0,
    SL_VALUE_BOOL,
    SL_VALUE_INT,
    SL_VALUE_DOUBLE,
    SL_VALUE_STRING,
    SL_VALUE_OBJECT,
    SL_VALUE_ARRAY
} sl_value_type_t;

/* OWNERSHIP: `s` is borrowed from the record, valid until the request's
 * next set_serialize_value, set_serialize_string or (since 1.6)
 * set_serialize_typed call (a value set again replaces the old one) or the
 * end of the request; copy it to keep it.
 * This struct never grows. */
typedef struct sl_value {
    sl_value_type_t type;
    int64_t i;  /* BOOL: 0 or 1; INT; DOUBLE: truncated (clamped); else 0 */
    double d;   /* BOOL, INT, DOUBLE as a number; else 0 */
    sl_str_t s; /* STRING: its bytes (NUL-terminated); else {"", 0} */
    size_t n;   /* OBJECT: members; ARRAY: elements; STRING: bytes; else 0 */
} sl_value_t;

/* since 1.2: a target's health (api->upstream_health), Kong's
 * kong_upstream_target_health states. */
typedef enum sl_target_state {
    SL_TARGET_HEALTHCHECKS_OFF = -1, /* its upstream has no health checks */
    SL_TARGET_UNHEALTHY = 0,
    SL_TARGET_HEALTHY = 1,
    SL_TARGET_DNS_ERROR = 2, /* since 1.6: its host name does not resolve (no address) */
} sl_target_state_t;

/* since 1.2: one address of one target of one upstream: the upstream's
 * name, the target as configured ("host:port") and the address ("ip:port";
 * since 1.6 each address of a host-name target, "" with
 * SL_TARGET_DNS_ERROR), valid during the call. */
typedef void (*sl_upstream_health_fn)(void *arg, sl_str_t upstream, sl_str_t target,
                                      sl_str_t address, sl_target_state_t state);

/* ------------------------------------------------------------------------
 * Upstream selection and failover (since 1.2): the balancer phase.
 *
 * Before every try of the upstream exchange, the first included, the host
 * calls each chain plugin's `balancer` callback (priority order) with an
 * sl_try_info_t describing the try and, from the second try on, how the
 * previous one failed.  See sl_plugin_t.balancer and docs/plugins.md
 * ("Balancer phase and failover") for the whole rule.
 * ------------------------------------------------------------------------ */

/* How the previous try ended (sl_try_info_t.failure).  Kong's
 * failover_criteria map onto these: error = CONNECT_FAILED, WRITE_FAILED,
 * RESET; timeout = CONNECT_TIMEOUT, TIMEOUT; invalid_header =
 * INVALID_RESPONSE; http_NNN = STATUS. */
typedef enum sl_try_failure {
    SL_TRY_FIRST = 0,            /* no previous try: this is the first */
    SL_TRY_CONNECT_FAILED = 1,   /* refused, unreachable, DNS or TLS handshake; nothing sent */
    SL_TRY_CONNECT_TIMEOUT = 2,  /* connect_timeout passed; nothing sent */
    SL_TRY_WRITE_FAILED = 3,     /* the connection failed while the request was being sent */
    SL_TRY_TIMEOUT = 4,          /* write or read timeout before the response head */
    SL_TRY_RESET = 5,            /* closed or reset before the response head */
    SL_TRY_INVALID_RESPONSE = 6, /* the response head was not valid HTTP */
    SL_TRY_STATUS = 7            /* the upstream answered `status` and a plugin's
                                  * header_filter rejected it (api->upstream_retry) */
} sl_try_failure_t;

/* What the balancer callback is told.  OWNERSHIP: the host's, valid during
 * the callback.  Later minors may append members (the host allocates it);
 * read only what your header declares. */
typedef struct sl_try_info {
    int try_number;           /* 1 for the first try, 2 for the first retry ... */
    int retries_left;         /* retries the budget allows after this try */
    sl_try_failure_t failure; /* how the previous try ended (SL_TRY_FIRST on the first) */
    int status;               /* SL_TRY_STATUS: the upstream's status; else 0.  Its
                               * headers are readable with resp_header_get/iter during
                               * the callback (as header_filter left them) */
    int may_have_reached;     /* 1 if bytes of the request were written on the previous
                               * try: a provider may have received (and billed) it.
                               * Always 1 with SL_TRY_STATUS.  Kong's non_idempotent */
    int reused;               /* the previous try used a pooled keep-alive connection */
    sl_str_t ip;              /* previous try's peer (or the host tried), {NULL,0} first */
    int port;
} sl_try_info_t;

/* ------------------------------------------------------------------------
 * The plugin descriptor.
 * ------------------------------------------------------------------------ */

/* since 1.8: the request phases, as bits (api->conf_phases_skip). */
#define SL_PLUGIN_PHASE_ACCESS (1u << 0)
#define SL_PLUGIN_PHASE_BODY (1u << 1)
#define SL_PLUGIN_PHASE_HEADER_FILTER (1u << 2)
#define SL_PLUGIN_PHASE_BODY_FILTER (1u << 3)
#define SL_PLUGIN_PHASE_LOG (1u << 4)
#define SL_PLUGIN_PHASE_BALANCER (1u << 5)

/* Members without a "since" note are since 1.0. */
typedef struct sl_plugin {
    uint32_t abi_major;  /* SL_PLUGIN_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;  /* SL_PLUGIN_ABI_MINOR the plugin was built with */
    const char *name;    /* unique, e.g. "ai-proxy"; what configs refer to */
    const char *version; /* free-form, e.g. "1.0.0" */
    int priority;        /* higher runs first (Kong: ai-proxy 770, file-log 9) */

    /* Parse and validate one plugin instance's `config` object.
     *   json/len  the config as JSON text (an object; "{}" when absent),
     *             NUL-terminated (json[len] == '\0').
     *   *conf     out: the plugin's opaque config, handed back to every phase.
     * Report every problem with api->conf_error(cx, "field.path", msg) and
     * return -1; return 0 on success.  Reporting an error and returning 0
     * still counts as a failure.  On failure the host calls
     * config_free(*conf) if *conf was set.  Runs in the master process
     * (before workers fork) and in `sluice -t`; it must not start threads or
     * open descriptors that should live in workers (do that in init_worker).
     * After fork each worker has its own copy-on-write copy of the config, so
     * per-worker state may be written into it in init_worker.
     * REQUIRED. */
    int (*config_parse)(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len,
                        void **conf);

    /* Free what config_parse returned.  Called in the master when a
     * configuration generation is retired, and never while a request still
     * uses it.  May be NULL if config_parse allocates nothing. */
    void (*config_free)(void *conf);

    /* Worker lifecycle (optional).  `conf` is every instance's config, one
     * call per instance, in configuration order.  init_worker returns 0, or
     * -1 to make the worker exit (logged).  exit_worker runs when a worker
     * stops gracefully (SIGTERM, reload); not after SIGQUIT, a crash, or a
     * failed init_worker. */
    int (*init_worker)(const sl_api_t *api, void *conf);
    void (*exit_worker)(const sl_api_t *api, void *conf);

    /* Request phases (each optional; NULL = not interested).
     *
     * access         after routing, before the request body is read.
     * body           the whole request body is available (api->req_body).
     *                Request bodies are buffered before the upstream is
     *                contacted (Kong's request_buffering default); a route
     *                with `request_buffering: false` whose chain has no
     *                `body` callback streams its body to the upstream.
     * header_filter  the response status and headers are known (upstream's,
     *                or the gateway's for made-up responses) and may be
     *                changed; nothing has been sent to the client yet.
     * body_filter    once per response chunk, in order.  `*chunk` is the
     *                input; to change the output point it at other bytes
     *                (allocated with api->palloc, or plugin memory valid
     *                until the next body_filter call for this request);
     *                set chunk->len = 0 to swallow it.  `eof` is 1 on the
     *                last call (chunk may be empty).  Plugins that change
     *                the length must remove Content-Length in header_filter.
     * log            after the response has ended, for every request that
     *                reached the chain: proxied, short-circuited, failed and
     *                client-aborted ones.  The last chance to read anything.
     */
    sl_status_t (*access)(const sl_api_t *api, sl_req_t *r, void *conf);
    sl_status_t (*body)(const sl_api_t *api, sl_req_t *r, void *conf);
    sl_status_t (*header_filter)(const sl_api_t *api, sl_req_t *r, void *conf);
    sl_status_t (*body_filter)(const sl_api_t *api, sl_req_t *r, void *conf, sl_str_t *chunk,
                               int eof);
    void (*log)(const sl_api_t *api, sl_req_t *r, void *conf);

    /* since 1.2: the balancer phase (Kong's `balancer`), optional.  Called
     * before every try of the upstream exchange, the first included: after
     * access/body (and after a failed try, before the next one), never for
     * requests a plugin or the gateway answers.  `t` says which try this is
     * and how the previous one failed.  In it the plugin may call
     * upstream_set, upstream_retries_set, req_header_set/add/remove,
     * req_body_set (buffered bodies only) and respond(), with the same
     * checks as in access/body; what it sets is what this try sends
     * (changes persist into later tries unless set again).
     * Return SL_STATUS_CONTINUE to send the try; SL_STATUS_RESPOND (after
     * api->respond) or SL_STATUS_ERROR to give up: on the first try ERROR
     * answers 500; after a failed try it answers that failure's 502/504
     * (or, after SL_TRY_STATUS, 502).  SL_STATUS_PENDING is not allowed
     * here (counts as ERROR).  A host older than 1.2 never calls it (read
     * only when the plugin's abi_minor >= 2).
     *
     * It took the first of the 1.0 descriptor's eight reserved slots: size
     * and layout are unchanged, so plugins built for 1.0/1.1 (zeros there)
     * load as before.  Source note: a descriptor written positionally for
     * 1.0/1.1, ending in `{NULL}` for reserved, now puts that NULL into
     * balancer (GCC warns: braces around scalar initializer, missing
     * initializer for reserved); write `NULL, {NULL}` instead, or use
     * designated initializers. */
    sl_status_t (*balancer)(const sl_api_t *api, sl_req_t *r, void *conf, const sl_try_info_t *t);

    /* Reserved for later minors; leave zero. */
    void *reserved[7];
} sl_plugin_t;

/* ------------------------------------------------------------------------
 * The host function table.
 *
 * Return conventions: functions returning int return 0 on success and a
 * negative value on error (-1: bad argument or wrong phase, -2: no memory),
 * unless documented otherwise.  Functions taking `sl_req_t *r` must only be
 * called with a request the host handed to the current callback.
 * ------------------------------------------------------------------------ */

typedef void (*sl_cleanup_fn)(void *arg);
typedef void (*sl_timer_fn)(const sl_api_t *api, sl_req_t *r, void *arg);

/* since 1.1: why a pending phase was cancelled (api->pend): `why` is
 * SL_REQERR_CLIENT_ABORT (the client went away) or
 * SL_REQERR_PENDING_TIMEOUT.  The request is still valid during the call
 * (the log phase follows); after it the plugin must forget `r`, stop what
 * it started for it (callouts bound to r are cancelled by the host), and
 * never call api->resume() for it. */
typedef void (*sl_cancel_fn)(const sl_api_t *api, sl_req_t *r, sl_req_error_t why, void *arg);

/* since 1.1: a worker-level timer's callback (api->worker_timer_start). */
typedef void (*sl_worker_timer_fn)(const sl_api_t *api, sl_worker_timer_t *t, void *arg);

/* since 1.1: an HTTP request sent by the host for a plugin (api->callout).
 * Everything is borrowed for the duration of the api->callout() call only
 * (the host copies it).  This struct never grows: a later minor that needs
 * more adds a new function. */
typedef struct sl_callout_req {
    sl_str_t method;         /* "GET" when empty; a token */
    sl_str_t url;            /* "http://host[:port]/path?query" or "https://..." */
    const sl_str_t *headers; /* nheaders (name, value) pairs: headers[2i], headers[2i+1] */
    size_t nheaders;         /* Host, Content-Length and Connection are the host's */
    sl_str_t body;           /* sent with a Content-Length (none when empty and GET/HEAD) */
    uint64_t timeout_ms;     /* whole exchange, connect included; 0 = 10000 */
    size_t max_body;         /* bigger responses fail with SL_CALLOUT_ETOOBIG; 0 = 1 MiB */
    int tls_verify;          /* https: 0 verifies the peer (default), -1 does not */
} sl_callout_req_t;

/* since 1.1: the answer handed to a callout's callback.  Everything in it
 * (header and body bytes) is valid during the callback only. */
typedef struct sl_callout_resp {
    int status;              /* e.g. 200 */
    const sl_str_t *headers; /* nheaders (name, value) pairs, as received */
    size_t nheaders;
    sl_str_t body; /* de-chunked */
} sl_callout_resp_t;

/* since 1.1: callout failures (the callback's `err`, < 0). */
typedef enum sl_callout_err {
    SL_CALLOUT_OK = 0,
    SL_CALLOUT_EINVAL = -1,    /* bad URL, method or header (also api->callout's NULL) */
    SL_CALLOUT_ENOMEM = -2,    /* out of memory */
    SL_CALLOUT_EDNS = -3,      /* the name did not resolve */
    SL_CALLOUT_ECONNECT = -4,  /* refused, unreachable, reset before an answer */
    SL_CALLOUT_ETLS = -5,      /* handshake or certificate verification failed */
    SL_CALLOUT_ETIMEOUT = -6,  /* timeout_ms passed */
    SL_CALLOUT_EPROTOCOL = -7, /* invalid HTTP, or the peer closed mid-answer */
    SL_CALLOUT_ETOOBIG = -8    /* response body over max_body */
} sl_callout_err_t;

/* since 1.1: a callout's completion.  err is SL_CALLOUT_OK and resp set, or
 * err < 0 and resp NULL.  `r` is the request the callout was bound to, or
 * NULL.  Called exactly once, on the worker loop, never from inside
 * api->callout() itself, and never after api->callout_cancel(). */
typedef void (*sl_callout_fn)(const sl_api_t *api, sl_req_t *r, int err,
                              const sl_callout_resp_t *resp, void *arg);

/* Members without a "since" note are since 1.0. */
struct sl_api {
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t size;              /* sizeof(sl_api_t) as built into the host */
    const char *host_version; /* NUL-terminated, e.g. "0.1.0" */

    /* --- configuration (config_parse only) --- */

    /* Report one problem in the config being parsed.  `field` is the dotted
     * path inside `config` ("model.options.temperature"), or "" for the
     * whole object; the host prefixes it with the plugin's position and
     * adds file and line.  NUL-terminated strings, copied. */
    void (*conf_error)(sl_conf_ctx_t *cx, const char *field, const char *fmt, ...)
        SL_ATTR_PRINTF(3, 4);

    /* --- logging (error log, stderr) --- */

    /* Log a line tagged with the plugin name and, when r is not NULL, the
     * request id.  Safe to call with r == NULL from any callback
     * (init_worker etc.).  Event-loop thread only: see log_ts. */
    void (*log)(sl_req_t *r, sl_log_level_t level, const char *fmt, ...) SL_ATTR_PRINTF(3, 4);

    /* 0-based index of this worker; -1 in the master. */
    int (*worker_id)(void);

    /* --- memory and per-request context --- */

    /* Allocate from the request's pool; freed after the log phase. Never
     * returns NULL (aborts the worker on out-of-memory, like nginx's pool). */
    void *(*palloc)(sl_req_t *r, size_t size);

    /* Register a cleanup run after the log phase (in reverse order). */
    int (*cleanup_add)(sl_req_t *r, sl_cleanup_fn fn, void *arg);

    /* Per-request, per-plugin context pointer (NULL until set).  The host
     * knows which plugin is calling, so plugins never collide. */
    void *(*ctx_get)(sl_req_t *r);
    void (*ctx_set)(sl_req_t *r, void *ctx);

    /* Id of the plugin instance being run (its config `id`, a UUID string,
     * NUL-terminated, valid for the request). */
    sl_str_t (*plugin_id)(sl_req_t *r);

    /* --- the request (as received from the client) ---
     * Returned strings are valid until the end of the request unless the
     * same item is changed. */

    sl_str_t (*req_id)(sl_req_t *r);     /* 32 hex chars (X-Kong-Request-Id) */
    sl_str_t (*req_method)(sl_req_t *r); /* "POST" */
    sl_str_t (*req_scheme)(sl_req_t *r); /* "http" or "https" */
    sl_str_t (*req_host)(sl_req_t *r);   /* Host header without port */
    sl_str_t (*req_path)(sl_req_t *r);   /* path, no query, normalised as Kong does */
    sl_str_t (*req_query)(sl_req_t *r);  /* raw query without '?': "beta=true" (len 0 if none) */
    sl_str_t (*client_ip)(sl_req_t *r);

    /* Headers.  Names are case-insensitive.  get returns the first value
     * (1 = found, 0 = absent).  set replaces every value (adds if absent);
     * add appends one more; remove deletes all.  iter walks every header in
     * order: start with *cursor = 0; returns 1 while it yields one.
     * set/add/remove return -1 for a name that is not an RFC 9110 token or
     * a value with CR, LF or NUL, and once the request went upstream
     * (header_filter and later): the host never forwards what it did not
     * check.  In the balancer phase (since 1.2) set/add/remove work again:
     * they change what the next try sends.  The resp_header_* setters check
     * the same way. */
    int (*req_header_get)(sl_req_t *r, sl_str_t name, sl_str_t *value);
    int (*req_header_set)(sl_req_t *r, sl_str_t name, sl_str_t value);
    int (*req_header_add)(sl_req_t *r, sl_str_t name, sl_str_t value);
    int (*req_header_remove)(sl_req_t *r, sl_str_t name);
    int (*req_header_iter)(sl_req_t *r, size_t *cursor, sl_str_t *name, sl_str_t *value);

    /* The request body, in the body phase (0-length before).  body_set
     * replaces it (copied); Content-Length is fixed by the host.  A body
     * returned by req_body is invalid after req_body_set, and the host
     * releases the body once the upstream has it and has begun to answer
     * (header_filter and later see 0 bytes): copy what you need later.
     * req_body_set returns -1 outside the body phase (the body is not
     * complete before it, and on its way upstream after it), except in the
     * balancer phase (since 1.2) for a buffered body: it is what the next
     * try sends. */
    sl_str_t (*req_body)(sl_req_t *r);
    int (*req_body_set)(sl_req_t *r, const char *data, size_t len);

    /* --- the upstream target ---
     * Defaults come from the route's service.  Any field may be replaced in
     * access or body; scheme "https" enables TLS (SNI = host, peer verified
     * against the system CA store unless the service says tls_verify:false).
     * path is the raw path without query; query without '?'.  upstream_set
     * returns -1 outside access/body/balancer (balancer: since 1.2), and
     * for a host, path or query with CR, LF, NUL, space or other control
     * characters. */
    int (*upstream_get)(sl_req_t *r, sl_str_t *scheme, sl_str_t *host, int *port, sl_str_t *path,
                        sl_str_t *query);
    int (*upstream_set)(sl_req_t *r, sl_str_t scheme, sl_str_t host, int port, sl_str_t path,
                        sl_str_t query);

    /* --- the response ---
     * In header_filter and later: status and headers as they will be/were
     * sent.  In access/body they prepare the response that respond() sends
     * (headers set before or after respond() are kept). */
    int (*resp_status)(sl_req_t *r);
    int (*resp_status_set)(sl_req_t *r, int status);
    int (*resp_header_get)(sl_req_t *r, sl_str_t name, sl_str_t *value);
    int (*resp_header_set)(sl_req_t *r, sl_str_t name, sl_str_t value);
    int (*resp_header_add)(sl_req_t *r, sl_str_t name, sl_str_t value);
    int (*resp_header_remove)(sl_req_t *r, sl_str_t name);
    int (*resp_header_iter)(sl_req_t *r, size_t *cursor, sl_str_t *name, sl_str_t *value);
    sl_resp_source_t (*resp_source)(sl_req_t *r);

    /* Make a complete response from access, body or (since 1.2) balancer
     * (then return SL_STATUS_RESPOND; in balancer the response headers
     * start empty, a rejected try's are dropped).  content_type may be {NULL,0} for none; body is
     * copied.  The response still goes through header_filter, body_filter
     * (the body as one chunk with eof=1) and log, with resp_source() ==
     * SL_SOURCE_GATEWAY. */
    int (*respond)(sl_req_t *r, int status, sl_str_t content_type, sl_str_t body);

    /* Send bytes to the client outside body_filter, e.g. from a timer
     * (keep-alive events on an idle stream).  Only after the response
     * headers were sent and before eof; they bypass the body filters of
     * plugins that run after the caller.  Copied. */
    int (*resp_body_write)(sl_req_t *r, const char *data, size_t len);

    /* Why the request is ending badly, if it is (see sl_req_error_t).  In
     * body_filter with eof=1 this tells a clean end from a truncated one. */
    sl_req_error_t (*req_error)(sl_req_t *r);

    /* --- timing --- */
    int64_t (*req_time)(sl_req_t *r, sl_time_point_t which); /* µs epoch or 0 */
    int64_t (*now_us)(void);                                 /* µs epoch, cached per loop turn */

    /* --- the log record ---
     * set_serialize_value: attach `json` (one valid JSON value, copied) at
     * the dotted key ("ai.proxy.usage", NUL-terminated; segments non-empty
     * and < 256 bytes) of this request's log record; the same key set twice
     * keeps the last value.  Returns -1 if json or the key is invalid.
     * log_serialize: the Kong basic-log-serializer record of this request as
     * one line of compact JSON (no trailing newline), with every serialize
     * value merged in.  `redact` is a NULL-terminated list of extra request
     * header names whose values become "REDACTED" (authorization and
     * proxy-authorization always are).  The string lives in the request
     * pool.  Meant for the log phase. */
    int (*set_serialize_value)(sl_req_t *r, const char *key, sl_str_t json);
    int (*log_serialize)(sl_req_t *r, const char *const *redact, sl_str_t *out);

    /* --- timers ---
     * A one-shot or repeating timer bound to a request: it never fires after
     * the response ended (cancelled automatically before the log phase).
     * repeat_ms = 0 for one-shot.  Returns NULL on failure. */
    sl_timer_t *(*timer_start)(sl_req_t *r, uint64_t timeout_ms, uint64_t repeat_ms, sl_timer_fn fn,
                               void *arg);
    void (*timer_stop)(sl_timer_t *t);

    /* Signals the worker received that plugins may care about: returns a
     * counter bumped on every SIGUSR1 (log reopen).  Thread-safe. */
    uint64_t (*reopen_generation)(void);

    /* Thread-safe logging for plugin threads: one line, written with one
     * write(), tagged with `tag` (e.g. the plugin name). */
    void (*log_ts)(const char *tag, sl_log_level_t level, const char *fmt, ...)
        SL_ATTR_PRINTF(3, 4);

    /* Deferred work: run fn(api, arg) on this worker's event-loop thread
     * soon (next loop iteration).  Thread-safe: plugin threads use it to
     * hand results back to the loop.  Not bound to a request.  Returns 0,
     * or -1 outside a worker. */
    int (*post)(void (*fn)(const sl_api_t *api, void *arg), void *arg);

    /* Response buffering (Kong's response_buffering), from header_filter:
     * hold the response head back until the whole body has gone through
     * every body_filter.  Until then status and headers may still be
     * changed, in body_filter included (e.g. at eof, after finding the
     * upstream's body invalid); the body is sent with a Content-Length.
     * If the upstream breaks mid-body (req_error at eof) and the status is
     * still below 400 when the filters are done, the host answers 502.
     * Costs memory for the whole response: meant for bodies a plugin reads
     * whole anyway.  Returns -1 if the head was already sent. */
    int (*resp_buffer)(sl_req_t *r);

    /* since 1.1: shared memory
     *
     * Named zones shared by every worker (and surviving worker restarts and
     * reloads).  A plugin declares a zone in config_parse with shm_zone;
     * the master creates it before the workers fork.  Declaring the same
     * name, size and value_max again (another instance, or the next
     * configuration after a reload) returns the same zone, contents
     * included; a different size or value_max makes a new, empty zone
     * (the old one lives on until the configurations using it are retired).
     * Two declarations of one name with different sizes in the same
     * configuration are an error.
     *
     * OWNERSHIP: the host owns zones; the sl_shm_t handle is valid as long
     * as the configuration whose config_parse declared it (store it in the
     * plugin's conf).  THREADS: shm_get/set/incr/delete/iter/info are
     * thread-safe and process-safe; they take the zone's lock (a robust
     * process-shared mutex: a process killed while holding it does not
     * wedge the others, the next caller repairs the index and drops an entry
     * the dead process was half-way through writing).  The lock is held for
     * one hash lookup and a copy; never for a callback.
     * EXPIRY: ttl_ms = 0 never expires; otherwise the entry is invisible
     * once ttl_ms milliseconds have passed (monotonic clock) and its slot is
     * reclaimed by the next writer that needs space, or by shm_iter.
     * FULL: a write that needs a new slot when none is free (after
     * reclaiming expired ones) returns SL_SHM_ENOSPC and changes nothing.
     * Existing entries are never evicted to make room. */

    /* config_parse only.  name: NUL-terminated, 1..64 bytes of
     * [A-Za-z0-9_.-]; size: bytes, 16 KiB..1 GiB; value_max: the largest
     * string value (0 for a zone of numbers only), at most 65536.  Returns
     * NULL after reporting a config error (bad arguments, mmap failure). */
    sl_shm_t *(*shm_zone)(sl_conf_ctx_t *cx, const char *name, size_t size, size_t value_max);

    /* Look key up.  A string is copied into buf (up to cap bytes) and its
     * length stored in *len; returns SL_SHM_STRING, or SL_SHM_ETRUNC when
     * cap is too small (nothing copied, *len = needed).  A number is stored
     * in *num; returns SL_SHM_NUMBER.  SL_SHM_NOT_FOUND if absent or
     * expired.  len/num may be NULL when not wanted. */
    int (*shm_get)(sl_shm_t *z, sl_str_t key, char *buf, size_t cap, size_t *len, double *num);

    /* Store a string value (copied), replacing any entry of that key (its
     * expiry too).  0, -1 (key or value too long), SL_SHM_ENOSPC. */
    int (*shm_set)(sl_shm_t *z, sl_str_t key, sl_str_t value, uint64_t ttl_ms);

    /* Atomically add delta to the number at key and store the result in
     * *out (may be NULL).  An absent or expired key starts at 0 with expiry
     * ttl_ms (0 = none); an existing number keeps its expiry (fixed windows:
     * incr("rl:<window start>", 1, window_ms)).  Exact across processes for
     * integers up to 2^53.  0, -1, SL_SHM_ENOSPC, SL_SHM_ETYPE. */
    int (*shm_incr)(sl_shm_t *z, sl_str_t key, double delta, uint64_t ttl_ms, double *out);

    /* Remove key: 1 removed, SL_SHM_NOT_FOUND, -1. */
    int (*shm_delete)(sl_shm_t *z, sl_str_t key);

    /* Call fn for every live entry, for exporters.  Entries are copied out
     * in batches under the lock and fn runs without it, so fn may call any
     * shm_* function.  Each entry present for the whole iteration is seen
     * exactly once; entries added or removed meanwhile may or may not be.
     * Costs O(capacity).  Returns 0, 1 if fn stopped it, -2 no memory. */
    int (*shm_iter)(sl_shm_t *z, sl_shm_iter_fn fn, void *arg);

    /* Describe zone z, or, with z == NULL, the index-th zone of the
     * process (0, 1, ... until -1): the shared-memory gauges of an
     * exporter.  0 or -1. */
    int (*shm_info)(sl_shm_t *z, size_t index, sl_shm_info_t *out);

    /* since 1.1: platform (pausing a phase, the worker loop, timers, callouts) */

    /* Pause the running access or body phase (since 1.1).  Call from the
     * handler, then return SL_STATUS_PENDING.  timeout_ms bounds the wait
     * (0 = the host's default, 60000 ms); when it passes, the host calls
     * on_cancel (if not NULL) with SL_REQERR_PENDING_TIMEOUT, logs which
     * plugin and phase timed out, and answers 504.  If the client goes away
     * meanwhile, on_cancel runs with SL_REQERR_CLIENT_ABORT, then the log
     * phase.  Returns -1 outside access/body, or when called twice for one
     * pause.  Returning SL_STATUS_PENDING without pend() pauses with the
     * defaults and no on_cancel.  While an access phase waits, the request
     * body is buffered (never streamed), like Kong's request_buffering.
     * Event-loop thread only. */
    int (*pend)(sl_req_t *r, uint64_t timeout_ms, sl_cancel_fn on_cancel, void *arg);

    /* End the pause (since 1.1): status SL_STATUS_CONTINUE runs the next
     * plugins and the rest of the request; SL_STATUS_RESPOND sends the
     * response prepared with api->respond() (call it first); SL_STATUS_ERROR
     * answers 500.  Call once, from any later callback on this worker
     * (a callout's, a timer's, an api->post function), or from the handler
     * itself before it returns SL_STATUS_PENDING.  It returns at once: the
     * request goes on at the next loop turn, so `r` stays valid until the
     * current callback returns.  Returns -1 if r is not paused (already
     * resumed, or cancelled: after on_cancel never call it). */
    int (*resume)(sl_req_t *r, sl_status_t status);

    /* The worker's libuv loop (since 1.1), as a `uv_loop_t *`, for
     * libuv-based libraries (hiredis's adapter, c-ares, own sockets); NULL in
     * the master (config_parse).  Handles a plugin opens on it are its own:
     * close them in exit_worker.  Never block the loop (no sleeping, no
     * synchronous network or disk waits: every request of the worker
     * stalls), never fork, never call libuv from another thread (use
     * api->post from threads).  The libuv the host links is the system's
     * libuv1; a plugin using it links the same. */
    void *(*worker_loop)(void);

    /* Worker-level timers (since 1.1), not bound to any request: fn runs
     * after timeout_ms, then every repeat_ms (0 = once).  The plugin owns
     * the handle and stops it with worker_timer_stop (which frees it; fn is
     * never called after, and stopping from inside fn is allowed).  A one-
     * shot timer that fired stays allocated until stopped.  Timers still
     * running when the worker exits are freed after exit_worker, without
     * being called.  NULL in the master or on bad arguments.  Event-loop
     * thread only. */
    sl_worker_timer_t *(*worker_timer_start)(uint64_t timeout_ms, uint64_t repeat_ms,
                                             sl_worker_timer_fn fn, void *arg);
    void (*worker_timer_stop)(sl_worker_timer_t *t);

    /* HTTP callout (since 1.1): the host sends `req` (copied) over its own
     * upstream machinery (connection pool, DNS cache, TLS with SNI and peer
     * verification against the system CA store) and calls fn once with the
     * answer or an error code.  `r` binds the callout to a request (usually
     * the one whose phase is pending): it is cancelled when the request
     * ends, before the log phase.  r == NULL makes a worker-level callout
     * (from init_worker on, timers, api->post functions), cancelled when the
     * worker exits.  Returns a handle, valid until fn is called or the
     * callout is cancelled, or NULL when the request is invalid (bad URL,
     * header names or values with CR/LF/NUL, outside a worker; nothing is
     * called then).  Redirects are not followed.  Event-loop thread only. */
    sl_callout_t *(*callout)(sl_req_t *r, const sl_callout_req_t *req, sl_callout_fn fn, void *arg);
    /* Abandon a callout (since 1.1); fn will not be called.  NULL is ignored. */
    void (*callout_cancel)(sl_callout_t *c);
    /* A short English text for an sl_callout_err_t (since 1.1), static. */
    const char *(*callout_strerror)(int err);

    /* ---- since 1.1: identity ----
     * Kong's consumers and credentials.  Strings returned here live as long
     * as the handle they come from (see sl_consumer_t).  Event-loop thread
     * only. */

    /* The matched route and its service: 1 and the id (UUID) and name
     * ({NULL,0} if the entity has none), or 0 when there is none (no route
     * matched; a route without a service).  Any pointer may be NULL. */
    int (*route_info)(sl_req_t *r, sl_str_t *id, sl_str_t *name);
    int (*service_info)(sl_req_t *r, sl_str_t *id, sl_str_t *name);

    /* The consumer and credential the request is authenticated as (NULL
     * until an auth plugin called consumer_set; the credential is NULL for an
     * anonymous consumer). */
    const sl_consumer_t *(*consumer_get)(sl_req_t *r);
    const sl_credential_t *(*credential_get)(sl_req_t *r);

    /* A consumer's id, username and custom_id ({NULL,0} when not set); a
     * credential's id and owner.  Return -1 for a NULL handle.  Pointers may
     * be NULL. */
    int (*consumer_info)(const sl_consumer_t *c, sl_str_t *id, sl_str_t *username,
                         sl_str_t *custom_id);
    int (*credential_info)(const sl_credential_t *cred, sl_str_t *id, const sl_consumer_t **owner);

    /* Look up a consumer by id or username (Kong's `anonymous` setting), or
     * a credential by its secret: kind "keyauth" looks in keyauth_credentials
     * by key.  Secrets are found by hash and compared in constant time.
     * NULL when not found. */
    const sl_consumer_t *(*consumer_find)(sl_req_t *r, sl_str_t id_or_username);
    const sl_credential_t *(*credential_find)(sl_req_t *r, sl_str_t kind, sl_str_t secret);

    /* Kong's kong.client.authenticate: the request is now `c` (with `cred`,
     * or NULL for anonymous).  In access or body, or from a timer or callout
     * callback while the caller's access/body phase is paused (an identity
     * service's answer, before resume).  Plugins that run after
     * the caller are re-resolved for this consumer with Kong's precedence, so
     * a plugin scoped to the consumer replaces the route/service/global one
     * for every later phase; plugins that already ran keep their instance.
     * Returns -1 for a NULL consumer, a credential of another consumer, or a
     * wrong phase.  Headers (X-Consumer-ID...) are the plugin's business. */
    int (*consumer_set)(sl_req_t *r, const sl_consumer_t *c, const sl_credential_t *cred);

    /* ---- since 1.1: config schemas ----
     * Check `json` (config_parse's text) against `schema`, reporting every
     * problem through cx with its path; on success *block is a new block of
     * schema->size bytes filled as described above and 0 is returned.  On
     * failure -1 and *block = NULL (nothing to free).  config_parse only. */
    int (*conf_schema_parse)(sl_conf_ctx_t *cx, const sl_schema_t *schema, const char *json,
                             size_t len, void **block);
    /* Free a block from conf_schema_parse (strings, arrays, the block).  NULL
     * is fine.  Any thread. */
    void (*conf_schema_free)(const sl_schema_t *schema, void *block);
    /* since 1.1: introspection */

    /* The entities the running plugin instance is attached to (since 1.1):
     * its route's and service's ids ({NULL,0} when the instance is not
     * scoped to one; both empty for a global plugin).  Counters that must
     * be shared the way Kong shares them (rate-limiting's keys) are named
     * after these, not after the matched route.  Any pointer may be NULL;
     * returns -1 outside a plugin callback. */
    int (*plugin_scope)(sl_req_t *r, sl_str_t *route_id, sl_str_t *service_id);

    /* Read back a value of this request's log record (since 1.1), set by
     * any plugin with set_serialize_value: `key` is dotted ("ai.proxy.usage"
     * or a part of it, "ai.proxy.usage.total_tokens").  1 and *json = the
     * value as compact JSON text (in the request pool, valid for the
     * request), or 0 when absent.  Meant for plugins that act on another's
     * results after it ran (a quota charging ai-proxy's token counts). */
    int (*serialize_value_get)(sl_req_t *r, const char *key, sl_str_t *json);

    /* The `config` of the instance of plugin `name` in this request's chain
     * (since 1.1), as the compact JSON text it was parsed from (after
     * environment substitution): 1 and *json (valid as long as the
     * configuration generation, i.e. for the request), or 0 when no
     * instance of that plugin runs for this request.  For plugins that
     * work with another, e.g. a token quota that needs ai-proxy's provider
     * and client format before ai-proxy has run.  Pointers into *json are
     * stable, so a plugin may cache what it derives, keyed by json.ptr. */
    int (*chain_plugin_config)(sl_req_t *r, const char *name, sl_str_t *json);

    /* The largest request body this request may have (since 1.1), declared
     * in the access phase, before the body is read: a declared
     * Content-Length above it is answered 413 before any body byte is
     * read, a chunked body is refused (413) as soon as it passes it.  The
     * smallest of the host's max_body_size and every declaration applies;
     * 0 declares nothing.  Returns 0, or -1 once the body has been read. */
    int (*req_body_limit)(sl_req_t *r, uint64_t max);

    /* since 1.1: metrics and node status */

    /* config_parse only: add fn(api, arg, ...) to GET /metrics of the
     * status listener (status_listen) while this configuration is served.
     * One exporter per function per configuration: registering the same fn
     * again (a second instance of the plugin) is ignored and returns 1, so
     * an exporter writes its families once.  `arg` is the plugin's (e.g.
     * its conf; it must live as long as the configuration).  0, 1 or -1. */
    int (*metrics_register)(sl_conf_ctx_t *cx, sl_metrics_fn fn, void *arg);

    /* Fill *out with the node's counters, summed over every worker (see
     * sl_node_status_t).  Worker processes only; thread-safe.  0 or -1. */
    int (*node_status)(sl_node_status_t *out);

    /* The request's sizes, latencies, route and service (sl_req_stats_t),
     * as the log record has them.  Meant for the log phase.  0 or -1. */
    int (*req_stats)(sl_req_t *r, sl_req_stats_t *out);

    /* ---- since 1.2: upstream selection and failover ----
     * The retry budget: a request makes at most 1 + retries tries (not
     * counting the keep-alive race's silent resend, docs/upstream.md).  It
     * starts at the service's `retries` (Kong's default 5). */

    /* Kong's kong.service.set_retries: set this request's budget, 0..32767,
     * in access, body or balancer.  -1 otherwise. */
    int (*upstream_retries_set)(sl_req_t *r, int retries);

    /* Reject the upstream response being filtered and fail over (since
     * 1.2): from header_filter of an upstream response (resp_source ==
     * SL_SOURCE_UPSTREAM), while no byte went to the client and the budget
     * has a retry left.  Returns 0: the host stops the header_filter chain
     * after the caller (return SL_STATUS_CONTINUE), discards the response
     * (drains it if it is already complete in what was read, else closes
     * the connection), never runs body_filter for it, and runs the
     * balancer phase again with failure SL_TRY_STATUS.  Returns -1 when
     * that is not possible (wrong phase, a byte already sent, budget used
     * up, a streamed request body that can no longer be replayed): the
     * response goes on normally, so the caller handles it as it would
     * without failover (e.g. translates the provider's 429).  Call it only
     * when you will pick a next target: the discarded response is gone. */
    int (*upstream_retry)(sl_req_t *r);

    /* Kong's kong.service.set_timeouts (since 1.2): this request's upstream
     * connect, write and read timeouts in ms (1..2147483646; 0 keeps the
     * current one), instead of the service's, from the next try on: in
     * access, body or balancer (a per-target timeout).  -1 otherwise. */
    int (*upstream_timeouts_set)(sl_req_t *r, int connect_ms, int write_ms, int read_ms);

    /* ---- since 1.2: Kong's upstreams ----
     * Call fn for every target of every upstream of the configuration this
     * worker serves, in configuration order, with its health as the node's
     * workers share it (what Kong's kong_upstream_target_health shows).
     * Since 1.6 fn runs once per address of a target: a host-name target
     * once per address it resolves to in this worker's balancer, or once
     * with address "" and SL_TARGET_DNS_ERROR when it resolves to none (a
     * plugin built before 1.6 sees that value as unknown).
     * Worker processes only (-1 elsewhere); returns the number of targets. */
    int (*upstream_health)(sl_upstream_health_fn fn, void *arg);

    /* ---- since 1.3: node settings and the request's protocol ---- */

    /* The node setting `name` (its settings-file key, e.g.
     * "tracing_sampling_rate"; sluice --help lists them) as the node runs
     * with it: the text the strongest source gave (flag > SLUICE_*
     * variable > settings file; a repeated flag's values joined with ','),
     * else the default.  NULL for an unknown name or a setting that is
     * unset and has no default (pid).  OWNERSHIP: the host's,
     * NUL-terminated; never free or change it.  It stays valid and the
     * same for the life of the process: settings are read once at start
     * (a reload keeps them), so read them in config_parse or init_worker
     * and keep what you derive.  Works in the master (config_parse) and
     * the workers.  THREADS: thread-safe (read-only after start). */
    const char *(*setting_get)(const char *name);

    /* The HTTP version of the client's request line (since 1.3): "1.0" or
     * "1.1" (static text).  Kong's ngx.req.http_version(). */
    sl_str_t (*req_http_version)(sl_req_t *r);

    /* ---- since 1.3: counting several series at once ----
     * shm_incr of deltas[i] to keys[i] for every i < n (ttl_ms for the
     * entries it creates), under one lock: what a metrics plugin counts per
     * request (a dozen series) takes the zone's lock once.  A key that
     * fails (bad key, zone full, a string entry) does not stop the others.
     * Returns how many keys failed (0: all counted), or -1 (bad zone or
     * arrays: nothing counted).  THREADS: any thread, any process. */
    int (*shm_incr_many)(sl_shm_t *z, const sl_str_t *keys, const double *deltas, size_t n,
                         uint64_t ttl_ms);

    /* ---- since 1.4: checking a part of a config ----
     * conf_schema_parse's checker with the errors handed to the caller:
     * every problem goes to err(ud, path, msg), `path` relative to `json`.
     * For a plugin that checks a part of its config on its own (one of
     * several targets, the values of a map): it puts its prefix before the
     * path ("targets[2]." + "model.name") and passes it on to conf_error,
     * or collects it in a unit test.  schema->check is not called (it
     * reports through a cx): check rules across fields after it.  0 and
     * *block filled as conf_schema_parse fills it (free it with
     * conf_schema_free), or -1 and *block = NULL.  THREADS: any thread, at
     * config time (it allocates and stops the process when out of memory,
     * as the config loader does). */
    int (*conf_schema_check)(const sl_schema_t *schema, const char *json, size_t len,
                             sl_schema_err_fn err, void *ud, void **block);

    /* ---- since 1.4: a string into the log record ----
     * set_serialize_value for a string: `value` (any bytes, copied; the
     * record escapes them) at the dotted key (the same rules), with no JSON
     * to parse.  The record's tree is built from it only when read
     * (log_serialize, serialize_value_get), so a value set on every request
     * (opentelemetry's trace_id.w3c) costs a copy.  Values keep the order
     * of their calls, set_serialize_value's included.  0, or -1 for an
     * invalid key.  The loop thread, during the request's callbacks. */
    int (*set_serialize_string)(sl_req_t *r, const char *key, sl_str_t value);

    /* ---- since 1.4: several response headers at once ----
     * resp_header_set(names[i], values[i]) for every i < n, checked first
     * and done in one pass over the response's fields: fields already
     * there with one of the names are removed and the new ones appended in
     * order (a name given twice: the later value).  For a plugin that sets
     * a handful per request (rate-limiting's X-RateLimit-*).  Both arrays
     * and their bytes copied.  0, or -1 with nothing set (head sent, a bad
     * name or value).  THREADS: the request's worker loop. */
    int (*resp_headers_set)(sl_req_t *r, const sl_str_t *names, const sl_str_t *values, size_t n);

    /* ---- since 1.4: a new request body handed over, not copied ----
     * req_body_set without the copy, for a plugin that wrote the whole new
     * body itself (ai-proxy's translation: 50 KB per Claude Code turn).
     * OWNERSHIP: `data` (len bytes) must come from malloc or realloc; on 0
     * the host owns it and frees it with free() when it releases the body
     * (the plugin may read it until the body phase ends).  On -1 (where
     * req_body_set fails, or data NULL) nothing changed and the plugin
     * still owns it.  THREADS: the request's worker loop. */
    int (*req_body_take)(sl_req_t *r, char *data, size_t len);

    /* ---- since 1.5: several request headers at once ----
     * req_header_set(names[i], values[i]) for every i < n, and
     * req_header_remove(names[i]) where values[i].ptr is NULL, checked
     * first and done in one pass over the request's fields: fields already
     * there with one of the names are removed and the new ones appended in
     * order (a name given twice: the later entry).  For an auth plugin
     * that sets the consumer's headers on every request (key-auth's
     * X-Consumer-*, a custom id that may be absent).  Both arrays and
     * their bytes copied.  0, or -1 with nothing changed (where
     * req_header_set fails, a bad name or value).  THREADS: the request's
     * worker loop. */
    int (*req_headers_set)(sl_req_t *r, const sl_str_t *names, const sl_str_t *values, size_t n);

    /* ---- since 1.5: log record values without JSON text ----
     * serialize_value_typed: serialize_value_get for a reader that wants
     * the value itself (a token count, a model name): the value at the
     * dotted key into *out (sl_value_t), nothing written or parsed.  1, or
     * 0 when absent (out->type NULL).  A metrics or tracing plugin reads
     * ai-proxy's ai.proxy.usage.prompt_tokens this way on every request.
     * serialize_value_keys: the member names of the object at the dotted
     * key, in order: returns how many it has (the first `cap` of them in
     * names[], borrowed like sl_value_t's `s`), 0 when absent or empty,
     * -1 when the value there is not an object.  For a reader that walks
     * a namespace (Kong's prometheus: every `ai.<plugin>`).  THREADS: the
     * request's worker loop. */
    int (*serialize_value_typed)(sl_req_t *r, const char *key, sl_value_t *out);
    int (*serialize_value_keys)(sl_req_t *r, const char *key, sl_str_t *names, size_t cap);

    /* ---- since 1.6: log record values set without JSON text ----
     * set_serialize_value for a value the plugin holds as what it is (a
     * token count, a cost, a model name): *v at the dotted key, by
     * v->type: NULL; BOOL (i != 0); INT (i); DOUBLE (d, written in the
     * record with 14 significant digits as Kong's cjson writes numbers:
     * 0.25, 2, 1e+20; read back typed it is d itself); STRING (s: any
     * bytes, copied, escaped when written; n is ignored); OBJECT and
     * ARRAY: an empty one (set members at longer keys).  Like
     * set_serialize_string it only copies: the record's tree is built
     * when something reads it, so a plugin that publishes a dozen
     * statistics per request (ai-proxy's ai.proxy.usage and
     * ai.proxy.meta) costs a dozen small copies when nothing logs.
     * Values keep the order of their calls, the other setters' included;
     * setting a key again replaces its value (an OBJECT set at
     * "ai.proxy.usage" replaces the whole object).  0, or -1 with nothing
     * set (v NULL, an empty or over-long key segment, an unknown type, a
     * NaN or infinite DOUBLE, a NULL string with a length).  THREADS: the
     * request's worker loop. */
    int (*set_serialize_typed)(sl_req_t *r, const char *key, const sl_value_t *v);

    /* ---- since 1.7: request headers prepared once ----
     * header_block_new: what req_headers_set(r, names, values, n) would
     * do (values[i].ptr NULL: remove names[i]), with every name and value
     * checked now, once, and the outcome kept in a block: the distinct
     * names to remove and the fields to append, their bytes copied.  NULL
     * for a bad name or value (the checks of req_header_set), or names or
     * values NULL with n > 0.  For headers that are the same on many
     * requests: an auth plugin's consumer headers, built per credential
     * the first time it is seen.
     * req_headers_apply: req_headers_set with the block's fields, without
     * checking them again (one pass over the request's fields that
     * compares only names of a block name's length; the block's bytes
     * copied into the request in one piece).  0, or -1 with nothing
     * changed where req_header_set fails, or b NULL.
     * header_block_free(b): NULL is allowed.
     * OWNERSHIP: the block is the plugin's; requests keep copies, so it
     * may be freed while requests it was applied to still run.  THREADS:
     * new and free on any thread (config_parse, init_worker, a phase);
     * apply on the request's worker loop. */
    sl_header_block_t *(*header_block_new)(const sl_str_t *names, const sl_str_t *values, size_t n);
    void (*header_block_free)(sl_header_block_t *b);
    int (*req_headers_apply)(sl_req_t *r, const sl_header_block_t *b);

    /* ---- since 1.8: phases an instance does not need ----
     * config_parse only: the instance being parsed never needs the
     * callbacks of `phases` (SL_PLUGIN_PHASE_* bits), so the host never
     * calls them for it.  For a callback only some configurations use:
     * key-auth's body callback matters only with key_in_body.  A body
     * callback the instance skips does not make the host buffer request
     * bodies: a route with request_buffering false whose instances all
     * skip (or have no) body callback streams its body to the upstream.
     * Calls add up (a phase skipped stays skipped for the instance).  0,
     * or -1 with nothing changed for a bit that names no phase or a NULL
     * cx.  A plugin checks api->abi_minor >= 8 first: an older host calls
     * every callback the descriptor has, as it always did, so skipping is
     * only ever a saving, never what makes the plugin correct. */
    int (*conf_phases_skip)(sl_conf_ctx_t *cx, unsigned phases);

    /* ---- since 1.8: the log record without its copy ----
     * log_record: log_serialize's record, the same bytes, left in a buffer
     * of the worker's loop thread instead of copied into the request pool:
     * `*out` stays valid until the next log_record or log_serialize call on
     * that thread, so the plugin copies what it keeps before its log
     * callback returns (file-log copies it into its writer's queue).  The
     * copy it saves is a pool block of its own on most requests.  0, or -1
     * as log_serialize.  THREADS: the request's worker loop (the log
     * phase).  A plugin checks api->abi_minor >= 8 first and calls
     * log_serialize on an older host. */
    int (*log_record)(sl_req_t *r, const char *const *redact, sl_str_t *out);
};

/* Convenience for plugins: compare an sl_str_t with a C literal. */
#define SL_STR_EQ(s, lit)                                                                          \
    ((s).len == sizeof(lit) - 1 && memcmp((s).ptr, (lit), sizeof(lit) - 1) == 0)

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_PLUGIN_H */
