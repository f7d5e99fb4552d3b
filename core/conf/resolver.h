/* resolver.h - checking Kong's dns_resolver setting (resolver.c). */

#ifndef SL_CONF_RESOLVER_H
#define SL_CONF_RESOLVER_H

/* NULL when resolver (NULL or "" allowed) is a comma-separated list of
 * ip[:port]; else what was expected, for the settings error. */
const char *sl_conf_resolver_check(const char *resolver);

#endif
