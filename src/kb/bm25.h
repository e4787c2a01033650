/* BM25 in memory: a compact inverted index of one knowledge base's chunk terms (the
 * space-separated terms kept in the FTS5 table, which stays the persisted store), scored
 * in C with FTS5's own bm25() formula and a top-k selection. Built once per knowledge
 * base revision (kb/index.c keeps it), immutable after, so searches share it unlocked. */
#ifndef SL_KB_BM25_H
#define SL_KB_BM25_H

#include <stddef.h>
#include <stdint.h>

/* FTS5's bm25() constants. */
#define SL_BM25_K1 1.2
#define SL_BM25_B 0.75

struct sl_bm25;
struct sl_bm25_builder;

struct sl_bm25_builder *sl_bm25_builder_new(void);
/* Adds one chunk: its id and its terms, space-separated (as sl_kb_terms writes them).
 * Every term counts in the chunk's length, as FTS5 counts a column's tokens.
 * 0, or -1 when out of memory. */
int sl_bm25_add(struct sl_bm25_builder *b, int64_t id, const char *terms, size_t len);
/* Turns the builder into an index (the builder is freed either way); NULL when out of
 * memory. */
struct sl_bm25 *sl_bm25_finish(struct sl_bm25_builder *b);
void sl_bm25_builder_free(struct sl_bm25_builder *b);

/* The best k chunks for the n query terms (distinct; term i is terms[i], lens[i] bytes):
 * chunk ids and scores in FTS5's sign (the negated BM25 sum, lower is better), best
 * first, ties by smaller id. A chunk matches when it holds any term (FTS5's OR).
 * IDF = ln((N - df + 0.5) / (df + 0.5)), at least 1e-6, as FTS5 clamps it; the terms at
 * that floor (in more than half the chunks) are scored only when the others match fewer
 * than k chunks, since they add at most 2.2e-6 each. Returns the count. */
size_t sl_bm25_search(const struct sl_bm25 *ix, const char *const *terms, const size_t *lens,
                      int n, size_t k, int64_t *ids, double *scores);

/* Chunks, distinct terms and postings held, and the bytes they take. */
void sl_bm25_stats(const struct sl_bm25 *ix, size_t *docs, size_t *terms, size_t *postings,
                   size_t *bytes);

void sl_bm25_free(struct sl_bm25 *ix);

#endif
