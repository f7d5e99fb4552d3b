/* test_env_subst.c - decK `${{ env "DECK_X" }}` substitution. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf/config.h"
#include "conf/yaml_json.h"

static char *
subst(const char *in, sl_errors_t *errs)
{
    return sl_conf_env_substitute("kong.yaml", in, strlen(in), errs);
}

static void
test_plain_string(void **state)
{
    sl_errors_t errs = {0};
    char *out;

    (void)state;
    setenv("DECK_KEY", "sk-123", 1);
    out = subst("a: 1\nh: 'Bearer ${{ env \"DECK_KEY\" }}'\n", &errs);
    assert_non_null(out);
    assert_string_equal(out, "a: 1\nh: 'Bearer sk-123'\n");
    assert_int_equal(errs.n, 0);
    free(out);
    /* no spaces, backquoted name, several per line */
    out = subst("x: ${{env `DECK_KEY`}}-${{ env \"DECK_KEY\" }}", &errs);
    assert_string_equal(out, "x: sk-123-sk-123");
    free(out);
}

/* The typed pipes must produce YAML scalars of that type. */
static void
test_typed_pipes(void **state)
{
    sl_errors_t errs = {0};
    char *out;
    json_object *root, *v;
    sl_yaml_lines_t *lines;

    (void)state;
    setenv("DECK_N", "8192", 1);
    setenv("DECK_F", "1", 1);
    setenv("DECK_B", "T", 1);
    setenv("DECK_S", "8192", 1);
    out = subst("n: ${{ env \"DECK_N\" | toInt }}\n"
                "f: ${{ env \"DECK_F\" | toFloat }}\n"
                "b: ${{ env \"DECK_B\" | toBool }}\n"
                "s: \"${{ env \"DECK_S\" }}\"\n",
                &errs);
    assert_non_null(out);
    assert_string_equal(out, "n: 8192\nf: 1.0\nb: true\ns: \"8192\"\n");
    assert_int_equal(sl_yaml_parse("t", out, strlen(out), &root, &lines, &errs), SL_OK);
    assert_true(json_object_object_get_ex(root, "n", &v) && json_object_is_type(v, json_type_int));
    assert_int_equal(json_object_get_int(v), 8192);
    assert_true(json_object_object_get_ex(root, "f", &v) &&
                json_object_is_type(v, json_type_double));
    assert_true(json_object_object_get_ex(root, "b", &v) &&
                json_object_is_type(v, json_type_boolean));
    assert_true(json_object_get_boolean(v));
    assert_true(json_object_object_get_ex(root, "s", &v) &&
                json_object_is_type(v, json_type_string));
    json_object_put(root);
    sl_yaml_lines_free(lines);
    free(out);

    setenv("DECK_F", "0.25", 1);
    setenv("DECK_B", "0", 1);
    out = subst("${{ env \"DECK_F\" | toFloat }} ${{ env \"DECK_B\" | toBool }}", &errs);
    assert_string_equal(out, "0.25 false");
    free(out);
    setenv("DECK_M", "a\nb", 1);
    out = subst("k: |\n  ${{ env \"DECK_M\" | indent 2 }}\n", &errs);
    assert_string_equal(out, "k: |\n  a\n  b\n");
    free(out);
    assert_int_equal(errs.n, 0);
}

static void
test_bad_conversions(void **state)
{
    sl_errors_t errs = {0};

    (void)state;
    setenv("DECK_X", "abc", 1);
    assert_null(subst("a: 1\nn: ${{ env \"DECK_X\" | toInt }}\n"
                      "b: ${{ env \"DECK_X\" | toBool }}\n"
                      "c: ${{ env \"DECK_X\" | toFloat }}\n"
                      "d: ${{ env \"DECK_X\" | upper }}\n",
                      &errs));
    assert_int_equal(errs.n, 4);
    assert_string_equal(errs.msgs[0], "kong.yaml:2: strconv.Atoi: parsing \"abc\": invalid syntax");
    assert_string_equal(errs.msgs[1],
                        "kong.yaml:3: strconv.ParseBool: parsing \"abc\": invalid syntax");
    assert_string_equal(errs.msgs[2],
                        "kong.yaml:4: strconv.ParseFloat: parsing \"abc\": invalid syntax");
    assert_string_equal(errs.msgs[3], "kong.yaml:5: function \"upper\" not defined");
    sl_errors_free(&errs);
}

/* decK's exact texts; every problem is reported, each with its line. */
static void
test_missing_and_unprefixed(void **state)
{
    sl_errors_t errs = {0};

    (void)state;
    unsetenv("DECK_NOPE");
    setenv("HOME_X", "1", 1);
    assert_null(subst("a:\n  b: ${{ env \"DECK_NOPE\" }}\n  c: ${{ env \"HOME_X\" }}\n", &errs));
    assert_int_equal(errs.n, 2);
    assert_string_equal(
        errs.msgs[0],
        "kong.yaml:2: environment variable 'DECK_NOPE' present in state file but not set");
    assert_string_equal(
        errs.msgs[1],
        "kong.yaml:3: environment variables in the state file must be prefixed with 'DECK_', "
        "found: 'HOME_X'");
    sl_errors_free(&errs);

    assert_null(subst("a: ${{ env \"DECK_NOPE\" \n", &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0], "kong.yaml:1: unclosed action");
    sl_errors_free(&errs);
}

static void
test_comment_lines_untouched(void **state)
{
    sl_errors_t errs = {0};
    char *out;
    const char *in = "# key: ${{ env \"DECK_NOPE\" }}\n   # ${{ env \"NOT_DECK\" }}\nx: 1\n";

    (void)state;
    unsetenv("DECK_NOPE");
    out = subst(in, &errs);
    assert_non_null(out);
    assert_string_equal(out, in);
    assert_int_equal(errs.n, 0);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_string),
        cmocka_unit_test(test_typed_pipes),
        cmocka_unit_test(test_bad_conversions),
        cmocka_unit_test(test_missing_and_unprefixed),
        cmocka_unit_test(test_comment_lines_untouched),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
