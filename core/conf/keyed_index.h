/* keyed_index.h - hash indexes over a configuration generation's entities
 * (consumers by id, username and custom_id; credentials by key and id).
 *
 * A slot holds an item and its tag: SipHash-2-4 of the item's name under a
 * secret drawn once per generation (sl_khash_t), so nobody who does not
 * know the secret can choose names that collide, and the probe's length
 * says nothing about what is stored.  Open addressing, at most half full;
 * the caller compares the item itself for every slot whose tag matches
 * (sl_kindex_next), so a tag collision never returns the wrong item.
 *
 * OWNERSHIP: the index owns its slots, never the items. */

#ifndef SL_KEYED_INDEX_H
#define SL_KEYED_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct sl_khash {
    int ready;                /* 0 until sl_khash_init */
    unsigned char secret[16]; /* random, per generation */
} sl_khash_t;

typedef struct sl_kslot {
    uint64_t tag;
    void *item; /* NULL: empty */
} sl_kslot_t;

typedef struct sl_kindex {
    sl_kslot_t *slots; /* mask + 1 of them; NULL while empty */
    size_t mask;
    size_t n;
} sl_kindex_t;

/* Draw the secret (once; later calls do nothing).  -1 when libsodium
 * cannot start. */
int sl_khash_init(sl_khash_t *h);
/* The tag of n bytes at p; -1 if the hash failed or was never set up. */
int sl_khash(const sl_khash_t *h, const void *p, size_t n, uint64_t *tag);
/* Wipe the secret. */
void sl_khash_free(sl_khash_t *h);

/* Add an item under its tag (several items may share a tag). */
void sl_kindex_add(sl_kindex_t *ix, uint64_t tag, void *item);
/* The items stored under `tag`, one per call: start with *cursor =
 * SL_KINDEX_START; NULL when there are no more. */
#define SL_KINDEX_START SIZE_MAX
void *sl_kindex_next(const sl_kindex_t *ix, uint64_t tag, size_t *cursor);
void sl_kindex_free(sl_kindex_t *ix);

#endif
