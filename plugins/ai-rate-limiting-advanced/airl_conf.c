/* airl_conf.c - ai-rate-limiting-advanced's config: Kong 3.14's public
 * schema (AiRateLimitingAdvanced.json) as a field table, with both the
 * llm_providers[] form and 3.14's policies[] form; what sluice cannot honour
 * (the cluster strategy, Lua count functions, Redis cloud authentication,
 * consumer groups, stored policy entities) is refused with a message, never
 * silently ignored. */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/kong_typedefs.h"
#include "airl.h"

#define B(f) offsetof(airl_block_t, f)
#define P(f) offsetof(airl_provider_t, f)
#define X(i) offsetof(airl_redis_t, extra) + (i) * sizeof(char *)

/* Kong's enum plus every provider ai-proxy speaks (dashscope first: the
 * how-to's users need it and Kong's enum lacks it). */
static const char *const providers[] = {
    "dashscope", "anthropic", "azure",         "bedrock",    "cohere", "gemini",   "huggingface",
    "llama2",    "mistral",   "openai",        "deepseek",   "xai",    "cerebras", "databricks",
    "ollama",    "vllm",      "requestPrompt", "customCost", NULL};
static const char *const strategies[] = {"local", "cluster", "redis", NULL};
static const char *const window_types[] = {"sliding", "fixed", NULL};
static const char *const count_strategies[] = {"total_tokens", "prompt_tokens", "completion_tokens",
                                               "cost", NULL};
static const char *const identifiers[] = {"consumer", "credential",     "ip", "service", "header",
                                          "path",     "consumer-group", NULL};
static const char *const formats[] = {"openai", "anthropic",   "bedrock", "cohere",
                                      "gemini", "huggingface", NULL};

static const char *const match_types[] = {"consumer", "consumer_group", "header",   "ip",
                                          "model",    "path",           "provider", NULL};
static const char *const consumer_keys[] = {"id", "username", "custom_id", NULL};

static const sl_field_t number = {.type = SL_FIELD_NUMBER};
static const sl_field_t string = {.type = SL_FIELD_STRING};

#define M(f) offsetof(airl_match_t, f)
#define L(f) offsetof(airl_policy_limit_t, f)
#define Q(f) offsetof(airl_policy_t, f)

static const sl_field_t match_fields[] = {
    {.name = "type",
     .type = SL_FIELD_STRING,
     .flags = SL_FIELD_REQUIRED,
     .offset = M(type),
     .one_of = match_types},
    {.name = "key", .type = SL_FIELD_STRING, .offset = M(key), .check = sl_kong_header_name},
    {.name = "values", .type = SL_FIELD_ARRAY, .offset = M(values), .elements = &string},
    {.name = "partition_by", .type = SL_FIELD_BOOLEAN, .offset = M(partition_by), .def = "false"},
    {.type = SL_FIELD_END},
};
static const sl_schema_t match_schema = {.size = sizeof(airl_match_t), .fields = match_fields};
static const sl_field_t match_elem = {.type = SL_FIELD_RECORD, .record = &match_schema};

static const sl_field_t policy_limit_fields[] = {
    {.name = "limit",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = L(limit),
     .min = 0,
     .max = 1e18},
    {.name = "window_size",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_REQUIRED | SL_FIELD_RANGE,
     .offset = L(window_size),
     .min = 1,
     .max = 31536000},
    {.name = "tokens_count_strategy",
     .type = SL_FIELD_STRING,
     .offset = L(tokens_count_strategy),
     .def = "\"total_tokens\"",
     .one_of = count_strategies},
    {.type = SL_FIELD_END},
};
static const sl_schema_t policy_limit_schema = {.size = sizeof(airl_policy_limit_t),
                                                .fields = policy_limit_fields};
static const sl_field_t policy_limit_elem = {.type = SL_FIELD_RECORD,
                                             .record = &policy_limit_schema};

static const sl_field_t policy_fields[] = {
    {.name = "id", .type = SL_FIELD_STRING, .offset = Q(id)},
    {.name = "match", .type = SL_FIELD_ARRAY, .offset = Q(match), .elements = &match_elem},
    {.name = "limits", .type = SL_FIELD_ARRAY, .offset = Q(limits), .elements = &policy_limit_elem},
    {.name = "window_type",
     .type = SL_FIELD_STRING,
     .offset = Q(window_type),
     .one_of = window_types},
    {.type = SL_FIELD_END},
};
static const sl_schema_t policy_schema = {.size = sizeof(airl_policy_t), .fields = policy_fields};
static const sl_field_t policy_elem = {.type = SL_FIELD_RECORD, .record = &policy_schema};

