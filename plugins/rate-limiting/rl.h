/* rl.h - the rate-limiting plugin (Kong's request quotas): configuration,
 * windows, counter stores. */

#ifndef RL_H
#define RL_H

#include <stdint.h>
#include <string.h>

#include "sluice/plugin.h"

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

typedef struct rl_conf {
    rl_schema_block_t *s; /* as parsed (conf_schema_parse's block) */
    const sl_api_t *api;  /* for conf_schema_free */
    sl_quota_by_t limit_by;
    rl_policy_t policy;
    int error_code;
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

/* Kong's counter key: ratelimit:<route>:<service>:<identifier>:<start>:<period>.
 * Returns the length written (truncated keys are refused: -1). */
int rl_key(char *buf, size_t cap, sl_str_t route_id, sl_str_t service_id, sl_str_t identifier,
           int64_t window_start_ms, rl_period_t p);

/* v in decimal (no NUL); returns the length. */
size_t rl_int(char out[24], int64_t v);

static inline sl_str_t
rl_str(const char *s)
{
    sl_str_t r = {s, s ? strlen(s) : 0};
    return r;
}

#define RL_EMPTY_UUID "00000000-0000-0000-0000-000000000000"

#endif
