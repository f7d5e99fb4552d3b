/* anthropic_request.c - Anthropic Messages request -> OpenAI chat request.
 *
 * A pure function over the client's bytes: the request is scanned once
 * (json_scan.c) and the OpenAI body is written straight into a buffer.
 * Strings and sub-documents are copied verbatim - they are valid JSON
 * already - so text, schemas and tool inputs are never decoded.
 *
 * Mapping (Anthropic -> OpenAI / DashScope compatible mode):
 *   system (string or text blocks)     -> first {"role":"system"} message,
 *                                         blocks joined with "\n\n"
 *   messages[] role "system"           -> appended to that first system
 *                                         message, in order (see
 *                                         sl_ap_tx_systems for why)
 *   text blocks                        -> one string (joined with "\n\n");
 *                                         a content array only with images
 *   image base64 / url                 -> image_url part (data: URI / url)
 *   tool_use (assistant)               -> tool_calls[] {id, function{name,
 *                                         arguments: the input as a JSON string}}
 *   tool_result (user)                 -> {"role":"tool"} messages, in order,
 *                                         before the rest of the user turn;
 *                                         block content joined with "\n";
 *                                         is_error prefixes "Error: ";
 *                                         images go to a following user message
 *   tools[].input_schema               -> tools[].function.parameters (verbatim)
 *   tools: []                          -> omitted (with tool_choice)
 *   tool_choice auto/none/tool         -> "auto" / "none" / {function}
 *   tool_choice any                    -> "required" (provider openai); for
 *                                         dashscope, which rejects "required":
 *                                         the only tool forced, else "auto"
 *   disable_parallel_tool_use          -> parallel_tool_calls false (true otherwise)
 *   stop_sequences                     -> stop
 *   max_tokens/temperature/top_p/top_k -> same; config options win (Kong)
 *   stream                             -> stream + stream_options.include_usage
 *   thinking enabled{budget_tokens}    -> enable_thinking true + thinking_budget
 *   thinking adaptive                  -> enable_thinking true
 *   thinking disabled                  -> enable_thinking false
 *   (dashscope only; non-streaming calls and JSON output always get
 *    enable_thinking false, since DashScope rejects thinking there)
 *   metadata.user_id                   -> user
 *   output_config.format json_schema   -> response_format json_schema
 *
 * Dropped on purpose (no equivalent upstream, or DashScope would reject it):
 *   cache_control (everywhere), thinking / redacted_thinking blocks in
 *   assistant turns (the signature means nothing to another model),
 *   citations, context_management, safeguards, output_config.effort,
 *   service_tier, container, inference_geo, user_profile_id, top-level
 *   cache_control, tools[].defer_loading / cache_control / type "custom",
 *   server tools other than web_search (a versioned `type`, e.g. bash_20250124;
 *   web_search_* maps to enable_search on a route that opts in, else 400),
 *   thinking.display, top_k for provider openai.
 * Refused with 400 (cannot be expressed, would be a silent loss):
 *   document blocks, file image sources, server-tool result blocks and any
 *   other unknown content block type.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ai_proxy.h"

typedef struct sl_ap_tx {
    const sl_ap_target_t *conf;
    const sl_jdoc_t *d;
    sl_ap_buf_t *out;
    sl_ap_req_info_t *info;
    int nmsg;
    sl_ap_model_t facts; /* dashscope: the model's row (models.c) */
    int web_search;      /* the request offers Anthropic's web_search tool */
    sl_ap_marks_t marks; /* cache_control markers carried upstream */
} sl_ap_tx_t;

/* A message's text written as one string, or - when it holds a kept
 * cache_control marker - as text parts split right after each marked block
 * (the separator moves to the start of the next part, so the parts joined
 * are the same text). */
typedef struct sl_ap_run {
    int n;    /* blocks written */
    int arr;  /* content is an array of parts */
    int open; /* a text part is open */
} sl_ap_run_t;

#define OUT(tx, lit) SL_AP_BUF_LIT((tx)->out, lit)

