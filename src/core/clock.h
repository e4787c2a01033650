/* Time helpers: monotonic microseconds for durations, wall milliseconds for records. */
#ifndef SL_CLOCK_H
#define SL_CLOCK_H

#include <stdint.h>

int64_t sl_now_us(void);      /* CLOCK_MONOTONIC */
int64_t sl_wall_ms(void);     /* CLOCK_REALTIME, Unix epoch */

#endif
