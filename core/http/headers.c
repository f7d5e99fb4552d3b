/* headers.c - ordered header list (see headers.h). */

#include <ctype.h>
#include <string.h>

#include "http/headers.h"

void
sl_headers_add(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        sl_header_t *n = sl_palloc(p, cap * sizeof(*n));
        if (h->n)
            memcpy(n, h->items, h->n * sizeof(*n));
        h->items = n; /* old array stays in the pool: freed with it */
        h->cap = cap;
    }
    h->items[h->n].name.ptr = sl_pstrndup(p, name.ptr, name.len);
    h->items[h->n].name.len = name.len;
    h->items[h->n].value.ptr = sl_pstrndup(p, value.ptr, value.len);
    h->items[h->n].value.len = value.len;
    h->n++;
}

int
sl_headers_remove(sl_headers_t *h, sl_str_t name)
{
    size_t i, j = 0;
    int removed = 0;

    for (i = 0; i < h->n; i++) {
        if (sl_str_caseeq(h->items[i].name, name)) {
            removed++;
            continue;
        }
        h->items[j++] = h->items[i];
    }
    h->n = j;
    return removed;
}

void
sl_headers_set(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value)
{
    for (size_t i = 0; i < h->n; i++) {
        if (sl_str_caseeq(h->items[i].name, name)) {
            /* Replace the first in place (keeps order), drop the others. */
            size_t j = i + 1;
            h->items[i].value.ptr = sl_pstrndup(p, value.ptr, value.len);
            h->items[i].value.len = value.len;
            for (size_t k = i + 1; k < h->n; k++)
                if (!sl_str_caseeq(h->items[k].name, name))
                    h->items[j++] = h->items[k];
            h->n = j;
            return;
        }
    }
    sl_headers_add(h, p, name, value);
}

/* One pass for n names: the old fields of those names go, the new ones are
 * appended, their bytes copied into one pool block (a plugin setting half a
 * dozen X-RateLimit-* headers walked the list and allocated twice per
 * header).  With `null_removes`, a value whose ptr is NULL only removes its
 * name (given twice, the later entry wins either way). */
void
sl_headers_set_many(sl_headers_t *h, sl_pool_t *p, const sl_str_t *names, const sl_str_t *values,
                    size_t n, int null_removes)
{
    size_t bytes = 0, j = 0, base;
    char *buf;

    for (size_t k = 0; k < n; k++)
        bytes += names[k].len + values[k].len + 2;
    for (size_t i = 0; i < h->n; i++) {
        size_t k = 0;
        while (k < n && !sl_str_caseeq(h->items[i].name, names[k]))
            k++;
        if (k == n)
            h->items[j++] = h->items[i];
    }
    h->n = j;
    if (h->n + n > h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 16;
        while (cap < h->n + n)
            cap *= 2;
        sl_header_t *a = sl_palloc(p, cap * sizeof(*a));
        if (h->n)
            memcpy(a, h->items, h->n * sizeof(*a));
        h->items = a; /* the old array stays in the pool: freed with it */
        h->cap = cap;
    }
    buf = sl_palloc(p, bytes ? bytes : 1);
    base = h->n;
    for (size_t k = 0; k < n; k++) {
        sl_header_t *f = NULL;
        for (size_t e = base; e < h->n && f == NULL; e++) /* named twice: the later wins */
            if (sl_str_caseeq(h->items[e].name, names[k]))
                f = &h->items[e];
        if (null_removes && values[k].ptr == NULL) {
            if (f != NULL) { /* set earlier in this call: gone again */
                memmove(f, f + 1, (size_t)(&h->items[h->n] - (f + 1)) * sizeof(*f));
                h->n--;
            }
            continue;
        }
        if (f == NULL) {
            f = &h->items[h->n++];
            memcpy(buf, names[k].ptr, names[k].len);
            buf[names[k].len] = '\0';
            f->name = (sl_str_t){buf, names[k].len};
            buf += names[k].len + 1;
        }
        if (values[k].len)
            memcpy(buf, values[k].ptr, values[k].len);
        buf[values[k].len] = '\0';
        f->value = (sl_str_t){buf, values[k].len};
        buf += values[k].len + 1;
    }
}

const sl_header_t *
sl_headers_get(const sl_headers_t *h, sl_str_t name)
{
    for (size_t i = 0; i < h->n; i++)
        if (sl_str_caseeq(h->items[i].name, name))
            return &h->items[i];
    return NULL;
}

int
sl_headers_has_token(const sl_headers_t *h, sl_str_t name, sl_str_t token)
{
    for (size_t i = 0; i < h->n; i++) {
        if (!sl_str_caseeq(h->items[i].name, name))
            continue;
        const char *s = h->items[i].value.ptr, *e = s + h->items[i].value.len;
        while (s < e) {
            while (s < e && (*s == ' ' || *s == '\t' || *s == ','))
                s++;
            const char *t = s;
            while (t < e && *t != ',')
                t++;
            const char *te = t;
            while (te > s && (te[-1] == ' ' || te[-1] == '\t'))
                te--;
            if ((size_t)(te - s) == token.len && strncasecmp(s, token.ptr, token.len) == 0)
                return 1;
            s = t;
        }
    }
    return 0;
}

int
sl_header_is_hop_by_hop(sl_str_t name)
{
    /* lengths known here: a strlen per entry cost ~200 instructions on
     * every header forwarded */
    static const sl_str_t hop[] = {SL_STR("connection"),       SL_STR("keep-alive"),
                                   SL_STR("proxy-connection"), SL_STR("te"),
                                   SL_STR("trailer"),          SL_STR("transfer-encoding"),
                                   SL_STR("upgrade"),          SL_STR("proxy-authenticate")};
    for (size_t i = 0; i < sl_nelems(hop); i++)
        if (sl_str_caseeq(name, hop[i]))
            return 1;
    return 0;
}
