/* bedrock_stream.c - Bedrock ConverseStream: AWS event-stream frames
 * (application/vnd.amazon.eventstream), checked with zlib's CRC32, and
 * their Converse events translated to Anthropic stream events.
 *
 * Frame: total length (u32 BE) | headers length (u32 BE) | prelude CRC32 |
 * headers | payload | message CRC32.  A frame whose prelude or message CRC
 * does not match, or whose lengths are impossible, ends the stream with an
 * error: nothing after it can be trusted to be framed right.
 *
 * Events (payload JSON, the kind in the :event-type header):
 *   messageStart                       -> message_start
 *   contentBlockStart {start.toolUse}  -> a tool_use block
 *   contentBlockDelta {delta.text}     -> text_delta (opening a text block)
 *     {delta.toolUse.input}            -> input_json_delta
 *     {delta.reasoningContent.text}    -> thinking_delta
 *     {delta.reasoningContent.signature} -> signature_delta
 *     {delta.reasoningContent.redactedContent} -> a redacted_thinking block
 *   contentBlockStop                   -> content_block_stop
 *   messageStop {stopReason}           -> the stop reason
 *   metadata {usage}                   -> message_delta (usage) + message_stop
 * An :message-type exception (throttlingException, validationException,
 * modelStreamErrorException, ...) becomes an Anthropic error event.
 */

#include <stdio.h>
#include <string.h>

#include <zlib.h>

#include "native.h"

#define SL_AP_EV_DEFAULT_MAX (16u * 1024 * 1024)

static uint32_t
sl_ap_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static uint32_t
sl_ap_crc(const unsigned char *p, size_t n)
{
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)n);
}

int
sl_ap_evs_decode(const unsigned char *p, size_t n, sl_ap_evmsg_t *m, const char **err)
{
    uint32_t total, hlen;
    size_t i, hend;

    memset(m, 0, sizeof(*m));
    if (n < 16) {
        *err = "event-stream message shorter than its prelude";
        return SL_AP_EV_BAD;
    }
    total = sl_ap_be32(p);
    hlen = sl_ap_be32(p + 4);
    if (sl_ap_crc(p, 8) != sl_ap_be32(p + 8)) {
        *err = "event-stream prelude CRC mismatch";
        return SL_AP_EV_BAD;
    }
    if (total != n || hlen > total - 16) {
        *err = "event-stream message lengths are inconsistent";
        return SL_AP_EV_BAD;
    }
    if (sl_ap_crc(p, n - 4) != sl_ap_be32(p + n - 4)) {
        *err = "event-stream message CRC mismatch";
        return SL_AP_EV_BAD;
    }
    hend = 12 + hlen;
    for (i = 12; i < hend;) {
        size_t nl = p[i++], vl = 0;
        const unsigned char *name = p + i;
        int type;
        sl_str_t *slot = NULL;

        if (nl == 0 || i + nl + 1 > hend) {
            *err = "event-stream header truncated";
            return SL_AP_EV_BAD;
        }
        i += nl;
        type = p[i++];
        switch (type) {
        case 0: /* true */
        case 1: /* false */
            vl = 0;
            break;
        case 2:
            vl = 1;
            break;
        case 3:
            vl = 2;
            break;
        case 4:
            vl = 4;
            break;
        case 5:
        case 8:
            vl = 8;
            break;
        case 9:
            vl = 16;
            break;
        case 6:
        case 7:
            if (i + 2 > hend) {
                *err = "event-stream header truncated";
                return SL_AP_EV_BAD;
            }
            vl = (size_t)p[i] << 8 | p[i + 1];
            i += 2;
            break;
        default:
            *err = "event-stream header of an unknown type";
            return SL_AP_EV_BAD;
        }
        if (i + vl > hend) {
            *err = "event-stream header truncated";
            return SL_AP_EV_BAD;
        }
        if (type == 7) {
#define HN(lit) (nl == sizeof(lit) - 1 && memcmp(name, lit, nl) == 0)
            if (HN(":event-type")) {
                slot = &m->event_type;
            } else if (HN(":message-type")) {
                slot = &m->message_type;
            } else if (HN(":exception-type")) {
                slot = &m->exception_type;
            } else if (HN(":error-code")) {
                slot = &m->error_code;
            } else if (HN(":error-message")) {
                slot = &m->error_message;
            } else if (HN(":content-type")) {
                slot = &m->content_type;
            }
#undef HN
            if (slot) {
                *slot = (sl_str_t){(const char *)p + i, vl};
            }
        }
        i += vl;
    }
    m->payload = (sl_str_t){(const char *)p + hend, n - 4 - hend};
    return 0;
}

