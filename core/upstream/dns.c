/* dns.c - asynchronous host name resolution with a small cache.
 *
 * getaddrinfo blocks, so it runs in libuv's thread pool (uv_getaddrinfo);
 * everything else here runs on the worker's loop.  Upstreams are few and
 * looked up over and over, so a short positive cache (default 30 s) saves a
 * thread-pool round trip per request, and a very short negative cache
 * (default 1 s) keeps a storm of requests to a dead name from queueing a
 * storm of lookups.  Lookups of one name in flight at the same time share
 * one getaddrinfo call. */

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>

#include "upstream/dns.h"

#define SL_DNS_DEFAULT_TTL_MS 30000
#define SL_DNS_DEFAULT_NEG_TTL_MS 1000
#define SL_DNS_MAX_ENTRIES 512
#define SL_DNS_MAX_ADDRS 16

typedef struct sl_dns_entry sl_dns_entry_t;
typedef struct sl_dns_lookup sl_dns_lookup_t;

/* One cached answer, positive or negative. */
struct sl_dns_entry {
    sl_dns_entry_t *next;
    char *host;
    uint64_t expires; /* uv_now() ms */
    int status;       /* 0 or UV_EAI_* */
    size_t naddrs;
    struct sockaddr_storage addrs[SL_DNS_MAX_ADDRS];
};

/* One getaddrinfo call in flight and everyone waiting for it. */
struct sl_dns_lookup {
    uv_getaddrinfo_t gai;
    sl_dns_t *dns; /* NULL once the resolver is gone */
    sl_dns_lookup_t *next;
    sl_dns_lookup_t **pprev;
    char *host;
    sl_dns_req_t *waiters;
};

struct sl_dns_req {
    sl_dns_req_t *next;
    sl_dns_req_t **pprev;
    sl_dns_lookup_t *lookup;
    sl_dns_cb cb;
    void *arg;
};

struct sl_dns {
    uv_loop_t *loop;
    unsigned ttl_ms;
    unsigned neg_ttl_ms;
    sl_dns_entry_t *cache; /* newest first */
    size_t ncache;
    sl_dns_lookup_t *lookups;
    sl_dns_lookup_t *delivering; /* lookup whose waiters are being called */
};

static void dns_gai_cb(uv_getaddrinfo_t *gai, int status, struct addrinfo *res);

sl_dns_t *
sl_dns_new(uv_loop_t *loop, unsigned ttl_ms, unsigned neg_ttl_ms)
{
    sl_dns_t *d = sl_xcalloc(1, sizeof(*d));

    d->loop = loop;
    d->ttl_ms = ttl_ms ? ttl_ms : SL_DNS_DEFAULT_TTL_MS;
    d->neg_ttl_ms = neg_ttl_ms ? neg_ttl_ms : SL_DNS_DEFAULT_NEG_TTL_MS;
    return d;
}

static void
dns_free_waiters(sl_dns_lookup_t *lk)
{
    sl_dns_req_t *w, *next;

    for (w = lk->waiters; w != NULL; w = next) {
        next = w->next;
        free(w);
    }
    lk->waiters = NULL;
}

void
sl_dns_free(sl_dns_t *d)
{
    sl_dns_entry_t *e, *enext;
    sl_dns_lookup_t *lk, *lnext;

    if (d == NULL)
        return;
    for (e = d->cache; e != NULL; e = enext) {
        enext = e->next;
        free(e->host);
        free(e);
    }
    /* Lookups still in the thread pool cannot be taken back; cancel what
     * has not started and let dns_gai_cb free the rest on the loop. */
    for (lk = d->lookups; lk != NULL; lk = lnext) {
        lnext = lk->next;
        lk->dns = NULL;
        lk->next = NULL;
        lk->pprev = NULL;
        dns_free_waiters(lk);
        uv_cancel((uv_req_t *)&lk->gai);
    }
    if (d->delivering != NULL) {
        d->delivering->dns = NULL;
        dns_free_waiters(d->delivering);
    }
    free(d);
}

