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

typedef Opentelemetry__Proto__Trace__V1__SpanHead pb_span_t;
typedef Opentelemetry__Proto__Trace__V1__SpanTail pb_tail_t;
typedef Opentelemetry__Proto__Trace__V1__KeyValueOut pb_kv_t;
typedef Opentelemetry__Proto__Trace__V1__AnyValueOut pb_any_t;
typedef Opentelemetry__Proto__Trace__V1__ArrayValueOut pb_array_t;
typedef Opentelemetry__Proto__Trace__V1__StatusOut pb_status_t;

#define MAX_ATTRS 32
#define MAX_STR 2048 /* longer attribute values are cut (a long URL) */

/* The attributes sluice writes, one slot each (a key written by two spans
 * with different values, net.peer.ip, has two). */
typedef enum attr_id {
    A_HTTP_METHOD,
    A_HTTP_URL,
    A_HTTP_HOST,
    A_HTTP_SCHEME,
    A_HTTP_FLAVOR,
    A_HTTP_CLIENT_IP,
    A_NET_PEER_IP,
    A_REQUEST_ID,
    A_HTTP_STATUS,
    A_TRY_COUNT,
    A_TRY_PEER_IP,
    A_TRY_PEER_NAME,
    A_TRY_PEER_PORT,
    A_TRY_STATUS,
    A_GENAI_OPERATION,
    A_GENAI_PROVIDER,
    A_GENAI_SYSTEM,
    A_GENAI_REQ_MODEL,
    A_GENAI_RESP_MODEL,
    A_GENAI_STREAM,
    A_GENAI_MAX_TOKENS,
    A_GENAI_TEMPERATURE,
    A_GENAI_TOP_P,
    A_GENAI_TOP_K,
    A_GENAI_INPUT_TOKENS,
    A_GENAI_OUTPUT_TOKENS,
    A_GENAI_CACHE_READ,
    A_GENAI_TTFC,
    A_GENAI_FINISH,
    A_ERROR_TYPE,
    A_MAX
} attr_id_t;

static const sl_str_t attr_key[A_MAX] = {
    [A_HTTP_METHOD] = SL_STR("http.method"),
    [A_HTTP_URL] = SL_STR("http.url"),
    [A_HTTP_HOST] = SL_STR("http.host"),
    [A_HTTP_SCHEME] = SL_STR("http.scheme"),
    [A_HTTP_FLAVOR] = SL_STR("http.flavor"),
    [A_HTTP_CLIENT_IP] = SL_STR("http.client_ip"),
    [A_NET_PEER_IP] = SL_STR("net.peer.ip"),
    [A_REQUEST_ID] = SL_STR("kong.request.id"),
    [A_HTTP_STATUS] = SL_STR("http.status_code"),
    [A_TRY_COUNT] = SL_STR("try_count"),
    [A_TRY_PEER_IP] = SL_STR("net.peer.ip"),
    [A_TRY_PEER_NAME] = SL_STR("net.peer.name"),
    [A_TRY_PEER_PORT] = SL_STR("net.peer.port"),
    [A_TRY_STATUS] = SL_STR("http.status_code"),
    [A_GENAI_OPERATION] = SL_STR("gen_ai.operation.name"),
    [A_GENAI_PROVIDER] = SL_STR("gen_ai.provider.name"),
    [A_GENAI_SYSTEM] = SL_STR("gen_ai.system"), /* deprecated name, still read by many */
    [A_GENAI_REQ_MODEL] = SL_STR("gen_ai.request.model"),
    [A_GENAI_RESP_MODEL] = SL_STR("gen_ai.response.model"),
    [A_GENAI_STREAM] = SL_STR("gen_ai.request.stream"),
    [A_GENAI_MAX_TOKENS] = SL_STR("gen_ai.request.max_tokens"),
    [A_GENAI_TEMPERATURE] = SL_STR("gen_ai.request.temperature"),
    [A_GENAI_TOP_P] = SL_STR("gen_ai.request.top_p"),
    [A_GENAI_TOP_K] = SL_STR("gen_ai.request.top_k"),
    [A_GENAI_INPUT_TOKENS] = SL_STR("gen_ai.usage.input_tokens"),
    [A_GENAI_OUTPUT_TOKENS] = SL_STR("gen_ai.usage.output_tokens"),
    [A_GENAI_CACHE_READ] = SL_STR("gen_ai.usage.cache_read.input_tokens"),
    [A_GENAI_TTFC] = SL_STR("gen_ai.response.time_to_first_chunk"),
    [A_GENAI_FINISH] = SL_STR("gen_ai.response.finish_reasons"),
    [A_ERROR_TYPE] = SL_STR("error.type"),
};

