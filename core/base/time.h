/* time.h - clocks: wall time in microseconds. */

#ifndef SL_TIME_H
#define SL_TIME_H

#include <stdint.h>

/* Wall clock, microseconds since the epoch. */
int64_t sl_now_us(void);

#endif
