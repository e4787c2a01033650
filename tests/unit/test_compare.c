/* Unit tests for src/meter/compare.c (the arithmetic of `sluice compare`) and the
 * mirror sampling draw: nearest-rank percentiles, grouping and order, errors kept out
 * of latency and throughput, agreement counted only where both answers are known. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/hash.h"
#include "meter/compare.h"
#include "server/mirror.h"

static struct sl_compare_row row(int mirror, const char *provider, int status, int64_t lat_ms,
                                 int64_t ttft_ms, int64_t tokens, int64_t cost, int agree)
{
    struct sl_compare_row r = {.mirror = mirror, .status = status, .latency_us = lat_ms * 1000,
                               .ttft_us = ttft_ms < 0 ? -1 : ttft_ms * 1000,
                               .completion_tokens = tokens, .cost_micros = cost, .agree = agree};
    snprintf(r.provider, sizeof(r.provider), "%s", provider);
    snprintf(r.upstream_model, sizeof(r.upstream_model), "m-%s", provider);
    snprintf(r.currency, sizeof(r.currency), "USD");
    return r;
}

static void test_percentile_nearest_rank(void **state)
{
    (void)state;
    int64_t v[10] = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
    assert_int_equal(sl_compare_percentile(v, 10, 0.5), 5);   /* rank 5 of 1..10 */
    assert_int_equal(sl_compare_percentile(v, 10, 0.99), 10); /* rank ceil(9.9) = 10 */
    assert_int_equal(sl_compare_percentile(v, 10, 0.9), 9);
    int64_t one[1] = {42};
    assert_int_equal(sl_compare_percentile(one, 1, 0.5), 42);
    assert_int_equal(sl_compare_percentile(one, 1, 0.99), 42);
    int64_t odd[3] = {30, 10, 20};
    assert_int_equal(sl_compare_percentile(odd, 3, 0.5), 20); /* rank ceil(1.5) = 2 */
    assert_int_equal(sl_compare_percentile(NULL, 0, 0.5), -1);
}

static void test_summarize(void **state)
{
    (void)state;
    struct sl_compare_row rows[] = {
        row(1, "b", 200, 400, 390, 40, 7, 1),
        row(0, "a", 200, 100, 20, 10, 3, -1),
        row(1, "b", 200, 200, 150, 20, 5, 0),
        row(0, "a", 200, 300, 40, 30, 4, -1),
        row(1, "b", 502, 5, -1, 0, 0, -1),   /* an error: in the rate, not the latency */
        row(0, "a", 200, 200, -1, 20, 2, -1), /* no ttft known */
        row(1, "b", 200, 600, 590, 60, 9, 1),
    };
    struct sl_compare_stat *st = NULL;
    size_t n = 0;
    assert_int_equal(sl_compare_summarize(rows, sizeof(rows) / sizeof(rows[0]), &st, &n), 0);
    assert_int_equal(n, 2);
    /* the requests' own deployment comes first */
    assert_int_equal(st[0].mirror, 0);
    assert_string_equal(st[0].provider, "a");
    assert_string_equal(st[0].upstream_model, "m-a");
    assert_int_equal(st[0].requests, 3);
    assert_int_equal(st[0].errors, 0);
    assert_int_equal(st[0].latency_p50_us, 200000);
    assert_int_equal(st[0].latency_p99_us, 300000);
    assert_int_equal(st[0].ttft_p50_us, 20000); /* of {20, 40}: rank 1 */
    assert_true(st[0].tokens_per_s > 99.999 && st[0].tokens_per_s < 100.001); /* 60 / 0.6 s */
    assert_int_equal(st[0].cost_micros, 9);
    assert_int_equal(st[0].compared, 0);

    assert_int_equal(st[1].mirror, 1);
    assert_string_equal(st[1].provider, "b");
    assert_int_equal(st[1].requests, 4);
    assert_int_equal(st[1].errors, 1);
    assert_int_equal(st[1].latency_p50_us, 400000); /* of {200, 400, 600} */
    assert_int_equal(st[1].latency_p99_us, 600000);
    assert_int_equal(st[1].ttft_p50_us, 390000);
    assert_true(st[1].tokens_per_s > 99.999 && st[1].tokens_per_s < 100.001); /* 120 / 1.2 s */
    assert_int_equal(st[1].cost_micros, 21);
    assert_string_equal(st[1].currency, "USD");
    assert_int_equal(st[1].compared, 3);
    assert_int_equal(st[1].agreed, 2);
    free(st);
}

