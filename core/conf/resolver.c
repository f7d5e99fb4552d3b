/* resolver.c - the syntax of Kong's dns_resolver setting: a
 * comma-separated list of name servers, each "ip[:port]" (IPv6 in brackets
 * when a port follows).  The upstream layer hands the list to c-ares. */

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <uv.h>

#include "conf/resolver.h"

/* One "ip[:port]" entry of len bytes: 1 if it is one. */
static int
server_ok(const char *s, size_t len)
{
    char ip[64];
    const char *port = NULL;
    struct sockaddr_in6 a6;
    struct sockaddr_in a4;
    size_t iplen = len;

    if (len == 0 || len >= sizeof(ip))
        return 0;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL)
            return 0;
        iplen = (size_t)(close - s - 1);
        memcpy(ip, s + 1, iplen);
        if (close + 1 < s + len) {
            if (close[1] != ':')
                return 0;
            port = close + 2;
        }
    } else {
        const char *colon = memchr(s, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', (size_t)(s + len - colon - 1)) == NULL) {
            iplen = (size_t)(colon - s); /* IPv4:port; several colons: bare IPv6 */
            port = colon + 1;
        }
        memcpy(ip, s, iplen);
    }
    ip[iplen] = '\0';
    if (uv_ip4_addr(ip, 53, &a4) != 0 && uv_ip6_addr(ip, 53, &a6) != 0)
        return 0;
    if (port != NULL) {
        long v = 0;
        const char *end = s + len;
        if (port == end)
            return 0;
        for (const char *p = port; p < end; p++) {
            if (*p < '0' || *p > '9')
                return 0;
            v = v * 10 + (*p - '0');
            if (v > 65535)
                return 0;
        }
        if (v == 0)
            return 0;
    }
    return 1;
}

const char *
sl_conf_resolver_check(const char *resolver)
{
    const char *p = resolver, *comma;

    if (resolver == NULL || resolver[0] == '\0')
        return NULL;
    for (;;) {
        comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        while (len > 0 && *p == ' ')
            p++, len--;
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (!server_ok(p, len))
            return "a comma-separated list of name servers, each an IP address with an optional "
                   "port (127.0.0.1:5353, [::1]:53)";
        if (comma == NULL)
            return NULL;
        p = comma + 1;
    }
}

/* dns_order's entries. */
enum { ORD_LAST, ORD_SRV, ORD_A, ORD_AAAA, ORD_CNAME };
static const struct {
    const char *name;
    int kind;
} order_names[] = {
    {"LAST", ORD_LAST}, {"SRV", ORD_SRV}, {"A", ORD_A}, {"AAAA", ORD_AAAA}, {"CNAME", ORD_CNAME},
};

const char *
sl_conf_dns_order_parse(const char *text, sl_dns_order_t *out)
{
    static const char *const expected =
        "a comma-separated list of LAST, SRV, A, AAAA and CNAME (Kong's record types), "
        "with A or AAAA among them";
    const char *p = text;
    int nfam = 0, seen = 0;

    memset(out, 0, sizeof(*out));
    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p), k;
        while (len > 0 && *p == ' ')
            p++, len--;
        while (len > 0 && p[len - 1] == ' ')
            len--;
        for (k = 0; k < sizeof(order_names) / sizeof(order_names[0]); k++)
            if (strlen(order_names[k].name) == len && !strncasecmp(order_names[k].name, p, len))
                break;
        if (k == sizeof(order_names) / sizeof(order_names[0]) || (seen & (1 << k)))
            return expected; /* unknown or repeated */
        seen |= 1 << k;
        switch (order_names[k].kind) {
        case ORD_LAST:
            out->last = 1;
            break;
        case ORD_SRV:
            out->srv = nfam ? 2 : 1;
            break;
        case ORD_A:
            out->family[nfam++] = AF_INET;
            break;
        case ORD_AAAA:
            out->family[nfam++] = AF_INET6;
            break;
        default: /* CNAME: c-ares follows CNAMEs itself */
            break;
        }
        p = comma ? comma + 1 : NULL;
    }
    if (nfam == 0) /* SRV targets and service hosts are resolved to addresses */
        return expected;
    return NULL;
}
