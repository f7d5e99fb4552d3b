/* ref_scan.c - the oracle for json_scan.c's fast string scanner and the
 * token estimate's shortcuts: the scanner and estimate as they were before
 * (commit "bench_ai_proxy FILE [N]"), copied verbatim apart from the names
 * (sl_ref_json_parse, sl_ref_estimate_tokens).  test_fastpath.c and
 * tests/fuzz/fuzz_fastpath.c check that the production code produces the
 * same tokens, the same error and offset, the same estimate, and so the
 * same translation, on every input.  Not part of the plugin. */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ref_scan.h"

#define SL_AP_IMAGE_TOKENS 1600 /* count_tokens.c */

#define SL_JSON_MAX_DEPTH 256

static int
sl_json_push(sl_jdoc_t *d, sl_jtype_t type, size_t start)
{
    if (d->n == d->cap) {
        uint32_t cap = d->cap ? d->cap * 2 : 256;
        sl_jtok_t *t = realloc(d->t, (size_t)cap * sizeof(*t));

        if (t == NULL) {
            return -2;
        }
        d->t = t;
        d->cap = cap;
    }
    d->t[d->n].type = (uint8_t)type;
    d->t[d->n].esc = 0;
    d->t[d->n].start = (uint32_t)start;
    d->t[d->n].len = 0;
    d->t[d->n].next = d->n + 1;
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

/* Scan a string starting after its opening quote; returns the offset of the
 * closing quote or (size_t)-1. */
static size_t
sl_json_scan_str(const char *s, size_t len, size_t i, int *esc)
{
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        const char *q;

        if (c == '"') {
            return i;
        }
        if (c == '\\') {
            *esc = 1;
            if (i + 1 >= len) {
                return (size_t)-1;
            }
            c = (unsigned char)s[i + 1];
            if (c == 'u') {
                if (i + 5 >= len || !sl_is_hex(s[i + 2]) || !sl_is_hex(s[i + 3]) ||
                    !sl_is_hex(s[i + 4]) || !sl_is_hex(s[i + 5])) {
                    return (size_t)-1;
                }
                i += 6;
                continue;
            }
            if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
                return (size_t)-1;
            }
            i += 2;
            continue;
        }
        if (c < 0x20) {
            return (size_t)-1;
        }
        /* fast skip of plain bytes */
        q = memchr(s + i, '"', len - i);
        if (q == NULL) {
            return (size_t)-1;
        }
        {
            size_t j = i, end = (size_t)(q - s);

            /* eight bytes at a time while none is a backslash, a control
             * character or non-ASCII (the common case in prompts) */
            for (; j + 8 <= end; j += 8) {
                uint64_t v, bs;
                memcpy(&v, s + j, 8);
                bs = v ^ 0x5C5C5C5C5C5C5C5Cull;
                if (((v | ((v - 0x2020202020202020ull) & ~v) |
                      ((bs - 0x0101010101010101ull) & ~bs)) &
                     0x8080808080808080ull) != 0) {
                    break;
                }
            }
            for (; j < end; j++) {
                unsigned char x = (unsigned char)s[j];
                if (x == '\\' || x < 0x20) {
                    break;
                }
                if (x >= 0x80) {
                    size_t n = sl_utf8_seq((const unsigned char *)s, j, end);

                    if (n == 0) {
                        return (size_t)-1;
                    }
                    j += n - 1;
                }
            }
            i = j;
        }
    }
    return (size_t)-1;
}

/* A string (key or value) starting at the quote s[*i]: its token, with *i
 * moved past the closing quote; < 0 on error (as sl_json_fail / push). */
