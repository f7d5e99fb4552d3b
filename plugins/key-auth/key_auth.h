/* key_auth.h - internals shared by the key-auth plugin's files (not
 * installed).
 *
 * key_auth.c       the descriptor and the access/body phases (Kong's
 *                  handler.lua: find the key, authenticate, set headers)
 * key_auth_conf.c  the config schema (Kong's schema.lua) and its checks
 * ka_headers.c     the consumer headers forwarded upstream, prepared once
 *                  per credential per worker
 */

#ifndef SL_KEY_AUTH_H
#define SL_KEY_AUTH_H

#include <sluice/plugin.h>

/* One instance's configuration, filled by api->conf_schema_parse. */
typedef struct ka_conf {
    sl_conf_array_t key_names; /* char *, header-name charset */
    int hide_credentials;
    char *anonymous; /* consumer id or username, NULL if not set */
    int key_in_header;
    int key_in_query;
    int key_in_body;
    int run_on_preflight;
    char *realm;    /* NULL if not set */
    char *www_auth; /* derived: Key realm="<realm>" or Key */
    size_t www_auth_len;
    sl_str_t *folded; /* derived: key_names with 0x20 set in every byte (key_auth.c) */
    /* per worker (each has its own copy of the conf): the anonymous
     * consumer once found, so a failure does not scan the consumers */
    const sl_consumer_t *anon;
    /* per worker: the consumer headers prepared per credential and for the
     * anonymous consumer (ka_headers.c) */
    struct ka_blocks *blocks;
    sl_header_block_t *anon_block;
} ka_conf_t;

extern const sl_schema_t ka_schema;

int ka_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len,
                  void **conf);
void ka_conf_free(void *conf);

/* Kong's set_consumer headers for `who`, authenticated by `cred` (NULL:
 * as the anonymous consumer): api->req_headers_apply of the credential's
 * prepared block, or req_headers_set where none can be kept.  0 or -1. */
int ka_headers_set(const sl_api_t *api, sl_req_t *r, ka_conf_t *c, const sl_consumer_t *who,
                   const sl_credential_t *cred);
/* Free the prepared blocks (config_free, exit_worker). */
void ka_headers_free(const sl_api_t *api, ka_conf_t *c);

#endif