int
sl_ap_evs_feed(sl_ap_evs_t *s, const char *p, size_t n, sl_ap_ev_fn fn, void *ud)
{
    size_t max = s->max ? s->max : SL_AP_EV_DEFAULT_MAX;
    size_t off = 0;
    int rc = 0;

    if (s->broken) {
        return SL_AP_EV_BAD;
    }
    sl_ap_buf_add(&s->buf, p, n);
    if (s->buf.oom) {
        return -2;
    }
    while (s->buf.len - off >= 12) {
        const unsigned char *f = (const unsigned char *)s->buf.ptr + off;
        uint32_t total = sl_ap_be32(f);
        sl_ap_evmsg_t m;

        if (sl_ap_crc(f, 8) != sl_ap_be32(f + 8)) {
            s->err = "event-stream prelude CRC mismatch";
            s->broken = 1;
            break;
        }
        if (total < 16 || total > max) {
            s->err = total < 16 ? "event-stream message lengths are inconsistent"
                                : "event-stream message larger than the limit";
            s->broken = 1;
            break;
        }
        if (s->buf.len - off < total) {
            break;
        }
        if (sl_ap_evs_decode(f, total, &m, &s->err) != 0) {
            s->broken = 1;
            break;
        }
        off += total;
        rc = fn(ud, &m);
        if (rc != 0) {
            break;
        }
    }
    if (s->broken) {
        sl_ap_buf_free(&s->buf);
        return SL_AP_EV_BAD;
    }
    if (off) {
        memmove(s->buf.ptr, s->buf.ptr + off, s->buf.len - off);
        s->buf.len -= off;
    }
    return rc;
}

void
sl_ap_evs_free(sl_ap_evs_t *s)
{
    sl_ap_buf_free(&s->buf);
}

