/* exporter.c - the per-worker span queue of one plugin instance and its
 * export to traces_endpoint, Kong's queue semantics on the worker loop:
 *
 *   - the log phase encodes spans straight into the queue: one byte
 *     buffer per exporter (spans end to end, no allocation per span) and
 *     a ring of queue.max_entries (offset, length) items (and
 *     queue.max_bytes when set); a full queue drops the span before it is
 *     encoded, counts it and says so in the error log at most once per
 *     10 s: requests never wait for the collector and memory stays
 *     bounded;
 *   - a batch (up to queue.max_batch_size spans) leaves when that many
 *     wait (at the next loop turn, api->post), or once the oldest has
 *     waited queue.max_coalescing_delay, as one ExportTraceServiceRequest
 *     (binary protobuf) POSTed with a worker-level callout;
 *   - one repeating timer per exporter (the tick, half the coalescing
 *     delay, 10 ms to 500 ms) sends what waited long enough, starts due
 *     retries and writes the pending error-log summary: no timer is
 *     created or stopped per batch;
 *   - a failed batch (connection error, timeout, 408, 429, 5xx) is sent
 *     again after queue.initial_retry_delay, doubling up to
 *     queue.max_retry_delay (Retry-After honoured within it), until
 *     queue.max_retry_time has passed; then it is dropped and counted.
 *     Other answers (400, ...) drop it at once (OTLP: never retry those);
 *   - queue.concurrency_limit 1 sends one batch at a time (in order); -1
 *     allows OTEL_MAX_INFLIGHT at once.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "otel.h"
#include "otlp.pb-c.h"

#define OTEL_MAX_INFLIGHT 4
#define OTEL_LOG_INTERVAL_US (10 * 1000000LL)

enum { OTEL_TROUBLE_ATTEMPT, OTEL_TROUBLE_GIVEN_UP, OTEL_TROUBLE_FULL };

typedef Opentelemetry__Proto__Trace__V1__KeyValue pb_kv_t;
typedef Opentelemetry__Proto__Trace__V1__AnyValue pb_any_t;

typedef struct otel_item {
    size_t off; /* in the exporter's span buffer */
    size_t len;
} otel_item_t;

typedef struct otel_exporter otel_exporter_t;

typedef struct otel_batch {
    otel_exporter_t *ex;
    uint8_t *body; /* kept from batch to batch (grown when a batch needs more) */
    size_t len, cap;
    size_t nspans;
    int64_t first_us; /* first attempt */
    double delay_s;   /* next retry's wait */
    sl_callout_t *co;
    int64_t retry_at_us; /* waiting to be sent again at (0: not waiting) */
    int busy;
} otel_batch_t;

struct otel_exporter {
    const sl_api_t *api;
    otel_conf_t *c;
    otel_item_t *ring;
    size_t cap, head, n, bytes;
    uint8_t *buf; /* the queued spans, end to end (ring order) */
    size_t buf_used, buf_cap;
    size_t reserved;   /* room handed out by otel_exporter_reserve */
    int64_t oldest_us; /* when the oldest queued span was queued */
    sl_worker_timer_t *tick;
    int posted; /* a flush is posted (api->post) */
    int dying;  /* stopped while a post was pending: the post frees it */
    otel_batch_t b[OTEL_MAX_INFLIGHT];
    int max_inflight;
    /* the envelope's constant parts */
    Opentelemetry__Proto__Trace__V1__Resource res;
    pb_kv_t *res_kv;
    pb_any_t *res_av;
    pb_kv_t **res_p;
    Opentelemetry__Proto__Trace__V1__InstrumentationScope scope;
    /* error log, see trouble() */
    uint64_t unlogged[3];
    int64_t logged_at[3];
    char last_err[160];
};

/* ---- counters (shared memory, node-wide) ---- */

static void
count(otel_exporter_t *ex, const char *key, double n)
{
    ex->api->shm_incr(ex->c->zone, (sl_str_t){key, strlen(key)}, n, 0, NULL);
}

