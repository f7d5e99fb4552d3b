/* test_core.c - unit tests for the small core utilities: pool, headers,
 * settings parsing. */

#include <ctype.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/chars.h"
#include "base/log.h"
#include "base/pool.h"
#include "conf/settings.h"
#include "http/headers.h"

static int cleanup_order[4], ncleanups;

static void
record(void *arg)
{
    cleanup_order[ncleanups++] = (int)(intptr_t)arg;
}

static void
test_pool(void **state)
{
    sl_pool_t *p = sl_pool_create(256);
    char *a = sl_palloc(p, 10), *b = sl_palloc(p, 10);
    assert_true(((uintptr_t)a % 16) == 0 && ((uintptr_t)b % 16) == 0);
    assert_ptr_not_equal(a, b);
    char *big = sl_pcalloc(p, 100000); /* own block */
    for (int i = 0; i < 100000; i++)
        assert_int_equal(big[i], 0);
    char *s = sl_pstrndup(p, "hello world", 5);
    assert_string_equal(s, "hello");
    ncleanups = 0;
    sl_pool_cleanup_add(p, record, (void *)1);
    sl_pool_cleanup_add(p, record, (void *)2);
    assert_true(sl_pool_used(p) >= 100000);
    sl_pool_destroy(p);
    assert_int_equal(ncleanups, 2);
    assert_int_equal(cleanup_order[0], 2); /* reverse order */
    assert_int_equal(cleanup_order[1], 1);
}

static void
test_headers(void **state)
{
    sl_pool_t *p = sl_pool_create(1024);
    sl_headers_t h = {0};

    for (int i = 0; i < 40; i++) /* forces growth */
        sl_headers_add(&h, p, SL_STR("X-N"), SL_STR("v"));
    assert_int_equal(h.n, 40);
    sl_headers_add(&h, p, SL_STR("Content-Type"), SL_STR("text/plain"));
    sl_headers_add(&h, p, SL_STR("Connection"), SL_STR("keep-alive, X-Hop"));
    assert_int_equal(sl_headers_remove(&h, SL_STR("x-n")), 40);
    assert_int_equal(h.n, 2);
    const sl_header_t *f = sl_headers_get(&h, SL_STR("content-type"));
    assert_non_null(f);
    assert_true(SL_STR_EQ(f->value, "text/plain"));
    sl_headers_add(&h, p, SL_STR("content-type"), SL_STR("dup"));
    sl_headers_set(&h, p, SL_STR("CONTENT-TYPE"), SL_STR("application/json"));
    assert_int_equal(h.n, 2);
    f = sl_headers_get(&h, SL_STR("Content-Type"));
    assert_true(SL_STR_EQ(f->value, "application/json"));
    assert_true(SL_STR_EQ(h.items[0].name, "Content-Type")); /* order kept */
    assert_true(sl_headers_has_token(&h, SL_STR("connection"), SL_STR("x-hop")));
    assert_true(sl_headers_has_token(&h, SL_STR("connection"), SL_STR("KEEP-ALIVE")));
    assert_false(sl_headers_has_token(&h, SL_STR("connection"), SL_STR("keep")));
    assert_true(sl_header_is_hop_by_hop(SL_STR("Transfer-Encoding")));
    assert_false(sl_header_is_hop_by_hop(SL_STR("Content-Length")));
    {
        /* RFC 9110 section 7.6.1's list plus proxy-connection and
         * proxy-authenticate, any case; others of the same lengths are not */
        static const char *const hop[] = {"connection", "keep-alive",        "proxy-connection",
                                          "te",         "trailer",           "transfer-encoding",
                                          "upgrade",    "proxy-authenticate"};
        static const char *const not_hop[] = {"tE-x",
                                              "trailers",
                                              "upgrades",
                                              "connectiom",
                                              "keep-alivE-",
                                              "x-consumer-id",
                                              "Proxy-Authorization",
                                              "ta",
                                              "",
                                              "content-length"};
        char up[32];
        for (size_t i = 0; i < sl_nelems(hop); i++) {
            size_t n = strlen(hop[i]);
            for (size_t k = 0; k < n; k++)
                up[k] = (char)toupper((unsigned char)hop[i][k]);
            assert_true(sl_header_is_hop_by_hop((sl_str_t){hop[i], n}));
            assert_true(sl_header_is_hop_by_hop((sl_str_t){up, n}));
        }
        for (size_t i = 0; i < sl_nelems(not_hop); i++)
            assert_false(sl_header_is_hop_by_hop((sl_str_t){not_hop[i], strlen(not_hop[i])}));
    }
    sl_pool_destroy(p);
}

