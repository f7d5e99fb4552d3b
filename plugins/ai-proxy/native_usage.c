/* native_usage.c - statistics from a preserved gemini or bedrock answer:
 * the provider's own answer passes to the client untouched (route_type
 * preserve) and is only read here for its token counts and model, as a
 * whole JSON body (generateContent, Converse, or streamGenerateContent's
 * JSON array) or as a stream (Gemini's SSE, Bedrock's event-stream), with
 * the codecs' usage readers (sl_ap_gemini_usage, sl_ap_bedrock_usage).
 */

#include <stdlib.h>
#include <string.h>

#include "ai_proxy.h"
#include "native.h"

struct sl_ap_nwatch {
    int wire; /* SL_AP_WIRE_GEMINI or SL_AP_WIRE_BEDROCK */
    sl_sse_t sse;
    sl_ap_evs_t evs;
    sl_ap_usage_t usage;
};

/* One answer object: Gemini's usageMetadata (cumulative, so the last one
 * seen counts) and modelVersion, or Bedrock's usage. */
static void
sl_ap_native_usage_obj(int wire, const sl_jdoc_t *d, int obj, sl_ap_usage_t *u)
{
    int tok;

    if (wire == SL_AP_WIRE_BEDROCK) {
        sl_ap_bedrock_usage(d, sl_json_get_t(d, obj, "usage", SL_J_OBJ), u);
        return;
    }
    sl_ap_gemini_usage(d, sl_json_get_t(d, obj, "usageMetadata", SL_J_OBJ), u);
    tok = sl_json_get_t(d, obj, "modelVersion", SL_J_STR);
    if (tok >= 0 && u->response_model[0] == '\0' && d->t[tok].len < sizeof(u->response_model)) {
        memcpy(u->response_model, d->src + d->t[tok].start, d->t[tok].len);
        u->response_model[d->t[tok].len] = '\0';
    }
}

void
sl_ap_native_usage_body(int wire, const char *body, size_t len, sl_jdoc_t *d, sl_ap_usage_t *u)
{
    int i, end;

    if (sl_json_parse(d, body, len) != 0) {
        return;
    }
    if (d->t[0].type == SL_J_OBJ) {
        sl_ap_native_usage_obj(wire, d, 0, u);
    } else if (d->t[0].type == SL_J_ARR && wire == SL_AP_WIRE_GEMINI) {
        /* streamGenerateContent without alt=sse: an array of answers */
        end = SL_JSON_END(d, 0);
        for (i = 1; i < end; i = SL_JSON_NEXT(d, i)) {
            if (d->t[i].type == SL_J_OBJ) {
                sl_ap_native_usage_obj(wire, d, i, u);
            }
        }
    }
}

sl_ap_nwatch_t *
sl_ap_nwatch_new(int wire, size_t max_event)
{
    sl_ap_nwatch_t *w;

    if (wire != SL_AP_WIRE_GEMINI && wire != SL_AP_WIRE_BEDROCK) {
        return NULL;
    }
    w = calloc(1, sizeof(*w));
    if (w != NULL) {
        w->wire = wire;
        w->sse.max = max_event;
        w->evs.max = max_event;
    }
    return w;
}

static int
sl_ap_nwatch_event(void *ud, const char *data, size_t len)
{
    sl_ap_nwatch_t *w = ud;
    sl_jdoc_t *d = sl_sse_event_doc();

    if (sl_json_parse(d, data, len) == 0 && d->t[0].type == SL_J_OBJ) {
        sl_ap_native_usage_obj(w->wire, d, 0, &w->usage);
    }
    return 0;
}

static int
sl_ap_nwatch_frame(void *ud, const sl_ap_evmsg_t *m)
{
    sl_ap_nwatch_t *w = ud;
    sl_jdoc_t *d;

    if (!(m->event_type.len == 8 && memcmp(m->event_type.ptr, "metadata", 8) == 0)) {
        return 0;
    }
    d = sl_sse_event_doc();
    if (sl_json_parse(d, m->payload.ptr, m->payload.len) == 0 && d->t[0].type == SL_J_OBJ) {
        sl_ap_native_usage_obj(w->wire, d, 0, &w->usage);
    }
    return 0;
}

int
sl_ap_nwatch_feed(sl_ap_nwatch_t *w, const char *p, size_t n, int eof)
{
    int rc;

    if (w->wire == SL_AP_WIRE_BEDROCK) {
        /* a broken frame ends the reading (the client still gets it all) */
        rc = w->evs.broken ? 0 : sl_ap_evs_feed(&w->evs, p, n, sl_ap_nwatch_frame, w);
        return rc == -2 ? -2 : 0;
    }
    rc = sl_sse_feed(&w->sse, p, n, eof, sl_ap_nwatch_event, w);
    return rc == -2 ? -2 : 0;
}

const sl_ap_usage_t *
sl_ap_nwatch_usage(const sl_ap_nwatch_t *w)
{
    return &w->usage;
}

void
sl_ap_nwatch_free(sl_ap_nwatch_t *w)
{
    if (w != NULL) {
        sl_sse_free(&w->sse);
        sl_ap_evs_free(&w->evs);
        free(w);
    }
}
