/* The knowledge base in SQLite (the same file as the ledger): knowledge bases, documents,
 * chunks with their FTS5 terms, vectors per model, and the embedding cache by content
 * hash. One connection per thread; every function returns 0 or -1 with text in err. */
#ifndef SL_KB_STORE_H
#define SL_KB_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "kb/kb.h"

typedef struct sqlite3 sqlite3;

#define SL_KB_NOT_FOUND 1 /* returned by the lookups for a missing row */

/* The FTS5 term every chunk of a knowledge base holds: a word no text yields. */
#define SL_KB_TERM "sluicekbq%lld"

/* Opens the store named by url (sqlite://PATH), migrating it first. */
int sl_kbs_open(const char *url, sqlite3 **db, char *err, size_t errlen);
void sl_kbs_close(sqlite3 *db);

int sl_kbs_begin(sqlite3 *db);
int sl_kbs_commit(sqlite3 *db);
void sl_kbs_rollback(sqlite3 *db);

/* kb->name and settings in, kb->id out. -1 also for an existing name (err says so). */
int sl_kbs_create(sqlite3 *db, struct sl_kb *kb, char *err, size_t errlen);
/* 0, SL_KB_NOT_FOUND or -1. */
int sl_kbs_get(sqlite3 *db, const char *name, struct sl_kb *kb, char *err, size_t errlen);
/* Every knowledge base with its counts, by name; *out malloc'd (caller frees). */
int sl_kbs_list(sqlite3 *db, struct sl_kb **out, size_t *n, char *err, size_t errlen);
/* Deletes a knowledge base and everything in it. 0, SL_KB_NOT_FOUND or -1. */
int sl_kbs_delete(sqlite3 *db, const char *name, char *err, size_t errlen);
/* Records the dimension of the first vectors. */
int sl_kbs_set_dim(sqlite3 *db, int64_t kb, int dim, char *err, size_t errlen);
int sl_kbs_bump(sqlite3 *db, int64_t kb, char *err, size_t errlen);

struct sl_kb_doc {
    int64_t id;
    char name[512];
    char type[16];     /* txt, md, html, pdf, docx */
    char profile[32];
    char hash[65];     /* SHA-256 of the document's bytes */
    int64_t bytes, chunks, added_ms;
};

/* The document named name in kb: 0 (filled), SL_KB_NOT_FOUND or -1. */
int sl_kbs_doc_get(sqlite3 *db, int64_t kb, const char *name, struct sl_kb_doc *d, char *err,
                   size_t errlen);
int sl_kbs_doc_list(sqlite3 *db, int64_t kb, struct sl_kb_doc **out, size_t *n, char *err,
                    size_t errlen);
/* Deletes a document, its chunks, terms and vectors. */
int sl_kbs_doc_delete(sqlite3 *db, int64_t kb, int64_t doc, char *err, size_t errlen);
/* Inserts d (d->id out). */
int sl_kbs_doc_insert(sqlite3 *db, int64_t kb, struct sl_kb_doc *d, char *err, size_t errlen);

struct sl_kb_chunk_row {
    int ordinal;
    int64_t start, end;    /* bytes */
    int64_t cstart, cend;  /* characters */
    const char *heading;
    const char *text;
    size_t text_len;
    int64_t tokens;
    char hash[65];         /* SHA-256 of the text: the embedding cache key */
};

/* Inserts a chunk and its FTS5 terms; *id out. */
int sl_kbs_chunk_insert(sqlite3 *db, int64_t kb, int64_t doc, const struct sl_kb_chunk_row *c,
                        int64_t *id, char *err, size_t errlen);
int sl_kbs_vector_put(sqlite3 *db, int64_t kb, int64_t chunk, const char *model, const float *v,
                      int dim, char *err, size_t errlen);
/* The cached vector of (model, hash): 0 with v filled (room for dim), SL_KB_NOT_FOUND, -1. */
int sl_kbs_cache_get(sqlite3 *db, const char *model, const char *hash, float *v, int dim,
                     char *err, size_t errlen);
int sl_kbs_cache_put(sqlite3 *db, const char *model, const char *hash, const float *v, int dim,
                     char *err, size_t errlen);
/* A chunk's vector under model: 0, SL_KB_NOT_FOUND or -1. */
int sl_kbs_vector_get(sqlite3 *db, int64_t chunk, const char *model, float *v, int dim,
                      char *err, size_t errlen);

/* Every vector of kb under model, unit length, contiguous (sl_vec_index). */
struct sl_vec_index;
int sl_kbs_load_index(sqlite3 *db, int64_t kb, const char *model, int dim,
                      struct sl_vec_index *ix, char *err, size_t errlen);

/* The best `limit` chunks of kb for an FTS5 MATCH expression: ids and bm25 scores
 * (lower is better), best first. Returns the count or -1. Not on the search path (BM25
 * is scored in memory, kb/bm25.h): the reference the tests and the bench compare to. */
int sl_kbs_fts(sqlite3 *db, int64_t kb, const char *match, int limit, int64_t *ids,
               double *scores, char *err, size_t errlen);

/* Feeds every chunk of kb with its FTS5 terms (as stored) to b (kb/bm25.h). */
struct sl_bm25_builder;
int sl_kbs_load_terms(sqlite3 *db, int64_t kb, struct sl_bm25_builder *b, char *err,
                      size_t errlen);

/* Fills the document, heading, text and offsets of n hits by their chunk_id in one
 * query (strings in arena). A hit whose chunk is gone keeps doc NULL. */
int sl_kbs_chunk_fill_many(sqlite3 *db, struct sl_kb_hit *h, size_t n, struct sl_arena *arena,
                           char *err, size_t errlen);

/* The chunk count of kb and the sum of their estimated tokens. */
int sl_kbs_chunk_tokens(sqlite3 *db, int64_t kb, int64_t *chunks, int64_t *tokens, char *err,
                        size_t errlen);

/* Fills the document, heading, text and offsets of h->chunk_id (strings in arena). */
int sl_kbs_chunk_fill(sqlite3 *db, struct sl_kb_hit *h, struct sl_arena *arena, char *err,
                      size_t errlen);

#endif