int
sl_dns_parse_ip(const char *host, struct sockaddr_storage *ss)
{
    char buf[64];
    size_t len;

    memset(ss, 0, sizeof(*ss));
    if (host == NULL)
        return 0;
    if (uv_ip4_addr(host, 0, (struct sockaddr_in *)ss) == 0)
        return 1;
    len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(buf)) {
        memcpy(buf, host + 1, len - 2);
        buf[len - 2] = '\0';
        host = buf;
    }
    if (strchr(host, ':') != NULL && uv_ip6_addr(host, 0, (struct sockaddr_in6 *)ss) == 0)
        return 1;
    memset(ss, 0, sizeof(*ss));
    return 0;
}

/* RFC 6761 6.4: resolvers should answer names under "invalid." negatively
 * without asking anyone. */
static int
dns_is_invalid_tld(const char *host)
{
    size_t len = strlen(host);

    if (len > 0 && host[len - 1] == '.')
        len--;
    if (len == 7 && strncasecmp(host, "invalid", 7) == 0)
        return 1;
    return len > 8 && strncasecmp(host + len - 8, ".invalid", 8) == 0;
}

static void
dns_errmsg(char *buf, size_t size, const char *host, int status)
{
    snprintf(buf, size, "could not resolve host \"%s\": %s", host, uv_strerror(status));
}

static sl_dns_entry_t *
dns_cache_find(sl_dns_t *d, const char *host)
{
    sl_dns_entry_t **pp, *e;
    uint64_t now = uv_now(d->loop);

    for (pp = &d->cache; (e = *pp) != NULL;) {
        if (e->expires <= now) { /* drop stale entries on the way */
            *pp = e->next;
            d->ncache--;
            free(e->host);
            free(e);
            continue;
        }
        if (strcasecmp(e->host, host) == 0)
            return e;
        pp = &e->next;
    }
    return NULL;
}

