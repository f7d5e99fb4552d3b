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
    /* "00" .. "99": two digits per division (a 13-digit time in ms takes
     * seven, not thirteen) */
    static const char pairs[201] = "00010203040506070809"
                                   "10111213141516171819"
                                   "20212223242526272829"
                                   "30313233343536373839"
                                   "40414243444546474849"
                                   "50515253545556575859"
                                   "60616263646566676869"
                                   "70717273747576777879"
                                   "80818283848586878889"
                                   "90919293949596979899";
    static const uint64_t p10[20] = {1ull,
                                     10ull,
                                     100ull,
                                     1000ull,
                                     10000ull,
                                     100000ull,
                                     1000000ull,
                                     10000000ull,
                                     100000000ull,
                                     1000000000ull,
                                     10000000000ull,
                                     100000000000ull,
                                     1000000000000ull,
                                     10000000000000ull,
                                     100000000000000ull,
                                     1000000000000000ull,
                                     10000000000000000ull,
                                     100000000000000000ull,
                                     1000000000000000000ull,
                                     10000000000000000000ull};
    /* digits: log10 from the bit length (1233 / 4096 ~ log10(2)), then one
     * comparison; v | 1 has as many digits as v, and one for 0 */
    unsigned bits = 64u - (unsigned)__builtin_clzll(v | 1);
    size_t t = (bits * 1233u) >> 12, n = t + ((v | 1) >= p10[t]), i;

    for (i = n; v >= 100; v /= 100) {
        const char *d = pairs + (v % 100) * 2;
        out[--i] = d[1];
        out[--i] = d[0];
    }
    if (v >= 10) {
        out[1] = pairs[v * 2 + 1];
        out[0] = pairs[v * 2];
    } else {
        out[0] = (char)('0' + v);
    }
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

    for (int i = 14; i >= 0; i -= 2, v >>= 8) { /* a byte per step */
        out[i] = digits[(v >> 4) & 15];
        out[i + 1] = digits[v & 15];
    }
}

/* d as snprintf("%.14g") writes it, at out (SL_FMT_G14_MAX bytes), for
 * finite values from 1e-4 to below 1e14 whose 14th digit is not near a
 * rounding tie; returns the bytes written, or 0 when the caller must use
 * snprintf (0, -0, other magnitudes, near-ties).  base/fmt_g14.c */
#define SL_FMT_G14_MAX 24
size_t sl_fmt_g14(char *out, double d);

#endif
