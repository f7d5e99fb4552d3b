/* test_serializer.c - the log record: the fast writer must produce the same
 * record as the json-c reference, for awkward input too (repeated and
 * redacted headers, control characters, repeated query keys, tries,
 * serialize values, a value merged into the record's own keys). */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "plugin/serializer.h"

static sl_req_t *
make_request(sl_pool_t *pool)
{
    sl_req_t *r = sl_pcalloc(pool, sizeof(*r));

    r->pool = pool;
    memcpy(r->id, "0123456789abcdef0123456789abcdef", 33);
    r->uri = SL_STR("/anything/v1/messages?beta=true&x=1&x=2&flag&e=%41%2Fb+c");
    r->path = SL_STR("/anything/v1/messages");
    r->query = SL_STR("beta=true&x=1&x=2&flag&e=%41%2Fb+c");
    r->host = SL_STR("localhost");
    r->method = SL_STR("POST");
    r->server_port = 8000;
    memcpy(r->client_ip, "127.0.0.1", 10);
    sl_headers_add(&r->client_headers, pool, SL_STR("Host"), SL_STR("localhost:8000"));
    sl_headers_add(&r->client_headers, pool, SL_STR("Authorization"), SL_STR("Bearer sk-secret"));
    sl_headers_add(&r->client_headers, pool, SL_STR("X-Api-Key"), SL_STR("sk-ant-secret"));
    sl_headers_add(&r->client_headers, pool, SL_STR("X-Multi"), SL_STR("one"));
    sl_headers_add(&r->client_headers, pool, SL_STR("x-multi"),
                   SL_STR("two \"quoted\" \\ \x01\t/"));
    sl_headers_add(&r->client_headers, pool, SL_STR("User-Agent"),
                   SL_STR("claude-cli/2.1.332 (é)"));
    sl_headers_add(&r->resp_headers, pool, SL_STR("Content-Type"), SL_STR("text/event-stream"));
    sl_headers_add(&r->resp_headers, pool, SL_STR("Set-Cookie"), SL_STR("a=1"));
    sl_headers_add(&r->resp_headers, pool, SL_STR("set-cookie"), SL_STR("b=2"));
    r->req_size = 1234;
    r->resp_bytes = 5678;
    r->status = 200;
    r->upstream_status = 200;
    r->upstream_uri = "/compatible-mode/v1/chat/completions?beta=true";
    r->source = SL_SOURCE_UPSTREAM;
    r->times[SL_TIME_START] = 1795637010482000;
    r->times[SL_TIME_UPSTREAM_START] = r->times[SL_TIME_START] + 300;
    r->times[SL_TIME_UPSTREAM_FIRST_BYTE] = r->times[SL_TIME_START] + 12000;
    r->times[SL_TIME_UPSTREAM_LAST_BYTE] = r->times[SL_TIME_START] + 15000;
    r->times[SL_TIME_RESPONSE_END] = r->times[SL_TIME_START] + 15500;
    r->ntries = 2;
    memcpy(r->tries[0].ip, "127.0.0.1", 10);
    r->tries[0].port = 9;
    r->tries[0].failed = 1;
    r->tries[0].code = 502;
    memcpy(r->tries[0].state, "failed", 7);
    memcpy(r->tries[1].ip, "::1", 4);
    r->tries[1].port = 8010;
    r->tries[1].start_us = r->times[SL_TIME_START] + 400;
    r->tries[1].latency_us = 2500;
    r->err = SL_REQERR_UPSTREAM_RESET;
    return r;
}

static void
assert_same(sl_req_t *r, const char *const *redact)
{
    sl_str_t fast, ref;

    assert_int_equal(sl_serialize(r, redact, &fast), SL_OK);
    assert_int_equal(sl_serialize_jsonc(r, redact, &ref), SL_OK);
    json_object *a = json_tokener_parse(fast.ptr);
    json_object *b = json_tokener_parse(ref.ptr);
    if (a == NULL)
        fail_msg("fast record is not JSON: %s", fast.ptr);
    assert_non_null(b);
    if (!json_object_equal(a, b))
        fail_msg("records differ:\nfast %s\nref  %s", fast.ptr, ref.ptr);
    json_object_put(a);
    json_object_put(b);
}

static void
test_same_record(void **state)
{
    sl_pool_t *pool = sl_pool_create(4096);
    sl_req_t *r = make_request(pool);
    const char *redact[] = {"x-api-key", "api-key", NULL};

    assert_same(r, NULL);
    assert_same(r, redact);

    /* serialize values: nested, scalars, a later value replacing one */
    assert_int_equal(sl_serialize_set(r, "ai.proxy.usage", SL_STR("{\"prompt_tokens\":3}")), SL_OK);
    assert_int_equal(sl_serialize_set(r, "ai.proxy.meta", SL_STR("{\"request_mode\":\"stream\"}")),
                     SL_OK);
    assert_int_equal(sl_serialize_set(r, "custom", SL_STR("1.5")), SL_OK);
    assert_int_equal(sl_serialize_set(r, "custom", SL_STR("true")), SL_OK);
    assert_int_equal(sl_serialize_set(r, "bad", SL_STR("{nope")), SL_ERROR);
    assert_same(r, redact);

    /* a value inside one of the record's own objects: merged (reference path) */
    assert_int_equal(sl_serialize_set(r, "request.extra", SL_STR("\"x\"")), SL_OK);
    sl_str_t out;
    assert_int_equal(sl_serialize(r, redact, &out), SL_OK);
    json_object *o = json_tokener_parse(out.ptr), *req, *v;
    assert_true(json_object_object_get_ex(o, "request", &req));
    assert_true(json_object_object_get_ex(req, "extra", &v));
    assert_true(json_object_object_get_ex(req, "method", &v)); /* merged, not replaced */
    json_object_put(o);

    /* gateway-made answer, no upstream, no query */
    sl_req_t *g = make_request(pool);
    g->query = (sl_str_t){NULL, 0};
    g->upstream_uri = NULL;
    g->upstream_status = 0;
    g->ntries = 0;
    g->err = SL_REQERR_NONE;
    g->source = SL_SOURCE_GATEWAY;
    assert_same(g, NULL);

    if (r->ser)
        json_object_put(r->ser);
    sl_pool_destroy(pool);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
