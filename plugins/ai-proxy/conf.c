/* conf.c - ai-proxy's configuration: Kong's ai-proxy config, checked by
 * the host against conf_schema.c's tables, turned into an sl_ap_target_t.
 *
 * The host (api->conf_schema_check) checks types, defaults, ranges, one-of
 * lists and unknown keys and fills conf_schema.h's structs; this file adds
 * what a table cannot say: vault references ({vault://env/NAME}) in Kong's
 * referenceable fields, each provider's required options and refusals, the
 * Kong fields sluice does not use yet (refused away from their default),
 * and the upstream URL from upstream_url or the provider row's template.
 * Errors carry Kong's field path; the host adds file, line and
 * "plugins[N].config.".  Not a hot path.
 */

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "ai_proxy.h"
#include "conf_schema.h"
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

/* ------------------------------------------------------ the host's checker
 *
 * The host checks the JSON against conf_schema.c's tables and fills the
 * raw structs (api->conf_schema_check, ABI 1.4); its errors come back here
 * to be put under the caller's prefix ("targets[1].") and counted. */

static const sl_api_t *sl_ap_api;

void
sl_ap_conf_host(const sl_api_t *api)
{
    sl_ap_api = api;
}

typedef struct sl_ap_sub {
    sl_ap_cp_t *cp;
    const char *base; /* put before the checker's paths, "" for none */
} sl_ap_sub_t;

static void
sl_ap_schema_err(void *ud, const char *path, const char *msg)
{
    sl_ap_sub_t *s = ud;
    char field[320];

    snprintf(field, sizeof(field), "%s%s%s", s->base, s->base[0] && path[0] ? "." : "", path);
    sl_ap_cp_err(s->cp, field, "%s", msg);
}

/* Check `json` against `schema` into *block (errors under `base`); 0 or -1. */
static int
sl_ap_check(sl_ap_cp_t *cp, const sl_schema_t *schema, const char *base, const char *json,
            size_t len, void **block)
{
    sl_ap_sub_t s = {cp, base};

    *block = NULL;
    if (sl_ap_api == NULL || sl_ap_api->abi_minor < 4 || sl_ap_api->conf_schema_check == NULL) {
        sl_ap_cp_err(cp, "", "ai-proxy needs a sluice host with plugin ABI 1.4");
        return -1;
    }
    return sl_ap_api->conf_schema_check(schema, json, len, sl_ap_schema_err, &s, block);
}

static void
sl_ap_uncheck(const sl_schema_t *schema, void *block)
{
    if (block != NULL) {
        sl_ap_api->conf_schema_free(schema, block);
    }
}

/* ------------------------------------------------- rules beyond the tables */

/* A field Kong has and sluice does not use, set away from Kong's default. */
static void
sl_ap_unused(sl_ap_cp_t *cp, const char *field, int set, const char *why, const char *def)
{
    if (set) {
        sl_ap_cp_err(cp, field, "not supported yet by sluice (used by %s); leave it unset%s%s", why,
                     def ? " or at Kong's default " : "", def ? def : "");
    }
}

static void
sl_ap_unused_fields(sl_ap_cp_t *cp, const sl_ap_raw_target_t *r)
{
    const sl_ap_raw_options_t *o = &r->model.options;

    sl_ap_unused(cp, "model.options.cache_write_cost_list", o->cache_write_cost_list.n > 0,
                 "per-TTL cache pricing (1h TTL)", "[]");
    sl_ap_unused(cp, "model.options.context_window_factor", o->context_window_factor.n > 0,
                 "context-window pricing tiers", "[]");
    sl_ap_unused(cp, "model.options.service_tier_factor", o->service_tier_factor.n > 0,
                 "service-tier pricing", "[]");
}

/* An option set where it does nothing (Kong accepts it and ignores it):
 * refused, naming where it applies. */
