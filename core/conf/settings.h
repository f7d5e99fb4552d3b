/* settings.h - gateway settings (not the declarative config): listeners,
 * workers, limits, paths.  Sources, weakest first: built-in defaults, a
 * settings file (-c FILE, "key = value" lines), SLUICE_* environment
 * variables, command-line flags. */

#ifndef SL_SETTINGS_H
#define SL_SETTINGS_H

#include <stddef.h>

#include "conf/resolver.h"

typedef struct sl_settings {
    char *declarative_config;
    char **listen;
    size_t nlisten;    /* "ADDR:PORT", "[::1]:PORT", then flags: "0.0.0.0:8443 ssl" */
    int workers;       /* 0 = number of cores */
    char *plugins_dir; /* ':'-separated list */
    char *pid_file;
    char *settings_file;
    int log_level;
    int test_only;    /* -t */
    int show_version; /* -V: the caller prints the version (proc/version.h) */

    size_t max_header_size;              /* request line + headers (431) */
    size_t max_body_size;                /* request body (413); 0 = unlimited */
    size_t max_body_memory;              /* buffered bodies, node-wide (503) */
    int client_header_timeout_ms;        /* 408 */
    int client_body_timeout_ms;          /* 408 */
    int keepalive_timeout_ms;            /* idle keep-alive connection */
    int busy_poll_us;                    /* worker loop spins this long after I/O, 0 = off */
    int graceful_timeout_ms;             /* SIGTERM / reload drain deadline */
    int max_connections;                 /* per worker; 503 beyond */
    int upstream_keepalive;              /* idle upstream connections per host */
    int upstream_keepalive_idle_timeout; /* seconds (Kong's unit); 0 = never closed */
    char *dns_resolver;                  /* "ip[:port],..."; NULL = /etc/resolv.conf's */
    int dns_valid_ttl;                   /* seconds; 0 = the records' TTL */
    int dns_stale_ttl;                   /* seconds an expired answer is used while refreshed */
    int dns_not_found_ttl;               /* seconds "no such name" is cached */
    int dns_error_ttl;                   /* seconds other DNS failures are cached */
    char *dns_hostsfile;                 /* the hosts file read before DNS */
    sl_dns_order_t dns_order;            /* record types asked, in order */
    int dns_cache_size;                  /* names (and SRV names) cached per worker */
    int dns_no_sync;                     /* 1 = no shared query per name on a miss */

    /* client-side TLS (listeners with "ssl"); lists are comma-separated */
    char *ssl_cert;                  /* PEM files: the default certificate(s), e.g. RSA,ECDSA */
    char *ssl_cert_key;              /* their keys, same order */
    char *ssl_protocols;             /* "TLSv1.2 TLSv1.3" */
    char *ssl_ciphers;               /* TLS 1.2 cipher list (OpenSSL syntax) */
    int ssl_session_timeout;         /* seconds; session lifetime */
    int ssl_session_ticket_rotation; /* seconds; 0 = ssl_session_timeout */
    int ssl_session_tickets;         /* 0 = no tickets, no resumption (Kong's setting) */
    char *ssl_stapling_file;         /* DER OCSP responses stapled, one per ssl_cert, same order */
    int ssl_stapling;                /* 1 = fetch OCSP responses (ssl_stapling on) */
    char *ssl_stapling_responder;    /* URL replacing the certificates' own; NULL = theirs */
    int ssl_stapling_refresh;        /* seconds between fetches (at most) */
    char *status_listen;             /* "ADDR:PORT" of the status listener; NULL = off */

    /* Kong's node tracing settings, for the opentelemetry plugin */
    char *tracing_instrumentations; /* "off", "all" or a comma-separated list */
    double tracing_sampling_rate;   /* 0..1 */

    char **text; /* per directive: its value as text (see sl_setting_text) */
} sl_settings_t;

#define SL_LISTEN_SSL 0x1
/* Split a listen entry "ADDR:PORT [ssl]" into the address (copied into
 * addr) and flags (SL_LISTEN_*).  -1 with a message in err on an unknown
 * flag or an address too long. */
int sl_listen_spec(const char *spec, char *addr, size_t addrlen, unsigned *flags, char *err,
                   size_t errlen);

void sl_settings_defaults(sl_settings_t *s);
/* Parse argv (after env and file).  Returns 0 to run, 1 to exit 0 (help,
 * version printed), -1 on a usage error (message printed). */
int sl_settings_from_args(sl_settings_t *s, int argc, char **argv);
void sl_settings_free(sl_settings_t *s);

/* Set one setting by its file name, as a settings-file line would.  0, or
 * -1 with *err saying what was expected ("unknown setting"). */
int sl_settings_set(sl_settings_t *s, const char *name, const char *value, const char **err);

/* Make s the settings plugins read with sl_setting_text (api->setting_get);
 * s must outlive every reader (main's settings live as long as the
 * process; sl_settings_free of the published one unpublishes it). */
void sl_settings_publish(const sl_settings_t *s);
/* The published value of the setting `name` (its settings-file key) as
 * text: what the strongest source gave (a repeated flag's values joined
 * with ','), else the default; NULL for an unknown name or a setting that
 * is unset and has no default.  workers is the resolved number. */
const char *sl_setting_text(const char *name);

#endif