static sl_dns_entry_t *
dns_cache_store(sl_dns_t *d, const char *host, int status, const struct addrinfo *res)
{
    sl_dns_entry_t **pp, *e;
    const struct addrinfo *ai;

    /* Replace an older answer for the same name; evict the oldest entry
     * when full (the list is newest first, so that is the tail). */
    for (pp = &d->cache; (e = *pp) != NULL;) {
        if (strcasecmp(e->host, host) == 0 ||
            (d->ncache >= SL_DNS_MAX_ENTRIES && e->next == NULL)) {
            *pp = e->next;
            d->ncache--;
            free(e->host);
            free(e);
            continue;
        }
        pp = &e->next;
    }

    e = sl_xcalloc(1, sizeof(*e));
    e->host = sl_strndup(host, strlen(host));
    e->status = status;
    for (ai = res; status == 0 && ai != NULL && e->naddrs < SL_DNS_MAX_ADDRS; ai = ai->ai_next) {
        if ((ai->ai_family != AF_INET && ai->ai_family != AF_INET6) ||
            ai->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        memcpy(&e->addrs[e->naddrs], ai->ai_addr, ai->ai_addrlen);
        ((struct sockaddr_in *)&e->addrs[e->naddrs])->sin_port = 0;
        e->naddrs++;
    }
    if (e->status == 0 && e->naddrs == 0)
        e->status = UV_EAI_NODATA;
    e->expires = uv_now(d->loop) + (e->status == 0 ? d->ttl_ms : d->neg_ttl_ms);
    e->next = d->cache;
    d->cache = e;
    d->ncache++;
    return e;
}

static void
dns_deliver_entry(const sl_dns_entry_t *e, const char *host, sl_dns_cb cb, void *arg)
{
    char msg[320];

    if (e->status == 0) {
        cb(arg, 0, e->addrs, e->naddrs, NULL);
    } else {
        dns_errmsg(msg, sizeof(msg), host, e->status);
        cb(arg, e->status, NULL, 0, msg);
    }
}

int
sl_dns_resolve(sl_dns_t *d, const char *host, sl_dns_cb cb, void *arg, sl_dns_req_t **req)
{
    struct sockaddr_storage ss;
    struct addrinfo hints;
    sl_dns_entry_t *e;
    sl_dns_lookup_t *lk;
    sl_dns_req_t *w;
    char msg[320];
    int rc;

    *req = NULL;
    if (host == NULL || host[0] == '\0')
        return UV_EINVAL;

    if (sl_dns_parse_ip(host, &ss)) {
        cb(arg, 0, &ss, 1, NULL);
        return 0;
    }
    if (dns_is_invalid_tld(host)) {
        dns_errmsg(msg, sizeof(msg), host, UV_EAI_NONAME);
        cb(arg, UV_EAI_NONAME, NULL, 0, msg);
        return 0;
    }
    e = dns_cache_find(d, host);
    if (e != NULL) {
        dns_deliver_entry(e, host, cb, arg);
        return 0;
    }

    for (lk = d->lookups; lk != NULL; lk = lk->next)
        if (strcasecmp(lk->host, host) == 0)
            break;

    if (lk == NULL) {
        lk = sl_xcalloc(1, sizeof(*lk));
        lk->dns = d;
        lk->host = sl_strndup(host, strlen(host));
        memset(&hints, 0, sizeof(hints));
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_protocol = IPPROTO_TCP;
        rc = uv_getaddrinfo(d->loop, &lk->gai, dns_gai_cb, lk->host, NULL, &hints);
        if (rc < 0) {
            free(lk->host);
            free(lk);
            return rc;
        }
        lk->next = d->lookups;
        if (lk->next != NULL)
            lk->next->pprev = &lk->next;
        lk->pprev = &d->lookups;
        d->lookups = lk;
    }

    w = sl_xcalloc(1, sizeof(*w));
    w->lookup = lk;
    w->cb = cb;
    w->arg = arg;
    w->next = lk->waiters;
    if (w->next != NULL)
        w->next->pprev = &w->next;
    w->pprev = &lk->waiters;
    lk->waiters = w;
    *req = w;
    return 0;
}

void
sl_dns_cancel(sl_dns_req_t *w)
{
    if (w == NULL)
        return;
    *w->pprev = w->next;
    if (w->next != NULL)
        w->next->pprev = w->pprev;
    free(w);
    /* The getaddrinfo call itself goes on: its answer still fills the
     * cache, which the next request for this name will want. */
}

static void
dns_gai_cb(uv_getaddrinfo_t *gai, int status, struct addrinfo *res)
{
    sl_dns_lookup_t *lk = (sl_dns_lookup_t *)gai; /* gai is the first member */
    sl_dns_t *d = lk->dns;
    sl_dns_entry_t *e;
    sl_dns_req_t *w;

    if (d == NULL) { /* resolver freed meanwhile */
        uv_freeaddrinfo(res);
        free(lk->host);
        free(lk);
        return;
    }
    if (lk->pprev != NULL) {
        *lk->pprev = lk->next;
        if (lk->next != NULL)
            lk->next->pprev = lk->pprev;
        lk->next = NULL;
        lk->pprev = NULL;
    }

    e = dns_cache_store(d, lk->host, status, res);
    uv_freeaddrinfo(res);

    /* A callback may cancel other waiters, start new lookups or even free
     * the resolver (which then empties our waiter list), so take one
     * waiter at a time and copy the entry we deliver from. */
    {
        sl_dns_entry_t copy = *e;

        d->delivering = lk;
        while ((w = lk->waiters) != NULL) {
            lk->waiters = w->next;
            if (w->next != NULL)
                w->next->pprev = &lk->waiters;
            dns_deliver_entry(&copy, lk->host, w->cb, w->arg);
            free(w);
        }
        if (lk->dns != NULL)
            lk->dns->delivering = NULL;
    }
    free(lk->host);
    free(lk);
}
