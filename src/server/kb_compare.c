/* The two-stage saving: the same question answered by the strong model alone.
 *  - stage 2 "embed" (a strong embedding model): alone, it would embed every chunk at
 *    ingest and each question; the two stages embed every chunk with the cheap model and,
 *    with the strong one, each question and only the candidates it has not seen before.
 *  - stage 2 "model" (a rerank model): alone, it would score every chunk for each
 *    question (a rerank call has no index: chunks x question tokens + every chunk's
 *    tokens); the two stages embed the chunks cheaply once and rerank 50 candidates. */
#include "server/kb_compare.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/json.h"
#include "kb/store.h"
#include "meter/cost.h"
#include "meter/estimate.h"
#include "meter/ledger.h"

static int64_t at_price(int64_t tokens, int64_t per_million)
{
    if (per_million < 0)
        return -1;
    return (tokens * per_million + SL_MICROS / 2) / SL_MICROS;
}

static int64_t sum(int64_t a, int64_t b)
{
    return a < 0 || b < 0 ? -1 : a + b;
}

void sl_kb_compare_costs(enum sl_kb_rerank mode, int64_t chunks, int64_t chunk_tokens,
                         int64_t question_tokens, int64_t cheap_price, int64_t strong_price,
                         int64_t recall_cost, int64_t rerank_cost, struct sl_kb_compare *out)
{
    out->chunks = chunks;
    out->chunk_tokens = chunk_tokens;
    out->question_tokens = question_tokens;
    out->two_stage_query = sum(recall_cost, rerank_cost);
    out->two_stage_ingest = at_price(chunk_tokens, cheap_price);
    if (mode == SL_KB_RERANK_EMBED) {
        out->strong_query = at_price(question_tokens, strong_price);
        out->strong_ingest = at_price(chunk_tokens, strong_price);
    } else {
        out->strong_query = at_price(chunks * question_tokens + chunk_tokens, strong_price);
        out->strong_ingest = strong_price < 0 ? -1 : 0;
    }
}

/* The price per million input tokens of model in the catalog's currency, or -1. */
static int64_t price_of(const struct sl_config *cfg, const struct sl_catalog *catalog,
                        const char *model, char *currency, size_t cap)
{
    const struct sl_model_cfg *m = sl_config_find_model(cfg, model);
    struct sl_usage_row row = {.prompt_tokens = SL_MICROS};
    if (!m)
        return -1;
    sl_cost_row(catalog, m, &row);
    if (row.price_known)
        snprintf(currency, cap, "%s", row.currency);
    return row.price_known ? row.cost_micros : -1;
}

/* The chunk count and token sum of a knowledge base, kept per revision: reading them
 * reads every chunk row. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    int64_t kb, rev, created, chunks, tokens;
} seen[8];
static unsigned next_slot;

static int chunk_tokens(sqlite3 *db, const struct sl_kb *kb, int64_t *chunks, int64_t *tokens,
                        char *err, size_t errlen)
{
    pthread_mutex_lock(&lock);
    for (int i = 0; i < 8; i++)
        if (seen[i].kb == kb->id && seen[i].rev == kb->rev && seen[i].created == kb->created_ms &&
            seen[i].kb) {
            *chunks = seen[i].chunks;
            *tokens = seen[i].tokens;
            pthread_mutex_unlock(&lock);
            return 0;
        }
    pthread_mutex_unlock(&lock);
    if (sl_kbs_chunk_tokens(db, kb->id, chunks, tokens, err, errlen))
        return -1;
    pthread_mutex_lock(&lock);
    unsigned i = next_slot++ % 8;
    seen[i].kb = kb->id;
    seen[i].rev = kb->rev;
    seen[i].created = kb->created_ms;
    seen[i].chunks = *chunks;
    seen[i].tokens = *tokens;
    pthread_mutex_unlock(&lock);
    return 0;
}

static void put_cost(struct sl_buf *out, const char *key, int64_t micros, int first)
{
    char s[32];
    sl_cost_format(micros, s, sizeof(s));
    if (micros < 0)
        sl_buf_printf(out, "%s\"%s\":null", first ? "" : ",", key);
    else
        sl_buf_printf(out, "%s\"%s\":\"%s\"", first ? "" : ",", key, s);
}

int sl_kb_compare_json(struct sl_buf *out, const struct sl_config *cfg,
                       const struct sl_catalog *catalog, sqlite3 *db, const struct sl_kb *kb,
                       const char *q, int64_t recall_tokens, int64_t rerank_tokens, int reranked,
                       char *err, size_t errlen)
{
    int64_t chunks, tokens;
    if (kb->rerank == SL_KB_RERANK_NONE)
        return 0;
    if (chunk_tokens(db, kb, &chunks, &tokens, err, errlen))
        return -1;
    char currency[8] = "";
    int64_t cheap = price_of(cfg, catalog, kb->embed_model, currency, sizeof(currency)),
            strong = price_of(cfg, catalog, kb->rerank_model, currency, sizeof(currency));
    int64_t qt = recall_tokens > 0 ? recall_tokens : sl_estimate_text(q, strlen(q));
    struct sl_kb_compare c;
    sl_kb_compare_costs(kb->rerank, chunks, tokens, qt, cheap, strong, at_price(recall_tokens, cheap),
                        reranked ? at_price(rerank_tokens, strong) : 0, &c);
    sl_buf_printf(out, ",\"compare\":{\"mode\":\"%s\",\"strong_model\":",
                  kb->rerank == SL_KB_RERANK_EMBED ? "embed" : "model");
    sl_json_quote(out, kb->rerank_model, strlen(kb->rerank_model));
    sl_buf_printf(out, ",\"chunks\":%lld,\"chunk_tokens\":%lld,\"question_tokens\":%lld,\"currency\":\"%s\"",
                  (long long)c.chunks, (long long)c.chunk_tokens, (long long)c.question_tokens,
                  currency);
    sl_buf_puts(out, ",\"two_stage\":{");
    put_cost(out, "query", c.two_stage_query, 1);
    put_cost(out, "ingest", c.two_stage_ingest, 0);
    sl_buf_puts(out, "},\"strong_only\":{");
    put_cost(out, "query", c.strong_query, 1);
    put_cost(out, "ingest", c.strong_ingest, 0);
    sl_buf_puts(out, "}}");
    return 0;
}