static void
sl_ap_misplaced(sl_ap_cp_t *cp, const char *field, int set, const char *where, const char *def)
{
    if (set) {
        sl_ap_cp_err(cp, field, "applies only to route_type %s; leave it unset%s%s", where,
                     def ? " or at Kong's default " : "", def ? def : "");
    }
}

/* options.gemini.embedding_input_type (the schema checked its value):
 * Google's TaskType, upper-cased; only for gemini's embeddings. */
static void
sl_ap_gemini_task(sl_ap_cp_t *cp, const sl_ap_raw_options_t *o, sl_ap_target_t *c)
{
    const char *v = o->gemini.embedding_input_type;
    size_t i;

    if (v == NULL) {
        return;
    }
    if (c->route_type != SL_AP_ROUTE_EMBEDDINGS || c->provider != SL_AP_PROV_GEMINI) {
        sl_ap_cp_err(cp, "model.options.gemini.embedding_input_type",
                     "applies only to route_type llm/v1/embeddings with provider gemini; leave "
                     "it unset");
        return;
    }
    for (i = 0; v[i] && i + 1 < sizeof(c->embed_task_type); i++) {
        c->embed_task_type[i] = (char)toupper((unsigned char)v[i]);
    }
    c->embed_task_type[i] = '\0';
}

/* The embeddings options (embeddings.c): each where it is used, refused
 * elsewhere; the input type one of Kong's. */
static void
sl_ap_embed_options(sl_ap_cp_t *cp, const sl_ap_raw_options_t *o, sl_ap_target_t *c)
{
    static const char *const types[] = {"search_document", "search_query", "classification",
                                        "clustering", "image"};
    const char *eit = o->cohere.embedding_input_type;
    int emb = c->route_type == SL_AP_ROUTE_EMBEDDINGS;
    size_t i;

    sl_ap_gemini_task(cp, o, c);
    c->embed_dims = o->embeddings_dimensions == INT64_MIN ? -1 : o->embeddings_dimensions;
    c->embed_normalize = o->bedrock.embeddings_normalize;
    sl_ap_misplaced(cp, "model.options.embeddings_dimensions", c->embed_dims > 0 && !emb,
                    "llm/v1/embeddings", NULL);
    sl_ap_misplaced(cp, "model.options.bedrock.embeddings_normalize",
                    c->embed_normalize && !(emb && c->provider == SL_AP_PROV_BEDROCK),
                    "llm/v1/embeddings with provider bedrock", "false");
    if (eit == NULL) {
        return;
    }
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(eit, types[i]) == 0) {
            c->embed_input_type = types[i];
        }
    }
    if (c->embed_input_type == NULL) {
        sl_ap_cp_err(cp, "model.options.cohere.embedding_input_type",
                     "expected one of: search_document, search_query, classification, "
                     "clustering, image");
    }
    sl_ap_misplaced(
        cp, "model.options.cohere.embedding_input_type",
        strcmp(eit, "classification") != 0 &&
            !(emb && (c->provider == SL_AP_PROV_COHERE || c->provider == SL_AP_PROV_BEDROCK)),
        "llm/v1/embeddings with provider cohere or bedrock", "\"classification\"");
}

/* A referenceable field (auth.*): its vault reference resolved; NULL unset. */
static const char *
sl_ap_ref(sl_ap_cp_t *cp, const char *field, const char *s)
{
    if (s != NULL && strncmp(s, "{vault://", 9) == 0) {
        return sl_ap_vault(cp, field, s);
    }
    return s;
}

/* An optional number: the config's value, or `unset` (-1) when not set. */
static int64_t
sl_ap_int(int64_t v)
{
    return v == INT64_MIN ? -1 : v;
}

static double
sl_ap_real(double v)
{
    return isnan(v) ? -1 : v;
}

/* A per-1M-token price: Kong's schema says gt = 0, so 0 is an error. */
static double
sl_ap_cost(sl_ap_cp_t *cp, const char *key, double v)
{
    char field[64];

    if (!isnan(v) && v <= 0) {
        snprintf(field, sizeof(field), "model.options.%s", key);
        sl_ap_cp_err(cp, field, "value must be greater than 0");
        return -1;
    }
    return sl_ap_real(v);
}

