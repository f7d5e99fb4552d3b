/* token.c - a provider's OAuth access token, per worker: fetched over the
 * host's HTTP callout, cached, refreshed before it expires, and waited for
 * by the requests that arrive while there is none (token.h).
 *
 * Timing: a token with lifetime T (seconds, from expires_in) is used until
 * T - min(30, T/10) after it was received; from T - min(300, T/2) on, a
 * request that uses it also starts one background fetch of the next.  At
 * most one fetch is in flight per source and worker.  A failed background
 * fetch keeps the old token (tried again 5 s later); a failed fetch with
 * no usable token fails every request waiting for it.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

#define SL_AP_TOKEN_TIMEOUT_MS 10000
/* longer than the fetch: its own error reaches the client, not a 504 */
#define SL_AP_TOKEN_WAIT_MS 15000
#define SL_AP_TOKEN_MAX_BODY (64u * 1024)
#define SL_AP_TOKEN_MAX_LEN 16384
#define SL_AP_TOKEN_RETRY_US (5 * 1000000LL)

/* One request waiting for the fetch in flight (in its request's pool). */
typedef struct sl_ap_token_wait {
    struct sl_ap_token_wait *prev, *next;
    sl_ap_token_src_t *src;
    sl_req_t *r;
    sl_ap_token_done_fn done;
    void *arg;
} sl_ap_token_wait_t;

sl_ap_token_src_t *
sl_ap_token_new(const sl_ap_token_kind_t *kind, void *priv, const char *url)
{
    sl_ap_token_src_t *s = calloc(1, sizeof(*s));

    if (s == NULL || (s->url = strdup(url)) == NULL) {
        free(s);
        return NULL;
    }
    s->kind = kind;
    s->priv = priv;
    s->method = "POST";
    s->content_type = "application/x-www-form-urlencoded";
    return s;
}

void
sl_ap_token_free(sl_ap_token_src_t *s)
{
    if (s == NULL) {
        return;
    }
    /* the master frees configs with nothing in flight; a worker's copy
     * lives until the worker exits, its callouts cancelled by the host */
    if (s->kind && s->kind->free) {
        s->kind->free(s->priv);
    }
    free(s->url);
    free(s->auth);
    free(s);
}

void
sl_ap_b64url(sl_ap_buf_t *out, const unsigned char *p, size_t n)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t i;

    if (sl_ap_buf_reserve(out, (n + 2) / 3 * 4) != 0) {
        return;
    }
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];
        char q[4] = {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63], abc[v & 63]};

        sl_ap_buf_add(out, q, 4);
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;
        char q[2] = {abc[v >> 18], abc[(v >> 12) & 63]};

        sl_ap_buf_add(out, q, 2);
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;
        char q[3] = {abc[v >> 18], abc[(v >> 12) & 63], abc[(v >> 6) & 63]};

        sl_ap_buf_add(out, q, 3);
    }
}

void
sl_ap_form_encode(sl_ap_buf_t *out, const char *p, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";

    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)p[i];

        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            sl_ap_buf_addc(out, (char)ch);
        } else {
            char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};

            sl_ap_buf_add(out, e, 3);
        }
    }
}

/* A string member of the answer, unescaped into b ("" when absent). */
static int
sl_ap_token_member(const sl_jdoc_t *d, const char *key, sl_ap_buf_t *b)
{
    int tok = sl_json_get_t(d, 0, key, SL_J_STR);
    sl_str_t v;

    if (tok < 0) {
        return -1;
    }
    v = sl_json_sv(d, tok);
    return sl_json_unescape(v.ptr, v.len, b) == 0 && !b->oom ? 0 : -1;
}

/* Printable ASCII only: what goes into an error text or a header. */
static int
sl_ap_printable(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)p[i] < 0x21 || (unsigned char)p[i] > 0x7e) {
            return 0;
        }
    }
    return 1;
}

