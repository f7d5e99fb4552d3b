/* consumers.c - Kong's consumers and keyauth_credentials in the declarative
 * config, and the look-ups the plugin API makes on them.
 *
 * Accepted forms (Kong and decK):
 *   consumers: [{username, custom_id, id, tags,
 *                keyauth_credentials: [{key, id, tags}], plugins: [...]}]
 *   keyauth_credentials: [{key, id, tags, consumer: <username or id>}]
 * username and custom_id are unique, at least one is required; a key is
 * unique across all consumers.  Keys are never written in messages.
 *
 * The key index: open addressing on a SipHash-2-4 tag of the key, keyed
 * with a secret drawn for each configuration generation, and the key itself
 * compared with CRYPTO_memcmp.  Without the secret nobody can tell where a
 * key lands, so neither the probe's length nor its timing says anything
 * about the stored keys, and the comparison that decides is the key's own,
 * in constant time.  One SipHash of a 30-byte key is a fraction of the
 * SHA-256 that was hashed here before. */

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>

#include "conf/config_check.h"

static const char *const consumer_keys[] = {
    "id", "username", "custom_id", "name", "tags", "keyauth_credentials", "plugins", NULL};
static const char *const cred_keys[] = {"id", "key", "tags", "consumer", "ttl", NULL};

static sl_consumer_t *
find(const sl_conf_t *conf, const char *p, size_t n)
{
    for (size_t i = 0; i < conf->nconsumers; i++) {
        sl_consumer_t *c = conf->consumers[i];
        if ((strlen(c->id) == n && strncasecmp(c->id, p, n) == 0) ||
            (c->username && strlen(c->username) == n && memcmp(c->username, p, n) == 0))
            return c;
    }
    return NULL;
}

const sl_consumer_t *
sl_conf_consumer_find(const sl_conf_t *conf, sl_str_t key)
{
    if (conf == NULL || key.len == 0)
        return NULL;
    return find(conf, key.ptr, key.len);
}

sl_consumer_t *
sl_conf_consumer_ref(sl_loader_t *L, json_object *v, const char *p)
{
    const char *key = NULL;
    sl_consumer_t *c;
    char kp[SL_PATH_MAX];

    if (json_object_is_type(v, json_type_string)) {
        key = json_object_get_string(v);
    } else if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, k, x)
        {
            (void)x;
            if (strcmp(k, "username") && strcmp(k, "id")) {
                sl_conf_kpath(kp, p, k);
                sl_conf_err(L, kp, "unknown field");
                return NULL;
            }
        }
        if (sl_conf_get_str(L, v, p, "id", &key) <= 0)
            sl_conf_get_str(L, v, p, "username", &key);
    }
    if (key == NULL) {
        sl_conf_err(L, p, "expected a reference: {username: ...}, {id: ...} or a username");
        return NULL;
    }
    if ((c = find(L->conf, key, strlen(key))) == NULL)
        sl_conf_err(L, p, "consumer '%s' not found", key);
    return c;
}

/* The value of `key` must be unique among consumers: report the first clash. */
static void
unique(sl_loader_t *L, const char *path, const char *field, const char *val, size_t self)
{
    char p[SL_PATH_MAX];

    for (size_t i = 0; i < self; i++) {
        sl_consumer_t *o = L->conf->consumers[i];
        const char *ov = !strcmp(field, "username") ? o->username : o->custom_id;
        if (ov && !strcmp(ov, val)) {
            sl_conf_kpath(p, path, field);
            sl_conf_err(L, p, "duplicate consumer %s '%s' (also %s)", field, val,
                        L->consumer_paths[i]);
            return;
        }
    }
}

/* ---- the key index ---- */

#define TAG_SIZE 8 /* SipHash-2-4's 64-bit output */

