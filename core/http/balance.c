/* balance.c - the request's side of Kong's balancer (balance.h). */

#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>

#include "base/chars.h"
#include "http/balance.h"

/* All values of header `name` joined with ", " (nginx's $http_ since
 * 1.23); .ptr NULL when absent. */
static sl_str_t
header_value(sl_req_t *r, const char *name)
{
    sl_str_t n = sl_str_c(name), out = {NULL, 0};
    size_t len = 0, k = 0;

    for (size_t i = 0; i < r->headers.n; i++)
        if (sl_str_caseeq(r->headers.items[i].name, n))
            len += r->headers.items[i].value.len + (k++ ? 2 : 0);
    if (k == 0)
        return out;
    char *buf = sl_palloc(r->pool, len + 1);
    k = 0;
    for (size_t i = 0; i < r->headers.n; i++) {
        if (!sl_str_caseeq(r->headers.items[i].name, n))
            continue;
        if (k) {
            memcpy(buf + k, ", ", 2);
            k += 2;
        }
        memcpy(buf + k, r->headers.items[i].value.ptr, r->headers.items[i].value.len);
        k += r->headers.items[i].value.len;
    }
    buf[k] = '\0';
    return (sl_str_t){buf, k};
}

static sl_str_t
cookie_value(sl_req_t *r, const char *name)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i < r->headers.n; i++) {
        const sl_header_t *h = &r->headers.items[i];
        if (!sl_str_caseeq(h->name, SL_STR("cookie")))
            continue;
        const char *p = h->value.ptr, *end = p + h->value.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == ';'))
                p++;
            const char *semi = memchr(p, ';', (size_t)(end - p)), *e = semi ? semi : end;
            if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=')
                return (sl_str_t){p + nl + 1, (size_t)(e - p - (ptrdiff_t)nl - 1)};
            p = e;
        }
    }
    return (sl_str_t){NULL, 0};
}

static size_t
unescape(char *out, const char *s, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%' && i + 2 < len + 0 && sl_hexval(s[i + 1]) >= 0 &&
            sl_hexval(s[i + 2]) >= 0) {
            out[o++] = (char)(sl_hexval(s[i + 1]) * 16 + sl_hexval(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i] == '+' ? ' ' : s[i];
        }
    }
    return o;
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ngx.req.get_uri_args()[name], normalised as Kong does: a bare flag is
 * "true", several values are sorted and joined with ",". */
static sl_str_t
query_arg(sl_req_t *r, const char *name)
{
    const char *p = r->query.ptr, *end = p + r->query.len;
    char *vals[100];
    size_t n = 0, nl = strlen(name), total = 0;

    while (p && p < end && n < sl_nelems(vals)) {
        const char *amp = memchr(p, '&', (size_t)(end - p)), *e = amp ? amp : end;
        const char *eq = memchr(p, '=', (size_t)(e - p));
        const char *ke = eq ? eq : e;
        char *key = sl_palloc(r->pool, (size_t)(ke - p) + 1);
        size_t kl = unescape(key, p, (size_t)(ke - p));
        if (kl == nl && memcmp(key, name, nl) == 0) {
            char *v;
            if (eq) {
                v = sl_palloc(r->pool, (size_t)(e - eq));
                v[unescape(v, eq + 1, (size_t)(e - eq - 1))] = '\0';
            } else {
                v = "true";
            }
            vals[n++] = v;
            total += strlen(v) + 1;
        }
        p = e + 1;
    }
    if (n == 0)
        return (sl_str_t){NULL, 0};
    qsort(vals, n, sizeof(vals[0]), cmp_str);
    char *out = sl_palloc(r->pool, total + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[o++] = ',';
        memcpy(out + o, vals[i], strlen(vals[i]));
        o += strlen(vals[i]);
    }
    out[o] = '\0';
    return (sl_str_t){out, o};
}

/* Which capturing group of PCRE-style `src` is named `name` (1-based), or
 * the number itself when name is digits; 0 if none. */
