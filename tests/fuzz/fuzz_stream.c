/* fuzz_stream.c - libFuzzer harness for ai-proxy's streaming translator
 * (OpenAI SSE chunks -> Anthropic events) and the OpenAI stream watcher.
 * The first input byte picks how the rest is split into feeds, so byte
 * boundaries inside events get exercised. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_ap_stream_t s;
    sl_ap_watch_t w;
    sl_ap_buf_t out;
    size_t step;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    memset(&out, 0, sizeof(out));
    sl_ap_stream_init(&s, (sl_str_t){"qwen-plus", 9}, 100);
    memset(&w, 0, sizeof(w));
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        sl_ap_stream_feed(&s, (const char *)data + off, n, 0, 0, &out);
        sl_ap_watch_feed(&w, (const char *)data + off, n, 0);
        if (out.len > (1u << 20))
            out.len = 0;
        if (off % 7 == 3)
            sl_ap_stream_keepalive(&s, &out);
    }
    sl_ap_stream_feed(&s, NULL, 0, 1, step & 1, &out);
    sl_ap_watch_feed(&w, NULL, 0, 1);
    sl_ap_stream_free(&s);
    sl_ap_watch_free(&w);
    sl_ap_buf_free(&out);
    return 0;
}
