/* pending.c - pausing a phase (api->pend / api->resume).
 *
 * A handler that returns SL_STATUS_PENDING leaves its request waiting:
 * sl_pend_t remembers the phase, the plugin's chain index, its cancel
 * callback, and holds a timer that is first the pause's deadline, then
 * (after api->resume) a zero timeout that goes on with the chain at the next
 * loop turn, so the plugin's callback that resumed has returned before the
 * request moves (and maybe ends).  The request's end (log phase or abort)
 * cancels a pause still waiting and tells the plugin.
 *
 * The struct is malloc'd, not pool memory: a libuv handle is freed only
 * after its close callback, which may run after the request's pool is gone. */

#include <stdlib.h>

#include "base/log.h"
#include "http/server.h"
#include "plugin/host.h"
#include "plugin/phase.h"
#include "plugin/platform.h"

#define SL_PEND_DEFAULT_MS 60000

typedef enum {
    PEND_IDLE = 0, /* no pause */
    PEND_ARMING,   /* pend() called, the handler still runs */
    PEND_EARLY,    /* resume() called from the handler itself */
    PEND_WAITING,  /* the handler returned SL_STATUS_PENDING */
    PEND_RESUMED   /* resume() called: going on at the next loop turn */
} pend_state_t;

struct sl_pend {
    uv_timer_t timer;
    sl_req_t *r; /* NULL once the request ended */
    pend_state_t state;
    sl_phase_t phase;
    size_t idx; /* chain index of the paused plugin */
    uint64_t timeout_ms;
    sl_cancel_fn on_cancel;
    void *arg;
    sl_status_t result; /* what resume() said */
};

static const char *const phase_names[] = {"access", "body", "header_filter", "body_filter", "log"};

static const char *
plugin_name(const sl_req_t *r, size_t idx)
{
    return r->chain && idx < r->chain->n ? r->chain->items[idx]->plugin->desc->name : "plugin";
}

static sl_pend_t *
pend_get(sl_req_t *r)
{
    sl_pend_t *p = r->pend;

    if (p != NULL)
        return p;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return NULL;
    if (uv_timer_init(r->w->loop, &p->timer) != 0) {
        free(p);
        return NULL;
    }
    p->timer.data = p;
    p->r = r;
    r->pend = p;
    return p;
}

int
sl_api_pend(sl_req_t *r, uint64_t timeout_ms, sl_cancel_fn on_cancel, void *arg)
{
    sl_pend_t *p;

    if (r == NULL || r->cur < 0 || (r->phase != SL_PHASE_ACCESS && r->phase != SL_PHASE_BODY))
        return -1;
    if (r->pend && r->pend->state != PEND_IDLE)
        return -1; /* twice for one pause */
    if ((p = pend_get(r)) == NULL)
        return -2;
    p->state = PEND_ARMING;
    p->phase = r->phase;
    p->idx = (size_t)r->cur;
    p->timeout_ms = timeout_ms ? timeout_ms : SL_PEND_DEFAULT_MS;
    p->on_cancel = on_cancel;
    p->arg = arg;
    return 0;
}

static void pend_timer_cb(uv_timer_t *h);

int
sl_api_resume(sl_req_t *r, sl_status_t status)
{
    sl_pend_t *p = r ? r->pend : NULL;

    if (p == NULL ||
        (status != SL_STATUS_CONTINUE && status != SL_STATUS_RESPOND && status != SL_STATUS_ERROR))
        return -1;
    if (p->state == PEND_ARMING) { /* from the handler, before it returns */
        p->state = PEND_EARLY;
        p->result = status;
        return 0;
    }
    if (p->state != PEND_WAITING)
        return -1;
    p->state = PEND_RESUMED;
    p->result = status;
    uv_timer_start(&p->timer, pend_timer_cb, 0, 0);
    return 0;
}

