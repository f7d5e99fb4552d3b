/* rl.h - the rate-limiting plugin (Kong's request quotas): configuration,
 * windows, counter stores. */

#ifndef RL_H
#define RL_H

#include <stdint.h>
#include <string.h>

#include "sluice/plugin.h"

#include "../shared/decimal.h"
#include "../shared/identifier.h"
#include "../shared/redis_store.h"

/* Kong's periods, shortest first (the order its checks and headers use). */
typedef enum rl_period {
    RL_SECOND = 0,
    RL_MINUTE,
    RL_HOUR,
    RL_DAY,
    RL_MONTH,
    RL_YEAR,
    RL_NPERIODS
} rl_period_t;

_Static_assert(RL_NPERIODS <= RL_REDIS_MAX_KEYS, "one Redis round trip per request");

typedef enum rl_policy { RL_POLICY_LOCAL = 0, RL_POLICY_REDIS } rl_policy_t;

/* The block the schema fills (rl_conf.c), then what parse derives. */
typedef struct rl_schema_block {
    double limit[RL_NPERIODS]; /* 0 = period not limited */
    char *limit_by;
    char *header_name;
    char *path;
    char *policy;
    int fault_tolerant;
    int hide_client_headers;
    rl_redis_conf_t redis;
    double error_code;
    char *error_message;
    double sync_rate;
    /* Kong's deprecated flat forms of redis.* */
    char *redis_host;
    int64_t redis_port;
    char *redis_password;
    char *redis_username;
    int64_t redis_timeout;
    int64_t redis_database;
    int redis_ssl;
    int redis_ssl_verify;
    char *redis_server_name;
} rl_schema_block_t;

/* A counter key: ratelimit:<route>:<service>:<identifier>:<start>:<period>
 * (Kong's), at most RL_KEY_MAX bytes so that the batched forms ("t:" and
 * "p:" before it) fit in a shared-memory key too. */
#define RL_KEY_MAX (SL_SHM_KEY_MAX - 2)
#define RL_KEY_TAIL_MAX (1 + SL_DEC_MAX + 1 + 6) /* ":<start ms>:<period>" */

/* What a worker keeps between requests to build keys without printf
 * (rate_limiting.c): the key's head "ratelimit:<route>:<service>:" for
 * the plugin's scope, and each limited period's current window with its
 * tail, rebuilt when the window moves on. */
typedef struct rl_keys {
    int head_ok;
    sl_str_t route_id, service_id; /* the scope the head was built for */
    char head[RL_KEY_MAX];
    size_t head_len;
    int64_t start_ms[RL_NPERIODS], end_ms[RL_NPERIODS]; /* [start, end) */
    char tail[RL_NPERIODS][RL_KEY_TAIL_MAX];
    size_t tail_len[RL_NPERIODS];
} rl_keys_t;

typedef struct rl_conf {
    rl_schema_block_t *s; /* as parsed (conf_schema_parse's block) */
    const sl_api_t *api;  /* for conf_schema_free */
    sl_quota_by_t limit_by;
    rl_policy_t policy;
    int error_code;
    int nperiods;                            /* limited periods, shortest first */
    rl_period_t period[RL_NPERIODS];         /* [0, nperiods) */
    int64_t limit[RL_NPERIODS];              /* per rl_period_t (whole requests) */
    char limit_txt[RL_NPERIODS][SL_DEC_MAX]; /* its header value */
    size_t limit_len[RL_NPERIODS];
    rl_keys_t keys;      /* per worker: written by the access phase */
    sl_shm_t *zone;      /* counters: local policy, and Redis's local share */
    rl_redis_t *redis;   /* per worker (init_worker), redis policy only */
    char redis_key[320]; /* "host:port;db": Kong's pool key */
} rl_conf_t;

extern const sl_schema_t rl_schema;
int rl_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out);
void rl_conf_free(void *conf);

/* --- windows (rl_window.c) --- */

extern const char *const rl_period_name[RL_NPERIODS];   /* "second" ... */
extern const char *const rl_period_header[RL_NPERIODS]; /* "Second" ... */
extern const int64_t rl_period_seconds[RL_NPERIODS];    /* Kong's EXPIRATION */

/* Start of the UTC calendar window holding now_ms, in ms since the epoch
 * (Kong's timestamp.get_timestamps). */
int64_t rl_window_start(rl_period_t p, int64_t now_ms);

/* The first millisecond after the window that starts at start_ms. */
int64_t rl_window_end(rl_period_t p, int64_t start_ms);

/* The key's head "ratelimit:<route>:<service>:" (the empty UUID for a
 * missing id) into out[0..cap): its length, or 0 when it does not fit. */
size_t rl_key_head(char *out, size_t cap, sl_str_t route_id, sl_str_t service_id);

/* The key's tail ":<window start ms>:<period>": its length (no NUL). */
size_t rl_key_tail(char out[RL_KEY_TAIL_MAX], int64_t window_start_ms, rl_period_t p);

/* The whole key, NUL-terminated: its length, or -1 when it would not fit
 * in cap (never truncated). */
int rl_key(char *buf, size_t cap, sl_str_t route_id, sl_str_t service_id, sl_str_t identifier,
           int64_t window_start_ms, rl_period_t p);

static inline sl_str_t
rl_str(const char *s)
{
    sl_str_t r = {s, s ? strlen(s) : 0};
    return r;
}

#define RL_EMPTY_UUID "00000000-0000-0000-0000-000000000000"

#endif
