/* key_auth.c - Kong's key-auth (kong/plugins/key-auth/handler.lua) on the
 * public ABI only.
 *
 * For each name in key_names, in order: the request header (any case),
 * then the query argument; the first one present is the key.  A name given
 * twice is "Duplicate API key found"; none, or an empty one, is "No API key
 * found in request"; a key no credential has is "Unauthorized" (all 401,
 * with WWW-Authenticate: Key [realm="..."]).  A known key authenticates
 * the request as the credential's consumer (api->consumer_set) and sets
 * X-Consumer-ID, X-Consumer-Custom-ID, X-Consumer-Username and
 * X-Credential-Identifier upstream (clearing whatever the client sent).
 * With `anonymous`, failures (and requests another auth plugin already
 * authenticated) pass on as that consumer with X-Anonymous-Consumer: true.
 * hide_credentials removes the key from the header, query or body it came
 * from.  key_in_body looks in application/x-www-form-urlencoded and JSON
 * bodies once header and query had nothing (the body is read after
 * access); multipart bodies are not searched. */

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "key_auth.h"

#define LIT(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

static const sl_str_t KIND = LIT("keyauth");
static const sl_str_t JSON_TYPE = LIT("application/json; charset=utf-8");

static const char ERR_DUPLICATE[] = "Duplicate API key found";
static const char ERR_NO_KEY[] = "No API key found in request";
static const char ERR_INVALID[] = "Unauthorized";

/* ctx marker: access found nothing and the body is to be searched */
static char body_pending;

/* ---- answers ---- */

/* Kong's kong.response.error body for JSON clients. */
static sl_status_t
fail(const sl_api_t *api, sl_req_t *r, int status, const char *msg, const ka_conf_t *c)
{
    char body[512];
    sl_str_t id = api->req_id(r);
    int n = snprintf(body, sizeof(body), "{\n  \"message\":\"%s\",\n  \"request_id\":\"%.*s\"\n}",
                     msg, (int)id.len, id.ptr);

    if (n < 0 || (size_t)n >= sizeof(body))
        return SL_STATUS_ERROR;
    if (c != NULL) {
        sl_str_t name = LIT("WWW-Authenticate");
        api->resp_header_set(r, name, (sl_str_t){c->www_auth, c->www_auth_len});
    }
    if (api->respond(r, status, JSON_TYPE, (sl_str_t){body, (size_t)n}) != 0)
        return SL_STATUS_ERROR;
    return SL_STATUS_RESPOND;
}

/* Kong's set_consumer: authenticate, then the upstream headers
 * (ka_headers.c). */
static int
set_consumer(const sl_api_t *api, sl_req_t *r, ka_conf_t *c, const sl_consumer_t *who,
             const sl_credential_t *cred)
{
    if (api->consumer_set(r, who, cred) != 0)
        return -1;
    return ka_headers_set(api, r, c, who, cred);
}

/* ---- finding the key ---- */

static int
hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)(c | 0x20);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decode (and '+' -> ' ') into the request pool. */
static sl_str_t
decode(const sl_api_t *api, sl_req_t *r, const char *p, size_t n)
{
    char *o = api->palloc(r, n + 1);
    size_t k = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            o[k++] = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        } else {
            o[k++] = p[i] == '+' ? ' ' : p[i];
        }
    }
    o[k] = '\0';
    return (sl_str_t){o, k};
}

/* Walk a form/query string: calls fn for each name=value pair (raw bytes,
 * pair bounds included for removal).  Pairs without '=' are skipped: Kong
 * sees them as boolean true, not a key. */
typedef struct pair {
    const char *start; /* the pair in the string */
    size_t len;
    sl_str_t name, value; /* raw */
} pair_t;

