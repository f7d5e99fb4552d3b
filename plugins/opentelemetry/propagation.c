/* propagation.c - trace context in HTTP headers, as Kong's propagation
 * module reads and writes it (kong/observability/tracing/propagation/):
 *
 *   w3c        traceparent: 00-<trace 32 hex>-<span 16 hex>-<flags 2 hex>
 *   b3         b3: <trace>-<span>[-<sampled>[-<parent>]] or b3: 0|1|d, else
 *              X-B3-TraceId, X-B3-SpanId, X-B3-Sampled, X-B3-Flags
 *   jaeger     uber-trace-id: <trace>:<span>:<parent>:<flags>
 *   ot         ot-tracer-traceid, ot-tracer-spanid, ot-tracer-sampled
 *
 * Invalid headers are ignored (a new trace starts), never an error.
 * 64-bit trace ids are kept as 128-bit ones, left-padded with zeros. */

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "otel.h"

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* n hex digits (n <= 2 * cap) right-aligned into cap bytes; 1 if valid and
 * not all zero. */
static int
hex_id(const char *p, size_t n, uint8_t *out, size_t cap)
{
    int nonzero = 0;

    if (n == 0 || n > 2 * cap)
        return 0;
    memset(out, 0, cap);
    for (size_t i = 0; i < n; i++) {
        int v = hexval(p[n - 1 - i]);
        if (v < 0)
            return 0;
        nonzero |= v;
        out[cap - 1 - i / 2] |= (uint8_t)(i % 2 ? v << 4 : v);
    }
    return nonzero != 0;
}

int
otel_parse_trace_id(sl_str_t v, uint8_t out[16])
{
    return (v.len == 16 || v.len == 32) && hex_id(v.ptr, v.len, out, 16);
}

int
otel_parse_span_id(sl_str_t v, uint8_t out[8])
{
    return v.len == 16 && hex_id(v.ptr, v.len, out, 8);
}

/* Every byte's two hex digits, "00" to "ff", end to end: one two-byte copy
 * per byte (ids are written several times per request). */
#define HEX_ROW(h)                                                                                 \
    h "0" h "1" h "2" h "3" h "4" h "5" h "6" h "7" h "8" h "9" h "a" h "b" h "c" h "d" h "e" h "f"
static const char hex_pairs[] = HEX_ROW("0") HEX_ROW("1") HEX_ROW("2") HEX_ROW("3") HEX_ROW("4")
    HEX_ROW("5") HEX_ROW("6") HEX_ROW("7") HEX_ROW("8") HEX_ROW("9") HEX_ROW("a") HEX_ROW("b")
        HEX_ROW("c") HEX_ROW("d") HEX_ROW("e") HEX_ROW("f");

void
otel_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hex_pairs + 2 * p[i], 2);
}

/* W3C trace-context: version 00 is exactly 55 characters; a later version
 * has at least those and, if longer, a '-' after them (the rest ignored);
 * version ff is invalid. */
int
otel_parse_traceparent(sl_str_t v, otel_tctx_t *out)
{
    const char *p = v.ptr;
    int ver, f1, f2;

    if (v.len < 55 || p[2] != '-' || p[35] != '-' || p[52] != '-')
        return 0;
    if (hexval(p[0]) < 0 || hexval(p[1]) < 0)
        return 0;
    ver = hexval(p[0]) * 16 + hexval(p[1]);
    if (ver == 0xff || (ver == 0 && v.len != 55) || (ver != 0 && v.len > 55 && p[55] != '-'))
        return 0;
    if (!hex_id(p + 3, 32, out->trace_id, 16) || !hex_id(p + 36, 16, out->span_id, 8))
        return 0;
    f1 = hexval(p[53]);
    f2 = hexval(p[54]);
    if (f1 < 0 || f2 < 0)
        return 0;
    out->have_span = 1;
    out->sampled = f2 & 1;
    out->debug = 0;
    out->fmt = OTEL_FMT_W3C;
    return 1;
}

static int
b3_sampled(sl_str_t s, int *sampled, int *debug)
{
    if (SL_STR_EQ(s, "1") || SL_STR_EQ(s, "true"))
        *sampled = 1;
    else if (SL_STR_EQ(s, "0") || SL_STR_EQ(s, "false"))
        *sampled = 0;
    else if (SL_STR_EQ(s, "d"))
        *sampled = *debug = 1;
    else
        return 0;
    return 1;
}