/* The attributes whose values change with every request (the URL, the
 * request id, the client's address, token counts, ...) go in a span's
 * head; the others usually repeat and go in its tail, which is encoded
 * once and reused while they do (see span_tail). */
static const unsigned char attr_per_request[A_MAX] = {
    [A_HTTP_URL] = 1,         [A_HTTP_CLIENT_IP] = 1,     [A_NET_PEER_IP] = 1,
    [A_REQUEST_ID] = 1,       [A_GENAI_INPUT_TOKENS] = 1, [A_GENAI_OUTPUT_TOKENS] = 1,
    [A_GENAI_CACHE_READ] = 1, [A_GENAI_TTFC] = 1,         [A_GENAI_FINISH] = 1,
};

/* The last encoding of each attribute, per worker: most attributes repeat
 * from one request to the next (the method, host, scheme, flavor, client
 * address, upstream, status, model, ...), and protobuf-c's generic packer
 * costs a few hundred instructions per KeyValue; a value equal to the last
 * one reuses its bytes.  Only values of at most MEMO_VAL bytes are kept. */
#define MEMO_VAL 128
#define MEMO_ENC 256

typedef struct attr_memo {
    int type; /* an AnyValueOut value case; 0: empty */
    size_t vlen;
    char v[MEMO_VAL]; /* STRING: the value's bytes as given; INT, DOUBLE, BOOL: its 8 bytes */
    size_t len;
    uint8_t enc[MEMO_ENC]; /* the KeyValue */
    uint64_t gen;          /* this encoding's number: a tail knows its own */
} attr_memo_t;

static attr_memo_t memo[A_MAX]; /* per worker: used on its loop only */
static uint64_t memo_gen;       /* encodings kept so far (never 0 for one kept) */

typedef struct attrs {
    const sl_api_t *api;
    sl_req_t *r;
    ProtobufCBinaryData enc[MAX_ATTRS]; /* the head's attributes: each one's KeyValue */
    size_t n;
    size_t bytes;                        /* their sizes, summed */
    ProtobufCBinaryData tenc[MAX_ATTRS]; /* the tail's: KeyValues kept in memo[] */
    uint64_t tkey[MAX_ATTRS];            /* each one's memo generation */
    size_t nt;
    size_t tbytes;
} attrs_t;

/* A span's own fields at most, beyond name, trace_state, status message
 * and attributes: ids, flags, kind, times, status code. */
#define SPAN_OVERHEAD 320
/* What an attribute adds to its span beyond its encoding: a tag and a
 * length prefix. */
#define ATTR_OVERHEAD 8
/* A KeyValue's encoding beyond its key and string bytes: two tags and two
 * length prefixes (key, AnyValue), the value's tag, its length or a
 * 10-byte varint or an 8-byte double. */
#define KV_OVERHEAD 32

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

/* A protobuf string: valid UTF-8 (a collector refuses the whole batch
 * otherwise: invalid bytes become '?'), at most MAX_STR bytes (cut on a
 * character boundary).  ASCII within the limit is used where it is (it
 * lives until the span is encoded); anything else is copied. */
static ProtobufCBinaryData
pstr(const sl_api_t *api, sl_req_t *r, const char *p, size_t n)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t o, cap = n > MAX_STR ? MAX_STR : n;
    char *s;

    if (n == 0)
        return (ProtobufCBinaryData){0, (uint8_t *)""};
    o = ascii_prefix(p, cap);
    if (o == n)
        return (ProtobufCBinaryData){n, (uint8_t *)p};
    s = api->palloc(r, cap);
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
    return (ProtobufCBinaryData){o, (uint8_t *)s};
}

/* One encoded attribute into the span: its tail when the value usually
 * repeats and the bytes are memo[id]'s, else its head. */
