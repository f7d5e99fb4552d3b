/* json_scan.c - validating in-place JSON tokenizer.
 *
 * Why not json-c here: the request translator only re-arranges spans of
 * the client's JSON (text, schemas, tool inputs are copied verbatim), so
 * building a DOM of unescaped strings and serializing it again is wasted
 * work (json-c needs ~125 us for a 50 KB Claude Code request before any
 * translation).  This scanner validates the whole document (RFC 8259
 * grammar, escapes, control characters; UTF-8 passed through) and records
 * a flat array of tokens in document order, each knowing where its subtree
 * ends, so lookups and iteration are plain index walks.
 *
 * Strings are most of a request's bytes (prompts, descriptions), so their
 * scan skips plain bytes sixteen at a time (SSE2; eight with portable
 * word arithmetic elsewhere) and stops only at a quote, a backslash, a
 * control character or a non-ASCII byte.  It also records what a
 * string's non-ASCII characters add to its token estimate (SL_JSON_HI), so
 * the estimate reads no string again.  tests/unit/ai_proxy/ref_scan.c keeps the
 * byte-wise scanner this replaced; test_fastpath and fuzz_fastpath hold
 * the two equal.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define SL_JSON_MAX_DEPTH 256

static int
sl_json_grow(sl_jdoc_t *d, uint32_t cap)
{
    sl_jtok_t *t = realloc(d->t, (size_t)cap * sizeof(*t));

    if (t == NULL) {
        return -2;
    }
    d->t = t;
    d->cap = cap;
    return 0;
}

static inline int
sl_json_push(sl_jdoc_t *d, sl_jtype_t type, size_t start)
{
    if (__builtin_expect(d->n == d->cap, 0) && sl_json_grow(d, d->cap ? d->cap * 2 : 256) != 0) {
        return -2;
    }
    d->t[d->n] = (sl_jtok_t){(uint8_t)type, 0, 0, (uint32_t)start, 0, d->n + 1};
    return (int)d->n++;
}

static int
sl_json_fail(sl_jdoc_t *d, size_t off, const char *msg)
{
    d->err = msg;
    d->err_off = off;
    return -1;
}

static int
sl_is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Length of the well-formed UTF-8 sequence at s[i] (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0.  JSON text must be
 * UTF-8 (RFC 8259 §8.1); passing broken bytes on would make the provider
 * answer for our client, or choke on them. */
static size_t
sl_utf8_seq(const unsigned char *s, size_t i, size_t end)
{
    unsigned char c = s[i];
    size_t n, k;
    unsigned char lo = 0x80, hi = 0xBF;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) {
            lo = 0xA0;
        } else if (c == 0xED) {
            hi = 0x9F;
        }
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) {
            lo = 0x90;
        } else if (c == 0xF4) {
            hi = 0x8F;
        }
    } else {
        return 0;
    }
    if (i + n > end || s[i + 1] < lo || s[i + 1] > hi) {
        return 0;
    }
    for (k = 2; k < n; k++) {
        if ((s[i + k] & 0xC0) != 0x80) {
            return 0;
        }
    }
    return n;
}

/* The byte-by-byte form of the string scans below: the first of s[i..len)
 * that is a quote, a backslash, a control character or non-ASCII; len. */
static inline size_t
sl_json_skip_bytes(const char *s, size_t len, size_t i)
{
    for (; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) {
            return i;
        }
    }
    return len;
}

#if defined(__SSE2__)
/* Bit k set when p[k] (of sixteen) is a quote, a backslash, a control
 * character or non-ASCII (the signed compare: below 0x20 is a control
 * character or, as a negative byte, non-ASCII). */
static inline unsigned
sl_json_special16(const char *p)
{
    const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                             _mm_cmplt_epi8(v, space));

    return (unsigned)_mm_movemask_epi8(m);
}

/* The rest of a string that did not end in its first sixteen bytes, from
 * i: sixteen bytes at a time; the last few byte by byte. */
