/* guard.c - test plugin "t-guard": the host's checks at the ABI boundary.
 * Each call below must be refused (-1); the results go to the client as
 * X-Guard-Access / -Body / -Late, one character per call: '-' refused, 'X'
 * accepted (a hole).  Legitimate calls are made too ('+' when accepted). */

#include "tp_util.h"

static int
config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **out)
{
    *out = NULL;
    return 0;
}

typedef struct ctx {
    char access[32], body[32];
    const sl_api_t *api;
    sl_header_block_t *block; /* applied too late, in header_filter; freed after log */
} ctx_t;

/* want: 0 = must be refused, 1 = must be accepted */
static void
rec(char *s, int rc, int want)
{
    size_t n = strlen(s);
    s[n] = want ? (rc == 0 ? '+' : 'x') : (rc == -1 ? '-' : 'X');
    s[n + 1] = '\0';
}

static void
free_block(void *arg)
{
    ctx_t *x = arg;
    x->api->header_block_free(x->block);
}

static sl_status_t
access_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    ctx_t *x = api->palloc(r, sizeof(*x));
    char *s = x->access;

    memset(x, 0, sizeof(*x));
    api->ctx_set(r, x);
    rec(s, api->req_header_set(r, SL_STR("X-Ok"), SL_STR("fine")), 1);
    rec(s, api->req_header_set(r, SL_STR("X-Bad\r\nEvil"), SL_STR("v")), 0);
    rec(s, api->req_header_set(r, SL_STR("X Space"), SL_STR("v")), 0);
    rec(s, api->req_header_set(r, SL_STR(""), SL_STR("v")), 0);
    rec(s, api->req_header_set(r, SL_STR("X-Val"), SL_STR("a\r\nInjected: 1")), 0);
    rec(s, api->req_header_add(r, SL_STR("X-Val"), SL_STR("a\nb")), 0);
    rec(s, api->req_header_add(r, SL_STR("X-Val"), (sl_str_t){"a\0b", 3}), 0);
    rec(s, api->req_header_remove(r, SL_STR("X:Colon")), 0);
    rec(s, api->resp_header_set(r, SL_STR("X-R"), SL_STR("a\rb")), 0);
    rec(s, api->resp_header_add(r, SL_STR("X(R)"), SL_STR("v")), 0);
    rec(s,
        api->upstream_set(r, SL_STR("http"), SL_STR("127.0.0.1\r\nX: y"), 80, SL_STR("/"),
                          SL_STR("")),
        0);
    rec(s, api->upstream_set(r, SL_STR("http"), SL_STR("h"), 80, SL_STR("/a b"), SL_STR("")), 0);
    rec(s, api->upstream_set(r, SL_STR("http"), SL_STR("h"), 80, SL_STR("/a"), SL_STR("q\n")), 0);
    rec(s, api->req_body_set(r, "early", 5), 0); /* body not complete yet */
    rec(s, api->respond(r, 200, SL_STR("text/plain\r\nX: y"), SL_STR("")), 0);
    { /* since 1.5: several at once; values checked eight bytes at a time */
        const sl_str_t ok_n[] = {SL_STR("X-Long"), SL_STR("X-Gone")};
        const sl_str_t ok_v[] = {SL_STR("0123456789abcdef-long-ok"), {NULL, 0}};
        const sl_str_t many[] = {SL_STR("X-Many")}, bad_n[] = {SL_STR("X-Many"), SL_STR("X Bad")};
        const sl_str_t cr[] = {SL_STR("01234567\r\nX: y")}, lf[] = {SL_STR("0123456789abcde\n")};
        const sl_str_t nul[] = {{"0123456789\0bcdef0", 17}}, fine[] = {SL_STR("ok"), SL_STR("ok")};

        rec(s, api->req_headers_set(r, ok_n, ok_v, 2), 1);
        rec(s, api->req_headers_set(r, many, cr, 1), 0);    /* CR in the first word */
        rec(s, api->req_headers_set(r, many, lf, 1), 0);    /* LF, last byte of the second */
        rec(s, api->req_headers_set(r, many, nul, 1), 0);   /* NUL inside the second */
        rec(s, api->req_headers_set(r, bad_n, fine, 2), 0); /* nothing set: X-Many stays out */
        rec(s, api->req_headers_set(r, NULL, NULL, 1), 0);
    }
    { /* since 1.7: a block is checked when made; applied, the request keeps
       * a copy (freed at once here, the fields must still go upstream) */
        const sl_str_t bn[] = {SL_STR("X-Block"), SL_STR("X-Gone-Too")}, cr[] = {SL_STR("a\rb")};
        const sl_str_t bv[] = {SL_STR("b1"), {NULL, 0}}, bad_n[] = {SL_STR("X Block")};
        sl_header_block_t *b = api->header_block_new(bn, bv, 2);

        rec(s, api->header_block_new(bn, cr, 1) ? 0 : -1, 0);
        rec(s, api->header_block_new(bad_n, bv, 1) ? 0 : -1, 0);
        rec(s, api->header_block_new(NULL, NULL, 1) ? 0 : -1, 0);
        rec(s, api->req_headers_apply(r, NULL), 0);
        rec(s, api->req_headers_apply(r, b), 1);
        api->header_block_free(b);
        x->api = api;
        x->block = api->header_block_new(bn, bv, 1);
        api->cleanup_add(r, free_block, x);
    }
    return SL_STATUS_CONTINUE;
}

