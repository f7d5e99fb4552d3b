/* settings.h - gateway settings (not the declarative config): listeners,
 * workers, limits, paths.  Sources, weakest first: built-in defaults, a
 * settings file (-c FILE, "key = value" lines), SLUICE_* environment
 * variables, command-line flags. */

#ifndef SL_SETTINGS_H
#define SL_SETTINGS_H

#include <stddef.h>

typedef struct sl_settings {
    char *declarative_config;
    char **listen;
    size_t nlisten;    /* "ADDR:PORT", "[::1]:PORT" */
    int workers;       /* 0 = number of cores */
    char *plugins_dir; /* ':'-separated list */
    char *pid_file;
    char *settings_file;
    int log_level;
    int test_only;    /* -t */
    int show_version; /* -V: the caller prints the version (proc/version.h) */

    size_t max_header_size;              /* request line + headers (431) */
    size_t max_body_size;                /* request body (413); 0 = unlimited */
    int client_header_timeout_ms;        /* 408 */
    int client_body_timeout_ms;          /* 408 */
    int keepalive_timeout_ms;            /* idle keep-alive connection */
    int graceful_timeout_ms;             /* SIGTERM / reload drain deadline */
    int max_connections;                 /* per worker; 503 beyond */
    int upstream_keepalive;              /* idle upstream connections per host */
    int upstream_keepalive_idle_timeout; /* seconds (Kong's unit); 0 = never closed */
} sl_settings_t;

void sl_settings_defaults(sl_settings_t *s);
/* Parse argv (after env and file).  Returns 0 to run, 1 to exit 0 (help,
 * version printed), -1 on a usage error (message printed). */
int sl_settings_from_args(sl_settings_t *s, int argc, char **argv);
void sl_settings_free(sl_settings_t *s);

#endif
