/* fuzz_codec.c - libFuzzer harness for the codecs' OpenAI client side
 * (an OpenAI chat client of a provider with another dialect): for each
 * provider whose codec has one (anthropic; gemini and bedrock through
 * Anthropic, native_openai.c; cohere's v2 Chat API) the input is used as the provider's stream
 * (split into feeds by the first byte, so byte boundaries inside events
 * get exercised), as its whole answer for decode_json, and as an OpenAI
 * chat request for from_openai.  The embeddings dialects (embeddings.c)
 * get it as an OpenAI embeddings request and as each one's answer. */

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

static void
embeddings(const uint8_t *data, size_t size, int base64, size_t n)
{
    static const int provs[] = {SL_AP_PROV_GEMINI, SL_AP_PROV_BEDROCK, SL_AP_PROV_COHERE};
    sl_ap_target_t t;
    sl_ap_req_info_t info;
    sl_ap_buf_t out = {0};
    sl_ap_usage_t u;
    sl_jdoc_t d = {0};

    for (size_t i = 0; i < sizeof(provs) / sizeof(provs[0]); i++) {
        memset(&t, 0, sizeof(t));
        t.provider = provs[i];
        t.prov = sl_ap_provider_get(provs[i]);
        t.provider_name = (char *)t.prov->name;
        t.route_type = SL_AP_ROUTE_EMBEDDINGS;
        t.max_tokens = t.top_k = -1;
        t.temperature = t.top_p = -1;
        t.embed_dims = -1;
        memset(&info, 0, sizeof(info));
        out.len = 0;
        sl_ap_embed_request(&t, (const char *)data, size, &d, &out, &info);
    }
    for (int e = SL_AP_EMBED_NONE; e <= SL_AP_EMBED_COHERE; e++) {
        memset(&info, 0, sizeof(info));
        info.model = (sl_str_t){"m", 1};
        info.embed = e;
        info.embed_base64 = base64;
        info.embed_n = (int)n;
        memset(&u, 0, sizeof(u));
        out.len = 0;
        sl_ap_embed_response(&info, -1, (const char *)data, size, &d, &out, &u);
    }
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
    embeddings(data, size, include_usage, step % 4 + 1);
    return 0;
}
