/* native_codec.c - the gemini and bedrock rows' codecs (providers.c): the
 * Anthropic request encoders, the body-phase `prepare` (the model in the
 * path, the streaming twin of the operation, Bedrock's SigV4 signature
 * over the final body) and the straight-to-Anthropic answer decoders.
 *
 * Gemini: POST /v1beta/models/<model>:generateContent, streamed as
 * :streamGenerateContent?alt=sse; the key as Kong sends it (auth.header_*
 * x-goog-api-key, or auth.param_* key=... in the query).  Google refuses
 * unknown query parameters, so the client's query (Claude Code's
 * ?beta=true) is not forwarded.  On Vertex AI the models path is
 * /v1/projects/<p>/locations/<l>/publishers/google/models/ (the OAuth
 * token is set in access: token.c).
 * Bedrock: POST /model/<model id, percent-encoded>/converse (or
 * /converse-stream); the client's query dropped as Kong does; signed with
 * the configured (or AWS_*) credentials for service "bedrock".
 */

#include <stdio.h>
#include <string.h>

#include "native.h"

/* ---------------------------------------------------------------- gemini */

/* Rebuild the upstream path and query once the request is encoded. */
static int
sl_ap_set_path_query(const sl_api_t *api, sl_req_t *r, const sl_ap_buf_t *path,
                     const sl_ap_buf_t *query)
{
    sl_str_t scheme, host, p0, q0;
    int port;
    char *pp, *qp = NULL;

    if (path->oom || query->oom || api->upstream_get(r, &scheme, &host, &port, &p0, &q0) != 0) {
        return -1;
    }
    pp = api->palloc(r, path->len + 1);
    if (pp == NULL) {
        return -1;
    }
    memcpy(pp, path->ptr, path->len);
    if (query->len) {
        qp = api->palloc(r, query->len);
        if (qp == NULL) {
            return -1;
        }
        memcpy(qp, query->ptr, query->len);
    }
    return api->upstream_set(r, scheme, host, port, (sl_str_t){pp, path->len},
                             (sl_str_t){qp, query->len});
}

static void
sl_ap_path_for(sl_ap_buf_t *path, const sl_ap_target_t *t, const sl_ap_req_info_t *info,
               void (*def)(sl_ap_buf_t *, sl_str_t, int), void (*twin)(sl_ap_buf_t *, sl_str_t))
{
    if (!t->up_path_fixed) {
        def(path, info->model, info->stream);
    } else if (info->stream) {
        twin(path, (sl_str_t){t->up_path, strlen(t->up_path)});
    } else {
        sl_ap_buf_adds(path, t->up_path);
    }
}

static int
sl_ap_gemini_prepare(const sl_ap_target_t *t, const sl_api_t *api, sl_req_t *r,
                     const sl_ap_req_info_t *info, sl_str_t body)
{
    sl_ap_buf_t path = {0}, q = {0};
    int rc;

    (void)body;
    if (t->route_type == SL_AP_ROUTE_EMBEDDINGS) {
        sl_ap_embed_path(&path, t, info); /* :batchEmbedContents, Vertex's :predict */
    } else if (t->vertex_prefix && !t->up_path_fixed) {
        sl_ap_gemini_path_at(&path, t->vertex_prefix, info->model, info->stream);
    } else {
        sl_ap_path_for(&path, t, info, sl_ap_gemini_path, sl_ap_gemini_stream_path);
    }
    if (t->up_query && t->up_query[0]) {
        sl_ap_buf_adds(&q, t->up_query);
    }
    if (t->param_location == SL_AP_PARAM_QUERY) {
        if (q.len) {
            sl_ap_buf_addc(&q, '&');
        }
        sl_ap_uri_encode(&q, t->param_name, strlen(t->param_name));
        sl_ap_buf_addc(&q, '=');
        sl_ap_uri_encode(&q, t->param_value, strlen(t->param_value));
    }
    if (info->stream) {
        sl_ap_buf_adds(&q, q.len ? "&alt=sse" : "alt=sse");
    }
    rc = sl_ap_set_path_query(api, r, &path, &q);
    sl_ap_buf_free(&path);
    sl_ap_buf_free(&q);
    return rc;
}

/* --------------------------------------------------------------- bedrock */

