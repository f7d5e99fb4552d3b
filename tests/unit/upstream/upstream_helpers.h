/* upstream_helpers.h - loopback servers and client bookkeeping shared by
 * the upstream unit tests.  Everything listens on 127.0.0.1 only. */

#ifndef SL_TEST_UPSTREAM_HELPERS_H
#define SL_TEST_UPSTREAM_HELPERS_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <uv.h>

#include "upstream/upstream.h"

/* A libuv TCP server on the test's loop: echoes what it reads, or stays
 * silent (accepts, never reads or answers) when `silent` is set. */
typedef struct test_srv_conn test_srv_conn_t;

typedef struct test_srv {
    uv_loop_t *loop;
    uv_tcp_t listener;
    int port;
    int silent;
    int accepted;    /* connections accepted so far */
    int peer_closed; /* connections the client closed */
    int echoed;      /* bytes echoed back (write completed) */
    test_srv_conn_t *conns;
} test_srv_t;

int test_srv_start(test_srv_t *s, uv_loop_t *loop, int silent);
/* Close every accepted connection (the listener stays). */
void test_srv_drop_conns(test_srv_t *s);
void test_srv_stop(test_srv_t *s);
int test_srv_open_conns(const test_srv_t *s);

/* What one client (a connect, then reads and writes) saw. */
typedef struct test_client {
    int connected; /* callback ran */
    int status;
    int in_start; /* set around sl_upconnect_start() */
    int sync;     /* callback ran inside start */
    char errmsg[512];
    sl_upconn_t *c;
    sl_upconnect_t *pending;

    char *data; /* everything read */
    size_t len;
    size_t cap;
    int reads; /* read callbacks with data */
    int ended; /* n < 0 seen */
    ssize_t end_status;
    size_t stop_after; /* read_stop once len >= this (0 = never) */

    int writes_done;
    int write_status;
} test_client_t;

void test_client_reset(test_client_t *cl);
int test_connect(sl_uppool_t *pool, const sl_upstream_target_t *t, test_client_t *cl);
void test_connect_cb(void *arg, sl_upconn_t *c, int status, const char *errmsg);
void test_read_cb(void *arg, const char *data, ssize_t n);
void test_write_cb(void *arg, int status);

/* Run the loop until *flag becomes non-zero or timeout_ms passes.
 * Returns 1 if the flag was set. */
int test_run_until(uv_loop_t *loop, volatile int *flag, int timeout_ms);
int test_run_until_len(uv_loop_t *loop, test_client_t *cl, size_t len, int timeout_ms);
void test_run_for(uv_loop_t *loop, int ms);
/* Close whatever is left and check the loop has nothing open. */
int test_loop_finish(uv_loop_t *loop);

/* A port on 127.0.0.1 that nobody listens on (bound, then closed). */
int test_dead_port(void);

/* Self-signed certificate for CN/SAN "localhost" and IP 127.0.0.1. */
typedef struct test_cert {
    EVP_PKEY *key;
    X509 *cert;
    char pem_path[256]; /* the certificate written as PEM */
} test_cert_t;

int test_cert_make(test_cert_t *tc);
void test_cert_free(test_cert_t *tc);

/* A blocking OpenSSL echo server on its own thread (the code under test
 * stays single-threaded on the loop; only the test's peer uses a thread). */
#define TEST_TLS_MAX_CONNS 32

typedef struct test_tls_srv {
    pthread_t thread;
    pthread_t conn_threads[TEST_TLS_MAX_CONNS]; /* one per connection */
    int conn_fds[TEST_TLS_MAX_CONNS];
    int fd;
    int port;
    SSL_CTX *ctx;
    volatile int stop;
    volatile int accepted;
    volatile int handshakes; /* completed server-side */
    volatile int resumed;    /* of which resumed a session */
    pthread_mutex_t lock;    /* guards the counters above */
} test_tls_srv_t;

int test_tls_srv_start(test_tls_srv_t *s, const test_cert_t *tc);
void test_tls_srv_stop(test_tls_srv_t *s);

#endif
