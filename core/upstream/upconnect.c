/* upconnect.c - getting a new upstream connection: asynchronous DNS
 * (dns.c), TCP connect trying each address in turn within one timeout, and
 * the TLS handshake (tls.c).  A pooled connection is handed out first when
 * there is one (upstream.c).  See upstream.c for the lifetime rules. */

#include "upstream/upstream_int.h"

/* ---- connecting ---- */

static void
uc_close_cb(uv_handle_t *h)
{
    sl_upconnect_t *uc = h->data;

    free(uc->host);
    free(uc->tls_name);
    free(uc);
}

/* The connect is over (answered or abandoned): detach everything so no
 * later event can reach the caller, and free uc once its timer closed. */
static void
uc_finish(sl_upconnect_t *uc)
{
    uc->done = 1;
    SL_LIST_REMOVE(uc);
    sl_dns_cancel(uc->dns);
    uc->dns = NULL;
    if (uc->conn != NULL) {
        uc->conn->uc = NULL;
        sl_upc_close(uc->conn);
        uc->conn = NULL;
    }
    uv_close((uv_handle_t *)&uc->timer, uc_close_cb);
}

static void
uc_deferred_fail_cb(uv_timer_t *t)
{
    sl_upconnect_t *uc = t->data;

    sl_upconnect_fail(uc, uc->fail_status, uc->errmsg);
}

void
sl_upconnect_fail(sl_upconnect_t *uc, int status, const char *msg)
{
    sl_upconnect_cb cb = uc->cb;
    void *arg = uc->arg;
    char text[sizeof(uc->errmsg)];
    const char *src = msg ? msg : uv_strerror(status);
    size_t n = strlen(src);

    if (n >= sizeof(text))
        n = sizeof(text) - 1;
    memcpy(text, src, n);
    text[n] = '\0';
    if (uc->done)
        return;
    if (uc->starting) {
        /* Still inside sl_upconnect_start(): the caller has not even got
         * its handle yet, so answer from the loop instead. */
        uc->fail_status = status;
        memcpy(uc->errmsg, text, sizeof(text));
        if (uc->conn != NULL) {
            uc->conn->uc = NULL;
            sl_upc_close(uc->conn);
            uc->conn = NULL;
        }
        uv_timer_start(&uc->timer, uc_deferred_fail_cb, 0, 0);
        return;
    }
    uc_finish(uc);
    cb(arg, NULL, status, text);
}

static void
uc_succeed(sl_upconnect_t *uc, sl_upconn_t *c)
{
    sl_upconnect_cb cb = uc->cb;
    void *arg = uc->arg;

    uc->conn = NULL;
    c->uc = NULL;
    c->state = C_ACTIVE;
    if (c->pool != NULL)
        SL_LIST_INSERT(c->pool->busy, c);
    uc_finish(uc);
    cb(arg, c, 0, NULL);
}

/* "host:port", plus " (address)" when the name is not the address, for
 * error messages. */
static const char *
uc_where(const sl_upconnect_t *uc, const sl_upconn_t *c, char *buf, size_t size)
{
    int v6 = strchr(uc->host, ':') != NULL && uc->host[0] != '[';

    snprintf(buf, size, "%s%s%s:%d%s%s%s", v6 ? "[" : "", uc->host, v6 ? "]" : "", uc->port,
             c && strcmp(c->peer_ip, uc->host) != 0 ? " (" : "",
             c && strcmp(c->peer_ip, uc->host) != 0 ? c->peer_ip : "",
             c && strcmp(c->peer_ip, uc->host) != 0 ? ")" : "");
    return buf;
}

void
sl_upc_handshake(sl_upconn_t *c)
{
    char err[256], msg[600], where[200];
    int rc;

    rc = sl_tls_handshake(c->tls, err, sizeof(err));
    sl_upc_flush_tls(c); /* our next flight, or an alert */
    if (rc == 0)
        return;
    if (rc < 0) {
        snprintf(msg, sizeof(msg), "TLS handshake with %s failed: %s",
                 uc_where(c->uc, c, where, sizeof(where)), err);
        sl_upconnect_fail(c->uc, SL_UPERR_TLS, msg);
        return;
    }
    /* Stop reading until the user asks; records that came with the last
     * flight stay buffered in OpenSSL and read_start delivers them. */
    sl_upc_uv_read(c, 0);
    uc_succeed(c->uc, c);
}

static void
conn_connect_cb(uv_connect_t *req, int status)
{
    sl_upconn_t *c = req->data;
    sl_upconnect_t *uc = c->uc;
    char err[256], msg[600], where[200];

    if (c->closing || uc == NULL)
        return;
    if (status < 0) {
        uc->conn = NULL;
        c->uc = NULL;
        sl_upc_close(c);
        uc->fail_status = status;
        snprintf(uc->errmsg, sizeof(uc->errmsg), "connect() to %s failed: %s",
                 uc_where(uc, c, where, sizeof(where)), uv_strerror(status));
        sl_upconnect_try_next(uc);
        return;
    }
    if (!c->tls_on) {
        uc_succeed(uc, c);
        return;
    }
    c->state = C_HANDSHAKE;
    c->tls = sl_tls_new(uc->pool->tls, c->tls_name ? c->tls_name : c->host, c->port, c->verify, err,
                        sizeof(err));
    if (c->tls == NULL) {
        snprintf(msg, sizeof(msg), "TLS setup for %s failed: %s",
                 uc_where(uc, c, where, sizeof(where)), err);
        sl_upconnect_fail(uc, SL_UPERR_TLS, msg);
        return;
    }
    status = sl_upc_uv_read(c, 1);
    if (status < 0) {
        snprintf(msg, sizeof(msg), "reading from %s failed: %s",
                 uc_where(uc, c, where, sizeof(where)), uv_strerror(status));
        sl_upconnect_fail(uc, status, msg);
        return;
    }
    sl_upc_handshake(c);
}

