/* Flat cosine scans over a knowledge base's vectors: float32 and int8, with a top-k
 * kept in a small min-heap. The AVX2 kernels are chosen at run time. */
#include "kb/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define SL_HAVE_X86 1
#endif

void sl_vec_normalise(float *v, int dim)
{
    double sum = 0;
    for (int i = 0; i < dim; i++)
        sum += (double)v[i] * v[i];
    if (sum <= 0)
        return;
    float inv = (float)(1.0 / sqrt(sum));
    for (int i = 0; i < dim; i++)
        v[i] *= inv;
}

static float dot_scalar(const float *a, const float *b, int dim)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= dim; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < dim; i++)
        s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static int32_t dot_q8_scalar(const int8_t *a, const int8_t *b, int dim)
{
    int32_t s = 0;
    for (int i = 0; i < dim; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

#ifdef SL_HAVE_X86
__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int dim)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= dim; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_hadd_ps(h, h);
    h = _mm_hadd_ps(h, h);
    float s = _mm_cvtss_f32(h);
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2"))) static int32_t dot_q8_avx2(const int8_t *a, const int8_t *b,
                                                           int dim)
{
    __m256i acc = _mm256_setzero_si256();
    int i = 0;
    for (; i + 16 <= dim; i += 16) {
        __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(x, y));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_hadd_epi32(h, h);
    h = _mm_hadd_epi32(h, h);
    int32_t s = _mm_cvtsi128_si32(h);
    for (; i < dim; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

static int have_avx2(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return cached;
}
#endif

float sl_vec_dot(const float *a, const float *b, int dim)
{
#ifdef SL_HAVE_X86
    if (have_avx2())
        return dot_avx2(a, b, dim);
#endif
    return dot_scalar(a, b, dim);
}

static int32_t dot_q8(const int8_t *a, const int8_t *b, int dim)
{
#ifdef SL_HAVE_X86
    if (have_avx2())
        return dot_q8_avx2(a, b, dim);
#endif
    return dot_q8_scalar(a, b, dim);
}

int sl_vec_quantise(struct sl_vec_index *ix)
{
    size_t total = ix->n * (size_t)ix->dim;
    free(ix->q8);
    ix->q8 = malloc(total ? total : 1);
    if (!ix->q8)
        return -1;
    for (size_t i = 0; i < total; i++) {
        float v = ix->f32[i] * 127.0f;
        ix->q8[i] = (int8_t)lrintf(v > 127 ? 127 : v < -127 ? -127 : v);
    }
    return 0;
}

int sl_vec_binarise(struct sl_vec_index *ix)
{
    ix->words = (ix->dim + 63) / 64;
    free(ix->bits);
    ix->bits = calloc(ix->n * (size_t)ix->words + 1, sizeof(uint64_t));
    if (!ix->bits)
        return -1;
    for (size_t i = 0; i < ix->n; i++)
        for (int d = 0; d < ix->dim; d++)
            if (ix->f32[i * (size_t)ix->dim + (size_t)d] > 0)
                ix->bits[i * (size_t)ix->words + (size_t)(d / 64)] |= 1ull << (d % 64);
    return 0;
}

#ifdef SL_HAVE_X86
__attribute__((target("popcnt"))) static int hamming_popcnt(const uint64_t *a, const uint64_t *b, int w)
{
    int h = 0;
    for (int i = 0; i < w; i++)
        h += __builtin_popcountll(a[i] ^ b[i]);
    return h;
}
#endif

static int hamming(const uint64_t *a, const uint64_t *b, int w)
{
#ifdef SL_HAVE_X86
    static int has = -1;
    if (has < 0)
        has = __builtin_cpu_supports("popcnt");
    if (has)
        return hamming_popcnt(a, b, w);
#endif
    int h = 0;
    for (int i = 0; i < w; i++)
        h += __builtin_popcountll(a[i] ^ b[i]);
    return h;
}

/* ---- top k: a min-heap on score, so the worst kept hit is at the root ---- */

struct heap {
    struct sl_vec_hit *h;
    size_t n, k;
};

static void sift_down(struct heap *hp, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < hp->n && hp->h[l].score < hp->h[m].score)
            m = l;
        if (r < hp->n && hp->h[r].score < hp->h[m].score)
            m = r;
        if (m == i)
            return;
        struct sl_vec_hit t = hp->h[i];
        hp->h[i] = hp->h[m];
        hp->h[m] = t;
        i = m;
    }
}

