/* ocsp.c - OCSP responses fetched for stapling, shared by the workers (ocsp.h). */

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/http.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "base/log.h"
#include "base/time.h"
#include "http/ocsp.h"
#include "upstream/upstream.h"

#define SL_OCSP_DER_MAX 16384          /* a larger response is refused */
#define SL_OCSP_FETCH_TIMEOUT_MS 10000 /* connect + exchange */
#define SL_OCSP_CLAIM_MS 30000         /* a claim never reported is taken over then */
#define SL_OCSP_RETRY_MAX_MS 300000    /* a failed fetch is retried within this */
#define SL_OCSP_TICK_MS 1000           /* every worker looks for due slots this often */
#define SL_OCSP_LEEWAY_S 300           /* thisUpdate in the future, clocks apart */

/* One certificate's slot, in the MAP_SHARED mapping.  The single writer
 * (the worker holding the claim) makes `seq` odd while it copies; readers
 * retry when it was odd or moved. */
typedef struct sl_ocsp_shared {
    _Atomic int64_t next_fetch_ms; /* CLOCK_MONOTONIC; 0 = at once */
    _Atomic unsigned seq;
    _Atomic int failing; /* the kind of failure logged last, 0 none */
    int64_t valid_until; /* wall clock, s: the response's nextUpdate; 0 = none */
    unsigned len;        /* 0 = nothing to staple */
    unsigned char der[SL_OCSP_DER_MAX];
} sl_ocsp_shared_t;

/* What a worker needs to fetch for one certificate (built by the master,
 * inherited). */
typedef struct sl_ocsp_cert {
    X509 *cert, *issuer;
    OCSP_CERTID *id;
    OCSP_REQUEST *req;
    char *url, *host, *port, *path;
    int tls;
    char name[160]; /* subject, for the log */
} sl_ocsp_cert_t;

struct sl_ocsp {
    sl_ocsp_cert_t *c;
    size_t n;
    unsigned refresh_s;
    sl_ocsp_shared_t *sh;
    size_t sh_size;
};

/* ---- the generation's certificates (master) ----------------------------- */

sl_ocsp_t *
sl_ocsp_new(unsigned refresh_s)
{
    sl_ocsp_t *o = sl_xcalloc(1, sizeof(*o));

    o->refresh_s = refresh_s ? refresh_s : 3600;
    return o;
}

static X509 *
issuer_of(X509 *x, STACK_OF(X509) * chain)
{
    for (int i = 0; i < sk_X509_num(chain); i++)
        if (X509_check_issued(sk_X509_value(chain, i), x) == X509_V_OK)
            return sk_X509_value(chain, i);
    return NULL;
}

int
sl_ocsp_add(sl_ocsp_t *o, X509 *x, STACK_OF(X509) * chain, const char *responder)
{
    sl_ocsp_cert_t c = {0};
    STACK_OF(OPENSSL_STRING) *aia = NULL;
    X509 *issuer;

    for (size_t i = 0; i < o->n; i++)
        if (X509_cmp(o->c[i].cert, x) == 0)
            return 0;
    X509_NAME_oneline(X509_get_subject_name(x), c.name, sizeof(c.name));
    if ((issuer = issuer_of(x, chain)) == NULL) {
        sl_log_warn("ssl_stapling: certificate %s: its issuer is not in the chain after it, "
                    "not stapled",
                    c.name);
        return 0;
    }
    if (responder == NULL) {
        aia = X509_get1_ocsp(x);
        responder = sk_OPENSSL_STRING_num(aia) > 0 ? sk_OPENSSL_STRING_value(aia, 0) : NULL;
    }
    if (responder == NULL) {
        sl_log_warn("ssl_stapling: certificate %s names no OCSP responder (set "
                    "ssl_stapling_responder), not stapled",
                    c.name);
        X509_email_free(aia);
        return 0;
    }
    c.url = sl_strndup(responder, strlen(responder));
    X509_email_free(aia);
    if (OSSL_HTTP_parse_url(c.url, &c.tls, NULL, &c.host, &c.port, NULL, &c.path, NULL, NULL) !=
        1) {
        ERR_clear_error();
        sl_log_warn("ssl_stapling: certificate %s: responder URL '%s' cannot be parsed, not "
                    "stapled",
                    c.name, c.url);
        free(c.url);
        return 0;
    }
    c.id = OCSP_cert_to_id(NULL, x, issuer);
    c.req = OCSP_REQUEST_new();
    OCSP_CERTID *id2 = c.id ? OCSP_CERTID_dup(c.id) : NULL;
    if (c.id == NULL || c.req == NULL || id2 == NULL || OCSP_request_add0_id(c.req, id2) == NULL) {
        OCSP_CERTID_free(id2);
        OCSP_CERTID_free(c.id);
        OCSP_REQUEST_free(c.req);
        OPENSSL_free(c.host);
        OPENSSL_free(c.port);
        OPENSSL_free(c.path);
        free(c.url);
        ERR_clear_error();
        sl_log_warn("ssl_stapling: certificate %s: cannot build the OCSP request, not stapled",
                    c.name);
        return 0;
    }
    X509_up_ref(x);
    X509_up_ref(issuer);
    c.cert = x;
    c.issuer = issuer;
    o->c = sl_xrealloc(o->c, (o->n + 1) * sizeof(*o->c));
    o->c[o->n++] = c;
    return 0;
}

