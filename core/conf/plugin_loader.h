/* plugin_loader.h - scan the plugins directory, dlopen each .so, check its
 * descriptor against the ABI, and keep a registry by name. */

#ifndef SL_PLUGIN_LOADER_H
#define SL_PLUGIN_LOADER_H

#include "base/common.h"
#include "base/errors.h"

typedef struct sl_loaded_plugin {
    const sl_plugin_t *desc; /* points into the .so */
    void *dl;                /* dlopen handle */
    char *path;              /* file it came from */
} sl_loaded_plugin_t;

typedef struct sl_plugin_registry {
    sl_loaded_plugin_t *items;
    size_t n;
    char *dir;
} sl_plugin_registry_t;

/* Load every *.so in `dir`.  Refusals (ABI major mismatch, missing symbol,
 * missing/duplicate name, missing config_parse) are added to `errs`; the
 * other plugins still load.  Returns SL_OK, or SL_ERROR if errors were
 * added.  `reg` must be zeroed or previously freed. */
int sl_plugins_load_dir(sl_plugin_registry_t *reg, const char *dir, sl_errors_t *errs);
void sl_plugins_free(sl_plugin_registry_t *reg);

const sl_loaded_plugin_t *sl_plugins_find(const sl_plugin_registry_t *reg, const char *name);

#endif
