/* test_upstream.c - plain TCP upstream connections, the keep-alive pool and
 * DNS, against libuv servers on 127.0.0.1 inside the test. */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "upstream/dns.h"
#include "upstream_helpers.h"

typedef struct fixture {
    uv_loop_t loop;
    test_srv_t srv;    /* echoes */
    test_srv_t silent; /* accepts, never reads or answers */
} fixture_t;

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(test_srv_start(&f->srv, &f->loop, 0), 0);
    assert_int_equal(test_srv_start(&f->silent, &f->loop, 1), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;

    test_srv_stop(&f->srv);
    test_srv_stop(&f->silent);
    assert_int_equal(test_loop_finish(&f->loop), 0); /* nothing left open */
    free(f);
    return 0;
}

static sl_upstream_target_t
target(const char *host, int port)
{
    sl_upstream_target_t t = {0, host, port, 1, 2000, NULL};
    return t;
}

/* Connect, wait for the answer, check it succeeded. */
static sl_upconn_t *
connect_ok(fixture_t *f, sl_uppool_t *pool, const sl_upstream_target_t *t, test_client_t *cl)
{
    assert_int_equal(test_connect(pool, t, cl), 0);
    assert_true(test_run_until(&f->loop, &cl->connected, 3000));
    assert_int_equal(cl->connected, 1);
    if (cl->status != 0)
        fail_msg("connect failed: %d %s", cl->status, cl->errmsg);
    assert_non_null(cl->c);
    return cl->c;
}

/* Write msg, read it back from the echo server. */
static void
echo_roundtrip(fixture_t *f, test_client_t *cl, const char *msg)
{
    uv_buf_t b = uv_buf_init((char *)msg, (unsigned)strlen(msg));
    size_t before = cl->len;

    assert_int_equal(sl_upconn_write(cl->c, &b, 1, test_write_cb, cl), 0);
    assert_int_equal(cl->writes_done, 0); /* never synchronous */
    assert_int_equal(sl_upconn_read_start(cl->c, test_read_cb, cl), 0);
    assert_true(test_run_until_len(&f->loop, cl, before + strlen(msg), 3000));
    assert_memory_equal(cl->data + before, msg, strlen(msg));
    assert_true(cl->writes_done >= 1);
    assert_int_equal(cl->write_status, 0);
    assert_int_equal(sl_upconn_read_stop(cl->c), 0);
}

static void
test_echo_and_reuse(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    test_client_t a = {0}, b = {0};
    sl_upconn_t *c1;

    c1 = connect_ok(f, pool, &t, &a);
    assert_false(a.sync);
    assert_int_equal(sl_upconn_reused(c1), 0);
    assert_string_equal(sl_upconn_peer_ip(c1), "127.0.0.1");
    assert_int_equal(sl_upconn_peer_port(c1), f->srv.port);
    echo_roundtrip(f, &a, "hello upstream");
    sl_upconn_release(c1, 1);

    /* The pooled connection comes back at once, same socket. */
    connect_ok(f, pool, &t, &b);
    assert_true(b.sync);
    assert_ptr_equal(b.c, c1);
    assert_int_equal(sl_upconn_reused(b.c), 1);
    assert_int_equal(f->srv.accepted, 1);
    echo_roundtrip(f, &b, "second request");

    /* Released while still reading (the usual case: the response is
     * complete, nobody stops reading first) - still pooled. */
    assert_int_equal(sl_upconn_read_start(b.c, test_read_cb, &b), 0);
    assert_int_equal(sl_upconn_read_start(b.c, test_read_cb, &b), 0);
    sl_upconn_release(b.c, 1);
    test_client_reset(&b);
    connect_ok(f, pool, &t, &b);
    assert_true(b.sync);
    assert_ptr_equal(b.c, c1);
    echo_roundtrip(f, &b, "third request");
    sl_upconn_release(b.c, 0);
    assert_true(test_run_until(&f->loop, &f->srv.peer_closed, 2000));
    assert_int_equal(f->srv.peer_closed, 1);

    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
}

