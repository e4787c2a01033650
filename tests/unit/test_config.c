/* Unit tests for src/config: typing, ${VAR} substitution, enable-by-key, error lines,
 * durations and sizes, the shipped example, and pointers after add_provider/add_model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/limits.h"

/* Parses yaml, expecting success; prints the errors when it fails. */
static struct sl_config *parse_ok(const char *yaml)
{
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = NULL;
    int r = sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors);
    if (r != 0)
        print_error("unexpected errors:\n%s", errors.ptr ? errors.ptr : "(none)");
    assert_int_equal(r, 0);
    assert_non_null(cfg);
    sl_buf_release(&errors);
    return cfg;
}

/* Parses yaml, expecting failure; returns the error text (free it). */
static char *parse_fail(const char *yaml)
{
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = (struct sl_config *)1;
    assert_int_equal(sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors), -1);
    assert_null(cfg);
    assert_non_null(errors.ptr);
    return errors.ptr;
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void assert_has(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected to find \"%s\" in:\n%s", needle, haystack);
}

static void test_defaults(void **state)
{
    struct sl_config *cfg = sl_config_default();
    assert_non_null(cfg);
    assert_string_equal(cfg->server.listen, "127.0.0.1:4000");
    assert_int_equal(cfg->server.workers, 0);
    assert_int_equal(cfg->server.max_body, SL_MAX_REQUEST_BODY);
    assert_int_equal(cfg->server.max_headers, SL_MAX_HEADERS_SIZE);
    assert_int_equal(cfg->server.read_timeout_ms, 30000);
    assert_int_equal(cfg->server.write_timeout_ms, 60000);
    assert_int_equal(cfg->server.drain_timeout_ms, 30000);
    assert_string_equal(cfg->server.log_level, "info");
    assert_string_equal(cfg->store, "sqlite://./sluice.db");
    assert_int_equal(cfg->upstream.connect_ms, 10000);
    assert_int_equal(cfg->upstream.first_byte_ms, 120000);
    assert_int_equal(cfg->upstream.idle_ms, 60000);
    assert_int_equal(cfg->upstream.total_ms, 600000);
    assert_int_equal(cfg->sim, -1);
    assert_int_equal(cfg->nproviders, 0);
    assert_int_equal(cfg->nmodels, 0);
    sl_config_free(cfg);

    /* An empty file or one of comments is the defaults too. */
    cfg = parse_ok("# nothing yet\n\n");
    assert_int_equal(cfg->sim, -1);
    assert_string_equal(cfg->path, "t.yaml");
    sl_config_free(cfg);
    cfg = parse_ok("");
    sl_config_free(cfg);
}

static const char full_yaml[] =
    "server:\n"
    "  listen: 0.0.0.0:8080\n"
    "  workers: 4\n"
    "  max_body: 2MiB\n"
    "  max_headers: 16KB\n"
    "  read_timeout: 5s\n"
    "  write_timeout: 1m\n"
    "  drain_timeout: 1500\n"
    "  log_level: debug\n"
    "store: sqlite:///var/lib/sluice/db\n"
    "upstream:\n"
    "  connect_timeout: 3s\n"
    "  first_byte_timeout: 2m\n"
    "  idle_timeout: 45s\n"
    "  total_timeout: 1h\n"
    "sim: false\n"
    "providers:\n"
    "  - name: ds\n"
    "    kind: openai\n"
    "    base_url: https://api.deepseek.com/v1/\n"
    "    api_key: sk-literal\n"
    "    connect_timeout: 500ms\n"
    "    total_timeout: 300s\n"
    "  - name: claude\n"
    "    kind: anthropic\n"
    "    base_url: https://api.anthropic.com\n"
    "  - name: gem\n"
    "    kind: gemini\n"
    "    base_url: http://localhost:9000/v1beta\n"
    "models:\n"
    "  - name: fast\n"
    "    provider: ds\n"
    "    model: deepseek-chat\n"
    "    context_window: 131072\n"
    "  - name: claude-sonnet-4-5\n"
    "    provider: claude\n";

