/* log.c - the error log.  One line per message on stderr:
 *   2026/11/25 18:54:01.123 [error] worker 1: message
 * Each line is written with one write() so lines from several processes do
 * not interleave. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"

int sl_log_level = SL_LOG_INFO;

static char sl_log_role[32] = "master";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void
sl_log_set_process(const char *role, int worker_id)
{
    if (worker_id >= 0)
        snprintf(sl_log_role, sizeof(sl_log_role), "%s %d", role, worker_id);
    else
        snprintf(sl_log_role, sizeof(sl_log_role), "%s", role);
}

int
sl_log_parse_level(const char *s)
{
    for (size_t i = 0; i < sl_nelems(level_names); i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return (int)i;
    if (strcasecmp(s, "warning") == 0)
        return SL_LOG_WARN;
    return -1;
}

void
sl_logv(sl_log_level_t level, const char *tag, const char *fmt, va_list ap)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    int n, m;

    if ((int)level < sl_log_level)
        return;
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d/%02d/%02d %02d:%02d:%02d.%03d [%s] %s: %s%s",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(tv.tv_usec / 1000),
                 level_names[level <= SL_LOG_ERROR ? level : SL_LOG_ERROR], sl_log_role,
                 tag ? tag : "", tag ? " " : "");
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    /* A failed or partial write to stderr cannot be reported anywhere. */
    if (write(STDERR_FILENO, line, (size_t)n) < 0)
        return;
}

void
sl_log(sl_log_level_t level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    sl_logv(level, NULL, fmt, ap);
    va_end(ap);
}
