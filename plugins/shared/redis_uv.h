/* redis_uv.h - hiredis's event hooks on the worker's libuv loop, in place
 * of hiredis's own libuv adapter (hiredis/adapters/libuv.h): the poll's
 * events change only when what hiredis waits for changes, and the commands
 * of one loop turn go out in one write. */

#ifndef SL_REDIS_UV_H
#define SL_REDIS_UV_H

#include <uv.h>

#include <hiredis/async.h>

/* Drive ac on loop until hiredis frees it (its cleanup hook closes the
 * handles).  REDIS_OK, or REDIS_ERR (out of memory, a bad fd) with ac left
 * unattached: the caller frees it with redisAsyncFree. */
int rl_uv_attach(redisAsyncContext *ac, uv_loop_t *loop);

#endif
