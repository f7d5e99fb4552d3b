/* conf.c - Kong's ai-proxy configuration schema.
 *
 * Field names, defaults and ranges follow Kong 3.13 so that a decK file
 * written for Kong loads unchanged.  Keys Kong knows but sluice does not
 * implement (other providers' options, cloud auth) are accepted and
 * ignored when null/false, and refused with "not supported yet" otherwise;
 * keys Kong does not know are refused, naming the field path.  JSON null
 * means "not set" (decK dumps every field).  Not a hot path: json-c.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "ai_proxy.h"

typedef struct sl_ap_cp {
    sl_ap_conf_err_fn err;
    void *ud;
    int nerr;
} sl_ap_cp_t;

static void sl_ap_cp_err(sl_ap_cp_t *cp, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sl_ap_cp_err(sl_ap_cp_t *cp, const char *field, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cp->err(cp->ud, field, msg);
    cp->nerr++;
}

static int
sl_ap_in(const char *key, const char *const *list)
{
    for (; *list; list++) {
        if (strcmp(key, *list) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Is `v` unset (absent or null)? */
#define UNSET(v) ((v) == NULL || json_object_get_type(v) == json_type_null)

/* Check an object's keys: known ones, and Kong's unsupported ones (must be
 * null/false/empty). */
static void
sl_ap_check_keys(sl_ap_cp_t *cp, const char *path, json_object *o, const char *const *known,
                 const char *const *ignored)
{
    char field[160];

    json_object_object_foreach(o, key, val)
    {
        snprintf(field, sizeof(field), "%s%s%s", path, *path ? "." : "", key);
        if (sl_ap_in(key, known)) {
            continue;
        }
        if (ignored && sl_ap_in(key, ignored)) {
            if (UNSET(val) ||
                (json_object_get_type(val) == json_type_boolean && !json_object_get_boolean(val)) ||
                (json_object_get_type(val) == json_type_object &&
                 json_object_object_length(val) == 0)) {
                continue;
            }
            if (json_object_get_type(val) == json_type_object) {
                /* e.g. options.bedrock {aws_region: null}: all null is fine */
                int all_null = 1;
                json_object_object_foreach(val, k2, v2)
                {
                    (void)k2;
                    if (!UNSET(v2)) {
                        all_null = 0;
                    }
                }
                if (all_null) {
                    continue;
                }
            }
            sl_ap_cp_err(cp, field, "not supported yet by sluice");
            continue;
        }
        sl_ap_cp_err(cp, field, "unknown field");
    }
}

static json_object *
sl_ap_record(sl_ap_cp_t *cp, json_object *parent, const char *key, const char *field)
{
    json_object *v = NULL;

    if (!json_object_object_get_ex(parent, key, &v) || UNSET(v)) {
        return NULL;
    }
    if (json_object_get_type(v) != json_type_object) {
        sl_ap_cp_err(cp, field, "expected a record");
        return NULL;
    }
    return v;
}

/* String field: NULL when unset; error when not a string. */
static const char *
sl_ap_str(sl_ap_cp_t *cp, json_object *o, const char *key, const char *field)
{
    json_object *v = NULL;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) || UNSET(v)) {
        return NULL;
    }
    if (json_object_get_type(v) != json_type_string) {
        sl_ap_cp_err(cp, field, "expected a string");
        return NULL;
    }
    if (json_object_get_string_len(v) == 0) {
        sl_ap_cp_err(cp, field, "length must be at least 1");
        return NULL;
    }
    return json_object_get_string(v);
}

static int
sl_ap_bool(sl_ap_cp_t *cp, json_object *o, const char *key, const char *field, int def)
{
    json_object *v = NULL;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) || UNSET(v)) {
        return def;
    }
    if (json_object_get_type(v) != json_type_boolean) {
        sl_ap_cp_err(cp, field, "expected a boolean");
        return def;
    }
    return json_object_get_boolean(v);
}

