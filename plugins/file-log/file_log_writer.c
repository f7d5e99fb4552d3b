/* file_log_writer.c - per-path writer threads for file-log.
 *
 * Why a thread: write() to a regular file can block for milliseconds (a busy
 * or network disk, a full journal) and the log phase runs on the worker's
 * event loop, where every other connection waits for it.  So the loop only
 * copies the record into a queue (a malloc, a memcpy and an uncontended
 * mutex: about a microsecond) and one thread per path and worker writes the
 * queue in order.
 *
 * Why batches: records are appended to the tail of a list of chunks
 * (FL_CHUNK_SIZE bytes, reused), and the thread writes a chunk -- every
 * record that came since its last pass, up to 256 KiB -- with one write():
 * one system call for many records rather than one each, which is most of
 * what a log line costs on a busy worker.  The thread naps FL_NAP_MS between
 * passes while records flow, so a record reaches the file within ~10 ms;
 * exit_worker writes what is queued.
 *
 * Why records never interleave: a chunk holds whole records only and is
 * written with exactly one write() on a descriptor opened with O_APPEND;
 * Linux serialises appending writes to one file, so lines from all workers
 * (and all threads) stay whole, whatever their size (a record larger than a
 * chunk gets a chunk of its own).  A failed or short write is not retried:
 * retrying the tail could land after another worker's record.
 *
 * Failures (missing directory, EACCES, ENOSPC...) cost the record, never the
 * request.  The thread cannot use api->log (not thread-safe), so it writes
 * its own error line to stderr -- which the host points at the error log --
 * with one write(), in the host's format, at most once per path every
 * FL_ERROR_INTERVAL_S seconds (the next line says how many were suppressed).
 * After a failure the descriptor is closed, so the next record reopens the
 * path: the writer recovers by itself once the path is writable again. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "file_log.h"

/* Batches: a write() of 256 KiB costs the kernel ~180 ns per 1.25 KB record
 * on ext4, one of 64 KiB ~300 ns and one of 16 KiB ~500 ns (page-cache work
 * per call and per folio); a pass every 10 ms instead of 2 ms is a fifth of
 * the wake-ups and context switches on the worker's CPU. */
#define FL_NAP_MS 10                /* batch latency while records flow */
#define FL_NAPS_BEFORE_SLEEP 100    /* ~1 s of naps, then a real sleep */
#define FL_CHUNK_SIZE (256 * 1024)  /* bytes per write() at most, but for one big record */
#define FL_WAKE_BYTES FL_CHUNK_SIZE /* a full chunk waiting: wake the thread */
#define FL_SPARE_CHUNKS 4           /* written chunks kept for reuse */

/* Whole records, '\n'-terminated, written with one write(). */
typedef struct fl_chunk {
    struct fl_chunk *next;
    size_t len, cap;
    uint64_t records;
    int reopen; /* reopen:true: this chunk holds one record, written on its own */
    char data[];
} fl_chunk_t;

struct fl_writer {
    fl_writer_t *next; /* registry list */
    char *path;
    int refs; /* registry lock */
    int worker_id;
    uint64_t (*reopen_generation)(void);

    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* records queued or stop */
    pthread_cond_t cv_done; /* a batch was written (fl_writer_sync) */

    /* Guarded by mu. */
    fl_chunk_t *head, *tail;
    fl_chunk_t *spare; /* written chunks, FL_CHUNK_SIZE each */
    int nspare;
    size_t pending; /* bytes queued or in the current batch */
    size_t limit;
    uint64_t pushed, handled; /* record sequence numbers */
    uint64_t written, failed, dropped;
    uint64_t dropped_unreported;
    time_t drop_warned_at;
    int waiting; /* thread sleeps on cv_work */
    int stop;
    int exited; /* thread done, descriptor closed */
    int reopen_req;

    /* Writer thread only. */
    int fd;
    uint64_t generation;
    int failing; /* the last record failed */
    uint64_t failed_in_burst;
    uint64_t suppressed;
    time_t error_logged_at;
};

static pthread_mutex_t fl_registry_mu = PTHREAD_MUTEX_INITIALIZER;
static fl_writer_t *fl_registry;
static fl_writer_t *fl_abandoned; /* given up at exit, still referenced */
static size_t fl_queue_limit = FL_QUEUE_LIMIT;
static int fl_error_interval = FL_ERROR_INTERVAL_S;
static int fl_error_fd = STDERR_FILENO;
static int fl_drain_timeout = FL_DRAIN_TIMEOUT_S;

