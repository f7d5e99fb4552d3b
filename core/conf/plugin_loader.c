/* plugin_loader.c - find plugins (*.so) in the plugins directories, dlopen
 * them and check each descriptor against the ABI before anyone uses it.
 * A refused plugin never gets a single callback. */

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "base/log.h"
#include "conf/plugin_loader.h"

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
load_one(sl_plugin_registry_t *reg, const char *path, sl_errors_t *errs, int *failed)
{
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const sl_plugin_t *d;

    if (dl == NULL) {
        sl_errors_add(errs, "plugin %s: cannot load: %s", path, dlerror());
        *failed = 1;
        return;
    }
    d = dlsym(dl, SL_PLUGIN_SYMBOL);
    if (d == NULL) {
        sl_errors_add(errs, "plugin %s: no '%s' symbol: not a sluice plugin", path,
                      SL_PLUGIN_SYMBOL);
        goto refuse;
    }
    if (d->abi_major != SL_PLUGIN_ABI_MAJOR) {
        sl_errors_add(errs,
                      "plugin %s: built for plugin ABI %u.%u, this sluice has ABI %u.%u "
                      "(major versions must match): rebuild it against this sluice's "
                      "<sluice/plugin.h>",
                      path, d->abi_major, d->abi_minor, SL_PLUGIN_ABI_MAJOR, SL_PLUGIN_ABI_MINOR);
        goto refuse;
    }
    if (d->abi_minor > SL_PLUGIN_ABI_MINOR) {
        sl_errors_add(errs,
                      "plugin %s: built for plugin ABI %u.%u, newer than this sluice's "
                      "%u.%u: upgrade sluice",
                      path, d->abi_major, d->abi_minor, SL_PLUGIN_ABI_MAJOR, SL_PLUGIN_ABI_MINOR);
        goto refuse;
    }
    if (d->name == NULL || d->name[0] == '\0') {
        sl_errors_add(errs, "plugin %s: descriptor has no name", path);
        goto refuse;
    }
    if (d->config_parse == NULL) {
        sl_errors_add(errs, "plugin %s (%s): descriptor has no config_parse", path, d->name);
        goto refuse;
    }
    const sl_loaded_plugin_t *dup = sl_plugins_find(reg, d->name);
    if (dup != NULL) {
        sl_errors_add(errs, "plugin %s: name '%s' is already taken by %s", path, d->name,
                      dup->path);
        goto refuse;
    }
    reg->items = sl_xrealloc(reg->items, (reg->n + 1) * sizeof(*reg->items));
    reg->items[reg->n].desc = d;
    reg->items[reg->n].dl = dl;
    reg->items[reg->n].path = sl_strndup(path, strlen(path));
    reg->n++;
    sl_log_debug("loaded plugin %s %s (priority %d) from %s", d->name,
                 d->version ? d->version : "?", d->priority, path);
    return;

refuse:
    *failed = 1;
    dlclose(dl);
}

static void
load_dir(sl_plugin_registry_t *reg, const char *dir, sl_errors_t *errs, int *failed)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;

    if (d == NULL) {
        sl_errors_add(errs, "plugins directory %s: %s", dir, strerror(errno));
        *failed = 1;
        return;
    }
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l > 3 && strcmp(de->d_name + l - 3, ".so") == 0) {
            names = sl_xrealloc(names, (n + 1) * sizeof(char *));
            names[n++] = sl_strndup(de->d_name, l);
        }
    }
    closedir(d);
    if (n > 1) /* qsort's base must not be NULL, even for 0 items */
        qsort(names, n, sizeof(char *), cmp_names); /* deterministic order */
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        load_one(reg, path, errs, failed);
        free(names[i]);
    }
    free(names);
}

int
sl_plugins_load_dir(sl_plugin_registry_t *reg, const char *dirs, sl_errors_t *errs)
{
    int failed = 0;
    char *copy = sl_strndup(dirs, strlen(dirs)), *save = NULL;

    reg->dir = sl_strndup(dirs, strlen(dirs));
    for (char *d = strtok_r(copy, ":", &save); d; d = strtok_r(NULL, ":", &save))
        if (*d)
            load_dir(reg, d, errs, &failed);
    free(copy);
    return failed ? SL_ERROR : SL_OK;
}

void
sl_plugins_free(sl_plugin_registry_t *reg)
{
    for (size_t i = 0; i < reg->n; i++) {
        /* Keep the code mapped: a retired config generation's objects may
         * still point into it in the master; dlclose is not worth the risk. */
        free(reg->items[i].path);
    }
    free(reg->items);
    free(reg->dir);
    memset(reg, 0, sizeof(*reg));
}

const sl_loaded_plugin_t *
sl_plugins_find(const sl_plugin_registry_t *reg, const char *name)
{
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->items[i].desc->name, name) == 0)
            return &reg->items[i];
    return NULL;
}
