/* test_hdr_accum.c - the header accumulator (http/hdr_accum.c): a field
 * that comes whole is borrowed from the input, one cut by the end of a
 * read is copied at the settle and completed by the next pieces. */

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "http/hdr_accum.h"

/* The parser's input of one read: pieces lie one after the other in it;
 * after a settle the next read overwrites it. */
typedef struct {
    char buf[128];
    size_t used;
} input_t;

static void
piece(sl_hdr_accum_t *a, input_t *in, const char *text, int value)
{
    size_t n = strlen(text);
    char *at = in->buf + in->used;

    memcpy(at, text, n);
    in->used += n;
    if (value)
        sl_hdr_accum_value(a, at, n);
    else
        sl_hdr_accum_field(a, at, n);
}

/* the read is over: settle, then the buffer is reused for the next */
static void
next_read(sl_hdr_accum_t *a, input_t *in, char fill)
{
    sl_hdr_accum_settle(a);
    memset(in->buf, fill, sizeof(in->buf));
    in->used = 0;
}

static void
expect(sl_hdr_accum_t *a, const char *name, const char *value)
{
    sl_str_t n, v;

    assert_int_equal(sl_hdr_accum_take(a, &n, &v), 1);
    assert_int_equal(n.len, strlen(name));
    assert_memory_equal(n.ptr, name, n.len);
    assert_int_equal(v.len, strlen(value));
    assert_memory_equal(v.ptr, value, v.len);
    assert_true(sl_hdr_accum_empty(a));
}

static void
test_whole_field_borrowed(void **state)
{
    sl_hdr_accum_t a = {0};
    const char in[] = "Host: example.com \t\r\n";
    sl_str_t n, v;

    (void)state;
    assert_true(sl_hdr_accum_empty(&a));
    assert_int_equal(sl_hdr_accum_take(&a, &n, &v), 0);
    sl_hdr_accum_field(&a, in, 4);
    assert_false(sl_hdr_accum_empty(&a));
    sl_hdr_accum_value(&a, in + 6, 13);
    assert_int_equal(sl_hdr_accum_take(&a, &n, &v), 1);
    assert_ptr_equal(n.ptr, in); /* not copied */
    assert_ptr_equal(v.ptr, in + 6);
    assert_int_equal(n.len, 4);
    assert_int_equal(v.len, 11); /* trailing space and tab trimmed */
    assert_null(a.buf);
    sl_hdr_accum_free(&a);
}

static void
test_cut_by_reads(void **state)
{
    sl_hdr_accum_t a = {0};
    input_t in = {{0}, 0};

    (void)state;
    /* the name cut: its first piece copied at the settle */
    piece(&a, &in, "Conte", 0);
    next_read(&a, &in, 'x');
    piece(&a, &in, "nt-Type", 0);
    piece(&a, &in, "text/plain", 1);
    expect(&a, "Content-Type", "text/plain");

    /* the value cut */
    piece(&a, &in, "X-A", 0);
    piece(&a, &in, "one ", 1);
    next_read(&a, &in, 'y');
    piece(&a, &in, "two  ", 1);
    expect(&a, "X-A", "one two");

    /* cut right after the name, then a whole one borrowed again */
    piece(&a, &in, "X-B", 0);
    next_read(&a, &in, 'z');
    piece(&a, &in, "b", 1);
    expect(&a, "X-B", "b");
    piece(&a, &in, "X-C", 0);
    piece(&a, &in, "", 1); /* an empty value */
    expect(&a, "X-C", "");

    /* a settle with nothing borrowed changes nothing */
    sl_hdr_accum_settle(&a);
    assert_true(sl_hdr_accum_empty(&a));
    sl_hdr_accum_free(&a);
    assert_null(a.buf);
}

static void
test_name_without_value(void **state)
{
    sl_hdr_accum_t a = {0};
    input_t in = {{0}, 0};

    (void)state;
    piece(&a, &in, "X-Only", 0);
    expect(&a, "X-Only", "");
    piece(&a, &in, "X-Only", 0);
    next_read(&a, &in, 'w');
    expect(&a, "X-Only", "");
    sl_hdr_accum_free(&a);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_whole_field_borrowed),
        cmocka_unit_test(test_cut_by_reads),
        cmocka_unit_test(test_name_without_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
