/* test_fmt.c - base/fmt.h's number writers give what snprintf gives, at the
 * edges (0, digit-count and nibble boundaries, the type limits) and over a
 * pseudo-random spread of values. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "base/fmt.h"

static const uint64_t edges[] = {
    0,
    1,
    9,
    10,
    15,
    16,
    99,
    100,
    255,
    256,
    4095,
    4096,
    65535,
    65536,
    999999999,
    1000000000,
    0xffffffffULL,
    0x100000000ULL,
    9999999999999999999ULL,
    10000000000000000000ULL,
    (uint64_t)INT64_MAX,
    (uint64_t)INT64_MAX + 1,
    UINT64_MAX,
};

static void
check_one(uint64_t v)
{
    char got[SL_FMT_DEC_MAX + 2], want[32];
    size_t n;

    n = sl_fmt_u64(got, v);
    assert_int_equal(n, (size_t)snprintf(want, sizeof(want), "%llu", (unsigned long long)v));
    assert_memory_equal(got, want, n);

    n = sl_fmt_i64(got, (int64_t)v);
    assert_int_equal(n, (size_t)snprintf(want, sizeof(want), "%lld", (long long)(int64_t)v));
    assert_memory_equal(got, want, n);

    n = sl_fmt_hex(got, v);
    assert_int_equal(n, (size_t)snprintf(want, sizeof(want), "%llx", (unsigned long long)v));
    assert_memory_equal(got, want, n);

    sl_fmt_hex16(got, v);
    snprintf(want, sizeof(want), "%016llx", (unsigned long long)v);
    assert_memory_equal(got, want, 16);
}

static void
test_edges(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        check_one(edges[i]);
        check_one(edges[i] - 1);
        check_one((uint64_t)0 - edges[i]); /* negative as int64 */
    }
    check_one((uint64_t)INT64_MIN);
}

static void
test_spread(void **state)
{
    uint64_t x = 0x9e3779b97f4a7c15ULL;

    (void)state;
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        check_one(x >> (i % 64)); /* every magnitude */
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_spread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
