/* Unit tests for src/meter/cost.c and src/meter/catalog.c, and the cost columns and
 * grouped sums of src/store/sqlite.c: every expected amount is worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "meter/catalog.h"
#include "meter/cost.h"
#include "meter/ledger.h"
#include "store/store.h"

static const struct sl_price flash = {140000, 2800, 280000, "USD"};   /* 0.14 / 0.0028 / 0.28 */
static const struct sl_price qwen_cny = {2000000, 2000000, 8000000, "CNY"}; /* 2 / 2 / 8 CNY */

static void assert_has(const struct sl_buf *b, const char *needle)
{
    if (!b->ptr || !strstr(b->ptr, needle))
        fail_msg("expected to find \"%s\" in:\n%s", needle, b->ptr ? b->ptr : "(nothing)");
}

/* ---- arithmetic --------------------------------------------------------------------- */

static void test_parse_decimal(void **state)
{
    int64_t v = -1;
    assert_int_equal(sl_cost_parse_decimal("0.27", 1000000000, &v), 0);
    assert_int_equal(v, 270000);
    assert_int_equal(sl_cost_parse_decimal("2", 1000000000, &v), 0);
    assert_int_equal(v, 2000000);
    assert_int_equal(sl_cost_parse_decimal("0.003625", 1000000000, &v), 0);
    assert_int_equal(v, 3625);
    assert_int_equal(sl_cost_parse_decimal(".5", 1000000000, &v), 0);
    assert_int_equal(v, 500000);
    assert_int_equal(sl_cost_parse_decimal("1000", 1000000000, &v), 0);
    assert_int_equal(v, 1000000000);
    const char *bad[] = {"0.0000001", "1001", "", ".", "-1", "1e3", "0,5", " 1", "1.2.3", "0x10"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sl_cost_parse_decimal(bad[i], 1000000000, &v), -1);
}

static void test_cost_exact_and_rounding(void **state)
{
    /* 600 uncached x 0.14 + 400 cached x 0.0028 + 500 x 0.28 = 84 + 1.12 + 140 = 225.12 */
    assert_int_equal(sl_cost_micros(&flash, 1000, 400, 500, "USD", 140000), 225);
    /* 1 token at 0.28 per million = 0.28 micro -> 0; 2 -> 0.56 -> 1; half rounds up */
    assert_int_equal(sl_cost_micros(&flash, 0, 0, 1, "USD", 140000), 0);
    assert_int_equal(sl_cost_micros(&flash, 0, 0, 2, "USD", 140000), 1);
    struct sl_price tenth = {100000, 100000, 100000, "USD"};
    assert_int_equal(sl_cost_micros(&tenth, 5, 0, 0, "USD", 140000), 1);  /* 0.5 */
    assert_int_equal(sl_cost_micros(&tenth, 4, 0, 0, "USD", 140000), 0);  /* 0.4 */
    assert_int_equal(sl_cost_micros(&tenth, 15, 0, 0, "USD", 140000), 2); /* 1.5 */
    /* one rounding on the sum: three half micro-units are 1.5 -> 2, not 1 + 1 + 1 */
    assert_int_equal(sl_cost_micros(&tenth, 10, 5, 5, "USD", 140000), 2);
    /* a million tokens of each kind is exactly the list price */
    assert_int_equal(sl_cost_micros(&flash, 2000000, 1000000, 1000000, "USD", 140000),
                     140000 + 2800 + 280000);
}

static void test_cost_cached_and_odd_counts(void **state)
{
    /* cached above prompt is capped at prompt; negative counts are 0 */
    assert_int_equal(sl_cost_micros(&flash, 1000000, 5000000, 0, "USD", 140000), 2800);
    assert_int_equal(sl_cost_micros(&flash, -5, -1, -9, "USD", 140000), 0);
    /* large counts do not wrap: 10^15 tokens at 1000 per million */
    struct sl_price dear = {1000000000, 1000000000, 1000000000, "USD"};
    assert_int_equal(sl_cost_micros(&dear, 0, 0, 1000000000000000LL, "USD", 140000),
                     1000000000000000000LL);
    assert_int_equal(sl_cost_micros(&dear, 0, 0, INT64_MAX, "USD", 140000), INT64_MAX);
}

