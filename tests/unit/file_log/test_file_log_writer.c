/* test_file_log_writer.c - file-log's log phase and writer threads: whole
 * lines across processes and threads, rotation, failures and recovery,
 * the bounded queue, and the time the event loop spends per record. */

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <cmocka.h>

#include "fake_api.h"
#include "file_log.h"

extern const sl_plugin_t sluice_plugin;

static char tmpdir[256];
static char errpath[300];
static int errfd = -1;

static int
setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/sl-file-log-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(errpath, sizeof(errpath), "%s/error.log", tmpdir);
    errfd = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (errfd < 0)
        return -1;
    fl_writer_set_error_fd(errfd);
    fake_reset();
    return 0;
}

static int
teardown(void **state)
{
    char cmd[300];

    (void)state;
    fl_writer_set_error_fd(STDERR_FILENO);
    fl_writer_set_limits(FL_QUEUE_LIMIT, FL_ERROR_INTERVAL_S);
    close(errfd);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The whole content of a file, NUL-terminated (NULL if it cannot be read). */
static char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (buf != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf != NULL) {
        buf[n] = '\0';
        if (len != NULL)
            *len = (size_t)n;
    }
    return buf;
}

static size_t
count_lines(const char *path)
{
    char *s = slurp(path, NULL);
    size_t n = 0;

    if (s == NULL)
        return 0;
    for (char *p = s; *p; p++)
        n += *p == '\n';
    free(s);
    return n;
}

static size_t
count_substr(const char *s, const char *needle)
{
    size_t n = 0;

    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static fl_conf_t *
make_conf(const char *fmt, ...)
{
    char json[1024];
    va_list ap;
    void *c = NULL;

    va_start(ap, fmt);
    vsnprintf(json, sizeof(json), fmt, ap);
    va_end(ap);
    assert_int_equal(fake_parse(json, &c), 0);
    return c;
}

/* Run the log phase once with a record made of `json`. */
static void
log_one(fl_conf_t *c, const char *json, sl_req_t *out_req)
{
    sl_req_t r;

    fake_req_init(&r, json, strlen(json));
    sluice_plugin.log(&fake_api, &r, c);
    if (out_req != NULL)
        memcpy(out_req->redacted, r.redacted, sizeof(r.redacted));
    fake_req_done(&r);
}

/* A record {"w":w,"i":i,"pad":"xxx..."} of about `size` bytes. */
static char *
make_record(int w, int i, size_t size)
{
    char *s = malloc(size + 64);
    int n = sprintf(s, "{\"w\":%d,\"i\":%d,\"pad\":\"", w, i);

    memset(s + n, 'a' + (i % 26), size);
    strcpy(s + n + size, "\"}");
    return s;
}

/* Check that every line of `path` is a whole record from make_record and
 * that each writer's records are in order; returns the number of lines. */
static size_t
check_records(const char *path, int writers, int per_writer)
{
    char *s = slurp(path, NULL), *line, *save = NULL;
    int *next = calloc((size_t)writers, sizeof(int));
    size_t n = 0;

    assert_non_null(s);
    for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(line), *v;
        int w, i;
        const char *pad;

        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "w", &v));
        w = json_object_get_int(v);
        assert_true(json_object_object_get_ex(o, "i", &v));
        i = json_object_get_int(v);
        assert_in_range(w, 0, writers - 1);
        assert_int_equal(i, next[w]); /* per-writer order kept */
        next[w]++;
        assert_true(json_object_object_get_ex(o, "pad", &v));
        pad = json_object_get_string(v);
        for (int k = 0; pad[k]; k++)
            assert_int_equal(pad[k], 'a' + (i % 26));
        json_object_put(o);
        n++;
    }
    for (int w = 0; w < writers; w++)
        assert_int_equal(next[w], per_writer);
    free(next);
    free(s);
    return n;
}

static size_t
record_size(int i)
{
    /* Mostly small records, every 7th one 100 KB (log_payloads-sized). */
    return i % 7 == 0 ? 100 * 1024 : (size_t)(200 + (i * 37) % 4000);
}

