/* What a search would cost with the strong model alone, next to what the two stages
 * cost (docs/kb.md, Costs): the "compare" object of a search reply. */
#ifndef SL_SERVER_KB_COMPARE_H
#define SL_SERVER_KB_COMPARE_H

#include <stdint.h>

#include "core/buf.h"
#include "kb/kb.h"

typedef struct sqlite3 sqlite3;
struct sl_config;
struct sl_catalog;

/* The two pipelines' costs for one question, in micro-units; -1 where unpriced. */
struct sl_kb_compare {
    int64_t chunks, chunk_tokens, question_tokens;
    int64_t two_stage_query, two_stage_ingest, strong_query, strong_ingest;
};

/* Prices per million input tokens, micro-units (-1: unknown), of the stage 1 model and
 * the strong (stage 2) model: the arithmetic of the comparison, for a knowledge base of
 * chunks chunks holding chunk_tokens, a question of question_tokens, and this search's
 * stage costs (recall, rerank; -1 unknown). mode is the knowledge base's stage 2. */
void sl_kb_compare_costs(enum sl_kb_rerank mode, int64_t chunks, int64_t chunk_tokens,
                         int64_t question_tokens, int64_t cheap_price, int64_t strong_price,
                         int64_t recall_cost, int64_t rerank_cost, struct sl_kb_compare *out);

/* Appends ,"compare":{...} for kb and question q (tokens billed by each stage given) to
 * out, pricing the models from cfg and catalog. Nothing when kb has no stage 2. Returns
 * 0, or -1 with err filled when the store cannot be read. */
int sl_kb_compare_json(struct sl_buf *out, const struct sl_config *cfg,
                       const struct sl_catalog *catalog, sqlite3 *db, const struct sl_kb *kb,
                       const char *q, int64_t recall_tokens, int64_t rerank_tokens, int reranked,
                       char *err, size_t errlen);

#endif
