/* worker.h - one worker process: a libuv loop serving the inherited
 * listening sockets with one configuration generation. */

#ifndef SL_WORKER_H
#define SL_WORKER_H

#include <uv.h>

#include "conf/config.h"
#include "conf/settings.h"
#include "http/ocsp.h"
#include "http/server.h"

typedef struct sl_worker {
    sl_server_t srv; /* what the HTTP layer serves with */
    uv_tcp_t *listeners;
    size_t nlisteners;
    int *listen_fds;
    uv_signal_t sig_term, sig_int, sig_quit, sig_usr1, sig_hup;
    uv_timer_t drain_timer;
    uv_prepare_t turn_prepare; /* loop turn edges: base/time.h's turn clock */
    uv_check_t turn_check;
    uv_idle_t spin;          /* busy_poll: active, the loop polls without waiting */
    uint64_t spin_ns;        /* busy_poll in ns, 0 = off */
    uint64_t spin_io;        /* sl_turn_io_count at the last turn that read */
    uint64_t spin_until;     /* uv_hrtime after which the loop may wait again */
    sl_ocsp_fetcher_t *ocsp; /* ssl_stapling: this worker's share of the fetching */
    sl_dns_t *dns;           /* resolver and DNS cache of all the worker's pools */
} sl_worker_t;

/* What the master shares with every worker besides the configuration. */
typedef struct sl_worker_shared {
    int status_fd;                /* status listener, -1 = none */
    sl_conn_counters_t *counters; /* MAP_SHARED, one slot per live worker */
    size_t ncounters;
    size_t slot; /* this worker's slot */
    const char *node_id;
} sl_worker_shared_t;

/* Run a worker until it is told to stop; returns the exit status. */
int sl_worker_run(int id, const sl_settings_t *s, sl_conf_t *conf, const int *listen_fds,
                  size_t nfds, const sl_worker_shared_t *sh);

#endif