static void
attr_put(attrs_t *a, attr_id_t id, uint8_t *enc, size_t len, int kept)
{
    if (kept && !attr_per_request[id]) {
        a->tenc[a->nt] = (ProtobufCBinaryData){len, enc};
        a->tkey[a->nt++] = memo[id].gen;
        a->tbytes += len;
        return;
    }
    a->enc[a->n++] = (ProtobufCBinaryData){len, enc};
    a->bytes += len;
}

/* Attribute `id` as last time when its value (type; vbytes, vlen: what
 * identifies it) is the same: 1, its KeyValue added; 0: encode it (most
 * values repeat, so this runs before anything is built for protobuf-c). */
static int
attr_reuse(attrs_t *a, attr_id_t id, int type, const void *vbytes, size_t vlen)
{
    const attr_memo_t *m = &memo[id];

    if (m->type != type || m->vlen != vlen || a->n + a->nt == MAX_ATTRS)
        return a->n + a->nt == MAX_ATTRS;
    if (vlen == 8) { /* numbers: one word */
        uint64_t x, y;
        memcpy(&x, m->v, 8);
        memcpy(&y, vbytes, 8);
        if (x != y)
            return 0;
    } else if (memcmp(m->v, vbytes, vlen) != 0) {
        return 0;
    }
    attr_put(a, id, (uint8_t *)m->enc, m->len, 1);
    return 1;
}

/* Add attribute `id` with value `v` (vbytes, vlen: what identifies it),
 * encoded now (size: the value's bytes in the encoding at most) and kept
 * for next time when small enough. */
static void
attr_add(attrs_t *a, attr_id_t id, pb_any_t *v, const void *vbytes, size_t vlen, size_t size)
{
    attr_memo_t *m = &memo[id];
    pb_kv_t kv = OPENTELEMETRY__PROTO__TRACE__V1__KEY_VALUE_OUT__INIT;
    size_t bound = attr_key[id].len + size + KV_OVERHEAD, len;
    int keep = vlen <= MEMO_VAL && bound <= MEMO_ENC;
    uint8_t *out;

    if (a->n + a->nt == MAX_ATTRS)
        return;
    out = keep ? m->enc : a->api->palloc(a->r, bound);
    if (v->value_case == OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_STRING_VALUE)
        v->string_value = pstr(a->api, a->r, vbytes, vlen);
    kv.key = (ProtobufCBinaryData){attr_key[id].len, (uint8_t *)attr_key[id].ptr};
    kv.value = v;
    len = opentelemetry__proto__trace__v1__key_value_out__pack(&kv, out);
    m->type = 0; /* m->enc was overwritten, or the value is not kept */
    if (keep) {
        m->type = (int)v->value_case;
        m->vlen = vlen;
        memcpy(m->v, vbytes, vlen);
        m->len = len;
        m->gen = ++memo_gen;
    }
    attr_put(a, id, out, len, keep);
}

static void
attr_str(attrs_t *a, attr_id_t id, sl_str_t s)
{
    pb_any_t v = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__INIT;
    const char *p = s.ptr ? s.ptr : "";

    if (attr_reuse(a, id, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_STRING_VALUE, p,
                   s.len))
        return;
    v.value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_STRING_VALUE;
    attr_add(a, id, &v, p, s.len, s.len);
}

static void
attr_cstr(attrs_t *a, attr_id_t id, const char *s)
{
    attr_str(a, id, (sl_str_t){s, strlen(s)});
}

static void
attr_int(attrs_t *a, attr_id_t id, int64_t i)
{
    pb_any_t v = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__INIT;

    if (attr_reuse(a, id, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_INT_VALUE, &i,
                   sizeof(i)))
        return;
    v.value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_INT_VALUE;
    v.int_value = i;
    attr_add(a, id, &v, &i, sizeof(i), 0);
}

static void
attr_double(attrs_t *a, attr_id_t id, double d)
{
    pb_any_t v = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__INIT;

    if (attr_reuse(a, id, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_DOUBLE_VALUE, &d,
                   sizeof(d)))
        return;
    v.value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_DOUBLE_VALUE;
    v.double_value = d;
    attr_add(a, id, &v, &d, sizeof(d), 0);
}

static void
attr_bool(attrs_t *a, attr_id_t id, int b)
{
    pb_any_t v = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__INIT;
    int64_t k = b != 0;

    if (attr_reuse(a, id, OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_BOOL_VALUE, &k,
                   sizeof(k)))
        return;
    v.value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_BOOL_VALUE;
    v.bool_value = b != 0;
    attr_add(a, id, &v, &k, sizeof(k), 0);
}

