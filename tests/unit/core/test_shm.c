/* test_shm.c - shared-memory zones (core/base/shm.c): the dictionary, exact
 * counts with two processes hammering the same keys, a process SIGKILLed
 * while holding the zone lock, a full zone, expiry and iteration. */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/shm.h"

static sl_shm_zone_t *
zone(const char *name, size_t size, size_t vmax)
{
    char err[256];
    sl_shm_zone_t *z = sl_shm_zone_get(name, size, vmax, err, sizeof(err));
    if (z == NULL)
        fail_msg("%s", err);
    return z;
}

static void
nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void
test_dict(void **state)
{
    sl_shm_zone_t *z = zone("dict", 64 * 1024, 32);
    char buf[64];
    size_t len = 0;
    double num = 0;

    assert_int_equal(sl_shm_get(z, SL_STR("a"), buf, sizeof(buf), &len, &num), SL_SHM_NOT_FOUND);
    assert_int_equal(sl_shm_set(z, SL_STR("a"), SL_STR("hello"), 0), 0);
    assert_int_equal(sl_shm_get(z, SL_STR("a"), buf, sizeof(buf), &len, &num), SL_SHM_STRING);
    assert_int_equal(len, 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(sl_shm_get(z, SL_STR("a"), buf, 2, &len, NULL), SL_SHM_ETRUNC);
    assert_int_equal(len, 5);
    /* bounds */
    assert_int_equal(sl_shm_set(z, SL_STR("a"), SL_STR("0123456789012345678901234567890123"), 0),
                     -1);
    char big[SL_SHM_KEY_MAX + 1];
    memset(big, 'k', sizeof(big));
    assert_int_equal(sl_shm_set(z, (sl_str_t){big, sizeof(big)}, SL_STR("x"), 0), -1);
    assert_int_equal(sl_shm_set(z, (sl_str_t){big, sizeof(big) - 1}, SL_STR("x"), 0), 0);
    assert_int_equal(sl_shm_set(z, (sl_str_t){"", 0}, SL_STR("x"), 0), -1);
    /* numbers */
    assert_int_equal(sl_shm_incr(z, SL_STR("a"), 1, 0, &num), SL_SHM_ETYPE);
    assert_int_equal(sl_shm_incr(z, SL_STR("n"), 2.5, 0, &num), 0);
    assert_true(num == 2.5);
    assert_int_equal(sl_shm_incr(z, SL_STR("n"), 1, 0, &num), 0);
    assert_true(num == 3.5);
    assert_int_equal(sl_shm_get(z, SL_STR("n"), NULL, 0, NULL, &num), SL_SHM_NUMBER);
    assert_true(num == 3.5);
    /* delete */
    assert_int_equal(sl_shm_delete(z, SL_STR("n")), 1);
    assert_int_equal(sl_shm_delete(z, SL_STR("n")), SL_SHM_NOT_FOUND);
    assert_int_equal(sl_shm_get(z, SL_STR("n"), NULL, 0, NULL, &num), SL_SHM_NOT_FOUND);
    /* expiry: the window counter starts again after its ttl */
    assert_int_equal(sl_shm_incr(z, SL_STR("w"), 1, 20, &num), 0);
    assert_int_equal(sl_shm_incr(z, SL_STR("w"), 1, 20, &num), 0);
    assert_true(num == 2);
    nap_ms(40);
    assert_int_equal(sl_shm_get(z, SL_STR("w"), NULL, 0, NULL, &num), SL_SHM_NOT_FOUND);
    assert_int_equal(sl_shm_incr(z, SL_STR("w"), 1, 20, &num), 0);
    assert_true(num == 1);
    assert_int_equal(sl_shm_check(z), 0);
    sl_shm_zone_release(z);
}

/* Several counters under one lock: each counted as shm_incr would, a bad
 * key or a string entry failing alone, more keys than one batch. */
static void
test_incr_many(void **state)
{
    sl_shm_zone_t *z = zone("many", 256 * 1024, 16);
    char big[SL_SHM_KEY_MAX + 1], names[100][8];
    sl_str_t keys[100];
    double deltas[100], num = 0;

    (void)state;
    memset(big, 'k', sizeof(big));
    assert_int_equal(sl_shm_set(z, SL_STR("s"), SL_STR("text"), 0), 0);
    sl_str_t some[] = {SL_STR("a"), SL_STR("b"), SL_STR("a"), SL_STR("s"), {big, sizeof(big)}};
    double d[] = {1, 2.5, 3, 1, 1};
    assert_int_equal(sl_shm_incr_many(z, some, d, 5, 0), 2); /* "s" and the long key */
    assert_int_equal(sl_shm_get(z, SL_STR("a"), NULL, 0, NULL, &num), SL_SHM_NUMBER);
    assert_true(num == 4);
    assert_int_equal(sl_shm_get(z, SL_STR("b"), NULL, 0, NULL, &num), SL_SHM_NUMBER);
    assert_true(num == 2.5);
    assert_int_equal(sl_shm_incr_many(z, some, d, 0, 0), 0);
    assert_int_equal(sl_shm_incr_many(NULL, some, d, 1, 0), -1);
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "k%d", i);
        keys[i] = (sl_str_t){names[i], strlen(names[i])};
        deltas[i] = i;
    }
    assert_int_equal(sl_shm_incr_many(z, keys, deltas, 100, 0), 0);
    assert_int_equal(sl_shm_incr_many(z, keys, deltas, 100, 0), 0);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(sl_shm_get(z, keys[i], NULL, 0, NULL, &num), SL_SHM_NUMBER);
        assert_true(num == 2.0 * i);
    }
    /* ttl for the entries it creates */
    assert_int_equal(sl_shm_incr_many(z, (sl_str_t[]){SL_STR("w")}, (double[]){1}, 1, 20), 0);
    nap_ms(40);
    assert_int_equal(sl_shm_get(z, SL_STR("w"), NULL, 0, NULL, &num), SL_SHM_NOT_FOUND);
    assert_int_equal(sl_shm_check(z), 0);
    sl_shm_zone_release(z);
}

