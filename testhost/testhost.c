/* testhost.c - libsluice-testhost (include/sluice/testhost.h): the server's
 * plugin host, config loader and request code driven without sockets, so a
 * plugin's phases can be unit-tested.  Phases are run one at a time through
 * a wrapper around the real chain runner; a phase that pauses is waited for
 * by running the loop until request.c would have gone on (the server's
 * phase_done hook reports it here instead). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/errors.h"
#include "base/log.h"
#include "conf/config.h"
#include "conf/plugin_loader.h"
#include "conf/settings.h"
#include "http/http_server.h"
#include "http/proxy.h"
#include "http/request.h"
#include "http/server.h"
#include "plugin/host.h"
#include "plugin/phase.h"
#include "plugin/platform.h"
#include "plugin/serializer.h"

#include <sluice/testhost.h>

#define SLT_API __attribute__((visibility("default")))

struct slt_host {
    uv_loop_t loop;
    sl_server_t srv;
    sl_settings_t settings;
    sl_plugin_registry_t reg;
    sl_conf_t *conf;
    sl_phase_ops_t ops;
};

struct slt_req {
    slt_host_t *h;
    sl_req_t *r;
    int routed, logged, resolved, upstream;
    sl_status_t last;
    sl_str_t out; /* last body_filter output */
};

/* slt_setting's list, applied by every slt_host_new */
#define SLT_MAX_SETTINGS 32
static char *set_names[SLT_MAX_SETTINGS], *set_values[SLT_MAX_SETTINGS];
static size_t nset;

static sl_status_t last_run; /* status of the last chain run */
static slt_req_t *waiting;   /* the request whose pause the loop waits for */

static sl_status_t
wrap_run(sl_req_t *r, sl_phase_t phase)
{
    return last_run = sl_phase_run(r, phase);
}

static void
phase_done(sl_req_t *r, sl_phase_t phase, sl_status_t st)
{
    if (waiting && waiting->r == r) {
        waiting->resolved = 1;
        waiting->last = st;
        /* The pause may end in the timers uv_run(UV_RUN_ONCE) runs before
         * it polls (a timer already due when the wait began); with no timer
         * left the poll would then block for good on the api->post async
         * handle.  A stopped loop polls without blocking. */
        uv_stop(r->w->loop);
    }
}

static void
each_plugin(slt_host_t *h, int init)
{
    for (size_t i = 0; i < h->conf->nplugins; i++) {
        sl_plugin_inst_t *pi = h->conf->plugins[i];
        const sl_plugin_t *d = pi->plugin->desc;
        if (!pi->enabled)
            continue;
        sl_api_plugin_name = d->name;
        if (init && d->init_worker && d->init_worker(&sl_api, pi->conf) != 0)
            sl_log_error("[%s] init_worker failed", d->name);
        else if (!init && d->exit_worker)
            d->exit_worker(&sl_api, pi->conf);
        sl_api_plugin_name = NULL;
    }
}

static char *
errors_text(sl_errors_t *e)
{
    size_t n = 1;
    char *s;

    for (size_t i = 0; i < e->n; i++)
        n += strlen(e->msgs[i]) + 1;
    s = malloc(n);
    if (s == NULL)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < e->n; i++) {
        strcat(s, e->msgs[i]);
        strcat(s, "\n");
    }
    return s;
}