static void
sl_ap_put32(sl_ap_buf_t *b, uint32_t v)
{
    char x[4] = {(char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v};

    sl_ap_buf_add(b, x, 4);
}

void
sl_ap_evs_encode(sl_ap_buf_t *out, const char *const *hdrs, size_t nhdrs, const char *payload,
                 size_t plen)
{
    sl_ap_buf_t h = {0};
    size_t i, start = out->len, total;

    for (i = 0; i + 1 < nhdrs * 2; i += 2) {
        size_t nl = strlen(hdrs[i]), vl = strlen(hdrs[i + 1]);
        char len2[2] = {(char)(vl >> 8), (char)vl};

        sl_ap_buf_addc(&h, (char)nl);
        sl_ap_buf_add(&h, hdrs[i], nl);
        sl_ap_buf_addc(&h, 7);
        sl_ap_buf_add(&h, len2, 2);
        sl_ap_buf_add(&h, hdrs[i + 1], vl);
    }
    total = 12 + h.len + plen + 4;
    sl_ap_put32(out, (uint32_t)total);
    sl_ap_put32(out, (uint32_t)h.len);
    if (!out->oom) {
        sl_ap_put32(out, sl_ap_crc((const unsigned char *)out->ptr + start, 8));
    }
    sl_ap_buf_add(out, h.ptr, h.len);
    sl_ap_buf_add(out, payload, plen);
    if (!out->oom) {
        sl_ap_put32(out, sl_ap_crc((const unsigned char *)out->ptr + start, total - 4));
    }
    if (h.oom) {
        out->oom = 1;
    }
    sl_ap_buf_free(&h);
}

/* ------------------------------------------------------ translation */

void
sl_ap_bstream_init(sl_ap_bstream_t *s, sl_str_t model, int64_t input_estimate)
{
    memset(s, 0, sizeof(*s));
    sl_ap_emit_init(&s->em, model, input_estimate);
}

void
sl_ap_bstream_free(sl_ap_bstream_t *s)
{
    sl_ap_evs_free(&s->evs);
    sl_json_free(&s->doc);
}

void
sl_ap_bstream_keepalive(sl_ap_bstream_t *s, sl_ap_buf_t *out)
{
    s->em.out = out;
    sl_ap_emit_ping(&s->em);
}

static int
sl_ap_seq(sl_str_t s, const char *lit)
{
    size_t n = strlen(lit);

    return s.len == n && memcmp(s.ptr, lit, n) == 0;
}

static void
sl_ap_bstream_exception(sl_ap_bstream_t *s, const sl_ap_evmsg_t *m)
{
    sl_jdoc_t *d = &s->doc;
    sl_str_t name = m->exception_type.len ? m->exception_type : m->error_code;
    sl_str_t msg = SL_STR("upstream error");
    sl_ap_buf_t esc = {0};
    int t;

    if (m->error_message.len) {
        sl_ap_buf_add_esc(&esc, m->error_message.ptr, m->error_message.len);
        msg = (sl_str_t){esc.ptr, esc.len};
    } else if (sl_json_parse(d, m->payload.ptr, m->payload.len) == 0 &&
               (t = sl_json_get_t(d, 0, "message", SL_J_STR)) >= 0) {
        msg = sl_json_sv(d, t);
    }
    if (esc.oom) {
        msg = (sl_str_t)SL_STR("upstream error");
    }
    sl_ap_emit_error(&s->em, sl_ap_aws_error_type(name.ptr, name.len), msg);
    sl_ap_buf_free(&esc);
}

static int
sl_ap_bstream_event(void *ud, const sl_ap_evmsg_t *m)
{
    sl_ap_bstream_t *s = ud;
    sl_jdoc_t *d = &s->doc;
    sl_str_t et = m->event_type;
    int delta, t;

    if (s->em.ended) {
        return 0;
    }
    if (m->message_type.len && !sl_ap_seq(m->message_type, "event")) {
        sl_ap_bstream_exception(s, m);
        return 0;
    }
    if (sl_json_parse(d, m->payload.ptr, m->payload.len) != 0 || d->t[0].type != SL_J_OBJ) {
        s->bad_frame = 1;
        sl_ap_emit_error(&s->em, "api_error",
                         (sl_str_t)SL_STR("upstream sent an invalid stream event"));
        return 0;
    }
    if (sl_ap_seq(et, "messageStart")) {
        sl_ap_emit_start(&s->em);
    } else if (sl_ap_seq(et, "contentBlockStart")) {
        int tu = sl_json_get_t(d, sl_json_get_t(d, 0, "start", SL_J_OBJ), "toolUse", SL_J_OBJ);
        int id = sl_json_get_t(d, tu, "toolUseId", SL_J_STR);
        int name = sl_json_get_t(d, tu, "name", SL_J_STR);

        if (tu >= 0 && name >= 0) {
            sl_ap_emit_tool_open(&s->em, id >= 0 ? sl_json_sv(d, id) : (sl_str_t){"", 0},
                                 sl_json_sv(d, name));
            s->in_tool = 1;
        }
    } else if (sl_ap_seq(et, "contentBlockDelta")) {
        delta = sl_json_get_t(d, 0, "delta", SL_J_OBJ);
        if ((t = sl_json_get_t(d, delta, "text", SL_J_STR)) >= 0) {
            sl_ap_emit_text(&s->em, sl_json_sv(d, t));
        } else if ((t = sl_json_get_t(d, sl_json_get_t(d, delta, "toolUse", SL_J_OBJ), "input",
                                      SL_J_STR)) >= 0) {
            if (s->in_tool) {
                sl_ap_emit_tool_json(&s->em, sl_json_sv(d, t));
            }
        } else if ((t = sl_json_get_t(d, delta, "reasoningContent", SL_J_OBJ)) >= 0) {
            int x;

            if ((x = sl_json_get_t(d, t, "text", SL_J_STR)) >= 0) {
                sl_ap_emit_thinking(&s->em, sl_json_sv(d, x));
            } else if ((x = sl_json_get_t(d, t, "signature", SL_J_STR)) >= 0) {
                sl_ap_emit_signature(&s->em, sl_json_sv(d, x));
            } else if ((x = sl_json_get_t(d, t, "redactedContent", SL_J_STR)) >= 0) {
                sl_ap_emit_redacted(&s->em, sl_json_sv(d, x));
            }
        }
    } else if (sl_ap_seq(et, "contentBlockStop")) {
        sl_ap_emit_close(&s->em);
        s->in_tool = 0;
    } else if (sl_ap_seq(et, "messageStop")) {
        t = sl_json_get_t(d, 0, "stopReason", SL_J_STR);
        if (t >= 0) {
            sl_str_t sr = sl_json_sv(d, t);

            snprintf(s->stop, sizeof(s->stop), "%s", sl_ap_bedrock_stop(sr.ptr, sr.len));
        }
        s->stopped = 1;
        sl_ap_emit_close(&s->em);
    } else if (sl_ap_seq(et, "metadata")) {
        sl_ap_bedrock_usage(d, sl_json_get_t(d, 0, "usage", SL_J_OBJ), &s->usage);
        if (s->stopped) {
            sl_ap_emit_finish(&s->em, s->stop, &s->usage);
        }
    }
    return 0;
}

int
sl_ap_bstream_feed(sl_ap_bstream_t *s, const char *p, size_t n, int eof, int truncated,
                   sl_ap_buf_t *out)
{
    int rc = 0;

    s->em.out = out;
    if (!s->evs.broken && n > 0) {
        rc = sl_ap_evs_feed(&s->evs, p, n, sl_ap_bstream_event, s);
    }
    if (rc == -2) {
        return -2;
    }
    if (rc == SL_AP_EV_BAD && !s->em.ended) {
        char msg[128];

        s->bad_frame = 1;
        snprintf(msg, sizeof(msg), "upstream sent a broken event-stream frame: %s",
                 s->evs.err ? s->evs.err : "?");
        sl_ap_emit_error(&s->em, "api_error", (sl_str_t){msg, strlen(msg)});
    }
    if (eof && !s->em.ended) {
        if (s->stopped) {
            sl_ap_emit_finish(&s->em, s->stop, &s->usage);
        } else {
            sl_ap_emit_error(
                &s->em, "api_error",
                truncated || s->evs.buf.len
                    ? (sl_str_t)SL_STR(
                          "upstream connection closed before the response was complete")
                    : (sl_str_t)SL_STR("upstream stream ended without a stop reason"));
        }
    }
    if (eof) {
        s->usage.out_chars_tokens = s->em.gen_tokens;
    }
    return out->oom ? -2 : 0;
}
