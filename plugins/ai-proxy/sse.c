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
 *
 * The usual event is one data line and its blank line in the same piece:
 * it is handed to the callback from the caller's bytes, not copied.  What
 * is left between calls is copied and its buffers are released once empty,
 * so a held stream keeps no buffer between its events.
 */

#include <string.h>

#include "ai_proxy.h"

/* A data line seen as a view into the caller's bytes goes into s->data
 * (before those bytes go away, or before a second line joins it). */
static int
sl_sse_keep(sl_sse_t *s)
{
    if (s->view != NULL) {
        sl_ap_buf_add(&s->data, s->view, s->view_len);
        s->view = NULL;
        s->view_len = 0;
    }
    return s->data.oom ? -2 : 0;
}

/* `stable`: p stays valid until the end of this feed (the caller's bytes,
 * not the carried-over line) */
static int
sl_sse_line(sl_sse_t *s, const char *p, size_t n, int stable, sl_sse_event_fn fn, void *ud)
{
    int rc;

    if (n == 0) {
        if (!s->have_data) {
            return 0;
        }
        s->have_data = 0;
        if (s->view != NULL) {
            rc = fn(ud, s->view, s->view_len);
            s->view = NULL;
            s->view_len = 0;
            return rc;
        }
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
        if (s->max && s->data.len + s->view_len + n + 1 > s->max) {
            s->overflow = 1;
            return SL_SSE_TOO_BIG;
        }
        if (!s->have_data && stable) {
            s->have_data = 1;
            s->view = p;
            s->view_len = n;
            return 0;
        }
        if (sl_sse_keep(s) != 0) {
            return -2;
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

static int
sl_sse_lines(sl_sse_t *s, const char *p, size_t n, int eof, sl_sse_event_fn fn, void *ud)
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
            s->view = NULL;
            s->view_len = 0;
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
            rc = sl_sse_line(s, s->line.ptr, s->line.len, 0, fn, ud);
            s->line.len = 0;
        } else {
            rc = sl_sse_line(s, p + i, j - i, 1, fn, ud);
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
            rc = sl_sse_line(s, s->line.ptr, s->line.len, 0, fn, ud);
            s->line.len = 0;
            if (rc != 0) {
                return rc;
            }
        }
        return sl_sse_line(s, NULL, 0, 0, fn, ud);
    }
    return 0;
}

int
sl_sse_feed(sl_sse_t *s, const char *p, size_t n, int eof, sl_sse_event_fn fn, void *ud)
{
    int rc = sl_sse_lines(s, p, n, eof, fn, ud);

    /* the caller's bytes go away now */
    if (sl_sse_keep(s) != 0 && rc == 0) {
        rc = -2;
    }
    if (s->line.len == 0 && s->line.cap > 0) {
        sl_ap_buf_free(&s->line);
    }
    if (s->data.len == 0 && s->data.cap > 0 && !s->data.oom) {
        sl_ap_buf_free(&s->data);
    }
    return rc;
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
    s->view = NULL;
    s->view_len = 0;
    s->have_data = 0;
    s->skip_lf = 0;
}
