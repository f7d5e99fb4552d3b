/* test_native.c - the gemini and bedrock providers (and the cohere codec,
 * which shares the OpenAI-side helpers below): request translation,
 * whole answers, streamed answers (fed whole, split at every byte and one
 * byte at a time: the output must be identical and follow Anthropic's
 * grammar), AWS event-stream frames with their CRCs, SigV4. */

#include "grammar.h"
#include "native.h"

static sl_ap_target_t
conf_default(void)
{
    sl_ap_target_t c;

    memset(&c, 0, sizeof(c));
    c.llm_format = SL_AP_FMT_ANTHROPIC;
    c.max_tokens = -1;
    c.temperature = -1;
    c.top_p = -1;
    c.top_k = -1;
    c.input_cost = c.output_cost = -1;
    c.cache_read_cost = c.cache_write_cost = -1;
    return c;
}

typedef int (*req_fn)(const sl_ap_target_t *, const char *, size_t, sl_jdoc_t *, sl_ap_buf_t *,
                      sl_ap_req_info_t *);

static json_object *
translate(req_fn fn, const sl_ap_target_t *conf, const char *body, sl_ap_req_info_t *info)
{
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    json_object *o;
    int rc;

    memset(info, 0, sizeof(*info));
    rc = fn(conf, body, strlen(body), &d, &out, info);
    if (rc != 0) {
        fprintf(stderr, "translation failed: %d %s\n", info->status, info->errmsg);
        fail();
    }
    o = tu_parse(out.ptr, out.len);
    sl_ap_buf_free(&out);
    sl_json_free(&d);
    return o;
}

static int
refused(req_fn fn, const sl_ap_target_t *conf, const char *body, sl_ap_req_info_t *info)
{
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    int rc;

    memset(info, 0, sizeof(*info));
    rc = fn(conf, body, strlen(body), &d, &out, info);
    sl_ap_buf_free(&out);
    sl_json_free(&d);
    return rc == -1 ? info->status : 0;
}

static const char req_tools[] =
    "{\"model\":\"m1\",\"max_tokens\":1024,\"stream\":true,\"temperature\":0.5,"
    "\"system\":[{\"type\":\"text\",\"text\":\"You are terse.\","
    "\"cache_control\":{\"type\":\"ephemeral\"}}],"
    "\"stop_sequences\":[\"END\"],"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2048},"
    "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Weather\",\"input_schema\":{\"type\":"
    "\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"additionalProperties\":false,"
    "\"$schema\":\"http://json-schema.org/draft-07/schema#\"}},"
    "{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],"
    "\"tool_choice\":{\"type\":\"tool\",\"name\":\"get_weather\"},"
    "\"messages\":["
    "{\"role\":\"user\",\"content\":\"Weather in \\\"Paris\\\"?\"},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\","
    "\"signature\":\"c2ln\"},{\"type\":\"text\",\"text\":\"Checking.\"},"
    "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{\"city\":"
    "\"Paris\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
    "\"content\":[{\"type\":\"text\",\"text\":\"18C\"},{\"type\":\"text\",\"text\":\"sunny\"}]},"
    "{\"type\":\"text\",\"text\":\"Thanks\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
    "{\"role\":\"system\",\"content\":\"env: linux\"}]}";

/* ------------------------------------------------------------- gemini */

static void
test_gemini_request(void **state)
{
    sl_ap_target_t conf = conf_default();
    sl_ap_req_info_t info;
    json_object *o;

    (void)state;
    conf.max_tokens = 512; /* config wins */
    o = translate(sl_ap_gemini_request, &conf, req_tools, &info);
    assert_true(info.stream);
    assert_int_equal(info.model.len, 2);
    assert_jstr(o, "systemInstruction.parts.0.text", "You are terse.");
    assert_jstr(o, "systemInstruction.parts.1.text", "env: linux");
    assert_jstr(o, "contents.0.role", "user");
    assert_jstr(o, "contents.0.parts.0.text", "Weather in \"Paris\"?");
    assert_jstr(o, "contents.1.role", "model");
    assert_jstr(o, "contents.1.parts.0.text", "Checking."); /* thinking dropped */
    assert_jstr(o, "contents.1.parts.1.functionCall.name", "get_weather");
    assert_jstr(o, "contents.1.parts.1.functionCall.args.city", "Paris");
    assert_absent(o, "contents.1.parts.1.thoughtSignature");
    assert_jstr(o, "contents.2.role", "user");
    assert_jstr(o, "contents.2.parts.0.functionResponse.name", "get_weather");
    assert_jstr(o, "contents.2.parts.0.functionResponse.response.result", "18C\nsunny");
    assert_jstr(o, "contents.3.role", "user");
    assert_jstr(o, "contents.3.parts.0.text", "Thanks");
    assert_absent(o, "contents.4");
    assert_int_equal(tu_int(o, "generationConfig.maxOutputTokens"), 512);
    assert_true(json_object_get_double(tu_get(o, "generationConfig.temperature")) == 0.5);
    assert_jstr(o, "generationConfig.stopSequences.0", "END");
    assert_true(
        json_object_get_boolean(tu_get(o, "generationConfig.thinkingConfig.includeThoughts")));
    assert_int_equal(tu_int(o, "generationConfig.thinkingConfig.thinkingBudget"), 2048);
    assert_jstr(o, "tools.0.functionDeclarations.0.name", "get_weather");
    assert_jstr(o, "tools.0.functionDeclarations.0.parametersJsonSchema.$schema",
                "http://json-schema.org/draft-07/schema#");
    assert_absent(o, "tools.0.functionDeclarations.1"); /* the server tool */
    assert_jstr(o, "toolConfig.functionCallingConfig.mode", "ANY");
    assert_jstr(o, "toolConfig.functionCallingConfig.allowedFunctionNames.0", "get_weather");
    json_object_put(o);
}

