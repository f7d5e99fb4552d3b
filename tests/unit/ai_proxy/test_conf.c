/* test_conf.c - Kong's ai-proxy config schema: defaults, the how-to
 * config, and errors named with their field path. */

#include "test_util.h"
#include "token.h"

typedef struct {
    char text[2048];
    int n;
} errs_t;

static void
collect(void *ud, const char *field, const char *msg)
{
    errs_t *e = ud;
    size_t l = strlen(e->text);

    snprintf(e->text + l, sizeof(e->text) - l, "%s: %s\n", field, msg);
    e->n++;
}

static int
parse(const char *json, sl_ap_conf_t **c, errs_t *e)
{
    memset(e, 0, sizeof(*e));
    return sl_ap_conf_parse(json, strlen(json), c, collect, e);
}

#define BASE                                                                                       \
    "\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\"}"

static void
test_howto(void **state)
{
    errs_t e;
    sl_ap_conf_t *c = NULL;

    (void)state;
    assert_int_equal(parse("{\"llm_format\":\"anthropic\",\"route_type\":\"llm/v1/chat\","
                           "\"logging\":{\"log_statistics\":true,\"log_payloads\":false},"
                           "\"auth\":{\"header_name\":\"Authorization\",\"header_value\":\"Bearer "
                           "sk-1\",\"allow_override\":false},"
                           "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\","
                           "\"options\":{\"max_tokens\":8192,\"temperature\":1.0}}}",
                           &c, &e),
                     0);
    assert_int_equal(c->t.llm_format, SL_AP_FMT_ANTHROPIC);
    assert_string_equal(c->t.up_scheme, "https");
    assert_string_equal(c->t.up_host, "dashscope-intl.aliyuncs.com");
    assert_int_equal(c->t.up_port, 443);
    assert_string_equal(c->t.up_path, "/compatible-mode/v1/chat/completions");
    assert_string_equal(c->t.header_name, "Authorization");
    assert_string_equal(c->t.model_header, "dashscope/qwen-plus");
    assert_int_equal(c->t.max_tokens, 8192);
    assert_true(c->t.temperature == 1.0);
    assert_true(c->t.top_p < 0);
    assert_int_equal(c->t.top_k, -1);
    assert_true(c->t.log_statistics);
    assert_false(c->t.log_payloads);
    assert_true(c->model_name_header);
    assert_int_equal(c->max_request_body_size, 1048576);
    assert_int_equal(c->t.response_streaming, SL_AP_STREAM_ALLOW);
    sl_ap_conf_free(c);
}

