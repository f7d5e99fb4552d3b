/* time.h - clocks: wall time in microseconds, monotonic time in ms. */

#ifndef SL_TIME_H
#define SL_TIME_H

#include <stdint.h>

/* Wall clock, microseconds since the epoch. */
int64_t sl_now_us(void);

/* Monotonic clock (CLOCK_MONOTONIC), milliseconds: for timeouts, expiries
 * and intervals that must not jump with the wall clock. */
int64_t sl_mono_ms(void);

#endif
