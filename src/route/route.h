/* Routing: which deployments of a group a request tries, in what order, and what to do
 * after each attempt. Pure logic over explicit state: no I/O, no threads, no clock reads
 * (every function is given the time), so tests replay any scenario exactly. */
#ifndef SL_ROUTE_H
#define SL_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

/* ---- deployment health, shared by every worker ------------------------------------ */

/* One entry per cfg->models[i] ("deployment" = a model on a provider): its circuit
 * breaker, rate-limit mark, in-flight count and latency statistics. Every function
 * taking a health table may be called from any thread at once: each entry has its own
 * short mutex, held for a few field updates, never across a call out. */
struct sl_route_health;

/* Returns a table for cfg (which must outlive it), or NULL when out of memory. Each
 * deployment's breaker uses the breaker: settings of the first group that lists it, or
 * the defaults. Free with sl_route_health_free(). */
struct sl_route_health *sl_route_health_new(const struct sl_config *cfg);

/* On reload: copies the state of every deployment of old whose model name also exists
 * in h, so a reload neither closes an open breaker nor forgets latencies. Call before
 * h is published to workers; old (and its config) must still be alive. */
void sl_route_health_inherit(struct sl_route_health *h, const struct sl_route_health *old);

void sl_route_health_free(struct sl_route_health *h);

enum sl_route_breaker { SL_BREAKER_CLOSED, SL_BREAKER_OPEN, SL_BREAKER_HALF_OPEN };

/* A copy of one deployment's state, for /metrics and GET /admin/health. */
struct sl_route_state {
    enum sl_route_breaker breaker;
    int64_t open_until_us;    /* OPEN: when it turns half-open */
    int64_t limited_until_us; /* rate limited (429) until then; 0 = not limited */
    int probe_stream;         /* the mode a half-open probe must use (1 = streaming) */
    int probe_in_flight;
    int in_flight;
    uint32_t window_requests, window_failures, consecutive_failures;
    double ewma_ttft_us;      /* peak-EWMA of time to first byte; 0 before any sample */
    int64_t p95_ttft_us;      /* -1 until enough samples */
};

/* Fills *out for deployment model (an index into the config's models) at now_us. */
void sl_route_health_state(struct sl_route_health *h, size_t model, int64_t now_us,
                           struct sl_route_state *out);

/* Claims deployment model for one attempt in the given mode (stream 1 or 0). Returns 0
 * when it may be tried: it then counts as in flight until sl_route_observe(). Returns -1
 * when its breaker is open, it is rate limited, or it is half-open and its one probe is
 * taken or must use the other mode: move on to the next candidate (that costs no retry
 * budget: see sl_route_attempts_skip). */
int sl_route_acquire(struct sl_route_health *h, size_t model, int stream, int64_t now_us);

enum sl_route_result {
    SL_OUTCOME_OK,        /* a complete answer */
    SL_OUTCOME_CONNECT,   /* DNS, TCP, TLS: nothing was sent */
    SL_OUTCOME_TIMEOUT,   /* first byte or total deadline of the attempt passed */
    SL_OUTCOME_STALL,     /* a stream fell silent past its idle timeout */
    SL_OUTCOME_HTTP,      /* the provider answered with status (not 2xx) */
    SL_OUTCOME_CANCELLED, /* sluice gave up on it (client left, the hedge lost) */
};

struct sl_route_outcome {
    enum sl_route_result result;
    int status;             /* SL_OUTCOME_HTTP: the HTTP status */
    int stream;             /* the attempt's mode */
    int64_t ttft_us;        /* request sent -> first byte; 0 = unknown */
    int64_t retry_after_ms; /* from sl_route_limit_delay_ms() on a 429/503/529; -1 none */
};

/* Reports the end of an attempt claimed with sl_route_acquire() (exactly once per
 * claim; health probes may report without a claim). Failures (connect, timeout, stall,
 * 5xx, 529, 401/403/404, 408) feed the breaker; a 429 instead marks the deployment rate
 * limited for retry_after_ms (a default when -1); client errors (400, 409, 413, 422) and
 * cancellations count for nothing; an OK feeds the latency statistics and closes a
 * half-open breaker. */