/* Number field in [lo, hi]; `def` when unset.  integer: must be whole. */
static double
sl_ap_num(sl_ap_cp_t *cp, json_object *o, const char *key, const char *field, double def, double lo,
          double hi, int integer)
{
    json_object *v = NULL;
    double d;

    if (o == NULL || !json_object_object_get_ex(o, key, &v) || UNSET(v)) {
        return def;
    }
    if (json_object_get_type(v) != json_type_int && json_object_get_type(v) != json_type_double) {
        sl_ap_cp_err(cp, field, integer ? "expected an integer" : "expected a number");
        return def;
    }
    d = json_object_get_double(v);
    if (integer && d != (double)(int64_t)d) {
        sl_ap_cp_err(cp, field, "expected an integer");
        return def;
    }
    if (d < lo || d > hi) {
        if (hi >= 1e300) {
            sl_ap_cp_err(cp, field, "value must be at least %g", lo);
        } else {
            sl_ap_cp_err(cp, field, "value should be between %g and %g", lo, hi);
        }
        return def;
    }
    return d;
}

static char *
sl_ap_dup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* scheme://host[:port][/path][?query] */
static int
sl_ap_parse_url(sl_ap_conf_t *c, const char *url)
{
    const char *p, *h, *he, *port = NULL, *path, *q;

    p = strstr(url, "://");
    if (p == NULL) {
        return -1;
    }
    if ((p - url == 4 && strncasecmp(url, "http", 4) == 0)) {
        c->up_scheme = sl_ap_dup("http", 4);
        c->up_port = 80;
    } else if (p - url == 5 && strncasecmp(url, "https", 5) == 0) {
        c->up_scheme = sl_ap_dup("https", 5);
        c->up_port = 443;
    } else {
        return -1;
    }
    h = p + 3;
    path = h + strcspn(h, "/?#");
    if (*h == '[') {
        he = strchr(h, ']');
        if (he == NULL || he > path) {
            return -1;
        }
        c->up_host = sl_ap_dup(h + 1, (size_t)(he - h - 1));
        he++;
        if (*he == ':') {
            port = he + 1;
        } else if (he != path) {
            return -1;
        }
    } else {
        he = memchr(h, ':', (size_t)(path - h));
        if (he) {
            port = he + 1;
        } else {
            he = path;
        }
        c->up_host = sl_ap_dup(h, (size_t)(he - h));
    }
    if (c->up_host == NULL || c->up_host[0] == '\0') {
        return -1;
    }
    if (port) {
        char *end;
        long v = strtol(port, &end, 10);

        if (end != path || v < 1 || v > 65535) {
            return -1;
        }
        c->up_port = (int)v;
    }
    q = strchr(path, '?');
    if (*path == '/') {
        size_t n = q ? (size_t)(q - path) : strcspn(path, "#");
        c->up_path = sl_ap_dup(path, n);
    }
    if (q) {
        c->up_query = sl_ap_dup(q + 1, strcspn(q + 1, "#"));
    }
    return 0;
}

static const char *const sl_ap_top_keys[] = {"route_type",
                                             "llm_format",
                                             "auth",
                                             "model",
                                             "logging",
                                             "response_streaming",
                                             "max_request_body_size",
                                             "model_name_header",
                                             "genai_category",
                                             NULL};
static const char *const sl_ap_auth_keys[] = {"header_name", "header_value",   "param_name",
                                              "param_value", "param_location", "allow_override",
                                              NULL};
static const char *const sl_ap_auth_ignored[] = {
    "azure_use_managed_identity", "azure_client_id",
    "azure_client_secret",        "azure_tenant_id",
    "gcp_use_service_account",    "gcp_service_account_json",
    "aws_access_key_id",          "aws_secret_access_key",
    "aws_assume_role_arn",        "aws_role_session_name",
    "aws_sts_endpoint_url",       NULL};
static const char *const sl_ap_model_keys[] = {"provider", "name", "options", NULL};
static const char *const sl_ap_options_keys[] = {
    "max_tokens",  "temperature",  "top_p",         "top_k",     "input_cost",
    "output_cost", "upstream_url", "upstream_path", "dashscope", NULL};
static const char *const sl_ap_options_ignored[] = {"anthropic_version",
                                                    "azure_instance",
                                                    "azure_api_version",
                                                    "azure_deployment_id",
                                                    "llama2_format",
                                                    "mistral_format",
                                                    "bedrock",
                                                    "gemini",
                                                    "huggingface",
                                                    "cohere",
                                                    "embeddings_dimensions",
                                                    "databricks",
                                                    "vertex",
                                                    NULL};
