/* resolver.h - checking Kong's dns_resolver and dns_order settings
 * (resolver.c). */

#ifndef SL_CONF_RESOLVER_H
#define SL_CONF_RESOLVER_H

/* NULL when resolver (NULL or "" allowed) is a comma-separated list of
 * ip[:port]; else what was expected, for the settings error. */
const char *sl_conf_resolver_check(const char *resolver);

/* Kong's dns_order, as the lookups use it. */
typedef struct sl_dns_order {
    int family[2]; /* AF_INET / AF_INET6 in the order asked; 0 = not asked */
    int srv;       /* 0 SRV not asked, 1 asked before the addresses, 2 after */
    int last;      /* LAST: the type that answered last is asked first */
} sl_dns_order_t;

/* Kong's default LAST,SRV,A,CNAME (sluice: AAAA after A as well, the
 * lookup asks both at once). */
#define SL_DNS_ORDER_DEFAULT "LAST,SRV,A,AAAA,CNAME"

/* Parse text (Kong's case-insensitive comma-separated list of LAST, SRV,
 * A, AAAA and CNAME, each once, A or AAAA among them) into out; NULL, or
 * what was expected for the settings error.  CNAME is accepted and needs nothing: c-ares follows a
 * CNAME chain within every A, AAAA and SRV lookup. */
const char *sl_conf_dns_order_parse(const char *text, sl_dns_order_t *out);

#endif
