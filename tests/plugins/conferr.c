/* conferr.c - test plugin "t-conferr": config_parse reports problems with
 * nested field paths, so the tests can check that `sluice -t` prints them
 * as "file:line: plugins[0].config.x.y: message".
 *   x.y   must be a string
 *   x.n   must be a number >= 0
 *   any top-level key other than x is unknown */

#include "tp_util.h"

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    json_object *o = tp_parse(api, cx, json, len), *x, *v;
    int bad = 0;

    *out = NULL;
    if (o == NULL)
        return -1;
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        if (strcmp(key, "x") != 0) {
            api->conf_error(cx, key, "unknown field");
            bad = 1;
        }
    }
    if (json_object_object_get_ex(o, "x", &x)) {
        if (json_object_object_get_ex(x, "y", &v) && !json_object_is_type(v, json_type_string)) {
            api->conf_error(cx, "x.y", "expected a string");
            bad = 1;
        }
        if (json_object_object_get_ex(x, "n", &v) &&
            (!(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)) ||
             json_object_get_double(v) < 0)) {
            api->conf_error(cx, "x.n", "must be a number >= 0");
            bad = 1;
        }
    }
    json_object_put(o);
    return bad ? -1 : 0;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI, "t-conferr", "0.0.1", 10, .config_parse = config_parse,
};
