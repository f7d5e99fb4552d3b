/* test_aa.c - ai-proxy-advanced's pure parts: the config schema (errors named
 * by path), target groups and aliases, the balancer's algorithms, the
 * circuit breaker's state machine, and group selection (aliases, globs,
 * provider,model, Claude Code scenarios). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aa.h"
#include "schema_host.h"

typedef struct {
    char text[4096];
    int n;
} errs_t;

static void
collect(void *ud, const char *field, const char *msg)
{
    errs_t *e = ud;
    size_t off = strlen(e->text);

    snprintf(e->text + off, sizeof(e->text) - off, "%s: %s\n", field, msg);
    e->n++;
}

static int
parse(const char *json, sl_aa_conf_t **c, errs_t *e)
{
    memset(e, 0, sizeof(*e));
    return sl_aa_conf_parse(json, strlen(json), c, collect, e);
}

#define T(extra)                                                                                   \
    "{\"route_type\":\"llm/v1/chat\",\"auth\":{\"header_name\":\"Authorization\","                 \
    "\"header_value\":\"Bearer k\"},\"model\":{\"provider\":\"dashscope\"," extra "}}"

static sl_aa_conf_t *
must(const char *json)
{
    errs_t e;
    sl_aa_conf_t *c = NULL;
    int rc = parse(json, &c, &e);

    if (rc != 0) {
        fprintf(stderr, "%s", e.text);
    }
    assert_int_equal(rc, 0);
    return c;
}

static void
expect_error(const char *json, const char *needle)
{
    errs_t e;
    sl_aa_conf_t *c = NULL;

    assert_int_equal(parse(json, &c, &e), -1);
    assert_null(c);
    if (strstr(e.text, needle) == NULL) {
        fprintf(stderr, "expected \"%s\" in:\n%s", needle, e.text);
        fail();
    }
}

/* ---------------------------------------------------------------- config */

static void
test_conf_kong_example(void **state)
{
    (void)state;
    sl_aa_conf_t *c = must(
        "{\"llm_format\":\"anthropic\",\"balancer\":{\"algorithm\":\"round-robin\",\"retries\":3,"
        "\"failover_criteria\":[\"error\",\"timeout\",\"http_429\",\"http_503\",\"non_idempotent\"]"
        "},"
        "\"targets\":[" T("\"name\":\"qwen-max\",\"model_alias\":\"powerful\"") "," T(
            "\"name\":\"qwen-flash\",\"model_alias\":\"fast\"") "]}");

    assert_int_equal(c->nt, 2);
    assert_int_equal(c->llm_format, SL_AP_FMT_ANTHROPIC);
    assert_int_equal(c->bal.algorithm, SL_AA_ALG_ROUND_ROBIN);
    assert_int_equal(c->bal.retries, 3);
    assert_int_equal(c->bal.failover, SL_AA_FO_ERROR | SL_AA_FO_TIMEOUT | SL_AA_FO_HTTP_429 |
                                          SL_AA_FO_HTTP_503 | SL_AA_FO_NON_IDEMPOTENT);
    assert_int_equal(c->bal.connect_timeout, 60000);
    assert_int_equal(c->bal.slots, 10000);
    assert_int_equal(c->bal.max_fails, 0);
    assert_int_equal(c->bal.fail_timeout, 10000);
    assert_string_equal(c->bal.hash_on_header, "X-Kong-LLM-Request-ID");
    assert_string_equal(c->t[0].alias, "powerful");
    assert_int_equal(c->t[0].weight, 100);
    assert_string_equal(c->t[1].label, "dashscope/qwen-flash");
    assert_string_equal(c->t[1].ap->t.model_name, "qwen-flash");
    assert_null(c->t[1].ap->t.model_alias); /* ours, not ai-proxy's */
    assert_int_equal(c->t[1].ap->t.llm_format, SL_AP_FMT_ANTHROPIC);
    assert_string_equal(c->accepted, "powerful, fast, qwen-max, qwen-flash");
    assert_true(sl_aa_group_find(c, "fast", 4, 1u << SL_AA_GK_ALIAS) >= 0);
    assert_true(sl_aa_group_find(c, "DashScope,qwen-max", 18, 1u << SL_AA_GK_EXPLICIT) >= 0);
    sl_aa_conf_free(c);
}

