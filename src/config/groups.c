/* groups: once the whole file is read: a group's names resolved against models:, the
 * keys each strategy needs, the shared model/group namespace, and freeing. */
#include <stdlib.h>
#include <string.h>

#include "config/loader.h"

static const int64_t default_tier_words[SL_TIER_COUNT - 1] = {100, 1000, 8000};
static const char *const tier_names[SL_TIER_COUNT] = {"simple", "medium", "complex", "long"};

const struct sl_group_cfg *sl_config_find_group(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->ngroups; i++)
        if (cfg->groups[i].name && strcmp(cfg->groups[i].name, name) == 0)
            return &cfg->groups[i];
    return NULL;
}

/* Any model of that name, enabled or not: a disabled one is skipped when routing, so
 * the same file still loads where its key is missing. Returns its index or -1. */
static long model_index(const struct sl_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nmodels; i++)
        if (cfg->models[i].name && strcmp(cfg->models[i].name, name) == 0)
            return (long)i;
    return -1;
}

static void check_name(struct loader *ld, const struct sl_group_cfg *g, size_t index)
{
    struct sl_config *cfg = ld->cfg;
    for (size_t j = 0; j < index; j++) {
        if (cfg->groups[j].name && strcmp(cfg->groups[j].name, g->name) == 0) {
            sl_config_bad(ld, g->line, NULL, "duplicate group name '%s' (first defined at line "
                          "%d)", g->name, cfg->groups[j].line);
            return;
        }
    }
    long m = model_index(cfg, g->name);
    if (m >= 0)
        sl_config_bad(ld, g->line, NULL, "group '%s': the name is already a model (line %d); a "
                      "name clients ask for is either a model or a group", g->name,
                      cfg->models[m].line);
}

static void report_unknown(struct loader *ld, const struct sl_group_cfg *g, const char *what,
                           const char *name, int line)
{
    if (sl_config_find_group(ld->cfg, name))
        sl_config_bad(ld, line, NULL, "group '%s': %s: '%s' is a group; groups cannot contain "
                      "groups", g->name, what, name);
    else
        sl_config_bad(ld, line, NULL, "group '%s': %s: unknown model '%s' (names come from "
                      "models:)", g->name, what, name);
}

/* Deployments to model indexes; they also become the first members. */
static int resolve_deployments(struct loader *ld, struct sl_group_cfg *g)
{
    int result = 0;
    for (size_t i = 0; i < g->deployments.n; i++) {
        long m = model_index(ld->cfg, g->deployments.names[i]);
        if (m < 0) {
            report_unknown(ld, g, "deployments", g->deployments.names[i], g->deployments.line);
            result = -1;
            continue;
        }
        g->deployments.index[i] = (size_t)m;
        g->members[g->nmembers++] = (size_t)m;
    }
    return result;
}

/* Mirror targets are models like deployments, but never members: they serve no request. */
static void resolve_mirror(struct loader *ld, struct sl_group_cfg *g)
{
    for (size_t i = 0; i < g->mirror.to.n; i++) {
        long m = model_index(ld->cfg, g->mirror.to.names[i]);
        if (m < 0)
            report_unknown(ld, g, "mirror.to", g->mirror.to.names[i], g->mirror.to.line);
        else
            g->mirror.to.index[i] = (size_t)m;
    }
}

static size_t member_position(struct sl_group_cfg *g, size_t model)
{
    size_t i = 0;
    while (i < g->nmembers && g->members[i] != model)
        i++;
    if (i == g->nmembers)
        g->members[g->nmembers++] = model;
    return i;
}

/* Tier names to member positions, adding names not among deployments: as members. */
static int resolve_tiers(struct loader *ld, struct sl_group_cfg *g)
{
    int result = 0;
    for (int t = 0; t < SL_TIER_COUNT; t++) {
        struct sl_name_list *l = &g->tiers[t];
        for (size_t i = 0; i < l->n; i++) {
            long m = model_index(ld->cfg, l->names[i]);
            if (m < 0) {
                report_unknown(ld, g, tier_names[t], l->names[i], l->line);
                result = -1;
            } else {
                l->index[i] = member_position(g, (size_t)m);
            }
        }
    }
    return result;
}

