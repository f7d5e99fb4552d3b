/* test_request.c - Anthropic Messages -> OpenAI chat request translation. */

#include "test_util.h"

static const char *howto_conf =
    "{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
    "\"auth\":{\"header_name\":\"Authorization\",\"header_value\":\"Bearer sk-test\"},"
    "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\","
    "\"options\":{\"max_tokens\":8192,\"temperature\":1.0}},"
    "\"logging\":{\"log_statistics\":true,\"log_payloads\":false}}";

static void
conf_err(void *ud, const char *field, const char *msg)
{
    fprintf(stderr, "conf error %s: %s\n", field, msg);
    (void)ud;
}

static sl_ap_conf_t *
mkconf(const char *json)
{
    sl_ap_conf_t *c = NULL;

    assert_int_equal(sl_ap_conf_parse(json, strlen(json), &c, conf_err, NULL), 0);
    return c;
}

typedef struct {
    sl_ap_conf_t *conf;
    sl_jdoc_t doc;
    sl_ap_buf_t out;
    sl_ap_req_info_t info;
    json_object *j;
} tx_t;

static int
run(tx_t *t, const char *body)
{
    int rc;

    memset(&t->info, 0, sizeof(t->info));
    t->out.len = 0;
    rc = sl_ap_anthropic_request(&t->conf->t, body, strlen(body), &t->doc, &t->out, &t->info);
    if (t->j) {
        json_object_put(t->j);
        t->j = NULL;
    }
    if (rc == 0) {
        t->j = tu_parse(t->out.ptr, t->out.len);
    }
    return rc;
}

static int
setup(void **state)
{
    tx_t *t = calloc(1, sizeof(*t));

    t->conf = mkconf(howto_conf);
    *state = t;
    return 0;
}

static int
teardown(void **state)
{
    tx_t *t = *state;

    json_object_put(t->j);
    sl_json_free(&t->doc);
    sl_ap_buf_free(&t->out);
    sl_ap_conf_free(t->conf);
    free(t);
    return 0;
}

static void
test_system_and_options(void **state)
{
    tx_t *t = *state;

    assert_int_equal(
        run(t, "{\"model\":\"qwen-plus\",\"max_tokens\":32000,\"temperature\":0.2,\"stream\":true,"
               "\"system\":[{\"type\":\"text\",\"text\":\"You are Claude "
               "Code.\",\"cache_control\":{\"type\":\"ephemeral\"}},"
               "{\"type\":\"text\",\"text\":\"Be \\\"brief\\\".\\n\"}],"
               "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
               "\"context_management\":{\"edits\":[]},\"safeguards\":{},\"output_config\":{"
               "\"effort\":\"high\"},"
               "\"metadata\":{\"user_id\":\"{\\\"device\\\":\\\"x\\\"}\"},\"thinking\":{\"type\":"
               "\"adaptive\",\"display\":\"summarized\"}}"),
        0);
    assert_jstr(t->j, "model", "qwen-plus");
    assert_jstr(t->j, "messages.0.role", "system");
    assert_jstr(t->j, "messages.0.content", "You are Claude Code.\n\nBe \"brief\".\n");
    assert_jstr(t->j, "messages.1.role", "user");
    assert_jstr(t->j, "messages.1.content", "hi");
    assert_int_equal(tu_int(t->j, "max_tokens"), 8192); /* config wins */
    assert_true(json_object_get_double(tu_get(t->j, "temperature")) == 1.0);
    assert_true(json_object_get_boolean(tu_get(t->j, "stream")));
    assert_true(json_object_get_boolean(tu_get(t->j, "stream_options.include_usage")));
    assert_true(json_object_get_boolean(tu_get(t->j, "enable_thinking")));
    assert_absent(t->j, "thinking_budget");
    assert_jstr(t->j, "user", "{\"device\":\"x\"}");
    assert_absent(t->j, "context_management");
    assert_absent(t->j, "safeguards");
    assert_absent(t->j, "output_config");
    assert_absent(t->j, "metadata");
    assert_absent(t->j, "thinking");
    assert_absent(t->j, "tools");
    assert_true(t->info.stream);
    assert_true(t->info.input_estimate > 0);
}

static void
test_system_string_and_inlist_system(void **state)
{
    tx_t *t = *state;

    assert_int_equal(
        run(t, "{\"model\":\"qwen-plus\",\"max_tokens\":10,\"system\":\"top\","
               "\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
               "{\"role\":\"system\",\"content\":\"mid string\"},"
               "{\"role\":\"assistant\",\"content\":\"b\"},"
               "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"x\"},{\"type\":"
               "\"text\",\"text\":\"y\"}]},"
               "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"c1\"},{\"type\":"
               "\"text\",\"text\":\"c2\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}"),
        0);
    /* in-list system messages are hoisted into the leading one, in order */
    assert_jstr(t->j, "messages.0.role", "system");
    assert_jstr(t->j, "messages.0.content", "top\n\nmid string\n\nx\n\ny");
    assert_jstr(t->j, "messages.1.role", "user");
    assert_jstr(t->j, "messages.1.content", "a");
    assert_jstr(t->j, "messages.2.role", "assistant");
    assert_jstr(t->j, "messages.2.content", "b");
    assert_jstr(t->j, "messages.3.role", "user");
    assert_jstr(t->j, "messages.3.content", "c1\n\nc2");
    assert_int_equal(json_object_array_length(tu_get(t->j, "messages")), 4);
    assert_false(json_object_get_boolean(tu_get(t->j, "stream")));
    assert_absent(t->j, "stream_options");
    /* non-streaming: DashScope refuses thinking there */
    assert_false(json_object_get_boolean(tu_get(t->j, "enable_thinking")));
}