static void test_full_config_typed(void **state)
{
    struct sl_config *cfg = parse_ok(full_yaml);
    assert_string_equal(cfg->server.listen, "0.0.0.0:8080");
    assert_int_equal(cfg->server.workers, 4);
    assert_int_equal(cfg->server.max_body, 2 * 1024 * 1024);
    assert_int_equal(cfg->server.max_headers, 16000);
    assert_int_equal(cfg->server.read_timeout_ms, 5000);
    assert_int_equal(cfg->server.write_timeout_ms, 60000);
    assert_int_equal(cfg->server.drain_timeout_ms, 1500);
    assert_string_equal(cfg->server.log_level, "debug");
    assert_string_equal(cfg->store, "sqlite:///var/lib/sluice/db");
    assert_int_equal(cfg->upstream.connect_ms, 3000);
    assert_int_equal(cfg->upstream.total_ms, 3600000);
    assert_int_equal(cfg->sim, 0);

    assert_int_equal(cfg->nproviders, 3);
    const struct sl_provider_cfg *ds = &cfg->providers[0];
    assert_string_equal(ds->name, "ds");
    assert_int_equal(ds->kind, SL_WIRE_OPENAI);
    assert_string_equal(ds->base_url, "https://api.deepseek.com/v1"); /* slash removed */
    assert_string_equal(ds->api_key, "sk-literal");
    assert_true(ds->enabled);
    assert_null(ds->disabled_reason);
    assert_int_equal(ds->line, 18);
    /* Overridden timeouts are its own; the others come from upstream:. */
    assert_int_equal(ds->timeouts.connect_ms, 500);
    assert_int_equal(ds->timeouts.total_ms, 300000);
    assert_int_equal(ds->timeouts.first_byte_ms, 120000);
    assert_int_equal(ds->timeouts.idle_ms, 45000);

    const struct sl_provider_cfg *claude = &cfg->providers[1];
    assert_int_equal(claude->kind, SL_WIRE_ANTHROPIC);
    assert_null(claude->api_key); /* no api_key: key at all: enabled, no key */
    assert_true(claude->enabled);
    assert_int_equal(cfg->providers[2].kind, SL_WIRE_GEMINI);
    assert_string_equal(sl_wire_name(cfg->providers[2].kind), "gemini");
    assert_string_equal(sl_wire_name(SL_WIRE_OPENAI), "openai");
    assert_string_equal(sl_wire_name(SL_WIRE_ANTHROPIC), "anthropic");

    assert_int_equal(cfg->nmodels, 2);
    const struct sl_model_cfg *fast = sl_config_find_model(cfg, "fast");
    assert_non_null(fast);
    assert_string_equal(fast->model, "deepseek-chat");
    assert_int_equal(fast->context_window, 131072);
    assert_ptr_equal(fast->p, ds);
    assert_int_equal(fast->line, 31);
    const struct sl_model_cfg *sonnet = sl_config_find_model(cfg, "claude-sonnet-4-5");
    assert_non_null(sonnet);
    assert_string_equal(sonnet->model, "claude-sonnet-4-5"); /* model defaults to name */
    assert_int_equal(sonnet->context_window, 0);
    assert_null(sl_config_find_model(cfg, "nope"));
    sl_config_free(cfg);
}

static void expand(const char *in, const char *want, const char *want_unset)
{
    struct sl_buf out = SL_BUF_INIT(1024);
    char unset[64];
    const char *why = NULL;
    assert_int_equal(sl_config_expand_env(in, strlen(in), &out, unset, sizeof(unset), &why), 0);
    assert_string_equal(out.ptr, want);
    assert_string_equal(unset, want_unset);
    sl_buf_release(&out);
}

static void expand_fails(const char *in)
{
    struct sl_buf out = SL_BUF_INIT(1024);
    char unset[64];
    const char *why = NULL;
    assert_int_equal(sl_config_expand_env(in, strlen(in), &out, unset, sizeof(unset), &why), -1);
    assert_non_null(why);
    sl_buf_release(&out);
}

