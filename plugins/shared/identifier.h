/* identifier.h - what a quota counts by (Kong's limit_by / identifier):
 * shared by rate-limiting and ai-rate-limiting-advanced. */

#ifndef SL_QUOTA_IDENTIFIER_H
#define SL_QUOTA_IDENTIFIER_H

#include "sluice/plugin.h"

/* In Kong's order of the one_of lists. */
typedef enum sl_quota_by {
    SL_QUOTA_BY_CONSUMER = 0,
    SL_QUOTA_BY_CREDENTIAL,
    SL_QUOTA_BY_IP,
    SL_QUOTA_BY_SERVICE,
    SL_QUOTA_BY_HEADER,
    SL_QUOTA_BY_PATH
} sl_quota_by_t;

/* Kong's get_identifier: consumer id (else credential id), credential id,
 * service id, the header's value, or the path when it equals `path`; the
 * client IP when that is missing. */
sl_str_t sl_quota_identifier(const sl_api_t *api, sl_req_t *r, sl_quota_by_t by,
                             const char *header_name, const char *path);

#endif
