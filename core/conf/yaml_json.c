/* yaml_json.c - libyaml events -> json-c tree, plus a table of source lines
 * by key path.  Config errors quote these lines, so every node gets one.
 *
 * The builder keeps a stack of open collections; a mapping frame alternates
 * between expecting a key and expecting a value.  Anchors are remembered by
 * name and an alias inserts a deep copy, so the tree stays a tree. */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <yaml.h>

#include "conf/yaml_json.h"

typedef struct sl_yaml_line_ent {
    char *path;
    int line;
} sl_yaml_line_ent_t;

struct sl_yaml_lines {
    sl_yaml_line_ent_t *items;
    size_t n, cap;
};

typedef struct sl_yaml_frame {
    json_object *obj;
    int is_map;
    char *path;
    size_t idx; /* next sequence index */
    char *key;  /* map: pending key, NULL when expecting a key */
    int key_line;
} sl_yaml_frame_t;

typedef struct sl_yaml_anchor {
    char *name;
    json_object *obj; /* borrowed: lives in the tree */
} sl_yaml_anchor_t;

typedef struct sl_yaml_builder {
    const char *name;
    sl_errors_t *errs;
    sl_yaml_lines_t *lines;
    sl_yaml_frame_t *stack;
    size_t depth, cap;
    sl_yaml_anchor_t *anchors;
    size_t nanchors;
    json_object *root;
    int have_root;
    int failed;
} sl_yaml_builder_t;

static void
lines_add(sl_yaml_lines_t *l, const char *path, int line)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->items = sl_xrealloc(l->items, l->cap * sizeof(*l->items));
    }
    l->items[l->n].path = sl_strndup(path, strlen(path));
    l->items[l->n].line = line;
    l->n++;
}

static int
ent_cmp(const void *a, const void *b)
{
    return strcmp(((const sl_yaml_line_ent_t *)a)->path, ((const sl_yaml_line_ent_t *)b)->path);
}

int
sl_yaml_line(const sl_yaml_lines_t *lines, const char *path)
{
    sl_yaml_line_ent_t key, *e;

    if (lines == NULL || lines->n == 0)
        return 0;
    key.path = (char *)path;
    e = bsearch(&key, lines->items, lines->n, sizeof(key), ent_cmp);
    return e ? e->line : 0;
}

int
sl_yaml_line_near(const sl_yaml_lines_t *lines, const char *path)
{
    char *p = sl_strndup(path, strlen(path));
    int line = 0;
    size_t n = strlen(p);

    for (;;) {
        line = sl_yaml_line(lines, p);
        if (line > 0 || n == 0)
            break;
        /* drop the last component: ".key" or "[n]" */
        while (n > 0 && p[n - 1] != '.' && p[n - 1] != '[')
            n--;
        if (n > 0)
            n--;
        p[n] = '\0';
    }
    free(p);
    return line;
}

void
sl_yaml_lines_free(sl_yaml_lines_t *lines)
{
    if (lines == NULL)
        return;
    for (size_t i = 0; i < lines->n; i++)
        free(lines->items[i].path);
    free(lines->items);
    free(lines);
}

/* ---- scalar typing (YAML 1.2 core schema, plus True/TRUE etc.) ---- */

static int
is_int(const char *s, long long *out)
{
    const char *p = s;
    char *end;
    int base = 10;

    if (*p == '+' || *p == '-')
        p++;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o') && p == s) {
        base = p[1] == 'x' ? 16 : 8;
        p += 2;
    }
    if (*p == '\0')
        return 0;
    for (const char *q = p; *q; q++) {
        if (base == 16 ? !((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f') ||
                           (*q >= 'A' && *q <= 'F'))
                       : !(*q >= '0' && *q <= (base == 8 ? '7' : '9')))
            return 0;
    }
    errno = 0;
    *out = strtoll(base == 10 ? s : p, &end, base);
    return errno == 0 && *end == '\0';
}

static int
is_float(const char *s, double *out)
{
    const char *p = s;
    int digits = 0;

    if (*p == '+' || *p == '-')
        p++;
    if (!strcmp(p, ".inf") || !strcmp(p, ".Inf") || !strcmp(p, ".INF")) {
        *out = *s == '-' ? -INFINITY : INFINITY;
        return 1;
    }
    if (p == s && (!strcmp(p, ".nan") || !strcmp(p, ".NaN") || !strcmp(p, ".NAN"))) {
        *out = NAN;
        return 1;
    }
    while (*p >= '0' && *p <= '9') {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    if (digits == 0)
        return 0;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!(*p >= '0' && *p <= '9'))
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p != '\0')
        return 0;
    *out = strtod(s, NULL);
    return 1;
}

