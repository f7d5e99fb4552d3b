/* test_fastpath.c - the request path's fast scanner and token estimate
 * against the code they replaced (ref_scan.c, kept verbatim).
 *
 * The translator (anthropic_request.c) reads nothing but the scanner's
 * tokens, so the same tokens (type, escape flag, start, length, subtree
 * end), the same error and offset and the same prompt estimate mean the
 * same translated request, byte for byte.  Checked on every captured
 * Claude Code request, every seed of the anthropic fuzz corpus, slices and
 * mutations of them, and generated strings that put quotes, escapes,
 * control characters and UTF-8 (valid and broken) at every offset of a
 * sixteen-byte block.  And end to end: today's translator over the
 * reference scanner (ref_request.c) and the production one give the same
 * answer on every one of those inputs - the same request (equal after
 * parsing with json-c, and byte for byte), or the same error. */

#include <dirent.h>
#include <stdint.h>

#include "ref_scan.h"
#include "test_util.h"

static sl_ap_conf_t *conf;

/* Both translators on one input: same result code, same error, same
 * request (json-c equality, and the bytes), same info. */
static void
same_translation(const char *src, size_t len, const char *what)
{
    sl_ap_buf_t a = {0}, b = {0};
    sl_jdoc_t da = {0}, db = {0};
    sl_ap_req_info_t ia, ib;
    int ra, rb;

    memset(&ia, 0, sizeof(ia));
    memset(&ib, 0, sizeof(ib));
    ra = sl_ap_anthropic_request(&conf->t, src, len, &da, &a, &ia);
    rb = sl_ref_anthropic_request(&conf->t, src, len, &db, &b, &ib);
    if (ra != rb || ia.status != ib.status || strcmp(ia.errmsg, ib.errmsg) != 0) {
        fprintf(stderr, "%s: fast %d %d %s, reference %d %d %s\n", what, ra, ia.status, ia.errmsg,
                rb, ib.status, ib.errmsg);
        fail();
    }
    if (ra == 0) {
        json_object *x = tu_parse(a.ptr, a.len), *y = tu_parse(b.ptr, b.len);

        assert_true(json_object_equal(x, y));
        json_object_put(x);
        json_object_put(y);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.ptr, b.ptr, a.len);
        assert_int_equal(ia.input_estimate, ib.input_estimate);
        assert_int_equal(ia.stream, ib.stream);
        assert_int_equal(ia.upstream_stream, ib.upstream_stream);
        assert_int_equal(ia.cache_marks, ib.cache_marks);
    }
    sl_ap_buf_free(&a);
    sl_ap_buf_free(&b);
    sl_json_free(&da);
    sl_json_free(&db);
}

static int64_t bytewise_tokens(const unsigned char *p, size_t n);

static void
same_docs(const char *src, size_t len, const char *what)
{
    sl_jdoc_t a = {0}, b = {0};
    int ra = sl_json_parse(&a, src, len), rb = sl_ref_json_parse(&b, src, len);
    uint32_t i;

    if (ra != rb || (ra == -1 && (a.err_off != b.err_off || strcmp(a.err, b.err) != 0))) {
        fprintf(stderr, "%s: fast %d (%s at %zu), reference %d (%s at %zu)\n", what, ra,
                a.err ? a.err : "-", a.err_off, rb, b.err ? b.err : "-", b.err_off);
        fail();
    }
    if (ra == 0) {
        assert_int_equal(a.n, b.n);
        for (i = 0; i < a.n; i++) {
            const sl_jtok_t *x = &a.t[i], *y = &b.t[i];
            size_t k;
            int hi = 0;

            if (x->type != y->type || x->esc != y->esc || x->start != y->start ||
                x->len != y->len || x->next != y->next) {
                fprintf(stderr, "%s: token %u differs\n", what, i);
                fail();
            }
            for (k = 0; x->type == SL_J_STR && k < x->len; k++) {
                hi |= (unsigned char)src[x->start + k] >= 0x80;
            }
            assert_int_equal(x->hi != 0, hi);
            if (x->type == SL_J_STR) {
                /* what the scanner recorded gives the string's estimate */
                assert_int_equal(sl_ap_str_tokens(&a, (int)i),
                                 bytewise_tokens((const unsigned char *)src + x->start, x->len));
            }
        }
        if (a.t[0].type == SL_J_OBJ) {
            assert_int_equal(sl_ap_estimate_tokens(&a), sl_ref_estimate_tokens(&b));
        }
    }
    sl_json_free(&a);
    sl_json_free(&b);
    same_translation(src, len, what);
}

