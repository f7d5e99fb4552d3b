/* platform.h - the ABI 1.1 platform functions behind sl_api_t (pausing a
 * phase, worker timers and loop, HTTP callouts) and the hooks the phase
 * runner and the worker call at a request's and the worker's end. */

#ifndef SL_PLUGIN_PLATFORM_H
#define SL_PLUGIN_PLATFORM_H

#include "http/phase.h"
#include "http/request.h"

/* pending.c: api->pend / api->resume, and the runner's side. */
int sl_api_pend(sl_req_t *r, uint64_t timeout_ms, sl_cancel_fn on_cancel, void *arg);
int sl_api_resume(sl_req_t *r, sl_status_t status);
/* The handler at chain index `idx` of `phase` returned SL_STATUS_PENDING:
 * arm the pause.  Returns SL_STATUS_PENDING, or another status when the
 * handler already resumed (then the runner goes on with it). */
sl_status_t sl_pending_arm(sl_req_t *r, sl_phase_t phase, size_t idx);
/* The request ends (log phase or abort): cancel a pause, telling the
 * plugin; stop the callouts bound to r. */
void sl_pending_request_end(sl_req_t *r);
typedef struct sl_pend sl_pend_t;

/* pending.c: the phase chain item `idx` paused, while it waits to be
 * resumed: 1 and *phase, else 0 (api calls made from a timer or callout
 * callback during the pause, e.g. consumer_set). */
int sl_pending_paused_phase(const sl_req_t *r, size_t idx, sl_phase_t *phase);

/* wtimer.c */
void *sl_api_worker_loop(void);
sl_worker_timer_t *sl_api_worker_timer_start(uint64_t timeout_ms, uint64_t repeat_ms,
                                             sl_worker_timer_fn fn, void *arg);
void sl_api_worker_timer_stop(sl_worker_timer_t *t);
void sl_wtimers_shutdown(void);

/* callout.c */
sl_callout_t *sl_api_callout(sl_req_t *r, const sl_callout_req_t *req, sl_callout_fn fn, void *arg);
void sl_api_callout_cancel(sl_callout_t *c);
const char *sl_api_callout_strerror(int err);
/* Cancel every callout bound to r (r == NULL: the worker-level ones). */
void sl_callouts_cancel_all(sl_req_t *r);

#endif
