/* hdr_accum.c - header field accumulation for llhttp callbacks. */

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
sl_hdr_accum_field(sl_hdr_accum_t *a, const char *at, size_t len)
{
    append(a, at, len);
    a->name_len = a->len;
}

void
sl_hdr_accum_value(sl_hdr_accum_t *a, const char *at, size_t len)
{
    a->in_value = 1;
    append(a, at, len);
}

int
sl_hdr_accum_take(sl_hdr_accum_t *a, sl_str_t *name, sl_str_t *value)
{
    /* an empty piece may have marked a value with no buffer yet */
    const char *base = a->buf ? a->buf : "";

    if (!a->in_value && a->len == 0)
        return 0;
    name->ptr = base;
    name->len = a->name_len;
    value->ptr = base + a->name_len;
    value->len = a->len - a->name_len;
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
}

void
sl_hdr_accum_free(sl_hdr_accum_t *a)
{
    free(a->buf);
    a->buf = NULL;
    a->len = a->cap = a->name_len = 0;
    a->in_value = 0;
}
