/* openai_stream.c - llm_format openai: the response goes to the client
 * untouched; these helpers only read it for the statistics (usage chunk,
 * model, and a token estimate of the generated text when the provider
 * sends no usage).
 */

#include <string.h>

#include "ai_proxy.h"

static void
sl_ap_copy_model(const sl_jdoc_t *d, sl_ap_usage_t *u)
{
    int tok = sl_json_get_t(d, 0, "model", SL_J_STR);

    if (tok >= 0 && u->response_model[0] == '\0' && d->t[tok].len < sizeof(u->response_model)) {
        memcpy(u->response_model, d->src + d->t[tok].start, d->t[tok].len);
        u->response_model[d->t[tok].len] = '\0';
    }
}

/* An Anthropic stream (the anthropic provider, DashScope's Anthropic
 * endpoint): usage from message_start's message, then message_delta's
 * cumulative counts, which may leave out the input counts (Anthropic's
 * own API sends only output_tokens there): those are kept.  A Cohere
 * stream (typed events too, on a preserve route): message-end's usage. */
static int
sl_ap_watch_anthropic(sl_ap_watch_t *w, const sl_jdoc_t *d, int type)
{
    int tok, u;

    if (sl_json_str_eq(d, type, "message_start")) {
        int msg = sl_json_get_t(d, 0, "message", SL_J_OBJ);

        tok = sl_json_get_t(d, msg, "model", SL_J_STR);
        if (tok >= 0 && w->usage.response_model[0] == '\0' &&
            d->t[tok].len < sizeof(w->usage.response_model)) {
            memcpy(w->usage.response_model, d->src + d->t[tok].start, d->t[tok].len);
            w->usage.response_model[d->t[tok].len] = '\0';
        }
        sl_ap_usage_from_json(d, sl_json_get_t(d, msg, "usage", SL_J_OBJ), &w->usage);
    } else if (sl_json_str_eq(d, type, "message_delta")) {
        sl_ap_usage_t prev = w->usage;

        u = sl_json_get_t(d, 0, "usage", SL_J_OBJ);
        if (u < 0) {
            return 0;
        }
        sl_ap_usage_from_json(d, u, &w->usage);
        if (sl_json_get(d, u, "input_tokens") < 0) {
            w->usage.prompt = prev.prompt;
            w->usage.cached = prev.cached;
            w->usage.created = prev.created;
            w->usage.total = w->usage.prompt + w->usage.completion;
        }
    } else if (sl_json_str_eq(d, type, "message-end")) {
        /* Cohere's stream (preserve): the counts in delta.usage */
        sl_ap_cohere_usage(
            d, sl_json_get_t(d, sl_json_get_t(d, 0, "delta", SL_J_OBJ), "usage", SL_J_OBJ),
            &w->usage);
    } else if (sl_json_str_eq(d, type, "content_block_delta")) {
        int delta = sl_json_get_t(d, 0, "delta", SL_J_OBJ);

        tok = sl_json_get_t(d, delta, "text", SL_J_STR);
        if (tok < 0) {
            tok = sl_json_get_t(d, delta, "partial_json", SL_J_STR);
        }
        if (tok < 0) {
            tok = sl_json_get_t(d, delta, "thinking", SL_J_STR);
        }
        if (tok >= 0) {
            w->gen_tokens += sl_ap_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
        }
    }
    return 0;
}

static int
sl_ap_watch_event(void *ud, const char *data, size_t len)
{
    sl_ap_watch_t *w = ud;
    sl_jdoc_t *d = sl_sse_event_doc();
    int ch, delta, tok, end, i;

    if (sl_json_parse(d, data, len) != 0 || d->t[0].type != SL_J_OBJ) {
        return 0; /* [DONE] and anything else */
    }
    tok = sl_json_get_t(d, 0, "type", SL_J_STR);
    if (tok >= 0) {
        return sl_ap_watch_anthropic(w, d, tok);
    }
    sl_ap_copy_model(d, &w->usage);
    tok = sl_json_get_t(d, 0, "usage", SL_J_OBJ);
    if (tok >= 0) {
        sl_ap_usage_from_json(d, tok, &w->usage);
    }
    ch = sl_json_get_t(d, 0, "choices", SL_J_ARR);
    if (ch < 0 || SL_JSON_END(d, ch) == ch + 1) {
        return 0;
    }
    tok = sl_json_get_t(d, ch + 1, "text", SL_J_STR); /* a completions chunk */
    if (tok >= 0) {
        w->gen_tokens += sl_ap_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
    }
    delta = sl_json_get_t(d, ch + 1, "delta", SL_J_OBJ);
    tok = sl_json_get_t(d, delta, "content", SL_J_STR);
    if (tok >= 0) {
        w->gen_tokens += sl_ap_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
    }
    tok = sl_json_get_t(d, delta, "reasoning_content", SL_J_STR);
    if (tok >= 0) {
        w->gen_tokens += sl_ap_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
    }
    tok = sl_json_get_t(d, delta, "tool_calls", SL_J_ARR);
    if (tok >= 0) {
        end = SL_JSON_END(d, tok);
        for (i = tok + 1; i < end; i = SL_JSON_NEXT(d, i)) {
            int a =
                sl_json_get_t(d, sl_json_get_t(d, i, "function", SL_J_OBJ), "arguments", SL_J_STR);
            if (a >= 0) {
                w->gen_tokens += sl_ap_text_tokens(d->src + d->t[a].start, d->t[a].len);
            }
        }
    }
    return 0;
}

int
sl_ap_watch_feed(sl_ap_watch_t *w, const char *p, size_t n, int eof)
{
    int rc = sl_sse_feed(&w->sse, p, n, eof, sl_ap_watch_event, w);

    w->usage.out_chars_tokens = w->gen_tokens;
    return rc;
}

void
sl_ap_watch_free(sl_ap_watch_t *w)
{
    sl_sse_free(&w->sse);
}

void
sl_ap_usage_from_body(const char *body, size_t len, sl_jdoc_t *d, sl_ap_usage_t *u)
{
    int ch, msg, tok;

    if (sl_json_parse(d, body, len) != 0 || d->t[0].type != SL_J_OBJ) {
        return;
    }
    sl_ap_copy_model(d, u);
    sl_ap_usage_from_json(d, sl_json_get_t(d, 0, "usage", SL_J_OBJ), u);
    ch = sl_json_get_t(d, 0, "choices", SL_J_ARR);
    if (ch >= 0 && SL_JSON_END(d, ch) > ch + 1) {
        msg = sl_json_get_t(d, ch + 1, "message", SL_J_OBJ);
        tok = msg >= 0 ? sl_json_get_t(d, msg, "content", SL_J_STR)
                       : sl_json_get_t(d, ch + 1, "text", SL_J_STR); /* completions */
        if (tok >= 0) {
            u->out_chars_tokens += sl_ap_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
        }
    }
}
