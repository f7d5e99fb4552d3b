/* redis_cluster.c - Redis Cluster routing for the rate-limiting plugins' Redis counter store.
 *
 * The slot map (which master serves each of the 16384 slots) is asked with
 * CLUSTER SLOTS of the configured cluster_nodes, or of a master already
 * known, in turn: when the worker starts, again after a MOVED answer, and after
 * a master could not be reached, timed out or closed (a replica may have
 * been promoted); at most once per RL_CLUSTER_REFRESH_MS.  Each command goes
 * to its key's master over one hiredis async connection per master on the
 * worker's loop.  A MOVED answer updates that slot and the command is sent
 * where it points; an ASK answer (the slot is being migrated) sends ASKING
 * and the command to the node named, once, leaving the map alone; both up to
 * cluster_max_redirections times.  A master silent for redis.timeout while
 * commands wait is dropped (they fail), then left alone for a second.
 * While there is no route, rl_cluster_send refuses at once and the store
 * counts locally, as when a single Redis is down. */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "redis_cluster.h"
#include "redis_slot.h"
#include "redis_tls.h"
#include "redis_uv.h"

#define RL_CLUSTER_MAX_NODES 64    /* addresses known at once (bounded memory) */
#define RL_NO_NODE 0xff            /* slot map: master not known */
#define RL_CLUSTER_BACKOFF_MS 1000 /* an unreachable node is not tried for this long */
#define RL_CLUSTER_WARN_MS 10000   /* one warning per interval */
#define RL_CLUSTER_REFRESH_MS 1000 /* CLUSTER SLOTS at most this often */
#define RL_CMD_MAX_ARGS 8

_Static_assert(RL_CLUSTER_MAX_NODES < RL_NO_NODE, "a node index fits the slot map");

typedef struct rl_cnode {
    rl_cluster_t *cl;
    int used;
    char host[64];
    int port;
    redisAsyncContext *ac;
    rl_tls_t *tls;         /* redis.ssl: ac's TLS bridge, until it closes */
    unsigned inflight;     /* commands awaiting an answer */
    int64_t progress_ms;   /* the last answer, or when inflight left 0 */
    int64_t down_until_ms; /* not tried again before */
} rl_cnode_t;

typedef struct rl_ccmd {
    rl_cluster_t *cl;
    rl_cnode_t *node; /* where it waits */
    redisCallbackFn *cb;
    void *priv;
    int slot; /* -1: for this node, not routed (CLUSTER SLOTS) */
    int redirects;
    int argc; /* 0: the command is already formatted, fmtlen bytes in buf */
    size_t fmtlen;
    const char *argv[RL_CMD_MAX_ARGS];
    size_t argvlen[RL_CMD_MAX_ARGS];
    char buf[]; /* the arguments' bytes */
} rl_ccmd_t;

struct rl_cluster {
    const sl_api_t *api;
    const rl_redis_conf_t *rc;
    uv_loop_t *loop;
    uv_timer_t timer; /* silent masters */
    int timer_on;
    int closing;
    int mapped;     /* the slot map was read */
    int stale;      /* ask for it again */
    int refreshing; /* CLUSTER SLOTS in flight */
    int64_t refresh_after_ms;
    size_t next_ask; /* whom CLUSTER SLOTS is asked of next */
    int64_t last_warn_ms;
    unsigned long failures; /* since the last warning */
    SSL_CTX *tls;           /* redis.ssl, else NULL */
    char tls_why[200];      /* why a node's TLS failed, for its disconnect callback; "" */
    rl_cnode_t node[RL_CLUSTER_MAX_NODES];
    uint8_t slot[RL_CLUSTER_SLOTS]; /* node index, or RL_NO_NODE */
};

/* ---- configuration ---- */

static const sl_field_t cluster_node_fields[] = {
    {.name = "ip",
     .type = SL_FIELD_STRING,
     .offset = offsetof(rl_cluster_node_t, ip),
     .def = "\"127.0.0.1\""},
    {.name = "port",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_RANGE,
     .offset = offsetof(rl_cluster_node_t, port),
     .def = "6379",
     .min = 0,
     .max = 65535},
    {.type = SL_FIELD_END},
};
static const sl_schema_t cluster_node_schema = {.size = sizeof(rl_cluster_node_t),
                                                .fields = cluster_node_fields};
