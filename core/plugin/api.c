/* api.c - the host function table handed to plugins (sl_api_t).  Every
 * function here is a thin, checked accessor over sl_req_t: plugins never
 * see core structures, so the core may change them freely. */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/chars.h"
#include "base/log.h"
#include "base/shm.h"
#include "conf/config.h"
#include "conf/plugin_loader.h"
#include "conf/schema.h"
#include "conf/settings.h"
#include "http/http_server.h"
#include "http/proxy.h"
#include "plugin/host.h"
#include "plugin/phase.h"
#include "plugin/platform.h"
#include "plugin/serializer.h"
#include "plugin/status.h"

static const sl_plugin_inst_t *
cur_inst(sl_req_t *r)
{
    if (r == NULL || r->chain == NULL || r->cur < 0 || (size_t)r->cur >= r->chain->n)
        return NULL;
    return r->chain->items[r->cur];
}

static void
api_log(sl_req_t *r, sl_log_level_t level, const char *fmt, ...)
{
    const sl_plugin_inst_t *pi = cur_inst(r);
    char tag[128];
    va_list ap;

    if ((int)level < sl_log_level)
        return;
    if (r)
        snprintf(tag, sizeof(tag), "[%s] request %s:", pi ? pi->plugin->desc->name : "plugin",
                 r->id);
    else
        snprintf(tag, sizeof(tag), "[%s]", sl_api_plugin_name ? sl_api_plugin_name : "plugin");
    va_start(ap, fmt);
    sl_logv(level, tag, fmt, ap);
    va_end(ap);
}

static int
api_worker_id(void)
{
    return sl_host_worker_id();
}

static void *
api_palloc(sl_req_t *r, size_t n)
{
    return sl_palloc(r->pool, n);
}

static int
api_cleanup_add(sl_req_t *r, sl_cleanup_fn fn, void *arg)
{
    return sl_pool_cleanup_add(r->pool, fn, arg);
}

static void *
api_ctx_get(sl_req_t *r)
{
    if (r->plugin_ctx == NULL || r->cur < 0)
        return NULL;
    return r->plugin_ctx[r->cur];
}

static void
api_ctx_set(sl_req_t *r, void *ctx)
{
    if (r->plugin_ctx != NULL && r->cur >= 0)
        r->plugin_ctx[r->cur] = ctx;
}

static sl_str_t
api_plugin_id(sl_req_t *r)
{
    const sl_plugin_inst_t *pi = cur_inst(r);
    return pi ? sl_str_c(pi->id) : (sl_str_t){"", 0};
}

static int
api_plugin_scope(sl_req_t *r, sl_str_t *route_id, sl_str_t *service_id)
{
    const sl_plugin_inst_t *pi = cur_inst(r);

    if (pi == NULL)
        return -1;
    if (route_id)
        *route_id = pi->route ? sl_str_c(pi->route->id) : (sl_str_t){NULL, 0};
    if (service_id)
        *service_id = pi->service ? sl_str_c(pi->service->id) : (sl_str_t){NULL, 0};
    return 0;
}

static sl_str_t
api_req_id(sl_req_t *r)
{
    return (sl_str_t){r->id, 32};
}
static sl_str_t
api_req_method(sl_req_t *r)
{
    return r->method;
}
static sl_str_t
api_req_scheme(sl_req_t *r)
{
    return SL_STR("http");
}
static sl_str_t
api_req_host(sl_req_t *r)
{
    return r->host;
}
static sl_str_t
api_req_path(sl_req_t *r)
{
    return r->path;
}
static sl_str_t
api_req_query(sl_req_t *r)
{
    return r->query;
}

static sl_str_t
api_client_ip(sl_req_t *r)
{
    return sl_str_c(r->client_ip);
}

static int
hget(const sl_headers_t *h, sl_str_t name, sl_str_t *value)
{
    const sl_header_t *f = sl_headers_get(h, name);
    if (f == NULL)
        return 0;
    if (value)
        *value = f->value;
    return 1;
}

