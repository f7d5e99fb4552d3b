/* settings.c - gateway settings from defaults, a settings file, SLUICE_*
 * environment variables and the command line (later sources win).  One
 * table (directives[]) says, for every setting, its name, where it may come
 * from, how its value is parsed and checked, its default and its help text;
 * the flags, the environment, the file, --help and --help-man are all read
 * from it. */

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/common.h"
#include "base/log.h"
#include "conf/resolver.h"
#include "conf/settings.h"
#include "sl_build_config.h"

/* Where a directive may be given. */
#define SL_IN_FLAG 0x1 /* --name-with-dashes (and its short letter) */
#define SL_IN_ENV 0x2  /* SLUICE_NAME */
#define SL_IN_FILE 0x4 /* "name = value" in the settings file */
#define SL_IN_ALL (SL_IN_FLAG | SL_IN_ENV | SL_IN_FILE)

/* What a flag does besides setting a value. */
typedef enum {
    SL_ACT_SET = 0, /* a setting */
    SL_ACT_SETTINGS_FILE,
    SL_ACT_TEST,
    SL_ACT_VERSION,
    SL_ACT_HELP,
    SL_ACT_HELP_MAN,
} sl_dir_action_t;

typedef struct sl_directive sl_directive_t;

/* A setter parses v into the field at s + d->offset; NULL or a message
 * saying what was expected.  `append` is set for the second and later
 * occurrences of a repeatable flag within one source. */
typedef const char *(*sl_dir_set_pt)(sl_settings_t *s, const sl_directive_t *d, const char *v,
                                     int append);

struct sl_directive {
    const char *name; /* file key; SLUICE_<NAME>; --name (with '-' for '_') */
    char short_opt;   /* 0 = none */
    unsigned where;   /* SL_IN_* */
    sl_dir_action_t action;
    sl_dir_set_pt set; /* NULL for actions without a value */
    size_t offset;     /* into sl_settings_t */
    long long min, max;
    const char *def; /* default, as text (parsed by set); NULL = unset */
    const char *arg; /* the value's name in --help; NULL = no value */
    const char *help;
};

#define SL_SIZE_UNLIMITED 0
#define SL_MS_DAY 86400000LL

static const char *set_str(sl_settings_t *s, const sl_directive_t *d, const char *v, int append);
static const char *set_listen(sl_settings_t *s, const sl_directive_t *d, const char *v, int append);
static const char *set_int(sl_settings_t *s, const sl_directive_t *d, const char *v, int append);
static const char *set_workers(sl_settings_t *s, const sl_directive_t *d, const char *v,
                               int append);
static const char *set_size(sl_settings_t *s, const sl_directive_t *d, const char *v, int append);
static const char *set_level(sl_settings_t *s, const sl_directive_t *d, const char *v, int append);
static const char *set_status_listen(sl_settings_t *s, const sl_directive_t *d, const char *v,
                                     int append);
static const char *set_instrumentations(sl_settings_t *s, const sl_directive_t *d, const char *v,
                                        int append);
static const char *set_rate(sl_settings_t *s, const sl_directive_t *d, const char *v, int append);
static const char *set_flag(sl_settings_t *s, const sl_directive_t *d, const char *v, int append);
static const char *set_resolver(sl_settings_t *s, const sl_directive_t *d, const char *v,
                                int append);
static const char *set_hostsfile(sl_settings_t *s, const sl_directive_t *d, const char *v,
                                 int append);
static const char *set_dns_order(sl_settings_t *s, const sl_directive_t *d, const char *v,
                                 int append);

#define OFF(f) offsetof(sl_settings_t, f)

