/* serializer.c - the log record, field for field as Kong's
 * kong.log.serialize() (pdk/log.lua): request, upstream_uri, response,
 * latencies, tries, route, service, authenticated_entity and consumer (when
 * authenticated), client_ip, started_at, source, and every
 * value plugins set with set_serialize_value merged in at its dotted key. */

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/chars.h"
#include "base/fmt.h"
#include "base/strbuf.h"
#include "base/utf8.h"
#include "http/http_server.h"
#include "plugin/ser_internal.h"
#include "plugin/serializer.h"

/* The log record's "error" field, by sl_req_error_t. */
static const char *const reqerr_names[] = {"",
                                           "client_abort",
                                           "upstream_connect",
                                           "upstream_timeout",
                                           "upstream_reset",
                                           "upstream_protocol",
                                           "plugin"};

/* Set obj[key] = val, turning repeated keys into arrays (Kong's headers
 * and querystring behaviour). */
static void
add_multi(json_object *obj, const char *key, json_object *val)
{
    json_object *old;

    if (!json_object_object_get_ex(obj, key, &old)) {
        json_object_object_add(obj, key, val);
        return;
    }
    if (json_object_is_type(old, json_type_array)) {
        json_object_array_add(old, val);
        return;
    }
    json_object *arr = json_object_new_array();
    json_object_array_add(arr, json_object_get(old));
    json_object_array_add(arr, val);
    json_object_object_add(obj, key, arr);
}

/* Percent-decode s[0..n) into o ('+' is a space); returns the length. */
static size_t
qs_decode(char *o, const char *s, size_t n)
{
    size_t j = 0;

    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (s[i] == '+')
            o[j++] = ' ';
        else if (s[i] == '%' && i + 2 < n && (h = sl_hexval((unsigned char)s[i + 1])) >= 0 &&
                 (l = sl_hexval((unsigned char)s[i + 2])) >= 0) {
            o[j++] = (char)(h * 16 + l);
            i += 2;
        } else
            o[j++] = s[i];
    }
    return j;
}

/* The next non-empty argument of a query string from *pp on (e its end):
 * the argument [*arg, *end) and its '=' (NULL: none); 0 when none is left. */
static int
qs_next(const char **pp, const char *e, const char **arg, const char **eq, const char **end)
{
    while (*pp != NULL && *pp < e) {
        const char *p = *pp, *amp = memchr(p, '&', (size_t)(e - p));
        *end = amp ? amp : e;
        *pp = amp ? amp + 1 : NULL;
        if (*end > p) {
            *arg = p;
            *eq = memchr(p, '=', (size_t)(*end - p));
            return 1;
        }
    }
    return 0;
}

static char *
url_decode(const char *s, size_t n, size_t *outlen)
{
    char *o = sl_xmalloc(n + 1);

    *outlen = qs_decode(o, s, n);
    o[*outlen] = '\0';
    return o;
}

static json_object *
query_json(sl_str_t q)
{
    json_object *o = json_object_new_object();
    const char *p = q.ptr, *e = q.ptr + q.len, *arg, *eq, *end;

    while (qs_next(&p, e, &arg, &eq, &end)) {
        size_t kl, vl;
        char *k = url_decode(arg, (size_t)((eq ? eq : end) - arg), &kl);
        json_object *v;
        if (eq) {
            char *vs = url_decode(eq + 1, (size_t)(end - eq - 1), &vl);
            v = json_object_new_string_len(vs, (int)vl);
            free(vs);
        } else {
            v = json_object_new_boolean(1);
        }
        add_multi(o, k, v);
        free(k);
    }
    return o;
}

static int64_t
ms(int64_t us)
{
    return us > 0 ? us / 1000 : 0;
}

/* The record's "latencies" (ms), as Kong computes them: proxy is -1 when
 * the upstream never answered, kong is what remains of the total. */
typedef struct {
    int64_t kong, proxy, request, receive;
} sl_latencies_t;

static sl_latencies_t
latencies(const sl_req_t *r, int64_t end)
{
    const int64_t *t = r->times;
    sl_latencies_t l = {0, -1, ms(end - t[SL_TIME_START]), 0};

    if (t[SL_TIME_UPSTREAM_FIRST_BYTE] && t[SL_TIME_UPSTREAM_START])
        l.proxy = ms(t[SL_TIME_UPSTREAM_FIRST_BYTE] - t[SL_TIME_UPSTREAM_START]);
    if (t[SL_TIME_UPSTREAM_LAST_BYTE] && t[SL_TIME_UPSTREAM_FIRST_BYTE])
        l.receive = ms(t[SL_TIME_UPSTREAM_LAST_BYTE] - t[SL_TIME_UPSTREAM_FIRST_BYTE]);
    l.kong = l.request - (l.proxy > 0 ? l.proxy : 0) - l.receive;
    if (l.kong < 0)
        l.kong = 0;
    return l;
}

/* Merge src into dst (objects recursively, anything else replaced). */
static void
merge(json_object *dst, json_object *src)
{
    json_object_object_foreach(src, k, v)
    {
        json_object *d;
        if (json_object_is_type(v, json_type_object) && json_object_object_get_ex(dst, k, &d) &&
            json_object_is_type(d, json_type_object))
            merge(d, v);
        else
            json_object_object_add(dst, k, json_object_get(v));
    }
}

