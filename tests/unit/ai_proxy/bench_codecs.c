/* bench_codecs.c - micro-benchmark of the codecs' OpenAI client side: an
 * OpenAI chat request the size of a Claude Code turn (the captured first
 * turn, tests/fixtures/claude-code/first-turn.body.json, translated to
 * OpenAI once by anthropic_request.c) encoded for gemini and bedrock
 * (through Anthropic, native_openai.c) and cohere (cohere.c), next to the
 * Anthropic client's direct encoders; and a 2,000-chunk streamed answer
 * of each provider decoded into OpenAI chunks.  Best of N (the shared
 * machine's noise only adds): `bench_ai_proxy_codecs [FIXTURE] [N]`. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "native.h"

static double
now_us(void)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static sl_ap_target_t
target(const char *provider, sl_ap_format_t fmt, const char *model)
{
    sl_ap_target_t t;

    memset(&t, 0, sizeof(t));
    t.prov = sl_ap_provider_find(provider);
    t.provider = t.prov->id;
    t.llm_format = fmt;
    t.model_name = (char *)model;
    t.max_tokens = t.top_k = -1;
    t.temperature = t.top_p = -1;
    t.input_cost = t.output_cost = t.cache_read_cost = t.cache_write_cost = -1;
    return t;
}

typedef int (*enc_fn)(const sl_ap_target_t *, const char *, size_t, sl_jdoc_t *, sl_ap_buf_t *,
                      sl_ap_req_info_t *);

static void
bench_req(const char *what, enc_fn fn, const sl_ap_target_t *t, const sl_ap_buf_t *in, int n)
{
    sl_ap_buf_t out = {0};
    sl_jdoc_t d = {0};
    sl_ap_req_info_t info;
    double best = 1e18;

    for (int i = 0; i < n; i++) {
        double t0 = now_us(), dt;

        out.len = 0;
        memset(&info, 0, sizeof(info));
        if (fn(t, in->ptr, in->len, &d, &out, &info) != 0) {
            fprintf(stderr, "%s: failed: %s\n", what, info.errmsg);
            exit(1);
        }
        dt = now_us() - t0;
        best = dt < best ? dt : best;
    }
    printf("%-34s %6zu -> %6zu bytes  best %7.1f us\n", what, in->len, out.len, best);
    sl_json_free(&d);
    sl_ap_buf_free(&out);
}

static void
bench_stream(const char *what, const sl_ap_codec_t *k, const sl_ap_buf_t *in, int n)
{
    sl_ap_buf_t out = {0};
    sl_ap_req_info_t info;
    sl_ap_usage_t u;
    double best = 1e18;

    memset(&info, 0, sizeof(info));
    info.model = (sl_str_t)SL_STR("m");
    info.include_usage = 1;
    for (int i = 0; i < n; i++) {
        void *st = calloc(1, k->stream_size);
        double t0 = now_us(), dt;

        k->stream_init(st, NULL, &info, 0);
        for (size_t off = 0; off < in->len; off += 1400) {
            size_t len = in->len - off < 1400 ? in->len - off : 1400;

            out.len = 0;
            k->stream_feed(st, in->ptr + off, len, off + len == in->len, &out, &u);
        }
        k->stream_free(st);
        free(st);
        dt = now_us() - t0;
        best = dt < best ? dt : best;
    }
    printf("%-34s %6zu bytes, 2000 chunks  best %7.3f us/chunk\n", what, in->len, best / 2000);
    sl_ap_buf_free(&out);
}

int
main(int argc, char **argv)
{
    const char *fx = argc > 1 ? argv[1] : "tests/fixtures/claude-code/first-turn.body.json";
    int n = argc > 2 ? atoi(argv[2]) : 200;
    sl_ap_buf_t an = {0}, oa = {0}, s = {0};
    sl_jdoc_t d = {0};
    sl_ap_req_info_t info;
    sl_ap_target_t t = target("openai", SL_AP_FMT_ANTHROPIC, NULL);
    char chunk[65536];
    size_t got;
    FILE *f = fopen(fx, "rb");

    if (f == NULL) {
        perror(fx);
        return 1;
    }
    while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        sl_ap_buf_add(&an, chunk, got);
    }
    fclose(f);
    /* the same turn as an OpenAI client sends it */
    if (sl_ap_anthropic_request(&t, an.ptr, an.len, &d, &oa, &info) != 0) {
        fprintf(stderr, "fixture: %s\n", info.errmsg);
        return 1;
    }
    {
        sl_ap_target_t g = target("gemini", SL_AP_FMT_ANTHROPIC, NULL);
        sl_ap_target_t b = target("bedrock", SL_AP_FMT_ANTHROPIC, NULL);

        bench_req("anthropic -> gemini (direct)", sl_ap_gemini_request, &g, &an, n);
        bench_req("anthropic -> bedrock (direct)", sl_ap_bedrock_request, &b, &an, n);
        g.llm_format = b.llm_format = SL_AP_FMT_OPENAI;
        bench_req("openai -> gemini (via anthropic)", g.prov->codec->from_openai, &g, &oa, n);
        bench_req("openai -> bedrock (via anthropic)", b.prov->codec->from_openai, &b, &oa, n);
    }
    {
        sl_ap_target_t c = target("cohere", SL_AP_FMT_OPENAI, NULL);

        bench_req("openai -> cohere v2", c.prov->codec->from_openai, &c, &oa, n);
        c.llm_format = SL_AP_FMT_ANTHROPIC;
        bench_req("anthropic -> cohere v2 (pivot)", sl_ap_encode_request, &c, &an, n);
    }

    /* streamed answers, 2,000 text chunks each */
    for (int i = 0; i < 2000; i++) {
        sl_ap_buf_addf(&s,
                       "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"token%d \"}],"
                       "\"role\":\"model\"},\"index\":0%s}],\"usageMetadata\":{"
                       "\"promptTokenCount\":50,\"totalTokenCount\":50},\"modelVersion\":"
                       "\"gemini-2.5-flash\",\"responseId\":\"r1\"}\r\n\r\n",
                       i, i == 1999 ? ",\"finishReason\":\"STOP\"" : "");
    }
    bench_stream("gemini stream -> openai chunks", sl_ap_provider_find("gemini")->codec, &s, n / 4);
    s.len = 0;
    {
        const char *h[] = {":event-type",      "contentBlockDelta", ":content-type",
                           "application/json", ":message-type",     "event"};
        char p[160];

        for (int i = 0; i < 2000; i++) {
            snprintf(p, sizeof(p),
                     "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"token%d \"},\"p\":\"abcdef\"}",
                     i);
            sl_ap_evs_encode(&s, h, 3, p, strlen(p));
        }
        h[1] = "messageStop";
        sl_ap_evs_encode(&s, h, 3, "{\"stopReason\":\"end_turn\"}", 25);
    }
    bench_stream("bedrock stream -> openai chunks", sl_ap_provider_find("bedrock")->codec, &s,
                 n / 4);
    s.len = 0;
    for (int i = 0; i < 2000; i++) {
        sl_ap_buf_addf(&s,
                       "event: content-delta\ndata: {\"type\":\"content-delta\",\"index\":0,"
                       "\"delta\":{\"message\":{\"content\":{\"text\":\"token%d \"}}}}\n\n",
                       i);
    }
    SL_AP_BUF_LIT(&s, "event: message-end\ndata: {\"type\":\"message-end\",\"delta\":{"
                      "\"finish_reason\":\"COMPLETE\",\"usage\":{\"billed_units\":{"
                      "\"input_tokens\":5,\"output_tokens\":2000}}}}\n\n");
    bench_stream("cohere stream -> openai chunks", sl_ap_provider_find("cohere")->codec, &s, n / 4);
    sl_json_free(&d);
    sl_ap_buf_free(&an);
    sl_ap_buf_free(&oa);
    sl_ap_buf_free(&s);
    return 0;
}
