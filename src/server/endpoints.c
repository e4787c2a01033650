/* The small endpoints: model list, health, metrics. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "route/route.h"
#include "meter/govern.h"
#include "meter/keys.h"
#include "server/internal.h"
#include "server/metrics.h"

void sl_models_handle(struct sl_exchange *x)
{
    const struct sl_config *cfg = x->snap->cfg;
    struct sl_buf b = SL_BUF_INIT(16 * 1024 * 1024);
    long long created = (long long)(x->w->srv->started_ms / 1000);
    int first = 1;
    sl_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct sl_model_cfg *m = &cfg->models[i];
        if (sl_config_find_model(cfg, m->name) != m)
            continue; /* disabled provider, or shadowed by an earlier model of that name */
        if (!sl_key_allows(x->key, m->name))
            continue; /* the client's key may not use it */
        sl_buf_puts(&b, first ? "{\"id\":" : ",{\"id\":");
        sl_json_quote(&b, m->name, strlen(m->name));
        sl_buf_printf(&b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":", created);
        sl_json_quote(&b, m->provider, strlen(m->provider));
        sl_buf_puts(&b, "}");
        first = 0;
    }
    sl_buf_puts(&b, "]}");
    sl_exchange_reply(x, 200, "application/json", b.ptr, b.len);
    sl_buf_release(&b);
}

void sl_health_handle(struct sl_exchange *x)
{
    char body[256];
    const struct sl_server *srv = x->w->srv;
    int n = snprintf(body, sizeof(body),
                     "{\"status\":\"ok\",\"workers\":%d,\"in_flight\":%d,\"uptime_s\":%lld}",
                     srv->nworkers, atomic_load(&srv->inflight) - 1,
                     (long long)((sl_wall_ms() - srv->started_ms) / 1000));
    sl_exchange_reply(x, 200, "application/json", body, (size_t)n);
}

static const char *breaker_name(enum sl_route_breaker b)
{
    return b == SL_BREAKER_OPEN ? "open" : b == SL_BREAKER_HALF_OPEN ? "half_open" : "closed";
}

/* Per-deployment routing state: breakers, rate limits, in flight, time to first byte. */
static void render_deployments(struct sl_exchange *x, struct sl_buf *b)
{
    const struct sl_config *cfg = x->snap->cfg;
    int64_t now = sl_now_us();
    sl_buf_puts(b, "# HELP sluice_deployment_breaker Circuit breaker: 0 closed, 1 open, 2 half-open.\n"
                   "# TYPE sluice_deployment_breaker gauge\n");
    for (size_t i = 0; i < cfg->nmodels; i++) {
        struct sl_route_state st;
        sl_route_health_state(x->snap->health, i, now, &st);
        sl_buf_printf(b, "sluice_deployment_breaker{model=\"%s\",provider=\"%s\"} %d\n",
                      cfg->models[i].name, cfg->models[i].provider, (int)st.breaker);
    }
    sl_buf_puts(b, "# HELP sluice_deployment_rate_limited 1 while a 429 holds the deployment back.\n"
                   "# TYPE sluice_deployment_rate_limited gauge\n");
    for (size_t i = 0; i < cfg->nmodels; i++) {
        struct sl_route_state st;
        sl_route_health_state(x->snap->health, i, now, &st);
        sl_buf_printf(b, "sluice_deployment_rate_limited{model=\"%s\",provider=\"%s\"} %d\n",
                      cfg->models[i].name, cfg->models[i].provider, st.limited_until_us > now);
    }
}

/* GET /admin/health: what the router knows about every deployment. */
void sl_admin_health_handle(struct sl_exchange *x)
{
    const struct sl_config *cfg = x->snap->cfg;
    struct sl_buf b = SL_BUF_INIT(16 * 1024 * 1024);
    int64_t now = sl_now_us();
    sl_buf_puts(&b, "{\"deployments\":[");
    for (size_t i = 0; i < cfg->nmodels; i++) {
        const struct sl_model_cfg *m = &cfg->models[i];
        struct sl_route_state st;
        sl_route_health_state(x->snap->health, i, now, &st);
        sl_buf_puts(&b, i ? ",{\"model\":" : "{\"model\":");
        sl_json_quote(&b, m->name, strlen(m->name));
        sl_buf_puts(&b, ",\"provider\":");
        sl_json_quote(&b, m->provider, strlen(m->provider));
        sl_buf_printf(&b,
                      ",\"enabled\":%s,\"breaker\":\"%s\",\"open_for_ms\":%lld,"
                      "\"rate_limited_for_ms\":%lld,\"in_flight\":%d,\"window_requests\":%u,"
                      "\"window_failures\":%u,\"consecutive_failures\":%u,"
                      "\"ewma_ttft_ms\":%.3f,\"p95_ttft_ms\":%.3f}",
                      m->p->enabled ? "true" : "false", breaker_name(st.breaker),
                      (long long)(st.breaker == SL_BREAKER_OPEN ? (st.open_until_us - now) / 1000 : 0),
                      (long long)(st.limited_until_us > now ? (st.limited_until_us - now) / 1000 : 0),
                      st.in_flight, st.window_requests, st.window_failures, st.consecutive_failures,
                      st.ewma_ttft_us / 1000.0, st.p95_ttft_us < 0 ? -1.0 : st.p95_ttft_us / 1000.0);
    }
    sl_buf_puts(&b, "]}");
    sl_exchange_reply(x, 200, "application/json", b.ptr ? b.ptr : "{}", b.len);
    sl_buf_release(&b);
}

void sl_metrics_handle(struct sl_exchange *x)
{
    struct sl_buf b = SL_BUF_INIT(64 * 1024 * 1024);
    sl_metrics_render(&b);
    render_deployments(x, &b);
    sl_govern_metrics(x->w->srv->govern, &b);
    sl_exchange_reply(x, 200, "text/plain; version=0.0.4", b.ptr ? b.ptr : "", b.len);
    sl_buf_release(&b);
}
