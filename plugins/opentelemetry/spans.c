/* spans.c - one request's spans, encoded as OTLP Span messages with
 * protobuf-c when the request ends, and handed to the exporter's queue:
 *
 *   kong           SERVER, the whole request (Kong's root span and its
 *                  attributes: http.method, http.url, http.host, ...)
 *   kong.balancer  CLIENT, child of kong: the upstream exchange; its id is
 *                  the parent the upstream saw in the injected headers
 *   kong.gen_ai    CLIENT, child of kong, on ai-proxy routes: the LLM call
 *                  with the GenAI semantic conventions' attributes, from
 *                  what ai-proxy publishes (ai.proxy.meta / ai.proxy.usage)
 *                  and its config (max_tokens, temperature, ...)
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "otel.h"
#include "otlp.pb-c.h"

typedef Opentelemetry__Proto__Trace__V1__Span pb_span_t;
typedef Opentelemetry__Proto__Trace__V1__KeyValue pb_kv_t;
typedef Opentelemetry__Proto__Trace__V1__AnyValue pb_any_t;
typedef Opentelemetry__Proto__Trace__V1__ArrayValue pb_array_t;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status_t;

#define MAX_ATTRS 32
#define MAX_STR 2048 /* longer attribute values are cut (a long URL) */

typedef struct attrs {
    const sl_api_t *api;
    sl_req_t *r;
    pb_kv_t kv[MAX_ATTRS];
    pb_any_t av[MAX_ATTRS];
    pb_kv_t *p[MAX_ATTRS];
    size_t n;
    pb_array_t arr;
    pb_any_t arr_v[OTEL_MAX_FINISH];
    pb_any_t *arr_p[OTEL_MAX_FINISH];
    size_t bound; /* the encoded attributes' size at most (see emit) */
} attrs_t;

/* What one attribute adds to its span at most, beyond its key and string
 * bytes: four tags and four length prefixes (KeyValue in Span, key,
 * AnyValue, its value) and a 10-byte varint or 8-byte double. */
#define ATTR_OVERHEAD 64
/* A span's own fields at most, beyond name, trace_state, status message
 * and attributes: ids, flags, kind, times, status code. */
#define SPAN_OVERHEAD 320

static pb_any_t *
attr(attrs_t *a, const char *key)
{
    pb_kv_t *kv;
    pb_any_t *v;

    if (a->n == MAX_ATTRS)
        return NULL;
    kv = &a->kv[a->n];
    v = &a->av[a->n];
    opentelemetry__proto__trace__v1__key_value__init(kv);
    opentelemetry__proto__trace__v1__any_value__init(v);
    kv->key = (char *)key;
    kv->value = v;
    a->p[a->n++] = kv;
    a->bound += ATTR_OVERHEAD + strlen(key);
    return v;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0. */
static size_t
utf8_seq(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned min;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    unsigned v = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    return len;
}

/* Bytes at the start of p[0..n) below 0x80, eight at a time. */
static size_t
ascii_prefix(const char *p, size_t n)
{
    size_t i = 0;

    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull)
            break;
        i += 8;
    }
    while (i < n && (unsigned char)p[i] < 0x80)
        i++;
    return i;
}

/* A protobuf string: NUL-terminated, valid UTF-8 (a collector refuses the
 * whole batch otherwise: invalid bytes become '?'), at most MAX_STR bytes
 * (cut on a character boundary); its bytes count in the span's bound. */
static char *
cstr(attrs_t *a, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t o, cap = n > MAX_STR ? MAX_STR : n;
    char *s = a->api->palloc(a->r, cap + 1);

    a->bound += cap;
    o = ascii_prefix(p, cap); /* ASCII is valid UTF-8 as it is */
    memcpy(s, p, o);
    for (size_t i = o; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0) {
            if (o + 1 > cap)
                break;
            s[o++] = '?';
            i++;
            continue;
        }
        if (o + k > cap)
            break;
        memcpy(s + o, p + i, k);
        o += k;
        i += k;
    }
    s[o] = '\0';
    return s;
}

static void
attr_str(attrs_t *a, const char *key, sl_str_t s)
{
    pb_any_t *v = attr(a, key);
    if (v == NULL)
        return;
    v->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = cstr(a, s.ptr ? s.ptr : "", s.len);
}

