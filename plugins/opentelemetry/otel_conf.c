/* otel_conf.c - the opentelemetry plugin's config: Kong's schema.lua (and
 * the queue and propagation records it uses) as a field table checked by
 * the host, then what Kong derives from it at run time, done once here:
 * the propagation parameters (propagation.get_plugin_params: the legacy
 * header_type when no propagation list is set), the exporter's headers,
 * and the resource attributes with Kong's defaults. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "../shared/kong_typedefs.h"
#include "otel.h"

static const char *
url(const char *s, size_t n)
{
    if ((n > 7 && strncmp(s, "http://", 7) == 0) || (n > 8 && strncmp(s, "https://", 8) == 0))
        return NULL;
    return "missing host in url (an http:// or https:// URL is expected)";
}

static const char *
nonempty(const char *s, size_t n)
{
    (void)s;
    return n == 0 ? "length must be at least 1" : NULL;
}

/* Kong's propagation formats (utils.FORMATS): extract has no b3-single. */
static const char *const extractors[] = {"w3c", "b3",  "jaeger",  "ot", "datadog",
                                         "aws", "gcp", "instana", NULL};
static const char *const injectors[] = {"w3c",     "b3",  "b3-single", "jaeger",  "ot",
                                        "datadog", "aws", "gcp",       "instana", NULL};
static const char *const injectors_preserve[] = {
    "preserve", "w3c", "b3", "b3-single", "jaeger", "ot", "datadog", "aws", "gcp", "instana", NULL};
static const char *const header_types[] = {"preserve", "ignore",  "b3",      "b3-single",
                                           "w3c",      "jaeger",  "ot",      "aws",
                                           "gcp",      "datadog", "instana", NULL};

static const sl_field_t extract_elem = {.type = SL_FIELD_STRING, .one_of = extractors};
static const sl_field_t inject_elem = {.type = SL_FIELD_STRING, .one_of = injectors_preserve};
static const sl_field_t clear_elem = {.type = SL_FIELD_STRING, .check = sl_kong_header_name};

#define P(n) offsetof(otel_prop_conf_t, n)
static const sl_field_t prop_fields[] = {
    {.name = "extract", .type = SL_FIELD_ARRAY, .offset = P(extract), .elements = &extract_elem},
    {.name = "clear", .type = SL_FIELD_ARRAY, .offset = P(clear), .elements = &clear_elem},
    {.name = "inject", .type = SL_FIELD_ARRAY, .offset = P(inject), .elements = &inject_elem},
    {.name = "default_format",
     .type = SL_FIELD_STRING,
     .flags = SL_FIELD_REQUIRED,
     .offset = P(default_format),
     .def = "\"w3c\"",
     .one_of = injectors},
    {.type = SL_FIELD_END},
};
#undef P
static const sl_schema_t prop_schema = {.size = sizeof(otel_prop_conf_t), .fields = prop_fields};

#define Q(n) offsetof(otel_queue_conf_t, n)
static const sl_field_t queue_fields[] = {
    {.name = "max_batch_size",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = Q(max_batch_size),
     .def = "200", /* the plugin's default (the queue's own is 1) */
     .min = 1,
     .max = 1000000},
    {.name = "max_coalescing_delay",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = Q(max_coalescing_delay),
     .def = "1",
     .min = 0,
     .max = 3600},
    {.name = "max_entries",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = Q(max_entries),
     .def = "10000",
     .min = 1,
     .max = 1000000},
    {.name = "max_bytes",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_RANGE,
     .offset = Q(max_bytes),
     .min = 1,
     .max = 1099511627776.0},
    {.name = "max_retry_time",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_REQUIRED,
     .offset = Q(max_retry_time),
     .def = "60"},
    {.name = "initial_retry_delay",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = Q(initial_retry_delay),
     .def = "0.01",
     .min = 0.001,
     .max = 1000000},
    {.name = "max_retry_delay",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = Q(max_retry_delay),
     .def = "60",
     .min = 0.001,
     .max = 1000000},
    {.name = "concurrency_limit",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = Q(concurrency_limit),
     .def = "1",
     .min = -1,
     .max = 1},
    {.type = SL_FIELD_END},
};
#undef Q
static const sl_schema_t queue_schema = {.size = sizeof(otel_queue_conf_t), .fields = queue_fields};

