/* tp_util.h - helpers shared by the test plugins (header-only, static).
 * Test plugins use nothing from the core but <sluice/plugin.h>; json-c is
 * only used to read their own config objects. */

#ifndef TP_UTIL_H
#define TP_UTIL_H

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>
#include <sluice/plugin.h>

/* Append one line to `path` with a single write(2): several worker
 * processes append to the same file, O_APPEND keeps lines whole. */
static void tp_append(const char *path, const char *fmt, ...)
    __attribute__((format(printf, 2, 3), unused));

static void
tp_append(const char *path, const char *fmt, ...)
{
    char buf[65536];
    va_list ap;
    int n, fd;

    if (path == NULL || *path == '\0')
        return;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    if (write(fd, buf, (size_t)n) != n) {
        /* nothing sensible to do in a test plugin */
    }
    close(fd);
}

/* Parse the config JSON; reports a syntax error through conf_error. */
static json_object *tp_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len)
    __attribute__((unused));

static json_object *
tp_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, json, (int)len);

    json_tokener_free(tok);
    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        api->conf_error(cx, "", "expected a JSON object");
        if (o)
            json_object_put(o);
        return NULL;
    }
    return o;
}

/* A malloc'd copy of a string field, or NULL. */
static char *tp_str(json_object *o, const char *key) __attribute__((unused));

static char *
tp_str(json_object *o, const char *key)
{
    json_object *v;

    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return strdup(json_object_get_string(v));
}

#define TP_S(p) ((sl_str_t){(p), strlen(p)})

#endif
