/* kong_typedefs.h - checks of Kong's schema typedefs (kong/db/schema/
 * typedefs.lua) for bundled plugins' field tables (sl_field_t.check). */

#ifndef SL_KONG_TYPEDEFS_H
#define SL_KONG_TYPEDEFS_H

#include <stddef.h>

/* typedefs.header_name: [a-zA-Z0-9_-], at least one character.  NULL when
 * fine, else Kong's message. */
const char *sl_kong_header_name(const char *s, size_t n);

#endif
