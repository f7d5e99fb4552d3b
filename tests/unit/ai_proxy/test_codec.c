/* test_codec.c - the anthropic provider's codec (OpenAI client <->
 * Anthropic Messages): the request mapping, the answer as a chat
 * completion, and the stream as OpenAI chunks fed split at every byte. */

#include "test_util.h"

static const char ANTHROPIC_STREAM[] =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-x\",\"content\":[],\"stop_reason\":null,"
    "\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\n\n"
    "event: ping\ndata: {\"type\":\"ping\"}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\","
    "\"thinking\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\","
    "\"thinking\":\"hmm\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\","
    "\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\","
    "\"text\":\"Hi \\\"there\\\"\\n\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\","
    "\"id\":\"toolu_9\",\"name\":\"f\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"{\\\"a\\\":\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\","
    "\"partial_json\":\"1}\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},"
    "\"usage\":{\"output_tokens\":7}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

static const sl_ap_codec_t *
codec(void)
{
    return sl_ap_provider_find("anthropic")->codec;
}

/* Feed `in` in pieces of `step` bytes (0: at once); returns the output. */
static void
run_stream(const char *in, size_t len, size_t step, int include_usage, sl_ap_buf_t *out,
           sl_ap_usage_t *u)
{
    const sl_ap_codec_t *k = codec();
    void *st = calloc(1, k->stream_size);
    sl_ap_req_info_t info;

    memset(&info, 0, sizeof(info));
    info.include_usage = include_usage;
    info.model = (sl_str_t){"claude-x", 8};
    k->stream_init(st, NULL, &info, 0);
    if (step == 0) {
        step = len;
    }
    for (size_t off = 0; off < len; off += step) {
        size_t n = len - off < step ? len - off : step;
        assert_true(k->stream_feed(st, in + off, n, 0, out, u) >= 0);
    }
    k->stream_feed(st, NULL, 0, 1, out, u);
    k->stream_free(st);
    free(st);
}

static void
test_stream_chunks(void **state)
{
    sl_ap_buf_t whole = {0};
    sl_ap_usage_t u;
    json_object *o;
    char *p, *e;
    int nchunks = 0, usage_seen = 0;
    sl_ap_buf_t args = {0}, text = {0};

    (void)state;
    memset(&u, 0, sizeof(u));
    run_stream(ANTHROPIC_STREAM, sizeof(ANTHROPIC_STREAM) - 1, 0, 1, &whole, &u);
    assert_int_equal(u.prompt, 15);
    assert_int_equal(u.cached, 5);
    assert_int_equal(u.completion, 7);
    /* every event is "data: {json}\n\n", then [DONE] */
    sl_ap_buf_addc(&whole, '\0');
    for (p = whole.ptr; (e = strstr(p, "\n\n")) != NULL; p = e + 2) {
        assert_memory_equal(p, "data: ", 6);
        if (strncmp(p + 6, "[DONE]", 6) == 0) {
            assert_string_equal(e + 2, "");
            break;
        }
        o = tu_parse(p + 6, (size_t)(e - p - 6));
        nchunks++;
        assert_string_equal(json_object_get_string(tu_get(o, "object")), "chat.completion.chunk");
        assert_string_equal(json_object_get_string(tu_get(o, "id")), "chatcmpl-msg_1");
        if (tu_get(o, "usage")) {
            usage_seen = 1;
            assert_int_equal(json_object_array_length(tu_get(o, "choices")), 0);
            assert_int_equal(json_object_get_int(tu_get(o, "usage.prompt_tokens")), 15);
            assert_int_equal(json_object_get_int(tu_get(o, "usage.completion_tokens")), 7);
            assert_int_equal(
                json_object_get_int(tu_get(o, "usage.prompt_tokens_details.cached_tokens")), 5);
        } else {
            json_object *c = tu_get(o, "choices.0.delta.content");
            json_object *a = tu_get(o, "choices.0.delta.tool_calls.0.function.arguments");

            if (c) {
                sl_ap_buf_adds(&text, json_object_get_string(c));
            }
            if (a) {
                sl_ap_buf_adds(&args, json_object_get_string(a));
            }
            if (tu_get(o, "choices.0.delta.tool_calls.0.id")) {
                assert_string_equal(
                    json_object_get_string(tu_get(o, "choices.0.delta.tool_calls.0.id")),
                    "toolu_9");
            }
            if (tu_get(o, "choices.0.delta.reasoning_content")) {
                assert_string_equal(
                    json_object_get_string(tu_get(o, "choices.0.delta.reasoning_content")), "hmm");
            }
        }
        json_object_put(o);
    }
    assert_true(usage_seen);
    assert_true(nchunks >= 7);
    sl_ap_buf_addc(&text, '\0');
    sl_ap_buf_addc(&args, '\0');
    assert_string_equal(text.ptr, "Hi \"there\"\n");
    assert_string_equal(args.ptr, "{\"a\":1}");
    assert_non_null(strstr(whole.ptr, "\"finish_reason\":\"tool_calls\""));

    /* split at every byte: the same chunks (created is per stream: mask it) */
    for (size_t step = 1; step < 64; step += (step < 8 ? 1 : 13)) {
        sl_ap_buf_t part = {0};
        sl_ap_usage_t u2;

        memset(&u2, 0, sizeof(u2));
        run_stream(ANTHROPIC_STREAM, sizeof(ANTHROPIC_STREAM) - 1, step, 1, &part, &u2);
        sl_ap_buf_addc(&part, '\0');
        assert_int_equal(part.len, whole.len);
        assert_int_equal(u2.completion, 7);
        sl_ap_buf_free(&part);
    }
    sl_ap_buf_free(&whole);
    sl_ap_buf_free(&text);
    sl_ap_buf_free(&args);
}

static void
test_stream_cut_and_error(void **state)
{
    sl_ap_buf_t out = {0};
    sl_ap_usage_t u;
    static const char err[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\","
        "\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n"
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
        "\"message\":\"Overloaded\"}}\n\n";

    (void)state;
    memset(&u, 0, sizeof(u));
    /* cut before message_stop: an error chunk, no [DONE] */
    run_stream(ANTHROPIC_STREAM, 400, 0, 0, &out, &u);
    sl_ap_buf_addc(&out, '\0');
    assert_non_null(strstr(out.ptr, "data: {\"error\":{\"message\":\"upstream stream ended"));
    assert_null(strstr(out.ptr, "[DONE]"));
    out.len = 0;
    run_stream(err, sizeof(err) - 1, 5, 0, &out, &u);
    sl_ap_buf_addc(&out, '\0');
    assert_non_null(strstr(
        out.ptr, "data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"overloaded_error\""));
    assert_null(strstr(out.ptr, "upstream stream ended"));
    sl_ap_buf_free(&out);
}

static void
test_decode_json(void **state)
{
    static const char msg[] =
        "{\"id\":\"msg_7\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"s\"},"
        "{\"type\":\"text\",\"text\":\"a\\\"b\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\","
        "\"name\":\"f\",\"input\":{\"x\":[1,2]}}],\"stop_reason\":\"tool_use\","
        "\"usage\":{\"input_tokens\":4,\"output_tokens\":2,\"cache_creation_input_tokens\":1,"
        "\"cache_read_input_tokens\":3}}";
    sl_ap_buf_t out = {0};
    sl_jdoc_t d = {0};
    sl_ap_usage_t u;
    json_object *o;

    (void)state;
    memset(&u, 0, sizeof(u));
    assert_int_equal(codec()->decode_json(NULL, msg, sizeof(msg) - 1, &d, &out, &u), 0);
    o = tu_parse(out.ptr, out.len);
    assert_string_equal(json_object_get_string(tu_get(o, "id")), "chatcmpl-msg_7");
    assert_string_equal(json_object_get_string(tu_get(o, "choices.0.message.content")), "a\"b");
    assert_string_equal(json_object_get_string(tu_get(o, "choices.0.message.reasoning_content")),
                        "t");
    assert_string_equal(
        json_object_get_string(tu_get(o, "choices.0.message.tool_calls.0.function.arguments")),
        "{\"x\":[1,2]}");
    assert_string_equal(json_object_get_string(tu_get(o, "choices.0.finish_reason")), "tool_calls");
    assert_int_equal(json_object_get_int(tu_get(o, "usage.prompt_tokens")), 8);
    assert_int_equal(json_object_get_int(tu_get(o, "usage.prompt_tokens_details.cached_tokens")),
                     3);
    assert_int_equal(u.prompt, 8);
    json_object_put(o);
    out.len = 0;
    assert_int_equal(codec()->decode_json(NULL, "{\"error\":1}", 11, &d, &out, &u), -1);
    sl_json_free(&d);
    sl_ap_buf_free(&out);
}

static void
test_request_refusals(void **state)
{
    sl_ap_target_t t;
    sl_ap_buf_t out = {0};
    sl_jdoc_t d = {0};
    sl_ap_req_info_t info;
    static const char *const bad[] = {
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":3}",
        "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":"
        "\"json_object\"}}",
        "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
        "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}",
        "{\"messages\":[{\"role\":\"system\",\"content\":\"only a system\"}]}",
        "{\"messages\":7}",
        "[",
    };

    (void)state;
    memset(&t, 0, sizeof(t));
    t.prov = sl_ap_provider_find("anthropic");
    t.provider = SL_AP_PROV_ANTHROPIC;
    t.model_name = (char *)"claude-x";
    t.max_tokens = t.top_k = -1;
    t.temperature = t.top_p = -1;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&info, 0, sizeof(info));
        out.len = 0;
        assert_int_equal(codec()->from_openai(&t, bad[i], strlen(bad[i]), &d, &out, &info), -1);
        assert_int_equal(info.status, 400);
        assert_true(info.errmsg[0] != '\0');
    }
    /* an image as a data URI and as a URL */
    {
        const char *ok = "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
                         "\"text\":\"see\"},{\"type\":\"image_url\",\"image_url\":{\"url\":"
                         "\"data:image/png;base64,AAAA\"}},{\"type\":\"image_url\",\"image_url\":"
                         "{\"url\":\"https://x/y.png\"}}]}]}";
        json_object *o;

        memset(&info, 0, sizeof(info));
        out.len = 0;
        assert_int_equal(codec()->from_openai(&t, ok, strlen(ok), &d, &out, &info), 0);
        o = tu_parse(out.ptr, out.len);
        assert_string_equal(
            json_object_get_string(tu_get(o, "messages.0.content.1.source.media_type")),
            "image/png");
        assert_string_equal(json_object_get_string(tu_get(o, "messages.0.content.1.source.data")),
                            "AAAA");
        assert_string_equal(json_object_get_string(tu_get(o, "messages.0.content.2.source.url")),
                            "https://x/y.png");
        assert_int_equal(json_object_get_int(tu_get(o, "max_tokens")), 4096);
        json_object_put(o);
    }
    sl_json_free(&d);
    sl_ap_buf_free(&out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_chunks),
        cmocka_unit_test(test_stream_cut_and_error),
        cmocka_unit_test(test_decode_json),
        cmocka_unit_test(test_request_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
