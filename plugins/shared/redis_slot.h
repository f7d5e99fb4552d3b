/* redis_slot.h - Redis Cluster's key slot (CRC16 of the key, or of its
 * {hash tag}, modulo 16384) and the parsing of its MOVED / ASK redirections;
 * pure functions, no I/O. */

#ifndef SL_REDIS_SLOT_H
#define SL_REDIS_SLOT_H

#include <stddef.h>

#define RL_CLUSTER_SLOTS 16384

/* The slot of a key of len bytes, as Redis Cluster computes it: when the key
 * holds a non-empty "{...}" the part between the first '{' and the next '}'
 * is hashed instead. */
unsigned rl_key_slot(const char *key, size_t len);

typedef enum rl_redirect_kind {
    RL_REDIRECT_NONE = 0, /* not a redirection */
    RL_REDIRECT_MOVED,    /* the slot lives there now: remember it */
    RL_REDIRECT_ASK,      /* this key is being migrated there: ask once, with ASKING */
} rl_redirect_kind_t;

typedef struct rl_redirect {
    rl_redirect_kind_t kind;
    unsigned slot;
    char host[64];
    int port;
} rl_redirect_t;

/* Parse an error reply's text ("MOVED 3999 127.0.0.1:6381", "ASK ...").
 * Returns the kind; RL_REDIRECT_NONE for any other error or a malformed
 * one (bad slot, port, or an address too long). */
rl_redirect_kind_t rl_redirect_parse(const char *err, rl_redirect_t *out);

#endif
