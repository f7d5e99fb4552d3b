/* fuzz_eventstream.c - libFuzzer harness for ai-proxy's AWS event-stream
 * frame decoder, the Bedrock ConverseStream translator and its usage reader.  Raw input is
 * mostly refused by the CRC checks, so half the runs re-frame the input
 * with valid CRCs first (the JSON and header parsing behind the checks get
 * exercised too).  The first byte picks the feed size and the mode. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "native.h"

static const char *const types[] = {"messageStart",     "contentBlockStart", "contentBlockDelta",
                                    "contentBlockStop", "messageStop",       "metadata"};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_ap_bstream_t s;
    sl_ap_buf_t out, framed;
    const char *in;
    size_t step, n;

    if (size == 0)
        return 0;
    step = (size_t)data[0] % 64 + 1;
    memset(&framed, 0, sizeof(framed));
    if (data[0] & 0x80) {
        /* split the input at '\n' into payloads of valid frames */
        size_t i = 1, k = 0;

        while (i < size) {
            const char *p = (const char *)data + i;
            const char *nl = memchr(p, '\n', size - i);
            size_t len = nl ? (size_t)(nl - p) : size - i;
            const char *h[] = {":event-type", types[k % 6], ":message-type",
                               (k % 11 == 10) ? "exception" : "event"};

            sl_ap_evs_encode(&framed, h, 2, p, len);
            k++;
            i += len + 1;
        }
        in = framed.ptr ? framed.ptr : "";
        n = framed.len;
    } else {
        in = (const char *)data + 1;
        n = size - 1;
    }
    memset(&out, 0, sizeof(out));
    sl_ap_bstream_init(&s, (sl_str_t){"anthropic.claude", 16}, 100);
    s.evs.max = 1u << 16;
    for (size_t off = 0; off < n; off += step) {
        size_t m = n - off < step ? n - off : step;
        sl_ap_bstream_feed(&s, in + off, m, 0, 0, &out);
        if (out.len > (1u << 20))
            out.len = 0;
        if (off % 7 == 3)
            sl_ap_bstream_keepalive(&s, &out);
    }
    sl_ap_bstream_feed(&s, NULL, 0, 1, step & 1, &out);
    sl_ap_bstream_free(&s);
    {
        /* a preserved ConverseStream read for its statistics */
        sl_ap_nwatch_t *w = sl_ap_nwatch_new(SL_AP_WIRE_BEDROCK, 1u << 16);

        for (size_t off = 0; w && off < n; off += step)
            sl_ap_nwatch_feed(w, in + off, n - off < step ? n - off : step, 0);
        sl_ap_nwatch_free(w);
    }
    sl_ap_buf_free(&out);
    sl_ap_buf_free(&framed);
    return 0;
}
