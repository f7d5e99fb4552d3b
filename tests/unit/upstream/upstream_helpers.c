/* upstream_helpers.c - loopback servers, a certificate factory and client
 * bookkeeping for the upstream unit tests. */

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "upstream_helpers.h"

struct test_srv_conn {
    uv_tcp_t tcp;
    test_srv_t *srv;
    test_srv_conn_t *next;
    int closing;
    char buf[65536];
};

typedef struct echo_write {
    uv_write_t req;
    test_srv_t *srv;
    char *data;
    size_t len;
} echo_write_t;

/* ---- libuv echo / silent server ---- */

static void
srv_conn_close_cb(uv_handle_t *h)
{
    test_srv_conn_t *sc = h->data;
    test_srv_conn_t **pp;

    for (pp = &sc->srv->conns; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == sc) {
            *pp = sc->next;
            break;
        }
    }
    free(sc);
}

static void
srv_conn_close(test_srv_conn_t *sc)
{
    if (sc->closing)
        return;
    sc->closing = 1;
    uv_close((uv_handle_t *)&sc->tcp, srv_conn_close_cb);
}

static void
srv_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    test_srv_conn_t *sc = h->data;

    (void)suggested;
    buf->base = sc->buf;
    buf->len = sizeof(sc->buf);
}

static void
srv_write_cb(uv_write_t *req, int status)
{
    echo_write_t *w = (echo_write_t *)req;

    if (status == 0)
        w->srv->echoed += (int)w->len;
    free(w->data);
    free(w);
}

static void
srv_read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    test_srv_conn_t *sc = st->data;
    echo_write_t *w;
    uv_buf_t b;

    if (nread < 0) {
        sc->srv->peer_closed++;
        srv_conn_close(sc);
        return;
    }
    if (nread == 0)
        return;
    w = calloc(1, sizeof(*w));
    w->srv = sc->srv;
    w->len = (size_t)nread;
    w->data = malloc((size_t)nread);
    memcpy(w->data, buf->base, (size_t)nread);
    b = uv_buf_init(w->data, (unsigned)nread);
    if (uv_write(&w->req, st, &b, 1, srv_write_cb) < 0) {
        free(w->data);
        free(w);
    }
}

static void
srv_connection_cb(uv_stream_t *listener, int status)
{
    test_srv_t *s = listener->data;
    test_srv_conn_t *sc;

    if (status < 0)
        return;
    sc = calloc(1, sizeof(*sc));
    sc->srv = s;
    uv_tcp_init(s->loop, &sc->tcp);
    sc->tcp.data = sc;
    if (uv_accept(listener, (uv_stream_t *)&sc->tcp) < 0) {
        sc->closing = 1;
        uv_close((uv_handle_t *)&sc->tcp, (uv_close_cb)free);
        return;
    }
    sc->next = s->conns;
    s->conns = sc;
    s->accepted++;
    if (!s->silent) /* silent: not even reading */
        uv_read_start((uv_stream_t *)&sc->tcp, srv_alloc_cb, srv_read_cb);
}

int
test_srv_start(test_srv_t *s, uv_loop_t *loop, int silent)
{
    struct sockaddr_in addr;
    struct sockaddr_storage name;
    int namelen = sizeof(name);
    int rc;

    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->silent = silent;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 128, srv_connection_cb);
    if (rc == 0)
        rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &namelen);
    if (rc < 0)
        return rc;
    s->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    return 0;
}

void
test_srv_drop_conns(test_srv_t *s)
{
    test_srv_conn_t *sc;

    for (sc = s->conns; sc != NULL; sc = sc->next)
        srv_conn_close(sc);
}

static void
srv_listener_close_cb(uv_handle_t *h)
{
    ((test_srv_t *)h->data)->listener.data = NULL;
}

/* Returns once everything is closed, so s may live on the stack. */
void
test_srv_stop(test_srv_t *s)
{
    test_srv_drop_conns(s);
    uv_close((uv_handle_t *)&s->listener, srv_listener_close_cb);
    while (s->listener.data != NULL || s->conns != NULL)
        uv_run(s->loop, UV_RUN_NOWAIT);
}

int
test_srv_open_conns(const test_srv_t *s)
{
    const test_srv_conn_t *sc;
    int n = 0;

    for (sc = s->conns; sc != NULL; sc = sc->next)
        if (!sc->closing)
            n++;
    return n;
}

/* ---- client bookkeeping ---- */

