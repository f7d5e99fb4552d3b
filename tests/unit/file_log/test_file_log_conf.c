/* test_file_log_conf.c - file-log's config_parse (its field table through the
 * host's schema checker): defaults, fields, errors. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "fake_api.h"
#include "file_log.h"

extern const sl_plugin_t sluice_plugin;

static void
test_descriptor(void **state)
{
    (void)state;
    assert_int_equal(sluice_plugin.abi_major, SL_PLUGIN_ABI_MAJOR);
    assert_string_equal(sluice_plugin.name, "file-log");
    assert_int_equal(sluice_plugin.priority, 9);
    assert_non_null(sluice_plugin.log);
    assert_null(sluice_plugin.access);
}

static void
test_defaults(void **state)
{
    fl_conf_t *c;

    (void)state;
    fake_reset();
    assert_int_equal(fake_parse("{\"path\":\"/tmp/claude.json\"}", (void **)&c), 0);
    assert_string_equal(c->path, "/tmp/claude.json");
    assert_int_equal(c->reopen, 0);
    assert_int_equal(c->redact_api_keys, 1);
    assert_int_equal(c->custom_fields.n, 0);
    assert_null(c->writer);
    sluice_plugin.config_free(c);
    assert_string_equal(fake_conf_errors, "");
}

static void
test_all_fields(void **state)
{
    fl_conf_t *c;
    const char *json =
        "{ \"path\": \"/var/log/x y.log\", \"reopen\": true, \"redact_api_keys\": false,\n"
        "  \"custom_fields\": {\"team\": \"ai\", \"route.cost\": 1.5, \"a.b.c\": [1,\"/x\"],"
        "  \"n\": null, \"o\": {\"k\": true}},\n"
        "  \"custom_fields_by_lua\": null }  ";

    (void)state;
    fake_reset();
    assert_int_equal(fake_parse(json, (void **)&c), 0);
    assert_string_equal(fake_conf_errors, "");
    assert_string_equal(c->path, "/var/log/x y.log");
    assert_int_equal(c->reopen, 1);
    assert_int_equal(c->redact_api_keys, 0);
    assert_int_equal(c->custom_fields.n, 5);
    const sl_conf_pair_t *f = c->custom_fields.items;
    assert_string_equal(f[0].key, "team");
    assert_string_equal(f[0].json, "\"ai\"");
    assert_string_equal(f[1].key, "route.cost");
    assert_string_equal(f[1].json, "1.5");
    assert_string_equal(f[2].json, "[1,\"/x\"]");
    assert_string_equal(f[3].json, "null");
    assert_string_equal(f[4].json, "{\"k\":true}");
    sluice_plugin.config_free(c);
}

/* Parse `json`, expect failure and exactly `errors` from conf_error. */
static void
expect_errors(const char *json, const char *errors)
{
    void *c = (void *)1;

    fake_reset();
    assert_int_equal(fake_parse(json, &c), -1);
    assert_null(c);
    assert_string_equal(fake_conf_errors, errors);
}

static void
test_errors(void **state)
{
    (void)state;
    expect_errors("{}", "path: required field missing\n");
    expect_errors("{\"path\":null}", "path: required field missing\n");
    expect_errors("{\"path\":42}", "path: expected a string\n");
    expect_errors("{\"path\":\" /tmp/x\"}", "path: not a valid filename\n");
    expect_errors("{\"path\":\"/tmp/x \"}", "path: not a valid filename\n");
    expect_errors("{\"path\":\"/tmp/a*b\"}", "path: not a valid filename\n");
    expect_errors("{\"path\":\"/tmp/100%\"}", "path: not a valid filename\n");
    expect_errors("{\"path\":\"x\"}", "path: not a valid filename\n");
    expect_errors("{\"path\":\"/tmp/a\\u0000b\"}",
                  "path: invalid value: contains a NUL character\n");
    expect_errors("{\"path\":\"/tmp/x\",\"reopen\":\"yes\"}", "reopen: expected a boolean\n");
    expect_errors("{\"path\":\"/tmp/x\",\"redact_api_keys\":1}",
                  "redact_api_keys: expected a boolean\n");
    expect_errors("{\"path\":\"/tmp/x\",\"custom_fields\":[1]}", "custom_fields: expected a map\n");
    expect_errors("{\"path\":\"/tmp/x\",\"custom_fields\":{\"a..b\":1,\"ok\":2,\".c\":3}}",
                  "custom_fields.a..b: invalid key: expected dot-separated, non-empty names\n"
                  "custom_fields..c: invalid key: expected dot-separated, non-empty names\n");
    expect_errors(
        "{\"path\":\"/tmp/x\",\"custom_fields_by_lua\":{\"a\":\"return 1\"}}",
        "custom_fields_by_lua: Lua is not supported; use custom_fields (key -> JSON value)\n");
    expect_errors("{\"path\":\"/tmp/x\",\"pathh\":\"/tmp/y\",\"color\":1}",
                  "pathh: unknown field\ncolor: unknown field\n");
    /* Every problem is reported, not only the first. */
    expect_errors("{\"reopen\":1,\"x\":2}",
                  "x: unknown field\npath: required field missing\nreopen: expected a boolean\n");
    expect_errors("[]", ": expected a record\n");
    expect_errors("{\"path\":", ": invalid JSON: unexpected end of data\n");
    expect_errors("null", ": expected a record\n");
    expect_errors("1.5", ": expected a record\n");
    expect_errors("", ": invalid JSON: unexpected end of data\n");
    expect_errors("{\"path\":\"/tmp/x\"} x", ": invalid JSON: trailing characters\n");
}

static void
test_filename_rule(void **state)
{
    (void)state;
    assert_true(fl_valid_filename("/tmp/claude.json", 16));
    assert_true(fl_valid_filename("ab", 2));
    assert_true(fl_valid_filename("a b", 3));
    assert_false(fl_valid_filename("a", 1));
    assert_false(fl_valid_filename("\ta", 2));
    assert_false(fl_valid_filename("a\n", 2));
    assert_false(fl_valid_filename("a&b", 3));
    assert_false(fl_valid_filename("a`b", 3));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),    cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_all_fields),    cmocka_unit_test(test_errors),
        cmocka_unit_test(test_filename_rule),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
