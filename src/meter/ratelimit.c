/* The sliding minute of the rate limits (see ratelimit.h). */
#include "meter/ratelimit.h"

#include <string.h>

/* Moves the window to now_s: the slots of seconds that left the minute are emptied and
 * taken off the total. */
static int64_t advance(struct sl_rate_window *w, int64_t now_s)
{
    if (now_s <= w->last)
        return w->last;
    if (now_s - w->last >= SL_RATE_SLOTS) {
        memset(w->n, 0, sizeof(w->n));
        memset(w->sec, 0, sizeof(w->sec));
        w->total = 0;
    } else {
        for (int64_t s = w->last + 1; s <= now_s; s++) {
            int i = (int)(s % SL_RATE_SLOTS);
            w->total -= w->n[i];
            w->n[i] = 0;
            w->sec[i] = s;
        }
    }
    w->sec[now_s % SL_RATE_SLOTS] = now_s;
    w->last = now_s;
    return now_s;
}

int64_t sl_rate_sum(struct sl_rate_window *w, int64_t now_s)
{
    advance(w, now_s);
    return w->total;
}

void sl_rate_add(struct sl_rate_window *w, int64_t now_s, int64_t v)
{
    now_s = advance(w, now_s);
    w->n[now_s % SL_RATE_SLOTS] += v;
    w->total += v;
}

void sl_rate_correct(struct sl_rate_window *w, int64_t sec, int64_t now_s, int64_t delta)
{
    now_s = advance(w, now_s);
    int i = (int)(sec % SL_RATE_SLOTS);
    if (sec <= now_s - SL_RATE_SLOTS || sec > now_s || w->sec[i] != sec)
        return; /* out of the window already: nothing left to correct */
    if (w->n[i] + delta < 0)
        delta = -w->n[i];
    w->n[i] += delta;
    w->total += delta;
}

int64_t sl_rate_wait_ms(struct sl_rate_window *w, int64_t now_ms, int64_t target)
{
    int64_t now_s = advance(w, now_ms / 1000), sum = w->total;
    if (sum <= target)
        return 0;
    if (now_ms < now_s * 1000)
        now_ms = now_s * 1000;
    /* The oldest second leaves first: at (sec + 60) s it no longer counts. */
    int64_t s = now_s - SL_RATE_SLOTS + 1;
    for (int i = (int)((now_s + 1) % SL_RATE_SLOTS), k = 0; k < SL_RATE_SLOTS; k++) {
        if (w->sec[i] == s && (sum -= w->n[i]) <= target)
            return (s + SL_RATE_SLOTS) * 1000 - now_ms;
        s++;
        i = i + 1 == SL_RATE_SLOTS ? 0 : i + 1;
    }
    return SL_RATE_SLOTS * 1000;
}
