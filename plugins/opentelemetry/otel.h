/* otel.h - internals shared by the opentelemetry plugin's files (not
 * installed).
 *
 * otel.c         the descriptor and the phases: trace context per request
 *                (access), the trace id response header (header_filter),
 *                finish reasons of AI answers (body_filter), spans (log)
 * otel_conf.c    Kong's schema.lua as a field table, the propagation
 *                parameters Kong derives from it, the resource attributes
 * propagation.c  trace context headers: extract (w3c, b3, jaeger, ot) and
 *                inject (w3c, b3, b3-single, jaeger, ot)
 * spans.c        the request's spans as OTLP protobuf (protobuf-c)
 * exporter.c     the per-worker queue and its batches POSTed to
 *                traces_endpoint (worker timers, worker-level callouts)
 * otlp.proto     the OTLP messages used (protoc-c makes otlp.pb-c.[ch])
 */

#ifndef SL_OTEL_H
#define SL_OTEL_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/plugin.h>

/* Trace context formats (Kong's propagation formats that sluice speaks). */
typedef enum otel_fmt {
    OTEL_FMT_NONE = 0,
    OTEL_FMT_W3C,
    OTEL_FMT_B3,
    OTEL_FMT_B3_SINGLE,
    OTEL_FMT_JAEGER,
    OTEL_FMT_OT,
    OTEL_FMT_PRESERVE, /* inject only: the extracted format, else default_format */
    OTEL_FMT_MAX
} otel_fmt_t;

#define OTEL_MAX_FMTS 8

/* Kong's queue record (kong/tools/queue_schema.lua). */
typedef struct otel_queue_conf {
    int64_t max_batch_size;
    double max_coalescing_delay; /* s */
    int64_t max_entries;
    int64_t max_bytes; /* 0: unset */
    double max_retry_time;
    double initial_retry_delay;
    double max_retry_delay;
    int64_t concurrency_limit; /* 1 or -1 */
} otel_queue_conf_t;

typedef struct otel_prop_conf {
    sl_conf_array_t extract; /* char * */
    sl_conf_array_t clear;   /* char * */
    sl_conf_array_t inject;  /* char * */
    char *default_format;
} otel_prop_conf_t;

/* The block api->conf_schema_parse fills. */
typedef struct otel_schema_block {
    char *traces_endpoint;
    char *endpoint; /* deprecated alias */
    char *logs_endpoint;
    sl_conf_array_t headers;             /* sl_conf_pair_t */
    sl_conf_array_t resource_attributes; /* sl_conf_pair_t */
    otel_queue_conf_t queue;
    char *batch_span_count;  /* JSON, deprecated */
    char *batch_flush_delay; /* JSON, deprecated */
    int64_t connect_timeout;
    int64_t send_timeout;
    int64_t read_timeout;
    char *http_response_header_for_traceid;
    char *header_type;
    char *sampling_rate; /* JSON number or NULL */
    otel_prop_conf_t propagation;
} otel_schema_block_t;

struct otel_exporter;

/* One instance's configuration. */
typedef struct otel_conf {
    otel_schema_block_t *s;
    const char *endpoint; /* traces_endpoint (or the deprecated endpoint) */
    double sampling_rate; /* sampling_rate, 1.0 when unset (see docs) */
    int have_rate;        /* sampling_rate was set */
    otel_fmt_t extract[OTEL_MAX_FMTS];
    size_t n_extract;
    otel_fmt_t inject[OTEL_MAX_FMTS];
    size_t n_inject;
    otel_fmt_t default_format;
    sl_str_t *headers;    /* callout headers: name, value pairs */
    size_t n_headers;     /* pairs */
    size_t n_own_headers; /* the first ones, values malloc'd */
    char **res_keys;      /* resource attributes after Kong's defaults and overrides */
    char **res_values;
    size_t n_res;
    uint64_t timeout_ms;      /* connect + send + read */
    sl_shm_t *zone;           /* export counters shared by the workers */
    struct otel_exporter *ex; /* per worker, from init_worker */
} otel_conf_t;

/* Kong's node tracing settings (kong.conf's tracing_instrumentations and
 * tracing_sampling_rate, read with api->setting_get, ABI 1.3), per
 * process: kong/observability/tracing/instrumentation.lua's init. */
typedef struct otel_node {
    int spans;    /* 0: "off", propagation only (nothing sampled or recorded) */
    int balancer; /* "all" or "balancer": kong.balancer spans */
    double rate;  /* tracing_sampling_rate: instances without sampling_rate */
} otel_node_t;

extern otel_node_t otel_node;
/* Read the settings into otel_node (config_parse, init_worker). */
void otel_node_load(const sl_api_t *api);

extern const sl_schema_t otel_schema;

int otel_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len,
                    void **conf);
void otel_conf_free(void *conf);
/* node id and version into the resource (init_worker: node_status) */
int otel_conf_resource_finish(const sl_api_t *api, otel_conf_t *c);

/* ---- trace context ---- */

