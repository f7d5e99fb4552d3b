/* key_auth_conf.c - key-auth's config: Kong's schema.lua as a field table
 * checked by the host (api->conf_schema_parse), plus the WWW-Authenticate
 * value derived once. */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/kong_typedefs.h"
#include "key_auth.h"

/* A realm goes inside a quoted string: no quotes, backslashes or controls. */
static const char *
realm_text(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '"' || s[i] == '\\' || (unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return "invalid value: quotes, backslashes and control characters are not allowed";
    return NULL;
}

static const sl_field_t key_name = {.type = SL_FIELD_STRING, .check = sl_kong_header_name};

#define F(n) offsetof(ka_conf_t, n)
static const sl_field_t fields[] = {
    {.name = "key_names",
     .type = SL_FIELD_ARRAY,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = F(key_names),
     .def = "[\"apikey\"]",
     .min = 1,
     .max = 64,
     .elements = &key_name},
    {.name = "hide_credentials",
     .type = SL_FIELD_BOOLEAN,
     .flags = SL_FIELD_REQUIRED,
     .offset = F(hide_credentials),
     .def = "false"},
    {.name = "anonymous", .type = SL_FIELD_STRING, .offset = F(anonymous)},
    {.name = "key_in_header",
     .type = SL_FIELD_BOOLEAN,
     .flags = SL_FIELD_REQUIRED,
     .offset = F(key_in_header),
     .def = "true"},
    {.name = "key_in_query",
     .type = SL_FIELD_BOOLEAN,
     .flags = SL_FIELD_REQUIRED,
     .offset = F(key_in_query),
     .def = "true"},
    {.name = "key_in_body",
     .type = SL_FIELD_BOOLEAN,
     .flags = SL_FIELD_REQUIRED,
     .offset = F(key_in_body),
     .def = "false"},
    {.name = "run_on_preflight",
     .type = SL_FIELD_BOOLEAN,
     .flags = SL_FIELD_REQUIRED,
     .offset = F(run_on_preflight),
     .def = "true"},
    {.name = "realm", .type = SL_FIELD_STRING, .offset = F(realm), .check = realm_text},
    {.type = SL_FIELD_END},
};
#undef F

const sl_schema_t ka_schema = {.size = sizeof(ka_conf_t), .fields = fields};

static const sl_api_t *ka_api; /* for config_free, which gets no api */

/* c->folded: each key name's length and its bytes with 0x20 set (one
 * block), so the header search compares eight bytes at a time without
 * strlen or strncasecmp (key_auth.c, name_is). */
static int
fold_names(ka_conf_t *c)
{
    const char *const *names = c->key_names.items;
    size_t bytes = c->key_names.n * sizeof(sl_str_t);
    char *t;

    for (size_t i = 0; i < c->key_names.n; i++)
        bytes += strlen(names[i]) + 1;
    if ((c->folded = malloc(bytes)) == NULL)
        return -1;
    t = (char *)(c->folded + c->key_names.n);
    for (size_t i = 0; i < c->key_names.n; i++) {
        size_t n = strlen(names[i]);
        for (size_t k = 0; k < n; k++)
            t[k] = (char)(names[i][k] | 0x20);
        t[n] = '\0';
        c->folded[i] = (sl_str_t){t, n};
        t += n + 1;
    }
    return 0;
}

int
ka_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    ka_conf_t *c;
    size_t n;

    *conf = NULL;
    if (api->abi_minor < 1 || api->conf_schema_parse == NULL) {
        api->conf_error(cx, "", "key-auth needs a sluice host with plugin ABI 1.1");
        return -1;
    }
    ka_api = api;
    if (api->conf_schema_parse(cx, &ka_schema, json, len, (void **)&c) != 0)
        return -1;
    n = c->realm ? strlen(c->realm) + sizeof("Key realm=\"\"") : sizeof("Key");
    c->www_auth = malloc(n);
    if (c->www_auth == NULL) {
        api->conf_error(cx, "", "out of memory");
        api->conf_schema_free(&ka_schema, c);
        return -1;
    }
    if (c->realm)
        snprintf(c->www_auth, n, "Key realm=\"%s\"", c->realm);
    else
        memcpy(c->www_auth, "Key", sizeof("Key"));
    c->www_auth_len = strlen(c->www_auth);
    if (fold_names(c) != 0) {
        api->conf_error(cx, "", "out of memory");
        ka_conf_free(c);
        return -1;
    }
    /* the body callback looks only for key_in_body's key: without it the
     * host need not buffer the body for this instance (ABI 1.8) */
    if (!c->key_in_body && api->abi_minor >= 8 && api->conf_phases_skip != NULL)
        api->conf_phases_skip(cx, SL_PLUGIN_PHASE_BODY);
    *conf = c;
    return 0;
}

void
ka_conf_free(void *conf)
{
    ka_conf_t *c = conf;

    if (c == NULL)
        return;
    free(c->www_auth);
    free(c->folded);
    ka_headers_free(ka_api, c);
    ka_api->conf_schema_free(&ka_schema, c);
}
