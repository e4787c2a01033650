/* A request's plan across attempts: what the client asked, in which format, and the
 * deployments to try in order. Each path (fast, translated, pass-through) runs one
 * attempt and hands a failure that happened before anything reached the client back
 * here, where it is retried, moved to the next deployment, or answered. */
#ifndef SL_SERVER_PLAN_H
#define SL_SERVER_PLAN_H

#include <cjson/cJSON.h>

#include "formats/format.h"
#include "server/internal.h"

#define SL_MAX_CANDIDATES 16

struct sl_plan {
    const struct sl_client_format *cf;
    cJSON *req;                   /* canonical (OpenAI-shaped) request, freed with the arena */
    const char *raw;              /* the client's body, for the same-format paths */
    size_t raw_len;
    int stream;
    const struct sl_model_cfg *cand[SL_MAX_CANDIDATES];
    int ncand, next;              /* the candidates, and the index of the next to try */
    const struct sl_model_cfg *current; /* the deployment of the attempt in flight */
    int attempts;                 /* attempts started */
    struct sl_error last;         /* why the last attempt failed */
    char retry_after[32];
};

/* A new plan in x's arena for a client of format cf. Takes ownership of req (freed
 * with the arena). NULL when out of memory (req freed). */
struct sl_plan *sl_plan_new(struct sl_exchange *x, const struct sl_client_format *cf, cJSON *req,
                            const char *raw, size_t raw_len);

/* Appends the deployments a client's model name stands for. Returns 0, or -1 when the
 * name is neither a model nor a group (nothing appended). */
int sl_plan_resolve(struct sl_exchange *x, struct sl_plan *p, const char *name);

/* Starts the next attempt on the path its deployment needs; replies p->last when no
 * candidate is left. */
void sl_plan_next(struct sl_exchange *x, struct sl_plan *p);

/* An attempt failed before any byte reached the client: records why (e is copied;
 * retry_after may be NULL) and goes on with the plan. */
void sl_plan_failed(struct sl_exchange *x, struct sl_plan *p, const struct sl_error *e,
                    const char *retry_after);

/* The paths. Each runs one attempt of p on deployment m. */
void sl_fast_start(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);
void sl_translate_attempt(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);
void sl_pass_start(struct sl_exchange *x, struct sl_plan *p, const struct sl_model_cfg *m);

#endif
