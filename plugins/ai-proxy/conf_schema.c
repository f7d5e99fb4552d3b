/* conf_schema.c - Kong 3.14's ai-proxy config as field tables for the
 * host's schema checker (api->conf_schema_check): types, defaults, ranges
 * and one-of lists, so that a config dumped by Kong's Admin API or decK,
 * which fills in every default, loads unchanged, and a wrong one is
 * refused with Kong's wording and path ("model.options.top_p: value should
 * be between 0 and 1").  Keys not in a table are refused ("unknown field").
 *
 * Fields sluice does not use are kept at their type (a Kong dump holds
 * them); conf.c refuses the ones set away from Kong's default.  Strings
 * sluice reads are at least one character (Kong's len_min) and may hold a
 * vault reference only where Kong resolves one (auth's referenceable
 * fields, resolved in conf.c). */

#include <stddef.h>
#include <string.h>

#include "ai_proxy.h"
#include "conf_schema.h"

_Static_assert(offsetof(sl_ap_raw_t, t) == 0, "the target's offsets serve the whole config");

#define STR_MAX 1e9

static const char *
sl_ap_plain(const char *s, size_t n)
{
    if (n >= 9 && memcmp(s, "{vault://", 9) == 0)
        return "vault references are resolved only in auth's referenceable fields "
               "(header_name, header_value, param_name, param_value, azure_client_secret, "
               "gcp_service_account_json, aws_access_key_id, aws_secret_access_key)";
    return NULL;
}

/* a string sluice reads; one Kong resolves vault references in; one it
 * only keeps (any text); one of a list */
#define STR(n, st)                                                                                 \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_STRING, .flags = SL_FIELD_RANGE, .offset = offsetof(st, n),   \
        .min = 1, .max = STR_MAX, .check = sl_ap_plain                                             \
    }
#define REF(n, st)                                                                                 \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_STRING, .flags = SL_FIELD_RANGE, .offset = offsetof(st, n),   \
        .min = 1, .max = STR_MAX                                                                   \
    }
#define ANYSTR(n, st)                                                                              \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_STRING, .offset = offsetof(st, n)                             \
    }
#define ONE_OF(n, st, list, d)                                                                     \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_STRING, .offset = offsetof(st, n), .one_of = list, .def = d   \
    }
#define BOOL(n, st, d)                                                                             \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_BOOLEAN, .offset = offsetof(st, n), .def = d                  \
    }
/* optional numbers: unset is INT64_MIN / NAN, told from 0 */
#define INT(n, st, lo, hi)                                                                         \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_INTEGER, .flags = SL_FIELD_RANGE | SL_FIELD_MARK_UNSET,       \
        .offset = offsetof(st, n), .min = lo, .max = hi                                            \
    }
#define NUM(n, st, lo, hi)                                                                         \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_NUMBER, .flags = SL_FIELD_RANGE | SL_FIELD_MARK_UNSET,        \
        .offset = offsetof(st, n), .min = lo, .max = hi                                            \
    }
#define COST(n, st)                                                                                \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_NUMBER, .flags = SL_FIELD_MARK_UNSET,                         \
        .offset = offsetof(st, n)                                                                  \
    }
#define REC(n, st, schema)                                                                         \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_RECORD, .offset = offsetof(st, n), .record = &schema          \
    }
#define END                                                                                        \
    {                                                                                              \
        .type = SL_FIELD_END                                                                       \
    }

/* ---------------------------------------------------- model.options.* */

static const char *const sl_ap_thinking[] = {"no", "stream", "yes", NULL};
static const sl_field_t sl_ap_f_dsmodel[] = {
    {.name = "max_output_tokens",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_RANGE | SL_FIELD_MARK_UNSET,
     .offset = offsetof(sl_ap_raw_dsmodel_t, max_output_tokens),
     .min = 0,
     .max = 2147483647.0},
    ONE_OF(thinking, sl_ap_raw_dsmodel_t, sl_ap_thinking, NULL),
    {.name = "json_schema",
     .type = SL_FIELD_BOOLEAN,
     .flags = SL_FIELD_MARK_UNSET,
     .offset = offsetof(sl_ap_raw_dsmodel_t, json_schema)},
    {.name = "cache",
     .type = SL_FIELD_BOOLEAN,
     .flags = SL_FIELD_MARK_UNSET,
     .offset = offsetof(sl_ap_raw_dsmodel_t, cache)},
    {.name = "search",
     .type = SL_FIELD_BOOLEAN,
     .flags = SL_FIELD_MARK_UNSET,
     .offset = offsetof(sl_ap_raw_dsmodel_t, search)},
    END,
};
const sl_schema_t sl_ap_dsmodel_schema = {sizeof(sl_ap_raw_dsmodel_t), sl_ap_f_dsmodel, NULL};

