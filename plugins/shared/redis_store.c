/* redis_store.c - the Redis counter store of the rate-limiting plugins: one hiredis async
 * connection per instance per worker, driven by the worker's libuv loop (redis_uv.c: one write per
 * loop turn), commands pipelined, a timeout of our own (hiredis 0.14's async API has none), and a
 * back-off while Redis is unreachable so that requests fall back to local counts at once instead of
 * waiting on it.
 *
 * Synchronous counting (sync_rate -1): one EVAL per limited period, all in
 * one pipeline, per request: INCR, and EXPIRE when the key is new (Kong's
 * script), each key's command formatted by hiredis once and kept
 * (redis_cmdcache.c).  Batched counting (sync_rate > 0): requests only touch shared
 * memory; each worker keeps the increments it owes Redis in a small table
 * and flushes them every sync_rate seconds with INCRBY, reading back the
 * cluster's total into the zone ("t:" + key) for every worker of the node.
 *
 * Redis Sentinel (redis.sentinel_master): before connecting, a sentinel of
 * sentinel_nodes (in turn, one per attempt) is asked for the master's
 * address with SENTINEL get-master-addr-by-name over a short-lived
 * connection on the same loop; the address is forgotten, and asked again,
 * when the connection to the master fails, times out or is answered with an
 * error (a demoted master answers writes with READONLY), so counting moves
 * to the new master after a failover.  Meanwhile requests count locally,
 * as when Redis is down.
 *
 * The connection is closed after RL_REDIS_IDLE_MS with nothing sent or
 * awaited (Kong's keepalive) and opened again by the next command; with
 * Kong EE's keepalive_backlog set, at most keepalive_pool_size + backlog
 * batches are in flight (rl_redis_conf_t.max_in_flight).
 *
 * A host name (redis.host, or the master a sentinel names) is resolved on
 * the loop (uv_getaddrinfo, an IPv4 address preferred, as hiredis tries
 * them) before hiredis connects to the address: hiredis would resolve it
 * with a blocking getaddrinfo inside redisAsyncConnect.  The address is
 * kept for the connection's life and resolved again after a failure;
 * meanwhile requests count locally.
 *
 * Redis Cluster (redis.cluster_nodes): the same commands, each sent to its
 * key's master by redis_cluster.c instead of over the one connection here;
 * a request whose counts are not all answered within redis.timeout goes on
 * with local counts (late answers are then ignored). */

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "decimal.h"
#include "key_hash.h"
#include "redis_cluster.h"
#include "redis_cmdcache.h"
#include "redis_store.h"
#include "redis_tls.h"
#include "redis_uv.h"

#define RL_REDIS_BACKOFF_MS 1000 /* after a failure, Redis is not tried for this long */
#define RL_REDIS_WARN_MS 10000   /* one warning per interval while it fails */
#define RL_FLUSH_BUCKETS 256
#define RL_FLUSH_MAX 65536 /* owed keys kept while Redis is away; then dropped */
#define RL_SPARE_OPS 128   /* finished ops kept for reuse */

static const char incrby_script[] = "local v = redis.call('incrby', KEYS[1], ARGV[1]) "
                                    "if v == tonumber(ARGV[1]) then "
                                    "redis.call('expire', KEYS[1], ARGV[2]) end "
                                    "return v";

typedef struct rl_op {
    struct rl_op *next, *prev;
    rl_redis_t *rd;
    rl_redis_done_fn done; /* NULL once forgotten */
    void *arg;
    int n, replies, failed;
    int linked; /* in rd->ops (until answered, or timed out in a cluster) */
    int64_t counts[RL_REDIS_MAX_KEYS];
    int64_t deadline_ms;
} rl_op_t;

typedef struct rl_owed {
    struct rl_owed *next;
    int64_t delta, ttl_s;
    int in_flight; /* delta sent, reply awaited */
    size_t klen;
    char key[];
} rl_owed_t;

struct rl_redis {
    const sl_api_t *api;
    const rl_redis_conf_t *rc; /* the plugin's config.redis */
    sl_shm_t *zone;            /* the node's counts */
    double sync_rate;          /* seconds between flushes (batched counting) */
    uv_loop_t *loop;
    redisAsyncContext *ac;
    rl_cluster_t *cluster; /* redis.cluster_nodes set: routes every command */
    int connected;
    int64_t down_until_ms;
    int64_t last_warn_ms;
    unsigned long failures; /* since the last warning */
    rl_op_t *ops;           /* in flight, oldest first */
    rl_op_t *ops_tail;
    rl_op_t *spare; /* finished, for the next requests (through next) */
    int nspare;
    rl_cmdcache_t *cmds;  /* sync_rate -1: each key's command, formatted once */
    int64_t nops;         /* of them: bounded by rc->max_in_flight */
    int64_t last_used_ms; /* the last command sent: idle after RL_REDIS_IDLE_MS */
    uv_timer_t timer;     /* timeouts */
    int timer_on;
    sl_worker_timer_t *flush_timer;
    rl_owed_t *owed[RL_FLUSH_BUCKETS];
    size_t nowed;
    /* Sentinel */
    redisAsyncContext *sc; /* a question to a sentinel, in flight */
    int64_t sc_deadline_ms;
    size_t next_node;     /* the sentinel to ask next */
    char master_host[64]; /* the master's address, "" until known */
    int master_port;
    /* the target's name resolved on the loop */
    uv_getaddrinfo_t *gai;       /* in flight; its data is NULL once rd is gone */
    char addr[INET6_ADDRSTRLEN]; /* the numeric address, "" until resolved */
    /* redis.ssl: the connection's TLS bridge (redis_tls.c) */
    SSL_CTX *tls_ctx;
    rl_tls_t *tls;     /* the current connection's; NULL once it closed */
    char tls_why[200]; /* why it failed, for the disconnect callback; "" */
    rl_tls_t *stls;    /* the sentinel connection's (sc) */
    char stls_why[200];
};

