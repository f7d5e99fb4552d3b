/* balancer.c - test plugin "t-balancer": the balancer phase and failover
 * (ABI 1.2).  Try N goes to targets[N-1]; a response whose status is in
 * retry_on is rejected from header_filter (api->upstream_retry), so the
 * next try goes to the next target.  Config:
 *   targets: [{name, port, host?, path?, body?}]   (host 127.0.0.1, path /)
 *            body replaces the request body for that target's try, and
 *            every try gets X-Target: name and X-Try: N upstream
 *   retry_on: [429, 503]      statuses rejected in header_filter
 *   non_idempotent: bool      go on when the failed try may have reached
 *                             the upstream (default false: give up, 502/504)
 *   retries: n                api->upstream_retries_set in access (optional)
 *   file: path                one line per balancer call:
 *         "ID try=N fail=F status=S reached=R reused=U left=L ip=IP port=P"
 *         and "ID refused" when upstream_retry returned -1
 * Out of targets after a failure: respond 503 {"message":"no target left"}.
 * The response carries X-Served-By: the target name of the try that
 * answered, and X-Retry-Refused: 1 when upstream_retry said no. */

#include "tp_util.h"

typedef struct target {
    char *name, *host, *path, *body;
    int port;
} target_t;

typedef struct conf {
    target_t *t;
    size_t n;
    int retry_on[8];
    size_t nretry_on;
    int non_idempotent;
    int retries; /* -1: not set */
    char *file;
} conf_t;

static void
config_free(void *conf)
{
    conf_t *c = conf;

    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->t[i].name);
        free(c->t[i].host);
        free(c->t[i].path);
        free(c->t[i].body);
    }
    free(c->t);
    free(c->file);
    free(c);
}

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    json_object *o = tp_parse(api, cx, json, len), *v;
    conf_t *c;

    if (o == NULL)
        return -1;
    c = calloc(1, sizeof(*c));
    c->retries = -1;
    if (json_object_object_get_ex(o, "targets", &v) && json_object_is_type(v, json_type_array)) {
        c->n = json_object_array_length(v);
        c->t = calloc(c->n ? c->n : 1, sizeof(*c->t));
        for (size_t i = 0; i < c->n; i++) {
            json_object *e = json_object_array_get_idx(v, i), *p;
            c->t[i].name = tp_str(e, "name");
            c->t[i].host = tp_str(e, "host");
            c->t[i].path = tp_str(e, "path");
            c->t[i].body = tp_str(e, "body");
            if (json_object_object_get_ex(e, "port", &p))
                c->t[i].port = json_object_get_int(p);
            if (c->t[i].name == NULL)
                c->t[i].name = strdup("?");
            if (c->t[i].host == NULL)
                c->t[i].host = strdup("127.0.0.1");
            if (c->t[i].path == NULL)
                c->t[i].path = strdup("/");
        }
    }
    if (json_object_object_get_ex(o, "retry_on", &v) && json_object_is_type(v, json_type_array))
        for (size_t i = 0; i < json_object_array_length(v) && c->nretry_on < 8; i++)
            c->retry_on[c->nretry_on++] = json_object_get_int(json_object_array_get_idx(v, i));
    if (json_object_object_get_ex(o, "non_idempotent", &v))
        c->non_idempotent = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "retries", &v))
        c->retries = json_object_get_int(v);
    c->file = tp_str(o, "file");
    json_object_put(o);
    *out = c;
    return 0;
}

static sl_status_t
access_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;

    if (c->retries >= 0 && api->upstream_retries_set(r, c->retries) < 0)
        return SL_STATUS_ERROR;
    return SL_STATUS_CONTINUE;
}

static void
note(const sl_api_t *api, sl_req_t *r, conf_t *c, const char *fmt, const char *what)
{
    sl_str_t id = {"-", 1};

    api->req_header_get(r, SL_STR("x-test-id"), &id);
    tp_append(c->file, fmt, (int)id.len, id.ptr, what);
}

static sl_status_t
balancer(const sl_api_t *api, sl_req_t *r, void *conf, const sl_try_info_t *t)
{
    conf_t *c = conf;
    sl_str_t id = {"-", 1};
    size_t i = (size_t)t->try_number - 1;
    char num[16];

    api->req_header_get(r, SL_STR("x-test-id"), &id);
    tp_append(c->file, "%.*s try=%d fail=%d status=%d reached=%d reused=%d left=%d ip=%.*s port=%d",
              (int)id.len, id.ptr, t->try_number, (int)t->failure, t->status, t->may_have_reached,
              t->reused, t->retries_left, (int)t->ip.len, t->ip.ptr ? t->ip.ptr : "", t->port);
    if (t->failure != SL_TRY_FIRST && t->may_have_reached && !c->non_idempotent)
        return SL_STATUS_ERROR; /* Kong without non_idempotent: give up */
    if (i >= c->n) {
        if (api->respond(r, 503, SL_STR("application/json"),
                         SL_STR("{\"message\":\"no target left\"}")) < 0)
            return SL_STATUS_ERROR;
        return SL_STATUS_RESPOND;
    }
    const target_t *tg = &c->t[i];
    if (api->upstream_set(r, SL_STR("http"), TP_S(tg->host), tg->port, TP_S(tg->path), SL_STR("")) <
        0)
        return SL_STATUS_ERROR;
    snprintf(num, sizeof(num), "%d", t->try_number);
    if (api->req_header_set(r, SL_STR("X-Target"), TP_S(tg->name)) < 0 ||
        api->req_header_set(r, SL_STR("X-Try"), TP_S(num)) < 0)
        return SL_STATUS_ERROR;
    if (tg->body && api->req_body_set(r, tg->body, strlen(tg->body)) < 0)
        return SL_STATUS_ERROR;
    api->ctx_set(r, tg->name);
    return SL_STATUS_CONTINUE;
}

static sl_status_t
header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    const char *served = api->ctx_get(r);
    int status = api->resp_status(r);

    if (api->resp_source(r) != SL_SOURCE_UPSTREAM)
        return SL_STATUS_CONTINUE;
    for (size_t i = 0; i < c->nretry_on; i++) {
        if (c->retry_on[i] != status)
            continue;
        if (api->upstream_retry(r) == 0)
            return SL_STATUS_CONTINUE; /* discarded: the next target */
        note(api, r, c, "%.*s %s", "refused");
        api->resp_header_set(r, SL_STR("X-Retry-Refused"), SL_STR("1"));
        break;
    }
    if (served)
        api->resp_header_set(r, SL_STR("X-Served-By"), TP_S(served));
    return SL_STATUS_CONTINUE;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    .abi_major = SL_PLUGIN_ABI_MAJOR,
    .abi_minor = SL_PLUGIN_ABI_MINOR,
    .name = "t-balancer",
    .version = "1.0.0",
    .priority = 800,
    .config_parse = config_parse,
    .config_free = config_free,
    .access = access_phase,
    .header_filter = header_filter,
    .balancer = balancer,
};
