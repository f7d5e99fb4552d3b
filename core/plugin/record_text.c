/* record_text.c - the log record's JSON text: strings escaped as json-c
 * escapes them and header names lower-cased, sixteen bytes at a time (SSE2,
 * baseline on x86-64) or eight (portable words elsewhere), copied as they
 * are tested; the byte-by-byte escape only where a byte needs one. */

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "plugin/ser_internal.h"

uint64_t sl_ser_seen;

#define RT_ONES 0x0101010101010101ull

/* Does w hold a byte a JSON string must escape (below 0x20, '"', '\\')?
 * Exact as a yes/no (the classic zero-byte tests), whatever the other
 * bytes are. */
static inline int
rt_word_special(uint64_t w)
{
    uint64_t q = w ^ (RT_ONES * '"'), bs = w ^ (RT_ONES * '\\');
    uint64_t lt = (w - RT_ONES * 0x20) & ~w;
    uint64_t zq = (q - RT_ONES) & ~q, zb = (bs - RT_ONES) & ~bs;
    return ((lt | zq | zb) & SL_SER_HIGHS) != 0;
}

/* w with its ASCII capitals lower-cased, eight bytes at once: a byte is a
 * capital when its low seven bits are in 'A'..'Z' and its high bit is
 * clear. */
static inline uint64_t
rt_lower_word(uint64_t w)
{
    uint64_t h = w & (RT_ONES * 0x7f);
    uint64_t upper =
        (h + RT_ONES * (0x80 - 'A')) & ~(h + RT_ONES * (0x7f - 'Z')) & ~w & SL_SER_HIGHS;
    return w | upper >> 2; /* + 0x20 */
}

static inline uint64_t
rt_load8(const char *s)
{
    uint64_t w;
    memcpy(&w, s, 8);
    return w;
}

/* A string of 1-7 bytes as one word made of its bytes only (the first and
 * last four, two or one, overlapping), so that the word tests above say
 * what they say of the string; rt_store_short writes it back. */
static inline uint64_t
rt_load_short(const char *s, size_t n)
{
    if (n >= 4) {
        uint32_t a, z;
        memcpy(&a, s, 4);
        memcpy(&z, s + n - 4, 4);
        return a | (uint64_t)z << 32;
    }
    if (n >= 2) {
        uint16_t a, z;
        memcpy(&a, s, 2);
        memcpy(&z, s + n - 2, 2);
        uint64_t x = a | (uint64_t)z << 16;
        return x | x << 32;
    }
    return (unsigned char)s[0] * RT_ONES;
}

/* The n bytes (1-7) rt_load_short(s, n) made w of, at o. */
static inline void
rt_store_short(char *o, uint64_t w, size_t n)
{
    if (n >= 4) {
        uint32_t a = (uint32_t)w, z = (uint32_t)(w >> 32);
        memcpy(o, &a, 4);
        memcpy(o + n - 4, &z, 4);
    } else if (n >= 2) {
        uint16_t a = (uint16_t)w, z = (uint16_t)(w >> 16);
        memcpy(o, &a, 2);
        memcpy(o + n - 2, &z, 2);
    } else {
        o[0] = (char)w;
    }
}

/* Bytes a JSON string must escape: below 0x20, '"' and '\\'. */
static const unsigned char rt_special[256] = {1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                              1, 1, 1, 1, 1, 1, 1, 1, 1,         1,         1, 1,
                                              1, 1, 1, 1, 1, 1, 1, 1, ['"'] = 1, ['\\'] = 1};

/* c (one that needs it) at o, escaped as json-c does; returns the end.
 * Out of line: the common path (nothing to escape) stays small. */
