/* headers.c - test plugin "t-headers": edits the response in header_filter.
 * Sets X-Edited: yes, removes every header named in config.remove (a list),
 * replaces config.replace.name with config.replace.value, and changes the
 * status to config.status when given. */

#include "tp_util.h"

typedef struct conf {
    json_object *o;
} conf_t;

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    json_object *o = tp_parse(api, cx, json, len), *v;
    conf_t *c;

    if (o == NULL)
        return -1;
    if (json_object_object_get_ex(o, "remove", &v) && !json_object_is_type(v, json_type_array)) {
        api->conf_error(cx, "remove", "expected an array of header names");
        json_object_put(o);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    c->o = o;
    *out = c;
    return 0;
}

static void
config_free(void *p)
{
    conf_t *c = p;
    json_object_put(c->o);
    free(c);
}

static sl_status_t
header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    json_object *v, *rep;

    api->resp_header_set(r, SL_STR("X-Edited"), SL_STR("yes"));
    if (json_object_object_get_ex(c->o, "remove", &v)) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            const char *n = json_object_get_string(json_object_array_get_idx(v, i));
            if (n)
                api->resp_header_remove(r, TP_S(n));
        }
    }
    if (json_object_object_get_ex(c->o, "replace", &rep)) {
        json_object *n, *val;
        if (json_object_object_get_ex(rep, "name", &n) &&
            json_object_object_get_ex(rep, "value", &val))
            api->resp_header_set(r, TP_S(json_object_get_string(n)),
                                 TP_S(json_object_get_string(val)));
    }
    if (json_object_object_get_ex(c->o, "status", &v))
        api->resp_status_set(r, json_object_get_int(v));
    return SL_STATUS_CONTINUE;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-headers",
    "0.0.1",
    800,
    .config_parse = config_parse,
    .config_free = config_free,
    .header_filter = header_filter,
};
