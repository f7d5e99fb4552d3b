/* shm.c - shared-memory zones: a fixed-slot chained hash table in one
 * MAP_SHARED|MAP_ANONYMOUS mapping with a robust process-shared mutex
 * (layout and recovery rules in shm.h). */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "base/shm.h"
#include "base/time.h"

#define SHM_MAGIC 0x736c73686d7a6e31ull /* "slshmzn1" */
#define SHM_NAME_MAX 64
#define SHM_NIL 0u /* slot links are index + 1 */

enum { SLOT_FREE = 0, SLOT_WRITING = 1, SLOT_USED = 2 };

/* One entry.  `state` is written last when an entry is completed and first
 * when it is changed, so recovery can tell whole entries from torn ones. */
typedef struct shm_slot {
    uint32_t next; /* chain in a bucket, or the free list */
    uint32_t hash;
    int64_t expires_ms; /* CLOCK_MONOTONIC ms, 0 = never */
    double num;
    uint32_t vlen;
    uint16_t klen;
    uint8_t state;
    uint8_t type; /* SL_SHM_STRING / SL_SHM_NUMBER */
    char data[];  /* key, then value */
} shm_slot_t;

/* The start of the mapping. */
typedef struct shm_hdr {
    uint64_t magic;
    pthread_mutex_t lock;
    uint32_t nslots, nbuckets;
    uint32_t slot_size, value_max;
    uint32_t free_head;
    uint32_t used;
    uint64_t recoveries;
    size_t slots_off; /* from the start of the mapping */
    uint32_t buckets[];
} shm_hdr_t;

/* Process-local registry entry (inherited by workers through fork). */
struct sl_shm {
    char name[SHM_NAME_MAX + 1];
    size_t size, value_max;
    int refs;
    shm_hdr_t *h;
    struct sl_shm *next;
};

static sl_shm_zone_t *zones; /* creation order */

/* Eight bytes at a time (FNV-1a's step on 64-bit words, each followed by
 * a shift to bring high bits down), then murmur3's finaliser: a metrics
 * plugin hashes a dozen 40-byte keys per request, byte-wise FNV-1a was a
 * third of its cost. */
