/* scrub.c - the configured provider credential never leaves the gateway.
 *
 * A provider that echoes the credential it was sent (a WWW-Authenticate
 * header naming the token, an X-Echo header, "Incorrect API key provided:
 * sk-..." in an error body) would hand the gateway's key to the client and
 * to the log.  As defence in depth, every occurrence of the target's secret
 * in the upstream's response headers and in the bodies ai-proxy holds
 * before sending (errors, non-streamed answers, each translated stream
 * piece) is replaced by "[REDACTED]".
 *
 * The secrets: auth.header_value without a leading scheme word ("Bearer
 * sk-..." -> "sk-..."), and auth.param_value, each only when it has at
 * least SL_AP_SECRET_MIN bytes (a shorter value would scrub ordinary text;
 * no real key is that short).  Matched byte for byte: a key the provider
 * re-encodes (percent-, base64- or \u-escaped) or splits over two pieces of
 * a pass-through stream is not seen.
 */

#include <string.h>

#include "ai_proxy.h"

#define SL_AP_SECRET_MIN 8
#define SL_AP_REDACTED "[REDACTED]"

size_t
sl_ap_secrets(const sl_ap_target_t *t, sl_str_t out[SL_AP_MAX_SECRETS])
{
    size_t n = 0;

    if (t->header_value != NULL) {
        const char *v = t->header_value;
        const char *sp = strchr(v, ' ');
        size_t i;

        /* "Bearer <key>", "Basic <b64>", "Token <key>": the part after a
         * scheme word; a value without one is the key itself */
        if (sp != NULL) {
            for (i = 0; v + i < sp && ((v[i] | 0x20) >= 'a' && (v[i] | 0x20) <= 'z'); i++) {
            }
            if (v + i == sp && i > 0) {
                while (*sp == ' ') {
                    sp++;
                }
                v = sp;
            }
        }
        if (strlen(v) >= SL_AP_SECRET_MIN) {
            out[n++] = (sl_str_t){v, strlen(v)};
        }
    }
    if (t->param_value != NULL && strlen(t->param_value) >= SL_AP_SECRET_MIN) {
        out[n++] = (sl_str_t){t->param_value, strlen(t->param_value)};
    }
    return n;
}

/* The first secret in p[0..n) from *from on, or NULL; *which its index. */
static const char *
sl_ap_secret_find(const sl_str_t *s, size_t ns, const char *p, size_t n, size_t *which)
{
    const char *best = NULL;
    size_t k;

    for (k = 0; k < ns; k++) {
        const char *m = memmem(p, n, s[k].ptr, s[k].len);

        if (m != NULL && (best == NULL || m < best)) {
            best = m;
            *which = k;
        }
    }
    return best;
}

int
sl_ap_has_secret(const sl_ap_target_t *t, const char *p, size_t n)
{
    sl_str_t s[SL_AP_MAX_SECRETS];
    size_t ns = sl_ap_secrets(t, s), which;

    return ns > 0 && n > 0 && sl_ap_secret_find(s, ns, p, n, &which) != NULL;
}

void
sl_ap_scrub_into(const sl_ap_target_t *t, const char *p, size_t n, sl_ap_buf_t *out)
{
    sl_str_t s[SL_AP_MAX_SECRETS];
    size_t ns = sl_ap_secrets(t, s), which = 0;
    const char *m;

    while (n > 0 && ns > 0 && (m = sl_ap_secret_find(s, ns, p, n, &which)) != NULL) {
        sl_ap_buf_add(out, p, (size_t)(m - p));
        SL_AP_BUF_LIT(out, SL_AP_REDACTED);
        n -= (size_t)(m - p) + s[which].len;
        p = m + s[which].len;
    }
    sl_ap_buf_add(out, p, n);
}

int
sl_ap_scrub_buf(const sl_ap_target_t *t, sl_ap_buf_t *b)
{
    sl_ap_buf_t o = {0};

    if (b->len == 0 || !sl_ap_has_secret(t, b->ptr, b->len)) {
        return 0;
    }
    sl_ap_scrub_into(t, b->ptr, b->len, &o);
    if (o.oom) {
        sl_ap_buf_free(&o);
        return -2;
    }
    sl_ap_buf_free(b);
    *b = o;
    return 0;
}
