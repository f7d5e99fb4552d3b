/* fuzz_anthropic.c - libFuzzer harness for ai-proxy's request and response
 * translators: Anthropic Messages request -> OpenAI chat (and the OpenAI
 * passthrough), count_tokens, and OpenAI response / error -> Anthropic.
 * Oracle: whenever the Anthropic request translates, the result is JSON
 * (json-c, an independent parser, accepts all of it) with a string model
 * and a messages array. */

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"
#include "schema_host.h"

static void
conf_err(void *ud, const char *field, const char *msg)
{
    abort(); /* the fixed config below must parse */
}

static void
check_chat_request(const sl_ap_buf_t *out)
{
    json_tokener *tok = json_tokener_new();
    json_object *o, *v;

    if (tok == NULL)
        abort();
    o = json_tokener_parse_ex(tok, out->ptr ? out->ptr : "", (int)out->len);
    if (o == NULL || json_tokener_get_error(tok) != json_tokener_success ||
        json_tokener_get_parse_end(tok) != out->len || !json_object_is_type(o, json_type_object) ||
        !json_object_object_get_ex(o, "model", &v) || !json_object_is_type(v, json_type_string) ||
        !json_object_object_get_ex(o, "messages", &v) || !json_object_is_type(v, json_type_array)) {
        fprintf(stderr, "translated request fails the oracle: %.*s\n", (int)out->len,
                out->ptr ? out->ptr : "");
        abort();
    }
    json_object_put(o);
    json_tokener_free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_ap_conf_t *conf;
    static const char cj[] = "{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
                             "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\","
                             "\"options\":{\"max_tokens\":8192,\"temperature\":1.0}}}";
    sl_jdoc_t doc;
    sl_ap_buf_t out;
    sl_ap_req_info_t info;
    int64_t tokens;

    sl_ap_conf_host(sl_ap_test_host());
    if (conf == NULL && sl_ap_conf_parse(cj, sizeof(cj) - 1, &conf, conf_err, NULL) != 0)
        abort();
    memset(&doc, 0, sizeof(doc));
    memset(&out, 0, sizeof(out));
    memset(&info, 0, sizeof(info));
    if (sl_ap_anthropic_request(&conf->t, (const char *)data, size, &doc, &out, &info) == 0)
        check_chat_request(&out);
    out.len = 0;
    memset(&info, 0, sizeof(info));
    sl_ap_openai_request(&conf->t, (const char *)data, size, &doc, &out, &info);
    memset(&info, 0, sizeof(info));
    sl_ap_count_tokens(conf, (const char *)data, size, &doc, &tokens, &info);
    out.len = 0;
    sl_ap_usage_t u;
    memset(&u, 0, sizeof(u));
    sl_ap_anthropic_response((const char *)data, size, (sl_str_t){"qwen-plus", 9}, &doc, &out, &u);
    out.len = 0;
    sl_ap_anthropic_error(size ? 400 + data[0] % 200 : 500, (const char *)data, size, &doc, &out);
    sl_ap_buf_free(&out);
    sl_json_free(&doc);
    return 0;
}
