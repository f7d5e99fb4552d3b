/* otel.c - Kong's opentelemetry plugin (kong/plugins/opentelemetry/
 * handler.lua and traces.lua) on the public ABI: traces only.
 *
 * access         extract the client's trace context (propagation.extract,
 *                first match wins), decide sampling, clear the headers
 *                listed in propagation.clear, inject the context for the
 *                upstream (our kong.balancer span as its parent), and set
 *                Kong's `trace_id` log value
 * balancer       (ABI 1.2) every try of the upstream exchange: a new
 *                kong.balancer span from the second try on, injected as the
 *                upstream's parent; how the previous try failed
 * header_filter  http_response_header_for_traceid
 * body_filter    on ai-proxy routes, the finish reasons of the answer
 * log            the spans (spans.c), queued for export (exporter.c)
 *
 * Priority 14, as Kong's. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otel.h"

/* The request's context, made by the first phase that needs it (access
 * may not run: a plugin before this one answered). */
static otel_req_t *
req_ctx(const sl_api_t *api, sl_req_t *r, const otel_conf_t *c, int *created)
{
    otel_req_t *q = api->ctx_get(r);
    otel_tctx_t t;
    sl_str_t js;

    *created = 0;
    if (q != NULL)
        return q;
    q = api->palloc(r, sizeof(*q));
    memset(q, 0, sizeof(*q));
    q->tries = &q->try1;
    if (otel_extract(api, r, c->extract, c->n_extract, &t)) {
        memcpy(q->trace_id, t.trace_id, 16);
        memcpy(q->parent_id, t.span_id, 8);
        q->have_parent = t.have_span;
        if (t.fmt == OTEL_FMT_W3C)
            api->req_header_get(r, SL_STR("tracestate"), &q->tracestate);
    } else {
        otel_random_bytes(q->trace_id, 16);
        t.sampled = -1;
        t.fmt = OTEL_FMT_NONE;
    }
    otel_random_bytes(q->root_id, 8);
    otel_random_bytes(q->balancer_id, 8);
    /* Kong's tracer:get_sampling_decision: no root span (instrumentations
     * off: propagation only) samples nothing; a parent that says "not
     * sampled" wins; otherwise the plugin's sampling_rate, else the node's
     * tracing_sampling_rate, decides from the trace id */
    if (!otel_node.spans || t.sampled == 0)
        q->sampled = 0;
    else
        q->sampled = otel_sample(q->trace_id, c->have_rate ? c->sampling_rate : otel_node.rate);
    q->ai = api->chain_plugin_config(r, "ai-proxy", &js) == 1;
    q->from = t.fmt; /* for `preserve` */
    api->ctx_set(r, q);
    *created = 1;
    return q;
}

/* Kong's `trace_id` log value, {"w3c":"<trace id>","b3":...}: one string
 * per format, set without building JSON (ABI 1.4). */
static const char *const log_keys[OTEL_FMT_MAX] = {
    [OTEL_FMT_W3C] = "trace_id.w3c",
    [OTEL_FMT_B3] = "trace_id.b3",
    [OTEL_FMT_JAEGER] = "trace_id.jaeger",
    [OTEL_FMT_OT] = "trace_id.ot",
};

/* Inject the context with `span` as the upstream's parent, in every
 * format of `inject`; log_value: also Kong's `trace_id` log value. */
static void
inject_all(const sl_api_t *api, sl_req_t *r, const otel_conf_t *c, otel_req_t *q,
           const uint8_t span[8], int log_value)
{
    unsigned seen = 0;
    char hex[32];

    otel_hex(q->trace_id, 16, hex); /* once, for every format and the log */
    for (size_t i = 0; i < c->n_inject; i++) {
        otel_fmt_t f = c->inject[i];
        if (f == OTEL_FMT_PRESERVE)
            f = q->from != OTEL_FMT_NONE ? q->from : c->default_format;
        if (otel_inject(api, r, f, hex, span, q->root_id, q->sampled, 0) != 0)
            continue;
        if (f == OTEL_FMT_B3_SINGLE)
            f = OTEL_FMT_B3;
        if (!log_value || (seen & (1u << f)) || f >= OTEL_FMT_MAX || log_keys[f] == NULL)
            continue;
        seen |= 1u << f;
        api->set_serialize_string(r, log_keys[f], (sl_str_t){hex, 32});
    }
}

