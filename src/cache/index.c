/* The semantic index's flat scan. Vectors are float32, contiguous and of length 1, so
 * a cosine is one dot product; the dot product uses AVX2 and FMA when the CPU has
 * them (checked once) and otherwise a loop of eight independent sums, which the
 * compiler turns into SSE without needing -ffast-math. */
#include "cache/index.h"

#include <math.h>
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

#ifdef HAVE_AVX2_PATH
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

static int use_avx2(void)
{
    static int known = -1; /* a benign race: every thread computes the same answer */
    if (known < 0) {
        __builtin_cpu_init();
        known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return known;
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
    ix->dim = dim;
    ix->cap = cap;
    ix->vecs = malloc(cap * (size_t)dim * sizeof(float));
    ix->scopes = malloc(cap * sizeof(*ix->scopes));
    ix->keys = malloc(cap * sizeof(*ix->keys));
    if (!ix->vecs || !ix->scopes || !ix->keys) {
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
    memset(ix, 0, sizeof(*ix));
}

static void put_at(struct sl_cache_index *ix, size_t i, const uint8_t *key, uint64_t scope,
                   const float *v)
{
    memcpy(ix->vecs + i * (size_t)ix->dim, v, (size_t)ix->dim * sizeof(float));
    ix->scopes[i] = scope;
    memcpy(ix->keys[i], key, SL_CACHE_KEY_LEN);
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
    long best = -1;
    float best_score = -2.0f;
    const float *v = ix->vecs;
    for (size_t i = 0; i < ix->n; i++, v += ix->dim) {
        if (ix->scopes[i] != scope)
            continue;
        float s = sl_cache_dot(q, v, ix->dim);
        if (s > best_score) {
            best_score = s;
            best = (long)i;
        }
    }
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