const char *const rl_sentinel_roles[] = {"any", "master", "slave", NULL};

static const sl_field_t sentinel_node_fields[] = {
    {.name = "host",
     .type = SL_FIELD_STRING,
     .offset = offsetof(rl_sentinel_node_t, host),
     .def = "\"127.0.0.1\""}, /* JSON text */
    {.name = "port",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_RANGE,
     .offset = offsetof(rl_sentinel_node_t, port),
     .def = "6379",
     .min = 0,
     .max = 65535},
    {.type = SL_FIELD_END},
};
static const sl_schema_t sentinel_node_schema = {.size = sizeof(rl_sentinel_node_t),
                                                 .fields = sentinel_node_fields};
const sl_field_t rl_sentinel_node_elem = {.type = SL_FIELD_RECORD, .record = &sentinel_node_schema};

int
rl_redis_check_sentinel(const sl_api_t *api, sl_conf_ctx_t *cx, const rl_redis_conf_t *rc,
                        const char *prefix)
{
    char path[64];
    int any = rc->sentinel_master || rc->sentinel_role || rc->sentinel_nodes.n > 0, bad = 0;

    if (!any)
        return 0;
    /* Kong: the three go together */
    if (rc->sentinel_master == NULL || rc->sentinel_master[0] == '\0') {
        snprintf(path, sizeof(path), "%s.sentinel_master", prefix);
        api->conf_error(cx, path,
                        "required with sentinel_role and sentinel_nodes (the master's name)");
        bad = 1;
    }
    if (rc->sentinel_role == NULL) {
        snprintf(path, sizeof(path), "%s.sentinel_role", prefix);
        api->conf_error(cx, path, "required with sentinel_master (master or any)");
        bad = 1;
    } else if (strcmp(rc->sentinel_role, "slave") == 0) {
        snprintf(path, sizeof(path), "%s.sentinel_role", prefix);
        api->conf_error(cx, path,
                        "'slave' is not supported: sluice counts with writes (INCRBY), which a "
                        "replica refuses; use master or any");
        bad = 1;
    }
    if (rc->sentinel_nodes.n == 0) {
        snprintf(path, sizeof(path), "%s.sentinel_nodes", prefix);
        api->conf_error(cx, path, "required with sentinel_master: at least one {host, port}");
        bad = 1;
    }
    for (size_t i = 0; i < rc->sentinel_nodes.n; i++) {
        const rl_sentinel_node_t *n = (const rl_sentinel_node_t *)rc->sentinel_nodes.items + i;
        if (n->host == NULL || n->host[0] == '\0' || n->port == 0) {
            snprintf(path, sizeof(path), "%s.sentinel_nodes[%zu]", prefix, i);
            api->conf_error(cx, path, "expected a host and a port (1-65535)");
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* Where the counts go: host:port, or the master the sentinels named. */
static const char *
target_host(const rl_redis_t *rd)
{
    return rd->rc->sentinel_master ? rd->master_host : rd->rc->host;
}

static long long
target_port(const rl_redis_t *rd)
{
    return rd->rc->sentinel_master ? rd->master_port : (long long)rd->rc->port;
}

static int64_t
now_ms(rl_redis_t *rd)
{
    return rd->api->now_us() / 1000;
}

/* One warning per interval.  `what` starting with '[' is about a
 * sentinel (the '[' is not printed): such lines, and any while the master's
 * address is unknown, name the Sentinel master instead of an address. */
static void
warn(rl_redis_t *rd, const char *what, const char *detail)
{
    int64_t t = now_ms(rd);

    rd->failures++;
    if (t - rd->last_warn_ms < RL_REDIS_WARN_MS)
        return;
    if (rd->cluster)
        rd->api->log(NULL, SL_LOG_WARN,
                     "Redis Cluster %s: %s (%lu failure(s) in the last interval); counting "
                     "locally meanwhile",
                     what, detail ? detail : "", rd->failures);
    else if (rd->rc->sentinel_master && (what[0] == '[' || rd->master_host[0] == '\0'))
        rd->api->log(NULL, SL_LOG_WARN,
                     "Redis Sentinel master '%s' %s: %s (%lu failure(s) in the last interval); "
                     "counting locally meanwhile",
                     rd->rc->sentinel_master, what[0] == '[' ? what + 1 : what,
                     detail ? detail : "", rd->failures);
    else
        rd->api->log(NULL, SL_LOG_WARN,
                     "Redis %s:%lld %s: %s (%lu failure(s) in the last interval); counting "
                     "locally meanwhile",
                     target_host(rd), target_port(rd), what, detail ? detail : "", rd->failures);
    rd->last_warn_ms = t;
    rd->failures = 0;
}

/* hiredis's words for a failure, unless the TLS bridge knows better (it
 * closed the stream hiredis then found closed). */
static const char *
fail_detail(rl_redis_t *rd, const redisAsyncContext *ac)
{
    if (rd->tls_why[0] == '\0')
        return ac->errstr;
    return rd->tls_why;
}

static void
op_link(rl_redis_t *rd, rl_op_t *op)
{
    op->prev = rd->ops_tail;
    if (rd->ops_tail)
        rd->ops_tail->next = op;
    else
        rd->ops = op;
    rd->ops_tail = op;
    op->linked = 1;
    rd->nops++;
    rd->last_used_ms = now_ms(rd);
}

static void
op_unlink(rl_redis_t *rd, rl_op_t *op)
{
    if (!op->linked)
        return;
    op->linked = 0;
    rd->nops--;
    if (op->prev)
        op->prev->next = op->next;
    else
        rd->ops = op->next;
    if (op->next)
        op->next->prev = op->prev;
    else
        rd->ops_tail = op->prev;
    op->next = op->prev = NULL;
}

/* A zeroed op: a spare one, or a new one (NULL when out of memory). */
static rl_op_t *
op_new(rl_redis_t *rd)
{
    rl_op_t *op = rd->spare;

    if (op == NULL)
        return calloc(1, sizeof(*op));
    rd->spare = op->next;
    rd->nspare--;
    memset(op, 0, sizeof(*op));
    return op;
}

static void
op_free(rl_redis_t *rd, rl_op_t *op)
{
    if (rd->nspare >= RL_SPARE_OPS) {
        free(op);
        return;
    }
    op->next = rd->spare;
    rd->spare = op;
    rd->nspare++;
}

static void
op_finish(rl_op_t *op)
{
    rl_redis_t *rd = op->rd;

    op_unlink(rd, op);
    if (op->done)
        op->done(op->arg, op->failed ? -1 : 0, op->counts);
    op_free(rd, op);
}

/* Cluster: the request goes on with local counts now; the op is freed
 * when its last answer (or failure) comes. */
static void
op_expire(rl_op_t *op)
{
    rl_redis_done_fn done = op->done;

    op_unlink(op->rd, op);
    op->done = NULL;
    if (done)
        done(op->arg, -1, op->counts);
}

/* Drop the connection: every command in flight fails (hiredis calls their
 * callbacks with a NULL reply), and Redis is left alone for a while. */
static void
drop(rl_redis_t *rd, const char *why, const char *detail)
{
    redisAsyncContext *ac = rd->ac;

    warn(rd, why, detail);
    rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
    rd->master_host[0] = '\0'; /* Sentinel: ask again, there may have been a failover */
    rd->addr[0] = '\0';        /* a name: resolved again */
    if (ac == NULL)
        return;
    rd->ac = NULL;
    rd->connected = 0;
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void sentinel_fail(rl_redis_t *rd, const char *what, const char *detail);

/* Nothing in flight for RL_REDIS_IDLE_MS: the connection is let go quietly
 * (QUIT's effect: hiredis closes once nothing is pending). */
static void
close_idle(rl_redis_t *rd)
{
    redisAsyncContext *ac = rd->ac;

    rd->ac = NULL;
    rd->connected = 0;
    ac->data = NULL;
    redisAsyncDisconnect(ac);
}

static void
on_timer(uv_timer_t *t)
{
    rl_redis_t *rd = t->data;
    int64_t next = INT64_MAX;

    rd->timer_on = 0;
    if (rd->cluster) {
        /* redis_cluster.c drops a silent master; the requests don't wait */
        while (rd->ops && rd->ops->deadline_ms <= now_ms(rd))
            op_expire(rd->ops);
    } else if (rd->ops && rd->ops->deadline_ms <= now_ms(rd)) {
        drop(rd, "timed out", "no answer within redis.timeout");
    }
    if (rd->sc && rd->sc_deadline_ms <= now_ms(rd))
        sentinel_fail(rd, "[sentinel timed out", "no answer within redis.timeout");
    if (rd->ac != NULL && rd->ops == NULL) { /* idle: closed when kept long enough */
        if (now_ms(rd) - rd->last_used_ms >= RL_REDIS_IDLE_MS)
            close_idle(rd);
        else
            next = rd->last_used_ms + RL_REDIS_IDLE_MS;
    }
    if (rd->ops)
        next = rd->ops->deadline_ms;
    if (rd->sc && rd->sc_deadline_ms < next)
        next = rd->sc_deadline_ms;
    if (next != INT64_MAX) {
        int64_t wait = next - now_ms(rd);
        uv_timer_start(&rd->timer, on_timer, wait > 0 ? (uint64_t)wait : 1, 0);
        rd->timer_on = 1;
    }
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
    rl_redis_t *rd = ac->data;

    if (rd == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        rd->ac = NULL;
        rd->connected = 0;
        warn(rd, "connection failed", fail_detail(rd, ac));
        rd->tls_why[0] = '\0';
        rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
        rd->master_host[0] = '\0';
        rd->addr[0] = '\0';
        return;
    }
    rd->connected = 1;
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
    rl_redis_t *rd = ac->data;

    if (rd == NULL)
        return;
    rd->ac = NULL;
    rd->connected = 0;
    if (status != REDIS_OK) {
        warn(rd, "connection lost", fail_detail(rd, ac));
        rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
    }
    rd->tls_why[0] = '\0';
    rd->master_host[0] = '\0';
    rd->addr[0] = '\0';
}

/* AUTH / SELECT answers: an error means every later command is wrong. */
static void
on_setup_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rp = reply;
    rl_redis_t *rd = ac->data;

    (void)privdata;
    if (rd != NULL && rp != NULL && rp->type == REDIS_REPLY_ERROR) {
        warn(rd, (const char *)privdata, rp->str);
        redisAsyncDisconnect(ac);
    }
}

/* ---- Sentinel: the master's address ---- */

static void
sentinel_close(rl_redis_t *rd)
{
    redisAsyncContext *sc = rd->sc;

    if (sc == NULL)
        return;
    rd->sc = NULL;
    sc->data = NULL;
    redisAsyncFree(sc);
}

/* This sentinel could not say: the next one is asked after the back-off. */
static void
sentinel_fail(rl_redis_t *rd, const char *what, const char *detail)
{
    const rl_sentinel_node_t *n = (const rl_sentinel_node_t *)rd->rc->sentinel_nodes.items +
                                  (rd->next_node % rd->rc->sentinel_nodes.n);
    char d[256];

    snprintf(d, sizeof(d), "%s:%lld: %s", n->host, (long long)n->port, detail ? detail : "");
    rd->next_node++;
    rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
    warn(rd, what, d);
    if (rd->sc != NULL) {
        /* not from inside its own callbacks: they clear rd->sc first */
        sentinel_close(rd);
    }
}

static int ensure_connected(rl_redis_t *rd);
static void arm_timer(rl_redis_t *rd);

static void
on_sentinel_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rl_redis_t *rd = ac->data;
    redisReply *rp = reply;

    (void)privdata;
    if (rd == NULL || rd->sc != ac)
        return;
    if (rp != NULL && rp->type == REDIS_REPLY_ARRAY && rp->elements == 2 &&
        rp->element[0]->type == REDIS_REPLY_STRING && rp->element[1]->type == REDIS_REPLY_STRING &&
        rp->element[0]->len < sizeof(rd->master_host)) {
        int port = atoi(rp->element[1]->str);
        rd->sc = NULL; /* this connection's job is done */
        ac->data = NULL;
        redisAsyncDisconnect(ac);
        if (port <= 0 || port > 65535) {
            sentinel_fail(rd, "[sentinel answered", "a bad port");
            return;
        }
        if (strcmp(rd->master_host, rp->element[0]->str) != 0 || rd->master_port != port)
            rd->api->log(NULL, SL_LOG_INFO, "Redis Sentinel: master '%s' is at %s:%d",
                         rd->rc->sentinel_master, rp->element[0]->str, port);
        snprintf(rd->master_host, sizeof(rd->master_host), "%s", rp->element[0]->str);
        rd->master_port = port;
        ensure_connected(rd);
        return;
    }
    rd->sc = NULL;
    ac->data = NULL;
    redisAsyncDisconnect(ac);
    sentinel_fail(rd, "[sentinel could not name the master",
                  rp == NULL && rd->stls_why[0]   ? rd->stls_why
                  : rp == NULL                    ? "no answer"
                  : rp->type == REDIS_REPLY_ERROR ? rp->str
                  : rp->type == REDIS_REPLY_NIL   ? "unknown master name"
                                                  : "unexpected answer");
}

static void
on_sentinel_connect(const redisAsyncContext *ac, int status)
{
    rl_redis_t *rd = ac->data;

    if (rd == NULL || rd->sc != ac || status == REDIS_OK)
        return;
    rd->sc = NULL; /* hiredis frees the context after this callback */
    sentinel_fail(rd, "[sentinel unreachable", rd->stls_why[0] ? rd->stls_why : ac->errstr);
    rd->stls_why[0] = '\0';
}

static void
on_sentinel_disconnect(const redisAsyncContext *ac, int status)
{
    rl_redis_t *rd = ac->data;

    (void)status;
    if (rd != NULL && rd->sc == ac)
        rd->sc = NULL; /* its reply callback already saw the failure */
}

static void
on_sentinel_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rp = reply;
    rl_redis_t *rd = ac->data;

    (void)privdata;
    if (rd != NULL && rd->sc == ac && rp != NULL && rp->type == REDIS_REPLY_ERROR) {
        rd->sc = NULL;
        ac->data = NULL;
        redisAsyncDisconnect(ac);
        sentinel_fail(rd, "[sentinel AUTH failed", rp->str);
    }
}

/* Ask the next sentinel where the master is (answered on the loop). */
static void
sentinel_ask(rl_redis_t *rd)
{
    const rl_redis_conf_t *rc = rd->rc;
    const rl_sentinel_node_t *n;
    redisAsyncContext *sc;

    if (rd->sc != NULL || rc->sentinel_nodes.n == 0)
        return;
    n = (const rl_sentinel_node_t *)rc->sentinel_nodes.items +
        (rd->next_node % rc->sentinel_nodes.n);
    sc = redisAsyncConnect(n->host, (int)n->port);
    if (sc == NULL)
        return;
    if (sc->err) {
        char d[256];
        snprintf(d, sizeof(d), "%s:%lld: %s", n->host, (long long)n->port, sc->errstr);
        redisAsyncFree(sc);
        rd->next_node++;
        rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
        warn(rd, "[sentinel unreachable", d);
        return;
    }
    sc->data = rd;
    rd->stls_why[0] = '\0';
    if (rd->tls_ctx != NULL) {
        rl_tls_forget(rd->stls); /* the last question's, closing */
        rd->stls = NULL;
        if (rl_tls_wrap(sc, rd->loop, rd->tls_ctx, rc->server_name ? rc->server_name : n->host,
                        rc->ssl_verify, &rd->stls, rd->stls_why, sizeof(rd->stls_why)) != 0) {
            char d[300];
            snprintf(d, sizeof(d), "%s:%lld: %s", n->host, (long long)n->port, rd->stls_why);
            rd->stls_why[0] = '\0';
            redisAsyncFree(sc);
            rd->next_node++;
            rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
            warn(rd, "[sentinel unreachable", d);
            return;
        }
    }
    if (rl_uv_attach(sc, rd->loop) != REDIS_OK) {
        redisAsyncFree(sc);
        return;
    }
    redisAsyncSetConnectCallback(sc, on_sentinel_connect);
    redisAsyncSetDisconnectCallback(sc, on_sentinel_disconnect);
    rd->sc = sc;
    rd->sc_deadline_ms = now_ms(rd) + rc->timeout;
    if (rc->sentinel_password != NULL && rc->sentinel_password[0] != '\0') {
        if (rc->sentinel_username != NULL)
            redisAsyncCommand(sc, on_sentinel_auth, NULL, "AUTH %s %s", rc->sentinel_username,
                              rc->sentinel_password);
        else
            redisAsyncCommand(sc, on_sentinel_auth, NULL, "AUTH %s", rc->sentinel_password);
    }
    redisAsyncCommand(sc, on_sentinel_reply, NULL, "SENTINEL get-master-addr-by-name %s",
                      rc->sentinel_master);
    if (!rd->timer_on) {
        uv_timer_start(&rd->timer, on_timer, (uint64_t)rc->timeout, 0);
        rd->timer_on = 1;
    }
}

/* ---- the target's host name, resolved on the loop ---- */

static int
is_address(const char *host)
{
    unsigned char a[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, host, a) == 1 || inet_pton(AF_INET6, host, a) == 1;
}

static void
on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    rl_redis_t *rd = req->data;
    const struct addrinfo *pick = NULL;

    free(req);
    if (rd == NULL) { /* freed meanwhile */
        uv_freeaddrinfo(res);
        return;
    }
    rd->gai = NULL;
    for (const struct addrinfo *a = res; a != NULL && status == 0; a = a->ai_next)
        if (pick == NULL || (a->ai_family == AF_INET && pick->ai_family != AF_INET))
            pick = a;
    if (pick == NULL ||
        uv_ip_name(pick->ai_addr, rd->addr, sizeof(rd->addr)) != 0) { /* no address */
        rd->addr[0] = '\0';
        rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
        rd->master_host[0] = '\0';
        warn(rd, "could not be resolved", status ? uv_strerror(status) : "no address");
    }
    uv_freeaddrinfo(res);
    if (rd->addr[0] != '\0')
        ensure_connected(rd); /* connect now, before the next request */
}

