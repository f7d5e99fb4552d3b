/* cohere.c - the cohere provider's codec: Cohere's v2 Chat API
 * (POST /v2/chat, https://api.cohere.com, Authorization: Bearer), against
 * the pivot (OpenAI chat).  An Anthropic client goes through the pivot
 * (anthropic_request.c, then this encoder; the answers back through
 * anthropic_response.c / anthropic_stream.c).
 *
 * Request (OpenAI -> Cohere v2), after the gateway's policy
 * (sl_ap_openai_request: model, options, stream, body credential):
 *   messages            same roles (developer -> system), content strings
 *                       and text / image_url parts as they are, assistant
 *                       tool_calls and tool messages' tool_call_id as they
 *                       are (v2 took OpenAI's shapes); name, refusal,
 *                       reasoning_content dropped
 *   tools               as they are ({type: function, function: {...}})
 *   tool_choice         required -> REQUIRED, none -> NONE, a named
 *                       function -> REQUIRED (v2 cannot name one), auto:
 *                       omitted
 *   max_tokens / max_completion_tokens -> max_tokens; top_p -> p; top_k
 *   -> k; stop -> stop_sequences; temperature, seed, frequency_penalty,
 *   presence_penalty as they are; response_format json_object /
 *   json_schema -> {type: json_object[, json_schema]}
 *   stream_options      read (include_usage), not sent
 *   reasoning_effort    thinking {type: enabled, token_budget} (reasoning.c);
 *                       "none": {type: disabled}
 *   dropped             user, logit_bias, logprobs, parallel_tool_calls,
 *                       store, service_tier, metadata, ...
 *   refused (400)       n > 1
 * Answer: message.content text parts joined -> content, thinking parts ->
 * reasoning_content, tool_plan -> reasoning_content (the model's plan
 * before its calls), tool_calls as they are; finish_reason COMPLETE /
 * STOP_SEQUENCE -> stop, MAX_TOKENS -> length, TOOL_CALL -> tool_calls,
 * ERROR_TOXIC -> content_filter; usage from usage.billed_units (Kong),
 * else usage.tokens.
 * Stream (SSE, typed events, no terminator): message-start -> the role
 * chunk; content-delta text / thinking -> content / reasoning_content;
 * tool-plan-delta -> reasoning_content; tool-call-start / -delta ->
 * tool_calls deltas; message-end -> the finish_reason chunk, the usage
 * chunk when asked, [DONE].  A stream that ends before message-end, or
 * whose message-end says ERROR, ends with data: {"error":...}.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ai_proxy.h"

static int
sl_co_fail(sl_ap_req_info_t *info, const char *msg)
{
    info->status = 400;
    snprintf(info->errmsg, sizeof(info->errmsg), "%s", msg);
    return -1;
}

static void
sl_co_raw(sl_ap_buf_t *out, const sl_jdoc_t *d, int tok)
{
    sl_str_t r = sl_json_raw(d, tok);

    sl_ap_buf_add(out, r.ptr, r.len);
}

/* ,"key": */
static void
sl_co_key(sl_ap_buf_t *out, int *n, const char *key)
{
    if ((*n)++) {
        sl_ap_buf_addc(out, ',');
    }
    sl_ap_buf_addc(out, '"');
    sl_ap_buf_adds(out, key);
    SL_AP_BUF_LIT(out, "\":");
}

