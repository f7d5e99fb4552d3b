/* bedrock.c - Anthropic Messages <-> Bedrock Converse (non-streaming
 * answer; bedrock_stream.c translates ConverseStream).
 *
 * Request (Anthropic -> Converse):
 *   system + role:system messages    -> system[] {text} (+ {cachePoint}
 *                                       after a block marked cache_control,
 *                                       for models with prompt caching:
 *                                       anthropic.*, amazon.nova*)
 *   user / assistant                 -> messages[] (consecutive turns of one
 *                                       role merged: Converse wants them
 *                                       alternating)
 *   text                             -> {text} (empty ones dropped)
 *   image base64                     -> {image:{format,source:{bytes}}}
 *   document base64 pdf / text       -> {document:{format:pdf,...}} / {text}
 *   tool_use                         -> {toolUse:{toolUseId,name,input}}
 *   tool_result                      -> {toolResult:{toolUseId,content:
 *                                       [{text}|{image}],status:"error"?}}
 *   thinking (signed) / redacted     -> {reasoningContent:{reasoningText:
 *                                       {text,signature}}} / {redactedContent}
 *                                       for anthropic models (Claude on
 *                                       Bedrock signs as Anthropic does);
 *                                       dropped for others
 *   tools[] (custom)                 -> toolConfig.tools[] {toolSpec:{name,
 *                                       description,inputSchema:{json}}}
 *   tool_choice auto / any / tool    -> toolChoice {auto} / {any} / {tool}
 *   tool_choice none                 -> no toolChoice (Converse has none)
 *   max_tokens, temperature, top_p,
 *   stop_sequences                   -> inferenceConfig maxTokens,
 *                                       temperature, topP, stopSequences
 *   top_k, thinking (anthropic)      -> additionalModelRequestFields
 *                                       {top_k, thinking (verbatim)}
 *   metadata, disable_parallel_tool_use, server tools -> dropped
 * Refused: image url sources (Converse takes bytes), output_config.format.
 *
 * Response: output.message.content text / toolUse / reasoningContent ->
 * text / tool_use / thinking (with its signature) / redacted_thinking;
 * stopReason end_turn, tool_use, max_tokens, stop_sequence kept,
 * guardrail_intervened / content_filtered -> refusal; usage inputTokens
 * (uncached), cacheReadInputTokens, cacheWriteInputTokens, outputTokens.
 */

#include <stdio.h>
#include <string.h>

#include "native.h"

#define OUT(n, lit) SL_AP_BUF_LIT((n)->out, lit)

typedef struct {
    sl_ap_nat_t n;
    int anthropic; /* a Claude model: reasoning blocks, thinking, top_k */
    int caching;   /* cachePoint blocks accepted */
    int open_role; /* 0 none, 1 user, 2 assistant: the message being written */
    int nblk;      /* blocks written into it */
    int nmsg;
} sl_ap_br_t;

static int
sl_ap_b_block_type(const sl_jdoc_t *d, int b)
{
    return d->t[b].type == SL_J_OBJ ? sl_json_get_t(d, b, "type", SL_J_STR) : -1;
}

static int
sl_ap_b_marked(const sl_jdoc_t *d, int b)
{
    return d->t[b].type == SL_J_OBJ && sl_json_get_t(d, b, "cache_control", SL_J_OBJ) >= 0;
}

/* Open (or continue) a message of `role` and start a block. */
static void
sl_ap_b_block(sl_ap_br_t *b, int role)
{
    sl_ap_nat_t *n = &b->n;

    if (b->open_role != role) {
        if (b->open_role) {
            OUT(n, "]}");
        }
        sl_ap_buf_adds((n)->out, b->nmsg++ ? ",{\"role\":\"" : "{\"role\":\"");
        sl_ap_buf_adds(n->out, role == 1 ? "user" : "assistant");
        OUT(n, "\",\"content\":[");
        b->open_role = role;
        b->nblk = 0;
    }
    if (b->nblk++) {
        OUT(n, ",");
    }
}

