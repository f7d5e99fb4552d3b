/* status.h - the status listener (settings: status_listen): GET /status,
 * GET /status/ready and GET /metrics, answered by the worker itself, and
 * the node-wide counters behind api->node_status. */

#ifndef SL_PLUGIN_STATUS_H
#define SL_PLUGIN_STATUS_H

#include "http/request.h"
#include "http/server.h"

/* Once per worker: the server whose counters and configuration to report. */
void sl_status_init(sl_server_t *srv);
/* sl_server_t.status: answer a request of the status listener (sets the
 * response and responded = 1; the body is sent when the request is read). */
void sl_status_handle(sl_req_t *r);
/* api->node_status. */
int sl_status_node(sl_node_status_t *out);
/* api->upstream_health: every target of the served configuration. */
int sl_status_upstream_health(sl_upstream_health_fn fn, void *arg);

#endif
