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

/* Decimal digits of v at the end of a 24-byte buffer, two at a time;
 * returns the start. */
static char *
rl_itoa(char *end, int64_t v)
{
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930"
                                   "31323334353637383940414243444546474849505152535455565758596061"
                                   "62636465666768697071727374757677787980818283848586878889909192"
                                   "93949596979899";
    uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;

    while (u >= 100) {
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--end = pairs[d + 1];
        *--end = pairs[d];
    }
    if (u >= 10) {
        *--end = pairs[u * 2 + 1];
        *--end = pairs[u * 2];
    } else {
        *--end = (char)('0' + u);
    }
    if (v < 0)
        *--end = '-';
    return end;
}

size_t
rl_int(char out[24], int64_t v)
{
    char t[24], *p = rl_itoa(t + sizeof(t), v);
    size_t n = (size_t)(t + sizeof(t) - p);

    memcpy(out, p, n);
    return n;
}

/* Written piece by piece (it was one snprintf: most of what a request's
 * counting cost). */
int
rl_key(char *buf, size_t cap, sl_str_t route_id, sl_str_t service_id, sl_str_t identifier,
       int64_t window_start_ms, rl_period_t p)
{
    char num[24];
    size_t nn = rl_int(num, window_start_ms), pl = strlen(rl_period_name[p]), o = 0;

    if (route_id.len == 0)
        route_id = (sl_str_t){RL_EMPTY_UUID, sizeof(RL_EMPTY_UUID) - 1};
    if (service_id.len == 0)
        service_id = (sl_str_t){RL_EMPTY_UUID, sizeof(RL_EMPTY_UUID) - 1};
    const sl_str_t parts[] = {
        {"ratelimit:", 10}, route_id, {":", 1},  service_id, {":", 1},
        identifier,         {":", 1}, {num, nn}, {":", 1},   {rl_period_name[p], pl}};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        if (parts[i].len >= cap - o)
            return -1; /* never truncated (room for the NUL too) */
        if (parts[i].len)
            memcpy(buf + o, parts[i].ptr, parts[i].len);
        o += parts[i].len;
    }
    buf[o] = '\0';
    return (int)o;
}
