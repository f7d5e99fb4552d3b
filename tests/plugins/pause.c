/* pause.c - test plugin "t-pause": pauses its access or body phase
 * (api->pend + SL_STATUS_PENDING) and resumes from a request timer after
 * delay_ms with an action, or never (to test client disconnects and the
 * pending timeout).  Config:
 *   phase: access | body        action: continue | respond | error | never
 *   delay_ms, timeout_ms        early: resume from the handler itself
 *   file: lines "cancel ID WHY" and "log ID ERR" appended here
 * "continue" adds X-Paused: PHASE to the upstream request; "respond"
 * answers 202 with the phase name; with consumer: NAME it first
 * authenticates the request as that consumer from the timer (X-Paused-As:
 * 0 or -1, what consumer_set returned).  Also the bench lane's plugin: an empty
 * pause resumed at the next loop turn (delay_ms 0, action continue). */

#include "tp_util.h"

typedef struct conf {
    int body; /* pause in body instead of access */
    int action;
    int early;
    uint64_t delay_ms, timeout_ms;
    char *file;
    char *consumer; /* consumer_set from the timer, before resuming */
} conf_t;

enum { A_CONTINUE, A_RESPOND, A_ERROR, A_NEVER };
static const char *const actions[] = {"continue", "respond", "error", "never"};

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    json_object *o = tp_parse(api, cx, json, len), *v;
    conf_t *c;
    char *s;

    if (o == NULL)
        return -1;
    c = calloc(1, sizeof(*c));
    s = tp_str(o, "phase");
    c->body = s && strcmp(s, "body") == 0;
    free(s);
    s = tp_str(o, "action");
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, actions[i]) == 0)
            c->action = i;
    free(s);
    if (json_object_object_get_ex(o, "delay_ms", &v))
        c->delay_ms = (uint64_t)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "timeout_ms", &v))
        c->timeout_ms = (uint64_t)json_object_get_int64(v);
    if (json_object_object_get_ex(o, "early", &v))
        c->early = json_object_get_boolean(v);
    c->file = tp_str(o, "file");
    c->consumer = tp_str(o, "consumer");
    json_object_put(o);
    *out = c;
    return 0;
}

static void
config_free(void *conf)
{
    conf_t *c = conf;
    free(c->file);
    free(c->consumer);
    free(c);
}

static void
go_on(const sl_api_t *api, sl_req_t *r, const conf_t *c)
{
    const char *ph = c->body ? "body" : "access";

    switch (c->action) {
    case A_CONTINUE:
        if (c->consumer) {
            const sl_consumer_t *who = api->consumer_find(r, TP_S(c->consumer));
            int rc = api->consumer_set(r, who, NULL);
            api->req_header_set(r, SL_STR("X-Paused-As"), rc == 0 ? SL_STR("0") : SL_STR("-1"));
        }
        api->req_header_set(r, SL_STR("X-Paused"), (sl_str_t){ph, strlen(ph)});
        api->resume(r, SL_STATUS_CONTINUE);
        break;
    case A_RESPOND:
        api->respond(r, 202, SL_STR("text/plain"), (sl_str_t){ph, strlen(ph)});
        api->resume(r, SL_STATUS_RESPOND);
        break;
    case A_ERROR:
        api->resume(r, SL_STATUS_ERROR);
        break;
    default:
        break;
    }
}

static void
fire(const sl_api_t *api, sl_req_t *r, void *arg)
{
    go_on(api, r, arg);
}

static void
on_cancel(const sl_api_t *api, sl_req_t *r, sl_req_error_t why, void *arg)
{
    const conf_t *c = arg;
    sl_str_t id = api->req_id(r);
    tp_append(c->file, "cancel %.*s %d", (int)id.len, id.ptr, (int)why);
}

static sl_status_t
pause_here(const sl_api_t *api, sl_req_t *r, conf_t *c)
{
    sl_str_t id = api->req_id(r);

    if (api->pend(r, c->timeout_ms, on_cancel, c) != 0)
        return SL_STATUS_ERROR;
    tp_append(c->file, "pend %.*s", (int)id.len, id.ptr);
    if (c->early)
        go_on(api, r, c);
    else if (c->action != A_NEVER && !api->timer_start(r, c->delay_ms, 0, fire, c))
        return SL_STATUS_ERROR;
    return SL_STATUS_PENDING;
}

static sl_status_t
access_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    return c->body ? SL_STATUS_CONTINUE : pause_here(api, r, c);
}

static sl_status_t
body_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    conf_t *c = conf;
    return c->body ? pause_here(api, r, c) : SL_STATUS_CONTINUE;
}

static void
log_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    const conf_t *c = conf;
    sl_str_t id = api->req_id(r);
    tp_append(c->file, "log %.*s %d", (int)id.len, id.ptr, (int)api->req_error(r));
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-pause",
    "0.0.1",
    900,
    .config_parse = config_parse,
    .config_free = config_free,
    .access = access_phase,
    .body = body_phase,
    .log = log_phase,
};