const sl_field_t rl_cluster_node_elem = {.type = SL_FIELD_RECORD, .record = &cluster_node_schema};

int
rl_redis_check_cluster(const sl_api_t *api, sl_conf_ctx_t *cx, const rl_redis_conf_t *rc,
                       const char *prefix)
{
    char path[64];
    int bad = 0;

    if (rc->cluster_nodes.n == 0)
        return 0;
    snprintf(path, sizeof(path), "%s.cluster_nodes", prefix);
    if (rc->sentinel_master != NULL || rc->sentinel_nodes.n > 0) {
        api->conf_error(cx, path,
                        "Redis Cluster and Redis Sentinel exclude each other: set either "
                        "cluster_nodes or sentinel_master and sentinel_nodes");
        bad = 1;
    }
    if (rc->database != 0) {
        snprintf(path, sizeof(path), "%s.database", prefix);
        api->conf_error(cx, path, "a Redis Cluster has only database 0");
        bad = 1;
    }
    for (size_t i = 0; i < rc->cluster_nodes.n; i++) {
        const rl_cluster_node_t *n = (const rl_cluster_node_t *)rc->cluster_nodes.items + i;
        if (n->ip == NULL || n->ip[0] == '\0' || strlen(n->ip) >= 64 || n->port == 0) {
            snprintf(path, sizeof(path), "%s.cluster_nodes[%zu]", prefix, i);
            api->conf_error(cx, path, "expected an ip (or host name) and a port (1-65535)");
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* ---- nodes ---- */

static int64_t
now_ms(rl_cluster_t *cl)
{
    return cl->api->now_us() / 1000;
}

/* One warning per interval; n NULL: about the cluster, not one node. */
static void
warn(rl_cluster_t *cl, const rl_cnode_t *n, const char *what, const char *detail)
{
    int64_t t = now_ms(cl);

    cl->failures++;
    if (t - cl->last_warn_ms < RL_CLUSTER_WARN_MS)
        return;
    if (n != NULL)
        cl->api->log(NULL, SL_LOG_WARN,
                     "Redis Cluster node %s:%d %s: %s (%lu failure(s) in the last interval); "
                     "counting locally meanwhile",
                     n->host, n->port, what, detail ? detail : "", cl->failures);
    else
        cl->api->log(NULL, SL_LOG_WARN,
                     "Redis Cluster %s: %s (%lu failure(s) in the last interval); counting "
                     "locally meanwhile",
                     what, detail ? detail : "", cl->failures);
    cl->last_warn_ms = t;
    cl->failures = 0;
}

static int
node_get(rl_cluster_t *cl, const char *host, int port)
{
    int free_at = -1;

    for (int i = 0; i < RL_CLUSTER_MAX_NODES; i++) {
        const rl_cnode_t *n = &cl->node[i];
        if (n->used && n->port == port && strcmp(n->host, host) == 0)
            return i;
        if (!n->used && free_at < 0)
            free_at = i;
    }
    if (free_at < 0 || strlen(host) >= sizeof(cl->node[0].host)) {
        warn(cl, NULL, "has too many nodes", "address not kept");
        return -1;
    }
    rl_cnode_t *n = &cl->node[free_at];
    rl_tls_forget(n->tls);
    memset(n, 0, sizeof(*n));
    n->cl = cl;
    n->used = 1;
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    return free_at;
}

/* The node failed: left alone for a while, and the slot map asked again
 * (its slots may have moved to a promoted replica). */
static void
node_failed(rl_cnode_t *n, const char *what, const char *detail)
{
    rl_cluster_t *cl = n->cl;

    warn(cl, n, what, detail);
    n->down_until_ms = now_ms(cl) + RL_CLUSTER_BACKOFF_MS;
    cl->stale = 1;
}

/* Close the connection: commands in flight are answered NULL (in here). */
static void
node_close(rl_cnode_t *n)
{
    redisAsyncContext *ac = n->ac;

    if (ac == NULL)
        return;
    n->ac = NULL;
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void
on_node_connect(const redisAsyncContext *ac, int status)
{
    rl_cnode_t *n = ac->data;

    if (n == NULL || status == REDIS_OK)
        return;
    n->ac = NULL; /* hiredis frees the context after this callback */
    node_failed(n, "connection failed", n->cl->tls_why[0] ? n->cl->tls_why : ac->errstr);
    n->cl->tls_why[0] = '\0';
}

static void
on_node_disconnect(const redisAsyncContext *ac, int status)
{
    rl_cnode_t *n = ac->data;

    if (n == NULL)
        return;
    n->ac = NULL;
    if (status != REDIS_OK)
        node_failed(n, "connection lost", n->cl->tls_why[0] ? n->cl->tls_why : ac->errstr);
    n->cl->tls_why[0] = '\0';
}

static void
on_auth(redisAsyncContext *ac, void *reply, void *privdata)
{
    redisReply *rp = reply;
    rl_cnode_t *n = ac->data;

    (void)privdata;
    if (n != NULL && rp != NULL && rp->type == REDIS_REPLY_ERROR) {
        node_failed(n, "AUTH failed", rp->str);
        redisAsyncDisconnect(ac);
    }
}

static int
node_connect(rl_cnode_t *n)
{
    rl_cluster_t *cl = n->cl;
    const rl_redis_conf_t *rc = cl->rc;
    redisAsyncContext *ac;

    if (n->ac != NULL)
        return 0;
    if (now_ms(cl) < n->down_until_ms) {
        cl->failures++;
        return -1;
    }
    ac = redisAsyncConnect(n->host, n->port);
    if (ac == NULL)
        return -1;
    if (ac->err) {
        node_failed(n, "connection failed", ac->errstr);
        redisAsyncFree(ac);
        return -1;
    }
    ac->data = n;
    if (cl->tls != NULL) {
        const char *name = rc->server_name ? rc->server_name : n->host;
        rl_tls_forget(n->tls); /* the last connection's, closing */
        n->tls = NULL;
        if (rl_tls_wrap(ac, cl->loop, cl->tls, name, rc->ssl_verify, &n->tls, cl->tls_why,
                        sizeof(cl->tls_why)) != 0) {
            node_failed(n, "connection failed", cl->tls_why);
            cl->tls_why[0] = '\0';
            redisAsyncFree(ac);
            return -1;
        }
    }
    if (rl_uv_attach(ac, cl->loop) != REDIS_OK) {
        redisAsyncFree(ac);
        return -1;
    }
    redisAsyncSetConnectCallback(ac, on_node_connect);
    redisAsyncSetDisconnectCallback(ac, on_node_disconnect);
    n->ac = ac;
    if (rc->password != NULL && rc->password[0] != '\0') {
        if (rc->username != NULL)
            redisAsyncCommand(ac, on_auth, NULL, "AUTH %s %s", rc->username, rc->password);
        else
            redisAsyncCommand(ac, on_auth, NULL, "AUTH %s", rc->password);
    }
    return 0;
}

/* ---- silent masters ---- */

static void
on_timer(uv_timer_t *t)
{
    rl_cluster_t *cl = t->data;
    int64_t now = now_ms(cl), next = INT64_MAX, limit = cl->rc->timeout;

    cl->timer_on = 0;
    for (int i = 0; i < RL_CLUSTER_MAX_NODES; i++) {
        rl_cnode_t *n = &cl->node[i];
        if (!n->used || n->ac == NULL || n->inflight == 0)
            continue;
        if (now - n->progress_ms >= limit) {
            node_close(n); /* its commands fail */
            node_failed(n, "timed out", "no answer within redis.timeout");
        } else if (n->progress_ms + limit < next) {
            next = n->progress_ms + limit;
        }
    }
    if (next != INT64_MAX) {
        uv_timer_start(&cl->timer, on_timer, (uint64_t)(next - now), 0);
        cl->timer_on = 1;
    }
}

/* ---- commands ---- */

/* A zeroed command with room for `extra` bytes of text after it. */
static rl_ccmd_t *
cmd_alloc(rl_cluster_t *cl, int slot, size_t extra, redisCallbackFn *cb, void *priv)
{
    rl_ccmd_t *c = malloc(sizeof(*c) + extra);

    if (c == NULL)
        return NULL;
    memset(c, 0, sizeof(*c));
    c->cl = cl;
    c->cb = cb;
    c->priv = priv;
    c->slot = slot;
    return c;
}

static rl_ccmd_t *
cmd_new(rl_cluster_t *cl, int slot, int argc, const char **argv, redisCallbackFn *cb, void *priv)
{
    size_t total = 0;
    rl_ccmd_t *c;
    char *p;

    if (argc <= 0 || argc > RL_CMD_MAX_ARGS)
        return NULL;
    for (int i = 0; i < argc; i++)
        total += strlen(argv[i]);
    c = cmd_alloc(cl, slot, total, cb, priv);
    if (c == NULL)
        return NULL;
    c->argc = argc;
    p = c->buf;
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(argv[i]);
        memcpy(p, argv[i], l);
        c->argv[i] = p;
        c->argvlen[i] = l;
        p += l;
    }
    return c;
}

/* A command hiredis formatted already (kept for a redirect). */
static rl_ccmd_t *
cmd_new_formatted(rl_cluster_t *cl, int slot, const char *cmd, size_t len, redisCallbackFn *cb,
                  void *priv)
{
    rl_ccmd_t *c = cmd_alloc(cl, slot, len, cb, priv);

    if (c == NULL)
        return NULL;
    c->fmtlen = len;
    memcpy(c->buf, cmd, len);
    return c;
}

static void on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata);

static int
node_send(rl_cnode_t *n, rl_ccmd_t *c)
{
    rl_cluster_t *cl = n->cl;

    if (node_connect(n) != 0)
        return -1;
    if ((c->argc == 0 ? redisAsyncFormattedCommand(n->ac, on_cmd_reply, c, c->buf, c->fmtlen)
                      : redisAsyncCommandArgv(n->ac, on_cmd_reply, c, c->argc, c->argv,
                                              c->argvlen)) != REDIS_OK)
        return -1;
    c->node = n;
    if (n->inflight++ == 0)
        n->progress_ms = now_ms(cl);
    if (!cl->timer_on) {
        uv_timer_start(&cl->timer, on_timer, (uint64_t)cl->rc->timeout, 0);
        cl->timer_on = 1;
    }
    return 0;
}

/* Follow a MOVED or ASK answer: 0 when the command was sent again. */
static int
redirect(rl_ccmd_t *c, const rl_redirect_t *to)
{
    rl_cluster_t *cl = c->cl;
    rl_cnode_t *n;
    int i;

    if (c->redirects >= cl->rc->cluster_max_redirections) {
        warn(cl, NULL, "redirected too often", "cluster_max_redirections reached");
        return -1;
    }
    c->redirects++;
    i = node_get(cl, to->host, to->port);
    if (i < 0)
        return -1;
    n = &cl->node[i];
    if (to->kind == RL_REDIRECT_MOVED) {
        cl->slot[to->slot] = (uint8_t)i;
        cl->stale = 1; /* more slots may have moved with it */
    } else {
        if (node_connect(n) != 0 ||
            redisAsyncCommand(n->ac, NULL, NULL, "ASKING") != REDIS_OK) /* answer unread */
            return -1;
    }
    return node_send(n, c);
}

static void
on_cmd_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    rl_ccmd_t *c = privdata;
    rl_cluster_t *cl = c->cl;
    redisReply *rp = reply;
    rl_redirect_t to;

    c->node->inflight--;
    c->node->progress_ms = now_ms(cl);
    if (c->slot >= 0 && rp == NULL)
        cl->stale = 1;
    if (c->slot >= 0 && rp != NULL && rp->type == REDIS_REPLY_ERROR && !cl->closing &&
        rl_redirect_parse(rp->str, &to) != RL_REDIRECT_NONE && redirect(c, &to) == 0)
        return; /* answered later, from there */
    c->cb(ac, reply, c->priv);
    free(c);
}

/* ---- the slot map ---- */

/* One CLUSTER SLOTS entry's master: [start, end, [host, port, ...], ...].
 * The node index, or -1 when malformed (or no room). */
static int
slots_entry(rl_cluster_t *cl, const redisReply *e, const char *asked, long long *lo, long long *hi)
{
    const redisReply *m;
    const char *host;

    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
        e->element[0]->type != REDIS_REPLY_INTEGER || e->element[1]->type != REDIS_REPLY_INTEGER)
        return -1;
    *lo = e->element[0]->integer;
    *hi = e->element[1]->integer;
    m = e->element[2];
    if (*lo < 0 || *hi >= RL_CLUSTER_SLOTS || *lo > *hi || m->type != REDIS_REPLY_ARRAY ||
        m->elements < 2 || m->element[0]->type != REDIS_REPLY_STRING ||
        m->element[1]->type != REDIS_REPLY_INTEGER || m->element[1]->integer <= 0 ||
        m->element[1]->integer > 65535)
        return -1;
    host = m->element[0]->str;
    if (host[0] == '\0' || strcmp(host, "?") == 0) /* "the node you asked" */
        host = asked;
    return node_get(cl, host, (int)m->element[1]->integer);
}

