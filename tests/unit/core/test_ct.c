/* test_ct.c - base/ct.h's sl_ct_equal: equal buffers of every length up
 * to 40 compare equal, and a single flipped bit at any position (the
 * overlapping last word and the byte loop under eight included) compares
 * unequal, with the buffers at odd alignments. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "base/ct.h"

static void
test_every_length_and_position(void **state)
{
    unsigned char a[48], b[48];

    (void)state;
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (unsigned char)(i * 37 + 11);
    for (size_t off = 0; off < 3; off++) {
        for (size_t n = 0; n + off <= 41; n++) {
            memcpy(b, a, sizeof(a));
            assert_int_equal(sl_ct_equal(a + off, b + off, n), 1);
            for (size_t pos = 0; pos < n; pos++) {
                for (int bit = 0; bit < 8; bit++) {
                    b[off + pos] ^= (unsigned char)(1u << bit);
                    assert_int_equal(sl_ct_equal(a + off, b + off, n), 0);
                    b[off + pos] ^= (unsigned char)(1u << bit);
                }
            }
            /* a difference just past the length is not looked at */
            b[off + n] ^= 0xff;
            assert_int_equal(sl_ct_equal(a + off, b + off, n), 1);
        }
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_length_and_position),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
