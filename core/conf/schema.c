/* schema.c - the config-schema checker: JSON text + a plugin's field table
 * -> a filled plugin struct, or every error with its Kong-style path.
 *
 * One walk does both jobs: each field is checked and, when it is right,
 * stored at its offset.  The block is calloc'd, so a half-filled block can
 * always be released by sl_schema_free (NULL strings, empty arrays). */

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/schema.h"

#define PATH_MAX_LEN 512

typedef struct walk {
    sl_schema_err_fn err;
    void *ud;
    int nerr;
} walk_t;

static void fail(walk_t *w, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fail(walk_t *w, const char *path, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    w->err(w->ud, path, msg);
    w->nerr++;
}

/* Size of one stored value of field f (array elements). */
static size_t
value_size(const sl_field_t *f)
{
    switch (f->type) {
    case SL_FIELD_BOOLEAN:
        return sizeof(int);
    case SL_FIELD_INTEGER:
        return sizeof(int64_t);
    case SL_FIELD_NUMBER:
        return sizeof(double);
    case SL_FIELD_STRING:
    case SL_FIELD_JSON:
        return sizeof(char *);
    case SL_FIELD_RECORD:
        return f->record ? f->record->size : 0;
    case SL_FIELD_ARRAY:
    case SL_FIELD_MAP:
        return sizeof(sl_conf_array_t);
    default:
        return 0;
    }
}

/* A double that is an integer an int64_t holds exactly (|d| < 2^63). */
static int
whole(double d)
{
    return isfinite(d) && d == floor(d) && d > -9223372036854775808.0 && d < 9223372036854775808.0;
}

/* SL_FIELD_MARK_UNSET: what an unset field of f's type holds. */
static void
mark_unset(const sl_field_t *f, char *dst)
{
    if (f->type == SL_FIELD_BOOLEAN) {
        *(int *)dst = -1;
    } else if (f->type == SL_FIELD_INTEGER) {
        int64_t i = INT64_MIN;
        memcpy(dst, &i, sizeof(i));
    } else if (f->type == SL_FIELD_NUMBER) {
        double d = NAN;
        memcpy(dst, &d, sizeof(d));
    }
}

static char *
json_text(json_object *v)
{
    size_t n;
    const char *t = json_object_to_json_string_length(
        v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    return sl_strndup(t, n);
}

static void fill_record(walk_t *w, const sl_schema_t *s, json_object *o, const char *path,
                        char *dst);

static int
check_length(walk_t *w, const sl_field_t *f, size_t n, const char *path)
{
    if (!(f->flags & SL_FIELD_RANGE))
        return 0;
    if ((double)n < f->min) {
        fail(w, path, "length must be at least %.15g", f->min);
        return -1;
    }
    if ((double)n > f->max) {
        fail(w, path, "length must be at most %.15g", f->max);
        return -1;
    }
    return 0;
}

static int
check_range(walk_t *w, const sl_field_t *f, double v, const char *path)
{
    if ((f->flags & SL_FIELD_RANGE) && (v < f->min || v > f->max)) {
        fail(w, path, "value should be between %.15g and %.15g", f->min, f->max);
        return -1;
    }
    return 0;
}

static void
fill_string(walk_t *w, const sl_field_t *f, json_object *v, const char *path, char **dst)
{
    const char *s, *why;
    size_t n;

    if (!json_object_is_type(v, json_type_string)) {
        fail(w, path, "expected a string");
        return;
    }
    s = json_object_get_string(v);
    n = (size_t)json_object_get_string_len(v);
    if (memchr(s, '\0', n) != NULL) {
        fail(w, path, "invalid value: contains a NUL character");
        return;
    }
    if (check_length(w, f, n, path) < 0)
        return;
    if (f->one_of) {
        char list[400];
        size_t used = 0;
        const char *const *o;

        for (o = f->one_of; *o; o++)
            if (strcmp(*o, s) == 0)
                break;
        if (*o == NULL) {
            list[0] = '\0';
            for (o = f->one_of; *o && used < sizeof(list); o++)
                used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s",
                                         o == f->one_of ? "" : ", ", *o);
            fail(w, path, "expected one of: %s", list);
            return;
        }
    }
    if (f->check && (why = f->check(s, n)) != NULL) {
        fail(w, path, "%s", why);
        return;
    }
    *dst = sl_strndup(s, n);
}

static void
fill_value(walk_t *w, const sl_field_t *f, json_object *v, const char *path, char *dst)
{
    char ep[PATH_MAX_LEN];

    switch (f->type) {
    case SL_FIELD_BOOLEAN:
        if (!json_object_is_type(v, json_type_boolean))
            fail(w, path, "expected a boolean");
        else
            *(int *)dst = json_object_get_boolean(v);
        return;
    case SL_FIELD_INTEGER: {
        int64_t i;

        if (json_object_is_type(v, json_type_int)) {
            i = json_object_get_int64(v);
        } else if (json_object_is_type(v, json_type_double) && whole(json_object_get_double(v))) {
            i = (int64_t)json_object_get_double(v); /* Kong: 8192.0 is an integer */
        } else {
            fail(w, path, "expected an integer");
            return;
        }
        if (check_range(w, f, (double)i, path) == 0)
            memcpy(dst, &i, sizeof(i));
        return;
    }
    case SL_FIELD_NUMBER:
        if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double)) {
            fail(w, path, "expected a number");
        } else {
            double d = json_object_get_double(v);
            if (!isfinite(d))
                fail(w, path, "expected a number");
            else if (check_range(w, f, d, path) == 0)
                memcpy(dst, &d, sizeof(d));
        }
        return;
    case SL_FIELD_STRING:
        fill_string(w, f, v, path, (char **)dst);
        return;
    case SL_FIELD_JSON:
        *(char **)dst = json_text(v);
        return;
    case SL_FIELD_RECORD:
        if (!json_object_is_type(v, json_type_object))
            fail(w, path, "expected a record");
        else if (f->record)
            fill_record(w, f->record, v, path, dst);
        return;
    case SL_FIELD_ARRAY: {
        sl_conf_array_t *a = (sl_conf_array_t *)dst;
        size_t n, es;

        if (!json_object_is_type(v, json_type_array)) {
            fail(w, path, "expected an array");
            return;
        }
        n = json_object_array_length(v);
        if (check_length(w, f, n, path) < 0 || f->elements == NULL)
            return;
        es = value_size(f->elements);
        if (n == 0 || es == 0)
            return;
        a->items = sl_xcalloc(n, es);
        a->n = n;
        for (size_t i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(v, i);
            snprintf(ep, sizeof(ep), "%s[%zu]", path, i);
            if (e == NULL)
                fail(w, ep, "expected a value, got null");
            else
                fill_value(w, f->elements, e, ep, (char *)a->items + i * es);
        }
        return;
    }
    case SL_FIELD_MAP: {
        sl_conf_array_t *a = (sl_conf_array_t *)dst;
        sl_conf_pair_t *pairs;
        size_t n, i = 0;

        if (!json_object_is_type(v, json_type_object)) {
            fail(w, path, "expected a map");
            return;
        }
        n = (size_t)json_object_object_length(v);
        if (check_length(w, f, n, path) < 0 || n == 0)
            return;
        pairs = sl_xcalloc(n, sizeof(*pairs));
        a->items = pairs;
        a->n = n;
        json_object_object_foreach(v, key, val)
        {
            const char *why = f->check ? f->check(key, strlen(key)) : NULL;
            snprintf(ep, sizeof(ep), "%s%s%s", path, *path ? "." : "", key);
            if (why != NULL) {
                fail(w, ep, "%s", why);
                continue;
            }
            pairs[i].key = sl_strndup(key, strlen(key));
            pairs[i].json = val ? json_text(val) : sl_strndup("null", 4);
            i++;
        }
        return;
    }
    default:
        fail(w, path, "schema error: unknown field type %d", (int)f->type);
        return;
    }
}