static void
attr_cstr(attrs_t *a, const char *key, const char *s)
{
    attr_str(a, key, (sl_str_t){s, strlen(s)});
}

static void
attr_int(attrs_t *a, const char *key, int64_t i)
{
    pb_any_t *v = attr(a, key);
    if (v == NULL)
        return;
    v->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
}

static void
attr_double(attrs_t *a, const char *key, double d)
{
    pb_any_t *v = attr(a, key);
    if (v == NULL)
        return;
    v->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
}

static void
attr_bool(attrs_t *a, const char *key, int b)
{
    pb_any_t *v = attr(a, key);
    if (v == NULL)
        return;
    v->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b != 0;
}

static void
attrs_init(attrs_t *a, const sl_api_t *api, sl_req_t *r)
{
    a->api = api;
    a->r = r;
    a->n = 0;
    a->bound = 0;
}

/* Encode one span with protobuf-c straight into the exporter's queue.
 * The room asked for is an upper bound of the encoded size, added up while
 * the span was built (strings are copied, so their lengths are known):
 * protobuf-c then packs in one walk, without the walk that computes the
 * exact size first. */
static void
emit(otel_conf_t *c, pb_span_t *s, attrs_t *a, const otel_req_t *q)
{
    size_t bound = SPAN_OVERHEAD + a->bound + strlen(s->name);
    uint8_t *out;

    if (s->trace_state != NULL)
        bound += strlen(s->trace_state);
    if (s->status != NULL && s->status->message != NULL)
        bound += strlen(s->status->message);
    out = otel_exporter_reserve(c, bound);
    if (out == NULL)
        return;
    s->trace_id = (ProtobufCBinaryData){16, (uint8_t *)q->trace_id};
    s->n_attributes = a->n;
    s->attributes = a->p;
    otel_exporter_commit(c, opentelemetry__proto__trace__v1__span__pack(s, out));
}

static char *
put(char *o, sl_str_t s)
{
    if (s.len)
        memcpy(o, s.ptr, s.len);
    return o + s.len;
}

static uint64_t
ns(int64_t us)
{
    return us > 0 ? (uint64_t)us * 1000u : 0;
}

/* Kong's provider names to the semantic conventions' gen_ai.provider.name
 * (others are passed as they are: dashscope, huggingface, ...). */
static const char *
provider_semconv(const char *kong)
{
    static const char *const map[][2] = {
        {"azure", "azure.ai.openai"}, {"bedrock", "aws.bedrock"},  {"gemini", "gcp.gemini"},
        {"mistral", "mistral_ai"},    {"vertex", "gcp.vertex_ai"}, {NULL, NULL},
    };
    for (int i = 0; map[i][0] != NULL; i++)
        if (strcmp(kong, map[i][0]) == 0)
            return map[i][1];
    return kong;
}

static json_object *
parse(sl_str_t j)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;

    if (tok == NULL || j.len > INT32_MAX) {
        json_tokener_free(tok);
        return NULL;
    }
    o = json_tokener_parse_ex(tok, j.ptr, (int)j.len);
    json_tokener_free(tok);
    return o;
}

/* ---- ai-proxy's config, parsed once per configuration ---- */

typedef struct ai_conf {
    const char *json; /* the key: chain_plugin_config's pointer */
    char operation[24];
    char provider[32];
    int have_max_tokens, have_temperature, have_top_p, have_top_k;
    int64_t max_tokens;
    double temperature, top_p;
    int64_t top_k;
} ai_conf_t;

static ai_conf_t ai_cache;

