/* Strategy fallback: the deployments in the order the group lists them. */
#include "route/internal.h"

static void order(struct plan_ctx *ctx, struct member *m, size_t n)
{
    /* The planner already collects members in listed order. */
}

const struct strategy sl_route_fallback = {"fallback", order};
