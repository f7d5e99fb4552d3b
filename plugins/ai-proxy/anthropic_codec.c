/* anthropic_codec.c - the anthropic provider's codec: an OpenAI chat client
 * (llm_format openai) talking to Anthropic's Messages API.
 *
 *   from_openai   OpenAI chat request  -> Anthropic Messages request
 *   decode_json   Anthropic message    -> OpenAI chat completion
 *   stream_*      Anthropic SSE events -> OpenAI chunks (the grammar the
 *                 OpenAI SDK expects: a role chunk, content / tool_calls /
 *                 reasoning_content deltas, a finish_reason chunk, the usage
 *                 chunk with choices [] when stream_options.include_usage,
 *                 data: [DONE]; an error event becomes data: {"error":...})
 *
 * Request mapping (OpenAI -> Anthropic):
 *   system / developer messages      -> system (text blocks, in order)
 *   user content string / parts      -> content string / text and image
 *                                       blocks (data: URIs -> base64 source,
 *                                       http(s) -> url source)
 *   assistant content + tool_calls   -> text block + tool_use blocks (the
 *                                       arguments string parsed; not an
 *                                       object: {})
 *   tool messages                    -> tool_result blocks in a user turn
 *   tools[] function                 -> {name, description, input_schema}
 *   tool_choice auto/none/required/{function} -> auto/none/any/tool;
 *   parallel_tool_calls false        -> disable_parallel_tool_use
 *   max_tokens / max_completion_tokens (required by Anthropic: 4096 when
 *   neither is set nor configured), temperature, top_p, stop -> stop_sequences,
 *   user -> metadata.user_id, stream.
 *   reasoning_effort -> thinking {type: enabled, budget_tokens} (reasoning.c;
 *   "none": no thinking); max_tokens counts the thinking, as OpenAI's counts
 *   reasoning: the default becomes 4096 + the budget, a smaller max_tokens
 *   lowers the budget to max_tokens - 1 (under 1024, Anthropic's least: 400);
 *   not asked in a tool-use turn (sl_ac_tool_turn).
 * Dropped (no Anthropic equivalent): frequency/presence penalties, seed,
 * logit_bias, logprobs, service_tier, store, modalities.
 * Refused with 400: n > 1, response_format json_schema / json_object.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ai_proxy.h"

#define SL_AC_DEFAULT_MAX_TOKENS 4096
#define SL_AC_MIN_BUDGET 1024 /* Anthropic's smallest budget_tokens */

static int
sl_ac_fail(sl_ap_req_info_t *info, int status, const char *msg)
{
    info->status = status;
    snprintf(info->errmsg, sizeof(info->errmsg), "%s", msg);
    return -1;
}

static void
sl_ac_raw(sl_ap_buf_t *out, const sl_jdoc_t *d, int tok)
{
    sl_str_t r = sl_json_raw(d, tok);

    sl_ap_buf_add(out, r.ptr, r.len);
}

/* A string or an array of text parts, as text blocks appended to out
 * (comma-separated, `*n` counts blocks written). */
static void
sl_ac_text_blocks(sl_ap_buf_t *out, const sl_jdoc_t *d, int c, int *n)
{
    if (c < 0) {
        return;
    }
    if (d->t[c].type == SL_J_STR) {
        if (d->t[c].len == 0) {
            return;
        }
        if ((*n)++) {
            sl_ap_buf_addc(out, ',');
        }
        SL_AP_BUF_LIT(out, "{\"type\":\"text\",\"text\":");
        sl_ac_raw(out, d, c);
        sl_ap_buf_addc(out, '}');
        return;
    }
    if (d->t[c].type != SL_J_ARR) {
        return;
    }
    for (int i = c + 1; i < SL_JSON_END(d, c); i = SL_JSON_NEXT(d, i)) {
        int tx = sl_json_get_t(d, i, "text", SL_J_STR);

        if (d->t[i].type == SL_J_STR) {
            tx = i;
        }
        if (tx < 0 || d->t[tx].len == 0) {
            continue;
        }
        if ((*n)++) {
            sl_ap_buf_addc(out, ',');
        }
        SL_AP_BUF_LIT(out, "{\"type\":\"text\",\"text\":");
        sl_ac_raw(out, d, tx);
        sl_ap_buf_addc(out, '}');
    }
}

