/* The search pipeline: recall, fusion, rerank, thresholds. */
#include "kb/retrieve.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "kb/index.h"
#include "kb/lexical.h"
#include "kb/rank.h"
#include "kb/store.h"
#include "kb/vec.h"

#define MAX_QUERY_TERMS 64

void sl_kb_search_defaults(const struct sl_kb *kb, struct sl_kb_search_opts *o)
{
    o->recall_k = kb->recall_k > 0 ? kb->recall_k : 50;
    o->top_k = kb->top_k > 0 ? kb->top_k : 5;
    o->recall_threshold = kb->recall_threshold;
    o->rerank_threshold = kb->rerank_threshold;
    o->vectors = 1;
    o->bm25 = 1;
    o->rerank = kb->rerank != SL_KB_RERANK_NONE;
}

/* The question's vector under the knowledge base's embed_model, unit length (malloc'd). */
static float *embed_question(struct sl_kb_client *c, const struct sl_kb *kb, const char *q,
                             int *dim, char *err, size_t errlen)
{
    float *qv = NULL;
    size_t len = strlen(q);
    *dim = kb->dim;
    if (sl_kbc_embed(c, kb->embed_model, "recall", &q, &len, 1, 1, &qv, dim)) {
        snprintf(err, errlen, "stage 1 query embedding: %s", c->err);
        return NULL;
    }
    sl_vec_normalise(qv, *dim);
    return qv;
}

/* Stage 1's vector list: ids and cosines at or above the threshold. */
static int recall_vectors(sqlite3 *db, const struct sl_kb *kb, const float *qv, int dim,
                          const struct sl_kb_search_opts *o, int64_t *ids, double *scores,
                          size_t *n, char *err, size_t errlen)
{
    *n = 0;
    if (!kb->dim || !qv)
        return 0; /* nothing indexed yet */
    struct sl_kb_index *ix =
        sl_kb_index_get(db, kb->id, kb->embed_model, dim, kb->rev, kb->created_ms, err, errlen);
    struct sl_vec_hit *hits = ix ? malloc((size_t)o->recall_k * sizeof(*hits)) : NULL;
    int rc = ix && hits ? 0 : -1;
    if (!rc) {
        size_t m = sl_vec_search(sl_kb_index_vectors(ix), qv, (size_t)o->recall_k, hits);
        for (size_t i = 0; i < m; i++)
            if (hits[i].score >= o->recall_threshold) {
                ids[*n] = hits[i].id;
                scores[(*n)++] = hits[i].score;
            }
    } else if (ix) {
        snprintf(err, errlen, "out of memory");
    }
    free(hits);
    sl_kb_index_release(ix);
    return rc;
}

int sl_kb_bm25(sqlite3 *db, const struct sl_kb *kb, const char *q, int k, int64_t *ids,
               double *scores, char *err, size_t errlen)
{
    struct sl_buf all = SL_BUF_INIT(strlen(q) * 4 + 64);
    size_t off[MAX_QUERY_TERMS], lens[MAX_QUERY_TERMS];
    const char *terms[MAX_QUERY_TERMS];
    int nt = sl_kb_distinct_terms(q, strlen(q), MAX_QUERY_TERMS, &all, off, lens), got = 0;
    for (int i = 0; i < nt; i++)
        terms[i] = all.ptr + off[i];
    struct sl_kb_lex *lx = nt > 0 ? sl_kb_lex_get(db, kb->id, kb->rev, kb->created_ms, err, errlen) : NULL;
    if (nt < 0)
        snprintf(err, errlen, "the question's terms are too large");
    if (nt < 0 || (nt > 0 && !lx))
        got = -1;
    else if (lx)
        got = (int)sl_bm25_search(sl_kb_lex_index(lx), terms, lens, nt, (size_t)k, ids, scores);
    sl_kb_lex_release(lx);
    sl_buf_release(&all);
    return got;
}

static int recall_bm25(sqlite3 *db, const struct sl_kb *kb, const char *q,
                       const struct sl_kb_search_opts *o, int64_t *ids, double *scores, size_t *n,
                       char *err, size_t errlen)
{
    int got = sl_kb_bm25(db, kb, q, o->recall_k, ids, scores, err, errlen);
    *n = got > 0 ? (size_t)got : 0;
    return got < 0 ? -1 : 0;
}

