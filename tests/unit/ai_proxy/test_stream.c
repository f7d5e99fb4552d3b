/* test_stream.c - OpenAI/DashScope SSE chunks -> Anthropic stream events.
 *
 * Every fixture is fed whole, split in two at every byte offset, and one
 * byte at a time; the output must be byte-identical in all cases, and it
 * must follow Anthropic's event grammar exactly (checked by a small
 * independent parser, grammar.h). */

#include "grammar.h" /* the independent Anthropic grammar checker */
#include "test_util.h"

#define CH(delta_and_finish)                                                                       \
    "data: {\"choices\":[{" delta_and_finish                                                       \
    ",\"index\":0,\"logprobs\":null}],\"object\":\"chat.completion.chunk\","                       \
    "\"usage\":null,\"created\":1735320910,\"system_fingerprint\":null,\"model\":\"qwen-plus\","   \
    "\"id\":\"chatcmpl-0bdc-9f90\"}\n\n"
#define USAGE(p, c, cached)                                                                        \
    "data: {\"choices\":[],\"object\":\"chat.completion.chunk\",\"usage\":{\"prompt_tokens\":" #p  \
    ",\"completion_tokens\":" #c                                                                   \
    ",\"total_tokens\":99,\"prompt_tokens_details\":{\"cached_tokens\":" #cached                   \
    "}},\"created\":1,\"system_fingerprint\":null,"                                                \
    "\"model\":\"qwen-plus\",\"id\":\"chatcmpl-0bdc-9f90\"}\n\n"
#define DONE "data: [DONE]\n\n"