static void
sl_ap_b_cache_point(sl_ap_br_t *b, int role, int blk)
{
    if (b->caching && sl_ap_b_marked(b->n.d, blk)) {
        sl_ap_b_block(b, role);
        OUT(&b->n, "{\"cachePoint\":{\"type\":\"default\"}}");
    }
}

/* image base64 -> {image:{format,source:{bytes}}} */
static int
sl_ap_b_image(sl_ap_br_t *b, int blk, const char *where, int role)
{
    sl_ap_nat_t *n = &b->n;
    const sl_jdoc_t *d = n->d;
    int src = sl_json_get_t(d, blk, "source", SL_J_OBJ);
    int mt = sl_json_get_t(d, src, "media_type", SL_J_STR);
    int data = sl_json_get_t(d, src, "data", SL_J_STR);
    const char *fmt = NULL;

    if (!sl_json_str_eq(d, sl_json_get_t(d, src, "type", SL_J_STR), "base64")) {
        return sl_ap_nat_fail(n, 400, "%s: the bedrock provider takes images as base64 data only",
                              where);
    }
    if (sl_json_str_eq(d, mt, "image/png")) {
        fmt = "png";
    } else if (sl_json_str_eq(d, mt, "image/jpeg")) {
        fmt = "jpeg";
    } else if (sl_json_str_eq(d, mt, "image/gif")) {
        fmt = "gif";
    } else if (sl_json_str_eq(d, mt, "image/webp")) {
        fmt = "webp";
    }
    if (fmt == NULL || data < 0) {
        return sl_ap_nat_fail(n, 400, "%s: image needs media_type png, jpeg, gif or webp and data",
                              where);
    }
    if (role) {
        sl_ap_b_block(b, role);
    }
    sl_ap_buf_addf(n->out, "{\"image\":{\"format\":\"%s\",\"source\":{\"bytes\":", fmt);
    sl_ap_nat_raw(n, data);
    OUT(n, "}}}");
    return 0;
}

static int
sl_ap_b_document(sl_ap_br_t *b, int blk, const char *where, int role, int mi, int bi)
{
    sl_ap_nat_t *n = &b->n;
    const sl_jdoc_t *d = n->d;
    int src = sl_json_get_t(d, blk, "source", SL_J_OBJ);
    int st = sl_json_get_t(d, src, "type", SL_J_STR);
    int data = sl_json_get_t(d, src, "data", SL_J_STR);

    if (sl_json_str_eq(d, st, "text") && data >= 0) {
        sl_ap_b_block(b, role);
        OUT(n, "{\"text\":");
        sl_ap_nat_raw(n, data);
        OUT(n, "}");
        return 0;
    }
    if (sl_json_str_eq(d, st, "base64") && data >= 0 &&
        sl_json_str_eq(d, sl_json_get_t(d, src, "media_type", SL_J_STR), "application/pdf")) {
        sl_ap_b_block(b, role);
        sl_ap_buf_addf(n->out,
                       "{\"document\":{\"format\":\"pdf\",\"name\":\"document-%d-%d\","
                       "\"source\":{\"bytes\":",
                       mi, bi);
        sl_ap_nat_raw(n, data);
        OUT(n, "}}}");
        return 0;
    }
    return sl_ap_nat_fail(
        n, 400, "%s: the bedrock provider takes documents as base64 PDF or text only", where);
}