/* model.options.dashscope.models.<name>: {max_output_tokens, thinking
 * (no|stream|yes), json_schema, cache, search}, each overriding the
 * built-in row (or the defaults of an unknown model). */
static void
sl_ap_model_override(sl_ap_cp_t *cp, const sl_conf_pair_t *p, sl_ap_model_t *m)
{
    static const char *const think[] = {"no", "stream", "yes", NULL};
    char base[128];
    sl_ap_raw_dsmodel_t *o;

    sl_ap_model_facts(NULL, p->key, strlen(p->key), m);
    snprintf(m->name, sizeof(m->name), "%s", p->key);
    m->known = 1;
    snprintf(base, sizeof(base), "model.options.dashscope.models.%.60s", p->key);
    if (sl_ap_check(cp, &sl_ap_dsmodel_schema, base, p->json, strlen(p->json), (void **)&o) != 0) {
        return;
    }
    if (o->max_output_tokens != INT64_MIN) {
        m->max_output = o->max_output_tokens;
    }
    for (int i = 0; o->thinking && think[i]; i++) {
        if (strcmp(o->thinking, think[i]) == 0) {
            m->thinking = (uint8_t)i; /* sl_ap_think_t, in this order */
        }
    }
    if (o->json_schema >= 0) {
        m->json_schema = (uint8_t)o->json_schema;
    }
    if (o->cache >= 0) {
        m->cache = (uint8_t)o->cache;
    }
    if (o->search >= 0) {
        m->search = (uint8_t)o->search;
    }
    sl_ap_uncheck(&sl_ap_dsmodel_schema, o);
}

/* The sluice extensions under model.options.dashscope. */
static void
sl_ap_dashscope_ext(sl_ap_cp_t *cp, sl_ap_target_t *c, const sl_ap_raw_dashscope_t *ds)
{
    const sl_conf_pair_t *pairs = ds->models.items;

    c->international = ds->international;
    c->api = ds->api && strcmp(ds->api, "anthropic") == 0 ? SL_AP_API_ANTHROPIC : SL_AP_API_OPENAI;
    c->web_search = ds->web_search;
    if (ds->search_options != NULL) {
        if (ds->search_options[0] != '{') {
            sl_ap_cp_err(cp, "model.options.dashscope.search_options", "expected a record");
        } else {
            c->search_options = strdup(ds->search_options);
        }
    }
    if (ds->models.n > 0) {
        c->models = calloc(ds->models.n, sizeof(*c->models));
        if (c->models == NULL) {
            sl_ap_cp_err(cp, "model.options.dashscope.models", "out of memory");
            return;
        }
        for (size_t i = 0; i < ds->models.n; i++) {
            sl_ap_model_override(cp, &pairs[i], &c->models[c->nmodels++]);
        }
    }
}

/* Bedrock's SigV4 credentials and region: Kong's auth.aws_access_key_id /
 * aws_secret_access_key and options.bedrock.aws_region, else the AWS_*
 * variables of the environment (as Kong's AWS SDK reads them). */