int
sl_ocsp_seal(sl_ocsp_t *o, sl_errors_t *errs)
{
    if (o->n == 0)
        return 0;
    o->sh_size = o->n * sizeof(sl_ocsp_shared_t);
    void *m = mmap(NULL, o->sh_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
        sl_errors_add(errs, "ssl_stapling: cannot map the shared responses");
        o->sh_size = 0;
        return -1;
    }
    o->sh = m; /* zeroed: nothing stapled, every slot due at once */
    return 0;
}

void
sl_ocsp_free(sl_ocsp_t *o)
{
    if (o == NULL)
        return;
    for (size_t i = 0; i < o->n; i++) {
        sl_ocsp_cert_t *c = &o->c[i];
        X509_free(c->cert);
        X509_free(c->issuer);
        OCSP_CERTID_free(c->id);
        OCSP_REQUEST_free(c->req);
        OPENSSL_free(c->host);
        OPENSSL_free(c->port);
        OPENSSL_free(c->path);
        free(c->url);
    }
    free(o->c);
    if (o->sh)
        munmap(o->sh, o->sh_size);
    free(o);
}

/* ---- stapling (any worker, in a handshake) ------------------------------- */

int
sl_ocsp_staple(const sl_ocsp_t *o, X509 *x, SSL *ssl)
{
    if (o == NULL || o->sh == NULL || x == NULL)
        return 0;
    for (size_t i = 0; i < o->n; i++) {
        if (X509_cmp(o->c[i].cert, x) != 0)
            continue;
        sl_ocsp_shared_t *sh = &o->sh[i];
        for (int tries = 0; tries < 8; tries++) {
            unsigned s1 = atomic_load_explicit(&sh->seq, memory_order_acquire);
            if (s1 & 1)
                continue;
            unsigned len = sh->len;
            int64_t until = sh->valid_until;
            if (len == 0 || len > SL_OCSP_DER_MAX || (until != 0 && until < (int64_t)time(NULL)))
                return 0; /* none, or expired: a client would refuse it */
            unsigned char *copy = OPENSSL_malloc(len);
            if (copy == NULL)
                return 0;
            memcpy(copy, sh->der, len);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&sh->seq, memory_order_relaxed) != s1) {
                OPENSSL_free(copy);
                continue;
            }
            if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, (long)len) != 1) {
                OPENSSL_free(copy);
                return 0;
            }
            return 1;
        }
        return 0;
    }
    return 0;
}