static int
next_pair(sl_str_t s, size_t *pos, pair_t *p)
{
    while (*pos < s.len) {
        const char *b = s.ptr + *pos, *amp = memchr(b, '&', s.len - *pos), *eq;
        size_t n = amp ? (size_t)(amp - b) : s.len - *pos;

        *pos += n + (amp != NULL);
        if (n == 0 || (eq = memchr(b, '=', n)) == NULL)
            continue;
        p->start = b;
        p->len = n;
        p->name = (sl_str_t){b, (size_t)(eq - b)};
        p->value = (sl_str_t){eq + 1, n - (size_t)(eq - b) - 1};
        return 1;
    }
    return 0;
}

/* Occurrences of `name` in a form string; *value = the first one's value
 * (decoded). */
static int
form_find(const sl_api_t *api, sl_req_t *r, sl_str_t form, const char *name, size_t nlen,
          sl_str_t *value)
{
    size_t pos = 0;
    pair_t p;
    int n = 0;

    while (next_pair(form, &pos, &p)) {
        sl_str_t nm = memchr(p.name.ptr, '%', p.name.len) || memchr(p.name.ptr, '+', p.name.len)
                          ? decode(api, r, p.name.ptr, p.name.len)
                          : p.name;
        if (nm.len != nlen || memcmp(nm.ptr, name, nlen) != 0)
            continue;
        if (n++ == 0)
            *value = decode(api, r, p.value.ptr, p.value.len);
    }
    return n;
}

/* `form` without the pairs named `name`, in the pool. */
static sl_str_t
form_without(const sl_api_t *api, sl_req_t *r, sl_str_t form, const char *name, size_t nlen)
{
    char *o = api->palloc(r, form.len + 1);
    size_t pos = 0, k = 0;
    pair_t p;

    /* pairs without '=' are dropped too: they were never a key */
    while (next_pair(form, &pos, &p)) {
        sl_str_t nm = decode(api, r, p.name.ptr, p.name.len);
        if (nm.len == nlen && memcmp(nm.ptr, name, nlen) == 0)
            continue;
        if (k)
            o[k++] = '&';
        memcpy(o + k, p.start, p.len);
        k += p.len;
    }
    o[k] = '\0';
    return (sl_str_t){o, k};
}

/* Whether header name h (h.len == folded.len) is the key name whose
 * bytes with 0x20 set are `folded`, in any case.  Setting 0x20 on both
 * sides is exact here: a key name is [A-Za-z0-9_-], and the only other
 * bytes that become one of those are controls and DEL, which a header
 * name (an RFC 9110 token, checked by the parser and by the host's
 * setters) never has.  Eight bytes at a time (the last eight overlapping
 * when the length is not a multiple), four for a name of 4-7 bytes (first
 * and last four), byte by byte below that. */
static int
name_is(sl_str_t h, sl_str_t folded)
{
    const size_t n = folded.len;
    uint64_t x, y;
    uint32_t u, v;

    if (n >= 8) {
        for (size_t i = 0;; i += 8) {
            if (i + 8 > n)
                i = n - 8;
            memcpy(&x, h.ptr + i, 8);
            memcpy(&y, folded.ptr + i, 8);
            if ((x | 0x2020202020202020ull) != y)
                return 0;
            if (i + 8 == n)
                return 1;
        }
    }
    if (n >= 4) {
        memcpy(&u, h.ptr, 4);
        memcpy(&v, folded.ptr, 4);
        if ((u | 0x20202020u) != v)
            return 0;
        memcpy(&u, h.ptr + n - 4, 4);
        memcpy(&v, folded.ptr + n - 4, 4);
        return (u | 0x20202020u) == v;
    }
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)h.ptr[i] | 0x20) != (unsigned char)folded.ptr[i])
            return 0;
    return 1;
}

/* Fields named like `folded` (any case); *value = the first one's value. */
static int
header_find(const sl_api_t *api, sl_req_t *r, sl_str_t folded, sl_str_t *value)
{
    size_t cur = 0;
    sl_str_t hn, hv;
    int n = 0;

    while (api->req_header_iter(r, &cur, &hn, &hv)) {
        if (hn.len == folded.len && name_is(hn, folded) && n++ == 0)
            *value = hv;
    }
    return n;
}

