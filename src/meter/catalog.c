/* Loads catalog/prices.yaml with libfyaml into a flat array of entries, checking
 * every field and reporting each problem as FILE:LINE like the config loader; then
 * layers the config's pricing: block (overrides, currency, exchange rate) on top. */
#include "meter/catalog.h"

#include <errno.h>
#include <libfyaml.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define CATALOG_MAX_FILE    (4u * 1024 * 1024)
#define CATALOG_MAX_ENTRIES 4096
#define MAX_PRICE_MICROS    ((int64_t)1000000 * SL_MICROS) /* per million tokens: a typo above */
#define MAX_TOKENS          100000000                      /* context windows, outputs */

struct ctx {
    const char *name;
    struct sl_buf *errors;
    int nerrors;
    size_t index; /* of the entry being read, for messages */
};

static void bad(struct ctx *x, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void bad(struct ctx *x, int line, const char *key, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    x->nerrors++;
    if (!x->errors)
        return;
    if (key)
        sl_buf_printf(x->errors, "%s:%d: models[%zu].%s: %s\n", x->name, line, x->index, key, msg);
    else
        sl_buf_printf(x->errors, "%s:%d: %s\n", x->name, line, msg);
}

static int node_line(struct fy_node *n, int fallback)
{
    struct fy_token *tok = n && fy_node_is_scalar(n) ? fy_node_get_scalar_token(n) : NULL;
    const struct fy_mark *mark = tok ? fy_token_start_mark(tok) : NULL;
    return mark ? mark->line + 1 : fallback;
}

/* A scalar as a NUL-terminated copy in buf; NULL when n is not a scalar or too long. */
static const char *scalar(struct fy_node *n, char *buf, size_t size)
{
    size_t len = 0;
    const char *s = n && fy_node_is_scalar(n) ? fy_node_get_scalar(n, &len) : NULL;
    if (!s || len >= size || memchr(s, '\0', len))
        return NULL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

/* ---- fields of one entry --------------------------------------------------------- */

static int copy_field(char *out, size_t size, const char *s)
{
    size_t len = strlen(s);
    if (!len || len >= size)
        return -1;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f)
            return -1;
    memcpy(out, s, len + 1);
    return 0;
}

static int f_model(struct sl_catalog_entry *e, const char *s)
{
    return copy_field(e->model, sizeof(e->model), s);
}

static int f_provider(struct sl_catalog_entry *e, const char *s)
{
    return copy_field(e->provider, sizeof(e->provider), s);
}

static int f_currency(struct sl_catalog_entry *e, const char *s)
{
    return sl_cost_check_currency(s) ? -1 : copy_field(e->price.currency, 4, s);
}

static int f_input(struct sl_catalog_entry *e, const char *s)
{
    return sl_cost_parse_decimal(s, MAX_PRICE_MICROS, &e->price.input);
}

static int f_cached(struct sl_catalog_entry *e, const char *s)
{
    return sl_cost_parse_decimal(s, MAX_PRICE_MICROS, &e->price.cached_input);
}

static int f_output(struct sl_catalog_entry *e, const char *s)
{
    return sl_cost_parse_decimal(s, MAX_PRICE_MICROS, &e->price.output);
}

static int parse_tokens(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (*s < '0' || *s > '9' || *end || errno || n > MAX_TOKENS)
        return -1;
    *out = n;
    return 0;
}

static int f_context(struct sl_catalog_entry *e, const char *s)
{
    return parse_tokens(s, &e->context_window);
}

static int f_max_output(struct sl_catalog_entry *e, const char *s)
{
    return parse_tokens(s, &e->max_output);
}

static int f_source(struct sl_catalog_entry *e, const char *s)
{
    if (strncmp(s, "https://", 8) != 0 && strncmp(s, "http://", 7) != 0)
        return -1;
    return copy_field(e->source, sizeof(e->source), s);
}

/* YYYY-MM-DD, checked by shape only: it records when a person read the page. */
static int f_date(struct sl_catalog_entry *e, const char *s)
{
    static const char shape[] = "dddd-dd-dd";
    if (strlen(s) != 10)
        return -1;
    for (int i = 0; i < 10; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != '-')
            return -1;
    return copy_field(e->date, sizeof(e->date), s);
}

/* The keys of an entry: the checklist when adding one is a row here, a line in the
 * header of catalog/prices.yaml and docs/cost.md, and a test case. */
static const struct field {
    const char *key;
    int (*parse)(struct sl_catalog_entry *e, const char *s);
    int required;
    const char *expect; /* what a good value looks like, for messages */
} fields[] = {
    {"model", f_model, 1, "a model name without spaces"},
    {"provider", f_provider, 1, "a provider preset name (deepseek, dashscope, openai, ...)"},
    {"currency", f_currency, 1, "USD or CNY"},
    {"input", f_input, 1, "a price per million tokens with at most 6 decimals"},
    {"cached_input", f_cached, 0, "a price per million tokens with at most 6 decimals"},
    {"output", f_output, 1, "a price per million tokens with at most 6 decimals"},
    {"context_window", f_context, 0, "a number of tokens"},
    {"max_output", f_max_output, 0, "a number of tokens"},
    {"capabilities", NULL, 0, "a list of tools, json, images, reasoning, embeddings, rerank"},
    {"source", f_source, 1, "the http(s) URL of the vendor's price page"},
    {"date", f_date, 1, "the date the price was read, YYYY-MM-DD"},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static void read_capabilities(struct ctx *x, struct fy_node *seq, struct sl_catalog_entry *e,
                              int line)
{
    static const char *const words[] = {"tools", "json", "images", "reasoning", "embeddings",
                                        "rerank"};
    char buf[32];
    void *it = NULL;
    struct fy_node *item;
    if (!fy_node_is_sequence(seq)) {
        bad(x, line, "capabilities", "expected a list such as [tools, json]");
        return;
    }
    while ((item = fy_node_sequence_iterate(seq, &it))) {
        const char *s = scalar(item, buf, sizeof(buf));
        size_t k = 0;
        while (s && k < sizeof(words) / sizeof(words[0]) && strcmp(s, words[k]))
            k++;
        if (s && k < sizeof(words) / sizeof(words[0]))
            e->capabilities |= 1u << k;
        else
            bad(x, node_line(item, line), "capabilities",
                "'%s' is not one of tools, json, images, reasoning, embeddings, rerank", s ? s : "?");
    }
}

static const struct field *find_field(const char *key)
{
    for (size_t i = 0; i < NFIELDS; i++)
        if (strcmp(fields[i].key, key) == 0)
            return &fields[i];
    return NULL;
}

static void read_field(struct ctx *x, const struct field *f, struct fy_node *v,
                       struct sl_catalog_entry *e, int line)
{
    char buf[SL_MAX_URL];
    const char *s = scalar(v, buf, sizeof(buf));
    if (!f->parse)
        read_capabilities(x, v, e, line);
    else if (!s || f->parse(e, s))
        bad(x, line, f->key, "'%.64s' is not %s", s ? s : "(not a single value)", f->expect);
}

static void read_entry(struct ctx *x, struct fy_node *map, struct sl_catalog_entry *e, int line)
{
    unsigned seen = 0;
    void *it = NULL;
    struct fy_node_pair *pair;
    char key[32];
    e->line = line;
    e->price.cached_input = -1;
    while ((pair = fy_node_mapping_iterate(map, &it))) {
        struct fy_node *k = fy_node_pair_key(pair);
        int kline = node_line(k, line);
        const struct field *f = scalar(k, key, sizeof(key)) ? find_field(key) : NULL;
        if (!f) {
            bad(x, kline, NULL, "models[%zu]: unknown key '%s'", x->index,
                scalar(k, key, sizeof(key)) ? key : "?");
            continue;
        }
        seen |= 1u << (f - fields);
        read_field(x, f, fy_node_pair_value(pair), e, kline);
    }
    for (size_t i = 0; i < NFIELDS; i++)
        if (fields[i].required && !(seen & (1u << i)))
            bad(x, line, NULL, "models[%zu]: missing required key '%s'", x->index, fields[i].key);
    if (e->price.cached_input < 0) /* no prompt cache discount written: the full price */
        e->price.cached_input = e->price.input;
}

/* ---- the document ------------------------------------------------------------------ */

static void check_duplicates(struct ctx *x, const struct sl_catalog *c)
{
    for (size_t i = 0; i < c->n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(c->entries[i].model, c->entries[j].model) == 0 &&
                strcmp(c->entries[i].provider, c->entries[j].provider) == 0) {
                x->index = i;
                bad(x, c->entries[i].line, NULL, "models[%zu]: '%s' from '%s' is listed twice "
                    "(first at line %d)", i, c->entries[i].model, c->entries[i].provider,
                    c->entries[j].line);
                break;
            }
        }
    }
}

