/* fake_api.c - a stand-in sl_api_t for file-log's unit tests.
 *
 * Implements only what file-log calls; everything else is NULL so that a
 * call the plugin is not supposed to make crashes the test loudly. */

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "conf/schema.h"
#include "fake_api.h"

extern const sl_plugin_t sluice_plugin;

char fake_conf_errors[8192];
char fake_log_lines[8192];
int fake_log_count;

static pthread_mutex_t fake_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic uint64_t fake_generation;

static void
fake_append(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t n = strlen(buf);

    if (n < size - 1)
        vsnprintf(buf + n, size - n, fmt, ap);
}

static void
fake_appendf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fake_append(buf, size, fmt, ap);
    va_end(ap);
}

static void
fake_conf_error(sl_conf_ctx_t *cx, const char *field, const char *fmt, ...)
{
    va_list ap;

    (void)cx;
    fake_appendf(fake_conf_errors, sizeof(fake_conf_errors), "%s: ", field);
    va_start(ap, fmt);
    fake_append(fake_conf_errors, sizeof(fake_conf_errors), fmt, ap);
    va_end(ap);
    fake_appendf(fake_conf_errors, sizeof(fake_conf_errors), "\n");
}

static void
fake_log(sl_req_t *r, sl_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    (void)r;
    pthread_mutex_lock(&fake_mu);
    fake_appendf(fake_log_lines, sizeof(fake_log_lines), "[%d] ", (int)level);
    va_start(ap, fmt);
    fake_append(fake_log_lines, sizeof(fake_log_lines), fmt, ap);
    va_end(ap);
    fake_appendf(fake_log_lines, sizeof(fake_log_lines), "\n");
    fake_log_count++;
    pthread_mutex_unlock(&fake_mu);
}

static int
fake_worker_id(void)
{
    return 0;
}

static uint64_t
fake_reopen_generation(void)
{
    return atomic_load(&fake_generation);
}

/* Put `val` at the dotted `key` of `obj`, creating objects on the way. */
static void
fake_set_dotted(json_object *obj, const char *key, json_object *val)
{
    char buf[256];
    char *seg, *dot;
    json_object *child;

    snprintf(buf, sizeof(buf), "%s", key);
    seg = buf;
    while ((dot = strchr(seg, '.')) != NULL) {
        *dot = '\0';
        if (!json_object_object_get_ex(obj, seg, &child) ||
            !json_object_is_type(child, json_type_object)) {
            child = json_object_new_object();
            json_object_object_add(obj, seg, child);
        }
        obj = child;
        seg = dot + 1;
    }
    json_object_object_add(obj, seg, val);
}

static int
fake_set_serialize_value(sl_req_t *r, const char *key, sl_str_t json)
{
    json_tokener *tok = json_tokener_new();
    json_object *v = json_tokener_parse_ex(tok, json.ptr, (int)json.len);
    int ok;

    if (v == NULL && json_tokener_get_error(tok) == json_tokener_continue)
        v = json_tokener_parse_ex(tok, "", 1); /* "1.5": end of input */
    ok = json_tokener_get_error(tok) == json_tokener_success;

    json_tokener_free(tok);
    if (!ok)
        return -1;
    if (r->values == NULL)
        r->values = json_object_new_object();
    json_object_object_add(r->values, key, v);
    return 0;
}

static int
fake_log_serialize(sl_req_t *r, const char *const *redact, sl_str_t *out)
{
    json_object *rec;

    r->redacted[0] = '\0';
    for (; redact != NULL && *redact != NULL; redact++)
        fake_appendf(r->redacted, sizeof(r->redacted), "%s,", *redact);

    if (r->values == NULL) {
        out->ptr = r->record;
        out->len = r->record_len;
        return 0;
    }
    rec = json_tokener_parse(r->record);
    if (rec == NULL)
        return -1;
    json_object_object_foreach((json_object *)r->values, k, v)
        fake_set_dotted(rec, k, json_object_get(v));
    free(r->out);
    r->out = strdup(json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN));
    json_object_put(rec);
    out->ptr = r->out;
    out->len = strlen(r->out);
    return 0;
}

/* The host's schema checker itself (core/conf/schema.c), wired to
 * fake_conf_error as plugin/api.c wires it to the loader. */
static void
fake_schema_err(void *ud, const char *path, const char *msg)
{
    fake_conf_error(ud, path, "%s", msg);
}

static int
fake_conf_schema_parse(sl_conf_ctx_t *cx, const sl_schema_t *schema, const char *json, size_t len,
                       void **block)
{
    return sl_schema_parse(schema, json, len, fake_schema_err, cx, &fake_api, cx, block);
}

const sl_api_t fake_api = {
    .abi_major = SL_PLUGIN_ABI_MAJOR,
    .abi_minor = SL_PLUGIN_ABI_MINOR,
    .size = sizeof(sl_api_t),
    .host_version = "test",
    .conf_error = fake_conf_error,
    .log = fake_log,
    .worker_id = fake_worker_id,
    .set_serialize_value = fake_set_serialize_value,
    .log_serialize = fake_log_serialize,
    .reopen_generation = fake_reopen_generation,
    .conf_schema_parse = fake_conf_schema_parse,
    .conf_schema_free = sl_schema_free,
};

void
fake_reset(void)
{
    pthread_mutex_lock(&fake_mu);
    fake_conf_errors[0] = '\0';
    fake_log_lines[0] = '\0';
    fake_log_count = 0;
    pthread_mutex_unlock(&fake_mu);
}

void
fake_bump_reopen_generation(void)
{
    atomic_fetch_add(&fake_generation, 1);
}

void
fake_req_init(sl_req_t *r, const char *record, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->record = record;
    r->record_len = len;
}

void
fake_req_done(sl_req_t *r)
{
    json_object_put(r->values);
    free(r->out);
    r->values = NULL;
    r->out = NULL;
}

int
fake_parse(const char *json, void **conf)
{
    return sluice_plugin.config_parse(&fake_api, NULL, json, strlen(json), conf);
}
