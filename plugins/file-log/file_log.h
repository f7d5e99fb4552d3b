/* file_log.h - internals shared by the file-log plugin's files (not installed).
 *
 * file_log.c         the descriptor, lifecycle and log phase
 * file_log_conf.c    config_parse / config_free
 * file_log_writer.c  per-path writer threads with a bounded queue
 */

#ifndef SL_FILE_LOG_H
#define SL_FILE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include <sluice/plugin.h>

/* Records waiting in one writer's queue may not exceed this many bytes;
 * beyond it new records are dropped (and counted) rather than letting a
 * stuck disk eat the worker's memory. */
#define FL_QUEUE_LIMIT (64u * 1024 * 1024)

/* At most one error line per path and per this many seconds. */
#define FL_ERROR_INTERVAL_S 5

/* How long exit_worker waits for a writer to drain its queue. */
#define FL_DRAIN_TIMEOUT_S 10

typedef struct fl_writer fl_writer_t;

/* One plugin instance's configuration, filled by the host from fl_schema
 * (file_log_conf.c) in the master; `writer` is filled per worker by
 * init_worker (each worker has its own copy-on-write image after fork). */
typedef struct fl_conf {
    char *path;
    int reopen;                    /* reopen the file for every record */
    int redact_api_keys;           /* also redact x-api-key and api-key */
    sl_conf_array_t custom_fields; /* sl_conf_pair_t: dotted key -> JSON */
    char *lua_fields;              /* custom_fields_by_lua: must be empty */
    fl_writer_t *writer;           /* per worker; NULL before init_worker */
} fl_conf_t;

extern const sl_schema_t fl_schema;

/* file_log_conf.c */
int fl_conf_parse(const sl_api_t *api, sl_conf_ctx_t *cx, const char *json, size_t len,
                  void **conf);
void fl_conf_free(void *conf);
int fl_valid_filename(const char *s, size_t len);

/* file_log_writer.c
 *
 * A writer owns one path in one process: a descriptor opened
 * O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC 0644 and a thread that writes queued
 * records in order, each with a single write().  Writers are shared by every
 * instance that names the same path (reference counted). */

/* Find or start the writer for `path`.  `reopen_generation` (may be NULL)
 * must be thread-safe: the writer thread calls it before every record and
 * reopens the file when the value changed.  Returns NULL on failure (no
 * memory, thread creation failed); `err` then holds an errno value. */
fl_writer_t *fl_writer_acquire(const char *path, int worker_id, uint64_t (*reopen_generation)(void),
                               int *err);

/* Drop one reference; the last one writes every queued record, stops the
 * thread and closes the file (giving up after FL_DRAIN_TIMEOUT_S). */
void fl_writer_release(fl_writer_t *w);

/* Queue one record (copied; a '\n' is appended).  `reopen`: close and reopen
 * the file around this record.  Returns 0, or -1 when the record was dropped
 * because the queue is full or memory ran out; then `*warn_dropped` is the
 * number of records dropped since the last warning when it is time to warn
 * again (0 otherwise), and `*pending` the bytes waiting. */
int fl_writer_push(fl_writer_t *w, const char *data, size_t len, int reopen, uint64_t *warn_dropped,
                   size_t *pending);

/* Ask for the file to be reopened before the next record. */
void fl_writer_request_reopen(fl_writer_t *w);

/* Wait until every record queued so far has been handled.  Blocks: for
 * tests and shutdown, never from a request phase. */
void fl_writer_sync(fl_writer_t *w);

typedef struct fl_writer_stats {
    uint64_t written; /* records fully written */
    uint64_t failed;  /* records lost to open/write errors */
    uint64_t dropped; /* records dropped because the queue was full */
    size_t pending;   /* bytes queued, not yet written */
    int refs;
} fl_writer_stats_t;

void fl_writer_stats(fl_writer_t *w, fl_writer_stats_t *st);

/* Tuning hooks for tests: queue limit of new writers (bytes), the minimum
 * gap between two error lines (seconds), and the descriptor error lines go
 * to (default stderr, which the host points at its error log). */
void fl_writer_set_limits(size_t queue_limit, int error_interval_s);
void fl_writer_set_error_fd(int fd);
void fl_writer_set_drain_timeout(int seconds);

#endif /* SL_FILE_LOG_H */
