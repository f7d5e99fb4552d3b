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

/* sl_fmt_g14 writes what snprintf("%.14g") writes whenever it answers,
 * and answers for nearly every value it takes. */
static int
g14_one(double d)
{
    char got[SL_FMT_G14_MAX], want[40];
    size_t n = sl_fmt_g14(got, d);

    if (n == 0)
        return 0;
    snprintf(want, sizeof(want), "%.14g", d);
    if (n != strlen(want) || memcmp(got, want, n) != 0)
        fail_msg("%.17g: got %.*s, snprintf %s", d, (int)n, got, want);
    return 1;
}

static void
test_g14(void **state)
{
    static const double edges[] = {1e-4,
                                   1e-4 * (1 - 1e-16),
                                   0.00012345678901234,
                                   0.5,
                                   1,
                                   1.5,
                                   9.99999999999995,
                                   9.999999999999949,
                                   10,
                                   34.539553752535,
                                   17028.0 / 493.0,
                                   0.1,
                                   0.2 + 0.1,
                                   2.0 / 3,
                                   99999999999999.4,
                                   99999999999999.6,
                                   99999999999999.99,
                                   1e13,
                                   1e13 + 0.5,
                                   12345678.9,
                                   0.000999999999999995,
                                   123456789012.345};
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    int answered = 0, total = 0;

    (void)state;
    for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        g14_one(edges[i]);
        g14_one(-edges[i]);
    }
    assert_int_equal(sl_fmt_g14((char[SL_FMT_G14_MAX]){0}, 0.0), 0);
    assert_int_equal(sl_fmt_g14((char[SL_FMT_G14_MAX]){0}, 1e14), 0);
    assert_int_equal(sl_fmt_g14((char[SL_FMT_G14_MAX]){0}, 9e-5), 0);
    for (int i = 0; i < 300000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* a mantissa of 1-17 digits over every exponent the fast path takes */
        double mant = (double)(x >> (11 + (i % 50)));
        static const double scale[] = {1e-22, 1e-20, 1e-18, 1e-15, 1e-12, 1e-9, 1e-6,
                                       1e-3,  1,     1e3,   1e6,   1e9,   1e12};
        double d = mant * scale[(x >> 3) % (sizeof(scale) / sizeof(scale[0]))];
        if (d >= 1e-4 && d < 1e14) {
            total++;
            answered += g14_one(i % 2 ? -d : d);
        }
        /* latencies over token counts, ai-proxy's time_per_token */
        total++;
        answered += g14_one((double)(x % 100000) / (double)(1 + (x >> 20) % 5000));
    }
    /* near-ties go to snprintf: about one value in ten */
    if (answered < total * 85 / 100)
        fail_msg("answered %d of %d", answered, total);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_g14),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
