/* anthropic_response.c - OpenAI chat completion -> Anthropic message, and
 * every kind of error body -> Anthropic's error shape.
 *
 * Non-streaming: choices[0].message.reasoning_content becomes a thinking
 * block (before the text, as Anthropic orders them), content a text block,
 * tool_calls tool_use blocks whose `input` is the parsed argument string
 * (a malformed or empty argument string becomes {} rather than a crash or
 * invalid JSON towards the client).
 *
 * Errors: the upstream's message is kept (OpenAI/DashScope
 * {"error":{"message"}}, Kong's {"message"}, a bare string); anything else
 * (HTML error pages, empty bodies) gets a generic message for the status.
 */

#include <stdio.h>
#include <string.h>

#include "ai_proxy.h"

const char *
sl_ap_stop_reason(const char *fr, size_t n)
{
#define FR(lit) (n == sizeof(lit) - 1 && memcmp(fr, lit, n) == 0)
    if (FR("length")) {
        return "max_tokens";
    }
    if (FR("tool_calls") || FR("function_call")) {
        return "tool_use";
    }
    if (FR("content_filter")) {
        return "refusal";
    }
    return "end_turn";
#undef FR
}

void
sl_ap_usage_from_json(const sl_jdoc_t *d, int u, sl_ap_usage_t *out)
{
    int t;
    int64_t v;

    if (u < 0 || d->t[u].type != SL_J_OBJ) {
        return;
    }
    out->have = 1;
    if (sl_json_get(d, u, "prompt_tokens") < 0 && sl_json_get(d, u, "output_tokens") >= 0) {
        /* an Anthropic usage object (DashScope's Anthropic endpoint,
         * message_delta or a whole message): the three input counts are
         * apart there */
        int64_t in = 0, rd = 0, wr = 0, o = 0;

        sl_json_int(d, sl_json_get(d, u, "input_tokens"), &in);
        sl_json_int(d, sl_json_get(d, u, "cache_read_input_tokens"), &rd);
        sl_json_int(d, sl_json_get(d, u, "cache_creation_input_tokens"), &wr);
        sl_json_int(d, sl_json_get(d, u, "output_tokens"), &o);
        out->prompt = in + rd + wr;
        out->cached = rd;
        out->created = wr;
        out->completion = o;
        out->total = out->prompt + out->completion;
        return;
    }
    if (sl_json_int(d, sl_json_get(d, u, "prompt_tokens"), &v) == 0) {
        out->prompt = v;
    }
    if (sl_json_int(d, sl_json_get(d, u, "completion_tokens"), &v) == 0) {
        out->completion = v;
    }
    if (sl_json_int(d, sl_json_get(d, u, "total_tokens"), &v) == 0) {
        out->total = v;
    } else {
        out->total = out->prompt + out->completion;
    }
    t = sl_json_get_t(d, u, "prompt_tokens_details", SL_J_OBJ);
    if (sl_json_int(d, sl_json_get(d, t, "cached_tokens"), &v) == 0) {
        out->cached = v;
    }
    /* DashScope's explicit cache: tokens written now, inside
     * prompt_tokens_details (some responses also carry it beside) */
    if (sl_json_int(d, sl_json_get(d, t, "cache_creation_input_tokens"), &v) == 0 ||
        sl_json_int(d, sl_json_get(d, u, "cache_creation_input_tokens"), &v) == 0) {
        out->created = v;
    }
    t = sl_json_get_t(d, u, "completion_tokens_details", SL_J_OBJ);
    if (t >= 0 && d->t[t].len < sizeof(out->completion_details)) {
        memcpy(out->completion_details, d->src + d->t[t].start, d->t[t].len);
        out->completion_details[d->t[t].len] = '\0';
    }
}

int64_t
sl_ap_uncached_input(const sl_ap_usage_t *u)
{
    int64_t n = u->prompt - u->cached - u->created;

    return n < 0 ? 0 : n;
}

