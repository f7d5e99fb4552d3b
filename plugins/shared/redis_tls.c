/* redis_tls.c - TLS to Redis under hiredis 0.14, which has none: hiredis
 * talks to one end of a socketpair, this bridge pumps the other end
 * through an OpenSSL client connection on the socket hiredis opened.
 *
 * hiredis 0.14's async context can only be made by connecting, so the
 * context is made by redisAsyncConnect to Redis's TLS port as usual, and
 * before it is attached to a loop the bridge takes that socket (dup) and
 * puts a socketpair end at the context's fd number (dup3).  hiredis then
 * sees its connect complete at once (no SO_ERROR on the pair) and queues
 * its commands; the bridge waits for the real connect, shakes hands, and
 * only then carries what hiredis wrote.  A failed connect or handshake
 * (certificate refused, name mismatch) closes the bridge's end: hiredis
 * reads the end of its stream and calls its disconnect callback, which
 * finds the reason in the caller's buffer.  When hiredis closes its end
 * (freed, idle, dropped after a timeout), the bridge sees the hang-up
 * (UV_DISCONNECT) and closes the TLS connection. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "redis_tls.h"

#define RL_TLS_BUF 16384

enum { T_CONNECTING, T_HANDSHAKE, T_OPEN, T_CLOSED };

struct rl_tls {
    SSL *ssl;
    uv_poll_t net; /* the socket to Redis */
    uv_poll_t app; /* our end of hiredis's socketpair */
    int net_fd, app_fd;
    int state;
    int net_events, app_events; /* what each poll watches */
    int open;                   /* poll handles not yet closed */
    rl_tls_t **self;            /* the owner's pointer to us; NULL once forgotten */
    char *why;
    size_t whylen;
    size_t up_off, up_len; /* from hiredis, not yet taken by SSL_write */
    size_t dn_off, dn_len; /* from Redis, not yet taken by hiredis */
    char up[RL_TLS_BUF];
    char dn[RL_TLS_BUF];
};

SSL_CTX *
rl_tls_ctx_new(int verify, char *err, size_t errlen)
{
    SSL_CTX *c = SSL_CTX_new(TLS_client_method());

    if (c == NULL) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) ||
        (verify && !SSL_CTX_set_default_verify_paths(c))) {
        snprintf(err, errlen, "TLS context setup failed (the CA store could not be loaded)");
        SSL_CTX_free(c);
        return NULL;
    }
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_verify(c, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    return c;
}

static void
on_closed(uv_handle_t *h)
{
    rl_tls_t *t = h->data;

    if (--t->open > 0)
        return;
    close(t->net_fd);
    close(t->app_fd);
    SSL_free(t->ssl);
    free(t);
}

/* Close both ends; with a reason, the owner learns it (hiredis reads the
 * end of its stream right after). */
static void
finish(rl_tls_t *t, const char *reason)
{
    if (t->state == T_CLOSED)
        return;
    t->state = T_CLOSED;
    if (reason != NULL && t->why != NULL)
        snprintf(t->why, t->whylen, "%s", reason);
    if (t->self != NULL)
        *t->self = NULL;
    t->self = NULL;
    t->why = NULL;
    uv_close((uv_handle_t *)&t->net, on_closed);
    uv_close((uv_handle_t *)&t->app, on_closed);
}

/* The handshake or the connection failed: why, in words. */
static void
fail_ssl(rl_tls_t *t, const char *what, int ret)
{
    char buf[200];
    long v = SSL_get_verify_result(t->ssl);
    unsigned long e = ERR_peek_last_error();
    int se = SSL_get_error(t->ssl, ret);

    if (t->state == T_HANDSHAKE && (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER) &&
        v != X509_V_OK)
        snprintf(buf, sizeof(buf), "TLS %s: certificate refused: %s", what,
                 X509_verify_cert_error_string(v));
    else if (e != 0)
        snprintf(buf, sizeof(buf), "TLS %s: %s", what, ERR_reason_error_string(e));
    else if (se == SSL_ERROR_ZERO_RETURN || (se == SSL_ERROR_SYSCALL && errno == 0))
        snprintf(buf, sizeof(buf), "TLS %s: Redis closed the connection", what);
    else
        snprintf(buf, sizeof(buf), "TLS %s: %s", what,
                 se == SSL_ERROR_SYSCALL ? strerror(errno) : "failed");
    ERR_clear_error();
    finish(t, buf);
}

static void on_net(uv_poll_t *h, int status, int events);
static void on_app(uv_poll_t *h, int status, int events);

static void
watch(uv_poll_t *p, int *cur, int events, uv_poll_cb cb)
{
    if (events == *cur)
        return;
    *cur = events;
    uv_poll_start(p, events, cb);
}

/* What an SSL call that did not complete waits for (0: it failed). */
static int
ssl_wait(rl_tls_t *t, int ret)
{
    switch (SSL_get_error(t->ssl, ret)) {
    case SSL_ERROR_WANT_READ:
        return UV_READABLE;
    case SSL_ERROR_WANT_WRITE:
        return UV_WRITABLE;
    default:
        return 0;
    }
}