static void
test_log_phase(void **state)
{
    char path[300];
    fl_conf_t *c;
    sl_req_t r;
    char *s;
    json_object *o, *v;

    (void)state;
    snprintf(path, sizeof(path), "%s/claude.json", tmpdir);
    c = make_conf("{\"path\":\"%s\",\"custom_fields\":{\"team\":\"ai\","
                  "\"route.cost\":1.5,\"a.b\":{\"c\":[1]}}}",
                  path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    log_one(c, "{\"request\":{\"method\":\"POST\"}}", &r);
    assert_string_equal(
        r.redacted,
        "x-api-key,api-key,anthropic-api-key,x-goog-api-key,x-amz-security-token,cookie,");
    sluice_plugin.exit_worker(&fake_api, c); /* drains */
    assert_null(c->writer);

    s = slurp(path, NULL);
    assert_non_null(s);
    assert_int_equal(s[strlen(s) - 1], '\n');
    assert_int_equal(count_substr(s, "\n"), 1);
    o = json_tokener_parse(s);
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "team", &v));
    assert_string_equal(json_object_get_string(v), "ai");
    assert_true(json_object_object_get_ex(o, "route", &v));
    assert_true(json_object_object_get_ex(v, "cost", &v));
    assert_true(json_object_get_double(v) == 1.5);
    assert_true(json_object_object_get_ex(o, "a", &v));
    assert_true(json_object_object_get_ex(v, "b", &v));
    assert_true(json_object_object_get_ex(v, "c", &v));
    assert_true(json_object_object_get_ex(o, "request", &v));
    json_object_put(o);
    free(s);
    sluice_plugin.config_free(c);

    { /* 0644 (under the test's umask) */
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0600, 0600);
        assert_int_equal(st.st_mode & 0111, 0);
    }

    /* redact_api_keys:false passes an empty list. */
    c = make_conf("{\"path\":\"%s\",\"redact_api_keys\":false}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    log_one(c, "{}", &r);
    assert_string_equal(r.redacted, "");
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);
    assert_int_equal(count_lines(path), 2);
}

