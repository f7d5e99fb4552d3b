/* grammar.h - an independent checker of the Anthropic stream grammar (shared
 * by the stream tests). */
#ifndef SL_AP_TEST_GRAMMAR_H
#define SL_AP_TEST_GRAMMAR_H
#include "test_util.h"

static void
cat(char *dst, size_t cap, const char *src)
{
    size_t l = strlen(dst);

    assert_non_null(src);
    assert_true(l + strlen(src) < cap);
    memcpy(dst + l, src, strlen(src) + 1);
}

static const char *
nz(const char *s)
{
    assert_non_null(s);
    return s;
}

typedef struct {
    char summary[1024];
    char type[8][16];
    char content[8][256];
    char id[8][160];
    char name[8][64];
    int nblocks;
    json_object *last_delta;
    json_object *start;
} grammar_t;

static void
check_grammar(const char *p, size_t n, grammar_t *g)
{
    const char *end = p + n;
    int open = -1, started = 0, stopped = 0, errored = 0, deltas = 0;

    memset(g, 0, sizeof(*g));
    while (p < end) {
        const char *nl1 = memchr(p, '\n', (size_t)(end - p));
        const char *nl2, *dat;
        char ev[64];
        json_object *j;
        const char *type;

        assert_non_null(nl1);
        assert_true(strncmp(p, "event: ", 7) == 0);
        snprintf(ev, sizeof(ev), "%.*s", (int)(nl1 - p - 7), p + 7);
        dat = nl1 + 1;
        assert_true(strncmp(dat, "data: ", 6) == 0);
        nl2 = memchr(dat, '\n', (size_t)(end - dat));
        assert_non_null(nl2);
        assert_true(nl2 + 1 < end && nl2[1] == '\n');
        j = tu_parse(dat + 6, (size_t)(nl2 - dat - 6));
        type = tu_str(j, "type");
        assert_non_null(type);
        assert_string_equal(type, ev);    /* event name == data.type */
        assert_false(stopped || errored); /* nothing after the end */
        if (strcmp(ev, "message_start") == 0) {
            assert_false(started);
            started = 1;
            cat(g->summary, sizeof(g->summary), "start");
            g->start = json_object_get(j);
        } else if (strcmp(ev, "ping") == 0) {
            cat(g->summary, sizeof(g->summary), " ping");
        } else if (strcmp(ev, "content_block_start") == 0) {
            assert_true(started);
            assert_int_equal(open, -1);
            assert_int_equal(tu_int(j, "index"), g->nblocks);
            open = g->nblocks++;
            snprintf(g->type[open], 16, "%s", nz(tu_str(j, "content_block.type")));
            if (strcmp(g->type[open], "tool_use") == 0) {
                snprintf(g->id[open], 160, "%s", nz(tu_str(j, "content_block.id")));
                snprintf(g->name[open], 64, "%s", nz(tu_str(j, "content_block.name")));
            }
            cat(g->summary, sizeof(g->summary), " [");
            cat(g->summary, sizeof(g->summary), g->type[open]);
        } else if (strcmp(ev, "content_block_delta") == 0) {
            const char *dt = nz(tu_str(j, "delta.type"));

            assert_int_equal(open, tu_int(j, "index"));
            if (strcmp(dt, "text_delta") == 0) {
                assert_string_equal(g->type[open], "text");
                cat(g->content[open], sizeof(g->content[open]), tu_str(j, "delta.text"));
                cat(g->summary, sizeof(g->summary), " +");
            } else if (strcmp(dt, "thinking_delta") == 0) {
                assert_string_equal(g->type[open], "thinking");
                cat(g->content[open], sizeof(g->content[open]), tu_str(j, "delta.thinking"));
                cat(g->summary, sizeof(g->summary), " +");
            } else if (strcmp(dt, "signature_delta") == 0) {
                assert_string_equal(g->type[open], "thinking");
                assert_non_null(tu_str(j, "delta.signature"));
                cat(g->summary, sizeof(g->summary), " sig");
            } else if (strcmp(dt, "input_json_delta") == 0) {
                assert_string_equal(g->type[open], "tool_use");
                cat(g->content[open], sizeof(g->content[open]), tu_str(j, "delta.partial_json"));
                cat(g->summary, sizeof(g->summary), " +");
            } else {
                fail_msg("unexpected delta %s", dt);
            }
        } else if (strcmp(ev, "content_block_stop") == 0) {
            assert_int_equal(open, tu_int(j, "index"));
            open = -1;
            cat(g->summary, sizeof(g->summary), " ]");
        } else if (strcmp(ev, "message_delta") == 0) {
            char tmp[96];

            assert_int_equal(open, -1);
            deltas++;
            assert_non_null(tu_get(j, "usage.output_tokens"));
            assert_null(json_object_get_string(tu_get(j, "delta.stop_sequence")));
            snprintf(tmp, sizeof(tmp), " delta:%s:%lld/%lld", nz(tu_str(j, "delta.stop_reason")),
                     (long long)tu_int(j, "usage.input_tokens"),
                     (long long)tu_int(j, "usage.output_tokens"));
            cat(g->summary, sizeof(g->summary), tmp);
            if (g->last_delta) {
                json_object_put(g->last_delta);
            }
            g->last_delta = json_object_get(j);
        } else if (strcmp(ev, "message_stop") == 0) {
            assert_true(deltas > 0);
            stopped = 1;
            cat(g->summary, sizeof(g->summary), " stop");
        } else if (strcmp(ev, "error") == 0) {
            char tmp[64];
            errored = 1;
            assert_non_null(tu_str(j, "error.message"));
            snprintf(tmp, sizeof(tmp), " error:%s", nz(tu_str(j, "error.type")));
            cat(g->summary, sizeof(g->summary), tmp);
        } else {
            fail_msg("unexpected event %s", ev);
        }
        json_object_put(j);
        p = nl2 + 2;
    }
    assert_true(stopped || errored);
}

static void
grammar_free(grammar_t *g)
{
    json_object_put(g->last_delta);
    json_object_put(g->start);
}

#endif