/* b3 single header: {trace}-{span}[-{sampled}[-{parent}]]; a bare
 * sampling state (0, 1, d) carries no context and is ignored here. */
int
otel_parse_b3_single(sl_str_t v, otel_tctx_t *out)
{
    sl_str_t part[4];
    size_t n = 0, start = 0;

    for (size_t i = 0; i <= v.len && n < 4; i++) {
        if (i == v.len || v.ptr[i] == '-') {
            part[n++] = (sl_str_t){v.ptr + start, i - start};
            start = i + 1;
        }
    }
    if (n < 2 || start <= v.len)
        return 0; /* too few or too many parts */
    if (!otel_parse_trace_id(part[0], out->trace_id) || !otel_parse_span_id(part[1], out->span_id))
        return 0;
    out->sampled = -1;
    out->debug = 0;
    if (n >= 3 && !b3_sampled(part[2], &out->sampled, &out->debug))
        return 0;
    if (n == 4) {
        uint8_t parent[8];
        if (!otel_parse_span_id(part[3], parent))
            return 0;
    }
    out->have_span = 1;
    out->fmt = OTEL_FMT_B3;
    return 1;
}

/* Jaeger: {trace}:{span}:{parent}:{flags}, ids of up to 32 / 16 hex
 * digits, flags in hex (bit 0 sampled, bit 1 debug). */
int
otel_parse_uber_trace_id(sl_str_t v, otel_tctx_t *out)
{
    sl_str_t part[4];
    size_t n = 0, start = 0;
    unsigned flags = 0;

    for (size_t i = 0; i <= v.len && n < 4; i++) {
        if (i == v.len || v.ptr[i] == ':') {
            part[n++] = (sl_str_t){v.ptr + start, i - start};
            start = i + 1;
        }
    }
    if (n != 4 || start <= v.len)
        return 0;
    if (!hex_id(part[0].ptr, part[0].len, out->trace_id, 16) ||
        !hex_id(part[1].ptr, part[1].len, out->span_id, 8))
        return 0;
    if (part[2].len == 0 || part[2].len > 16 || part[3].len == 0 || part[3].len > 2)
        return 0;
    for (size_t i = 0; i < part[2].len; i++)
        if (hexval(part[2].ptr[i]) < 0)
            return 0;
    for (size_t i = 0; i < part[3].len; i++) {
        int d = hexval(part[3].ptr[i]);
        if (d < 0)
            return 0;
        flags = flags * 16 + (unsigned)d;
    }
    out->have_span = 1;
    out->sampled = flags & 1;
    out->debug = (flags & 2) != 0;
    out->fmt = OTEL_FMT_JAEGER;
    return 1;
}

static int
hdr(const sl_api_t *api, sl_req_t *r, const char *name, sl_str_t *v)
{
    return api->req_header_get(r, (sl_str_t){name, strlen(name)}, v) == 1;
}

static int
extract_one(const sl_api_t *api, sl_req_t *r, otel_fmt_t f, otel_tctx_t *out)
{
    sl_str_t v, s;

    switch (f) {
    case OTEL_FMT_W3C:
        return hdr(api, r, "traceparent", &v) && otel_parse_traceparent(v, out);
    case OTEL_FMT_B3:
    case OTEL_FMT_B3_SINGLE:
        if (hdr(api, r, "b3", &v))
            return otel_parse_b3_single(v, out);
        if (!hdr(api, r, "x-b3-traceid", &v) || !otel_parse_trace_id(v, out->trace_id))
            return 0;
        if (!hdr(api, r, "x-b3-spanid", &v) || !otel_parse_span_id(v, out->span_id))
            return 0;
        out->sampled = -1;
        out->debug = 0;
        if (hdr(api, r, "x-b3-flags", &s) && SL_STR_EQ(s, "1"))
            out->sampled = out->debug = 1;
        else if (hdr(api, r, "x-b3-sampled", &s) && !b3_sampled(s, &out->sampled, &out->debug))
            out->sampled = -1;
        out->have_span = 1;
        out->fmt = OTEL_FMT_B3;
        return 1;
    case OTEL_FMT_JAEGER:
        return hdr(api, r, "uber-trace-id", &v) && otel_parse_uber_trace_id(v, out);
    case OTEL_FMT_OT:
        if (!hdr(api, r, "ot-tracer-traceid", &v) || !otel_parse_trace_id(v, out->trace_id))
            return 0;
        if (!hdr(api, r, "ot-tracer-spanid", &v) || !otel_parse_span_id(v, out->span_id))
            return 0;
        out->sampled = -1;
        out->debug = 0;
        if (hdr(api, r, "ot-tracer-sampled", &s) && !b3_sampled(s, &out->sampled, &out->debug))
            out->sampled = -1;
        out->debug = 0;
        out->have_span = 1;
        out->fmt = OTEL_FMT_OT;
        return 1;
    default:
        return 0;
    }
}