static uint32_t
hash_key(sl_str_t k)
{
    uint64_t h = 0xcbf29ce484222325ull ^ k.len, w;
    size_t i = 0;

    for (; i + 8 <= k.len; i += 8) {
        memcpy(&w, k.ptr + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    if (i < k.len) {
        w = 0;
        memcpy(&w, k.ptr + i, k.len - i);
        h = (h ^ w) * 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return (uint32_t)h;
}

static shm_slot_t *
slot_at(shm_hdr_t *h, uint32_t idx1)
{
    return (shm_slot_t *)((char *)h + h->slots_off + (size_t)(idx1 - 1) * h->slot_size);
}

static int
slot_live(const shm_slot_t *s, int64_t now)
{
    return s->state == SLOT_USED && (s->expires_ms == 0 || s->expires_ms > now);
}

/* ---- recovery ------------------------------------------------------------ */

/* Rebuild buckets, free list and count from the slots alone.  Slots whose
 * writer died mid-way (WRITING) or whose fields are out of range are freed;
 * so is a second slot with a key already seen. */
static void
rebuild(shm_hdr_t *h)
{
    memset(h->buckets, 0, (size_t)h->nbuckets * sizeof(uint32_t));
    h->free_head = SHM_NIL;
    h->used = 0;
    for (uint32_t i = h->nslots; i >= 1; i--) {
        shm_slot_t *s = slot_at(h, i);
        int ok = s->state == SLOT_USED && s->klen >= 1 && s->klen <= SL_SHM_KEY_MAX &&
                 s->vlen <= h->value_max && (s->type == SL_SHM_STRING || s->type == SL_SHM_NUMBER);
        if (ok) {
            sl_str_t k = {s->data, s->klen};
            uint32_t b = hash_key(k) % h->nbuckets;
            for (uint32_t j = h->buckets[b]; j != SHM_NIL; j = slot_at(h, j)->next) {
                shm_slot_t *o = slot_at(h, j);
                if (o->klen == s->klen && memcmp(o->data, s->data, s->klen) == 0) {
                    ok = 0;
                    break;
                }
            }
            if (ok) {
                s->hash = hash_key(k);
                s->next = h->buckets[b];
                h->buckets[b] = i;
                h->used++;
                continue;
            }
        }
        s->state = SLOT_FREE;
        s->next = h->free_head;
        h->free_head = i;
    }
}

static int
zone_lock(shm_hdr_t *h)
{
    int rc = pthread_mutex_lock(&h->lock);
    if (rc == EOWNERDEAD) {
        rebuild(h);
        h->recoveries++;
        pthread_mutex_consistent(&h->lock);
        return 0;
    }
    return rc == 0 ? 0 : -1;
}

static void
zone_unlock(shm_hdr_t *h)
{
    pthread_mutex_unlock(&h->lock);
}

/* ---- the table (lock held) ---------------------------------------------- */

static void
unlink_slot(shm_hdr_t *h, uint32_t *link, uint32_t idx1)
{
    shm_slot_t *s = slot_at(h, idx1);
    s->state = SLOT_WRITING;
    *link = s->next;
    s->state = SLOT_FREE;
    s->next = h->free_head;
    h->free_head = idx1;
    h->used--;
}

/* Find key; an expired match is reclaimed on the way.  Returns the slot
 * index + 1 or SHM_NIL. */
static uint32_t
lookup(shm_hdr_t *h, sl_str_t k, uint32_t hash, int64_t now)
{
    uint32_t *link = &h->buckets[hash % h->nbuckets];

    while (*link != SHM_NIL) {
        uint32_t i = *link;
        shm_slot_t *s = slot_at(h, i);
        if (s->hash == hash && s->klen == k.len && memcmp(s->data, k.ptr, k.len) == 0) {
            if (!slot_live(s, now)) {
                unlink_slot(h, link, i);
                return SHM_NIL;
            }
            return i;
        }
        link = &s->next;
    }
    return SHM_NIL;
}

/* Reclaim every expired entry.  O(capacity). */
static void
sweep(shm_hdr_t *h, int64_t now)
{
    for (uint32_t b = 0; b < h->nbuckets; b++) {
        uint32_t *link = &h->buckets[b];
        while (*link != SHM_NIL) {
            uint32_t i = *link;
            shm_slot_t *s = slot_at(h, i);
            if (!slot_live(s, now))
                unlink_slot(h, link, i);
            else
                link = &s->next;
        }
    }
}

/* A free slot, in state WRITING, holding key and linked into its bucket
 * (the caller fills the value then sets USED).  SHM_NIL when full. */
static uint32_t
insert(shm_hdr_t *h, sl_str_t k, uint32_t hash, int64_t now)
{
    if (h->free_head == SHM_NIL)
        sweep(h, now);
    if (h->free_head == SHM_NIL)
        return SHM_NIL;
    uint32_t i = h->free_head;
    shm_slot_t *s = slot_at(h, i);
    h->free_head = s->next;
    s->state = SLOT_WRITING;
    s->hash = hash;
    s->klen = (uint16_t)k.len;
    memcpy(s->data, k.ptr, k.len);
    s->vlen = 0;
    s->num = 0;
    s->expires_ms = 0;
    s->next = h->buckets[hash % h->nbuckets];
    h->buckets[hash % h->nbuckets] = i;
    h->used++;
    return i;
}

static int64_t
expiry(uint64_t ttl_ms, int64_t now)
{
    return ttl_ms ? now + (int64_t)ttl_ms : 0;
}

/* ---- operations ----------------------------------------------------------- */

static int
key_ok(sl_str_t k)
{
    return k.ptr != NULL && k.len >= 1 && k.len <= SL_SHM_KEY_MAX;
}

int
sl_shm_get(sl_shm_zone_t *z, sl_str_t key, char *buf, size_t cap, size_t *len, double *num)
{
    int rc = SL_SHM_NOT_FOUND;

    if (z == NULL || !key_ok(key))
        return -1;
    shm_hdr_t *h = z->h;
    uint32_t hash = hash_key(key);
    if (zone_lock(h) != 0)
        return -1;
    uint32_t i = lookup(h, key, hash, sl_mono_ms());
    if (i != SHM_NIL) {
        shm_slot_t *s = slot_at(h, i);
        if (s->type == SL_SHM_NUMBER) {
            if (num)
                *num = s->num;
            rc = SL_SHM_NUMBER;
        } else {
            if (len)
                *len = s->vlen;
            if (s->vlen > cap || (s->vlen > 0 && buf == NULL)) {
                rc = SL_SHM_ETRUNC;
            } else {
                if (s->vlen)
                    memcpy(buf, s->data + s->klen, s->vlen);
                rc = SL_SHM_STRING;
            }
        }
    }
    zone_unlock(h);
    return rc;
}

int
sl_shm_set(sl_shm_zone_t *z, sl_str_t key, sl_str_t value, uint64_t ttl_ms)
{
    if (z == NULL || !key_ok(key) || value.len > z->value_max || (value.len && !value.ptr))
        return -1;
    shm_hdr_t *h = z->h;
    uint32_t hash = hash_key(key);
    if (zone_lock(h) != 0)
        return -1;
    int64_t now = sl_mono_ms();
    uint32_t i = lookup(h, key, hash, now);
    if (i == SHM_NIL)
        i = insert(h, key, hash, now);
    if (i == SHM_NIL) {
        zone_unlock(h);
        return SL_SHM_ENOSPC;
    }
    shm_slot_t *s = slot_at(h, i);
    s->state = SLOT_WRITING;
    s->type = SL_SHM_STRING;
    s->num = 0;
    s->vlen = (uint32_t)value.len;
    if (value.len)
        memcpy(s->data + s->klen, value.ptr, value.len);
    s->expires_ms = expiry(ttl_ms, now);
    s->state = SLOT_USED;
    zone_unlock(h);
    return 0;
}

/* shm_incr's work with the lock held. */
static int
incr_locked(shm_hdr_t *h, sl_str_t key, uint32_t hash, double delta, uint64_t ttl_ms, int64_t now,
            double *out)
{
    uint32_t i = lookup(h, key, hash, now);
    shm_slot_t *s;
    if (i == SHM_NIL) {
        i = insert(h, key, hash, now);
        if (i == SHM_NIL)
            return SL_SHM_ENOSPC;
        s = slot_at(h, i);
        s->type = SL_SHM_NUMBER;
        s->expires_ms = expiry(ttl_ms, now);
        s->num = delta;
        s->state = SLOT_USED;
    } else {
        s = slot_at(h, i);
        if (s->type != SL_SHM_NUMBER)
            return SL_SHM_ETYPE;
        /* A double store of 8 aligned bytes: no torn state to mark. */
        s->num += delta;
    }
    if (out)
        *out = s->num;
    return 0;
}

int
sl_shm_incr(sl_shm_zone_t *z, sl_str_t key, double delta, uint64_t ttl_ms, double *out)
{
    if (z == NULL || !key_ok(key))
        return -1;
    shm_hdr_t *h = z->h;
    uint32_t hash = hash_key(key);
    if (zone_lock(h) != 0)
        return -1;
    int rc = incr_locked(h, key, hash, delta, ttl_ms, sl_mono_ms(), out);
    zone_unlock(h);
    return rc;
}

int
sl_shm_incr_many(sl_shm_zone_t *z, const sl_str_t *keys, const double *deltas, size_t n,
                 uint64_t ttl_ms)
{
    enum { BATCH = 64 };
    uint32_t hash[BATCH];
    size_t failed = 0;

    if (z == NULL || (n > 0 && (keys == NULL || deltas == NULL)))
        return -1;
    shm_hdr_t *h = z->h;
    for (size_t at = 0; at < n; at += BATCH) {
        size_t m = n - at < BATCH ? n - at : BATCH;
        for (size_t i = 0; i < m; i++)
            hash[i] = key_ok(keys[at + i]) ? hash_key(keys[at + i]) : 0;
        if (zone_lock(h) != 0)
            return -1;
        int64_t now = sl_mono_ms();
        for (size_t i = 0; i < m; i++) {
            if (!key_ok(keys[at + i]) ||
                incr_locked(h, keys[at + i], hash[i], deltas[at + i], ttl_ms, now, NULL) != 0)
                failed++;
        }
        zone_unlock(h);
    }
    return failed > INT32_MAX ? INT32_MAX : (int)failed;
}

int
sl_shm_delete(sl_shm_zone_t *z, sl_str_t key)
{
    if (z == NULL || !key_ok(key))
        return -1;
    shm_hdr_t *h = z->h;
    uint32_t hash = hash_key(key);
    int rc = SL_SHM_NOT_FOUND;
    if (zone_lock(h) != 0)
        return -1;
    int64_t now = sl_mono_ms();
    uint32_t *link = &h->buckets[hash % h->nbuckets];
    while (*link != SHM_NIL) {
        uint32_t i = *link;
        shm_slot_t *s = slot_at(h, i);
        if (s->hash == hash && s->klen == key.len && memcmp(s->data, key.ptr, key.len) == 0) {
            rc = slot_live(s, now) ? 1 : SL_SHM_NOT_FOUND;
            unlink_slot(h, link, i);
            break;
        }
        link = &s->next;
    }
    zone_unlock(h);
    return rc;
}

int
sl_shm_iter(sl_shm_zone_t *z, sl_shm_iter_fn fn, void *arg)
{
    if (z == NULL || fn == NULL)
        return -1;
    shm_hdr_t *h = z->h;
    size_t ss = h->slot_size;
    size_t batch = (256 * 1024) / ss;
    if (batch < 1)
        batch = 1;
    char *copy = malloc(batch * ss);
    if (copy == NULL)
        return -2;

    uint32_t next = 1;
    while (next <= h->nslots) {
        size_t n = 0;
        if (zone_lock(h) != 0) {
            free(copy);
            return -1;
        }
        int64_t now = sl_mono_ms();
        /* Walk slots in index order: an entry never moves, so one present
         * throughout is copied exactly once. */
        for (; next <= h->nslots && n < batch; next++) {
            shm_slot_t *s = slot_at(h, next);
            if (!slot_live(s, now))
                continue;
            memcpy(copy + n * ss, s, sizeof(*s) + s->klen + s->vlen);
            n++;
        }
        zone_unlock(h);
        for (size_t j = 0; j < n; j++) {
            shm_slot_t *s = (shm_slot_t *)(copy + j * ss);
            sl_shm_entry_t e = {
                .key = {s->data, s->klen},
                .value = {s->data + s->klen, s->type == SL_SHM_STRING ? s->vlen : 0},
                .num = s->num,
                .type = s->type,
                .ttl_ms = s->expires_ms ? s->expires_ms - now : 0,
            };
            if (e.ttl_ms < 0)
                e.ttl_ms = 1;
            if (fn(arg, &e) != 0) {
                free(copy);
                return 1;
            }
        }
    }
    free(copy);
    return 0;
}

/* ---- zones ------------------------------------------------------------------ */

static int
name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > SHM_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static shm_hdr_t *
zone_map(size_t size, size_t value_max, char *err, size_t errlen)
{
    size_t slot_size = (sizeof(shm_slot_t) + SL_SHM_KEY_MAX + value_max + 7) & ~(size_t)7;
    /* Per entry: one slot and one bucket. */
    size_t nslots = (size - sizeof(shm_hdr_t) - 64) / (slot_size + sizeof(uint32_t));
    if (nslots < 1 || nslots > UINT32_MAX - 1) {
        snprintf(err, errlen, "zone too small for one entry of %zu bytes", slot_size);
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        snprintf(err, errlen, "mmap of %zu bytes: %s", size, strerror(errno));
        return NULL;
    }
    shm_hdr_t *h = p;
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
    if (pthread_mutex_init(&h->lock, &a) != 0) {
        pthread_mutexattr_destroy(&a);
        munmap(p, size);
        snprintf(err, errlen, "cannot create a robust process-shared mutex");
        return NULL;
    }
    pthread_mutexattr_destroy(&a);
    h->nslots = (uint32_t)nslots;
    h->nbuckets = (uint32_t)nslots;
    h->slot_size = (uint32_t)slot_size;
    h->value_max = (uint32_t)value_max;
    h->slots_off = (sizeof(shm_hdr_t) + nslots * sizeof(uint32_t) + 63) & ~(size_t)63;
    rebuild(h); /* everything free, buckets empty */
    h->magic = SHM_MAGIC;
    return h;
}

sl_shm_zone_t *
sl_shm_zone_get(const char *name, size_t size, size_t value_max, char *err, size_t errlen)
{
    sl_shm_zone_t *z, **tail = &zones;

    if (!name_ok(name)) {
        snprintf(err, errlen, "zone name must be 1..%d characters of [A-Za-z0-9_.-]", SHM_NAME_MAX);
        return NULL;
    }
    if (size < SL_SHM_MIN_SIZE || size > SL_SHM_MAX_SIZE) {
        snprintf(err, errlen, "zone '%s': size %zu out of range (%zu..%zu bytes)", name, size,
                 SL_SHM_MIN_SIZE, SL_SHM_MAX_SIZE);
        return NULL;
    }
    if (value_max > SL_SHM_VALUE_MAX) {
        snprintf(err, errlen, "zone '%s': value_max %zu over %zu", name, value_max,
                 SL_SHM_VALUE_MAX);
        return NULL;
    }
    for (z = zones; z; z = z->next) {
        if (strcmp(z->name, name) == 0 && z->size == size && z->value_max == value_max) {
            z->refs++;
            return z;
        }
        tail = &z->next;
    }
    shm_hdr_t *h = zone_map(size, value_max, err, errlen);
    if (h == NULL)
        return NULL;
    z = sl_xcalloc(1, sizeof(*z));
    snprintf(z->name, sizeof(z->name), "%s", name);
    z->size = size;
    z->value_max = value_max;
    z->refs = 1;
    z->h = h;
    *tail = z;
    return z;
}

sl_shm_zone_t *
sl_shm_zone_ref(sl_shm_zone_t *z)
{
    z->refs++;
    return z;
}

void
sl_shm_zone_release(sl_shm_zone_t *z)
{
    if (z == NULL || --z->refs > 0)
        return;
    for (sl_shm_zone_t **p = &zones; *p; p = &(*p)->next) {
        if (*p == z) {
            *p = z->next;
            break;
        }
    }
    munmap(z->h, z->size);
    free(z);
}

int
sl_shm_zone_info(sl_shm_zone_t *z, sl_shm_info_t *out)
{
    if (z == NULL || out == NULL)
        return -1;
    shm_hdr_t *h = z->h;
    out->name = z->name;
    out->size = z->size;
    out->value_max = z->value_max;
    out->capacity = h->nslots;
    out->used = __atomic_load_n(&h->used, __ATOMIC_RELAXED);
    out->used_bytes = h->slots_off + out->used * h->slot_size;
    return 0;
}

int
sl_shm_zone_at(size_t index, sl_shm_info_t *out)
{
    sl_shm_zone_t *z = zones;
    while (z && index--)
        z = z->next;
    return z ? sl_shm_zone_info(z, out) : -1;
}

/* ---- tests ------------------------------------------------------------------ */

int
sl_shm_check(sl_shm_zone_t *z)
{
    shm_hdr_t *h = z->h;
    uint32_t seen = 0, nfree = 0;
    int ok = 0;

    if (zone_lock(h) != 0)
        return -1;
    if (h->magic != SHM_MAGIC)
        ok = -1;
    for (uint32_t b = 0; b < h->nbuckets && ok == 0; b++) {
        for (uint32_t i = h->buckets[b]; i != SHM_NIL; i = slot_at(h, i)->next) {
            shm_slot_t *s = slot_at(h, i);
            if (i > h->nslots || s->state != SLOT_USED || s->hash % h->nbuckets != b ||
                s->hash != hash_key((sl_str_t){s->data, s->klen}) || ++seen > h->nslots) {
                ok = -1;
                break;
            }
        }
    }
    for (uint32_t i = h->free_head; i != SHM_NIL && ok == 0; i = slot_at(h, i)->next)
        if (i > h->nslots || slot_at(h, i)->state != SLOT_FREE || ++nfree > h->nslots)
            ok = -1;
    if (ok == 0 && (seen != h->used || seen + nfree != h->nslots))
        ok = -1;
    zone_unlock(h);
    return ok;
}

void
sl_shm_test_die_locked(sl_shm_zone_t *z, sl_str_t key)
{
    shm_hdr_t *h = z->h;
    zone_lock(h);
    /* Half-way through an insert: slot taken off the free list, linked,
     * but still WRITING, and the count not yet consistent. */
    uint32_t i = insert(h, key, hash_key(key), sl_mono_ms());
    if (i != SHM_NIL)
        slot_at(h, i)->type = 0;
    h->used += 7;
}

uint64_t
sl_shm_recoveries(sl_shm_zone_t *z)
{
    return z->h->recoveries;
}
