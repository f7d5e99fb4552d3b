/* test_abi.c - pins the plugin ABI's layout: every sl_api_t and sl_plugin_t
 * member at the slot it was published in, so that a reorder, an insertion
 * in the middle or a removal fails here instead of in a plugin built
 * against an older header.  New members are appended to the lists below
 * (with the minor that introduced them).  Built as C11 with -pedantic: the
 * public header must stay clean for that too. */

#include <stdio.h>

#include <sluice/plugin.h>

typedef struct member {
    const char *name;
    size_t offset;
    int since; /* minor */
} member_t;

#define API(m, since)                                                                              \
    {                                                                                              \
#m, offsetof(sl_api_t, m), since                                                           \
    }
#define DESC(m, since)                                                                             \
    {                                                                                              \
#m, offsetof(sl_plugin_t, m), since                                                        \
    }

/* Every member after host_version is one function pointer. */
static const member_t api_members[] = {
    API(conf_error, 0),
    API(log, 0),
    API(worker_id, 0),
    API(palloc, 0),
    API(cleanup_add, 0),
    API(ctx_get, 0),
    API(ctx_set, 0),
    API(plugin_id, 0),
    API(req_id, 0),
    API(req_method, 0),
    API(req_scheme, 0),
    API(req_host, 0),
    API(req_path, 0),
    API(req_query, 0),
    API(client_ip, 0),
    API(req_header_get, 0),
    API(req_header_set, 0),
    API(req_header_add, 0),
    API(req_header_remove, 0),
    API(req_header_iter, 0),
    API(req_body, 0),
    API(req_body_set, 0),
    API(upstream_get, 0),
    API(upstream_set, 0),
    API(resp_status, 0),
    API(resp_status_set, 0),
    API(resp_header_get, 0),
    API(resp_header_set, 0),
    API(resp_header_add, 0),
    API(resp_header_remove, 0),
    API(resp_header_iter, 0),
    API(resp_source, 0),
    API(respond, 0),
    API(resp_body_write, 0),
    API(req_error, 0),
    API(req_time, 0),
    API(now_us, 0),
    API(set_serialize_value, 0),
    API(log_serialize, 0),
    API(timer_start, 0),
    API(timer_stop, 0),
    API(reopen_generation, 0),
    API(log_ts, 0),
    API(post, 0),
    API(resp_buffer, 0),
    /* since 1.1: shared memory */
    API(shm_zone, 1),
    API(shm_get, 1),
    API(shm_set, 1),
    API(shm_incr, 1),
    API(shm_delete, 1),
    API(shm_iter, 1),
    API(shm_info, 1),
    /* since 1.1: platform */
    API(pend, 1),
    API(resume, 1),
    API(worker_loop, 1),
    API(worker_timer_start, 1),
    API(worker_timer_stop, 1),
    API(callout, 1),
    API(callout_cancel, 1),
    API(callout_strerror, 1),
    /* since 1.1: identity */
    API(route_info, 1),
    API(service_info, 1),
    API(consumer_get, 1),
    API(credential_get, 1),
    API(consumer_info, 1),
    API(credential_info, 1),
    API(consumer_find, 1),
    API(credential_find, 1),
    API(consumer_set, 1),
    /* since 1.1: config schemas */
    API(conf_schema_parse, 1),
    API(conf_schema_free, 1),
    /* since 1.1: introspection */
    API(plugin_scope, 1),
    API(serialize_value_get, 1),
    API(chain_plugin_config, 1),
    API(req_body_limit, 1),
    /* since 1.1: metrics and node status */
    API(metrics_register, 1),
    API(node_status, 1),
    API(req_stats, 1),
    /* since 1.2: upstream selection and failover */
    API(upstream_retries_set, 2),
    API(upstream_retry, 2),
    API(upstream_timeouts_set, 2),
    /* since 1.2: Kong's upstreams */
    API(upstream_health, 2),
    /* since 1.3: node settings and the request's protocol */
    API(setting_get, 3),
    API(req_http_version, 3),
    /* since 1.3: counting several series at once */
    API(shm_incr_many, 3),
    /* since 1.4: checking a part of a config */
    API(conf_schema_check, 4),
    /* since 1.4: a string into the log record */
    API(set_serialize_string, 4),
    /* since 1.4: several response headers at once */
    API(resp_headers_set, 4),
    /* since 1.4: a new request body handed over */
    API(req_body_take, 4),
    /* since 1.5: several request headers at once */
    API(req_headers_set, 5),
    /* since 1.5: log record values without JSON text */
    API(serialize_value_typed, 5),
    API(serialize_value_keys, 5),
    /* since 1.6: log record values set without JSON text */
    API(set_serialize_typed, 6),
    /* since 1.7: request headers prepared once */
    API(header_block_new, 7),
    API(header_block_free, 7),
    API(req_headers_apply, 7),
    /* since 1.8: phases an instance does not need */
    API(conf_phases_skip, 8),
    /* since 1.8: the log record without its copy */
    API(log_record, 8),
};

