/* providers.c - the provider table: one row per provider Kong's ai-proxy
 * knows, with Kong's default URL per route type (kong/llm/drivers/
 * shared.lua upstream_url_format and operation_map; Kong's provider pages
 * for the providers added in 3.10-3.14), the credential it expects, its
 * stream framing, its capabilities and its codec.  docs/providers.md is
 * the table in prose; a row's `not_yet` says why sluice refuses it today.
 */

#include <stdio.h>
#include <string.h>

#include "ai_proxy.h"

#define ALL_OPENAI_CAPS (SL_AP_CAP_TOOL_REQUIRED | SL_AP_CAP_STREAM_USAGE | SL_AP_CAP_TOOLS)

/* clang-format off */
static const sl_ap_provider_t sl_ap_providers[SL_AP_PROV_N] = {
    [SL_AP_PROV_OPENAI] = {
        "openai", SL_AP_PROV_OPENAI, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_BEARER,
        "https://api.openai.com:443",
        {"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/"},
        ALL_OPENAI_CAPS, NULL, NULL},
    [SL_AP_PROV_AZURE] = {
        "azure", SL_AP_PROV_AZURE, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_API_KEY,
        "https://{azure_instance}.openai.azure.com:443",
        {"/openai/deployments/{azure_deployment_id}/chat/completions",
         "/openai/deployments/{azure_deployment_id}/completions",
         "/openai/deployments/{azure_deployment_id}/embeddings",
         "/openai/deployments/{azure_deployment_id}/"},
        ALL_OPENAI_CAPS, NULL, NULL},
    [SL_AP_PROV_ANTHROPIC] = {
        "anthropic", SL_AP_PROV_ANTHROPIC, SL_AP_WIRE_ANTHROPIC, SL_AP_FRAME_SSE,
        SL_AP_AUTH_X_API_KEY, "https://api.anthropic.com:443",
        {"/v1/messages", NULL, NULL, "/"},
        SL_AP_CAP_TOP_K | SL_AP_CAP_TOOLS | SL_AP_CAP_COUNT_TOKENS, &sl_ap_codec_anthropic, NULL},
    [SL_AP_PROV_COHERE] = {
        /* the v2 Chat API (cohere.c); Kong's driver still calls v1 */
        "cohere", SL_AP_PROV_COHERE, SL_AP_WIRE_OTHER, SL_AP_FRAME_SSE, SL_AP_AUTH_BEARER,
        "https://api.cohere.com:443", {"/v2/chat", NULL, "/v2/embed", "/"},
        SL_AP_CAP_TOP_K | ALL_OPENAI_CAPS, &sl_ap_codec_cohere, NULL},
    [SL_AP_PROV_MISTRAL] = {
        "mistral", SL_AP_PROV_MISTRAL, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_BEARER,
        "https://api.mistral.ai:443",
        {"/v1/chat/completions", NULL, "/v1/embeddings", "/"},
        SL_AP_CAP_TOOL_REQUIRED | SL_AP_CAP_TOOLS, NULL, NULL},
    [SL_AP_PROV_LLAMA2] = {
        "llama2", SL_AP_PROV_LLAMA2, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_OPTIONAL,
        NULL, {"/v1/chat/completions", "/v1/completions", NULL, "/"},
        ALL_OPENAI_CAPS | SL_AP_CAP_NEEDS_URL, NULL, NULL},
    [SL_AP_PROV_GEMINI] = {
        "gemini", SL_AP_PROV_GEMINI, SL_AP_WIRE_GEMINI, SL_AP_FRAME_SSE, SL_AP_AUTH_GOOG,
        "https://generativelanguage.googleapis.com:443",
        {"/v1beta/models/{model}:generateContent", NULL,
         "/v1beta/models/{model}:batchEmbedContents", "/"},
        SL_AP_CAP_TOP_K | SL_AP_CAP_TOOLS, &sl_ap_codec_gemini, NULL},
    [SL_AP_PROV_BEDROCK] = {
        "bedrock", SL_AP_PROV_BEDROCK, SL_AP_WIRE_BEDROCK, SL_AP_FRAME_EVENTSTREAM,
        SL_AP_AUTH_SIGV4, "https://bedrock-runtime.{aws_region}.amazonaws.com:443",
        {"/model/{model}/converse", NULL, "/model/{model}/invoke", "/"},
        SL_AP_CAP_TOOLS, &sl_ap_codec_bedrock, NULL},
    [SL_AP_PROV_HUGGINGFACE] = {
        /* Kong's driver: the OpenAI-compatible messages API under the
         * model's URL ({model} filled at load time, conf.c) */
        "huggingface", SL_AP_PROV_HUGGINGFACE, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE,
        SL_AP_AUTH_BEARER, "https://api-inference.huggingface.co:443",
        {"/models/{model}/v1/chat/completions", NULL, NULL, "/"},
        ALL_OPENAI_CAPS, NULL, NULL},
    [SL_AP_PROV_DASHSCOPE] = {
        "dashscope", SL_AP_PROV_DASHSCOPE, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_BEARER,
        "https://{dashscope_host}:443",
        {"/compatible-mode/v1/chat/completions", NULL, "/compatible-mode/v1/embeddings", "/"},
        SL_AP_CAP_TOP_K | SL_AP_CAP_STREAM_USAGE | SL_AP_CAP_QWEN | SL_AP_CAP_TOOLS, NULL, NULL},
    [SL_AP_PROV_DATABRICKS] = {
        /* Model Serving's OpenAI-compatible endpoint: the model is the
         * serving endpoint's name, in the body */
        "databricks", SL_AP_PROV_DATABRICKS, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE,
        SL_AP_AUTH_BEARER, "https://{databricks_workspace}.cloud.databricks.com:443",
        {"/serving-endpoints/chat/completions", NULL, "/serving-endpoints/embeddings", "/"},
        ALL_OPENAI_CAPS, NULL, NULL},
    [SL_AP_PROV_XAI] = {
        "xai", SL_AP_PROV_XAI, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_BEARER,
        "https://api.x.ai:443", {"/v1/chat/completions", NULL, NULL, "/"},
        ALL_OPENAI_CAPS, NULL, NULL},
    [SL_AP_PROV_CEREBRAS] = {
        "cerebras", SL_AP_PROV_CEREBRAS, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_BEARER,
        "https://api.cerebras.ai:443", {"/v1/chat/completions", NULL, NULL, "/"},
        ALL_OPENAI_CAPS, NULL, NULL},
    [SL_AP_PROV_DEEPSEEK] = {
        "deepseek", SL_AP_PROV_DEEPSEEK, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_BEARER,
        "https://api.deepseek.com:443", {"/v1/chat/completions", NULL, NULL, "/"},
        ALL_OPENAI_CAPS, NULL, NULL},
    [SL_AP_PROV_OLLAMA] = {
        "ollama", SL_AP_PROV_OLLAMA, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_OPTIONAL,
        NULL, {"/v1/chat/completions", NULL, "/v1/embeddings", "/"},
        ALL_OPENAI_CAPS | SL_AP_CAP_NEEDS_URL, NULL, NULL},
    [SL_AP_PROV_VLLM] = {
        "vllm", SL_AP_PROV_VLLM, SL_AP_WIRE_OPENAI, SL_AP_FRAME_SSE, SL_AP_AUTH_OPTIONAL,
        NULL, {"/v1/chat/completions", NULL, NULL, "/"},
        ALL_OPENAI_CAPS | SL_AP_CAP_NEEDS_URL, NULL, NULL},
};
/* clang-format on */

