/* What the knowledge-base files share: a knowledge base's settings as stored, and one
 * retrieved chunk with its scores from each stage. */
#ifndef SL_KB_H
#define SL_KB_H

#include <stdint.h>

#include "core/limits.h"

#define SL_KB_MAX_RECALL 1000 /* candidates stage 1 may hand to stage 2 */
#define SL_KB_MAX_TOP    100

/* How stage 2 reorders stage 1's candidates. */
enum sl_kb_rerank {
    SL_KB_RERANK_NONE,  /* stage 1's order is final */
    SL_KB_RERANK_MODEL, /* POST /v1/rerank with rerank_model */
    SL_KB_RERANK_EMBED, /* cosine under a strong embedding model (rerank_model), vectors cached per chunk */
};

struct sl_kb {
    int64_t id;
    char name[SL_MAX_NAME];
    char embed_model[SL_MAX_NAME];  /* stage 1; every vector of the index is from it */
    int dim;                        /* its dimension, fixed by the first vectors (0 = none yet) */
    enum sl_kb_rerank rerank;
    char rerank_model[SL_MAX_NAME];
    char answer_model[SL_MAX_NAME];
    double temperature;
    int recall_k, top_k;            /* 50 and 5 by default */
    double recall_threshold;        /* stage 1 candidates need cosine >= this (or a BM25 hit) */
    double rerank_threshold;        /* stage 2 keeps scores >= this */
    int context_tokens;             /* budget of the sources in the answer prompt */
    char profile[32];               /* default chunking profile of added documents */
    int64_t rev;                    /* bumped by every document change */
    int64_t created_ms;
    int64_t documents, chunks;      /* counts, filled by listings */
};

/* One candidate chunk through the stages. Strings live in the search's arena. */
struct sl_kb_hit {
    int64_t chunk_id, doc_id;
    const char *doc;                /* document name */
    const char *heading;            /* heading path, " > " separated ("" = none) */
    const char *text;
    int64_t start, end;             /* character offsets in the extracted document text */
    int64_t byte_start, byte_end;   /* the same in bytes */
    int ordinal;
    int vec_rank, bm25_rank;        /* 1-based; 0 = not found by that retriever */
    double vec_score, bm25_score;   /* cosine; FTS5 bm25 (lower is better, as SQLite gives it) */
    double rrf;                     /* stage 1's fused score */
    double rerank_score;            /* stage 2's score, when reranked */
    int reranked;                   /* stage 2 scored this hit */
};

#endif
