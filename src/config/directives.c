/* The configuration keys: one directive table per block of the file, and the
 * functions that type each value. The walker that applies them is in load.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/loader.h"
#include "meter/cost.h"
#include "providers/providers.h"
#include "core/limits.h"
#include "core/log.h"

#define MAX_WORKERS        1024
#define MAX_CONTEXT_WINDOW 100000000 /* tokens; a larger number is a typo */
#define MAX_EMBED_BATCH    2048      /* OpenAI's own cap on inputs per request */

static int set_string(struct loader *ld, const struct scalar *v, void *base,
                      const struct directive *d)
{
    char *s = strdup(v->s);
    if (!s) {
        sl_config_oom(ld, v->line);
        return -1;
    }
    char **field = FIELD(char *, base, d);
    free(*field);
    *field = s;
    return 0;
}

static int has_space_or_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return 1;
    return 0;
}

static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        n = n * 10 + (uint64_t)(*s - '0');
        if (n > max)
            return -1;
    }
    *out = n;
    return 0;
}

/* Provider names end up in logs, metrics labels and URLs: keep them plain. */
static int parse_name(struct loader *ld, const struct scalar *v, void *base,
                      const struct directive *d)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    if (v->len > SL_MAX_NAME || strspn(v->s, ok) != v->len) {
        sl_config_bad(ld, v->line, v->key,
                      "'%.64s' is not a valid name (at most %d letters, digits, '.', '_' or '-')",
                      v->s, SL_MAX_NAME);
        return -1;
    }
    return set_string(ld, v, base, d);
}

/* Model names may hold '/', ':' or '@' ("meta-llama/Llama-3-8B", "qwen3:32b"). */
static int parse_model_id(struct loader *ld, const struct scalar *v, void *base,
                          const struct directive *d)
{
    if (v->len > SL_MAX_NAME || has_space_or_ctl(v->s)) {
        sl_config_bad(ld, v->line, v->key,
                      "'%.64s' is not a valid model name (at most %d characters, no spaces)", v->s,
                      SL_MAX_NAME);
        return -1;
    }
    return set_string(ld, v, base, d);
}

/* The value is not echoed: a URL may carry credentials. */
static int parse_url(struct loader *ld, const struct scalar *v, void *base,
                     const struct directive *d)
{
    const char *host = NULL;
    if (strncmp(v->s, "https://", 8) == 0)
        host = v->s + 8;
    else if (strncmp(v->s, "http://", 7) == 0)
        host = v->s + 7;
    if (!host || !*host || *host == '/' || v->len > SL_MAX_URL || has_space_or_ctl(v->s)) {
        sl_config_bad(ld, v->line, v->key,
                      "expected an http:// or https:// URL with a host, at most %d characters, "
                      "no spaces", SL_MAX_URL);
        return -1;
    }
    if (set_string(ld, v, base, d))
        return -1;
    char *url = *FIELD(char *, base, d);
    for (size_t n = strlen(url); n > 0 && url[n - 1] == '/'; n--)
        url[n - 1] = '\0';
    return 0;
}

static int valid_host(const char *h, size_t len)
{
    if (len >= 2 && h[0] == '[')
        return h[len - 1] == ']' && strspn(h + 1, "0123456789abcdefABCDEF:.") == len - 2;
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_";
    return len > 0 && strspn(h, ok) >= len;
}

static int parse_listen(struct loader *ld, const struct scalar *v, void *base,
                        const struct directive *d)
{
    const char *colon = strrchr(v->s, ':');
    uint64_t port = 0;
    if (!colon || !valid_host(v->s, (size_t)(colon - v->s)) ||
        parse_uint(colon + 1, 65535, &port)) {
        sl_config_bad(ld, v->line, v->key,
                      "'%.64s' is not HOST:PORT (e.g. 127.0.0.1:4000, 0.0.0.0:4000, [::1]:4000; "
                      "port 0-65535, 0 picks a free one)", v->s);
        return -1;
    }
    return set_string(ld, v, base, d);
}

/* The value is not echoed: a store URL may carry a password. */
static int parse_store(struct loader *ld, const struct scalar *v, void *base,
                       const struct directive *d)
{
    if (strncmp(v->s, "postgres://", 11) == 0 || strncmp(v->s, "postgresql://", 13) == 0) {
        sl_config_bad(ld, v->line, v->key, "postgres:// is not supported yet; use sqlite://PATH");
        return -1;
    }
    if (strncmp(v->s, "sqlite://", 9) != 0 || !v->s[9]) {
        sl_config_bad(ld, v->line, v->key, "expected sqlite://PATH (e.g. sqlite://./sluice.db)");
        return -1;
    }
    return set_string(ld, v, base, d);
}

static int parse_log_level(struct loader *ld, const struct scalar *v, void *base,
                           const struct directive *d)
{
    enum sl_log_level level;
    if (sl_log_parse_level(v->s, &level) < 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not one of debug, info, warn, error", v->s);
        return -1;
    }
    return set_string(ld, v, base, d);
}

static int parse_kind(struct loader *ld, const struct scalar *v, void *base,
                      const struct directive *d)
{
    if (sl_wire_parse(v->s, FIELD(enum sl_wire, base, d))) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not one of openai, anthropic, gemini", v->s);
        return -1;
    }
    return 0;
}