/* One image_url part -> an image block. */
static int
sl_ac_image(sl_ap_buf_t *out, const sl_jdoc_t *d, int part, sl_ap_req_info_t *info)
{
    int iu = sl_json_get(d, part, "image_url"), url;
    sl_str_t u;
    const char *b64;

    url = iu >= 0 && d->t[iu].type == SL_J_OBJ   ? sl_json_get_t(d, iu, "url", SL_J_STR)
          : iu >= 0 && d->t[iu].type == SL_J_STR ? iu
                                                 : -1;
    if (url < 0) {
        return sl_ac_fail(info, 400, "messages: image_url part without a url");
    }
    u = sl_json_sv(d, url);
    if (u.len > 5 && memcmp(u.ptr, "data:", 5) == 0) {
        b64 = memmem(u.ptr, u.len, ";base64,", 8);
        if (b64 == NULL) {
            return sl_ac_fail(info, 400, "messages: image data URI must be base64");
        }
        SL_AP_BUF_LIT(out, "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"");
        sl_ap_buf_add(out, u.ptr + 5, (size_t)(b64 - u.ptr - 5));
        SL_AP_BUF_LIT(out, "\",\"data\":\"");
        sl_ap_buf_add(out, b64 + 8, u.len - (size_t)(b64 + 8 - u.ptr));
        SL_AP_BUF_LIT(out, "\"}}");
        return 0;
    }
    SL_AP_BUF_LIT(out, "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":");
    sl_ac_raw(out, d, url);
    SL_AP_BUF_LIT(out, "}}");
    return 0;
}

/* User content: a string, or parts (text, image_url). */
static int
sl_ac_user_content(sl_ap_buf_t *out, const sl_jdoc_t *d, int c, sl_ap_req_info_t *info)
{
    int n = 0;

    if (c >= 0 && d->t[c].type == SL_J_STR) {
        sl_ac_raw(out, d, c);
        return 0;
    }
    sl_ap_buf_addc(out, '[');
    if (c >= 0 && d->t[c].type == SL_J_ARR) {
        for (int i = c + 1; i < SL_JSON_END(d, c); i = SL_JSON_NEXT(d, i)) {
            int ty = sl_json_get_t(d, i, "type", SL_J_STR);

            if (sl_json_str_eq(d, ty, "image_url")) {
                if (n++) {
                    sl_ap_buf_addc(out, ',');
                }
                if (sl_ac_image(out, d, i, info) != 0) {
                    return -1;
                }
            } else if (sl_json_str_eq(d, ty, "text")) {
                int tx = sl_json_get_t(d, i, "text", SL_J_STR);

                if (tx >= 0) {
                    if (n++) {
                        sl_ap_buf_addc(out, ',');
                    }
                    SL_AP_BUF_LIT(out, "{\"type\":\"text\",\"text\":");
                    sl_ac_raw(out, d, tx);
                    sl_ap_buf_addc(out, '}');
                }
            } else {
                return sl_ac_fail(info, 400,
                                  "messages: only text and image_url content parts can go to "
                                  "the anthropic provider");
            }
        }
    }
    if (n == 0) {
        SL_AP_BUF_LIT(out, "{\"type\":\"text\",\"text\":\"\"}");
    }
    sl_ap_buf_addc(out, ']');
    return 0;
}

/* A tool call's arguments string -> its JSON value (an object), else {}. */
static void
sl_ac_tool_input(sl_ap_buf_t *out, const sl_jdoc_t *d, int args)
{
    sl_ap_buf_t raw = {0};
    sl_jdoc_t sub = {0};

    if (args >= 0 && d->t[args].type == SL_J_STR &&
        sl_json_unescape(d->src + d->t[args].start, d->t[args].len, &raw) == 0 && !raw.oom &&
        raw.len > 0 && sl_json_parse(&sub, raw.ptr, raw.len) == 0 && sub.t[0].type == SL_J_OBJ) {
        sl_ap_buf_add(out, raw.ptr, raw.len);
    } else if (args >= 0 && d->t[args].type == SL_J_OBJ) {
        sl_ac_raw(out, d, args);
    } else {
        SL_AP_BUF_LIT(out, "{}");
    }
    sl_json_free(&sub);
    sl_ap_buf_free(&raw);
}

/* Is this message's role one of the system roles? */
static int
sl_ac_is_system(const sl_jdoc_t *d, int m)
{
    int role = sl_json_get_t(d, m, "role", SL_J_STR);

    return sl_json_str_eq(d, role, "system") || sl_json_str_eq(d, role, "developer");
}

/* 1 when the conversation ends in a tool-use turn: its last message that is
 * not a tool result is an assistant message with tool_calls.  Anthropic
 * wants such a turn's signed thinking block back when thinking is on, and
 * an OpenAI client cannot send one, so no thinking is asked there. */
static int
sl_ac_tool_turn(const sl_jdoc_t *d, int msgs)
{
    int last = -1;

    for (int m = msgs + 1; m < SL_JSON_END(d, msgs); m = SL_JSON_NEXT(d, m)) {
        if (d->t[m].type == SL_J_OBJ &&
            !sl_json_str_eq(d, sl_json_get_t(d, m, "role", SL_J_STR), "tool")) {
            last = m;
        }
    }
    if (last < 0 || !sl_json_str_eq(d, sl_json_get_t(d, last, "role", SL_J_STR), "assistant")) {
        return 0;
    }
    last = sl_json_get_t(d, last, "tool_calls", SL_J_ARR);
    return last >= 0 && SL_JSON_END(d, last) > last + 1;
}

static int
sl_ac_messages(const sl_jdoc_t *d, int msgs, sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    int end = SL_JSON_END(d, msgs), n = 0, in_tools = 0;

    SL_AP_BUF_LIT(out, ",\"messages\":[");
    for (int m = msgs + 1; m < end; m = SL_JSON_NEXT(d, m)) {
        int role = sl_json_get_t(d, m, "role", SL_J_STR);
        int content = sl_json_get(d, m, "content");

        if (d->t[m].type != SL_J_OBJ || role < 0) {
            return sl_ac_fail(info, 400, "messages: each message needs a role");
        }
        if (sl_ac_is_system(d, m)) {
            continue;
        }
        if (sl_json_str_eq(d, role, "tool")) {
            int id = sl_json_get_t(d, m, "tool_call_id", SL_J_STR);
            int k = 0;

            if (id < 0) {
                return sl_ac_fail(info, 400, "messages: a tool message needs tool_call_id");
            }
            if (!in_tools) {
                if (n++) {
                    sl_ap_buf_addc(out, ',');
                }
                SL_AP_BUF_LIT(out, "{\"role\":\"user\",\"content\":[");
                in_tools = 1;
            } else {
                sl_ap_buf_addc(out, ',');
            }
            SL_AP_BUF_LIT(out, "{\"type\":\"tool_result\",\"tool_use_id\":");
            sl_ac_raw(out, d, id);
            SL_AP_BUF_LIT(out, ",\"content\":[");
            sl_ac_text_blocks(out, d, content, &k);
            SL_AP_BUF_LIT(out, "]}");
            continue;
        }
        if (in_tools) {
            SL_AP_BUF_LIT(out, "]}");
            in_tools = 0;
        }
        if (n++) {
            sl_ap_buf_addc(out, ',');
        }
        if (sl_json_str_eq(d, role, "user")) {
            SL_AP_BUF_LIT(out, "{\"role\":\"user\",\"content\":");
            if (sl_ac_user_content(out, d, content, info) != 0) {
                return -1;
            }
            sl_ap_buf_addc(out, '}');
        } else if (sl_json_str_eq(d, role, "assistant")) {
            int calls = sl_json_get_t(d, m, "tool_calls", SL_J_ARR), k = 0;

            SL_AP_BUF_LIT(out, "{\"role\":\"assistant\",\"content\":[");
            sl_ac_text_blocks(out, d, content, &k);
            if (calls >= 0) {
                for (int c = calls + 1; c < SL_JSON_END(d, calls); c = SL_JSON_NEXT(d, c)) {
                    int fn = sl_json_get_t(d, c, "function", SL_J_OBJ);
                    int id = sl_json_get_t(d, c, "id", SL_J_STR);
                    int name = sl_json_get_t(d, fn, "name", SL_J_STR);

                    if (id < 0 || name < 0) {
                        return sl_ac_fail(info, 400,
                                          "messages: a tool call needs an id and a function name");
                    }
                    if (k++) {
                        sl_ap_buf_addc(out, ',');
                    }
                    SL_AP_BUF_LIT(out, "{\"type\":\"tool_use\",\"id\":");
                    sl_ac_raw(out, d, id);
                    SL_AP_BUF_LIT(out, ",\"name\":");
                    sl_ac_raw(out, d, name);
                    SL_AP_BUF_LIT(out, ",\"input\":");
                    sl_ac_tool_input(out, d, sl_json_get(d, fn, "arguments"));
                    sl_ap_buf_addc(out, '}');
                }
            }
            if (k == 0) {
                SL_AP_BUF_LIT(out, "{\"type\":\"text\",\"text\":\"\"}");
            }
            SL_AP_BUF_LIT(out, "]}");
        } else {
            return sl_ac_fail(info, 400,
                              "messages: role must be system, developer, user, assistant or tool");
        }
    }
    if (in_tools) {
        SL_AP_BUF_LIT(out, "]}");
    }
    sl_ap_buf_addc(out, ']');
    if (n == 0) {
        return sl_ac_fail(info, 400, "request body doesn't contain valid prompts");
    }
    return 0;
}

static int
sl_ac_tools(const sl_jdoc_t *d, sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    int tools = sl_json_get_t(d, 0, "tools", SL_J_ARR);
    int tc = sl_json_get(d, 0, "tool_choice");
    int ptc = sl_json_get(d, 0, "parallel_tool_calls");
    int no_parallel = ptc >= 0 && d->t[ptc].type == SL_J_FALSE, n = 0;

    if (tools >= 0 && SL_JSON_END(d, tools) > tools + 1) {
        SL_AP_BUF_LIT(out, ",\"tools\":[");
        for (int i = tools + 1; i < SL_JSON_END(d, tools); i = SL_JSON_NEXT(d, i)) {
            int fn = sl_json_get_t(d, i, "function", SL_J_OBJ);
            int name = sl_json_get_t(d, fn, "name", SL_J_STR);
            int desc = sl_json_get_t(d, fn, "description", SL_J_STR);
            int params = sl_json_get_t(d, fn, "parameters", SL_J_OBJ);

            if (name < 0) {
                return sl_ac_fail(info, 400, "tools: each tool needs function.name");
            }
            if (n++) {
                sl_ap_buf_addc(out, ',');
            }
            SL_AP_BUF_LIT(out, "{\"name\":");
            sl_ac_raw(out, d, name);
            if (desc >= 0) {
                SL_AP_BUF_LIT(out, ",\"description\":");
                sl_ac_raw(out, d, desc);
            }
            SL_AP_BUF_LIT(out, ",\"input_schema\":");
            if (params >= 0) {
                sl_ac_raw(out, d, params);
            } else {
                SL_AP_BUF_LIT(out, "{\"type\":\"object\",\"properties\":{}}");
            }
            sl_ap_buf_addc(out, '}');
        }
        sl_ap_buf_addc(out, ']');
    } else {
        return 0; /* no tools: no tool_choice either */
    }
    if (tc >= 0 && sl_json_str_eq(d, tc, "none")) {
        SL_AP_BUF_LIT(out, ",\"tool_choice\":{\"type\":\"none\"}");
        return 0;
    }
    if (tc >= 0 && sl_json_str_eq(d, tc, "required")) {
        SL_AP_BUF_LIT(out, ",\"tool_choice\":{\"type\":\"any\"");
    } else if (tc >= 0 && d->t[tc].type == SL_J_OBJ) {
        int name = sl_json_get_t(d, sl_json_get_t(d, tc, "function", SL_J_OBJ), "name", SL_J_STR);

        if (name < 0) {
            return sl_ac_fail(info, 400, "tool_choice: function.name required");
        }
        SL_AP_BUF_LIT(out, ",\"tool_choice\":{\"type\":\"tool\",\"name\":");
        sl_ac_raw(out, d, name);
    } else if (no_parallel) {
        SL_AP_BUF_LIT(out, ",\"tool_choice\":{\"type\":\"auto\"");
    } else {
        return 0; /* auto is Anthropic's default */
    }
    if (no_parallel) {
        SL_AP_BUF_LIT(out, ",\"disable_parallel_tool_use\":true");
    }
    sl_ap_buf_addc(out, '}');
    return 0;
}

static int
sl_ac_from_openai(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *d,
                  sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    int rc, msgs, model, tok, so, n = 0;
    int64_t v, budget;

    info->status = 400;
    rc = sl_json_parse(d, body, len);
    if (rc == -2) {
        return -2;
    }
    if (rc != 0 || d->t[0].type != SL_J_OBJ) {
        return sl_ac_fail(info, 400,
                          "content-type header does not match request body, or bad JSON "
                          "formatting");
    }
    if (sl_ap_policy_dups(t, d, info) != 0) {
        return -1;
    }
    msgs = sl_json_get_t(d, 0, "messages", SL_J_ARR);
    if (msgs < 0) {
        return sl_ac_fail(info, 400, "request body doesn't contain valid prompts");
    }
    model = sl_json_get(d, 0, "model");
    if (model >= 0 && d->t[model].type == SL_J_STR && d->t[model].len > 0) {
        if (t->model_name && !sl_json_str_eq(d, model, t->model_name) &&
            !(t->model_alias && sl_json_str_eq(d, model, t->model_alias))) {
            snprintf(info->errmsg, sizeof(info->errmsg), "cannot use own model - must be: %s",
                     t->model_name);
            return -1;
        }
        info->model =
            t->model_name ? (sl_str_t){t->model_name, strlen(t->model_name)} : sl_json_sv(d, model);
    } else if (t->model_name) {
        info->model = (sl_str_t){t->model_name, strlen(t->model_name)};
    } else {
        return sl_ac_fail(info, 400,
                          "model parameter not found in request, nor in gateway configuration");
    }
    tok = sl_json_get(d, 0, "stream");
    info->stream = tok >= 0 && d->t[tok].type == SL_J_TRUE;
    if (info->stream && t->response_streaming == SL_AP_STREAM_DENY) {
        return sl_ac_fail(info, 400, "response streaming is not enabled for this LLM");
    }
    if (t->response_streaming == SL_AP_STREAM_ALWAYS) {
        info->stream = 1;
    }
    so = sl_json_get_t(d, 0, "stream_options", SL_J_OBJ);
    tok = sl_json_get(d, so, "include_usage");
    info->include_usage = tok >= 0 && d->t[tok].type == SL_J_TRUE;
    tok = sl_json_get(d, 0, "n");
    if (tok >= 0 && sl_json_int(d, tok, &v) == 0 && v > 1) {
        return sl_ac_fail(info, 400, "n: only one choice can come from the anthropic provider");
    }
    tok = sl_json_get_t(d, 0, "response_format", SL_J_OBJ);
    if (tok >= 0 && !sl_json_str_eq(d, sl_json_get_t(d, tok, "type", SL_J_STR), "text")) {
        return sl_ac_fail(info, 400,
                          "response_format: not supported yet by sluice with the anthropic "
                          "provider");
    }

    SL_AP_BUF_LIT(out, "{\"model\":");
    sl_ap_buf_add_qstr(out, info->model.ptr, info->model.len);
    /* system and developer messages, in order */
    for (int m = msgs + 1; m < SL_JSON_END(d, msgs); m = SL_JSON_NEXT(d, m)) {
        if (d->t[m].type == SL_J_OBJ && sl_ac_is_system(d, m)) {
            if (n == 0) {
                SL_AP_BUF_LIT(out, ",\"system\":[");
            }
            sl_ac_text_blocks(out, d, sl_json_get(d, m, "content"), &n);
        }
    }
    if (n > 0) {
        sl_ap_buf_addc(out, ']');
    }
    if (sl_ac_messages(d, msgs, out, info) != 0) {
        return out->oom ? -2 : -1;
    }
    if (sl_ap_reasoning_budget(d, sl_json_get(d, 0, "reasoning_effort"), &budget, info) != 0) {
        return -1;
    }
    if (budget > 0 && sl_ac_tool_turn(d, msgs)) {
        budget = -1;
    }
    /* max_tokens: Anthropic requires it */
    if (t->max_tokens >= 0) {
        v = t->max_tokens;
    } else if (sl_json_int(d, sl_json_get(d, 0, "max_completion_tokens"), &v) != 0 &&
               sl_json_int(d, sl_json_get(d, 0, "max_tokens"), &v) != 0) {
        v = SL_AC_DEFAULT_MAX_TOKENS + (budget > 0 ? budget : 0);
    }
    sl_ap_buf_addf(out, ",\"max_tokens\":%lld", (long long)v);
    if (budget > 0) {
        budget = budget < v ? budget : v - 1;
        if (budget < SL_AC_MIN_BUDGET) {
            return sl_ac_fail(info, 400,
                              "reasoning_effort: max_tokens must be above 1024 to leave room for "
                              "thinking");
        }
        sl_ap_buf_addf(out, ",\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":%lld}",
                       (long long)budget);
    }
    if (t->temperature >= 0) {
        sl_ap_buf_addf(out, ",\"temperature\":%.15g", t->temperature);
    } else if ((tok = sl_json_get_t(d, 0, "temperature", SL_J_NUM)) >= 0) {
        SL_AP_BUF_LIT(out, ",\"temperature\":");
        sl_ac_raw(out, d, tok);
    }
    if (t->top_p >= 0) {
        sl_ap_buf_addf(out, ",\"top_p\":%.15g", t->top_p);
    } else if ((tok = sl_json_get_t(d, 0, "top_p", SL_J_NUM)) >= 0) {
        SL_AP_BUF_LIT(out, ",\"top_p\":");
        sl_ac_raw(out, d, tok);
    }
    if (t->top_k >= 0) {
        sl_ap_buf_addf(out, ",\"top_k\":%lld", (long long)t->top_k);
    }
    tok = sl_json_get(d, 0, "stop");
    if (tok >= 0 && d->t[tok].type == SL_J_STR) {
        SL_AP_BUF_LIT(out, ",\"stop_sequences\":[");
        sl_ac_raw(out, d, tok);
        sl_ap_buf_addc(out, ']');
    } else if (tok >= 0 && d->t[tok].type == SL_J_ARR && SL_JSON_END(d, tok) > tok + 1) {
        SL_AP_BUF_LIT(out, ",\"stop_sequences\":");
        sl_ac_raw(out, d, tok);
    }
    tok = sl_json_get_t(d, 0, "user", SL_J_STR);
    if (tok >= 0) {
        SL_AP_BUF_LIT(out, ",\"metadata\":{\"user_id\":");
        sl_ac_raw(out, d, tok);
        sl_ap_buf_addc(out, '}');
    }
    if (sl_ac_tools(d, out, info) != 0) {
        return -1;
    }
    if (info->stream) {
        SL_AP_BUF_LIT(out, ",\"stream\":true");
    }
    sl_ap_buf_addc(out, '}');
    info->input_estimate = sl_ap_estimate_tokens(d);
    info->status = 0;
    return out->oom ? -2 : 0;
}

/* Anthropic stop_reason -> OpenAI finish_reason. */
static const char *
sl_ac_finish(const sl_jdoc_t *d, int sr)
{
    if (sl_json_str_eq(d, sr, "max_tokens")) {
        return "length";
    }
    if (sl_json_str_eq(d, sr, "tool_use")) {
        return "tool_calls";
    }
    if (sl_json_str_eq(d, sr, "refusal")) {
        return "content_filter";
    }
    return "stop"; /* end_turn, stop_sequence, pause_turn, ... */
}

/* Anthropic usage -> OpenAI usage object (prompt = all three input counts). */
static void
sl_ac_usage_json(sl_ap_buf_t *out, const sl_ap_usage_t *u)
{
    sl_ap_buf_addf(out,
                   "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":%lld}",
                   (long long)u->prompt, (long long)u->completion,
                   (long long)(u->prompt + u->completion), (long long)u->cached);
    if (u->created > 0) {
        sl_ap_buf_addf(out, ",\"cache_creation_input_tokens\":%lld", (long long)u->created);
    }
    sl_ap_buf_addc(out, '}');
}

