/* tls.c - client-side TLS over memory BIOs (OpenSSL 3).
 *
 * Why memory BIOs: libuv owns the socket and its readiness events, so the
 * SSL object reads from one memory BIO (what we fed it) and writes to
 * another (what we will uv_write); OpenSSL never blocks and never sees the
 * fd.  Why a session cache keyed by host: a gateway reconnects to the same
 * few upstreams all day, and resumption saves a full handshake each time. */

#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "upstream/dns.h"
#include "upstream/tls.h"
#include "upstream/upstream.h"

#define SL_TLS_MAX_SESSIONS 256

typedef struct sl_tls_session {
    struct sl_tls_session *next;
    char *key; /* "verify|host|port" */
    SSL_SESSION *sess;
} sl_tls_session_t;

struct sl_tls_ctx {
    unsigned refs;
    SSL_CTX *ssl_ctx[2];        /* [verify] */
    sl_tls_session_t *sessions; /* newest first */
    unsigned nsessions;
};

struct sl_tls {
    sl_tls_ctx_t *ctx;
    SSL *ssl;
    BIO *rbio; /* peer -> OpenSSL */
    BIO *wbio; /* OpenSSL -> peer */
    char *key; /* session cache key */
};

static int
tls_new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
    sl_tls_t *t = SSL_get_app_data(ssl);
    sl_tls_ctx_t *ctx;
    sl_tls_session_t **pp, *s;

    if (t == NULL || t->key == NULL || !SSL_SESSION_is_resumable(sess))
        return 0;
    ctx = t->ctx;
    /* Keep only the newest session per key; evict the oldest overall. */
    for (pp = &ctx->sessions; (s = *pp) != NULL;) {
        if (strcmp(s->key, t->key) == 0 ||
            (ctx->nsessions >= SL_TLS_MAX_SESSIONS && s->next == NULL)) {
            *pp = s->next;
            ctx->nsessions--;
            SSL_SESSION_free(s->sess);
            free(s->key);
            free(s);
            continue;
        }
        pp = &s->next;
    }
    s = sl_xcalloc(1, sizeof(*s));
    s->key = sl_strndup(t->key, strlen(t->key));
    s->sess = sess;
    s->next = ctx->sessions;
    ctx->sessions = s;
    ctx->nsessions++;
    return 1; /* we keep the reference */
}

sl_tls_ctx_t *
sl_tls_ctx_new(void)
{
    sl_tls_ctx_t *ctx = sl_xcalloc(1, sizeof(*ctx));

    ctx->refs = 1;
    return ctx;
}

static void
tls_ctx_unref(sl_tls_ctx_t *ctx)
{
    sl_tls_session_t *s, *next;

    if (--ctx->refs > 0)
        return;
    for (s = ctx->sessions; s != NULL; s = next) {
        next = s->next;
        SSL_SESSION_free(s->sess);
        free(s->key);
        free(s);
    }
    SSL_CTX_free(ctx->ssl_ctx[0]);
    SSL_CTX_free(ctx->ssl_ctx[1]);
    free(ctx);
}

void
sl_tls_ctx_free(sl_tls_ctx_t *ctx)
{
    if (ctx != NULL)
        tls_ctx_unref(ctx);
}

/* The reason of the oldest queued OpenSSL error, or a fallback. */
static void
tls_errtext(char *err, size_t errlen, const char *what, const char *fallback)
{
    unsigned long e = ERR_get_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    snprintf(err, errlen, "%s: %s", what, reason ? reason : fallback);
    ERR_clear_error();
}

static SSL_CTX *
tls_ssl_ctx(sl_tls_ctx_t *ctx, int verify, char *err, size_t errlen)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX *c;

    if (ctx->ssl_ctx[verify] != NULL)
        return ctx->ssl_ctx[verify];

    ERR_clear_error();
    c = SSL_CTX_new(TLS_client_method());
    if (c == NULL) {
        tls_errtext(err, errlen, "SSL_CTX_new failed", "unknown error");
        return NULL;
    }
    if (!SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) ||
        SSL_CTX_set_alpn_protos(c, alpn, sizeof(alpn) - 1) != 0) {
        tls_errtext(err, errlen, "TLS context setup failed", "unknown error");
        SSL_CTX_free(c);
        return NULL;
    }
    /* A client has no use for renegotiation; refusing it also means
     * SSL_write never has to wait for a read. */
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    if (verify) {
        /* System CA store; OpenSSL honours SSL_CERT_FILE / SSL_CERT_DIR. */
        if (!SSL_CTX_set_default_verify_paths(c)) {
            tls_errtext(err, errlen, "loading the system CA store failed", "unknown error");
            SSL_CTX_free(c);
            return NULL;
        }
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    }
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(c, tls_new_session_cb);
    ctx->ssl_ctx[verify] = c;
    return c;
}

