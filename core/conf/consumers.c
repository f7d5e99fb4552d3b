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
 * Consumers are indexed by id, username and custom_id, credentials by key
 * and id (conf/keyed_index.h: a SipHash-2-4 tag under a secret drawn for
 * each configuration generation), so loading n of them and each look-up
 * cost no scan.  Without the secret nobody can tell where a key lands, so
 * neither the probe's length nor its timing says anything about the stored
 * keys, and the comparison that decides is the key's own, in constant
 * time (sl_ct_equal, base/ct.h). */

#include <openssl/crypto.h>
#include <stdlib.h>

#include "base/ct.h"
#include "base/fmt.h"
#include "base/utf8.h"
#include "conf/config_check.h"

static const char *const consumer_keys[] = {
    "id", "username", "custom_id", "name", "tags", "keyauth_credentials", "plugins", NULL};
static const char *const cred_keys[] = {"id", "key", "tags", "consumer", "ttl", NULL};

/* ---- the indexes (conf/keyed_index.h), one hash per generation ---- */

/* The tag of a name at load (the entity at `path`, its `field`): the
 * generation's hash is set up on first use. */
static int
load_tag(sl_loader_t *L, const char *path, const char *field, const char *p, size_t n,
         uint64_t *tag)
{
    char kp[SL_PATH_MAX];

    if (sl_khash_init(&L->conf->khash) == 0 && sl_khash(&L->conf->khash, p, n, tag) == 0)
        return 0;
    sl_conf_kpath(kp, path, field);
    sl_conf_err(L, kp, "cannot index it (libsodium failed to start)");
    return -1;
}

/* Entity ids are kept in lowercase; an id asked for in any case is looked
 * up in lowercase.  Returns 0 when p cannot be an id. */
static int
id_lower(const char *p, size_t n, char out[36])
{
    if (n != 36)
        return 0;
    for (size_t i = 0; i < 36; i++)
        out[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] | 0x20 : p[i]);
    return 1;
}

/* The consumer with this id (lowercase, 36 bytes) under its tag. */
static sl_consumer_t *
id_lookup(const sl_conf_t *conf, uint64_t tag, const char *id)
{
    size_t cur = SL_KINDEX_START;
    sl_consumer_t *c;

    while ((c = sl_kindex_next(&conf->consumer_ids, tag, &cur)) != NULL)
        if (memcmp(c->id, id, 36) == 0)
            return c;
    return NULL;
}

/* The consumer whose username (custom_id: 0) is the n bytes at p. */
static sl_consumer_t *
name_lookup(const sl_conf_t *conf, int username, uint64_t tag, const char *p, size_t n)
{
    const sl_kindex_t *ix = username ? &conf->consumer_names : &conf->consumer_custom_ids;
    size_t cur = SL_KINDEX_START;
    sl_consumer_t *c;

    while ((c = sl_kindex_next(ix, tag, &cur)) != NULL) {
        const char *v = username ? c->username : c->custom_id;
        if (strlen(v) == n && memcmp(v, p, n) == 0)
            return c;
    }
    return NULL;
}

static sl_consumer_t *
by_id(const sl_conf_t *conf, const char *p, size_t n)
{
    char low[36];
    uint64_t tag;

    if (!id_lower(p, n, low) || sl_khash(&conf->khash, low, sizeof(low), &tag) != 0)
        return NULL;
    return id_lookup(conf, tag, low);
}

static sl_consumer_t *
by_name(const sl_conf_t *conf, int username, const char *p, size_t n)
{
    uint64_t tag;

    if (sl_khash(&conf->khash, p, n, &tag) != 0)
        return NULL;
    return name_lookup(conf, username, tag, p, n);
}

