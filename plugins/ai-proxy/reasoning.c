/* reasoning.c - an OpenAI client's `reasoning_effort` as a thinking budget,
 * for the providers that take a budget instead of an effort word: the
 * anthropic provider and, through Anthropic Messages, gemini and bedrock
 * (anthropic_codec.c writes `thinking {type: enabled, budget_tokens}`), and
 * cohere (cohere.c writes `thinking {type: enabled, token_budget}`).
 *
 *   none                 no thinking asked (cohere: thinking disabled)
 *   minimal, low         1024 tokens (Anthropic's smallest budget)
 *   medium               2048
 *   high                 4096
 *   xhigh                8192
 * Any other value (or a non-string) is a 400, as OpenAI answers it.
 */

#include <stdio.h>
#include <string.h>

#include "ai_proxy.h"

static const struct {
    const char *word;
    int64_t budget;
} sl_ap_efforts[] = {
    {"none", 0},      {"minimal", 1024}, {"low", 1024},
    {"medium", 2048}, {"high", 4096},    {"xhigh", 8192},
};

int
sl_ap_reasoning_budget(const sl_jdoc_t *d, int tok, int64_t *budget, sl_ap_req_info_t *info)
{
    *budget = -1;
    if (tok < 0 || d->t[tok].type == SL_J_NULL) {
        return 0;
    }
    for (size_t i = 0;
         d->t[tok].type == SL_J_STR && i < sizeof(sl_ap_efforts) / sizeof(sl_ap_efforts[0]); i++) {
        if (sl_json_str_eq(d, tok, sl_ap_efforts[i].word)) {
            *budget = sl_ap_efforts[i].budget;
            return 0;
        }
    }
    info->status = 400;
    snprintf(info->errmsg, sizeof(info->errmsg),
             "reasoning_effort: must be one of none, minimal, low, medium, high, xhigh");
    return -1;
}