static void
test_conf_errors(void **state)
{
    (void)state;
    expect_error("{\"targets\":[]}", "targets: length must be at least 1");
    expect_error("{}", "targets: required field missing");
    expect_error("{\"targets\":[" T("\"name\":\"a\"") "],\"balancer\":{\"algorithm\":\"fastest\"}}",
                 "balancer.algorithm: expected one of: \"round-robin\"");
    expect_error(
        "{\"targets\":[" T("\"name\":\"a\"") "],\"balancer\":{\"algorithm\":\"semantic\"}}",
        "balancer.algorithm: \"semantic\" is not supported yet by sluice");
    expect_error("{\"targets\":[" T(
                     "\"name\":\"a\"") "],\"balancer\":{\"failover_criteria\":[\"http_418\"]}}",
                 "balancer.failover_criteria[0]: expected one of");
    expect_error("{\"targets\":[" T("\"name\":\"a\"") "],\"balancer\":{\"slots\":5}}",
                 "balancer.slots: value should be between 10 and 65536");
    expect_error("{\"targets\":[" T("\"name\":\"a\"") "],\"balancer\":{\"retry\":1}}",
                 "balancer.retry: unknown field");
    expect_error("{\"targets\":[" T("\"name\":\"a\"") "," T("\"name\":\"b\",\"temprature\":1") "]}",
                 "targets[1].model.temprature: unknown field");
    expect_error("{\"targets\":[{\"model\":{\"provider\":\"dashscope\"},\"weight\":0}]}",
                 "targets[0].weight: value should be between 1 and 65535");
    expect_error("{\"targets\":[{\"model\":{\"provider\":\"dashscope\"}}]}",
                 "targets[0].route_type: required field missing");
    expect_error("{\"targets\":[{\"route_type\":\"llm/v1/chat\"}]}",
                 "targets[0].model: required field missing");
    expect_error("{\"targets\":[" T("\"name\":\"a\"") "],\"vectordb\":{\"strategy\":\"redis\"}}",
                 "vectordb: not supported yet by sluice");
    expect_error("{\"targets\":[" T("\"name\":\"a\"") "],\"scenarios\":{\"think\":\"nope\"}}",
                 "scenarios.think: no target has \"nope\"");
    /* a shared top-level field is reported once, under its own name */
    {
        errs_t e;
        sl_aa_conf_t *c = NULL;

        assert_int_equal(parse("{\"llm_format\":\"klingon\",\"targets\":[" T(
                                   "\"name\":\"a\"") "," T("\"name\":\"b\"") "]}",
                               &c, &e),
                         -1);
        assert_non_null(strstr(e.text, "llm_format:"));
        assert_null(strstr(strstr(e.text, "llm_format:") + 1, "llm_format:"));
    }
}

static void
test_conf_alias_conflict(void **state)
{
    (void)state;
    /* "qwen-plus" is an alias of target 0 and the name of target 1, which has
     * another alias: ambiguous */
    expect_error("{\"targets\":[" T("\"name\":\"qwen-max\",\"model_alias\":\"qwen-plus\"") "," T(
                     "\"name\":\"qwen-plus\",\"model_alias\":\"fast\"") "]}",
                 "targets[0].model.model_alias: alias conflict");
    /* the same alias on several targets is a balanced group, not a conflict */
    sl_aa_conf_t *c =
        must("{\"targets\":[" T("\"name\":\"qwen-max\",\"model_alias\":\"big\"") "," T(
            "\"name\":\"qwen-plus\",\"model_alias\":\"big\"") "]}");
    int g = sl_aa_group_find(c, "big", 3, 1u << SL_AA_GK_ALIAS);
    assert_true(g >= 0);
    assert_int_equal(c->g[g].n, 2);
    sl_aa_conf_free(c);
}

/* ------------------------------------------------------------- balancer */

