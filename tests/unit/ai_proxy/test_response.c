/* test_response.c - OpenAI chat completion -> Anthropic message; error
 * bodies -> Anthropic error shape; statistics values. */

#include <math.h>

#include "test_util.h"

static json_object *
translate(const char *body, sl_ap_usage_t *u)
{
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    json_object *j;

    memset(u, 0, sizeof(*u));
    assert_int_equal(
        sl_ap_anthropic_response(body, strlen(body), (sl_str_t)SL_STR("qwen-plus"), &d, &out, u),
        0);
    j = tu_parse(out.ptr, out.len);
    sl_json_free(&d);
    sl_ap_buf_free(&out);
    return j;
}

static void
test_full_message(void **state)
{
    sl_ap_usage_t u;
    json_object *j =
        translate("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi!\","
                  "\"reasoning_content\":\"thought\","
                  "\"tool_calls\":[{\"index\":0,\"id\":\"call_0bdc\",\"type\":\"function\","
                  "\"function\":{\"name\":\"get_weather\","
                  "\"arguments\":\"{\\\"location\\\":\\\"Hangzhou\\\"}\"}},"
                  "{\"index\":1,\"id\":\"\",\"type\":\"function\",\"function\":{\"name\":"
                  "\"broken\",\"arguments\":\"{\\\"a\\\":\"}}]},"
                  "\"finish_reason\":\"tool_calls\",\"index\":0,\"logprobs\":null}],\"object\":"
                  "\"chat.completion\","
                  "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":12,\"total_tokens\":42,"
                  "\"prompt_tokens_details\":{\"cached_tokens\":10},\"completion_tokens_details\":{"
                  "\"reasoning_tokens\":5}},"
                  "\"created\":1735320910,\"system_fingerprint\":null,\"model\":\"qwen-plus-2025\","
                  "\"id\":\"chatcmpl-db13\"}",
                  &u);

    (void)state;
    assert_jstr(j, "id", "msg_db13");
    assert_jstr(j, "type", "message");
    assert_jstr(j, "role", "assistant");
    assert_jstr(j, "model", "qwen-plus");
    assert_jstr(j, "content.0.type", "thinking");
    assert_jstr(j, "content.0.thinking", "thought");
    assert_non_null(tu_str(j, "content.0.signature"));
    assert_jstr(j, "content.1.type", "text");
    assert_jstr(j, "content.1.text", "Hi!");
    assert_jstr(j, "content.2.type", "tool_use");
    assert_jstr(j, "content.2.id", "call_0bdc");
    assert_jstr(j, "content.2.name", "get_weather");
    assert_jstr(j, "content.2.input.location", "Hangzhou");
    assert_jstr(j, "content.3.type", "tool_use");
    assert_jstr(j, "content.3.id", "toolu_db13_2"); /* generated, unique */
    assert_true(
        json_object_is_type(tu_get(j, "content.3.input"), json_type_object)); /* malformed -> {} */
    assert_jstr(j, "stop_reason", "tool_use");
    assert_true(json_object_is_type(tu_get(j, "stop_sequence"), json_type_null));
    assert_int_equal(tu_int(j, "usage.input_tokens"), 20);
    assert_int_equal(tu_int(j, "usage.cache_read_input_tokens"), 10);
    assert_int_equal(tu_int(j, "usage.output_tokens"), 12);
    assert_int_equal(u.prompt, 30);
    assert_int_equal(u.total, 42);
    assert_string_equal(u.completion_details, "{\"reasoning_tokens\":5}");
    assert_string_equal(u.response_model, "qwen-plus-2025");
    json_object_put(j);
}

static void
test_finish_reasons(void **state)
{
    static const char *const map[][2] = {
        {"stop", "end_turn"},          {"length", "max_tokens"}, {"tool_calls", "tool_use"},
        {"content_filter", "refusal"}, {"whatever", "end_turn"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        char body[256];
        sl_ap_usage_t u;
        json_object *j;

        snprintf(body, sizeof(body),
                 "{\"choices\":[{\"message\":{\"content\":\"x\"},\"finish_reason\":\"%s\"}],"
                 "\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}",
                 map[i][0]);
        j = translate(body, &u);
        assert_jstr(j, "stop_reason", map[i][1]);
        assert_int_equal(u.total, 3);
        json_object_put(j);
    }
}

static void
test_empty_and_invalid(void **state)
{
    sl_ap_usage_t u;
    json_object *j = translate(
        "{\"choices\":[{\"message\":{\"content\":\"\"},\"finish_reason\":\"stop\"}]}", &u);
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};

    (void)state;
    assert_jstr(j, "content.0.type", "text");
    assert_jstr(j, "content.0.text", "");
    assert_int_equal(tu_int(j, "usage.output_tokens"), 0);
    json_object_put(j);
    assert_int_equal(sl_ap_anthropic_response("<html>", 6, (sl_str_t)SL_STR("m"), &d, &out, &u),
                     -1);
    assert_int_equal(
        sl_ap_anthropic_response("{\"choices\":[]}", 14, (sl_str_t)SL_STR("m"), &d, &out, &u), -1);
    sl_json_free(&d);
    sl_ap_buf_free(&out);
}