static __attribute__((noinline)) char *
rt_escape(char *o, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";

    *o++ = '\\';
    switch (c) {
    case '"':
        *o++ = '"';
        break;
    case '\\':
        *o++ = '\\';
        break;
    case '\b':
        *o++ = 'b';
        break;
    case '\f':
        *o++ = 'f';
        break;
    case '\n':
        *o++ = 'n';
        break;
    case '\r':
        *o++ = 'r';
        break;
    case '\t':
        *o++ = 't';
        break;
    default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hex[c >> 4];
        *o++ = hex[c & 15];
    }
    return o;
}

/* s[i..n) at o byte by byte, escaped where needed; returns the end. */
static char *
rt_bytes(char *o, const char *s, size_t i, size_t n, uint64_t *seen)
{
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        *seen |= c;
        if (rt_special[c])
            o = rt_escape(o, c);
        else
            *o++ = (char)c;
    }
    return o;
}

#if defined(__SSE2__)

/* The bytes of v a JSON string must escape, as a sixteen-bit mask. */
static inline unsigned
rt_special16(__m128i v)
{
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i bs = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, bs), ctl));
}

/* v with its ASCII capitals lower-cased (bytes >= 0x80 are negative as
 * signed bytes, so never in 'A'..'Z'). */
static inline __m128i
rt_lower16(__m128i v)
{
    __m128i up = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)),
                               _mm_cmplt_epi8(v, _mm_set1_epi8('Z' + 1)));
    return _mm_or_si128(v, _mm_and_si128(up, _mm_set1_epi8(0x20)));
}

/* A string of 8-15 bytes as one vector: its first and last eight. */
static inline __m128i
rt_load_mid(const char *s, size_t n)
{
    return _mm_set_epi64x((long long)rt_load8(s + n - 8), (long long)rt_load8(s));
}

/* The n bytes (8-15) rt_load_mid(s, n) made v of, at o. */
static inline void
rt_store_mid(char *o, __m128i v, size_t n)
{
    _mm_storel_epi64((__m128i *)(void *)(o + n - 8), _mm_unpackhi_epi64(v, v));
    _mm_storel_epi64((__m128i *)(void *)o, v);
}

#endif

/* Room the writers below need past a string's end: the block loops store
 * whole blocks. */
#define RT_SLACK 16

/* s[0..n) escaped for a JSON string (no quotes) at o, which has room for
 * n * 6 + RT_SLACK bytes; returns the end.  The bytes' high bits go into
 * *seen. */
static inline __attribute__((always_inline)) char *
rt_str_body(char *o, const char *s, size_t n, uint64_t *seen)
{
    size_t i = 0;
    char *o0 = o;

#if defined(__SSE2__)
    if (n >= 16) {
        __m128i acc = _mm_setzero_si128();
        while (i + 16 <= n) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
            unsigned m = rt_special16(v);
            acc = _mm_or_si128(acc, v);
            _mm_storeu_si128((__m128i *)(void *)o, v);
            if (m == 0) {
                o += 16;
                i += 16;
                continue;
            }
            /* the bytes before the first to escape are out already */
            unsigned k = (unsigned)__builtin_ctz(m);
            o = rt_escape(o + k, (unsigned char)s[i + k]);
            i += k + 1;
        }
        if (i < n && (size_t)(o - o0) == i) {
            /* 1-15 bytes left and nothing escaped (out = in so far): the
             * string's last sixteen bytes as one block, over the same
             * bytes already out */
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
            if (rt_special16(v) == 0) {
                acc = _mm_or_si128(acc, v);
                _mm_storeu_si128((__m128i *)(void *)(o0 + n - 16), v);
                o = o0 + n;
                i = n;
            }
        }
        if (_mm_movemask_epi8(acc) != 0)
            *seen |= SL_SER_HIGHS;
    } else if (n >= 8) {
        __m128i v = rt_load_mid(s, n);
        if (rt_special16(v) == 0) {
            if (_mm_movemask_epi8(v) != 0)
                *seen |= SL_SER_HIGHS;
            rt_store_mid(o, v, n);
            o += n;
            i = n;
        }
    }
