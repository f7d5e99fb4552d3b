/* gemini.c - Anthropic Messages <-> Gemini generateContent (non-streaming
 * answer; gemini_stream.c translates streamed ones).
 *
 * Request (Anthropic -> GenerateContentRequest):
 *   system + role:system messages    -> systemInstruction.parts[] (one text
 *                                       part per block)
 *   user / assistant                 -> contents[] role user / model
 *   text                             -> {text}
 *   image / document base64          -> {inlineData:{mimeType,data}}
 *   image / document url             -> {fileData:{fileUri}}
 *   document text source             -> {text}
 *   tool_use                         -> {functionCall:{name,args}} (+ the
 *                                       thoughtSignature carried in its id)
 *   tool_result                      -> {functionResponse:{name,response:
 *                                       {result|error: text}}} in a user
 *                                       turn of their own, before the rest of
 *                                       that turn; the name is the tool_use's
 *                                       of the same id; images follow as
 *                                       inlineData parts
 *   thinking / redacted_thinking     -> dropped (Anthropic signatures mean
 *                                       nothing to Gemini)
 *   tools[] (custom)                 -> tools[0].functionDeclarations[]
 *                                       {name, description,
 *                                        parametersJsonSchema: input_schema}
 *   server tools (versioned type)    -> dropped
 *   tool_choice auto/any/tool/none   -> toolConfig.functionCallingConfig
 *                                       AUTO / ANY / ANY+allowedFunctionNames /
 *                                       NONE
 *   max_tokens, temperature, top_p,
 *   top_k, stop_sequences            -> generationConfig maxOutputTokens,
 *                                       temperature, topP, topK, stopSequences
 *                                       (config options win, Kong's rule)
 *   thinking enabled{budget_tokens}  -> thinkingConfig {includeThoughts,
 *                                       thinkingBudget}
 *   thinking adaptive                -> thinkingConfig {includeThoughts}
 *   output_config.format json_schema -> responseMimeType application/json +
 *                                       responseJsonSchema
 *   cache_control, metadata, disable_parallel_tool_use, thinking disabled
 *                                    -> dropped (Gemini caches implicitly;
 *                                       cachedContentTokenCount comes back)
 *
 * Response: parts with thought:true -> thinking blocks, text -> text,
 * functionCall -> tool_use (args as input); finishReason STOP -> end_turn
 * (tool_use when a function was called), MAX_TOKENS -> max_tokens, the
 * safety family -> refusal; usageMetadata -> usage with input_tokens =
 * promptTokenCount - cachedContentTokenCount, cache_read_input_tokens =
 * cachedContentTokenCount, output_tokens = candidates + thoughts.
 */

#include <stdio.h>
#include <string.h>

#include "native.h"

#define OUT(n, lit) SL_AP_BUF_LIT((n)->out, lit)
#define GSIG "_gsig_"

/* --------------------------------------------------------------- request */

static int
sl_ap_g_block_type(const sl_jdoc_t *d, int b)
{
    return d->t[b].type == SL_J_OBJ ? sl_json_get_t(d, b, "type", SL_J_STR) : -1;
}

/* A comma before every part but the first. */
static void
sl_ap_g_sep(sl_ap_nat_t *n, int *np)
{
    if ((*np)++) {
        OUT(n, ",");
    }
}

