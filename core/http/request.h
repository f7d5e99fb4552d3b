/* request.h - one HTTP request from the first byte to the log phase, and
 * the phase chain that runs on it.
 *
 * Flow (see docs/architecture.md):
 *   http_server.c parses  ->  sl_req_headers_done()  [route, access]
 *                         ->  sl_req_body_done()     [body, then proxy or respond]
 *   proxy.c answers       ->  sl_req_resp_headers()  [header_filter, head sent]
 *                         ->  sl_req_resp_body()     [body_filter, bytes sent]
 *                         ->  sl_req_resp_end()      [body_filter eof]
 *   all bytes queued      ->  sl_req_finish()        [log, free]
 * A client abort at any point ends in sl_req_abort() -> log -> free. */

#ifndef SL_REQUEST_H
#define SL_REQUEST_H

#include <json-c/json.h>
#include <uv.h>

#include "base/common.h"
#include "base/pool.h"
#include "base/time.h"
#include "conf/config.h"
#include "conf/router.h"
#include "http/headers.h"
#include "http/phase.h"

typedef struct sl_conn sl_conn_t;
typedef struct sl_server sl_server_t;
typedef struct sl_proxy sl_proxy_t;

typedef enum sl_req_state {
    SL_REQ_READING = 0, /* headers/body arriving */
    SL_REQ_PROXYING,    /* waiting on the upstream */
    SL_REQ_RESPONDING,  /* response head sent, body flowing */
    SL_REQ_DONE         /* response complete, log pending */
} sl_req_state_t;

/* Whether the gateway answers a request itself instead of proxying it.
 * Decided while the head is read (or by a plugin's access/body phase); the
 * answer goes out once the request body has been read. */
typedef enum sl_answer {
    SL_ANSWER_NONE = 0,       /* proxy to the upstream */
    SL_ANSWER_PLUGIN,         /* a plugin called respond() or returned RESPOND */
    SL_ANSWER_BAD_REQUEST,    /* malformed target or missing Host: 400, then close */
    SL_ANSWER_NO_ROUTE,       /* 404 */
    SL_ANSWER_PLUGIN_ERROR,   /* the access phase failed: 500 */
    SL_ANSWER_PLUGIN_TIMEOUT, /* a paused access phase did not resume in time: 504 */
    SL_ANSWER_HTTPS_REQUIRED, /* plain HTTP on an https-only route: 426 or redirect */
} sl_answer_t;

typedef struct sl_try {
    char ip[46];
    int port;
    int64_t start_us;
    int64_t latency_us;
    int failed;
    int code;       /* HTTP-ish code for a failed try: 502/504 */
    char state[16]; /* "failed" / "next" */
} sl_try_t;

struct sl_timer {
    struct sl_timer *next;
    sl_req_t *r;
    uv_timer_t h;
    sl_timer_fn fn;
    void *arg;
    int plugin; /* chain index of the owner */
    int active;
};

struct sl_req {
    sl_pool_t *pool;
    sl_conn_t *conn; /* NULL once the client is gone */
    sl_server_t *w;
    char id[33];
    char client_ip[46];
    int server_port;
    sl_req_state_t state;

    /* request as received; path is normalised (base/uri.h) for routing,
     * plugins and the upstream, raw_path is the client's */
    sl_str_t method, uri, path, raw_path, query, host;
    int has_query;
    int reading_head; /* counted in counters->reading until the head is parsed */
    int http_major, http_minor;
    int keepalive; /* client wants keep-alive */
    int expect_continue;
    sl_headers_t headers;
    sl_headers_t client_headers; /* as received (for the log record) */
    char *body;                  /* malloc'd, freed by a pool cleanup */
    size_t body_len, body_cap;
    char *body_buf;      /* a read buffer lent to the request: r->body points into it, and
                          * it is what is freed (NULL: r->body is its own block) */
    size_t body_counted; /* bytes of body counted in max_body_memory */
    int body_refused;    /* 503: no room in max_body_memory (http_server.c) */
    int discard_body;
    int stream_body; /* body goes to the upstream as it arrives */
    int body_complete;
    int req_chunked; /* client sent Transfer-Encoding: chunked */
    uint64_t req_content_length;
    uint64_t body_limit; /* declared by plugins (api->req_body_limit); 0 none */
    size_t req_size;     /* bytes received (head + body) */

    /* routing and plugins */
    sl_route_match_t match;
    const sl_route_t *route;
    const sl_service_t *service;
    const sl_chain_t *chain;
    void **plugin_ctx;           /* one per chain item */
    int cur;                     /* chain index being run, -1 none */
    sl_phase_t phase;            /* phase being run, SL_PHASE_MAX none */
    int paused;                  /* a phase is pending (SL_STATUS_PENDING) */
    int access_paused;           /* the access phase paused once: body is buffered */
    struct sl_pend *pend;        /* plugin/pending.c's state, NULL if never */
    struct sl_callout *callouts; /* plugin/callout.c: bound to this request */
    sl_answer_t responded;       /* the gateway answers itself (decided before the body) */
    sl_timer_t *timers;

