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
/* Append bytes escaped as the inside of a JSON string (no quotes). */
void sl_ap_buf_add_esc(sl_ap_buf_t *b, const char *p, size_t n);
/* Append a quoted JSON string. */
void sl_ap_buf_add_qstr(sl_ap_buf_t *b, const char *p, size_t n);

/* `"" lit` makes anything but a string literal a compile error */
#define SL_AP_BUF_LIT(b, lit) sl_ap_buf_add((b), "" lit, sizeof(lit) - 1)

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
    uint32_t start; /* STR: first byte after the quote; else first byte */
    uint32_t len;   /* STR: bytes between the quotes; else whole value */
    uint32_t next;  /* index of the token after this whole subtree */
} sl_jtok_t;

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
/* Member of object token `obj` named `key` (compared after unescaping; the
 * first of duplicates); -1. */
int sl_json_get(const sl_jdoc_t *d, int obj, const char *key);
/* The first of `keys` (NULL-terminated) that object `obj` holds twice or
 * more (after unescaping), or NULL. */
const char *sl_json_dup_key(const sl_jdoc_t *d, int obj, const char *const *keys);
/* Typed variant: -1 unless the member exists with that type. */
int sl_json_get_t(const sl_jdoc_t *d, int obj, const char *key, sl_jtype_t type);
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
typedef enum { SL_AP_PROV_DASHSCOPE = 0, SL_AP_PROV_OPENAI } sl_ap_provider_t;
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

struct sl_ap_conf;
/* Facts for `name` (config overrides first, then the built-in table; an
 * unknown model gets conservative facts: no clamp, thinking on streamed
 * calls, json_schema passed through, no markers, search refused). */
void sl_ap_model_facts(const struct sl_ap_conf *conf, const char *name, size_t len,
                       sl_ap_model_t *out);
/* The built-in entry for `name`, or NULL. */
const sl_ap_model_t *sl_ap_model_builtin(const char *name, size_t len);

typedef struct sl_ap_conf {
    sl_ap_format_t llm_format;
    sl_ap_provider_t provider;
    sl_ap_streaming_t response_streaming;
    char *provider_name; /* "dashscope" / "openai" */
    char *model_name;    /* NULL: the request's model is used */
    char *model_header;  /* "dashscope/qwen-plus" (NULL without name) */

    char *header_name, *header_value;
    char *param_name, *param_value;
    sl_ap_param_loc_t param_location;
    int allow_override;

    int64_t max_tokens;                       /* -1 when unset */
    double temperature, top_p;                /* < 0 when unset */
    int64_t top_k;                            /* -1 when unset */
    double input_cost, output_cost;           /* < 0 when unset */
    double cache_read_cost, cache_write_cost; /* < 0 when unset (Kong 3.14) */
    int international;
    char *model_alias; /* a request model also accepted for model_name */

    /* model.options.dashscope sluice extensions */
    sl_ap_api_t api;
    int web_search;        /* Anthropic web_search server tool -> enable_search */
    char *search_options;  /* raw JSON object sent as search_options, or NULL */
    sl_ap_model_t *models; /* per-model overrides (dashscope.models) */
    size_t nmodels;

    /* upstream target: scheme, host, port, path (from upstream_url or the
     * provider's default). */
    char *up_scheme, *up_host, *up_path, *up_query;
    int up_port;

    int log_statistics, log_payloads;
    int model_name_header;
    int64_t max_request_body_size; /* 0 = unlimited */
    int64_t max_stream_event_size; /* one upstream SSE event (or a non-SSE
                                      body answering a stream); 0 = unlimited */
} sl_ap_conf_t;

/* Error reporter: conf.c knows nothing about the host; plugin.c passes a
 * function forwarding to api->conf_error. */
typedef void (*sl_ap_conf_err_fn)(void *ud, const char *field, const char *msg);

int sl_ap_conf_parse(const char *json, size_t len, sl_ap_conf_t **out, sl_ap_conf_err_fn err,
                     void *ud);
void sl_ap_conf_free(sl_ap_conf_t *c);

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
int sl_ap_anthropic_request(const sl_ap_conf_t *conf, const char *body, size_t len, sl_jdoc_t *doc,
                            sl_ap_buf_t *out, sl_ap_req_info_t *info);

/* 400 (info) when the request's top-level object holds a key the gateway
 * applies policy to (model, stream, max_tokens, temperature, top_p, top_k,
 * the body auth parameter) more than once, compared after unescaping:
 * the gateway reads the first, a provider may read the last. */
int sl_ap_policy_dups(const sl_ap_conf_t *conf, const sl_jdoc_t *d, sl_ap_req_info_t *info);

/* OpenAI chat request -> same, with model/options/auth-param applied. */
int sl_ap_openai_request(const sl_ap_conf_t *conf, const char *body, size_t len, sl_jdoc_t *doc,
                         sl_ap_buf_t *out, sl_ap_req_info_t *info);

/* count_tokens.c: local estimate for /v1/messages/count_tokens (body is an
 * Anthropic count_tokens request); -1 on invalid JSON (info->errmsg). */
int sl_ap_count_tokens(const char *body, size_t len, sl_jdoc_t *doc, int64_t *tokens,
                       sl_ap_req_info_t *info);
/* Estimate tokens of the request parsed in doc (root 0). */
int64_t sl_ap_estimate_tokens(const sl_jdoc_t *doc);
/* Token estimate for text: ASCII bytes / 4 + one per non-ASCII character. */
int64_t sl_ap_text_tokens(const char *p, size_t n);

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

/* ------------------------------------------------------------------------
 * anthropic_stream.c - OpenAI chunks -> Anthropic SSE events
 * ------------------------------------------------------------------------ */

typedef enum { SL_AP_BLK_NONE = 0, SL_AP_BLK_TEXT, SL_AP_BLK_THINKING, SL_AP_BLK_TOOL } sl_ap_blk_t;

typedef struct sl_ap_stream {
    sl_sse_t sse;
    sl_jdoc_t doc;
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
    sl_jdoc_t doc;
    sl_ap_usage_t usage;
    int64_t gen_tokens;
} sl_ap_watch_t;

int sl_ap_watch_feed(sl_ap_watch_t *w, const char *p, size_t n, int eof);
void sl_ap_watch_free(sl_ap_watch_t *w);
/* Non-streaming OpenAI body -> usage (and model). */
void sl_ap_usage_from_body(const char *body, size_t len, sl_jdoc_t *doc, sl_ap_usage_t *u);

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

void sl_ap_stats_usage(const sl_ap_stats_in_t *in, sl_ap_buf_t *out);
void sl_ap_stats_meta(const sl_ap_stats_in_t *in, sl_ap_buf_t *out);

#endif