/* One line with what happened since the last one.  Each kind of trouble
 * (failed attempts, batches given up, queue full) is said at once the
 * first time, then at most once per OTEL_LOG_INTERVAL_US: a timer writes
 * the counts gathered meanwhile. */
static void
report_now(otel_exporter_t *ex)
{
    int64_t now = ex->api->now_us();

    if (ex->unlogged[0] == 0 && ex->unlogged[1] == 0 && ex->unlogged[2] == 0)
        return;
    ex->api->log(NULL, SL_LOG_ERROR,
                 "exporting to %s: %llu failed attempt(s), %llu span(s) dropped "
                 "after retries, %llu span(s) dropped with the queue full (max_entries %lld)%s%s",
                 ex->c->endpoint, (unsigned long long)ex->unlogged[OTEL_TROUBLE_ATTEMPT],
                 (unsigned long long)ex->unlogged[OTEL_TROUBLE_GIVEN_UP],
                 (unsigned long long)ex->unlogged[OTEL_TROUBLE_FULL],
                 (long long)ex->c->s->queue.max_entries, ex->last_err[0] ? "; last error: " : "",
                 ex->last_err);
    for (int k = 0; k < 3; k++) {
        if (ex->unlogged[k] > 0)
            ex->logged_at[k] = now;
        ex->unlogged[k] = 0;
    }
}

static void
trouble(otel_exporter_t *ex, int kind, uint64_t n)
{
    int64_t now = ex->api->now_us();

    ex->unlogged[kind] += n;
    if (ex->logged_at[kind] == 0 || now - ex->logged_at[kind] >= OTEL_LOG_INTERVAL_US)
        report_now(ex); /* else the tick writes it when the interval is over */
}

/* The tick: the summary when the interval is over. */
static void
report_due(otel_exporter_t *ex, int64_t now)
{
    for (int k = 0; k < 3; k++)
        if (ex->unlogged[k] > 0 && now - ex->logged_at[k] >= OTEL_LOG_INTERVAL_US) {
            report_now(ex);
            return;
        }
}

/* ---- sending ---- */

static void send_batches(otel_exporter_t *ex);
static void attempt(otel_batch_t *b);

/* The batch is done; its buffer stays for the next one: a batch of 200
 * spans is tens of KiB, and taking it from malloc and giving it back every
 * time cost the worker page faults when the heap shrank and grew again. */
static void
batch_free(otel_batch_t *b)
{
    b->busy = 0;
}

static int
retryable(int err, int status)
{
    if (err != SL_CALLOUT_OK)
        return err != SL_CALLOUT_EINVAL && err != SL_CALLOUT_ENOMEM;
    return status == 408 || status == 429 || status >= 500;
}

static double
retry_after(const sl_callout_resp_t *resp)
{
    if (resp == NULL)
        return -1;
    for (size_t i = 0; i < resp->nheaders; i++) {
        sl_str_t n = resp->headers[2 * i], v = resp->headers[2 * i + 1];
        if (n.len == 11 && strncasecmp(n.ptr, "retry-after", 11) == 0) {
            double s = 0;
            size_t k;
            for (k = 0; k < v.len && v.ptr[k] >= '0' && v.ptr[k] <= '9' && k < 9; k++)
                s = s * 10 + (v.ptr[k] - '0');
            return k > 0 && k == v.len ? s : -1;
        }
    }
    return -1;
}

