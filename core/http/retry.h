/* retry.h - may a request go again on another upstream connection after
 * the one it went out on failed?  One rule, Go net/http's (docs/upstream.md):
 *
 *   only a connection that came from the keep-alive pool, failed before any
 *   response byte, and whose request can still be sent again whole, and then
 *     - nothing of the request was written, or
 *     - the request is replayable: GET, HEAD, OPTIONS or TRACE, or it carries
 *       an Idempotency-Key / X-Idempotency-Key header.
 *
 * So a POST without a key that may have reached the provider is never sent
 * twice (the client gets a 502 instead of a second, billed request). */

#ifndef SL_RETRY_H
#define SL_RETRY_H

#include "http/headers.h"

typedef struct sl_retry_facts {
    int reused;        /* the connection came from the keep-alive pool */
    int got_bytes;     /* a response byte arrived on it */
    int written;       /* some of the request may have reached the upstream */
    int cannot_replay; /* streamed body bytes went out and were not kept */
} sl_retry_facts_t;

/* 1 = retry on another connection, 0 = fail the request.  When 0, *why
 * (if not NULL) gets a short reason for the log. */
int sl_retry_allowed(sl_str_t method, const sl_headers_t *headers, const sl_retry_facts_t *f,
                     const char **why);

/* GET, HEAD, OPTIONS, TRACE or an idempotency key header (Go's isReplayable). */
int sl_retry_replayable(sl_str_t method, const sl_headers_t *headers);

#endif