int
sl_serialize_stats(sl_req_t *r, sl_req_stats_t *out)
{
    int64_t end = r->times[SL_TIME_RESPONSE_END] ? r->times[SL_TIME_RESPONSE_END] : sl_now_us();
    int64_t total = ms(end - r->times[SL_TIME_START]);
    int64_t proxy = -1, receive = 0;

    memset(out, 0, sizeof(*out));
    if (r->times[SL_TIME_UPSTREAM_FIRST_BYTE] && r->times[SL_TIME_UPSTREAM_START])
        proxy = ms(r->times[SL_TIME_UPSTREAM_FIRST_BYTE] - r->times[SL_TIME_UPSTREAM_START]);
    if (r->times[SL_TIME_UPSTREAM_LAST_BYTE] && r->times[SL_TIME_UPSTREAM_FIRST_BYTE])
        receive = ms(r->times[SL_TIME_UPSTREAM_LAST_BYTE] - r->times[SL_TIME_UPSTREAM_FIRST_BYTE]);
    int64_t kong = total - (proxy > 0 ? proxy : 0) - receive;
    out->request_size = r->req_size;
    out->response_size = r->resp_bytes;
    out->latency_request_ms = total;
    out->latency_proxy_ms = proxy;
    out->latency_kong_ms = kong > 0 ? kong : 0;
    out->status = r->status;
    if (r->route) {
        out->route_id = sl_str_c(r->route->id);
        out->route_name = sl_str_c(r->route->name);
    }
    if (r->service) {
        out->service_id = sl_str_c(r->service->id);
        out->service_name = sl_str_c(r->service->name);
        out->service_host = sl_str_c(r->service->host);
    }
    return 0;
}

/* One tokener for every value (the loop thread only): a new one is a
 * calloc of its whole parse stack, most of what setting a value cost. */
static json_tokener *set_tok;

/* Put val (owned) at the dotted key of r->ser.  SL_ERROR (val freed) for
 * an empty or too long segment. */
static int
place(sl_req_t *r, const char *key, json_object *val)
{
    char part[256];

    if (r->ser == NULL)
        r->ser = json_object_new_object();
    json_object *node = r->ser;
    const char *p = key;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n >= sizeof(part)) {
            json_object_put(val);
            return SL_ERROR;
        }
        memcpy(part, p, n);
        part[n] = '\0';
        if (dot == NULL) {
            json_object_object_add(node, part, val);
            return SL_OK;
        }
        json_object *child;
        if (!json_object_object_get_ex(node, part, &child) ||
            !json_object_is_type(child, json_type_object)) {
            child = json_object_new_object();
            json_object_object_add(node, part, child);
        }
        node = child;
        p = dot + 1;
    }
}

/* A DOUBLE as Kong's cjson writes numbers (14 significant digits), the
 * text kept for the record and the value for typed readers. */
static json_object *
pending_double(double d)
{
    char t[32];

    size_t n = sl_fmt_g14(t, d);

    if (n == 0)
        snprintf(t, sizeof(t), "%.14g", d);
    else
        t[n] = '\0';
    return json_object_new_double_s(d, t);
}

static json_object *
pending_value(const struct sl_ser_pending *q)
{
    switch (q->type) {
    case SL_VALUE_BOOL:
        return json_object_new_boolean(q->i != 0);
    case SL_VALUE_INT:
        return json_object_new_int64(q->i);
    case SL_VALUE_DOUBLE:
        return pending_double(q->d);
    case SL_VALUE_STRING:
        return json_object_new_string_len(q->s.ptr, (int)q->s.len);
    case SL_VALUE_OBJECT:
        return json_object_new_object();
    case SL_VALUE_ARRAY:
        return json_object_new_array();
    case SL_VALUE_NULL:
        break;
    }
    return NULL; /* a JSON null */
}

static void
flush_pending(sl_req_t *r)
{
    for (struct sl_ser_pending *q = r->ser_pending; q != NULL; q = q->next)
        place(r, q->key, pending_value(q));
    r->ser_pending = NULL;
    r->ser_pending_tail = NULL;
}

/* Is key[0..klen) a dotted key place() accepts (no empty or over-long
 * segment)?  A segment at a time (memchr), not a test per byte: a
 * plugin that publishes a dozen values per request checks a dozen keys. */
static int
key_ok(const char *key, size_t klen)
{
    const char *p = key, *end = key + klen;

    if (klen == 0)
        return 0;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        size_t seg = (size_t)((dot ? dot : end) - p);

        if (seg == 0 || seg >= 256)
            return 0;
        if (dot == NULL)
            return 1;
        p = dot + 1;
    }
}

