/* Unit tests for src/meter/govern.c, budget.c and ratelimit.c: budget notation and
 * windows, reservations that hold across threads, settlement, rate windows, the
 * concurrency cap, and spend loaded back from a ledger. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "meter/govern.h"
#include "meter/govern_redis.h"
#include "meter/ledger.h"
#include "meter/ratelimit.h"
#include "store/store.h"

#define T0 1764547200000LL /* 2025-12-01T00:00:00Z */
#define DAY 86400000LL

static void test_budget_parse(void **state)
{
    struct sl_budget b;
    (void)state;
    assert_int_equal(sl_budget_parse("100usd/month", &b), 0);
    assert_int_equal(b.limit_micros, 100000000);
    assert_string_equal(b.currency, "USD");
    assert_int_equal(b.window, SL_WINDOW_MONTH);
    assert_int_equal(sl_budget_parse("0.5CNY/day", &b), 0);
    assert_int_equal(b.limit_micros, 500000);
    assert_string_equal(b.currency, "CNY");
    assert_int_equal(b.window, SL_WINDOW_DAY);
    assert_int_equal(sl_budget_parse("20usd", &b), 0);
    assert_int_equal(b.window, SL_WINDOW_TOTAL);
    assert_int_equal(sl_budget_parse("20usd/total", &b), 0);
    const char *bad[] = {"", "usd", "0usd", "1eur/day", "1usd/week", "1.1234567usd", "-1usd"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sl_budget_parse(bad[i], &b), -1);
}

static void test_windows(void **state)
{
    (void)state;
    int64_t t = T0 + 17 * DAY + 3600 * 1000 * 5 + 123; /* 2025-12-18T05:00:00.123Z */
    assert_int_equal(sl_budget_window_start(SL_WINDOW_TOTAL, t), 0);
    assert_int_equal(sl_budget_window_start(SL_WINDOW_DAY, t), T0 + 17 * DAY);
    assert_int_equal(sl_budget_window_start(SL_WINDOW_MONTH, t), T0);
    assert_int_equal(sl_budget_window_start(SL_WINDOW_MONTH, T0 - 1), T0 - 30 * DAY); /* Nov */
}

static struct sl_gov_scope budget_scope(const char *name, int64_t micros)
{
    struct sl_gov_scope s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    s.budget.limit_micros = micros;
    memcpy(s.budget.currency, "USD", 4);
    s.budget.window = SL_WINDOW_MONTH;
    return s;
}

static struct sl_gov_ask ask_at(int64_t now, int64_t tokens, int64_t cost)
{
    struct sl_gov_ask a = {.now_ms = now, .tokens = tokens, .cost_micros = cost,
                           .currency = "USD", .usd_per_cny = 140000};
    return a;
}

static struct sl_gov_spend spend_at(int64_t now, int64_t tokens, int64_t cost)
{
    struct sl_gov_spend s = {.now_ms = now, .tokens = tokens, .cost_micros = cost,
                             .currency = "USD", .usd_per_cny = 140000};
    return s;
}

static void test_reserve_settle_release(void **state)
{
    (void)state;
    struct sl_govern *g = sl_govern_new(80);
    struct sl_gov_scope s = budget_scope("key:a", 1000);
    struct sl_gov_ticket t1, t2, t3;
    struct sl_gov_refusal r;
    struct sl_gov_ask a = ask_at(T0, 10, 400);
    int64_t spent, reserved;
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t1, &r), SL_GOV_OK);
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t2, &r), SL_GOV_OK);
    /* 800 reserved: a third 400 would pass 1000 */
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t3, &r), SL_GOV_BUDGET);
    assert_string_equal(r.scope, "key:a");
    assert_int_equal(r.used, 800);
    assert_true(r.retry_after_ms > 0); /* the next month */
    struct sl_gov_spend real = spend_at(T0, 10, 150), failed = spend_at(T0, 0, 0);
    sl_govern_settle(g, &t1, &real);
    sl_govern_settle(g, &t1, &real); /* a second settle is ignored */
    sl_govern_settle(g, &t2, &failed);
    assert_int_equal(sl_govern_budget_state(g, "key:a", &spent, &reserved), 0);
    assert_int_equal(spent, 150);
    assert_int_equal(reserved, 0);
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t3, &r), SL_GOV_OK);
    sl_govern_settle(g, &t3, &real);
    /* a new month starts from nothing */
    a.now_ms = T0 + 31 * DAY;
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t1, &r), SL_GOV_OK);
    assert_int_equal(sl_govern_budget_state(g, "key:a", &spent, &reserved), 0);
    assert_int_equal(spent, 0);
    assert_int_equal(reserved, 400);
    sl_govern_settle(g, &t1, &real);
    sl_govern_free(g);
}

