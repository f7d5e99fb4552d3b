/* status.c - the status listener's answers: Kong's GET /status (server
 * counters, configuration_hash, memory), GET /status/ready (200 while this
 * worker serves the current configuration, 503 once it drains) and GET
 * /metrics (the Prometheus text every registered exporter writes), and
 * Kong's GET /upstreams/{name}/health (target health as the node sees it).  Nothing
 * here is routed, proxied or seen by a plugin chain. */

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

#include <json-c/json.h>

#include "base/pool.h"
#include "base/shm.h"
#include "base/strbuf.h"
#include "http/headers.h"
#include "plugin/host.h"
#include "plugin/status.h"

static sl_server_t *srv;

void
sl_status_init(sl_server_t *s)
{
    srv = s;
}

int
sl_status_node(sl_node_status_t *out)
{
    memset(out, 0, sizeof(*out));
    if (srv == NULL)
        return -1;
    out->node_id = srv->node_id ? srv->node_id : "";
    out->version = SL_VERSION;
    out->configuration_hash = srv->conf->hash;
    out->workers = srv->settings->workers;
    for (size_t i = 0; srv->all_counters && i < srv->ncounters; i++) {
        const sl_conn_counters_t *c = &srv->all_counters[i];
        out->connections_accepted += __atomic_load_n(&c->accepted, __ATOMIC_RELAXED);
        out->connections_handled += __atomic_load_n(&c->handled, __ATOMIC_RELAXED);
        out->total_requests += __atomic_load_n(&c->requests, __ATOMIC_RELAXED);
        out->connections_active += __atomic_load_n(&c->active, __ATOMIC_RELAXED);
        out->connections_writing += __atomic_load_n(&c->inflight, __ATOMIC_RELAXED);
        out->connections_reading += __atomic_load_n(&c->reading, __ATOMIC_RELAXED);
    }
    /* nginx's states: reading a request head, writing (the head is read,
     * the response not finished), waiting (idle keep-alive); the slots
     * are read one by one, so keep the sum within connections_active */
    if (out->connections_reading > out->connections_writing)
        out->connections_reading = out->connections_writing;
    out->connections_writing -= out->connections_reading;
    if (out->connections_reading > out->connections_active)
        out->connections_reading = out->connections_active;
    if (out->connections_writing > out->connections_active - out->connections_reading)
        out->connections_writing = out->connections_active - out->connections_reading;
    out->connections_waiting =
        out->connections_active - out->connections_reading - out->connections_writing;
    return 0;
}

/* api->upstream_health's call for one address of a target. */
typedef struct health_call {
    sl_upstream_health_fn fn;
    void *arg;
    sl_str_t upstream, target;
} health_call_t;

static void
health_address(void *arg, const sl_bal_addr_status_t *a)
{
    const health_call_t *c = arg;
    char addr[300];
    int n = snprintf(addr, sizeof(addr), "%s:%d", a->ip, a->port);

    c->fn(c->arg, c->upstream, c->target, (sl_str_t){addr, (size_t)n},
          (sl_target_state_t)a->health);
}

int
sl_status_upstream_health(sl_upstream_health_fn fn, void *arg)
{
    const sl_conf_t *conf;
    int n = 0;

    if (srv == NULL || fn == NULL)
        return -1;
    conf = srv->conf;
    for (size_t i = 0; i < conf->nupstreams; i++) {
        const sl_upstream_conf_t *u = conf->upstreams[i];
        for (size_t t = 0; t < u->ntargets; t++, n++) {
            health_call_t c = {fn, arg, sl_str_c(u->name), sl_str_c(u->targets[t].target)};
            if (sl_balancer_target_status(srv->balancers, conf, u, t, health_address, &c, NULL) ==
                SL_BAL_DNS_ERROR) /* Kong: one series with an empty address */
                fn(arg, c.upstream, c.target, SL_STR(""), SL_TARGET_DNS_ERROR);
        }
    }
    return n;
}

static void
respond(sl_req_t *r, int status, const char *ctype, sl_strbuf_t *b)
{
    r->status = status;
    sl_headers_set(&r->resp_headers, r->pool, SL_STR("Content-Type"), sl_str_c(ctype));
    r->gw_body.ptr = b->len ? sl_pstrndup(r->pool, b->p, b->len) : "";
    r->gw_body.len = b->len;
    r->source = SL_SOURCE_GATEWAY;
    r->responded = 1;
    free(b->p);
}

