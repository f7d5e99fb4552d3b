/* newer_minor.c - test plugin built against a newer ABI minor than the
 * host's: it may call table members the host does not have, so the host
 * refuses it, naming both versions. */

#include <sluice/plugin.h>

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    *out = NULL;
    return 0;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI_MAJOR,          SL_PLUGIN_ABI_MINOR + 1, "t-newer-minor", "0.0.1", 100,
    .config_parse = config_parse,
};
