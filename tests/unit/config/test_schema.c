/* test_schema.c - the config-schema checker (conf/schema.c): every type,
 * defaults, null as unset, ranges, one-of, nested records, arrays of
 * records, maps, string checks, the cross-field check, and every error with
 * its Kong-style path; the filled block is released without leaks. */

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf/schema.h"

typedef struct limit {
    int64_t window;
    double limit;
} limit_t;

typedef struct model {
    char *provider;
    char *name;
    struct {
        double temperature;
        int64_t max_tokens;
    } options;
} model_t;

typedef struct conf {
    char *route_type;
    int stream;
    model_t model;
    sl_conf_array_t limits; /* limit_t */
    sl_conf_array_t names;  /* char * */
    sl_conf_array_t fields; /* sl_conf_pair_t */
    char *extra;            /* JSON */
    char *optional;
    int64_t retries;
} conf_t;

static const char *
no_spaces(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == ' ')
            return "invalid value: no spaces allowed";
    return NULL;
}

static const char *const providers[] = {"openai", "dashscope", "anthropic", NULL};

static const sl_field_t options_fields[] = {
    {.name = "temperature",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_RANGE,
     .offset = offsetof(model_t, options.temperature) - offsetof(model_t, options),
     .def = "1.0",
     .min = 0,
     .max = 5},
    {.name = "max_tokens",
     .type = SL_FIELD_INTEGER,
     .offset = offsetof(model_t, options.max_tokens) - offsetof(model_t, options),
     .def = "256"},
    {.type = SL_FIELD_END},
};
static const sl_schema_t options_schema = {sizeof(((model_t *)0)->options), options_fields, NULL};

static const sl_field_t model_fields[] = {
    {.name = "provider",
     .type = SL_FIELD_STRING,
     .flags = SL_FIELD_REQUIRED,
     .offset = offsetof(model_t, provider),
     .one_of = providers},
    {.name = "name", .type = SL_FIELD_STRING, .offset = offsetof(model_t, name)},
    {.name = "options",
     .type = SL_FIELD_RECORD,
     .offset = offsetof(model_t, options),
     .record = &options_schema},
    {.type = SL_FIELD_END},
};
static const sl_schema_t model_schema = {sizeof(model_t), model_fields, NULL};

static const sl_field_t limit_fields[] = {
    {.name = "window",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = offsetof(limit_t, window),
     .min = 1,
     .max = 86400},
    {.name = "limit",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_REQUIRED,
     .offset = offsetof(limit_t, limit)},
    {.type = SL_FIELD_END},
};
static const sl_schema_t limit_schema = {sizeof(limit_t), limit_fields, NULL};
static const sl_field_t limit_elem = {.type = SL_FIELD_RECORD, .record = &limit_schema};
static const sl_field_t name_elem = {
    .type = SL_FIELD_STRING, .flags = SL_FIELD_RANGE, .min = 1, .max = 8, .check = no_spaces};

static int check_calls;
static int
cross_check(const sl_api_t *api, sl_conf_ctx_t *cx, void *block)
{
    conf_t *c = block;

    check_calls++;
    if (c->stream && c->limits.n == 0) {
        api->conf_error(cx, "limits", "required when stream is true");
        return -1;
    }
    return 0;
}

#define F(m) offsetof(conf_t, m)
static const sl_field_t conf_fields[] = {
    {.name = "route_type",
     .type = SL_FIELD_STRING,
     .flags = SL_FIELD_REQUIRED,
     .offset = F(route_type),
     .def = "\"llm/v1/chat\""},
    {.name = "stream", .type = SL_FIELD_BOOLEAN, .offset = F(stream), .def = "false"},
    {.name = "model",
     .type = SL_FIELD_RECORD,
     .flags = SL_FIELD_REQUIRED,
     .offset = F(model),
     .record = &model_schema},
    {.name = "limits",
     .type = SL_FIELD_ARRAY,
     .flags = SL_FIELD_RANGE,
     .offset = F(limits),
     .min = 0,
     .max = 3,
     .elements = &limit_elem},
    {.name = "names",
     .type = SL_FIELD_ARRAY,
     .offset = F(names),
     .def = "[\"apikey\"]",
     .elements = &name_elem},
    {.name = "fields", .type = SL_FIELD_MAP, .offset = F(fields), .check = no_spaces},
    {.name = "extra", .type = SL_FIELD_JSON, .offset = F(extra)},
    {.name = "optional", .type = SL_FIELD_STRING, .offset = F(optional)},
    {.name = "retries",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_RANGE,
     .offset = F(retries),
     .def = "5",
     .min = 0,
     .max = 10},
    {.type = SL_FIELD_END},
};
#undef F
static const sl_schema_t conf_schema = {sizeof(conf_t), conf_fields, cross_check};

/* errors as "path: message" lines */
static char errbuf[8192];

