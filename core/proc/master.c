/* master.c - the master process: owns the configuration and the listening
 * sockets, forks workers and supervises them.  It never serves a request.
 *
 * Signals are blocked and taken synchronously with sigtimedwait(), so the
 * supervision loop is plain sequential code:
 *   CHLD  reap; respawn workers of the current generation (with back-off
 *         when they crash-loop)
 *   HUP   reload: new plugins + config; if valid, fork a new generation and
 *         send TERM (drain) to the old one; if not, log every error and keep
 *   TERM/INT  graceful stop: TERM to workers, wait (deadline), exit 0
 *   QUIT  immediate stop
 *   USR1  forwarded to workers (log files reopen)
 * Under systemd (Type=notify) the master reports READY=1 once its sockets
 * listen and the first workers are forked, RELOADING=1 ... READY=1 around
 * each reload, and STOPPING=1 when a stop begins (notify.h). */

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time.h"
#include "http/tls_server.h"
#include "plugin/host.h"
#include "proc/master.h"
#include "proc/notify.h"
#include "proc/worker.h"

#define SL_COUNTER_SLOTS 1024

typedef struct sl_proc {
    pid_t pid;
    int slot;     /* worker id */
    size_t cslot; /* connection counters slot, 0 = none */
    unsigned gen;
    uint64_t started_ms;
} sl_proc_t;

typedef struct sl_generation {
    unsigned gen;
    sl_conf_t *conf;
    sl_plugin_registry_t reg;
    int live; /* workers still running */
} sl_generation_t;

typedef struct sl_master {
    sl_settings_t *s;
    int *fds;
    size_t nfds;
    sl_proc_t *procs; /* live workers, any generation */
    size_t nprocs, capprocs;
    sl_generation_t gens[16]; /* current is gens[cur] */
    size_t ngens;
    unsigned cur_gen;
    int stopping;
    uint64_t *respawn_at; /* per slot: 0 = running or none pending */
    unsigned *crashes;    /* per slot: consecutive fast crashes */
    int status_fd;        /* status listener, -1 = none */
    /* Connection counters shared with the workers: slot 0 holds what
     * exited workers counted, slots 1.. one live worker each. */
    sl_conn_counters_t *counters;
    unsigned char cslot_used[SL_COUNTER_SLOTS];
    char node_id[37];
} sl_master_t;

/* ---- configuration ------------------------------------------------------ */

int
sl_master_load(const sl_settings_t *s, sl_plugin_registry_t *reg, sl_conf_t **conf,
               sl_errors_t *errs)
{
    static const char empty[] = "_format_version: \"3.0\"\n";

    memset(reg, 0, sizeof(*reg));
    *conf = NULL;
    sl_plugins_load_dir(reg, s->plugins_dir, errs);
    if (s->declarative_config)
        *conf = sl_conf_load(s->declarative_config, reg, &sl_api, errs);
    else
        *conf = sl_conf_load_buffer("(no declarative config)", empty, sizeof(empty) - 1, reg,
                                    &sl_api, errs);
    if (*conf && errs->n == 0)
        sl_stls_build(s, *conf, errs); /* this generation's certificates */
    if (errs->n) {
        if (*conf)
            sl_conf_free(*conf);
        *conf = NULL;
        return SL_ERROR;
    }
    return *conf ? SL_OK : SL_ERROR;
}

/* ---- listeners ---------------------------------------------------------- */

