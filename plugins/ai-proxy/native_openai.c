/* native_openai.c - an OpenAI chat client (llm_format openai) of a provider
 * whose codec speaks Anthropic Messages on its client side (gemini,
 * bedrock): two proven translators in a row instead of a second pair of
 * encoders and decoders per provider.
 *
 *   request  OpenAI chat -> Anthropic Messages (anthropic_codec.c's
 *            from_openai: the mapping of docs/providers.md "OpenAI client
 *            <-> Anthropic") -> the provider (codec->from_anthropic)
 *   answer   the provider -> Anthropic message (codec->anthropic_json) ->
 *            OpenAI chat completion (anthropic_codec.c's decode_json)
 *   stream   the provider's stream -> Anthropic events (codec->astream_*)
 *            -> OpenAI chunks (anthropic_codec.c's stream_*)
 *
 * Anthropic Messages is the richer middle: thinking, tool ids (Gemini's
 * thought signature rides in them), cache counts all survive it, where
 * the OpenAI pivot would lose them.  The cost is a second pass over the
 * body (measured in docs/providers.md).  The usage logged is the
 * provider's own (reasoning tokens included), read by its decoder.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "native.h"

/* An id for an answer that names none (Bedrock's Converse): unique enough
 * for a client to tell two answers apart. */
static void
sl_ap_via_id(char *buf, size_t n)
{
    static unsigned counter;

    snprintf(buf, n, "sluice%llx%04x", (long long)time(NULL), ++counter & 0xffffu);
}

int
sl_ap_via_request(const sl_ap_codec_t *k, const sl_ap_target_t *t, const char *body, size_t len,
                  sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    sl_ap_buf_t mid = {0};
    sl_ap_req_info_t first;
    int rc;

    rc = sl_ap_codec_anthropic.from_openai(t, body, len, doc, &mid, info);
    if (rc == 0 && mid.oom) {
        rc = -2;
    }
    if (rc != 0) {
        char *at = rc == -1 ? strstr(info->errmsg, "the anthropic provider") : NULL;

        if (at) {
            /* the first translator's refusal names the provider asked */
            char tail[sizeof(info->errmsg)];

            snprintf(tail, sizeof(tail), "%s", at + strlen("the anthropic provider"));
            snprintf(at, sizeof(info->errmsg) - (size_t)(at - info->errmsg), "the %s provider%s",
                     t->prov ? t->prov->name : "", tail);
        }
        sl_ap_buf_free(&mid);
        return rc;
    }
    first = *info;
    memset(info, 0, sizeof(*info));
    rc = k->from_anthropic(t, mid.ptr, mid.len, doc, out, info);
    if (rc == 0) {
        /* what the client asked (the model points into its body or the
         * config, not into the middle body freed below) */
        info->model = first.model;
        info->input_estimate = first.input_estimate;
        info->include_usage = first.include_usage;
        info->stream = first.stream;
    }
    sl_ap_buf_free(&mid);
    return rc;
}

int
sl_ap_via_decode_json(const sl_ap_codec_t *k, const sl_ap_target_t *t, const char *body, size_t len,
                      sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    sl_ap_buf_t mid = {0};
    sl_ap_usage_t nu;
    char id[48];
    const char *model = t && t->model_name ? t->model_name : "";
    int rc;

    memset(&nu, 0, sizeof(nu));
    sl_ap_via_id(id, sizeof(id));
    rc = k->anthropic_json(t, body, len, (sl_str_t){model, strlen(model)},
                           (sl_str_t){id, strlen(id)}, doc, &mid, &nu);
    if (rc == 0 && model[0] == '\0' && nu.response_model[0] != '\0') {
        /* no configured model: the one the answer names (Gemini's
         * modelVersion) rather than none */
        mid.len = 0;
        rc = k->anthropic_json(t, body, len,
                               (sl_str_t){nu.response_model, strlen(nu.response_model)},
                               (sl_str_t){id, strlen(id)}, doc, &mid, &nu);
    }
    if (rc == 0 && mid.oom) {
        rc = -2;
    }
    if (rc == 0) {
        rc = sl_ap_codec_anthropic.decode_json(t, mid.ptr, mid.len, doc, out, u);
        if (rc == 0) {
            if (nu.response_model[0] == '\0') {
                memcpy(nu.response_model, u->response_model, sizeof(nu.response_model));
            }
            *u = nu; /* the provider's counts */
        }
    }
    sl_ap_buf_free(&mid);
    return rc;
}

void
sl_ap_via_stream_init(const sl_ap_codec_t *k, sl_ap_via_stream_t *s, const sl_ap_target_t *t,
                      const sl_ap_req_info_t *info, size_t max_event)
{
    char id[48];

    s->k = k;
    s->nat = calloc(1, k->astream_size);
    s->ac = calloc(1, sl_ap_codec_anthropic.stream_size);
    if (s->nat == NULL || s->ac == NULL) {
        s->oom = 1;
        return;
    }
    sl_ap_via_id(id, sizeof(id));
    k->astream_init(s->nat, t, info ? info->model : (sl_str_t){"", 0}, (sl_str_t){id, strlen(id)},
                    info ? info->input_estimate : 0, max_event);
    /* the middle events are ours: no bound beyond the provider's */
    sl_ap_codec_anthropic.stream_init(s->ac, t, info, 0);
}

int
sl_ap_via_stream_feed(sl_ap_via_stream_t *s, const char *p, size_t n, int eof, sl_ap_buf_t *out,
                      sl_ap_usage_t *u)
{
    sl_ap_usage_t au;
    const char *broke;
    int ended, rc;

    if (s->oom) {
        return -2;
    }
    s->mid.len = 0;
    if (s->k->astream_feed(s->nat, p, n, eof, 0, &s->mid) == -2 || s->mid.oom) {
        return -2;
    }
    memset(&au, 0, sizeof(au));
    rc = sl_ap_codec_anthropic.stream_feed(s->ac, s->mid.ptr ? s->mid.ptr : "", s->mid.len, eof,
                                           out, &au);
    if (rc == -2) {
        return -2;
    }
    s->k->astream_state(s->nat, u, &ended, &broke);
    if (u->out_chars_tokens == 0) {
        u->out_chars_tokens = au.out_chars_tokens;
    }
    return rc;
}

void
sl_ap_via_stream_free(sl_ap_via_stream_t *s)
{
    if (s->nat) {
        s->k->astream_free(s->nat);
        free(s->nat);
    }
    if (s->ac) {
        sl_ap_codec_anthropic.stream_free(s->ac);
        free(s->ac);
    }
    sl_ap_buf_free(&s->mid);
}