void sl_route_observe(struct sl_route_health *h, size_t model,
                      const struct sl_route_outcome *o, int64_t now_us);

/* ---- planning: the ordered candidates for one request ----------------------------- */

/* What a request needs; the server fills it from the parsed body and headers. */
struct sl_route_request {
    int64_t prompt_tokens; /* sl_estimate_messages() of the body */
    int64_t max_tokens;    /* max_tokens / max_completion_tokens; 0 = not given */
    unsigned needs;        /* SL_CAP_TOOLS | SL_CAP_JSON | SL_CAP_IMAGES */
    int stream;
    const char *pin;       /* a member's model name from a header, or NULL */
    uint64_t seed;         /* random choices (weighted, latency) derive from it */
};

struct sl_route_candidate {
    uint32_t model; /* index into cfg->models */
    uint8_t probe;  /* 1: half-open, this attempt would be its probe */
    uint8_t tier;   /* tiers: the tier it was listed in; else 0 */
};

struct sl_route_plan {
    size_t n; /* 0: nothing can serve it now; the skipped_* counts say why */
    struct sl_route_candidate c[SL_MAX_GROUP_DEPLOYMENTS];
    int tier; /* tiers: the tier the request's size chose; -1 for other strategies */
    uint16_t skipped_context, skipped_capability, skipped_open, skipped_limited,
        skipped_disabled;
    int64_t limited_until_us; /* earliest end of a skipped rate limit; 0 none (Retry-After) */
};

#define SL_ROUTE_EPIN (-2) /* the pinned name is not a deployment of the group */

/* Fills *out with g's deployments that can take req at now_us, best first: skips those
 * of a disabled provider, those whose context_window cannot hold prompt_tokens +
 * max_tokens, those lacking a needed capability, open breakers, and rate-limited ones
 * (until their reset), then orders the rest by g's strategy. With req->pin, the plan is
 * that one deployment (same checks). Deterministic for a given seed and state. Returns
 * 0 (out->n may be 0), or SL_ROUTE_EPIN. Thread-safe; *out is the caller's (stack or
 * request arena, about 2 KiB). */
int sl_route_plan(const struct sl_config *cfg, const struct sl_group_cfg *g,
                  struct sl_route_health *h, const struct sl_route_request *req, int64_t now_us,
                  struct sl_route_plan *out);

/* The tier a prompt of that many estimated tokens falls in under g's tier_words
 * (tokens are counted as words at 3/4 of a word each). */
enum sl_tier sl_route_tier(const struct sl_group_cfg *g, int64_t prompt_tokens);

/* ---- retries: one budget and one deadline per request, across all hops ------------ */

enum sl_route_verdict {
    SL_VERDICT_DONE,      /* success: stop */
    SL_VERDICT_RETRY,     /* transient: the same deployment may be tried again */
    SL_VERDICT_FALL_OVER, /* never again on this deployment; another one may work */
    SL_VERDICT_FAIL,      /* the request itself is wrong: no deployment will take it */
};

/* connect, timeout, stall, 408, 409, 429, 5xx, 529 -> RETRY; 401, 402, 403, 404 and
 * cancelled -> FALL_OVER; 400, 413, 422 and other 4xx -> FAIL. */
enum sl_route_verdict sl_route_classify(const struct sl_route_outcome *o);

/* One request's attempts: the caller's (stack or arena), no resources to release. */
struct sl_route_attempts {
    int budget;          /* attempts allowed after the first (the group's retries) */
    int used;            /* of that budget */
    int attempts;        /* started, hedges included */
    int64_t deadline_us; /* the whole request */
    int attempt_ms;      /* one attempt; 0 = the provider's own total_timeout */
    size_t n;            /* candidates in the plan */
    size_t current;      /* the candidate of the last step */
    size_t next;         /* the first candidate not yet tried */
    int same;            /* retries spent on the current candidate */
    uint64_t rng;        /* backoff jitter */
};

enum sl_route_action { SL_ACTION_TRY, SL_ACTION_STOP };

