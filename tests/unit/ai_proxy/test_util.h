/* test_util.h - helpers shared by the ai-proxy unit tests: JSON lookups by
 * dotted path (json-c, independent of the plugin's own scanner) and an
 * Anthropic SSE grammar checker. */

#ifndef SL_AP_TEST_UTIL_H
#define SL_AP_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <json-c/json.h>

#include "ai_proxy.h"
#include "schema_host.h"

static inline json_object *
tu_parse(const char *s, size_t n)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, s, (int)n);

    if (o == NULL || json_tokener_get_parse_end(tok) != n) {
        fprintf(stderr, "not valid JSON: %.*s\n", (int)n, s);
        fail();
    }
    json_tokener_free(tok);
    return o;
}

/* "a.b.0.c" -> value or NULL */
static inline json_object *
tu_get(json_object *o, const char *path)
{
    char buf[256], *save = NULL, *part;

    snprintf(buf, sizeof(buf), "%s", path);
    for (part = strtok_r(buf, ".", &save); part && o; part = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array)) {
            char *end;
            long i = strtol(part, &end, 10);
            o = *end == '\0' ? json_object_array_get_idx(o, (size_t)i) : NULL;
        } else if (json_object_is_type(o, json_type_object)) {
            if (!json_object_object_get_ex(o, part, &o)) {
                o = NULL;
            }
        } else {
            o = NULL;
        }
    }
    return o;
}

static inline const char *
tu_str(json_object *o, const char *path)
{
    json_object *v = tu_get(o, path);

    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static inline int64_t
tu_int(json_object *o, const char *path)
{
    json_object *v = tu_get(o, path);

    if (v == NULL) {
        fprintf(stderr, "missing %s\n", path);
        fail();
    }
    return json_object_get_int64(v);
}

#define assert_jstr(o, path, want)                                                                 \
    do {                                                                                           \
        const char *got_ = tu_str((o), (path));                                                    \
        if (got_ == NULL) {                                                                        \
            fprintf(stderr, "missing string %s\n", (path));                                        \
            fail();                                                                                \
        }                                                                                          \
        assert_string_equal(got_, (want));                                                         \
    } while (0)

#define assert_absent(o, path) assert_null(tu_get((o), (path)))

/* Put val at the dotted key of the object root (objects created on the
 * way, a key set again replaced in place): what the host does with a log
 * value (core/plugin/serializer.c). */
static inline void
tu_place(json_object *root, const char *key, json_object *val)
{
    char buf[256], *save = NULL, *part, *next;
    json_object *node = root, *child;

    snprintf(buf, sizeof(buf), "%s", key);
    for (part = strtok_r(buf, ".", &save); part; part = next) {
        next = strtok_r(NULL, ".", &save);
        if (next == NULL) {
            json_object_object_add(node, part, val);
            return;
        }
        if (!json_object_object_get_ex(node, part, &child) ||
            !json_object_is_type(child, json_type_object)) {
            child = json_object_new_object();
            json_object_object_add(node, part, child);
        }
        node = child;
    }
}

/* A typed log value as the host's record holds it (ABI 1.6: a DOUBLE
 * written with 14 significant digits). */
static inline json_object *
tu_value(const sl_value_t *v)
{
    char t[32];

    switch (v->type) {
    case SL_VALUE_BOOL:
        return json_object_new_boolean(v->i != 0);
    case SL_VALUE_INT:
        return json_object_new_int64(v->i);
    case SL_VALUE_DOUBLE:
        snprintf(t, sizeof(t), "%.14g", v->d);
        return json_object_new_double_s(v->d, t);
    case SL_VALUE_STRING:
        return json_object_new_string_len(v->s.ptr, (int)v->s.len);
    case SL_VALUE_OBJECT:
        return json_object_new_object();
    case SL_VALUE_ARRAY:
        return json_object_new_array();
    default:
        return NULL;
    }
}

/* ai-proxy's published statistics (sl_ap_stats) placed as the host would
 * place them: the record's values, {"ai":{"proxy":{...}}}. */
static inline json_object *
tu_stats_record(const sl_ap_stat_t *s, size_t n)
{
    json_object *root = json_object_new_object();

    for (size_t i = 0; i < n; i++) {
        tu_place(root, s[i].key,
                 s[i].json.ptr ? tu_parse(s[i].json.ptr, s[i].json.len) : tu_value(&s[i].v));
    }
    return root;
}

/* The value at path as the record writes it (compact JSON). */
static inline const char *
tu_text(json_object *o, const char *path)
{
    return json_object_to_json_string_ext(tu_get(o, path),
                                          JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

#endif
