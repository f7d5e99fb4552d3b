/* headers.h - an ordered list of HTTP header fields stored in a pool.
 * Names keep their case as received; lookups are case-insensitive. */

#ifndef SL_HEADERS_H
#define SL_HEADERS_H

#include "base/common.h"
#include "base/pool.h"

typedef struct sl_header {
    sl_str_t name;
    sl_str_t value;
} sl_header_t;

typedef struct sl_headers {
    sl_header_t *items;
    size_t n, cap;
} sl_headers_t;

/* All copy name and value into pool p. */
void sl_headers_add(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value);
void sl_headers_set(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value);
/* sl_headers_set for names[i] = values[i], i < n, in one pass: existing
 * fields of those names are removed and the new ones appended in order (a
 * name given twice: the later value).  With null_removes, values[i].ptr ==
 * NULL removes the name only. */
void sl_headers_set_many(sl_headers_t *h, sl_pool_t *p, const sl_str_t *names,
                         const sl_str_t *values, size_t n, int null_removes);
int sl_headers_remove(sl_headers_t *h, sl_str_t name); /* count removed */
/* sl_headers_add and sl_headers_set without copies: name and value are
 * stored as given and must live as long as p (literals, strings in p). */
void sl_headers_add_ref(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value);
void sl_headers_set_ref(sl_headers_t *h, sl_pool_t *p, sl_str_t name, sl_str_t value);

/* What sl_headers_set_many(names, values, n, null_removes = 1) does,
 * worked out once: the distinct names to remove and the fields to append,
 * their text in one block (ABI 1.7's header_block_new).  The caller checks
 * names and values first.  OWNERSHIP: the caller's, sl_header_block_free;
 * sl_headers_apply copies from it, so it may go while requests that had it
 * applied still run. */
typedef struct sl_header_block sl_header_block_t;
sl_header_block_t *sl_header_block_new(const sl_str_t *names, const sl_str_t *values, size_t n);
void sl_header_block_free(sl_header_block_t *b);
/* sl_headers_set_many with the block's fields: the old fields of its names
 * removed, its fields appended in order, their text copied into p in one
 * piece. */
void sl_headers_apply(sl_headers_t *h, sl_pool_t *p, const sl_header_block_t *b);
/* First value; NULL if absent. */
const sl_header_t *sl_headers_get(const sl_headers_t *h, sl_str_t name);
/* Does a comma-separated header contain token (case-insensitive)? */
int sl_headers_has_token(const sl_headers_t *h, sl_str_t name, sl_str_t token);

/* Hop-by-hop per RFC 9110 §7.6.1, plus names listed in `connection`. */
int sl_header_is_hop_by_hop(sl_str_t name);

#endif