/* Start resolving the target's name (once at a time); 0 when started. */
static int
resolve(rl_redis_t *rd, const char *host)
{
    const struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    uv_getaddrinfo_t *req;

    if (rd->gai != NULL)
        return 0;
    req = malloc(sizeof(*req));
    if (req == NULL)
        return -1;
    req->data = rd;
    if (uv_getaddrinfo(rd->loop, req, on_resolved, host, NULL, &hints) != 0) {
        free(req);
        return -1;
    }
    rd->gai = req;
    return 0;
}

static int
ensure_connected(rl_redis_t *rd)
{
    const rl_redis_conf_t *rc = rd->rc;
    redisAsyncContext *ac;
    const char *host;

    if (rd->ac != NULL)
        return 0;
    if (now_ms(rd) < rd->down_until_ms) {
        rd->failures++;
        return -1;
    }
    if (rc->sentinel_master && rd->master_host[0] == '\0') {
        sentinel_ask(rd); /* connects when the answer comes */
        return -1;
    }
    host = target_host(rd);
    if (!is_address(host)) {
        if (rd->addr[0] == '\0') {
            if (resolve(rd, host) != 0)
                warn(rd, "could not be resolved", "out of memory");
            return -1; /* this request counts locally */
        }
        host = rd->addr;
    }
    ac = redisAsyncConnect(host, (int)target_port(rd));
    if (ac == NULL)
        return -1;
    if (ac->err) {
        warn(rd, "connection failed", ac->errstr);
        redisAsyncFree(ac);
        rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
        rd->master_host[0] = '\0';
        rd->addr[0] = '\0';
        return -1;
    }
    ac->data = rd;
    if (rd->tls_ctx != NULL) {
        const char *name = rc->server_name ? rc->server_name : target_host(rd);
        rl_tls_forget(rd->tls); /* the last connection's, closing */
        rd->tls = NULL;
        if (rl_tls_wrap(ac, rd->loop, rd->tls_ctx, name, rc->ssl_verify, &rd->tls, rd->tls_why,
                        sizeof(rd->tls_why)) != 0) {
            warn(rd, "connection failed", rd->tls_why);
            rd->tls_why[0] = '\0';
            redisAsyncFree(ac);
            rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
            return -1;
        }
    }
    if (rl_uv_attach(ac, rd->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return -1;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    rd->ac = ac;
    /* Queued before any command, answered first (Kong: AUTH then SELECT on
     * a fresh connection). */
    if (rc->password != NULL && rc->password[0] != '\0') {
        if (rc->username != NULL)
            redisAsyncCommand(ac, on_setup_reply, "AUTH failed", "AUTH %s %s", rc->username,
                              rc->password);
        else
            redisAsyncCommand(ac, on_setup_reply, "AUTH failed", "AUTH %s", rc->password);
    }
    if (rc->database != 0)
        redisAsyncCommand(ac, on_setup_reply, "SELECT failed", "SELECT %lld",
                          (long long)rc->database);
    rd->last_used_ms = now_ms(rd);
    arm_timer(rd); /* the idle check, when nothing else arms it */
    return 0;
}

/* An error answer.  Behind Sentinel it may be a demoted master (READONLY):
 * the connection is dropped and the sentinels asked again. */
static void
error_reply(rl_redis_t *rd, const char *err)
{
    if (rd->rc->sentinel_master && rd->ac != NULL) {
        /* hiredis defers the free while its callback runs */
        drop(rd, "answered an error", err);
        return;
    }
    warn(rd, "answered an error", err);
}

static void
arm_timer(rl_redis_t *rd)
{
    if (!rd->timer_on) {
        uv_timer_start(&rd->timer, on_timer, (uint64_t)rd->rc->timeout, 0);
        rd->timer_on = 1;
    }
}

static void
on_incr_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rl_op_t *op = privdata;
    redisReply *rp = reply;
    int i = op->replies++;

    (void)ac;
    if (rp == NULL || rp->type != REDIS_REPLY_INTEGER) {
        if (!op->failed && rp != NULL && rp->type == REDIS_REPLY_ERROR)
            error_reply(op->rd, rp->str);
        op->failed = 1;
    } else if (i < RL_REDIS_MAX_KEYS) {
        op->counts[i] = rp->integer;
    }
    if (op->replies == op->n)
        op_finish(op);
}

/* Send one command: to the key's master in a cluster, else over rd->ac. */
static int
send_cmd(rl_redis_t *rd, const char *key, int argc, const char **argv, redisCallbackFn *cb,
         void *priv)
{
    if (rd->cluster)
        return rl_cluster_send(rd->cluster, key, argc, argv, cb, priv);
    return redisAsyncCommandArgv(rd->ac, cb, priv, argc, argv, NULL) == REDIS_OK ? 0 : -1;
}

/* keepalive_pool_size + keepalive_backlog batches in flight already: the
 * next one does not wait (warned once per interval). */
static int
full(rl_redis_t *rd)
{
    if (rd->rc->max_in_flight <= 0 || rd->nops < rd->rc->max_in_flight)
        return 0;
    warn(rd, "is busy", "keepalive_pool_size + keepalive_backlog requests already wait on it");
    return 1;
}

/* One key's INCR script as hiredis formatted it for this key before
 * (rd->cmds): to its master in a cluster, else over rd->ac. */
static int
send_incr(rl_redis_t *rd, const char *key, int64_t ttl_s, rl_op_t *op)
{
    const char *cmd;
    int len;

    if (rd->cmds == NULL && (rd->cmds = rl_cmdcache_new()) == NULL)
        return -1;
    len = rl_cmdcache_incr(rd->cmds, key, strlen(key), ttl_s, &cmd);
    if (len < 0)
        return -1;
    if (rd->cluster)
        return rl_cluster_send_formatted(rd->cluster, key, cmd, (size_t)len, on_incr_reply, op);
    return redisAsyncFormattedCommand(rd->ac, on_incr_reply, op, cmd, (size_t)len) == REDIS_OK ? 0
                                                                                               : -1;
}

int
rl_redis_incr(rl_redis_t *rd, const char *const *keys, const int64_t *ttl_s, int n,
              rl_redis_done_fn done, void *arg)
{
    rl_op_t *op;

    if (n <= 0 || n > RL_REDIS_MAX_KEYS || full(rd) ||
        (rd->cluster == NULL && ensure_connected(rd) != 0))
        return -1;
    op = op_new(rd);
    if (op == NULL)
        return -1;
    op->rd = rd;
    op->done = done;
    op->arg = arg;
    op->n = n;
    op->deadline_ms = now_ms(rd) + rd->rc->timeout;
    op_link(rd, op);
    for (int i = 0; i < n; i++) {
        if (send_incr(rd, keys[i], ttl_s[i], op) != 0) {
            if (i == 0) { /* nothing sent: the caller counts locally at once */
                op_unlink(rd, op);
                op_free(rd, op);
                return -1;
            }
            /* Commands already sent will be answered (or fail with the
             * connection); count the rest as failed answers. */
            op->failed = 1;
            op->replies += n - i;
            if (op->replies == op->n)
                op_finish(op);
            if (rd->cluster == NULL)
                drop(rd, "refused a command", rd->ac ? rd->ac->errstr : "");
            return 0;
        }
    }
    arm_timer(rd);
    return 0;
}

void
rl_redis_forget(rl_redis_t *rd, void *arg)
{
    for (rl_op_t *op = rd->ops; op; op = op->next)
        if (op->arg == arg)
            op->done = NULL;
}

/* --- batched counting (sync_rate > 0) --- */

typedef struct rl_flush {
    rl_redis_t *rd;
    rl_owed_t *owed;
    int64_t sent;
} rl_flush_t;

/* "<c>:" + key into out[SL_SHM_KEY_MAX]: the zone's key, or len 0 when it
 * would be too long. */
static sl_str_t
zone_key(char *out, char c, const char *key, size_t kl)
{
    if (kl + 2 > SL_SHM_KEY_MAX)
        return (sl_str_t){out, 0};
    out[0] = c;
    out[1] = ':';
    memcpy(out + 2, key, kl);
    return (sl_str_t){out, kl + 2};
}

static void
zone_set_total(rl_redis_t *rd, const rl_owed_t *o, int64_t total)
{
    char tk[SL_SHM_KEY_MAX];
    double cur = 0;
    sl_str_t k = zone_key(tk, 't', o->key, o->klen);

    if (k.len == 0)
        return;
    /* Numbers can only be added to: move the stored total to the new one
     * (two workers' answers may interleave; either is a recent total). */
    if (rd->api->shm_get(rd->zone, k, NULL, 0, NULL, &cur) != SL_SHM_NUMBER)
        cur = 0;
    rd->api->shm_incr(rd->zone, k, (double)total - cur, (uint64_t)o->ttl_s * 1000, NULL);
}

static void
zone_add_pending(rl_redis_t *rd, const char *key, size_t kl, int64_t delta, int64_t ttl_s)
{
    char pk[SL_SHM_KEY_MAX];
    sl_str_t k = zone_key(pk, 'p', key, kl);

    if (k.len != 0)
        rd->api->shm_incr(rd->zone, k, (double)delta, (uint64_t)ttl_s * 1000, NULL);
}

static void
owed_remove(rl_redis_t *rd, rl_owed_t *o)
{
    rl_owed_t **pp = &rd->owed[rl_key_hash(o->key, o->klen) % RL_FLUSH_BUCKETS];

    for (; *pp; pp = &(*pp)->next) {
        if (*pp == o) {
            *pp = o->next;
            rd->nowed--;
            free(o);
            return;
        }
    }
}

static void
on_flush_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rl_flush_t *f = privdata;
    redisReply *rp = reply;
    rl_redis_t *rd = f->rd;
    rl_owed_t *o = f->owed;

    (void)ac;
    o->in_flight = 0;
    if (rp != NULL && rp->type == REDIS_REPLY_INTEGER) {
        /* Redis has them now: they leave this node's pending count. */
        zone_add_pending(rd, o->key, o->klen, -f->sent, o->ttl_s);
        zone_set_total(rd, o, rp->integer);
        o->delta -= f->sent;
        if (o->delta == 0)
            owed_remove(rd, o);
    } else if (rp != NULL && rp->type == REDIS_REPLY_ERROR) {
        error_reply(rd, rp->str);
    }
    free(f);
}