static const sl_field_t provider_fields[] = {
    {.name = "name",
     .type = SL_FIELD_STRING,
     .flags = SL_FIELD_REQUIRED,
     .offset = P(name),
     .one_of = providers},
    {.name = "limit",
     .type = SL_FIELD_ARRAY,
     .flags = SL_FIELD_REQUIRED,
     .offset = P(limit),
     .elements = &number},
    {.name = "window_size",
     .type = SL_FIELD_ARRAY,
     .flags = SL_FIELD_REQUIRED,
     .offset = P(window_size),
     .elements = &number},
    {.type = SL_FIELD_END},
};
static const sl_schema_t provider_schema = {.size = sizeof(airl_provider_t),
                                            .fields = provider_fields};
static const sl_field_t provider_elem = {.type = SL_FIELD_RECORD, .record = &provider_schema};

/* Kong EE's connect/read/send timeouts, ms */
#define TIMEOUT(f)                                                                                 \
    {                                                                                              \
        .name = #f, .type = SL_FIELD_INTEGER, .flags = SL_FIELD_RANGE,                             \
        .offset = offsetof(airl_redis_t, f), .min = 0, .max = 2147483646                           \
    }

/* config.redis: Kong EE's shared Redis record, Sentinel and Cluster
 * included.  The cloud-auth member is accepted when unset (decK dumps list
 * it as null or {}) and refused when set. */
static const sl_field_t redis_fields[] = {
    RL_REDIS_FIELDS(offsetof(airl_redis_t, base), "true"),
    TIMEOUT(connect_timeout),
    TIMEOUT(read_timeout),
    TIMEOUT(send_timeout),
    {.name = "keepalive_pool_size", .type = SL_FIELD_JSON, .offset = X(0)},
    {.name = "keepalive_backlog", .type = SL_FIELD_JSON, .offset = X(1)},
    {.name = "connection_is_proxied", .type = SL_FIELD_JSON, .offset = X(2)},
    {.name = "cloud_authentication", .type = SL_FIELD_JSON, .offset = X(3)},
    RL_REDIS_SENTINEL_FIELDS(offsetof(airl_redis_t, base)),
    RL_REDIS_CLUSTER_FIELDS(offsetof(airl_redis_t, base)),
    {.type = SL_FIELD_END},
};
static const char *const redis_extra_names[AIRL_REDIS_EXTRA] = {
    "keepalive_pool_size", "keepalive_backlog", "connection_is_proxied", "cloud_authentication"};
/* The keepalive pair bounds the batches in flight (keepalive());
 * connection_is_proxied changes nothing here; the last is an
 * authentication sluice does not speak. */
#define AIRL_REDIS_TUNING 3

static const sl_schema_t redis_schema = {.size = sizeof(airl_redis_t), .fields = redis_fields};