static void
test_server_closed_idle_not_reused(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    test_client_t a = {0}, b = {0}, c = {0};

    connect_ok(f, pool, &t, &a);
    echo_roundtrip(f, &a, "x");
    sl_upconn_release(a.c, 1);

    /* The server drops it while it is idle in the pool. */
    test_srv_drop_conns(&f->srv);
    test_run_for(&f->loop, 50);

    connect_ok(f, pool, &t, &b);
    assert_int_equal(sl_upconn_reused(b.c), 0);
    assert_int_equal(f->srv.accepted, 2);
    echo_roundtrip(f, &b, "fresh");
    sl_upconn_release(b.c, 1);

    /* Same again, but ask for the connection as soon as the server's close
     * took effect: whether the idle watcher or the check at hand-out time
     * notices, the dead socket must not come back. */
    test_srv_drop_conns(&f->srv);
    while (test_srv_open_conns(&f->srv) > 0 || f->srv.conns != NULL)
        uv_run(&f->loop, UV_RUN_NOWAIT);
    usleep(20000); /* let the FIN arrive */
    connect_ok(f, pool, &t, &c);
    assert_int_equal(sl_upconn_reused(c.c), 0);
    echo_roundtrip(f, &c, "fresh again");
    sl_upconn_release(c.c, 0);

    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
    test_client_reset(&c);
}

static void
test_unread_data_not_pooled(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    test_client_t a = {0}, b = {0};
    uv_buf_t buf = uv_buf_init("unread", 6);

    connect_ok(f, pool, &t, &a);
    assert_int_equal(sl_upconn_write(a.c, &buf, 1, test_write_cb, &a), 0);
    assert_true(test_run_until(&f->loop, &a.writes_done, 2000));
    while (f->srv.echoed < 6)
        test_run_for(&f->loop, 5);
    usleep(20000); /* the echo is now waiting unread */
    sl_upconn_release(a.c, 1);
    /* Like nginx's keepalive cache, the pool learns about bytes or a close
     * on an idle plain-TCP connection from its idle watcher (next loop
     * turn), not from a probe on every release. */
    test_run_for(&f->loop, 5);

    connect_ok(f, pool, &t, &b);
    assert_int_equal(sl_upconn_reused(b.c), 0);
    sl_upconn_release(b.c, 0);
    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
}

static void
test_idle_timeout_and_limit(void **state)
{
    fixture_t *f = *state;
    sl_uppool_options_t o = {.keepalive_max_idle = 1, .keepalive_timeout_ms = 300};
    sl_uppool_t *pool = sl_uppool_new(&f->loop, &o);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    test_client_t a = {0}, b = {0}, c = {0};
    uint64_t t0;

    connect_ok(f, pool, &t, &a);
    connect_ok(f, pool, &t, &b);
    assert_int_equal(f->srv.accepted, 2);
    t0 = uv_hrtime();
    sl_upconn_release(a.c, 1);
    sl_upconn_release(b.c, 1); /* over the limit: closed */
    assert_true(test_run_until(&f->loop, &f->srv.peer_closed, 2000));
    assert_int_equal(f->srv.peer_closed, 1);

    while (f->srv.peer_closed < 2 && (uv_hrtime() - t0) / 1000000u < 3000)
        test_run_for(&f->loop, 5);
    assert_int_equal(f->srv.peer_closed, 2);
    assert_true((uv_hrtime() - t0) / 1000000u >= 250); /* not before keepalive_timeout_ms */
    connect_ok(f, pool, &t, &c);
    assert_int_equal(sl_upconn_reused(c.c), 0);
    sl_upconn_release(c.c, 0);

    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
    test_client_reset(&c);
}

/* The idle timeout is lazy (a taken connection leaves its timer armed):
 * the old firing must neither close a connection that is busy nor one that
 * went idle again since; the timeout counts from the last release. */