static void
test_registry(void **state)
{
    sl_shm_zone_t *a = zone("reg", 64 * 1024, 0);
    sl_shm_zone_t *b = zone("reg", 64 * 1024, 0);
    sl_shm_zone_t *c = zone("reg", 128 * 1024, 0);
    char err[256];
    double n;

    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_int_equal(sl_shm_incr(a, SL_STR("k"), 1, 0, &n), 0);
    sl_shm_zone_release(a);
    /* still referenced by b: contents kept */
    assert_int_equal(sl_shm_get(b, SL_STR("k"), NULL, 0, NULL, &n), SL_SHM_NUMBER);
    sl_shm_zone_release(b);
    sl_shm_zone_release(c);
    assert_null(sl_shm_zone_get("bad name", 64 * 1024, 0, err, sizeof(err)));
    assert_null(sl_shm_zone_get("tiny", 1024, 0, err, sizeof(err)));
    assert_null(sl_shm_zone_get("huge-v", 64 * 1024, 1 << 20, err, sizeof(err)));
}

/* Children increment the same keys; every increment must be counted. */
#define NKEYS 50
#define ROUNDS 4000

static void
hammer(sl_shm_zone_t *z, int rounds)
{
    char k[16];
    for (int r = 0; r < rounds; r++)
        for (int i = 0; i < NKEYS; i++) {
            int n = snprintf(k, sizeof(k), "key%d", i);
            if (sl_shm_incr(z, (sl_str_t){k, (size_t)n}, 1, 0, NULL) != 0)
                _exit(2);
        }
}

static void
check_counts(sl_shm_zone_t *z, double want)
{
    char k[16];
    for (int i = 0; i < NKEYS; i++) {
        double n = -1;
        int len = snprintf(k, sizeof(k), "key%d", i);
        assert_int_equal(sl_shm_get(z, (sl_str_t){k, (size_t)len}, NULL, 0, NULL, &n),
                         SL_SHM_NUMBER);
        assert_true(n == want);
    }
}

static void
test_two_processes(void **state)
{
    sl_shm_zone_t *z = zone("hammer", 256 * 1024, 0);
    pid_t pids[2];

    for (int p = 0; p < 2; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            hammer(z, ROUNDS);
            _exit(0);
        }
    }
    for (int p = 0; p < 2; p++) {
        int st;
        assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    check_counts(z, 2.0 * ROUNDS);
    assert_int_equal(sl_shm_check(z), 0);
    sl_shm_zone_release(z);
}

static void
test_killed_holding_lock(void **state)
{
    sl_shm_zone_t *z = zone("robust", 256 * 1024, 16);
    int fds[2];
    char c;
    double n;

    assert_int_equal(sl_shm_set(z, SL_STR("kept"), SL_STR("value"), 0), 0);
    assert_int_equal(pipe(fds), 0);
    pid_t victim = fork();
    assert_true(victim >= 0);
    if (victim == 0) {
        sl_shm_test_die_locked(z, SL_STR("torn"));
        (void)!write(fds[1], "L", 1);
        for (;;)
            pause();
    }
    assert_int_equal(read(fds[0], &c, 1), 1); /* it holds the lock now */
    /* A process that starts hammering while the lock is held... */
    pid_t other = fork();
    assert_true(other >= 0);
    if (other == 0) {
        hammer(z, 500);
        _exit(0);
    }
    kill(victim, SIGKILL);
    int st;
    assert_int_equal(waitpid(victim, &st, 0), victim);
    assert_true(WIFSIGNALED(st));
    /* ...is not wedged: it finishes with exact counts. */
    hammer(z, 500);
    assert_int_equal(waitpid(other, &st, 0), other);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    check_counts(z, 1000);
    assert_int_equal(sl_shm_recoveries(z), 1);
    assert_int_equal(sl_shm_check(z), 0);
    /* the half-written entry is gone, the others are intact */
    assert_int_equal(sl_shm_get(z, SL_STR("torn"), NULL, 0, NULL, &n), SL_SHM_NOT_FOUND);
    char buf[16];
    size_t len;
    assert_int_equal(sl_shm_get(z, SL_STR("kept"), buf, sizeof(buf), &len, NULL), SL_SHM_STRING);
    assert_int_equal(len, 5);
    sl_shm_info_t in;
    sl_shm_zone_info(z, &in);
    assert_int_equal(in.used, NKEYS + 1);
    close(fds[0]);
    close(fds[1]);
    sl_shm_zone_release(z);
}

