/* balance.h - what a request gives Kong's balancer (upstream/balancer.h):
 * the consistent-hashing input (Kong's get_value_to_hash: hash_on, then
 * hash_fallback) read from the request, and the cookie to set when
 * hash_on is a cookie the client did not send. */

#ifndef SL_BALANCE_H
#define SL_BALANCE_H

#include "http/request.h"
#include "upstream/balancer.h"

/* The value to hash for r (in r's pool; "" when none).  When hashing on a
 * cookie the client lacks, a new value is made and *set_cookie gets the
 * Set-Cookie header value to add to the response (else NULL). */
sl_str_t sl_balance_hash_value(sl_req_t *r, const sl_upstream_conf_t *u, const char **set_cookie);

#endif
