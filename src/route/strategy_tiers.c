/* Strategy tiers: the request's size picks a tier (simple, medium, complex, long); that
 * tier's deployments come first, then the larger tiers', then the smaller ones' as a last
 * resort. Needs work through the planner's checks: a tools request whose tier has no
 * deployment with tools (or none that fits the context) starts at the next tier up. */
#include "route/internal.h"

/* Tier visiting order from the chosen one: chosen, chosen+1, ..., long, chosen-1, ... */
static int tier_rank(enum sl_tier chosen, int t)
{
    return t >= (int)chosen ? t - (int)chosen : SL_TIER_COUNT - 1 - t;
}

static void order(struct plan_ctx *ctx, struct member *m, size_t n)
{
    const struct sl_group_cfg *g = ctx->g;
    double key[SL_MAX_GROUP_DEPLOYMENTS];
    uint8_t tier[SL_MAX_GROUP_DEPLOYMENTS];
    /* Members listed under no tier rank after every tier; a member in several tiers
     * takes its best-ranked one. */
    for (size_t i = 0; i < g->nmembers; i++) {
        key[i] = (double)SL_TIER_COUNT * SL_MAX_GROUP_DEPLOYMENTS + (double)i;
        tier[i] = 0;
    }
    for (int t = 0; t < SL_TIER_COUNT; t++) {
        for (size_t i = 0; i < g->tiers[t].n; i++) {
            size_t pos = g->tiers[t].index[i];
            double k = (double)tier_rank(ctx->tier, t) * SL_MAX_GROUP_DEPLOYMENTS + (double)i;
            if (k < key[pos]) {
                key[pos] = k;
                tier[pos] = (uint8_t)t;
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        m[i].key = key[m[i].pos];
        m[i].tier = tier[m[i].pos];
    }
    members_sort(m, n);
}

const struct strategy sl_route_tiers = {"tiers", order};