/* All scopes or none: a refusal by the second scope charges nothing on the first. */
static void test_all_or_nothing(void **state)
{
    (void)state;
    struct sl_govern *g = sl_govern_new(0);
    struct sl_gov_scope s[2] = {budget_scope("key:a", 1000), budget_scope("tag:team=x", 100)};
    s[0].rpm = 5;
    struct sl_gov_ticket t;
    struct sl_gov_refusal r;
    struct sl_gov_ask a = ask_at(T0, 10, 200);
    int64_t spent, reserved;
    assert_int_equal(sl_govern_admit(g, s, 2, &a, &t, &r), SL_GOV_BUDGET);
    assert_string_equal(r.scope, "tag:team=x");
    assert_int_equal(sl_govern_budget_state(g, "key:a", &spent, &reserved), 0);
    assert_int_equal(reserved, 0);
    assert_int_equal(t.hdr.limit_requests, 5);
    assert_int_equal(t.hdr.remaining_requests, 5); /* not counted */
    sl_govern_free(g);
}

struct race {
    struct sl_govern *g;
    int admitted;
};

#define RACERS 8
#define TRIES  500

static void *racer(void *arg)
{
    struct race *rc = arg;
    struct sl_gov_scope s = budget_scope("key:race", 20 * 1000);
    for (int i = 0; i < TRIES; i++) {
        struct sl_gov_ticket t;
        struct sl_gov_refusal r;
        struct sl_gov_ask a = ask_at(T0, 1, 1500); /* reserve 1500, really cost 1000 */
        if (sl_govern_admit(rc->g, &s, 1, &a, &t, &r) != SL_GOV_OK)
            continue;
        rc->admitted++;
        struct sl_gov_spend sp = spend_at(T0, 1, 1000);
        sl_govern_settle(rc->g, &t, &sp);
    }
    return NULL;
}

/* Many threads against one budget of 20 requests' worth: never more than 20 pass. */
static void test_budget_holds_across_threads(void **state)
{
    (void)state;
    struct race rc[RACERS];
    pthread_t th[RACERS];
    struct sl_govern *g = sl_govern_new(80);
    int total = 0;
    for (int i = 0; i < RACERS; i++) {
        rc[i] = (struct race){g, 0};
        pthread_create(&th[i], NULL, racer, &rc[i]);
    }
    for (int i = 0; i < RACERS; i++) {
        pthread_join(th[i], NULL);
        total += rc[i].admitted;
    }
    int64_t spent, reserved;
    assert_int_equal(sl_govern_budget_state(g, "key:race", &spent, &reserved), 0);
    assert_int_equal(reserved, 0);
    assert_int_equal(spent, (int64_t)total * 1000);
    assert_true(spent <= 20 * 1000);
    assert_true(total >= 19); /* at 19 spent a reservation of 1500 no longer fits */
    sl_govern_free(g);
}

