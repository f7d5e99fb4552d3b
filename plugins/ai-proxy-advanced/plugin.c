/* plugin.c - the ai-proxy-advanced plugin: descriptor and phase glue.
 *
 * A target is one ai-proxy instance: this file compiles ai-proxy's own glue
 * (../ai-proxy/plugin.c, its descriptor renamed and kept static) and calls
 * its phases with the chosen target's config, through a copy of the host's
 * function table whose ctx_get/ctx_set keep ai-proxy's per-request context
 * inside ours (and whose req_body gives the client's original body back
 * when a retry translates it again for another target).
 *   access         ai-proxy's endpoint checks (404/405, count_tokens)
 *   body           select the group (aliases, scenarios), pick a target,
 *                  set its upstream and credentials, translate for it
 *   balancer       (ABI 1.2) before a retry: count the failure, pick the
 *                  next target, translate the original body again for it
 *   header_filter  a 429/5xx in failover_criteria is rejected
 *                  (api->upstream_retry, ABI 1.2) before any byte is sent;
 *                  else ai-proxy's header filter; breaker success
 *   body_filter    ai-proxy's
 *   log            ai-proxy's, then latency, usage and in-flight counters
 * Balancer state (round-robin position, breaker, latency, usage, in-flight
 * requests) lives in one shared-memory zone, so every worker of the node
 * sees the same state.
 */

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sluice/plugin.h"

/* ai-proxy's glue, with its descriptor kept private to this file */
#undef SL_PLUGIN_EXPORT
#define SL_PLUGIN_EXPORT static
#define sluice_plugin sl_aa_inner
#include "../ai-proxy/plugin.c"
#undef sluice_plugin
#undef SL_PLUGIN_EXPORT
#define SL_PLUGIN_EXPORT SL_ATTR_VISIBLE

#include "aa.h"

#define SL_AA_ZONE "ai-proxy-advanced"
#define SL_AA_ZONE_SIZE (2u * 1024 * 1024)
#define SL_AA_ZONE_VALUE 64
#define SL_AA_LAT_TAU_US 10e6 /* latency EWMA decay: 10 s */

typedef struct sl_aa_ctx {
    sl_ap_ctx_t *inner; /* ai-proxy's context (via the shim's ctx_set) */
    int group;
    int target; /* current target, -1 none */
    int tries;
    int probe;           /* the current try is a half-open probe */
    int inflight;        /* least-connections: counted for `target` */
    int replay;          /* req_body gives `orig` back (a retry's translation) */
    int accepted;        /* the target's answer went to the client */
    sl_ap_conf_t *tconf; /* the current target's ai-proxy config (pool) */
    sl_str_t model;      /* the request's model (pool, NUL-terminated) */
    sl_ap_buf_t orig;    /* the client's body, kept for retries */
    uint8_t tried[1024 / 8];
    int64_t t_try; /* when the current try started (us) */
} sl_aa_ctx_t;

/* ------------------------------------------------------- the host shim */

static const sl_api_t *sl_aa_real;
static sl_api_t sl_aa_shim;

static void *
sl_aa_shim_ctx_get(sl_req_t *r)
{
    sl_aa_ctx_t *m = sl_aa_real->ctx_get(r);

    return m ? m->inner : NULL;
}

static void
sl_aa_shim_ctx_set(sl_req_t *r, void *ctx)
{
    sl_aa_ctx_t *m = sl_aa_real->ctx_get(r);

    if (m) {
        m->inner = ctx;
    }
}

static sl_str_t
sl_aa_shim_req_body(sl_req_t *r)
{
    sl_aa_ctx_t *m = sl_aa_real->ctx_get(r);

    if (m && m->replay) {
        return (sl_str_t){m->orig.ptr ? m->orig.ptr : "", m->orig.len};
    }
    return sl_aa_real->req_body(r);
}

static const sl_api_t *
sl_aa_api(const sl_api_t *api)
{
    if (sl_aa_real != api) {
        size_t n = api->size < sizeof(sl_aa_shim) ? api->size : sizeof(sl_aa_shim);

        memset(&sl_aa_shim, 0, sizeof(sl_aa_shim));
        memcpy(&sl_aa_shim, api, n);
        sl_aa_shim.ctx_get = sl_aa_shim_ctx_get;
        sl_aa_shim.ctx_set = sl_aa_shim_ctx_set;
        sl_aa_shim.req_body = sl_aa_shim_req_body;
        sl_aa_real = api;
    }
    return &sl_aa_shim;
}