static int parse_sim(struct loader *ld, const struct scalar *v, void *base,
                     const struct directive *d)
{
    static const struct { const char *word; int value; } words[] = {
        {"auto", -1}, {"true", 1}, {"false", 0},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(v->s, words[i].word) == 0) {
            *FIELD(int, base, d) = words[i].value;
            return 0;
        }
    }
    sl_config_bad(ld, v->line, v->key, "'%.32s' is not one of auto, true, false", v->s);
    return -1;
}

static int parse_workers(struct loader *ld, const struct scalar *v, void *base,
                         const struct directive *d)
{
    uint64_t n;
    if (parse_uint(v->s, MAX_WORKERS, &n)) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a number from 0 (one per core) to %d",
                      v->s, MAX_WORKERS);
        return -1;
    }
    *FIELD(int, base, d) = (int)n;
    return 0;
}

static int parse_context(struct loader *ld, const struct scalar *v, void *base,
                         const struct directive *d)
{
    uint64_t n;
    if (parse_uint(v->s, MAX_CONTEXT_WINDOW, &n)) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a number of tokens (0 to %d)", v->s,
                      MAX_CONTEXT_WINDOW);
        return -1;
    }
    *FIELD(int64_t, base, d) = (int64_t)n;
    return 0;
}

static int parse_size(struct loader *ld, const struct scalar *v, void *base,
                      const struct directive *d)
{
    if (sl_config_parse_size(v->s, FIELD(size_t, base, d))) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a size (e.g. 65536, 64KiB, 10MiB, 1GB)",
                      v->s);
        return -1;
    }
    return 0;
}

static int parse_duration(struct loader *ld, const struct scalar *v, void *base,
                          const struct directive *d)
{
    if (sl_config_parse_duration(v->s, FIELD(int, base, d))) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a duration (e.g. 200ms, 10s, 5m, 1h, or "
                      "milliseconds)", v->s);
        return -1;
    }
    return 0;
}

/* A key written as ${VAR} whose variable is unset disables its provider instead of
 * failing the load: one config file serves every environment. Never echoes the key. */
static int parse_api_key(struct loader *ld, const struct scalar *v, void *base,
                         const struct directive *d)
{
    struct sl_provider_cfg *p = base;
    if (v->unset) {
        char reason[SL_MAX_NAME + 16];
        snprintf(reason, sizeof(reason), "%s is not set", v->unset);
        free(p->disabled_reason);
        p->disabled_reason = strdup(reason);
        p->enabled = 0;
        if (!p->disabled_reason)
            sl_config_oom(ld, v->line);
        return p->disabled_reason ? 0 : -1;
    }
    for (const char *c = v->s; *c; c++) {
        if ((unsigned char)*c < ' ' || *c == 0x7f) {
            sl_config_bad(ld, v->line, v->key, "contains control characters");
            return -1;
        }
    }
    return v->len ? set_string(ld, v, base, d) : 0;
}

/* The built-in default is "${SLUICE_MASTER_KEY}", and defaults reach here unexpanded
 * (line 0), so expand it here. Unset, empty or unusable (too long, spaces) means no
 * master key: the admin API then refuses every call, which fails closed. Never echoed. */
static int parse_master_key(struct loader *ld, const struct scalar *v, void *base,
                            const struct directive *d)
{
    struct sl_buf buf = SL_BUF_INIT(SL_MAX_MASTER_KEY);
    char unset[SL_MAX_NAME];
    const char *why = NULL, *s = v->s;
    char *field = FIELD(char, base, d);
    int bad = strlen(s) > SL_MAX_MASTER_KEY || has_space_or_ctl(s);
    if (v->line == 0) {
        int failed = sl_config_expand_env(v->s, v->len, &buf, unset, sizeof(unset), &why);
        s = failed || has_space_or_ctl(buf.ptr) ? "" : buf.ptr;
        bad = 0;
    }
    if (bad)
        sl_config_bad(ld, v->line, v->key, "expected at most %d characters, no spaces",
                      SL_MAX_MASTER_KEY);
    else
        memcpy(field, s, strlen(s) + 1);
    if (buf.ptr)
        explicit_bzero(buf.ptr, buf.len);
    sl_buf_release(&buf);
    return bad ? -1 : 0;
}

static int parse_embeddings(struct loader *ld, const struct scalar *v, void *base,
                            const struct directive *d)
{
    static const struct { const char *word; enum sl_embed_wire value; } words[] = {
        {"openai", SL_EMBED_OPENAI}, {"dashscope", SL_EMBED_DASHSCOPE}, {"gemini", SL_EMBED_GEMINI},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(v->s, words[i].word) == 0) {
            *FIELD(enum sl_embed_wire, base, d) = words[i].value;
            return 0;
        }
    }
    sl_config_bad(ld, v->line, v->key, "'%.32s' is not one of openai, dashscope, gemini", v->s);
    return -1;
}

static int parse_rerank(struct loader *ld, const struct scalar *v, void *base,
                        const struct directive *d)
{
    static const struct { const char *word; enum sl_rerank_wire value; } words[] = {
        {"jina", SL_RERANK_JINA}, {"cohere", SL_RERANK_COHERE}, {"dashscope", SL_RERANK_DASHSCOPE},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(v->s, words[i].word) == 0) {
            *FIELD(enum sl_rerank_wire, base, d) = words[i].value;
            return 0;
        }
    }
    sl_config_bad(ld, v->line, v->key, "'%.32s' is not one of jina, cohere, dashscope", v->s);
    return -1;
}

