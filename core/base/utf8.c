/* utf8.c - find and replace ill-formed UTF-8 in JSON text the core writes. */

#include "base/utf8.h"

#define U8_HIGHS 0x8080808080808080ull

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4;
    else
        return 0;
    if (n < len)
        return 0;
    for (i = 1; i < len; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return len;
}

size_t
sl_utf8_bad_bytes(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, bad = 0, l;

    while (i < n) {
        if (i + 32 <= n) { /* ASCII 32 bytes at a time */
            uint64_t w0, w1, w2, w3;
            memcpy(&w0, p + i, 8);
            memcpy(&w1, p + i + 8, 8);
            memcpy(&w2, p + i + 16, 8);
            memcpy(&w3, p + i + 24, 8);
            if (((w0 | w1 | w2 | w3) & U8_HIGHS) == 0) {
                i += 32;
                continue;
            }
        }
        if (i + 8 <= n) { /* then eight */
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & U8_HIGHS) == 0) {
                i += 8;
                continue;
            }
        }
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        l = utf8_len(p + i, n - i);
        if (l == 0) {
            bad++;
            l = 1;
        }
        i += l;
    }
    return bad;
}

void
sl_utf8_fix_json(sl_strbuf_t *out, const char *s, size_t n, size_t bad)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t l;

    sl_strbuf_need(out, n + bad * 5 + 1);
    for (size_t i = 0; i < n; i += l) {
        l = p[i] < 0x80 ? 1 : utf8_len(p + i, n - i);
        if (l == 0) {
            SL_STRBUF_LIT(out, "\\ufffd");
            l = 1;
        } else {
            sl_strbuf_add(out, s + i, l);
        }
    }
}

char *
sl_utf8_json_dup(const char *s)
{
    size_t n = strlen(s), bad = sl_utf8_bad_bytes(s, n);
    sl_strbuf_t o = {0};

    sl_utf8_fix_json(&o, s, n, bad);
    sl_strbuf_add(&o, "", 1); /* the NUL */
    return o.p;
}
