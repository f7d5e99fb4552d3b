/* phase.c - run a phase over a request's plugin chain.  The chain is
 * computed once per configuration generation (config.c); here we only walk
 * it, setting r->cur so host API calls know which plugin is calling. */

#include "plugin/phase.h"
#include "base/log.h"
#include "plugin/host.h"
#include "plugin/platform.h"

static const char *const phase_names[] = {"access",      "body", "header_filter",
                                          "body_filter", "log",  "balancer"};

static void timers_stop(sl_req_t *r);

/* The ABI's phase bits (1.8) are the host's phase numbers' */
_Static_assert(SL_PLUGIN_PHASE_ACCESS == 1u << SL_PHASE_ACCESS &&
                   SL_PLUGIN_PHASE_BODY == 1u << SL_PHASE_BODY &&
                   SL_PLUGIN_PHASE_HEADER_FILTER == 1u << SL_PHASE_HEADER_FILTER &&
                   SL_PLUGIN_PHASE_BODY_FILTER == 1u << SL_PHASE_BODY_FILTER &&
                   SL_PLUGIN_PHASE_LOG == 1u << SL_PHASE_LOG &&
                   SL_PLUGIN_PHASE_BALANCER == 1u << SL_PHASE_BALANCER,
               "SL_PLUGIN_PHASE_* follow sl_phase_t");

sl_status_t
sl_phase_run(sl_req_t *r, sl_phase_t phase)
{
    return sl_phase_run_from(r, phase, 0);
}

sl_status_t
sl_phase_run_from(sl_req_t *r, sl_phase_t phase, size_t from)
{
    /* r->chain is read on every step: api->consumer_set may switch the
     * request to its consumer's chain (same items up to the caller). */
    for (size_t i = from; r->chain && i < r->chain->n; i++) {
        const sl_plugin_inst_t *pi = r->chain->items[i];
        const sl_plugin_t *d = pi->plugin->desc;
        sl_status_t (*fn)(const sl_api_t *, sl_req_t *, void *) = NULL;

        switch (phase) {
        case SL_PHASE_ACCESS:
            fn = d->access;
            break;
        case SL_PHASE_BODY:
            fn = d->body;
            break;
        case SL_PHASE_HEADER_FILTER:
            fn = d->header_filter;
            break;
        default:
            return SL_STATUS_ERROR;
        }
        if (fn == NULL || (pi->skip & (1u << phase)))
            continue;
        r->cur = (int)i;
        r->phase = phase;
        sl_status_t st = fn(&sl_api, r, pi->conf);
        if (phase == SL_PHASE_HEADER_FILTER && r->retry_asked) {
            /* api->upstream_retry: this response is discarded, the
             * plugins after the caller never see it */
            r->cur = -1;
            r->phase = SL_PHASE_MAX;
            return SL_STATUS_CONTINUE;
        }
        if (st == SL_STATUS_PENDING && phase != SL_PHASE_HEADER_FILTER)
            st = sl_pending_arm(r, phase, i); /* or how the handler resumed */
        else if (st == SL_STATUS_PENDING)
            st = SL_STATUS_ERROR;
        r->cur = -1;
        r->phase = SL_PHASE_MAX;
        if (st == SL_STATUS_PENDING)
            return st;
        if (st == SL_STATUS_CONTINUE)
            continue;
        if (st == SL_STATUS_RESPOND && phase != SL_PHASE_HEADER_FILTER) {
            r->responded = SL_ANSWER_PLUGIN;
            return st;
        }
        if (st == SL_STATUS_ERROR) {
            sl_log_error("[%s] %s phase failed, request %s", d->name, phase_names[phase], r->id);
            r->err = SL_REQERR_PLUGIN;
            return st;
        }
    }
    return SL_STATUS_CONTINUE;
}

sl_status_t
sl_phase_body_filter(sl_req_t *r, sl_str_t in, int eof, sl_str_t *out)
{
    const sl_chain_t *ch = r->chain;
    sl_str_t chunk = in;

    for (size_t i = 0; ch && i < ch->n; i++) {
        const sl_plugin_inst_t *pi = ch->items[i];
        if (pi->plugin->desc->body_filter == NULL || (pi->skip & SL_PLUGIN_PHASE_BODY_FILTER))
            continue;
        r->cur = (int)i;
        sl_status_t st = pi->plugin->desc->body_filter(&sl_api, r, pi->conf, &chunk, eof);
        r->cur = -1;
        if (st == SL_STATUS_ERROR) {
            sl_log_error("[%s] body_filter phase failed, request %s", pi->plugin->desc->name,
                         r->id);
            *out = (sl_str_t){NULL, 0};
            return st;
        }
    }
    *out = chunk;
    return SL_STATUS_CONTINUE;
}

/* The balancer phase (ABI 1.2): synchronous, no pausing. */
static sl_status_t
sl_phase_balancer(sl_req_t *r, const sl_try_info_t *t, int *ran)
{
    *ran = 0;
    for (size_t i = 0; r->chain && i < r->chain->n; i++) {
        const sl_plugin_inst_t *pi = r->chain->items[i];
        const sl_plugin_t *d = pi->plugin->desc;

        if (d->abi_minor < 2 || d->balancer == NULL || (pi->skip & SL_PLUGIN_PHASE_BALANCER))
            continue;
        (*ran)++;
        r->cur = (int)i;
        r->phase = SL_PHASE_BALANCER;
        sl_status_t st = d->balancer(&sl_api, r, pi->conf, t);
        r->cur = -1;
        r->phase = SL_PHASE_MAX;
        if (st == SL_STATUS_CONTINUE)
            continue;
        if (st == SL_STATUS_RESPOND && r->responded == SL_ANSWER_PLUGIN)
            return st;
        if (st == SL_STATUS_RESPOND)
            sl_log_error("[%s] balancer returned RESPOND without api->respond(), request %s",
                         d->name, r->id);
        else if (st != SL_STATUS_ERROR)
            sl_log_error("[%s] balancer returned %d (not allowed there), request %s", d->name,
                         (int)st, r->id);
        else
            sl_log_warn("[%s] balancer phase gave up, request %s", d->name, r->id);
        return SL_STATUS_ERROR;
    }
    return SL_STATUS_CONTINUE;
}

static void
timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void
timers_stop(sl_req_t *r)
{
    sl_timer_t *t, *next;

    for (t = r->timers; t; t = next) {
        next = t->next;
        t->active = 0;
        t->h.data = t;
        uv_close((uv_handle_t *)&t->h, timer_closed);
    }
    r->timers = NULL;
}

void
sl_phase_log(sl_req_t *r)
{
    const sl_chain_t *ch = r->chain;

    sl_pending_request_end(r); /* a pause or callouts still going */
    timers_stop(r);
    for (size_t i = 0; ch && i < ch->n; i++) {
        const sl_plugin_inst_t *pi = ch->items[i];
        if (pi->plugin->desc->log == NULL || (pi->skip & SL_PLUGIN_PHASE_LOG))
            continue;
        r->cur = (int)i;
        pi->plugin->desc->log(&sl_api, r, pi->conf);
        r->cur = -1;
    }
}

const sl_phase_ops_t sl_plugin_phases = {
    .run = sl_phase_run,
    .body_filter = sl_phase_body_filter,
    .log = sl_phase_log,
    .balancer = sl_phase_balancer,
};
