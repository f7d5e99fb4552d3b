/* test_router.c - route matching order (Kong traditional_compatible) and
 * the upstream path (Kong's get_upstream_uri_v0), row by row. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf/router.h"
#include "fake_plugins.h"

/* One row: service path (NULL = none), route path, strip_path, request,
 * expected upstream path.  The first six are kong.md's table, the seventh
 * the how-to; the rest cover the other branches of get_upstream_uri_v0. */
static const struct {
    const char *svc_path, *route_path;
    int strip;
    const char *req, *want;
} rows[] = {
    {NULL, "/anything", 1, "/anything/v1/messages", "/v1/messages"},
    {NULL, "/anything", 1, "/anything", "/"},
    {"/api", "/anything", 1, "/anything/", "/api/"},
    {"/api/", "/anything", 1, "/anything", "/api"},
    {"/api/", "/anything", 1, "/anythingfoo", "/api/foo"},
    {"/api", "/anything", 0, "/anything/v1", "/api/anything/v1"},
    {"/anything", "/anything", 1, "/anything/v1/messages", "/anything/v1/messages"},
    /* base ends with "/", strip on */
    {"/api/", "/anything", 1, "/anything/", "/api/"},
    {"/api/", "/anything", 1, "/anything/x/y", "/api/x/y"},
    {NULL, "/anything", 1, "/anything/", "/"},
    {NULL, "/anything", 1, "/anythingfoo", "/foo"},
    /* base without trailing "/", strip on */
    {"/api", "/anything", 1, "/anything", "/api"},
    {"/api", "/anything", 1, "/anythingfoo", "/api/foo"},
    {"/api", "/anything", 1, "/anything/x", "/api/x"},
    {"/api", "/", 1, "/", "/api"},
    /* sanitize_uri_postfix: "./" "../" "." ".." */
    {"/api", "/anything", 1, "/anything./x", "/api/x"},
    {"/api", "/anything", 1, "/anything../x", "/api/x"},
    {"/api", "/anything", 1, "/anything..", "/api"},
    {"/api/", "/anything", 1, "/anything.", "/api"},
    /* strip off */
    {"/api/", "/anything", 0, "/anything/v1", "/api/anything/v1"},
    {NULL, "/anything", 0, "/anything/v1", "/anything/v1"},
    {"/api", "/", 0, "/", "/api"},
    {"/api/", "/", 0, "/", "/api/"},
};

static void
test_upstream_path_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sl_nelems(rows); i++) {
        sl_service_t svc = {.path = (char *)rows[i].svc_path};
        sl_route_t rt = {.strip_path = rows[i].strip, .service = &svc};
        sl_route_match_t m = {&rt, strlen(rows[i].route_path)};
        char *got = sl_router_upstream_path(&m, sl_str_c(rows[i].req));

        if (strcmp(got, rows[i].want) != 0)
            fprintf(stderr, "row %zu: service %s route %s strip %d request %s: got %s want %s\n", i,
                    rows[i].svc_path ? rows[i].svc_path : "(none)", rows[i].route_path,
                    rows[i].strip, rows[i].req, got, rows[i].want);
        assert_string_equal(got, rows[i].want);
        free(got);
    }
}

static const char routes_yaml[] =
    "_format_version: \"3.0\"\n"
    "services:\n"
    "- name: s\n"
    "  url: http://up/base\n"
    "  routes:\n"
    "  - {name: short,   paths: [/a]}\n"
    "  - {name: long,    paths: [/a/b]}\n"
    "  - {name: digits,  paths: [\"~/a/\\\\d+\"]}\n"
    "  - {name: num-hi,  paths: [\"~/n/[0-9]+\"], regex_priority: 10}\n"
    "  - {name: num-lo,  paths: [\"~/n/\"], regex_priority: 1}\n"
    "  - {name: getonly, paths: [/m], methods: [GET]}\n"
    "  - {name: mlong,   paths: [/m/long]}\n"
    "  - {name: users,   paths: [\"~/users/(?<id>\\\\d+)$\"]}\n"
    "  - {name: wild,    hosts: [\"*.example.com\"]}\n"
    "  - {name: plain,   hosts: [api.example.com]}\n"
    "  - {name: suffix,  hosts: [\"example.*\"], paths: [/s]}\n"
    "  - {name: multi,   paths: [/p1, /p2/long]}\n"
    "- name: off\n"
    "  url: http://off\n"
    "  enabled: false\n"
    "  routes:\n"
    "  - {name: disabled, paths: [/off]}\n";

