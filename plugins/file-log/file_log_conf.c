/* file_log_conf.c - file-log's config as a field table checked by the host
 * (api->conf_schema_parse): Kong's file-log schema, minus Lua.
 *
 *   path             string, required, Kong's filename rule
 *   reopen           boolean, default false
 *   custom_fields    object: dotted key -> any JSON value, merged into every
 *                    record (our stand-in for custom_fields_by_lua)
 *   redact_api_keys  boolean, default true: the x-api-key, api-key,
 *                    anthropic-api-key, x-goog-api-key, x-amz-security-token
 *                    and cookie request headers are written as "REDACTED" too
 * A JSON null means "not set" (decK dumps list unset fields as null).
 * Every problem is reported with its field path; unknown keys are errors. */

#include <stddef.h>
#include <string.h>

#include "file_log.h"

/* Kong: path must match ^[^%s*&%%`][^*&%%`]*[^%s*&%%`]$ (Lua pattern):
 * at least two characters, no '*', '&', '%' or '`' anywhere, and no
 * whitespace at either end.  We also refuse embedded NULs. */
int
fl_valid_filename(const char *s, size_t len)
{
    static const char bad[] = "*&%`";
    static const char space[] = " \t\n\v\f\r";

    if (len < 2)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0' || strchr(bad, s[i]) != NULL)
            return 0;
    }
    if (strchr(space, s[0]) != NULL || strchr(space, s[len - 1]) != NULL)
        return 0;
    return 1;
}

static const char *
fl_check_path(const char *s, size_t len)
{
    return fl_valid_filename(s, len) ? NULL : "not a valid filename";
}

/* A dotted key: non-empty segments separated by single dots. */
static const char *
fl_check_field_key(const char *k, size_t n)
{
    if (n == 0 || k[0] == '.' || k[n - 1] == '.' || strstr(k, "..") != NULL)
        return "invalid key: expected dot-separated, non-empty names";
    return NULL;
}

/* Kong's Lua hook cannot run here; accept it only when it is empty, so a
 * decK dump that lists it as null or {} still loads. */
static int
fl_check(const sl_api_t *api, sl_conf_ctx_t *cx, void *block)
{
    const fl_conf_t *c = block;

    if (c->lua_fields != NULL && strcmp(c->lua_fields, "{}") != 0) {
        api->conf_error(cx, "custom_fields_by_lua",
                        "Lua is not supported; use custom_fields (key -> JSON value)");
        return -1;
    }
    return 0;
}

#define F(m) offsetof(fl_conf_t, m)
static const sl_field_t fl_fields[] = {
    {.name = "path",
     .type = SL_FIELD_STRING,
     .flags = SL_FIELD_REQUIRED,
     .offset = F(path),
     .check = fl_check_path},
    {.name = "reopen", .type = SL_FIELD_BOOLEAN, .offset = F(reopen), .def = "false"},
    {.name = "custom_fields",
     .type = SL_FIELD_MAP,
     .offset = F(custom_fields),
     .check = fl_check_field_key},
    {.name = "custom_fields_by_lua", .type = SL_FIELD_JSON, .offset = F(lua_fields)},
    {.name = "redact_api_keys",
     .type = SL_FIELD_BOOLEAN,
     .offset = F(redact_api_keys),
     .def = "true"},
    {.type = SL_FIELD_END},
};
#undef F

const sl_schema_t fl_schema = {sizeof(fl_conf_t), fl_fields, fl_check};

/* config_free gets no api: the one config_parse was handed (the host's
 * table lives as long as the process). */
static const sl_api_t *fl_api;

int
fl_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    *conf = NULL;
    if (api->abi_minor < 1 || api->conf_schema_parse == NULL) {
        api->conf_error(cx, "", "file-log needs a sluice host with plugin ABI 1.1");
        return -1;
    }
    fl_api = api;
    return api->conf_schema_parse(cx, &fl_schema, json, len, conf);
}

void
fl_conf_free(void *conf)
{
    if (conf != NULL)
        fl_api->conf_schema_free(&fl_schema, conf);
}
