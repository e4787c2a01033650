/* Unit tests for the retry policy: classification, one budget across fallback hops,
 * backoff with jitter, Retry-After capped by the deadline, skips, hedges; and the
 * header parsers (Retry-After incl. HTTP-date, Go durations) and the hedge delay. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "route/route.h"

#define SEC INT64_C(1000000)

static struct sl_group_cfg group(int retries, int timeout_ms, int attempt_ms)
{
    return (struct sl_group_cfg){.retries = retries, .timeout_ms = timeout_ms,
                                 .attempt_timeout_ms = attempt_ms};
}

static struct sl_route_outcome http(int status)
{
    return (struct sl_route_outcome){SL_OUTCOME_HTTP, status, 0, 0, -1};
}

static void test_classify(void **state)
{
    static const int retry[] = {408, 409, 429, 500, 502, 503, 504, 529};
    static const int over[] = {401, 402, 403, 404};
    static const int fail[] = {400, 413, 422, 418};
    for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++) {
        struct sl_route_outcome o = http(retry[i]);
        assert_int_equal(sl_route_classify(&o), SL_VERDICT_RETRY);
    }
    for (size_t i = 0; i < sizeof(over) / sizeof(over[0]); i++) {
        struct sl_route_outcome o = http(over[i]);
        assert_int_equal(sl_route_classify(&o), SL_VERDICT_FALL_OVER);
    }
    for (size_t i = 0; i < sizeof(fail) / sizeof(fail[0]); i++) {
        struct sl_route_outcome o = http(fail[i]);
        assert_int_equal(sl_route_classify(&o), SL_VERDICT_FAIL);
    }
    struct sl_route_outcome o = {.result = SL_OUTCOME_CONNECT};
    assert_int_equal(sl_route_classify(&o), SL_VERDICT_RETRY);
    o.result = SL_OUTCOME_STALL;
    assert_int_equal(sl_route_classify(&o), SL_VERDICT_RETRY);
    o.result = SL_OUTCOME_OK;
    assert_int_equal(sl_route_classify(&o), SL_VERDICT_DONE);
}

/* Every deployment fails with a retryable error: however many hops, at most
 * retries + 1 attempts start. */
static void test_budget_across_three_hops(void **state)
{
    for (int retries = 0; retries <= 4; retries++) {
        struct sl_group_cfg g = group(retries, 600000, 0);
        struct sl_route_attempts a;
        struct sl_route_step step;
        int64_t now = SEC;
        int started = 0, hops[3] = {0};
        sl_route_attempts_init(&a, &g, 3, now, 0, 99);
        sl_route_attempts_first(&a, now, &step);
        while (step.action == SL_ACTION_TRY) {
            started++;
            hops[step.candidate]++;
            now += step.delay_ms * 1000 + SEC / 10;
            struct sl_route_outcome o = http(503);
            sl_route_attempts_next(&a, &o, now, &step);
        }
        assert_int_equal(started, retries + 1);
        assert_int_equal(a.attempts, retries + 1);
        assert_string_equal(step.why, "retry budget spent");
        if (retries == 4) /* one retry on each, then over: 2 + 2 + 1 */
            assert_true(hops[0] == 2 && hops[1] == 2 && hops[2] == 1);
    }
}

static void test_fall_over_and_fail(void **state)
{
    struct sl_group_cfg g = group(5, 600000, 0);
    struct sl_route_attempts a;
    struct sl_route_step step;
    sl_route_attempts_init(&a, &g, 2, 0, 0, 1);
    sl_route_attempts_first(&a, 0, &step);
    struct sl_route_outcome o = http(401);
    sl_route_attempts_next(&a, &o, 0, &step); /* another provider, at once */
    assert_int_equal(step.action, SL_ACTION_TRY);
    assert_int_equal(step.candidate, 1);
    assert_int_equal(step.delay_ms, 0);
    sl_route_attempts_next(&a, &o, 0, &step);
    assert_int_equal(step.action, SL_ACTION_STOP); /* never the same one again */
    sl_route_attempts_init(&a, &g, 2, 0, 0, 1);
    sl_route_attempts_first(&a, 0, &step);
    o = http(400);
    sl_route_attempts_next(&a, &o, 0, &step);
    assert_int_equal(step.action, SL_ACTION_STOP); /* a 400 would fail anywhere */
}

