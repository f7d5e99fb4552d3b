/* test_plugin.c - the ai-proxy phases against a fake host (a minimal
 * sl_api_t recording what the plugin asks for), so the glue is tested
 * without the core: routing by path, upstream target and auth headers,
 * request/response translation through the phases, local answers, error
 * translation, keep-alive pings and the log values. */

#include <math.h>

#include "test_util.h"

extern const sl_plugin_t sluice_plugin;

#define MAXH 32

typedef struct {
    char name[64];
    char value[256];
} hdr_t;

static struct fake {
    const char *method, *path, *query;
    hdr_t req_h[MAXH];
    int nreq_h;
    hdr_t resp_h[MAXH];
    int nresp_h;
    sl_ap_buf_t body;
    char up_scheme[16], up_host[128], up_path[256], up_query[256];
    int up_port;
    int status;
    int source;
    int responded;
    sl_ap_buf_t written; /* resp_body_write */
    sl_req_error_t rerr;
    void *ctx;
    sl_cleanup_fn cleanups[8];
    void *cleanup_args[8];
    int ncleanups;
    void *allocs[64];
    int nallocs;
    json_object *rec; /* the log values set, placed as the host does */
    int nser;         /* set_serialize_* calls */
    sl_timer_fn timer_fn;
    void *timer_arg;
    int64_t now;
    char conf_errors[1024];
} F;

static hdr_t *
hfind(hdr_t *h, int n, sl_str_t name)
{
    int i;

    for (i = 0; i < n; i++) {
        if (strlen(h[i].name) == name.len && strncasecmp(h[i].name, name.ptr, name.len) == 0) {
            return &h[i];
        }
    }
    return NULL;
}

static int
hset(hdr_t *h, int *n, sl_str_t name, sl_str_t value)
{
    hdr_t *x = hfind(h, *n, name);

    if (x == NULL) {
        assert_true(*n < MAXH);
        x = &h[(*n)++];
        snprintf(x->name, sizeof(x->name), "%.*s", (int)name.len, name.ptr);
    }
    snprintf(x->value, sizeof(x->value), "%.*s", (int)value.len, value.ptr);
    return 0;
}

static int
hremove(hdr_t *h, int *n, sl_str_t name)
{
    hdr_t *x = hfind(h, *n, name);

    if (x) {
        *x = h[--(*n)];
    }
    return 0;
}

static int
hget(hdr_t *h, int n, sl_str_t name, sl_str_t *v)
{
    hdr_t *x = hfind(h, n, name);

    if (x == NULL) {
        return 0;
    }
    v->ptr = x->value;
    v->len = strlen(x->value);
    return 1;
}

static const char *
req_hdr(const char *name)
{
    hdr_t *x = hfind(F.req_h, F.nreq_h, (sl_str_t){name, strlen(name)});
    return x ? x->value : NULL;
}

static const char *
resp_hdr(const char *name)
{
    hdr_t *x = hfind(F.resp_h, F.nresp_h, (sl_str_t){name, strlen(name)});
    return x ? x->value : NULL;
}

static sl_str_t
cs(const char *s)
{
    return (sl_str_t){s, s ? strlen(s) : 0};
}

