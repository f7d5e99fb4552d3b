/* anthropic_emit.h - writing an Anthropic Messages event stream from a
 * provider's native stream (gemini_stream.c, bedrock_stream.c).
 *
 * The emitter keeps the grammar Anthropic clients rely on:
 *     message_start ping (content_block_start delta* content_block_stop)*
 *     message_delta message_stop        (or one `error` event instead)
 * Blocks are sequential: opening one closes the open one; a thinking block
 * ends with a signature_delta.  Strings handed in are JSON-escaped already
 * (spans of the provider's JSON, copied verbatim).
 */

#ifndef SL_AP_ANTHROPIC_EMIT_H
#define SL_AP_ANTHROPIC_EMIT_H

#include "ai_proxy.h"

typedef struct sl_ap_emit {
    sl_ap_buf_t *out; /* where events go (set per feed) */
    char model[128];
    char msg_id[128];
    int64_t input_estimate; /* message_start's input_tokens */
    int started, ended;
    int blk; /* sl_ap_blk_t of the open block */
    int blk_index;
    int nblocks;
    int ntools;
    int sig_sent;       /* the open thinking block got its signature */
    int64_t gen_tokens; /* estimate of what was generated */
} sl_ap_emit_t;

void sl_ap_emit_init(sl_ap_emit_t *e, sl_str_t model, int64_t input_estimate);
/* Replace the message id (kept when the provider gives none). */
void sl_ap_emit_set_id(sl_ap_emit_t *e, sl_str_t id);
void sl_ap_emit_start(sl_ap_emit_t *e);
void sl_ap_emit_ping(sl_ap_emit_t *e);
void sl_ap_emit_close(sl_ap_emit_t *e);
/* A text or thinking delta, opening that block kind if another is open. */
void sl_ap_emit_text(sl_ap_emit_t *e, sl_str_t esc);
void sl_ap_emit_thinking(sl_ap_emit_t *e, sl_str_t esc);
/* The open thinking block's signature (escaped) - ends its deltas. */
void sl_ap_emit_signature(sl_ap_emit_t *e, sl_str_t esc);
/* A redacted_thinking block, whole. */
void sl_ap_emit_redacted(sl_ap_emit_t *e, sl_str_t esc_data);
/* Open a tool_use block (id and name escaped; id {0} = a generated one). */
void sl_ap_emit_tool_open(sl_ap_emit_t *e, sl_str_t id, sl_str_t name);
/* Part of the open tool block's input: escaped JSON text. */
void sl_ap_emit_tool_json(sl_ap_emit_t *e, sl_str_t esc);
/* message_delta + message_stop.  With u->have the usage is the provider's
 * (input_tokens = uncached prompt), else the estimates. */
void sl_ap_emit_finish(sl_ap_emit_t *e, const char *stop_reason, const sl_ap_usage_t *u);
/* One error event ending the stream (closes an open block first). */
void sl_ap_emit_error(sl_ap_emit_t *e, const char *type, sl_str_t esc_msg);

/* Anthropic error type for an AWS exception name ("throttlingException",
 * "ValidationException", ...): rate_limit_error, invalid_request_error, ... */
const char *sl_ap_aws_error_type(const char *name, size_t n);

#endif
