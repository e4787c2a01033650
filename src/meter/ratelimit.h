/* A sliding minute in 60 one-second slots: requests or tokens counted over the last
 * 60 seconds, exact to the second, with a running total so reading it is O(1) (slots
 * that leave the minute are subtracted as time moves on). Not locked: the govern
 * table's lock guards it. Times that go backwards count as the latest one seen. */
#ifndef SL_RATELIMIT_H
#define SL_RATELIMIT_H

#include <stdint.h>

#define SL_RATE_SLOTS 60

struct sl_rate_window {
    int64_t sec[SL_RATE_SLOTS]; /* the second (Unix) each slot counts */
    int64_t n[SL_RATE_SLOTS];
    int64_t total;              /* of the slots in the minute up to last */
    int64_t last;               /* the latest second seen */
};

/* What was counted in the 60 seconds up to and including now_s. */
int64_t sl_rate_sum(struct sl_rate_window *w, int64_t now_s);

/* Counts v at now_s. */
void sl_rate_add(struct sl_rate_window *w, int64_t now_s, int64_t v);

/* Adds delta (may be negative; a slot never goes below 0) to what was counted at
 * sec, when that second is still in the window at now_s. */
void sl_rate_correct(struct sl_rate_window *w, int64_t sec, int64_t now_s, int64_t delta);

/* Milliseconds from now_ms until the window's sum is at most target (0 when it is
 * already); when the sum stays above target for the whole minute, 60000. */
int64_t sl_rate_wait_ms(struct sl_rate_window *w, int64_t now_ms, int64_t target);

#endif
