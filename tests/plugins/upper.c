/* upper.c - test plugin "t-upper": a body_filter that upper-cases the
 * response chunk by chunk, as it streams (never buffering), and tags the
 * response with X-Upper: on in header_filter.  Same length out as in, so
 * Content-Length stays right. */

#include <ctype.h>

#include "tp_util.h"

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    *out = NULL;
    return 0;
}

static sl_status_t
header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    api->resp_header_set(r, SL_STR("X-Upper"), SL_STR("on"));
    return SL_STATUS_CONTINUE;
}

static sl_status_t
body_filter(const sl_api_t *api, sl_req_t *r, void *conf, sl_str_t *chunk, int eof)
{
    char *out;

    if (chunk->len == 0)
        return SL_STATUS_CONTINUE;
    out = api->palloc(r, chunk->len);
    for (size_t i = 0; i < chunk->len; i++)
        out[i] = (char)toupper((unsigned char)chunk->ptr[i]);
    chunk->ptr = out;
    return SL_STATUS_CONTINUE;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-upper",
    "0.0.1",
    700,
    .config_parse = config_parse,
    .header_filter = header_filter,
    .body_filter = body_filter,
};
