/* file_log.c - the file-log plugin: one Kong-compatible JSON line per request.
 *
 * The log phase adds the configured custom fields as serialize values, asks
 * the host for Kong's basic serializer record (api->log_record, which lends
 * the host's buffer, or api->log_serialize before ABI 1.8) and hands the
 * line to this worker's writer thread for the path (file_log_writer.c),
 * which copies it into its queue, so the event loop never waits for the
 * disk.  Built against the public plugin ABI and json-c only. */

#include <stdint.h>
#include <string.h>

#include <sluice/plugin.h>

#include "file_log.h"

/* Extra request headers whose values are written as "REDACTED";
 * authorization and proxy-authorization always are (the host does it). */
static const char *const fl_redact_api_keys[] = {
    "x-api-key", "api-key", "anthropic-api-key", "x-goog-api-key", "x-amz-security-token",
    "cookie",    NULL};
static const char *const fl_redact_none[] = {NULL};

static int
fl_init_worker(const sl_api_t *api, void *conf)
{
    fl_conf_t *c = conf;
    int err;

    c->writer = fl_writer_acquire(c->path, api->worker_id(), api->reopen_generation, &err);
    if (c->writer == NULL) {
        /* r == NULL: the host cannot tag the line with our name. */
        api->log(NULL, SL_LOG_ERROR, "file-log: cannot start the writer for \"%s\": %s", c->path,
                 strerror(err));
        return -1;
    }
    return 0;
}

static void
fl_exit_worker(const sl_api_t *api, void *conf)
{
    fl_conf_t *c = conf;

    fl_writer_release(c->writer); /* the last user drains the queue */
    c->writer = NULL;
}

static void
fl_log(const sl_api_t *api, sl_req_t *r, void *conf)
{
    fl_conf_t *c = conf;
    sl_str_t out;
    uint64_t dropped;
    size_t pending;

    if (c->writer == NULL) {
        api->log(r, SL_LOG_ERROR, "no writer for \"%s\" (init_worker not run)", c->path);
        return;
    }
    for (size_t i = 0; i < c->custom_fields.n; i++) {
        const sl_conf_pair_t *f = (const sl_conf_pair_t *)c->custom_fields.items + i;
        sl_str_t v = {f->json, strlen(f->json)};

        if (api->set_serialize_value(r, f->key, v) != 0)
            api->log(r, SL_LOG_WARN, "custom field \"%s\" was not accepted", f->key);
    }
    int (*record)(sl_req_t *, const char *const *, sl_str_t *) =
        api->abi_minor >= 8 && api->log_record != NULL ? api->log_record : api->log_serialize;
    if (record(r, c->redact_api_keys ? fl_redact_api_keys : fl_redact_none, &out) != 0) {
        api->log(r, SL_LOG_ERROR, "cannot serialize the log record");
        return;
    }
    if (fl_writer_push(c->writer, out.ptr, out.len, c->reopen, &dropped, &pending) != 0 &&
        dropped > 0)
        api->log(r, SL_LOG_WARN,
                 "queue for \"%s\" is full (%zu bytes pending): dropped %llu records", c->path,
                 pending, (unsigned long long)dropped);
}

SL_PLUGIN_EXPORT const sl_plugin_t sluice_plugin = {
    SL_PLUGIN_ABI,  "file-log", "0.1.0", 9, /* priority: Kong's file-log */
    fl_conf_parse,                          /* config_parse */
    fl_conf_free,                           /* config_free */
    fl_init_worker,                         /* init_worker */
    fl_exit_worker,                         /* exit_worker */
    NULL,                                   /* access */
    NULL,                                   /* body */
    NULL,                                   /* header_filter */
    NULL,                                   /* body_filter */
    fl_log,                                 /* log */
    NULL,                                   /* balancer */
    {NULL}                                  /* reserved */
};
