/* pending.c - pausing a phase (api->pend / api->resume).
 *
 * A handler that returns SL_STATUS_PENDING leaves its request waiting:
 * sl_pend_t remembers the phase, the plugin's chain index and its cancel
 * callback.  After api->resume the chain goes on at the next loop turn, so
 * the plugin's callback that resumed has returned before the request moves
 * (and maybe ends).  The request's end (log phase or abort) cancels a pause
 * still waiting and tells the plugin.
 *
 * The worker keeps lists and two timers, not a timer per pause (a paused
 * request used to start, restart, stop and close one).  Waiting pauses
 * are queued by timeout: one FIFO queue per distinct timeout (the first
 * PEND_QUEUES of them; a plugin pauses with the same timeout every time),
 * in deadline order by construction, and a list kept sorted for the rest.
 * The deadline timer is armed only when a new deadline is earlier than the
 * one it waits for; a resume just leaves its queue, so the timer may fire
 * with nothing due and re-arms for the earliest left.  Resumed pauses go
 * on, in resume order, from one 0 ms timer.  Both timers are
 * unreferenced: a waiting request's connection keeps the loop alive.
 * sl_pend_t is request-pool memory, off every list once the request
 * ends. */

#include "base/log.h"
#include "http/server.h"
#include "plugin/host.h"
#include "plugin/phase.h"
#include "plugin/platform.h"

#define SL_PEND_DEFAULT_MS 60000
#define PEND_QUEUES 8 /* distinct timeouts with a FIFO queue of their own */

typedef struct pend_list {
    struct sl_pend *head, *tail;
} pend_list_t;

typedef enum {
    PEND_IDLE = 0, /* no pause */
    PEND_ARMING,   /* pend() called, the handler still runs */
    PEND_EARLY,    /* resume() called from the handler itself */
    PEND_WAITING,  /* the handler returned SL_STATUS_PENDING (on the deadline list) */
    PEND_RESUMED   /* resume() called: going on at the next loop turn (resumed list) */
} pend_state_t;

struct sl_pend {
    struct sl_pend *prev, *next; /* on `list` */
    pend_list_t *list;           /* waiting: its queue; resumed: W.resumed; else NULL */
    sl_req_t *r;
    pend_state_t state;
    sl_phase_t phase;
    size_t idx; /* chain index of the paused plugin */
    uint64_t timeout_ms;
    uint64_t deadline; /* loop time (ms) */
    sl_cancel_fn on_cancel;
    void *arg;
    sl_status_t result; /* what resume() said */
};

/* The worker's pauses (one loop per process). */
static struct {
    uv_loop_t *loop; /* the timers' loop; NULL until the first pause */
    uv_timer_t deadline_timer;
    uint64_t armed_for; /* the deadline it waits for; 0: stopped */
    uv_timer_t resume_timer;
    uint64_t queue_ms[PEND_QUEUES]; /* each queue's timeout */
    pend_list_t queue[PEND_QUEUES]; /* PEND_WAITING with that timeout, FIFO = by deadline */
    size_t nqueues;
    pend_list_t other;   /* PEND_WAITING with any other timeout, by deadline */
    pend_list_t resumed; /* PEND_RESUMED, in resume order */
} W;

static const char *const phase_names[] = {"access", "body", "header_filter", "body_filter", "log"};

static const char *
plugin_name(const sl_req_t *r, size_t idx)
{
    return r->chain && idx < r->chain->n ? r->chain->items[idx]->plugin->desc->name : "plugin";
}

static void
list_append(pend_list_t *l, sl_pend_t *p)
{
    p->list = l;
    p->next = NULL;
    p->prev = l->tail;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
}

/* After `after` (NULL: at the head). */
static void
list_insert(pend_list_t *l, sl_pend_t *after, sl_pend_t *p)
{
    p->list = l;
    if (after == NULL) {
        p->prev = NULL;
        p->next = l->head;
        if (l->head)
            l->head->prev = p;
        else
            l->tail = p;
        l->head = p;
        return;
    }
    p->prev = after;
    p->next = after->next;
    if (after->next)
        after->next->prev = p;
    else
        l->tail = p;
    after->next = p;
}

/* Off its list (none: nothing). */
static void
list_remove(sl_pend_t *p)
{
    pend_list_t *l = p->list;

    if (l == NULL)
        return;
    p->list = NULL;
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    p->prev = p->next = NULL;
}

static void deadline_cb(uv_timer_t *h);
static void resume_cb(uv_timer_t *h);

