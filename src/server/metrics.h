/* Prometheus metrics: counters and histograms shared by all workers, behind one
 * short lock taken once per finished request. */
#ifndef SL_METRICS_H
#define SL_METRICS_H

#include "core/buf.h"
#include "meter/ledger.h"

/* Counts a finished request: by model, provider and status; latency and time to
 * first token histograms; tokens in and out. */
void sl_metrics_request(const struct sl_usage_row *row);
/* Counts an upstream failure by provider and kind ("unreachable", "timeout", "status_5xx"...). */
void sl_metrics_upstream_error(const char *provider, const char *kind);
void sl_metrics_inflight(int delta);
/* Appends the Prometheus text exposition. */
int sl_metrics_render(struct sl_buf *out);
/* Frees every series (at exit). */
void sl_metrics_reset(void);

#endif
