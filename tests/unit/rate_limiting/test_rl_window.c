/* test_rl_window.c - Kong's UTC calendar windows, counter keys and the
 * quota plugins' decimal formatter (plugins/shared/decimal.c). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
    /* where each window ends: the next one's start */
    for (int p = RL_SECOND; p < RL_NPERIODS; p++) {
        int64_t s = rl_window_start((rl_period_t)p, T), e = rl_window_end((rl_period_t)p, s);
        assert_true(e > T);
        assert_int_equal(rl_window_start((rl_period_t)p, e - 1), s);
        assert_int_equal(rl_window_start((rl_period_t)p, e), e);
    }
    assert_int_equal(rl_window_end(RL_MONTH, 1706745600000LL), 1709251200000LL); /* Feb: 29 days */
    assert_int_equal(rl_window_end(RL_MONTH, 1733011200000LL), 1735689600000LL); /* Dec -> Jan */
    assert_int_equal(rl_window_end(RL_YEAR, 1704067200000LL), 1735689600000LL);  /* 366 days */
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
    /* the same key from its parts, as the access phase builds it */
    char head[RL_KEY_MAX], tail[RL_KEY_TAIL_MAX];
    size_t hl = rl_key_head(head, sizeof(head), none, svc);
    size_t tl = rl_key_tail(tail, 1709214300000LL, RL_MINUTE);
    assert_int_equal(hl + ip.len + tl, (size_t)n);
    assert_memory_equal(buf, head, hl);
    assert_memory_equal(buf + hl, ip.ptr, ip.len);
    assert_memory_equal(buf + hl + ip.len, tail, tl);
    /* an id too long for a key: no head */
    char big[300];
    memset(big, 'a', sizeof(big));
    assert_int_equal(rl_key_head(head, sizeof(head), (sl_str_t){big, sizeof(big)}, svc), 0);
    tl = rl_key_tail(tail, INT64_MIN, RL_MONTH); /* the longest tail fits */
    assert_int_equal(tl, sizeof(":-9223372036854775808:month") - 1);
    assert_memory_equal(tail, ":-9223372036854775808:month", tl);
}

/* sl_dec writes what printf's %lld writes, edges included. */
static void
test_int(void **state)
{
    const int64_t v[] = {0,
                         1,
                         9,
                         10,
                         11,
                         99,
                         100,
                         101,
                         999,
                         1000,
                         65535,
                         999999999,
                         1000000000,
                         999999999999999999LL,
                         1000000000000000000LL,
                         -1,
                         -9,
                         -10,
                         -100,
                         1764700000000LL,
                         INT64_MAX,
                         INT64_MIN,
                         INT64_MIN + 1};
    char out[SL_DEC_MAX + 4], want[32];

    (void)state;
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        memset(out, '#', sizeof(out));
        size_t n = sl_dec(out, v[i]);
        int w = snprintf(want, sizeof(want), "%lld", (long long)v[i]);
        assert_int_equal(n, (size_t)w);
        assert_memory_equal(out, want, n);
        assert_int_equal(out[n], '#'); /* nothing past it */
    }
    for (int64_t x = 1; x < INT64_MAX / 7; x = x * 7 + 3) {
        size_t n = sl_dec(out, x);
        int w = snprintf(want, sizeof(want), "%lld", (long long)x);
        assert_int_equal(n, (size_t)w);
        assert_memory_equal(out, want, n);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_int),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