static void
test_gemini_request_refusals(void **state)
{
    sl_ap_target_t conf = conf_default();
    sl_ap_req_info_t info;

    (void)state;
    assert_int_equal(refused(sl_ap_gemini_request, &conf,
                             "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
                             "\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"nope\","
                             "\"content\":\"x\"}]}]}",
                             &info),
                     400);
    assert_non_null(strstr(info.errmsg, "no earlier tool_use"));
    assert_int_equal(refused(sl_ap_gemini_request, &conf,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{"
                             "\"type\":\"container_upload\",\"file_id\":\"f\"}]}]}",
                             &info),
                     400);
    assert_non_null(strstr(info.errmsg, "container_upload"));
    assert_int_equal(refused(sl_ap_gemini_request, &conf, "{\"messages\":[]}", &info), 400);
    assert_int_equal(refused(sl_ap_gemini_request, &conf, "[1]", &info), 400);
    assert_int_equal(refused(sl_ap_gemini_request, &conf,
                             "{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\","
                             "\"content\":\"x\"}]}",
                             &info),
                     400);
    conf.model_name = "gemini-2.5-flash";
    assert_int_equal(refused(sl_ap_gemini_request, &conf,
                             "{\"model\":\"other\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"x\"}]}",
                             &info),
                     400);
    assert_non_null(strstr(info.errmsg, "cannot use own model"));
}

static const char gem_resp[] =
    "{\"candidates\":[{\"content\":{\"parts\":["
    "{\"text\":\"Thinking about it\",\"thought\":true},"
    "{\"text\":\"Let me check \\u00e9.\"},"
    "{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}},"
    "\"thoughtSignature\":\"CiQB+/xy==\"}],\"role\":\"model\"},\"finishReason\":\"STOP\","
    "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":120,\"candidatesTokenCount\":30,"
    "\"totalTokenCount\":160,\"cachedContentTokenCount\":100,\"thoughtsTokenCount\":10},"
    "\"modelVersion\":\"gemini-2.5-flash\",\"responseId\":\"abc-123\"}";

static void
test_gemini_response(void **state)
{
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    sl_ap_usage_t u;
    sl_ap_target_t conf = conf_default();
    sl_ap_req_info_t info;
    json_object *o, *back;
    char req[512];

    (void)state;
    memset(&u, 0, sizeof(u));
    assert_int_equal(sl_ap_gemini_response(gem_resp, sizeof(gem_resp) - 1,
                                           (sl_str_t)SL_STR("gemini-2.5-flash"),
                                           (sl_str_t)SL_STR("req1"), &d, &out, &u),
                     0);
    o = tu_parse(out.ptr, out.len);
    assert_jstr(o, "id", "msg_abc-123");
    assert_jstr(o, "content.0.type", "thinking");
    assert_jstr(o, "content.0.thinking", "Thinking about it");
    assert_jstr(o, "content.1.text", "Let me check \xc3\xa9.");
    assert_jstr(o, "content.2.type", "tool_use");
    assert_jstr(o, "content.2.id", "toolu_abc-123_1_gsig_CiQB-_xy");
    assert_jstr(o, "content.2.input.city", "Paris");
    assert_jstr(o, "stop_reason", "tool_use");
    assert_int_equal(tu_int(o, "usage.input_tokens"), 20);
    assert_int_equal(tu_int(o, "usage.cache_read_input_tokens"), 100);
    assert_int_equal(tu_int(o, "usage.output_tokens"), 40);
    assert_int_equal(u.prompt, 120);
    assert_int_equal(u.cached, 100);
    assert_int_equal(u.completion, 40);
    assert_int_equal(u.total, 160);
    assert_string_equal(u.response_model, "gemini-2.5-flash");
    assert_string_equal(u.completion_details, "{\"reasoning_tokens\":10}");

    /* the signature goes back with the call on the next turn */
    snprintf(req, sizeof(req),
             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},"
             "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"%s\","
             "\"name\":\"get_weather\",\"input\":{}}]},{\"role\":\"user\",\"content\":[{\"type\":"
             "\"tool_result\",\"tool_use_id\":\"%s\",\"content\":\"boom\",\"is_error\":true}]}]}",
             tu_str(o, "content.2.id"), tu_str(o, "content.2.id"));
    back = translate(sl_ap_gemini_request, &conf, req, &info);
    assert_jstr(back, "contents.1.parts.0.thoughtSignature", "CiQB+/xy");
    assert_jstr(back, "contents.2.parts.0.functionResponse.response.error", "boom");
    json_object_put(back);
    json_object_put(o);

    /* blocked prompt: no candidates */
    out.len = 0;
    memset(&u, 0, sizeof(u));
    {
        static const char blocked[] =
            "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"},\"usageMetadata\":{"
            "\"promptTokenCount\":5,\"totalTokenCount\":5}}";
        assert_int_equal(sl_ap_gemini_response(blocked, sizeof(blocked) - 1, (sl_str_t)SL_STR("g"),
                                               (sl_str_t)SL_STR("r"), &d, &out, &u),
                         0);
    }
    o = tu_parse(out.ptr, out.len);
    assert_jstr(o, "stop_reason", "refusal");
    json_object_put(o);
    out.len = 0;
    assert_int_equal(sl_ap_gemini_response("{\"foo\":1}", 9, (sl_str_t)SL_STR("g"),
                                           (sl_str_t)SL_STR("r"), &d, &out, &u),
                     -1);
    sl_ap_buf_free(&out);
    sl_json_free(&d);
}

/* ---- streams: fed every way ---- */

typedef enum { ST_GEMINI, ST_BEDROCK } st_kind_t;

static void
feed_split(st_kind_t k, const char *in, size_t n, const size_t *cuts, size_t ncuts, int truncated,
           sl_ap_buf_t *all, sl_ap_usage_t *u)
{
    sl_ap_gstream_t g;
    sl_ap_bstream_t b;
    sl_ap_buf_t out = {0};
    size_t i, prev = 0;

    sl_ap_gstream_init(&g, (sl_str_t)SL_STR("gm"), 7);
    sl_ap_bstream_init(&b, (sl_str_t)SL_STR("bm"), 7);
    sl_ap_emit_set_id(&b.em, (sl_str_t)SL_STR("req1"));
    for (i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n;

        out.len = 0;
        if (k == ST_GEMINI) {
            assert_int_equal(
                sl_ap_gstream_feed(&g, in + prev, end - prev, i == ncuts, truncated, &out), 0);
        } else {
            assert_int_equal(
                sl_ap_bstream_feed(&b, in + prev, end - prev, i == ncuts, truncated, &out), 0);
        }
        sl_ap_buf_add(all, out.ptr, out.len);
        prev = end;
    }
    if (u) {
        *u = k == ST_GEMINI ? g.usage : b.usage;
    }
    sl_ap_buf_free(&out);
    sl_ap_gstream_free(&g);
    sl_ap_bstream_free(&b);
}

static void
feed_all_ways(st_kind_t kind, const char *in, size_t n, int truncated, sl_ap_buf_t *whole,
              sl_ap_usage_t *u)
{
    size_t k, *cuts = malloc((n + 1) * sizeof(size_t));
    sl_ap_buf_t other = {0};

    feed_split(kind, in, n, NULL, 0, truncated, whole, u);
    for (k = 0; k <= n; k++) {
        other.len = 0;
        feed_split(kind, in, n, &k, 1, truncated, &other, NULL);
        if (other.len != whole->len || memcmp(other.ptr, whole->ptr, whole->len) != 0) {
            fprintf(stderr, "split at %zu differs:\n%.*s\n---\n%.*s\n", k, (int)other.len,
                    other.ptr, (int)whole->len, whole->ptr);
            fail();
        }
    }
    for (k = 0; k < n; k++) {
        cuts[k] = k;
    }
    other.len = 0;
    feed_split(kind, in, n, cuts, n, truncated, &other, NULL);
    assert_int_equal(other.len, whole->len);
    assert_memory_equal(other.ptr, whole->ptr, whole->len);
    sl_ap_buf_free(&other);
    free(cuts);
}

#define GCH(parts, extra)                                                                          \
    "data: {\"candidates\":[{\"content\":{\"parts\":[" parts "],\"role\":\"model\"}" extra         \
    ",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":50,\"candidatesTokenCount\":5,"        \
    "\"totalTokenCount\":55,\"cachedContentTokenCount\":20},\"modelVersion\":\"gemini-2.5-"        \
    "flash\","                                                                                     \
    "\"responseId\":\"r-9\"}\r\n\r\n"

static const char gfx_text[] = GCH("{\"text\":\"Plan: \",\"thought\":true}", "")
    GCH("{\"text\":\"Hel\"}", "") GCH("{\"text\":\"lo \\\"w\\\"\\n\"}", "")
        GCH("{\"text\":\"\"}", ",\"finishReason\":\"STOP\"");

static const char gfx_tools[] = GCH("{\"text\":\"Checking.\"}", "")
    GCH("{\"functionCall\":{\"name\":\"get_weather\",\"args\":{\"city\":\"Paris\"}},"
        "\"thoughtSignature\":\"AAAA\"},{\"functionCall\":{\"name\":\"get_time\",\"args\":{}}}",
        ",\"finishReason\":\"STOP\"");