/* ------------------------------------------------------- shared state */

static int
sl_aa_key(char *buf, size_t cap, const sl_aa_conf_t *c, const char *what, int i)
{
    return snprintf(buf, cap, "%016llx:%s:%d", (unsigned long long)c->id, what, i);
}

static double
sl_aa_num(const sl_api_t *api, const sl_aa_conf_t *c, const char *what, int i)
{
    char k[64];
    double v = 0;
    int n = sl_aa_key(k, sizeof(k), c, what, i);

    if (c->zone == NULL ||
        api->shm_get(c->zone, (sl_str_t){k, (size_t)n}, NULL, 0, NULL, &v) != SL_SHM_NUMBER) {
        return 0;
    }
    return v;
}

static double
sl_aa_incr(const sl_api_t *api, const sl_aa_conf_t *c, const char *what, int i, double d,
           uint64_t ttl)
{
    char k[64];
    double v = 0;
    int n = sl_aa_key(k, sizeof(k), c, what, i);

    if (c->zone == NULL || api->shm_incr(c->zone, (sl_str_t){k, (size_t)n}, d, ttl, &v) != 0) {
        return 0;
    }
    return v;
}

/* two int64 in one string entry ("a b"), for values set, not added */
static int
sl_aa_pair_get(const sl_api_t *api, const sl_aa_conf_t *c, const char *what, int i, int64_t *a,
               int64_t *b)
{
    char k[64], v[SL_AA_ZONE_VALUE + 1];
    size_t len = 0;
    int n = sl_aa_key(k, sizeof(k), c, what, i);
    long long x = 0, y = 0;

    *a = *b = 0;
    if (c->zone == NULL || api->shm_get(c->zone, (sl_str_t){k, (size_t)n}, v, sizeof(v) - 1, &len,
                                        NULL) != SL_SHM_STRING) {
        return 0;
    }
    v[len] = '\0';
    if (sscanf(v, "%lld %lld", &x, &y) != 2) {
        return 0;
    }
    *a = x;
    *b = y;
    return 1;
}

static void
sl_aa_pair_set(const sl_api_t *api, const sl_aa_conf_t *c, const char *what, int i, int64_t a,
               int64_t b)
{
    char k[64], v[64];
    int n = sl_aa_key(k, sizeof(k), c, what, i);
    int m = snprintf(v, sizeof(v), "%lld %lld", (long long)a, (long long)b);

    if (c->zone) {
        api->shm_set(c->zone, (sl_str_t){k, (size_t)n}, (sl_str_t){v, (size_t)m}, 0);
    }
}

/* The breaker's state of target i: fails (number), "last_fail_ms probe_ms". */
static void
sl_aa_cb_load(const sl_api_t *api, const sl_aa_conf_t *c, int i, sl_aa_cb_t *s)
{
    s->fails = (int64_t)sl_aa_num(api, c, "f", i);
    s->last_fail_ms = s->probe_ms = 0;
    if (s->fails >= c->bal.max_fails) {
        sl_aa_pair_get(api, c, "t", i, &s->last_fail_ms, &s->probe_ms);
    }
}

static void
sl_aa_record_failure(const sl_api_t *api, const sl_aa_conf_t *c, int i)
{
    int64_t now = api->now_us() / 1000;

    if (c->bal.max_fails <= 0) {
        return;
    }
    sl_aa_incr(api, c, "f", i, 1, 0);
    sl_aa_pair_set(api, c, "t", i, now, 0);
}

static void
sl_aa_record_success(const sl_api_t *api, const sl_aa_conf_t *c, int i)
{
    sl_aa_cb_t s;
    char k[64];
    int n;

    if (c->bal.max_fails <= 0) {
        return;
    }
    s.fails = (int64_t)sl_aa_num(api, c, "f", i);
    if (s.fails == 0) {
        return;
    }
    sl_aa_pair_get(api, c, "t", i, &s.last_fail_ms, &s.probe_ms);
    sl_aa_cb_success(&s, api->now_us() / 1000, c->bal.max_fails, c->bal.fail_timeout);
    if (s.fails == 0) {
        n = sl_aa_key(k, sizeof(k), c, "f", i);
        api->shm_delete(c->zone, (sl_str_t){k, (size_t)n});
    }
}

