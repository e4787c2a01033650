/* The retry policy: what an outcome means (retry here, go elsewhere, give up), and one
 * budget and one deadline for the whole request, so retries never multiply across
 * fallback hops the way per-hop retry counts do. */
#include "route/internal.h"

#define BACKOFF_BASE_MS 100   /* first retry waits up to this */
#define BACKOFF_CAP_MS  10000 /* no single wait grows beyond it */
#define SAME_MAX        1     /* retries on one deployment while others remain */

enum sl_route_verdict sl_route_classify(const struct sl_route_outcome *o)
{
    switch (o->result) {
    case SL_OUTCOME_OK:
        return SL_VERDICT_DONE;
    case SL_OUTCOME_CANCELLED:
        return SL_VERDICT_FALL_OVER;
    case SL_OUTCOME_HTTP:
        break;
    default:
        return SL_VERDICT_RETRY; /* connect, timeout, stall: transient until shown otherwise */
    }
    int s = o->status;
    if (s >= 200 && s < 300)
        return SL_VERDICT_DONE;
    if (s == 408 || s == 409 || s == 429 || s >= 500)
        return SL_VERDICT_RETRY;
    /* Credentials, billing or a model missing at this provider: another may serve it. */
    if (s == 401 || s == 402 || s == 403 || s == 404)
        return SL_VERDICT_FALL_OVER;
    return SL_VERDICT_FAIL; /* 400, 413, 422...: the request would fail anywhere */
}

void sl_route_attempts_init(struct sl_route_attempts *a, const struct sl_group_cfg *g,
                            size_t ncandidates, int64_t now_us, int64_t client_timeout_ms,
                            uint64_t seed)
{
    int64_t timeout_ms = g->timeout_ms;
    if (client_timeout_ms > 0 && client_timeout_ms < timeout_ms)
        timeout_ms = client_timeout_ms;
    *a = (struct sl_route_attempts){
        .budget = g->retries,
        .deadline_us = now_us + timeout_ms * 1000,
        .attempt_ms = g->attempt_timeout_ms,
        .n = ncandidates,
        .rng = seed ^ UINT64_C(0x5bd1e9955bd1e995), /* not the planner's stream */
    };
}

static int64_t remaining_ms(const struct sl_route_attempts *a, int64_t now_us)
{
    return (a->deadline_us - now_us) / 1000;
}

static void stop(struct sl_route_step *step, const char *why)
{
    *step = (struct sl_route_step){.action = SL_ACTION_STOP, .why = why};
}

static void try_at(struct sl_route_attempts *a, int64_t now_us, size_t candidate,
                   int64_t delay_ms, const char *why, struct sl_route_step *step)
{
    int64_t left = remaining_ms(a, now_us) - delay_ms;
    int64_t timeout = a->attempt_ms > 0 && a->attempt_ms < left ? a->attempt_ms : left;
    a->current = candidate;
    *step = (struct sl_route_step){SL_ACTION_TRY, candidate, delay_ms, timeout, why};
}

void sl_route_attempts_first(struct sl_route_attempts *a, int64_t now_us,
                             struct sl_route_step *step)
{
    if (a->n == 0)
        return stop(step, "no deployment can take the request");
    if (remaining_ms(a, now_us) <= 0)
        return stop(step, "deadline passed");
    a->next = 1;
    a->attempts = 1;
    a->same = 0;
    try_at(a, now_us, 0, 0, "first attempt", step);
}

/* Full jitter (a uniform wait up to the exponential bound) spreads the retries of many
 * requests that failed together, instead of moving the spike a little later. */
static int64_t backoff_ms(struct sl_route_attempts *a)
{
    int64_t bound = BACKOFF_BASE_MS;
    for (int i = 0; i < a->used && bound < BACKOFF_CAP_MS; i++)
        bound *= 2;
    if (bound > BACKOFF_CAP_MS)
        bound = BACKOFF_CAP_MS;
    return (int64_t)route_below(&a->rng, (uint64_t)bound + 1);
}

static void go_next(struct sl_route_attempts *a, int64_t now_us, const char *why,
                    struct sl_route_step *step)
{
    a->used++;
    a->attempts++;
    a->same = 0;
    try_at(a, now_us, a->next++, 0, why, step);
}

/* A 429 waits at least as long as the deployment stays marked rate limited, or the
 * retry could not claim it. */
static int64_t retry_delay_ms(struct sl_route_attempts *a, const struct sl_route_outcome *o)
{
    int is429 = o->result == SL_OUTCOME_HTTP && o->status == 429;
    int64_t delay = o->retry_after_ms >= 0 ? o->retry_after_ms : backoff_ms(a);
    if (is429 && o->retry_after_ms < 0 && delay < SL_ROUTE_LIMIT_DEFAULT_MS)
        delay = SL_ROUTE_LIMIT_DEFAULT_MS;
    return delay;
}

static void after_retryable(struct sl_route_attempts *a, const struct sl_route_outcome *o,
                            int64_t now_us, struct sl_route_step *step)
{
    int others = a->next < a->n;
    int is429 = o->result == SL_OUTCOME_HTTP && o->status == 429;
    if (others && (is429 || a->same >= SAME_MAX))
        return go_next(a, now_us, is429 ? "fall over: rate limited" : "fall over: retried here",
                       step);
    int64_t delay = retry_delay_ms(a, o);
    if (delay >= remaining_ms(a, now_us))
        return others ? go_next(a, now_us, "fall over: the wait would pass the deadline", step)
                      : stop(step, "retry would pass the deadline");
    a->used++;
    a->attempts++;
    a->same++;
    try_at(a, now_us, a->current, delay, "retry the same deployment", step);
}

void sl_route_attempts_next(struct sl_route_attempts *a, const struct sl_route_outcome *o,
                            int64_t now_us, struct sl_route_step *step)
{
    enum sl_route_verdict v = sl_route_classify(o);
    if (v == SL_VERDICT_DONE)
        return stop(step, "done");
    if (v == SL_VERDICT_FAIL)
        return stop(step, "failed: the provider refused the request itself");
    if (remaining_ms(a, now_us) <= 0)
        return stop(step, "deadline passed");
    if (a->used >= a->budget)
        return stop(step, "retry budget spent");
    if (v == SL_VERDICT_FALL_OVER)
        return a->next < a->n ? go_next(a, now_us, "fall over: not for this deployment", step)
                              : stop(step, "no other deployment left");
    after_retryable(a, o, now_us, step);
}

/* The budget unit (if any) that the skipped step took passes to its replacement. */
void sl_route_attempts_skip(struct sl_route_attempts *a, int64_t now_us,
                            struct sl_route_step *step)
{
    if (a->next >= a->n)
        return stop(step, "no deployment available");
    if (remaining_ms(a, now_us) <= 0)
        return stop(step, "deadline passed");
    a->same = 0;
    try_at(a, now_us, a->next++, 0, "skipped an unavailable deployment", step);
}

int sl_route_attempts_hedge(struct sl_route_attempts *a, int64_t now_us,
                            struct sl_route_step *step)
{
    if (a->used >= a->budget || a->next >= a->n || remaining_ms(a, now_us) <= 0)
        return -1;
    go_next(a, now_us, "hedge: no first byte yet", step);
    return 0;
}