static void
done(const sl_api_t *api, sl_req_t *r, int err, const sl_callout_resp_t *resp, void *arg)
{
    otel_batch_t *b = arg;
    otel_exporter_t *ex = b->ex;
    const otel_queue_conf_t *q = &ex->c->s->queue;
    int status = resp ? resp->status : 0;
    double elapsed, wait;

    (void)r;
    b->co = NULL;
    if (err == SL_CALLOUT_OK && status >= 200 && status < 300) {
        count(ex, OTEL_K_EXPORTED, (double)b->nspans);
        batch_free(b);
        send_batches(ex);
        return;
    }
    count(ex, OTEL_K_BATCH_ERRORS, 1);
    if (err != SL_CALLOUT_OK)
        snprintf(ex->last_err, sizeof(ex->last_err), "%s", api->callout_strerror(err));
    else
        snprintf(ex->last_err, sizeof(ex->last_err), "response error: %d, body: %.*s", status,
                 (int)(resp->body.len > 80 ? 80 : resp->body.len),
                 resp->body.ptr ? resp->body.ptr : "");
    elapsed = (double)(api->now_us() - b->first_us) / 1e6;
    wait = b->delay_s;
    if (retryable(err, status)) {
        double ra = retry_after(resp);
        if (ra >= 0)
            wait = ra < q->max_retry_delay ? ra : q->max_retry_delay;
    }
    if (retryable(err, status) && q->max_retry_time >= 0 && elapsed + wait <= q->max_retry_time) {
        b->delay_s = b->delay_s * 2 < q->max_retry_delay ? b->delay_s * 2 : q->max_retry_delay;
        b->retry_at_us = api->now_us() + (int64_t)(wait * 1e6);
        if (b->retry_at_us == 0)
            b->retry_at_us = 1;
        trouble(ex, OTEL_TROUBLE_ATTEMPT, 1);
        return;
    }
    count(ex, OTEL_K_DROPPED_FAILED, (double)b->nspans);
    ex->unlogged[OTEL_TROUBLE_ATTEMPT]++;
    trouble(ex, OTEL_TROUBLE_GIVEN_UP, b->nspans);
    batch_free(b);
    send_batches(ex);
}

static void
attempt(otel_batch_t *b)
{
    otel_exporter_t *ex = b->ex;
    const otel_conf_t *c = ex->c;
    sl_callout_req_t req = {
        .method = SL_STR("POST"),
        .url = {c->endpoint, strlen(c->endpoint)},
        .headers = c->headers,
        .nheaders = c->n_headers,
        .body = {(const char *)b->body, b->len},
        .timeout_ms = c->timeout_ms,
    };

    b->co = ex->api->callout(NULL, &req, done, b);
    if (b->co == NULL) {
        count(ex, OTEL_K_BATCH_ERRORS, 1);
        count(ex, OTEL_K_DROPPED_FAILED, (double)b->nspans);
        snprintf(ex->last_err, sizeof(ex->last_err), "the callout was refused (bad URL?)");
        ex->unlogged[OTEL_TROUBLE_ATTEMPT]++;
        trouble(ex, OTEL_TROUBLE_GIVEN_UP, b->nspans);
        batch_free(b);
    }
}

/* The spans left in the queue move to the start of the buffer once the
 * room the batches freed before them is at least what they take: each
 * queued byte is moved at most about once, however long a slow collector
 * keeps the queue long (moving them after every batch cost the whole
 * queue per batch). */
static void
buf_compact(otel_exporter_t *ex)
{
    size_t from;

    if (ex->n == 0) {
        ex->buf_used = 0;
        return;
    }
    from = ex->ring[ex->head].off;
    if (from == 0 || from < ex->buf_used - from)
        return;
    memmove(ex->buf, ex->buf + from, ex->buf_used - from);
    ex->buf_used -= from;
    for (size_t i = 0; i < ex->n; i++)
        ex->ring[(ex->head + i) % ex->cap].off -= from;
}

