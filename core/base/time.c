/* time.c - clocks, and the loop turn's cached readings. */

#include <stddef.h>
#include <sys/time.h>
#include <time.h>

#include "base/time.h"

int64_t
sl_now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000000 + tv.tv_usec;
}

int64_t
sl_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* This thread's readings of the current loop turn. */
static _Thread_local struct {
    int on;                   /* sl_turn_clock_on: readings may be reused */
    int have_wall, have_mono; /* read in this turn */
    int64_t wall_us;
    uint64_t mono_ns;
    uint64_t io; /* sl_turn_io */
} turn;

void
sl_turn_clock_on(void)
{
    turn.on = 1;
    sl_turn_clock_tick();
}

void
sl_turn_clock_tick(void)
{
    turn.have_wall = turn.have_mono = 0;
}

int64_t
sl_turn_now_us(void)
{
    if (!turn.have_wall) {
        turn.wall_us = sl_now_us();
        turn.have_wall = turn.on;
    }
    return turn.wall_us;
}

uint64_t
sl_turn_mono_ns(void)
{
    if (!turn.have_mono) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        turn.mono_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        turn.have_mono = turn.on;
    }
    return turn.mono_ns;
}

void
sl_turn_io(void)
{
    turn.io++;
}

uint64_t
sl_turn_io_count(void)
{
    return turn.io;
}