int
sl_ap_bedrock_sign(const sl_ap_target_t *t, const sl_api_t *api, sl_req_t *r, sl_str_t method,
                   sl_str_t path, sl_str_t query, sl_str_t content_type, sl_str_t body)
{
    static const char *const creds[] = {
        "authorization",        "x-api-key",  "anthropic-api-key",   "api-key", "x-goog-api-key",
        "x-amz-security-token", "x-amz-date", "x-amz-content-sha256"};
    sl_ap_buf_t host = {0}, auth = {0};
    sl_ap_sigv4_t sig;
    char date[17];
    int rc = -1, def;
    size_t i;

    if (t->aws_access_key_id == NULL || t->aws_secret_access_key == NULL || t->aws_region == NULL) {
        return -1; /* refused at load time */
    }
    /* the Host header as the core sends it: with the port unless it is
     * the scheme's default */
    def = (strcmp(t->up_scheme, "https") == 0 && t->up_port == 443) ||
          (strcmp(t->up_scheme, "http") == 0 && t->up_port == 80);
    sl_ap_buf_adds(&host, t->up_host);
    if (!def) {
        sl_ap_buf_addf(&host, ":%d", t->up_port);
    }
    memset(&sig, 0, sizeof(sig));
    sig.access_key = t->aws_access_key_id;
    sig.secret_key = t->aws_secret_access_key;
    sig.session_token = t->aws_session_token;
    sig.region = t->aws_region;
    sig.service = "bedrock";
    sig.method = method;
    sig.host = (sl_str_t){host.ptr, host.len};
    sig.path = path;
    sig.query = query;
    sig.content_type = content_type;
    sig.body = body;
    sig.now = api->now_us() / 1000000;
    if (host.oom || sl_ap_sigv4_sign(&sig, &auth, date) != 0) {
        goto done;
    }
    for (i = 0; i < sizeof(creds) / sizeof(creds[0]); i++) {
        api->req_header_remove(r, (sl_str_t){creds[i], strlen(creds[i])});
    }
    if (api->req_header_set(r, SL_STR("authorization"), (sl_str_t){auth.ptr, auth.len}) != 0 ||
        api->req_header_set(r, SL_STR("x-amz-date"), (sl_str_t){date, 16}) != 0 ||
        (t->aws_session_token && t->aws_session_token[0] &&
         api->req_header_set(r, SL_STR("x-amz-security-token"),
                             (sl_str_t){t->aws_session_token, strlen(t->aws_session_token)}) !=
             0)) {
        goto done;
    }
    rc = 0;
done:
    sl_ap_buf_free(&host);
    sl_ap_buf_free(&auth);
    return rc;
}

static int
sl_ap_bedrock_prepare(const sl_ap_target_t *t, const sl_api_t *api, sl_req_t *r,
                      const sl_ap_req_info_t *info, sl_str_t body)
{
    sl_ap_buf_t path = {0}, q = {0};
    int rc = -1;

    if (t->route_type == SL_AP_ROUTE_EMBEDDINGS) {
        sl_ap_embed_path(&path, t, info); /* InvokeModel */
    } else {
        sl_ap_path_for(&path, t, info, sl_ap_bedrock_path, sl_ap_bedrock_stream_path);
    }
    if (t->up_query && t->up_query[0]) {
        sl_ap_buf_adds(&q, t->up_query);
    }
    if (sl_ap_set_path_query(api, r, &path, &q) == 0) {
        rc = sl_ap_bedrock_sign(t, api, r, (sl_str_t)SL_STR("POST"), (sl_str_t){path.ptr, path.len},
                                (sl_str_t){q.ptr, q.len}, (sl_str_t)SL_STR("application/json"),
                                body);
    }
    sl_ap_buf_free(&path);
    sl_ap_buf_free(&q);
    return rc;
}

/* ------------------------------------------------ Anthropic-side decoders */

static int
sl_ap_gemini_ajson(const sl_ap_target_t *t, const char *body, size_t len, sl_str_t model,
                   sl_str_t msg_id, sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    (void)t;
    return sl_ap_gemini_response(body, len, model, msg_id, doc, out, u);
}

static int
sl_ap_bedrock_ajson(const sl_ap_target_t *t, const char *body, size_t len, sl_str_t model,
                    sl_str_t msg_id, sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    (void)t;
    return sl_ap_bedrock_response(body, len, model, msg_id, doc, out, u);
}

static void
sl_ap_g_init(void *st, const sl_ap_target_t *t, sl_str_t model, sl_str_t msg_id, int64_t est,
             size_t max_event)
{
    sl_ap_gstream_t *s = st;

    (void)t;
    sl_ap_gstream_init(s, model, est);
    sl_ap_emit_set_id(&s->em, msg_id);
    s->sse.max = max_event;
}

static int
sl_ap_g_feed(void *st, const char *p, size_t n, int eof, int truncated, sl_ap_buf_t *out)
{
    return sl_ap_gstream_feed(st, p, n, eof, truncated, out);
}

static void
sl_ap_g_keepalive(void *st, sl_ap_buf_t *out)
{
    sl_ap_gstream_keepalive(st, out);
}

static void
sl_ap_g_state(void *st, sl_ap_usage_t *u, int *ended, const char **broke)
{
    sl_ap_gstream_t *s = st;

    *u = s->usage;
    *ended = s->em.ended;
    *broke = s->sse.overflow ? "event_too_large" : s->bad_chunk ? "invalid_chunk" : NULL;
}

