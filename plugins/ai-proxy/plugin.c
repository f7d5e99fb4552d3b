/* plugin.c - the ai-proxy plugin: descriptor and phase glue.
 *
 * Wires the pure translators to the sluice plugin ABI (include/sluice/
 * plugin.h, the only host interface used):
 *   access         pick the endpoint from the path, set the upstream target
 *                  and the provider's auth, answer unknown paths with 404
 *   body           translate the request (or answer count_tokens locally)
 *   header_filter  decide how the response body is treated, fix headers
 *   body_filter    translate the response as it streams (or at eof)
 *   log            Kong's ai.proxy.* statistics
 * Per-request state lives in one malloc'd context freed by a cleanup.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"
#include "token.h"

/* Upper bounds for bodies kept whole in memory. */
#define SL_AP_MAX_BUFFERED (64u * 1024 * 1024) /* non-streaming answer */
#define SL_AP_MAX_ERROR_BODY (256u * 1024)     /* error page */
#define SL_AP_MAX_PAYLOAD (1024u * 1024)       /* log_payloads copy */
#define SL_AP_PING_MS 10000

typedef enum {
    SL_AP_EP_CHAT = 0,  /* translated (anthropic) or forwarded (openai) */
    SL_AP_EP_COUNT,     /* count_tokens, answered in body */
    SL_AP_EP_COUNT_FWD, /* count_tokens, forwarded to the provider's */
    SL_AP_EP_LOCAL      /* answered in access */
} sl_ap_endpoint_t;

typedef enum {
    SL_AP_RESP_NONE = 0,  /* our own response: untouched */
    SL_AP_RESP_STREAM,    /* anthropic SSE translation */
    SL_AP_RESP_JSON,      /* anthropic non-streaming translation */
    SL_AP_RESP_ERROR,     /* anthropic error translation */
    SL_AP_RESP_WATCH,     /* openai stream, read for usage */
    SL_AP_RESP_COPY,      /* openai JSON, read for usage at eof */
    SL_AP_RESP_DJSON,     /* openai client: the codec's answer decoded at eof */
    SL_AP_RESP_OAI_ERROR, /* openai client: a provider error in OpenAI's shape */
    SL_AP_RESP_SCRUB,     /* a passed-through error body, held to scrub the key */
    SL_AP_RESP_ASTREAM,   /* anthropic client: the codec's stream straight to Anthropic */
    SL_AP_RESP_AJSON,     /* anthropic client: the codec's answer straight to Anthropic */
    SL_AP_RESP_NWATCH,    /* preserve: a gemini / bedrock stream, read for usage */
    SL_AP_RESP_EMBED      /* embeddings from gemini / bedrock / cohere, into OpenAI's */
} sl_ap_resp_t;

typedef struct sl_ap_ctx {
    const sl_api_t *api;
    const sl_ap_conf_t *conf;
    const sl_ap_target_t *t;    /* the target this request goes to */
    const sl_ap_codec_t *codec; /* its codec when its dialect is not the client's */
    void *dec;                  /* codec stream decoder state */
    sl_ap_usage_t dusage;       /* usage the decoder saw */
    sl_ap_req_info_t info;      /* what the encoder said about the request */
    sl_ap_buf_t pivot;          /* decoded stream piece (OpenAI chunks) */
    void *adec;                 /* codec stream state straight to Anthropic (astream_*) */
    sl_ap_nwatch_t *nwatch;     /* preserve: a native stream read for usage */
    int endpoint;
    int responded;  /* we called api->respond */
    int translated; /* the request went upstream translated */
    int stream;
    int resp;
    int resp_status;
    int resp_gzip;
    char model[128];     /* request model, as sent upstream */
    int web_search;      /* answer with the web_search server-tool blocks */
    int upstream_stream; /* a non-streaming client, a streamed upstream */
    int64_t input_estimate;
    int64_t t_start, t_first, t_last_out;
    sl_ap_stream_t st;
    sl_ap_watch_t watch;
    sl_ap_usage_t usage;
    sl_jdoc_t doc;
    sl_ap_buf_t acc; /* buffered response body */
    sl_ap_buf_t out; /* body_filter output */
    sl_ap_buf_t req_payload;
    sl_ap_buf_t resp_payload;
    int acc_overflow;
    int overflow_told;    /* the stream's event bound was hit and logged */
    int stats_published;  /* ai.proxy.usage/meta set (at eof, or in log) */
    int64_t embed_tokens; /* x-amzn-bedrock-input-token-count, -1 without */
} sl_ap_ctx_t;

/* The worker's output buffers.  A body_filter's output (c->out, or c->pivot
 * passed on as it is) is read before the filter chain for that chunk
 * returns: the core copies it into the client's queue.  A worker filters one
 * chunk at a time, so the request being filtered borrows the worker's two
 * buffers and the next request to filter takes them back: a held stream
 * keeps no output buffer between its chunks. */
typedef struct sl_ap_lend {
    sl_ap_buf_t spare;   /* while no request holds it */
    sl_ap_buf_t *holder; /* the ctx member holding it */
} sl_ap_lend_t;

#define SL_AP_LEND_KEEP (64u * 1024) /* a bigger buffer is freed, not kept */

static sl_ap_lend_t sl_ap_lend_out, sl_ap_lend_pivot;

static void
sl_ap_lend_back(sl_ap_lend_t *l)
{
    sl_ap_buf_t *b = l->holder;

    if (b == NULL) {
        return;
    }
    l->holder = NULL;
    if (b->cap > SL_AP_LEND_KEEP || b->oom) {
        sl_ap_buf_free(b);
        return;
    }
    l->spare = *b;
    l->spare.len = 0;
    *b = (sl_ap_buf_t){0};
}

static void
sl_ap_lend(sl_ap_lend_t *l, sl_ap_buf_t *b)
{
    if (l->holder == b) {
        return;
    }
    sl_ap_lend_back(l);
    sl_ap_buf_free(b);
    *b = l->spare;
    l->spare = (sl_ap_buf_t){0};
    l->holder = b;
}

/* b is freed with its request: back to the worker if it holds the loan */
static void
sl_ap_lend_free(sl_ap_lend_t *l, sl_ap_buf_t *b)
{
    if (l->holder == b) {
        sl_ap_lend_back(l);
    }
    sl_ap_buf_free(b);
}

static void
sl_ap_ctx_free(void *arg)
{
    sl_ap_ctx_t *c = arg;

    if (c->dec) {
        if (c->codec && c->codec->stream_free) {
            c->codec->stream_free(c->dec);
        }
        free(c->dec);
    }
    if (c->adec) {
        if (c->codec && c->codec->astream_free) {
            c->codec->astream_free(c->adec);
        }
        free(c->adec);
    }
    sl_ap_lend_free(&sl_ap_lend_pivot, &c->pivot);
    sl_ap_stream_free(&c->st);
    sl_ap_watch_free(&c->watch);
    sl_ap_nwatch_free(c->nwatch);
    sl_json_free(&c->doc);
    sl_ap_buf_free(&c->acc);
    sl_ap_lend_free(&sl_ap_lend_out, &c->out);
    sl_ap_buf_free(&c->req_payload);
    sl_ap_buf_free(&c->resp_payload);
    free(c);
}

static int
sl_ap_ends_with(sl_str_t s, const char *suffix)
{
    size_t n = strlen(suffix);

    if (s.len > 1 && s.ptr[s.len - 1] == '/') {
        s.len--; /* tolerate one trailing slash */
    }
    return s.len >= n && memcmp(s.ptr + s.len - n, suffix, n) == 0;
}

/* Answer in the client's dialect: Anthropic's error shape, or Kong's
 * {"error":{"message"}} for llm_format openai. */