static int
sl_ac_decode_json(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *d,
                  sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    int content, tok, n = 0, ntools = 0, nthink = 0;
    sl_str_t id = {"", 0};

    (void)t;
    if (sl_json_parse(d, body, len) != 0 || d->t[0].type != SL_J_OBJ ||
        (content = sl_json_get_t(d, 0, "content", SL_J_ARR)) < 0) {
        return -1;
    }
    sl_ap_usage_from_json(d, sl_json_get_t(d, 0, "usage", SL_J_OBJ), u);
    tok = sl_json_get_t(d, 0, "model", SL_J_STR);
    if (tok >= 0 && d->t[tok].len < sizeof(u->response_model)) {
        memcpy(u->response_model, d->src + d->t[tok].start, d->t[tok].len);
        u->response_model[d->t[tok].len] = '\0';
    }
    if ((tok = sl_json_get_t(d, 0, "id", SL_J_STR)) >= 0) {
        id = sl_json_sv(d, tok);
    }
    SL_AP_BUF_LIT(out, "{\"id\":\"chatcmpl-");
    sl_ap_buf_add(out, id.ptr, id.len);
    sl_ap_buf_addf(out, "\",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                   (long long)time(NULL));
    tok = sl_json_get_t(d, 0, "model", SL_J_STR);
    if (tok >= 0) {
        sl_ac_raw(out, d, tok);
    } else {
        SL_AP_BUF_LIT(out, "\"\"");
    }
    SL_AP_BUF_LIT(out,
                  ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    /* text blocks joined */
    for (int b = content + 1; b < SL_JSON_END(d, content); b = SL_JSON_NEXT(d, b)) {
        int ty = sl_json_get_t(d, b, "type", SL_J_STR);
        int tx = sl_json_get_t(d, b, "text", SL_J_STR);

        if (sl_json_str_eq(d, ty, "text") && tx >= 0) {
            if (n++ == 0) {
                sl_ap_buf_addc(out, '"'); /* blocks joined as they are: one text */
            }
            sl_ap_buf_add(out, d->src + d->t[tx].start, d->t[tx].len);
        } else if (sl_json_str_eq(d, ty, "tool_use")) {
            ntools++;
        } else if (sl_json_str_eq(d, ty, "thinking")) {
            nthink++;
        }
    }
    if (n) {
        sl_ap_buf_addc(out, '"');
    } else {
        SL_AP_BUF_LIT(out, "null");
    }
    if (nthink) {
        int k = 0;

        SL_AP_BUF_LIT(out, ",\"reasoning_content\":\"");
        for (int b = content + 1; b < SL_JSON_END(d, content); b = SL_JSON_NEXT(d, b)) {
            int tx = sl_json_get_t(d, b, "thinking", SL_J_STR);

            if (sl_json_str_eq(d, sl_json_get_t(d, b, "type", SL_J_STR), "thinking") && tx >= 0) {
                if (k++) {
                    SL_AP_BUF_LIT(out, "\\n\\n");
                }
                sl_ap_buf_add(out, d->src + d->t[tx].start, d->t[tx].len);
            }
        }
        sl_ap_buf_addc(out, '"');
    }
    if (ntools) {
        int k = 0;

        SL_AP_BUF_LIT(out, ",\"tool_calls\":[");
        for (int b = content + 1; b < SL_JSON_END(d, content); b = SL_JSON_NEXT(d, b)) {
            int in;
            sl_str_t r;

            if (!sl_json_str_eq(d, sl_json_get_t(d, b, "type", SL_J_STR), "tool_use")) {
                continue;
            }
            if (k++) {
                sl_ap_buf_addc(out, ',');
            }
            SL_AP_BUF_LIT(out, "{\"id\":");
            tok = sl_json_get_t(d, b, "id", SL_J_STR);
            if (tok >= 0) {
                sl_ac_raw(out, d, tok);
            } else {
                sl_ap_buf_addf(out, "\"call_%d\"", k);
            }
            SL_AP_BUF_LIT(out, ",\"type\":\"function\",\"function\":{\"name\":");
            tok = sl_json_get_t(d, b, "name", SL_J_STR);
            if (tok >= 0) {
                sl_ac_raw(out, d, tok);
            } else {
                SL_AP_BUF_LIT(out, "\"\"");
            }
            SL_AP_BUF_LIT(out, ",\"arguments\":");
            in = sl_json_get(d, b, "input");
            r = in >= 0 ? sl_json_raw(d, in) : (sl_str_t){"{}", 2};
            sl_ap_buf_add_qstr(out, r.ptr, r.len);
            SL_AP_BUF_LIT(out, "}}");
        }
        sl_ap_buf_addc(out, ']');
    }
    SL_AP_BUF_LIT(out, "},\"finish_reason\":\"");
    sl_ap_buf_adds(out, sl_ac_finish(d, sl_json_get_t(d, 0, "stop_reason", SL_J_STR)));
    SL_AP_BUF_LIT(out, "\"}],\"usage\":");
    sl_ac_usage_json(out, u);
    sl_ap_buf_addc(out, '}');
    return out->oom ? -2 : 0;
}

/* ------------------------------------------------------------- streaming */

typedef struct sl_ac_stream {
    sl_sse_t sse;
    sl_jdoc_t doc;
    sl_ap_buf_t *out;
    sl_ap_usage_t *u;
    sl_ap_usage_t usage;
    char id[96];
    char model[128];
    long long created;
    int include_usage;
    int started;    /* the role chunk went out */
    int finished;   /* finish_reason chunk went out */
    int ended;      /* [DONE] or an error went out */
    int tool_index; /* OpenAI index of the open tool_use block; -1 */
    int ntools;
    int64_t gen_tokens;
} sl_ac_stream_t;

static void
sl_ac_stream_init(void *st_, const sl_ap_target_t *t, const sl_ap_req_info_t *info,
                  size_t max_event)
{
    sl_ac_stream_t *s = st_;

    (void)t;
    s->sse.max = max_event;
    s->include_usage = info ? info->include_usage : 0;
    s->created = (long long)time(NULL);
    s->tool_index = -1;
    if (info && info->model.len) {
        snprintf(s->model, sizeof(s->model), "%.*s",
                 (int)(info->model.len < sizeof(s->model) ? info->model.len : sizeof(s->model) - 1),
                 info->model.ptr);
    }
    snprintf(s->id, sizeof(s->id), "chatcmpl-sluice");
}

/* data: {"id":..,"object":"chat.completion.chunk",...,"choices":[ */
static void
sl_ac_chunk_head(sl_ac_stream_t *s)
{
    sl_ap_oai_chunk_head(s->out, &(sl_ap_oai_head_t){s->id, s->created, s->model});
}

/* A chunk whose delta is `delta` (JSON object text) with finish `fin`. */
static void
sl_ac_delta(sl_ac_stream_t *s, const char *delta_open, const sl_str_t *str, const char *delta_close,
            const char *fin)
{
    sl_ap_oai_chunk(s->out, &(sl_ap_oai_head_t){s->id, s->created, s->model}, delta_open, str,
                    delta_close, fin);
}

static void
sl_ac_start(sl_ac_stream_t *s)
{
    if (!s->started) {
        s->started = 1;
        sl_ac_delta(s, "{\"role\":\"assistant\",\"content\":\"\"}", NULL, "", NULL);
    }
}

static void
sl_ac_error(sl_ac_stream_t *s, const char *type, sl_str_t msg_json)
{
    SL_AP_BUF_LIT(s->out, "data: {\"error\":{\"message\":");
    sl_ap_buf_add(s->out, msg_json.ptr, msg_json.len);
    SL_AP_BUF_LIT(s->out, ",\"type\":\"");
    sl_ap_buf_adds(s->out, type);
    SL_AP_BUF_LIT(s->out, "\",\"param\":null,\"code\":null}}\n\n");
    s->ended = 1;
}

static void
sl_ac_done(sl_ac_stream_t *s)
{
    if (s->include_usage) {
        sl_ac_chunk_head(s);
        SL_AP_BUF_LIT(s->out, "],\"usage\":");
        sl_ac_usage_json(s->out, &s->usage);
        SL_AP_BUF_LIT(s->out, "}\n\n");
    }
    SL_AP_BUF_LIT(s->out, "data: [DONE]\n\n");
    s->ended = 1;
}

static int
sl_ac_event(void *ud, const char *data, size_t len)
{
    sl_ac_stream_t *s = ud;
    sl_jdoc_t *d = &s->doc;
    int type, tok, delta;

    if (s->ended) {
        return 0;
    }
    if (sl_json_parse(d, data, len) != 0 || d->t[0].type != SL_J_OBJ) {
        sl_ac_error(s, "api_error", (sl_str_t)SL_STR("\"upstream sent an invalid stream event\""));
        return -1;
    }
    type = sl_json_get_t(d, 0, "type", SL_J_STR);
    if (sl_json_str_eq(d, type, "message_start")) {
        int msg = sl_json_get_t(d, 0, "message", SL_J_OBJ);

        tok = sl_json_get_t(d, msg, "id", SL_J_STR);
        if (tok >= 0 && d->t[tok].len < sizeof(s->id) - 10) {
            snprintf(s->id, sizeof(s->id), "chatcmpl-%.*s", (int)d->t[tok].len,
                     d->src + d->t[tok].start);
        }
        tok = sl_json_get_t(d, msg, "model", SL_J_STR);
        if (tok >= 0 && d->t[tok].len < sizeof(s->model)) {
            memcpy(s->model, d->src + d->t[tok].start, d->t[tok].len);
            s->model[d->t[tok].len] = '\0';
            memcpy(s->usage.response_model, s->model, d->t[tok].len + 1);
        }
        sl_ap_usage_from_json(d, sl_json_get_t(d, msg, "usage", SL_J_OBJ), &s->usage);
        sl_ac_start(s);
    } else if (sl_json_str_eq(d, type, "content_block_start")) {
        int cb = sl_json_get_t(d, 0, "content_block", SL_J_OBJ);

        sl_ac_start(s);
        if (sl_json_str_eq(d, sl_json_get_t(d, cb, "type", SL_J_STR), "tool_use")) {
            int id = sl_json_get_t(d, cb, "id", SL_J_STR);
            int name = sl_json_get_t(d, cb, "name", SL_J_STR);
            sl_ap_buf_t tmp = {0};

            s->tool_index = s->ntools++;
            sl_ap_buf_addf(&tmp, "{\"tool_calls\":[{\"index\":%d,\"id\":", s->tool_index);
            if (id >= 0) {
                sl_str_t r = sl_json_raw(d, id);
                sl_ap_buf_add(&tmp, r.ptr, r.len);
            } else {
                sl_ap_buf_addf(&tmp, "\"call_%d\"", s->tool_index);
            }
            SL_AP_BUF_LIT(&tmp, ",\"type\":\"function\",\"function\":{\"name\":");
            if (name >= 0) {
                sl_str_t r = sl_json_raw(d, name);
                sl_ap_buf_add(&tmp, r.ptr, r.len);
            } else {
                SL_AP_BUF_LIT(&tmp, "\"\"");
            }
            SL_AP_BUF_LIT(&tmp, ",\"arguments\":\"\"}}]}");
            sl_ap_buf_addc(&tmp, '\0');
            if (!tmp.oom) {
                sl_ac_delta(s, tmp.ptr, NULL, "", NULL);
            } else {
                s->out->oom = 1;
            }
            sl_ap_buf_free(&tmp);
        } else {
            s->tool_index = -1;
        }
    } else if (sl_json_str_eq(d, type, "content_block_delta")) {
        delta = sl_json_get_t(d, 0, "delta", SL_J_OBJ);
        sl_ac_start(s);
        if ((tok = sl_json_get_t(d, delta, "text", SL_J_STR)) >= 0) {
            sl_str_t v = sl_json_sv(d, tok);

            s->gen_tokens += sl_ap_text_tokens(v.ptr, v.len);
            sl_ac_delta(s, "{\"content\":\"", &v, "\"}", NULL);
        } else if ((tok = sl_json_get_t(d, delta, "thinking", SL_J_STR)) >= 0) {
            sl_str_t v = sl_json_sv(d, tok);

            s->gen_tokens += sl_ap_text_tokens(v.ptr, v.len);
            sl_ac_delta(s, "{\"reasoning_content\":\"", &v, "\"}", NULL);
        } else if ((tok = sl_json_get_t(d, delta, "partial_json", SL_J_STR)) >= 0 &&
                   s->tool_index >= 0 && d->t[tok].len > 0) {
            sl_str_t v = sl_json_sv(d, tok);
            char open[64];

            s->gen_tokens += sl_ap_text_tokens(v.ptr, v.len);
            snprintf(open, sizeof(open),
                     "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":\"",
                     s->tool_index);
            sl_ac_delta(s, open, &v, "\"}}]}", NULL);
        }
    } else if (sl_json_str_eq(d, type, "content_block_stop")) {
        s->tool_index = -1;
    } else if (sl_json_str_eq(d, type, "message_delta")) {
        sl_ap_usage_t prev = s->usage;
        int u = sl_json_get_t(d, 0, "usage", SL_J_OBJ);

        if (u >= 0) {
            sl_ap_usage_from_json(d, u, &s->usage);
            if (sl_json_get(d, u, "input_tokens") < 0) {
                s->usage.prompt = prev.prompt;
                s->usage.cached = prev.cached;
                s->usage.created = prev.created;
                s->usage.total = s->usage.prompt + s->usage.completion;
            }
        }
        delta = sl_json_get_t(d, 0, "delta", SL_J_OBJ);
        tok = sl_json_get_t(d, delta, "stop_reason", SL_J_STR);
        if (tok >= 0 && !s->finished) {
            sl_ac_start(s);
            s->finished = 1;
            sl_ac_delta(s, "{}", NULL, "", sl_ac_finish(d, tok));
        }
    } else if (sl_json_str_eq(d, type, "message_stop")) {
        sl_ac_start(s);
        if (!s->finished) {
            s->finished = 1;
            sl_ac_delta(s, "{}", NULL, "", "stop");
        }
        sl_ac_done(s);
    } else if (sl_json_str_eq(d, type, "error")) {
        int e = sl_json_get_t(d, 0, "error", SL_J_OBJ);
        int m = sl_json_get_t(d, e, "message", SL_J_STR);
        int ty = sl_json_get_t(d, e, "type", SL_J_STR);
        char tyb[64] = "api_error";

        if (ty >= 0 && d->t[ty].len < sizeof(tyb)) {
            memcpy(tyb, d->src + d->t[ty].start, d->t[ty].len);
            tyb[d->t[ty].len] = '\0';
        }
        sl_ac_error(s, tyb, m >= 0 ? sl_json_raw(d, m) : (sl_str_t)SL_STR("\"upstream error\""));
    }
    /* ping and unknown events: nothing */
    return 0;
}

static int
sl_ac_stream_feed(void *st_, const char *p, size_t n, int eof, sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    sl_ac_stream_t *s = st_;
    int rc;

    s->out = out;
    rc = sl_sse_feed(&s->sse, p, n, eof, sl_ac_event, s);
    if (rc == -2) {
        return -2;
    }
    if (rc == SL_SSE_TOO_BIG && !s->ended) {
        sl_ac_error(s, "api_error", (sl_str_t)SL_STR("\"upstream stream event too large\""));
    }
    if (eof && !s->ended) {
        sl_ac_error(s, "api_error",
                    (sl_str_t)SL_STR("\"upstream stream ended before message_stop\""));
        rc = -1;
    }
    s->usage.out_chars_tokens = s->gen_tokens;
    *u = s->usage;
    return out->oom ? -2 : (rc < 0 ? -1 : 0);
}

static void
sl_ac_stream_free(void *st_)
{
    sl_ac_stream_t *s = st_;

    sl_sse_free(&s->sse);
    sl_json_free(&s->doc);
}

const sl_ap_codec_t sl_ap_codec_anthropic = {
    sl_ac_from_openai,
    NULL, /* an Anthropic client is passed through */
    NULL, /* nothing per request beyond URL, auth and anthropic-version */
    sl_ac_decode_json,
    sizeof(sl_ac_stream_t),
    sl_ac_stream_init,
    sl_ac_stream_feed,
    sl_ac_stream_free,
    /* no fast path straight to Anthropic: an Anthropic client is passed through */
    NULL,
    0,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};