int
sl_ap_token_parse(const char *body, size_t len, sl_ap_buf_t *token, int64_t *ttl_s, char *err,
                  size_t errlen)
{
    sl_jdoc_t d = {0};
    sl_ap_buf_t e = {0}, ed = {0}, ttl = {0};
    int tok, rc = -1;

    if (sl_json_parse(&d, body, len) != 0 || d.t[0].type != SL_J_OBJ) {
        snprintf(err, errlen, "the token endpoint's answer is not a JSON object");
        goto done;
    }
    if (sl_ap_token_member(&d, "access_token", token) != 0 || token->len == 0) {
        sl_ap_token_member(&d, "error", &e);
        sl_ap_token_member(&d, "error_description", &ed);
        snprintf(err, errlen, "the token endpoint sent no access_token%s%.*s%s%.*s",
                 e.len ? ": " : "", (int)(e.len > 80 ? 80 : e.len), e.ptr ? e.ptr : "",
                 ed.len ? ": " : "", (int)(ed.len > 160 ? 160 : ed.len), ed.ptr ? ed.ptr : "");
        goto done;
    }
    if (token->len > SL_AP_TOKEN_MAX_LEN || !sl_ap_printable(token->ptr, token->len)) {
        snprintf(err, errlen, "the token endpoint's access_token is not a header value");
        goto done;
    }
    *ttl_s = 3600; /* RFC 6749: expires_in is recommended, not required */
    tok = sl_json_get(&d, 0, "expires_in");
    if (tok >= 0 && d.t[tok].type == SL_J_NUM) {
        if (sl_json_int(&d, tok, ttl_s) != 0) {
            *ttl_s = -1;
        }
    } else if (tok >= 0 && d.t[tok].type == SL_J_STR) {
        char *end = NULL;

        sl_ap_token_member(&d, "expires_in", &ttl);
        *ttl_s = ttl.len ? strtoll(ttl.ptr, &end, 10) : -1;
        if (end == NULL || *end != '\0') {
            *ttl_s = -1;
        }
    } else if (tok >= 0) {
        *ttl_s = -1;
    }
    if (*ttl_s <= 0 || *ttl_s > 7 * 86400) {
        snprintf(err, errlen, "the token endpoint's expires_in is not a lifetime in seconds");
        goto done;
    }
    rc = 0;
done:
    sl_json_free(&d);
    sl_ap_buf_free(&e);
    sl_ap_buf_free(&ed);
    sl_ap_buf_free(&ttl);
    return rc;
}

/* ------------------------------------------------------------- waiting */

static void
sl_ap_token_unlink(sl_ap_token_wait_t *w)
{
    if (w->prev) {
        w->prev->next = w->next;
    } else if (w->src->waiters == w) {
        w->src->waiters = w->next;
    }
    if (w->next) {
        w->next->prev = w->prev;
    }
    w->prev = w->next = NULL;
}

static void
sl_ap_token_cancel(const sl_api_t *api, sl_req_t *r, sl_req_error_t why, void *arg)
{
    (void)api;
    (void)r;
    (void)why;
    sl_ap_token_unlink(arg);
}

static int
sl_ap_token_set(const sl_api_t *api, sl_req_t *r, const sl_ap_token_src_t *s)
{
    return api->req_header_set(r, SL_STR("authorization"), (sl_str_t){s->auth, strlen(s->auth)});
}

/* Every waiting request gets the token, or the error. */
static void
sl_ap_token_wake(const sl_api_t *api, sl_ap_token_src_t *s, const char *err)
{
    while (s->waiters) {
        sl_ap_token_wait_t *w = s->waiters;
        const char *why = err;

        sl_ap_token_unlink(w);
        if (why == NULL && sl_ap_token_set(api, w->r, s) != 0) {
            why = "the token could not be set on the request";
        }
        w->done(api, w->r, w->arg, why);
    }
}

