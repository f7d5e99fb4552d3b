/* fmt.h - numbers as text on the per-request and per-chunk paths, without
 * printf: snprintf("%zx") costs ~800 instructions, a chunk of a streamed
 * answer's whole framing a few dozen.  Callers size their buffers with the
 * SL_FMT_* maxima; nothing is NUL-terminated unless said. */

#ifndef SL_FMT_H
#define SL_FMT_H

#include <stddef.h>
#include <stdint.h>

#define SL_FMT_DEC_MAX 20 /* digits of UINT64_MAX */
#define SL_FMT_HEX_MAX 16

/* v in decimal at out; returns the number of bytes written (1-20). */
static inline size_t
sl_fmt_u64(char *out, uint64_t v)
{
    char tmp[SL_FMT_DEC_MAX];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* v in decimal with a '-' when negative; returns the bytes written (1-20). */
static inline size_t
sl_fmt_i64(char *out, int64_t v)
{
    if (v >= 0)
        return sl_fmt_u64(out, (uint64_t)v);
    out[0] = '-';
    return 1 + sl_fmt_u64(out + 1, (uint64_t)0 - (uint64_t)v);
}

/* v in lowercase hex without leading zeros; returns the bytes written (1-16). */
static inline size_t
sl_fmt_hex(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = 1;

    for (uint64_t t = v >> 4; t != 0; t >>= 4)
        n++;
    for (size_t i = n; i > 0; i--, v >>= 4)
        out[i - 1] = digits[v & 15];
    return n;
}

/* v in lowercase hex, exactly 16 digits (leading zeros kept). */
static inline void
sl_fmt_hex16(char *out, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";

    for (int i = 15; i >= 0; i--, v >>= 4)
        out[i] = digits[v & 15];
}

#endif
