/* ct.h - equality of secrets in a time that depends on their length only.
 *
 * sl_ct_equal compares eight bytes at a time (the last eight overlapping
 * the ones before when the length is not a multiple of eight), XORs and
 * ORs them together with no early exit; the empty asm keeps the compiler
 * from reasoning one in.  OpenSSL's CRYPTO_memcmp does the same a byte at
 * a time behind a call into libcrypto: ~0.22k instructions for a 30-byte
 * key against ~30 here (key-auth compares one per request). */

#ifndef SL_CT_H
#define SL_CT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* 1 when the n bytes at a and b are equal, else 0. */
static inline int
sl_ct_equal(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    uint64_t acc = 0, u, v;
    size_t i = 0;

    if (n < 8) {
        for (; i < n; i++)
            acc |= (uint64_t)(x[i] ^ y[i]);
        return acc == 0;
    }
    for (;; i += 8) {
        if (i + 8 > n)
            i = n - 8; /* the last eight bytes, some compared twice */
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        acc |= u ^ v;
        __asm__("" : "+r"(acc));
        if (i + 8 == n)
            return acc == 0;
    }
}

#endif
