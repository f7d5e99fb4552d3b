/* test_testhost.c - libsluice-testhost drives the test plugins' phases
 * without a server: pauses resumed through the loop, a pause timing out,
 * a short-circuit, the boundary checks, filters and the log record. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <sluice/testhost.h>

static const char config[] =
    "_format_version: \"3.0\"\n"
    "services:\n"
    "- name: svc\n"
    "  url: https://api.example.com:8443/base\n"
    "  routes:\n"
    "  - {name: pa, paths: [/pa], plugins: [{name: t-pause, config: {delay_ms: 5}}]}\n"
    "  - {name: pr, paths: [/pr], plugins: [{name: t-pause, config: {action: respond}}]}\n"
    "  - {name: pn, paths: [/pn], plugins: [{name: t-pause, config: {action: never, "
    "timeout_ms: 50}}]}\n"
    "  - {name: pb, paths: [/pb], plugins: [{name: t-pause, config: {phase: body}}]}\n"
    "  - {name: guard, paths: [/guard], plugins: [{name: t-guard}]}\n"
    "  - {name: bal, paths: [/bal], plugins: [{name: t-balancer, config: {retry_on: [429], "
    "non_idempotent: true, targets: [{name: A, port: 1001, path: /a}, "
    "{name: B, port: 1002, path: /b, body: two}]}}]}\n";

static slt_host_t *
host(void)
{
    char *err = NULL;
    slt_host_t *h = slt_host_new(getenv("SLUICE_TEST_PLUGINS_DIR"), config, &err);
    if (h == NULL)
        fail_msg("%s", err ? err : "no host");
    return h;
}

static void
test_pause(void **state)
{
    slt_host_t *h = host();
    slt_req_t *t = slt_req_new(h, "GET", "/pa/x?q=1");

    assert_int_equal(slt_access(t), SL_STATUS_CONTINUE);
    assert_string_equal(slt_req_header_get(t, "x-paused"), "access");
    assert_string_equal(slt_upstream_url(t), "https://api.example.com:8443/base/x?q=1");
    slt_req_free(t);

    t = slt_req_new(h, "GET", "/pr");
    assert_int_equal(slt_access(t), SL_STATUS_RESPOND);
    assert_int_equal(slt_status(t), 202);
    assert_string_equal(slt_resp_body(t, NULL), "access");
    slt_req_free(t);

    t = slt_req_new(h, "POST", "/pb");
    slt_req_body(t, "hello", 5);
    assert_int_equal(slt_access(t), SL_STATUS_CONTINUE);
    assert_int_equal(slt_body(t), SL_STATUS_CONTINUE);
    assert_string_equal(slt_req_header_get(t, "x-paused"), "body");
    slt_req_free(t);

    t = slt_req_new(h, "GET", "/pn");
    assert_int_equal(slt_access(t), SL_STATUS_ERROR);
    assert_int_equal(slt_req_error(t), SL_REQERR_PENDING_TIMEOUT);
    slt_req_free(t);

    t = slt_req_new(h, "GET", "/nowhere");
    assert_int_equal(slt_access(t), -1);
    slt_req_free(t);
    slt_host_free(h);
}

static void
test_guard_filters_log(void **state)
{
    slt_host_t *h = host();
    slt_req_t *t = slt_req_new(h, "POST", "/guard");
    const char *out;
    size_t len;

    slt_req_header(t, "Host", "gw.example");
    slt_req_header(t, "X-Gone-Too", "client");
    slt_req_body(t, "original", 8);
    assert_int_equal(slt_access(t), SL_STATUS_CONTINUE);
    assert_int_equal(slt_body(t), SL_STATUS_CONTINUE);
    assert_string_equal(slt_req_body_get(t, &len), "replaced");
    assert_string_equal(slt_req_header_get(t, "x-ok"), "fine");
    const char *hdrs[] = {"Content-Type", "text/plain", NULL};
    assert_int_equal(slt_upstream_response(t, 200, hdrs), 0);
    assert_int_equal(slt_header_filter(t), SL_STATUS_CONTINUE);
    assert_string_equal(slt_resp_header(t, "x-guard-late"), "--------+");
    assert_string_equal(slt_resp_header(t, "x-guard-access"), "+--------------+---------+");
    assert_string_equal(slt_req_header_get(t, "x-long"), "0123456789abcdef-long-ok");
    assert_string_equal(slt_req_header_get(t, "x-block"), "b1"); /* 1.7: a block applied */
    assert_null(slt_req_header_get(t, "x-gone-too"));
    assert_null(slt_req_header_get(t, "x-many"));
    assert_int_equal(slt_body_filter(t, "abc", 3, 1, &out, &len), SL_STATUS_CONTINUE);
    assert_int_equal(len, 3);
    slt_log(t);
    const char *rec = slt_log_record(t);
    assert_non_null(rec);
    assert_non_null(strstr(rec, "\"status\":200"));
    slt_req_free(t);
    slt_host_free(h);
}

