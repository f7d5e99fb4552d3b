/* redis_uv.c - hiredis's event hooks on a libuv loop, cheaper than
 * hiredis's adapter under load.
 *
 * hiredis asks for reading after every read and for writing after every
 * command it queues.  Its adapter answers each request with uv_poll_start,
 * which on Linux removes the fd from epoll at once and adds it back at the
 * next poll: two epoll_ctl calls per command, and two more per turn to
 * watch for writability and stop.  Here the poll is changed only when the
 * events it should watch change, and once connected, queued commands do not
 * wait for writability at all: an idle handle writes them all at the start
 * of the next loop turn (an active idle handle keeps that turn from
 * blocking), so the commands of every request that a turn served go out in
 * one write.  Only a write the socket could not take whole (or a connect
 * still in progress) waits on the poll for writability. */

#include <stdlib.h>

#include <hiredis/hiredis.h>

#include "redis_uv.h"

typedef struct rl_uv {
    redisAsyncContext *ac; /* NULL once hiredis has let go (cleanup) */
    uv_poll_t poll;
    uv_idle_t flush; /* writes what was queued, once per loop turn */
    int events;      /* UV_READABLE | UV_WRITABLE: what the poll watches */
    int flushing;    /* inside the flush's write */
    int open;        /* handles not yet closed */
} rl_uv_t;

static void
on_poll(uv_poll_t *h, int status, int events)
{
    rl_uv_t *p = h->data;

    if (status != 0) { /* libuv stopped the poll: hiredis's read or write sees the error */
        p->events = 0;
        events = UV_READABLE | UV_WRITABLE;
    }
    if (p->ac != NULL && (events & UV_READABLE))
        redisAsyncHandleRead(p->ac);
    if (p->ac != NULL && (events & UV_WRITABLE))
        redisAsyncHandleWrite(p->ac);
}

/* The poll watches `events` (0: stopped). */
static void
watch(rl_uv_t *p, int events)
{
    if (events == p->events)
        return;
    p->events = events;
    if (events)
        uv_poll_start(&p->poll, events, on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void
on_flush(uv_idle_t *h)
{
    rl_uv_t *p = h->data;

    uv_idle_stop(h);
    if (p->ac == NULL)
        return;
    p->flushing = 1;
    redisAsyncHandleWrite(p->ac); /* may free ac: cleanup clears p->ac */
    p->flushing = 0;
}

static void
add_read(void *arg)
{
    rl_uv_t *p = arg;

    watch(p, p->events | UV_READABLE);
}

static void
del_read(void *arg)
{
    rl_uv_t *p = arg;

    watch(p, p->events & ~UV_READABLE);
}

/* Connected and not inside the flush: the next turn's flush writes it.
 * Else (connect in progress, or the socket took only part): wait until
 * the socket is writable. */
static void
add_write(void *arg)
{
    rl_uv_t *p = arg;

    if (p->ac != NULL && (p->ac->c.flags & REDIS_CONNECTED) && !p->flushing &&
        !(p->events & UV_WRITABLE))
        uv_idle_start(&p->flush, on_flush);
    else
        watch(p, p->events | UV_WRITABLE);
}

static void
del_write(void *arg)
{
    rl_uv_t *p = arg;

    uv_idle_stop(&p->flush);
    watch(p, p->events & ~UV_WRITABLE);
}

static void
on_closed(uv_handle_t *h)
{
    rl_uv_t *p = h->data;

    if (--p->open == 0)
        free(p);
}

static void
cleanup(void *arg)
{
    rl_uv_t *p = arg;

    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, on_closed);
    uv_close((uv_handle_t *)&p->flush, on_closed);
}

int
rl_uv_attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    rl_uv_t *p;

    if (ac->ev.data != NULL)
        return REDIS_ERR;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return REDIS_ERR;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return REDIS_ERR;
    }
    uv_idle_init(loop, &p->flush); /* cannot fail */
    p->poll.data = p;
    p->flush.data = p;
    p->open = 2;
    p->ac = ac;
    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return REDIS_OK;
}
