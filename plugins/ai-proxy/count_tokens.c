/* count_tokens.c - local token estimate for /v1/messages/count_tokens.
 *
 * DashScope has no counting endpoint, and calling the model to count would
 * cost a real request, so the gateway answers locally.  Method: every
 * string the model would read (system, message text, tool inputs and
 * results, tool names, descriptions and schemas, JSON keys included as a
 * stand-in for the chat template's structure) counts ASCII bytes / 4 plus
 * one token per non-ASCII character (CJK text is about one token per
 * character in Qwen's tokenizer); each number counts 1; images count a flat
 * 1600 (Anthropic's figure for a ~1.2 MP image); thinking signatures and
 * redacted thinking data are skipped (never sent upstream).  The same
 * estimate fills message_start's input_tokens before DashScope reports
 * the real figure.
 */

#include <stdio.h>
#include <string.h>

#include "ai_proxy.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define SL_AP_IMAGE_TOKENS 1600

int64_t
sl_ap_text_tokens(const char *p, size_t n)
{
    size_t i = 0, ascii = 0;
    int64_t other = 0;

#if defined(__SSE2__)
    /* sixteen bytes at a time: per-byte counters (flushed before they can
     * wrap) of non-ASCII bytes (negative as signed) and of lead bytes of
     * multi-byte characters (0xC0 and up: -64 .. -1 as signed) */
    const __m128i zero = _mm_setzero_si128(), cont = _mm_set1_epi8((char)0xBF);
    size_t nonascii = 0;

    while (i + 16 <= n) {
        __m128i hi = zero, lead = zero;
        size_t k;

        for (k = 0; k < 255 && i + 16 <= n; k++, i += 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
            __m128i neg = _mm_cmplt_epi8(v, zero);

            hi = _mm_sub_epi8(hi, neg);
            lead = _mm_sub_epi8(lead, _mm_and_si128(neg, _mm_cmpgt_epi8(v, cont)));
        }
        hi = _mm_sad_epu8(hi, zero);
        lead = _mm_sad_epu8(lead, zero);
        nonascii += (size_t)_mm_cvtsi128_si32(hi) + (size_t)_mm_extract_epi16(hi, 4);
        other += _mm_cvtsi128_si32(lead) + _mm_extract_epi16(lead, 4);
    }
    ascii = i - nonascii;
#endif
    /* eight bytes at a time: ASCII bytes have the top bit clear, lead
     * bytes of multi-byte characters have the top two bits set (counted
     * by a multiply: baseline x86-64 has no popcount instruction, and
     * the compiler's fallback was a quarter of a whole translation) */
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        ascii += 8 - (size_t)((((v & 0x8080808080808080ull) >> 7) * 0x0101010101010101ull) >> 56);
        other +=
            (int64_t)((((v & (v << 1) & 0x8080808080808080ull) >> 7) * 0x0101010101010101ull) >>
                      56);
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c < 0x80) {
            ascii++;
        } else if (c >= 0xC0) {
            other++; /* a multi-byte character's lead byte */
        }
    }
    return (int64_t)((ascii + 3) / 4) + other;
}

/* A string token's estimate, what sl_ap_text_tokens counts over its bytes:
 * (bytes + 3) / 4 plus what the scanner found its non-ASCII characters add
 * (SL_JSON_HI). */
static inline int64_t
sl_ap_tok_tokens(const sl_jdoc_t *d, const sl_jtok_t *t)
{
    if (t->hi == SL_JSON_HI_FAR) {
        return sl_ap_text_tokens(d->src + t->start, t->len);
    }
    return (int64_t)((t->len + 3) / 4) + (t->hi ? (int64_t)t->hi - SL_JSON_HI_BIAS : 0);
}

int64_t
sl_ap_str_tokens(const sl_jdoc_t *d, int tok)
{
    return sl_ap_tok_tokens(d, &d->t[tok]);
}

/* What the estimate does with a member named by key token `k`.  The names'
 * lengths differ from each other and are at least 4 (sl_ap_key_kind). */
enum { SL_AP_KEY_OTHER, SL_AP_KEY_TYPE, SL_AP_KEY_SKIP };

static const struct {
    const char *name;
    size_t len;
    int kind;
} sl_ap_keys[] = {
    {"type", 4, SL_AP_KEY_TYPE},
    {"signature", 9, SL_AP_KEY_SKIP},     /* never sent upstream */
    {"cache_control", 13, SL_AP_KEY_SKIP} /* a marker, not prompt text */
};

/* The table's lengths as a bit set (folded at compile time). */
static inline uint32_t
sl_ap_key_lens(void)
{
    uint32_t m = 0;
    size_t j;

    for (j = 0; j < sizeof(sl_ap_keys) / sizeof(sl_ap_keys[0]); j++) {
        m |= sl_ap_keys[j].len < 32 ? 1u << sl_ap_keys[j].len : 0;
    }
    return m;
}