/* Take up to max_batch_size spans off the queue into one request body. */
static int
batch_build(otel_exporter_t *ex, otel_batch_t *b)
{
    Opentelemetry__Proto__Trace__V1__ScopeSpansEncoded ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS_ENCODED__INIT;
    Opentelemetry__Proto__Trace__V1__ResourceSpansEncoded rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS_ENCODED__INIT;
    Opentelemetry__Proto__Trace__V1__ExportTraceServiceRequestEncoded req =
        OPENTELEMETRY__PROTO__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST_ENCODED__INIT;
    Opentelemetry__Proto__Trace__V1__ScopeSpansEncoded *ssp = &ss;
    Opentelemetry__Proto__Trace__V1__ResourceSpansEncoded *rsp = &rs;
    size_t k = ex->n < (size_t)ex->c->s->queue.max_batch_size
                   ? ex->n
                   : (size_t)ex->c->s->queue.max_batch_size;
    ProtobufCBinaryData *spans = malloc(k * sizeof(*spans));
    size_t len;

    if (spans == NULL)
        return -1;
    for (size_t i = 0; i < k; i++) {
        otel_item_t *it = &ex->ring[(ex->head + i) % ex->cap];
        spans[i] = (ProtobufCBinaryData){it->len, ex->buf + it->off};
    }
    ss.scope = &ex->scope;
    ss.n_spans = k;
    ss.spans = spans;
    rs.resource = &ex->res;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    len = opentelemetry__proto__trace__v1__export_trace_service_request_encoded__get_packed_size(
        &req);
    if (len > b->cap || b->body == NULL) {
        uint8_t *nb = realloc(b->body, len ? len : 1);
        if (nb == NULL) {
            free(spans);
            return -1;
        }
        b->body = nb;
        b->cap = len ? len : 1;
    }
    opentelemetry__proto__trace__v1__export_trace_service_request_encoded__pack(&req, b->body);
    b->len = len;
    b->nspans = k;
    for (size_t i = 0; i < k; i++) {
        ex->bytes -= ex->ring[ex->head].len;
        ex->head = (ex->head + 1) % ex->cap;
    }
    ex->n -= k;
    if (ex->n == 0)
        ex->buf_used = 0; /* the rest moves when room is needed (buf_compact) */
    free(spans);
    return 0;
}

static void
send_batches(otel_exporter_t *ex)
{
    for (int i = 0; i < ex->max_inflight && ex->n > 0; i++) {
        otel_batch_t *b = &ex->b[i];
        if (b->busy)
            continue;
        if (batch_build(ex, b) != 0)
            return;
        b->busy = 1;
        b->first_us = ex->api->now_us();
        b->delay_s = ex->c->s->queue.initial_retry_delay;
        b->retry_at_us = 0;
        if (ex->n > 0) /* what is left waits from now */
            ex->oldest_us = b->first_us;
        attempt(b);
    }
}

static void exporter_free(otel_exporter_t *ex);

static void
tick_fire(const sl_api_t *api, sl_worker_timer_t *t, void *arg)
{
    otel_exporter_t *ex = arg;
    int64_t now = api->now_us();

    (void)t;
    for (int i = 0; i < ex->max_inflight; i++) {
        otel_batch_t *b = &ex->b[i];
        if (b->busy && b->co == NULL && b->retry_at_us != 0 && now >= b->retry_at_us) {
            b->retry_at_us = 0;
            attempt(b);
        }
    }
    if (ex->n > 0 && ((size_t)ex->n >= (size_t)ex->c->s->queue.max_batch_size ||
                      now - ex->oldest_us >= (int64_t)(ex->c->s->queue.max_coalescing_delay * 1e6)))
        send_batches(ex);
    report_due(ex, now);
}

static void
flush_post(const sl_api_t *api, void *arg)
{
    otel_exporter_t *ex = arg;

    (void)api;
    ex->posted = 0;
    if (ex->dying) {
        exporter_free(ex);
        return;
    }
    send_batches(ex);
}

static int
slot_free(const otel_exporter_t *ex)
{
    for (int i = 0; i < ex->max_inflight; i++)
        if (!ex->b[i].busy)
            return 1;
    return 0;
}

