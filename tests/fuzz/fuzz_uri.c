/* fuzz_uri.c - libFuzzer harness for the router's path normalisation
 * (base/uri.c).  Oracle: a normalised path never contains "/../", "/./" or
 * "//" nor ends in "/." or "/..", never grows, and normalising it again
 * gives it back unchanged (matching is stable); Kong's escape() of it
 * decodes back to it. */

#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/uri.h"

static int
ends_with(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return n >= l && memcmp(s + n - l, lit, l) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *p = malloc(size + 2), *q, *e;
    ssize_t n, m;

    /* request paths start with '/' (anything else is refused earlier) */
    p[0] = '/';
    memcpy(p + 1, data, size);
    n = sl_uri_normalize(p, size + 1);
    if (n < 0) {
        free(p);
        return 0;
    }
    assert((size_t)n <= size + 1);
    assert(n > 0 && p[0] == '/');
    assert(!memmem(p, (size_t)n, "/../", 4) && !memmem(p, (size_t)n, "/./", 3));
    assert(!memmem(p, (size_t)n, "//", 2));
    assert(!ends_with(p, (size_t)n, "/.") && !ends_with(p, (size_t)n, "/.."));
    q = malloc((size_t)n + 1);
    memcpy(q, p, (size_t)n);
    m = sl_uri_normalize(q, (size_t)n);
    assert(m == n && memcmp(p, q, (size_t)n) == 0);
    /* what goes upstream normalises to what was matched */
    e = malloc(sl_uri_escaped_len(p, (size_t)n) + 1);
    m = (ssize_t)sl_uri_escape(e, p, (size_t)n);
    m = sl_uri_normalize(e, (size_t)m);
    assert(m == n && memcmp(p, e, (size_t)n) == 0);
    free(e);
    free(q);
    free(p);
    return 0;
}