static void
fill_record(walk_t *w, const sl_schema_t *s, json_object *o, const char *path, char *dst)
{
    char fp[PATH_MAX_LEN];

    /* keys the table does not know */
    json_object_object_foreach(o, key, val)
    {
        const sl_field_t *f;
        (void)val;
        for (f = s->fields; f->type != SL_FIELD_END; f++)
            if (f->name && strcmp(f->name, key) == 0)
                break;
        if (f->type == SL_FIELD_END) {
            snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", key);
            fail(w, fp, "unknown field");
        }
    }
    for (const sl_field_t *f = s->fields; f->type != SL_FIELD_END; f++) {
        json_object *v = NULL, *def = NULL;

        snprintf(fp, sizeof(fp), "%s%s%s", path, *path ? "." : "", f->name ? f->name : "");
        json_object_object_get_ex(o, f->name, &v);
        if (v == NULL && f->def) {
            def = json_tokener_parse(f->def);
            if (def == NULL) {
                fail(w, fp, "schema error: invalid default %s", f->def);
                continue;
            }
            v = def;
        }
        if (v == NULL) {
            if (f->flags & SL_FIELD_REQUIRED) {
                fail(w, fp, "required field missing");
            } else if (f->flags & SL_FIELD_MARK_UNSET) {
                mark_unset(f, dst + f->offset);
            } else if (f->type == SL_FIELD_RECORD && f->record) {
                /* an absent record still gets its fields' defaults */
                json_object *empty = json_object_new_object();
                fill_record(w, f->record, empty, fp, dst + f->offset);
                json_object_put(empty);
            }
            continue;
        }
        fill_value(w, f, v, fp, dst + f->offset);
        json_object_put(def);
    }
}

