/* shm.h - shared-memory zones: a fixed-slot hash dictionary in one
 * MAP_SHARED anonymous mapping, shared by the master and every worker it
 * forks, guarded by a robust process-shared mutex.
 *
 * Zones are created in the master (while a configuration is loaded, before
 * fork) and found again by name, size and value_max on a reload, so their
 * contents outlive worker restarts and reloads.  A zone is reference
 * counted by the configuration generations using it and unmapped when the
 * last one is freed.
 *
 * Entries: a key of 1..SL_SHM_KEY_MAX bytes, and either a byte string of at
 * most value_max bytes (set) or a number (incr), with an optional expiry.
 * Every slot has the same size, so the zone never fragments: its capacity in
 * entries is fixed when it is created.  A process that dies while holding
 * the lock leaves the next locker EOWNERDEAD: the hash index is rebuilt from
 * the slots (an entry half-written by the dead process is dropped) before
 * the lock is marked consistent. */

#ifndef SL_SHM_H
#define SL_SHM_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef struct sl_shm sl_shm_zone_t; /* the ABI's sl_shm_t */

#define SL_SHM_MIN_SIZE ((size_t)16 * 1024)
#define SL_SHM_MAX_SIZE ((size_t)1024 * 1024 * 1024)
#define SL_SHM_VALUE_MAX ((size_t)64 * 1024)

/* Find the zone (name, size, value_max) or create it.  Returns a reference
 * (release with sl_shm_zone_release), or NULL with a message in err. */
sl_shm_zone_t *sl_shm_zone_get(const char *name, size_t size, size_t value_max, char *err,
                               size_t errlen);
void sl_shm_zone_release(sl_shm_zone_t *z);
/* Another reference to a zone the caller holds. */
sl_shm_zone_t *sl_shm_zone_ref(sl_shm_zone_t *z);

/* The zone registry of this process, in creation order: 0, or -1 past the
 * end. */
int sl_shm_zone_at(size_t index, sl_shm_info_t *out);
int sl_shm_zone_info(sl_shm_zone_t *z, sl_shm_info_t *out);

/* Dictionary operations: see sl_api_t's shm_* members for the contract. */
int sl_shm_get(sl_shm_zone_t *z, sl_str_t key, char *buf, size_t cap, size_t *len, double *num);
int sl_shm_set(sl_shm_zone_t *z, sl_str_t key, sl_str_t value, uint64_t ttl_ms);
int sl_shm_incr(sl_shm_zone_t *z, sl_str_t key, double delta, uint64_t ttl_ms, double *out);
int sl_shm_incr_many(sl_shm_zone_t *z, const sl_str_t *keys, const double *deltas, size_t n,
                     uint64_t ttl_ms);
int sl_shm_delete(sl_shm_zone_t *z, sl_str_t key);
int sl_shm_iter(sl_shm_zone_t *z, sl_shm_iter_fn fn, void *arg);

/* Tests: check every invariant of the structure (0 = consistent, -1 not);
 * take the zone lock and scribble a half-written entry (then the caller
 * dies holding the lock). */
int sl_shm_check(sl_shm_zone_t *z);
void sl_shm_test_die_locked(sl_shm_zone_t *z, sl_str_t key);
/* Tests: number of times a dead owner's lock was recovered. */
uint64_t sl_shm_recoveries(sl_shm_zone_t *z);

#endif
