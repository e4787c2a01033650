/* Budgets, rate limits and the ledger, measured:
 *   admit   one sl_govern_admit + sl_govern_settle pair (key with a budget, rpm and tpm,
 *           one tag budget, a model with a concurrency cap), over many keys, from 1..N
 *           threads at once: the latency a request pays for governance;
 *   ledger  rows per second through sl_ledger_record and the writer thread into SQLite
 *           (insert and daily roll-up in one transaction per chunk);
 *   report  sl_store_usage_groups over a ledger of ROWS raw rows spread over 30 days,
 *           through the roll-ups, per grouping and --since (rows made with one bulk
 *           INSERT ... SELECT, roll-ups filled the way migration 7 fills them).
 * Usage: govern_bench DIR [ROWS] (DIR for the database files). Prints markdown tables. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "meter/govern.h"
#include "meter/ledger.h"
#include "store/store.h"

#define KEYS        10000
#define PER_THREAD  200000
#define LEDGER_ROWS 1000000
#define DAY_MS      86400000LL

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct worker {
    struct sl_govern *g;
    unsigned seed;
    double seconds;
};

static void *admit_loop(void *arg)
{
    struct worker *w = arg;
    struct sl_gov_scope s[3];
    memset(s, 0, sizeof(s));
    struct sl_budget month = {.limit_micros = 1000000000000LL, .currency = "USD",
                              .window = SL_WINDOW_MONTH};
    snprintf(s[1].name, sizeof(s[1].name), "tag:team=search");
    s[1].budget = month;
    snprintf(s[2].name, sizeof(s[2].name), "model:deepseek-v4-flash");
    s[2].concurrency = 1000000;
    double t0 = now_s();
    for (int i = 0; i < PER_THREAD; i++) {
        w->seed = w->seed * 1103515245u + 12345u;
        snprintf(s[0].name, sizeof(s[0].name), "key:team-%u", (w->seed >> 8) % KEYS);
        s[0].rpm = 1000000000;
        s[0].tpm = 1000000000000LL;
        s[0].budget = month;
        int64_t now = sl_wall_ms();
        struct sl_gov_ask a = {.now_ms = now, .tokens = 1200, .cost_micros = 900,
                               .currency = "USD", .usd_per_cny = 140000};
        struct sl_gov_ticket t;
        struct sl_gov_refusal r;
        if (sl_govern_admit(w->g, s, 3, &a, &t, &r) != SL_GOV_OK) {
            fprintf(stderr, "refused: %s\n", r.scope);
            exit(1);
        }
        struct sl_gov_spend sp = {.now_ms = now, .tokens = 1100, .cost_micros = 700,
                                  .currency = "USD", .usd_per_cny = 140000};
        sl_govern_settle(w->g, &t, &sp);
    }
    w->seconds = now_s() - t0;
    return NULL;
}

static void bench_admit(void)
{
    static const int threads[] = {1, 2, 4, 8};
    printf("| threads | admit+settle pairs | µs per pair (per thread) | pairs/s (all threads) |\n");
    printf("|---|---|---|---|\n");
    for (size_t k = 0; k < sizeof(threads) / sizeof(threads[0]); k++) {
        struct sl_govern *g = sl_govern_new(80);
        struct worker w[8];
        pthread_t th[8];
        double t0 = now_s(), worst = 0;
        for (int i = 0; i < threads[k]; i++) {
            w[i] = (struct worker){g, (unsigned)(i * 7919 + 1), 0};
            pthread_create(&th[i], NULL, admit_loop, &w[i]);
        }
        for (int i = 0; i < threads[k]; i++) {
            pthread_join(th[i], NULL);
            worst = w[i].seconds > worst ? w[i].seconds : worst;
        }
        double wall = now_s() - t0;
        long pairs = (long)threads[k] * PER_THREAD;
        printf("| %d | %ld | %.3f | %.0f |\n", threads[k], pairs, worst * 1e6 / PER_THREAD,
               pairs / wall);
        sl_govern_free(g);
    }
}

static void bench_ledger(const char *dir)
{
    char url[512], err[512];
    snprintf(url, sizeof(url), "sqlite://%s/ledger.db", dir);
    struct sl_ledger *l;
    if (sl_ledger_open(url, &l, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    struct sl_usage_row row;
    memset(&row, 0, sizeof(row));
    snprintf(row.model, sizeof(row.model), "deepseek-v4-flash");
    snprintf(row.provider, sizeof(row.provider), "deepseek");
    snprintf(row.currency, sizeof(row.currency), "USD");
    row.final = 1;
    row.price_known = 1;
    double t0 = now_s();
    for (int i = 0; i < LEDGER_ROWS; i++) {
        snprintf(row.id, sizeof(row.id), "req_%d", i);
        snprintf(row.key, sizeof(row.key), "team-%d", i % 50);
        row.ts_ms = sl_wall_ms();
        row.prompt_tokens = 1000 + i % 100;
        row.completion_tokens = 200;
        row.cost_micros = 500 + i % 7;
        sl_ledger_record(l, &row);
    }
    sl_ledger_flush(l);
    double s = now_s() - t0;
    printf("\n| ledger rows | transactions | seconds | rows/s |\n|---|---|---|---|\n");
    printf("| %d | %llu | %.2f | %.0f |\n", LEDGER_ROWS,
           (unsigned long long)sl_ledger_transactions(l), s, LEDGER_ROWS / s);
    sl_ledger_close(l);
}

/* ROWS rows over the 30 days before now, 50 keys, 8 models, 4 tags: one statement, then
 * the roll-ups rebuilt the way migration 7 fills them. */
