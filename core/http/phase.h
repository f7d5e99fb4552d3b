/* phase.h - the phases of a request and the interface of the runner that
 * walks a request's plugin chain through them.  The request lifecycle
 * (request.c) calls the runner through these pointers; plugin/phase.c
 * implements it, so http/ does not depend on the plugin host. */

#ifndef SL_HTTP_PHASE_H
#define SL_HTTP_PHASE_H

#include "base/common.h"

typedef struct sl_req sl_req_t;

typedef enum sl_phase {
    SL_PHASE_ACCESS = 0,
    SL_PHASE_BODY,
    SL_PHASE_HEADER_FILTER,
    SL_PHASE_BODY_FILTER,
    SL_PHASE_LOG,
    SL_PHASE_BALANCER, /* before every upstream try (ABI 1.2) */
    SL_PHASE_MAX
} sl_phase_t;

typedef struct sl_phase_ops {
    /* access / body / header_filter: CONTINUE, RESPOND or ERROR (logged). */
    sl_status_t (*run)(sl_req_t *r, sl_phase_t phase);
    /* The chunk passes through every filter in order; *out is the result
     * (pool or plugin memory, valid until the next call). */
    sl_status_t (*body_filter)(sl_req_t *r, sl_str_t in, int eof, sl_str_t *out);
    void (*log)(sl_req_t *r);
    /* Before each upstream try: every chain plugin's balancer callback in
     * order, until one does not return CONTINUE.  *ran is set to the number
     * of callbacks called (0: no plugin of the chain has one). */
    sl_status_t (*balancer)(sl_req_t *r, const sl_try_info_t *t, int *ran);
} sl_phase_ops_t;

#endif
