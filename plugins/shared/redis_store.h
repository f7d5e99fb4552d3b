/* redis_store.h - a Redis counter store for bundled plugins (rate-limiting,
 * ai-rate-limiting-advanced), written against the public ABI only: one
 * hiredis async connection per plugin instance per worker on the worker's
 * libuv loop, pipelined increments with a timeout and a back-off, and
 * batched increments flushed every sync_rate seconds whose cluster totals
 * are read back into a shared-memory zone ("t:" + key; the node's pending
 * share under "p:" + key). */

#ifndef SL_REDIS_STORE_H
#define SL_REDIS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "sluice/plugin.h"

#define RL_REDIS_MAX_KEYS 6 /* increments in one round trip */

/* config.redis (Kong's shared Redis schema). */
typedef struct rl_redis_conf {
    char *host;
    int64_t port;
    int64_t timeout; /* ms: connect, send and read */
    char *username;
    char *password;
    int64_t database;
    int ssl;
    int ssl_verify;
    char *server_name;
    /* Redis Sentinel (Kong EE's redis record, RL_REDIS_SENTINEL_FIELDS;
     * rate-limiting's open-source schema has none): the master's address
     * is asked of the sentinels (SENTINEL get-master-addr-by-name) instead
     * of host and port, and asked again when the connection to it fails. */
    char *sentinel_master;          /* NULL: host and port are the Redis */
    char *sentinel_role;            /* master or any (both: the master) */
    sl_conf_array_t sentinel_nodes; /* rl_sentinel_node_t */
    char *sentinel_username;
    char *sentinel_password;
    /* Redis Cluster (Kong EE's cluster_nodes, cluster_max_redirections,
     * RL_REDIS_CLUSTER_FIELDS): counts go to the master owning each key's
     * slot, learnt with CLUSTER SLOTS from these nodes (redis_cluster.c);
     * host and port are then unused. */
    sl_conf_array_t cluster_nodes; /* rl_cluster_node_t; empty: no cluster */
    int64_t cluster_max_redirections;
    /* Kong EE's keepalive_pool_size + keepalive_backlog when the backlog is
     * set (ai-rate-limiting-advanced; rate-limiting's schema has neither):
     * at most this many batches of commands in flight per worker, a
     * request beyond it counting locally at once, as Kong's connect fails
     * when its pool and backlog are full.  0: no bound. */
    int64_t max_in_flight;
} rl_redis_conf_t;

/* An idle connection (nothing sent, nothing awaited) is closed after this
 * long, as Kong's set_keepalive(10000) does; the next command reopens it. */
#define RL_REDIS_IDLE_MS 10000

typedef struct rl_cluster_node {
    char *ip; /* Kong's name for it: a host name is accepted too */
    int64_t port;
} rl_cluster_node_t;

/* cluster_nodes' element (a record of ip, port). */
extern const sl_field_t rl_cluster_node_elem;

/* The Cluster fields of rl_redis_conf_t for a plugin's redis record, as
 * RL_REDIS_FIELDS (Kong EE's defaults). */
#define RL_REDIS_CLUSTER_FIELDS(base)                                                              \
    {.name = "cluster_nodes",                                                                      \
     .type = SL_FIELD_ARRAY,                                                                       \
     .offset = (base) + offsetof(rl_redis_conf_t, cluster_nodes),                                  \
     .elements = &rl_cluster_node_elem},                                                           \
    {                                                                                              \
        .name = "cluster_max_redirections", .type = SL_FIELD_INTEGER, .flags = SL_FIELD_RANGE,     \
        .offset = (base) + offsetof(rl_redis_conf_t, cluster_max_redirections), .def = "5",        \
        .min = 0, .max = 100                                                                       \
    }

/* config_parse: the Cluster fields' rules (each node an address; not with
 * Sentinel; database 0, the only one a cluster has); errors reported under
 * `prefix`.  0 or -1. */
int rl_redis_check_cluster(const sl_api_t *api, sl_conf_ctx_t *cx, const rl_redis_conf_t *rc,
                           const char *prefix);

typedef struct rl_sentinel_node {
    char *host;
    int64_t port;
} rl_sentinel_node_t;

/* sentinel_nodes' element (a record of host, port). */
extern const sl_field_t rl_sentinel_node_elem;

/* The Sentinel fields of rl_redis_conf_t for a plugin's redis record, as
 * RL_REDIS_FIELDS.  sentinel_master, sentinel_role and sentinel_nodes go
 * together (rl_redis_check_sentinel). */