/* image / document source -> inlineData or fileData part (or text). */
static int
sl_ap_g_media(sl_ap_nat_t *n, int blk, const char *where, int *np)
{
    const sl_jdoc_t *d = n->d;
    int src = sl_json_get_t(d, blk, "source", SL_J_OBJ);
    int st = sl_json_get_t(d, src, "type", SL_J_STR);

    if (sl_json_str_eq(d, st, "base64")) {
        int mt = sl_json_get_t(d, src, "media_type", SL_J_STR);
        int data = sl_json_get_t(d, src, "data", SL_J_STR);

        if (mt < 0 || data < 0) {
            return sl_ap_nat_fail(n, 400, "%s: source needs media_type and data", where);
        }
        sl_ap_g_sep(n, np);
        OUT(n, "{\"inlineData\":{\"mimeType\":");
        sl_ap_nat_raw(n, mt);
        OUT(n, ",\"data\":");
        sl_ap_nat_raw(n, data);
        OUT(n, "}}");
        return 0;
    }
    if (sl_json_str_eq(d, st, "url")) {
        int url = sl_json_get_t(d, src, "url", SL_J_STR);

        if (url < 0) {
            return sl_ap_nat_fail(n, 400, "%s: source needs a url", where);
        }
        sl_ap_g_sep(n, np);
        OUT(n, "{\"fileData\":{\"fileUri\":");
        sl_ap_nat_raw(n, url);
        OUT(n, "}}");
        return 0;
    }
    if (sl_json_str_eq(d, st, "text")) {
        int data = sl_json_get_t(d, src, "data", SL_J_STR);

        if (data < 0) {
            return sl_ap_nat_fail(n, 400, "%s: text source needs data", where);
        }
        sl_ap_g_sep(n, np);
        OUT(n, "{\"text\":");
        sl_ap_nat_raw(n, data);
        OUT(n, "}");
        return 0;
    }
    return sl_ap_nat_fail(n, 400,
                          "%s: source type is not supported by the gemini provider "
                          "(use base64, url or text)",
                          where);
}

/* systemInstruction: `system`, then every role:system message's text
 * (validated by the walker), one part each. */
static int
sl_ap_g_system_text(void *arg, int text, int blk, int *np)
{
    sl_ap_nat_t *n = arg;

    (void)blk;
    if (*np == 0) {
        OUT(n, ",\"systemInstruction\":{\"parts\":[");
    }
    sl_ap_g_sep(n, np);
    OUT(n, "{\"text\":");
    sl_ap_nat_raw(n, text);
    OUT(n, "}");
    return 0;
}

static int
sl_ap_g_system(sl_ap_nat_t *n)
{
    int np = 0;

    if (sl_ap_nat_each_system(n, sl_ap_g_system_text, n, &np) != 0) {
        return -1;
    }
    if (np) {
        OUT(n, "]}");
    }
    return 0;
}

/* Base64url back to base64 (the thoughtSignature in a tool id). */
static void
sl_ap_g_unb64url(sl_ap_buf_t *out, const char *p, size_t len)
{
    size_t i;

    for (i = 0; i < len; i++) {
        sl_ap_buf_addc(out, p[i] == '-' ? '+' : p[i] == '_' ? '/' : p[i]);
    }
    while (len++ % 4) {
        sl_ap_buf_addc(out, '=');
    }
}

static void
sl_ap_g_contents_open(sl_ap_nat_t *n, int *nc, const char *role)
{
    if ((*nc)++) {
        OUT(n, ",");
    }
    OUT(n, "{\"role\":\"");
    sl_ap_buf_adds(n->out, role);
    OUT(n, "\",\"parts\":[");
}

/* The text of a tool_result's content (string, or text blocks joined with
 * \n), escaped, into out. */
static void
sl_ap_g_result_text(sl_ap_nat_t *n, int c)
{
    const sl_jdoc_t *d = n->d;
    int b, end, k = 0;

    if (c < 0) {
        return;
    }
    if (d->t[c].type == SL_J_STR) {
        sl_ap_nat_sv(n, c);
        return;
    }
    if (d->t[c].type != SL_J_ARR) {
        return;
    }
    end = SL_JSON_END(d, c);
    for (b = c + 1; b < end; b = SL_JSON_NEXT(d, b)) {
        int text = sl_json_get_t(d, b, "text", SL_J_STR);

        if (sl_json_str_eq(d, sl_ap_g_block_type(d, b), "text") && text >= 0) {
            if (k++) {
                OUT(n, "\\n");
            }
            sl_ap_nat_sv(n, text);
        }
    }
}

