/* test_balancer.c - Kong's balancer (upstream/balancer.c) on a loaded
 * configuration: the upstream a host names among 3,000, xxHash32 vectors, weighted round-robin
 * proportions, a retry avoiding the target just tried, consistent hashing stickiness, passive
 * health flipping a target and the all-down answer, and the 60 s reuse rule of the per-address
 * health slots (with its clock set by the test). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "upstream/balancer.h"
#include "upstream/balancer_int.h"

static sl_conf_t *
load(const char *yaml)
{
    static const sl_plugin_registry_t reg = {0};
    sl_errors_t errs = {0};
    sl_conf_t *c = sl_conf_load_buffer("t.yaml", yaml, strlen(yaml), &reg, NULL, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "%s\n", errs.msgs[i]);
    assert_non_null(c);
    sl_errors_free(&errs);
    return c;
}

static void
test_xxh32(void **state)
{
    (void)state;
    assert_int_equal(sl_xxh32("", 0), 0x02CC5D05u);
    assert_int_equal(sl_xxh32("a", 1), 0x550D7456u);
    assert_int_equal(sl_xxh32("abc", 3), 0x32D153FFu);
    assert_int_equal(sl_xxh32("Nobody inspects the spammish repetition", 39), 0xE2293B2Fu);
}

/* The upstream a host names: one probe of the index the load kept, any
 * case, the host read by its length (not NUL-terminated), 3,000 names. */
static void
test_upstream_find(void **state)
{
    char *yaml = NULL, host[64];
    size_t len = 0;
    FILE *f = open_memstream(&yaml, &len);

    (void)state;
    fputs("_format_version: '3.0'\nupstreams:\n", f);
    for (int i = 0; i < 3000; i++)
        fprintf(f, "- name: up-%d.example\n", i);
    fclose(f);
    sl_conf_t *c = load(yaml);
    for (int i = 0; i < 3000; i++) {
        int n = snprintf(host, sizeof(host), "UP-%d.Example:tail", i);
        const sl_upstream_conf_t *u = sl_conf_upstream_find(c, (sl_str_t){host, (size_t)n - 5});
        assert_non_null(u);
        assert_int_equal(u->idx, i);
    }
    assert_null(sl_conf_upstream_find(c, SL_STR("up-3000.example")));
    assert_null(sl_conf_upstream_find(c, SL_STR("up-1.exampl")));
    assert_null(sl_conf_upstream_find(c, SL_STR("up-1.example.")));
    assert_null(sl_conf_upstream_find(c, SL_STR("")));
    assert_null(sl_conf_upstream_find(NULL, SL_STR("up-1.example")));
    sl_conf_free(c);
    free(yaml);
    c = load("_format_version: '3.0'\n");
    assert_null(sl_conf_upstream_find(c, SL_STR("up-1.example")));
    sl_conf_free(c);
}

