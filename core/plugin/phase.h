/* phase.h - the plugin chain runner: walks a request's chain for one phase,
 * calling each plugin with the host API table. */

#ifndef SL_PLUGIN_PHASE_H
#define SL_PLUGIN_PHASE_H

#include "http/phase.h"
#include "http/request.h"

/* The runner, handed to the HTTP layer through sl_server_t.phases. */
extern const sl_phase_ops_t sl_plugin_phases;

sl_status_t sl_phase_run(sl_req_t *r, sl_phase_t phase);
/* The same from chain index `from` on (resuming after a pending plugin). */
sl_status_t sl_phase_run_from(sl_req_t *r, sl_phase_t phase, size_t from);
sl_status_t sl_phase_body_filter(sl_req_t *r, sl_str_t in, int eof, sl_str_t *out);
void sl_phase_log(sl_req_t *r);

#endif