static int
hiter(const sl_headers_t *h, size_t *cursor, sl_str_t *name, sl_str_t *value)
{
    if (*cursor >= h->n)
        return 0;
    *name = h->items[*cursor].name;
    *value = h->items[*cursor].value;
    (*cursor)++;
    return 1;
}

static int
valid_name(sl_str_t n)
{
    if (n.len == 0 || n.ptr == NULL)
        return 0;
    for (size_t i = 0; i < n.len; i++)
        if (!sl_is_tchar((unsigned char)n.ptr[i]))
            return 0;
    return 1;
}

/* No CR, LF or NUL: what would split a header line or the request.  Eight
 * bytes at a time: (x - 0x01..) & ~x & 0x80.. is non-zero exactly when a
 * byte of x is zero, and x ^ 0x0d.. is zero where x had a CR. */
static int
valid_value(sl_str_t v)
{
    const uint64_t ones = 0x0101010101010101ull, highs = ones << 7;
    size_t i = 0;

    if (v.len && v.ptr == NULL)
        return 0;
    for (; i + 8 <= v.len; i += 8) {
        uint64_t x, cr, lf;
        memcpy(&x, v.ptr + i, 8);
        cr = x ^ (ones * '\r');
        lf = x ^ (ones * '\n');
        if ((((x - ones) & ~x) | ((cr - ones) & ~cr) | ((lf - ones) & ~lf)) & highs)
            return 0;
    }
    for (; i < v.len; i++)
        if (v.ptr[i] == '\r' || v.ptr[i] == '\n' || v.ptr[i] == '\0')
            return 0;
    return 1;
}

/* Host, path, query: no control characters or spaces either. */
static int
valid_target_part(sl_str_t v)
{
    if (v.len && v.ptr == NULL)
        return 0;
    for (size_t i = 0; i < v.len; i++)
        if ((unsigned char)v.ptr[i] <= ' ' || v.ptr[i] == 0x7f)
            return 0;
    return 1;
}

/* Request headers change until the request goes upstream, and in the
 * balancer phase before each try (a streamed body's head only until it
 * went out). */
static int
req_writable(sl_req_t *r)
{
    if (r->phase == SL_PHASE_BALANCER) /* (no proxy: the plugin test host) */
        return r->proxy == NULL || !sl_proxy_head_written(r->proxy);
    return r->state == SL_REQ_READING && !r->stream_body;
}

static int
api_req_header_get(sl_req_t *r, sl_str_t n, sl_str_t *v)
{
    return hget(&r->headers, n, v);
}
static int
api_req_header_set(sl_req_t *r, sl_str_t n, sl_str_t v)
{
    if (!valid_name(n) || !valid_value(v) || !req_writable(r))
        return -1;
    sl_headers_set(&r->headers, r->pool, n, v);
    return 0;
}
static int
api_req_header_add(sl_req_t *r, sl_str_t n, sl_str_t v)
{
    if (!valid_name(n) || !valid_value(v) || !req_writable(r))
        return -1;
    sl_headers_add(&r->headers, r->pool, n, v);
    return 0;
}
static int
api_req_header_remove(sl_req_t *r, sl_str_t n)
{
    if (!valid_name(n) || !req_writable(r))
        return -1;
    sl_headers_remove(&r->headers, n);
    return 0;
}
static int
api_req_headers_set(sl_req_t *r, const sl_str_t *names, const sl_str_t *values, size_t n)
{
    if ((n && (names == NULL || values == NULL)) || !req_writable(r))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!valid_name(names[i]) || !valid_value(values[i]))
            return -1;
    sl_headers_set_many(&r->headers, r->pool, names, values, n, 1);
    return 0;
}
/* since 1.7: checked once here, then applied without the checks */
static sl_header_block_t *
api_header_block_new(const sl_str_t *names, const sl_str_t *values, size_t n)
{
    if (n && (names == NULL || values == NULL))
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!valid_name(names[i]) || !valid_value(values[i]))
            return NULL;
    return sl_header_block_new(names, values, n);
}
static int
api_req_headers_apply(sl_req_t *r, const sl_header_block_t *b)
{
    if (b == NULL || !req_writable(r))
        return -1;
    sl_headers_apply(&r->headers, r->pool, b);
    return 0;
}
static int
api_req_header_iter(sl_req_t *r, size_t *c, sl_str_t *n, sl_str_t *v)
{
    return hiter(&r->headers, c, n, v);
}