/* ---------------------------------------------------------------- pick */

static int
sl_aa_tried(const sl_aa_ctx_t *m, int i)
{
    return (m->tried[i / 8] >> (i % 8)) & 1;
}

/* Choose the target for the next try of group m->group; -1 none up. */
static int
sl_aa_choose(const sl_api_t *api, sl_req_t *r, const sl_aa_conf_t *c, sl_aa_ctx_t *m)
{
    const sl_aa_group_t *g = &c->g[m->group];
    sl_aa_view_t view[64], *v = view;
    int64_t now_ms = api->now_us() / 1000;
    uint64_t seq;
    uint32_t hash, rnd;
    int t = -1;

    if (c->nt > sizeof(view) / sizeof(view[0])) {
        v = api->palloc(r, c->nt * sizeof(*v));
    }
    for (size_t k = 0; k < g->n; k++) {
        int i = g->idx[k];
        sl_aa_cb_t s;

        memset(&v[i], 0, sizeof(v[i]));
        v[i].up = 1;
        v[i].tried = (uint8_t)sl_aa_tried(m, i);
        if (c->bal.max_fails > 0) {
            sl_aa_cb_load(api, c, i, &s);
            v[i].up = (uint8_t)sl_aa_cb_allow(&s, now_ms, c->bal.max_fails, c->bal.fail_timeout);
        }
        switch (c->bal.algorithm) {
        case SL_AA_ALG_LOWEST_LATENCY: {
            int64_t a, b;
            v[i].latency = sl_aa_pair_get(api, c, "l", i, &a, &b) ? (double)a : 0;
            break;
        }
        case SL_AA_ALG_LOWEST_USAGE:
            v[i].usage = sl_aa_num(api, c, "u", i);
            break;
        case SL_AA_ALG_LEAST_CONNECTIONS:
            v[i].inflight = sl_aa_num(api, c, "c", i);
            break;
        default:
            break;
        }
    }
    seq = (uint64_t)sl_aa_incr(api, c, "s", m->group, 1, 0);
    rnd = (uint32_t)(seq * 2654435761u) ^ (uint32_t)api->now_us();
    hash = (uint32_t)seq * 2654435761u;
    if (c->bal.algorithm == SL_AA_ALG_CONSISTENT_HASHING) {
        sl_str_t hv;

        if (api->req_header_get(r, (sl_str_t){c->bal.hash_on_header, strlen(c->bal.hash_on_header)},
                                &hv) == 1) {
            hash = sl_aa_hash(hv.ptr, hv.len);
        }
    }
    for (int round = 0; round < 4; round++) {
        sl_aa_cb_t s;

        t = sl_aa_pick(c, g, v, seq, hash, rnd);
        m->probe = 0;
        if (t < 0 || c->bal.max_fails <= 0) {
            break;
        }
        sl_aa_cb_load(api, c, t, &s);
        if (sl_aa_cb_state(&s, now_ms, c->bal.max_fails, c->bal.fail_timeout) !=
            SL_AA_CB_HALF_OPEN) {
            break;
        }
        /* half-open: one probe; claimed atomically for this open period */
        {
            char what[48];

            snprintf(what, sizeof(what), "p%lld", (long long)s.last_fail_ms);
            if (sl_aa_incr(api, c, what, t, 1, (uint64_t)c->bal.fail_timeout) == 1) {
                sl_aa_pair_set(api, c, "t", t, s.last_fail_ms, now_ms);
                m->probe = 1;
                break;
            }
        }
        v[t].up = 0;
        t = -1;
    }
    return t;
}

/* Target t's ai-proxy config for this request (pool): the request's model
 * is accepted as an alias (the group was chosen by it), and ai-proxy's
 * context follows it. */