static json_object *
scalar_to_json(const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    long long i;
    double d;

    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
        (tag && (!strcmp(tag, YAML_STR_TAG) || !strcmp(tag, "!"))))
        return json_object_new_string_len(v, (int)ev->data.scalar.length);
    if (*v == '\0' || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
        !strcmp(v, "NULL"))
        return NULL;
    if (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))
        return json_object_new_boolean(1);
    if (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))
        return json_object_new_boolean(0);
    if (is_int(v, &i))
        return json_object_new_int64(i);
    if (is_float(v, &d))
        return json_object_new_double(d);
    return json_object_new_string_len(v, (int)ev->data.scalar.length);
}

/* ---- the builder ---- */

static void
berr(sl_yaml_builder_t *b, const yaml_mark_t *m, const char *what, const char *detail)
{
    sl_errors_add(b->errs, "%s:%zu:%zu: %s%s%s", b->name, m->line + 1, m->column + 1, what,
                  detail ? ": " : "", detail ? detail : "");
    b->failed = 1;
}

/* The path a new child of the top frame gets, and its line. */
static char *
child_path(sl_yaml_builder_t *b, int *line, int mark_line)
{
    sl_yaml_frame_t *f;
    char *p = NULL;
    int r;

    if (b->depth == 0) {
        *line = mark_line;
        return sl_strndup("", 0);
    }
    f = &b->stack[b->depth - 1];
    if (f->is_map) {
        *line = f->key_line;
        r = f->path[0] ? asprintf(&p, "%s.%s", f->path, f->key) : asprintf(&p, "%s", f->key);
    } else {
        *line = mark_line;
        r = asprintf(&p, "%s[%zu]", f->path, f->idx);
    }
    if (r < 0)
        abort();
    return p;
}

/* Attach a finished or newly opened value to the top frame (or as root). */
static void
attach(sl_yaml_builder_t *b, json_object *v)
{
    sl_yaml_frame_t *f;

    if (b->depth == 0) {
        b->root = v;
        b->have_root = 1;
        return;
    }
    f = &b->stack[b->depth - 1];
    if (f->is_map) {
        json_object_object_add(f->obj, f->key, v);
        free(f->key);
        f->key = NULL;
    } else {
        json_object_array_add(f->obj, v);
        f->idx++;
    }
}

static void
remember_anchor(sl_yaml_builder_t *b, const yaml_char_t *anchor, json_object *v)
{
    if (anchor == NULL)
        return;
    b->anchors = sl_xrealloc(b->anchors, (b->nanchors + 1) * sizeof(*b->anchors));
    b->anchors[b->nanchors].name = sl_strndup((const char *)anchor, strlen((const char *)anchor));
    b->anchors[b->nanchors].obj = v;
    b->nanchors++;
}

/* A map frame expecting a key?  Then the event must be a scalar key. */
static int
expecting_key(sl_yaml_builder_t *b)
{
    return b->depth > 0 && b->stack[b->depth - 1].is_map && b->stack[b->depth - 1].key == NULL;
}

static void
on_value(sl_yaml_builder_t *b, const yaml_event_t *ev, json_object *v, int collection,
         const yaml_char_t *anchor)
{
    int line;
    char *path = child_path(b, &line, (int)ev->start_mark.line + 1);

    lines_add(b->lines, path, line);
    attach(b, v);
    remember_anchor(b, anchor, v);
    if (collection) {
        if (b->depth == b->cap) {
            b->cap = b->cap ? b->cap * 2 : 16;
            b->stack = sl_xrealloc(b->stack, b->cap * sizeof(*b->stack));
        }
        b->stack[b->depth++] = (sl_yaml_frame_t){
            .obj = v,
            .is_map = json_object_is_type(v, json_type_object),
            .path = path,
        };
    } else {
        free(path);
    }
}

static void
on_key(sl_yaml_builder_t *b, const yaml_event_t *ev)
{
    sl_yaml_frame_t *f = &b->stack[b->depth - 1];
    const char *k = (const char *)ev->data.scalar.value;

    if (json_object_object_get_ex(f->obj, k, NULL)) {
        berr(b, &ev->start_mark, "duplicate key", k);
        return;
    }
    f->key = sl_strndup(k, ev->data.scalar.length);
    f->key_line = (int)ev->start_mark.line + 1;
}

