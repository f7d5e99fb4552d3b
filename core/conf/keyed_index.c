/* keyed_index.c - SipHash-tagged open-addressing indexes (keyed_index.h).
 *
 * The tag is libsodium's crypto_shorthash (SipHash-2-4, 64 bits): one
 * direct call, ~0.25k instructions for a 30-byte key, where OpenSSL's
 * EVP_MAC init/update/final took ~0.9k for the same SipHash (a key-auth
 * request hashes the presented key once). */

#include "conf/keyed_index.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

_Static_assert(crypto_shorthash_KEYBYTES == sizeof(((sl_khash_t *)0)->secret),
               "SipHash-2-4 takes a 16-byte key");
_Static_assert(crypto_shorthash_BYTES == sizeof(uint64_t), "SipHash-2-4 gives 64 bits");

int
sl_khash_init(sl_khash_t *h)
{
    if (h->ready)
        return 0;
    if (sodium_init() < 0) /* 0 the first time, 1 after: both fine */
        return -1;
    randombytes_buf(h->secret, sizeof(h->secret));
    h->ready = 1;
    return 0;
}

int
sl_khash(const sl_khash_t *h, const void *p, size_t n, uint64_t *tag)
{
    unsigned char out[crypto_shorthash_BYTES];

    if (!h->ready || crypto_shorthash(out, p, n, h->secret) != 0)
        return -1;
    memcpy(tag, out, sizeof(out));
    return 0;
}

void
sl_khash_free(sl_khash_t *h)
{
    sodium_memzero(h->secret, sizeof(h->secret));
    h->ready = 0;
}

static void
put(sl_kslot_t *slots, size_t mask, uint64_t tag, void *item)
{
    size_t s = (size_t)tag & mask;

    while (slots[s].item)
        s = (s + 1) & mask;
    slots[s].tag = tag;
    slots[s].item = item;
}

void
sl_kindex_add(sl_kindex_t *ix, uint64_t tag, void *item)
{
    if (ix->slots == NULL || (ix->n + 1) * 2 > ix->mask + 1) {
        size_t size = ix->slots ? (ix->mask + 1) * 2 : 16;
        sl_kslot_t *slots = sl_xcalloc(size, sizeof(*slots));
        for (size_t i = 0; ix->slots && i <= ix->mask; i++)
            if (ix->slots[i].item)
                put(slots, size - 1, ix->slots[i].tag, ix->slots[i].item);
        free(ix->slots);
        ix->slots = slots;
        ix->mask = size - 1;
    }
    put(ix->slots, ix->mask, tag, item);
    ix->n++;
}

void *
sl_kindex_next(const sl_kindex_t *ix, uint64_t tag, size_t *cursor)
{
    size_t s;

    if (ix->slots == NULL)
        return NULL;
    s = *cursor == SL_KINDEX_START ? (size_t)tag & ix->mask : (*cursor + 1) & ix->mask;
    for (; ix->slots[s].item; s = (s + 1) & ix->mask) {
        if (ix->slots[s].tag == tag) {
            *cursor = s;
            return ix->slots[s].item;
        }
    }
    return NULL;
}

void
sl_kindex_free(sl_kindex_t *ix)
{
    free(ix->slots);
    ix->slots = NULL;
    ix->mask = ix->n = 0;
}