static void
test_defaults_and_urls(void **state)
{
    errs_t e;
    sl_ap_conf_t *c = NULL;

    (void)state;
    assert_int_equal(parse("{" BASE "}", &c, &e), 0);
    assert_int_equal(c->t.llm_format, SL_AP_FMT_OPENAI);
    sl_ap_conf_free(c);

    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                           "\"options\":{\"dashscope\":{\"international\":false}}},\"auth\":null}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_host, "dashscope.aliyuncs.com");
    assert_null(c->t.model_name);
    sl_ap_conf_free(c);

    assert_int_equal(parse("{\"route_type\":\"llm/v1/"
                           "chat\",\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\","
                           "\"options\":{\"upstream_url\":\"http://127.0.0.1:32000/compatible-mode/"
                           "v1/chat/completions?x=1\"}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_scheme, "http");
    assert_string_equal(c->t.up_host, "127.0.0.1");
    assert_int_equal(c->t.up_port, 32000);
    assert_string_equal(c->t.up_path, "/compatible-mode/v1/chat/completions");
    assert_string_equal(c->t.up_query, "x=1");
    sl_ap_conf_free(c);

    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"openai\","
                           "\"options\":{\"upstream_url\":\"https://[::1]\"}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_host, "::1");
    assert_int_equal(c->t.up_port, 443);
    assert_string_equal(c->t.up_path, "/v1/chat/completions");
    sl_ap_conf_free(c);

    /* Kong fields sluice ignores, as decK dumps them (null / false) */
    assert_int_equal(parse("{" BASE ",\"genai_category\":\"text/"
                           "generation\",\"auth\":{\"azure_use_managed_identity\":false,"
                           "\"gcp_service_account_json\":null},\"max_request_body_size\":0}",
                           &c, &e),
                     0);
    assert_int_equal(c->max_request_body_size, 0);
    sl_ap_conf_free(c);
}

static void expect_error(const char *json, const char *want);

#define LIT(s) s, sizeof(s) - 1
#define AZ_BASE                                                                                    \
    "\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"azure\",\"options\":{"               \
    "\"azure_instance\":\"i\",\"azure_deployment_id\":\"d\"}}"

/* Azure Entra ID (token_azure.c): client credentials, or the managed
 * identity; and what token.c reads from a token endpoint's answer */
static void
test_token_sources(void **state)
{
    errs_t e;
    sl_ap_conf_t *c = NULL;
    sl_ap_buf_t b = {0};
    int64_t ttl = 0;
    char err[256];

    (void)state;
    unsetenv("AZURE_AUTHORITY_HOST");
    unsetenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    assert_int_equal(parse("{" AZ_BASE ",\"auth\":{\"azure_use_managed_identity\":true,"
                           "\"azure_tenant_id\":\"t 1\",\"azure_client_id\":\"c\","
                           "\"azure_client_secret\":\"s\"}}",
                           &c, &e),
                     0);
    assert_non_null(c->t.token);
    assert_string_equal(c->t.token->url,
                        "https://login.microsoftonline.com/t%201/oauth2/v2.0/token");
    assert_string_equal(c->t.token->method, "POST");
    assert_int_equal(c->t.token->kind->request(c->t.token, 0, &b), 0);
    assert_string_equal(b.ptr, "grant_type=client_credentials&client_id=c&client_secret=s&scope="
                               "https%3A%2F%2Fcognitiveservices.azure.com%2F.default");
    sl_ap_buf_free(&b);
    sl_ap_conf_free(c);
    setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:1/", 1);
    assert_int_equal(parse("{" AZ_BASE ",\"auth\":{\"azure_use_managed_identity\":true,"
                           "\"azure_client_id\":\"u\"}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.token->url,
                        "http://127.0.0.1:1/metadata/identity/oauth2/token?api-version=2018-02-"
                        "01&resource=https%3A%2F%2Fcognitiveservices.azure.com&client_id=u");
    assert_string_equal(c->t.token->method, "GET");
    assert_string_equal(c->t.token->hdr_name, "metadata");
    sl_ap_conf_free(c);
    unsetenv("AZURE_POD_IDENTITY_AUTHORITY_HOST");
    expect_error("{" AZ_BASE ",\"auth\":{\"azure_use_managed_identity\":true,"
                 "\"azure_client_secret\":\"s\"}}",
                 "azure_client_secret needs azure_tenant_id and azure_client_id");

    /* token endpoint answers */
    assert_int_equal(sl_ap_token_parse(LIT("{\"access_token\":\"ya29.a\\/b\",\"expires_in\":3599,"
                                           "\"token_type\":\"Bearer\"}"),
                                       &b, &ttl, err, sizeof(err)),
                     0);
    assert_string_equal(b.ptr, "ya29.a/b");
    assert_int_equal(ttl, 3599);
    sl_ap_buf_free(&b);
    assert_int_equal(sl_ap_token_parse(LIT("{\"access_token\":\"x\",\"expires_in\":\"86399\"}"), &b,
                                       &ttl, err, sizeof(err)),
                     0);
    assert_int_equal(ttl, 86399);
    sl_ap_buf_free(&b);
    assert_int_equal(sl_ap_token_parse(LIT("{\"error\":\"invalid_grant\",\"error_description\":"
                                           "\"Invalid JWT Signature.\"}"),
                                       &b, &ttl, err, sizeof(err)),
                     -1);
    assert_string_equal(err, "the token endpoint sent no access_token: invalid_grant: Invalid JWT "
                             "Signature.");
    sl_ap_buf_free(&b);
    assert_int_equal(
        sl_ap_token_parse(LIT("{\"access_token\":\"a b\"}"), &b, &ttl, err, sizeof(err)), -1);
    sl_ap_buf_free(&b);
    assert_int_equal(sl_ap_token_parse(LIT("{\"access_token\":\"a\",\"expires_in\":-5}"), &b, &ttl,
                                       err, sizeof(err)),
                     -1);
    sl_ap_buf_free(&b);
    assert_int_equal(sl_ap_token_parse(LIT("[1]"), &b, &ttl, err, sizeof(err)), -1);
    sl_ap_buf_free(&b);
    /* base64url without padding, every tail length */
    sl_ap_b64url(&b, (const unsigned char *)"\xfb\xff", 2);
    sl_ap_buf_addc(&b, '.');
    sl_ap_b64url(&b, (const unsigned char *)"abc", 3);
    sl_ap_buf_addc(&b, '.');
    sl_ap_b64url(&b, (const unsigned char *)"a", 1);
    assert_string_equal(b.ptr, "-_8.YWJj.YQ");
    sl_ap_buf_free(&b);
}

static void
expect_error(const char *json, const char *want)
{
    errs_t e;
    sl_ap_conf_t *c = NULL;

    assert_int_equal(parse(json, &c, &e), -1);
    assert_null(c);
    if (strstr(e.text, want) == NULL) {
        fail_msg("expected '%s' in:\n%s", want, e.text);
    }
}

/* gemini and bedrock: credentials, region, URLs, what is refused */
static void
test_native_providers(void **state)
{
    errs_t e;
    sl_ap_conf_t *c = NULL;

    (void)state;
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_REGION");
    unsetenv("AWS_DEFAULT_REGION");
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
                           "\"auth\":{\"header_name\":\"x-goog-api-key\",\"header_value\":\"k\"},"
                           "\"model\":{\"provider\":\"gemini\",\"name\":\"gemini-2.5-flash\"}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_host, "generativelanguage.googleapis.com");
    sl_ap_conf_free(c);
    /* Vertex AI: Kong's https://<api_endpoint> and the publisher model path */
    assert_int_equal(
        parse("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
              "\"auth\":{\"header_name\":\"authorization\",\"header_value\":\"Bearer "
              "t\"},\"model\":{\"provider\":\"gemini\",\"options\":{\"gemini\":{"
              "\"api_endpoint\":\"europe-west4-aiplatform.googleapis.com\",\"project_id\":"
              "\"my-proj\",\"location_id\":\"europe-west4\"}}}}",
              &c, &e),
        0);
    assert_string_equal(c->t.up_scheme, "https");
    assert_string_equal(c->t.up_host, "europe-west4-aiplatform.googleapis.com");
    assert_int_equal(c->t.up_port, 443);
    assert_string_equal(c->t.vertex_prefix,
                        "/v1/projects/my-proj/locations/europe-west4/publishers/google/models/");
    assert_null(c->t.token);
    sl_ap_conf_free(c);
    expect_error("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"model\":{"
                 "\"provider\":\"gemini\",\"options\":{\"gemini\":{\"api_endpoint\":\"x/y\","
                 "\"project_id\":\"p\",\"location_id\":\"l\"}}}}",
                 "model.options.gemini.api_endpoint: expected a host name");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"model\":{"
                 "\"provider\":\"gemini\",\"options\":{\"gemini\":{\"api_endpoint\":\"x\","
                 "\"project_id\":\"p/../q\",\"location_id\":\"l\"}}}}",
                 "project_id and location_id: letters, digits");
    unsetenv("GCP_SERVICE_ACCOUNT");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"auth\":{"
                 "\"gcp_use_service_account\":true},\"model\":{\"provider\":\"gemini\"}}",
                 "auth.gcp_service_account_json: gcp_use_service_account needs a service account "
                 "key here or in GCP_SERVICE_ACCOUNT");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"auth\":{"
                 "\"gcp_use_service_account\":true,\"gcp_service_account_json\":\"{\\\"type\\\":"
                 "\\\"authorized_user\\\"}\"},\"model\":{\"provider\":\"gemini\"}}",
                 "type 'authorized_user' is not a service account key");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"auth\":{"
                 "\"gcp_use_service_account\":true,\"gcp_metadata_url\":\"http://m\"},"
                 "\"model\":{\"provider\":\"gemini\"}}",
                 "auth.gcp_metadata_url: the metadata server is not supported yet");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"model\":{"
                 "\"provider\":\"bedrock\",\"options\":{\"bedrock\":{\"aws_region\":"
                 "\"us-east-1\"}}}}",
                 "needs aws_access_key_id");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"auth\":{"
                 "\"aws_access_key_id\":\"AK\",\"aws_secret_access_key\":\"SK\"},\"model\":{"
                 "\"provider\":\"bedrock\"}}",
                 "needs a region");
    /* an OpenAI client of bedrock (and gemini): served since the codecs
     * have their OpenAI side (native_openai.c) */
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"auth\":{\"aws_access_key_id\":"
                           "\"AK\",\"aws_secret_access_key\":\"SK\"},\"model\":{\"provider\":"
                           "\"bedrock\",\"options\":{\"bedrock\":{\"aws_region\":\"us-east-1\"}}}}",
                           &c, &e),
                     0);
    assert_int_equal(c->t.llm_format, SL_AP_FMT_OPENAI);
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"auth\":{\"header_name\":"
                           "\"x-goog-api-key\",\"header_value\":\"k\"},\"model\":{\"provider\":"
                           "\"gemini\",\"name\":\"gemini-2.5-flash\"}}",
                           &c, &e),
                     0);
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
                           "\"auth\":{\"aws_access_key_id\":\"AK\",\"aws_secret_access_key\":"
                           "\"SK\"},\"model\":{\"provider\":\"bedrock\",\"options\":{\"bedrock\":"
                           "{\"aws_region\":\"eu-west-3\"}}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_host, "bedrock-runtime.eu-west-3.amazonaws.com");
    assert_string_equal(c->t.aws_access_key_id, "AK");
    assert_null(c->t.aws_session_token);
    sl_ap_conf_free(c);
    /* the environment, as Kong's AWS SDK reads it */
    setenv("AWS_ACCESS_KEY_ID", "AKENV", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "SKENV", 1);
    setenv("AWS_SESSION_TOKEN", "TOK", 1);
    setenv("AWS_REGION", "ap-south-1", 1);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
                           "\"model\":{\"provider\":\"bedrock\"}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_host, "bedrock-runtime.ap-south-1.amazonaws.com");
    assert_string_equal(c->t.aws_access_key_id, "AKENV");
    assert_string_equal(c->t.aws_session_token, "TOK");
    sl_ap_conf_free(c);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_REGION");
}