static int
sl_co_messages(const sl_jdoc_t *d, int msgs, sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    int m, k, n = 0;

    sl_ap_buf_addc(out, '[');
    for (m = msgs + 1; m < SL_JSON_END(d, msgs); m = SL_JSON_NEXT(d, m)) {
        int role = sl_json_get_t(d, m, "role", SL_J_STR), f = 0;

        if (d->t[m].type != SL_J_OBJ || role < 0) {
            return sl_co_fail(info, "messages: each message needs a role");
        }
        if (n++) {
            sl_ap_buf_addc(out, ',');
        }
        sl_ap_buf_addc(out, '{');
        for (k = m + 1; k < SL_JSON_END(d, m); k = SL_JSON_NEXT_MEMBER(d, k)) {
            if (sl_json_str_eq(d, k, "role")) {
                sl_co_key(out, &f, "role");
                if (sl_json_str_eq(d, k + 1, "developer")) {
                    SL_AP_BUF_LIT(out, "\"system\"");
                } else {
                    sl_co_raw(out, d, k + 1);
                }
            } else if ((sl_json_str_eq(d, k, "content") && d->t[k + 1].type != SL_J_NULL) ||
                       sl_json_str_eq(d, k, "tool_calls") || sl_json_str_eq(d, k, "tool_call_id")) {
                if (f++) {
                    sl_ap_buf_addc(out, ',');
                }
                sl_co_raw(out, d, k);
                sl_ap_buf_addc(out, ':');
                sl_co_raw(out, d, k + 1);
            }
        }
        sl_ap_buf_addc(out, '}');
    }
    sl_ap_buf_addc(out, ']');
    return 0;
}

