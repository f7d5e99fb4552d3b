/* sigv4.c - AWS Signature Version 4 for one request (Bedrock's), with
 * OpenSSL's SHA-256 and HMAC.
 *
 * Canonical request:
 *   METHOD \n canonical URI \n canonical query \n canonical headers \n
 *   signed headers \n hex(sha256(body))
 * The canonical URI of every service but S3 is the path as sent, encoded
 * once more: a Bedrock model id "anthropic.claude-v2:1" travels as
 * ".../anthropic.claude-v2%3A1/..." and is signed as "...%253A1...".
 * Signed headers: content-type (when given), host (exactly as sent, with
 * the port when it is not the scheme's default), x-amz-date, and
 * x-amz-security-token with temporary credentials.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "native.h"

static void
sl_ap_hex(char *dst, const unsigned char *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        dst[2 * i] = hx[p[i] >> 4];
        dst[2 * i + 1] = hx[p[i] & 15];
    }
    dst[2 * n] = '\0';
}

static int
sl_ap_hmac(const void *key, size_t klen, const char *msg, size_t mlen, unsigned char out[32])
{
    unsigned int n = 32;

    return HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)msg, mlen, out, &n) ? 0 : -1;
}

void
sl_ap_sigv4_canonical_uri(sl_ap_buf_t *out, sl_str_t path)
{
    size_t i;

    if (path.len == 0) {
        sl_ap_buf_addc(out, '/');
        return;
    }
    for (i = 0; i < path.len; i++) {
        unsigned char c = (unsigned char)path.ptr[i];

        if (c == '/' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
            sl_ap_buf_addc(out, (char)c);
        } else {
            sl_ap_buf_addf(out, "%%%02X", c);
        }
    }
}

static int
sl_ap_cmp_str(const void *a, const void *b)
{
    const sl_str_t *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->ptr, y->ptr, n);

    return c ? c : (x->len < y->len ? -1 : x->len > y->len);
}

/* name=value pairs sorted (the query as sent is encoded already). */
static void
sl_ap_canonical_query(sl_ap_buf_t *out, sl_str_t q)
{
    sl_str_t items[64];
    size_t n = 0, i = 0, k;

    while (i < q.len && n < 64) {
        size_t e = i;

        while (e < q.len && q.ptr[e] != '&') {
            e++;
        }
        if (e > i) {
            items[n++] = (sl_str_t){q.ptr + i, e - i};
        }
        i = e + 1;
    }
    qsort(items, n, sizeof(items[0]), sl_ap_cmp_str);
    for (k = 0; k < n; k++) {
        if (k) {
            sl_ap_buf_addc(out, '&');
        }
        sl_ap_buf_add(out, items[k].ptr, items[k].len);
        if (memchr(items[k].ptr, '=', items[k].len) == NULL) {
            sl_ap_buf_addc(out, '=');
        }
    }
}

int
sl_ap_sigv4_sign(const sl_ap_sigv4_t *in, sl_ap_buf_t *authorization, char amz_date[17])
{
    sl_ap_buf_t cr = {0}, sts = {0}, key = {0};
    unsigned char h[32], k1[32], k2[32];
    char hex[65], date[9], sig[65];
    const char *signed_hdrs;
    time_t t = (time_t)in->now;
    struct tm tm;
    int rc = -1;

    gmtime_r(&t, &tm);
    strftime(amz_date, 17, "%Y%m%dT%H%M%SZ", &tm);
    memcpy(date, amz_date, 8);
    date[8] = '\0';

    /* canonical request */
    sl_ap_buf_add(&cr, in->method.ptr, in->method.len);
    sl_ap_buf_addc(&cr, '\n');
    sl_ap_sigv4_canonical_uri(&cr, in->path);
    sl_ap_buf_addc(&cr, '\n');
    sl_ap_canonical_query(&cr, in->query);
    sl_ap_buf_addc(&cr, '\n');
    if (in->content_type.len) {
        SL_AP_BUF_LIT(&cr, "content-type:");
        sl_ap_buf_add(&cr, in->content_type.ptr, in->content_type.len);
        sl_ap_buf_addc(&cr, '\n');
    }
    SL_AP_BUF_LIT(&cr, "host:");
    sl_ap_buf_add(&cr, in->host.ptr, in->host.len);
    SL_AP_BUF_LIT(&cr, "\nx-amz-date:");
    sl_ap_buf_adds(&cr, amz_date);
    sl_ap_buf_addc(&cr, '\n');
    if (in->session_token && in->session_token[0]) {
        SL_AP_BUF_LIT(&cr, "x-amz-security-token:");
        sl_ap_buf_adds(&cr, in->session_token);
        sl_ap_buf_addc(&cr, '\n');
    }
    signed_hdrs = in->content_type.len ? (in->session_token && in->session_token[0]
                                              ? "content-type;host;x-amz-date;x-amz-security-token"
                                              : "content-type;host;x-amz-date")
                                       : (in->session_token && in->session_token[0]
                                              ? "host;x-amz-date;x-amz-security-token"
                                              : "host;x-amz-date");
    sl_ap_buf_addc(&cr, '\n');
    sl_ap_buf_adds(&cr, signed_hdrs);
    sl_ap_buf_addc(&cr, '\n');
    SHA256((const unsigned char *)(in->body.ptr ? in->body.ptr : ""), in->body.len, h);
    sl_ap_hex(hex, h, 32);
    sl_ap_buf_add(&cr, hex, 64);
    if (cr.oom) {
        goto done;
    }

    /* string to sign */
    SHA256((const unsigned char *)cr.ptr, cr.len, h);
    sl_ap_hex(hex, h, 32);
    sl_ap_buf_addf(&sts, "AWS4-HMAC-SHA256\n%s\n%s/%s/%s/aws4_request\n%s", amz_date, date,
                   in->region, in->service, hex);

    /* signing key */
    sl_ap_buf_addf(&key, "AWS4%s", in->secret_key);
    if (sts.oom || key.oom || sl_ap_hmac(key.ptr, key.len, date, 8, k1) != 0 ||
        sl_ap_hmac(k1, 32, in->region, strlen(in->region), k2) != 0 ||
        sl_ap_hmac(k2, 32, in->service, strlen(in->service), k1) != 0 ||
        sl_ap_hmac(k1, 32, "aws4_request", 12, k2) != 0 ||
        sl_ap_hmac(k2, 32, sts.ptr, sts.len, k1) != 0) {
        goto done;
    }
    sl_ap_hex(sig, k1, 32);
    sl_ap_buf_addf(authorization,
                   "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
                   "Signature=%s",
                   in->access_key, date, in->region, in->service, signed_hdrs, sig);
    rc = authorization->oom ? -1 : 0;
done:
    if (key.ptr) {
        OPENSSL_cleanse(key.ptr, key.len);
    }
    OPENSSL_cleanse(k1, sizeof(k1));
    OPENSSL_cleanse(k2, sizeof(k2));
    sl_ap_buf_free(&cr);
    sl_ap_buf_free(&sts);
    sl_ap_buf_free(&key);
    return rc;
}
