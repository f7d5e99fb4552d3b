/* lazytimer.h - timeouts re-armed without touching libuv's timer heap.
 *
 * A connection's timeout moves on nearly every event of a request (a head
 * begins, the body is read, the upstream is written, its head arrives),
 * almost always to a later deadline.  uv_timer_start on an armed timer
 * takes it out of the heap and puts it back (~400 instructions, five to
 * seven times per proxied request).  Like nginx's lazy timers, a deadline
 * is kept beside the handle instead: a timer already armed with the same
 * callback to fire no later than the new deadline stays as it is, and the
 * callback, when it fires early, arms it again for the time left
 * (sl_lazy_timer_early).  A stop only forgets the deadline; the armed
 * timer fires once more and does nothing.  Every start and stop of such a
 * handle goes through these functions, and its callback begins with
 * sl_lazy_timer_early.  Event-loop thread only. */

#ifndef SL_LAZYTIMER_H
#define SL_LAZYTIMER_H

#include <stdint.h>
#include <uv.h>

#define SL_LAZY_TIMER_OFF UINT64_MAX /* no deadline: a firing does nothing */

/* Fire cb (ms from now, ms > 0) with the deadline kept in *due. */
static inline void
sl_lazy_timer_start(uv_timer_t *t, uint64_t *due, uv_timer_cb cb, uint64_t ms)
{
    uint64_t at = uv_now(t->loop) + ms;

    if (uv_is_active((uv_handle_t *)t) && t->timer_cb == cb && uv_timer_get_due_in(t) <= ms) {
        *due = at; /* the armed timer fires first; its callback arms the rest */
        return;
    }
    *due = at;
    uv_timer_start(t, cb, ms, 0);
}

/* Forget the deadline (a stop that leaves libuv's heap alone). */
static inline void
sl_lazy_timer_stop(uint64_t *due)
{
    *due = SL_LAZY_TIMER_OFF;
}

/* First thing in the callback: 1 when the firing is not the deadline's
 * (stopped, or early: then armed again for the time left); the callback
 * returns at once.  0: the deadline has come, handle it. */
static inline int
sl_lazy_timer_early(uv_timer_t *t, uint64_t *due)
{
    uint64_t now = uv_now(t->loop);

    if (*due == SL_LAZY_TIMER_OFF) {
        return 1;
    }
    if (*due > now) {
        uv_timer_start(t, t->timer_cb, *due - now, 0);
        return 1;
    }
    *due = SL_LAZY_TIMER_OFF;
    return 0;
}

#endif