static void
test_full(void **state)
{
    sl_shm_zone_t *z = zone("full", 16 * 1024, 0);
    sl_shm_info_t in;
    char k[32];
    size_t i;
    double n;

    sl_shm_zone_info(z, &in);
    assert_true(in.capacity > 10);
    for (i = 0; i < in.capacity; i++) {
        int len = snprintf(k, sizeof(k), "s%zu", i);
        assert_int_equal(sl_shm_incr(z, (sl_str_t){k, (size_t)len}, 1, 0, NULL), 0);
    }
    assert_int_equal(sl_shm_incr(z, SL_STR("one-more"), 1, 0, NULL), SL_SHM_ENOSPC);
    assert_int_equal(sl_shm_set(z, SL_STR("one-more"), SL_STR(""), 0), SL_SHM_ENOSPC);
    /* existing entries still update, nothing was evicted or corrupted */
    assert_int_equal(sl_shm_incr(z, SL_STR("s0"), 1, 0, &n), 0);
    assert_true(n == 2);
    assert_int_equal(sl_shm_check(z), 0);
    sl_shm_zone_info(z, &in);
    assert_int_equal(in.used, in.capacity);
    /* a delete frees a slot */
    assert_int_equal(sl_shm_delete(z, SL_STR("s1")), 1);
    assert_int_equal(sl_shm_incr(z, SL_STR("one-more"), 1, 0, NULL), 0);
    assert_int_equal(sl_shm_incr(z, SL_STR("two-more"), 1, 0, NULL), SL_SHM_ENOSPC);
    /* expired entries are reclaimed when space is needed */
    assert_int_equal(sl_shm_delete(z, SL_STR("s2")), 1);
    assert_int_equal(sl_shm_delete(z, SL_STR("s3")), 1);
    assert_int_equal(sl_shm_incr(z, SL_STR("t1"), 1, 10, NULL), 0);
    assert_int_equal(sl_shm_incr(z, SL_STR("t2"), 1, 10, NULL), 0);
    assert_int_equal(sl_shm_incr(z, SL_STR("t3"), 1, 0, NULL), SL_SHM_ENOSPC);
    nap_ms(30);
    assert_int_equal(sl_shm_incr(z, SL_STR("t3"), 1, 0, NULL), 0);
    assert_int_equal(sl_shm_incr(z, SL_STR("t4"), 1, 0, NULL), 0);
    assert_int_equal(sl_shm_incr(z, SL_STR("t5"), 1, 0, NULL), SL_SHM_ENOSPC);
    assert_int_equal(sl_shm_check(z), 0);
    sl_shm_zone_release(z);
}

typedef struct {
    size_t n;
    double sum;
    size_t strings;
} iter_acc_t;

static int
iter_cb(void *arg, const sl_shm_entry_t *e)
{
    iter_acc_t *a = arg;
    a->n++;
    if (e->type == SL_SHM_NUMBER)
        a->sum += e->num;
    else
        a->strings += e->value.len;
    return 0;
}

static int
iter_stop(void *arg, const sl_shm_entry_t *e)
{
    (*(size_t *)arg)++;
    return 1;
}

static void
test_iter(void **state)
{
    sl_shm_zone_t *z = zone("iter", 1024 * 1024, 8);
    char k[32];
    iter_acc_t a = {0};
    size_t stops = 0;

    for (int i = 0; i < 2000; i++) {
        int len = snprintf(k, sizeof(k), "c%d", i);
        assert_int_equal(sl_shm_incr(z, (sl_str_t){k, (size_t)len}, i, 0, NULL), 0);
    }
    assert_int_equal(sl_shm_set(z, SL_STR("s"), SL_STR("abc"), 0), 0);
    assert_int_equal(sl_shm_set(z, SL_STR("gone"), SL_STR("abc"), 5), 0);
    nap_ms(20);
    assert_int_equal(sl_shm_iter(z, iter_cb, &a), 0);
    assert_int_equal(a.n, 2001);
    assert_true(a.sum == 1999.0 * 2000 / 2);
    assert_int_equal(a.strings, 3);
    assert_int_equal(sl_shm_iter(z, iter_stop, &stops), 1);
    assert_int_equal(stops, 1);
    sl_shm_zone_release(z);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dict),
        cmocka_unit_test(test_incr_many),
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_two_processes),
        cmocka_unit_test(test_killed_holding_lock),
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_iter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
