/* openai_request.c - llm_format openai: the client already speaks OpenAI
 * (chat, completions or embeddings), so the body is copied member by member, with Kong's rules
 * applied: the configured model (a different client model is refused), config options overriding
 * the client's max_tokens/temperature/top_p/top_k, the body auth parameter, and response_streaming
 * deny/always.
 */

#include <stdio.h>
#include <string.h>

#include "ai_proxy.h"

int
sl_ap_policy_dups(const sl_ap_target_t *conf, const sl_jdoc_t *d, sl_ap_req_info_t *info)
{
    const char *keys[] = {"model",
                          "stream",
                          "max_tokens",
                          "temperature",
                          "top_p",
                          "top_k",
                          conf->param_location == SL_AP_PARAM_BODY ? conf->param_name : NULL,
                          NULL};
    const char *dup = sl_json_dup_key(d, 0, keys);

    if (dup == NULL) {
        return 0;
    }
    info->status = 400;
    snprintf(info->errmsg, sizeof(info->errmsg),
             "request body has the key '%s' more than once (the gateway applies policy to it)",
             dup);
    return -1;
}

static int
sl_ap_key_is(const sl_jdoc_t *d, int k, const char *name)
{
    return name != NULL && sl_json_str_eq(d, k, name);
}

int
sl_ap_openai_request(const sl_ap_target_t *conf, const char *body, size_t len, sl_jdoc_t *d,
                     sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    int rc, model, stream, k, end, n = 0, msgs;

    info->status = 400;
    info->errmsg[0] = '\0';
    rc = sl_json_parse(d, body, len);
    if (rc == -2) {
        return -2;
    }
    if (rc != 0 || d->t[0].type != SL_J_OBJ) {
        snprintf(info->errmsg, sizeof(info->errmsg),
                 "content-type header does not match request body, or bad JSON formatting");
        return -1;
    }
    if (sl_ap_policy_dups(conf, d, info) != 0) {
        return -1;
    }
    switch (conf->route_type) {
    case SL_AP_ROUTE_EMBEDDINGS:
        msgs = sl_json_get(d, 0, "input");
        break;
    case SL_AP_ROUTE_COMPLETIONS:
        /* a string, or an array of strings or of token arrays */
        msgs = sl_json_get(d, 0, "prompt");
        if (msgs >= 0 && d->t[msgs].type != SL_J_STR && d->t[msgs].type != SL_J_ARR) {
            msgs = -1;
        }
        break;
    default:
        msgs = sl_json_get_t(d, 0, "messages", SL_J_ARR);
        break;
    }
    if (msgs < 0) {
        snprintf(info->errmsg, sizeof(info->errmsg), "request body doesn't contain valid prompts");
        return -1;
    }
    model = sl_json_get(d, 0, "model");
    if (model >= 0 && d->t[model].type == SL_J_STR && d->t[model].len > 0) {
        if (conf->model_name && !sl_json_str_eq(d, model, conf->model_name) &&
            !(conf->model_alias && sl_json_str_eq(d, model, conf->model_alias))) {
            snprintf(info->errmsg, sizeof(info->errmsg), "cannot use own model - must be: %s",
                     conf->model_name);
            return -1;
        }
        info->model = conf->model_name ? (sl_str_t){conf->model_name, strlen(conf->model_name)}
                                       : sl_json_sv(d, model);
    } else if (conf->model_name) {
        info->model.ptr = conf->model_name;
        info->model.len = strlen(conf->model_name);
    } else {
        snprintf(info->errmsg, sizeof(info->errmsg),
                 "model parameter not found in request, nor in gateway configuration");
        return -1;
    }
    stream = sl_json_get(d, 0, "stream");
    info->stream = stream >= 0 && d->t[stream].type == SL_J_TRUE;
    if (info->stream && conf->response_streaming == SL_AP_STREAM_DENY) {
        snprintf(info->errmsg, sizeof(info->errmsg),
                 "response streaming is not enabled for this LLM");
        return -1;
    }
    if (conf->response_streaming == SL_AP_STREAM_ALWAYS) {
        info->stream = 1;
    }
    info->status = 0;

    sl_ap_buf_addc(out, '{');
    end = SL_JSON_END(d, 0);
    for (k = 1; k < end; k = SL_JSON_NEXT_MEMBER(d, k)) {
        sl_str_t kr, vr;

        if (sl_json_str_eq(d, k, "model") ||
            (conf->max_tokens >= 0 && sl_json_str_eq(d, k, "max_tokens")) ||
            (conf->temperature >= 0 && sl_json_str_eq(d, k, "temperature")) ||
            (conf->top_p >= 0 && sl_json_str_eq(d, k, "top_p")) ||
            (conf->top_k >= 0 && sl_json_str_eq(d, k, "top_k")) ||
            (conf->response_streaming == SL_AP_STREAM_ALWAYS && sl_json_str_eq(d, k, "stream")) ||
            (conf->param_location == SL_AP_PARAM_BODY && sl_ap_key_is(d, k, conf->param_name)) ||
            (conf->embed_dims > 0 && sl_json_str_eq(d, k, "dimensions"))) {
            continue;
        }
        if (n++) {
            sl_ap_buf_addc(out, ',');
        }
        kr = sl_json_raw(d, k);
        vr = sl_json_raw(d, k + 1);
        sl_ap_buf_add(out, kr.ptr, kr.len);
        sl_ap_buf_addc(out, ':');
        sl_ap_buf_add(out, vr.ptr, vr.len);
    }
    if (n++) {
        sl_ap_buf_addc(out, ',');
    }
    SL_AP_BUF_LIT(out, "\"model\":");
    sl_ap_buf_add_qstr(out, info->model.ptr, info->model.len);
    if (conf->max_tokens >= 0) {
        sl_ap_buf_addf(out, ",\"max_tokens\":%lld", (long long)conf->max_tokens);
    }
    if (conf->temperature >= 0) {
        sl_ap_buf_addf(out, ",\"temperature\":%.15g", conf->temperature);
    }
    if (conf->top_p >= 0) {
        sl_ap_buf_addf(out, ",\"top_p\":%.15g", conf->top_p);
    }
    if (conf->top_k >= 0 && (conf->prov->caps & SL_AP_CAP_TOP_K)) {
        sl_ap_buf_addf(out, ",\"top_k\":%lld", (long long)conf->top_k);
    }
    if (conf->response_streaming == SL_AP_STREAM_ALWAYS) {
        SL_AP_BUF_LIT(out, ",\"stream\":true");
    }
    if (conf->embed_dims > 0) {
        /* options.embeddings_dimensions (only set for llm/v1/embeddings) */
        sl_ap_buf_addf(out, ",\"dimensions\":%lld", (long long)conf->embed_dims);
    }
    if (conf->param_location == SL_AP_PARAM_BODY && conf->param_name) {
        int own = sl_json_get(d, 0, conf->param_name);

        SL_AP_BUF_LIT(out, ",");
        sl_ap_buf_add_qstr(out, conf->param_name, strlen(conf->param_name));
        sl_ap_buf_addc(out, ':');
        if (own >= 0 && conf->allow_override) {
            sl_str_t r = sl_json_raw(d, own);
            sl_ap_buf_add(out, r.ptr, r.len);
        } else {
            sl_ap_buf_add_qstr(out, conf->param_value, strlen(conf->param_value));
        }
    }
    sl_ap_buf_addc(out, '}');
    return out->oom ? -2 : 0;
}
