/* test_redis_slot.c - Redis Cluster key slots and MOVED/ASK parsing
 * (plugins/shared/redis_slot.c). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "redis_slot.h"

#define SLOT(s) rl_key_slot((s), strlen(s))

static void
test_slots(void **state)
{
    (void)state;
    /* the values redis-server 7's CLUSTER KEYSLOT gives */
    assert_int_equal(SLOT("foo"), 12182);
    assert_int_equal(SLOT("bar"), 5061);
    assert_int_equal(SLOT("123456789"), 12739); /* CRC16 0x31c3 */
    assert_int_equal(SLOT(""), 0);
    /* hash tags: the first {...} with something inside */
    assert_int_equal(SLOT("{user1000}.following"), SLOT("user1000"));
    assert_int_equal(SLOT("{user1000}.followers"), SLOT("user1000"));
    assert_int_equal(SLOT("foo{}{bar}"), 8363); /* empty tag: the whole key */
    assert_int_equal(SLOT("foo{{bar}}zap"), 4015);
    assert_int_equal(SLOT("{bar"), 4015);
    assert_int_equal(SLOT("foo{bar}{zap}"), SLOT("bar"));
    assert_int_equal(SLOT("no{close"), 7129);
    /* a rate-limiting key in Kong's layout */
    assert_int_equal(SLOT("ratelimit:00000000-0000-0000-0000-000000000000:00000000-0000-0000-"
                          "0000-000000000000:127.0.0.1:1700000000000:hour"),
                     6280);
    /* bytes after a NUL count */
    assert_int_not_equal(rl_key_slot("a\0b", 3), rl_key_slot("a", 1));
}

static void
test_redirects(void **state)
{
    rl_redirect_t r;

    (void)state;
    assert_int_equal(rl_redirect_parse("MOVED 3999 127.0.0.1:6381", &r), RL_REDIRECT_MOVED);
    assert_int_equal(r.slot, 3999);
    assert_string_equal(r.host, "127.0.0.1");
    assert_int_equal(r.port, 6381);
    assert_int_equal(rl_redirect_parse("ASK 16383 ::1:7000", &r), RL_REDIRECT_ASK);
    assert_string_equal(r.host, "::1");
    assert_int_equal(r.port, 7000);
    assert_int_equal(r.slot, 16383);
    /* anything else is an ordinary error */
    static const char *const bad[] = {
        "ERR unknown command",
        "MOVED",
        "MOVED 16384 127.0.0.1:1",
        "MOVED -1 127.0.0.1:1",
        "MOVED 1 127.0.0.1",
        "MOVED 1 127.0.0.1:0",
        "MOVED 1 127.0.0.1:65536",
        "MOVED 1 :7000",
        "MOVED 1 127.0.0.1:70x",
        "ASK x 127.0.0.1:1",
        "CLUSTERDOWN The cluster is down",
        "MOVED 1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:1",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rl_redirect_parse(bad[i], &r), RL_REDIRECT_NONE);
    assert_int_equal(rl_redirect_parse(NULL, &r), RL_REDIRECT_NONE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_redirects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