int
sl_serialize_set_typed(sl_req_t *r, const char *key, const sl_value_t *v)
{
    size_t klen = key ? strlen(key) : 0;
    struct sl_ser_pending *q;

    if (v == NULL || !key_ok(key, klen) || (unsigned)v->type > SL_VALUE_ARRAY)
        return SL_ERROR;
    if (v->type == SL_VALUE_DOUBLE && !isfinite(v->d))
        return SL_ERROR; /* JSON has no NaN or infinity */
    if (v->type == SL_VALUE_STRING && ((v->s.ptr == NULL && v->s.len > 0) || v->s.len > INT32_MAX))
        return SL_ERROR;
    q = sl_palloc(r->pool, sizeof(*q));
    q->next = NULL;
    q->key = sl_pstrndup(r->pool, key, klen);
    q->klen = klen;
    q->type = v->type;
    q->i = v->i;
    q->d = v->d;
    q->s = (sl_str_t){"", 0};
    if (v->type == SL_VALUE_STRING && v->s.len)
        q->s = (sl_str_t){sl_pstrndup(r->pool, v->s.ptr, v->s.len), v->s.len};
    if (r->ser_pending_tail == NULL)
        r->ser_pending = q;
    else
        *r->ser_pending_tail = q;
    r->ser_pending_tail = &q->next;
    return SL_OK;
}

int
sl_serialize_set_string(sl_req_t *r, const char *key, sl_str_t value)
{
    sl_value_t v = {SL_VALUE_STRING, 0, 0, value, value.len};

    return sl_serialize_set_typed(r, key, &v);
}

int
sl_serialize_set(sl_req_t *r, const char *key, sl_str_t json)
{
    json_tokener *tok;
    json_object *val;

    flush_pending(r); /* in the order they were set */
    if (set_tok == NULL && (set_tok = json_tokener_new_ex(64)) == NULL)
        return SL_ERROR;
    tok = set_tok;
    json_tokener_reset(tok);
    val = json_tokener_parse_ex(tok, json.ptr, (int)json.len);
    size_t end = json_tokener_get_parse_end(tok);
    if (val == NULL && json_tokener_get_error(tok) == json_tokener_continue) {
        /* A scalar that ends the text ("1.5", "true", "null") only
         * completes at end of input: give json-c one. */
        val = json_tokener_parse_ex(tok, "", 1);
        end = json.len;
    }
    if (json_tokener_get_error(tok) != json_tokener_success || end != json.len) {
        /* allow trailing whitespace */
        int ok = json_tokener_get_error(tok) == json_tokener_success;
        for (size_t i = end; ok && i < json.len; i++)
            if (!isspace((unsigned char)json.ptr[i]))
                ok = 0;
        if (!ok) {
            json_object_put(val);
            return SL_ERROR;
        }
    }
    return place(r, key, val);
}

/* The value at the dotted key: 1 and *out (NULL for a JSON null), or 0
 * when absent. */
static int
lookup(sl_req_t *r, const char *key, json_object **out)
{
    json_object *node;
    char part[256];

    flush_pending(r);
    node = r->ser;
    for (const char *p = key; node != NULL;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0 || n >= sizeof(part) || !json_object_is_type(node, json_type_object))
            return 0;
        memcpy(part, p, n);
        part[n] = '\0';
        if (!json_object_object_get_ex(node, part, &node))
            return 0;
        if (dot == NULL) {
            *out = node;
            return 1;
        }
        p = dot + 1;
    }
    return 0;
}

int
sl_serialize_get(sl_req_t *r, const char *key, sl_str_t *json)
{
    json_object *node;
    size_t len;

    if (key == NULL || !lookup(r, key, &node))
        return 0;
    const char *txt = json_object_to_json_string_length(node, JSON_C_TO_STRING_PLAIN, &len);
    char *copy = sl_palloc(r->pool, len + 1);
    memcpy(copy, txt, len + 1);
    *json = (sl_str_t){copy, len};
    return 1;
}

/* Is a (alen) a proper ancestor of b (blen) in the dotted key tree? */
static int
key_under(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen < blen && b[alen] == '.' && memcmp(a, b, alen) == 0;
}

/* The scalar a typed reader asks for, straight from the pending values
 * when that is where it is (tree or not): the newest value set at exactly `key` with no
 * later one above it (which would replace it) or below it (which would
 * make it an object).  NULL when only the tree can tell.  Reading one
 * value then costs a walk of the pending list, not the whole tree built
 * (ai-rate-limiting-advanced reads four numbers of ai-proxy's seventeen). */
static const struct sl_ser_pending *
pending_scalar(const sl_req_t *r, const char *key, size_t klen)
{
    const struct sl_ser_pending *hit = NULL;

    for (const struct sl_ser_pending *q = r->ser_pending; q != NULL; q = q->next) {
        if (q->klen == klen && memcmp(q->key, key, klen) == 0)
            hit = q;
        else if (hit != NULL &&
                 (key_under(q->key, q->klen, key, klen) || key_under(key, klen, q->key, q->klen)))
            hit = NULL;
    }
    if (hit == NULL || hit->type == SL_VALUE_OBJECT || hit->type == SL_VALUE_ARRAY)
        return NULL;
    return hit;
}

/* What a dotted key holds once the pending values are placed, worked out
 * from the pending list alone: right when they are all there is (no tree
 * built yet, r->ser NULL), as in the log phase of a request whose plugins
 * only set typed values (ai-proxy's statistics).  place()'s rules, value
 * by value: one set at the key replaces what was there (an OBJECT starts
 * empty); one set above it replaces the branch, so the key is gone; one
 * set below it makes the key an object if it was not (a new, empty one)
 * and adds the member named by the next segment, in the order members
 * first appeared (json-c keeps a replaced member's place). */
typedef enum { AT_ABSENT, AT_VALUE, AT_OBJECT, AT_UNKNOWN } pending_at_t;

#define PENDING_MAX_MEMBERS 64 /* more: ask the tree */

