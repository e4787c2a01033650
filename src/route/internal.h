/* Private to src/route: the breaker and latency records each health entry holds, and
 * the strategy vtable (one strategy a file) the planner dispatches on. */
#ifndef SL_ROUTE_INTERNAL_H
#define SL_ROUTE_INTERNAL_H

#include <stdint.h>

#include "route/route.h"

/* ---- circuit breaker (breaker.c): no locking, the health entry's mutex covers it ---- */

#define BREAKER_BUCKETS 10 /* the window slides a tenth at a time */

struct breaker {
    struct sl_breaker_cfg cfg;
    enum sl_route_breaker state;
    int64_t open_until_us;   /* OPEN -> HALF_OPEN */
    int64_t half_since_us;   /* when it turned half-open */
    int probe_out;           /* a half-open probe is in flight */
    int64_t probe_since_us;
    int mode;                /* the traffic mode it opened on: probes must use it */
    int consecutive;
    uint32_t total[BREAKER_BUCKETS], failed[BREAKER_BUCKETS];
    int64_t bucket;          /* absolute index (time / width) of the newest bucket */
};

void breaker_init(struct breaker *b, const struct sl_breaker_cfg *cfg);
/* 0: may be tried; 1: may be tried as the half-open probe; -1: not now. claim takes the
 * probe. */
int breaker_allow(struct breaker *b, int stream, int64_t now_us, int claim);
void breaker_record(struct breaker *b, int failed, int stream, int64_t now_us);
void breaker_release_probe(struct breaker *b);
void breaker_window(struct breaker *b, int64_t now_us, uint32_t *total, uint32_t *failed);

/* ---- latency statistics (latency.c) ------------------------------------------------- */

#define LATENCY_BUCKETS 72 /* 4 a doubling from 1 ms: up to ~4.8 hours */

struct latency {
    double ewma_us;      /* peak-EWMA of time to first byte */
    int64_t last_us;     /* when ewma_us was last updated */
    uint32_t hist[LATENCY_BUCKETS];
    uint32_t samples;    /* in hist, after decay */
};

void latency_add(struct latency *l, int64_t ttft_us, int64_t now_us);
/* The peak-EWMA cost: ewma * (in_flight + 1); 0 before any sample (explored first). */
double latency_cost(const struct latency *l, int in_flight);
/* p95 in microseconds, or -1 with fewer than LATENCY_MIN_SAMPLES. */
#define LATENCY_MIN_SAMPLES 20
int64_t latency_p95(const struct latency *l);

/* ---- health entries (health.c) ------------------------------------------------------ */

/* What the planner needs of one deployment, read under its lock. */
struct health_view {
    int allow;           /* breaker_allow() without claiming */
    int limited;         /* rate limited now */
    int64_t limited_until_us;
    double cost;         /* latency_cost() */
};

void health_view(struct sl_route_health *h, size_t model, int stream, int64_t now_us,
                 struct health_view *out);
/* latency_p95() of the deployment, read under its lock. */
int64_t health_p95(struct sl_route_health *h, size_t model);

/* ---- strategies (strategy_*.c) ------------------------------------------------------ */

/* A deployment that passed every check, with what the strategies order by. */
struct member {
    uint32_t pos;   /* in g->members */
    uint32_t model; /* in cfg->models */
    uint8_t probe;
    uint8_t tier;
    double key;     /* strategy-specific: latency cost, price; lower is better */
};

struct plan_ctx {
    const struct sl_config *cfg;
    const struct sl_group_cfg *g;
    const struct sl_route_request *req;
    uint64_t rng;
    enum sl_tier tier;
};

/* Reorders m[0..n) in place, best first. May also fill each member's key and tier. */
struct strategy {
    const char *name;
    void (*order)(struct plan_ctx *ctx, struct member *m, size_t n);
};

extern const struct strategy sl_route_fallback, sl_route_weighted, sl_route_latency,
    sl_route_cost, sl_route_tiers;

/* Sorts by key, lower first; ties keep listed order. */
void members_sort(struct member *m, size_t n);

/* splitmix64: tiny, fast, and every seed gives a full-period stream. */
static inline uint64_t route_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform in [0, n) for n > 0; the modulo bias is below 2^-40 for n <= 2^24. */
static inline uint64_t route_below(uint64_t *s, uint64_t n)
{
    return route_rand(s) % n;
}

#endif