#define B(n) offsetof(otel_schema_block_t, n)
static const sl_field_t fields[] = {
    {.name = "traces_endpoint",
     .type = SL_FIELD_STRING,
     .offset = B(traces_endpoint),
     .check = url},
    {.name = "endpoint", .type = SL_FIELD_STRING, .offset = B(endpoint), .check = url},
    {.name = "logs_endpoint", .type = SL_FIELD_STRING, .offset = B(logs_endpoint), .check = url},
    {.name = "headers", .type = SL_FIELD_MAP, .offset = B(headers), .check = sl_kong_header_name},
    {.name = "resource_attributes",
     .type = SL_FIELD_MAP,
     .offset = B(resource_attributes),
     .check = nonempty},
    {.name = "queue",
     .type = SL_FIELD_RECORD,
     .flags = SL_FIELD_REQUIRED,
     .offset = B(queue),
     .def = "{}",
     .record = &queue_schema},
    {.name = "batch_span_count", .type = SL_FIELD_JSON, .offset = B(batch_span_count)},
    {.name = "batch_flush_delay", .type = SL_FIELD_JSON, .offset = B(batch_flush_delay)},
    {.name = "connect_timeout",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = B(connect_timeout),
     .def = "1000",
     .min = 0,
     .max = 2147483646},
    {.name = "send_timeout",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = B(send_timeout),
     .def = "5000",
     .min = 0,
     .max = 2147483646},
    {.name = "read_timeout",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = B(read_timeout),
     .def = "5000",
     .min = 0,
     .max = 2147483646},
    {.name = "http_response_header_for_traceid",
     .type = SL_FIELD_STRING,
     .offset = B(http_response_header_for_traceid),
     .check = sl_kong_header_name},
    {.name = "header_type",
     .type = SL_FIELD_STRING,
     .offset = B(header_type),
     .def = "\"preserve\"",
     .one_of = header_types},
    {.name = "sampling_rate", .type = SL_FIELD_JSON, .offset = B(sampling_rate)},
    {.name = "propagation",
     .type = SL_FIELD_RECORD,
     .flags = SL_FIELD_REQUIRED,
     .offset = B(propagation),
     .def = "{}",
     .record = &prop_schema},
    {.type = SL_FIELD_END},
};
#undef B

const sl_schema_t otel_schema = {.size = sizeof(otel_schema_block_t), .fields = fields};

static const sl_api_t *conf_api; /* for otel_conf_free, which gets no api */

/* ---- formats ---- */

static const char *const fmt_names[OTEL_FMT_MAX] = {
    [OTEL_FMT_NONE] = "",
    [OTEL_FMT_W3C] = "w3c",
    [OTEL_FMT_B3] = "b3",
    [OTEL_FMT_B3_SINGLE] = "b3-single",
    [OTEL_FMT_JAEGER] = "jaeger",
    [OTEL_FMT_OT] = "ot",
    [OTEL_FMT_PRESERVE] = "preserve",
};

const char *
otel_fmt_name(otel_fmt_t f)
{
    return f < OTEL_FMT_MAX ? fmt_names[f] : "";
}

/* A format name to its id; -1 for one Kong has and sluice does not speak
 * (reported by the caller). */
static int
fmt_id(const char *s)
{
    for (int i = 1; i < OTEL_FMT_MAX; i++)
        if (strcmp(s, fmt_names[i]) == 0)
            return i;
    return -1;
}

static int
unsupported(const sl_api_t *api, sl_conf_ctx_t *cx, const char *field, const char *name)
{
    api->conf_error(cx, field,
                    "propagation format '%s' is not supported by sluice (supported: w3c, b3, "
                    "b3-single, jaeger, ot)",
                    name);
    return -1;
}