static void
shared_store(sl_ocsp_shared_t *sh, const unsigned char *der, unsigned len, int64_t until)
{
    unsigned s = atomic_load_explicit(&sh->seq, memory_order_relaxed);

    atomic_store_explicit(&sh->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    if (len > 0)
        memcpy(sh->der, der, len);
    sh->len = len;
    sh->valid_until = until;
    atomic_store_explicit(&sh->seq, s + 2, memory_order_release);
}

/* ---- fetching (workers) -------------------------------------------------- */

typedef struct sl_ocsp_fetch {
    sl_ocsp_fetcher_t *f;
    size_t i;
    sl_upconnect_t *pending;
    sl_upconn_t *c;
    OSSL_HTTP_REQ_CTX *rctx;
    BIO *wbio, *rbio; /* request bytes out, response bytes in */
    char *out;        /* request bytes being written */
    uv_timer_t timer;
    int writing;
} sl_ocsp_fetch_t;

struct sl_ocsp_fetcher {
    uv_loop_t *loop;
    const sl_ocsp_t *o;
    sl_uppool_t *pool;
    uv_timer_t *tick;
    sl_ocsp_fetch_t **inflight; /* by slot */
    int stopped;
};

static void
fetch_close_cb(uv_handle_t *h)
{
    sl_ocsp_fetch_t *fe = h->data;

    free(fe->out);
    free(fe);
}

/* Free a fetch's resources (its memory goes with the timer's close). */
static void
fetch_release(sl_ocsp_fetch_t *fe)
{
    fe->f->inflight[fe->i] = NULL;
    if (fe->pending)
        sl_upconnect_cancel(fe->pending);
    if (fe->c)
        sl_upconn_release(fe->c, 0);
    OSSL_HTTP_REQ_CTX_free(fe->rctx); /* frees neither BIO */
    BIO_free(fe->wbio);
    BIO_free(fe->rbio);
    uv_timer_stop(&fe->timer);
    uv_close((uv_handle_t *)&fe->timer, fetch_close_cb);
}

/* The CA's verdict on a certificate (it unstaples at once). */
static const char why_revoked[] = "the certificate is revoked";
static const char why_unknown[] = "the certificate is unknown to the responder";

enum { SL_OCSP_FAIL_FETCH = 1, SL_OCSP_FAIL_VERDICT = 2 };

/* End a fetch: `why` NULL on success (the response is stored), else the
 * failure, logged if it is the first since the last success or of another
 * kind than the one logged: a revocation that follows a responder outage
 * is logged too. */
static void
fetch_end(sl_ocsp_fetch_t *fe, const char *why, int64_t next_in_ms)
{
    const sl_ocsp_cert_t *c = &fe->f->o->c[fe->i];
    sl_ocsp_shared_t *sh = &fe->f->o->sh[fe->i];
    int kind = 0;
    if (why == why_revoked || why == why_unknown)
        kind = SL_OCSP_FAIL_VERDICT;
    else if (why != NULL)
        kind = SL_OCSP_FAIL_FETCH;
    int was = atomic_exchange(&sh->failing, kind);

    if (kind != 0 && was != kind)
        sl_log_warn("ssl_stapling: certificate %s: responder %s: %s; not stapled until a fetch "
                    "succeeds (a previous good response, until its nextUpdate)",
                    c->name, c->url, why);
    else if (kind == 0 && was != 0)
        sl_log_info("ssl_stapling: certificate %s: responder %s answers again", c->name, c->url);
    else if (why == NULL)
        sl_log_debug("ssl_stapling: certificate %s: response fetched from %s", c->name, c->url);
    atomic_store(&sh->next_fetch_ms, sl_mono_ms() + next_in_ms);
    fetch_release(fe);
}

static int64_t
retry_ms(const sl_ocsp_fetcher_t *f)
{
    int64_t r = (int64_t)f->o->refresh_s * 1000;
    return r < SL_OCSP_RETRY_MAX_MS ? r : SL_OCSP_RETRY_MAX_MS;
}

static void
fetch_fail(sl_ocsp_fetch_t *fe, const char *why)
{
    fetch_end(fe, why, retry_ms(fe->f));
}

/* A response: check it, store it, schedule the next fetch.  NULL, or why
 * it is refused. */
static const char *
accept_response(sl_ocsp_fetch_t *fe, OCSP_RESPONSE *resp, int64_t *next_ms)
{
    const sl_ocsp_cert_t *c = &fe->f->o->c[fe->i];
    OCSP_BASICRESP *bs = NULL;
    X509_STORE *st = NULL;
    STACK_OF(X509) *certs = NULL;
    ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL;
    unsigned char *der = NULL;
    const char *why = NULL;
    int status = -1, reason = 0, len;

    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL)
        return OCSP_response_status_str(OCSP_response_status(resp));
    if ((bs = OCSP_response_get1_basic(resp)) == NULL)
        return "not a basic OCSP response";
    st = X509_STORE_new();
    certs = sk_X509_new_null();
    if (st == NULL || certs == NULL || X509_STORE_add_cert(st, c->issuer) != 1 ||
        !sk_X509_push(certs, c->issuer)) {
        why = "out of memory";
        goto out;
    }
    X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN); /* the issuer may be an intermediate */
    if (OCSP_basic_verify(bs, certs, st, 0) != 1) {
        why = "the response is not signed by the issuer or a responder it names";
        goto out;
    }
    if (OCSP_resp_find_status(bs, c->id, &status, &reason, NULL, &thisupd, &nextupd) != 1) {
        why = "the response is not for this certificate";
        goto out;
    }
    if (status != V_OCSP_CERTSTATUS_GOOD) {
        why = status == V_OCSP_CERTSTATUS_REVOKED ? why_revoked : why_unknown;
        /* the CA's word: an older "good" must not be stapled any more */
        shared_store(&fe->f->o->sh[fe->i], NULL, 0, 0);
        goto out;
    }
    if (OCSP_check_validity(thisupd, nextupd, SL_OCSP_LEEWAY_S, -1) != 1) {
        why = "the response is not valid now (expired or not yet valid)";
        goto out;
    }
    if ((len = i2d_OCSP_RESPONSE(resp, &der)) <= 0 || len > SL_OCSP_DER_MAX) {
        why = "the response is larger than 16 KiB";
        goto out;
    }
    int64_t until = 0;
    *next_ms = (int64_t)fe->f->o->refresh_s * 1000;
    if (nextupd != NULL) {
        struct tm tm;
        if (ASN1_TIME_to_tm(nextupd, &tm) == 1) {
            until = (int64_t)timegm(&tm);
            /* halfway to nextUpdate, if sooner than the refresh period */
            int64_t half = (until - (int64_t)time(NULL)) * 1000 / 2;
            if (half < 1000)
                half = 1000;
            if (half < *next_ms)
                *next_ms = half;
        }
    }
    shared_store(&fe->f->o->sh[fe->i], der, (unsigned)len, until);