static size_t
sl_json_skip_sse2(const char *s, size_t len, size_t i)
{
    for (; i + 16 <= len; i += 16) {
        unsigned mask = sl_json_special16(s + i);

        if (mask != 0) {
            return i + (size_t)__builtin_ctz(mask);
        }
    }
    return sl_json_skip_bytes(s, len, i);
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define SL_JSON_HAVE_AVX2 1

/* The same thirty-two bytes at a time, on a CPU with AVX2 (chosen when the
 * plugin is loaded): a Claude Code request's prompt and tool descriptions
 * are long strings, and this halves the passes over them. */
__attribute__((target("avx2"))) static size_t
sl_json_skip_avx2(const char *s, size_t len, size_t i)
{
    const __m256i quote = _mm256_set1_epi8('"'), bslash = _mm256_set1_epi8('\\');
    const __m256i space = _mm256_set1_epi8(0x20);

    for (; i + 32 <= len; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(s + i));
        /* space > v, signed: a control character or a non-ASCII byte */
        __m256i m = _mm256_or_si256(
            _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, bslash)),
            _mm256_cmpgt_epi8(space, v));
        unsigned mask = (unsigned)_mm256_movemask_epi8(m);

        if (mask != 0) {
            return i + (size_t)__builtin_ctz(mask);
        }
    }
    return sl_json_skip_sse2(s, len, i);
}
#endif

static size_t (*sl_json_skip_rest)(const char *, size_t, size_t) = sl_json_skip_sse2;

__attribute__((constructor)) static void
sl_json_simd_init(void)
{
    sl_json_wide(1);
}
#endif

int
sl_json_wide(int on)
{
#if defined(SL_JSON_HAVE_AVX2)
    __builtin_cpu_init();
    if (on && __builtin_cpu_supports("avx2")) {
        sl_json_skip_rest = sl_json_skip_avx2;
        return 1;
    }
#endif
#if defined(__SSE2__)
    sl_json_skip_rest = sl_json_skip_sse2;
#endif
    (void)on;
    return 0;
}

/* Offset of the first byte of s[i..len) a string scan must look at: a
 * quote, a backslash, a control character or a non-ASCII byte; len when
 * there is none.  Most strings (keys, names, short values) end within
 * sixteen bytes: that block is looked at here, inline; a longer string's
 * rest through sl_json_skip_rest. */
static inline size_t
sl_json_skip_plain(const char *s, size_t len, size_t i)
{
#if defined(__SSE2__)
    if (i + 16 <= len) {
        unsigned mask = sl_json_special16(s + i);

        if (mask != 0) {
            return i + (size_t)__builtin_ctz(mask);
        }
        return sl_json_skip_rest(s, len, i + 16);
    }
#else
    for (; i + 8 <= len; i += 8) {
        uint64_t v, q, b;

        memcpy(&v, s + i, 8);
        q = v ^ 0x2222222222222222ull;
        b = v ^ 0x5C5C5C5C5C5C5C5Cull;
        /* a byte's top bit is set when it is non-ASCII, below 0x20, a
         * quote or a backslash (false alarms only after a true one: the
         * byte loop below finds the exact place) */
        if (((v | ((v - 0x2020202020202020ull) & ~v) | ((q - 0x0101010101010101ull) & ~q) |
              ((b - 0x0101010101010101ull) & ~b)) &
             0x8080808080808080ull) != 0) {
            break;
        }
    }
#endif
    return sl_json_skip_bytes(s, len, i);
}

/* Scan a string starting after its opening quote; returns the offset of the
 * closing quote or (size_t)-1.  *esc: it holds an escape; *hib, *hic: its
 * bytes and characters past U+007F (added to). */