static sl_ap_conf_t *
sl_aa_tconf(const sl_api_t *api, sl_req_t *r, const sl_aa_conf_t *c, sl_aa_ctx_t *m, int t)
{
    sl_ap_conf_t *tc = api->palloc(r, sizeof(*tc));

    *tc = *c->t[t].ap;
    tc->t.model_alias = m->model.len ? (char *)m->model.ptr : NULL;
    if (m->inner) {
        m->inner->conf = tc;
        m->inner->t = &tc->t;
    }
    return tc;
}

/* Point the request at target t: upstream, credentials, translation. */
static sl_status_t
sl_aa_use_target(const sl_api_t *api, sl_req_t *r, const sl_aa_conf_t *c, sl_aa_ctx_t *m, int t)
{
    const sl_api_t *sh = sl_aa_api(api);
    const sl_ap_conf_t *prev = m->tconf;
    sl_ap_conf_t *tc;

    tc = sl_aa_tconf(api, r, c, m, t);
    if (prev && prev->t.header_name && tc->t.header_name &&
        strcasecmp(prev->t.header_name, tc->t.header_name) != 0) {
        api->req_header_remove(r, (sl_str_t){prev->t.header_name, strlen(prev->t.header_name)});
    }
    m->tconf = tc;
    m->target = t;
    m->tries++;
    m->tried[t / 8] |= (uint8_t)(1u << (t % 8));
    m->t_try = api->now_us();
    if (c->bal.algorithm == SL_AA_ALG_LEAST_CONNECTIONS) {
        sl_aa_incr(api, c, "c", t, 1, 0);
        m->inflight = 1;
    }
    if (m->inner) {
        m->inner->translated = 0;
    }
#if SL_PLUGIN_ABI_MINOR >= 2
    /* balancer.*_timeout for this try (Kong's, instead of the service's) */
    if (api->abi_minor >= 2 &&
        api->size >=
            offsetof(sl_api_t, upstream_timeouts_set) + sizeof(api->upstream_timeouts_set) &&
        api->upstream_timeouts_set != NULL) {
        api->upstream_timeouts_set(r, (int)c->bal.connect_timeout, (int)c->bal.write_timeout,
                                   (int)c->bal.read_timeout);
    }
#endif
    if (sl_ap_set_upstream(api, r, &tc->t) != 0) {
        return SL_STATUS_ERROR;
    }
    sl_ap_set_auth(api, r, &tc->t);
    return sl_aa_inner.body(sh, r, tc);
}

/* ------------------------------------------------------------ config */

typedef struct {
    const sl_api_t *api;
    sl_conf_ctx_t *cx;
} sl_aa_ud_t;

static void
sl_aa_conf_err(void *ud, const char *field, const char *msg)
{
    sl_aa_ud_t *u = ud;

    u->api->conf_error(u->cx, field, "%s", msg);
}

static int
sl_aa_config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len,
                   void **conf)
{
    sl_aa_ud_t ud = {api, cx};
    sl_aa_conf_t *c = NULL;
    int rc;

    sl_ap_conf_host(api); /* each target is checked as an ai-proxy config */
    rc = sl_aa_conf_parse(json, len, &c, sl_aa_conf_err, &ud);

    if (rc == -2) {
        api->conf_error(cx, "", "out of memory");
    }
    if (rc != 0) {
        return -1;
    }
    if (api->abi_minor >= 1 && api->shm_zone != NULL) {
        c->zone = api->shm_zone(cx, SL_AA_ZONE, SL_AA_ZONE_SIZE, SL_AA_ZONE_VALUE);
        if (c->zone == NULL) {
            sl_aa_conf_free(c);
            return -1;
        }
    }
    *conf = c;
    return 0;
}

static void
sl_aa_config_free(void *conf)
{
    sl_aa_conf_free(conf);
}

/* ------------------------------------------------------------ phases */

static void
sl_aa_ctx_free(void *arg)
{
    sl_aa_ctx_t *m = arg;

    sl_ap_buf_free(&m->orig);
}

static sl_status_t
sl_aa_access(const sl_api_t *api, sl_req_t *r, void *conf_)
{
    const sl_aa_conf_t *c = conf_;
    const sl_api_t *sh = sl_aa_api(api);
    sl_aa_ctx_t *m = api->palloc(r, sizeof(*m));

    memset(m, 0, sizeof(*m));
    m->target = -1;
    m->group = -1;
    if (api->cleanup_add(r, sl_aa_ctx_free, m) != 0) {
        return SL_STATUS_ERROR;
    }
    api->ctx_set(r, m);
    /* endpoints, methods and the body limit are ai-proxy's, the same for
     * every target (llm_format and max_request_body_size are top-level) */
    return sl_aa_inner.access(sh, r, c->t[0].ap);
}