void
test_client_reset(test_client_t *cl)
{
    free(cl->data);
    memset(cl, 0, sizeof(*cl));
}

void
test_connect_cb(void *arg, sl_upconn_t *c, int status, const char *errmsg)
{
    test_client_t *cl = arg;

    cl->connected++;
    cl->status = status;
    cl->c = c;
    cl->sync = cl->in_start;
    cl->pending = NULL;
    snprintf(cl->errmsg, sizeof(cl->errmsg), "%s", errmsg ? errmsg : "");
}

int
test_connect(sl_uppool_t *pool, const sl_upstream_target_t *t, test_client_t *cl)
{
    int rc;

    cl->in_start = 1;
    rc = sl_upconnect_start(pool, t, test_connect_cb, cl, &cl->pending);
    cl->in_start = 0;
    return rc;
}

void
test_read_cb(void *arg, const char *data, ssize_t n)
{
    test_client_t *cl = arg;

    if (n < 0) {
        cl->ended++;
        cl->end_status = n;
        return;
    }
    if (cl->len + (size_t)n > cl->cap) {
        cl->cap = (cl->len + (size_t)n) * 2;
        cl->data = realloc(cl->data, cl->cap);
    }
    memcpy(cl->data + cl->len, data, (size_t)n);
    cl->len += (size_t)n;
    cl->reads++;
    if (cl->stop_after && cl->len >= cl->stop_after) {
        cl->stop_after = 0;
        sl_upconn_read_stop(cl->c);
    }
}

void
test_write_cb(void *arg, int status)
{
    test_client_t *cl = arg;

    cl->writes_done++;
    cl->write_status = status;
}

/* ---- loop driving ---- */

static void
tick_cb(uv_timer_t *t)
{
    (void)t; /* only wakes uv_run up */
}

int
test_run_until(uv_loop_t *loop, volatile int *flag, int timeout_ms)
{
    uv_timer_t tick;
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;

    uv_timer_init(loop, &tick);
    uv_timer_start(&tick, tick_cb, 5, 5);
    while ((flag == NULL || !*flag) && uv_hrtime() < deadline)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT); /* completes the close */
    return flag != NULL && *flag;
}

int
test_run_until_len(uv_loop_t *loop, test_client_t *cl, size_t len, int timeout_ms)
{
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;

    while (cl->len < len && !cl->ended && uv_hrtime() < deadline)
        test_run_for(loop, 5);
    return cl->len >= len;
}

void
test_run_for(uv_loop_t *loop, int ms)
{
    test_run_until(loop, NULL, ms);
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        fprintf(stderr, "test: handle of type %s left open\n", uv_handle_type_name(h->type));
        uv_close(h, NULL);
    }
}

int
test_loop_finish(uv_loop_t *loop)
{
    uint64_t deadline = uv_hrtime() + 3000000000u;
    int rc;

    /* Bounded: after a failed assertion things may be left open, and the
     * report matters more than waiting forever. */
    while (uv_loop_alive(loop) && uv_hrtime() < deadline)
        uv_run(loop, UV_RUN_NOWAIT);
    rc = uv_loop_close(loop);
    if (rc == UV_EBUSY) {
        uv_walk(loop, close_walk_cb, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
    }
    return rc;
}

int
test_dead_port(void)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int fd, port;

    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    port = ntohs(addr.sin_port);
    close(fd);
    return port;
}

/* ---- certificate ---- */

static int
add_ext(X509 *x, int nid, const char *value)
{
    X509V3_CTX ctx;
    X509_EXTENSION *ext;
    int ok;

    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL)
        return 0;
    ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