/* Every option and setting of sluice, in --help order. */
static const sl_directive_t directives[] = {
    {"declarative_config", 'd', SL_IN_ALL, SL_ACT_SET, set_str, OFF(declarative_config), 0, 0, NULL,
     "FILE", "Kong/decK declarative config (YAML or JSON)"},
    {"listen", 'l', SL_IN_ALL, SL_ACT_SET, set_listen, OFF(listen), 0, 0, "0.0.0.0:8000",
     "ADDR:PORT",
     "listen address; the flag is repeatable, the variable and the file take a "
     "comma-separated list (IPv6 as [::]:8000; port 0 picks a free port, logged)"},
    {"workers", 'w', SL_IN_ALL, SL_ACT_SET, set_workers, OFF(workers), 1, 1024, "auto", "N",
     "worker processes, or 'auto' for one per core"},
    {"plugins_dir", 0, SL_IN_ALL, SL_ACT_SET, set_str, OFF(plugins_dir), 0, 0,
     SL_DEFAULT_PLUGINS_DIR, "DIR[:DIR]",
     "where plugins (*.so) are found; a binary run from its build tree uses the "
     "plugins built beside it"},
    {"pid", 0, SL_IN_ALL, SL_ACT_SET, set_str, OFF(pid_file), 0, 0, NULL, "FILE",
     "write the master's pid to FILE"},
    {"log_level", 0, SL_IN_ALL, SL_ACT_SET, set_level, OFF(log_level), 0, 0, "info", "LEVEL",
     "debug, info, warn or error"},
    {"max_header_size", 0, SL_IN_ALL, SL_ACT_SET, set_size, OFF(max_header_size), 1024, 0, "32k",
     "SIZE", "request line and headers, larger is refused with 431"},
    {"max_body_size", 0, SL_IN_ALL, SL_ACT_SET, set_size, OFF(max_body_size), 0, 0, "64m", "SIZE",
     "request body, larger is refused with 413 (0: unlimited)"},
    {"max_body_memory", 0, SL_IN_ALL, SL_ACT_SET, set_size, OFF(max_body_memory), 0, 0, "256m",
     "SIZE",
     "request bodies buffered in memory by all workers together; a body that would cross it is "
     "refused with 503 and Retry-After (0: no bound)"},
    {"client_header_timeout", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(client_header_timeout_ms), 1,
     SL_MS_DAY, "60000", "MS",
     "time to receive a request head, as a whole (408); a connection's first "
     "request counts from the accept"},
    {"client_body_timeout", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(client_body_timeout_ms), 1,
     SL_MS_DAY, "60000", "MS", "time between two reads of the request body (408)"},
    {"keepalive_timeout", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(keepalive_timeout_ms), 1,
     SL_MS_DAY, "60000", "MS", "idle keep-alive client connections are closed after this"},
    {"busy_poll", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(busy_poll_us), 0, 100000, "0", "US",
     "after a loop turn that read bytes, a worker polls for this long without sleeping before it "
     "waits (as HAProxy's busy-polling, but only while traffic flows): the next read is not "
     "held up by waking an idle CPU, at the cost of a busy core (0: off)"},
    {"graceful_timeout", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(graceful_timeout_ms), 0, SL_MS_DAY,
     "30000", "MS", "how long a stop or reload waits for requests in flight"},
    {"max_connections", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(max_connections), 1, 10000000,
     "16384", "N", "client connections per worker, 503 beyond"},
    {"upstream_keepalive", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(upstream_keepalive), 0, 100000,
     "512", "N", "idle upstream connections kept per host (Kong's upstream_keepalive_pool_size)"},
    {"upstream_keepalive_idle_timeout", 0, SL_IN_ALL, SL_ACT_SET, set_int,
     OFF(upstream_keepalive_idle_timeout), 0, 86400, "60", "SECONDS",
     "idle upstream connections are closed after this (Kong's setting; 0: never): keep it "
     "below the provider's own idle timeout so the gateway closes first"},
    {"dns_resolver", 0, SL_IN_ALL, SL_ACT_SET, set_resolver, OFF(dns_resolver), 0, 0, NULL,
     "IP[:PORT],...",
     "name servers for upstream host names (Kong's setting; default: those of "
     "/etc/resolv.conf); the hosts file is read first"},
    {"dns_valid_ttl", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(dns_valid_ttl), 0, 86400 * 365, "0",
     "SECONDS", "cache time of every DNS answer (Kong's setting; 0: each record's own TTL)"},
    {"dns_stale_ttl", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(dns_stale_ttl), 0, 86400 * 365, "3600",
     "SECONDS",
     "how long an expired DNS answer is still used while a new one is fetched in the "
     "background (Kong's setting)"},
    {"dns_not_found_ttl", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(dns_not_found_ttl), 0, 86400 * 365,
     "30", "SECONDS",
     "cache time of a name that does not exist or has no address (Kong's setting)"},
    {"dns_error_ttl", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(dns_error_ttl), 0, 86400 * 365, "1",
     "SECONDS", "cache time of other DNS failures: timeouts, server failures (Kong's setting)"},
    {"dns_hostsfile", 0, SL_IN_ALL, SL_ACT_SET, set_hostsfile, OFF(dns_hostsfile), 0, 0,
     "/etc/hosts", "FILE",
     "the hosts file, read before DNS; its entries never expire (Kong's setting)"},
    {"dns_order", 0, SL_IN_ALL, SL_ACT_SET, set_dns_order, OFF(dns_order), 0, 0,
     SL_DNS_ORDER_DEFAULT, "TYPE,...",
     "record types asked for upstream names, in order: LAST (the type that answered last "
     "first), SRV (upstream targets), A, AAAA, CNAME (Kong's setting; its default has no AAAA)"},
    {"dns_cache_size", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(dns_cache_size), 16, 1000000, "10000",
     "N",
     "DNS answers cached per worker, one per name (and one per SRV name); the least recently "
     "stored goes first (Kong's setting)"},
    {"dns_no_sync", 0, SL_IN_ALL, SL_ACT_SET, set_flag, OFF(dns_no_sync), 0, 1, "off", "on|off",
     "on: every request that misses the DNS cache sends its own query (Kong's setting); off: "
     "lookups of one name in flight at once share one query"},
    {"ssl_cert", 0, SL_IN_ALL, SL_ACT_SET, set_str, OFF(ssl_cert), 0, 0, NULL, "FILE[,FILE]",
     "PEM certificate(s) of listeners with 'ssl' when no SNI picks one from the declarative "
     "config's certificates (several: one per key type, e.g. RSA and ECDSA)"},
    {"ssl_cert_key", 0, SL_IN_ALL, SL_ACT_SET, set_str, OFF(ssl_cert_key), 0, 0, NULL,
     "FILE[,FILE]", "their private keys, in the same order"},
    {"ssl_protocols", 0, SL_IN_ALL, SL_ACT_SET, set_str, OFF(ssl_protocols), 0, 0,
     "TLSv1.2 TLSv1.3", "LIST", "TLS versions accepted from clients (TLSv1.2, TLSv1.3)"},
    {"ssl_ciphers", 0, SL_IN_ALL, SL_ACT_SET, set_str, OFF(ssl_ciphers), 0, 0, NULL, "LIST",
     "TLS 1.2 ciphers, OpenSSL syntax (default: Mozilla's intermediate list, ECDHE with AES-GCM "
     "or ChaCha20-Poly1305; TLS 1.3 suites are OpenSSL's)"},
    {"ssl_session_timeout", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(ssl_session_timeout), 60,
     86400 * 7, "86400", "SECONDS",
     "session lifetime announced to clients; the ticket keys rotate this often unless "
     "ssl_session_ticket_rotation says otherwise"},
    {"ssl_session_tickets", 0, SL_IN_ALL, SL_ACT_SET, set_flag, OFF(ssl_session_tickets), 0, 1,
     "on", "on|off",
     "session resumption with tickets (Kong's setting); off: every connection is a full "
     "handshake"},
    {"ssl_session_ticket_rotation", 0, SL_IN_ALL, SL_ACT_SET, set_int,
     OFF(ssl_session_ticket_rotation), 0, 86400 * 7, "0", "SECONDS",
     "how often the session ticket keys (shared by all workers) rotate; a ticket resumes for "
     "one to two periods (0: every ssl_session_timeout)"},
    {"ssl_stapling_file", 0, SL_IN_ALL, SL_ACT_SET, set_str, OFF(ssl_stapling_file), 0, 0, NULL,
     "FILE[,FILE]",
     "OCSP responses (DER) stapled for clients that ask, one per ssl_cert in the same order "
     "('-' for none); read again on reload (nginx's ssl_stapling_file)"},
    {"ssl_stapling", 0, SL_IN_ALL, SL_ACT_SET, set_flag, OFF(ssl_stapling), 0, 1, "off", "on|off",
     "fetch OCSP responses for the certificates and staple them for clients that ask "
     "(nginx's ssl_stapling): the responder named in each certificate, asked by one worker "
     "in the background and shared by all; the issuer must follow the certificate in its "
     "PEM file. A certificate with an ssl_stapling_file entry uses the file"},
    {"ssl_stapling_responder", 0, SL_IN_ALL, SL_ACT_SET, set_str, OFF(ssl_stapling_responder), 0, 0,
     NULL, "URL",
     "OCSP responder asked instead of the one the certificates name (nginx's "
     "ssl_stapling_responder)"},
    {"ssl_stapling_refresh", 0, SL_IN_ALL, SL_ACT_SET, set_int, OFF(ssl_stapling_refresh), 1,
     86400 * 7, "3600", "SECONDS",
     "a fetched OCSP response is fetched again after this long, or halfway to its nextUpdate "
     "if sooner; a failed fetch is retried after this long (at most 300 s)"},
    {"status_listen", 0, SL_IN_ALL, SL_ACT_SET, set_status_listen, OFF(status_listen), 0, 0, NULL,
     "ADDR:PORT",
     "status listener (Kong's status_listen): GET /status, /status/ready and /metrics, "
     "served by the workers, never proxied; a bare PORT means 127.0.0.1:PORT; 'off' (the "
     "default) disables it"},
    {"tracing_instrumentations", 0, SL_IN_ALL, SL_ACT_SET, set_instrumentations,
     OFF(tracing_instrumentations), 0, 0, "all", "LIST",
     "Kong's tracing instrumentations, comma-separated, read by the opentelemetry plugin: 'off' "
     "(propagate trace context only, record no span), 'all', or names: 'request' (the kong "
     "span), 'balancer' (kong.balancer spans); Kong's db_query, dns_query, router, http_client, "
     "plugin_rewrite, plugin_access and plugin_header_filter are accepted and record nothing. "
     "Kong's default is off"},
    {"tracing_sampling_rate", 0, SL_IN_ALL, SL_ACT_SET, set_rate, OFF(tracing_sampling_rate), 0, 0,
     "1.0", "RATE",
     "Kong's node sampling rate, 0-1, for opentelemetry instances without their own "
     "sampling_rate (Kong's default is 0.01)"},
    {"settings", 'c', SL_IN_FLAG | SL_IN_ENV, SL_ACT_SETTINGS_FILE, set_str, OFF(settings_file), 0,
     0, NULL, "FILE", "settings file: 'key = value' lines, '#' comments"},
    {"test", 't', SL_IN_FLAG, SL_ACT_TEST, NULL, 0, 0, 0, NULL, NULL,
     "check the configuration and exit"},
    {"version", 'V', SL_IN_FLAG, SL_ACT_VERSION, NULL, 0, 0, 0, NULL, NULL,
     "print the version and exit"},
    {"help", 'h', SL_IN_FLAG, SL_ACT_HELP, NULL, 0, 0, 0, NULL, NULL, "this help"},
    /* not in --help: the sluice(8) manual page, generated from this table */
    {"help_man", 0, SL_IN_FLAG, SL_ACT_HELP_MAN, NULL, 0, 0, 0, NULL, NULL, NULL},
};