static void
f_conf_error(sl_conf_ctx_t *cx, const char *field, const char *fmt, ...)
{
    va_list ap;
    size_t l = strlen(F.conf_errors);

    (void)cx;
    l += (size_t)snprintf(F.conf_errors + l, sizeof(F.conf_errors) - l, "%s: ", field);
    va_start(ap, fmt);
    vsnprintf(F.conf_errors + l, sizeof(F.conf_errors) - l, fmt, ap);
    va_end(ap);
}
static void
f_log(sl_req_t *r, sl_log_level_t l, const char *fmt, ...)
{
    (void)r;
    (void)l;
    (void)fmt;
}
static void *
f_palloc(sl_req_t *r, size_t n)
{
    (void)r;
    assert_true(F.nallocs < 64);
    return F.allocs[F.nallocs++] = calloc(1, n + 1);
}
static int
f_cleanup_add(sl_req_t *r, sl_cleanup_fn fn, void *arg)
{
    (void)r;
    F.cleanup_args[F.ncleanups] = arg;
    F.cleanups[F.ncleanups++] = fn;
    return 0;
}
static void *
f_ctx_get(sl_req_t *r)
{
    (void)r;
    return F.ctx;
}
static void
f_ctx_set(sl_req_t *r, void *c)
{
    (void)r;
    F.ctx = c;
}
static sl_str_t
f_plugin_id(sl_req_t *r)
{
    (void)r;
    return cs("11111111-2222-3333-4444-555555555555");
}
static sl_str_t
f_req_id(sl_req_t *r)
{
    (void)r;
    return cs("0123456789abcdef0123456789abcdef");
}
static sl_str_t
f_req_method(sl_req_t *r)
{
    (void)r;
    return cs(F.method);
}
static sl_str_t
f_req_path(sl_req_t *r)
{
    (void)r;
    return cs(F.path);
}
static sl_str_t
f_req_query(sl_req_t *r)
{
    (void)r;
    return cs(F.query);
}
static int
f_rqh_get(sl_req_t *r, sl_str_t n, sl_str_t *v)
{
    (void)r;
    return hget(F.req_h, F.nreq_h, n, v);
}
static int
f_rqh_set(sl_req_t *r, sl_str_t n, sl_str_t v)
{
    (void)r;
    return hset(F.req_h, &F.nreq_h, n, v);
}
static int
f_rqh_remove(sl_req_t *r, sl_str_t n)
{
    (void)r;
    return hremove(F.req_h, &F.nreq_h, n);
}
static sl_str_t
f_req_body(sl_req_t *r)
{
    (void)r;
    return (sl_str_t){F.body.ptr ? F.body.ptr : "", F.body.len};
}
static int
f_req_body_set(sl_req_t *r, const char *p, size_t n)
{
    (void)r;
    F.body.len = 0;
    sl_ap_buf_add(&F.body, p, n);
    return 0;
}
static int
f_upstream_set(sl_req_t *r, sl_str_t s, sl_str_t h, int port, sl_str_t path, sl_str_t q)
{
    (void)r;
    snprintf(F.up_scheme, sizeof(F.up_scheme), "%.*s", (int)s.len, s.ptr);
    snprintf(F.up_host, sizeof(F.up_host), "%.*s", (int)h.len, h.ptr);
    snprintf(F.up_path, sizeof(F.up_path), "%.*s", (int)path.len, path.ptr);
    snprintf(F.up_query, sizeof(F.up_query), "%.*s", (int)q.len, q.ptr ? q.ptr : "");
    F.up_port = port;
    return 0;
}
static int
f_resp_status(sl_req_t *r)
{
    (void)r;
    return F.status;
}
static int
f_resp_status_set(sl_req_t *r, int s)
{
    (void)r;
    F.status = s;
    return 0;
}
static int
f_rsh_get(sl_req_t *r, sl_str_t n, sl_str_t *v)
{
    (void)r;
    return hget(F.resp_h, F.nresp_h, n, v);
}
static int
f_rsh_set(sl_req_t *r, sl_str_t n, sl_str_t v)
{
    (void)r;
    return hset(F.resp_h, &F.nresp_h, n, v);
}
static int
f_rsh_remove(sl_req_t *r, sl_str_t n)
{
    (void)r;
    return hremove(F.resp_h, &F.nresp_h, n);
}
static int
f_rsh_add(sl_req_t *r, sl_str_t n, sl_str_t v)
{
    hdr_t *x;

    (void)r;
    assert_true(F.nresp_h < MAXH);
    x = &F.resp_h[F.nresp_h++];
    snprintf(x->name, sizeof(x->name), "%.*s", (int)n.len, n.ptr);
    snprintf(x->value, sizeof(x->value), "%.*s", (int)v.len, v.ptr);
    return 0;
}
static int
f_rsh_iter(sl_req_t *r, size_t *cur, sl_str_t *n, sl_str_t *v)
{
    (void)r;
    if (*cur >= (size_t)F.nresp_h) {
        return 0;
    }
    *n = (sl_str_t){F.resp_h[*cur].name, strlen(F.resp_h[*cur].name)};
    *v = (sl_str_t){F.resp_h[*cur].value, strlen(F.resp_h[*cur].value)};
    (*cur)++;
    return 1;
}
static int
f_upstream_get(sl_req_t *r, sl_str_t *s, sl_str_t *h, int *port, sl_str_t *path, sl_str_t *q)
{
    (void)r;
    if (s) {
        *s = (sl_str_t){F.up_scheme, strlen(F.up_scheme)};
    }
    if (h) {
        *h = (sl_str_t){F.up_host, strlen(F.up_host)};
    }
    if (port) {
        *port = F.up_port;
    }
    if (path) {
        *path = (sl_str_t){F.up_path, strlen(F.up_path)};
    }
    if (q) {
        *q = (sl_str_t){F.up_query, strlen(F.up_query)};
    }
    return 0;
}
static sl_resp_source_t
f_resp_source(sl_req_t *r)
{
    (void)r;
    return (sl_resp_source_t)F.source;
}
static int
f_respond(sl_req_t *r, int status, sl_str_t ct, sl_str_t body)
{
    (void)r;
    F.responded = 1;
    F.status = status;
    F.source = SL_SOURCE_GATEWAY;
    hset(F.resp_h, &F.nresp_h, cs("content-type"), ct);
    F.written.len = 0;
    sl_ap_buf_add(&F.written, body.ptr, body.len);
    return 0;
}
static int
f_resp_body_write(sl_req_t *r, const char *p, size_t n)
{
    (void)r;
    sl_ap_buf_add(&F.written, p, n);
    return 0;
}
static sl_req_error_t
f_req_error(sl_req_t *r)
{
    (void)r;
    return F.rerr;
}
static int64_t
f_req_time(sl_req_t *r, sl_time_point_t w)
{
    (void)r;
    (void)w;
    return 0;
}
static int64_t
f_now_us(void)
{
    return F.now;
}
static int
f_set_ser(sl_req_t *r, const char *key, sl_str_t json)
{
    json_object *j;

    (void)r;
    j = tu_parse(json.ptr, json.len); /* must be valid JSON */
    if (F.rec == NULL) {
        F.rec = json_object_new_object();
    }
    tu_place(F.rec, key, j);
    F.nser++;
    return 0;
}
static int
f_set_typed(sl_req_t *r, const char *key, const sl_value_t *v)
{
    (void)r;
    assert_true(v->type != SL_VALUE_DOUBLE || isfinite(v->d));
    if (F.rec == NULL) {
        F.rec = json_object_new_object();
    }
    tu_place(F.rec, key, tu_value(v));
    F.nser++;
    return 0;
}
static sl_timer_t *
f_timer_start(sl_req_t *r, uint64_t t, uint64_t rep, sl_timer_fn fn, void *arg)
{
    (void)r;
    (void)t;
    (void)rep;
    F.timer_fn = fn;
    F.timer_arg = arg;
    return (sl_timer_t *)&F;
}