static void
message(sl_req_t *r, int status, const char *msg)
{
    sl_strbuf_t b = {0};
    char line[128];
    int n = snprintf(line, sizeof(line), "{\"message\":\"%s\"}\n", msg);
    sl_strbuf_add(&b, line, (size_t)n);
    respond(r, status, "application/json; charset=utf-8", &b);
}

static void addf(sl_strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
addf(sl_strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    char tmp[512];
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n > 0)
        sl_strbuf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void
mib(char *out, size_t n, size_t bytes)
{
    snprintf(out, n, "%.2f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* Kong's /status: {"server": {...}, "configuration_hash": "...",
 * "memory": {"lua_shared_dicts": {...}, "workers": [...]}} (sluice's zones
 * under Kong's key; the answering worker's resident size). */
static void
status_json(sl_req_t *r)
{
    sl_node_status_t ns;
    sl_strbuf_t b = {0};
    sl_shm_info_t in;
    char a[32], c[32];
    long rss_pages = 0;
    FILE *f;

    sl_status_node(&ns);
    addf(&b,
         "{\"server\":{\"connections_accepted\":%llu,\"connections_handled\":%llu,"
         "\"total_requests\":%llu,\"connections_active\":%llu,\"connections_reading\":%llu,"
         "\"connections_writing\":%llu,\"connections_waiting\":%llu},",
         (unsigned long long)ns.connections_accepted, (unsigned long long)ns.connections_handled,
         (unsigned long long)ns.total_requests, (unsigned long long)ns.connections_active,
         (unsigned long long)ns.connections_reading, (unsigned long long)ns.connections_writing,
         (unsigned long long)ns.connections_waiting);
    addf(&b, "\"configuration_hash\":\"%s\",\"node_id\":\"%s\",\"version\":\"%s\",",
         ns.configuration_hash, ns.node_id, ns.version);
    SL_STRBUF_LIT(&b, "\"memory\":{\"lua_shared_dicts\":{");
    for (size_t i = 0; sl_shm_zone_at(i, &in) == 0; i++) {
        mib(a, sizeof(a), in.used_bytes);
        mib(c, sizeof(c), in.size);
        addf(&b, "%s\"%s\":{\"allocated_slabs\":\"%s\",\"capacity\":\"%s\"}", i ? "," : "", in.name,
             a, c);
    }
    if ((f = fopen("/proc/self/statm", "r")) != NULL) {
        long size;
        if (fscanf(f, "%ld %ld", &size, &rss_pages) != 2)
            rss_pages = 0;
        fclose(f);
    }
    mib(a, sizeof(a), (size_t)rss_pages * (size_t)sysconf(_SC_PAGESIZE));
    addf(&b, "},\"workers\":[{\"pid\":%d,\"rss\":\"%s\"}]}}\n", (int)getpid(), a);
    respond(r, 200, "application/json; charset=utf-8", &b);
}

static const char *const health_names[] = {"HEALTHCHECKS_OFF", "UNHEALTHY", "HEALTHY", "DNS_ERROR"};

/* One address of a target: Kong's data.addresses[] entry, and the
 * weight sums of its data.weight. */
typedef struct addr_acc {
    json_object *list;
    int total, unavailable;
} addr_acc_t;

static void
add_address(void *arg, const sl_bal_addr_status_t *a)
{
    addr_acc_t *acc = arg;
    json_object *o = json_object_new_object();

    json_object_object_add(o, "ip", json_object_new_string(a->ip));
    json_object_object_add(o, "port", json_object_new_int(a->port));
    json_object_object_add(o, "weight", json_object_new_int(a->weight));
    json_object_object_add(o, "health", json_object_new_string(health_names[a->health + 1]));
    json_object_array_add(acc->list, o);
    acc->total += a->weight;
    if (a->health == 0)
        acc->unavailable += a->weight;
}

/* Kong's Admin API GET /upstreams/{name or id}/health (read-only, served
 * here): every target with its health and, in data, its addresses as the
 * answering worker's balancer has them (a host-name target: one per DNS
 * address, DNS_ERROR when its lookups fail), their health as the node's
 * workers share it. */
static void
upstream_health(sl_req_t *r, sl_str_t key)
{
    const sl_conf_t *conf = srv->conf;
    const sl_upstream_conf_t *u = NULL;
    json_object *root, *data;
    sl_strbuf_t b = {0};
    size_t len;
    const char *text;

    for (size_t i = 0; i < conf->nupstreams && u == NULL; i++) {
        const sl_upstream_conf_t *x = conf->upstreams[i];
        if ((strlen(x->name) == key.len && !strncasecmp(x->name, key.ptr, key.len)) ||
            (strlen(x->id) == key.len && !strncmp(x->id, key.ptr, key.len)))
            u = x;
    }
    if (u == NULL) {
        message(r, 404, "Not found");
        return;
    }
    root = json_object_new_object();
    data = json_object_new_array();
    json_object_object_add(root, "node_id",
                           json_object_new_string(srv->node_id ? srv->node_id : ""));
    json_object_object_add(root, "total", json_object_new_int64((int64_t)u->ntargets));
    json_object_object_add(root, "next", NULL);
    json_object_object_add(root, "data", data);
    for (size_t t = 0; t < u->ntargets; t++) {
        const sl_target_conf_t *tc = &u->targets[t];
        json_object *o = json_object_new_object(), *up = json_object_new_object();
        json_object *d = json_object_new_object(), *w = json_object_new_object();
        addr_acc_t acc = {json_object_new_array(), 0, 0};
        const char *dns = "unknown";
        int h = sl_balancer_target_status(srv->balancers, conf, u, t, add_address, &acc, &dns);

        json_object_object_add(o, "id", json_object_new_string(tc->id));
        json_object_object_add(o, "target", json_object_new_string(tc->target));
        json_object_object_add(o, "weight", json_object_new_int(tc->weight));
        json_object_object_add(up, "id", json_object_new_string(u->id));
        json_object_object_add(o, "upstream", up);
        json_object_object_add(o, "health", json_object_new_string(health_names[h + 1]));
        json_object_object_add(d, "host", json_object_new_string(tc->host));
        json_object_object_add(d, "port", json_object_new_int(tc->port));
        json_object_object_add(d, "dns", json_object_new_string(dns));
        json_object_object_add(d, "nodeWeight", json_object_new_int(tc->weight));
        json_object_object_add(w, "total", json_object_new_int(acc.total));
        json_object_object_add(w, "unavailable", json_object_new_int(acc.unavailable));
        json_object_object_add(w, "available", json_object_new_int(acc.total - acc.unavailable));
        json_object_object_add(d, "weight", w);
        json_object_object_add(d, "addresses", acc.list);
        json_object_object_add(o, "data", d);
        json_object_array_add(data, o);
    }
    text = json_object_to_json_string_length(
        root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    sl_strbuf_add(&b, text, len);
    SL_STRBUF_LIT(&b, "\n");
    json_object_put(root);
    respond(r, 200, "application/json; charset=utf-8", &b);
}

static int
buf_write(void *w, const char *data, size_t len)
{
    sl_strbuf_add(w, data, len);
    return 0;
}

static void
metrics(sl_req_t *r)
{
    sl_strbuf_t b = {0};
    const sl_conf_t *conf = srv->conf;

    for (size_t i = 0; i < conf->nmetrics; i++)
        conf->metrics[i].fn(&sl_api, conf->metrics[i].arg, buf_write, &b);
    respond(r, 200, "text/plain; version=0.0.4; charset=utf-8", &b);
}

void
sl_status_handle(sl_req_t *r)
{
    int get = SL_STR_EQ(r->method, "GET") || SL_STR_EQ(r->method, "HEAD");

    if (SL_STR_EQ(r->path, "/metrics") && get)
        metrics(r);
    else if (SL_STR_EQ(r->path, "/status") && get)
        status_json(r);
    else if (get && r->path.len > 18 && !memcmp(r->path.ptr, "/upstreams/", 11) &&
             !memcmp(r->path.ptr + r->path.len - 7, "/health", 7))
        upstream_health(r, (sl_str_t){r->path.ptr + 11, r->path.len - 18});
    else if (SL_STR_EQ(r->path, "/status/ready") && get)
        message(r, srv->draining ? 503 : 200, srv->draining ? "draining" : "ready");
    else if (SL_STR_EQ(r->path, "/metrics") || SL_STR_EQ(r->path, "/status") ||
             SL_STR_EQ(r->path, "/status/ready"))
        message(r, 405, "Method not allowed");
    else
        message(r, 404, "Not found");
}
