/* record_values.c - the values plugins set (api->set_serialize_typed and
 * _string, kept pending by serializer.c) written straight into the log
 * record, with no json-c tree built, serialized and freed per request.
 *
 * The pending list is replayed by place()'s rules into a small tree of
 * nodes on the stack: a value set at a key replaces what was there and
 * keeps its place among its siblings (json-c's object_add), a value set
 * below a non-object makes it a new empty object, an OBJECT value starts
 * empty.  Then the tree is written in member order.  tests/unit/core/
 * test_serializer.c compares the result with the tree's, byte for byte,
 * over random sequences. */

#include <math.h>
#include <stdio.h>

#include "base/fmt.h"
#include "plugin/ser_internal.h"

#define RV_MAX_NODES 128 /* more: the caller builds the json-c tree */
#define RV_NONE (-1)

typedef struct {
    const char *name; /* a segment of a pending key */
    size_t nlen;
    const struct sl_ser_pending *v; /* the value; NULL: an object */
    int first, last, next;          /* children (objects), sibling */
} rv_node_t;

#define RV_CHAIN 16 /* levels of the previous key remembered */

typedef struct {
    rv_node_t n[RV_MAX_NODES];
    int used;
    /* The previous key's path: node of each segment and where the segment
     * ends in the key.  The next key starts below the deepest segment the
     * two share (ai-proxy sets ai.proxy.usage.* one after the other). */
    const struct sl_ser_pending *prev;
    int chain[RV_CHAIN];
    size_t chain_end[RV_CHAIN];
    int depth;
} rv_tree_t;

static int
rv_child(rv_tree_t *t, int parent, const char *name, size_t nlen)
{
    for (int c = t->n[parent].first; c != RV_NONE; c = t->n[c].next)
        if (t->n[c].nlen == nlen && memcmp(t->n[c].name, name, nlen) == 0)
            return c;
    if (t->used == RV_MAX_NODES)
        return RV_NONE;
    int c = t->used++;
    t->n[c] = (rv_node_t){name, nlen, NULL, RV_NONE, RV_NONE, RV_NONE};
    if (t->n[parent].last == RV_NONE)
        t->n[parent].first = c;
    else
        t->n[t->n[parent].last].next = c;
    t->n[parent].last = c;
    return c;
}

/* Make node c an empty object (children dropped, place kept). */
static void
rv_empty_object(rv_node_t *c)
{
    c->v = NULL;
    c->first = c->last = RV_NONE;
}

static int
rv_is_object(const rv_node_t *c)
{
    return c->v == NULL || c->v->type == SL_VALUE_OBJECT;
}

/* How many segments of the previous key q's path goes through (as
 * ancestors of its last segment): their nodes are the same. */
static int
rv_shared(const rv_tree_t *t, const struct sl_ser_pending *q)
{
    const struct sl_ser_pending *pv = t->prev;
    size_t m = 0, lim;
    int d = 0;

    if (pv == NULL)
        return 0;
    lim = pv->klen < q->klen ? pv->klen : q->klen;
    for (uint64_t a, b; m + 8 <= lim; m += 8) { /* eight bytes at a time */
        memcpy(&a, pv->key + m, 8);
        memcpy(&b, q->key + m, 8);
        if (a != b)
            break;
    }
    while (m < lim && pv->key[m] == q->key[m])
        m++;
    /* segment d is shared when the keys agree up to its end and q goes on
     * below it */
    while (d < t->depth && t->chain_end[d] <= m && t->chain_end[d] < q->klen &&
           q->key[t->chain_end[d]] == '.')
        d++;
    return d;
}