/* A user turn: its tool results first (one content), then the rest. */
static int
sl_ap_g_user(sl_ap_nat_t *n, int m, int mi, int *nc)
{
    const sl_jdoc_t *d = n->d;
    int c = sl_json_get(d, m, "content");
    int b, end, bi, np = 0;
    char where[64];

    if (d->t[c].type == SL_J_STR) {
        if (d->t[c].len > 0) {
            sl_ap_g_contents_open(n, nc, "user");
            OUT(n, "{\"text\":");
            sl_ap_nat_raw(n, c);
            OUT(n, "}]}");
        }
        return 0;
    }
    end = SL_JSON_END(d, c);
    /* pass 1: functionResponse parts */
    for (b = c + 1, bi = 0; b < end; b = SL_JSON_NEXT(d, b), bi++) {
        int id, name, rc, is_err;

        if (!sl_json_str_eq(d, sl_ap_g_block_type(d, b), "tool_result")) {
            continue;
        }
        id = sl_json_get_t(d, b, "tool_use_id", SL_J_STR);
        if (id < 0) {
            return sl_ap_nat_fail(n, 400, "messages.%d.content.%d.tool_use_id: required", mi, bi);
        }
        name = sl_ap_nat_tool_name(n, mi, id);
        if (name < 0) {
            return sl_ap_nat_fail(n, 400,
                                  "messages.%d.content.%d: tool_result for an id no earlier "
                                  "tool_use has (Gemini needs the function's name)",
                                  mi, bi);
        }
        if (np == 0) {
            sl_ap_g_contents_open(n, nc, "user");
        }
        sl_ap_g_sep(n, &np);
        OUT(n, "{\"functionResponse\":{\"name\":");
        sl_ap_nat_raw(n, name);
        is_err = sl_json_get(d, b, "is_error");
        OUT(n, ",\"response\":{\"");
        sl_ap_buf_adds(n->out, is_err >= 0 && d->t[is_err].type == SL_J_TRUE ? "error" : "result");
        OUT(n, "\":\"");
        sl_ap_g_result_text(n, sl_json_get(d, b, "content"));
        OUT(n, "\"}}}");
        /* images of the result follow it */
        rc = sl_json_get_t(d, b, "content", SL_J_ARR);
        if (rc >= 0) {
            int e, rend = SL_JSON_END(d, rc), ei = 0;

            for (e = rc + 1; e < rend; e = SL_JSON_NEXT(d, e), ei++) {
                int t = sl_ap_g_block_type(d, e);

                if (sl_json_str_eq(d, t, "image") || sl_json_str_eq(d, t, "document")) {
                    snprintf(where, sizeof(where), "messages.%d.content.%d.content.%d", mi, bi, ei);
                    if (sl_ap_g_media(n, e, where, &np) != 0) {
                        return -1;
                    }
                }
            }
        }
    }
    if (np) {
        OUT(n, "]}");
        np = 0;
    }
    /* pass 2: everything else */
    for (b = c + 1, bi = 0; b < end; b = SL_JSON_NEXT(d, b), bi++) {
        int t = sl_ap_g_block_type(d, b);

        snprintf(where, sizeof(where), "messages.%d.content.%d", mi, bi);
        if (sl_json_str_eq(d, t, "tool_result")) {
            continue;
        }
        if (sl_json_str_eq(d, t, "text")) {
            int text = sl_json_get_t(d, b, "text", SL_J_STR);

            if (text < 0) {
                return sl_ap_nat_fail(n, 400, "%s.text: required", where);
            }
            if (d->t[text].len == 0) {
                continue;
            }
            if (np == 0) {
                sl_ap_g_contents_open(n, nc, "user");
            }
            sl_ap_g_sep(n, &np);
            OUT(n, "{\"text\":");
            sl_ap_nat_raw(n, text);
            OUT(n, "}");
        } else if (sl_json_str_eq(d, t, "image") || sl_json_str_eq(d, t, "document")) {
            if (np == 0) {
                sl_ap_g_contents_open(n, nc, "user");
            }
            if (sl_ap_g_media(n, b, where, &np) != 0) {
                return -1;
            }
        } else {
            sl_str_t ts = t >= 0 ? sl_json_sv(d, t) : (sl_str_t)SL_STR("?");

            return sl_ap_nat_fail(n, 400,
                                  "%s: block type '%.*s' is not supported by the gemini provider",
                                  where, (int)(ts.len > 40 ? 40 : ts.len), ts.ptr);
        }
    }
    if (np) {
        OUT(n, "]}");
    }
    return 0;
}