static int64_t
bytewise_tokens(const unsigned char *p, size_t n)
{
    size_t i, ascii = 0;
    int64_t other = 0;

    for (i = 0; i < n; i++) {
        ascii += p[i] < 0x80;
        other += p[i] >= 0xC0;
    }
    return (int64_t)((ascii + 3) / 4) + other;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint32_t
next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static char *
read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p = NULL;
    long n;

    if (f == NULL) {
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
        p = malloc((size_t)n + 1);
        if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
            free(p);
            p = NULL;
        }
        *len = (size_t)n;
    }
    fclose(f);
    return p;
}

/* Slices and mutations of one real input. */
static void
same_on_variants(const char *src, size_t len, const char *name)
{
    static const char pokes[] = {'"',        '\\',       '\n',       0x01,       (char)0xC3,
                                 (char)0xA9, (char)0xE2, (char)0x80, (char)0xFF, 'u',
                                 '0',        '}',        ']',        ','};
    char *m = malloc(len + 1);
    size_t step = len / 97 + 1, off;
    int k;

    assert_non_null(m);
    same_docs(src, len, name);
    for (off = 0; off < len; off += step) {
        same_docs(src, off, name); /* truncated */
    }
    for (k = 0; k < 300; k++) {
        memcpy(m, src, len);
        off = next_rand() % len;
        m[off] = pokes[next_rand() % sizeof(pokes)];
        same_docs(m, len, name);
    }
    free(m);
}

static int
each_file(const char *dir, const char *suffix, int (*fn)(const char *path))
{
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    int n = 0;

    if (d == NULL) {
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name), sl = strlen(suffix);
        char path[1024];

        if (e->d_name[0] == '.' || l < sl || strcmp(e->d_name + l - sl, suffix) != 0) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        n += fn(path);
    }
    closedir(d);
    return n;
}

static int
variants_of(const char *path)
{
    size_t len = 0;
    char *src = read_all(path, &len);

    assert_non_null(src);
    same_on_variants(src, len, path);
    free(src);
    return 1;
}

static void
test_fixtures_and_corpus(void **state)
{
    (void)state;
    assert_true(each_file(getenv("SL_CLAUDE_FIXTURES"), ".body.json", variants_of) >= 10);
    assert_true(each_file(getenv("SL_FUZZ_CORPUS"), "", variants_of) >= 1);
}

/* Literals whole, cut short, misspelt in each byte: same tokens, errors and
 * offsets as the reference. */
static void
test_literals(void **state)
{
    static const char *const docs[] = {
        "[true,false,null]",
        "{\"a\":true,\"b\":false,\"c\":null}",
        "true",
        "false",
        "null",
        "[truE]",
        "[tRue]",
        "[fAlse]",
        "[falsE]",
        "[nulL]",
        "[nUll]",
        "[truex]",
        "[falsex]",
        "[nullx]",
        "[t]",
        "[f]",
        "[n]",
        "[fals]",
        "[alse]",
        "{\"a\":nul}",
    };
    size_t i, k;

    (void)state;
    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        size_t n = strlen(docs[i]);

        for (k = 0; k <= n; k++) {
            same_docs(docs[i], k, docs[i]); /* every prefix */
        }
    }
}

/* Generated strings: every kind of byte the scanner stops at, at every
 * offset of a block, in strings long enough for the wide paths. */