static void
sl_ap_token_got(const sl_api_t *api, sl_req_t *r, int err, const sl_callout_resp_t *resp, void *arg)
{
    sl_ap_token_src_t *s = arg;
    sl_ap_buf_t tok = {0};
    int64_t ttl = 0, now = api->now_us();
    char why[256], detail[200], msg[384];
    char *auth = NULL;

    (void)r;
    s->inflight = NULL;
    why[0] = '\0';
    if (err != SL_CALLOUT_OK) {
        snprintf(why, sizeof(why), "the token endpoint could not be reached: %s",
                 api->callout_strerror(err));
    } else if (sl_ap_token_parse(resp->body.ptr, resp->body.len, &tok, &ttl, detail,
                                 sizeof(detail)) != 0 ||
               resp->status != 200) {
        if (resp->status == 200) {
            snprintf(why, sizeof(why), "%s", detail);
        } else {
            snprintf(why, sizeof(why), "the token endpoint answered %d%s%.200s", resp->status,
                     tok.len ? "" : ": ", tok.len ? "" : detail);
        }
    } else if ((auth = malloc(tok.len + 8)) == NULL) {
        snprintf(why, sizeof(why), "out of memory");
    } else {
        memcpy(auth, "Bearer ", 7);
        memcpy(auth + 7, tok.ptr, tok.len + 1);
        free(s->auth);
        s->auth = auth;
        s->usable_us = now + (ttl - (ttl / 10 < 30 ? ttl / 10 : 30)) * 1000000LL;
        s->refresh_us = now + (ttl - (ttl / 2 < 300 ? ttl / 2 : 300)) * 1000000LL;
    }
    sl_ap_buf_free(&tok);
    if (why[0] != '\0') {
        snprintf(msg, sizeof(msg), "%s: %s", s->kind->what, why);
        api->log(NULL, SL_LOG_WARN, "%s", msg);
        if (s->auth && now < s->usable_us) {
            s->refresh_us = now + SL_AP_TOKEN_RETRY_US; /* the old one still works */
        }
    }
    sl_ap_token_wake(api, s, why[0] ? msg : NULL);
}

/* Start the fetch unless one is in flight.  0 or -1 (err). */
static int
sl_ap_token_fetch(const sl_api_t *api, sl_ap_token_src_t *s, char *err, size_t errlen)
{
    sl_ap_buf_t body = {0};
    sl_str_t hdr[4];
    size_t nh = 0;

    if (s->inflight) {
        return 0;
    }
    if (s->kind->request(s, api->now_us() / 1000000, &body) != 0 || body.oom) {
        sl_ap_buf_free(&body);
        snprintf(err, errlen, "%s: the token request could not be built", s->kind->what);
        return -1;
    }
    if (s->content_type) {
        hdr[nh++] = (sl_str_t)SL_STR("content-type");
        hdr[nh++] = (sl_str_t){s->content_type, strlen(s->content_type)};
    }
    if (s->hdr_name) {
        hdr[nh++] = (sl_str_t){s->hdr_name, strlen(s->hdr_name)};
        hdr[nh++] = (sl_str_t){s->hdr_value, strlen(s->hdr_value)};
    }
    sl_callout_req_t q = {
        .method = {s->method, strlen(s->method)},
        .url = {s->url, strlen(s->url)},
        .headers = hdr,
        .nheaders = nh / 2,
        .body = {body.ptr, body.len},
        .timeout_ms = SL_AP_TOKEN_TIMEOUT_MS,
        .max_body = SL_AP_TOKEN_MAX_BODY,
    };
    /* a worker-level callout: it outlives the request that started it */
    s->inflight = api->callout(NULL, &q, sl_ap_token_got, s);
    sl_ap_buf_free(&body);
    if (s->inflight == NULL) {
        snprintf(err, errlen, "%s: the token request could not be sent", s->kind->what);
        return -1;
    }
    return 0;
}

int
sl_ap_token_apply(const sl_api_t *api, sl_req_t *r, sl_ap_token_src_t *s, sl_ap_token_done_fn done,
                  void *arg, char *err, size_t errlen)
{
    int64_t now = api->now_us();
    sl_ap_token_wait_t *w;

    if (s->auth && now < s->usable_us) {
        if (now >= s->refresh_us && s->inflight == NULL &&
            sl_ap_token_fetch(api, s, err, errlen) != 0) {
            s->refresh_us = now + SL_AP_TOKEN_RETRY_US; /* this one still works */
        }
        if (sl_ap_token_set(api, r, s) != 0) {
            snprintf(err, errlen, "%s: the token could not be set on the request", s->kind->what);
            return -1;
        }
        return 0;
    }
    w = api->palloc(r, sizeof(*w));
    if (w == NULL) {
        snprintf(err, errlen, "%s: out of memory", s->kind->what);
        return -1;
    }
    if (sl_ap_token_fetch(api, s, err, errlen) != 0) {
        return -1;
    }
    if (api->pend(r, SL_AP_TOKEN_WAIT_MS, sl_ap_token_cancel, w) != 0) {
        snprintf(err, errlen, "%s: the request cannot wait for a token here", s->kind->what);
        return -1;
    }
    *w = (sl_ap_token_wait_t){NULL, s->waiters, s, r, done, arg};
    if (s->waiters) {
        s->waiters->prev = w;
    }
    s->waiters = w;
    return 1;
}