static sl_status_t
sl_aa_body(const sl_api_t *api, sl_req_t *r, void *conf_)
{
    const sl_aa_conf_t *c = conf_;
    const sl_api_t *sh = sl_aa_api(api);
    sl_aa_ctx_t *m = api->ctx_get(r);
    sl_str_t body = api->req_body(r);
    sl_aa_sel_t sel;
    sl_jdoc_t doc = {0};
    int rc, t;

    if (m == NULL || m->inner == NULL || m->inner->responded ||
        (m->inner->endpoint != SL_AP_EP_CHAT && m->inner->endpoint != SL_AP_EP_COUNT)) {
        return sl_aa_inner.body(sh, r, c->t[0].ap);
    }
    if (c->max_request_body_size > 0 && body.len > (size_t)c->max_request_body_size) {
        return sl_aa_inner.body(sh, r, c->t[0].ap); /* its 413 */
    }
    rc = sl_aa_select_body(c, body.ptr, body.len, &sel);
    if (rc == 1) {
        rc = sl_json_parse(&doc, body.ptr, body.len);
        if (rc == -2) {
            sl_json_free(&doc);
            return SL_STATUS_ERROR;
        }
        if (rc != 0) {
            sl_json_free(&doc);
            return sl_aa_inner.body(sh, r, c->t[0].ap); /* its 400 naming the offset */
        }
        rc = sl_aa_select(c, &doc, &sel);
        sl_json_free(&doc);
    }
    if (rc != 0) {
        return sl_ap_respond_error(api, r, m->inner, sel.status, sel.errmsg);
    }
    m->group = sel.group;
    if (sel.model[0]) {
        size_t n = strlen(sel.model);
        char *p = api->palloc(r, n + 1);

        memcpy(p, sel.model, n + 1);
        m->model = (sl_str_t){p, n};
    }
    if (m->inner->endpoint == SL_AP_EP_COUNT) {
        /* count_tokens refuses what the group's first target would refuse */
        sl_ap_conf_t *tc = sl_aa_tconf(api, r, c, m, c->g[m->group].idx[0]);

        return sl_aa_inner.body(sh, r, tc);
    }
    t = sl_aa_choose(api, r, c, m);
    if (t < 0) {
        return sl_ap_respond_error(api, r, m->inner, 503,
                                   "no target available: every target of this model is out "
                                   "(circuit breaker open)");
    }
#if SL_PLUGIN_ABI_MINOR >= 2
    if (c->bal.retries > 0 && c->g[m->group].n > 0 && api->abi_minor >= 2) {
        sl_ap_buf_add(&m->orig, body.ptr, body.len); /* a retry translates it again */
        if (m->orig.oom) {
            return SL_STATUS_ERROR;
        }
        api->upstream_retries_set(r, (int)c->bal.retries);
    }
#endif
    return sl_aa_use_target(api, r, c, m, t);
}

static int
sl_aa_status_bit(int status)
{
    switch (status) {
    case 403:
        return SL_AA_FO_HTTP_403;
    case 404:
        return SL_AA_FO_HTTP_404;
    case 429:
        return SL_AA_FO_HTTP_429;
    case 500:
        return SL_AA_FO_HTTP_500;
    case 502:
        return SL_AA_FO_HTTP_502;
    case 503:
        return SL_AA_FO_HTTP_503;
    case 504:
        return SL_AA_FO_HTTP_504;
    default:
        return 0;
    }
}

/* Does this status count against the target's breaker?  403/404 never do
 * (Kong); 429 and 5xx when failover_criteria lists them. */
static int
sl_aa_status_fails(const sl_aa_conf_t *c, int status)
{
    int bit = sl_aa_status_bit(status);

    return bit && bit != SL_AA_FO_HTTP_403 && bit != SL_AA_FO_HTTP_404 && (c->bal.failover & bit);
}