#define SL_NDIRECTIVES sl_nelems(directives)

/* The settings plugins read (sl_setting_text). */
static const sl_settings_t *published;

static void *
field(sl_settings_t *s, const sl_directive_t *d)
{
    return (char *)s + d->offset;
}

static const char *
set_str(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    char **dst = field(s, d);

    free(*dst);
    *dst = sl_strndup(v, strlen(v));
    return NULL;
}

static const char *
set_resolver(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    const char *bad = sl_conf_resolver_check(v);

    return bad != NULL ? bad : set_str(s, d, v, append);
}

static const char *
set_hostsfile(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    if (access(v, R_OK) != 0)
        return "a readable file (the file does not exist or cannot be read)";
    return set_str(s, d, v, append);
}

static const char *
set_dns_order(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    (void)append;
    return sl_conf_dns_order_parse(v, field(s, d));
}

static const char *
set_status_listen(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    char **dst = field(s, d);
    size_t n = strlen(v), digits = strspn(v, "0123456789");

    free(*dst);
    *dst = NULL;
    if (n == 0 || strcmp(v, "off") == 0)
        return NULL;
    if (digits == n) { /* only a port: localhost */
        if (n > 5 || atoi(v) > 65535)
            return "ADDR:PORT, PORT or off";
        *dst = sl_xmalloc(n + 11);
        snprintf(*dst, n + 11, "127.0.0.1:%s", v);
        return NULL;
    }
    if (strrchr(v, ':') == NULL || v[n - 1] == ':')
        return "ADDR:PORT, PORT or off";
    *dst = sl_strndup(v, n);
    return NULL;
}

