/* router.c - Kong "traditional_compatible" route matching and Kong's
 * get_upstream_uri_v0 path joining.
 *
 * sl_router_build() turns every route into one entry per path (a route
 * without paths gives one entry) and sorts the entries once, the way Kong
 * computes route priorities: more matching fields first (methods, hosts,
 * paths), then plain-host-only routes ahead of wildcard ones, then regex
 * paths (by regex_priority) ahead of prefix paths, then longer prefixes;
 * configuration order breaks ties.  Matching walks the sorted array and
 * takes the first entry whose fields all match; it allocates nothing. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/router.h"

typedef struct sl_rt_entry {
    const sl_route_t *route;
    const sl_route_path_t *path; /* NULL: the route has no paths */
    unsigned weight;             /* how many of methods/hosts/paths are set */
    unsigned plain_hosts;        /* hosts set and none is a wildcard */
    int regex_priority;
    size_t plen;  /* prefix length (0 for regex) */
    size_t order; /* configuration order */
    size_t ridx;  /* the route's place in conf->routes while building */
} sl_rt_entry_t;

typedef struct sl_router {
    sl_rt_entry_t *entries;
    size_t n;
} sl_router_t;

/* ---- regex translation (PCRE-isms Kong configs use -> POSIX ERE) ---- */

/* glibc's regcomp copies a repeated item once per count ({n}, and + as
 * "xx*"), so nested counts multiply: "((a{255}){255}){255}" or thirty
 * stacked '+' ask for gigabytes at config load (found by fuzz_config).
 * A path regex may expand to this many items; real ones use tens. */
#define SL_REGEX_MAX_EXPANSION 10000

/* Length of an ERE interval "{n}", "{n,}" or "{n,m}" at s, 0 if s is not
 * one; *factor gets how many copies of the item it asks for. */
static size_t
interval_len(const char *s, uint64_t *factor)
{
    const char *p = s + 1;
    uint64_t n = 0, m = 0;
    int has_m = 0, comma = 0;

    if (*s != '{' || *p < '0' || *p > '9')
        return 0;
    while (*p >= '0' && *p <= '9')
        n = n < 100000 ? n * 10 + (uint64_t)(*p++ - '0') : (p++, n);
    if (*p == ',') {
        comma = 1;
        for (p++; *p >= '0' && *p <= '9'; has_m = 1)
            m = m < 100000 ? m * 10 + (uint64_t)(*p++ - '0') : (p++, m);
    }
    if (*p != '}')
        return 0;
    *factor = has_m ? (m > n ? m : n) : comma ? n + 1 : n;
    if (*factor == 0)
        *factor = 1;
    return (size_t)(p + 1 - s);
}

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
    return a + b < a ? UINT64_MAX : a + b;
}