static void
flush(const sl_api_t *api, sl_worker_timer_t *t, void *arg)
{
    rl_redis_t *rd = arg;
    int sent = 0;

    (void)api;
    (void)t;
    if (rd->nowed == 0 || (rd->cluster == NULL && ensure_connected(rd) != 0))
        return;
    for (size_t b = 0; b < RL_FLUSH_BUCKETS; b++) {
        for (rl_owed_t *o = rd->owed[b]; o; o = o->next) {
            char d[24], ttl[24];
            rl_flush_t *f;
            if (o->in_flight || o->delta == 0)
                continue;
            if (sent == 0 && full(rd))
                return; /* a batch to send, and no room for it: the next flush */
            f = malloc(sizeof(*f));
            if (f == NULL)
                return;
            f->rd = rd;
            f->owed = o;
            f->sent = o->delta;
            snprintf(d, sizeof(d), "%lld", (long long)o->delta);
            snprintf(ttl, sizeof(ttl), "%lld", (long long)o->ttl_s);
            const char *argv[] = {"EVAL", incrby_script, "1", o->key, d, ttl};
            if (send_cmd(rd, o->key, 6, argv, on_flush_reply, f) != 0) {
                free(f);
                if (rd->cluster)
                    continue; /* no route for this one now: owed until the next flush */
                drop(rd, "refused a command", "");
                return;
            }
            o->in_flight = 1;
            sent++;
        }
    }
    if (sent && rd->cluster == NULL) {
        /* A flush is guarded by the same timeout as requests: an op with no
         * callback, so a silent Redis is dropped and retried (a cluster
         * drops a silent master itself). */
        rl_op_t *op = op_new(rd);
        if (op != NULL) {
            op->rd = rd;
            op->n = 1;
            op->deadline_ms = now_ms(rd) + rd->rc->timeout;
            op_link(rd, op);
            if (redisAsyncCommand(rd->ac, on_incr_reply, op, "PING") != REDIS_OK) {
                op_unlink(rd, op);
                op_free(rd, op);
            }
            arm_timer(rd);
        }
    }
}