static void
test_idle_timeout_counts_from_last_release(void **state)
{
    fixture_t *f = *state;
    sl_uppool_options_t o = {.keepalive_max_idle = 4, .keepalive_timeout_ms = 400};
    sl_uppool_t *pool = sl_uppool_new(&f->loop, &o);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    test_client_t a = {0}, b = {0}, c = {0};
    uint64_t t0, t1;

    connect_ok(f, pool, &t, &a);
    echo_roundtrip(f, &a, "first");
    t0 = uv_hrtime();
    sl_upconn_release(a.c, 1);
    test_run_for(&f->loop, 200);
    connect_ok(f, pool, &t, &b); /* taken before its deadline */
    assert_int_equal(sl_upconn_reused(b.c), 1);
    while ((uv_hrtime() - t0) / 1000000u < 700) /* past the first deadline, busy */
        test_run_for(&f->loop, 20);
    assert_int_equal(f->srv.peer_closed, 0);
    echo_roundtrip(f, &b, "busy");
    sl_upconn_release(b.c, 1);
    test_run_for(&f->loop, 200);
    connect_ok(f, pool, &t, &c); /* idle again, then taken again */
    assert_int_equal(sl_upconn_reused(c.c), 1);
    t1 = uv_hrtime();
    sl_upconn_release(c.c, 1);
    while (f->srv.peer_closed < 1 && (uv_hrtime() - t1) / 1000000u < 3000)
        test_run_for(&f->loop, 5);
    assert_int_equal(f->srv.peer_closed, 1);
    assert_true((uv_hrtime() - t1) / 1000000u >= 350); /* from the last release */
    assert_int_equal(f->srv.accepted, 1);

    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
    test_client_reset(&c);
}

static void
test_pooling_off(void **state)
{
    fixture_t *f = *state;
    sl_uppool_options_t o = {.keepalive_max_idle = 0};
    sl_uppool_t *pool = sl_uppool_new(&f->loop, &o);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    test_client_t a = {0}, b = {0};

    connect_ok(f, pool, &t, &a);
    echo_roundtrip(f, &a, "once");
    sl_upconn_release(a.c, 1);
    connect_ok(f, pool, &t, &b);
    assert_int_equal(sl_upconn_reused(b.c), 0);
    assert_int_equal(f->srv.accepted, 2);
    sl_upconn_release(b.c, 1);
    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
}

static void
test_refused(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    int port = test_dead_port();
    sl_upstream_target_t t = target("127.0.0.1", port);
    test_client_t a = {0};

    assert_true(port > 0);
    assert_int_equal(test_connect(pool, &t, &a), 0);
    assert_true(test_run_until(&f->loop, &a.connected, 3000));
    print_message("refused: %s\n", a.errmsg);
    assert_int_equal(a.status, UV_ECONNREFUSED);
    assert_null(a.c);
    assert_non_null(strstr(a.errmsg, "refused"));
    sl_uppool_free(pool);
}

static void
test_bad_arguments(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("", 80);
    test_client_t a = {0};

    assert_true(test_connect(pool, &t, &a) < 0);
    t = target("127.0.0.1", 0);
    assert_true(test_connect(pool, &t, &a) < 0);
    test_run_for(&f->loop, 10);
    assert_int_equal(a.connected, 0);
    sl_uppool_free(pool);
}

static void
test_cancel_pending(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    sl_upstream_target_t tn = target("localhost", f->srv.port);
    test_client_t a = {0}, b = {0}, c = {0};

    /* Cancelled while the TCP connect is in flight. */
    assert_int_equal(test_connect(pool, &t, &a), 0);
    assert_non_null(a.pending);
    sl_upconnect_cancel(a.pending);
    /* Cancelled while the name is being resolved. */
    assert_int_equal(test_connect(pool, &tn, &b), 0);
    assert_non_null(b.pending);
    sl_upconnect_cancel(b.pending);
    assert_int_equal(test_connect(pool, &t, &c), 0);
    assert_true(test_run_until(&f->loop, &c.connected, 3000));
    test_run_for(&f->loop, 50);
    assert_int_equal(a.connected, 0);
    assert_int_equal(b.connected, 0);
    assert_int_equal(c.connected, 1);
    assert_int_equal(c.status, 0);
    sl_upconn_release(c.c, 1);

    /* Left pending when the pool goes away. */
    test_client_reset(&c);
    assert_int_equal(test_connect(pool, &tn, &c), 0);
    sl_uppool_free(pool);
    test_run_for(&f->loop, 100);
    assert_int_equal(c.connected, 0);
}

