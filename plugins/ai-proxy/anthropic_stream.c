/* anthropic_stream.c - OpenAI chat chunks (SSE) -> Anthropic stream events.
 *
 * A state machine fed the upstream body in whatever pieces the network
 * delivers.  sse.c reassembles events (keeping at most one incomplete one);
 * each event's JSON is scanned once with a reused token array and the
 * needed strings are copied verbatim (they are already JSON-escaped) into
 * the output events.
 *
 * The Anthropic grammar is strict and clients (the Anthropic SDK, Claude
 * Code) rely on it:
 *     message_start ping (content_block_start delta* content_block_stop)*
 *     message_delta message_stop
 * Blocks are sequential, never interleaved: a thinking block is closed (with
 * a signature_delta) before text starts, each tool call gets its own block.
 * A failure replaces the rest of the stream with one `error` event.
 *
 * Things that cannot be expressed and are dropped on purpose: tool-call
 * fragments that arrive for a call whose block was already closed (no
 * OpenAI-compatible provider interleaves calls), choices other than 0.
 */

#include <stdio.h>
#include <string.h>

#include "ai_proxy.h"

#define EV(s, lit) SL_AP_BUF_LIT((s)->out, lit)

void
sl_ap_stream_init(sl_ap_stream_t *s, sl_str_t model, int64_t input_estimate)
{
    size_t n = model.len < sizeof(s->model) - 1 ? model.len : sizeof(s->model) - 1;

    memset(s, 0, sizeof(*s));
    if (n) {
        memcpy(s->model, model.ptr, n);
    }
    s->model[n] = '\0';
    strcpy(s->msg_id, "msg_sluice");
    s->input_estimate = input_estimate;
    s->tool_index = -1;
}

void
sl_ap_stream_free(sl_ap_stream_t *s)
{
    sl_sse_free(&s->sse);
    sl_ap_buf_free(&s->tmp);
}