static void
test_images(void **state)
{
    tx_t *t = *state;

    assert_int_equal(run(t,
                         "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":["
                         "{\"type\":\"text\",\"text\":\"what is it\"},"
                         "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":"
                         "\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
                         "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://"
                         "example.com/a.jpg\"}}]}]}"),
                     0);
    assert_jstr(t->j, "messages.0.content.0.type", "text");
    assert_jstr(t->j, "messages.0.content.0.text", "what is it");
    assert_jstr(t->j, "messages.0.content.1.type", "image_url");
    assert_jstr(t->j, "messages.0.content.1.image_url.url", "data:image/png;base64,iVBORw0KGgo=");
    assert_jstr(t->j, "messages.0.content.2.image_url.url", "https://example.com/a.jpg");
}

static void
test_tool_round_trip(void **state)
{
    tx_t *t = *state;

    assert_int_equal(
        run(t,
            "{\"model\":\"qwen-plus\",\"stream\":true,\"messages\":["
            "{\"role\":\"user\",\"content\":\"weather?\"},"
            "{\"role\":\"assistant\",\"content\":["
            "  {\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"sig\"},"
            "  {\"type\":\"text\",\"text\":\"Checking.\"},"
            "  "
            "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\",\"input\":{"
            "\"city\": \"Paris\",\n \"n\":[1,2]}},"
            "  {\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"Read\",\"input\":{}}]},"
            "{\"role\":\"user\",\"content\":["
            "  "
            "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"sunny\",\"cache_"
            "control\":{\"type\":\"ephemeral\"}},"
            "  {\"type\":\"tool_result\",\"tool_use_id\":\"call_2\",\"is_error\":true,\"content\":["
            "     {\"type\":\"text\",\"text\":\"no such "
            "file\"},{\"type\":\"text\",\"text\":\"line2\"},"
            "     "
            "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/"
            "jpeg\",\"data\":\"AAAA\"}}]},"
            "  {\"type\":\"text\",\"text\":\"continue\"}]}],"
            "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Get "
            "weather\",\"input_schema\":{\"$schema\":\"http://json-schema.org/draft-07/"
            "schema#\",\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\","
            "\"pattern\":\"^[A-Z]\"}},\"required\":[\"city\"],\"additionalProperties\":false}},"
            "{\"name\":\"Read\",\"input_schema\":{\"type\":\"object\"},\"defer_loading\":true,"
            "\"cache_control\":{\"type\":\"ephemeral\"}},"
            "{\"type\":\"bash_20250124\",\"name\":\"bash\"}],"
            "\"tool_choice\":{\"type\":\"auto\",\"disable_parallel_tool_use\":true}}"),
        0);
    /* assistant: text + tool_calls, thinking dropped */
    assert_jstr(t->j, "messages.1.role", "assistant");
    assert_jstr(t->j, "messages.1.content", "Checking.");
    assert_jstr(t->j, "messages.1.tool_calls.0.id", "toolu_1");
    assert_jstr(t->j, "messages.1.tool_calls.0.type", "function");
    assert_jstr(t->j, "messages.1.tool_calls.0.function.name", "get_weather");
    {
        const char *args = tu_str(t->j, "messages.1.tool_calls.0.function.arguments");
        json_object *a = tu_parse(args, strlen(args));
        assert_jstr(a, "city", "Paris");
        assert_int_equal(tu_int(a, "n.1"), 2);
        json_object_put(a);
    }
    assert_jstr(t->j, "messages.1.tool_calls.1.function.arguments", "{}");
    /* tool results in order, then the user message with the tool image */
    assert_jstr(t->j, "messages.2.role", "tool");
    assert_jstr(t->j, "messages.2.tool_call_id", "toolu_1");
    assert_jstr(t->j, "messages.2.content", "sunny");
    assert_jstr(t->j, "messages.3.role", "tool");
    assert_jstr(t->j, "messages.3.tool_call_id", "call_2");
    assert_jstr(t->j, "messages.3.content", "Error: no such file\nline2");
    assert_jstr(t->j, "messages.4.role", "user");
    assert_jstr(t->j, "messages.4.content.0.image_url.url", "data:image/jpeg;base64,AAAA");
    assert_jstr(t->j, "messages.4.content.1.text", "continue");
    assert_int_equal(json_object_array_length(tu_get(t->j, "messages")), 5);
    /* tools: server tool dropped, schema verbatim */
    assert_int_equal(json_object_array_length(tu_get(t->j, "tools")), 2);
    assert_jstr(t->j, "tools.0.type", "function");
    assert_jstr(t->j, "tools.0.function.name", "get_weather");
    assert_jstr(t->j, "tools.0.function.description", "Get weather");
    assert_jstr(t->j, "tools.0.function.parameters.$schema",
                "http://json-schema.org/draft-07/schema#");
    assert_jstr(t->j, "tools.0.function.parameters.properties.city.pattern", "^[A-Z]");
    assert_absent(t->j, "tools.1.defer_loading");
    assert_absent(t->j, "tools.1.function.defer_loading");
    assert_jstr(t->j, "tool_choice", "auto");
    assert_false(json_object_get_boolean(tu_get(t->j, "parallel_tool_calls")));
}

static void
test_tool_result_only_and_assistant_null_content(void **state)
{
    tx_t *t = *state;

    assert_int_equal(
        run(t,
            "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"},"
            "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"a\",\"name\":"
            "\"f\",\"input\":{\"q\":1}}]},"
            "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"a\"}]}]}"),
        0);
    assert_true(json_object_is_type(tu_get(t->j, "messages.1.content"), json_type_null));
    assert_jstr(t->j, "messages.2.role", "tool");
    assert_jstr(t->j, "messages.2.content", "");
    assert_int_equal(json_object_array_length(tu_get(t->j, "messages")), 3);
}

