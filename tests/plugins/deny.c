/* deny.c - test plugin "t-deny": short-circuits in access with
 * api->respond(403, JSON body); the upstream is never contacted.  The
 * response still passes header_filter (X-Denied-By is added there). */

#include "tp_util.h"

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    *out = NULL;
    return 0;
}

static sl_status_t
access_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    static const char body[] = "{\"message\":\"denied by t-deny\"}";

    if (api->respond(r, 403, SL_STR("application/json"), SL_STR(body)) != 0)
        return SL_STATUS_ERROR;
    return SL_STATUS_RESPOND;
}

static sl_status_t
header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    if (api->resp_source(r) == SL_SOURCE_GATEWAY)
        api->resp_header_set(r, SL_STR("X-Denied-By"), SL_STR("t-deny"));
    return SL_STATUS_CONTINUE;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-deny",
    "0.0.1",
    1500,
    .config_parse = config_parse,
    .access = access_phase,
    .header_filter = header_filter,
};
