/* test_consumers.c - consumers and keyauth_credentials in the declarative
 * config (nested and top-level forms, errors with file:line:path), the
 * key and consumer look-ups, and consumer-scoped plugin chains with Kong's
 * precedence. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "conf/config.h"
#include "fake_plugins.h"

static void
expect_errors(const char *yaml, const char *const *want)
{
    sl_errors_t errs = {0};
    size_t n = 0;

    assert_null(sl_fake_load(yaml, &errs));
    for (; want[n]; n++) {
        if (!sl_fake_has_error(&errs, want[n])) {
            fprintf(stderr, "missing: %s\n", want[n]);
            sl_fake_dump_errors(&errs);
            fail();
        }
    }
    if (errs.n != n) {
        sl_fake_dump_errors(&errs);
        assert_int_equal(errs.n, n);
    }
    sl_errors_free(&errs);
    assert_int_equal(sl_fake_live_confs, 0);
}

static const sl_consumer_t *
by_user(const sl_conf_t *conf, const char *u)
{
    return sl_conf_consumer_find(conf, sl_str_c(u));
}

static void
test_forms_and_lookups(void **state)
{
    static const char yaml[] = "_format_version: \"3.0\"\n"
                               "consumers:\n"
                               "- username: alice\n"
                               "  custom_id: team-a\n"
                               "  tags: [t1]\n"
                               "  keyauth_credentials:\n"
                               "  - key: sk-alice-1\n"
                               "  - key: sk-alice-2\n"
                               "    id: 0A4F6E3C-1B2D-4C5E-8F90-123456789ABC\n"
                               "- custom_id: only-custom\n"
                               "- username: bob\n"
                               "  id: 11111111-2222-4333-8444-555555555555\n"
                               "keyauth_credentials:\n"
                               "- key: sk-bob\n"
                               "  consumer: bob\n"
                               "- key: sk-bob-2\n"
                               "  consumer: {id: 11111111-2222-4333-8444-555555555555}\n"
                               "  tags: [x]\n";
    sl_errors_t errs = {0};
    sl_conf_t *conf, *again;
    const sl_consumer_t *alice, *bob;
    const sl_credential_t *cr;

    (void)state;
    conf = sl_fake_load(yaml, &errs);
    sl_fake_dump_errors(&errs);
    assert_non_null(conf);
    assert_int_equal(conf->nconsumers, 3);
    assert_int_equal(conf->nkeyauth, 4);
    alice = by_user(conf, "alice");
    bob = by_user(conf, "bob");
    assert_non_null(alice);
    assert_non_null(bob);
    assert_string_equal(alice->custom_id, "team-a");
    assert_null(bob->custom_id);
    assert_null(conf->consumers[1]->username);
    assert_string_equal(conf->consumers[1]->custom_id, "only-custom");
    /* by id too, case-insensitively */
    assert_ptr_equal(sl_conf_consumer_find(conf, SL_STR("11111111-2222-4333-8444-555555555555")),
                     bob);
    assert_ptr_equal(sl_conf_consumer_find(conf, sl_str_c(alice->id)), alice);
    assert_null(by_user(conf, "team-a")); /* custom_id is not a look-up key */
    assert_null(by_user(conf, "nobody"));
    assert_non_null(strstr(alice->entity_json, "\"username\":\"alice\""));
    assert_non_null(strstr(alice->entity_json, "\"tags\":[\"t1\"]"));
    assert_null(strstr(alice->entity_json, "sk-alice")); /* never the keys */

    cr = sl_conf_keyauth_find(conf, SL_STR("sk-alice-2"));
    assert_non_null(cr);
    assert_ptr_equal(cr->consumer, alice);
    assert_string_equal(cr->id, "0a4f6e3c-1b2d-4c5e-8f90-123456789abc");
    assert_ptr_equal(sl_conf_keyauth_find(conf, SL_STR("sk-alice-1"))->consumer, alice);
    assert_ptr_equal(sl_conf_keyauth_find(conf, SL_STR("sk-bob"))->consumer, bob);
    assert_ptr_equal(sl_conf_keyauth_find(conf, SL_STR("sk-bob-2"))->consumer, bob);
    assert_null(sl_conf_keyauth_find(conf, SL_STR("sk-bob-")));
    assert_null(sl_conf_keyauth_find(conf, SL_STR("sk-bob-22")));
    assert_null(sl_conf_keyauth_find(conf, SL_STR("")));

    /* generated ids are stable across loads */
    again = sl_fake_load(yaml, &errs);
    assert_non_null(again);
    assert_string_equal(sl_conf_keyauth_find(again, SL_STR("sk-bob"))->id,
                        sl_conf_keyauth_find(conf, SL_STR("sk-bob"))->id);
    assert_string_equal(by_user(again, "alice")->id, alice->id);
    sl_conf_free(again);
    sl_conf_free(conf);
    assert_int_equal(sl_fake_live_confs, 0);
}

