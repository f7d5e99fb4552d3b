/* rl_conf.c - rate-limiting's config: Kong's schema as a field table, the
 * cross-field rules of kong/plugins/rate-limiting/schema.lua, and the
 * deprecated flat redis_* forms folded into redis.*. */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../shared/kong_typedefs.h"
#include "rl.h"

#define B(f) offsetof(rl_schema_block_t, f)

static const char *const limit_by_values[] = {"consumer", "credential", "ip", "service",
                                              "header",   "path",       NULL};
/* "cluster" is Kong's database policy: parsed so the message can say why. */
static const char *const policy_values[] = {"local", "cluster", "redis", NULL};

static const sl_field_t redis_fields[] = {
    RL_REDIS_FIELDS(0, "false"),
    /* Kong EE's Redis Cluster fields (its open-source schema has none) */
    RL_REDIS_CLUSTER_FIELDS(0),
    {.type = SL_FIELD_END},
};

static const sl_schema_t redis_schema = {.size = sizeof(rl_redis_conf_t), .fields = redis_fields};

#define PERIOD(n, i)                                                                               \
    {                                                                                              \
        .name = n, .type = SL_FIELD_NUMBER, .offset = B(limit) + (i) * sizeof(double)              \
    }

static const sl_field_t rl_fields[] = {
    PERIOD("second", RL_SECOND),
    PERIOD("minute", RL_MINUTE),
    PERIOD("hour", RL_HOUR),
    PERIOD("day", RL_DAY),
    PERIOD("month", RL_MONTH),
    PERIOD("year", RL_YEAR),
    {.name = "limit_by",
     .type = SL_FIELD_STRING,
     .offset = B(limit_by),
     .def = "\"consumer\"",
     .one_of = limit_by_values},
    {.name = "header_name",
     .type = SL_FIELD_STRING,
     .offset = B(header_name),
     .check = sl_kong_header_name},
    {.name = "path", .type = SL_FIELD_STRING, .offset = B(path)},
    {.name = "policy",
     .type = SL_FIELD_STRING,
     .offset = B(policy),
     .def = "\"local\"",
     .one_of = policy_values},
    {.name = "fault_tolerant",
     .type = SL_FIELD_BOOLEAN,
     .offset = B(fault_tolerant),
     .def = "true"},
    {.name = "redis", .type = SL_FIELD_RECORD, .offset = B(redis), .record = &redis_schema},
    {.name = "hide_client_headers",
     .type = SL_FIELD_BOOLEAN,
     .offset = B(hide_client_headers),
     .def = "false"},
    {.name = "error_code", .type = SL_FIELD_NUMBER, .offset = B(error_code), .def = "429"},
    {.name = "error_message",
     .type = SL_FIELD_STRING,
     .offset = B(error_message),
     .def = "\"API rate limit exceeded\""},
    {.name = "sync_rate", .type = SL_FIELD_NUMBER, .offset = B(sync_rate), .def = "-1"},
    /* Deprecated shorthands (Kong 3.x, removed in 4.0). */
    {.name = "redis_host", .type = SL_FIELD_STRING, .offset = B(redis_host)},
    {.name = "redis_port", .type = SL_FIELD_INTEGER, .offset = B(redis_port)},
    {.name = "redis_password", .type = SL_FIELD_STRING, .offset = B(redis_password)},
    {.name = "redis_username", .type = SL_FIELD_STRING, .offset = B(redis_username)},
    {.name = "redis_timeout", .type = SL_FIELD_INTEGER, .offset = B(redis_timeout)},
    {.name = "redis_database", .type = SL_FIELD_INTEGER, .offset = B(redis_database)},
    {.name = "redis_ssl", .type = SL_FIELD_BOOLEAN, .offset = B(redis_ssl)},
    {.name = "redis_ssl_verify", .type = SL_FIELD_BOOLEAN, .offset = B(redis_ssl_verify)},
    {.name = "redis_server_name", .type = SL_FIELD_STRING, .offset = B(redis_server_name)},
    {.type = SL_FIELD_END},
};

/* Move a deprecated flat value into redis.* (the nested form wins). */
static void
fold_str(char **flat, char **nested)
{
    if (*flat != NULL && *nested == NULL) {
        *nested = *flat;
        *flat = NULL;
    }
}