/* The generation's SipHash context and its random secret. */
static int
mac_new(sl_conf_t *conf)
{
    size_t size = TAG_SIZE;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_END};
    EVP_MAC *mac;

    if (RAND_bytes(conf->keyauth_secret, sizeof(conf->keyauth_secret)) != 1 ||
        (mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL)) == NULL)
        return -1;
    conf->keyauth_mac = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac);
    if (conf->keyauth_mac == NULL || EVP_MAC_init(conf->keyauth_mac, conf->keyauth_secret,
                                                  sizeof(conf->keyauth_secret), params) != 1)
        return -1;
    return 0;
}

/* The tag of a key.  The secret is set again on every call: re-initialising
 * with a NULL key is not reliable across OpenSSL 3.0 releases. */
static int
key_tag(const sl_conf_t *conf, const char *p, size_t n, uint64_t *tag)
{
    unsigned char out[TAG_SIZE];
    size_t outl = 0;

    if (EVP_MAC_init(conf->keyauth_mac, conf->keyauth_secret, sizeof(conf->keyauth_secret), NULL) !=
            1 ||
        EVP_MAC_update(conf->keyauth_mac, (const unsigned char *)p, n) != 1 ||
        EVP_MAC_final(conf->keyauth_mac, out, &outl, sizeof(out)) != 1 || outl != sizeof(out))
        return -1;
    memcpy(tag, out, sizeof(out));
    return 0;
}

static int
same_key(const sl_credential_t *c, uint64_t tag, const char *p, size_t n)
{
    return c->tag == tag && c->keylen == n && CRYPTO_memcmp(c->key, p, n) == 0;
}

static void
index_put(sl_credential_t **idx, size_t mask, sl_credential_t *cr)
{
    size_t s = (size_t)cr->tag & mask;

    while (idx[s])
        s = (s + 1) & mask;
    idx[s] = cr;
}

/* Room for one more credential at most half full: double and re-place. */
static void
index_grow(sl_conf_t *conf)
{
    size_t size = conf->keyauth_index ? (conf->keyauth_mask + 1) * 2 : 8;
    sl_credential_t **idx;

    if (conf->keyauth_index && (conf->nkeyauth + 1) * 2 <= conf->keyauth_mask + 1)
        return;
    idx = sl_xcalloc(size, sizeof(*idx));
    for (size_t i = 0; i < conf->nkeyauth; i++)
        index_put(idx, size - 1, conf->keyauth[i]);
    free(conf->keyauth_index);
    conf->keyauth_index = idx;
    conf->keyauth_mask = size - 1;
}

/* The credential holding this key (tag already computed); NULL if none. */
static sl_credential_t *
index_find(const sl_conf_t *conf, uint64_t tag, const char *p, size_t n)
{
    for (size_t s = (size_t)tag & conf->keyauth_mask; conf->keyauth_index[s];
         s = (s + 1) & conf->keyauth_mask)
        if (same_key(conf->keyauth_index[s], tag, p, n))
            return conf->keyauth_index[s];
    return NULL;
}

static void
credential_free(sl_credential_t *cr)
{
    if (cr->key) {
        OPENSSL_cleanse(cr->key, cr->keylen);
        free(cr->key);
    }
    free(cr);
}