static sl_str_t
api_req_body(sl_req_t *r)
{
    return (sl_str_t){r->body, r->body_len};
}

static int
api_req_body_set(sl_req_t *r, const char *data, size_t len)
{
    /* Only in the body phase: before it the body is still arriving (into
     * r->body), after it the bytes may be in a write libuv has queued. */
    if ((r->phase != SL_PHASE_BODY && r->phase != SL_PHASE_BALANCER) || r->stream_body ||
        !req_writable(r) || (len && data == NULL))
        return -1;
    char *nb = sl_xmalloc(len ? len : 1);
    if (len)
        memcpy(nb, data, len);
    sl_req_body_free(r);
    r->body = nb;
    r->body_len = r->body_cap = len;
    sl_req_body_count(r, len, 1); /* counted, never refused: the old one is gone */
    return 0;
}

static int
api_req_body_take(sl_req_t *r, char *data, size_t len)
{
    /* where req_body_set works, without its copy */
    if ((r->phase != SL_PHASE_BODY && r->phase != SL_PHASE_BALANCER) || r->stream_body ||
        !req_writable(r) || data == NULL)
        return -1;
    sl_req_body_free(r);
    r->body = data;
    r->body_len = r->body_cap = len;
    sl_req_body_count(r, len, 1); /* counted, never refused: the old one is gone */
    return 0;
}

static int
api_req_body_limit(sl_req_t *r, uint64_t max)
{
    if (r->body_complete || r->stream_body)
        return -1;
    if (max && (r->body_limit == 0 || max < r->body_limit))
        r->body_limit = max;
    return 0;
}

static int
api_upstream_get(sl_req_t *r, sl_str_t *scheme, sl_str_t *host, int *port, sl_str_t *path,
                 sl_str_t *query)
{
    if (scheme)
        *scheme = r->up_scheme;
    if (host)
        *host = r->up_host;
    if (port)
        *port = r->up_port;
    if (path)
        *path = r->up_path;
    if (query)
        *query = r->up_query;
    return 0;
}

static int
api_upstream_set(sl_req_t *r, sl_str_t scheme, sl_str_t host, int port, sl_str_t path,
                 sl_str_t query)
{
    if (!SL_STR_EQ(scheme, "http") && !SL_STR_EQ(scheme, "https"))
        return -1;
    if (host.len == 0 || port <= 0 || port > 65535 || path.len == 0 || path.ptr[0] != '/')
        return -1;
    if (!valid_target_part(host) || !valid_target_part(path) || !valid_target_part(query))
        return -1;
    if (!req_writable(r))
        return -1;
    r->up_scheme = SL_STR_EQ(scheme, "https") ? SL_STR("https") : SL_STR("http");
    r->up_host = (sl_str_t){sl_pstrndup(r->pool, host.ptr, host.len), host.len};
    r->up_port = port;
    r->up_path = (sl_str_t){sl_pstrndup(r->pool, path.ptr, path.len), path.len};
    r->up_query = (sl_str_t){sl_pstrndup(r->pool, query.ptr, query.len), query.len};
    r->up_has_query = query.len > 0;
    return 0;
}

