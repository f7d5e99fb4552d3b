/* prometheus.h - Kong's prometheus plugin for sluice: shared definitions of
 * the recorder (prometheus.c, log phase) and the exporter (exporter.c,
 * GET /metrics on the status listener).
 *
 * Every series lives in one shared-memory zone ("prometheus_metrics",
 * numbers only), so counts are exact across workers and survive worker
 * restarts and reloads.  A series key is compact binary, not the text Kong
 * stores: [family id][label value 0x1f]...[0x1e][part], where part is
 * PROM_PART_VALUE for counters, or for histograms the bucket index + 1
 * (bucket counts are stored non-cumulative and summed on output; their
 * total is the _count line) and PROM_PART_SUM.  PROM_PART_COUNT is no
 * longer written (a zone kept from an older worker may hold it: ignored).  Sorting keys bytewise
 * groups every family and orders histogram lines as the exposition format wants. */

#ifndef SL_PROMETHEUS_H
#define SL_PROMETHEUS_H

#include <sluice/plugin.h>

#define PROM_ZONE "prometheus_metrics"
#define PROM_ZONE_SIZE_DEFAULT (5 * 1024 * 1024) /* Kong: lua_shared_dict prometheus_metrics 5m */

#define PROM_SEP 0x1f /* after each label value */
#define PROM_END 0x1e /* after the last label value */
#define PROM_PART_VALUE 0x01
#define PROM_PART_COUNT 0x70
#define PROM_PART_SUM 0x71
/* The error counter (kong_nginx_metric_errors_total): created when the
 * config is parsed, so counting a dropped series never needs a slot. */
#define PROM_ERRORS_KEY                                                                            \
    "\x7f"                                                                                         \
    "errors"

typedef enum prom_type { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM } prom_type_t;

typedef enum prom_family_id {
    PROM_HTTP_REQUESTS = 1,
    PROM_KONG_LATENCY,
    PROM_UPSTREAM_LATENCY,
    PROM_REQUEST_LATENCY,
    PROM_BANDWIDTH,
    PROM_AI_REQUESTS,
    PROM_AI_COST,
    PROM_AI_TOKENS,
    PROM_AI_LATENCY,
    PROM_FAMILY_MAX
} prom_family_id_t;

#define PROM_MAX_LABELS 8

typedef struct prom_family {
    const char *name; /* without the kong_ prefix */
    prom_type_t type;
    const char *help;
    const char *labels[PROM_MAX_LABELS + 1]; /* NULL-terminated, Kong's order */
    const double *buckets;                   /* histograms: upper bounds, then +Inf */
    size_t nbuckets;                         /* without +Inf */
} prom_family_t;

/* Indexed by prom_family_id_t (entry 0 unused). */
extern const prom_family_t prom_families[PROM_FAMILY_MAX];

typedef struct prom_conf {
    int per_consumer;
    int status_code_metrics;
    int latency_metrics;
    int bandwidth_metrics;
    int upstream_health_metrics;
    int upstream_health_any; /* the exporter's conf: some instance sets upstream_health_metrics */
    int ai_metrics;
    int wasm_metrics;
    size_t shm_size;
    sl_shm_t *zone;
} prom_conf_t;

/* The metrics_register callback: writes every family (exporter.c). */
void prom_export(const sl_api_t *api, void *arg, sl_write_fn write, void *w);

#endif
