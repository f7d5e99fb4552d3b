/* gemini_stream.c - Gemini streamGenerateContent?alt=sse -> Anthropic
 * stream events.
 *
 * Each SSE event is one whole GenerateContentResponse: text parts are
 * deltas (thought:true ones thinking), a functionCall part is a whole call
 * (one tool_use block with its input in one input_json_delta),
 * usageMetadata is cumulative (the last one counts), finishReason arrives
 * on the last chunk.  Gemini sends no terminator: the stream is complete
 * when the body ends after a finishReason; without one it failed.
 * An in-stream {"error":{code,message,status}} ends the stream with an
 * Anthropic error event.
 */

#include <stdio.h>
#include <string.h>

#include "native.h"

void
sl_ap_gstream_init(sl_ap_gstream_t *s, sl_str_t model, int64_t input_estimate)
{
    memset(s, 0, sizeof(*s));
    sl_ap_emit_init(&s->em, model, input_estimate);
}

void
sl_ap_gstream_free(sl_ap_gstream_t *s)
{
    sl_sse_free(&s->sse);
    sl_json_free(&s->doc);
    sl_ap_buf_free(&s->tmp);
}

void
sl_ap_gstream_keepalive(sl_ap_gstream_t *s, sl_ap_buf_t *out)
{
    s->em.out = out;
    sl_ap_emit_ping(&s->em);
}

static int
sl_ap_gstream_event(void *ud, const char *data, size_t len)
{
    sl_ap_gstream_t *s = ud;
    sl_jdoc_t *d = &s->doc;
    int err, cands, cand, parts, p, end, tok, fr;

    if (s->em.ended || len == 0) {
        return 0;
    }
    if (sl_json_parse(d, data, len) != 0 || d->t[0].type != SL_J_OBJ) {
        s->bad_chunk = 1;
        sl_ap_emit_error(&s->em, "api_error",
                         (sl_str_t)SL_STR("upstream sent an invalid stream chunk"));
        return 0;
    }
    err = sl_json_get_t(d, 0, "error", SL_J_OBJ);
    if (err >= 0) {
        int m = sl_json_get_t(d, err, "message", SL_J_STR);
        int64_t code = 500;

        sl_json_int(d, sl_json_get(d, err, "code"), &code);
        sl_ap_emit_error(&s->em, sl_ap_anthropic_error_type((int)code),
                         m >= 0 ? sl_json_sv(d, m) : (sl_str_t)SL_STR("upstream error"));
        return 0;
    }
    if (!s->em.started) {
        tok = sl_json_get_t(d, 0, "responseId", SL_J_STR);
        if (tok >= 0) {
            sl_ap_emit_set_id(&s->em, sl_json_sv(d, tok));
        }
        sl_ap_emit_start(&s->em);
    }
    tok = sl_json_get_t(d, 0, "modelVersion", SL_J_STR);
    if (tok >= 0 && s->usage.response_model[0] == '\0' &&
        d->t[tok].len < sizeof(s->usage.response_model)) {
        memcpy(s->usage.response_model, d->src + d->t[tok].start, d->t[tok].len);
        s->usage.response_model[d->t[tok].len] = '\0';
    }
    sl_ap_gemini_usage(d, sl_json_get_t(d, 0, "usageMetadata", SL_J_OBJ), &s->usage);
    cands = sl_json_get_t(d, 0, "candidates", SL_J_ARR);
    cand = cands >= 0 && SL_JSON_END(d, cands) > cands + 1 ? cands + 1 : -1;
    if (cand < 0) {
        if (sl_json_get(d, sl_json_get_t(d, 0, "promptFeedback", SL_J_OBJ), "blockReason") >= 0) {
            snprintf(s->stop, sizeof(s->stop), "refusal");
            s->finished = 1;
        }
        return 0;
    }
    parts = sl_json_get_t(d, sl_json_get_t(d, cand, "content", SL_J_OBJ), "parts", SL_J_ARR);
    end = parts >= 0 ? SL_JSON_END(d, parts) : 0;
    for (p = parts + 1; parts >= 0 && p < end; p = SL_JSON_NEXT(d, p)) {
        int text = sl_json_get_t(d, p, "text", SL_J_STR);
        int call = sl_json_get_t(d, p, "functionCall", SL_J_OBJ);
        int thought = sl_json_get(d, p, "thought");

        if (call >= 0) {
            int name = sl_json_get_t(d, call, "name", SL_J_STR);
            int args = sl_json_get_t(d, call, "args", SL_J_OBJ);
            sl_str_t a = args >= 0 ? sl_json_raw(d, args) : (sl_str_t)SL_STR("{}");

            if (name < 0) {
                continue;
            }
            s->tools++;
            s->tmp.len = 0;
            sl_ap_gemini_tool_id(&s->tmp, d, p, call, s->em.msg_id + 4, s->em.ntools + 1);
            sl_ap_emit_tool_open(&s->em, (sl_str_t){s->tmp.ptr, s->tmp.len}, sl_json_sv(d, name));
            s->tmp.len = 0;
            sl_ap_buf_add_esc(&s->tmp, a.ptr, a.len);
            sl_ap_emit_tool_json(&s->em, (sl_str_t){s->tmp.ptr, s->tmp.len});
            sl_ap_emit_close(&s->em);
        } else if (text >= 0 && thought >= 0 && d->t[thought].type == SL_J_TRUE) {
            sl_ap_emit_thinking(&s->em, sl_json_sv(d, text));
        } else if (text >= 0) {
            sl_ap_emit_text(&s->em, sl_json_sv(d, text));
        }
    }
    fr = sl_json_get_t(d, cand, "finishReason", SL_J_STR);
    if (fr >= 0) {
        snprintf(s->stop, sizeof(s->stop), "%s", sl_ap_gemini_stop(d, fr, s->tools > 0));
        s->finished = 1;
        sl_ap_emit_close(&s->em);
    }
    return 0;
}

int
sl_ap_gstream_feed(sl_ap_gstream_t *s, const char *p, size_t n, int eof, int truncated,
                   sl_ap_buf_t *out)
{
    int rc;

    s->em.out = out;
    rc = s->em.ended && s->sse.overflow ? 0
                                        : sl_sse_feed(&s->sse, p, n, eof, sl_ap_gstream_event, s);
    if (rc == -2) {
        return -2;
    }
    if (rc == SL_SSE_TOO_BIG && !s->em.ended) {
        sl_ap_emit_error(
            &s->em, "api_error",
            (sl_str_t)SL_STR("upstream stream event larger than max_stream_event_size"));
    }
    if (eof && !s->em.ended) {
        if (s->finished) {
            sl_ap_emit_finish(&s->em, s->stop, &s->usage);
        } else {
            sl_ap_emit_error(
                &s->em, "api_error",
                truncated ? (sl_str_t)SL_STR(
                                "upstream connection closed before the response was complete")
                          : (sl_str_t)SL_STR("upstream stream ended without a finish reason"));
        }
    }
    if (eof) {
        s->usage.out_chars_tokens = s->em.gen_tokens;
    }
    return out->oom || s->tmp.oom ? -2 : 0;
}
