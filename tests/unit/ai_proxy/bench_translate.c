/* bench_translate.c - micro-benchmark of the ai-proxy translators: a
 * Claude Code-sized request (~50 KB: system blocks with cache_control, 12
 * tools with rich JSON Schemas, a tool round trip) and a streamed answer.
 * Run: meson test --benchmark --suite ai_proxy -v  (or run the binary).
 * `bench_ai_proxy FILE [N]` translates the request in FILE (a captured
 * Claude Code body, tests/fixtures/claude-code/) N times instead, for a
 * profile of one request (valgrind --tool=callgrind, perf). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ai_proxy.h"

static double
now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void
build_request(sl_ap_buf_t *b)
{
    int i, t;

    SL_AP_BUF_LIT(b, "{\"model\":\"qwen-plus\",\"max_tokens\":32000,\"stream\":true,"
                     "\"system\":[{\"type\":\"text\",\"text\":\"You are Claude Code, Anthropic's "
                     "official CLI for Claude.\","
                     "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\",\"text\":\"");
    for (i = 0; i < 300; i++) {
        SL_AP_BUF_LIT(b, "You are an interactive CLI tool that helps users with \\\"software "
                         "engineering\\\" tasks.\\n");
    }
    SL_AP_BUF_LIT(b, "\",\"cache_control\":{\"type\":\"ephemeral\"}}],\"tools\":[");
    for (t = 0; t < 12; t++) {
        sl_ap_buf_addf(b, "%s{\"name\":\"Tool%d\",\"description\":\"", t ? "," : "", t);
        for (i = 0; i < 14; i++) {
            SL_AP_BUF_LIT(
                b, "Use this tool when you need to read, search or edit files in the workspace. ");
        }
        SL_AP_BUF_LIT(
            b,
            "\",\"input_schema\":{\"$schema\":\"http://json-schema.org/draft-07/"
            "schema#\",\"type\":\"object\","
            "\"additionalProperties\":false,\"required\":[\"file_path\"],\"properties\":{"
            "\"file_path\":{\"type\":\"string\",\"description\":\"The absolute path to the file\"},"
            "\"offset\":{\"type\":\"number\",\"minimum\":0,\"description\":\"Line to start at\"},"
            "\"limit\":{\"type\":\"number\",\"exclusiveMinimum\":0,\"maximum\":2000},"
            "\"mode\":{\"type\":\"string\",\"enum\":[\"a\",\"b\",\"c\"],\"default\":\"a\"},"
            "\"pattern\":{\"type\":\"string\",\"pattern\":\"^[a-z]+$\"}}}");
        if (t == 11) {
            SL_AP_BUF_LIT(b, ",\"defer_loading\":true");
        }
        SL_AP_BUF_LIT(b, "}");
    }
    SL_AP_BUF_LIT(b,
                  "],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"<"
                  "system-reminder>ctx</system-reminder>\"},"
                  "{\"type\":\"text\",\"text\":\"Read main.c and fix the "
                  "bug\",\"cache_control\":{\"type\":\"ephemeral\"}}]},"
                  "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Reading.\"},"
                  "{\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"Tool0\",\"input\":{\"file_"
                  "path\":\"/src/main.c\"}}]},"
                  "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
                  "\"call_1\",\"content\":\"");
    for (i = 0; i < 60; i++) {
        SL_AP_BUF_LIT(b, "     1\\tint main(void) { return 0; }\\n");
    }
    SL_AP_BUF_LIT(
        b, "\"}]}],\"thinking\":{\"type\":\"adaptive\"},\"metadata\":{\"user_id\":\"user_abc\"}}");
}

static int
read_file(const char *path, sl_ap_buf_t *b)
{
    char chunk[65536];
    size_t n;
    FILE *f = fopen(path, "rb");

    if (f == NULL) {
        perror(path);
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        sl_ap_buf_add(b, chunk, n);
    }
    fclose(f);
    return b->oom ? -1 : 0;
}

int
main(int argc, char **argv)
{
    sl_ap_buf_t req = {0}, out = {0}, stream = {0};
    sl_jdoc_t d = {0};
    sl_ap_req_info_t info;
    sl_ap_target_t conf;
    int i, n = 2000;
    double t0 = 0, per;

    memset(&conf, 0, sizeof(conf));
    conf.llm_format = SL_AP_FMT_ANTHROPIC;
    conf.prov = sl_ap_provider_get(SL_AP_PROV_DASHSCOPE);
    conf.provider = SL_AP_PROV_DASHSCOPE;
    conf.model_name = (char *)"qwen-plus";
    conf.max_tokens = 8192;
    conf.temperature = 1.0;
    conf.top_p = -1;
    conf.top_k = -1;
    if (argc > 1) {
        int warm = 0;

        if (read_file(argv[1], &req) != 0) {
            return 1;
        }
        n = argc > 2 ? atoi(argv[2]) : 1000;
        for (i = 0; i < n; i++) {
            out.len = 0;
            if (sl_ap_anthropic_request(&conf, req.ptr, req.len, &d, &out, &info) != 0) {
                fprintf(stderr, "translation failed: %s\n", info.errmsg);
                return 1;
            }
            warm += (int)info.input_estimate > 0;
        }
        printf("%s: %zu bytes in, %zu bytes out, %d translations\n", argv[1], req.len, out.len,
               warm);
        sl_json_free(&d);
        sl_ap_buf_free(&req);
        sl_ap_buf_free(&out);
        return 0;
    }
    build_request(&req);
    for (i = 0; i < n + 100; i++) {
        if (i == 100) {
            t0 = now_us();
        }
        out.len = 0;
        if (sl_ap_anthropic_request(&conf, req.ptr, req.len, &d, &out, &info) != 0) {
            fprintf(stderr, "translation failed: %s\n", info.errmsg);
            return 1;
        }
    }
    per = (now_us() - t0) / n;
    printf("anthropic_request: %zu bytes in, %zu bytes out: %.1f us/request (%.0f MB/s)\n", req.len,
           out.len, per, (double)req.len / per);

    /* a 2000-chunk streamed answer */
    for (i = 0; i < 2000; i++) {
        sl_ap_buf_addf(
            &stream,
            "data: {\"choices\":[{\"delta\":{\"content\":\"token%d \"},\"finish_reason\":null,"
            "\"index\":0,\"logprobs\":null}],\"object\":\"chat.completion.chunk\",\"usage\":null,"
            "\"created\":1,\"system_fingerprint\":null,\"model\":\"qwen-plus\",\"id\":\"chatcmpl-"
            "1\"}\n\n",
            i);
    }
    SL_AP_BUF_LIT(
        &stream,
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"stop\",\"index\":0}]}\n\ndata: "
        "[DONE]\n\n");
    t0 = now_us();
    for (i = 0; i < 50; i++) {
        sl_ap_stream_t s;
        size_t off;

        sl_ap_stream_init(&s, (sl_str_t)SL_STR("qwen-plus"), 0);
        for (off = 0; off < stream.len; off += 1400) { /* network-sized pieces */
            size_t len = stream.len - off < 1400 ? stream.len - off : 1400;
            out.len = 0;
            sl_ap_stream_feed(&s, stream.ptr + off, len, off + len == stream.len, 0, &out);
        }
        sl_ap_stream_free(&s);
    }
    per = (now_us() - t0) / 50 / 2001;
    printf("anthropic_stream: %.2f us/chunk (%.0f MB/s)\n", per, (double)stream.len / (per * 2001));
    sl_json_free(&d);
    sl_ap_buf_free(&req);
    sl_ap_buf_free(&out);
    sl_ap_buf_free(&stream);
    return 0;
}