static void
hide_query(const sl_api_t *api, sl_req_t *r, const char *name, size_t nlen)
{
    sl_str_t scheme, host, path, query;
    int port;

    if (api->upstream_get(r, &scheme, &host, &port, &path, &query) != 0 || query.len == 0)
        return;
    query = form_without(api, r, query, name, nlen);
    if (api->upstream_set(r, scheme, host, port, path, query) != 0)
        api->log(r, SL_LOG_WARN, "could not remove the key from the upstream query");
}

/* The key from headers or query (Kong's loop minus the body).  Returns 1
 * and *key, 0 when none, -1 when a name was given twice. */
static int
find_key(const sl_api_t *api, sl_req_t *r, const ka_conf_t *c, sl_str_t *key)
{
    const char *const *names = c->key_names.items;
    sl_str_t query = c->key_in_query ? api->req_query(r) : (sl_str_t){NULL, 0};

    for (size_t i = 0; i < c->key_names.n; i++) {
        size_t nlen = c->folded[i].len;
        int n = 0, in_query = 0;

        if (c->key_in_header)
            n = header_find(api, r, c->folded[i], key);
        if (n == 0 && query.len) {
            n = form_find(api, r, query, names[i], nlen, key);
            in_query = 1;
        }
        if (n > 1)
            return -1;
        if (n == 1) {
            if (c->hide_credentials) {
                if (in_query)
                    hide_query(api, r, names[i], nlen);
                else
                    api->req_header_remove(r, (sl_str_t){names[i], nlen});
            }
            return 1;
        }
    }
    return 0;
}

/* The key from the body: form or JSON.  Same returns as find_key. */
static int
find_body_key(const sl_api_t *api, sl_req_t *r, const ka_conf_t *c, sl_str_t *key)
{
    const char *const *names = c->key_names.items;
    sl_str_t body = api->req_body(r), ct = {NULL, 0};
    json_object *root = NULL;
    int rc = 0;

    if (body.len == 0 || !api->req_header_get(r, (sl_str_t)LIT("Content-Type"), &ct))
        return 0;
    if (ct.len >= 33 && strncasecmp(ct.ptr, "application/x-www-form-urlencoded", 33) == 0) {
        for (size_t i = 0; i < c->key_names.n && rc == 0; i++) {
            size_t nlen = strlen(names[i]);
            int n = form_find(api, r, body, names[i], nlen, key);
            rc = n > 1 ? -1 : n;
            if (rc == 1 && c->hide_credentials) {
                sl_str_t nb = form_without(api, r, body, names[i], nlen);
                api->req_body_set(r, nb.ptr, nb.len);
            }
        }
        return rc;
    }
    if (ct.len < 16 || strncasecmp(ct.ptr, "application/json", 16) != 0)
        return 0;
    {
        json_tokener *tok = json_tokener_new();
        if (tok == NULL)
            return 0;
        root = json_tokener_parse_ex(tok, body.ptr, (int)body.len);
        json_tokener_free(tok);
    }
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return 0;
    }
    for (size_t i = 0; i < c->key_names.n && rc == 0; i++) {
        json_object *v = NULL;
        if (!json_object_object_get_ex(root, names[i], &v))
            continue;
        if (json_object_is_type(v, json_type_array)) {
            rc = -1;
        } else if (json_object_is_type(v, json_type_string)) {
            size_t n = (size_t)json_object_get_string_len(v);
            char *k = api->palloc(r, n + 1);
            memcpy(k, json_object_get_string(v), n + 1);
            *key = (sl_str_t){k, n};
            rc = 1;
            if (c->hide_credentials) {
                size_t tl;
                const char *t;
                json_object_object_del(root, names[i]);
                t = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &tl);
                api->req_body_set(r, t, tl);
            }
        }
    }
    json_object_put(root);
    return rc;
}