static inline __attribute__((always_inline)) size_t
sl_json_scan_str(const char *s, size_t len, size_t i, int *esc, size_t *hib, size_t *hic)
{
    for (;;) {
        unsigned char c;
        size_t n;

        i = sl_json_skip_plain(s, len, i);
        if (i >= len) {
            return (size_t)-1;
        }
        c = (unsigned char)s[i];
        if (c == '"') {
            return i;
        }
        if (c == '\\') {
            *esc = 1;
            if (i + 1 >= len) {
                return (size_t)-1;
            }
            switch (s[i + 1]) {
            case 'u':
                if (i + 5 >= len || !sl_is_hex(s[i + 2]) || !sl_is_hex(s[i + 3]) ||
                    !sl_is_hex(s[i + 4]) || !sl_is_hex(s[i + 5])) {
                    return (size_t)-1;
                }
                i += 6;
                continue;
            case '"':
            case '\\':
            case '/':
            case 'b':
            case 'f':
            case 'n':
            case 'r':
            case 't':
                i += 2;
                continue;
            default:
                return (size_t)-1;
            }
        }
        if (c < 0x20) {
            return (size_t)-1;
        }
        n = sl_utf8_seq((const unsigned char *)s, i, len);
        if (n == 0) {
            return (size_t)-1;
        }
        *hib += n;
        *hic += 1;
        i += n;
    }
}

/* A string (key or value) starting at the quote s[*i]: its token, with *i
 * moved past the closing quote; < 0 on error (as sl_json_fail / push). */
static inline __attribute__((always_inline)) int
sl_json_string(sl_jdoc_t *d, const char *s, size_t len, size_t *i)
{
    int esc = 0, tok;
    size_t hib = 0, hic = 0;
    size_t end = sl_json_scan_str(s, len, *i + 1, &esc, &hib, &hic);

    if (end == (size_t)-1) {
        return sl_json_fail(d, *i, "invalid string");
    }
    tok = sl_json_push(d, SL_J_STR, *i + 1);
    if (tok < 0) {
        return tok;
    }
    d->t[tok].len = (uint32_t)(end - *i - 1);
    d->t[tok].esc = (uint8_t)esc;
    if (hic > 0) {
        size_t n = end - *i - 1;
        /* (ASCII bytes + 3) / 4 + characters, against (bytes + 3) / 4 */
        int64_t diff = (int64_t)((n - hib + 3) / 4 + hic) - (int64_t)((n + 3) / 4);

        d->t[tok].hi = diff + SL_JSON_HI_BIAS < SL_JSON_HI_FAR ? (uint16_t)(diff + SL_JSON_HI_BIAS)
                                                               : (uint16_t)SL_JSON_HI_FAR;
    }
    *i = end + 1;
    return tok;
}

static size_t
sl_json_scan_num(const char *s, size_t len, size_t i)
{
    size_t st;

    if (i < len && s[i] == '-') {
        i++;
    }
    if (i >= len) {
        return (size_t)-1;
    }
    if (s[i] == '0') {
        i++;
    } else if (s[i] >= '1' && s[i] <= '9') {
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
    } else {
        return (size_t)-1;
    }
    if (i < len && s[i] == '.') {
        st = ++i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == st) {
            return (size_t)-1;
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            i++;
        }
        st = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            i++;
        }
        if (i == st) {
            return (size_t)-1;
        }
    }
    return i;
}

/* Whitespace between tokens (RFC 8259's four); one comparison for the
 * usual byte above the space. */
#define SL_JSON_WS(s, len, i)                                                                      \
    while ((i) < (len) && (unsigned char)(s)[i] <= ' ' &&                                          \
           ((s)[i] == ' ' || (s)[i] == '\t' || (s)[i] == '\n' || (s)[i] == '\r')) {                \
        (i)++;                                                                                     \
    }

/* The document's single value is complete at i: only whitespace may
 * follow. */
static int
sl_json_end(sl_jdoc_t *d, const char *s, size_t len, size_t i)
{
    SL_JSON_WS(s, len, i);
    if (i != len) {
        return sl_json_fail(d, i, "unexpected data after the JSON value");
    }
    return 0;
}