SLT_API slt_host_t *
slt_host_new(const char *plugins_dir, const char *config, char **errors)
{
    slt_host_t *h = calloc(1, sizeof(*h));
    sl_errors_t errs = {0};

    if (errors)
        *errors = NULL;
    if (h == NULL || plugins_dir == NULL || config == NULL) {
        free(h);
        return NULL;
    }
    /* the node's settings first: config_parse may read them */
    sl_settings_defaults(&h->settings);
    for (size_t i = 0; i < nset; i++) {
        const char *err;
        sl_settings_set(&h->settings, set_names[i], set_values[i], &err);
    }
    sl_settings_publish(&h->settings);
    sl_plugins_load_dir(&h->reg, plugins_dir, &errs);
    if (errs.n == 0)
        h->conf =
            sl_conf_load_buffer("test config", config, strlen(config), &h->reg, &sl_api, &errs);
    if (errs.n || h->conf == NULL) {
        if (errors)
            *errors = errors_text(&errs);
        sl_errors_free(&errs);
        if (h->conf)
            sl_conf_free(h->conf);
        sl_plugins_free(&h->reg);
        sl_settings_free(&h->settings);
        free(h);
        return NULL;
    }
    sl_errors_free(&errs);
    uv_loop_init(&h->loop);
    h->ops = sl_plugin_phases;
    h->ops.run = wrap_run;
    h->srv.loop = &h->loop;
    h->srv.settings = &h->settings;
    h->srv.conf = h->conf;
    h->srv.phases = &h->ops;
    h->srv.phase_done = phase_done;
    h->srv.uppool = sl_uppool_new(&h->loop, NULL);
    sl_host_init(&h->loop, 0);
    sl_host_set_uppool(h->srv.uppool);
    each_plugin(h, 1);
    return h;
}

static void
close_walk(uv_handle_t *hd, void *arg)
{
    if (!uv_is_closing(hd))
        uv_close(hd, NULL);
}

SLT_API void
slt_host_free(slt_host_t *h)
{
    if (h == NULL)
        return;
    each_plugin(h, 0);
    sl_host_shutdown();
    sl_proxy_keep_free(&h->srv);
    sl_uppool_free(h->srv.uppool);
    uv_walk(&h->loop, close_walk, NULL);
    uv_run(&h->loop, UV_RUN_DEFAULT);
    uv_loop_close(&h->loop);
    sl_conf_free(h->conf);
    sl_plugins_free(&h->reg);
    sl_settings_free(&h->settings);
    free(h);
}

SLT_API const sl_api_t *
slt_api(void)
{
    return &sl_api;
}

SLT_API int
slt_setting(const char *name, const char *value)
{
    sl_settings_t probe;
    const char *err;
    int rc;

    if (name == NULL) {
        for (size_t i = 0; i < nset; i++) {
            free(set_names[i]);
            free(set_values[i]);
        }
        nset = 0;
        return 0;
    }
    if (value == NULL || nset == SLT_MAX_SETTINGS)
        return -1;
    sl_settings_defaults(&probe); /* checked now, applied by slt_host_new */
    rc = sl_settings_set(&probe, name, value, &err);
    sl_settings_free(&probe);
    if (rc != 0)
        return -1;
    set_names[nset] = strdup(name);
    set_values[nset] = strdup(value);
    if (set_names[nset] == NULL || set_values[nset] == NULL) {
        free(set_names[nset]);
        free(set_values[nset]);
        return -1;
    }
    nset++;
    return 0;
}

SLT_API void
slt_run_loop(slt_host_t *h, unsigned ms)
{
    uint64_t end = uv_now(&h->loop) + ms;

    do {
        uv_run(&h->loop, UV_RUN_NOWAIT);
        uv_sleep(1);
        uv_update_time(&h->loop);
    } while (uv_now(&h->loop) < end);
}

/* ---- requests ---------------------------------------------------------- */

SLT_API slt_req_t *
slt_req_new(slt_host_t *h, const char *method, const char *target)
{
    sl_conn_t fake;
    slt_req_t *t;
    sl_req_t *r;

    if (h == NULL || method == NULL || target == NULL || target[0] != '/')
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    memset(&fake, 0, sizeof(fake));
    fake.w = &h->srv;
    snprintf(fake.client_ip, sizeof(fake.client_ip), "127.0.0.1");
    fake.server_port = 8000;
    r = sl_req_new(&fake);
    r->conn = NULL;
    r->method = sl_str_c(sl_pstrndup(r->pool, method, strlen(method)));
    r->uri = (sl_str_t){sl_pstrndup(r->pool, target, strlen(target)), strlen(target)};
    r->http_major = 1;
    r->http_minor = 1;
    r->keepalive = 1;
    t->h = h;
    t->r = r;
    return t;
}

