/* Unit tests for groups: in src/config: typing, defaults, the shared model/group
 * namespace, and FILE:LINE errors for names, strategies and lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"

static const char base_yaml[] =
    "providers:\n"
    "  - name: p\n"
    "    kind: openai\n"
    "    base_url: http://127.0.0.1:1/v1\n"
    "models:\n"
    "  - name: a\n"
    "    provider: p\n"
    "    price_in: 0.27\n"
    "    price_out: 1.10\n"
    "    capabilities: [tools, json]\n"
    "  - name: b\n"
    "    provider: p\n"
    "    context_window: 8000\n"
    "  - name: c\n"
    "    provider: p\n";

static struct sl_config *parse_ok(const char *groups)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s", base_yaml, groups);
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = NULL;
    int r = sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors);
    if (r != 0)
        print_error("unexpected errors:\n%s", errors.ptr ? errors.ptr : "(none)");
    assert_int_equal(r, 0);
    sl_buf_release(&errors);
    return cfg;
}

/* Expects failure with an error line containing want. */
static void parse_fails_with(const char *groups, const char *want)
{
    char yaml[8192];
    snprintf(yaml, sizeof(yaml), "%s%s", base_yaml, groups);
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = NULL;
    assert_int_equal(sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors), -1);
    assert_null(cfg);
    assert_non_null(errors.ptr);
    if (!strstr(errors.ptr, want))
        fail_msg("expected \"%s\" in:\n%s", want, errors.ptr);
    sl_buf_release(&errors);
}

static void test_full_group_typed(void **state)
{
    struct sl_config *cfg = parse_ok(
        "groups:\n"                                       /* line 16 */
        "  - name: chat-cheap\n"
        "    strategy: weighted\n"
        "    deployments: [a, b, c]\n"
        "    weights: [5, 3, 1]\n"
        "    retries: 3\n"
        "    timeout: 60s\n"
        "    attempt_timeout: 20s\n"
        "    breaker: { window: 10s, min_requests: 4, error_rate: 0.25, consecutive: 0, "
        "cooldown: 2s }\n"
        "    hedge: { after: 1500ms }\n");
    assert_int_equal(cfg->ngroups, 1);
    const struct sl_group_cfg *g = sl_config_find_group(cfg, "chat-cheap");
    assert_non_null(g);
    assert_int_equal(g->line, 17);
    assert_int_equal(g->strategy, SL_STRATEGY_WEIGHTED);
    assert_int_equal(g->nmembers, 3);
    assert_int_equal(g->members[0], 0);
    assert_int_equal(g->members[2], 2);
    assert_int_equal(g->weights.n, 3);
    assert_int_equal(g->weights.v[0], 5);
    assert_int_equal(g->retries, 3);
    assert_int_equal(g->timeout_ms, 60000);
    assert_int_equal(g->attempt_timeout_ms, 20000);
    assert_int_equal(g->breaker.window_ms, 10000);
    assert_int_equal(g->breaker.min_requests, 4);
    assert_true(g->breaker.error_rate == 0.25);
    assert_int_equal(g->breaker.consecutive, 0);
    assert_int_equal(g->breaker.cooldown_ms, 2000);
    assert_int_equal(g->hedge.after_ms, 1500);
    assert_int_equal(g->hedge.p95, 0);
    assert_null(sl_config_find_group(cfg, "a"));
    /* Model routing keys. */
    assert_true(cfg->models[0].priced);
    assert_true(cfg->models[0].price_in == 0.27 && cfg->models[0].price_out == 1.10);
    assert_int_equal(cfg->models[0].capabilities, SL_CAP_TOOLS | SL_CAP_JSON);
    assert_false(cfg->models[1].priced);
    assert_int_equal(cfg->models[1].capabilities, 0); /* unknown: assumed all */
    sl_config_free(cfg);
}

static void test_group_defaults_and_tiers(void **state)
{
    struct sl_config *cfg = parse_ok(
        "groups:\n"
        "  - name: auto\n"
        "    strategy: tiers\n"
        "    tiers:\n"
        "      simple: [c]\n"
        "      medium: [b, c]\n"
        "      long: [a]\n"
        "    hedge: { after: p95 }\n"
        "  - name: plain\n"
        "    deployments:\n"
        "      - c\n"
        "      - a\n");
    const struct sl_group_cfg *g = sl_config_find_group(cfg, "auto");
    assert_non_null(g);
    assert_int_equal(g->strategy, SL_STRATEGY_TIERS);
    assert_int_equal(g->nmembers, 3); /* c, b, a: tier names become members once */
    assert_int_equal(g->members[0], 2);
    assert_int_equal(g->members[1], 1);
    assert_int_equal(g->members[2], 0);
    assert_int_equal(g->tiers[SL_TIER_MEDIUM].n, 2);
    assert_int_equal(g->tiers[SL_TIER_MEDIUM].index[1], 0); /* c is member 0 */
    assert_int_equal(g->tiers[SL_TIER_COMPLEX].n, 0);
    assert_int_equal(g->tier_limit[0], 100);
    assert_int_equal(g->tier_limit[2], 8000);
    assert_int_equal(g->hedge.p95, 1);
    /* Defaults. */
    const struct sl_group_cfg *p = sl_config_find_group(cfg, "plain");
    assert_int_equal(p->strategy, SL_STRATEGY_FALLBACK);
    assert_int_equal(p->retries, 2);
    assert_int_equal(p->timeout_ms, 600000);
    assert_int_equal(p->attempt_timeout_ms, 0);
    assert_int_equal(p->breaker.min_requests, 10);
    assert_int_equal(p->breaker.consecutive, 5);
    assert_int_equal(p->breaker.cooldown_ms, 10000);
    assert_int_equal(p->hedge.after_ms, 0);
    assert_int_equal(p->hedge.p95, 0);
    assert_int_equal(p->members[0], 2);
    sl_config_free(cfg);
}

