/* ocsp.h - OCSP responses fetched by the gateway for stapling (setting
 * ssl_stapling, nginx's directive): the responder is the certificate's
 * (Authority Information Access) or ssl_stapling_responder, the issuer the
 * certificate after it in its PEM chain.
 *
 *  - A generation's certificates are registered while the master builds
 *    the TLS contexts (sl_ocsp_add), then sl_ocsp_seal maps one shared slot
 *    per certificate, inherited by every worker.
 *  - Every worker ticks; a slot that is due is claimed by the one worker
 *    whose compare-and-swap moves its next-fetch time (the active health
 *    checks' rule), so the node asks the responder once per refresh, not
 *    once per worker.  The fetch runs on that worker's loop (asynchronous
 *    DNS, connect, OpenSSL's HTTP client over memory BIOs), never in a
 *    handshake.
 *  - A response is kept only if it is signed by the issuer (or a responder
 *    it delegated to), says "good" and is within its validity; it is
 *    fetched again after ssl_stapling_refresh, or halfway to its
 *    nextUpdate if that is sooner.  A failure is logged once (until a fetch
 *    succeeds again) and retried later; the previous good response stays
 *    stapled until its nextUpdate, unless the responder now says revoked or
 *    unknown, which unstaples it at once. */

#ifndef SL_OCSP_H
#define SL_OCSP_H

#include <openssl/ssl.h>
#include <uv.h>

#include "base/errors.h"
#include "upstream/dns.h"

typedef struct sl_ocsp sl_ocsp_t;
typedef struct sl_ocsp_fetcher sl_ocsp_fetcher_t;

/* Master, building a generation. */
sl_ocsp_t *sl_ocsp_new(unsigned refresh_s);
/* Register certificate x (whose issuer is looked for in chain) to be
 * fetched from `responder` (NULL: the certificate's own OCSP URL).  A
 * certificate already registered is skipped.  One without an issuer or a
 * responder URL is not stapled: a warning, and 0 as well. */
int sl_ocsp_add(sl_ocsp_t *o, X509 *x, STACK_OF(X509) * chain, const char *responder);
/* Map the shared slots once every certificate is added.  0 or -1 (errs). */
int sl_ocsp_seal(sl_ocsp_t *o, sl_errors_t *errs);
void sl_ocsp_free(sl_ocsp_t *o);

/* Handshake (status callback): staple x's current response on ssl.  1 if
 * stapled, 0 if none is known or valid now. */
int sl_ocsp_staple(const sl_ocsp_t *o, X509 *x, SSL *ssl);

/* Worker: take part in fetching (NULL when o has no certificate). */
sl_ocsp_fetcher_t *sl_ocsp_fetcher_start(uv_loop_t *loop, const sl_ocsp_t *o, sl_dns_t *dns);
/* Stop ticking and abandon fetches in flight (a draining worker). */
void sl_ocsp_fetcher_stop(sl_ocsp_fetcher_t *f);
/* After stop and after the loop ran the closes. */
void sl_ocsp_fetcher_free(sl_ocsp_fetcher_t *f);

#endif
