/* A circuit breaker per deployment: opens on an error rate over a sliding window (only
 * once enough requests were seen, so a few scattered errors never trip it) or on N
 * failures in a row; after a cooldown it lets one probe through, in the mode it failed in. */
#include <string.h>

#include "route/internal.h"

void breaker_init(struct breaker *b, const struct sl_breaker_cfg *cfg)
{
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
}

static int64_t bucket_width_us(const struct breaker *b)
{
    int64_t w = (int64_t)b->cfg.window_ms * 1000 / BREAKER_BUCKETS;
    return w > 0 ? w : 1;
}

/* Zeroes the buckets that slid out of the window since the last call. Times that go
 * backwards (threads reporting out of order) land in the newest bucket. */
static void slide(struct breaker *b, int64_t now_us)
{
    int64_t idx = now_us / bucket_width_us(b);
    if (idx <= b->bucket)
        return;
    int64_t from = b->bucket + 1;
    if (idx - from >= BREAKER_BUCKETS)
        from = idx - BREAKER_BUCKETS + 1;
    for (int64_t k = from; k <= idx; k++) {
        b->total[k % BREAKER_BUCKETS] = 0;
        b->failed[k % BREAKER_BUCKETS] = 0;
    }
    b->bucket = idx;
}

void breaker_window(struct breaker *b, int64_t now_us, uint32_t *total, uint32_t *failed)
{
    slide(b, now_us);
    *total = *failed = 0;
    for (int i = 0; i < BREAKER_BUCKETS; i++) {
        *total += b->total[i];
        *failed += b->failed[i];
    }
}

static void reset_counts(struct breaker *b)
{
    memset(b->total, 0, sizeof(b->total));
    memset(b->failed, 0, sizeof(b->failed));
    b->consecutive = 0;
}

static void trip(struct breaker *b, int stream, int64_t now_us)
{
    b->state = SL_BREAKER_OPEN;
    b->open_until_us = now_us + (int64_t)b->cfg.cooldown_ms * 1000;
    b->mode = stream;
    b->probe_out = 0;
}

static void close_breaker(struct breaker *b)
{
    b->state = SL_BREAKER_CLOSED;
    b->probe_out = 0;
    reset_counts(b); /* old failures must not re-trip it on the next one */
}

static int should_trip(struct breaker *b, int64_t now_us)
{
    uint32_t total, failed;
    if (b->cfg.consecutive > 0 && b->consecutive >= b->cfg.consecutive)
        return 1;
    breaker_window(b, now_us, &total, &failed);
    return total >= (uint32_t)b->cfg.min_requests &&
           (double)failed >= b->cfg.error_rate * (double)total;
}

/* A probe that never reports (its request vanished) frees its slot after a cooldown,
 * and a half-open breaker that saw no traffic of its mode for two cooldowns takes a
 * probe of the other: otherwise either would keep the deployment out forever. */
int breaker_allow(struct breaker *b, int stream, int64_t now_us, int claim)
{
    int64_t cooldown_us = (int64_t)b->cfg.cooldown_ms * 1000;
    if (b->state == SL_BREAKER_CLOSED)
        return 0;
    if (b->state == SL_BREAKER_OPEN) {
        if (now_us < b->open_until_us)
            return -1;
        b->state = SL_BREAKER_HALF_OPEN;
        b->half_since_us = b->open_until_us;
    }
    if (b->probe_out && now_us - b->probe_since_us < cooldown_us)
        return -1;
    if (stream != b->mode && now_us - b->half_since_us < 2 * cooldown_us)
        return -1;
    if (claim) {
        b->probe_out = 1;
        b->probe_since_us = now_us;
    }
    return 1;
}

void breaker_release_probe(struct breaker *b)
{
    b->probe_out = 0;
}

void breaker_record(struct breaker *b, int failed, int stream, int64_t now_us)
{
    slide(b, now_us);
    b->total[b->bucket % BREAKER_BUCKETS]++;
    b->failed[b->bucket % BREAKER_BUCKETS] += failed != 0;
    b->consecutive = failed ? b->consecutive + 1 : 0;
    if (b->state == SL_BREAKER_HALF_OPEN) {
        if (failed)
            trip(b, stream, now_us);
        else
            close_breaker(b);
    } else if (b->state == SL_BREAKER_CLOSED && failed && should_trip(b, now_us)) {
        trip(b, stream, now_us);
    }
    /* OPEN: late reports of attempts started before it opened change nothing. */
}