uint8_t *
otel_exporter_reserve(otel_conf_t *c, size_t bound)
{
    otel_exporter_t *ex = c->ex;

    if (ex == NULL)
        return NULL;
    if (ex->n == ex->cap) {
        count(ex, OTEL_K_DROPPED_FULL, 1);
        trouble(ex, OTEL_TROUBLE_FULL, 1);
        return NULL;
    }
    if (ex->buf_cap - ex->buf_used < bound)
        buf_compact(ex);
    if (ex->buf_cap - ex->buf_used < bound) {
        size_t cap = ex->buf_cap ? ex->buf_cap : 65536;
        while (cap - ex->buf_used < bound)
            cap *= 2;
        uint8_t *p = realloc(ex->buf, cap);
        if (p == NULL) {
            count(ex, OTEL_K_DROPPED_FULL, 1);
            trouble(ex, OTEL_TROUBLE_FULL, 1);
            return NULL;
        }
        ex->buf = p;
        ex->buf_cap = cap;
    }
    ex->reserved = bound;
    return ex->buf + ex->buf_used;
}

void
otel_exporter_commit(otel_conf_t *c, size_t len)
{
    otel_exporter_t *ex = c->ex;
    const otel_queue_conf_t *q;

    if (ex == NULL || ex->reserved == 0 || len > ex->reserved)
        return;
    ex->reserved = 0;
    q = &c->s->queue;
    if (q->max_bytes > 0 && ex->bytes + len > (uint64_t)q->max_bytes) {
        count(ex, OTEL_K_DROPPED_FULL, 1);
        trouble(ex, OTEL_TROUBLE_FULL, 1);
        return;
    }
    if (ex->n == 0)
        ex->oldest_us = ex->api->now_us();
    ex->ring[(ex->head + ex->n) % ex->cap] = (otel_item_t){ex->buf_used, len};
    ex->buf_used += len;
    ex->n++;
    ex->bytes += len;
    /* a full batch (or no coalescing at all) leaves at the next loop turn;
     * the rest waits for the tick */
    if ((ex->n >= (size_t)q->max_batch_size || q->max_coalescing_delay <= 0) && !ex->posted &&
        slot_free(ex) && ex->api->post(flush_post, ex) == 0)
        ex->posted = 1;
}

/* ---- lifecycle ---- */

int
otel_exporter_start(const sl_api_t *api, otel_conf_t *c)
{
    otel_exporter_t *ex = calloc(1, sizeof(*ex));

    if (ex == NULL)
        return -1;
    ex->api = api;
    ex->c = c;
    ex->cap = (size_t)c->s->queue.max_entries;
    ex->ring = calloc(ex->cap, sizeof(*ex->ring));
    ex->max_inflight = c->s->queue.concurrency_limit < 0 ? OTEL_MAX_INFLIGHT : 1;
    for (int i = 0; i < OTEL_MAX_INFLIGHT; i++)
        ex->b[i].ex = ex;
    if (ex->ring == NULL || otel_conf_resource_finish(api, c) != 0) {
        free(ex->ring);
        free(ex);
        return -1;
    }
    ex->res_kv = calloc(c->n_res ? c->n_res : 1, sizeof(pb_kv_t));
    ex->res_av = calloc(c->n_res ? c->n_res : 1, sizeof(pb_any_t));
    ex->res_p = calloc(c->n_res ? c->n_res : 1, sizeof(pb_kv_t *));
    if (ex->res_kv == NULL || ex->res_av == NULL || ex->res_p == NULL) {
        free(ex->res_kv);
        free(ex->res_av);
        free(ex->res_p);
        free(ex->ring);
        free(ex);
        return -1;
    }
    opentelemetry__proto__trace__v1__resource__init(&ex->res);
    for (size_t i = 0; i < c->n_res; i++) {
        opentelemetry__proto__trace__v1__key_value__init(&ex->res_kv[i]);
        opentelemetry__proto__trace__v1__any_value__init(&ex->res_av[i]);
        ex->res_kv[i].key = c->res_keys[i];
        ex->res_kv[i].value = &ex->res_av[i];
        ex->res_av[i].value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_STRING_VALUE;
        ex->res_av[i].string_value = c->res_values[i];
        ex->res_p[i] = &ex->res_kv[i];
    }
    ex->res.n_attributes = c->n_res;
    ex->res.attributes = ex->res_p;
    opentelemetry__proto__trace__v1__instrumentation_scope__init(&ex->scope);
    ex->scope.name = (char *)"kong-internal";
    ex->scope.version = (char *)api->host_version;
    {
        double half = c->s->queue.max_coalescing_delay * 500; /* ms */
        uint64_t iv = half < 10    ? (c->s->queue.max_coalescing_delay > 0 ? 10 : 100)
                      : half > 500 ? 500
                                   : (uint64_t)half;
        ex->tick = api->worker_timer_start(iv, iv, tick_fire, ex);
    }
    if (ex->tick == NULL) {
        exporter_free(ex);
        return -1;
    }
    c->ex = ex;
    return 0;
}

