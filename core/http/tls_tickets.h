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

#include <openssl/evp.h>
#include <openssl/ssl.h>

/* Master, once, before forking: the shared ticket keys and the cipher the
 * callback uses.  0 or -1. */
int sl_stls_keys_init(void);
/* Master, from its loop: rotate when `period_s` has passed. */
void sl_stls_keys_tick(unsigned period_s);
/* For SSL_CTX_set_tlsext_ticket_key_evp_cb: seal a new ticket with the
 * current key (enc = 1), or find the key of a ticket a client offers
 * (enc = 0).  Returns as OpenSSL expects: -1 error, 0 unknown key (full
 * handshake), 1 resumed, 2 resumed and renew the ticket. */
int sl_stls_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx,
                      EVP_MAC_CTX *hctx, int enc);

#endif