static const char fx_text[] =
    CH("\"delta\":{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":null")
        CH("\"finish_reason\":null,\"delta\":{\"content\":\"Hel\"}")
            CH("\"finish_reason\":null,\"delta\":{\"content\":\"lo \\\"w\\\"\\n\\u00e9\"}")
                CH("\"finish_reason\":\"stop\",\"delta\":{\"content\":\"\"}") USAGE(22, 17, 4) DONE;

static const char fx_thinking[] = CH("\"delta\":{\"content\":\"\",\"reasoning_content\":\"\","
                                     "\"role\":\"assistant\"},\"finish_reason\":null")
    CH("\"delta\":{\"content\":null,\"reasoning_content\":\"Let me \"},\"finish_reason\":null") CH(
        "\"delta\":{\"content\":null,\"reasoning_content\":\"think.\"},\"finish_reason\":null")
        CH("\"delta\":{\"content\":\"Answer\",\"reasoning_content\":null},\"finish_reason\":null")
            CH("\"delta\":{\"content\":\": 42\",\"reasoning_content\":null},\"finish_reason\":null")
                CH("\"delta\":{\"content\":\"\",\"reasoning_content\":null},\"finish_reason\":"
                   "\"stop\"") USAGE(10, 30, 0) DONE;

static const char fx_tools[] = CH(
    "\"delta\":{\"content\":\"Let me "
    "check.\",\"role\":\"assistant\"},\"finish_reason\":null") CH("\"delta\":{\"tool_calls\":[{"
                                                                  "\"index\":0,\"id\":\"call_a\","
                                                                  "\"type\":\"function\","
                                                                  "\"function\":{"
                                                                  "\"name\":\"get_weather\","
                                                                  "\"arguments\":\"{\\\"city\\\":"
                                                                  "\"}}]},\"finish_reason\":null")
    CH("\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"\",\"type\":\"function\",\"function\":{"
       "\"arguments\":\" \\\"Par\"}}]},\"finish_reason\":null")
        CH("\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"\",\"type\":\"function\",\"function\":"
           "{\"arguments\":\"is\\\"}\"}}]},\"finish_reason\":null")
            CH("\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\","
               "\"function\":{\"name\":\"get_time\",\"arguments\":\"\"}}]},\"finish_reason\":null")
                CH("\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"\",\"type\":\"function\","
                   "\"function\":{}}]},\"finish_reason\":null")
                    CH("\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"\",\"type\":\"function\","
                       "\"function\":{\"arguments\":\"{\\\"tz\\\":\\\"CET\\\"}\"}}]},\"finish_"
                       "reason\":null") CH("\"delta\":{},\"finish_reason\":\"tool_calls\"")
                        USAGE(100, 40, 0) DONE;

/* finish_reason on the last text chunk, no usage, no [DONE] */
static const char fx_finish_on_text[] =
    CH("\"delta\":{\"content\":\"Hi\",\"role\":\"assistant\"},\"finish_reason\":null")
        CH("\"delta\":{\"content\":\" there, friend\"},\"finish_reason\":\"length\"");

static const char fx_error[] =
    CH("\"delta\":{\"content\":\"Some\",\"role\":\"assistant\"},\"finish_reason\":"
       "null") "data: {\"error\":{\"message\":\"Output data may contain inappropriate "
               "content.\",\"type\":\"data_inspection_failed\","
               "\"param\":null,\"code\":\"data_inspection_failed\"}}\n\n" CH(
                   "\"delta\":{\"content\":\"ignored\"},\"finish_reason\":null");

static const char fx_crlf[] = "data: "
                              "{\"choices\":[{\"delta\":{\"content\":\"A\"},\"finish_reason\":null,"
                              "\"index\":0}],\"id\":\"chatcmpl-x\"}\r\n\r\n"
                              ": keep-alive comment\r\n\r\n"
                              "data: "
                              "{\"choices\":[{\"delta\":{\"content\":\"B\"},\"finish_reason\":"
                              "\"stop\",\"index\":0}],\"id\":\"chatcmpl-x\"}\r\n\r\n"
                              "data: [DONE]\r\n\r\n";

/* ---- feeding ---- */

static void
feed_split(const char *in, size_t n, const size_t *cuts, size_t ncuts, int truncated,
           sl_ap_buf_t *all, sl_ap_usage_t *u)
{
    sl_ap_stream_t s;
    sl_ap_buf_t out = {0};
    size_t i, prev = 0;

    sl_ap_stream_init(&s, (sl_str_t)SL_STR("qwen-plus"), 7);
    for (i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;

        out.len = 0;
        assert_int_equal(sl_ap_stream_feed(&s, in + prev, end - prev, i == ncuts, truncated, &out),
                         0);
        sl_ap_buf_add(all, out.ptr, out.len);
        prev = end;
    }
    if (u) {
        *u = s.usage;
    }
    sl_ap_buf_free(&out);
    sl_ap_stream_free(&s);
}

/* Whole output, after checking that every split gives the same bytes. */
static void
feed_all_ways(const char *in, size_t n, int truncated, sl_ap_buf_t *whole, sl_ap_usage_t *u)
{
    size_t k, cuts[4096];
    sl_ap_buf_t other = {0};

    feed_split(in, n, NULL, 0, truncated, whole, u);
    for (k = 0; k <= n; k++) {
        other.len = 0;
        feed_split(in, n, &k, 1, truncated, &other, NULL);
        if (other.len != whole->len || memcmp(other.ptr, whole->ptr, whole->len) != 0) {
            fprintf(stderr, "split at %zu differs:\n%.*s\n---\n%.*s\n", k, (int)other.len,
                    other.ptr, (int)whole->len, whole->ptr);
            fail();
        }
    }
    assert_true(n < sizeof(cuts) / sizeof(cuts[0]));
    for (k = 0; k < n; k++) {
        cuts[k] = k;
    }
    other.len = 0;
    feed_split(in, n, cuts, n, truncated, &other, NULL);
    assert_int_equal(other.len, whole->len);
    assert_memory_equal(other.ptr, whole->ptr, whole->len);
    sl_ap_buf_free(&other);
}

/* ---- tests ---- */

/* A chunk's members are read in one walk (anthropic_stream.c
 * sl_ap_members) with sl_json_get_t's rules: a key written with escapes
 * means the same key, the first occurrence of a repeated key counts, and a
 * first occurrence of the wrong type hides a later one. */
static const char fx_keys_escaped[] =
    "data: {\"ch\\u006fices\":[{\"d\\u0065lta\":{\"con\\u0074ent\":\"Hi\"},"
    "\"finish_reason\":null,\"index\":0}],\"\\u0069d\":\"chatcmpl-esc\"}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"!\"},\"finish_\\u0072eason\":\"stop\","
    "\"index\":0}],\"id\":\"chatcmpl-esc\"}\n\n" DONE;
static const char fx_keys_repeated[] =
    "data: {\"choices\":[{\"delta\":{\"content\":\"A\",\"content\":\"B\"},"
    "\"finish_reason\":null,\"index\":0}],\"id\":\"chatcmpl-1\",\"id\":\"chatcmpl-2\"}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":1,\"content\":\"C\"},"
    "\"finish_reason\":\"stop\",\"index\":0}]}\n\n" DONE;

static void
test_member_rules(void **state)
{
    sl_ap_buf_t out = {0};
    grammar_t g;

    (void)state;
    feed_all_ways(fx_keys_escaped, sizeof(fx_keys_escaped) - 1, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, "start ping [text + + ] delta:end_turn:7/2 stop");
    assert_string_equal(g.content[0], "Hi!");
    assert_jstr(g.start, "message.id", "msg_esc");
    grammar_free(&g);

    out.len = 0;
    feed_all_ways(fx_keys_repeated, sizeof(fx_keys_repeated) - 1, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.content[0], "A");
    assert_jstr(g.start, "message.id", "msg_1");
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_text(void **state)
{
    sl_ap_buf_t out = {0};
    sl_ap_usage_t u;
    grammar_t g;

    (void)state;
    feed_all_ways(fx_text, sizeof(fx_text) - 1, 0, &out, &u);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, "start ping [text + + ] delta:end_turn:18/17 stop");
    assert_string_equal(g.content[0], "Hello \"w\"\n\xc3\xa9");
    assert_jstr(g.start, "message.id", "msg_0bdc-9f90");
    assert_jstr(g.start, "message.model", "qwen-plus");
    assert_jstr(g.start, "message.role", "assistant");
    assert_int_equal(tu_int(g.start, "message.usage.input_tokens"), 7); /* the estimate */
    assert_int_equal(tu_int(g.start, "message.usage.output_tokens"), 1);
    assert_int_equal(tu_int(g.last_delta, "usage.cache_read_input_tokens"), 4);
    assert_true(u.have);
    assert_int_equal(u.prompt, 22);
    assert_int_equal(u.completion, 17);
    assert_int_equal(u.cached, 4);
    assert_string_equal(u.response_model, "qwen-plus");
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_thinking(void **state)
{
    sl_ap_buf_t out = {0};
    grammar_t g;

    (void)state;
    feed_all_ways(fx_thinking, sizeof(fx_thinking) - 1, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary,
                        "start ping [thinking + + sig ] [text + + ] delta:end_turn:10/30 stop");
    assert_string_equal(g.content[0], "Let me think.");
    assert_string_equal(g.content[1], "Answer: 42");
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_parallel_tools(void **state)
{
    sl_ap_buf_t out = {0};
    grammar_t g;
    json_object *a;

    (void)state;
    feed_all_ways(fx_tools, sizeof(fx_tools) - 1, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(
        g.summary,
        "start ping [text + ] [tool_use + + + ] [tool_use + ] delta:tool_use:100/40 stop");
    assert_string_equal(g.id[1], "call_a");
    assert_string_equal(g.name[1], "get_weather");
    assert_string_equal(g.id[2], "call_b");
    assert_string_equal(g.name[2], "get_time");
    a = tu_parse(g.content[1], strlen(g.content[1]));
    assert_jstr(a, "city", "Paris");
    json_object_put(a);
    a = tu_parse(g.content[2], strlen(g.content[2]));
    assert_jstr(a, "tz", "CET");
    json_object_put(a);
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_finish_on_text_no_usage_no_done(void **state)
{
    sl_ap_buf_t out = {0};
    sl_ap_usage_t u;
    grammar_t g;

    (void)state;
    feed_all_ways(fx_finish_on_text, sizeof(fx_finish_on_text) - 1, 0, &out, &u);
    check_grammar(out.ptr, out.len, &g);
    /* output tokens estimated per delta: "Hi" 1 + " there, friend" 4 */
    assert_string_equal(g.summary, "start ping [text + + ] delta:max_tokens:7/5 stop");
    assert_string_equal(g.content[0], "Hi there, friend");
    assert_false(u.have);
    assert_int_equal(u.out_chars_tokens, 5);
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_in_stream_error(void **state)
{
    sl_ap_buf_t out = {0};
    grammar_t g;

    (void)state;
    feed_all_ways(fx_error, sizeof(fx_error) - 1, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, "start ping [text + error:invalid_request_error");
    assert_non_null(strstr(out.ptr, "Output data may contain inappropriate content."));
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_truncated(void **state)
{
    sl_ap_buf_t out = {0};
    grammar_t g;
    /* the first two chunks of the text fixture, then a reset */
    const char *cut = strstr(fx_text, "lo \\\"w");
    size_t n;

    (void)state;
    cut = strstr(cut, "\n\n") + 2;
    n = (size_t)(cut - fx_text);
    feed_all_ways(fx_text, n, 1, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, "start ping [text + + ] error:api_error");
    grammar_free(&g);
    sl_ap_buf_free(&out);

    /* a clean close without a finish_reason is incomplete too */
    out.len = 0;
    memset(&out, 0, sizeof(out));
    feed_all_ways("", 0, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, " error:api_error");
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_crlf_and_comments(void **state)
{
    sl_ap_buf_t out = {0};
    grammar_t g;

    (void)state;
    feed_all_ways(fx_crlf, sizeof(fx_crlf) - 1, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, "start ping [text + + ] delta:end_turn:7/2 stop");
    assert_string_equal(g.content[0], "AB");
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_keepalive_before_first_chunk(void **state)
{
    sl_ap_stream_t s;
    sl_ap_buf_t out = {0}, all = {0};
    grammar_t g;

    (void)state;
    sl_ap_stream_init(&s, (sl_str_t)SL_STR("qwen-plus"), 3);
    sl_ap_stream_keepalive(&s, &all); /* slow first token */
    sl_ap_stream_keepalive(&s, &all);
    assert_int_equal(sl_ap_stream_feed(&s, fx_text, sizeof(fx_text) - 1, 1, 0, &out), 0);
    sl_ap_buf_add(&all, out.ptr, out.len);
    check_grammar(all.ptr, all.len, &g);
    assert_string_equal(g.summary, "start ping ping [text + + ] delta:end_turn:18/17 stop");
    grammar_free(&g);
    sl_ap_stream_free(&s);
    sl_ap_buf_free(&out);
    sl_ap_buf_free(&all);
}

static int
sse_collect(void *ud, const char *data, size_t len)
{
    sl_ap_buf_t *b = ud;

    sl_ap_buf_add(b, data, len);
    sl_ap_buf_addc(b, '|');
    return 0;
}

static void
test_sse_parser(void **state)
{
    static const char in[] =
        "data: a\ndata:b\n\nevent: x\nid: 1\n\r\ndata: c\r\n\r\n: c\n\ndata: tail";
    size_t k;

    (void)state;
    for (k = 0; k <= sizeof(in) - 1; k++) {
        sl_sse_t s = {0};
        sl_ap_buf_t b = {0};

        assert_int_equal(sl_sse_feed(&s, in, k, 0, sse_collect, &b), 0);
        assert_int_equal(sl_sse_feed(&s, in + k, sizeof(in) - 1 - k, 1, sse_collect, &b), 0);
        assert_non_null(b.ptr);
        assert_string_equal(b.ptr, "a\nb|c|tail|");
        sl_sse_free(&s);
        sl_ap_buf_free(&b);
    }
}

/* A held stream keeps no parser buffer between events: a whole event is
 * read in place; one cut after its data line is copied (the caller's bytes
 * go away) and still dispatched whole, and the copy is released with it. */
static void
test_sse_buffers_released(void **state)
{
    sl_sse_t s = {0};
    sl_ap_buf_t b = {0};
    char piece[32];

    (void)state;
    assert_int_equal(sl_sse_feed(&s, "data: one\n\n", 11, 0, sse_collect, &b), 0);
    assert_int_equal(s.data.cap, 0);
    assert_int_equal(s.line.cap, 0);
    memcpy(piece, "data: two\n", 10);
    assert_int_equal(sl_sse_feed(&s, piece, 10, 0, sse_collect, &b), 0);
    memset(piece, 'X', sizeof(piece)); /* the caller reuses its buffer */
    assert_true(s.data.cap > 0);
    assert_int_equal(sl_sse_feed(&s, "data: 2b\n\ndata: thr", 19, 0, sse_collect, &b), 0);
    assert_int_equal(s.data.cap, 0);
    assert_true(s.line.cap > 0); /* "data: thr" waits for its end */
    assert_int_equal(sl_sse_feed(&s, "ee\n\n", 4, 0, sse_collect, &b), 0);
    assert_int_equal(s.line.cap, 0);
    assert_int_equal(s.data.cap, 0);
    assert_non_null(b.ptr);
    assert_string_equal(b.ptr, "one|two\n2b|three|");
    sl_sse_free(&s);
    sl_ap_buf_free(&b);
}

/* A web_search answer: server_tool_use and web_search_tool_result blocks,
 * whole, at index 0 and 1, then the text at 2. */
static void
test_web_search_stream(void **state)
{
    sl_ap_stream_t s;
    sl_ap_buf_t out = {0};
    char *p;
    int n = 0;

    (void)state;
    sl_ap_stream_init(&s, (sl_str_t)SL_STR("qwen-plus"), 7);
    s.search_query = "who";
    assert_int_equal(sl_ap_stream_feed(&s, fx_text, sizeof(fx_text) - 1, 1, 0, &out), 0);
    sl_ap_buf_addc(&out, '\0');
    assert_non_null(
        strstr(out.ptr, "\"index\":0,\"content_block\":{\"type\":\"server_tool_use\","));
    assert_non_null(strstr(out.ptr, "\"index\":1,\"content_block\":{\"type\":\"web_search_tool_"
                                    "result\""));
    assert_non_null(strstr(out.ptr, "\"index\":2,\"content_block\":{\"type\":\"text\""));
    for (p = strstr(out.ptr, "data: "); p; p = strstr(p + 1, "data: ")) {
        char *e = strchr(p, '\n');
        json_object_put(tu_parse(p + 6, (size_t)(e - p - 6)));
        n++;
    }
    assert_true(n > 6);
    sl_ap_stream_free(&s);
    sl_ap_buf_free(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_member_rules),
        cmocka_unit_test(test_web_search_stream),
        cmocka_unit_test(test_sse_buffers_released),
        cmocka_unit_test(test_thinking),
        cmocka_unit_test(test_parallel_tools),
        cmocka_unit_test(test_finish_on_text_no_usage_no_done),
        cmocka_unit_test(test_in_stream_error),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_crlf_and_comments),
        cmocka_unit_test(test_keepalive_before_first_chunk),
        cmocka_unit_test(test_sse_parser),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
