/* name_index.c - entities by name at load (conf/name_index.h). */

#include "conf/name_index.h"

#include <string.h>
#include <strings.h>

/* FNV-1a over the name's bytes (ASCII-folded when fold), then mixed so
 * the low bits the index uses depend on every byte. */
uint64_t
sl_names_tag(const char *p, size_t n, int fold)
{
    uint64_t h = 0xcbf29ce484222325ull;

    for (const char *e = p + n; p < e; p++) {
        unsigned char c = (unsigned char)*p;
        if (fold && c >= 'A' && c <= 'Z')
            c = (unsigned char)(c | 0x20);
        h = (h ^ c) * 0x100000001b3ull;
    }
    return h ^ (h >> 32);
}

static uint64_t
tag_of(const char *s, int fold)
{
    return sl_names_tag(s, strlen(s), fold);
}

static size_t
find(const sl_name_index_t *ni, const sl_conf_t *conf, const char *name, uint64_t tag)
{
    size_t cur = SL_KINDEX_START, i;

    while ((i = (size_t)(uintptr_t)sl_kindex_next(&ni->ix, tag, &cur)) != 0) {
        const char *have = ni->name_of(conf, i - 1);
        if (have && (ni->fold ? strcasecmp(have, name) : strcmp(have, name)) == 0)
            return i;
    }
    return 0;
}

size_t
sl_names_find(const sl_name_index_t *ni, const sl_conf_t *conf, const char *name)
{
    return find(ni, conf, name, tag_of(name, ni->fold));
}

size_t
sl_names_claim(sl_name_index_t *ni, const sl_conf_t *conf, const char *name, size_t i)
{
    uint64_t tag = tag_of(name, ni->fold);
    size_t had = find(ni, conf, name, tag);

    if (had == 0)
        sl_kindex_add(&ni->ix, tag, (void *)(uintptr_t)(i + 1));
    return had;
}

void
sl_names_free(sl_name_index_t *ni)
{
    sl_kindex_free(&ni->ix);
}
