/* trace.c - a test plugin that records every phase it sees.  Built several
 * times under different names and priorities (TP_NAME, TP_PRIORITY) so the
 * e2e tests can check the order of a chain: priority, ties, precedence.
 *
 * Where each phase leaves a mark:
 *   access, body    request header  X-Trace: <name>/<tag>:<phase>  (the
 *                   upstream echoes it, so the order across plugins shows)
 *   header_filter   response header X-Trace: <name>/<tag>:header_filter and
 *                   X-Trace-Seen-<name>: what this plugin's per-request
 *                   context saw so far (ctx_get/ctx_set isolation)
 *   every phase     a line "<request id> <name>/<tag> <phase>" in
 *                   config.file, when set (the log phase writes there too,
 *                   with the body_filter call count and the request error)
 *   serialize       trace.<tag> = "<phases seen>" (set in header_filter and
 *                   in the log phase)
 *
 * config.skip ("body,log", ABI 1.8): phases this instance tells the host
 * it never needs (api->conf_phases_skip); config.skip_bits: raw bits
 * handed over as they are (a refusal is a config error). */

#include "tp_util.h"

#ifndef TP_NAME
#error "TP_NAME must be defined"
#endif
#ifndef TP_PRIORITY
#error "TP_PRIORITY must be defined"
#endif

typedef struct conf {
    char *tag;
    char *file;
} conf_t;

typedef struct ctx {
    char seen[256];
    size_t len;
    int chunks;
} ctx_t;

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    json_object *o = tp_parse(api, cx, json, len);
    conf_t *c;

    if (o == NULL)
        return -1;
    c = calloc(1, sizeof(*c));
    c->tag = tp_str(o, "tag");
    c->file = tp_str(o, "file");
    {
        static const char *const names[] = {"access",      "body", "header_filter",
                                            "body_filter", "log",  "balancer"};
        char *skip = tp_str(o, "skip"), *save = NULL;
        json_object *bits;
        unsigned mask = 0;
        int bad = 0;
        for (char *t = skip ? strtok_r(skip, ",", &save) : NULL; t;
             t = strtok_r(NULL, ",", &save)) {
            unsigned k = 0;
            while (k < 6 && strcmp(t, names[k]) != 0)
                k++;
            if (k == 6)
                api->conf_error(cx, "skip", "no phase '%s'", t), bad = 1;
            mask |= 1u << k;
        }
        free(skip);
        if (json_object_object_get_ex(o, "skip_bits", &bits))
            mask = (unsigned)json_object_get_int64(bits);
        if (!bad && mask && api->conf_phases_skip(cx, mask) != 0)
            api->conf_error(cx, "skip", "conf_phases_skip refused %#x", mask), bad = 1;
        if (bad) {
            json_object_put(o);
            free(c->tag);
            free(c->file);
            free(c);
            return -1;
        }
    }
    if (c->tag == NULL)
        c->tag = strdup("-");
    json_object_put(o);
    *out = c;
    return 0;
}

static void
config_free(void *p)
{
    conf_t *c = p;
    free(c->tag);
    free(c->file);
    free(c);
}

static ctx_t *
ctx(const sl_api_t *api, sl_req_t *r)
{
    ctx_t *x = api->ctx_get(r);
    if (x == NULL) {
        x = api->palloc(r, sizeof(*x));
        memset(x, 0, sizeof(*x));
        api->ctx_set(r, x);
    }
    return x;
}

static void
mark(const sl_api_t *api, sl_req_t *r, conf_t *c, const char *phase)
{
    ctx_t *x = ctx(api, r);
    sl_str_t id = api->req_id(r);
    int n;

    if (x->len + strlen(phase) + 2 < sizeof(x->seen)) {
        n = snprintf(x->seen + x->len, sizeof(x->seen) - x->len, "%s%s", x->len ? "," : "", phase);
        x->len += (size_t)n;
    }
    tp_append(c->file, "%.*s %s/%s %s", (int)id.len, id.ptr, TP_NAME, c->tag, phase);
}

static sl_status_t
request_phase(const sl_api_t *api, sl_req_t *r, conf_t *c, const char *phase)
{
    char v[256];

    mark(api, r, c, phase);
    snprintf(v, sizeof(v), "%s/%s:%s", TP_NAME, c->tag, phase);
    api->req_header_add(r, SL_STR("X-Trace"), TP_S(v));
    return SL_STATUS_CONTINUE;
}

static sl_status_t
access_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    return request_phase(api, r, conf, "access");
}

static sl_status_t
body(const sl_api_t *api, sl_req_t *r, void *conf)
{
    return request_phase(api, r, conf, "body");
}

static void
serialize_seen(const sl_api_t *api, sl_req_t *r, conf_t *c, ctx_t *x)
{
    char key[128], json[300];

    snprintf(key, sizeof(key), "trace.%s", c->tag);
    snprintf(json, sizeof(json), "\"%s\"", x->seen);
    api->set_serialize_value(r, key, TP_S(json));
}

static sl_status_t
header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    ctx_t *x;
    char v[256], name[128];

    mark(api, r, c, "header_filter");
    x = ctx(api, r);
    snprintf(v, sizeof(v), "%s/%s:header_filter", TP_NAME, c->tag);
    api->resp_header_add(r, SL_STR("X-Trace"), TP_S(v));
    snprintf(name, sizeof(name), "X-Trace-Seen-%s", TP_NAME);
    api->resp_header_set(r, TP_S(name), (sl_str_t){x->seen, x->len});
    serialize_seen(api, r, c, x);
    return SL_STATUS_CONTINUE;
}

static sl_status_t
body_filter(const sl_api_t *api, sl_req_t *r, void *conf, sl_str_t *chunk, int eof)
{
    ctx_t *x = ctx(api, r);

    x->chunks++;
    if (eof)
        mark(api, r, conf, "body_filter_eof");
    return SL_STATUS_CONTINUE;
}

static void
log_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    ctx_t *x = ctx(api, r);
    sl_str_t id = api->req_id(r);

    mark(api, r, c, "log");
    serialize_seen(api, r, c, x);
    tp_append(c->file, "%.*s %s/%s summary status=%d err=%d chunks=%d seen=%s", (int)id.len, id.ptr,
              TP_NAME, c->tag, api->resp_status(r), (int)api->req_error(r), x->chunks, x->seen);
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    TP_NAME,
    "0.0.1",
    TP_PRIORITY,
    .config_parse = config_parse,
    .config_free = config_free,
    .access = access_phase,
    .body = body,
    .header_filter = header_filter,
    .body_filter = body_filter,
    .log = log_phase,
};