static int parse_preset(struct loader *ld, const struct scalar *v, void *base,
                        const struct directive *d)
{
    if (!sl_preset_find(v->s)) {
        sl_config_bad(ld, v->line, v->key,
                      "'%.32s' is not a preset (deepseek, dashscope, moonshot, zhipu, zai, "
                      "siliconflow, openrouter, openai, anthropic, gemini, ollama, vllm, jina, cohere)", v->s);
        return -1;
    }
    snprintf(FIELD(char, base, d), 32, "%s", v->s);
    return 0;
}

static int parse_max_batch(struct loader *ld, const struct scalar *v, void *base,
                           const struct directive *d)
{
    uint64_t n;
    if (parse_uint(v->s, MAX_EMBED_BATCH, &n) || n == 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a number of inputs from 1 to %d",
                      v->s, MAX_EMBED_BATCH);
        return -1;
    }
    *FIELD(int, base, d) = (int)n;
    return 0;
}

/* ---- groups: and the routing keys of models: ------------------------------------ */

#define MAX_RETRIES     10        /* a larger budget only multiplies load on a sick provider */
#define MAX_WEIGHT      1000000
#define MAX_TIER_WORDS  100000000
#define MAX_COUNT       1000000   /* breaker min_requests and consecutive */
#define MAX_PRICE       1000000.0 /* USD per million tokens; more is a typo */
#define MAX_GROUPS      1024

static int parse_strategy(struct loader *ld, const struct scalar *v, void *base,
                          const struct directive *d)
{
    static const char *const words[] = {
        [SL_STRATEGY_FALLBACK] = "fallback", [SL_STRATEGY_WEIGHTED] = "weighted",
        [SL_STRATEGY_LATENCY] = "latency",   [SL_STRATEGY_COST] = "cost",
        [SL_STRATEGY_TIERS] = "tiers",
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(v->s, words[i]) == 0) {
            *FIELD(enum sl_strategy, base, d) = (enum sl_strategy)i;
            return 0;
        }
    }
    sl_config_bad(ld, v->line, v->key,
                  "'%.32s' is not one of fallback, weighted, latency, cost, tiers", v->s);
    return -1;
}

static int bad_count(struct loader *ld, const struct scalar *v, uint64_t lo, uint64_t hi,
                     uint64_t *n)
{
    if (parse_uint(v->s, hi, n) == 0 && *n >= lo)
        return 0;
    sl_config_bad(ld, v->line, v->key, "'%.32s' is not a whole number from %llu to %llu", v->s,
                  (unsigned long long)lo, (unsigned long long)hi);
    return -1;
}

static int parse_retries(struct loader *ld, const struct scalar *v, void *base,
                         const struct directive *d)
{
    uint64_t n;
    if (bad_count(ld, v, 0, MAX_RETRIES, &n))
        return -1;
    *FIELD(int, base, d) = (int)n;
    return 0;
}

static int parse_min_requests(struct loader *ld, const struct scalar *v, void *base,
                              const struct directive *d)
{
    uint64_t n;
    if (bad_count(ld, v, 1, MAX_COUNT, &n))
        return -1;
    *FIELD(int, base, d) = (int)n;
    return 0;
}

/* 0 switches the consecutive-failures rule off. */
static int parse_consecutive(struct loader *ld, const struct scalar *v, void *base,
                             const struct directive *d)
{
    uint64_t n;
    if (bad_count(ld, v, 0, MAX_COUNT, &n))
        return -1;
    *FIELD(int, base, d) = (int)n;
    return 0;
}

/* strtod is locale-dependent only in LC_NUMERIC, which sluice never changes. */
static int parse_decimal(const char *s, double lo, double hi, double *out)
{
    char *end = NULL;
    if (!((*s >= '0' && *s <= '9') || *s == '.'))
        return -1;
    double x = strtod(s, &end);
    if (*end || !(x >= lo && x <= hi))
        return -1;
    *out = x;
    return 0;
}

static int parse_error_rate(struct loader *ld, const struct scalar *v, void *base,
                            const struct directive *d)
{
    double x;
    if (parse_decimal(v->s, 0.0, 1.0, &x) || x == 0.0) {
        sl_config_bad(ld, v->line, v->key,
                      "'%.32s' is not a fraction above 0 and at most 1 (e.g. 0.5)", v->s);
        return -1;
    }
    *FIELD(double, base, d) = x;
    return 0;
}

/* Records which of the pair was written (bit 1 price_in, bit 2 price_out): groups.c
 * insists on both, since half a price would rank a model wrongly. */
static int parse_price(struct loader *ld, const struct scalar *v, void *base,
                       const struct directive *d)
{
    struct sl_model_cfg *m = base;
    if (parse_decimal(v->s, 0.0, MAX_PRICE, FIELD(double, base, d))) {
        sl_config_bad(ld, v->line, v->key,
                      "'%.32s' is not a price in USD per million tokens (e.g. 0.27)", v->s);
        return -1;
    }
    m->priced |= d->off == offsetof(struct sl_model_cfg, price_in) ? 1 : 2;
    return 0;
}

