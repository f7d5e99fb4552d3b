/* common.h - return codes, small helpers shared by every core file. */

#ifndef SL_COMMON_H
#define SL_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "sluice/plugin.h"

#define SL_OK 0
#define SL_ERROR -1
#define SL_AGAIN -2
#define SL_DECLINED -5

/* The version: meson.build's project version, through sl_build_config.h. */
#include "sl_build_config.h"

#define sl_nelems(a) (sizeof(a) / sizeof((a)[0]))

static inline sl_str_t
sl_str_c(const char *s)
{
    sl_str_t r = {s, s ? strlen(s) : 0};
    return r;
}

static inline int
sl_str_eq(sl_str_t a, sl_str_t b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

static inline int
sl_str_caseeq(sl_str_t a, sl_str_t b)
{
    return a.len == b.len && (a.len == 0 || strncasecmp(a.ptr, b.ptr, a.len) == 0);
}

/* malloc'd NUL-terminated copy of (ptr,len); aborts on OOM. */
char *sl_strndup(const char *p, size_t len);
void *sl_xmalloc(size_t n);
void *sl_xcalloc(size_t n, size_t sz);
void *sl_xrealloc(void *p, size_t n);
/* Room for item `n` (0-based) of an array of `size`-byte items that only
 * this function grows: its capacity is implied by the count (at least 8,
 * doubled when n reaches a power of two), so appending n items copies
 * O(n) bytes in all, not O(n^2) as growing by one does. */
void *sl_xgrow(void *p, size_t n, size_t size);

#endif
