/* test_upstream_tls.c - TLS upstream connections against an OpenSSL echo
 * server in the test, with a self-signed certificate made on the spot. */

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "upstream_helpers.h"

static test_cert_t cert;

typedef struct fixture {
    uv_loop_t loop;
    test_tls_srv_t srv;
} fixture_t;

static int
group_setup(void **state)
{
    (void)state;
    return test_cert_make(&cert);
}

static int
group_teardown(void **state)
{
    (void)state;
    test_cert_free(&cert);
    return 0;
}

static int
setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));

    /* Each test decides what the CA store is. */
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    assert_int_equal(uv_loop_init(&f->loop), 0);
    assert_int_equal(test_tls_srv_start(&f->srv, &cert), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture_t *f = *state;

    test_tls_srv_stop(&f->srv);
    assert_int_equal(test_loop_finish(&f->loop), 0);
    unsetenv("SSL_CERT_FILE");
    free(f);
    return 0;
}

static sl_upstream_target_t
tls_target(const char *host, int port, int verify)
{
    sl_upstream_target_t t = {1, host, port, verify, 3000, NULL};
    return t;
}

static int
connect_wait(fixture_t *f, sl_uppool_t *pool, const sl_upstream_target_t *t, test_client_t *cl)
{
    assert_int_equal(test_connect(pool, t, cl), 0);
    assert_true(test_run_until(&f->loop, &cl->connected, 5000));
    return cl->status;
}

static void
echo_roundtrip(fixture_t *f, test_client_t *cl, const char *msg)
{
    uv_buf_t b = uv_buf_init((char *)msg, (unsigned)strlen(msg));
    size_t before = cl->len;

    assert_int_equal(sl_upconn_write(cl->c, &b, 1, test_write_cb, cl), 0);
    assert_int_equal(sl_upconn_read_start(cl->c, test_read_cb, cl), 0);
    assert_true(test_run_until_len(&f->loop, cl, before + strlen(msg), 5000));
    assert_memory_equal(cl->data + before, msg, strlen(msg));
    assert_true(test_run_until(&f->loop, &cl->writes_done, 2000));
    assert_int_equal(cl->write_status, 0);
    assert_int_equal(sl_upconn_read_stop(cl->c), 0);
}

static void
test_tls_noverify_and_reuse(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = tls_target("127.0.0.1", f->srv.port, 0);
    test_client_t a = {0}, b = {0};

    if (connect_wait(f, pool, &t, &a) != 0)
        fail_msg("TLS connect failed: %s", a.errmsg);
    assert_int_equal(sl_upconn_reused(a.c), 0);
    assert_string_equal(sl_upconn_peer_ip(a.c), "127.0.0.1");
    echo_roundtrip(f, &a, "over TLS");
    /* Released while still reading; session tickets arriving while idle
     * must not disqualify the connection, so give them time to arrive. */
    assert_int_equal(sl_upconn_read_start(a.c, test_read_cb, &a), 0);
    sl_upconn_release(a.c, 1);
    test_run_for(&f->loop, 50);

    if (connect_wait(f, pool, &t, &b) != 0)
        fail_msg("TLS connect failed: %s", b.errmsg);
    assert_true(b.sync);
    assert_int_equal(sl_upconn_reused(b.c), 1);
    assert_int_equal(f->srv.accepted, 1);
    echo_roundtrip(f, &b, "again over the same connection");

    /* A verifying request must not get the non-verifying connection. */
    sl_upconn_release(b.c, 1);
    test_client_reset(&a);
    t.tls_verify = 1;
    assert_int_equal(connect_wait(f, pool, &t, &a), SL_UPERR_TLS);
    test_run_for(&f->loop, 20);
    assert_int_equal(f->srv.accepted, 2);

    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
}

static void
test_tls_verify_untrusted(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = tls_target("localhost", f->srv.port, 1);
    test_client_t a = {0};

    assert_int_equal(connect_wait(f, pool, &t, &a), SL_UPERR_TLS);
    assert_null(a.c);
    print_message("untrusted: %s\n", a.errmsg);
    assert_non_null(strstr(a.errmsg, "certificate verify failed"));
    sl_uppool_free(pool);
}

