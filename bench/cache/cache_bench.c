/* cache_bench: the response cache's in-process costs, without HTTP.
 *   exact:    sl_cache_key over a typical chat request, and sl_cache_get of a ~1 KB answer
 *             from the memory backend holding N entries (per operation, p50 and p99);
 *   semantic: sl_cache_semantic_find over N vectors of DIM dimensions, all in the query's
 *             scope (the worst case: nothing is skipped), per query;
 *   memory:   heap bytes per exact entry (beyond its value) and per semantic vector.
 * Times are this thread's CPU time (what the work costs, without the waits of a shared
 * machine), and for the scan also wall-clock time; the floor is one plain pass reading as
 * many bytes as the scan's first stage (the sign sketches) does. Lines: p50, p99 and max in microseconds.
 *   clustered: the same scan over vectors shaped like paraphrase embeddings (clustered(),
 *             below), timed, and its recall against a plain float32 scan for CHECKED queries;
 *             then timed again with the vectors spread over 100 scopes.
 * Usage: cache_bench [N=100000] [DIM=256] [QUERIES=2000] [CHECKED=200] */
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache/cache.h"
#include "cache/index.h"

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

/* This thread's CPU time: what the scan costs, without the waits a shared machine adds. */
static double cpu_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp);
    printf("%-34s p50 %8.2f us   p99 %8.2f us   max %8.2f us\n", what, v[n / 2],
           v[(int)(n * 0.99)], v[n - 1]);
}

static size_t heap_used(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

static uint64_t rnd_state = 88172645463325252ull;
static float rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (float)(rnd_state >> 40) / (float)(1 << 24) - 0.5f;
}

static void exact(int n, int queries)
{
    static const char req_json[] =
        "{\"model\":\"chat\",\"temperature\":0,\"max_tokens\":256,\"messages\":["
        "{\"role\":\"system\",\"content\":\"You are a concise assistant. Answer in one short "
        "paragraph and do not add any preamble.\"},{\"role\":\"user\",\"content\":\"Summarise "
        "what an HTTP reverse proxy does, and why keep-alive connections to the upstream "
        "matter. Question %d.\"}]}";
    char value[1024], body[1024];
    memset(value, 'x', sizeof(value));
    struct sl_cache_cfg cfg = {.max_bytes = (size_t)4 << 30, .max_stale_ms = 1000,
                               .semantic_max_entries = 1};
    char err[128];
    size_t before = heap_used();
    struct sl_cache *c = sl_cache_new(&cfg, NULL, err, sizeof(err));
    uint8_t key[SL_CACHE_KEY_LEN];
    cJSON **reqs = malloc((size_t)queries * sizeof(*reqs));
    for (int i = 0; i < n; i++) {
        snprintf(body, sizeof(body), req_json, i);
        cJSON *r = cJSON_Parse(body);
        sl_cache_key(r, "chat", "key_0123456789abcdef", key);
        cJSON_Delete(r);
        struct sl_cache_entry e = {.value = value, .len = sizeof(value),
                                   .created_ms = 1, .expires_ms = (int64_t)1 << 60};
        sl_cache_put(c, key, &e);
    }
    size_t after = heap_used();
    size_t entries, bytes, vectors;
    sl_cache_stats(c, &entries, &bytes, &vectors);
    printf("exact: %d entries of %zu-byte answers: heap %.1f MiB, %.0f bytes per entry beyond "
           "the answer (backend counts %zu)\n",
           n, sizeof(value), (double)(after - before) / (1 << 20),
           (double)(after - before) / n - (double)sizeof(value), sl_cache_memory_overhead());
    for (int i = 0; i < queries; i++) {
        snprintf(body, sizeof(body), req_json, (int)((unsigned)i * 7919u % (unsigned)n));
        reqs[i] = cJSON_Parse(body);
    }
    double *t_key = malloc((size_t)queries * sizeof(double));
    double *t_get = malloc((size_t)queries * sizeof(double));
    for (int i = 0; i < queries; i++) {
        struct sl_cache_entry e;
        double t0 = cpu_us();
        sl_cache_key(reqs[i], "chat", "key_0123456789abcdef", key);
        double t1 = cpu_us();
        int r = sl_cache_get(c, key, 2, 0, &e);
        double t2 = cpu_us();
        if (r != 0) {
            fprintf(stderr, "exact: query %d missed\n", i);
            exit(1);
        }
        free(e.value);
        t_key[i] = t1 - t0;
        t_get[i] = t2 - t1;
    }
    report("exact: key, SHA-256 (cpu)", t_key, queries);
    report("exact: get, memory backend (cpu)", t_get, queries);
    for (int i = 0; i < queries; i++)
        cJSON_Delete(reqs[i]);
    free(reqs);
    free(t_key);
    free(t_get);
    sl_cache_free(c);
}