static json_object *
err(int status, const char *body)
{
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    json_object *j;

    sl_ap_anthropic_error(status, body, strlen(body), &d, &out);
    j = tu_parse(out.ptr, out.len);
    assert_jstr(j, "type", "error");
    sl_json_free(&d);
    sl_ap_buf_free(&out);
    return j;
}

static void
test_errors(void **state)
{
    json_object *j;

    (void)state;
    j = err(401,
            "{\"error\":{\"message\":\"Incorrect API key provided. For details, see: https://x\","
            "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"invalid_api_key\"},"
            "\"request_id\":\"cf63\"}");
    assert_jstr(j, "error.type", "authentication_error");
    assert_jstr(j, "error.message", "Incorrect API key provided. For details, see: https://x");
    json_object_put(j);

    j = err(429, "{\"error\":{\"code\":\"limit_requests\",\"message\":\"Requests rate limit "
                 "exceeded, try again later.\"}}");
    assert_jstr(j, "error.type", "rate_limit_error");
    json_object_put(j);

    j = err(
        500,
        "{\"error\":{\"code\":\"internal_error\",\"message\":\"An internal error has occured\"}}");
    assert_jstr(j, "error.type", "api_error");
    assert_jstr(j, "error.message", "An internal error has occured");
    json_object_put(j);

    j = err(400,
            "{\"error\":{\"code\":\"invalid_parameter_error\",\"message\":\"<400> "
            "InternalError.Algo.InvalidParameter: Range of max_tokens should be [1, 8192]\"}}");
    assert_jstr(j, "error.type", "invalid_request_error");
    json_object_put(j);

    j = err(502, "<html><body><h1>502 Bad Gateway</h1></body></html>");
    assert_jstr(j, "error.type", "api_error");
    assert_jstr(j, "error.message", "An invalid response was received from the upstream server");
    json_object_put(j);

    j = err(503, "");
    assert_jstr(j, "error.type", "overloaded_error");
    json_object_put(j);

    j = err(529, "");
    assert_jstr(j, "error.type", "overloaded_error");
    assert_jstr(j, "error.message", "The upstream server responded with 529");
    json_object_put(j);

    /* the gateway's own (Kong-style) error body */
    j = err(504,
            "{\n  \"message\":\"The upstream server is timing out\",\n  \"request_id\":\"ab\"\n}");
    assert_jstr(j, "error.type", "api_error");
    assert_jstr(j, "error.message", "The upstream server is timing out");
    json_object_put(j);

    j = err(403, "{\"error\":\"plain string\"}");
    assert_jstr(j, "error.type", "permission_error");
    assert_jstr(j, "error.message", "plain string");
    json_object_put(j);

    j = err(404, "{}");
    assert_jstr(j, "error.type", "not_found_error");
    json_object_put(j);
    j = err(413, "");
    assert_jstr(j, "error.type", "request_too_large");
    json_object_put(j);
    j = err(418, "");
    assert_jstr(j, "error.type", "invalid_request_error");
    json_object_put(j);
}

/* ai-proxy's statistics, placed as the host places them, written as the
 * record writes them: the text Kong's ai-proxy logs. */
static json_object *
stats_record(const sl_ap_stats_in_t *in)
{
    sl_ap_stat_t s[SL_AP_STATS_MAX];
    sl_ap_buf_t model = {0};
    size_t n = sl_ap_stats(in, &model, s);
    json_object *j;

    assert_true(n <= SL_AP_STATS_MAX);
    j = tu_stats_record(s, n);
    sl_ap_buf_free(&model); /* strings copied into the tree */
    return j;
}