/* The tchar table against RFC 9110's definition, every byte. */
static void
test_tchar(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        int want = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                   (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        assert_int_equal(sl_is_tchar((unsigned char)c), want);
    }
}

static void
test_headers_set_many(void **state)
{
    sl_pool_t *p = sl_pool_create(1024);
    sl_headers_t h = {0};
    char v[4] = "1";
    const sl_str_t names[] = {SL_STR("X-A"), SL_STR("x-b"), SL_STR("X-C"), SL_STR("X-A")};
    const sl_str_t values[] = {SL_STR("a1"), {v, 1}, SL_STR(""), SL_STR("a2")};

    (void)state;
    sl_headers_add(&h, p, SL_STR("Server"), SL_STR("up"));
    sl_headers_add(&h, p, SL_STR("X-B"), SL_STR("old"));
    sl_headers_add(&h, p, SL_STR("Date"), SL_STR("d"));
    sl_headers_add(&h, p, SL_STR("x-b"), SL_STR("old2"));
    sl_headers_set_many(&h, p, names, values, 4, 0);
    v[0] = '9'; /* copied */
    assert_int_equal(h.n, 5);
    assert_true(SL_STR_EQ(h.items[0].name, "Server"));
    assert_true(SL_STR_EQ(h.items[1].name, "Date"));
    assert_true(SL_STR_EQ(h.items[2].name, "X-A"));
    assert_true(SL_STR_EQ(h.items[2].value, "a2")); /* the later wins */
    assert_true(SL_STR_EQ(h.items[3].name, "x-b"));
    assert_true(SL_STR_EQ(h.items[3].value, "1"));
    assert_int_equal(h.items[3].value.ptr[1], '\0');
    assert_true(SL_STR_EQ(h.items[4].name, "X-C"));
    assert_int_equal(h.items[4].value.len, 0);
    for (int i = 0; i < 40; i++) /* growth past the array */
        sl_headers_add(&h, p, SL_STR("X-N"), SL_STR("v"));
    sl_headers_set_many(&h, p, names, values, 4, 0);
    assert_int_equal(h.n, 45);
    sl_headers_set_many(&h, p, names, values, 0, 0);
    assert_int_equal(h.n, 45);
    assert_true(SL_STR_EQ(sl_headers_get(&h, SL_STR("x-a"))->value, "a2"));
    {
        /* null_removes: a NULL value removes (an empty one still sets); a
         * name set then removed in the same call is gone; the later wins */
        const sl_str_t rn[] = {SL_STR("x-a"), SL_STR("X-C"), SL_STR("X-D"),
                               SL_STR("X-D"), SL_STR("X-E"), SL_STR("X-B")};
        const sl_str_t rv[] = {{NULL, 0}, SL_STR(""), SL_STR("d"),
                               {NULL, 0}, {NULL, 0},  SL_STR("b")};
        sl_headers_set_many(&h, p, rn, rv, 6, 1);
        assert_null(sl_headers_get(&h, SL_STR("X-A")));
        assert_null(sl_headers_get(&h, SL_STR("X-D")));
        assert_null(sl_headers_get(&h, SL_STR("X-E")));
        assert_int_equal(sl_headers_get(&h, SL_STR("X-C"))->value.len, 0);
        assert_true(SL_STR_EQ(h.items[h.n - 1].name, "X-B"));
        assert_true(SL_STR_EQ(h.items[h.n - 1].value, "b"));
        assert_int_equal(h.n, 44); /* 40 X-N, Server, Date, X-C, X-B */
        /* without null_removes a NULL, 0 value sets an empty field */
        sl_headers_set_many(&h, p, rn + 4, rv + 4, 1, 0);
        assert_int_equal(sl_headers_get(&h, SL_STR("x-e"))->value.len, 0);
    }
    sl_pool_destroy(p);
}

/* A prepared block (ABI 1.7) does what sl_headers_set_many(.., 1) does
 * with the same names and values: compared on random lists and calls
 * (names from a small set in random case, some values NULL, names given
 * twice), field by field, and the block's text is copied, not borrowed. */