static void
sl_aa_release(const sl_api_t *api, const sl_aa_conf_t *c, sl_aa_ctx_t *m)
{
    if (m->inflight) {
        sl_aa_incr(api, c, "c", m->target, -1, 0);
        m->inflight = 0;
    }
}

#if SL_PLUGIN_ABI_MINOR >= 2
/* Before every try: the first was prepared in body; a retry counts the
 * failure, picks the next target and translates the client's body again. */
static sl_status_t
sl_aa_balancer(const sl_api_t *api, sl_req_t *r, void *conf_, const sl_try_info_t *ti)
{
    const sl_aa_conf_t *c = conf_;
    sl_aa_ctx_t *m = api->ctx_get(r);
    unsigned need = 0;
    sl_status_t st;
    int t;

    if (m == NULL || m->target < 0 || ti->try_number <= 1) {
        return SL_STATUS_CONTINUE;
    }
    switch (ti->failure) {
    case SL_TRY_CONNECT_FAILED:
    case SL_TRY_WRITE_FAILED:
    case SL_TRY_RESET:
        need = SL_AA_FO_ERROR;
        break;
    case SL_TRY_CONNECT_TIMEOUT:
    case SL_TRY_TIMEOUT:
        need = SL_AA_FO_TIMEOUT;
        break;
    case SL_TRY_INVALID_RESPONSE:
        need = SL_AA_FO_INVALID_HEADER;
        break;
    case SL_TRY_STATUS:
        need = (unsigned)sl_aa_status_bit(ti->status); /* counted in header_filter */
        break;
    default:
        break;
    }
    if (ti->failure != SL_TRY_STATUS) {
        sl_aa_record_failure(api, c, m->target); /* error, timeout, invalid_header always count */
    }
    sl_aa_release(api, c, m);
    if (!(c->bal.failover & need) ||
        (ti->may_have_reached && !(c->bal.failover & SL_AA_FO_NON_IDEMPOTENT)) ||
        m->orig.ptr == NULL) {
        return SL_STATUS_ERROR; /* the host answers that failure's 502/504 */
    }
    t = sl_aa_choose(api, r, c, m);
    if (t < 0) {
        return SL_STATUS_ERROR;
    }
    api->log(r, SL_LOG_INFO, "ai-proxy-advanced: try %d on %s after a failure of %s",
             ti->try_number, c->t[t].label, c->t[m->target].label);
    m->replay = 1;
    st = sl_aa_use_target(api, r, c, m, t);
    m->replay = 0;
    return st;
}
#endif

static sl_status_t
sl_aa_header_filter(const sl_api_t *api, sl_req_t *r, void *conf_)
{
    const sl_aa_conf_t *c = conf_;
    sl_aa_ctx_t *m = api->ctx_get(r);
    int status;

    if (m == NULL || m->tconf == NULL) {
        return sl_aa_inner.header_filter(sl_aa_api(api), r, m && m->tconf ? m->tconf : c->t[0].ap);
    }
    status = api->resp_status(r);
    if (api->resp_source(r) == SL_SOURCE_UPSTREAM) {
        if (sl_aa_status_fails(c, status)) {
            sl_aa_record_failure(api, c, m->target);
#if SL_PLUGIN_ABI_MINOR >= 2
            if (api->abi_minor >= 2 && m->orig.ptr != NULL &&
                (c->bal.failover & SL_AA_FO_NON_IDEMPOTENT) && api->upstream_retry(r) == 0) {
                return SL_STATUS_CONTINUE; /* the balancer phase runs again */
            }
#endif
        } else if (status < 500) {
            sl_aa_record_success(api, c, m->target);
        }
        m->accepted = 1;
    }
    return sl_aa_inner.header_filter(sl_aa_api(api), r, m->tconf);
}

static sl_status_t
sl_aa_body_filter(const sl_api_t *api, sl_req_t *r, void *conf_, sl_str_t *chunk, int eof)
{
    const sl_aa_conf_t *c = conf_;
    sl_aa_ctx_t *m = api->ctx_get(r);

    return sl_aa_inner.body_filter(sl_aa_api(api), r, m && m->tconf ? m->tconf : c->t[0].ap, chunk,
                                   eof);
}