static void
sl_ap_bedrock_creds(sl_ap_cp_t *cp, sl_ap_target_t *c, const sl_ap_raw_target_t *r)
{
    const char *ak = sl_ap_ref(cp, "auth.aws_access_key_id", r->auth.aws_access_key_id);
    const char *sk = sl_ap_ref(cp, "auth.aws_secret_access_key", r->auth.aws_secret_access_key);
    const char *rg = r->model.options.bedrock.aws_region;
    const char *tk = NULL;

    if (r->model.options.bedrock.aws_assume_role_arn) {
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
sl_ap_cloud_auth(sl_ap_cp_t *cp, sl_ap_target_t *c, const sl_ap_raw_auth_t *a, int prov)
{
    char why[256];
    const char *sa;

    why[0] = '\0';
    if (a->gcp_use_service_account) {
        if (prov != SL_AP_PROV_GEMINI) {
            sl_ap_cp_err(cp, "auth.gcp_use_service_account", "only the gemini provider uses it");
            return;
        }
        if (a->gcp_metadata_url) {
            sl_ap_cp_err(cp, "auth.gcp_metadata_url",
                         "the metadata server is not supported yet by sluice: set "
                         "gcp_service_account_json (or GCP_SERVICE_ACCOUNT)");
            return;
        }
        sa = sl_ap_ref(cp, "auth.gcp_service_account_json", a->gcp_service_account_json);
        if (sa == NULL) {
            sa = getenv("GCP_SERVICE_ACCOUNT"); /* as Kong */
        }
        if (sa == NULL || sa[0] == '\0') {
            sl_ap_cp_err(cp, "auth.gcp_service_account_json",
                         "gcp_use_service_account needs a service account key here or in "
                         "GCP_SERVICE_ACCOUNT");
        } else if ((c->token = sl_ap_token_gcp(sa, a->gcp_oauth_token_url, why, sizeof(why))) ==
                   NULL) {
            sl_ap_cp_err(cp, "auth.gcp_service_account_json", "%s", why);
        }
    }
    if (a->azure_use_managed_identity) {
        if (prov != SL_AP_PROV_AZURE) {
            sl_ap_cp_err(cp, "auth.azure_use_managed_identity", "only the azure provider uses it");
        } else if ((c->token = sl_ap_token_azure(
                        a->azure_tenant_id, a->azure_client_id,
                        sl_ap_ref(cp, "auth.azure_client_secret", a->azure_client_secret), why,
                        sizeof(why))) == NULL) {
            sl_ap_cp_err(cp, "auth", "%s", why);
        }
    }
}

/* Gemini on Vertex AI (Kong's options.gemini, all three or none): the
 * models path prefix, and the default base URL https://<api_endpoint>
 * (returned, owned; NULL for the Gemini API). */
static char *
sl_ap_vertex(sl_ap_cp_t *cp, sl_ap_target_t *c, const sl_ap_raw_gemini_t *g)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";
    const char *ep = g->api_endpoint, *pr = g->project_id, *lo = g->location_id;
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

/* route_type as the table checked it: served, or not yet. */
static void
sl_ap_route_type(sl_ap_cp_t *cp, const char *s, sl_ap_target_t *c)
{
    static const struct {
        const char *name;
        sl_ap_route_t rt;
    } served[] = {{"llm/v1/chat", SL_AP_ROUTE_CHAT},
                  {"llm/v1/completions", SL_AP_ROUTE_COMPLETIONS},
                  {"llm/v1/embeddings", SL_AP_ROUTE_EMBEDDINGS},
                  {"preserve", SL_AP_ROUTE_PRESERVE}};

    for (size_t i = 0; i < sizeof(served) / sizeof(served[0]); i++) {
        if (strcmp(s, served[i].name) == 0) {
            c->route_type = served[i].rt;
            return;
        }
    }
    sl_ap_cp_err(cp, "route_type", "'%s' is not supported yet (llm/v1/chat)", s);
}

/* auth: the header or the parameter carrying the provider's key. */
static void
sl_ap_auth(sl_ap_cp_t *cp, const sl_ap_raw_auth_t *a, sl_ap_target_t *c)
{
    const char *hn = sl_ap_ref(cp, "auth.header_name", a->header_name);
    const char *hv = sl_ap_ref(cp, "auth.header_value", a->header_value);
    const char *pn = sl_ap_ref(cp, "auth.param_name", a->param_name);
    const char *pv = sl_ap_ref(cp, "auth.param_value", a->param_value);
    const char *pl = a->param_location;

    c->allow_override = a->allow_override;
    if ((a->header_name == NULL) != (a->header_value == NULL)) {
        sl_ap_cp_err(cp, "auth",
                     "all or none of these fields must be set: 'header_name', 'header_value'");
    } else if (hn && hv) {
        for (const char *q = hn; *q; q++) {
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
    if ((a->param_name == NULL) != (a->param_value == NULL) ||
        (a->param_name == NULL) != (pl == NULL)) {
        sl_ap_cp_err(cp, "auth",
                     "all or none of these fields must be set: 'param_name', "
                     "'param_value', 'param_location'");
    } else if (pn && pv) {
        c->param_name = strdup(pn);
        c->param_value = strdup(pv);
        c->param_location = strcmp(pl, "body") == 0 ? SL_AP_PARAM_BODY : SL_AP_PARAM_QUERY;
    }
}

/* A provider's required option: "must set X for P provider". */
static void
sl_ap_need(sl_ap_cp_t *cp, const char *v, const char *field, const char *prov)
{
    if (v == NULL) {
        sl_ap_cp_err(cp, field, "must set %s for %s provider", field, prov);
    }
}

/* Kong's entity checks of the provider's own options; the databricks
 * workspace (NULL when absent or refused). */
static const char *
sl_ap_provider_rules(sl_ap_cp_t *cp, const sl_ap_provider_t *prov, const sl_ap_raw_target_t *r,
                     sl_ap_target_t *c)
{
    const sl_ap_raw_options_t *o = &r->model.options;
    const char *dbw = NULL;

    switch (prov->id) {
    case SL_AP_PROV_MISTRAL:
        sl_ap_need(cp, o->mistral_format, "model.options.mistral_format", "mistral");
        if (o->mistral_format && strcmp(o->mistral_format, "openai") != 0) {
            sl_ap_cp_err(cp, "model.options.mistral_format",
                         "'%s' is not supported yet by sluice (openai)", o->mistral_format);
        }
        break;
    case SL_AP_PROV_LLAMA2:
        sl_ap_need(cp, o->llama2_format, "model.options.llama2_format", "llama2");
        if (o->llama2_format && strcmp(o->llama2_format, "openai") != 0) {
            sl_ap_cp_err(cp, "model.options.llama2_format",
                         "'%s' is not supported yet by sluice (openai)", o->llama2_format);
        }
        break;
    case SL_AP_PROV_ANTHROPIC:
        sl_ap_need(cp, c->anthropic_version, "model.options.anthropic_version", "anthropic");
        break;
    case SL_AP_PROV_AZURE:
        sl_ap_need(cp, o->azure_instance, "model.options.azure_instance", "azure");
        sl_ap_need(cp, o->azure_deployment_id, "model.options.azure_deployment_id", "azure");
        break;
    case SL_AP_PROV_BEDROCK:
        sl_ap_bedrock_creds(cp, c, r);
        break;
    case SL_AP_PROV_DATABRICKS:
        dbw = o->databricks.workspace_instance_id;
        if (dbw == NULL && o->upstream_url == NULL) {
            sl_ap_cp_err(cp, "model.options.databricks.workspace_instance_id",
                         "must set %s (or model.options.upstream_url) for databricks provider",
                         "model.options.databricks.workspace_instance_id");
        } else if (dbw && strpbrk(dbw, "/:?#@ \r\n")) {
            sl_ap_cp_err(cp, "model.options.databricks.workspace_instance_id",
                         "expected a host name label, got '%s'", dbw);
            dbw = NULL;
        }
        break;
    case SL_AP_PROV_HUGGINGFACE:
        if (c->model_name == NULL && o->upstream_url == NULL) {
            /* Kong puts the model in the URL (api-inference.huggingface.co/models/<name>) */
            sl_ap_cp_err(cp, "model.name",
                         "must set model.name (or model.options.upstream_url) for huggingface "
                         "provider");
        }
        break;
    default:
        break;
    }
    return dbw;
}

/* The provider's refusal of this client format / route type, if any. */
static void
sl_ap_refusal(sl_ap_cp_t *cp, const sl_ap_provider_t *prov, const sl_ap_target_t *c)
{
    const char *why = sl_ap_provider_refusal(prov, c->llm_format, c->route_type);

    if (why == NULL) {
        if (c->route_type == SL_AP_ROUTE_EMBEDDINGS && c->model_name &&
            prov->wire != SL_AP_WIRE_OPENAI &&
            sl_ap_embed_dialect(c, c->model_name, strlen(c->model_name)) == SL_AP_EMBED_NONE) {
            sl_ap_cp_err(cp, "model.name",
                         "'%s' is not an embedding model sluice can call on %s "
                         "(amazon.titan-embed-*, cohere.embed-*)",
                         c->model_name, prov->name);
        }
        return;
    }
    if (strcmp(why, "llm_format") == 0 &&
        (c->route_type == SL_AP_ROUTE_EMBEDDINGS || c->route_type == SL_AP_ROUTE_COMPLETIONS)) {
        sl_ap_cp_err(cp, why, "'anthropic' has no %s API: %s needs llm_format openai",
                     c->route_type == SL_AP_ROUTE_EMBEDDINGS ? "embeddings" : "completions",
                     sl_ap_route_name(c->route_type));
    } else if (strcmp(why, "llm_format") == 0) {
        sl_ap_cp_err(cp, why, "'%s' is not supported yet by sluice with provider %s",
                     c->llm_format == SL_AP_FMT_ANTHROPIC ? "anthropic" : "openai", prov->name);
    } else if (c->route_type == SL_AP_ROUTE_COMPLETIONS && prov->path[c->route_type] == NULL) {
        sl_ap_cp_err(cp, "route_type", "'llm/v1/completions' with provider %s: %s", prov->name,
                     sl_ap_completions_refusal(prov));
    } else if (c->route_type == SL_AP_ROUTE_EMBEDDINGS) {
        /* which providers do serve it, from the table itself */
        char with[256] = "";
        size_t n = 0;

        for (int i = 0; i < SL_AP_PROV_N; i++) {
            const sl_ap_provider_t *p = sl_ap_provider_get((sl_ap_provider_id_t)i);

            if (sl_ap_provider_refusal(p, SL_AP_FMT_OPENAI, SL_AP_ROUTE_EMBEDDINGS) == NULL &&
                n < sizeof(with)) {
                n += (size_t)snprintf(with + n, sizeof(with) - n, "%s%s", n ? ", " : "", p->name);
            }
        }
        sl_ap_cp_err(cp, "route_type",
                     "'llm/v1/embeddings' is not supported by sluice with provider %s (it sends "
                     "embeddings to %s)",
                     prov->name, with);
    } else {
        sl_ap_cp_err(cp, "route_type", "'%s' is not supported yet by sluice with provider %s",
                     sl_ap_route_name(c->route_type), prov->name);
    }
}

/* The upstream URL: upstream_url, else the provider row's template for the
 * route type; upstream_path replaces the path. */
static void
sl_ap_upstream(sl_ap_cp_t *cp, const sl_ap_provider_t *prov, const sl_ap_raw_options_t *o,
               const char *dbw, const char *vbase, sl_ap_target_t *c)
{
    const char *url = o->upstream_url, *upath = o->upstream_path;
    const char *ai = o->azure_instance, *ad = o->azure_deployment_id;

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
}

/* One target from its checked config (route_type, auth, model, logging). */
static void
sl_ap_target_build(sl_ap_cp_t *cp, const sl_ap_raw_target_t *r, sl_ap_target_t *c)
{
    const sl_ap_raw_options_t *o = &r->model.options;
    const sl_ap_provider_t *prov = sl_ap_provider_find(r->model.provider);
    const char *dbw = NULL;
    char *vbase = NULL;

    sl_ap_unused_fields(cp, r);
    sl_ap_route_type(cp, r->route_type, c);
    sl_ap_auth(cp, &r->auth, c);

    /* model */
    if (prov == NULL) { /* the table's one_of and providers.c disagree */
        sl_ap_cp_err(cp, "model.provider", "'%s' is not known to sluice", r->model.provider);
    } else if (prov->not_yet) {
        sl_ap_cp_err(cp, "model.provider", "'%s' is not supported yet by sluice",
                     r->model.provider);
        prov = NULL;
    }
    c->model_name = r->model.name ? strdup(r->model.name) : NULL;
    c->model_alias = r->model.model_alias ? strdup(r->model.model_alias) : NULL;
    c->prov = prov ? prov : sl_ap_provider_get(SL_AP_PROV_OPENAI);
    c->provider = c->prov->id;
    c->provider_name = strdup(c->prov->name);

    /* model.options */
    c->max_tokens = sl_ap_int(o->max_tokens);
    c->temperature = sl_ap_real(o->temperature);
    c->top_p = sl_ap_real(o->top_p);
    c->top_k = sl_ap_int(o->top_k);
    c->input_cost = sl_ap_cost(cp, "input_cost", o->input_cost);
    c->output_cost = sl_ap_cost(cp, "output_cost", o->output_cost);
    c->cache_read_cost = sl_ap_cost(cp, "cache_read_cost", o->cache_read_cost);
    c->cache_write_cost = sl_ap_cost(cp, "cache_write_cost", o->cache_write_cost);
    sl_ap_dashscope_ext(cp, c, &o->dashscope);
    if (o->anthropic_version) {
        if (strpbrk(o->anthropic_version, "\r\n")) {
            sl_ap_cp_err(cp, "model.options.anthropic_version", "must not contain line breaks");
        } else {
            c->anthropic_version = strdup(o->anthropic_version);
        }
    }
    c->azure_api_version = strdup(o->azure_api_version ? o->azure_api_version : "2023-05-15");
    if (prov) {
        dbw = sl_ap_provider_rules(cp, prov, r, c);
        if (prov->id == SL_AP_PROV_GEMINI) {
            vbase = sl_ap_vertex(cp, c, &o->gemini);
        }
        sl_ap_cloud_auth(cp, c, &r->auth, prov->id);
        sl_ap_refusal(cp, prov, c);
        sl_ap_embed_options(cp, o, c);
    }
    sl_ap_upstream(cp, prov, o, dbw, vbase, c);
    free(vbase);
    if (c->model_name && c->provider_name) {
        size_t n = strlen(c->provider_name) + strlen(c->model_name) + 2;
        c->model_header = malloc(n);
        if (c->model_header) {
            snprintf(c->model_header, n, "%s/%s", c->provider_name, c->model_name);
        }
    }

    c->log_statistics = r->logging.log_statistics;
    c->log_payloads = r->logging.log_payloads;
}

/* OOM check after a successful read. */
static int
sl_ap_target_ok(const sl_ap_target_t *c)
{
    return c->up_scheme && c->up_host && c->up_path && c->provider_name && c->azure_api_version &&
           (c->model_name == NULL || c->model_header);
}

/* After a build: 0, -1 (errors reported) or -2 (out of memory). */
static int
sl_ap_cp_done(sl_ap_cp_t *cp, const sl_ap_target_t *t)
{
    while (cp->nkeep > 0) {
        free(cp->keep[--cp->nkeep]);
    }
    if (cp->nerr > 0) {
        return -1;
    }
    return sl_ap_target_ok(t) ? 0 : -2;
}

/* Only the target's members of an object holding others too (an
 * ai-proxy-advanced target's weight, description, ...), as JSON text
 * (malloc'd), or NULL (reported). */
static char *
sl_ap_target_members(sl_ap_cp_t *cp, const char *json, size_t len)
{
    static const char *const keys[] = {"route_type", "auth", "model", "logging", NULL};
    json_tokener *tok = json_tokener_new();
    json_object *root, *sub, *v;
    char *text = NULL;

    if (tok == NULL) {
        return NULL;
    }
    root = json_tokener_parse_ex(tok, json, (int)len);
    json_tokener_free(tok);
    if (root == NULL || !json_object_is_type(root, json_type_object)) {
        sl_ap_cp_err(cp, "", "expected a record");
        json_object_put(root);
        return NULL;
    }
    sub = json_object_new_object();
    for (int i = 0; sub && keys[i]; i++) {
        if (json_object_object_get_ex(root, keys[i], &v)) {
            json_object_object_add(sub, keys[i], json_object_get(v));
        }
    }
    if (sub) {
        text = strdup(json_object_to_json_string_ext(sub, JSON_C_TO_STRING_PLAIN));
    }
    json_object_put(sub);
    json_object_put(root);
    return text;
}

int
sl_ap_target_parse(const char *json, size_t len, const char *prefix, sl_ap_format_t llm_format,
                   sl_ap_streaming_t response_streaming, sl_ap_target_t *t, sl_ap_conf_err_fn err,
                   void *ud)
{
    sl_ap_cp_t cp = {err, ud, 0, prefix, {NULL}, 0};
    sl_ap_raw_target_t *r;
    char *text;
    int rc;

    memset(t, 0, sizeof(*t));
    if ((text = sl_ap_target_members(&cp, json, len)) == NULL) {
        return cp.nerr ? -1 : -2;
    }
    rc = sl_ap_check(&cp, &sl_ap_target_schema, "", text, strlen(text), (void **)&r);
    free(text);
    if (rc != 0) {
        return -1;
    }
    t->llm_format = llm_format;
    t->response_streaming = response_streaming;
    sl_ap_target_build(&cp, r, t);
    sl_ap_uncheck(&sl_ap_target_schema, r);
    if ((rc = sl_ap_cp_done(&cp, t)) != 0) {
        sl_ap_target_free(t);
    }
    return rc;
}

int
sl_ap_conf_parse(const char *json, size_t len, sl_ap_conf_t **out, sl_ap_conf_err_fn err, void *ud)
{
    static const char *const fmts[] = {"openai", "anthropic", NULL}; /* sl_ap_format_t order */
    static const char *const streams[] = {"allow", "deny", "always", NULL};
    sl_ap_cp_t cp = {err, ud, 0, "", {NULL}, 0};
    sl_ap_raw_t *r;
    sl_ap_conf_t *c;
    int rc, i;

    *out = NULL;
    if (sl_ap_check(&cp, &sl_ap_schema, "", json, len, (void **)&r) != 0) {
        return -1;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        sl_ap_uncheck(&sl_ap_schema, r);
        return -2;
    }
    for (i = 0; fmts[i] && strcmp(fmts[i], r->llm_format) != 0; i++) {
    }
    if (fmts[i] == NULL) {
        sl_ap_cp_err(&cp, "llm_format", "'%s' is not supported yet (openai, anthropic)",
                     r->llm_format);
    }
    c->t.llm_format = fmts[i] ? (sl_ap_format_t)i : SL_AP_FMT_OPENAI;
    for (i = 0; streams[i] && strcmp(streams[i], r->response_streaming) != 0; i++) {
    }
    c->t.response_streaming = (sl_ap_streaming_t)i; /* one_of: always found */
    c->max_request_body_size = r->max_request_body_size;
    c->max_stream_event_size = r->max_stream_event_size;
    c->model_name_header = r->model_name_header;
    if (r->genai_category && strcmp(r->genai_category, "text/generation") != 0) {
        sl_ap_cp_err(&cp, "genai_category", "'%s' is not supported yet (text/generation)",
                     r->genai_category);
    }
    sl_ap_target_build(&cp, &r->t, &c->t);
    sl_ap_uncheck(&sl_ap_schema, r);
    if ((rc = sl_ap_cp_done(&cp, &c->t)) != 0) {
        sl_ap_conf_free(c);
        return rc;
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