static void test_cost_currency_conversion(void **state)
{
    /* 10 CNY for a million in and a million out; at 0.14 USD per CNY that is 1.40 USD */
    assert_int_equal(sl_cost_micros(&qwen_cny, 1000000, 0, 1000000, "CNY", 140000), 10000000);
    assert_int_equal(sl_cost_micros(&qwen_cny, 1000000, 0, 1000000, "USD", 140000), 1400000);
    /* 7 tokens: 14 CNY micro-units x 0.14 = 1.96 -> 2, rounded once after conversion */
    assert_int_equal(sl_cost_micros(&qwen_cny, 7, 0, 0, "USD", 140000), 2);
    /* USD -> CNY: 1 USD / 0.14 = 7.142857142... CNY */
    assert_int_equal(sl_cost_convert(1000000, "USD", "CNY", 140000), 7142857);
    assert_int_equal(sl_cost_convert(1000000, "CNY", "USD", 137500), 137500);
    assert_int_equal(sl_cost_convert(123, "USD", "USD", 140000), 123);
    char out[32];
    sl_cost_format(1400000, out, sizeof(out));
    assert_string_equal(out, "1.400000");
    sl_cost_format(-7, out, sizeof(out));
    assert_string_equal(out, "-0.000007");
}

/* ---- the catalog -------------------------------------------------------------------- */

static struct sl_catalog *shipped_catalog(void)
{
    char path[1024];
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    const char *src = getenv("SL_SRCDIR");
    snprintf(path, sizeof(path), "%s/catalog/prices.yaml", src ? src : ".");
    struct sl_catalog *c = sl_catalog_load(path, &errors);
    if (!c)
        fail_msg("the shipped catalog does not load:\n%s", errors.ptr ? errors.ptr : "");
    sl_buf_release(&errors);
    return c;
}

static void test_shipped_catalog(void **state)
{
    static const char *const wanted[] = {
        "deepseek-chat", "deepseek-reasoner", "deepseek-v4-flash", "deepseek-v4-pro",
        "qwen3-32b", "qwen-max", "qwen-plus", "qwen-turbo", "kimi-k2-0905-preview", "kimi-k2.5",
        "glm-4-plus", "glm-5", "glm-4.5", "gpt-4o", "gpt-4o-mini", "claude-sonnet-4-5",
        "claude-haiku-4-5", "gemini-2.5-pro", "gemini-2.5-flash", "text-embedding-3-small",
        "gemini-embedding-001",
    };
    struct sl_catalog *c = shipped_catalog();
    for (size_t i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++) {
        const struct sl_catalog_entry *e = sl_catalog_find(c, wanted[i], NULL);
        if (!e)
            fail_msg("%s is not in the catalog", wanted[i]);
        assert_true(e->source[0] && e->date[0]);
        assert_true(e->price.cached_input <= e->price.input);
    }
    const struct sl_catalog_entry *q = sl_catalog_find(c, "qwen3-32b", "dashscope");
    assert_string_equal(q->price.currency, "CNY");
    assert_int_equal(q->price.cached_input, q->price.input); /* none written: full price */
    assert_int_equal(sl_catalog_find(c, "deepseek-v4-flash", NULL)->capabilities,
                     SL_CATALOG_TOOLS | SL_CATALOG_JSON | SL_CATALOG_REASONING);
    sl_catalog_free(c);
}