static void heap_push(struct heap *hp, float score, size_t row)
{
    if (hp->n < hp->k) {
        size_t i = hp->n++;
        hp->h[i] = (struct sl_vec_hit){.score = score, .row = row};
        while (i && hp->h[(i - 1) / 2].score > hp->h[i].score) {
            struct sl_vec_hit t = hp->h[i];
            hp->h[i] = hp->h[(i - 1) / 2];
            hp->h[(i - 1) / 2] = t;
            i = (i - 1) / 2;
        }
    } else if (score > hp->h[0].score) {
        hp->h[0] = (struct sl_vec_hit){.score = score, .row = row};
        sift_down(hp, 0);
    }
}

static int by_score_desc(const void *a, const void *b)
{
    const struct sl_vec_hit *x = a, *y = b;
    if (x->score != y->score)
        return x->score < y->score ? 1 : -1;
    return x->row < y->row ? -1 : x->row > y->row;
}

static size_t scan_f32(const struct sl_vec_index *ix, const float *q, struct heap *hp)
{
    for (size_t i = 0; i < ix->n; i++)
        heap_push(hp, sl_vec_dot(ix->f32 + i * (size_t)ix->dim, q, ix->dim), i);
    return hp->n;
}

size_t sl_vec_search(const struct sl_vec_index *ix, const float *q, size_t k,
                     struct sl_vec_hit *out)
{
    if (k == 0 || ix->n == 0)
        return 0;
    size_t wide = ix->bits ? SL_VEC_BINARY_KEEP(k) : ix->q8 ? k * 4 : k;
    struct heap hp = {malloc(wide * sizeof(struct sl_vec_hit)), 0, wide};
    if (!hp.h)
        return 0;
    if (ix->bits) {
        uint64_t *qb = calloc((size_t)ix->words, sizeof(uint64_t));
        if (!qb) {
            free(hp.h);
            return 0;
        }
        for (int d = 0; d < ix->dim; d++)
            if (q[d] > 0)
                qb[d / 64] |= 1ull << (d % 64);
        for (size_t i = 0; i < ix->n; i++) /* fewer differing signs is nearer */
            heap_push(&hp, (float)-hamming(ix->bits + i * (size_t)ix->words, qb, ix->words), i);
        free(qb);
        for (size_t i = 0; i < hp.n; i++)
            hp.h[i].score = sl_vec_dot(ix->f32 + hp.h[i].row * (size_t)ix->dim, q, ix->dim);
    } else if (!ix->q8) {
        scan_f32(ix, q, &hp);
    } else {
        int8_t *qq = malloc((size_t)ix->dim);
        if (!qq) {
            free(hp.h);
            return 0;
        }
        for (int d = 0; d < ix->dim; d++)
            qq[d] = (int8_t)lrintf(q[d] * 127.0f);
        for (size_t i = 0; i < ix->n; i++)
            heap_push(&hp, (float)dot_q8(ix->q8 + i * (size_t)ix->dim, qq, ix->dim), i);
        free(qq);
        for (size_t i = 0; i < hp.n; i++) /* exact scores for the shortlist */
            hp.h[i].score = sl_vec_dot(ix->f32 + hp.h[i].row * (size_t)ix->dim, q, ix->dim);
    }
    qsort(hp.h, hp.n, sizeof(*hp.h), by_score_desc);
    size_t m = hp.n < k ? hp.n : k;
    for (size_t i = 0; i < m; i++) {
        out[i] = hp.h[i];
        out[i].id = ix->ids ? ix->ids[hp.h[i].row] : (int64_t)hp.h[i].row;
    }
    free(hp.h);
    return m;
}

void sl_vec_index_release(struct sl_vec_index *ix)
{
    free(ix->f32);
    free(ix->q8);
    free(ix->bits);
    free(ix->ids);
    memset(ix, 0, sizeof(*ix));
}