int
sl_pending_paused_phase(const sl_req_t *r, size_t idx, sl_phase_t *phase)
{
    const sl_pend_t *p = r->pend;

    if (p == NULL || p->state != PEND_WAITING || p->idx != idx)
        return 0;
    *phase = p->phase;
    return 1;
}

sl_status_t
sl_pending_arm(sl_req_t *r, sl_phase_t phase, size_t idx)
{
    sl_pend_t *p = r->pend;

    if (p == NULL || p->state == PEND_IDLE) { /* PENDING without pend(): defaults */
        if (sl_api_pend(r, 0, NULL, NULL) != 0) {
            sl_log_error("[%s] cannot pause the %s phase, request %s", plugin_name(r, idx),
                         phase_names[phase], r->id);
            return SL_STATUS_ERROR;
        }
        p = r->pend;
    }
    if (p->state == PEND_EARLY) { /* resumed before it returned */
        p->state = PEND_IDLE;
        return p->result;
    }
    p->state = PEND_WAITING;
    uv_timer_start(&p->timer, pend_timer_cb, p->timeout_ms, 0);
    return SL_STATUS_PENDING;
}

/* The deadline passed, or resume() asked to go on. */
static void
pend_timer_cb(uv_timer_t *h)
{
    sl_pend_t *p = h->data;
    sl_req_t *r = p->r;
    sl_phase_t phase = p->phase;
    sl_status_t st;

    if (r == NULL)
        return;
    if (p->state == PEND_WAITING) {
        p->state = PEND_IDLE;
        sl_log_error("[%s] %s phase still pending after %llu ms, request %s: answering 504",
                     plugin_name(r, p->idx), phase_names[phase], (unsigned long long)p->timeout_ms,
                     r->id);
        r->err = SL_REQERR_PENDING_TIMEOUT;
        if (p->on_cancel) {
            r->cur = (int)p->idx;
            p->on_cancel(&sl_api, r, SL_REQERR_PENDING_TIMEOUT, p->arg);
            r->cur = -1;
        }
        sl_callouts_cancel_all(r); /* nothing of the pause answers later */
        sl_req_phase_done(r, phase, SL_STATUS_ERROR);
        return;
    }
    if (p->state != PEND_RESUMED)
        return;
    p->state = PEND_IDLE;
    st = p->result;
    if (st == SL_STATUS_RESPOND && !r->responded) {
        sl_log_error("[%s] resumed with SL_STATUS_RESPOND without api->respond(), request %s",
                     plugin_name(r, p->idx), r->id);
        st = SL_STATUS_ERROR;
    }
    if (st == SL_STATUS_ERROR) {
        sl_log_error("[%s] %s phase failed, request %s", plugin_name(r, p->idx), phase_names[phase],
                     r->id);
        if (r->err == SL_REQERR_NONE)
            r->err = SL_REQERR_PLUGIN;
    } else if (st == SL_STATUS_CONTINUE) {
        st = sl_phase_run_from(r, phase, p->idx + 1);
        if (st == SL_STATUS_PENDING)
            return; /* the next plugin paused too */
    }
    sl_req_phase_done(r, phase, st);
}

static void
pend_closed(uv_handle_t *h)
{
    free(h->data);
}

void
sl_pending_request_end(sl_req_t *r)
{
    sl_pend_t *p = r->pend;

    if (p != NULL) {
        r->pend = NULL;
        if (p->state == PEND_WAITING && p->on_cancel) {
            sl_req_error_t why = r->err != SL_REQERR_NONE ? r->err : SL_REQERR_CLIENT_ABORT;
            p->state = PEND_IDLE;
            r->cur = (int)p->idx;
            p->on_cancel(&sl_api, r, why, p->arg);
            r->cur = -1;
        }
        p->r = NULL;
        p->state = PEND_IDLE;
        uv_close((uv_handle_t *)&p->timer, pend_closed);
    }
    if (r->callouts)
        sl_callouts_cancel_all(r);
}
