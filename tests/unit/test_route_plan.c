/* Unit tests for sl_route_plan: context-window and capability skips, tiers by size and
 * by tools, weighted split over 10,000 seeded draws, latency's two choices, cost, pins
 * and rate-limited deployments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "meter/estimate.h"
#include "route/route.h"

#define SEC INT64_C(1000000)

static const char yaml[] =
    "providers:\n  - name: p\n    kind: openai\n    base_url: http://127.0.0.1:1/v1\n"
    "  - name: off\n    kind: openai\n    base_url: http://127.0.0.1:2/v1\n"
    "    api_key: ${SL_TEST_ROUTE_UNSET_KEY}\n"
    "models:\n"
    "  - { name: small, provider: p, context_window: 4000, capabilities: [json],"
    " price_in: 0.1, price_out: 0.2 }\n"
    "  - { name: mid, provider: p, context_window: 32000, price_in: 0.5, price_out: 1.5 }\n"
    "  - { name: big, provider: p, context_window: 200000, price_in: 3, price_out: 15 }\n"
    "  - { name: ghost, provider: off, price_in: 0, price_out: 0 }\n"
    "  - { name: free, provider: p }\n"
    "groups:\n"
    "  - { name: fb, deployments: [small, mid, big, ghost] }\n"
    "  - { name: w, strategy: weighted, deployments: [small, mid, big], weights: [6, 3, 1] }\n"
    "  - { name: lat, strategy: latency, deployments: [small, mid] }\n"
    "  - { name: cheap, strategy: cost, deployments: [free, big, mid, small] }\n"
    "  - name: auto\n"
    "    strategy: tiers\n"
    "    tiers: { simple: [small], medium: [mid], complex: [big], long: [big] }\n";

static struct sl_config *cfg;
static struct sl_route_health *health;

static int setup(void **state)
{
    struct sl_buf errors = SL_BUF_INIT(4096);
    int r = sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors);
    if (r)
        print_error("%s", errors.ptr);
    assert_int_equal(r, 0);
    sl_buf_release(&errors);
    health = sl_route_health_new(cfg);
    return health ? 0 : -1;
}

static int teardown(void **state)
{
    sl_route_health_free(health);
    sl_config_free(cfg);
    return 0;
}

static const char *name_at(const struct sl_route_plan *p, size_t i)
{
    return i < p->n ? cfg->models[p->c[i].model].name : "(none)";
}

static void plan(const char *group, const struct sl_route_request *req, int64_t now,
                 struct sl_route_plan *out)
{
    const struct sl_group_cfg *g = sl_config_find_group(cfg, group);
    assert_non_null(g);
    assert_int_equal(sl_route_plan(cfg, g, health, req, now, out), 0);
}

static void assert_order(const struct sl_route_plan *p, const char *const *want, size_t n)
{
    if (p->n != n)
        fail_msg("plan has %zu candidates, expected %zu (first %s)", p->n, n, name_at(p, 0));
    for (size_t i = 0; i < n; i++)
        if (strcmp(name_at(p, i), want[i]))
            fail_msg("candidate %zu is %s, expected %s", i, name_at(p, i), want[i]);
}

static void test_fallback_order_skips_disabled(void **state)
{
    struct sl_route_request req = {.prompt_tokens = 10};
    struct sl_route_plan p;
    plan("fb", &req, SEC, &p);
    assert_order(&p, (const char *const[]){"small", "mid", "big"}, 3);
    assert_int_equal(p.skipped_disabled, 1);
    assert_int_equal(p.tier, -1);
}

static void test_context_window_skip(void **state)
{
    struct sl_route_plan p;
    /* 3,000 prompt tokens + 2,000 max_tokens does not fit small's 4,000. */
    struct sl_route_request req = {.prompt_tokens = 3000, .max_tokens = 2000};
    plan("fb", &req, SEC, &p);
    assert_order(&p, (const char *const[]){"mid", "big"}, 2);
    assert_int_equal(p.skipped_context, 1);
    req = (struct sl_route_request){.prompt_tokens = 100000};
    plan("fb", &req, SEC, &p);
    assert_order(&p, (const char *const[]){"big"}, 1);
    req.prompt_tokens = 300000;
    plan("fb", &req, SEC, &p);
    assert_int_equal(p.n, 0);
    assert_int_equal(p.skipped_context, 3);
}