static sl_status_t
otel_access(const sl_api_t *api, sl_req_t *r, void *conf)
{
    otel_conf_t *c = conf;
    int created;
    otel_req_t *q = req_ctx(api, r, c, &created);

    (void)created;
    for (size_t i = 0; i < c->s->propagation.clear.n; i++) {
        const char *h = ((char **)c->s->propagation.clear.items)[i];
        api->req_header_remove(r, (sl_str_t){h, strlen(h)});
    }
    /* without balancer instrumentation the upstream's parent is the root
     * span (Kong: no pre-created balancer span) */
    inject_all(api, r, c, q, otel_node.balancer ? q->balancer_id : q->root_id, 1);
    return SL_STATUS_CONTINUE;
}

/* Before every try (ABI 1.2): the previous try ended now, as `t` says; this
 * one gets its own span, which the upstream sees as its parent.  Past
 * OTEL_MAX_TRIES the last slot is reused (the middle tries lose their
 * span). */
static sl_status_t
otel_balancer(const sl_api_t *api, sl_req_t *r, void *conf, const sl_try_info_t *t)
{
    otel_conf_t *c = conf;
    int created;
    otel_req_t *q = req_ctx(api, r, c, &created);
    int64_t now = api->now_us();
    otel_try_t *y;

    if (!otel_node.balancer)
        return SL_STATUS_CONTINUE; /* no kong.balancer spans: nothing per try */
    if (q->ntries > 0 && t->try_number > 1) {
        y = &q->tries[q->ntries - 1];
        y->end_us = now;
        y->failure = t->failure ? (int)t->failure : -1;
        y->status = t->status;
        snprintf(y->ip, sizeof(y->ip), "%.*s", (int)(t->ip.len < 47 ? t->ip.len : 47),
                 t->ip.ptr ? t->ip.ptr : "");
    }
    if (q->ntries == 1) { /* a second try: room for all (the request keeps it small) */
        otel_try_t *all = api->palloc(r, OTEL_MAX_TRIES * sizeof(*all));
        all[0] = q->try1;
        q->tries = all;
    }
    if (q->ntries < OTEL_MAX_TRIES)
        q->ntries++;
    y = &q->tries[q->ntries - 1];
    memset(y, 0, sizeof(*y));
    y->start_us = now;
    if (q->ntries == 1) {
        memcpy(y->span_id, q->balancer_id, 8); /* injected in access */
    } else {
        otel_random_bytes(y->span_id, 8);
        inject_all(api, r, c, q, y->span_id, 0);
    }
    return SL_STATUS_CONTINUE;
}

static sl_status_t
otel_header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    otel_conf_t *c = conf;
    const char *h = c->s->http_response_header_for_traceid;
    int created;
    otel_req_t *q;
    char hex[32];

    if (h == NULL && api->ctx_get(r) != NULL)
        return SL_STATUS_CONTINUE;
    q = req_ctx(api, r, c, &created);
    if (h != NULL) {
        otel_hex(q->trace_id, 16, hex);
        api->resp_header_add(r, (sl_str_t){h, strlen(h)}, (sl_str_t){hex, 32});
    }
    return SL_STATUS_CONTINUE;
}

static sl_status_t
otel_body_filter(const sl_api_t *api, sl_req_t *r, void *conf, sl_str_t *chunk, int eof)
{
    otel_req_t *q = api->ctx_get(r);

    (void)conf;
    (void)eof;
    if (q != NULL && q->ai && q->sampled && chunk->len > 0)
        otel_scan_finish(q, chunk->ptr, chunk->len);
    return SL_STATUS_CONTINUE;
}

static void
otel_log(const sl_api_t *api, sl_req_t *r, void *conf)
{
    otel_conf_t *c = conf;
    int created;
    otel_req_t *q = req_ctx(api, r, c, &created);

    if (q->sampled)
        otel_spans_record(api, r, c, q);
}

static int
otel_init_worker(const sl_api_t *api, void *conf)
{
    otel_random_seed();
    otel_node_load(api);
    if (otel_exporter_start(api, conf) != 0) {
        api->log(NULL, SL_LOG_ERROR, "out of memory starting the span exporter");
        return -1;
    }
    return 0;
}

static void
otel_exit_worker(const sl_api_t *api, void *conf)
{
    otel_exporter_stop(api, conf);
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "opentelemetry",
    "0.1.0",
    14, /* Kong's priority */
    otel_conf_parse,
    otel_conf_free,
    otel_init_worker,
    otel_exit_worker,
    otel_access,
    NULL, /* body */
    otel_header_filter,
    otel_body_filter,
    otel_log,
    otel_balancer,
    {NULL},
};
