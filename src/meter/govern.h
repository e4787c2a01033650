/* Budgets and rate limits that hold across worker threads: one counter table shared
 * by every worker, where a request reserves what it may cost before it is sent and
 * settles on what it really cost when it ends. The table is in this process's memory
 * (govern.c), or in a Redis shared by every replica (govern_redis.c: one script per
 * admit and per settle), chosen by sl_govern_use_redis. */
#ifndef SL_GOVERN_H
#define SL_GOVERN_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

struct sl_store;

/* ---- budgets: "100usd/month" ----------------------------------------------------- */

enum sl_budget_window { SL_WINDOW_TOTAL, SL_WINDOW_DAY, SL_WINDOW_MONTH };

struct sl_budget {
    int64_t limit_micros;         /* 0 = no budget */
    char currency[4];             /* "USD" or "CNY" */
    enum sl_budget_window window;
};

/* Parses "AMOUNT usd|cny [/day|/month|/total]" (case-insensitive; no window = total),
 * the amount a decimal with at most 6 places above 0. Returns 0, or -1 when malformed. */
int sl_budget_parse(const char *s, struct sl_budget *out);

/* The start (Unix ms, UTC) of the window holding now_ms: the day, the month, or 0. */
int64_t sl_budget_window_start(enum sl_budget_window w, int64_t now_ms);

/* ---- what applies to a request ----------------------------------------------------- */

#define SL_GOV_NAME       (SL_MAX_NAME + 16) /* "key:", "tag:", "model:", "group:" + a name */
#define SL_GOV_MAX_SCOPES 20                 /* the key, its tags, the model or group */

/* One thing limits are counted for ("key:team-a", "tag:team=search", "model:gpt-4o"),
 * with the limits that apply to it now (0 = none of that kind). */
struct sl_gov_scope {
    char name[SL_GOV_NAME];
    int64_t rpm, tpm, concurrency;
    struct sl_budget budget;
};

/* What a request asks for at admission: its estimated tokens (prompt estimate plus the
 * most it may write) and the most it may cost, in currency. */
struct sl_gov_ask {
    int64_t now_ms;
    int64_t tokens;       /* pre-charged on tpm */
    int64_t cost_micros;  /* reserved on budgets */
    char currency[4];
    int64_t usd_per_cny;  /* micro-units, for budgets in the other currency */
};

/* What a request really used, at its end. */
struct sl_gov_spend {
    int64_t now_ms;
    int64_t tokens;       /* prompt + completion, as billed */
    int64_t cost_micros;
    char currency[4];
    int64_t usd_per_cny;
};

/* What a request holds between admit and settle; lives in the request (its arena). */
struct sl_gov_hold {
    void *entry;
    int64_t reserved;     /* budget micro-units, in the entry's budget currency */
    int64_t window_start; /* of the budget window the reservation was made in */
    int64_t tokens, token_sec; /* pre-charged tokens and the second they were charged in */
    int counted;          /* holds one of the scope's concurrent slots */
    int budgeted;         /* reserved on the scope's budget */
    /* Redis backend: the scope and the budget window its keys are named by */
    char name[SL_GOV_NAME];
    int64_t limit_micros; /* of the budget, for its soft threshold */
    enum sl_budget_window window;
    char currency[4];
};

/* OpenAI's x-ratelimit-* figures for the tightest request and token limit that applied. */
struct sl_gov_headers {
    int64_t limit_requests, remaining_requests, reset_requests_ms; /* limit 0 = none */
    int64_t limit_tokens, remaining_tokens, reset_tokens_ms;
};

struct sl_gov_ticket {
    size_t n;
    struct sl_gov_hold h[SL_GOV_MAX_SCOPES];
    struct sl_gov_headers hdr;
    int active;           /* admitted and not settled yet */
    char id[40];          /* Redis backend: this admission's lease, unique across replicas */
};

/* SL_GOV_UNAVAILABLE: the shared counter store did not answer and on_error is deny. */
enum sl_gov_reason { SL_GOV_OK, SL_GOV_BUDGET, SL_GOV_RPM, SL_GOV_TPM, SL_GOV_CONCURRENCY,
                     SL_GOV_UNAVAILABLE };

struct sl_gov_refusal {
    enum sl_gov_reason reason;
    char scope[SL_GOV_NAME];
    int64_t limit, used;    /* budget: micro-units of currency; else requests or tokens */
    char currency[4];
    int64_t retry_after_ms; /* 0 when waiting will not help (a budget until its window ends) */
};

/* ---- the table --------------------------------------------------------------------- */

struct sl_govern;

/* A new, empty counter table; soft_percent (1..100, 0 = off) is where a budget's
 * one warning per window fires. NULL when out of memory. */
struct sl_govern *sl_govern_new(int soft_percent);
void sl_govern_free(struct sl_govern *g); /* NULL is allowed */

/* Moves the counters to the Redis at url ("redis://HOST[:PORT][/DB]"), shared with
 * every replica using it; allow_on_error lets requests through uncounted when Redis
 * does not answer (else they are refused with SL_GOV_UNAVAILABLE); lease_ms is how
 * long an admission's slot and reservation live in Redis if its replica never settles
 * it. Call before the workers start. Returns 0, or -1 with a message in err. */
int sl_govern_use_redis(struct sl_govern *g, const char *url, int allow_on_error,
                        int64_t lease_ms, char *err, size_t errlen);

/* Changes the soft threshold (a config reload); windows already past it stay fired. */
void sl_govern_set_soft(struct sl_govern *g, int soft_percent);

/* Loads the spend of each key and tag in its current day, month and total from the
 * store's ledger (rows already written), so budgets survive a restart. Call before
 * the workers start. Returns 0, or -1 with a message in err. */
int sl_govern_load(struct sl_govern *g, struct sl_store *s, int64_t now_ms, char *err,
                   size_t errlen);

/* Admits a request under every scope at once, or none: concurrency, rpm, tpm and
 * budgets are checked and then charged under one lock, so concurrent admissions cannot
 * together pass a limit. On SL_GOV_OK t holds what was charged (settle it exactly
 * once); else r says which limit refused and t holds nothing. Both fill t->hdr. */
enum sl_gov_reason sl_govern_admit(struct sl_govern *g, const struct sl_gov_scope *scopes,
                                   size_t n, const struct sl_gov_ask *ask,
                                   struct sl_gov_ticket *t, struct sl_gov_refusal *r);

/* Ends what admit charged: frees the concurrent slots, corrects the pre-charged tokens
 * by the real ones, and replaces each budget reservation by the real cost (a failed
 * request costs what it was billed, often 0: its reservation is released). A ticket
 * not active is ignored. */
void sl_govern_settle(struct sl_govern *g, struct sl_gov_ticket *t, const struct sl_gov_spend *s);

/* Appends Prometheus lines: per budget scope its limit, spend and reservations in
 * micro-units, and soft-threshold crossings; refusals by reason. */
struct sl_buf;
void sl_govern_metrics(struct sl_govern *g, struct sl_buf *out);

/* Spend and reservations of a scope's current budget window (for tests); -1 if unknown. */
int sl_govern_budget_state(struct sl_govern *g, const char *scope, int64_t *spent,
                           int64_t *reserved);

#endif
