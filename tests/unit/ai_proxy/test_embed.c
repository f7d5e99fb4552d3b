/* test_embed.c - llm/v1/embeddings to gemini, Vertex AI, bedrock (Titan,
 * Cohere Embed) and cohere (embeddings.c): the request each dialect gets,
 * the refusals, the answers read back into OpenAI's list (float arrays
 * verbatim, base64 float32s decoded again here), usage, broken answers. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <openssl/evp.h>

#include "ai_proxy.h"

#define LIT(s) (s), sizeof(s) - 1

static sl_ap_target_t
target(int provider, const char *model)
{
    sl_ap_target_t t;

    memset(&t, 0, sizeof(t));
    t.provider = provider;
    t.prov = sl_ap_provider_get(provider);
    t.provider_name = (char *)t.prov->name;
    t.model_name = (char *)model;
    t.route_type = SL_AP_ROUTE_EMBEDDINGS;
    t.llm_format = SL_AP_FMT_OPENAI;
    t.max_tokens = t.top_k = -1;
    t.temperature = t.top_p = -1;
    t.embed_dims = -1;
    return t;
}

/* The request for t, as JSON text compared whole (NULL: refused, then
 * `want` is a piece of the error). */
static void
expect_request(const sl_ap_target_t *t, const char *body, const char *want, int status,
               sl_ap_req_info_t *info)
{
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    int rc;

    memset(info, 0, sizeof(*info));
    rc = sl_ap_embed_request(t, body, strlen(body), &d, &out, info);
    if (status == 0) {
        if (rc != 0) {
            fail_msg("refused: %d %s", info->status, info->errmsg);
        }
        sl_ap_buf_addc(&out, '\0');
        assert_string_equal(out.ptr, want);
    } else {
        assert_int_equal(rc, -1);
        assert_int_equal(info->status, status);
        if (strstr(info->errmsg, want) == NULL) {
            fail_msg("expected '%s' in '%s'", want, info->errmsg);
        }
    }
    sl_ap_buf_free(&out);
    sl_json_free(&d);
}