#else
    while (i + 8 <= n) {
        uint64_t w = rt_load8(s + i);
        *seen |= w;
        if (!rt_word_special(w)) {
            memcpy(o, &w, 8);
            o += 8;
            i += 8;
            continue;
        }
        o = rt_bytes(o, s, i, i + 8, seen);
        i += 8;
    }
    if (i < n && i >= 8 && (size_t)(o - o0) == i) {
        /* 1-7 bytes left and nothing escaped so far (out = in): test the
         * string's last eight bytes as one word and copy them over the
         * same bytes already out */
        uint64_t w = rt_load8(s + n - 8);
        if (!rt_word_special(w)) {
            *seen |= w;
            memcpy(o0 + n - 8, &w, 8);
            o = o0 + n;
            i = n;
        }
    }
#endif
    if (n > 0 && n < 8) {
        /* a short string (a method, a status, a small number's text) */
        uint64_t w = rt_load_short(s, n);
        if (!rt_word_special(w)) {
            *seen |= w;
            rt_store_short(o, w, n);
            o += n;
            i = n;
        }
    }
    if (i < n)
        o = rt_bytes(o, s, i, n, seen);
    return o;
}

/* s[0..n) as a JSON string at o, which has room for n * 6 + 2 + RT_SLACK
 * bytes; returns the end. */
static inline __attribute__((always_inline)) char *
rt_str(char *o, const char *s, size_t n, uint64_t *seen)
{
    *o = '"';
    o = rt_str_body(o + 1, s, n, seen);
    *o = '"';
    return o + 1;
}

void
sl_ser_json_str(sl_strbuf_t *b, const char *s, size_t n)
{
    sl_strbuf_need(b, n * 6 + 2 + RT_SLACK);
    b->len = (size_t)(rt_str(b->p + b->len, s, n, &sl_ser_seen) - b->p);
}

/* A header name with a byte to escape or >= 0x80 (a plugin may set any
 * name) at o: lower-cased aside, then escaped, then ':'; returns the end. */
static __attribute__((noinline)) char *
rt_name_aside(char *o, const char *s, size_t n)
{
    char name[SL_RECORD_HEADER_NAME_MAX];

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        name[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
    }
    o = rt_str(o, name, n, &sl_ser_seen);
    *o++ = ':';
    return o;
}

/* A header name s[0..n) (n <= SL_RECORD_HEADER_NAME_MAX) lower-cased as a
 * JSON string and ':' at o, which has room for n * 6 + 3 + RT_SLACK bytes;
 * returns the end. */
static inline __attribute__((always_inline)) char *
rt_name(char *o, const char *s, size_t n)
{
    size_t i = 0;
    char *q = o + 1;

#if defined(__SSE2__)
    if (n >= 16) {
        for (; i + 16 <= n; i += 16) {
            __m128i v = rt_lower16(_mm_loadu_si128((const __m128i *)(const void *)(s + i)));
            if ((rt_special16(v) | (unsigned)_mm_movemask_epi8(v)) != 0)
                return rt_name_aside(o, s, n);
            _mm_storeu_si128((__m128i *)(void *)(q + i), v);
        }
        if (i < n) {
            __m128i v = rt_lower16(_mm_loadu_si128((const __m128i *)(const void *)(s + n - 16)));
            if ((rt_special16(v) | (unsigned)_mm_movemask_epi8(v)) != 0)
                return rt_name_aside(o, s, n);
            _mm_storeu_si128((__m128i *)(void *)(q + n - 16), v);
        }
    } else if (n >= 8) {
        __m128i v = rt_lower16(rt_load_mid(s, n));
        if ((rt_special16(v) | (unsigned)_mm_movemask_epi8(v)) != 0)
            return rt_name_aside(o, s, n);
        rt_store_mid(q, v, n);
    }
#else
    for (; i + 8 <= n; i += 8) {
        uint64_t w = rt_lower_word(rt_load8(s + i));
        if (rt_word_special(w) || (w & SL_SER_HIGHS) != 0)
            return rt_name_aside(o, s, n);
        memcpy(q + i, &w, 8);
    }
    if (i < n && n >= 8) {
        /* the last 1-7 bytes: the name's last eight as one word, over
         * bytes already out */
        uint64_t w = rt_lower_word(rt_load8(s + n - 8));
        if (rt_word_special(w) || (w & SL_SER_HIGHS) != 0)
            return rt_name_aside(o, s, n);
        memcpy(q + n - 8, &w, 8);
    }
#endif
    if (n > 0 && n < 8) {
        uint64_t w = rt_lower_word(rt_load_short(s, n));
        if (rt_word_special(w) || (w & SL_SER_HIGHS) != 0)
            return rt_name_aside(o, s, n);
        rt_store_short(q, w, n);
    }
    o[0] = '"';
    q[n] = '"';
    q[n + 1] = ':';
    return q + n + 2;
}