static int rerank_model(struct sl_kb_client *c, const struct sl_kb *kb, const char *q,
                        struct sl_kb_hit *h, size_t n, char *err, size_t errlen)
{
    const char **docs = malloc((n ? n : 1) * sizeof(*docs));
    double *scores = malloc((n ? n : 1) * sizeof(*scores));
    int rc = docs && scores ? 0 : -1;
    for (size_t i = 0; !rc && i < n; i++)
        docs[i] = h[i].text;
    if (!rc && sl_kbc_rerank(c, kb->rerank_model, q, docs, n, scores)) {
        snprintf(err, errlen, "stage 2 rerank: %s", c->err);
        rc = -1;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        h[i].rerank_score = scores[i];
        h[i].reranked = 1;
    }
    free(docs);
    free(scores);
    return rc;
}

int sl_kb_strong_vectors(sqlite3 *db, struct sl_kb_client *c, const struct sl_kb *kb,
                         struct sl_kb_hit *h, size_t n, float *out, int *dim, char *err,
                         size_t errlen)
{
    /* The missing ones are embedded in one call; the first lookup also learns dim. */
    size_t missing = 0;
    const char **texts = malloc((n ? n : 1) * sizeof(*texts));
    size_t *lens = malloc((n ? n : 1) * sizeof(*lens)), *where = malloc((n ? n : 1) * sizeof(*where));
    int rc = texts && lens && where ? 0 : -1;
    for (size_t i = 0; !rc && i < n; i++) {
        int got = *dim ? sl_kbs_vector_get(db, h[i].chunk_id, kb->rerank_model,
                                           out + i * (size_t)*dim, *dim, err, errlen)
                       : SL_KB_NOT_FOUND;
        if (got < 0)
            rc = -1;
        else if (got == SL_KB_NOT_FOUND) {
            texts[missing] = h[i].text;
            lens[missing] = strlen(h[i].text);
            where[missing++] = i;
        }
    }
    float *fresh = NULL;
    if (!rc && missing &&
        sl_kbc_embed(c, kb->rerank_model, "rerank", texts, lens, missing, 256, &fresh, dim)) {
        snprintf(err, errlen, "stage 2 embeddings: %s", c->err);
        rc = -1;
    }
    for (size_t j = 0; !rc && j < missing; j++) {
        float *v = fresh + j * (size_t)*dim;
        memcpy(out + where[j] * (size_t)*dim, v, (size_t)*dim * sizeof(float));
        if (sl_kbs_vector_put(db, kb->id, h[where[j]].chunk_id, kb->rerank_model, v, *dim, err,
                              errlen))
            rc = -1;
    }
    free(fresh);
    free(texts);
    free(lens);
    free(where);
    return rc;
}

static int rerank_embed(sqlite3 *db, struct sl_kb_client *c, const struct sl_kb *kb,
                        const char *q, struct sl_kb_hit *h, size_t n, char *err, size_t errlen)
{
    float *qv = NULL;
    int dim = 0;
    size_t len = strlen(q);
    if (sl_kbc_embed(c, kb->rerank_model, "rerank", &q, &len, 1, 1, &qv, &dim)) {
        snprintf(err, errlen, "stage 2 query embedding: %s", c->err);
        return -1;
    }
    float *vs = malloc((n ? n : 1) * (size_t)dim * sizeof(float));
    int rc = vs ? sl_kb_strong_vectors(db, c, kb, h, n, vs, &dim, err, errlen) : -1;
    sl_vec_normalise(qv, dim);
    for (size_t i = 0; !rc && i < n; i++) {
        sl_vec_normalise(vs + i * (size_t)dim, dim);
        h[i].rerank_score = sl_vec_dot(vs + i * (size_t)dim, qv, dim);
        h[i].reranked = 1;
    }
    free(vs);
    free(qv);
    return rc;
}

static double ms_since(int64_t t0)
{
    return (double)(sl_now_us() - t0) / 1000.0;
}

