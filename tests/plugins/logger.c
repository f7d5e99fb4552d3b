/* logger.c - test plugin "t-logger": in the log phase, appends one JSON
 * line per request to config.path, so the tests can check that the log
 * phase runs for every kind of ending (proxied, short-circuited, upstream
 * failure, client abort mid-stream):
 *   {"id":..., "path":..., "status":..., "err":<sl_req_error_t>,
 *    "source":<sl_resp_source_t>, "worker":..., "times":{...},
 *    "record":<api->log_serialize output>} */

#include "tp_util.h"

typedef struct conf {
    char *path;
} conf_t;

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    json_object *o = tp_parse(api, cx, json, len);
    conf_t *c;

    if (o == NULL)
        return -1;
    c = calloc(1, sizeof(*c));
    c->path = tp_str(o, "path");
    json_object_put(o);
    if (c->path == NULL) {
        api->conf_error(cx, "path", "required field missing");
        free(c);
        return -1;
    }
    *out = c;
    return 0;
}

static void
config_free(void *p)
{
    conf_t *c = p;
    free(c->path);
    free(c);
}

static void
log_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    sl_str_t id = api->req_id(r), path = api->req_path(r), rec = {"null", 4};
    static const char *const redact[] = {"x-secret", NULL};

    if (api->log_serialize(r, redact, &rec) != 0)
        rec = (sl_str_t){"null", 4};
    tp_append(c->path,
              "{\"id\":\"%.*s\",\"path\":\"%.*s\",\"status\":%d,\"err\":%d,\"source\":%d,"
              "\"worker\":%d,\"times\":{\"start\":%lld,\"upstream_first_byte\":%lld,"
              "\"response_end\":%lld},\"record\":%.*s}",
              (int)id.len, id.ptr, (int)path.len, path.ptr, api->resp_status(r),
              (int)api->req_error(r), (int)api->resp_source(r), api->worker_id(),
              (long long)api->req_time(r, SL_TIME_START),
              (long long)api->req_time(r, SL_TIME_UPSTREAM_FIRST_BYTE),
              (long long)api->req_time(r, SL_TIME_RESPONSE_END), (int)rec.len, rec.ptr);
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-logger",
    "0.0.1",
    9,
    .config_parse = config_parse,
    .config_free = config_free,
    .log = log_phase,
};
