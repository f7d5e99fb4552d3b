/* retry.c - the one rule for sending a request again (retry.h). */

#include "http/retry.h"

#define LIT(s)                                                                                     \
    {                                                                                              \
        (s), sizeof(s) - 1                                                                         \
    }

static const sl_str_t replayable_methods[] = {
    LIT("GET"),
    LIT("HEAD"),
    LIT("OPTIONS"),
    LIT("TRACE"),
};

static const sl_str_t idempotency_headers[] = {
    LIT("idempotency-key"),
    LIT("x-idempotency-key"),
};

int
sl_retry_replayable(sl_str_t method, const sl_headers_t *headers)
{
    for (size_t i = 0; i < sl_nelems(replayable_methods); i++)
        if (sl_str_eq(method, replayable_methods[i]))
            return 1;
    for (size_t i = 0; headers != NULL && i < sl_nelems(idempotency_headers); i++)
        if (sl_headers_get(headers, idempotency_headers[i]) != NULL)
            return 1;
    return 0;
}

int
sl_retry_allowed(sl_str_t method, const sl_headers_t *headers, const sl_retry_facts_t *f,
                 const char **why)
{
    const char *no = NULL;

    if (!f->reused)
        no = "a new connection failed";
    else if (f->got_bytes)
        no = "the upstream had begun to answer";
    else if (f->cannot_replay)
        no = "part of the streamed body is gone";
    else if (f->written && !sl_retry_replayable(method, headers))
        no = "the request may have reached the upstream and is neither idempotent nor carries "
             "an Idempotency-Key";
    if (why != NULL)
        *why = no;
    return no == NULL;
}
