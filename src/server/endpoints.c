/* The small endpoints: model list, health, metrics. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
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

void sl_metrics_handle(struct sl_exchange *x)
{
    struct sl_buf b = SL_BUF_INIT(64 * 1024 * 1024);
    sl_metrics_render(&b);
    sl_exchange_reply(x, 200, "text/plain; version=0.0.4", b.ptr ? b.ptr : "", b.len);
    sl_buf_release(&b);
}