static void
on_alias(sl_yaml_builder_t *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    json_object *copy = NULL;

    for (size_t i = b->nanchors; i-- > 0;) {
        if (strcmp(b->anchors[i].name, name) != 0)
            continue;
        if (b->anchors[i].obj != NULL &&
            json_object_deep_copy(b->anchors[i].obj, &copy, NULL) != 0) {
            berr(b, &ev->start_mark, "cannot copy alias", name);
            return;
        }
        if (expecting_key(b)) {
            json_object_put(copy);
            berr(b, &ev->start_mark, "an alias cannot be a mapping key", name);
            return;
        }
        on_value(b, ev, copy, 0, NULL);
        return;
    }
    berr(b, &ev->start_mark, "unknown alias", name);
}

static void
handle_event(sl_yaml_builder_t *b, const yaml_event_t *ev)
{
    json_object *v;

    switch (ev->type) {
    case YAML_DOCUMENT_START_EVENT:
        if (b->have_root)
            berr(b, &ev->start_mark, "only one YAML document is allowed", NULL);
        break;
    case YAML_SCALAR_EVENT:
        if (expecting_key(b)) {
            on_key(b, ev);
            break;
        }
        v = scalar_to_json(ev);
        on_value(b, ev, v, 0, ev->data.scalar.anchor);
        break;
    case YAML_MAPPING_START_EVENT:
    case YAML_SEQUENCE_START_EVENT:
        if (expecting_key(b)) {
            berr(b, &ev->start_mark, "mapping keys must be scalars", NULL);
            break;
        }
        v = ev->type == YAML_MAPPING_START_EVENT ? json_object_new_object()
                                                 : json_object_new_array();
        on_value(b, ev, v, 1,
                 ev->type == YAML_MAPPING_START_EVENT ? ev->data.mapping_start.anchor
                                                      : ev->data.sequence_start.anchor);
        break;
    case YAML_MAPPING_END_EVENT:
    case YAML_SEQUENCE_END_EVENT:
        if (b->depth > 0) {
            b->depth--;
            free(b->stack[b->depth].path);
            free(b->stack[b->depth].key);
        }
        break;
    case YAML_ALIAS_EVENT:
        on_alias(b, ev);
        break;
    default:
        break;
    }
}

static void
builder_free(sl_yaml_builder_t *b)
{
    while (b->depth > 0) {
        b->depth--;
        free(b->stack[b->depth].path);
        free(b->stack[b->depth].key);
    }
    free(b->stack);
    for (size_t i = 0; i < b->nanchors; i++)
        free(b->anchors[i].name);
    free(b->anchors);
}

/* JSON that libyaml refuses (rare: e.g. odd escapes) still loads, without
 * line numbers, if json-c accepts it. */
static int
json_fallback(const char *buf, size_t len, json_object **root)
{
    struct json_tokener *tok;
    json_object *obj;
    size_t i = 0;

    while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\r' || buf[i] == '\n'))
        i++;
    if (i == len || (buf[i] != '{' && buf[i] != '['))
        return SL_ERROR;
    tok = json_tokener_new();
    obj = json_tokener_parse_ex(tok, buf, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(obj);
        json_tokener_free(tok);
        return SL_ERROR;
    }
    json_tokener_free(tok);
    *root = obj;
    return SL_OK;
}

int
sl_yaml_parse(const char *name, const char *buf, size_t len, json_object **root,
              sl_yaml_lines_t **lines, sl_errors_t *errs)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    sl_yaml_builder_t b = {.name = name};
    sl_errors_t yerrs = {0};
    int done = 0;

    *root = NULL;
    *lines = NULL;
    b.errs = &yerrs;
    b.lines = sl_xcalloc(1, sizeof(*b.lines));
    if (!yaml_parser_initialize(&parser))
        abort();
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    while (!done && !b.failed) {
        if (!yaml_parser_parse(&parser, &ev)) {
            sl_errors_add(&yerrs, "%s:%zu:%zu: %s%s%s", name, parser.problem_mark.line + 1,
                          parser.problem_mark.column + 1,
                          parser.problem ? parser.problem : "invalid YAML",
                          parser.context ? " " : "", parser.context ? parser.context : "");
            b.failed = 1;
            break;
        }
        handle_event(&b, &ev);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    builder_free(&b);

    if (b.failed) {
        json_object_put(b.root);
        sl_yaml_lines_free(b.lines);
        if (json_fallback(buf, len, root) == SL_OK) {
            sl_errors_free(&yerrs);
            *lines = sl_xcalloc(1, sizeof(**lines));
            return SL_OK;
        }
        for (size_t i = 0; i < yerrs.n; i++)
            sl_errors_add(errs, "%s", yerrs.msgs[i]);
        sl_errors_free(&yerrs);
        return SL_ERROR;
    }
    if (b.lines->n > 0)
        qsort(b.lines->items, b.lines->n, sizeof(*b.lines->items), ent_cmp);
    *root = b.root;
    *lines = b.lines;
    return SL_OK;
}