static void
test_shared_path(void **state)
{
    char path[300];
    fl_conf_t *a, *b;
    fl_writer_stats_t st;

    (void)state;
    snprintf(path, sizeof(path), "%s/shared.json", tmpdir);
    a = make_conf("{\"path\":\"%s\"}", path);
    b = make_conf("{\"path\":\"%s\",\"reopen\":true}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, a), 0);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, b), 0);
    assert_ptr_equal(a->writer, b->writer);
    fl_writer_stats(a->writer, &st);
    assert_int_equal(st.refs, 2);

    log_one(a, "{\"w\":0}", NULL);
    log_one(b, "{\"w\":1}", NULL);
    sluice_plugin.exit_worker(&fake_api, a);
    log_one(b, "{\"w\":1}", NULL); /* still served */
    fl_writer_sync(b->writer);
    fl_writer_stats(b->writer, &st);
    assert_int_equal(st.refs, 1);
    assert_int_equal(st.written, 3);
    sluice_plugin.exit_worker(&fake_api, b);
    assert_int_equal(count_lines(path), 3);
    sluice_plugin.config_free(a);
    sluice_plugin.config_free(b);
}

/* Several worker processes append to one file through the plugin. */
static void
test_processes(void **state)
{
    enum { NPROC = 4, NREC = 150 };
    char path[300];
    fl_conf_t *c;
    pid_t pids[NPROC];

    (void)state;
    snprintf(path, sizeof(path), "%s/procs.json", tmpdir);
    c = make_conf("{\"path\":\"%s\"}", path); /* parsed in the "master" */
    for (int w = 0; w < NPROC; w++) {
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            if (sluice_plugin.init_worker(&fake_api, c) != 0)
                _exit(2);
            for (int i = 0; i < NREC; i++) {
                char *rec = make_record(w, i, record_size(i));

                log_one(c, rec, NULL);
                free(rec);
            }
            sluice_plugin.exit_worker(&fake_api, c);
            _exit(0);
        }
    }
    for (int w = 0; w < NPROC; w++) {
        int status;

        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(check_records(path, NPROC, NREC), NPROC * NREC);
    sluice_plugin.config_free(c);
}

/* Several threads (each standing for a worker's loop with its own writer
 * reference) push into one writer concurrently. */
typedef struct thread_arg {
    fl_conf_t *conf;
    int w, n;
} thread_arg_t;

static void *
thread_main(void *p)
{
    thread_arg_t *a = p;

    for (int i = 0; i < a->n; i++) {
        char *rec = make_record(a->w, i, record_size(i));
        sl_req_t r;

        fake_req_init(&r, rec, strlen(rec));
        sluice_plugin.log(&fake_api, &r, a->conf);
        fake_req_done(&r);
        free(rec);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    enum { NTHR = 4, NREC = 150 };
    char path[300];
    fl_conf_t *c[NTHR];
    pthread_t th[NTHR];
    thread_arg_t args[NTHR];

    (void)state;
    snprintf(path, sizeof(path), "%s/threads.json", tmpdir);
    for (int w = 0; w < NTHR; w++) {
        c[w] = make_conf("{\"path\":\"%s\"}", path);
        assert_int_equal(sluice_plugin.init_worker(&fake_api, c[w]), 0);
        args[w] = (thread_arg_t){c[w], w, NREC};
    }
    for (int w = 0; w < NTHR; w++)
        assert_int_equal(pthread_create(&th[w], NULL, thread_main, &args[w]), 0);
    for (int w = 0; w < NTHR; w++)
        pthread_join(th[w], NULL);
    for (int w = 0; w < NTHR; w++) {
        sluice_plugin.exit_worker(&fake_api, c[w]);
        sluice_plugin.config_free(c[w]);
    }
    assert_int_equal(check_records(path, NTHR, NREC), NTHR * NREC);
}

/* logrotate: rename the file, then SIGUSR1 (a reopen generation bump). */
static void
test_rotation(void **state)
{
    char path[300], old[310];
    fl_conf_t *c;

    (void)state;
    snprintf(path, sizeof(path), "%s/rot.json", tmpdir);
    snprintf(old, sizeof(old), "%s.1", path);
    c = make_conf("{\"path\":\"%s\"}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    for (int i = 0; i < 5; i++)
        log_one(c, "{\"before\":true}", NULL);
    fl_writer_sync(c->writer);
    assert_int_equal(rename(path, old), 0);

    /* Without the signal the descriptor follows the renamed file. */
    log_one(c, "{\"before\":true}", NULL);
    fl_writer_sync(c->writer);
    assert_int_equal(count_lines(old), 6);
    assert_int_equal(access(path, F_OK), -1);

    fake_bump_reopen_generation();
    for (int i = 0; i < 3; i++)
        log_one(c, "{\"after\":true}", NULL);
    fl_writer_sync(c->writer);
    assert_int_equal(count_lines(old), 6);
    assert_int_equal(count_lines(path), 3);
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);
}

/* reopen:true opens the path for every record. */
static void
test_reopen_true(void **state)
{
    char path[300], old[310];
    fl_conf_t *c;

    (void)state;
    snprintf(path, sizeof(path), "%s/reopen.json", tmpdir);
    snprintf(old, sizeof(old), "%s.1", path);
    c = make_conf("{\"path\":\"%s\",\"reopen\":true}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    log_one(c, "{}", NULL);
    fl_writer_sync(c->writer);
    assert_int_equal(rename(path, old), 0);
    log_one(c, "{}", NULL);
    log_one(c, "{}", NULL);
    fl_writer_sync(c->writer);
    assert_int_equal(count_lines(old), 1);
    assert_int_equal(count_lines(path), 2);
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);
}

/* A missing directory: one error line per burst, then recovery. */
static void
test_missing_dir(void **state)
{
    char dir[300], path[320];
    char *err;
    fl_conf_t *c;
    fl_writer_stats_t st;

    (void)state;
    assert_int_equal(ftruncate(errfd, 0), 0);
    snprintf(dir, sizeof(dir), "%s/later", tmpdir);
    snprintf(path, sizeof(path), "%s/x.json", dir);
    c = make_conf("{\"path\":\"%s\"}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    for (int i = 0; i < 10; i++)
        log_one(c, "{\"lost\":true}", NULL);
    fl_writer_sync(c->writer);
    fl_writer_stats(c->writer, &st);
    assert_int_equal(st.failed, 10);
    assert_int_equal(st.written, 0);

    err = slurp(errpath, NULL);
    assert_non_null(err);
    assert_int_equal(count_substr(err, "\n"), 1);
    assert_non_null(strstr(err, "[error] worker 0: [file-log] failed to open the file"));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, strerror(ENOENT)));
    free(err);

    assert_int_equal(mkdir(dir, 0755), 0);
    log_one(c, "{\"kept\":true}", NULL);
    fl_writer_sync(c->writer);
    fl_writer_stats(c->writer, &st);
    assert_int_equal(st.written, 1);
    assert_int_equal(count_lines(path), 1);
    err = slurp(errpath, NULL);
    assert_non_null(strstr(err, "writing to"));
    assert_non_null(strstr(err, "again after 10 lost records"));
    free(err);
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);
}

