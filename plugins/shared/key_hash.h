/* key_hash.h - the hash of a counter key for the Redis store's tables (the
 * owed increments, the formatted commands): FNV-1a's step on 8-byte words
 * (a key is ~110 bytes, hashed on every request), then a fold. */

#ifndef SL_KEY_HASH_H
#define SL_KEY_HASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline unsigned
rl_key_hash(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ n, w;
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        memcpy(&w, s + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    w = 0;
    memcpy(&w, s + i, n - i);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 32;
    return (unsigned)(h ^ (h >> 17));
}

#endif