/* An entry's line is its first key's: mappings have no token of their own. */
static int item_line(struct fy_node *item, int fallback)
{
    void *it = NULL;
    struct fy_node_pair *pair = fy_node_is_mapping(item) ? fy_node_mapping_iterate(item, &it)
                                                         : NULL;
    return node_line(pair ? fy_node_pair_key(pair) : item, fallback);
}

static void read_models(struct ctx *x, struct fy_node *seq, struct sl_catalog *c, int line)
{
    int n = fy_node_is_sequence(seq) ? fy_node_sequence_item_count(seq) : -1;
    if (n < 0 || n > CATALOG_MAX_ENTRIES) {
        bad(x, line, NULL, "models: expected a list of at most %d entries", CATALOG_MAX_ENTRIES);
        return;
    }
    c->entries = calloc(n ? (size_t)n : 1, sizeof(*c->entries));
    if (!c->entries) {
        bad(x, line, NULL, "out of memory");
        return;
    }
    void *it = NULL;
    struct fy_node *item;
    for (c->n = 0; (item = fy_node_sequence_iterate(seq, &it)); c->n++) {
        x->index = c->n;
        int iline = item_line(item, line);
        if (!fy_node_is_mapping(item))
            bad(x, iline, NULL, "models[%zu]: expected a mapping of keys", c->n);
        else
            read_entry(x, item, &c->entries[c->n], iline);
    }
    check_duplicates(x, c);
}