#define RL_REDIS_SENTINEL_FIELDS(base)                                                             \
    {.name = "sentinel_master",                                                                    \
     .type = SL_FIELD_STRING,                                                                      \
     .offset = (base) + offsetof(rl_redis_conf_t, sentinel_master)},                               \
        {.name = "sentinel_role",                                                                  \
         .type = SL_FIELD_STRING,                                                                  \
         .offset = (base) + offsetof(rl_redis_conf_t, sentinel_role),                              \
         .one_of = rl_sentinel_roles},                                                             \
        {.name = "sentinel_nodes",                                                                 \
         .type = SL_FIELD_ARRAY,                                                                   \
         .offset = (base) + offsetof(rl_redis_conf_t, sentinel_nodes),                             \
         .elements = &rl_sentinel_node_elem},                                                      \
        {.name = "sentinel_username",                                                              \
         .type = SL_FIELD_STRING,                                                                  \
         .offset = (base) + offsetof(rl_redis_conf_t, sentinel_username)},                         \
    {                                                                                              \
        .name = "sentinel_password", .type = SL_FIELD_STRING,                                      \
        .offset = (base) + offsetof(rl_redis_conf_t, sentinel_password)                            \
    }

extern const char *const rl_sentinel_roles[];

/* config_parse: the Sentinel fields' rules (the three go together; a
 * replica cannot count); errors reported under `prefix` ("redis").  0 or
 * -1. */
int rl_redis_check_sentinel(const sl_api_t *api, sl_conf_ctx_t *cx, const rl_redis_conf_t *rc,
                            const char *prefix);

/* The schema fields of rl_redis_conf_t (Kong's shared Redis record), for a
 * plugin's field table: `base` is where the rl_redis_conf_t sits in the
 * block the table fills, `ssl_verify_def` the plugin's default ("false" in
 * rate-limiting, "true" in Kong EE's plugins).  One list for every plugin
 * that counts in Redis. */
#define RL_REDIS_FIELDS(base, ssl_verify_def)                                                      \
    {.name = "host", .type = SL_FIELD_STRING, .offset = (base) + offsetof(rl_redis_conf_t, host)}, \
        {.name = "port",                                                                           \
         .type = SL_FIELD_INTEGER,                                                                 \
         .flags = SL_FIELD_RANGE,                                                                  \
         .offset = (base) + offsetof(rl_redis_conf_t, port),                                       \
         .def = "6379",                                                                            \
         .min = 0,                                                                                 \
         .max = 65535},                                                                            \
        {.name = "timeout",                                                                        \
         .type = SL_FIELD_INTEGER,                                                                 \
         .flags = SL_FIELD_RANGE,                                                                  \
         .offset = (base) + offsetof(rl_redis_conf_t, timeout),                                    \
         .def = "2000",                                                                            \
         .min = 0,                                                                                 \
         .max = 2147483646},                                                                       \
        {.name = "username",                                                                       \
         .type = SL_FIELD_STRING,                                                                  \
         .offset = (base) + offsetof(rl_redis_conf_t, username)},                                  \
        {.name = "password",                                                                       \
         .type = SL_FIELD_STRING,                                                                  \
         .offset = (base) + offsetof(rl_redis_conf_t, password)},                                  \
        {.name = "database",                                                                       \
         .type = SL_FIELD_INTEGER,                                                                 \
         .offset = (base) + offsetof(rl_redis_conf_t, database),                                   \
         .def = "0"},                                                                              \
        {.name = "ssl",                                                                            \
         .type = SL_FIELD_BOOLEAN,                                                                 \
         .offset = (base) + offsetof(rl_redis_conf_t, ssl),                                        \
         .def = "false"},                                                                          \
        {.name = "ssl_verify",                                                                     \
         .type = SL_FIELD_BOOLEAN,                                                                 \
         .offset = (base) + offsetof(rl_redis_conf_t, ssl_verify),                                 \
         .def = (ssl_verify_def)},                                                                 \
    {                                                                                              \
        .name = "server_name", .type = SL_FIELD_STRING,                                            \
        .offset = (base) + offsetof(rl_redis_conf_t, server_name)                                  \
    }

typedef struct rl_redis rl_redis_t;

/* One increment of every limited period for one request, answered with the
 * counts after it (or err < 0 when Redis failed). */
typedef void (*rl_redis_done_fn)(void *arg, int err, const int64_t *counts);

/* One connection per plugin instance per worker (init_worker); rc and zone
 * must outlive it.  NULL outside a worker, or (logged) when out of memory:
 * the plugin then counts locally. */
rl_redis_t *rl_redis_new(const sl_api_t *api, const rl_redis_conf_t *rc, sl_shm_t *zone,
                         double sync_rate);
void rl_redis_free(rl_redis_t *rd);
/* INCR each key (EXPIRE with its ttl when new) in one pipeline; done() is
 * called exactly once, on the worker loop, unless the call returns -1
 * (Redis unusable now: fall back at once). n <= RL_REDIS_MAX_KEYS. */
int rl_redis_incr(rl_redis_t *rd, const char *const *keys, const int64_t *ttl_s, int n,
                  rl_redis_done_fn done, void *arg);
/* Forget a pending increment's callback (the request went away). */
void rl_redis_forget(rl_redis_t *rd, void *arg);
/* sync_rate > 0: add delta to key in Redis in the background (batched and
 * flushed every sync_rate seconds), and read the shared total back into
 * the zone under "r:" + key. */
int rl_redis_add(rl_redis_t *rd, const char *key, int64_t ttl_s, int64_t delta);

#endif