/* The worker's timers on this loop (a new loop: a new worker). */
static void
timers_init(uv_loop_t *loop)
{
    if (W.loop == loop)
        return;
    W.loop = loop;
    W.armed_for = 0;
    W.nqueues = 0;
    W.other = (pend_list_t){NULL, NULL};
    W.resumed = (pend_list_t){NULL, NULL};
    uv_timer_init(loop, &W.deadline_timer);
    uv_timer_init(loop, &W.resume_timer);
    uv_unref((uv_handle_t *)&W.deadline_timer);
    uv_unref((uv_handle_t *)&W.resume_timer);
}

/* Queue a waiting pause: its timeout's queue, else the sorted list
 * (walked from the tail: later deadlines are there). */
static void
waiting_add(sl_pend_t *p)
{
    sl_pend_t *at;
    size_t i;

    for (i = 0; i < W.nqueues && W.queue_ms[i] != p->timeout_ms; i++)
        ;
    if (i == W.nqueues && i < PEND_QUEUES) {
        W.queue_ms[i] = p->timeout_ms;
        W.queue[i] = (pend_list_t){NULL, NULL};
        W.nqueues++;
    }
    if (i < W.nqueues) {
        list_append(&W.queue[i], p);
        return;
    }
    for (at = W.other.tail; at && at->deadline > p->deadline; at = at->prev)
        ;
    list_insert(&W.other, at, p);
}

/* The waiting pause with the earliest deadline, NULL if none. */
static sl_pend_t *
waiting_first(void)
{
    sl_pend_t *first = W.other.head;

    for (size_t i = 0; i < W.nqueues; i++)
        if (W.queue[i].head && (first == NULL || W.queue[i].head->deadline < first->deadline))
            first = W.queue[i].head;
    return first;
}

/* The deadline timer fires by the earliest waiting deadline. */
static void
deadline_arm(void)
{
    uint64_t now = uv_now(W.loop), due;
    sl_pend_t *first = waiting_first();

    if (first == NULL)
        return;
    due = first->deadline;
    if (W.armed_for != 0 && W.armed_for <= due)
        return; /* fires first; re-arms then */
    W.armed_for = due;
    uv_timer_start(&W.deadline_timer, deadline_cb, due > now ? due - now : 0, 0);
}

static sl_pend_t *
pend_get(sl_req_t *r)
{
    sl_pend_t *p = r->pend;

    if (p != NULL)
        return p;
    timers_init(r->w->loop);
    p = sl_pcalloc(r->pool, sizeof(*p));
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
    list_remove(p);
    p->state = PEND_RESUMED;
    p->result = status;
    list_append(&W.resumed, p);
    if (!uv_is_active((uv_handle_t *)&W.resume_timer))
        uv_timer_start(&W.resume_timer, resume_cb, 0, 0);
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
    p->deadline = uv_now(W.loop) + p->timeout_ms;
    waiting_add(p);
    deadline_arm();
    return SL_STATUS_PENDING;
}

/* A pause past its deadline: 504. */
static void
pend_expired(sl_pend_t *p)
{
    sl_req_t *r = p->r;
    sl_phase_t phase = p->phase;

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
}

static void
deadline_cb(uv_timer_t *h)
{
    sl_pend_t *p;

    (void)h;
    W.armed_for = 0;
    /* each taken off the list before it runs: ending one request may end
     * (and unlink) others */
    while ((p = waiting_first()) != NULL && p->deadline <= uv_now(W.loop)) {
        list_remove(p);
        pend_expired(p);
    }
    deadline_arm();
}

/* resume() asked to go on. */
static void
pend_go_on(sl_pend_t *p)
{
    sl_req_t *r = p->r;
    sl_phase_t phase = p->phase;
    sl_status_t st = p->result;

    p->state = PEND_IDLE;
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
resume_cb(uv_timer_t *h)
{
    sl_pend_t *p;

    (void)h;
    while ((p = W.resumed.head) != NULL) {
        list_remove(p);
        pend_go_on(p);
    }
}

void
sl_pending_request_end(sl_req_t *r)
{
    sl_pend_t *p = r->pend;

    if (p != NULL) {
        r->pend = NULL;
        list_remove(p);
        if (p->state == PEND_WAITING && p->on_cancel) {
            sl_req_error_t why = r->err != SL_REQERR_NONE ? r->err : SL_REQERR_CLIENT_ABORT;
            p->state = PEND_IDLE;
            r->cur = (int)p->idx;
            p->on_cancel(&sl_api, r, why, p->arg);
            r->cur = -1;
        }
        p->state = PEND_IDLE;
    }
    if (r->callouts)
        sl_callouts_cancel_all(r);
}
