/* request_id_header.c - example sluice plugin: one request id, both ways.
 *
 * Written against the installed <sluice/plugin.h> alone (no sluice sources,
 * no other library), built out of tree with
 *
 *     cc $(pkg-config --cflags sluice) -shared -fPIC \
 *        -o request-id-header.so request_id_header.c
 *
 * What it does, phase by phase:
 *   access         keep the client's `header_name` header if it sent one,
 *                  otherwise set it to the gateway's request id
 *                  (api->req_id), so the upstream sees the same id;
 *   header_filter  copy the id into the response headers;
 *   log            add {"value": ..., "source": "client"|"gateway"} to the
 *                  log record under "request_id_header" (file-log shows it).
 *
 * Configuration (decK):
 *     plugins:
 *     - name: request-id-header
 *       config:
 *         header_name: X-Request-Id      # optional, this is the default
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sluice/plugin.h>

#define RID_NAME_MAX 64

typedef struct rid_conf {
    char name[RID_NAME_MAX + 1];
    size_t name_len;
} rid_conf_t;

/* Per request: the id and where it came from (request pool memory). */
typedef struct rid_ctx {
    sl_str_t value;
    int from_client;
} rid_ctx_t;

/* ---- configuration --------------------------------------------------- */

/* The config arrives as JSON text.  This plugin takes one optional string
 * field, so a tiny scanner for a flat object of strings is enough and keeps
 * the example free of dependencies; a real plugin would link a JSON library
 * (the bundled ones use json-c). */
typedef struct rid_scan {
    const char *p, *end;
} rid_scan_t;

static void
rid_skip_ws(rid_scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

/* A JSON string into out (NUL-terminated); -1 if malformed, too long, or
 * using \u escapes (not needed for header names). */
static int
rid_scan_string(rid_scan_t *s, char *out, size_t size, size_t *len)
{
    size_t n = 0;

    if (s->p >= s->end || *s->p != '"')
        return -1;
    for (s->p++; s->p < s->end && *s->p != '"'; s->p++) {
        char c = *s->p;

        if (c == '\\') {
            if (++s->p >= s->end)
                return -1;
            switch (*s->p) {
            case '"':
            case '\\':
            case '/':
                c = *s->p;
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            default:
                return -1;
            }
        }
        if (n + 1 >= size)
            return -1;
        out[n++] = c;
    }
    if (s->p >= s->end)
        return -1;
    s->p++; /* closing quote */
    out[n] = '\0';
    *len = n;
    return 0;
}

/* RFC 9110 token characters: what a header name may be made of. */
static int
rid_valid_header_name(const char *s, size_t len)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";

    if (len == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c != '\0' && strchr(extra, c) != NULL)))
            return 0;
    }
    return 1;
}

static int
rid_config_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len, void **conf)
{
    rid_scan_t s = {json, json + len};
    rid_conf_t *c;
    char key[64], val[RID_NAME_MAX + 2];
    size_t klen, vlen;
    int rc = 0;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        api->conf_error(cx, "", "out of memory");
        return -1;
    }
    strcpy(c->name, "X-Request-Id");
    c->name_len = strlen(c->name);

    rid_skip_ws(&s);
    if (s.p >= s.end || *s.p++ != '{')
        goto bad_json;
    rid_skip_ws(&s);
    if (s.p < s.end && *s.p == '}') {
        s.p++;
        goto done;
    }
    for (;;) {
        rid_skip_ws(&s);
        if (rid_scan_string(&s, key, sizeof(key), &klen) != 0)
            goto bad_json;
        rid_skip_ws(&s);
        if (s.p >= s.end || *s.p++ != ':')
            goto bad_json;
        rid_skip_ws(&s);

        if (s.end - s.p >= 4 && memcmp(s.p, "null", 4) == 0) {
            s.p += 4; /* null: keep the default */
        } else if (rid_scan_string(&s, val, sizeof(val), &vlen) != 0) {
            /* Not a string we can read: name the field and stop here. */
            if (strcmp(key, "header_name") == 0)
                api->conf_error(cx, key, "expected a string of at most %d characters",
                                RID_NAME_MAX);
            else
                api->conf_error(cx, key, "unknown field");
            free(c);
            return -1;
        } else if (strcmp(key, "header_name") != 0) {
            api->conf_error(cx, key, "unknown field");
            rc = -1;
        } else if (!rid_valid_header_name(val, vlen)) {
            api->conf_error(cx, "header_name", "not a valid header name: \"%s\"", val);
            rc = -1;
        } else {
            memcpy(c->name, val, vlen + 1);
            c->name_len = vlen;
        }

        rid_skip_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            continue;
        }
        if (s.p < s.end && *s.p == '}') {
            s.p++;
            break;
        }
        goto bad_json;
    }

