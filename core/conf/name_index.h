/* name_index.h - a configuration's entities by name (or id) while it
 * loads: services, routes and upstreams.  A new entity's duplicate check
 * and each reference to one (a route's or plugin's `service`, a plugin's
 * `route`, a target's `upstream`) is one probe, where scanning the
 * entities loaded before made a load quadratic in them.
 *
 * Open addressing (conf/keyed_index.h) under an unkeyed FNV-1a tag: the
 * names are the config author's, who has nothing to gain from collisions.
 * Items are entity numbers + 1; a name stays with the first entity that
 * claimed it (a later one with the same name is the duplicate).
 *
 * OWNERSHIP: the index owns its slots, never the names (name_of reads
 * them from the configuration). */

#ifndef SL_NAME_INDEX_H
#define SL_NAME_INDEX_H

#include "conf/config.h"

/* Entity i's name in conf, or NULL when it has none. */
typedef const char *(*sl_name_of_fn)(const sl_conf_t *conf, size_t i);

typedef struct sl_name_index {
    sl_kindex_t ix;
    sl_name_of_fn name_of;
    int fold; /* names compare without case (upstream names) */
} sl_name_index_t;

/* The tag an index keeps for the n bytes at p (folded as `fold` says):
 * what a look-up by a name that is not NUL-terminated probes with. */
uint64_t sl_names_tag(const char *p, size_t n, int fold);
/* The number + 1 of the entity named `name`, or 0. */
size_t sl_names_find(const sl_name_index_t *ni, const sl_conf_t *conf, const char *name);
/* Give `name` to entity i: 0, or (nothing changed) the number + 1 of the
 * entity that has it already. */
size_t sl_names_claim(sl_name_index_t *ni, const sl_conf_t *conf, const char *name, size_t i);
void sl_names_free(sl_name_index_t *ni);

#endif