out:
    OPENSSL_free(der);
    sk_X509_free(certs);
    X509_STORE_free(st);
    OCSP_BASICRESP_free(bs);
    ERR_clear_error();
    return why;
}

static void fetch_written(void *arg, int status);

/* Let OpenSSL's HTTP client step; send what it wrote, finish when it has
 * the response. */
static void
fetch_pump(sl_ocsp_fetch_t *fe)
{
    ASN1_VALUE *val = NULL;
    int rv = OSSL_HTTP_REQ_CTX_nbio_d2i(fe->rctx, &val, ASN1_ITEM_rptr(OCSP_RESPONSE));

    if (rv == 1) {
        int64_t next_ms = 0;
        const char *why = accept_response(fe, (OCSP_RESPONSE *)val, &next_ms);
        OCSP_RESPONSE_free((OCSP_RESPONSE *)val);
        if (why)
            fetch_fail(fe, why);
        else
            fetch_end(fe, NULL, next_ms);
        return;
    }
    if (rv == 0) {
        unsigned long e = ERR_peek_last_error();
        const char *r = e ? ERR_reason_error_string(e) : NULL;
        ERR_clear_error();
        fetch_fail(fe, r ? r : "bad HTTP response");
        return;
    }
    char *data = NULL;
    long n = BIO_get_mem_data(fe->wbio, &data);
    if (n > 0 && !fe->writing) {
        free(fe->out);
        fe->out = sl_xmalloc((size_t)n);
        memcpy(fe->out, data, (size_t)n);
        (void)BIO_reset(fe->wbio);
        uv_buf_t b = uv_buf_init(fe->out, (unsigned)n);
        fe->writing = 1;
        if (sl_upconn_write(fe->c, &b, 1, fetch_written, fe) < 0)
            fetch_fail(fe, "cannot send the request");
    }
}

static void
fetch_written(void *arg, int status)
{
    sl_ocsp_fetch_t *fe = arg;

    fe->writing = 0;
    if (status < 0)
        fetch_fail(fe, uv_strerror(status));
    else
        fetch_pump(fe);
}

static void
fetch_read(void *arg, const char *data, ssize_t n)
{
    sl_ocsp_fetch_t *fe = arg;

    if (n == UV_EOF) {
        BIO_set_mem_eof_return(fe->rbio, 0); /* a response read to the close */
    } else if (n < 0) {
        fetch_fail(fe, uv_strerror((int)n));
        return;
    } else if (BIO_write(fe->rbio, data, (int)n) != (int)n) {
        fetch_fail(fe, "out of memory");
        return;
    }
    fetch_pump(fe);
}

static void
fetch_connected(void *arg, sl_upconn_t *c, int status, const char *errmsg)
{
    sl_ocsp_fetch_t *fe = arg;

    fe->pending = NULL;
    if (status < 0) {
        fetch_fail(fe, errmsg && *errmsg ? errmsg : uv_strerror(status));
        return;
    }
    fe->c = c;
    if (sl_upconn_read_start(c, fetch_read, fe) < 0) {
        fetch_fail(fe, "cannot read from the responder");
        return;
    }
    fetch_pump(fe);
}

static void
fetch_timeout(uv_timer_t *t)
{
    fetch_fail(t->data, "timed out");
}

