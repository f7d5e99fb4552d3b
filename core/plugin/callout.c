/* callout.c - HTTP requests sent by the host for plugins (api->callout). */

#include "plugin/host.h"
#include "plugin/platform.h"

static const char *const callout_errs[] = {
    "ok",          "invalid request", "out of memory", "name did not resolve",    "connect failed",
    "TLS failure", "timed out",       "invalid HTTP",  "response body too large",
};

sl_callout_t *
sl_api_callout(sl_req_t *r, const sl_callout_req_t *req, sl_callout_fn fn, void *arg)
{
    return NULL; /* not yet */
}

void
sl_api_callout_cancel(sl_callout_t *c)
{
}

const char *
sl_api_callout_strerror(int err)
{
    if (err > 0 || -err >= (int)sl_nelems(callout_errs))
        return "unknown error";
    return callout_errs[-err];
}

void
sl_callouts_cancel_all(sl_req_t *r)
{
}
