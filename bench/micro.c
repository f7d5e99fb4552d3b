/* micro.c - micro-benchmark of the per-request and per-chunk work in sluice:
 * the HTTP/1.1 parser (llhttp, as the core uses it), the router, the
 * ai-proxy JSON scanner and translators, and the SSE stream translator.
 *
 * Each case runs for a fixed time after a warm-up and reports the median of
 * several batches in ns per operation, so a noisy neighbour on a shared
 * machine moves the result less than a plain mean would.  Output is one JSON
 * object (bench/run stores it in results/latest.json):
 *
 *   sl-bench-micro [-r ANTHROPIC_REQUEST.json] [-t SECONDS_PER_CASE]
 *
 * Without -r a synthetic ~50 KB Claude Code-shaped request is built here;
 * bench/run passes a captured one from tests/fixtures/claude-code/.
 */

#include <llhttp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aa.h"
#include "ai_proxy.h"
#include "base/errors.h"
#include "conf/config.h"
#include "conf/router.h"
#include "plugin/host.h"

#define MB_BATCHES 7

static double g_case_seconds = 0.3;
static int g_first = 1;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

typedef int (*mb_fn)(void *ud);

/* Run fn repeatedly; print "name": {"ns": median, "bytes": n}.  A non-zero
 * return from fn aborts the case (reported as an error, not a number). */
static int
mb_case(const char *name, mb_fn fn, void *ud, size_t bytes)
{
    double per[MB_BATCHES];
    uint64_t iters = 1, t0, dt;
    uint64_t budget = (uint64_t)(g_case_seconds * 1e9 / MB_BATCHES);

    /* calibrate: grow the batch until it takes ~1/10 of a batch budget */
    for (;;) {
        t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++)
            if (fn(ud) != 0)
                goto fail;
        dt = now_ns() - t0;
        if (dt > budget / 10 || iters > (1u << 30))
            break;
        iters *= 2;
    }
    iters = (uint64_t)((double)iters * (double)budget / (double)(dt ? dt : 1));
    if (iters < 1)
        iters = 1;
    for (int b = 0; b < MB_BATCHES; b++) {
        t0 = now_ns();
        for (uint64_t i = 0; i < iters; i++)
            if (fn(ud) != 0)
                goto fail;
        per[b] = (double)(now_ns() - t0) / (double)iters;
    }
    qsort(per, MB_BATCHES, sizeof(per[0]), cmp_double);
    printf("%s\n  \"%s\": {\"ns\": %.1f, \"min_ns\": %.1f, \"bytes\": %zu, \"iters\": %llu}",
           g_first ? "" : ",", name, per[MB_BATCHES / 2], per[0], bytes,
           (unsigned long long)iters * MB_BATCHES);
    g_first = 0;
    fflush(stdout);
    return 0;
fail:
    printf("%s\n  \"%s\": {\"error\": \"case failed\"}", g_first ? "" : ",", name);
    g_first = 0;
    return -1;
}

/* ---- inputs -------------------------------------------------------------- */

static char *
read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    char *p;

    if (f == NULL || fstat(fileno(f), &st) != 0) {
        if (f)
            fclose(f);
        return NULL;
    }
    p = malloc((size_t)st.st_size + 1);
    if (p == NULL || fread(p, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        free(p);
        fclose(f);
        return NULL;
    }
    fclose(f);
    p[st.st_size] = '\0';
    *len = (size_t)st.st_size;
    return p;
}