static int
sl_ap_b_tool_result(sl_ap_br_t *b, int blk, int mi, int bi)
{
    sl_ap_nat_t *n = &b->n;
    const sl_jdoc_t *d = n->d;
    int id = sl_json_get_t(d, blk, "tool_use_id", SL_J_STR);
    int c = sl_json_get(d, blk, "content");
    int is_err = sl_json_get(d, blk, "is_error");
    char where[64];
    int k = 0;

    if (id < 0) {
        return sl_ap_nat_fail(n, 400, "messages.%d.content.%d.tool_use_id: required", mi, bi);
    }
    sl_ap_b_block(b, 1);
    OUT(n, "{\"toolResult\":{\"toolUseId\":");
    sl_ap_nat_raw(n, id);
    OUT(n, ",\"content\":[");
    if (c >= 0 && d->t[c].type == SL_J_STR && d->t[c].len > 0) {
        OUT(n, "{\"text\":");
        sl_ap_nat_raw(n, c);
        OUT(n, "}");
    } else if (c >= 0 && d->t[c].type == SL_J_ARR) {
        int e, end = SL_JSON_END(d, c), ei = 0;

        for (e = c + 1; e < end; e = SL_JSON_NEXT(d, e), ei++) {
            int t = sl_ap_b_block_type(d, e);

            snprintf(where, sizeof(where), "messages.%d.content.%d.content.%d", mi, bi, ei);
            if (sl_json_str_eq(d, t, "text")) {
                int text = sl_json_get_t(d, e, "text", SL_J_STR);

                if (text < 0 || d->t[text].len == 0) {
                    continue;
                }
                sl_ap_buf_adds((n)->out, k++ ? ",{\"text\":" : "{\"text\":");
                sl_ap_nat_raw(n, text);
                OUT(n, "}");
            } else if (sl_json_str_eq(d, t, "image")) {
                if (k++) {
                    OUT(n, ",");
                }
                if (sl_ap_b_image(b, e, where, 0) != 0) {
                    return -1;
                }
            }
        }
    }
    OUT(n, "]");
    if (is_err >= 0 && d->t[is_err].type == SL_J_TRUE) {
        OUT(n, ",\"status\":\"error\"");
    }
    OUT(n, "}}");
    return 0;
}

static int
sl_ap_b_message(sl_ap_br_t *b, int m, int mi, int role)
{
    sl_ap_nat_t *n = &b->n;
    const sl_jdoc_t *d = n->d;
    int c = sl_json_get(d, m, "content");
    int blk, end, bi;
    char where[64];

    if (d->t[c].type == SL_J_STR) {
        if (d->t[c].len > 0) {
            sl_ap_b_block(b, role);
            OUT(n, "{\"text\":");
            sl_ap_nat_raw(n, c);
            OUT(n, "}");
        }
        return 0;
    }
    end = SL_JSON_END(d, c);
    for (blk = c + 1, bi = 0; blk < end; blk = SL_JSON_NEXT(d, blk), bi++) {
        int t = sl_ap_b_block_type(d, blk);

        snprintf(where, sizeof(where), "messages.%d.content.%d", mi, bi);
        if (sl_json_str_eq(d, t, "text")) {
            int text = sl_json_get_t(d, blk, "text", SL_J_STR);

            if (text < 0) {
                return sl_ap_nat_fail(n, 400, "%s.text: required", where);
            }
            if (d->t[text].len > 0) {
                sl_ap_b_block(b, role);
                OUT(n, "{\"text\":");
                sl_ap_nat_raw(n, text);
                OUT(n, "}");
            }
        } else if (sl_json_str_eq(d, t, "image")) {
            if (sl_ap_b_image(b, blk, where, role) != 0) {
                return -1;
            }
        } else if (sl_json_str_eq(d, t, "document")) {
            if (sl_ap_b_document(b, blk, where, role, mi, bi) != 0) {
                return -1;
            }
        } else if (sl_json_str_eq(d, t, "tool_use") && role == 2) {
            int id = sl_json_get_t(d, blk, "id", SL_J_STR);
            int name = sl_json_get_t(d, blk, "name", SL_J_STR);
            int input = sl_json_get_t(d, blk, "input", SL_J_OBJ);

            if (id < 0 || name < 0) {
                return sl_ap_nat_fail(n, 400, "%s: tool_use needs id and name", where);
            }
            sl_ap_b_block(b, role);
            OUT(n, "{\"toolUse\":{\"toolUseId\":");
            sl_ap_nat_raw(n, id);
            OUT(n, ",\"name\":");
            sl_ap_nat_raw(n, name);
            OUT(n, ",\"input\":");
            if (input >= 0) {
                sl_ap_nat_raw(n, input);
            } else {
                OUT(n, "{}");
            }
            OUT(n, "}}");
        } else if (sl_json_str_eq(d, t, "tool_result") && role == 1) {
            if (sl_ap_b_tool_result(b, blk, mi, bi) != 0) {
                return -1;
            }
        } else if (sl_json_str_eq(d, t, "thinking") && role == 2) {
            int text = sl_json_get_t(d, blk, "thinking", SL_J_STR);
            int sig = sl_json_get_t(d, blk, "signature", SL_J_STR);

            if (!b->anthropic || text < 0 || sig < 0 || d->t[sig].len == 0) {
                continue; /* unsigned or another model's: nothing to send back */
            }
            sl_ap_b_block(b, role);
            OUT(n, "{\"reasoningContent\":{\"reasoningText\":{\"text\":");
            sl_ap_nat_raw(n, text);
            OUT(n, ",\"signature\":");
            sl_ap_nat_raw(n, sig);
            OUT(n, "}}}");
        } else if (sl_json_str_eq(d, t, "redacted_thinking") && role == 2) {
            int data = sl_json_get_t(d, blk, "data", SL_J_STR);

            if (!b->anthropic || data < 0) {
                continue;
            }
            sl_ap_b_block(b, role);
            OUT(n, "{\"reasoningContent\":{\"redactedContent\":");
            sl_ap_nat_raw(n, data);
            OUT(n, "}}");
        } else {
            sl_str_t ts = t >= 0 ? sl_json_sv(d, t) : (sl_str_t)SL_STR("?");

            return sl_ap_nat_fail(n, 400,
                                  "%s: block type '%.*s' is not supported by the bedrock provider",
                                  where, (int)(ts.len > 40 ? 40 : ts.len), ts.ptr);
        }
        sl_ap_b_cache_point(b, role, blk);
    }
    return 0;
}