static void
test_release_silences_callbacks(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t;
    test_client_t a = {0};
    size_t big = 8u << 20;
    char *data = calloc(1, big);
    uv_buf_t b = uv_buf_init(data, (unsigned)big);

    t = target("127.0.0.1", f->silent.port);
    connect_ok(f, pool, &t, &a);
    /* Nobody reads on the other side: the write stays pending. */
    assert_int_equal(sl_upconn_write(a.c, &b, 1, test_write_cb, &a), 0);
    assert_int_equal(sl_upconn_read_start(a.c, test_read_cb, &a), 0);
    test_run_for(&f->loop, 30);
    assert_int_equal(a.writes_done, 0);
    sl_upconn_release(a.c, 1); /* not clean: closed, not pooled */
    test_run_for(&f->loop, 50);
    assert_int_equal(a.writes_done, 0);
    assert_int_equal(a.ended, 0);
    free(data);
    test_run_for(&f->loop, 10);
    sl_uppool_free(pool);
}

static void
test_read_stop_backpressure(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    test_client_t a = {0};
    size_t big = 2u << 20, i;
    char *data = malloc(big);
    uv_buf_t b = uv_buf_init(data, (unsigned)big);
    size_t seen;

    for (i = 0; i < big; i++)
        data[i] = (char)('a' + i % 26);
    connect_ok(f, pool, &t, &a);
    a.stop_after = 1; /* stop after the first chunk */
    assert_int_equal(sl_upconn_write(a.c, &b, 1, test_write_cb, &a), 0);
    assert_int_equal(sl_upconn_read_start(a.c, test_read_cb, &a), 0);
    assert_true(test_run_until_len(&f->loop, &a, 1, 3000));
    seen = a.len;
    test_run_for(&f->loop, 100);
    assert_int_equal(a.len, seen); /* nothing while stopped */
    assert_int_equal(a.reads, 1);

    assert_int_equal(sl_upconn_read_start(a.c, test_read_cb, &a), 0);
    assert_true(test_run_until_len(&f->loop, &a, big, 5000));
    assert_int_equal(a.len, big);
    assert_memory_equal(a.data, data, big);
    assert_true(test_run_until(&f->loop, &a.writes_done, 3000));
    sl_upconn_release(a.c, 1);
    sl_uppool_free(pool);
    free(data);
    test_client_reset(&a);
}

static void
test_peer_eof_reported(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("127.0.0.1", f->srv.port);
    test_client_t a = {0}, b = {0};

    connect_ok(f, pool, &t, &a);
    assert_int_equal(sl_upconn_read_start(a.c, test_read_cb, &a), 0);
    assert_true(test_run_until(&f->loop, &f->srv.accepted, 2000));
    test_srv_drop_conns(&f->srv);
    assert_true(test_run_until(&f->loop, &a.ended, 2000));
    assert_int_equal(a.end_status, UV_EOF);
    assert_int_equal(a.ended, 1);
    sl_upconn_release(a.c, 1); /* EOF seen: closed, not pooled */
    connect_ok(f, pool, &t, &b);
    assert_int_equal(sl_upconn_reused(b.c), 0);
    sl_upconn_release(b.c, 0);
    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
}

/* ---- DNS ---- */

typedef struct dns_result {
    int called;
    int status;
    size_t n;
    int has_v4_loopback;
    char errmsg[400];
} dns_result_t;