static sl_api_t api;

static void
api_init(void)
{
    memset(&api, 0, sizeof(api));
    api.abi_major = SL_PLUGIN_ABI_MAJOR;
    api.abi_minor = SL_PLUGIN_ABI_MINOR;
    api.size = sizeof(api);
    api.conf_error = f_conf_error;
    api.conf_schema_check = sl_ap_test_host()->conf_schema_check;
    api.conf_schema_free = sl_ap_test_host()->conf_schema_free;
    api.log = f_log;
    api.palloc = f_palloc;
    api.cleanup_add = f_cleanup_add;
    api.ctx_get = f_ctx_get;
    api.ctx_set = f_ctx_set;
    api.plugin_id = f_plugin_id;
    api.req_id = f_req_id;
    api.req_method = f_req_method;
    api.req_path = f_req_path;
    api.req_query = f_req_query;
    api.req_header_get = f_rqh_get;
    api.req_header_set = f_rqh_set;
    api.req_header_remove = f_rqh_remove;
    api.req_body = f_req_body;
    api.req_body_set = f_req_body_set;
    api.upstream_set = f_upstream_set;
    api.resp_status = f_resp_status;
    api.resp_status_set = f_resp_status_set;
    api.resp_header_get = f_rsh_get;
    api.resp_header_set = f_rsh_set;
    api.resp_header_remove = f_rsh_remove;
    api.resp_header_add = f_rsh_add;
    api.resp_header_iter = f_rsh_iter;
    api.upstream_get = f_upstream_get;
    api.resp_source = f_resp_source;
    api.respond = f_respond;
    api.resp_body_write = f_resp_body_write;
    api.req_error = f_req_error;
    api.req_time = f_req_time;
    api.now_us = f_now_us;
    api.set_serialize_value = f_set_ser;
    api.set_serialize_typed = f_set_typed;
    api.timer_start = f_timer_start;
}