static sl_status_t
body_phase(const sl_api_t *api, sl_req_t *r, void *conf)
{
    ctx_t *x = api->ctx_get(r);
    sl_str_t b = api->req_body(r);

    if (x == NULL)
        return SL_STATUS_ERROR;
    if (b.len)
        rec(x->body, api->req_body_set(r, "replaced", 8), 1);
    rec(x->body, api->pend(r, 0, NULL, NULL) == 0 && api->pend(r, 0, NULL, NULL) == -1 ? 0 : 1, 1);
    return api->resume(r, SL_STATUS_CONTINUE) == 0 ? SL_STATUS_PENDING : SL_STATUS_ERROR;
}

static sl_status_t
header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    ctx_t *x = api->ctx_get(r);
    char late[32] = "";

    if (x == NULL)
        return SL_STATUS_CONTINUE;
    rec(late, api->req_header_set(r, SL_STR("X-Late"), SL_STR("v")), 0);
    rec(late, api->req_header_remove(r, SL_STR("X-Ok")), 0);
    rec(late, api->req_body_set(r, "late", 4), 0);
    rec(late, api->upstream_set(r, SL_STR("http"), SL_STR("h"), 80, SL_STR("/"), SL_STR("")), 0);
    rec(late, api->pend(r, 0, NULL, NULL), 0);
    rec(late, api->resume(r, SL_STATUS_CONTINUE), 0);
    rec(late,
        api->req_headers_set(r, (const sl_str_t[]){SL_STR("X-Late")},
                             (const sl_str_t[]){SL_STR("v")}, 1),
        0);
    rec(late, api->req_headers_apply(r, x->block), 0);
    rec(late, api->resp_header_set(r, SL_STR("X-Late-Ok"), SL_STR("1")), 1);
    api->resp_header_set(r, SL_STR("X-Guard-Access"), (sl_str_t){x->access, strlen(x->access)});
    api->resp_header_set(r, SL_STR("X-Guard-Body"), (sl_str_t){x->body, strlen(x->body)});
    api->resp_header_set(r, SL_STR("X-Guard-Late"), (sl_str_t){late, strlen(late)});
    return SL_STATUS_CONTINUE;
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "t-guard",
    "0.0.1",
    800,
    .config_parse = config_parse,
    .access = access_phase,
    .body = body_phase,
    .header_filter = header_filter,
};