/* a dashscope.models key is a model name (sl_ap_model_t.name) */
static const char *
sl_ap_model_key(const char *s, size_t n)
{
    (void)s;
    return n < sizeof(((sl_ap_model_t *)0)->name) ? NULL : "model name too long";
}

/* dashscope: Kong's `international` plus sluice extensions (docs/ai-proxy.md) */
static const char *const sl_ap_ds_apis[] = {"openai", "anthropic", NULL};
static const sl_field_t sl_ap_f_dashscope[] = {
    BOOL(international, sl_ap_raw_dashscope_t, "true"),
    ONE_OF(api, sl_ap_raw_dashscope_t, sl_ap_ds_apis, NULL),
    BOOL(web_search, sl_ap_raw_dashscope_t, "false"),
    {.name = "search_options",
     .type = SL_FIELD_JSON,
     .offset = offsetof(sl_ap_raw_dashscope_t, search_options)},
    {.name = "models",
     .type = SL_FIELD_MAP,
     .offset = offsetof(sl_ap_raw_dashscope_t, models),
     .check = sl_ap_model_key},
    END,
};
static const sl_schema_t sl_ap_dashscope_schema = {sizeof(sl_ap_raw_dashscope_t), sl_ap_f_dashscope,
                                                   NULL};

static const sl_field_t sl_ap_f_bedrock[] = {
    STR(aws_region, sl_ap_raw_bedrock_t),
    STR(aws_assume_role_arn, sl_ap_raw_bedrock_t),
    ANYSTR(aws_role_session_name, sl_ap_raw_bedrock_t),
    ANYSTR(aws_sts_endpoint_url, sl_ap_raw_bedrock_t),
    ANYSTR(batch_bucket_prefix, sl_ap_raw_bedrock_t),
    ANYSTR(batch_role_arn, sl_ap_raw_bedrock_t),
    BOOL(embeddings_normalize, sl_ap_raw_bedrock_t, "false"),
    ANYSTR(performance_config_latency, sl_ap_raw_bedrock_t),
    ANYSTR(video_output_s3_uri, sl_ap_raw_bedrock_t),
    END,
};
static const sl_schema_t sl_ap_bedrock_schema = {sizeof(sl_ap_raw_bedrock_t), sl_ap_f_bedrock,
                                                 NULL};

/* Gemini's and Vertex AI's embedding task types (taskType / task_type),
 * named after Kong's cohere.embedding_input_type */
const char *const sl_ap_gemini_task_types[] = {
    "retrieval_query",   "retrieval_document",   "semantic_similarity",
    "classification",    "clustering",           "question_answering",
    "fact_verification", "code_retrieval_query", NULL};

static const sl_field_t sl_ap_f_gemini[] = {
    STR(api_endpoint, sl_ap_raw_gemini_t),
    STR(project_id, sl_ap_raw_gemini_t),
    STR(location_id, sl_ap_raw_gemini_t),
    ANYSTR(endpoint_id, sl_ap_raw_gemini_t),
    ONE_OF(embedding_input_type, sl_ap_raw_gemini_t, sl_ap_gemini_task_types, NULL),
    END,
};
static const sl_schema_t sl_ap_gemini_schema = {sizeof(sl_ap_raw_gemini_t), sl_ap_f_gemini, NULL};

static const sl_field_t sl_ap_f_huggingface[] = {
    {.name = "use_cache",
     .type = SL_FIELD_BOOLEAN,
     .offset = offsetof(sl_ap_raw_huggingface_t, use_cache)},
    {.name = "wait_for_model",
     .type = SL_FIELD_BOOLEAN,
     .offset = offsetof(sl_ap_raw_huggingface_t, wait_for_model)},
    END,
};
static const sl_schema_t sl_ap_huggingface_schema = {sizeof(sl_ap_raw_huggingface_t),
                                                     sl_ap_f_huggingface, NULL};

static const sl_field_t sl_ap_f_cohere[] = {
    {.name = "embedding_input_type",
     .type = SL_FIELD_STRING,
     .offset = offsetof(sl_ap_raw_cohere_t, embedding_input_type)},
    {.name = "wait_for_model",
     .type = SL_FIELD_BOOLEAN,
     .offset = offsetof(sl_ap_raw_cohere_t, wait_for_model)},
    END,
};
static const sl_schema_t sl_ap_cohere_schema = {sizeof(sl_ap_raw_cohere_t), sl_ap_f_cohere, NULL};