void
fl_writer_set_limits(size_t queue_limit, int error_interval_s)
{
    fl_queue_limit = queue_limit;
    fl_error_interval = error_interval_s;
}

void
fl_writer_set_drain_timeout(int seconds)
{
    fl_drain_timeout = seconds;
}

void
fl_writer_set_error_fd(int fd)
{
    fl_error_fd = fd;
}

/* One error-log line, same shape as the host's:
 *   2026/11/25 18:54:01.123 [error] worker 1: [file-log] message
 * built in a buffer and written with one write() so it does not interleave
 * with lines from the loop thread or other workers. */
static void fl_errlog(fl_writer_t *w, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
fl_errlog(fl_writer_t *w, const char *level, const char *fmt, ...)
{
    char line[1024 + 4096];
    struct timeval tv;
    struct tm tm;
    va_list ap;
    int n, m;

    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, sizeof(line),
                 "%04d/%02d/%02d %02d:%02d:%02d.%03d [%s] worker %d: [file-log] ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(tv.tv_usec / 1000), level, w->worker_id);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if ((size_t)n > sizeof(line) - 2)
        n = (int)sizeof(line) - 2;
    line[n++] = '\n';
    /* Nowhere left to report a failure to write the error log. */
    if (write(fl_error_fd, line, (size_t)n) < 0)
        return;
}

/* `lost` records were lost to `what` (errno `err`, 0 for a short write):
 * report the first failure of a burst, then at most one line per interval
 * (each lost record counts as one error, as when records went one by one). */
static void
fl_failure(fl_writer_t *w, const char *what, int err, size_t want, ssize_t got, uint64_t lost)
{
    time_t now = time(NULL);
    char why[256];

    w->failing = 1;
    w->failed_in_burst += lost;
    if (err != 0)
        snprintf(why, sizeof(why), "%s", strerror(err));
    else
        snprintf(why, sizeof(why), "short write (%zd of %zu bytes)", got, want);

    if (w->error_logged_at != 0 && now - w->error_logged_at < fl_error_interval) {
        w->suppressed += lost;
        return;
    }
    if (w->suppressed > 0)
        fl_errlog(w, "error", "%s \"%s\": %s (%llu similar errors suppressed)", what, w->path, why,
                  (unsigned long long)w->suppressed);
    else
        fl_errlog(w, "error", "%s \"%s\": %s", what, w->path, why);
    w->suppressed = lost - 1;
    w->error_logged_at = now;
}

static void
fl_close(fl_writer_t *w)
{
    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
}

/* Records whose last byte is among the first n bytes of a chunk. */
static uint64_t
fl_whole_records(const fl_chunk_t *ch, size_t n)
{
    uint64_t k = 0;

    for (const char *p = ch->data, *e = ch->data + n; (p = memchr(p, '\n', (size_t)(e - p))); p++)
        k++;
    return k;
}

/* Write one chunk; returns how many of its records reached the file. */
static uint64_t
fl_write_chunk(fl_writer_t *w, const fl_chunk_t *ch, int reopen_req)
{
    uint64_t gen = w->reopen_generation != NULL ? w->reopen_generation() : 0;
    ssize_t n;

    /* SIGUSR1 (generation bump), a reload, or reopen:true: drop the old
     * descriptor so a renamed (rotated) file is left to its new name. */
    if (gen != w->generation || reopen_req || ch->reopen)
        fl_close(w);
    w->generation = gen;

    if (w->fd < 0) {
        w->fd = open(w->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (w->fd < 0) {
            fl_failure(w, "failed to open the file", errno, 0, 0, ch->records);
            return 0;
        }
    }
    do
        n = write(w->fd, ch->data, ch->len);
    while (n < 0 && errno == EINTR); /* nothing was written: safe to retry */

    if (n < 0 || (size_t)n != ch->len) {
        uint64_t ok = n > 0 ? fl_whole_records(ch, (size_t)n) : 0;
        fl_failure(w, "failed to write to the file", n < 0 ? errno : 0, ch->len, n,
                   ch->records - ok);
        fl_close(w); /* the next chunk reopens */
        return ok;
    }
    if (w->failing) {
        fl_errlog(w, "warn", "writing to \"%s\" again after %llu lost records", w->path,
                  (unsigned long long)w->failed_in_burst);
        w->failing = 0;
        w->failed_in_burst = 0;
        w->suppressed = 0;
        w->error_logged_at = 0;
    }
    if (ch->reopen)
        fl_close(w); /* Kong's reopen: open per record */
    return ch->records;
}

static void *
fl_writer_main(void *arg)
{
    fl_writer_t *w = arg;
    fl_chunk_t *batch, *ch, *done_head;
    size_t bytes;
    uint64_t count, ok;
    int reopen_req;

    unsigned idle_naps = 0;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        /* While records keep coming, nap FL_NAP_MS between batches instead
         * of being woken per record: the event loop then pushes without a
         * futex call or a context switch.  After a second without records
         * sleep for real; the next push wakes us (w->waiting). */
        while (w->head == NULL && !w->stop) {
            if (idle_naps < FL_NAPS_BEFORE_SLEEP) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += FL_NAP_MS * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&w->cv_work, &w->mu, &ts);
                if (w->head == NULL)
                    idle_naps++;
                continue;
            }
            w->waiting = 1;
            pthread_cond_wait(&w->cv_work, &w->mu);
            w->waiting = 0;
        }
        idle_naps = 0;
        if (w->head == NULL)
            break; /* stop, and everything written */
        batch = w->head;
        w->head = w->tail = NULL;
        reopen_req = w->reopen_req;
        w->reopen_req = 0;
        pthread_mutex_unlock(&w->mu);

        bytes = 0;
        count = ok = 0;
        done_head = NULL;
        while (batch != NULL) {
            ch = batch;
            batch = ch->next;
            ok += fl_write_chunk(w, ch, reopen_req);
            reopen_req = 0;
            bytes += ch->len;
            count += ch->records;
            if (ch->cap == FL_CHUNK_SIZE) { /* keep for reuse */
                ch->next = done_head;
                done_head = ch;
            } else {
                free(ch);
            }
        }

        pthread_mutex_lock(&w->mu);
        while (done_head != NULL) {
            ch = done_head;
            done_head = ch->next;
            if (w->nspare < FL_SPARE_CHUNKS) {
                ch->next = w->spare;
                w->spare = ch;
                w->nspare++;
            } else {
                free(ch);
            }
        }
        w->pending -= bytes;
        w->handled += count;
        w->written += ok;
        w->failed += count - ok;
        pthread_cond_broadcast(&w->cv_done);
    }
    pthread_mutex_unlock(&w->mu);
    fl_close(w);

    pthread_mutex_lock(&w->mu);
    w->exited = 1;
    pthread_cond_broadcast(&w->cv_done);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void