static void test_backoff_full_jitter(void **state)
{
    struct sl_group_cfg g = group(10, 3600000, 0);
    int64_t max_seen = 0;
    for (uint64_t seed = 0; seed < 200; seed++) {
        struct sl_route_attempts a;
        struct sl_route_step step;
        sl_route_attempts_init(&a, &g, 1, 0, 0, seed);
        sl_route_attempts_first(&a, 0, &step);
        struct sl_route_outcome o = {.result = SL_OUTCOME_CONNECT, .retry_after_ms = -1};
        for (int i = 0; i < 10; i++) {
            sl_route_attempts_next(&a, &o, 0, &step);
            assert_int_equal(step.action, SL_ACTION_TRY);
            assert_int_equal(step.candidate, 0); /* alone: retried where it is */
            int64_t bound = 100LL << i;
            assert_in_range(step.delay_ms, 0, bound < 10000 ? bound : 10000);
            if (step.delay_ms > max_seen)
                max_seen = step.delay_ms;
        }
    }
    assert_true(max_seen > 5000); /* the bound does grow */
}

static void test_retry_after_and_deadline(void **state)
{
    struct sl_group_cfg g = group(3, 10000, 4000);
    struct sl_route_attempts a;
    struct sl_route_step step;
    sl_route_attempts_init(&a, &g, 1, 0, 0, 1);
    sl_route_attempts_first(&a, 0, &step);
    assert_int_equal(step.timeout_ms, 4000);
    struct sl_route_outcome o = http(503);
    o.retry_after_ms = 2500;
    sl_route_attempts_next(&a, &o, 1 * SEC, &step);
    assert_int_equal(step.action, SL_ACTION_TRY);
    assert_int_equal(step.delay_ms, 2500);
    /* 429 alone, Retry-After 30 s, 5.5 s left: waiting would pass the deadline. */
    o = http(429);
    o.retry_after_ms = 30000;
    sl_route_attempts_next(&a, &o, 4500000, &step);
    assert_int_equal(step.action, SL_ACTION_STOP);
    /* The client's own timeout shortens the group's, and caps the attempt's. */
    sl_route_attempts_init(&a, &g, 1, 0, 1500, 1);
    sl_route_attempts_first(&a, 0, &step);
    assert_int_equal(step.timeout_ms, 1500);
    o = http(500);
    sl_route_attempts_next(&a, &o, 2 * SEC, &step);
    assert_string_equal(step.why, "deadline passed");
}

static void test_429_falls_over_then_waits(void **state)
{
    struct sl_group_cfg g = group(3, 60000, 0);
    struct sl_route_attempts a;
    struct sl_route_step step;
    sl_route_attempts_init(&a, &g, 2, 0, 0, 1);
    sl_route_attempts_first(&a, 0, &step);
    struct sl_route_outcome o = http(429);
    sl_route_attempts_next(&a, &o, 0, &step);
    assert_int_equal(step.candidate, 1);
    assert_int_equal(step.delay_ms, 0);
    sl_route_attempts_next(&a, &o, 0, &step); /* the last one: wait out its limit */
    assert_int_equal(step.candidate, 1);
    assert_int_equal(step.delay_ms, SL_ROUTE_LIMIT_DEFAULT_MS);
}

static void test_skip_and_hedge(void **state)
{
    struct sl_group_cfg g = group(1, 60000, 0);
    struct sl_route_attempts a;
    struct sl_route_step step;
    sl_route_attempts_init(&a, &g, 3, 0, 0, 1);
    sl_route_attempts_first(&a, 0, &step);
    sl_route_attempts_skip(&a, 0, &step); /* candidate 0 could not be claimed: free */
    assert_int_equal(step.candidate, 1);
    assert_int_equal(a.used, 0);
    assert_int_equal(sl_route_attempts_hedge(&a, 0, &step), 0);
    assert_int_equal(step.candidate, 2);
    assert_int_equal(sl_route_attempts_hedge(&a, 0, &step), -1); /* budget spent */
    sl_route_attempts_skip(&a, 0, &step);
    assert_int_equal(step.action, SL_ACTION_STOP);
    sl_route_attempts_init(&a, &g, 0, 0, 0, 1);
    sl_route_attempts_first(&a, 0, &step);
    assert_int_equal(step.action, SL_ACTION_STOP);
}

