/* Rank fusion and ordering of candidates: reciprocal rank fusion of the vector and BM25
 * lists (Cormack et al., k = 60), and the sorts of each stage. Pure functions. */
#ifndef SL_KB_RANK_H
#define SL_KB_RANK_H

#include <stddef.h>
#include <stdint.h>

#include "kb/kb.h"

#define SL_KB_RRF_K 60

/* Fuses two ranked id lists (best first; either may be empty) into hits: one per
 * distinct id, with vec_rank / bm25_rank (1-based, 0 = absent) and rrf = sum of
 * 1 / (k + rank), ordered by rrf, ties by the better single rank. Writes at most cap
 * hits and returns how many. vec_scores / bm25_scores (may be NULL) are copied in. */
size_t sl_kb_rrf(const int64_t *vec, const double *vec_scores, size_t nvec, const int64_t *bm25,
                 const double *bm25_scores, size_t nbm25, struct sl_kb_hit *out, size_t cap);

/* Orders hits by rerank_score, best first (stable for equal scores). */
void sl_kb_sort_reranked(struct sl_kb_hit *hits, size_t n);

#endif
