/* ref_scan.h - the reference scanner and estimate (ref_scan.c). */
#ifndef SL_AP_REF_SCAN_H
#define SL_AP_REF_SCAN_H

#include "ai_proxy.h"

int sl_ref_json_parse(sl_jdoc_t *d, const char *src, size_t len);
int64_t sl_ref_estimate_tokens(const sl_jdoc_t *d);
/* sl_ap_anthropic_request with the reference scanner and estimate
 * (ref_request.c) */
int sl_ref_anthropic_request(const sl_ap_target_t *conf, const char *body, size_t len,
                             sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_req_info_t *info);

#endif
