/* Two-stage retrieval over one knowledge base: stage 1 recalls candidates cheaply
 * (query embedding + flat cosine scan, fused with FTS5 BM25 by reciprocal rank fusion),
 * stage 2 reorders them with a rerank model or a strong embedding model. */
#ifndef SL_KB_RETRIEVE_H
#define SL_KB_RETRIEVE_H

#include <stddef.h>

#include "core/arena.h"
#include "kb/client.h"
#include "kb/kb.h"

typedef struct sqlite3 sqlite3;

struct sl_kb_search_opts {
    int recall_k, top_k;
    double recall_threshold, rerank_threshold;
    int vectors, bm25, rerank; /* which parts run (1) or are left out (0) */
};

/* The knowledge base's own settings, everything on. */
void sl_kb_search_defaults(const struct sl_kb *kb, struct sl_kb_search_opts *o);

struct sl_kb_results {
    struct sl_kb_hit *candidates; /* stage 1, best first (arena) */
    size_t ncandidates;
    struct sl_kb_hit *top;        /* the final list, best first (arena) */
    size_t ntop;
    double recall_ms, rerank_ms;  /* time in each stage, model calls included */
    int reranked;                 /* stage 2 ran */
};

/* Runs the stages for question q. Model calls go through c (tagged stage=recall and
 * stage=rerank). Returns 0, or -1 with err filled. */
int sl_kb_search(sqlite3 *db, struct sl_kb_client *c, const struct sl_kb *kb, const char *q,
                 const struct sl_kb_search_opts *o, struct sl_arena *arena,
                 struct sl_kb_results *r, char *err, size_t errlen);

/* Stage 1 without its embedding call: the vector scan for the unit vector qv (dim
 * floats; NULL: no vector list), BM25 for q, their fusion, the candidates read back
 * into r->candidates. What sl_kb_search runs after embedding the question. */
int sl_kb_stage1(sqlite3 *db, const struct sl_kb *kb, const char *q, const float *qv, int dim,
                 const struct sl_kb_search_opts *o, struct sl_arena *arena,
                 struct sl_kb_results *r, char *err, size_t errlen);

/* Stage 1's lexical list: the best k chunks for q by BM25 over the chunks' FTS5 terms,
 * scored in memory (kb/bm25.h; ids, scores in FTS5's sign, best first). Returns the
 * count or -1 with err filled. */
int sl_kb_bm25(sqlite3 *db, const struct sl_kb *kb, const char *q, int k, int64_t *ids,
               double *scores, char *err, size_t errlen);

/* Embeds and stores the vectors under a strong model of the candidates that have none
 * yet (stage 2's "embed" mode): each chunk is embedded by that model at most once. */
int sl_kb_strong_vectors(sqlite3 *db, struct sl_kb_client *c, const struct sl_kb *kb,
                         struct sl_kb_hit *h, size_t n, float *out, int *dim, char *err,
                         size_t errlen);

#endif
