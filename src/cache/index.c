/* The semantic index's flat scan. Vectors are float32, contiguous and of length 1, so
 * a cosine is one dot product. A scan of 100,000 vectors of 256 floats streams 100 MB
 * from memory, which alone takes longer than the lookup may; so the scan reads a 4-bit
 * copy (an eighth of that) to rank, then scores the best TOP in float32. The dot
 * products use AVX2 (and FMA) when the CPU has them, checked once; otherwise loops
 * of independent sums that the compiler vectorises without -ffast-math. */
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

/* The 4-bit layout: each block of 32 values is 16 bytes; byte j holds value j in its
 * low nibble and value j + 16 in its high one, each as round(v * scale) + 8 (1..15). */
static int32_t dot4u_portable(const uint8_t *c, const int8_t *q, int n)
{
    int32_t s = 0;
    for (int blk = 0; blk < n; blk += 32, c += 16, q += 32)
        for (int j = 0; j < 16; j++)
            s += (c[j] & 15) * q[j] + (c[j] >> 4) * q[j + 16];
    return s;
}

/* First-stage sums of every vector in scope against qc (the +8 offset still in);
 * INT32_MIN for the others. */
static void raw4_portable(const struct sl_cache_index *ix, uint64_t scope, const int8_t *qc,
                          int32_t *out)
{
    const uint8_t *c = ix->codes;
    for (size_t i = 0; i < ix->n; i++, c += ix->cdim / 2)
        out[i] = ix->scopes[i] == scope ? dot4u_portable(c, qc, ix->cdim) : INT32_MIN;
}

#define TOP 16 /* candidates of the 4-bit stage scored again in float32 */

#ifdef HAVE_AVX2_PATH
__attribute__((target("avx2"))) static inline int32_t dot4u_avx2(const uint8_t *c,
                                                                  const int8_t *q, int n)
{
    const __m128i low = _mm_set1_epi8(15);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    for (int blk = 0; blk < n; blk += 32, c += 16, q += 32) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)c);
        __m128i lo = _mm_and_si128(x, low), hi = _mm_and_si128(_mm_srli_epi16(x, 4), low);
        __m256i u = _mm256_set_m128i(hi, lo);
        __m256i y = _mm256_loadu_si256((const __m256i *)(const void *)q);
        /* unsigned nibbles x signed query bytes, summed in pairs to int16 (at most
         * 2 * 15 * 128: no saturation), then in pairs to int32 */
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, y), ones));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    return _mm_cvtsi128_si32(h);
}

