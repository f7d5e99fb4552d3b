/* router.h - match a request to a route (Kong "traditional_compatible"
 * semantics) and compute the upstream path (Kong's strip_path joining). */

#ifndef SL_ROUTER_H
#define SL_ROUTER_H

#include "conf/config.h"

typedef struct sl_route_match {
    const sl_route_t *route;
    size_t prefix_len; /* bytes of the request path matched by the
                          route path (stripped when strip_path) */
} sl_route_match_t;

/* Fill rp from a configured route path: "/prefix" or "~regex".  A regex
 * is POSIX ERE anchored at the start; PCRE-isms Kong configs use are
 * translated: (?<name>...) and (?P<name>...) become plain groups, (?:...)
 * a group, \d and \D digit classes.  Returns SL_OK, or SL_ERROR with a
 * message in err. */
int sl_router_compile_path(sl_route_path_t *rp, const char *src, char *err, size_t errlen);
void sl_router_path_free(sl_route_path_t *rp);

/* Build the router index for conf (called by sl_conf_load). SL_OK/SL_ERROR. */
int sl_router_build(sl_conf_t *conf, sl_errors_t *errs);
void sl_router_free(sl_conf_t *conf);

/* Match.  host without port, path without query.  SL_OK with *m filled,
 * or SL_DECLINED when no route matches. */
int sl_router_match(const sl_conf_t *conf, sl_str_t method, sl_str_t host, sl_str_t path,
                    sl_route_match_t *m);

/* What else a route may match on (Kong): the connection's TLS and SNI,
 * and request headers through `header` (the idx-th value of a header,
 * name lowercase; 0 when there is none). */
typedef struct sl_router_req {
    sl_str_t method, host, path;
    int tls;         /* an http-only route does not match a TLS request */
    const char *sni; /* NULL if none */
    int (*header)(void *arg, const char *name, size_t idx, sl_str_t *value);
    void *arg;
} sl_router_req_t;

int sl_router_match_req(const sl_conf_t *conf, const sl_router_req_t *q, sl_route_match_t *m);

/* The upstream path for a matched request, following Kong's
 * get_upstream_uri_v0 (see docs): service path joined with what is left of
 * the request path.  Returns a malloc'd NUL-terminated path WITHOUT query. */
char *sl_router_upstream_path(const sl_route_match_t *m, sl_str_t req_path);

/* The same path as up to three pieces to be joined in order (unused ones
 * empty), pointing into the service's path, req_path and constants: no
 * copy, for a caller that writes the path somewhere itself. */
void sl_router_upstream_parts(const sl_route_match_t *m, sl_str_t req_path, sl_str_t out[3]);

#endif