fl_writer_destroy(fl_writer_t *w)
{
    while (w->spare != NULL) {
        fl_chunk_t *ch = w->spare;
        w->spare = ch->next;
        free(ch);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_done);
    free(w->path);
    free(w);
}

static fl_writer_t *
fl_writer_start(const char *path, int worker_id, uint64_t (*reopen_generation)(void), int *err)
{
    fl_writer_t *w;
    sigset_t all, old;
    int rc;

    w = calloc(1, sizeof(*w));
    if (w == NULL || (w->path = strdup(path)) == NULL) {
        free(w);
        *err = ENOMEM;
        return NULL;
    }
    w->refs = 1;
    w->fd = -1;
    w->worker_id = worker_id;
    w->limit = fl_queue_limit;
    w->reopen_generation = reopen_generation;
    w->generation = reopen_generation != NULL ? reopen_generation() : 0;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_done, NULL);

    /* The thread must not take the worker's signals (SIGUSR1, SIGTERM...):
     * they belong to the event loop.  It inherits this mask. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&w->thread, NULL, fl_writer_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        fl_writer_destroy(w);
        *err = rc;
        return NULL;
    }
    return w;
}

fl_writer_t *
fl_writer_acquire(const char *path, int worker_id, uint64_t (*reopen_generation)(void), int *err)
{
    fl_writer_t *w;

    *err = 0;
    pthread_mutex_lock(&fl_registry_mu);
    for (w = fl_registry; w != NULL; w = w->next) {
        if (strcmp(w->path, path) == 0) {
            w->refs++;
            pthread_mutex_unlock(&fl_registry_mu);
            /* A new instance for a path already open (another instance, or
             * a reload inside this worker): reopen like a reload would. */
            fl_writer_request_reopen(w);
            return w;
        }
    }
    w = fl_writer_start(path, worker_id, reopen_generation, err);
    if (w != NULL) {
        w->next = fl_registry;
        fl_registry = w;
    }
    pthread_mutex_unlock(&fl_registry_mu);
    return w;
}

