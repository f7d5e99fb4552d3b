/* rl_window.c - Kong's fixed windows, aligned to UTC calendar boundaries,
 * and its counter keys. */

#include <string.h>
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

int64_t
rl_window_end(rl_period_t p, int64_t start_ms)
{
    time_t t = (time_t)(start_ms / 1000);
    struct tm tm;

    if (p != RL_MONTH && p != RL_YEAR)
        return start_ms + rl_period_seconds[p] * 1000;
    gmtime_r(&t, &tm);
    if (p == RL_YEAR)
        tm.tm_year++;
    else
        tm.tm_mon++; /* timegm carries December into the next year */
    return (int64_t)timegm(&tm) * 1000;
}

static const sl_str_t empty_uuid = {RL_EMPTY_UUID, sizeof(RL_EMPTY_UUID) - 1};

/* The pieces end to end at out + o: the new length, or 0 when they would
 * not fit in cap with a NUL after them. */
static size_t
put(char *out, size_t cap, size_t o, const sl_str_t *parts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len >= cap - o)
            return 0;
        if (parts[i].len)
            memcpy(out + o, parts[i].ptr, parts[i].len);
        o += parts[i].len;
    }
    return o;
}

size_t
rl_key_head(char *out, size_t cap, sl_str_t route_id, sl_str_t service_id)
{
    const sl_str_t parts[] = {{"ratelimit:", 10},
                              route_id.len ? route_id : empty_uuid,
                              {":", 1},
                              service_id.len ? service_id : empty_uuid,
                              {":", 1}};

    return put(out, cap, 0, parts, sizeof(parts) / sizeof(parts[0]));
}

size_t
rl_key_tail(char out[RL_KEY_TAIL_MAX], int64_t window_start_ms, rl_period_t p)
{
    size_t n = 0, pl = strlen(rl_period_name[p]);

    out[n++] = ':';
    n += sl_dec(out + n, window_start_ms);
    out[n++] = ':';
    memcpy(out + n, rl_period_name[p], pl);
    return n + pl;
}

int
rl_key(char *buf, size_t cap, sl_str_t route_id, sl_str_t service_id, sl_str_t identifier,
       int64_t window_start_ms, rl_period_t p)
{
    char tail[RL_KEY_TAIL_MAX];
    size_t o = rl_key_head(buf, cap, route_id, service_id);
    const sl_str_t rest[] = {identifier, {tail, rl_key_tail(tail, window_start_ms, p)}};

    if (o == 0 || (o = put(buf, cap, o, rest, 2)) == 0)
        return -1; /* never truncated (room for the NUL too) */
    buf[o] = '\0';
    return (int)o;
}