SLT_API sl_req_t *
slt_req_handle(slt_req_t *t)
{
    return t->r;
}

SLT_API int
slt_req_header(slt_req_t *t, const char *name, const char *value)
{
    sl_req_t *r = t->r;

    if (t->routed || name == NULL || value == NULL)
        return -1;
    sl_headers_add(&r->headers, r->pool,
                   (sl_str_t){sl_pstrndup(r->pool, name, strlen(name)), strlen(name)},
                   (sl_str_t){sl_pstrndup(r->pool, value, strlen(value)), strlen(value)});
    return 0;
}

SLT_API int
slt_req_body(slt_req_t *t, const char *data, size_t len)
{
    sl_req_t *r = t->r;
    char *b = sl_xmalloc(len ? len : 1);

    if (len)
        memcpy(b, data, len);
    free(r->body);
    r->body = b;
    r->body_len = r->body_cap = len;
    r->req_content_length = len;
    return 0;
}

/* A chain run that paused: run the loop until the plugin resumes it (or its
 * pending timeout answers). */
static int
wait_pause(slt_req_t *t, sl_status_t st)
{
    if (st != SL_STATUS_PENDING)
        return st;
    waiting = t;
    t->resolved = 0;
    while (!t->resolved && uv_run(&t->h->loop, UV_RUN_ONCE))
        ;
    waiting = NULL;
    if (!t->resolved)
        return SL_STATUS_ERROR; /* nothing left to wake it */
    t->r->paused = 0;
    return t->last;
}

SLT_API int
slt_access(slt_req_t *t)
{
    sl_req_t *r = t->r;

    if (t->routed)
        return -1;
    if (sl_headers_get(&r->headers, SL_STR("host")) == NULL)
        slt_req_header(t, "Host", "localhost"); /* HTTP/1.1 requires one */
    t->routed = 1;
    last_run = SL_STATUS_CONTINUE;
    r->discard_body = 0;
    sl_req_headers_done(r); /* routes, runs access */
    if (r->responded == SL_ANSWER_BAD_REQUEST || r->responded == SL_ANSWER_NO_ROUTE ||
        r->responded == SL_ANSWER_HTTPS_REQUIRED)
        return -1; /* the gateway answers by itself (400, 404, 426) */
    return wait_pause(t, last_run);
}

SLT_API int
slt_body(slt_req_t *t)
{
    sl_req_t *r = t->r;

    if (!t->routed || r->responded)
        return -1;
    r->body_complete = 1;
    sl_req_mark(r, SL_TIME_REQUEST_END);
    if (!r->chain->has_body)
        return SL_STATUS_CONTINUE;
    return wait_pause(t, wrap_run(r, SL_PHASE_BODY));
}

SLT_API int
slt_upstream_response(slt_req_t *t, int status, const char *const *headers)
{
    sl_req_t *r = t->r;

    if (status < 100 || status > 999)
        return -1;
    r->state = SL_REQ_PROXYING;
    r->retry_asked = 0;
    r->status = r->upstream_status = status;
    r->source = SL_SOURCE_UPSTREAM;
    r->resp_headers.n = 0;
    for (size_t i = 0; headers && headers[i] && headers[i + 1]; i += 2)
        sl_headers_add(
            &r->resp_headers, r->pool,
            (sl_str_t){sl_pstrndup(r->pool, headers[i], strlen(headers[i])), strlen(headers[i])},
            (sl_str_t){sl_pstrndup(r->pool, headers[i + 1], strlen(headers[i + 1])),
                       strlen(headers[i + 1])});
    t->upstream = 1;
    return 0;
}

SLT_API int
slt_balancer(slt_req_t *t, const sl_try_info_t *ti)
{
    sl_req_t *r = t->r;
    sl_try_info_t first = {.try_number = 1, .retries_left = r->retries};
    int ran = 0;

    if (!t->routed || r->responded || t->h->ops.balancer == NULL)
        return -1;
    r->state = SL_REQ_PROXYING;
    r->retry_asked = 0;
    return last_run = t->h->ops.balancer(r, ti ? ti : &first, &ran);
}