int sl_kb_stage1(sqlite3 *db, const struct sl_kb *kb, const char *q, const float *qv, int dim,
                 const struct sl_kb_search_opts *o, struct sl_arena *arena,
                 struct sl_kb_results *r, char *err, size_t errlen)
{
    size_t k = (size_t)o->recall_k, nv = 0, nb = 0;
    int64_t *ids = malloc(2 * k * sizeof(int64_t));
    double *scores = malloc(2 * k * sizeof(double));
    int rc = ids && scores ? 0 : -1;
    if (!rc && o->vectors)
        rc = recall_vectors(db, kb, qv, dim, o, ids, scores, &nv, err, errlen);
    if (!rc && o->bm25)
        rc = recall_bm25(db, kb, q, o, ids + k, scores + k, &nb, err, errlen);
    r->candidates = rc ? NULL : sl_arena_alloc(arena, (nv + nb + 1) * sizeof(struct sl_kb_hit));
    if (!rc && r->candidates)
        r->ncandidates = sl_kb_rrf(ids, scores, nv, ids + k, scores + k, nb, r->candidates, k);
    if (!rc && sl_kbs_chunk_fill_many(db, r->candidates, r->ncandidates, arena, err, errlen))
        rc = -1;
    free(ids);
    free(scores);
    return rc;
}

static int stage1(sqlite3 *db, struct sl_kb_client *c, const struct sl_kb *kb, const char *q,
                  const struct sl_kb_search_opts *o, struct sl_arena *arena,
                  struct sl_kb_results *r, char *err, size_t errlen)
{
    int dim = kb->dim;
    float *qv = NULL;
    if (o->vectors && kb->dim && !(qv = embed_question(c, kb, q, &dim, err, errlen)))
        return -1;
    int rc = sl_kb_stage1(db, kb, q, qv, dim, o, arena, r, err, errlen);
    free(qv);
    return rc;
}

int sl_kb_search(sqlite3 *db, struct sl_kb_client *c, const struct sl_kb *kb, const char *q,
                 const struct sl_kb_search_opts *o, struct sl_arena *arena,
                 struct sl_kb_results *r, char *err, size_t errlen)
{
    int64_t t0 = sl_now_us();
    memset(r, 0, sizeof(*r));
    if (o->recall_k < 1 || o->recall_k > SL_KB_MAX_RECALL || o->top_k < 1 || o->top_k > SL_KB_MAX_TOP) {
        snprintf(err, errlen, "recall_k must be 1..%d and top_k 1..%d", SL_KB_MAX_RECALL, SL_KB_MAX_TOP);
        return -1;
    }
    if (stage1(db, c, kb, q, o, arena, r, err, errlen))
        return -1;
    r->recall_ms = ms_since(t0);
    size_t n = r->ncandidates;
    r->top = sl_arena_alloc(arena, (n + 1) * sizeof(*r->top));
    if (!r->top) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(r->top, r->candidates, n * sizeof(*r->top));
    int64_t t1 = sl_now_us();
    if (o->rerank && n && kb->rerank != SL_KB_RERANK_NONE) {
        int rc = kb->rerank == SL_KB_RERANK_MODEL ? rerank_model(c, kb, q, r->top, n, err, errlen)
                                                  : rerank_embed(db, c, kb, q, r->top, n, err, errlen);
        if (rc)
            return -1;
        sl_kb_sort_reranked(r->top, n);
        size_t kept = 0;
        for (size_t i = 0; i < n; i++)
            if (r->top[i].rerank_score >= o->rerank_threshold)
                r->top[kept++] = r->top[i];
        n = kept;
        r->reranked = 1;
        for (size_t i = 0; i < r->ncandidates; i++) /* the candidates show stage 2's score too */
            for (size_t j = 0; j < n; j++)
                if (r->top[j].chunk_id == r->candidates[i].chunk_id)
                    {
                    r->candidates[i].rerank_score = r->top[j].rerank_score;
                    r->candidates[i].reranked = 1;
                }
    }
    r->rerank_ms = ms_since(t1);
    r->ntop = n < (size_t)o->top_k ? n : (size_t)o->top_k;
    return 0;
}
