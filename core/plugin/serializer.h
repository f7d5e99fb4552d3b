/* serializer.h - Kong's basic log serializer: the JSON record file-log
 * (and any logging plugin) writes, plus serialize values set by plugins. */

#ifndef SL_SERIALIZER_H
#define SL_SERIALIZER_H

#include "http/request.h"

/* Attach a JSON value at a dotted key.  SL_OK / SL_ERROR (invalid JSON). */
int sl_serialize_set(sl_req_t *r, const char *key, sl_str_t json);
/* Attach a string (any bytes, copied; escaped when written) at a dotted
 * key without parsing JSON; the tree is built from it when first read.
 * SL_OK / SL_ERROR (bad key). */
int sl_serialize_set_string(sl_req_t *r, const char *key, sl_str_t value);
/* api->set_serialize_typed (ABI 1.6): *v at a dotted key, copied like a
 * string and built into the tree when first read (a DOUBLE written with 14
 * significant digits).  SL_OK / SL_ERROR (bad key, type, NaN or
 * infinity). */
int sl_serialize_set_typed(sl_req_t *r, const char *key, const sl_value_t *v);
/* The value at a dotted key as compact JSON (request pool): 1 found, 0 not. */
int sl_serialize_get(sl_req_t *r, const char *key, sl_str_t *json);
/* api->serialize_value_typed and serialize_value_keys (ABI 1.5): the
 * value itself, borrowed from the tree; see plugin.h. */
int sl_serialize_get_typed(sl_req_t *r, const char *key, sl_value_t *out);
int sl_serialize_keys(sl_req_t *r, const char *key, sl_str_t *names, size_t cap);

/* Build the record (compact JSON, pool memory).  `redact`: NULL-terminated
 * extra request header names to write as "REDACTED".  The one writer of the
 * record; tests/unit/core/test_serializer.c holds it equal to an
 * independent json-c oracle. */
int sl_serialize(sl_req_t *r, const char *const *redact, sl_str_t *out);
/* The same record left in the loop thread's record buffer (api->log_record,
 * ABI 1.8): valid until the next sl_serialize or sl_serialize_borrow. */
int sl_serialize_borrow(sl_req_t *r, const char *const *redact, sl_str_t *out);

/* api->req_stats: the record's sizes, latencies and names. */
int sl_serialize_stats(sl_req_t *r, sl_req_stats_t *out);

#endif