/* Kong's conf_loader checks: known names; "off" alone. */
static const char *
set_instrumentations(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    static const char *const known[] = {"off",
                                        "all",
                                        "request",
                                        "db_query",
                                        "dns_query",
                                        "router",
                                        "http_client",
                                        "balancer",
                                        "plugin_rewrite",
                                        "plugin_access",
                                        "plugin_header_filter"};
    char **dst = field(s, d);
    size_t n = 0, off = 0;
    const char *p = v;

    while (*p) {
        size_t k, i;
        p += strspn(p, " \t,");
        k = strcspn(p, " \t,");
        if (k == 0)
            break;
        for (i = 0; i < sl_nelems(known); i++)
            if (strlen(known[i]) == k && strncmp(p, known[i], k) == 0)
                break;
        if (i == sl_nelems(known))
            return "off, all, or a list of request, balancer, db_query, dns_query, router, "
                   "http_client, plugin_rewrite, plugin_access, plugin_header_filter";
        off |= i == 0;
        n++;
        p += k;
    }
    if (n == 0)
        return "off, all, or a list of instrumentation names";
    if (off && n > 1)
        return "off alone (off and other types are mutually exclusive)";
    free(*dst);
    *dst = sl_strndup(v, strlen(v));
    return NULL;
}

static const char *
set_rate(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    char *end;
    double x;

    errno = 0;
    x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= 0 && x <= 1))
        return "a number between 0 and 1";
    *(double *)field(s, d) = x;
    return NULL;
}

static void
listen_clear(sl_settings_t *s)
{
    for (size_t i = 0; i < s->nlisten; i++)
        free(s->listen[i]);
    s->nlisten = 0;
}

/* A list replaces the one of a weaker source; a repeated flag adds to it. */
static const char *
set_listen(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    char *copy = sl_strndup(v, strlen(v)), *save = NULL;
    size_t before = s->nlisten;

    if (!append)
        listen_clear(s);
    /* entries are comma-separated; an entry is "ADDR:PORT [flag...]" */
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        size_t n;
        while (*t == ' ' || *t == '\t')
            t++;
        n = strlen(t);
        while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
            n--;
        if (n == 0)
            continue;
        s->listen = sl_xrealloc(s->listen, (s->nlisten + 1) * sizeof(char *));
        s->listen[s->nlisten++] = sl_strndup(t, n);
    }
    free(copy);
    return s->nlisten > (append ? before : 0) ? NULL : "at least one ADDR:PORT";
}

static int
parse_ll(const char *v, long long min, long long max, long long *out)
{
    char *end;
    long long n;

    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno || end == v || *end || n < min || n > max)
        return -1;
    *out = n;
    return 0;
}

