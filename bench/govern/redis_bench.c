/* Admit + settle latency with the counters in this process (memory) and in Redis
 * (govern.backend: redis://), one request at a time from one thread, so each figure is
 * what one request pays: for Redis one round trip per admit and one per settle. Each
 * request is under 3 scopes as in govern_bench.c: a key (of 10,000) with a monthly
 * budget, rpm and tpm, a tag budget, and a model with a concurrency cap.
 * Usage: redis_bench URL [PAIRS]  (URL: redis://HOST:PORT/DB). Prints a markdown table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "meter/govern.h"

#define KEYS 10000

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void run(const char *label, struct sl_govern *g, int pairs)
{
    int64_t *adm = calloc((size_t)pairs, sizeof(*adm)), *set = calloc((size_t)pairs, sizeof(*set));
    int64_t *both = calloc((size_t)pairs, sizeof(*both));
    struct sl_gov_scope s[3];
    struct sl_budget month = {.limit_micros = 1000000000000LL, .currency = "USD",
                              .window = SL_WINDOW_MONTH};
    unsigned seed = 12345;
    memset(s, 0, sizeof(s));
    snprintf(s[1].name, sizeof(s[1].name), "tag:team=search");
    s[1].budget = month;
    snprintf(s[2].name, sizeof(s[2].name), "model:deepseek-v4-flash");
    s[2].concurrency = 1000000;
    s[0].rpm = 1000000000;
    s[0].tpm = 1000000000000LL;
    s[0].budget = month;
    for (int i = 0; i < pairs; i++) {
        seed = seed * 1103515245u + 12345u;
        snprintf(s[0].name, sizeof(s[0].name), "key:team-%u", (seed >> 8) % KEYS);
        int64_t now = sl_wall_ms();
        struct sl_gov_ask a = {.now_ms = now, .tokens = 1200, .cost_micros = 900,
                               .currency = "USD", .usd_per_cny = 140000};
        struct sl_gov_spend sp = {.now_ms = now, .tokens = 1100, .cost_micros = 700,
                                  .currency = "USD", .usd_per_cny = 140000};
        struct sl_gov_ticket t;
        struct sl_gov_refusal r;
        int64_t t0 = sl_now_us();
        if (sl_govern_admit(g, s, 3, &a, &t, &r) != SL_GOV_OK) {
            fprintf(stderr, "%s: refused (%d) by %s\n", label, (int)r.reason, r.scope);
            exit(1);
        }
        int64_t t1 = sl_now_us();
        sl_govern_settle(g, &t, &sp);
        int64_t t2 = sl_now_us();
        adm[i] = t1 - t0;
        set[i] = t2 - t1;
        both[i] = t2 - t0;
    }
    qsort(adm, (size_t)pairs, sizeof(*adm), cmp);
    qsort(set, (size_t)pairs, sizeof(*set), cmp);
    qsort(both, (size_t)pairs, sizeof(*both), cmp);
    int p50 = pairs / 2, p99 = pairs * 99 / 100;
    printf("| %s | %d | %lld / %lld | %lld / %lld | %lld / %lld |\n", label, pairs,
           (long long)adm[p50], (long long)adm[p99], (long long)set[p50], (long long)set[p99],
           (long long)both[p50], (long long)both[p99]);
    free(adm);
    free(set);
    free(both);
}

int main(int argc, char **argv)
{
    char err[256];
    int pairs = argc > 2 ? atoi(argv[2]) : 20000;
    if (argc < 2 || pairs < 100) {
        fprintf(stderr, "usage: redis_bench redis://HOST:PORT/DB [PAIRS]\n");
        return 2;
    }
    printf("| backend | pairs | admit µs p50 / p99 | settle µs p50 / p99 | admit+settle µs p50 / p99 |\n");
    printf("|---|---|---|---|---|\n");
    struct sl_govern *mem = sl_govern_new(80);
    run("memory", mem, pairs);
    sl_govern_free(mem);
    struct sl_govern *red = sl_govern_new(80);
    if (sl_govern_use_redis(red, argv[1], 0, 600000, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    run("redis (loopback)", red, pairs);
    sl_govern_free(red);
    return 0;
}