static int
bind_one(const char *entry)
{
    char spec[300], err[160];
    unsigned flags;
    char host[256];
    const char *colon;
    int port, fd, one = 1;
    struct sockaddr_storage ss;
    socklen_t sl;

    if (sl_listen_spec(entry, spec, sizeof(spec), &flags, err, sizeof(err)) < 0) {
        sl_log_error("listen %s: %s", entry, err);
        return -1;
    }
    memset(&ss, 0, sizeof(ss));
    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');
        if (!rb || rb[1] != ':' || (size_t)(rb - spec - 1) >= sizeof(host))
            goto bad;
        memcpy(host, spec + 1, (size_t)(rb - spec - 1));
        host[rb - spec - 1] = '\0';
        colon = rb + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL) {
            snprintf(host, sizeof(host), "0.0.0.0");
            colon = spec - 1; /* bare port */
        } else {
            if ((size_t)(colon - spec) >= sizeof(host))
                goto bad;
            memcpy(host, spec, (size_t)(colon - spec));
            host[colon - spec] = '\0';
        }
    }
    port = atoi(colon + 1);
    if (port < 0 || port > 65535 || colon[1] == '\0')
        goto bad;
    if (strcmp(host, "localhost") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
            goto bad;
        sl = sizeof(*a6);
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host[0] ? host : "0.0.0.0", &a4->sin_addr) != 1)
            goto bad;
        sl = sizeof(*a4);
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        sl_log_error("listen %s: socket: %s", spec, strerror(errno));
        return -1;
    }
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ss.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4096) < 0) {
        sl_log_error("listen %s: %s", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
bad:
    sl_log_error("listen %s: expected ADDR:PORT, [IPV6]:PORT or PORT", spec);
    return -1;
}

/* ---- workers ------------------------------------------------------------ */

static sl_generation_t *
gen_find(sl_master_t *m, unsigned gen)
{
    for (size_t i = 0; i < m->ngens; i++)
        if (m->gens[i].gen == gen)
            return &m->gens[i];
    return NULL;
}

static void
spawn(sl_master_t *m, int slot)
{
    sl_generation_t *g = gen_find(m, m->cur_gen);
    size_t cslot = 0;
    for (size_t i = 1; m->counters && i < SL_COUNTER_SLOTS && cslot == 0; i++)
        if (!m->cslot_used[i])
            cslot = i;
    if (cslot)
        memset(&m->counters[cslot], 0, sizeof(m->counters[cslot]));
    pid_t pid = fork();

    if (pid < 0) {
        sl_log_error("fork: %s", strerror(errno));
        m->respawn_at[slot] = (uint64_t)sl_mono_ms() + 1000;
        return;
    }
    if (pid == 0) {
        sigset_t none;
        sl_worker_shared_t sh = {
            .status_fd = m->status_fd,
            .counters = cslot ? m->counters : NULL,
            .ncounters = SL_COUNTER_SLOTS,
            .slot = cslot,
            .node_id = m->node_id,
        };
        sigemptyset(&none);
        /* The worker installs its own handlers (libuv) then unblocks. */
        signal(SIGHUP, SIG_DFL);
        signal(SIGCHLD, SIG_DFL);
        _exit(sl_worker_run(slot, m->s, g->conf, m->fds, m->nfds, &sh) == 0 ? 0 : 1);
    }
    m->cslot_used[cslot] = cslot != 0;
    if (m->nprocs == m->capprocs) {
        m->capprocs = m->capprocs ? m->capprocs * 2 : 16;
        m->procs = sl_xrealloc(m->procs, m->capprocs * sizeof(*m->procs));
    }
    m->procs[m->nprocs++] = (sl_proc_t){pid, slot, cslot, m->cur_gen, (uint64_t)sl_mono_ms()};
    g->live++;
    m->respawn_at[slot] = 0;
}

static void
signal_gen(sl_master_t *m, int sig, int only_old)
{
    for (size_t i = 0; i < m->nprocs; i++)
        if (!only_old || m->procs[i].gen != m->cur_gen)
            kill(m->procs[i].pid, sig);
}

static void
gen_retire_if_done(sl_master_t *m, sl_generation_t *g)
{
    if (g->live > 0 || g->gen == m->cur_gen)
        return;
    sl_log_info("configuration generation %u retired", g->gen);
    sl_conf_free(g->conf);
    sl_plugins_free(&g->reg);
    *g = m->gens[--m->ngens];
}

/* A worker exited: keep what it counted in slot 0, drop its gauges (a
 * killed worker never closed its connections), free its slot. */
static void
counters_retire(sl_master_t *m, size_t cslot)
{
    if (cslot == 0 || m->counters == NULL)
        return;
    sl_conn_counters_t *c = &m->counters[cslot], *r = &m->counters[0];
    sl_counter_add(r->accepted, __atomic_load_n(&c->accepted, __ATOMIC_RELAXED));
    sl_counter_add(r->handled, __atomic_load_n(&c->handled, __ATOMIC_RELAXED));
    sl_counter_add(r->requests, __atomic_load_n(&c->requests, __ATOMIC_RELAXED));
    /* the request bodies it held are gone with it */
    sl_counter_sub(r->body_bytes, __atomic_load_n(&c->body_bytes, __ATOMIC_RELAXED));
    memset(c, 0, sizeof(*c));
    m->cslot_used[cslot] = 0;
}

static void
node_id_new(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof(b), 0) != sizeof(b))
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)(rand() ^ getpid());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void
reap(sl_master_t *m)
{
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        size_t i;
        for (i = 0; i < m->nprocs; i++)
            if (m->procs[i].pid == pid)
                break;
        if (i == m->nprocs)
            continue;
        sl_proc_t p = m->procs[i];
        m->procs[i] = m->procs[--m->nprocs];
        counters_retire(m, p.cslot);
        sl_generation_t *g = gen_find(m, p.gen);
        if (g)
            g->live--;

        int crashed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (WIFSIGNALED(status))
            sl_log(p.gen == m->cur_gen && !m->stopping ? SL_LOG_ERROR : SL_LOG_INFO,
                   "worker %d (pid %d) killed by signal %d (%s)", p.slot, (int)pid,
                   WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            sl_log(crashed ? SL_LOG_ERROR : SL_LOG_INFO, "worker %d (pid %d) exited with status %d",
                   p.slot, (int)pid, WEXITSTATUS(status));

        if (p.gen == m->cur_gen && !m->stopping) {
            /* Respawn at once; back off only if it keeps dying young. */
            uint64_t lived = (uint64_t)sl_mono_ms() - p.started_ms;
            if (lived < 2000)
                m->crashes[p.slot]++;
            else
                m->crashes[p.slot] = 0;
            unsigned k = m->crashes[p.slot];
            uint64_t delay = k <= 1 ? 0 : (100u << (k - 2 < 6 ? k - 2 : 6));
            if (delay > 5000)
                delay = 5000;
            if (delay)
                sl_log_warn("worker %d crash-looping (%u fast exits): respawn in %llu ms", p.slot,
                            k, (unsigned long long)delay);
            m->respawn_at[p.slot] = (uint64_t)sl_mono_ms() + delay;
            if (delay == 0)
                spawn(m, p.slot);
        } else if (g) {
            gen_retire_if_done(m, g);
        }
    }
}

