/* kong_typedefs.c - Kong's schema typedefs, as sl_field_t checks. */

#include "kong_typedefs.h"

const char *
sl_kong_header_name(const char *s, size_t n)
{
    if (n == 0)
        return "length must be at least 1";
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return "bad header name, allowed characters are A-Z, a-z, 0-9, '_', and '-'";
    }
    return NULL;
}