static void
add_credential(sl_loader_t *L, json_object *o, const char *path, sl_consumer_t *c)
{
    sl_conf_t *conf = L->conf;
    sl_credential_t *cr, *dup;
    const char *key = NULL;
    json_object *v;
    char p[SL_PATH_MAX], idkey[128];
    size_t keylen;
    int r;

    sl_conf_get_strs(L, o, path, "tags", &v);
    r = sl_conf_get_str(L, o, path, "key", &key);
    sl_conf_kpath(p, path, "key");
    if (r == 0) {
        sl_conf_err(L, p, "required field missing");
        return;
    }
    if (r < 0)
        return;
    if (*key == '\0') {
        sl_conf_err(L, p, "length must be at least 1");
        return;
    }
    if ((v = sl_conf_field(o, "ttl")) != NULL) {
        sl_conf_kpath(p, path, "ttl");
        sl_conf_err(L, p, "ttl is not supported by sluice (declarative keys do not expire)");
    }
    if (conf->keyauth_mac == NULL && mac_new(conf) != 0) {
        sl_conf_err(L, p, "cannot key the credential index (OpenSSL's SipHash or random bytes)");
        return;
    }
    keylen = strlen(key);
    cr = sl_xcalloc(1, sizeof(*cr));
    cr->consumer = c;
    cr->key = sl_strndup(key, keylen);
    cr->keylen = keylen;
    if (key_tag(conf, key, keylen, &cr->tag) != 0) {
        sl_conf_err(L, p, "cannot hash the key (OpenSSL's SipHash failed)");
        credential_free(cr);
        return;
    }
    index_grow(conf);
    if ((dup = index_find(conf, cr->tag, key, keylen)) != NULL) {
        size_t i = 0;
        while (conf->keyauth[i] != dup)
            i++;
        sl_conf_err(L, p, "duplicate key: the same key is given at %s", L->cred_paths[i]);
    }
    /* a generated id must not reveal the key: name it by consumer and place */
    snprintf(idkey, sizeof(idkey), "%s|%zu", c->id, conf->nkeyauth);
    sl_conf_entity_id(L, o, path, "keyauth_credential", idkey, cr->id);
    for (size_t i = 0; i < conf->nkeyauth; i++) {
        if (!strcmp(conf->keyauth[i]->id, cr->id) && sl_conf_field(o, "id")) {
            sl_conf_kpath(p, path, "id");
            sl_conf_err(L, p, "duplicate keyauth_credential id '%s' (also %s)", cr->id,
                        L->cred_paths[i]);
            break;
        }
    }
    conf->keyauth = sl_xrealloc(conf->keyauth, (conf->nkeyauth + 1) * sizeof(cr));
    L->cred_paths = sl_xrealloc(L->cred_paths, (conf->nkeyauth + 1) * sizeof(char *));
    L->cred_paths[conf->nkeyauth] = sl_strndup(path, strlen(path));
    conf->keyauth[conf->nkeyauth++] = cr;
    if (dup == NULL) /* a duplicate fails the load: the first one stays found */
        index_put(conf->keyauth_index, conf->keyauth_mask, cr);
}

void
sl_conf_load_keyauth(sl_loader_t *L, json_object *o, const char *path)
{
    json_object *v;
    sl_consumer_t *c;
    char p[SL_PATH_MAX];

    if (sl_conf_check_record(L, o, path, cred_keys) < 0)
        return;
    sl_conf_kpath(p, path, "consumer");
    if ((v = sl_conf_field(o, "consumer")) == NULL) {
        sl_conf_err(L, p, "required field missing");
        return;
    }
    if ((c = sl_conf_consumer_ref(L, v, p)) != NULL)
        add_credential(L, o, path, c);
}

