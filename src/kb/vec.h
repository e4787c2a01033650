/* Vectors of a knowledge base in memory: L2-normalised float32 rows, contiguous, with an
 * optional int8 copy, and the flat scans (AVX2 when the CPU has it) that rank them by
 * cosine against a query. No locking here: an index is immutable once built. */
#ifndef SL_KB_VEC_H
#define SL_KB_VEC_H

#include <stddef.h>
#include <stdint.h>

struct sl_vec_index {
    int dim;
    size_t n;         /* rows */
    float *f32;       /* n * dim, each row of unit length */
    int8_t *q8;       /* n * dim, row i = round(f32[i] * 127), or NULL */
    uint64_t *bits;   /* n * words: the sign bit of each dimension, or NULL */
    int words;        /* (dim + 63) / 64 */
    int64_t *ids;     /* the chunk id of each row */
};

struct sl_vec_hit {
    int64_t id;
    float score;      /* cosine similarity */
    size_t row;
};

/* Scales v (dim floats) to unit length; a zero vector stays zero. */
void sl_vec_normalise(float *v, int dim);

/* Dot product of two dim-float vectors. */
float sl_vec_dot(const float *a, const float *b, int dim);

/* Fills ix->q8 from ix->f32 (malloc'd). 0, or -1 when out of memory. */
int sl_vec_quantise(struct sl_vec_index *ix);

/* Fills ix->bits from ix->f32 (malloc'd). 0, or -1 when out of memory. */
int sl_vec_binarise(struct sl_vec_index *ix);

/* Candidates the sign-bit prefilter keeps for rescoring, for k hits. */
#define SL_VEC_BINARY_KEEP(k) ((k) * 40 > 2000 ? (k) * 40 : 2000)

/* The k best rows for the unit query q (dim floats), best first, into out (room for k).
 * With the sign bits present, rows are ranked by Hamming distance first and the best
 * SL_VEC_BINARY_KEEP(k) rescored in float32; else with the int8 copy present, ranked on
 * it and the best 4k rescored. Scores returned are exact float32 cosines. Returns how
 * many hits were written. */
size_t sl_vec_search(const struct sl_vec_index *ix, const float *q, size_t k,
                     struct sl_vec_hit *out);

/* Frees the index's arrays (not ix itself). */
void sl_vec_index_release(struct sl_vec_index *ix);

#endif