static void
test_errors(void **state)
{
    (void)state;
    expect_error("{\"route_type\":\"llm/v1/"
                 "chat\",\"model\":{\"provider\":\"dashscope\",\"options\":{\"temperature\":7}}}",
                 "model.options.temperature: value should be between 0 and 5");
    expect_error("{\"route_type\":\"llm/v1/"
                 "chat\",\"model\":{\"provider\":\"dashscope\",\"options\":{\"top_p\":1.5}}}",
                 "model.options.top_p: value should be between 0 and 1");
    expect_error("{\"route_type\":\"llm/v1/"
                 "chat\",\"model\":{\"provider\":\"dashscope\",\"options\":{\"top_k\":501}}}",
                 "model.options.top_k");
    expect_error(
        "{\"route_type\":\"llm/v1/"
        "chat\",\"model\":{\"provider\":\"dashscope\",\"options\":{\"max_tokens\":\"8k\"}}}",
        "model.options.max_tokens: expected an integer");
    expect_error("{" BASE ",\"bogus\":1}", "bogus: unknown field");
    expect_error("{" BASE ",\"logging\":{\"log_stats\":true}}", "logging.log_stats: unknown field");
    expect_error("{\"route_type\":\"llm/v1/responses\",\"model\":{\"provider\":\"dashscope\"}}",
                 "route_type: 'llm/v1/responses' is not supported yet");
    expect_error("{\"route_type\":\"llm/v9\",\"model\":{\"provider\":\"dashscope\"}}",
                 "route_type: expected one of");
    expect_error("{\"model\":{\"provider\":\"dashscope\"}}", "route_type: required field missing");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"huggingface\"}}",
                 "model.name: must set model.name (or model.options.upstream_url) for "
                 "huggingface provider");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"acme\"}}",
                 "model.provider: expected one of");
    expect_error("{\"route_type\":\"llm/v1/chat\"}", "model: required field missing");
    expect_error("{" BASE ",\"auth\":{\"header_name\":\"Authorization\"}}",
                 "auth: all or none of these fields must be set");
    expect_error("{" BASE ",\"auth\":{\"param_name\":\"k\",\"param_value\":\"v\"}}",
                 "auth: all or none");
    expect_error(
        "{" BASE
        ",\"auth\":{\"param_name\":\"k\",\"param_value\":\"v\",\"param_location\":\"cookie\"}}",
        "auth.param_location: expected one of: query, body");
    expect_error("{" BASE ",\"llm_format\":\"xml\"}", "llm_format: expected one of");
    expect_error("{" BASE ",\"response_streaming\":\"sometimes\"}",
                 "response_streaming: expected one of");
    expect_error("{" BASE ",\"max_request_body_size\":-1}", "max_request_body_size");
    expect_error(
        "{\"route_type\":\"llm/v1/"
        "chat\",\"model\":{\"provider\":\"dashscope\",\"options\":{\"upstream_url\":\"ftp://x\"}}}",
        "model.options.upstream_url: invalid URL");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"databricks\"}}",
                 "model.options.databricks.workspace_instance_id: must set");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"databricks\","
                 "\"options\":{\"databricks\":{\"workspace_instance_id\":\"a/b\"}}}}",
                 "expected a host name label");
    expect_error("[]",
                 ": expected a record"); /* Kong's wording for a config that is not an object */
}

