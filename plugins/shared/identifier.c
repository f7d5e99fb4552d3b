/* identifier.c - Kong's quota identifier (rate-limiting's get_identifier). */

#include <string.h>

#include "identifier.h"

sl_str_t
sl_quota_identifier(const sl_api_t *api, sl_req_t *r, sl_quota_by_t by, const char *header_name,
                    const char *path)
{
    sl_str_t id = {NULL, 0};
    const sl_consumer_t *cons;
    const sl_credential_t *cred;

    switch (by) {
    case SL_QUOTA_BY_CONSUMER:
        if ((cons = api->consumer_get(r)) != NULL)
            api->consumer_info(cons, &id, NULL, NULL);
        if (id.len == 0 && (cred = api->credential_get(r)) != NULL)
            api->credential_info(cred, &id, NULL);
        break;
    case SL_QUOTA_BY_CREDENTIAL:
        if ((cred = api->credential_get(r)) != NULL)
            api->credential_info(cred, &id, NULL);
        break;
    case SL_QUOTA_BY_SERVICE:
        api->service_info(r, &id, NULL);
        break;
    case SL_QUOTA_BY_HEADER:
        if (!api->req_header_get(r, (sl_str_t){header_name, strlen(header_name)}, &id))
            id.len = 0;
        break;
    case SL_QUOTA_BY_PATH: {
        sl_str_t p = api->req_path(r);
        if (p.len == strlen(path) && memcmp(p.ptr, path, p.len) == 0)
            id = p;
        break;
    }
    case SL_QUOTA_BY_IP:
        break;
    }
    return id.len ? id : api->client_ip(r);
}