static void
collect(void *ud, const char *path, const char *msg)
{
    size_t n = strlen(errbuf);
    (void)ud;
    snprintf(errbuf + n, sizeof(errbuf) - n, "%s: %s\n", path, msg);
}

static void
api_conf_error(sl_conf_ctx_t *cx, const char *field, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    (void)cx;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    collect(NULL, field, msg);
}

static const sl_api_t test_api = {.abi_major = SL_PLUGIN_ABI_MAJOR, .conf_error = api_conf_error};

static conf_t *
parse(const char *json, int want_ok)
{
    void *block = (void *)1;
    int rc;

    errbuf[0] = '\0';
    rc = sl_schema_parse(&conf_schema, json, strlen(json), collect, NULL, &test_api, NULL, &block);
    if (want_ok && rc != 0)
        fail_msg("unexpected errors for %s:\n%s", json, errbuf);
    if (!want_ok) {
        assert_int_equal(rc, -1);
        assert_null(block);
    }
    return block;
}

static void
test_defaults_and_values(void **state)
{
    conf_t *c;
    const limit_t *l;
    const sl_conf_pair_t *p;

    (void)state;
    c = parse("{\"model\": {\"provider\": \"dashscope\"}}", 1);
    assert_string_equal(c->route_type, "llm/v1/chat");
    assert_int_equal(c->stream, 0);
    assert_string_equal(c->model.provider, "dashscope");
    assert_null(c->model.name);
    assert_true(c->model.options.temperature == 1.0); /* absent record: its defaults */
    assert_int_equal(c->model.options.max_tokens, 256);
    assert_int_equal(c->limits.n, 0);
    assert_int_equal(c->names.n, 1);
    assert_string_equal(((char **)c->names.items)[0], "apikey");
    assert_int_equal(c->fields.n, 0);
    assert_null(c->extra);
    assert_null(c->optional);
    assert_int_equal(c->retries, 5);
    sl_schema_free(&conf_schema, c);

    /* every type given; null is "not set" (decK dumps) */
    c = parse("{\"route_type\": \"llm/v1/completions\", \"stream\": true,"
              " \"model\": {\"provider\": \"openai\", \"name\": \"gpt\","
              "   \"options\": {\"temperature\": 0.5, \"max_tokens\": null}},"
              " \"limits\": [{\"window\": 60, \"limit\": 10}, {\"window\": 3600, \"limit\": 2.5}],"
              " \"names\": [\"a\", \"b-c\"], \"fields\": {\"x.y\": {\"k\": [1, null]}, \"z\": 2},"
              " \"extra\": [true, \"s\"], \"optional\": null, \"retries\": 0}",
              1);
    assert_string_equal(c->route_type, "llm/v1/completions");
    assert_int_equal(c->stream, 1);
    assert_string_equal(c->model.name, "gpt");
    assert_true(c->model.options.temperature == 0.5);
    assert_int_equal(c->model.options.max_tokens, 256);
    assert_int_equal(c->limits.n, 2);
    l = c->limits.items;
    assert_int_equal(l[0].window, 60);
    assert_true(l[0].limit == 10.0);
    assert_int_equal(l[1].window, 3600);
    assert_true(l[1].limit == 2.5);
    assert_int_equal(c->names.n, 2);
    assert_string_equal(((char **)c->names.items)[1], "b-c");
    assert_int_equal(c->fields.n, 2);
    p = c->fields.items;
    assert_string_equal(p[0].key, "x.y");
    assert_string_equal(p[0].json, "{\"k\":[1,null]}");
    assert_string_equal(p[1].json, "2");
    assert_string_equal(c->extra, "[true,\"s\"]");
    assert_null(c->optional);
    assert_int_equal(c->retries, 0);
    sl_schema_free(&conf_schema, c);
    sl_schema_free(&conf_schema, NULL);
}