static void test_rate_window(void **state)
{
    (void)state;
    struct sl_rate_window w;
    memset(&w, 0, sizeof(w));
    sl_rate_add(&w, 100, 3);
    sl_rate_add(&w, 130, 2);
    assert_int_equal(sl_rate_sum(&w, 130), 5);
    assert_int_equal(sl_rate_wait_ms(&w, 130500, 2), 29500); /* second 100 leaves at 160 s */
    assert_int_equal(sl_rate_wait_ms(&w, 130500, 5), 0);
    assert_int_equal(sl_rate_wait_ms(&w, 130500, -1), 60000); /* never, within the minute */
    sl_rate_correct(&w, 130, 131, -1);
    assert_int_equal(sl_rate_sum(&w, 131), 4);
    sl_rate_correct(&w, 130, 131, -10); /* never below 0 */
    assert_int_equal(sl_rate_sum(&w, 131), 3);
    assert_int_equal(sl_rate_sum(&w, 120), 3); /* a time before the latest counts as it */
    assert_int_equal(sl_rate_sum(&w, 159), 3);
    assert_int_equal(sl_rate_sum(&w, 160), 0); /* second 100 has left the minute */
    sl_rate_add(&w, 161, 7);
    sl_rate_correct(&w, 100, 170, 50); /* out of the window: nothing to correct */
    assert_int_equal(sl_rate_sum(&w, 170), 7);
    assert_int_equal(sl_rate_sum(&w, 1000), 0); /* a long gap empties it */
}

static void test_rpm_tpm_concurrency(void **state)
{
    (void)state;
    struct sl_govern *g = sl_govern_new(0);
    struct sl_gov_scope s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "model:m");
    s.rpm = 2;
    s.tpm = 100;
    s.concurrency = 1;
    struct sl_gov_ticket t[4];
    struct sl_gov_refusal r;
    struct sl_gov_ask a = ask_at(T0 + 500, 60, 0);
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t[0], &r), SL_GOV_OK);
    assert_int_equal(t[0].hdr.remaining_requests, 1);
    assert_int_equal(t[0].hdr.remaining_tokens, 40);
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t[1], &r), SL_GOV_CONCURRENCY);
    struct sl_gov_spend sp = spend_at(T0 + 600, 20, 0); /* 60 estimated, 20 real */
    sl_govern_settle(g, &t[0], &sp);
    a.now_ms = T0 + 1500;
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t[1], &r), SL_GOV_OK); /* 20 + 60 <= 100 */
    sp.now_ms = T0 + 1600;
    sp.tokens = 60;
    sl_govern_settle(g, &t[1], &sp);
    a.now_ms = T0 + 2500;
    a.tokens = 1;
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t[2], &r), SL_GOV_RPM);
    assert_int_equal(r.limit, 2);
    assert_int_equal(r.retry_after_ms, 60000 - 2500); /* the first request leaves at T0 + 60 s */
    a.now_ms = T0 + 60000;
    a.tokens = 50;
    /* the first second left the minute: 60 tokens of second 1 still count */
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t[2], &r), SL_GOV_TPM);
    assert_int_equal(r.used, 60);
    a.tokens = 40;
    assert_int_equal(sl_govern_admit(g, &s, 1, &a, &t[2], &r), SL_GOV_OK);
    sp.tokens = 40;
    sl_govern_settle(g, &t[2], &sp);
    sl_govern_free(g);
}

