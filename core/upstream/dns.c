/* dns.c - asynchronous host name resolution with Kong's DNS cache
 * (dns.h).  The queries themselves are dns_ares.c's; this file keeps the
 * answers (positive ones for their TTL, then stale while a background
 * query refreshes them; failures for dns_not_found_ttl / dns_error_ttl)
 * and lets lookups of one name in flight at once share one query (unless
 * dns_no_sync).  The cache is a hash table by kind and name (case
 * folded), with the entries also in store order for eviction. */

#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"
#include "upstream/dns.h"
#include "upstream/dns_ares.h"

#define SL_DNS_CACHE_SIZE 10000 /* Kong's dns_cache_size */
#define SL_DNS_MAX_ADDRS SL_ARES_MAX_ADDRS

typedef struct sl_dns_entry sl_dns_entry_t;
typedef struct sl_dns_lookup sl_dns_lookup_t;

/* What is looked up. */
enum { SL_DNS_ADDR, SL_DNS_SRV };

/* One cached answer, positive or negative. */
struct sl_dns_entry {
    sl_dns_entry_t *chain;         /* the next one in its hash bucket */
    sl_dns_entry_t *newer, *older; /* store order: d->newest .. d->oldest */
    uint32_t hash;
    char *host;
    int kind;          /* SL_DNS_ADDR or SL_DNS_SRV */
    sl_srv_rec_t *srv; /* SRV: nsrv records (malloc'd) */
    size_t nsrv;
    uint64_t expires;     /* uv_now() ms: fresh until then */
    uint64_t stale_until; /* positive answers: still used (and refreshed) until then */
    int status;           /* 0 or UV_EAI_* */
    char errmsg[200];     /* status < 0 */
    size_t naddrs;
    struct sockaddr_storage addrs[SL_DNS_MAX_ADDRS];
};

/* One query in flight and everyone waiting for it (nobody: a refresh). */
struct sl_dns_lookup {
    sl_dns_t *dns; /* NULL once the resolver is gone */
    int kind;
    sl_dns_lookup_t *next;
    sl_dns_lookup_t **pprev;
    sl_dns_req_t *waiters;
    char host[];
};

struct sl_dns_req {
    sl_dns_req_t *next;
    sl_dns_req_t **pprev;
    sl_dns_cb cb;
    sl_dns_srv_cb srv_cb; /* SRV lookups */
    void *arg;
};

struct sl_dns {
    uv_loop_t *loop;
    sl_ares_t *ares;
    sl_dns_options_t opts;
    sl_dns_entry_t **buckets; /* nbuckets (a power of two), chained */
    size_t nbuckets;
    sl_dns_entry_t *newest, *oldest;
    size_t ncache;
    sl_dns_lookup_t *lookups;
    sl_dns_lookup_t *starting;  /* the query being started by sl_dns_resolve */
    sl_dns_entry_t *sync_entry; /* its answer when c-ares gave it at once */
};

static void dns_answer_cb(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
                          unsigned ttl_s, const char *errmsg);
static void dns_srv_answer_cb(void *arg, int status, const sl_srv_rec_t *recs, size_t n,
                              unsigned ttl_s, const char *errmsg);

sl_dns_t *
sl_dns_new(uv_loop_t *loop, const sl_dns_options_t *opts, char *err, size_t errlen)
{
    static const sl_dns_options_t defaults = SL_DNS_OPTIONS_DEFAULT;
    sl_dns_t *d = sl_xcalloc(1, sizeof(*d));

    d->loop = loop;
    d->opts = opts ? *opts : defaults;
    if (d->opts.order.family[0] == 0) /* Kong's LAST,SRV,A then AAAA */
        d->opts.order = (sl_dns_order_t){{AF_INET, AF_INET6}, 1, 1};
    if (d->opts.cache_size == 0)
        d->opts.cache_size = SL_DNS_CACHE_SIZE;
    d->ares =
        sl_ares_new(loop, d->opts.resolver, d->opts.hostsfile, d->opts.order.family, err, errlen);
    if (d->ares == NULL) {
        free(d);
        return NULL;
    }
    d->opts.resolver = NULL; /* not kept: the channel has them */
    d->opts.hostsfile = NULL;
    return d;
}