/* One system text (validated by the walker), with its cache point when
 * its block is marked. */
static int
sl_ap_b_system_text(void *arg, int text, int blk, int *k)
{
    sl_ap_br_t *b = arg;
    sl_ap_nat_t *n = &b->n;

    sl_ap_buf_adds(n->out, (*k)++ ? ",{\"text\":" : ",\"system\":[{\"text\":");
    sl_ap_nat_raw(n, text);
    OUT(n, "}");
    if (blk >= 0 && b->caching && sl_ap_b_marked(n->d, blk)) {
        OUT(n, ",{\"cachePoint\":{\"type\":\"default\"}}");
    }
    return 0;
}

static int
sl_ap_b_system(sl_ap_br_t *b)
{
    sl_ap_nat_t *n = &b->n;
    int k = 0;

    if (sl_ap_nat_each_system(n, sl_ap_b_system_text, b, &k) != 0) {
        return -1;
    }
    if (k) {
        OUT(n, "]");
    }
    return 0;
}

static void
sl_ap_b_tools(sl_ap_br_t *b)
{
    sl_ap_nat_t *n = &b->n;
    const sl_jdoc_t *d = n->d;
    int tools = sl_json_get_t(d, 0, "tools", SL_J_ARR);
    int choice = sl_json_get_t(d, 0, "tool_choice", SL_J_OBJ);
    int t, end, k = 0;

    if (tools < 0) {
        return;
    }
    end = SL_JSON_END(d, tools);
    for (t = tools + 1; t < end; t = SL_JSON_NEXT(d, t)) {
        int name = sl_json_get_t(d, t, "name", SL_J_STR);
        int desc = sl_json_get_t(d, t, "description", SL_J_STR);
        int schema = sl_json_get_t(d, t, "input_schema", SL_J_OBJ);
        int ty = sl_json_get_t(d, t, "type", SL_J_STR);

        if (name < 0 || (ty >= 0 && !sl_json_str_eq(d, ty, "custom")) || schema < 0) {
            continue;
        }
        sl_ap_buf_adds((n)->out, k++ ? ",{\"toolSpec\":{\"name\":"
                                     : ",\"toolConfig\":{\"tools\":[{\"toolSpec\":{"
                                       "\"name\":");
        sl_ap_nat_raw(n, name);
        if (desc >= 0 && d->t[desc].len > 0) {
            OUT(n, ",\"description\":");
            sl_ap_nat_raw(n, desc);
        }
        OUT(n, ",\"inputSchema\":{\"json\":");
        sl_ap_nat_raw(n, schema);
        OUT(n, "}}}");
        if (b->caching && sl_ap_b_marked(d, t)) {
            OUT(n, ",{\"cachePoint\":{\"type\":\"default\"}}");
        }
    }
    if (k == 0) {
        return;
    }
    OUT(n, "]");
    if (choice >= 0) {
        int ct = sl_json_get_t(d, choice, "type", SL_J_STR);

        if (sl_json_str_eq(d, ct, "any")) {
            OUT(n, ",\"toolChoice\":{\"any\":{}}");
        } else if (sl_json_str_eq(d, ct, "tool")) {
            OUT(n, ",\"toolChoice\":{\"tool\":{\"name\":");
            sl_ap_nat_raw(n, sl_json_get_t(d, choice, "name", SL_J_STR));
            OUT(n, "}}");
        } else if (sl_json_str_eq(d, ct, "auto")) {
            OUT(n, ",\"toolChoice\":{\"auto\":{}}");
        }
    }
    OUT(n, "}");
}

