/* redis_store.c - the Redis counter store of the rate-limiting plugins: one hiredis async
 * connection per instance per worker, driven by the worker's libuv loop (hiredis's libuv adapter),
 * commands pipelined, a timeout of our own (hiredis 0.14's async API has none), and a back-off
 * while Redis is unreachable so that requests fall back to local counts at once instead of waiting
 * on it.
 *
 * Synchronous counting (sync_rate -1): one EVAL per limited period, all in
 * one pipeline, per request: INCR, and EXPIRE when the key is new (Kong's
 * script).  Batched counting (sync_rate > 0): requests only touch shared
 * memory; each worker keeps the increments it owes Redis in a small table
 * and flushes them every sync_rate seconds with INCRBY, reading back the
 * cluster's total into the zone ("t:" + key) for every worker of the node. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/adapters/libuv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "redis_store.h"

#define RL_REDIS_BACKOFF_MS 1000 /* after a failure, Redis is not tried for this long */
#define RL_REDIS_WARN_MS 10000   /* one warning per interval while it fails */
#define RL_FLUSH_BUCKETS 256
#define RL_FLUSH_MAX 65536 /* owed keys kept while Redis is away; then dropped */

static const char incr_script[] = "local v = redis.call('incr', KEYS[1]) "
                                  "if v == 1 then redis.call('expire', KEYS[1], ARGV[1]) end "
                                  "return v";
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
    int64_t counts[RL_REDIS_MAX_KEYS];
    int64_t deadline_ms;
} rl_op_t;

typedef struct rl_owed {
    struct rl_owed *next;
    int64_t delta, ttl_s;
    int in_flight; /* delta sent, reply awaited */
    char key[];
} rl_owed_t;

struct rl_redis {
    const sl_api_t *api;
    const rl_redis_conf_t *rc; /* the plugin's config.redis */
    sl_shm_t *zone;            /* the node's counts */
    double sync_rate;          /* seconds between flushes (batched counting) */
    uv_loop_t *loop;
    redisAsyncContext *ac;
    int connected;
    int64_t down_until_ms;
    int64_t last_warn_ms;
    unsigned long failures; /* since the last warning */
    rl_op_t *ops;           /* in flight, oldest first */
    rl_op_t *ops_tail;
    uv_timer_t timer; /* timeouts */
    int timer_on;
    sl_worker_timer_t *flush_timer;
    rl_owed_t *owed[RL_FLUSH_BUCKETS];
    size_t nowed;
};

static int64_t
now_ms(rl_redis_t *rd)
{
    return rd->api->now_us() / 1000;
}

static void
warn(rl_redis_t *rd, const char *what, const char *detail)
{
    int64_t t = now_ms(rd);

    rd->failures++;
    if (t - rd->last_warn_ms < RL_REDIS_WARN_MS)
        return;
    rd->api->log(NULL, SL_LOG_WARN,
                 "Redis %s:%lld %s: %s (%lu failure(s) in the last interval); counting "
                 "locally meanwhile",
                 rd->rc->host, (long long)rd->rc->port, what, detail ? detail : "", rd->failures);
    rd->last_warn_ms = t;
    rd->failures = 0;
}