static const sl_field_t sl_ap_f_databricks[] = {
    STR(workspace_instance_id, sl_ap_raw_databricks_t),
    END,
};
static const sl_schema_t sl_ap_databricks_schema = {sizeof(sl_ap_raw_databricks_t),
                                                    sl_ap_f_databricks, NULL};

/* Kong's pricing tiers: records sluice does not read (refused unless []) */
static const sl_field_t sl_ap_any_elem = {.type = SL_FIELD_JSON};
#define TIERS(n)                                                                                   \
    {                                                                                              \
        .name = #n, .type = SL_FIELD_ARRAY, .offset = offsetof(sl_ap_raw_options_t, n),            \
        .elements = &sl_ap_any_elem                                                                \
    }

static const char *const sl_ap_llama2_formats[] = {"raw", "openai", "ollama", NULL};
static const char *const sl_ap_mistral_formats[] = {"openai", "ollama", NULL};

#define O sl_ap_raw_options_t
static const sl_field_t sl_ap_f_options[] = {
    INT(max_tokens, O, 1, 2147483647.0),
    NUM(temperature, O, 0, 5),
    NUM(top_p, O, 0, 1),
    INT(top_k, O, 0, 500),
    COST(input_cost, O), /* Kong: gt = 0 (conf.c: 0 is refused, not "free") */
    COST(output_cost, O),
    COST(cache_read_cost, O),
    COST(cache_write_cost, O),
    TIERS(cache_write_cost_list),
    TIERS(context_window_factor),
    TIERS(service_tier_factor),
    STR(upstream_url, O),
    STR(upstream_path, O),
    REC(dashscope, O, sl_ap_dashscope_schema),
    STR(anthropic_version, O),
    STR(azure_instance, O),
    {.name = "azure_api_version",
     .type = SL_FIELD_STRING,
     .flags = SL_FIELD_RANGE,
     .offset = offsetof(O, azure_api_version),
     .def = "\"2023-05-15\"",
     .min = 1,
     .max = STR_MAX,
     .check = sl_ap_plain},
    STR(azure_deployment_id, O),
    ONE_OF(llama2_format, O, sl_ap_llama2_formats, NULL),
    ONE_OF(mistral_format, O, sl_ap_mistral_formats, NULL),
    INT(embeddings_dimensions, O, 1, 2147483647.0),
    REC(bedrock, O, sl_ap_bedrock_schema),
    REC(gemini, O, sl_ap_gemini_schema),
    REC(huggingface, O, sl_ap_huggingface_schema),
    REC(cohere, O, sl_ap_cohere_schema),
    REC(databricks, O, sl_ap_databricks_schema),
    END,
};
#undef O
static const sl_schema_t sl_ap_options_schema = {sizeof(sl_ap_raw_options_t), sl_ap_f_options,
                                                 NULL};

/* ------------------------------------------------------------- model */

static const char *const sl_ap_providers[] = {
    "openai",   "azure",    "anthropic",   "cohere",    "mistral",    "llama2",
    "gemini",   "bedrock",  "huggingface", "dashscope", "databricks", "xai",
    "cerebras", "deepseek", "ollama",      "vllm",      NULL};

static const sl_field_t sl_ap_f_model[] = {
    {.name = "provider",
     .type = SL_FIELD_STRING,
     .flags = SL_FIELD_REQUIRED,
     .offset = offsetof(sl_ap_raw_model_t, provider),
     .one_of = sl_ap_providers},
    STR(name, sl_ap_raw_model_t),
    STR(model_alias, sl_ap_raw_model_t),
    REC(options, sl_ap_raw_model_t, sl_ap_options_schema),
    END,
};
static const sl_schema_t sl_ap_model_schema = {sizeof(sl_ap_raw_model_t), sl_ap_f_model, NULL};

/* -------------------------------------------------------------- auth */

static const char *const sl_ap_param_locations[] = {"query", "body", NULL};

#define A sl_ap_raw_auth_t
static const sl_field_t sl_ap_f_auth[] = {
    REF(header_name, A),
    REF(header_value, A),
    REF(param_name, A),
    REF(param_value, A),
    ONE_OF(param_location, A, sl_ap_param_locations, NULL),
    BOOL(allow_override, A, "false"),
    BOOL(azure_use_managed_identity, A, "false"),
    STR(azure_client_id, A),
    REF(azure_client_secret, A),
    STR(azure_tenant_id, A),
    BOOL(gcp_use_service_account, A, "false"),
    REF(gcp_service_account_json, A),
    STR(gcp_metadata_url, A),
    STR(gcp_oauth_token_url, A),
    REF(aws_access_key_id, A),
    REF(aws_secret_access_key, A),
    END,
};
#undef A
static const sl_schema_t sl_ap_auth_schema = {sizeof(sl_ap_raw_auth_t), sl_ap_f_auth, NULL};

