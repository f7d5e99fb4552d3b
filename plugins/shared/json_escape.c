/* json_escape.c - JSON string escaping for the quota plugins' refusals. */

#include <stdio.h>

#include "json_escape.h"

void
sl_json_escape(char *out, size_t cap, size_t *n, const char *s)
{
    for (; *s && *n + 8 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            *n += (size_t)snprintf(out + *n, cap - *n, "\\%c", ch);
        else if (ch < 0x20)
            *n += (size_t)snprintf(out + *n, cap - *n, "\\u%04x", ch);
        else
            out[(*n)++] = (char)ch;
    }
    if (*n < cap)
        out[*n] = '\0';
}