static void test_env_substitution(void **state)
{
    setenv("SLT_HOST", "example.com", 1);
    setenv("SLT_EMPTY", "", 1);
    unsetenv("SLT_UNSET");
    expand("plain", "plain", "");
    expand("${SLT_HOST}", "example.com", "");
    expand("https://${SLT_HOST}/v1", "https://example.com/v1", "");
    expand("${SLT_UNSET:-fallback}", "fallback", "");
    expand("${SLT_EMPTY:-fallback}", "fallback", ""); /* ":-" covers empty, as in sh */
    expand("${SLT_HOST:-fallback}", "example.com", "");
    expand("${SLT_UNSET:-}", "", "");
    expand("${SLT_UNSET}", "", "SLT_UNSET");
    expand("a${SLT_EMPTY}b", "ab", "SLT_EMPTY");
    expand("$${SLT_HOST}", "${SLT_HOST}", "");
    expand("cost: 5$$", "cost: 5$", "");
    expand("pa$sword$", "pa$sword$", "");
    expand_fails("${SLT_HOST");
    expand_fails("${1BAD}");
    expand_fails("${SLT HOST}");
    expand_fails("${}");

    struct sl_config *cfg = parse_ok("server:\n"
                                     "  listen: ${SLT_UNSET:-127.0.0.1}:${SLT_PORT:-4100}\n"
                                     "providers:\n"
                                     "  - name: p\n"
                                     "    kind: openai\n"
                                     "    base_url: https://${SLT_HOST}/v1\n"
                                     "    api_key: k$$1\n");
    assert_string_equal(cfg->server.listen, "127.0.0.1:4100");
    assert_string_equal(cfg->providers[0].base_url, "https://example.com/v1");
    assert_string_equal(cfg->providers[0].api_key, "k$1");
    sl_config_free(cfg);

    char *errors = parse_fail("store: ${SLT_UNSET}\n");
    assert_has(errors, "t.yaml:1: store: is empty because SLT_UNSET is not set");
    free(errors);
}

static void test_disabled_provider(void **state)
{
    unsetenv("SLT_MISSING_KEY");
    setenv("SLT_PRESENT_KEY", "sk-present", 1);
    struct sl_config *cfg = parse_ok("providers:\n"
                                     "  - name: off\n"
                                     "    kind: openai\n"
                                     "    base_url: https://a.example/v1\n"
                                     "    api_key: ${SLT_MISSING_KEY}\n"
                                     "  - name: on\n"
                                     "    kind: openai\n"
                                     "    base_url: https://b.example/v1\n"
                                     "    api_key: ${SLT_PRESENT_KEY}\n"
                                     "  - name: local\n"
                                     "    kind: openai\n"
                                     "    base_url: http://127.0.0.1:8000/v1\n"
                                     "models:\n"
                                     "  - {name: m-off, provider: off}\n"
                                     "  - {name: m-on, provider: on}\n"
                                     "  - {name: m-local, provider: local}\n");
    const struct sl_provider_cfg *off = &cfg->providers[0];
    assert_false(off->enabled);
    assert_null(off->api_key);
    assert_string_equal(off->disabled_reason, "SLT_MISSING_KEY is not set");
    assert_true(cfg->providers[1].enabled);
    assert_string_equal(cfg->providers[1].api_key, "sk-present");
    assert_true(cfg->providers[2].enabled);
    assert_null(cfg->providers[2].api_key);

    /* The model stays in the array, pointing at its provider, but is not served. */
    assert_int_equal(cfg->nmodels, 3);
    assert_string_equal(cfg->models[0].name, "m-off");
    assert_ptr_equal(cfg->models[0].p, off);
    assert_null(sl_config_find_model(cfg, "m-off"));
    assert_non_null(sl_config_find_model(cfg, "m-on"));
    assert_non_null(sl_config_find_model(cfg, "m-local"));
    sl_config_free(cfg);
}

static void test_three_errors_three_lines(void **state)
{
    char *errors = parse_fail("server:\n"
                              "  listen: 127.0.0.1:4000\n"
                              "  lisen: 1\n"                 /* 3: unknown key */
                              "  read_timeout: soon\n"       /* 4: bad duration */
                              "providers:\n"
                              "  - name: p\n"
                              "    kind: openai\n"
                              "    base_url: ftp://x/\n");   /* 8: bad URL */
    assert_int_equal(count_lines(errors), 3);
    assert_has(errors, "t.yaml:3: server: unknown key 'lisen', did you mean 'listen'?");
    assert_has(errors, "known keys: listen, workers, max_body");
    assert_has(errors, "t.yaml:4: server.read_timeout: 'soon' is not a duration");
    assert_has(errors, "t.yaml:8: providers[0].base_url: expected an http:// or https:// URL");
    free(errors);
}

