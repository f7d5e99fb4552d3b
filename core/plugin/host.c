/* host.c - the plugin host's per-process state and api->post: a
 * mutex-protected queue drained on the worker loop by a uv_async wake-up. */

#include <stdlib.h>

#include "plugin/host.h"
#include "plugin/platform.h"

typedef struct sl_post {
    struct sl_post *next;
    void (*fn)(const sl_api_t *, void *);
    void *arg;
} sl_post_t;

static volatile uint64_t reopen_gen;

static struct {
    int ready;
    int worker_id;
    uv_loop_t *loop;
    sl_uppool_t *uppool;
    uv_async_t async;
    uv_mutex_t lock;
    sl_post_t *head, *tail;
} host = {.worker_id = -1};

static void
run_posts(uv_async_t *a)
{
    sl_post_t *p, *next;

    (void)a;
    uv_mutex_lock(&host.lock);
    p = host.head;
    host.head = host.tail = NULL;
    uv_mutex_unlock(&host.lock);
    for (; p; p = next) {
        next = p->next;
        p->fn(&sl_api, p->arg);
        free(p);
    }
}

int
sl_host_init(uv_loop_t *loop, int worker_id)
{
    if (uv_mutex_init(&host.lock) != 0)
        return -1;
    if (uv_async_init(loop, &host.async, run_posts) != 0) {
        uv_mutex_destroy(&host.lock);
        return -1;
    }
    host.worker_id = worker_id;
    host.loop = loop;
    host.ready = 1;
    return 0;
}

void
sl_host_shutdown(void)
{
    if (!host.ready)
        return;
    run_posts(&host.async);
    sl_wtimers_shutdown();
    sl_callouts_cancel_all(NULL);
    uv_close((uv_handle_t *)&host.async, NULL);
    uv_mutex_destroy(&host.lock);
    host.ready = 0; /* a test host may set up another */
    host.worker_id = -1;
    host.loop = NULL;
    host.uppool = NULL;
}

int
sl_host_worker_id(void)
{
    return host.worker_id;
}

uv_loop_t *
sl_host_loop(void)
{
    return host.ready ? host.loop : NULL;
}

void
sl_host_set_uppool(sl_uppool_t *pool)
{
    host.uppool = pool;
}

sl_uppool_t *
sl_host_uppool(void)
{
    return host.ready ? host.uppool : NULL;
}

int
sl_host_post(void (*fn)(const sl_api_t *api, void *arg), void *arg)
{
    sl_post_t *p;

    if (!host.ready || fn == NULL)
        return -1;
    p = malloc(sizeof(*p));
    if (p == NULL)
        return -1;
    p->next = NULL;
    p->fn = fn;
    p->arg = arg;
    uv_mutex_lock(&host.lock);
    if (host.tail)
        host.tail->next = p;
    else
        host.head = p;
    host.tail = p;
    uv_mutex_unlock(&host.lock);
    uv_async_send(&host.async);
    return 0;
}

void
sl_host_reopen_logs(void)
{
    __atomic_add_fetch(&reopen_gen, 1, __ATOMIC_RELAXED);
}

uint64_t
sl_host_reopen_gen(void)
{
    return __atomic_load_n(&reopen_gen, __ATOMIC_RELAXED);
}