typedef struct {
    const struct sl_ser_pending *value;  /* AT_VALUE */
    size_t n;                            /* AT_OBJECT: its members */
    sl_str_t names[PENDING_MAX_MEMBERS]; /* their names (in the pending keys) */
} pending_node_t;

static pending_at_t
pending_at(const sl_req_t *r, const char *key, size_t klen, pending_node_t *o)
{
    pending_at_t at = AT_ABSENT;

    o->value = NULL;
    o->n = 0;
    for (const struct sl_ser_pending *q = r->ser_pending; q != NULL; q = q->next) {
        if (q->klen == klen && memcmp(q->key, key, klen) == 0) {
            at = q->type == SL_VALUE_OBJECT ? AT_OBJECT : AT_VALUE;
            o->value = q;
            o->n = 0;
        } else if (key_under(q->key, q->klen, key, klen)) {
            at = AT_ABSENT;
        } else if (key_under(key, klen, q->key, q->klen)) {
            const char *m = q->key + klen + 1, *end = q->key + q->klen;
            const char *dot = memchr(m, '.', (size_t)(end - m));
            size_t mlen = (size_t)((dot ? dot : end) - m), i;

            if (at != AT_OBJECT) {
                at = AT_OBJECT;
                o->n = 0;
            }
            for (i = 0; i < o->n; i++)
                if (o->names[i].len == mlen && memcmp(o->names[i].ptr, m, mlen) == 0)
                    break;
            if (i == o->n) {
                if (o->n == PENDING_MAX_MEMBERS)
                    return AT_UNKNOWN;
                o->names[o->n++] = (sl_str_t){m, mlen};
            }
        }
    }
    return at;
}

/* A pending scalar as typed readers see it (the same answers as from the
 * tree). */
static void
pending_typed(const struct sl_ser_pending *q, sl_value_t *out)
{
    out->type = q->type;
    switch (q->type) {
    case SL_VALUE_BOOL:
        out->i = q->i != 0;
        out->d = (double)out->i;
        break;
    case SL_VALUE_INT:
        out->i = q->i;
        out->d = (double)q->i;
        break;
    case SL_VALUE_DOUBLE: /* json-c's int64 of a double: truncated, clamped */
        out->d = q->d;
        out->i = q->d >= 9223372036854775807.0    ? INT64_MAX
                 : q->d <= -9223372036854775808.0 ? INT64_MIN
                                                  : (int64_t)q->d;
        break;
    case SL_VALUE_STRING:
        out->s = q->s;
        out->n = q->s.len;
        break;
    default: /* NULL; an ARRAY set as a value is empty */
        break;
    }
}

int
sl_serialize_get_typed(sl_req_t *r, const char *key, sl_value_t *out)
{
    json_object *node;
    const struct sl_ser_pending *q;
    pending_node_t at;
    size_t klen;

    *out = (sl_value_t){SL_VALUE_NULL, 0, 0, {"", 0}, 0};
    if (key == NULL)
        return 0;
    klen = strlen(key);
    if (r->ser_pending != NULL && (q = pending_scalar(r, key, klen)) != NULL) {
        pending_typed(q, out); /* the common case, and the quicker walk */
        return 1;
    }
    if (!key_ok(key, klen))
        return 0; /* no value has such a key */
    if (r->ser == NULL) {
        switch (pending_at(r, key, klen, &at)) {
        case AT_ABSENT:
            return 0;
        case AT_VALUE:
            pending_typed(at.value, out);
            return 1;
        case AT_OBJECT:
            out->type = SL_VALUE_OBJECT;
            out->n = at.n;
            return 1;
        case AT_UNKNOWN:
            break;
        }
    }
    if (!lookup(r, key, &node))
        return 0;
    switch (json_object_get_type(node)) {
    case json_type_null:
        break;
    case json_type_boolean:
        out->type = SL_VALUE_BOOL;
        out->i = json_object_get_boolean(node) ? 1 : 0;
        out->d = (double)out->i;
        break;
    case json_type_int:
        out->type = SL_VALUE_INT;
        out->i = json_object_get_int64(node);
        out->d = json_object_get_double(node);
        break;
    case json_type_double:
        out->type = SL_VALUE_DOUBLE;
        out->d = json_object_get_double(node);
        out->i = json_object_get_int64(node); /* truncated, clamped by json-c */
        break;
    case json_type_string:
        out->type = SL_VALUE_STRING;
        out->s = (sl_str_t){json_object_get_string(node), (size_t)json_object_get_string_len(node)};
        out->n = out->s.len;
        break;
    case json_type_object:
        out->type = SL_VALUE_OBJECT;
        out->n = (size_t)json_object_object_length(node);
        break;
    case json_type_array:
        out->type = SL_VALUE_ARRAY;
        out->n = json_object_array_length(node);
        break;
    }
    return 1;
}