const sl_dns_order_t *
sl_dns_order(const sl_dns_t *d)
{
    return &d->opts.order;
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

static void
dns_entry_free(sl_dns_entry_t *e)
{
    free(e->srv);
    free(e->host);
    free(e);
}

void
sl_dns_free(sl_dns_t *d)
{
    sl_dns_entry_t *e, *enext;
    sl_dns_lookup_t *lk;

    if (d == NULL)
        return;
    for (e = d->newest; e != NULL; e = enext) {
        enext = e->older;
        dns_entry_free(e);
    }
    free(d->buckets);
    /* Detach the lookups; freeing the channel answers each with
     * UV_ECANCELED and dns_answer_cb frees it. */
    for (lk = d->lookups; lk != NULL; lk = lk->next) {
        lk->dns = NULL;
        lk->pprev = NULL;
        dns_free_waiters(lk);
    }
    sl_ares_free(d->ares);
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

/* FNV-1a of the kind and the case-folded name. */
static uint32_t
dns_hash(int kind, const char *host)
{
    uint32_t h = 2166136261u ^ (uint32_t)kind;

    for (const unsigned char *p = (const unsigned char *)host; *p; p++) {
        h ^= (uint32_t)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        h *= 16777619u;
    }
    return h;
}

/* The bucket slot that points at e (e is in the table). */
static sl_dns_entry_t **
dns_bucket_slot(sl_dns_t *d, const sl_dns_entry_t *e)
{
    sl_dns_entry_t **pp = &d->buckets[e->hash & (d->nbuckets - 1)];

    while (*pp != e)
        pp = &(*pp)->chain;
    return pp;
}

/* Take e out of the table and the store order, and free it. */
static void
dns_cache_drop(sl_dns_t *d, sl_dns_entry_t *e)
{
    sl_dns_entry_t **pp = dns_bucket_slot(d, e);

    *pp = e->chain;
    if (e->newer != NULL)
        e->newer->older = e->older;
    else
        d->newest = e->older;
    if (e->older != NULL)
        e->older->newer = e->newer;
    else
        d->oldest = e->newer;
    d->ncache--;
    dns_entry_free(e);
}

/* Twice the buckets when the entries outnumber them (load factor <= 1). */
static void
dns_cache_grow(sl_dns_t *d)
{
    size_t nb = d->nbuckets ? d->nbuckets * 2 : 64;
    sl_dns_entry_t **b = sl_xcalloc(nb, sizeof(*b));

    for (sl_dns_entry_t *e = d->newest; e != NULL; e = e->older) {
        sl_dns_entry_t **slot = &b[e->hash & (nb - 1)];
        e->chain = *slot;
        *slot = e;
    }
    free(d->buckets);
    d->buckets = b;
    d->nbuckets = nb;
}

/* The entry for kind and host, usable or not. */
static sl_dns_entry_t *
dns_cache_get(sl_dns_t *d, int kind, const char *host, uint32_t hash)
{
    if (d->nbuckets == 0)
        return NULL;
    for (sl_dns_entry_t *e = d->buckets[hash & (d->nbuckets - 1)]; e != NULL; e = e->chain)
        if (e->hash == hash && e->kind == kind && strcasecmp(e->host, host) == 0)
            return e;
    return NULL;
}

/* The cached answer for host that may still be used (fresh, or positive
 * and within its stale time); an unusable one is dropped. */
static sl_dns_entry_t *
dns_cache_find(sl_dns_t *d, int kind, const char *host)
{
    sl_dns_entry_t *e = dns_cache_get(d, kind, host, dns_hash(kind, host));
    uint64_t now = uv_now(d->loop);

    if (e != NULL && e->expires <= now && (e->status != 0 || e->stale_until <= now)) {
        dns_cache_drop(d, e);
        return NULL;
    }
    return e;
}

/* Store an answer for host, replacing an older one; evict the least
 * recently stored entry when full. */
static sl_dns_entry_t *
dns_cache_store(sl_dns_t *d, int kind, const char *host, int status,
                const struct sockaddr_storage *addrs, const sl_srv_rec_t *srv, size_t n,
                unsigned ttl_s, const char *errmsg)
{
    uint32_t hash = dns_hash(kind, host);
    sl_dns_entry_t *e = dns_cache_get(d, kind, host, hash), **slot;
    uint64_t now = uv_now(d->loop);
    unsigned keep_s;

    if (e != NULL)
        dns_cache_drop(d, e);
    while (d->ncache >= d->opts.cache_size && d->oldest != NULL)
        dns_cache_drop(d, d->oldest);
    if (d->ncache + 1 > d->nbuckets)
        dns_cache_grow(d);

    e = sl_xcalloc(1, sizeof(*e));
    e->hash = hash;
    e->host = sl_strndup(host, strlen(host));
    e->kind = kind;
    e->status = status;
    if (status == 0) {
        if (kind == SL_DNS_SRV) {
            e->nsrv = n;
            e->srv = sl_xmalloc(n * sizeof(*srv));
            memcpy(e->srv, srv, n * sizeof(*srv));
        } else {
            e->naddrs = n < SL_DNS_MAX_ADDRS ? n : SL_DNS_MAX_ADDRS;
            memcpy(e->addrs, addrs, e->naddrs * sizeof(*addrs));
        }
        keep_s = d->opts.valid_ttl_s > 0 ? d->opts.valid_ttl_s : ttl_s;
        e->expires = now + (uint64_t)keep_s * 1000;
        e->stale_until = e->expires + (uint64_t)d->opts.stale_ttl_s * 1000;
    } else {
        snprintf(e->errmsg, sizeof(e->errmsg), "%s", errmsg ? errmsg : uv_strerror(status));
        keep_s = status == UV_EAI_NONAME ? d->opts.not_found_ttl_s : d->opts.error_ttl_s;
        e->expires = now + (uint64_t)keep_s * 1000;
    }
    slot = &d->buckets[hash & (d->nbuckets - 1)];
    e->chain = *slot;
    *slot = e;
    e->older = d->newest;
    if (d->newest != NULL)
        d->newest->newer = e;
    else
        d->oldest = e;
    d->newest = e;
    d->ncache++;
    return e;
}

static void
dns_deliver_entry(const sl_dns_entry_t *e, sl_dns_cb cb, sl_dns_srv_cb srv_cb, void *arg)
{
    if (e->kind == SL_DNS_SRV)
        srv_cb(arg, e->status, e->status == 0 ? e->srv : NULL, e->nsrv,
               e->status == 0 ? NULL : e->errmsg);
    else if (e->status == 0)
        cb(arg, 0, e->addrs, e->naddrs, NULL);
    else
        cb(arg, e->status, NULL, 0, e->errmsg);
}

static sl_dns_lookup_t *
dns_lookup_find(sl_dns_t *d, int kind, const char *host)
{
    for (sl_dns_lookup_t *lk = d->lookups; lk != NULL; lk = lk->next)
        if (lk->kind == kind && strcasecmp(lk->host, host) == 0)
            return lk;
    return NULL;
}

/* Start a query for host.  Returns the lookup, or NULL when c-ares
 * answered at once (the answer is then in d->sync_entry). */
static sl_dns_lookup_t *
dns_lookup_start(sl_dns_t *d, int kind, const char *host)
{
    size_t len = strlen(host);
    sl_dns_lookup_t *lk = sl_xcalloc(1, sizeof(*lk) + len + 1);

    memcpy(lk->host, host, len + 1);
    lk->dns = d;
    lk->kind = kind;
    d->starting = lk;
    d->sync_entry = NULL;
    if (kind == SL_DNS_SRV)
        sl_ares_srv(d->ares, lk->host, dns_srv_answer_cb, lk);
    else
        sl_ares_addrinfo(d->ares, lk->host, dns_answer_cb, lk);
    d->starting = NULL;
    if (d->sync_entry != NULL)
        return NULL; /* lk already freed */
    lk->next = d->lookups;
    if (lk->next != NULL)
        lk->next->pprev = &lk->next;
    lk->pprev = &d->lookups;
    d->lookups = lk;
    return lk;
}

/* The cache, then one query per name in flight; see sl_dns_resolve. */
static int
dns_resolve(sl_dns_t *d, int kind, const char *host, sl_dns_cb cb, sl_dns_srv_cb srv_cb, void *arg,
            sl_dns_req_t **req)
{
    struct sockaddr_storage ss;
    sl_dns_entry_t *e, copy;
    sl_dns_lookup_t *lk;
    sl_dns_req_t *w;
    char msg[320];

    *req = NULL;
    if (host == NULL || host[0] == '\0')
        return UV_EINVAL;

    if (kind == SL_DNS_ADDR && sl_dns_parse_ip(host, &ss)) {
        cb(arg, 0, &ss, 1, NULL);
        return 0;
    }
    if (dns_is_invalid_tld(host)) {
        snprintf(msg, sizeof(msg), "could not resolve host \"%s\": %s", host,
                 uv_strerror(UV_EAI_NONAME));
        if (kind == SL_DNS_SRV)
            srv_cb(arg, UV_EAI_NONAME, NULL, 0, msg);
        else
            cb(arg, UV_EAI_NONAME, NULL, 0, msg);
        return 0;
    }
    e = dns_cache_find(d, kind, host);
    if (e != NULL) {
        /* Stale: answer with it now and refresh it in the background
         * (Kong's dns_stale_ttl), once. */
        if (e->expires <= uv_now(d->loop) && dns_lookup_find(d, kind, host) == NULL) {
            copy = *e;
            if (dns_lookup_start(d, kind, host) == NULL)
                e = d->sync_entry;
            else
                e = &copy;
        }
        dns_deliver_entry(e, cb, srv_cb, arg);
        return 0;
    }

    /* dns_no_sync: this request's own query, as Kong's individualQuery */
    lk = d->opts.no_sync ? NULL : dns_lookup_find(d, kind, host);
    if (lk == NULL) {
        lk = dns_lookup_start(d, kind, host);
        if (lk == NULL) {
            dns_deliver_entry(d->sync_entry, cb, srv_cb, arg);
            return 0;
        }
    }

    w = sl_xcalloc(1, sizeof(*w));
    w->cb = cb;
    w->srv_cb = srv_cb;
    w->arg = arg;
    w->next = lk->waiters;
    if (w->next != NULL)
        w->next->pprev = &w->next;
    w->pprev = &lk->waiters;
    lk->waiters = w;
    *req = w;
    return 0;
}

int
sl_dns_resolve(sl_dns_t *d, const char *host, sl_dns_cb cb, void *arg, sl_dns_req_t **req)
{
    return dns_resolve(d, SL_DNS_ADDR, host, cb, NULL, arg, req);
}

int
sl_dns_resolve_srv(sl_dns_t *d, const char *name, sl_dns_srv_cb cb, void *arg, sl_dns_req_t **req)
{
    return dns_resolve(d, SL_DNS_SRV, name, NULL, cb, arg, req);
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
    /* The query itself goes on: its answer still fills the cache, which
     * the next request for this name will want. */
}

/* A lookup's answer (addrs for addresses, srv for SRV): into the cache
 * and to everyone waiting. */
static void
dns_answer(sl_dns_lookup_t *lk, int status, const struct sockaddr_storage *addrs,
           const sl_srv_rec_t *srv, size_t n, unsigned ttl_s, const char *errmsg)
{
    sl_dns_t *d = lk->dns;
    sl_dns_entry_t *e, copy;
    sl_dns_req_t *w;

    if (d == NULL || status == UV_ECANCELED) { /* resolver freed meanwhile */
        dns_free_waiters(lk);
        free(lk);
        return;
    }
    if (lk->pprev != NULL) {
        *lk->pprev = lk->next;
        if (lk->next != NULL)
            lk->next->pprev = lk->pprev;
    }

    /* A failure that is not "no such name" keeps a stale answer in use
     * (Kong serves stale data while the servers fail). */
    e = status < 0 && status != UV_EAI_NONAME ? dns_cache_find(d, lk->kind, lk->host) : NULL;
    if (e != NULL && e->status == 0) {
        sl_log_warn("dns: %s; using the previous answer", errmsg ? errmsg : "failed");
        e->expires = uv_now(d->loop) + (uint64_t)d->opts.error_ttl_s * 1000; /* asked again then */
        if (e->expires > e->stale_until)
            e->expires = e->stale_until;
    } else
        e = dns_cache_store(d, lk->kind, lk->host, status, addrs, srv, n, ttl_s, errmsg);
    if (d->starting == lk) { /* answered inside dns_lookup_start */
        d->sync_entry = e;
        free(lk);
        return;
    }

    /* A callback may cancel other waiters or start new lookups, so take
     * one waiter at a time and deliver from a copy of the entry. */
    copy = *e;
    if (copy.srv != NULL) { /* the cached entry may be evicted meanwhile */
        copy.srv = sl_xmalloc(copy.nsrv * sizeof(*copy.srv));
        memcpy(copy.srv, e->srv, copy.nsrv * sizeof(*copy.srv));
    }
    while ((w = lk->waiters) != NULL) {
        lk->waiters = w->next;
        if (w->next != NULL)
            w->next->pprev = &lk->waiters;
        dns_deliver_entry(&copy, w->cb, w->srv_cb, w->arg);
        free(w);
    }
    free(copy.srv);
    free(lk);
}

static void
dns_answer_cb(void *arg, int status, const struct sockaddr_storage *addrs, size_t n, unsigned ttl_s,
              const char *errmsg)
{
    dns_answer(arg, status, addrs, NULL, n, ttl_s, errmsg);
}

static void
dns_srv_answer_cb(void *arg, int status, const sl_srv_rec_t *recs, size_t n, unsigned ttl_s,
                  const char *errmsg)
{
    dns_answer(arg, status, NULL, recs, n, ttl_s, errmsg);
}