static void
on_slots(redisAsyncContext *ac, void *reply, void *privdata)
{
    rl_cluster_t *cl = privdata;
    const rl_cnode_t *asked = ac ? ac->data : NULL;
    redisReply *rp = reply;
    uint8_t *map;
    char used[RL_CLUSTER_MAX_NODES] = {0};
    unsigned covered = 0, masters = 0;

    cl->refreshing = 0;
    if (cl->closing)
        return;
    if (rp == NULL || asked == NULL || rp->type != REDIS_REPLY_ARRAY || rp->elements == 0) {
        cl->stale = 1;
        warn(cl, NULL, "slot map unknown",
             rp == NULL                      ? "no answer"
             : rp->type == REDIS_REPLY_ERROR ? rp->str
                                             : "empty answer");
        return;
    }
    map = malloc(RL_CLUSTER_SLOTS);
    if (map == NULL)
        return;
    memset(map, RL_NO_NODE, RL_CLUSTER_SLOTS);
    for (size_t i = 0; i < rp->elements; i++) {
        long long lo, hi;
        int n = slots_entry(cl, rp->element[i], asked->host, &lo, &hi);
        if (n < 0)
            continue;
        memset(map + lo, n, (size_t)(hi - lo + 1));
        covered += (unsigned)(hi - lo + 1);
        masters += !used[n];
        used[n] = 1;
    }
    if (!cl->mapped || memcmp(map, cl->slot, RL_CLUSTER_SLOTS) != 0)
        cl->api->log(NULL, SL_LOG_INFO, "Redis Cluster: %u master(s) serve %u of %d slots", masters,
                     covered, RL_CLUSTER_SLOTS);
    memcpy(cl->slot, map, RL_CLUSTER_SLOTS);
    free(map);
    cl->mapped = 1;
    cl->stale = covered < RL_CLUSTER_SLOTS;
    /* Addresses no slot points to and nothing waits on are forgotten
     * (bounded table); seeds are found again by address when asked. */
    for (int i = 0; i < RL_CLUSTER_MAX_NODES; i++) {
        rl_cnode_t *n = &cl->node[i];
        if (n->used && !used[i] && n->inflight == 0) {
            node_close(n);
            n->used = 0;
        }
    }
}