static int
api_resp_status(sl_req_t *r)
{
    return r->status;
}
static int
api_resp_status_set(sl_req_t *r, int status)
{
    if (status < 100 || status > 999 || r->head_sent)
        return -1;
    r->status = status;
    return 0;
}
static int
api_resp_header_get(sl_req_t *r, sl_str_t n, sl_str_t *v)
{
    return hget(&r->resp_headers, n, v);
}
static int
api_resp_header_set(sl_req_t *r, sl_str_t n, sl_str_t v)
{
    if (r->head_sent || !valid_name(n) || !valid_value(v))
        return -1;
    sl_headers_set(&r->resp_headers, r->pool, n, v);
    return 0;
}
/* since 1.4: all or nothing, one pass over the response's fields. */
static int
api_resp_headers_set(sl_req_t *r, const sl_str_t *names, const sl_str_t *values, size_t n)
{
    if (r->head_sent || (n && (names == NULL || values == NULL)))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!valid_name(names[i]) || !valid_value(values[i]))
            return -1;
    sl_headers_set_many(&r->resp_headers, r->pool, names, values, n, 0);
    return 0;
}
static int
api_resp_header_add(sl_req_t *r, sl_str_t n, sl_str_t v)
{
    if (r->head_sent || !valid_name(n) || !valid_value(v))
        return -1;
    sl_headers_add(&r->resp_headers, r->pool, n, v);
    return 0;
}
static int
api_resp_header_remove(sl_req_t *r, sl_str_t n)
{
    if (r->head_sent || !valid_name(n))
        return -1;
    sl_headers_remove(&r->resp_headers, n);
    return 0;
}
static int
api_resp_header_iter(sl_req_t *r, size_t *c, sl_str_t *n, sl_str_t *v)
{
    return hiter(&r->resp_headers, c, n, v);
}
static sl_resp_source_t
api_resp_source(sl_req_t *r)
{
    return r->source;
}

static int
api_respond(sl_req_t *r, int status, sl_str_t ctype, sl_str_t body)
{
    if (r->head_sent || (r->state != SL_REQ_READING && r->phase != SL_PHASE_BALANCER) ||
        status < 100 || status > 999)
        return -1;
    if (!valid_value(ctype) || (body.len && body.ptr == NULL))
        return -1;
    if (r->phase == SL_PHASE_BALANCER && r->responded != SL_ANSWER_PLUGIN)
        r->resp_headers.n = 0; /* a rejected try's headers are not this answer's */
    r->status = status;
    if (ctype.len)
        sl_headers_set(&r->resp_headers, r->pool, SL_STR("Content-Type"), ctype);
    r->gw_body.ptr = sl_pstrndup(r->pool, body.ptr, body.len);
    r->gw_body.len = body.len;
    r->responded = SL_ANSWER_PLUGIN;
    return 0;
}

static int
api_resp_body_write(sl_req_t *r, const char *data, size_t len)
{
    if (!r->head_sent || r->state != SL_REQ_RESPONDING || r->conn == NULL)
        return -1;
    sl_req_write_body(r, data, len);
    return 0;
}

static sl_req_error_t
api_req_error(sl_req_t *r)
{
    return r->err;
}

/* ---- since 1.2: upstream selection and failover ---- */

static int
api_upstream_retries_set(sl_req_t *r, int retries)
{
    if (retries < 0 || retries > SL_SERVICE_MAX_RETRIES ||
        (r->phase != SL_PHASE_ACCESS && r->phase != SL_PHASE_BODY && r->phase != SL_PHASE_BALANCER))
        return -1;
    r->retries = retries;
    return 0;
}

static int
api_upstream_timeouts_set(sl_req_t *r, int connect_ms, int write_ms, int read_ms)
{
    const int max = 2147483646;

    if (connect_ms < 0 || write_ms < 0 || read_ms < 0 || connect_ms > max || write_ms > max ||
        read_ms > max ||
        (r->phase != SL_PHASE_ACCESS && r->phase != SL_PHASE_BODY && r->phase != SL_PHASE_BALANCER))
        return -1;
    if (connect_ms > 0)
        r->timeout_connect = connect_ms;
    if (write_ms > 0)
        r->timeout_write = write_ms;
    if (read_ms > 0)
        r->timeout_read = read_ms;
    return 0;
}

