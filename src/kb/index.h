/* The indexes kept in memory across searches: vectors per (knowledge base, model) and
 * BM25 postings per knowledge base, loaded from the store once and rebuilt when the
 * knowledge base's revision moves on.
 * Shared by the KB threads; an index in use stays alive until released. */
#ifndef SL_KB_INDEX_H
#define SL_KB_INDEX_H

#include <stdint.h>

#include "kb/bm25.h"
#include "kb/vec.h"

typedef struct sqlite3 sqlite3;
struct sl_kb_index;

/* Rows at or above which the sign bits are built and the scan prefilters on them (then
 * rescores in float32): below it the exact float32 scan is already fast. */
#define SL_KB_BINARY_ROWS 20000

/* The index of (kb, model, dim) at revision rev, loaded from db when missing or stale.
 * created (the knowledge base's created_ms) tells a knowledge base apart from a deleted
 * one that had the same id. NULL with err filled on failure. Release with
 * sl_kb_index_release. */
struct sl_kb_index *sl_kb_index_get(sqlite3 *db, int64_t kb, const char *model, int dim,
                                    int64_t rev, int64_t created, char *err, size_t errlen);
const struct sl_vec_index *sl_kb_index_vectors(const struct sl_kb_index *ix);
void sl_kb_index_release(struct sl_kb_index *ix);

/* The in-memory BM25 index of kb at revision rev (kb/bm25.h), built from the FTS5 terms
 * when missing or stale. created (the knowledge base's created_ms) tells a knowledge
 * base apart from a deleted one that had the same id. NULL with err filled on failure.
 * Release with sl_kb_lex_release. */
struct sl_kb_lex;
struct sl_kb_lex *sl_kb_lex_get(sqlite3 *db, int64_t kb, int64_t rev, int64_t created,
                                char *err, size_t errlen);
const struct sl_bm25 *sl_kb_lex_index(const struct sl_kb_lex *lx);
void sl_kb_lex_release(struct sl_kb_lex *lx);

/* Drops every cached index (those in use are freed when released). At shutdown. */
void sl_kb_index_clear(void);

#endif