/* latency sample of the answering target (us, or us per output token) */
static void
sl_aa_learn(const sl_api_t *api, sl_req_t *r, const sl_aa_conf_t *c, sl_aa_ctx_t *m)
{
    const sl_ap_ctx_t *in = m->inner;
    sl_ap_usage_t u;
    int64_t end, now = api->now_us();
    double sample;

    if (in == NULL || !in->translated || in->resp_status >= 400) {
        return;
    }
    u = in->resp == SL_AP_RESP_STREAM  ? in->st.usage
        : in->resp == SL_AP_RESP_WATCH ? in->watch.usage
                                       : in->usage;
    if (!u.have) {
        u.prompt = in->input_estimate;
        u.completion = u.out_chars_tokens;
        u.total = u.prompt + u.completion;
    }
    if (c->bal.algorithm == SL_AA_ALG_LOWEST_LATENCY) {
        int64_t avg, last;

        end = api->req_time(r, SL_TIME_UPSTREAM_LAST_BYTE);
        if (end == 0) {
            end = now;
        }
        sample = (double)(end - m->t_try);
        if (c->bal.latency_strategy == SL_AA_LAT_TPOT) {
            sample /= (double)(u.completion > 0 ? u.completion : 1);
        }
        if (sample < 1) {
            sample = 1;
        }
        sl_aa_pair_get(api, c, "l", m->target, &avg, &last);
        sl_aa_pair_set(api, c, "l", m->target,
                       (int64_t)sl_aa_ewma((double)avg, last, sample, now, SL_AA_LAT_TAU_US), now);
    } else if (c->bal.algorithm == SL_AA_ALG_LOWEST_USAGE) {
        double add;
        const sl_ap_conf_t *tc = m->tconf;

        switch (c->bal.tokens_count_strategy) {
        case SL_AA_TOK_PROMPT:
            add = (double)u.prompt;
            break;
        case SL_AA_TOK_COMPLETION:
            add = (double)u.completion;
            break;
        case SL_AA_TOK_COST:
            add = tc->t.input_cost > 0 && tc->t.output_cost > 0
                      ? ((double)u.prompt * tc->t.input_cost +
                         (double)u.completion * tc->t.output_cost) /
                            1e6
                      : 0;
            break;
        default:
            add = (double)(u.total ? u.total : u.prompt + u.completion);
            break;
        }
        if (add > 0) {
            sl_aa_incr(api, c, "u", m->target, add, 0);
        }
    }
}

static void
sl_aa_log(const sl_api_t *api, sl_req_t *r, void *conf_)
{
    const sl_aa_conf_t *c = conf_;
    sl_aa_ctx_t *m = api->ctx_get(r);
    sl_req_error_t e;

    if (m == NULL) {
        return;
    }
    if (m->inner) {
        sl_aa_inner.log(sl_aa_api(api), r, m->tconf ? m->tconf : c->t[0].ap);
    }
    if (m->target < 0) {
        return;
    }
    sl_aa_release(api, c, m);
    e = api->req_error(r);
    if (!m->accepted && (e == SL_REQERR_UPSTREAM_CONNECT || e == SL_REQERR_UPSTREAM_TIMEOUT ||
                         e == SL_REQERR_UPSTREAM_RESET || e == SL_REQERR_UPSTREAM_PROTOCOL)) {
        sl_aa_record_failure(api, c, m->target); /* the last try failed before an answer */
    } else if (m->accepted && e != SL_REQERR_NONE && e != SL_REQERR_CLIENT_ABORT) {
        sl_aa_record_failure(api, c, m->target); /* broke after the first byte */
    } else if (m->accepted) {
        sl_aa_learn(api, r, c, m);
    }
}

/* ------------------------------------------------------------ descriptor */

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "ai-proxy-advanced",
    "0.1.0",
    770, /* Kong's priority (as ai-proxy) */
    sl_aa_config_parse,
    sl_aa_config_free,
    NULL, /* init_worker */
    NULL, /* exit_worker */
    sl_aa_access,
    sl_aa_body,
    sl_aa_header_filter,
    sl_aa_body_filter,
    sl_aa_log,
#if SL_PLUGIN_ABI_MINOR >= 2
    sl_aa_balancer,
#endif
    {NULL},
};