static int
fmt_list(const sl_api_t *api, sl_conf_ctx_t *cx, const char *field, const sl_conf_array_t *a,
         otel_fmt_t *out, size_t *n)
{
    char *const *v = a->items;
    int bad = 0;

    *n = 0;
    for (size_t i = 0; i < a->n; i++) {
        int id = fmt_id(v[i]);
        if (id < 0) {
            bad |= unsupported(api, cx, field, v[i]);
            continue;
        }
        if (*n < OTEL_MAX_FMTS)
            out[(*n)++] = (otel_fmt_t)id;
    }
    return bad ? -1 : 0;
}

/* Kong's propagation.get_plugin_params: a propagation list (extract, inject
 * or clear) wins; else header_type says what to extract and inject. */
static int
propagation_params(const sl_api_t *api, sl_conf_ctx_t *cx, otel_conf_t *c)
{
    const otel_prop_conf_t *p = &c->s->propagation;
    const char *ht = c->s->header_type;
    int id;

    int bad = 0;

    id = fmt_id(p->default_format);
    if (id < 0 || id == OTEL_FMT_PRESERVE)
        bad |= unsupported(api, cx, "propagation.default_format", p->default_format);
    else
        c->default_format = (otel_fmt_t)id;
    if (p->extract.n || p->inject.n || p->clear.n || ht == NULL) {
        bad |= fmt_list(api, cx, "propagation.extract", &p->extract, c->extract, &c->n_extract);
        bad |= fmt_list(api, cx, "propagation.inject", &p->inject, c->inject, &c->n_inject);
        return bad ? -1 : 0;
    }
    if (bad)
        return -1;
    /* header_type (deprecated): every format is looked for, as Kong does
     * (sluice's: w3c, b3, jaeger, ot) */
    if (strcmp(ht, "ignore") != 0) {
        static const otel_fmt_t all[] = {OTEL_FMT_B3, OTEL_FMT_W3C, OTEL_FMT_JAEGER, OTEL_FMT_OT};
        memcpy(c->extract, all, sizeof(all));
        c->n_extract = sizeof(all) / sizeof(all[0]);
    }
    if (strcmp(ht, "preserve") == 0) {
        c->inject[0] = OTEL_FMT_PRESERVE;
        c->n_inject = 1;
    } else if (strcmp(ht, "ignore") == 0) {
        c->inject[0] = c->default_format;
        c->n_inject = 1;
    } else {
        id = fmt_id(ht);
        if (id < 0)
            return unsupported(api, cx, "header_type", ht);
        c->inject[0] = OTEL_FMT_PRESERVE;
        c->inject[1] = (otel_fmt_t)id;
        c->n_inject = 2;
    }
    return 0;
}

/* ---- the exporter's headers and the resource ---- */

/* A map value (JSON text) that must be a string: its text, malloc'd. */
static char *
json_string(const char *json)
{
    json_object *o = json_tokener_parse(json);
    char *s = NULL;

    if (o != NULL && json_object_is_type(o, json_type_string))
        s = strdup(json_object_get_string(o));
    json_object_put(o);
    return s;
}

static int
headers_build(const sl_api_t *api, sl_conf_ctx_t *cx, otel_conf_t *c)
{
    const sl_conf_pair_t *h = c->s->headers.items;
    size_t n = c->s->headers.n;
    int have_ct = 0;

    c->headers = calloc(2 * (n + 1), sizeof(sl_str_t));
    if (c->headers == NULL)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char *v = json_string(h[i].json);
        char path[300];
        if (v == NULL || strpbrk(v, "\r\n") != NULL) {
            snprintf(path, sizeof(path), "headers.%s", h[i].key);
            api->conf_error(cx, path, "expected a string without CR or LF");
            free(v);
            return -1;
        }
        if (strcasecmp(h[i].key, "content-type") == 0)
            have_ct = 1;
        c->headers[2 * c->n_headers] = (sl_str_t){h[i].key, strlen(h[i].key)};
        c->headers[2 * c->n_headers + 1] = (sl_str_t){v, strlen(v)};
        c->n_headers++;
        c->n_own_headers++;
    }
    if (!have_ct) { /* Kong's default, unless headers set one */
        c->headers[2 * c->n_headers] = SL_STR("Content-Type");
        c->headers[2 * c->n_headers + 1] = SL_STR("application/x-protobuf");
        c->n_headers++;
    }
    return 0;
}

