/* native.h - the gemini and bedrock providers: Anthropic Messages requests
 * translated to each provider's native API, and its answers (whole or
 * streamed) back to Anthropic Messages.
 *
 *   native.c         what both request translators share (model, checks)
 *   gemini.c         generateContent request / response, URL
 *   gemini_stream.c  streamGenerateContent?alt=sse -> Anthropic events
 *   bedrock.c        Converse request / response, URL
 *   bedrock_stream.c ConverseStream (application/vnd.amazon.eventstream)
 *                    frames, CRC-checked, -> Anthropic events
 *   sigv4.c          AWS Signature Version 4 (OpenSSL HMAC/SHA-256)
 *
 * Pure functions over bytes like the other translators: no host calls.
 */

#ifndef SL_AP_NATIVE_H
#define SL_AP_NATIVE_H

#include "ai_proxy.h"
#include "anthropic_emit.h"

/* ------------------------------------------------------------ native.c */

typedef struct sl_ap_nat {
    const sl_ap_target_t *conf;
    const sl_jdoc_t *d;
    sl_ap_buf_t *out;
    sl_ap_req_info_t *info;
    int msgs;   /* messages array token */
    int system; /* system token or -1 */
} sl_ap_nat_t;

int sl_ap_nat_fail(sl_ap_nat_t *n, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parse and check an Anthropic Messages request: JSON object, duplicate
 * policy keys, field types, the model (config wins; a different request
 * model is refused as Kong does), messages present, stream flag. */
int sl_ap_nat_begin(sl_ap_nat_t *n, const sl_ap_target_t *conf, const char *body, size_t len,
                    sl_jdoc_t *d, sl_ap_buf_t *out, sl_ap_req_info_t *info);
/* The name of the tool_use block with id `id_tok`'s value in messages
 * before index `before`, or -1. */
int sl_ap_nat_tool_name(const sl_ap_nat_t *n, int before, int id_tok);
/* Every system text in order: the top-level `system`, then each
 * role:"system" message's content, a string or text blocks (any other
 * block is refused here: 400 "only text blocks are allowed in system
 * content"); empty texts are skipped.  fn(arg, text string token, its
 * block token or -1 for a plain string, count) writes one.  -1 as soon as
 * a value is refused or fn fails, else 0. */
typedef int (*sl_ap_nat_system_fn)(void *arg, int text, int blk, int *count);
int sl_ap_nat_each_system(sl_ap_nat_t *n, sl_ap_nat_system_fn fn, void *arg, int *count);
/* Write the escaped inside of a span (verbatim). */
void sl_ap_nat_sv(sl_ap_nat_t *n, int tok);
void sl_ap_nat_raw(sl_ap_nat_t *n, int tok);
/* ,"key":value from the config when set, else the request's number. */
void sl_ap_nat_number(sl_ap_nat_t *n, int *first, const char *key, int have_conf, double conf_v,
                      int req_tok);
/* Percent-encode every byte but RFC 3986 unreserved ones. */
void sl_ap_uri_encode(sl_ap_buf_t *out, const char *p, size_t len);
/* Anthropic type of an upstream error code/status (429 -> rate_limit_error). */

/* ------------------------------------------------------------ gemini.c */

/* Anthropic Messages -> Gemini GenerateContentRequest. */
int sl_ap_gemini_request(const sl_ap_target_t *conf, const char *body, size_t len, sl_jdoc_t *d,
                         sl_ap_buf_t *out, sl_ap_req_info_t *info);
/* GenerateContentResponse -> Anthropic message.  msg_id: used when the
 * answer has no responseId.  -1 when the body is not a response. */
int sl_ap_gemini_response(const char *body, size_t len, sl_str_t model, sl_str_t msg_id,
                          sl_jdoc_t *d, sl_ap_buf_t *out, sl_ap_usage_t *u);
/* usageMetadata -> usage (prompt includes cached; completion includes
 * thoughts). */
void sl_ap_gemini_usage(const sl_jdoc_t *d, int tok, sl_ap_usage_t *u);
/* Anthropic stop_reason for a finishReason (tools: a function was called). */
const char *sl_ap_gemini_stop(const sl_jdoc_t *d, int fr, int tools);
/* A functionCall part's tool_use id: the call's own id, else
 * toolu_<msg>_<n>; a thoughtSignature rides along base64url-encoded after
 * "_gsig_" (Gemini 3 wants it back with the call). */
void sl_ap_gemini_tool_id(sl_ap_buf_t *out, const sl_jdoc_t *d, int part, int call,
                          const char *msg_tail, int n);
/* The upstream path of a model's operation: base "/v1beta/models/%s" style
 * or NULL for Gemini's own; stream picks streamGenerateContent. */
void sl_ap_gemini_path(sl_ap_buf_t *out, sl_str_t model, int stream);
/* The same under another models prefix (Vertex AI's
 * "/v1/projects/<p>/locations/<l>/publishers/google/models/"). */
void sl_ap_gemini_path_at(sl_ap_buf_t *out, const char *prefix, sl_str_t model, int stream);
/* upstream_url's path names one operation: its streaming twin. */
void sl_ap_gemini_stream_path(sl_ap_buf_t *out, sl_str_t path);

/* ----------------------------------------------------- gemini_stream.c */

typedef struct sl_ap_gstream {
    sl_sse_t sse;
    sl_jdoc_t doc;
    sl_ap_emit_t em;
    sl_ap_buf_t tmp;
    sl_ap_usage_t usage;
    char stop[32];
    int finished;  /* a finishReason arrived */
    int tools;     /* a function was called */
    int bad_chunk; /* an event was not JSON: the stream ended with an error */
} sl_ap_gstream_t;

void sl_ap_gstream_init(sl_ap_gstream_t *s, sl_str_t model, int64_t input_estimate);
void sl_ap_gstream_free(sl_ap_gstream_t *s);
int sl_ap_gstream_feed(sl_ap_gstream_t *s, const char *p, size_t n, int eof, int truncated,
                       sl_ap_buf_t *out);
void sl_ap_gstream_keepalive(sl_ap_gstream_t *s, sl_ap_buf_t *out);

/* ----------------------------------------------------------- bedrock.c */

/* Anthropic Messages -> Bedrock Converse request. */
int sl_ap_bedrock_request(const sl_ap_target_t *conf, const char *body, size_t len, sl_jdoc_t *d,
                          sl_ap_buf_t *out, sl_ap_req_info_t *info);
/* Converse response -> Anthropic message (msg_id: Converse has none). */
int sl_ap_bedrock_response(const char *body, size_t len, sl_str_t model, sl_str_t msg_id,
                           sl_jdoc_t *d, sl_ap_buf_t *out, sl_ap_usage_t *u);
void sl_ap_bedrock_usage(const sl_jdoc_t *d, int tok, sl_ap_usage_t *u);
const char *sl_ap_bedrock_stop(const char *p, size_t n);
/* "/model/<id, percent-encoded>/converse" or "/converse-stream". */
void sl_ap_bedrock_path(sl_ap_buf_t *out, sl_str_t model, int stream);
/* upstream_url's path ending in /converse: the /converse-stream twin. */
void sl_ap_bedrock_stream_path(sl_ap_buf_t *out, sl_str_t path);

/* ---------------------------------------------------- bedrock_stream.c */

/* application/vnd.amazon.eventstream: one message is
 *   total length (u32 BE) | headers length (u32 BE) | prelude CRC32 |
 *   headers | payload | message CRC32 (over everything before it).
 * A header: name length (u8), name, type (u8), value (type-dependent). */
typedef struct sl_ap_evmsg {
    sl_str_t event_type;     /* :event-type */
    sl_str_t message_type;   /* :message-type ("event", "exception", "error") */
    sl_str_t exception_type; /* :exception-type */
    sl_str_t error_code;     /* :error-code */
    sl_str_t error_message;  /* :error-message */
    sl_str_t content_type;   /* :content-type */
    sl_str_t payload;
} sl_ap_evmsg_t;

typedef int (*sl_ap_ev_fn)(void *ud, const sl_ap_evmsg_t *m);

#define SL_AP_EV_BAD -4 /* CRC mismatch, impossible lengths, bad header */

typedef struct sl_ap_evs {
    sl_ap_buf_t buf; /* an incomplete message */
    size_t max;      /* largest message (0 = 16 MiB) */
    int broken;      /* sticky: a frame failed its checks */
    const char *err; /* what failed */
} sl_ap_evs_t;

/* Feed bytes; complete messages are checked and passed to fn.  Returns fn's
 * first non-zero result, SL_AP_EV_BAD (then nothing more is parsed), -2 on
 * OOM, 0 otherwise. */
int sl_ap_evs_feed(sl_ap_evs_t *s, const char *p, size_t n, sl_ap_ev_fn fn, void *ud);
/* Decode one whole message (p, n exactly its bytes). 0 or SL_AP_EV_BAD. */
int sl_ap_evs_decode(const unsigned char *p, size_t n, sl_ap_evmsg_t *m, const char **err);
void sl_ap_evs_free(sl_ap_evs_t *s);
/* Encode one message with string headers (tests, the mock's twin). */
void sl_ap_evs_encode(sl_ap_buf_t *out, const char *const *hdrs, size_t nhdrs, const char *payload,
                      size_t plen);

typedef struct sl_ap_bstream {
    sl_ap_evs_t evs;
    sl_jdoc_t doc;
    sl_ap_emit_t em;
    sl_ap_usage_t usage;
    char stop[32];
    int stopped;   /* messageStop arrived */
    int bad_frame; /* a frame failed its checks */
    int in_tool;   /* the open block is a tool (its deltas are input JSON) */
} sl_ap_bstream_t;

void sl_ap_bstream_init(sl_ap_bstream_t *s, sl_str_t model, int64_t input_estimate);
void sl_ap_bstream_free(sl_ap_bstream_t *s);
int sl_ap_bstream_feed(sl_ap_bstream_t *s, const char *p, size_t n, int eof, int truncated,
                       sl_ap_buf_t *out);
void sl_ap_bstream_keepalive(sl_ap_bstream_t *s, sl_ap_buf_t *out);

/* ------------------------------------------------------ native_openai.c */

/* An OpenAI chat client of a codec with an Anthropic client side
 * (from_anthropic, anthropic_json, astream_*): OpenAI -> Anthropic (the
 * anthropic provider's codec) -> the provider, and back the same way. */
int sl_ap_via_request(const sl_ap_codec_t *k, const sl_ap_target_t *t, const char *body, size_t len,
                      sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_req_info_t *info);
int sl_ap_via_decode_json(const sl_ap_codec_t *k, const sl_ap_target_t *t, const char *body,
                          size_t len, sl_jdoc_t *doc, sl_ap_buf_t *out, sl_ap_usage_t *u);

typedef struct sl_ap_via_stream {
    const sl_ap_codec_t *k;
    void *nat;       /* the codec's astream state */
    void *ac;        /* anthropic_codec.c's stream state */
    sl_ap_buf_t mid; /* Anthropic events of one feed */
    int oom;
} sl_ap_via_stream_t;

void sl_ap_via_stream_init(const sl_ap_codec_t *k, sl_ap_via_stream_t *s, const sl_ap_target_t *t,
                           const sl_ap_req_info_t *info, size_t max_event);
int sl_ap_via_stream_feed(sl_ap_via_stream_t *s, const char *p, size_t n, int eof, sl_ap_buf_t *out,
                          sl_ap_usage_t *u);
void sl_ap_via_stream_free(sl_ap_via_stream_t *s);

/* ------------------------------------------------------------- sigv4.c */

typedef struct sl_ap_sigv4 {
    const char *access_key, *secret_key, *session_token; /* token may be NULL */
    const char *region, *service;                        /* "us-east-1", "bedrock" */
    sl_str_t method, host, path, query; /* host as sent (with :port if any); path as sent */
    sl_str_t content_type;              /* signed when len > 0 */
    sl_str_t body;
    int64_t now; /* seconds since the epoch */
} sl_ap_sigv4_t;

/* Authorization header value and X-Amz-Date ("20250101T000000Z").  0 or -1
 * (libcrypto failure). */
int sl_ap_sigv4_sign(const sl_ap_sigv4_t *in, sl_ap_buf_t *authorization, char amz_date[17]);
/* The canonical URI of a path as sent (each segment encoded once more, as
 * AWS does for every service but S3). */
void sl_ap_sigv4_canonical_uri(sl_ap_buf_t *out, sl_str_t path);

#endif
