/* worker.c - a worker process: one libuv loop accepting on the listening
 * sockets inherited from the master, serving them with the configuration
 * generation it was forked with.  A reload never changes a running worker:
 * the master starts new workers and tells the old ones to drain. */

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time.h"
#include "http/http_server.h"
#include "http/proxy.h"
#include "http/tls_server.h"
#include "plugin/host.h"
#include "plugin/phase.h"
#include "plugin/status.h"
#include "proc/worker.h"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

static void
each_plugin(sl_worker_t *w, int init)
{
    for (size_t i = 0; i < w->srv.conf->nplugins; i++) {
        sl_plugin_inst_t *pi = w->srv.conf->plugins[i];
        const sl_plugin_t *d = pi->plugin->desc;
        if (!pi->enabled)
            continue;
        sl_api_plugin_name = d->name;
        if (init && d->init_worker) {
            if (d->init_worker(&sl_api, pi->conf) != 0) {
                sl_log_error("[%s] init_worker failed: worker exits", d->name);
                exit(1);
            }
        } else if (!init && d->exit_worker) {
            d->exit_worker(&sl_api, pi->conf);
        }
        sl_api_plugin_name = NULL;
    }
}

/* Before the loop polls and after its I/O callbacks: the next time point
 * reads the clock again. */
static void
on_turn_prepare(uv_prepare_t *h)
{
    (void)h;
    sl_turn_clock_tick();
}

/* busy_poll: while the spin handle is active libuv polls with a zero
 * timeout; it stays active until busy_poll has passed without a read. */
static void
on_spin(uv_idle_t *h)
{
    (void)h;
}

static void
on_turn_check(uv_check_t *h)
{
    sl_worker_t *w = h->data;

    sl_turn_clock_tick();
    if (w->spin_ns == 0)
        return;
    uint64_t io = sl_turn_io_count(), now = uv_hrtime();
    if (io != w->spin_io) {
        w->spin_io = io;
        w->spin_until = now + w->spin_ns;
        if (!uv_is_active((uv_handle_t *)&w->spin))
            uv_idle_start(&w->spin, on_spin);
    } else if (now >= w->spin_until && uv_is_active((uv_handle_t *)&w->spin)) {
        uv_idle_stop(&w->spin);
    }
}

static void
maybe_stop(sl_worker_t *w)
{
    if (w->srv.draining && w->srv.nconns == 0)
        uv_stop(w->srv.loop);
}

/* srv.conn_closed: the HTTP layer counts the connection out before. */
static void
on_conn_closed(sl_server_t *srv)
{
    maybe_stop((sl_worker_t *)srv);
}

static void
on_drain_deadline(uv_timer_t *t)
{
    sl_worker_t *w = t->data;

    sl_log_warn("graceful stop deadline reached with %zu connection(s) open: closing them",
                w->srv.nconns);
    for (sl_conn_t *c = w->srv.conns, *next; c; c = next) {
        next = c->next;
        sl_conn_close(c);
    }
    uv_stop(w->srv.loop);
}

#define SL_DRAIN_IDLE_GRACE_MS 1000

static void
start_drain(sl_worker_t *w)
{
    if (w->srv.draining)
        return;
    w->srv.draining = 1;
    sl_balancers_stop(w->srv.balancers); /* the next generation checks now */
    sl_ocsp_fetcher_stop(w->ocsp);       /* and fetches */
    for (size_t i = 0; i < w->nlisteners; i++)
        uv_close((uv_handle_t *)&w->listeners[i], NULL);
    w->nlisteners = 0;
    /* Idle keep-alive connections go after a short grace (a request
     * already on its way is still served, with Connection: close); busy
     * ones after their response (sl_conn_request_done sees w->srv.draining).
     * A connection accepted but
     * whose first request has not arrived yet is not idle: the client has
     * only just connected and is about to send; closing it would drop an
     * accepted connection.  It is served once, then closed (or the drain
     * deadline closes it). */
    for (sl_conn_t *c = w->srv.conns, *next; c; c = next) {
        next = c->next;
        if (c->req == NULL && c->nreqs > 0 && c->pending_len == 0)
            sl_conn_drain_idle(c, SL_DRAIN_IDLE_GRACE_MS < w->srv.settings->keepalive_timeout_ms
                                      ? SL_DRAIN_IDLE_GRACE_MS
                                      : w->srv.settings->keepalive_timeout_ms);
    }
    uv_timer_start(&w->drain_timer, on_drain_deadline,
                   (uint64_t)(w->srv.settings->graceful_timeout_ms > 0
                                  ? w->srv.settings->graceful_timeout_ms
                                  : 1),
                   0);
    maybe_stop(w);
}

