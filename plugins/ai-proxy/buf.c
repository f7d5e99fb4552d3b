/* buf.c - growing output buffer with JSON string escaping, and the
 * OpenAI chat-chunk writer the stream decoders share.
 *
 * Every translator writes into one of these.  Appends never fail loudly:
 * an allocation failure sets the sticky `oom` flag and later appends are
 * ignored, so a translator checks once at the end instead of after every
 * call.
 */

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"

void
sl_ap_buf_free(sl_ap_buf_t *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->oom = 0;
}

int
sl_ap_buf_reserve(sl_ap_buf_t *b, size_t extra)
{
    size_t need, cap;
    char *p;

    if (b->oom) {
        return -2;
    }
    need = b->len + extra + 1; /* room for a NUL */
    if (need <= b->cap) {
        return 0;
    }
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        cap *= 2;
    }
    p = realloc(b->ptr, cap);
    if (p == NULL) {
        b->oom = 1;
        return -2;
    }
    b->ptr = p;
    b->cap = cap;
    return 0;
}

void
sl_ap_buf_add(sl_ap_buf_t *b, const char *p, size_t n)
{
    if (n == 0 || sl_ap_buf_reserve(b, n) != 0) {
        return;
    }
    memcpy(b->ptr + b->len, p, n);
    b->len += n;
    b->ptr[b->len] = '\0';
}

void
sl_ap_buf_adds(sl_ap_buf_t *b, const char *s)
{
    sl_ap_buf_add(b, s, strlen(s));
}

void
sl_ap_buf_addc(sl_ap_buf_t *b, char c)
{
    if (sl_ap_buf_reserve(b, 1) != 0) {
        return;
    }
    b->ptr[b->len++] = c;
    b->ptr[b->len] = '\0';
}

void
sl_ap_buf_addf(sl_ap_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (sl_ap_buf_reserve(b, 64) != 0) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(b->ptr + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        if (sl_ap_buf_reserve(b, (size_t)n) != 0) {
            return;
        }
        va_start(ap, fmt);
        vsnprintf(b->ptr + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void
sl_ap_buf_add_i64(sl_ap_buf_t *b, int64_t v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    /* the magnitude as unsigned: INT64_MIN has no positive int64 */
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    do {
        tmp[--i] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        tmp[--i] = '-';
    }
    sl_ap_buf_add(b, tmp + i, sizeof(tmp) - i);
}

void
sl_ap_buf_add_g15(sl_ap_buf_t *b, double v)
{
    /* "%.15g" writes an integral value whose exponent is below the
     * precision (|v| < 1e15) as that integer; -0 keeps its sign */
    if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v && !(v == 0 && signbit(v))) {
        sl_ap_buf_add_i64(b, (int64_t)v);
        return;
    }
    sl_ap_buf_addf(b, "%.15g", v);
}

void
sl_ap_buf_add_esc(sl_ap_buf_t *b, const char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;

    /* Worst case 6 bytes per input byte; reserve the common case and grow
     * per escape only when needed. */
    if (sl_ap_buf_reserve(b, n + 16) != 0) {
        return;
    }
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        const char *rep = NULL;
        char u[6];

        if (c >= 0x20 && c != '"' && c != '\\') {
            continue;
        }
        sl_ap_buf_add(b, p + run, i - run);
        run = i + 1;
        switch (c) {
        case '"':
            rep = "\\\"";
            break;
        case '\\':
            rep = "\\\\";
            break;
        case '\n':
            rep = "\\n";
            break;
        case '\r':
            rep = "\\r";
            break;
        case '\t':
            rep = "\\t";
            break;
        case '\b':
            rep = "\\b";
            break;
        case '\f':
            rep = "\\f";
            break;
        default:
            u[0] = '\\';
            u[1] = 'u';
            u[2] = '0';
            u[3] = '0';
            u[4] = hex[c >> 4];
            u[5] = hex[c & 15];
            sl_ap_buf_add(b, u, 6);
            continue;
        }
        sl_ap_buf_add(b, rep, 2);
    }
    sl_ap_buf_add(b, p + run, n - run);
}

void
sl_ap_buf_add_qstr(sl_ap_buf_t *b, const char *p, size_t n)
{
    sl_ap_buf_addc(b, '"');
    sl_ap_buf_add_esc(b, p, n);
    sl_ap_buf_addc(b, '"');
}

void
sl_ap_oai_chunk_head(sl_ap_buf_t *b, const sl_ap_oai_head_t *h)
{
    SL_AP_BUF_LIT(b, "data: {\"id\":\"");
    sl_ap_buf_adds(b, h->id);
    sl_ap_buf_addf(
        b, "\",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":", h->created);
    sl_ap_buf_add_qstr(b, h->model, strlen(h->model));
    SL_AP_BUF_LIT(b, ",\"choices\":[");
}

void
sl_ap_oai_chunk(sl_ap_buf_t *b, const sl_ap_oai_head_t *h, const char *delta_open,
                const sl_str_t *str, const char *delta_close, const char *fin)
{
    sl_ap_oai_chunk_head(b, h);
    SL_AP_BUF_LIT(b, "{\"index\":0,\"delta\":");
    sl_ap_buf_adds(b, delta_open);
    if (str) {
        sl_ap_buf_add(b, str->ptr, str->len);
    }
    sl_ap_buf_adds(b, delta_close);
    SL_AP_BUF_LIT(b, ",\"logprobs\":null,\"finish_reason\":");
    if (fin) {
        sl_ap_buf_addc(b, '"');
        sl_ap_buf_adds(b, fin);
        sl_ap_buf_addc(b, '"');
    } else {
        SL_AP_BUF_LIT(b, "null");
    }
    SL_AP_BUF_LIT(b, "}]}\n\n");
}
