/* test_time.c - base/time.h's turn clock: one reading per loop turn on a
 * thread that turned it on, a fresh reading every time elsewhere. */

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "base/time.h"

static void
nap_ms(long ms)
{
    struct timespec ts = {0, ms * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* Without sl_turn_clock_on every call reads the clock. */
static void *
fresh_readings(void *arg)
{
    int *ok = arg;
    uint64_t m0 = sl_turn_mono_ns();
    int64_t w0 = sl_turn_now_us();
    nap_ms(2);
    *ok = sl_turn_mono_ns() >= m0 + 2000000u && sl_turn_now_us() != w0;
    return NULL;
}

static void
test_off_reads_each_time(void **state)
{
    (void)state;
    int ok = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fresh_readings, &ok), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(ok);
}

/* On: the turn's first reading is reused until the next tick, on this
 * thread only. */
static void
test_on_one_reading_per_turn(void **state)
{
    (void)state;
    sl_turn_clock_on();
    uint64_t m0 = sl_turn_mono_ns();
    int64_t w0 = sl_turn_now_us();
    nap_ms(2);
    assert_int_equal(sl_turn_mono_ns(), m0);
    assert_int_equal(sl_turn_now_us(), w0);

    int ok = 0; /* another thread still reads the clock */
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fresh_readings, &ok), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(ok);

    sl_turn_clock_tick();
    uint64_t m1 = sl_turn_mono_ns();
    assert_true(m1 >= m0 + 2000000u);
    assert_true(sl_turn_now_us() != w0);
    nap_ms(1);
    assert_int_equal(sl_turn_mono_ns(), m1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_off_reads_each_time),
        cmocka_unit_test(test_on_one_reading_per_turn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
