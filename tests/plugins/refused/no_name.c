/* no_name.c - test plugin whose descriptor has no name: refused. */

#include <sluice/plugin.h>

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    *out = NULL;
    return 0;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI, NULL, "0.0.1", 100, .config_parse = config_parse,
};
