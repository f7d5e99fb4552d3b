/* pool.c - per-request memory pool.  Small allocations are carved from
 * blocks; big ones get their own block.  Nothing is freed individually.
 * The pool and its first block are one allocation, and a few destroyed
 * pools are kept per thread for the next pools of their size: one is made
 * per request, and at 4 KiB it is beyond malloc's per-thread cache. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "base/pool.h"

#define SL_POOL_ALIGN 16

typedef struct sl_pool_block {
    struct sl_pool_block *next;
    size_t size, used;
    /* data follows, aligned */
} sl_pool_block_t;

typedef struct sl_pool_cleanup {
    struct sl_pool_cleanup *next;
    sl_pool_cleanup_fn fn;
    void *arg;
} sl_pool_cleanup_t;

struct sl_pool {
    sl_pool_block_t *blocks;
    sl_pool_cleanup_t *cleanups;
    size_t block_size;
    size_t total;
    sl_pool_block_t *first; /* allocated with the pool: not freed on its own */
    sl_pool_t *next_kept;   /* destroyed and kept for reuse (pool_reuse) */
};

#define SL_POOL_ROUND(n) (((n) + SL_POOL_ALIGN - 1) & ~(size_t)(SL_POOL_ALIGN - 1))
#define BLOCK_HDR SL_POOL_ROUND(sizeof(sl_pool_block_t))
#define POOL_HDR SL_POOL_ROUND(sizeof(sl_pool_t))

static sl_pool_block_t *
block_new(size_t size)
{
    sl_pool_block_t *b = sl_xmalloc(BLOCK_HDR + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

/* Destroyed pools kept for reuse, per thread.
 * Not under AddressSanitizer: a request's memory used after its end must
 * stay visible there. */
#if defined(__SANITIZE_ADDRESS__)
#define SL_POOL_KEEP 0
#else
#define SL_POOL_KEEP 8
#endif
static __thread sl_pool_t *kept;
static __thread unsigned nkept;

/* A kept pool whose first block has `size` bytes, or NULL. */
static sl_pool_t *
pool_reuse(size_t size)
{
    for (sl_pool_t **pp = &kept; *pp != NULL; pp = &(*pp)->next_kept) {
        sl_pool_t *p = *pp;
        if (p->block_size == size) {
            *pp = p->next_kept;
            nkept--;
            return p;
        }
    }
    return NULL;
}

sl_pool_t *
sl_pool_create(size_t block_size)
{
    size_t size = block_size ? block_size : 4096;
    sl_pool_t *p = nkept ? pool_reuse(size) : NULL;

    if (p == NULL)
        p = sl_xmalloc(POOL_HDR + BLOCK_HDR + size);
    sl_pool_block_t *b = (sl_pool_block_t *)((char *)p + POOL_HDR);

    b->next = NULL;
    b->size = size;
    b->used = 0;
    p->blocks = p->first = b;
    p->cleanups = NULL;
    p->block_size = size;
    p->total = 0;
    return p;
}

void
sl_pool_destroy(sl_pool_t *p)
{
    sl_pool_cleanup_t *c, *cn;
    sl_pool_block_t *b, *bn;

    if (p == NULL)
        return;
    for (c = p->cleanups; c; c = cn) { /* reverse order of registration */
        cn = c->next;
        c->fn(c->arg);
    }
    for (b = p->blocks; b; b = bn) {
        bn = b->next;
        if (b != p->first)
            free(b);
    }
#if SL_POOL_KEEP > 0 /* under ASan nkept < 0 fails -Werror=type-limits */
    if (nkept < SL_POOL_KEEP) {
        p->next_kept = kept;
        kept = p;
        nkept++;
        return;
    }
#endif
    free(p);
}

void *
sl_palloc(sl_pool_t *p, size_t n)
{
    sl_pool_block_t *b = p->blocks;
    size_t need = (n + SL_POOL_ALIGN - 1) & ~(size_t)(SL_POOL_ALIGN - 1);

    if (need == 0)
        need = SL_POOL_ALIGN;
    p->total += need;
    if (need > p->block_size / 4) {
        /* Large: own block, linked after the current one so the current
         * block keeps serving small allocations. */
        sl_pool_block_t *big = block_new(need);
        big->used = need;
        big->next = b->next;
        b->next = big;
        return (char *)big + BLOCK_HDR;
    }
    if (b->size - b->used < need) {
        b = block_new(p->block_size);
        b->next = p->blocks;
        p->blocks = b;
    }
    void *r = (char *)b + BLOCK_HDR + b->used;
    b->used += need;
    return r;
}

void *
sl_pcalloc(sl_pool_t *p, size_t n)
{
    void *r = sl_palloc(p, n);
    memset(r, 0, n);
    return r;
}

char *
sl_pstrndup(sl_pool_t *p, const char *s, size_t n)
{
    char *r = sl_palloc(p, n + 1);
    if (n)
        memcpy(r, s, n);
    r[n] = '\0';
    return r;
}

int
sl_pool_cleanup_add(sl_pool_t *p, sl_pool_cleanup_fn fn, void *arg)
{
    sl_pool_cleanup_t *c = sl_palloc(p, sizeof(*c));
    c->fn = fn;
    c->arg = arg;
    c->next = p->cleanups;
    p->cleanups = c;
    return SL_OK;
}

size_t
sl_pool_used(const sl_pool_t *p)
{
    return p->total;
}
