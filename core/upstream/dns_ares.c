/* dns_ares.c - c-ares driven on a libuv loop (dns_ares.h).
 *
 * c-ares tells us which sockets to watch (sock_state_cb); each gets a
 * uv_poll_t, and one uv_timer_t runs ares_process_fd when c-ares' next
 * retransmission is due.  The hosts file (dns_hostsfile) is read first
 * through a second channel that only reads it (Kong: hosts-file entries
 * never expire), then DNS (ARES_OPT_LOOKUPS "b"). */

#include <ares.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>

#include "upstream/dns_ares.h"

/* Kong's TTL for hosts-file entries: ten years. */
#define SL_ARES_HOSTS_TTL_S (10u * 365u * 24u * 3600u)

typedef struct sl_ares_sock sl_ares_sock_t;

/* One socket of the channel being watched. */
struct sl_ares_sock {
    uv_poll_t poll;
    sl_ares_t *a;
    sl_ares_sock_t *next;
    ares_socket_t fd;
};

struct sl_ares {
    uv_loop_t *loop;
    ares_channel channel;
    ares_channel hosts; /* lookups "f": the hosts file only, answered at once */
    int family[2];      /* dns_order's A/AAAA order; 0 = not asked */
    uv_timer_t *timer;  /* freed by its close callback */
    sl_ares_sock_t *socks;
};

/* One lookup in flight. */
typedef struct sl_ares_q {
    sl_ares_t *a;
    sl_ares_addr_cb cb;
    sl_ares_srv_cb srv_cb; /* SRV lookups */
    void *arg;
    char host[];
} sl_ares_q_t;

/* c-ares status -> the libuv code the upstream layer reports. */
static const struct {
    int ares;
    int uv;
} status_map[] = {
    {ARES_ENOTFOUND, UV_EAI_NONAME},   {ARES_ENODATA, UV_EAI_NONAME},
    {ARES_ENONAME, UV_EAI_NONAME},     {ARES_ETIMEOUT, UV_EAI_AGAIN},
    {ARES_ESERVFAIL, UV_EAI_AGAIN},    {ARES_ECONNREFUSED, UV_EAI_AGAIN},
    {ARES_EREFUSED, UV_EAI_AGAIN},     {ARES_ENOMEM, UV_EAI_MEMORY},
    {ARES_EDESTRUCTION, UV_ECANCELED}, {ARES_ECANCELLED, UV_ECANCELED},
    {ARES_EBADNAME, UV_EAI_NONAME},
};

static int
map_status(int status)
{
    for (size_t i = 0; i < sizeof(status_map) / sizeof(status_map[0]); i++)
        if (status_map[i].ares == status)
            return status_map[i].uv;
    return UV_EAI_FAIL;
}

/* ---- the channel's sockets and timer ---- */

static void ares_schedule(sl_ares_t *a);

static void
sock_close_cb(uv_handle_t *h)
{
    free(h->data);
}

static void
sock_poll_cb(uv_poll_t *p, int status, int events)
{
    sl_ares_sock_t *s = p->data;
    sl_ares_t *a = s->a;
    ares_socket_t rfd = ARES_SOCKET_BAD, wfd = ARES_SOCKET_BAD;

    /* An error on the socket: let c-ares read and write it to find out. */
    if (status < 0 || (events & UV_READABLE))
        rfd = s->fd;
    if (status < 0 || (events & UV_WRITABLE))
        wfd = s->fd;
    ares_process_fd(a->channel, rfd, wfd); /* may close s (sock_state_cb) */
    ares_schedule(a);
}

static void
sock_state_cb(void *data, ares_socket_t fd, int readable, int writable)
{
    sl_ares_t *a = data;
    sl_ares_sock_t **pp, *s;

    for (pp = &a->socks; (s = *pp) != NULL; pp = &s->next)
        if (s->fd == fd)
            break;
    if (!readable && !writable) {
        if (s != NULL) {
            *pp = s->next;
            uv_close((uv_handle_t *)&s->poll, sock_close_cb);
        }
        return;
    }
    if (s == NULL) {
        s = sl_xcalloc(1, sizeof(*s));
        s->a = a;
        s->fd = fd;
        if (uv_poll_init_socket(a->loop, &s->poll, fd) < 0) {
            free(s); /* the query times out through the timer */
            return;
        }
        s->poll.data = s;
        uv_unref((uv_handle_t *)&s->poll); /* a draining worker does not wait for DNS */
        s->next = a->socks;
        a->socks = s;
    }
    uv_poll_start(&s->poll, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0),
                  sock_poll_cb);
}

