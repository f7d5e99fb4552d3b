/* fmt_g14.c - a double as printf's "%.14g" (how Kong's cjson writes
 * numbers, and so the log record), without printf for the common case.
 *
 * The 14 significant digits are the double scaled by an exact power of ten
 * into [1e13, 1e14) and rounded to an integer.  The scaling rounds once, so
 * the product is within 0.008 of the exact one (below 2^47, half an ulp is
 * 2^-6): unless its fraction lies within 0.05 of a half, the rounded digits
 * are the exact value's, which is what printf rounds.  Near a half, and
 * outside the fixed-notation range %g uses for 14 digits (exponent -4 to
 * 13), the caller falls back to snprintf. */

#include "base/fmt.h"

#define G14_LOW 10000000000000.0 /* 1e13: the smallest 14-digit integer */
#define G14_HIGH 100000000000000ull

size_t
sl_fmt_g14(char *out, double d)
{
    static const double p10[18] = {1e0, 1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,
                                   1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17};
    char digits[14], *o = out;
    double a = d < 0 ? -d : d, x = 0, frac;
    uint64_t m;
    int e, k, last, i;

    if (!(a >= 1e-4 && a < 1e14)) /* 0, NaN, the exponent forms: printf */
        return 0;
    /* the decimal exponent: the first scale that reaches 14 digits */
    for (e = 13; e >= -4; e--) {
        k = 13 - e;
        x = a * p10[k];
        if (x >= G14_LOW)
            break;
    }
    if (e < -4)
        return 0;
    m = (uint64_t)x;
    frac = x - (double)m;
    if (frac > 0.45 && frac < 0.55)
        return 0; /* too near a tie to know which way the exact value goes */
    m += frac > 0.5;
    if (m >= G14_HIGH) { /* 99999999999999.7 -> 1e14: one digit more */
        m /= 10;
        if (++e > 13)
            return 0;
    }
    for (i = 13; i >= 0; i--, m /= 10)
        digits[i] = (char)('0' + m % 10);
    for (last = 13; last > 0 && digits[last] == '0'; last--)
        ; /* %g drops trailing zeros */
    if (d < 0)
        *o++ = '-';
    if (e >= 0) {
        for (i = 0; i <= e; i++)
            *o++ = digits[i];
        if (last > e) {
            *o++ = '.';
            for (i = e + 1; i <= last; i++)
                *o++ = digits[i];
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        for (i = -1; i > e; i--)
            *o++ = '0';
        for (i = 0; i <= last; i++)
            *o++ = digits[i];
    }
    return (size_t)(o - out);
}
