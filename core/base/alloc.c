/* alloc.c - allocation wrappers that abort on out-of-memory.  A gateway
 * worker that cannot allocate a few bytes cannot do anything useful; the
 * master respawns it. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/common.h"

static void
oom(size_t n)
{
    fprintf(stderr, "sluice: out of memory allocating %zu bytes\n", n);
    abort();
}

void *
sl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        oom(n);
    return p;
}

void *
sl_xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (p == NULL)
        oom(n * sz);
    return p;
}

void *
sl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        oom(n);
    return q;
}

void *
sl_xgrow(void *p, size_t n, size_t size)
{
    size_t cap;

    if (p != NULL && (n < 8 || (n & (n - 1)) != 0))
        return p; /* room left: the capacity is the next power of two */
    cap = n < 8 ? 8 : n * 2;
    if (size != 0 && cap > SIZE_MAX / size)
        oom(SIZE_MAX);
    return sl_xrealloc(p, cap * size);
}

char *
sl_strndup(const char *s, size_t len)
{
    char *p = sl_xmalloc(len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}
