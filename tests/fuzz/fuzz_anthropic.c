/* fuzz_anthropic.c - libFuzzer harness for ai-proxy's request and response
 * translators: Anthropic Messages request -> OpenAI chat (and the OpenAI
 * passthrough), count_tokens, and OpenAI response / error -> Anthropic. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"

static void
conf_err(void *ud, const char *field, const char *msg)
{
    abort(); /* the fixed config below must parse */
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

    if (conf == NULL && sl_ap_conf_parse(cj, sizeof(cj) - 1, &conf, conf_err, NULL) != 0)
        abort();
    memset(&doc, 0, sizeof(doc));
    memset(&out, 0, sizeof(out));
    memset(&info, 0, sizeof(info));
    sl_ap_anthropic_request(conf, (const char *)data, size, &doc, &out, &info);
    out.len = 0;
    memset(&info, 0, sizeof(info));
    sl_ap_openai_request(conf, (const char *)data, size, &doc, &out, &info);
    memset(&info, 0, sizeof(info));
    sl_ap_count_tokens((const char *)data, size, &doc, &tokens, &info);
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
