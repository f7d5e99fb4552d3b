/* phase.h - run one phase of a request's plugin chain. */

#ifndef SL_PHASE_H
#define SL_PHASE_H

#include "request.h"

typedef enum sl_phase {
    SL_PHASE_ACCESS = 0,
    SL_PHASE_BODY,
    SL_PHASE_HEADER_FILTER,
    SL_PHASE_BODY_FILTER,
    SL_PHASE_LOG,
    SL_PHASE_MAX
} sl_phase_t;

/* access / body / header_filter: CONTINUE, RESPOND or ERROR (logged). */
sl_status_t sl_phase_run(sl_req_t *r, sl_phase_t phase);
/* body_filter: the chunk passes through every filter in order; *out is the
 * result (pool or plugin memory, valid until the next call). */
sl_status_t sl_phase_body_filter(sl_req_t *r, sl_str_t in, int eof, sl_str_t *out);
void        sl_phase_log(sl_req_t *r);

#endif