static void test_group_errors_name_lines(void **state)
{
    parse_fails_with("groups:\n  - name: g\n    deployments: [a, ghost]\n",
                     "t.yaml:18: group 'g': deployments: unknown model 'ghost'");
    parse_fails_with("groups:\n  - name: g\n    strategy: weighted\n    deployments: [a, b]\n"
                     "    weights: [1, 2, 3]\n",
                     "t.yaml:20: group 'g': 3 weights for 2 deployments");
    parse_fails_with("groups:\n  - name: a\n    deployments: [b]\n",
                     "t.yaml:17: group 'a': the name is already a model (line 6)");
    parse_fails_with("groups:\n  - name: g\n    deployments: [a]\n  - name: g\n"
                     "    deployments: [b]\n",
                     "t.yaml:19: duplicate group name 'g' (first defined at line 17)");
    parse_fails_with("groups:\n  - name: g\n    deployments: [a]\n  - name: h\n"
                     "    deployments: [g]\n", "'g' is a group; groups cannot contain groups");
    parse_fails_with("groups:\n  - name: g\n    strategy: fastest\n    deployments: [a]\n",
                     "t.yaml:18: groups[0].strategy: 'fastest' is not one of fallback");
    parse_fails_with("groups:\n  - name: g\n    deployments: [a, a]\n", "'a' is listed twice");
    parse_fails_with("groups:\n  - name: g\n", "t.yaml:17: group 'g': needs deployments:");
    parse_fails_with("groups:\n  - name: g\n    strategy: tiers\n",
                     "strategy tiers needs tiers:");
    parse_fails_with("groups:\n  - name: g\n    deployments: [a]\n    weights: [1]\n",
                     "weights: are used only with strategy: weighted");
    parse_fails_with("groups:\n  - name: g\n    strategy: tiers\n    tiers: { simple: [a] }\n"
                     "    tier_words: [100, 50, 8000]\n", "tier_words: must increase");
    parse_fails_with("groups:\n  - name: g\n    deployments: a\n",
                     "groups[0].deployments: expected a list");
    parse_fails_with("groups:\n  - name: g\n    deployments: [a]\n    retries: 99\n",
                     "groups[0].retries: '99' is not a whole number from 0 to 10");
    parse_fails_with("groups:\n  - name: g\n    deployments: [a]\n    breaker: { error_rate: 2 }\n",
                     "groups[0].breaker.error_rate: '2' is not a fraction");
    parse_fails_with("groups:\n  - name: g\n    deployments: [a]\n    hedge: { after: soon }\n",
                     "groups[0].hedge.after: 'soon' is not a duration");
    parse_fails_with("groups:\n  - name: g\n    deployments: [a]\n    tiers: { simple: [a] }\n",
                     "tiers: and tier_words: are used only with strategy: tiers");
}

static void test_model_routing_key_errors(void **state)
{
    const char *yaml =
        "providers:\n  - name: p\n    kind: openai\n    base_url: http://h/v1\n"
        "models:\n  - name: m\n    provider: p\n    price_in: 1\n"
        "    capabilities: [tools, telepathy]\n";
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = NULL;
    assert_int_equal(sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors), -1);
    if (!strstr(errors.ptr, "t.yaml:6: model 'm': price_in and price_out go together") ||
        !strstr(errors.ptr, "t.yaml:9: models[0].capabilities: 'telepathy' is not one of"))
        fail_msg("unexpected errors:\n%s", errors.ptr);
    sl_buf_release(&errors);
}

static void test_group_mirror(void **state)
{
    (void)state;
    struct sl_config *cfg = parse_ok("groups:\n"
                                     "  - { name: g, deployments: [a], mirror: { to: [b, c], sample: 0.1 } }\n"
                                     "  - { name: h, deployments: [a], mirror: { to: [c] } }\n"
                                     "  - { name: i, deployments: [a] }\n");
    const struct sl_group_cfg *g = sl_config_find_group(cfg, "g");
    assert_int_equal(g->mirror.to.n, 2);
    assert_int_equal(g->mirror.to.index[0], 1);
    assert_int_equal(g->mirror.to.index[1], 2);
    assert_true(g->mirror.sample == 0.1);
    assert_int_equal(g->nmembers, 1); /* mirrors serve no request */
    const struct sl_group_cfg *h = sl_config_find_group(cfg, "h");
    assert_true(h->mirror.sample == 1.0); /* default: every request */
    assert_int_equal(sl_config_find_group(cfg, "i")->mirror.to.n, 0);
    sl_config_free(cfg);
    parse_fails_with("groups:\n  - { name: g, deployments: [a], mirror: { to: [zz] } }\n",
                     "mirror.to: unknown model 'zz'");
    parse_fails_with("groups:\n  - { name: g, deployments: [a], mirror: { to: [b], sample: 1.5 } }\n",
                     "is not a fraction from 0 to 1");
    parse_fails_with("groups:\n  - { name: g, deployments: [a], mirror: { sample: 0.5 } }\n",
                     "to");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_group_typed),
        cmocka_unit_test(test_group_mirror),
        cmocka_unit_test(test_group_defaults_and_tiers),
        cmocka_unit_test(test_group_errors_name_lines),
        cmocka_unit_test(test_model_routing_key_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
