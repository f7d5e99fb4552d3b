/* anthropic_emit.c - Anthropic Messages stream events (see anthropic_emit.h). */

#include <stdio.h>
#include <string.h>

#include "anthropic_emit.h"

#define EV(e, lit) SL_AP_BUF_LIT((e)->out, lit)

void
sl_ap_emit_init(sl_ap_emit_t *e, sl_str_t model, int64_t input_estimate)
{
    size_t n = model.len < sizeof(e->model) - 1 ? model.len : sizeof(e->model) - 1;

    memset(e, 0, sizeof(*e));
    if (n) {
        memcpy(e->model, model.ptr, n);
    }
    e->model[n] = '\0';
    strcpy(e->msg_id, "msg_sluice");
    e->input_estimate = input_estimate;
}

void
sl_ap_emit_set_id(sl_ap_emit_t *e, sl_str_t id)
{
    size_t i, o = 4;

    for (i = 0; i < id.len && o < sizeof(e->msg_id) - 1; i++) {
        char c = id.ptr[i];

        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_') {
            e->msg_id[o++] = c;
        }
    }
    if (o > 4) {
        memcpy(e->msg_id, "msg_", 4);
        e->msg_id[o] = '\0';
    }
}

void
sl_ap_emit_start(sl_ap_emit_t *e)
{
    if (e->started) {
        return;
    }
    e->started = 1;
    EV(e, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"");
    sl_ap_buf_adds(e->out, e->msg_id);
    EV(e, "\",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    sl_ap_buf_add_qstr(e->out, e->model, strlen(e->model));
    sl_ap_buf_addf(e->out,
                   ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
                   "\"usage\":{\"input_tokens\":%lld,\"cache_creation_input_tokens\":0,"
                   "\"cache_read_input_tokens\":0,\"output_tokens\":1}}}\n\n",
                   (long long)e->input_estimate);
    EV(e, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
}

void
sl_ap_emit_ping(sl_ap_emit_t *e)
{
    if (e->ended) {
        return;
    }
    if (!e->started) {
        sl_ap_emit_start(e); /* includes a ping */
        return;
    }
    EV(e, "event: ping\ndata: {\"type\":\"ping\"}\n\n");
}

void
sl_ap_emit_close(sl_ap_emit_t *e)
{
    if (e->blk == SL_AP_BLK_NONE) {
        return;
    }
    if (e->blk == SL_AP_BLK_THINKING && !e->sig_sent) {
        sl_ap_buf_addf(
            e->out,
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
            "\"index\":%d,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"\"}}\n\n",
            e->blk_index);
    }
    sl_ap_buf_addf(e->out,
                   "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                   "\"index\":%d}\n\n",
                   e->blk_index);
    e->blk = SL_AP_BLK_NONE;
}

static void
sl_ap_emit_open(sl_ap_emit_t *e, int kind)
{
    if (e->blk == kind && !(kind == SL_AP_BLK_THINKING && e->sig_sent)) {
        return;
    }
    sl_ap_emit_start(e);
    sl_ap_emit_close(e);
    e->blk = kind;
    e->sig_sent = 0;
    e->blk_index = e->nblocks++;
    sl_ap_buf_addf(e->out,
                   "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                   "\"index\":%d,\"content_block\":",
                   e->blk_index);
    if (kind == SL_AP_BLK_TEXT) {
        EV(e, "{\"type\":\"text\",\"text\":\"\"}}\n\n");
    } else {
        EV(e, "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n");
    }
}

static void
sl_ap_emit_delta(sl_ap_emit_t *e, const char *type, const char *field, sl_str_t esc)
{
    sl_ap_buf_addf(e->out,
                   "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                   "\"index\":%d,\"delta\":{\"type\":\"%s\",\"%s\":\"",
                   e->blk_index, type, field);
    sl_ap_buf_add(e->out, esc.ptr, esc.len);
    EV(e, "\"}}\n\n");
    e->gen_tokens += sl_ap_text_tokens(esc.ptr, esc.len);
}

void
sl_ap_emit_text(sl_ap_emit_t *e, sl_str_t esc)
{
    if (e->ended || esc.len == 0) {
        return;
    }
    sl_ap_emit_open(e, SL_AP_BLK_TEXT);
    sl_ap_emit_delta(e, "text_delta", "text", esc);
}

void
sl_ap_emit_thinking(sl_ap_emit_t *e, sl_str_t esc)
{
    if (e->ended || esc.len == 0) {
        return;
    }
    sl_ap_emit_open(e, SL_AP_BLK_THINKING);
    sl_ap_emit_delta(e, "thinking_delta", "thinking", esc);
}

void
sl_ap_emit_signature(sl_ap_emit_t *e, sl_str_t esc)
{
    if (e->ended) {
        return;
    }
    if (e->blk != SL_AP_BLK_THINKING || e->sig_sent) {
        /* a signature without thinking text (redacted summaries) */
        sl_ap_emit_open(e, SL_AP_BLK_THINKING);
    }
    sl_ap_buf_addf(e->out,
                   "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                   "\"index\":%d,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"",
                   e->blk_index);
    sl_ap_buf_add(e->out, esc.ptr, esc.len);
    EV(e, "\"}}\n\n");
    e->sig_sent = 1;
}

void
sl_ap_emit_redacted(sl_ap_emit_t *e, sl_str_t esc_data)
{
    if (e->ended) {
        return;
    }
    sl_ap_emit_start(e);
    sl_ap_emit_close(e);
    e->blk_index = e->nblocks++;
    sl_ap_buf_addf(e->out,
                   "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                   "\"index\":%d,\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"",
                   e->blk_index);
    sl_ap_buf_add(e->out, esc_data.ptr, esc_data.len);
    sl_ap_buf_addf(e->out,
                   "\"}}\n\nevent: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                   "\"index\":%d}\n\n",
                   e->blk_index);
}

void
sl_ap_emit_tool_open(sl_ap_emit_t *e, sl_str_t id, sl_str_t name)
{
    if (e->ended) {
        return;
    }
    sl_ap_emit_start(e);
    sl_ap_emit_close(e);
    e->blk = SL_AP_BLK_TOOL;
    e->blk_index = e->nblocks++;
    e->ntools++;
    sl_ap_buf_addf(e->out,
                   "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                   "\"index\":%d,\"content_block\":{\"type\":\"tool_use\",\"id\":\"",
                   e->blk_index);
    if (id.len > 0) {
        sl_ap_buf_add(e->out, id.ptr, id.len);
    } else {
        sl_ap_buf_addf(e->out, "toolu_%s_%d", e->msg_id + 4, e->ntools);
    }
    EV(e, "\",\"name\":\"");
    sl_ap_buf_add(e->out, name.ptr, name.len);
    EV(e, "\",\"input\":{}}}\n\n");
}

void
sl_ap_emit_tool_json(sl_ap_emit_t *e, sl_str_t esc)
{
    if (e->ended || e->blk != SL_AP_BLK_TOOL || esc.len == 0) {
        return;
    }
    sl_ap_emit_delta(e, "input_json_delta", "partial_json", esc);
}

void
sl_ap_emit_finish(sl_ap_emit_t *e, const char *stop_reason, const sl_ap_usage_t *u)
{
    int have = u && u->have;

    if (e->ended) {
        return;
    }
    sl_ap_emit_start(e);
    sl_ap_emit_close(e);
    sl_ap_buf_addf(
        e->out,
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
        "{\"stop_reason\":\"%s\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":%lld,"
        "\"cache_creation_input_tokens\":%lld,\"cache_read_input_tokens\":%lld,"
        "\"output_tokens\":%lld}}\n\n",
        stop_reason && stop_reason[0] ? stop_reason : "end_turn",
        (long long)(have ? sl_ap_uncached_input(u) : e->input_estimate),
        (long long)(have ? u->created : 0), (long long)(have ? u->cached : 0),
        (long long)(have ? u->completion : e->gen_tokens));
    EV(e, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    e->ended = 1;
}

void
sl_ap_emit_error(sl_ap_emit_t *e, const char *type, sl_str_t esc_msg)
{
    if (e->ended) {
        return;
    }
    sl_ap_emit_close(e);
    EV(e, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"");
    sl_ap_buf_adds(e->out, type);
    EV(e, "\",\"message\":\"");
    sl_ap_buf_add(e->out, esc_msg.ptr, esc_msg.len);
    EV(e, "\"}}\n\n");
    e->ended = 1;
}

const char *
sl_ap_aws_error_type(const char *name, size_t n)
{
    char low[64];
    size_t i;

    if (n >= sizeof(low)) {
        return "api_error";
    }
    for (i = 0; i < n; i++) {
        low[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    }
    low[n] = '\0';
    if (strstr(low, "throttling") || strstr(low, "quota")) {
        return "rate_limit_error";
    }
    if (strstr(low, "validation")) {
        return "invalid_request_error";
    }
    if (strstr(low, "accessdenied") || strstr(low, "signature") || strstr(low, "unrecognized")) {
        return "permission_error";
    }
    if (strstr(low, "notfound")) {
        return "not_found_error";
    }
    if (strstr(low, "unavailable") || strstr(low, "notready")) {
        return "overloaded_error";
    }
    return "api_error";
}