int
rl_redis_add(rl_redis_t *rd, const char *key, int64_t ttl_s, int64_t delta)
{
    size_t kl = strlen(key);
    unsigned b = rl_key_hash(key, kl) % RL_FLUSH_BUCKETS;
    rl_owed_t *o;

    zone_add_pending(rd, key, kl, delta, ttl_s);
    for (o = rd->owed[b]; o; o = o->next)
        if (o->klen == kl && memcmp(o->key, key, kl) == 0)
            break;
    if (o == NULL) {
        if (rd->nowed >= RL_FLUSH_MAX) {
            warn(rd, "is behind", "too many counters owed; dropping");
            zone_add_pending(rd, key, kl, -delta, ttl_s);
            return -1;
        }
        o = calloc(1, sizeof(*o) + kl + 1);
        if (o == NULL)
            return -1;
        memcpy(o->key, key, kl + 1);
        o->klen = kl;
        o->ttl_s = ttl_s;
        o->next = rd->owed[b];
        rd->owed[b] = o;
        rd->nowed++;
    }
    o->delta += delta;
    if (rd->flush_timer == NULL) {
        uint64_t ms = (uint64_t)(rd->sync_rate * 1000);
        rd->flush_timer = rd->api->worker_timer_start(ms, ms, flush, rd);
    }
    return 0;
}