static void
sl_ap_stream_start(sl_ap_stream_t *s)
{
    if (s->started) {
        return;
    }
    s->started = 1;
    EV(s, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"");
    sl_ap_buf_adds(s->out, s->msg_id);
    EV(s, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    sl_ap_buf_add_qstr(s->out, s->model, strlen(s->model));
    sl_ap_buf_addf(s->out,
                   ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                   "\"usage\":{\"input_tokens\":%lld,\"cache_creation_input_tokens\":0,"
                   "\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
                   (long long)s->input_estimate);
    EV(s, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    if (s->search_query) {
        /* the web_search server tool ran upstream (enable_search): its two
         * blocks, whole, before the answer */
        sl_ap_buf_t b = {0};
        sl_str_t id = {s->msg_id + 4, strlen(s->msg_id + 4)};

        sl_ap_search_blocks(&b, id, s->search_query);
        if (b.oom) {
            s->out->oom = 1;
        } else {
            char *sep = memmem(b.ptr, b.len, "},{\"type\":\"web_search_tool_result\"", 34);
            size_t n1 = sep ? (size_t)(sep - b.ptr) + 1 : b.len;

            EV(s, "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                  "\"index\":0,\"content_block\":");
            sl_ap_buf_add(s->out, b.ptr, n1);
            EV(s, "}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                  "\"index\":0}\n\n"
                  "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                  "\"index\":1,\"content_block\":");
            sl_ap_buf_add(s->out, b.ptr + n1 + 1, b.len - n1 - 1);
            EV(s, "}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                  "\"index\":1}\n\n");
            s->nblocks = 2;
        }
        sl_ap_buf_free(&b);
    }
}

static void
sl_ap_stream_close_block(sl_ap_stream_t *s)
{
    if (s->blk == SL_AP_BLK_NONE) {
        return;
    }
    if (s->blk == SL_AP_BLK_THINKING) {
        sl_ap_buf_addf(
            s->out,
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
            "\"index\":%d,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"\"}}\n\n",
            s->blk_index);
    }
    sl_ap_buf_addf(s->out,
                   "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                   "\"index\":%d}\n\n",
                   s->blk_index);
    s->blk = SL_AP_BLK_NONE;
}

/* Open a text or thinking block (closing whatever is open). */
static void
sl_ap_stream_open(sl_ap_stream_t *s, int kind)
{
    if (s->blk == kind) {
        return;
    }
    sl_ap_stream_close_block(s);
    s->blk = kind;
    s->blk_index = s->nblocks++;
    sl_ap_buf_addf(s->out,
                   "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                   "\"index\":%d,\"content_block\":",
                   s->blk_index);
    if (kind == SL_AP_BLK_TEXT) {
        EV(s, "{\"type\":\"text\",\"text\":\"\"}}\n\n");
    } else {
        EV(s, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n");
    }
}

/* One content_block_delta event; runs once per token, so it is written with
 * one reservation and plain copies (printf's parsing of a format was a
 * sixth of the chunk's cost, a reservation per piece another tenth). */
static void
sl_ap_stream_delta(sl_ap_stream_t *s, sl_str_t type, sl_str_t field, sl_str_t esc)
{
    static const char pre[] = "event: content_block_delta\n"
                              "data: {\"type\":\"content_block_delta\",\"index\":";
    static const char mid[] = ",\"delta\":{\"type\":\"";
    char num[12];
    int i = (int)sizeof(num);
    unsigned v = (unsigned)s->blk_index;
    size_t need;
    char *o;

    do {
        num[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v && i > 0);
    need = sizeof(pre) - 1 + (sizeof(num) - (size_t)i) + sizeof(mid) - 1 + type.len + 3 +
           field.len + 3 + esc.len + 5;
    if (sl_ap_buf_reserve(s->out, need) != 0) {
        return;
    }
    o = s->out->ptr + s->out->len;
#define PUT(p, n) (memcpy(o, (p), (n)), o += (n))
    PUT(pre, sizeof(pre) - 1);
    PUT(num + i, sizeof(num) - (size_t)i);
    PUT(mid, sizeof(mid) - 1);
    PUT(type.ptr, type.len);
    PUT("\",\"", 3);
    PUT(field.ptr, field.len);
    PUT("\":\"", 3);
    PUT(esc.ptr, esc.len);
    PUT("\"}}\n\n", 5);
#undef PUT
    s->out->len += need;
    s->out->ptr[s->out->len] = '\0';
    s->gen_tokens += sl_ap_text_tokens(esc.ptr, esc.len);
}

static void
sl_ap_stream_tool(sl_ap_stream_t *s, const sl_jdoc_t *d, int tc)
{
    int itok = sl_json_get_t(d, tc, "index", SL_J_NUM);
    int idtok = sl_json_get_t(d, tc, "id", SL_J_STR);
    int fn = sl_json_get_t(d, tc, "function", SL_J_OBJ);
    int name = sl_json_get_t(d, fn, "name", SL_J_STR);
    int args = sl_json_get_t(d, fn, "arguments", SL_J_STR);
    int64_t idx = 0;
    sl_str_t id = {"", 0};
    int fresh;

    if (itok < 0 || sl_json_int(d, itok, &idx) != 0) {
        idx = s->tool_index >= 0 ? s->tool_index : 0;
    }
    if (idtok >= 0) {
        id = sl_json_sv(d, idtok);
    }
    if (s->blk == SL_AP_BLK_TOOL && idx == s->tool_index) {
        /* the same call continues, unless a provider reuses the index with
         * a new non-empty id */
        fresh = id.len > 0 && s->tmp.len > 0 &&
                !(id.len == s->tmp.len && memcmp(id.ptr, s->tmp.ptr, id.len) == 0);
    } else {
        fresh = idx > s->tool_index || s->ntools == 0 || id.len > 0;
    }
    if (fresh) {
        sl_ap_stream_close_block(s);
        s->blk = SL_AP_BLK_TOOL;
        s->blk_index = s->nblocks++;
        s->tool_index = idx;
        s->ntools++;
        s->tmp.len = 0;
        sl_ap_buf_addf(s->out,
                       "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                       "\"index\":%d,\"content_block\":{\"type\":\"tool_use\",\"id\":\"",
                       s->blk_index);
        if (id.len > 0) {
            sl_ap_buf_add(&s->tmp, id.ptr, id.len);
            sl_ap_buf_add(s->out, id.ptr, id.len);
        } else {
            /* a stable, unique id when the provider gives none */
            sl_ap_buf_addf(&s->tmp, "toolu_%s_%d", s->msg_id + 4, s->ntools);
            sl_ap_buf_add(s->out, s->tmp.ptr, s->tmp.len);
        }
        EV(s, "\",\"name\":\"");
        if (name >= 0) {
            sl_str_t n = sl_json_sv(d, name);
            sl_ap_buf_add(s->out, n.ptr, n.len);
        }
        EV(s, "\",\"input\":{}}}\n\n");
    } else if (s->blk != SL_AP_BLK_TOOL || idx != s->tool_index) {
        return; /* fragment of an already closed call */
    }
    if (args >= 0 && d->t[args].len > 0) {
        sl_ap_stream_delta(s, (sl_str_t)SL_STR("input_json_delta"),
                           (sl_str_t)SL_STR("partial_json"), sl_json_sv(d, args));
    }
}

void
sl_ap_stream_keepalive(sl_ap_stream_t *s, sl_ap_buf_t *out)
{
    if (s->ended) {
        return;
    }
    s->out = out;
    if (!s->started) {
        sl_ap_stream_start(s); /* includes a ping */
    } else {
        EV(s, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
    }
}

static void
sl_ap_stream_error(sl_ap_stream_t *s, const char *type, sl_str_t esc_msg)
{
    EV(s, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"");
    sl_ap_buf_adds(s->out, type);
    EV(s, "\",\"message\":\"");
    sl_ap_buf_add(s->out, esc_msg.ptr, esc_msg.len);
    EV(s, "\"}}\n\n");
    s->ended = 1;
}

static void
sl_ap_stream_finish(sl_ap_stream_t *s)
{
    int64_t out_tokens, in_tokens;

    if (s->ended) {
        return;
    }
    sl_ap_stream_start(s);
    sl_ap_stream_close_block(s);
    if (s->usage.have) {
        out_tokens = s->usage.completion;
        in_tokens = sl_ap_uncached_input(&s->usage);
    } else {
        out_tokens = s->gen_tokens;
        in_tokens = s->input_estimate;
    }
    s->usage.out_chars_tokens = s->gen_tokens;
    sl_ap_buf_addf(
        s->out,
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
        "{\"stop_reason\":\"%s\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":%lld,"
        "\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld,"
        "\"output_tokens\":%lld}}\n\n",
        s->stop_reason[0] ? s->stop_reason : "end_turn", (long long)in_tokens,
        (long long)(s->usage.have ? s->usage.created : 0),
        (long long)(s->usage.have ? s->usage.cached : 0), (long long)out_tokens);
    EV(s, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    s->ended = 1;
}

static void
sl_ap_stream_set_id(sl_ap_stream_t *s, sl_str_t id)
{
    size_t i, o = 4;

    if (id.len > 9 && memcmp(id.ptr, "chatcmpl-", 9) == 0) {
        id.ptr += 9;
        id.len -= 9;
    }
    for (i = 0; i < id.len && o < sizeof(s->msg_id) - 1; i++) {
        char c = id.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_') {
            s->msg_id[o++] = c;
        }
    }
    if (o > 4) {
        s->msg_id[o] = '\0';
    }
}

/* Several members of one object read in one walk over its keys: vals[i] is
 * the value of m[i].key when of type m[i].type (0: any), as sl_json_get_t
 * gives it (the key's first occurrence), else -1.  A chunk's top has five
 * members worth reading; a lookup each walked its keys five times per
 * token.  A key written with escapes (no provider sends one) sends every
 * lookup of the object through sl_json_get, which compares unescaped text. */
typedef struct {
    const char *key;
    size_t len;
    int type; /* sl_jtype_t, 0: any */
} sl_ap_member_t;

#define SL_AP_MEMBER(lit, type)                                                                    \
    {                                                                                              \
        lit, sizeof(lit) - 1, type                                                                 \
    }

static void
sl_ap_members(const sl_jdoc_t *d, int obj, const sl_ap_member_t *m, int n, int *vals)
{
    unsigned seen = 0, all = (1u << n) - 1;
    int i, k, end;

    for (i = 0; i < n; i++) {
        vals[i] = -1;
    }
    if (obj < 0 || d->t[obj].type != SL_J_OBJ) {
        return;
    }
    end = SL_JSON_END(d, obj);
    for (k = obj + 1; k < end && seen != all; k = SL_JSON_NEXT_MEMBER(d, k)) {
        const sl_jtok_t *t = &d->t[k];
        const char *key = d->src + t->start;

        if (t->esc) {
            for (i = 0; i < n; i++) {
                int v = sl_json_get(d, obj, m[i].key);
                vals[i] = v >= 0 && (m[i].type == 0 || d->t[v].type == m[i].type) ? v : -1;
            }
            return;
        }
        for (i = 0; i < n; i++) {
            if (t->len == m[i].len && key[0] == m[i].key[0] && !(seen & (1u << i)) &&
                memcmp(key, m[i].key, m[i].len) == 0) {
                seen |= 1u << i;
                if (m[i].type == 0 || d->t[k + 1].type == m[i].type) {
                    vals[i] = k + 1;
                }
                break;
            }
        }
    }
}

static int
sl_ap_stream_event(void *ud, const char *data, size_t len)
{
    sl_ap_stream_t *s = ud;
    sl_jdoc_t *d = sl_sse_event_doc();
    int err, ch, c, end, tok;

    if (s->ended) {
        return 0;
    }
    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) {
        if (!s->finished) {
            /* [DONE] with no finish_reason before it: chunks were lost (an
             * unparsable one was skipped), so the answer is incomplete. */
            sl_ap_stream_close_block(s);
            sl_ap_stream_error(s, "api_error",
                               (sl_str_t)SL_STR("upstream stream ended without a finish reason"));
            return 0;
        }
        sl_ap_stream_finish(s);
        return 0;
    }
    if (len == 0) {
        return 0; /* "data:" alone: nothing to translate */
    }
    if (sl_json_parse(d, data, len) != 0 || d->t[0].type != SL_J_OBJ) {
        /* A chunk lost in the middle would make the answer look complete
         * but not be: Claude Code must see the stream fail. */
        s->bad_chunk = 1;
        sl_ap_stream_close_block(s);
        sl_ap_stream_error(s, "api_error",
                           (sl_str_t)SL_STR("upstream sent an invalid stream chunk"));
        return 0;
    }
    static const sl_ap_member_t top[] = {
        SL_AP_MEMBER("error", 0),          SL_AP_MEMBER("id", SL_J_STR),
        SL_AP_MEMBER("model", SL_J_STR),   SL_AP_MEMBER("usage", SL_J_OBJ),
        SL_AP_MEMBER("choices", SL_J_ARR),
    };
    static const sl_ap_member_t choice[] = {
        SL_AP_MEMBER("delta", SL_J_OBJ),
        SL_AP_MEMBER("finish_reason", SL_J_STR),
    };
    static const sl_ap_member_t delta[] = {
        SL_AP_MEMBER("reasoning_content", SL_J_STR),
        SL_AP_MEMBER("content", SL_J_STR),
        SL_AP_MEMBER("tool_calls", SL_J_ARR),
    };
    int v[5], cv[2], dv[3];

    sl_ap_members(d, 0, top, 5, v);
    err = v[0];
    if (err >= 0 && d->t[err].type != SL_J_NULL) {
        int m = sl_json_get_t(d, err, "message", SL_J_STR);
        int code = sl_json_get_t(d, err, "code", SL_J_STR);
        sl_str_t msg = m >= 0 ? sl_json_sv(d, m) : (sl_str_t)SL_STR("upstream error");

        if (d->t[err].type == SL_J_STR) {
            msg = sl_json_sv(d, err);
        }
        sl_ap_stream_error(s,
                           (sl_json_str_eq(d, code, "data_inspection_failed") ||
                            sl_json_str_eq(d, code, "invalid_parameter_error"))
                               ? "invalid_request_error"
                               : "api_error",
                           msg);
        return 0;
    }
    if (!s->started) {
        if (v[1] >= 0) {
            sl_ap_stream_set_id(s, sl_json_sv(d, v[1]));
        }
        sl_ap_stream_start(s);
    }
    tok = v[2];
    if (tok >= 0 && s->usage.response_model[0] == '\0' &&
        d->t[tok].len < sizeof(s->usage.response_model)) {
        memcpy(s->usage.response_model, d->src + d->t[tok].start, d->t[tok].len);
        s->usage.response_model[d->t[tok].len] = '\0';
    }
    if (v[3] >= 0) {
        sl_ap_usage_from_json(d, v[3], &s->usage);
    }
    ch = v[4];
    if (ch < 0 || SL_JSON_END(d, ch) == ch + 1) {
        return 0;
    }
    c = ch + 1; /* choice 0 */
    if (d->t[c].type == SL_J_OBJ) {
        int fr;

        sl_ap_members(d, c, choice, 2, cv);
        fr = cv[1];
        if (cv[0] >= 0) {
            sl_ap_members(d, cv[0], delta, 3, dv);
            tok = dv[0];
            if (tok >= 0 && d->t[tok].len > 0) {
                sl_ap_stream_open(s, SL_AP_BLK_THINKING);
                sl_ap_stream_delta(s, (sl_str_t)SL_STR("thinking_delta"),
                                   (sl_str_t)SL_STR("thinking"), sl_json_sv(d, tok));
            }
            tok = dv[1];
            if (tok >= 0 && d->t[tok].len > 0) {
                sl_ap_stream_open(s, SL_AP_BLK_TEXT);
                sl_ap_stream_delta(s, (sl_str_t)SL_STR("text_delta"), (sl_str_t)SL_STR("text"),
                                   sl_json_sv(d, tok));
            }
            tok = dv[2];
            if (tok >= 0) {
                end = SL_JSON_END(d, tok);
                for (c = tok + 1; c < end; c = SL_JSON_NEXT(d, c)) {
                    if (d->t[c].type == SL_J_OBJ) {
                        sl_ap_stream_tool(s, d, c);
                    }
                }
            }
        }
        if (fr >= 0) {
            sl_str_t f = sl_json_sv(d, fr);
            const char *sr = sl_ap_stop_reason(f.ptr, f.len);

            snprintf(s->stop_reason, sizeof(s->stop_reason), "%s", sr);
            s->finished = 1;
            sl_ap_stream_close_block(s);
        }
    }
    return 0;
}

int
sl_ap_stream_feed(sl_ap_stream_t *s, const char *p, size_t n, int eof, int truncated,
                  sl_ap_buf_t *out)
{
    int rc;

    s->out = out;
    rc = s->ended && s->sse.overflow ? 0 : sl_sse_feed(&s->sse, p, n, eof, sl_ap_stream_event, s);
    if (rc == -2) {
        return -2;
    }
    if (rc == SL_SSE_TOO_BIG && !s->ended) {
        sl_ap_stream_close_block(s);
        sl_ap_stream_error(
            s, "api_error",
            (sl_str_t)SL_STR("upstream stream event larger than max_stream_event_size"));
    }
    if (eof && !s->ended) {
        if (s->finished) {
            /* content complete; only the usage chunk or [DONE] is missing */
            sl_ap_stream_finish(s);
        } else {
            sl_ap_stream_close_block(s);
            sl_ap_stream_error(
                s, "api_error",
                truncated ? (sl_str_t)SL_STR(
                                "upstream connection closed before the response was complete")
                          : (sl_str_t)SL_STR("upstream stream ended without a finish reason"));
        }
    }
    if (eof && !s->usage.have) {
        s->usage.out_chars_tokens = s->gen_tokens;
    }
    return out->oom || s->tmp.oom ? -2 : 0;
}
