/* The lexical side of retrieval: text into the terms the FTS5 index holds (Chinese
 * character bigrams and lower-cased words of other scripts), and an FTS5 query for them. */
#ifndef SL_KB_LEXICAL_H
#define SL_KB_LEXICAL_H

#include <stddef.h>

#include "core/buf.h"

/* Appends the terms of text to out, separated by single spaces: each run of CJK
 * characters gives its overlapping character bigrams (a lone character gives itself),
 * each run of other letters and digits gives one lower-cased word. Punctuation and
 * spaces separate terms and give none. Invalid UTF-8 bytes are skipped.
 * Returns 0, or -1 when out is full. */
int sl_kb_terms(const char *text, size_t len, struct sl_buf *out);

/* The distinct terms of text, at most max: term i is out->ptr + off[i], len[i] bytes
 * (out holds the terms space-separated). Returns the count, or -1 when out is full. */
int sl_kb_distinct_terms(const char *text, size_t len, int max, struct sl_buf *out, size_t *off,
                         size_t *lens);

/* An FTS5 MATCH expression that ORs the distinct terms of a question, each quoted
 * (at most max_terms). Returns the number of terms written (0: nothing to match), or -1
 * when out is full. */
int sl_kb_fts_query(const char *text, size_t len, int max_terms, struct sl_buf *out);

#endif
