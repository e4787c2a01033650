/* The usage ledger: one row per request, written by one writer thread with group
 * commit, so recording never blocks a response. */
#ifndef SL_LEDGER_H
#define SL_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

struct sl_usage_row {
    char id[64];                    /* the request id (x-request-id) */
    int64_t ts_ms;                  /* wall clock when the request arrived */
    char key[SL_MAX_NAME];          /* virtual key name, "" = anonymous */
    char model[SL_MAX_NAME];        /* what the client asked for */
    char provider[SL_MAX_NAME];     /* "" when no provider was reached */
    char upstream_model[SL_MAX_NAME];
    int64_t prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
    int estimated;                  /* 1: tokens estimated by sluice, not reported by the provider */
    int status;                     /* HTTP status the client got */
    int stream;                     /* 1: streamed reply */
    int client_gone;                /* 1: the client disconnected before the end */
    int64_t latency_us;             /* request arrival -> last byte sent */
    int64_t ttft_us;                /* request arrival -> first content byte sent; -1 = none */
    char error[256];                /* short error text, "" when none */
    char request_id[64];            /* the client request this row belongs to */
    int attempt;                    /* 1-based attempt number within the request */
    int final;                      /* 1: the request's own row (one per request);
                                       0: an attempt that failed and was retried or moved on */
    char why[64];                   /* attempt rows: what the router did next and why */
    int64_t cost_micros;            /* cost in micro-units (10^-6) of currency (sl_cost_row) */
    char currency[4];               /* "USD" or "CNY"; "" = not priced yet */
    int price_known;                /* 0: no price for the model; cost_micros is then 0 */
    char tags[512];                 /* JSON array of "name=value" strings; "" = none */
    char mirror_of[64];             /* a mirrored copy: the request id it copies; "" = none */
    char answer_hash[17];           /* 16 hex digits of the answer text's hash (requests
                                       that were mirrored, and their mirrors); "" = none */
    char cache[8];                  /* "hit" | "stale": answered from the cache; "" = not */
    int64_t saved_micros;           /* a cached answer: what it cost when it was made */
};

struct sl_ledger;

/* Opens the store ("sqlite://PATH"), creates or migrates the schema, and starts
 * the writer thread. Returns 0 and *out, or -1 with a message in err. */
int sl_ledger_open(const char *store_url, struct sl_ledger **out, char *err, size_t errlen);

/* Queues a copy of row. Safe from any thread; does no I/O. */
void sl_ledger_record(struct sl_ledger *l, const struct sl_usage_row *row);

/* Blocks until every row queued so far is committed. */
void sl_ledger_flush(struct sl_ledger *l);

/* Flushes, stops the writer thread and closes the store. NULL is allowed. */
void sl_ledger_close(struct sl_ledger *l);

/* Keeps raw rows for days days (0 = forever): after a write, at most hourly, the
 * writer deletes the rows of older whole days; their daily roll-ups stay. */
void sl_ledger_set_retention(struct sl_ledger *l, int days);

/* Rows committed since open (for tests and /metrics). */
uint64_t sl_ledger_committed(const struct sl_ledger *l);

/* Transactions committed since open; far fewer than rows under load (group commit). */
uint64_t sl_ledger_transactions(const struct sl_ledger *l);

/* Rows given up on since open (out of memory, or a store still failing at close);
 * each loss is also logged as an error. */
uint64_t sl_ledger_dropped(const struct sl_ledger *l);

#endif
