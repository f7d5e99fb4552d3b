/* rl_window.c - Kong's fixed windows, aligned to UTC calendar boundaries,
 * and its counter keys. */

#include <stdio.h>
#include <time.h>

#include "rl.h"

const char *const rl_period_name[RL_NPERIODS] = {"second", "minute", "hour",
                                                 "day",    "month",  "year"};
const char *const rl_period_header[RL_NPERIODS] = {"Second", "Minute", "Hour",
                                                   "Day",    "Month",  "Year"};
/* kong/plugins/rate-limiting/expiration.lua */
const int64_t rl_period_seconds[RL_NPERIODS] = {1, 60, 3600, 86400, 2592000, 31536000};

int64_t
rl_window_start(rl_period_t p, int64_t now_ms)
{
    int64_t s = now_ms / 1000;
    struct tm tm;
    time_t t = (time_t)s;

    switch (p) {
    case RL_SECOND:
        return s * 1000;
    case RL_MINUTE:
        return (s - s % 60) * 1000;
    case RL_HOUR:
        return (s - s % 3600) * 1000;
    case RL_DAY:
        return (s - s % 86400) * 1000;
    case RL_MONTH:
    case RL_YEAR:
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        if (p == RL_YEAR)
            tm.tm_mon = 0;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        return (int64_t)timegm(&tm) * 1000;
    default:
        return 0;
    }
}

int
rl_key(char *buf, size_t cap, sl_str_t route_id, sl_str_t service_id, sl_str_t identifier,
       int64_t window_start_ms, rl_period_t p)
{
    if (route_id.len == 0)
        route_id = (sl_str_t){RL_EMPTY_UUID, sizeof(RL_EMPTY_UUID) - 1};
    if (service_id.len == 0)
        service_id = (sl_str_t){RL_EMPTY_UUID, sizeof(RL_EMPTY_UUID) - 1};
    int n = snprintf(buf, cap, "ratelimit:%.*s:%.*s:%.*s:%lld:%s", (int)route_id.len, route_id.ptr,
                     (int)service_id.len, service_id.ptr, (int)identifier.len, identifier.ptr,
                     (long long)window_start_ms, rl_period_name[p]);
    if (n < 0 || (size_t)n >= cap)
        return -1;
    return n;
}
