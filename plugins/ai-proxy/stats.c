/* stats.c - the ai.proxy.usage and ai.proxy.meta log values.
 *
 * Field names, order and types follow Kong 3.14's ai-proxy so existing log
 * pipelines keep working: integers for token counts and millisecond
 * latencies, a float for time_per_token, `{}` for absent
 * completion_tokens_details.
 */

#include <string.h>

#include "ai_proxy.h"

void
sl_ap_stats_usage(const sl_ap_stats_in_t *in, sl_ap_buf_t *out)
{
    const sl_ap_usage_t *u = in->usage;
    int64_t prompt = u->prompt, completion = u->completion, total;
    double cost = 0, tpt = 0;

    if (!u->have && completion == 0) {
        completion = u->out_chars_tokens; /* OSS Kong's estimate */
    }
    total = u->have && u->total ? u->total : prompt + completion;
    if (in->input_cost >= 0 && in->output_cost >= 0) {
        /* Kong 3.14: cached reads at cache_read_cost and cache writes at
         * cache_write_cost when set; everything else at input_cost */
        double read = in->cache_read_cost >= 0 ? in->cache_read_cost : in->input_cost;
        double write = in->cache_write_cost >= 0 ? in->cache_write_cost : in->input_cost;
        int64_t plain = prompt - u->cached - u->created;

        if (plain < 0) {
            plain = 0;
        }
        cost = ((double)plain * in->input_cost + (double)u->cached * read +
                (double)u->created * write + (double)completion * in->output_cost) /
               1e6;
    }
    if (completion > 0) {
        tpt = (double)in->llm_latency_ms / (double)completion;
    }
    sl_ap_buf_addf(
        out,
        "{\"prompt_tokens\":%lld,\"completion_tokens\":%lld,\"total_tokens\":%lld,"
        "\"cost\":%.14g,\"time_per_token\":%.14g,\"time_to_first_token\":%lld,"
        "\"prompt_tokens_details\":{\"cached_tokens\":%lld},\"completion_tokens_details\":",
        (long long)prompt, (long long)completion, (long long)total, cost, tpt,
        (long long)in->ttft_ms, (long long)u->cached);
    sl_ap_buf_adds(out, u->completion_details[0] ? u->completion_details : "{}");
    sl_ap_buf_addc(out, '}');
}

void
sl_ap_stats_meta(const sl_ap_stats_in_t *in, sl_ap_buf_t *out)
{
    const sl_ap_usage_t *u = in->usage;

    SL_AP_BUF_LIT(out, "{\"plugin_id\":");
    sl_ap_buf_add_qstr(out, in->plugin_id.ptr, in->plugin_id.len);
    SL_AP_BUF_LIT(out, ",\"provider_name\":");
    sl_ap_buf_add_qstr(out, in->provider_name.ptr, in->provider_name.len);
    SL_AP_BUF_LIT(out, ",\"request_model\":");
    sl_ap_buf_add_qstr(out, in->request_model.ptr, in->request_model.len);
    SL_AP_BUF_LIT(out, ",\"response_model\":");
    if (u->response_model[0]) {
        /* stored in its JSON-escaped form */
        sl_ap_buf_addc(out, '"');
        sl_ap_buf_adds(out, u->response_model);
        sl_ap_buf_addc(out, '"');
    } else {
        sl_ap_buf_add_qstr(out, in->request_model.ptr, in->request_model.len);
    }
    sl_ap_buf_addf(out, ",\"request_mode\":\"%s\",\"llm_latency\":%lld}",
                   in->stream ? "stream" : "oneshot", (long long)in->llm_latency_ms);
}