static int
rl_check(const sl_api_t *api, sl_conf_ctx_t *cx, void *block)
{
    rl_schema_block_t *s = block;
    int n = 0, bad = 0;

    for (int i = 0; i < RL_NPERIODS; i++) {
        if (s->limit[i] < 0) {
            api->conf_error(cx, rl_period_name[i], "value must be greater than 0");
            bad = 1;
        }
        n += s->limit[i] > 0;
    }
    if (n == 0) {
        api->conf_error(cx, "",
                        "at least one of these fields must be non-empty: 'config.second', "
                        "'config.minute', 'config.hour', 'config.day', 'config.month', "
                        "'config.year'");
        return -1;
    }
    /* Kong: a longer period may not have a lower limit. */
    for (int i = 0; i < RL_NPERIODS; i++) {
        for (int j = i + 1; s->limit[i] > 0 && j < RL_NPERIODS; j++) {
            if (s->limit[j] > 0 && s->limit[j] < s->limit[i]) {
                api->conf_error(cx, "",
                                "The limit for %s(%.1f) cannot be lower than the limit for "
                                "%s(%.1f)",
                                rl_period_name[j], s->limit[j], rl_period_name[i], s->limit[i]);
                bad = 1;
            }
        }
    }
    if (strcmp(s->limit_by, "header") == 0 && s->header_name == NULL) {
        api->conf_error(cx, "header_name", "required field missing");
        bad = 1;
    }
    if (strcmp(s->limit_by, "path") == 0 && s->path == NULL) {
        api->conf_error(cx, "path", "required field missing");
        bad = 1;
    }
    if (strcmp(s->policy, "cluster") == 0) {
        api->conf_error(cx, "policy",
                        "'cluster' counts in Kong's database, and sluice has none: use 'local' "
                        "(one node) or 'redis' (several nodes)");
        bad = 1;
    }
    if (s->error_code <= 0 || s->error_code > 999 || s->error_code != (int)s->error_code) {
        api->conf_error(cx, "error_code", "value must be an HTTP status code");
        bad = 1;
    }
    if (strcmp(s->policy, "redis") != 0 && s->sync_rate != -1) {
        api->conf_error(cx, "", "sync_rate can only be used with the redis policy");
        bad = 1;
    } else if (s->sync_rate != -1 && s->sync_rate < 0.02) {
        api->conf_error(cx, "", "sync_rate must be greater than 0.02, or -1 to disable");
        bad = 1;
    }
    fold_str(&s->redis_host, &s->redis.host);
    fold_str(&s->redis_password, &s->redis.password);
    fold_str(&s->redis_username, &s->redis.username);
    fold_str(&s->redis_server_name, &s->redis.server_name);
    if (s->redis_port)
        s->redis.port = s->redis_port;
    if (s->redis_timeout)
        s->redis.timeout = s->redis_timeout;
    if (s->redis_database)
        s->redis.database = s->redis_database;
    s->redis.ssl |= s->redis_ssl;
    s->redis.ssl_verify |= s->redis_ssl_verify;
    if (strcmp(s->policy, "redis") == 0 && s->redis.host == NULL && s->redis.cluster_nodes.n == 0) {
        api->conf_error(cx, "redis.host", "required field missing (or use cluster_nodes)");
        bad = 1;
    }
    if (rl_redis_check_cluster(api, cx, &s->redis, "redis") != 0)
        bad = 1;
    return bad ? -1 : 0;
}

const sl_schema_t rl_schema = {
    .size = sizeof(rl_schema_block_t), .fields = rl_fields, .check = rl_check};

/* One zone for every instance: Kong's kong_rate_limiting_counters. */
#define RL_ZONE_NAME "rate-limiting"
#define RL_ZONE_SIZE (12u * 1024 * 1024)

int
rl_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    void *block = NULL;
    rl_conf_t *c;

    if (api->conf_schema_parse(cx, &rl_schema, json, len, &block) != 0)
        return -1;
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        api->conf_schema_free(&rl_schema, block);
        api->conf_error(cx, "", "out of memory");
        return -1;
    }
    c->s = block;
    c->api = api;
    *out = c;
    for (int i = 0; limit_by_values[i]; i++)
        if (strcmp(c->s->limit_by, limit_by_values[i]) == 0)
            c->limit_by = (sl_quota_by_t)i;
    for (int p = 0; p < RL_NPERIODS; p++) {
        double v = c->s->limit[p];
        if (v <= 0)
            continue;
        /* whole requests; past 2^62 no count can reach it anyway */
        c->limit[p] = v < 4.6e18 ? (int64_t)v : (int64_t)4.6e18;
        c->limit_len[p] = sl_dec(c->limit_txt[p], c->limit[p]);
        c->period[c->nperiods++] = (rl_period_t)p;
    }
    c->policy = strcmp(c->s->policy, "redis") == 0 ? RL_POLICY_REDIS : RL_POLICY_LOCAL;
    c->error_code = (int)c->s->error_code;
    snprintf(c->redis_key, sizeof(c->redis_key), "%s:%lld;%lld",
             c->s->redis.host ? c->s->redis.host : "", (long long)c->s->redis.port,
             (long long)c->s->redis.database);
    c->zone = api->shm_zone(cx, RL_ZONE_NAME, RL_ZONE_SIZE, 0);
    return c->zone ? 0 : -1;
}

void
rl_conf_free(void *conf)
{
    rl_conf_t *c = conf;

    if (c == NULL)
        return;
    c->api->conf_schema_free(&rl_schema, c->s);
    free(c);
}