static const ai_conf_t *
ai_conf(const sl_api_t *api, sl_req_t *r)
{
    sl_str_t json;
    json_object *o, *model, *opts, *v;

    if (api->chain_plugin_config(r, "ai-proxy", &json) != 1)
        return NULL;
    if (ai_cache.json == json.ptr)
        return &ai_cache;
    memset(&ai_cache, 0, sizeof(ai_cache));
    strcpy(ai_cache.operation, "chat");
    o = parse(json);
    if (o != NULL) {
        if (json_object_object_get_ex(o, "route_type", &v) &&
            json_object_is_type(v, json_type_string)) {
            const char *rt = json_object_get_string(v);
            if (strcmp(rt, "llm/v1/completions") == 0)
                strcpy(ai_cache.operation, "text_completion");
            else if (strcmp(rt, "llm/v1/embeddings") == 0)
                strcpy(ai_cache.operation, "embeddings");
        }
        if (json_object_object_get_ex(o, "model", &model) &&
            json_object_object_get_ex(model, "options", &opts) &&
            json_object_is_type(opts, json_type_object)) {
            if (json_object_object_get_ex(opts, "max_tokens", &v) &&
                json_object_is_type(v, json_type_int)) {
                ai_cache.have_max_tokens = 1;
                ai_cache.max_tokens = json_object_get_int64(v);
            }
            if (json_object_object_get_ex(opts, "temperature", &v) &&
                (json_object_is_type(v, json_type_double) ||
                 json_object_is_type(v, json_type_int))) {
                ai_cache.have_temperature = 1;
                ai_cache.temperature = json_object_get_double(v);
            }
            if (json_object_object_get_ex(opts, "top_p", &v) &&
                (json_object_is_type(v, json_type_double) ||
                 json_object_is_type(v, json_type_int))) {
                ai_cache.have_top_p = 1;
                ai_cache.top_p = json_object_get_double(v);
            }
            if (json_object_object_get_ex(opts, "top_k", &v) &&
                json_object_is_type(v, json_type_int)) {
                ai_cache.have_top_k = 1;
                ai_cache.top_k = json_object_get_int64(v);
            }
        }
    }
    json_object_put(o);
    ai_cache.json = json.ptr;
    return &ai_cache;
}

/* ai-proxy's statistics (ai.proxy.meta / ai.proxy.usage) as they are in
 * the log record, read without JSON text (ABI 1.5). */
static const char *
stat_str(const sl_api_t *api, sl_req_t *r, const char *key)
{
    sl_value_t v;
    if (api->serialize_value_typed(r, key, &v) == 1 && v.type == SL_VALUE_STRING)
        return v.s.ptr;
    return NULL;
}

static int
stat_int(const sl_api_t *api, sl_req_t *r, const char *key, int64_t *out)
{
    sl_value_t v;
    if (api->serialize_value_typed(r, key, &v) == 1 &&
        (v.type == SL_VALUE_INT || v.type == SL_VALUE_DOUBLE)) {
        *out = v.i;
        return 1;
    }
    return 0;
}