static void test_summarize_only_errors_and_empty(void **state)
{
    (void)state;
    struct sl_compare_row rows[] = {row(1, "dead", 502, 3, -1, 0, 0, -1),
                                    row(1, "dead", 0, 1, -1, 0, 0, -1)};
    struct sl_compare_stat *st = NULL;
    size_t n = 0;
    assert_int_equal(sl_compare_summarize(rows, 2, &st, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(st[0].requests, 2);
    assert_int_equal(st[0].errors, 2);
    assert_int_equal(st[0].latency_p50_us, -1);
    assert_int_equal(st[0].ttft_p50_us, -1);
    assert_true(st[0].tokens_per_s == 0.0);
    free(st);
    assert_int_equal(sl_compare_summarize(NULL, 0, &st, &n), 0);
    assert_int_equal(n, 0);
    assert_null(st);
}

static void test_hash_incremental(void **state)
{
    (void)state;
    const char *text = "This is a simulated reply to: hello";
    uint64_t whole = sl_hash64(SL_HASH64_INIT, text, strlen(text));
    uint64_t parts = sl_hash64(SL_HASH64_INIT, text, 7);
    parts = sl_hash64(parts, text + 7, strlen(text) - 7);
    assert_true(whole == parts);
    assert_true(whole != sl_hash64(SL_HASH64_INIT, text, strlen(text) - 1));
    char hex[17];
    sl_hash64_hex(sl_hash64(SL_HASH64_INIT, "", 0), hex);
    assert_string_equal(hex, "cbf29ce484222325");
    sl_hash64_hex(sl_hash64(SL_HASH64_INIT, "a", 1), hex);
    assert_string_equal(hex, "af63dc4c8601ec8c"); /* FNV-1a 64 of "a" */
}

/* The draw is per request id: about the sample's share of random ids, all or none at
 * the ends, and the same answer for the same id. */
static void test_mirror_sample(void **state)
{
    (void)state;
    char name[] = "g", to_name[] = "b";
    char *names[] = {to_name};
    size_t index[] = {1};
    struct sl_group_cfg g = {.name = name, .mirror = {.to = {names, index, 1, 0}, .sample = 0.25}};
    int hits = 0, total = 20000;
    char id[40];
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < total; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        snprintf(id, sizeof(id), "req_%016llx%08x", (unsigned long long)x, (unsigned)i);
        hits += sl_mirror_sampled(&g, id);
        assert_int_equal(sl_mirror_sampled(&g, id), sl_mirror_sampled(&g, id));
    }
    assert_in_range(hits, total / 4 - 400, total / 4 + 400);
    g.mirror.sample = 1.0;
    assert_true(sl_mirror_sampled(&g, "req_1") && sl_mirror_sampled(&g, "req_2"));
    g.mirror.sample = 0.0;
    assert_false(sl_mirror_sampled(&g, "req_1") || sl_mirror_sampled(&g, "req_2"));
    g.mirror.sample = 1.0;
    g.mirror.to.n = 0;
    assert_false(sl_mirror_sampled(&g, "req_1"));
    assert_false(sl_mirror_sampled(NULL, "req_1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_percentile_nearest_rank),
        cmocka_unit_test(test_summarize),
        cmocka_unit_test(test_summarize_only_errors_and_empty),
        cmocka_unit_test(test_hash_incremental),
        cmocka_unit_test(test_mirror_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