void
sl_ser_json_name(sl_strbuf_t *b, const char *s, size_t n)
{
    if (n > SL_RECORD_HEADER_NAME_MAX)
        n = SL_RECORD_HEADER_NAME_MAX;
    sl_strbuf_need(b, n * 6 + 3 + RT_SLACK);
    b->len = (size_t)(rt_name(b->p + b->len, s, n) - b->p);
}

/* A byte lower-cased as tolower() does in the C locale. */
static inline unsigned char
rt_lc(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

int
sl_ser_redacted(const char *s, size_t n, const char *const *redact, int always_redact)
{
    unsigned char c0 = n > 0 ? rt_lc((unsigned char)s[0]) : 0;

    if (always_redact && ((n == 13 && c0 == 'a' && strncasecmp(s, "authorization", 13) == 0) ||
                          (n == 19 && c0 == 'p' && strncasecmp(s, "proxy-authorization", 19) == 0)))
        return 1;
    for (const char *const *rp = redact; rp && *rp; rp++)
        if (rt_lc((unsigned char)(*rp)[0]) == c0 && strlen(*rp) == n && strncasecmp(s, *rp, n) == 0)
            return 1;
    return 0;
}

int
sl_ser_json_headers_once(sl_strbuf_t *b, const sl_headers_t *h, const char *const *redact,
                         int always_redact)
{
    /* a response's headers are never redacted */
    int may_redact = always_redact || (redact != NULL && redact[0] != NULL);
    size_t room = 2 + RT_SLACK;
    uint64_t seen = 0;

    for (size_t i = 0; i < h->n; i++) {
        size_t n = h->items[i].name.len;
        /* ',', the name escaped at worst, the value or "REDACTED" */
        room += 1 + (n < SL_RECORD_HEADER_NAME_MAX ? n : SL_RECORD_HEADER_NAME_MAX) * 6 + 3 +
                h->items[i].value.len * 6 + 2 + 10;
    }
    sl_strbuf_need(b, room);
    char *o = b->p + b->len;
    *o++ = '{';
    for (size_t i = 0; i < h->n; i++) {
        const sl_header_t *hd = &h->items[i];
        uint64_t bit = sl_ser_name_bit(hd->name);
        size_t n =
            hd->name.len < SL_RECORD_HEADER_NAME_MAX ? hd->name.len : SL_RECORD_HEADER_NAME_MAX;
        if (seen & bit)
            return SL_DECLINED; /* b->len not moved: nothing written */
        seen |= bit;
        *o = ',';
        o = rt_name(o + (i > 0), hd->name.ptr, n);
        if (may_redact && sl_ser_redacted(hd->name.ptr, n, redact, always_redact)) {
            memcpy(o, "\"REDACTED\"", 10);
            o += 10;
        } else {
            o = rt_str(o, hd->value.ptr, hd->value.len, &sl_ser_seen);
        }
    }
    *o++ = '}';
    b->len = (size_t)(o - b->p);
    return SL_OK;
}