static void
reload(sl_master_t *m)
{
    sl_errors_t errs = {0};
    sl_plugin_registry_t reg;
    sl_conf_t *conf;

    sl_log_info("reloading configuration");
    if (m->ngens == sl_nelems(m->gens)) {
        sl_log_error("reload refused: too many configuration generations still draining");
        return;
    }
    if (sl_master_load(m->s, &reg, &conf, &errs) != SL_OK) {
        for (size_t i = 0; i < errs.n; i++)
            sl_log_error("reload: %s", errs.msgs[i]);
        sl_log_error("reload failed: %zu error(s); still serving the previous configuration",
                     errs.n);
        sl_errors_free(&errs);
        sl_plugins_free(&reg);
        return;
    }
    sl_errors_free(&errs);
    m->cur_gen++;
    m->gens[m->ngens++] = (sl_generation_t){.gen = m->cur_gen, .conf = conf, .reg = reg};
    for (int i = 0; i < m->s->workers; i++)
        spawn(m, i);
    signal_gen(m, SIGTERM, 1);
    sl_log_info("configuration generation %u started; previous workers draining", m->cur_gen);
    for (size_t i = 0; i < m->ngens; i++)
        if (m->gens[i].gen != m->cur_gen)
            gen_retire_if_done(m, &m->gens[i]);
}

/* The address a listener is bound to, port 0 resolved ("[::1]:8000"). */
static const char *
bound_name(int fd, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN];

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return "?";
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a6->sin6_addr, host, sizeof(host));
        snprintf(buf, size, "[%s]:%u", host, ntohs(a6->sin6_port));
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a4->sin_addr, host, sizeof(host));
        snprintf(buf, size, "%s:%u", host, ntohs(a4->sin_port));
    }
    return buf;
}

