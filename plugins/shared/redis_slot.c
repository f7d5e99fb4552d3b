/* redis_slot.c - Redis Cluster's key slot (CRC16-XMODEM, as the cluster
 * specification gives it) and the MOVED / ASK redirection text. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redis_slot.h"

/* CRC16-XMODEM (polynomial 0x1021) a nibble at a time. */
static const uint16_t crc_nibble[16] = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50a5, 0x60c6, 0x70e7,
    0x8108, 0x9129, 0xa14a, 0xb16b, 0xc18c, 0xd1ad, 0xe1ce, 0xf1ef,
};

static uint16_t
crc16(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc = (uint16_t)((crc << 4) ^ crc_nibble[((crc >> 12) ^ (p[i] >> 4)) & 0xf]);
        crc = (uint16_t)((crc << 4) ^ crc_nibble[((crc >> 12) ^ p[i]) & 0xf]);
    }
    return crc;
}

unsigned
rl_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);

    if (open != NULL) {
        size_t from = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - from);
        if (close != NULL && close > open + 1)
            return crc16((const unsigned char *)open + 1, (size_t)(close - open - 1)) &
                   (RL_CLUSTER_SLOTS - 1);
    }
    return crc16((const unsigned char *)key, len) & (RL_CLUSTER_SLOTS - 1);
}

static const struct {
    const char *prefix;
    size_t len;
    rl_redirect_kind_t kind;
} redirects[] = {
    {"MOVED ", 6, RL_REDIRECT_MOVED},
    {"ASK ", 4, RL_REDIRECT_ASK},
};

rl_redirect_kind_t
rl_redirect_parse(const char *err, rl_redirect_t *out)
{
    const char *p = NULL, *colon;
    char *end;
    long slot, port;
    size_t hl;

    memset(out, 0, sizeof(*out));
    if (err == NULL)
        return RL_REDIRECT_NONE;
    for (size_t i = 0; i < sizeof(redirects) / sizeof(redirects[0]); i++) {
        if (strncmp(err, redirects[i].prefix, redirects[i].len) == 0) {
            out->kind = redirects[i].kind;
            p = err + redirects[i].len;
            break;
        }
    }
    if (p == NULL || *p < '0' || *p > '9')
        return out->kind = RL_REDIRECT_NONE;
    slot = strtol(p, &end, 10);
    if (*end != ' ' || slot < 0 || slot >= RL_CLUSTER_SLOTS)
        return out->kind = RL_REDIRECT_NONE;
    p = end + 1;
    colon = strrchr(p, ':'); /* an IPv6 address holds colons too */
    if (colon == NULL || colon == p || colon[1] < '0' || colon[1] > '9')
        return out->kind = RL_REDIRECT_NONE;
    port = strtol(colon + 1, &end, 10);
    hl = (size_t)(colon - p);
    if (*end != '\0' || port <= 0 || port > 65535 || hl >= sizeof(out->host))
        return out->kind = RL_REDIRECT_NONE;
    memcpy(out->host, p, hl);
    out->host[hl] = '\0';
    out->slot = (unsigned)slot;
    out->port = (int)port;
    return out->kind;
}
