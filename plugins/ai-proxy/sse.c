/* sse.c - incremental server-sent-events parser.
 *
 * Fed arbitrary byte splits of an upstream body.  Only an incomplete line is
 * carried between calls (and the data of the one event being assembled), so
 * memory stays bounded by the largest single event, and s->max bounds that:
 * one 100 MB "data:" line (or a non-SSE body without newlines) is refused
 * with SL_SSE_TOO_BIG once max bytes are held, not buffered.  Lines end in LF, CRLF
 * or CR; "data:" lines are joined with LF; a blank line dispatches the
 * event; comments (":") and other fields (event, id, retry) are ignored -
 * OpenAI-compatible providers put everything in data.
 */

#include <string.h>

#include "ai_proxy.h"

static int
sl_sse_line(sl_sse_t *s, const char *p, size_t n, sl_sse_event_fn fn, void *ud)
{
    int rc;

    if (n == 0) {
        if (!s->have_data) {
            return 0;
        }
        s->have_data = 0;
        rc = fn(ud, s->data.ptr ? s->data.ptr : "", s->data.len);
        s->data.len = 0;
        return rc;
    }
    if (n >= 5 && memcmp(p, "data:", 5) == 0) {
        p += 5;
        n -= 5;
        if (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        if (s->max && s->data.len + n + 1 > s->max) {
            s->overflow = 1;
            return SL_SSE_TOO_BIG;
        }
        if (s->have_data) {
            sl_ap_buf_addc(&s->data, '\n');
        }
        s->have_data = 1;
        sl_ap_buf_add(&s->data, p, n);
        return s->data.oom ? -2 : 0;
    }
    return 0;
}

int
sl_sse_feed(sl_sse_t *s, const char *p, size_t n, int eof, sl_sse_event_fn fn, void *ud)
{
    size_t i = 0;
    int rc;

    if (s->overflow) {
        return SL_SSE_TOO_BIG;
    }
    if (s->skip_lf && n > 0 && p[0] == '\n') {
        i = 1;
    }
    if (n > 0) {
        s->skip_lf = 0;
    }
    while (i < n) {
        /* the line's end: LF, or a CR before it (memchr scans a word or
         * a vector at a time; a chunk is one or two short lines) */
        const char *nl = memchr(p + i, '\n', n - i);
        const char *cr = memchr(p + i, '\r', (size_t)((nl ? nl : p + n) - (p + i)));
        size_t j;

        if (cr != NULL) {
            nl = cr;
        }
        j = nl ? (size_t)(nl - p) : n;
        if (s->max && s->line.len + (j - i) > s->max) {
            s->overflow = 1;
            sl_ap_buf_free(&s->line);
            sl_ap_buf_free(&s->data);
            return SL_SSE_TOO_BIG;
        }
        if (nl == NULL) {
            sl_ap_buf_add(&s->line, p + i, n - i);
            if (s->line.oom) {
                return -2;
            }
            break;
        }
        if (s->line.len > 0) {
            sl_ap_buf_add(&s->line, p + i, j - i);
            if (s->line.oom) {
                return -2;
            }
            rc = sl_sse_line(s, s->line.ptr, s->line.len, fn, ud);
            s->line.len = 0;
        } else {
            rc = sl_sse_line(s, p + i, j - i, fn, ud);
        }
        if (p[j] == '\r') {
            if (j + 1 < n) {
                if (p[j + 1] == '\n') {
                    j++;
                }
            } else {
                s->skip_lf = 1;
            }
        }
        i = j + 1;
        if (rc != 0) {
            return rc;
        }
    }
    if (eof) {
        if (s->line.len > 0) {
            rc = sl_sse_line(s, s->line.ptr, s->line.len, fn, ud);
            s->line.len = 0;
            if (rc != 0) {
                return rc;
            }
        }
        return sl_sse_line(s, NULL, 0, fn, ud);
    }
    return 0;
}

sl_jdoc_t *
sl_sse_event_doc(void)
{
    static sl_jdoc_t doc;

    /* a pathological event (a huge tool-call chunk) does not keep its
     * token array for the rest of the process */
    if (doc.cap > 16384) {
        sl_json_free(&doc);
    }
    return &doc;
}

void
sl_sse_free(sl_sse_t *s)
{
    sl_ap_buf_free(&s->line);
    sl_ap_buf_free(&s->data);
    s->have_data = 0;
    s->skip_lf = 0;
}