static void
test_stats(void **state)
{
    sl_ap_usage_t u;
    sl_ap_stats_in_t in;
    json_object *j;

    (void)state;
    memset(&u, 0, sizeof(u));
    memset(&in, 0, sizeof(in));
    u.have = 1;
    u.prompt = 13486;
    u.completion = 493;
    u.total = 13979;
    in.usage = &u;
    in.input_cost = in.output_cost = -1;
    in.llm_latency_ms = 17028;
    in.ttft_ms = 17027;
    in.plugin_id = (sl_str_t)SL_STR("63199335-aaaa");
    in.provider_name = (sl_str_t)SL_STR("dashscope");
    in.request_model = (sl_str_t)SL_STR("qwen-plus");
    j = stats_record(&in);
    assert_string_equal(
        tu_text(j, "ai.proxy.usage"),
        "{\"prompt_tokens\":13486,\"completion_tokens\":493,\"total_tokens\":13979,"
        "\"cost\":0,\"time_per_token\":34.539553752535,\"time_to_first_token\":17027,"
        "\"prompt_tokens_details\":{\"cached_tokens\":0},\"completion_tokens_details\":{}}");
    assert_string_equal(tu_text(j, "ai.proxy.meta"),
                        "{\"plugin_id\":\"63199335-aaaa\",\"provider_name\":\"dashscope\","
                        "\"request_model\":\"qwen-plus\",\"response_model\":\"qwen-plus\","
                        "\"request_mode\":\"oneshot\",\"llm_latency\":17028}");
    /* usage first, then meta, nothing else */
    assert_int_equal(json_object_object_length(j), 1);
    assert_int_equal(json_object_object_length(tu_get(j, "ai")), 1);
    assert_int_equal(json_object_object_length(tu_get(j, "ai.proxy")), 2);
    assert_int_equal(strncmp(tu_text(j, "ai.proxy"), "{\"usage\":{", 10), 0);
    json_object_put(j);
    /* cost with both prices; stream mode; response model from upstream
     * (kept JSON-escaped, written decoded); the provider's own
     * completion_tokens_details */
    in.input_cost = 0.4;
    in.output_cost = 1.2;
    in.stream = 1;
    snprintf(u.response_model, sizeof(u.response_model), "qwen-plus-latest");
    snprintf(u.completion_details, sizeof(u.completion_details), "{\"reasoning_tokens\":12}");
    j = stats_record(&in);
    assert_true(json_object_get_double(tu_get(j, "ai.proxy.usage.cost")) > 0.0059 &&
                json_object_get_double(tu_get(j, "ai.proxy.usage.cost")) < 0.0060);
    assert_string_equal(tu_text(j, "ai.proxy.usage.cost"), "0.005986");
    assert_string_equal(tu_text(j, "ai.proxy.usage.completion_tokens_details"),
                        "{\"reasoning_tokens\":12}");
    assert_jstr(j, "ai.proxy.meta.request_mode", "stream");
    assert_jstr(j, "ai.proxy.meta.response_model", "qwen-plus-latest");
    json_object_put(j);
    snprintf(u.response_model, sizeof(u.response_model), "qwen\\/plus \\u00e9\\\"x");
    j = stats_record(&in);
    assert_jstr(j, "ai.proxy.meta.response_model", "qwen/plus \xc3\xa9\"x");
    assert_string_equal(tu_text(j, "ai.proxy.meta.response_model"), "\"qwen/plus \xc3\xa9\\\"x\"");
    json_object_put(j);
}

/* DashScope's explicit cache usage -> Anthropic's three input counts, and
 * Kong's cost with cache_read_cost / cache_write_cost. */