int
otel_extract(const sl_api_t *api, sl_req_t *r, const otel_fmt_t *fmts, size_t n, otel_tctx_t *out)
{
    for (size_t i = 0; i < n; i++) {
        memset(out, 0, sizeof(*out));
        if (extract_one(api, r, fmts[i], out))
            return 1;
    }
    memset(out, 0, sizeof(*out));
    out->sampled = -1;
    return 0;
}

static int
set(const sl_api_t *api, sl_req_t *r, const char *name, const char *v, size_t n)
{
    return api->req_header_set(r, (sl_str_t){name, strlen(name)}, (sl_str_t){v, n});
}

/* Header values are built with memcpy: a traceparent per request (and
 * per retry) is on the hot path. */
static size_t
put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return n;
}

int
otel_inject(const sl_api_t *api, sl_req_t *r, otel_fmt_t f, const char t[32],
            const uint8_t span_id[8], const uint8_t *parent, int sampled, int debug)
{
    char s[16], p[16], buf[128];
    size_t n = 0;
    int rc = 0;

    otel_hex(span_id, 8, s);
    if (parent != NULL && (f == OTEL_FMT_B3 || f == OTEL_FMT_B3_SINGLE || f == OTEL_FMT_JAEGER))
        otel_hex(parent, 8, p); /* the formats that carry it */
    switch (f) {
    case OTEL_FMT_W3C: /* 00-<trace>-<span>-<flags> */
        n += put(buf + n, "00-", 3);
        n += put(buf + n, t, 32);
        buf[n++] = '-';
        n += put(buf + n, s, 16);
        n += put(buf + n, sampled ? "-01" : "-00", 3);
        return set(api, r, "traceparent", buf, n);
    case OTEL_FMT_B3:
        rc |= set(api, r, "x-b3-traceid", t, 32);
        rc |= set(api, r, "x-b3-spanid", s, 16);
        if (parent != NULL)
            rc |= set(api, r, "x-b3-parentspanid", p, 16);
        if (debug)
            rc |= set(api, r, "x-b3-flags", "1", 1);
        else
            rc |= set(api, r, "x-b3-sampled", sampled ? "1" : "0", 1);
        return rc;
    case OTEL_FMT_B3_SINGLE: /* <trace>-<span>-<d|1|0>[-<parent>] */
        n += put(buf + n, t, 32);
        buf[n++] = '-';
        n += put(buf + n, s, 16);
        buf[n++] = '-';
        buf[n++] = debug ? 'd' : sampled ? '1' : '0';
        if (parent != NULL) {
            buf[n++] = '-';
            n += put(buf + n, p, 16);
        }
        return set(api, r, "b3", buf, n);
    case OTEL_FMT_JAEGER: /* <trace>:<span>:<parent|0>:<flags> */
        n += put(buf + n, t, 32);
        buf[n++] = ':';
        n += put(buf + n, s, 16);
        buf[n++] = ':';
        n += parent != NULL ? put(buf + n, p, 16) : put(buf + n, "0", 1);
        n += put(buf + n, sampled ? ":01" : ":00", 3);
        return set(api, r, "uber-trace-id", buf, n);
    case OTEL_FMT_OT:
        rc |= set(api, r, "ot-tracer-traceid", t, 32);
        rc |= set(api, r, "ot-tracer-spanid", s, 16);
        rc |= set(api, r, "ot-tracer-sampled", sampled ? "1" : "0", 1);
        return rc;
    default:
        return -1;
    }
}

/* ---- ids and sampling ---- */