/* Append the argument string (escaped JSON text) as a JSON object value. */
static void
sl_ap_tool_input(sl_ap_buf_t *out, sl_str_t esc_args)
{
    sl_ap_buf_t raw = {0};
    sl_jdoc_t d = {0};

    if (sl_json_unescape(esc_args.ptr, esc_args.len, &raw) == 0 && raw.len > 0 &&
        sl_json_parse(&d, raw.ptr, raw.len) == 0 && d.t[0].type == SL_J_OBJ) {
        sl_ap_buf_add(out, raw.ptr + d.t[0].start, d.t[0].len);
    } else {
        SL_AP_BUF_LIT(out, "{}");
    }
    sl_json_free(&d);
    sl_ap_buf_free(&raw);
}

void
sl_ap_search_blocks(sl_ap_buf_t *out, sl_str_t id, const char *query)
{
    SL_AP_BUF_LIT(out, "{\"type\":\"server_tool_use\",\"id\":\"srvtoolu_");
    sl_ap_buf_add(out, id.ptr, id.len);
    SL_AP_BUF_LIT(out, "\",\"name\":\"web_search\",\"input\":{\"query\":\"");
    sl_ap_buf_adds(out, query);
    SL_AP_BUF_LIT(out, "\"}},{\"type\":\"web_search_tool_result\",\"tool_use_id\":\"srvtoolu_");
    sl_ap_buf_add(out, id.ptr, id.len);
    /* DashScope's compatible mode returns no sources: an empty result list,
     * never invented links; the answer text follows */
    SL_AP_BUF_LIT(out, "\",\"content\":[]}");
}

int
sl_ap_anthropic_response(const char *body, size_t len, sl_str_t model, sl_jdoc_t *d,
                         sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    return sl_ap_anthropic_response_search(body, len, model, NULL, d, out, u);
}