int
sl_serialize_keys(sl_req_t *r, const char *key, sl_str_t *names, size_t cap)
{
    json_object *node;
    pending_node_t at;
    size_t i = 0, klen;

    if (key == NULL || !key_ok(key, klen = strlen(key)))
        return 0;
    if (r->ser == NULL) {
        switch (pending_at(r, key, klen, &at)) {
        case AT_ABSENT:
            return 0;
        case AT_VALUE:
            return -1;
        case AT_OBJECT: /* names as the tree's: NUL-terminated, in the pool */
            for (i = 0; i < at.n && i < cap && names != NULL; i++)
                names[i] = (sl_str_t){sl_pstrndup(r->pool, at.names[i].ptr, at.names[i].len),
                                      at.names[i].len};
            return (int)at.n;
        case AT_UNKNOWN:
            break;
        }
    }
    if (!lookup(r, key, &node))
        return 0;
    if (!json_object_is_type(node, json_type_object))
        return -1;
    json_object_object_foreach(node, k, v)
    {
        (void)v;
        if (i < cap && names != NULL)
            names[i] = (sl_str_t){k, strlen(k)};
        i++;
    }
    return i > INT32_MAX ? INT32_MAX : (int)i;
}

/* ---- the record, written straight into one buffer ---- */

static void
sb_cstr(sl_strbuf_t *b, const char *s)
{
    sl_ser_json_str(b, s ? s : "", s ? strlen(s) : 0);
}

/* request.url ("http://host:port/uri") is cut at this many bytes. */
#define SL_RECORD_URL_MAX 2047

/* A header name's length as the record writes it (cut to
 * SL_RECORD_HEADER_NAME_MAX bytes). */
static inline size_t
sb_name_len(sl_str_t hn)
{
    return hn.len < SL_RECORD_HEADER_NAME_MAX ? hn.len : SL_RECORD_HEADER_NAME_MAX;
}

/* Does a header name, cut at SL_RECORD_HEADER_NAME_MAX bytes, equal
 * name[0..n) but for the case of ASCII letters? */
static int
same_name(sl_str_t hn, const char *name, size_t n)
{
    return sb_name_len(hn) == n && strncasecmp(hn.ptr, name, n) == 0;
}

/* A header's value: "REDACTED", or the value as a JSON string. */
static inline void
sb_header_value(sl_strbuf_t *b, sl_str_t v, int redacted)
{
    if (redacted)
        SL_STRBUF_LIT(b, "\"REDACTED\"");
    else
        sl_ser_json_str(b, v.ptr, v.len);
}

/* "name": value-or-array for a header list (names lower-cased, repeated
 * names as arrays in order; authorization and proxy-authorization, when
 * always_redact, and the names in redact written as "REDACTED"). */
static void
sb_headers(sl_strbuf_t *b, const sl_headers_t *h, const char *const *redact, int always_redact)
{
    char small[64];

    /* nearly always each name once: no pairwise search */
    if (h->n <= 64 && sl_ser_json_headers_once(b, h, redact, always_redact) == SL_OK)
        return;
    char *done = h->n <= sizeof(small) ? small : sl_xcalloc(h->n, 1);

    if (done == small)
        memset(done, 0, h->n);
    SL_STRBUF_LIT(b, "{");
    int first = 1;
    for (size_t i = 0; i < h->n; i++) {
        if (done[i])
            continue;
        const char *name = h->items[i].name.ptr;
        size_t n = sb_name_len(h->items[i].name);
        int red = sl_ser_redacted(name, n, redact, always_redact);
        size_t count = 1; /* this one, and the same name further on */
        for (size_t j = i + 1; j < h->n; j++)
            if (!done[j] && same_name(h->items[j].name, name, n))
                count++;
        if (!first)
            SL_STRBUF_LIT(b, ",");
        first = 0;
        sl_ser_json_name(b, name, n);
        if (count > 1)
            SL_STRBUF_LIT(b, "[");
        for (size_t j = i, k = 0; k < count; j++) {
            if (j > i && (done[j] || !same_name(h->items[j].name, name, n)))
                continue;
            done[j] = 1;
            if (k++)
                SL_STRBUF_LIT(b, ",");
            sb_header_value(b, h->items[j].value, red);
        }
        if (count > 1)
            SL_STRBUF_LIT(b, "]");
    }
    SL_STRBUF_LIT(b, "}");
    if (done != small)
        free(done);
}

/* The record's runs of names and numbers between its strings are
 * written through a cursor after one check of room: sb_run makes room for
 * SB_RUN_ROOM bytes, more than any run writes (at most ~100 bytes of
 * names and five numbers of at most 24 bytes each), sb_run_end takes the
 * length back. */
#define SB_RUN_ROOM 256

static inline char *
sb_run(sl_strbuf_t *b)
{
    sl_strbuf_need(b, SB_RUN_ROOM);
    return b->p + b->len;
}

static inline void
sb_run_end(sl_strbuf_t *b, char *o)
{
    b->len = (size_t)(o - b->p);
}

#define SB_PUT(o, lit) ((o) = (char *)memcpy((o), "" lit, sizeof(lit) - 1) + sizeof(lit) - 1)

static inline char *
sb_put_int(char *o, int64_t v)
{
    return o + sl_fmt_i64(o, v);
}

/* A time in ms since the epoch (24 bytes of room): the last one's text is
 * kept, and most records' times repeat it (started_at and the first try's
 * balancer_start, and every record of the same millisecond).  The loop
 * thread only, as record_buf. */
static char *
sb_put_ms(char *o, int64_t us)
{
    static int64_t last = -1;
    static char text[SL_FMT_DEC_MAX + 4];
    static size_t len;
    int64_t v = ms(us);

    if (v != last) {
        len = sl_fmt_i64(text, v);
        last = v;
    }
    memcpy(o, text, sizeof(text)); /* all of it: one fixed-size copy */
    return o + len;
}