static int
sl_ap_g_assistant(sl_ap_nat_t *n, int m, int mi, int *nc)
{
    const sl_jdoc_t *d = n->d;
    int c = sl_json_get(d, m, "content");
    int b, end, bi, np = 0;

    if (d->t[c].type == SL_J_STR) {
        if (d->t[c].len > 0) {
            sl_ap_g_contents_open(n, nc, "model");
            OUT(n, "{\"text\":");
            sl_ap_nat_raw(n, c);
            OUT(n, "}]}");
        }
        return 0;
    }
    end = SL_JSON_END(d, c);
    for (b = c + 1, bi = 0; b < end; b = SL_JSON_NEXT(d, b), bi++) {
        int t = sl_ap_g_block_type(d, b);

        if (sl_json_str_eq(d, t, "text")) {
            int text = sl_json_get_t(d, b, "text", SL_J_STR);

            if (text < 0 || d->t[text].len == 0) {
                continue;
            }
            if (np == 0) {
                sl_ap_g_contents_open(n, nc, "model");
            }
            sl_ap_g_sep(n, &np);
            OUT(n, "{\"text\":");
            sl_ap_nat_raw(n, text);
            OUT(n, "}");
        } else if (sl_json_str_eq(d, t, "tool_use")) {
            int name = sl_json_get_t(d, b, "name", SL_J_STR);
            int input = sl_json_get(d, b, "input");
            int id = sl_json_get_t(d, b, "id", SL_J_STR);
            sl_str_t ids = id >= 0 ? sl_json_sv(d, id) : (sl_str_t){"", 0};
            const char *sig = ids.len ? memmem(ids.ptr, ids.len, GSIG, sizeof(GSIG) - 1) : NULL;

            if (name < 0) {
                return sl_ap_nat_fail(n, 400, "messages.%d.content.%d.name: required", mi, bi);
            }
            if (np == 0) {
                sl_ap_g_contents_open(n, nc, "model");
            }
            sl_ap_g_sep(n, &np);
            OUT(n, "{\"functionCall\":{\"name\":");
            sl_ap_nat_raw(n, name);
            OUT(n, ",\"args\":");
            if (input >= 0 && d->t[input].type == SL_J_OBJ) {
                sl_ap_nat_raw(n, input);
            } else {
                OUT(n, "{}");
            }
            OUT(n, "}");
            if (sig && !d->t[id].esc) {
                const char *s = sig + sizeof(GSIG) - 1;

                OUT(n, ",\"thoughtSignature\":\"");
                sl_ap_g_unb64url(n->out, s, (size_t)(ids.ptr + ids.len - s));
                OUT(n, "\"");
            }
            OUT(n, "}");
        } else if (sl_json_str_eq(d, t, "thinking") || sl_json_str_eq(d, t, "redacted_thinking")) {
            continue;
        } else {
            sl_str_t ts = t >= 0 ? sl_json_sv(d, t) : (sl_str_t)SL_STR("?");

            return sl_ap_nat_fail(
                n, 400,
                "messages.%d.content.%d: block type '%.*s' is not supported by the gemini "
                "provider",
                mi, bi, (int)(ts.len > 40 ? 40 : ts.len), ts.ptr);
        }
    }
    if (np) {
        OUT(n, "]}");
    }
    return 0;
}