static int parse_hedge_after(struct loader *ld, const struct scalar *v, void *base,
                             const struct directive *d)
{
    struct sl_hedge_cfg *h = base;
    if (strcmp(v->s, "p95") == 0) {
        h->p95 = 1;
        return 0;
    }
    if (sl_config_parse_duration(v->s, &h->after_ms) == 0)
        return 0;
    sl_config_bad(ld, v->line, v->key, "'%.32s' is not a duration (e.g. 2s, 500ms) or p95", v->s);
    return -1;
}

static int parse_sample(struct loader *ld, const struct scalar *v, void *base,
                        const struct directive *d)
{
    if (parse_decimal(v->s, 0.0, 1.0, FIELD(double, base, d)) == 0)
        return 0;
    sl_config_bad(ld, v->line, v->key, "'%.32s' is not a fraction from 0 to 1 (e.g. 0.1)", v->s);
    return -1;
}

static int seq_capabilities(struct loader *ld, const struct scalar *items, size_t n, int line,
                            void *base, const struct directive *d)
{
    static const struct { const char *word; unsigned bit; } words[] = {
        {"tools", SL_CAP_TOOLS}, {"json", SL_CAP_JSON}, {"images", SL_CAP_IMAGES},
        {"rerank", SL_CAP_RERANK},
    };
    unsigned caps = 0;
    int result = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < sizeof(words) / sizeof(words[0]) && strcmp(items[i].s, words[k].word))
            k++;
        if (k < sizeof(words) / sizeof(words[0])) {
            caps |= words[k].bit;
            continue;
        }
        sl_config_bad(ld, items[i].line, d->key, "'%.32s' is not one of tools, json, images, rerank",
                      items[i].s);
        result = -1;
    }
    if (!result && !caps) {
        sl_config_bad(ld, line, d->key, "is empty (leave the key out when unknown)");
        result = -1;
    }
    if (!result)
        *FIELD(unsigned, base, d) = caps;
    return result;
}

static void free_names(struct sl_name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->index);
    memset(l, 0, sizeof(*l));
}

static int check_names(struct loader *ld, const struct scalar *items, size_t n,
                       const struct directive *d)
{
    int result = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].len > SL_MAX_NAME || has_space_or_ctl(items[i].s)) {
            sl_config_bad(ld, items[i].line, d->key, "'%.64s' is not a valid model name",
                          items[i].s);
            result = -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(items[i].s, items[j].s) == 0) {
                sl_config_bad(ld, items[i].line, d->key, "'%.64s' is listed twice", items[i].s);
                result = -1;
                break;
            }
        }
    }
    return result;
}

/* Model names in a group; resolved against models: by groups.c. */
static int seq_names(struct loader *ld, const struct scalar *items, size_t n, int line,
                     void *base, const struct directive *d)
{
    struct sl_name_list *l = FIELD(struct sl_name_list, base, d);
    if (n > SL_MAX_GROUP_DEPLOYMENTS) {
        sl_config_bad(ld, line, d->key, "too many deployments (%zu; at most %d)", n,
                      SL_MAX_GROUP_DEPLOYMENTS);
        return -1;
    }
    if (check_names(ld, items, n, d))
        return -1;
    free_names(l);
    l->line = line;
    l->names = calloc(n ? n : 1, sizeof(*l->names));
    l->index = calloc(n ? n : 1, sizeof(*l->index));
    for (size_t i = 0; l->names && l->index && i < n; i++, l->n++)
        if (!(l->names[i] = strdup(items[i].s)))
            break;
    if (!l->names || !l->index || l->n != n) {
        sl_config_oom(ld, line);
        return -1;
    }
    return 0;
}

static int seq_ints(struct loader *ld, const struct scalar *items, size_t n, int line,
                    struct sl_int_list *l, const struct directive *d, uint64_t lo, uint64_t hi)
{
    int64_t *v = calloc(n ? n : 1, sizeof(*v));
    int result = v ? 0 : -1;
    if (!v)
        sl_config_oom(ld, line);
    for (size_t i = 0; v && i < n; i++) {
        uint64_t x;
        if (bad_count(ld, &items[i], lo, hi, &x))
            result = -1;
        else
            v[i] = (int64_t)x;
    }
    if (result) {
        free(v);
        return -1;
    }
    free(l->v);
    *l = (struct sl_int_list){v, n, line};
    return 0;
}

static int seq_weights(struct loader *ld, const struct scalar *items, size_t n, int line,
                       void *base, const struct directive *d)
{
    return seq_ints(ld, items, n, line, FIELD(struct sl_int_list, base, d), d, 1, MAX_WEIGHT);
}

static int seq_tier_words(struct loader *ld, const struct scalar *items, size_t n, int line,
                          void *base, const struct directive *d)
{
    struct sl_int_list *l = FIELD(struct sl_int_list, base, d);
    if (n != SL_TIER_COUNT - 1) {
        sl_config_bad(ld, line, d->key, "expected %d numbers of words (simple, medium, complex "
                      "limits, e.g. [100, 1000, 8000]), not %zu", SL_TIER_COUNT - 1, n);
        return -1;
    }
    if (seq_ints(ld, items, n, line, l, d, 1, MAX_TIER_WORDS))
        return -1;
    for (size_t i = 1; i < n; i++) {
        if (l->v[i] <= l->v[i - 1]) {
            sl_config_bad(ld, line, d->key, "must increase (%lld is not above %lld)",
                          (long long)l->v[i], (long long)l->v[i - 1]);
            return -1;
        }
    }
    return 0;
}

/* ---- pricing: ------------------------------------------------------------------ */

