/* tls_server.c - TLS towards clients over memory BIOs (tls_server.h). */

#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "base/log.h"
#include "conf/name_index.h"
#include "http/ocsp.h"
#include "http/tls_server.h"

/* Mozilla's "intermediate" TLS 1.2 list (forward secrecy, AEAD only). */
#define SL_TLS12_CIPHERS                                                                           \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* ---- contexts ------------------------------------------------------------ */

typedef struct sl_stls_name {
    char *name; /* lowercase; may start with "*." or end with ".*" */
    SSL_CTX *ctx;
} sl_stls_name_t;

struct sl_stls {
    SSL_CTX *def; /* default certificate(s); also the handshake's first ctx */
    SSL_CTX **ctxs;
    size_t nctxs; /* one per config certificate */
    sl_stls_name_t *names;
    size_t nnames;
    /* names by kind (exact, "*.x", "x.*"), under the tag of the part a
     * host must equal: the name, ".x", "x." (items: index + 1) */
    sl_kindex_t by_kind[3];
    /* OCSP responses to staple (ssl_stapling_file), by certificate */
    struct sl_staple {
        X509 *cert;
        unsigned char *der;
        int len;
    } * staples;
    size_t nstaples;
    sl_ocsp_t *ocsp; /* responses fetched by the workers (ssl_stapling on); NULL = off */
};

struct sl_stls_conn {
    sl_stls_t *t;
    SSL *ssl;
    BIO *rbio, *wbio;
    int established;
};