static void read_root(struct ctx *x, struct fy_node *root, struct sl_catalog *c)
{
    char key[32], val[16];
    int have_models = 0;
    void *it = NULL;
    struct fy_node_pair *pair;
    if (!root || !fy_node_is_mapping(root)) {
        bad(x, 1, NULL, "expected a mapping with version: 1 and models:");
        return;
    }
    while ((pair = fy_node_mapping_iterate(root, &it))) {
        struct fy_node *k = fy_node_pair_key(pair), *v = fy_node_pair_value(pair);
        int line = node_line(k, 1);
        const char *name = scalar(k, key, sizeof(key));
        if (name && strcmp(name, "version") == 0) {
            const char *s = scalar(v, val, sizeof(val));
            if (!s || strcmp(s, "1") != 0)
                bad(x, line, NULL, "version: this sluice reads catalog version 1");
        } else if (name && strcmp(name, "models") == 0) {
            have_models = 1;
            read_models(x, v, c, line);
        } else {
            bad(x, line, NULL, "unknown key '%s' (known keys: version, models)", name ? name : "?");
        }
    }
    if (!have_models)
        bad(x, 1, NULL, "missing required key 'models'");
}

static void on_diag_output(struct fy_diag *diag, void *user, const char *buf, size_t len)
{
    /* Errors are collected and reported as FILE:LINE lines; nothing goes to stderr. */
}

/* libfyaml 0.7.12 can loop forever on malformed UTF-8, so bad bytes are refused
 * first. Returns the 1-based line of the first one, or 0. */
