/* The sliding minute of the rate limits (see ratelimit.h). */
#include "meter/ratelimit.h"

static int live(const struct sl_rate_window *w, int i, int64_t now_s)
{
    return w->sec[i] > now_s - SL_RATE_SLOTS && w->sec[i] <= now_s;
}

int64_t sl_rate_sum(const struct sl_rate_window *w, int64_t now_s)
{
    int64_t sum = 0;
    for (int i = 0; i < SL_RATE_SLOTS; i++)
        if (live(w, i, now_s))
            sum += w->n[i];
    return sum;
}

void sl_rate_add(struct sl_rate_window *w, int64_t now_s, int64_t v)
{
    int i = (int)(now_s % SL_RATE_SLOTS);
    if (w->sec[i] != now_s) {
        w->sec[i] = now_s;
        w->n[i] = 0;
    }
    w->n[i] += v;
}

void sl_rate_correct(struct sl_rate_window *w, int64_t sec, int64_t now_s, int64_t delta)
{
    int i = (int)(sec % SL_RATE_SLOTS);
    if (sec <= now_s - SL_RATE_SLOTS || w->sec[i] != sec)
        return; /* out of the window already: nothing left to correct */
    w->n[i] = w->n[i] + delta > 0 ? w->n[i] + delta : 0;
}

int64_t sl_rate_wait_ms(const struct sl_rate_window *w, int64_t now_ms, int64_t target)
{
    int64_t now_s = now_ms / 1000, sum = sl_rate_sum(w, now_s);
    /* The oldest second leaves first: at (sec + 60) s it no longer counts. */
    for (int64_t s = now_s - SL_RATE_SLOTS + 1; s <= now_s && sum > target; s++) {
        int i = (int)(s % SL_RATE_SLOTS);
        if (w->sec[i] != s)
            continue;
        sum -= w->n[i];
        if (sum <= target)
            return (s + SL_RATE_SLOTS) * 1000 - now_ms;
    }
    return sum > target ? SL_RATE_SLOTS * 1000 : 0;
}