static void
test_gemini_stream(void **state)
{
    sl_ap_buf_t out = {0};
    sl_ap_usage_t u;
    grammar_t g;

    (void)state;
    feed_all_ways(ST_GEMINI, gfx_text, sizeof(gfx_text) - 1, 0, &out, &u);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary,
                        "start ping [thinking + sig ] [text + + ] delta:end_turn:30/5 stop");
    assert_string_equal(g.content[0], "Plan: ");
    assert_string_equal(g.content[1], "Hello \"w\"\n");
    assert_jstr(g.start, "message.id", "msg_r-9");
    assert_jstr(g.start, "message.model", "gm");
    assert_int_equal(tu_int(g.last_delta, "usage.cache_read_input_tokens"), 20);
    assert_true(u.have);
    assert_int_equal(u.prompt, 50);
    assert_int_equal(u.cached, 20);
    grammar_free(&g);

    out.len = 0;
    feed_all_ways(ST_GEMINI, gfx_tools, sizeof(gfx_tools) - 1, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(
        g.summary, "start ping [text + ] [tool_use + ] [tool_use + ] delta:tool_use:30/5 stop");
    assert_string_equal(g.id[1], "toolu_r-9_1_gsig_AAAA");
    assert_string_equal(g.name[1], "get_weather");
    assert_string_equal(g.content[1], "{\"city\":\"Paris\"}");
    assert_string_equal(g.id[2], "toolu_r-9_2");
    assert_string_equal(g.content[2], "{}");
    grammar_free(&g);

    /* cut before the finishReason */
    out.len = 0;
    feed_all_ways(ST_GEMINI, gfx_text, 300, 1, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_non_null(strstr(g.summary, "error:api_error"));
    grammar_free(&g);

    /* an error in the stream */
    out.len = 0;
    {
        static const char fx[] =
            GCH("{\"text\":\"Hi\"}",
                "") "data: {\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\","
                    "\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n";
        feed_all_ways(ST_GEMINI, fx, sizeof(fx) - 1, 0, &out, NULL);
    }
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, "start ping [text + ] error:rate_limit_error");
    grammar_free(&g);

    /* not JSON */
    out.len = 0;
    feed_all_ways(ST_GEMINI, "data: {oops\n\n", 13, 0, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, " error:api_error");
    grammar_free(&g);
    sl_ap_buf_free(&out);
}