static void
test_tool_choice_variants(void **state)
{
    tx_t *t = *state;
    const char *tools1 = "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}]";
    const char *tools2 =
        "\"tools\":[{\"name\":\"f\",\"input_schema\":{}},{\"name\":\"g\",\"input_schema\":{}}]";
    char body[512];

    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,"
             "\"tool_choice\":{\"type\":\"any\"}}",
             tools1);
    assert_int_equal(run(t, body), 0);
    assert_jstr(t->j, "tool_choice.type", "function");
    assert_jstr(t->j, "tool_choice.function.name", "f");
    assert_true(json_object_get_boolean(tu_get(t->j, "parallel_tool_calls")));

    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,"
             "\"tool_choice\":{\"type\":\"any\"}}",
             tools2);
    assert_int_equal(run(t, body), 0);
    assert_jstr(t->j, "tool_choice", "auto"); /* dashscope rejects "required" */

    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,"
             "\"tool_choice\":{\"type\":\"tool\",\"name\":\"g\"}}",
             tools2);
    assert_int_equal(run(t, body), 0);
    assert_jstr(t->j, "tool_choice.function.name", "g");

    snprintf(body, sizeof(body),
             "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,"
             "\"tool_choice\":{\"type\":\"none\"}}",
             tools2);
    assert_int_equal(run(t, body), 0);
    assert_jstr(t->j, "tool_choice", "none");

    /* empty tools: dropped with the tool_choice */
    assert_int_equal(run(t, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[],"
                            "\"tool_choice\":{\"type\":\"auto\"}}"),
                     0);
    assert_absent(t->j, "tools");
    assert_absent(t->j, "tool_choice");
    assert_absent(t->j, "parallel_tool_calls");
    assert_jstr(t->j, "model", "qwen-plus"); /* absent model: configured one */
}

static void
test_openai_provider_any(void **state)
{
    sl_ap_conf_t *c =
        mkconf("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
               "\"model\":{\"provider\":\"openai\",\"name\":\"m\",\"options\":{\"top_k\":5}}}");
    tx_t *t = *state;
    sl_ap_conf_t *saved = t->conf;

    t->conf = c;
    assert_int_equal(
        run(t,
            "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
            "\"tools\":[{\"name\":\"f\",\"input_schema\":{}},{\"name\":\"g\",\"input_schema\":{}}],"
            "\"tool_choice\":{\"type\":\"any\"},\"thinking\":{\"type\":\"enabled\",\"budget_"
            "tokens\":2048}}"),
        0);
    assert_jstr(t->j, "tool_choice", "required");
    assert_absent(t->j, "top_k");
    assert_absent(t->j, "enable_thinking");
    t->conf = saved;
    sl_ap_conf_free(c);
}

static void
test_stop_and_thinking(void **state)
{
    tx_t *t = *state;

    assert_int_equal(run(t,
                         "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
                         "\"stop_sequences\":[\"END\",\"\\n\\nHuman:\"],\"top_p\":0.5,\"top_k\":40,"
                         "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":4096}}"),
                     0);
    assert_jstr(t->j, "stop.0", "END");
    assert_jstr(t->j, "stop.1", "\n\nHuman:");
    assert_true(json_object_get_double(tu_get(t->j, "top_p")) == 0.5);
    assert_int_equal(tu_int(t->j, "top_k"), 40);
    assert_true(json_object_get_boolean(tu_get(t->j, "enable_thinking")));
    assert_int_equal(tu_int(t->j, "thinking_budget"), 4096);

    assert_int_equal(run(t, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
                            "\"stop_sequences\":[],\"thinking\":{\"type\":\"disabled\"}}"),
                     0);
    assert_absent(t->j, "stop");
    assert_false(json_object_get_boolean(tu_get(t->j, "enable_thinking")));

    assert_int_equal(
        run(t, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true}"), 0);
    assert_absent(t->j, "enable_thinking");
}

