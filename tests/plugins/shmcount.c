/* shmcount.c - counts requests in a shared-memory zone (ABI 1.1) and
 * answers GET .../__shm with the count, so tests can see one total across
 * workers, worker restarts and reloads.  Config: {"size": bytes,
 * "value_max": bytes} (defaults 65536 and 0) to test a changed zone. */

#include <stdio.h>

#include "tp_util.h"

typedef struct {
    sl_shm_t *zone;
} shmcount_conf_t;

static int
shmcount_config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len,
                      void **conf)
{
    json_object *o = json_tokener_parse(json), *v;
    size_t size = 65536, vmax = 0;
    shmcount_conf_t *c;

    if (o && json_object_object_get_ex(o, "size", &v))
        size = (size_t)json_object_get_int64(v);
    if (o && json_object_object_get_ex(o, "value_max", &v))
        vmax = (size_t)json_object_get_int64(v);
    json_object_put(o);
    if (api->size < offsetof(sl_api_t, shm_info) + sizeof(void *)) {
        api->conf_error(cx, "", "host has no shared memory (ABI 1.1)");
        return -1;
    }
    c = calloc(1, sizeof(*c));
    c->zone = api->shm_zone(cx, "t-shmcount", size, vmax);
    *conf = c;
    return c->zone ? 0 : -1;
}

static void
shmcount_config_free(void *conf)
{
    free(conf);
}

static sl_status_t
shmcount_access(const sl_api_t *api, sl_req_t *r, void *conf)
{
    shmcount_conf_t *c = conf;
    sl_str_t path = api->req_path(r);
    double n = 0;
    char body[128];

    if (path.len >= 6 && memcmp(path.ptr + path.len - 6, "/__shm", 6) == 0) {
        int rc = api->shm_get(c->zone, SL_STR("requests"), NULL, 0, NULL, &n);
        int len = snprintf(body, sizeof(body), "{\"requests\":%.0f,\"found\":%d}", n, rc);
        api->respond(r, 200, SL_STR("application/json"), (sl_str_t){body, (size_t)len});
        return SL_STATUS_RESPOND;
    }
    if (api->shm_incr(c->zone, SL_STR("requests"), 1, 0, &n) != 0)
        return SL_STATUS_ERROR;
    return SL_STATUS_CONTINUE;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-shmcount",          /* name */
    "1.0.0",               /* version */
    1000,                  /* priority */
    shmcount_config_parse, /* config_parse */
    shmcount_config_free,  /* config_free */
    NULL,                  /* init_worker */
    NULL,                  /* exit_worker */
    shmcount_access,       /* access */
    NULL,                  /* body */
    NULL,                  /* header_filter */
    NULL,                  /* body_filter */
    NULL,                  /* log */
    NULL,                  /* balancer */
    {NULL},                /* reserved */
};