/* An array of strings (NUL-terminated, valid UTF-8), never kept. */
static void
attr_str_array(attrs_t *a, attr_id_t id, char (*strs)[32], int n)
{
    pb_any_t v = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__INIT;
    pb_array_t arr = OPENTELEMETRY__PROTO__TRACE__V1__ARRAY_VALUE_OUT__INIT;
    pb_any_t item[OTEL_MAX_FINISH], *items[OTEL_MAX_FINISH];
    size_t size = 0;

    for (int i = 0; i < n && i < OTEL_MAX_FINISH; i++) {
        size_t len = strnlen(strs[i], sizeof(strs[i]));
        opentelemetry__proto__trace__v1__any_value_out__init(&item[i]);
        item[i].value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_STRING_VALUE;
        item[i].string_value = (ProtobufCBinaryData){len, (uint8_t *)strs[i]};
        items[i] = &item[i];
        size += len + KV_OVERHEAD;
        arr.n_values++;
    }
    arr.values = items;
    v.value_case = OPENTELEMETRY__PROTO__TRACE__V1__ANY_VALUE_OUT__VALUE_ARRAY_VALUE;
    v.array_value = &arr;
    attr_add(a, id, &v, NULL, MEMO_VAL + 1, size); /* too long to keep: never compared */
}

static void
attrs_init(attrs_t *a, const sl_api_t *api, sl_req_t *r)
{
    a->api = api;
    a->r = r;
    a->n = 0;
    a->bytes = 0;
    a->nt = 0;
    a->tbytes = 0;
}

/* The spans a request makes, each with its name and kind (in its tail). */
typedef enum span_slot { SPAN_ROOT, SPAN_BALANCER, SPAN_GEN_AI, SPAN_SLOTS } span_slot_t;

static const struct {
    sl_str_t name;
    int kind;
} span_names[SPAN_SLOTS] = {
    [SPAN_ROOT] = {SL_STR("kong"),
                   OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER},
    [SPAN_BALANCER] = {SL_STR("kong.balancer"),
                       OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT},
    [SPAN_GEN_AI] = {SL_STR("kong.gen_ai"),
                     OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_CLIENT},
};

/* The last tail of each span, per worker: its attributes (id and memo
 * generation each) and its encoding.  A span whose tail attributes are
 * the same encodings (the same generations) copies it. */
#define TAIL_MAX 1024

typedef struct span_tail {
    size_t nt;                /* 0 with len 0: nothing kept */
    uint64_t tkey[MAX_ATTRS]; /* its attributes' memo generations */
    size_t len;
    uint8_t enc[TAIL_MAX];
} span_tail_t;

static span_tail_t tails[SPAN_SLOTS]; /* per worker: used on its loop only */

/* The span's tail (name, kind, the attributes that usually repeat),
 * encoded with protobuf-c, or as last time. */
static sl_str_t
span_tail(attrs_t *a, span_slot_t slot)
{
    span_tail_t *t = &tails[slot];
    pb_tail_t tail = OPENTELEMETRY__PROTO__TRACE__V1__SPAN_TAIL__INIT;
    size_t bound = span_names[slot].name.len + 16 + a->tbytes + a->nt * ATTR_OVERHEAD, len;
    uint8_t *out;

    if (t->len > 0 && t->nt == a->nt && memcmp(t->tkey, a->tkey, a->nt * sizeof(a->tkey[0])) == 0)
        return (sl_str_t){(const char *)t->enc, t->len};
    tail.name =
        (ProtobufCBinaryData){span_names[slot].name.len, (uint8_t *)span_names[slot].name.ptr};
    tail.kind = span_names[slot].kind;
    tail.n_attributes = a->nt;
    tail.attributes = a->tenc;
    out = bound <= TAIL_MAX ? t->enc : a->api->palloc(a->r, bound);
    len = opentelemetry__proto__trace__v1__span_tail__pack(&tail, out);
    t->len = 0;
    if (out == t->enc) {
        t->nt = a->nt;
        memcpy(t->tkey, a->tkey, a->nt * sizeof(a->tkey[0]));
        t->len = len;
    }
    return (sl_str_t){(const char *)out, len};
}

