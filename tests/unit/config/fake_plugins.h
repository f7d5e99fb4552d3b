/* fake_plugins.h - a plugin registry for config tests: static descriptors
 * with real config_parse functions that report errors through
 * api->conf_error, so no .so and no core/api.c are needed. */

#ifndef SL_TEST_FAKE_PLUGINS_H
#define SL_TEST_FAKE_PLUGINS_H

#include "conf/config.h"

extern sl_plugin_registry_t sl_fake_registry;
extern const sl_api_t sl_fake_api;
extern int sl_fake_live_confs; /* parsed - freed */

/* Load a YAML/JSON buffer with the fake registry. */
sl_conf_t *sl_fake_load(const char *yaml, sl_errors_t *errs);

/* 1 if some error message equals `msg` exactly. */
int sl_fake_has_error(const sl_errors_t *errs, const char *msg);
void sl_fake_dump_errors(const sl_errors_t *errs);

#endif
