/* json_escape.h - a string as JSON string content, for the bodies the
 * quota plugins answer with (rate-limiting, ai-rate-limiting-advanced). */

#ifndef SL_JSON_ESCAPE_H
#define SL_JSON_ESCAPE_H

#include <stddef.h>

/* Append s to out[*n..cap) escaped for a JSON string ('"', '\\' and control
 * characters), without the quotes; stops short rather than overflow (cap
 * must leave room: 6 bytes per input byte at most) and keeps out
 * NUL-terminated. */
void sl_json_escape(char *out, size_t cap, size_t *n, const char *s);

#endif