static sl_status_t
sl_ap_respond_error(const sl_api_t *api, sl_req_t *r, sl_ap_ctx_t *c, int status, const char *msg)
{
    sl_ap_buf_t b = {0};
    int rc;

    if (c->t->llm_format == SL_AP_FMT_ANTHROPIC) {
        sl_ap_anthropic_error_msg(&b, status, msg);
    } else {
        SL_AP_BUF_LIT(&b, "{\"error\":{\"message\":");
        sl_ap_buf_add_qstr(&b, msg, strlen(msg));
        SL_AP_BUF_LIT(&b, "}}");
    }
    if (b.oom) {
        sl_ap_buf_free(&b);
        return SL_STATUS_ERROR;
    }
    c->responded = 1;
    rc = api->respond(r, status, SL_STR("application/json"), (sl_str_t){b.ptr, b.len});
    sl_ap_buf_free(&b);
    return rc == 0 ? SL_STATUS_RESPOND : SL_STATUS_ERROR;
}

/* ---------------------------------------------------------------- config */

typedef struct {
    const sl_api_t *api;
    sl_conf_ctx_t *cx;
} sl_ap_conf_ud_t;

static void
sl_ap_conf_err(void *ud, const char *field, const char *msg)
{
    sl_ap_conf_ud_t *u = ud;

    u->api->conf_error(u->cx, field, "%s", msg);
}

static int
sl_ap_config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len,
                   void **conf)
{
    sl_ap_conf_ud_t ud = {api, cx};
    sl_ap_conf_t *c = NULL;
    int rc;

    sl_ap_conf_host(api);
    rc = sl_ap_conf_parse(json, len, &c, sl_ap_conf_err, &ud);

    if (rc == -2) {
        api->conf_error(cx, "", "out of memory");
    }
    if (rc != 0) {
        return -1;
    }
    *conf = c;
    return 0;
}

static void
sl_ap_config_free(void *conf)
{
    sl_ap_conf_free(conf);
}

/* ---------------------------------------------------------------- access */