/* Arguments the querystring writer decodes on the stack; more go through
 * json-c. */
#define QS_MAX_ARGS 32

typedef struct {
    sl_str_t k, v; /* decoded, in the pool */
    int flag;      /* no '=': true */
    int done;      /* written with an earlier one of the same key */
} qs_arg_t;

static int
qs_same(sl_str_t x, sl_str_t y)
{
    return x.len == y.len && memcmp(x.ptr, y.ptr, x.len) == 0;
}

/* The querystring object as query_json() builds it, written straight: each
 * argument decoded, a repeated key an array of its values in order at the
 * key's first place.  SL_DECLINED, nothing written, for more than
 * QS_MAX_ARGS arguments or a key holding a NUL (json-c's keys end there). */
static int
sb_query_direct(sl_strbuf_t *b, sl_pool_t *pool, sl_str_t q)
{
    qs_arg_t a[QS_MAX_ARGS];
    size_t n = 0;
    char *buf = sl_palloc(pool, q.len + 1), *o = buf;
    const char *p = q.ptr, *e = q.ptr + q.len, *arg, *eq, *end;

    while (qs_next(&p, e, &arg, &eq, &end)) {
        if (n == QS_MAX_ARGS)
            return SL_DECLINED;
        a[n].k = (sl_str_t){o, qs_decode(o, arg, (size_t)((eq ? eq : end) - arg))};
        o += a[n].k.len;
        if (memchr(a[n].k.ptr, '\0', a[n].k.len) != NULL)
            return SL_DECLINED;
        a[n].flag = eq == NULL;
        a[n].v = (sl_str_t){o, eq ? qs_decode(o, eq + 1, (size_t)(end - eq - 1)) : 0};
        o += a[n].v.len;
        a[n].done = 0;
        n++;
    }
    SL_STRBUF_LIT(b, "{");
    for (size_t i = 0; i < n; i++) {
        size_t count = 1;
        if (a[i].done)
            continue;
        for (size_t j = i + 1; j < n; j++)
            if (qs_same(a[j].k, a[i].k))
                count++;
        if (i > 0)
            SL_STRBUF_LIT(b, ",");
        sl_ser_json_str(b, a[i].k.ptr, a[i].k.len);
        SL_STRBUF_LIT(b, ":");
        if (count > 1)
            SL_STRBUF_LIT(b, "[");
        for (size_t j = i, k = 0; k < count; j++) {
            if (j > i && !qs_same(a[j].k, a[i].k))
                continue;
            a[j].done = 1;
            if (k++)
                SL_STRBUF_LIT(b, ",");
            if (a[j].flag)
                SL_STRBUF_LIT(b, "true");
            else
                sl_ser_json_str(b, a[j].v.ptr, a[j].v.len);
        }
        if (count > 1)
            SL_STRBUF_LIT(b, "]");
    }
    SL_STRBUF_LIT(b, "}");
    return SL_OK;
}

