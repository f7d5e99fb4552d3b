/* test_rl_window.c - Kong's UTC calendar windows and counter keys. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "rl.h"

/* 2024-02-29T13:45:30.250Z, a leap day */
#define T 1709214330250LL

static void
test_windows(void **state)
{
    (void)state;
    assert_int_equal(rl_window_start(RL_SECOND, T), 1709214330000LL);
    assert_int_equal(rl_window_start(RL_MINUTE, T), 1709214300000LL); /* 13:45:00 */
    assert_int_equal(rl_window_start(RL_HOUR, T), 1709211600000LL);   /* 13:00:00 */
    assert_int_equal(rl_window_start(RL_DAY, T), 1709164800000LL);    /* 2024-02-29 */
    assert_int_equal(rl_window_start(RL_MONTH, T), 1706745600000LL);  /* 2024-02-01 */
    assert_int_equal(rl_window_start(RL_YEAR, T), 1704067200000LL);   /* 2024-01-01 */
    /* the last millisecond of a year is still in it */
    assert_int_equal(rl_window_start(RL_YEAR, 1735689599999LL), 1704067200000LL);
    assert_int_equal(rl_window_start(RL_YEAR, 1735689600000LL), 1735689600000LL);
    assert_int_equal(rl_window_start(RL_MONTH, 1709251199999LL), 1706745600000LL);
    assert_int_equal(rl_window_start(RL_MONTH, 1709251200000LL), 1709251200000LL); /* Mar 1 */
}

static void
test_keys(void **state)
{
    char buf[300];
    sl_str_t none = {NULL, 0};
    sl_str_t svc = {"2f2a2f5e-3c8f-4ad2-a8f4-0f2f6c1d7b11", 36};
    sl_str_t ip = {"10.0.0.1", 8};

    (void)state;
    int n = rl_key(buf, sizeof(buf), none, svc, ip, 1709214300000LL, RL_MINUTE);
    assert_string_equal(buf, "ratelimit:00000000-0000-0000-0000-000000000000:"
                             "2f2a2f5e-3c8f-4ad2-a8f4-0f2f6c1d7b11:10.0.0.1:1709214300000:minute");
    assert_int_equal(n, (int)strlen(buf));
    assert_int_equal(rl_key(buf, 40, none, svc, ip, 1, RL_MINUTE), -1); /* never truncated */
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