static void
fill(sl_headers_t *h, sl_pool_t *p, unsigned *seed, const sl_str_t *pool_names, size_t npn)
{
    size_t n = (size_t)(rand_r(seed) % 24);

    for (size_t i = 0; i < n; i++)
        sl_headers_add(h, p, pool_names[rand_r(seed) % npn], SL_STR("v"));
}

static sl_str_t
cased(sl_pool_t *p, sl_str_t s, unsigned *seed)
{
    char *o = sl_palloc(p, s.len + 1);

    for (size_t i = 0; i < s.len; i++)
        o[i] = rand_r(seed) % 2 ? (char)toupper((unsigned char)s.ptr[i])
                                : (char)tolower((unsigned char)s.ptr[i]);
    return (sl_str_t){o, s.len};
}

static void
test_header_block(void **state)
{
    /* two names of one length (the length filter lets both through) */
    const sl_str_t pn[] = {SL_STR("X-Consumer-ID"), SL_STR("X-Consumer-Id"),
                           SL_STR("Host"),          SL_STR("X-Credential-Identifier"),
                           SL_STR("apikey"),        SL_STR("X-Anonymous-Consumer"),
                           SL_STR("X-A"),           SL_STR("X-B")};
    const sl_str_t pv[] = {SL_STR("uuid-1"), SL_STR(""), SL_STR("user"), SL_STR("true")};
    unsigned seed = 12345;

    (void)state;
    for (int round = 0; round < 2000; round++) {
        sl_pool_t *p = sl_pool_create(1024);
        sl_headers_t a = {0}, b = {0};
        size_t n = (size_t)(rand_r(&seed) % 7);
        sl_str_t names[6], values[6];
        sl_header_block_t *blk;
        unsigned s2 = seed;

        fill(&a, p, &seed, pn, sl_nelems(pn));
        fill(&b, p, &s2, pn, sl_nelems(pn)); /* the same list */
        for (size_t k = 0; k < n; k++) {
            names[k] = cased(p, pn[rand_r(&seed) % sl_nelems(pn)], &seed);
            values[k] = rand_r(&seed) % 3 ? pv[rand_r(&seed) % sl_nelems(pv)] : (sl_str_t){NULL, 0};
        }
        sl_headers_set_many(&a, p, names, values, n, 1);
        blk = sl_header_block_new(names, values, n);
        sl_headers_apply(&b, p, blk);
        sl_header_block_free(blk); /* b keeps its own copy */
        assert_int_equal(a.n, b.n);
        for (size_t i = 0; i < a.n; i++) {
            assert_true(a.items[i].name.len == b.items[i].name.len &&
                        memcmp(a.items[i].name.ptr, b.items[i].name.ptr, a.items[i].name.len) == 0);
            assert_true(a.items[i].value.len == b.items[i].value.len &&
                        memcmp(a.items[i].value.ptr, b.items[i].value.ptr, a.items[i].value.len) ==
                            0);
            assert_int_equal(b.items[i].name.ptr[b.items[i].name.len], '\0');
            assert_int_equal(b.items[i].value.ptr[b.items[i].value.len], '\0');
        }
        sl_pool_destroy(p);
    }
    {
        /* one block, many lists: applied again it changes nothing more */
        sl_pool_t *p = sl_pool_create(1024);
        sl_headers_t h = {0};
        const sl_str_t nm[] = {SL_STR("X-A"), SL_STR("X-B")}, v[] = {SL_STR("1"), {NULL, 0}};
        sl_header_block_t *blk = sl_header_block_new(nm, v, 2);

        sl_headers_add(&h, p, SL_STR("x-b"), SL_STR("client"));
        sl_headers_add(&h, p, SL_STR("x-a"), SL_STR("client"));
        sl_headers_apply(&h, p, blk);
        sl_headers_apply(&h, p, blk);
        assert_int_equal(h.n, 1);
        assert_true(SL_STR_EQ(h.items[0].name, "X-A") && SL_STR_EQ(h.items[0].value, "1"));
        sl_header_block_free(blk);
        blk = sl_header_block_new(NULL, NULL, 0); /* empty: changes nothing */
        sl_headers_apply(&h, p, blk);
        assert_int_equal(h.n, 1);
        sl_header_block_free(blk);
        sl_header_block_free(NULL);
        sl_pool_destroy(p);
    }
}

