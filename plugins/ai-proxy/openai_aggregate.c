/* openai_aggregate.c - a whole OpenAI chat stream -> one chat completion.
 *
 * DashScope thinks only in streamed calls, but a client may ask for
 * thinking without streaming (Claude Code's non-streaming fallback, SDK
 * users): the request then streams upstream and the stream is folded back
 * here into the non-streaming shape, which anthropic_response.c turns into
 * one Anthropic message.  Delta strings are already JSON-escaped and never
 * split inside an escape, so they are concatenated as they come.
 */

#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"

#define SL_AP_AGG_MAX_TOOLS 64

typedef struct {
    sl_jdoc_t doc;
    sl_ap_buf_t reasoning, content, usage, id, model, finish;
    sl_ap_buf_t tool_id[SL_AP_AGG_MAX_TOOLS], tool_name[SL_AP_AGG_MAX_TOOLS],
        tool_args[SL_AP_AGG_MAX_TOOLS];
    int ntools;
    int error;
} sl_ap_agg_t;

static void
sl_ap_agg_set(sl_ap_buf_t *b, const sl_jdoc_t *d, int tok)
{
    if (tok >= 0 && b->len == 0) {
        sl_ap_buf_add(b, d->src + d->t[tok].start, d->t[tok].len);
    }
}

static int
sl_ap_agg_event(void *ud, const char *data, size_t len)
{
    sl_ap_agg_t *a = ud;
    sl_jdoc_t *d = &a->doc;
    int ch, c, delta, tok, tc, i, end;

    if (sl_json_parse(d, data, len) != 0 || d->t[0].type != SL_J_OBJ) {
        return 0; /* [DONE] */
    }
    tok = sl_json_get(d, 0, "error");
    if (tok >= 0 && d->t[tok].type != SL_J_NULL) {
        a->error = 1;
        return 0;
    }
    sl_ap_agg_set(&a->id, d, sl_json_get_t(d, 0, "id", SL_J_STR));
    sl_ap_agg_set(&a->model, d, sl_json_get_t(d, 0, "model", SL_J_STR));
    tok = sl_json_get_t(d, 0, "usage", SL_J_OBJ);
    if (tok >= 0) {
        a->usage.len = 0;
        sl_ap_buf_add(&a->usage, d->src + d->t[tok].start, d->t[tok].len);
    }
    ch = sl_json_get_t(d, 0, "choices", SL_J_ARR);
    if (ch < 0 || SL_JSON_END(d, ch) == ch + 1) {
        return 0;
    }
    c = ch + 1;
    sl_ap_agg_set(&a->finish, d, sl_json_get_t(d, c, "finish_reason", SL_J_STR));
    delta = sl_json_get_t(d, c, "delta", SL_J_OBJ);
    tok = sl_json_get_t(d, delta, "reasoning_content", SL_J_STR);
    if (tok >= 0) {
        sl_ap_buf_add(&a->reasoning, d->src + d->t[tok].start, d->t[tok].len);
    }
    tok = sl_json_get_t(d, delta, "content", SL_J_STR);
    if (tok >= 0) {
        sl_ap_buf_add(&a->content, d->src + d->t[tok].start, d->t[tok].len);
    }
    tc = sl_json_get_t(d, delta, "tool_calls", SL_J_ARR);
    end = tc >= 0 ? SL_JSON_END(d, tc) : 0;
    for (i = tc + 1; tc >= 0 && i < end; i = SL_JSON_NEXT(d, i)) {
        int64_t idx = a->ntools ? a->ntools - 1 : 0;
        int fn = sl_json_get_t(d, i, "function", SL_J_OBJ);
        int id = sl_json_get_t(d, i, "id", SL_J_STR);

        sl_json_int(d, sl_json_get(d, i, "index"), &idx);
        if (idx < 0 || idx >= SL_AP_AGG_MAX_TOOLS) {
            continue;
        }
        if (idx >= a->ntools) {
            a->ntools = (int)idx + 1;
        }
        if (id >= 0 && d->t[id].len > 0) {
            sl_ap_agg_set(&a->tool_id[idx], d, id);
        }
        sl_ap_agg_set(&a->tool_name[idx], d, sl_json_get_t(d, fn, "name", SL_J_STR));
        tok = sl_json_get_t(d, fn, "arguments", SL_J_STR);
        if (tok >= 0) {
            sl_ap_buf_add(&a->tool_args[idx], d->src + d->t[tok].start, d->t[tok].len);
        }
    }
    return 0;
}