static void
test_output_format(void **state)
{
    tx_t *t = *state;

    assert_int_equal(
        run(t, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,"
               "\"thinking\":{\"type\":\"adaptive\"},"
               "\"output_config\":{\"effort\":\"low\",\"format\":{\"type\":\"json_schema\","
               "\"schema\":{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\"}}}}}}"),
        0);
    assert_jstr(t->j, "response_format.type", "json_schema");
    assert_jstr(t->j, "response_format.json_schema.schema.properties.a.type", "string");
    assert_non_null(tu_str(t->j, "response_format.json_schema.name"));
    /* JSON mode and thinking cannot be combined on DashScope */
    assert_false(json_object_get_boolean(tu_get(t->j, "enable_thinking")));

    /* a model without json_schema (qwen3.5-plus): json_object, the schema in
     * the system prompt - never a silent drop */
    {
        sl_ap_conf_t *saved = t->conf;
        sl_ap_conf_t *any = mkconf("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
                                   "\"model\":{\"provider\":\"dashscope\"}}");
        const char *sys;

        t->conf = any;
        assert_int_equal(
            run(t, "{\"model\":\"qwen3.5-plus\",\"system\":\"Be brief.\",\"messages\":[{\"role\":"
                   "\"user\",\"content\":\"x\"}],\"output_config\":{\"format\":{\"type\":"
                   "\"json_schema\",\"schema\":{\"type\":\"object\",\"required\":[\"title\"]}}}}"),
            0);
        assert_jstr(t->j, "response_format.type", "json_object");
        sys = tu_str(t->j, "messages.0.content");
        assert_non_null(sys);
        assert_non_null(strstr(sys, "Be brief.\n\nRespond with one json object only"));
        assert_non_null(strstr(sys, "{\"type\":\"object\",\"required\":[\"title\"]}"));
        assert_int_equal(run(t, "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\","
                                "\"content\":\"x\"}],\"output_config\":{\"format\":{\"type\":"
                                "\"xml\"}}}"),
                         -1);
        assert_string_equal(t->info.errmsg,
                            "output_config.format.type: only json_schema is supported");
        t->conf = saved;
        sl_ap_conf_free(any);
    }
}

