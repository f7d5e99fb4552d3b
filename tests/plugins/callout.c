/* callout.c - test plugin "t-callout": in access, sends an HTTP callout
 * (api->callout) to `url` + the client's X-Callout-Path header, pauses, and
 * on the answer resumes with the result in request headers for the
 * upstream: X-Callout-Status, X-Callout-Body (first 64 bytes),
 * X-Callout-Type (its Content-Type), or X-Callout-Err (the error text).
 * Config: url, timeout_ms, max_body, method, cancel (start, cancel at once
 * and resume from a timer: the callback must never run, "late" lines in
 * `file` would show it), worker (init_worker sends one worker-level callout
 * to url and writes "worker STATUS" to `file` from a worker timer). */

#include "tp_util.h"

typedef struct conf {
    char *url, *method, *file;
    uint64_t timeout_ms;
    size_t max_body;
    int cancel, worker;
} conf_t;

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    json_object *o = tp_parse(api, cx, json, len), *v;
    conf_t *c;

    if (o == NULL)
        return -1;
    c = calloc(1, sizeof(*c));
    c->url = tp_str(o, "url");
    c->method = tp_str(o, "method");
    c->file = tp_str(o, "file");
    if (json_object_object_get_ex(o, "timeout_ms", &v))
        c->timeout_ms = (uint64_t)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "max_body", &v))
        c->max_body = (size_t)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "cancel", &v))
        c->cancel = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "worker", &v))
        c->worker = json_object_get_boolean(v);
    json_object_put(o);
    if (c->url == NULL) {
        api->conf_error(cx, "url", "required");
        *out = c;
        return -1;
    }
    *out = c;
    return 0;
}

static void
config_free(void *conf)
{
    conf_t *c = conf;
    free(c->url);
    free(c->method);
    free(c->file);
    free(c);
}

static sl_str_t
S(const char *s)
{
    return (sl_str_t){s, s ? strlen(s) : 0};
}

static void
answered(const sl_api_t *api, sl_req_t *r, int err, const sl_callout_resp_t *resp, void *arg)
{
    const conf_t *c = arg;
    char buf[32];

    if (c->cancel) {
        tp_append(c->file, "late callback");
        return;
    }
    if (err != SL_CALLOUT_OK) {
        api->req_header_set(r, SL_STR("X-Callout-Err"), S(api->callout_strerror(err)));
    } else {
        snprintf(buf, sizeof(buf), "%d", resp->status);
        api->req_header_set(r, SL_STR("X-Callout-Status"), S(buf));
        sl_str_t b = resp->body;
        for (size_t i = 0; i < b.len && i < 64; i++)
            if (b.ptr[i] == '\r' || b.ptr[i] == '\n' || b.ptr[i] == '\0')
                b.len = i;
        api->req_header_set(r, SL_STR("X-Callout-Body"),
                            (sl_str_t){b.ptr, b.len < 64 ? b.len : 64});
        for (size_t i = 0; i < resp->nheaders; i++)
            if (SL_STR_EQ(resp->headers[2 * i], "content-type") ||
                SL_STR_EQ(resp->headers[2 * i], "Content-Type"))
                api->req_header_set(r, SL_STR("X-Callout-Type"), resp->headers[2 * i + 1]);
    }
    api->resume(r, SL_STATUS_CONTINUE);
}

static void
resume_now(const sl_api_t *api, sl_req_t *r, void *arg)
{
    api->req_header_set(r, SL_STR("X-Callout-Err"), SL_STR("cancelled"));
    api->resume(r, SL_STATUS_CONTINUE);
}

static sl_status_t
access_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    char url[1024];
    sl_str_t path = {"", 0};
    sl_str_t hdrs[2] = {SL_STR("X-From"), SL_STR("t-callout")};

    api->req_header_get(r, SL_STR("X-Callout-Path"), &path);
    snprintf(url, sizeof(url), "%s%.*s", c->url, (int)path.len, path.ptr);
    sl_callout_req_t q = {
        .method = S(c->method),
        .url = S(url),
        .headers = hdrs,
        .nheaders = 1,
        .body = SL_STR("ping"),
        .timeout_ms = c->timeout_ms,
        .max_body = c->max_body,
    };
    sl_callout_t *co = api->callout(r, &q, answered, c);
    if (co == NULL) {
        api->req_header_set(r, SL_STR("X-Callout-Err"), SL_STR("refused"));
        return SL_STATUS_CONTINUE;
    }
    if (api->pend(r, 0, NULL, NULL) != 0)
        return SL_STATUS_ERROR;
    if (c->cancel) {
        api->callout_cancel(co);
        api->timer_start(r, 50, 0, resume_now, NULL);
    }
    return SL_STATUS_PENDING;
}

/* worker-level: a timer sends one callout with no request */
static void
worker_answered(const sl_api_t *api, sl_req_t *r, int err, const sl_callout_resp_t *resp, void *arg)
{
    const conf_t *c = arg;
    tp_append(c->file, "worker %d r=%s", err ? err : resp->status, r ? "set" : "null");
}

static void
worker_fire(const sl_api_t *api, sl_worker_timer_t *t, void *arg)
{
    conf_t *c = arg;
    sl_callout_req_t q = {.url = S(c->url)};

    api->worker_timer_stop(t);
    if (api->callout(NULL, &q, worker_answered, c) == NULL)
        tp_append(c->file, "worker refused");
}

static int
init_worker(const sl_api_t *api, void *conf)
{
    conf_t *c = conf;

    if (c->worker && api->worker_loop() != NULL && api->worker_id() == 0)
        return api->worker_timer_start(10, 0, worker_fire, c) ? 0 : -1;
    return 0;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-callout",
    "0.0.1",
    950,
    .config_parse = config_parse,
    .config_free = config_free,
    .init_worker = init_worker,
    .access = access_phase,
};
