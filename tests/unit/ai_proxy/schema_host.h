/* schema_host.h - a host table holding only the schema checker, for tests,
 * fuzzers and benchmarks that parse ai-proxy configs without a server. */

#ifndef SL_AP_SCHEMA_HOST_H
#define SL_AP_SCHEMA_HOST_H

#include "sluice/plugin.h"

/* An sl_api_t (ABI 1.4) whose conf_schema_check and conf_schema_free are
 * the host's own (core/conf/schema.c); every other member is NULL.  Static,
 * valid for the process. */
const sl_api_t *sl_ap_test_host(void);

#endif