static void
on_signal(uv_signal_t *h, int sig)
{
    sl_worker_t *w = h->data;

    switch (sig) {
    case SIGTERM:
    case SIGINT:
        start_drain(w);
        break;
    case SIGQUIT:
        _exit(0);
    case SIGUSR1:
        sl_log_info("log files reopen (USR1)");
        sl_host_reopen_logs();
        break;
    default:
        break;
    }
}

static void
close_walk(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int
sl_worker_run(int id, const sl_settings_t *s, sl_conf_t *conf, const int *fds, size_t nfds,
              const sl_worker_shared_t *sh)
{
    static sl_worker_t w;
    sl_uppool_options_t po = {.keepalive_max_idle = (unsigned)s->upstream_keepalive,
                              .keepalive_timeout_ms =
                                  s->upstream_keepalive_idle_timeout > 0
                                      ? (unsigned)s->upstream_keepalive_idle_timeout * 1000u
                                      : SL_UP_KEEPALIVE_FOREVER};
    sl_dns_options_t dopts = {.resolver = s->dns_resolver,
                              .valid_ttl_s = (unsigned)s->dns_valid_ttl,
                              .stale_ttl_s = (unsigned)s->dns_stale_ttl,
                              .not_found_ttl_s = (unsigned)s->dns_not_found_ttl,
                              .error_ttl_s = (unsigned)s->dns_error_ttl,
                              .hostsfile = s->dns_hostsfile,
                              .order = s->dns_order,
                              .cache_size = (unsigned)s->dns_cache_size,
                              .no_sync = s->dns_no_sync != 0};
    char dns_err[256];

    /* Die with the master: no orphaned workers. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1)
        return 1;
    signal(SIGPIPE, SIG_IGN);

    memset(&w, 0, sizeof(w));
    w.srv.loop = uv_default_loop();
    w.srv.id = id;
    w.srv.settings = s;
    w.srv.conf = conf;
    w.srv.phases = &sl_plugin_phases;
    w.srv.conn_closed = on_conn_closed;
    if (sh && sh->counters) {
        w.srv.counters = &sh->counters[sh->slot];
        w.srv.all_counters = sh->counters;
        w.srv.ncounters = sh->ncounters;
        w.srv.body_bytes_node = &sh->counters[0].body_bytes;
    }
    w.srv.node_id = sh ? sh->node_id : "";
    w.srv.status = sl_status_handle;
    sl_status_init(&w.srv);
    sl_log_set_process("worker", id);

    /* One resolver and DNS cache for the worker's pools (dns_* settings). */
    w.dns = sl_dns_new(w.srv.loop, &dopts, dns_err, sizeof(dns_err));
    if (w.dns == NULL) {
        sl_log_error("%s", dns_err);
        return 1;
    }
    po.dns = w.dns;
    w.srv.uppool = sl_uppool_new(w.srv.loop, &po);
    if (w.srv.uppool == NULL) {
        sl_log_error("cannot create the upstream pool");
        return 1;
    }
    uv_timer_init(w.srv.loop, &w.drain_timer);
    w.drain_timer.data = &w;
    if (sl_host_init(w.srv.loop, id) != 0) {
        sl_log_error("cannot set up the plugin host");
        return 1;
    }
    sl_host_set_uppool(w.srv.uppool);                            /* api->callout */
    w.srv.balancers = sl_balancers_new(w.srv.loop, conf, w.dns); /* upstreams, active checks */
    w.ocsp =
        sl_ocsp_fetcher_start(w.srv.loop, sl_stls_ocsp(conf->tls_server), w.dns); /* stapling */

    uv_signal_t *sigs[] = {&w.sig_term, &w.sig_int, &w.sig_quit, &w.sig_usr1, &w.sig_hup};
    int signums[] = {SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGHUP};
    for (size_t i = 0; i < sl_nelems(sigs); i++) {
        uv_signal_init(w.srv.loop, sigs[i]);
        sigs[i]->data = &w;
        uv_signal_start(sigs[i], on_signal, signums[i]);
    }
    /* The master may have sent TERM before the handlers existed. */
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);

    each_plugin(&w, 1);

    /* The proxy listeners, then the status listener (last, so a drain
     * closes it with the others; never TLS). */
    int status_fd = sh ? sh->status_fd : -1;
    w.listeners = sl_xcalloc(nfds + 1, sizeof(uv_tcp_t));
    unsigned char *tls_flags = sl_xcalloc(nfds + 1, 1);
    for (size_t i = 0; i < nfds && i < s->nlisten; i++) {
        char addr[300], err[160];
        unsigned flags = 0;
        if (sl_listen_spec(s->listen[i], addr, sizeof(addr), &flags, err, sizeof(err)) == 0)
            tls_flags[i] = (flags & SL_LISTEN_SSL) != 0;
    }
    unsigned short *ports = sl_xcalloc(nfds + 1, sizeof(*ports));
    w.srv.listeners = w.listeners;
    w.srv.listener_tls = tls_flags;
    w.srv.listener_port = ports;
    w.srv.nlisteners = nfds;
    for (size_t i = 0; i < nfds + (status_fd >= 0); i++) {
        int rc, fd = i < nfds ? fds[i] : status_fd;
        uv_tcp_init(w.srv.loop, &w.listeners[i]);
        w.listeners[i].data = &w.srv;
        if (i == nfds)
            w.srv.status_listener = &w.listeners[i];
        if ((rc = uv_tcp_open(&w.listeners[i], fd)) < 0 ||
            (rc = uv_listen((uv_stream_t *)&w.listeners[i], 511, sl_http_on_connection)) < 0) {
            sl_log_error("cannot listen on inherited socket %d: %s", fd, uv_strerror(rc));
            return 1;
        }
        /* an accepted connection's port is its listener's: read it once
         * here, not with a getsockname() per connection */
        struct sockaddr_storage ss;
        int sl = sizeof(ss);
        if (uv_tcp_getsockname(&w.listeners[i], (struct sockaddr *)&ss, &sl) == 0)
            ports[i] = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                      : ((struct sockaddr_in *)&ss)->sin_port);
        w.nlisteners++;
    }
    sl_log_debug("worker %d started (pid %d)", id, (int)getpid());

    /* A request's time points read the clock once per loop turn. */
    sl_turn_clock_on();
    uv_prepare_init(w.srv.loop, &w.turn_prepare);
    uv_check_init(w.srv.loop, &w.turn_check);
    uv_unref((uv_handle_t *)&w.turn_prepare);
    uv_unref((uv_handle_t *)&w.turn_check);
    w.turn_check.data = &w;
    uv_prepare_start(&w.turn_prepare, on_turn_prepare);
    uv_check_start(&w.turn_check, on_turn_check);
    /* busy_poll: unreferenced, so that it never keeps a stopping loop */
    w.spin_ns = (uint64_t)s->busy_poll_us * 1000u;
    uv_idle_init(w.srv.loop, &w.spin);
    uv_unref((uv_handle_t *)&w.spin);

    uv_run(w.srv.loop, UV_RUN_DEFAULT);

    each_plugin(&w, 0);
    sl_host_shutdown(); /* run what exit_worker handed back */
    /* Close everything and let the close callbacks run, so leak checkers
     * see a clean exit. */
    sl_balancers_stop(w.srv.balancers);
    sl_ocsp_fetcher_stop(w.ocsp);
    sl_proxy_keep_free(&w.srv);
    sl_uppool_free(w.srv.uppool);
    sl_dns_free(w.dns); /* after every pool that used it */
    uv_walk(w.srv.loop, close_walk, NULL);
    uv_run(w.srv.loop, UV_RUN_DEFAULT);
    uv_loop_close(w.srv.loop);
    sl_balancers_free(w.srv.balancers);
    sl_ocsp_fetcher_free(w.ocsp);
    free(w.listeners);
    free(tls_flags);
    free(ports);
    sl_log_debug("worker %d exits after %llu request(s)", id, (unsigned long long)w.srv.nrequests);
#if defined(__SANITIZE_ADDRESS__)
    /* A worker leaves through _exit() (a forked child must not run the
     * master's atexit handlers), which skips LeakSanitizer's exit-time
     * check: run it here, so leaks per request are seen in workers too. */
    __lsan_do_leak_check();
#endif
    return 0;
}
