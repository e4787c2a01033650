/* Hedging: how long to wait for a first byte before starting the next candidate. */
#include "route/internal.h"

int64_t sl_route_hedge_delay_ms(struct sl_route_health *h, const struct sl_group_cfg *g,
                                size_t model)
{
    if (g->hedge.after_ms > 0)
        return g->hedge.after_ms;
    if (!g->hedge.p95)
        return -1;
    /* Without enough samples a p95 is a guess; hedging on a guess doubles load. */
    int64_t p95 = health_p95(h, model);
    return p95 < 0 ? -1 : (p95 + 999) / 1000;
}