/* ----------------------------------------------------------- logging */

static const sl_field_t sl_ap_f_logging[] = {
    BOOL(log_statistics, sl_ap_raw_logging_t, "false"),
    BOOL(log_payloads, sl_ap_raw_logging_t, "false"),
    END,
};
static const sl_schema_t sl_ap_logging_schema = {sizeof(sl_ap_raw_logging_t), sl_ap_f_logging,
                                                 NULL};

/* ------------------------------------------------- the target, the config */

const char *const sl_ap_route_types_later[] = {"llm/v1/responses",
                                               "llm/v1/assistants",
                                               "llm/v1/files",
                                               "llm/v1/batches",
                                               "image/v1/images/generations",
                                               "image/v1/images/edits",
                                               "audio/v1/audio/speech",
                                               "audio/v1/audio/transcriptions",
                                               "audio/v1/audio/translations",
                                               "realtime/v1/realtime",
                                               "video/v1/videos/generations",
                                               NULL};
static const char *const sl_ap_route_types[] = {"llm/v1/chat",
                                                "llm/v1/completions",
                                                "llm/v1/embeddings",
                                                "preserve",
                                                "llm/v1/responses",
                                                "llm/v1/assistants",
                                                "llm/v1/files",
                                                "llm/v1/batches",
                                                "image/v1/images/generations",
                                                "image/v1/images/edits",
                                                "audio/v1/audio/speech",
                                                "audio/v1/audio/transcriptions",
                                                "audio/v1/audio/translations",
                                                "realtime/v1/realtime",
                                                "video/v1/videos/generations",
                                                NULL};

#define T sl_ap_raw_target_t
#define TARGET_FIELDS                                                                              \
    {.name = "route_type",                                                                         \
     .type = SL_FIELD_STRING,                                                                      \
     .flags = SL_FIELD_REQUIRED,                                                                   \
     .offset = offsetof(T, route_type),                                                            \
     .one_of = sl_ap_route_types},                                                                 \
        {.name = "auth",                                                                           \
         .type = SL_FIELD_RECORD,                                                                  \
         .offset = offsetof(T, auth),                                                              \
         .record = &sl_ap_auth_schema},                                                            \
        {.name = "model",                                                                          \
         .type = SL_FIELD_RECORD,                                                                  \
         .flags = SL_FIELD_REQUIRED,                                                               \
         .offset = offsetof(T, model),                                                             \
         .record = &sl_ap_model_schema},                                                           \
        REC(logging, T, sl_ap_logging_schema)

static const sl_field_t sl_ap_f_target[] = {TARGET_FIELDS, END};
const sl_schema_t sl_ap_target_schema = {sizeof(sl_ap_raw_target_t), sl_ap_f_target, NULL};

static const char *const sl_ap_formats[] = {"openai", "anthropic",   "bedrock", "gemini",
                                            "cohere", "huggingface", NULL};
static const char *const sl_ap_streamings[] = {"allow", "deny", "always", NULL};
static const char *const sl_ap_categories[] = {"text/generation",
                                               "text/embeddings",
                                               "image/generation",
                                               "audio/speech",
                                               "audio/transcription",
                                               "video/generation",
                                               NULL};

#define C sl_ap_raw_t
static const sl_field_t sl_ap_f_top[] = {
    TARGET_FIELDS,
    ONE_OF(llm_format, C, sl_ap_formats, "\"openai\""),
    ONE_OF(response_streaming, C, sl_ap_streamings, "\"allow\""),
    {.name = "max_request_body_size",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_RANGE,
     .offset = offsetof(C, max_request_body_size),
     .def = "1048576",
     .min = 0,
     .max = 2147483647.0},
    /* sluice's own: bounds what one upstream SSE event may hold in memory */
    {.name = "max_stream_event_size",
     .type = SL_FIELD_INTEGER,
     .flags = SL_FIELD_RANGE,
     .offset = offsetof(C, max_stream_event_size),
     .def = "1048576",
     .min = 0,
     .max = 2147483647.0},
    BOOL(model_name_header, C, "true"),
    ONE_OF(genai_category, C, sl_ap_categories, NULL),
    END,
};
#undef C
#undef T
const sl_schema_t sl_ap_schema = {sizeof(sl_ap_raw_t), sl_ap_f_top, NULL};
