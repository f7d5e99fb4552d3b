/* serialize.c - test plugin "t-serialize": sets serialize values in
 * access: an object at a dotted key, a string, a key set twice (the last
 * value must win), and an invalid JSON value (must be refused with -1; the
 * return codes are echoed in the response header X-Serialize-Rc). */

#include "tp_util.h"

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    *out = NULL;
    return 0;
}

typedef struct ctx {
    int rc[4];
} ctx_t;

static sl_status_t
access_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    ctx_t *x = api->palloc(r, sizeof(*x));

    x->rc[0] = api->set_serialize_value(r, "t.serialize.obj", SL_STR("{\"n\":1,\"s\":\"a\"}"));
    x->rc[1] = api->set_serialize_value(r, "t.serialize.twice", SL_STR("\"first\""));
    x->rc[2] = api->set_serialize_value(r, "t.serialize.twice", SL_STR("\"second\""));
    x->rc[3] = api->set_serialize_value(r, "t.serialize.bad", SL_STR("{not json"));
    api->ctx_set(r, x);
    return SL_STATUS_CONTINUE;
}

static sl_status_t
header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    ctx_t *x = api->ctx_get(r);
    char v[64];

    if (x == NULL)
        return SL_STATUS_CONTINUE;
    snprintf(v, sizeof(v), "%d,%d,%d,%d", x->rc[0], x->rc[1], x->rc[2], x->rc[3]);
    api->resp_header_set(r, SL_STR("X-Serialize-Rc"), TP_S(v));
    return SL_STATUS_CONTINUE;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-serialize",
    "0.0.1",
    600,
    .config_parse = config_parse,
    .access = access_phase,
    .header_filter = header_filter,
};
