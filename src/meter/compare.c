/* The arithmetic of `sluice compare`: percentiles, throughput, error rate and
 * agreement per deployment. */
#include "meter/compare.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t sl_compare_percentile(int64_t *v, size_t n, double q)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof(*v), cmp_i64);
    size_t rank = (size_t)ceil(q * (double)n);
    return v[rank ? rank - 1 : 0];
}

static int same_key(const struct sl_compare_row *a, const struct sl_compare_row *b)
{
    return a->mirror == b->mirror && strcmp(a->provider, b->provider) == 0 &&
           strcmp(a->upstream_model, b->upstream_model) == 0;
}

static int cmp_rows(const void *pa, const void *pb)
{
    const struct sl_compare_row *a = pa, *b = pb;
    if (a->mirror != b->mirror)
        return a->mirror - b->mirror;
    int c = strcmp(a->provider, b->provider);
    return c ? c : strcmp(a->upstream_model, b->upstream_model);
}

static int ok(const struct sl_compare_row *r)
{
    return r->status >= 200 && r->status < 300;
}

/* One deployment's stat from its rows r[0..n); lat and ttft are scratch of n each. */
static void summarize_one(const struct sl_compare_row *r, size_t n, int64_t *lat, int64_t *ttft,
                          struct sl_compare_stat *s)
{
    size_t nlat = 0, nttft = 0;
    int64_t tokens = 0, us = 0;
    memset(s, 0, sizeof(*s));
    s->mirror = r[0].mirror;
    snprintf(s->provider, sizeof(s->provider), "%s", r[0].provider);
    snprintf(s->upstream_model, sizeof(s->upstream_model), "%s", r[0].upstream_model);
    for (size_t i = 0; i < n; i++) {
        s->requests++;
        s->cost_micros += r[i].cost_micros;
        if (!s->currency[0] && r[i].currency[0])
            snprintf(s->currency, sizeof(s->currency), "%s", r[i].currency);
        if (r[i].agree >= 0) {
            s->compared++;
            s->agreed += r[i].agree;
        }
        if (!ok(&r[i])) {
            s->errors++;
            continue;
        }
        lat[nlat++] = r[i].latency_us;
        if (r[i].ttft_us >= 0)
            ttft[nttft++] = r[i].ttft_us;
        tokens += r[i].completion_tokens;
        us += r[i].latency_us;
    }
    s->latency_p99_us = sl_compare_percentile(lat, nlat, 0.99);
    s->latency_p50_us = sl_compare_percentile(lat, nlat, 0.50);
    s->ttft_p50_us = sl_compare_percentile(ttft, nttft, 0.50);
    s->tokens_per_s = us > 0 ? (double)tokens * 1e6 / (double)us : 0.0;
}

int sl_compare_summarize(const struct sl_compare_row *rows, size_t n,
                         struct sl_compare_stat **out, size_t *nout)
{
    struct sl_compare_row *sorted = malloc((n ? n : 1) * sizeof(*sorted));
    int64_t *lat = malloc((n ? n : 1) * sizeof(*lat)), *ttft = malloc((n ? n : 1) * sizeof(*ttft));
    struct sl_compare_stat *stats = calloc(n ? n : 1, sizeof(*stats));
    size_t k = 0;
    *out = NULL;
    *nout = 0;
    if (!sorted || !lat || !ttft || !stats) {
        free(sorted);
        free(lat);
        free(ttft);
        free(stats);
        return -1;
    }
    if (n)
        memcpy(sorted, rows, n * sizeof(*rows));
    qsort(sorted, n, sizeof(*sorted), cmp_rows);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && same_key(&sorted[i], &sorted[j]))
            j++;
        summarize_one(&sorted[i], j - i, lat, ttft, &stats[k++]);
        i = j;
    }
    free(sorted);
    free(lat);
    free(ttft);
    if (k == 0) {
        free(stats);
        stats = NULL;
    }
    *out = stats;
    *nout = k;
    return 0;
}