__attribute__((target("avx2"))) static void raw4_avx2(const struct sl_cache_index *ix,
                                                      uint64_t scope, const int8_t *qc,
                                                      int32_t *out)
{
    const uint8_t *c = ix->codes;
    for (size_t i = 0; i < ix->n; i++, c += ix->cdim / 2)
        out[i] = ix->scopes[i] == scope ? dot4u_avx2(c, qc, ix->cdim) : INT32_MIN;
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

static int32_t qsum(const int8_t *q, int n)
{
    int32_t s = 0;
    for (int i = 0; i < n; i++)
        s += q[i];
    return s;
}

int32_t sl_cache_dot4(const uint8_t *codes, const int8_t *q, int n)
{
#ifdef HAVE_AVX2_PATH
    if (use_avx2())
        return dot4u_avx2(codes, q, n) - 8 * qsum(q, n);
#endif
    return dot4u_portable(codes, q, n) - 8 * qsum(q, n);
}

static float scale_for(const float *v, int dim, float top)
{
    float max = 0;
    for (int i = 0; i < dim; i++)
        max = fabsf(v[i]) > max ? fabsf(v[i]) : max;
    return max > 0 ? top / max : 1.0f;
}

void sl_cache_pack4(const float *v, int n, float scale, uint8_t *out)
{
    for (int blk = 0; blk < n; blk += 32, v += 32, out += 16)
        for (int j = 0; j < 16; j++)
            out[j] = (uint8_t)((lrintf(v[j] * scale) + 8) | ((lrintf(v[j + 16] * scale) + 8) << 4));
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
    ix->cdim = (dim + 31) / 32 * 32;
    ix->cap = cap;
    ix->vecs = malloc(cap * (size_t)dim * sizeof(float));
    ix->scopes = malloc(cap * sizeof(*ix->scopes));
    ix->keys = malloc(cap * sizeof(*ix->keys));
    ix->codes = malloc(cap * (size_t)ix->cdim / 2);
    ix->scales = malloc(cap * sizeof(*ix->scales));
    if (!ix->vecs || !ix->scopes || !ix->keys || !ix->codes || !ix->scales) {
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
    free(ix->codes);
    free(ix->scales);
    memset(ix, 0, sizeof(*ix));
}

/* v padded with zeros to cdim values, for the 4-bit stage. */
static float *padded(const struct sl_cache_index *ix, const float *v)
{
    float *p = calloc((size_t)ix->cdim, sizeof(float));
    if (p)
        memcpy(p, v, (size_t)ix->dim * sizeof(float));
    return p;
}

static void put_at(struct sl_cache_index *ix, size_t i, const uint8_t *key, uint64_t scope,
                   const float *v)
{
    float *p = padded(ix, v);
    memmove(ix->vecs + i * (size_t)ix->dim, v, (size_t)ix->dim * sizeof(float));
    ix->scales[i] = scale_for(v, ix->dim, 7.0f);
    if (p)
        sl_cache_pack4(p, ix->cdim, ix->scales[i], ix->codes + i * (size_t)ix->cdim / 2);
    else
        ix->scales[i] = 0; /* out of memory: never a first-stage candidate */
    free(p);
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

/* Keeps the TOP best first-stage scores, best first. */
static void keep(long *top, float *score, int *n, long i, float s)
{
    int at;
    if (*n < TOP)
        at = (*n)++;
    else if (s <= score[TOP - 1])
        return;
    else
        at = TOP - 1;
    while (at > 0 && score[at - 1] < s) {
        top[at] = top[at - 1];
        score[at] = score[at - 1];
        at--;
    }
    top[at] = i;
    score[at] = s;
}

long sl_cache_index_search(const struct sl_cache_index *ix, uint64_t scope, const float *q,
                           float *score)
{
    long top[TOP], best = -1;
    float approx[TOP], best_score = -2.0f;
    int ntop = 0, dim = ix->dim;
    int8_t *qc = calloc((size_t)ix->cdim, 1);
    int32_t *raw = malloc((ix->n ? ix->n : 1) * sizeof(*raw)); /* per call: scans run side by side */
    if (!qc || !raw) {
        free(qc);
        free(raw);
        return -1;
    }
    float qs = scale_for(q, dim, 127.0f);
    for (int i = 0; i < dim; i++)
        qc[i] = (int8_t)lrintf(q[i] * qs);
#ifdef HAVE_AVX2_PATH
    if (use_avx2())
        raw4_avx2(ix, scope, qc, raw);
    else
#endif
        raw4_portable(ix, scope, qc, raw);
    int32_t bias = 8 * qsum(qc, ix->cdim);
    for (size_t i = 0; i < ix->n; i++) {
        if (raw[i] == INT32_MIN || ix->scales[i] == 0)
            continue;
        float s = (float)(raw[i] - bias) / (qs * ix->scales[i]);
        if (ntop < TOP || s > approx[ntop - 1])
            keep(top, approx, &ntop, (long)i, s);
    }
    free(qc);
    free(raw);
    for (int k = 0; k < ntop; k++) {
        float s = sl_cache_dot(q, ix->vecs + (size_t)top[k] * (size_t)dim, dim);
        if (s > best_score) {
            best_score = s;
            best = top[k];
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