static void
req_reset(const char *method, const char *path, const char *query, const char *body)
{
    int i;

    for (i = F.ncleanups - 1; i >= 0; i--) {
        F.cleanups[i](F.cleanup_args[i]);
    }
    for (i = 0; i < F.nallocs; i++) {
        free(F.allocs[i]);
    }
    sl_ap_buf_free(&F.body);
    sl_ap_buf_free(&F.written);
    json_object_put(F.rec);
    memset(&F, 0, sizeof(F));
    F.method = method;
    F.path = path;
    F.query = query;
    F.now = 1700000000000000;
    if (body) {
        sl_ap_buf_adds(&F.body, body);
    }
}

static void *
conf_for(const char *json)
{
    void *c = NULL;

    F.conf_errors[0] = '\0';
    if (sluice_plugin.config_parse(&api, NULL, json, strlen(json), &c) != 0) {
        fail_msg("config: %s", F.conf_errors);
    }
    return c;
}

#define HOWTO                                                                                      \
    "{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","                                \
    "\"auth\":{\"header_name\":\"Authorization\",\"header_value\":\"Bearer sk-gw\"},"              \
    "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\",\"options\":{\"max_tokens\":"    \
    "8192,\"temperature\":1.0}},"                                                                  \
    "\"logging\":{\"log_statistics\":true,\"log_payloads\":true}}"

/* run body_filter over pieces, collecting the output */
static void
filter(void *conf, const char *const *pieces, size_t n, sl_ap_buf_t *out)
{
    size_t i;

    for (i = 0; i <= n; i++) {
        sl_str_t chunk = i < n ? cs(pieces[i]) : (sl_str_t){"", 0};

        F.now += 1000;
        assert_int_equal(sluice_plugin.body_filter(&api, NULL, conf, &chunk, i == n),
                         SL_STATUS_CONTINUE);
        sl_ap_buf_add(out, chunk.ptr, chunk.len);
    }
}

static void
test_descriptor(void **state)
{
    (void)state;
    assert_int_equal(sluice_plugin.abi_major, SL_PLUGIN_ABI_MAJOR);
    assert_string_equal(sluice_plugin.name, "ai-proxy");
    assert_int_equal(sluice_plugin.priority, 770);
    F.conf_errors[0] = '\0';
    {
        void *c = NULL;
        const char *bad =
            "{\"route_type\":\"llm/v1/"
            "chat\",\"model\":{\"provider\":\"dashscope\",\"options\":{\"temperature\":9}}}";
        assert_int_equal(sluice_plugin.config_parse(&api, NULL, bad, strlen(bad), &c), -1);
        assert_non_null(
            strstr(F.conf_errors, "model.options.temperature: value should be between 0 and 5"));
    }
}

