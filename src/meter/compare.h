/* `sluice compare`: per deployment, side by side, how the requests that were mirrored
 * went on their own deployment and on each mirror. Pure arithmetic over ledger rows. */
#ifndef SL_COMPARE_H
#define SL_COMPARE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct sl_compare_stat {
    int mirror;                      /* 0: the requests' own deployment; 1: a mirror */
    char provider[SL_MAX_NAME];
    char upstream_model[SL_MAX_NAME];
    int64_t requests;                /* rows */
    int64_t errors;                  /* rows whose status is not 2xx */
    /* Over the successful rows (nearest rank); -1 when there is none. */
    int64_t latency_p50_us, latency_p99_us;
    int64_t ttft_p50_us;             /* over the successful rows with a known ttft */
    double tokens_per_s;             /* their completion tokens over their seconds; 0 none */
    int64_t cost_micros;             /* every row */
    char currency[4];                /* of the first priced row; "" none */
    int64_t compared, agreed;        /* mirrors: copies with both answers, equal ones */
};

/* The value at rank ceil(q * n) of v (sorted ascending by this call), -1 when n is 0. */
int64_t sl_compare_percentile(int64_t *v, size_t n, double q);

/* Groups rows by (mirror, provider, upstream_model): own deployments first, then
 * mirrors, each by provider and model. Returns 0 with a malloc'd *out of *nout stats
 * (the caller frees; NULL when *nout is 0), or -1 when out of memory. */
int sl_compare_summarize(const struct sl_compare_row *rows, size_t n,
                         struct sl_compare_stat **out, size_t *nout);

#endif
