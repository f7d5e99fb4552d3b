/* airl.h - ai-rate-limiting-advanced (Kong Enterprise's schema): token and
 * cost quotas per LLM provider, charged with ai-proxy's usage when a
 * response completes and enforced on the next request. */

#ifndef AIRL_H
#define AIRL_H

#include <stdint.h>

#include "../shared/identifier.h"
#include "../shared/redis_store.h" /* shared with rate-limiting */

/* What a limit counts (tokens_count_strategy), in ai.proxy.usage's names. */
typedef enum airl_count { AIRL_TOTAL = 0, AIRL_PROMPT, AIRL_COMPLETION, AIRL_COST } airl_count_t;

/* Kong 3.14's policies[].match[].type (consumer_group is refused). */
typedef enum airl_match_type {
    AIRL_MATCH_CONSUMER = 0,
    AIRL_MATCH_CONSUMER_GROUP,
    AIRL_MATCH_HEADER,
    AIRL_MATCH_IP,
    AIRL_MATCH_MODEL,
    AIRL_MATCH_PATH,
    AIRL_MATCH_PROVIDER
} airl_match_type_t;

/* policies[].match[]: every entry of a policy must hold (AND). */
typedef struct airl_match {
    char *type;
    char *key;              /* consumer: id | username | custom_id; header: its name */
    sl_conf_array_t values; /* char *; none: any value */
    int partition_by;       /* one counter per value seen */
    /* derived when parsing */
    airl_match_type_t kind;
} airl_match_t;

/* policies[].limits[] */
typedef struct airl_policy_limit {
    double limit;
    int64_t window_size;
    char *tokens_count_strategy;
    airl_count_t count; /* derived */
} airl_policy_limit_t;

typedef struct airl_policy {
    char *id;               /* a stored ai_rate_limiting_policies entity: refused */
    sl_conf_array_t match;  /* airl_match_t */
    sl_conf_array_t limits; /* airl_policy_limit_t */
    char *window_type;      /* NULL: config.window_type */
    int sliding;            /* derived */
} airl_policy_t;

typedef struct airl_provider {
    char *name;
    sl_conf_array_t limit;       /* double */
    sl_conf_array_t window_size; /* double, seconds */
} airl_provider_t;

/* config.redis: the fields sluice uses, then Kong EE's others (JSON text,
 * NULL when unset), each checked to be unset. */
#define AIRL_REDIS_EXTRA 4
typedef struct airl_redis {
    rl_redis_conf_t base;
    /* Kong EE's split timeouts (ms; 0 unset): sluice's one timeout is the
     * longest of those set, else base.timeout */
    int64_t connect_timeout, read_timeout, send_timeout;
    char *extra[AIRL_REDIS_EXTRA];
} airl_redis_t;

typedef struct airl_block {
    sl_conf_array_t llm_providers; /* airl_provider_t */
    sl_conf_array_t policies;      /* airl_policy_t (Kong 3.14) */
    char *strategy;
    double sync_rate;
    int sync_rate_set;
    char *window_type;
    char *tokens_count_strategy;
    char *identifier;
    char *header_name;
    char *path;
    double error_code;
    char *error_message;
    int error_hide_providers;
    int hide_client_headers;
    double retry_after_jitter_max;
    int disable_penalty;
    char *dictionary_name;
    char *namespace_;
    int decrease_by_fractions_in_redis;
    char *request_prompt_count_function;
    char *custom_cost_count_function;
    char *llm_format;
    airl_redis_t redis;
    char *sync_rate_json; /* the JSON number, NULL when unset */
} airl_block_t;

/* What a request's ai-proxy (or ai-proxy-advanced) instance says, cached
 * per worker by its config text's address (stable for the configuration
 * generation). */
typedef struct airl_route_info {
    const char *json; /* chain_plugin_config()'s pointer */
    char provider[32];
    char model[128];   /* model.name, "" when the request names it */
    int mixed;         /* ai-proxy-advanced targets of several providers */
    int anthropic;     /* llm_format: anthropic -> Anthropic-shaped refusals */
    double input_cost; /* ai-proxy's model.options.input_cost when it prices the
                        * answer (output_cost set too), else -1 */
} airl_route_info_t;

#define AIRL_ROUTE_CACHE 16

typedef struct airl_conf {
    airl_block_t *s;
    const sl_api_t *api;
    int error_code;
    int sliding;
    int strategy_redis; /* else local */
    airl_count_t count;
    int policies;             /* the policies[] form (else llm_providers[]) */
    int need_model;           /* a policy matches on the model */
    sl_quota_by_t identifier; /* consumer-group is refused when parsing */
    sl_shm_t *zone;
    rl_redis_t *redis;                          /* per worker */
    airl_route_info_t routes[AIRL_ROUTE_CACHE]; /* per worker */
    unsigned nroutes;
} airl_conf_t;

int airl_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len,
                    void **out);
void airl_conf_free(void *conf);

#endif
