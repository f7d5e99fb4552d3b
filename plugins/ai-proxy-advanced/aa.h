/* aa.h - internal interfaces of the ai-proxy-advanced plugin.
 *
 * ai-proxy-advanced is Kong's multi-target ai-proxy: a list of targets (each
 * one provider instance, configured and translated exactly as an ai-proxy
 * config), a balancer choosing one per try, model aliases selecting a group
 * of targets, and a circuit breaker.  The pure parts live here, host-free,
 * unit-tested on their own (tests/unit/ai_proxy_advanced/):
 *   aa_conf.c      Kong's schema, per-target ai-proxy configs, target groups
 *   aa_balancer.c  the algorithms (round-robin, priority, lowest-latency,
 *                  lowest-usage, least-connections, consistent-hashing)
 *                  and the circuit breaker's state machine
 *   aa_select.c    which group a request goes to (alias, name, provider,model,
 *                  Claude Code scenarios)
 * plugin.c wires them to the host (shared memory for the balancer's state)
 * and to ai-proxy's phases for the chosen target.
 */

#ifndef SL_AA_H
#define SL_AA_H

#include <stddef.h>
#include <stdint.h>

#include "../ai-proxy/ai_proxy.h"

typedef enum {
    SL_AA_ALG_ROUND_ROBIN = 0,
    SL_AA_ALG_PRIORITY,
    SL_AA_ALG_LOWEST_LATENCY,
    SL_AA_ALG_LOWEST_USAGE,
    SL_AA_ALG_LEAST_CONNECTIONS,
    SL_AA_ALG_CONSISTENT_HASHING
} sl_aa_alg_t;

/* failover_criteria bits (nginx proxy_next_upstream semantics) */
#define SL_AA_FO_ERROR 0x001u
#define SL_AA_FO_TIMEOUT 0x002u
#define SL_AA_FO_INVALID_HEADER 0x004u
#define SL_AA_FO_HTTP_403 0x008u
#define SL_AA_FO_HTTP_404 0x010u
#define SL_AA_FO_HTTP_429 0x020u
#define SL_AA_FO_HTTP_500 0x040u
#define SL_AA_FO_HTTP_502 0x080u
#define SL_AA_FO_HTTP_503 0x100u
#define SL_AA_FO_HTTP_504 0x200u
#define SL_AA_FO_NON_IDEMPOTENT 0x400u

typedef enum { SL_AA_LAT_TPOT = 0, SL_AA_LAT_E2E } sl_aa_latency_t;
typedef enum {
    SL_AA_TOK_TOTAL = 0,
    SL_AA_TOK_PROMPT,
    SL_AA_TOK_COMPLETION,
    SL_AA_TOK_COST,
    SL_AA_TOK_ACCURACY
} sl_aa_tokens_t;

/* Claude Code scenarios (sluice extension, docs/ai-proxy-advanced.md) */
typedef enum {
    SL_AA_SCEN_IMAGE = 0,
    SL_AA_SCEN_LONG_CONTEXT,
    SL_AA_SCEN_BACKGROUND,
    SL_AA_SCEN_WEB_SEARCH,
    SL_AA_SCEN_THINK,
    SL_AA_SCEN_MAX
} sl_aa_scen_t;

extern const char *const sl_aa_scen_names[SL_AA_SCEN_MAX];

typedef struct sl_aa_target {
    sl_ap_conf_t *ap;  /* this target as an ai-proxy config */
    char *alias;       /* model.model_alias, or NULL */
    char *description; /* or NULL */
    uint32_t weight;   /* 1..65535 */
    char label[160];   /* "dashscope/qwen-plus" (x-kong-llm-model, logs) */
} sl_aa_target_t;

typedef enum {
    SL_AA_GK_ALIAS = 0, /* model_alias, exact */
    SL_AA_GK_GLOB,      /* model_alias with * or ? (sluice extension) */
    SL_AA_GK_NAME,      /* model.name */
    SL_AA_GK_EXPLICIT,  /* "provider,name" */
    SL_AA_GK_ALL        /* every target (a request without a model) */
} sl_aa_gkind_t;

/* A set of targets balanced among themselves: the targets answering one
 * request model (an alias, a name, ...). */
typedef struct sl_aa_group {
    char *key;
    int kind;      /* sl_aa_gkind_t */
    uint16_t *idx; /* target indices, in config order */
    size_t n;
    uint64_t total_w; /* sum of weights */
    uint64_t stride;  /* round-robin: coprime with total_w, ~0.618 of it */
    uint64_t *cum;    /* cumulative weights (n) */
    uint32_t *ring;   /* consistent hashing: sorted point hashes ... */
    uint16_t *ring_t; /* ... and the target (index into idx) of each */
    size_t ring_n;
    int gid; /* position in conf->g (state keys) */
} sl_aa_group_t;

typedef struct sl_aa_balancer {
    int algorithm;                                        /* sl_aa_alg_t */
    int64_t retries;                                      /* further tries after the first */
    unsigned failover;                                    /* SL_AA_FO_* */
    int64_t connect_timeout, read_timeout, write_timeout; /* ms */
    char *hash_on_header;
    int latency_strategy; /* sl_aa_latency_t */
    int tokens_count_strategy;
    int64_t slots;
    int64_t max_fails;    /* 0: breaker off */
    int64_t fail_timeout; /* ms */
} sl_aa_balancer_t;