static void
exporter_free(otel_exporter_t *ex)
{
    for (int i = 0; i < OTEL_MAX_INFLIGHT; i++)
        free(ex->b[i].body);
    free(ex->buf);
    free(ex->ring);
    free(ex->res_kv);
    free(ex->res_av);
    free(ex->res_p);
    free(ex);
}

void
otel_exporter_stop(const sl_api_t *api, otel_conf_t *c)
{
    otel_exporter_t *ex = c->ex;

    if (ex == NULL)
        return;
    c->ex = NULL;
    if (ex->tick != NULL)
        api->worker_timer_stop(ex->tick);
    for (int i = 0; i < OTEL_MAX_INFLIGHT; i++) {
        otel_batch_t *b = &ex->b[i];
        if (b->co != NULL)
            api->callout_cancel(b->co);
        b->co = NULL;
        if (b->busy)
            batch_free(b);
    }
    if (ex->posted)
        ex->dying = 1; /* flush_post frees it */
    else
        exporter_free(ex);
}

/* ---- GET /metrics ---- */

static double
counter(const sl_api_t *api, otel_conf_t *c, const char *key)
{
    double v = 0;
    if (api->shm_get(c->zone, (sl_str_t){key, strlen(key)}, NULL, 0, NULL, &v) != SL_SHM_NUMBER)
        return 0;
    return v;
}

void
otel_metrics(const sl_api_t *api, void *arg, sl_write_fn write, void *w)
{
    otel_conf_t *c = arg;
    char buf[1024];
    int n = snprintf(
        buf, sizeof(buf),
        "# HELP sluice_opentelemetry_spans_exported_total Spans the collector accepted\n"
        "# TYPE sluice_opentelemetry_spans_exported_total counter\n"
        "sluice_opentelemetry_spans_exported_total %.0f\n"
        "# HELP sluice_opentelemetry_spans_dropped_total Spans never exported: the queue was "
        "full, or the batch failed past its retries\n"
        "# TYPE sluice_opentelemetry_spans_dropped_total counter\n"
        "sluice_opentelemetry_spans_dropped_total{reason=\"queue_full\"} %.0f\n"
        "sluice_opentelemetry_spans_dropped_total{reason=\"export_failed\"} %.0f\n"
        "# HELP sluice_opentelemetry_export_errors_total Failed export attempts (retries "
        "included)\n"
        "# TYPE sluice_opentelemetry_export_errors_total counter\n"
        "sluice_opentelemetry_export_errors_total %.0f\n",
        counter(api, c, OTEL_K_EXPORTED), counter(api, c, OTEL_K_DROPPED_FULL),
        counter(api, c, OTEL_K_DROPPED_FAILED), counter(api, c, OTEL_K_BATCH_ERRORS));

    if (n > 0 && (size_t)n < sizeof(buf))
        write(w, buf, (size_t)n);
}