static void
sl_ap_agg_str(sl_ap_buf_t *out, const char *key, const sl_ap_buf_t *v)
{
    sl_ap_buf_addf(out, ",\"%s\":\"", key);
    sl_ap_buf_add(out, v->ptr ? v->ptr : "", v->len);
    sl_ap_buf_addc(out, '"');
}

int
sl_ap_aggregate_stream(const char *body, size_t len, sl_ap_buf_t *out)
{
    sl_ap_agg_t *a = calloc(1, sizeof(*a));
    sl_sse_t sse = {0};
    int i, rc;

    if (a == NULL) {
        return -2;
    }
    rc = sl_sse_feed(&sse, body, len, 1, sl_ap_agg_event, a);
    if (rc == 0 && (a->error || a->finish.len == 0)) {
        rc = -1; /* an error event, or cut before its finish_reason */
    }
    if (rc == 0) {
        SL_AP_BUF_LIT(out, "{\"object\":\"chat.completion\"");
        sl_ap_agg_str(out, "id", &a->id);
        sl_ap_agg_str(out, "model", &a->model);
        SL_AP_BUF_LIT(out, ",\"choices\":[{\"index\":0");
        sl_ap_agg_str(out, "finish_reason", &a->finish);
        SL_AP_BUF_LIT(out, ",\"message\":{\"role\":\"assistant\"");
        sl_ap_agg_str(out, "reasoning_content", &a->reasoning);
        sl_ap_agg_str(out, "content", &a->content);
        if (a->ntools) {
            SL_AP_BUF_LIT(out, ",\"tool_calls\":[");
            for (i = 0; i < a->ntools; i++) {
                sl_ap_buf_adds(out, i ? ",{\"type\":\"function\"" : "{\"type\":\"function\"");
                sl_ap_agg_str(out, "id", &a->tool_id[i]);
                SL_AP_BUF_LIT(out, ",\"function\":{\"name\":\"");
                sl_ap_buf_add(out, a->tool_name[i].ptr ? a->tool_name[i].ptr : "",
                              a->tool_name[i].len);
                SL_AP_BUF_LIT(out, "\"");
                sl_ap_agg_str(out, "arguments", &a->tool_args[i]);
                SL_AP_BUF_LIT(out, "}}");
            }
            SL_AP_BUF_LIT(out, "]");
        }
        SL_AP_BUF_LIT(out, "}}]");
        if (a->usage.len) {
            SL_AP_BUF_LIT(out, ",\"usage\":");
            sl_ap_buf_add(out, a->usage.ptr, a->usage.len);
        }
        SL_AP_BUF_LIT(out, "}");
        if (out->oom) {
            rc = -2;
        }
    }
    for (i = 0; i < SL_AP_AGG_MAX_TOOLS; i++) {
        sl_ap_buf_free(&a->tool_id[i]);
        sl_ap_buf_free(&a->tool_name[i]);
        sl_ap_buf_free(&a->tool_args[i]);
    }
    sl_ap_buf_free(&a->reasoning);
    sl_ap_buf_free(&a->content);
    sl_ap_buf_free(&a->usage);
    sl_ap_buf_free(&a->id);
    sl_ap_buf_free(&a->model);
    sl_ap_buf_free(&a->finish);
    sl_json_free(&a->doc);
    sl_sse_free(&sse);
    free(a);
    return rc;
}