static void
timer_cb(uv_timer_t *t)
{
    sl_ares_t *a = t->data;

    ares_process_fd(a->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
    ares_schedule(a);
}

/* Arm the timer for c-ares' next timeout, or stop it when nothing waits. */
static void
ares_schedule(sl_ares_t *a)
{
    struct timeval tv, *next;
    uint64_t ms;

    next = ares_timeout(a->channel, NULL, &tv);
    if (next == NULL) {
        uv_timer_stop(a->timer);
        return;
    }
    ms = (uint64_t)next->tv_sec * 1000 + (uint64_t)(next->tv_usec + 999) / 1000;
    uv_timer_start(a->timer, timer_cb, ms, 0);
}

/* ---- the channel ---- */

sl_ares_t *
sl_ares_new(uv_loop_t *loop, const char *resolver, const char *hostsfile, const int family[2],
            char *err, size_t errlen)
{
    static int lib_ready;
    struct ares_options o;
    sl_ares_t *a;
    int rc;

    if (!lib_ready) {
        rc = ares_library_init(ARES_LIB_INIT_ALL);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
            return NULL;
        }
        lib_ready = 1;
    }
    a = sl_xcalloc(1, sizeof(*a));
    a->loop = loop;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = sock_state_cb;
    o.sock_state_cb_data = a;
    o.lookups = (char *)"b"; /* DNS only: the hosts file is read here, first */
    rc = ares_init_options(&a->channel, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_LOOKUPS);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        free(a);
        return NULL;
    }
    memset(&o, 0, sizeof(o));
    o.lookups = (char *)"f";
    /* The file reaches c-ares through its CARES_HOSTS variable (read per
     * lookup with ARES_AI_ENVHOSTS), a process-wide setting: the
     * per-channel ARES_OPT_HOSTS_FILE came with c-ares 1.19.0 and Debian
     * bookworm has 1.18.1.  Harmless as used: one dns_hostsfile per node,
     * so every channel of a process sets the same value, and the worker
     * makes its resolver before it starts any thread. */
    if (hostsfile != NULL && setenv("CARES_HOSTS", hostsfile, 1) != 0)
        rc = ARES_ENOMEM;
    else
        rc = ares_init_options(&a->hosts, &o, ARES_OPT_LOOKUPS);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "c-ares: %s", ares_strerror(rc));
        ares_destroy(a->channel);
        free(a);
        return NULL;
    }
    a->family[0] = family ? family[0] : AF_INET;
    a->family[1] = family ? family[1] : AF_INET6;
    if (resolver != NULL && resolver[0] != '\0') {
        rc = ares_set_servers_ports_csv(a->channel, resolver);
        if (rc != ARES_SUCCESS) {
            snprintf(err, errlen, "dns_resolver \"%s\": %s", resolver, ares_strerror(rc));
            ares_destroy(a->channel);
            ares_destroy(a->hosts);
            free(a);
            return NULL;
        }
    }
    a->timer = sl_xmalloc(sizeof(*a->timer));
    uv_timer_init(loop, a->timer);
    a->timer->data = a;
    uv_unref((uv_handle_t *)a->timer); /* lookups never keep a stopping loop alive */
    return a;
}

static void
timer_close_cb(uv_handle_t *h)
{
    free(h);
}

void
sl_ares_free(sl_ares_t *a)
{
    if (a == NULL)
        return;
    ares_destroy(a->channel); /* callbacks run with ARES_EDESTRUCTION; sockets closed */
    ares_destroy(a->hosts);
    while (a->socks != NULL) {
        sl_ares_sock_t *s = a->socks;
        a->socks = s->next;
        uv_close((uv_handle_t *)&s->poll, sock_close_cb);
    }
    uv_close((uv_handle_t *)a->timer, timer_close_cb);
    free(a);
}