/* three targets sharing the alias "m", with weights w0, w1, w2 */
static sl_aa_conf_t *
three(const char *alg, int w0, int w1, int w2)
{
    char json[2048];

#define TW(w, prov, name)                                                                          \
    "{\"route_type\":\"llm/v1/chat\",\"weight\":" #w ",\"model\":{\"provider\":\"" prov            \
    "\",\"name\":\"" name "\",\"model_alias\":\"m\"}}"
    snprintf(json, sizeof(json),
             "{\"balancer\":{\"algorithm\":\"%s\"},\"targets\":[" TW(% d, "dashscope", "a") "," TW(
                 % d, "openai", "b") "," TW(% d, "dashscope", "c") "]}",
             alg, w0, w1, w2);
#undef TW
    return must(json);
}

static const sl_aa_group_t *
group_m(const sl_aa_conf_t *c)
{
    int g = sl_aa_group_find(c, "m", 1, 1u << SL_AA_GK_ALIAS);

    assert_true(g >= 0);
    return &c->g[g];
}

static void
live(sl_aa_view_t *v, size_t n)
{
    memset(v, 0, n * sizeof(*v));
    for (size_t i = 0; i < n; i++) {
        v[i].up = 1;
    }
}

static void
test_round_robin_weights(void **state)
{
    (void)state;
    sl_aa_conf_t *c = three("round-robin", 70, 25, 5);
    const sl_aa_group_t *g = group_m(c);
    sl_aa_view_t v[3];
    int count[3] = {0}, run = 0, maxrun = 0, last = -1;

    live(v, 3);
    for (uint64_t s = 1; s <= 1000; s++) {
        int t = sl_aa_pick(c, g, v, s, 0, 0);

        assert_true(t >= 0 && t < 3);
        count[t]++;
        run = t == last ? run + 1 : 1;
        maxrun = run > maxrun ? run : maxrun;
        last = t;
    }
    /* within +-5 % of 1,000 (exact here: 10 whole cycles of W = 100) */
    assert_in_range(count[0], 650, 750);
    assert_in_range(count[1], 200, 300);
    assert_in_range(count[2], 0, 100);
    assert_int_equal(count[0] + count[1] + count[2], 1000);
    assert_true(maxrun <= 5); /* interleaved, not 70 in a row */
    /* target 0 out: 25/5 between the others */
    v[0].up = 0;
    memset(count, 0, sizeof(count));
    for (uint64_t s = 1; s <= 1200; s++) {
        count[sl_aa_pick(c, g, v, s, 0, 0)]++;
    }
    assert_int_equal(count[0], 0);
    assert_in_range(count[1], 950, 1050);
    /* tried targets are avoided while another is live */
    live(v, 3);
    v[0].tried = 1;
    v[1].tried = 1;
    for (uint64_t s = 1; s <= 50; s++) {
        assert_int_equal(sl_aa_pick(c, g, v, s, 0, 0), 2);
    }
    v[2].up = 0; /* every live one tried: a tried one again */
    assert_true(sl_aa_pick(c, g, v, 7, 0, 0) <= 1);
    v[0].up = v[1].up = 0;
    assert_int_equal(sl_aa_pick(c, g, v, 7, 0, 0), -1);
    sl_aa_conf_free(c);
}

static void
test_priority(void **state)
{
    (void)state;
    /* Kong's example: 70, 70, 25 -> {a, b} first, c as the fallback */
    sl_aa_conf_t *c = three("priority", 70, 70, 25);
    const sl_aa_group_t *g = group_m(c);
    sl_aa_view_t v[3];
    int count[3] = {0};

    live(v, 3);
    for (uint64_t s = 1; s <= 100; s++) {
        count[sl_aa_pick(c, g, v, s, 0, 0)]++;
    }
    assert_int_equal(count[2], 0);
    assert_int_equal(count[0], 50);
    assert_int_equal(count[1], 50);
    v[0].up = 0;
    for (uint64_t s = 1; s <= 20; s++) {
        assert_int_equal(sl_aa_pick(c, g, v, s, 0, 0), 1);
    }
    v[1].up = 0;
    assert_int_equal(sl_aa_pick(c, g, v, 3, 0, 0), 2);
    /* retry after the higher group was tried: the fallback, not the same */
    live(v, 3);
    v[0].tried = v[1].tried = 1;
    assert_int_equal(sl_aa_pick(c, g, v, 9, 0, 0), 2);
    sl_aa_conf_free(c);
}