static void test_every_kind_of_error(void **state)
{
    char *errors = parse_fail("server:\n"
                              "  listen: localhost\n"        /* 2 */
                              "  workers: many\n"            /* 3 */
                              "  max_body: 10 parsecs\n"     /* 4 */
                              "  log_level: loud\n"          /* 5 */
                              "store: postgres://u:secret@db/sluice\n" /* 6 */
                              "sim: maybe\n"                 /* 7 */
                              "colour: blue\n"               /* 8 */
                              "upstream: 10s\n"              /* 9 */
                              "providers:\n"
                              "  - name: a b\n"              /* 11 */
                              "    kind: cohere\n"           /* 12 */
                              "    base_url: https://x\n"
                              "  - name: dup\n"              /* 14 */
                              "    kind: openai\n"
                              "    base_url: https://x\n"
                              "  - name: dup\n"              /* 17 */
                              "    base_url: https://y\n"    /* kind missing: 17 */
                              "    api_key: [1, 2]\n"        /* 19 */
                              "  - just a string\n"          /* 20 */
                              "models:\n"
                              "  - name: m\n"                /* 22 */
                              "    provider: ghost\n"
                              "  - name: m\n"                /* 24 */
                              "    provider: dup\n"
                              "  - provider: dup\n");        /* 26 */
    assert_has(errors, "t.yaml:2: server.listen: 'localhost' is not HOST:PORT");
    assert_has(errors, "t.yaml:3: server.workers: 'many' is not a number");
    assert_has(errors, "t.yaml:4: server.max_body: '10 parsecs' is not a size");
    assert_has(errors, "t.yaml:5: server.log_level: 'loud' is not one of debug, info, warn, error");
    assert_has(errors, "t.yaml:6: store: postgres:// is not supported yet");
    assert_has(errors, "t.yaml:7: sim: 'maybe' is not one of auto, true, false");
    assert_has(errors, "t.yaml:8: unknown key 'colour' (known keys: server, store, upstream, "
                       "sim, providers, models, groups, pricing, master_key, cache, budgets, "
                       "budget_alert, retention, govern, chunking)");
    assert_has(errors, "t.yaml:9: upstream: expected a mapping of keys, not a single value");
    assert_has(errors, "t.yaml:11: providers[0].name: 'a b' is not a valid name");
    assert_has(errors, "t.yaml:12: providers[0].kind: 'cohere' is not one of openai, anthropic");
    assert_has(errors, "t.yaml:17: providers[2]: missing required key 'kind'");
    assert_has(errors, "t.yaml:19: providers[2].api_key: expected a single value, not a list");
    assert_has(errors, "t.yaml:20: providers[3]: expected a provider (name, kind, base_url), "
                       "not a single value");
    assert_has(errors, "t.yaml:17: duplicate provider name 'dup' (first defined at line 14)");
    assert_has(errors, "t.yaml:22: model 'm': unknown provider 'ghost' (providers: dup, dup)");
    assert_has(errors, "t.yaml:24: duplicate model name 'm' (first defined at line 22)");
    assert_has(errors, "t.yaml:26: models[2]: missing required key 'name'");
    /* A store URL may hold a password: it is never echoed. */
    assert_null(strstr(errors, "secret"));
    assert_int_equal(count_lines(errors), 17);
    free(errors);
}

