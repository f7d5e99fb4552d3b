/* ka_headers.c - the headers key-auth forwards for a consumer (Kong's
 * set_consumer: X-Consumer-ID, X-Consumer-Custom-ID, X-Consumer-Username,
 * X-Credential-Identifier, X-Anonymous-Consumer; an absent value clears
 * what the client sent).
 *
 * They are the same on every request of a credential, so each worker
 * prepares them once per credential as a header block (ABI 1.7): the host
 * checks names and values when the block is made and then applies it
 * without checking again.  The cache maps a credential handle to its
 * block, open addressing on the handle's address (the host's pointers, not
 * a client's choice), at most half full and at most KA_BLOCKS_MAX blocks;
 * past that, or for a value the host refuses, the headers are set with
 * req_headers_set on each request.  The cache lives in the instance's
 * per-worker copy of the config: the handles belong to that configuration
 * generation, and a worker never changes generation. */

#include <stdint.h>
#include <stdlib.h>

#include "key_auth.h"

#define KA_BLOCKS_MAX 16384 /* blocks per instance and worker (~0.3 KB each) */

enum { H_ID, H_CUSTOM, H_USER, H_CRED, H_ANON, NHDR };

#define NAME(s)                                                                                    \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }
static const sl_str_t names[NHDR] = {NAME("X-Consumer-ID"), NAME("X-Consumer-Custom-ID"),
                                     NAME("X-Consumer-Username"), NAME("X-Credential-Identifier"),
                                     NAME("X-Anonymous-Consumer")};
#undef NAME

typedef struct slot {
    const sl_credential_t *cred; /* NULL: empty */
    sl_header_block_t *block;
} slot_t;

struct ka_blocks {
    slot_t *slots; /* mask + 1 of them */
    size_t mask, n;
};

/* The values for `who` authenticated by `cred` (NULL: anonymous). */
static void
values(const sl_api_t *api, const sl_consumer_t *who, const sl_credential_t *cred, sl_str_t v[NHDR])
{
    for (int i = 0; i < NHDR; i++)
        v[i] = (sl_str_t){NULL, 0};
    api->consumer_info(who, &v[H_ID], &v[H_USER], &v[H_CUSTOM]);
    if (cred)
        api->credential_info(cred, &v[H_CRED], NULL);
    else
        v[H_ANON] = SL_STR("true");
    for (int i = 0; i < H_ANON; i++)
        if (v[i].len == 0) /* absent: cleared, as Kong's clear_header */
            v[i].ptr = NULL;
}

static size_t
slot_of(const struct ka_blocks *b, const sl_credential_t *cred)
{
    uint64_t h = (uint64_t)(uintptr_t)cred * 0x9e3779b97f4a7c15ull; /* Fibonacci hashing */
    size_t s = (size_t)(h >> 32) & b->mask;

    while (b->slots[s].cred != NULL && b->slots[s].cred != cred)
        s = (s + 1) & b->mask;
    return s;
}

/* Room for one more, or -1 (full, or out of memory). */
static int
reserve(ka_conf_t *c)
{
    struct ka_blocks *b = c->blocks, nb;

    if (b == NULL && (b = c->blocks = calloc(1, sizeof(*b))) == NULL)
        return -1;
    if (b->n >= KA_BLOCKS_MAX)
        return -1;
    if (b->slots != NULL && (b->n + 1) * 2 <= b->mask + 1)
        return 0;
    nb.mask = b->slots ? b->mask * 2 + 1 : 63;
    nb.n = b->n;
    if ((nb.slots = calloc(nb.mask + 1, sizeof(*nb.slots))) == NULL)
        return -1;
    for (size_t i = 0; b->slots && i <= b->mask; i++)
        if (b->slots[i].cred)
            nb.slots[slot_of(&nb, b->slots[i].cred)] = b->slots[i];
    free(b->slots);
    *b = nb;
    return 0;
}

/* The block for cred (anonymous: c->anon_block), made on first use; NULL
 * when it cannot be kept. */
static const sl_header_block_t *
block_for(const sl_api_t *api, ka_conf_t *c, const sl_consumer_t *who, const sl_credential_t *cred)
{
    sl_str_t v[NHDR];
    size_t s;

    if (cred == NULL) {
        if (c->anon_block == NULL) {
            values(api, who, NULL, v);
            c->anon_block = api->header_block_new(names, v, NHDR);
        }
        return c->anon_block;
    }
    if (c->blocks && c->blocks->slots) {
        s = slot_of(c->blocks, cred);
        if (c->blocks->slots[s].cred == cred)
            return c->blocks->slots[s].block;
    }
    if (reserve(c) != 0)
        return NULL;
    values(api, who, cred, v);
    s = slot_of(c->blocks, cred);
    if ((c->blocks->slots[s].block = api->header_block_new(names, v, NHDR)) == NULL)
        return NULL; /* a value the host refuses: req_headers_set says so */
    c->blocks->slots[s].cred = cred;
    c->blocks->n++;
    return c->blocks->slots[s].block;
}

int
ka_headers_set(const sl_api_t *api, sl_req_t *r, ka_conf_t *c, const sl_consumer_t *who,
               const sl_credential_t *cred)
{
    const sl_header_block_t *b = block_for(api, c, who, cred);
    sl_str_t v[NHDR];

    if (b != NULL)
        return api->req_headers_apply(r, b);
    values(api, who, cred, v);
    return api->req_headers_set(r, names, v, NHDR);
}

void
ka_headers_free(const sl_api_t *api, ka_conf_t *c)
{
    if (c->blocks) {
        for (size_t i = 0; c->blocks->slots && i <= c->blocks->mask; i++)
            api->header_block_free(c->blocks->slots[i].block);
        free(c->blocks->slots);
        free(c->blocks);
        c->blocks = NULL;
    }
    api->header_block_free(c->anon_block);
    c->anon_block = NULL;
}
