/* stats.c - the ai.proxy.usage and ai.proxy.meta log values.
 *
 * Field names, order and types follow Kong 3.14's ai-proxy so existing log
 * pipelines keep working: integers for token counts and millisecond
 * latencies, a float for cost and time_per_token (the host writes it with
 * 14 significant digits, as Kong's cjson does), `{}` for absent
 * completion_tokens_details.  They are handed to the host as values
 * (api->set_serialize_typed, ABI 1.6): no JSON text written here and
 * parsed again by the host on every request.
 */

#include <string.h>

#include "ai_proxy.h"

static sl_ap_stat_t *
stat_int(sl_ap_stat_t *s, const char *key, int64_t i)
{
    *s = (sl_ap_stat_t){key, {SL_VALUE_INT, i, (double)i, {"", 0}, 0}, {NULL, 0}};
    return s + 1;
}

static sl_ap_stat_t *
stat_double(sl_ap_stat_t *s, const char *key, double d)
{
    *s = (sl_ap_stat_t){key, {SL_VALUE_DOUBLE, (int64_t)d, d, {"", 0}, 0}, {NULL, 0}};
    return s + 1;
}

static sl_ap_stat_t *
stat_str(sl_ap_stat_t *s, const char *key, sl_str_t v)
{
    *s = (sl_ap_stat_t){key, {SL_VALUE_STRING, 0, 0, v, v.len}, {NULL, 0}};
    return s + 1;
}

static sl_ap_stat_t *
stat_object(sl_ap_stat_t *s, const char *key)
{
    *s = (sl_ap_stat_t){key, {SL_VALUE_OBJECT, 0, 0, {"", 0}, 0}, {NULL, 0}};
    return s + 1;
}

/* Kong 3.14's cost: cached reads at cache_read_cost and cache writes at
 * cache_write_cost when set; everything else at input_cost. */
static double
stats_cost(const sl_ap_stats_in_t *in, int64_t prompt, int64_t completion)
{
    const sl_ap_usage_t *u = in->usage;
    double read, write;
    int64_t plain;

    if (in->input_cost < 0 || in->output_cost < 0) {
        return 0;
    }
    read = in->cache_read_cost >= 0 ? in->cache_read_cost : in->input_cost;
    write = in->cache_write_cost >= 0 ? in->cache_write_cost : in->input_cost;
    plain = prompt - u->cached - u->created;
    if (plain < 0) {
        plain = 0;
    }
    return ((double)plain * in->input_cost + (double)u->cached * read + (double)u->created * write +
            (double)completion * in->output_cost) /
           1e6;
}

/* The response model is kept in its JSON-escaped form: decoded into
 * `model` when it has an escape (rare). */
static sl_str_t
stats_response_model(const sl_ap_stats_in_t *in, sl_ap_buf_t *model)
{
    const char *m = in->usage->response_model;
    size_t n = strlen(m);

    if (n == 0) {
        return in->request_model;
    }
    if (memchr(m, '\\', n) == NULL) {
        return (sl_str_t){m, n};
    }
    model->len = 0;
    if (sl_json_unescape(m, n, model) != 0 || model->oom) {
        return (sl_str_t){m, n};
    }
    return (sl_str_t){model->ptr ? model->ptr : "", model->len};
}

size_t
sl_ap_stats(const sl_ap_stats_in_t *in, sl_ap_buf_t *model, sl_ap_stat_t *out)
{
    const sl_ap_usage_t *u = in->usage;
    int64_t prompt = u->prompt, completion = u->completion, total;
    sl_ap_stat_t *s = out;

    if (!u->have && completion == 0) {
        completion = u->out_chars_tokens; /* OSS Kong's estimate */
    }
    total = u->have && u->total ? u->total : prompt + completion;

    s = stat_object(s, "ai.proxy.usage"); /* replaces a value set before */
    s = stat_int(s, "ai.proxy.usage.prompt_tokens", prompt);
    s = stat_int(s, "ai.proxy.usage.completion_tokens", completion);
    s = stat_int(s, "ai.proxy.usage.total_tokens", total);
    s = stat_double(s, "ai.proxy.usage.cost", stats_cost(in, prompt, completion));
    s = stat_double(s, "ai.proxy.usage.time_per_token",
                    completion > 0 ? (double)in->llm_latency_ms / (double)completion : 0);
    s = stat_int(s, "ai.proxy.usage.time_to_first_token", in->ttft_ms);
    s = stat_object(s, "ai.proxy.usage.prompt_tokens_details");
    s = stat_int(s, "ai.proxy.usage.prompt_tokens_details.cached_tokens", u->cached);
    s = stat_object(s, "ai.proxy.usage.completion_tokens_details");
    if (u->completion_details[0]) {
        /* the provider's own object, as it sent it */
        s[-1].json = (sl_str_t){u->completion_details, strlen(u->completion_details)};
    }

    s = stat_object(s, "ai.proxy.meta");
    s = stat_str(s, "ai.proxy.meta.plugin_id", in->plugin_id);
    s = stat_str(s, "ai.proxy.meta.provider_name", in->provider_name);
    s = stat_str(s, "ai.proxy.meta.request_model", in->request_model);
    s = stat_str(s, "ai.proxy.meta.response_model", stats_response_model(in, model));
    s = stat_str(s, "ai.proxy.meta.request_mode",
                 in->stream ? SL_STR("stream") : SL_STR("oneshot"));
    s = stat_int(s, "ai.proxy.meta.llm_latency", in->llm_latency_ms);
    return (size_t)(s - out);
}