sl_tls_t *
sl_tls_new(sl_tls_ctx_t *ctx, const char *host, int port, int verify, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    sl_tls_session_t *s;
    SSL_CTX *c;
    sl_tls_t *t;
    char key[600];
    char ipbuf[64];
    const char *name = host;
    size_t len;
    int is_ip;

    verify = verify ? 1 : 0;
    c = tls_ssl_ctx(ctx, verify, err, errlen);
    if (c == NULL)
        return NULL;

    t = sl_xcalloc(1, sizeof(*t));
    t->ctx = ctx;
    ctx->refs++;
    t->ssl = SSL_new(c);
    t->rbio = BIO_new(BIO_s_mem());
    t->wbio = BIO_new(BIO_s_mem());
    if (t->ssl == NULL || t->rbio == NULL || t->wbio == NULL) {
        tls_errtext(err, errlen, "SSL_new failed", "out of memory");
        BIO_free(t->rbio);
        BIO_free(t->wbio);
        t->rbio = t->wbio = NULL;
        sl_tls_free(t);
        return NULL;
    }
    /* An empty read BIO means "wait for more", not end of stream. */
    BIO_set_mem_eof_return(t->rbio, -1);
    SSL_set_bio(t->ssl, t->rbio, t->wbio);
    SSL_set_app_data(t->ssl, t);
    SSL_set_connect_state(t->ssl);

    is_ip = sl_dns_parse_ip(host, &ss);
    if (is_ip) {
        /* Verification wants the bare address, without [brackets]. */
        len = strlen(host);
        if (host[0] == '[' && len >= 2 && len - 2 < sizeof(ipbuf)) {
            memcpy(ipbuf, host + 1, len - 2);
            ipbuf[len - 2] = '\0';
            name = ipbuf;
        }
    } else if (!SSL_set_tlsext_host_name(t->ssl, host)) {
        tls_errtext(err, errlen, "setting SNI failed", "invalid host name");
        sl_tls_free(t);
        return NULL;
    }
    if (verify) {
        int ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name)
                       : SSL_set1_host(t->ssl, host);
        if (!ok) {
            tls_errtext(err, errlen, "setting the name to verify failed", "invalid host name");
            sl_tls_free(t);
            return NULL;
        }
    }

    snprintf(key, sizeof(key), "%d|%s|%d", verify, host, port);
    t->key = sl_strndup(key, strlen(key));
    for (s = ctx->sessions; s != NULL; s = s->next) {
        if (strcmp(s->key, t->key) == 0) {
            SSL_set_session(t->ssl, s->sess); /* failure only costs a full handshake */
            break;
        }
    }
    return t;
}

void
sl_tls_free(sl_tls_t *t)
{
    if (t == NULL)
        return;
    SSL_free(t->ssl); /* frees both BIOs too */
    free(t->key);
    tls_ctx_unref(t->ctx);
    free(t);
}

int
sl_tls_handshake(sl_tls_t *t, char *err, size_t errlen)
{
    long vr;
    int rc, e;
    unsigned long code;
    const char *reason;

    ERR_clear_error();
    rc = SSL_do_handshake(t->ssl);
    if (rc == 1)
        return 1;
    e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;

    code = ERR_get_error();
    reason = code ? ERR_reason_error_string(code) : NULL;
    vr = SSL_get_verify_result(t->ssl);
    if (vr != X509_V_OK)
        snprintf(err, errlen, "%s: %s", reason ? reason : "certificate verify failed",
                 X509_verify_cert_error_string(vr));
    else
        snprintf(err, errlen, "%s", reason ? reason : "TLS handshake failed");
    ERR_clear_error();
    return SL_UPERR_TLS;
}

void
sl_tls_feed(sl_tls_t *t, const char *data, size_t n)
{
    /* A memory BIO only fails to grow when malloc fails. */
    if (n > 0 && BIO_write(t->rbio, data, (int)n) != (int)n)
        abort();
}

ssize_t
sl_tls_read(sl_tls_t *t, char *buf, size_t size)
{
    int rc, e;

    ERR_clear_error();
    rc = SSL_read(t->ssl, buf, size > INT32_MAX ? INT32_MAX : (int)size);
    if (rc > 0)
        return rc;
    e = SSL_get_error(t->ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    if (e == SSL_ERROR_ZERO_RETURN)
        return UV_EOF;
    ERR_clear_error();
    return SL_UPERR_TLS;
}

int
sl_tls_write(sl_tls_t *t, const uv_buf_t *bufs, unsigned nbufs)
{
    unsigned i;
    size_t off;
    int rc, chunk;

    for (i = 0; i < nbufs; i++) {
        for (off = 0; off < bufs[i].len; off += (size_t)rc) {
            chunk = bufs[i].len - off > 1 << 20 ? 1 << 20 : (int)(bufs[i].len - off);
            ERR_clear_error();
            rc = SSL_write(t->ssl, bufs[i].base + off, chunk);
            if (rc <= 0) {
                ERR_clear_error();
                return SL_UPERR_TLS;
            }
        }
    }
    return 0;
}

char *
sl_tls_out_take(sl_tls_t *t, size_t *len)
{
    size_t n = BIO_ctrl_pending(t->wbio);
    char *buf;

    *len = 0;
    if (n == 0)
        return NULL;
    buf = sl_xmalloc(n);
    if (BIO_read(t->wbio, buf, (int)n) != (int)n)
        abort(); /* cannot happen with a memory BIO */
    *len = n;
    return buf;
}

int
sl_tls_has_input(const sl_tls_t *t)
{
    return SSL_has_pending(t->ssl) || BIO_ctrl_pending(t->rbio) > 0;
}

int
sl_tls_resumed(const sl_tls_t *t)
{
    return SSL_session_reused(t->ssl);
}