static void
sb_query(sl_strbuf_t *b, sl_pool_t *pool, sl_str_t q)
{
    if (sb_query_direct(b, pool, q) == SL_OK)
        return;
    /* many arguments, or a NUL in a key: the json-c builder */
    json_object *o = query_json(q);
    size_t n;
    const char *t = json_object_to_json_string_length(
        o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    sl_strbuf_add(b, t, n);
    sl_ser_seen |= SL_SER_HIGHS; /* json-c copies bytes >= 0x80 as they are */
    json_object_put(o);
}

static const char *const record_keys[] = {
    "request",
    "upstream_uri",
    "upstream_status",
    "response",
    "latencies",
    "tries",
    "route",
    "service",
    "client_ip",
    "started_at",
    "source",
    "error",
    "consumer",
    "authenticated_entity",
    NULL,
};

/* Does the values tree set a member of the record's own (which then
 * merge into it)? */
static int
has_record_key(json_object *ser)
{
    json_object_object_foreach(ser, k, v)
    {
        (void)v;
        for (const char *const *rk = record_keys; *rk; rk++)
            if (strcmp(k, *rk) == 0)
                return 1;
    }
    return 0;
}

/* The record is JSON in valid UTF-8 whatever bytes the client sent (header
 * values, path, query, a URL or header name cut inside a character): each
 * byte of an invalid sequence is written as \ufffd, as Go's encoding/json
 * does (Kong's cjson copies the bytes, and its line is not valid UTF-8).
 * Bytes >= 0x80 only occur inside the record's strings, so the escape is
 * always in a string.  The record is checked only when a byte with its high
 * bit set went in (sl_ser_seen): the entities' JSON (route, service, consumer)
 * was made valid when the configuration was loaded, so it adds nothing to
 * the count (sequences never span the ASCII bytes around it) and need not
 * be seen; the record's other text is ASCII (names, numbers). */
static size_t
utf8_bad(const sl_strbuf_t *b)
{
    return (sl_ser_seen & SL_SER_HIGHS) != 0 ? sl_utf8_bad_bytes(b->p, b->len) : 0;
}

/* A fragment known to be valid UTF-8. */
static void
add_valid(sl_strbuf_t *b, const char *s, size_t n)
{
    sl_strbuf_add(b, s, n);
}

/* Valid records (nearly all) are not copied. */
static void
utf8_fix(sl_strbuf_t *b, size_t bad)
{
    sl_strbuf_t o = {0};

    if (bad == 0)
        return;
    sl_utf8_fix_json(&o, b->p, b->len, bad);
    free(b->p);
    *b = o; /* the bigger buffer is the one reused */
}

/* A plugin set a value inside one of the record's own objects
 * ("request.x"): objects merge, so read the record back and merge (rare,
 * and off the common path). */
static int
merge_into_record(sl_req_t *r, sl_strbuf_t *b, sl_str_t *out)
{
    json_object *root;

    sl_strbuf_need(b, 1);
    b->p[b->len] = '\0'; /* json-c reads a C string */
    root = json_tokener_parse(b->p);
    size_t len;
    const char *s;

    if (root == NULL)
        return SL_ERROR;
    merge(root, r->ser);
    s = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    out->ptr = sl_pstrndup(r->pool, s, len);
    out->len = len;
    json_object_put(root);
    return SL_OK;
}

/* The record is written into one buffer kept from request to request (the
 * log phase runs on the worker's loop thread only), then copied into the
 * request's pool, or lent as it is (sl_serialize_borrow). */
static sl_strbuf_t record_buf;

/* Write the record into record_buf; *out is there, or in the pool when
 * the values had to merge into the record's own objects. */
static int
serialize(sl_req_t *r, const char *const *redact, sl_str_t *out)
{
    sl_strbuf_t b = record_buf;
    int64_t end = r->times[SL_TIME_RESPONSE_END] ? r->times[SL_TIME_RESPONSE_END] : sl_now_us();
    char port[1 + SL_FMT_DEC_MAX + 1] = ":";

    /* No tree built (nobody read the values back): they are written from
     * the pending list (record_values.c) unless they must merge */
    int direct = r->ser == NULL, merge_values = 0;

    if (!direct) {
        flush_pending(r);
        merge_values = has_record_key(r->ser);
    }
    b.len = 0;
    sl_ser_seen = 0;
    sl_strbuf_need(&b, 2048);
    SL_STRBUF_LIT(&b, "{\"request\":{\"id\":");
    sl_ser_json_str(&b, r->id, 32);
    SL_STRBUF_LIT(&b, ",\"uri\":");
    sl_ser_json_str(&b, r->uri.ptr, r->uri.len);
    /* url: http://host:port/uri, built as the reference does (and cut) */
    {
        char u[SL_RECORD_URL_MAX];
        size_t un = 0;
        size_t pn = 1 + sl_fmt_i64(port + 1, r->server_port);
        const sl_str_t parts[] = {{"http://", 7}, r->host, {port, pn}, r->uri};
        for (size_t i = 0; i < sl_nelems(parts) && un < sizeof(u); i++) {
            size_t k = parts[i].len < sizeof(u) - un ? parts[i].len : sizeof(u) - un;
            if (k)
                memcpy(u + un, parts[i].ptr, k);
            un += k;
        }
        SL_STRBUF_LIT(&b, ",\"url\":");
        sl_ser_json_str(&b, u, un);
    }
    SL_STRBUF_LIT(&b, ",\"querystring\":");
    if (r->query.len)
        sb_query(&b, r->pool, r->query);
    else
        SL_STRBUF_LIT(&b, "{}");
    SL_STRBUF_LIT(&b, ",\"method\":");
    sl_ser_json_str(&b, r->method.ptr, r->method.len);
    SL_STRBUF_LIT(&b, ",\"headers\":");
    sb_headers(&b, &r->client_headers, redact, 1);
    char *o = sb_run(&b);
    SB_PUT(o, ",\"size\":");
    o = sb_put_int(o, (int64_t)r->req_size);
    SB_PUT(o, "}");
    sb_run_end(&b, o);

    if (r->upstream_uri) {
        SL_STRBUF_LIT(&b, ",\"upstream_uri\":");
        sb_cstr(&b, r->upstream_uri);
    }
    SL_STRBUF_LIT(&b, ",\"upstream_status\":\"");
    if (r->ntries > 1) {
        /* nginx's $upstream_status, which Kong logs: with several tries,
         * each failed try's code (502/504, or the status a plugin
         * rejected), then the answer's: "429, 200" */
        const char *sep = "";
        for (int i = 0; i < r->ntries; i++) {
            if (!r->tries[i].failed)
                continue;
            sl_strbuf_add(&b, sep, strlen(sep));
            sl_ser_json_int(&b, r->tries[i].code);
            sep = ", ";
        }
        if (r->upstream_status && !r->tries[r->ntries - 1].failed) {
            sl_strbuf_add(&b, sep, strlen(sep));
            sl_ser_json_int(&b, r->upstream_status);
        }
    } else if (r->upstream_status) {
        sl_ser_json_int(&b, r->upstream_status);
    }
    o = sb_run(&b);
    SB_PUT(o, "\",\"response\":{\"status\":");
    o = sb_put_int(o, r->status);
    SB_PUT(o, ",\"headers\":");
    sb_run_end(&b, o);
    sb_headers(&b, &r->resp_headers, NULL, 0);

    sl_latencies_t lat = latencies(r, end);
    o = sb_run(&b);
    SB_PUT(o, ",\"size\":");
    o = sb_put_int(o, (int64_t)r->resp_bytes);
    SB_PUT(o, "},\"latencies\":{\"kong\":");
    o = sb_put_int(o, lat.kong);
    SB_PUT(o, ",\"proxy\":");
    o = sb_put_int(o, lat.proxy);
    SB_PUT(o, ",\"request\":");
    o = sb_put_int(o, lat.request);
    SB_PUT(o, ",\"receive\":");
    o = sb_put_int(o, lat.receive);
    SB_PUT(o, "},\"tries\":[");
    sb_run_end(&b, o);
    for (int i = 0; i < r->ntries; i++) {
        o = sb_run(&b);
        if (i)
            SB_PUT(o, ",");
        SB_PUT(o, "{\"balancer_start\":");
        o = sb_put_ms(o, r->tries[i].start_us);
        SB_PUT(o, ",\"ip\":");
        sb_run_end(&b, o);
        sb_cstr(&b, r->tries[i].ip);
        o = sb_run(&b);
        SB_PUT(o, ",\"port\":");
        o = sb_put_int(o, r->tries[i].port);
        SB_PUT(o, ",\"balancer_latency\":");
        o = sb_put_int(o, ms(r->tries[i].latency_us));
        if (r->tries[i].failed) {
            SB_PUT(o, ",\"state\":");
            sb_run_end(&b, o);
            sb_cstr(&b, r->tries[i].state);
            o = sb_run(&b);
            SB_PUT(o, ",\"code\":");
            o = sb_put_int(o, r->tries[i].code);
        }
        SB_PUT(o, "}");
        sb_run_end(&b, o);
    }
    SL_STRBUF_LIT(&b, "]");
    if (r->route && r->route->entity_json) {
        SL_STRBUF_LIT(&b, ",\"route\":");
        add_valid(&b, r->route->entity_json, r->route->entity_json_len);
    }
    if (r->service && r->service->entity_json) {
        SL_STRBUF_LIT(&b, ",\"service\":");
        add_valid(&b, r->service->entity_json, r->service->entity_json_len);
    }
    /* Kong: the credential used and the consumer, in authenticated requests */
    if (r->credential) {
        SL_STRBUF_LIT(&b, ",\"authenticated_entity\":{\"id\":");
        sb_cstr(&b, r->credential->id);
        SL_STRBUF_LIT(&b, ",\"consumer_id\":");
        sb_cstr(&b, r->credential->consumer->id);
        SL_STRBUF_LIT(&b, "}");
    }
    if (r->consumer && r->consumer->entity_json) {
        SL_STRBUF_LIT(&b, ",\"consumer\":");
        add_valid(&b, r->consumer->entity_json, r->consumer->entity_json_len);
    }
    SL_STRBUF_LIT(&b, ",\"client_ip\":");
    sb_cstr(&b, r->client_ip);
    o = sb_run(&b);
    SB_PUT(o, ",\"started_at\":");
    o = sb_put_ms(o, r->times[SL_TIME_START]);
    if (r->source == SL_SOURCE_UPSTREAM && r->upstream_status)
        SB_PUT(o, ",\"source\":\"upstream\"");
    else
        SB_PUT(o, ",\"source\":\"kong\"");
    sb_run_end(&b, o);
    if (r->err != SL_REQERR_NONE && (size_t)r->err < sl_nelems(reqerr_names)) {
        SL_STRBUF_LIT(&b, ",\"error\":");
        sb_cstr(&b, reqerr_names[r->err]);
    }
    if (direct && r->ser_pending != NULL &&
        sl_ser_write_pending(&b, r->ser_pending, record_keys) != SL_OK) {
        flush_pending(r); /* into the record's objects, or too many: the tree */
        merge_values = has_record_key(r->ser);
    }
    if (r->ser && !merge_values) {
        json_object_object_foreach(r->ser, k, v)
        {
            size_t n;
            const char *t = json_object_to_json_string_length(
                v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
            SL_STRBUF_LIT(&b, ",");
            sb_cstr(&b, k);
            SL_STRBUF_LIT(&b, ":");
            sl_strbuf_add(&b, t, n);
            sl_ser_seen |= SL_SER_HIGHS;
        }
    }
    SL_STRBUF_LIT(&b, "}");
    utf8_fix(&b, utf8_bad(&b));
    int rc = SL_OK;
    if (merge_values) {
        rc = merge_into_record(r, &b, out);
    } else {
        out->ptr = b.p;
        out->len = b.len;
    }
    record_buf = b;
    return rc;
}

/* A huge record's buffer (big headers) is not kept for the next one; a
 * lent one goes at the next call. */
static void
trim_record_buf(void)
{
    if (record_buf.cap > 256 * 1024) {
        free(record_buf.p);
        record_buf = (sl_strbuf_t){0};
    }
}

int
sl_serialize(sl_req_t *r, const char *const *redact, sl_str_t *out)
{
    trim_record_buf();
    int rc = serialize(r, redact, out);
    if (rc == SL_OK && out->ptr == record_buf.p)
        out->ptr = sl_pstrndup(r->pool, out->ptr, out->len);
    trim_record_buf();
    return rc;
}

int
sl_serialize_borrow(sl_req_t *r, const char *const *redact, sl_str_t *out)
{
    trim_record_buf();
    return serialize(r, redact, out);
}
