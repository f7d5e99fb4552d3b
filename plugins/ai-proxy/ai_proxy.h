/* ai_proxy.h - internal interfaces of the ai-proxy plugin.
 *
 * The plugin is split into pure translators (bytes in, bytes out, no host
 * calls: unit-tested, fuzzed and benchmarked on their own) and the glue in
 * plugin.c that wires them to the sluice plugin ABI.  Everything here is
 * private to the plugin's shared object (built with hidden visibility).
 *
 * Return convention: 0 on success, -1 on a problem described in the
 * accompanying error text, -2 on out-of-memory.
 */

#ifndef SL_AI_PROXY_H
#define SL_AI_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sluice/plugin.h"

/* ------------------------------------------------------------------------
 * buf.c - growing output buffer
 * ------------------------------------------------------------------------ */

typedef struct sl_ap_buf {
    char *ptr;
    size_t len;
    size_t cap;
    int oom; /* sticky: an append failed */
} sl_ap_buf_t;

void sl_ap_buf_free(sl_ap_buf_t *b);
int sl_ap_buf_reserve(sl_ap_buf_t *b, size_t extra);
void sl_ap_buf_add(sl_ap_buf_t *b, const char *p, size_t n);
void sl_ap_buf_adds(sl_ap_buf_t *b, const char *s);
void sl_ap_buf_addc(sl_ap_buf_t *b, char c);
void sl_ap_buf_addf(sl_ap_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append v in decimal. */
void sl_ap_buf_add_i64(sl_ap_buf_t *b, int64_t v);
/* Append v as printf's "%.15g" writes it (an integral value below 1e15,
 * the usual temperature or max_tokens, without printf). */
void sl_ap_buf_add_g15(sl_ap_buf_t *b, double v);
/* Append bytes escaped as the inside of a JSON string (no quotes). */
void sl_ap_buf_add_esc(sl_ap_buf_t *b, const char *p, size_t n);
/* Append a quoted JSON string. */
void sl_ap_buf_add_qstr(sl_ap_buf_t *b, const char *p, size_t n);

/* `"" lit` makes anything but a string literal a compile error */
#define SL_AP_BUF_LIT(b, lit) sl_ap_buf_add((b), "" lit, sizeof(lit) - 1)

/* An OpenAI chat-completion chunk, as the codecs that decode a provider's
 * stream into OpenAI's write it: the head "data: {id, object, created,
 * model, choices:[" alone (for a caller's own choices), or a whole chunk
 * whose one choice has the delta <delta_open><str><delta_close> (str: NULL
 * or escaped JSON text) and finish_reason fin (NULL: null). */
typedef struct sl_ap_oai_head {
    const char *id;
    long long created;
    const char *model;
} sl_ap_oai_head_t;
void sl_ap_oai_chunk_head(sl_ap_buf_t *b, const sl_ap_oai_head_t *h);
void sl_ap_oai_chunk(sl_ap_buf_t *b, const sl_ap_oai_head_t *h, const char *delta_open,
                     const sl_str_t *str, const char *delta_close, const char *fin);

/* ------------------------------------------------------------------------
 * json_scan.c - validating in-place JSON tokenizer
 *
 * Tokens point into the source text; nothing is copied or unescaped, so a
 * string value can be re-emitted verbatim (it is already valid JSON string
 * content) and a whole sub-value (a JSON Schema, a tool input) is one span.
 * ------------------------------------------------------------------------ */

typedef enum sl_jtype {
    SL_J_OBJ = 1,
    SL_J_ARR,
    SL_J_STR,
    SL_J_NUM,
    SL_J_TRUE,
    SL_J_FALSE,
    SL_J_NULL
} sl_jtype_t;

typedef struct sl_jtok {
    uint8_t type;
    uint8_t esc;    /* STR: contains a backslash escape */
    uint16_t hi;    /* STR: 0 when every byte is ASCII; else see SL_JSON_HI */
    uint32_t start; /* STR: first byte after the quote; else first byte */
    uint32_t len;   /* STR: bytes between the quotes; else whole value */
    uint32_t next;  /* index of the token after this whole subtree */
} sl_jtok_t;

/* A string with non-ASCII bytes (UTF-8 past U+007F) has hi = its token
 * estimate (sl_ap_text_tokens) minus its length's, (len + 3) / 4, plus
 * SL_JSON_HI_BIAS: the scanner counts its multi-byte characters while it
 * validates them, so the estimate need not read the string again.  The
 * difference is -1 or more; SL_JSON_HI_FAR: too large to keep, count it. */
#define SL_JSON_HI_BIAS 2
#define SL_JSON_HI_FAR 0xFFFF

typedef struct sl_jdoc {
    const char *src;
    sl_jtok_t *t;
    uint32_t n;
    uint32_t cap;
    size_t err_off;  /* where parsing failed */
    const char *err; /* static text */
} sl_jdoc_t;

/* Parse a whole document (one value, surrounding whitespace allowed).
 * Reuses d's token array.  0, -1 (d->err, d->err_off), -2. */
int sl_json_parse(sl_jdoc_t *d, const char *src, size_t len);
void sl_json_free(sl_jdoc_t *d);
/* Whether the string scan may use AVX2 where the CPU has it (the default,
 * set when the plugin is loaded); returns whether it does.  Tests turn it
 * off to hold the SSE2 path to the same results. */
int sl_json_wide(int on);
/* Member of object token `obj` named key[0..kl) (compared after
 * unescaping; the first of duplicates); -1. */
int sl_json_getn(const sl_jdoc_t *d, int obj, const char *key, size_t kl);
/* The same for a NUL-terminated key: inline, so a literal's length is
 * folded at compile time (a translation makes ~200 lookups). */
static inline int
sl_json_get(const sl_jdoc_t *d, int obj, const char *key)
{
    return sl_json_getn(d, obj, key, strlen(key));
}
/* The first of `keys` (NULL-terminated) that object `obj` holds twice or
 * more (after unescaping), or NULL. */
const char *sl_json_dup_key(const sl_jdoc_t *d, int obj, const char *const *keys);
/* Typed variant: -1 unless the member exists with that type. */
static inline int
sl_json_get_t(const sl_jdoc_t *d, int obj, const char *key, sl_jtype_t type)
{
    int v = sl_json_get(d, obj, key);

    return v >= 0 && d->t[v].type == type ? v : -1;
}
/* String token equal to lit after unescaping. */
int sl_json_str_eq(const sl_jdoc_t *d, int tok, const char *lit);
/* Whole-value span of any token (a STR includes its quotes). */
sl_str_t sl_json_raw(const sl_jdoc_t *d, int tok);
/* Inside of a string (escaped form). */
sl_str_t sl_json_sv(const sl_jdoc_t *d, int tok);
int sl_json_int(const sl_jdoc_t *d, int tok, int64_t *out);
int sl_json_num(const sl_jdoc_t *d, int tok, double *out);
/* Decode a string token's escapes into b (appended, not NUL-terminated). */
int sl_json_unescape(const char *p, size_t n, sl_ap_buf_t *b);
/* Iteration helpers: first child / next sibling (value tokens; for objects
 * the returned index is the key, its value is index + 1). */
#define SL_JSON_END(d, tok) ((int)(d)->t[(tok)].next)
#define SL_JSON_FIRST(d, tok) ((tok) + 1)
#define SL_JSON_NEXT(d, i) ((int)(d)->t[(i)].next)
#define SL_JSON_NEXT_MEMBER(d, k) ((int)(d)->t[(k) + 1].next)

/* ------------------------------------------------------------------------
 * conf.c - Kong's ai-proxy config schema
 * ------------------------------------------------------------------------ */

typedef enum { SL_AP_FMT_OPENAI = 0, SL_AP_FMT_ANTHROPIC } sl_ap_format_t;
typedef enum { SL_AP_STREAM_ALLOW = 0, SL_AP_STREAM_DENY, SL_AP_STREAM_ALWAYS } sl_ap_streaming_t;
typedef enum { SL_AP_PARAM_NONE = 0, SL_AP_PARAM_QUERY, SL_AP_PARAM_BODY } sl_ap_param_loc_t;
/* model.options.dashscope.api (sluice extension): which DashScope API the
 * provider speaks - OpenAI-compatible chat (Kong's) or the Anthropic-
 * compatible Messages endpoint (pass-through for llm_format anthropic). */
typedef enum { SL_AP_API_OPENAI = 0, SL_AP_API_ANTHROPIC } sl_ap_api_t;

/* ------------------------------------------------------------------------
 * models.c - what a DashScope model can do (built-in table + config)
 * ------------------------------------------------------------------------ */

typedef enum {
    SL_AP_THINK_NO = 0, /* no thinking: enable_thinking is not sent as true */
    SL_AP_THINK_STREAM, /* hybrid, thinking only on streamed calls */
    SL_AP_THINK_YES     /* hybrid, thinking streamed or not */
} sl_ap_think_t;

typedef struct sl_ap_model {
    char name[64];       /* exact name; snapshots (-latest, -YYYY-MM-DD) match too */
    int64_t max_output;  /* upper bound of max_tokens; 0 = unknown (no clamp) */
    uint8_t thinking;    /* sl_ap_think_t */
    uint8_t json_schema; /* response_format json_schema honoured */
    uint8_t cache;       /* explicit cache_control markers accepted */
    uint8_t search;      /* enable_search accepted */
    uint8_t known;       /* found in the table or the config */
} sl_ap_model_t;

struct sl_ap_target;
/* Facts for `name` (config overrides first, then the built-in table; an
 * unknown model gets conservative facts: no clamp, thinking on streamed
 * calls, json_schema passed through, no markers, search refused). */
void sl_ap_model_facts(const struct sl_ap_target *conf, const char *name, size_t len,
                       sl_ap_model_t *out);
/* The built-in entry for `name`, or NULL. */
const sl_ap_model_t *sl_ap_model_builtin(const char *name, size_t len);

/* Kong's route types (route_type). */
typedef enum {
    SL_AP_ROUTE_CHAT = 0,    /* llm/v1/chat */
    SL_AP_ROUTE_COMPLETIONS, /* llm/v1/completions */
    SL_AP_ROUTE_EMBEDDINGS,  /* llm/v1/embeddings */
    SL_AP_ROUTE_PRESERVE,    /* preserve: body and path untouched, auth applied */
    SL_AP_ROUTE_N
} sl_ap_route_t;

struct sl_ap_provider; /* providers.c: one row per provider */

/* One upstream target: everything a single call to one provider needs -
 * the provider's table row, the model, the credential, the options and the
 * URL.  ai-proxy has exactly one (sl_ap_conf_t.t); ai-proxy-advanced keeps
 * one per configured target, each parsed by sl_ap_target_parse().  The
 * translators and the provider codecs read only this struct.  Strings are
 * owned (sl_ap_target_free). */
typedef struct sl_ap_target {
    const struct sl_ap_provider *prov; /* never NULL after a successful parse */
    int provider;                      /* prov->id (sl_ap_provider_id_t) */
    sl_ap_route_t route_type;
    /* the client side, copied from the plugin config so that the
     * translators need nothing else */
    sl_ap_format_t llm_format;
    sl_ap_streaming_t response_streaming;

    char *provider_name; /* Kong's name: "dashscope", "openai", ... */
    char *model_name;    /* NULL: the request's model is used */
    char *model_header;  /* "dashscope/qwen-plus" (NULL without name) */
    char *model_alias;   /* a request model also accepted for model_name */

    /* auth */
    char *header_name, *header_value;
    char *param_name, *param_value;
    sl_ap_param_loc_t param_location;
    int allow_override;

    /* model.options */
    int64_t max_tokens;                       /* -1 when unset */
    double temperature, top_p;                /* < 0 when unset */
    int64_t top_k;                            /* -1 when unset */
    double input_cost, output_cost;           /* < 0 when unset */
    double cache_read_cost, cache_write_cost; /* < 0 when unset (Kong 3.14) */
    int international;                        /* dashscope.international */
    char *anthropic_version;                  /* anthropic: the anthropic-version header */
    char *azure_api_version;                  /* azure: the api-version query parameter */

    /* model.options.dashscope sluice extensions */
    sl_ap_api_t api;
    int web_search;        /* Anthropic web_search server tool -> enable_search */
    char *search_options;  /* raw JSON object sent as search_options, or NULL */
    sl_ap_model_t *models; /* per-model overrides (dashscope.models) */
    size_t nmodels;

    /* upstream target: scheme, host, port, path (from upstream_url, or the
     * provider row's template for the route type) */
    char *up_scheme, *up_host, *up_path, *up_query;
    int up_port;
    int up_path_fixed; /* the path came from upstream_url / upstream_path */

    /* logging */
    int log_statistics, log_payloads;

    /* bedrock: SigV4 credentials and region (auth.aws_*, options.bedrock.
     * aws_region, else AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
     * AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION at load time) */
    char *aws_access_key_id, *aws_secret_access_key, *aws_session_token, *aws_region;

    /* gemini on Vertex AI (options.gemini.api_endpoint, project_id,
     * location_id): "/v1/projects/<p>/locations/<l>/publishers/google/
     * models/", the model and operation follow; NULL for the Gemini API */
    char *vertex_prefix;
    /* an OAuth token source (Vertex AI service account, Azure Entra ID):
     * token.h; NULL when the credential is a configured key */
    struct sl_ap_token_src *token;

    /* llm/v1/embeddings (embeddings.c): options.embeddings_dimensions (-1
     * unset), options.bedrock.embeddings_normalize (Titan v2), options.
     * cohere.embedding_input_type (Cohere and Cohere on Bedrock; a static
     * string, Kong's default "classification"), options.gemini.
     * embedding_input_type as Google spells the task type ("" unset) */
    int64_t embed_dims;
    int embed_normalize;
    const char *embed_input_type;
    char embed_task_type[24];
} sl_ap_target_t;

/* The plugin's config: the settings of the route, then its one target. */
typedef struct sl_ap_conf {
    sl_ap_target_t t;
    int model_name_header;
    int64_t max_request_body_size; /* 0 = unlimited */
    int64_t max_stream_event_size; /* one upstream SSE event (or a non-SSE
                                      body answering a stream); 0 = unlimited */
} sl_ap_conf_t;

/* Error reporter: conf.c knows nothing about the host; plugin.c passes a
 * function forwarding to api->conf_error. */
typedef void (*sl_ap_conf_err_fn)(void *ud, const char *field, const char *msg);

/* The host whose schema checker (api->conf_schema_check, ABI 1.4) checks
 * the config against conf_schema.c's tables: set once before parsing (the
 * plugin's config_parse; unit tests pass a table of their own).  Without
 * one, or with an older host, every parse fails saying so. */
void sl_ap_conf_host(const sl_api_t *api);

int sl_ap_conf_parse(const char *json, size_t len, sl_ap_conf_t **out, sl_ap_conf_err_fn err,
                     void *ud);
void sl_ap_conf_free(sl_ap_conf_t *c);

/* One target from a JSON object holding Kong's `route_type`, `model`,
 * `auth` and `logging` members (ai-proxy's config itself, or one of
 * ai-proxy-advanced's targets[]).  `prefix` is put before every field path
 * in errors ("targets[2]" gives "targets[2].model.provider: ...", "" for
 * none); the object's other members are not looked at.  `llm_format` and
 * `response_streaming` are the plugin's.  0, -1 (errors reported) or -2
 * (out of memory).  On failure `t` holds nothing to free. */
int sl_ap_target_parse(const char *json, size_t len, const char *prefix, sl_ap_format_t llm_format,
                       sl_ap_streaming_t response_streaming, sl_ap_target_t *t,
                       sl_ap_conf_err_fn err, void *ud);
void sl_ap_target_free(sl_ap_target_t *t);

/* ------------------------------------------------------------------------
 * Request translation (anthropic_request.c, openai_request.c)
 * ------------------------------------------------------------------------ */

typedef struct sl_ap_req_info {
    /* out */
    int stream;             /* the translated request streams */
    int status;             /* on -1: HTTP status to answer */
    char errmsg[256];       /* on -1: message */
    sl_str_t model;         /* model sent upstream (points into conf or the input) */
    int64_t input_estimate; /* token estimate of the prompt */
    int cache_marks;        /* cache_control markers sent upstream */
    int upstream_stream;    /* the upstream is asked to stream (thinking
                               on a non-streaming client: aggregated) */
    int web_search;         /* web_search server tool -> enable_search */
    char search_query[512]; /* its query (escaped JSON string content) */
    int include_usage;      /* an OpenAI client asked stream_options.include_usage */
    int embed;              /* embeddings: the provider's dialect (sl_ap_embed_t) */
    int embed_base64;       /* embeddings: encoding_format base64 asked */
    int embed_n;            /* embeddings: number of inputs */
} sl_ap_req_info_t;

/* cache_marks.c: the cache_control markers carried to DashScope. */
#define SL_AP_MAX_MARKS 4
typedef struct sl_ap_marks {
    int n;                      /* kept markers */
    int blk[SL_AP_MAX_MARKS];   /* token of each kept marked block */
    int owner[SL_AP_MAX_MARKS]; /* -1: the system message; else messages index */
    int total;                  /* markers in the request */
} sl_ap_marks_t;

/* Plan which markers of the request (system `sys`, messages `msgs`, tools
 * `tools`; -1 when absent) go upstream: see cache_marks.c for the rules. */
void sl_ap_cache_plan(const sl_jdoc_t *d, int sys, int msgs, int tools, sl_ap_marks_t *m);
int sl_ap_marks_has(const sl_ap_marks_t *m, int blk);
int sl_ap_marks_owner(const sl_ap_marks_t *m, int owner);

/* Anthropic Messages request -> OpenAI chat request.  `out` is appended. */
int sl_ap_anthropic_request(const sl_ap_target_t *conf, const char *body, size_t len,
                            sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_req_info_t *info);

/* 400 (info) when the request's top-level object holds a key the gateway
 * applies policy to (model, stream, max_tokens, temperature, top_p, top_k,
 * the body auth parameter) more than once, compared after unescaping:
 * the gateway reads the first, a provider may read the last. */
int sl_ap_policy_dups(const sl_ap_target_t *conf, const sl_jdoc_t *d, sl_ap_req_info_t *info);

/* OpenAI chat request -> same, with model/options/auth-param applied. */
int sl_ap_openai_request(const sl_ap_target_t *conf, const char *body, size_t len, sl_jdoc_t *doc,
                         sl_ap_buf_t *out, sl_ap_req_info_t *info);

/* reasoning.c: an OpenAI request's `reasoning_effort` (token tok, -1 when
 * absent) as a thinking budget: *budget -1 when absent, 0 for "none", else
 * the tokens; -1 (info: 400) for a value OpenAI does not know. */
int sl_ap_reasoning_budget(const sl_jdoc_t *d, int tok, int64_t *budget, sl_ap_req_info_t *info);

/* scrub.c: the target's credential (auth.header_value without its scheme
 * word, auth.param_value; 8 bytes or more) replaced by "[REDACTED]". */
#define SL_AP_MAX_SECRETS 2
size_t sl_ap_secrets(const sl_ap_target_t *t, sl_str_t out[SL_AP_MAX_SECRETS]);
int sl_ap_has_secret(const sl_ap_target_t *t, const char *p, size_t n);
/* p[0..n) with every secret replaced, appended to out. */
void sl_ap_scrub_into(const sl_ap_target_t *t, const char *p, size_t n, sl_ap_buf_t *out);
/* The same in place; -2 out of memory (b unchanged). */
int sl_ap_scrub_buf(const sl_ap_target_t *t, sl_ap_buf_t *b);

/* count_tokens.c: local estimate for /v1/messages/count_tokens (body is an
 * Anthropic count_tokens request).  -1 (info->status, info->errmsg) for what
 * /v1/messages on the same route would refuse, -2 out of memory. */
int sl_ap_count_tokens(const sl_ap_conf_t *conf, const char *body, size_t len, sl_jdoc_t *doc,
                       int64_t *tokens, sl_ap_req_info_t *info);
/* Estimate tokens of the request parsed in doc (root 0). */
int64_t sl_ap_estimate_tokens(const sl_jdoc_t *doc);
/* Token estimate for text: ASCII bytes / 4 + one per non-ASCII character. */
int64_t sl_ap_text_tokens(const char *p, size_t n);
/* The same for string token `tok` of doc, from what the scanner recorded. */
int64_t sl_ap_str_tokens(const sl_jdoc_t *doc, int tok);

/* ------------------------------------------------------------------------
 * Usage collected from the response (stats.c formats it)
 * ------------------------------------------------------------------------ */

typedef struct sl_ap_usage {
    int have; /* the upstream reported usage */
    int64_t prompt, completion, total, cached;
    int64_t created;              /* cache_creation_input_tokens (DashScope explicit cache) */
    char completion_details[256]; /* raw JSON object, "" = none */
    char response_model[128];
    int64_t out_chars_tokens; /* estimate from the generated text */
} sl_ap_usage_t;

void sl_ap_usage_from_json(const sl_jdoc_t *d, int usage_tok, sl_ap_usage_t *u);
/* Anthropic's input_tokens: the prompt less cache reads and cache writes
 * (Anthropic counts the three apart; total input = the sum). */
int64_t sl_ap_uncached_input(const sl_ap_usage_t *u);

/* ------------------------------------------------------------------------
 * anthropic_response.c - non-streaming response and error bodies
 * ------------------------------------------------------------------------ */

/* OpenAI chat completion JSON -> Anthropic message JSON.  `model` is the
 * name to report when the upstream omits it.  -1 when the body is not a
 * chat completion (then the caller sends an Anthropic api_error). */
int sl_ap_anthropic_response(const char *body, size_t len, sl_str_t model, sl_jdoc_t *doc,
                             sl_ap_buf_t *out, sl_ap_usage_t *u);

/* The same, answering a web_search server tool: a server_tool_use block
 * (input {query}) and an empty web_search_tool_result come first. */
int sl_ap_anthropic_response_search(const char *body, size_t len, sl_str_t model,
                                    const char *search_query, sl_jdoc_t *doc, sl_ap_buf_t *out,
                                    sl_ap_usage_t *u);
/* Those two blocks (id: the message id's tail; query: escaped text). */
void sl_ap_search_blocks(sl_ap_buf_t *out, sl_str_t id, const char *query);

/* openai_aggregate.c: a whole OpenAI chat stream (SSE body) -> one chat
 * completion JSON appended to out; -1 when the stream failed (an error
 * event, or no finish_reason), -2 on OOM. */
int sl_ap_aggregate_stream(const char *body, size_t len, sl_ap_buf_t *out);

/* Anthropic error type name for an HTTP status. */
const char *sl_ap_anthropic_error_type(int status);
/* Any error body (OpenAI/DashScope JSON, Kong JSON, HTML, empty) -> an
 * Anthropic error body for `status`. */
void sl_ap_anthropic_error(int status, const char *body, size_t len, sl_jdoc_t *doc,
                           sl_ap_buf_t *out);
/* The same error body in OpenAI's shape, {"error":{"message","type",
 * "param":null,"code":null}} (the provider's error.type when it names
 * one, else one for the status), for an OpenAI client of a provider with
 * another dialect. */
void sl_ap_openai_error(int status, const char *body, size_t len, sl_jdoc_t *doc, sl_ap_buf_t *out);
/* {"type":"error","error":{"type":T,"message":M}} for a C message. */
void sl_ap_anthropic_error_msg(sl_ap_buf_t *out, int status, const char *msg);
/* finish_reason -> stop_reason ("end_turn" for unknown). */
const char *sl_ap_stop_reason(const char *fr, size_t n);

/* ------------------------------------------------------------------------
 * sse.c - incremental server-sent-events parser
 * ------------------------------------------------------------------------ */

typedef struct sl_sse {
    sl_ap_buf_t line; /* an incomplete line carried over */
    sl_ap_buf_t data; /* data of the event being assembled */
    const char *view; /* or its one line, in the bytes being fed */
    size_t view_len;
    int have_data;
    int skip_lf;  /* last byte was CR */
    size_t max;   /* largest line or event kept (bytes); 0 = no bound */
    int overflow; /* sticky: an event passed max, nothing more is parsed */
} sl_sse_t;

#define SL_SSE_TOO_BIG -3

/* Called once per complete event with its data (lines joined by \n). */
typedef int (*sl_sse_event_fn)(void *ud, const char *data, size_t len);

/* Feed bytes; events are dispatched as they complete.  eof flushes a last
 * event without its blank line.  Returns the callback's first non-zero
 * result, -2 on OOM, SL_SSE_TOO_BIG once a line or an event's data would
 * pass s->max (and from then on, keeping nothing), 0 otherwise. */
int sl_sse_feed(sl_sse_t *s, const char *p, size_t n, int eof, sl_sse_event_fn fn, void *ud);
void sl_sse_free(sl_sse_t *s);
/* The token array an event's JSON is parsed into: one per process, since a
 * worker translates one event at a time, so a held stream owns none.  Valid
 * until the next call; the parse of one event must end before another
 * stream's begins (event callbacks do not feed other streams). */
sl_jdoc_t *sl_sse_event_doc(void);

/* ------------------------------------------------------------------------
 * anthropic_stream.c - OpenAI chunks -> Anthropic SSE events
 * ------------------------------------------------------------------------ */

typedef enum { SL_AP_BLK_NONE = 0, SL_AP_BLK_TEXT, SL_AP_BLK_THINKING, SL_AP_BLK_TOOL } sl_ap_blk_t;

typedef struct sl_ap_stream {
    sl_sse_t sse;
    sl_ap_buf_t *out; /* current output (set per feed) */
    sl_ap_buf_t tmp;
    char model[128];
    char msg_id[96];
    int64_t input_estimate;
    int started;   /* message_start sent */
    int ended;     /* message_stop or error sent */
    int blk;       /* sl_ap_blk_t of the open block */
    int blk_index; /* index of the open block; next = count */
    int nblocks;
    int64_t tool_index; /* upstream index of the open tool block */
    int ntools;
    char stop_reason[32];
    int finished;    /* finish_reason seen */
    int got_content; /* a content delta was emitted */
    int bad_chunk;   /* an event was not a JSON object: ended with an error */
    sl_ap_usage_t usage;
    int64_t gen_tokens;       /* estimate of generated tokens */
    const char *search_query; /* web_search answered: its query (set after init) */
} sl_ap_stream_t;

/* Timer tick on a silent upstream: message_start (if not sent yet) or a
 * ping, appended to out. */
void sl_ap_stream_keepalive(sl_ap_stream_t *s, sl_ap_buf_t *out);
void sl_ap_stream_init(sl_ap_stream_t *s, sl_str_t model, int64_t input_estimate);
void sl_ap_stream_free(sl_ap_stream_t *s);
/* Translate a piece of the upstream body, appending events to out.  With
 * eof=1, `truncated` says the upstream did not end cleanly. */
int sl_ap_stream_feed(sl_ap_stream_t *s, const char *p, size_t n, int eof, int truncated,
                      sl_ap_buf_t *out);

/* ------------------------------------------------------------------------
 * openai_stream.c - watch an OpenAI stream (unchanged) for usage
 * ------------------------------------------------------------------------ */

typedef struct sl_ap_watch {
    sl_sse_t sse;
    sl_ap_usage_t usage;
    int64_t gen_tokens;
} sl_ap_watch_t;

int sl_ap_watch_feed(sl_ap_watch_t *w, const char *p, size_t n, int eof);
void sl_ap_watch_free(sl_ap_watch_t *w);
/* Non-streaming OpenAI body -> usage (and model). */
void sl_ap_usage_from_body(const char *body, size_t len, sl_jdoc_t *doc, sl_ap_usage_t *u);
/* cohere.c: an object holding Cohere's billed_units (else tokens) ->
 * usage; a whole preserved answer (chat's usage, embed's meta) -> usage.
 * The watcher reads a Cohere stream's message-end itself. */
void sl_ap_cohere_usage(const sl_jdoc_t *d, int obj, sl_ap_usage_t *u);
void sl_ap_cohere_usage_body(const char *body, size_t len, sl_jdoc_t *doc, sl_ap_usage_t *u);

/* native_usage.c: statistics from a preserved gemini or bedrock answer
 * (passed untouched).  A whole JSON body (an object, or Gemini's streamed
 * JSON array) -> usage and model; `wire` is the provider's sl_ap_wire_t. */
void sl_ap_native_usage_body(int wire, const char *body, size_t len, sl_jdoc_t *doc,
                             sl_ap_usage_t *u);
/* A streamed answer (Gemini's SSE, Bedrock's event-stream) read piece by
 * piece.  new: NULL for another wire or out of memory; events larger than
 * max_event (0: no bound) are not read.  feed: 0, or -2 on OOM. */
typedef struct sl_ap_nwatch sl_ap_nwatch_t;
sl_ap_nwatch_t *sl_ap_nwatch_new(int wire, size_t max_event);
int sl_ap_nwatch_feed(sl_ap_nwatch_t *w, const char *p, size_t n, int eof);
const sl_ap_usage_t *sl_ap_nwatch_usage(const sl_ap_nwatch_t *w);
void sl_ap_nwatch_free(sl_ap_nwatch_t *w);

/* ------------------------------------------------------------------------
 * stats.c - ai.proxy.usage / ai.proxy.meta values
 * ------------------------------------------------------------------------ */

typedef struct sl_ap_stats_in {
    const sl_ap_usage_t *usage;
    double input_cost, output_cost;           /* < 0 unset */
    double cache_read_cost, cache_write_cost; /* < 0 unset: input_cost */
    int64_t llm_latency_ms;
    int64_t ttft_ms;
    int stream;
    sl_str_t plugin_id, provider_name, request_model;
} sl_ap_stats_in_t;

/* One published value: its dotted key and value for
 * api->set_serialize_typed, or, when json.ptr is set, JSON text for
 * set_serialize_value (the provider's completion_tokens_details object). */
typedef struct sl_ap_stat {
    const char *key;
    sl_value_t v;
    sl_str_t json;
} sl_ap_stat_t;

#define SL_AP_STATS_MAX 17

/* ai.proxy.usage and ai.proxy.meta as values, in Kong's order (each object
 * before its members), into out[SL_AP_STATS_MAX]; returns how many.  The
 * strings borrow from `in` (and its usage), or from `model`, which holds
 * the response model decoded when it had an escape. */
size_t sl_ap_stats(const sl_ap_stats_in_t *in, sl_ap_buf_t *model, sl_ap_stat_t *out);

/* ------------------------------------------------------------------------
 * providers.c - the provider table and the codec seam (docs/providers.md)
 *
 * One row per provider Kong knows: its name, the dialect it speaks (wire),
 * the default URL per route type, the credential it expects, how it frames
 * a stream, what it can do, and its codec.  The pivot between client
 * formats and providers is the OpenAI chat format (request, completion,
 * chunk stream): the Anthropic client side is translated to and from it by
 * the existing translators (anthropic_request.c, anthropic_response.c,
 * anthropic_stream.c), and a provider whose wire is not OpenAI chat brings
 * a codec that encodes the pivot (or, for speed, the Anthropic request
 * directly) into its own request and decodes its answers back into the
 * pivot.  A client whose format equals the provider's wire is passed
 * through member by member (sl_ap_openai_request: model, options, body
 * credential), its answer untouched.
 * ------------------------------------------------------------------------ */

/* Kong's provider names, in Kong's one_of order. */
typedef enum {
    SL_AP_PROV_OPENAI = 0,
    SL_AP_PROV_AZURE,
    SL_AP_PROV_ANTHROPIC,
    SL_AP_PROV_COHERE,
    SL_AP_PROV_MISTRAL,
    SL_AP_PROV_LLAMA2,
    SL_AP_PROV_GEMINI,
    SL_AP_PROV_BEDROCK,
    SL_AP_PROV_HUGGINGFACE,
    SL_AP_PROV_DASHSCOPE,
    SL_AP_PROV_DATABRICKS,
    SL_AP_PROV_XAI,
    SL_AP_PROV_CEREBRAS,
    SL_AP_PROV_DEEPSEEK,
    SL_AP_PROV_OLLAMA,
    SL_AP_PROV_VLLM,
    SL_AP_PROV_N
} sl_ap_provider_id_t;

/* The request/response dialect a provider speaks upstream. */
typedef enum {
    SL_AP_WIRE_OPENAI = 0, /* OpenAI chat completions (and compatible) */
    SL_AP_WIRE_ANTHROPIC,  /* Anthropic Messages */
    SL_AP_WIRE_GEMINI,     /* generateContent */
    SL_AP_WIRE_BEDROCK,    /* Converse */
    SL_AP_WIRE_OTHER       /* a native format no codec speaks yet */
} sl_ap_wire_t;

/* How a streamed answer is framed. */
typedef enum {
    SL_AP_FRAME_SSE = 0,     /* text/event-stream */
    SL_AP_FRAME_NDJSON,      /* one JSON object per line (Ollama native) */
    SL_AP_FRAME_EVENTSTREAM, /* application/vnd.amazon.eventstream (Bedrock) */
    SL_AP_FRAME_JSON_ARRAY   /* a JSON array streamed element by element */
} sl_ap_frame_t;

/* The credential the provider expects (Kong always sends the configured
 * auth.header_* / param_* verbatim; this says what that should be, for the
 * docs, the mocks and the redaction list). */
typedef enum {
    SL_AP_AUTH_BEARER = 0, /* Authorization: Bearer <key> */
    SL_AP_AUTH_API_KEY,    /* api-key: <key> (Azure) */
    SL_AP_AUTH_X_API_KEY,  /* x-api-key: <key> (Anthropic) */
    SL_AP_AUTH_GOOG,       /* x-goog-api-key / ?key= (Gemini), or an OAuth token */
    SL_AP_AUTH_SIGV4,      /* AWS SigV4 signature (Bedrock) */
    SL_AP_AUTH_OPTIONAL    /* self-hosted: whatever the deployment wants, or none */
} sl_ap_auth_t;

/* Capabilities (sl_ap_provider_t.caps). */
#define SL_AP_CAP_TOP_K 0x0001u         /* top_k is sent (else dropped) */
#define SL_AP_CAP_TOOL_REQUIRED 0x0002u /* tool_choice "required" accepted */
#define SL_AP_CAP_STREAM_USAGE 0x0004u  /* stream_options.include_usage accepted */
/* DashScope's extensions: per-model facts, enable_thinking, cache markers,
 * search */
#define SL_AP_CAP_QWEN 0x0008u
#define SL_AP_CAP_TOOLS 0x0010u        /* function tools */
#define SL_AP_CAP_NEEDS_URL 0x0020u    /* self-hosted: upstream_url is required */
#define SL_AP_CAP_COUNT_TOKENS 0x0040u /* has Anthropic's count_tokens endpoint */

struct sl_ap_req_info;
struct sl_ap_usage;

/* A provider's encoder/decoder pair against the pivot (OpenAI chat).
 * Every member may be NULL (not needed, or not written yet: then the
 * combination is refused at config time with "not supported yet"). */
typedef struct sl_ap_codec {
    /* Request encoders, client body -> provider body appended to `out`
     * (same contract as sl_ap_anthropic_request).  from_anthropic is an
     * optional fast path; without it an Anthropic request goes through
     * sl_ap_anthropic_request (to the pivot) and then from_openai. */
    int (*from_openai)(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *doc,
                       sl_ap_buf_t *out, struct sl_ap_req_info *info);
    int (*from_anthropic)(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *doc,
                          sl_ap_buf_t *out, struct sl_ap_req_info *info);
    /* After encoding, in the body phase: what the request needs beyond the
     * URL and auth of the target (a path naming the model, the streaming
     * twin of an operation, a signature over the final body).  `body` is
     * the encoded body as it will be sent. */
    int (*prepare)(const sl_ap_target_t *t, const sl_api_t *api, sl_req_t *r,
                   const struct sl_ap_req_info *info, sl_str_t body);
    /* A whole non-streamed answer -> one OpenAI chat completion appended to
     * out; usage and model into u.  -1: not an answer of this provider. */
    int (*decode_json)(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *doc,
                       sl_ap_buf_t *out, struct sl_ap_usage *u);
    /* A streamed answer -> OpenAI chunk SSE ("data: {...}\n\n", a final
     * "data: [DONE]\n\n"), piece by piece; state of stream_size bytes,
     * zeroed, then stream_init with the encoder's info for this request
     * (model, include_usage: the usage chunk only when the client asked).
     * feed fills *u as usage arrives and returns -2 on OOM, -1 on a broken
     * stream (it has then appended a data: {"error":...} chunk). */
    size_t stream_size;
    void (*stream_init)(void *st, const sl_ap_target_t *t, const sl_ap_req_info_t *info,
                        size_t max_event);
    int (*stream_feed)(void *st, const char *p, size_t n, int eof, sl_ap_buf_t *out,
                       sl_ap_usage_t *u);
    void (*stream_free)(void *st);
    /* Optional fast paths for an Anthropic client: the provider's answers
     * straight into Anthropic's, without the pivot (which has no room for
     * thinking signatures, redacted thinking, cache reads).  A whole answer
     * (msg_id: the id to report when the answer has none; -1: not an answer
     * of this provider), and a stream: state of astream_size bytes, zeroed,
     * then astream_init; feed appends Anthropic events (ending with
     * message_stop or one error event); keepalive a ping (or message_start);
     * state reports the usage so far, whether the last event went out and
     * why the stream broke (NULL: it did not). */
    int (*anthropic_json)(const sl_ap_target_t *t, const char *body, size_t len, sl_str_t model,
                          sl_str_t msg_id, sl_jdoc_t *doc, sl_ap_buf_t *out, struct sl_ap_usage *u);
    size_t astream_size;
    void (*astream_init)(void *st, const sl_ap_target_t *t, sl_str_t model, sl_str_t msg_id,
                         int64_t input_estimate, size_t max_event);
    int (*astream_feed)(void *st, const char *p, size_t n, int eof, int truncated,
                        sl_ap_buf_t *out);
    void (*astream_keepalive)(void *st, sl_ap_buf_t *out);
    void (*astream_state)(void *st, struct sl_ap_usage *u, int *ended, const char **broke);
    void (*astream_free)(void *st);
} sl_ap_codec_t;

typedef struct sl_ap_provider {
    const char *name; /* Kong's name */
    uint8_t id;       /* sl_ap_provider_id_t */
    uint8_t wire;     /* sl_ap_wire_t */
    uint8_t frame;    /* sl_ap_frame_t */
    uint8_t auth;     /* sl_ap_auth_t */
    /* default URL: "https://host:port" with {azure_instance},
     * {dashscope_host} placeholders filled from the options at load time;
     * NULL for self-hosted providers (upstream_url required) */
    const char *base_url;
    /* path per route type, appended to base_url ({azure_deployment_id}
     * filled at load time, {model} at request time by the codec); NULL:
     * the provider has no such operation (or sluice does not do it yet) */
    const char *path[SL_AP_ROUTE_N];
    unsigned caps;              /* SL_AP_CAP_* */
    const sl_ap_codec_t *codec; /* NULL for wire OPENAI: the pivot itself */
    const char *not_yet;        /* non-NULL: refused at load time with this reason */
} sl_ap_provider_t;

/* The row for Kong's name `name` (NULL: not a provider Kong knows). */
const sl_ap_provider_t *sl_ap_provider_find(const char *name);
const sl_ap_provider_t *sl_ap_provider_get(sl_ap_provider_id_t id);
/* Kong's route_type text for a route type. */
const char *sl_ap_route_name(sl_ap_route_t rt);
/* Can a client in `fmt` use provider `p` on route type `rt`?  NULL when
 * yes, else the config field that cannot be honoured ("route_type",
 * "llm_format", "model.provider"). */
const char *sl_ap_provider_refusal(const sl_ap_provider_t *p, sl_ap_format_t fmt, sl_ap_route_t rt);

/* Why provider `p` refuses llm/v1/completions (it has no such operation,
 * or Kong's driver speaks one sluice does not): a sentence for the config
 * error. */
const char *sl_ap_completions_refusal(const sl_ap_provider_t *p);

/* The dialect a target speaks upstream (DashScope's Anthropic endpoint is
 * Anthropic), whether the client's format is that dialect (then the body
 * is passed member by member and the answer untouched), and the codec to
 * use (NULL: none needed - passthrough, or an OpenAI-wire provider). */
sl_ap_wire_t sl_ap_target_wire(const sl_ap_target_t *t);
int sl_ap_target_passthrough(const sl_ap_target_t *t);
const sl_ap_codec_t *sl_ap_target_codec(const sl_ap_target_t *t);
/* The client's request -> the provider's (passthrough copy, Anthropic ->
 * OpenAI, or the codec's encoder, through the pivot when needed).  The
 * contract of sl_ap_anthropic_request. */
int sl_ap_encode_request(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *doc,
                         sl_ap_buf_t *out, sl_ap_req_info_t *info);

/* native_codec.c: sign r for Bedrock (SigV4 over method, the path and
 * query as sent, content_type when not empty, body); the client's
 * credential headers replaced by the signature.  0 or -1. */
int sl_ap_bedrock_sign(const sl_ap_target_t *t, const sl_api_t *api, sl_req_t *r, sl_str_t method,
                       sl_str_t path, sl_str_t query, sl_str_t content_type, sl_str_t body);

/* embeddings.c: llm/v1/embeddings to providers whose embeddings API is not
 * OpenAI's.  An OpenAI embeddings request (after the gateway's policy:
 * model, body credential) is written in the provider's dialect, and its
 * answer read back into OpenAI's list (float arrays, or base64 float32
 * when the client asked encoding_format base64) with usage. */
typedef enum {
    SL_AP_EMBED_NONE = 0,
    SL_AP_EMBED_GEMINI,         /* batchEmbedContents */
    SL_AP_EMBED_VERTEX,         /* Vertex AI :predict */
    SL_AP_EMBED_TITAN,          /* Bedrock InvokeModel, amazon.titan-embed-* */
    SL_AP_EMBED_BEDROCK_COHERE, /* Bedrock InvokeModel, cohere.embed-* */
    SL_AP_EMBED_COHERE          /* Cohere's v2 embed */
} sl_ap_embed_t;

/* The dialect for target t and model (NULL/empty: any model of t's
 * provider would do, answer whether the provider has embeddings at all);
 * SL_AP_EMBED_NONE when sluice cannot send that model's embeddings. */
sl_ap_embed_t sl_ap_embed_dialect(const sl_ap_target_t *t, const char *model, size_t len);
/* The client's OpenAI embeddings body -> the provider's (the contract of
 * sl_ap_anthropic_request; info->embed* set for the answer). */
int sl_ap_embed_request(const sl_ap_target_t *t, const char *body, size_t len, sl_jdoc_t *doc,
                        sl_ap_buf_t *out, sl_ap_req_info_t *info);
/* The operation's path for gemini, Vertex AI and bedrock (the model in
 * it), appended to out. */
void sl_ap_embed_path(sl_ap_buf_t *out, const sl_ap_target_t *t, const sl_ap_req_info_t *info);
/* The provider's answer -> OpenAI's embeddings list appended to out; usage
 * into u (header_tokens: Bedrock's x-amzn-bedrock-input-token-count, -1
 * without).  -1: not an answer of that dialect, or not one vector per
 * input. */
int sl_ap_embed_response(const sl_ap_req_info_t *info, int64_t header_tokens, const char *body,
                         size_t len, sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_usage_t *u);

/* Codecs of providers whose wire is not OpenAI chat (each in its own
 * file; a row points at its codec). */
extern const sl_ap_codec_t sl_ap_codec_anthropic;
extern const sl_ap_codec_t sl_ap_codec_gemini;  /* native_codec.c */
extern const sl_ap_codec_t sl_ap_codec_bedrock; /* native_codec.c */
extern const sl_ap_codec_t sl_ap_codec_cohere;  /* cohere.c: the v2 Chat API */

#endif
