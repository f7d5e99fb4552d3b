/* errors.h - a list of human-readable error messages, as produced by the
 * config loader, the plugin loader and plugins' config_parse.  Each message
 * already carries "file:line: path: what" when known. */

#ifndef SL_ERRORS_H
#define SL_ERRORS_H

#include <stddef.h>

typedef struct sl_errors {
    char **msgs;
    size_t n;
} sl_errors_t;

void sl_errors_add(sl_errors_t *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_errors_free(sl_errors_t *e);

#endif
