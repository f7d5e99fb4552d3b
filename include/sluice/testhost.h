/* sluice/testhost.h - unit-test a plugin's phases without a running server
 * (libsluice-testhost; pkg-config sluice-testhost).
 *
 * The test host is the server's own plugin host and request code without
 * sockets: it loads plugins from a directory, parses a declarative config
 * (so plugin configs go through config_parse and the schemas as they would
 * in sluice), runs init_worker, and hands out fake requests that are
 * routed like real ones.  Each phase is run on demand; a phase that returns
 * SL_STATUS_PENDING runs the event loop (callouts, timers, api->post) until
 * the plugin resumes it or its pending timeout passes.  The upstream is
 * never contacted: the test supplies the upstream's response.
 *
 *     slt_host_t *h = slt_host_new("./build", yaml, &err);
 *     slt_req_t *t = slt_req_new(h, "GET", "/api/x?y=1");
 *     slt_req_header(t, "apikey", "secret");
 *     assert(slt_access(t) == SL_STATUS_CONTINUE);
 *     slt_upstream_response(t, 200, (const char *[]){"content-type", "text/plain", NULL});
 *     slt_header_filter(t);
 *     slt_log(t);
 *     printf("%s\n", slt_log_record(t));
 *     slt_req_free(t);
 *     slt_host_free(h);
 *
 * One host per process at a time; everything on the calling thread.
 * Strings returned are owned by the request (valid until slt_req_free) or
 * the host; NUL-terminated unless a length is returned too. */

#ifndef SLUICE_TESTHOST_H
#define SLUICE_TESTHOST_H

#include <sluice/plugin.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slt_host slt_host_t;
typedef struct slt_req slt_req_t;

/* Load every plugin in plugins_dir (':'-separated list), then `config` (a
 * declarative config, YAML or JSON text) and run init_worker for every
 * plugin instance.  NULL on failure, with *errors (if not NULL) set to a
 * malloc'd text of every problem (free() it). */
slt_host_t *slt_host_new(const char *plugins_dir, const char *config, char **errors);
/* exit_worker, then free everything (requests must be freed first). */
void slt_host_free(slt_host_t *h);
/* The function table the plugins are called with. */
const sl_api_t *slt_api(void);
/* since 1.3: set a node setting (api->setting_get) for the hosts created
 * after this call, as a settings-file line `name = value` would: 0, or -1
 * for an unknown name or a value the setting refuses.  Settings stay set
 * for the process; slt_setting(NULL, NULL) forgets them all (defaults
 * again). */
int slt_setting(const char *name, const char *value);

/* A request as the client sent it (HTTP/1.1 from 127.0.0.1); routed by
 * method, Host and path when slt_access runs ("Host: localhost" unless a
 * Host header was added).  target is "/path?query". */
slt_req_t *slt_req_new(slt_host_t *h, const char *method, const char *target);
/* Add one request header (before the first phase). */
int slt_req_header(slt_req_t *t, const char *name, const char *value);
/* The body, copied (as if it had arrived whole). */
int slt_req_body(slt_req_t *t, const char *data, size_t len);
/* Runs the log phase first if slt_log was not called. */
void slt_req_free(slt_req_t *t);
/* The host's request handle, to call api functions on it from the test. */
sl_req_t *slt_req_handle(slt_req_t *t);

/* Run one phase over the request's plugin chain; returns how the chain
 * ended: SL_STATUS_CONTINUE, SL_STATUS_RESPOND (a plugin answered: see
 * slt_status/slt_resp_*) or SL_STATUS_ERROR.  A pause is waited for (the
 * loop runs), so SL_STATUS_PENDING is never returned; a pause that timed
 * out returns SL_STATUS_ERROR with slt_req_error() ==
 * SL_REQERR_PENDING_TIMEOUT.  slt_access returns -1 when no route matched
 * (sluice would answer 404). */
int slt_access(slt_req_t *t);
int slt_body(slt_req_t *t);
/* Make the upstream's answer: status and a NULL-terminated list of name,
 * value pairs.  Then header_filter / body_filter see it. */
int slt_upstream_response(slt_req_t *t, int status, const char *const *headers);
int slt_header_filter(slt_req_t *t);
/* since 1.2: run the balancer phase for a try (ti NULL: the first try,
 * with the service's retries).  Returns CONTINUE, RESPOND or ERROR (-1: no
 * route).  The test plays the tries: after an slt_upstream_response and an
 * slt_header_filter in which the plugin called api->upstream_retry
 * (slt_retry_asked: 1; in the test host it succeeds whenever the phase and
 * the response allow), call slt_balancer again with SL_TRY_STATUS. */
int slt_balancer(slt_req_t *t, const sl_try_info_t *ti);
int slt_retry_asked(slt_req_t *t);
/* One body chunk through every body_filter; *out and *out_len get the result
 * (valid until the next call). */
int slt_body_filter(slt_req_t *t, const char *chunk, size_t len, int eof, const char **out,
                    size_t *out_len);
void slt_log(slt_req_t *t);

/* Inspect. */
int slt_status(slt_req_t *t);                                   /* response status, 0 if none */
const char *slt_resp_header(slt_req_t *t, const char *name);    /* first value or NULL */
const char *slt_req_header_get(slt_req_t *t, const char *name); /* as it would go upstream */
const char *slt_resp_body(slt_req_t *t, size_t *len);           /* a gateway-made (respond) body */
const char *slt_req_body_get(slt_req_t *t, size_t *len);        /* as it would go upstream */
/* Where the request would be proxied: "https://host:443/path?query". */
const char *slt_upstream_url(slt_req_t *t);
sl_req_error_t slt_req_error(slt_req_t *t);
/* The Kong log record (as file-log writes it), serialize values included. */
const char *slt_log_record(slt_req_t *t);
/* One value a plugin attached with set_serialize_value ("a.b"), as JSON;
 * NULL if none. */
const char *slt_serialize_value(slt_req_t *t, const char *key);

/* Run the worker loop for up to ms milliseconds (worker timers, worker-
 * level callouts, api->post functions). */
void slt_run_loop(slt_host_t *h, unsigned ms);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_TESTHOST_H */