/* The grammar's states are labels, and each token jumps to the state that
 * must follow it (after a key and its ':' straight to a value, after a
 * value and its ',' straight to the next key or value), so no state is
 * tested again at every token:
 *   value      a value must come
 *   arr_first  a value or ']' (just after '[')
 *   obj_first  a key or '}' (just after '{')
 *   key        a key (after ',' in an object)
 *   colon      the ':' after a key, when whitespace came first
 *   after      ',' or the container's closing bracket (after a value)
 * Errors and their offsets are those of the loop this replaced
 * (tests/unit/ai_proxy/ref_scan.c). */
int
sl_json_parse(sl_jdoc_t *d, const char *s, size_t len)
{
    uint32_t stack[SL_JSON_MAX_DEPTH];
    int depth = 0;
    size_t i = 0;
    int tok;
    unsigned char c;

    d->src = s;
    d->n = 0;
    d->err = NULL;
    d->err_off = 0;
    if (len > UINT32_MAX - 1) {
        return sl_json_fail(d, 0, "document too large");
    }
    /* Room for one value per 32 bytes up front (the 49 KB Claude Code turn
     * has one per 68: 725), instead of doubling from 256 tokens and copying
     * the array on the way; a document denser than that still grows. */
    if (d->cap < len / 32 + 256 && sl_json_grow(d, (uint32_t)(len / 32 + 256)) != 0) {
        return -2;
    }

value:
    SL_JSON_WS(s, len, i);
    if (i >= len) {
        goto eof;
    }
    c = (unsigned char)s[i];
value_c:
    switch (c) {
    case '{':
    case '[':
        if (depth == SL_JSON_MAX_DEPTH) {
            return sl_json_fail(d, i, "JSON nested too deeply");
        }
        tok = sl_json_push(d, c == '{' ? SL_J_OBJ : SL_J_ARR, i);
        if (tok < 0) {
            return tok;
        }
        stack[depth++] = (uint32_t)tok;
        i++;
        if (c == '[') {
            goto arr_first;
        }
        goto obj_first;
    case '"':
        tok = sl_json_string(d, s, len, &i);
        if (tok < 0) {
            return tok;
        }
        break;
    case 't':
    case 'f':
    case 'n': {
        /* the literal's last four bytes as one word ("alse" after the
         * 'f'): no call per literal */
        size_t ln = c == 'f' ? 5 : 4;
        uint32_t w, x;

        if (len - i < ln) {
            return sl_json_fail(d, i, "invalid literal");
        }
        memcpy(&w, s + i + ln - 4, 4);
        memcpy(&x, c == 't' ? "true" : c == 'f' ? "alse" : "null", 4);
        if (w != x) {
            return sl_json_fail(d, i, "invalid literal");
        }
        tok = sl_json_push(d, c == 't' ? SL_J_TRUE : c == 'f' ? SL_J_FALSE : SL_J_NULL, i);
        if (tok < 0) {
            return tok;
        }
        d->t[tok].len = (uint32_t)ln;
        i += ln;
        break;
    }
    default: {
        size_t end = sl_json_scan_num(s, len, i);

        if (end == (size_t)-1) {
            return sl_json_fail(d, i, "unexpected character");
        }
        tok = sl_json_push(d, SL_J_NUM, i);
        if (tok < 0) {
            return tok;
        }
        d->t[tok].len = (uint32_t)(end - i);
        i = end;
        break;
    }
    }
    if (depth == 0) {
        return sl_json_end(d, s, len, i); /* a top-level scalar */
    }
    goto after;

arr_first:
    SL_JSON_WS(s, len, i);
    if (i >= len) {
        goto eof;
    }
    c = (unsigned char)s[i];
    if (c == ']') {
        goto close;
    }
    goto value_c;

obj_first:
    SL_JSON_WS(s, len, i);
    if (i >= len) {
        goto eof;
    }
    if (s[i] == '}') {
        goto close;
    }
    goto key_c;

key:
    SL_JSON_WS(s, len, i);
    if (i >= len) {
        goto eof;
    }
key_c:
    if (s[i] != '"') {
        return sl_json_fail(d, i, "expected a string key");
    }
    tok = sl_json_string(d, s, len, &i);
    if (tok < 0) {
        return tok;
    }
    if (i < len && s[i] == ':') { /* the usual case */
        i++;
        goto value;
    }
    SL_JSON_WS(s, len, i);
    if (i >= len) {
        goto eof;
    }
    if (s[i] != ':') {
        return sl_json_fail(d, i, "expected ':' after an object key");
    }
    i++;
    goto value;

close : {
    sl_jtok_t *top = &d->t[stack[--depth]];

    top->len = (uint32_t)(i + 1 - top->start);
    top->next = d->n;
    i++;
    if (depth == 0) {
        return sl_json_end(d, s, len, i);
    }
}
after:
    /* the usual ',' straight after a value, then a key or a value */
    if (i < len && s[i] == ',') {
        i++;
        if (d->t[stack[depth - 1]].type == SL_J_OBJ) {
            goto key;
        }
        goto value;
    }
    SL_JSON_WS(s, len, i);
    if (i >= len) {
        goto eof;
    }
    c = (unsigned char)s[i];
    if (c == ',') {
        i++;
        if (d->t[stack[depth - 1]].type == SL_J_OBJ) {
            goto key;
        }
        goto value;
    }
    if ((c == '}' && d->t[stack[depth - 1]].type == SL_J_OBJ) ||
        (c == ']' && d->t[stack[depth - 1]].type == SL_J_ARR)) {
        goto close;
    }
    return sl_json_fail(d, i, "expected ',' or a closing bracket");

eof:
    return sl_json_fail(d, i, "unexpected end of JSON input");
}