int
sl_ap_anthropic_response_search(const char *body, size_t len, sl_str_t model,
                                const char *search_query, sl_jdoc_t *d, sl_ap_buf_t *out,
                                sl_ap_usage_t *u)
{
    int ch, c, msg = -1, tok, fr = -1, end, nblk = 0;
    int64_t in_tokens;
    sl_str_t id = SL_STR("sluice"), sr = SL_STR("end_turn");

    if (sl_json_parse(d, body, len) != 0 || d->t[0].type != SL_J_OBJ) {
        return -1;
    }
    ch = sl_json_get_t(d, 0, "choices", SL_J_ARR);
    if (ch < 0 || SL_JSON_END(d, ch) == ch + 1 || d->t[ch + 1].type != SL_J_OBJ) {
        return -1;
    }
    c = ch + 1;
    msg = sl_json_get_t(d, c, "message", SL_J_OBJ);
    fr = sl_json_get_t(d, c, "finish_reason", SL_J_STR);
    sl_ap_usage_from_json(d, sl_json_get_t(d, 0, "usage", SL_J_OBJ), u);
    tok = sl_json_get_t(d, 0, "model", SL_J_STR);
    if (tok >= 0 && d->t[tok].len < sizeof(u->response_model)) {
        memcpy(u->response_model, d->src + d->t[tok].start, d->t[tok].len);
        u->response_model[d->t[tok].len] = '\0';
    }
    tok = sl_json_get_t(d, 0, "id", SL_J_STR);
    if (tok >= 0) {
        id = sl_json_sv(d, tok);
        if (id.len > 9 && memcmp(id.ptr, "chatcmpl-", 9) == 0) {
            id.ptr += 9;
            id.len -= 9;
        }
    }
    if (fr >= 0) {
        sl_str_t f = sl_json_sv(d, fr);
        sr.ptr = sl_ap_stop_reason(f.ptr, f.len);
        sr.len = strlen(sr.ptr);
    }

    SL_AP_BUF_LIT(out, "{\"id\":\"msg_");
    sl_ap_buf_add(out, id.ptr, id.len);
    SL_AP_BUF_LIT(out, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    sl_ap_buf_add_qstr(out, model.ptr, model.len);
    SL_AP_BUF_LIT(out, ",\"content\":[");
    if (search_query) {
        sl_ap_search_blocks(out, id, search_query);
        nblk++;
    }

    tok = sl_json_get_t(d, msg, "reasoning_content", SL_J_STR);
    if (tok >= 0 && d->t[tok].len > 0) {
        if (nblk) {
            sl_ap_buf_addc(out, ',');
        }
        SL_AP_BUF_LIT(out, "{\"type\":\"thinking\",\"thinking\":");
        sl_ap_buf_add(out, sl_json_raw(d, tok).ptr, sl_json_raw(d, tok).len);
        SL_AP_BUF_LIT(out, ",\"signature\":\"\"}");
        u->out_chars_tokens += sl_ap_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
        nblk++;
    }
    tok = sl_json_get_t(d, msg, "content", SL_J_STR);
    if (tok >= 0 && d->t[tok].len > 0) {
        if (nblk++) {
            sl_ap_buf_addc(out, ',');
        }
        SL_AP_BUF_LIT(out, "{\"type\":\"text\",\"text\":");
        sl_ap_buf_add(out, sl_json_raw(d, tok).ptr, sl_json_raw(d, tok).len);
        sl_ap_buf_addc(out, '}');
        u->out_chars_tokens += sl_ap_text_tokens(d->src + d->t[tok].start, d->t[tok].len);
    }
    tok = sl_json_get_t(d, msg, "tool_calls", SL_J_ARR);
    if (tok >= 0) {
        int i, n = 0;

        end = SL_JSON_END(d, tok);
        for (i = tok + 1; i < end; i = SL_JSON_NEXT(d, i)) {
            int fn = sl_json_get_t(d, i, "function", SL_J_OBJ);
            int tid = sl_json_get_t(d, i, "id", SL_J_STR);
            int name = sl_json_get_t(d, fn, "name", SL_J_STR);
            int args = sl_json_get_t(d, fn, "arguments", SL_J_STR);

            n++;
            if (nblk++) {
                sl_ap_buf_addc(out, ',');
            }
            SL_AP_BUF_LIT(out, "{\"type\":\"tool_use\",\"id\":\"");
            if (tid >= 0 && d->t[tid].len > 0) {
                sl_ap_buf_add(out, d->src + d->t[tid].start, d->t[tid].len);
            } else {
                SL_AP_BUF_LIT(out, "toolu_");
                sl_ap_buf_add(out, id.ptr, id.len);
                sl_ap_buf_addf(out, "_%d", n);
            }
            SL_AP_BUF_LIT(out, "\",\"name\":\"");
            if (name >= 0) {
                sl_ap_buf_add(out, d->src + d->t[name].start, d->t[name].len);
            }
            SL_AP_BUF_LIT(out, "\",\"input\":");
            sl_ap_tool_input(out, args >= 0 ? sl_json_sv(d, args) : (sl_str_t)SL_STR(""));
            sl_ap_buf_addc(out, '}');
        }
        if (n > 0 && fr < 0) {
            sr = (sl_str_t)SL_STR("tool_use");
        }
    }
    if (nblk == 0) {
        SL_AP_BUF_LIT(out, "{\"type\":\"text\",\"text\":\"\"}");
    }
    in_tokens = sl_ap_uncached_input(u);
    if (!u->have) {
        u->completion = u->out_chars_tokens;
    }
    SL_AP_BUF_LIT(out, "],\"stop_reason\":\"");
    sl_ap_buf_add(out, sr.ptr, sr.len);
    SL_AP_BUF_LIT(out, "\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":");
    sl_ap_buf_add_i64(out, in_tokens);
    SL_AP_BUF_LIT(out, ",\"cache_creation_input_tokens\":");
    sl_ap_buf_add_i64(out, u->created);
    SL_AP_BUF_LIT(out, ",\"cache_read_input_tokens\":");
    sl_ap_buf_add_i64(out, u->cached);
    SL_AP_BUF_LIT(out, ",\"output_tokens\":");
    sl_ap_buf_add_i64(out, u->completion);
    SL_AP_BUF_LIT(out, "}}");
    return out->oom ? -2 : 0;
}

const char *
sl_ap_anthropic_error_type(int status)
{
    switch (status) {
    case 400:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    default:
        return status >= 400 && status < 500 ? "invalid_request_error" : "api_error";
    }
}

static const char *
sl_ap_default_message(int status)
{
    switch (status) {
    case 400:
        return "Bad request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not found";
    case 413:
        return "Request too large";
    case 429:
        return "Too many requests";
    case 500:
        return "The upstream server failed";
    case 502:
        return "An invalid response was received from the upstream server";
    case 503:
        return "The upstream server is currently unavailable";
    case 504:
        return "The upstream server is timing out";
    default:
        return NULL;
    }
}

void
sl_ap_anthropic_error_msg(sl_ap_buf_t *out, int status, const char *msg)
{
    SL_AP_BUF_LIT(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
    sl_ap_buf_adds(out, sl_ap_anthropic_error_type(status));
    SL_AP_BUF_LIT(out, "\",\"message\":");
    sl_ap_buf_add_qstr(out, msg, strlen(msg));
    SL_AP_BUF_LIT(out, "}}");
}

void
sl_ap_anthropic_error(int status, const char *body, size_t len, sl_jdoc_t *d, sl_ap_buf_t *out)
{
    int m = -1, e;
    const char *def;
    char tmp[96];

    if (len > 0 && sl_json_parse(d, body, len) == 0 && d->t[0].type == SL_J_OBJ) {
        e = sl_json_get(d, 0, "error");
        if (e >= 0 && d->t[e].type == SL_J_OBJ) {
            m = sl_json_get_t(d, e, "message", SL_J_STR);
        } else if (e >= 0 && d->t[e].type == SL_J_STR) {
            m = e;
        }
        if (m < 0) {
            m = sl_json_get_t(d, 0, "message", SL_J_STR);
        }
        if (m >= 0 && d->t[m].len > 0) {
            SL_AP_BUF_LIT(out, "{\"type\":\"error\",\"error\":{\"type\":\"");
            sl_ap_buf_adds(out, sl_ap_anthropic_error_type(status));
            SL_AP_BUF_LIT(out, "\",\"message\":");
            sl_ap_buf_add(out, sl_json_raw(d, m).ptr, sl_json_raw(d, m).len);
            SL_AP_BUF_LIT(out, "}}");
            return;
        }
    }
    def = sl_ap_default_message(status);
    if (def == NULL) {
        snprintf(tmp, sizeof(tmp), "The upstream server responded with %d", status);
        def = tmp;
    }
    sl_ap_anthropic_error_msg(out, status, def);
}

void
sl_ap_openai_error(int status, const char *body, size_t len, sl_jdoc_t *d, sl_ap_buf_t *out)
{
    int m = -1, e = -1, ty = -1;
    const char *def;
    char tmp[96];

    if (len > 0 && sl_json_parse(d, body, len) == 0 && d->t[0].type == SL_J_OBJ) {
        e = sl_json_get(d, 0, "error");
        if (e >= 0 && d->t[e].type == SL_J_OBJ) {
            m = sl_json_get_t(d, e, "message", SL_J_STR);
            ty = sl_json_get_t(d, e, "type", SL_J_STR);
        } else if (e >= 0 && d->t[e].type == SL_J_STR) {
            m = e;
        }
        if (m < 0) {
            m = sl_json_get_t(d, 0, "message", SL_J_STR);
        }
    }
    SL_AP_BUF_LIT(out, "{\"error\":{\"message\":");
    if (m >= 0 && d->t[m].len > 0) {
        sl_ap_buf_add(out, sl_json_raw(d, m).ptr, sl_json_raw(d, m).len);
    } else {
        def = sl_ap_default_message(status);
        if (def == NULL) {
            snprintf(tmp, sizeof(tmp), "The upstream server responded with %d", status);
            def = tmp;
        }
        sl_ap_buf_add_qstr(out, def, strlen(def));
    }
    SL_AP_BUF_LIT(out, ",\"type\":");
    if (ty >= 0 && d->t[ty].len > 0) {
        sl_ap_buf_add(out, sl_json_raw(d, ty).ptr, sl_json_raw(d, ty).len);
    } else {
        sl_ap_buf_addc(out, '"');
        sl_ap_buf_adds(out, status == 429   ? "rate_limit_error"
                            : status >= 500 ? "api_error"
                                            : sl_ap_anthropic_error_type(status));
        sl_ap_buf_addc(out, '"');
    }
    SL_AP_BUF_LIT(out, ",\"param\":null,\"code\":null}}");
}
