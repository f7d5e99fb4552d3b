/* certs.c - Kong's `certificates` (cert, key, cert_alt, key_alt, nested
 * `snis`) and top-level `snis` (name, certificate) entities.  PEM text is
 * checked here (so -t catches a bad certificate or a key that does not
 * match) and kept as text; http/tls_server.c builds the TLS contexts. */

#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf/config_check.h"

/* Does PEM `cert` parse, `key` parse, and do they belong together? */
static void
check_pair(sl_loader_t *L, const char *path, const char *ck, const char *cert, const char *kk,
           const char *key)
{
    char p[SL_PATH_MAX];
    BIO *b;
    X509 *x = NULL;
    EVP_PKEY *k = NULL;

    b = BIO_new_mem_buf(cert, -1);
    if (b != NULL)
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
    BIO_free(b);
    if (x == NULL) {
        sl_conf_kpath(p, path, ck);
        sl_conf_err(L, p, "invalid certificate: not a PEM X.509 certificate");
    }
    b = BIO_new_mem_buf(key, -1);
    if (b != NULL)
        k = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL);
    BIO_free(b);
    if (k == NULL) {
        sl_conf_kpath(p, path, kk);
        sl_conf_err(L, p, "invalid key: not a PEM private key");
    }
    if (x != NULL && k != NULL && X509_check_private_key(x, k) != 1) {
        sl_conf_kpath(p, path, kk);
        sl_conf_err(L, p, "key does not match the certificate");
    }
    ERR_clear_error();
    X509_free(x);
    EVP_PKEY_free(k);
}

/* A server name as Kong accepts it: a host name, at most one '*' wildcard
 * as the leftmost or rightmost label. */
static int
sni_valid(const char *n)
{
    size_t len = strlen(n);
    const char *star = strchr(n, '*');

    if (len == 0 || len > 253)
        return 0;
    if (star != NULL &&
        (strchr(star + 1, '*') != NULL ||
         !((star == n && n[1] == '.') || (star == n + len - 1 && len > 1 && n[len - 2] == '.'))))
        return 0;
    for (const char *c = n; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '-' || *c == '.' || *c == '*'))
            return 0;
    return 1;
}

static const char *
sni_name(const sl_conf_t *conf, size_t i)
{
    return conf->snis[i].name;
}

/* One probe per name: a configuration with many certificates loads in
 * time linear in its names (docs/tls.md). */
static void
sni_add(sl_loader_t *L, const char *path, const char *name, sl_certificate_t *cert)
{
    sl_conf_t *conf = L->conf;

    if (!sni_valid(name)) {
        sl_conf_err(L, path, "invalid SNI '%s'", name);
        return;
    }
    L->sni_names.name_of = sni_name;
    L->sni_names.fold = 1;
    if (sl_names_claim(&L->sni_names, conf, name, conf->nsnis) != 0) {
        sl_conf_err(L, path, "duplicate SNI '%s'", name);
        return;
    }
    conf->snis = sl_xgrow(conf->snis, conf->nsnis, sizeof(*conf->snis));
    conf->snis[conf->nsnis].name = sl_strndup(name, strlen(name));
    for (char *c = conf->snis[conf->nsnis].name; *c; c++)
        if (*c >= 'A' && *c <= 'Z')
            *c = (char)(*c - 'A' + 'a');
    conf->snis[conf->nsnis].cert = cert;
    conf->nsnis++;
}