static void
test_stream_flow(void **state)
{
    void *conf = conf_for(HOWTO);
    sl_ap_buf_t out = {0};
    json_object *j;
    static const char *const pieces[] = {
        "data: "
        "{\"choices\":[{\"delta\":{\"content\":\"\",\"role\":\"assistant\"},\"finish_reason\":null,"
        "\"index\":0}],\"model\":\"qwen-plus\",\"id\":\"chatcmpl-77\"}\n\ndata: "
        "{\"choices\":[{\"delta\":{\"content\":\"Hel",
        "lo\"},\"finish_reason\":null,\"index\":0}],\"model\":\"qwen-plus\",\"id\":\"chatcmpl-77\"}"
        "\n\n",
        "data: "
        "{\"choices\":[{\"delta\":{\"content\":\"\"},\"finish_reason\":\"stop\",\"index\":0}],"
        "\"id\":\"chatcmpl-77\"}\n\n"
        "data: "
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":10,\"total_tokens\":"
        "30},\"id\":\"chatcmpl-77\"}\n\ndata: [DONE]\n\n",
    };

    (void)state;
    req_reset("POST", "/anything/v1/messages", "beta=true",
              "{\"model\":\"qwen-plus\",\"max_tokens\":32000,\"stream\":true,\"messages\":[{"
              "\"role\":\"user\",\"content\":\"hi\"}]}");
    hset(F.req_h, &F.nreq_h, cs("x-api-key"), cs("sk-ant-client"));
    hset(F.req_h, &F.nreq_h, cs("Authorization"), cs("Bearer client"));
    hset(F.req_h, &F.nreq_h, cs("anthropic-beta"), cs("a,b"));
    hset(F.req_h, &F.nreq_h, cs("anthropic-version"), cs("2023-06-01"));
    hset(F.req_h, &F.nreq_h, cs("accept-encoding"), cs("gzip, br"));
    hset(F.req_h, &F.nreq_h, cs("x-app"), cs("cli"));

    assert_int_equal(sluice_plugin.access(&api, NULL, conf), SL_STATUS_CONTINUE);
    assert_string_equal(F.up_scheme, "https");
    assert_string_equal(F.up_host, "dashscope-intl.aliyuncs.com");
    assert_int_equal(F.up_port, 443);
    assert_string_equal(F.up_path, "/compatible-mode/v1/chat/completions");
    assert_string_equal(F.up_query, "beta=true");
    assert_string_equal(req_hdr("authorization"), "Bearer sk-gw");
    assert_null(req_hdr("x-api-key"));
    assert_string_equal(req_hdr("anthropic-version"),
                        "2023-06-01"); /* harmless, logged like Kong */
    assert_string_equal(req_hdr("x-app"), "cli");

    assert_int_equal(sluice_plugin.body(&api, NULL, conf), SL_STATUS_CONTINUE);
    j = tu_parse(F.body.ptr, F.body.len);
    assert_int_equal(tu_int(j, "max_tokens"), 8192);
    assert_true(json_object_get_boolean(tu_get(j, "stream_options.include_usage")));
    json_object_put(j);
    assert_string_equal(req_hdr("content-type"), "application/json");
    assert_null(req_hdr("accept-encoding"));

    F.status = 200;
    F.source = SL_SOURCE_UPSTREAM;
    hset(F.resp_h, &F.nresp_h, cs("content-type"), cs("text/event-stream;charset=UTF-8"));
    hset(F.resp_h, &F.nresp_h, cs("content-length"), cs("999"));
    hset(F.resp_h, &F.nresp_h, cs("x-dashscope-call-gateway"), cs("true"));
    assert_int_equal(sluice_plugin.header_filter(&api, NULL, conf), SL_STATUS_CONTINUE);
    assert_non_null(strstr(resp_hdr("content-type"), "text/event-stream"));
    assert_null(resp_hdr("content-length"));
    assert_string_equal(resp_hdr("x-kong-llm-model"), "dashscope/qwen-plus");
    assert_string_equal(resp_hdr("x-dashscope-call-gateway"), "true");
    assert_non_null(F.timer_fn);

    /* a silent upstream: the timer starts the stream early */
    F.now += 11 * 1000000;
    F.timer_fn(&api, NULL, F.timer_arg);
    assert_non_null(F.written.ptr);
    assert_non_null(strstr(F.written.ptr, "event: message_start"));
    assert_non_null(strstr(F.written.ptr, "msg_0123456789abcdef"));

    filter(conf, pieces, 3, &out);
    assert_null(strstr(out.ptr, "message_start")); /* sent once, by the timer */
    /* the event split across two chunks is reassembled into one delta */
    assert_non_null(strstr(out.ptr, "\"text\":\"Hello\""));
    assert_non_null(strstr(out.ptr, "\"output_tokens\":10"));
    assert_non_null(strstr(out.ptr, "event: message_stop"));

    sluice_plugin.log(&api, NULL, conf);
    /* usage, meta, then the payloads, and nothing else */
    assert_int_equal(json_object_object_length(F.rec), 1);
    assert_int_equal(json_object_object_length(tu_get(F.rec, "ai")), 1);
    assert_int_equal(json_object_object_length(tu_get(F.rec, "ai.proxy")), 3);
    assert_int_equal(strncmp(tu_text(F.rec, "ai.proxy"), "{\"usage\":{", 10), 0);
    j = json_object_get(tu_get(F.rec, "ai.proxy.usage"));
    assert_int_equal(json_object_object_length(j), 8);
    assert_int_equal(tu_int(j, "prompt_tokens"), 20);
    assert_int_equal(tu_int(j, "completion_tokens"), 10);
    assert_int_equal(tu_int(j, "total_tokens"), 30);
    assert_true(json_object_is_type(tu_get(j, "time_per_token"), json_type_double) ||
                json_object_is_type(tu_get(j, "time_per_token"), json_type_int));
    json_object_put(j);
    j = json_object_get(tu_get(F.rec, "ai.proxy.meta"));
    assert_int_equal(json_object_object_length(j), 6);
    assert_jstr(j, "request_mode", "stream");
    assert_jstr(j, "plugin_id", "11111111-2222-3333-4444-555555555555");
    assert_jstr(j, "provider_name", "dashscope");
    assert_jstr(j, "request_model", "qwen-plus");
    assert_true(tu_int(j, "llm_latency") >= 11000);
    json_object_put(j);
    assert_non_null(tu_str(F.rec, "ai.proxy.payload.request"));
    assert_non_null(tu_str(F.rec, "ai.proxy.payload.response"));
    sl_ap_buf_free(&out);
    req_reset(NULL, NULL, NULL, NULL);
    sluice_plugin.config_free(conf);
}