void
sl_conf_load_consumer(sl_loader_t *L, json_object *o, const char *path)
{
    sl_conf_t *conf = L->conf;
    sl_consumer_t *c;
    const char *u = NULL, *cid = NULL;
    json_object *v;
    char p[SL_PATH_MAX];

    if (sl_conf_check_record(L, o, path, consumer_keys) < 0)
        return;
    sl_conf_get_str(L, o, path, "username", &u);
    sl_conf_get_str(L, o, path, "custom_id", &cid);
    if (cid == NULL)
        sl_conf_get_str(L, o, path, "name", &cid);
    sl_conf_get_strs(L, o, path, "tags", &v);
    if ((u == NULL || *u == '\0') && (cid == NULL || *cid == '\0'))
        sl_conf_err(L, path,
                    "at least one of these fields must be non-empty: 'custom_id', 'username'");
    c = sl_xcalloc(1, sizeof(*c));
    if (u && *u)
        c->username = sl_strndup(u, strlen(u));
    if (cid && *cid)
        c->custom_id = sl_strndup(cid, strlen(cid));
    sl_conf_entity_id(L, o, path, "consumer", u ? u : cid ? cid : path, c->id);
    conf->consumers = sl_xrealloc(conf->consumers, (conf->nconsumers + 1) * sizeof(c));
    L->consumer_paths = sl_xrealloc(L->consumer_paths, (conf->nconsumers + 1) * sizeof(char *));
    L->consumer_paths[conf->nconsumers] = sl_strndup(path, strlen(path));
    conf->consumers[conf->nconsumers++] = c;
    if (c->username)
        unique(L, path, "username", c->username, conf->nconsumers - 1);
    if (c->custom_id)
        unique(L, path, "custom_id", c->custom_id, conf->nconsumers - 1);
    for (size_t i = 0; i + 1 < conf->nconsumers; i++) {
        if (!strcmp(conf->consumers[i]->id, c->id) && sl_conf_field(o, "id")) {
            sl_conf_kpath(p, path, "id");
            sl_conf_err(L, p, "duplicate consumer id '%s' (also %s)", c->id, L->consumer_paths[i]);
        }
    }

    /* the entity as Kong logs it: the given fields, nested lists left out */
    c->entity = json_object_new_object();
    json_object_object_add(c->entity, "id", json_object_new_string(c->id));
    if (c->username)
        json_object_object_add(c->entity, "username", json_object_new_string(c->username));
    if (c->custom_id)
        json_object_object_add(c->entity, "custom_id", json_object_new_string(c->custom_id));
    if ((v = sl_conf_field(o, "tags")) != NULL)
        json_object_object_add(c->entity, "tags", json_object_get(v));
    {
        const char *t = json_object_to_json_string_ext(
            c->entity, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        c->entity_json = sl_strndup(t, strlen(t));
    }

    if ((v = sl_conf_field(o, "keyauth_credentials")) != NULL) {
        sl_conf_kpath(p, path, "keyauth_credentials");
        if (!json_object_is_type(v, json_type_array)) {
            sl_conf_err(L, p, "expected an array");
        } else {
            static const char *const nested_keys[] = {"id", "key", "tags", "ttl", NULL};
            for (size_t i = 0; i < json_object_array_length(v); i++) {
                json_object *e = json_object_array_get_idx(v, i);
                char ep[SL_PATH_MAX];
                sl_conf_pathf(ep, "%s[%zu]", p, i);
                if (sl_conf_check_record(L, e, ep, nested_keys) == 0)
                    add_credential(L, e, ep, c);
            }
        }
    }
    if ((v = sl_conf_field(o, "plugins")) != NULL)
        sl_conf_pending_add(L, v, path, NULL, NULL, c, 0);
}

const sl_credential_t *
sl_conf_keyauth_find(const sl_conf_t *conf, sl_str_t key)
{
    uint64_t tag;

    if (conf == NULL || conf->keyauth_index == NULL || key.len == 0 ||
        key_tag(conf, key.ptr, key.len, &tag) != 0)
        return NULL;
    return index_find(conf, tag, key.ptr, key.len);
}

void
sl_conf_consumers_free(sl_conf_t *conf)
{
    for (size_t i = 0; i < conf->nconsumers; i++) {
        sl_consumer_t *c = conf->consumers[i];
        if (c->chains)
            for (size_t k = 0; k < conf->nroutes; k++)
                free(c->chains[k].items);
        free(c->chains);
        free(c->username);
        free(c->custom_id);
        free(c->entity_json);
        json_object_put(c->entity);
        free(c);
    }
    for (size_t i = 0; i < conf->nkeyauth; i++)
        credential_free(conf->keyauth[i]);
    free(conf->keyauth);
    free(conf->keyauth_index);
    EVP_MAC_CTX_free(conf->keyauth_mac);
    OPENSSL_cleanse(conf->keyauth_secret, sizeof(conf->keyauth_secret));
    free(conf->consumers);
}
