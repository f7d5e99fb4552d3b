/* decimal.h - integers in decimal without printf, for the quota plugins'
 * counter keys and header values (rate-limiting,
 * ai-rate-limiting-advanced): written on every request, where snprintf
 * was a good part of their cost. */

#ifndef SL_DECIMAL_H
#define SL_DECIMAL_H

#include <stddef.h>
#include <stdint.h>

#define SL_DEC_MAX 20 /* "-9223372036854775808" */

/* v in decimal at out, as printf's "%lld" writes it, without a NUL: out
 * has room for SL_DEC_MAX bytes.  Returns the length. */
size_t sl_dec(char *out, int64_t v);

#endif
