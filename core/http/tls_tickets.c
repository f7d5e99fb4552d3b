/* tls_tickets.c - TLS session ticket keys shared by every worker, their
 * rotation, and OpenSSL's ticket callback (tls_tickets.h). */

/* The HMAC_CTX form of the ticket callback (deprecated in OpenSSL 3.0, not
 * removed) lets a handshake copy an HMAC context keyed once per ticket key;
 * the EVP_MAC form must key its context (and look the digest up by name)
 * on every ticket, and libssl fetches the MAC by name for it first. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "base/log.h"
#include "base/time.h"
#include "http/tls_tickets.h"

#define SL_TICKET_SLOTS 3
#define SL_TICKET_IV 16       /* AES-256-CBC's IV */
#define SL_TICKET_IV_BATCH 64 /* IVs drawn from the RNG at a time */

typedef struct sl_ticket_key {
    unsigned char name[16]; /* the key's number (8 bytes, big-endian), then 8 random bytes */
    unsigned char aes[32];
    unsigned char hmac[32];
} sl_ticket_key_t;

/* In a MAP_SHARED mapping: the master writes, workers read.  The master
 * only ever rewrites the slot that is neither current nor previous, then
 * moves `current`: readers never see the key they use change. */
typedef struct sl_ticket_keys {
    _Atomic unsigned current; /* slot index */
    uint64_t rotated_at;      /* CLOCK_MONOTONIC ms (master only) */
    uint64_t made;            /* keys made so far: the next key's number (master only) */
    sl_ticket_key_t slot[SL_TICKET_SLOTS];
} sl_ticket_keys_t;

static sl_ticket_keys_t *ticket_keys;

/* Fetched once, in the master (workers inherit them): EVP_aes_256_cbc()
 * would make every cipher init look AES-256-CBC up by name again. */
static EVP_CIPHER *ticket_aes;
static EVP_MD *ticket_sha256;

/* Per process: each slot's HMAC key set up once (inner and outer pads
 * hashed) for the key named `name`; a handshake copies it.  A slot the
 * master has refilled since has another name and is keyed again. */
static struct {
    unsigned char name[16];
    HMAC_CTX *h;
} keyed[SL_TICKET_SLOTS];

/* Random IVs for new tickets, drawn SL_TICKET_IV_BATCH at a time: one RNG
 * call (and its fork check, a getpid system call) per 64 tickets instead
 * of one per ticket.  Each IV is used once; a forked child drops what its
 * parent drew (iv_pool_drop), so two processes never share one. */
static struct {
    unsigned char buf[SL_TICKET_IV * SL_TICKET_IV_BATCH];
    size_t used;
} iv_pool = {.used = SL_TICKET_IV * SL_TICKET_IV_BATCH};

static void
iv_pool_drop(void)
{
    OPENSSL_cleanse(iv_pool.buf, sizeof(iv_pool.buf));
    iv_pool.used = sizeof(iv_pool.buf);
}

static int
iv_next(unsigned char *iv)
{
    if (iv_pool.used == sizeof(iv_pool.buf)) {
        if (RAND_bytes(iv_pool.buf, sizeof(iv_pool.buf)) != 1)
            return -1;
        iv_pool.used = 0;
    }
    memcpy(iv, iv_pool.buf + iv_pool.used, SL_TICKET_IV);
    OPENSSL_cleanse(iv_pool.buf + iv_pool.used, SL_TICKET_IV);
    iv_pool.used += SL_TICKET_IV;
    return 0;
}

static int
key_fill(sl_ticket_key_t *k, uint64_t number)
{
    if (RAND_bytes((unsigned char *)k, sizeof(*k)) != 1)
        return -1;
    for (int i = 0; i < 8; i++)
        k->name[i] = (unsigned char)(number >> (56 - 8 * i));
    return 0;
}

/* The number a key name carries (key_fill). */
static uint64_t
key_number(const unsigned char *name)
{
    uint64_t n = 0;

    for (int i = 0; i < 8; i++)
        n = n << 8 | name[i];
    return n;
}

