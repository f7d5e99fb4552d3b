/* hdr_accum.h - collect one header field at a time from llhttp's split
 * on_header_field / on_header_value callbacks (a field or value may arrive
 * in several pieces).  Used for client requests and upstream responses. */

#ifndef SL_HDR_ACCUM_H
#define SL_HDR_ACCUM_H

#include "base/common.h"

typedef struct sl_hdr_accum {
    char *buf;
    size_t len, cap;
    size_t name_len; /* bytes of buf that are the field name */
    int in_value;
} sl_hdr_accum_t;

/* Append a piece of the name / the value.  A name piece after a value
 * means the previous header is complete: call sl_hdr_accum_take() first
 * (sl_hdr_accum_field does not do it, so the caller decides where the
 * header goes). */
void sl_hdr_accum_field(sl_hdr_accum_t *a, const char *at, size_t len);
void sl_hdr_accum_value(sl_hdr_accum_t *a, const char *at, size_t len);

/* If a complete header is pending, hand it out (valid until the next
 * append) with trailing whitespace trimmed from the value, reset, return 1. */
int sl_hdr_accum_take(sl_hdr_accum_t *a, sl_str_t *name, sl_str_t *value);

void sl_hdr_accum_reset(sl_hdr_accum_t *a);
void sl_hdr_accum_free(sl_hdr_accum_t *a);

#endif
