/* hdr_accum.h - collect one header field at a time from llhttp's split
 * on_header_field / on_header_value callbacks (a field or value may arrive
 * in several pieces).  Used for client requests, upstream responses and
 * callouts.
 *
 * A field whose name and value each arrive in one piece (the usual case)
 * is not copied: the accumulator points into the parser's input until the
 * header is taken.  The input goes away when llhttp_execute() returns, so
 * the caller calls sl_hdr_accum_settle() right after every
 * llhttp_execute(): a header still borrowed then (cut by the end of a
 * read) is copied into the accumulator's own buffer, and later pieces are
 * appended to it. */

#ifndef SL_HDR_ACCUM_H
#define SL_HDR_ACCUM_H

#include "base/common.h"

typedef struct sl_hdr_accum {
    char *buf; /* owned bytes: the name, then the value */
    size_t len, cap;
    size_t name_len; /* bytes of the name (owned or borrowed) */
    int in_value;
    /* borrowed from the parser's input (nptr != NULL): the name at nptr,
     * the value at vptr (vlen bytes) once in_value */
    const char *nptr, *vptr;
    size_t vlen;
} sl_hdr_accum_t;

/* Append a piece of the name / the value.  A name piece after a value
 * means the previous header is complete: call sl_hdr_accum_take() first
 * (sl_hdr_accum_field does not do it, so the caller decides where the
 * header goes). */
void sl_hdr_accum_field(sl_hdr_accum_t *a, const char *at, size_t len);
void sl_hdr_accum_value(sl_hdr_accum_t *a, const char *at, size_t len);

/* The parser's input is going away: copy a borrowed header (the
 * out-of-line half of sl_hdr_accum_settle). */
void sl_hdr_accum_own(sl_hdr_accum_t *a);
static inline void
sl_hdr_accum_settle(sl_hdr_accum_t *a)
{
    if (a->nptr != NULL)
        sl_hdr_accum_own(a);
}

/* No piece of a header since the last take or reset. */
static inline int
sl_hdr_accum_empty(const sl_hdr_accum_t *a)
{
    return a->len == 0 && a->nptr == NULL;
}

/* If a complete header is pending, hand it out (valid until the next
 * append, settle or the end of the parser's input) with trailing
 * whitespace trimmed from the value, reset, return 1. */
int sl_hdr_accum_take(sl_hdr_accum_t *a, sl_str_t *name, sl_str_t *value);

void sl_hdr_accum_reset(sl_hdr_accum_t *a);
void sl_hdr_accum_free(sl_hdr_accum_t *a);

#endif