static void
dns_cb(void *arg, int status, const struct sockaddr_storage *addrs, size_t n, const char *errmsg)
{
    dns_result_t *r = arg;
    size_t i;

    r->called++;
    r->status = status;
    r->n = n;
    for (i = 0; i < n; i++)
        if (addrs[i].ss_family == AF_INET &&
            ((const struct sockaddr_in *)&addrs[i])->sin_addr.s_addr == htonl(INADDR_LOOPBACK))
            r->has_v4_loopback = 1;
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", errmsg ? errmsg : "");
}

static void
test_dns_cache_and_literals(void **state)
{
    fixture_t *f = *state;
    char err[200];
    sl_dns_t *d = sl_dns_new(&f->loop, NULL, err, sizeof(err));
    sl_dns_req_t *req;
    dns_result_t r1 = {0}, r2 = {0}, r3 = {0}, r4 = {0};
    struct sockaddr_storage ss;

    assert_non_null(d);
    /* "localhost" is in the hosts file, read first and at once... */
    assert_int_equal(sl_dns_resolve(d, "localhost", dns_cb, &r1, &req), 0);
    assert_null(req);
    assert_int_equal(r1.called, 1);
    assert_int_equal(r1.status, 0);
    assert_true(r1.has_v4_loopback);
    assert_true(r1.n >= 1);
    /* ...the second is answered from the cache, before resolve returns. */
    assert_int_equal(sl_dns_resolve(d, "LOCALHOST", dns_cb, &r2, &req), 0);
    assert_null(req);
    assert_int_equal(r2.called, 1);
    assert_int_equal(r2.n, r1.n);

    /* Literals never reach a name server. */
    assert_int_equal(sl_dns_resolve(d, "127.0.0.1", dns_cb, &r3, &req), 0);
    assert_int_equal(r3.called, 1);
    assert_true(r3.has_v4_loopback);
    assert_int_equal(sl_dns_resolve(d, "[::1]", dns_cb, &r4, &req), 0);
    assert_int_equal(r4.called, 1);
    assert_int_equal(r4.status, 0);
    assert_true(sl_dns_parse_ip("::1", &ss));
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_false(sl_dns_parse_ip("localhost", &ss));
    assert_false(sl_dns_parse_ip("1.2.3", &ss));

    sl_dns_free(d);
}

/* The first IPv4 address of an answer, host order (0: none). */
static void
dns_first_cb(void *arg, int status, const struct sockaddr_storage *addrs, size_t n,
             const char *errmsg)
{
    uint32_t *first = arg;

    (void)errmsg;
    *first = status == 0 && n > 0 && addrs[0].ss_family == AF_INET
                 ? ntohl(((const struct sockaddr_in *)&addrs[0])->sin_addr.s_addr)
                 : 0;
}

static void
hosts_write(const char *path, int third)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    for (int i = 0; i < 40; i++)
        fprintf(fp, "10.0.%d.%d n%d.test\n", third, i + 1, i);
    fclose(fp);
}

/* The cache is a hash table by name (case folded): with dns_cache_size 16
 * and 40 names stored, the 16 stored last answer from the cache (the hosts
 * file changed meanwhile, and is read again on a miss), the 24 before them
 * were evicted, least recently stored first. */
static void
test_dns_cache_eviction(void **state)
{
    fixture_t *f = *state;
    char err[200], path[] = "/tmp/sluice-test-hosts-XXXXXX", name[32];
    sl_dns_options_t o = SL_DNS_OPTIONS_DEFAULT;
    sl_dns_req_t *req;
    uint32_t got;
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    close(fd);
    hosts_write(path, 0);
    o.hostsfile = path;
    o.cache_size = 16;
    sl_dns_t *d = sl_dns_new(&f->loop, &o, err, sizeof(err));
    assert_non_null(d);
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof(name), "n%d.test", i);
        got = 1;
        assert_int_equal(sl_dns_resolve(d, name, dns_first_cb, &got, &req), 0);
        assert_null(req);
        assert_int_equal(got, 0x0a000000u | (uint32_t)(i + 1));
    }
    hosts_write(path, 1);
    for (int i = 39; i >= 0; i--) { /* cached ones first: a miss stores and evicts */
        snprintf(name, sizeof(name), "N%d.Test", i);
        got = 1;
        assert_int_equal(sl_dns_resolve(d, name, dns_first_cb, &got, &req), 0);
        assert_null(req);
        if (i >= 24)
            assert_int_equal(got, 0x0a000000u | (uint32_t)(i + 1)); /* cached */
        else
            assert_int_equal(got, 0x0a000100u | (uint32_t)(i + 1)); /* evicted, read again */
    }
    sl_dns_free(d);
    unlink(path);
    unsetenv("CARES_HOSTS"); /* dns_hostsfile goes to c-ares through it: back to /etc/hosts */
}

