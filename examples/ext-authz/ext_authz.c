/* ext_authz.c - the "ext-authz" example plugin: external authorization.
 *
 * For every request, the access phase asks a local HTTP service whether it
 * may pass (an HTTP callout, ABI 1.1) and pauses until the answer comes:
 *
 *   GET <url><original path>        with X-Original-Method, X-Original-Uri
 *                                   and the client headers named in
 *                                   `forward` (default: authorization)
 *   2xx  -> allowed: the headers named in `upstream_headers` (default:
 *           x-auth-user) are copied from the answer onto the request
 *   else -> denied: the client gets the service's status and body
 *   no answer (down, timeout_ms, invalid) -> `status_on_error` (default 403)
 *
 * Config: {url (required, http:// or https://), timeout_ms (default 1000),
 * forward: [names], upstream_headers: [names], status_on_error}.
 * Built only on <sluice/plugin.h>; needs a 1.1 host. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sluice/plugin.h>

#define MAX_NAMES 8

typedef struct conf {
    char url[512];
    unsigned timeout_ms;
    int status_on_error;
    char forward[MAX_NAMES][64];
    size_t nforward;
    char upstream[MAX_NAMES][64];
    size_t nupstream;
} conf_t;

/* ---- a tiny reader for this config's flat JSON (no dependency) -------- */

/* Find "key" at the top level of obj; returns a pointer to its value. */
static const char *
json_find(const char *obj, const char *key)
{
    char pat[80];
    const char *p;

    snprintf(pat, sizeof(pat), "\"%s\"", key);
    if ((p = strstr(obj, pat)) == NULL)
        return NULL;
    p += strlen(pat);
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':')
        p++;
    return p;
}

/* A JSON string at p (no escapes) into out; returns the end or NULL. */
static const char *
json_string(const char *p, char *out, size_t cap)
{
    const char *e;

    if (p == NULL || *p != '"' || (e = strchr(p + 1, '"')) == NULL)
        return NULL;
    if ((size_t)(e - p - 1) >= cap || memchr(p + 1, '\\', (size_t)(e - p - 1)))
        return NULL;
    memcpy(out, p + 1, (size_t)(e - p - 1));
    out[e - p - 1] = '\0';
    return e + 1;
}

static int
json_names(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, const char *key,
           char (*names)[64], size_t *n)
{
    const char *p = json_find(json, key);

    if (p == NULL)
        return 0;
    *n = 0;
    if (*p != '[') {
        api->conf_error(cx, key, "expected an array of header names");
        return -1;
    }
    for (p++;;) {
        while (*p == ' ' || *p == ',' || *p == '\n')
            p++;
        if (*p == ']')
            return 0;
        if (*n == MAX_NAMES || (p = json_string(p, names[*n], 64)) == NULL) {
            api->conf_error(cx, key, "at most %d header names of under 64 bytes", MAX_NAMES);
            return -1;
        }
        (*n)++;
    }
}

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    conf_t *c = calloc(1, sizeof(*c));
    const char *p;

    (void)len; /* json is NUL-terminated */
    if (c == NULL)
        return -1;
    *out = c;
    c->timeout_ms = 1000;
    c->status_on_error = 403;
    strcpy(c->forward[0], "authorization");
    c->nforward = 1;
    strcpy(c->upstream[0], "x-auth-user");
    c->nupstream = 1;
    if (json_string(json_find(json, "url"), c->url, sizeof(c->url)) == NULL ||
        (strncmp(c->url, "http://", 7) != 0 && strncmp(c->url, "https://", 8) != 0)) {
        api->conf_error(cx, "url", "required: the authorization service, http(s)://host:port");
        return -1;
    }
    if ((p = json_find(json, "timeout_ms")) != NULL &&
        ((c->timeout_ms = (unsigned)strtoul(p, NULL, 10)) == 0 || c->timeout_ms > 60000)) {
        api->conf_error(cx, "timeout_ms", "must be 1..60000");
        return -1;
    }
    if ((p = json_find(json, "status_on_error")) != NULL &&
        ((c->status_on_error = atoi(p)) < 400 || c->status_on_error > 599)) {
        api->conf_error(cx, "status_on_error", "must be 400..599");
        return -1;
    }
    if (json_names(api, cx, json, "forward", c->forward, &c->nforward) != 0 ||
        json_names(api, cx, json, "upstream_headers", c->upstream, &c->nupstream) != 0)
        return -1;
    return 0;
}

