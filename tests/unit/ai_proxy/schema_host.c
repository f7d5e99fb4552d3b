/* schema_host.c - the host's schema checker (core/conf/schema.c, linked in)
 * behind an sl_api_t: what ai-proxy's conf.c calls through
 * api->conf_schema_check, so unit tests check configs exactly as the
 * gateway does. */

#include "schema_host.h"
#include "conf/schema.h"

static int
check(const sl_schema_t *schema, const char *json, size_t len, sl_schema_err_fn err, void *ud,
      void **block)
{
    sl_schema_t s = *schema;

    s.check = NULL; /* as api.c: no cx to report through */
    return sl_schema_parse(&s, json, len, err, ud, NULL, NULL, block);
}

const sl_api_t *
sl_ap_test_host(void)
{
    static sl_api_t api;

    api.abi_major = SL_PLUGIN_ABI_MAJOR;
    api.abi_minor = 4;
    api.size = sizeof(api);
    api.conf_schema_check = check;
    api.conf_schema_free = sl_schema_free;
    return &api;
}
