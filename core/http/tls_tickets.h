/* tls_tickets.h - TLS session ticket keys shared by every worker, their
 * rotation, and OpenSSL's ticket callback (docs/tls.md, "Session
 * resumption across workers").
 *
 * The keys live in a shared anonymous mapping the master makes before it
 * forks any worker, so a ticket from one worker resumes on any other; the
 * master rotates them every ssl_session_ticket_rotation (default:
 * ssl_session_timeout) and the previous key still decrypts. */

#ifndef SL_TLS_TICKETS_H
#define SL_TLS_TICKETS_H

#include <openssl/ssl.h>

/* Master, once, before forking: the shared ticket keys and the cipher the
 * callback uses.  0 or -1. */
int sl_stls_keys_init(void);
/* Master, from its loop: rotate when `period_s` has passed. */
void sl_stls_keys_tick(unsigned period_s);
/* Session tickets of ctx sealed and opened with the shared keys: a new
 * ticket under the current key; a ticket of the current or previous key
 * resumes (and a TLS 1.3 one, or one of the previous key, is renewed);
 * any other is a full handshake. */
void sl_stls_tickets_on(SSL_CTX *ctx);

#endif
