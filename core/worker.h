/* worker.h - one worker process: a libuv loop serving the inherited
 * listening sockets with one configuration generation. */

#ifndef SL_WORKER_H
#define SL_WORKER_H

#include <uv.h>

#include "config.h"
#include "settings.h"
#include "upstream.h"

typedef struct sl_conn sl_conn_t;

typedef struct sl_worker {
    uv_loop_t           *loop;
    int                  id;
    const sl_settings_t *settings;
    sl_conf_t           *conf;
    sl_uppool_t         *uppool;
    uv_tcp_t            *listeners;
    size_t               nlisteners;
    int                 *listen_fds;
    uv_signal_t          sig_term, sig_int, sig_quit, sig_usr1, sig_hup;
    uv_timer_t           drain_timer;
    uv_async_t           post_async;      /* api->post wake-up */
    uv_mutex_t           post_lock;
    struct sl_post      *post_head, *post_tail;
    int                  draining;
    size_t               nconns;
    sl_conn_t           *conns;          /* all open client connections */
    uint64_t             nrequests;
} sl_worker_t;

/* The worker of this process (NULL in the master).  One per process, set
 * once after fork; plugin API functions without a request use it. */
extern sl_worker_t *sl_worker_self;
extern volatile uint64_t sl_reopen_gen;

/* Run a worker until it is told to stop; returns the exit status. */
int  sl_worker_run(int id, const sl_settings_t *s, sl_conf_t *conf,
                   const int *listen_fds, size_t nfds);

/* api->post: run fn on the worker loop soon; thread-safe. */
int  sl_worker_post(void (*fn)(const sl_api_t *api, void *arg), void *arg);

/* Called by http_server.c when a connection closes (drain bookkeeping). */
void sl_worker_conn_closed(sl_worker_t *w);

#endif