/* A ~50 KB request of Claude Code's shape for running without a fixture. */
static char *
synthetic_request(size_t *len)
{
    sl_ap_buf_t b = {0};

    SL_AP_BUF_LIT(&b, "{\"model\":\"qwen-plus\",\"max_tokens\":32000,\"stream\":true,"
                      "\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code, Anthropic's "
                      "official CLI for Claude.\","
                      "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"");
    for (int i = 0; i < 150; i++)
        SL_AP_BUF_LIT(&b, "You are an interactive CLI tool that helps users with \\\"software "
                          "engineering\\\" tasks.\\n");
    SL_AP_BUF_LIT(&b, "\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"tools\":[");
    for (int t = 0; t < 12; t++) {
        sl_ap_buf_addf(&b, "%s{\"name\":\"Tool%d\",\"description\":\"", t ? "," : "", t);
        for (int i = 0; i < 25; i++)
            SL_AP_BUF_LIT(&b, "Use this tool to read, search or edit files in the workspace. ");
        SL_AP_BUF_LIT(
            &b,
            "\",\"input_schema\":{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
            "\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"file_path\"],"
            "\"properties\":{\"file_path\":{\"type\":\"string\",\"description\":\"The absolute "
            "path\"},"
            "\"offset\":{\"type\":\"number\",\"minimum\":0},\"limit\":{\"type\":\"number\"}}}}");
    }
    SL_AP_BUF_LIT(&b, "],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
                      "\"Read main.c\"}]},"
                      "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"toolu_"
                      "1\",\"name\":\"Tool0\","
                      "\"input\":{\"file_path\":\"/src/"
                      "main.c\"}}]},{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                      "\"tool_use_id\":\"toolu_1\",\"content\":\"");
    for (int i = 0; i < 100; i++)
        SL_AP_BUF_LIT(&b, "     1\\tint main(void) { return 0; }\\n");
    SL_AP_BUF_LIT(&b, "\"}]}],\"metadata\":{\"user_id\":\"user_abc\"}}");
    if (b.oom)
        return NULL;
    *len = b.len;
    return b.ptr;
}

static const char CHAT_RESPONSE[] =
    "{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hello! I am a benchmark "
    "answer from the local upstream.\"},\"finish_reason\":\"stop\",\"index\":0,\"logprobs\":null}],"
    "\"object\":\"chat.completion\",\"usage\":{\"prompt_tokens\":12034,\"completion_tokens\":31,"
    "\"total_tokens\":12065,\"prompt_tokens_details\":{\"cached_tokens\":0}},\"created\":"
    "1735320910,"
    "\"system_fingerprint\":null,\"model\":\"qwen-plus\",\"id\":\"chatcmpl-db13c38b-4291-9f90-9117-"
    "a6be2d823ee5\"}";

static const char STREAM_CHUNK[] =
    "data: {\"choices\":[{\"delta\":{\"content\":\" token\"},\"finish_reason\":null,\"index\":0,"
    "\"logprobs\":null}],\"object\":\"chat.completion.chunk\",\"usage\":null,\"created\":"
    "1735320910,"
    "\"system_fingerprint\":null,\"model\":\"qwen-plus\",\"id\":\"chatcmpl-db13c38b-4291-9f90-9117-"
    "a6be2d823ee5\"}\n\n";

static const char AI_PROXY_CONF[] =
    "{\"route_type\":\"llm/v1/chat\",\"llm_format\":\"anthropic\","
    "\"auth\":{\"header_name\":\"Authorization\",\"header_value\":\"Bearer sk-test\"},"
    "\"model\":{\"provider\":\"dashscope\",\"name\":\"qwen-plus\",\"options\":{\"max_tokens\":8192,"
    "\"temperature\":1.0,\"upstream_url\":\"http://127.0.0.1:8900/compatible-mode/v1/chat/"
    "completions\"}},"
    "\"logging\":{\"log_statistics\":true}}";

static const char ROUTES_YAML[] = "_format_version: \"3.0\"\n"
                                  "services:\n"
                                  "- name: dashscope\n"
                                  "  url: http://127.0.0.1:8900/anything\n"
                                  "  routes:\n"
                                  "  - {name: claude, paths: [/anything]}\n"
                                  "  - {name: r1, paths: [/v1/chat]}\n"
                                  "  - {name: r2, paths: [/v1/embeddings], methods: [POST]}\n"
                                  "  - {name: r3, paths: [\"~/users/\\\\d+$\"]}\n"
                                  "  - {name: r4, hosts: [\"*.example.com\"]}\n";

/* ---- cases ------------------------------------------------------------- */

typedef struct mb_ctx {
    const char *req; /* Anthropic request body */
    size_t req_len;
    char *http; /* full HTTP request: head + body */
    size_t http_len;
    size_t head_len;
    sl_ap_conf_t *conf;
    sl_jdoc_t doc;
    sl_ap_buf_t out;
    sl_ap_req_info_t info;
    sl_ap_usage_t usage;
    sl_ap_stream_t stream;
    int stream_chunks;
    sl_sse_t sse;
    llhttp_t parser;
    llhttp_settings_t settings;
    sl_conf_t *routes;
    sl_aa_conf_t *aa;   /* ai-proxy-advanced, four targets */
    sl_aa_conf_t *aa_h; /* the same with consistent hashing */
    sl_aa_view_t view[4];
    uint64_t seq;
} mb_ctx_t;

static int
noop_data(llhttp_t *p, const char *at, size_t n)
{
    (void)p;
    (void)at;
    (void)n;
    return 0;
}

static int
case_http_head(void *ud)
{
    mb_ctx_t *c = ud;

    llhttp_init(&c->parser, HTTP_REQUEST, &c->settings);
    return llhttp_execute(&c->parser, c->http, c->head_len) == HPE_OK ? 0 : -1;
}

static int
case_http_full(void *ud)
{
    mb_ctx_t *c = ud;

    llhttp_init(&c->parser, HTTP_REQUEST, &c->settings);
    return llhttp_execute(&c->parser, c->http, c->http_len) == HPE_OK ? 0 : -1;
}

static int
case_route(void *ud)
{
    mb_ctx_t *c = ud;
    sl_route_match_t m;

    return sl_router_match(c->routes, SL_STR("POST"), SL_STR("127.0.0.1"),
                           SL_STR("/anything/v1/messages"), &m) == SL_OK
               ? 0
               : -1;
}

static int
case_json_scan(void *ud)
{
    mb_ctx_t *c = ud;

    return sl_json_parse(&c->doc, c->req, c->req_len);
}

static int
case_anthropic_request(void *ud)
{
    mb_ctx_t *c = ud;

    c->out.len = 0;
    return sl_ap_anthropic_request(&c->conf->t, c->req, c->req_len, &c->doc, &c->out, &c->info);
}

static int
case_anthropic_response(void *ud)
{
    mb_ctx_t *c = ud;

    c->out.len = 0;
    memset(&c->usage, 0, sizeof(c->usage));
    return sl_ap_anthropic_response(CHAT_RESPONSE, sizeof(CHAT_RESPONSE) - 1, SL_STR("qwen-plus"),
                                    &c->doc, &c->out, &c->usage);
}

static int
sse_count(void *ud, const char *data, size_t len)
{
    (void)ud;
    (void)data;
    (void)len;
    return 0;
}

static int
case_sse_chunk(void *ud)
{
    mb_ctx_t *c = ud;

    return sl_sse_feed(&c->sse, STREAM_CHUNK, sizeof(STREAM_CHUNK) - 1, 0, sse_count, NULL);
}

static int
case_stream_chunk(void *ud)
{
    mb_ctx_t *c = ud;

    /* a fresh stream every 1000 chunks, as a real answer would end */
    if (c->stream_chunks++ % 1000 == 0) {
        sl_ap_stream_free(&c->stream);
        sl_ap_stream_init(&c->stream, SL_STR("qwen-plus"), 12000);
    }
    c->out.len = 0;
    return sl_ap_stream_feed(&c->stream, STREAM_CHUNK, sizeof(STREAM_CHUNK) - 1, 0, 0, &c->out);
}

/* ai-proxy-advanced: four targets, Claude Code's names as glob aliases
 * (three groups of one plus a shared fallback). */
#define AA_T(name, alias, w)                                                                       \
    "{\"route_type\":\"llm/v1/chat\",\"weight\":" #w ",\"auth\":{\"header_name\":"                 \
    "\"Authorization\",\"header_value\":\"Bearer sk-test\"},\"model\":{\"provider\":"              \
    "\"dashscope\",\"name\":\"" name "\",\"model_alias\":\"" alias "\"}}"
#define AA_CONF(alg)                                                                               \
    "{\"llm_format\":\"anthropic\",\"balancer\":{\"algorithm\":\"" alg "\",\"max_fails\":3},"      \
    "\"targets\":[" AA_T("qwen3-coder-plus", "claude-sonnet-*", 100) "," AA_T(                     \
        "qwen-plus", "claude-sonnet-*",                                                            \
        100) "," AA_T("qwen3-max", "claude-opus-*", 100) "," AA_T("qwen-flash", "claude-haiku-*",  \
                                                                  100) "]}"

/* the routing decision as a request makes it: parse, group, pick */
static int
case_aa_route(void *ud)
{
    mb_ctx_t *c = ud;
    sl_aa_sel_t sel;

    if (sl_aa_select_body(c->aa, c->req, c->req_len, &sel) != 0)
        return -1;
    return sl_aa_pick(c->aa, &c->aa->g[sel.group], c->view, ++c->seq, 0, 0) >= 0 ? 0 : -1;
}

static int
case_aa_pick_rr(void *ud)
{
    mb_ctx_t *c = ud;

    return sl_aa_pick(c->aa, &c->aa->g[c->aa->all_group], c->view, ++c->seq, 0, 0) >= 0 ? 0 : -1;
}

static int
case_aa_pick_hash(void *ud)
{
    mb_ctx_t *c = ud;
    uint32_t h = sl_aa_hash("d1c06623-ffe8-4e37-a6bf-8614dbf93829", 36) + (uint32_t)++c->seq;

    return sl_aa_pick(c->aa_h, &c->aa_h->g[c->aa_h->all_group], c->view, c->seq, h, 0) >= 0 ? 0
                                                                                            : -1;
}

static void
conf_err(void *ud, const char *field, const char *msg)
{
    (void)ud;
    fprintf(stderr, "sl-bench-micro: ai-proxy config: %s: %s\n", field, msg);
}

int
main(int argc, char **argv)
{
    mb_ctx_t c;
    const char *req_file = NULL;
    char *req;
    size_t req_len = 0;
    sl_errors_t errs = {0};
    int opt, rc = 0;
    size_t translated = 0;

    while ((opt = getopt(argc, argv, "r:t:h")) != -1) {
        switch (opt) {
        case 'r':
            req_file = optarg;
            break;
        case 't':
            g_case_seconds = atof(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: sl-bench-micro [-r ANTHROPIC_REQUEST.json] [-t SECONDS_PER_CASE]\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    req = req_file ? read_file(req_file, &req_len) : synthetic_request(&req_len);
    if (req == NULL) {
        fprintf(stderr, "sl-bench-micro: cannot read %s\n", req_file ? req_file : "(synthetic)");
        return 1;
    }
    memset(&c, 0, sizeof(c));
    c.req = req;
    c.req_len = req_len;

    /* the HTTP request as Claude Code sends it */
    c.http = malloc(req_len + 2048);
    if (c.http == NULL)
        return 1;
    c.head_len = (size_t)snprintf(
        c.http, 2048,
        "POST /anything/v1/messages?beta=true HTTP/1.1\r\n"
        "accept: application/json\r\ncontent-type: application/json\r\n"
        "user-agent: claude-cli/2.1.332 (external, sdk-cli)\r\n"
        "x-claude-code-session-id: d1c06623-ffe8-4e37-a6bf-8614dbf93829\r\n"
        "x-stainless-arch: x64\r\nx-stainless-lang: js\r\nx-stainless-os: Linux\r\n"
        "x-stainless-package-version: 0.128.0\r\nx-stainless-retry-count: 0\r\n"
        "x-stainless-runtime: node\r\nx-stainless-runtime-version: v26.12.1\r\n"
        "x-stainless-timeout: 600\r\n"
        "anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14\r\n"
        "anthropic-dangerous-direct-browser-access: true\r\nanthropic-version: 2023-06-01\r\n"
        "x-api-key: sk-ant-PLACEHOLDER\r\nx-app: cli\r\nconnection: keep-alive\r\n"
        "host: 127.0.0.1:8000\r\naccept-encoding: gzip, deflate, br, zstd\r\n"
        "content-length: %zu\r\n\r\n",
        req_len);
    memcpy(c.http + c.head_len, req, req_len);
    c.http_len = c.head_len + req_len;
    llhttp_settings_init(&c.settings);
    c.settings.on_url = noop_data;
    c.settings.on_header_field = noop_data;
    c.settings.on_header_value = noop_data;
    c.settings.on_body = noop_data;

    sl_ap_conf_host(&sl_api);
    if (sl_ap_conf_parse(AI_PROXY_CONF, sizeof(AI_PROXY_CONF) - 1, &c.conf, conf_err, NULL) != 0) {
        fprintf(stderr, "sl-bench-micro: ai-proxy config rejected\n");
        return 1;
    }
    if (sl_aa_conf_parse(AA_CONF("round-robin"), sizeof(AA_CONF("round-robin")) - 1, &c.aa,
                         conf_err, NULL) != 0 ||
        sl_aa_conf_parse(AA_CONF("consistent-hashing"), sizeof(AA_CONF("consistent-hashing")) - 1,
                         &c.aa_h, conf_err, NULL) != 0) {
        fprintf(stderr, "sl-bench-micro: ai-proxy-advanced config rejected\n");
        return 1;
    }
    for (int i = 0; i < 4; i++)
        c.view[i].up = 1;
    c.routes =
        sl_conf_load_buffer("micro.yaml", ROUTES_YAML, sizeof(ROUTES_YAML) - 1, NULL, NULL, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "sl-bench-micro: %s\n", errs.msgs[i]);
    sl_errors_free(&errs);

    printf("{\"request_bytes\": %zu, \"cases\": {", req_len);
    rc |= mb_case("http_parse_head", case_http_head, &c, c.head_len);
    rc |= mb_case("http_parse_request_50k", case_http_full, &c, c.http_len);
    if (c.routes != NULL)
        rc |= mb_case("router_match", case_route, &c, 0);
    rc |= mb_case("json_scan_50k", case_json_scan, &c, req_len);
    rc |= mb_case("anthropic_request_50k", case_anthropic_request, &c, req_len);
    translated = c.out.len;
    rc |= mb_case("ai_proxy_advanced_route_50k", case_aa_route, &c, req_len);
    rc |= mb_case("ai_proxy_advanced_pick_round_robin", case_aa_pick_rr, &c, 0);
    rc |= mb_case("ai_proxy_advanced_pick_consistent_hashing", case_aa_pick_hash, &c, 0);
    rc |= mb_case("anthropic_response", case_anthropic_response, &c, sizeof(CHAT_RESPONSE) - 1);
    rc |= mb_case("sse_parse_chunk", case_sse_chunk, &c, sizeof(STREAM_CHUNK) - 1);
    rc |= mb_case("anthropic_stream_chunk", case_stream_chunk, &c, sizeof(STREAM_CHUNK) - 1);
    printf("\n}, \"translated_bytes\": %zu}\n", translated);

    sl_ap_stream_free(&c.stream);
    sl_sse_free(&c.sse);
    sl_json_free(&c.doc);
    sl_ap_buf_free(&c.out);
    sl_ap_conf_free(c.conf);
    sl_aa_conf_free(c.aa);
    sl_aa_conf_free(c.aa_h);
    if (c.routes != NULL)
        sl_conf_free(c.routes);
    free(c.http);
    free(req);
    return rc ? 1 : 0;
}