static void
test_many_keys(void **state)
{
    char *yaml = malloc(1 << 20), *p = yaml;
    sl_errors_t errs = {0};
    sl_conf_t *conf;
    char key[64];

    (void)state;
    p += sprintf(p, "_format_version: \"3.0\"\nconsumers:\n");
    for (int i = 0; i < 300; i++)
        p += sprintf(p, "- username: u%d\n  keyauth_credentials: [{key: k-%d}]\n", i, i);
    conf = sl_fake_load(yaml, &errs);
    sl_fake_dump_errors(&errs);
    assert_non_null(conf);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof(key), "k-%d", i);
        assert_ptr_equal(sl_conf_keyauth_find(conf, sl_str_c(key))->consumer, conf->consumers[i]);
    }
    assert_null(sl_conf_keyauth_find(conf, SL_STR("k-300")));
    assert_null(sl_conf_keyauth_find(conf, SL_STR("k-2999"))); /* k-299 and one more byte */
    assert_null(sl_conf_keyauth_find(conf, SL_STR("k-29\0"))); /* a NUL is a byte too */
    assert_null(sl_conf_keyauth_find(conf, SL_STR("K-1")));    /* keys are case-sensitive */
    assert_null(sl_conf_keyauth_find(conf, SL_STR("j-1")));    /* same length, first byte */
    sl_conf_free(conf);

    /* the index grew to 512 slots: a duplicate is still found, naming the first */
    p = yaml + strlen(yaml);
    p += sprintf(p, "- username: again\n  keyauth_credentials: [{key: k-257}]\n");
    assert_null(sl_fake_load(yaml, &errs));
    assert_int_equal(errs.n, 1);
    assert_string_equal(errs.msgs[0], "kong.yaml:604: consumers[300].keyauth_credentials[0].key: "
                                      "duplicate key: the same key is given at "
                                      "consumers[257].keyauth_credentials[0]");
    sl_errors_free(&errs);
    free(yaml);
}

static void
test_errors(void **state)
{
    (void)state;
    expect_errors(
        "_format_version: \"3.0\"\n"
        "consumers:\n"
        "- username: a\n"                   /* 3 */
        "  keyauth_credentials:\n"          /* 4 */
        "  - key: shared-secret\n"          /* 5 */
        "- username: b\n"                   /* 6 */
        "  keyauth_credentials:\n"          /* 7 */
        "  - key: shared-secret\n"          /* 8 */
        "  - {}\n"                          /* 9 */
        "  - {key: x, secret: y}\n"         /* 10 */
        "- tags: [t]\n"                     /* 11 */
        "- username: a\n"                   /* 12 */
        "- username: c\n"                   /* 13 */
        "  keyauth_credentials: {key: z}\n" /* 14 */
        "keyauth_credentials:\n"            /* 15 */
        "- key: k2\n"                       /* 16 */
        "  consumer: nobody\n"              /* 17 */
        "- key: k3\n"                       /* 18 */
        "- key: k4\n"                       /* 19 */
        "  consumer: {name: a}\n"           /* 20 */
        "- key: k5\n"                       /* 21 */
        "  consumer: a\n"                   /* 22 */
        "  ttl: 10\n",                      /* 23 */
        (const char *const[]){
            "kong.yaml:8: consumers[1].keyauth_credentials[0].key: duplicate key: the same key is "
            "given at consumers[0].keyauth_credentials[0]",
            "kong.yaml:9: consumers[1].keyauth_credentials[1].key: required field missing",
            "kong.yaml:10: consumers[1].keyauth_credentials[2].secret: unknown field",
            "kong.yaml:11: consumers[2]: at least one of these fields must be non-empty: "
            "'custom_id', 'username'",
            "kong.yaml:12: consumers[3].username: duplicate consumer username 'a' (also "
            "consumers[0])",
            "kong.yaml:14: consumers[4].keyauth_credentials: expected an array",
            "kong.yaml:17: keyauth_credentials[0].consumer: consumer 'nobody' not found",
            "kong.yaml:18: keyauth_credentials[1].consumer: required field missing",
            "kong.yaml:20: keyauth_credentials[2].consumer.name: unknown field",
            "kong.yaml:23: keyauth_credentials[3].ttl: ttl is not supported by sluice "
            "(declarative keys do not expire)",
            NULL});
    /* plugins scoped to consumers */
    expect_errors("_format_version: \"3.0\"\n"
                  "consumers:\n"
                  "- username: a\n"
                  "  plugins:\n"
                  "  - name: alpha\n" /* 5 */
                  "    consumer: a\n" /* 6 */
                  "  - name: beta\n"  /* 7 */
                  "  - name: beta\n"  /* 8 */
                  "plugins:\n"
                  "- name: gamma\n"     /* 10 */
                  "  consumer: ghost\n" /* 11 */
                  "- name: gamma\n"     /* 12 */
                  "  consumer: {username: a}\n"
                  "- name: gamma\n" /* 14 */
                  "  consumer: a\n",
                  (const char *const[]){
                      "kong.yaml:6: consumers[0].plugins[0].consumer: cannot be set on a plugin "
                      "nested under a consumer",
                      "kong.yaml:8: consumers[0].plugins[2].name: plugin 'beta' is configured more "
                      "than once for the same consumer (also consumers[0].plugins[1])",
                      "kong.yaml:11: plugins[0].consumer: consumer 'ghost' not found",
                      "kong.yaml:14: plugins[2].name: plugin 'gamma' is configured more than once "
                      "for the same consumer (also plugins[1])",
                      NULL});
}