static void
test_errors_with_paths(void **state)
{
    (void)state;
    parse("{\"route_type\": 3, \"stream\": \"yes\", \"colour\": \"red\","
          " \"model\": {\"provider\": \"acme\", \"options\": {\"temperature\": 7, \"max_tokens\": "
          "1.5}},"
          " \"limits\": [{\"window\": 0, \"limit\": 1}, {\"limit\": \"x\"}, 7, {\"window\": 5, "
          "\"limit\": 1, \"burst\": 2}],"
          " \"names\": [\"\", \"a b\", \"waytoolongname\", null],"
          " \"fields\": {\"bad key\": 1}, \"retries\": 11}",
          0);
    const char *want[] = {
        "colour: unknown field",
        "route_type: expected a string",
        "stream: expected a boolean",
        "model.provider: expected one of: openai, dashscope, anthropic",
        "model.options.temperature: value should be between 0 and 5",
        "model.options.max_tokens: expected an integer",
        "limits: length must be at most 3",
        "names[0]: length must be at least 1",
        "names[1]: invalid value: no spaces allowed",
        "names[2]: length must be at most 8",
        "names[3]: expected a value, got null",
        "fields.bad key: invalid value: no spaces allowed",
        "retries: value should be between 0 and 10",
        NULL,
    };
    for (const char *const *w = want; *w; w++)
        if (strstr(errbuf, *w) == NULL)
            fail_msg("missing \"%s\" in:\n%s", *w, errbuf);

    /* element errors inside an array of records (length fine this time) */
    parse("{\"model\": {\"provider\": \"openai\"},"
          " \"limits\": [{\"window\": 0, \"limit\": 1}, {\"limit\": \"x\"}, 7]}",
          0);
    assert_non_null(strstr(errbuf, "limits[0].window: value should be between 1 and 86400\n"));
    assert_non_null(strstr(errbuf, "limits[1].window: required field missing\n"));
    assert_non_null(strstr(errbuf, "limits[1].limit: expected a number\n"));
    assert_non_null(strstr(errbuf, "limits[2]: expected a record\n"));

    parse("{}", 0);
    assert_string_equal(errbuf, "model: required field missing\n");
    parse("{\"model\": {}}", 0);
    assert_string_equal(errbuf, "model.provider: required field missing\n");
    parse("[1]", 0);
    assert_string_equal(errbuf, ": expected a record\n");
    parse("{\"model\": ", 0);
    assert_non_null(strstr(errbuf, ": invalid JSON"));
    parse("{} x", 0);
    assert_string_equal(errbuf, ": invalid JSON: trailing characters\n");
    parse("{\"optional\": \"a\\u0000b\", \"model\": {\"provider\": \"openai\"}}", 0);
    assert_string_equal(errbuf, "optional: invalid value: contains a NUL character\n");
}

static void
test_cross_check(void **state)
{
    conf_t *c;

    (void)state;
    check_calls = 0;
    parse("{\"stream\": true, \"model\": {\"provider\": \"openai\"}}", 0);
    assert_string_equal(errbuf, "limits: required when stream is true\n");
    assert_int_equal(check_calls, 1);
    /* not called when a field is already wrong */
    parse("{\"stream\": true, \"model\": {}}", 0);
    assert_int_equal(check_calls, 1);
    c = parse("{\"stream\": true, \"model\": {\"provider\": \"openai\"},"
              " \"limits\": [{\"window\": 1, \"limit\": 1}]}",
              1);
    assert_int_equal(check_calls, 2);
    sl_schema_free(&conf_schema, c);
}

/* SL_FIELD_MARK_UNSET (since 1.4): an unset optional field is told from
 * 0; an integer written as a whole double (8192.0) is an integer. */
typedef struct opt {
    int flag;
    int64_t count;
    double temp;
} opt_t;

static const sl_field_t opt_fields[] = {
    {.name = "flag", .type = SL_FIELD_BOOLEAN, .flags = SL_FIELD_MARK_UNSET, .offset = 0},
    {.name = "count",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_MARK_UNSET | SL_FIELD_RANGE,
     .offset = offsetof(opt_t, count),
     .min = 0,
     .max = 10000},
    {.name = "temp",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_MARK_UNSET,
     .offset = offsetof(opt_t, temp)},
    {.type = SL_FIELD_END},
};
static const sl_schema_t opt_schema = {sizeof(opt_t), opt_fields, NULL};

static opt_t *
parse_opt(const char *json)
{
    void *block = NULL;

    errbuf[0] = '\0';
    sl_schema_parse(&opt_schema, json, strlen(json), collect, NULL, &test_api, NULL, &block);
    return block;
}

static void
test_mark_unset(void **state)
{
    opt_t *o;

    (void)state;
    o = parse_opt("{\"temp\": null}");
    assert_non_null(o);
    assert_int_equal(o->flag, -1);
    assert_true(o->count == INT64_MIN);
    assert_true(isnan(o->temp));
    sl_schema_free(&opt_schema, o);

    o = parse_opt("{\"flag\": false, \"count\": 0, \"temp\": 0}");
    assert_non_null(o);
    assert_int_equal(o->flag, 0);
    assert_true(o->count == 0);
    assert_true(o->temp == 0.0);
    sl_schema_free(&opt_schema, o);

    o = parse_opt("{\"count\": 8192.0}");
    assert_non_null(o);
    assert_true(o->count == 8192);
    sl_schema_free(&opt_schema, o);

    assert_null(parse_opt("{\"count\": 2.5}"));
    assert_string_equal(errbuf, "count: expected an integer\n");
    assert_null(parse_opt("{\"count\": 1e300}"));
    assert_string_equal(errbuf, "count: expected an integer\n");
    assert_null(parse_opt("{\"count\": 10001.0}"));
    assert_string_equal(errbuf, "count: value should be between 0 and 10000\n");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values),
        cmocka_unit_test(test_errors_with_paths),
        cmocka_unit_test(test_cross_check),
        cmocka_unit_test(test_mark_unset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
