/* Per-deployment time to first byte: a peak-EWMA (jumps up at once on a slow answer,
 * decays back over about ten seconds) for the latency strategy, and a log histogram
 * whose p95 sets the hedging delay. */
#include <math.h>

#include "route/internal.h"

#define EWMA_TAU_US  10e6 /* seconds of memory: long enough to smooth, short enough to react */
#define HIST_DECAY_N 1024 /* halve the histogram at this many samples: recent traffic counts */

/* Bucket b holds [2^(b/4), 2^((b+1)/4)) milliseconds; 4 a doubling is 19% resolution. */
static int bucket_of(int64_t us)
{
    double ms = (double)us / 1000.0;
    if (ms < 1.0)
        return 0;
    int b = (int)(4.0 * log2(ms)) + 1;
    return b < LATENCY_BUCKETS ? b : LATENCY_BUCKETS - 1;
}

static int64_t bucket_upper_us(int b)
{
    return (int64_t)(exp2((double)b / 4.0) * 1000.0);
}

static void hist_add(struct latency *l, int64_t us)
{
    if (l->samples >= HIST_DECAY_N) {
        l->samples = 0;
        for (int i = 0; i < LATENCY_BUCKETS; i++) {
            l->hist[i] /= 2;
            l->samples += l->hist[i];
        }
    }
    l->hist[bucket_of(us)]++;
    l->samples++;
}

void latency_add(struct latency *l, int64_t ttft_us, int64_t now_us)
{
    double x = (double)(ttft_us > 0 ? ttft_us : 1);
    if (l->last_us == 0 || x > l->ewma_us) {
        l->ewma_us = x; /* the peak: a slow answer counts in full at once */
    } else {
        double dt = (double)(now_us > l->last_us ? now_us - l->last_us : 0);
        double w = exp(-dt / EWMA_TAU_US);
        l->ewma_us = l->ewma_us * w + x * (1.0 - w);
    }
    l->last_us = now_us ? now_us : 1;
    hist_add(l, ttft_us);
}

double latency_cost(const struct latency *l, int in_flight)
{
    return l->ewma_us * (double)(in_flight + 1);
}

int64_t latency_p95(const struct latency *l)
{
    if (l->samples < LATENCY_MIN_SAMPLES)
        return -1;
    uint32_t want = l->samples - l->samples / 20, seen = 0;
    for (int b = 0; b < LATENCY_BUCKETS; b++) {
        seen += l->hist[b];
        if (seen >= want)
            return bucket_upper_us(b);
    }
    return bucket_upper_us(LATENCY_BUCKETS - 1);
}