/* --- lifecycle --- */

rl_redis_t *
rl_redis_new(const sl_api_t *api, const rl_redis_conf_t *rc, sl_shm_t *zone, double sync_rate)
{
    rl_redis_t *rd;
    uv_loop_t *loop = api->worker_loop();

    if (loop == NULL)
        return NULL;
    rd = calloc(1, sizeof(*rd));
    if (rd == NULL) {
        api->log(NULL, SL_LOG_ERROR, "cannot set up Redis: counting locally");
        return NULL;
    }
    rd->api = api;
    rd->rc = rc;
    rd->zone = zone;
    rd->sync_rate = sync_rate;
    rd->loop = loop;
    if (rc->ssl) {
        char err[160];
        rd->tls_ctx = rl_tls_ctx_new(rc->ssl_verify, err, sizeof(err));
        if (rd->tls_ctx == NULL) {
            api->log(NULL, SL_LOG_ERROR, "cannot set up TLS to Redis (%s): counting locally", err);
            free(rd);
            return NULL;
        }
    }
    if (rc->cluster_nodes.n > 0) {
        rd->cluster = rl_cluster_new(api, rc, loop, rd->tls_ctx);
        if (rd->cluster == NULL) {
            SSL_CTX_free(rd->tls_ctx);
            free(rd);
            return NULL;
        }
    }
    uv_timer_init(loop, &rd->timer);
    rd->timer.data = rd;
    if (rd->cluster == NULL && rc->sentinel_master == NULL && rc->host != NULL &&
        !is_address(rc->host))
        resolve(rd, rc->host); /* known before the first request, most often */
    return rd;
}