static int bad_utf8_line(const unsigned char *s, size_t len)
{
    int line = 1;
    for (size_t i = 0; i < len;) {
        unsigned char c = s[i];
        size_t n = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!n || n > len - i)
            return line;
        for (size_t k = 1; k < n; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return line;
        line += c == '\n';
        i += n;
    }
    return 0;
}

static struct fy_document *build(struct ctx *x, const char *yaml, size_t len)
{
    struct fy_diag_cfg dcfg;
    fy_diag_cfg_default(&dcfg);
    dcfg.fp = NULL;
    dcfg.output_fn = on_diag_output;
    struct fy_diag *diag = fy_diag_create(&dcfg);
    if (!diag)
        return NULL;
    fy_diag_set_collect_errors(diag, true);
    struct fy_parse_cfg pcfg = {.flags = FYPCF_QUIET | FYPCF_RESOLVE_DOCUMENT, .diag = diag};
    struct fy_document *doc = fy_document_build_from_string(&pcfg, yaml, len);
    void *it = NULL;
    struct fy_diag_error *e;
    int before = x->nerrors;
    while (!doc && (e = fy_diag_errors_iterate(diag, &it)))
        if (e->type >= FYET_ERROR)
            bad(x, e->line, NULL, "%s", e->msg ? e->msg : "malformed YAML");
    if (!doc && x->nerrors == before)
        bad(x, 0, NULL, "malformed YAML");
    fy_diag_destroy(diag);
    return doc;
}

static struct sl_catalog *new_catalog(void)
{
    struct sl_catalog *c = calloc(1, sizeof(*c));
    if (c)
        sl_catalog_configure(c, "USD", 140000);
    return c;
}

struct sl_catalog *sl_catalog_parse(const char *yaml, size_t len, const char *name,
                                    struct sl_buf *errors)
{
    struct ctx x = {name ? name : "catalog", errors, 0, 0};
    struct sl_catalog *c = new_catalog();
    int bad_line = bad_utf8_line((const unsigned char *)yaml, len);
    struct fy_document *doc = NULL;
    if (!c)
        bad(&x, 0, NULL, "out of memory");
    else if (bad_line)
        bad(&x, bad_line, NULL, "not valid UTF-8 text");
    else if (!len)
        bad(&x, 0, NULL, "empty file (expected version: 1 and models:)");
    else if ((doc = build(&x, yaml, len)))
        read_root(&x, fy_document_root(doc), c);
    if (doc)
        fy_document_destroy(doc);
    if (x.nerrors) {
        sl_catalog_free(c);
        return NULL;
    }
    return c;
}

/* Reads the whole file, at most CATALOG_MAX_FILE bytes. */
static int read_file(const char *path, struct sl_buf *text, struct sl_buf *errors)
{
    FILE *f = fopen(path, "rb");
    char chunk[8192];
    size_t n;
    int result = 0;
    if (!f) {
        if (errors)
            sl_buf_printf(errors, "%s: cannot open: %s\n", path, strerror(errno));
        return -1;
    }
    while (!result && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        result = sl_buf_append(text, chunk, n);
    if (result && errors)
        sl_buf_printf(errors, "%s: larger than %u bytes, or out of memory\n", path,
                      CATALOG_MAX_FILE);
    fclose(f);
    return result;
}

struct sl_catalog *sl_catalog_load(const char *path, struct sl_buf *errors)
{
    struct sl_buf text = SL_BUF_INIT(CATALOG_MAX_FILE);
    struct sl_catalog *c = NULL;
    if (read_file(path, &text, errors) == 0)
        c = sl_catalog_parse(text.ptr ? text.ptr : "", text.len, path, errors);
    sl_buf_release(&text);
    return c;
}

/* ---- the config's layer ------------------------------------------------------------ */

void sl_catalog_configure(struct sl_catalog *c, const char *currency, int64_t usd_per_cny)
{
    snprintf(c->currency, sizeof(c->currency), "%s", currency);
    c->usd_per_cny = usd_per_cny > 0 ? usd_per_cny : 140000;
}

static void set_price(struct sl_catalog_entry *e, const struct sl_price_override *o)
{
    e->price.input = o->input;
    e->price.cached_input = o->cached_input >= 0 ? o->cached_input : o->input;
    e->price.output = o->output;
    memcpy(e->price.currency, o->currency, 4);
    snprintf(e->date, sizeof(e->date), "config");
    e->source[0] = '\0';
    e->line = 0;
}

static int add_entry(struct sl_catalog *c, const struct sl_price_override *o)
{
    struct sl_catalog_entry *v = realloc(c->entries, (c->n + 1) * sizeof(*v));
    if (!v)
        return -1;
    c->entries = v;
    memset(&v[c->n], 0, sizeof(v[c->n]));
    snprintf(v[c->n].model, sizeof(v[c->n].model), "%s", o->model);
    snprintf(v[c->n].provider, sizeof(v[c->n].provider), "%s", o->provider);
    set_price(&v[c->n++], o);
    return 0;
}

int sl_catalog_override(struct sl_catalog *c, const struct sl_price_override *o)
{
    int matched = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct sl_catalog_entry *e = &c->entries[i];
        if (strcmp(e->model, o->model) == 0 && (!o->provider[0] || !strcmp(e->provider, o->provider))) {
            set_price(e, o);
            matched = 1;
        }
    }
    return matched ? 0 : add_entry(c, o);
}