static int
sl_ap_b_contains(sl_str_t s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len >= n && memmem(s.ptr, s.len, lit, n) != NULL;
}

int
sl_ap_bedrock_request(const sl_ap_target_t *conf, const char *body, size_t len, sl_jdoc_t *d,
                      sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    sl_ap_br_t b;
    sl_ap_nat_t *n = &b.n;
    int rc, m, end, mi = 0, first = 1, tok, th;
    int64_t v;

    memset(&b, 0, sizeof(b));
    rc = sl_ap_nat_begin(n, conf, body, len, d, out, info);
    if (rc != 0) {
        return rc;
    }
    b.anthropic = sl_ap_b_contains(info->model, "anthropic.");
    b.caching = b.anthropic || sl_ap_b_contains(info->model, "amazon.nova");
    if (sl_json_get(d, sl_json_get_t(d, 0, "output_config", SL_J_OBJ), "format") >= 0) {
        return sl_ap_nat_fail(n, 400,
                              "output_config.format: not supported by the bedrock provider");
    }
    OUT(n, "{\"messages\":[");
    end = SL_JSON_END(d, n->msgs);
    for (m = n->msgs + 1; m < end; m = SL_JSON_NEXT(d, m), mi++) {
        int role = sl_json_get_t(d, m, "role", SL_J_STR);

        if (sl_json_str_eq(d, role, "system")) {
            continue;
        }
        if (sl_ap_b_message(&b, m, mi, sl_json_str_eq(d, role, "user") ? 1 : 2) != 0) {
            return -1;
        }
    }
    if (b.nmsg == 0) {
        return sl_ap_nat_fail(n, 400, "messages: no content to send");
    }
    OUT(n, "]}]");
    if (sl_ap_b_system(&b) != 0) {
        return -1;
    }
    OUT(n, ",\"inferenceConfig\":{");
    sl_ap_nat_number(n, &first, "maxTokens", conf->max_tokens >= 0, (double)conf->max_tokens,
                     sl_json_get(d, 0, "max_tokens"));
    sl_ap_nat_number(n, &first, "temperature", conf->temperature >= 0, conf->temperature,
                     sl_json_get(d, 0, "temperature"));
    sl_ap_nat_number(n, &first, "topP", conf->top_p >= 0, conf->top_p, sl_json_get(d, 0, "top_p"));
    tok = sl_json_get_t(d, 0, "stop_sequences", SL_J_ARR);
    if (tok >= 0 && SL_JSON_END(d, tok) > tok + 1) {
        sl_ap_buf_adds((n)->out, first ? "\"stopSequences\":" : ",\"stopSequences\":");
        sl_ap_nat_raw(n, tok);
    }
    OUT(n, "}");
    sl_ap_b_tools(&b);
    if (b.anthropic) {
        first = 1;
        th = sl_json_get_t(d, 0, "thinking", SL_J_OBJ);
        tok = sl_json_get(d, 0, "top_k");
        if (conf->top_k >= 0 || (tok >= 0 && sl_json_int(d, tok, &v) == 0)) {
            OUT(n, ",\"additionalModelRequestFields\":{");
            first = 0;
            sl_ap_buf_addf(out, "\"top_k\":%lld", (long long)(conf->top_k >= 0 ? conf->top_k : v));
        }
        if (th >= 0 && !sl_json_str_eq(d, sl_json_get_t(d, th, "type", SL_J_STR), "disabled")) {
            sl_ap_buf_adds((n)->out, first ? ",\"additionalModelRequestFields\":{\"thinking\":"
                                           : ",\"thinking\":");
            first = 0;
            sl_ap_nat_raw(n, th);
        }
        if (!first) {
            OUT(n, "}");
        }
    }
    OUT(n, "}");
    return out->oom ? -2 : 0;
}

