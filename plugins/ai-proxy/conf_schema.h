/* conf_schema.h - ai-proxy's config as the host's schema checker fills it:
 * one struct per Kong record, member for member (Kong 3.14's field names).
 *
 * conf_schema.c describes these structs as field tables (types, defaults,
 * ranges, one-of lists); api->conf_schema_check checks the JSON against
 * them and fills them; conf.c turns the filled struct into an
 * sl_ap_target_t (vault references, provider rules, the upstream URL).
 *
 * A new config field: a member here, a row in conf_schema.c, and its use
 * (or its refusal while sluice does not implement it) in conf.c. */

#ifndef SL_AP_CONF_SCHEMA_H
#define SL_AP_CONF_SCHEMA_H

#include "sluice/plugin.h"

/* model.options.dashscope.models.<name> (unset: -1 / INT64_MIN / NULL,
 * the built-in row is kept) */
typedef struct sl_ap_raw_dsmodel {
    int64_t max_output_tokens;
    char *thinking; /* no | stream | yes */
    int json_schema, cache, search;
} sl_ap_raw_dsmodel_t;

typedef struct sl_ap_raw_dashscope {
    int international;
    char *api; /* openai | anthropic */
    int web_search;
    char *search_options;   /* JSON text */
    sl_conf_array_t models; /* sl_conf_pair_t: name -> JSON (sl_ap_dsmodel_schema) */
} sl_ap_raw_dashscope_t;

typedef struct sl_ap_raw_bedrock {
    char *aws_region, *aws_assume_role_arn, *aws_role_session_name, *aws_sts_endpoint_url;
    char *batch_bucket_prefix, *batch_role_arn, *performance_config_latency;
    char *video_output_s3_uri;
    int embeddings_normalize;
} sl_ap_raw_bedrock_t;

typedef struct sl_ap_raw_gemini {
    char *api_endpoint, *project_id, *location_id, *endpoint_id;
    char *embedding_input_type; /* one of sl_ap_gemini_task_types */
} sl_ap_raw_gemini_t;

typedef struct sl_ap_raw_huggingface {
    int use_cache, wait_for_model;
} sl_ap_raw_huggingface_t;

typedef struct sl_ap_raw_cohere {
    char *embedding_input_type;
    int wait_for_model;
} sl_ap_raw_cohere_t;

typedef struct sl_ap_raw_databricks {
    char *workspace_instance_id;
} sl_ap_raw_databricks_t;

/* model.options: numbers unset are INT64_MIN / NAN (SL_FIELD_MARK_UNSET) */
typedef struct sl_ap_raw_options {
    int64_t max_tokens, top_k, embeddings_dimensions;
    double temperature, top_p;
    double input_cost, output_cost, cache_read_cost, cache_write_cost;
    sl_conf_array_t cache_write_cost_list, context_window_factor, service_tier_factor;
    char *upstream_url, *upstream_path;
    char *anthropic_version, *azure_instance, *azure_api_version, *azure_deployment_id;
    char *llama2_format, *mistral_format;
    sl_ap_raw_dashscope_t dashscope;
    sl_ap_raw_bedrock_t bedrock;
    sl_ap_raw_gemini_t gemini;
    sl_ap_raw_huggingface_t huggingface;
    sl_ap_raw_cohere_t cohere;
    sl_ap_raw_databricks_t databricks;
} sl_ap_raw_options_t;

typedef struct sl_ap_raw_model {
    char *provider, *name, *model_alias;
    sl_ap_raw_options_t options;
} sl_ap_raw_model_t;

typedef struct sl_ap_raw_auth {
    /* Kong's referenceable fields: may hold {vault://env/NAME} */
    char *header_name, *header_value, *param_name, *param_value;
    char *aws_access_key_id, *aws_secret_access_key;
    char *azure_client_secret, *gcp_service_account_json;
    char *param_location; /* query | body */
    int allow_override;
    int azure_use_managed_identity, gcp_use_service_account;
    char *azure_client_id, *azure_tenant_id;
    char *gcp_metadata_url, *gcp_oauth_token_url;
} sl_ap_raw_auth_t;

typedef struct sl_ap_raw_logging {
    int log_statistics, log_payloads;
} sl_ap_raw_logging_t;

/* What one target is made of (ai-proxy's config, or an ai-proxy-advanced
 * target through sl_ap_target_parse). */
typedef struct sl_ap_raw_target {
    char *route_type;
    sl_ap_raw_auth_t auth;
    sl_ap_raw_model_t model;
    sl_ap_raw_logging_t logging;
} sl_ap_raw_target_t;

/* ai-proxy's whole config: the target's members and the route's settings. */
typedef struct sl_ap_raw {
    sl_ap_raw_target_t t;
    char *llm_format, *response_streaming, *genai_category;
    int64_t max_request_body_size, max_stream_event_size;
    int model_name_header;
} sl_ap_raw_t;

extern const sl_schema_t sl_ap_schema;         /* sl_ap_raw_t */
extern const sl_schema_t sl_ap_target_schema;  /* sl_ap_raw_target_t */
extern const sl_schema_t sl_ap_dsmodel_schema; /* sl_ap_raw_dsmodel_t */
/* options.gemini.embedding_input_type's values: Google's TaskType names in
 * lower case (NULL-terminated) */
extern const char *const sl_ap_gemini_task_types[];

/* Kong's route_type values sluice does not serve yet (NULL-terminated). */
extern const char *const sl_ap_route_types_later[];

#endif