static void
test_requests(void **state)
{
    sl_ap_target_t t;
    sl_ap_req_info_t info;
    sl_ap_buf_t path = {0};

    (void)state;
    t = target(SL_AP_PROV_GEMINI, "gemini-embedding-001");
    expect_request(&t, "{\"input\":[\"a\",\"b\\\"c\"],\"model\":\"gemini-embedding-001\"}",
                   "{\"requests\":[{\"model\":\"models/gemini-embedding-001\",\"content\":{"
                   "\"parts\":[{\"text\":\"a\"}]}},{\"model\":\"models/gemini-embedding-001\","
                   "\"content\":{\"parts\":[{\"text\":\"b\\\"c\"}]}}]}",
                   0, &info);
    assert_int_equal(info.embed, SL_AP_EMBED_GEMINI);
    assert_int_equal(info.embed_n, 2);
    assert_int_equal(info.embed_base64, 0);
    sl_ap_embed_path(&path, &t, &info);
    sl_ap_buf_addc(&path, '\0');
    assert_string_equal(path.ptr, "/v1beta/models/gemini-embedding-001:batchEmbedContents");
    path.len = 0;
    expect_request(&t, "{\"input\":\"x\",\"dimensions\":8,\"encoding_format\":\"base64\"}",
                   "{\"requests\":[{\"model\":\"models/gemini-embedding-001\",\"content\":{"
                   "\"parts\":[{\"text\":\"x\"}]},\"outputDimensionality\":8}]}",
                   0, &info);
    assert_int_equal(info.embed_base64, 1);
    /* options.gemini.embedding_input_type: taskType on every request */
    snprintf(t.embed_task_type, sizeof(t.embed_task_type), "RETRIEVAL_QUERY");
    expect_request(&t, "{\"input\":[\"x\",\"y\"]}",
                   "{\"requests\":[{\"model\":\"models/gemini-embedding-001\",\"content\":{"
                   "\"parts\":[{\"text\":\"x\"}]},\"taskType\":\"RETRIEVAL_QUERY\"},{\"model\":"
                   "\"models/gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":\"y\"}]},"
                   "\"taskType\":\"RETRIEVAL_QUERY\"}]}",
                   0, &info);
    t.embed_task_type[0] = '\0';

    /* Vertex AI: predict, the config's dimensions winning */
    t.vertex_prefix = "/v1/projects/p/locations/l/publishers/google/models/";
    t.embed_dims = 3;
    expect_request(&t, "{\"input\":[\"a\",\"b\"],\"dimensions\":9}",
                   "{\"instances\":[{\"content\":\"a\"},{\"content\":\"b\"}],\"parameters\":{"
                   "\"outputDimensionality\":3}}",
                   0, &info);
    sl_ap_embed_path(&path, &t, &info);
    sl_ap_buf_addc(&path, '\0');
    assert_string_equal(path.ptr, "/v1/projects/p/locations/l/publishers/google/models/"
                                  "gemini-embedding-001:predict");
    path.len = 0;
    snprintf(t.embed_task_type, sizeof(t.embed_task_type), "CLUSTERING");
    expect_request(
        &t, "{\"input\":[\"a\",\"b\"]}",
        "{\"instances\":[{\"content\":\"a\",\"task_type\":\"CLUSTERING\"},{\"content\":"
        "\"b\",\"task_type\":\"CLUSTERING\"}],\"parameters\":{\"outputDimensionality\":3}}",
        0, &info);
    t.embed_task_type[0] = '\0';

    /* bedrock: Titan (one input, normalize for v2) and Cohere Embed */
    t = target(SL_AP_PROV_BEDROCK, "amazon.titan-embed-text-v2:0");
    t.embed_normalize = 1;
    expect_request(&t, "{\"input\":\"hello\",\"dimensions\":256}",
                   "{\"inputText\":\"hello\",\"dimensions\":256,\"normalize\":true}", 0, &info);
    sl_ap_embed_path(&path, &t, &info);
    sl_ap_buf_addc(&path, '\0');
    assert_string_equal(path.ptr, "/model/amazon.titan-embed-text-v2%3A0/invoke");
    path.len = 0;
    expect_request(&t, "{\"input\":[\"a\",\"b\"]}",
                   "Titan embedding models take one input per request", 400, &info);
    t.model_name = "amazon.titan-embed-text-v1";
    expect_request(&t, "{\"input\":[\"a\"]}", "{\"inputText\":\"a\"}", 0, &info);
    t.model_name = "us.cohere.embed-v4:0";
    t.embed_input_type = "search_query";
    expect_request(&t, "{\"input\":[\"a\",\"b\"],\"dimensions\":512}",
                   "{\"texts\":[\"a\",\"b\"],\"input_type\":\"search_query\","
                   "\"output_dimension\":512}",
                   0, &info);
    assert_int_equal(info.embed, SL_AP_EMBED_BEDROCK_COHERE);
    t.model_name = NULL;
    expect_request(&t, "{\"input\":\"a\",\"model\":\"anthropic.claude-3-haiku-20240307-v1:0\"}",
                   "not an embedding model sluice can call on bedrock", 400, &info);

    /* cohere's own v2 embed: the model, Kong's default input type */
    t = target(SL_AP_PROV_COHERE, "embed-v4.0");
    expect_request(&t, "{\"input\":\"a\"}",
                   "{\"model\":\"embed-v4.0\",\"texts\":[\"a\"],\"input_type\":\"classification\","
                   "\"embedding_types\":[\"float\"]}",
                   0, &info);

    /* refused before anything is sent */
    expect_request(&t, "{\"input\":[[1,2]]}", "token arrays cannot be sent", 400, &info);
    expect_request(&t, "{\"input\":[]}", "'input' must not be empty", 400, &info);
    expect_request(&t, "{\"input\":5}", "'input' must be a string or an array", 400, &info);
    expect_request(&t, "{\"model\":\"embed-v4.0\"}", "doesn't contain valid prompts", 400, &info);
    expect_request(&t, "{\"input\":\"a\",\"encoding_format\":\"int8\"}",
                   "'encoding_format' must be 'float' or 'base64'", 400, &info);
    expect_request(&t, "{\"input\":\"a\",\"dimensions\":0}", "'dimensions' must be a positive", 400,
                   &info);
    expect_request(&t, "{\"input\":\"a\",\"model\":\"other\"}", "cannot use own model", 400, &info);
    sl_ap_buf_free(&path);

    /* an OpenAI-compatible provider: the body passes, the config's
     * embeddings_dimensions replacing the client's dimensions */
    t = target(SL_AP_PROV_OPENAI, "text-embedding-3-small");
    t.embed_dims = 64;
    {
        sl_jdoc_t d = {0};
        sl_ap_buf_t out = {0};

        memset(&info, 0, sizeof(info));
        assert_int_equal(
            sl_ap_openai_request(&t, LIT("{\"input\":\"a\",\"dimensions\":8}"), &d, &out, &info),
            0);
        sl_ap_buf_addc(&out, '\0');
        assert_string_equal(out.ptr, "{\"input\":\"a\",\"model\":\"text-embedding-3-small\","
                                     "\"dimensions\":64}");
        sl_ap_buf_free(&out);
        sl_json_free(&d);
    }
}