static void test_capability_skip(void **state)
{
    struct sl_route_plan p;
    struct sl_route_request req = {.prompt_tokens = 10, .needs = SL_CAP_TOOLS};
    plan("fb", &req, SEC, &p);
    assert_order(&p, (const char *const[]){"mid", "big"}, 2); /* small lists json only */
    assert_int_equal(p.skipped_capability, 1);
    req.needs = SL_CAP_JSON;
    plan("fb", &req, SEC, &p);
    assert_int_equal(p.n, 3);
}

static int64_t tokens_of_words(int words)
{
    static char text[200000];
    size_t n = 0;
    for (int i = 0; i < words && n + 6 < sizeof(text); i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "word ");
    return sl_estimate_text(text, n);
}

static void test_tiers_by_size(void **state)
{
    static const struct { int words; const char *first; int tier; } cases[] = {
        {20, "small", SL_TIER_SIMPLE}, {500, "mid", SL_TIER_MEDIUM},
        {3000, "big", SL_TIER_COMPLEX}, {20000, "big", SL_TIER_LONG},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sl_route_request req = {.prompt_tokens = tokens_of_words(cases[i].words)};
        struct sl_route_plan p;
        plan("auto", &req, SEC, &p);
        if (p.tier != cases[i].tier || strcmp(name_at(&p, 0), cases[i].first))
            fail_msg("%d words (%lld tokens): tier %d first %s, expected tier %d first %s",
                     cases[i].words, (long long)req.prompt_tokens, p.tier, name_at(&p, 0),
                     cases[i].tier, cases[i].first);
    }
    /* A simple request keeps the larger tiers as fallbacks, in tier order. */
    struct sl_route_request req = {.prompt_tokens = 5};
    struct sl_route_plan p;
    plan("auto", &req, SEC, &p);
    assert_order(&p, (const char *const[]){"small", "mid", "big"}, 3);
    assert_int_equal(p.c[1].tier, SL_TIER_MEDIUM);
}

static void test_tiers_by_tools(void **state)
{
    /* Simple by size, but small cannot call tools: medium's deployment goes first. */
    struct sl_route_request req = {.prompt_tokens = 5, .needs = SL_CAP_TOOLS};
    struct sl_route_plan p;
    plan("auto", &req, SEC, &p);
    assert_int_equal(p.tier, SL_TIER_SIMPLE);
    assert_order(&p, (const char *const[]){"mid", "big"}, 2);
}

static void test_weighted_distribution(void **state)
{
    int first[3] = {0}, second_is_mid_when_small = 0, small_first = 0;
    for (uint64_t seed = 1; seed <= 10000; seed++) {
        struct sl_route_request req = {.prompt_tokens = 10, .seed = seed};
        struct sl_route_plan p;
        plan("w", &req, SEC, &p);
        assert_int_equal(p.n, 3);
        first[p.c[0].model]++;
        if (p.c[0].model == 0) {
            small_first++;
            second_is_mid_when_small += p.c[1].model == 1; /* then by weight: mid, big */
        }
    }
    /* 6:3:1 within 2 points (the binomial sd at 10,000 draws is under 0.5 points). */
    if (first[0] < 5800 || first[0] > 6200 || first[1] < 2800 || first[1] > 3200 ||
        first[2] < 800 || first[2] > 1200)
        fail_msg("weighted split %d/%d/%d, expected about 6000/3000/1000", first[0], first[1],
                 first[2]);
    assert_int_equal(second_is_mid_when_small, small_first);
    /* The same seed, the same plan. */
    struct sl_route_request req = {.prompt_tokens = 10, .seed = 42};
    struct sl_route_plan a, b;
    plan("w", &req, SEC, &a);
    plan("w", &req, SEC, &b);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++)
        assert_int_equal(a.c[i].model, b.c[i].model);
}