static void
sockaddr_text(const struct sockaddr_storage *ss, char *ip, size_t iplen, int *port)
{
    if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, iplen);
        *port = ntohs(a->sin6_port);
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, iplen);
        *port = ntohs(a->sin_port);
    }
}

/* Try the next resolved address; the connect timer keeps running across
 * attempts, so all of them share one budget. */
void
sl_upconnect_try_next(sl_upconnect_t *uc)
{
    struct sockaddr_storage *ss;
    sl_upconn_t *c;
    char where[200];
    int rc;

    while (uc->next_addr < uc->naddrs) {
        ss = &uc->addrs[uc->next_addr++];
        if (ss->ss_family == AF_INET6)
            ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)uc->port);
        else
            ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)uc->port);

        c = sl_upc_new(uc->pool, uc);
        if (c == NULL) {
            uc->fail_status = UV_ENOMEM;
            snprintf(uc->errmsg, sizeof(uc->errmsg), "could not create a socket");
            break;
        }
        sockaddr_text(ss, c->peer_ip, sizeof(c->peer_ip), &c->peer_port);
        rc = uv_tcp_connect(&c->connect_req, &c->tcp, (const struct sockaddr *)ss, conn_connect_cb);
        if (rc == 0) {
            c->uc = uc;
            uc->conn = c;
            return;
        }
        uc->fail_status = rc;
        snprintf(uc->errmsg, sizeof(uc->errmsg), "connect() to %s failed: %s",
                 uc_where(uc, c, where, sizeof(where)), uv_strerror(rc));
        sl_upc_close(c);
    }
    sl_upconnect_fail(uc, uc->fail_status ? uc->fail_status : UV_EAI_NODATA, uc->errmsg);
}

static void
uc_dns_cb(void *arg, int status, const struct sockaddr_storage *addrs, size_t n, const char *errmsg)
{
    sl_upconnect_t *uc = arg;

    uc->dns = NULL;
    uc->resolving = 0;
    if (status < 0) {
        sl_upconnect_fail(uc, status, errmsg);
        return;
    }
    uc->naddrs = n < SL_UP_MAX_ADDRS ? n : SL_UP_MAX_ADDRS;
    memcpy(uc->addrs, addrs, uc->naddrs * sizeof(*addrs));
    uc->next_addr = 0;
    sl_upconnect_try_next(uc);
}

static void
uc_timeout_cb(uv_timer_t *t)
{
    sl_upconnect_t *uc = t->data;
    char msg[600], where[200];

    if (uc->resolving)
        snprintf(msg, sizeof(msg), "timed out after %d ms resolving \"%s\"", uc->timeout_ms,
                 uc->host);
    else if (uc->conn != NULL && uc->conn->state == C_HANDSHAKE)
        snprintf(msg, sizeof(msg), "TLS handshake with %s timed out after %d ms",
                 uc_where(uc, uc->conn, where, sizeof(where)), uc->timeout_ms);
    else
        snprintf(msg, sizeof(msg), "connect() to %s timed out after %d ms",
                 uc_where(uc, uc->conn, where, sizeof(where)), uc->timeout_ms);
    sl_upconnect_fail(uc, UV_ETIMEDOUT, msg);
}

int
sl_upconnect_start(sl_uppool_t *pool, const sl_upstream_target_t *t, sl_upconnect_cb cb, void *arg,
                   sl_upconnect_t **pending)
{
    sl_upconnect_t *uc;
    sl_upconn_t *c;
    int rc;

    if (pending != NULL)
        *pending = NULL;
    if (pool == NULL || t == NULL || cb == NULL || t->host == NULL || t->host[0] == '\0' ||
        t->port <= 0 || t->port > 65535)
        return UV_EINVAL;

    c = sl_uppool_take_idle(pool, t);
    if (c != NULL) {
        cb(arg, c, 0, NULL);
        return 0;
    }

    uc = sl_xcalloc(1, sizeof(*uc));
    rc = uv_timer_init(pool->loop, &uc->timer);
    if (rc < 0) {
        free(uc);
        return rc;
    }
    uc->timer.data = uc;
    uc->pool = pool;
    uc->cb = cb;
    uc->arg = arg;
    uc->host = sl_strndup(t->host, strlen(t->host));
    uc->tls_name = t->tls_name ? sl_strndup(t->tls_name, strlen(t->tls_name)) : NULL;
    uc->port = t->port;
    uc->tls_on = t->tls ? 1 : 0;
    uc->verify = t->tls_verify ? 1 : 0;
    uc->timeout_ms = t->connect_timeout_ms > 0 ? t->connect_timeout_ms : SL_UP_DEFAULT_CONNECT_MS;
    uc->starting = 1;
    SL_LIST_INSERT(pool->connects, uc);
    uv_timer_start(&uc->timer, uc_timeout_cb, (uint64_t)uc->timeout_ms, 0);

    /* A cached or literal address answers synchronously, and the first
     * connect() starts from here; failures are deferred (see sl_upconnect_fail). */
    uc->resolving = 1;
    rc = pool->dns != NULL ? sl_dns_resolve(pool->dns, uc->host, uc_dns_cb, uc, &uc->dns)
                           : UV_EAI_FAIL;
    if (rc < 0) {
        uc->cb = NULL;
        uc_finish(uc);
        return rc;
    }
    uc->starting = 0;
    if (pending != NULL)
        *pending = uc;
    return 0;
}

void
sl_upconnect_cancel(sl_upconnect_t *uc)
{
    if (uc == NULL || uc->done)
        return;
    uc_finish(uc);
}