void
sl_json_free(sl_jdoc_t *d)
{
    free(d->t);
    d->t = NULL;
    d->n = d->cap = 0;
}

/* Does string token `tok` (escaped form) decode to lit[0..n)?  Escapes are
 * rare in keys and policy values, so only they pay for decoding: without
 * this, {"str\u0065am": true} would be a different key from "stream" to
 * the gateway and the same key to the provider. */
static int
sl_json_tok_eq(const sl_jdoc_t *d, int tok, const char *lit, size_t n)
{
    const sl_jtok_t *t = &d->t[tok];
    sl_ap_buf_t b = {0};
    int eq;

    if (!t->esc) {
        return t->len == n && memcmp(d->src + t->start, lit, n) == 0;
    }
    if (t->len < n) {
        return 0; /* an escape never makes a string longer */
    }
    eq = sl_json_unescape(d->src + t->start, t->len, &b) == 0 && !b.oom && b.len == n &&
         memcmp(b.ptr, lit, n) == 0;
    sl_ap_buf_free(&b);
    return eq;
}

int
sl_json_getn(const sl_jdoc_t *d, int obj, const char *key, size_t kl)
{
    int k, end;

    if (obj < 0 || d->t[obj].type != SL_J_OBJ) {
        return -1;
    }
    end = SL_JSON_END(d, obj);
    for (k = obj + 1; k < end; k = SL_JSON_NEXT_MEMBER(d, k)) {
        const sl_jtok_t *t = &d->t[k];

        /* a key without escapes (nearly all) is compared here: length,
         * first byte, then the rest, without a call per member */
        if (!t->esc ? t->len == kl && (kl == 0 || (d->src[t->start] == key[0] &&
                                                   memcmp(d->src + t->start, key, kl) == 0))
                    : sl_json_tok_eq(d, k, key, kl)) {
            return k + 1;
        }
    }
    return -1;
}

const char *
sl_json_dup_key(const sl_jdoc_t *d, int obj, const char *const *keys)
{
    int k, end, seen;

    if (obj < 0 || d->t[obj].type != SL_J_OBJ) {
        return NULL;
    }
    end = SL_JSON_END(d, obj);
    for (; *keys; keys++) {
        size_t kl = strlen(*keys);

        seen = 0;
        for (k = obj + 1; k < end; k = SL_JSON_NEXT_MEMBER(d, k)) {
            const sl_jtok_t *t = &d->t[k];

            /* as in sl_json_getn: an unescaped key of another length or
             * first byte is told apart without a call */
            if (!t->esc && (t->len != kl || (kl > 0 && d->src[t->start] != (*keys)[0]))) {
                continue;
            }
            if (sl_json_tok_eq(d, k, *keys, kl) && seen++) {
                return *keys;
            }
        }
    }
    return NULL;
}