static void test_catalog_errors_have_lines(void **state)
{
    static const char yaml[] =
        "version: 1\n"                             /* 1 */
        "colour: blue\n"                           /* 2 */
        "models:\n"                                /* 3 */
        "  - model: a\n"                           /* 4 */
        "    provider: openai\n"                   /* 5 */
        "    currency: EUR\n"                      /* 6 */
        "    input: 0.0000001\n"                   /* 7 */
        "    output: 1\n"                          /* 8 */
        "    source: ftp://x\n"                    /* 9 */
        "    date: 2026-1-01\n"                    /* 10 */
        "    capabilities: [tools, telepathy]\n"   /* 11 */
        "  - model: b\n"                           /* 12 */
        "    provider: openai\n"                   /* 13 */
        "    currency: USD\n"                      /* 14 */
        "    output: 1\n"                          /* 15 */
        "    source: https://example.com\n"        /* 16 */
        "    date: 2026-01-01\n"                   /* 17 */
        "    flavour: x\n"                         /* 18 */
        "  - model: b\n"                           /* 19 */
        "    provider: openai\n"                   /* 20 */
        "    currency: USD\n"                      /* 21 */
        "    input: 1\n"                           /* 22 */
        "    output: 1\n"                          /* 23 */
        "    source: https://example.com\n"        /* 24 */
        "    date: 2026-01-01\n";                  /* 25 */
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    assert_null(sl_catalog_parse(yaml, strlen(yaml), "p.yaml", &errors));
    assert_has(&errors, "p.yaml:2: unknown key 'colour' (known keys: version, models)");
    assert_has(&errors, "p.yaml:6: models[0].currency: 'EUR' is not USD or CNY");
    assert_has(&errors, "p.yaml:7: models[0].input: '0.0000001' is not a price per million tokens");
    assert_has(&errors, "p.yaml:9: models[0].source: 'ftp://x' is not the http(s) URL");
    assert_has(&errors, "p.yaml:10: models[0].date: '2026-1-01' is not the date");
    assert_has(&errors, "p.yaml:11: models[0].capabilities: 'telepathy' is not one of");
    assert_has(&errors, "p.yaml:18: models[1]: unknown key 'flavour'");
    assert_has(&errors, "p.yaml:12: models[1]: missing required key 'input'");
    assert_has(&errors, "p.yaml:19: models[2]: 'b' from 'openai' is listed twice (first at line 12)");
    sl_buf_release(&errors);

    struct sl_buf e2 = SL_BUF_INIT(4096);
    assert_null(sl_catalog_parse("models: [\n", 10, "q.yaml", &e2));
    assert_has(&e2, "q.yaml:");
    sl_buf_release(&e2);
    struct sl_buf e3 = SL_BUF_INIT(4096);
    assert_null(sl_catalog_load("/nonexistent/prices.yaml", &e3));
    assert_has(&e3, "/nonexistent/prices.yaml: cannot open");
    sl_buf_release(&e3);
}

/* ---- config: pricing: ---------------------------------------------------------------- */

static struct sl_config *parse_config(const char *yaml, struct sl_buf *errors)
{
    struct sl_config *cfg = NULL;
    sl_config_parse(yaml, strlen(yaml), "c.yaml", &cfg, errors);
    return cfg;
}

static void free_config(struct sl_config *cfg)
{
    if (cfg)
        sl_config_release_pricing(cfg); /* idempotent: right before sl_config_free either way */
    sl_config_free(cfg);
}

static void test_pricing_defaults(void **state)
{
    struct sl_config *cfg = sl_config_default();
    assert_non_null(cfg);
    assert_string_equal(cfg->pricing.catalog, "catalog/prices.yaml");
    assert_int_equal(cfg->pricing.catalog_line, 0);
    assert_string_equal(cfg->pricing.currency, "USD");
    assert_int_equal(cfg->pricing.usd_per_cny, 140000);
    assert_int_equal(cfg->pricing.noverrides, 0);
    free_config(cfg);
}

static void test_pricing_overrides(void **state)
{
    static const char yaml[] = "pricing:\n"
                               "  catalog: ${SL_SRCDIR:-.}/catalog/prices.yaml\n"
                               "  currency: CNY\n"
                               "  usd_per_cny: 0.1375\n"
                               "  overrides:\n"
                               "    - model: gpt-4o\n"
                               "      input: 2\n"
                               "      output: 8\n"
                               "    - model: my-vllm-model\n"
                               "      provider: vllm\n"
                               "      currency: CNY\n"
                               "      input: 0.5\n"
                               "      cached_input: 0.1\n"
                               "      output: 1\n";
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = parse_config(yaml, &errors);
    if (!cfg)
        fail_msg("%s", errors.ptr);
    assert_int_equal(cfg->pricing.usd_per_cny, 137500);
    assert_int_equal(cfg->pricing.noverrides, 2);
    struct sl_catalog *c = sl_catalog_from_config(cfg, &errors);
    if (!c)
        fail_msg("%s", errors.ptr);
    assert_string_equal(c->currency, "CNY");
    const struct sl_catalog_entry *e = sl_catalog_find(c, "gpt-4o", "openai");
    assert_int_equal(e->price.input, 2000000);
    assert_int_equal(e->price.cached_input, 2000000); /* not written: the input price */
    assert_int_equal(e->price.output, 8000000);
    e = sl_catalog_find(c, "my-vllm-model", NULL);
    assert_non_null(e);
    assert_string_equal(e->provider, "vllm");
    assert_int_equal(e->price.cached_input, 100000);
    /* 1M in, 1M out of gpt-4o: 10 USD at 0.1375 USD per CNY = 72.727272(72) CNY */
    assert_int_equal(sl_cost_micros(&sl_catalog_find(c, "gpt-4o", NULL)->price, 1000000, 0,
                                    1000000, c->currency, c->usd_per_cny),
                     72727273);
    sl_catalog_free(c);
    free_config(cfg);
    sl_buf_release(&errors);
}