static void
test_lowest_latency(void **state)
{
    (void)state;
    sl_aa_conf_t *c = three("lowest-latency", 1, 1, 1);
    const sl_aa_group_t *g = group_m(c);
    sl_aa_view_t v[3];
    int count[3] = {0};

    live(v, 3);
    v[0].latency = 900;
    v[1].latency = 100; /* fastest */
    v[2].latency = 400;
    for (uint32_t s = 1; s <= 10000; s++) {
        count[sl_aa_pick(c, g, v, s, 0, s * 2654435761u)]++;
    }
    /* most traffic to the fastest; the others keep a small probe share */
    assert_in_range(count[1], 9500, 9900);
    assert_true(count[0] > 20 && count[2] > 20);
    /* a target without a sample is tried first */
    v[2].latency = 0;
    assert_int_equal(sl_aa_pick(c, g, v, 1, 0, 999), 2);
    /* peak EWMA: a peak is taken at once, a lower sample decays in */
    assert_true(sl_aa_ewma(100, 0, 500, 1000, 10e6) == 500);
    double d = sl_aa_ewma(500, 0, 100, 10000000, 10e6);
    assert_true(d > 100 && d < 500);
    assert_true(sl_aa_ewma(500, 0, 100, 100000000, 10e6) < 101);
    sl_aa_conf_free(c);
}

static void
test_usage_and_connections(void **state)
{
    (void)state;
    sl_aa_conf_t *c = three("lowest-usage", 1, 1, 2);
    const sl_aa_group_t *g = group_m(c);
    sl_aa_view_t v[3];

    live(v, 3);
    v[0].usage = 1000;
    v[1].usage = 300;
    v[2].usage = 800; /* weight 2: 400 per unit of weight */
    assert_int_equal(sl_aa_pick(c, g, v, 1, 0, 0), 1);
    v[1].usage = 500;
    assert_int_equal(sl_aa_pick(c, g, v, 1, 0, 0), 2);
    sl_aa_conf_free(c);

    c = three("least-connections", 1, 1, 2);
    g = group_m(c);
    live(v, 3);
    v[0].inflight = 2;
    v[1].inflight = 1;
    v[2].inflight = 2; /* (2 + 1) / 2 = 1.5 < (1 + 1) / 1 */
    assert_int_equal(sl_aa_pick(c, g, v, 1, 0, 0), 2);
    v[2].inflight = 5;
    assert_int_equal(sl_aa_pick(c, g, v, 1, 0, 0), 1);
    /* ties rotate */
    memset(v, 0, sizeof(v));
    live(v, 3);
    c->t[2].weight = 1;
    int seen[3] = {0};
    for (uint64_t s = 0; s < 3; s++) {
        seen[sl_aa_pick(c, g, v, s, 0, 0)] = 1;
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    sl_aa_conf_free(c);
}

static void
test_consistent_hashing(void **state)
{
    (void)state;
    sl_aa_conf_t *c = three("consistent-hashing", 1, 1, 1);
    const sl_aa_group_t *g = group_m(c);
    sl_aa_view_t v[3];
    int count[3] = {0}, moved = 0;
    int first[200];

    live(v, 3);
    assert_true(g->ring_n >= 9990);
    for (int i = 0; i < 3000; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "session-%d", i);
        uint32_t h = sl_aa_hash(k, (size_t)n);
        int t = sl_aa_pick(c, g, v, (uint64_t)i, h, 0);

        /* the same key always lands on the same target */
        assert_int_equal(sl_aa_pick(c, g, v, (uint64_t)i + 77, h, 5), t);
        count[t]++;
        if (i < 200) {
            first[i] = t;
        }
    }
    for (int t = 0; t < 3; t++) {
        assert_in_range(count[t], 800, 1200);
    }
    /* one target out: only its keys move */
    v[1].up = 0;
    for (int i = 0; i < 200; i++) {
        char k[32];
        int n = snprintf(k, sizeof(k), "session-%d", i);
        int t = sl_aa_pick(c, g, v, 0, sl_aa_hash(k, (size_t)n), 0);

        assert_int_not_equal(t, 1);
        moved += t != first[i];
        if (first[i] != 1) {
            assert_int_equal(t, first[i]);
        }
    }
    assert_true(moved > 0);
    sl_aa_conf_free(c);
}