static const sl_field_t fields[] = {
    {.name = "llm_providers",
     .type = SL_FIELD_ARRAY,
     .offset = B(llm_providers),
     .elements = &provider_elem},
    {.name = "policies", .type = SL_FIELD_ARRAY, .offset = B(policies), .elements = &policy_elem},
    {.name = "strategy",
     .type = SL_FIELD_STRING,
     .offset = B(strategy),
     .def = "\"local\"",
     .one_of = strategies},
    {.name = "sync_rate", .type = SL_FIELD_JSON, .offset = B(sync_rate_json)},
    {.name = "window_type",
     .type = SL_FIELD_STRING,
     .offset = B(window_type),
     .def = "\"sliding\"",
     .one_of = window_types},
    {.name = "tokens_count_strategy",
     .type = SL_FIELD_STRING,
     .offset = B(tokens_count_strategy),
     .def = "\"total_tokens\"",
     .one_of = count_strategies},
    {.name = "identifier",
     .type = SL_FIELD_STRING,
     .offset = B(identifier),
     .def = "\"consumer\"",
     .one_of = identifiers},
    {.name = "header_name",
     .type = SL_FIELD_STRING,
     .offset = B(header_name),
     .check = sl_kong_header_name},
    {.name = "path", .type = SL_FIELD_STRING, .offset = B(path)},
    {.name = "error_code",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_RANGE,
     .offset = B(error_code),
     .def = "429",
     .min = 1,
     .max = 999},
    {.name = "error_message",
     .type = SL_FIELD_STRING,
     .offset = B(error_message),
     .def = "\"AI token rate limit exceeded for provider(s): \""},
    {.name = "error_hide_providers",
     .type = SL_FIELD_BOOLEAN,
     .offset = B(error_hide_providers),
     .def = "false"},
    {.name = "hide_client_headers",
     .type = SL_FIELD_BOOLEAN,
     .offset = B(hide_client_headers),
     .def = "false"},
    {.name = "retry_after_jitter_max",
     .type = SL_FIELD_NUMBER,
     .flags = SL_FIELD_RANGE,
     .offset = B(retry_after_jitter_max),
     .def = "0",
     .min = 0,
     .max = 86400},
    {.name = "disable_penalty",
     .type = SL_FIELD_BOOLEAN,
     .offset = B(disable_penalty),
     .def = "false"},
    {.name = "dictionary_name",
     .type = SL_FIELD_STRING,
     .offset = B(dictionary_name),
     .def = "\"kong_rate_limiting_counters\""},
    {.name = "namespace", .type = SL_FIELD_STRING, .offset = B(namespace_)},
    {.name = "decrease_by_fractions_in_redis",
     .type = SL_FIELD_BOOLEAN,
     .offset = B(decrease_by_fractions_in_redis),
     .def = "false"},
    {.name = "request_prompt_count_function",
     .type = SL_FIELD_STRING,
     .offset = B(request_prompt_count_function)},
    {.name = "custom_cost_count_function",
     .type = SL_FIELD_STRING,
     .offset = B(custom_cost_count_function)},
    {.name = "llm_format", .type = SL_FIELD_STRING, .offset = B(llm_format), .one_of = formats},
    {.name = "redis", .type = SL_FIELD_RECORD, .offset = B(redis), .record = &redis_schema},
    {.type = SL_FIELD_END},
};

static int
index_of(const char *const *list, const char *v)
{
    for (int i = 0; list[i]; i++)
        if (strcmp(list[i], v) == 0)
            return i;
    return 0;
}

/* policies[]: what Kong's schema cannot say, and what sluice cannot do. */
static int
check_policies(const sl_api_t *api, sl_conf_ctx_t *cx, airl_block_t *s)
{
    char path[96];
    int bad = 0;

    for (size_t i = 0; i < s->policies.n; i++) {
        airl_policy_t *p = (airl_policy_t *)s->policies.items + i;
        if (p->id != NULL) {
            snprintf(path, sizeof(path), "policies[%zu].id", i);
            api->conf_error(cx, path,
                            "stored ai_rate_limiting_policies entities are not supported: "
                            "write the policy's match and limits inline");
            bad = 1;
        }
        if (p->limits.n == 0) {
            snprintf(path, sizeof(path), "policies[%zu].limits", i);
            api->conf_error(cx, path, "required field missing");
            bad = 1;
        }
        p->sliding = strcmp(p->window_type ? p->window_type : s->window_type, "sliding") == 0;
        for (size_t j = 0; j < p->limits.n; j++) {
            airl_policy_limit_t *l = (airl_policy_limit_t *)p->limits.items + j;
            if (l->limit <= 0) {
                snprintf(path, sizeof(path), "policies[%zu].limits[%zu].limit", i, j);
                api->conf_error(cx, path, "value must be greater than 0");
                bad = 1;
            }
            l->count = (airl_count_t)index_of(count_strategies, l->tokens_count_strategy);
        }
        for (size_t j = 0; j < p->match.n; j++) {
            airl_match_t *m = (airl_match_t *)p->match.items + j;
            m->kind = (airl_match_type_t)index_of(match_types, m->type);
            snprintf(path, sizeof(path), "policies[%zu].match[%zu]", i, j);
            if (m->kind == AIRL_MATCH_CONSUMER_GROUP) {
                api->conf_error(cx, path, "consumer groups are not supported");
                bad = 1;
            } else if (m->kind == AIRL_MATCH_HEADER && m->key == NULL) {
                snprintf(path, sizeof(path), "policies[%zu].match[%zu].key", i, j);
                api->conf_error(cx, path, "required field missing: the header's name");
                bad = 1;
            } else if (m->kind == AIRL_MATCH_CONSUMER && m->key != NULL) {
                int ok = 0;
                for (int k = 0; consumer_keys[k]; k++)
                    ok |= strcmp(m->key, consumer_keys[k]) == 0;
                if (!ok) {
                    snprintf(path, sizeof(path), "policies[%zu].match[%zu].key", i, j);
                    api->conf_error(cx, path, "expected one of: id, username, custom_id");
                    bad = 1;
                }
            } else if (m->kind != AIRL_MATCH_CONSUMER && m->kind != AIRL_MATCH_HEADER &&
                       m->key != NULL) {
                snprintf(path, sizeof(path), "policies[%zu].match[%zu].key", i, j);
                api->conf_error(cx, path, "only consumer and header matches take a key");
                bad = 1;
            }
        }
    }
    return bad;
}

