/* errors.c - accumulate error messages (config and plugin loading). */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/common.h"
#include "base/errors.h"

void
sl_errors_add(sl_errors_t *e, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    if (msg == NULL)
        abort();
    e->msgs = sl_xrealloc(e->msgs, (e->n + 1) * sizeof(char *));
    e->msgs[e->n++] = msg;
}

void
sl_errors_free(sl_errors_t *e)
{
    for (size_t i = 0; i < e->n; i++)
        free(e->msgs[i]);
    free(e->msgs);
    e->msgs = NULL;
    e->n = 0;
}
