/* no_config_parse.c - test plugin whose descriptor has no config_parse:
 * refused (the host could not check its configuration). */

#include <sluice/plugin.h>

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI, "t-no-config-parse", "0.0.1", 100, .config_parse = NULL,
};