static int
res_set(otel_conf_t *c, const char *key, const char *value)
{
    size_t i;
    char *v = strdup(value);

    if (v == NULL)
        return -1;
    for (i = 0; i < c->n_res; i++)
        if (strcmp(c->res_keys[i], key) == 0)
            break;
    if (i == c->n_res) {
        char *k = strdup(key);
        if (k == NULL) {
            free(v);
            return -1;
        }
        c->res_keys[i] = k;
        c->res_values[i] = NULL;
        c->n_res++;
    }
    free(c->res_values[i]);
    c->res_values[i] = v;
    return 0;
}

static int
resource_build(const sl_api_t *api, sl_conf_ctx_t *cx, otel_conf_t *c)
{
    const sl_conf_pair_t *a = c->s->resource_attributes.items;
    size_t n = c->s->resource_attributes.n;

    c->res_keys = calloc(n + 3, sizeof(char *));
    c->res_values = calloc(n + 3, sizeof(char *));
    if (c->res_keys == NULL || c->res_values == NULL)
        return -1;
    /* Kong's defaults; service.instance.id (the node id) and service.version
     * are added in the workers, where the node id is known */
    if (res_set(c, "service.name", "kong") != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char *v = json_string(a[i].json);
        char path[300];
        if (v == NULL || v[0] == '\0') {
            snprintf(path, sizeof(path), "resource_attributes.%s", a[i].key);
            api->conf_error(cx, path, v == NULL ? "expected a string" : "required field missing");
            free(v);
            return -1;
        }
        int rc = res_set(c, a[i].key, v);
        free(v);
        if (rc != 0)
            return -1;
    }
    return 0;
}

int
otel_conf_resource_finish(const sl_api_t *api, otel_conf_t *c)
{
    sl_node_status_t st;
    int has_version = 0, has_id = 0;

    for (size_t i = 0; i < c->n_res; i++) {
        has_version |= strcmp(c->res_keys[i], "service.version") == 0;
        has_id |= strcmp(c->res_keys[i], "service.instance.id") == 0;
    }
    if (!has_version && res_set(c, "service.version", api->host_version) != 0)
        return -1;
    if (!has_id && api->node_status(&st) == 0 && st.node_id != NULL &&
        res_set(c, "service.instance.id", st.node_id) != 0)
        return -1;
    return 0;
}

/* A JSON number from an SL_FIELD_JSON field: 0 and *v, -1 if not one. */
static int
json_number(const char *json, double *v)
{
    json_object *o = json_tokener_parse(json);
    int rc = -1;

    if (o != NULL &&
        (json_object_is_type(o, json_type_double) || json_object_is_type(o, json_type_int))) {
        *v = json_object_get_double(o);
        rc = 0;
    }
    json_object_put(o);
    return rc;
}

