/* Metric series in small growable arrays; label sets are few (models x providers x
 * statuses), so a linear search under the lock is cheaper than a hash. */
#include "server/metrics.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 14
static const double bucket_s[NBUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                          1, 2.5, 5, 10, 30, 60, 120};

struct histogram {
    uint64_t buckets[NBUCKETS];
    uint64_t count;
    double sum;
};

struct series {
    char model[SL_MAX_NAME], provider[SL_MAX_NAME];
    int status;
    uint64_t requests;
    uint64_t prompt_tokens, completion_tokens;
    struct histogram latency, ttft;
};

struct errseries {
    char provider[SL_MAX_NAME];
    char kind[32];
    uint64_t count;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct series *all;
static size_t nall, capall;
static struct errseries *errs;
static size_t nerrs, caperrs;
static atomic_int inflight;
static atomic_ullong cache_hits, cache_stale; /* answers from the response cache */

static void observe(struct histogram *h, double seconds)
{
    for (int i = 0; i < NBUCKETS; i++)
        if (seconds <= bucket_s[i])
            h->buckets[i]++;
    h->count++;
    h->sum += seconds;
}

static void *grow(void *arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return arr;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = realloc(arr, ncap * size);
    if (p)
        *cap = ncap;
    return p;
}

static struct series *find_series(const char *model, const char *provider, int status)
{
    for (size_t i = 0; i < nall; i++)
        if (all[i].status == status && strcmp(all[i].model, model) == 0 &&
            strcmp(all[i].provider, provider) == 0)
            return &all[i];
    struct series *p = grow(all, &capall, nall, sizeof(*all));
    if (!p)
        return NULL;
    all = p;
    struct series *s = &all[nall++];
    memset(s, 0, sizeof(*s));
    snprintf(s->model, sizeof(s->model), "%s", model);
    snprintf(s->provider, sizeof(s->provider), "%s", provider);
    s->status = status;
    return s;
}

void sl_metrics_request(const struct sl_usage_row *row)
{
    pthread_mutex_lock(&lock);
    struct series *s = find_series(row->model, row->provider, row->status);
    if (s) {
        s->requests++;
        s->prompt_tokens += (uint64_t)row->prompt_tokens;
        s->completion_tokens += (uint64_t)row->completion_tokens;
        observe(&s->latency, (double)row->latency_us / 1e6);
        if (row->ttft_us >= 0)
            observe(&s->ttft, (double)row->ttft_us / 1e6);
    }
    pthread_mutex_unlock(&lock);
    if (row->cache[0])
        atomic_fetch_add(row->cache[0] == 's' ? &cache_stale : &cache_hits, 1);
}

void sl_metrics_upstream_error(const char *provider, const char *kind)
{
    pthread_mutex_lock(&lock);
    size_t i;
    for (i = 0; i < nerrs; i++)
        if (strcmp(errs[i].provider, provider) == 0 && strcmp(errs[i].kind, kind) == 0)
            break;
    if (i == nerrs) {
        struct errseries *p = grow(errs, &caperrs, nerrs, sizeof(*errs));
        if (!p) {
            pthread_mutex_unlock(&lock);
            return;
        }
        errs = p;
        memset(&errs[i], 0, sizeof(errs[i]));
        snprintf(errs[i].provider, sizeof(errs[i].provider), "%s", provider);
        snprintf(errs[i].kind, sizeof(errs[i].kind), "%s", kind);
        nerrs++;
    }
    errs[i].count++;
    pthread_mutex_unlock(&lock);
}

void sl_metrics_inflight(int delta)
{
    atomic_fetch_add(&inflight, delta);
}

/* Label values are model and provider names from config or client input:
 * escape what the exposition format requires. */
static void label(struct sl_buf *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            sl_buf_append(out, "\\", 1);
        if (*v == '\n')
            sl_buf_puts(out, "\\n");
        else
            sl_buf_append(out, v, 1);
    }
}

static void labels(struct sl_buf *out, const struct series *s)
{
    sl_buf_puts(out, "model=\"");
    label(out, s->model);
    sl_buf_puts(out, "\",provider=\"");
    label(out, s->provider);
    sl_buf_puts(out, "\"");
}

