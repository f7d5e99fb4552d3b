/* redis_cluster.h - Redis Cluster routing for the Redis counter store
 * (redis_store.c): a slot map learnt with CLUSTER SLOTS, one hiredis async
 * connection per master on the worker's libuv loop, MOVED and ASK followed.
 * Internal to plugins/shared/. */

#ifndef SL_REDIS_CLUSTER_H
#define SL_REDIS_CLUSTER_H

#include <stddef.h>

#include <hiredis/async.h>
#include <openssl/ssl.h>

#include "redis_store.h"

typedef struct rl_cluster rl_cluster_t;

/* Routing for rc->cluster_nodes on loop; rc must outlive it, and tls (the
 * TLS context of redis.ssl, else NULL) too.  NULL when out of memory
 * (logged).  Freed with rl_cluster_free. */
rl_cluster_t *rl_cluster_new(const sl_api_t *api, const rl_redis_conf_t *rc, void *loop,
                             SSL_CTX *tls);
/* Closes every connection: commands in flight are answered with a NULL
 * reply first (their callbacks run inside this call). */
void rl_cluster_free(rl_cluster_t *cl);

/* Send argv (argc <= 8 strings) to the master owning key's slot.  An
 * answer MOVED (the slot map is then updated, and asked for again) or ASK
 * is followed, up to cluster_max_redirections times; cb(ac, reply, priv)
 * is then called exactly once on the loop, reply NULL when the node was
 * unreachable, closed or silent for redis.timeout.  Returns -1, and never
 * calls cb, when there is no route now: the slot map is not known yet (it
 * is being asked for), the slot's master is unreachable (backing off), or
 * out of memory.  Failures are logged once per interval. */
int rl_cluster_send(rl_cluster_t *cl, const char *key, int argc, const char **argv,
                    redisCallbackFn *cb, void *priv);
/* rl_cluster_send with a command hiredis formatted already (len bytes at
 * cmd, copied: the caller's text may change after the call). */
int rl_cluster_send_formatted(rl_cluster_t *cl, const char *key, const char *cmd, size_t len,
                              redisCallbackFn *cb, void *priv);

#endif