/* ABI 1.2: the balancer phase and upstream_retry, tries played by the test */
static void
test_balancer(void **state)
{
    slt_host_t *h = host();
    slt_req_t *t = slt_req_new(h, "POST", "/bal/x");
    size_t len;

    slt_req_body(t, "one", 3);
    assert_int_equal(slt_access(t), 0);
    assert_int_equal(slt_body(t), 0);
    assert_int_equal(slt_balancer(t, NULL), 0); /* first try: target A */
    assert_string_equal(slt_upstream_url(t), "http://127.0.0.1:1001/a");
    assert_string_equal(slt_req_header_get(t, "x-target"), "A");
    slt_upstream_response(t, 429, (const char *[]){"retry-after", "3", NULL});
    assert_int_equal(slt_header_filter(t), 0);
    assert_int_equal(slt_retry_asked(t), 1); /* rejected: the next try */
    sl_try_info_t ti = {.try_number = 2,
                        .retries_left = 4,
                        .failure = SL_TRY_STATUS,
                        .status = 429,
                        .may_have_reached = 1};
    assert_int_equal(slt_balancer(t, &ti), 0);
    assert_string_equal(slt_upstream_url(t), "http://127.0.0.1:1002/b");
    assert_string_equal(slt_req_header_get(t, "x-try"), "2");
    const char *body = slt_req_body_get(t, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(body, "two", 3); /* the body the balancer set */
    slt_upstream_response(t, 200, NULL);
    assert_int_equal(slt_header_filter(t), 0);
    assert_int_equal(slt_retry_asked(t), 0);
    assert_string_equal(slt_resp_header(t, "x-served-by"), "B");
    ti.try_number = 3; /* out of targets: the plugin answers itself */
    assert_int_equal(slt_balancer(t, &ti), 1);
    slt_log(t);
    slt_req_free(t);
    slt_host_free(h);
}

static void
test_bad_config(void **state)
{
    char *err = NULL;
    slt_host_t *h = slt_host_new(getenv("SLUICE_TEST_PLUGINS_DIR"),
                                 "_format_version: \"3.0\"\nplugins:\n- name: t-absent\n", &err);
    assert_null(h);
    assert_non_null(err);
    assert_non_null(strstr(err, "t-absent"));
    free(err);
}

/* ABI 1.3: node settings (api->setting_get) as slt_setting gave them,
 * defaults otherwise, NULL for unknown names; the request's HTTP version. */
static void
test_settings(void **state)
{
    const sl_api_t *api = slt_api();
    slt_host_t *h;
    slt_req_t *t;
    sl_str_t v;

    assert_int_equal(slt_setting("tracing_sampling_rate", "0.25"), 0);
    assert_int_equal(slt_setting("tracing_sampling_rate", "1.5"), -1);
    assert_int_equal(slt_setting("tracing_instrumentations", "off,balancer"), -1);
    assert_int_equal(slt_setting("tracing_instrumentations", "request,bogus"), -1);
    assert_int_equal(slt_setting("no_such_setting", "1"), -1);
    assert_int_equal(slt_setting("max_body_size", "16m"), 0);
    h = host();
    assert_string_equal(api->setting_get("tracing_sampling_rate"), "0.25");
    assert_string_equal(api->setting_get("max_body_size"), "16m");
    assert_string_equal(api->setting_get("tracing_instrumentations"), "all"); /* default */
    assert_null(api->setting_get("no_such_setting"));
    assert_null(api->setting_get("pid")); /* unset, no default */
    assert_null(api->setting_get("help"));
    t = slt_req_new(h, "GET", "/guard");
    v = api->req_http_version(slt_req_handle(t));
    assert_int_equal(v.len, 3);
    assert_memory_equal(v.ptr, "1.1", 3);
    slt_req_free(t);
    slt_host_free(h);
    assert_null(api->setting_get("tracing_sampling_rate")); /* unpublished with its host */
    assert_int_equal(slt_setting(NULL, NULL), 0);
    h = host();
    assert_string_equal(api->setting_get("tracing_sampling_rate"), "1.0");
    slt_host_free(h);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pause),    cmocka_unit_test(test_guard_filters_log),
        cmocka_unit_test(test_balancer), cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
