/* version.c - `sluice -V`: the version, the plugin ABI, and each library's
 * version at build time and, where the library can tell, at run time. */

#include <ares.h>
#include <json-c/json_c_version.h>
#include <llhttp.h>
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <uv.h>
#include <yaml.h>

#include "base/common.h"
#include "proc/version.h"
#include "sl_build_config.h"
#include "sluice/plugin.h"

#define SL_STR2(x) #x
#define SL_STRX(x) SL_STR2(x)

typedef struct sl_lib_version {
    const char *name;
    const char *built;            /* headers / pkg-config at build time */
    const char *(*running)(void); /* NULL: linked statically or unknown */
} sl_lib_version_t;

static const char *
openssl_running(void)
{
    return OpenSSL_version(OPENSSL_VERSION);
}

static const char *
yaml_running(void)
{
    return yaml_get_version_string();
}

static const char *
cares_running(void)
{
    return ares_version(NULL);
}

static const sl_lib_version_t libs[] = {
    {"libuv", SL_STRX(UV_VERSION_MAJOR) "." SL_STRX(UV_VERSION_MINOR) "." SL_STRX(UV_VERSION_PATCH),
     uv_version_string},
    {"json-c", JSON_C_VERSION, json_c_version},
    {"OpenSSL", OPENSSL_VERSION_TEXT, openssl_running},
    {"libyaml", SL_BUILD_YAML_VERSION, yaml_running},
    {"c-ares", ARES_VERSION_STR, cares_running},
    {"llhttp",
     SL_STRX(LLHTTP_VERSION_MAJOR) "." SL_STRX(LLHTTP_VERSION_MINOR) "." SL_STRX(
         LLHTTP_VERSION_PATCH) " (compiled in)",
     NULL},
#if SL_HAVE_SYSTEMD
    {"libsystemd", SL_BUILD_SYSTEMD_VERSION " (sd_notify)", NULL},
#endif
};

void
sl_version_print(FILE *out)
{
    fprintf(out, "sluice %s (plugin ABI %d.%d)\n", SL_VERSION, SL_PLUGIN_ABI_MAJOR,
            SL_PLUGIN_ABI_MINOR);
    fprintf(out, "plugins dir %s\n", SL_DEFAULT_PLUGINS_DIR);
    fprintf(out, "systemd notify %s\n", SL_HAVE_SYSTEMD ? "yes" : "no");
    fprintf(out, "built with:\n");
    for (size_t i = 0; i < sl_nelems(libs); i++) {
        fprintf(out, "  %-10s %s", libs[i].name, libs[i].built);
        if (libs[i].running)
            fprintf(out, ", running %s", libs[i].running());
        fputc('\n', out);
    }
}
