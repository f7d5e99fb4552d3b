/* file_log_conf.c - file-log's config_parse and config_free.
 *
 * Fields (Kong's file-log schema, minus Lua):
 *   path             string, required, Kong's filename rule
 *   reopen           boolean, default false
 *   custom_fields    object: dotted key -> any JSON value, merged into every
 *                    record (our stand-in for custom_fields_by_lua)
 *   redact_api_keys  boolean, default true: the x-api-key and api-key
 *                    request headers are written as "REDACTED" too
 * A JSON null means "not set" (decK dumps list unset fields as null).
 * Every problem is reported with its field path; unknown keys are errors. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

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

/* A dotted key: non-empty segments separated by single dots. */
static int
fl_valid_field_key(const char *k)
{
    size_t n = strlen(k);

    if (n == 0 || k[0] == '.' || k[n - 1] == '.' || strstr(k, "..") != NULL)
        return 0;
    return 1;
}

static int
fl_parse_bool(const sl_api_t *api, sl_conf_ctx_t *cx, const char *field, json_object *v, int *out)
{
    if (v == NULL)
        return 0; /* null: keep the default */
    if (!json_object_is_type(v, json_type_boolean)) {
        api->conf_error(cx, field, "expected a boolean");
        return -1;
    }
    *out = json_object_get_boolean(v);
    return 0;
}

static int
fl_parse_path(const sl_api_t *api, sl_conf_ctx_t *cx, json_object *v, fl_conf_t *c)
{
    const char *s;
    int n;

    if (v == NULL)
        return 0; /* reported as missing by the caller */
    if (!json_object_is_type(v, json_type_string)) {
        api->conf_error(cx, "path", "expected a string");
        return -1;
    }
    s = json_object_get_string(v);
    n = json_object_get_string_len(v);
    if (!fl_valid_filename(s, (size_t)n)) {
        api->conf_error(cx, "path", "not a valid filename");
        return -1;
    }
    c->path = strdup(s);
    if (c->path == NULL) {
        api->conf_error(cx, "path", "out of memory");
        return -1;
    }
    return 0;
}

static int
fl_parse_custom_fields(const sl_api_t *api, sl_conf_ctx_t *cx, json_object *v, fl_conf_t *c)
{
    size_t n, i = 0;
    int rc = 0;

    if (v == NULL)
        return 0;
    if (!json_object_is_type(v, json_type_object)) {
        api->conf_error(cx, "custom_fields", "expected an object");
        return -1;
    }
    n = (size_t)json_object_object_length(v);
    if (n == 0)
        return 0;
    c->fields = calloc(n, sizeof(*c->fields));
    if (c->fields == NULL) {
        api->conf_error(cx, "custom_fields", "out of memory");
        return -1;
    }
    json_object_object_foreach(v, key, val)
    {
        const char *js;
        size_t jl;

        if (!fl_valid_field_key(key)) {
            api->conf_error(cx, "custom_fields",
                            "invalid key \"%s\": expected dot-separated, non-empty names", key);
            rc = -1;
            continue;
        }
        js = json_object_to_json_string_length(
            val, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &jl);
        c->fields[i].key = strdup(key);
        c->fields[i].json = js != NULL ? strdup(js) : NULL;
        c->fields[i].json_len = jl;
        if (c->fields[i].key == NULL || c->fields[i].json == NULL) {
            free(c->fields[i].key);
            free(c->fields[i].json);
            api->conf_error(cx, "custom_fields", "out of memory");
            return -1;
        }
        c->nfields = ++i;
    }
    return rc;
}

/* Kong's Lua hook cannot run here; accept it only when it is empty, so a
 * decK dump that lists it as null or {} still loads. */
static int
fl_parse_lua_fields(const sl_api_t *api, sl_conf_ctx_t *cx, json_object *v)
{
    if (v == NULL ||
        (json_object_is_type(v, json_type_object) && json_object_object_length(v) == 0))
        return 0;
    api->conf_error(cx, "custom_fields_by_lua",
                    "Lua is not supported; use custom_fields (key -> JSON value)");
    return -1;
}

int
fl_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    json_tokener *tok;
    json_object *root;
    fl_conf_t *c;
    int rc = 0, have_path = 0;

    *conf = NULL;
    tok = json_tokener_new();
    if (tok == NULL) {
        api->conf_error(cx, "", "out of memory");
        return -1;
    }
    root = json_tokener_parse_ex(tok, json, (int)len);
    if (root != NULL) {
        /* Only whitespace may follow the value. */
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
            if (strchr(" \t\r\n", json[i]) == NULL || json[i] == '\0') {
                api->conf_error(cx, "", "invalid JSON: trailing characters");
                json_object_put(root);
                json_tokener_free(tok);
                return -1;
            }
        }
    } else if (json_tokener_get_error(tok) == json_tokener_continue) {
        /* The text ended mid-token ("1.5" could go on): end of input. */
        root = json_tokener_parse_ex(tok, "", 1);
    }
    if (root == NULL && json_tokener_get_error(tok) != json_tokener_success) {
        api->conf_error(cx, "", "invalid JSON: %s",
                        json_tokener_error_desc(json_tokener_get_error(tok)));
        json_tokener_free(tok);
        return -1;
    }
    json_tokener_free(tok);
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        api->conf_error(cx, "", "expected an object");
        json_object_put(root);
        return -1;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        api->conf_error(cx, "", "out of memory");
        json_object_put(root);
        return -1;
    }
    c->redact_api_keys = 1;

    json_object_object_foreach(root, key, val)
    {
        if (strcmp(key, "path") == 0) {
            have_path = val != NULL;
            rc |= fl_parse_path(api, cx, val, c);
        } else if (strcmp(key, "reopen") == 0) {
            rc |= fl_parse_bool(api, cx, "reopen", val, &c->reopen);
        } else if (strcmp(key, "redact_api_keys") == 0) {
            rc |= fl_parse_bool(api, cx, "redact_api_keys", val, &c->redact_api_keys);
        } else if (strcmp(key, "custom_fields") == 0) {
            rc |= fl_parse_custom_fields(api, cx, val, c);
        } else if (strcmp(key, "custom_fields_by_lua") == 0) {
            rc |= fl_parse_lua_fields(api, cx, val);
        } else {
            api->conf_error(cx, key, "unknown field");
            rc = -1;
        }
    }
    if (!have_path) {
        api->conf_error(cx, "path", "required field missing");
        rc = -1;
    }
    json_object_put(root);

    if (rc != 0) {
        fl_conf_free(c);
        return -1;
    }
    *conf = c;
    return 0;
}

void
fl_conf_free(void *conf)
{
    fl_conf_t *c = conf;

    if (c == NULL)
        return;
    for (size_t i = 0; i < c->nfields; i++) {
        free(c->fields[i].key);
        free(c->fields[i].json);
    }
    free(c->fields);
    free(c->path);
    free(c);
}
