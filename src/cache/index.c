/* The semantic index's flat scan. Vectors are float32, contiguous and of length 1, so
 * a cosine is one dot product. A scan of 100,000 vectors of 1,024 floats streams 410 MB
 * from memory, which alone takes far longer than the lookup may; so the scan reads a
 * sign sketch (one bit per value, a 32nd of that) to rank by Hamming distance, then
 * scores the best SL_CACHE_RESCORE in float32. The Hamming distances use popcnt and
 * the dot products AVX2 (and FMA) when the CPU has them, checked once; otherwise
 * portable loops (the dot product's independent sums vectorise without -ffast-math). */
#include "cache/index.h"

#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#endif

static float dot_portable(const float *a, const float *b, int n)
{
    float s[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += a[i + k] * b[i + k];
    float sum = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

/* The sign sketch: bit i of a vector's words is set when its value i is above zero (the
 * bits past dim are zero in every sketch, so they never differ). The Hamming distance of
 * two sketches estimates the angle between the vectors: a fraction theta / pi of the bits
 * differ for vectors theta apart, when the values are spread evenly. */
static int popcount_portable(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (int)((x * 0x0101010101010101ull) >> 56);
}

/* Hamming distance of every sketch in scope to qs, in out; NOT_IN_SCOPE for the others,
 * and hist[d] counts the scope's sketches at distance d. */
#define NOT_IN_SCOPE UINT16_MAX
static void hamming_portable(const struct sl_cache_index *ix, uint64_t scope,
                             const uint64_t *qs, uint16_t *out, uint32_t *hist)
{
    int w = ix->words;
    const uint64_t *s = ix->signs;
    for (size_t i = 0; i < ix->n; i++, s += w) {
        if (ix->scopes[i] != scope) {
            out[i] = NOT_IN_SCOPE;
            continue;
        }
        int d = 0;
        for (int k = 0; k < w; k++)
            d += popcount_portable(s[k] ^ qs[k]);
        out[i] = (uint16_t)d;
        hist[d]++;
    }
}

#ifdef HAVE_AVX2_PATH
/* The same with the CPU's popcnt (every CPU with AVX2 has it). */
__attribute__((target("avx2,popcnt"))) static void hamming_avx2(const struct sl_cache_index *ix,
                                                               uint64_t scope,
                                                               const uint64_t *qs,
                                                               uint16_t *out, uint32_t *hist)
{
    int w = ix->words;
    const uint64_t *s = ix->signs;
    for (size_t i = 0; i < ix->n; i++, s += w) {
        if (ix->scopes[i] != scope) {
            out[i] = NOT_IN_SCOPE;
            continue;
        }
        __builtin_prefetch(s + 8 * w); /* a few sketches ahead */
        int d0 = 0, d1 = 0, k = 0;
        for (; k + 2 <= w; k += 2) {
            d0 += __builtin_popcountll(s[k] ^ qs[k]);
            d1 += __builtin_popcountll(s[k + 1] ^ qs[k + 1]);
        }
        if (k < w)
            d0 += __builtin_popcountll(s[k] ^ qs[k]);
        out[i] = (uint16_t)(d0 + d1);
        hist[d0 + d1]++;
    }
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int n)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float sum = _mm_cvtss_f32(h);
    for (; i < n; i++)
        sum += a[i] * b[i];
    return sum;
}

static atomic_int simd = -1; /* -1: not checked yet */

static int cpu_has_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int use_avx2(void)
{
    int v = atomic_load_explicit(&simd, memory_order_relaxed);
    if (v < 0) {
        v = cpu_has_avx2();
        atomic_store_explicit(&simd, v, memory_order_relaxed);
    }
    return v;
}

int sl_cache_simd(int on)
{
    atomic_store(&simd, on && cpu_has_avx2());
    return atomic_load(&simd);
}
#else
int sl_cache_simd(int on)
{
    return 0;
}
#endif

float sl_cache_dot(const float *a, const float *b, int n)
{
#ifdef HAVE_AVX2_PATH
    if (use_avx2())
        return dot_avx2(a, b, n);
#endif
    return dot_portable(a, b, n);
}

void sl_cache_sign(const float *v, int dim, uint64_t *out)
{
    int words = (dim + 63) / 64;
    memset(out, 0, (size_t)words * sizeof(*out));
    for (int i = 0; i < dim; i++)
        if (v[i] > 0)
            out[i / 64] |= (uint64_t)1 << (i % 64);
}

int sl_cache_normalise(float *v, int dim)
{
    double sum = 0;
    for (int i = 0; i < dim; i++)
        sum += (double)v[i] * v[i];
    if (!(sum > 0))
        return -1;
    float inv = (float)(1.0 / sqrt(sum));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
    return 0;
}

int sl_cache_index_init(struct sl_cache_index *ix, int dim, size_t cap)
{
    memset(ix, 0, sizeof(*ix));
    if (dim <= 0 || dim > SL_CACHE_MAX_DIM)
        return -1;
    ix->dim = dim;
    ix->words = (dim + 63) / 64;
    ix->cap = cap;
    ix->vecs = malloc(cap * (size_t)dim * sizeof(float));
    ix->scopes = malloc(cap * sizeof(*ix->scopes));
    ix->keys = malloc(cap * sizeof(*ix->keys));
    ix->signs = malloc(cap * (size_t)ix->words * sizeof(*ix->signs));
    if (!ix->vecs || !ix->scopes || !ix->keys || !ix->signs) {
        sl_cache_index_release(ix);
        return -1;
    }
    return 0;
}

void sl_cache_index_release(struct sl_cache_index *ix)
{
    free(ix->vecs);
    free(ix->scopes);
    free(ix->keys);
    free(ix->signs);
    memset(ix, 0, sizeof(*ix));
}

static void put_at(struct sl_cache_index *ix, size_t i, const uint8_t *key, uint64_t scope,
                   const float *v)
{
    memmove(ix->vecs + i * (size_t)ix->dim, v, (size_t)ix->dim * sizeof(float));
    sl_cache_sign(ix->vecs + i * (size_t)ix->dim, ix->dim, ix->signs + i * (size_t)ix->words);
    ix->scopes[i] = scope;
    memmove(ix->keys[i], key, SL_CACHE_KEY_LEN);
}

int sl_cache_index_add(struct sl_cache_index *ix, const uint8_t *key, uint64_t scope,
                       const float *v, int dim)
{
    if (dim != ix->dim || !ix->cap)
        return -1;
    for (size_t i = 0; i < ix->n; i++) {
        if (ix->scopes[i] == scope && memcmp(ix->keys[i], key, SL_CACHE_KEY_LEN) == 0) {
            put_at(ix, i, key, scope, v);
            return 0;
        }
    }
    if (ix->n < ix->cap) {
        put_at(ix, ix->n++, key, scope, v);
        return 0;
    }
    put_at(ix, ix->next, key, scope, v); /* full: the oldest slot goes */
    ix->next = (ix->next + 1) % ix->cap;
    return 0;
}

long sl_cache_index_search(const struct sl_cache_index *ix, uint64_t scope, const float *q,
                           float *score)
{
    uint64_t qs[SL_CACHE_MAX_DIM / 64];
    uint32_t hist[SL_CACHE_MAX_DIM + 1] = {0};
    long best = -1;
    float best_score = -2.0f;
    int dim = ix->dim;
    uint16_t *dist = malloc((ix->n ? ix->n : 1) * sizeof(*dist)); /* per call: scans run side by side */
    if (!dist)
        return -1;
    sl_cache_sign(q, dim, qs);
#ifdef HAVE_AVX2_PATH
    if (use_avx2())
        hamming_avx2(ix, scope, qs, dist, hist);
    else
#endif
        hamming_portable(ix, scope, qs, dist, hist);
    /* The cut: the smallest distance at which SL_CACHE_RESCORE sketches of the scope are reached.
     * Every sketch nearer than it is scored again; of those at it, the first in slot
     * order until SL_CACHE_RESCORE in all. */
    uint32_t below = 0;
    int cut = 0;
    while (cut <= dim && below + hist[cut] < SL_CACHE_RESCORE) {
        below += hist[cut];
        cut++;
    }
    uint32_t at_cut = cut <= dim ? SL_CACHE_RESCORE - below : 0;
    const float *prev = NULL;
    long prev_i = -1;
    for (size_t i = 0; i < ix->n; i++) {
        if (dist[i] > cut || (dist[i] == cut && at_cut == 0))
            continue;
        if (dist[i] == cut)
            at_cut--;
        /* score the previous candidate while this one's first lines come in */
        const float *v = ix->vecs + i * (size_t)dim;
        __builtin_prefetch(v);
        __builtin_prefetch(v + 16);
        if (prev) {
            float s = sl_cache_dot(q, prev, dim);
            if (s > best_score) {
                best_score = s;
                best = prev_i;
            }
        }
        prev = v;
        prev_i = (long)i;
    }
    if (prev) {
        float s = sl_cache_dot(q, prev, dim);
        if (s > best_score) {
            best_score = s;
            best = prev_i;
        }
    }
    free(dist);
    *score = best_score;
    return best;
}

void sl_cache_index_remove(struct sl_cache_index *ix, size_t i)
{
    if (i >= ix->n)
        return;
    size_t last = --ix->n;
    if (i != last)
        put_at(ix, i, ix->keys[last], ix->scopes[last], ix->vecs + last * (size_t)ix->dim);
    if (ix->next > ix->n)
        ix->next = 0;
}