static const char *const sl_ap_logging_keys[] = {"log_statistics", "log_payloads", NULL};
static const char *const sl_ap_dashscope_keys[] = {"international", NULL};
static const char *const sl_ap_route_types_later[] = {"llm/v1/completions",
                                                      "llm/v1/embeddings",
                                                      "llm/v1/responses",
                                                      "llm/v1/assistants",
                                                      "llm/v1/files",
                                                      "llm/v1/batches",
                                                      "preserve",
                                                      "image/v1/images/generations",
                                                      "image/v1/images/edits",
                                                      "audio/v1/audio/speech",
                                                      "audio/v1/audio/transcriptions",
                                                      "audio/v1/audio/translations",
                                                      "realtime/v1/realtime",
                                                      "video/v1/videos/generations",
                                                      NULL};
static const char *const sl_ap_providers_later[] = {
    "azure",   "anthropic",   "cohere",     "mistral", "llama2",   "gemini",
    "bedrock", "huggingface", "databricks", "xai",     "cerebras", NULL};

int
sl_ap_conf_parse(const char *json, size_t len, sl_ap_conf_t **out, sl_ap_conf_err_fn err, void *ud)
{
    sl_ap_cp_t cp = {err, ud, 0};
    json_tokener *tok;
    json_object *root, *auth, *model, *opts, *logging, *ds;
    sl_ap_conf_t *c;
    const char *s, *hn, *hv, *pn, *pv, *pl, *url, *upath;

    *out = NULL;
    tok = json_tokener_new();
    if (tok == NULL) {
        return -2;
    }
    root = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    if (root == NULL || json_object_get_type(root) != json_type_object) {
        sl_ap_cp_err(&cp, "", "config must be a JSON object");
        json_object_put(root);
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        json_object_put(root);
        return -2;
    }
    c->max_tokens = -1;
    c->temperature = c->top_p = -1;
    c->top_k = -1;
    c->input_cost = c->output_cost = -1;

    sl_ap_check_keys(&cp, "", root, sl_ap_top_keys, NULL);

    s = sl_ap_str(&cp, root, "route_type", "route_type");
    if (s == NULL) {
        if (cp.nerr == 0) {
            sl_ap_cp_err(&cp, "route_type", "required field missing");
        }
    } else if (strcmp(s, "llm/v1/chat") != 0) {
        if (sl_ap_in(s, sl_ap_route_types_later)) {
            sl_ap_cp_err(&cp, "route_type", "'%s' is not supported yet (only llm/v1/chat)", s);
        } else {
            sl_ap_cp_err(&cp, "route_type",
                         "expected one of: llm/v1/chat, llm/v1/completions, "
                         "llm/v1/embeddings, preserve, ... (got '%s')",
                         s);
        }
    }

    s = sl_ap_str(&cp, root, "llm_format", "llm_format");
    if (s == NULL || strcmp(s, "openai") == 0) {
        c->llm_format = SL_AP_FMT_OPENAI;
    } else if (strcmp(s, "anthropic") == 0) {
        c->llm_format = SL_AP_FMT_ANTHROPIC;
    } else if (strcmp(s, "bedrock") == 0 || strcmp(s, "gemini") == 0 || strcmp(s, "cohere") == 0 ||
               strcmp(s, "huggingface") == 0) {
        sl_ap_cp_err(&cp, "llm_format", "'%s' is not supported yet (openai, anthropic)", s);
    } else {
        sl_ap_cp_err(&cp, "llm_format", "expected one of: openai, anthropic, bedrock, gemini");
    }

    s = sl_ap_str(&cp, root, "response_streaming", "response_streaming");
    if (s == NULL || strcmp(s, "allow") == 0) {
        c->response_streaming = SL_AP_STREAM_ALLOW;
    } else if (strcmp(s, "deny") == 0) {
        c->response_streaming = SL_AP_STREAM_DENY;
    } else if (strcmp(s, "always") == 0) {
        c->response_streaming = SL_AP_STREAM_ALWAYS;
    } else {
        sl_ap_cp_err(&cp, "response_streaming", "expected one of: allow, deny, always");
    }
    c->max_request_body_size = (int64_t)sl_ap_num(
        &cp, root, "max_request_body_size", "max_request_body_size", 1048576, 0, 2147483647.0, 1);
    c->model_name_header = sl_ap_bool(&cp, root, "model_name_header", "model_name_header", 1);
    s = sl_ap_str(&cp, root, "genai_category", "genai_category");
    if (s && strcmp(s, "text/generation") != 0) {
        sl_ap_cp_err(&cp, "genai_category", "'%s' is not supported yet (text/generation)", s);
    }

    /* auth */
    auth = sl_ap_record(&cp, root, "auth", "auth");
    if (auth) {
        sl_ap_check_keys(&cp, "auth", auth, sl_ap_auth_keys, sl_ap_auth_ignored);
    }
    hn = sl_ap_str(&cp, auth, "header_name", "auth.header_name");
    hv = sl_ap_str(&cp, auth, "header_value", "auth.header_value");
    pn = sl_ap_str(&cp, auth, "param_name", "auth.param_name");
    pv = sl_ap_str(&cp, auth, "param_value", "auth.param_value");
    pl = sl_ap_str(&cp, auth, "param_location", "auth.param_location");
    c->allow_override = sl_ap_bool(&cp, auth, "allow_override", "auth.allow_override", 0);
    if ((hn == NULL) != (hv == NULL)) {
        sl_ap_cp_err(&cp, "auth",
                     "all or none of these fields must be set: 'header_name', 'header_value'");
    } else if (hn) {
        const char *q;
        for (q = hn; *q; q++) {
            if (!isalnum((unsigned char)*q) && !strchr("!#$%&'*+-.^_`|~", *q)) {
                sl_ap_cp_err(&cp, "auth.header_name", "invalid header name");
                break;
            }
        }
        if (strpbrk(hv, "\r\n")) {
            sl_ap_cp_err(&cp, "auth.header_value", "must not contain line breaks");
        }
        c->header_name = strdup(hn);
        c->header_value = strdup(hv);
    }
    if (pl && strcmp(pl, "query") != 0 && strcmp(pl, "body") != 0) {
        sl_ap_cp_err(&cp, "auth.param_location", "expected one of: query, body");
    }
    if ((pn == NULL) != (pv == NULL) || (pn == NULL) != (pl == NULL)) {
        sl_ap_cp_err(&cp, "auth",
                     "all or none of these fields must be set: 'param_name', "
                     "'param_value', 'param_location'");
    } else if (pn) {
        c->param_name = strdup(pn);
        c->param_value = strdup(pv);
        c->param_location = strcmp(pl, "body") == 0 ? SL_AP_PARAM_BODY : SL_AP_PARAM_QUERY;
    }

    /* model */
    model = sl_ap_record(&cp, root, "model", "model");
    if (model == NULL) {
        sl_ap_cp_err(&cp, "model", "required field missing");
    } else {
        sl_ap_check_keys(&cp, "model", model, sl_ap_model_keys, NULL);
        s = sl_ap_str(&cp, model, "provider", "model.provider");
        if (s == NULL) {
            sl_ap_cp_err(&cp, "model.provider", "required field missing");
        } else if (strcmp(s, "dashscope") == 0) {
            c->provider = SL_AP_PROV_DASHSCOPE;
        } else if (strcmp(s, "openai") == 0) {
            c->provider = SL_AP_PROV_OPENAI;
        } else if (sl_ap_in(s, sl_ap_providers_later)) {
            sl_ap_cp_err(&cp, "model.provider", "'%s' is not supported yet (dashscope, openai)", s);
        } else {
            sl_ap_cp_err(&cp, "model.provider",
                         "expected one of: openai, azure, anthropic, cohere, "
                         "mistral, llama2, gemini, bedrock, huggingface, dashscope, ...");
        }
        c->provider_name = strdup(c->provider == SL_AP_PROV_OPENAI ? "openai" : "dashscope");
        s = sl_ap_str(&cp, model, "name", "model.name");
        if (s) {
            c->model_name = strdup(s);
        }
    }
    opts = model ? sl_ap_record(&cp, model, "options", "model.options") : NULL;
    if (opts) {
        sl_ap_check_keys(&cp, "model.options", opts, sl_ap_options_keys, sl_ap_options_ignored);
    }
    c->max_tokens = (int64_t)sl_ap_num(&cp, opts, "max_tokens", "model.options.max_tokens", -1, 1,
                                       2147483647.0, 1);
    c->temperature = sl_ap_num(&cp, opts, "temperature", "model.options.temperature", -1, 0, 5, 0);
    c->top_p = sl_ap_num(&cp, opts, "top_p", "model.options.top_p", -1, 0, 1, 0);
    c->top_k = (int64_t)sl_ap_num(&cp, opts, "top_k", "model.options.top_k", -1, 0, 500, 1);
    c->input_cost = sl_ap_num(&cp, opts, "input_cost", "model.options.input_cost", -1, 0, 1e308, 0);
    c->output_cost =
        sl_ap_num(&cp, opts, "output_cost", "model.options.output_cost", -1, 0, 1e308, 0);
    ds = opts ? sl_ap_record(&cp, opts, "dashscope", "model.options.dashscope") : NULL;
    if (ds) {
        sl_ap_check_keys(&cp, "model.options.dashscope", ds, sl_ap_dashscope_keys, NULL);
    }
    c->international =
        sl_ap_bool(&cp, ds, "international", "model.options.dashscope.international", 1);
    url = sl_ap_str(&cp, opts, "upstream_url", "model.options.upstream_url");
    upath = sl_ap_str(&cp, opts, "upstream_path", "model.options.upstream_path");
    if (upath && upath[0] != '/') {
        sl_ap_cp_err(&cp, "model.options.upstream_path", "should start with: /");
        upath = NULL;
    }
    if (url) {
        if (sl_ap_parse_url(c, url) != 0) {
            sl_ap_cp_err(&cp, "model.options.upstream_url",
                         "invalid URL (expected http(s)://host[:port][/path])");
        }
    } else {
        c->up_scheme = strdup("https");
        c->up_port = 443;
        if (c->provider == SL_AP_PROV_OPENAI) {
            c->up_host = strdup("api.openai.com");
        } else {
            c->up_host =
                strdup(c->international ? "dashscope-intl.aliyuncs.com" : "dashscope.aliyuncs.com");
        }
    }
    if (upath) {
        free(c->up_path);
        c->up_path = strdup(upath);
    }
    if (c->up_path == NULL) {
        c->up_path =
            strdup(c->provider == SL_AP_PROV_OPENAI ? "/v1/chat/completions"
                                                    : "/compatible-mode/v1/chat/completions");
    }
    if (c->model_name && c->provider_name) {
        size_t n = strlen(c->provider_name) + strlen(c->model_name) + 2;
        c->model_header = malloc(n);
        if (c->model_header) {
            snprintf(c->model_header, n, "%s/%s", c->provider_name, c->model_name);
        }
    }

    /* logging */
    logging = sl_ap_record(&cp, root, "logging", "logging");
    if (logging) {
        sl_ap_check_keys(&cp, "logging", logging, sl_ap_logging_keys, NULL);
    }
    c->log_statistics = sl_ap_bool(&cp, logging, "log_statistics", "logging.log_statistics", 0);
    c->log_payloads = sl_ap_bool(&cp, logging, "log_payloads", "logging.log_payloads", 0);

    json_object_put(root);
    if (cp.nerr > 0) {
        sl_ap_conf_free(c);
        return -1;
    }
    if (c->up_scheme == NULL || c->up_host == NULL || c->up_path == NULL ||
        (c->model_name && c->model_header == NULL) || c->provider_name == NULL) {
        sl_ap_conf_free(c);
        return -2;
    }
    *out = c;
    return 0;
}

void
sl_ap_conf_free(sl_ap_conf_t *c)
{
    if (c == NULL) {
        return;
    }
    free(c->provider_name);
    free(c->model_name);
    free(c->model_header);
    free(c->header_name);
    free(c->header_value);
    free(c->param_name);
    free(c->param_value);
    free(c->up_scheme);
    free(c->up_host);
    free(c->up_path);
    free(c->up_query);
    free(c);
}
