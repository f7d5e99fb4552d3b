/* fake_plugins.c - fake plugin registry for the config tests (see .h). */

#include <stdio.h>
#include <stdlib.h>

#include <json-c/json.h>

#include "fake_plugins.h"

int sl_fake_live_confs;

static json_object *
get(json_object *o, const char *k)
{
    json_object *v = NULL;
    json_object_object_get_ex(o, k, &v);
    return v;
}

/* A config that keeps the JSON text, so config_free has something to free. */
static int
keep(const char *json, size_t len, void **conf)
{
    *conf = strndup(json, len);
    sl_fake_live_confs++;
    return 0;
}

static void
conf_free(void *conf)
{
    free(conf);
    sl_fake_live_confs--;
}

static int
ai_proxy_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    json_object *o = json_tokener_parse(json), *m, *opt, *t;
    int bad = 0;

    if (o == NULL) {
        api->conf_error(cx, "", "invalid JSON");
        return -1;
    }
    if (!json_object_is_type(get(o, "route_type"), json_type_string)) {
        api->conf_error(cx, "route_type", "required field missing");
        bad = 1;
    }
    m = get(o, "model");
    if (m == NULL || !json_object_is_type(get(m, "provider"), json_type_string)) {
        api->conf_error(cx, "model.provider", "required field missing");
        bad = 1;
    }
    opt = m ? get(m, "options") : NULL;
    t = opt ? get(opt, "temperature") : NULL;
    if (t &&
        (!(json_object_is_type(t, json_type_double) || json_object_is_type(t, json_type_int)) ||
         json_object_get_double(t) < 0 || json_object_get_double(t) > 5)) {
        api->conf_error(cx, "model.options.temperature", "value should be between 0 and 5");
        bad = 1;
    }
    json_object_put(o);
    return bad ? -1 : keep(json, len, conf);
}

static int
file_log_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    json_object *o = json_tokener_parse(json);
    int bad = !json_object_is_type(get(o, "path"), json_type_string);

    if (bad)
        api->conf_error(cx, "path", "required field missing");
    json_object_put(o);
    return bad ? -1 : keep(json, len, conf);
}

static int
any_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    (void)api;
    (void)cx;
    return keep(json, len, conf);
}

/* Fails without reporting anything: the loader must still say something. */
static int
silent_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    (void)api;
    (void)cx;
    (void)json;
    (void)len;
    (void)conf;
    return -1;
}

static sl_status_t
body_cb(const sl_api_t *api, sl_req_t *r, void *conf)
{
    (void)api;
    (void)r;
    (void)conf;
    return SL_STATUS_CONTINUE;
}

static sl_status_t
body_filter_cb(const sl_api_t *api, sl_req_t *r, void *conf, sl_str_t *chunk, int eof)
{
    (void)api;
    (void)r;
    (void)conf;
    (void)chunk;
    (void)eof;
    return SL_STATUS_CONTINUE;
}

static const sl_plugin_t fake_descs[] = {
    {.abi_major = SL_PLUGIN_ABI_MAJOR,
     .abi_minor = SL_PLUGIN_ABI_MINOR,
     .name = "ai-proxy",
     .version = "1.0",
     .priority = 770,
     .config_parse = ai_proxy_parse,
     .config_free = conf_free,
     .body = body_cb,
     .body_filter = body_filter_cb},
    {.abi_major = SL_PLUGIN_ABI_MAJOR,
     .abi_minor = SL_PLUGIN_ABI_MINOR,
     .name = "file-log",
     .version = "1.0",
     .priority = 9,
     .config_parse = file_log_parse,
     .config_free = conf_free},
    {.abi_major = SL_PLUGIN_ABI_MAJOR,
     .abi_minor = SL_PLUGIN_ABI_MINOR,
     .name = "alpha",
     .version = "1.0",
     .priority = 100,
     .config_parse = any_parse,
     .config_free = conf_free},
    {.abi_major = SL_PLUGIN_ABI_MAJOR,
     .abi_minor = SL_PLUGIN_ABI_MINOR,
     .name = "beta",
     .version = "1.0",
     .priority = 100,
     .config_parse = any_parse,
     .config_free = conf_free},
    {.abi_major = SL_PLUGIN_ABI_MAJOR,
     .abi_minor = SL_PLUGIN_ABI_MINOR,
     .name = "gamma",
     .version = "1.0",
     .priority = 1000,
     .config_parse = any_parse,
     .config_free = conf_free},
    {.abi_major = SL_PLUGIN_ABI_MAJOR,
     .abi_minor = SL_PLUGIN_ABI_MINOR,
     .name = "silent",
     .version = "1.0",
     .priority = 1,
     .config_parse = silent_parse,
     .config_free = NULL},
};

static sl_loaded_plugin_t fake_items[sl_nelems(fake_descs)] = {
    {&fake_descs[0], NULL, NULL}, {&fake_descs[1], NULL, NULL}, {&fake_descs[2], NULL, NULL},
    {&fake_descs[3], NULL, NULL}, {&fake_descs[4], NULL, NULL}, {&fake_descs[5], NULL, NULL},
};

sl_plugin_registry_t sl_fake_registry = {fake_items, sl_nelems(fake_items), "/fake/plugins"};

const sl_api_t sl_fake_api = {
    .abi_major = SL_PLUGIN_ABI_MAJOR,
    .abi_minor = SL_PLUGIN_ABI_MINOR,
    .size = sizeof(sl_api_t),
    .host_version = "test",
    .conf_error = sl_conf_ctx_error,
};

/* The real one lives in plugin_loader.c; the tests do not link it. */
const sl_loaded_plugin_t *
sl_plugins_find(const sl_plugin_registry_t *reg, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (!strcmp(reg->items[i].desc->name, name))
            return &reg->items[i];
    return NULL;
}

sl_conf_t *
sl_fake_load(const char *yaml, sl_errors_t *errs)
{
    return sl_conf_load_buffer("kong.yaml", yaml, strlen(yaml), &sl_fake_registry, &sl_fake_api,
                               errs);
}

int
sl_fake_has_error(const sl_errors_t *errs, const char *msg)
{
    for (size_t i = 0; i < errs->n; i++)
        if (!strcmp(errs->msgs[i], msg))
            return 1;
    return 0;
}

void
sl_fake_dump_errors(const sl_errors_t *errs)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(stderr, "  error: %s\n", errs->msgs[i]);
}