static void
config_free(void *conf)
{
    free(conf);
}

static sl_str_t
S(const char *s)
{
    sl_str_t r = {s, strlen(s)};
    return r;
}

/* ---- the check ---------------------------------------------------------- */

static void
answered(const sl_api_t *api, sl_req_t *r, int err, const sl_callout_resp_t *resp, void *arg)
{
    const conf_t *c = arg;

    if (err != SL_CALLOUT_OK) {
        api->log(r, SL_LOG_WARN, "authorization service: %s", api->callout_strerror(err));
        api->respond(r, c->status_on_error, S("application/json"),
                     S("{\"message\":\"authorization service unavailable\"}"));
        api->resume(r, SL_STATUS_RESPOND);
        return;
    }
    if (resp->status < 200 || resp->status > 299) { /* denied: its answer, as is */
        sl_str_t ctype = {NULL, 0};
        for (size_t i = 0; i < resp->nheaders; i++)
            if (resp->headers[2 * i].len == 12 &&
                strncasecmp(resp->headers[2 * i].ptr, "content-type", 12) == 0)
                ctype = resp->headers[2 * i + 1];
        api->respond(r, resp->status, ctype, resp->body);
        api->resume(r, SL_STATUS_RESPOND);
        return;
    }
    for (size_t i = 0; i < resp->nheaders; i++)
        for (size_t k = 0; k < c->nupstream; k++)
            if (resp->headers[2 * i].len == strlen(c->upstream[k]) &&
                strncasecmp(resp->headers[2 * i].ptr, c->upstream[k], resp->headers[2 * i].len) ==
                    0)
                api->req_header_set(r, resp->headers[2 * i], resp->headers[2 * i + 1]);
    api->resume(r, SL_STATUS_CONTINUE);
}

static sl_status_t
access_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    sl_str_t path = api->req_path(r), query = api->req_query(r), method = api->req_method(r);
    char url[2048], uri[2048];
    sl_str_t hdrs[2 * (MAX_NAMES + 2)];
    size_t nh = 0;

    if (api->abi_minor < 1)
        return SL_STATUS_ERROR; /* callouts and pauses are 1.1 */
    snprintf(url, sizeof(url), "%s%.*s", c->url, (int)path.len, path.ptr);
    snprintf(uri, sizeof(uri), "%.*s%s%.*s", (int)path.len, path.ptr, query.len ? "?" : "",
             (int)query.len, query.ptr);
    hdrs[nh++] = S("X-Original-Method");
    hdrs[nh++] = method;
    hdrs[nh++] = S("X-Original-Uri");
    hdrs[nh++] = S(uri);
    for (size_t k = 0; k < c->nforward; k++) {
        sl_str_t v;
        if (api->req_header_get(r, S(c->forward[k]), &v) == 1) {
            hdrs[nh++] = S(c->forward[k]);
            hdrs[nh++] = v;
        }
    }
    sl_callout_req_t q;
    memset(&q, 0, sizeof(q));
    q.url = S(url);
    q.headers = hdrs;
    q.nheaders = nh / 2;
    q.timeout_ms = c->timeout_ms;
    q.max_body = 64 * 1024;
    /* The request is copied: url, uri and hdrs may go when we return. */
    if (api->callout(r, &q, answered, c) == NULL) {
        api->log(r, SL_LOG_ERROR, "cannot ask the authorization service at %s", c->url);
        return SL_STATUS_ERROR;
    }
    /* Wait for `answered`; the callout is bound to r, so a client that goes
     * away cancels it (no on_cancel needed: nothing else to stop).  The
     * pause outlives the callout's own timeout by a margin. */
    if (api->pend(r, c->timeout_ms + 1000, NULL, NULL) != 0)
        return SL_STATUS_ERROR;
    return SL_STATUS_PENDING;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI, "ext-authz", "1.0.0",
    1100,                             /* before most plugins, as authentication plugins are */
    config_parse,  config_free, NULL, /* init_worker */
    NULL,                             /* exit_worker */
    access_phase,                     /* access */
    NULL,                             /* body */
    NULL,                             /* header_filter */
    NULL,                             /* body_filter */
    NULL,                             /* log */
    NULL,                             /* balancer */
    {NULL},                           /* reserved */
};
