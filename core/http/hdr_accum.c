/* hdr_accum.c - header field accumulation for llhttp callbacks: borrowed
 * from the parser's input while a field comes in one piece, copied when it
 * does not (see hdr_accum.h). */

#include <stdlib.h>

#include "http/hdr_accum.h"

static void
append(sl_hdr_accum_t *a, const char *at, size_t len)
{
    if (len == 0)
        return; /* llhttp may report an empty piece: no buffer yet is fine */
    if (a->len + len > a->cap) {
        a->cap = (a->len + len) * 2;
        a->buf = sl_xrealloc(a->buf, a->cap);
    }
    memcpy(a->buf + a->len, at, len);
    a->len += len;
}

void
sl_hdr_accum_own(sl_hdr_accum_t *a)
{
    const char *n = a->nptr;

    a->nptr = NULL;
    a->len = 0;
    append(a, n, a->name_len);
    if (a->in_value)
        append(a, a->vptr, a->vlen);
    a->vptr = NULL;
    a->vlen = 0;
}

void
sl_hdr_accum_field(sl_hdr_accum_t *a, const char *at, size_t len)
{
    if (len == 0)
        return;
    if (sl_hdr_accum_empty(a) && !a->in_value) {
        a->nptr = at; /* the whole name, most likely: not copied */
        a->name_len = len;
        return;
    }
    sl_hdr_accum_settle(a);
    append(a, at, len);
    a->name_len = a->len;
}

void
sl_hdr_accum_value(sl_hdr_accum_t *a, const char *at, size_t len)
{
    if (a->nptr != NULL && !a->in_value) {
        a->in_value = 1;
        a->vptr = at;
        a->vlen = len;
        return;
    }
    sl_hdr_accum_settle(a);
    a->in_value = 1;
    append(a, at, len);
}

int
sl_hdr_accum_take(sl_hdr_accum_t *a, sl_str_t *name, sl_str_t *value)
{
    if (a->nptr != NULL) {
        name->ptr = a->nptr;
        name->len = a->name_len;
        value->ptr = a->in_value ? a->vptr : "";
        value->len = a->in_value ? a->vlen : 0;
    } else {
        /* an empty piece may have marked a value with no buffer yet */
        const char *base = a->buf ? a->buf : "";

        if (!a->in_value && a->len == 0)
            return 0;
        name->ptr = base;
        name->len = a->name_len;
        value->ptr = base + a->name_len;
        value->len = a->len - a->name_len;
    }
    /* llhttp strips leading whitespace of a value, not trailing */
    while (value->len && (value->ptr[value->len - 1] == ' ' || value->ptr[value->len - 1] == '\t'))
        value->len--;
    sl_hdr_accum_reset(a);
    return 1;
}

void
sl_hdr_accum_reset(sl_hdr_accum_t *a)
{
    a->len = 0;
    a->name_len = 0;
    a->in_value = 0;
    a->nptr = a->vptr = NULL;
    a->vlen = 0;
}

void
sl_hdr_accum_free(sl_hdr_accum_t *a)
{
    free(a->buf);
    a->buf = NULL;
    a->cap = 0;
    sl_hdr_accum_reset(a);
}