struct sl_route_step {
    enum sl_route_action action;
    size_t candidate;   /* TRY: the plan position to try */
    int64_t delay_ms;   /* TRY: wait this long first (backoff or Retry-After) */
    int64_t timeout_ms; /* TRY: the attempt's limit: attempt_timeout capped by the deadline */
    const char *why;    /* static text for the ledger ("retry: 503", "fall over: 401", ...) */
};

/* Starts the attempts of a plan of ncandidates. client_timeout_ms (from a client's
 * timeout header; 0 = none) can only shorten g's timeout. */
void sl_route_attempts_init(struct sl_route_attempts *a, const struct sl_group_cfg *g,
                            size_t ncandidates, int64_t now_us, int64_t client_timeout_ms,
                            uint64_t seed);

/* The first attempt: candidate 0, or STOP when the plan is empty. */
void sl_route_attempts_first(struct sl_route_attempts *a, int64_t now_us,
                             struct sl_route_step *step);

/* After an attempt ended with o: the same deployment again after an exponential
 * backoff with full jitter (or Retry-After), the next candidate, or STOP (done, failed,
 * budget spent, deadline passed). Every TRY after the first uses one unit of budget, so
 * attempts never exceed retries + 1 however many hops there are. */
void sl_route_attempts_next(struct sl_route_attempts *a, const struct sl_route_outcome *o,
                            int64_t now_us, struct sl_route_step *step);

/* The step's candidate could not be claimed (sl_route_acquire failed): the next one
 * instead, without using budget; STOP when none is left. */
void sl_route_attempts_skip(struct sl_route_attempts *a, int64_t now_us,
                            struct sl_route_step *step);

/* Hedging: a parallel attempt on the next candidate while the current one runs. Uses
 * one unit of budget; returns 0 with a TRY step, or -1 when the budget, the deadline or
 * the candidates are spent. */
int sl_route_attempts_hedge(struct sl_route_attempts *a, int64_t now_us,
                            struct sl_route_step *step);

/* ---- provider hints ----------------------------------------------------------------- */

/* Retry-After: delta-seconds ("120") or an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT",
 * also the RFC 850 and asctime forms). Returns 0 with *delay_ms (0 for a date in the
 * past), or -1 when malformed. */
int sl_route_parse_retry_after(const char *s, int64_t now_wall_ms, int64_t *delay_ms);

/* A Go duration as OpenAI's x-ratelimit-reset-* headers send it ("1s", "6m0s", "120ms",
 * "1h2m3.5s", "250us"). Returns 0 with *ms rounded up, or -1 when malformed. */
int sl_route_parse_go_duration(const char *s, int64_t *ms);

/* Header values a provider sent with a 429 (NULL when absent). */
struct sl_route_limit_hints {
    const char *retry_after;    /* Retry-After */
    const char *retry_after_ms; /* retry-after-ms (OpenAI, Azure) */
    const char *reset_requests; /* x-ratelimit-reset-requests */
    const char *reset_tokens;   /* x-ratelimit-reset-tokens */
};

/* How long the deployment is rate limited: retry-after-ms, else Retry-After, else the
 * longer of the reset headers, else a default of SL_ROUTE_LIMIT_DEFAULT_MS; capped at
 * SL_ROUTE_LIMIT_MAX_MS so one bad header cannot bench a deployment for hours. */
#define SL_ROUTE_LIMIT_DEFAULT_MS 1000
#define SL_ROUTE_LIMIT_MAX_MS     (10 * 60 * 1000)
int64_t sl_route_limit_delay_ms(const struct sl_route_limit_hints *hints, int64_t now_wall_ms);

/* ---- hedging ------------------------------------------------------------------------ */

/* How long to wait for model's first byte before starting the next candidate: g's
 * fixed hedge.after, or model's observed p95 time to first token. Returns -1 when g does
 * not hedge, or hedges on p95 and model has too few observations yet. */
int64_t sl_route_hedge_delay_ms(struct sl_route_health *h, const struct sl_group_cfg *g,
                                size_t model);

#endif