void
fl_writer_release(fl_writer_t *w)
{
    fl_writer_t **pp;
    struct timespec deadline;
    size_t pending;
    int rc = 0, exited;

    if (w == NULL)
        return;
    pthread_mutex_lock(&fl_registry_mu);
    if (--w->refs > 0) {
        pthread_mutex_unlock(&fl_registry_mu);
        return;
    }
    for (pp = &fl_registry; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    }
    pthread_mutex_unlock(&fl_registry_mu);

    /* The thread drains the queue before it sees `stop`.  A disk that does
     * not move must not keep the worker from exiting forever: after the
     * drain timeout the thread is abandoned (detached, its writer never
     * freed) and the process exit ends it. */
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += fl_drain_timeout;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv_work);
    while (!w->exited && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&w->cv_done, &w->mu, &deadline);
    exited = w->exited;
    pending = w->pending;
    pthread_mutex_unlock(&w->mu);
    if (!exited) {
        fl_errlog(w, "error", "giving up on \"%s\" at exit: %zu bytes not written after %d s",
                  w->path, pending, fl_drain_timeout);
        pthread_detach(w->thread);
        pthread_mutex_lock(&fl_registry_mu);
        w->next = fl_abandoned;
        fl_abandoned = w;
        pthread_mutex_unlock(&fl_registry_mu);
        return;
    }
    pthread_join(w->thread, NULL);
    fl_writer_destroy(w);
}

/* The chunk a record of `need` bytes goes into: the tail when it has room,
 * else a spare or new one appended to the queue.  Lock held; NULL when
 * memory ran out. */
static fl_chunk_t *
fl_chunk_for(fl_writer_t *w, size_t need, int reopen)
{
    fl_chunk_t *ch = w->tail;

    if (ch != NULL && !reopen && !ch->reopen && ch->cap - ch->len >= need)
        return ch;
    if (need <= FL_CHUNK_SIZE && w->spare != NULL) {
        ch = w->spare;
        w->spare = ch->next;
        w->nspare--;
    } else {
        size_t cap = need > FL_CHUNK_SIZE ? need : FL_CHUNK_SIZE;
        ch = malloc(sizeof(*ch) + cap);
        if (ch == NULL)
            return NULL;
        ch->cap = cap;
    }
    ch->next = NULL;
    ch->len = 0;
    ch->records = 0;
    ch->reopen = reopen;
    if (w->tail != NULL)
        w->tail->next = ch;
    else
        w->head = ch;
    w->tail = ch;
    return ch;
}

int
fl_writer_push(fl_writer_t *w, const char *data, size_t len, int reopen, uint64_t *warn_dropped,
               size_t *pending)
{
    fl_chunk_t *ch = NULL;
    time_t now;

    *warn_dropped = 0;
    pthread_mutex_lock(&w->mu);
    if (w->pending + len + 1 > w->limit || (ch = fl_chunk_for(w, len + 1, reopen)) == NULL) {
        w->dropped++;
        w->dropped_unreported++;
        now = time(NULL);
        if (w->drop_warned_at == 0 || now - w->drop_warned_at >= fl_error_interval) {
            *warn_dropped = w->dropped_unreported;
            w->dropped_unreported = 0;
            w->drop_warned_at = now;
        }
        *pending = w->pending;
        pthread_mutex_unlock(&w->mu);
        return -1;
    }
    /* Copied under the lock: the thread holds it only to take the whole
     * queue, never while writing. */
    memcpy(ch->data + ch->len, data, len);
    ch->data[ch->len + len] = '\n';
    ch->len += len + 1;
    ch->records++;
    w->pending += len + 1;
    w->pushed++;
    *pending = w->pending;
    /* Wake the thread only when it sleeps for real (a napping thread picks
     * the record up within FL_NAP_MS), or when much is waiting. */
    if (w->waiting || w->pending > FL_WAKE_BYTES)
        pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

void
fl_writer_request_reopen(fl_writer_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->reopen_req = 1;
    pthread_mutex_unlock(&w->mu);
}

void
fl_writer_sync(fl_writer_t *w)
{
    uint64_t target;

    pthread_mutex_lock(&w->mu);
    target = w->pushed;
    while (w->handled < target)
        pthread_cond_wait(&w->cv_done, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

void
fl_writer_stats(fl_writer_t *w, fl_writer_stats_t *st)
{
    pthread_mutex_lock(&w->mu);
    st->written = w->written;
    st->failed = w->failed;
    st->dropped = w->dropped;
    st->pending = w->pending;
    pthread_mutex_unlock(&w->mu);
    pthread_mutex_lock(&fl_registry_mu);
    st->refs = w->refs;
    pthread_mutex_unlock(&fl_registry_mu);
}