static void
op_unlink(rl_redis_t *rd, rl_op_t *op)
{
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

static void
op_finish(rl_op_t *op)
{
    rl_redis_t *rd = op->rd;

    op_unlink(rd, op);
    if (op->done)
        op->done(op->arg, op->failed ? -1 : 0, op->counts);
    free(op);
}

/* Drop the connection: every command in flight fails (hiredis calls their
 * callbacks with a NULL reply), and Redis is left alone for a while. */
static void
drop(rl_redis_t *rd, const char *why, const char *detail)
{
    redisAsyncContext *ac = rd->ac;

    warn(rd, why, detail);
    rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
    if (ac == NULL)
        return;
    rd->ac = NULL;
    rd->connected = 0;
    ac->data = NULL;
    redisAsyncFree(ac);
}

static void
on_timer(uv_timer_t *t)
{
    rl_redis_t *rd = t->data;

    rd->timer_on = 0;
    if (rd->ops && rd->ops->deadline_ms <= now_ms(rd))
        drop(rd, "timed out", "no answer within redis.timeout");
    if (rd->ops) {
        int64_t wait = rd->ops->deadline_ms - now_ms(rd);
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
        warn(rd, "connection failed", ac->errstr);
        rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
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
        warn(rd, "connection lost", ac->errstr);
        rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
    }
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

static int
ensure_connected(rl_redis_t *rd)
{
    const rl_redis_conf_t *rc = rd->rc;
    redisAsyncContext *ac;

    if (rd->ac != NULL)
        return 0;
    if (now_ms(rd) < rd->down_until_ms) {
        rd->failures++;
        return -1;
    }
    ac = redisAsyncConnect(rc->host, (int)rc->port);
    if (ac == NULL)
        return -1;
    if (ac->err) {
        warn(rd, "connection failed", ac->errstr);
        redisAsyncFree(ac);
        rd->down_until_ms = now_ms(rd) + RL_REDIS_BACKOFF_MS;
        return -1;
    }
    ac->data = rd;
    if (redisLibuvAttach(ac, rd->loop) != REDIS_OK) {
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
    return 0;
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
            warn(op->rd, "answered an error", rp->str);
        op->failed = 1;
    } else if (i < RL_REDIS_MAX_KEYS) {
        op->counts[i] = rp->integer;
    }
    if (op->replies == op->n)
        op_finish(op);
}

int
rl_redis_incr(rl_redis_t *rd, const char *const *keys, const int64_t *ttl_s, int n,
              rl_redis_done_fn done, void *arg)
{
    rl_op_t *op;

    if (n <= 0 || n > RL_REDIS_MAX_KEYS || ensure_connected(rd) != 0)
        return -1;
    op = calloc(1, sizeof(*op));
    if (op == NULL)
        return -1;
    op->rd = rd;
    op->done = done;
    op->arg = arg;
    op->n = n;
    op->deadline_ms = now_ms(rd) + rd->rc->timeout;
    op->prev = rd->ops_tail;
    if (rd->ops_tail)
        rd->ops_tail->next = op;
    else
        rd->ops = op;
    rd->ops_tail = op;
    for (int i = 0; i < n; i++) {
        char ttl[24];
        snprintf(ttl, sizeof(ttl), "%lld", (long long)ttl_s[i]);
        const char *argv[] = {"EVAL", incr_script, "1", keys[i], ttl};
        if (redisAsyncCommandArgv(rd->ac, on_incr_reply, op, 5, argv, NULL) != REDIS_OK) {
            /* Commands already queued will be answered (or fail with the
             * connection); count the rest as failed answers. */
            op->failed = 1;
            op->replies += n - i;
            if (op->replies == op->n)
                op_finish(op);
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

static unsigned
hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

typedef struct rl_flush {
    rl_redis_t *rd;
    rl_owed_t *owed;
    int64_t sent;
} rl_flush_t;

static void
zone_set_total(rl_redis_t *rd, const char *key, int64_t total, int64_t ttl_s)
{
    char tk[300];
    double cur = 0;
    int n = snprintf(tk, sizeof(tk), "t:%s", key);
    sl_str_t k = {tk, (size_t)n};

    if (n <= 0 || (size_t)n >= sizeof(tk))
        return;
    /* Numbers can only be added to: move the stored total to the new one
     * (two workers' answers may interleave; either is a recent total). */
    if (rd->api->shm_get(rd->zone, k, NULL, 0, NULL, &cur) != SL_SHM_NUMBER)
        cur = 0;
    rd->api->shm_incr(rd->zone, k, (double)total - cur, (uint64_t)ttl_s * 1000, NULL);
}

static void
zone_add_pending(rl_redis_t *rd, const char *key, int64_t delta, int64_t ttl_s)
{
    char pk[300];
    int n = snprintf(pk, sizeof(pk), "p:%s", key);

    if (n > 0 && (size_t)n < sizeof(pk))
        rd->api->shm_incr(rd->zone, (sl_str_t){pk, (size_t)n}, (double)delta,
                          (uint64_t)ttl_s * 1000, NULL);
}

static void
owed_remove(rl_redis_t *rd, rl_owed_t *o)
{
    rl_owed_t **pp = &rd->owed[hash(o->key) % RL_FLUSH_BUCKETS];

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
        zone_add_pending(rd, o->key, -f->sent, o->ttl_s);
        zone_set_total(rd, o->key, rp->integer, o->ttl_s);
        o->delta -= f->sent;
        if (o->delta == 0)
            owed_remove(rd, o);
    } else if (rp != NULL && rp->type == REDIS_REPLY_ERROR) {
        warn(rd, "answered an error", rp->str);
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
    if (rd->nowed == 0 || ensure_connected(rd) != 0)
        return;
    for (size_t b = 0; b < RL_FLUSH_BUCKETS; b++) {
        for (rl_owed_t *o = rd->owed[b]; o; o = o->next) {
            char d[24], ttl[24];
            rl_flush_t *f;
            if (o->in_flight || o->delta == 0)
                continue;
            f = malloc(sizeof(*f));
            if (f == NULL)
                return;
            f->rd = rd;
            f->owed = o;
            f->sent = o->delta;
            snprintf(d, sizeof(d), "%lld", (long long)o->delta);
            snprintf(ttl, sizeof(ttl), "%lld", (long long)o->ttl_s);
            const char *argv[] = {"EVAL", incrby_script, "1", o->key, d, ttl};
            if (redisAsyncCommandArgv(rd->ac, on_flush_reply, f, 6, argv, NULL) != REDIS_OK) {
                free(f);
                drop(rd, "refused a command", "");
                return;
            }
            o->in_flight = 1;
            sent++;
        }
    }
    if (sent) {
        /* A flush is guarded by the same timeout as requests: an op with no
         * callback, so a silent Redis is dropped and retried. */
        rl_op_t *op = calloc(1, sizeof(*op));
        if (op != NULL) {
            op->rd = rd;
            op->n = 1;
            op->deadline_ms = now_ms(rd) + rd->rc->timeout;
            op->prev = rd->ops_tail;
            if (rd->ops_tail)
                rd->ops_tail->next = op;
            else
                rd->ops = op;
            rd->ops_tail = op;
            if (redisAsyncCommand(rd->ac, on_incr_reply, op, "PING") != REDIS_OK) {
                op_unlink(rd, op);
                free(op);
            }
            arm_timer(rd);
        }
    }
}

int
rl_redis_add(rl_redis_t *rd, const char *key, int64_t ttl_s, int64_t delta)
{
    unsigned b = hash(key) % RL_FLUSH_BUCKETS;
    rl_owed_t *o;

    zone_add_pending(rd, key, delta, ttl_s);
    for (o = rd->owed[b]; o; o = o->next)
        if (strcmp(o->key, key) == 0)
            break;
    if (o == NULL) {
        size_t kl = strlen(key);
        if (rd->nowed >= RL_FLUSH_MAX) {
            warn(rd, "is behind", "too many counters owed; dropping");
            zone_add_pending(rd, key, -delta, ttl_s);
            return -1;
        }
        o = calloc(1, sizeof(*o) + kl + 1);
        if (o == NULL)
            return -1;
        memcpy(o->key, key, kl + 1);
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
    uv_timer_init(loop, &rd->timer);
    rd->timer.data = rd;
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
    if (rd->ac) {
        redisAsyncContext *ac = rd->ac;
        rd->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac); /* fails what is in flight: callbacks see NULL */
    }
    while (rd->ops) {
        rl_op_t *op = rd->ops;
        op->done = NULL;
        op_finish(op);
    }
    for (size_t b = 0; b < RL_FLUSH_BUCKETS; b++) {
        while (rd->owed[b]) {
            rl_owed_t *o = rd->owed[b];
            rd->owed[b] = o->next;
            free(o);
        }
    }
    uv_close((uv_handle_t *)&rd->timer, timer_closed);
}