static const char *
match(const sl_conf_t *conf, const char *method, const char *host, const char *path, size_t *plen)
{
    sl_route_match_t m = {0};

    if (sl_router_match(conf, sl_str_c(method), sl_str_c(host), sl_str_c(path), &m) != SL_OK)
        return NULL;
    if (plen)
        *plen = m.prefix_len;
    return m.route->name;
}

static void
test_matching_order(void **state)
{
    sl_errors_t errs = {0};
    sl_conf_t *conf;
    size_t plen = 99;

    (void)state;
    conf = sl_fake_load(routes_yaml, &errs);
    sl_fake_dump_errors(&errs);
    assert_non_null(conf);

    /* prefix: plain string prefix, longest first */
    assert_string_equal(match(conf, "GET", "h", "/a/b/c", &plen), "long");
    assert_int_equal(plen, 4);
    assert_string_equal(match(conf, "GET", "h", "/a/x", &plen), "short");
    assert_int_equal(plen, 2);
    assert_string_equal(match(conf, "GET", "h", "/abc", NULL), "short");
    /* regex ahead of (even longer) prefix paths; match length is the prefix */
    assert_string_equal(match(conf, "GET", "h", "/a/12/z", &plen), "digits");
    assert_int_equal(plen, 5);
    assert_string_equal(match(conf, "GET", "h", "/a/b", NULL), "long");
    /* regex_priority */
    assert_string_equal(match(conf, "GET", "h", "/n/7", NULL), "num-hi");
    assert_string_equal(match(conf, "GET", "h", "/n/x", NULL), "num-lo");
    /* anchored at the start only; named groups work; $ anchors the end */
    assert_null(match(conf, "GET", "h", "/x/n/7", NULL));
    assert_string_equal(match(conf, "GET", "h", "/users/42", &plen), "users");
    assert_int_equal(plen, 9);
    assert_null(match(conf, "GET", "h", "/users/42x", NULL));
    /* more matched fields first: methods+paths beats a longer path */
    assert_string_equal(match(conf, "GET", "h", "/m/long", NULL), "getonly");
    assert_string_equal(match(conf, "POST", "h", "/m/long", NULL), "mlong");
    assert_null(match(conf, "POST", "h", "/m", NULL));
    /* hosts: plain before wildcard, case-insensitive, no paths = any path */
    assert_string_equal(match(conf, "GET", "API.Example.COM", "/zzz", &plen), "plain");
    assert_int_equal(plen, 0);
    assert_string_equal(match(conf, "GET", "x.y.example.com", "/zzz", NULL), "wild");
    assert_null(match(conf, "GET", "example.com", "/zzz", NULL));
    /* hosts+paths (2 fields) beat paths only */
    assert_string_equal(match(conf, "GET", "example.org", "/s", NULL), "suffix");
    assert_null(match(conf, "GET", "example", "/s", NULL));
    /* a route with several paths: each path ranks on its own */
    assert_string_equal(match(conf, "GET", "h", "/p2/long/x", &plen), "multi");
    assert_int_equal(plen, 8);
    /* a disabled service is not routed; no match -> declined */
    assert_null(match(conf, "GET", "h", "/off", NULL));
    assert_null(match(conf, "GET", "h", "/", NULL));
    /* conf->routes is in match order (a route at its best path's place);
     * routes that are never routed go last */
    {
        static const char *const order[] = {"getonly", "suffix", "plain",   "num-hi", "num-lo",
                                            "digits",  "users",  "multi",   "mlong",  "long",
                                            "short",   "wild",   "disabled"};
        assert_int_equal(conf->nroutes, sl_nelems(order));
        for (size_t i = 0; i < sl_nelems(order); i++)
            assert_string_equal(conf->routes[i]->name, order[i]);
    }
    sl_conf_free(conf);
}