static void test_pricing_config_errors(void **state)
{
    static const char yaml[] = "pricing:\n"                        /* 1 */
                               "  currency: EUR\n"                 /* 2 */
                               "  usd_per_cny: 0\n"                /* 3 */
                               "  catalog: a b\n"                  /* 4 */
                               "  overrides:\n"                    /* 5 */
                               "    - model: x\n"                  /* 6 */
                               "      input: 0.1234567\n"          /* 7 */
                               "      output: 1\n"                 /* 8 */
                               "      provider: nobody\n"          /* 9 */
                               "    - input: 1\n"                  /* 10 */
                               "      output: 1\n";                /* 11 */
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    assert_null(parse_config(yaml, &errors));
    assert_has(&errors, "c.yaml:2: pricing.currency: 'EUR' is not one of USD, CNY");
    assert_has(&errors, "c.yaml:3: pricing.usd_per_cny: '0' is not an exchange rate above 0");
    assert_has(&errors, "c.yaml:4: pricing.catalog: expected a file path without spaces");
    assert_has(&errors, "c.yaml:7: pricing.overrides[0].input: '0.1234567' is not a price");
    assert_has(&errors, "c.yaml:9: pricing.overrides[0].provider: 'nobody' is not a provider preset");
    assert_has(&errors, "c.yaml:10: pricing.overrides[1]: missing required key 'model'");
    sl_buf_release(&errors);
}

static void test_pricing_duplicate_and_missing_catalog(void **state)
{
    static const char dup[] = "pricing:\n"
                              "  catalog: /nonexistent/prices.yaml\n"
                              "  overrides:\n"
                              "    - {model: m, input: 1, output: 1}\n"
                              "    - {model: m, input: 2, output: 2}\n";
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = parse_config(dup, &errors);
    assert_non_null(cfg);
    assert_null(sl_catalog_from_config(cfg, &errors));
    assert_has(&errors, "c.yaml:5: pricing.overrides[1]: 'm' is overridden twice (first at line 4)");
    free_config(cfg);
    sl_buf_reset(&errors);

    /* a written path that is missing is an error; the default one is not */
    cfg = parse_config("pricing:\n  catalog: /nonexistent/prices.yaml\n", &errors);
    assert_null(sl_catalog_from_config(cfg, &errors));
    assert_has(&errors, "/nonexistent/prices.yaml: cannot open");
    free_config(cfg);
    sl_buf_release(&errors);
}

/* ---- the row the request path fills ----------------------------------------------------- */