static void
test_generated_strings(void **state)
{
    static const char *const atoms[] = {
        "a",
        "plain text ",
        "\\\"",
        "\\\\",
        "\\n",
        "\\u00e9",
        "\\u12",
        "\\x",
        "\"",
        "\x01",
        "\x7f",
        "\xc3\xa9",
        "\xe2\x80\x94",
        "\xf0\x9f\x98\x80",
        "\xc3",
        "\xe0\x80\x80",
        "\xed\xa0\x80",
        "\xf5\x80\x80\x80",
        "\x80",
        "\xff",
        "\\",
    };
    char buf[600], doc[700];
    int iter;

    (void)state;
    for (iter = 0; iter < 20000; iter++) {
        size_t n = 0, target = next_rand() % (iter % 10 == 0 ? 560 : 48), dl;

        while (n < target) {
            const char *a = atoms[next_rand() % (sizeof(atoms) / sizeof(atoms[0]))];
            size_t al = strlen(a);

            if (next_rand() % 3 == 0) {
                a = atoms[1];
                al = strlen(a);
            }
            if (n + al > sizeof(buf)) {
                break;
            }
            memcpy(buf + n, a, al);
            n += al;
        }
        dl = (size_t)snprintf(doc, sizeof(doc), "{\"system\":\"%.*s\",\"k\":[\"%.*s\"]}", (int)n,
                              buf, (int)(n / 2), buf);
        same_docs(doc, dl, "generated");
        assert_int_equal(sl_ap_text_tokens(buf, n), bytewise_tokens((unsigned char *)buf, n));
    }
}

/* The wide token count against the byte-wise one, on random bytes of every
 * length up to past the counters' flush (255 blocks of 16). */
static void
test_text_tokens(void **state)
{
    static unsigned char buf[9000];
    size_t n, i;

    (void)state;
    for (i = 0; i < sizeof(buf); i++) {
        buf[i] = (unsigned char)next_rand();
    }
    for (n = 0; n < 300; n++) {
        assert_int_equal(sl_ap_text_tokens((char *)buf + n % 7, n),
                         bytewise_tokens(buf + n % 7, n));
    }
    for (n = 4000; n < sizeof(buf); n += 97) {
        assert_int_equal(sl_ap_text_tokens((char *)buf, n), bytewise_tokens(buf, n));
    }
    memset(buf, 0xE4, sizeof(buf)); /* all lead bytes: counters at their limit */
    assert_int_equal(sl_ap_text_tokens((char *)buf, sizeof(buf)),
                     bytewise_tokens(buf, sizeof(buf)));
}

/* Long strings of multi-byte characters: the estimate's difference the
 * scanner keeps (SL_JSON_HI) up to its limit and past it (then counted). */
static void
test_long_strings(void **state)
{
    static const char *const chars[] = {"\xc3\xa9", "\xe2\x80\x94", "\xf0\x9f\x98\x80"};
    /* two-byte characters add half a token each: the limit is ~131,000 */
    static const size_t counts[] = {1, 2, 3, 5, 131063, 131064, 131065, 131066, 131067, 140000};
    size_t c, k, j;

    (void)state;
    for (c = 0; c < sizeof(chars) / sizeof(chars[0]); c++) {
        for (k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
            size_t cl = strlen(chars[c]), n = counts[k], len = 0;
            char *doc = malloc(n * cl + 64);

            assert_non_null(doc);
            len += (size_t)sprintf(doc, "{\"system\":\"ab");
            for (j = 0; j < n; j++, len += cl) {
                memcpy(doc + len, chars[c], cl);
            }
            len += (size_t)sprintf(doc + len, "x\",\"messages\":[]}");
            same_docs(doc, len, "long string");
            free(doc);
        }
    }
}

/* Blocks the estimate treats apart (images, redacted thinking, signatures,
 * cache_control), with "type" anywhere among the members, twice, escaped,
 * or not a string: same estimate as the reference. */