/* The how-to's plugin as Kong 3.14's Admin API dumps it: every field, with
 * Kong's defaults filled in, and the key as a vault reference. */
static char *
read_fixture(const char *name)
{
    const char *dir = getenv("SL_CLAUDE_FIXTURES");
    char path[512];
    FILE *f;
    long n;
    char *buf;

    snprintf(path, sizeof(path), "%s/../kong/%s", dir ? dir : "tests/fixtures/claude-code", name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void
test_kong_defaults(void **state)
{
    errs_t e;
    sl_ap_conf_t *c = NULL;
    char *json = read_fixture("ai-proxy-3.14-defaults.json");

    (void)state;
    setenv("DASHSCOPE_API_KEY", "Bearer sk-from-env", 1);
    if (parse(json, &c, &e) != 0) {
        fail_msg("the Kong 3.14 defaults dump did not load:\n%s", e.text);
    }
    assert_string_equal(c->t.header_value, "Bearer sk-from-env"); /* resolved, never literal */
    assert_string_equal(c->t.model_name, "qwen-plus");
    assert_int_equal(c->t.max_tokens, 8192);
    sl_ap_conf_free(c);

    unsetenv("DASHSCOPE_API_KEY");
    assert_int_equal(parse(json, &c, &e), -1);
    assert_non_null(strstr(e.text, "auth.header_value: vault reference: environment variable "
                                   "DASHSCOPE_API_KEY is not set"));
    free(json);
}

static void
test_fidelity_errors(void **state)
{
    errs_t e;
    sl_ap_conf_t *c = NULL;

    (void)state;
    /* Kong's gt = 0 on every cost */
    expect_error("{" BASE ",\"model\":{\"provider\":\"dashscope\",\"options\":{\"input_cost\":0}}}",
                 "model.options.input_cost: value must be greater than 0");
    expect_error("{" BASE
                 ",\"model\":{\"provider\":\"dashscope\",\"options\":{\"output_cost\":0}}}",
                 "model.options.output_cost: value must be greater than 0");
    /* unused Kong fields: default or null only, refused otherwise */
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"options\":{\"azure_api_version\":5}}}",
                 "model.options.azure_api_version: expected a string");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"options\":{\"bedrock\":{\"embeddings_normalize\":true}}}}",
                 "model.options.bedrock.embeddings_normalize: applies only to route_type "
                 "llm/v1/embeddings with provider bedrock; leave it unset or at Kong's default "
                 "false");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"options\":{\"cohere\":{\"embedding_input_type\":\"search_query\"}}}}",
                 "model.options.cohere.embedding_input_type: applies only to route_type "
                 "llm/v1/embeddings with provider cohere or bedrock; leave it unset or at Kong's "
                 "default \"classification\"");
    /* the right route type with the wrong provider: the same message */
    expect_error("{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":\"cohere\","
                 "\"options\":{\"bedrock\":{\"embeddings_normalize\":true}}}}",
                 "model.options.bedrock.embeddings_normalize: applies only to route_type "
                 "llm/v1/embeddings with provider bedrock");
    expect_error("{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":\"mistral\","
                 "\"options\":{\"cohere\":{\"embedding_input_type\":\"search_query\"}}}}",
                 "model.options.cohere.embedding_input_type: applies only to route_type "
                 "llm/v1/embeddings with provider cohere or bedrock");
    expect_error("{" BASE ",\"auth\":{\"gcp_use_service_account\":true}}",
                 "auth.gcp_use_service_account: only the gemini provider uses it");
    expect_error("{" BASE ",\"auth\":{\"azure_use_managed_identity\":true}}",
                 "auth.azure_use_managed_identity: only the azure provider uses it");
    expect_error("{" BASE ",\"auth\":{\"gcp_metadata_url\":5}}",
                 "auth.gcp_metadata_url: expected a string");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"options\":{\"vertex\":{}}}}",
                 "model.options.vertex: unknown field");
    /* vault references: env only, and only in referenceable fields */
    expect_error("{" BASE ",\"auth\":{\"header_name\":\"Authorization\","
                 "\"header_value\":\"{vault://hcv/dashscope/key}\"}}",
                 "auth.header_value: vault reference {vault://hcv/dashscope/key}: only the env "
                 "vault");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"name\":\"{vault://env/model}\"}}",
                 "model.name: vault references are resolved only in auth's referenceable fields "
                 "(header_name, header_value, param_name, param_value, azure_client_secret, "
                 "gcp_service_account_json, aws_access_key_id, aws_secret_access_key)");
    setenv("SL_TEST_VAULT_JSON", "{\"key\":\"k-123\"}", 1);
    assert_int_equal(parse("{" BASE ",\"auth\":{\"param_name\":\"{vault://env/sl-test-vault-json/"
                           "key}\",\"param_value\":\"v\",\"param_location\":\"query\"}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.param_name, "k-123");
    sl_ap_conf_free(c);

    /* Kong 3.14 fields sluice implements */
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                           "\"name\":\"qwen-plus\",\"model_alias\":\"claude-sonnet-4-5\","
                           "\"options\":{\"input_cost\":0.4,\"output_cost\":1.2,"
                           "\"cache_read_cost\":0.04,\"cache_write_cost\":0.5,"
                           "\"cache_write_cost_list\":[],\"dashscope\":{\"api\":\"anthropic\","
                           "\"web_search\":true,\"search_options\":{\"forced_search\":true},"
                           "\"models\":{\"qwen-plus\":{\"cache\":false,\"max_output_tokens\":"
                           "16384},\"my-qwen\":{\"thinking\":\"no\"}}}}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.model_alias, "claude-sonnet-4-5");
    assert_true(c->t.cache_read_cost == 0.04 && c->t.cache_write_cost == 0.5);
    assert_int_equal(c->t.api, SL_AP_API_ANTHROPIC);
    assert_string_equal(c->t.up_path, "/apps/anthropic/v1/messages");
    assert_true(c->t.web_search);
    assert_string_equal(c->t.search_options, "{\"forced_search\":true}");
    {
        sl_ap_model_t m;

        sl_ap_model_facts(&c->t, "qwen-plus", 9, &m);
        assert_int_equal(m.cache, 0);
        assert_int_equal(m.max_output, 16384);
        assert_int_equal(m.json_schema, 1); /* the rest from the built-in row */
        sl_ap_model_facts(&c->t, "my-qwen", 7, &m);
        assert_int_equal(m.thinking, SL_AP_THINK_NO);
        sl_ap_model_facts(&c->t, "qwen-max-2025-01-25", 19, &m);
        assert_int_equal(m.max_output, 8192);
        sl_ap_model_facts(&c->t, "qwen3-coder-plus", 16, &m);
        assert_int_equal(m.thinking, SL_AP_THINK_NO);
        assert_int_equal(m.cache, 1);
    }
    sl_ap_conf_free(c);
    expect_error("{" BASE ",\"model\":{\"provider\":\"dashscope\",\"options\":{\"dashscope\":"
                 "{\"models\":{\"x\":{\"thinking\":\"maybe\"}}}}}}",
                 "model.options.dashscope.models.x.thinking: expected one of: no, stream, yes");
}

/* ai-proxy-advanced's targets: one target per object, errors under the
 * target's path, several instances side by side. */
static void
test_target_parse(void **state)
{
    errs_t e;
    sl_ap_target_t a, b;

    (void)state;
    memset(&e, 0, sizeof(e));
    assert_int_equal(
        sl_ap_target_parse("{\"route_type\":\"llm/v1/chat\",\"weight\":3,"
                           "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\"}}",
                           strlen("{\"route_type\":\"llm/v1/chat\",\"weight\":3,"
                                  "\"model\":{\"provider\":\"dashscope\",\"name\":"
                                  "\"qwen-plus\"}}"),
                           "targets[0]", SL_AP_FMT_ANTHROPIC, SL_AP_STREAM_ALLOW, &a, collect, &e),
        0);
    assert_int_equal(a.provider, SL_AP_PROV_DASHSCOPE);
    assert_string_equal(a.prov->name, "dashscope");
    assert_int_equal(a.llm_format, SL_AP_FMT_ANTHROPIC);
    assert_string_equal(a.up_path, "/compatible-mode/v1/chat/completions");
    {
        const char *j = "{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"openai\","
                        "\"name\":\"gpt-4o\",\"options\":{\"temprature\":1}}}";
        assert_int_equal(sl_ap_target_parse(j, strlen(j), "targets[1]", SL_AP_FMT_OPENAI,
                                            SL_AP_STREAM_ALLOW, &b, collect, &e),
                         -1);
        assert_non_null(strstr(e.text, "targets[1].model.options.temprature: unknown field"));
        j = "{\"route_type\":\"llm/v1/"
            "chat\",\"model\":{\"provider\":\"openai\",\"name\":\"gpt-4o\"}}";
        assert_int_equal(sl_ap_target_parse(j, strlen(j), "targets[1]", SL_AP_FMT_OPENAI,
                                            SL_AP_STREAM_ALLOW, &b, collect, &e),
                         0);
    }
    assert_string_equal(b.up_host, "api.openai.com");
    assert_string_equal(b.up_path, "/v1/chat/completions");
    assert_string_equal(a.model_header, "dashscope/qwen-plus");
    assert_string_equal(b.model_header, "openai/gpt-4o");
    sl_ap_target_free(&a);
    sl_ap_target_free(&b);
}

/* Kong's default URL per provider (kong/llm/drivers/shared.lua and Kong's
 * provider pages), and Kong's per-provider required options. */
static void
test_provider_urls(void **state)
{
    static const struct {
        const char *provider, *options, *host, *path;
    } rows[] = {
        {"openai", "{}", "api.openai.com", "/v1/chat/completions"},
        {"azure", "{\"azure_instance\":\"inst\",\"azure_deployment_id\":\"dep\"}",
         "inst.openai.azure.com", "/openai/deployments/dep/chat/completions"},
        {"anthropic", "{\"anthropic_version\":\"2023-06-01\"}", "api.anthropic.com",
         "/v1/messages"},
        {"mistral", "{\"mistral_format\":\"openai\"}", "api.mistral.ai", "/v1/chat/completions"},
        {"deepseek", "{}", "api.deepseek.com", "/v1/chat/completions"},
        {"xai", "{}", "api.x.ai", "/v1/chat/completions"},
        {"cerebras", "{}", "api.cerebras.ai", "/v1/chat/completions"},
        {"dashscope", "{}", "dashscope-intl.aliyuncs.com", "/compatible-mode/v1/chat/completions"},
        /* Kong's api-inference URL with the model, then the messages API */
        {"huggingface", "{}", "api-inference.huggingface.co", "/models/m/v1/chat/completions"},
        {"cohere", "{}", "api.cohere.com", "/v2/chat"},
        {"databricks", "{\"databricks\":{\"workspace_instance_id\":\"dbc-1a2b3c4d-5e6f\"}}",
         "dbc-1a2b3c4d-5e6f.cloud.databricks.com", "/serving-endpoints/chat/completions"},
    };
    char json[512];
    errs_t e;
    sl_ap_conf_t *c = NULL;

    (void)state;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        snprintf(json, sizeof(json),
                 "{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\",\"model\":"
                 "{\"provider\":\"%s\",\"name\":\"m\",\"options\":%s}}",
                 rows[i].provider, rows[i].options);
        if (parse(json, &c, &e) != 0) {
            fail_msg("%s: %s", rows[i].provider, e.text);
        }
        assert_string_equal(c->t.up_scheme, "https");
        assert_string_equal(c->t.up_host, rows[i].host);
        assert_int_equal(c->t.up_port, 443);
        assert_string_equal(c->t.up_path, rows[i].path);
        assert_string_equal(c->t.prov->name, rows[i].provider);
        sl_ap_conf_free(c);
    }
    /* embeddings: each OpenAI-compatible row's default path */
    {
        static const struct {
            const char *provider, *options, *host, *path;
        } emb[] = {
            {"openai", "{}", "api.openai.com", "/v1/embeddings"},
            {"mistral", "{\"mistral_format\":\"openai\"}", "api.mistral.ai", "/v1/embeddings"},
            {"dashscope", "{}", "dashscope-intl.aliyuncs.com", "/compatible-mode/v1/embeddings"},
            {"databricks", "{\"databricks\":{\"workspace_instance_id\":\"dbc-1\"}}",
             "dbc-1.cloud.databricks.com", "/serving-endpoints/embeddings"},
            {"ollama", "{\"upstream_url\":\"https://gpu:443\"}", "gpu", "/v1/embeddings"},
        };

        for (size_t i = 0; i < sizeof(emb) / sizeof(emb[0]); i++) {
            snprintf(json, sizeof(json),
                     "{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":\"%s\","
                     "\"name\":\"m\",\"options\":%s}}",
                     emb[i].provider, emb[i].options);
            if (parse(json, &c, &e) != 0) {
                fail_msg("%s: %s", emb[i].provider, e.text);
            }
            assert_string_equal(c->t.up_host, emb[i].host);
            assert_string_equal(c->t.up_path, emb[i].path);
            sl_ap_conf_free(c);
        }
    }
    /* huggingface with upstream_url: Kong appends /v1/chat/completions to it
     * (the router's OpenAI path, or a TGI endpoint's) */
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":"
                           "\"huggingface\",\"options\":{\"upstream_url\":"
                           "\"https://router.huggingface.co\"}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_host, "router.huggingface.co");
    assert_string_equal(c->t.up_path, "/v1/chat/completions");
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":"
                           "\"huggingface\",\"name\":\"meta-llama/Llama-3.1-8B-Instruct\","
                           "\"options\":{\"upstream_url\":\"https://x.endpoints.huggingface."
                           "cloud/tgi/\"}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_path, "/tgi/v1/chat/completions");
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":"
                           "\"huggingface\",\"name\":\"meta-llama/Llama-3.1-8B-Instruct\"}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_path,
                        "/models/meta-llama/Llama-3.1-8B-Instruct/v1/chat/completions");
    sl_ap_conf_free(c);
    /* self-hosted: the URL is the user's; its path wins, else the row's */
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"vllm\","
                           "\"options\":{\"upstream_url\":\"http://gpu:8000\"}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_path, "/v1/chat/completions");
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":"
                           "\"azure\",\"options\":{\"azure_instance\":\"i\",\"azure_"
                           "deployment_id\":\"e\"}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_path, "/openai/deployments/e/embeddings");
    assert_string_equal(c->t.azure_api_version, "2023-05-15");
    sl_ap_conf_free(c);

    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"anthropic\"}}",
                 "model.options.anthropic_version: must set model.options.anthropic_version for "
                 "anthropic provider");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"azure\"}}",
                 "model.options.azure_instance: must set");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"azure\","
                 "\"options\":{\"azure_instance\":\"i\"}}}",
                 "model.options.azure_deployment_id: must set");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"mistral\"}}",
                 "model.options.mistral_format: must set");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"mistral\","
                 "\"options\":{\"mistral_format\":\"ollama\"}}}",
                 "model.options.mistral_format: 'ollama' is not supported yet");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"llama2\","
                 "\"options\":{\"llama2_format\":\"openai\"}}}",
                 "model.options.upstream_url: must set model.options.upstream_url for self-hosted");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"ollama\"}}",
                 "model.options.upstream_url: must set");
    /* every provider without embeddings (or completions) is refused,
     * naming the route type and the provider */
    {
        static const char *const no_emb[] = {"anthropic", "llama2",   "huggingface", "xai",
                                             "cerebras",  "deepseek", "vllm"};
        static const char *const no_cmp[] = {
            "anthropic",  "cohere", "mistral",  "gemini",   "bedrock", "huggingface", "dashscope",
            "databricks", "xai",    "cerebras", "deepseek", "ollama",  "vllm"};
        char json[320], want[200];

        for (size_t i = 0; i < sizeof(no_emb) / sizeof(no_emb[0]); i++) {
            snprintf(json, sizeof(json),
                     "{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":\"%s\"}}",
                     no_emb[i]);
            snprintf(want, sizeof(want),
                     "route_type: 'llm/v1/embeddings' is not supported by sluice with provider %s "
                     "(it sends embeddings to openai, azure, cohere, mistral, gemini, bedrock, "
                     "dashscope, databricks, ollama)",
                     no_emb[i]);
            expect_error(json, want);
        }
        for (size_t i = 0; i < sizeof(no_cmp) / sizeof(no_cmp[0]); i++) {
            snprintf(json, sizeof(json),
                     "{\"route_type\":\"llm/v1/completions\",\"model\":{\"provider\":\"%s\"}}",
                     no_cmp[i]);
            snprintf(want, sizeof(want),
                     "route_type: 'llm/v1/completions' with provider %s: ", no_cmp[i]);
            expect_error(json, want);
        }
    }
    expect_error("{\"route_type\":\"llm/v1/embeddings\",\"llm_format\":\"anthropic\","
                 "\"model\":{\"provider\":\"openai\"}}",
                 "llm_format: 'anthropic' has no embeddings API");
    /* llm/v1/completions: Kong's path where the provider has one (openai,
     * azure, an OpenAI-compatible llama2 server); refused with the reason
     * elsewhere */
    assert_int_equal(
        parse("{\"route_type\":\"llm/v1/completions\",\"model\":{\"provider\":\"openai\"}}", &c,
              &e),
        0);
    assert_string_equal(c->t.up_path, "/v1/completions");
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/completions\",\"model\":{\"provider\":"
                           "\"azure\",\"options\":{\"azure_instance\":\"i\",\"azure_"
                           "deployment_id\":\"d\"}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_path, "/openai/deployments/d/completions");
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/completions\",\"model\":{\"provider\":"
                           "\"llama2\",\"options\":{\"llama2_format\":\"openai\",\"upstream_"
                           "url\":\"http://127.0.0.1:8000\"}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_path, "/v1/completions");
    sl_ap_conf_free(c);
    expect_error("{\"route_type\":\"llm/v1/completions\",\"llm_format\":\"anthropic\","
                 "\"model\":{\"provider\":\"openai\"}}",
                 "llm_format: 'anthropic' has no completions API: llm/v1/completions needs "
                 "llm_format openai");
    expect_error("{\"route_type\":\"llm/v1/completions\",\"model\":{\"provider\":"
                 "\"anthropic\",\"options\":{\"anthropic_version\":\"2023-06-01\"}}}",
                 "route_type: 'llm/v1/completions' with provider anthropic: Kong sends it to "
                 "Anthropic's legacy Text Completions API");
    expect_error("{\"route_type\":\"llm/v1/completions\",\"model\":{\"provider\":\"cohere\"}}",
                 "with provider cohere: Kong sends it to Cohere's retired Generate API");
    expect_error("{\"route_type\":\"llm/v1/completions\",\"model\":{\"provider\":"
                 "\"gemini\",\"name\":\"g\"}}",
                 "route_type: 'llm/v1/completions' with provider gemini: the provider has no "
                 "completions operation");
    expect_error("{\"route_type\":\"llm/v1/completions\",\"model\":{\"provider\":"
                 "\"mistral\",\"options\":{\"mistral_format\":\"openai\"}}}",
                 "with provider mistral: Mistral's API has no completions endpoint");
    /* embeddings to providers whose API is not OpenAI's (embeddings.c) */
    assert_int_equal(parse("{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":"
                           "\"cohere\",\"options\":{\"embeddings_dimensions\":256,\"cohere\":{"
                           "\"embedding_input_type\":\"search_query\"}}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.up_path, "/v2/embed");
    assert_int_equal(c->t.embed_dims, 256);
    assert_string_equal(c->t.embed_input_type, "search_query");
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/embeddings\",\"auth\":{\"aws_access_key_"
                           "id\":\"AK\",\"aws_secret_access_key\":\"SK\"},\"model\":{\"provider\":"
                           "\"bedrock\",\"name\":\"amazon.titan-embed-text-v2:0\",\"options\":{"
                           "\"bedrock\":{\"aws_region\":\"eu-west-1\",\"embeddings_normalize\":"
                           "true}}}}",
                           &c, &e),
                     0);
    assert_int_equal(c->t.embed_normalize, 1);
    assert_int_equal(c->t.embed_dims, -1);
    sl_ap_conf_free(c);
    assert_int_equal(parse("{\"route_type\":\"llm/v1/embeddings\",\"auth\":{\"header_name\":"
                           "\"x-goog-api-key\",\"header_value\":\"k\"},\"model\":{\"provider\":"
                           "\"gemini\",\"name\":\"gemini-embedding-001\"}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.embed_task_type, "");
    sl_ap_conf_free(c);
    /* options.gemini.embedding_input_type: Google's task type, checked by
     * the schema, only where it is used */
    assert_int_equal(parse("{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":"
                           "\"gemini\",\"name\":\"gemini-embedding-001\",\"options\":{"
                           "\"gemini\":{\"embedding_input_type\":\"code_retrieval_query\"}}}}",
                           &c, &e),
                     0);
    assert_string_equal(c->t.embed_task_type, "CODE_RETRIEVAL_QUERY");
    sl_ap_conf_free(c);
    expect_error("{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":\"gemini\","
                 "\"name\":\"g\",\"options\":{\"gemini\":{\"embedding_input_type\":"
                 "\"search_query\"}}}}",
                 "model.options.gemini.embedding_input_type: expected one of: retrieval_query");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"gemini\","
                 "\"name\":\"g\",\"options\":{\"gemini\":{\"embedding_input_type\":"
                 "\"clustering\"}}}}",
                 "model.options.gemini.embedding_input_type: applies only to route_type "
                 "llm/v1/embeddings with provider gemini");
    expect_error("{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":\"cohere\","
                 "\"options\":{\"gemini\":{\"embedding_input_type\":\"clustering\"}}}}",
                 "model.options.gemini.embedding_input_type: applies only to route_type "
                 "llm/v1/embeddings with provider gemini");
    expect_error("{\"route_type\":\"llm/v1/embeddings\",\"auth\":{\"aws_access_key_id\":"
                 "\"AK\",\"aws_secret_access_key\":\"SK\"},\"model\":{\"provider\":"
                 "\"bedrock\",\"name\":\"anthropic.claude-3-haiku-20240307-v1:0\",\"options\":"
                 "{\"bedrock\":{\"aws_region\":\"eu-west-1\"}}}}",
                 "model.name: 'anthropic.claude-3-haiku-20240307-v1:0' is not an embedding model "
                 "sluice can call on bedrock (amazon.titan-embed-*, cohere.embed-*)");
    expect_error("{\"route_type\":\"llm/v1/embeddings\",\"llm_format\":\"anthropic\","
                 "\"model\":{\"provider\":\"cohere\"}}",
                 "llm_format: 'anthropic' has no embeddings API");
    expect_error("{\"route_type\":\"llm/v1/embeddings\",\"model\":{\"provider\":\"cohere\","
                 "\"options\":{\"cohere\":{\"embedding_input_type\":\"poetry\"}}}}",
                 "model.options.cohere.embedding_input_type: expected one of: search_document");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"cohere\","
                 "\"options\":{\"embeddings_dimensions\":8}}}",
                 "model.options.embeddings_dimensions: applies only to route_type "
                 "llm/v1/embeddings; leave it unset");
}

