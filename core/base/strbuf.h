/* strbuf.h - a growable byte buffer (malloc'd; the caller frees p) for
 * text the core writes in one go: the upstream request head (proxy.c) and
 * the log record (serializer.c). */

#ifndef SL_STRBUF_H
#define SL_STRBUF_H

#include "base/common.h"

typedef struct sl_strbuf {
    char *p;
    size_t len, cap;
} sl_strbuf_t;

/* Make room for n more bytes. */
static inline void
sl_strbuf_need(sl_strbuf_t *b, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 256;
        b->p = sl_xrealloc(b->p, b->cap);
    }
}

/* s may be NULL when n is 0 (an absent Host, query...). */
static inline void
sl_strbuf_add(sl_strbuf_t *b, const char *s, size_t n)
{
    if (n == 0)
        return;
    sl_strbuf_need(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define SL_STRBUF_LIT(b, lit) sl_strbuf_add((b), "" lit, sizeof(lit) - 1) /* literals only */
#define SL_STRBUF_STR(b, s) sl_strbuf_add((b), (s).ptr, (s).len)

#endif