static int
sl_co_from_openai(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *d,
                  sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    sl_ap_buf_t mid = {0};
    int rc, k, n = 0, have_max = 0;
    int64_t v, budget;

    rc = sl_ap_openai_request(t, body, len, d, &mid, info);
    if (rc == 0 && mid.oom) {
        rc = -2;
    }
    if (rc == 0) {
        info->input_estimate = sl_ap_text_tokens(body, len);
        rc = sl_json_parse(d, mid.ptr, mid.len) == 0 ? 0 : -2; /* our own output */
    }
    if (rc != 0) {
        sl_ap_buf_free(&mid);
        return rc;
    }
    k = sl_json_get(d, 0, "n");
    if (k >= 0 && sl_json_int(d, k, &v) == 0 && v > 1) {
        sl_ap_buf_free(&mid);
        return sl_co_fail(info, "n: only one choice can come from the cohere provider");
    }
    if (sl_ap_reasoning_budget(d, sl_json_get(d, 0, "reasoning_effort"), &budget, info) != 0) {
        sl_ap_buf_free(&mid);
        return -1;
    }
    have_max = sl_json_get_t(d, 0, "max_tokens", SL_J_NUM) >= 0;
    sl_ap_buf_addc(out, '{');
    for (k = 1; k < SL_JSON_END(d, 0); k = SL_JSON_NEXT_MEMBER(d, k)) {
        int val = k + 1;

        if (sl_json_str_eq(d, k, "messages") && d->t[val].type == SL_J_ARR) {
            sl_co_key(out, &n, "messages");
            if (sl_co_messages(d, val, out, info) != 0) {
                sl_ap_buf_free(&mid);
                return -1;
            }
        } else if (sl_json_str_eq(d, k, "model") || sl_json_str_eq(d, k, "stream") ||
                   sl_json_str_eq(d, k, "tools") || sl_json_str_eq(d, k, "temperature") ||
                   sl_json_str_eq(d, k, "max_tokens") || sl_json_str_eq(d, k, "seed") ||
                   sl_json_str_eq(d, k, "frequency_penalty") ||
                   sl_json_str_eq(d, k, "presence_penalty") ||
                   (t->param_location == SL_AP_PARAM_BODY && t->param_name &&
                    sl_json_str_eq(d, k, t->param_name))) {
            if (n++) {
                sl_ap_buf_addc(out, ',');
            }
            sl_co_raw(out, d, k);
            sl_ap_buf_addc(out, ':');
            sl_co_raw(out, d, val);
        } else if (sl_json_str_eq(d, k, "max_completion_tokens") && !have_max) {
            sl_co_key(out, &n, "max_tokens");
            sl_co_raw(out, d, val);
        } else if (sl_json_str_eq(d, k, "top_p")) {
            sl_co_key(out, &n, "p");
            sl_co_raw(out, d, val);
        } else if (sl_json_str_eq(d, k, "top_k")) {
            sl_co_key(out, &n, "k");
            sl_co_raw(out, d, val);
        } else if (sl_json_str_eq(d, k, "stop") && d->t[val].type == SL_J_STR) {
            sl_co_key(out, &n, "stop_sequences");
            sl_ap_buf_addc(out, '[');
            sl_co_raw(out, d, val);
            sl_ap_buf_addc(out, ']');
        } else if (sl_json_str_eq(d, k, "stop") && d->t[val].type == SL_J_ARR) {
            sl_co_key(out, &n, "stop_sequences");
            sl_co_raw(out, d, val);
        } else if (sl_json_str_eq(d, k, "tool_choice")) {
            if (sl_json_str_eq(d, val, "none")) {
                sl_co_key(out, &n, "tool_choice");
                SL_AP_BUF_LIT(out, "\"NONE\"");
            } else if (sl_json_str_eq(d, val, "required") || d->t[val].type == SL_J_OBJ) {
                sl_co_key(out, &n, "tool_choice");
                SL_AP_BUF_LIT(out, "\"REQUIRED\"");
            }
        } else if (sl_json_str_eq(d, k, "response_format") && d->t[val].type == SL_J_OBJ) {
            int ty = sl_json_get_t(d, val, "type", SL_J_STR);

            if (sl_json_str_eq(d, ty, "json_object")) {
                sl_co_key(out, &n, "response_format");
                SL_AP_BUF_LIT(out, "{\"type\":\"json_object\"}");
            } else if (sl_json_str_eq(d, ty, "json_schema")) {
                int js = sl_json_get_t(d, val, "json_schema", SL_J_OBJ);
                int sc = sl_json_get_t(d, js, "schema", SL_J_OBJ);

                sl_co_key(out, &n, "response_format");
                SL_AP_BUF_LIT(out, "{\"type\":\"json_object\"");
                if (sc >= 0) {
                    SL_AP_BUF_LIT(out, ",\"json_schema\":");
                    sl_co_raw(out, d, sc);
                }
                sl_ap_buf_addc(out, '}');
            }
        } else if (sl_json_str_eq(d, k, "stream_options") && d->t[val].type == SL_J_OBJ) {
            int iu = sl_json_get(d, val, "include_usage");

            info->include_usage = iu >= 0 && d->t[iu].type == SL_J_TRUE;
        }
        /* everything else has no v2 equivalent: dropped */
    }
    if (budget == 0) {
        sl_co_key(out, &n, "thinking");
        SL_AP_BUF_LIT(out, "{\"type\":\"disabled\"}");
    } else if (budget > 0) {
        sl_co_key(out, &n, "thinking");
        sl_ap_buf_addf(out, "{\"type\":\"enabled\",\"token_budget\":%lld}", (long long)budget);
    }
    sl_ap_buf_addc(out, '}');
    sl_ap_buf_free(&mid);
    info->status = 0;
    return out->oom ? -2 : 0;
}

/* v2 finish_reason -> OpenAI's. */
static const char *
sl_co_finish(const sl_jdoc_t *d, int fr)
{
    if (sl_json_str_eq(d, fr, "MAX_TOKENS")) {
        return "length";
    }
    if (sl_json_str_eq(d, fr, "TOOL_CALL")) {
        return "tool_calls";
    }
    if (sl_json_str_eq(d, fr, "ERROR_TOXIC")) {
        return "content_filter";
    }
    return "stop"; /* COMPLETE, STOP_SEQUENCE, ... */
}