static void test_anchors_and_x_keys(void **state)
{
    struct sl_config *cfg = parse_ok("x-slow: &slow\n"
                                     "  first_byte_timeout: 300s\n"
                                     "  total_timeout: 900s\n"
                                     "providers:\n"
                                     "  - &vllm\n"
                                     "    <<: *slow\n"
                                     "    name: vllm\n"
                                     "    kind: openai\n"
                                     "    base_url: http://127.0.0.1:8000/v1\n"
                                     "  - <<: *vllm\n"
                                     "    name: vllm2\n"
                                     "    base_url: http://127.0.0.1:8001/v1\n");
    assert_int_equal(cfg->nproviders, 2);
    assert_int_equal(cfg->providers[0].timeouts.first_byte_ms, 300000);
    assert_int_equal(cfg->providers[0].timeouts.total_ms, 900000);
    assert_int_equal(cfg->providers[0].timeouts.connect_ms, 10000);
    assert_string_equal(cfg->providers[1].name, "vllm2");
    assert_string_equal(cfg->providers[1].base_url, "http://127.0.0.1:8001/v1");
    assert_int_equal(cfg->providers[1].timeouts.total_ms, 900000);
    sl_config_free(cfg);

    /* Only top-level x- keys are free-form. */
    char *errors = parse_fail("server:\n  x-note: 1\n");
    assert_has(errors, "t.yaml:2: server: unknown key 'x-note'");
    free(errors);
}

static void test_yaml_syntax_error(void **state)
{
    char *errors = parse_fail("server:\n  listen: 127.0.0.1:4000\nstore: \"unterminated\n");
    assert_has(errors, "t.yaml:3:");
    free(errors);
    errors = parse_fail("sim: true\nstore: sqlite://a\nsim: false\n");
    assert_has(errors, "t.yaml:3: duplicate key");
    free(errors);
    /* Malformed UTF-8 is refused before libfyaml sees it (this input hangs 0.7.12). */
    errors = parse_fail("store: sqlite://a\n% \xc2#\n");
    assert_has(errors, "t.yaml:2: not valid UTF-8 text");
    free(errors);
    errors = parse_fail("sim: auto # \xed\xa0\x80 is a surrogate\n");
    assert_has(errors, "t.yaml:1: not valid UTF-8 text");
    free(errors);
    struct sl_config *cfg = parse_ok("# \xe4\xb8\xad\xe6\x96\x87\n"
                                     "store: sqlite://./\xe6\x95\xb0.db\n");
    assert_string_equal(cfg->store, "sqlite://./\xe6\x95\xb0.db");
    sl_config_free(cfg);
    errors = parse_fail("- a\n- b\n");
    assert_has(errors, "t.yaml:1: the file must be a mapping of keys");
    free(errors);
}

static void test_load_missing_file(void **state)
{
    struct sl_buf errors = SL_BUF_INIT(4096);
    struct sl_config *cfg = NULL;
    assert_int_equal(sl_config_load("/nonexistent/sluice.yaml", &cfg, &errors), -1);
    assert_null(cfg);
    assert_has(errors.ptr, "/nonexistent/sluice.yaml: cannot open:");
    sl_buf_release(&errors);
}