static void
write_pid(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        sl_log_error("pid file %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
}

int
sl_master_run(sl_settings_t *s, sl_plugin_registry_t *reg, sl_conf_t *conf)
{
    sl_master_t m;
    sigset_t set;
    int exit_code = 0;

    memset(&m, 0, sizeof(m));
    m.s = s;
    m.nfds = s->nlisten;
    m.fds = sl_xcalloc(s->nlisten, sizeof(int));
    for (size_t i = 0; i < s->nlisten; i++) {
        if ((m.fds[i] = bind_one(s->listen[i])) < 0)
            return 1;
    }
    if (conf->tls_server != NULL && sl_stls_keys_init() < 0) {
        sl_log_error("cannot create the shared TLS session ticket keys");
        return 1;
    }
    m.status_fd = -1;
    if (s->status_listen && (m.status_fd = bind_one(s->status_listen)) < 0)
        return 1;
    m.counters = mmap(NULL, SL_COUNTER_SLOTS * sizeof(sl_conn_counters_t), PROT_READ | PROT_WRITE,
                      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m.counters == MAP_FAILED) {
        sl_log_warn("connection counters: mmap: %s (status counters off)", strerror(errno));
        m.counters = NULL;
    }
    node_id_new(m.node_id);
    m.gens[0] = (sl_generation_t){.gen = 0, .conf = conf, .reg = *reg};
    m.ngens = 1;
    m.respawn_at = sl_xcalloc((size_t)s->workers, sizeof(uint64_t));
    m.crashes = sl_xcalloc((size_t)s->workers, sizeof(unsigned));

    sigemptyset(&set);
    int sigs[] = {SIGCHLD, SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < sl_nelems(sigs); i++)
        sigaddset(&set, sigs[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (s->pid_file)
        write_pid(s->pid_file);
    for (size_t i = 0; i < s->nlisten; i++) {
        char bound[INET6_ADDRSTRLEN + 8];
        sl_log_info("listening on %s", bound_name(m.fds[i], bound, sizeof(bound)));
    }
    if (m.status_fd >= 0) {
        char bound[INET6_ADDRSTRLEN + 8];
        sl_log_info("status listener on %s", bound_name(m.status_fd, bound, sizeof(bound)));
    }
    sl_log_info("sluice %s starting %d worker(s)", SL_VERSION, s->workers);
    for (int i = 0; i < s->workers; i++)
        spawn(&m, i);
    sl_notify(SL_NOTIFY_READY); /* the sockets already queue connections */

    uint64_t deadline = 0;
    for (;;) {
        siginfo_t si;
        struct timespec ts = {0, 200 * 1000000};
        uint64_t now = (uint64_t)sl_mono_ms(), next = now + 1000;

        for (int i = 0; i < s->workers && !m.stopping; i++)
            if (m.respawn_at[i] && m.respawn_at[i] < next)
                next = m.respawn_at[i];
        if (next > now) {
            ts.tv_sec = (time_t)((next - now) / 1000);
            ts.tv_nsec = (long)((next - now) % 1000) * 1000000;
        } else {
            ts.tv_sec = 0;
            ts.tv_nsec = 0;
        }
        int sig = sigtimedwait(&set, &si, &ts);
        sl_stls_keys_tick((unsigned)(s->ssl_session_ticket_rotation > 0
                                         ? s->ssl_session_ticket_rotation
                                         : s->ssl_session_timeout));
        switch (sig) {
        case SIGCHLD:
            break; /* reaped below */
        case SIGHUP:
            if (!m.stopping) {
                sl_notify(SL_NOTIFY_RELOADING);
                reload(&m); /* a refused configuration keeps the old one serving */
                sl_notify(SL_NOTIFY_READY);
            }
            break;
        case SIGTERM:
        case SIGINT:
            if (!m.stopping) {
                sl_log_info("graceful stop: draining workers");
                sl_notify(SL_NOTIFY_STOPPING);
                m.stopping = 1;
                deadline = (uint64_t)sl_mono_ms() + (uint64_t)s->graceful_timeout_ms + 2000;
                signal_gen(&m, SIGTERM, 0);
            }
            break;
        case SIGQUIT:
            sl_log_info("immediate stop");
            sl_notify(SL_NOTIFY_STOPPING);
            signal_gen(&m, SIGKILL, 0);
            m.stopping = 1;
            deadline = (uint64_t)sl_mono_ms();
            break;
        case SIGUSR1:
            signal_gen(&m, SIGUSR1, 0);
            break;
        default:
            break;
        }
        reap(&m);
        now = (uint64_t)sl_mono_ms();
        for (int i = 0; i < s->workers && !m.stopping; i++)
            if (m.respawn_at[i] && m.respawn_at[i] <= now)
                spawn(&m, i);
        if (m.stopping && m.nprocs == 0)
            break;
        if (m.stopping && deadline && now >= deadline) {
            sl_log_warn("workers did not stop in time: killing them");
            signal_gen(&m, SIGKILL, 0);
            deadline = 0;
        }
    }
    if (s->pid_file)
        unlink(s->pid_file);
    for (size_t i = 0; i < m.ngens; i++) {
        sl_conf_free(m.gens[i].conf);
        sl_plugins_free(&m.gens[i].reg);
    }
    for (size_t i = 0; i < m.nfds; i++)
        close(m.fds[i]);
    if (m.status_fd >= 0)
        close(m.status_fd);
    if (m.counters)
        munmap(m.counters, SL_COUNTER_SLOTS * sizeof(sl_conn_counters_t));
    free(m.fds);
    free(m.procs);
    free(m.respawn_at);
    free(m.crashes);
    sl_log_info("stopped");
    return exit_code;
}
