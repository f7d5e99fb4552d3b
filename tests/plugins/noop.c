/* noop.c - a plugin with every phase and nothing in them: measures what an
 * enabled plugin costs the core per request (bench/run and the ABI note). */

#include <sluice/plugin.h>

static int
noop_config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    *conf = NULL;
    return 0;
}

static sl_status_t
noop_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    return SL_STATUS_CONTINUE;
}

static sl_status_t
noop_body_filter(const sl_api_t *api, sl_req_t *r, void *conf, sl_str_t *chunk, int eof)
{
    return SL_STATUS_CONTINUE;
}

static void
noop_log(const sl_api_t *api, sl_req_t *r, void *conf)
{
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-noop",          /* name */
    "1.0.0",           /* version */
    1000,              /* priority */
    noop_config_parse, /* config_parse */
    NULL,              /* config_free */
    NULL,              /* init_worker */
    NULL,              /* exit_worker */
    noop_phase,        /* access */
    noop_phase,        /* body */
    noop_phase,        /* header_filter */
    noop_body_filter,  /* body_filter */
    noop_log,          /* log */
    NULL,              /* balancer */
    {NULL},            /* reserved */
};