/* Encode one span straight into the exporter's queue: its head packed by
 * protobuf-c, then its tail.  The room asked for is an upper bound of the
 * encoded size (the attributes are already encoded, the other lengths
 * known): protobuf-c then packs in one walk, without the walk that
 * computes the exact size first. */
static void
emit(otel_conf_t *c, span_slot_t slot, pb_span_t *s, attrs_t *a, const otel_req_t *q)
{
    sl_str_t tail = span_tail(a, slot);
    size_t bound = SPAN_OVERHEAD + a->bytes + a->n * ATTR_OVERHEAD + s->trace_state.len +
                   (s->status != NULL ? s->status->message.len : 0) + tail.len;
    uint8_t *out = otel_exporter_reserve(c, bound);
    size_t len;

    if (out == NULL)
        return;
    s->trace_id = (ProtobufCBinaryData){16, (uint8_t *)q->trace_id};
    s->n_attributes = a->n;
    s->attributes = a->enc;
    len = opentelemetry__proto__trace__v1__span_head__pack(s, out);
    memcpy(out + len, tail.ptr, tail.len);
    otel_exporter_commit(c, len + tail.len);
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
    pb_span_t s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN_HEAD__INIT;
    pb_status_t st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS_OUT__INIT;
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
    attr_cstr(&a, A_GENAI_OPERATION, ac ? ac->operation : "chat");
    if (provider != NULL) {
        attr_cstr(&a, A_GENAI_PROVIDER, provider_semconv(provider));
        attr_cstr(&a, A_GENAI_SYSTEM, provider);
    }
    if ((v = stat_str(api, r, "ai.proxy.meta.request_model")) != NULL)
        attr_cstr(&a, A_GENAI_REQ_MODEL, v);
    if ((v = stat_str(api, r, "ai.proxy.meta.response_model")) != NULL)
        attr_cstr(&a, A_GENAI_RESP_MODEL, v);
    if ((v = stat_str(api, r, "ai.proxy.meta.request_mode")) != NULL && strcmp(v, "stream") == 0)
        attr_bool(&a, A_GENAI_STREAM, 1);
    if (ac != NULL && ac->have_max_tokens)
        attr_int(&a, A_GENAI_MAX_TOKENS, ac->max_tokens);
    if (ac != NULL && ac->have_temperature)
        attr_double(&a, A_GENAI_TEMPERATURE, ac->temperature);
    if (ac != NULL && ac->have_top_p)
        attr_double(&a, A_GENAI_TOP_P, ac->top_p);
    if (ac != NULL && ac->have_top_k)
        attr_double(&a, A_GENAI_TOP_K, (double)ac->top_k);
    if (stat_int(api, r, "ai.proxy.usage.prompt_tokens", &n))
        attr_int(&a, A_GENAI_INPUT_TOKENS, n);
    if (stat_int(api, r, "ai.proxy.usage.completion_tokens", &n))
        attr_int(&a, A_GENAI_OUTPUT_TOKENS, n);
    if (stat_int(api, r, "ai.proxy.usage.prompt_tokens_details.cached_tokens", &n) && n > 0)
        attr_int(&a, A_GENAI_CACHE_READ, n);
    if (stat_int(api, r, "ai.proxy.usage.time_to_first_token", &n))
        attr_double(&a, A_GENAI_TTFC, (double)n / 1000.0);
    if (q->n_finish > 0)
        attr_str_array(&a, A_GENAI_FINISH, q->finish, q->n_finish);
    if (status >= 400) {
        snprintf(code, sizeof(code), "%d", status);
        attr_cstr(&a, A_ERROR_TYPE, code);
        st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        s.status = &st;
    }
    s.span_id = (ProtobufCBinaryData){8, id};
    s.parent_span_id = (ProtobufCBinaryData){8, q->root_id};
    s.flags = 0x100 | (q->sampled ? 1u : 0u);
    s.start_time_unix_nano = ns(start);
    s.end_time_unix_nano = ns(end);
    emit(c, SPAN_GEN_AI, &s, &a, q);
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
    pb_span_t s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN_HEAD__INIT;
    pb_status_t st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS_OUT__INIT;
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
    attr_str(&a, A_HTTP_METHOD, method);
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
    attr_str(&a, A_HTTP_URL, (sl_str_t){u, ulen});
    attr_str(&a, A_HTTP_HOST, host);
    attr_str(&a, A_HTTP_SCHEME, scheme);
    attr_str(&a, A_HTTP_FLAVOR, api->req_http_version(r));
    attr_str(&a, A_HTTP_CLIENT_IP, api->client_ip(r));
    attr_str(&a, A_NET_PEER_IP, api->client_ip(r));
    attr_str(&a, A_REQUEST_ID, api->req_id(r));
    if (status > 0)
        attr_int(&a, A_HTTP_STATUS, status);
    if (status >= 500 || (err != SL_REQERR_NONE && err != SL_REQERR_CLIENT_ABORT)) {
        st.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        s.status = &st;
    }
    s.span_id = (ProtobufCBinaryData){8, q->root_id};
    if (q->have_parent)
        s.parent_span_id = (ProtobufCBinaryData){8, q->parent_id};
    if (q->tracestate.len)
        s.trace_state = pstr(api, r, q->tracestate.ptr, q->tracestate.len);
    /* W3C flags, and "is the parent remote" known (and set when it is) */
    s.flags = 0x100 | (q->have_parent ? 0x200u : 0u) | (q->sampled ? 1u : 0u);
    s.start_time_unix_nano = ns(t_start);
    s.end_time_unix_nano = ns(t_end);
    emit(c, SPAN_ROOT, &s, &a, q);

    if (u_start == 0)
        return; /* the upstream was never contacted */
    if (u_end == 0 || u_end < u_start)
        u_end = t_end > u_start ? t_end : now;

    /* kong.balancer: one per try (balancer phase), else the whole exchange;
     * none without the balancer instrumentation */
    int n = !otel_node.balancer ? 0 : q->ntries > 0 ? q->ntries : 1;
    for (int i = 0; i < n; i++) {
        const otel_try_t *y = q->ntries > 0 ? &q->tries[i] : NULL;
        pb_span_t b = OPENTELEMETRY__PROTO__TRACE__V1__SPAN_HEAD__INIT;
        pb_status_t bst = OPENTELEMETRY__PROTO__TRACE__V1__STATUS_OUT__INIT;
        int last = i == n - 1;
        int64_t b_start = y && i > 0 ? y->start_us : u_start;
        int64_t b_end = y && !last && y->end_us ? y->end_us : u_end;
        int failed = y && !last && y->failure != 0;

        if (b_end < b_start)
            b_end = b_start;
        attrs_init(&a, api, r);
        attr_int(&a, A_TRY_COUNT, i + 1);
        if (y && y->ip[0])
            attr_cstr(&a, A_TRY_PEER_IP, y->ip);
        if (last &&
            api->upstream_get(r, &up_scheme, &up_host, &up_port, &up_path, &up_query) == 0) {
            attr_str(&a, A_TRY_PEER_NAME, up_host);
            attr_int(&a, A_TRY_PEER_PORT, up_port);
        }
        if (failed) {
            if (y->failure == SL_TRY_STATUS && y->status > 0)
                attr_int(&a, A_TRY_STATUS, y->status);
            bst.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            {
                const char *m = try_failure_name(y->failure);
                bst.message = (ProtobufCBinaryData){strlen(m), (uint8_t *)m};
            }
            b.status = &bst;
        } else if (last &&
                   (err == SL_REQERR_UPSTREAM_CONNECT || err == SL_REQERR_UPSTREAM_TIMEOUT ||
                    err == SL_REQERR_UPSTREAM_RESET || err == SL_REQERR_UPSTREAM_PROTOCOL)) {
            attr_int(&a, A_TRY_STATUS, status);
            bst.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
            b.status = &bst;
        }
        b.span_id = (ProtobufCBinaryData){8, (uint8_t *)(y ? y->span_id : q->balancer_id)};
        b.parent_span_id = (ProtobufCBinaryData){8, q->root_id};
        b.flags = 0x100 | (q->sampled ? 1u : 0u);
        b.start_time_unix_nano = ns(b_start);
        b.end_time_unix_nano = ns(b_end);
        emit(c, SPAN_BALANCER, &b, &a, q);
    }

    if (q->ai)
        gen_ai_span(api, r, c, q, u_start, u_end, status);
}
