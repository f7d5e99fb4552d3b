/* host.h - the plugin host's per-process state: the worker's id and loop,
 * the API table plugins are called with, and api->post's queue. */

#ifndef SL_PLUGIN_HOST_H
#define SL_PLUGIN_HOST_H

#include <uv.h>

#include "base/common.h"

/* The table every plugin callback receives (plugin/api.c). */
extern const sl_api_t sl_api;
/* Name of the plugin whose worker-level callback (init/exit_worker) runs,
 * for api->log(NULL, ...) tags; NULL otherwise (plugin/api.c). */
extern const char *sl_api_plugin_name;

/* Once per worker, after fork: remember the worker id and the loop, and set
 * up api->post's wake-up on that loop.  Returns 0 or -1. */
int sl_host_init(uv_loop_t *loop, int worker_id);
/* Run what is queued (used after exit_worker) and close the wake-up. */
void sl_host_shutdown(void);
/* -1 in the master. */
int sl_host_worker_id(void);
/* The worker's loop; NULL in the master. */
uv_loop_t *sl_host_loop(void);
/* The worker's upstream connection pool, for callouts (set by the worker
 * after sl_host_init); NULL in the master. */
typedef struct sl_uppool sl_uppool_t;
void sl_host_set_uppool(sl_uppool_t *pool);
sl_uppool_t *sl_host_uppool(void);
/* api->post: run fn on the worker loop soon; thread-safe. */
int sl_host_post(void (*fn)(const sl_api_t *api, void *arg), void *arg);

/* USR1: log files are to be reopened.  The generation counter (read by
 * api->log_reopen_gen, from any thread) moves on. */
void sl_host_reopen_logs(void);
uint64_t sl_host_reopen_gen(void);

#endif