/* Ask for the slot map: of the seeds and the masters known, in turn. */
static void
refresh(rl_cluster_t *cl)
{
    const rl_redis_conf_t *rc = cl->rc;
    size_t seeds = rc->cluster_nodes.n, total = seeds + RL_CLUSTER_MAX_NODES;
    int64_t now = now_ms(cl);

    if (cl->refreshing || cl->closing || now < cl->refresh_after_ms)
        return;
    cl->refresh_after_ms = now + RL_CLUSTER_REFRESH_MS;
    for (size_t k = 0; k < total; k++) {
        size_t pos = (cl->next_ask + k) % total;
        rl_cnode_t *n = NULL;
        if (pos < seeds) {
            const rl_cluster_node_t *s = (const rl_cluster_node_t *)rc->cluster_nodes.items + pos;
            int i = node_get(cl, s->ip, (int)s->port);
            n = i < 0 ? NULL : &cl->node[i];
        } else if (cl->node[pos - seeds].used) {
            n = &cl->node[pos - seeds];
        }
        if (n == NULL || now < n->down_until_ms)
            continue;
        cl->next_ask = pos + 1;
        const char *argv[] = {"CLUSTER", "SLOTS"};
        rl_ccmd_t *c = cmd_new(cl, -1, 2, argv, on_slots, cl);
        if (c == NULL)
            return;
        if (node_send(n, c) != 0) {
            free(c);
            continue;
        }
        cl->refreshing = 1;
        return;
    }
    warn(cl, NULL, "unreachable", "no node of cluster_nodes answers");
}

