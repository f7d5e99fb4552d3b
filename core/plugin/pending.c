/* pending.c - pausing a phase (api->pend / api->resume). */

#include "plugin/host.h"
#include "plugin/platform.h"

int
sl_api_pend(sl_req_t *r, uint64_t timeout_ms, sl_cancel_fn on_cancel, void *arg)
{
    return -1; /* not yet */
}

int
sl_api_resume(sl_req_t *r, sl_status_t status)
{
    return -1;
}

sl_status_t
sl_pending_arm(sl_req_t *r, sl_phase_t phase, size_t idx)
{
    return SL_STATUS_ERROR;
}

void
sl_pending_request_end(sl_req_t *r)
{
}
