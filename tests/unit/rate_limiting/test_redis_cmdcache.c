/* test_redis_cmdcache.c - the synchronous increment's command kept per key
 * (plugins/shared/redis_cmdcache.c): the text is hiredis's formatting of
 * EVAL <script> 1 <key> <ttl>, reused only for the same key and ttl, and
 * right again after a key was pushed out of its slot. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "redis_cmdcache.h"
#include "sluice/plugin.h"

/* What hiredis formats for the same command, from scratch. */
static void
assert_formatted(const char *got, int len, const char *key, long long ttl)
{
    char t[32], *want;
    int wlen;

    snprintf(t, sizeof(t), "%lld", ttl);
    const char *argv[] = {"EVAL", rl_incr_script, "1", key, t};
    wlen = redisFormatCommandArgv(&want, 5, argv, NULL);
    assert_true(wlen > 0);
    assert_int_equal(len, wlen);
    assert_memory_equal(got, want, (size_t)wlen);
    redisFreeCommand(want);
}

static void
test_same_key_reused(void **state)
{
    rl_cmdcache_t *cc = rl_cmdcache_new();
    const char *k = "ratelimit:r:s:127.0.0.1:1700000000000:second";
    const char *a, *b;
    int la, lb;

    (void)state;
    assert_non_null(cc);
    la = rl_cmdcache_incr(cc, k, strlen(k), 1, &a);
    assert_formatted(a, la, k, 1);
    lb = rl_cmdcache_incr(cc, k, strlen(k), 1, &b);
    assert_ptr_equal(a, b); /* kept, not formatted again */
    assert_int_equal(la, lb);
    /* another ttl is another command */
    lb = rl_cmdcache_incr(cc, k, strlen(k), 31536000, &b);
    assert_formatted(b, lb, k, 31536000);
    rl_cmdcache_free(cc);
}

/* Many keys through few slots: every answer is the right command. */
static void
test_eviction(void **state)
{
    rl_cmdcache_t *cc = rl_cmdcache_new();
    char k[64];
    const char *c;
    int len;

    (void)state;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 1000; i++) {
            snprintf(k, sizeof(k), "ratelimit:r:s:10.0.%d.%d:1700000000000:minute", i / 256,
                     i % 256);
            len = rl_cmdcache_incr(cc, k, strlen(k), 60 + i % 3, &c);
            assert_formatted(c, len, k, 60 + i % 3);
        }
    }
    /* keys that differ only after a NUL, or only in length */
    len = rl_cmdcache_incr(cc, "ab\0c", 4, 60, &c);
    assert_int_equal(len > 0, 1);
    assert_non_null(memmem(c, (size_t)len, "$4\r\nab\0c\r\n", 10));
    len = rl_cmdcache_incr(cc, "ab", 2, 60, &c);
    assert_formatted(c, len, "ab", 60);
    rl_cmdcache_free(cc);
}

static void
test_bad_keys(void **state)
{
    rl_cmdcache_t *cc = rl_cmdcache_new();
    char big[SL_SHM_KEY_MAX + 2];
    const char *c = NULL;

    (void)state;
    memset(big, 'k', sizeof(big));
    assert_int_equal(rl_cmdcache_incr(cc, big, SL_SHM_KEY_MAX + 1, 60, &c), -1);
    assert_int_equal(rl_cmdcache_incr(cc, "", 0, 60, &c), -1);
    assert_true(rl_cmdcache_incr(cc, big, SL_SHM_KEY_MAX, 60, &c) > SL_SHM_KEY_MAX);
    rl_cmdcache_free(cc);
    rl_cmdcache_free(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_key_reused),
        cmocka_unit_test(test_eviction),
        cmocka_unit_test(test_bad_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