#define MAX_PRICE_MICROS ((int64_t)1000000 * SL_MICROS) /* as MAX_PRICE, in micro-units */
#define MAX_RATE_MICROS  ((int64_t)1000 * SL_MICROS)    /* USD per CNY; more is a typo */

static int parse_catalog_path(struct loader *ld, const struct scalar *v, void *base,
                              const struct directive *d)
{
    struct sl_pricing_cfg *p = base;
    if (v->len >= sizeof(p->catalog) || has_space_or_ctl(v->s)) {
        sl_config_bad(ld, v->line, v->key, "expected a file path without spaces, shorter than "
                      "%zu characters", sizeof(p->catalog));
        return -1;
    }
    memcpy(p->catalog, v->s, v->len + 1);
    p->catalog_line = v->line;
    return 0;
}

/* Currencies sit in char[4] fields, wherever d->off puts them. */
static int parse_currency(struct loader *ld, const struct scalar *v, void *base,
                          const struct directive *d)
{
    if (sl_cost_check_currency(v->s)) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not one of USD, CNY", v->s);
        return -1;
    }
    memcpy(FIELD(char, base, d), v->s, 4);
    return 0;
}

static int parse_rate(struct loader *ld, const struct scalar *v, void *base,
                      const struct directive *d)
{
    int64_t micros;
    if (sl_cost_parse_decimal(v->s, MAX_RATE_MICROS, &micros) || micros == 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not an exchange rate above 0 with at "
                      "most 6 decimals (USD for one CNY, e.g. 0.14)", v->s);
        return -1;
    }
    *FIELD(int64_t, base, d) = micros;
    return 0;
}

/* Money is kept exact: more than 6 decimals would be rounded, so it is refused. */
static int parse_price_micros(struct loader *ld, const struct scalar *v, void *base,
                              const struct directive *d)
{
    if (sl_cost_parse_decimal(v->s, MAX_PRICE_MICROS, FIELD(int64_t, base, d))) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a price per million tokens with at "
                      "most 6 decimals (e.g. 0.27)", v->s);
        return -1;
    }
    return 0;
}

static int parse_override_model(struct loader *ld, const struct scalar *v, void *base,
                                const struct directive *d)
{
    struct sl_price_override *o = base;
    if (v->len > SL_MAX_NAME || has_space_or_ctl(v->s)) {
        sl_config_bad(ld, v->line, v->key,
                      "'%.64s' is not a valid model name (at most %d characters, no spaces)", v->s,
                      SL_MAX_NAME);
        return -1;
    }
    memcpy(o->model, v->s, v->len + 1);
    return 0;
}

static int parse_override_provider(struct loader *ld, const struct scalar *v, void *base,
                                   const struct directive *d)
{
    struct sl_price_override *o = base;
    if (v->len >= sizeof(o->provider) || !sl_preset_find(v->s)) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a provider preset (see "
                      "docs/providers.md)", v->s);
        return -1;
    }
    memcpy(o->provider, v->s, v->len + 1);
    return 0;
}

/* ---- cache: ---- */

static int parse_cache_when(struct loader *ld, const struct scalar *v, void *base,
                            const struct directive *d)
{
    static const struct { const char *word; int value; } words[] = {
        {"true", SL_CACHE_TEMP0}, {"false", SL_CACHE_OFF}, {"always", SL_CACHE_ALWAYS},
    };
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strcmp(v->s, words[i].word) == 0) {
            *FIELD(int, base, d) = words[i].value;
            return 0;
        }
    }
    sl_config_bad(ld, v->line, v->key,
                  "'%.32s' is not one of true (temperature 0 only), always, false", v->s);
    return -1;
}

static int parse_flag(struct loader *ld, const struct scalar *v, void *base,
                      const struct directive *d)
{
    if (strcmp(v->s, "true") != 0 && strcmp(v->s, "false") != 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not true or false", v->s);
        return -1;
    }
    *FIELD(int, base, d) = v->s[0] == 't' ? SL_FLAG_YES : SL_FLAG_NO;
    return 0;
}

static int parse_threshold(struct loader *ld, const struct scalar *v, void *base,
                           const struct directive *d)
{
    double x;
    if (parse_decimal(v->s, 0.0, 1.0, &x) || x == 0.0) {
        sl_config_bad(ld, v->line, v->key,
                      "'%.32s' is not a cosine similarity above 0 and at most 1 (e.g. 0.95)", v->s);
        return -1;
    }
    *FIELD(double, base, d) = x;
    return 0;
}

static int parse_cache_backend(struct loader *ld, const struct scalar *v, void *base,
                               const struct directive *d)
{
    if (strcmp(v->s, "memory") == 0)
        *FIELD(enum sl_cache_store, base, d) = SL_CACHE_MEMORY;
    else if (strcmp(v->s, "sqlite") == 0)
        *FIELD(enum sl_cache_store, base, d) = SL_CACHE_SQLITE;
    else {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not one of memory, sqlite", v->s);
        return -1;
    }
    return 0;
}

static int parse_embedding_model(struct loader *ld, const struct scalar *v, void *base,
                                 const struct directive *d)
{
    if (v->len > SL_MAX_NAME || has_space_or_ctl(v->s)) {
        sl_config_bad(ld, v->line, v->key, "'%.64s' is not a model name", v->s);
        return -1;
    }
    memcpy(FIELD(char, base, d), v->s, v->len + 1);
    ((struct sl_cache_cfg *)base)->embedding_model_line = v->line;
    return 0;
}

