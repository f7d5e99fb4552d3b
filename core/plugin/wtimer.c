/* wtimer.c - worker-level plugin timers (api->worker_timer_*) and
 * api->worker_loop: libuv timers not bound to a request, owned by the
 * plugin, and the ones still running at worker exit freed after
 * exit_worker. */

#include <stdlib.h>

#include "plugin/host.h"
#include "plugin/platform.h"

struct sl_worker_timer {
    struct sl_worker_timer *prev, *next; /* every live timer of the worker */
    uv_timer_t h;
    sl_worker_timer_fn fn;
    void *arg;
    const char *plugin; /* for log tags while fn runs */
};

static sl_worker_timer_t *timers;

static void
wtimer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
wtimer_unlink_close(sl_worker_timer_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        timers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->fn = NULL;
    uv_close((uv_handle_t *)&t->h, wtimer_closed);
}

static void
wtimer_cb(uv_timer_t *h)
{
    sl_worker_timer_t *t = h->data;
    const char *saved = sl_api_plugin_name;

    if (t->fn == NULL)
        return;
    sl_api_plugin_name = t->plugin;
    t->fn(&sl_api, t, t->arg); /* may stop (free on close) t */
    sl_api_plugin_name = saved;
}

sl_worker_timer_t *
sl_api_worker_timer_start(uint64_t timeout_ms, uint64_t repeat_ms, sl_worker_timer_fn fn, void *arg)
{
    uv_loop_t *loop = sl_host_loop();
    sl_worker_timer_t *t;

    if (loop == NULL || fn == NULL)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (uv_timer_init(loop, &t->h) != 0) {
        free(t);
        return NULL;
    }
    t->h.data = t;
    t->fn = fn;
    t->arg = arg;
    t->plugin = sl_api_plugin_name;
    t->next = timers;
    if (timers)
        timers->prev = t;
    timers = t;
    uv_timer_start(&t->h, wtimer_cb, timeout_ms, repeat_ms);
    return t;
}

void
sl_api_worker_timer_stop(sl_worker_timer_t *t)
{
    if (t == NULL || t->fn == NULL)
        return;
    uv_timer_stop(&t->h);
    wtimer_unlink_close(t);
}

void
sl_wtimers_shutdown(void)
{
    while (timers)
        sl_api_worker_timer_stop(timers);
}

void *
sl_api_worker_loop(void)
{
    return sl_host_loop();
}