static int sl_ap_tx_fail(sl_ap_tx_t *tx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
sl_ap_tx_fail(sl_ap_tx_t *tx, int status, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(tx->info->errmsg, sizeof(tx->info->errmsg), fmt, ap);
    va_end(ap);
    tx->info->status = status;
    return -1;
}

static void
sl_ap_tx_raw(sl_ap_tx_t *tx, int tok)
{
    sl_str_t r = sl_json_raw(tx->d, tok);

    sl_ap_buf_add(tx->out, r.ptr, r.len);
}

static void
sl_ap_tx_sv(sl_ap_tx_t *tx, int tok)
{
    sl_ap_buf_add(tx->out, tx->d->src + tx->d->t[tok].start, tx->d->t[tok].len);
}

static void
sl_ap_tx_msg_begin(sl_ap_tx_t *tx, const char *role)
{
    if (tx->nmsg++) {
        sl_ap_buf_addc(tx->out, ',');
    }
    OUT(tx, "{\"role\":\"");
    sl_ap_buf_adds(tx->out, role);
    OUT(tx, "\"");
}

static const char sl_ap_ephemeral[] = "\",\"cache_control\":{\"type\":\"ephemeral\"}}";

/* Start the next block of a run (the message must be open). */
static void
sl_ap_run_next(sl_ap_tx_t *tx, sl_ap_run_t *r, const char *sep)
{
    if (r->n++ == 0) {
        sl_ap_buf_adds(tx->out,
                       r->arr ? ",\"content\":[{\"type\":\"text\",\"text\":\"" : ",\"content\":\"");
        r->open = 1;
        return;
    }
    if (r->arr && !r->open) {
        OUT(tx, ",{\"type\":\"text\",\"text\":\"");
        r->open = 1;
    }
    sl_ap_buf_adds(tx->out, sep);
}

/* After a block's text: close the part if the block is a kept marker. */
static void
sl_ap_run_mark(sl_ap_tx_t *tx, sl_ap_run_t *r, int blk)
{
    if (r->arr && r->open && sl_ap_marks_has(&tx->marks, blk)) {
        sl_ap_buf_add(tx->out, sl_ap_ephemeral, sizeof(sl_ap_ephemeral) - 1);
        r->open = 0;
    }
}

static void
sl_ap_run_end(sl_ap_tx_t *tx, sl_ap_run_t *r)
{
    if (!r->arr) {
        OUT(tx, "\"");
        return;
    }
    if (r->open) {
        OUT(tx, "\"}");
    }
    OUT(tx, "]");
}

/* Type of a content block, or NULL. */
static int
sl_ap_block_type(const sl_jdoc_t *d, int blk)
{
    return d->t[blk].type == SL_J_OBJ ? sl_json_get_t(d, blk, "type", SL_J_STR) : -1;
}

/* Write the url of an image block (quoted JSON string). */
static int
sl_ap_tx_image_url(sl_ap_tx_t *tx, int blk, const char *where)
{
    const sl_jdoc_t *d = tx->d;
    int src = sl_json_get_t(d, blk, "source", SL_J_OBJ);
    int st = sl_json_get_t(d, src, "type", SL_J_STR);

    if (sl_json_str_eq(d, st, "base64")) {
        int mt = sl_json_get_t(d, src, "media_type", SL_J_STR);
        int data = sl_json_get_t(d, src, "data", SL_J_STR);

        if (mt < 0 || data < 0) {
            return sl_ap_tx_fail(tx, 400, "%s: image source needs media_type and data", where);
        }
        OUT(tx, "\"data:");
        sl_ap_tx_sv(tx, mt);
        OUT(tx, ";base64,");
        sl_ap_tx_sv(tx, data);
        OUT(tx, "\"");
        return 0;
    }
    if (sl_json_str_eq(d, st, "url")) {
        int url = sl_json_get_t(d, src, "url", SL_J_STR);

        if (url < 0) {
            return sl_ap_tx_fail(tx, 400, "%s: image source needs a url", where);
        }
        sl_ap_tx_raw(tx, url);
        return 0;
    }
    return sl_ap_tx_fail(tx, 400,
                         "%s: image source type is not supported by this gateway "
                         "(use base64 or url)",
                         where);
}

static int
sl_ap_tx_image_part(sl_ap_tx_t *tx, int blk, const char *where)
{
    OUT(tx, "{\"type\":\"image_url\",\"image_url\":{\"url\":");
    if (sl_ap_tx_image_url(tx, blk, where) != 0) {
        return -1;
    }
    OUT(tx, "}}");
    return 0;
}

/* Append the text of a `system` value or an in-list system message (a
 * string or text blocks) to the one leading system message; *n counts the
 * parts written so far (the message is opened at the first). */
static int
sl_ap_tx_system(sl_ap_tx_t *tx, int v, const char *where, sl_ap_run_t *run)
{
    const sl_jdoc_t *d = tx->d;
    int b, end;

    if (d->t[v].type == SL_J_STR) {
        if (d->t[v].len == 0) {
            return 0;
        }
        if (run->n == 0) {
            sl_ap_tx_msg_begin(tx, "system");
        }
        sl_ap_run_next(tx, run, "\\n\\n");
        sl_ap_tx_sv(tx, v);
        return 0;
    }
    if (d->t[v].type != SL_J_ARR) {
        return d->t[v].type == SL_J_NULL
                   ? 0
                   : sl_ap_tx_fail(tx, 400, "%s: must be a string or an array of text blocks",
                                   where);
    }
    end = SL_JSON_END(d, v);
    for (b = v + 1; b < end; b = SL_JSON_NEXT(d, b)) {
        int t = sl_ap_block_type(d, b);
        int text = sl_json_get_t(d, b, "text", SL_J_STR);

        if (!sl_json_str_eq(d, t, "text") || text < 0) {
            return sl_ap_tx_fail(tx, 400, "%s: only text blocks are allowed in system content",
                                 where);
        }
        if (d->t[text].len == 0) {
            continue;
        }
        if (run->n == 0) {
            sl_ap_tx_msg_begin(tx, "system");
        }
        sl_ap_run_next(tx, run, "\\n\\n");
        sl_ap_tx_sv(tx, text);
        sl_ap_run_mark(tx, run, b);
    }
    return 0;
}

/* The leading system message: `system`, then every role:system message of
 * the list, in order.  Claude Code puts its environment block in such a
 * message right after the user's prompt, so a first turn ENDS with a
 * system message; OpenAI-compatible chat templates (Qwen's among them)
 * expect system text first and a user/tool message last, so in-list
 * system text is hoisted rather than left in place. */
static int
sl_ap_tx_systems(sl_ap_tx_t *tx, int sys, int msgs, int schema)
{
    const sl_jdoc_t *d = tx->d;
    int m, end = SL_JSON_END(d, msgs), mi = 0;
    sl_ap_run_t run = {0, sl_ap_marks_owner(&tx->marks, -1), 0};
    char where[48];

    if (sys >= 0 && sl_ap_tx_system(tx, sys, "system", &run) != 0) {
        return -1;
    }
    for (m = msgs + 1; m < end; m = SL_JSON_NEXT(d, m), mi++) {
        int c;

        if (!sl_json_str_eq(d, sl_json_get_t(d, m, "role", SL_J_STR), "system")) {
            continue;
        }
        c = sl_json_get(d, m, "content");
        if (c < 0) {
            continue;
        }
        snprintf(where, sizeof(where), "messages.%d.content", mi);
        if (sl_ap_tx_system(tx, c, where, &run) != 0) {
            return -1;
        }
    }
    if (schema >= 0) {
        /* json_object mode (the model has no json_schema): the schema goes
         * into the prompt, with the word "json" DashScope requires */
        sl_str_t r = sl_json_raw(tx->d, schema);

        if (run.n == 0) {
            sl_ap_tx_msg_begin(tx, "system");
        }
        sl_ap_run_next(tx, &run, "\\n\\n");
        OUT(tx, "Respond with one json object only, no other text. It must conform to this "
                "JSON Schema:\\n");
        sl_ap_buf_add_esc(tx->out, r.ptr, r.len);
    }
    if (run.n) {
        sl_ap_run_end(tx, &run);
        OUT(tx, "}");
    }
    return 0;
}

/* The content of one tool_result block as a string; images are counted in
 * *nimg (written later by sl_ap_tx_tool_images). */
static int
sl_ap_tx_tool_result(sl_ap_tx_t *tx, int blk, int mi, int *nimg)
{
    const sl_jdoc_t *d = tx->d;
    int id = sl_json_get_t(d, blk, "tool_use_id", SL_J_STR);
    int c = sl_json_get(d, blk, "content");
    int is_err = sl_json_get(d, blk, "is_error");
    int b, end, n = 0, imgs = 0, marked;
    char where[64];

    snprintf(where, sizeof(where), "messages.%d.content.tool_result", mi);
    if (id < 0) {
        return sl_ap_tx_fail(tx, 400, "%s: tool_use_id is required", where);
    }
    sl_ap_tx_msg_begin(tx, "tool");
    OUT(tx, ",\"tool_call_id\":");
    sl_ap_tx_raw(tx, id);
    marked = sl_ap_marks_has(&tx->marks, blk);
    sl_ap_buf_adds(tx->out,
                   marked ? ",\"content\":[{\"type\":\"text\",\"text\":\"" : ",\"content\":\"");
    if (is_err >= 0 && d->t[is_err].type == SL_J_TRUE) {
        OUT(tx, "Error: ");
    }
    if (c >= 0 && d->t[c].type == SL_J_STR) {
        sl_ap_tx_sv(tx, c);
    } else if (c >= 0 && d->t[c].type == SL_J_ARR) {
        end = SL_JSON_END(d, c);
        for (b = c + 1; b < end; b = SL_JSON_NEXT(d, b)) {
            int t = sl_ap_block_type(d, b);

            if (sl_json_str_eq(d, t, "text")) {
                int text = sl_json_get_t(d, b, "text", SL_J_STR);

                if (text < 0) {
                    continue;
                }
                if (n++) {
                    OUT(tx, "\\n");
                }
                sl_ap_tx_sv(tx, text);
            } else if (sl_json_str_eq(d, t, "image")) {
                imgs++;
            } else {
                return sl_ap_tx_fail(tx, 400,
                                     "%s: content block type %.*s is not supported "
                                     "by this gateway",
                                     where, t >= 0 ? (int)d->t[t].len : 7,
                                     t >= 0 ? d->src + d->t[t].start : "unknown");
            }
        }
        if (n == 0 && imgs > 0) {
            OUT(tx, "(image attached in the next message)");
        }
    } else if (c >= 0 && d->t[c].type != SL_J_NULL) {
        return sl_ap_tx_fail(tx, 400, "%s: content must be a string or an array", where);
    }
    if (marked) {
        sl_ap_buf_add(tx->out, sl_ap_ephemeral, sizeof(sl_ap_ephemeral) - 1);
        OUT(tx, "]}");
    } else {
        OUT(tx, "\"}");
    }
    *nimg += imgs;
    return 0;
}

/* Image parts found in the tool_result blocks of user content `arr`. */
static int
sl_ap_tx_tool_images(sl_ap_tx_t *tx, int arr, int mi, int *nparts)
{
    const sl_jdoc_t *d = tx->d;
    int b, end = SL_JSON_END(d, arr);
    char where[64];

    snprintf(where, sizeof(where), "messages.%d.content.tool_result", mi);
    for (b = arr + 1; b < end; b = SL_JSON_NEXT(d, b)) {
        int c, i, cend;

        if (!sl_json_str_eq(d, sl_ap_block_type(d, b), "tool_result")) {
            continue;
        }
        c = sl_json_get_t(d, b, "content", SL_J_ARR);
        if (c < 0) {
            continue;
        }
        cend = SL_JSON_END(d, c);
        for (i = c + 1; i < cend; i = SL_JSON_NEXT(d, i)) {
            if (sl_json_str_eq(d, sl_ap_block_type(d, i), "image")) {
                if ((*nparts)++) {
                    sl_ap_buf_addc(tx->out, ',');
                }
                if (sl_ap_tx_image_part(tx, i, where) != 0) {
                    return -1;
                }
            }
        }
    }
    return 0;
}

static int
sl_ap_tx_unsupported(sl_ap_tx_t *tx, int mi, int t)
{
    const sl_jdoc_t *d = tx->d;

    return sl_ap_tx_fail(tx, 400,
                         "messages.%d.content: content block type '%.*s' is not "
                         "supported by this gateway",
                         mi, t >= 0 ? (int)d->t[t].len : 7,
                         t >= 0 ? d->src + d->t[t].start : "unknown");
}

static int
sl_ap_tx_user(sl_ap_tx_t *tx, int c, int mi)
{
    const sl_jdoc_t *d = tx->d;
    int b, end = SL_JSON_END(d, c), nimg = 0, ntext = 0, nparts = 0;

    /* tool results first (DashScope wants them right after the assistant
     * turn that called the tools), counting what the user part holds */
    for (b = c + 1; b < end; b = SL_JSON_NEXT(d, b)) {
        int t = sl_ap_block_type(d, b);

        if (sl_json_str_eq(d, t, "tool_result")) {
            if (sl_ap_tx_tool_result(tx, b, mi, &nimg) != 0) {
                return -1;
            }
        } else if (sl_json_str_eq(d, t, "text")) {
            if (sl_json_get_t(d, b, "text", SL_J_STR) < 0) {
                return sl_ap_tx_fail(tx, 400,
                                     "messages.%d.content: a text block needs a string text", mi);
            }
            ntext++;
        } else if (sl_json_str_eq(d, t, "image")) {
            nimg++;
        } else if (sl_json_str_eq(d, t, "thinking") || sl_json_str_eq(d, t, "redacted_thinking")) {
            continue;
        } else {
            return sl_ap_tx_unsupported(tx, mi, t);
        }
    }
    if (ntext == 0 && nimg == 0) {
        return 0;
    }
    sl_ap_tx_msg_begin(tx, "user");
    if (nimg == 0) {
        /* text only: one string, which every model accepts (parts only to
         * carry a cache marker) */
        sl_ap_run_t run = {0, sl_ap_marks_owner(&tx->marks, mi), 0};

        for (b = c + 1; b < end; b = SL_JSON_NEXT(d, b)) {
            int text;

            if (!sl_json_str_eq(d, sl_ap_block_type(d, b), "text") ||
                (text = sl_json_get_t(d, b, "text", SL_J_STR)) < 0) {
                continue;
            }
            sl_ap_run_next(tx, &run, "\\n\\n");
            sl_ap_tx_sv(tx, text);
            sl_ap_run_mark(tx, &run, b);
        }
        sl_ap_run_end(tx, &run);
        OUT(tx, "}");
        return 0;
    }
    OUT(tx, ",\"content\":[");
    if (sl_ap_tx_tool_images(tx, c, mi, &nparts) != 0) {
        return -1;
    }
    for (b = c + 1; b < end; b = SL_JSON_NEXT(d, b)) {
        int t = sl_ap_block_type(d, b);
        char where[48];

        if (sl_json_str_eq(d, t, "text")) {
            int text = sl_json_get_t(d, b, "text", SL_J_STR);

            if (text < 0) {
                continue;
            }
            if (nparts++) {
                sl_ap_buf_addc(tx->out, ',');
            }
            OUT(tx, "{\"type\":\"text\",\"text\":");
            sl_ap_tx_raw(tx, text);
            if (sl_ap_marks_has(&tx->marks, b)) {
                OUT(tx, ",\"cache_control\":{\"type\":\"ephemeral\"}");
            }
            OUT(tx, "}");
        } else if (sl_json_str_eq(d, t, "image")) {
            if (nparts++) {
                sl_ap_buf_addc(tx->out, ',');
            }
            snprintf(where, sizeof(where), "messages.%d.content.image", mi);
            if (sl_ap_tx_image_part(tx, b, where) != 0) {
                return -1;
            }
        }
    }
    OUT(tx, "]}");
    return 0;
}

static int
sl_ap_tx_assistant(sl_ap_tx_t *tx, int c, int mi)
{
    const sl_jdoc_t *d = tx->d;
    int b, end = SL_JSON_END(d, c), ntools = 0;
    sl_ap_run_t run = {0, sl_ap_marks_owner(&tx->marks, mi), 0};

    sl_ap_tx_msg_begin(tx, "assistant");
    for (b = c + 1; b < end; b = SL_JSON_NEXT(d, b)) {
        int t = sl_ap_block_type(d, b);
        int text;

        if (sl_json_str_eq(d, t, "text")) {
            if ((text = sl_json_get_t(d, b, "text", SL_J_STR)) < 0) {
                return sl_ap_tx_fail(tx, 400,
                                     "messages.%d.content: a text block needs a string text", mi);
            }
            sl_ap_run_next(tx, &run, "\\n\\n");
            sl_ap_tx_sv(tx, text);
            sl_ap_run_mark(tx, &run, b);
        } else if (sl_json_str_eq(d, t, "tool_use")) {
            ntools++;
        } else if (sl_json_str_eq(d, t, "thinking") || sl_json_str_eq(d, t, "redacted_thinking")) {
            continue;
        } else {
            return sl_ap_tx_unsupported(tx, mi, t);
        }
    }
    if (run.n) {
        sl_ap_run_end(tx, &run);
    } else {
        sl_ap_buf_adds(tx->out, ntools ? ",\"content\":null" : ",\"content\":\"\"");
    }
    if (ntools) {
        int n = 0;

        OUT(tx, ",\"tool_calls\":[");
        for (b = c + 1; b < end; b = SL_JSON_NEXT(d, b)) {
            int id, name, input;

            if (!sl_json_str_eq(d, sl_ap_block_type(d, b), "tool_use")) {
                continue;
            }
            id = sl_json_get_t(d, b, "id", SL_J_STR);
            name = sl_json_get_t(d, b, "name", SL_J_STR);
            input = sl_json_get(d, b, "input");
            if (id < 0 || name < 0) {
                return sl_ap_tx_fail(tx, 400,
                                     "messages.%d.content.tool_use: id and name are required", mi);
            }
            if (input >= 0 && d->t[input].type != SL_J_OBJ && d->t[input].type != SL_J_NULL) {
                return sl_ap_tx_fail(tx, 400,
                                     "messages.%d.content.tool_use.input: must be an object", mi);
            }
            if (n++) {
                sl_ap_buf_addc(tx->out, ',');
            }
            OUT(tx, "{\"id\":");
            sl_ap_tx_raw(tx, id);
            OUT(tx, ",\"type\":\"function\",\"function\":{\"name\":");
            sl_ap_tx_raw(tx, name);
            OUT(tx, ",\"arguments\":\"");
            if (input >= 0 && d->t[input].type != SL_J_NULL) {
                sl_str_t r = sl_json_raw(d, input);
                sl_ap_buf_add_esc(tx->out, r.ptr, r.len);
            } else {
                OUT(tx, "{}");
            }
            OUT(tx, "\"}}");
        }
        OUT(tx, "]");
    }
    OUT(tx, "}");
    return 0;
}

static int
sl_ap_tx_messages(sl_ap_tx_t *tx, int msgs)
{
    const sl_jdoc_t *d = tx->d;
    int m, end = SL_JSON_END(d, msgs), mi = 0;

    for (m = msgs + 1; m < end; m = SL_JSON_NEXT(d, m), mi++) {
        int role = sl_json_get_t(d, m, "role", SL_J_STR);
        int c = sl_json_get(d, m, "content");

        if (d->t[m].type != SL_J_OBJ || role < 0) {
            return sl_ap_tx_fail(tx, 400, "messages.%d: must be an object with a role", mi);
        }
        if (c < 0 || (d->t[c].type != SL_J_STR && d->t[c].type != SL_J_ARR)) {
            return sl_ap_tx_fail(tx, 400, "messages.%d.content: must be a string or an array", mi);
        }
        if (sl_json_str_eq(d, role, "system")) {
            continue; /* hoisted by sl_ap_tx_systems */
        }
        if (!sl_json_str_eq(d, role, "user") && !sl_json_str_eq(d, role, "assistant")) {
            return sl_ap_tx_fail(tx, 400, "messages.%d.role: must be user or assistant", mi);
        }
        if (d->t[c].type == SL_J_STR) {
            sl_ap_tx_msg_begin(tx, sl_json_str_eq(d, role, "user") ? "user" : "assistant");
            OUT(tx, ",\"content\":");
            sl_ap_tx_raw(tx, c);
            OUT(tx, "}");
            continue;
        }
        if ((sl_json_str_eq(d, role, "user") ? sl_ap_tx_user(tx, c, mi)
                                             : sl_ap_tx_assistant(tx, c, mi)) != 0) {
            return -1;
        }
    }
    return 0;
}

static int
sl_ap_tx_tools(sl_ap_tx_t *tx, int tools, int choice)
{
    const sl_jdoc_t *d = tx->d;
    int t, end, n = 0, only_name = -1, ct, dp;

    if (tools < 0) {
        return 0;
    }
    end = SL_JSON_END(d, tools);
    for (t = tools + 1; t < end; t = SL_JSON_NEXT(d, t)) {
        int type = sl_json_get_t(d, t, "type", SL_J_STR);
        int name = sl_json_get_t(d, t, "name", SL_J_STR);
        int desc = sl_json_get_t(d, t, "description", SL_J_STR);
        int schema = sl_json_get_t(d, t, "input_schema", SL_J_OBJ);

        if (d->t[t].type != SL_J_OBJ || name < 0) {
            return sl_ap_tx_fail(tx, 400, "tools.%d: a tool needs a name", n);
        }
        if (type >= 0 && !sl_json_str_eq(d, type, "custom") &&
            !sl_json_str_eq(d, type, "function")) {
            if (d->t[type].len > 11 && memcmp(d->src + d->t[type].start, "web_search_", 11) == 0) {
                tx->web_search = 1; /* handled by sl_ap_tx_web_search */
            }
            continue; /* other server tools: the provider cannot run them */
        }
        sl_ap_buf_adds(tx->out, n++ ? "," : ",\"tools\":[");
        OUT(tx, "{\"type\":\"function\",\"function\":{\"name\":");
        sl_ap_tx_raw(tx, name);
        if (desc >= 0) {
            OUT(tx, ",\"description\":");
            sl_ap_tx_raw(tx, desc);
        }
        OUT(tx, ",\"parameters\":");
        if (schema >= 0) {
            sl_ap_tx_raw(tx, schema);
        } else {
            OUT(tx, "{\"type\":\"object\",\"properties\":{}}");
        }
        OUT(tx, "}}");
        only_name = name;
    }
    if (n == 0) {
        return 0;
    }
    OUT(tx, "]");
    if (choice < 0 || d->t[choice].type != SL_J_OBJ) {
        OUT(tx, ",\"parallel_tool_calls\":true");
        return 0;
    }
    ct = sl_json_get_t(d, choice, "type", SL_J_STR);
    dp = sl_json_get(d, choice, "disable_parallel_tool_use");
    if (sl_json_str_eq(d, ct, "none")) {
        OUT(tx, ",\"tool_choice\":\"none\"");
        return 0;
    }
    if (sl_json_str_eq(d, ct, "tool")) {
        int name = sl_json_get_t(d, choice, "name", SL_J_STR);

        if (name < 0) {
            return sl_ap_tx_fail(tx, 400, "tool_choice.name: required for type tool");
        }
        OUT(tx, ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":");
        sl_ap_tx_raw(tx, name);
        OUT(tx, "}}");
    } else if (sl_json_str_eq(d, ct, "any")) {
        if (tx->conf->prov->caps & SL_AP_CAP_TOOL_REQUIRED) {
            OUT(tx, ",\"tool_choice\":\"required\"");
        } else if (n == 1) {
            OUT(tx, ",\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":");
            sl_ap_tx_raw(tx, only_name);
            OUT(tx, "}}");
        } else {
            OUT(tx, ",\"tool_choice\":\"auto\"");
        }
    } else if (sl_json_str_eq(d, ct, "auto")) {
        OUT(tx, ",\"tool_choice\":\"auto\"");
    } else {
        return sl_ap_tx_fail(tx, 400, "tool_choice.type: must be auto, any, tool or none");
    }
    if (dp >= 0 && d->t[dp].type == SL_J_TRUE) {
        OUT(tx, ",\"parallel_tool_calls\":false");
    } else {
        OUT(tx, ",\"parallel_tool_calls\":true");
    }
    return 0;
}

/* Copy the text of the last user message (escaped form, cut at a
 * character boundary) as the query shown in the server_tool_use block. */
static void
sl_ap_tx_search_query(sl_ap_tx_t *tx, int msgs)
{
    const sl_jdoc_t *d = tx->d;
    int m, end = SL_JSON_END(d, msgs), text = -1, c, b;
    size_t n, i = 0, cap = sizeof(tx->info->search_query) - 1;
    const char *p;

    for (m = msgs + 1; m < end; m = SL_JSON_NEXT(d, m)) {
        if (!sl_json_str_eq(d, sl_json_get_t(d, m, "role", SL_J_STR), "user")) {
            continue;
        }
        c = sl_json_get(d, m, "content");
        if (c >= 0 && d->t[c].type == SL_J_STR) {
            text = c;
        } else if (c >= 0 && d->t[c].type == SL_J_ARR) {
            for (b = c + 1; b < SL_JSON_END(d, c); b = SL_JSON_NEXT(d, b)) {
                int t = sl_json_get_t(d, b, "text", SL_J_STR);
                if (t >= 0 && sl_json_str_eq(d, sl_ap_block_type(d, b), "text")) {
                    text = t;
                }
            }
        }
    }
    if (text < 0) {
        return;
    }
    p = d->src + d->t[text].start;
    n = d->t[text].len;
    while (i < n) {
        size_t step = p[i] == '\\' ? (p[i + 1] == 'u' ? 6 : 2) : 1;

        if (step == 1 && ((unsigned char)p[i] & 0xC0) == 0xC0) {
            while (i + step < n && ((unsigned char)p[i + step] & 0xC0) == 0x80) {
                step++;
            }
        }
        if (i + step > cap) {
            break;
        }
        i += step;
    }
    memcpy(tx->info->search_query, p, i);
    tx->info->search_query[i] = '\0';
}

/* Anthropic's web_search server tool (Claude Code's WebSearch) ->
 * DashScope's enable_search, on a route that opted in. */
static int
sl_ap_tx_web_search(sl_ap_tx_t *tx, int msgs)
{
    const sl_ap_target_t *conf = tx->conf;

    if (!tx->web_search) {
        return 0;
    }
    if (!(conf->prov->caps & SL_AP_CAP_QWEN) || !conf->web_search) {
        return sl_ap_tx_fail(tx, 400,
                             "tools: the web_search server tool is not enabled on this route "
                             "(set model.options.dashscope.web_search: true to map it to "
                             "DashScope's enable_search)");
    }
    if (tx->facts.known && !tx->facts.search) {
        return sl_ap_tx_fail(tx, 400,
                             "tools: web search is not available with model %.*s on DashScope "
                             "(see docs/ai-proxy.md, per-model facts)",
                             (int)tx->info->model.len, tx->info->model.ptr);
    }
    OUT(tx, ",\"enable_search\":true");
    if (conf->search_options) {
        OUT(tx, ",\"search_options\":");
        sl_ap_buf_adds(tx->out, conf->search_options);
    }
    tx->info->web_search = 1;
    sl_ap_tx_search_query(tx, msgs);
    return 0;
}

/* The top-level fields' types, checked as Anthropic's API checks them: a
 * wrong type is the client's bug, and dropping the field silently would
 * answer another question than the one asked. */
#define SL_AP_MAX_TOOLS 512 /* a bound, far above what clients send (1,000 is abuse) */

enum { SL_K_STR, SL_K_NUM, SL_K_BOOL, SL_K_POSINT, SL_K_UINT, SL_K_ARR, SL_K_OBJ, SL_K_STRARR };

static int
sl_ap_tx_check_types(sl_ap_tx_t *tx)
{
    static const struct {
        const char *key;
        int kind;
        const char *what;
    } fields[] = {
        {"model", SL_K_STR, "a string"},
        {"max_tokens", SL_K_POSINT, "an integer >= 1"},
        {"temperature", SL_K_NUM, "a number"},
        {"top_p", SL_K_NUM, "a number"},
        {"top_k", SL_K_UINT, "an integer >= 0"},
        {"stream", SL_K_BOOL, "a boolean"},
        {"stop_sequences", SL_K_STRARR, "an array of strings"},
        {"tools", SL_K_ARR, "an array"},
        {"tool_choice", SL_K_OBJ, "an object"},
        {"metadata", SL_K_OBJ, "an object"},
        {"thinking", SL_K_OBJ, "an object"},
    };
    const sl_jdoc_t *d = tx->d;
    size_t i;
    int t, e, ok;

    for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        int64_t v;

        t = sl_json_get(d, 0, fields[i].key);
        if (t < 0) {
            continue;
        }
        switch (fields[i].kind) {
        case SL_K_STR:
            ok = d->t[t].type == SL_J_STR;
            break;
        case SL_K_NUM:
            ok = d->t[t].type == SL_J_NUM;
            break;
        case SL_K_BOOL:
            ok = d->t[t].type == SL_J_TRUE || d->t[t].type == SL_J_FALSE;
            break;
        case SL_K_POSINT:
            ok = sl_json_int(d, t, &v) == 0 && v >= 1;
            break;
        case SL_K_UINT:
            ok = sl_json_int(d, t, &v) == 0 && v >= 0;
            break;
        case SL_K_ARR:
            ok = d->t[t].type == SL_J_ARR;
            break;
        case SL_K_OBJ:
            ok = d->t[t].type == SL_J_OBJ;
            break;
        default:
            ok = d->t[t].type == SL_J_ARR;
            for (e = t + 1; ok && e < SL_JSON_END(d, t); e = SL_JSON_NEXT(d, e)) {
                ok = d->t[e].type == SL_J_STR;
            }
            break;
        }
        if (!ok) {
            return sl_ap_tx_fail(tx, 400, "%s: must be %s", fields[i].key, fields[i].what);
        }
    }
    t = sl_json_get(d, 0, "tools");
    for (e = t + 1, i = 0; t >= 0 && e < SL_JSON_END(d, t); e = SL_JSON_NEXT(d, e), i++) {
        int schema = d->t[e].type == SL_J_OBJ ? sl_json_get(d, e, "input_schema") : -1;

        if (schema >= 0 && d->t[schema].type != SL_J_OBJ) {
            return sl_ap_tx_fail(tx, 400, "tools.%zu.input_schema: must be an object", i);
        }
    }
    if (i > SL_AP_MAX_TOOLS) {
        return sl_ap_tx_fail(tx, 400, "tools: at most %d tools are accepted, got %zu",
                             SL_AP_MAX_TOOLS, i);
    }
    t = sl_json_get(d, 0, "thinking");
    if (t >= 0) {
        int ty = sl_json_get_t(d, t, "type", SL_J_STR);
        int64_t v;

        if (!sl_json_str_eq(d, ty, "enabled") && !sl_json_str_eq(d, ty, "disabled") &&
            !sl_json_str_eq(d, ty, "adaptive")) {
            return sl_ap_tx_fail(tx, 400, "thinking.type: must be enabled, disabled or adaptive");
        }
        e = sl_json_get(d, t, "budget_tokens");
        if (e >= 0 && (sl_json_int(d, e, &v) != 0 || v < 0)) {
            return sl_ap_tx_fail(tx, 400, "thinking.budget_tokens: must be an integer >= 0");
        }
    }
    t = sl_json_get(d, 0, "tool_choice");
    if (t >= 0) {
        int ct = sl_json_get_t(d, t, "type", SL_J_STR);

        if (!sl_json_str_eq(d, ct, "auto") && !sl_json_str_eq(d, ct, "any") &&
            !sl_json_str_eq(d, ct, "tool") && !sl_json_str_eq(d, ct, "none")) {
            return sl_ap_tx_fail(tx, 400, "tool_choice.type: must be auto, any, tool or none");
        }
        if (sl_json_str_eq(d, ct, "tool") && sl_json_get_t(d, t, "name", SL_J_STR) < 0) {
            return sl_ap_tx_fail(tx, 400, "tool_choice.name: required for type tool");
        }
    }
    t = sl_json_get(d, sl_json_get(d, 0, "metadata"), "user_id");
    if (t >= 0 && d->t[t].type != SL_J_STR && d->t[t].type != SL_J_NULL) {
        return sl_ap_tx_fail(tx, 400, "metadata.user_id: must be a string");
    }
    return 0;
}

/* A config option (when set) or the request's number. */
static void
sl_ap_tx_number(sl_ap_tx_t *tx, const char *key, int have_conf, double conf_v, int req_tok)
{
    if (!have_conf && (req_tok < 0 || tx->d->t[req_tok].type != SL_J_NUM)) {
        return;
    }
    sl_ap_buf_addc(tx->out, ',');
    sl_ap_buf_add_qstr(tx->out, key, strlen(key));
    sl_ap_buf_addc(tx->out, ':');
    if (have_conf) {
        sl_ap_buf_add_g15(tx->out, conf_v);
    } else {
        sl_ap_tx_raw(tx, req_tok);
    }
}

/* The body auth parameter (param_location body), honouring allow_override. */
static void
sl_ap_tx_auth_param(sl_ap_tx_t *tx, int root, int emitted_keys_ok)
{
    const sl_ap_target_t *conf = tx->conf;
    int own;

    if (conf->param_location != SL_AP_PARAM_BODY || !conf->param_name || !emitted_keys_ok) {
        return;
    }
    own = sl_json_get(tx->d, root, conf->param_name);
    OUT(tx, ",");
    sl_ap_buf_add_qstr(tx->out, conf->param_name, strlen(conf->param_name));
    OUT(tx, ":");
    if (own >= 0 && conf->allow_override) {
        sl_ap_tx_raw(tx, own);
    } else {
        sl_ap_buf_add_qstr(tx->out, conf->param_value, strlen(conf->param_value));
    }
}

int
sl_ap_anthropic_request(const sl_ap_target_t *conf, const char *body, size_t len, sl_jdoc_t *d,
                        sl_ap_buf_t *out, sl_ap_req_info_t *info)
{
    sl_ap_tx_t tx = {conf, d, out, info, 0, {{0}, 0, 0, 0, 0, 0, 0}, 0, {0, {0}, {0}, 0}};
    int rc, model, msgs, sys, stream, tok, th, oc, fmt = -1, json_mode = 0, schema = -1;
    int64_t v;

    info->status = 0;
    info->errmsg[0] = '\0';
    rc = sl_json_parse(d, body, len);
    if (rc == -2) {
        return -2;
    }
    if (rc != 0) {
        return sl_ap_tx_fail(&tx, 400, "invalid JSON in request body: %s at offset %zu", d->err,
                             d->err_off);
    }
    if (d->t[0].type != SL_J_OBJ) {
        return sl_ap_tx_fail(&tx, 400, "request body must be a JSON object");
    }
    if (sl_ap_policy_dups(conf, d, info) != 0 || sl_ap_tx_check_types(&tx) != 0) {
        return -1;
    }

    model = sl_json_get(d, 0, "model");
    if (model >= 0 && d->t[model].type == SL_J_STR && d->t[model].len > 0) {
        if (conf->model_name && !sl_json_str_eq(d, model, conf->model_name) &&
            !(conf->model_alias && sl_json_str_eq(d, model, conf->model_alias))) {
            return sl_ap_tx_fail(&tx, 400, "cannot use own model - must be: %s", conf->model_name);
        }
        info->model = conf->model_name ? (sl_str_t){conf->model_name, strlen(conf->model_name)}
                                       : sl_json_sv(d, model);
    } else if (conf->model_name) {
        info->model.ptr = conf->model_name;
        info->model.len = strlen(conf->model_name);
    } else {
        return sl_ap_tx_fail(&tx, 400,
                             "model parameter not found in request, nor in gateway configuration");
    }
    msgs = sl_json_get_t(d, 0, "messages", SL_J_ARR);
    if (msgs < 0) {
        return sl_ap_tx_fail(&tx, 400, "messages: field required (an array)");
    }
    if (SL_JSON_END(d, msgs) == msgs + 1) {
        return sl_ap_tx_fail(&tx, 400, "messages: at least one message is required");
    }
    stream = sl_json_get(d, 0, "stream");
    info->stream = stream >= 0 && d->t[stream].type == SL_J_TRUE;
    if (info->stream && conf->response_streaming == SL_AP_STREAM_DENY) {
        return sl_ap_tx_fail(&tx, 400, "response streaming is not enabled for this LLM");
    }
    if (conf->response_streaming == SL_AP_STREAM_ALWAYS) {
        info->stream = 1;
    }

    sys = sl_json_get(d, 0, "system");
    if ((conf->prov->caps & SL_AP_CAP_QWEN)) {
        sl_ap_model_facts(conf, info->model.ptr, info->model.len, &tx.facts);
        if (tx.facts.cache) {
            sl_ap_cache_plan(d, sys, msgs, sl_json_get_t(d, 0, "tools", SL_J_ARR), &tx.marks);
            info->cache_marks = tx.marks.n;
        }
    }

    OUT(&tx, "{\"model\":");
    sl_ap_buf_add_qstr(out, info->model.ptr, info->model.len);
    OUT(&tx, ",\"messages\":[");
    oc = sl_json_get_t(d, 0, "output_config", SL_J_OBJ);
    fmt = sl_json_get_t(d, oc, "format", SL_J_OBJ);
    if (fmt >= 0) {
        if (!sl_json_str_eq(d, sl_json_get_t(d, fmt, "type", SL_J_STR), "json_schema")) {
            return sl_ap_tx_fail(&tx, 400,
                                 "output_config.format.type: only json_schema is supported");
        }
        schema = sl_json_get_t(d, fmt, "schema", SL_J_OBJ);
        if (schema < 0) {
            return sl_ap_tx_fail(&tx, 400, "output_config.format.schema: required for json_schema");
        }
        json_mode = (conf->prov->caps & SL_AP_CAP_QWEN) && !tx.facts.json_schema ? 2 : 1;
    }
    if (sl_ap_tx_systems(&tx, sys, msgs, json_mode == 2 ? schema : -1) != 0) {
        return -1;
    }
    if (sl_ap_tx_messages(&tx, msgs) != 0) {
        return -1;
    }
    OUT(&tx, "]");

    tok = sl_json_get(d, 0, "max_tokens");
    if (conf->max_tokens < 0 && tx.facts.max_output > 0 && sl_json_int(d, tok, &v) == 0 &&
        v > tx.facts.max_output) {
        /* Claude Code asks 32000/64000; over the model's bound DashScope
         * answers 400 (and the CLI retries it six times) */
        sl_ap_buf_addf(out, ",\"max_tokens\":%lld", (long long)tx.facts.max_output);
    } else {
        sl_ap_tx_number(&tx, "max_tokens", conf->max_tokens >= 0, (double)conf->max_tokens, tok);
    }
    sl_ap_tx_number(&tx, "temperature", conf->temperature >= 0, conf->temperature,
                    sl_json_get(d, 0, "temperature"));
    sl_ap_tx_number(&tx, "top_p", conf->top_p >= 0, conf->top_p, sl_json_get(d, 0, "top_p"));
    if ((conf->prov->caps & SL_AP_CAP_TOP_K)) {
        sl_ap_tx_number(&tx, "top_k", conf->top_k >= 0, (double)conf->top_k,
                        sl_json_get(d, 0, "top_k"));
    }
    tok = sl_json_get_t(d, 0, "stop_sequences", SL_J_ARR);
    if (tok >= 0 && SL_JSON_END(d, tok) > tok + 1) {
        OUT(&tx, ",\"stop\":");
        sl_ap_tx_raw(&tx, tok);
    }
    th = sl_json_get_t(d, 0, "thinking", SL_J_OBJ);
    if (!info->stream && (conf->prov->caps & SL_AP_CAP_QWEN) && fmt < 0 && tx.facts.known &&
        tx.facts.thinking == SL_AP_THINK_STREAM &&
        (sl_json_str_eq(d, sl_json_get_t(d, th, "type", SL_J_STR), "enabled") ||
         sl_json_str_eq(d, sl_json_get_t(d, th, "type", SL_J_STR), "adaptive"))) {
        /* DashScope thinks only when streaming: stream upstream, and fold
         * the stream into one message for this non-streaming client */
        info->upstream_stream = 1;
    }
    if ((info->stream || info->upstream_stream) && (conf->prov->caps & SL_AP_CAP_STREAM_USAGE)) {
        OUT(&tx, ",\"stream\":true,\"stream_options\":{\"include_usage\":true}");
    } else if (info->stream || info->upstream_stream) {
        OUT(&tx, ",\"stream\":true"); /* the provider sends usage on its own (Mistral) */
    } else {
        OUT(&tx, ",\"stream\":false");
    }
    if (sl_ap_tx_tools(&tx, sl_json_get_t(d, 0, "tools", SL_J_ARR),
                       sl_json_get(d, 0, "tool_choice")) != 0) {
        return -1;
    }

    if (json_mode == 1) {
        OUT(&tx, ",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":"
                 "\"response\",\"schema\":");
        sl_ap_tx_raw(&tx, schema);
        OUT(&tx, "}}");
    } else if (json_mode == 2) {
        OUT(&tx, ",\"response_format\":{\"type\":\"json_object\"}");
    }

    if ((conf->prov->caps & SL_AP_CAP_QWEN)) {
        int ty = sl_json_get_t(d, th, "type", SL_J_STR);

        if (!(info->stream || info->upstream_stream) || json_mode ||
            (tx.facts.known && tx.facts.thinking == SL_AP_THINK_NO)) {
            /* a model without thinking (qwen-max, Qwen-Coder) answers 400
             * to enable_thinking: true; Claude Code asks on every turn */
            OUT(&tx, ",\"enable_thinking\":false");
        } else if (sl_json_str_eq(d, ty, "enabled")) {
            int64_t budget;

            OUT(&tx, ",\"enable_thinking\":true");
            if (sl_json_int(d, sl_json_get(d, th, "budget_tokens"), &budget) == 0 && budget > 0) {
                sl_ap_buf_addf(out, ",\"thinking_budget\":%lld", (long long)budget);
            }
        } else if (sl_json_str_eq(d, ty, "adaptive")) {
            OUT(&tx, ",\"enable_thinking\":true");
        } else if (sl_json_str_eq(d, ty, "disabled")) {
            OUT(&tx, ",\"enable_thinking\":false");
        }
    }

    if (sl_ap_tx_web_search(&tx, msgs) != 0) {
        return -1;
    }
    tok = sl_json_get_t(d, sl_json_get_t(d, 0, "metadata", SL_J_OBJ), "user_id", SL_J_STR);
    if (tok >= 0) {
        OUT(&tx, ",\"user\":");
        sl_ap_tx_raw(&tx, tok);
    }
    sl_ap_tx_auth_param(&tx, 0, 1);
    OUT(&tx, "}");
    info->input_estimate = sl_ap_estimate_tokens(d);
    return out->oom ? -2 : 0;
}