static int
sl_ap_is_unreserved(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

/* Does the raw query hold `name=`? */
static int
sl_ap_query_has(sl_str_t q, const char *name)
{
    size_t n = strlen(name), i = 0;

    while (i < q.len) {
        size_t e = i;

        while (e < q.len && q.ptr[e] != '&') {
            e++;
        }
        if (e - i >= n && memcmp(q.ptr + i, name, n) == 0 && (e - i == n || q.ptr[i + n] == '=')) {
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

/* Append name=value to a query, the value percent-encoded. */
static void
sl_ap_query_add(sl_ap_buf_t *q, const char *name, const char *value)
{
    const char *v;

    if (q->len) {
        sl_ap_buf_addc(q, '&');
    }
    sl_ap_buf_adds(q, name);
    sl_ap_buf_addc(q, '=');
    for (v = value; *v; v++) {
        if (sl_ap_is_unreserved((unsigned char)*v)) {
            sl_ap_buf_addc(q, *v);
        } else {
            sl_ap_buf_addf(q, "%%%02X", (unsigned char)*v);
        }
    }
}

/* The target's URL: scheme, host, port and path from the config (the
 * client's own path on a preserve route, as Kong), the query of the
 * configured URL, then the client's, then Azure's api-version (unless the
 * client sent one, as Kong) and the query credential. */
static int
sl_ap_set_upstream_at(const sl_api_t *api, sl_req_t *r, const sl_ap_target_t *t, const char *suffix)
{
    sl_str_t cq = api->req_query(r);
    sl_str_t path = {t->up_path, strlen(t->up_path)};
    sl_ap_buf_t q = {0};
    char *qp = NULL;
    int rc;

    if (t->route_type == SL_AP_ROUTE_PRESERVE && !t->up_path_fixed) {
        path = api->req_path(r);
    }
    if (suffix) {
        size_t n = strlen(suffix);
        char *pp = api->palloc(r, path.len + n);

        if (pp == NULL) {
            return -2;
        }
        memcpy(pp, path.ptr, path.len);
        memcpy(pp + path.len, suffix, n);
        path = (sl_str_t){pp, path.len + n};
    }
    if (t->up_query && t->up_query[0]) {
        sl_ap_buf_adds(&q, t->up_query);
    }
    if (cq.len > 0) {
        if (q.len) {
            sl_ap_buf_addc(&q, '&');
        }
        sl_ap_buf_add(&q, cq.ptr, cq.len);
    }
    if (t->provider == SL_AP_PROV_AZURE && !sl_ap_query_has(cq, "api-version") &&
        !(t->up_query &&
          sl_ap_query_has((sl_str_t){t->up_query, strlen(t->up_query)}, "api-version"))) {
        sl_ap_query_add(&q, "api-version", t->azure_api_version);
    }
    if (t->param_location == SL_AP_PARAM_QUERY &&
        !(t->allow_override && sl_ap_query_has(cq, t->param_name))) {
        sl_ap_query_add(&q, t->param_name, t->param_value);
    }
    if (q.oom) {
        sl_ap_buf_free(&q);
        return -2;
    }
    if (q.len) {
        qp = api->palloc(r, q.len);
        memcpy(qp, q.ptr, q.len);
    }
    rc = api->upstream_set(r, (sl_str_t){t->up_scheme, strlen(t->up_scheme)},
                           (sl_str_t){t->up_host, strlen(t->up_host)}, t->up_port, path,
                           (sl_str_t){qp, q.len});
    sl_ap_buf_free(&q);
    return rc;
}

static int
sl_ap_set_upstream(const sl_api_t *api, sl_req_t *r, const sl_ap_target_t *t)
{
    return sl_ap_set_upstream_at(api, r, t, NULL);
}

static void
sl_ap_set_auth(const sl_api_t *api, sl_req_t *r, const sl_ap_target_t *t)
{
    sl_str_t name = {t->header_name, t->header_name ? strlen(t->header_name) : 0};
    sl_str_t v;
    int keep_client;

    /* a browser's cookies are no provider's business */
    api->req_header_remove(r, SL_STR("cookie"));
    if (t->provider == SL_AP_PROV_ANTHROPIC && t->anthropic_version) {
        /* Kong's anthropic driver: the configured version, always */
        api->req_header_set(r, SL_STR("anthropic-version"),
                            (sl_str_t){t->anthropic_version, strlen(t->anthropic_version)});
    }
    if (t->header_name == NULL && t->param_name == NULL && t->token == NULL) {
        return; /* no gateway credentials: the client's go through */
    }
    keep_client = t->allow_override && t->header_name && api->req_header_get(r, name, &v);
    /* Every credential header the client may have sent for the gateway
     * (the ones file-log redacts): none of them is the provider's. */
    static const char *const creds[] = {
        "authorization",        /* OpenAI-compatible, DashScope, Mistral, Cohere */
        "x-api-key",            /* Anthropic */
        "anthropic-api-key",    /* Anthropic SDKs' alternative */
        "api-key",              /* Azure OpenAI */
        "x-goog-api-key",       /* Gemini */
        "x-amz-security-token", /* Bedrock (SigV4 session token) */
        "proxy-authorization",
    };
    for (size_t i = 0; i < sizeof(creds) / sizeof(creds[0]); i++) {
        if (!(keep_client && strcasecmp(t->header_name, creds[i]) == 0)) {
            api->req_header_remove(r, (sl_str_t){creds[i], strlen(creds[i])});
        }
    }
    if (t->header_name && !keep_client) {
        api->req_header_set(r, name, (sl_str_t){t->header_value, strlen(t->header_value)});
    }
}

/* The wait for an OAuth token ended (token.c): go on, or tell the client
 * why the provider cannot be called. */
static void
sl_ap_token_done(const sl_api_t *api, sl_req_t *r, void *arg, const char *err)
{
    if (err == NULL) {
        api->resume(r, SL_STATUS_CONTINUE);
    } else {
        api->resume(r, sl_ap_respond_error(api, r, arg, 502, err));
    }
}

/* The target's credentials; a token source may make the request wait. */
static sl_status_t
sl_ap_auth(const sl_api_t *api, sl_req_t *r, sl_ap_ctx_t *c)
{
    char err[320];

    sl_ap_set_auth(api, r, c->t);
    if (c->t->token == NULL) {
        return SL_STATUS_CONTINUE;
    }
    switch (sl_ap_token_apply(api, r, c->t->token, sl_ap_token_done, c, err, sizeof(err))) {
    case 0:
        return SL_STATUS_CONTINUE;
    case 1:
        return SL_STATUS_PENDING;
    default:
        return sl_ap_respond_error(api, r, c, 502, err);
    }
}

static sl_status_t
sl_ap_access(const sl_api_t *api, sl_req_t *r, void *conf_)
{
    const sl_ap_conf_t *conf = conf_;
    sl_ap_ctx_t *c;
    sl_str_t path = api->req_path(r);
    sl_str_t method = api->req_method(r);

    c = calloc(1, sizeof(*c));
    if (c == NULL || api->cleanup_add(r, sl_ap_ctx_free, c) != 0) {
        free(c);
        return SL_STATUS_ERROR;
    }
    c->api = api;
    c->conf = conf;
    c->t = &conf->t;
    api->ctx_set(r, c);
    /* the core refuses a bigger declared body before reading it */
    if (conf->max_request_body_size > 0 &&
        api->size >= offsetof(sl_api_t, req_body_limit) + sizeof(api->req_body_limit) &&
        api->req_body_limit != NULL) {
        api->req_body_limit(r, (uint64_t)conf->max_request_body_size);
    }

    if (c->t->route_type == SL_AP_ROUTE_PRESERVE) {
        /* Kong's preserve: the client's method, path and body, with the
         * gateway's credentials */
        if (sl_ap_set_upstream(api, r, c->t) != 0) {
            return SL_STATUS_ERROR;
        }
        return sl_ap_auth(api, r, c);
    }
    if (c->t->llm_format == SL_AP_FMT_ANTHROPIC) {
        if (sl_ap_ends_with(path, "/v1/messages/count_tokens")) {
            c->endpoint = SL_AP_EP_COUNT;
        } else if (sl_ap_ends_with(path, "/v1/messages")) {
            c->endpoint = SL_AP_EP_CHAT;
        } else {
            char msg[160];

            c->endpoint = SL_AP_EP_LOCAL;
            snprintf(msg, sizeof(msg), "Not found: %.*s", (int)(path.len > 100 ? 100 : path.len),
                     path.ptr);
            return sl_ap_respond_error(api, r, c, 404, msg);
        }
    }
    if (!(method.len == 4 && memcmp(method.ptr, "POST", 4) == 0)) {
        c->endpoint = SL_AP_EP_LOCAL;
        return sl_ap_respond_error(api, r, c, 405, "Method not allowed: use POST");
    }
    if (c->endpoint == SL_AP_EP_COUNT) {
        if (!(c->t->prov->caps & SL_AP_CAP_COUNT_TOKENS) || !sl_ap_target_passthrough(c->t)) {
            return SL_STATUS_CONTINUE; /* answered locally in body */
        }
        /* the Anthropic provider counts: forwarded to its count_tokens,
         * next to the messages path, with the provider's credential */
        c->endpoint = SL_AP_EP_COUNT_FWD;
        if (sl_ap_set_upstream_at(api, r, c->t, "/count_tokens") != 0) {
            return SL_STATUS_ERROR;
        }
        return sl_ap_auth(api, r, c);
    }
    if (sl_ap_set_upstream(api, r, c->t) != 0) {
        return SL_STATUS_ERROR;
    }
    /* anthropic-version / anthropic-beta stay: the provider ignores them,
     * and Kong's log shows the client's request headers with them */
    return sl_ap_auth(api, r, c);
}

/* ------------------------------------------------------------------ body */

/* preserve: the body goes untouched; its model and stream flag (when it is
 * JSON that has them) are read for the statistics and the model header. */
static sl_status_t
sl_ap_body_preserve(const sl_api_t *api, sl_req_t *r, sl_ap_ctx_t *c, sl_str_t body)
{
    int tok;

    if (body.len > 0 && sl_json_parse(&c->doc, body.ptr, body.len) == 0 &&
        c->doc.t[0].type == SL_J_OBJ) {
        tok = sl_json_get_t(&c->doc, 0, "model", SL_J_STR);
        if (tok >= 0) {
            sl_str_t m = sl_json_sv(&c->doc, tok);

            snprintf(c->model, sizeof(c->model), "%.*s",
                     (int)(m.len < sizeof(c->model) ? m.len : sizeof(c->model) - 1), m.ptr);
        }
        tok = sl_json_get(&c->doc, 0, "stream");
        c->stream = tok >= 0 && c->doc.t[tok].type == SL_J_TRUE;
        c->input_estimate = sl_ap_estimate_tokens(&c->doc);
    }
    if (c->model[0] == '\0' && c->t->model_name) {
        snprintf(c->model, sizeof(c->model), "%s", c->t->model_name);
    }
    sl_json_free(&c->doc);
    if (c->t->log_payloads) {
        sl_ap_buf_add(&c->req_payload, body.ptr,
                      body.len < SL_AP_MAX_PAYLOAD ? body.len : SL_AP_MAX_PAYLOAD);
    }
    api->req_header_remove(r, SL_STR("accept-encoding"));
    if (c->t->prov->auth == SL_AP_AUTH_SIGV4) {
        /* Bedrock: the client's method, path, query and body, signed */
        sl_str_t scheme, host, path, query, ct = {NULL, 0};
        int port;

        api->req_header_get(r, SL_STR("content-type"), &ct);
        if (api->upstream_get(r, &scheme, &host, &port, &path, &query) != 0 ||
            sl_ap_bedrock_sign(c->t, api, r, api->req_method(r), path, query, ct, body) != 0) {
            return SL_STATUS_ERROR;
        }
    }
    c->translated = 1;
    c->t_start = api->now_us();
    return SL_STATUS_CONTINUE;
}

static sl_status_t
sl_ap_body(const sl_api_t *api, sl_req_t *r, void *conf_)
{
    const sl_ap_conf_t *conf = conf_;
    sl_ap_ctx_t *c = api->ctx_get(r);
    sl_str_t body = api->req_body(r);
    sl_ap_buf_t out = {0};
    sl_ap_req_info_t info;
    int rc;

    if (c == NULL || c->responded || c->endpoint == SL_AP_EP_LOCAL) {
        return SL_STATUS_CONTINUE;
    }
    /* ai-proxy-advanced calls each phase with the chosen target's config */
    c->conf = conf;
    c->t = &conf->t;
    memset(&info, 0, sizeof(info));
    if (conf->max_request_body_size > 0 && body.len > (size_t)conf->max_request_body_size) {
        char msg[128];

        snprintf(msg, sizeof(msg), "request body too large: %zu bytes (limit %lld)", body.len,
                 (long long)conf->max_request_body_size);
        return sl_ap_respond_error(api, r, c, 413, msg);
    }

    if (c->endpoint == SL_AP_EP_COUNT) {
        int64_t n = 0;
        char resp[64];

        rc = sl_ap_count_tokens(conf, body.ptr, body.len, &c->doc, &n, &info);
        if (rc == -2) {
            return SL_STATUS_ERROR;
        }
        if (rc != 0) {
            return sl_ap_respond_error(api, r, c, info.status, info.errmsg);
        }
        snprintf(resp, sizeof(resp), "{\"input_tokens\":%lld}", (long long)n);
        c->responded = 1;
        return api->respond(r, 200, SL_STR("application/json"), (sl_str_t){resp, strlen(resp)}) == 0
                   ? SL_STATUS_RESPOND
                   : SL_STATUS_ERROR;
    }

    if (c->t->route_type == SL_AP_ROUTE_PRESERVE) {
        return sl_ap_body_preserve(api, r, c, body);
    }
    /* The translation is about as long as the request: room for it up
     * front, rather than doubling from 256 bytes and copying on the way
     * (~100 KB copied for a 49 KB turn); the spare is given back below. */
    if (sl_ap_buf_reserve(&out, body.len + body.len / 8 + 256) != 0) {
        return SL_STATUS_ERROR;
    }
    if (c->endpoint == SL_AP_EP_COUNT_FWD || c->t->route_type == SL_AP_ROUTE_EMBEDDINGS) {
        /* only the model (and a body credential for embeddings) is the
         * gateway's: count_tokens and embeddings take no sampling options
         * and no stream */
        sl_ap_target_t tt = *c->t;

        tt.max_tokens = tt.top_k = -1;
        tt.temperature = tt.top_p = -1;
        tt.response_streaming = SL_AP_STREAM_ALLOW;
        if (c->endpoint == SL_AP_EP_COUNT_FWD) {
            tt.param_location = SL_AP_PARAM_NONE;
        }
        rc = c->endpoint != SL_AP_EP_COUNT_FWD && sl_ap_target_wire(c->t) != SL_AP_WIRE_OPENAI
                 ? sl_ap_embed_request(&tt, body.ptr, body.len, &c->doc, &out, &info)
                 : sl_ap_openai_request(&tt, body.ptr, body.len, &c->doc, &out, &info);
    } else {
        rc = sl_ap_encode_request(c->t, body.ptr, body.len, &c->doc, &out, &info);
    }
    if (rc == -2) {
        sl_ap_buf_free(&out);
        return SL_STATUS_ERROR;
    }
    if (rc != 0) {
        sl_ap_buf_free(&out);
        return sl_ap_respond_error(api, r, c, info.status ? info.status : 400, info.errmsg);
    }
    /* keep what we need before the original body is replaced */
    snprintf(c->model, sizeof(c->model), "%.*s",
             (int)(info.model.len < sizeof(c->model) ? info.model.len : sizeof(c->model) - 1),
             info.model.ptr);
    c->stream = info.stream;
    c->input_estimate = info.input_estimate;
    c->web_search = info.web_search;
    c->upstream_stream = info.upstream_stream;
    c->info = info;
    c->info.model = (sl_str_t){c->model, strlen(c->model)}; /* the body goes away */
    if (c->t->log_payloads) {
        sl_ap_buf_add(&c->req_payload, body.ptr,
                      body.len < SL_AP_MAX_PAYLOAD ? body.len : SL_AP_MAX_PAYLOAD);
    }
    if (out.ptr != NULL && out.cap > out.len + out.len / 8) {
        char *fit = realloc(out.ptr, out.len + 1); /* in place: no copy */

        if (fit != NULL) {
            out.ptr = fit;
            out.cap = out.len + 1;
        }
    }
    if (api->size >= offsetof(sl_api_t, req_body_take) + sizeof(api->req_body_take) &&
        api->req_body_take != NULL && out.ptr != NULL &&
        api->req_body_take(r, out.ptr, out.len) == 0) {
        /* the host owns the translation now: no 50 KB copy */
        sl_str_t taken = {out.ptr, out.len};

        out = (sl_ap_buf_t){0};
        rc = 0;
        if (c->t->prov->codec && c->t->prov->codec->prepare) {
            rc = c->t->prov->codec->prepare(c->t, api, r, &info, taken);
        }
    } else {
        rc = api->req_body_set(r, out.ptr, out.len);
        if (rc == 0 && c->t->prov->codec && c->t->prov->codec->prepare) {
            rc = c->t->prov->codec->prepare(c->t, api, r, &info, (sl_str_t){out.ptr, out.len});
        }
    }
    sl_ap_buf_free(&out);
    /* the request's token array (one token per JSON value: ~100 KiB for a
     * Claude Code turn) is not needed while a stream may last minutes */
    sl_json_free(&c->doc);
    if (rc != 0) {
        return SL_STATUS_ERROR;
    }
    api->req_header_set(r, SL_STR("content-type"), SL_STR("application/json"));
    /* an uncompressed answer is the only one we can translate */
    api->req_header_remove(r, SL_STR("accept-encoding"));
    if (c->endpoint == SL_AP_EP_COUNT_FWD) {
        return SL_STATUS_CONTINUE; /* the answer passes as it is, no statistics */
    }
    c->translated = 1;
    c->t_start = api->now_us();
    return SL_STATUS_CONTINUE;
}

/* --------------------------------------------------------- header_filter */

/* preserve to gemini or bedrock: the stream is named by the path, not the
 * body, so the answer's content type says whether it streams (Gemini's
 * SSE, Bedrock's event-stream: read by a native watcher). */
static int
sl_ap_native_stream(const sl_api_t *api, sl_req_t *r, sl_ap_ctx_t *c)
{
    static const char *const types[] = {"text/event-stream", "application/vnd.amazon.eventstream"};
    int wire = sl_ap_target_wire(c->t);
    sl_str_t ct;
    size_t i;

    sl_ap_nwatch_free(c->nwatch); /* an earlier try's (ai-proxy-advanced) */
    c->nwatch = NULL;
    if (c->t->route_type != SL_AP_ROUTE_PRESERVE ||
        (wire != SL_AP_WIRE_GEMINI && wire != SL_AP_WIRE_BEDROCK) ||
        api->resp_header_get(r, SL_STR("content-type"), &ct) != 1) {
        return 0;
    }
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        size_t n = strlen(types[i]);

        if (ct.len >= n && strncasecmp(ct.ptr, types[i], n) == 0) {
            c->nwatch = sl_ap_nwatch_new(wire, (size_t)c->conf->max_stream_event_size);
            if (c->nwatch == NULL) {
                return -1;
            }
            c->stream = 1;
            c->resp = SL_AP_RESP_NWATCH;
            return 0;
        }
    }
    c->stream = 0;
    c->resp = SL_AP_RESP_COPY;
    return 0;
}

static void
sl_ap_ping(const sl_api_t *api, sl_req_t *r, void *arg)
{
    sl_ap_ctx_t *c = arg;
    sl_ap_buf_t b = {0};
    int64_t now = api->now_us();

    if (c->resp == SL_AP_RESP_ASTREAM && c->adec &&
        now - c->t_last_out >= (int64_t)(SL_AP_PING_MS - 500) * 1000) {
        c->codec->astream_keepalive(c->adec, &b);
        if (!b.oom && b.len && api->resp_body_write(r, b.ptr, b.len) == 0) {
            c->t_last_out = now;
        }
        sl_ap_buf_free(&b);
        return;
    }
    if (c->resp != SL_AP_RESP_STREAM || c->st.ended ||
        now - c->t_last_out < (int64_t)(SL_AP_PING_MS - 500) * 1000) {
        return;
    }
    /* message_start may go out before the first upstream chunk: the client
     * sees the stream begin while a slow model is still thinking */
    sl_ap_stream_keepalive(&c->st, &b);
    if (!b.oom && b.len && api->resp_body_write(r, b.ptr, b.len) == 0) {
        c->t_last_out = now;
    }
    sl_ap_buf_free(&b);
}

/* Hold the response head until the body is translated, so that a body we
 * cannot translate still gets an honest status (resp_buffer, host ABI 1.0
 * hosts built after it was appended; older ones stream the head as is). */
static void
sl_ap_hold_head(const sl_api_t *api, sl_req_t *r)
{
    if (api->size >= offsetof(sl_api_t, resp_buffer) + sizeof(api->resp_buffer) &&
        api->resp_buffer != NULL) {
        api->resp_buffer(r);
    }
}

/* A JSON answer's head: held until the body is translated. */
static void
sl_ap_json_head(const sl_api_t *api, sl_req_t *r)
{
    api->resp_header_set(r, SL_STR("content-type"), SL_STR("application/json"));
    sl_ap_hold_head(api, r);
}

/* An error answer's head: a 2xx we cannot translate (compressed, or never
 * ours) becomes a 502; the body is rewritten, so no content-encoding. */
static void
sl_ap_error_head(const sl_api_t *api, sl_req_t *r, sl_ap_ctx_t *c, int status)
{
    if (status < 400) {
        api->resp_status_set(r, 502);
        c->resp_status = 502;
    }
    api->resp_header_remove(r, SL_STR("content-encoding"));
    sl_ap_json_head(api, r);
}

/* An event stream's head; `ping` starts the keep-alive ping timer. */
static void
sl_ap_sse_head(const sl_api_t *api, sl_req_t *r, sl_ap_ctx_t *c, int ping)
{
    api->resp_header_set(r, SL_STR("content-type"), SL_STR("text/event-stream; charset=utf-8"));
    api->resp_header_set(r, SL_STR("cache-control"), SL_STR("no-cache"));
    if (ping) {
        c->t_last_out = api->now_us();
        api->timer_start(r, SL_AP_PING_MS, SL_AP_PING_MS, sl_ap_ping, c);
    }
}

/* x-kong-llm-model: provider/model on a 200 (model_name_header). */
static void
sl_ap_model_header(const sl_api_t *api, sl_req_t *r, const sl_ap_conf_t *conf, sl_ap_ctx_t *c)
{
    char hdr[200];

    if (!conf->model_name_header) {
        return;
    }
    snprintf(hdr, sizeof(hdr), "%s/%s", c->t->provider_name, c->model);
    api->resp_header_set(r, SL_STR("x-kong-llm-model"), (sl_str_t){hdr, strlen(hdr)});
}

/* The codec's stream decoder for this response (provider stream -> OpenAI
 * chunks, then translated or passed on as the client needs). */
static int
sl_ap_decoder_start(sl_ap_ctx_t *c, const sl_ap_conf_t *conf)
{
    if (c->codec->stream_feed == NULL) {
        return -1;
    }
    c->dec = calloc(1, c->codec->stream_size ? c->codec->stream_size : 1);
    if (c->dec == NULL) {
        return -1;
    }
    if (c->codec->stream_init) {
        c->codec->stream_init(c->dec, c->t, &c->info, (size_t)conf->max_stream_event_size);
    }
    return 0;
}

/* The upstream's headers with the provider credential scrubbed (scrub.c):
 * every value of a name where one holds it is replaced, up to 64 names per
 * pass (an upstream head has at most 1,000 lines); values past the 64th of
 * one name are dropped.  -2 out of memory. */
static int
sl_ap_scrub_headers(const sl_api_t *api, sl_req_t *r, const sl_ap_target_t *t)
{
    sl_ap_buf_t names = {0}, vals = {0};
    size_t cur, i, k, nn, off[64], nv, voff[64], vlen[64];
    sl_str_t n, v;
    int rc = 0;

    do {
        names.len = 0;
        nn = 0;
        for (cur = 0; nn < 64 && api->resp_header_iter(r, &cur, &n, &v) == 1;) {
            if (!sl_ap_has_secret(t, v.ptr, v.len)) {
                continue;
            }
            for (i = 0; i < nn; i++) { /* each name once, NUL-separated */
                if (strlen(names.ptr + off[i]) == n.len &&
                    strncasecmp(names.ptr + off[i], n.ptr, n.len) == 0) {
                    break;
                }
            }
            if (i == nn) {
                off[nn++] = names.len;
                sl_ap_buf_add(&names, n.ptr, n.len);
                sl_ap_buf_add(&names, "", 1);
            }
        }
        for (i = 0; i < nn && !names.oom && !vals.oom; i++) {
            sl_str_t name = {names.ptr + off[i], strlen(names.ptr + off[i])};

            /* the values of that name, scrubbed, put back in order */
            vals.len = 0;
            nv = 0;
            for (cur = 0; api->resp_header_iter(r, &cur, &n, &v) == 1;) {
                if (n.len == name.len && strncasecmp(n.ptr, name.ptr, n.len) == 0 && nv < 64) {
                    voff[nv] = vals.len;
                    sl_ap_scrub_into(t, v.ptr, v.len, &vals);
                    vlen[nv] = vals.len - voff[nv];
                    nv++;
                }
            }
            if (!vals.oom) {
                api->resp_header_remove(r, name);
                for (k = 0; k < nv; k++) {
                    api->resp_header_add(r, name, (sl_str_t){vals.ptr + voff[k], vlen[k]});
                }
            }
        }
    } while (nn == 64 && !names.oom && !vals.oom);
    if (names.oom || vals.oom) {
        rc = -2;
    }
    sl_ap_buf_free(&names);
    sl_ap_buf_free(&vals);
    return rc;
}

/* A provider's error body passed through to the client: held until its
 * end (at most SL_AP_MAX_ERROR_BODY) so that the credential it may echo is
 * scrubbed. */
static void
sl_ap_scrub_error(const sl_api_t *api, sl_req_t *r, sl_ap_ctx_t *c, int status)
{
    if (status >= 400 && api->resp_source(r) == SL_SOURCE_UPSTREAM && !c->resp_gzip) {
        c->resp = SL_AP_RESP_SCRUB;
        api->resp_header_remove(r, SL_STR("content-length"));
    }
}

static sl_status_t
sl_ap_header_filter(const sl_api_t *api, sl_req_t *r, void *conf_)
{
    const sl_ap_conf_t *conf = conf_;
    sl_ap_ctx_t *c = api->ctx_get(r);
    int status = api->resp_status(r);
    sl_str_t v;

    if (c == NULL || c->responded) {
        return SL_STATUS_CONTINUE;
    }
    c->conf = conf;
    c->t = &conf->t;
    c->resp_status = status;
    c->resp_gzip = api->resp_header_get(r, SL_STR("content-encoding"), &v) == 1 &&
                   !(v.len == 8 && strncasecmp(v.ptr, "identity", 8) == 0);
    if (api->resp_source(r) == SL_SOURCE_UPSTREAM && sl_ap_scrub_headers(api, r, c->t) != 0) {
        return SL_STATUS_ERROR;
    }

    if (sl_ap_target_passthrough(c->t) || c->t->route_type == SL_AP_ROUTE_PRESERVE) {
        /* Kong: non-200 bodies pass through; 200 gets the model header.
         * A provider answering in the client's dialect (OpenAI-compatible
         * for an OpenAI client, Anthropic or DashScope's Anthropic endpoint
         * for an Anthropic client): the same pass-through, usage read on
         * the way (usage chunk, or message_start / message_delta) */
        if (status == 200 && api->resp_source(r) == SL_SOURCE_UPSTREAM && c->translated) {
            c->resp = c->stream ? SL_AP_RESP_WATCH : SL_AP_RESP_COPY;
            c->watch.sse.max = (size_t)conf->max_stream_event_size;
            if (sl_ap_native_stream(api, r, c) != 0) {
                return SL_STATUS_ERROR;
            }
            sl_ap_model_header(api, r, conf, c);
        }
        sl_ap_scrub_error(api, r, c, status);
        return SL_STATUS_CONTINUE;
    }
    c->codec = sl_ap_target_codec(c->t);

    if (c->t->route_type == SL_AP_ROUTE_EMBEDDINGS) {
        /* gemini, bedrock, cohere: their embeddings into OpenAI's list,
         * their errors in OpenAI's shape */
        if (api->resp_source(r) == SL_SOURCE_GATEWAY || !c->translated) {
            sl_ap_scrub_error(api, r, c, status);
            return SL_STATUS_CONTINUE;
        }
        api->resp_header_remove(r, SL_STR("content-length"));
        if (status >= 400 || c->resp_gzip) {
            c->resp = SL_AP_RESP_OAI_ERROR;
            sl_ap_error_head(api, r, c, status);
            return SL_STATUS_CONTINUE;
        }
        c->embed_tokens = -1;
        if (api->resp_header_get(r, SL_STR("x-amzn-bedrock-input-token-count"), &v) == 1) {
            char num[24];

            snprintf(num, sizeof(num), "%.*s", (int)(v.len < 23 ? v.len : 23), v.ptr);
            c->embed_tokens = strtoll(num, NULL, 10);
        }
        c->resp = SL_AP_RESP_EMBED;
        sl_ap_json_head(api, r);
        if (status == 200) {
            sl_ap_model_header(api, r, conf, c);
        }
        return SL_STATUS_CONTINUE;
    }

    if (c->t->llm_format == SL_AP_FMT_OPENAI) {
        /* an OpenAI client, a provider of another dialect: its answers
         * decoded into OpenAI's (the pivot), its errors in OpenAI's shape;
         * gateway-made answers pass as Kong's */
        if (api->resp_source(r) == SL_SOURCE_GATEWAY || !c->translated || c->codec == NULL) {
            sl_ap_scrub_error(api, r, c, status);
            return SL_STATUS_CONTINUE;
        }
        api->resp_header_remove(r, SL_STR("content-length"));
        if (status >= 400 || c->resp_gzip) {
            c->resp = SL_AP_RESP_OAI_ERROR;
            sl_ap_error_head(api, r, c, status);
            return SL_STATUS_CONTINUE;
        }
        if (c->stream) {
            if (sl_ap_decoder_start(c, conf) != 0) {
                return SL_STATUS_ERROR;
            }
            c->resp = SL_AP_RESP_WATCH;
            c->watch.sse.max = (size_t)conf->max_stream_event_size;
            sl_ap_sse_head(api, r, c, 0);
        } else {
            c->resp = SL_AP_RESP_DJSON;
            sl_ap_json_head(api, r);
        }
        if (status == 200) {
            sl_ap_model_header(api, r, conf, c);
        }
        return SL_STATUS_CONTINUE;
    }

    if (status >= 400 || api->resp_source(r) == SL_SOURCE_GATEWAY || !c->translated ||
        c->resp_gzip) {
        c->resp = SL_AP_RESP_ERROR;
        api->resp_header_remove(r, SL_STR("content-length"));
        sl_ap_error_head(api, r, c, status);
        return SL_STATUS_CONTINUE;
    }
    api->resp_header_remove(r, SL_STR("content-length"));
    if (c->codec && c->codec->astream_feed && c->codec->anthropic_json) {
        /* gemini, bedrock: their answers straight to Anthropic's */
        if (c->stream) {
            sl_str_t id = api->req_id(r);

            c->adec = calloc(1, c->codec->astream_size);
            if (c->adec == NULL) {
                return SL_STATUS_ERROR;
            }
            c->codec->astream_init(c->adec, c->t, (sl_str_t){c->model, strlen(c->model)}, id,
                                   c->input_estimate, (size_t)conf->max_stream_event_size);
            c->resp = SL_AP_RESP_ASTREAM;
            sl_ap_sse_head(api, r, c, 1);
        } else {
            c->resp = SL_AP_RESP_AJSON;
            sl_ap_json_head(api, r);
        }
        if (status == 200) {
            sl_ap_model_header(api, r, conf, c);
        }
        return SL_STATUS_CONTINUE;
    }
    if (c->stream) {
        if (c->codec && sl_ap_decoder_start(c, conf) != 0) {
            return SL_STATUS_ERROR;
        }
        c->resp = SL_AP_RESP_STREAM;
        sl_ap_stream_init(&c->st, (sl_str_t){c->model, strlen(c->model)}, c->input_estimate);
        c->st.search_query = c->web_search ? c->info.search_query : NULL;
        c->st.sse.max = (size_t)conf->max_stream_event_size;
        {
            sl_str_t id = api->req_id(r);
            snprintf(c->st.msg_id, sizeof(c->st.msg_id), "msg_%.*s",
                     (int)(id.len > 64 ? 64 : id.len), id.ptr);
        }
        sl_ap_sse_head(api, r, c, 1);
    } else {
        c->resp = SL_AP_RESP_JSON;
        sl_ap_json_head(api, r);
    }
    if (status == 200) {
        sl_ap_model_header(api, r, conf, c);
    }
    return SL_STATUS_CONTINUE;
}

/* ----------------------------------------------------------- body_filter */

static void
sl_ap_acc(sl_ap_ctx_t *c, sl_str_t *chunk, size_t limit)
{
    /* past the bound nothing more is kept (a later, smaller piece appended
     * after a dropped one would splice unrelated bytes together) */
    if (c->acc_overflow || c->acc.len + chunk->len > limit) {
        c->acc_overflow = 1;
        return;
    }
    sl_ap_buf_add(&c->acc, chunk->ptr, chunk->len);
}

/* The answer turned out unusable: with the head held back (resp_buffer)
 * the client still gets a 502 (504 when the upstream timed out), not a
 * 200 with an error body. */
static void
sl_ap_fail_status(const sl_api_t *api, sl_req_t *r, sl_ap_ctx_t *c, int status)
{
    if (api->resp_status_set(r, status) == 0) {
        c->resp_status = status;
        api->resp_header_remove(r, SL_STR("x-kong-llm-model"));
    }
}

static sl_status_t
sl_ap_body_filter_chunk(const sl_api_t *api, sl_req_t *r, void *conf_, sl_str_t *chunk, int eof)
{
    const sl_ap_conf_t *conf = conf_;
    sl_ap_ctx_t *c = api->ctx_get(r);
    sl_req_error_t rerr;
    int truncated;

    if (c == NULL || c->resp == SL_AP_RESP_NONE) {
        return SL_STATUS_CONTINUE;
    }
    if (chunk->len > 0 && c->t_first == 0) {
        c->t_first = api->now_us();
    }
    rerr = eof ? api->req_error(r) : SL_REQERR_NONE;
    truncated = rerr != SL_REQERR_NONE && rerr != SL_REQERR_CLIENT_ABORT;
    sl_ap_lend(&sl_ap_lend_out, &c->out);
    c->out.len = 0;

    if (c->dec != NULL) {
        /* the provider's stream -> OpenAI chunks, then as below */
        sl_ap_lend(&sl_ap_lend_pivot, &c->pivot);
        c->pivot.len = 0;
        if (c->codec->stream_feed(c->dec, chunk->ptr, chunk->len, eof, &c->pivot, &c->dusage) ==
                -2 ||
            c->pivot.oom) {
            return SL_STATUS_ERROR;
        }
        chunk->ptr = c->pivot.ptr ? c->pivot.ptr : "";
        chunk->len = c->pivot.len;
    }

    switch (c->resp) {
    case SL_AP_RESP_WATCH:
        sl_ap_watch_feed(&c->watch, chunk->ptr, chunk->len, eof);
        if (c->t->log_payloads && c->resp_payload.len + chunk->len <= SL_AP_MAX_PAYLOAD) {
            sl_ap_buf_add(&c->resp_payload, chunk->ptr, chunk->len);
        }
        return SL_STATUS_CONTINUE;

    case SL_AP_RESP_NWATCH:
        if (sl_ap_nwatch_feed(c->nwatch, chunk->ptr, chunk->len, eof) == -2) {
            return SL_STATUS_ERROR;
        }
        if (c->t->log_payloads && c->resp_payload.len + chunk->len <= SL_AP_MAX_PAYLOAD) {
            sl_ap_buf_add(&c->resp_payload, chunk->ptr, chunk->len);
        }
        return SL_STATUS_CONTINUE;

    case SL_AP_RESP_COPY:
        sl_ap_acc(c, chunk, SL_AP_MAX_BUFFERED);
        if (eof && !c->acc_overflow) {
            int wire = sl_ap_target_wire(c->t);

            if (wire == SL_AP_WIRE_GEMINI || wire == SL_AP_WIRE_BEDROCK) {
                sl_ap_native_usage_body(wire, c->acc.ptr, c->acc.len, &c->doc, &c->usage);
            } else if (c->t->provider == SL_AP_PROV_COHERE) {
                sl_ap_cohere_usage_body(c->acc.ptr, c->acc.len, &c->doc, &c->usage);
            } else {
                sl_ap_usage_from_body(c->acc.ptr, c->acc.len, &c->doc, &c->usage);
            }
            if (c->t->log_payloads) {
                sl_ap_buf_add(&c->resp_payload, c->acc.ptr,
                              c->acc.len < SL_AP_MAX_PAYLOAD ? c->acc.len : SL_AP_MAX_PAYLOAD);
            }
        }
        return SL_STATUS_CONTINUE;

    case SL_AP_RESP_STREAM:
        if (sl_ap_stream_feed(&c->st, chunk->ptr, chunk->len, eof, truncated, &c->out) == -2) {
            return SL_STATUS_ERROR;
        }
        if (c->st.sse.overflow && !c->overflow_told) {
            c->overflow_told = 1;
            api->log(r, SL_LOG_WARN,
                     "ai-proxy: upstream stream event over max_stream_event_size (%lld bytes): "
                     "stream ended with an error",
                     (long long)conf->max_stream_event_size);
        }
        break;

    case SL_AP_RESP_JSON:
        sl_ap_acc(c, chunk, SL_AP_MAX_BUFFERED);
        if (!eof) {
            chunk->len = 0;
            return SL_STATUS_CONTINUE;
        }
        if (truncated || c->acc_overflow) {
            int st = rerr == SL_REQERR_UPSTREAM_TIMEOUT ? 504 : 502;

            sl_ap_anthropic_error_msg(
                &c->out, st,
                rerr == SL_REQERR_UPSTREAM_TIMEOUT
                    ? "upstream timed out before the response was complete"
                : truncated ? "upstream connection closed before the response was complete"
                            : "upstream response too large");
            sl_ap_fail_status(api, r, c, st);
        } else {
            sl_ap_buf_t agg = {0};
            const char *p = c->acc.ptr;
            size_t n = c->acc.len;
            int rc = 0;

            if (c->codec && c->codec->decode_json) {
                /* the provider's answer -> one OpenAI completion (the pivot) */
                rc = c->codec->decode_json(c->t, c->acc.ptr, c->acc.len, &c->doc, &agg,
                                           &c->usage) == 0
                         ? (agg.oom ? -2 : 0)
                         : -1;
                p = agg.ptr;
                n = agg.len;
            } else if (c->upstream_stream) {
                /* thinking streamed upstream: one completion from the stream */
                rc = sl_ap_aggregate_stream(c->acc.ptr, c->acc.len, &agg);
                p = agg.ptr;
                n = agg.len;
            }
            if (rc == -2) {
                sl_ap_buf_free(&agg);
                return SL_STATUS_ERROR;
            }
            if (rc != 0 ||
                sl_ap_anthropic_response_search(p, n, (sl_str_t){c->model, strlen(c->model)},
                                                c->web_search ? c->info.search_query : NULL,
                                                &c->doc, &c->out, &c->usage) != 0) {
                c->out.len = 0;
                sl_ap_anthropic_error_msg(&c->out, 502,
                                          "upstream returned an invalid chat completion");
                sl_ap_fail_status(api, r, c, 502);
            }
            sl_ap_buf_free(&agg);
        }
        break;

    case SL_AP_RESP_ASTREAM:
        if (c->codec->astream_feed(c->adec, chunk->ptr, chunk->len, eof, truncated, &c->out) ==
            -2) {
            return SL_STATUS_ERROR;
        }
        break;

    case SL_AP_RESP_AJSON:
        sl_ap_acc(c, chunk, SL_AP_MAX_BUFFERED);
        if (!eof) {
            chunk->len = 0;
            return SL_STATUS_CONTINUE;
        }
        if (truncated || c->acc_overflow) {
            int st = rerr == SL_REQERR_UPSTREAM_TIMEOUT ? 504 : 502;

            sl_ap_anthropic_error_msg(&c->out, st,
                                      truncated
                                          ? "upstream connection closed before the response was "
                                            "complete"
                                          : "upstream response too large");
            sl_ap_fail_status(api, r, c, st);
        } else {
            sl_str_t id = api->req_id(r);
            int rc = c->codec->anthropic_json(c->t, c->acc.ptr, c->acc.len,
                                              (sl_str_t){c->model, strlen(c->model)}, id, &c->doc,
                                              &c->out, &c->usage);

            if (c->out.oom) {
                return SL_STATUS_ERROR;
            }
            if (rc != 0) {
                c->out.len = 0;
                sl_ap_anthropic_error_msg(&c->out, 502, "upstream returned an invalid answer");
                sl_ap_fail_status(api, r, c, 502);
            }
        }
        break;

    case SL_AP_RESP_DJSON:
    case SL_AP_RESP_EMBED: /* a whole native answer, decoded into OpenAI's shape */
        sl_ap_acc(c, chunk, SL_AP_MAX_BUFFERED);
        if (!eof) {
            chunk->len = 0;
            return SL_STATUS_CONTINUE;
        }
        if (truncated || c->acc_overflow) {
            int st = rerr == SL_REQERR_UPSTREAM_TIMEOUT ? 504 : 502;

            sl_ap_openai_error(st, "", 0, &c->doc, &c->out);
            sl_ap_fail_status(api, r, c, st);
        } else {
            int embed = c->resp == SL_AP_RESP_EMBED;
            int rc = embed ? sl_ap_embed_response(&c->info, c->embed_tokens, c->acc.ptr, c->acc.len,
                                                  &c->doc, &c->out, &c->usage)
                           : c->codec->decode_json(c->t, c->acc.ptr, c->acc.len, &c->doc, &c->out,
                                                   &c->usage);

            if (rc == -2 || c->out.oom) {
                return SL_STATUS_ERROR;
            }
            if (rc != 0) {
                c->out.len = 0;
                if (embed) {
                    SL_AP_BUF_LIT(&c->out, "{\"error\":{\"message\":\"upstream returned an "
                                           "invalid embeddings answer\",\"type\":\"api_error\","
                                           "\"param\":null,\"code\":null}}");
                } else {
                    SL_AP_BUF_LIT(&c->out, "{\"error\":{\"message\":\"upstream returned an "
                                           "invalid answer\",\"type\":\"api_error\",\"param\":"
                                           "null,\"code\":null}}");
                }
                sl_ap_fail_status(api, r, c, 502);
            }
        }
        break;

    case SL_AP_RESP_OAI_ERROR:
        sl_ap_acc(c, chunk, SL_AP_MAX_ERROR_BODY);
        if (!eof) {
            chunk->len = 0;
            return SL_STATUS_CONTINUE;
        }
        sl_ap_openai_error(c->resp_status, c->resp_gzip ? "" : c->acc.ptr,
                           c->resp_gzip ? 0 : c->acc.len, &c->doc, &c->out);
        break;

    case SL_AP_RESP_SCRUB:
        sl_ap_acc(c, chunk, SL_AP_MAX_ERROR_BODY);
        if (!eof) {
            chunk->len = 0;
            return SL_STATUS_CONTINUE;
        }
        sl_ap_buf_add(&c->out, c->acc.ptr, c->acc.len); /* cut at the bound */
        break;

    case SL_AP_RESP_ERROR:
        sl_ap_acc(c, chunk, SL_AP_MAX_ERROR_BODY);
        if (!eof) {
            chunk->len = 0;
            return SL_STATUS_CONTINUE;
        }
        sl_ap_anthropic_error(c->resp_status, c->resp_gzip ? "" : c->acc.ptr,
                              c->resp_gzip ? 0 : c->acc.len, &c->doc, &c->out);
        break;
    }
    /* whatever the provider sent, its key does not go on (scrub.c) */
    if (c->out.oom || sl_ap_scrub_buf(c->t, &c->out) != 0) {
        return SL_STATUS_ERROR;
    }
    chunk->ptr = c->out.ptr ? c->out.ptr : "";
    chunk->len = c->out.len;
    if (c->out.len) {
        c->t_last_out = api->now_us();
    }
    if (c->t->log_payloads && c->resp_payload.len + c->out.len <= SL_AP_MAX_PAYLOAD) {
        sl_ap_buf_add(&c->resp_payload, c->out.ptr, c->out.len);
    }
    return SL_STATUS_CONTINUE;
}

/* ------------------------------------------------------------------- log */

static void
sl_ap_log_string(const sl_api_t *api, sl_req_t *r, const char *key, const sl_ap_buf_t *b)
{
    sl_ap_buf_t j = {0};

    sl_ap_buf_add_qstr(&j, b->ptr ? b->ptr : "", b->len);
    if (!j.oom) {
        api->set_serialize_value(r, key, (sl_str_t){j.ptr, j.len});
    }
    sl_ap_buf_free(&j);
}

/* Kong's ai.proxy.usage / ai.proxy.meta, published once the response is
 * complete (body_filter at eof), so that plugins running after ai-proxy's
 * body filter but before its log phase (a token quota charging usage in its
 * own log phase, a metrics exporter) can read them with
 * api->serialize_value_typed or _get; the log phase publishes them for a
 * request whose body filters never saw eof.  Values, not JSON text
 * (api->set_serialize_typed, ABI 1.6): the host builds them into the
 * record only when something reads it. */
static void
sl_ap_publish_stats(const sl_api_t *api, sl_req_t *r, const sl_ap_conf_t *conf, sl_ap_ctx_t *c)
{
    sl_ap_stats_in_t in;
    sl_ap_stat_t stats[SL_AP_STATS_MAX];
    sl_ap_usage_t u;
    sl_ap_buf_t b = {0}; /* the response model, decoded when it had an escape */
    int64_t end, first;
    size_t n;

    if (c->stats_published) {
        return;
    }
    c->stats_published = 1;
    if (c->t->log_statistics && c->resp_status < 400 && c->resp != SL_AP_RESP_ERROR &&
        c->resp != SL_AP_RESP_OAI_ERROR) {
        u = c->resp == SL_AP_RESP_STREAM   ? c->st.usage
            : c->resp == SL_AP_RESP_WATCH  ? c->watch.usage
            : c->resp == SL_AP_RESP_NWATCH ? *sl_ap_nwatch_usage(c->nwatch)
                                           : c->usage;
        if (c->dec && c->resp == SL_AP_RESP_WATCH && c->dusage.have) {
            /* the provider's own counts (the pivot carries a usage chunk
             * only when the client asked for one) */
            int64_t est = u.out_chars_tokens;

            u = c->dusage;
            u.out_chars_tokens = est;
        }
        if (c->resp == SL_AP_RESP_ASTREAM && c->adec) {
            int ended;
            const char *broke;

            c->codec->astream_state(c->adec, &u, &ended, &broke);
        }
        if (!u.have) {
            u.prompt = c->input_estimate;
            if (u.completion == 0) {
                u.completion = u.out_chars_tokens;
            }
        }
        end = api->req_time(r, SL_TIME_UPSTREAM_LAST_BYTE);
        if (end == 0) {
            end = api->now_us();
        }
        first = api->req_time(r, SL_TIME_UPSTREAM_FIRST_BYTE);
        if (first == 0) {
            first = c->t_first ? c->t_first : end;
        }
        memset(&in, 0, sizeof(in));
        in.usage = &u;
        in.input_cost = c->t->input_cost;
        in.output_cost = c->t->output_cost;
        in.cache_read_cost = c->t->cache_read_cost;
        in.cache_write_cost = c->t->cache_write_cost;
        in.llm_latency_ms = end > c->t_start ? (end - c->t_start) / 1000 : 0;
        in.ttft_ms = first > c->t_start ? (first - c->t_start) / 1000 : 0;
        in.stream = c->stream;
        in.plugin_id = api->plugin_id(r);
        in.provider_name = (sl_str_t){c->t->provider_name, strlen(c->t->provider_name)};
        in.request_model = (sl_str_t){c->model, strlen(c->model)};
        n = sl_ap_stats(&in, &b, stats);
        for (size_t i = 0; i < n; i++) {
            if (stats[i].json.ptr) {
                api->set_serialize_value(r, stats[i].key, stats[i].json);
            } else {
                api->set_serialize_typed(r, stats[i].key, &stats[i].v);
            }
        }
        sl_ap_buf_free(&b);
    }
}

static sl_status_t
sl_ap_body_filter(const sl_api_t *api, sl_req_t *r, void *conf_, sl_str_t *chunk, int eof)
{
    sl_status_t st = sl_ap_body_filter_chunk(api, r, conf_, chunk, eof);
    sl_ap_ctx_t *c;

    if (eof && (c = api->ctx_get(r)) != NULL && c->translated && !c->responded) {
        sl_ap_publish_stats(api, r, conf_, c);
    }
    return st;
}

/* A credential sent as a query parameter (auth.param_location: query) is
 * in the record's upstream_uri: replaced there by the scrubbed URI. */
static void
sl_ap_scrub_upstream_uri(const sl_api_t *api, sl_req_t *r, const sl_ap_target_t *t)
{
    sl_str_t path, query;
    sl_ap_buf_t u = {0}, j = {0};

    if (t->param_value == NULL || api->upstream_get(r, NULL, NULL, NULL, &path, &query) != 0 ||
        !sl_ap_has_secret(t, query.ptr, query.len)) {
        return;
    }
    sl_ap_buf_add(&u, path.ptr, path.len);
    SL_AP_BUF_LIT(&u, "?");
    sl_ap_scrub_into(t, query.ptr, query.len, &u);
    sl_ap_buf_add_qstr(&j, u.ptr ? u.ptr : "", u.len);
    if (!u.oom && !j.oom) {
        api->set_serialize_value(r, "upstream_uri", (sl_str_t){j.ptr, j.len});
    }
    sl_ap_buf_free(&u);
    sl_ap_buf_free(&j);
}

static void
sl_ap_log(const sl_api_t *api, sl_req_t *r, void *conf_)
{
    const sl_ap_conf_t *conf = conf_;
    sl_ap_ctx_t *c = api->ctx_get(r);

    if (c == NULL || !c->translated || c->responded) {
        return;
    }
    sl_ap_publish_stats(api, r, conf, c);
    sl_ap_scrub_upstream_uri(api, r, c->t);
    if (c->resp == SL_AP_RESP_STREAM && (c->st.sse.overflow || c->st.bad_chunk)) {
        /* counted per request in the log record */
        api->set_serialize_value(r, "ai.proxy.stream_error",
                                 c->st.sse.overflow ? (sl_str_t)SL_STR("\"event_too_large\"")
                                                    : (sl_str_t)SL_STR("\"invalid_chunk\""));
    }
    if (c->resp == SL_AP_RESP_ASTREAM && c->adec) {
        sl_ap_usage_t u;
        int ended;
        const char *broke = NULL;
        char v[48];

        c->codec->astream_state(c->adec, &u, &ended, &broke);
        if (broke) {
            snprintf(v, sizeof(v), "\"%s\"", broke);
            api->set_serialize_value(r, "ai.proxy.stream_error", (sl_str_t){v, strlen(v)});
        }
    }
    if (c->t->log_payloads) {
        sl_ap_log_string(api, r, "ai.proxy.payload.request", &c->req_payload);
        sl_ap_log_string(api, r, "ai.proxy.payload.response", &c->resp_payload);
    }
}

/* ------------------------------------------------------------ descriptor */

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {SL_PLUGIN_ABI,
                                                    "ai-proxy",
                                                    "0.1.0",
                                                    770, /* Kong's priority */
                                                    sl_ap_config_parse,
                                                    sl_ap_config_free,
                                                    NULL, /* init_worker */
                                                    NULL, /* exit_worker */
                                                    sl_ap_access,
                                                    sl_ap_body,
                                                    sl_ap_header_filter,
                                                    sl_ap_body_filter,
                                                    sl_ap_log,
                                                    NULL, /* balancer */
                                                    {NULL}};
