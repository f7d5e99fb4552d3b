/* settings.c - gateway settings from defaults, a settings file, SLUICE_*
 * environment variables and the command line (later sources win). */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "conf/settings.h"
#include "sl_build_config.h"

static void
set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = sl_strndup(v, strlen(v));
}

static void
listen_add(sl_settings_t *s, const char *v)
{
    s->listen = sl_xrealloc(s->listen, (s->nlisten + 1) * sizeof(char *));
    s->listen[s->nlisten++] = sl_strndup(v, strlen(v));
}

static void
listen_clear(sl_settings_t *s)
{
    for (size_t i = 0; i < s->nlisten; i++)
        free(s->listen[i]);
    s->nlisten = 0;
}

void
sl_settings_defaults(sl_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->workers = 0;
    s->plugins_dir = sl_strndup(SL_DEFAULT_PLUGINS_DIR, strlen(SL_DEFAULT_PLUGINS_DIR));
    s->log_level = SL_LOG_INFO;
    s->max_header_size = 32 * 1024;
    s->max_body_size = 64 * 1024 * 1024;
    s->client_header_timeout_ms = 60000;
    s->client_body_timeout_ms = 60000;
    s->keepalive_timeout_ms = 60000;
    s->graceful_timeout_ms = 30000;
    s->max_connections = 16384;
    s->upstream_keepalive = 512; /* Kong: upstream_keepalive_pool_size */
}

void
sl_settings_free(sl_settings_t *s)
{
    listen_clear(s);
    free(s->listen);
    free(s->declarative_config);
    free(s->plugins_dir);
    free(s->pid_file);
    free(s->settings_file);
}

static int
parse_size(const char *v, size_t *out)
{
    char *end;
    unsigned long long n;

    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno || end == v)
        return -1;
    switch (*end) {
    case 'k':
    case 'K':
        n *= 1024;
        end++;
        break;
    case 'm':
    case 'M':
        n *= 1024 * 1024;
        end++;
        break;
    case 'g':
    case 'G':
        n *= 1024ull * 1024 * 1024;
        end++;
        break;
    default:
        break;
    }
    if (*end)
        return -1;
    *out = (size_t)n;
    return 0;
}

static int
parse_int(const char *v, int min, int max, int *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return -1;
    *out = (int)n;
    return 0;
}

/* One setting by name (file keys, env SLUICE_<NAME>).  0 ok, -1 bad value,
 * -2 unknown name. */
