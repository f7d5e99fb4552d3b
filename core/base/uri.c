/* uri.c - request path normalisation and escaping, as Kong's router does
 * (kong/tools/uri.lua normalize(uri, true) and escape()).  See uri.h and
 * docs/hardening.md for the rules and the table of cases. */

#include "base/uri.h"
#include "base/chars.h"

/* RFC 3986 reserved characters (and '%'): kept percent-encoded. */
static const char sl_uri_reserved[] = "!*'();:@&=+$,/?%#[]";

/* Kong's escape() leaves these alone; everything else becomes %XX. */
static int
is_safe(unsigned char ch)
{
    /* alphanumerics and !#$&'()*+,/:;=?@[]-_.~% : a table, as every byte
     * of every upstream path goes through it twice */
    static const unsigned char t[256] = {
        ['a' ... 'z'] = 1, ['A' ... 'Z'] = 1, ['0' ... '9'] = 1, ['!'] = 1, ['#'] = 1, ['$'] = 1,
        ['&'] = 1,         ['\''] = 1,        ['('] = 1,         [')'] = 1, ['*'] = 1, ['+'] = 1,
        [','] = 1,         ['/'] = 1,         [':'] = 1,         [';'] = 1, ['='] = 1, ['?'] = 1,
        ['@'] = 1,         ['['] = 1,         [']'] = 1,         ['-'] = 1, ['_'] = 1, ['.'] = 1,
        ['~'] = 1,         ['%'] = 1,
    };
    return t[ch];
}

static const char sl_hex[] = "0123456789ABCDEF";

/* Step 1: percent-decode every triplet except reserved characters, which
 * stay encoded with upper-case hex.  Never grows.  Returns the new length,
 * or (size_t)-1 for a '%' without two hex digits or a NUL (raw or %00). */
static size_t
decode(char *s, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        int hi, lo, ch;

        if (s[i] == '\0')
            return (size_t)-1; /* llhttp refuses it first; kept consistent */
        if (s[i] != '%') {
            s[o++] = s[i];
            continue;
        }
        if (i + 2 >= len)
            return (size_t)-1;
        hi = sl_hexval((unsigned char)s[i + 1]);
        lo = sl_hexval((unsigned char)s[i + 2]);
        if (hi < 0 || lo < 0)
            return (size_t)-1;
        ch = hi * 16 + lo;
        if (ch == 0)
            return (size_t)-1;
        if (strchr(sl_uri_reserved, ch) != NULL) {
            s[o++] = '%';
            s[o++] = sl_hex[hi];
            s[o++] = sl_hex[lo];
        } else {
            s[o++] = (char)ch;
        }
        i += 2;
    }
    return o;
}

/* Drop the last output segment: every segment but a relative first one
 * starts with '/' and holds no other '/'. */
static size_t
pop_segment(const char *s, size_t o)
{
    while (o > 0 && s[o - 1] != '/')
        o--;
    return o > 0 ? o - 1 : 0;
}

#define REM_IS(lit) (n - i == sizeof(lit) - 1 && memcmp(s + i, lit, sizeof(lit) - 1) == 0)
#define REM_HAS(lit) (n - i >= sizeof(lit) - 1 && memcmp(s + i, lit, sizeof(lit) - 1) == 0)

/* Step 2: Kong's remove-dot-segments loop with merge_slashes, in place:
 * the output never overtakes the input. */
static size_t
remove_dots(char *s, size_t n)
{
    size_t i = 0, o = 0;

    while (i < n) {
        if (REM_IS("/.")) {
            s[n - 1] = '/';
            i = n - 1;
        } else if (REM_IS("/..")) {
            s[n - 1] = '/';
            i = n - 1;
            o = pop_segment(s, o);
        } else if (REM_IS(".") || REM_IS("..")) {
            i = n;
        } else if (REM_HAS("../")) {
            i += 3;
        } else if (REM_HAS("./")) {
            i += 2;
        } else if (REM_HAS("/./")) {
            i += 2;
        } else if (REM_HAS("/../")) {
            i += 3;
            o = pop_segment(s, o);
        } else if (REM_HAS("//")) {
            i += 1;
        } else {
            size_t j = i + 1;
            while (j < n && s[j] != '/')
                j++;
            memmove(s + o, s + i, j - i);
            o += j - i;
            i = j;
        }
    }
    return o;
}

ssize_t
sl_uri_normalize(char *s, size_t len)
{
    size_t n = decode(s, len);

    if (n == (size_t)-1)
        return -1;
    if (n <= 1)
        return (ssize_t)n;
    if (memchr(s, '.', n) == NULL && !memmem(s, n, "//", 2))
        return (ssize_t)n;
    return (ssize_t)remove_dots(s, n);
}

size_t
sl_uri_escape(char *out, const char *in, size_t len)
{
    size_t o = 0;

    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (is_safe(ch)) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = sl_hex[ch >> 4];
            out[o++] = sl_hex[ch & 15];
        }
    }
    return o;
}

size_t
sl_uri_escaped_len(const char *in, size_t len)
{
    size_t n = len;

    for (size_t i = 0; i < len; i++)
        if (!is_safe((unsigned char)in[i]))
            n += 2;
    return n;
}
