/* redis_cmdcache.c - formatted INCR-script commands kept per key (see
 * redis_cmdcache.h).  Formatting is hiredis's (redisFormatCommandArgv);
 * this file only decides when to reuse its text: same key, same ttl. */

#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "sluice/plugin.h"

#include "decimal.h"
#include "key_hash.h"
#include "redis_cmdcache.h"

#define RL_CMDCACHE_SLOTS 64

const char rl_incr_script[] = "local v = redis.call('incr', KEYS[1]) "
                              "if v == 1 then redis.call('expire', KEYS[1], ARGV[1]) end "
                              "return v";

typedef struct rl_cmdslot {
    char *cmd; /* hiredis's text (redisFreeCommand); NULL: empty */
    int len;
    int64_t ttl_s;
    size_t klen;
    char key[SL_SHM_KEY_MAX];
} rl_cmdslot_t;

struct rl_cmdcache {
    rl_cmdslot_t slot[RL_CMDCACHE_SLOTS];
};

rl_cmdcache_t *
rl_cmdcache_new(void)
{
    return calloc(1, sizeof(rl_cmdcache_t));
}

void
rl_cmdcache_free(rl_cmdcache_t *cc)
{
    if (cc == NULL)
        return;
    for (size_t i = 0; i < RL_CMDCACHE_SLOTS; i++)
        redisFreeCommand(cc->slot[i].cmd);
    free(cc);
}

int
rl_cmdcache_incr(rl_cmdcache_t *cc, const char *key, size_t klen, int64_t ttl_s, const char **out)
{
    rl_cmdslot_t *s;
    char ttl[SL_DEC_MAX], *cmd;
    int len;

    if (klen == 0 || klen > SL_SHM_KEY_MAX)
        return -1;
    s = &cc->slot[rl_key_hash(key, klen) % RL_CMDCACHE_SLOTS];
    if (s->cmd != NULL && s->klen == klen && s->ttl_s == ttl_s && memcmp(s->key, key, klen) == 0) {
        *out = s->cmd;
        return s->len;
    }
    const char *argv[] = {"EVAL", rl_incr_script, "1", key, ttl};
    const size_t argvlen[] = {4, sizeof(rl_incr_script) - 1, 1, klen, sl_dec(ttl, ttl_s)};
    len = redisFormatCommandArgv(&cmd, 5, argv, argvlen);
    if (len < 0)
        return -1;
    redisFreeCommand(s->cmd);
    s->cmd = cmd;
    s->len = len;
    s->ttl_s = ttl_s;
    s->klen = klen;
    memcpy(s->key, key, klen);
    *out = cmd;
    return len;
}