int
sl_stls_keys_init(void)
{
    if (ticket_keys != NULL)
        return 0;
    if (ticket_aes == NULL) {
        if ((ticket_aes = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL)) == NULL ||
            (ticket_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
            return -1;
        if (pthread_atfork(NULL, NULL, iv_pool_drop) != 0)
            return -1;
    }
    void *m = mmap(NULL, sizeof(sl_ticket_keys_t), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    ticket_keys = m;
    /* slot 0 is current (key 0); slots 1 and 2 are filled at the first two
     * rotations, so no ticket names a key that was never current */
    if (key_fill(&ticket_keys->slot[0], 0) < 0)
        return -1;
    for (unsigned i = 1; i < SL_TICKET_SLOTS; i++)
        if (RAND_bytes((unsigned char *)&ticket_keys->slot[i], sizeof(sl_ticket_key_t)) != 1)
            return -1;
    ticket_keys->made = 1;
    atomic_store(&ticket_keys->current, 0);
    ticket_keys->rotated_at = (uint64_t)sl_mono_ms();
    return 0;
}

void
sl_stls_keys_tick(unsigned period_s)
{
    if (ticket_keys == NULL || period_s == 0 ||
        (uint64_t)sl_mono_ms() - ticket_keys->rotated_at < (uint64_t)period_s * 1000)
        return;
    unsigned cur = atomic_load(&ticket_keys->current);
    unsigned next = (cur + 1) % SL_TICKET_SLOTS; /* the oldest: neither current nor previous */
    if (key_fill(&ticket_keys->slot[next], ticket_keys->made) < 0)
        return;
    atomic_store(&ticket_keys->current, next);
    ticket_keys->rotated_at = (uint64_t)sl_mono_ms();
    sl_log_info("TLS session ticket keys rotated (key %llu is current)",
                (unsigned long long)ticket_keys->made++);
}

/* The keyed HMAC context of slot i, keyed now if its key is new to this
 * process; NULL on error. */
static HMAC_CTX *
keyed_hmac(unsigned i)
{
    const sl_ticket_key_t *k = &ticket_keys->slot[i];

    if (keyed[i].h != NULL && memcmp(keyed[i].name, k->name, 16) == 0)
        return keyed[i].h;
    if (keyed[i].h == NULL && (keyed[i].h = HMAC_CTX_new()) == NULL)
        return NULL;
    if (HMAC_Init_ex(keyed[i].h, k->hmac, sizeof(k->hmac), ticket_sha256, NULL) != 1) {
        memset(keyed[i].name, 0, 16); /* never matches a key: keyed again next time */
        return NULL;
    }
    memcpy(keyed[i].name, k->name, 16);
    return keyed[i].h;
}

/* enc = 1 picks the current key, enc = 0 finds the key named in the
 * ticket among current and previous (2 = renew the ticket under the
 * current key).  A TLS 1.3 resumption always gets a fresh ticket: clients
 * use a TLS 1.3 ticket once (RFC 8446 C.4; OpenSSL's client does), so
 * without one every other connection of a client would be a full
 * handshake; OpenSSL's own ticket keys (nginx's default) renew the same
 * way.  Each decryption is logged at debug level with the key numbers,
 * which tells why a client did not resume. */
static int
ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *ectx, HMAC_CTX *hctx,
          int enc)
{
    const sl_ticket_key_t *k = NULL;
    HMAC_CTX *h;
    unsigned cur, i = 0;
    int renew = 0;

    if (ticket_keys == NULL || ticket_aes == NULL)
        return -1;
    cur = atomic_load(&ticket_keys->current);
    if (enc) {
        k = &ticket_keys->slot[i = cur];
        if (iv_next(iv) < 0)
            return -1;
        memcpy(name, k->name, 16);
        if (EVP_EncryptInit_ex2(ectx, ticket_aes, k->aes, iv, NULL) != 1)
            return -1;
    } else {
        unsigned prev = (cur + SL_TICKET_SLOTS - 1) % SL_TICKET_SLOTS;
        if (memcmp(name, ticket_keys->slot[cur].name, 16) == 0) {
            k = &ticket_keys->slot[i = cur];
        } else if (memcmp(name, ticket_keys->slot[prev].name, 16) == 0) {
            k = &ticket_keys->slot[i = prev];
            renew = 1;
        }
        if (k != NULL && SSL_version(ssl) == TLS1_3_VERSION)
            renew = 1;
        sl_log_debug("TLS session ticket of key %llu, current key %llu: %s",
                     (unsigned long long)key_number(name),
                     (unsigned long long)key_number(ticket_keys->slot[cur].name),
                     k == NULL ? "unknown or retired key, full handshake"
                               : (renew ? "resumed, ticket renewed" : "resumed"));
        if (k == NULL)
            return 0;
        if (EVP_DecryptInit_ex2(ectx, ticket_aes, k->aes, iv, NULL) != 1)
            return -1;
    }
    if ((h = keyed_hmac(i)) == NULL || HMAC_CTX_copy(hctx, h) != 1)
        return -1;
    return enc ? 1 : (renew ? 2 : 1);
}

void
sl_stls_tickets_on(SSL_CTX *ctx)
{
    SSL_CTX_set_tlsext_ticket_key_cb(ctx, ticket_cb);
}