/* --------------------------------------------------------------- breaker */

static void
test_breaker(void **state)
{
    (void)state;
    sl_aa_cb_t s = {0, 0, 0};
    const int64_t mf = 3, ft = 1000;

    assert_int_equal(sl_aa_cb_state(&s, 0, 0, ft), SL_AA_CB_CLOSED); /* off */
    sl_aa_cb_failure(&s, 100);
    sl_aa_cb_failure(&s, 200);
    assert_int_equal(sl_aa_cb_state(&s, 250, mf, ft), SL_AA_CB_CLOSED);
    assert_true(sl_aa_cb_allow(&s, 250, mf, ft));
    /* a success within fail_timeout of the last failure does not reset
     * (Kong counts total failures) */
    sl_aa_cb_success(&s, 300, mf, ft);
    assert_int_equal(s.fails, 2);
    sl_aa_cb_failure(&s, 400);
    assert_int_equal(sl_aa_cb_state(&s, 500, mf, ft), SL_AA_CB_OPEN);
    assert_false(sl_aa_cb_allow(&s, 500, mf, ft));
    assert_false(sl_aa_cb_allow(&s, 1399, mf, ft));
    /* fail_timeout later: half-open, one probe */
    assert_int_equal(sl_aa_cb_state(&s, 1400, mf, ft), SL_AA_CB_HALF_OPEN);
    assert_true(sl_aa_cb_allow(&s, 1400, mf, ft));
    sl_aa_cb_probe(&s, 1400);
    assert_false(sl_aa_cb_allow(&s, 1401, mf, ft));
    /* the probe fails: open again for fail_timeout */
    sl_aa_cb_failure(&s, 1500);
    assert_int_equal(sl_aa_cb_state(&s, 1600, mf, ft), SL_AA_CB_OPEN);
    assert_false(sl_aa_cb_allow(&s, 2499, mf, ft));
    assert_true(sl_aa_cb_allow(&s, 2500, mf, ft));
    sl_aa_cb_probe(&s, 2500);
    /* a probe that never reports is forgotten after fail_timeout */
    assert_true(sl_aa_cb_allow(&s, 3500, mf, ft));
    /* the probe succeeds: closed */
    sl_aa_cb_success(&s, 3600, mf, ft);
    assert_int_equal(s.fails, 0);
    assert_int_equal(sl_aa_cb_state(&s, 3600, mf, ft), SL_AA_CB_CLOSED);
}

/* --------------------------------------------------------------- select */

static int
sel(const sl_aa_conf_t *c, const char *body, sl_aa_sel_t *out)
{
    sl_jdoc_t d = {0};
    int rc;

    assert_int_equal(sl_json_parse(&d, body, strlen(body)), 0);
    rc = sl_aa_select(c, &d, out);
    sl_json_free(&d);
    return rc;
}

static const char *
sel_key(const sl_aa_conf_t *c, const char *body)
{
    static sl_aa_sel_t s;

    if (sel(c, body, &s) != 0) {
        return s.errmsg;
    }
    return c->g[s.group].key ? c->g[s.group].key : "(all)";
}

