/* token_azure.c - Azure OpenAI's Entra ID credential, as Kong's
 * auth.azure_use_managed_identity: with azure_tenant_id, azure_client_id
 * and azure_client_secret, a service principal's client-credentials grant
 * at Entra's token endpoint (AZURE_AUTHORITY_HOST overrides the authority,
 * as in Azure's identity SDKs); otherwise the host's managed identity from
 * the instance metadata service (a user-assigned one by azure_client_id;
 * AZURE_POD_IDENTITY_AUTHORITY_HOST overrides its address, as in the
 * SDKs).  Both ask for Cognitive Services' scope.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

#define SL_AP_AZ_AUTHORITY "https://login.microsoftonline.com"
#define SL_AP_AZ_IMDS "http://169.254.169.254"
#define SL_AP_AZ_RESOURCE "https://cognitiveservices.azure.com"

typedef struct sl_ap_azure {
    char *client_id, *client_secret; /* secret NULL: managed identity */
} sl_ap_azure_t;

static void
sl_ap_azure_free(void *priv)
{
    sl_ap_azure_t *a = priv;

    if (a) {
        free(a->client_id);
        free(a->client_secret);
        free(a);
    }
}

static int
sl_ap_azure_request(const sl_ap_token_src_t *s, int64_t now_s, sl_ap_buf_t *body)
{
    const sl_ap_azure_t *a = s->priv;

    (void)now_s;
    if (a->client_secret == NULL) {
        return 0; /* managed identity: a GET, everything in the URL */
    }
    SL_AP_BUF_LIT(body, "grant_type=client_credentials&client_id=");
    sl_ap_form_encode(body, a->client_id, strlen(a->client_id));
    SL_AP_BUF_LIT(body, "&client_secret=");
    sl_ap_form_encode(body, a->client_secret, strlen(a->client_secret));
    SL_AP_BUF_LIT(body, "&scope=");
    sl_ap_form_encode(body, SL_AP_AZ_RESOURCE "/.default",
                      sizeof(SL_AP_AZ_RESOURCE "/.default") - 1);
    return body->oom ? -1 : 0;
}

static const sl_ap_token_kind_t sl_ap_azure_kind = {
    "Azure Entra ID",
    sl_ap_azure_request,
    sl_ap_azure_free,
};

/* An override of a base URL from the environment, without a trailing /. */
static void
sl_ap_azure_base(sl_ap_buf_t *url, const char *env, const char *def)
{
    const char *v = getenv(env);
    size_t n;

    if (v == NULL || v[0] == '\0') {
        v = def;
    }
    n = strlen(v);
    while (n > 0 && v[n - 1] == '/') {
        n--;
    }
    sl_ap_buf_add(url, v, n);
}

sl_ap_token_src_t *
sl_ap_token_azure(const char *tenant, const char *client_id, const char *client_secret, char *err,
                  size_t errlen)
{
    sl_ap_azure_t *a = calloc(1, sizeof(*a));
    sl_ap_buf_t url = {0};
    sl_ap_token_src_t *s = NULL;

    if (a == NULL) {
        goto oom;
    }
    if (client_secret) {
        if (tenant == NULL || client_id == NULL) {
            snprintf(err, errlen, "azure_client_secret needs azure_tenant_id and azure_client_id");
            sl_ap_azure_free(a);
            return NULL;
        }
        sl_ap_azure_base(&url, "AZURE_AUTHORITY_HOST", SL_AP_AZ_AUTHORITY);
        sl_ap_buf_addc(&url, '/');
        sl_ap_form_encode(&url, tenant, strlen(tenant));
        SL_AP_BUF_LIT(&url, "/oauth2/v2.0/token");
        a->client_secret = strdup(client_secret);
    } else {
        sl_ap_azure_base(&url, "AZURE_POD_IDENTITY_AUTHORITY_HOST", SL_AP_AZ_IMDS);
        SL_AP_BUF_LIT(&url, "/metadata/identity/oauth2/token?api-version=2018-02-01&resource=");
        sl_ap_form_encode(&url, SL_AP_AZ_RESOURCE, sizeof(SL_AP_AZ_RESOURCE) - 1);
        if (client_id) {
            SL_AP_BUF_LIT(&url, "&client_id=");
            sl_ap_form_encode(&url, client_id, strlen(client_id));
        }
    }
    if (client_id && (a->client_id = strdup(client_id)) == NULL) {
        goto oom;
    }
    if ((client_secret && a->client_secret == NULL) || url.oom ||
        (s = sl_ap_token_new(&sl_ap_azure_kind, a, url.ptr)) == NULL) {
        goto oom;
    }
    if (client_secret == NULL) {
        s->method = "GET";
        s->content_type = NULL;
        s->hdr_name = "metadata";
        s->hdr_value = "true";
    }
    sl_ap_buf_free(&url);
    return s;
oom:
    snprintf(err, errlen, "out of memory");
    sl_ap_azure_free(a);
    sl_ap_buf_free(&url);
    return NULL;
}