static void fill(const char *path, long rows)
{
    sqlite3 *db;
    char sql[3072];
    int64_t now = sl_wall_ms();
    if (sqlite3_open(path, &db) != SQLITE_OK)
        exit(1);
    snprintf(sql, sizeof(sql),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; BEGIN;"
             "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < %ld)"
             " INSERT INTO usage (id, ts_ms, key, model, provider, upstream_model, prompt_tokens,"
             " completion_tokens, cached_tokens, reasoning_tokens, estimated, status, stream,"
             " client_gone, latency_us, ttft_us, error, request_id, attempt, final, why,"
             " cost_micros, currency, price_known, tags)"
             " SELECT 'r' || i, %lld - (i * 2591999999 / %ld), 'team-' || (i %% 50),"
             " 'model-' || (i %% 8), 'deepseek', 'model-' || (i %% 8), 1000 + i %% 100, 200,"
             " i %% 3 * 100, 0, 0, 200, i %% 2, 0, 1000, 500, '', 'r' || i, 1, 1, '',"
             " 500 + i %% 7, 'USD', 1, '[\"feature=f' || (i %% 4) || '\"]' FROM n;"
             "DELETE FROM usage_daily;"
             "INSERT INTO usage_daily SELECT ts_ms / 86400000 * 86400000, key, model, provider,"
             " upstream_model, tags, currency, sum(final), sum(prompt_tokens),"
             " sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens),"
             " sum(cost_micros), sum(price_known = 0 AND prompt_tokens + completion_tokens > 0)"
             " FROM usage GROUP BY 1, 2, 3, 4, 5, 6, 7;"
             "DELETE FROM usage_hourly;"
             "INSERT INTO usage_hourly SELECT ts_ms / 3600000 * 3600000, key, model, provider,"
             " upstream_model, tags, currency, sum(final), sum(prompt_tokens),"
             " sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens),"
             " sum(cost_micros), sum(price_known = 0 AND prompt_tokens + completion_tokens > 0)"
             " FROM usage GROUP BY 1, 2, 3, 4, 5, 6, 7; COMMIT;",
             rows - 1, (long long)now, rows);
    double t0 = now_s();
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fprintf(stderr, "fill: %s\n", msg);
        exit(1);
    }
    printf("\n(%ld rows and their roll-ups generated in %.1f s)\n", rows, now_s() - t0);
    sqlite3_close(db);
}

static void bench_report(const char *dir, long rows)
{
    static const struct { const char *name; enum sl_usage_by by; } bys[] = {
        {"model", SL_BY_MODEL}, {"key", SL_BY_KEY}, {"tag", SL_BY_TAG}, {"day", SL_BY_DAY},
        {"provider", SL_BY_PROVIDER},
    };
    char path[512], url[600], err[512];
    snprintf(path, sizeof(path), "%s/report.db", dir);
    snprintf(url, sizeof(url), "sqlite://%s", path);
    struct sl_store *s;
    if (sl_store_open(url, 0, &s, err, sizeof(err))) { /* creates the schema */
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
    sl_store_close(s);
    fill(path, rows);
    if (sl_store_open(url, SL_STORE_MUST_EXIST, &s, err, sizeof(err)))
        exit(1);
    printf("\n| report over %ld rows | since | groups | ms |\n|---|---|---|---|\n", rows);
    static const struct { const char *name; int64_t age; } sinces[] = {
        {"all", 0}, {"30d", 30 * DAY_MS}, {"7d", 7 * DAY_MS},
    };
    for (size_t k = 0; k < sizeof(sinces) / sizeof(sinces[0]); k++) {
        for (size_t i = 0; i < sizeof(bys) / sizeof(bys[0]); i++) {
            struct sl_usage_group *g = NULL;
            size_t n = 0;
            int64_t since = sinces[k].age ? sl_wall_ms() - sinces[k].age : 0;
            double t0 = now_s();
            if (sl_store_usage_groups(s, since, bys[i].by, &g, &n, err, sizeof(err))) {
                fprintf(stderr, "%s\n", err);
                exit(1);
            }
            printf("| --by %s | %s | %zu | %.1f |\n", bys[i].name, sinces[k].name, n,
                   (now_s() - t0) * 1e3);
            free(g);
        }
    }
    sl_store_close(s);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: govern_bench DIR [ROWS]\n");
        return 2;
    }
    long rows = argc > 2 ? atol(argv[2]) : 10000000;
    bench_admit();
    bench_ledger(argv[1]);
    bench_report(argv[1], rows);
    return 0;
}