static void
gen_ai_span(const sl_api_t *api, sl_req_t *r, otel_conf_t *c, otel_req_t *q, int64_t start,
            int64_t end, int status)
{
    pb_span_t s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    pb_status_t st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    attrs_t a;
    uint8_t id[8];
    const ai_conf_t *ac = ai_conf(api, r);
    const char *provider = stat_str(api, r, "ai.proxy.meta.provider_name"), *v;
    int64_t n;
    char code[16];

    if (ac == NULL && provider == NULL)
        return;
    attrs_init(&a, api, r);
    otel_random_bytes(id, 8);
    attr_cstr(&a, "gen_ai.operation.name", ac ? ac->operation : "chat");
    if (provider != NULL) {
        attr_cstr(&a, "gen_ai.provider.name", provider_semconv(provider));
        attr_cstr(&a, "gen_ai.system", provider); /* deprecated name, still read by many */
    }
    if ((v = stat_str(api, r, "ai.proxy.meta.request_model")) != NULL)
        attr_cstr(&a, "gen_ai.request.model", v);
    if ((v = stat_str(api, r, "ai.proxy.meta.response_model")) != NULL)
        attr_cstr(&a, "gen_ai.response.model", v);
    if ((v = stat_str(api, r, "ai.proxy.meta.request_mode")) != NULL && strcmp(v, "stream") == 0)
        attr_bool(&a, "gen_ai.request.stream", 1);
    if (ac != NULL && ac->have_max_tokens)
        attr_int(&a, "gen_ai.request.max_tokens", ac->max_tokens);
    if (ac != NULL && ac->have_temperature)
        attr_double(&a, "gen_ai.request.temperature", ac->temperature);
    if (ac != NULL && ac->have_top_p)
        attr_double(&a, "gen_ai.request.top_p", ac->top_p);
    if (ac != NULL && ac->have_top_k)
        attr_double(&a, "gen_ai.request.top_k", (double)ac->top_k);
    if (stat_int(api, r, "ai.proxy.usage.prompt_tokens", &n))
        attr_int(&a, "gen_ai.usage.input_tokens", n);
    if (stat_int(api, r, "ai.proxy.usage.completion_tokens", &n))
        attr_int(&a, "gen_ai.usage.output_tokens", n);
    if (stat_int(api, r, "ai.proxy.usage.prompt_tokens_details.cached_tokens", &n) && n > 0)
        attr_int(&a, "gen_ai.usage.cache_read.input_tokens", n);
    if (stat_int(api, r, "ai.proxy.usage.time_to_first_token", &n))
        attr_double(&a, "gen_ai.response.time_to_first_chunk", (double)n / 1000.0);
    if (q->n_finish > 0) {
        pb_any_t *av = attr(&a, "gen_ai.response.finish_reasons");
        if (av != NULL) {
            opentelemetry__proto__trace__v1__array_value__init(&a.arr);
            for (int i = 0; i < q->n_finish; i++) {
                opentelemetry__proto__trace__v1__any_value__init(&a.arr_v[i]);
                a.arr_v[i].value_case =
                    OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_STRING_VALUE;
                a.arr_v[i].string_value = q->finish[i];
                a.arr_p[i] = &a.arr_v[i];
                a.bound += ATTR_OVERHEAD + strlen(q->finish[i]);
            }
            a.arr.n_values = (size_t)q->n_finish;
            a.arr.values = a.arr_p;
            av->value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
            av->array_value = &a.arr;
        }
    }
    if (status >= 400) {
        snprintf(code, sizeof(code), "%d", status);
        attr_cstr(&a, "error.type", code);
        st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        s.status = &st;
    }
    s.span_id = (ProtobufCBinaryData){8, id};
    s.parent_span_id = (ProtobufCBinaryData){8, q->root_id};
    s.flags = 0x100 | (q->sampled ? 1u : 0u);
    s.name = (char *)"kong.gen_ai";
    s.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
    s.start_time_unix_nano = ns(start);
    s.end_time_unix_nano = ns(end);
    emit(c, &s, &a, q);
}

static const char *
try_failure_name(int f)
{
    switch (f) {
    case SL_TRY_CONNECT_FAILED:
        return "connect failed";
    case SL_TRY_CONNECT_TIMEOUT:
        return "connect timeout";
    case SL_TRY_WRITE_FAILED:
        return "write failed";
    case SL_TRY_TIMEOUT:
        return "timeout";
    case SL_TRY_RESET:
        return "reset";
    case SL_TRY_INVALID_RESPONSE:
        return "invalid response";
    case SL_TRY_STATUS:
        return "status refused";
    default:
        return "failed";
    }
}

