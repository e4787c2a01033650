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
#include "meter/usage.h"
#include "server/internal.h"

/* How a path stops one of its attempts at once (its upstream call cancelled, no
 * callback after) and says what it used so far: the tokens the provider reported,
 * else estimates (*estimated = 1). */
typedef void (*sl_attempt_stop_cb)(void *path, struct sl_usage *spent, int *estimated);

/* A second attempt racing the first (hedging, src/server/hedge.c). path NULL: none. */
struct sl_attempt {
    void *path;                   /* the path's state of this attempt */
    sl_attempt_stop_cb stop;
    sl_gone_cb on_gone;           /* the path's reaction to the client leaving */
    const struct sl_model_cfg *m;
    size_t index;                 /* in cfg->models */
    int number;                   /* its attempt number (the ledger's) */
    int claimed;                  /* holds a routing claim not yet observed */
    int first_byte;               /* the upstream began to answer */
    int64_t start_us;
};

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
    int number;                   /* the attempt number of current */
    /* Hedging: the attempt in flight as a path registered it, and the one racing it. */
    void *path;                   /* NULL: the current path cannot race */
    sl_attempt_stop_cb stop;
    int first_byte;               /* current's upstream began to answer */
    struct sl_attempt hedge;
    struct event *hedge_timer;    /* fires when current is slow to its first byte */
    int starting_hedge;           /* a path started now is the hedge */
    int mirrored;                 /* copies go to the group's mirror: (hash the answer) */
    struct sl_cached *cached;     /* the request's cache lookup (server/cached.c); NULL = none */
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

/* A ledger row for one attempt that did not answer the client (failed, or lost a
 * hedge): status 0 for a cancelled one. */
void sl_plan_record(struct sl_exchange *x, const struct sl_plan *p, const struct sl_model_cfg *m,
                    int number, int64_t start_us, int status, const char *error, const char *why,
                    const struct sl_usage *spent, int estimated);

/* Mirrored requests: extends *h with the text of choices[0] of obj (a chunk's
 * delta.content or a completion's message.content) and adds its length to *n. */
void sl_plan_hash_answer(const cJSON *obj, uint64_t *h, size_t *n);

/* Writes the answer hash (h over n bytes; none when n is 0) on x's row when p was
 * mirrored, for `sluice compare`. */
void sl_plan_answer_hash(struct sl_exchange *x, const struct sl_plan *p, uint64_t h, size_t n);

/* ---- hedging (src/server/hedge.c): every path registers its attempts here ---- */

/* A path started its upstream call for the attempt being begun. For the request's
 * current attempt it becomes x->state with on_gone, and a hedge timer is armed when the
 * group hedges; for a hedge it becomes p->hedge. */
void sl_plan_attempt_begun(struct sl_exchange *x, struct sl_plan *p, void *path,
                           sl_attempt_stop_cb stop, sl_gone_cb on_gone);

/* path's upstream began to answer (a whole reply's or an error's headers, a stream's
 * first event other than a keep-alive comment): no hedge is started for it. */
void sl_plan_first_byte(struct sl_plan *p, void *path);

/* path is about to send its first byte to the client: it wins, the other attempt (if
 * any) is stopped at once, recorded and reported to the router as cancelled. */
void sl_plan_commit(struct sl_exchange *x, struct sl_plan *p, void *path);

/* sl_plan_failed for a racing path: when the other attempt is still running, the
 * failure is only recorded and that one goes on alone. */
void sl_plan_attempt_failed(struct sl_exchange *x, struct sl_plan *p, void *path,
                            const struct sl_error *e, const char *retry_after);

/* Stops a hedge still running (the exchange ends, or the plan moves on): recorded and
 * reported as cancelled. Disarms the timer. */
void sl_plan_drop_hedge(struct sl_exchange *x, struct sl_plan *p);

/* Runs one attempt of p on m on the path it needs: fast (OpenAI client and wire),
 * pass-through (Anthropic client and wire) or translated (any other pair). */
void sl_plan_run_path(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);

/* The paths. Each runs one attempt of p on deployment m. */
void sl_fast_start(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);
void sl_translate_attempt(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);
void sl_pass_start(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);

#endif