static int
capture_group(const char *src, const char *name)
{
    char *e;
    long num = strtol(name, &e, 10);
    int group = 0, cls = 0;
    size_t nl = strlen(name);

    if (*e == '\0' && e != name)
        return (int)num;
    for (const char *c = src; *c; c++) {
        if (*c == '\\' && c[1]) {
            c++;
            continue;
        }
        if (cls) {
            cls = *c != ']';
            continue;
        }
        if (*c == '[') {
            cls = 1;
            continue;
        }
        if (*c != '(')
            continue;
        if (c[1] != '?') {
            group++;
            continue;
        }
        const char *nm = NULL;
        if (c[2] == '<' && c[3] != '=' && c[3] != '!')
            nm = c + 3;
        else if (c[2] == 'P' && c[3] == '<')
            nm = c + 4;
        if (nm) {
            group++;
            if (!strncmp(nm, name, nl) && nm[nl] == '>')
                return group;
        }
    }
    return 0;
}

static sl_str_t
uri_capture(sl_req_t *r, const char *name)
{
    const sl_route_t *rt = r->route;
    regmatch_t pm[10];

    for (size_t i = 0; rt && i < rt->npaths; i++) {
        const sl_route_path_t *rp = &rt->paths[i];
        if (!rp->is_regex)
            continue;
        pm[0].rm_so = 0;
        pm[0].rm_eo = (regoff_t)r->path.len;
        if (regexec(&rp->re, r->path.ptr, sl_nelems(pm), pm, REG_STARTEND) != 0)
            continue;
        int g = capture_group(rp->path, name);
        if (g <= 0 || g >= (int)sl_nelems(pm) || pm[g].rm_so < 0)
            return (sl_str_t){NULL, 0};
        return (sl_str_t){r->path.ptr + pm[g].rm_so, (size_t)(pm[g].rm_eo - pm[g].rm_so)};
    }
    return (sl_str_t){NULL, 0};
}

sl_str_t
sl_balance_hash_value(sl_req_t *r, const sl_upstream_conf_t *u, const char **set_cookie)
{
    sl_hash_on_t on = u->hash_on;
    const char *hdr = u->hash_on_header, *qa = u->hash_on_query_arg, *cap = u->hash_on_uri_capture;

    *set_cookie = NULL;
    for (int pass = 0; pass < 2 && on != SL_HASH_NONE; pass++) {
        sl_str_t v = {NULL, 0};
        switch (on) {
        case SL_HASH_NONE:
            break;
        case SL_HASH_CONSUMER:
            if (r->consumer)
                v = sl_str_c(r->consumer->id);
            else if (r->credential)
                v = sl_str_c(r->credential->id);
            break;
        case SL_HASH_IP:
            v = sl_str_c(r->client_ip);
            break;
        case SL_HASH_HEADER:
            v = header_value(r, hdr);
            break;
        case SL_HASH_COOKIE:
            v = cookie_value(r, u->hash_on_cookie);
            if (v.ptr == NULL) {
                unsigned char b[16];
                char *id = sl_palloc(r->pool, 37), *sc;
                if (getrandom(b, sizeof(b), 0) != sizeof(b))
                    for (size_t i = 0; i < sizeof(b); i++)
                        b[i] = (unsigned char)rand();
                b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
                b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
                snprintf(id, 37,
                         "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
                         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
                         b[12], b[13], b[14], b[15]);
                size_t n = strlen(u->hash_on_cookie) + 80 +
                           (u->hash_on_cookie_path ? strlen(u->hash_on_cookie_path) : 1);
                sc = sl_palloc(r->pool, n);
                snprintf(sc, n, "%s=%s; Path=%s; Same-Site=Lax; HttpOnly", u->hash_on_cookie, id,
                         u->hash_on_cookie_path ? u->hash_on_cookie_path : "/");
                *set_cookie = sc;
                v = sl_str_c(id);
            }
            break;
        case SL_HASH_PATH:
            v = r->path;
            break;
        case SL_HASH_QUERY_ARG:
            v = query_arg(r, qa);
            break;
        case SL_HASH_URI_CAPTURE:
            v = uri_capture(r, cap);
            break;
        }
        if (v.ptr != NULL)
            return v;
        on = u->hash_fallback;
        hdr = u->hash_fallback_header;
        qa = u->hash_fallback_query_arg;
        cap = u->hash_fallback_uri_capture;
    }
    return SL_STR("");
}