static int parse_max_entries(struct loader *ld, const struct scalar *v, void *base,
                             const struct directive *d)
{
    uint64_t n;
    if (parse_uint(v->s, 10000000, &n) || n == 0) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a number from 1 to 10000000", v->s);
        return -1;
    }
    *FIELD(int, base, d) = (int)n;
    return 0;
}

/* To add a key: a row here (its default written as it would be in the file), a case in
 * tests/unit/test_config.c, and its line in docs/config.md (and examples/sluice.yaml
 * when users should see it). Parsing, defaults and "unknown key" hints follow. */

#define SRV(field) offsetof(struct sl_server_cfg, field)
static const struct directive server_rows[] = {
    {.key = "listen", .scalar = parse_listen, .off = SRV(listen), .def = "127.0.0.1:4000"},
    {.key = "workers", .scalar = parse_workers, .off = SRV(workers), .def = "0"},
    {.key = "max_body", .scalar = parse_size, .off = SRV(max_body), .def = "10MiB"},
    {.key = "max_headers", .scalar = parse_size, .off = SRV(max_headers), .def = "64KiB"},
    {.key = "read_timeout", .scalar = parse_duration, .off = SRV(read_timeout_ms), .def = "30s"},
    {.key = "write_timeout", .scalar = parse_duration, .off = SRV(write_timeout_ms), .def = "60s"},
    {.key = "drain_timeout", .scalar = parse_duration, .off = SRV(drain_timeout_ms), .def = "30s"},
    {.key = "log_level", .scalar = parse_log_level, .off = SRV(log_level), .def = "info"},
};
static const struct table server_table = TABLE("server", server_rows);

#define TMO(field) offsetof(struct sl_timeouts, field)
static const struct directive upstream_rows[] = {
    {.key = "connect_timeout", .scalar = parse_duration, .off = TMO(connect_ms), .def = "10s"},
    {.key = "first_byte_timeout", .scalar = parse_duration, .off = TMO(first_byte_ms),
     .def = "120s"},
    {.key = "idle_timeout", .scalar = parse_duration, .off = TMO(idle_ms), .def = "60s"},
    {.key = "total_timeout", .scalar = parse_duration, .off = TMO(total_ms), .def = "600s"},
};
static const struct table upstream_table = TABLE("upstream", upstream_rows);

/* Provider timeouts have no default here: unset ones (0) are taken from upstream:
 * after the whole file is read, since upstream: may come after providers:. */
#define PRV(field) offsetof(struct sl_provider_cfg, field)
static const struct directive provider_rows[] = {
    {.key = "name", .scalar = parse_name, .off = PRV(name), .flags = D_REQUIRED},
    {.key = "kind", .scalar = parse_kind, .off = PRV(kind), .flags = D_REQUIRED},
    {.key = "base_url", .scalar = parse_url, .off = PRV(base_url), .flags = D_REQUIRED},
    {.key = "api_key", .scalar = parse_api_key, .off = PRV(api_key), .flags = D_EMPTY_OK},
    {.key = "connect_timeout", .scalar = parse_duration, .off = PRV(timeouts.connect_ms)},
    {.key = "first_byte_timeout", .scalar = parse_duration, .off = PRV(timeouts.first_byte_ms)},
    {.key = "idle_timeout", .scalar = parse_duration, .off = PRV(timeouts.idle_ms)},
    {.key = "total_timeout", .scalar = parse_duration, .off = PRV(timeouts.total_ms)},
    {.key = "embeddings", .scalar = parse_embeddings, .off = PRV(embeddings)},
    {.key = "embeddings_url", .scalar = parse_url, .off = PRV(embeddings_url)},
    {.key = "preset", .scalar = parse_preset, .off = PRV(preset)},
    {.key = "rerank", .scalar = parse_rerank, .off = PRV(rerank)},
    {.key = "rerank_url", .scalar = parse_url, .off = PRV(rerank_url)},
};
static const struct table provider_table = TABLE("a provider (name, kind, base_url)",
                                                 provider_rows);

/* cache: in a group or a model: what it may override (unset keys: the global cache:). */
#define CRL(field) offsetof(struct sl_cache_rule, field)
static const struct directive cache_rule_rows[] = {
    {.key = "enabled", .scalar = parse_cache_when, .off = CRL(enabled)},
    {.key = "ttl", .scalar = parse_duration, .off = CRL(ttl_ms)},
    {.key = "semantic", .scalar = parse_flag, .off = CRL(semantic)},
    {.key = "threshold", .scalar = parse_threshold, .off = CRL(threshold)},
    {.key = "stale_on_error", .scalar = parse_flag, .off = CRL(stale_on_error)},
};
static const struct table cache_rule_table = TABLE("cache", cache_rule_rows);