static void
free_value(const sl_field_t *f, char *p)
{
    switch (f->type) {
    case SL_FIELD_STRING:
    case SL_FIELD_JSON:
        free(*(char **)p);
        *(char **)p = NULL;
        return;
    case SL_FIELD_RECORD:
        if (f->record)
            for (const sl_field_t *g = f->record->fields; g->type != SL_FIELD_END; g++)
                free_value(g, p + g->offset);
        return;
    case SL_FIELD_ARRAY: {
        sl_conf_array_t *a = (sl_conf_array_t *)p;
        size_t es = f->elements ? value_size(f->elements) : 0;
        for (size_t i = 0; es && i < a->n; i++)
            free_value(f->elements, (char *)a->items + i * es);
        free(a->items);
        a->items = NULL;
        a->n = 0;
        return;
    }
    case SL_FIELD_MAP: {
        sl_conf_array_t *a = (sl_conf_array_t *)p;
        sl_conf_pair_t *pairs = a->items;
        for (size_t i = 0; i < a->n; i++) {
            free(pairs[i].key);
            free(pairs[i].json);
        }
        free(a->items);
        a->items = NULL;
        a->n = 0;
        return;
    }
    default:
        return;
    }
}

void
sl_schema_free(const sl_schema_t *s, void *block)
{
    if (s == NULL || block == NULL)
        return;
    for (const sl_field_t *f = s->fields; f->type != SL_FIELD_END; f++)
        free_value(f, (char *)block + f->offset);
    free(block);
}

static json_object *
parse_text(walk_t *w, const char *json, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *root;
    enum json_tokener_error e;

    if (tok == NULL) {
        fail(w, "", "out of memory");
        return NULL;
    }
    int whole = 0;

    root = json_tokener_parse_ex(tok, json, (int)len);
    e = json_tokener_get_error(tok);
    if (root == NULL && e == json_tokener_continue) {
        root = json_tokener_parse_ex(tok, "", 1); /* "1.5" could go on: end of input */
        e = json_tokener_get_error(tok);
        whole = 1; /* everything was consumed */
    }
    if (root == NULL && e != json_tokener_success) {
        fail(w, "", "invalid JSON: %s", json_tokener_error_desc(e));
    } else if (root != NULL && !whole) {
        for (size_t i = json_tokener_get_parse_end(tok); i < len; i++) {
            if (json[i] != ' ' && json[i] != '\t' && json[i] != '\r' && json[i] != '\n') {
                fail(w, "", "invalid JSON: trailing characters");
                json_object_put(root);
                root = NULL;
                break;
            }
        }
    }
    json_tokener_free(tok);
    return root;
}

int
sl_schema_parse(const sl_schema_t *s, const char *json, size_t len, sl_schema_err_fn err, void *ud,
                const sl_api_t *api, sl_conf_ctx_t *cx, void **block)
{
    walk_t w = {err, ud, 0};
    json_object *root;
    char *b;

    *block = NULL;
    if (s == NULL || s->fields == NULL) {
        fail(&w, "", "schema error: no field table");
        return -1;
    }
    if ((root = parse_text(&w, json, len)) == NULL) {
        if (w.nerr == 0)
            fail(&w, "", "expected a record");
        return -1;
    }
    if (!json_object_is_type(root, json_type_object)) {
        fail(&w, "", "expected a record");
        json_object_put(root);
        return -1;
    }
    b = sl_xcalloc(1, s->size ? s->size : 1);
    fill_record(&w, s, root, "", b);
    json_object_put(root);
    if (w.nerr == 0 && s->check && s->check(api, cx, b) != 0 && w.nerr == 0)
        w.nerr++; /* the check reported through api->conf_error */
    if (w.nerr > 0) {
        sl_schema_free(s, b);
        return -1;
    }
    *block = b;
    return 0;
}
