/* Unit tests for src/route health: the breaker opens on an error rate (not on scattered
 * errors) or on consecutive failures, lets one half-open probe through in the recorded
 * mode, and a 429 marks a deployment rate limited until its reset. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "route/route.h"

#define SEC INT64_C(1000000)

static const char yaml[] =
    "providers:\n  - name: p\n    kind: openai\n    base_url: http://127.0.0.1:1/v1\n"
    "models:\n  - name: a\n    provider: p\n  - name: b\n    provider: p\n"
    "groups:\n  - name: g\n    deployments: [a, b]\n"
    "    breaker: { window: 10s, min_requests: 10, error_rate: 0.5, consecutive: 4, "
    "cooldown: 5s }\n";

struct fixture {
    struct sl_config *cfg;
    struct sl_route_health *h;
};

static int setup(void **state)
{
    static struct fixture f;
    struct sl_buf errors = SL_BUF_INIT(4096);
    assert_int_equal(sl_config_parse(yaml, strlen(yaml), "t.yaml", &f.cfg, &errors), 0);
    sl_buf_release(&errors);
    f.h = sl_route_health_new(f.cfg);
    assert_non_null(f.h);
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sl_route_health_free(f->h);
    sl_config_free(f->cfg);
    return 0;
}

static void report(struct sl_route_health *h, size_t model, enum sl_route_result r, int status,
                   int stream, int64_t now)
{
    struct sl_route_outcome o = {r, status, stream, 200000, -1};
    assert_int_equal(sl_route_acquire(h, model, stream, now), 0);
    sl_route_observe(h, model, &o, now);
}

static enum sl_route_breaker breaker_of(struct sl_route_health *h, size_t model, int64_t now)
{
    struct sl_route_state st;
    sl_route_health_state(h, model, now, &st);
    return st.breaker;
}

static void test_scattered_errors_do_not_open(void **state)
{
    struct fixture *f = *state;
    int64_t now = 100 * SEC;
    /* 3 failures in 9 requests, never 4 in a row: under min_requests, then under rate. */
    for (int i = 0; i < 30; i++, now += SEC / 10) {
        int fail = i % 3 == 0;
        report(f->h, 0, fail ? SL_OUTCOME_HTTP : SL_OUTCOME_OK, fail ? 503 : 200, 0, now);
        assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_CLOSED);
    }
    /* Two failures alone, even at a 100% rate, are below min_requests. */
    report(f->h, 1, SL_OUTCOME_CONNECT, 0, 0, now);
    report(f->h, 1, SL_OUTCOME_TIMEOUT, 0, 0, now);
    assert_int_equal(breaker_of(f->h, 1, now), SL_BREAKER_CLOSED);
}

static void test_opens_on_error_rate(void **state)
{
    struct fixture *f = *state;
    int64_t now = 100 * SEC;
    /* Alternating: never 2 in a row, but 50% over 10 requests. */
    for (int i = 0; i < 9; i++, now += SEC / 10)
        report(f->h, 0, i % 2 ? SL_OUTCOME_HTTP : SL_OUTCOME_OK, i % 2 ? 500 : 200, 0, now);
    assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_CLOSED);
    report(f->h, 0, SL_OUTCOME_HTTP, 502, 0, now);
    assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_OPEN);
    assert_int_equal(sl_route_acquire(f->h, 0, 0, now + SEC), -1);
}

static void test_window_slides(void **state)
{
    struct fixture *f = *state;
    int64_t now = 100 * SEC;
    for (int i = 0; i < 6; i++)
        report(f->h, 0, i % 2 ? SL_OUTCOME_HTTP : SL_OUTCOME_OK, 500, 0, now);
    /* 11 s later the first six are outside the 10 s window: 4 new failures out of 8... */
    now += 11 * SEC;
    for (int i = 0; i < 8; i++)
        report(f->h, 0, i % 3 == 0 ? SL_OUTCOME_HTTP : SL_OUTCOME_OK, 500, 0, now);
    struct sl_route_state st;
    sl_route_health_state(f->h, 0, now, &st);
    assert_int_equal(st.window_requests, 8);
    assert_int_equal(st.window_failures, 3);
    assert_int_equal(st.breaker, SL_BREAKER_CLOSED);
}

static void test_opens_on_consecutive(void **state)
{
    struct fixture *f = *state;
    int64_t now = 100 * SEC;
    for (int i = 0; i < 50; i++)
        report(f->h, 0, SL_OUTCOME_OK, 200, 0, now);
    for (int i = 0; i < 3; i++)
        report(f->h, 0, SL_OUTCOME_STALL, 0, 0, now);
    assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_CLOSED); /* 3/53: rate is low */
    report(f->h, 0, SL_OUTCOME_CONNECT, 0, 0, now);
    assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_OPEN);
}