static void test_cost_row(void **state)
{
    struct sl_catalog *c = shipped_catalog();
    struct sl_provider_cfg openai = {.name = "openai", .base_url = "https://api.openai.com/v1",
                                     .preset = "openai", .enabled = 1};
    struct sl_model_cfg m = {.name = "fast", .provider = "openai", .model = "gpt-4o", .p = &openai};
    struct sl_usage_row row = {.prompt_tokens = 1000, .cached_tokens = 400,
                               .completion_tokens = 500, .reasoning_tokens = 200};
    /* catalog: 600 x 2.5 + 400 x 1.25 + 500 x 10 = 1500 + 500 + 5000 = 7000 micro-units;
     * the 200 reasoning tokens are inside the 500 completion tokens, not added again */
    sl_cost_row(c, &m, &row);
    assert_int_equal(row.price_known, 1);
    assert_string_equal(row.currency, "USD");
    assert_int_equal(row.cost_micros, 7000);

    /* config prices first; cached at the catalog's cached price (1.25 < price_in 2) */
    m.price_in = 2;
    m.price_out = 8;
    m.priced = 1; /* as a loaded config holds it */
    sl_cost_row(c, &m, &row);
    assert_int_equal(row.cost_micros, 600 * 2 + 400 * 125 / 100 + 500 * 8); /* 5700 */

    /* no catalog entry: cached tokens at price_in */
    m.model = "private-model";
    sl_cost_row(c, &m, &row);
    assert_int_equal(row.cost_micros, 1000 * 2 + 500 * 8);

    /* no price anywhere */
    m.priced = 0;
    sl_cost_row(c, &m, &row);
    assert_int_equal(row.price_known, 0);
    assert_int_equal(row.cost_micros, 0);
    assert_string_equal(row.currency, "USD");

    /* no model config: the row's upstream model is looked up */
    struct sl_usage_row r2 = {.upstream_model = "qwen3-32b", .prompt_tokens = 1000000};
    sl_catalog_configure(c, "USD", 140000);
    sl_cost_row(c, NULL, &r2);
    assert_int_equal(r2.cost_micros, 280000); /* 2 CNY x 0.14 */
    sl_cost_row(NULL, NULL, &r2);
    assert_int_equal(r2.price_known, 0);
    sl_catalog_free(c);
}

/* ---- reports over a real ledger ---------------------------------------------------------- */

struct ledger_fixture {
    char dir[64], path[128], url[160];
    struct sl_store *store;
};

static int ledger_setup(void **state)
{
    struct ledger_fixture *f = calloc(1, sizeof(*f));
    char err[256];
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/sl_cost_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/usage.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite://%s", f->path);
    *state = f;
    return sl_store_open(f->url, 0, &f->store, err, sizeof(err)) ? -1 : 0;
}

static int ledger_teardown(void **state)
{
    struct ledger_fixture *f = *state;
    static const char *suffixes[] = {"", "-wal", "-shm"};
    char p[160];
    sl_store_close(f->store);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

#define DAY_MS (86400 * 1000LL)
#define T0     (1767225600000LL) /* 2026-01-01T00:00:00Z */

static struct sl_usage_row row_of(const char *model, const char *provider, const char *key,
                                  int64_t ts, int64_t prompt, int64_t cached, int64_t completion)
{
    struct sl_usage_row r = {.ts_ms = ts, .prompt_tokens = prompt, .cached_tokens = cached,
                             .completion_tokens = completion, .final = 1, .attempt = 1,
                             .status = 200};
    snprintf(r.model, sizeof(r.model), "%s", model);
    snprintf(r.upstream_model, sizeof(r.upstream_model), "%s", model);
    snprintf(r.provider, sizeof(r.provider), "%s", provider);
    snprintf(r.key, sizeof(r.key), "%s", key);
    return r;
}

/* Six rows: gpt-4o x3 (one a failed attempt that still reported tokens), flash x2 on
 * another day, one model the catalog does not know. Costs from the shipped catalog. */
static void insert_rows(struct ledger_fixture *f, const struct sl_catalog *c)
{
    struct sl_usage_row rows[] = {
        row_of("gpt-4o", "openai", "team-a", T0 + 1000, 1000, 400, 500),       /* 7000 */
        row_of("gpt-4o", "openai", "team-b", T0 + 2000, 2000000, 0, 1000000),  /* 15000000 */
        row_of("gpt-4o", "openai", "team-a", T0 + 3000, 100, 0, 10),           /* 350 */
        row_of("deepseek-v4-flash", "deepseek", "team-a", T0 + DAY_MS, 1000000, 500000, 1000000),
        row_of("deepseek-v4-flash", "deepseek", "", T0 + DAY_MS + 5, 10, 0, 0), /* 1.4 -> 1 */
        row_of("mystery", "acme", "team-b", T0 + 40 * DAY_MS, 50, 0, 50),
    };
    rows[2].final = 0; /* a failed attempt: tokens and money count, the request does not */
    char err[256];
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        sl_cost_row(c, NULL, &rows[i]);
    assert_int_equal(rows[3].cost_micros, 70000 + 1400 + 280000); /* 351400 */
    assert_int_equal(sl_store_insert_usage(f->store, rows, 6, err, sizeof(err)), SL_STORE_OK);
}

static const struct sl_usage_group *find_group(const struct sl_usage_group *g, size_t n,
                                               const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(g[i].group, name) == 0)
            return &g[i];
    fail_msg("no group %s", name);
    return NULL;
}

