/* conf.c - Kong's ai-proxy configuration schema.
 *
 * Field names, defaults and ranges follow Kong 3.14 so that a decK file
 * written for Kong, or dumped by its Admin API with every default filled
 * in, loads unchanged.  The schema is a table (sl_ap_f_top below): keys
 * Kong knows but sluice does not implement (other providers' options,
 * cloud auth) are accepted at their default and refused with "not
 * supported yet" otherwise; keys Kong does not know are refused, naming the
 * field path.  JSON null means "not set".  Vault references ({vault://env/
 * NAME}) are resolved in Kong's referenceable fields.  Not a hot path:
 * json-c.
 */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "ai_proxy.h"
#include "token.h"

typedef struct sl_ap_cp {
    sl_ap_conf_err_fn err;
    void *ud;
    int nerr;
    const char *prefix; /* put before every field path ("targets[0]"), "" for none */
    char *keep[8];      /* resolved vault values, freed when parsing ends */
    int nkeep;
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
    if (cp->prefix && cp->prefix[0]) {
        char full[256];

        snprintf(full, sizeof(full), "%s%s%s", cp->prefix, field[0] ? "." : "", field);
        cp->err(cp->ud, full, msg);
    } else {
        cp->err(cp->ud, field, msg);
    }
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

/* A Kong vault reference, {vault://env/NAME} or {vault://env/NAME/KEY}
 * (the variable holds a JSON object), resolved as Kong's env vault does:
 * NAME upper-cased, '-' -> '_'.  Other vaults are refused: the reference
 * must never travel upstream as literal text.  NULL after an error. */
static const char *
sl_ap_vault(sl_ap_cp_t *cp, const char *field, const char *ref)
{
    char name[128], key[128] = "";
    const char *p = ref + 9, *e, *val;
    size_t n, i;

    e = strchr(p, '/');
    if (e == NULL || (size_t)(e - p) != 3 || memcmp(p, "env", 3) != 0) {
        sl_ap_cp_err(cp, field,
                     "vault reference %.60s: only the env vault ({vault://env/NAME}) is "
                     "supported by sluice",
                     ref);
        return NULL;
    }
    p = e + 1;
    n = strcspn(p, "/}?");
    if (n == 0 || n >= sizeof(name) || p[strlen(p) - 1] != '}') {
        sl_ap_cp_err(cp, field, "invalid vault reference (expected {vault://env/NAME})");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        name[i] = p[i] == '-' ? '_' : (char)toupper((unsigned char)p[i]);
    }
    name[n] = '\0';
    if (p[n] == '/') {
        size_t kn = strcspn(p + n + 1, "}?");

        if (kn == 0 || kn >= sizeof(key)) {
            sl_ap_cp_err(cp, field, "invalid vault reference key");
            return NULL;
        }
        memcpy(key, p + n + 1, kn);
        key[kn] = '\0';
    } else if (p[n] == '?') {
        sl_ap_cp_err(cp, field, "vault reference options (?...) are not supported by sluice");
        return NULL;
    }
    val = getenv(name);
    if (val == NULL) {
        sl_ap_cp_err(cp, field, "vault reference: environment variable %s is not set", name);
        return NULL;
    }
    if (key[0]) {
        json_object *j = json_tokener_parse(val), *kv = NULL;
        char *copy = NULL;

        if (j && json_object_object_get_ex(j, key, &kv) &&
            json_object_get_type(kv) == json_type_string &&
            cp->nkeep < (int)(sizeof(cp->keep) / sizeof(cp->keep[0]))) {
            copy = strdup(json_object_get_string(kv));
        }
        json_object_put(j);
        if (copy == NULL) {
            sl_ap_cp_err(cp, field, "vault reference: %s is not a JSON object with a string '%s'",
                         name, key);
            return NULL;
        }
        cp->keep[cp->nkeep++] = copy;
        val = copy;
    }
    if (val[0] == '\0') {
        sl_ap_cp_err(cp, field, "vault reference: environment variable %s is empty", name);
        return NULL;
    }
    return val;
}

/* String field: NULL when unset; error when not a string.  `ref`: Kong
 * marks the field referenceable (a vault reference is resolved); in any
 * other field a reference is refused rather than used as text. */
static const char *
sl_ap_str_ref(sl_ap_cp_t *cp, json_object *o, const char *key, const char *field, int ref)
{
    json_object *v = NULL;
    const char *s;

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
    s = json_object_get_string(v);
    if (strncmp(s, "{vault://", 9) == 0) {
        if (!ref) {
            sl_ap_cp_err(cp, field,
                         "vault references are resolved only in auth.header_name, "
                         "header_value, param_name and param_value (Kong's referenceable "
                         "fields)");
            return NULL;
        }
        return sl_ap_vault(cp, field, s);
    }
    return s;
}

#define sl_ap_str(cp, o, key, field) sl_ap_str_ref(cp, o, key, field, 0)

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
sl_ap_parse_url(sl_ap_target_t *c, const char *url)
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

/* ------------------------------------------------------------- the schema
 *
 * Every field of Kong 3.14's ai-proxy config (its published plugin schema;
 * the open-source 3.9 schema.lua / llm/schemas/init.lua for what it has),
 * so that a config dumped by Kong's Admin API or decK, which fills in every
 * default, loads unchanged.  Each field is one of:
 *   USED     implemented: type and range checked where it is read below
 *   DEFAULT  not used by sluice (it configures a provider, a cloud identity
 *            or a route type sluice does not have): accepted when null or
 *            equal to Kong's default, refused with a message otherwise
 *   ANY      not used and harmless whatever its value (its only effect is
 *            behind another field that must stay at its default)
 * Keys not in the table are refused, naming the field path. */

typedef enum {
    SL_AP_T_STR,
    SL_AP_T_BOOL,
    SL_AP_T_INT,
    SL_AP_T_NUM,
    SL_AP_T_REC,
    SL_AP_T_ARR,
    SL_AP_T_OBJ
} sl_ap_ftype_t;
typedef enum { SL_AP_U_USED, SL_AP_U_DEFAULT, SL_AP_U_ANY } sl_ap_fuse_t;

typedef struct sl_ap_field {
    const char *name;
    uint8_t type;                  /* sl_ap_ftype_t */
    uint8_t use;                   /* sl_ap_fuse_t */
    const char *def;               /* DEFAULT: Kong's default as JSON text, NULL = none */
    const char *why;               /* DEFAULT: what it is for (the refusal says so) */
    const struct sl_ap_field *sub; /* REC: its fields, NULL-name terminated */
} sl_ap_field_t;

#define USED(n, t)                                                                                 \
    {                                                                                              \
        n, SL_AP_T_##t, SL_AP_U_USED, NULL, NULL, NULL                                             \
    }
#define REC(n, sub)                                                                                \
    {                                                                                              \
        n, SL_AP_T_REC, SL_AP_U_USED, NULL, NULL, sub                                              \
    }
#define INERT(n, t, def, why)                                                                      \
    {                                                                                              \
        n, SL_AP_T_##t, SL_AP_U_DEFAULT, def, why, NULL                                            \
    }
#define INERT_REC(n, sub, why)                                                                     \
    {                                                                                              \
        n, SL_AP_T_REC, SL_AP_U_DEFAULT, NULL, why, sub                                            \
    }
#define ANY(n, t)                                                                                  \
    {                                                                                              \
        n, SL_AP_T_##t, SL_AP_U_ANY, NULL, NULL, NULL                                              \
    }
#define END                                                                                        \
    {                                                                                              \
        NULL, 0, 0, NULL, NULL, NULL                                                               \
    }

static const sl_ap_field_t sl_ap_f_auth[] = {
    USED("header_name", STR),
    USED("header_value", STR),
    USED("param_name", STR),
    USED("param_value", STR),
    USED("param_location", STR),
    USED("allow_override", BOOL),
    USED("azure_use_managed_identity", BOOL),
    ANY("azure_client_id", STR),
    ANY("azure_client_secret", STR),
    ANY("azure_tenant_id", STR),
    USED("gcp_use_service_account", BOOL),
    ANY("gcp_service_account_json", STR),
    ANY("gcp_metadata_url", STR),
    ANY("gcp_oauth_token_url", STR),
    USED("aws_access_key_id", STR),
    USED("aws_secret_access_key", STR),
    END,
};

static const sl_ap_field_t sl_ap_f_bedrock[] = {
    ANY("aws_region", STR),
    ANY("aws_assume_role_arn", STR),
    ANY("aws_role_session_name", STR),
    ANY("aws_sts_endpoint_url", STR),
    ANY("batch_bucket_prefix", STR),
    ANY("batch_role_arn", STR),
    INERT("embeddings_normalize", BOOL, "false", "bedrock embeddings"),
    ANY("performance_config_latency", STR),
    ANY("video_output_s3_uri", STR),
    END,
};
static const sl_ap_field_t sl_ap_f_gemini[] = {
    ANY("api_endpoint", STR),
    ANY("project_id", STR),
    ANY("location_id", STR),
    ANY("endpoint_id", STR),
    END,
};
static const sl_ap_field_t sl_ap_f_huggingface[] = {
    ANY("use_cache", BOOL),
    ANY("wait_for_model", BOOL),
    END,
};
static const sl_ap_field_t sl_ap_f_cohere[] = {
    INERT("embedding_input_type", STR, "\"classification\"", "cohere embeddings"),
    ANY("wait_for_model", BOOL),
    END,
};
static const sl_ap_field_t sl_ap_f_databricks[] = {
    ANY("workspace_instance_id", STR),
    END,
};
/* dashscope: Kong's `international` plus sluice extensions (docs/ai-proxy.md) */
static const sl_ap_field_t sl_ap_f_dashscope[] = {
    USED("international", BOOL), USED("api", STR),    USED("web_search", BOOL),
    USED("search_options", OBJ), USED("models", OBJ), END,
};

static const sl_ap_field_t sl_ap_f_options[] = {
    USED("max_tokens", INT),
    USED("temperature", NUM),
    USED("top_p", NUM),
    USED("top_k", INT),
    USED("input_cost", NUM),
    USED("output_cost", NUM),
    USED("cache_read_cost", NUM),
    USED("cache_write_cost", NUM),
    INERT("cache_write_cost_list", ARR, "[]", "per-TTL cache pricing (1h TTL)"),
    INERT("context_window_factor", ARR, "[]", "context-window pricing tiers"),
    INERT("service_tier_factor", ARR, "[]", "service-tier pricing"),
    USED("upstream_url", STR),
    USED("upstream_path", STR),
    REC("dashscope", sl_ap_f_dashscope),
    USED("anthropic_version", STR),
    USED("azure_instance", STR),
    USED("azure_api_version", STR),
    USED("azure_deployment_id", STR),
    USED("llama2_format", STR),
    USED("mistral_format", STR),
    INERT("embeddings_dimensions", INT, NULL, "llm/v1/embeddings"),
    REC("bedrock", sl_ap_f_bedrock),
    REC("gemini", sl_ap_f_gemini),
    REC("huggingface", sl_ap_f_huggingface),
    REC("cohere", sl_ap_f_cohere),
    REC("databricks", sl_ap_f_databricks),
    END,
};

static const sl_ap_field_t sl_ap_f_model[] = {
    USED("provider", STR),
    USED("name", STR),
    USED("model_alias", STR),
    REC("options", sl_ap_f_options),
    END,
};
static const sl_ap_field_t sl_ap_f_logging[] = {
    USED("log_statistics", BOOL),
    USED("log_payloads", BOOL),
    END,
};
/* The members a target is made of (sl_ap_target_parse checks them). */
static const sl_ap_field_t sl_ap_f_target[] = {
    USED("route_type", STR),
    REC("auth", sl_ap_f_auth),
    REC("model", sl_ap_f_model),
    REC("logging", sl_ap_f_logging),
    END,
};
static const sl_ap_field_t sl_ap_f_top[] = {
    /* the target's members: checked and read by sl_ap_target_parse */
    USED("route_type", STR),
    USED("auth", OBJ),
    USED("model", OBJ),
    USED("logging", OBJ),
    USED("llm_format", STR),
    USED("response_streaming", STR),
    USED("max_request_body_size", INT),
    USED("max_stream_event_size", INT), /* sluice's own */
    USED("model_name_header", BOOL),
    USED("genai_category", STR),
    END,
};

/* Does `v` have the JSON type of `t` (null always does: "not set")? */
static int
sl_ap_type_ok(json_object *v, int t)
{
    enum json_type jt = json_object_get_type(v);

    switch (t) {
    case SL_AP_T_STR:
        return jt == json_type_string;
    case SL_AP_T_BOOL:
        return jt == json_type_boolean;
    case SL_AP_T_INT:
        return jt == json_type_int;
    case SL_AP_T_NUM:
        return jt == json_type_int || jt == json_type_double;
    case SL_AP_T_ARR:
        return jt == json_type_array;
    default:
        return jt == json_type_object;
    }
}

/* Is `v` null or Kong's default `def` (JSON text)? */
static int
sl_ap_is_default(json_object *v, const char *def)
{
    json_object *d;
    int eq;

    if (UNSET(v)) {
        return 1;
    }
    if (def == NULL) {
        return 0;
    }
    d = json_tokener_parse(def);
    eq = d != NULL && json_object_equal(v, d);
    json_object_put(d);
    return eq;
}

static void sl_ap_schema_check(sl_ap_cp_t *cp, const char *path, json_object *o,
                               const sl_ap_field_t *fields, const char *inert_why);

/* One field's value against its table row. */
static void
sl_ap_field_check(sl_ap_cp_t *cp, const char *field, json_object *v, const sl_ap_field_t *f,
                  const char *inert_why)
{
    static const char *const tname[] = {"a string", "a boolean", "an integer", "a number",
                                        "a record", "an array",  "an object"};
    int use = inert_why && f->use == SL_AP_U_USED ? SL_AP_U_DEFAULT : f->use;
    const char *why = f->why ? f->why : inert_why;

    if (UNSET(v)) {
        return;
    }
    if (!sl_ap_type_ok(v, f->type)) {
        if (f->use != SL_AP_U_USED) { /* USED fields are reported where read */
            sl_ap_cp_err(cp, field, "expected %s", tname[f->type]);
        }
        return;
    }
    if (f->type == SL_AP_T_REC) {
        sl_ap_schema_check(cp, field, v, f->sub, use == SL_AP_U_DEFAULT ? why : NULL);
        return;
    }
    if (use == SL_AP_U_DEFAULT && !sl_ap_is_default(v, f->def)) {
        sl_ap_cp_err(cp, field, "not supported yet by sluice (used by %s); leave it unset%s%s", why,
                     f->def ? " or at Kong's default " : "", f->def ? f->def : "");
    }
}

/* Check an object's members against a field table: unknown keys, the types
 * of unused fields, unused fields set away from their default. */
static void
sl_ap_schema_check(sl_ap_cp_t *cp, const char *path, json_object *o, const sl_ap_field_t *fields,
                   const char *inert_why)
{
    char field[160];
    const sl_ap_field_t *f;

    json_object_object_foreach(o, key, val)
    {
        snprintf(field, sizeof(field), "%s%s%s", path, *path ? "." : "", key);
        for (f = fields; f->name && strcmp(f->name, key) != 0; f++) {
        }
        if (f->name == NULL) {
            sl_ap_cp_err(cp, field, "unknown field");
            continue;
        }
        sl_ap_field_check(cp, field, val, f, inert_why);
    }
}

/* Kong's one_of lists, for "not supported yet" vs "expected one of". */
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
static const char *const sl_ap_genai_later[] = {"text/embeddings",  "image/generation",
                                                "audio/speech",     "audio/transcription",
                                                "video/generation", NULL};
/* A per-1M-token price: Kong's schema says gt = 0, so 0 is an error. */
static double
sl_ap_cost(sl_ap_cp_t *cp, json_object *opts, const char *key)
{
    char field[64];
    json_object *v = NULL;

    snprintf(field, sizeof(field), "model.options.%s", key);
    if (opts && json_object_object_get_ex(opts, key, &v) && !UNSET(v) &&
        (json_object_get_type(v) == json_type_int || json_object_get_type(v) == json_type_double) &&
        json_object_get_double(v) <= 0) {
        sl_ap_cp_err(cp, field, "value must be greater than 0");
        return -1;
    }
    return sl_ap_num(cp, opts, key, field, -1, 0, 1e308, 0);
}

/* model.options.dashscope.models.<name>: {max_output_tokens, thinking
 * (no|stream|yes), json_schema, cache, search}, each overriding the
 * built-in row (or the defaults of an unknown model). */
static void
sl_ap_model_override(sl_ap_cp_t *cp, const char *name, json_object *o, sl_ap_model_t *m)
{
    static const char *const keys[] = {
        "max_output_tokens", "thinking", "json_schema", "cache", "search", NULL};
    char field[160], base[128];
    const char *s;

    if (name == NULL) {
        return;
    }
    sl_ap_model_facts(NULL, name, strlen(name), m);
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->known = 1;
    snprintf(base, sizeof(base), "model.options.dashscope.models.%.60s", name);
    if (strlen(name) >= sizeof(m->name)) {
        sl_ap_cp_err(cp, base, "model name too long");
        return;
    }
    if (json_object_get_type(o) != json_type_object) {
        sl_ap_cp_err(cp, base, "expected a record");
        return;
    }
    json_object_object_foreach(o, k, v)
    {
        (void)v;
        if (!sl_ap_in(k, keys)) {
            snprintf(field, sizeof(field), "%s.%s", base, k);
            sl_ap_cp_err(cp, field, "unknown field");
        }
    }
#define F(k) (snprintf(field, sizeof(field), "%s.%s", base, k), field)
    m->max_output = (int64_t)sl_ap_num(cp, o, "max_output_tokens", F("max_output_tokens"),
                                       (double)m->max_output, 0, 2147483647.0, 1);
    s = sl_ap_str(cp, o, "thinking", F("thinking"));
    if (s) {
        if (strcmp(s, "no") == 0) {
            m->thinking = SL_AP_THINK_NO;
        } else if (strcmp(s, "stream") == 0) {
            m->thinking = SL_AP_THINK_STREAM;
        } else if (strcmp(s, "yes") == 0) {
            m->thinking = SL_AP_THINK_YES;
        } else {
            sl_ap_cp_err(cp, field, "expected one of: no, stream, yes");
        }
    }
    m->json_schema = (uint8_t)sl_ap_bool(cp, o, "json_schema", F("json_schema"), m->json_schema);
    m->cache = (uint8_t)sl_ap_bool(cp, o, "cache", F("cache"), m->cache);
    m->search = (uint8_t)sl_ap_bool(cp, o, "search", F("search"), m->search);
#undef F
}

/* The sluice extensions under model.options.dashscope. */
static void
sl_ap_dashscope_ext(sl_ap_cp_t *cp, sl_ap_target_t *c, json_object *ds)
{
    json_object *so = NULL, *models = NULL;
    const char *s = sl_ap_str(cp, ds, "api", "model.options.dashscope.api");
    size_t n;

    if (s == NULL || strcmp(s, "openai") == 0) {
        c->api = SL_AP_API_OPENAI;
    } else if (strcmp(s, "anthropic") == 0) {
        c->api = SL_AP_API_ANTHROPIC;
    } else {
        sl_ap_cp_err(cp, "model.options.dashscope.api", "expected one of: openai, anthropic");
    }
    c->web_search = sl_ap_bool(cp, ds, "web_search", "model.options.dashscope.web_search", 0);
    if (ds && json_object_object_get_ex(ds, "search_options", &so) && !UNSET(so)) {
        if (json_object_get_type(so) != json_type_object) {
            sl_ap_cp_err(cp, "model.options.dashscope.search_options", "expected a record");
        } else {
            c->search_options = strdup(json_object_to_json_string_ext(so, JSON_C_TO_STRING_PLAIN));
        }
    }
    if (ds && json_object_object_get_ex(ds, "models", &models) && !UNSET(models)) {
        if (json_object_get_type(models) != json_type_object) {
            sl_ap_cp_err(cp, "model.options.dashscope.models", "expected a record");
            return;
        }
        n = (size_t)json_object_object_length(models);
        c->models = calloc(n ? n : 1, sizeof(*c->models));
        if (c->models == NULL) {
            sl_ap_cp_err(cp, "model.options.dashscope.models", "out of memory");
            return;
        }
        json_object_object_foreach(models, name, o)
        {
            sl_ap_model_override(cp, name, o, &c->models[c->nmodels++]);
        }
    }
}

/* Hugging Face, as Kong's driver: chat goes to <base>/v1/chat/completions
 * (the OpenAI-compatible messages API of TGI and of the router), where
 * <base> is upstream_url as given (its path included) or the default
 * api-inference.huggingface.co/models/<model.name>; completions to <base>
 * itself.  `from_url`: the base is upstream_url. */
static void
sl_ap_hf_path(sl_ap_target_t *c, int from_url)
{
    sl_ap_buf_t b = {0};
    const char *p;

    if (from_url) {
        if (c->route_type != SL_AP_ROUTE_CHAT) {
            return; /* upstream_url's path (or the row's when it has none) */
        }
        if (c->up_path_fixed && c->up_path) {
            sl_ap_buf_add(&b, c->up_path,
                          strlen(c->up_path) -
                              (c->up_path[0] && c->up_path[strlen(c->up_path) - 1] == '/'));
        }
        sl_ap_buf_adds(&b, "/v1/chat/completions");
    } else {
        if (c->up_path == NULL || (p = strstr(c->up_path, "{model}")) == NULL ||
            c->model_name == NULL) {
            return;
        }
        sl_ap_buf_add(&b, c->up_path, (size_t)(p - c->up_path));
        sl_ap_buf_adds(&b, c->model_name);
        sl_ap_buf_adds(&b, p + 7);
    }
    sl_ap_buf_addc(&b, '\0');
    if (!b.oom) {
        free(c->up_path);
        c->up_path = b.ptr; /* NULL on OOM is caught by sl_ap_target_ok */
        c->up_path_fixed = 1;
    } else {
        sl_ap_buf_free(&b);
    }
}

/* Fill a provider URL template: {azure_instance}, {azure_deployment_id},
 * {aws_region}, {databricks_workspace}, {dashscope_host} from the options; other placeholders
 * ({model}, ...) are the codec's, at request time, and stay.  NULL on OOM or a missing value
 * (reported). */
static char *
sl_ap_expand(sl_ap_cp_t *cp, const char *tpl, const char *azure_instance, const char *azure_dep,
             int international, const char *aws_region, const char *databricks)
{
    sl_ap_buf_t b = {0};
    const char *p = tpl;

    while (*p) {
        const char *v = NULL, *name = NULL;
        size_t n = 0;

        if (*p == '{') {
            n = strcspn(p, "}");
            if (n == 15 && memcmp(p, "{azure_instance", 15) == 0) {
                v = azure_instance;
                name = "model.options.azure_instance";
            } else if (n == 20 && memcmp(p, "{azure_deployment_id", 20) == 0) {
                v = azure_dep;
                name = "model.options.azure_deployment_id";
            } else if (n == 11 && memcmp(p, "{aws_region", 11) == 0) {
                v = aws_region;
                name = "model.options.bedrock.aws_region";
            } else if (n == 21 && memcmp(p, "{databricks_workspace", 21) == 0) {
                v = databricks;
                name = "model.options.databricks.workspace_instance_id";
            } else if (n == 15 && memcmp(p, "{dashscope_host", 15) == 0) {
                v = international ? "dashscope-intl.aliyuncs.com" : "dashscope.aliyuncs.com";
            }
        }
        if (v == NULL && name == NULL) {
            sl_ap_buf_addc(&b, *p++);
            continue;
        }
        if (v == NULL) {
            sl_ap_cp_err(cp, name, "required field missing");
            sl_ap_buf_free(&b);
            return NULL;
        }
        sl_ap_buf_adds(&b, v);
        p += n + (p[n] == '}');
    }
    sl_ap_buf_addc(&b, '\0');
    if (b.oom) {
        sl_ap_buf_free(&b);
        return NULL;
    }
    return b.ptr;
}

/* An option that must be one of a list; NULL when unset. */
static const char *
sl_ap_enum(sl_ap_cp_t *cp, json_object *o, const char *key, const char *field,
           const char *const *allowed, const char *expected)
{
    const char *s = sl_ap_str(cp, o, key, field);

    if (s && !sl_ap_in(s, allowed)) {
        sl_ap_cp_err(cp, field, "expected one of: %s", expected);
        return NULL;
    }
    return s;
}

/* Bedrock's SigV4 credentials and region: Kong's auth.aws_access_key_id /
 * aws_secret_access_key and options.bedrock.aws_region, else the AWS_*
 * variables of the environment (as Kong's AWS SDK reads them). */
static void
sl_ap_bedrock_creds(sl_ap_cp_t *cp, sl_ap_target_t *c, json_object *auth, json_object *opts)
{
    json_object *b = opts ? sl_ap_record(cp, opts, "bedrock", "model.options.bedrock") : NULL;
    const char *ak = sl_ap_str_ref(cp, auth, "aws_access_key_id", "auth.aws_access_key_id", 1);
    const char *sk =
        sl_ap_str_ref(cp, auth, "aws_secret_access_key", "auth.aws_secret_access_key", 1);
    const char *rg = sl_ap_str(cp, b, "aws_region", "model.options.bedrock.aws_region");
    const char *tk = NULL;

    if (sl_ap_str(cp, b, "aws_assume_role_arn", "model.options.bedrock.aws_assume_role_arn")) {
        sl_ap_cp_err(cp, "model.options.bedrock.aws_assume_role_arn",
                     "assuming a role is not supported yet by sluice");
    }
    if (ak == NULL && sk == NULL) {
        ak = getenv("AWS_ACCESS_KEY_ID");
        sk = getenv("AWS_SECRET_ACCESS_KEY");
        tk = getenv("AWS_SESSION_TOKEN");
    }
    if (rg == NULL) {
        rg = getenv("AWS_REGION");
    }
    if (rg == NULL) {
        rg = getenv("AWS_DEFAULT_REGION");
    }
    if (ak == NULL || sk == NULL || ak[0] == '\0' || sk[0] == '\0') {
        sl_ap_cp_err(cp, "auth",
                     "the bedrock provider needs aws_access_key_id and aws_secret_access_key "
                     "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment)");
        return;
    }
    if (rg == NULL || rg[0] == '\0' ||
        strspn(rg, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(rg)) {
        sl_ap_cp_err(cp, "model.options.bedrock.aws_region",
                     "the bedrock provider needs a region (a-z, 0-9, -), here or in AWS_REGION");
        return;
    }
    c->aws_access_key_id = strdup(ak);
    c->aws_secret_access_key = strdup(sk);
    c->aws_session_token = tk && tk[0] ? strdup(tk) : NULL;
    c->aws_region = strdup(rg);
}

/* Kong's cloud identities (auth.gcp_use_service_account for gemini,
 * auth.azure_use_managed_identity for azure): an OAuth token source
 * (token.h), fetched per worker at request time. */
static void
sl_ap_cloud_auth(sl_ap_cp_t *cp, sl_ap_target_t *c, json_object *auth, int prov)
{
    char why[256];
    const char *sa;

    why[0] = '\0';
    if (sl_ap_bool(cp, auth, "gcp_use_service_account", "auth.gcp_use_service_account", 0)) {
        if (prov != SL_AP_PROV_GEMINI) {
            sl_ap_cp_err(cp, "auth.gcp_use_service_account", "only the gemini provider uses it");
            return;
        }
        if (sl_ap_str(cp, auth, "gcp_metadata_url", "auth.gcp_metadata_url")) {
            sl_ap_cp_err(cp, "auth.gcp_metadata_url",
                         "the metadata server is not supported yet by sluice: set "
                         "gcp_service_account_json (or GCP_SERVICE_ACCOUNT)");
            return;
        }
        sa =
            sl_ap_str_ref(cp, auth, "gcp_service_account_json", "auth.gcp_service_account_json", 1);
        if (sa == NULL) {
            sa = getenv("GCP_SERVICE_ACCOUNT"); /* as Kong */
        }
        if (sa == NULL || sa[0] == '\0') {
            sl_ap_cp_err(cp, "auth.gcp_service_account_json",
                         "gcp_use_service_account needs a service account key here or in "
                         "GCP_SERVICE_ACCOUNT");
        } else if ((c->token = sl_ap_token_gcp(
                        sa, sl_ap_str(cp, auth, "gcp_oauth_token_url", "auth.gcp_oauth_token_url"),
                        why, sizeof(why))) == NULL) {
            sl_ap_cp_err(cp, "auth.gcp_service_account_json", "%s", why);
        }
    }
    if (sl_ap_bool(cp, auth, "azure_use_managed_identity", "auth.azure_use_managed_identity", 0)) {
        if (prov != SL_AP_PROV_AZURE) {
            sl_ap_cp_err(cp, "auth.azure_use_managed_identity", "only the azure provider uses it");
        } else if ((c->token = sl_ap_token_azure(
                        sl_ap_str(cp, auth, "azure_tenant_id", "auth.azure_tenant_id"),
                        sl_ap_str(cp, auth, "azure_client_id", "auth.azure_client_id"),
                        sl_ap_str_ref(cp, auth, "azure_client_secret", "auth.azure_client_secret",
                                      1),
                        why, sizeof(why))) == NULL) {
            sl_ap_cp_err(cp, "auth", "%s", why);
        }
    }
}

/* Gemini on Vertex AI (Kong's options.gemini, all three or none): the
 * models path prefix, and the default base URL https://<api_endpoint>
 * (returned, owned; NULL for the Gemini API). */
static char *
sl_ap_vertex(sl_ap_cp_t *cp, sl_ap_target_t *c, json_object *opts)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";
    json_object *g = opts ? sl_ap_record(cp, opts, "gemini", "model.options.gemini") : NULL;
    const char *ep = sl_ap_str(cp, g, "api_endpoint", "model.options.gemini.api_endpoint");
    const char *pr = sl_ap_str(cp, g, "project_id", "model.options.gemini.project_id");
    const char *lo = sl_ap_str(cp, g, "location_id", "model.options.gemini.location_id");
    sl_ap_buf_t b = {0};

    if (ep == NULL && pr == NULL && lo == NULL) {
        return NULL;
    }
    if (ep == NULL || pr == NULL || lo == NULL) {
        sl_ap_cp_err(cp, "model.options.gemini",
                     "all or none of these fields must be set: 'api_endpoint', 'project_id', "
                     "'location_id'");
        return NULL;
    }
    if (strspn(pr, ok) != strlen(pr) || strspn(lo, ok) != strlen(lo) || !pr[0] || !lo[0]) {
        sl_ap_cp_err(cp, "model.options.gemini",
                     "project_id and location_id: letters, digits, -_.");
        return NULL;
    }
    if (!ep[0] || strpbrk(ep, "/?#@ \r\n")) {
        sl_ap_cp_err(cp, "model.options.gemini.api_endpoint", "expected a host name, got '%s'", ep);
        return NULL;
    }
    sl_ap_buf_addf(&b, "/v1/projects/%s/locations/%s/publishers/google/models/", pr, lo);
    c->vertex_prefix = b.oom ? NULL : b.ptr;
    b = (sl_ap_buf_t){0};
    sl_ap_buf_addf(&b, "https://%s", ep);
    if (c->vertex_prefix == NULL || b.oom) {
        sl_ap_cp_err(cp, "model.options.gemini", "out of memory");
        sl_ap_buf_free(&b);
        return NULL;
    }
    return b.ptr;
}

/* One target from `root` (route_type, auth, model, logging). */
static void
sl_ap_target_read(sl_ap_cp_t *cp, json_object *root, sl_ap_target_t *c)
{
    json_object *auth, *model, *opts, *logging, *ds;
    const char *s, *hn, *hv, *pn, *pv, *pl, *url, *upath, *ai = NULL, *ad = NULL, *dbw = NULL;
    char *vbase = NULL;
    const sl_ap_provider_t *prov = NULL;
    const char *why;

    c->max_tokens = -1;
    c->temperature = c->top_p = -1;
    c->top_k = -1;
    c->input_cost = c->output_cost = -1;
    for (const sl_ap_field_t *f = sl_ap_f_target; f->name; f++) {
        json_object *v = NULL;

        if (json_object_object_get_ex(root, f->name, &v) && f->type == SL_AP_T_REC) {
            sl_ap_field_check(cp, f->name, v, f, NULL);
        }
    }

    s = sl_ap_str(cp, root, "route_type", "route_type");
    if (s == NULL) {
        if (cp->nerr == 0) {
            sl_ap_cp_err(cp, "route_type", "required field missing");
        }
    } else if (strcmp(s, "llm/v1/chat") == 0) {
        c->route_type = SL_AP_ROUTE_CHAT;
    } else if (strcmp(s, "llm/v1/completions") == 0) {
        c->route_type = SL_AP_ROUTE_COMPLETIONS;
    } else if (strcmp(s, "llm/v1/embeddings") == 0) {
        c->route_type = SL_AP_ROUTE_EMBEDDINGS;
    } else if (strcmp(s, "preserve") == 0) {
        c->route_type = SL_AP_ROUTE_PRESERVE;
    } else if (sl_ap_in(s, sl_ap_route_types_later)) {
        sl_ap_cp_err(cp, "route_type", "'%s' is not supported yet (llm/v1/chat)", s);
    } else {
        sl_ap_cp_err(cp, "route_type",
                     "expected one of: llm/v1/chat, llm/v1/completions, "
                     "llm/v1/embeddings, preserve, ... (got '%s')",
                     s);
    }

    /* auth */
    auth = sl_ap_record(cp, root, "auth", "auth");
    hn = sl_ap_str_ref(cp, auth, "header_name", "auth.header_name", 1);
    hv = sl_ap_str_ref(cp, auth, "header_value", "auth.header_value", 1);
    pn = sl_ap_str_ref(cp, auth, "param_name", "auth.param_name", 1);
    pv = sl_ap_str_ref(cp, auth, "param_value", "auth.param_value", 1);
    pl = sl_ap_str(cp, auth, "param_location", "auth.param_location");
    c->allow_override = sl_ap_bool(cp, auth, "allow_override", "auth.allow_override", 0);
    if ((hn == NULL) != (hv == NULL)) {
        sl_ap_cp_err(cp, "auth",
                     "all or none of these fields must be set: 'header_name', 'header_value'");
    } else if (hn) {
        const char *q;
        for (q = hn; *q; q++) {
            if (!isalnum((unsigned char)*q) && !strchr("!#$%&'*+-.^_`|~", *q)) {
                sl_ap_cp_err(cp, "auth.header_name", "invalid header name");
                break;
            }
        }
        if (strpbrk(hv, "\r\n")) {
            sl_ap_cp_err(cp, "auth.header_value", "must not contain line breaks");
        }
        c->header_name = strdup(hn);
        c->header_value = strdup(hv);
    }
    if (pl && strcmp(pl, "query") != 0 && strcmp(pl, "body") != 0) {
        sl_ap_cp_err(cp, "auth.param_location", "expected one of: query, body");
    }
    if ((pn == NULL) != (pv == NULL) || (pn == NULL) != (pl == NULL)) {
        sl_ap_cp_err(cp, "auth",
                     "all or none of these fields must be set: 'param_name', "
                     "'param_value', 'param_location'");
    } else if (pn) {
        c->param_name = strdup(pn);
        c->param_value = strdup(pv);
        c->param_location = strcmp(pl, "body") == 0 ? SL_AP_PARAM_BODY : SL_AP_PARAM_QUERY;
    }

    /* model */
    model = sl_ap_record(cp, root, "model", "model");
    if (model == NULL) {
        sl_ap_cp_err(cp, "model", "required field missing");
    } else {
        s = sl_ap_str(cp, model, "provider", "model.provider");
        if (s == NULL) {
            sl_ap_cp_err(cp, "model.provider", "required field missing");
        } else if ((prov = sl_ap_provider_find(s)) == NULL) {
            sl_ap_cp_err(cp, "model.provider",
                         "expected one of: openai, azure, anthropic, cohere, mistral, llama2, "
                         "gemini, bedrock, huggingface, dashscope, databricks, xai, cerebras, "
                         "deepseek, ollama, vllm");
        } else if (prov->not_yet) {
            sl_ap_cp_err(cp, "model.provider", "'%s' is not supported yet by sluice", s);
            prov = NULL;
        }
        s = sl_ap_str(cp, model, "name", "model.name");
        if (s) {
            c->model_name = strdup(s);
        }
        s = sl_ap_str(cp, model, "model_alias", "model.model_alias");
        if (s) {
            c->model_alias = strdup(s);
        }
    }
    c->prov = prov ? prov : sl_ap_provider_get(SL_AP_PROV_OPENAI);
    c->provider = c->prov->id;
    c->provider_name = strdup(c->prov->name);

    opts = model ? sl_ap_record(cp, model, "options", "model.options") : NULL;
    c->max_tokens = (int64_t)sl_ap_num(cp, opts, "max_tokens", "model.options.max_tokens", -1, 1,
                                       2147483647.0, 1);
    c->temperature = sl_ap_num(cp, opts, "temperature", "model.options.temperature", -1, 0, 5, 0);
    c->top_p = sl_ap_num(cp, opts, "top_p", "model.options.top_p", -1, 0, 1, 0);
    c->top_k = (int64_t)sl_ap_num(cp, opts, "top_k", "model.options.top_k", -1, 0, 500, 1);
    /* Kong: gt = 0 for every cost (0 is refused, not "free") */
    c->input_cost = sl_ap_cost(cp, opts, "input_cost");
    c->output_cost = sl_ap_cost(cp, opts, "output_cost");
    c->cache_read_cost = sl_ap_cost(cp, opts, "cache_read_cost");
    c->cache_write_cost = sl_ap_cost(cp, opts, "cache_write_cost");
    ds = opts ? sl_ap_record(cp, opts, "dashscope", "model.options.dashscope") : NULL;
    c->international =
        sl_ap_bool(cp, ds, "international", "model.options.dashscope.international", 1);
    sl_ap_dashscope_ext(cp, c, ds);

    /* the provider's own options, and Kong's entity checks on them */
    s = sl_ap_str(cp, opts, "anthropic_version", "model.options.anthropic_version");
    if (s) {
        if (strpbrk(s, "\r\n")) {
            sl_ap_cp_err(cp, "model.options.anthropic_version", "must not contain line breaks");
        } else {
            c->anthropic_version = strdup(s);
        }
    }
    ai = sl_ap_str(cp, opts, "azure_instance", "model.options.azure_instance");
    ad = sl_ap_str(cp, opts, "azure_deployment_id", "model.options.azure_deployment_id");
    s = sl_ap_str(cp, opts, "azure_api_version", "model.options.azure_api_version");
    c->azure_api_version = strdup(s ? s : "2023-05-15");
    {
        static const char *const mf[] = {"openai", "ollama", NULL};
        static const char *const lf[] = {"raw", "openai", "ollama", NULL};
        const char *m = sl_ap_enum(cp, opts, "mistral_format", "model.options.mistral_format", mf,
                                   "openai, ollama");
        const char *l = sl_ap_enum(cp, opts, "llama2_format", "model.options.llama2_format", lf,
                                   "raw, openai, ollama");

        if (prov && prov->id == SL_AP_PROV_MISTRAL) {
            if (m == NULL) {
                sl_ap_cp_err(cp, "model.options.mistral_format", "must set %s for mistral provider",
                             "model.options.mistral_format");
            } else if (strcmp(m, "openai") != 0) {
                sl_ap_cp_err(cp, "model.options.mistral_format",
                             "'%s' is not supported yet by sluice (openai)", m);
            }
        }
        if (prov && prov->id == SL_AP_PROV_LLAMA2) {
            if (l == NULL) {
                sl_ap_cp_err(cp, "model.options.llama2_format", "must set %s for llama2 provider",
                             "model.options.llama2_format");
            } else if (strcmp(l, "openai") != 0) {
                sl_ap_cp_err(cp, "model.options.llama2_format",
                             "'%s' is not supported yet by sluice (openai)", l);
            }
        }
    }
    if (prov && prov->id == SL_AP_PROV_ANTHROPIC && c->anthropic_version == NULL) {
        sl_ap_cp_err(cp, "model.options.anthropic_version", "must set %s for anthropic provider",
                     "model.options.anthropic_version");
    }
    if (prov && prov->id == SL_AP_PROV_AZURE) {
        if (ai == NULL) {
            sl_ap_cp_err(cp, "model.options.azure_instance", "must set %s for azure provider",
                         "model.options.azure_instance");
        }
        if (ad == NULL) {
            sl_ap_cp_err(cp, "model.options.azure_deployment_id", "must set %s for azure provider",
                         "model.options.azure_deployment_id");
        }
    }
    if (prov && prov->id == SL_AP_PROV_BEDROCK) {
        sl_ap_bedrock_creds(cp, c, auth, opts);
    }
    if (prov && prov->id == SL_AP_PROV_DATABRICKS) {
        json_object *db =
            opts ? sl_ap_record(cp, opts, "databricks", "model.options.databricks") : NULL;

        dbw = sl_ap_str(cp, db, "workspace_instance_id",
                        "model.options.databricks.workspace_instance_id");
        if (dbw == NULL &&
            sl_ap_str(cp, opts, "upstream_url", "model.options.upstream_url") == NULL) {
            sl_ap_cp_err(cp, "model.options.databricks.workspace_instance_id",
                         "must set %s (or model.options.upstream_url) for databricks provider",
                         "model.options.databricks.workspace_instance_id");
        } else if (dbw && strpbrk(dbw, "/:?#@ \r\n")) {
            sl_ap_cp_err(cp, "model.options.databricks.workspace_instance_id",
                         "expected a host name label, got '%s'", dbw);
            dbw = NULL;
        }
    }
    if (prov && prov->id == SL_AP_PROV_HUGGINGFACE && c->model_name == NULL &&
        sl_ap_str(cp, opts, "upstream_url", "model.options.upstream_url") == NULL) {
        /* Kong puts the model in the URL (api-inference.huggingface.co/models/<name>) */
        sl_ap_cp_err(cp, "model.name",
                     "must set model.name (or model.options.upstream_url) for huggingface "
                     "provider");
    }
    if (prov && prov->id == SL_AP_PROV_GEMINI) {
        vbase = sl_ap_vertex(cp, c, opts);
    }
    if (prov) {
        sl_ap_cloud_auth(cp, c, auth, prov->id);
    }
    if (prov && (why = sl_ap_provider_refusal(prov, c->llm_format, c->route_type)) != NULL) {
        if (strcmp(why, "llm_format") == 0) {
            sl_ap_cp_err(cp, why, "'%s' is not supported yet by sluice with provider %s",
                         c->llm_format == SL_AP_FMT_ANTHROPIC ? "anthropic" : "openai", prov->name);
        } else if (c->route_type == SL_AP_ROUTE_EMBEDDINGS && prov->path[c->route_type] &&
                   prov->wire == SL_AP_WIRE_OPENAI) {
            sl_ap_cp_err(cp, "llm_format",
                         "'anthropic' has no embeddings API: llm/v1/embeddings needs llm_format "
                         "openai");
        } else {
            sl_ap_cp_err(cp, "route_type", "'%s' is not supported yet by sluice with provider %s",
                         sl_ap_route_name(c->route_type), prov->name);
        }
    }

    /* URL: upstream_url, else the row's template for the route type */
    url = sl_ap_str(cp, opts, "upstream_url", "model.options.upstream_url");
    upath = sl_ap_str(cp, opts, "upstream_path", "model.options.upstream_path");
    if (upath && upath[0] != '/') {
        sl_ap_cp_err(cp, "model.options.upstream_path", "should start with: /");
        upath = NULL;
    }
    if (url) {
        if (sl_ap_parse_url(c, url) != 0) {
            sl_ap_cp_err(cp, "model.options.upstream_url",
                         "invalid URL (expected http(s)://host[:port][/path])");
        }
        c->up_path_fixed = c->up_path != NULL;
    } else if (vbase) {
        if (sl_ap_parse_url(c, vbase) != 0) {
            sl_ap_cp_err(cp, "model.options.gemini.api_endpoint", "invalid host %s", vbase + 8);
        }
    } else if (prov && prov->base_url == NULL) {
        sl_ap_cp_err(cp, "model.options.upstream_url",
                     "must set %s for self-hosted providers/models", "model.options.upstream_url");
    } else if (prov) {
        char *base = sl_ap_expand(cp, prov->base_url, ai, ad, c->international, c->aws_region, dbw);

        if (base && sl_ap_parse_url(c, base) != 0) {
            sl_ap_cp_err(cp, "model.options", "invalid provider URL %s", base);
        }
        free(base);
    }
    free(vbase);
    if (upath) {
        free(c->up_path);
        c->up_path = strdup(upath);
        c->up_path_fixed = 1;
    }
    if (c->up_path == NULL && prov && prov->path[c->route_type]) {
        const char *tpl = prov->path[c->route_type];

        if (prov->id == SL_AP_PROV_DASHSCOPE && c->api == SL_AP_API_ANTHROPIC &&
            c->route_type == SL_AP_ROUTE_CHAT) {
            tpl = "/apps/anthropic/v1/messages";
        }
        c->up_path = sl_ap_expand(cp, tpl, ai, ad, c->international, c->aws_region, dbw);
    }
    if (prov && prov->id == SL_AP_PROV_HUGGINGFACE) {
        sl_ap_hf_path(c, url != NULL && upath == NULL);
    }
    if (c->up_path == NULL) {
        c->up_path = strdup("/");
    }
    if (c->model_name && c->provider_name) {
        size_t n = strlen(c->provider_name) + strlen(c->model_name) + 2;
        c->model_header = malloc(n);
        if (c->model_header) {
            snprintf(c->model_header, n, "%s/%s", c->provider_name, c->model_name);
        }
    }

    /* logging */
    logging = sl_ap_record(cp, root, "logging", "logging");
    c->log_statistics = sl_ap_bool(cp, logging, "log_statistics", "logging.log_statistics", 0);
    c->log_payloads = sl_ap_bool(cp, logging, "log_payloads", "logging.log_payloads", 0);
}

/* OOM check after a successful read. */
static int
sl_ap_target_ok(const sl_ap_target_t *c)
{
    return c->up_scheme && c->up_host && c->up_path && c->provider_name && c->azure_api_version &&
           (c->model_name == NULL || c->model_header);
}

static json_object *
sl_ap_parse_json(sl_ap_cp_t *cp, const char *json, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *root;

    if (tok == NULL) {
        return NULL;
    }
    root = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    if (root == NULL || json_object_get_type(root) != json_type_object) {
        sl_ap_cp_err(cp, "", "config must be a JSON object");
        json_object_put(root);
        return NULL;
    }
    return root;
}

int
sl_ap_target_parse(const char *json, size_t len, const char *prefix, sl_ap_format_t llm_format,
                   sl_ap_streaming_t response_streaming, sl_ap_target_t *t, sl_ap_conf_err_fn err,
                   void *ud)
{
    sl_ap_cp_t cp = {err, ud, 0, prefix, {NULL}, 0};
    json_object *root = sl_ap_parse_json(&cp, json, len);
    int rc = 0;

    memset(t, 0, sizeof(*t));
    if (root == NULL) {
        return -1;
    }
    t->llm_format = llm_format;
    t->response_streaming = response_streaming;
    sl_ap_target_read(&cp, root, t);
    json_object_put(root);
    while (cp.nkeep > 0) {
        free(cp.keep[--cp.nkeep]);
    }
    if (cp.nerr > 0) {
        rc = -1;
    } else if (!sl_ap_target_ok(t)) {
        rc = -2;
    }
    if (rc != 0) {
        sl_ap_target_free(t);
    }
    return rc;
}

int
sl_ap_conf_parse(const char *json, size_t len, sl_ap_conf_t **out, sl_ap_conf_err_fn err, void *ud)
{
    sl_ap_cp_t cp = {err, ud, 0, "", {NULL}, 0};
    json_object *root;
    sl_ap_conf_t *c;
    const char *s;

    *out = NULL;
    root = sl_ap_parse_json(&cp, json, len);
    if (root == NULL) {
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        json_object_put(root);
        return -2;
    }

    sl_ap_schema_check(&cp, "", root, sl_ap_f_top, NULL);

    s = sl_ap_str(&cp, root, "llm_format", "llm_format");
    if (s == NULL || strcmp(s, "openai") == 0) {
        c->t.llm_format = SL_AP_FMT_OPENAI;
    } else if (strcmp(s, "anthropic") == 0) {
        c->t.llm_format = SL_AP_FMT_ANTHROPIC;
    } else if (strcmp(s, "bedrock") == 0 || strcmp(s, "gemini") == 0 || strcmp(s, "cohere") == 0 ||
               strcmp(s, "huggingface") == 0) {
        sl_ap_cp_err(&cp, "llm_format", "'%s' is not supported yet (openai, anthropic)", s);
    } else {
        sl_ap_cp_err(&cp, "llm_format",
                     "expected one of: openai, anthropic, bedrock, gemini, cohere, huggingface");
    }

    s = sl_ap_str(&cp, root, "response_streaming", "response_streaming");
    if (s == NULL || strcmp(s, "allow") == 0) {
        c->t.response_streaming = SL_AP_STREAM_ALLOW;
    } else if (strcmp(s, "deny") == 0) {
        c->t.response_streaming = SL_AP_STREAM_DENY;
    } else if (strcmp(s, "always") == 0) {
        c->t.response_streaming = SL_AP_STREAM_ALWAYS;
    } else {
        sl_ap_cp_err(&cp, "response_streaming", "expected one of: allow, deny, always");
    }
    c->max_request_body_size = (int64_t)sl_ap_num(
        &cp, root, "max_request_body_size", "max_request_body_size", 1048576, 0, 2147483647.0, 1);
    /* sluice's own: bounds what one upstream SSE event may hold in memory */
    c->max_stream_event_size = (int64_t)sl_ap_num(
        &cp, root, "max_stream_event_size", "max_stream_event_size", 1048576, 0, 2147483647.0, 1);
    c->model_name_header = sl_ap_bool(&cp, root, "model_name_header", "model_name_header", 1);
    s = sl_ap_str(&cp, root, "genai_category", "genai_category");
    if (s && strcmp(s, "text/generation") != 0) {
        if (sl_ap_in(s, sl_ap_genai_later)) {
            sl_ap_cp_err(&cp, "genai_category", "'%s' is not supported yet (text/generation)", s);
        } else {
            sl_ap_cp_err(&cp, "genai_category",
                         "expected one of: text/generation, text/embeddings, image/generation, "
                         "audio/speech, audio/transcription, video/generation");
        }
    }

    sl_ap_target_read(&cp, root, &c->t);

    json_object_put(root);
    while (cp.nkeep > 0) {
        free(cp.keep[--cp.nkeep]);
    }
    if (cp.nerr > 0) {
        sl_ap_conf_free(c);
        return -1;
    }
    if (!sl_ap_target_ok(&c->t)) {
        sl_ap_conf_free(c);
        return -2;
    }
    *out = c;
    return 0;
}

void
sl_ap_target_free(sl_ap_target_t *c)
{
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
    free(c->model_alias);
    free(c->search_options);
    free(c->models);
    free(c->anthropic_version);
    free(c->azure_api_version);
    free(c->aws_access_key_id);
    if (c->aws_secret_access_key) {
        memset(c->aws_secret_access_key, 0, strlen(c->aws_secret_access_key));
    }
    free(c->aws_secret_access_key);
    free(c->aws_session_token);
    free(c->aws_region);
    free(c->vertex_prefix);
    sl_ap_token_free(c->token);
    memset(c, 0, sizeof(*c));
}

void
sl_ap_conf_free(sl_ap_conf_t *c)
{
    if (c == NULL) {
        return;
    }
    sl_ap_target_free(&c->t);
    free(c);
}