/* ---- lookups ---- */

static void
deliver_error(sl_ares_q_t *q, int status)
{
    char msg[320];
    int uvs = map_status(status);

    snprintf(msg, sizeof(msg), "could not resolve %shost \"%s\": %s", q->srv_cb ? "SRV of " : "",
             q->host, ares_strerror(status));
    if (q->srv_cb)
        q->srv_cb(q->arg, uvs, NULL, 0, 0, msg);
    else
        q->cb(q->arg, uvs, NULL, 0, 0, msg);
}

/* Append a's addresses of one family; returns the new count. */
static size_t
collect(const struct ares_addrinfo *res, int family, struct sockaddr_storage *out, size_t n,
        unsigned *ttl)
{
    for (const struct ares_addrinfo_node *ai = res->nodes; ai != NULL && n < SL_ARES_MAX_ADDRS;
         ai = ai->ai_next) {
        if (ai->ai_family != family || ai->ai_addrlen > sizeof(out[0]))
            continue;
        memset(&out[n], 0, sizeof(out[n]));
        memcpy(&out[n], ai->ai_addr, ai->ai_addrlen);
        ((struct sockaddr_in *)&out[n])->sin_port = 0; /* same offset in sockaddr_in6 */
        if (ai->ai_ttl >= 0 && (unsigned)ai->ai_ttl < *ttl)
            *ttl = (unsigned)ai->ai_ttl;
        n++;
    }
    return n;
}

static void
addrinfo_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    sl_ares_q_t *q = arg;
    struct sockaddr_storage addrs[SL_ARES_MAX_ADDRS];
    unsigned ttl = UINT32_MAX;
    size_t n = 0;

    if (status == ARES_SUCCESS && res != NULL) /* dns_order's A / AAAA order */
        for (int f = 0; f < 2 && q->a->family[f]; f++)
            n = collect(res, q->a->family[f], addrs, n, &ttl);
    if (res != NULL)
        ares_freeaddrinfo(res);
    if (status == ARES_SUCCESS && n == 0)
        status = ARES_ENODATA;
    if (status != ARES_SUCCESS)
        deliver_error(q, status);
    else
        q->cb(q->arg, 0, addrs, n, ttl, NULL);
    free(q);
}

/* The hints of an address lookup: dns_order's families. */
static void
hints_set(const sl_ares_t *a, struct ares_addrinfo_hints *h, int flags)
{
    memset(h, 0, sizeof(*h));
    h->ai_family = a->family[1] ? AF_UNSPEC : a->family[0];
    h->ai_socktype = SOCK_STREAM;
    h->ai_protocol = IPPROTO_TCP;
    h->ai_flags = flags;
}

/* The hosts channel answers before ares_getaddrinfo returns (a file
 * lookup); its addresses, in the family order. */
typedef struct hosts_ans {
    const sl_ares_t *a;
    struct sockaddr_storage *addrs;
    size_t n;
} hosts_ans_t;

static void
hosts_cb(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    hosts_ans_t *h = arg;
    unsigned ttl = UINT32_MAX;

    (void)timeouts;
    if (status == ARES_SUCCESS && res != NULL)
        for (int f = 0; f < 2 && h->a->family[f]; f++)
            h->n = collect(res, h->a->family[f], h->addrs, h->n, &ttl);
    if (res != NULL)
        ares_freeaddrinfo(res);
}

/* The hosts file's addresses for host (dns_hostsfile, through CARES_HOSTS):
 * 1 and cb called if it has any. */
static int
hosts_lookup(sl_ares_q_t *q)
{
    struct sockaddr_storage addrs[SL_ARES_MAX_ADDRS];
    struct ares_addrinfo_hints hints;
    hosts_ans_t h = {q->a, addrs, 0};

    hints_set(q->a, &hints, ARES_AI_ENVHOSTS);
    ares_getaddrinfo(q->a->hosts, q->host, NULL, &hints, hosts_cb, &h);
    if (h.n == 0)
        return 0;
    q->cb(q->arg, 0, addrs, h.n, SL_ARES_HOSTS_TTL_S, NULL);
    return 1;
}