static const char *
range_text(const sl_directive_t *d)
{
    static char buf[64];

    snprintf(buf, sizeof(buf), "a number %lld-%lld", d->min, d->max);
    return buf;
}

static const char *
set_int(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    long long n;

    if (parse_ll(v, d->min, d->max, &n))
        return range_text(d);
    *(int *)field(s, d) = (int)n;
    return NULL;
}

/* on/off, as Kong and nginx write flags. */
static const struct {
    const char *word;
    int value;
} flag_words[] = {{"on", 1}, {"off", 0}, {"true", 1}, {"false", 0}};

static const char *
set_flag(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    (void)append;
    for (size_t i = 0; i < sl_nelems(flag_words); i++) {
        if (strcasecmp(v, flag_words[i].word) == 0) {
            *(int *)field(s, d) = flag_words[i].value;
            return NULL;
        }
    }
    return "on or off";
}

static const char *
set_workers(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    long long n;

    if (strcmp(v, "auto") == 0) {
        *(int *)field(s, d) = 0;
        return NULL;
    }
    if (parse_ll(v, d->min, d->max, &n))
        return "'auto' or a number 1-1024";
    *(int *)field(s, d) = (int)n;
    return NULL;
}

/* A byte count with an optional k, m or g suffix (powers of 1024). */
static const char *
set_size(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    static const struct {
        char c;
        unsigned long long mul;
    } units[] = {{'k', 1ull << 10}, {'m', 1ull << 20}, {'g', 1ull << 30}};
    unsigned long long n;
    char *end;

    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno || end == v || *v == '-')
        goto bad;
    for (size_t i = 0; i < sl_nelems(units); i++)
        if ((*end | 0x20) == units[i].c) {
            if (n > SIZE_MAX / units[i].mul)
                goto bad;
            n *= units[i].mul;
            end++;
            break;
        }
    if (*end || n < (unsigned long long)d->min || n > SIZE_MAX)
        goto bad;
    *(size_t *)field(s, d) = (size_t)n;
    return NULL;
bad:
    return d->min ? "a size of at least 1k (bytes, or with a k, m or g suffix)"
                  : "a size (bytes, or with a k, m or g suffix)";
}

static const char *
set_level(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    int n = sl_log_parse_level(v);

    if (n < 0)
        return "debug, info, warn or error";
    *(int *)field(s, d) = n;
    return NULL;
}

/* The value a setting got, as text, for plugins (sl_setting_text); a
 * repeated flag's values are joined with ','. */
static void
text_set(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    size_t k = (size_t)(d - directives), n = strlen(v);
    char *old = s->text[k], *t;

    if (append && old) {
        size_t o = strlen(old);
        t = sl_xmalloc(o + 1 + n + 1);
        memcpy(t, old, o);
        t[o] = ',';
        memcpy(t + o + 1, v, n + 1);
    } else {
        t = sl_strndup(v, n);
    }
    free(old);
    s->text[k] = t;
}

/* Kong's settings whose default is NONE (unset): NONE as a value is the
 * default here too. */
static const char *const kong_none[] = {"dns_resolver", "dns_valid_ttl"};

static int
none_means_default(const sl_directive_t *d, const char *v)
{
    if (strcmp(v, "NONE") != 0)
        return 0;
    for (size_t i = 0; i < sizeof(kong_none) / sizeof(kong_none[0]); i++)
        if (strcmp(kong_none[i], d->name) == 0)
            return 1;
    return 0;
}

/* Every source sets through here: the setter, then the text. */
static const char *
apply(sl_settings_t *s, const sl_directive_t *d, const char *v, int append)
{
    const char *err;

    if (none_means_default(d, v)) {
        if (d->def != NULL)
            return apply(s, d, d->def, 0);
        free(*(char **)field(s, d)); /* a text setting without default: unset */
        *(char **)field(s, d) = NULL;
        free(s->text[d - directives]);
        s->text[d - directives] = NULL;
        return NULL;
    }
    err = d->set(s, d, v, append);

    if (err == NULL)
        text_set(s, d, v, append);
    return err;
}

static const sl_directive_t *
find(const char *name, unsigned where)
{
    for (size_t i = 0; i < SL_NDIRECTIVES; i++)
        if ((directives[i].where & where) && strcmp(directives[i].name, name) == 0)
            return &directives[i];
    return NULL;
}

void
sl_settings_defaults(sl_settings_t *s)
{
    memset(s, 0, sizeof(*s));
    s->text = sl_xcalloc(SL_NDIRECTIVES, sizeof(char *));
    for (size_t i = 0; i < SL_NDIRECTIVES; i++) {
        const sl_directive_t *d = &directives[i];
        const char *err;
        if (d->set == NULL || d->def == NULL)
            continue;
        err = apply(s, d, d->def, 0);
        if (err) { /* the table's own default does not parse: a bug here */
            fprintf(stderr, "sluice: default of %s ('%s'): expected %s\n", d->name, d->def, err);
            abort();
        }
    }
}