SLT_API int
slt_retry_asked(slt_req_t *t)
{
    return t->r->retry_asked;
}

SLT_API int
slt_header_filter(slt_req_t *t)
{
    sl_req_t *r = t->r;

    if (!t->upstream)
        r->source = SL_SOURCE_GATEWAY;
    if (r->status == 0)
        r->status = 200;
    return wrap_run(r, SL_PHASE_HEADER_FILTER);
}

SLT_API int
slt_body_filter(slt_req_t *t, const char *chunk, size_t len, int eof, const char **out,
                size_t *out_len)
{
    sl_status_t st = sl_phase_body_filter(t->r, (sl_str_t){chunk, len}, eof, &t->out);

    if (out)
        *out = t->out.ptr;
    if (out_len)
        *out_len = t->out.len;
    return st;
}

SLT_API void
slt_log(slt_req_t *t)
{
    sl_req_t *r = t->r;

    if (t->logged)
        return;
    t->logged = 1;
    r->state = SL_REQ_DONE;
    sl_req_mark(r, SL_TIME_RESPONSE_END);
    sl_phase_log(r);
}

SLT_API void
slt_req_free(slt_req_t *t)
{
    if (t == NULL)
        return;
    slt_log(t);
    sl_req_free(t->r);
    free(t);
}

/* ---- inspecting -------------------------------------------------------- */

static const char *
cstr(sl_req_t *r, sl_str_t s)
{
    return sl_pstrndup(r->pool, s.ptr ? s.ptr : "", s.len);
}

SLT_API int
slt_status(slt_req_t *t)
{
    return t->r->status;
}

SLT_API const char *
slt_resp_header(slt_req_t *t, const char *name)
{
    const sl_header_t *f = sl_headers_get(&t->r->resp_headers, sl_str_c(name));
    return f ? cstr(t->r, f->value) : NULL;
}

SLT_API const char *
slt_req_header_get(slt_req_t *t, const char *name)
{
    const sl_header_t *f = sl_headers_get(&t->r->headers, sl_str_c(name));
    return f ? cstr(t->r, f->value) : NULL;
}

SLT_API const char *
slt_resp_body(slt_req_t *t, size_t *len)
{
    if (len)
        *len = t->r->gw_body.len;
    return cstr(t->r, t->r->gw_body);
}

SLT_API const char *
slt_req_body_get(slt_req_t *t, size_t *len)
{
    if (len)
        *len = t->r->body_len;
    return cstr(t->r, (sl_str_t){t->r->body, t->r->body_len});
}

SLT_API const char *
slt_upstream_url(slt_req_t *t)
{
    sl_req_t *r = t->r;
    size_t n = r->up_scheme.len + r->up_host.len + r->up_path.len + r->up_query.len + 32;
    char *s = sl_palloc(r->pool, n);

    if (r->up_host.len == 0)
        return NULL;
    snprintf(s, n, "%.*s://%.*s:%d%.*s%s%.*s", (int)r->up_scheme.len, r->up_scheme.ptr,
             (int)r->up_host.len, r->up_host.ptr, r->up_port, (int)r->up_path.len, r->up_path.ptr,
             r->up_query.len ? "?" : "", (int)r->up_query.len, r->up_query.ptr);
    return s;
}

SLT_API sl_req_error_t
slt_req_error(slt_req_t *t)
{
    return t->r->err;
}

SLT_API const char *
slt_log_record(slt_req_t *t)
{
    sl_str_t out;

    if (sl_serialize(t->r, NULL, &out) != 0)
        return NULL;
    return cstr(t->r, out);
}

SLT_API const char *
slt_serialize_value(slt_req_t *t, const char *key)
{
    sl_str_t v;

    if (sl_serialize_get(t->r, key, &v) != 1)
        return NULL;
    return cstr(t->r, v);
}