/* place() for one pending value.  SL_OK, or SL_DECLINED out of nodes. */
static int
rv_place(rv_tree_t *t, const struct sl_ser_pending *q)
{
    const char *p = q->key, *end = q->key + q->klen;
    int node = 0, depth = rv_shared(t, q);

    if (depth > 0) {
        node = t->chain[depth - 1];
        p = q->key + t->chain_end[depth - 1] + 1;
        if (!rv_is_object(&t->n[node]))
            rv_empty_object(&t->n[node]);
    }
    t->prev = q;
    for (;; depth++) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t n = (size_t)((dot ? dot : end) - p);
        int c = rv_child(t, node, p, n);

        if (c == RV_NONE)
            return SL_DECLINED;
        if (depth < RV_CHAIN) {
            t->chain[depth] = c;
            t->chain_end[depth] = (size_t)(p + n - q->key);
            t->depth = depth + 1;
        }
        if (dot == NULL) {
            rv_empty_object(&t->n[c]);
            if (q->type != SL_VALUE_OBJECT)
                t->n[c].v = q;
            return SL_OK;
        }
        if (!rv_is_object(&t->n[c]))
            rv_empty_object(&t->n[c]);
        node = c;
        p = dot + 1;
    }
}

void
sl_ser_json_double(sl_strbuf_t *b, double d)
{
    char t[32];
    int n;

    /* a whole number below 1e14 is its integer under %.14g ("-0" aside) */
    if (d == floor(d) && fabs(d) < 1e14 && !(d == 0 && signbit(d))) {
        sl_ser_json_int(b, (int64_t)d);
        return;
    }
    n = (int)sl_fmt_g14(t, d);
    if (n == 0)
        n = snprintf(t, sizeof(t), "%.14g", d); /* near a tie, or an exponent */
    if (n > 0)
        sl_strbuf_add(b, t, (size_t)n < sizeof(t) ? (size_t)n : sizeof(t) - 1);
}

static void
rv_write(sl_strbuf_t *b, const rv_tree_t *t, int node)
{
    const rv_node_t *x = &t->n[node];

    if (x->v == NULL || x->v->type == SL_VALUE_OBJECT) {
        SL_STRBUF_LIT(b, "{");
        for (int c = x->first; c != RV_NONE; c = t->n[c].next) {
            if (c != x->first)
                SL_STRBUF_LIT(b, ",");
            sl_ser_json_str(b, t->n[c].name, t->n[c].nlen);
            SL_STRBUF_LIT(b, ":");
            rv_write(b, t, c);
        }
        SL_STRBUF_LIT(b, "}");
        return;
    }
    switch (x->v->type) {
    case SL_VALUE_BOOL:
        if (x->v->i != 0)
            SL_STRBUF_LIT(b, "true");
        else
            SL_STRBUF_LIT(b, "false");
        break;
    case SL_VALUE_INT:
        sl_ser_json_int(b, x->v->i);
        break;
    case SL_VALUE_DOUBLE:
        sl_ser_json_double(b, x->v->d);
        break;
    case SL_VALUE_STRING:
        sl_ser_json_str(b, x->v->s.ptr, x->v->s.len);
        break;
    case SL_VALUE_ARRAY: /* set as a value: empty */
        SL_STRBUF_LIT(b, "[]");
        break;
    default: /* SL_VALUE_NULL */
        SL_STRBUF_LIT(b, "null");
        break;
    }
}

int
sl_ser_write_pending(sl_strbuf_t *b, const struct sl_ser_pending *head, const char *const *reserved)
{
    rv_tree_t t;

    t.used = 1;
    t.prev = NULL;
    t.depth = 0;
    t.n[0] = (rv_node_t){"", 0, NULL, RV_NONE, RV_NONE, RV_NONE};
    for (const struct sl_ser_pending *q = head; q != NULL; q = q->next)
        if (rv_place(&t, q) != SL_OK)
            return SL_DECLINED;
    for (int c = t.n[0].first; c != RV_NONE; c = t.n[c].next)
        for (const char *const *k = reserved; *k != NULL; k++)
            if (strlen(*k) == t.n[c].nlen && memcmp(*k, t.n[c].name, t.n[c].nlen) == 0)
                return SL_DECLINED;
    for (int c = t.n[0].first; c != RV_NONE; c = t.n[c].next) {
        SL_STRBUF_LIT(b, ",");
        sl_ser_json_str(b, t.n[c].name, t.n[c].nlen);
        SL_STRBUF_LIT(b, ":");
        rv_write(b, &t, c);
    }
    return SL_OK;
}