int
otel_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    otel_schema_block_t *s;
    otel_conf_t *c;
    double v = 0;
    int bad = 0;

    *conf = NULL;
    if (api->abi_minor < 5 ||
        api->size < offsetof(sl_api_t, serialize_value_keys) + sizeof(void *)) {
        api->conf_error(cx, "", "opentelemetry needs a sluice host with plugin ABI 1.5");
        return -1;
    }
    conf_api = api;
    if (api->conf_schema_parse(cx, &otel_schema, json, len, (void **)&s) != 0)
        return -1;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        api->conf_schema_free(&otel_schema, s);
        api->conf_error(cx, "", "out of memory");
        return -1;
    }
    c->s = s;
    *conf = c;
    if (s->logs_endpoint != NULL) {
        api->conf_error(cx, "logs_endpoint",
                        "not supported by sluice: only traces are exported (traces_endpoint)");
        bad = 1;
    }
    c->endpoint = s->traces_endpoint ? s->traces_endpoint : s->endpoint;
    if (c->endpoint == NULL && s->logs_endpoint == NULL) {
        api->conf_error(cx, "",
                        "at least one of these fields must be non-empty: "
                        "'traces_endpoint', 'logs_endpoint'");
        bad = 1;
    }
    if (s->queue.concurrency_limit == 0) {
        api->conf_error(cx, "queue.concurrency_limit", "expected one of: -1, 1");
        bad = 1;
    }
    otel_node_load(api);
    c->sampling_rate = 1.0;
    if (s->sampling_rate != NULL) {
        if (json_number(s->sampling_rate, &v) != 0 || v < 0 || v > 1) {
            api->conf_error(cx, "sampling_rate", "value should be between 0 and 1");
            bad = 1;
        }
        c->sampling_rate = v;
        c->have_rate = 1;
    }
    /* deprecated fields (Kong 4.0 removes them): copied into queue */
    if (s->batch_span_count != NULL) {
        if (json_number(s->batch_span_count, &v) != 0 || v < 1 || v > 1000000 || v != (int64_t)v) {
            api->conf_error(cx, "batch_span_count", "expected an integer between 1 and 1000000");
            bad = 1;
        } else {
            s->queue.max_batch_size = (int64_t)v;
        }
    }
    if (s->batch_flush_delay != NULL) {
        if (json_number(s->batch_flush_delay, &v) != 0 || v < 0 || v > 3600 || v != (int64_t)v) {
            api->conf_error(cx, "batch_flush_delay", "expected an integer between 0 and 3600");
            bad = 1;
        } else {
            s->queue.max_coalescing_delay = v;
        }
    }
    c->timeout_ms = (uint64_t)(s->connect_timeout + s->send_timeout + s->read_timeout);
    if (c->timeout_ms == 0)
        c->timeout_ms = 1;
    if (propagation_params(api, cx, c) != 0)
        bad = 1;
    if (headers_build(api, cx, c) != 0 || resource_build(api, cx, c) != 0 || bad)
        return -1;
    c->zone = api->shm_zone(cx, OTEL_ZONE, 16384, 0);
    if (c->zone == NULL)
        return -1;
    if (api->metrics_register(cx, otel_metrics, c) < 0)
        return -1;
    return 0;
}

void
otel_conf_free(void *conf)
{
    otel_conf_t *c = conf;

    if (c == NULL)
        return;
    if (c->headers != NULL) {
        /* the values from the config are ours, the default Content-Type not */
        for (size_t i = 0; i < c->n_own_headers; i++)
            free((void *)c->headers[2 * i + 1].ptr);
        free(c->headers);
    }
    for (size_t i = 0; i < c->n_res; i++) {
        free(c->res_keys[i]);
        free(c->res_values[i]);
    }
    free(c->res_keys);
    free(c->res_values);
    conf_api->conf_schema_free(&otel_schema, c->s);
    free(c);
}

/* ---- node settings ---- */

otel_node_t otel_node = {1, 1, 1.0};

void
otel_node_load(const sl_api_t *api)
{
    const char *v, *p;
    int all = 0, bal = 0, off = 0;

    if (api->abi_minor < 3)
        return; /* an older host: sluice's defaults (all, 1.0) */
    if ((v = api->setting_get("tracing_sampling_rate")) != NULL) {
        double x = strtod(v, NULL);
        if (x >= 0 && x <= 1) /* the host checked it */
            otel_node.rate = x;
    }
    if ((v = api->setting_get("tracing_instrumentations")) == NULL)
        return;
    for (p = v; *p;) {
        size_t k;
        p += strspn(p, " \t,");
        k = strcspn(p, " \t,");
        if (k == 3 && strncmp(p, "off", 3) == 0)
            off = 1;
        else if (k == 3 && strncmp(p, "all", 3) == 0)
            all = 1;
        else if (k == 8 && strncmp(p, "balancer", 8) == 0)
            bal = 1;
        p += k;
    }
    /* off: no root span (Kong's request instrumentation is a no-op) and the
     * plugin only propagates; otherwise the root span always, the others
     * when listed or with all */
    otel_node.spans = !off;
    otel_node.balancer = !off && (all || bal);
}
