/* Strategy cost: the cheapest deployment for this request first (its prompt at
 * price_in plus its max_tokens, or an assumed answer length, at price_out); deployments
 * without a price go last, in listed order, until the price catalog prices them. */
#include "route/internal.h"

#define ASSUMED_OUTPUT_TOKENS 500 /* when the client gave no max_tokens */
#define UNPRICED              1e300

static void order(struct plan_ctx *ctx, struct member *m, size_t n)
{
    int64_t out = ctx->req->max_tokens > 0 ? ctx->req->max_tokens : ASSUMED_OUTPUT_TOKENS;
    for (size_t i = 0; i < n; i++) {
        const struct sl_model_cfg *mc = &ctx->cfg->models[m[i].model];
        m[i].key = mc->priced ? mc->price_in * (double)ctx->req->prompt_tokens +
                                    mc->price_out * (double)out
                              : UNPRICED;
    }
    members_sort(m, n);
}

const struct strategy sl_route_cost = {"cost", order};