typedef struct sl_aa_conf {
    sl_aa_target_t *t;
    size_t nt;
    sl_aa_group_t *g;
    size_t ng;
    int all_group; /* index of the SL_AA_GK_ALL group */
    sl_aa_balancer_t bal;
    sl_ap_format_t llm_format;
    int64_t max_request_body_size;
    int scen[SL_AA_SCEN_MAX]; /* group index per scenario, -1 unset */
    int64_t long_context_threshold;
    int any_scenario;
    char *accepted; /* "a, b, c": the names a request may use (400 text) */
    uint64_t id;    /* hash of the config text: shared-state keys */
    void *zone;     /* the host's sl_shm_t (plugin.c) */
} sl_aa_conf_t;

typedef void (*sl_aa_err_fn)(void *ud, const char *field, const char *msg);

/* Parse Kong's ai-proxy-advanced config (JSON text).  Every problem is
 * reported through err with its path ("targets[1].model.provider", "balancer.
 * algorithm"); returns 0, -1 (reported), -2 (no memory). */
int sl_aa_conf_parse(const char *json, size_t len, sl_aa_conf_t **out, sl_aa_err_fn err, void *ud);
void sl_aa_conf_free(sl_aa_conf_t *c);

/* The group whose key is `key` (of one of the kinds in `kinds`, a bit set
 * of 1 << sl_aa_gkind_t), or -1. */
int sl_aa_group_find(const sl_aa_conf_t *c, const char *key, size_t len, unsigned kinds);

/* ------------------------------------------------------------------ balancer */

/* What the balancer knows of one target for one decision (indexed by target
 * index).  plugin.c fills it from shared memory; tests by hand. */
typedef struct sl_aa_view {
    uint8_t up;      /* the breaker lets it take traffic */
    uint8_t tried;   /* already tried by this request */
    double latency;  /* peak EWMA (us, or us per token); 0 = no sample yet */
    double usage;    /* accumulated tokens or cost */
    double inflight; /* requests in flight (node-wide) */
} sl_aa_view_t;

/* Probe share of lowest-latency, per mille: that share of decisions goes to
 * another live target so its latency stays known. */
#define SL_AA_PROBE_PERMILLE 30

/* Pick a target of group g: its index into c->t, or -1 when no target of the
 * group is up.  Targets not yet tried are preferred; a tried one is picked
 * again only when every live target was tried.  seq: a node-wide counter
 * (round-robin position), hash: the consistent-hashing key's hash (callers
 * without a key pass seq), rnd: a random number (probes). */
int sl_aa_pick(const sl_aa_conf_t *c, const sl_aa_group_t *g, const sl_aa_view_t *v, uint64_t seq,
               uint32_t hash, uint32_t rnd);

/* Peak EWMA: a sample above the average replaces it; otherwise it decays
 * towards the sample with a time constant of tau_us. */
double sl_aa_ewma(double avg, int64_t last_us, double sample, int64_t now_us, double tau_us);

uint32_t sl_aa_hash(const char *p, size_t n); /* FNV-1a 32 */

/* ------------------------------------------------------------------- breaker */

typedef struct sl_aa_cb {
    int64_t fails;        /* failures counted (total, not consecutive: Kong) */
    int64_t last_fail_ms; /* when the last one happened */
    int64_t probe_ms;     /* half-open: when a probe was let through, 0 = none */
} sl_aa_cb_t;

typedef enum { SL_AA_CB_CLOSED = 0, SL_AA_CB_OPEN, SL_AA_CB_HALF_OPEN } sl_aa_cb_state_t;

sl_aa_cb_state_t sl_aa_cb_state(const sl_aa_cb_t *s, int64_t now_ms, int64_t max_fails,
                                int64_t fail_timeout_ms);
/* May a request go to the target now?  Half-open lets one probe through
 * (the caller then records it with sl_aa_cb_probe) until it ends or
 * fail_timeout passes. */
int sl_aa_cb_allow(const sl_aa_cb_t *s, int64_t now_ms, int64_t max_fails, int64_t fail_timeout_ms);
void sl_aa_cb_probe(sl_aa_cb_t *s, int64_t now_ms);
void sl_aa_cb_failure(sl_aa_cb_t *s, int64_t now_ms);
/* A success resets the count once fail_timeout has passed since the last
 * failure (Kong 3.13); a half-open probe's success closes the breaker. */
void sl_aa_cb_success(sl_aa_cb_t *s, int64_t now_ms, int64_t max_fails, int64_t fail_timeout_ms);

/* -------------------------------------------------------------------- select */

typedef struct sl_aa_sel {
    int group;        /* chosen group (index into c->g), -1 on error */
    int scenario;     /* sl_aa_scen_t that chose it, -1 none */
    int status;       /* on error */
    char errmsg[512]; /* on error */
    char model[256];  /* the request's model (unescaped), "" none */
} sl_aa_sel_t;

/* Which group answers the request parsed in doc (an Anthropic Messages or
 * OpenAI chat body, root object at token 0).  0, or -1 with status/errmsg
 * (Kong's 400 naming the accepted models). */
int sl_aa_select(const sl_aa_conf_t *c, const sl_jdoc_t *doc, sl_aa_sel_t *sel);
/* The same from the raw body without parsing it, when no scenario is
 * configured: only the first top-level "model" is read (Claude Code and the
 * SDKs send it first, so a 50 KB request costs a few bytes of scanning).
 * 0, -1 as sl_aa_select, or 1: cannot tell cheaply (scenarios configured,
 * escaped keys, malformed JSON): parse and call sl_aa_select. */
int sl_aa_select_body(const sl_aa_conf_t *c, const char *body, size_t len, sl_aa_sel_t *sel);

/* Glob match: '*' any run of bytes, '?' one byte, ASCII case-insensitive. */
int sl_aa_glob(const char *pat, const char *s, size_t n);

#endif