static void
test_cache_usage(void **state)
{
    sl_ap_usage_t u;
    sl_ap_stats_in_t in;
    json_object *j;

    (void)state;
    memset(&u, 0, sizeof(u));
    j = translate("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"ok\"},"
                  "\"finish_reason\":\"stop\",\"index\":0}],\"object\":\"chat.completion\","
                  "\"usage\":{\"prompt_tokens\":12000,\"completion_tokens\":10,\"total_tokens\":"
                  "12010,\"prompt_tokens_details\":{\"cached_tokens\":9000,"
                  "\"cache_creation_input_tokens\":2500,\"cache_type\":\"ephemeral\","
                  "\"cache_creation\":{\"ephemeral_5m_input_tokens\":2500}}},"
                  "\"model\":\"qwen-plus\",\"id\":\"chatcmpl-1\"}",
                  &u);
    assert_int_equal(tu_int(j, "usage.input_tokens"), 500);
    assert_int_equal(tu_int(j, "usage.cache_read_input_tokens"), 9000);
    assert_int_equal(tu_int(j, "usage.cache_creation_input_tokens"), 2500);
    assert_int_equal(tu_int(j, "usage.output_tokens"), 10);
    json_object_put(j);

    memset(&in, 0, sizeof(in));
    in.usage = &u;
    in.input_cost = 1.0;
    in.output_cost = 2.0;
    in.cache_read_cost = 0.1;
    in.cache_write_cost = 1.25;
    in.plugin_id = in.provider_name = in.request_model = (sl_str_t)SL_STR("x");
    j = stats_record(&in);
    /* (500 * 1 + 9000 * 0.1 + 2500 * 1.25 + 10 * 2) / 1e6 */
    assert_true(fabs(json_object_get_double(tu_get(j, "ai.proxy.usage.cost")) - 0.004545) < 1e-12);
    assert_int_equal(tu_int(j, "ai.proxy.usage.prompt_tokens_details.cached_tokens"), 9000);
    json_object_put(j);
    in.cache_read_cost = in.cache_write_cost = -1; /* unset: input_cost for all */
    j = stats_record(&in);
    assert_true(fabs(json_object_get_double(tu_get(j, "ai.proxy.usage.cost")) - 0.01202) < 1e-12);
    json_object_put(j);
}

static void
test_web_search_blocks(void **state)
{
    sl_ap_usage_t u;
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    json_object *j;
    const char *body = "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"It is "
                       "a gateway.\"},\"finish_reason\":\"stop\",\"index\":0}],\"usage\":{"
                       "\"prompt_tokens\":9,\"completion_tokens\":3},\"id\":\"chatcmpl-ab\"}";

    (void)state;
    memset(&u, 0, sizeof(u));
    assert_int_equal(sl_ap_anthropic_response_search(body, strlen(body), (sl_str_t)SL_STR("m"),
                                                     "sluice \\\"gw\\\"", &d, &out, &u),
                     0);
    j = tu_parse(out.ptr, out.len);
    assert_jstr(j, "content.0.type", "server_tool_use");
    assert_jstr(j, "content.0.name", "web_search");
    assert_jstr(j, "content.0.input.query", "sluice \"gw\"");
    assert_jstr(j, "content.1.type", "web_search_tool_result");
    assert_string_equal(tu_str(j, "content.1.tool_use_id"), tu_str(j, "content.0.id"));
    assert_int_equal(json_object_array_length(tu_get(j, "content.1.content")), 0); /* no links */
    assert_jstr(j, "content.2.text", "It is a gateway.");
    json_object_put(j);
    sl_json_free(&d);
    sl_ap_buf_free(&out);
}

static void
test_json_scan(void **state)
{
    static const char *const good[] = {
        "{}", "[]", " {\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\n\"]} ", "\"s\"", "0", "[[[]]]",
    };
    static const char *const bad[] = {
        "",      "{",         "{\"a\"}",  "{\"a\":}", "[1,]",  "{\"a\":1,}",
        "[01]",  "\"\\x\"",   "\"a\nb\"", "tru",      "{} {}", "[1 2]",
        "{1:2}", "\"\\u12\"", "-",        "1.",       "1e",
    };
    sl_jdoc_t d = {0};
    sl_ap_buf_t b = {0};
    size_t i;
    int v;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (sl_json_parse(&d, good[i], strlen(good[i])) != 0) {
            fail_msg("rejected %s", good[i]);
        }
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (sl_json_parse(&d, bad[i], strlen(bad[i])) != -1) {
            fail_msg("accepted %s", bad[i]);
        }
    }
    assert_int_equal(sl_json_parse(&d, good[2], strlen(good[2])), 0);
    v = sl_json_get_t(&d, 0, "a", SL_J_ARR);
    assert_true(v > 0);
    assert_int_equal(SL_JSON_END(&d, v), 9);
    assert_int_equal(sl_json_unescape("x\\u00e9\\n\\ud83d\\ude00", 21, &b), 0);
    assert_int_equal(b.len, 1 + 2 + 1 + 4);
    assert_memory_equal(b.ptr, "x\xc3\xa9\n\xf0\x9f\x98\x80", 8);
    sl_ap_buf_free(&b);
    sl_json_free(&d);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_message),
        cmocka_unit_test(test_finish_reasons),
        cmocka_unit_test(test_empty_and_invalid),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_cache_usage),
        cmocka_unit_test(test_web_search_blocks),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_json_scan),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
