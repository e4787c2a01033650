/* Strategy latency: power of two choices over the peak-EWMA cost (time to first byte
 * times requests in flight + 1): two deployments drawn at random, the cheaper goes first.
 * Two random choices avoid the herd that always-the-fastest causes; the rest follow by
 * cost as fallbacks. A deployment with no samples yet costs 0, so it gets explored. */
#include "route/internal.h"

static void move_to_front(struct member *m, size_t n, uint32_t pos)
{
    size_t i = 0;
    while (i < n && m[i].pos != pos)
        i++;
    struct member chosen = m[i];
    for (; i > 0; i--)
        m[i] = m[i - 1];
    m[0] = chosen;
}

static void order(struct plan_ctx *ctx, struct member *m, size_t n)
{
    if (n < 2)
        return;
    size_t a = (size_t)route_below(&ctx->rng, n);
    size_t b = (size_t)route_below(&ctx->rng, n - 1);
    b += b >= a; /* a distinct second choice */
    uint32_t chosen = m[b].key < m[a].key ? m[b].pos : m[a].pos;
    members_sort(m, n);
    move_to_front(m, n, chosen);
}

const struct strategy sl_route_latency = {"latency", order};