static int
sl_ap_g_tools(sl_ap_nat_t *n)
{
    const sl_jdoc_t *d = n->d;
    int tools = sl_json_get_t(d, 0, "tools", SL_J_ARR);
    int choice = sl_json_get_t(d, 0, "tool_choice", SL_J_OBJ);
    int t, end, k = 0;

    if (tools < 0) {
        return 0;
    }
    end = SL_JSON_END(d, tools);
    for (t = tools + 1; t < end; t = SL_JSON_NEXT(d, t)) {
        int name = sl_json_get_t(d, t, "name", SL_J_STR);
        int desc = sl_json_get_t(d, t, "description", SL_J_STR);
        int schema = sl_json_get_t(d, t, "input_schema", SL_J_OBJ);
        int ty = sl_json_get_t(d, t, "type", SL_J_STR);

        if (name < 0 || (ty >= 0 && !sl_json_str_eq(d, ty, "custom")) || schema < 0) {
            continue; /* a server tool: nothing Gemini can run */
        }
        sl_ap_buf_adds((n)->out, k++ ? "," : ",\"tools\":[{\"functionDeclarations\":[");
        OUT(n, "{\"name\":");
        sl_ap_nat_raw(n, name);
        if (desc >= 0) {
            OUT(n, ",\"description\":");
            sl_ap_nat_raw(n, desc);
        }
        OUT(n, ",\"parametersJsonSchema\":");
        sl_ap_nat_raw(n, schema);
        OUT(n, "}");
    }
    if (k == 0) {
        return 0;
    }
    OUT(n, "]}]");
    if (choice >= 0) {
        int ct = sl_json_get_t(d, choice, "type", SL_J_STR);

        OUT(n, ",\"toolConfig\":{\"functionCallingConfig\":{\"mode\":");
        if (sl_json_str_eq(d, ct, "any")) {
            OUT(n, "\"ANY\"");
        } else if (sl_json_str_eq(d, ct, "none")) {
            OUT(n, "\"NONE\"");
        } else if (sl_json_str_eq(d, ct, "tool")) {
            OUT(n, "\"ANY\",\"allowedFunctionNames\":[");
            sl_ap_nat_raw(n, sl_json_get_t(d, choice, "name", SL_J_STR));
            OUT(n, "]");
        } else {
            OUT(n, "\"AUTO\"");
        }
        OUT(n, "}}");
    }
    return 0;
}

static int
sl_ap_g_generation(sl_ap_nat_t *n)
{
    const sl_ap_target_t *conf = n->conf;
    const sl_jdoc_t *d = n->d;
    int first = 1, tok, th, oc, fmt;

    OUT(n, ",\"generationConfig\":{");
    sl_ap_nat_number(n, &first, "maxOutputTokens", conf->max_tokens >= 0, (double)conf->max_tokens,
                     sl_json_get(d, 0, "max_tokens"));
    sl_ap_nat_number(n, &first, "temperature", conf->temperature >= 0, conf->temperature,
                     sl_json_get(d, 0, "temperature"));
    sl_ap_nat_number(n, &first, "topP", conf->top_p >= 0, conf->top_p, sl_json_get(d, 0, "top_p"));
    sl_ap_nat_number(n, &first, "topK", conf->top_k >= 0, (double)conf->top_k,
                     sl_json_get(d, 0, "top_k"));
    tok = sl_json_get_t(d, 0, "stop_sequences", SL_J_ARR);
    if (tok >= 0 && SL_JSON_END(d, tok) > tok + 1) {
        sl_ap_buf_adds((n)->out, first ? "\"stopSequences\":" : ",\"stopSequences\":");
        first = 0;
        sl_ap_nat_raw(n, tok);
    }
    th = sl_json_get_t(d, 0, "thinking", SL_J_OBJ);
    if (th >= 0) {
        int ty = sl_json_get_t(d, th, "type", SL_J_STR);
        int64_t budget;

        if (sl_json_str_eq(d, ty, "enabled") || sl_json_str_eq(d, ty, "adaptive")) {
            sl_ap_buf_adds((n)->out, first ? "" : ",");
            first = 0;
            OUT(n, "\"thinkingConfig\":{\"includeThoughts\":true");
            if (sl_json_str_eq(d, ty, "enabled") &&
                sl_json_int(d, sl_json_get(d, th, "budget_tokens"), &budget) == 0 && budget > 0) {
                sl_ap_buf_addf(n->out, ",\"thinkingBudget\":%lld", (long long)budget);
            }
            OUT(n, "}");
        }
    }
    oc = sl_json_get_t(d, 0, "output_config", SL_J_OBJ);
    fmt = sl_json_get_t(d, oc, "format", SL_J_OBJ);
    if (fmt >= 0) {
        int schema = sl_json_get_t(d, fmt, "schema", SL_J_OBJ);

        if (!sl_json_str_eq(d, sl_json_get_t(d, fmt, "type", SL_J_STR), "json_schema")) {
            return sl_ap_nat_fail(n, 400,
                                  "output_config.format.type: only json_schema is supported");
        }
        if (schema < 0) {
            return sl_ap_nat_fail(n, 400, "output_config.format.schema: required for json_schema");
        }
        sl_ap_buf_adds((n)->out, first ? "" : ",");
        first = 0;
        OUT(n, "\"responseMimeType\":\"application/json\",\"responseJsonSchema\":");
        sl_ap_nat_raw(n, schema);
    }
    OUT(n, "}");
    return 0;
}