/* The error line repeats after the interval, with the suppressed count. */
static void
test_error_rate_limit(void **state)
{
    char path[300];
    char *err;
    fl_conf_t *c;

    (void)state;
    assert_int_equal(ftruncate(errfd, 0), 0);
    fl_writer_set_limits(FL_QUEUE_LIMIT, 1);
    snprintf(path, sizeof(path), "%s/none/x.json", tmpdir);
    c = make_conf("{\"path\":\"%s\"}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    for (int i = 0; i < 4; i++)
        log_one(c, "{}", NULL);
    fl_writer_sync(c->writer);
    sleep(2);
    log_one(c, "{}", NULL);
    fl_writer_sync(c->writer);
    err = slurp(errpath, NULL);
    assert_int_equal(count_substr(err, "\n"), 2);
    assert_non_null(strstr(err, "(3 similar errors suppressed)"));
    free(err);
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);
    fl_writer_set_limits(FL_QUEUE_LIMIT, FL_ERROR_INTERVAL_S);
}

/* Disk full. */
static void
test_dev_full(void **state)
{
    char *err;
    fl_conf_t *c;
    fl_writer_stats_t st;

    (void)state;
    if (access("/dev/full", W_OK) != 0)
        skip();
    assert_int_equal(ftruncate(errfd, 0), 0);
    c = make_conf("{\"path\":\"/dev/full\"}");
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    for (int i = 0; i < 3; i++)
        log_one(c, "{\"x\":1}", NULL);
    fl_writer_sync(c->writer);
    fl_writer_stats(c->writer, &st);
    assert_int_equal(st.failed, 3);
    err = slurp(errpath, NULL);
    assert_int_equal(count_substr(err, "\n"), 1);
    assert_non_null(strstr(err, "failed to write to the file \"/dev/full\""));
    assert_non_null(strstr(err, strerror(ENOSPC)));
    free(err);
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);
}

/* A path that cannot be opened for writing: a directory in its place
 * (EISDIR, works as root too), and a read-only directory (EACCES, only
 * meaningful when not root); both recover when the cause goes away. */
static void
test_unwritable(void **state)
{
    char dir[300], path[320];
    char *err;
    fl_conf_t *c;

    (void)state;
    assert_int_equal(ftruncate(errfd, 0), 0);
    snprintf(path, sizeof(path), "%s/isdir.json", tmpdir);
    assert_int_equal(mkdir(path, 0755), 0);
    c = make_conf("{\"path\":\"%s\"}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    log_one(c, "{}", NULL);
    fl_writer_sync(c->writer);
    err = slurp(errpath, NULL);
    assert_non_null(strstr(err, strerror(EISDIR)));
    free(err);
    assert_int_equal(rmdir(path), 0);
    log_one(c, "{}", NULL);
    fl_writer_sync(c->writer);
    assert_int_equal(count_lines(path), 1);
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);

    if (geteuid() == 0)
        return; /* root may write anywhere */
    assert_int_equal(ftruncate(errfd, 0), 0);
    snprintf(dir, sizeof(dir), "%s/ro", tmpdir);
    snprintf(path, sizeof(path), "%s/x.json", dir);
    assert_int_equal(mkdir(dir, 0555), 0);
    c = make_conf("{\"path\":\"%s\"}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    log_one(c, "{}", NULL);
    fl_writer_sync(c->writer);
    err = slurp(errpath, NULL);
    assert_non_null(strstr(err, strerror(EACCES)));
    free(err);
    assert_int_equal(chmod(dir, 0755), 0);
    log_one(c, "{}", NULL);
    fl_writer_sync(c->writer);
    assert_int_equal(count_lines(path), 1);
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);
}

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct drain {
    int fd;
    size_t lines;
} drain_t;

static void *
drain_main(void *p)
{
    drain_t *d = p;
    char buf[65536];
    ssize_t n;

    while ((n = read(d->fd, buf, sizeof(buf))) > 0)
        for (ssize_t i = 0; i < n; i++)
            d->lines += buf[i] == '\n';
    return NULL;
}

/* A disk that does not move (a FIFO nobody reads): the log phase stays
 * fast, the queue stops at its limit and drops with a counted warning, and
 * everything queued is written once the disk moves again. */