/* Duplicate ids and custom_ids are found through the indexes, ids in any
 * case; a generated id never clashes with a given one by accident. */
static void
test_duplicate_ids(void **state)
{
    (void)state;
    expect_errors("_format_version: \"3.0\"\n"
                  "consumers:\n"
                  "- username: a\n"                                /* 3 */
                  "  custom_id: team\n"                            /* 4 */
                  "  id: 0a4f6e3c-1b2d-4c5e-8f90-123456789abc\n"   /* 5 */
                  "  keyauth_credentials:\n"                       /* 6 */
                  "  - key: k1\n"                                  /* 7 */
                  "    id: 11111111-2222-4333-8444-555555555555\n" /* 8 */
                  "- username: b\n"                                /* 9 */
                  "  custom_id: team\n"                            /* 10 */
                  "  id: 0A4F6E3C-1B2D-4C5E-8F90-123456789ABC\n"   /* 11 */
                  "keyauth_credentials:\n"                         /* 12 */
                  "- key: k2\n"                                    /* 13 */
                  "  consumer: {id: 0A4F6E3C-1B2D-4C5E-8F90-123456789ABC}\n"
                  "  id: 11111111-2222-4333-8444-555555555555\n", /* 15 */
                  (const char *const[]){
                      "kong.yaml:10: consumers[1].custom_id: duplicate consumer custom_id 'team' "
                      "(also consumers[0])",
                      "kong.yaml:11: consumers[1].id: duplicate consumer id "
                      "'0a4f6e3c-1b2d-4c5e-8f90-123456789abc' (also consumers[0])",
                      "kong.yaml:15: keyauth_credentials[0].id: duplicate keyauth_credential id "
                      "'11111111-2222-4333-8444-555555555555' (also "
                      "consumers[0].keyauth_credentials[0])",
                      NULL});
}

/* A consumer's explicit id in test_scale: i in the first and last groups. */
static void
scale_id(char out[37], int i, int upper)
{
    snprintf(out, 37, upper ? "%08X-AAAA-4BBB-8CCC-%012X" : "%08x-aaaa-4bbb-8ccc-%012x", i, i);
}

/* 100,000 consumers and as many keys, nested and top-level, referenced by
 * username and by id: each look-up is an index probe, so the load is
 * linear (~1-2 s here; it was quadratic: 20,000 took 15-20 s, 100,000
 * would take minutes and hit the test's timeout) and every look-up finds
 * the right entity. */