    /* identity (api->consumer_set): handles into the config generation */
    const sl_consumer_t *consumer;
    const sl_credential_t *credential;

    /* upstream target (pool strings) */
    sl_str_t up_scheme, up_host, up_path, up_query;
    int up_port, up_has_query;
    char *upstream_uri;
    int upstream_status;
    sl_proxy_t *proxy;
    sl_try_t *tries; /* one per connection attempt (pool; sl_req_add_try) */
    int ntries, tries_cap;
    int retries;     /* retry budget: service.retries, api->upstream_retries_set */
    int retry_asked; /* a header_filter called api->upstream_retry (this try) */
    int timeout_connect, timeout_write, timeout_read; /* ms, 0: the service's
                                                         (api->upstream_timeouts_set) */

    /* response */
    int status;
    sl_headers_t resp_headers;
    sl_resp_source_t source;
    sl_str_t gw_body; /* body of a gateway-made response */
    int head_sent;
    int hold_head; /* api->resp_buffer: head waits for eof */
    char *held;    /* filtered body while the head waits */
    size_t held_len, held_cap;
    int chunked;       /* response framed with chunked encoding */
    int no_body;       /* HEAD / 204 / 304 */
    int close_after;   /* Connection: close on this response */
    size_t resp_bytes; /* bytes sent to the client */

    int64_t times[SL_TIME_MAX];
    uint64_t start_mono_ns;
    sl_req_error_t err;
    json_object *ser; /* serialize values tree */
    /* string values set since the tree was last read (set_serialize_string),
     * in order; put into `ser` by the next reader (plugin/serializer.c) */
    struct sl_ser_pending *ser_pending, **ser_pending_tail;
};

sl_req_t *sl_req_new(sl_conn_t *c);
void sl_req_free(sl_req_t *r);

/* The request now holds `bytes` of body in memory (r->body's capacity):
 * the node-wide max_body_memory count moves by the difference.  Growth that
 * would cross max_body_memory is refused (-1, nothing counted) unless
 * `force` (a plugin's replacement body); shrinking always succeeds. */
int sl_req_body_count(sl_req_t *r, size_t bytes, int force);

/* Free the request's body (its own block or the read buffer lent to it,
 * r->body_buf) and leave it empty; the count in max_body_memory is the
 * caller's to move. */
void sl_req_body_free(sl_req_t *r);

/* Parsing milestones (http_server.c). */
void sl_req_headers_done(sl_req_t *r);
void sl_req_body_done(sl_req_t *r);

/* A phase that returned SL_STATUS_PENDING is over (plugin/pending.c): st
 * is how its chain ended (CONTINUE, RESPOND or ERROR; with r->err ==
 * SL_REQERR_PENDING_TIMEOUT an ERROR answers 504).  The request goes on as
 * if the phase had returned st at once. */
void sl_req_phase_done(sl_req_t *r, sl_phase_t phase, sl_status_t st);

/* A gateway-made response: Kong's JSON error template for `msg`. */
void sl_req_error_response(sl_req_t *r, int status, const char *msg);
/* The same with one extra response header (hname.len == 0: none). */
void sl_req_error_response_hdr(sl_req_t *r, int status, const char *msg, sl_str_t hname,
                               sl_str_t hvalue);
/* Send r->status/resp_headers/gw_body as a gateway response. */
void sl_req_send_gateway(sl_req_t *r);

/* Upstream response milestones (proxy.c).  sl_req_resp_headers runs
 * header_filter and sends (or holds) the head: SL_OK, or SL_AGAIN when a
 * plugin rejected the response (api->upstream_retry): nothing was sent and
 * the proxy discards it and tries again. */
int sl_req_resp_headers(sl_req_t *r);
/* An interim (1xx) upstream response with r->resp_headers: passed on to an
 * HTTP/1.1 client (RFC 9110 15.2) while nothing else was sent; not 100
 * (sluice answers Expect itself) and not to HTTP/1.0 clients. */
void sl_req_resp_interim(sl_req_t *r, int status);
void sl_req_resp_body(sl_req_t *r, const char *data, size_t len);
void sl_req_resp_end(sl_req_t *r, sl_req_error_t err);

/* Output to the client (framing applied) and backpressure signal. */
void sl_req_write_body(sl_req_t *r, const char *data, size_t len);
void sl_req_on_drain(sl_req_t *r);

/* The client went away (http_server.c). */
void sl_req_abort(sl_req_t *r);

/* Time helpers */
void sl_req_mark(sl_req_t *r, sl_time_point_t t);
/* A new, zeroed entry at the end of r->tries (the list grows in the pool:
 * every try is logged, however many retries the service allows). */
sl_try_t *sl_req_add_try(sl_req_t *r);

#endif