void
otel_spans_record(const sl_api_t *api, sl_req_t *r, otel_conf_t *c, otel_req_t *q)
{
    pb_span_t s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    pb_status_t st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    attrs_t a;
    sl_str_t scheme = api->req_scheme(r), host = api->req_host(r), path = api->req_path(r);
    sl_str_t query = api->req_query(r), method = api->req_method(r);
    sl_str_t up_scheme, up_host, up_path, up_query;
    int up_port = 0, status = api->resp_status(r);
    int64_t now = api->now_us();
    int64_t t_start = api->req_time(r, SL_TIME_START);
    int64_t t_end = api->req_time(r, SL_TIME_RESPONSE_END);
    int64_t u_start = api->req_time(r, SL_TIME_UPSTREAM_START);
    int64_t u_end = api->req_time(r, SL_TIME_UPSTREAM_LAST_BYTE);
    sl_req_error_t err = api->req_error(r);
    size_t ulen;
    char *u;

    if (t_start == 0)
        t_start = now;
    if (t_end == 0 || t_end < t_start)
        t_end = now;

    /* kong: the request */
    attrs_init(&a, api, r);
    attr_str(&a, "http.method", method);
    ulen = scheme.len + 3 + host.len + path.len + (query.len ? 1 + query.len : 0);
    u = api->palloc(r, ulen);
    {
        char *o = u;
        o = put(o, scheme);
        o = put(o, SL_STR("://"));
        o = put(o, host);
        o = put(o, path);
        if (query.len) {
            *o++ = '?';
            o = put(o, query);
        }
    }
    attr_str(&a, "http.url", (sl_str_t){u, ulen});
    attr_str(&a, "http.host", host);
    attr_str(&a, "http.scheme", scheme);
    attr_str(&a, "http.flavor", api->req_http_version(r));
    attr_str(&a, "http.client_ip", api->client_ip(r));
    attr_str(&a, "net.peer.ip", api->client_ip(r));
    attr_str(&a, "kong.request.id", api->req_id(r));
    if (status > 0)
        attr_int(&a, "http.status_code", status);
    if (status >= 500 || (err != SL_REQERR_NONE && err != SL_REQERR_CLIENT_ABORT)) {
        st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        s.status = &st;
    }
    s.span_id = (ProtobufCBinaryData){8, q->root_id};
    if (q->have_parent)
        s.parent_span_id = (ProtobufCBinaryData){8, q->parent_id};
    if (q->tracestate.len)
        s.trace_state = cstr(&a, q->tracestate.ptr, q->tracestate.len);
    /* W3C flags, and "is the parent remote" known (and set when it is) */
    s.flags = 0x100 | (q->have_parent ? 0x200u : 0u) | (q->sampled ? 1u : 0u);
    s.name = (char *)"kong";
    s.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    s.start_time_unix_nano = ns(t_start);
    s.end_time_unix_nano = ns(t_end);
    emit(c, &s, &a, q);

    if (u_start == 0)
        return; /* the upstream was never contacted */
    if (u_end == 0 || u_end < u_start)
        u_end = t_end > u_start ? t_end : now;

    /* kong.balancer: one per try (balancer phase), else the whole exchange;
     * none without the balancer instrumentation */
    int n = !otel_node.balancer ? 0 : q->ntries > 0 ? q->ntries : 1;
    for (int i = 0; i < n; i++) {
        const otel_try_t *y = q->ntries > 0 ? &q->tries[i] : NULL;
        pb_span_t b = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        pb_status_t bst = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
        int last = i == n - 1;
        int64_t b_start = y && i > 0 ? y->start_us : u_start;
        int64_t b_end = y && !last && y->end_us ? y->end_us : u_end;
        int failed = y && !last && y->failure != 0;

        if (b_end < b_start)
            b_end = b_start;
        attrs_init(&a, api, r);
        attr_int(&a, "try_count", i + 1);
        if (y && y->ip[0])
            attr_cstr(&a, "net.peer.ip", y->ip);
        if (last &&
            api->upstream_get(r, &up_scheme, &up_host, &up_port, &up_path, &up_query) == 0) {
            attr_str(&a, "net.peer.name", up_host);
            attr_int(&a, "net.peer.port", up_port);
        }
        if (failed) {
            if (y->failure == SL_TRY_STATUS && y->status > 0)
                attr_int(&a, "http.status_code", y->status);
            bst.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            bst.message = (char *)try_failure_name(y->failure);
            b.status = &bst;
        } else if (last &&
                   (err == SL_REQERR_UPSTREAM_CONNECT || err == SL_REQERR_UPSTREAM_TIMEOUT ||
                    err == SL_REQERR_UPSTREAM_RESET || err == SL_REQERR_UPSTREAM_PROTOCOL)) {
            attr_int(&a, "http.status_code", status);
            bst.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            b.status = &bst;
        }
        b.span_id = (ProtobufCBinaryData){8, (uint8_t *)(y ? y->span_id : q->balancer_id)};
        b.parent_span_id = (ProtobufCBinaryData){8, q->root_id};
        b.flags = 0x100 | (q->sampled ? 1u : 0u);
        b.name = (char *)"kong.balancer";
        b.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT;
        b.start_time_unix_nano = ns(b_start);
        b.end_time_unix_nano = ns(b_end);
        emit(c, &b, &a, q);
    }

    if (q->ai)
        gen_ai_span(api, r, c, q, u_start, u_end, status);
}