static void
sl_ap_g_free(void *st)
{
    sl_ap_gstream_free(st);
}

static void
sl_ap_b_init(void *st, const sl_ap_target_t *t, sl_str_t model, sl_str_t msg_id, int64_t est,
             size_t max_event)
{
    sl_ap_bstream_t *s = st;

    (void)t;
    sl_ap_bstream_init(s, model, est);
    sl_ap_emit_set_id(&s->em, msg_id);
    s->evs.max = max_event;
}

static int
sl_ap_b_feed(void *st, const char *p, size_t n, int eof, int truncated, sl_ap_buf_t *out)
{
    return sl_ap_bstream_feed(st, p, n, eof, truncated, out);
}

static void
sl_ap_b_keepalive(void *st, sl_ap_buf_t *out)
{
    sl_ap_bstream_keepalive(st, out);
}

static void
sl_ap_b_state(void *st, sl_ap_usage_t *u, int *ended, const char **broke)
{
    sl_ap_bstream_t *s = st;

    *u = s->usage;
    *ended = s->em.ended;
    *broke = s->bad_frame ? "invalid_frame" : NULL;
}

static void
sl_ap_b_free(void *st)
{
    sl_ap_bstream_free(st);
}

/* ------------------------------------ OpenAI clients (native_openai.c) */

#define SL_AP_VIA(name, codec)                                                                     \
    static int name##_from_openai(const sl_ap_target_t *t, const char *body, size_t len,           \
                                  sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_req_info_t *info)        \
    {                                                                                              \
        return sl_ap_via_request(&codec, t, body, len, doc, out, info);                            \
    }                                                                                              \
    static int name##_decode_json(const sl_ap_target_t *t, const char *body, size_t len,           \
                                  sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_usage_t *u)              \
    {                                                                                              \
        return sl_ap_via_decode_json(&codec, t, body, len, doc, out, u);                           \
    }                                                                                              \
    static void name##_stream_init(void *st, const sl_ap_target_t *t,                              \
                                   const sl_ap_req_info_t *info, size_t max_event)                 \
    {                                                                                              \
        sl_ap_via_stream_init(&codec, st, t, info, max_event);                                     \
    }                                                                                              \
    static int name##_stream_feed(void *st, const char *p, size_t n, int eof, sl_ap_buf_t *out,    \
                                  sl_ap_usage_t *u)                                                \
    {                                                                                              \
        return sl_ap_via_stream_feed(st, p, n, eof, out, u);                                       \
    }                                                                                              \
    static void name##_stream_free(void *st)                                                       \
    {                                                                                              \
        sl_ap_via_stream_free(st);                                                                 \
    }

SL_AP_VIA(sl_ap_gvia, sl_ap_codec_gemini)
SL_AP_VIA(sl_ap_bvia, sl_ap_codec_bedrock)

const sl_ap_codec_t sl_ap_codec_gemini = {
    .from_openai = sl_ap_gvia_from_openai,
    .decode_json = sl_ap_gvia_decode_json,
    .stream_size = sizeof(sl_ap_via_stream_t),
    .stream_init = sl_ap_gvia_stream_init,
    .stream_feed = sl_ap_gvia_stream_feed,
    .stream_free = sl_ap_gvia_stream_free,
    .from_anthropic = sl_ap_gemini_request,
    .prepare = sl_ap_gemini_prepare,
    .anthropic_json = sl_ap_gemini_ajson,
    .astream_size = sizeof(sl_ap_gstream_t),
    .astream_init = sl_ap_g_init,
    .astream_feed = sl_ap_g_feed,
    .astream_keepalive = sl_ap_g_keepalive,
    .astream_state = sl_ap_g_state,
    .astream_free = sl_ap_g_free,
};

const sl_ap_codec_t sl_ap_codec_bedrock = {
    .from_openai = sl_ap_bvia_from_openai,
    .decode_json = sl_ap_bvia_decode_json,
    .stream_size = sizeof(sl_ap_via_stream_t),
    .stream_init = sl_ap_bvia_stream_init,
    .stream_feed = sl_ap_bvia_stream_feed,
    .stream_free = sl_ap_bvia_stream_free,
    .from_anthropic = sl_ap_bedrock_request,
    .prepare = sl_ap_bedrock_prepare,
    .anthropic_json = sl_ap_bedrock_ajson,
    .astream_size = sizeof(sl_ap_bstream_t),
    .astream_init = sl_ap_b_init,
    .astream_feed = sl_ap_b_feed,
    .astream_keepalive = sl_ap_b_keepalive,
    .astream_state = sl_ap_b_state,
    .astream_free = sl_ap_b_free,
};