#define MDL(field) offsetof(struct sl_model_cfg, field)
static const struct directive model_rows[] = {
    {.key = "name", .scalar = parse_model_id, .off = MDL(name), .flags = D_REQUIRED},
    {.key = "provider", .scalar = parse_model_id, .off = MDL(provider), .flags = D_REQUIRED},
    {.key = "model", .scalar = parse_model_id, .off = MDL(model)},
    {.key = "context_window", .scalar = parse_context, .off = MDL(context_window)},
    {.key = "max_batch", .scalar = parse_max_batch, .off = MDL(max_batch)},
    {.key = "price_in", .scalar = parse_price, .off = MDL(price_in)},
    {.key = "price_out", .scalar = parse_price, .off = MDL(price_out)},
    {.key = "capabilities", .seq = seq_capabilities, .off = MDL(capabilities)},
    {.key = "cache", .map = &cache_rule_table, .off = MDL(cache)},
    {.key = "limits", .map = &sl_config_limits_table, .off = MDL(limits)},
};
static const struct table model_table = TABLE("a model (name, provider)", model_rows);

#define TIER(t) ((t) * sizeof(struct sl_name_list)) /* within the group's tiers[] */
static const struct directive tier_rows[] = {
    {.key = "simple", .seq = seq_names, .off = TIER(SL_TIER_SIMPLE)},
    {.key = "medium", .seq = seq_names, .off = TIER(SL_TIER_MEDIUM)},
    {.key = "complex", .seq = seq_names, .off = TIER(SL_TIER_COMPLEX)},
    {.key = "long", .seq = seq_names, .off = TIER(SL_TIER_LONG)},
};
static const struct table tier_table = TABLE("tiers", tier_rows);

/* Defaults of breaker:, like the rest of a group's, are set by init_group: list items
 * get no row defaults. */
#define BRK(field) offsetof(struct sl_breaker_cfg, field)
static const struct directive breaker_rows[] = {
    {.key = "window", .scalar = parse_duration, .off = BRK(window_ms)},
    {.key = "min_requests", .scalar = parse_min_requests, .off = BRK(min_requests)},
    {.key = "error_rate", .scalar = parse_error_rate, .off = BRK(error_rate)},
    {.key = "consecutive", .scalar = parse_consecutive, .off = BRK(consecutive)},
    {.key = "cooldown", .scalar = parse_duration, .off = BRK(cooldown_ms)},
};
static const struct table breaker_table = TABLE("breaker", breaker_rows);

#define HCK(field) offsetof(struct sl_health_check_cfg, field)
static const struct directive health_rows[] = {
    {.key = "interval", .scalar = parse_duration, .off = HCK(interval_ms), .flags = D_REQUIRED},
    {.key = "timeout", .scalar = parse_duration, .off = HCK(timeout_ms)},
};
static const struct table health_table = TABLE("health_check (interval, timeout)", health_rows);

static const struct directive hedge_rows[] = {
    {.key = "after", .scalar = parse_hedge_after, .flags = D_REQUIRED},
};
static const struct table hedge_table = TABLE("hedge (after)", hedge_rows);

#define MIR(field) offsetof(struct sl_mirror_cfg, field)
static const struct directive mirror_rows[] = {
    {.key = "to", .seq = seq_names, .off = MIR(to), .flags = D_REQUIRED},
    {.key = "sample", .scalar = parse_sample, .off = MIR(sample)},
};
static const struct table mirror_table = TABLE("mirror (to, sample)", mirror_rows);
#define CCF(field) offsetof(struct sl_cache_cfg, field)
static const struct directive cache_rows[] = {
    {.key = "enabled", .scalar = parse_cache_when, .off = CCF(rule.enabled), .def = "true"},
    {.key = "ttl", .scalar = parse_duration, .off = CCF(rule.ttl_ms), .def = "1h"},
    {.key = "semantic", .scalar = parse_flag, .off = CCF(rule.semantic), .def = "false"},
    {.key = "threshold", .scalar = parse_threshold, .off = CCF(rule.threshold), .def = "0.95"},
    {.key = "stale_on_error", .scalar = parse_flag, .off = CCF(rule.stale_on_error),
     .def = "false"},
    {.key = "max_stale", .scalar = parse_duration, .off = CCF(max_stale_ms), .def = "24h"},
    {.key = "max_bytes", .scalar = parse_size, .off = CCF(max_bytes), .def = "64MiB"},
    {.key = "backend", .scalar = parse_cache_backend, .off = CCF(backend), .def = "memory"},
    {.key = "shared", .scalar = parse_flag, .off = CCF(shared), .def = "false"},
    {.key = "embedding_model", .scalar = parse_embedding_model, .off = CCF(embedding_model)},
    {.key = "semantic_max_entries", .scalar = parse_max_entries, .off = CCF(semantic_max_entries),
     .def = "100000"},
};
static const struct table cache_table = TABLE("cache", cache_rows);

#define GRP(field) offsetof(struct sl_group_cfg, field)
static const struct directive group_rows[] = {
    {.key = "name", .scalar = parse_model_id, .off = GRP(name), .flags = D_REQUIRED},
    {.key = "strategy", .scalar = parse_strategy, .off = GRP(strategy)},
    {.key = "deployments", .seq = seq_names, .off = GRP(deployments)},
    {.key = "weights", .seq = seq_weights, .off = GRP(weights)},
    {.key = "tiers", .map = &tier_table, .off = GRP(tiers)},
    {.key = "tier_words", .seq = seq_tier_words, .off = GRP(tier_words)},
    {.key = "retries", .scalar = parse_retries, .off = GRP(retries)},
    {.key = "timeout", .scalar = parse_duration, .off = GRP(timeout_ms)},
    {.key = "attempt_timeout", .scalar = parse_duration, .off = GRP(attempt_timeout_ms)},
    {.key = "breaker", .map = &breaker_table, .off = GRP(breaker)},
    {.key = "hedge", .map = &hedge_table, .off = GRP(hedge)},
    {.key = "health_check", .map = &health_table, .off = GRP(health_check)},
    {.key = "mirror", .map = &mirror_table, .off = GRP(mirror)},
    {.key = "cache", .map = &cache_rule_table, .off = GRP(cache)},
    {.key = "limits", .map = &sl_config_limits_table, .off = GRP(limits)},
};
static const struct table group_table = TABLE("a group (name, deployments)", group_rows);

