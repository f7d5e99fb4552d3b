/* keyed_index.c - SipHash-tagged open-addressing indexes (keyed_index.h). */

#include "conf/keyed_index.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

#define TAG_SIZE 8 /* SipHash-2-4's 64-bit output */

int
sl_khash_init(sl_khash_t *h)
{
    size_t size = TAG_SIZE;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_END};
    EVP_MAC *mac;

    if (h->mac)
        return 0;
    if (RAND_bytes(h->secret, sizeof(h->secret)) != 1 ||
        (mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL)) == NULL)
        return -1;
    h->mac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (h->mac == NULL || EVP_MAC_init(h->mac, h->secret, sizeof(h->secret), params) != 1) {
        EVP_MAC_CTX_free(h->mac);
        h->mac = NULL;
        return -1;
    }
    return 0;
}

/* The secret is set again on every call: re-initialising with a NULL key is
 * not reliable across OpenSSL 3.0 releases. */
int
sl_khash(const sl_khash_t *h, const void *p, size_t n, uint64_t *tag)
{
    unsigned char out[TAG_SIZE];
    size_t outl = 0;

    if (h->mac == NULL || EVP_MAC_init(h->mac, h->secret, sizeof(h->secret), NULL) != 1 ||
        EVP_MAC_update(h->mac, p, n) != 1 || EVP_MAC_final(h->mac, out, &outl, sizeof(out)) != 1 ||
        outl != sizeof(out))
        return -1;
    memcpy(tag, out, sizeof(out));
    return 0;
}

void
sl_khash_free(sl_khash_t *h)
{
    EVP_MAC_CTX_free(h->mac);
    h->mac = NULL;
    OPENSSL_cleanse(h->secret, sizeof(h->secret));
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
