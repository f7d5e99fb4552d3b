/* count_tokens.c - local token estimate for /v1/messages/count_tokens.
 *
 * DashScope has no counting endpoint, and calling the model to count would
 * cost a real request, so the gateway answers locally.  Method: every
 * string the model would read (system, message text, tool inputs and
 * results, tool names, descriptions and schemas, JSON keys included as a
 * stand-in for the chat template's structure) counts ASCII bytes / 4 plus
 * one token per non-ASCII character (CJK text is about one token per
 * character in Qwen's tokenizer); each number counts 1; images count a flat
 * 1600 (Anthropic's figure for a ~1.2 MP image); thinking signatures and
 * redacted thinking data are skipped (never sent upstream).  The same
 * estimate fills message_start's input_tokens before DashScope reports
 * the real figure.
 */

#include <stdio.h>
#include <string.h>

#include "ai_proxy.h"

#define SL_AP_IMAGE_TOKENS 1600

int64_t
sl_ap_text_tokens(const char *p, size_t n)
{
    size_t i = 0, ascii = 0;
    int64_t other = 0;

    /* eight bytes at a time: ASCII bytes have the top bit clear, lead
     * bytes of multi-byte characters have the top two bits set */
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        ascii += 8 - (size_t)__builtin_popcountll(v & 0x8080808080808080ull);
        other += __builtin_popcountll(v & (v << 1) & 0x8080808080808080ull);
    }
    for (; i < n; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c < 0x80) {
            ascii++;
        } else if (c >= 0xC0) {
            other++; /* a multi-byte character's lead byte */
        }
    }
    return (int64_t)((ascii + 3) / 4) + other;
}

static int64_t
sl_ap_count(const sl_jdoc_t *d, int tok, int depth)
{
    int64_t sum = 0;
    int i, end;

    if (depth > 64) {
        return 0;
    }
    switch (d->t[tok].type) {
    case SL_J_STR:
        return sl_ap_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
    case SL_J_NUM:
        return 1;
    case SL_J_ARR:
        end = SL_JSON_END(d, tok);
        for (i = tok + 1; i < end; i = SL_JSON_NEXT(d, i)) {
            sum += sl_ap_count(d, i, depth + 1);
        }
        return sum;
    case SL_J_OBJ: {
        int t = sl_json_get_t(d, tok, "type", SL_J_STR);

        if (sl_json_str_eq(d, t, "image")) {
            return SL_AP_IMAGE_TOKENS;
        }
        if (sl_json_str_eq(d, t, "redacted_thinking")) {
            return 0;
        }
        end = SL_JSON_END(d, tok);
        for (i = tok + 1; i < end; i = SL_JSON_NEXT_MEMBER(d, i)) {
            if (sl_json_str_eq(d, i, "signature") || sl_json_str_eq(d, i, "cache_control")) {
                continue;
            }
            sum += sl_ap_text_tokens(d->src + d->t[i].start, d->t[i].len);
            sum += sl_ap_count(d, i + 1, depth + 1);
        }
        return sum;
    }
    default:
        return 0;
    }
}

int64_t
sl_ap_estimate_tokens(const sl_jdoc_t *d)
{
    static const char *const parts[] = {"system", "messages", "tools"};
    int64_t sum = 0;
    size_t k;
    int msgs;

    for (k = 0; k < sizeof(parts) / sizeof(parts[0]); k++) {
        int v = sl_json_get(d, 0, parts[k]);

        if (v >= 0) {
            sum += sl_ap_count(d, v, 0);
        }
    }
    /* chat-template overhead: a few tokens per message */
    msgs = sl_json_get_t(d, 0, "messages", SL_J_ARR);
    if (msgs >= 0) {
        int i, end = SL_JSON_END(d, msgs);

        for (i = msgs + 1; i < end; i = SL_JSON_NEXT(d, i)) {
            sum += 3;
        }
    }
    return sum;
}

int
sl_ap_count_tokens(const sl_ap_conf_t *conf, const char *body, size_t len, sl_jdoc_t *d,
                   int64_t *tokens, sl_ap_req_info_t *info)
{
    sl_ap_buf_t out = {0};
    int rc;

    /* What /v1/messages on this route would refuse is refused here too,
     * with the same 400 (wrong types, another model, 513 tools, broken
     * blocks, invalid UTF-8): the request is translated as the body phase
     * would, and the translation thrown away. */
    rc = sl_ap_encode_request(&conf->t, body, len, d, &out, info);
    sl_ap_buf_free(&out);
    if (rc != 0) {
        if (rc == -1 && info->status == 0) {
            info->status = 400;
        }
        return rc;
    }
    info->status = 0;
    *tokens = sl_ap_estimate_tokens(d);
    return 0;
}