static void render_histogram(struct sl_buf *out, const char *name, const struct series *s,
                             const struct histogram *h)
{
    for (int i = 0; i < NBUCKETS; i++) {
        sl_buf_printf(out, "%s_bucket{", name);
        labels(out, s);
        sl_buf_printf(out, ",status=\"%d\",le=\"%g\"} %llu\n", s->status, bucket_s[i],
                      (unsigned long long)h->buckets[i]);
    }
    sl_buf_printf(out, "%s_bucket{", name);
    labels(out, s);
    sl_buf_printf(out, ",status=\"%d\",le=\"+Inf\"} %llu\n", s->status,
                  (unsigned long long)h->count);
    sl_buf_printf(out, "%s_sum{", name);
    labels(out, s);
    sl_buf_printf(out, ",status=\"%d\"} %.6f\n%s_count{", s->status, h->sum, name);
    labels(out, s);
    sl_buf_printf(out, ",status=\"%d\"} %llu\n", s->status, (unsigned long long)h->count);
}

static void render_counter(struct sl_buf *out, const char *name, const char *help, size_t field)
{
    sl_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < nall; i++) {
        uint64_t v;
        memcpy(&v, (const char *)&all[i] + field, sizeof(v));
        sl_buf_printf(out, "%s{", name);
        labels(out, &all[i]);
        sl_buf_printf(out, ",status=\"%d\"} %llu\n", all[i].status, (unsigned long long)v);
    }
}

int sl_metrics_render(struct sl_buf *out)
{
    pthread_mutex_lock(&lock);
    render_counter(out, "sluice_requests_total", "Requests by model, provider and status.",
                   offsetof(struct series, requests));
    render_counter(out, "sluice_prompt_tokens_total", "Prompt tokens (input).",
                   offsetof(struct series, prompt_tokens));
    render_counter(out, "sluice_completion_tokens_total", "Completion tokens (output).",
                   offsetof(struct series, completion_tokens));
    sl_buf_puts(out, "# HELP sluice_request_duration_seconds Request latency.\n"
                     "# TYPE sluice_request_duration_seconds histogram\n");
    for (size_t i = 0; i < nall; i++)
        render_histogram(out, "sluice_request_duration_seconds", &all[i], &all[i].latency);
    sl_buf_puts(out, "# HELP sluice_time_to_first_token_seconds Time to the first streamed token.\n"
                     "# TYPE sluice_time_to_first_token_seconds histogram\n");
    for (size_t i = 0; i < nall; i++)
        if (all[i].ttft.count)
            render_histogram(out, "sluice_time_to_first_token_seconds", &all[i], &all[i].ttft);
    sl_buf_puts(out, "# HELP sluice_upstream_errors_total Upstream failures by provider and kind.\n"
                     "# TYPE sluice_upstream_errors_total counter\n");
    for (size_t i = 0; i < nerrs; i++) {
        sl_buf_puts(out, "sluice_upstream_errors_total{provider=\"");
        label(out, errs[i].provider);
        sl_buf_printf(out, "\",kind=\"%s\"} %llu\n", errs[i].kind,
                      (unsigned long long)errs[i].count);
    }
    sl_buf_printf(out, "# HELP sluice_requests_in_flight Requests being served.\n"
                       "# TYPE sluice_requests_in_flight gauge\nsluice_requests_in_flight %d\n",
                  atomic_load(&inflight));
    sl_buf_printf(out, "# HELP sluice_cache_answers_total Requests answered from the response cache.\n"
                       "# TYPE sluice_cache_answers_total counter\n"
                       "sluice_cache_answers_total{result=\"hit\"} %llu\n"
                       "sluice_cache_answers_total{result=\"stale\"} %llu\n",
                  (unsigned long long)atomic_load(&cache_hits),
                  (unsigned long long)atomic_load(&cache_stale));
    pthread_mutex_unlock(&lock);
    return 0;
}

void sl_metrics_reset(void)
{
    pthread_mutex_lock(&lock);
    free(all);
    free(errs);
    all = NULL;
    errs = NULL;
    nall = capall = nerrs = caperrs = 0;
    atomic_store(&cache_hits, 0);
    atomic_store(&cache_stale, 0);
    pthread_mutex_unlock(&lock);
}