static void
test_errors(void **state)
{
    tx_t *t = *state;

    assert_int_equal(
        run(t,
            "{\"model\":\"claude-sonnet-4\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"),
        -1);
    assert_int_equal(t->info.status, 400);
    assert_string_equal(t->info.errmsg, "cannot use own model - must be: qwen-plus");

    assert_int_equal(run(t, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}"), -1);
    assert_int_equal(t->info.status, 400);
    assert_non_null(strstr(t->info.errmsg, "invalid JSON"));

    assert_int_equal(run(t, "[1]"), -1);
    assert_int_equal(run(t, "{\"model\":\"qwen-plus\"}"), -1);
    assert_non_null(strstr(t->info.errmsg, "messages"));

    assert_int_equal(run(t, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\","
                            "\"source\":{\"type\":\"base64\",\"media_type\":\"application/"
                            "pdf\",\"data\":\"AA\"}}]}]}"),
                     -1);
    assert_int_equal(t->info.status, 400);
    assert_non_null(strstr(t->info.errmsg, "document"));

    assert_int_equal(run(t, "{\"messages\":[{\"role\":\"tool\",\"content\":\"x\"}]}"), -1);
    assert_int_equal(run(t, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\","
                            "\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}"),
                     -1);
    assert_int_equal(t->info.status, 400);
}

static void
test_streaming_deny_always(void **state)
{
    tx_t *t = *state;
    sl_ap_conf_t *saved = t->conf;
    sl_ap_conf_t *deny =
        mkconf("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
               "\"response_streaming\":\"deny\",\"model\":{\"provider\":\"dashscope\"}}");
    sl_ap_conf_t *always =
        mkconf("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
               "\"response_streaming\":\"always\",\"model\":{\"provider\":\"dashscope\"}}");

    t->conf = deny;
    assert_int_equal(run(t, "{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":\"user\","
                            "\"content\":\"x\"}]}"),
                     -1);
    assert_string_equal(t->info.errmsg, "response streaming is not enabled for this LLM");
    /* no configured model: the request's one is used; none at all is an error */
    assert_int_equal(run(t, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), -1);
    assert_string_equal(t->info.errmsg,
                        "model parameter not found in request, nor in gateway configuration");
    t->conf = always;
    assert_int_equal(
        run(t, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}"), 0);
    assert_true(t->info.stream);
    assert_jstr(t->j, "model", "m");
    t->conf = saved;
    sl_ap_conf_free(deny);
    sl_ap_conf_free(always);
}

/* Keys are compared after unescaping, and a policy key given twice is
 * refused: the gateway and the provider must read the same request. */
static void
test_escaped_and_duplicate_keys(void **state)
{
    tx_t *t = *state;
    sl_ap_conf_t *saved = t->conf;
    sl_ap_conf_t *deny =
        mkconf("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
               "\"response_streaming\":\"deny\",\"model\":{\"provider\":\"dashscope\","
               "\"name\":\"qwen-plus\",\"model_alias\":\"claude-x\"}}");
    sl_ap_conf_t *oa = mkconf("{\"route_type\":\"llm/v1/chat\",\"response_streaming\":\"deny\","
                              "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\"}}");
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    sl_ap_req_info_t info;
    const char *b;

    t->conf = deny;
    assert_int_equal(run(t, "{\"str\\u0065am\":true,\"messages\":[{\"role\":\"user\","
                            "\"content\":\"x\"}]}"),
                     -1);
    assert_string_equal(t->info.errmsg, "response streaming is not enabled for this LLM");
    assert_int_equal(run(t, "{\"stream\":false,\"stream\":true,\"messages\":[{\"role\":\"user\","
                            "\"content\":\"x\"}]}"),
                     -1);
    assert_int_equal(t->info.status, 400);
    assert_non_null(strstr(t->info.errmsg, "'stream' more than once"));
    assert_int_equal(run(t, "{\"max_tokens\":5,\"max_tok\\u0065ns\":9,\"messages\":[{\"role\":"
                            "\"user\",\"content\":\"x\"}]}"),
                     -1);
    assert_non_null(strstr(t->info.errmsg, "'max_tokens' more than once"));
    assert_int_equal(run(t, "{\"model\":\"qwen-max\",\"messages\":[{\"role\":\"user\","
                            "\"content\":\"x\"}]}"),
                     -1);
    assert_string_equal(t->info.errmsg, "cannot use own model - must be: qwen-plus");
    /* model_alias: the client's name for the configured model */
    assert_int_equal(run(t, "{\"model\":\"claude-x\",\"messages\":[{\"role\":\"user\","
                            "\"content\":\"x\"}]}"),
                     0);
    assert_jstr(t->j, "model", "qwen-plus");
    t->conf = saved;

    b = "{\"model\":\"qwen-plus\",\"mod\\u0065l\":\"qwen-max\",\"messages\":[]}";
    memset(&info, 0, sizeof(info));
    assert_int_equal(sl_ap_openai_request(&oa->t, b, strlen(b), &d, &out, &info), -1);
    assert_non_null(strstr(info.errmsg, "'model' more than once"));
    b = "{\"model\":\"qwen-plus\",\"\\u0073tream\":true,\"messages\":[]}";
    assert_int_equal(sl_ap_openai_request(&oa->t, b, strlen(b), &d, &out, &info), -1);
    assert_string_equal(info.errmsg, "response streaming is not enabled for this LLM");
    sl_json_free(&d);
    sl_ap_buf_free(&out);
    sl_ap_conf_free(deny);
    sl_ap_conf_free(oa);
}

static char *
big_text(size_t n)
{
    char *p = malloc(n + 1);

    memset(p, 'a', n);
    p[n] = '\0';
    return p;
}

/* Count "cache_control" markers in the translated request. */
static int
count_marks(json_object *j)
{
    json_object *msgs = tu_get(j, "messages");
    size_t i, k;
    int n = 0;

    for (i = 0; i < json_object_array_length(msgs); i++) {
        json_object *c = tu_get(json_object_array_get_idx(msgs, i), "content");

        if (c == NULL || !json_object_is_type(c, json_type_array)) {
            continue;
        }
        for (k = 0; k < json_object_array_length(c); k++) {
            n += tu_get(json_object_array_get_idx(c, k), "cache_control") != NULL;
        }
    }
    return n;
}

/* cache_control markers reach DashScope on the equivalent parts: system
 * (split right after the marked block, the text unchanged when the parts are
 * joined), user text, tool results; the last 4 above the minimum size. */
static void
test_cache_markers(void **state)
{
    tx_t *t = *state;
    char *a = big_text(6000), *body;
    size_t cap = 40000;
    int rc;

    body = malloc(cap);
    snprintf(
        body, cap,
        "{\"model\":\"qwen-plus\",\"max_tokens\":32000,\"system\":["
        "{\"type\":\"text\",\"text\":\"tiny\",\"cache_control\":{\"type\":\"ephemeral\"}},"
        "{\"type\":\"text\",\"text\":\"%s\",\"cache_control\":{\"type\":\"ephemeral\"}},"
        "{\"type\":\"text\",\"text\":\"tail\"}],"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q1\"},"
        "{\"type\":\"text\",\"text\":\"q2\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":"
        "\"Bash\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\","
        "\"content\":\"%s\",\"cache_control\":{\"type\":\"ephemeral\"}},"
        "{\"type\":\"text\",\"text\":\"go on\",\"cache_control\":{\"type\":\"ephemeral\"}}]}]}",
        a, a);
    rc = run(t, body);
    assert_int_equal(rc, 0);
    /* "tiny" is under 1024 tokens of prefix: dropped; 4 kept of 5 */
    assert_int_equal(t->info.cache_marks, 4);
    assert_int_equal(count_marks(t->j), 4);
    /* the parts joined are the old one string: "tiny\n\n<a>" + "\n\ntail" */
    assert_int_equal(strncmp(tu_str(t->j, "messages.0.content.0.text"), "tiny\n\naaa", 9), 0);
    assert_int_equal(strlen(tu_str(t->j, "messages.0.content.0.text")), 6 + 6000);
    assert_jstr(t->j, "messages.0.content.0.cache_control.type", "ephemeral");
    assert_jstr(t->j, "messages.0.content.1.text", "\n\ntail");
    assert_absent(t->j, "messages.0.content.1.cache_control");
    assert_jstr(t->j, "messages.1.content.0.text", "q1\n\nq2");
    assert_jstr(t->j, "messages.1.content.0.cache_control.type", "ephemeral");
    assert_jstr(t->j, "messages.3.role", "tool");
    assert_jstr(t->j, "messages.3.content.0.cache_control.type", "ephemeral");
    assert_jstr(t->j, "messages.4.content.0.text", "go on");
    assert_jstr(t->j, "messages.4.content.0.cache_control.type", "ephemeral");
    /* the model's bound: qwen-plus takes at most 32768 ... but the config fixes 8192 */
    assert_int_equal(tu_int(t->j, "max_tokens"), 8192);
    free(body);
    free(a);
}

static void
test_cache_markers_off_and_clamp(void **state)
{
    tx_t *t = *state;
    sl_ap_conf_t *saved = t->conf;
    sl_ap_conf_t *off = mkconf(
        "{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"model\":{\"provider\":"
        "\"dashscope\",\"options\":{\"dashscope\":{\"models\":{\"qwen-plus\":{\"cache\":false}}}}}"
        "}");
    char *a = big_text(8000), body[9000];

    snprintf(body, sizeof(body),
             "{\"model\":\"%%s\",\"max_tokens\":64000,\"stream\":true,\"thinking\":{\"type\":"
             "\"adaptive\"},\"system\":[{\"type\":\"text\",\"text\":"
             "\"%s\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"messages\":[{\"role\":"
             "\"user\",\"content\":\"hi\"}]}",
             a);
    {
        char b2[9100];

        t->conf = off;
        snprintf(b2, sizeof(b2), body, "qwen-plus");
        assert_int_equal(run(t, b2), 0);
        assert_int_equal(t->info.cache_marks, 0);
        assert_true(json_object_is_type(tu_get(t->j, "messages.0.content"), json_type_string));
        assert_int_equal(tu_int(t->j, "max_tokens"), 32768); /* clamped to the model's bound */
        assert_true(json_object_get_boolean(tu_get(t->j, "enable_thinking")));
        snprintf(b2, sizeof(b2), body, "qwen3-coder-plus");
        assert_int_equal(run(t, b2), 0);
        assert_false(json_object_get_boolean(tu_get(t->j, "enable_thinking")));
        assert_int_equal(t->info.cache_marks, 1);
        assert_int_equal(tu_int(t->j, "max_tokens"), 64000);
        snprintf(b2, sizeof(b2), body, "qwen-max");
        assert_int_equal(run(t, b2), 0);
        assert_int_equal(t->info.cache_marks, 0); /* not an explicit-cache model */
        assert_int_equal(tu_int(t->j, "max_tokens"), 8192);
        snprintf(b2, sizeof(b2), body, "someone-elses-model");
        assert_int_equal(run(t, b2), 0);
        assert_int_equal(t->info.cache_marks, 0);
        assert_int_equal(tu_int(t->j, "max_tokens"), 64000);
    }
    t->conf = saved;
    sl_ap_conf_free(off);
    free(a);
}

/* Claude Code's WebSearch (Anthropic's web_search server tool): refused
 * without the route's opt-in, DashScope's enable_search with it. */
static void
test_web_search(void **state)
{
    tx_t *t = *state;
    sl_ap_conf_t *saved = t->conf;
    sl_ap_conf_t *on = mkconf("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
                              "\"model\":{\"provider\":\"dashscope\",\"options\":{\"dashscope\":{"
                              "\"web_search\":true,\"search_options\":{\"search_strategy\":"
                              "\"max\"}}}}}");
    const char *b =
        "{\"model\":\"%s\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\","
        "\"text\":\"Perform a web search for the query: sluice \\\"gateway\\\"\"}]}],"
        "\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\",\"max_uses\":8}]}";
    char body[512];

    snprintf(body, sizeof(body), b, "qwen-plus");
    assert_int_equal(run(t, body), -1);
    assert_int_equal(t->info.status, 400);
    assert_non_null(strstr(t->info.errmsg, "model.options.dashscope.web_search: true"));
    t->conf = on;
    assert_int_equal(run(t, body), 0);
    assert_true(json_object_get_boolean(tu_get(t->j, "enable_search")));
    assert_jstr(t->j, "search_options.search_strategy", "max");
    assert_absent(t->j, "tools");
    assert_true(t->info.web_search);
    assert_string_equal(t->info.search_query,
                        "Perform a web search for the query: sluice \\\"gateway\\\"");
    snprintf(body, sizeof(body), b, "qwen-max");
    assert_int_equal(run(t, body), -1);
    assert_non_null(strstr(t->info.errmsg, "web search is not available with model qwen-max"));
    t->conf = saved;
    sl_ap_conf_free(on);
}

static void
test_openai_format(void **state)
{
    sl_ap_conf_t *c = mkconf("{\"route_type\":\"llm/v1/chat\",\"auth\":{\"param_name\":\"key\","
                             "\"param_value\":\"s3\",\"param_location\":\"body\"},"
                             "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\","
                             "\"options\":{\"max_tokens\":100,\"temperature\":0.5}}}");
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    sl_ap_req_info_t info;
    const char *b =
        "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"max_tokens\":5,\"stream\":true,\"key\":\"client\",\"seed\":3}";
    json_object *j;

    (void)state;
    memset(&info, 0, sizeof(info));
    assert_int_equal(sl_ap_openai_request(&c->t, b, strlen(b), &d, &out, &info), 0);
    j = tu_parse(out.ptr, out.len);
    assert_jstr(j, "model", "qwen-plus");
    assert_int_equal(tu_int(j, "max_tokens"), 100);
    assert_int_equal(tu_int(j, "seed"), 3);
    assert_jstr(j, "key", "s3");
    assert_jstr(j, "messages.0.content", "hi");
    assert_true(info.stream);
    json_object_put(j);

    out.len = 0;
    b = "{\"model\":\"gpt-4o\",\"messages\":[]}";
    assert_int_equal(sl_ap_openai_request(&c->t, b, strlen(b), &d, &out, &info), -1);
    assert_string_equal(info.errmsg, "cannot use own model - must be: qwen-plus");
    sl_json_free(&d);
    sl_ap_buf_free(&out);
    sl_ap_conf_free(c);
}

static void
test_count_tokens(void **state)
{
    sl_jdoc_t d = {0};
    sl_ap_req_info_t info;
    int64_t n = 0, n2 = 0;
    const char *b1 =
        "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello, world\"}]}";
    const char *b2 =
        "{\"model\":\"qwen-plus\",\"system\":\"You are a helpful assistant that answers "
        "questions.\","
        "\"messages\":[{\"role\":\"user\",\"content\":\"Hello, world\"}],"
        "\"tools\":[{\"name\":\"get_weather\",\"description\":\"Get the weather for a city\","
        "\"input_schema\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}}}}]}";

    sl_ap_conf_t *c = mkconf(howto_conf);

    (void)state;
    memset(&info, 0, sizeof(info));
    assert_int_equal(sl_ap_count_tokens(c, b1, strlen(b1), &d, &n, &info), 0);
    assert_true(n >= 5 && n <= 20);
    assert_int_equal(sl_ap_count_tokens(c, b2, strlen(b2), &d, &n2, &info), 0);
    assert_true(n2 > n + 20);
    assert_int_equal(sl_ap_count_tokens(c, "{", 1, &d, &n, &info), -1);
    assert_int_equal(info.status, 400);
    /* refused as /v1/messages refuses it */
    const char *bad[] = {
        "{\"model\":\"qwen-plus\",\"messages\":[]}",
        "{\"model\":\"claude-opus-4-1\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
        "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
        "\"text\",\"text\":5}]}]}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&info, 0, sizeof(info));
        assert_int_equal(sl_ap_count_tokens(c, bad[i], strlen(bad[i]), &d, &n, &info), -1);
        assert_int_equal(info.status, 400);
        assert_true(info.errmsg[0] != '\0');
    }
    /* CJK: about one token per character */
    assert_int_equal(sl_ap_text_tokens("\xe4\xbd\xa0\xe5\xa5\xbd", 6), 2);
    assert_int_equal(sl_ap_text_tokens("abcdefgh", 8), 2);
    sl_json_free(&d);
    sl_ap_conf_free(c);
}

/* scrub.c: the credential (without its scheme word) is replaced wherever
 * it appears; values under 8 bytes are not secrets to scrub. */
static void
test_scrub(void **state)
{
    sl_ap_target_t t = {0};
    sl_ap_buf_t b = {0};
    sl_str_t s[SL_AP_MAX_SECRETS];

    (void)state;
    t.header_value = "Bearer sk-0123456789";
    t.param_value = "AIzaSyKEY42";
    assert_int_equal(sl_ap_secrets(&t, s), 2);
    assert_int_equal(s[0].len, 13);
    assert_memory_equal(s[0].ptr, "sk-0123456789", 13);
    const char *in = "token=\"sk-0123456789\" key=AIzaSyKEY42&x=sk-0123456789";
    sl_ap_scrub_into(&t, in, strlen(in), &b);
    assert_string_equal(b.ptr, "token=\"[REDACTED]\" key=[REDACTED]&x=[REDACTED]");
    sl_ap_buf_free(&b);
    SL_AP_BUF_LIT(&b, "no secret here");
    assert_int_equal(sl_ap_scrub_buf(&t, &b), 0);
    assert_string_equal(b.ptr, "no secret here");
    b.len = 0;
    SL_AP_BUF_LIT(&b, "Bearer sk-0123456789");
    assert_int_equal(sl_ap_scrub_buf(&t, &b), 0);
    assert_string_equal(b.ptr, "Bearer [REDACTED]");
    sl_ap_buf_free(&b);
    /* no scheme word: the whole value; short values: nothing */
    t.header_value = "sk-ant-api03-xyz";
    t.param_value = "short";
    assert_int_equal(sl_ap_secrets(&t, s), 1);
    assert_int_equal(s[0].len, 16);
    t.header_value = "Bearer abc";
    assert_int_equal(sl_ap_secrets(&t, s), 0);
    assert_false(sl_ap_has_secret(&t, "Bearer abc short", 16));
}

/* The requests the real Claude Code CLI sent (tests/fixtures/claude-code):
 * each must translate, end with a user or tool message, and carry none of
 * the fields DashScope does not know. */
static void
test_claude_code_fixtures(void **state)
{
    static const char *const names[] = {
        "first-turn",
        "first-turn-auth-token",
        "first-turn-nonessential",
        "nonstream-fallback",
        "tool-first-turn",
        "tool-result-turn",
        "thinking-tool-result-turn",
        "retry-after-400-1",
        "retry-after-400-4",
        "retry-after-400-6",
    };
    static const char *const forbidden[] = {
        "system", "thinking", "context_management", "output_config", "metadata", "safeguards",
    };
    const char *dir = getenv("SL_CLAUDE_FIXTURES");
    tx_t *t = *state;
    size_t i, k;

    if (dir == NULL) {
        skip();
    }
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char path[512], *body;
        FILE *f;
        long n;
        json_object *msgs, *last, *tools;
        const char *role;

        snprintf(path, sizeof(path), "%s/%s.body.json", dir, names[i]);
        f = fopen(path, "rb");
        assert_non_null(f);
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        body = malloc((size_t)n + 1);
        assert_int_equal(fread(body, 1, (size_t)n, f), (size_t)n);
        body[n] = '\0';
        fclose(f);
        if (run(t, body) != 0) {
            fail_msg("%s: %s", names[i], t->info.errmsg);
        }
        msgs = tu_get(t->j, "messages");
        assert_jstr(t->j, "messages.0.role", "system");
        last = json_object_array_get_idx(msgs, json_object_array_length(msgs) - 1);
        role = tu_str(last, "role");
        assert_true(strcmp(role, "user") == 0 || strcmp(role, "tool") == 0);
        for (k = 0; k < sizeof(forbidden) / sizeof(forbidden[0]); k++) {
            assert_absent(t->j, forbidden[k]);
        }
        assert_int_equal(tu_int(t->j, "max_tokens"), 8192);
        tools = tu_get(t->j, "tools");
        assert_non_null(tools);
        for (k = 0; k < json_object_array_length(tools); k++) {
            json_object *tool = json_object_array_get_idx(tools, k);
            assert_jstr(tool, "type", "function");
            assert_non_null(tu_get(tool, "function.parameters"));
            assert_absent(tool, "defer_loading");
            assert_absent(tool, "function.defer_loading");
        }
        assert_true(t->info.input_estimate > 1000);
        free(body);
    }
}

/* The number writers against printf: "%.15g" (config options written into
 * the request) and "%lld" (the usage counts of an answer), on the values
 * the fast paths take and on their edges, where printf takes over. */
static void
test_number_writers(void **state)
{
    static const double g[] = {0.0,
                               -0.0,
                               1.0,
                               -1.0,
                               8192.0,
                               0.5,
                               0.7,
                               1e-5,
                               1e14,
                               -1e14,
                               999999999999999.0,
                               1e15,
                               -1e15,
                               1e16,
                               2e300,
                               1.5e15,
                               123456789012.0,
                               0.1,
                               1e308,
                               -7.25,
                               4097.0,
                               1e-300,
                               9007199254740992.0,
                               -999999999999999.0};
    static const int64_t n[] = {0,   1,    -1,        9,         10,        99,
                                100, 8192, 123456789, INT64_MAX, INT64_MIN, -9223372036854775807LL};
    char want[64];
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(g) / sizeof(g[0]); k++) {
        sl_ap_buf_t b = {0};

        sl_ap_buf_add_g15(&b, g[k]);
        snprintf(want, sizeof(want), "%.15g", g[k]);
        assert_non_null(b.ptr);
        assert_string_equal(b.ptr, want);
        sl_ap_buf_free(&b);
    }
    for (k = 0; k < sizeof(n) / sizeof(n[0]); k++) {
        sl_ap_buf_t b = {0};

        sl_ap_buf_add_i64(&b, n[k]);
        snprintf(want, sizeof(want), "%lld", (long long)n[k]);
        assert_non_null(b.ptr);
        assert_string_equal(b.ptr, want);
        sl_ap_buf_free(&b);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_system_and_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_system_string_and_inlist_system, setup, teardown),
        cmocka_unit_test_setup_teardown(test_images, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tool_result_only_and_assistant_null_content, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_tool_choice_variants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_provider_any, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_and_thinking, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_format, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming_deny_always, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escaped_and_duplicate_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_markers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_web_search, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_markers_off_and_clamp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_claude_code_fixtures, setup, teardown),
        cmocka_unit_test(test_openai_format),
        cmocka_unit_test(test_count_tokens),
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_number_writers),
    };

    sl_ap_conf_host(sl_ap_test_host()); /* the host's schema checker */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
