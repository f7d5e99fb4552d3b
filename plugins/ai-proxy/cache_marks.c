/* cache_marks.c - which of a request's cache_control markers go to DashScope.
 *
 * Claude Code marks cache breakpoints ({"type": "ephemeral"}) on its system
 * blocks and on the latest user turn at every request.  DashScope's
 * explicit cache takes the same marker on a content part of a system,
 * user, assistant or tool message, with rules of its own:
 *   - at most 4 markers count (of more, only the last 4);
 *   - the cached block is everything from the start of the prompt (tools,
 *     then messages) up to the marker, and must be >= 1024 tokens;
 *   - a marker finds an earlier cache entry only within 20 content blocks
 *     back.
 * So, walking the request in the order the translated prompt will have
 * (tools, the one system message, then the other messages): markers whose
 * prefix is under the minimum are dropped (they would only use up one of
 * the 4 places), and of the rest the last 4 are kept - the ones that cover
 * the most, as Anthropic's own rules favour.  The look-back window needs
 * nothing more: consecutive requests of one session put their newest
 * marker a few blocks after the previous one.
 *
 * The prefix size is estimated from byte lengths (4 bytes a token; a
 * 1600-token image), cheap enough to run on every request.
 */

#include <string.h>

#include "ai_proxy.h"

#define SL_AP_CACHE_MIN_TOKENS 1024

typedef struct {
    const sl_jdoc_t *d;
    sl_ap_marks_t *m;
    int64_t bytes; /* prefix so far */
} sl_ap_cw_t;

static void
sl_ap_cw_mark(sl_ap_cw_t *w, int blk, int owner)
{
    sl_ap_marks_t *m = w->m;
    int cc = sl_json_get_t(w->d, blk, "cache_control", SL_J_OBJ);

    if (cc < 0) {
        return;
    }
    m->total++;
    if (w->bytes / 4 < SL_AP_CACHE_MIN_TOKENS) {
        return; /* under DashScope's minimum: not worth one of the 4 places */
    }
    if (m->n == SL_AP_MAX_MARKS) {
        memmove(m->blk, m->blk + 1, sizeof(m->blk[0]) * (SL_AP_MAX_MARKS - 1));
        memmove(m->owner, m->owner + 1, sizeof(m->owner[0]) * (SL_AP_MAX_MARKS - 1));
        m->n--;
    }
    m->blk[m->n] = blk;
    m->owner[m->n] = owner;
    m->n++;
}

/* Bytes a content value (string or blocks) adds to the prompt; markers on
 * its blocks are recorded for `owner` as they are passed. */
static void
sl_ap_cw_content(sl_ap_cw_t *w, int c, int owner, int only_system)
{
    const sl_jdoc_t *d = w->d;
    int b, end;

    if (c < 0) {
        return;
    }
    if (d->t[c].type != SL_J_ARR) {
        w->bytes += d->t[c].len;
        return;
    }
    end = SL_JSON_END(d, c);
    for (b = c + 1; b < end; b = SL_JSON_NEXT(d, b)) {
        int t = d->t[b].type == SL_J_OBJ ? sl_json_get_t(d, b, "type", SL_J_STR) : -1;
        int v;

        if (sl_json_str_eq(d, t, "text")) {
            v = sl_json_get_t(d, b, "text", SL_J_STR);
            w->bytes += v >= 0 ? d->t[v].len : 0;
        } else if (only_system) {
            continue;
        } else if (sl_json_str_eq(d, t, "image")) {
            w->bytes += 1600 * 4;
        } else if (sl_json_str_eq(d, t, "tool_use")) {
            v = sl_json_get(d, b, "input");
            w->bytes += v >= 0 ? d->t[v].len : 0;
        } else if (sl_json_str_eq(d, t, "tool_result")) {
            int inner = sl_json_get_t(d, b, "content", SL_J_ARR), i;

            v = sl_json_get(d, b, "content");
            w->bytes += v >= 0 ? d->t[v].len : 0;
            /* a marker inside the result counts for the tool message */
            for (i = inner + 1; inner >= 0 && i < SL_JSON_END(d, inner); i = SL_JSON_NEXT(d, i)) {
                if (d->t[i].type == SL_J_OBJ &&
                    sl_json_get_t(d, i, "cache_control", SL_J_OBJ) >= 0) {
                    sl_ap_cw_mark(w, b, owner);
                    break;
                }
            }
        } else {
            continue; /* thinking blocks are dropped */
        }
        if (d->t[b].type == SL_J_OBJ) {
            sl_ap_cw_mark(w, b, owner);
        }
    }
}

void
sl_ap_cache_plan(const sl_jdoc_t *d, int sys, int msgs, int tools, sl_ap_marks_t *m)
{
    sl_ap_cw_t w = {d, m, 0};
    int i, end, mi;

    memset(m, 0, sizeof(*m));
    if (tools >= 0) {
        w.bytes += d->t[tools].len;
    }
    sl_ap_cw_content(&w, sys, -1, 1);
    end = msgs >= 0 ? SL_JSON_END(d, msgs) : 0;
    for (i = msgs + 1, mi = 0; msgs >= 0 && i < end; i = SL_JSON_NEXT(d, i), mi++) {
        if (sl_json_str_eq(d, sl_json_get_t(d, i, "role", SL_J_STR), "system")) {
            sl_ap_cw_content(&w, sl_json_get(d, i, "content"), -1, 1);
        }
    }
    for (i = msgs + 1, mi = 0; msgs >= 0 && i < end; i = SL_JSON_NEXT(d, i), mi++) {
        if (!sl_json_str_eq(d, sl_json_get_t(d, i, "role", SL_J_STR), "system")) {
            sl_ap_cw_content(&w, sl_json_get(d, i, "content"), mi, 0);
        }
    }
}

int
sl_ap_marks_has(const sl_ap_marks_t *m, int blk)
{
    int i;

    for (i = 0; i < m->n; i++) {
        if (m->blk[i] == blk) {
            return 1;
        }
    }
    return 0;
}

int
sl_ap_marks_owner(const sl_ap_marks_t *m, int owner)
{
    int i;

    for (i = 0; i < m->n; i++) {
        if (m->owner[i] == owner) {
            return 1;
        }
    }
    return 0;
}