static int
api_upstream_retry(sl_req_t *r)
{
    /* without an exchange (the plugin test host, which drives the tries
     * itself: r->w->phase_done) only the phase and the response count */
    int can = r->proxy ? sl_proxy_can_retry(r->proxy) : r->w->phase_done != NULL;

    if (r->phase != SL_PHASE_HEADER_FILTER || r->source != SL_SOURCE_UPSTREAM || r->head_sent ||
        r->resp_bytes || !can)
        return -1;
    r->retry_asked = 1;
    return 0;
}

static int
api_resp_buffer(sl_req_t *r)
{
    if (r->head_sent)
        return -1;
    r->hold_head = 1;
    return 0;
}

static int64_t
api_req_time(sl_req_t *r, sl_time_point_t which)
{
    if ((int)which < 0 || which >= SL_TIME_MAX)
        return 0;
    return r->times[which];
}

static int64_t
api_now_us(void)
{
    return sl_now_us();
}

static int
api_set_serialize_value(sl_req_t *r, const char *key, sl_str_t json)
{
    return sl_serialize_set(r, key, json);
}

static int
api_set_serialize_string(sl_req_t *r, const char *key, sl_str_t value)
{
    return sl_serialize_set_string(r, key, value);
}

static int
api_set_serialize_typed(sl_req_t *r, const char *key, const sl_value_t *v)
{
    return sl_serialize_set_typed(r, key, v);
}

static int
api_serialize_value_get(sl_req_t *r, const char *key, sl_str_t *json)
{
    return sl_serialize_get(r, key, json);
}

static int
api_serialize_value_typed(sl_req_t *r, const char *key, sl_value_t *out)
{
    if (out == NULL)
        return 0;
    return sl_serialize_get_typed(r, key, out);
}

static int
api_serialize_value_keys(sl_req_t *r, const char *key, sl_str_t *names, size_t cap)
{
    return sl_serialize_keys(r, key, names, cap);
}

static int
api_chain_plugin_config(sl_req_t *r, const char *name, sl_str_t *json)
{
    const sl_chain_t *ch = r ? r->chain : NULL;

    if (ch == NULL || name == NULL)
        return 0;
    for (size_t i = 0; i < ch->n; i++) {
        const sl_plugin_inst_t *pi = ch->items[i];
        if (strcmp(pi->plugin->desc->name, name) == 0 && pi->conf_json != NULL) {
            *json = sl_str_c(pi->conf_json);
            return 1;
        }
    }
    return 0;
}

static int
api_log_serialize(sl_req_t *r, const char *const *redact, sl_str_t *out)
{
    return sl_serialize(r, redact, out);
}

static int
api_log_record(sl_req_t *r, const char *const *redact, sl_str_t *out)
{
    return sl_serialize_borrow(r, redact, out);
}

static void
timer_cb(uv_timer_t *h)
{
    sl_timer_t *t = h->data;

    if (!t->active || t->r == NULL)
        return;
    if (!uv_timer_get_repeat(h))
        t->active = 0;
    sl_req_t *r = t->r;
    int saved = r->cur;
    r->cur = t->plugin;
    t->fn(&sl_api, r, t->arg);
    r->cur = saved;
}

static sl_timer_t *
api_timer_start(sl_req_t *r, uint64_t timeout_ms, uint64_t repeat_ms, sl_timer_fn fn, void *arg)
{
    sl_timer_t *t;

    if (fn == NULL || r->state == SL_REQ_DONE)
        return NULL;
    t = sl_xcalloc(1, sizeof(*t));
    t->r = r;
    t->fn = fn;
    t->arg = arg;
    t->plugin = r->cur;
    t->active = 1;
    uv_timer_init(r->w->loop, &t->h);
    t->h.data = t;
    uv_timer_start(&t->h, timer_cb, timeout_ms, repeat_ms);
    t->next = r->timers;
    r->timers = t;
    return t;
}

static void
api_timer_stop(sl_timer_t *t)
{
    if (t == NULL)
        return;
    t->active = 0;
    uv_timer_stop(&t->h);
}

