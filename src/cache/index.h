/* The semantic index: normalised float32 vectors in one contiguous array (cosine = dot
 * product), each pointing to the exact entry it answers, searched by a flat scan in two
 * stages: a sign sketch of every vector (one bit per value: a 32nd of the bytes to stream
 * from memory) ranks the scope's vectors by Hamming distance, and the best SL_CACHE_RESCORE are
 * scored again exactly in float32; only that exact cosine is ever returned.
 * Bounded: when full, the oldest vector is overwritten. Searches may run side by side;
 * a change needs the index to itself (the cache's readers-writer lock). */
#ifndef SL_CACHE_INDEX_H
#define SL_CACHE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "cache/backend.h"

/* The most dimensions an index takes; the candidates of the sketch stage scored in float32. */
#define SL_CACHE_MAX_DIM 8192
#define SL_CACHE_RESCORE 512

struct sl_cache_index {
    int dim;
    size_t n, cap, next;   /* next: the slot to overwrite once n == cap */
    float *vecs;           /* n * dim, each of length 1 */
    int words;             /* (dim + 63) / 64: the sign sketch's 64-bit words per vector */
    uint64_t *signs;       /* n * words: bit i set when value i > 0 */
    uint64_t *scopes;      /* per vector, apart so a scan skips other scopes cheaply */
    uint8_t (*keys)[SL_CACHE_KEY_LEN];
};

/* An index of up to cap vectors of dim values (1..SL_CACHE_MAX_DIM). Returns 0, or -1
 * when out of memory or dim is out of range. */
int sl_cache_index_init(struct sl_cache_index *ix, int dim, size_t cap);
void sl_cache_index_release(struct sl_cache_index *ix);

/* Scales v (dim values) to length 1 in place. Returns 0, or -1 for a zero vector. */
int sl_cache_normalise(float *v, int dim);

/* Adds v (normalised, ix->dim values) for entry key in scope; a vector already there
 * for key is replaced. Returns 0, or -1 when v has another dimension. */
int sl_cache_index_add(struct sl_cache_index *ix, const uint8_t *key, uint64_t scope,
                       const float *v, int dim);

/* The most similar vector in scope to q (normalised): its slot, and its cosine in
 * *score; -1 when the scope holds none. */
long sl_cache_index_search(const struct sl_cache_index *ix, uint64_t scope, const float *q,
                           float *score);

/* Removes the vector in slot i (the last one moves into it). */
void sl_cache_index_remove(struct sl_cache_index *ix, size_t i);

/* The dot product of two vectors of n floats (AVX2/FMA when the CPU has it). */
float sl_cache_dot(const float *a, const float *b, int n);

/* Turns the AVX2 paths on (when the CPU has them, the default) or off (the portable
 * loops, for tests). Returns 1 when AVX2 is in use afterwards. */
int sl_cache_simd(int on);

/* The sign sketch of v (dim values) into (dim + 63) / 64 words: bit i set when v[i] > 0. */
void sl_cache_sign(const float *v, int dim, uint64_t *out);

#endif