/* xoshiro256** per process, seeded from the kernel in every worker */
static uint64_t rs[4];

static uint64_t
rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t
next64(void)
{
    uint64_t r = rotl(rs[1] * 5, 7) * 9, t = rs[1] << 17;

    rs[2] ^= rs[0];
    rs[3] ^= rs[1];
    rs[1] ^= rs[2];
    rs[0] ^= rs[3];
    rs[2] ^= t;
    rs[3] = rotl(rs[3], 45);
    return r;
}

void
otel_random_seed(void)
{
    if (getrandom(rs, sizeof(rs), 0) != (ssize_t)sizeof(rs) ||
        (rs[0] | rs[1] | rs[2] | rs[3]) == 0) {
        rs[0] = 0x9e3779b97f4a7c15ULL ^ (uint64_t)(uintptr_t)&rs;
        rs[1] = 0xbf58476d1ce4e5b9ULL;
        rs[2] = 0x94d049bb133111ebULL;
        rs[3] = 0x2545f4914f6cdd1dULL;
    }
}

void
otel_random_bytes(uint8_t *p, size_t n)
{
    if ((rs[0] | rs[1] | rs[2] | rs[3]) == 0)
        otel_random_seed();
    for (;;) {
        uint64_t nonzero = 0;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t v = next64();
            size_t k = n - i < 8 ? n - i : 8;
            memcpy(p + i, &v, k);
            nonzero |= k == 8 ? v : v & ((1ull << (8 * k)) - 1);
        }
        if (nonzero)
            return; /* an all-zero id is invalid */
    }
}

/* The same decision for the same trace id on every node: the id's low 64
 * bits against rate * 2^64. */
int
otel_sample(const uint8_t trace_id[16], double rate)
{
    uint64_t v = 0;

    if (rate >= 1.0)
        return 1;
    if (rate <= 0.0)
        return 0;
    for (int i = 8; i < 16; i++)
        v = v << 8 | trace_id[i];
    return (double)v < rate * 18446744073709551616.0;
}

/* ---- finish reasons in the answer ---- */

static const char STOP_PAT[] = "\"stop_reason\":\"";
static const char FINISH_PAT[] = "\"finish_reason\":\"";

static unsigned
advance(unsigned st, const char *pat, size_t n, char c)
{
    if (pat[st] == c)
        return st + 1;
    (void)n;
    return c == '"' ? 1 : 0; /* the patterns' only repeated prefix is '"' */
}

void
otel_scan_finish(otel_req_t *q, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!q->capture && q->match_stop == 0 && q->match_finish == 0) {
            /* no pattern begun: both begin only at a quote */
            const char *quote = memchr(p + i, '"', n - i);
            if (quote == NULL)
                return;
            i = (size_t)(quote - p);
            /* both patterns go on with 's' or 'f': any other next byte
             * ends the match here, as the matchers would (a quote starts
             * again at the next turn's memchr) */
            if (i + 1 < n && p[i + 1] != 's' && p[i + 1] != 'f')
                continue;
        }
        char c = p[i];
        if (q->capture) {
            /* a reason is a short token (end_turn, tool_use, stop,
             * length, ...): anything else ends it */
            int token = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.';
            if (!token || q->cap_len >= sizeof(q->finish[0]) - 1) {
                char *f = q->finish[q->n_finish];
                f[q->cap_len] = '\0';
                q->capture = 0;
                /* keep distinct values only (a stream repeats them) */
                int dup = q->cap_len == 0;
                for (int k = 0; k < q->n_finish && !dup; k++)
                    dup = strcmp(q->finish[k], f) == 0;
                if (!dup)
                    q->n_finish++;
            } else {
                q->finish[q->n_finish][q->cap_len++] = c;
            }
            continue;
        }
        q->match_stop = advance(q->match_stop, STOP_PAT, sizeof(STOP_PAT) - 1, c);
        q->match_finish = advance(q->match_finish, FINISH_PAT, sizeof(FINISH_PAT) - 1, c);
        if (q->match_stop == sizeof(STOP_PAT) - 1 || q->match_finish == sizeof(FINISH_PAT) - 1) {
            q->match_stop = q->match_finish = 0;
            if (q->n_finish < OTEL_MAX_FINISH) {
                q->capture = 1;
                q->cap_len = 0;
            }
        }
    }
}