static uint64_t
api_reopen_generation(void)
{
    return sl_host_reopen_gen();
}

static void
api_log_ts(const char *tag, sl_log_level_t level, const char *fmt, ...)
{
    char t[128];
    va_list ap;

    /* sl_logv formats into a local buffer and writes once: thread-safe. */
    snprintf(t, sizeof(t), "[%s]", tag ? tag : "plugin");
    va_start(ap, fmt);
    sl_logv(level, t, fmt, ap);
    va_end(ap);
}

/* ---- since 1.1: shared memory (base/shm.c; zones declared through
 * conf/config_check.c while a configuration loads) ---- */

static int
api_shm_info(sl_shm_t *z, size_t index, sl_shm_info_t *out)
{
    return z ? sl_shm_zone_info(z, out) : sl_shm_zone_at(index, out);
}

/* ---- identity (since 1.1) ---- */

static int
entity_info(const char *id, const char *name, sl_str_t *oid, sl_str_t *oname)
{
    if (oid)
        *oid = sl_str_c(id);
    if (oname)
        *oname = name ? sl_str_c(name) : (sl_str_t){NULL, 0};
    return 1;
}

static int
api_route_info(sl_req_t *r, sl_str_t *id, sl_str_t *name)
{
    if (r->route == NULL)
        return 0;
    return entity_info(r->route->id, r->route->name, id, name);
}

static int
api_service_info(sl_req_t *r, sl_str_t *id, sl_str_t *name)
{
    if (r->service == NULL)
        return 0;
    return entity_info(r->service->id, r->service->name, id, name);
}

static const sl_consumer_t *
api_consumer_get(sl_req_t *r)
{
    return r->consumer;
}

static const sl_credential_t *
api_credential_get(sl_req_t *r)
{
    return r->credential;
}

static sl_str_t
opt_str(const char *s)
{
    return s ? sl_str_c(s) : (sl_str_t){NULL, 0};
}

static int
api_consumer_info(const sl_consumer_t *c, sl_str_t *id, sl_str_t *username, sl_str_t *custom_id)
{
    if (c == NULL)
        return -1;
    if (id)
        *id = sl_str_c(c->id);
    if (username)
        *username = opt_str(c->username);
    if (custom_id)
        *custom_id = opt_str(c->custom_id);
    return 0;
}

static int
api_credential_info(const sl_credential_t *cred, sl_str_t *id, const sl_consumer_t **owner)
{
    if (cred == NULL)
        return -1;
    if (id)
        *id = sl_str_c(cred->id);
    if (owner)
        *owner = cred->consumer;
    return 0;
}

static const sl_consumer_t *
api_consumer_find(sl_req_t *r, sl_str_t key)
{
    return sl_conf_consumer_find(r->w->conf, key);
}

static const sl_credential_t *
api_credential_find(sl_req_t *r, sl_str_t kind, sl_str_t secret)
{
    if (!SL_STR_EQ(kind, "keyauth"))
        return NULL;
    return sl_conf_keyauth_find(r->w->conf, secret);
}

/* Switch the request to `target` for every plugin after the caller: the
 * items up to r->cur (already run) stay, the rest comes from target. */
static void
chain_switch(sl_req_t *r, const sl_chain_t *target)
{
    const sl_chain_t *old = r->chain;
    const sl_plugin_inst_t *me = old->items[r->cur];
    size_t keep = (size_t)r->cur + 1, n = keep;
    sl_chain_t *ch;
    void **ctx;

    for (size_t i = 0; i < target->n; i++)
        n += sl_conf_chain_order(target->items[i], me) > 0;
    ch = sl_pcalloc(r->pool, sizeof(*ch));
    ch->items = sl_pcalloc(r->pool, n * sizeof(*ch->items));
    memcpy(ch->items, old->items, keep * sizeof(*ch->items));
    ch->n = keep;
    for (size_t i = 0; i < target->n; i++)
        if (sl_conf_chain_order(target->items[i], me) > 0)
            ch->items[ch->n++] = target->items[i];
    sl_conf_chain_flags(ch);
    /* contexts: the kept plugins keep theirs; later ones have not run yet */
    ctx = sl_pcalloc(r->pool, (ch->n ? ch->n : 1) * sizeof(void *));
    if (r->plugin_ctx)
        memcpy(ctx, r->plugin_ctx, keep * sizeof(void *));
    r->plugin_ctx = ctx;
    r->chain = ch;
}