/* The answer for info, parsed back; NULL when refused. */
static json_object *
answer(const sl_ap_req_info_t *info, int64_t hdr, const char *body, sl_ap_usage_t *u)
{
    sl_jdoc_t d = {0};
    sl_ap_buf_t out = {0};
    json_object *o = NULL;

    memset(u, 0, sizeof(*u));
    if (sl_ap_embed_response(info, hdr, body, strlen(body), &d, &out, u) == 0) {
        sl_ap_buf_addc(&out, '\0');
        o = json_tokener_parse(out.ptr);
        assert_non_null(o);
    }
    sl_ap_buf_free(&out);
    sl_json_free(&d);
    return o;
}

static json_object *
at(json_object *o, const char *path)
{
    char buf[128], *save = NULL;

    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save)) {
        if (json_object_is_type(o, json_type_array)) {
            o = json_object_array_get_idx(o, (size_t)atoi(k));
        } else if (!json_object_object_get_ex(o, k, &o)) {
            return NULL;
        }
    }
    return o;
}

static void
test_answers(void **state)
{
    sl_ap_req_info_t info;
    sl_ap_usage_t u;
    json_object *o;
    unsigned char raw[64];
    float f[3];
    int n;

    (void)state;
    memset(&info, 0, sizeof(info));
    info.model = (sl_str_t)SL_STR("gemini-embedding-001");
    info.embed = SL_AP_EMBED_GEMINI;
    info.embed_n = 2;
    info.input_estimate = 7;
    o = answer(&info, -1, "{\"embeddings\":[{\"values\":[0.5,-1.25e-2,3]},{\"values\":[1,2,3]}]}",
               &u);
    assert_string_equal(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN),
                        "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                        "\"embedding\":[0.5,-1.25e-2,3]},{\"object\":\"embedding\",\"index\":1,"
                        "\"embedding\":[1,2,3]}],\"model\":\"gemini-embedding-001\",\"usage\":{"
                        "\"prompt_tokens\":7,\"total_tokens\":7}}");
    assert_int_equal(u.have, 0); /* no count from Gemini: the estimate */
    assert_int_equal(u.prompt, 7);
    json_object_put(o);

    /* base64: little-endian float32s */
    info.embed_base64 = 1;
    info.embed_n = 1;
    o = answer(&info, -1, "{\"embeddings\":[{\"values\":[0.5,-0.0125,3]}]}", &u);
    n = EVP_DecodeBlock(raw,
                        (const unsigned char *)json_object_get_string(at(o, "data.0.embedding")),
                        (int)strlen(json_object_get_string(at(o, "data.0.embedding"))));
    assert_int_equal(n, 12);
    for (int i = 0; i < 3; i++) {
        uint32_t bits = (uint32_t)raw[i * 4] | (uint32_t)raw[i * 4 + 1] << 8 |
                        (uint32_t)raw[i * 4 + 2] << 16 | (uint32_t)raw[i * 4 + 3] << 24;

        memcpy(&f[i], &bits, 4);
    }
    assert_true(f[0] == 0.5f && f[1] == -0.0125f && f[2] == 3.0f);
    json_object_put(o);
    info.embed_base64 = 0;

    /* Vertex: the counts summed */
    info.embed = SL_AP_EMBED_VERTEX;
    info.embed_n = 2;
    o = answer(&info, -1,
               "{\"predictions\":[{\"embeddings\":{\"statistics\":{\"truncated\":false,"
               "\"token_count\":2},\"values\":[1]}},{\"embeddings\":{\"values\":[2],"
               "\"statistics\":{\"token_count\":4.0}}}],\"metadata\":{\"billableCharacterCount\":"
               "9}}",
               &u);
    assert_int_equal(json_object_get_int(at(o, "usage.prompt_tokens")), 6);
    assert_int_equal(u.have, 1);
    json_object_put(o);

    /* Titan: inputTextTokenCount; Cohere on Bedrock: the header's count */
    info.embed = SL_AP_EMBED_TITAN;
    info.embed_n = 1;
    o = answer(&info, 99, "{\"embedding\":[0.1,0.2],\"inputTextTokenCount\":3}", &u);
    assert_int_equal(json_object_get_int(at(o, "usage.prompt_tokens")), 3);
    json_object_put(o);
    info.embed = SL_AP_EMBED_BEDROCK_COHERE;
    info.embed_n = 2;
    o = answer(&info, 5,
               "{\"embeddings\":[[0.1],[0.2]],\"id\":\"x\",\"response_type\":"
               "\"embeddings_floats\",\"texts\":[\"a\",\"b\"]}",
               &u);
    assert_int_equal(json_object_get_int(at(o, "usage.total_tokens")), 5);
    assert_true(json_object_get_double(at(o, "data.1.embedding.0")) == 0.2);
    json_object_put(o);
    /* Cohere v2: embeddings by type, billed units */
    info.embed = SL_AP_EMBED_COHERE;
    o = answer(&info, -1,
               "{\"id\":\"x\",\"embeddings\":{\"float\":[[1],[2]]},\"meta\":{\"billed_units\":{"
               "\"input_tokens\":4}},\"response_type\":\"embeddings_by_type\"}",
               &u);
    assert_int_equal(json_object_get_int(at(o, "usage.prompt_tokens")), 4);
    json_object_put(o);

    /* not one vector per input, not vectors, not JSON: refused (502) */
    assert_null(answer(&info, -1, "{\"embeddings\":{\"float\":[[1]]}}", &u));
    assert_null(answer(&info, -1, "{\"embeddings\":{\"float\":[[1],[2],[3]]}}", &u));
    assert_null(answer(&info, -1, "{\"embeddings\":{\"float\":[[1],[\"x\"]]}}", &u));
    assert_null(answer(&info, -1, "{\"embeddings\":{\"float\":[[1],[]]}}", &u));
    assert_null(answer(&info, -1, "[1]", &u));
    assert_null(answer(&info, -1, "{\"message\":\"oops\"}", &u));
    info.embed = SL_AP_EMBED_NONE;
    assert_null(answer(&info, -1, "{\"embeddings\":{\"float\":[[1],[2]]}}", &u));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_answers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
