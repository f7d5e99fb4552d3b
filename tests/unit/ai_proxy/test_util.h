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

#endif