/* One of Kong EE's keepalive integers (JSON text, NULL or null when
 * unset): 0 with *v set (def when unset), -1 reported. */
static int
keepalive_int(const sl_api_t *api, sl_conf_ctx_t *cx, const char *name, const char *json,
              long long min, long long def, long long *v)
{
    char path[48], *end;

    *v = def;
    if (json == NULL || strcmp(json, "null") == 0)
        return 0;
    errno = 0;
    *v = strtoll(json, &end, 10);
    if (errno != 0 || end == json || *end != '\0' || *v < min || *v > 2147483646) {
        snprintf(path, sizeof(path), "redis.%s", name);
        api->conf_error(cx, path, "value should be between %lld and 2147483646", min);
        return -1;
    }
    return 0;
}

/* Kong EE's keepalive_pool_size (default 256) and keepalive_backlog
 * (unset by default): with a backlog, lua-resty's pool lets pool_size
 * connections be in use and backlog more wait.  Commands are pipelined
 * here, so one connection does what that pool does: the two bound the
 * batches in flight instead (rl_redis_conf_t.max_in_flight). */
static int
keepalive(const sl_api_t *api, sl_conf_ctx_t *cx, airl_redis_t *r)
{
    long long size, backlog;

    if (keepalive_int(api, cx, "keepalive_pool_size", r->extra[0], 1, 256, &size) != 0 ||
        keepalive_int(api, cx, "keepalive_backlog", r->extra[1], 0, -1, &backlog) != 0)
        return -1;
    r->base.max_in_flight = backlog >= 0 ? size + backlog : 0;
    return 0;
}