static void
test_round_robin(void **state)
{
    sl_conf_t *c = load("_format_version: '3.0'\n"
                        "upstreams:\n"
                        "- name: u\n"
                        "  healthchecks: {passive: {unhealthy: {tcp_failures: 2}}}\n"
                        "  targets:\n"
                        "  - {target: 10.0.0.1:80, weight: 300}\n"
                        "  - {target: 10.0.0.2:80, weight: 100}\n"
                        "  - {target: 10.0.0.3:80, weight: 0}\n");
    sl_balancers_t *bs = sl_balancers_new(uv_default_loop(), c, NULL);
    const sl_upstream_conf_t *u = sl_conf_upstream_find(c, SL_STR("U"));
    sl_bal_pick_t pk;
    int n[3] = {0};

    (void)state;
    assert_non_null(u);
    for (int i = 0; i < 400; i++) {
        assert_int_equal(sl_balancer_begin(bs, u, &pk, NULL, 0), 0);
        n[sl_balancer_next(&pk)]++;
        sl_balancer_done(&pk, -1);
    }
    assert_int_equal(n[0], 300);
    assert_int_equal(n[1], 100);
    assert_int_equal(n[2], 0);
    /* a retry goes to the other target */
    sl_balancer_begin(bs, u, &pk, NULL, 0);
    int first = sl_balancer_next(&pk);
    assert_int_not_equal(sl_balancer_next(&pk), first);
    /* two tcp failures take 10.0.0.1 out; then 10.0.0.2 only */
    sl_balancer_begin(bs, u, &pk, NULL, 0);
    while (sl_balancer_next(&pk) != 0)
        ;
    sl_balancer_report(&pk, SL_BAL_TCP, 0);
    assert_int_equal(sl_balancer_target_health(c, u, 0), 1);
    sl_balancer_report(&pk, SL_BAL_TCP, 0);
    assert_int_equal(sl_balancer_target_health(c, u, 0), 0);
    for (int i = 0; i < 10; i++) {
        sl_balancer_begin(bs, u, &pk, NULL, 0);
        assert_int_equal(sl_balancer_next(&pk), 1);
    }
    sl_balancer_report(&pk, SL_BAL_TCP, 0);
    sl_balancer_report(&pk, SL_BAL_TCP, 0);
    sl_balancer_begin(bs, u, &pk, NULL, 0);
    assert_int_equal(sl_balancer_next(&pk), -1); /* nothing left: 503 */
    sl_balancers_free(bs);
    sl_conf_free(c);
}

static void
test_consistent_hashing(void **state)
{
    sl_conf_t *c =
        load("_format_version: '3.0'\n"
             "upstreams:\n"
             "- name: u\n"
             "  hash_on: ip\n"
             "  targets: [{target: 10.0.0.1}, {target: 10.0.0.2}, {target: 10.0.0.3}]\n");
    sl_balancers_t *bs = sl_balancers_new(uv_default_loop(), c, NULL);
    const sl_upstream_conf_t *u = c->upstreams[0];
    sl_bal_pick_t pk;
    int seen[3] = {0};

    (void)state;
    assert_int_equal(u->algorithm, SL_LB_CONSISTENT_HASHING);
    assert_int_equal(u->targets[0].port, 8000); /* Kong's default target port */
    for (int k = 0; k < 50; k++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "192.0.2.%d", k), t;
        sl_balancer_begin(bs, u, &pk, key, (size_t)len);
        t = sl_balancer_next(&pk);
        seen[t]++;
        for (int again = 0; again < 3; again++) {
            sl_balancer_begin(bs, u, &pk, key, (size_t)len);
            assert_int_equal(sl_balancer_next(&pk), t);
        }
    }
    assert_true(seen[0] > 5 && seen[1] > 5 && seen[2] > 5);
    sl_balancers_free(bs);
    sl_conf_free(c);
}

static void
test_least_connections_latency_threshold(void **state)
{
    sl_conf_t *c = load("_format_version: '3.0'\n"
                        "upstreams:\n"
                        "- name: lc\n"
                        "  algorithm: least-connections\n"
                        "  targets: [{target: 10.0.0.1, weight: 200}, {target: 10.0.0.2}]\n"
                        "- name: lat\n"
                        "  algorithm: latency\n"
                        "  targets: [{target: 10.0.0.1}, {target: 10.0.0.2}]\n"
                        "- name: half\n"
                        "  healthchecks: {threshold: 50, passive: {unhealthy: {timeouts: 1}}}\n"
                        "  targets: [{target: 10.0.0.1}, {target: 10.0.0.2}]\n");
    sl_balancers_t *bs = sl_balancers_new(uv_default_loop(), c, NULL);
    sl_bal_pick_t pk[6];
    int n[2] = {0};

    (void)state;
    /* least-connections: (open + 1) / weight; weight 200 holds twice the
     * open tries of weight 100 */
    for (int i = 0; i < 6; i++) {
        sl_balancer_begin(bs, c->upstreams[0], &pk[i], NULL, 0);
        n[sl_balancer_next(&pk[i])]++;
    }
    assert_int_equal(n[0], 4);
    assert_int_equal(n[1], 2);
    for (int i = 0; i < 6; i++)
        sl_balancer_done(&pk[i], -1);
    /* latency: once 10.0.0.2 is known to be slow, 10.0.0.1 is chosen */
    const sl_upstream_conf_t *lat = c->upstreams[1];
    for (int t = 0; t < 2; t++) {
        sl_bal_pick_t p;
        sl_balancer_begin(bs, lat, &p, NULL, 0);
        while (sl_balancer_next(&p) != t)
            ;
        sl_balancer_done(&p, t == 0 ? 5000 : 900000);
    }
    for (int i = 0; i < 10; i++) {
        sl_bal_pick_t p;
        sl_balancer_begin(bs, lat, &p, NULL, 0);
        assert_int_equal(sl_balancer_next(&p), 0);
        sl_balancer_done(&p, 5000);
    }
    /* threshold 50: one of two equal targets down is not more than 50 % */
    const sl_upstream_conf_t *half = c->upstreams[2];
    sl_bal_pick_t p;
    sl_balancer_begin(bs, half, &p, NULL, 0);
    assert_true(sl_balancer_next(&p) >= 0);
    sl_balancer_report(&p, SL_BAL_TIMEOUT, 0);
    assert_int_equal(sl_balancer_target_health(c, half, (size_t)p.target), 0);
    sl_balancer_begin(bs, half, &p, NULL, 0);
    assert_int_equal(sl_balancer_next(&p), -1);
    sl_balancers_free(bs);
    sl_conf_free(c);
}