/* usage.billed_units (Kong reads these), else usage.tokens. */
void
sl_ap_cohere_usage(const sl_jdoc_t *d, int usage, sl_ap_usage_t *u)
{
    int src = sl_json_get_t(d, usage, "billed_units", SL_J_OBJ);
    int64_t in = 0, outt = 0;

    if (src < 0 || sl_json_get(d, src, "input_tokens") < 0) {
        src = sl_json_get_t(d, usage, "tokens", SL_J_OBJ);
    }
    if (src < 0) {
        return;
    }
    if (sl_json_int(d, sl_json_get(d, src, "input_tokens"), &in) != 0) {
        double x;

        in = sl_json_num(d, sl_json_get(d, src, "input_tokens"), &x) == 0 ? (int64_t)x : 0;
    }
    if (sl_json_int(d, sl_json_get(d, src, "output_tokens"), &outt) != 0) {
        double x;

        outt = sl_json_num(d, sl_json_get(d, src, "output_tokens"), &x) == 0 ? (int64_t)x : 0;
    }
    u->have = 1;
    u->prompt = in;
    u->completion = outt;
    u->total = in + outt;
    sl_json_int(d, sl_json_get(d, usage, "cached_tokens"), &u->cached);
}

/* A preserved answer, passed untouched: chat's usage, or (embed, v1
 * chat) meta's billed_units / tokens. */
void
sl_ap_cohere_usage_body(const char *body, size_t len, sl_jdoc_t *d, sl_ap_usage_t *u)
{
    int usage;

    if (sl_json_parse(d, body, len) != 0 || d->t[0].type != SL_J_OBJ) {
        return;
    }
    usage = sl_json_get_t(d, 0, "usage", SL_J_OBJ);
    sl_ap_cohere_usage(d, usage >= 0 ? usage : sl_json_get_t(d, 0, "meta", SL_J_OBJ), u);
}

static void
sl_co_usage_json(sl_ap_buf_t *out, const sl_ap_usage_t *u)
{
    sl_ap_buf_addf(out,
                   "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
                   "\"prompt_tokens_details\":{\"cached_tokens\":%lld}}",
                   (long long)u->prompt, (long long)u->completion,
                   (long long)(u->prompt + u->completion), (long long)u->cached);
}