static void
test_local_answers(void **state)
{
    void *conf = conf_for(HOWTO);
    json_object *j;

    (void)state;
    /* HEAD /api/hello: 404, never upstream */
    req_reset("HEAD", "/anything/api/hello", "", NULL);
    assert_int_equal(sluice_plugin.access(&api, NULL, conf), SL_STATUS_RESPOND);
    assert_int_equal(F.status, 404);
    assert_string_equal(F.up_host, "");
    j = tu_parse(F.written.ptr, F.written.len);
    assert_jstr(j, "type", "error");
    assert_jstr(j, "error.type", "not_found_error");
    json_object_put(j);
    /* the plugin leaves its own answers alone in the filters */
    assert_int_equal(sluice_plugin.header_filter(&api, NULL, conf), SL_STATUS_CONTINUE);
    sluice_plugin.log(&api, NULL, conf);
    assert_int_equal(F.nser, 0);

    /* count_tokens */
    req_reset("POST", "/anything/v1/messages/count_tokens", "beta=true",
              "{\"model\":\"qwen-plus\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello "
              "there, how are you today?\"}]}");
    assert_int_equal(sluice_plugin.access(&api, NULL, conf), SL_STATUS_CONTINUE);
    assert_int_equal(sluice_plugin.body(&api, NULL, conf), SL_STATUS_RESPOND);
    assert_int_equal(F.status, 200);
    j = tu_parse(F.written.ptr, F.written.len);
    assert_true(tu_int(j, "input_tokens") > 5);
    json_object_put(j);

    /* own model */
    req_reset(
        "POST", "/anything/v1/messages", "",
        "{\"model\":\"claude-haiku-4-5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_int_equal(sluice_plugin.access(&api, NULL, conf), SL_STATUS_CONTINUE);
    assert_int_equal(sluice_plugin.body(&api, NULL, conf), SL_STATUS_RESPOND);
    assert_int_equal(F.status, 400);
    j = tu_parse(F.written.ptr, F.written.len);
    assert_jstr(j, "error.type", "invalid_request_error");
    assert_jstr(j, "error.message", "cannot use own model - must be: qwen-plus");
    json_object_put(j);

    /* GET on the chat path */
    req_reset("GET", "/anything/v1/messages", "", NULL);
    assert_int_equal(sluice_plugin.access(&api, NULL, conf), SL_STATUS_RESPOND);
    assert_int_equal(F.status, 405);
    req_reset(NULL, NULL, NULL, NULL);
    sluice_plugin.config_free(conf);
}

static void
test_errors_and_oneshot(void **state)
{
    void *conf = conf_for(HOWTO);
    sl_ap_buf_t out = {0};
    json_object *j;
    static const char *const err401[] = {
        "{\"error\":{\"message\":\"Incorrect API key "
        "provided.\",\"type\":\"invalid_request_error\",",
        "\"param\":null,\"code\":\"invalid_api_key\"},\"request_id\":\"cf63\"}",
    };
    static const char *const kong502[] = {"{\n  \"message\":\"An invalid response was received "
                                          "from the upstream server\",\n  \"request_id\":\"x\"\n}"};
    static const char *const oneshot[] = {
        "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hi!\"},\"finish_reason\":"
        "\"stop\",\"index\":0}],",
        "\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":12,\"total_tokens\":42},\"model\":"
        "\"qwen-plus\",\"id\":\"chatcmpl-9\"}",
    };
    const char *body = "{\"model\":\"qwen-plus\",\"max_tokens\":100,\"messages\":[{\"role\":"
                       "\"user\",\"content\":\"x\"}]}";

    (void)state;
    req_reset("POST", "/anything/v1/messages", "", body);
    assert_int_equal(sluice_plugin.access(&api, NULL, conf), SL_STATUS_CONTINUE);
    assert_int_equal(sluice_plugin.body(&api, NULL, conf), SL_STATUS_CONTINUE);
    F.status = 401;
    hset(F.resp_h, &F.nresp_h, cs("content-length"), cs("150"));
    assert_int_equal(sluice_plugin.header_filter(&api, NULL, conf), SL_STATUS_CONTINUE);
    assert_null(resp_hdr("x-kong-llm-model"));
    assert_null(resp_hdr("content-length"));
    filter(conf, err401, 2, &out);
    j = tu_parse(out.ptr, out.len);
    assert_jstr(j, "error.type", "authentication_error");
    assert_jstr(j, "error.message", "Incorrect API key provided.");
    json_object_put(j);
    sluice_plugin.log(&api, NULL, conf);

    /* the core's own 502 (upstream down) */
    out.len = 0;
    req_reset("POST", "/anything/v1/messages", "", body);
    sluice_plugin.access(&api, NULL, conf);
    sluice_plugin.body(&api, NULL, conf);
    F.status = 502;
    F.source = SL_SOURCE_GATEWAY;
    sluice_plugin.header_filter(&api, NULL, conf);
    filter(conf, kong502, 1, &out);
    j = tu_parse(out.ptr, out.len);
    assert_jstr(j, "error.type", "api_error");
    assert_jstr(j, "error.message", "An invalid response was received from the upstream server");
    json_object_put(j);
    assert_string_equal(resp_hdr("content-type"), "application/json");

    /* non-streaming success */
    out.len = 0;
    req_reset("POST", "/anything/v1/messages", "", body);
    sluice_plugin.access(&api, NULL, conf);
    sluice_plugin.body(&api, NULL, conf);
    F.status = 200;
    sluice_plugin.header_filter(&api, NULL, conf);
    assert_string_equal(resp_hdr("content-type"), "application/json");
    filter(conf, oneshot, 2, &out);
    j = tu_parse(out.ptr, out.len);
    assert_jstr(j, "type", "message");
    assert_jstr(j, "content.0.text", "Hi!");
    assert_int_equal(tu_int(j, "usage.output_tokens"), 12);
    json_object_put(j);
    sluice_plugin.log(&api, NULL, conf);
    assert_jstr(F.rec, "ai.proxy.meta.request_mode", "oneshot");
    sl_ap_buf_free(&out);
    req_reset(NULL, NULL, NULL, NULL);
    sluice_plugin.config_free(conf);
}

static void
test_openai_format_flow(void **state)
{
    void *conf = conf_for(
        "{\"route_type\":\"llm/v1/chat\",\"auth\":{\"param_name\":\"key\",\"param_value\":\"a b\","
        "\"param_location\":\"query\"},\"model\":{\"provider\":\"openai\",\"name\":\"gpt-x\","
        "\"options\":{\"upstream_url\":\"http://127.0.0.1:9/v1/chat/completions?api-version=1\"}},"
        "\"logging\":{\"log_statistics\":true}}");
    sl_ap_buf_t out = {0};
    static const char *const pieces[] = {
        "data: "
        "{\"choices\":[{\"delta\":{\"content\":\"abcd\"},\"index\":0}],\"model\":\"gpt-x-1\"}\n\n",
        "data: "
        "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}"
        "}\n\ndata: [DONE]\n\n",
    };

    (void)state;
    req_reset("POST", "/v1/chat/completions", "x=1",
              "{\"model\":\"gpt-x\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
              "\"hi\"}]}");
    hset(F.req_h, &F.nreq_h, cs("Authorization"), cs("Bearer client"));
    assert_int_equal(sluice_plugin.access(&api, NULL, conf), SL_STATUS_CONTINUE);
    assert_string_equal(F.up_scheme, "http");
    assert_string_equal(F.up_host, "127.0.0.1");
    assert_int_equal(F.up_port, 9);
    assert_string_equal(F.up_query, "api-version=1&x=1&key=a%20b");
    assert_null(req_hdr("authorization"));
    assert_int_equal(sluice_plugin.body(&api, NULL, conf), SL_STATUS_CONTINUE);
    F.status = 200;
    sluice_plugin.header_filter(&api, NULL, conf);
    assert_string_equal(resp_hdr("x-kong-llm-model"), "openai/gpt-x");
    filter(conf, pieces, 2, &out);
    assert_int_equal(out.len, strlen(pieces[0]) + strlen(pieces[1])); /* untouched */
    sluice_plugin.log(&api, NULL, conf);
    assert_int_equal(tu_int(F.rec, "ai.proxy.usage.total_tokens"), 4);
    assert_jstr(F.rec, "ai.proxy.meta.response_model", "gpt-x-1");
    sl_ap_buf_free(&out);
    req_reset(NULL, NULL, NULL, NULL);
    sluice_plugin.config_free(conf);
}

static void
test_truncated_stream(void **state)
{
    void *conf = conf_for(HOWTO);
    sl_ap_buf_t out = {0};
    static const char *const pieces[] = {
        "data: "
        "{\"choices\":[{\"delta\":{\"content\":\"partial\"},\"finish_reason\":null,\"index\":0}]}"
        "\n\n",
    };

    (void)state;
    req_reset("POST", "/anything/v1/messages", "",
              "{\"model\":\"qwen-plus\",\"stream\":true,\"messages\":[{\"role\":\"user\","
              "\"content\":\"x\"}]}");
    sluice_plugin.access(&api, NULL, conf);
    sluice_plugin.body(&api, NULL, conf);
    F.status = 200;
    sluice_plugin.header_filter(&api, NULL, conf);
    F.rerr = SL_REQERR_UPSTREAM_RESET;
    filter(conf, pieces, 1, &out);
    assert_non_null(strstr(
        out.ptr, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\""));
    assert_null(strstr(out.ptr, "message_stop"));
    sl_ap_buf_free(&out);
    req_reset(NULL, NULL, NULL, NULL);
    sluice_plugin.config_free(conf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor),         cmocka_unit_test(test_stream_flow),
        cmocka_unit_test(test_local_answers),      cmocka_unit_test(test_errors_and_oneshot),
        cmocka_unit_test(test_openai_format_flow), cmocka_unit_test(test_truncated_stream),
    };

    api_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
