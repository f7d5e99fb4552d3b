/* token.h - OAuth access tokens for providers whose credential is not a
 * configured key: Vertex AI with a Google service account (token_gcp.c),
 * Azure OpenAI with Entra ID (token_azure.c).
 *
 * A token source is built at config time (what to ask for, and where) and
 * then lives in each worker's copy of the config: the token is fetched
 * there over the host's HTTP callout, cached, and fetched again before it
 * expires.  A request that finds no usable token waits (its access phase
 * pending) for the one fetch in flight, shared by every waiting request.
 */

#ifndef SL_AP_TOKEN_H
#define SL_AP_TOKEN_H

#include "ai_proxy.h"

typedef struct sl_ap_token_src sl_ap_token_src_t;

/* What one kind of source does (a row of the kind's own file). */
typedef struct sl_ap_token_kind {
    const char *what; /* for errors: "Vertex AI service account", ... */
    /* The fetch: method, URL, one extra header (name NULL: none) and the
     * body (appended to `body`; a signed JWT carries `now_s`).  0 or -1. */
    int (*request)(const sl_ap_token_src_t *s, int64_t now_s, sl_ap_buf_t *body);
    void (*free)(void *priv);
} sl_ap_token_kind_t;

/* The part every kind shares; the kind's own data is `priv`. */
struct sl_ap_token_src {
    const sl_ap_token_kind_t *kind;
    void *priv;
    char *url;                        /* the token endpoint */
    const char *method;               /* "POST" or "GET" */
    const char *content_type;         /* of the body, NULL for none */
    const char *hdr_name, *hdr_value; /* one more request header, or NULL */

    /* per worker (each worker has its own copy of the config) */
    char *auth;         /* "Bearer <token>", NULL before the first fetch */
    int64_t usable_us;  /* the token is not used after this (µs epoch) */
    int64_t refresh_us; /* a fresh one is fetched from then on, in the background */
    sl_callout_t *inflight;
    struct sl_ap_token_wait *waiters;
};

/* Kinds.  Each returns a source, or NULL with a message in err (a
 * config error; "out of memory" too).  Google: the key file's JSON; the
 * token endpoint is token_url when not NULL (auth.gcp_oauth_token_url),
 * else the key's token_uri, else Google's. */
sl_ap_token_src_t *sl_ap_token_gcp(const char *service_account_json, const char *token_url,
                                   char *err, size_t errlen);
/* Azure: client credentials (secret set) from Entra's token endpoint of
 * `tenant`, else the managed identity of the host (client_id: a user-
 * assigned one, or NULL). */
sl_ap_token_src_t *sl_ap_token_azure(const char *tenant, const char *client_id,
                                     const char *client_secret, char *err, size_t errlen);
void sl_ap_token_free(sl_ap_token_src_t *s);

/* Build the source's shared part (for the kinds' constructors). */
sl_ap_token_src_t *sl_ap_token_new(const sl_ap_token_kind_t *kind, void *priv, const char *url);

/* Base64url without padding (JWT), appended. */
void sl_ap_b64url(sl_ap_buf_t *out, const unsigned char *p, size_t n);
/* application/x-www-form-urlencoded value, appended. */
void sl_ap_form_encode(sl_ap_buf_t *out, const char *p, size_t n);

/* The end of a wait: err NULL, the Authorization header is set; else
 * why the token could not be had (the caller answers the client). */
typedef void (*sl_ap_token_done_fn)(const sl_api_t *api, sl_req_t *r, void *arg, const char *err);

/* Set r's Authorization header from the source.  0: set; 1: r waits
 * (api->pend called: return SL_STATUS_PENDING), `done` is called once
 * when the fetch ends, unless the request is cancelled first; -1: no
 * token (err says why; nothing pending). */
int sl_ap_token_apply(const sl_api_t *api, sl_req_t *r, sl_ap_token_src_t *s,
                      sl_ap_token_done_fn done, void *arg, char *err, size_t errlen);

/* A token endpoint's answer (JSON with access_token and expires_in, a
 * number or a numeric string as Azure's IMDS sends it) -> token and
 * lifetime in seconds.  0, or -1 with err (the endpoint's own error and
 * error_description when it sent them). */
int sl_ap_token_parse(const char *body, size_t len, sl_ap_buf_t *token, int64_t *ttl_s, char *err,
                      size_t errlen);

#endif