/* The path the proxy would send for the matched route, service path /base. */
static void
test_match_then_join(void **state)
{
    sl_errors_t errs = {0};
    sl_conf_t *conf = sl_fake_load(routes_yaml, &errs);
    sl_route_match_t m;
    char *up;

    (void)state;
    assert_non_null(conf);
    assert_int_equal(sl_router_match(conf, SL_STR("GET"), SL_STR("h"), SL_STR("/a/12/z"), &m),
                     SL_OK);
    up = sl_router_upstream_path(&m, SL_STR("/a/12/z"));
    assert_string_equal(up, "/base/z");
    free(up);
    assert_int_equal(sl_router_match(conf, SL_STR("GET"), SL_STR("h"), SL_STR("/abc"), &m), SL_OK);
    up = sl_router_upstream_path(&m, SL_STR("/abc"));
    assert_string_equal(up, "/base/bc");
    free(up);
    sl_conf_free(conf);
}

/* Path regexes regcomp would blow up on (fuzz_config: thirty stacked '+'
 * took 2 GB) are refused at load with the reason; ordinary ones, PCRE's
 * lazy '?' and a large single count still compile and match as before. */
static void
test_regex_bounds(void **state)
{
    static const struct {
        const char *re, *err; /* err: NULL = compiles */
        const char *path;     /* with err NULL: a path it must match */
    } rows[] = {
        {"~/b/(x|y)+", NULL, "/b/xyx"},
        {"~/b/(x|y)+?/c", NULL, "/b/xy/c"},
        {"~/b/[a-z]*?/c", NULL, "/b/abc/c"},
        {"~/a{1000}", NULL, NULL},
        {"~/v1/[0-9a-f]{8}-[0-9a-f]{4}/(?<id>\\d+)$", NULL, "/v1/0123abcd-ef01/42"},
        {"~/[+*?]+x", NULL, "/+*x"},
        {"~/b/(x|y)++", "possessive quantifiers are not supported", NULL},
        {"~/b/(x|y)++++++++++++++++++++++++++++++", "possessive quantifiers are not supported",
         NULL},
        {"~/b/x+??", "a quantifier after a quantifier", NULL},
        {"~/b/x*+", "possessive quantifiers are not supported", NULL},
        {"~/x{2}{3}", "repeat count after a quantifier", NULL},
        {"~/((a{255}){255}){255}", "repetitions expand it to more than 10000 items", NULL},
        {"~/((((a{10}){10}){10}){10})", "repetitions expand it to more than 10000 items", NULL},
        {"~/(a{5000}|b)+", "repetitions expand it to more than 10000 items", NULL},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        sl_route_path_t rp;
        char err[512] = "";
        int rc = sl_router_compile_path(&rp, rows[i].re, err, sizeof(err));
        if (rows[i].err == NULL) {
            if (rc != SL_OK)
                fail_msg("%s: %s", rows[i].re, err);
            if (rows[i].path != NULL && regexec(&rp.re, rows[i].path, 0, NULL, 0) != 0)
                fail_msg("%s does not match %s", rows[i].re, rows[i].path);
            sl_router_path_free(&rp);
        } else {
            if (rc == SL_OK) {
                sl_router_path_free(&rp);
                fail_msg("%s: compiled", rows[i].re);
            }
            if (strstr(err, rows[i].err) == NULL)
                fail_msg("%s: '%s' lacks '%s'", rows[i].re, err, rows[i].err);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_upstream_path_table),
        cmocka_unit_test(test_matching_order),
        cmocka_unit_test(test_match_then_join),
        cmocka_unit_test(test_regex_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