static inline int
sl_ap_key_kind(const sl_jdoc_t *d, int k)
{
    const sl_jtok_t *t = &d->t[k];
    size_t j;

    if (!t->esc) {
        const char *p = d->src + t->start;
        uint32_t a, b;

        /* the length first: most keys are none of these; then the entry of
         * that length (the table's lengths differ, and are 4 or more), its
         * first four bytes as one word, then the rest */
        if (t->len >= 32 || !(sl_ap_key_lens() >> t->len & 1)) {
            return SL_AP_KEY_OTHER;
        }
        for (j = 0; sl_ap_keys[j].len != t->len; j++) {
        }
        memcpy(&a, p, 4);
        memcpy(&b, sl_ap_keys[j].name, 4);
        return a == b && (t->len == 4 || memcmp(p + 4, sl_ap_keys[j].name + 4, t->len - 4) == 0)
                   ? sl_ap_keys[j].kind
                   : SL_AP_KEY_OTHER;
    }
    for (j = 0; j < sizeof(sl_ap_keys) / sizeof(sl_ap_keys[0]); j++) {
        if (sl_json_str_eq(d, k, sl_ap_keys[j].name)) {
            return sl_ap_keys[j].kind;
        }
    }
    return SL_AP_KEY_OTHER;
}

/* Is token `tok` (or -1) the string lit (n bytes)? */
static inline int
sl_ap_str_is(const sl_jdoc_t *d, int tok, const char *lit, size_t n)
{
    const sl_jtok_t *t;

    if (tok < 0) {
        return 0;
    }
    t = &d->t[tok];
    if (t->type != SL_J_STR || t->esc) {
        return sl_json_str_eq(d, tok, lit);
    }
    return t->len == n && memcmp(d->src + t->start, lit, n) == 0;
}

static int64_t
sl_ap_count(const sl_jdoc_t *d, int tok, int depth)
{
    int64_t sum = 0;
    int i, end;

    if (depth > 64) {
        return 0;
    }
    switch (d->t[tok].type) {
    case SL_J_STR:
        return sl_ap_tok_tokens(d, &d->t[tok]);
    case SL_J_NUM:
        return 1;
    case SL_J_ARR:
        end = SL_JSON_END(d, tok);
        for (i = tok + 1; i < end; i = SL_JSON_NEXT(d, i)) {
            sum += sl_ap_count(d, i, depth + 1);
        }
        return sum;
    case SL_J_OBJ: {
        int t = -1; /* the first "type" member's value */

        /* one walk: the members are counted while the block's type is
         * looked for (an image or redacted thinking replaces the sum) */
        end = SL_JSON_END(d, tok);
        for (i = tok + 1; i < end; i = SL_JSON_NEXT_MEMBER(d, i)) {
            const sl_jtok_t *v = &d->t[i + 1];
            int kind = sl_ap_key_kind(d, i);

            if (kind == SL_AP_KEY_TYPE && t < 0) {
                t = i + 1;
            } else if (kind == SL_AP_KEY_SKIP) {
                continue;
            }
            sum += sl_ap_tok_tokens(d, &d->t[i]);
            /* a string value here, without the call (which counts
             * nothing past depth 64) */
            sum += v->type == SL_J_STR && depth < 64 ? sl_ap_tok_tokens(d, v)
                                                     : sl_ap_count(d, i + 1, depth + 1);
        }
        if (sl_ap_str_is(d, t, "image", 5)) {
            return SL_AP_IMAGE_TOKENS;
        }
        if (sl_ap_str_is(d, t, "redacted_thinking", 17)) {
            return 0;
        }
        return sum;
    }
    default:
        return 0;
    }
}

int64_t
sl_ap_estimate_tokens(const sl_jdoc_t *d)
{
    static const char *const parts[] = {"system", "messages", "tools"};
    int64_t sum = 0;
    size_t k;
    int msgs;

    for (k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        int v = sl_json_get(d, 0, parts[k]);

        if (v >= 0) {
            sum += sl_ap_count(d, v, 0);
        }
    }
    /* chat-template overhead: a few tokens per message */
    msgs = sl_json_get_t(d, 0, "messages", SL_J_ARR);
    if (msgs >= 0) {
        int i, end = SL_JSON_END(d, msgs);

        for (i = msgs + 1; i < end; i = SL_JSON_NEXT(d, i)) {
            sum += 3;
        }
    }
    return sum;
}

int
sl_ap_count_tokens(const sl_ap_conf_t *conf, const char *body, size_t len, sl_jdoc_t *d,
                   int64_t *tokens, sl_ap_req_info_t *info)
{
    sl_ap_buf_t out = {0};
    int rc;

    /* What /v1/messages on this route would refuse is refused here too,
     * with the same 400 (wrong types, another model, 513 tools, broken
     * blocks, invalid UTF-8): the request is translated as the body phase
     * would, and the translation thrown away. */
    rc = sl_ap_encode_request(&conf->t, body, len, d, &out, info);
    sl_ap_buf_free(&out);
    if (rc != 0) {
        if (rc == -1 && info->status == 0) {
            info->status = 400;
        }
        return rc;
    }
    info->status = 0;
    *tokens = sl_ap_estimate_tokens(d);
    return 0;
}