/* ------------------------------------------------------------------ URL */

void
sl_ap_bedrock_path(sl_ap_buf_t *out, sl_str_t model, int stream)
{
    SL_AP_BUF_LIT(out, "/model/");
    sl_ap_uri_encode(out, model.ptr, model.len);
    sl_ap_buf_adds(out, stream ? "/converse-stream" : "/converse");
}

void
sl_ap_bedrock_stream_path(sl_ap_buf_t *out, sl_str_t path)
{
    static const char op[] = "/converse";
    size_t n = sizeof(op) - 1;

    if (path.len > 0 && path.ptr[path.len - 1] == '/') {
        path.len--;
    }
    sl_ap_buf_add(out, path.ptr, path.len);
    if (path.len >= n && memcmp(path.ptr + path.len - n, op, n) == 0) {
        SL_AP_BUF_LIT(out, "-stream");
    }
}

/* -------------------------------------------------------------- response */

void
sl_ap_bedrock_usage(const sl_jdoc_t *d, int tok, sl_ap_usage_t *u)
{
    int64_t in = 0, o = 0, rd = 0, wr = 0, total = 0;

    if (tok < 0 || d->t[tok].type != SL_J_OBJ) {
        return;
    }
    sl_json_int(d, sl_json_get(d, tok, "inputTokens"), &in);
    sl_json_int(d, sl_json_get(d, tok, "outputTokens"), &o);
    sl_json_int(d, sl_json_get(d, tok, "cacheReadInputTokens"), &rd);
    sl_json_int(d, sl_json_get(d, tok, "cacheWriteInputTokens"), &wr);
    u->have = 1;
    u->prompt = in + rd + wr;
    u->cached = rd;
    u->created = wr;
    u->completion = o;
    u->total = sl_json_int(d, sl_json_get(d, tok, "totalTokens"), &total) == 0
                   ? total
                   : u->prompt + u->completion;
}

const char *
sl_ap_bedrock_stop(const char *p, size_t n)
{
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(p, lit, n) == 0)
    if (IS("tool_use")) {
        return "tool_use";
    }
    if (IS("max_tokens")) {
        return "max_tokens";
    }
    if (IS("stop_sequence")) {
        return "stop_sequence";
    }
    if (IS("guardrail_intervened") || IS("content_filtered")) {
        return "refusal";
    }
    if (IS("model_context_window_exceeded")) {
        return "model_context_window_exceeded";
    }
    return "end_turn";
#undef IS
}

