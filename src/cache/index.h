/* The semantic index: normalised float32 vectors in one contiguous array (cosine = dot
 * product), each pointing to the exact entry it answers, searched by a flat scan in two
 * stages: a 4-bit copy of every vector (an eighth of the bytes to stream from memory)
 * ranks the scope's vectors, and the best few are scored again exactly in float32.
 * Bounded: when full, the oldest vector is overwritten. Searches may run side by side;
 * a change needs the index to itself (the cache's readers-writer lock). */
#ifndef SL_CACHE_INDEX_H
#define SL_CACHE_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "cache/backend.h"

struct sl_cache_index {
    int dim;
    size_t n, cap, next;   /* next: the slot to overwrite once n == cap */
    float *vecs;           /* n * dim, each of length 1 */
    int cdim;              /* dim rounded up to 32: the 4-bit copy's values per vector */
    uint8_t *codes;        /* n * cdim / 2: round(v * scale) + 8 in nibbles (index.c) */
    float *scales;         /* per vector: 7 / its largest |value| */
    uint64_t *scopes;      /* per vector, apart so a scan skips other scopes cheaply */
    uint8_t (*keys)[SL_CACHE_KEY_LEN];
};

/* An index of up to cap vectors of dim values. Returns 0, or -1 when out of memory. */
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

/* The first stage's product: sum of (nibble - 8) * q over n values (n a multiple of 32),
 * codes packed as index.c lays them out (AVX2 when the CPU has it). */
int32_t sl_cache_dot4(const uint8_t *codes, const int8_t *q, int n);

/* Packs n floats (n a multiple of 32, the tail zero) into n / 2 bytes of nibbles scaled
 * by scale (|v * scale| <= 7). */
void sl_cache_pack4(const float *v, int n, float scale, uint8_t *out);

#endif