/* The key's slot when its master is known, else -1 (the map asked for). */
static int
route(rl_cluster_t *cl, const char *key)
{
    unsigned slot;

    if (cl->closing)
        return -1;
    if (!cl->mapped || cl->stale)
        refresh(cl);
    slot = rl_key_slot(key, strlen(key));
    if (!cl->mapped || cl->slot[slot] == RL_NO_NODE) {
        cl->stale = 1;
        cl->failures++;
        return -1;
    }
    return (int)slot;
}

/* Send c (NULL: out of memory) to its slot's master; freed on failure. */
static int
send_new(rl_cluster_t *cl, int slot, rl_ccmd_t *c)
{
    if (c == NULL)
        return -1;
    if (node_send(&cl->node[cl->slot[slot]], c) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

int
rl_cluster_send(rl_cluster_t *cl, const char *key, int argc, const char **argv, redisCallbackFn *cb,
                void *priv)
{
    int slot = route(cl, key);
    rl_ccmd_t *c;

    if (slot < 0)
        return -1;
    c = cmd_new(cl, slot, argc, argv, cb, priv);
    return send_new(cl, slot, c);
}

int
rl_cluster_send_formatted(rl_cluster_t *cl, const char *key, const char *cmd, size_t len,
                          redisCallbackFn *cb, void *priv)
{
    int slot = route(cl, key);
    rl_ccmd_t *c;

    if (slot < 0)
        return -1;
    c = cmd_new_formatted(cl, slot, cmd, len, cb, priv);
    return send_new(cl, slot, c);
}

/* ---- lifecycle ---- */

rl_cluster_t *
rl_cluster_new(const sl_api_t *api, const rl_redis_conf_t *rc, void *loop, SSL_CTX *tls)
{
    rl_cluster_t *cl = calloc(1, sizeof(*cl));

    if (cl == NULL) {
        api->log(NULL, SL_LOG_ERROR, "cannot set up Redis Cluster: counting locally");
        return NULL;
    }
    cl->api = api;
    cl->rc = rc;
    cl->loop = loop;
    cl->tls = tls;
    memset(cl->slot, RL_NO_NODE, sizeof(cl->slot));
    uv_timer_init(cl->loop, &cl->timer);
    cl->timer.data = cl;
    refresh(cl); /* the slot map at start, answered before most first requests */
    return cl;
}

static void
timer_closed(uv_handle_t *h)
{
    free(h->data);
}

void
rl_cluster_free(rl_cluster_t *cl)
{
    if (cl == NULL)
        return;
    cl->closing = 1;
    for (int i = 0; i < RL_CLUSTER_MAX_NODES; i++) {
        node_close(&cl->node[i]);
        rl_tls_close(cl->node[i].tls);
    }
    uv_timer_stop(&cl->timer);
    uv_close((uv_handle_t *)&cl->timer, timer_closed);
}