static void open_in_mode(struct fixture *f, int stream, int64_t now)
{
    for (int i = 0; i < 4; i++)
        report(f->h, 0, SL_OUTCOME_HTTP, 503, stream, now);
    assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_OPEN);
}

static void test_half_open_single_probe_in_mode(void **state)
{
    struct fixture *f = *state;
    int64_t now = 100 * SEC;
    open_in_mode(f, 1, now);
    assert_int_equal(sl_route_acquire(f->h, 0, 1, now + 4 * SEC), -1); /* cooling down */
    now += 5 * SEC;
    assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_HALF_OPEN);
    /* It opened on streaming traffic: a non-stream request does not prove streams work. */
    assert_int_equal(sl_route_acquire(f->h, 0, 0, now), -1);
    assert_int_equal(sl_route_acquire(f->h, 0, 1, now), 0);  /* the one probe */
    assert_int_equal(sl_route_acquire(f->h, 0, 1, now), -1); /* no second */
    struct sl_route_state st;
    sl_route_health_state(f->h, 0, now, &st);
    assert_int_equal(st.probe_stream, 1);
    assert_int_equal(st.probe_in_flight, 1);
    struct sl_route_outcome ok = {SL_OUTCOME_OK, 200, 1, 300000, -1};
    sl_route_observe(f->h, 0, &ok, now + SEC);
    assert_int_equal(breaker_of(f->h, 0, now + SEC), SL_BREAKER_CLOSED);
    assert_int_equal(sl_route_acquire(f->h, 0, 0, now + SEC), 0);
}

static void test_failed_probe_reopens(void **state)
{
    struct fixture *f = *state;
    int64_t now = 100 * SEC;
    open_in_mode(f, 0, now);
    now += 5 * SEC;
    assert_int_equal(sl_route_acquire(f->h, 0, 0, now), 0);
    struct sl_route_outcome bad = {SL_OUTCOME_HTTP, 500, 0, 0, -1};
    sl_route_observe(f->h, 0, &bad, now);
    assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_OPEN);
    assert_int_equal(sl_route_acquire(f->h, 0, 0, now + 4 * SEC), -1);
    /* A probe that is cancelled proves nothing and frees the slot for another. */
    now += 5 * SEC;
    assert_int_equal(sl_route_acquire(f->h, 0, 0, now), 0);
    struct sl_route_outcome gone = {SL_OUTCOME_CANCELLED, 0, 0, 0, -1};
    sl_route_observe(f->h, 0, &gone, now);
    assert_int_equal(breaker_of(f->h, 0, now), SL_BREAKER_HALF_OPEN);
    assert_int_equal(sl_route_acquire(f->h, 0, 0, now), 0);
}

static void test_429_rate_limits_until_reset(void **state)
{
    struct fixture *f = *state;
    int64_t now = 100 * SEC;
    for (int i = 0; i < 20; i++) {
        struct sl_route_outcome o = {SL_OUTCOME_HTTP, 429, 0, 0, 3000};
        assert_int_equal(sl_route_acquire(f->h, 1, 0, now), i == 0 ? 0 : -1);
        if (i == 0)
            sl_route_observe(f->h, 1, &o, now);
    }
    struct sl_route_state st;
    sl_route_health_state(f->h, 1, now, &st);
    assert_int_equal(st.breaker, SL_BREAKER_CLOSED); /* a quota, not a failure */
    assert_int_equal(st.window_failures, 0);
    assert_true(st.limited_until_us == now + 3 * SEC);
    assert_int_equal(sl_route_acquire(f->h, 1, 0, now + 3 * SEC - 1), -1);
    assert_int_equal(sl_route_acquire(f->h, 1, 0, now + 3 * SEC), 0);
}

static void test_inherit_keeps_open_breaker(void **state)
{
    struct fixture *f = *state;
    int64_t now = 100 * SEC;
    open_in_mode(f, 0, now);
    struct sl_route_health *fresh = sl_route_health_new(f->cfg);
    sl_route_health_inherit(fresh, f->h);
    assert_int_equal(breaker_of(fresh, 0, now), SL_BREAKER_OPEN);
    assert_int_equal(breaker_of(fresh, 1, now), SL_BREAKER_CLOSED);
    sl_route_health_free(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_scattered_errors_do_not_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opens_on_error_rate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_slides, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opens_on_consecutive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_half_open_single_probe_in_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_probe_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_rate_limits_until_reset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inherit_keeps_open_breaker, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
