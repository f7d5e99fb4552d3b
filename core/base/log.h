/* log.h - the error log (stderr): levels, process tag, request id. */

#ifndef SL_LOG_H
#define SL_LOG_H

#include "base/common.h"

extern int sl_log_level; /* minimum level written (SL_LOG_*) */

/* "master" or "worker N": set once after fork. */
void sl_log_set_process(const char *role, int worker_id);
int sl_log_parse_level(const char *s); /* -1 if unknown */

void sl_log(sl_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_logv(sl_log_level_t level, const char *tag, const char *fmt, va_list ap);

#define sl_log_debug(...)                                                                          \
    do {                                                                                           \
        if (sl_log_level <= SL_LOG_DEBUG)                                                          \
            sl_log(SL_LOG_DEBUG, __VA_ARGS__);                                                     \
    } while (0)
#define sl_log_info(...) sl_log(SL_LOG_INFO, __VA_ARGS__)
#define sl_log_warn(...) sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_log_error(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)

#endif