static void
test_dns_invalid_fails(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("nonexistent.invalid", 80);
    test_client_t a = {0};

    assert_int_equal(test_connect(pool, &t, &a), 0);
    assert_false(a.connected); /* failures are never synchronous */
    assert_true(test_run_until(&f->loop, &a.connected, 3000));
    print_message("dns: %s\n", a.errmsg);
    assert_int_equal(a.status, UV_EAI_NONAME);
    assert_null(a.c);
    assert_non_null(strstr(a.errmsg, "nonexistent.invalid"));
    assert_non_null(strstr(a.errmsg, "resolve"));
    sl_uppool_free(pool);
}

static void
test_connect_by_name(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = target("localhost", f->srv.port);
    test_client_t a = {0};

    /* "localhost" may resolve to ::1 first, where nobody listens: the
     * next address must be tried within the same timeout. */
    connect_ok(f, pool, &t, &a);
    assert_string_equal(sl_upconn_peer_ip(a.c), "127.0.0.1");
    echo_roundtrip(f, &a, "by name");
    sl_upconn_release(a.c, 0);
    sl_uppool_free(pool);
    test_client_reset(&a);
}

static void
test_connect_timeout(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t;
    test_client_t a = {0};
    uint64_t t0, ms;

    /* Accepts, never speaks TLS: the handshake is what times out. */
    t = target("127.0.0.1", f->silent.port);
    t.tls = 1;
    t.tls_verify = 0;
    t.connect_timeout_ms = 200;
    t0 = uv_hrtime();
    assert_int_equal(test_connect(pool, &t, &a), 0);
    assert_true(test_run_until(&f->loop, &a.connected, 3000));
    ms = (uv_hrtime() - t0) / 1000000u;
    print_message("timeout: %s (%llu ms)\n", a.errmsg, (unsigned long long)ms);
    assert_int_equal(a.status, UV_ETIMEDOUT);
    assert_null(a.c);
    assert_non_null(strstr(a.errmsg, "timed out"));
    assert_true(ms >= 150 && ms < 1500);
    sl_uppool_free(pool);
}

static void
test_cancel_during_handshake(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t;
    test_client_t a = {0};

    /* The silent server never answers the ClientHello, so the connect is
     * certainly mid-handshake when cancelled. */
    t = target("127.0.0.1", f->silent.port);
    t.tls = 1;
    t.tls_verify = 0; /* loading the CA store takes a while under ASan */
    t.connect_timeout_ms = 1000;
    assert_int_equal(test_connect(pool, &t, &a), 0);
    assert_true(test_run_until(&f->loop, &f->silent.accepted, 3000));
    test_run_for(&f->loop, 10);
    if (a.connected)
        fail_msg("connect answered early: %s", a.errmsg);
    sl_upconnect_cancel(a.pending);
    test_run_for(&f->loop, 1100); /* past the connect timeout */
    assert_int_equal(a.connected, 0);
    sl_uppool_free(pool);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_echo_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_closed_idle_not_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unread_data_not_pooled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout_and_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_timeout_counts_from_last_release, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_pooling_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_release_silences_callbacks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_stop_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_eof_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_cache_and_literals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_invalid_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_cache_eviction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_during_handshake, setup, teardown),
    };

    /* As in the gateway's worker: a peer closing mid-write must give EPIPE,
     * not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