static void
test_tls_verify_trusted(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool;
    sl_upstream_target_t t = tls_target("localhost", f->srv.port, 1);
    test_client_t a = {0}, b = {0}, c = {0};

    /* The CA store is read when the pool's first verifying TLS context is
     * made, so the variable must be set before that. */
    setenv("SSL_CERT_FILE", cert.pem_path, 1);
    pool = sl_uppool_new(&f->loop, NULL);
    if (connect_wait(f, pool, &t, &a) != 0)
        fail_msg("verified connect failed: %s", a.errmsg);
    assert_int_equal(sl_upconn_tls_resumed(a.c), 0);
    echo_roundtrip(f, &a, "verified");
    sl_upconn_release(a.c, 0);

    /* A second handshake to the same host resumes the session. */
    if (connect_wait(f, pool, &t, &b) != 0)
        fail_msg("second verified connect failed: %s", b.errmsg);
    assert_int_equal(sl_upconn_reused(b.c), 0);
    assert_int_equal(sl_upconn_tls_resumed(b.c), 1);
    echo_roundtrip(f, &b, "resumed");
    sl_upconn_release(b.c, 0);

    /* The IP SAN verifies an IP literal target too. */
    t = tls_target("127.0.0.1", f->srv.port, 1);
    if (connect_wait(f, pool, &t, &c) != 0)
        fail_msg("verified connect by IP failed: %s", c.errmsg);
    echo_roundtrip(f, &c, "by ip");
    sl_upconn_release(c.c, 0);

    sl_uppool_free(pool);
    test_client_reset(&a);
    test_client_reset(&b);
    test_client_reset(&c);
}

static void
test_tls_cancel_during_handshake(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = tls_target("127.0.0.1", f->srv.port, 0);
    test_client_t a = {0};

    assert_int_equal(test_connect(pool, &t, &a), 0);
    test_run_for(&f->loop, 2); /* TCP up, handshake under way */
    if (a.connected == 0)
        sl_upconnect_cancel(a.pending);
    else
        sl_upconn_release(a.c, 0);
    a.connected = 0;
    test_run_for(&f->loop, 100);
    assert_int_equal(a.connected, 0);
    sl_uppool_free(pool);
}

static void
test_tls_read_stop_backpressure(void **state)
{
    fixture_t *f = *state;
    sl_uppool_t *pool = sl_uppool_new(&f->loop, NULL);
    sl_upstream_target_t t = tls_target("127.0.0.1", f->srv.port, 0);
    test_client_t a = {0};
    size_t big = 1u << 20, i, seen;
    char *data = malloc(big);
    uv_buf_t b = uv_buf_init(data, (unsigned)big);

    for (i = 0; i < big; i++)
        data[i] = (char)('A' + i % 23);
    if (connect_wait(f, pool, &t, &a) != 0)
        fail_msg("TLS connect failed: %s", a.errmsg);
    a.stop_after = 1;
    assert_int_equal(sl_upconn_write(a.c, &b, 1, test_write_cb, &a), 0);
    assert_int_equal(sl_upconn_read_start(a.c, test_read_cb, &a), 0);
    assert_true(test_run_until_len(&f->loop, &a, 1, 5000));
    seen = a.len;
    test_run_for(&f->loop, 100);
    assert_int_equal(a.len, seen); /* nothing while stopped */

    assert_int_equal(sl_upconn_read_start(a.c, test_read_cb, &a), 0);
    assert_true(test_run_until_len(&f->loop, &a, big, 10000));
    assert_int_equal(a.len, big);
    assert_memory_equal(a.data, data, big);
    sl_upconn_release(a.c, 0);
    sl_uppool_free(pool);
    free(data);
    test_client_reset(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_tls_noverify_and_reuse, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_verify_untrusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_verify_trusted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_cancel_during_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tls_read_stop_backpressure, setup, teardown),
    };

    /* As in the gateway's worker: a peer closing mid-write must give EPIPE,
     * not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