typedef struct otel_tctx {
    uint8_t trace_id[16];
    uint8_t span_id[8]; /* the client's span (our parent) */
    int have_span;
    int sampled;    /* -1 unknown, 0, 1 */
    int debug;      /* b3 X-B3-Flags: 1 */
    otel_fmt_t fmt; /* where it came from */
} otel_tctx_t;

/* Extract from the request headers with the formats in order (first found
 * wins).  1 found (ctx filled), 0 none.  Invalid headers are ignored. */
int otel_extract(const sl_api_t *api, sl_req_t *r, const otel_fmt_t *fmts, size_t n,
                 otel_tctx_t *out);

/* One header's parse, for extract and the fuzz target: 1 valid, 0 not. */
int otel_parse_traceparent(sl_str_t v, otel_tctx_t *out);
int otel_parse_b3_single(sl_str_t v, otel_tctx_t *out);
int otel_parse_uber_trace_id(sl_str_t v, otel_tctx_t *out);
/* 16 or 32 hex digits (a 64-bit id is left-padded with zeros): 1 / 0 */
int otel_parse_trace_id(sl_str_t v, uint8_t out[16]);
int otel_parse_span_id(sl_str_t v, uint8_t out[8]);

/* Set the headers of format f upstream: the trace id (as its 32 hex
 * digits, written once per request by the caller), our span as parent of
 * the upstream's, `parent` (the client's span, may be NULL) as b3/jaeger's
 * parent id.  0 or -1. */
int otel_inject(const sl_api_t *api, sl_req_t *r, otel_fmt_t f, const char trace_hex[32],
                const uint8_t span_id[8], const uint8_t *parent, int sampled, int debug);

void otel_hex(const uint8_t *p, size_t n, char *out); /* 2n chars, no NUL */
const char *otel_fmt_name(otel_fmt_t f);

/* ---- the request ---- */

#define OTEL_MAX_FINISH 4
#define OTEL_MAX_TRIES 8

/* One try of the upstream exchange (the balancer phase, ABI 1.2): one
 * kong.balancer span each. */
typedef struct otel_try {
    uint8_t span_id[8];
    int64_t start_us, end_us; /* end 0: the last try, ends with the exchange */
    int failure;              /* sl_try_failure_t of this try, 0: did not fail */
    int status;               /* SL_TRY_STATUS: the status that was refused */
    char ip[48];              /* its peer, when the host said */
} otel_try_t;

typedef struct otel_req {
    uint8_t trace_id[16];
    uint8_t root_id[8];     /* the "kong" span */
    uint8_t balancer_id[8]; /* the "kong.balancer" span, the upstream's parent */
    uint8_t parent_id[8];   /* the client's span */
    int have_parent;
    int sampled;
    sl_str_t tracestate;
    otel_fmt_t from; /* the format the context came in, or NONE */
    otel_try_t
        *tries;      /* try1, or OTEL_MAX_TRIES from the request's pool once a second try starts */
    otel_try_t try1; /* the usual case: one try */
    int ntries;      /* 0: no balancer phase (one span from the request's times) */
    int ai;          /* ai-proxy runs for this request */
    /* finish reasons seen in the client-format answer */
    char finish[OTEL_MAX_FINISH][32];
    int n_finish;
    unsigned match_stop, match_finish; /* matcher states */
    int capture;                       /* capturing into finish[n_finish] */
    size_t cap_len;
} otel_req_t;

void otel_random_seed(void);
void otel_random_bytes(uint8_t *p, size_t n);
int otel_sample(const uint8_t trace_id[16], double rate);

/* The body scanner for finish reasons ("stop_reason":"…" in Anthropic
 * answers, "finish_reason":"…" in OpenAI ones). */
void otel_scan_finish(otel_req_t *q, const char *p, size_t n);

/* ---- spans (spans.c) ---- */

/* Encode this request's spans and queue them (log phase). */
void otel_spans_record(const sl_api_t *api, sl_req_t *r, otel_conf_t *c, otel_req_t *q);

/* ---- export (exporter.c) ---- */

int otel_exporter_start(const sl_api_t *api, otel_conf_t *c);
void otel_exporter_stop(const sl_api_t *api, otel_conf_t *c);
/* Room at the end of the queue to encode one span of at most `bound`
 * bytes into, or NULL: the queue is full (the span is counted as dropped)
 * or there is no exporter.  Valid until the next call. */
uint8_t *otel_exporter_reserve(otel_conf_t *c, size_t bound);
/* Queue the span written into the reserved room (len <= bound); dropped
 * and counted past queue.max_bytes. */
void otel_exporter_commit(otel_conf_t *c, size_t len);
/* GET /metrics: sluice_opentelemetry_* counters */
void otel_metrics(const sl_api_t *api, void *arg, sl_write_fn write, void *w);

#define OTEL_ZONE "opentelemetry"
#define OTEL_K_EXPORTED "spans_exported"
#define OTEL_K_DROPPED_FULL "spans_dropped_queue_full"
#define OTEL_K_DROPPED_FAILED "spans_dropped_export_failed"
#define OTEL_K_BATCH_ERRORS "export_errors"

#endif
