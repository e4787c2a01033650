/* sl_route_plan: a group's deployments, filtered by what the request needs and by their
 * health, then ordered by the group's strategy (one vtable entry a strategy). */
#include <string.h>

#include "route/internal.h"

static const struct strategy *const strategies[] = {
    [SL_STRATEGY_FALLBACK] = &sl_route_fallback, [SL_STRATEGY_WEIGHTED] = &sl_route_weighted,
    [SL_STRATEGY_LATENCY] = &sl_route_latency,   [SL_STRATEGY_COST] = &sl_route_cost,
    [SL_STRATEGY_TIERS] = &sl_route_tiers,
};

/* Words from estimated tokens: a token is about 3/4 of an English word, the usual rule
 * of thumb; for CJK text the estimator already counts more tokens per character. */
enum sl_tier sl_route_tier(const struct sl_group_cfg *g, int64_t prompt_tokens)
{
    int64_t words = prompt_tokens * 3 / 4;
    for (int t = 0; t < SL_TIER_COUNT - 1; t++)
        if (words < g->tier_limit[t])
            return (enum sl_tier)t;
    return SL_TIER_LONG;
}

/* Insertion sort: stable (ties keep listed order), and faster than qsort here, since
 * latencies, prices and tiers mostly arrive sorted or nearly so (measured: bench/route). */
void members_sort(struct member *m, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        struct member x = m[i];
        size_t j = i;
        for (; j > 0 && m[j - 1].key > x.key; j--)
            m[j] = m[j - 1];
        m[j] = x;
    }
}

/* Static checks: the request must fit the model at all. */
static int fits(const struct sl_model_cfg *mc, const struct sl_route_request *req,
                struct sl_route_plan *out)
{
    int64_t need = req->prompt_tokens + (req->max_tokens > 0 ? req->max_tokens : 0);
    if (mc->p && !mc->p->enabled) {
        out->skipped_disabled++;
        return 0;
    }
    if (mc->context_window > 0 && need > mc->context_window) {
        out->skipped_context++;
        return 0;
    }
    if (mc->capabilities && (req->needs & ~mc->capabilities)) {
        out->skipped_capability++;
        return 0;
    }
    return 1;
}

/* Health checks: open breakers and rate limits are skipped until they end. */
static int healthy(struct sl_route_health *h, size_t model, const struct sl_route_request *req,
                   int64_t now_us, struct sl_route_plan *out, struct member *m)
{
    struct health_view v;
    health_view(h, model, req->stream, now_us, &v);
    if (v.limited) {
        out->skipped_limited++;
        if (!out->limited_until_us || v.limited_until_us < out->limited_until_us)
            out->limited_until_us = v.limited_until_us;
        return 0;
    }
    if (v.allow < 0) {
        out->skipped_open++;
        return 0;
    }
    m->probe = v.allow == 1;
    m->key = v.cost;
    return 1;
}

static long pin_position(const struct sl_config *cfg, const struct sl_group_cfg *g,
                         const char *pin)
{
    for (size_t i = 0; i < g->nmembers; i++)
        if (strcmp(cfg->models[g->members[i]].name, pin) == 0)
            return (long)i;
    return -1;
}

/* Collects the members that pass both checks, in listed order. */
static size_t eligible(const struct sl_config *cfg, const struct sl_group_cfg *g,
                       struct sl_route_health *h, const struct sl_route_request *req,
                       int64_t now_us, struct sl_route_plan *out, struct member *m)
{
    size_t n = 0, from = 0, to = g->nmembers;
    if (req->pin) {
        from = (size_t)pin_position(cfg, g, req->pin);
        to = from + 1;
    }
    for (size_t i = from; i < to; i++) {
        size_t model = g->members[i];
        m[n] = (struct member){.pos = (uint32_t)i, .model = (uint32_t)model};
        if (fits(&cfg->models[model], req, out) && healthy(h, model, req, now_us, out, &m[n]))
            n++;
    }
    return n;
}

int sl_route_plan(const struct sl_config *cfg, const struct sl_group_cfg *g,
                  struct sl_route_health *h, const struct sl_route_request *req, int64_t now_us,
                  struct sl_route_plan *out)
{
    struct member m[SL_MAX_GROUP_DEPLOYMENTS];
    out->n = 0;
    out->tier = -1;
    out->skipped_context = out->skipped_capability = out->skipped_open = 0;
    out->skipped_limited = out->skipped_disabled = 0;
    out->limited_until_us = 0;
    if (req->pin && pin_position(cfg, g, req->pin) < 0)
        return SL_ROUTE_EPIN;
    struct plan_ctx ctx = {cfg, g, req, req->seed, sl_route_tier(g, req->prompt_tokens)};
    size_t n = eligible(cfg, g, h, req, now_us, out, m);
    if (!req->pin)
        strategies[g->strategy]->order(&ctx, m, n);
    if (g->strategy == SL_STRATEGY_TIERS)
        out->tier = (int)ctx.tier;
    for (size_t i = 0; i < n; i++)
        out->c[i] = (struct sl_route_candidate){m[i].model, m[i].probe, m[i].tier};
    out->n = n;
    return 0;
}
