/* A request's plan across attempts: what the client asked, in which format, the
 * deployments to try (a model, or a group's candidates from src/route/), and the
 * attempts so far. Each path (fast, translated, pass-through) runs one attempt and
 * hands a failure that happened before anything reached the client back here, where
 * the routing policy retries it, moves it to the next deployment, or answers it. */
#ifndef SL_SERVER_PLAN_H
#define SL_SERVER_PLAN_H

#include <cjson/cJSON.h>

#include "formats/format.h"
#include "route/route.h"
#include "server/internal.h"

struct sl_plan {
    const struct sl_client_format *cf;
    cJSON *req;                   /* canonical (OpenAI-shaped) request, freed with the arena */
    const char *raw;              /* the client's body, for the same-format paths */
    size_t raw_len;
    int stream;
    const struct sl_group_cfg *group;  /* NULL: the client named a model */
    struct sl_route_plan route;   /* the candidates, best first */
    struct sl_route_attempts att;
    struct sl_route_step step;    /* the attempt in flight or waited for */
    const struct sl_model_cfg *current; /* the deployment of the attempt in flight */
    size_t current_index;         /* its index in cfg->models */
    int claimed;                  /* current holds a routing claim not yet observed */
    int64_t attempt_start_us;
    int attempts;                 /* attempts started */
    struct event *wait;           /* backoff before the next attempt */
    struct sl_error last;         /* why the last attempt failed */
    struct sl_usage spent;        /* tokens a failed attempt used anyway (an escalation) */
    char retry_after[32];
    int64_t limit_ms;             /* how long the provider said to wait (-1: it did not) */
};

/* A new plan in x's arena for a client of format cf. Takes ownership of req (freed
 * with the arena). NULL when out of memory (req freed). */
struct sl_plan *sl_plan_new(struct sl_exchange *x, const struct sl_client_format *cf, cJSON *req,
                            const char *raw, size_t raw_len);

/* Resolves the name the client asked for (a model or a group) into candidates.
 * Returns 0; -1 when the name is neither (nothing to try: answer 404). */
int sl_plan_resolve(struct sl_exchange *x, struct sl_plan *p, const char *name);

/* Budgets and rate limits for the plan's request (govern_gate.c): 0 to go on, else
 * it was answered 429. */
int sl_plan_admit(struct sl_exchange *x, struct sl_plan *p);

/* Starts the first attempt (or answers at once when no candidate can take it). */
void sl_plan_start(struct sl_exchange *x, struct sl_plan *p);

/* An attempt failed before any byte reached the client: records why (e is copied;
 * retry_after may be NULL) and goes on with the plan. */
void sl_plan_failed(struct sl_exchange *x, struct sl_plan *p, const struct sl_error *e,
                    const char *retry_after);

/* Records the waiting hints of a provider's error reply (Retry-After, retry-after-ms,
 * the x-ratelimit-reset-* headers) for the router, before sl_plan_failed. */
struct sl_upstream_meta;
void sl_plan_note_limits(struct sl_plan *p, const struct sl_upstream_meta *meta);

/* Escalation: true when completion (a whole canonical reply) asked for JSON by a tiers
 * group's request is not valid JSON and a higher tier is left to try. The path then
 * hands the attempt back with sl_plan_escalate. */
int sl_plan_escalates(const struct sl_plan *p, const cJSON *completion);
void sl_plan_escalate(struct sl_exchange *x, struct sl_plan *p, const struct sl_usage *spent);

/* The upstream timeouts of an attempt on m: the provider's, with the total cut to
 * what the plan allows. */
struct sl_timeouts sl_plan_timeouts(const struct sl_plan *p, const struct sl_model_cfg *m);

/* The paths. Each runs one attempt of p on deployment m. */
void sl_fast_start(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);
void sl_translate_attempt(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);
void sl_pass_start(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);

#endif
