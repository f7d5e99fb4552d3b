/* test_retry.c - the one rule for sending a request again (http/retry.c),
 * branch by branch. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "http/retry.h"

static sl_headers_t
hdrs(sl_pool_t *p, const char *name)
{
    sl_headers_t h = {0};
    sl_headers_add(&h, p, SL_STR("Content-Type"), SL_STR("application/json"));
    if (name != NULL)
        sl_headers_add(&h, p, sl_str_c(name), SL_STR("k-1"));
    return h;
}

static void
test_rule(void **state)
{
    sl_pool_t *p = sl_pool_create(1024);
    sl_headers_t none = hdrs(p, NULL), key = hdrs(p, "Idempotency-Key"),
                 xkey = hdrs(p, "x-idempotency-key");
    const sl_retry_facts_t race = {.reused = 1, .written = 1};
    const sl_retry_facts_t unwritten = {.reused = 1, .written = 0};
    const char *why = NULL;

    (void)state;
    /* keep-alive race after the request went out */
    assert_false(sl_retry_allowed(SL_STR("POST"), &none, &race, &why));
    assert_non_null(why);
    assert_true(sl_retry_allowed(SL_STR("POST"), &key, &race, &why));
    assert_null(why);
    assert_true(sl_retry_allowed(SL_STR("POST"), &xkey, &race, NULL));
    assert_false(sl_retry_allowed(SL_STR("PATCH"), &none, &race, NULL));
    assert_false(sl_retry_allowed(SL_STR("PUT"), &none, &race, NULL)); /* as Go */
    assert_true(sl_retry_allowed(SL_STR("GET"), &none, &race, NULL));
    assert_true(sl_retry_allowed(SL_STR("HEAD"), &none, &race, NULL));
    assert_true(sl_retry_allowed(SL_STR("OPTIONS"), &none, &race, NULL));
    assert_false(
        sl_retry_allowed(SL_STR("get"), &none, &race, NULL)); /* methods are case-sensitive */
    /* nothing written: anything may go again */
    assert_true(sl_retry_allowed(SL_STR("POST"), &none, &unwritten, NULL));
    /* never: a new connection, an answer begun, a streamed body gone */
    sl_retry_facts_t f = {.reused = 0, .written = 0};
    assert_false(sl_retry_allowed(SL_STR("GET"), &key, &f, NULL));
    f = (sl_retry_facts_t){.reused = 1, .got_bytes = 1};
    assert_false(sl_retry_allowed(SL_STR("GET"), &key, &f, NULL));
    f = (sl_retry_facts_t){.reused = 1, .written = 1, .cannot_replay = 1};
    assert_false(sl_retry_allowed(SL_STR("GET"), &key, &f, &why));
    assert_non_null(why);
    sl_pool_destroy(p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