static void
test_gemini_paths(void **state)
{
    sl_ap_buf_t b = {0};

    (void)state;
    sl_ap_gemini_path(&b, (sl_str_t)SL_STR("gemini-2.5-flash"), 0);
    assert_string_equal(b.ptr, "/v1beta/models/gemini-2.5-flash:generateContent");
    b.len = 0;
    sl_ap_gemini_path(&b, (sl_str_t)SL_STR("models/gemini-2.5-pro"), 1);
    assert_string_equal(b.ptr, "/v1beta/models/gemini-2.5-pro:streamGenerateContent");
    b.len = 0;
    sl_ap_gemini_stream_path(&b, (sl_str_t)SL_STR("/v1/projects/p/models/x:generateContent"));
    assert_string_equal(b.ptr, "/v1/projects/p/models/x:streamGenerateContent");
    b.len = 0;
    sl_ap_bedrock_path(&b, (sl_str_t)SL_STR("anthropic.claude-3-5-sonnet-20240620-v1:0"), 1);
    assert_string_equal(b.ptr,
                        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse-stream");
    b.len = 0;
    sl_ap_bedrock_path(&b, (sl_str_t)SL_STR("arn:aws:bedrock:us-east-1:1:inference-profile/us.x"),
                       0);
    assert_string_equal(b.ptr,
                        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x/"
                        "converse");
    b.len = 0;
    sl_ap_bedrock_stream_path(&b, (sl_str_t)SL_STR("/model/m/converse"));
    assert_string_equal(b.ptr, "/model/m/converse-stream");
    sl_ap_buf_free(&b);
}

/* ------------------------------------------------------------- bedrock */

static void
test_bedrock_request(void **state)
{
    sl_ap_target_t conf = conf_default();
    sl_ap_req_info_t info;
    json_object *o;
    const char *r;

    (void)state;
    conf.top_k = 40;
    o = translate(sl_ap_bedrock_request, &conf, req_tools, &info);
    assert_jstr(o, "system.0.text", "You are terse.");
    assert_null(tu_get(o, "system.1.cachePoint")); /* model m1: no caching */
    json_object_put(o);

    r = "{\"model\":\"us.anthropic.claude-sonnet-4-20250514-v1:0\",\"max_tokens\":100,"
        "\"top_k\":5,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024},"
        "\"system\":[{\"type\":\"text\",\"text\":\"S\",\"cache_control\":{\"type\":\"ephemeral\"}}]"
        ","
        "\"tools\":[{\"name\":\"t\",\"input_schema\":{\"type\":\"object\"}}],"
        "\"tool_choice\":{\"type\":\"any\"},"
        "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"},{\"role\":\"user\",\"content\":[{"
        "\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\","
        "\"data\":\"iVBO\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\","
        "\"signature\":\"sig1\"},{\"type\":\"redacted_thinking\",\"data\":\"cmVk\"},"
        "{\"type\":\"tool_use\",\"id\":\"tooluse_1\",\"name\":\"t\",\"input\":{\"a\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"tooluse_1\","
        "\"content\":\"ok\",\"is_error\":true},{\"type\":\"text\",\"text\":\"go\","
        "\"cache_control\":{\"type\":\"ephemeral\"}}]}]}";
    o = translate(sl_ap_bedrock_request, &conf, r, &info);
    assert_jstr(o, "system.0.text", "S");
    assert_jstr(o, "system.1.cachePoint.type", "default");
    assert_jstr(o, "messages.0.role", "user"); /* the two user turns merged */
    assert_jstr(o, "messages.0.content.0.text", "hi");
    assert_jstr(o, "messages.0.content.1.image.format", "png");
    assert_jstr(o, "messages.0.content.1.image.source.bytes", "iVBO");
    assert_jstr(o, "messages.1.role", "assistant");
    assert_jstr(o, "messages.1.content.0.reasoningContent.reasoningText.text", "hmm");
    assert_jstr(o, "messages.1.content.0.reasoningContent.reasoningText.signature", "sig1");
    assert_jstr(o, "messages.1.content.1.reasoningContent.redactedContent", "cmVk");
    assert_jstr(o, "messages.1.content.2.toolUse.toolUseId", "tooluse_1");
    assert_int_equal(tu_int(o, "messages.1.content.2.toolUse.input.a"), 1);
    assert_jstr(o, "messages.2.content.0.toolResult.toolUseId", "tooluse_1");
    assert_jstr(o, "messages.2.content.0.toolResult.content.0.text", "ok");
    assert_jstr(o, "messages.2.content.0.toolResult.status", "error");
    assert_jstr(o, "messages.2.content.1.text", "go");
    assert_jstr(o, "messages.2.content.2.cachePoint.type", "default");
    assert_absent(o, "messages.3");
    assert_int_equal(tu_int(o, "inferenceConfig.maxTokens"), 100);
    assert_jstr(o, "toolConfig.tools.0.toolSpec.name", "t");
    assert_jstr(o, "toolConfig.tools.0.toolSpec.inputSchema.json.type", "object");
    assert_non_null(tu_get(o, "toolConfig.toolChoice.any"));
    assert_int_equal(tu_int(o, "additionalModelRequestFields.top_k"), 40); /* config wins */
    assert_int_equal(tu_int(o, "additionalModelRequestFields.thinking.budget_tokens"), 1024);
    json_object_put(o);

    assert_int_equal(refused(sl_ap_bedrock_request, &conf,
                             "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":[{"
                             "\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"http://x\""
                             "}}]}]}",
                             &info),
                     400);
    assert_non_null(strstr(info.errmsg, "base64"));
    /* the system walker (native.c) refuses a non-text block once for both
     * codecs, naming where it is */
    {
        static const struct {
            const char *body, *where;
        } bad[] = {
            {"{\"model\":\"m\",\"system\":[{\"type\":\"text\",\"text\":\"ok\"},{\"type\":"
             "\"image\",\"source\":{}}],\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
             "system: only text blocks"},
            {"{\"model\":\"m\",\"system\":[\"bare\"],\"messages\":[{\"role\":\"user\","
             "\"content\":\"x\"}]}",
             "system: only text blocks"},
            {"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":"
             "\"system\",\"content\":[{\"type\":\"text\"}]}]}",
             "messages.1.content: only text blocks"},
        };
        static const req_fn fns[] = {sl_ap_gemini_request, sl_ap_bedrock_request};

        for (size_t f = 0; f < 2; f++) {
            for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(refused(fns[f], &conf, bad[i].body, &info), 400);
                assert_non_null(strstr(info.errmsg, bad[i].where));
            }
        }
    }
    assert_int_equal(refused(sl_ap_bedrock_request, &conf,
                             "{\"model\":\"m\",\"output_config\":{\"format\":{\"type\":"
                             "\"json_schema\",\"schema\":{}}},\"messages\":[{\"role\":\"user\","
                             "\"content\":\"x\"}]}",
                             &info),
                     400);
}

static void
test_bedrock_response(void **state)
{
    static const char resp[] =
        "{\"metrics\":{\"latencyMs\":812},\"output\":{\"message\":{\"role\":\"assistant\","
        "\"content\":[{\"reasoningContent\":{\"reasoningText\":{\"text\":\"think\","
        "\"signature\":\"SIG\"}}},{\"text\":\"On it.\"},{\"toolUse\":{\"toolUseId\":"
        "\"tooluse_abc\",\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}}]}},"
        "\"stopReason\":\"tool_use\",\"usage\":{\"inputTokens\":12,\"outputTokens\":30,"
        "\"totalTokens\":142,\"cacheReadInputTokens\":100,\"cacheWriteInputTokens\":0}}";
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    sl_ap_usage_t u;
    json_object *o;

    (void)state;
    memset(&u, 0, sizeof(u));
    assert_int_equal(sl_ap_bedrock_response(resp, sizeof(resp) - 1, (sl_str_t)SL_STR("bm"),
                                            (sl_str_t)SL_STR("req42"), &d, &out, &u),
                     0);
    o = tu_parse(out.ptr, out.len);
    assert_jstr(o, "id", "msg_req42");
    assert_jstr(o, "content.0.type", "thinking");
    assert_jstr(o, "content.0.signature", "SIG");
    assert_jstr(o, "content.1.text", "On it.");
    assert_jstr(o, "content.2.id", "tooluse_abc");
    assert_jstr(o, "content.2.input.city", "Paris");
    assert_jstr(o, "stop_reason", "tool_use");
    assert_int_equal(tu_int(o, "usage.input_tokens"), 12);
    assert_int_equal(tu_int(o, "usage.cache_read_input_tokens"), 100);
    assert_int_equal(u.prompt, 112);
    assert_int_equal(u.cached, 100);
    assert_int_equal(u.completion, 30);
    json_object_put(o);
    out.len = 0;
    assert_int_equal(sl_ap_bedrock_response("{\"message\":\"x\"}", 15, (sl_str_t)SL_STR("b"),
                                            (sl_str_t)SL_STR("r"), &d, &out, &u),
                     -1);
    sl_ap_buf_free(&out);
    sl_json_free(&d);
}

static void
ev(sl_ap_buf_t *b, const char *type, const char *payload)
{
    const char *h[] = {":event-type",   type,   ":content-type", "application/json",
                       ":message-type", "event"};

    sl_ap_evs_encode(b, h, 3, payload, strlen(payload));
}

static int
count_msgs(void *ud, const sl_ap_evmsg_t *m)
{
    (*(int *)ud)++;
    assert_true(m->event_type.len > 0);
    return 0;
}

/* A frame from an AWS capture: the prelude and message CRCs are known. */
static void
test_eventstream_frames(void **state)
{
    sl_ap_buf_t b = {0};
    sl_ap_evmsg_t m;
    sl_ap_evs_t s = {0};
    const char *err = NULL;
    int n = 0;

    (void)state;
    ev(&b, "messageStart", "{\"p\":\"abcd\",\"role\":\"assistant\"}");
    /* total 16+headers+payload; prelude CRC is zlib's crc32 of 8 bytes */
    assert_int_equal(sl_ap_evs_decode((const unsigned char *)b.ptr, b.len, &m, &err), 0);
    assert_int_equal(m.event_type.len, 12);
    assert_memory_equal(m.event_type.ptr, "messageStart", 12);
    assert_int_equal(m.payload.len, strlen("{\"p\":\"abcd\",\"role\":\"assistant\"}"));
    /* the zero-length message of the event-stream spec: CRCs 0x05c248eb, 0x7d98c8ff */
    {
        static const unsigned char empty[16] = {0,    0,    0,    0x10, 0,    0,    0,    0,
                                                0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff};
        assert_int_equal(sl_ap_evs_decode(empty, 16, &m, &err), 0);
        assert_int_equal(m.payload.len, 0);
    }
    /* a flipped payload byte fails the message CRC */
    b.ptr[b.len - 6] ^= 1;
    assert_int_equal(sl_ap_evs_decode((const unsigned char *)b.ptr, b.len, &m, &err), SL_AP_EV_BAD);
    assert_string_equal(err, "event-stream message CRC mismatch");
    b.ptr[b.len - 6] ^= 1;
    /* a flipped length fails the prelude CRC */
    b.ptr[3] ^= 1;
    assert_int_equal(sl_ap_evs_feed(&s, b.ptr, b.len, count_msgs, &n), SL_AP_EV_BAD);
    assert_string_equal(s.err, "event-stream prelude CRC mismatch");
    sl_ap_evs_free(&s);
    b.ptr[3] ^= 1;
    /* byte by byte */
    memset(&s, 0, sizeof(s));
    ev(&b, "contentBlockStop", "{\"contentBlockIndex\":0}");
    for (size_t i = 0; i < b.len; i++) {
        assert_int_equal(sl_ap_evs_feed(&s, b.ptr + i, 1, count_msgs, &n), 0);
    }
    assert_int_equal(n, 2);
    assert_int_equal(s.buf.len, 0);
    sl_ap_evs_free(&s);
    /* larger than the bound */
    memset(&s, 0, sizeof(s));
    s.max = 20;
    assert_int_equal(sl_ap_evs_feed(&s, b.ptr, b.len, count_msgs, &n), SL_AP_EV_BAD);
    sl_ap_evs_free(&s);
    sl_ap_buf_free(&b);
}

static void
test_bedrock_stream(void **state)
{
    sl_ap_buf_t in = {0}, out = {0};
    sl_ap_usage_t u;
    grammar_t g;

    (void)state;
    ev(&in, "messageStart", "{\"p\":\"abc\",\"role\":\"assistant\"}");
    ev(&in, "contentBlockDelta",
       "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"text\":\"Hmm\"}},\"p\":\"a\"}");
    ev(&in, "contentBlockDelta",
       "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"signature\":\"SIG\"}}}");
    ev(&in, "contentBlockStop", "{\"contentBlockIndex\":0}");
    ev(&in, "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"Hel\"}}");
    ev(&in, "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"lo \\\"x\\\"\"}}");
    ev(&in, "contentBlockStop", "{\"contentBlockIndex\":1}");
    ev(&in, "contentBlockStart",
       "{\"contentBlockIndex\":2,\"start\":{\"toolUse\":{\"toolUseId\":\"tooluse_q\","
       "\"name\":\"get_weather\"}}}");
    ev(&in, "contentBlockDelta",
       "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"{\\\"city\\\":\"}}}");
    ev(&in, "contentBlockDelta",
       "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"\\\"Paris\\\"}\"}}}");
    ev(&in, "contentBlockStop", "{\"contentBlockIndex\":2}");
    ev(&in, "messageStop", "{\"stopReason\":\"tool_use\"}");
    ev(&in, "metadata",
       "{\"usage\":{\"inputTokens\":10,\"outputTokens\":20,\"totalTokens\":80,"
       "\"cacheReadInputTokens\":50},\"metrics\":{\"latencyMs\":100}}");
    feed_all_ways(ST_BEDROCK, in.ptr, in.len, 0, &out, &u);
    check_grammar(out.ptr, out.len, &g);
    assert_string_equal(g.summary, "start ping [thinking + sig ] [text + + ] [tool_use + + ] "
                                   "delta:tool_use:10/20 stop");
    assert_string_equal(g.content[1], "Hello \"x\"");
    assert_string_equal(g.id[2], "tooluse_q");
    assert_string_equal(g.content[2], "{\"city\":\"Paris\"}");
    assert_jstr(g.start, "message.id", "msg_req1");
    assert_int_equal(tu_int(g.last_delta, "usage.cache_read_input_tokens"), 50);
    assert_int_equal(u.prompt, 60);
    grammar_free(&g);

    /* an exception frame ends the stream */
    {
        const char *h[] = {":exception-type",  "throttlingException", ":content-type",
                           "application/json", ":message-type",       "exception"};
        const char *p = "{\"message\":\"Too many requests, please wait before trying again.\"}";
        sl_ap_buf_t x = {0};

        ev(&x, "messageStart", "{\"role\":\"assistant\"}");
        sl_ap_evs_encode(&x, h, 3, p, strlen(p));
        out.len = 0;
        feed_all_ways(ST_BEDROCK, x.ptr, x.len, 0, &out, NULL);
        check_grammar(out.ptr, out.len, &g);
        assert_string_equal(g.summary, "start ping error:rate_limit_error");
        grammar_free(&g);
        /* a corrupted frame */
        x.ptr[x.len - 1] ^= 0x55;
        out.len = 0;
        feed_all_ways(ST_BEDROCK, x.ptr, x.len, 0, &out, NULL);
        check_grammar(out.ptr, out.len, &g);
        assert_string_equal(g.summary, "start ping error:api_error");
        grammar_free(&g);
        sl_ap_buf_free(&x);
    }
    /* cut in the middle */
    out.len = 0;
    feed_all_ways(ST_BEDROCK, in.ptr, in.len / 2, 1, &out, NULL);
    check_grammar(out.ptr, out.len, &g);
    assert_non_null(strstr(g.summary, "error:api_error"));
    grammar_free(&g);
    sl_ap_buf_free(&in);
    sl_ap_buf_free(&out);
}

/* ------------------------------------ OpenAI clients (native_openai.c) */

/* What an OpenAI chunk stream said, for assertions. */
typedef struct oai_sum {
    char text[256], reasoning[256], args[256], tool_id[128], tool_name[64], finish[32];
    char error_type[64];
    int ntools, done, usage_chunk, prompt, completion, cached, nchunks;
} oai_sum_t;

static void
oai_walk(const char *p0, size_t n, oai_sum_t *s)
{
    sl_ap_buf_t b = {0};
    char *p, *e;

    memset(s, 0, sizeof(*s));
    sl_ap_buf_add(&b, p0, n);
    sl_ap_buf_addc(&b, '\0');
    for (p = b.ptr; (e = strstr(p, "\n\n")) != NULL; p = e + 2) {
        json_object *o, *v;

        assert_memory_equal(p, "data: ", 6);
        if (strncmp(p + 6, "[DONE]", 6) == 0) {
            s->done = 1;
            assert_string_equal(e + 2, "");
            break;
        }
        o = tu_parse(p + 6, (size_t)(e - p - 6));
        if ((v = tu_get(o, "error.type")) != NULL) {
            snprintf(s->error_type, sizeof(s->error_type), "%s", json_object_get_string(v));
            json_object_put(o);
            continue;
        }
        s->nchunks++;
        assert_string_equal(json_object_get_string(tu_get(o, "object")), "chat.completion.chunk");
        if (tu_get(o, "usage")) {
            s->usage_chunk = 1;
            s->prompt = tu_int(o, "usage.prompt_tokens");
            s->completion = tu_int(o, "usage.completion_tokens");
            s->cached = tu_int(o, "usage.prompt_tokens_details.cached_tokens");
        }
        if ((v = tu_get(o, "choices.0.delta.content")) != NULL) {
            strncat(s->text, json_object_get_string(v), sizeof(s->text) - strlen(s->text) - 1);
        }
        if ((v = tu_get(o, "choices.0.delta.reasoning_content")) != NULL) {
            strncat(s->reasoning, json_object_get_string(v),
                    sizeof(s->reasoning) - strlen(s->reasoning) - 1);
        }
        if ((v = tu_get(o, "choices.0.delta.tool_calls.0.id")) != NULL) {
            s->ntools++;
            if (s->ntools == 1) {
                snprintf(s->tool_id, sizeof(s->tool_id), "%s", json_object_get_string(v));
                snprintf(s->tool_name, sizeof(s->tool_name), "%s",
                         tu_str(o, "choices.0.delta.tool_calls.0.function.name"));
            }
        }
        if ((v = tu_get(o, "choices.0.delta.tool_calls.0.function.arguments")) != NULL &&
            s->ntools == 1) {
            strncat(s->args, json_object_get_string(v), sizeof(s->args) - strlen(s->args) - 1);
        }
        if ((v = tu_get(o, "choices.0.finish_reason")) != NULL &&
            json_object_get_type(v) == json_type_string) {
            snprintf(s->finish, sizeof(s->finish), "%s", json_object_get_string(v));
        }
        json_object_put(o);
    }
    sl_ap_buf_free(&b);
}

/* A provider stream through a codec's OpenAI side, fed in pieces of `step`
 * bytes (0: whole). */
static void
oai_stream(const sl_ap_codec_t *k, const char *in, size_t n, size_t step, int include_usage,
           sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    sl_ap_req_info_t info;
    void *st = calloc(1, k->stream_size);

    memset(&info, 0, sizeof(info));
    info.model = (sl_str_t)SL_STR("m1");
    info.include_usage = include_usage;
    k->stream_init(st, NULL, &info, 1 << 20);
    if (step == 0) {
        step = n ? n : 1;
    }
    for (size_t off = 0; off < n; off += step) {
        assert_true(k->stream_feed(st, in + off, n - off < step ? n - off : step, 0, out, u) != -2);
    }
    assert_true(k->stream_feed(st, NULL, 0, 1, out, u) != -2);
    k->stream_free(st);
    free(st);
}

/* The same chunks whatever the split (created is per stream: lengths and
 * the walk compared). */
static void
oai_stream_all_ways(const sl_ap_codec_t *k, const char *in, size_t n, int include_usage,
                    oai_sum_t *sum, sl_ap_usage_t *u)
{
    sl_ap_buf_t whole = {0};

    oai_stream(k, in, n, 0, include_usage, &whole, u);
    oai_walk(whole.ptr, whole.len, sum);
    for (size_t step = 1; step < n; step += step < 16 ? 1 : 37) {
        sl_ap_buf_t part = {0};
        sl_ap_usage_t u2;
        oai_sum_t s2;

        memset(&u2, 0, sizeof(u2));
        oai_stream(k, in, n, step, include_usage, &part, &u2);
        assert_int_equal(part.len, whole.len);
        oai_walk(part.ptr, part.len, &s2);
        assert_memory_equal(&s2, sum, sizeof(s2));
        assert_int_equal(u2.prompt, u->prompt);
        sl_ap_buf_free(&part);
    }
    sl_ap_buf_free(&whole);
}

static const char oai_req[] =
    "{\"model\":\"m1\",\"max_tokens\":300,\"stream\":true,\"stream_options\":{\"include_usage\":"
    "true},\"temperature\":0.25,\"stop\":\"END\","
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":"
    "\"Weather\",\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":"
    "\"string\"}}}}}],\"tool_choice\":\"required\","
    "\"messages\":[{\"role\":\"system\",\"content\":\"Be terse.\"},"
    "{\"role\":\"user\",\"content\":\"Weather in Paris?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"toolu_x_1_gsig_QUJD\","
    "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
    "\"{\\\"city\\\":\\\"Paris\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"toolu_x_1_gsig_QUJD\",\"content\":\"18C\"}]}";

static void
test_openai_client_requests(void **state)
{
    const sl_ap_codec_t *gk = sl_ap_provider_find("gemini")->codec;
    const sl_ap_codec_t *bk = sl_ap_provider_find("bedrock")->codec;
    sl_ap_target_t conf = conf_default();
    sl_ap_req_info_t info;
    json_object *o;

    (void)state;
    conf.llm_format = SL_AP_FMT_OPENAI;
    conf.prov = sl_ap_provider_find("gemini");
    o = translate(gk->from_openai, &conf, oai_req, &info);
    assert_true(info.stream);
    assert_true(info.include_usage);
    assert_int_equal(info.model.len, 2);
    assert_memory_equal(info.model.ptr, "m1", 2); /* into the client's body */
    assert_true(info.model.ptr > oai_req && info.model.ptr < oai_req + sizeof(oai_req));
    assert_jstr(o, "systemInstruction.parts.0.text", "Be terse.");
    assert_jstr(o, "contents.0.role", "user");
    assert_jstr(o, "contents.0.parts.0.text", "Weather in Paris?");
    assert_jstr(o, "contents.1.role", "model");
    assert_jstr(o, "contents.1.parts.0.functionCall.name", "get_weather");
    assert_jstr(o, "contents.1.parts.0.functionCall.args.city", "Paris");
    assert_jstr(o, "contents.1.parts.0.thoughtSignature", "QUJD"); /* carried in the id */
    assert_jstr(o, "contents.2.parts.0.functionResponse.name", "get_weather");
    assert_jstr(o, "contents.2.parts.0.functionResponse.response.result", "18C");
    assert_int_equal(tu_int(o, "generationConfig.maxOutputTokens"), 300);
    assert_true(json_object_get_double(tu_get(o, "generationConfig.temperature")) == 0.25);
    assert_jstr(o, "generationConfig.stopSequences.0", "END");
    assert_jstr(o, "tools.0.functionDeclarations.0.name", "get_weather");
    assert_jstr(o, "toolConfig.functionCallingConfig.mode", "ANY");
    json_object_put(o);

    o = translate(bk->from_openai, &conf, oai_req, &info);
    assert_true(info.stream);
    assert_jstr(o, "system.0.text", "Be terse.");
    assert_jstr(o, "messages.0.role", "user");
    assert_jstr(o, "messages.1.content.0.toolUse.toolUseId", "toolu_x_1_gsig_QUJD");
    assert_jstr(o, "messages.1.content.0.toolUse.input.city", "Paris");
    assert_jstr(o, "messages.2.content.0.toolResult.toolUseId", "toolu_x_1_gsig_QUJD");
    assert_int_equal(tu_int(o, "inferenceConfig.maxTokens"), 300);
    assert_jstr(o, "toolConfig.tools.0.toolSpec.name", "get_weather");
    assert_non_null(tu_get(o, "toolConfig.toolChoice.any"));
    json_object_put(o);

    /* the first translator's refusals reach the client */
    assert_int_equal(refused(gk->from_openai, &conf,
                             "{\"model\":\"m1\",\"n\":2,\"messages\":[{\"role\":\"user\","
                             "\"content\":\"x\"}]}",
                             &info),
                     400);
    assert_string_equal(info.errmsg, "n: only one choice can come from the gemini provider");
    /* and the second's: a tool result naming no call */
    assert_int_equal(refused(gk->from_openai, &conf,
                             "{\"model\":\"m1\",\"messages\":[{\"role\":\"user\",\"content\":"
                             "\"x\"},{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":"
                             "\"y\"}]}",
                             &info),
                     400);
    conf.model_name = "other";
    assert_int_equal(refused(bk->from_openai, &conf, oai_req, &info), 400);
    assert_non_null(strstr(info.errmsg, "cannot use own model"));
}

static void
test_openai_client_answers(void **state)
{
    const sl_ap_codec_t *gk = sl_ap_provider_find("gemini")->codec;
    const sl_ap_codec_t *bk = sl_ap_provider_find("bedrock")->codec;
    static const char br_resp[] =
        "{\"metrics\":{\"latencyMs\":3},\"output\":{\"message\":{\"role\":\"assistant\","
        "\"content\":[{\"text\":\"Hi \\\"there\\\"\"},{\"toolUse\":{\"toolUseId\":\"tooluse_1\","
        "\"name\":\"f\",\"input\":{\"a\":1}}}]}},\"stopReason\":\"tool_use\",\"usage\":{"
        "\"inputTokens\":5,\"outputTokens\":6,\"totalTokens\":11,\"cacheReadInputTokens\":2}}";
    sl_ap_target_t conf = conf_default();
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    sl_ap_usage_t u;
    json_object *o;

    (void)state;
    memset(&u, 0, sizeof(u));
    assert_int_equal(gk->decode_json(&conf, gem_resp, sizeof(gem_resp) - 1, &d, &out, &u), 0);
    o = tu_parse(out.ptr, out.len);
    assert_jstr(o, "object", "chat.completion");
    assert_jstr(o, "id", "chatcmpl-msg_abc-123");
    assert_jstr(o, "model", "gemini-2.5-flash");
    assert_jstr(o, "choices.0.message.content", "Let me check \xc3\xa9.");
    assert_jstr(o, "choices.0.message.reasoning_content", "Thinking about it");
    assert_jstr(o, "choices.0.message.tool_calls.0.id", "toolu_abc-123_1_gsig_CiQB-_xy");
    assert_jstr(o, "choices.0.message.tool_calls.0.function.arguments", "{\"city\":\"Paris\"}");
    assert_jstr(o, "choices.0.finish_reason", "tool_calls");
    assert_int_equal(tu_int(o, "usage.prompt_tokens"), 120);
    assert_int_equal(tu_int(o, "usage.prompt_tokens_details.cached_tokens"), 100);
    assert_int_equal(tu_int(o, "usage.completion_tokens"), 40);
    /* the log gets the provider's counts, reasoning included */
    assert_int_equal(u.prompt, 120);
    assert_string_equal(u.completion_details, "{\"reasoning_tokens\":10}");
    json_object_put(o);

    out.len = 0;
    memset(&u, 0, sizeof(u));
    conf.model_name = "anthropic.claude-x";
    assert_int_equal(bk->decode_json(&conf, br_resp, sizeof(br_resp) - 1, &d, &out, &u), 0);
    o = tu_parse(out.ptr, out.len);
    assert_jstr(o, "model", "anthropic.claude-x");
    assert_jstr(o, "choices.0.message.content", "Hi \"there\"");
    assert_jstr(o, "choices.0.message.tool_calls.0.id", "tooluse_1");
    assert_jstr(o, "choices.0.message.tool_calls.0.function.arguments", "{\"a\":1}");
    assert_jstr(o, "choices.0.finish_reason", "tool_calls");
    assert_int_equal(tu_int(o, "usage.prompt_tokens"), 7);
    assert_int_equal(u.prompt, 7);
    assert_int_equal(u.completion, 6);
    json_object_put(o);
    out.len = 0;
    assert_int_equal(bk->decode_json(&conf, "{\"message\":\"x\"}", 15, &d, &out, &u), -1);
    assert_int_equal(gk->decode_json(&conf, "[1]", 3, &d, &out, &u), -1);
    sl_ap_buf_free(&out);
    sl_json_free(&d);
}

static void
test_openai_client_streams(void **state)
{
    const sl_ap_codec_t *gk = sl_ap_provider_find("gemini")->codec;
    const sl_ap_codec_t *bk = sl_ap_provider_find("bedrock")->codec;
    sl_ap_buf_t in = {0};
    sl_ap_usage_t u;
    oai_sum_t s;

    (void)state;
    memset(&u, 0, sizeof(u));
    oai_stream_all_ways(gk, gfx_text, sizeof(gfx_text) - 1, 1, &s, &u);
    assert_string_equal(s.text, "Hello \"w\"\n");
    assert_string_equal(s.reasoning, "Plan: ");
    assert_string_equal(s.finish, "stop");
    assert_true(s.done);
    assert_true(s.usage_chunk);
    assert_int_equal(s.prompt, 50);
    assert_int_equal(s.cached, 20);
    assert_int_equal(u.prompt, 50);

    oai_stream_all_ways(gk, gfx_tools, sizeof(gfx_tools) - 1, 0, &s, &u);
    assert_string_equal(s.text, "Checking.");
    assert_int_equal(s.ntools, 2);
    assert_string_equal(s.tool_id, "toolu_r-9_1_gsig_AAAA");
    assert_string_equal(s.tool_name, "get_weather");
    assert_string_equal(s.args, "{\"city\":\"Paris\"}");
    assert_string_equal(s.finish, "tool_calls");
    assert_false(s.usage_chunk); /* not asked */
    assert_true(s.done);

    /* cut before the finishReason: an error chunk, no [DONE] */
    oai_stream_all_ways(gk, gfx_text, 300, 0, &s, &u);
    assert_false(s.done);
    assert_string_equal(s.error_type, "api_error");
    /* Google's error in the stream */
    {
        static const char fx[] =
            GCH("{\"text\":\"Hi\"}",
                "") "data: {\"error\":{\"code\":429,\"message\":\"Resource has been exhausted\","
                    "\"status\":\"RESOURCE_EXHAUSTED\"}}\n\n";
        oai_stream_all_ways(gk, fx, sizeof(fx) - 1, 0, &s, &u);
        assert_string_equal(s.text, "Hi");
        assert_string_equal(s.error_type, "rate_limit_error");
        assert_false(s.done);
    }

    ev(&in, "messageStart", "{\"p\":\"abc\",\"role\":\"assistant\"}");
    ev(&in, "contentBlockDelta",
       "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"text\":\"Hmm\"}},\"p\":\"a\"}");
    ev(&in, "contentBlockDelta",
       "{\"contentBlockIndex\":0,\"delta\":{\"reasoningContent\":{\"signature\":\"SIG\"}}}");
    ev(&in, "contentBlockStop", "{\"contentBlockIndex\":0}");
    ev(&in, "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"Hel\"}}");
    ev(&in, "contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"text\":\"lo\"}}");
    ev(&in, "contentBlockStop", "{\"contentBlockIndex\":1}");
    ev(&in, "contentBlockStart",
       "{\"contentBlockIndex\":2,\"start\":{\"toolUse\":{\"toolUseId\":\"tooluse_q\","
       "\"name\":\"get_weather\"}}}");
    ev(&in, "contentBlockDelta",
       "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"{\\\"city\\\":\"}}}");
    ev(&in, "contentBlockDelta",
       "{\"contentBlockIndex\":2,\"delta\":{\"toolUse\":{\"input\":\"\\\"Paris\\\"}\"}}}");
    ev(&in, "contentBlockStop", "{\"contentBlockIndex\":2}");
    ev(&in, "messageStop", "{\"stopReason\":\"tool_use\"}");
    ev(&in, "metadata",
       "{\"usage\":{\"inputTokens\":10,\"outputTokens\":20,\"totalTokens\":80,"
       "\"cacheReadInputTokens\":50},\"metrics\":{\"latencyMs\":100}}");
    memset(&u, 0, sizeof(u));
    oai_stream_all_ways(bk, in.ptr, in.len, 1, &s, &u);
    assert_string_equal(s.reasoning, "Hmm");
    assert_string_equal(s.text, "Hello");
    assert_string_equal(s.tool_id, "tooluse_q");
    assert_string_equal(s.args, "{\"city\":\"Paris\"}");
    assert_string_equal(s.finish, "tool_calls");
    assert_true(s.done);
    assert_int_equal(s.prompt, 60);
    assert_int_equal(s.completion, 20);
    assert_int_equal(u.prompt, 60);
    assert_int_equal(u.completion, 20);
    /* a corrupted frame: an error chunk */
    in.ptr[in.len - 1] ^= 0x55;
    oai_stream_all_ways(bk, in.ptr, in.len, 1, &s, &u);
    assert_string_equal(s.error_type, "api_error");
    assert_false(s.done);
    sl_ap_buf_free(&in);
}

/* --------------------------------------------------- cohere (cohere.c) */

#define CO_EV(type, json) "event: " type "\ndata: {\"type\":\"" type "\"" json "}\n\n"

static const char co_text[] = CO_EV(
    "message-start", ",\"id\":\"co-1\",\"delta\":{\"message\":{\"role\":\"assistant\"}}")
    CO_EV("content-start",
          ",\"index\":0,\"delta\":{\"message\":{\"content\":{\"type\":\"text\",\"text\":\"\"}}}")
        CO_EV("content-delta",
              ",\"index\":0,\"delta\":{\"message\":{\"content\":{\"thinking\":\"Hm.\"}}}")
            CO_EV("content-delta",
                  ",\"index\":0,\"delta\":{\"message\":{\"content\":{\"text\":\"Hel\"}}}")
                CO_EV("content-delta", ",\"index\":0,\"delta\":{\"message\":{\"content\":{"
                                       "\"text\":\"lo \\\"w\\\"\"}}}")
                    CO_EV("content-end", ",\"index\":0")
                        CO_EV("message-end",
                              ",\"delta\":{\"finish_reason\":\"COMPLETE\",\"usage\":{"
                              "\"billed_units\":{\"input_tokens\":12,\"output_tokens\":4},"
                              "\"tokens\":{\"input_tokens\":200,\"output_tokens\":6}}}");

static const char co_tools[] =
    CO_EV("message-start", ",\"id\":\"co-2\",\"delta\":{\"message\":{\"role\":\"assistant\"}}")
        CO_EV("tool-plan-delta", ",\"delta\":{\"message\":{\"tool_plan\":\"I will look.\"}}")
            CO_EV("tool-call-start",
                  ",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{\"id\":\"get_weather_x1\","
                  "\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":"
                  "\"\"}}}}")
                CO_EV("tool-call-delta", ",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{"
                                         "\"function\":{\"arguments\":\"{\\\"city\\\":\"}}}}")
                    CO_EV("tool-call-delta", ",\"index\":0,\"delta\":{\"message\":{\"tool_calls\":{"
                                             "\"function\":{\"arguments\":\"\\\"Paris\\\"}\"}}}}")
                        CO_EV("tool-call-end", ",\"index\":0")
                            CO_EV("message-end",
                                  ",\"delta\":{\"finish_reason\":\"TOOL_CALL\",\"usage\":{"
                                  "\"billed_units\":{\"input_tokens\":30,\"output_tokens\":9}}}");

static void
test_cohere(void **state)
{
    const sl_ap_codec_t *k = sl_ap_provider_find("cohere")->codec;
    sl_ap_target_t conf = conf_default();
    sl_ap_req_info_t info;
    sl_ap_usage_t u;
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    oai_sum_t s;
    json_object *o;
    static const char resp[] =
        "{\"id\":\"co-9\",\"finish_reason\":\"TOOL_CALL\",\"message\":{\"role\":\"assistant\","
        "\"tool_plan\":\"I will look.\",\"tool_calls\":[{\"id\":\"get_weather_x1\",\"type\":"
        "\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":"
        "\\\"Paris\\\"}\"}}]},\"usage\":{\"billed_units\":{\"input_tokens\":30,\"output_tokens\":"
        "9},\"tokens\":{\"input_tokens\":300,\"output_tokens\":12}}}";

    (void)state;
    conf.llm_format = SL_AP_FMT_OPENAI;
    conf.prov = sl_ap_provider_find("cohere");
    conf.provider = SL_AP_PROV_COHERE;
    conf.top_k = 40;
    o = translate(k->from_openai, &conf, oai_req, &info);
    assert_true(info.stream);
    assert_true(info.include_usage);
    assert_jstr(o, "model", "m1");
    assert_jstr(o, "messages.0.role", "system");
    assert_jstr(o, "messages.2.role", "assistant");
    assert_absent(o, "messages.2.content"); /* null: not sent */
    assert_jstr(o, "messages.2.tool_calls.0.function.name", "get_weather");
    assert_jstr(o, "messages.3.tool_call_id", "toolu_x_1_gsig_QUJD");
    assert_jstr(o, "stop_sequences.0", "END");
    assert_jstr(o, "tool_choice", "REQUIRED");
    assert_jstr(o, "tools.0.function.name", "get_weather");
    assert_int_equal(tu_int(o, "max_tokens"), 300);
    assert_int_equal(tu_int(o, "k"), 40);
    assert_absent(o, "stream_options");
    assert_absent(o, "top_k");
    json_object_put(o);
    assert_int_equal(refused(k->from_openai, &conf,
                             "{\"model\":\"m1\",\"n\":2,\"messages\":[{\"role\":\"user\","
                             "\"content\":\"x\"}]}",
                             &info),
                     400);

    memset(&u, 0, sizeof(u));
    assert_int_equal(k->decode_json(&conf, resp, sizeof(resp) - 1, &d, &out, &u), 0);
    o = tu_parse(out.ptr, out.len);
    assert_jstr(o, "id", "chatcmpl-co-9");
    assert_jstr(o, "choices.0.message.reasoning_content", "I will look.");
    assert_jstr(o, "choices.0.message.tool_calls.0.id", "get_weather_x1");
    assert_jstr(o, "choices.0.finish_reason", "tool_calls");
    assert_int_equal(tu_int(o, "usage.prompt_tokens"), 30); /* billed units, as Kong */
    assert_int_equal(u.completion, 9);
    json_object_put(o);
    out.len = 0;
    assert_int_equal(
        k->decode_json(&conf, "{\"id\":\"x\",\"message\":\"invalid api token\"}", 40, &d, &out, &u),
        -1);
    sl_ap_buf_free(&out);
    sl_json_free(&d);

    memset(&u, 0, sizeof(u));
    oai_stream_all_ways(k, co_text, sizeof(co_text) - 1, 1, &s, &u);
    assert_string_equal(s.text, "Hello \"w\"");
    assert_string_equal(s.reasoning, "Hm.");
    assert_string_equal(s.finish, "stop");
    assert_true(s.done);
    assert_int_equal(s.prompt, 12);
    assert_int_equal(u.prompt, 12);
    assert_int_equal(u.completion, 4);
    oai_stream_all_ways(k, co_tools, sizeof(co_tools) - 1, 0, &s, &u);
    assert_string_equal(s.reasoning, "I will look.");
    assert_string_equal(s.tool_id, "get_weather_x1");
    assert_string_equal(s.args, "{\"city\":\"Paris\"}");
    assert_string_equal(s.finish, "tool_calls");
    assert_false(s.usage_chunk);
    assert_true(s.done);
    /* cut before message-end */
    oai_stream_all_ways(k, co_text, sizeof(co_text) - 60, 0, &s, &u);
    assert_false(s.done);
    assert_string_equal(s.error_type, "api_error");
    /* the model's own error */
    {
        static const char fx[] = CO_EV("message-start", ",\"id\":\"c\"")
            CO_EV("message-end", ",\"delta\":{\"finish_reason\":\"ERROR\"}");
        oai_stream_all_ways(k, fx, sizeof(fx) - 1, 0, &s, &u);
        assert_false(s.done);
        assert_string_equal(s.error_type, "api_error");
    }
}

/* -------------------------------------------------------------- sigv4 */

static void
test_sigv4(void **state)
{
    sl_ap_buf_t auth = {0}, cu = {0};
    char date[17];
    sl_ap_sigv4_t in;

    (void)state;
    /* AWS's own test suite, get-vanilla */
    memset(&in, 0, sizeof(in));
    in.access_key = "AKIDEXAMPLE";
    in.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    in.region = "us-east-1";
    in.service = "service";
    in.method = (sl_str_t)SL_STR("GET");
    in.host = (sl_str_t)SL_STR("example.amazonaws.com");
    in.path = (sl_str_t)SL_STR("/");
    in.now = 1440938160;
    assert_int_equal(sl_ap_sigv4_sign(&in, &auth, date), 0);
    assert_string_equal(date, "20150830T123600Z");
    assert_string_equal(
        auth.ptr, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                  "aws4_request, SignedHeaders=host;x-amz-date, "
                  "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");

    /* a Bedrock call: host with its port, ':' of the model id encoded
     * twice in the canonical URI, a session token, the body hashed */
    auth.len = 0;
    in.service = "bedrock";
    in.method = (sl_str_t)SL_STR("POST");
    in.host = (sl_str_t)SL_STR("127.0.0.1:8123");
    in.path = (sl_str_t)SL_STR("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse");
    in.content_type = (sl_str_t)SL_STR("application/json");
    in.body = (sl_str_t)SL_STR("{\"messages\":[]}");
    in.session_token = "SESSIONTOKEN";
    assert_int_equal(sl_ap_sigv4_sign(&in, &auth, date), 0);
    assert_non_null(strstr(auth.ptr,
                           "SignedHeaders=content-type;host;x-amz-date;"
                           "x-amz-security-token, Signature="
                           "29062468f0ebd7bd53f74931bb8ed800529207e9feefe7f09d45d0aae00369c2"));
    sl_ap_sigv4_canonical_uri(&cu, in.path);
    assert_string_equal(cu.ptr, "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse");
    sl_ap_buf_free(&cu);
    sl_ap_buf_free(&auth);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemini_request),
        cmocka_unit_test(test_gemini_request_refusals),
        cmocka_unit_test(test_gemini_response),
        cmocka_unit_test(test_gemini_stream),
        cmocka_unit_test(test_gemini_paths),
        cmocka_unit_test(test_bedrock_request),
        cmocka_unit_test(test_bedrock_response),
        cmocka_unit_test(test_eventstream_frames),
        cmocka_unit_test(test_bedrock_stream),
        cmocka_unit_test(test_sigv4),
        cmocka_unit_test(test_openai_client_requests),
        cmocka_unit_test(test_openai_client_answers),
        cmocka_unit_test(test_openai_client_streams),
        cmocka_unit_test(test_cohere),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