static void test_durations(void **state)
{
    static const struct { const char *in; int ms; } ok[] = {
        {"200ms", 200}, {"10s", 10000}, {"5m", 300000}, {"1h", 3600000},
        {"1500", 1500}, {"2 s", 2000},  {"596h", 596 * 3600000},
    };
    static const char *const bad[] = {"", "0", "0s", "-1s", "1.5s", "10x", "s", "1d", "597h",
                                      "99999999999999999999", "10s ", " 10s"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int ms = -1;
        assert_int_equal(sl_config_parse_duration(ok[i].in, &ms), 0);
        assert_int_equal(ms, ok[i].ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int ms = 0;
        if (sl_config_parse_duration(bad[i], &ms) == 0)
            fail_msg("duration \"%s\" should be rejected, got %d ms", bad[i], ms);
    }
}

static void test_sizes(void **state)
{
    static const struct { const char *in; size_t bytes; } ok[] = {
        {"65536", 65536},           {"1B", 1},
        {"64KiB", 64 * 1024},       {"10MiB", 10u * 1024 * 1024},
        {"1GiB", 1024u * 1024 * 1024}, {"2KB", 2000},
        {"3MB", 3000000},           {"1GB", 1000000000},
    };
    static const char *const bad[] = {"", "0", "0MiB", "-5", "1.5MiB", "10mb", "10 MiBs", "KiB",
                                      "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        size_t n = 0;
        assert_int_equal(sl_config_parse_size(ok[i].in, &n), 0);
        assert_int_equal(n, ok[i].bytes);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = 0;
        if (sl_config_parse_size(bad[i], &n) == 0)
            fail_msg("size \"%s\" should be rejected, got %zu", bad[i], n);
    }
}

static const char *const example_keys[] = {
    "DEEPSEEK_API_KEY", "DASHSCOPE_API_KEY", "MOONSHOT_API_KEY", "ZHIPUAI_API_KEY",
    "OPENAI_API_KEY",   "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
};

static struct sl_config *load_example(void)
{
    const char *src = getenv("SL_SRCDIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/examples/sluice.yaml", src ? src : ".");
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = NULL;
    if (sl_config_load(path, &cfg, &errors))
        fail_msg("%s does not load:\n%s", path, errors.ptr ? errors.ptr : "");
    sl_buf_release(&errors);
    return cfg;
}

static void test_example_loads_without_keys(void **state)
{
    for (size_t i = 0; i < sizeof(example_keys) / sizeof(example_keys[0]); i++)
        unsetenv(example_keys[i]);
    struct sl_config *cfg = load_example();
    assert_string_equal(cfg->server.listen, "127.0.0.1:4000");
    assert_string_equal(cfg->store, "sqlite://./sluice.db");
    assert_int_equal(cfg->nproviders, 7);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        assert_false(cfg->providers[i].enabled);
        assert_non_null(strstr(cfg->providers[i].disabled_reason, "_API_KEY is not set"));
    }
    assert_true(cfg->nmodels >= 15);
    assert_null(sl_config_find_model(cfg, "deepseek-chat"));
    sl_config_free(cfg);

    setenv("DEEPSEEK_API_KEY", "sk-test", 1);
    cfg = load_example();
    const struct sl_model_cfg *m = sl_config_find_model(cfg, "deepseek-chat");
    assert_non_null(m);
    assert_string_equal(m->p->name, "deepseek");
    assert_string_equal(m->p->api_key, "sk-test");
    assert_string_equal(m->p->base_url, "https://api.deepseek.com/v1");
    assert_non_null(sl_config_find_model(cfg, "deepseek-reasoner"));
    assert_null(sl_config_find_model(cfg, "gpt-4o"));
    sl_config_free(cfg);
    unsetenv("DEEPSEEK_API_KEY");
}

static void assert_models_resolved(const struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct sl_model_cfg *m = &cfg->models[i];
        assert_non_null(m->p);
        assert_true(m->p >= cfg->providers && m->p < cfg->providers + cfg->nproviders);
        assert_string_equal(m->p->name, m->provider);
    }
}

static void test_rerank_keys(void **state)
{
    struct sl_config *cfg = parse_ok("providers:\n"
                                     "  - { name: co, kind: openai, base_url: https://api.cohere.com, rerank: cohere }\n"
                                     "  - { name: ds, kind: openai, base_url: http://x/v1, rerank: dashscope,\n"
                                     "      rerank_url: http://x/own/rerank }\n"
                                     "  - { name: j, kind: openai, base_url: http://y/v1, preset: jina }\n"
                                     "models:\n"
                                     "  - { name: r, provider: ds, capabilities: [rerank] }\n");
    assert_int_equal(cfg->providers[0].rerank, SL_RERANK_COHERE);
    assert_int_equal(cfg->providers[1].rerank, SL_RERANK_DASHSCOPE);
    assert_string_equal(cfg->providers[1].rerank_url, "http://x/own/rerank");
    assert_int_equal(cfg->providers[2].rerank, SL_RERANK_AUTO);
    assert_string_equal(cfg->providers[2].preset, "jina");
    assert_int_equal(cfg->models[0].capabilities, SL_CAP_RERANK);
    sl_config_free(cfg);
    char *errors = parse_fail("providers:\n"
                              "  - { name: p, kind: openai, base_url: http://x/v1, rerank: voyage }\n");
    assert_has(errors, "t.yaml:2: providers[0].rerank: 'voyage' is not one of jina, cohere, dashscope");
    free(errors);
}