static void init_group(void *item, int line)
{
    struct sl_group_cfg *g = item;
    g->line = line;
    g->strategy = SL_STRATEGY_FALLBACK;
    g->retries = 2;
    g->timeout_ms = 600 * 1000; /* as upstream.total_timeout: a group adds no shorter cap */
    g->breaker = (struct sl_breaker_cfg){.window_ms = 30 * 1000, .min_requests = 10,
                                         .error_rate = 0.5, .consecutive = 5,
                                         .cooldown_ms = 10 * 1000};
    g->health_check.timeout_ms = 2000;
    g->mirror.sample = 1.0;
}

static void init_provider(void *item, int line)
{
    struct sl_provider_cfg *p = item;
    p->enabled = 1; /* until an api_key: ${VAR} says otherwise */
    p->line = line;
}

static void init_model(void *item, int line)
{
    ((struct sl_model_cfg *)item)->line = line;
}

#define OVR(field) offsetof(struct sl_price_override, field)
static const struct directive override_rows[] = {
    {.key = "model", .scalar = parse_override_model, .flags = D_REQUIRED},
    {.key = "provider", .scalar = parse_override_provider},
    {.key = "currency", .scalar = parse_currency, .off = OVR(currency)},
    {.key = "input", .scalar = parse_price_micros, .off = OVR(input), .flags = D_REQUIRED},
    {.key = "cached_input", .scalar = parse_price_micros, .off = OVR(cached_input)},
    {.key = "output", .scalar = parse_price_micros, .off = OVR(output), .flags = D_REQUIRED},
};
static const struct table override_table = TABLE("a price override (model, input, output)",
                                                 override_rows);

static void init_override(void *item, int line)
{
    struct sl_price_override *o = item;
    o->line = line;
    memcpy(o->currency, "USD", 4);
    o->cached_input = -1;
}

#define PRC(field) offsetof(struct sl_pricing_cfg, field)
static const struct list overrides_list = {&override_table, sizeof(struct sl_price_override),
                                           SL_MAX_PRICE_OVERRIDES, PRC(overrides),
                                           PRC(noverrides), init_override};

static const struct directive pricing_rows[] = {
    {.key = "catalog", .scalar = parse_catalog_path, .def = "catalog/prices.yaml"},
    {.key = "currency", .scalar = parse_currency, .off = PRC(currency), .def = "USD"},
    {.key = "usd_per_cny", .scalar = parse_rate, .off = PRC(usd_per_cny), .def = "0.14"},
    {.key = "overrides", .list = &overrides_list},
};
static const struct table pricing_table = TABLE("pricing", pricing_rows);

void sl_config_release_pricing(struct sl_config *cfg)
{
    free(cfg->pricing.overrides);
    cfg->pricing.overrides = NULL;
    cfg->pricing.noverrides = 0;
}

#define TOP(field) offsetof(struct sl_config, field)
static const struct list providers_list = {&provider_table, sizeof(struct sl_provider_cfg),
                                           SL_MAX_PROVIDERS, TOP(providers), TOP(nproviders),
                                           init_provider};
static const struct list models_list = {&model_table, sizeof(struct sl_model_cfg), SL_MAX_MODELS,
                                        TOP(models), TOP(nmodels), init_model};

static const struct list groups_list = {&group_table, sizeof(struct sl_group_cfg), MAX_GROUPS,
                                        TOP(groups), TOP(ngroups), init_group};

static const struct directive top_rows[] = {
    {.key = "server", .map = &server_table, .off = TOP(server)},
    {.key = "store", .scalar = parse_store, .off = TOP(store), .def = "sqlite://./sluice.db"},
    {.key = "upstream", .map = &upstream_table, .off = TOP(upstream)},
    {.key = "sim", .scalar = parse_sim, .off = TOP(sim), .def = "auto"},
    {.key = "providers", .list = &providers_list},
    {.key = "models", .list = &models_list},
    {.key = "groups", .list = &groups_list},
    {.key = "pricing", .map = &pricing_table, .off = TOP(pricing)},
    {.key = "master_key", .scalar = parse_master_key, .off = TOP(master_key),
     .def = "${SLUICE_MASTER_KEY}", .flags = D_EMPTY_OK},
    {.key = "cache", .map = &cache_table, .off = TOP(cache)},
    {.key = "budgets", .list = &sl_config_budgets_list},
    {.key = "budget_alert", .scalar = sl_config_parse_percent, .off = TOP(govern.soft_percent),
     .def = "80%"},
    {.key = "retention", .scalar = sl_config_parse_retention, .off = TOP(govern.retention_days),
     .def = "forever"},
    {.key = "govern", .map = &sl_config_govern_table, .off = TOP(govern)},
    {.key = "chunking", .list = &sl_config_chunking_list},
};
const struct table sl_config_top_table = TABLE("the top level", top_rows);
