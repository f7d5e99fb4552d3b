/* pool.h - per-request memory pool with cleanup hooks (nginx-style).
 * Everything allocated from a pool is freed at once by sl_pool_destroy();
 * cleanups (for non-memory resources) run first, in reverse order. */

#ifndef SL_POOL_H
#define SL_POOL_H

#include <stddef.h>

typedef struct sl_pool sl_pool_t;
typedef void (*sl_pool_cleanup_fn)(void *arg);

sl_pool_t *sl_pool_create(size_t block_size);
void sl_pool_destroy(sl_pool_t *p);

/* Never return NULL (abort on OOM).  Aligned for any type. */
void *sl_palloc(sl_pool_t *p, size_t n);
void *sl_pcalloc(sl_pool_t *p, size_t n);
char *sl_pstrndup(sl_pool_t *p, const char *s, size_t n); /* NUL-terminated */

int sl_pool_cleanup_add(sl_pool_t *p, sl_pool_cleanup_fn fn, void *arg);

/* Bytes handed out so far (for per-connection memory bounds). */
size_t sl_pool_used(const sl_pool_t *p);

#endif