static void test_report_by_model_and_key(void **state)
{
    struct ledger_fixture *f = *state;
    struct sl_catalog *c = shipped_catalog();
    struct sl_usage_group *g = NULL;
    size_t n = 0;
    char err[256];
    insert_rows(f, c);
    assert_int_equal(sl_store_usage_groups(f->store, 0, SL_BY_MODEL, &g, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    const struct sl_usage_group *o = find_group(g, n, "gpt-4o");
    assert_int_equal(o->requests, 2);
    assert_int_equal(o->prompt_tokens, 2001100);
    assert_int_equal(o->cached_tokens, 400);
    assert_int_equal(o->completion_tokens, 1000510);
    assert_int_equal(o->cost_micros, 7000 + 15000000 + 350);
    assert_string_equal(o->currency, "USD");
    assert_int_equal(o->unpriced, 0);
    assert_int_equal(find_group(g, n, "deepseek-v4-flash")->cost_micros, 351400 + 1);
    assert_int_equal(find_group(g, n, "mystery")->unpriced, 1);
    assert_int_equal(find_group(g, n, "mystery")->cost_micros, 0);
    free(g);

    assert_int_equal(sl_store_usage_groups(f->store, 0, SL_BY_KEY, &g, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3); /* "", team-a, team-b */
    assert_int_equal(find_group(g, n, "team-a")->cost_micros, 7000 + 350 + 351400);
    assert_int_equal(find_group(g, n, "team-b")->cost_micros, 15000000);
    assert_int_equal(find_group(g, n, "")->cost_micros, 1);
    free(g);

    /* --since: only the rows from the second day on */
    assert_int_equal(sl_store_usage_groups(f->store, T0 + DAY_MS, SL_BY_PROVIDER, &g, &n, err,
                                           sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_int_equal(find_group(g, n, "deepseek")->requests, 2);
    free(g);
    sl_catalog_free(c);
}

static void test_report_by_day_month_tag(void **state)
{
    struct ledger_fixture *f = *state;
    struct sl_catalog *c = shipped_catalog();
    struct sl_usage_group *g = NULL;
    size_t n = 0;
    char err[256];
    insert_rows(f, c);
    assert_int_equal(sl_store_usage_groups(f->store, 0, SL_BY_DAY, &g, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 3);
    assert_string_equal(g[0].group, "2026-01-01");
    assert_int_equal(g[0].cost_micros, 15007350);
    assert_string_equal(g[1].group, "2026-01-02");
    assert_string_equal(g[2].group, "2026-02-10");
    free(g);
    assert_int_equal(sl_store_usage_groups(f->store, 0, SL_BY_MONTH, &g, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_string_equal(g[0].group, "2026-01");
    assert_int_equal(g[0].cost_micros, 15007350 + 351401);
    assert_int_equal(g[0].requests, 4);
    free(g);
    g = NULL;
    /* No row carries a tag: they all fall in the one untagged group. */
    assert_int_equal(sl_store_usage_groups(f->store, 0, SL_BY_TAG, &g, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_string_equal(g[0].group, "");
    free(g);
    sl_catalog_free(c);
}

static void test_whatif_saving_exact(void **state)
{
    struct ledger_fixture *f = *state;
    struct sl_catalog *c = shipped_catalog();
    struct sl_usage_group *g = NULL;
    struct sl_cost_map map;
    const char *why = NULL;
    size_t n = 0;
    char err[256];
    insert_rows(f, c);
    assert_int_equal(sl_cost_parse_map(" gpt-4o = deepseek-v4-flash ,mystery=qwen-max", &map, &why),
                     0);
    assert_int_equal(map.n, 2);
    assert_string_equal(sl_cost_map_target(&map, "gpt-4o"), "deepseek-v4-flash");
    assert_null(sl_cost_map_target(&map, "deepseek-v4-flash"));
    assert_int_equal(sl_store_usage_groups(f->store, 0, SL_BY_UPSTREAM, &g, &n, err, sizeof(err)),
                     0);
    const struct sl_usage_group *o = find_group(g, n, "gpt-4o");
    assert_string_equal(o->provider, "openai");
    int64_t before = 0, after = 0;
    assert_int_equal(sl_cost_reprice(c, "gpt-4o", o->provider, o, &before), 0);
    assert_int_equal(sl_cost_reprice(c, "deepseek-v4-flash", NULL, o, &after), 0);
    /* on the sums: 2000700 uncached x 2.5 + 400 x 1.25 + 1000510 x 10 = 15007350, which
     * is also what the three rows were billed, since none of them needed rounding */
    assert_int_equal(before, 2000700LL * 25 / 10 + 400 * 125 / 100 + 1000510LL * 10);
    /* 2000700 x 0.14 + 400 x 0.0028 + 1000510 x 0.28 = 280098 + 1.12 + 280142.8 = 560241.92 */
    assert_int_equal(after, 560242);
    assert_int_equal(before - after, 15007350 - 560242);
    assert_int_equal(sl_cost_reprice(c, "nothing-like-it", NULL, o, &after), -1);
    free(g);
    assert_int_equal(sl_cost_parse_map("a=b,a=c", &map, &why), -1);
    assert_int_equal(sl_cost_parse_map("a=", &map, &why), -1);
    assert_int_equal(sl_cost_parse_map("", &map, &why), -1);
    sl_catalog_free(c);
}

static void test_selfhost_month(void **state)
{
    /* 2 GPUs x 2.50 x 720 h = 3600; 1.5 kW x 0.12 x 720 h = 129.60; people 1000 */
    struct sl_selfhost s = {2, 2500000, 1500000, 120000, 1000000000};
    assert_int_equal(sl_cost_selfhost_month(&s, 30), 3600000000LL + 129600000LL + 1000000000LL);
    assert_int_equal(sl_cost_days_in_month("2024-02"), 29);
    assert_int_equal(sl_cost_days_in_month("2026-02"), 28);
    assert_int_equal(sl_cost_days_in_month("2000-02"), 29);
    assert_int_equal(sl_cost_days_in_month("2100-02"), 28);
    assert_int_equal(sl_cost_days_in_month("2026-12"), 31);
    assert_int_equal(sl_cost_days_in_month("2026-13"), 0);
    assert_int_equal(sl_cost_days_in_month("2026-1"), 0);
}

static void test_schema_has_cost_columns(void **state)
{
    struct ledger_fixture *f = *state;
    struct sl_usage_row r = row_of("gpt-4o", "openai", "", T0, 10, 0, 10);
    char err[256];
    r.cost_micros = 123456789;
    r.price_known = 1;
    memcpy(r.currency, "CNY", 4);
    assert_int_equal(sl_store_insert_usage(f->store, &r, 1, err, sizeof(err)), 0);
    struct sl_usage_group *g = NULL;
    size_t n = 0;
    assert_int_equal(sl_store_usage_groups(f->store, 0, SL_BY_MODEL, &g, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_int_equal(g[0].cost_micros, 123456789);
    assert_string_equal(g[0].currency, "CNY");
    free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_decimal),
        cmocka_unit_test(test_cost_exact_and_rounding),
        cmocka_unit_test(test_cost_cached_and_odd_counts),
        cmocka_unit_test(test_cost_currency_conversion),
        cmocka_unit_test(test_shipped_catalog),
        cmocka_unit_test(test_catalog_errors_have_lines),
        cmocka_unit_test(test_pricing_defaults),
        cmocka_unit_test(test_pricing_overrides),
        cmocka_unit_test(test_pricing_config_errors),
        cmocka_unit_test(test_pricing_duplicate_and_missing_catalog),
        cmocka_unit_test(test_cost_row),
        cmocka_unit_test_setup_teardown(test_report_by_model_and_key, ledger_setup, ledger_teardown),
        cmocka_unit_test_setup_teardown(test_report_by_day_month_tag, ledger_setup, ledger_teardown),
        cmocka_unit_test_setup_teardown(test_whatif_saving_exact, ledger_setup, ledger_teardown),
        cmocka_unit_test(test_selfhost_month),
        cmocka_unit_test_setup_teardown(test_schema_has_cost_columns, ledger_setup, ledger_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