void
sl_ares_addrinfo(sl_ares_t *a, const char *host, sl_ares_addr_cb cb, void *arg)
{
    struct ares_addrinfo_hints hints;
    size_t len = strlen(host);
    sl_ares_q_t *q = sl_xcalloc(1, sizeof(*q) + len + 1);

    q->a = a;
    q->cb = cb;
    q->arg = arg;
    memcpy(q->host, host, len + 1);
    if (hosts_lookup(q)) {
        free(q);
        return;
    }
    hints_set(a, &hints, 0);
    ares_getaddrinfo(a->channel, host, NULL, &hints, addrinfo_cb, q);
    ares_schedule(a);
}

/* ---- SRV ---- */

/* The smallest TTL of the answer's SRV records (0 when unreadable). */
static unsigned
srv_min_ttl(const unsigned char *abuf, int alen)
{
    const unsigned char *p = abuf + 12, *end = abuf + alen;
    unsigned ttl = UINT32_MAX;
    int qd, an;
    char *name;
    long len;

    if (alen < 12)
        return 0;
    qd = abuf[4] << 8 | abuf[5];
    an = abuf[6] << 8 | abuf[7];
    for (int i = 0; i < qd + an; i++) {
        if (p >= end || ares_expand_name(p, abuf, alen, &name, &len) != ARES_SUCCESS)
            break;
        ares_free_string(name);
        p += len;
        if (i < qd) {
            p += 4; /* type, class */
            continue;
        }
        if (end - p < 10)
            break;
        unsigned type = (unsigned)(p[0] << 8 | p[1]);
        unsigned t = (unsigned)p[4] << 24 | (unsigned)p[5] << 16 | (unsigned)p[6] << 8 | p[7];
        p += 10 + (p[8] << 8 | p[9]);
        if (type == T_SRV && t < ttl)
            ttl = t;
    }
    return ttl == UINT32_MAX ? 0 : ttl;
}

static int
srv_cmp(const void *x, const void *y)
{
    const sl_srv_rec_t *a = x, *b = y;
    int c;

    if (a->priority != b->priority)
        return a->priority - b->priority;
    if ((c = strcmp(a->target, b->target)) != 0)
        return c;
    return a->port - b->port;
}

static void
srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    sl_ares_q_t *q = arg;
    struct ares_srv_reply *reply = NULL;
    sl_srv_rec_t recs[SL_ARES_MAX_SRV];
    size_t n = 0;

    if (status == ARES_SUCCESS)
        status = ares_parse_srv_reply(abuf, alen, &reply);
    for (struct ares_srv_reply *r = reply; r != NULL && n < SL_ARES_MAX_SRV; r = r->next) {
        /* RFC 2782: a target of "." means the service is not offered */
        if (r->host == NULL || r->host[0] == '\0' || strcmp(r->host, ".") == 0)
            continue;
        snprintf(recs[n].target, sizeof(recs[n].target), "%s", r->host);
        recs[n].port = r->port;
        recs[n].weight = r->weight;
        recs[n].priority = r->priority;
        n++;
    }
    if (reply != NULL)
        ares_free_data(reply);
    if (status == ARES_SUCCESS && n == 0)
        status = ARES_ENODATA;
    if (status != ARES_SUCCESS) {
        deliver_error(q, status);
    } else {
        qsort(recs, n, sizeof(recs[0]), srv_cmp);
        q->srv_cb(q->arg, 0, recs, n, srv_min_ttl(abuf, alen), NULL);
    }
    free(q);
}

void
sl_ares_srv(sl_ares_t *a, const char *name, sl_ares_srv_cb cb, void *arg)
{
    size_t len = strlen(name);
    sl_ares_q_t *q = sl_xcalloc(1, sizeof(*q) + len + 1);

    q->a = a;
    q->srv_cb = cb;
    q->arg = arg;
    memcpy(q->host, name, len + 1);
    ares_search(a->channel, name, C_IN, T_SRV, srv_cb, q);
    ares_schedule(a);
}
