/* The chunking: block: knowledge-base chunking profiles defined in the config file, checked
 * with the chunker's own rules at load time and registered with it on demand. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/loader.h"
#include "kb/chunk.h"

static int set_str(struct loader *ld, const struct scalar *v, char **field)
{
    char *s = strdup(v->s);
    if (!s) {
        sl_config_oom(ld, v->line);
        return -1;
    }
    free(*field);
    *field = s;
    return 0;
}

static int parse_profile_name(struct loader *ld, const struct scalar *v, void *base,
                              const struct directive *d)
{
    static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    if (v->len == 0 || v->len > SL_MAX_NAME || strspn(v->s, ok) != v->len ||
        strcmp(v->s, "auto") == 0) {
        sl_config_bad(ld, v->line, v->key, "'%.64s' is not a valid profile name", v->s);
        return -1;
    }
    return set_str(ld, v, FIELD(char *, base, d));
}

static int parse_base(struct loader *ld, const struct scalar *v, void *base,
                      const struct directive *d)
{
    const struct sl_chunk_profile *p = sl_chunk_profile(v->s);
    if (!p || p->langchain || (strcmp(v->s, "contract") && strcmp(v->s, "techdoc") &&
                               strcmp(v->s, "default"))) {
        sl_config_bad(ld, v->line, v->key, "'%.64s' is not contract, techdoc or default", v->s);
        return -1;
    }
    return set_str(ld, v, FIELD(char *, base, d));
}

static int parse_amount(struct loader *ld, const struct scalar *v, void *base,
                        const struct directive *d)
{
    char *end = NULL;
    long long n = strtoll(v->s, &end, 10);
    if (end == v->s || *end || n < 0 || n > 1000000) {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not a whole number from 0 to 1000000",
                      v->s);
        return -1;
    }
    *FIELD(int64_t, base, d) = n;
    return 0;
}

static int parse_unit(struct loader *ld, const struct scalar *v, void *base,
                      const struct directive *d)
{
    int *u = FIELD(int, base, d);
    if (strcmp(v->s, "tokens") == 0)
        *u = SL_CHUNK_TOKENS;
    else if (strcmp(v->s, "chars") == 0)
        *u = SL_CHUNK_CHARS;
    else {
        sl_config_bad(ld, v->line, v->key, "'%.32s' is not tokens or chars", v->s);
        return -1;
    }
    return 0;
}

static void free_separators(struct sl_chunking_cfg *c)
{
    for (size_t i = 0; c->separators && i < c->nseparators; i++)
        free(c->separators[i]);
    free(c->separators);
    c->separators = NULL;
    c->nseparators = 0;
}

/* separators: ["\n第", "\n\n", "。", ""] (YAML double quotes give "\n"). */
static int seq_separators(struct loader *ld, const struct scalar *items, size_t n, int line,
                          void *base, const struct directive *d)
{
    struct sl_chunking_cfg *c = base;
    if (n > SL_CHUNK_MAX_SEPARATORS) {
        sl_config_bad(ld, line, d->key, "too many separators (%zu; at most %d)", n,
                      SL_CHUNK_MAX_SEPARATORS);
        return -1;
    }
    free_separators(c);
    c->separators = calloc(n ? n : 1, sizeof(*c->separators));
    for (size_t i = 0; c->separators && i < n; i++, c->nseparators++)
        if (!(c->separators[i] = strdup(items[i].s)))
            break;
    if (!c->separators || c->nseparators != n) {
        sl_config_oom(ld, line);
        return -1;
    }
    return 0;
}

/* headings: [markdown, clause] or [] */
static int seq_headings(struct loader *ld, const struct scalar *items, size_t n, int line,
                        void *base, const struct directive *d)
{
    int64_t bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i].s, "markdown") == 0)
            bits |= SL_HEADINGS_MARKDOWN;
        else if (strcmp(items[i].s, "clause") == 0)
            bits |= SL_HEADINGS_CLAUSE;
        else {
            sl_config_bad(ld, items[i].line, d->key, "'%.32s' is not markdown or clause",
                          items[i].s);
            return -1;
        }
    }
    *FIELD(int64_t, base, d) = bits;
    return 0;
}