int
sl_json_str_eq(const sl_jdoc_t *d, int tok, const char *lit)
{
    return tok >= 0 && d->t[tok].type == SL_J_STR && sl_json_tok_eq(d, tok, lit, strlen(lit));
}

sl_str_t
sl_json_raw(const sl_jdoc_t *d, int tok)
{
    sl_str_t r;

    if (d->t[tok].type == SL_J_STR) {
        r.ptr = d->src + d->t[tok].start - 1;
        r.len = d->t[tok].len + 2;
    } else {
        r.ptr = d->src + d->t[tok].start;
        r.len = d->t[tok].len;
    }
    return r;
}

sl_str_t
sl_json_sv(const sl_jdoc_t *d, int tok)
{
    sl_str_t r = {d->src + d->t[tok].start, d->t[tok].len};

    return r;
}

int
sl_json_num(const sl_jdoc_t *d, int tok, double *out)
{
    char tmp[64];
    char *end;

    if (tok < 0 || d->t[tok].type != SL_J_NUM || d->t[tok].len >= sizeof(tmp)) {
        return -1;
    }
    memcpy(tmp, d->src + d->t[tok].start, d->t[tok].len);
    tmp[d->t[tok].len] = '\0';
    *out = strtod(tmp, &end);
    return 0;
}

int
sl_json_int(const sl_jdoc_t *d, int tok, int64_t *out)
{
    double v;

    if (sl_json_num(d, tok, &v) != 0 || v != v || v > 9.2e18 || v < -9.2e18 ||
        v != (double)(int64_t)v) {
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

static unsigned
sl_hex4(const char *p)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        char c = p[i];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

int
sl_json_unescape(const char *p, size_t n, sl_ap_buf_t *b)
{
    size_t i = 0, run = 0;

    while (i < n) {
        unsigned cp;
        char u[4];
        size_t ul;

        if (p[i] != '\\') {
            i++;
            continue;
        }
        sl_ap_buf_add(b, p + run, i - run);
        if (i + 1 >= n) {
            return -1;
        }
        switch (p[i + 1]) {
        case 'n':
            sl_ap_buf_addc(b, '\n');
            i += 2;
            break;
        case 't':
            sl_ap_buf_addc(b, '\t');
            i += 2;
            break;
        case 'r':
            sl_ap_buf_addc(b, '\r');
            i += 2;
            break;
        case 'b':
            sl_ap_buf_addc(b, '\b');
            i += 2;
            break;
        case 'f':
            sl_ap_buf_addc(b, '\f');
            i += 2;
            break;
        case 'u':
            if (i + 6 > n) {
                return -1;
            }
            cp = sl_hex4(p + i + 2);
            i += 6;
            if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= n && p[i] == '\\' && p[i + 1] == 'u') {
                unsigned lo = sl_hex4(p + i + 2);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    i += 6;
                }
            }
            if (cp < 0x80) {
                u[0] = (char)cp;
                ul = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xC0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3F));
                ul = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xE0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[2] = (char)(0x80 | (cp & 0x3F));
                ul = 3;
            } else {
                u[0] = (char)(0xF0 | (cp >> 18));
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
                u[3] = (char)(0x80 | (cp & 0x3F));
                ul = 4;
            }
            sl_ap_buf_add(b, u, ul);
            break;
        default:
            sl_ap_buf_addc(b, p[i + 1]);
            i += 2;
            break;
        }
        run = i;
    }
    sl_ap_buf_add(b, p + run, n - run);
    return b->oom ? -2 : 0;
}