static uint64_t
sat_mul(uint64_t a, uint64_t b)
{
    return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

/* How many items regcomp will build for the translated ERE `re`: items
 * add up in a sequence, the longest alternative counts for a group, and a
 * repetition multiplies its item.  Saturates rather than overflows. */
static uint64_t
regex_expansion(const char *re)
{
    enum { DEPTH = 64 };
    struct {
        uint64_t seq, alt, last;
    } st[DEPTH] = {{0, 0, 0}};
    int d = 0;

    for (const char *c = re; *c; c++) {
        uint64_t item = 1, f;
        size_t il;
        switch (*c) {
        case '\\':
            if (c[1])
                c++;
            break;
        case '[': /* a bracket expression is one item; ']' first is literal */
            c++;
            if (*c == '^')
                c++;
            if (*c == ']')
                c++;
            while (*c && *c != ']')
                c++;
            if (!*c)
                return UINT64_MAX; /* regcomp refuses it anyway */
            break;
        case '(':
            if (++d >= DEPTH)
                return UINT64_MAX;
            st[d].seq = st[d].alt = st[d].last = 0;
            continue;
        case ')':
            if (d == 0)
                return UINT64_MAX;
            item = sat_add(st[d].seq > st[d].alt ? st[d].seq : st[d].alt, 1);
            d--;
            break;
        case '|':
            if (st[d].seq > st[d].alt)
                st[d].alt = st[d].seq;
            st[d].seq = st[d].last = 0;
            continue;
        case '*':
        case '?':
            continue; /* one copy, optional or looped */
        case '+':     /* regcomp makes x+ into xx* */
            st[d].seq = sat_add(st[d].seq, st[d].last);
            st[d].last = sat_mul(st[d].last, 2);
            continue;
        case '{':
            if ((il = interval_len(c, &f)) != 0) {
                st[d].seq = sat_add(st[d].seq, sat_mul(st[d].last, f - 1));
                st[d].last = sat_mul(st[d].last, f);
                c += il - 1;
                continue;
            }
            break;
        default:
            break;
        }
        st[d].seq = sat_add(st[d].seq, item);
        st[d].last = item;
    }
    return st[0].seq > st[0].alt ? st[0].seq : st[0].alt;
}

static int
translate_regex(const char *src, char *out, size_t outlen, char *err, size_t errlen)
{
    size_t o = 0;
    int in_br = 0;
    /* what the previous item was: 0 other, 1 a quantifier, 2 a quantifier
     * and its PCRE lazy '?' (dropped: whether an anchored path matches
     * does not depend on greed) */
    int quant = 0;

#define EMIT(s)                                                                                    \
    do {                                                                                           \
        size_t l_ = strlen(s);                                                                     \
        if (o + l_ + 2 >= outlen)                                                                  \
            goto toolong;                                                                          \
        memcpy(out + o, (s), l_);                                                                  \
        o += l_;                                                                                   \
    } while (0)
    EMIT("^(");
    for (const char *c = src; *c; c++) {
        char one[2] = {*c, 0};
        if (!in_br && *c != '*' && *c != '+' && *c != '?' && *c != '{')
            quant = 0;
        if (*c == '\\' && c[1]) {
            char n = *++c;
            if (in_br) {
                if (n == 'd')
                    EMIT("0-9");
                else if (n == 'w')
                    EMIT("A-Za-z0-9_");
                else if (n == 's')
                    EMIT(" \t\r\n\f\v");
                else {
                    one[0] = n;
                    EMIT(one);
                }
            } else if (n == 'd') {
                EMIT("[0-9]");
            } else if (n == 'D') {
                EMIT("[^0-9]");
            } else {
                char two[3] = {'\\', n, 0};
                EMIT(two);
            }
            continue;
        }
        if (in_br) {
            if (*c == ']')
                in_br = 0;
            EMIT(one);
            continue;
        }
        if (*c == '[') {
            in_br = 1;
            EMIT("[");
            if (c[1] == '^') {
                EMIT("^");
                c++;
            }
            if (c[1] == ']') {
                EMIT("]");
                c++;
            }
            continue;
        }
        if (*c == '*' || *c == '+' || *c == '?') {
            if (quant == 1 && *c == '?') {
                quant = 2;
                continue;
            }
            if (quant != 0) {
                snprintf(err, errlen, "invalid regex: '~%s' (%s)", src,
                         quant == 1 && *c == '+' ? "possessive quantifiers are not supported"
                                                 : "a quantifier after a quantifier");
                return SL_ERROR;
            }
            quant = 1;
            EMIT(one);
            continue;
        }
        if (*c == '{') {
            uint64_t f;
            size_t il = interval_len(c, &f);
            if (il != 0) {
                char iv[32];
                if (quant != 0 || il >= sizeof(iv)) {
                    snprintf(err, errlen, "invalid regex: '~%s' (%s)", src,
                             quant != 0 ? "repeat count after a quantifier"
                                        : "repeat count too large");
                    return SL_ERROR;
                }
                memcpy(iv, c, il);
                iv[il] = '\0';
                EMIT(iv);
                c += il - 1;
                quant = 1;
                continue;
            }
        }
        quant = 0;
        if (c[0] == '(' && c[1] == '?') {
            const char *q = c + 2;
            if (*q == 'P')
                q++;
            if (*q == '<' && q[1] != '=' && q[1] != '!') {
                const char *gt = strchr(q, '>');
                if (gt == NULL) {
                    snprintf(err, errlen, "invalid regex: '~%s' (unterminated group name)", src);
                    return SL_ERROR;
                }
                c = gt; /* named group -> plain group */
            } else if (*q == ':' && q == c + 2) {
                c = q;
            } else {
                snprintf(err, errlen, "invalid regex: '~%s' (unsupported construct '(?%c')", src,
                         *q ? *q : ' ');
                return SL_ERROR;
            }
            EMIT("(");
            continue;
        }
        EMIT(one);
    }
    EMIT(")");
    out[o] = '\0';
    return SL_OK;
#undef EMIT
toolong:
    snprintf(err, errlen, "invalid regex: '~%s' (too long)", src);
    return SL_ERROR;
}

int
sl_router_compile_path(sl_route_path_t *rp, const char *src, char *err, size_t errlen)
{
    char ere[4096];
    int rc;

    memset(rp, 0, sizeof(*rp));
    if (*src != '~') {
        rp->path = sl_strndup(src, strlen(src));
        rp->len = strlen(src);
        return SL_OK;
    }
    if (translate_regex(src + 1, ere, sizeof(ere), err, errlen) != SL_OK)
        return SL_ERROR;
    if (regex_expansion(ere) > SL_REGEX_MAX_EXPANSION) {
        snprintf(err, errlen,
                 "invalid regex: '%s' (repetitions expand it to more than %d items; nest fewer "
                 "or smaller repeat counts)",
                 src, SL_REGEX_MAX_EXPANSION);
        return SL_ERROR;
    }
    if ((rc = regcomp(&rp->re, ere, REG_EXTENDED)) != 0) {
        char msg[200];
        regerror(rc, &rp->re, msg, sizeof(msg));
        snprintf(err, errlen, "invalid regex: '%s' (%s)", src, msg);
        return SL_ERROR;
    }
    rp->is_regex = 1;
    rp->path = sl_strndup(src + 1, strlen(src + 1));
    rp->len = strlen(rp->path);
    return SL_OK;
}

void
sl_router_path_free(sl_route_path_t *rp)
{
    if (rp->is_regex)
        regfree(&rp->re);
    free(rp->path);
    rp->path = NULL;
    rp->is_regex = 0;
}

/* ---- building ---- */

static int
entry_cmp(const void *a, const void *b)
{
    const sl_rt_entry_t *x = a, *y = b;
    int xr = x->path && x->path->is_regex, yr = y->path && y->path->is_regex;

    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;
    if (x->plain_hosts != y->plain_hosts)
        return x->plain_hosts ? -1 : 1;
    if (xr != yr)
        return xr ? -1 : 1;
    if (xr && x->regex_priority != y->regex_priority)
        return x->regex_priority > y->regex_priority ? -1 : 1;
    if (x->plen != y->plen)
        return x->plen > y->plen ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

int
sl_router_build(sl_conf_t *conf, sl_errors_t *errs)
{
    sl_router_t *rt;
    size_t n = 0, k = 0;
    sl_route_t **sorted;
    unsigned char *seen;

    (void)errs;
    sl_router_free(conf);
    for (size_t i = 0; i < conf->nroutes; i++)
        n += conf->routes[i]->npaths ? conf->routes[i]->npaths : 1;
    rt = sl_xcalloc(1, sizeof(*rt));
    rt->entries = sl_xcalloc(n, sizeof(*rt->entries));
    for (size_t i = 0; i < conf->nroutes; i++) {
        const sl_route_t *r = conf->routes[i];
        unsigned plain = r->nhosts > 0;
        unsigned w = (r->nmethods > 0) + (r->nhosts > 0) + (r->npaths > 0) + (r->nheaders > 0) +
                     (r->nsnis > 0);

        if (r->service && !r->service->enabled)
            continue; /* Kong: a disabled service is not routed */
        for (size_t h = 0; h < r->nhosts; h++)
            plain &= strchr(r->hosts[h], '*') == NULL;
        for (size_t p = 0; p < (r->npaths ? r->npaths : 1); p++) {
            sl_rt_entry_t *e = &rt->entries[rt->n++];
            e->route = r;
            e->path = r->npaths ? &r->paths[p] : NULL;
            e->weight = w;
            e->plain_hosts = plain;
            e->regex_priority = r->regex_priority;
            e->plen = e->path && !e->path->is_regex ? e->path->len : 0;
            e->order = rt->n;
            e->ridx = i;
        }
    }
    if (rt->n > 0)
        qsort(rt->entries, rt->n, sizeof(*rt->entries), entry_cmp);

    /* conf->routes in match order (first entry of each route), for people
     * reading the config; routes that are never routed go last. */
    sorted = sl_xcalloc(conf->nroutes, sizeof(*sorted));
    seen = sl_xcalloc(conf->nroutes, 1);
    for (size_t i = 0; i < rt->n; i++) {
        size_t j = rt->entries[i].ridx;
        if (!seen[j]) {
            seen[j] = 1;
            sorted[k++] = conf->routes[j];
        }
    }
    for (size_t j = 0; j < conf->nroutes; j++)
        if (!seen[j])
            sorted[k++] = conf->routes[j];
    if (conf->nroutes > 0)
        memcpy(conf->routes, sorted, conf->nroutes * sizeof(*sorted));
    free(sorted);
    free(seen);
    conf->router = rt;
    return SL_OK;
}

void
sl_router_free(sl_conf_t *conf)
{
    sl_router_t *rt = conf->router;

    if (rt == NULL)
        return;
    free(rt->entries);
    free(rt);
    conf->router = NULL;
}

/* ---- matching ---- */

static int
host_match(const sl_route_t *r, sl_str_t host)
{
    for (size_t i = 0; i < r->nhosts; i++) {
        const char *h = r->hosts[i];
        size_t n = strlen(h);

        if (h[0] == '*') { /* "*.example.com" */
            if (host.len > n - 1 && !strncasecmp(host.ptr + host.len - (n - 1), h + 1, n - 1))
                return 1;
        } else if (n && h[n - 1] == '*') { /* "example.*" */
            if (host.len > n - 1 && !strncasecmp(host.ptr, h, n - 1))
                return 1;
        } else if (host.len == n && !strncasecmp(host.ptr, h, n)) {
            return 1;
        }
    }
    return 0;
}

static int
method_match(const sl_route_t *r, sl_str_t method)
{
    for (size_t i = 0; i < r->nmethods; i++)
        if (strlen(r->methods[i]) == method.len && !memcmp(r->methods[i], method.ptr, method.len))
            return 1;
    return 0;
}

static int
sni_match(const sl_route_t *r, const char *sni)
{
    sl_str_t s = sl_str_c(sni);

    if (sni == NULL)
        return 0;
    for (size_t i = 0; i < r->nsnis; i++) {
        const char *h = r->snis[i];
        size_t n = strlen(h);
        if (h[0] == '*') {
            if (s.len > n - 1 && !strncasecmp(s.ptr + s.len - (n - 1), h + 1, n - 1))
                return 1;
        } else if (n && h[n - 1] == '*') {
            if (s.len > n - 1 && !strncasecmp(s.ptr, h, n - 1))
                return 1;
        } else if (s.len == n && !strncasecmp(s.ptr, h, n)) {
            return 1;
        }
    }
    return 0;
}

/* Every configured header has a request value equal (case-insensitive)
 * to one of its values. */
static int
headers_match(const sl_route_t *r, const sl_router_req_t *q)
{
    for (size_t i = 0; i < r->nheaders; i++) {
        const sl_route_header_t *h = &r->headers[i];
        sl_str_t v;
        int ok = 0;

        for (size_t k = 0; !ok && q->header && q->header(q->arg, h->name, k, &v); k++)
            for (size_t j = 0; !ok && j < h->nvalues; j++)
                ok = strlen(h->values[j]) == v.len && !strncasecmp(h->values[j], v.ptr, v.len);
        if (!ok)
            return 0;
    }
    return 1;
}

int
sl_router_match(const sl_conf_t *conf, sl_str_t method, sl_str_t host, sl_str_t path,
                sl_route_match_t *m)
{
    sl_router_req_t q = {.method = method, .host = host, .path = path};

    return sl_router_match_req(conf, &q, m);
}

int
sl_router_match_req(const sl_conf_t *conf, const sl_router_req_t *q, sl_route_match_t *m)
{
    const sl_router_t *rt = conf->router;
    sl_str_t method = q->method, host = q->host, path = q->path;

    if (rt == NULL)
        return SL_DECLINED;
    if (path.ptr == NULL)
        path.ptr = "";
    for (size_t i = 0; i < rt->n; i++) {
        const sl_rt_entry_t *e = &rt->entries[i];
        const sl_route_t *r = e->route;
        size_t plen = 0;

        if (r->nmethods && !method_match(r, method))
            continue;
        if (r->nhosts && !host_match(r, host))
            continue;
        if (q->tls && !(r->protocols & SL_ROUTE_HTTPS))
            continue;
        if (r->nsnis && (!q->tls || !sni_match(r, q->sni)))
            continue;
        if (r->nheaders && !headers_match(r, q))
            continue;
        if (e->path && e->path->is_regex) {
            regmatch_t pm[1];
            pm[0].rm_so = 0;
            pm[0].rm_eo = (regoff_t)path.len;
            if (regexec(&e->path->re, path.ptr, 1, pm, REG_STARTEND) != 0)
                continue;
            plen = (size_t)pm[0].rm_eo;
        } else if (e->path) {
            if (path.len < e->path->len || memcmp(path.ptr, e->path->path, e->path->len) != 0)
                continue;
            plen = e->path->len;
        }
        m->route = r;
        m->prefix_len = plen;
        return SL_OK;
    }
    return SL_DECLINED;
}

/* ---- Kong's get_upstream_uri_v0 ---- */

/* The path as up to three pieces joined in order (no copy). */
static void
parts3(sl_str_t out[3], const char *a, size_t al, const char *b, size_t bl, const char *c,
       size_t cl)
{
    out[0] = (sl_str_t){a, al};
    out[1] = (sl_str_t){b, bl};
    out[2] = (sl_str_t){c, cl};
}

static char *
cat3(const char *a, size_t al, const char *b, size_t bl, const char *c, size_t cl)
{
    char *p = sl_xmalloc(al + bl + cl + 1);

    memcpy(p, a, al);
    memcpy(p + al, b, bl);
    memcpy(p + al + bl, c, cl);
    p[al + bl + cl] = '\0';
    return p;
}

void
sl_router_upstream_parts(const sl_route_match_t *m, sl_str_t req, sl_str_t out[3])
{
    const sl_service_t *s = m->route->service;
    const char *base = s && s->path ? s->path : "/";
    size_t bl = strlen(base);
    const char *post = "";
    size_t pl = 0;
    int req_slash;

    if (req.ptr == NULL || req.len == 0)
        req = (sl_str_t){"/", 1};
    req_slash = req.ptr[req.len - 1] == '/';

    if (m->route->strip_path) {
        size_t off = m->prefix_len <= req.len ? m->prefix_len : req.len;
        post = req.ptr + off;
        pl = req.len - off;
        /* sanitize_uri_postfix */
        if ((pl == 1 && post[0] == '.') || (pl == 2 && post[0] == '.' && post[1] == '.'))
            pl = 0;
        else if (pl >= 2 && post[0] == '.' && post[1] == '/')
            post += 2, pl -= 2;
        else if (pl >= 3 && post[0] == '.' && post[1] == '.' && post[2] == '/')
            post += 3, pl -= 3;

        if (base[bl - 1] == '/') {
            if (pl == 0) {
                if (bl == 1)
                    parts3(out, "/", 1, "", 0, "", 0);
                else
                    parts3(out, base, req_slash ? bl : bl - 1, "", 0, "", 0);
            } else if (post[0] == '/') {
                parts3(out, base, bl - 1, post, pl, "", 0);
            } else {
                parts3(out, base, bl, post, pl, "", 0);
            }
            return;
        }
        if (pl == 0)
            parts3(out, base, bl, "/", req.len > 1 && req_slash ? 1 : 0, "", 0);
        else if (post[0] == '/')
            parts3(out, base, bl, post, pl, "", 0);
        else
            parts3(out, base, bl, "/", 1, post, pl);
        return;
    }
    if (base[bl - 1] == '/') {
        if (req.ptr[0] == '/')
            parts3(out, base, bl, req.ptr + 1, req.len - 1, "", 0);
        else
            parts3(out, base, bl, req.ptr, req.len, "", 0);
        return;
    }
    if (req.len == 1 && req.ptr[0] == '/') {
        parts3(out, base, bl, "", 0, "", 0);
        return;
    }
    parts3(out, base, bl, req.ptr, req.len, "", 0);
}

char *
sl_router_upstream_path(const sl_route_match_t *m, sl_str_t req)
{
    sl_str_t p[3];

    sl_router_upstream_parts(m, req, p);
    return cat3(p[0].ptr, p[0].len, p[1].ptr, p[1].len, p[2].ptr, p[2].len);
}
