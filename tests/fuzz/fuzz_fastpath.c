/* fuzz_fastpath.c - libFuzzer harness holding ai-proxy's fast request path
 * (json_scan.c's wide string scan, count_tokens.c's shortcuts) equal to the
 * code it replaced (tests/unit/ai_proxy/ref_scan.c, ref_request.c).
 * Oracle, on every input: the same tokens or the same error and offset,
 * the same prompt estimate, the same token count of the raw bytes, and the
 * same translation (same result code and error; the same request, equal
 * after parsing with json-c and byte for byte). */

#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_scan.h"
#include "schema_host.h"

static void
conf_err(void *ud, const char *field, const char *msg)
{
    abort(); /* the fixed config below must parse */
}

static void
check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fast path differs from the reference: %s\n", what);
        abort();
    }
}

static json_object *
parse(const sl_ap_buf_t *b)
{
    json_tokener *tok = json_tokener_new();
    json_object *o;

    if (tok == NULL)
        abort();
    o = json_tokener_parse_ex(tok, b->ptr ? b->ptr : "", (int)b->len);
    check(o != NULL && json_tokener_get_parse_end(tok) == b->len, "translation is not JSON");
    json_tokener_free(tok);
    return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sl_ap_conf_t *conf;
    static const char cj[] = "{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
                             "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\","
                             "\"options\":{\"max_tokens\":8192,\"temperature\":1.0}}}";
    const char *src = (const char *)data;
    sl_jdoc_t a = {0}, b = {0};
    sl_ap_buf_t oa = {0}, ob = {0};
    sl_ap_req_info_t ia, ib;
    int ra, rb;
    uint32_t i;
    size_t k, ascii = 0;
    int64_t other = 0;

    sl_ap_conf_host(sl_ap_test_host());
    if (conf == NULL && sl_ap_conf_parse(cj, sizeof(cj) - 1, &conf, conf_err, NULL) != 0)
        abort();

    /* the string scan's SSE2 and AVX2 paths in turn (the CPU's choice
     * when it has no AVX2) */
    sl_json_wide(size & 1);
    ra = sl_json_parse(&a, src, size);
    rb = sl_ref_json_parse(&b, src, size);
    check(ra == rb, "parse result");
    if (ra == -1)
        check(a.err_off == b.err_off && strcmp(a.err, b.err) == 0, "error or its offset");
    if (ra == 0) {
        check(a.n == b.n, "token count");
        for (i = 0; i < a.n; i++) {
            const sl_jtok_t *x = &a.t[i], *y = &b.t[i];
            int hi = 0;

            check(x->type == y->type && x->esc == y->esc && x->start == y->start &&
                      x->len == y->len && x->next == y->next,
                  "a token");
            for (k = 0; x->type == SL_J_STR && k < x->len; k++)
                hi |= data[x->start + k] >= 0x80;
            check((x->hi != 0) == hi, "a string's non-ASCII flag");
            if (x->type == SL_J_STR)
                check(sl_ap_str_tokens(&a, (int)i) == sl_ap_text_tokens(src + x->start, x->len),
                      "a string's estimate");
        }
        if (a.t[0].type == SL_J_OBJ)
            check(sl_ap_estimate_tokens(&a) == sl_ref_estimate_tokens(&b), "prompt estimate");
    }
    for (k = 0; k < size; k++) {
        ascii += data[k] < 0x80;
        other += data[k] >= 0xC0;
    }
    check(sl_ap_text_tokens(src, size) == (int64_t)((ascii + 3) / 4) + other, "text tokens");

    memset(&ia, 0, sizeof(ia));
    memset(&ib, 0, sizeof(ib));
    ra = sl_ap_anthropic_request(&conf->t, src, size, &a, &oa, &ia);
    rb = sl_ref_anthropic_request(&conf->t, src, size, &b, &ob, &ib);
    check(ra == rb && ia.status == ib.status && strcmp(ia.errmsg, ib.errmsg) == 0,
          "translation result or error");
    if (ra == 0) {
        json_object *x = parse(&oa), *y = parse(&ob);

        check(json_object_equal(x, y), "translation (after parsing)");
        check(oa.len == ob.len && memcmp(oa.ptr, ob.ptr, oa.len) == 0, "translation bytes");
        check(ia.input_estimate == ib.input_estimate && ia.stream == ib.stream &&
                  ia.upstream_stream == ib.upstream_stream && ia.cache_marks == ib.cache_marks,
              "translation info");
        json_object_put(x);
        json_object_put(y);
    }
    sl_ap_buf_free(&oa);
    sl_ap_buf_free(&ob);
    sl_json_free(&a);
    sl_json_free(&b);
    return 0;
}