#define CHK(field) offsetof(struct sl_chunking_cfg, field)
static const struct directive chunking_rows[] = {
    {.key = "name", .scalar = parse_profile_name, .off = CHK(name), .flags = D_REQUIRED},
    {.key = "base", .scalar = parse_base, .off = CHK(base)},
    {.key = "separators", .seq = seq_separators, .flags = D_EMPTY_OK}, /* "" splits anywhere */
    {.key = "size", .scalar = parse_amount, .off = CHK(size)},
    {.key = "overlap", .scalar = parse_amount, .off = CHK(overlap)},
    {.key = "unit", .scalar = parse_unit, .off = CHK(unit)},
    {.key = "headings", .seq = seq_headings, .off = CHK(headings)},
};
static const struct table chunking_table = TABLE("a chunking profile (name)", chunking_rows);

static void init_chunking(void *item, int line)
{
    struct sl_chunking_cfg *c = item;
    c->size = c->overlap = c->headings = -1;
    c->unit = -1;
    c->line = line;
}

const struct list sl_config_chunking_list = {
    &chunking_table,         sizeof(struct sl_chunking_cfg),       SL_MAX_CHUNKING_PROFILES,
    offsetof(struct sl_config, chunking), offsetof(struct sl_config, nchunking), init_chunking};

/* The profile a config entry describes; its strings point into c. */
static struct sl_chunk_profile profile_of(const struct sl_chunking_cfg *c)
{
    struct sl_chunk_profile p = *sl_chunk_profile(c->base ? c->base : "default");
    p.name = c->name;
    if (c->separators) {
        p.separators = (const char *const *)c->separators;
        p.nseparators = (int)c->nseparators;
    }
    if (c->size >= 0)
        p.size = (int)c->size;
    if (c->overlap >= 0)
        p.overlap = (int)c->overlap;
    else if (c->size >= 0 && p.overlap >= p.size)
        p.overlap = p.size / 10;
    if (c->unit >= 0)
        p.unit = (enum sl_chunk_unit)c->unit;
    if (c->headings >= 0)
        p.headings = (unsigned)c->headings;
    return p;
}

void sl_config_check_chunking(struct loader *ld)
{
    const struct sl_config *cfg = ld->cfg;
    for (size_t i = 0; i < cfg->nchunking; i++) {
        const struct sl_chunking_cfg *c = &cfg->chunking[i];
        char err[200];
        if (!c->name)
            continue;
        snprintf(ld->path, sizeof(ld->path), "chunking[%zu]", i);
        struct sl_chunk_profile p = profile_of(c);
        if (!strcmp(c->name, "contract") || !strcmp(c->name, "techdoc") ||
            !strcmp(c->name, "default") || !strcmp(c->name, "langchain"))
            sl_config_bad(ld, c->line, "name", "'%s' is a built-in profile; pick another name",
                          c->name);
        else if (sl_chunk_profile_check(&p, err, sizeof(err)))
            sl_config_bad(ld, c->line, NULL, "%s", err);
        for (size_t j = 0; j < i; j++)
            if (cfg->chunking[j].name && strcmp(cfg->chunking[j].name, c->name) == 0)
                sl_config_bad(ld, c->line, "name", "profile '%s' is defined twice", c->name);
    }
    ld->path[0] = '\0';
}

int sl_config_register_chunking(const struct sl_config *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; cfg && i < cfg->nchunking; i++) {
        struct sl_chunk_profile p = profile_of(&cfg->chunking[i]);
        if (sl_chunk_profile_register(&p, err, errlen))
            return -1;
    }
    return 0;
}

void sl_config_release_chunking(struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->nchunking; i++) {
        free(cfg->chunking[i].name);
        free(cfg->chunking[i].base);
        free_separators(&cfg->chunking[i]);
    }
    free(cfg->chunking);
    cfg->chunking = NULL;
    cfg->nchunking = 0;
}
