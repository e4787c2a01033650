/* Routing decision cost: sl_route_plan over a group of 100 deployments, per strategy,
 * with warm health state (latencies observed, a few breakers open, one rate limited).
 * Also the single-thread cost of one acquire + observe pair. Prints a markdown table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"
#include "core/buf.h"
#include "route/route.h"

#define DEPLOYMENTS 100
#define ITERATIONS  100000
#define ROUNDS      5 /* the best round is reported: a shared machine only adds time */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void add(struct sl_buf *b, const char *fmt, int i)
{
    if (sl_buf_printf(b, fmt, i, i, i) < 0) {
        fprintf(stderr, "config too large\n");
        exit(1);
    }
}

/* 100 models with prices and context windows, and one group per strategy over all. */
static struct sl_config *build_config(void)
{
    struct sl_buf y = SL_BUF_INIT(1 << 20);
    sl_buf_puts(&y, "providers:\n  - {name: p, kind: openai, base_url: http://127.0.0.1:1/v1}\n"
                    "models:\n");
    for (int i = 0; i < DEPLOYMENTS; i++)
        add(&y, "  - {name: m%d, provider: p, context_window: %d000, price_in: 0.%d1, "
                "price_out: 1}\n", i);
    const char *strategies[] = {"fallback", "weighted", "latency", "cost", "tiers"};
    sl_buf_puts(&y, "groups:\n");
    for (int s = 0; s < 5; s++) {
        sl_buf_printf(&y, "  - name: %s\n    strategy: %s\n", strategies[s], strategies[s]);
        if (s == 4) {
            const char *tiers[] = {"simple", "medium", "complex", "long"};
            sl_buf_puts(&y, "    tiers:\n");
            for (int t = 0; t < 4; t++) {
                sl_buf_printf(&y, "      %s: [", tiers[t]);
                for (int i = t * 25; i < t * 25 + 25; i++)
                    sl_buf_printf(&y, "%sm%d", i % 25 ? ", " : "", i);
                sl_buf_puts(&y, "]\n");
            }
            continue;
        }
        sl_buf_puts(&y, "    deployments: [");
        for (int i = 0; i < DEPLOYMENTS; i++)
            sl_buf_printf(&y, "%sm%d", i ? ", " : "", i);
        sl_buf_puts(&y, "]\n");
        if (s == 1) {
            sl_buf_puts(&y, "    weights: [");
            for (int i = 0; i < DEPLOYMENTS; i++)
                sl_buf_printf(&y, "%s%d", i ? ", " : "", 1 + i % 7);
            sl_buf_puts(&y, "]\n");
        }
    }
    struct sl_config *cfg = NULL;
    struct sl_buf errors = SL_BUF_INIT(1 << 16);
    if (sl_config_parse(y.ptr, y.len, "bench.yaml", &cfg, &errors)) {
        fprintf(stderr, "%s", errors.ptr);
        exit(1);
    }
    sl_buf_release(&errors);
    sl_buf_release(&y);
    return cfg;
}

static void warm(struct sl_route_health *h, int64_t now)
{
    for (int i = 0; i < DEPLOYMENTS; i++) {
        for (int k = 0; k < 30; k++) {
            struct sl_route_outcome o = {SL_OUTCOME_OK, 200, 1, 50000 + i * 3000 + k * 100, -1};
            sl_route_observe(h, (size_t)i, &o, now + k);
        }
    }
    for (int i = 0; i < DEPLOYMENTS; i += 20) /* every 20th: breaker open */
        for (int k = 0; k < 6; k++) {
            struct sl_route_outcome o = {SL_OUTCOME_CONNECT, 0, 1, 0, -1};
            sl_route_observe(h, (size_t)i + 1, &o, now + 100);
        }
    struct sl_route_outcome limited = {SL_OUTCOME_HTTP, 429, 1, 0, 60000};
    sl_route_observe(h, 7, &limited, now + 100);
}

static double bench_plan(const struct sl_config *cfg, const struct sl_group_cfg *g,
                         struct sl_route_health *h, int64_t now, size_t *n)
{
    static struct sl_route_plan plan;
    double t0 = now_s();
    for (int i = 0; i < ITERATIONS; i++) {
        struct sl_route_request req = {.prompt_tokens = 200 + (i % 4) * 3000, .max_tokens = 500,
                                       .stream = 1, .seed = (uint64_t)i};
        sl_route_plan(cfg, g, h, &req, now, &plan);
        *n += plan.n;
    }
    return (now_s() - t0) / ITERATIONS * 1e6;
}

static double bench_observe(struct sl_route_health *h, int64_t now)
{
    double t0 = now_s();
    for (int i = 0; i < ITERATIONS; i++) {
        struct sl_route_outcome o = {SL_OUTCOME_OK, 200, 1, 80000 + i % 1000, -1};
        size_t m = 50 + (size_t)(i % 10);
        if (sl_route_acquire(h, m, 1, now + i) == 0)
            sl_route_observe(h, m, &o, now + i);
    }
    return (now_s() - t0) / ITERATIONS * 1e6;
}

int main(void)
{
    struct sl_config *cfg = build_config();
    struct sl_route_health *h = sl_route_health_new(cfg);
    int64_t now = INT64_C(1000000000);
    size_t sink = 0;
    if (!h)
        return 1;
    warm(h, now);
    printf("| strategy | µs per decision (%d deployments) | candidates |\n|---|---|---|\n",
           DEPLOYMENTS);
    for (size_t i = 0; i < cfg->ngroups; i++) {
        double best = 1e9;
        size_t n = 0;
        for (int r = 0; r < ROUNDS; r++) {
            n = 0;
            double us = bench_plan(cfg, &cfg->groups[i], h, now + 1000, &n);
            best = us < best ? us : best;
        }
        printf("| %s | %.2f | %.0f |\n", cfg->groups[i].name, best, (double)n / ITERATIONS);
        sink += n;
    }
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        double us = bench_observe(h, now + 2000 + r * ITERATIONS);
        best = us < best ? us : best;
    }
    printf("| acquire + observe (one attempt) | %.3f | |\n", best);
    sl_route_health_free(h);
    sl_config_free(cfg);
    return sink == 0;
}