/* ---- authentication ---- */

/* Kong's do_authentication once the key search ended: NULL on success,
 * else the 401 message. */
static const char *
authenticate(const sl_api_t *api, sl_req_t *r, ka_conf_t *c, int found, sl_str_t key)
{
    const sl_credential_t *cred;
    const sl_consumer_t *who = NULL;

    if (found < 0)
        return ERR_DUPLICATE;
    if (found == 0 || key.len == 0)
        return ERR_NO_KEY;
    cred = api->credential_find(r, KIND, key);
    if (cred == NULL || api->credential_info(cred, NULL, &who) != 0 || who == NULL)
        return ERR_INVALID;
    if (set_consumer(api, r, c, who, cred) != 0)
        return ERR_INVALID;
    return NULL;
}

/* After a failure: the anonymous consumer (logical OR), or the 401. */
static sl_status_t
failed(const sl_api_t *api, sl_req_t *r, ka_conf_t *c, const char *msg)
{
    const sl_consumer_t *anon;
    char text[320];

    if (c->anonymous == NULL)
        return fail(api, r, 401, msg, c);
    if (c->anon == NULL) /* the configuration, so the consumers, never change in a worker */
        c->anon = api->consumer_find(r, (sl_str_t){c->anonymous, strlen(c->anonymous)});
    anon = c->anon;
    if (anon == NULL) {
        snprintf(text, sizeof(text), "anonymous consumer %.200s is configured but doesn't exist",
                 c->anonymous);
        api->log(r, SL_LOG_ERROR, "%s", text);
        return fail(api, r, 500, text, NULL);
    }
    if (set_consumer(api, r, c, anon, NULL) != 0)
        return SL_STATUS_ERROR;
    return SL_STATUS_CONTINUE;
}

static sl_status_t
ka_access(const sl_api_t *api, sl_req_t *r, void *conf)
{
    ka_conf_t *c = conf; /* a worker's own copy (anon is cached in it) */
    sl_str_t key = {NULL, 0};
    const char *msg;
    int found;

    if (!c->run_on_preflight && SL_STR_EQ(api->req_method(r), "OPTIONS"))
        return SL_STATUS_CONTINUE;
    /* logical OR: another auth plugin already authenticated the request */
    if (c->anonymous && api->credential_get(r) != NULL)
        return SL_STATUS_CONTINUE;
    found = find_key(api, r, c, &key);
    if (found == 0 && c->key_in_body) {
        api->ctx_set(r, &body_pending); /* decided in the body phase */
        return SL_STATUS_CONTINUE;
    }
    if ((msg = authenticate(api, r, c, found, key)) == NULL)
        return SL_STATUS_CONTINUE;
    return failed(api, r, c, msg);
}

static sl_status_t
ka_body(const sl_api_t *api, sl_req_t *r, void *conf)
{
    ka_conf_t *c = conf;
    sl_str_t key = {NULL, 0};
    const char *msg;
    int found;

    if (!c->key_in_body || api->ctx_get(r) != &body_pending)
        return SL_STATUS_CONTINUE;
    api->ctx_set(r, NULL);
    found = find_body_key(api, r, c, &key);
    if ((msg = authenticate(api, r, c, found, key)) == NULL)
        return SL_STATUS_CONTINUE;
    return failed(api, r, c, msg);
}

/* The prepared headers go with the worker (requests keep copies). */
static void
ka_exit_worker(const sl_api_t *api, void *conf)
{
    ka_headers_free(api, conf);
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,  "key-auth",   "1.0.0", 1250, /* Kong's PRIORITY */
    ka_conf_parse,  ka_conf_free, NULL,          /* init_worker */
    ka_exit_worker,                              /* exit_worker */
    ka_access,      ka_body,      NULL,          /* header_filter */
    NULL,                                        /* body_filter */
    NULL,                                        /* log */
    NULL,                                        /* balancer */
    {NULL},
};