static void test_add_keeps_pointers_valid(void **state)
{
    struct sl_config *cfg = parse_ok("upstream:\n  connect_timeout: 2s\n"
                                     "providers:\n"
                                     "  - {name: first, kind: openai, base_url: 'http://h/v1'}\n"
                                     "models:\n"
                                     "  - {name: m0, provider: first}\n");
    char name[32], model[32];
    /* Enough rounds that realloc moves the providers array. */
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof(name), "p%d", i);
        snprintf(model, sizeof(model), "m%d-x", i);
        assert_int_equal(sl_config_add_provider(cfg, name, SL_WIRE_OPENAI, "http://sim/v1/",
                                                i % 2 ? "key" : NULL), 0);
        assert_int_equal(sl_config_add_model(cfg, model, name, i % 3 ? NULL : "upstream-id"), 0);
        assert_models_resolved(cfg);
    }
    assert_int_equal(cfg->nproviders, 201);
    assert_int_equal(cfg->nmodels, 201);
    const struct sl_model_cfg *m = sl_config_find_model(cfg, "m0");
    assert_non_null(m);
    assert_string_equal(m->p->name, "first");
    m = sl_config_find_model(cfg, "m7-x");
    assert_non_null(m);
    assert_string_equal(m->model, "m7-x");
    assert_string_equal(m->p->base_url, "http://sim/v1");
    assert_string_equal(m->p->api_key, "key");
    assert_true(m->p->enabled);
    assert_int_equal(m->p->timeouts.connect_ms, 2000); /* from upstream: */
    assert_string_equal(sl_config_find_model(cfg, "m0-x")->model, "upstream-id");

    /* A model added before its provider resolves once the provider arrives. */
    assert_int_equal(sl_config_add_model(cfg, "early", "late", NULL), 0);
    assert_null(cfg->models[cfg->nmodels - 1].p);
    assert_null(sl_config_find_model(cfg, "early"));
    assert_int_equal(sl_config_add_provider(cfg, "late", SL_WIRE_GEMINI, "http://g", NULL), 0);
    assert_non_null(sl_config_find_model(cfg, "early"));
    assert_models_resolved(cfg);
    sl_config_free(cfg);

    cfg = sl_config_default();
    assert_int_equal(sl_config_add_provider(cfg, "sim", SL_WIRE_OPENAI, "http://127.0.0.1:4001/v1",
                                            NULL), 0);
    assert_int_equal(sl_config_add_model(cfg, "sim-fast", "sim", NULL), 0);
    assert_ptr_equal(sl_config_find_model(cfg, "sim-fast")->p, &cfg->providers[0]);
    sl_config_free(cfg);
}

/* budgets:, budget_alert:, retention: and limits: on models and groups. */
static void test_budgets_and_limits(void **state)
{
    (void)state;
    struct sl_config *cfg = parse_ok("providers: [{name: p, kind: openai, base_url: http://h}]\n"
                                     "models:\n"
                                     "  - {name: m, provider: p, limits: {rpm: 60, concurrency: 4}}\n"
                                     "groups: [{name: g, deployments: [m], limits: {tpm: 9000}}]\n"
                                     "budgets:\n"
                                     "  - {tag: team=search, limit: 50usd/month}\n"
                                     "budget_alert: 75%\n"
                                     "retention: 90d\n");
    assert_int_equal(cfg->models[0].limits.rpm, 60);
    assert_int_equal(cfg->models[0].limits.tpm, 0);
    assert_int_equal(cfg->models[0].limits.concurrency, 4);
    assert_int_equal(cfg->groups[0].limits.tpm, 9000);
    assert_int_equal(cfg->govern.nbudgets, 1);
    assert_string_equal(cfg->govern.budgets[0].tag, "team=search");
    assert_string_equal(cfg->govern.budgets[0].limit, "50usd/month");
    assert_int_equal(cfg->govern.soft_percent, 75);
    assert_int_equal(cfg->govern.retention_days, 90);
    sl_config_free(cfg);
    cfg = parse_ok("sim: true\n");
    assert_int_equal(cfg->govern.soft_percent, 80);
    assert_int_equal(cfg->govern.retention_days, 0);
    sl_config_free(cfg);
    char *errors = parse_fail("budgets:\n"                               /* 1 */
                              "  - {tag: team, limit: 5usd}\n"            /* 2 */
                              "  - {tag: a=b, limit: 5eur/week}\n"        /* 3 */
                              "  - {limit: 5usd}\n"                       /* 4 */
                              "budget_alert: 120%\n"                      /* 5 */
                              "retention: soon\n"                         /* 6 */
                              "providers: [{name: p, kind: openai, base_url: http://h}]\n"
                              "models: [{name: m, provider: p, limits: {rpm: 0}}]\n"); /* 8 */
    assert_has(errors, "t.yaml:2: budgets[0].tag: 'team' is not a tag NAME=VALUE");
    assert_has(errors, "t.yaml:3: budgets[1].limit: '5eur/week' is not a budget");
    assert_has(errors, "t.yaml:4: budgets[2]: missing required key 'tag'");
    assert_has(errors, "t.yaml:5: budget_alert: '120%' is not a percentage from 0 to 100");
    assert_has(errors, "t.yaml:6: retention: 'soon' is not a number of days");
    assert_has(errors, "t.yaml:8: models[0].limits.rpm: '0' is not a whole number above 0");
    free(errors);
}

