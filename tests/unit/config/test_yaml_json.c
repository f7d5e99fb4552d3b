/* test_yaml_json.c - YAML/JSON -> json-c with line numbers by key path. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conf/yaml_json.h"

static const char doc[] = "_format_version: \"3.0\"\n" /* 1 */
                          "services:\n"                /* 2 */
                          "- name: a\n"                /* 3 */
                          "  routes:\n"                /* 4 */
                          "  - name: r0\n"             /* 5 */
                          "    paths: [/x]\n"          /* 6 */
                          "  - name: r1\n"             /* 7 */
                          "    paths:\n"               /* 8 */
                          "    - /y\n"                 /* 9 */
                          "    - /z\n"                 /* 10 */
                          "    methods: [GET]\n";      /* 11 */

static void
test_lines_by_path(void **state)
{
    sl_errors_t errs = {0};
    json_object *root;
    sl_yaml_lines_t *lines;

    (void)state;
    assert_int_equal(sl_yaml_parse("t.yaml", doc, strlen(doc), &root, &lines, &errs), SL_OK);
    assert_int_equal(sl_yaml_line(lines, "_format_version"), 1);
    assert_int_equal(sl_yaml_line(lines, "services"), 2);
    assert_int_equal(sl_yaml_line(lines, "services[0]"), 3);
    assert_int_equal(sl_yaml_line(lines, "services[0].routes[0].paths"), 6);
    assert_int_equal(sl_yaml_line(lines, "services[0].routes[1]"), 7);
    assert_int_equal(sl_yaml_line(lines, "services[0].routes[1].paths"), 8);
    assert_int_equal(sl_yaml_line(lines, "services[0].routes[1].paths[1]"), 10);
    assert_int_equal(sl_yaml_line(lines, "services[0].routes[1].methods[0]"), 11);
    assert_int_equal(sl_yaml_line(lines, "services[0].routes[1].hosts"), 0);
    /* nearest existing ancestor */
    assert_int_equal(sl_yaml_line_near(lines, "services[0].routes[1].hosts"), 7);
    assert_int_equal(sl_yaml_line_near(lines, "services[0].routes[1].paths[1].x.y"), 10);
    assert_int_equal(sl_yaml_line_near(lines, "nothing.here"), 1);
    json_object_put(root);
    sl_yaml_lines_free(lines);
}

static void
test_scalar_typing(void **state)
{
    static const char y[] =
        "s1: 'true'\ns2: \"12\"\nn1: null\nn2: ~\nn3:\nb1: True\nb2: FALSE\n"
        "i1: -42\ni2: 0x1f\nf1: 1.0\nf2: 2e3\nf3: .inf\nstr: hello world\nlit: |\n  a\n"
        "ver: 3.0\nyes: yes\ntagged: !!str 5\n";
    sl_errors_t errs = {0};
    json_object *root, *v;
    sl_yaml_lines_t *lines;

    (void)state;
    assert_int_equal(sl_yaml_parse("t", y, strlen(y), &root, &lines, &errs), SL_OK);
#define TYPE(k, t)                                                                                 \
    do {                                                                                           \
        assert_true(json_object_object_get_ex(root, k, &v));                                       \
        assert_true(json_object_is_type(v, t));                                                    \
    } while (0)
    TYPE("s1", json_type_string);
    TYPE("s2", json_type_string);
    TYPE("n1", json_type_null);
    TYPE("n2", json_type_null);
    TYPE("n3", json_type_null);
    TYPE("b1", json_type_boolean);
    assert_true(json_object_get_boolean(v));
    TYPE("b2", json_type_boolean);
    assert_false(json_object_get_boolean(v));
    TYPE("i1", json_type_int);
    assert_int_equal(json_object_get_int(v), -42);
    TYPE("i2", json_type_int);
    assert_int_equal(json_object_get_int(v), 31);
    TYPE("f1", json_type_double);
    TYPE("f2", json_type_double);
    assert_true(json_object_get_double(v) == 2000.0);
    TYPE("f3", json_type_double);
    TYPE("str", json_type_string);
    assert_string_equal(json_object_get_string(v), "hello world");
    TYPE("lit", json_type_string);
    assert_string_equal(json_object_get_string(v), "a\n");
    TYPE("ver", json_type_double);
    TYPE("yes", json_type_string);
    TYPE("tagged", json_type_string);
    json_object_put(root);
    sl_yaml_lines_free(lines);
}

