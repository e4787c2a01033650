/* The price catalog: what each upstream model costs and can do, loaded from
 * catalog/prices.yaml (format in its header and docs/cost.md), with the config's
 * pricing: overrides and exchange rate applied. Immutable once built. */
#ifndef SL_CATALOG_H
#define SL_CATALOG_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"
#include "meter/cost.h"

struct sl_config;
struct sl_price_override;

/* What a catalog entry says a model supports (capabilities:). */
enum {
    SL_CATALOG_TOOLS = 1,
    SL_CATALOG_JSON = 2,
    SL_CATALOG_IMAGES = 4,
    SL_CATALOG_REASONING = 8,
    SL_CATALOG_EMBEDDINGS = 16,
    SL_CATALOG_RERANK = 32,
};

struct sl_catalog_entry {
    char model[SL_MAX_NAME + 1];    /* the upstream model name, as sent to the provider */
    char provider[32];              /* a provider preset name (src/providers/) */
    struct sl_price price;
    int64_t context_window;         /* tokens; 0 = unknown */
    int64_t max_output;             /* tokens; 0 = unknown */
    unsigned capabilities;          /* SL_CATALOG_* */
    char source[SL_MAX_URL];        /* the vendor page the price was read from */
    char date[11];                  /* YYYY-MM-DD it was read */
    int line;                       /* in the file; 0 for a config override */
};

struct sl_catalog {
    struct sl_catalog_entry *entries;
    size_t n;
    char currency[4];    /* the reporting currency costs are computed in */
    int64_t usd_per_cny; /* micro-units: 0.14 -> 140000 */
};

/* Loads a catalog file. Returns a new catalog (free with sl_catalog_free; USD,
 * 0.14 USD per CNY until sl_catalog_configure), or NULL after appending one line
 * per problem, "FILE:LINE: message\n", to errors (every problem, not the first). */
struct sl_catalog *sl_catalog_load(const char *path, struct sl_buf *errors);

/* Same, from a string; name is used in error lines. */
struct sl_catalog *sl_catalog_parse(const char *yaml, size_t len, const char *name,
                                    struct sl_buf *errors);

/* The catalog a config asks for: pricing.catalog loaded (a missing file is an error
 * only when the path was written; the default path missing gives an empty catalog),
 * pricing.overrides applied, pricing.currency and usd_per_cny set. NULL on error,
 * with lines appended to errors as sl_catalog_load does. */
struct sl_catalog *sl_catalog_from_config(const struct sl_config *cfg, struct sl_buf *errors);

/* Sets the reporting currency ("USD" or "CNY") and the exchange rate (> 0). */
void sl_catalog_configure(struct sl_catalog *c, const char *currency, int64_t usd_per_cny);

/* Replaces the price of the entries o names (model, and provider when o has one),
 * or adds an entry when none matches. Returns 0, or -1 when out of memory. */
int sl_catalog_override(struct sl_catalog *c, const struct sl_price_override *o);

/* The entry for an upstream model name: the one with provider (a preset name) when
 * given and present, else the first listed for the model. NULL when unknown. The
 * pointer lives as long as c (and until the next sl_catalog_override). */
const struct sl_catalog_entry *sl_catalog_find(const struct sl_catalog *c, const char *model,
                                               const char *provider);

/* NULL is allowed. */
void sl_catalog_free(struct sl_catalog *c);

#endif
