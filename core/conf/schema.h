/* schema.h - check a plugin's config (JSON text) against its field table
 * (sl_schema_t, declared in sluice/plugin.h) and fill the plugin's struct.
 *
 * The checker knows nothing of the loader: every problem goes to `err`
 * with a path relative to the config object ("limits[0].window", "" for
 * the object itself) and Kong's wording ("required field missing",
 * "expected a string", "value should be between 1 and 10", "unknown
 * field").  api->conf_schema_parse (plugin/api.c) wires it to the loader's
 * error list; unit tests and test hosts wire it to their own. */

#ifndef SL_SCHEMA_H
#define SL_SCHEMA_H

#include "base/common.h"

/* sl_schema_err_fn: see sluice/plugin.h (since 1.4). */
/* Check `json` (len bytes, need not be NUL-terminated) against `s`.  On
 * success returns 0 with *block a calloc'd block of s->size bytes filled as
 * plugin.h describes, after s->check (called with api/cx) accepted it.
 * On any error returns -1 with *block = NULL, everything released.
 * Aborts on out-of-memory like the rest of the loader. */
int sl_schema_parse(const sl_schema_t *s, const char *json, size_t len, sl_schema_err_fn err,
                    void *ud, const sl_api_t *api, sl_conf_ctx_t *cx, void **block);

/* Free a block from sl_schema_parse: every string, array and the block. */
void sl_schema_free(const sl_schema_t *s, void *block);

#endif