static int
api_consumer_set(sl_req_t *r, const sl_consumer_t *c, const sl_credential_t *cred)
{
    const sl_conf_t *conf = r->w->conf;
    const sl_chain_t *target;
    sl_phase_t phase = r->phase;

    /* from a timer or callout callback while the caller's phase is paused
     * (an identity service's answer): that phase */
    if (r->cur >= 0 && phase == SL_PHASE_MAX)
        sl_pending_paused_phase(r, (size_t)r->cur, &phase);
    if (c == NULL || (cred && cred->consumer != c) || r->cur < 0 ||
        (phase != SL_PHASE_ACCESS && phase != SL_PHASE_BODY) || r->state != SL_REQ_READING)
        return -1;
    r->consumer = c;
    r->credential = cred;
    if (conf->nconsumer_plugins == 0 || r->route == NULL)
        return 0;
    target = sl_conf_consumer_chain(c, r->route);
    if (target == NULL)
        target = &r->route->chain;
    if (target != r->chain)
        chain_switch(r, target);
    return 0;
}

/* ---- config schemas (since 1.1) ---- */

static void
schema_err(void *ud, const char *path, const char *msg)
{
    sl_conf_ctx_error(ud, path, "%s", msg);
}

static int
api_conf_schema_parse(sl_conf_ctx_t *cx, const sl_schema_t *schema, const char *json, size_t len,
                      void **block)
{
    if (block == NULL)
        return -1;
    return sl_schema_parse(schema, json, len, schema_err, cx, &sl_api, cx, block);
}

/* ---- since 1.4 ---- */

static int
api_conf_schema_check(const sl_schema_t *schema, const char *json, size_t len, sl_schema_err_fn err,
                      void *ud, void **block)
{
    sl_schema_t s;

    if (block == NULL)
        return -1;
    *block = NULL;
    if (schema == NULL || json == NULL || err == NULL)
        return -1;
    s = *schema;
    s.check = NULL; /* it reports through a cx; there is none here */
    return sl_schema_parse(&s, json, len, err, ud, &sl_api, NULL, block);
}

/* ---- since 1.3 ---- */

static sl_str_t
api_req_http_version(sl_req_t *r)
{
    if (r == NULL)
        return (sl_str_t){NULL, 0};
    return r->http_minor == 0 ? SL_STR("1.0") : SL_STR("1.1");
}

const char *sl_api_plugin_name;

