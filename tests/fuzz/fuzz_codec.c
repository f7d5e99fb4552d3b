/* fuzz_codec.c - libFuzzer harness for the codecs' OpenAI client side
 * (an OpenAI chat client of a provider with another dialect): for each
 * provider whose codec has one (anthropic; gemini and bedrock through
 * Anthropic, native_openai.c; cohere's v2 Chat API) the input is used as the provider's stream
 * (split into feeds by the first byte, so byte boundaries inside events
 * get exercised), as its whole answer for decode_json, and as an OpenAI
 * chat request for from_openai. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"

static void
one_codec(const char *provider, const uint8_t *data, size_t size, size_t step, int include_usage)
{
    const sl_ap_provider_t *p = sl_ap_provider_find(provider);
    const sl_ap_codec_t *k = p->codec;
    sl_ap_req_info_t info;
    sl_ap_usage_t u;
    sl_ap_buf_t out = {0};
    sl_jdoc_t d = {0};
    sl_ap_target_t t;
    void *st;

    memset(&info, 0, sizeof(info));
    memset(&u, 0, sizeof(u));
    memset(&t, 0, sizeof(t));
    t.prov = p;
    t.provider = p->id;
    t.llm_format = SL_AP_FMT_OPENAI;
    t.max_tokens = t.top_k = -1;
    t.temperature = t.top_p = -1;
    t.input_cost = t.output_cost = t.cache_read_cost = t.cache_write_cost = -1;
    info.include_usage = include_usage;
    info.model = (sl_str_t){"model-x", 7};
    st = calloc(1, k->stream_size);
    k->stream_init(st, &t, &info, 4096);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        k->stream_feed(st, (const char *)data + off, n, 0, &out, &u);
        if (out.len > (1u << 20))
            out.len = 0;
    }
    k->stream_feed(st, NULL, 0, 1, &out, &u);
    k->stream_free(st);
    free(st);

    out.len = 0;
    k->decode_json(&t, (const char *)data, size, &d, &out, &u);

    out.len = 0;
    memset(&info, 0, sizeof(info));
    k->from_openai(&t, (const char *)data, size, &d, &out, &info);
    sl_json_free(&d);
    sl_ap_buf_free(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const providers[] = {"anthropic", "gemini", "bedrock", "cohere"};
    size_t step;
    int include_usage;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 64 + 1;
    include_usage = data[0] & 1;
    data++;
    size--;
    for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]); i++)
        one_codec(providers[i], data, size, step, include_usage);
    return 0;
}