/* Kong's "id or username": an id first, then a username. */
static sl_consumer_t *
find(const sl_conf_t *conf, const char *p, size_t n)
{
    sl_consumer_t *c = by_id(conf, p, n);

    return c ? c : by_name(conf, 1, p, n);
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

/* Index the consumer's username (custom_id: 0), which must be unique among
 * consumers: report a clash, keep the first one found. */
static void
index_name(sl_loader_t *L, const char *path, int username, sl_consumer_t *c)
{
    const char *field = username ? "username" : "custom_id";
    const char *val = username ? c->username : c->custom_id;
    size_t n = strlen(val);
    sl_consumer_t *o;
    uint64_t tag;
    char p[SL_PATH_MAX];

    if (load_tag(L, path, field, val, n, &tag) != 0)
        return;
    if ((o = name_lookup(L->conf, username, tag, val, n)) == NULL) {
        sl_kindex_add(username ? &L->conf->consumer_names : &L->conf->consumer_custom_ids, tag, c);
        return;
    }
    sl_conf_kpath(p, path, field);
    sl_conf_err(L, p, "duplicate consumer %s '%s' (also %s)", field, val,
                L->consumer_paths[o->idx]);
}

/* Index the consumer's id; an id given twice is an error (generated ones
 * may coincide, as before: the first one stays found). */
static void
index_id(sl_loader_t *L, json_object *o, const char *path, sl_consumer_t *c)
{
    sl_consumer_t *other;
    uint64_t tag;
    char p[SL_PATH_MAX];

    if (load_tag(L, path, "id", c->id, 36, &tag) != 0)
        return;
    if ((other = id_lookup(L->conf, tag, c->id)) == NULL) {
        sl_kindex_add(&L->conf->consumer_ids, tag, c);
    } else if (sl_conf_field(o, "id")) {
        sl_conf_kpath(p, path, "id");
        sl_conf_err(L, p, "duplicate consumer id '%s' (also %s)", c->id,
                    L->consumer_paths[other->idx]);
    }
}

/* ---- credentials ---- */

static void
credential_free(sl_credential_t *cr)
{
    if (cr->key) {
        OPENSSL_cleanse(cr->key, cr->keylen);
        free(cr->key);
    }
    free(cr);
}

/* The credential holding this key (tag already computed); NULL if none.
 * The key itself decides, compared in constant time (base/ct.h). */
static sl_credential_t *
key_find(const sl_conf_t *conf, uint64_t tag, const char *p, size_t n)
{
    size_t cur = SL_KINDEX_START;
    sl_credential_t *cr;

    while ((cr = sl_kindex_next(&conf->keyauth_keys, tag, &cur)) != NULL)
        if (cr->keylen == n && sl_ct_equal(cr->key, p, n))
            return cr;
    return NULL;
}

/* The credential whose id is `id` (lowercase, 36 bytes), or NULL. */
static sl_credential_t *
cred_by_id(const sl_conf_t *conf, const char *id, uint64_t tag)
{
    size_t cur = SL_KINDEX_START;
    sl_credential_t *cr;

    while ((cr = sl_kindex_next(&conf->keyauth_ids, tag, &cur)) != NULL)
        if (memcmp(cr->id, id, 36) == 0)
            return cr;
    return NULL;
}

static void
add_credential(sl_loader_t *L, json_object *o, const char *path, sl_consumer_t *c)
{
    sl_conf_t *conf = L->conf;
    sl_credential_t *cr, *dup, *other;
    const char *key = NULL;
    json_object *v;
    char p[SL_PATH_MAX], tp[SL_PATH_MAX], idkey[37 + SL_FMT_DEC_MAX + 1];
    uint64_t tag, idtag;
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
        sl_conf_kpath(tp, path, "ttl");
        sl_conf_err(L, tp, "ttl is not supported by sluice (declarative keys do not expire)");
    }
    keylen = strlen(key);
    if (load_tag(L, path, "key", key, keylen, &tag) != 0)
        return;
    cr = sl_xcalloc(1, sizeof(*cr));
    cr->consumer = c;
    cr->key = sl_strndup(key, keylen);
    cr->keylen = keylen;
    cr->idx = conf->nkeyauth;
    if ((dup = key_find(conf, tag, key, keylen)) != NULL)
        sl_conf_err(L, p, "duplicate key: the same key is given at %s", L->cred_paths[dup->idx]);
    /* a generated id must not reveal the key: name it by consumer and place */
    memcpy(idkey, c->id, 36);
    idkey[36] = '|';
    idkey[37 + sl_fmt_u64(idkey + 37, conf->nkeyauth)] = '\0';
    sl_conf_entity_id(L, o, path, "keyauth_credential", idkey, cr->id);
    if (load_tag(L, path, "id", cr->id, 36, &idtag) == 0) {
        if ((other = cred_by_id(conf, cr->id, idtag)) == NULL) {
            sl_kindex_add(&conf->keyauth_ids, idtag, cr);
        } else if (sl_conf_field(o, "id")) {
            sl_conf_kpath(p, path, "id");
            sl_conf_err(L, p, "duplicate keyauth_credential id '%s' (also %s)", cr->id,
                        L->cred_paths[other->idx]);
        }
    }
    conf->keyauth = sl_xgrow(conf->keyauth, conf->nkeyauth, sizeof(cr));
    L->cred_paths = sl_xgrow(L->cred_paths, conf->nkeyauth, sizeof(char *));
    L->cred_paths[conf->nkeyauth] = sl_strndup(path, strlen(path));
    conf->keyauth[conf->nkeyauth++] = cr;
    if (dup == NULL) /* a duplicate fails the load: the first one stays found */
        sl_kindex_add(&conf->keyauth_keys, tag, cr);
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
    c->idx = conf->nconsumers;
    conf->consumers = sl_xgrow(conf->consumers, conf->nconsumers, sizeof(c));
    L->consumer_paths = sl_xgrow(L->consumer_paths, conf->nconsumers, sizeof(char *));
    L->consumer_paths[conf->nconsumers] = sl_strndup(path, strlen(path));
    conf->consumers[conf->nconsumers++] = c;
    index_id(L, o, path, c);
    if (c->username)
        index_name(L, path, 1, c);
    if (c->custom_id)
        index_name(L, path, 0, c);

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
        c->entity_json = sl_utf8_json_dup(t); /* copied into log records unchecked */
        c->entity_json_len = c->entity_json ? strlen(c->entity_json) : 0;
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

    if (conf == NULL || conf->keyauth_keys.n == 0 || key.len == 0 ||
        sl_khash(&conf->khash, key.ptr, key.len, &tag) != 0)
        return NULL;
    return key_find(conf, tag, key.ptr, key.len);
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
    sl_kindex_free(&conf->keyauth_keys);
    sl_kindex_free(&conf->keyauth_ids);
    sl_kindex_free(&conf->consumer_ids);
    sl_kindex_free(&conf->consumer_names);
    sl_kindex_free(&conf->consumer_custom_ids);
    sl_khash_free(&conf->khash);
    free(conf->consumers);
}
