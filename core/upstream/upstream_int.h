/* upstream_int.h - what upstream.c (pool, connections, reading, writing)
 * and upconnect.c (resolving, connecting, TLS handshake) share.  Private
 * to those two files. */

#ifndef SL_UPSTREAM_INT_H
#define SL_UPSTREAM_INT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "upstream/dns.h"
#include "upstream/tls.h"
#include "upstream/upstream.h"

#define SL_UP_DEFAULT_MAX_IDLE 64
#define SL_UP_DEFAULT_KEEPALIVE_MS 60000
#define SL_UP_DEFAULT_CONNECT_MS 60000
#define SL_UP_READ_BUF (64 * 1024)
#define SL_UP_MAX_ADDRS 16

enum { C_CONNECTING, C_HANDSHAKE, C_ACTIVE, C_IDLE };

/* Connections to one (host, port, tls, verify): the pool's idle limit is
 * per key, counted here so that releasing a connection is O(1). */
typedef struct sl_upkey {
    struct sl_upkey *next;
    char *host;
    int port;
    int tls_on;
    int verify;
    unsigned nidle;
} sl_upkey_t;

/* An idle connection is probed (recv MSG_PEEK) before reuse only after
 * this long: the idle watcher sees a peer's close when it happens, so only
 * a close in the last instants can slip through. */
#define SL_UP_PROBE_AFTER_MS 1000

struct sl_upconn {
    uv_tcp_t tcp;
    uv_timer_t timer; /* idle: keepalive expiry; active: deferred read delivery */
    uv_connect_t connect_req;
    int open_handles;
    sl_uppool_t *pool;  /* NULL once the pool is gone */
    sl_upconnect_t *uc; /* while connecting */
    sl_upconn_t *next;  /* pool->idle or pool->busy */
    sl_upconn_t **pprev;

    int tls_on;
    int verify;
    int port;
    char *host;
    char *tls_name; /* SNI and verified name when not host; NULL = host */
    sl_tls_t *tls;

    int state;
    unsigned closing : 1;
    unsigned reused : 1;
    unsigned reading : 1;    /* the user wants data */
    unsigned eof : 1;        /* final read status known (read_err) */
    unsigned net_eof : 1;    /* the socket ended or failed */
    unsigned eof_told : 1;   /* ... and the user was told */
    unsigned broken : 1;     /* a write failed */
    unsigned uv_reading : 1; /* libuv read started on tcp */
    sl_upkey_t *key;
    uint64_t idle_since; /* uv_now() when it went idle */
    uint64_t idle_due;   /* the idle timeout's deadline (base/lazytimer.h) */
    char *stash;         /* bytes that came while not reading */
    size_t stash_len;
    int read_err;
    unsigned user_writes; /* in flight */
    sl_upconn_read_cb read_cb;
    void *read_arg;

    /* network reads and decrypted data (TLS) go into the pool's buffers,
     * borrowed for one read (reads are never nested, so one of each per
     * pool serves every connection); rbuf/pbuf are the connection's own,
     * made only when the pool's is lent out or gone */
    char *rbuf;
    char *pbuf;
    sl_uppool_t *lent_r, *lent_p; /* the pool whose buffer this read borrowed */
    char peer_ip[64];
    int peer_port;
};

struct sl_upconnect {
    uv_timer_t timer; /* connect timeout, or deferred failure */
    sl_uppool_t *pool;
    sl_upconnect_t *next;
    sl_upconnect_t **pprev;
    sl_upconnect_cb cb;
    void *arg;
    char *host;
    char *tls_name; /* NULL = host */
    int port;
    int tls_on;
    int verify;
    int timeout_ms;
    sl_dns_req_t *dns;
    int resolving;
    struct sockaddr_storage addrs[SL_UP_MAX_ADDRS];
    size_t naddrs;
    size_t next_addr;
    sl_upconn_t *conn;
    unsigned starting : 1;
    unsigned done : 1;
    int fail_status;
    char errmsg[512];
};

struct sl_uppool {
    uv_loop_t *loop;
    sl_uppool_options_t opts;
    sl_dns_t *dns;
    int own_dns; /* dns is the pool's (else the worker's, freed by it) */
    sl_tls_ctx_t *tls;
    sl_upconn_t *idle; /* most recently released first */
    sl_upkey_t *keys;
    sl_upconn_t *busy;
    sl_upconnect_t *connects;
    /* writes that completed inside sl_upconn_write (uv_try_write): their
     * callbacks run from an idle handle on the next loop turn */
    uv_idle_t *done_idle;
    struct sl_upwrite *done_head, *done_tail;
    /* read buffers lent to one connection at a time (see sl_upconn_t) */
    char *rbuf, *pbuf;
    sl_upconn_t *rbuf_user, *pbuf_user;
    /* finished write records kept for the next writes (one per proxied
     * request otherwise costs a calloc and a free) */
    struct sl_upwrite *wfree;
    unsigned nwfree;
};

typedef struct sl_upwrite {
    uv_write_t req;
    sl_upconn_t *c;
    sl_upconn_write_cb cb;
    void *arg;
    char *owned; /* ciphertext we allocated (TLS) */
    int user;
    struct sl_upwrite *dnext; /* pool->done list */
} sl_upwrite_t;

/* ---- lists ---- */

#define SL_LIST_INSERT(head, e)                                                                    \
    do {                                                                                           \
        (e)->next = (head);                                                                        \
        if ((e)->next != NULL)                                                                     \
            (e)->next->pprev = &(e)->next;                                                         \
        (e)->pprev = &(head);                                                                      \
        (head) = (e);                                                                              \
    } while (0)

#define SL_LIST_REMOVE(e)                                                                          \
    do {                                                                                           \
        if ((e)->pprev != NULL) {                                                                  \
            *(e)->pprev = (e)->next;                                                               \
            if ((e)->next != NULL)                                                                 \
                (e)->next->pprev = (e)->pprev;                                                     \
            (e)->next = NULL;                                                                      \
            (e)->pprev = NULL;                                                                     \
        }                                                                                          \
    } while (0)

/* upstream.c */
sl_upconn_t *sl_upc_new(sl_uppool_t *pool, const sl_upconnect_t *uc);
void sl_upc_close(sl_upconn_t *c);
int sl_upc_uv_read(sl_upconn_t *c, int on);
void sl_upc_flush_tls(sl_upconn_t *c);
sl_upconn_t *sl_uppool_take_idle(sl_uppool_t *pool, const sl_upstream_target_t *t);

/* upconnect.c */
void sl_upc_handshake(sl_upconn_t *c);
void sl_upconnect_fail(sl_upconnect_t *uc, int status, const char *msg);
void sl_upconnect_try_next(sl_upconnect_t *uc);

#endif