done:
    rid_skip_ws(&s);
    if (s.p != s.end)
        goto bad_json;
    if (rc != 0) {
        free(c);
        return -1;
    }
    *conf = c;
    return 0;

bad_json:
    api->conf_error(cx, "", "expected a JSON object of strings");
    free(c);
    return -1;
}

static void
rid_config_free(void *conf)
{
    free(conf);
}

/* ---- phases ------------------------------------------------------------ */

static sl_status_t
rid_access(const sl_api_t *api, sl_req_t *r, void *conf)
{
    rid_conf_t *c = conf;
    sl_str_t name = {c->name, c->name_len};
    rid_ctx_t *ctx = api->palloc(r, sizeof(*ctx)); /* freed with the request */

    if (api->req_header_get(r, name, &ctx->value) == 1 && ctx->value.len > 0) {
        ctx->from_client = 1;
    } else {
        /* req_id() stays valid for the whole request: no copy needed. */
        ctx->value = api->req_id(r);
        ctx->from_client = 0;
        if (api->req_header_set(r, name, ctx->value) != 0)
            return SL_STATUS_ERROR; /* the host answers 500 */
    }
    api->ctx_set(r, ctx);
    return SL_STATUS_CONTINUE;
}

/* The context, or (when access did not run for this request, e.g. an
 * earlier plugin answered first) one made from the gateway's id. */
static rid_ctx_t *
rid_ctx(const sl_api_t *api, sl_req_t *r)
{
    rid_ctx_t *ctx = api->ctx_get(r);

    if (ctx == NULL) {
        ctx = api->palloc(r, sizeof(*ctx));
        ctx->value = api->req_id(r);
        ctx->from_client = 0;
        api->ctx_set(r, ctx);
    }
    return ctx;
}

static sl_status_t
rid_header_filter(const sl_api_t *api, sl_req_t *r, void *conf)
{
    rid_conf_t *c = conf;
    sl_str_t name = {c->name, c->name_len};

    if (api->resp_header_set(r, name, rid_ctx(api, r)->value) != 0)
        api->log(r, SL_LOG_WARN, "cannot set the %s response header", c->name);
    return SL_STATUS_CONTINUE;
}

static void
rid_log(const sl_api_t *api, sl_req_t *r, void *conf)
{
    rid_ctx_t *ctx = rid_ctx(api, r);
    char *json, *p;
    sl_str_t v;

    (void)conf;
    /* {"value":"<escaped id>","source":"gateway"}: at most 6 bytes per
     * input byte (\u00XX) plus the fixed part. */
    json = api->palloc(r, ctx->value.len * 6 + 64);
    p = json;
    p += sprintf(p, "{\"value\":\"");
    for (size_t i = 0; i < ctx->value.len; i++) {
        unsigned char ch = (unsigned char)ctx->value.ptr[i];

        if (ch == '"' || ch == '\\')
            p += sprintf(p, "\\%c", ch);
        else if (ch < 0x20 || ch == 0x7f)
            p += sprintf(p, "\\u%04x", ch);
        else
            *p++ = (char)ch;
    }
    p += sprintf(p, "\",\"source\":\"%s\"}", ctx->from_client ? "client" : "gateway");
    v.ptr = json;
    v.len = (size_t)(p - json);
    if (api->set_serialize_value(r, "request_id_header", v) != 0)
        api->log(r, SL_LOG_WARN, "the host refused the serialize value");
}

/* ---- the descriptor: the one symbol the host looks for ------------------ */

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,
    "request-id-header", /* name used in the config */
    "1.0.0",             /* version */
    100000,              /* priority: early, like Kong's correlation-id */
    rid_config_parse,    /* config_parse */
    rid_config_free,     /* config_free */
    NULL,                /* init_worker */
    NULL,                /* exit_worker */
    rid_access,          /* access */
    NULL,                /* body */
    rid_header_filter,   /* header_filter */
    NULL,                /* body_filter */
    rid_log,             /* log */
    NULL,                /* balancer */
    {NULL}               /* reserved */
};
