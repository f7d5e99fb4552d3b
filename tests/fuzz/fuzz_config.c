/* fuzz_config.c - libFuzzer harness for the declarative config loader:
 * decK env templates, YAML parsing, Kong schema validation, routes. */

#include <stdlib.h>

#include "base/log.h"
#include "conf/config.h"
#include "plugin/host.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_plugin_registry_t reg;
    sl_errors_t errs = {0};

    sl_log_level = SL_LOG_ERROR + 1;
    setenv("DECK_FUZZ", "value", 0);
    sl_conf_t *c = sl_conf_load_buffer("fuzz.yaml", (const char *)data, size, &reg, &sl_api, &errs);
    if (c)
        sl_conf_free(c);
    sl_errors_free(&errs);
    return 0;
}
