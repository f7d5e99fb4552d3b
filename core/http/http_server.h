/* http_server.h - client connections: accept, llhttp parsing, keep-alive,
 * pipelining, limits and timeouts, and the write queue. */

#ifndef SL_HTTP_SERVER_H
#define SL_HTTP_SERVER_H

#include <llhttp.h>
#include <uv.h>

#include "http/downstream.h"
#include "http/hdr_accum.h"
#include "http/request.h"
#include "http/server.h"
#include "http/tls_server.h"

struct sl_conn {
    uv_tcp_t tcp;
    sl_server_t *w;
    sl_conn_t *prev, *next; /* worker's list */
    llhttp_t parser;
    uv_timer_t timer;   /* header / body / keep-alive timeout */
    uint64_t timer_due; /* its deadline (base/lazytimer.h) */
    char client_ip[46];
    int client_port;
    int server_port;

    sl_req_t *req;      /* request being read or served */
    sl_hdr_accum_t hdr; /* header being parsed */
    char *url;
    size_t url_len, url_cap;
    size_t head_bytes;

    /* bytes read but not parsed yet (pipelined requests) */
    char *pending;
    size_t pending_len, pending_cap;
    int paused;   /* parser paused after a message */
    int msg_open; /* a request's message begun and not parsed to its end */

    size_t write_bytes; /* queued, not yet written */
    unsigned corked;
    char *cork_buf; /* the worker's (cork_lent) while corked, or its own */
    size_t cork_len, cork_cap;
    int cork_lent;
    int closing;
    int in_process;
    int handles_closed;
    int write_failed;
    int peer_closed; /* read EOF or an error: nothing left to drain */
    int lingering;   /* closing: output shut down, input read and dropped */
    int input_done;  /* closing after a request read whole, nothing after it: no lingering */
    int reading;
    int want_close; /* close after the current response */
    unsigned nreqs;
    sl_stls_conn_t *tls; /* listener with "ssl": http/tls_server.c */
    int is_status;       /* accepted on the status listener */
};

void sl_http_on_connection(uv_stream_t *server, int status);

/* Queue bytes for the client (copied, or written at once). */
int sl_conn_write(sl_conn_t *c, const uv_buf_t *bufs, unsigned n);
/* The current request ended and its log phase ran: next request or close. */
void sl_conn_request_done(sl_conn_t *c);
void sl_conn_close(sl_conn_t *c);
void sl_conn_drain_idle(sl_conn_t *c, int grace_ms);
/* Stop reading the client while the writes back up (0/1). */
#define SL_CONN_HIGH_WATER (1024 * 1024)

#endif
