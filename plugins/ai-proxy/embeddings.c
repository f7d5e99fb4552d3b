/* embeddings.c - llm/v1/embeddings to the providers whose embeddings API is
 * not OpenAI's: Gemini's batchEmbedContents, Vertex AI's predict, Bedrock's
 * InvokeModel for Titan and Cohere Embed models, Cohere's v2 embed.  The
 * client's OpenAI request (the gateway's policy applied by
 * sl_ap_openai_request: model, duplicates) is written in the provider's
 * dialect; its answer is read back into OpenAI's list, each vector as the
 * provider's numbers or, for encoding_format base64 (the OpenAI SDKs'
 * default), as base64 of little-endian float32s, with usage.
 */

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "native.h"

typedef struct sl_ap_emb_req {
    const sl_ap_target_t *t;
    const sl_jdoc_t *d;
    sl_ap_buf_t *out;
    sl_str_t model; /* escaped JSON string content */
    int input;      /* a string token, or an array of them */
    int64_t dims;   /* -1: not asked */
} sl_ap_emb_req_t;

static int
sl_ap_has(sl_str_t s, const char *needle)
{
    size_t n = strlen(needle);

    for (size_t i = 0; i + n <= s.len; i++) {
        if (memcmp(s.ptr + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

sl_ap_embed_t
sl_ap_embed_dialect(const sl_ap_target_t *t, const char *model, size_t len)
{
    sl_str_t m = {model, model ? len : 0};

    switch (t->provider) {
    case SL_AP_PROV_GEMINI:
        return t->vertex_prefix ? SL_AP_EMBED_VERTEX : SL_AP_EMBED_GEMINI;
    case SL_AP_PROV_COHERE:
        return SL_AP_EMBED_COHERE;
    case SL_AP_PROV_BEDROCK:
        /* a model id, an inference profile (us.cohere.embed-v4:0) or an
         * ARN naming one */
        if (m.len == 0) {
            return SL_AP_EMBED_TITAN;
        }
        return sl_ap_has(m, "amazon.titan-embed")
                   ? SL_AP_EMBED_TITAN
                   : (sl_ap_has(m, "cohere.embed") ? SL_AP_EMBED_BEDROCK_COHERE : SL_AP_EMBED_NONE);
    default:
        return SL_AP_EMBED_NONE;
    }
}

/* ------------------------------------------------------------- requests */

/* Each input string, raw (quoted, escapes as sent), comma-separated, with
 * pre / post around each. */
static void
sl_ap_emb_each(const sl_ap_emb_req_t *e, const char *pre, const char *post)
{
    const sl_jdoc_t *d = e->d;
    int one = d->t[e->input].type == SL_J_STR;
    int i = one ? e->input : SL_JSON_FIRST(d, e->input);
    int end = one ? e->input + 1 : SL_JSON_END(d, e->input);
    int n = 0;

    for (; i < end; i = SL_JSON_NEXT(d, i)) {
        sl_str_t raw = sl_json_raw(d, i);

        if (n++) {
            sl_ap_buf_addc(e->out, ',');
        }
        sl_ap_buf_adds(e->out, pre);
        sl_ap_buf_add(e->out, raw.ptr, raw.len);
        sl_ap_buf_adds(e->out, post);
    }
}

static void
sl_ap_emb_gemini(const sl_ap_emb_req_t *e)
{
    sl_ap_buf_t pre = {0}, post = {0};
    sl_str_t m = e->model;

    if (m.len > 7 && memcmp(m.ptr, "models/", 7) == 0) {
        m.ptr += 7;
        m.len -= 7;
    }
    /* every request names the model of the URL (Google refuses another) */
    SL_AP_BUF_LIT(&pre, "{\"model\":\"models/");
    sl_ap_buf_add(&pre, m.ptr, m.len);
    SL_AP_BUF_LIT(&pre, "\",\"content\":{\"parts\":[{\"text\":");
    SL_AP_BUF_LIT(&post, "}]}");
    if (e->t->embed_task_type[0]) {
        sl_ap_buf_addf(&post, ",\"taskType\":\"%s\"", e->t->embed_task_type);
    }
    if (e->dims >= 0) {
        sl_ap_buf_addf(&post, ",\"outputDimensionality\":%lld", (long long)e->dims);
    }
    sl_ap_buf_addc(&post, '}');
    SL_AP_BUF_LIT(e->out, "{\"requests\":[");
    if (!pre.oom && !post.oom) {
        sl_ap_emb_each(e, pre.ptr, post.ptr);
    }
    SL_AP_BUF_LIT(e->out, "]}");
    e->out->oom |= pre.oom | post.oom;
    sl_ap_buf_free(&pre);
    sl_ap_buf_free(&post);
}

static void
sl_ap_emb_vertex(const sl_ap_emb_req_t *e)
{
    char post[48];

    /* Vertex AI's text embedding instance: content, task_type */
    snprintf(post, sizeof(post), e->t->embed_task_type[0] ? ",\"task_type\":\"%s\"}" : "}",
             e->t->embed_task_type);
    SL_AP_BUF_LIT(e->out, "{\"instances\":[");
    sl_ap_emb_each(e, "{\"content\":", post);
    SL_AP_BUF_LIT(e->out, "]");
    if (e->dims >= 0) {
        sl_ap_buf_addf(e->out, ",\"parameters\":{\"outputDimensionality\":%lld}",
                       (long long)e->dims);
    }
    SL_AP_BUF_LIT(e->out, "}");
}

static void
sl_ap_emb_titan(const sl_ap_emb_req_t *e)
{
    SL_AP_BUF_LIT(e->out, "{");
    sl_ap_emb_each(e, "\"inputText\":", "");
    if (e->dims >= 0) {
        sl_ap_buf_addf(e->out, ",\"dimensions\":%lld", (long long)e->dims);
    }
    if (sl_ap_has(e->model, "titan-embed-text-v2")) {
        /* Kong's bedrock.embeddings_normalize (default false) */
        sl_ap_buf_adds(e->out,
                       e->t->embed_normalize ? ",\"normalize\":true" : ",\"normalize\":false");
    }
    SL_AP_BUF_LIT(e->out, "}");
}

/* Cohere Embed, on Bedrock (no model member: it is in the path) or Cohere's
 * own v2 API (the model, and float vectors asked for by name). */
static void
sl_ap_emb_cohere_at(const sl_ap_emb_req_t *e, int native)
{
    SL_AP_BUF_LIT(e->out, "{");
    if (native) {
        SL_AP_BUF_LIT(e->out, "\"model\":\"");
        sl_ap_buf_add(e->out, e->model.ptr, e->model.len);
        SL_AP_BUF_LIT(e->out, "\",");
    }
    SL_AP_BUF_LIT(e->out, "\"texts\":[");
    sl_ap_emb_each(e, "", "");
    sl_ap_buf_addf(e->out, "],\"input_type\":\"%s\"",
                   e->t->embed_input_type ? e->t->embed_input_type : "classification");
    if (native) {
        SL_AP_BUF_LIT(e->out, ",\"embedding_types\":[\"float\"]");
    }
    if (e->dims >= 0) {
        sl_ap_buf_addf(e->out, ",\"output_dimension\":%lld", (long long)e->dims);
    }
    SL_AP_BUF_LIT(e->out, "}");
}

static void
sl_ap_emb_bedrock_cohere(const sl_ap_emb_req_t *e)
{
    sl_ap_emb_cohere_at(e, 0);
}

static void
sl_ap_emb_cohere(const sl_ap_emb_req_t *e)
{
    sl_ap_emb_cohere_at(e, 1);
}

/* ------------------------------------------------------------- answers */

/* Where a dialect's answer keeps its vectors and its token count: each
 * vector's array token into vec (at most max), the count into *tokens
 * (left alone when the answer has none).  The number of vectors, or -1. */
typedef int (*sl_ap_emb_vectors_fn)(const sl_jdoc_t *d, int *vec, int max, int64_t *tokens);

/* The elements of array `arr`: each one itself (key NULL), or its member
 * `key` (each must be an object that has it).  Their number, or -1. */
static int
sl_ap_emb_collect(const sl_jdoc_t *d, int arr, const char *key, int *vec, int max)
{
    int n = 0;

    if (arr < 0 || d->t[arr].type != SL_J_ARR) {
        return -1;
    }
    for (int i = SL_JSON_FIRST(d, arr); i < SL_JSON_END(d, arr); i = SL_JSON_NEXT(d, i)) {
        int v = key ? sl_json_get(d, i, key) : i;

        if (v < 0 || n >= max) {
            return -1;
        }
        vec[n++] = v;
    }
    return n;
}

static int
sl_ap_emb_v_gemini(const sl_jdoc_t *d, int *vec, int max, int64_t *tokens)
{
    (void)tokens; /* the Gemini API reports no count for embeddings */
    return sl_ap_emb_collect(d, sl_json_get(d, 0, "embeddings"), "values", vec, max);
}

/* predictions[].embeddings {values, statistics {token_count}} */
static int
sl_ap_emb_v_vertex(const sl_jdoc_t *d, int *vec, int max, int64_t *tokens)
{
    int preds = sl_json_get_t(d, 0, "predictions", SL_J_ARR);
    int n = 0, have = 0;
    double sum = 0, c;

    if (preds < 0) {
        return -1;
    }
    for (int p = SL_JSON_FIRST(d, preds); p < SL_JSON_END(d, preds); p = SL_JSON_NEXT(d, p)) {
        int emb = sl_json_get(d, p, "embeddings");
        int v = sl_json_get(d, emb, "values");
        int st = sl_json_get(d, emb, "statistics");

        if (v < 0 || n >= max) {
            return -1;
        }
        vec[n++] = v;
        if (sl_json_num(d, sl_json_get(d, st, "token_count"), &c) == 0 && c >= 0) {
            sum += c;
            have = 1;
        }
    }
    if (have) {
        *tokens = (int64_t)sum;
    }
    return n;
}

static int
sl_ap_emb_v_titan(const sl_jdoc_t *d, int *vec, int max, int64_t *tokens)
{
    int v = sl_json_get_t(d, 0, "embedding", SL_J_ARR);

    sl_json_int(d, sl_json_get(d, 0, "inputTextTokenCount"), tokens);
    if (v < 0 || max < 1) {
        return -1;
    }
    vec[0] = v;
    return 1;
}

/* Cohere: embeddings is an array of vectors (v3's embeddings_floats), or
 * an object of them by type (embeddings_by_type): its "float" member. */
static int
sl_ap_emb_v_cohere(const sl_jdoc_t *d, int *vec, int max, int64_t *tokens)
{
    int e = sl_json_get(d, 0, "embeddings");
    int bu = sl_json_get(d, sl_json_get(d, 0, "meta"), "billed_units");

    sl_json_int(d, sl_json_get(d, bu, "input_tokens"), tokens);
    if (e >= 0 && d->t[e].type == SL_J_OBJ) {
        e = sl_json_get(d, e, "float");
    }
    return sl_ap_emb_collect(d, e, NULL, vec, max);
}

/* ----------------------------------------------------------- the table */

typedef struct sl_ap_emb_dialect {
    const char *what; /* for errors */
    int max_inputs;   /* 0: any number per request */
    void (*encode)(const sl_ap_emb_req_t *e);
    sl_ap_emb_vectors_fn vectors;
} sl_ap_emb_dialect_t;

/* clang-format off */
static const sl_ap_emb_dialect_t sl_ap_emb_dialects[] = {
    [SL_AP_EMBED_GEMINI] = {"gemini", 0, sl_ap_emb_gemini, sl_ap_emb_v_gemini},
    [SL_AP_EMBED_VERTEX] = {"Vertex AI", 0, sl_ap_emb_vertex, sl_ap_emb_v_vertex},
    [SL_AP_EMBED_TITAN] = {"bedrock's Titan embedding models", 1, sl_ap_emb_titan,
                           sl_ap_emb_v_titan},
    [SL_AP_EMBED_BEDROCK_COHERE] = {"bedrock's Cohere Embed models", 0, sl_ap_emb_bedrock_cohere,
                                    sl_ap_emb_v_cohere},
    [SL_AP_EMBED_COHERE] = {"cohere", 0, sl_ap_emb_cohere, sl_ap_emb_v_cohere},
};
/* clang-format on */

static int __attribute__((format(printf, 2, 3)))
sl_ap_emb_fail(sl_ap_req_info_t *info, const char *fmt, ...)
{
    va_list ap;

    info->status = 400;
    va_start(ap, fmt);
    vsnprintf(info->errmsg, sizeof(info->errmsg), fmt, ap);
    va_end(ap);
    return -1;
}

/* input: a string or a non-empty array of strings (token arrays cannot
 * be sent to these providers).  The number of inputs, or -1. */
static int
sl_ap_emb_inputs(const sl_jdoc_t *d, int input, const char *what, sl_ap_req_info_t *info,
                 int64_t *estimate)
{
    int n = 0;

    *estimate = 0;
    if (d->t[input].type == SL_J_STR) {
        *estimate = sl_ap_str_tokens(d, input);
        return 1;
    }
    if (d->t[input].type == SL_J_ARR) {
        for (int i = SL_JSON_FIRST(d, input); i < SL_JSON_END(d, input); i = SL_JSON_NEXT(d, i)) {
            if (d->t[i].type != SL_J_STR) {
                return sl_ap_emb_fail(info,
                                      "'input' must be a string or an array of strings for %s "
                                      "(token arrays cannot be sent)",
                                      what);
            }
            *estimate += sl_ap_str_tokens(d, i);
            n++;
        }
        if (n > 0) {
            return n;
        }
        return sl_ap_emb_fail(info, "'input' must not be empty");
    }
    return sl_ap_emb_fail(info, "'input' must be a string or an array of strings");
}

int
sl_ap_embed_request(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *d,
                    sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    sl_ap_buf_t policy = {0};
    sl_ap_emb_req_t e;
    const sl_ap_emb_dialect_t *dl;
    int rc, fmt, dims, n;

    /* the gateway's policy (model, duplicate keys) over the client's body;
     * its copy is not needed, the parsed body is (d) */
    rc = sl_ap_openai_request(t, body, len, d, &policy, info);
    sl_ap_buf_free(&policy);
    if (rc != 0) {
        return rc;
    }
    info->status = 400;
    info->stream = 0;
    info->embed = sl_ap_embed_dialect(t, info->model.ptr, info->model.len);
    if (info->embed == SL_AP_EMBED_NONE) {
        return sl_ap_emb_fail(info,
                              "model '%.*s': not an embedding model sluice can call on %s "
                              "(amazon.titan-embed-*, cohere.embed-*)",
                              (int)(info->model.len > 100 ? 100 : info->model.len), info->model.ptr,
                              t->provider_name);
    }
    dl = &sl_ap_emb_dialects[info->embed];
    e = (sl_ap_emb_req_t){
        t, d, out, info->model, sl_json_get(d, 0, "input"), t->embed_dims > 0 ? t->embed_dims : -1};
    n = sl_ap_emb_inputs(d, e.input, dl->what, info, &info->input_estimate);
    if (n < 0) {
        return -1;
    }
    if (dl->max_inputs && n > dl->max_inputs) {
        return sl_ap_emb_fail(info, "%s take one input per request: send 'input' as one string",
                              dl->what);
    }
    info->embed_n = n;
    fmt = sl_json_get(d, 0, "encoding_format");
    info->embed_base64 = fmt >= 0 && sl_json_str_eq(d, fmt, "base64");
    if (fmt >= 0 && !info->embed_base64 && !sl_json_str_eq(d, fmt, "float")) {
        return sl_ap_emb_fail(info, "'encoding_format' must be 'float' or 'base64'");
    }
    dims = sl_json_get(d, 0, "dimensions");
    if (e.dims < 0 && dims >= 0 && (sl_json_int(d, dims, &e.dims) != 0 || e.dims < 1)) {
        return sl_ap_emb_fail(info, "'dimensions' must be a positive integer");
    }
    dl->encode(&e);
    info->status = 0;
    return out->oom ? -2 : 0;
}

void
sl_ap_embed_path(sl_ap_buf_t *out, const sl_ap_target_t *t, const sl_ap_req_info_t *info)
{
    sl_str_t m = info->model;

    if (t->up_path_fixed) {
        sl_ap_buf_adds(out, t->up_path); /* upstream_url named the operation */
        return;
    }
    if (t->provider == SL_AP_PROV_BEDROCK) {
        SL_AP_BUF_LIT(out, "/model/");
        sl_ap_uri_encode(out, m.ptr, m.len);
        SL_AP_BUF_LIT(out, "/invoke");
        return;
    }
    if (m.len > 7 && memcmp(m.ptr, "models/", 7) == 0) {
        m.ptr += 7;
        m.len -= 7;
    }
    sl_ap_buf_adds(out, t->vertex_prefix ? t->vertex_prefix : "/v1beta/models/");
    sl_ap_uri_encode(out, m.ptr, m.len);
    sl_ap_buf_adds(out, t->vertex_prefix ? ":predict" : ":batchEmbedContents");
}

/* One vector as base64 of its numbers as little-endian float32s. */
static int
sl_ap_emb_base64(const sl_jdoc_t *d, int arr, sl_ap_buf_t *out)
{
    int k = 0;
    unsigned char *raw;
    size_t need;

    for (int i = SL_JSON_FIRST(d, arr); i < SL_JSON_END(d, arr); i = SL_JSON_NEXT(d, i)) {
        k++;
    }
    raw = malloc((size_t)k * 4 + 1);
    if (raw == NULL) {
        out->oom = 1;
        return -2;
    }
    k = 0;
    for (int i = SL_JSON_FIRST(d, arr); i < SL_JSON_END(d, arr); i = SL_JSON_NEXT(d, i)) {
        double v;
        float f;
        uint32_t bits;

        if (sl_json_num(d, i, &v) != 0) {
            free(raw);
            return -1;
        }
        f = (float)v;
        memcpy(&bits, &f, 4);
        for (int b = 0; b < 4; b++) {
            raw[k * 4 + b] = (unsigned char)(bits >> (8 * b));
        }
        k++;
    }
    need = 4 * (((size_t)k * 4 + 2) / 3) + 1;
    if (sl_ap_buf_reserve(out, need + 2) != 0) {
        free(raw);
        return -2;
    }
    out->ptr[out->len++] = '"';
    out->len += (size_t)EVP_EncodeBlock((unsigned char *)out->ptr + out->len, raw, k * 4);
    out->ptr[out->len++] = '"';
    free(raw);
    return 0;
}

static int
sl_ap_emb_is_vector(const sl_jdoc_t *d, int v)
{
    if (d->t[v].type != SL_J_ARR || SL_JSON_FIRST(d, v) >= SL_JSON_END(d, v)) {
        return 0;
    }
    for (int i = SL_JSON_FIRST(d, v); i < SL_JSON_END(d, v); i = SL_JSON_NEXT(d, i)) {
        if (d->t[i].type != SL_J_NUM) {
            return 0;
        }
    }
    return 1;
}

int
sl_ap_embed_response(const sl_ap_req_info_t *info, int64_t header_tokens, const char *body,
                     size_t len, sl_jdoc_t *d, sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    int *vec;
    int n, rc = -1;
    int64_t tokens = -1;

    if ((unsigned)info->embed >= sizeof(sl_ap_emb_dialects) / sizeof(sl_ap_emb_dialects[0]) ||
        sl_ap_emb_dialects[info->embed].vectors == NULL || info->embed_n < 1) {
        return -1;
    }
    rc = sl_json_parse(d, body, len);
    if (rc != 0 || d->t[0].type != SL_J_OBJ) {
        return rc == -2 ? -2 : -1;
    }
    vec = malloc(sizeof(int) * (size_t)info->embed_n);
    if (vec == NULL) {
        return -2;
    }
    n = sl_ap_emb_dialects[info->embed].vectors(d, vec, info->embed_n, &tokens);
    rc = -1;
    if (n != info->embed_n) {
        goto done;
    }
    if (tokens < 0) {
        tokens = header_tokens;
    }
    u->have = tokens >= 0;
    u->prompt = u->have ? tokens : info->input_estimate;
    u->total = u->prompt;
    snprintf(u->response_model, sizeof(u->response_model), "%.*s",
             (int)(info->model.len < sizeof(u->response_model) ? info->model.len
                                                               : sizeof(u->response_model) - 1),
             info->model.ptr);
    SL_AP_BUF_LIT(out, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < n; i++) {
        if (!sl_ap_emb_is_vector(d, vec[i])) {
            goto done;
        }
        sl_ap_buf_addf(out, "%s{\"object\":\"embedding\",\"index\":%d,\"embedding\":", i ? "," : "",
                       i);
        if (info->embed_base64) {
            int b = sl_ap_emb_base64(d, vec[i], out);

            if (b != 0) {
                rc = b;
                goto done;
            }
        } else {
            sl_str_t raw = sl_json_raw(d, vec[i]);

            sl_ap_buf_add(out, raw.ptr, raw.len);
        }
        sl_ap_buf_addc(out, '}');
    }
    SL_AP_BUF_LIT(out, "],\"model\":");
    sl_ap_buf_add_qstr(out, u->response_model, strlen(u->response_model));
    sl_ap_buf_addf(out, ",\"usage\":{\"prompt_tokens\":%lld,\"total_tokens\":%lld}}",
                   (long long)u->prompt, (long long)u->total);
    rc = out->oom ? -2 : 0;
done:
    free(vec);
    return rc;
}