static void
test_settings(void **state)
{
    sl_settings_t s;
    char *argv[] = {"sluice",  "-d", "x.yaml", "-l",          "127.0.0.1:1", "-l",
                    "[::1]:2", "-w", "3",      "--log-level", "warn",        NULL};

    setenv("SLUICE_MAX_BODY_SIZE", "2k", 1);
    setenv("SLUICE_WORKERS", "7", 1);
    sl_settings_defaults(&s);
    assert_int_equal(sl_settings_from_args(&s, 11, argv), 0);
    assert_string_equal(s.declarative_config, "x.yaml");
    assert_int_equal(s.nlisten, 2);
    assert_string_equal(s.listen[1], "[::1]:2");
    assert_int_equal(s.workers, 3);          /* flag beats env */
    assert_int_equal(s.max_body_size, 2048); /* env applied */
    assert_int_equal(s.log_level, SL_LOG_WARN);
    sl_settings_free(&s);

    char *bad[] = {"sluice", "-w", "zero", NULL};
    sl_settings_defaults(&s);
    assert_int_equal(sl_settings_from_args(&s, 3, bad), -1);
    sl_settings_free(&s);

    setenv("SLUICE_MAX_BODY_SIZE", "lots", 1);
    char *none[] = {"sluice", NULL};
    sl_settings_defaults(&s);
    assert_int_equal(sl_settings_from_args(&s, 1, none), -1);
    sl_settings_free(&s);
    unsetenv("SLUICE_MAX_BODY_SIZE");
    unsetenv("SLUICE_WORKERS");
}

/* The settings file, in each spelling of the flag, below env and flags. */
static void
test_settings_file(void **state)
{
    char path[] = "/tmp/sl-settings-XXXXXX";
    int fd = mkstemp(path);
    const char good[] = "# comment\nmax_header_size = 2k\nworkers = 2\nlisten = 127.0.0.1:1, "
                        "127.0.0.1:2\nkeepalive_timeout = 5\n";
    char eq[64], glued[64];
    sl_settings_t s;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, good, sizeof(good) - 1), (ssize_t)(sizeof(good) - 1));
    close(fd);
    snprintf(eq, sizeof(eq), "--settings=%s", path);
    snprintf(glued, sizeof(glued), "-c%s", path);
    char *spellings[][4] = {{"sluice", "-c", path, NULL},
                            {"sluice", "--settings", path, NULL},
                            {"sluice", eq, NULL, NULL},
                            {"sluice", glued, NULL, NULL}};
    for (size_t i = 0; i < sl_nelems(spellings); i++) {
        int argc = spellings[i][2] ? 3 : 2;
        sl_settings_defaults(&s);
        assert_int_equal(sl_settings_from_args(&s, argc, spellings[i]), 0);
        assert_int_equal(s.max_header_size, 2048);
        assert_int_equal(s.workers, 2);
        assert_int_equal(s.nlisten, 2);
        assert_string_equal(s.listen[1], "127.0.0.1:2");
        assert_int_equal(s.keepalive_timeout_ms, 5);
        sl_settings_free(&s);
    }

    /* env beats the file, a flag beats both */
    setenv("SLUICE_WORKERS", "4", 1);
    char *over[] = {"sluice", eq, "--keepalive-timeout", "9", NULL};
    sl_settings_defaults(&s);
    assert_int_equal(sl_settings_from_args(&s, 4, over), 0);
    assert_int_equal(s.workers, 4);
    assert_int_equal(s.keepalive_timeout_ms, 9);
    sl_settings_free(&s);
    unsetenv("SLUICE_WORKERS");

    /* a bad file fails however it is named */
    fd = open(path, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "nonsense\n", 9), 9);
    close(fd);
    for (size_t i = 0; i < sl_nelems(spellings); i++) {
        int argc = spellings[i][2] ? 3 : 2;
        sl_settings_defaults(&s);
        assert_int_equal(sl_settings_from_args(&s, argc, spellings[i]), -1);
        sl_settings_free(&s);
    }
    unlink(path);
    char *missing[] = {"sluice", "--settings=/nonexistent/sluice.conf", NULL};
    sl_settings_defaults(&s);
    assert_int_equal(sl_settings_from_args(&s, 2, missing), -1);
    sl_settings_free(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_headers),
        cmocka_unit_test(test_headers_set_many),
        cmocka_unit_test(test_header_block),
        cmocka_unit_test(test_tchar),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_settings_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
