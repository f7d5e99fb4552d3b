/* headers.c - ordered header list (see headers.h). */

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "http/headers.h"

/* Room for `more` fields (the array doubles; the old one stays in the
 * pool, freed with it). */
static void
reserve(sl_headers_t *h, sl_pool_t *p, size_t more)
{
    size_t cap;
    sl_header_t *a;

    if (h->n + more <= h->cap)
        return;
    cap = h->cap ? h->cap * 2 : 16;
    while (cap < h->n + more)
        cap *= 2;
    a = sl_palloc(p, cap * sizeof(*a));
    if (h->n)
        memcpy(a, h->items, h->n * sizeof(*a));
    h->items = a;
    h->cap = cap;
}

void
sl_headers_add(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value)
{
    char *t = sl_palloc(p, name.len + value.len + 2); /* both, NUL-terminated */

    reserve(h, p, 1);
    if (name.len)
        memcpy(t, name.ptr, name.len);
    t[name.len] = '\0';
    h->items[h->n].name = (sl_str_t){t, name.len};
    t += name.len + 1;
    if (value.len)
        memcpy(t, value.ptr, value.len);
    t[value.len] = '\0';
    h->items[h->n].value = (sl_str_t){t, value.len};
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
sl_headers_add_ref(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value)
{
    reserve(h, p, 1);
    h->items[h->n].name = name;
    h->items[h->n].value = value;
    h->n++;
}

void
sl_headers_set_ref(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value)
{
    for (size_t i = 0; i < h->n; i++) {
        if (sl_str_caseeq(h->items[i].name, name)) {
            /* the first in place (keeps order), the others dropped */
            size_t j = i + 1;
            h->items[i].value = value;
            for (size_t k = i + 1; k < h->n; k++)
                if (!sl_str_caseeq(h->items[k].name, name))
                    h->items[j++] = h->items[k];
            h->n = j;
            return;
        }
    }
    sl_headers_add_ref(h, p, name, value);
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
    reserve(h, p, n);
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

/* ---- prepared blocks ---- */

struct sl_header_block {
    uint64_t lens;    /* bit (len % 64) set for every name's length */
    size_t nnames;    /* distinct names (any case): removed wherever they are */
    sl_str_t *names;  /* into ntext */
    size_t nadd;      /* fields appended, in order */
    sl_header_t *add; /* into text */
    char *text, *ntext;
    size_t bytes; /* of text: every added name and value, NUL-terminated */
};

static size_t
find_name(const sl_str_t *list, size_t n, sl_str_t name)
{
    size_t k = 0;

    while (k < n && !sl_str_caseeq(list[k], name))
        k++;
    return k;
}

static char *
put_str(char *buf, sl_str_t s, sl_str_t *out)
{
    if (s.len)
        memcpy(buf, s.ptr, s.len);
    buf[s.len] = '\0';
    *out = (sl_str_t){buf, s.len};
    return buf + s.len + 1;
}

sl_header_block_t *
sl_header_block_new(const sl_str_t *names, const sl_str_t *values, size_t n)
{
    sl_header_block_t *b = sl_xcalloc(1, sizeof(*b));
    size_t cap = n ? n : 1, nbytes = 0, *vi = sl_xcalloc(cap, sizeof(*vi));
    sl_str_t *an = sl_xcalloc(cap, sizeof(*an)); /* the fields to add, by name */
    char *t;

    b->names = sl_xcalloc(cap, sizeof(*b->names));
    b->add = sl_xcalloc(cap, sizeof(*b->add));
    /* sl_headers_set_many's rules on an empty list: a name given again
     * takes the later value in the earlier place, a NULL value drops it */
    for (size_t k = 0; k < n; k++) {
        size_t e = find_name(an, b->nadd, names[k]);
        if (find_name(b->names, b->nnames, names[k]) == b->nnames) {
            b->names[b->nnames++] = names[k];
            nbytes += names[k].len + 1;
            b->lens |= 1ull << (names[k].len % 64);
        }
        if (values[k].ptr == NULL) {
            if (e < b->nadd) {
                memmove(an + e, an + e + 1, (b->nadd - e - 1) * sizeof(*an));
                memmove(vi + e, vi + e + 1, (b->nadd - e - 1) * sizeof(*vi));
                b->nadd--;
            }
            continue;
        }
        if (e == b->nadd)
            an[b->nadd++] = names[k];
        vi[e] = k;
    }
    for (size_t e = 0; e < b->nadd; e++)
        b->bytes += an[e].len + values[vi[e]].len + 2;
    b->text = t = sl_xmalloc(b->bytes ? b->bytes : 1);
    for (size_t e = 0; e < b->nadd; e++) {
        t = put_str(t, an[e], &b->add[e].name);
        t = put_str(t, values[vi[e]], &b->add[e].value);
    }
    b->ntext = t = sl_xmalloc(nbytes ? nbytes : 1);
    for (size_t k = 0; k < b->nnames; k++)
        t = put_str(t, b->names[k], &b->names[k]);
    free(an);
    free(vi);
    return b;
}

void
sl_header_block_free(sl_header_block_t *b)
{
    if (b == NULL)
        return;
    free(b->names);
    free(b->add);
    free(b->text);
    free(b->ntext);
    free(b);
}

void
sl_headers_apply(sl_headers_t *h, sl_pool_t *p, const sl_header_block_t *b)
{
    size_t j = 0;
    char *buf;

    for (size_t i = 0; i < h->n; i++) {
        sl_str_t nm = h->items[i].name;
        /* a length none of the names has cannot match: no compare */
        if ((b->lens >> (nm.len % 64) & 1) && find_name(b->names, b->nnames, nm) < b->nnames)
            continue;
        if (j != i)
            h->items[j] = h->items[i];
        j++;
    }
    h->n = j;
    if (b->nadd == 0)
        return;
    reserve(h, p, b->nadd);
    buf = sl_palloc(p, b->bytes);
    memcpy(buf, b->text, b->bytes);
    for (size_t e = 0; e < b->nadd; e++) {
        const sl_header_t *f = &b->add[e];
        sl_header_t *o = &h->items[h->n++];
        o->name = (sl_str_t){buf + (f->name.ptr - b->text), f->name.len};
        o->value = (sl_str_t){buf + (f->value.ptr - b->text), f->value.len};
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
    /* by length first: every field is asked, and most have a length no
     * hop-by-hop name has (a compare per table entry cost ~40 instructions
     * on each field forwarded) */
    switch (name.len) {
    case 2:
        return sl_str_caseeq(name, SL_STR("te"));
    case 7:
        return sl_str_caseeq(name, SL_STR("trailer")) || sl_str_caseeq(name, SL_STR("upgrade"));
    case 10:
        return sl_str_caseeq(name, SL_STR("connection")) ||
               sl_str_caseeq(name, SL_STR("keep-alive"));
    case 16:
        return sl_str_caseeq(name, SL_STR("proxy-connection"));
    case 17:
        return sl_str_caseeq(name, SL_STR("transfer-encoding"));
    case 18:
        return sl_str_caseeq(name, SL_STR("proxy-authenticate"));
    default:
        return 0;
    }
}
