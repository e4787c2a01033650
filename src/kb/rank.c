/* Reciprocal rank fusion and the stage sorts. */
#include "kb/rank.h"

#include <stdlib.h>
#include <string.h>

static struct sl_kb_hit *find(struct sl_kb_hit *h, size_t n, int64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].chunk_id == id)
            return &h[i];
    return NULL;
}

static int best_rank(const struct sl_kb_hit *h)
{
    int a = h->vec_rank ? h->vec_rank : 1 << 30, b = h->bm25_rank ? h->bm25_rank : 1 << 30;
    return a < b ? a : b;
}

static int by_rrf(const void *pa, const void *pb)
{
    const struct sl_kb_hit *a = pa, *b = pb;
    if (a->rrf != b->rrf)
        return a->rrf < b->rrf ? 1 : -1;
    if (best_rank(a) != best_rank(b))
        return best_rank(a) - best_rank(b);
    return a->chunk_id < b->chunk_id ? -1 : a->chunk_id > b->chunk_id;
}

size_t sl_kb_rrf(const int64_t *vec, const double *vec_scores, size_t nvec, const int64_t *bm25,
                 const double *bm25_scores, size_t nbm25, struct sl_kb_hit *out, size_t cap)
{
    size_t total = nvec + nbm25, n = 0;
    struct sl_kb_hit *all = calloc(total ? total : 1, sizeof(*all));
    if (!all)
        return 0;
    for (size_t i = 0; i < nvec; i++) {
        struct sl_kb_hit *h = find(all, n, vec[i]);
        if (!h) {
            h = &all[n++];
            h->chunk_id = vec[i];
            h->rerank_score = -1;
        }
        if (!h->vec_rank) {
            h->vec_rank = (int)i + 1;
            h->vec_score = vec_scores ? vec_scores[i] : 0;
            h->rrf += 1.0 / (SL_KB_RRF_K + (double)(i + 1));
        }
    }
    for (size_t i = 0; i < nbm25; i++) {
        struct sl_kb_hit *h = find(all, n, bm25[i]);
        if (!h) {
            h = &all[n++];
            h->chunk_id = bm25[i];
            h->rerank_score = -1;
        }
        if (!h->bm25_rank) {
            h->bm25_rank = (int)i + 1;
            h->bm25_score = bm25_scores ? bm25_scores[i] : 0;
            h->rrf += 1.0 / (SL_KB_RRF_K + (double)(i + 1));
        }
    }
    qsort(all, n, sizeof(*all), by_rrf);
    size_t m = n < cap ? n : cap;
    memcpy(out, all, m * sizeof(*out));
    free(all);
    return m;
}

void sl_kb_sort_reranked(struct sl_kb_hit *hits, size_t n)
{
    /* insertion sort: n is at most a few hundred, and it keeps stage 1's order on ties */
    for (size_t i = 1; i < n; i++) {
        struct sl_kb_hit t = hits[i];
        size_t j = i;
        while (j > 0 && hits[j - 1].rerank_score < t.rerank_score) {
            hits[j] = hits[j - 1];
            j--;
        }
        hits[j] = t;
    }
}