static void
test_block_kinds(void **state)
{
    static const char *const docs[] = {
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":"
        "{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
        "{\"type\":\"text\",\"text\":\"what is it?\"}]}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"source\":{\"data\":\"AAAA\"},"
        "\"type\":\"image\"}]}]}",
        "{\"messages\":[{\"role\":\"assistant\",\"content\":[{\"type\":\"redacted_thinking\","
        "\"data\":\"xyzzy\"},{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"s1g\"}]}]}",
        "{\"messages\":[{\"content\":[{\"data\":\"q\",\"type\":\"redacted_thinking\"}]}]}",
        "{\"messages\":[{\"content\":[{\"type\":\"text\",\"type\":\"image\",\"text\":\"a\"}]}]}",
        "{\"messages\":[{\"content\":[{\"type\":1,\"type\":\"image\",\"text\":\"a\"}]}]}",
        "{\"messages\":[{\"content\":[{\"t\\u0079pe\":\"image\",\"text\":\"abc\"}]}]}",
        "{\"messages\":[{\"content\":[{\"type\":\"im\\u0061ge\",\"text\":\"abc\"}]}]}",
        "{\"messages\":[{\"content\":[{\"typ\":\"image\",\"types\":\"image\"}]}]}",
        "{\"system\":[{\"type\":\"text\",\"text\":\"be brief\",\"cache_control\":"
        "{\"type\":\"ephemeral\"}}],\"tools\":[{\"name\":\"Read\",\"input_schema\":"
        "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}}],"
        "\"messages\":[{\"role\":\"user\",\"content\":\"hi \xe2\x80\x94 there\"}]}",
        "{\"messages\":[{\"content\":[{\"type\":\"image\"},{\"type\":{\"type\":\"image\"}}]}]}",
        /* keys of a skipped name's length that share its first four bytes,
         * or its last ones, and are not it; an escaped skipped name */
        "{\"messages\":[{\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\","
        "\"signaturz\":\"counted\",\"xignature\":\"counted\",\"sign\":\"c\","
        "\"cache_controx\":{\"a\":\"counted\"},\"xache_control\":\"counted\","
        "\"tyqe\":\"image\",\"\\u0073ignature\":\"skipped\"}]}]}",
    };
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(docs) / sizeof(docs[0]); k++) {
        same_docs(docs[k], strlen(docs[k]), "block kinds");
    }
}

/* Nesting around the estimate's depth limit (64): a string member at
 * every depth from 58 to 70, in objects and arrays, and keys as long as
 * the skipped ones but not them: same estimate as the reference. */
static void
test_deep_nesting(void **state)
{
    static const char *const keys[] = {"\"a\"", "\"signaturx\"", "\"cache_controm\"",
                                       "\"signature\"", "\"typ\\u0065\""};
    char doc[4096];
    size_t k;
    int depth, j, arr;

    (void)state;
    for (arr = 0; arr < 2; arr++) {
        for (k = 0; k < sizeof(keys) / sizeof(keys[0]); k++) {
            for (depth = 58; depth <= 70; depth++) {
                size_t n = 0;

                n += (size_t)snprintf(doc + n, sizeof(doc) - n,
                                      "{\"messages\":[{\"role\":\"user\",\"content\":");
                for (j = 0; j < depth; j++) {
                    n += (size_t)snprintf(doc + n, sizeof(doc) - n, arr ? "[" : "{%s:", keys[k]);
                }
                n += (size_t)snprintf(doc + n, sizeof(doc) - n, "\"some text \xe2\x80\x94 here\"");
                for (j = 0; j < depth; j++) {
                    n += (size_t)snprintf(doc + n, sizeof(doc) - n, arr ? ",7]" : ",\"b\":\"xy\"}");
                }
                n += (size_t)snprintf(doc + n, sizeof(doc) - n, "}]}");
                assert_true(n < sizeof(doc));
                same_docs(doc, n, "deep nesting");
            }
        }
    }
}

int
main(void)
{
    static const char cj[] = "{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
                             "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\","
                             "\"options\":{\"max_tokens\":8192,\"temperature\":1.0}}}";
    int rc;

    sl_ap_conf_host(sl_ap_test_host()); /* the host's schema checker */
    if (sl_ap_conf_parse(cj, sizeof(cj) - 1, &conf, NULL, NULL) != 0) {
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_and_corpus),
        cmocka_unit_test(test_generated_strings),
        cmocka_unit_test(test_text_tokens),
        cmocka_unit_test(test_long_strings),
        cmocka_unit_test(test_block_kinds),
        cmocka_unit_test(test_deep_nesting),
        cmocka_unit_test(test_literals),
    };

    /* the string scan's SSE2 path, then the AVX2 one where the CPU has it */
    sl_json_wide(0);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (sl_json_wide(1)) {
        rc |= cmocka_run_group_tests(tests, NULL, NULL);
    }
    sl_ap_conf_free(conf);
    return rc;
}