int
sl_ap_gemini_request(const sl_ap_target_t *conf, const char *body, size_t len, sl_jdoc_t *d,
                     sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    sl_ap_nat_t n;
    int rc, m, end, mi = 0, nc = 0;

    rc = sl_ap_nat_begin(&n, conf, body, len, d, out, info);
    if (rc != 0) {
        return rc;
    }
    OUT(&n, "{\"contents\":[");
    end = SL_JSON_END(d, n.msgs);
    for (m = n.msgs + 1; m < end; m = SL_JSON_NEXT(d, m), mi++) {
        int role = sl_json_get_t(d, m, "role", SL_J_STR);

        if (sl_json_str_eq(d, role, "user")) {
            rc = sl_ap_g_user(&n, m, mi, &nc);
        } else if (sl_json_str_eq(d, role, "assistant")) {
            rc = sl_ap_g_assistant(&n, m, mi, &nc);
        } else {
            rc = 0; /* system: in systemInstruction */
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (nc == 0) {
        return sl_ap_nat_fail(&n, 400, "messages: no content to send");
    }
    OUT(&n, "]");
    if (sl_ap_g_system(&n) != 0 || sl_ap_g_tools(&n) != 0 || sl_ap_g_generation(&n) != 0) {
        return -1;
    }
    OUT(&n, "}");
    return out->oom ? -2 : 0;
}

/* ------------------------------------------------------------------ URL */

void
sl_ap_gemini_path(sl_ap_buf_t *out, sl_str_t model, int stream)
{
    sl_ap_gemini_path_at(out, "/v1beta/models/", model, stream);
}

void
sl_ap_gemini_path_at(sl_ap_buf_t *out, const char *prefix, sl_str_t model, int stream)
{
    if (model.len > 7 && memcmp(model.ptr, "models/", 7) == 0) {
        model.ptr += 7;
        model.len -= 7;
    }
    sl_ap_buf_adds(out, prefix);
    sl_ap_uri_encode(out, model.ptr, model.len);
    sl_ap_buf_adds(out, stream ? ":streamGenerateContent" : ":generateContent");
}

void
sl_ap_gemini_stream_path(sl_ap_buf_t *out, sl_str_t path)
{
    static const char op[] = ":generateContent";
    size_t n = sizeof(op) - 1;

    if (path.len >= n && memcmp(path.ptr + path.len - n, op, n) == 0) {
        sl_ap_buf_add(out, path.ptr, path.len - n);
        SL_AP_BUF_LIT(out, ":streamGenerateContent");
    } else {
        sl_ap_buf_add(out, path.ptr, path.len);
    }
}

/* -------------------------------------------------------------- response */

void
sl_ap_gemini_usage(const sl_jdoc_t *d, int tok, sl_ap_usage_t *u)
{
    int64_t prompt = 0, cand = 0, thoughts = 0, total = 0, cached = 0, tool = 0;

    if (tok < 0 || d->t[tok].type != SL_J_OBJ) {
        return;
    }
    sl_json_int(d, sl_json_get(d, tok, "promptTokenCount"), &prompt);
    sl_json_int(d, sl_json_get(d, tok, "toolUsePromptTokenCount"), &tool);
    sl_json_int(d, sl_json_get(d, tok, "candidatesTokenCount"), &cand);
    sl_json_int(d, sl_json_get(d, tok, "thoughtsTokenCount"), &thoughts);
    sl_json_int(d, sl_json_get(d, tok, "cachedContentTokenCount"), &cached);
    u->have = 1;
    u->prompt = prompt + tool;
    u->cached = cached;
    u->created = 0;
    u->completion = cand + thoughts;
    u->total = sl_json_int(d, sl_json_get(d, tok, "totalTokenCount"), &total) == 0
                   ? total
                   : u->prompt + u->completion;
    if (thoughts > 0) {
        snprintf(u->completion_details, sizeof(u->completion_details),
                 "{\"reasoning_tokens\":%lld}", (long long)thoughts);
    } else {
        u->completion_details[0] = '\0';
    }
}

const char *
sl_ap_gemini_stop(const sl_jdoc_t *d, int fr, int tools)
{
    if (sl_json_str_eq(d, fr, "MAX_TOKENS")) {
        return "max_tokens";
    }
    if (sl_json_str_eq(d, fr, "SAFETY") || sl_json_str_eq(d, fr, "RECITATION") ||
        sl_json_str_eq(d, fr, "BLOCKLIST") || sl_json_str_eq(d, fr, "PROHIBITED_CONTENT") ||
        sl_json_str_eq(d, fr, "SPII") || sl_json_str_eq(d, fr, "IMAGE_SAFETY") ||
        sl_json_str_eq(d, fr, "LANGUAGE")) {
        return "refusal";
    }
    return tools ? "tool_use" : "end_turn";
}

void
sl_ap_gemini_tool_id(sl_ap_buf_t *out, const sl_jdoc_t *d, int part, int call, const char *msg_tail,
                     int n)
{
    int id = sl_json_get_t(d, call, "id", SL_J_STR);
    int sig = sl_json_get_t(d, part, "thoughtSignature", SL_J_STR);
    size_t i;

    if (id >= 0 && d->t[id].len > 0 && !d->t[id].esc) {
        sl_str_t s = sl_json_sv(d, id);

        for (i = 0; i < s.len; i++) {
            char c = s.ptr[i];
            int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '_';

            sl_ap_buf_addc(out, ok ? c : '_');
        }
    } else {
        sl_ap_buf_addf(out, "toolu_%s_%d", msg_tail, n);
    }
    if (sig >= 0 && !d->t[sig].esc && d->t[sig].len > 0) {
        sl_str_t s = sl_json_sv(d, sig);

        SL_AP_BUF_LIT(out, GSIG);
        for (i = 0; i < s.len; i++) {
            char c = s.ptr[i];

            if (c == '=') {
                break;
            }
            sl_ap_buf_addc(out, c == '+' ? '-' : c == '/' ? '_' : c);
        }
    }
}

int
sl_ap_gemini_response(const char *body, size_t len, sl_str_t model, sl_str_t msg_id, sl_jdoc_t *d,
                      sl_ap_buf_t *out, sl_ap_usage_t *u)
{
    int cands, cand = -1, content, parts, fr = -1, p, end, nb = 0, ntools = 0, tok, rc;
    sl_ap_emit_t idm; /* only for the id rules */
    sl_ap_buf_t id = {0};
    const char *stop;

    if (sl_json_parse(d, body, len) != 0 || d->t[0].type != SL_J_OBJ) {
        return -1;
    }
    cands = sl_json_get_t(d, 0, "candidates", SL_J_ARR);
    if (cands >= 0 && SL_JSON_END(d, cands) > cands + 1 && d->t[cands + 1].type == SL_J_OBJ) {
        cand = cands + 1;
    }
    if (cand < 0 && sl_json_get_t(d, 0, "promptFeedback", SL_J_OBJ) < 0) {
        return -1;
    }
    sl_ap_gemini_usage(d, sl_json_get_t(d, 0, "usageMetadata", SL_J_OBJ), u);
    tok = sl_json_get_t(d, 0, "modelVersion", SL_J_STR);
    if (tok >= 0 && d->t[tok].len < sizeof(u->response_model)) {
        memcpy(u->response_model, d->src + d->t[tok].start, d->t[tok].len);
        u->response_model[d->t[tok].len] = '\0';
    }
    sl_ap_emit_init(&idm, model, 0);
    sl_ap_emit_set_id(&idm, msg_id);
    tok = sl_json_get_t(d, 0, "responseId", SL_J_STR);
    if (tok >= 0) {
        sl_ap_emit_set_id(&idm, sl_json_sv(d, tok));
    }

    SL_AP_BUF_LIT(out, "{\"id\":\"");
    sl_ap_buf_adds(out, idm.msg_id);
    SL_AP_BUF_LIT(out, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    sl_ap_buf_add_qstr(out, model.ptr, model.len);
    SL_AP_BUF_LIT(out, ",\"content\":[");
    content = sl_json_get_t(d, cand, "content", SL_J_OBJ);
    parts = sl_json_get_t(d, content, "parts", SL_J_ARR);
    end = parts >= 0 ? SL_JSON_END(d, parts) : 0;
    for (p = parts + 1; parts >= 0 && p < end; p = SL_JSON_NEXT(d, p)) {
        int text = sl_json_get_t(d, p, "text", SL_J_STR);
        int call = sl_json_get_t(d, p, "functionCall", SL_J_OBJ);
        int thought = sl_json_get(d, p, "thought");

        if (call >= 0) {
            int name = sl_json_get_t(d, call, "name", SL_J_STR);
            int args = sl_json_get_t(d, call, "args", SL_J_OBJ);

            if (name < 0) {
                continue;
            }
            ntools++;
            sl_ap_buf_adds(out, nb++ ? ",{\"type\":\"tool_use\",\"id\":\""
                                     : "{\"type\":\"tool_use\",\"id\":\"");
            id.len = 0;
            sl_ap_gemini_tool_id(&id, d, p, call, idm.msg_id + 4, ntools);
            sl_ap_buf_add(out, id.ptr, id.len);
            SL_AP_BUF_LIT(out, "\",\"name\":");
            sl_ap_buf_add(out, sl_json_raw(d, name).ptr, sl_json_raw(d, name).len);
            SL_AP_BUF_LIT(out, ",\"input\":");
            if (args >= 0) {
                sl_ap_buf_add(out, sl_json_raw(d, args).ptr, sl_json_raw(d, args).len);
            } else {
                SL_AP_BUF_LIT(out, "{}");
            }
            SL_AP_BUF_LIT(out, "}");
        } else if (text >= 0 && thought >= 0 && d->t[thought].type == SL_J_TRUE) {
            sl_ap_buf_adds(out, nb++ ? ",{\"type\":\"thinking\",\"thinking\":"
                                     : "{\"type\":\"thinking\",\"thinking\":");
            sl_ap_buf_add(out, sl_json_raw(d, text).ptr, sl_json_raw(d, text).len);
            SL_AP_BUF_LIT(out, ",\"signature\":\"\"}");
        } else if (text >= 0 && d->t[text].len > 0) {
            sl_ap_buf_adds(out,
                           nb++ ? ",{\"type\":\"text\",\"text\":" : "{\"type\":\"text\",\"text\":");
            sl_ap_buf_add(out, sl_json_raw(d, text).ptr, sl_json_raw(d, text).len);
            SL_AP_BUF_LIT(out, "}");
        }
    }
    fr = sl_json_get_t(d, cand, "finishReason", SL_J_STR);
    stop = cand < 0 ? "refusal" : sl_ap_gemini_stop(d, fr, ntools > 0);
    sl_ap_buf_addf(out,
                   "],\"stop_reason\":\"%s\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":"
                   "%lld,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":%lld,"
                   "\"output_tokens\":%lld}}",
                   stop, (long long)sl_ap_uncached_input(u), (long long)u->cached,
                   (long long)u->completion);
    rc = out->oom || id.oom ? -2 : 0;
    sl_ap_buf_free(&id);
    return rc;
}