static void semantic(int n, int dim, int queries)
{
    struct sl_cache_cfg cfg = {.max_bytes = 1 << 20, .max_stale_ms = 1000,
                               .semantic_max_entries = n};
    char err[128], label[64];
    struct sl_cache *c = sl_cache_new(&cfg, NULL, err, sizeof(err));
    float *v = malloc((size_t)dim * sizeof(float));
    uint8_t key[SL_CACHE_KEY_LEN] = {0}, found[SL_CACHE_KEY_LEN];
    size_t before = heap_used();
    for (int i = 0; i < n; i++) {
        for (int d = 0; d < dim; d++)
            v[d] = rnd();
        sl_cache_normalise(v, dim);
        memcpy(key, &i, sizeof(i));
        sl_cache_semantic_add(c, 42, v, dim, key);
    }
    size_t after = heap_used();
    double *t = malloc((size_t)queries * sizeof(double));
    double *tc = malloc((size_t)queries * sizeof(double));
    for (int i = 0; i < queries; i++) {
        for (int d = 0; d < dim; d++)
            v[d] = rnd();
        sl_cache_normalise(v, dim);
        float score;
        double c0 = cpu_us(), t0 = now_us();
        sl_cache_semantic_find(c, 42, v, dim, 0.95, found, &score);
        t[i] = now_us() - t0;
        tc[i] = cpu_us() - c0;
    }
    /* The floor of the first stage: one pass reading as many bytes as its sign sketches. */
    size_t words = (size_t)n * (size_t)((dim + 63) / 64);
    uint64_t *block = malloc(words * sizeof(uint64_t));
    double *floor_t = malloc(50 * sizeof(double));
    for (size_t w = 0; w < words; w++)
        block[w] = w * 0x9E3779B97F4A7C15ull;
    for (int r = 0; r < 50; r++) {
        volatile uint64_t sink;
        uint64_t acc = 0;
        double t0 = cpu_us();
        for (size_t w = 0; w < words; w++)
            acc += block[w];
        sink = acc;
        (void)sink;
        floor_t[r] = cpu_us() - t0;
    }
    snprintf(label, sizeof(label), "floor: read %.1f MB (cpu)", (double)words * 8 / 1e6);
    report(label, floor_t, 50);
    free(block);
    free(floor_t);
    printf("semantic: %d vectors of %d dimensions: %.1f MiB, %.0f bytes per vector\n", n, dim,
           (double)(after - before) / (1 << 20), (double)(after - before) / n);
    snprintf(label, sizeof(label), "semantic: scan %dk x %d (wall)", n / 1000, dim);
    report(label, t, queries);
    snprintf(label, sizeof(label), "semantic: scan %dk x %d (cpu)", n / 1000, dim);
    report(label, tc, queries);
    free(t);
    free(tc);
    free(v);
    sl_cache_free(c);
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* The Hamming distance between q's sign sketch and slot k's. */
static int sketch_distance(const struct sl_cache_index *ix, const float *q, size_t k)
{
    uint64_t qs[SL_CACHE_MAX_DIM / 64];
    int d = 0;
    sl_cache_sign(q, ix->dim, qs);
    for (int w = 0; w < ix->words; w++)
        d += __builtin_popcountll(qs[w] ^ ix->signs[k * (size_t)ix->words + w]);
    return d;
}

/* A standard normal value (Box-Muller over rnd). */
static float gauss(void)
{
    float u = rnd() + 0.5f, v = rnd() + 0.5f;
    if (u < 1e-7f)
        u = 1e-7f;
    return sqrtf(-2.0f * logf(u)) * cosf(6.2831853f * v);
}

/* out = normalise(base + s * g), g a random vector of length about 1. */
static void perturb(const float *base, float s, float *out, int dim)
{
    float sd = s / sqrtf((float)dim);
    for (int d = 0; d < dim; d++)
        out[d] = (base ? base[d] : 0) + sd * gauss();
    sl_cache_normalise(out, dim);
}

/* Vectors shaped like paraphrase embeddings: every vector leans towards one common
 * direction (as real embedding spaces do: unrelated texts score 0.2-0.4), topics are
 * clusters of very uneven size (the largest holds ~2% of the entries), a member lies
 * 0.74-0.97 from its topic's centre, and three in ten are near-duplicates (0.99) of the
 * topic's previous member. A query is a paraphrase of a stored vector: 0.89-0.999 from
 * it. The scan's result is checked against a plain float32 scan of every vector: the
 * recall line counts the queries whose best match is at least 0.9 and how many of them
 * the scan found exactly. */
static void clustered(int n, int dim, int queries, int checked)
{
    int nclusters = n / 50 > 1 ? n / 50 : 1;
    float *centres = malloc((size_t)nclusters * (size_t)dim * sizeof(float));
    float *mean = malloc((size_t)dim * sizeof(float)), *g = malloc((size_t)dim * sizeof(float));
    long *last = malloc((size_t)nclusters * sizeof(long));
    struct sl_cache_index ix;
    uint8_t key[SL_CACHE_KEY_LEN] = {0};
    char label[80];
    if (!centres || !mean || !g || !last || sl_cache_index_init(&ix, dim, (size_t)n) != 0) {
        fprintf(stderr, "clustered: out of memory\n");
        exit(1);
    }
    perturb(NULL, 1.0f, mean, dim);
    for (int c = 0; c < nclusters; c++) {
        perturb(NULL, 1.0f, g, dim);
        for (int d = 0; d < dim; d++)
            g[d] += 0.6f * mean[d];
        sl_cache_normalise(g, dim);
        memcpy(centres + (size_t)c * dim, g, (size_t)dim * sizeof(float));
        last[c] = -1;
    }
    for (int i = 0; i < n; i++) {
        float u = rnd() + 0.5f;
        int c = (int)((float)nclusters * u * u);
        c = c < nclusters ? c : nclusters - 1;
        if (last[c] >= 0 && rnd() < -0.2f) /* 3 in 10 */
            perturb(ix.vecs + (size_t)last[c] * dim, 0.14f, g, dim);
        else
            perturb(centres + (size_t)c * dim, 0.25f + 0.65f * (rnd() + 0.5f), g, dim);
        memcpy(key, &i, sizeof(i));
        sl_cache_index_add(&ix, key, 42, g, dim);
        last[c] = i;
    }
    double *t = malloc((size_t)queries * sizeof(double));
    double *tc = malloc((size_t)queries * sizeof(double));
    int above = 0, found = 0, *ranks = malloc((size_t)(checked > 0 ? checked : 1) * sizeof(int));
    float worst_missed = 0;
    for (int i = 0; i < queries; i++) {
        int j = (int)((rnd() + 0.5f) * (float)n) % n;
        perturb(ix.vecs + (size_t)j * dim, 0.05f + 0.45f * (rnd() + 0.5f), g, dim);
        float score;
        double c0 = cpu_us(), t0 = now_us();
        long got = sl_cache_index_search(&ix, 42, g, &score);
        t[i] = now_us() - t0;
        tc[i] = cpu_us() - c0;
        if (i >= checked)
            continue;
        float want = -2;
        size_t best = 0;
        for (size_t k = 0; k < ix.n; k++) {
            float s = sl_cache_dot(g, ix.vecs + k * (size_t)dim, dim);
            if (s > want) {
                want = s;
                best = k;
            }
        }
        if (want >= 0.9f) {
            /* the best match's rank by sketch distance: how many sketches are nearer */
            int r = 0, db = sketch_distance(&ix, g, best);
            for (size_t k = 0; k < ix.n; k++)
                r += sketch_distance(&ix, g, k) < db;
            ranks[above] = r;
            above++;
            if (got >= 0 && score == want)
                found++;
            else if (want > worst_missed)
                worst_missed = want;
        }
    }
    qsort(ranks, (size_t)above, sizeof(*ranks), cmp_int);
    if (above)
        printf("clustered: the best match's rank by sketch distance: p50 %d, p99 %d, max %d "
               "(%d are scored in float32)\n", ranks[above / 2], ranks[(int)(above * 0.99)],
               ranks[above - 1], SL_CACHE_RESCORE);
    printf("clustered: %d x %d: recall of the best match >= 0.9: %d of %d queries (%.2f%%)",
           n, dim, found, above, above ? 100.0 * found / above : 100.0);
    if (found < above)
        printf(", highest missed %.4f", worst_missed);
    printf("\n");
    snprintf(label, sizeof(label), "clustered: scan %dk x %d (wall)", n / 1000, dim);
    report(label, t, queries);
    snprintf(label, sizeof(label), "clustered: scan %dk x %d (cpu)", n / 1000, dim);
    report(label, tc, queries);
    /* the same vectors spread over 100 scopes: a lookup's scope holds a hundredth */
    for (size_t k = 0; k < ix.n; k++)
        ix.scopes[k] = 42 + k % 100;
    for (int i = 0; i < queries; i++) {
        perturb(ix.vecs + (size_t)((int)((rnd() + 0.5f) * (float)n) % n) * dim, 0.2f, g, dim);
        float score;
        double c0 = cpu_us();
        sl_cache_index_search(&ix, 42, g, &score);
        tc[i] = cpu_us() - c0;
    }
    snprintf(label, sizeof(label), "clustered: 1 of 100 scopes (cpu)");
    report(label, tc, queries);
    sl_cache_index_release(&ix);
    free(t);
    free(tc);
    free(centres);
    free(mean);
    free(g);
    free(last);
    free(ranks);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 100000;
    int dim = argc > 2 ? atoi(argv[2]) : 256;
    int queries = argc > 3 ? atoi(argv[3]) : 2000;
    int checked = argc > 4 ? atoi(argv[4]) : 200;
    printf("dot product: %s\n", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
                                    ? "AVX2 + FMA" : "portable (SSE by the compiler)");
    exact(n, queries);
    semantic(n, dim, queries);
    clustered(n, dim, queries, checked);
    return 0;
}
