/* The health table shared by the workers: one entry per deployment, each behind its own
 * short mutex (a request touches two or three entries, so contention stays local). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "route/internal.h"

static const struct sl_breaker_cfg default_breaker = {
    .window_ms = 30 * 1000, .min_requests = 10, .error_rate = 0.5, .consecutive = 5,
    .cooldown_ms = 10 * 1000,
};

struct entry {
    pthread_mutex_t lock;
    struct breaker breaker;
    int64_t limited_until_us;
    int in_flight;
    struct latency latency;
};

struct sl_route_health {
    const struct sl_config *cfg;
    size_t n;
    struct entry *e;
};

/* A deployment in several groups has one breaker (one provider, one health): it takes
 * the settings of the first group that lists it. */
static const struct sl_breaker_cfg *breaker_cfg_for(const struct sl_config *cfg, size_t model)
{
    for (size_t i = 0; i < cfg->ngroups; i++)
        for (size_t j = 0; j < cfg->groups[i].nmembers; j++)
            if (cfg->groups[i].members[j] == model)
                return &cfg->groups[i].breaker;
    return &default_breaker;
}

struct sl_route_health *sl_route_health_new(const struct sl_config *cfg)
{
    struct sl_route_health *h = calloc(1, sizeof(*h));
    if (!h || !(h->e = calloc(cfg->nmodels ? cfg->nmodels : 1, sizeof(*h->e)))) {
        free(h);
        return NULL;
    }
    h->cfg = cfg;
    for (; h->n < cfg->nmodels; h->n++) {
        struct entry *e = &h->e[h->n];
        if (pthread_mutex_init(&e->lock, NULL)) {
            sl_route_health_free(h);
            return NULL;
        }
        breaker_init(&e->breaker, breaker_cfg_for(cfg, h->n));
    }
    return h;
}

void sl_route_health_free(struct sl_route_health *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < h->n; i++)
        pthread_mutex_destroy(&h->e[i].lock);
    free(h->e);
    free(h);
}

static const struct entry *find_entry(const struct sl_route_health *h, const char *name)
{
    for (size_t i = 0; name && i < h->n; i++)
        if (h->cfg->models[i].name && strcmp(h->cfg->models[i].name, name) == 0)
            return &h->e[i];
    return NULL;
}

/* Attempts in flight report to the table they started with, so counts of work in
 * flight (and a probe's slot) stay behind; what was learnt comes along. */
void sl_route_health_inherit(struct sl_route_health *h, const struct sl_route_health *old)
{
    for (size_t i = 0; i < h->n; i++) {
        struct entry *to = &h->e[i];
        struct entry *from = (struct entry *)find_entry(old, h->cfg->models[i].name);
        if (!from)
            continue;
        struct sl_breaker_cfg keep = to->breaker.cfg;
        pthread_mutex_lock(&from->lock);
        to->breaker = from->breaker;
        to->limited_until_us = from->limited_until_us;
        to->latency = from->latency;
        pthread_mutex_unlock(&from->lock);
        to->breaker.cfg = keep;
        breaker_release_probe(&to->breaker);
    }
}

int sl_route_acquire(struct sl_route_health *h, size_t model, int stream, int64_t now_us)
{
    struct entry *e = &h->e[model];
    int result = -1;
    pthread_mutex_lock(&e->lock);
    if (e->limited_until_us <= now_us && breaker_allow(&e->breaker, stream, now_us, 1) >= 0) {
        e->in_flight++;
        result = 0;
    }
    pthread_mutex_unlock(&e->lock);
    return result;
}

enum effect { NEUTRAL, SUCCESS, FAILURE, LIMITED };

/* Only what says the deployment is unwell counts against it: a bad request from a
 * client (400, 413, 422) would fail anywhere, and a 429 is a quota, not an illness. */
static enum effect effect_of(const struct sl_route_outcome *o)
{
    switch (o->result) {
    case SL_OUTCOME_OK:
        return SUCCESS;
    case SL_OUTCOME_CANCELLED:
        return NEUTRAL;
    case SL_OUTCOME_HTTP:
        break;
    default:
        return FAILURE;
    }
    if (o->status == 429)
        return LIMITED;
    if (o->status >= 500 || o->status == 401 || o->status == 402 || o->status == 403 ||
        o->status == 404 || o->status == 408)
        return FAILURE;
    return o->status >= 200 && o->status < 300 ? SUCCESS : NEUTRAL;
}

static void apply_effect(struct entry *e, const struct sl_route_outcome *o, int64_t now_us)
{
    int64_t limit_ms = o->retry_after_ms >= 0 ? o->retry_after_ms : SL_ROUTE_LIMIT_DEFAULT_MS;
    switch (effect_of(o)) {
    case SUCCESS:
        if (o->ttft_us > 0)
            latency_add(&e->latency, o->ttft_us, now_us);
        breaker_record(&e->breaker, 0, o->stream, now_us);
        break;
    case FAILURE:
        breaker_record(&e->breaker, 1, o->stream, now_us);
        break;
    case LIMITED:
        if (limit_ms > SL_ROUTE_LIMIT_MAX_MS)
            limit_ms = SL_ROUTE_LIMIT_MAX_MS;
        if (now_us + limit_ms * 1000 > e->limited_until_us)
            e->limited_until_us = now_us + limit_ms * 1000;
        breaker_release_probe(&e->breaker);
        break;
    case NEUTRAL:
        breaker_release_probe(&e->breaker); /* proved nothing: let another request probe */
        break;
    }
}

void sl_route_observe(struct sl_route_health *h, size_t model,
                      const struct sl_route_outcome *o, int64_t now_us)
{
    struct entry *e = &h->e[model];
    pthread_mutex_lock(&e->lock);
    if (e->in_flight > 0)
        e->in_flight--;
    apply_effect(e, o, now_us);
    pthread_mutex_unlock(&e->lock);
}

void health_view(struct sl_route_health *h, size_t model, int stream, int64_t now_us,
                 struct health_view *out)
{
    struct entry *e = &h->e[model];
    pthread_mutex_lock(&e->lock);
    out->limited = e->limited_until_us > now_us;
    out->limited_until_us = e->limited_until_us;
    out->allow = breaker_allow(&e->breaker, stream, now_us, 0);
    out->cost = latency_cost(&e->latency, e->in_flight);
    pthread_mutex_unlock(&e->lock);
}

int64_t health_p95(struct sl_route_health *h, size_t model)
{
    struct entry *e = &h->e[model];
    pthread_mutex_lock(&e->lock);
    int64_t p95 = latency_p95(&e->latency);
    pthread_mutex_unlock(&e->lock);
    return p95;
}

void sl_route_health_state(struct sl_route_health *h, size_t model, int64_t now_us,
                           struct sl_route_state *out)
{
    struct entry *e = &h->e[model];
    pthread_mutex_lock(&e->lock);
    breaker_allow(&e->breaker, e->breaker.mode, now_us, 0); /* OPEN -> HALF_OPEN when due */
    out->breaker = e->breaker.state;
    out->open_until_us = e->breaker.open_until_us;
    out->limited_until_us = e->limited_until_us > now_us ? e->limited_until_us : 0;
    out->probe_stream = e->breaker.mode;
    out->probe_in_flight = e->breaker.probe_out;
    out->in_flight = e->in_flight;
    breaker_window(&e->breaker, now_us, &out->window_requests, &out->window_failures);
    out->consecutive_failures = (uint32_t)e->breaker.consecutive;
    out->ewma_ttft_us = e->latency.ewma_us;
    out->p95_ttft_us = latency_p95(&e->latency);
    pthread_mutex_unlock(&e->lock);
}
