/* ref_request.c - today's request translator over the reference scanner
 * and estimate (ref_scan.c): the oracle the fast path is held equal to by
 * test_fastpath.c and tests/fuzz/fuzz_fastpath.c.  Not part of the plugin. */

#include "ref_scan.h"

#define sl_json_parse sl_ref_json_parse
#define sl_ap_estimate_tokens sl_ref_estimate_tokens
#define sl_ap_anthropic_request sl_ref_anthropic_request
#include "anthropic_request.c"