void
sl_settings_free(sl_settings_t *s)
{
    listen_clear(s);
    free(s->listen);
    for (size_t i = 0; i < SL_NDIRECTIVES; i++)
        if (directives[i].set == set_str || directives[i].set == set_status_listen ||
            directives[i].set == set_instrumentations || directives[i].set == set_resolver ||
            directives[i].set == set_hostsfile)
            free(*(char **)field(s, &directives[i]));
    if (s->text) {
        if (published == s)
            published = NULL;
        for (size_t i = 0; i < SL_NDIRECTIVES; i++)
            free(s->text[i]);
        free(s->text);
        s->text = NULL;
    }
}

void
sl_settings_publish(const sl_settings_t *s)
{
    published = s;
}

const char *
sl_setting_text(const char *name)
{
    const sl_directive_t *d;

    if (published == NULL || name == NULL || (d = find(name, SL_IN_FILE)) == NULL ||
        d->action != SL_ACT_SET)
        return NULL;
    return published->text[d - directives];
}

int
sl_settings_set(sl_settings_t *s, const char *name, const char *value, const char **err)
{
    const sl_directive_t *d = find(name, SL_IN_FILE);

    *err = "unknown setting";
    if (d == NULL || d->action != SL_ACT_SET)
        return -1;
    *err = apply(s, d, value, 0);
    return *err ? -1 : 0;
}

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
        const sl_directive_t *d;
        const char *err;

        lineno++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#' || *p == '\n' || *p == '\r' || *p == '\0')
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
        if ((d = find(k, SL_IN_FILE)) == NULL) {
            fprintf(stderr, "sluice: %s:%d: %s: unknown setting\n", path, lineno, k);
            bad = 1;
        } else if ((err = apply(s, d, v, 0)) != NULL) {
            fprintf(stderr, "sluice: %s:%d: %s: invalid value '%s' (expected %s)\n", path, lineno,
                    k, v, err);
            bad = 1;
        }
    }
    fclose(f);
    return bad ? -1 : 0;
}

/* SLUICE_ followed by the name in capitals. */
static void
env_name(const sl_directive_t *d, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "SLUICE_%s", d->name);

    for (size_t i = sizeof("SLUICE_") - 1; i < n && i < size; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z')
            buf[i] = (char)(buf[i] - 'a' + 'A');
}

/* --name, with '-' for '_'. */
static void
flag_name(const sl_directive_t *d, char *buf, size_t size)
{
    size_t n = (size_t)snprintf(buf, size, "%s", d->name);

    for (size_t i = 0; i < n && i < size; i++)
        if (buf[i] == '_')
            buf[i] = '-';
}