const sl_ap_provider_t *
sl_ap_provider_find(const char *name)
{
    for (int i = 0; i < SL_AP_PROV_N; i++) {
        if (strcmp(sl_ap_providers[i].name, name) == 0) {
            return &sl_ap_providers[i];
        }
    }
    return NULL;
}

const sl_ap_provider_t *
sl_ap_provider_get(sl_ap_provider_id_t id)
{
    return (unsigned)id < SL_AP_PROV_N ? &sl_ap_providers[id] : NULL;
}

const char *
sl_ap_route_name(sl_ap_route_t rt)
{
    static const char *const names[SL_AP_ROUTE_N] = {"llm/v1/chat", "llm/v1/completions",
                                                     "llm/v1/embeddings", "preserve"};

    return (unsigned)rt < SL_AP_ROUTE_N ? names[rt] : "?";
}

/* Why llm/v1/completions is refused for a provider without it: what
 * Kong's driver does with the route type, in a few words. */
/* clang-format off */
static const char *const sl_ap_no_completions[SL_AP_PROV_N] = {
    [SL_AP_PROV_ANTHROPIC] = "Kong sends it to Anthropic's legacy Text Completions API "
                             "(/v1/complete), which sluice does not speak; use llm/v1/chat",
    [SL_AP_PROV_COHERE] = "Kong sends it to Cohere's retired Generate API (/v1/generate); "
                          "use llm/v1/chat",
    [SL_AP_PROV_HUGGINGFACE] = "Kong sends it as a text-generation task ({inputs, parameters}), "
                               "which sluice does not speak yet; use llm/v1/chat",
    [SL_AP_PROV_MISTRAL] = "Mistral's API has no completions endpoint (Kong's driver has "
                           "none either); use llm/v1/chat",
};
/* clang-format on */

const char *
sl_ap_completions_refusal(const sl_ap_provider_t *p)
{
    const char *why = (unsigned)p->id < SL_AP_PROV_N ? sl_ap_no_completions[p->id] : NULL;

    return why ? why
               : "the provider has no completions operation (Kong's driver has none "
                 "either); use llm/v1/chat";
}

