/* models.c - what each DashScope model can do, so a request is shaped for it.
 *
 * One row per model family; a snapshot (`qwen-plus-2025-07-28`) or
 * `-latest` alias matches its family's row.  Sources: Alibaba Model Studio's
 * pages on context cache, deep thinking, structured output and web search
 * (2025-12 .. 2026-08) and the published max_tokens ranges; values marked
 * unverified there are the best public figures.  model.options.dashscope.
 * models in the config overrides any field of a row, or adds a model.
 *
 *   max_output   upper bound of max_tokens (DashScope answers 400 "Range of
 *                max_tokens should be [1, N]" above it; Claude Code asks for
 *                32000 or 64000)
 *   thinking     hybrid models think on request; "stream" ones only in
 *                streamed calls ("most deep thinking models only support
 *                streaming")
 *   json_schema  response_format json_schema honoured (else json_object)
 *   cache        explicit cache_control markers (explicit-cache model list;
 *                snapshots and -latest aliases are not on it)
 *   search       enable_search
 */

#include <string.h>

#include "ai_proxy.h"

static const sl_ap_model_t sl_ap_builtin_models[] = {
    /* name              max_output  thinking            schema cache search known */
    {"qwen3-max", 65536, SL_AP_THINK_STREAM, 1, 1, 1, 1},
    {"qwen3-max-preview", 65536, SL_AP_THINK_STREAM, 1, 0, 1, 1},
    {"qwen-max", 8192, SL_AP_THINK_NO, 0, 0, 0, 1},
    {"qwen3.5-plus", 65536, SL_AP_THINK_STREAM, 0, 1, 1, 1},
    {"qwen-plus", 32768, SL_AP_THINK_STREAM, 1, 1, 1, 1},
    {"qwen-flash", 32768, SL_AP_THINK_STREAM, 1, 1, 1, 1},
    {"qwen-turbo", 16384, SL_AP_THINK_STREAM, 0, 0, 0, 1},
    {"qwen3-coder-plus", 65536, SL_AP_THINK_NO, 0, 1, 0, 1},
    {"qwen3-coder-flash", 65536, SL_AP_THINK_NO, 0, 1, 0, 1},
};

/* 0: no match; 1: exact; 2: a snapshot or -latest alias of `family`. */
static int
sl_ap_model_match(const char *family, const char *name, size_t len)
{
    size_t n = strlen(family), i;

    if (len < n || memcmp(family, name, n) != 0) {
        return 0;
    }
    if (len == n) {
        return 1;
    }
    if (name[n] != '-' || len == n + 1) {
        return 0;
    }
    if (len - n - 1 == 6 && memcmp(name + n + 1, "latest", 6) == 0) {
        return 2;
    }
    for (i = n + 1; i < len; i++) {
        if (!((name[i] >= '0' && name[i] <= '9') || name[i] == '-')) {
            return 0;
        }
    }
    return 2;
}

const sl_ap_model_t *
sl_ap_model_builtin(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < sizeof(sl_ap_builtin_models) / sizeof(sl_ap_builtin_models[0]); i++) {
        if (sl_ap_model_match(sl_ap_builtin_models[i].name, name, len)) {
            return &sl_ap_builtin_models[i];
        }
    }
    return NULL;
}

void
sl_ap_model_facts(const sl_ap_target_t *conf, const char *name, size_t len, sl_ap_model_t *out)
{
    const sl_ap_model_t *b = NULL;
    size_t i;
    int m = 0;

    memset(out, 0, sizeof(*out));
    out->thinking = SL_AP_THINK_STREAM;
    out->json_schema = 1;
    if (conf) {
        for (i = 0; i < conf->nmodels; i++) {
            if (sl_ap_model_match(conf->models[i].name, name, len) == 1) {
                *out = conf->models[i]; /* complete: merged with the table at load */
                return;
            }
        }
    }
    for (i = 0; i < sizeof(sl_ap_builtin_models) / sizeof(sl_ap_builtin_models[0]); i++) {
        m = sl_ap_model_match(sl_ap_builtin_models[i].name, name, len);
        if (m) {
            b = &sl_ap_builtin_models[i];
            break;
        }
    }
    if (b) {
        *out = *b;
        if (m == 2) {
            out->cache = 0; /* snapshots are not on the explicit-cache list */
        }
    }
    if (conf) {
        for (i = 0; i < conf->nmodels; i++) {
            if (sl_ap_model_match(conf->models[i].name, name, len) == 2) {
                *out = conf->models[i]; /* an override of the family covers snapshots */
                return;
            }
        }
    }
}