static int
sl_json_string(sl_jdoc_t *d, const char *s, size_t len, size_t *i)
{
    int esc = 0, tok;
    size_t end = sl_json_scan_str(s, len, *i + 1, &esc);

    if (end == (size_t)-1) {
        return sl_json_fail(d, *i, "invalid string");
    }
    tok = sl_json_push(d, SL_J_STR, *i + 1);
    if (tok < 0) {
        return tok;
    }
    d->t[tok].len = (uint32_t)(end - *i - 1);
    d->t[tok].esc = (uint8_t)esc;
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

int
sl_ref_json_parse(sl_jdoc_t *d, const char *s, size_t len)
{
    uint32_t stack[SL_JSON_MAX_DEPTH];
    int depth = 0;
    size_t i = 0;
    /* what may come next: 0 value, 1 key or '}', 2 ':' , 3 ',' or close,
     * 4 key (after ','), 5 value or ']' */
    int want = 0;
    int tok;

    d->src = s;
    d->n = 0;
    d->err = NULL;
    d->err_off = 0;
    if (len > UINT32_MAX - 1) {
        return sl_json_fail(d, 0, "document too large");
    }

    for (;;) {
        unsigned char c;

        while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
            i++;
        }
        if (i >= len) {
            if (depth == 0 && d->n > 0 && want == 3) {
                return 0;
            }
            return sl_json_fail(d, i, "unexpected end of JSON input");
        }
        c = (unsigned char)s[i];

        if (depth == 0 && d->n > 0) {
            return sl_json_fail(d, i, "unexpected data after the JSON value");
        }

        if (want == 2) {
            if (c != ':') {
                return sl_json_fail(d, i, "expected ':' after an object key");
            }
            i++;
            want = 0;
            continue;
        }
        if (want == 3) {
            sl_jtok_t *top = &d->t[stack[depth - 1]];

            if (c == ',') {
                i++;
                want = top->type == SL_J_OBJ ? 4 : 0;
                continue;
            }
            if ((c == '}' && top->type == SL_J_OBJ) || (c == ']' && top->type == SL_J_ARR)) {
                goto close;
            }
            return sl_json_fail(d, i, "expected ',' or a closing bracket");
        }
        if (want == 1 || want == 4) {
            if (c == '}' && want == 1) {
                goto close;
            }
            if (c != '"') {
                return sl_json_fail(d, i, "expected a string key");
            }
            tok = sl_json_string(d, s, len, &i);
            if (tok < 0) {
                return tok;
            }
            want = 2;
            continue;
        }
        if (want == 5 && c == ']') {
            goto close;
        }

        /* a value */
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
            want = c == '{' ? 1 : 5;
            continue;
        case '"':
            tok = sl_json_string(d, s, len, &i);
            if (tok < 0) {
                return tok;
            }
            break;
        case 't':
        case 'f':
        case 'n': {
            const char *lit = c == 't' ? "true" : c == 'f' ? "false" : "null";
            size_t ln = strlen(lit);

            if (len - i < ln || memcmp(s + i, lit, ln) != 0) {
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
        want = 3;
        if (depth == 0) {
            /* top-level scalar: only trailing whitespace may follow */
            while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
                i++;
            }
            if (i != len) {
                return sl_json_fail(d, i, "unexpected data after the JSON value");
            }
            return 0;
        }
        continue;

    close : {
        sl_jtok_t *top = &d->t[stack[--depth]];

        top->len = (uint32_t)(i + 1 - top->start);
        top->next = d->n;
        i++;
        want = 3;
        if (depth == 0) {
            while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) {
                i++;
            }
            if (i != len) {
                return sl_json_fail(d, i, "unexpected data after the JSON value");
            }
            return 0;
        }
    }
    }
}

static int64_t
sl_ref_text_tokens(const char *p, size_t n)
{
    size_t i = 0, ascii = 0;
    int64_t other = 0;

    /* eight bytes at a time: ASCII bytes have the top bit clear, lead
     * bytes of multi-byte characters have the top two bits set */
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        ascii += 8 - (size_t)__builtin_popcountll(v & 0x8080808080808080ull);
        other += __builtin_popcountll(v & (v << 1) & 0x8080808080808080ull);
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

static int64_t
sl_ref_count(const sl_jdoc_t *d, int tok, int depth)
{
    int64_t sum = 0;
    int i, end;

    if (depth > 64) {
        return 0;
    }
    switch (d->t[tok].type) {
    case SL_J_STR:
        return sl_ref_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
    case SL_J_NUM:
        return 1;
    case SL_J_ARR:
        end = SL_JSON_END(d, tok);
        for (i = tok + 1; i < end; i = SL_JSON_NEXT(d, i)) {
            sum += sl_ref_count(d, i, depth + 1);
        }
        return sum;
    case SL_J_OBJ: {
        int t = sl_json_get_t(d, tok, "type", SL_J_STR);

        if (sl_json_str_eq(d, t, "image")) {
            return SL_AP_IMAGE_TOKENS;
        }
        if (sl_json_str_eq(d, t, "redacted_thinking")) {
            return 0;
        }
        end = SL_JSON_END(d, tok);
        for (i = tok + 1; i < end; i = SL_JSON_NEXT_MEMBER(d, i)) {
            if (sl_json_str_eq(d, i, "signature") || sl_json_str_eq(d, i, "cache_control")) {
                continue;
            }
            sum += sl_ref_text_tokens(d->src + d->t[i].start, d->t[i].len);
            sum += sl_ref_count(d, i + 1, depth + 1);
        }
        return sum;
    }
    default:
        return 0;
    }
}

int64_t
sl_ref_estimate_tokens(const sl_jdoc_t *d)
{
    static const char *const parts[] = {"system", "messages", "tools"};
    int64_t sum = 0;
    size_t k;
    int msgs;

    for (k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        int v = sl_json_get(d, 0, parts[k]);

        if (v >= 0) {
            sum += sl_ref_count(d, v, 0);
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
