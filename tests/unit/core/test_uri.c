/* test_uri.c - request path normalisation (base/uri.c) against the cases
 * of Kong's own tests: spec/01-unit/18-tools_uri_spec.lua (normalize and
 * escape), applied with merge_slashes as kong/router/utils.lua does.  The
 * same table is in docs/hardening.md. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "base/uri.h"

typedef struct {
    const char *in, *out; /* out NULL: refused (400) */
} norm_case_t;

static const norm_case_t norm_cases[] = {
    /* Kong: no normalization necessary */
    {"/", "/"},
    {"/a", "/a"},
    {"/a/", "/a/"},
    {"/a/b/c", "/a/b/c"},
    {"/a/b/c/", "/a/b/c/"},
    /* Kong: reserved characters stay encoded (upper-case hex) */
    {"/a%2Fb%2Fc/", "/a%2Fb%2Fc/"},
    {"/a%2fb%2fc/", "/a%2Fb%2Fc/"},
    {"/%20%21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D",
     "/ %21%23%24%25%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D"},
    /* Kong: unreserved (and other) characters are decoded */
    {"/f%6f%6f", "/foo"},
    {"/%6B%6f%6e%67", "/kong"},
    {"/%2E", "/"},
    {"/endel%C3%B8st", "/endel\xc3\xb8st"},
    /* Kong: dot segments (merge_slashes as the router uses it) */
    {"//", "/"},
    {"/./", "/"},
    {"/.", "/"},
    {"/..", "/"},
    {"/../", "/"},
    {"/////", "/"},
    {"/./.././../", "/"},
    {"/a/b/c/./../../g", "/a/g"},
    {"/a//b//", "/a/b/"},
    {"/%C3%A4/a/%2e./a%2E//a/%2e/./a/../a/%2e%2E/%5f%99%af%2f%2F",
     "/\xc3\xa4/a./a/_\x99\xaf%2F%2F"},
    /* issue 21: the escapes */
    {"/public/../admin/secret", "/admin/secret"},
    {"/public/%2e%2e/admin/secret", "/admin/secret"},
    {"/public/%2E%2E%2fadmin", "/public/..%2Fadmin"},
    {"/%65cho/x", "/echo/x"},
    {"//echo/x", "/echo/x"},
    {"/a/b/..", "/a/"},
    {"/a/.b/..c/...", "/a/.b/..c/..."},
    /* sluice refuses what nginx refuses */
    {"/a%zz", NULL},
    {"/a%2", NULL},
    {"/a%", NULL},
    {"/a%00b", NULL},
};

static void
test_normalize(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]); i++) {
        const norm_case_t *c = &norm_cases[i];
        char buf[256], again[256];
        size_t len = strlen(c->in);
        ssize_t n;

        memcpy(buf, c->in, len);
        n = sl_uri_normalize(buf, len);
        if (c->out == NULL) {
            if (n != -1)
                fail_msg("%s: want refused, got '%.*s'", c->in, (int)n, buf);
            continue;
        }
        if (n < 0 || (size_t)n != strlen(c->out) || memcmp(buf, c->out, (size_t)n) != 0)
            fail_msg("%s: want '%s', got '%.*s'", c->in, c->out, n < 0 ? 0 : (int)n, buf);
        /* stable under re-normalisation */
        memcpy(again, buf, (size_t)n);
        assert_int_equal(sl_uri_normalize(again, (size_t)n), n);
        assert_memory_equal(again, buf, (size_t)n);
    }
}

static void
test_escape(void **state)
{
    static const char safe[] =
        "/!#$%&'()*+,/:;=?@[]ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        "0123456789-_.~";
    static const struct {
        const char *in, *out;
    } cases[] = {
        {safe, safe},
        {"/a b/c d", "/a%20b/c%20d"},
        {"/a\xf0\x9f\x98\x80", "/a%F0%9F%98%80"},
        {"/endel\xc3\xb8st", "/endel%C3%B8st"},
        /* every other printable ASCII character, a control and DEL */
        {" \"<>\\^`{|}\x01\x7f", "%20%22%3C%3E%5C%5E%60%7B%7C%7D%01%7F"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[512];
        size_t len = strlen(cases[i].in), n;
        assert_int_equal(sl_uri_escaped_len(cases[i].in, len), strlen(cases[i].out));
        n = sl_uri_escape(out, cases[i].in, len);
        out[n] = '\0';
        assert_string_equal(out, cases[i].out);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalize),
        cmocka_unit_test(test_escape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