static void
test_select(void **state)
{
    (void)state;
    sl_aa_conf_t *c = must("{\"llm_format\":\"anthropic\",\"targets\":[" T(
        "\"name\":\"qwen3-coder-plus\","
        "\"model_alias\":\"claude-sonnet-*"
        "\"") "," T("\"name\":\"qwen3-"
                    "max\",\"model_"
                    "alias\":\"claude-"
                    "opus-*\"") "," T("\"name\":\"qwen-flash\",\"model_alias\":\"claude-haiku-*"
                                      "\"") "," T("\"name\":"
                                                  "\"qwen-plus\","
                                                  "\"model_"
                                                  "alias\":"
                                                  "\"smart\"") "]"
                                                               "}");
    sl_aa_sel_t s;

    assert_string_equal(sel_key(c, "{\"model\":\"claude-sonnet-4-5-20250929\"}"),
                        "claude-sonnet-*");
    assert_string_equal(sel_key(c, "{\"model\":\"Claude-Haiku-4-5\"}"), "claude-haiku-*");
    assert_string_equal(sel_key(c, "{\"model\":\"claude-opus-4-1\"}"), "claude-opus-*");
    assert_string_equal(sel_key(c, "{\"model\":\"smart\"}"), "smart");
    assert_string_equal(sel_key(c, "{\"model\":\"qwen-plus\"}"), "qwen-plus"); /* by name */
    assert_string_equal(sel_key(c, "{\"model\":\"sm\\u0061rt\"}"), "smart");   /* unescaped */
    assert_string_equal(sel_key(c, "{\"model\":\"dashscope,qwen3-max\"}"), "dashscope,qwen3-max");
    assert_string_equal(sel_key(c, "{\"messages\":[]}"), "(all)");
    assert_int_equal(sel(c, "{\"model\":\"gpt-4o\"}", &s), -1);
    assert_int_equal(s.status, 400);
    assert_string_equal(s.errmsg, "cannot use own model - must be one of: smart, claude-sonnet-*, "
                                  "claude-opus-*, claude-haiku-*, qwen3-coder-plus, qwen3-max, "
                                  "qwen-flash, qwen-plus");
    assert_int_equal(sel(c, "{\"model\":\"openai,qwen3-max\"}", &s), -1);
    assert_non_null(strstr(s.errmsg, "no target serves \"openai,qwen3-max\""));
    sl_aa_conf_free(c);

    assert_true(sl_aa_glob("claude-*-4-*", "claude-sonnet-4-5", 17));
    assert_false(sl_aa_glob("claude-*-4-*", "claude-sonnet-3-5", 17));
    assert_true(sl_aa_glob("qwen?", "qwen3", 5));
    assert_false(sl_aa_glob("qwen?", "qwen", 4));
    assert_true(sl_aa_glob("*", "", 0));
}

/* the raw-body fast path agrees with the parsed one */
static void
test_select_body(void **state)
{
    (void)state;
    sl_aa_conf_t *c =
        must("{\"targets\":[" T("\"name\":\"qwen-plus\",\"model_alias\":\"claude-*\"") "," T(
            "\"name\":\"qwen-max\",\"model_alias\":\"big\"") "]}");
    static const char *const bodies[] = {
        "{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}",
        " {\n \"stream\" : true , \"messages\":[{\"content\":\"a \\\"model\\\": \\\\\"}],"
        "\"x\":{\"model\":\"big\"},\"model\" : \"big\"}",
        "{\"metadata\":{\"a\":[1,2,{\"b\":\"]}\"}]},\"model\":\"b\\u0069g\"}",
        "{\"mod\\u0065l\":\"big\"}",
        "{\"messages\":[]}",
        "{}",
        "{\"model\":\"gpt-4o\"}",
        "{\"model\":\"dashscope,qwen-max\"}",
        "{\"model\":42}",
        "{\"model\":\"big\"",
        "[1]",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        sl_aa_sel_t fast, full;
        sl_jdoc_t d = {0};
        int rf = sl_aa_select_body(c, bodies[i], strlen(bodies[i]), &fast);

        if (sl_json_parse(&d, bodies[i], strlen(bodies[i])) != 0) {
            /* malformed: whatever was selected, ai-proxy's translation
             * parses the whole body and answers its 400 */
            sl_json_free(&d);
            continue;
        }
        int rp = sl_aa_select(c, &d, &full);
        sl_json_free(&d);
        if (rf == 1) {
            continue; /* the caller parses: same answer by construction */
        }
        if (rf != rp || (rf == 0 && fast.group != full.group)) {
            fprintf(stderr, "body %zu: fast %d/%d, parsed %d/%d\n", i, rf, fast.group, rp,
                    full.group);
            fail();
        }
    }
    sl_aa_sel_t s;
    assert_int_equal(sl_aa_select_body(c, bodies[1], strlen(bodies[1]), &s), 0);
    assert_string_equal(c->g[s.group].key, "big");
    assert_int_equal(sl_aa_select_body(c, bodies[2], strlen(bodies[2]), &s), 0);
    assert_string_equal(s.model, "big");
    assert_int_equal(sl_aa_select_body(c, bodies[3], strlen(bodies[3]), &s), 1);
    sl_aa_conf_free(c);
}