static const member_t desc_members[] = {
    DESC(config_parse, 0), DESC(config_free, 0), DESC(init_worker, 0),   DESC(exit_worker, 0),
    DESC(access, 0),       DESC(body, 0),        DESC(header_filter, 0), DESC(body_filter, 0),
    DESC(log, 0),          DESC(balancer, 2),    DESC(reserved, 0),
};

static int
check(const char *what, const member_t *m, size_t n, size_t first, size_t *end)
{
    int bad = 0;

    for (size_t i = 0; i < n; i++) {
        size_t want = first + i * sizeof(void (*)(void));
        if (m[i].offset != want) {
            fprintf(stderr, "%s.%s (since 1.%d) at offset %zu, published at %zu\n", what, m[i].name,
                    m[i].since, m[i].offset, want);
            bad = 1;
        }
        if (m[i].since > SL_PLUGIN_ABI_MINOR) {
            fprintf(stderr, "%s.%s says since 1.%d, the header is 1.%d\n", what, m[i].name,
                    m[i].since, SL_PLUGIN_ABI_MINOR);
            bad = 1;
        }
    }
    *end = first + n * sizeof(void (*)(void));
    return bad;
}

int
main(void)
{
    int bad = 0;
    size_t end;
    /* the fixed head of each struct */
    size_t api_first = offsetof(sl_api_t, host_version) + sizeof(const char *);
    size_t desc_first = offsetof(sl_plugin_t, priority) + sizeof(void *);

    bad |= offsetof(sl_api_t, abi_major) != 0 || offsetof(sl_api_t, abi_minor) != 4 ||
           offsetof(sl_api_t, size) != 8 || offsetof(sl_api_t, host_version) != 8 + sizeof(size_t);
    bad |= offsetof(sl_plugin_t, abi_major) != 0 || offsetof(sl_plugin_t, abi_minor) != 4 ||
           offsetof(sl_plugin_t, name) != 8 ||
           offsetof(sl_plugin_t, version) != 8 + sizeof(void *) ||
           offsetof(sl_plugin_t, priority) != 8 + 2 * sizeof(void *);
    if (bad)
        fprintf(stderr, "the head of sl_api_t or sl_plugin_t moved\n");
    /* published enum values (sl_target_state_t: 1.2, DNS_ERROR 1.6) */
    if (SL_TARGET_HEALTHCHECKS_OFF != -1 || SL_TARGET_UNHEALTHY != 0 || SL_TARGET_HEALTHY != 1 ||
        SL_TARGET_DNS_ERROR != 2) {
        fprintf(stderr, "sl_target_state_t values moved\n");
        bad = 1;
    }

    bad |= check("sl_api_t", api_members, sizeof(api_members) / sizeof(api_members[0]), api_first,
                 &end);
    if (end != sizeof(sl_api_t)) {
        fprintf(stderr,
                "sl_api_t has %zu bytes, the list above covers %zu: a member is not "
                "pinned here\n",
                sizeof(sl_api_t), end);
        bad = 1;
    }
    bad |= check("sl_plugin_t", desc_members, sizeof(desc_members) / sizeof(desc_members[0]),
                 desc_first, &end);
    if (offsetof(sl_plugin_t, reserved) + sizeof(((sl_plugin_t *)0)->reserved) !=
        sizeof(sl_plugin_t)) {
        fprintf(stderr, "sl_plugin_t: reserved[] is no longer last\n");
        bad = 1;
    }
    /* values plugins compiled in */
    bad |= SL_STATUS_CONTINUE != 0 || SL_STATUS_RESPOND != 1 || SL_STATUS_ERROR != 2 ||
           SL_STATUS_PENDING != 3;
    bad |= SL_REQERR_PLUGIN != 6 || SL_REQERR_PENDING_TIMEOUT != 7 || SL_TIME_MAX != 8;
    /* since 1.8: the phase bits plugins compile in */
    bad |= SL_PLUGIN_PHASE_ACCESS != 1 || SL_PLUGIN_PHASE_BODY != 2 ||
           SL_PLUGIN_PHASE_HEADER_FILTER != 4 || SL_PLUGIN_PHASE_BODY_FILTER != 8 ||
           SL_PLUGIN_PHASE_LOG != 16 || SL_PLUGIN_PHASE_BALANCER != 32;
    /* since 1.2: balancer took the first reserved slot, the descriptor
     * keeps its 1.0 size; the try description plugins read */
    bad |= sizeof(sl_plugin_t) !=
           offsetof(sl_plugin_t, priority) + sizeof(void *) + 17 * sizeof(void *);
    bad |= SL_TRY_FIRST != 0 || SL_TRY_CONNECT_FAILED != 1 || SL_TRY_CONNECT_TIMEOUT != 2 ||
           SL_TRY_WRITE_FAILED != 3 || SL_TRY_TIMEOUT != 4 || SL_TRY_RESET != 5 ||
           SL_TRY_INVALID_RESPONSE != 6 || SL_TRY_STATUS != 7;
    bad |= offsetof(sl_try_info_t, try_number) != 0 || offsetof(sl_try_info_t, retries_left) != 4 ||
           offsetof(sl_try_info_t, failure) != 8 || offsetof(sl_try_info_t, status) != 12 ||
           offsetof(sl_try_info_t, may_have_reached) != 16 ||
           offsetof(sl_try_info_t, reused) != 20 || offsetof(sl_try_info_t, ip) != 24 ||
           offsetof(sl_try_info_t, port) != 24 + sizeof(sl_str_t);
    /* config schemas (since 1.1): the field table plugins compile in */
    bad |= SL_FIELD_END != 0 || SL_FIELD_BOOLEAN != 1 || SL_FIELD_STRING != 4 ||
           SL_FIELD_MAP != 8 || SL_FIELD_REQUIRED != 1 || SL_FIELD_RANGE != 2;
    bad |= offsetof(sl_field_t, name) != 0 || offsetof(sl_field_t, type) != sizeof(void *) ||
           offsetof(sl_field_t, offset) != 2 * sizeof(void *) ||
           offsetof(sl_field_t, def) != 3 * sizeof(void *) ||
           offsetof(sl_field_t, min) != 4 * sizeof(void *) ||
           offsetof(sl_field_t, one_of) != 4 * sizeof(void *) + 2 * sizeof(double) ||
           offsetof(sl_field_t, check) != 7 * sizeof(void *) + 2 * sizeof(double) ||
           sizeof(sl_field_t) != 10 * sizeof(void *) + 2 * sizeof(double);
    bad |= offsetof(sl_schema_t, fields) != sizeof(size_t) ||
           offsetof(sl_schema_t, check) != sizeof(size_t) + sizeof(void *);
    /* since 1.5: a typed log record value */
    bad |= SL_VALUE_NULL != 0 || SL_VALUE_BOOL != 1 || SL_VALUE_INT != 2 || SL_VALUE_DOUBLE != 3 ||
           SL_VALUE_STRING != 4 || SL_VALUE_OBJECT != 5 || SL_VALUE_ARRAY != 6;
    bad |= offsetof(sl_value_t, type) != 0 || offsetof(sl_value_t, i) != 8 ||
           offsetof(sl_value_t, d) != 16 || offsetof(sl_value_t, s) != 24 ||
           offsetof(sl_value_t, n) != 24 + sizeof(sl_str_t) ||
           sizeof(sl_value_t) != 24 + sizeof(sl_str_t) + sizeof(size_t);
    if (!bad)
        printf("ABI %d.%d layout as published\n", SL_PLUGIN_ABI_MAJOR, SL_PLUGIN_ABI_MINOR);
    return bad ? 1 : 0;
}