static int
alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
        unsigned inlen, void *arg)
{
    static const unsigned char h1[] = "\x08http/1.1";

    (void)ssl;
    (void)arg;
    if (SSL_select_next_proto((unsigned char **)out, outlen, h1, sizeof(h1) - 1, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* no http/1.1 offered: RFC 7301 says refuse */
    return SSL_TLSEXT_ERR_OK;
}

/* A name's kind: 0 exact, 1 "*.example.com" (one more label on the
 * left), 2 "example.*" (any last label); and the part of it a host must
 * equal (without case): the name, ".example.com", "example.". */
static int
name_kind(const char *n, size_t len, const char **key, size_t *klen)
{
    if (n[0] == '*') {
        *key = n + 1, *klen = len - 1;
        return 1;
    }
    *key = n;
    *klen = len && n[len - 1] == '*' ? len - 1 : len;
    return len && n[len - 1] == '*' ? 2 : 0;
}

static SSL_CTX *
probe(const sl_stls_t *t, int kind, const char *key, size_t klen)
{
    size_t cur = SL_KINDEX_START, i;
    uint64_t tag = sl_names_tag(key, klen, 1);

    while ((i = (size_t)(uintptr_t)sl_kindex_next(&t->by_kind[kind], tag, &cur)) != 0) {
        const char *k;
        size_t kl;
        name_kind(t->names[i - 1].name, strlen(t->names[i - 1].name), &k, &kl);
        if (kl == klen && strncasecmp(k, key, klen) == 0)
            return t->names[i - 1].ctx;
    }
    return NULL;
}

/* Kong's order: exact, then leading wildcard, then trailing; one probe
 * each (a handshake's cost does not grow with the number of names). */
static SSL_CTX *
pick(const sl_stls_t *t, const char *host)
{
    size_t hl = strlen(host);
    const char *dot = strchr(host, '.'), *last = strrchr(host, '.');
    SSL_CTX *ctx = probe(t, 0, host, hl);

    if (ctx == NULL && dot != NULL && dot != host)
        ctx = probe(t, 1, dot, hl - (size_t)(dot - host));
    if (ctx == NULL && last != NULL && last[1] != '\0')
        ctx = probe(t, 2, host, (size_t)(last + 1 - host));
    return ctx;
}

static int
sni_cb(SSL *ssl, int *alert, void *arg)
{
    sl_stls_t *t = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    SSL_CTX *ctx;

    (void)alert;
    if (host == NULL || (ctx = pick(t, host)) == NULL || ctx == t->def)
        return SSL_TLSEXT_ERR_OK;
    SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK;
}

/* OCSP stapling: a client that asks (status_request) gets the response
 * loaded for the certificate the handshake uses; OpenSSL frees the copy. */
static int
status_cb(SSL *ssl, void *arg)
{
    sl_stls_t *t = arg;
    X509 *x = SSL_get_certificate(ssl);

    for (size_t i = 0; x != NULL && i < t->nstaples; i++) {
        if (X509_cmp(t->staples[i].cert, x) != 0)
            continue;
        unsigned char *copy = OPENSSL_malloc((size_t)t->staples[i].len);
        if (copy == NULL)
            return SSL_TLSEXT_ERR_NOACK;
        memcpy(copy, t->staples[i].der, (size_t)t->staples[i].len);
        if (SSL_set_tlsext_status_ocsp_resp(ssl, copy, t->staples[i].len) != 1) {
            OPENSSL_free(copy);
            return SSL_TLSEXT_ERR_NOACK;
        }
        return SSL_TLSEXT_ERR_OK;
    }
    return sl_ocsp_staple(t->ocsp, x, ssl) ? SSL_TLSEXT_ERR_OK : SSL_TLSEXT_ERR_NOACK;
}

/* Check an OCSP response (DER, from `path`) for certificate x and keep it
 * for stapling: it must be a successful response with a single response
 * for x's serial and issuer name.  Not good (revoked, unknown) or outside
 * its validity: warned and not stapled (a client would refuse the
 * handshake).  0, or -1 with an error in errs. */
static int
staple_load(sl_stls_t *t, X509 *x, const char *path, const unsigned char *der, long len,
            sl_errors_t *errs)
{
    const unsigned char *p = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, len);
    OCSP_BASICRESP *bs = NULL;
    int rc = -1, found = 0;

    if (resp == NULL || p != der + len) {
        sl_errors_add(errs, "ssl_stapling_file %s: not a DER OCSP response", path);
        goto out;
    }
    if (OCSP_response_status(resp) != OCSP_RESPONSE_STATUS_SUCCESSFUL ||
        (bs = OCSP_response_get1_basic(resp)) == NULL) {
        sl_errors_add(errs, "ssl_stapling_file %s: the responder did not answer successfully (%s)",
                      path, OCSP_response_status_str(OCSP_response_status(resp)));
        goto out;
    }
    for (int i = 0; i < OCSP_resp_count(bs) && !found; i++) {
        OCSP_SINGLERESP *sr = OCSP_resp_get0(bs, i);
        ASN1_OCTET_STRING *namehash = NULL;
        ASN1_OBJECT *md_oid = NULL;
        ASN1_INTEGER *serial = NULL;
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned hl = 0;
        const EVP_MD *md;

        OCSP_id_get0_info(&namehash, &md_oid, NULL, &serial,
                          (OCSP_CERTID *)OCSP_SINGLERESP_get0_id(sr));
        md = md_oid ? EVP_get_digestbyobj(md_oid) : NULL;
        if (md == NULL || serial == NULL || namehash == NULL ||
            ASN1_INTEGER_cmp(serial, X509_get0_serialNumber(x)) != 0 ||
            X509_NAME_digest(X509_get_issuer_name(x), md, h, &hl) != 1 ||
            (unsigned)ASN1_STRING_length(namehash) != hl ||
            memcmp(ASN1_STRING_get0_data(namehash), h, hl) != 0)
            continue;
        found = 1;
        int reason = 0;
        ASN1_GENERALIZEDTIME *thisupd = NULL, *nextupd = NULL;
        int st = OCSP_single_get0_status(sr, &reason, NULL, &thisupd, &nextupd);
        if (st != V_OCSP_CERTSTATUS_GOOD) {
            sl_log_warn("ssl_stapling_file %s: certificate status is %s, not stapled", path,
                        OCSP_cert_status_str(st));
            rc = 0;
            goto out;
        }
        if (OCSP_check_validity(thisupd, nextupd, 300, -1) != 1) {
            ERR_clear_error();
            sl_log_warn("ssl_stapling_file %s: the response is not valid now (expired or not "
                        "yet valid), not stapled",
                        path);
            rc = 0;
            goto out;
        }
    }
    if (!found) {
        sl_errors_add(errs, "ssl_stapling_file %s: the response is not for this certificate", path);
        goto out;
    }
    t->staples = sl_xrealloc(t->staples, (t->nstaples + 1) * sizeof(*t->staples));
    X509_up_ref(x);
    t->staples[t->nstaples].cert = x;
    t->staples[t->nstaples].der = sl_xmalloc((size_t)len);
    memcpy(t->staples[t->nstaples].der, der, (size_t)len);
    t->staples[t->nstaples++].len = (int)len;
    rc = 0;
out:
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    ERR_clear_error();
    return rc;
}

static int
proto_version(const char *name)
{
    if (strcmp(name, "TLSv1.2") == 0)
        return TLS1_2_VERSION;
    if (strcmp(name, "TLSv1.3") == 0)
        return TLS1_3_VERSION;
    return 0;
}

static SSL_CTX *
ctx_new(const sl_settings_t *s, sl_stls_t *t, sl_errors_t *errs)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int lo = 0, hi = 0;
    char *list, *save = NULL;

    if (ctx == NULL)
        return NULL;
    list = sl_strndup(s->ssl_protocols ? s->ssl_protocols : "TLSv1.2 TLSv1.3",
                      strlen(s->ssl_protocols ? s->ssl_protocols : "TLSv1.2 TLSv1.3"));
    for (char *p = strtok_r(list, ", ", &save); p; p = strtok_r(NULL, ", ", &save)) {
        int v = proto_version(p);
        if (v == 0) {
            sl_errors_add(errs, "ssl_protocols: unknown or refused version '%s' (TLSv1.2, TLSv1.3)",
                          p);
            continue;
        }
        lo = lo == 0 || v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    free(list);
    SSL_CTX_set_min_proto_version(ctx, lo ? lo : TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, hi ? hi : TLS1_3_VERSION);
    if (SSL_CTX_set_cipher_list(ctx, s->ssl_ciphers ? s->ssl_ciphers : SL_TLS12_CIPHERS) != 1)
        sl_errors_add(errs, "ssl_ciphers: no usable cipher in '%s'",
                      s->ssl_ciphers ? s->ssl_ciphers : SL_TLS12_CIPHERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    /* stateless resumption only: tickets work across workers, a session
     * cache would not */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_timeout(ctx, s->ssl_session_timeout > 0 ? s->ssl_session_timeout : 86400);
    if (s->ssl_session_tickets) {
        SSL_CTX_set_num_tickets(ctx, 1);
        sl_stls_tickets_on(ctx);
    } else {
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_cb, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, t);
    SSL_CTX_set_tlsext_status_cb(ctx, status_cb);
    SSL_CTX_set_tlsext_status_arg(ctx, t);
    return ctx;
}

static void
openssl_err(sl_errors_t *errs, const char *what, const char *name)
{
    unsigned long e = ERR_get_error();
    sl_errors_add(errs, "%s %s: %s", what, name, e ? ERR_reason_error_string(e) : "cannot be used");
    ERR_clear_error();
}

/* PEM text -> certificate (+ chain) and key in ctx. */
static int
use_pem(SSL_CTX *ctx, const char *cert, const char *key, const char *what, sl_errors_t *errs)
{
    BIO *b = BIO_new_mem_buf(cert, -1);
    X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    EVP_PKEY *k = NULL;
    int rc = -1;

    if (x == NULL || SSL_CTX_use_certificate(ctx, x) != 1) {
        openssl_err(errs, "certificate", what);
        goto out;
    }
    X509 *ca;
    while ((ca = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, ca) != 1)
            X509_free(ca);
    ERR_clear_error(); /* the end of the PEM text */
    BIO_free(b);
    b = BIO_new_mem_buf(key, -1);
    k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
    if (k == NULL || SSL_CTX_use_PrivateKey(ctx, k) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        openssl_err(errs, "key of certificate", what);
        goto out;
    }
    rc = 0;
out:
    BIO_free(b);
    X509_free(x);
    EVP_PKEY_free(k);
    return rc;
}

static char *
read_file_len(const char *path, size_t *lenp, sl_errors_t *errs)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (f == NULL) {
        sl_errors_add(errs, "%s: cannot open %s",
                      lenp ? "ssl_stapling_file" : "ssl_cert/ssl_cert_key", path);
        return NULL;
    }
    do {
        if (len + 4096 + 1 > cap) {
            cap = (len + 4096 + 1) * 2;
            buf = sl_xrealloc(buf, cap);
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    if (lenp)
        *lenp = len;
    return buf;
}

static char *
read_file(const char *path, sl_errors_t *errs)
{
    return read_file_len(path, NULL, errs);
}

/* ssl_stapling: fetch for the certificate ctx has just been given (its
 * current one), the issuer looked for in its chain. */
static void
ocsp_add(sl_stls_t *t, SSL_CTX *ctx, const sl_settings_t *s)
{
    STACK_OF(X509) *chain = NULL;

    if (t->ocsp == NULL)
        return;
    SSL_CTX_get0_chain_certs(ctx, &chain);
    sl_ocsp_add(t->ocsp, SSL_CTX_get0_certificate(ctx), chain, s->ssl_stapling_responder);
}

static void
stls_free(void *p)
{
    sl_stls_t *t = p;

    if (t == NULL)
        return;
    SSL_CTX_free(t->def);
    for (size_t i = 0; i < t->nctxs; i++)
        SSL_CTX_free(t->ctxs[i]);
    free(t->ctxs);
    for (size_t i = 0; i < t->nnames; i++)
        free(t->names[i].name);
    free(t->names);
    for (int k = 0; k < 3; k++)
        sl_kindex_free(&t->by_kind[k]);
    for (size_t i = 0; i < t->nstaples; i++) {
        X509_free(t->staples[i].cert);
        free(t->staples[i].der);
    }
    free(t->staples);
    sl_ocsp_free(t->ocsp);
    free(t);
}

int
sl_stls_build(const sl_settings_t *s, sl_conf_t *conf, sl_errors_t *errs)
{
    size_t n0 = errs->n;
    int any_ssl = 0, have_default = 0;
    sl_stls_t *t;

    for (size_t i = 0; i < s->nlisten; i++) {
        char addr[300], err[160];
        unsigned flags;
        if (sl_listen_spec(s->listen[i], addr, sizeof(addr), &flags, err, sizeof(err)) == 0 &&
            (flags & SL_LISTEN_SSL))
            any_ssl = 1;
    }
    if (!any_ssl)
        return SL_OK;

    t = sl_xcalloc(1, sizeof(*t));
    t->def = ctx_new(s, t, errs);
    if (t->def == NULL) {
        sl_errors_add(errs, "cannot create a TLS context");
        stls_free(t);
        return SL_ERROR;
    }
    if (s->ssl_stapling)
        t->ocsp = sl_ocsp_new((unsigned)s->ssl_stapling_refresh);
    else if (s->ssl_stapling_responder)
        sl_errors_add(errs, "ssl_stapling_responder needs ssl_stapling on");
    if (s->ssl_stapling_file && !s->ssl_cert)
        sl_errors_add(errs, "ssl_stapling_file needs ssl_cert (it staples for those certificates)");
    /* settings' certificates: "a.pem,b.pem" with "a.key,b.key" */
    if (s->ssl_cert || s->ssl_cert_key) {
        char *certs =
            sl_strndup(s->ssl_cert ? s->ssl_cert : "", strlen(s->ssl_cert ? s->ssl_cert : ""));
        char *keys = sl_strndup(s->ssl_cert_key ? s->ssl_cert_key : "",
                                strlen(s->ssl_cert_key ? s->ssl_cert_key : ""));
        char *staples = sl_strndup(s->ssl_stapling_file ? s->ssl_stapling_file : "",
                                   strlen(s->ssl_stapling_file ? s->ssl_stapling_file : ""));
        char *sc = NULL, *sk = NULL, *ss = NULL;
        char *c = strtok_r(certs, ", ", &sc), *k = strtok_r(keys, ", ", &sk);
        char *o = strtok_r(staples, ", ", &ss);
        for (; c || k; c = strtok_r(NULL, ", ", &sc), k = strtok_r(NULL, ", ", &sk)) {
            if (!c || !k) {
                sl_errors_add(errs, "ssl_cert and ssl_cert_key must list as many files");
                break;
            }
            char *cp = read_file(c, errs), *kp = read_file(k, errs);
            if (cp && kp && use_pem(t->def, cp, kp, c, errs) == 0) {
                have_default = 1;
                if (o && strcmp(o, "-") != 0) {
                    size_t dl = 0;
                    char *d = read_file_len(o, &dl, errs);
                    /* the certificate just set is the context's current one */
                    if (d)
                        staple_load(t, SSL_CTX_get0_certificate(t->def), o,
                                    (const unsigned char *)d, (long)dl, errs);
                    free(d);
                } else {
                    ocsp_add(t, t->def, s);
                }
            }
            free(cp);
            free(kp);
            if (o)
                o = strtok_r(NULL, ", ", &ss);
        }
        if (o)
            sl_errors_add(errs, "ssl_stapling_file lists more files than ssl_cert");
        free(certs);
        free(keys);
        free(staples);
    }
    t->ctxs = sl_xcalloc(conf->ncerts ? conf->ncerts : 1, sizeof(SSL_CTX *));
    for (size_t i = 0; i < conf->ncerts; i++) {
        sl_certificate_t *ce = conf->certs[i];
        SSL_CTX *ctx = ctx_new(s, t, errs);
        if (ctx == NULL)
            break;
        t->ctxs[t->nctxs++] = ctx;
        if (use_pem(ctx, ce->cert, ce->key, ce->id, errs) == 0)
            ocsp_add(t, ctx, s);
        if (ce->cert_alt && use_pem(ctx, ce->cert_alt, ce->key_alt, ce->id, errs) == 0)
            ocsp_add(t, ctx, s);
        if (!have_default) { /* no settings certificate: the first one is the default */
            use_pem(t->def, ce->cert, ce->key, ce->id, errs);
            if (ce->cert_alt)
                use_pem(t->def, ce->cert_alt, ce->key_alt, ce->id, errs);
            have_default = 1;
        }
    }
    t->names = sl_xcalloc(conf->nsnis ? conf->nsnis : 1, sizeof(*t->names));
    for (size_t i = 0; i < conf->nsnis; i++) {
        size_t k = conf->snis[i].cert->idx, len = strlen(conf->snis[i].name), klen;
        const char *key;
        if (k >= t->nctxs)
            continue;
        t->names[t->nnames].name = sl_strndup(conf->snis[i].name, len);
        t->names[t->nnames++].ctx = t->ctxs[k];
        int kind = name_kind(conf->snis[i].name, len, &key, &klen);
        sl_kindex_add(&t->by_kind[kind], sl_names_tag(key, klen, 1), (void *)(uintptr_t)t->nnames);
    }
    if (!have_default && errs->n == n0)
        sl_errors_add(errs, "a listener has 'ssl' but there is no certificate: set ssl_cert and "
                            "ssl_cert_key, or add certificates to the declarative config");
    if (t->ocsp && errs->n == n0)
        sl_ocsp_seal(t->ocsp, errs);
    if (errs->n > n0) {
        stls_free(t);
        return SL_ERROR;
    }
    conf->tls_server = t;
    conf->tls_server_free = stls_free;
    return SL_OK;
}

const sl_ocsp_t *
sl_stls_ocsp(const sl_stls_t *t)
{
    return t ? t->ocsp : NULL;
}

/* ---- connections --------------------------------------------------------- */

sl_stls_conn_t *
sl_stls_conn_new(sl_stls_t *t)
{
    sl_stls_conn_t *tc;

    if (t == NULL)
        return NULL;
    tc = sl_xcalloc(1, sizeof(*tc));
    tc->t = t;
    tc->ssl = SSL_new(t->def);
    tc->rbio = BIO_new(BIO_s_mem());
    tc->wbio = BIO_new(BIO_s_mem());
    if (tc->ssl == NULL || tc->rbio == NULL || tc->wbio == NULL) {
        BIO_free(tc->rbio);
        BIO_free(tc->wbio);
        SSL_free(tc->ssl);
        free(tc);
        return NULL;
    }
    BIO_set_mem_eof_return(tc->rbio, -1); /* empty = "retry", not EOF */
    SSL_set_bio(tc->ssl, tc->rbio, tc->wbio);
    SSL_set_accept_state(tc->ssl);
    return tc;
}

void
sl_stls_conn_free(sl_stls_conn_t *tc)
{
    if (tc == NULL)
        return;
    SSL_free(tc->ssl); /* frees the BIOs */
    free(tc);
}

int
sl_stls_conn_feed(sl_stls_conn_t *tc, const char *data, size_t len)
{
    return BIO_write(tc->rbio, data, (int)len) == (int)len ? 0 : -1;
}

ssize_t
sl_stls_conn_read(sl_stls_conn_t *tc, char *buf, size_t cap)
{
    int n, e;

    if (!tc->established) {
        n = SSL_do_handshake(tc->ssl);
        if (n != 1) {
            e = SSL_get_error(tc->ssl, n);
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
                return 0;
            ERR_clear_error();
            return -1;
        }
        tc->established = 1;
        sl_log_debug("TLS handshake done: %s, %s", SSL_get_version(tc->ssl),
                     SSL_session_reused(tc->ssl) ? "resumed" : "full");
    }
    n = SSL_read(tc->ssl, buf, cap > INT32_MAX ? INT32_MAX : (int)cap);
    if (n > 0)
        return n;
    e = SSL_get_error(tc->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    ERR_clear_error();
    return e == SSL_ERROR_ZERO_RETURN ? UV_EOF : -1;
}

int
sl_stls_conn_write(sl_stls_conn_t *tc, const uv_buf_t *bufs, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        size_t off = 0;
        while (off < bufs[i].len) {
            size_t w = 0;
            if (SSL_write_ex(tc->ssl, bufs[i].base + off, bufs[i].len - off, &w) != 1) {
                ERR_clear_error();
                return -1;
            }
            off += w;
        }
    }
    return 0;
}

size_t
sl_stls_conn_out(sl_stls_conn_t *tc, const char **p)
{
    char *data = NULL;
    long len = BIO_get_mem_data(tc->wbio, &data);

    *p = data;
    return len > 0 ? (size_t)len : 0;
}

void
sl_stls_conn_out_done(sl_stls_conn_t *tc)
{
    (void)BIO_reset(tc->wbio);
}

void
sl_stls_conn_shutdown(sl_stls_conn_t *tc)
{
    if (tc->established) {
        SSL_shutdown(tc->ssl);
        ERR_clear_error();
    }
}

int
sl_stls_conn_established(const sl_stls_conn_t *tc)
{
    return tc != NULL && tc->established;
}

int
sl_stls_conn_post_handshake(const sl_stls_conn_t *tc)
{
    return tc != NULL && tc->established && SSL_version(tc->ssl) == TLS1_3_VERSION;
}

int
sl_stls_conn_has_input(const sl_stls_conn_t *tc)
{
    return tc != NULL && (BIO_ctrl_pending(tc->rbio) > 0 || SSL_pending(tc->ssl) > 0);
}

const char *
sl_stls_conn_sni(const sl_stls_conn_t *tc)
{
    return tc ? SSL_get_servername(tc->ssl, TLSEXT_NAMETYPE_host_name) : NULL;
}