static int
load_env(sl_settings_t *s)
{
    char name[64];
    int bad = 0;

    for (size_t i = 0; i < SL_NDIRECTIVES; i++) {
        const sl_directive_t *d = &directives[i];
        const char *v, *err;

        if (!(d->where & SL_IN_ENV) || d->action != SL_ACT_SET)
            continue;
        env_name(d, name, sizeof(name));
        v = getenv(name);
        if (v && *v && (err = apply(s, d, v, 0)) != NULL) {
            fprintf(stderr, "sluice: environment %s: invalid value '%s' (expected %s)\n", name, v,
                    err);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

#define SL_HELP_INDENT 39
#define SL_HELP_WIDTH 79

/* Words of t from column col, wrapped at SL_HELP_WIDTH under SL_HELP_INDENT. */
static int
wrap(FILE *out, int col, const char *t)
{
    while (*t) {
        size_t w = strcspn(t, " ");
        if (col > SL_HELP_INDENT && col + 1 + (int)w > SL_HELP_WIDTH) {
            fprintf(out, "\n%*s", SL_HELP_INDENT, "");
            col = SL_HELP_INDENT;
        } else if (col > SL_HELP_INDENT) {
            fputc(' ', out);
            col++;
        }
        fwrite(t, 1, w, out);
        col += (int)w;
        t += w;
        while (*t == ' ')
            t++;
    }
    return col;
}

static void
usage(FILE *out)
{
    char flag[64], env[64], left[96], more[160];

    fprintf(out, "Usage: sluice [-t] [-V] [-h] [-c FILE] [-d FILE] [-l ADDR:PORT]... [-w N]\n"
                 "              [--SETTING VALUE]...\n"
                 "\n"
                 "sluice - an AI gateway (Kong-compatible declarative config, C plugins)\n"
                 "\n"
                 "Every setting also comes from its SLUICE_* variable and from the settings\n"
                 "file (its name as key); flags win over the environment, which wins over\n"
                 "the file.\n"
                 "\n");
    for (size_t i = 0; i < SL_NDIRECTIVES; i++) {
        const sl_directive_t *d = &directives[i];
        int col;
        if (d->help == NULL)
            continue;
        flag_name(d, flag, sizeof(flag));
        snprintf(left, sizeof(left), "%c%c%c --%s%s%s", d->short_opt ? '-' : ' ',
                 d->short_opt ? d->short_opt : ' ', d->short_opt ? ',' : ' ', flag,
                 d->arg ? " " : "", d->arg ? d->arg : "");
        col = fprintf(out, "  %-*s", SL_HELP_INDENT - 3, left);
        if (col > SL_HELP_INDENT - 1) {
            fprintf(out, "\n%*s", SL_HELP_INDENT - 1, "");
            col = SL_HELP_INDENT - 1;
        }
        fputc(' ', out);
        col = wrap(out, col + 1, d->help);
        if (d->def) {
            snprintf(more, sizeof(more), "(default %s)", d->def);
            col = wrap(out, col, more);
        }
        if ((d->where & SL_IN_ENV)) {
            env_name(d, env, sizeof(env));
            snprintf(more, sizeof(more), "[%s]", env);
            wrap(out, col, more);
        }
        fputc('\n', out);
    }
    fprintf(out, "\n"
                 "Timeouts (MS) are in milliseconds; sizes take k, m or g suffixes.\n"
                 "Signals to the master: HUP reload, TERM/INT graceful stop, QUIT immediate stop,\n"
                 "USR1 reopen log files.\n");
}

/* troff escapes: a leading '.' or '\'', and backslashes. */
static void
man_text(FILE *out, const char *t)
{
    if (*t == '.' || *t == '\'')
        fputs("\\&", out);
    for (; *t; t++) {
        if (*t == '\\')
            fputs("\\e", out);
        else if (*t == '-')
            fputs("\\-", out);
        else
            fputc(*t, out);
    }
}

/* The sluice(8) manual page, from the same table as --help. */
static void
usage_man(FILE *out)
{
    char flag[64], env[64];

    fprintf(out,
            ".TH SLUICE 8 \"\" \"sluice %s\" \"System Administration\"\n"
            ".SH NAME\nsluice \\- an AI gateway with Kong-compatible declarative "
            "configuration and C plugins\n"
            ".SH SYNOPSIS\n.B sluice\n[\\fIOPTION\\fR]...\n"
            ".SH DESCRIPTION\n"
            "A master process loads the plugins and the declarative configuration, binds "
            "the listeners and forks the workers, which serve HTTP/1.1 and proxy to the "
            "configured upstreams.\n"
            ".SH OPTIONS\n",
            SL_VERSION);
    for (size_t i = 0; i < SL_NDIRECTIVES; i++) {
        const sl_directive_t *d = &directives[i];
        if (d->help == NULL)
            continue;
        flag_name(d, flag, sizeof(flag));
        fputs(".TP\n", out);
        if (d->short_opt)
            fprintf(out, "\\fB\\-%c\\fR, ", d->short_opt);
        fputs("\\fB\\-\\-", out);
        man_text(out, flag);
        fputs("\\fR", out);
        if (d->arg) {
            fputs(" \\fI", out);
            man_text(out, d->arg);
            fputs("\\fR", out);
        }
        fputc('\n', out);
        man_text(out, d->help);
        if (d->def) {
            fputs(" (default ", out);
            man_text(out, d->def);
            fputc(')', out);
        }
        fputs(".\n", out);
    }
    fputs(".SH ENVIRONMENT\nA variable is used when it is set and not empty; flags win.\n", out);
    for (size_t i = 0; i < SL_NDIRECTIVES; i++) {
        const sl_directive_t *d = &directives[i];
        if (!(d->where & SL_IN_ENV))
            continue;
        flag_name(d, flag, sizeof(flag));
        env_name(d, env, sizeof(env));
        fputs(".TP\n.B ", out);
        man_text(out, env);
        fputs("\nas \\fB\\-\\-", out);
        man_text(out, flag);
        fputs("\\fR.\n", out);
    }
    fputs(".SH FILES\nThe settings file (\\fB\\-c\\fR) has one \\fIkey\\fR = \\fIvalue\\fR per "
          "line; '#' starts a comment line. Keys:\n",
          out);
    for (size_t i = 0; i < SL_NDIRECTIVES; i++)
        if (directives[i].where & SL_IN_FILE) {
            fputs(".B ", out);
            man_text(out, directives[i].name);
            fputc('\n', out);
        }
    fputs(".SH SIGNALS\n"
          ".TP\n.B HUP\nreload: a new generation of workers starts, the old ones finish their "
          "requests; a bad configuration is refused and the old one keeps serving.\n"
          ".TP\n.B TERM, INT\ngraceful stop.\n"
          ".TP\n.B QUIT\nimmediate stop.\n"
          ".TP\n.B USR1\nreopen log files.\n",
          out);
}

/* Was plugins_dir set by a source, not left at the table's default? */
static int
plugins_dir_given(const sl_settings_t *s)
{
    return strcmp(s->plugins_dir, SL_DEFAULT_PLUGINS_DIR) != 0;
}

/* The binary built in a build tree, run from there: its plugins are the ones
 * built beside it, not the (maybe absent or older) installed ones. */
static void
build_tree_plugins_dir(sl_settings_t *s)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

    if (n <= 0)
        return;
    exe[n] = '\0';
    if (strcmp(exe, SL_BUILD_TREE_EXE) == 0)
        apply(s, find("plugins_dir", SL_IN_FILE), SL_BUILD_TREE_PLUGINS_DIR, 0);
}

/* One flag from the command line, applied after the file and environment. */
typedef struct {
    const sl_directive_t *d;
    const char *value;
} sl_flag_t;

int
sl_settings_from_args(sl_settings_t *s, int argc, char **argv)
{
    struct option opts[SL_NDIRECTIVES + 1];
    char names[SL_NDIRECTIVES][64], shorts[3 * SL_NDIRECTIVES + 1];
    sl_flag_t *flags = sl_xcalloc((size_t)argc + 1, sizeof(*flags));
    size_t nflags = 0, ns = 0;
    const char *settings_file = getenv("SLUICE_SETTINGS");
    unsigned char seen[SL_NDIRECTIVES] = {0};
    int c, idx, rc = 0;

    /* getopt's tables, from the directives: val is the directive's index
     * (offset past the short letters' range) */
    memset(opts, 0, sizeof(opts));
    for (size_t i = 0; i < SL_NDIRECTIVES; i++) {
        const sl_directive_t *d = &directives[i];
        flag_name(d, names[i], sizeof(names[i]));
        opts[i].name = names[i];
        opts[i].has_arg = d->arg ? required_argument : no_argument;
        opts[i].val = 256 + (int)i;
        if (d->short_opt) {
            shorts[ns++] = d->short_opt;
            if (d->arg)
                shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';

    optind = 1;
    while ((c = getopt_long(argc, argv, shorts, opts, &idx)) != -1) {
        const sl_directive_t *d = NULL;
        if (c >= 256)
            d = &directives[c - 256];
        else
            for (size_t i = 0; i < SL_NDIRECTIVES; i++)
                if (c != '?' && directives[i].short_opt == c)
                    d = &directives[i];
        if (d == NULL) {
            fprintf(stderr, "sluice: see --help\n");
            rc = -1;
            goto done;
        }
        switch (d->action) {
        case SL_ACT_VERSION:
            s->show_version = 1; /* printed by the caller (proc/version.h) */
            rc = 1;
            goto done;
        case SL_ACT_HELP:
            usage(stdout);
            rc = 1;
            goto done;
        case SL_ACT_HELP_MAN:
            usage_man(stdout);
            rc = 1;
            goto done;
        case SL_ACT_TEST:
            s->test_only = 1;
            break;
        case SL_ACT_SETTINGS_FILE:
            settings_file = optarg;
            break;
        case SL_ACT_SET:
            flags[nflags].d = d;
            flags[nflags].value = optarg;
            nflags++;
            break;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sluice: unexpected argument '%s' (see --help)\n", argv[optind]);
        rc = -1;
        goto done;
    }

    /* weakest first: the file, the environment, then the flags */
    if (settings_file) {
        apply(s, find("settings", SL_IN_FLAG), settings_file, 0);
        if (load_file(s, settings_file) < 0) {
            rc = -1;
            goto done;
        }
    }
    if (load_env(s) < 0) {
        rc = -1;
        goto done;
    }
    for (size_t i = 0; i < nflags; i++) {
        const sl_directive_t *d = flags[i].d;
        size_t k = (size_t)(d - directives);
        const char *err = apply(s, d, flags[i].value, seen[k]);
        char flag[64];
        seen[k] = 1;
        if (err) {
            flag_name(d, flag, sizeof(flag));
            fprintf(stderr, "sluice: --%s: invalid value '%s' (expected %s)\n", flag,
                    flags[i].value, err);
            rc = -1;
            goto done;
        }
    }
    if (!plugins_dir_given(s))
        build_tree_plugins_dir(s);
    if (s->workers == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        char n[16];
        s->workers = nc > 0 ? (int)nc : 1;
        snprintf(n, sizeof(n), "%d", s->workers);
        text_set(s, find("workers", SL_IN_FILE), n, 0);
    }
done:
    free(flags);
    return rc;
}

int
sl_listen_spec(const char *spec, char *addr, size_t addrlen, unsigned *flags, char *err,
               size_t errlen)
{
    size_t n = strcspn(spec, " \t");
    const char *f = spec + n;

    *flags = 0;
    if (n == 0 || n >= addrlen) {
        snprintf(err, errlen, "expected ADDR:PORT, [IPV6]:PORT or PORT");
        return -1;
    }
    memcpy(addr, spec, n);
    addr[n] = '\0';
    while (*f) {
        size_t k;
        f += strspn(f, " \t");
        k = strcspn(f, " \t");
        if (k == 0)
            break;
        if (k == 3 && strncmp(f, "ssl", 3) == 0) {
            *flags |= SL_LISTEN_SSL;
        } else {
            snprintf(err, errlen, "unknown listen flag '%.*s' (sluice knows: ssl)", (int)k, f);
            return -1;
        }
        f += k;
    }
    return 0;
}