static void
fetch_start(sl_ocsp_fetcher_t *f, size_t i)
{
    const sl_ocsp_cert_t *c = &f->o->c[i];
    sl_ocsp_fetch_t *fe = sl_xcalloc(1, sizeof(*fe));
    char hostport[300];

    fe->f = f;
    fe->i = i;
    f->inflight[i] = fe;
    uv_timer_init(f->loop, &fe->timer);
    fe->timer.data = fe;
    uv_timer_start(&fe->timer, fetch_timeout, SL_OCSP_FETCH_TIMEOUT_MS, 0);
    fe->wbio = BIO_new(BIO_s_mem());
    fe->rbio = BIO_new(BIO_s_mem());
    if (fe->rbio)
        BIO_set_mem_eof_return(fe->rbio, -1); /* empty = "retry", not EOF */
    snprintf(hostport, sizeof(hostport), strchr(c->host, ':') ? "[%s]:%s" : "%s:%s", c->host,
             c->port);
    if (fe->wbio == NULL || fe->rbio == NULL ||
        (fe->rctx = OSSL_HTTP_REQ_CTX_new(fe->wbio, fe->rbio, 0)) == NULL ||
        OSSL_HTTP_REQ_CTX_set_request_line(fe->rctx, 1, NULL, NULL, c->path) != 1 ||
        OSSL_HTTP_REQ_CTX_add1_header(fe->rctx, "Host", hostport) != 1 ||
        OSSL_HTTP_REQ_CTX_set_expected(fe->rctx, "application/ocsp-response", 1, 0, 0) != 1 ||
        OSSL_HTTP_REQ_CTX_set1_req(fe->rctx, "application/ocsp-request",
                                   ASN1_ITEM_rptr(OCSP_REQUEST), (const ASN1_VALUE *)c->req) != 1) {
        ERR_clear_error();
        fetch_fail(fe, "cannot build the HTTP request");
        return;
    }
    sl_upstream_target_t ut = {
        .tls = c->tls,
        .host = c->host,
        .port = atoi(c->port),
        .tls_verify = 1,
        .connect_timeout_ms = SL_OCSP_FETCH_TIMEOUT_MS,
    };
    if (sl_upconnect_start(f->pool, &ut, fetch_connected, fe, &fe->pending) < 0) {
        fe->pending = NULL;
        fetch_fail(fe, "cannot start connecting");
    }
}

/* Every worker ticks; a due slot is claimed by the worker whose
 * compare-and-swap moves its next-fetch time past the fetch's life. */
static void
on_tick(uv_timer_t *t)
{
    sl_ocsp_fetcher_t *f = t->data;
    int64_t now = sl_mono_ms();

    for (size_t i = 0; i < f->o->n && !f->stopped; i++) {
        int64_t due = atomic_load(&f->o->sh[i].next_fetch_ms);
        if (now < due || f->inflight[i] != NULL)
            continue;
        if (atomic_compare_exchange_strong(&f->o->sh[i].next_fetch_ms, &due,
                                           now + SL_OCSP_CLAIM_MS))
            fetch_start(f, i);
    }
}

sl_ocsp_fetcher_t *
sl_ocsp_fetcher_start(uv_loop_t *loop, const sl_ocsp_t *o, sl_dns_t *dns)
{
    sl_uppool_options_t po = {.keepalive_max_idle = 0, .dns = dns};
    sl_ocsp_fetcher_t *f;

    if (o == NULL || o->n == 0 || o->sh == NULL)
        return NULL;
    f = sl_xcalloc(1, sizeof(*f));
    f->loop = loop;
    f->o = o;
    f->inflight = sl_xcalloc(o->n, sizeof(*f->inflight));
    f->pool = sl_uppool_new(loop, &po);
    f->tick = sl_xmalloc(sizeof(*f->tick));
    uv_timer_init(loop, f->tick);
    f->tick->data = f;
    uv_timer_start(f->tick, on_tick, 0, SL_OCSP_TICK_MS);
    uv_unref((uv_handle_t *)f->tick); /* never keeps a stopping loop alive */
    return f;
}

static void
tick_close_cb(uv_handle_t *h)
{
    free(h);
}

void
sl_ocsp_fetcher_stop(sl_ocsp_fetcher_t *f)
{
    if (f == NULL || f->stopped)
        return;
    f->stopped = 1;
    uv_timer_stop(f->tick);
    uv_close((uv_handle_t *)f->tick, tick_close_cb);
    for (size_t i = 0; i < f->o->n; i++) {
        if (f->inflight[i]) { /* abandoned: due again at once for the other workers */
            atomic_store(&f->o->sh[i].next_fetch_ms, 0);
            fetch_release(f->inflight[i]);
        }
    }
    if (f->pool) {
        sl_uppool_free(f->pool);
        f->pool = NULL;
    }
}

void
sl_ocsp_fetcher_free(sl_ocsp_fetcher_t *f)
{
    if (f == NULL)
        return;
    sl_ocsp_fetcher_stop(f);
    free(f->inflight);
    free(f);
}