#define SCALE_N 100000
static void
test_scale(void **state)
{
    size_t cap = (size_t)SCALE_N * 160, len = 0;
    char *doc = malloc(cap), name[64], id[37];
    sl_errors_t errs = {0};
    sl_conf_t *conf;
    struct timespec t0, t1;

    (void)state;
    assert_non_null(doc);
    len += (size_t)snprintf(doc + len, cap - len, "{\"_format_version\":\"3.0\",\"consumers\":[");
    for (int i = 0; i < SCALE_N; i++) {
        len += (size_t)snprintf(doc + len, cap - len,
                                "%s{\"username\":\"user-%d\",\"custom_id\":\"c-%d\"", i ? "," : "",
                                i, i);
        if (i % 3 == 2) {
            scale_id(id, i, 0);
            len += (size_t)snprintf(doc + len, cap - len, ",\"id\":\"%s\"", id);
        }
        if (i % 2 == 0)
            len += (size_t)snprintf(doc + len, cap - len,
                                    ",\"keyauth_credentials\":[{\"key\":\"key-%d-nested\"}]", i);
        len += (size_t)snprintf(doc + len, cap - len, "}");
    }
    len += (size_t)snprintf(doc + len, cap - len, "],\"keyauth_credentials\":[");
    for (int i = 1; i < SCALE_N; i += 2) {
        if (i % 3 == 2) { /* by id, in upper case */
            scale_id(id, i, 1);
            len += (size_t)snprintf(doc + len, cap - len,
                                    "%s{\"key\":\"key-%d-top\",\"consumer\":{\"id\":\"%s\"}}",
                                    i > 1 ? "," : "", i, id);
        } else {
            len += (size_t)snprintf(doc + len, cap - len,
                                    "%s{\"key\":\"key-%d-top\",\"consumer\":\"user-%d\"}",
                                    i > 1 ? "," : "", i, i);
        }
    }
    len += (size_t)snprintf(doc + len, cap - len, "]}");
    assert_true(len < cap);

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    conf = sl_fake_load(doc, &errs);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    sl_fake_dump_errors(&errs);
    assert_non_null(conf);
    fprintf(stderr, "%d consumers, %zu keys: loaded in %.2f s CPU\n", SCALE_N, conf->nkeyauth,
            (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    assert_int_equal(conf->nconsumers, SCALE_N);
    assert_int_equal(conf->nkeyauth, SCALE_N);

    for (int i = 0; i < SCALE_N; i++) {
        const sl_consumer_t *c = conf->consumers[i];
        const sl_credential_t *cr;

        snprintf(name, sizeof(name), "user-%d", i);
        assert_ptr_equal(by_user(conf, name), c);
        assert_ptr_equal(sl_conf_consumer_find(conf, sl_str_c(c->id)), c);
        snprintf(name, sizeof(name), "key-%d-%s", i, i % 2 ? "top" : "nested");
        cr = sl_conf_keyauth_find(conf, sl_str_c(name));
        assert_non_null(cr);
        assert_ptr_equal(cr->consumer, c);
        if (i % 3 == 2) {
            scale_id(id, i, 1);
            assert_ptr_equal(sl_conf_consumer_find(conf, sl_str_c(id)), c);
            scale_id(id, i, 0);
            assert_string_equal(c->id, id);
        }
    }
    assert_null(by_user(conf, "user-100000"));
    assert_null(by_user(conf, "c-7")); /* custom_id is not a look-up key */
    assert_null(sl_conf_keyauth_find(conf, SL_STR("key-1-nested")));
    assert_null(sl_conf_keyauth_find(conf, SL_STR("key-0-top")));
    scale_id(id, SCALE_N + 2, 0);
    assert_null(sl_conf_consumer_find(conf, sl_str_c(id)));
    sl_conf_free(conf);

    /* a clash found far from the first one names it */
    len = (size_t)snprintf(doc, cap, "{\"_format_version\":\"3.0\",\"consumers\":[");
    for (int i = 0; i < SCALE_N / 10; i++)
        len +=
            (size_t)snprintf(doc + len, cap - len,
                             "%s{\"username\":\"u%d\",\"keyauth_credentials\":[{\"key\":\"k%d\"}]}",
                             i ? "," : "", i, i == SCALE_N / 10 - 1 ? 4 : i);
    len += (size_t)snprintf(doc + len, cap - len, "]}");
    assert_true(len < cap);
    assert_null(sl_fake_load(doc, &errs));
    assert_true(sl_fake_has_error(&errs, "kong.yaml:1: consumers[9999].keyauth_credentials[0].key: "
                                         "duplicate key: the same key is given at "
                                         "consumers[4].keyauth_credentials[0]"));
    assert_int_equal(errs.n, 1);
    sl_errors_free(&errs);
    free(doc);
    assert_int_equal(sl_fake_live_confs, 0);
}

#define CHAIN_IS(ch, i, nm, frag)                                                                  \
    do {                                                                                           \
        assert_string_equal((ch)->items[i]->plugin->desc->name, nm);                               \
        assert_non_null(strstr((ch)->items[i]->conf, frag));                                       \
    } while (0)

static void
test_scoped_chains(void **state)
{
    static const char yaml[] =
        "_format_version: \"3.0\"\n"
        "services:\n"
        "- name: s1\n"
        "  url: http://up\n"
        "  routes:\n"
        "  - {name: r1, paths: [/one]}\n"
        "  - {name: r2, paths: [/two]}\n"
        "consumers:\n"
        "- username: u1\n"
        "  plugins:\n"
        "  - {name: beta, config: {t: c-beta}}\n"
        "- username: u2\n"
        "plugins:\n"
        "- {name: alpha, config: {t: global}}\n"
        "- {name: alpha, consumer: u1, config: {t: consumer}}\n"
        "- {name: alpha, route: r1, consumer: u1, config: {t: r-c}}\n"
        "- {name: beta, route: r1, config: {t: route}}\n"
        "- {name: gamma, route: r1, service: s1, config: {t: r-s}}\n"
        "- {name: gamma, service: s1, consumer: u1, config: {t: s-c}}\n"
        "- {name: file-log, enabled: false, consumer: u2, config: {path: /x}}\n";
    sl_errors_t errs = {0};
    sl_conf_t *conf;
    const sl_route_t *r1 = NULL, *r2 = NULL;
    const sl_consumer_t *u1, *u2;
    const sl_chain_t *ch;

    (void)state;
    conf = sl_fake_load(yaml, &errs);
    sl_fake_dump_errors(&errs);
    assert_non_null(conf);
    for (size_t i = 0; i < conf->nroutes; i++) {
        if (!strcmp(conf->routes[i]->name, "r1"))
            r1 = conf->routes[i];
        else
            r2 = conf->routes[i];
    }
    u1 = by_user(conf, "u1");
    u2 = by_user(conf, "u2");
    assert_int_equal(conf->nconsumer_plugins, 5);

    /* without a consumer: consumer-scoped instances never apply */
    assert_int_equal(r1->chain.n, 3);
    CHAIN_IS(&r1->chain, 0, "gamma", "r-s");
    CHAIN_IS(&r1->chain, 1, "beta", "route");
    CHAIN_IS(&r1->chain, 2, "alpha", "global");
    assert_int_equal(r2->chain.n, 1);
    CHAIN_IS(&r2->chain, 0, "alpha", "global");

    /* u1 on r1: service+consumer beats route+service, consumer beats
     * route, route+consumer beats consumer */
    ch = sl_conf_consumer_chain(u1, r1);
    assert_non_null(ch);
    assert_int_equal(ch->n, 3);
    CHAIN_IS(ch, 0, "gamma", "s-c");
    CHAIN_IS(ch, 1, "beta", "c-beta");
    CHAIN_IS(ch, 2, "alpha", "r-c");
    ch = sl_conf_consumer_chain(u1, r2);
    assert_int_equal(ch->n, 3);
    CHAIN_IS(ch, 0, "gamma", "s-c");
    CHAIN_IS(ch, 1, "beta", "c-beta");
    CHAIN_IS(ch, 2, "alpha", "consumer");

    /* u2's only instance is disabled: it still counts as scoped, and its
     * chains equal the route's */
    ch = sl_conf_consumer_chain(u2, r1);
    assert_non_null(ch);
    assert_int_equal(ch->n, 3);
    CHAIN_IS(ch, 2, "alpha", "global");
    assert_null(sl_conf_consumer_chain(NULL, r1));

    /* run order helper */
    assert_true(sl_conf_chain_order(r1->chain.items[0], r1->chain.items[1]) < 0);
    assert_int_equal(sl_conf_chain_order(r1->chain.items[1], r1->chain.items[1]), 0);
    sl_conf_free(conf);
    assert_int_equal(sl_fake_live_confs, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms_and_lookups),
        cmocka_unit_test(test_many_keys),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_duplicate_ids),
        cmocka_unit_test(test_scale),
        cmocka_unit_test(test_scoped_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
