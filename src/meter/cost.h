/* Money from tokens, in integers only: prices are micro-units per million tokens,
 * costs are micro-units (10^-6) of a currency, rounded once, half up. */
#ifndef SL_COST_H
#define SL_COST_H

#include <stddef.h>
#include <stdint.h>

#include "core/limits.h"

struct sl_catalog;
struct sl_model_cfg;
struct sl_usage_row;
struct sl_usage_group;

#define SL_MICROS 1000000 /* micro-units in one unit; also tokens in one "per million" */

/* A price per million tokens, each as micro-units (price x 10^6) of currency. */
struct sl_price {
    int64_t input;        /* an uncached prompt token */
    int64_t cached_input; /* a prompt token the provider served from its prompt cache */
    int64_t output;       /* a completion token (reasoning tokens are completion tokens) */
    char currency[4];     /* "USD" or "CNY" */
};

/* Parses a non-negative decimal with at most 6 digits after the point ("0.27",
 * "2", "0.003625") into micro-units, exactly. Returns 0, or -1 when malformed or
 * above max_micros. */
int sl_cost_parse_decimal(const char *s, int64_t max_micros, int64_t *micros);

/* Returns 0 for "USD" and "CNY" (the currencies the catalog holds), else -1. */
int sl_cost_check_currency(const char *s);

/* Cost in micro-units of to_currency of prompt tokens (cached of which came from
 * the prompt cache) and completion tokens (reasoning included) at price p.
 * usd_per_cny is the exchange rate in micro-units (0.14 -> 140000; > 0). Negative
 * counts count as 0, cached is capped at prompt, the result saturates at
 * INT64_MAX. One rounding, half up, after conversion. */
int64_t sl_cost_micros(const struct sl_price *p, int64_t prompt, int64_t cached,
                       int64_t completion, const char *to_currency, int64_t usd_per_cny);

/* Converts an amount of micro-units between USD and CNY (rounded half up). */
int64_t sl_cost_convert(int64_t micros, const char *from, const char *to, int64_t usd_per_cny);

/* Writes micros as a decimal with 6 places ("12.345678", "-0.000001") into out. */
void sl_cost_format(int64_t micros, char *out, size_t size);

/* The one call the request path makes, after the row's tokens are final: fills
 * row->cost_micros, row->currency and row->price_known. The price is m's
 * price_in/price_out (USD) when the config wrote both, cached tokens then at the
 * catalog's cached price for m->model when lower, else price_in; otherwise the
 * catalog's entry for m->model (and m's provider preset). Either c or m may be NULL
 * (m NULL: row->upstream_model, else row->model, is looked up). No price: cost 0,
 * price_known 0. Never fails; does no I/O and allocates nothing. */
void sl_cost_row(const struct sl_catalog *c, const struct sl_model_cfg *m,
                 struct sl_usage_row *row);

/* Prices the token sums of one report group on model (and provider, may be NULL)
 * from the catalog, in the catalog's reporting currency. Returns 0 and *micros, or
 * -1 when the catalog has no price for it. */
int sl_cost_reprice(const struct sl_catalog *c, const char *model, const char *provider,
                    const struct sl_usage_group *g, int64_t *micros);

/* ---- what-if: the same traffic on other models --------------------------------- */

#define SL_COST_MAX_MAP 64

struct sl_cost_map {
    struct {
        char from[SL_MAX_NAME + 1], to[SL_MAX_NAME + 1];
    } pair[SL_COST_MAX_MAP];
    size_t n;
};

/* Parses "a=b,c=d" (spaces around names allowed). Returns 0, or -1 with a static
 * reason in *why (empty side, a name listed twice, too long, too many pairs). */
int sl_cost_parse_map(const char *s, struct sl_cost_map *map, const char **why);

/* The model traffic on from is moved to by map, or NULL when it stays. */
const char *sl_cost_map_target(const struct sl_cost_map *map, const char *from);

/* ---- self-hosting: what the same months would cost on own GPUs ------------------ */

struct sl_selfhost {
    int64_t gpus;
    int64_t gpu_hourly;     /* micro-units per GPU-hour */
    int64_t power_kw;       /* micro-kW drawn by the whole deployment */
    int64_t kwh;            /* micro-units per kWh */
    int64_t people_monthly; /* micro-units per month (operations staff) */
};

/* Self-hosted cost of a month of days days, in micro-units: GPUs and power for
 * every hour of it, plus people. Saturates at INT64_MAX. */
int64_t sl_cost_selfhost_month(const struct sl_selfhost *s, int days);

/* Days in month "YYYY-MM" (Gregorian), or 0 when malformed. */
int sl_cost_days_in_month(const char *yyyy_mm);

#endif
