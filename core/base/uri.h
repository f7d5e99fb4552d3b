/* uri.h - the request path as Kong's router sees it: percent-decoding of
 * everything but reserved characters, dot-segment removal, merged slashes
 * (kong/tools/uri.lua normalize(uri, true)); and Kong's escape() for the
 * path forwarded upstream. */

#ifndef SL_URI_H
#define SL_URI_H

#include <sys/types.h>

#include "base/common.h"

/* Normalise the path s[0..len) in place (the result is never longer).
 *   1. every %XX is decoded, except reserved characters
 *      (!*'();:@&=+$,/?%#[]), which stay encoded with upper-case hex;
 *   2. dot segments are removed (RFC 3986 5.2.4, Kong's loop);
 *   3. runs of '/' become one.
 * Returns the new length, or -1 for a path sluice refuses (400): a '%'
 * not followed by two hex digits, or a NUL (raw or %00).  The result
 * never contains "/./", "/../" or "//", and normalising it again gives
 * it back unchanged. */
ssize_t sl_uri_normalize(char *s, size_t len);

/* Kong's escape(): bytes outside  A-Z a-z 0-9 -_.~ !#$&'()*+,/:;=?@[] %
 * become %XX.  out needs sl_uri_escaped_len(in, len) bytes (<= 3*len).
 * Returns the bytes written. */
size_t sl_uri_escape(char *out, const char *in, size_t len);
size_t sl_uri_escaped_len(const char *in, size_t len);

#endif
