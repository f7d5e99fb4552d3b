/* time.h - clocks: wall time in microseconds, monotonic time in ms, and a
 * loop thread's clocks read once per loop turn. */

#ifndef SL_TIME_H
#define SL_TIME_H

#include <stdint.h>

/* Wall clock, microseconds since the epoch. */
int64_t sl_now_us(void);

/* Monotonic clock (CLOCK_MONOTONIC), milliseconds: for timeouts, expiries
 * and intervals that must not jump with the wall clock. */
int64_t sl_mono_ms(void);

/* A loop thread's clocks read at most once per loop turn, as nginx caches
 * its time per event cycle: after sl_turn_clock_on() on a thread, the
 * first sl_turn_now_us() / sl_turn_mono_ns() of a turn reads the clock and
 * the later ones of that turn reuse the reading, until sl_turn_clock_tick()
 * (the loop calls it before it polls and after its I/O callbacks).  On a
 * thread that never called sl_turn_clock_on they read the clock each time.
 * A request's time points on the worker's loop (about ten clock reads of
 * ~65 ns each on a paravirtualised clock) come from here. */
void sl_turn_clock_on(void);
void sl_turn_clock_tick(void);
int64_t sl_turn_now_us(void);   /* wall clock, microseconds since the epoch */
uint64_t sl_turn_mono_ns(void); /* CLOCK_MONOTONIC, nanoseconds */

/* Reads that brought bytes on this thread's loop: the read callbacks count
 * them (sl_turn_io), the worker's busy poll asks whether a turn had any
 * (sl_turn_io_count's value moved). */
void sl_turn_io(void);
uint64_t sl_turn_io_count(void);

#endif