static size_t tier_total(const struct sl_group_cfg *g, int *line)
{
    size_t n = 0;
    for (int t = 0; t < SL_TIER_COUNT; t++) {
        n += g->tiers[t].n;
        if (g->tiers[t].line && !*line)
            *line = g->tiers[t].line;
    }
    return n;
}

/* Keys that belong to one strategy are refused elsewhere: written there, they would
 * silently do nothing. */
static void check_strategy_keys(struct loader *ld, const struct sl_group_cfg *g)
{
    int tiers_line = 0;
    size_t ntiers = tier_total(g, &tiers_line);
    if (g->strategy != SL_STRATEGY_TIERS && g->deployments.n == 0)
        sl_config_bad(ld, g->deployments.line ? g->deployments.line : g->line, NULL,
                      "group '%s': needs deployments: (a list of model names)", g->name);
    if (g->strategy == SL_STRATEGY_TIERS && ntiers == 0)
        sl_config_bad(ld, g->line, NULL, "group '%s': strategy tiers needs tiers: (simple, "
                      "medium, complex, long: lists of model names)", g->name);
    if (g->strategy != SL_STRATEGY_TIERS && (ntiers || g->tier_words.n))
        sl_config_bad(ld, tiers_line ? tiers_line : g->tier_words.line, NULL,
                      "group '%s': tiers: and tier_words: are used only with strategy: tiers",
                      g->name);
    if (g->weights.n && g->strategy != SL_STRATEGY_WEIGHTED)
        sl_config_bad(ld, g->weights.line, NULL,
                      "group '%s': weights: are used only with strategy: weighted", g->name);
    if (g->strategy == SL_STRATEGY_WEIGHTED && g->weights.n &&
        g->weights.n != g->deployments.n)
        sl_config_bad(ld, g->weights.line, NULL, "group '%s': %zu weights for %zu deployments "
                      "(one each, in the same order)", g->name, g->weights.n, g->deployments.n);
}

static void check_group(struct loader *ld, struct sl_group_cfg *g, size_t index)
{
    int tiers_line = 0;
    size_t most = g->deployments.n + tier_total(g, &tiers_line);
    if (!g->name)
        return; /* already reported as missing */
    check_name(ld, g, index);
    check_strategy_keys(ld, g);
    for (int t = 0; t < SL_TIER_COUNT - 1; t++)
        g->tier_limit[t] = g->tier_words.n ? g->tier_words.v[t] : default_tier_words[t];
    if (!(g->members = calloc(most ? most : 1, sizeof(*g->members)))) {
        sl_config_oom(ld, g->line);
        return;
    }
    resolve_deployments(ld, g);
    resolve_tiers(ld, g);
    resolve_mirror(ld, g);
    if (g->nmembers > SL_MAX_GROUP_DEPLOYMENTS)
        sl_config_bad(ld, g->line, NULL, "group '%s': %zu deployments (at most %d)", g->name,
                      g->nmembers, SL_MAX_GROUP_DEPLOYMENTS);
}

/* Half a price would rank a model wrongly under strategy: cost. */
static void check_prices(struct loader *ld)
{
    for (size_t i = 0; i < ld->cfg->nmodels; i++) {
        struct sl_model_cfg *m = &ld->cfg->models[i];
        if (m->priced && m->priced != 3)
            sl_config_bad(ld, m->line, NULL, "model '%s': price_in and price_out go together "
                          "(USD per million tokens)", m->name ? m->name : "?");
        m->priced = m->priced != 0;
    }
}

void sl_config_check_groups(struct loader *ld)
{
    check_prices(ld);
    for (size_t i = 0; i < ld->cfg->ngroups; i++)
        check_group(ld, &ld->cfg->groups[i], i);
}

static void release_names(struct sl_name_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->index);
}

void sl_config_release_groups(struct sl_config *cfg)
{
    for (size_t i = 0; i < cfg->ngroups; i++) {
        struct sl_group_cfg *g = &cfg->groups[i];
        free(g->name);
        release_names(&g->deployments);
        release_names(&g->mirror.to);
        for (int t = 0; t < SL_TIER_COUNT; t++)
            release_names(&g->tiers[t]);
        free(g->weights.v);
        free(g->tier_words.v);
        free(g->members);
    }
    free(cfg->groups);
    cfg->groups = NULL;
    cfg->ngroups = 0;
}
