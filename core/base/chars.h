/* chars.h - character classes shared by the HTTP and URI code: RFC 9110
 * token characters and hex digits. */

#ifndef SL_CHARS_H
#define SL_CHARS_H

#include <string.h>

/* RFC 9110 5.6.2 tchar: what a header name or a method may hold. */
static inline int
sl_is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

/* The value of a hex digit, -1 for anything else. */
static inline int
sl_hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

#endif
