/* error.c - test plugin "t-error": its access phase fails
 * (SL_STATUS_ERROR), which the host turns into a 500 with a JSON body. */

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
    api->log(r, SL_LOG_ERROR, "t-error fails on purpose");
    return SL_STATUS_ERROR;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI, "t-error", "0.0.1", 1400, .config_parse = config_parse, .access = access_phase,
};