/* govern: where the counters of budgets and limits live. */
static void test_govern_backend(void **state)
{
    (void)state;
    struct sl_config *cfg = parse_ok("sim: true\n");
    assert_string_equal(cfg->govern.backend, "memory");
    assert_int_equal(cfg->govern.allow_on_error, 0);
    assert_int_equal(cfg->govern.lease_ms, 600000);
    sl_config_free(cfg);
    cfg = parse_ok("sim: true\n"
                   "govern: {backend: redis://10.0.0.5:6380/2, on_error: allow, lease: 90s}\n");
    assert_string_equal(cfg->govern.backend, "redis://10.0.0.5:6380/2");
    assert_int_equal(cfg->govern.allow_on_error, 1);
    assert_int_equal(cfg->govern.lease_ms, 90000);
    sl_config_free(cfg);
    cfg = parse_ok("sim: true\ngovern: {backend: redis://cache.internal}\n");
    assert_string_equal(cfg->govern.backend, "redis://cache.internal");
    sl_config_free(cfg);
    char *errors = parse_fail("sim: true\n"                               /* 1 */
                              "govern:\n"                                 /* 2 */
                              "  backend: redis://h:99999/0\n"            /* 3 */
                              "  on_error: maybe\n"                       /* 4 */
                              "  lease: 10ms\n"                           /* 5 */
                              "  colour: red\n");                         /* 6 */
    assert_has(errors, "t.yaml:3: govern.backend: 'redis://h:99999/0' is not memory or "
                       "redis://HOST[:PORT][/DB]");
    assert_has(errors, "t.yaml:4: govern.on_error: 'maybe' is not deny or allow");
    assert_has(errors, "t.yaml:5: govern.lease: '10ms' is not a duration of 1s or more");
    assert_has(errors, "t.yaml:6: govern: unknown key 'colour' (known keys: backend, on_error, lease)");
    free(errors);
    errors = parse_fail("sim: true\ngovern: {backend: redis://h/16}\n");
    assert_has(errors, "t.yaml:2: govern.backend: 'redis://h/16' is not memory");
    free(errors);
    errors = parse_fail("sim: true\ngovern: {backend: 'redis://user@h'}\n");
    assert_has(errors, "t.yaml:2: govern.backend:");
    free(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_govern_backend),
        cmocka_unit_test(test_full_config_typed),
        cmocka_unit_test(test_env_substitution),
        cmocka_unit_test(test_disabled_provider),
        cmocka_unit_test(test_three_errors_three_lines),
        cmocka_unit_test(test_every_kind_of_error),
        cmocka_unit_test(test_anchors_and_x_keys),
        cmocka_unit_test(test_yaml_syntax_error),
        cmocka_unit_test(test_load_missing_file),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_example_loads_without_keys),
        cmocka_unit_test(test_add_keeps_pointers_valid),
        cmocka_unit_test(test_rerank_keys),
        cmocka_unit_test(test_budgets_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
