/* Strategy weighted: the first deployment drawn at random in proportion to its weight
 * (traffic splits as configured), the rest as fallbacks by weight, heaviest first. */
#include "route/internal.h"

static int64_t weight_of(const struct sl_group_cfg *g, uint32_t pos)
{
    return pos < g->weights.n ? g->weights.v[pos] : 1; /* no weights: all equal */
}

static void order(struct plan_ctx *ctx, struct member *m, size_t n)
{
    uint64_t total = 0;
    if (n == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        int64_t w = weight_of(ctx->g, m[i].pos);
        total += (uint64_t)w;
        m[i].key = -(double)w; /* lower key first: heaviest first */
    }
    uint64_t draw = route_below(&ctx->rng, total);
    size_t pick = 0;
    for (uint64_t w; (w = (uint64_t)weight_of(ctx->g, m[pick].pos)) <= draw; pick++)
        draw -= w;
    struct member first = m[pick];
    for (size_t i = pick; i > 0; i--)
        m[i] = m[i - 1];
    m[0] = first;
    members_sort(m + 1, n - 1);
}

const struct strategy sl_route_weighted = {"weighted", order};