static void test_retry_after_parsing(void **state)
{
    /* 2015-10-21 07:28:00 UTC = 1445412480 s. */
    const int64_t now = INT64_C(1445412480000) - 90000;
    static const struct { const char *in; int64_t ms; } ok[] = {
        {"120", 120000}, {" 0 ", 0}, {"Wed, 21 Oct 2015 07:28:00 GMT", 90000},
        {"Wednesday, 21-Oct-15 07:28:00 GMT", 90000}, {"Wed Oct 21 07:28:00 2015", 90000},
        {"Tue, 20 Oct 2015 07:28:00 GMT", 0}, /* in the past: now */
    };
    static const char *const bad[] = {"", "soon", "-5", "1.5", "Wed, 21 Foo 2015 07:28:00 GMT",
                                      "Wed, 21 Oct 2015 07:28:00", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t d = -1;
        if (sl_route_parse_retry_after(ok[i].in, now, &d) || d != ok[i].ms)
            fail_msg("Retry-After \"%s\": got %lld, expected %lld", ok[i].in, (long long)d,
                     (long long)ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t d;
        if (sl_route_parse_retry_after(bad[i], now, &d) == 0)
            fail_msg("Retry-After \"%s\" should be rejected", bad[i]);
    }
}

static void test_go_durations(void **state)
{
    static const struct { const char *in; int64_t ms; } ok[] = {
        {"1s", 1000}, {"6m0s", 360000}, {"120ms", 120}, {"0", 0}, {"1h2m3.5s", 3723500},
        {"250us", 1}, {"0.5s", 500}, {"17ms", 17}, {"1.001ms", 2}, {"2\xc2\xb5s", 1},
    };
    static const char *const bad[] = {"", "s", "1", "1x", "-1s", "1e3s", "0x10s", "1s junk"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;
        if (sl_route_parse_go_duration(ok[i].in, &ms) || ms != ok[i].ms)
            fail_msg("duration \"%s\": got %lld, expected %lld", ok[i].in, (long long)ms,
                     (long long)ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms;
        if (sl_route_parse_go_duration(bad[i], &ms) == 0)
            fail_msg("duration \"%s\" should be rejected", bad[i]);
    }
}

static void test_limit_hints(void **state)
{
    struct sl_route_limit_hints h = {.reset_requests = "1s", .reset_tokens = "6m0s"};
    assert_int_equal(sl_route_limit_delay_ms(&h, 0), 360000);
    h.retry_after = "7";
    assert_int_equal(sl_route_limit_delay_ms(&h, 0), 7000);
    h.retry_after_ms = "1500";
    assert_int_equal(sl_route_limit_delay_ms(&h, 0), 1500);
    h = (struct sl_route_limit_hints){.retry_after = "86400"};
    assert_int_equal(sl_route_limit_delay_ms(&h, 0), SL_ROUTE_LIMIT_MAX_MS);
    h = (struct sl_route_limit_hints){.retry_after = "garbage"};
    assert_int_equal(sl_route_limit_delay_ms(&h, 0), SL_ROUTE_LIMIT_DEFAULT_MS);
}

static void test_hedge_delay(void **state)
{
    static const char yaml[] =
        "providers:\n  - name: p\n    kind: openai\n    base_url: http://127.0.0.1:1/v1\n"
        "models:\n  - name: a\n    provider: p\n"
        "groups:\n  - { name: fixed, deployments: [a], hedge: { after: 2s } }\n"
        "  - { name: p95, deployments: [a], hedge: { after: p95 } }\n"
        "  - { name: none, deployments: [a] }\n";
    struct sl_config *cfg = NULL;
    struct sl_buf errors = SL_BUF_INIT(4096);
    assert_int_equal(sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors), 0);
    sl_buf_release(&errors);
    struct sl_route_health *h = sl_route_health_new(cfg);
    const struct sl_group_cfg *p95 = sl_config_find_group(cfg, "p95");
    assert_int_equal(sl_route_hedge_delay_ms(h, sl_config_find_group(cfg, "fixed"), 0), 2000);
    assert_int_equal(sl_route_hedge_delay_ms(h, sl_config_find_group(cfg, "none"), 0), -1);
    assert_int_equal(sl_route_hedge_delay_ms(h, p95, 0), -1); /* no samples yet */
    /* 95 answers at ~100 ms and 5 at ~3 s: the p95 is in the 100 ms bucket. */
    for (int i = 0; i < 100; i++) {
        struct sl_route_outcome o = {SL_OUTCOME_OK, 200, 1, i < 95 ? 100000 : 3000000, -1};
        sl_route_observe(h, 0, &o, SEC * (i + 1));
    }
    int64_t d = sl_route_hedge_delay_ms(h, p95, 0);
    assert_in_range(d, 100, 120);
    sl_route_health_free(h);
    sl_config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_budget_across_three_hops),
        cmocka_unit_test(test_fall_over_and_fail),
        cmocka_unit_test(test_backoff_full_jitter),
        cmocka_unit_test(test_retry_after_and_deadline),
        cmocka_unit_test(test_429_falls_over_then_waits),
        cmocka_unit_test(test_skip_and_hedge),
        cmocka_unit_test(test_retry_after_parsing),
        cmocka_unit_test(test_go_durations),
        cmocka_unit_test(test_limit_hints),
        cmocka_unit_test(test_hedge_delay),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