static void observe_ok(size_t model, int64_t ttft_us, int64_t now)
{
    struct sl_route_outcome o = {SL_OUTCOME_OK, 200, 1, ttft_us, -1};
    assert_int_equal(sl_route_acquire(health, model, 1, now), 0);
    sl_route_observe(health, model, &o, now);
}

static void test_latency_prefers_faster(void **state)
{
    int64_t now = 50 * SEC;
    for (int i = 0; i < 20; i++, now += SEC / 10) {
        observe_ok(0, 900 * 1000, now); /* small: 900 ms to first token */
        observe_ok(1, 150 * 1000, now); /* mid: 150 ms */
    }
    int mid_first = 0;
    for (uint64_t seed = 1; seed <= 1000; seed++) {
        struct sl_route_request req = {.prompt_tokens = 10, .stream = 1, .seed = seed};
        struct sl_route_plan p;
        plan("lat", &req, now, &p);
        assert_int_equal(p.n, 2);
        mid_first += strcmp(name_at(&p, 0), "mid") == 0;
    }
    assert_int_equal(mid_first, 1000); /* of two choices, the faster always wins */
    /* A slow answer from mid counts in full at once (the peak): small goes first. */
    observe_ok(1, 5 * SEC, now);
    struct sl_route_request req = {.prompt_tokens = 10, .stream = 1, .seed = 7};
    struct sl_route_plan p;
    plan("lat", &req, now, &p);
    assert_string_equal(name_at(&p, 0), "small");
}

static void test_cost_cheapest_healthy(void **state)
{
    struct sl_route_request req = {.prompt_tokens = 1000, .max_tokens = 500};
    struct sl_route_plan p;
    plan("cheap", &req, SEC, &p);
    /* free has no price: it goes last, not first. */
    assert_order(&p, (const char *const[]){"small", "mid", "big", "free"}, 4);
    /* small's breaker open (the default: 5 failures in a row): the next cheapest leads. */
    int64_t now = 10 * SEC;
    for (int i = 0; i < 5; i++) {
        struct sl_route_outcome o = {SL_OUTCOME_CONNECT, 0, 0, 0, -1};
        assert_int_equal(sl_route_acquire(health, 0, 0, now), 0);
        sl_route_observe(health, 0, &o, now);
    }
    plan("cheap", &req, now, &p);
    assert_order(&p, (const char *const[]){"mid", "big", "free"}, 3);
    assert_int_equal(p.skipped_open, 1);
}

static void test_rate_limited_skipped_until_reset(void **state)
{
    int64_t now = 10 * SEC;
    struct sl_route_outcome o = {SL_OUTCOME_HTTP, 429, 0, 0, 2000};
    assert_int_equal(sl_route_acquire(health, 0, 0, now), 0);
    sl_route_observe(health, 0, &o, now);
    struct sl_route_request req = {.prompt_tokens = 10};
    struct sl_route_plan p;
    plan("fb", &req, now + SEC, &p);
    assert_order(&p, (const char *const[]){"mid", "big"}, 2);
    assert_int_equal(p.skipped_limited, 1);
    assert_true(p.limited_until_us == now + 2 * SEC);
    plan("fb", &req, now + 2 * SEC, &p);
    assert_order(&p, (const char *const[]){"small", "mid", "big"}, 3);
}

static void test_pin(void **state)
{
    struct sl_route_request req = {.prompt_tokens = 10, .pin = "big"};
    struct sl_route_plan p;
    plan("w", &req, SEC, &p);
    assert_order(&p, (const char *const[]){"big"}, 1);
    req.pin = "free";
    assert_int_equal(sl_route_plan(cfg, sl_config_find_group(cfg, "w"), health, &req, SEC, &p),
                     SL_ROUTE_EPIN);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_fallback_order_skips_disabled), T(test_context_window_skip),
        T(test_capability_skip),               T(test_tiers_by_size),
        T(test_tiers_by_tools),                T(test_weighted_distribution),
        T(test_latency_prefers_faster),        T(test_cost_cheapest_healthy),
        T(test_rate_limited_skipped_until_reset), T(test_pin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