static int
check(const sl_api_t *api, sl_conf_ctx_t *cx, void *block)
{
    airl_block_t *s = block;
    int bad = 0;
    char path[64];

    s->sync_rate_set = s->sync_rate_json != NULL && strcmp(s->sync_rate_json, "null") != 0;
    if (s->sync_rate_set) {
        char *end;
        s->sync_rate = strtod(s->sync_rate_json, &end);
        if (*end != '\0' || (s->sync_rate != -1 && s->sync_rate < 0)) {
            api->conf_error(cx, "sync_rate", "expected a number: -1, 0, or seconds >= 0.02");
            bad = 1;
        } else if (s->sync_rate > 0 && s->sync_rate < 0.02) {
            api->conf_error(cx, "sync_rate", "value must be at least 0.02");
            bad = 1;
        }
    }
    if (s->policies.n > 0 && s->llm_providers.n > 0) {
        api->conf_error(cx, "", "llm_providers and policies are mutually exclusive: use one");
        bad = 1;
    } else if (s->policies.n == 0 && s->llm_providers.n == 0) {
        api->conf_error(cx, "llm_providers", "required field missing (or use policies)");
        bad = 1;
    }
    bad |= check_policies(api, cx, s);
    for (size_t i = 0; i < s->llm_providers.n; i++) {
        const airl_provider_t *p = (const airl_provider_t *)s->llm_providers.items + i;
        snprintf(path, sizeof(path), "llm_providers[%zu]", i);
        if (p->limit.n == 0 || p->limit.n != p->window_size.n) {
            api->conf_error(cx, path,
                            "limit and window_size must be non-empty and of equal length");
            bad = 1;
        }
        for (size_t j = 0; j < p->window_size.n; j++) {
            double w = ((const double *)p->window_size.items)[j];
            double l = j < p->limit.n ? ((const double *)p->limit.items)[j] : 1;
            if (w < 1 || w != (double)(int64_t)w || l <= 0) {
                api->conf_error(cx, path, "limits must be > 0 and window sizes whole seconds >= 1");
                bad = 1;
            }
        }
        if (strcmp(p->name, "requestPrompt") == 0 || strcmp(p->name, "customCost") == 0) {
            api->conf_error(cx, path, "'%s' needs a Lua function, which sluice cannot run",
                            p->name);
            bad = 1;
        }
    }
    if (strcmp(s->strategy, "cluster") == 0) {
        api->conf_error(cx, "strategy",
                        "'cluster' counts in Kong's database, and sluice has none: use 'local' "
                        "(one node) or 'redis' (several nodes)");
        bad = 1;
    }
    if (strcmp(s->identifier, "consumer-group") == 0) {
        api->conf_error(cx, "identifier", "consumer groups are not supported");
        bad = 1;
    }
    if (strcmp(s->identifier, "header") == 0 && s->header_name == NULL) {
        api->conf_error(cx, "header_name", "required field missing");
        bad = 1;
    }
    if (strcmp(s->identifier, "path") == 0 && s->path == NULL) {
        api->conf_error(cx, "path", "required field missing");
        bad = 1;
    }
    if (s->request_prompt_count_function || s->custom_cost_count_function) {
        api->conf_error(cx, "", "Lua count functions are not supported");
        bad = 1;
    }
    for (int i = AIRL_REDIS_TUNING; i < AIRL_REDIS_EXTRA; i++) {
        const char *v = s->redis.extra[i];
        if (v != NULL && strcmp(v, "null") != 0 && strcmp(v, "[]") != 0 && strcmp(v, "{}") != 0) {
            snprintf(path, sizeof(path), "redis.%s", redis_extra_names[i]);
            api->conf_error(cx, path,
                            "cloud authentication is not supported: use username and "
                            "password");
            bad = 1;
        }
    }
    if (rl_redis_check_sentinel(api, cx, &s->redis.base, "redis") != 0 ||
        rl_redis_check_cluster(api, cx, &s->redis.base, "redis") != 0)
        bad = 1;
    if (strcmp(s->strategy, "redis") == 0 && s->redis.base.host == NULL &&
        s->redis.base.sentinel_master == NULL && s->redis.base.cluster_nodes.n == 0) {
        api->conf_error(cx, "redis.host",
                        "required field missing (or use sentinel_master or cluster_nodes)");
        bad = 1;
    }
    if (keepalive(api, cx, &s->redis) != 0)
        bad = 1;
    /* one timeout guards connecting, sending and reading: the longest */
    int64_t t = s->redis.connect_timeout;
    if (s->redis.read_timeout > t)
        t = s->redis.read_timeout;
    if (s->redis.send_timeout > t)
        t = s->redis.send_timeout;
    if (t > 0)
        s->redis.base.timeout = t;
    return bad ? -1 : 0;
}

static const sl_schema_t schema = {.size = sizeof(airl_block_t), .fields = fields, .check = check};

int
airl_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    void *block = NULL;
    airl_conf_t *c;

    if (api->conf_schema_parse(cx, &schema, json, len, &block) != 0)
        return -1;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        api->conf_schema_free(&schema, block);
        api->conf_error(cx, "", "out of memory");
        return -1;
    }
    c->s = block;
    c->api = api;
    *out = c;
    c->error_code = (int)c->s->error_code;
    c->sliding = strcmp(c->s->window_type, "sliding") == 0;
    c->strategy_redis =
        strcmp(c->s->strategy, "redis") == 0 && !(c->s->sync_rate_set && c->s->sync_rate == -1);
    c->count = (airl_count_t)index_of(count_strategies, c->s->tokens_count_strategy);
    c->identifier = (sl_quota_by_t)index_of(identifiers, c->s->identifier);
    c->policies = c->s->policies.n > 0;
    for (size_t i = 0; i < c->s->policies.n; i++) {
        const airl_policy_t *p = (const airl_policy_t *)c->s->policies.items + i;
        for (size_t j = 0; j < p->match.n; j++)
            c->need_model |= ((const airl_match_t *)p->match.items)[j].kind == AIRL_MATCH_MODEL;
    }
    /* the body callback picks policies[]: without them the host need not
     * call it (ABI 1.8) */
    if (!c->policies && api->abi_minor >= 8 && api->conf_phases_skip != NULL)
        api->conf_phases_skip(cx, SL_PLUGIN_PHASE_BODY);
    c->zone = api->shm_zone(cx, "ai-rate-limiting-advanced", 12u * 1024 * 1024, 0);
    return c->zone ? 0 : -1;
}

void
airl_conf_free(void *conf)
{
    airl_conf_t *c = conf;

    if (c == NULL)
        return;
    c->api->conf_schema_free(&schema, c->s);
    free(c);
}