/* Address health slots (docs/upstream.md, "How many addresses"): 16 per
 * named target; a slot unmarked for more than 60 s goes to a new address,
 * reset.  The clock is the test's: no sleeping. */
static void
test_addr_slot_reuse(void **state)
{
    sl_target_health_t s[SL_TARGET_ADDR_SLOTS];
    const int64_t t0 = 1000000;
    const uint64_t a17 = 17u << 1 | 1, a18 = 18u << 1 | 1;

    (void)state;
    memset(s, 0, sizeof(s));
    for (uint64_t i = 0; i < SL_TARGET_ADDR_SLOTS; i++)
        assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, i << 1 | 1, t0), (int)i);
    /* full: a 17th address gets none; a known one gets its own again */
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, a17, t0 + 30000), -1);
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, 3u << 1 | 1, t0 + 30000), 3);
    /* every address but the last is still resolved (marked) at 59 s */
    for (uint64_t i = 0; i + 1 < SL_TARGET_ADDR_SLOTS; i++)
        assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, i << 1 | 1, t0 + 59000),
                         (int)i);
    atomic_store(&s[15].state, 7); /* the old address's health, to be reset */
    atomic_store(&s[15].next_check_ms, t0 + 5);
    /* 60 s unmarked is not yet more than 60 s */
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, a17, t0 + 60000), -1);
    /* one millisecond later the unmarked slot goes to the new address, reset */
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, a17, t0 + 60001), 15);
    assert_int_equal(atomic_load(&s[15].addr), a17);
    assert_int_equal(atomic_load(&s[15].state), 0);
    assert_int_equal(atomic_load(&s[15].next_check_ms), 0);
    assert_int_equal(atomic_load(&s[15].seen_ms), t0 + 60001);
    /* the others were marked at 59 s: not free for another address yet */
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, a18, t0 + 60001), -1);
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, a18, t0 + 119000), -1);
    /* past 60 s after their last mark the first of them is taken; the
     * address claimed at 60.001 s keeps its slot */
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, a18, t0 + 119001), 0);
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, a17, t0 + 119001), 15);
    /* a slot given back (tag 0) is taken before any idle one */
    atomic_store(&s[9].addr, 0);
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, 3u << 1 | 1, t0 + 500000), 3);
    assert_int_equal(sl_bal_addr_claim(s, SL_TARGET_ADDR_SLOTS, 40u << 1 | 1, t0 + 500000), 9);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_xxh32),
        cmocka_unit_test(test_upstream_find),
        cmocka_unit_test(test_round_robin),
        cmocka_unit_test(test_consistent_hashing),
        cmocka_unit_test(test_least_connections_latency_threshold),
        cmocka_unit_test(test_addr_slot_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
