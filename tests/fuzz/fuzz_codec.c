/* fuzz_codec.c - libFuzzer harness for the anthropic provider's codec
 * (OpenAI client <-> Anthropic): the input is used as an Anthropic SSE
 * stream (split into feeds by the first byte, so byte boundaries inside
 * events get exercised), as an Anthropic message for decode_json, and as
 * an OpenAI chat request for from_openai. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_ap_codec_t *k = sl_ap_provider_find("anthropic")->codec;
    sl_ap_req_info_t info;
    sl_ap_usage_t u;
    sl_ap_buf_t out = {0};
    sl_jdoc_t d = {0};
    sl_ap_target_t t;
    void *st;
    size_t step;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 64 + 1;
    memset(&info, 0, sizeof(info));
    memset(&u, 0, sizeof(u));
    info.include_usage = data[0] & 1;
    info.model = (sl_str_t){"claude-x", 8};
    data++;
    size--;
    st = calloc(1, k->stream_size);
    k->stream_init(st, NULL, &info, 4096);
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
    k->decode_json(NULL, (const char *)data, size, &d, &out, &u);

    memset(&t, 0, sizeof(t));
    t.prov = sl_ap_provider_find("anthropic");
    t.provider = SL_AP_PROV_ANTHROPIC;
    t.max_tokens = t.top_k = -1;
    t.temperature = t.top_p = -1;
    out.len = 0;
    memset(&info, 0, sizeof(info));
    k->from_openai(&t, (const char *)data, size, &d, &out, &info);
    sl_json_free(&d);
    sl_ap_buf_free(&out);
    return 0;
}
