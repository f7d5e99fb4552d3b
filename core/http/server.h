/* server.h - what the HTTP layer needs of the process that serves it: the
 * loop, the settings and configuration generation, the upstream pool, the
 * phase runner and the open connections.  The worker (proc/) owns one and
 * fills it in; nothing in http/ knows about processes or signals. */

#ifndef SL_SERVER_H
#define SL_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "conf/config.h"
#include "conf/settings.h"
#include "http/phase.h"
#include "upstream/balancer.h"
#include "upstream/upstream.h"

typedef struct sl_conn sl_conn_t;
typedef struct sl_req sl_req_t;

/* One process's connection counters, in memory shared with the master
 * (proc/master.c gives each worker a slot): only the owner writes its slot,
 * with relaxed atomics; readers sum the slots (GET /status, node_status). */
typedef struct sl_conn_counters {
    uint64_t accepted, handled, requests; /* monotonic */
    uint64_t active, inflight;            /* gauges: open connections, requests in progress */
    /* Request body bytes this process holds in memory (max_body_memory).
     * In slot 0 (no process's) it is the node's total, which every worker
     * moves with its own slot, so the master takes a dead worker's share
     * back from the total (proc/master.c counters_retire). */
    int64_t body_bytes;
    /* gauge: requests whose head is still being read (nginx's "reading");
     * the rest of `inflight` is "writing" */
    uint64_t reading;
} sl_conn_counters_t;

#define sl_counter_add(f, n) __atomic_fetch_add(&(f), (n), __ATOMIC_RELAXED)
#define sl_counter_sub(f, n) __atomic_fetch_sub(&(f), (n), __ATOMIC_RELAXED)

typedef struct sl_server {
    uv_loop_t *loop;
    int id; /* worker number */
    const sl_settings_t *settings;
    sl_conf_t *conf;
    sl_uppool_t *uppool;
    sl_balancers_t *balancers;    /* Kong's upstreams: this worker's balancers (NULL: none) */
    const sl_phase_ops_t *phases; /* plugin chain runner (plugin/phase.c) */
    int draining;                 /* no new requests on kept-alive connections */
    size_t nconns;
    sl_conn_t *conns; /* all open client connections */
    uint64_t nrequests;
    uv_tcp_t *listeners; /* the worker's; listener_tls[i] = 1 for "ssl" */
    const unsigned char *listener_tls;
    /* each listener's port, read once (0: ask the connection) */
    const unsigned short *listener_port;
    size_t nlisteners;
    /* Called when a connection closes (the owner's drain bookkeeping). */
    void (*conn_closed)(struct sl_server *s);
    /* When set, a phase that paused and is over is reported here instead of
     * the request going on (the plugin test host drives phases itself). */
    void (*phase_done)(sl_req_t *r, sl_phase_t phase, sl_status_t st);

    /* Status listener (status_listen): connections accepted on it are
     * answered by `status` (plugin/status.c) and never routed or proxied. */
    uv_tcp_t *status_listener;
    void (*status)(sl_req_t *r);
    sl_conn_counters_t *counters;           /* this process's slot */
    const sl_conn_counters_t *all_counters; /* every slot (node totals) */
    size_t ncounters;
    int64_t *body_bytes_node; /* node total of buffered request bodies (slot 0), NULL = this
                                 process's body_bytes_own only */
    int64_t body_bytes_own;   /* without counters (test host, no shared memory) */
    const char *node_id;

    /* http/proxy.c's finished upstream exchanges kept for the next
     * requests (retired ones become kept in the loop's check phase); the
     * owner calls sl_proxy_keep_free() before closing the loop's handles */
    struct sl_proxy *proxy_kept, *proxy_retired;
    unsigned nproxy_kept; /* both lists */
    uv_check_t proxy_check;
    int proxy_check_on; /* proxy_check initialised */
} sl_server_t;

/* `bytes` of a request's memory (its body, a big input buffer) were freed.
 * glibc keeps freed heap for reuse, and what a burst of requests freed
 * around the small state of streams that stay open would count in the
 * worker's RSS for as long as they do: once 64 KiB were freed and no such
 * free came for 100 ms (the burst is over), the free pages go back to the
 * system when the heap holds 4 MiB or more of them (http_server.c), at most
 * once a second; less stays for the next requests to reuse. */
void sl_server_freed(sl_server_t *w, size_t bytes);

#endif