static int
sl_co_decode_json(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *d,
                  sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    int msg, content, tok, n = 0, nthink = 0, b;
    const char *model = t && t->model_name ? t->model_name : "";

    if (sl_json_parse(d, body, len) != 0 || d->t[0].type != SL_J_OBJ ||
        (msg = sl_json_get_t(d, 0, "message", SL_J_OBJ)) < 0) {
        return -1;
    }
    content = sl_json_get_t(d, msg, "content", SL_J_ARR);
    sl_ap_cohere_usage(d, sl_json_get_t(d, 0, "usage", SL_J_OBJ), u);
    snprintf(u->response_model, sizeof(u->response_model), "%s", model);
    SL_AP_BUF_LIT(out, "{\"id\":\"chatcmpl-");
    if ((tok = sl_json_get_t(d, 0, "id", SL_J_STR)) >= 0) {
        sl_str_t id = sl_json_sv(d, tok);

        sl_ap_buf_add(out, id.ptr, id.len);
    }
    sl_ap_buf_addf(out, "\",\"object\":\"chat.completion\",\"created\":%lld,\"model\":",
                   (long long)time(NULL));
    sl_ap_buf_add_qstr(out, model, strlen(model));
    SL_AP_BUF_LIT(out,
                  ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    for (b = content + 1; content >= 0 && b < SL_JSON_END(d, content); b = SL_JSON_NEXT(d, b)) {
        int ty = sl_json_get_t(d, b, "type", SL_J_STR);
        int tx = sl_json_get_t(d, b, "text", SL_J_STR);

        if (sl_json_str_eq(d, ty, "text") && tx >= 0) {
            if (n++ == 0) {
                sl_ap_buf_addc(out, '"');
            }
            sl_ap_buf_add(out, d->src + d->t[tx].start, d->t[tx].len);
        } else if (sl_json_str_eq(d, ty, "thinking")) {
            nthink++;
        }
    }
    if (n) {
        sl_ap_buf_addc(out, '"');
    } else {
        SL_AP_BUF_LIT(out, "null");
    }
    tok = sl_json_get_t(d, msg, "tool_plan", SL_J_STR);
    if (nthink || tok >= 0) {
        int k = 0;

        SL_AP_BUF_LIT(out, ",\"reasoning_content\":\"");
        for (b = content + 1; content >= 0 && b < SL_JSON_END(d, content); b = SL_JSON_NEXT(d, b)) {
            int tx = sl_json_get_t(d, b, "thinking", SL_J_STR);

            if (sl_json_str_eq(d, sl_json_get_t(d, b, "type", SL_J_STR), "thinking") && tx >= 0) {
                if (k++) {
                    SL_AP_BUF_LIT(out, "\\n\\n");
                }
                sl_ap_buf_add(out, d->src + d->t[tx].start, d->t[tx].len);
            }
        }
        if (tok >= 0) {
            if (k++) {
                SL_AP_BUF_LIT(out, "\\n\\n");
            }
            sl_ap_buf_add(out, d->src + d->t[tok].start, d->t[tok].len);
        }
        sl_ap_buf_addc(out, '"');
    }
    tok = sl_json_get_t(d, msg, "tool_calls", SL_J_ARR);
    if (tok >= 0 && SL_JSON_END(d, tok) > tok + 1) {
        SL_AP_BUF_LIT(out, ",\"tool_calls\":");
        sl_co_raw(out, d, tok);
    }
    SL_AP_BUF_LIT(out, "},\"finish_reason\":\"");
    sl_ap_buf_adds(out, sl_co_finish(d, sl_json_get_t(d, 0, "finish_reason", SL_J_STR)));
    SL_AP_BUF_LIT(out, "\"}],\"usage\":");
    sl_co_usage_json(out, u);
    sl_ap_buf_addc(out, '}');
    return out->oom ? -2 : 0;
}

/* ------------------------------------------------------------- streaming */

typedef struct sl_co_stream {
    sl_sse_t sse;
    sl_jdoc_t doc;
    sl_ap_buf_t *out;
    sl_ap_usage_t usage;
    char id[96];
    char model[128];
    long long created;
    int include_usage;
    int started;
    int ended;
    int ntools;
    int64_t gen_tokens;
} sl_co_stream_t;

static void
sl_co_stream_init(void *st_, const sl_ap_target_t *t, const sl_ap_req_info_t *info,
                  size_t max_event)
{
    sl_co_stream_t *s = st_;

    (void)t;
    s->sse.max = max_event;
    s->include_usage = info ? info->include_usage : 0;
    s->created = (long long)time(NULL);
    if (info && info->model.len) {
        snprintf(s->model, sizeof(s->model), "%.*s",
                 (int)(info->model.len < sizeof(s->model) ? info->model.len : sizeof(s->model) - 1),
                 info->model.ptr);
    }
    snprintf(s->id, sizeof(s->id), "chatcmpl-sluice");
}

/* One chunk: {"id",...,"choices":[{"index":0,"delta":<delta>,"finish_reason":<fin>}]} */
static void
sl_co_chunk(sl_co_stream_t *s, const char *d1, const sl_str_t *str, const char *d2, const char *fin)
{
    sl_ap_oai_chunk(s->out, &(sl_ap_oai_head_t){s->id, s->created, s->model}, d1, str, d2, fin);
}

static void
sl_co_start(sl_co_stream_t *s)
{
    if (!s->started) {
        s->started = 1;
        sl_co_chunk(s, "{\"role\":\"assistant\",\"content\":\"\"}", NULL, "", NULL);
    }
}

static void
sl_co_error(sl_co_stream_t *s, const char *msg_json)
{
    SL_AP_BUF_LIT(s->out, "data: {\"error\":{\"message\":");
    sl_ap_buf_adds(s->out, msg_json);
    SL_AP_BUF_LIT(s->out, ",\"type\":\"api_error\",\"param\":null,\"code\":null}}\n\n");
    s->ended = 1;
}

static int
sl_co_event(void *ud, const char *data, size_t len)
{
    sl_co_stream_t *s = ud;
    sl_jdoc_t *d = &s->doc;
    int type, delta, msg, tok;

    if (s->ended) {
        return 0;
    }
    if (sl_json_parse(d, data, len) != 0 || d->t[0].type != SL_J_OBJ) {
        sl_co_error(s, "\"upstream sent an invalid stream event\"");
        return -1;
    }
    type = sl_json_get_t(d, 0, "type", SL_J_STR);
    delta = sl_json_get_t(d, 0, "delta", SL_J_OBJ);
    msg = sl_json_get_t(d, delta, "message", SL_J_OBJ);
    if (sl_json_str_eq(d, type, "message-start")) {
        tok = sl_json_get_t(d, 0, "id", SL_J_STR);
        if (tok >= 0 && d->t[tok].len < sizeof(s->id) - 10) {
            snprintf(s->id, sizeof(s->id), "chatcmpl-%.*s", (int)d->t[tok].len,
                     d->src + d->t[tok].start);
        }
        sl_co_start(s);
    } else if (sl_json_str_eq(d, type, "content-delta")) {
        int c = sl_json_get_t(d, msg, "content", SL_J_OBJ);

        sl_co_start(s);
        if ((tok = sl_json_get_t(d, c, "text", SL_J_STR)) >= 0) {
            sl_str_t v = sl_json_sv(d, tok);

            s->gen_tokens += sl_ap_text_tokens(v.ptr, v.len);
            sl_co_chunk(s, "{\"content\":\"", &v, "\"}", NULL);
        } else if ((tok = sl_json_get_t(d, c, "thinking", SL_J_STR)) >= 0) {
            sl_str_t v = sl_json_sv(d, tok);

            s->gen_tokens += sl_ap_text_tokens(v.ptr, v.len);
            sl_co_chunk(s, "{\"reasoning_content\":\"", &v, "\"}", NULL);
        }
    } else if (sl_json_str_eq(d, type, "tool-plan-delta")) {
        sl_co_start(s);
        if ((tok = sl_json_get_t(d, msg, "tool_plan", SL_J_STR)) >= 0) {
            sl_str_t v = sl_json_sv(d, tok);

            sl_co_chunk(s, "{\"reasoning_content\":\"", &v, "\"}", NULL);
        }
    } else if (sl_json_str_eq(d, type, "tool-call-start")) {
        int tc = sl_json_get_t(d, msg, "tool_calls", SL_J_OBJ);
        int fn = sl_json_get_t(d, tc, "function", SL_J_OBJ);
        int id = sl_json_get_t(d, tc, "id", SL_J_STR);
        int name = sl_json_get_t(d, fn, "name", SL_J_STR);
        int args = sl_json_get_t(d, fn, "arguments", SL_J_STR);
        sl_ap_buf_t b = {0};

        sl_co_start(s);
        sl_ap_buf_addf(&b, "{\"tool_calls\":[{\"index\":%d,\"id\":", s->ntools++);
        if (id >= 0) {
            sl_co_raw(&b, d, id);
        } else {
            sl_ap_buf_addf(&b, "\"call_%d\"", s->ntools);
        }
        SL_AP_BUF_LIT(&b, ",\"type\":\"function\",\"function\":{\"name\":");
        if (name >= 0) {
            sl_co_raw(&b, d, name);
        } else {
            SL_AP_BUF_LIT(&b, "\"\"");
        }
        SL_AP_BUF_LIT(&b, ",\"arguments\":");
        if (args >= 0) {
            sl_co_raw(&b, d, args);
        } else {
            SL_AP_BUF_LIT(&b, "\"\"");
        }
        SL_AP_BUF_LIT(&b, "}}]}");
        sl_ap_buf_addc(&b, '\0');
        if (b.oom) {
            s->out->oom = 1;
        } else {
            sl_co_chunk(s, b.ptr, NULL, "", NULL);
        }
        sl_ap_buf_free(&b);
    } else if (sl_json_str_eq(d, type, "tool-call-delta") && s->ntools > 0) {
        int tc = sl_json_get_t(d, msg, "tool_calls", SL_J_OBJ);
        int fn = sl_json_get_t(d, tc, "function", SL_J_OBJ);

        if ((tok = sl_json_get_t(d, fn, "arguments", SL_J_STR)) >= 0 && d->t[tok].len > 0) {
            sl_str_t v = sl_json_sv(d, tok);
            char open[64];

            s->gen_tokens += sl_ap_text_tokens(v.ptr, v.len);
            snprintf(open, sizeof(open),
                     "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":\"",
                     s->ntools - 1);
            sl_co_chunk(s, open, &v, "\"}}]}", NULL);
        }
    } else if (sl_json_str_eq(d, type, "message-end")) {
        int fr = sl_json_get_t(d, delta, "finish_reason", SL_J_STR);

        sl_ap_cohere_usage(d, sl_json_get_t(d, delta, "usage", SL_J_OBJ), &s->usage);
        if (sl_json_str_eq(d, fr, "ERROR") || sl_json_str_eq(d, fr, "TIMEOUT")) {
            sl_co_error(s, "\"the model stopped with an error\"");
            return -1;
        }
        sl_co_start(s);
        sl_co_chunk(s, "{}", NULL, "", sl_co_finish(d, fr));
        if (s->include_usage) {
            SL_AP_BUF_LIT(s->out, "data: {\"id\":\"");
            sl_ap_buf_adds(s->out, s->id);
            sl_ap_buf_addf(
                s->out,
                "\",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":", s->created);
            sl_ap_buf_add_qstr(s->out, s->model, strlen(s->model));
            SL_AP_BUF_LIT(s->out, ",\"choices\":[],\"usage\":");
            sl_co_usage_json(s->out, &s->usage);
            SL_AP_BUF_LIT(s->out, "}\n\n");
        }
        SL_AP_BUF_LIT(s->out, "data: [DONE]\n\n");
        s->ended = 1;
    }
    /* content-start, content-end, tool-call-end, citations: nothing */
    return 0;
}

static int
sl_co_stream_feed(void *st_, const char *p, size_t n, int eof, sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    sl_co_stream_t *s = st_;
    int rc;

    s->out = out;
    rc = sl_sse_feed(&s->sse, p, n, eof, sl_co_event, s);
    if (rc == -2) {
        return -2;
    }
    if (rc == SL_SSE_TOO_BIG && !s->ended) {
        sl_co_error(s, "\"upstream stream event too large\"");
    }
    if (eof && !s->ended) {
        sl_co_error(s, "\"upstream stream ended before message-end\"");
        rc = -1;
    }
    s->usage.out_chars_tokens = s->gen_tokens;
    snprintf(s->usage.response_model, sizeof(s->usage.response_model), "%s", s->model);
    *u = s->usage;
    return out->oom ? -2 : (rc < 0 ? -1 : 0);
}

static void
sl_co_stream_free(void *st_)
{
    sl_co_stream_t *s = st_;

    sl_sse_free(&s->sse);
    sl_json_free(&s->doc);
}

const sl_ap_codec_t sl_ap_codec_cohere = {
    .from_openai = sl_co_from_openai,
    .decode_json = sl_co_decode_json,
    .stream_size = sizeof(sl_co_stream_t),
    .stream_init = sl_co_stream_init,
    .stream_feed = sl_co_stream_feed,
    .stream_free = sl_co_stream_free,
};