static void
test_stuck_disk(void **state)
{
    char path[300];
    fl_conf_t *c;
    fl_writer_stats_t st;
    drain_t d = {-1, 0};
    pthread_t th;
    char *rec;
    double t, worst = 0;
    int pushed = 200, keep;

    (void)state;
    fl_writer_set_limits(256 * 1024, FL_ERROR_INTERVAL_S);
    snprintf(path, sizeof(path), "%s/fifo", tmpdir);
    assert_int_equal(mkfifo(path, 0644), 0);
    d.fd = open(path, O_RDONLY | O_NONBLOCK); /* lets the writer open it */
    assert_true(d.fd >= 0);
    /* A second writer end, so the reader never sees EOF before the plugin's
     * thread has opened the FIFO (it opens lazily). */
    keep = open(path, O_WRONLY);
    assert_true(keep >= 0);

    fake_reset();
    c = make_conf("{\"path\":\"%s\"}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    rec = make_record(0, 0, 10 * 1024);
    for (int i = 0; i < pushed; i++) {
        t = now_s();
        log_one(c, rec, NULL);
        t = now_s() - t;
        if (t > worst)
            worst = t;
    }
    free(rec);
    fl_writer_stats(c->writer, &st);
    print_message("stuck disk: worst log-phase time %.1f us, %llu dropped, %zu bytes pending\n",
                  worst * 1e6, (unsigned long long)st.dropped, st.pending);
    assert_true(st.dropped > 0);
    assert_true(st.pending <= 256 * 1024);
    assert_true(worst < 0.05);           /* never waits for the disk */
    assert_int_equal(fake_log_count, 1); /* one warning per burst */
    assert_non_null(strstr(fake_log_lines, "is full"));
    assert_non_null(strstr(fake_log_lines, "dropped 1 records"));

    /* Let the "disk" move again: everything queued arrives. */
    assert_int_equal(fcntl(d.fd, F_SETFL, 0), 0);
    assert_int_equal(pthread_create(&th, NULL, drain_main, &d), 0);
    sluice_plugin.exit_worker(&fake_api, c);
    /* Both writer ends closed: the reader sees EOF. */
    close(keep);
    pthread_join(th, NULL);
    close(d.fd);
    assert_int_equal(d.lines, (size_t)pushed - st.dropped);
    sluice_plugin.config_free(c);
    fl_writer_set_limits(FL_QUEUE_LIMIT, FL_ERROR_INTERVAL_S);
}

/* exit_worker with a disk that does not move gives up after the drain
 * timeout instead of keeping the worker alive forever. */
static void
test_stuck_disk_exit(void **state)
{
    char path[300];
    char *err, *rec;
    fl_conf_t *c;
    drain_t d = {-1, 0};
    int keep;
    double t;

    (void)state;
    assert_int_equal(ftruncate(errfd, 0), 0);
    fl_writer_set_drain_timeout(1);
    snprintf(path, sizeof(path), "%s/fifo2", tmpdir);
    assert_int_equal(mkfifo(path, 0644), 0);
    d.fd = open(path, O_RDONLY | O_NONBLOCK);
    keep = open(path, O_WRONLY);
    assert_true(d.fd >= 0 && keep >= 0);

    c = make_conf("{\"path\":\"%s\"}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    rec = make_record(0, 0, 10 * 1024);
    for (int i = 0; i < 20; i++) /* 200 KB > the 64 KB pipe */
        log_one(c, rec, NULL);
    free(rec);
    t = now_s();
    sluice_plugin.exit_worker(&fake_api, c);
    t = now_s() - t;
    assert_true(t >= 0.9 && t < 5);
    err = slurp(errpath, NULL);
    assert_non_null(strstr(err, "giving up on"));
    assert_non_null(strstr(err, "bytes not written after 1 s"));
    free(err);

    /* Unblock the abandoned thread and wait until it closed the FIFO. */
    close(keep);
    assert_int_equal(fcntl(d.fd, F_SETFL, 0), 0);
    drain_main(&d);
    close(d.fd);
    assert_int_equal(d.lines, 20);
    sluice_plugin.config_free(c);
    fl_writer_set_drain_timeout(FL_DRAIN_TIMEOUT_S);
}

/* What the event loop pays per record: the log phase only enqueues. */
static void
test_loop_cost(void **state)
{
    enum { N = 20000 };
    char path[300];
    fl_conf_t *c;
    char *rec;
    double t;

    (void)state;
    snprintf(path, sizeof(path), "%s/bench.json", tmpdir);
    c = make_conf("{\"path\":\"%s\"}", path);
    assert_int_equal(sluice_plugin.init_worker(&fake_api, c), 0);
    rec = make_record(0, 0, 1500);
    t = now_s();
    for (int i = 0; i < N; i++) {
        sl_req_t r;

        fake_req_init(&r, rec, strlen(rec));
        sluice_plugin.log(&fake_api, &r, c);
        fake_req_done(&r);
    }
    t = now_s() - t;
    fl_writer_sync(c->writer);
    print_message("loop cost: %.2f us per 1.5 KB record (%d records)\n", t * 1e6 / N, N);
    assert_true(t * 1e6 / N < 100.0); /* generous for sanitizer builds */
    free(rec);
    sluice_plugin.exit_worker(&fake_api, c);
    sluice_plugin.config_free(c);
    assert_int_equal(count_lines(path), N);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_phase, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shared_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_true, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_rate_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dev_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unwritable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_disk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stuck_disk_exit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_loop_cost, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