static void
test_scenarios(void **state)
{
    (void)state;
    sl_aa_conf_t *c = must(
        "{\"llm_format\":\"anthropic\",\"scenarios\":{\"background\":\"bg\",\"think\":\"think\","
        "\"long_context\":\"long\",\"long_context_threshold\":3000,\"web_search\":\"web\","
        "\"image\":\"vision\"},\"targets\":[" T(
            "\"name\":\"qwen3-coder-plus\",\"model_alias\":\"*"
            "\"") "," T("\"name\":\"qwen-flash\",\"model_"
                        "alias\":\"bg\"") "," T("\"name\":"
                                                "\"qwen3-max\","
                                                "\"model_"
                                                "alias\":"
                                                "\"think\"") "," T("\"name\":\"qwen-plus\",\"model_"
                                                                   "alias\":\"long\"") "," T("\"nam"
                                                                                             "e\":"
                                                                                             "\"qwe"
                                                                                             "n-"
                                                                                             "max\""
                                                                                             ",\"mo"
                                                                                             "del_"
                                                                                             "alias"
                                                                                             "\":"
                                                                                             "\"web"
                                                                                             "\"") "," T("\"name\":\"qwen-vl-max\","
                                                                                                         "\"model_alias\":\"vision\"") "]"
                                                                                                                                       "}");
    char big[20000];
    sl_aa_sel_t s;

    assert_string_equal(sel_key(c, "{\"model\":\"claude-sonnet-4-5\",\"messages\":[]}"), "*");
    assert_string_equal(sel_key(c, "{\"model\":\"claude-haiku-4-5\",\"messages\":[]}"), "bg");
    assert_string_equal(
        sel_key(c, "{\"model\":\"claude-sonnet-4-5\",\"thinking\":{\"type\":\"enabled\","
                   "\"budget_tokens\":1024},\"messages\":[]}"),
        "think");
    assert_string_equal(sel_key(c, "{\"model\":\"x\",\"thinking\":{\"type\":\"disabled\"}}"), "*");
    assert_string_equal(
        sel_key(c, "{\"model\":\"x\",\"tools\":[{\"name\":\"a\"},{\"type\":\"web_search_20250305\","
                   "\"name\":\"web_search\"}],\"thinking\":{\"type\":\"enabled\"}}"),
        "web");
    assert_string_equal(
        sel_key(c, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                   "\"image\",\"source\":{}}]}]}"),
        "vision");
    /* an image in an earlier turn does not count */
    assert_string_equal(
        sel_key(c, "{\"model\":\"x\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                   "\"image\",\"source\":{}}]},{\"role\":\"assistant\",\"content\":\"ok\"},"
                   "{\"role\":\"user\",\"content\":\"and?\"}]}"),
        "*");
    /* long context beats background */
    snprintf(big, sizeof(big),
             "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\","
             "\"content\":\"");
    size_t off = strlen(big);
    memset(big + off, 'a', 14000);
    snprintf(big + off + 14000, sizeof(big) - off - 14000, "\"}]}");
    assert_string_equal(sel_key(c, big), "long");
    /* an explicit provider,model wins over every scenario */
    assert_int_equal(
        sel(c, "{\"model\":\"dashscope,qwen-max\",\"thinking\":{\"type\":\"enabled\"}}", &s), 0);
    assert_string_equal(c->g[s.group].key, "dashscope,qwen-max");
    assert_int_equal(s.scenario, -1);
    sl_aa_conf_free(c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conf_kong_example),
        cmocka_unit_test(test_conf_errors),
        cmocka_unit_test(test_conf_alias_conflict),
        cmocka_unit_test(test_round_robin_weights),
        cmocka_unit_test(test_priority),
        cmocka_unit_test(test_lowest_latency),
        cmocka_unit_test(test_usage_and_connections),
        cmocka_unit_test(test_consistent_hashing),
        cmocka_unit_test(test_breaker),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_body),
        cmocka_unit_test(test_scenarios),
    };

    sl_ap_conf_host(sl_ap_test_host()); /* the host's schema checker */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