const sl_api_t sl_api = {
    .abi_major = SL_PLUGIN_ABI_MAJOR,
    .abi_minor = SL_PLUGIN_ABI_MINOR,
    .size = sizeof(sl_api_t),
    .host_version = SL_VERSION,
    .conf_error = sl_conf_ctx_error,
    .log = api_log,
    .worker_id = api_worker_id,
    .palloc = api_palloc,
    .cleanup_add = api_cleanup_add,
    .ctx_get = api_ctx_get,
    .ctx_set = api_ctx_set,
    .plugin_id = api_plugin_id,
    .req_id = api_req_id,
    .req_method = api_req_method,
    .req_scheme = api_req_scheme,
    .req_host = api_req_host,
    .req_path = api_req_path,
    .req_query = api_req_query,
    .client_ip = api_client_ip,
    .req_header_get = api_req_header_get,
    .req_header_set = api_req_header_set,
    .req_header_add = api_req_header_add,
    .req_header_remove = api_req_header_remove,
    .req_header_iter = api_req_header_iter,
    .req_body = api_req_body,
    .req_body_set = api_req_body_set,
    .upstream_get = api_upstream_get,
    .upstream_set = api_upstream_set,
    .resp_status = api_resp_status,
    .resp_status_set = api_resp_status_set,
    .resp_header_get = api_resp_header_get,
    .resp_header_set = api_resp_header_set,
    .resp_header_add = api_resp_header_add,
    .resp_header_remove = api_resp_header_remove,
    .resp_header_iter = api_resp_header_iter,
    .resp_source = api_resp_source,
    .respond = api_respond,
    .resp_body_write = api_resp_body_write,
    .req_error = api_req_error,
    .req_time = api_req_time,
    .now_us = api_now_us,
    .set_serialize_value = api_set_serialize_value,
    .log_serialize = api_log_serialize,
    .timer_start = api_timer_start,
    .timer_stop = api_timer_stop,
    .reopen_generation = api_reopen_generation,
    .log_ts = api_log_ts,
    .post = sl_host_post,
    .resp_buffer = api_resp_buffer,
    /* since 1.1: shared memory */
    .shm_zone = sl_conf_ctx_shm_zone,
    .shm_get = sl_shm_get,
    .shm_set = sl_shm_set,
    .shm_incr = sl_shm_incr,
    .shm_delete = sl_shm_delete,
    .shm_iter = sl_shm_iter,
    .shm_info = api_shm_info,
    /* since 1.1: platform */
    .pend = sl_api_pend,
    .resume = sl_api_resume,
    .worker_loop = sl_api_worker_loop,
    .worker_timer_start = sl_api_worker_timer_start,
    .worker_timer_stop = sl_api_worker_timer_stop,
    .callout = sl_api_callout,
    .callout_cancel = sl_api_callout_cancel,
    .callout_strerror = sl_api_callout_strerror,
    .route_info = api_route_info,
    .service_info = api_service_info,
    .consumer_get = api_consumer_get,
    .credential_get = api_credential_get,
    .consumer_info = api_consumer_info,
    .credential_info = api_credential_info,
    .consumer_find = api_consumer_find,
    .credential_find = api_credential_find,
    .consumer_set = api_consumer_set,
    .conf_schema_parse = api_conf_schema_parse,
    .conf_schema_free = sl_schema_free,
    /* since 1.1: introspection */
    .plugin_scope = api_plugin_scope,
    .serialize_value_get = api_serialize_value_get,
    .chain_plugin_config = api_chain_plugin_config,
    .req_body_limit = api_req_body_limit,
    .metrics_register = sl_conf_ctx_metrics_register,
    .node_status = sl_status_node,
    .req_stats = sl_serialize_stats,
    /* since 1.2: upstream selection and failover */
    .upstream_retries_set = api_upstream_retries_set,
    .upstream_retry = api_upstream_retry,
    .upstream_timeouts_set = api_upstream_timeouts_set,
    .upstream_health = sl_status_upstream_health,
    /* since 1.3: node settings and the request's protocol */
    .setting_get = sl_setting_text,
    .req_http_version = api_req_http_version,
    .shm_incr_many = sl_shm_incr_many,
    /* since 1.4: checking a part of a config */
    .conf_schema_check = api_conf_schema_check,
    .set_serialize_string = api_set_serialize_string,
    .resp_headers_set = api_resp_headers_set,
    .req_body_take = api_req_body_take,
    /* since 1.5 */
    .req_headers_set = api_req_headers_set,
    /* since 1.5: log record values without JSON text */
    .serialize_value_typed = api_serialize_value_typed,
    .serialize_value_keys = api_serialize_value_keys,
    /* since 1.6: log record values set without JSON text */
    .set_serialize_typed = api_set_serialize_typed,
    /* since 1.7: request headers prepared once */
    .header_block_new = api_header_block_new,
    .header_block_free = sl_header_block_free,
    .req_headers_apply = api_req_headers_apply,
    /* since 1.8: phases an instance does not need */
    .conf_phases_skip = sl_conf_ctx_phases_skip,
    /* since 1.8: the log record without its copy */
    .log_record = api_log_record,
};
