/* fuzz_otel.c - libFuzzer harness for the opentelemetry plugin's parsers
 * (plugins/opentelemetry/propagation.c): traceparent, b3 single, Jaeger's
 * uber-trace-id, bare trace/span ids, and the finish-reason scanner run
 * over the answer in pieces.  Oracles: a parsed context has non-zero ids
 * and re-encodes to the input's digits (case aside); the scanner gives the
 * same result however the input is cut, and its values stay bounded and
 * NUL-terminated. */

#include <assert.h>
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "otel.h"

static int
nonzero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 1;
    return 0;
}

static void
same_hex(const char *in, const uint8_t *id, size_t n)
{
    char h[32];
    otel_hex(id, n, h);
    for (size_t i = 0; i < 2 * n; i++)
        assert(tolower((unsigned char)in[i]) == h[i]);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_str_t v = {(const char *)data, size};
    otel_tctx_t t;
    uint8_t tid[16], sid[8];
    otel_req_t a, b;
    size_t cut;

    memset(&t, 0, sizeof(t));
    if (otel_parse_traceparent(v, &t)) {
        assert(size >= 55 && nonzero(t.trace_id, 16) && nonzero(t.span_id, 8));
        same_hex(v.ptr + 3, t.trace_id, 16);
        same_hex(v.ptr + 36, t.span_id, 8);
        assert(t.sampled == 0 || t.sampled == 1);
    }
    memset(&t, 0, sizeof(t));
    if (otel_parse_b3_single(v, &t))
        assert(nonzero(t.trace_id, 16) && nonzero(t.span_id, 8));
    memset(&t, 0, sizeof(t));
    if (otel_parse_uber_trace_id(v, &t))
        assert(nonzero(t.trace_id, 16) && nonzero(t.span_id, 8));
    if (otel_parse_trace_id(v, tid)) {
        assert(size == 16 || size == 32);
        same_hex(v.ptr, tid + 16 - size / 2, size / 2);
    }
    if (otel_parse_span_id(v, sid))
        same_hex(v.ptr, sid, 8);

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    otel_scan_finish(&a, v.ptr, size);
    cut = size ? data[0] % (size + 1) : 0;
    otel_scan_finish(&b, v.ptr, cut);
    for (size_t i = cut; i < size; i++) /* the rest one byte at a time */
        otel_scan_finish(&b, v.ptr + i, 1);
    assert(a.n_finish == b.n_finish && a.n_finish <= OTEL_MAX_FINISH);
    for (int i = 0; i < a.n_finish; i++) {
        assert(memchr(a.finish[i], '\0', sizeof(a.finish[i])) != NULL);
        assert(strcmp(a.finish[i], b.finish[i]) == 0);
    }
    return 0;
}