static int
apply(sl_settings_t *s, const char *key, const char *v)
{
    size_t sz;
    int n;

    if (strcmp(key, "declarative_config") == 0)
        set_str(&s->declarative_config, v);
    else if (strcmp(key, "listen") == 0) {
        /* comma-separated list replaces the default */
        char *copy = sl_strndup(v, strlen(v)), *save = NULL;
        listen_clear(s);
        for (char *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
            listen_add(s, t);
        free(copy);
    } else if (strcmp(key, "workers") == 0) {
        if (strcmp(v, "auto") == 0)
            s->workers = 0;
        else if (parse_int(v, 1, 1024, &n))
            return -1;
        else
            s->workers = n;
    } else if (strcmp(key, "plugins_dir") == 0)
        set_str(&s->plugins_dir, v);
    else if (strcmp(key, "pid") == 0)
        set_str(&s->pid_file, v);
    else if (strcmp(key, "log_level") == 0) {
        if ((n = sl_log_parse_level(v)) < 0)
            return -1;
        s->log_level = n;
    } else if (strcmp(key, "max_header_size") == 0) {
        if (parse_size(v, &sz) || sz < 1024)
            return -1;
        s->max_header_size = sz;
    } else if (strcmp(key, "max_body_size") == 0) {
        if (parse_size(v, &sz))
            return -1;
        s->max_body_size = sz;
    } else if (strcmp(key, "client_header_timeout") == 0) {
        if (parse_int(v, 1, 86400000, &s->client_header_timeout_ms))
            return -1;
    } else if (strcmp(key, "client_body_timeout") == 0) {
        if (parse_int(v, 1, 86400000, &s->client_body_timeout_ms))
            return -1;
    } else if (strcmp(key, "keepalive_timeout") == 0) {
        if (parse_int(v, 1, 86400000, &s->keepalive_timeout_ms))
            return -1;
    } else if (strcmp(key, "graceful_timeout") == 0) {
        if (parse_int(v, 0, 86400000, &s->graceful_timeout_ms))
            return -1;
    } else if (strcmp(key, "max_connections") == 0) {
        if (parse_int(v, 1, 10000000, &s->max_connections))
            return -1;
    } else if (strcmp(key, "upstream_keepalive") == 0) {
        if (parse_int(v, 0, 100000, &s->upstream_keepalive))
            return -1;
    } else
        return -2;
    return 0;
}

static const char *const known_keys[] = {
    "declarative_config",
    "listen",
    "workers",
    "plugins_dir",
    "pid",
    "log_level",
    "max_header_size",
    "max_body_size",
    "client_header_timeout",
    "client_body_timeout",
    "keepalive_timeout",
    "graceful_timeout",
    "max_connections",
    "upstream_keepalive",
};

static int
load_file(sl_settings_t *s, const char *path)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    int lineno = 0, bad = 0;

    if (f == NULL) {
        fprintf(stderr, "sluice: settings file %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *p = line, *eq, *k, *v, *e;
        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\0')
            continue;
        eq = strchr(p, '=');
        if (eq == NULL) {
            fprintf(stderr, "sluice: %s:%d: expected 'key = value'\n", path, lineno);
            bad = 1;
            continue;
        }
        k = p;
        e = eq;
        while (e > k && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        v = eq + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        e = v + strlen(v);
        while (e > v && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
            e--;
        *e = '\0';
        int rc = apply(s, k, v);
        if (rc == -2) {
            fprintf(stderr, "sluice: %s:%d: %s: unknown setting\n", path, lineno, k);
            bad = 1;
        } else if (rc == -1) {
            fprintf(stderr, "sluice: %s:%d: %s: invalid value '%s'\n", path, lineno, k, v);
            bad = 1;
        }
    }
    fclose(f);
    return bad ? -1 : 0;
}

static int
load_env(sl_settings_t *s)
{
    char name[64];
    int bad = 0;

    for (size_t i = 0; i < sl_nelems(known_keys); i++) {
        snprintf(name, sizeof(name), "SLUICE_");
        for (size_t k = 0; known_keys[i][k] && k < 50; k++)
            name[7 + k] =
                (char)(known_keys[i][k] >= 'a' && known_keys[i][k] <= 'z' ? known_keys[i][k] - 32
                                                                          : known_keys[i][k]);
        name[7 + strlen(known_keys[i])] = '\0';
        const char *v = getenv(name);
        if (v && *v && apply(s, known_keys[i], v) != 0) {
            fprintf(stderr, "sluice: environment %s: invalid value '%s'\n", name, v);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

static void
usage(FILE *out)
{
    fprintf(out,
            "Usage: sluice [options]\n"
            "\n"
            "sluice - an AI gateway (Kong-compatible declarative config, C plugins)\n"
            "\n"
            "  -d, --declarative-config FILE  Kong/decK declarative config (YAML or JSON)\n"
            "  -l, --listen ADDR:PORT         listen address, repeatable (default 0.0.0.0:8000;\n"
            "                                 IPv6 as [::]:8000)\n"
            "  -w, --workers N                worker processes (default: number of cores)\n"
            "      --plugins-dir DIR[:DIR]    where plugins (*.so) are found\n"
            "                                 (default " SL_DEFAULT_PLUGINS_DIR ")\n"
            "      --pid FILE                 write the master's pid to FILE\n"
            "      --log-level LEVEL          debug, info, warn, error (default info)\n"
            "  -c, --settings FILE            settings file ('key = value' lines)\n"
            "  -t, --test                     check the configuration and exit\n"
            "  -V, --version                  print the version and exit\n"
            "  -h, --help                     this help\n"
            "\n"
            "Every setting can also come from the environment (flags win):\n"
            "  SLUICE_DECLARATIVE_CONFIG, SLUICE_LISTEN (comma-separated), SLUICE_WORKERS,\n"
            "  SLUICE_PLUGINS_DIR, SLUICE_PID, SLUICE_LOG_LEVEL, SLUICE_MAX_HEADER_SIZE,\n"
            "  SLUICE_MAX_BODY_SIZE, SLUICE_CLIENT_HEADER_TIMEOUT, SLUICE_CLIENT_BODY_TIMEOUT,\n"
            "  SLUICE_KEEPALIVE_TIMEOUT, SLUICE_GRACEFUL_TIMEOUT, SLUICE_MAX_CONNECTIONS,\n"
            "  SLUICE_UPSTREAM_KEEPALIVE (timeouts in ms, sizes with k/m/g suffixes).\n"
            "\n"
            "Signals to the master: HUP reload, TERM/INT graceful stop, QUIT immediate stop,\n"
            "USR1 reopen log files.\n");
}

int
sl_settings_from_args(sl_settings_t *s, int argc, char **argv)
{
    enum { OPT_PLUGINS = 1000, OPT_PID, OPT_LOGLEVEL };
    static const struct option opts[] = {
        {"declarative-config", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"workers", required_argument, NULL, 'w'},
        {"plugins-dir", required_argument, NULL, OPT_PLUGINS},
        {"pid", required_argument, NULL, OPT_PID},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"settings", required_argument, NULL, 'c'},
        {"test", no_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, cli_listen = 0, n;
    const char *settings_file = getenv("SLUICE_SETTINGS");

    /* First pass: find -c so the file is applied before env and flags. */
    for (int i = 1; i < argc - 1; i++)
        if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--settings") == 0)
            settings_file = argv[i + 1];
    if (settings_file && load_file(s, settings_file) < 0)
        return -1;
    if (load_env(s) < 0)
        return -1;

    optind = 1;
    while ((c = getopt_long(argc, argv, "d:l:w:c:tVh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            set_str(&s->declarative_config, optarg);
            break;
        case 'l':
            if (!cli_listen) {
                listen_clear(s);
                cli_listen = 1;
            }
            listen_add(s, optarg);
            break;
        case 'w':
            if (parse_int(optarg, 1, 1024, &n)) {
                fprintf(stderr, "sluice: --workers: expected a number 1-1024, got '%s'\n", optarg);
                return -1;
            }
            s->workers = n;
            break;
        case OPT_PLUGINS:
            set_str(&s->plugins_dir, optarg);
            break;
        case OPT_PID:
            set_str(&s->pid_file, optarg);
            break;
        case OPT_LOGLEVEL:
            if ((n = sl_log_parse_level(optarg)) < 0) {
                fprintf(stderr, "sluice: --log-level: expected debug, info, warn or error\n");
                return -1;
            }
            s->log_level = n;
            break;
        case 'c':
            break; /* handled above */
        case 't':
            s->test_only = 1;
            break;
        case 'V':
            printf("sluice %s (plugin ABI %d.%d)\n", SL_VERSION_STRING, SL_PLUGIN_ABI_MAJOR,
                   SL_PLUGIN_ABI_MINOR);
            return 1;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sluice: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    if (s->nlisten == 0)
        listen_add(s, "0.0.0.0:8000");
    if (s->workers == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        s->workers = nc > 0 ? (int)nc : 1;
    }
    return 0;
}
