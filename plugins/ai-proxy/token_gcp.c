/* token_gcp.c - Vertex AI's credential: a Google service account's key
 * signs an RS256 JWT (OpenSSL), exchanged at the account's token_uri for
 * an OAuth access token (RFC 7523's jwt-bearer grant, as Google's client
 * libraries and Kong's lua-resty-gcp do).  The JWT asks for the
 * cloud-platform scope, is valid one hour, and is signed anew per fetch.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "token.h"

#define SL_AP_GCP_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define SL_AP_GCP_TOKEN_URI "https://oauth2.googleapis.com/token"

typedef struct sl_ap_gcp {
    EVP_PKEY *key;
    char *email;  /* client_email: the JWT's iss */
    char *key_id; /* private_key_id: the JWT's kid (NULL: none) */
} sl_ap_gcp_t;

static void
sl_ap_gcp_free(void *priv)
{
    sl_ap_gcp_t *g = priv;

    if (g) {
        EVP_PKEY_free(g->key);
        free(g->email);
        free(g->key_id);
        free(g);
    }
}

/* header.claims, signed: the assertion. */
static int
sl_ap_gcp_request(const sl_ap_token_src_t *s, int64_t now_s, sl_ap_buf_t *body)
{
    const sl_ap_gcp_t *g = s->priv;
    sl_ap_buf_t hdr = {0}, claims = {0}, jwt = {0};
    unsigned char sig[1024];
    size_t siglen = sizeof(sig);
    EVP_MD_CTX *md = NULL;
    int rc = -1;

    SL_AP_BUF_LIT(&hdr, "{\"alg\":\"RS256\",\"typ\":\"JWT\"");
    if (g->key_id) {
        SL_AP_BUF_LIT(&hdr, ",\"kid\":");
        sl_ap_buf_add_qstr(&hdr, g->key_id, strlen(g->key_id));
    }
    sl_ap_buf_addc(&hdr, '}');
    SL_AP_BUF_LIT(&claims, "{\"iss\":");
    sl_ap_buf_add_qstr(&claims, g->email, strlen(g->email));
    SL_AP_BUF_LIT(&claims, ",\"scope\":\"" SL_AP_GCP_SCOPE "\",\"aud\":");
    sl_ap_buf_add_qstr(&claims, s->url, strlen(s->url));
    sl_ap_buf_addf(&claims, ",\"iat\":%lld,\"exp\":%lld}", (long long)now_s,
                   (long long)now_s + 3600);
    if (hdr.oom || claims.oom) {
        goto done;
    }
    sl_ap_b64url(&jwt, (const unsigned char *)hdr.ptr, hdr.len);
    sl_ap_buf_addc(&jwt, '.');
    sl_ap_b64url(&jwt, (const unsigned char *)claims.ptr, claims.len);
    if (jwt.oom || (md = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, g->key) != 1 ||
        EVP_DigestSign(md, sig, &siglen, (const unsigned char *)jwt.ptr, jwt.len) != 1) {
        goto done;
    }
    sl_ap_buf_addc(&jwt, '.');
    sl_ap_b64url(&jwt, sig, siglen);
    SL_AP_BUF_LIT(body, "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
                        "&assertion=");
    sl_ap_buf_add(body, jwt.ptr, jwt.len); /* base64url and dots: nothing to encode */
    rc = jwt.oom || body->oom ? -1 : 0;
done:
    EVP_MD_CTX_free(md);
    sl_ap_buf_free(&hdr);
    sl_ap_buf_free(&claims);
    sl_ap_buf_free(&jwt);
    return rc;
}

static const sl_ap_token_kind_t sl_ap_gcp_kind = {
    "Vertex AI service account",
    sl_ap_gcp_request,
    sl_ap_gcp_free,
};

/* A string member of the account, or NULL. */
static const char *
sl_ap_gcp_str(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

sl_ap_token_src_t *
sl_ap_token_gcp(const char *json, const char *token_url, char *err, size_t errlen)
{
    json_object *o = json_tokener_parse(json);
    const char *type, *email, *pem, *kid, *uri;
    sl_ap_gcp_t *g = NULL;
    sl_ap_token_src_t *s = NULL;
    BIO *bio = NULL;

    if (o == NULL || !json_object_is_type(o, json_type_object)) {
        snprintf(err, errlen, "not a JSON object (a service account key file's content)");
        goto fail;
    }
    type = sl_ap_gcp_str(o, "type");
    email = sl_ap_gcp_str(o, "client_email");
    pem = sl_ap_gcp_str(o, "private_key");
    kid = sl_ap_gcp_str(o, "private_key_id");
    uri = token_url ? token_url : sl_ap_gcp_str(o, "token_uri");
    if (type && strcmp(type, "service_account") != 0) {
        snprintf(err, errlen, "type '%.40s' is not a service account key (service_account)", type);
        goto fail;
    }
    if (email == NULL || email[0] == '\0' || pem == NULL) {
        snprintf(err, errlen, "a service account key needs client_email and private_key");
        goto fail;
    }
    if (uri && strncmp(uri, "https://", 8) != 0 && strncmp(uri, "http://", 7) != 0) {
        snprintf(err, errlen, "the token endpoint (token_uri) must be an http(s) URL");
        goto fail;
    }
    g = calloc(1, sizeof(*g));
    if (g == NULL || (bio = BIO_new_mem_buf(pem, -1)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    g->key = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
    if (g->key == NULL || EVP_PKEY_get_base_id(g->key) != EVP_PKEY_RSA) {
        snprintf(err, errlen, "private_key is not a PEM RSA private key");
        goto fail;
    }
    g->email = strdup(email);
    g->key_id = kid && kid[0] ? strdup(kid) : NULL;
    if (g->email == NULL || (kid && kid[0] && g->key_id == NULL) ||
        (s = sl_ap_token_new(&sl_ap_gcp_kind, g, uri ? uri : SL_AP_GCP_TOKEN_URI)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    BIO_free(bio);
    json_object_put(o);
    return s;
fail:
    BIO_free(bio);
    sl_ap_gcp_free(g);
    json_object_put(o);
    return NULL;
}
