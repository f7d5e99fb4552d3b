/* fuzz_gemini.c - libFuzzer harness for ai-proxy's Gemini stream decoder
 * (streamGenerateContent SSE -> Anthropic events), its whole-answer
 * decoder and the usage reader of a preserved answer.  The first input
 * byte picks how the rest is split into feeds. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "native.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_ap_gstream_t s;
    sl_ap_buf_t out;
    sl_ap_usage_t u;
    sl_jdoc_t d;
    size_t step;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    memset(&out, 0, sizeof(out));
    sl_ap_gstream_init(&s, (sl_str_t){"gemini-2.5-flash", 16}, 100);
    s.sse.max = 1u << 16;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        sl_ap_gstream_feed(&s, (const char *)data + off, n, 0, 0, &out);
        if (out.len > (1u << 20))
            out.len = 0;
        if (off % 7 == 3)
            sl_ap_gstream_keepalive(&s, &out);
    }
    sl_ap_gstream_feed(&s, NULL, 0, 1, step & 1, &out);
    sl_ap_gstream_free(&s);
    out.len = 0;
    memset(&u, 0, sizeof(u));
    memset(&d, 0, sizeof(d));
    sl_ap_gemini_response((const char *)data, size, (sl_str_t){"g", 1}, (sl_str_t){"r1", 2}, &d,
                          &out, &u);
    sl_json_free(&d);
    /* a preserved answer read for its statistics: whole, and streamed */
    memset(&u, 0, sizeof(u));
    sl_ap_native_usage_body(SL_AP_WIRE_GEMINI, (const char *)data, size, &d, &u);
    sl_json_free(&d);
    {
        sl_ap_nwatch_t *w = sl_ap_nwatch_new(SL_AP_WIRE_GEMINI, 1u << 16);

        for (size_t off = 0; w && off < size; off += step) {
            sl_ap_nwatch_feed(w, (const char *)data + off, size - off < step ? size - off : step,
                              0);
        }
        if (w)
            sl_ap_nwatch_feed(w, NULL, 0, 1);
        sl_ap_nwatch_free(w);
    }
    sl_ap_buf_free(&out);
    return 0;
}