int
sl_ap_bedrock_response(const char *body, size_t len, sl_str_t model, sl_str_t msg_id, sl_jdoc_t *d,
                       sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    int msg, content, c, end, nb = 0, sr;
    sl_ap_emit_t idm;
    sl_str_t stop = SL_STR("end_turn");

    if (sl_json_parse(d, body, len) != 0 || d->t[0].type != SL_J_OBJ) {
        return -1;
    }
    msg = sl_json_get_t(d, sl_json_get_t(d, 0, "output", SL_J_OBJ), "message", SL_J_OBJ);
    content = sl_json_get_t(d, msg, "content", SL_J_ARR);
    if (content < 0) {
        return -1;
    }
    sl_ap_bedrock_usage(d, sl_json_get_t(d, 0, "usage", SL_J_OBJ), u);
    sl_ap_emit_init(&idm, model, 0);
    sl_ap_emit_set_id(&idm, msg_id);
    SL_AP_BUF_LIT(out, "{\"id\":\"");
    sl_ap_buf_adds(out, idm.msg_id);
    SL_AP_BUF_LIT(out, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    sl_ap_buf_add_qstr(out, model.ptr, model.len);
    SL_AP_BUF_LIT(out, ",\"content\":[");
    end = SL_JSON_END(d, content);
    for (c = content + 1; c < end; c = SL_JSON_NEXT(d, c)) {
        int text = sl_json_get_t(d, c, "text", SL_J_STR);
        int tu = sl_json_get_t(d, c, "toolUse", SL_J_OBJ);
        int rc = sl_json_get_t(d, c, "reasoningContent", SL_J_OBJ);

        if (text >= 0) {
            sl_ap_buf_adds(out,
                           nb++ ? ",{\"type\":\"text\",\"text\":" : "{\"type\":\"text\",\"text\":");
            sl_ap_buf_add(out, sl_json_raw(d, text).ptr, sl_json_raw(d, text).len);
            SL_AP_BUF_LIT(out, "}");
        } else if (tu >= 0) {
            int id = sl_json_get_t(d, tu, "toolUseId", SL_J_STR);
            int name = sl_json_get_t(d, tu, "name", SL_J_STR);
            int input = sl_json_get_t(d, tu, "input", SL_J_OBJ);

            if (id < 0 || name < 0) {
                continue;
            }
            sl_ap_buf_adds(out, nb++ ? ",{\"type\":\"tool_use\",\"id\":"
                                     : "{\"type\":\"tool_use\",\"id\":");
            sl_ap_buf_add(out, sl_json_raw(d, id).ptr, sl_json_raw(d, id).len);
            SL_AP_BUF_LIT(out, ",\"name\":");
            sl_ap_buf_add(out, sl_json_raw(d, name).ptr, sl_json_raw(d, name).len);
            SL_AP_BUF_LIT(out, ",\"input\":");
            if (input >= 0) {
                sl_ap_buf_add(out, sl_json_raw(d, input).ptr, sl_json_raw(d, input).len);
            } else {
                SL_AP_BUF_LIT(out, "{}");
            }
            SL_AP_BUF_LIT(out, "}");
        } else if (rc >= 0) {
            int rt = sl_json_get_t(d, rc, "reasoningText", SL_J_OBJ);
            int red = sl_json_get_t(d, rc, "redactedContent", SL_J_STR);

            if (rt >= 0) {
                int t = sl_json_get_t(d, rt, "text", SL_J_STR);
                int sig = sl_json_get_t(d, rt, "signature", SL_J_STR);

                sl_ap_buf_adds(out, nb++ ? ",{\"type\":\"thinking\",\"thinking\":"
                                         : "{\"type\":\"thinking\",\"thinking\":");
                if (t >= 0) {
                    sl_ap_buf_add(out, sl_json_raw(d, t).ptr, sl_json_raw(d, t).len);
                } else {
                    SL_AP_BUF_LIT(out, "\"\"");
                }
                SL_AP_BUF_LIT(out, ",\"signature\":");
                if (sig >= 0) {
                    sl_ap_buf_add(out, sl_json_raw(d, sig).ptr, sl_json_raw(d, sig).len);
                } else {
                    SL_AP_BUF_LIT(out, "\"\"");
                }
                SL_AP_BUF_LIT(out, "}");
            } else if (red >= 0) {
                sl_ap_buf_adds(out, nb++ ? ",{\"type\":\"redacted_thinking\",\"data\":"
                                         : "{\"type\":\"redacted_thinking\",\"data\":");
                sl_ap_buf_add(out, sl_json_raw(d, red).ptr, sl_json_raw(d, red).len);
                SL_AP_BUF_LIT(out, "}");
            }
        }
    }
    sr = sl_json_get_t(d, 0, "stopReason", SL_J_STR);
    if (sr >= 0) {
        stop = sl_json_sv(d, sr);
    }
    sl_ap_buf_addf(out,
                   "],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":"
                   "%lld,\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld,"
                   "\"output_tokens\":%lld}}",
                   sl_ap_bedrock_stop(stop.ptr, stop.len), (long long)sl_ap_uncached_input(u),
                   (long long)u->created, (long long)u->cached, (long long)u->completion);
    return out->oom ? -2 : 0;
}