/* Spend written to a ledger is the starting point of a new table (a restart). */
static void test_load_from_ledger(void **state)
{
    (void)state;
    char dir[] = "/tmp/sl_govern_XXXXXX", url[96], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "sqlite://%s/l.db", dir);
    struct sl_store *s = NULL;
    assert_int_equal(sl_store_open(url, 0, &s, err, sizeof(err)), SL_STORE_OK);
    struct sl_usage_row rows[3];
    memset(rows, 0, sizeof(rows));
    int64_t now = sl_budget_window_start(SL_WINDOW_MONTH, T0 + 40 * DAY) + 2 * DAY;
    for (int i = 0; i < 3; i++) {
        snprintf(rows[i].id, sizeof(rows[i].id), "r%d", i);
        snprintf(rows[i].key, sizeof(rows[i].key), "a");
        snprintf(rows[i].model, sizeof(rows[i].model), "m");
        snprintf(rows[i].currency, sizeof(rows[i].currency), "USD");
        snprintf(rows[i].tags, sizeof(rows[i].tags), "[\"team=x\"]");
        rows[i].final = 1;
        rows[i].price_known = 1;
        rows[i].cost_micros = 100 * (i + 1);
    }
    rows[0].ts_ms = now - 40 * DAY; /* an earlier month: total only */
    rows[1].ts_ms = now - DAY;      /* this month, not today */
    rows[2].ts_ms = now;            /* today */
    assert_int_equal(sl_store_insert_usage(s, rows, 3, err, sizeof(err)), SL_STORE_OK);
    struct sl_govern *g = sl_govern_new(80);
    assert_int_equal(sl_govern_load(g, s, now, err, sizeof(err)), 0);
    struct sl_gov_scope sc[3] = {budget_scope("key:a", 10000), budget_scope("key:a", 10000),
                                 budget_scope("tag:team=x", 10000)};
    struct sl_gov_ticket t;
    struct sl_gov_refusal r;
    struct sl_gov_ask a = ask_at(now, 1, 0);
    int64_t spent, reserved;
    assert_int_equal(sl_govern_admit(g, &sc[0], 1, &a, &t, &r), SL_GOV_OK);
    assert_int_equal(sl_govern_budget_state(g, "key:a", &spent, &reserved), 0);
    assert_int_equal(spent, 500); /* 200 + 300 this month */
    sc[2].budget.window = SL_WINDOW_TOTAL;
    assert_int_equal(sl_govern_admit(g, &sc[2], 1, &a, &t, &r), SL_GOV_OK);
    assert_int_equal(sl_govern_budget_state(g, "tag:team=x", &spent, &reserved), 0);
    assert_int_equal(spent, 600);
    sl_govern_free(g);
    /* retention: the raw rows of older days go, the roll-ups keep the report whole */
    int64_t deleted = 0;
    assert_int_equal(sl_store_prune_usage(s, now, &deleted, err, sizeof(err)), SL_STORE_OK);
    assert_int_equal(deleted, 2);
    struct sl_usage_group *grp = NULL;
    size_t n = 0;
    assert_int_equal(sl_store_usage_groups(s, now - 45 * DAY + 1, SL_BY_KEY, &grp, &n, err,
                                           sizeof(err)), SL_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(grp[0].cost_micros, 600);
    assert_int_equal(grp[0].requests, 3);
    free(grp);
    sl_store_close(s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* Reports since any instant: raw rows to the next hour, hourly roll-ups to the next day,
 * daily ones after: the sums are exact at every boundary. */
static void test_report_since_is_exact(void **state)
{
    (void)state;
    char dir[] = "/tmp/sl_report_XXXXXX", url[96], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "sqlite://%s/r.db", dir);
    struct sl_store *s = NULL;
    assert_int_equal(sl_store_open(url, 0, &s, err, sizeof(err)), SL_STORE_OK);
    const int64_t H = 3600000, at[] = {10 * 60000, H + 20 * 60000, H + 40 * 60000, 5 * H,
                                       DAY + 2 * H, 3 * DAY};
    struct sl_usage_row rows[6];
    memset(rows, 0, sizeof(rows));
    for (int i = 0; i < 6; i++) {
        snprintf(rows[i].id, sizeof(rows[i].id), "r%d", i);
        snprintf(rows[i].model, sizeof(rows[i].model), "m");
        snprintf(rows[i].currency, sizeof(rows[i].currency), "USD");
        rows[i].ts_ms = T0 + at[i];
        rows[i].final = 1;
        rows[i].price_known = 1;
        rows[i].cost_micros = (int64_t)1 << i; /* each row one bit: the sum says which */
    }
    assert_int_equal(sl_store_insert_usage(s, rows, 6, err, sizeof(err)), SL_STORE_OK);
    const struct { int64_t since; int64_t want; } cases[] = {
        {0, 63}, {T0, 63}, {T0 + H + 30 * 60000, 62 - 2}, {T0 + H, 62}, {T0 + 6 * H, 48},
        {T0 + DAY, 48}, {T0 + DAY + 2 * H + 1, 32}, {T0 + 4 * DAY, 0},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        struct sl_usage_group *g = NULL;
        size_t n = 0;
        assert_int_equal(sl_store_usage_groups(s, cases[k].since, SL_BY_MODEL, &g, &n, err,
                                               sizeof(err)), SL_STORE_OK);
        int64_t got = n ? g[0].cost_micros : 0;
        if (got != cases[k].want)
            fail_msg("since T0+%lld ms: %lld, want %lld", (long long)(cases[k].since - T0),
                     (long long)got, (long long)cases[k].want);
        free(g);
    }
    sl_store_close(s);
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The Redis backend's address: redis://HOST[:PORT][/DB], nothing else. */
static void test_redis_url(void **state)
{
    (void)state;
    char host[64];
    int port, db;
    assert_int_equal(sl_gov_redis_parse_url("redis://127.0.0.1:6380/3", host, sizeof(host), &port,
                                            &db), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 6380);
    assert_int_equal(db, 3);
    assert_int_equal(sl_gov_redis_parse_url("redis://cache.internal", host, sizeof(host), &port,
                                            &db), 0);
    assert_string_equal(host, "cache.internal");
    assert_int_equal(port, 6379);
    assert_int_equal(db, 0);
    assert_int_equal(sl_gov_redis_parse_url("redis://h/", host, sizeof(host), &port, &db), 0);
    static const char *const bad[] = {"http://h", "redis://", "redis://:6379", "redis://h:0",
                                      "redis://h:65536", "redis://h:x", "redis://h/16",
                                      "redis://h/1x", "redis://u@h", "redis://h:6379/0/1",
                                      "redis://a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (sl_gov_redis_parse_url(bad[i], host, sizeof(host), &port, &db) != -1)
            fail_msg("accepted %s", bad[i]);
    /* an unreachable Redis is not an error at start: it is answered per request */
    struct sl_govern *g = sl_govern_new(80);
    char err[256];
    assert_int_equal(sl_govern_use_redis(g, "redis://127.0.0.1:1/0", 0, 60000, err, sizeof(err)),
                     0);
    struct sl_gov_scope sc = {.name = "model:m", .rpm = 5};
    struct sl_gov_ask ask = {.now_ms = 1700000000000LL, .tokens = 10, .currency = "USD"};
    struct sl_gov_ticket t;
    struct sl_gov_refusal r;
    assert_int_equal(sl_govern_admit(g, &sc, 1, &ask, &t, &r), SL_GOV_UNAVAILABLE);
    assert_int_equal(t.active, 0);
    sl_govern_free(g);
    g = sl_govern_new(80); /* on_error: allow */
    assert_int_equal(sl_govern_use_redis(g, "redis://127.0.0.1:1/0", 1, 60000, err, sizeof(err)),
                     0);
    assert_int_equal(sl_govern_admit(g, &sc, 1, &ask, &t, &r), SL_GOV_OK);
    assert_int_equal(t.active, 0); /* let through uncounted: nothing to settle */
    sl_govern_free(g);
    g = sl_govern_new(0);
    assert_int_equal(sl_govern_use_redis(g, "redis://", 0, 0, err, sizeof(err)), -1);
    sl_govern_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_budget_parse),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_reserve_settle_release),
        cmocka_unit_test(test_all_or_nothing),
        cmocka_unit_test(test_budget_holds_across_threads),
        cmocka_unit_test(test_rate_window),
        cmocka_unit_test(test_rpm_tpm_concurrency),
        cmocka_unit_test(test_load_from_ledger),
        cmocka_unit_test(test_report_since_is_exact),
        cmocka_unit_test(test_redis_url),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