/* The same model (and provider) twice would make the result depend on order. */
static int check_overrides(const struct sl_config *cfg, struct sl_buf *errors)
{
    const struct sl_pricing_cfg *p = &cfg->pricing;
    int result = 0;
    for (size_t i = 0; i < p->noverrides; i++) {
        for (size_t j = 0; j < i; j++) {
            if (!strcmp(p->overrides[i].model, p->overrides[j].model) &&
                !strcmp(p->overrides[i].provider, p->overrides[j].provider)) {
                if (errors)
                    sl_buf_printf(errors, "%s:%d: pricing.overrides[%zu]: '%s' is overridden "
                                  "twice (first at line %d)\n", cfg->path ? cfg->path : "config",
                                  p->overrides[i].line, i, p->overrides[i].model,
                                  p->overrides[j].line);
                result = -1;
                break;
            }
        }
    }
    return result;
}

static struct sl_catalog *base_catalog(const struct sl_pricing_cfg *p, struct sl_buf *errors)
{
    FILE *f = p->catalog_line ? NULL : fopen(p->catalog, "rb");
    if (!p->catalog_line && !f) /* the default path, and nothing there: no catalog */
        return new_catalog();
    if (f)
        fclose(f);
    return sl_catalog_load(p->catalog, errors);
}

struct sl_catalog *sl_catalog_from_config(const struct sl_config *cfg, struct sl_buf *errors)
{
    const struct sl_pricing_cfg *p = &cfg->pricing;
    struct sl_catalog *c = check_overrides(cfg, errors) ? NULL : base_catalog(p, errors);
    for (size_t i = 0; c && i < p->noverrides; i++) {
        if (sl_catalog_override(c, &p->overrides[i])) {
            if (errors)
                sl_buf_printf(errors, "%s: out of memory\n", cfg->path ? cfg->path : "config");
            sl_catalog_free(c);
            c = NULL;
        }
    }
    if (c)
        sl_catalog_configure(c, p->currency[0] ? p->currency : "USD", p->usd_per_cny);
    return c;
}

const struct sl_catalog_entry *sl_catalog_find(const struct sl_catalog *c, const char *model,
                                               const char *provider)
{
    const struct sl_catalog_entry *first = NULL;
    for (size_t i = 0; c && model && i < c->n; i++) {
        const struct sl_catalog_entry *e = &c->entries[i];
        if (strcmp(e->model, model) != 0)
            continue;
        if (!provider || strcmp(e->provider, provider) == 0)
            return e;
        if (!first)
            first = e;
    }
    return first;
}

void sl_catalog_free(struct sl_catalog *c)
{
    if (!c)
        return;
    free(c->entries);
    free(c);
}