/* Move what can move, then watch for what everything waits on. */
static void
pump(rl_tls_t *t)
{
    int net_want, app_want, progress;

    ERR_clear_error(); /* SSL_get_error reads the thread's queue: only ours in it */
    do {
        progress = 0;
        net_want = 0;
        app_want = 0;
        if (t->state == T_HANDSHAKE) {
            int r = SSL_do_handshake(t->ssl);
            if (r == 1) {
                t->state = T_OPEN;
                progress = 1;
            } else if ((net_want = ssl_wait(t, r)) == 0) {
                fail_ssl(t, "handshake failed", r);
                return;
            }
        }
        if (t->state != T_OPEN)
            break;
        /* hiredis -> Redis */
        if (t->up_len == 0) {
            ssize_t n = read(t->app_fd, t->up, sizeof(t->up));
            if (n > 0) {
                t->up_off = 0;
                t->up_len = (size_t)n;
                progress = 1;
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                finish(t, NULL); /* hiredis let go */
                return;
            } else {
                app_want |= UV_READABLE;
            }
        }
        if (t->up_len > 0) {
            int r = SSL_write(t->ssl, t->up + t->up_off, (int)(t->up_len - t->up_off));
            if (r > 0) {
                t->up_off += (size_t)r;
                if (t->up_off == t->up_len)
                    t->up_len = 0;
                progress = 1;
            } else {
                int w = ssl_wait(t, r);
                if (w == 0) {
                    fail_ssl(t, "write failed", r);
                    return;
                }
                net_want |= w;
            }
        }
        /* Redis -> hiredis */
        if (t->dn_len == 0) {
            int r = SSL_read(t->ssl, t->dn, sizeof(t->dn));
            if (r > 0) {
                t->dn_off = 0;
                t->dn_len = (size_t)r;
                progress = 1;
            } else {
                int w = ssl_wait(t, r);
                if (w == 0) {
                    fail_ssl(t, "connection lost", r);
                    return;
                }
                net_want |= w;
            }
        }
        if (t->dn_len > 0) {
            ssize_t n = write(t->app_fd, t->dn + t->dn_off, t->dn_len - t->dn_off);
            if (n > 0) {
                t->dn_off += (size_t)n;
                if (t->dn_off == t->dn_len)
                    t->dn_len = 0;
                progress = 1;
            } else if (errno == EAGAIN || errno == EINTR) {
                app_want |= UV_WRITABLE;
            } else {
                finish(t, NULL);
                return;
            }
        }
    } while (progress);
    watch(&t->net, &t->net_events, net_want, on_net);
    watch(&t->app, &t->app_events, app_want | UV_DISCONNECT, on_app);
}

static void
on_net(uv_poll_t *h, int status, int events)
{
    rl_tls_t *t = h->data;

    (void)events;
    if (t->state == T_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (status == 0 && getsockopt(t->net_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
            err = errno;
        if (status != 0 || err != 0) {
            char buf[160];
            snprintf(buf, sizeof(buf), "connect failed: %s",
                     status != 0 ? uv_strerror(status) : strerror(err));
            finish(t, buf);
            return;
        }
        t->state = T_HANDSHAKE;
    }
    pump(t);
}

static void
on_app(uv_poll_t *h, int status, int events)
{
    rl_tls_t *t = h->data;

    if (status != 0 || (events & UV_DISCONNECT)) {
        /* hiredis closed its end; what it still wrote is dropped with it */
        finish(t, NULL);
        return;
    }
    pump(t);
}

static int
is_ip(const char *s)
{
    unsigned char a[16];

    return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

int
rl_tls_wrap(redisAsyncContext *ac, uv_loop_t *loop, SSL_CTX *ctx, const char *name, int verify,
            rl_tls_t **self, char *why, size_t whylen)
{
    rl_tls_t *t;
    int sv[2];
    int ok;

    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    t->ssl = SSL_new(ctx);
    if (t->ssl == NULL) {
        free(t);
        snprintf(why, whylen, "SSL_new failed");
        return -1;
    }
    SSL_set_connect_state(t->ssl);
    ok = is_ip(name) ? 1 : SSL_set_tlsext_host_name(t->ssl, name);
    if (ok && verify)
        ok = is_ip(name) ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name)
                         : SSL_set1_host(t->ssl, name);
    if (!ok) {
        SSL_free(t->ssl);
        free(t);
        snprintf(why, whylen, "'%s' cannot be a TLS server name", name);
        return -1;
    }
    /* The socket hiredis is connecting becomes ours; a socketpair end
     * takes its place under the same number. */
    t->net_fd = fcntl(ac->c.fd, F_DUPFD_CLOEXEC, 0);
    if (t->net_fd < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)) {
        snprintf(why, whylen, "TLS bridge: %s", strerror(errno));
        if (t->net_fd >= 0)
            close(t->net_fd);
        SSL_free(t->ssl);
        free(t);
        return -1;
    }
    if (dup3(sv[0], ac->c.fd, O_CLOEXEC) < 0 || !SSL_set_fd(t->ssl, t->net_fd) ||
        uv_poll_init(loop, &t->net, t->net_fd) != 0) {
        snprintf(why, whylen, "TLS bridge: setup failed");
        close(sv[0]);
        close(sv[1]);
        close(t->net_fd);
        SSL_free(t->ssl);
        free(t);
        return -1;
    }
    close(sv[0]);
    t->app_fd = sv[1];
    uv_poll_init(loop, &t->app, t->app_fd); /* a socket: cannot fail */
    t->net.data = t;
    t->app.data = t;
    t->open = 2;
    t->state = T_CONNECTING;
    t->self = self;
    t->why = why;
    t->whylen = whylen;
    why[0] = '\0';
    *self = t;
    watch(&t->net, &t->net_events, UV_WRITABLE, on_net); /* the connect's end */
    watch(&t->app, &t->app_events, UV_DISCONNECT, on_app);
    return 0;
}

void
rl_tls_forget(rl_tls_t *t)
{
    if (t == NULL)
        return;
    t->self = NULL;
    t->why = NULL;
}

void
rl_tls_close(rl_tls_t *t)
{
    if (t != NULL)
        finish(t, NULL);
}