/* JSON goes through the same parser and gets lines too. */
static void
test_json_input(void **state)
{
    static const char j[] =
        "{\n"
        "  \"_format_version\": \"3.0\",\n"
        "  \"services\": [\n"
        "    {\"name\": \"a\",\n"
        "     \"url\": \"http://x/y\", \"retries\": 3, \"tls\": false, \"n\": null}\n"
        "  ]\n"
        "}\n";
    sl_errors_t errs = {0};
    json_object *root, *v;
    sl_yaml_lines_t *lines;

    (void)state;
    assert_int_equal(sl_yaml_parse("t.json", j, strlen(j), &root, &lines, &errs), SL_OK);
    assert_int_equal(sl_yaml_line(lines, "services[0].url"), 5);
    assert_int_equal(sl_yaml_line(lines, "services[0].name"), 4);
    v = json_object_array_get_idx(json_object_object_get(root, "services"), 0);
    assert_true(json_object_is_type(json_object_object_get(v, "retries"), json_type_int));
    assert_true(json_object_is_type(json_object_object_get(v, "tls"), json_type_boolean));
    json_object_put(root);
    sl_yaml_lines_free(lines);
}

static void
test_anchors_and_errors(void **state)
{
    static const char a[] = "base: &b {x: 1, y: [1, 2]}\ncopy: *b\n";
    static const char bad[] = "a: 1\nb: [1, 2\nc: 3\n";
    static const char dup[] = "a: 1\nb: 2\na: 3\n";
    static const char two[] = "a: 1\n---\nb: 2\n";
    static const char alias[] = "a: *nope\n";
    sl_errors_t errs = {0};
    json_object *root, *v;
    sl_yaml_lines_t *lines;

    (void)state;
    assert_int_equal(sl_yaml_parse("t", a, strlen(a), &root, &lines, &errs), SL_OK);
    assert_true(json_object_object_get_ex(root, "copy", &v));
    assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                        "{\"x\":1,\"y\":[1,2]}");
    json_object_put(root);
    sl_yaml_lines_free(lines);

    assert_int_equal(sl_yaml_parse("t.yaml", bad, strlen(bad), &root, &lines, &errs), SL_ERROR);
    assert_null(root);
    assert_null(lines);
    assert_int_equal(errs.n, 1);
    assert_non_null(strstr(errs.msgs[0], "t.yaml:3:"));
    sl_errors_free(&errs);

    assert_int_equal(sl_yaml_parse("t.yaml", dup, strlen(dup), &root, &lines, &errs), SL_ERROR);
    assert_string_equal(errs.msgs[0], "t.yaml:3:1: duplicate key: a");
    sl_errors_free(&errs);

    assert_int_equal(sl_yaml_parse("t.yaml", two, strlen(two), &root, &lines, &errs), SL_ERROR);
    assert_string_equal(errs.msgs[0], "t.yaml:2:1: only one YAML document is allowed");
    sl_errors_free(&errs);

    assert_int_equal(sl_yaml_parse("t.yaml", alias, strlen(alias), &root, &lines, &errs), SL_ERROR);
    assert_non_null(strstr(errs.msgs[0], "t.yaml:1:"));
    sl_errors_free(&errs);

    assert_int_equal(sl_yaml_parse("t.yaml", "", 0, &root, &lines, &errs), SL_OK);
    assert_null(root);
    sl_yaml_lines_free(lines);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_by_path),
        cmocka_unit_test(test_scalar_typing),
        cmocka_unit_test(test_json_input),
        cmocka_unit_test(test_anchors_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