/* The host's schema checker (ABI 1.4) behind ai-proxy's config: its
 * wording and Kong-style paths for each kind of error, and 0 told from
 * unset where 0 is a value. */
static void
test_schema_errors(void **state)
{
    errs_t e;
    sl_ap_conf_t *c = NULL;

    (void)state;
    /* wrong type, at every depth */
    expect_error("{" BASE ",\"model_name_header\":\"yes\"}",
                 "model_name_header: expected a boolean");
    expect_error("{" BASE ",\"logging\":{\"log_payloads\":1}}",
                 "logging.log_payloads: expected a boolean");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"options\":{\"temperature\":\"hot\"}}}",
                 "model.options.temperature: expected a number");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":\"qwen\"}", "model: expected a record");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"options\":{\"max_tokens\":1.5}}}",
                 "model.options.max_tokens: expected an integer");
    /* unknown field, nested */
    expect_error("{" BASE ",\"auth\":{\"header_nme\":\"x\"}}", "auth.header_nme: unknown field");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"options\":{\"dashscope\":{\"models\":{\"qwen-max\":{\"colour\":1}}}}}}",
                 "model.options.dashscope.models.qwen-max.colour: unknown field");
    /* out of range, with Kong's numbers (not %g's 2.14748e+09) */
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"options\":{\"max_tokens\":0}}}",
                 "model.options.max_tokens: value should be between 1 and 2147483647");
    expect_error("{" BASE ",\"max_stream_event_size\":-5}",
                 "max_stream_event_size: value should be between 0 and 2147483647");
    expect_error("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                 "\"name\":\"\"}}",
                 "model.name: length must be at least 1");
    /* one-of */
    expect_error("{" BASE ",\"response_streaming\":\"sometimes\"}",
                 "response_streaming: expected one of: allow, deny, always");
    expect_error("{" BASE ",\"model\":{\"provider\":\"dashscope\",\"options\":{\"dashscope\":"
                 "{\"api\":\"grpc\"}}}}",
                 "model.options.dashscope.api: expected one of: openai, anthropic");
    expect_error("{" BASE ",\"model\":{\"provider\":\"mistral\",\"options\":{"
                 "\"mistral_format\":\"raw\"}}}",
                 "model.options.mistral_format: expected one of: openai, ollama");
    /* every error is reported, not only the first */
    memset(&e, 0, sizeof(e));
    assert_int_equal(
        parse("{\"route_type\":7,\"bogus\":1,\"model\":{\"provider\":\"acme\"}}", &c, &e), -1);
    assert_non_null(strstr(e.text, "route_type: expected a string"));
    assert_non_null(strstr(e.text, "bogus: unknown field"));
    assert_non_null(strstr(e.text, "model.provider: expected one of: openai, azure"));

    /* 0 is a value, unset is unset; a whole double is an integer */
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                           "\"options\":{\"temperature\":0,\"top_k\":0,\"max_tokens\":8192.0}}}",
                           &c, &e),
                     0);
    assert_true(c->t.temperature == 0.0);
    assert_int_equal(c->t.top_k, 0);
    assert_int_equal(c->t.max_tokens, 8192);
    assert_true(c->t.top_p < 0);
    sl_ap_conf_free(c);

    /* a dashscope.models value keeps the built-in row where it is unset */
    assert_int_equal(parse("{\"route_type\":\"llm/v1/chat\",\"model\":{\"provider\":\"dashscope\","
                           "\"options\":{\"dashscope\":{\"models\":{\"my-qwen\":"
                           "{\"max_output_tokens\":1000,\"thinking\":\"yes\",\"cache\":true}}}}}}",
                           &c, &e),
                     0);
    assert_int_equal(c->t.nmodels, 1);
    assert_string_equal(c->t.models[0].name, "my-qwen");
    assert_int_equal(c->t.models[0].max_output, 1000);
    assert_int_equal(c->t.models[0].thinking, SL_AP_THINK_YES);
    assert_int_equal(c->t.models[0].cache, 1);
    sl_ap_conf_free(c);

    /* without a 1.4 host the plugin says what it needs */
    sl_ap_conf_host(NULL);
    expect_error("{" BASE "}", "ai-proxy needs a sluice host with plugin ABI 1.4");
    sl_ap_conf_host(sl_ap_test_host());
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_howto),           cmocka_unit_test(test_defaults_and_urls),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_kong_defaults),
        cmocka_unit_test(test_fidelity_errors), cmocka_unit_test(test_target_parse),
        cmocka_unit_test(test_provider_urls),   cmocka_unit_test(test_native_providers),
        cmocka_unit_test(test_token_sources),   cmocka_unit_test(test_schema_errors),
    };

    sl_ap_conf_host(sl_ap_test_host()); /* the host's schema checker */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