static void
timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void
rl_redis_free(rl_redis_t *rd)
{
    if (rd == NULL)
        return;
    if (rd->flush_timer)
        rd->api->worker_timer_stop(rd->flush_timer);
    sentinel_close(rd);
    if (rd->gai != NULL) { /* its callback comes later (cancelled) and frees it */
        rd->gai->data = NULL;
        uv_cancel((uv_req_t *)rd->gai);
    }
    rl_cluster_free(rd->cluster); /* fails what is in flight: callbacks see NULL */
    rd->cluster = NULL;
    if (rd->ac) {
        redisAsyncContext *ac = rd->ac;
        rd->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac); /* fails what is in flight: callbacks see NULL */
    }
    rl_tls_close(rd->tls);
    rl_tls_close(rd->stls);
    SSL_CTX_free(rd->tls_ctx); /* kept by a bridge still closing */
    while (rd->ops) {
        rl_op_t *op = rd->ops;
        op->done = NULL;
        op_finish(op);
    }
    while (rd->spare) {
        rl_op_t *op = rd->spare;
        rd->spare = op->next;
        free(op);
    }
    rl_cmdcache_free(rd->cmds);
    for (size_t b = 0; b < RL_FLUSH_BUCKETS; b++) {
        while (rd->owed[b]) {
            rl_owed_t *o = rd->owed[b];
            rd->owed[b] = o->next;
            free(o);
        }
    }
    uv_close((uv_handle_t *)&rd->timer, timer_closed);
}
