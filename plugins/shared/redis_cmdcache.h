/* redis_cmdcache.h - the synchronous increment (Kong's INCR script on one
 * key) as hiredis formats it, kept per key: formatted with
 * redisFormatCommandArgv the first time a key is counted, then copied as
 * is by the next requests on that key (a client's key is the same for a
 * whole window).  A fixed number of slots chosen by the key's hash bounds
 * the memory; a key pushed out of its slot is formatted again. */

#ifndef SL_REDIS_CMDCACHE_H
#define SL_REDIS_CMDCACHE_H

#include <stddef.h>
#include <stdint.h>

/* Kong's script: INCR, and EXPIRE with ARGV[1] when the key is new. */
extern const char rl_incr_script[];

typedef struct rl_cmdcache rl_cmdcache_t;

/* NULL when out of memory.  Freed with rl_cmdcache_free (NULL: nothing). */
rl_cmdcache_t *rl_cmdcache_new(void);
void rl_cmdcache_free(rl_cmdcache_t *cc);

/* EVAL rl_incr_script 1 key ttl_s, formatted: *out points at the text,
 * owned by the cache and valid until the next call.  Returns its length,
 * or -1 (the key longer than SL_SHM_KEY_MAX, or out of memory). */
int rl_cmdcache_incr(rl_cmdcache_t *cc, const char *key, size_t klen, int64_t ttl_s,
                     const char **out);

#endif