int
test_cert_make(test_cert_t *tc)
{
    X509_NAME *name;
    FILE *f;
    int fd;

    memset(tc, 0, sizeof(*tc));
    tc->key = EVP_EC_gen("P-256");
    tc->cert = X509_new();
    if (tc->key == NULL || tc->cert == NULL)
        return -1;
    X509_set_version(tc->cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(tc->cert), (long)(uv_hrtime() & 0x7fffffff));
    X509_gmtime_adj(X509_getm_notBefore(tc->cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(tc->cert), 86400);
    X509_set_pubkey(tc->cert, tc->key);
    name = X509_get_subject_name(tc->cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(tc->cert, name);
    if (!add_ext(tc->cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1") ||
        !add_ext(tc->cert, NID_basic_constraints, "critical,CA:TRUE") ||
        !X509_sign(tc->cert, tc->key, EVP_sha256()))
        return -1;

    snprintf(tc->pem_path, sizeof(tc->pem_path), "/tmp/sl-upstream-test-XXXXXX");
    fd = mkstemp(tc->pem_path);
    if (fd < 0)
        return -1;
    f = fdopen(fd, "w");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    PEM_write_X509(f, tc->cert);
    fclose(f);
    return 0;
}

void
test_cert_free(test_cert_t *tc)
{
    if (tc->pem_path[0] != '\0')
        unlink(tc->pem_path);
    X509_free(tc->cert);
    EVP_PKEY_free(tc->key);
    memset(tc, 0, sizeof(*tc));
}

/* ---- blocking OpenSSL echo server thread ---- */

static int
wait_readable(int fd, volatile int *stop)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc;

    while (!*stop) {
        rc = poll(&p, 1, 20);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return 0;
    }
    return 0;
}

typedef struct tls_conn_arg {
    test_tls_srv_t *srv;
    int fd;
} tls_conn_arg_t;

/* One connection: handshake, then echo until the client goes away. */
static void *
tls_srv_conn_main(void *arg)
{
    tls_conn_arg_t *ca = arg;
    test_tls_srv_t *s = ca->srv;
    int fd = ca->fd;
    struct timeval tv = {.tv_sec = 5, .tv_usec = 0};
    char buf[16384];
    SSL *ssl;
    int n, off, w;

    free(ca);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    ssl = SSL_new(s->ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
        pthread_mutex_lock(&s->lock);
        s->handshakes++;
        if (SSL_session_reused(ssl))
            s->resumed++;
        pthread_mutex_unlock(&s->lock);
        for (;;) {
            if (SSL_pending(ssl) == 0 && !wait_readable(fd, &s->stop))
                break;
            n = SSL_read(ssl, buf, sizeof(buf));
            if (n <= 0)
                break;
            for (off = 0; off < n; off += w) {
                w = SSL_write(ssl, buf + off, n - off);
                if (w <= 0)
                    goto done;
            }
        }
    }
done:
    ERR_clear_error();
    SSL_free(ssl);
    shutdown(fd, SHUT_RDWR);
    return NULL;
}

static void *
tls_srv_main(void *arg)
{
    test_tls_srv_t *s = arg;
    tls_conn_arg_t *ca;
    int fd, i;

    while (!s->stop) {
        if (!wait_readable(s->fd, &s->stop))
            break;
        fd = accept(s->fd, NULL, NULL);
        if (fd < 0)
            continue;
        pthread_mutex_lock(&s->lock);
        i = s->accepted;
        if (i >= TEST_TLS_MAX_CONNS) {
            pthread_mutex_unlock(&s->lock);
            close(fd);
            continue;
        }
        s->accepted++;
        pthread_mutex_unlock(&s->lock);
        ca = malloc(sizeof(*ca));
        ca->srv = s;
        ca->fd = fd;
        s->conn_fds[i] = fd;
        if (pthread_create(&s->conn_threads[i], NULL, tls_srv_conn_main, ca) != 0) {
            free(ca);
            s->conn_fds[i] = -1;
            close(fd);
        }
    }
    return NULL;
}

int
test_tls_srv_start(test_tls_srv_t *s, const test_cert_t *tc)
{
    struct sockaddr_in addr;
    socklen_t len = sizeof(addr);
    int one = 1;

    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->ctx = SSL_CTX_new(TLS_server_method());
    if (s->ctx == NULL || SSL_CTX_use_certificate(s->ctx, tc->cert) != 1 ||
        SSL_CTX_use_PrivateKey(s->ctx, tc->key) != 1)
        return -1;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(s->fd, 16) < 0 ||
        getsockname(s->fd, (struct sockaddr *)&addr, &len) < 0)
        return -1;
    s->port = ntohs(addr.sin_port);
    return pthread_create(&s->thread, NULL, tls_srv_main, s) == 0 ? 0 : -1;
}

void
test_tls_srv_stop(test_tls_srv_t *s)
{
    int i;

    s->stop = 1;
    pthread_join(s->thread, NULL);
    for (i = 0; i < s->accepted; i++) {
        if (s->conn_fds[i] >= 0) {
            pthread_join(s->conn_threads[i], NULL);
            close(s->conn_fds[i]);
        }
    }
    close(s->fd);
    pthread_mutex_destroy(&s->lock);
    SSL_CTX_free(s->ctx);
}