void
sl_conf_load_certificate(sl_loader_t *L, json_object *o, const char *path)
{
    static const char *const keys[] = {"id",   "cert", "key",        "cert_alt",   "key_alt",
                                       "snis", "tags", "created_at", "updated_at", NULL};
    sl_conf_t *conf = L->conf;
    sl_certificate_t *c;
    const char *cert = NULL, *key = NULL, *cert_alt = NULL, *key_alt = NULL;
    json_object *v;
    char p[SL_PATH_MAX];

    if (sl_conf_check_record(L, o, path, keys) < 0)
        return;
    if (sl_conf_get_str(L, o, path, "cert", &cert) == 0) {
        sl_conf_kpath(p, path, "cert");
        sl_conf_err(L, p, "required field missing");
    }
    if (sl_conf_get_str(L, o, path, "key", &key) == 0) {
        sl_conf_kpath(p, path, "key");
        sl_conf_err(L, p, "required field missing");
    }
    sl_conf_get_str(L, o, path, "cert_alt", &cert_alt);
    sl_conf_get_str(L, o, path, "key_alt", &key_alt);
    if ((cert_alt == NULL) != (key_alt == NULL)) {
        sl_conf_kpath(p, path, cert_alt ? "key_alt" : "cert_alt");
        sl_conf_err(L, p, "cert_alt and key_alt go together");
    }
    sl_conf_get_strs(L, o, path, "tags", &v);
    if (cert == NULL || key == NULL)
        return;
    check_pair(L, path, "cert", cert, "key", key);
    if (cert_alt && key_alt)
        check_pair(L, path, "cert_alt", cert_alt, "key_alt", key_alt);

    c = sl_xcalloc(1, sizeof(*c));
    sl_conf_entity_id(L, o, path, "certificate", cert, c->id);
    c->cert = sl_strndup(cert, strlen(cert));
    c->key = sl_strndup(key, strlen(key));
    if (cert_alt && key_alt) {
        c->cert_alt = sl_strndup(cert_alt, strlen(cert_alt));
        c->key_alt = sl_strndup(key_alt, strlen(key_alt));
    }
    c->idx = conf->ncerts;
    conf->certs = sl_xgrow(conf->certs, conf->ncerts, sizeof(c));
    conf->certs[conf->ncerts++] = c;
    sl_kindex_add(&L->cert_ids, sl_names_tag(c->id, strlen(c->id), 1),
                  (void *)(uintptr_t)conf->ncerts);
    if (sl_conf_get_strs(L, o, path, "snis", &v) > 0) {
        for (size_t i = 0; i < json_object_array_length(v); i++) {
            sl_conf_pathf(p, "%s.snis[%zu]", path, i);
            sni_add(L, p, json_object_get_string(json_object_array_get_idx(v, i)), c);
        }
    }
}

void
sl_conf_load_sni(sl_loader_t *L, json_object *o, const char *path)
{
    static const char *const keys[] = {"id",         "name",       "certificate", "tags",
                                       "created_at", "updated_at", NULL};
    const char *name = NULL, *ref;
    json_object *v;
    char p[SL_PATH_MAX];
    sl_certificate_t *cert = NULL;

    if (sl_conf_check_record(L, o, path, keys) < 0)
        return;
    sl_conf_get_strs(L, o, path, "tags", &v);
    if (sl_conf_get_str(L, o, path, "name", &name) == 0) {
        sl_conf_kpath(p, path, "name");
        sl_conf_err(L, p, "required field missing");
    }
    sl_conf_kpath(p, path, "certificate");
    if ((v = sl_conf_field(o, "certificate")) == NULL) {
        sl_conf_err(L, p, "required field missing");
        return;
    }
    if ((ref = sl_conf_ref_key(L, v, p)) == NULL)
        return;
    uint64_t tag = sl_names_tag(ref, strlen(ref), 1);
    size_t cur = SL_KINDEX_START, i;
    while ((i = (size_t)(uintptr_t)sl_kindex_next(&L->cert_ids, tag, &cur)) != 0)
        if (strcasecmp(L->conf->certs[i - 1]->id, ref) == 0 && (cert == NULL || cert->idx < i - 1))
            cert = L->conf->certs[i - 1];
    if (cert == NULL) {
        sl_conf_err(L, p, "certificate '%s' not found", ref);
        return;
    }
    if (name != NULL) {
        sl_conf_kpath(p, path, "name");
        sni_add(L, p, name, cert);
    }
}

void
sl_conf_certs_free(sl_conf_t *conf)
{
    for (size_t i = 0; i < conf->ncerts; i++) {
        sl_certificate_t *c = conf->certs[i];
        free(c->cert);
        free(c->key);
        free(c->cert_alt);
        free(c->key_alt);
        free(c);
    }
    free(conf->certs);
    for (size_t i = 0; i < conf->nsnis; i++)
        free(conf->snis[i].name);
    free(conf->snis);
    if (conf->tls_server_free != NULL)
        conf->tls_server_free(conf->tls_server);
}