const char *
sl_ap_provider_refusal(const sl_ap_provider_t *p, sl_ap_format_t fmt, sl_ap_route_t rt)
{
    if (p->not_yet) {
        return "model.provider";
    }
    if (rt == SL_AP_ROUTE_PRESERVE) {
        /* the client's body as it is, with the configured credential; a
         * provider that signs the body (SigV4) needs its codec's prepare
         * (bedrock: sl_ap_bedrock_sign over the client's request) */
        return p->auth == SL_AP_AUTH_SIGV4 && (p->codec == NULL || p->codec->prepare == NULL)
                   ? "route_type"
                   : NULL;
    }
    if (p->path[rt] == NULL) {
        return "route_type";
    }
    if (rt == SL_AP_ROUTE_EMBEDDINGS || rt == SL_AP_ROUTE_COMPLETIONS) {
        /* OpenAI's embeddings or completions body, to an OpenAI-compatible
         * provider that has the operation (the row's path), or embeddings
         * to one whose dialect embeddings.c writes */
        sl_ap_target_t probe = {.provider = p->id};

        if (p->wire != SL_AP_WIRE_OPENAI &&
            (rt != SL_AP_ROUTE_EMBEDDINGS ||
             sl_ap_embed_dialect(&probe, NULL, 0) == SL_AP_EMBED_NONE)) {
            return "route_type";
        }
        return fmt == SL_AP_FMT_OPENAI ? NULL : "llm_format";
    }
    if (p->wire == SL_AP_WIRE_OPENAI) {
        return NULL; /* the pivot: both client formats */
    }
    if (fmt == SL_AP_FMT_ANTHROPIC && p->wire == SL_AP_WIRE_ANTHROPIC) {
        return NULL; /* same dialect: passed through */
    }
    if (fmt == SL_AP_FMT_ANTHROPIC && p->codec && p->codec->from_anthropic &&
        p->codec->anthropic_json && p->codec->astream_feed) {
        return NULL; /* straight to and from Anthropic (gemini, bedrock) */
    }
    if (p->codec == NULL || p->codec->from_openai == NULL || p->codec->decode_json == NULL ||
        p->codec->stream_feed == NULL) {
        return "llm_format";
    }
    return NULL;
}

sl_ap_wire_t
sl_ap_target_wire(const sl_ap_target_t *t)
{
    if (t->provider == SL_AP_PROV_DASHSCOPE && t->api == SL_AP_API_ANTHROPIC) {
        return SL_AP_WIRE_ANTHROPIC; /* DashScope's Anthropic-compatible endpoint */
    }
    return (sl_ap_wire_t)t->prov->wire;
}

int
sl_ap_target_passthrough(const sl_ap_target_t *t)
{
    sl_ap_wire_t w = sl_ap_target_wire(t);

    return (t->llm_format == SL_AP_FMT_OPENAI && w == SL_AP_WIRE_OPENAI) ||
           (t->llm_format == SL_AP_FMT_ANTHROPIC && w == SL_AP_WIRE_ANTHROPIC);
}

const sl_ap_codec_t *
sl_ap_target_codec(const sl_ap_target_t *t)
{
    return sl_ap_target_passthrough(t) || sl_ap_target_wire(t) == SL_AP_WIRE_OPENAI
               ? NULL
               : t->prov->codec;
}

int
sl_ap_encode_request(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *doc,
                     sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    const sl_ap_codec_t *k = sl_ap_target_codec(t);
    sl_ap_buf_t pivot = {0};
    int rc;

    if (sl_ap_target_passthrough(t)) {
        /* the client speaks the provider's dialect: a member-wise copy with
         * the gateway's model, options and body credential */
        return sl_ap_openai_request(t, body, len, doc, out, info);
    }
    if (k == NULL) {
        /* an OpenAI-compatible provider, an Anthropic client */
        return sl_ap_anthropic_request(t, body, len, doc, out, info);
    }
    if (t->llm_format == SL_AP_FMT_ANTHROPIC && k->from_anthropic) {
        return k->from_anthropic(t, body, len, doc, out, info);
    }
    if (k->from_openai == NULL) {
        info->status = 400;
        snprintf(info->errmsg, sizeof(info->errmsg), "provider %s: not supported yet by sluice",
                 t->provider_name);
        return -1;
    }
    if (t->llm_format == SL_AP_FMT_OPENAI) {
        return k->from_openai(t, body, len, doc, out, info);
    }
    /* Anthropic -> pivot -> provider */
    rc = sl_ap_anthropic_request(t, body, len, doc, &pivot, info);
    if (rc == 0) {
        sl_ap_req_info_t inner = *info;

        rc = pivot.oom ? -2 : k->from_openai(t, pivot.ptr, pivot.len, doc, out, &inner);
        if (rc != 0) {
            info->status = inner.status;
            memcpy(info->errmsg, inner.errmsg, sizeof(info->errmsg));
        } else {
            /* what the client asked, not what the pivot said */
            inner.model = info->model;
            inner.input_estimate = info->input_estimate;
            *info = inner;
        }
    }
    sl_ap_buf_free(&pivot);
    return rc;
}
