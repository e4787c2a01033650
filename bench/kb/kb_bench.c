/* Knowledge-base stage 1 without its embedding call, on one thread: the flat vector scan
 * (float32, and int8 with a float32 rescore) over N chunks of DIM dimensions, BM25 over
 * FTS5 with the same N chunks, and fusion + reading the 50 candidates back. Also the
 * store's insert rate for chunks with their terms, the index load rate, and memory per
 * chunk. Prints markdown. Knobs (environment): N=100000 DIM=1024 QUERIES=300 DB=path. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "kb/kb.h"
#include "kb/lexical.h"
#include "kb/rank.h"
#include "kb/retrieve.h"
#include "kb/store.h"
#include "kb/vec.h"

#define K 50

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    if (f)
        fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static float frand(void)
{
    return (float)((next() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *what, double *ms, int n)
{
    qsort(ms, (size_t)n, sizeof(double), cmp);
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += ms[i];
    printf("| %s | %.2f | %.2f | %.2f | %.2f |\n", what, ms[n / 2], ms[(int)(n * 0.99)], sum / n, ms[n - 1]);
}

/* A Zipf-distributed vocabulary of VOCAB synthetic words, half Latin and half CJK
 * bigram pairs, so that term frequencies look like a real corpus's. */
#define VOCAB 30000
static char vocab[VOCAB][16];
static double zipf_cdf[VOCAB];

static void make_vocab(void)
{
    static const char *const han[] = {"合", "同", "付", "款", "违", "约", "责", "任", "期", "限", "租",
                                      "金", "押", "服", "务", "保", "密", "数", "据", "软", "件", "包"};
    double sum = 0;
    for (int i = 0; i < VOCAB; i++) {
        if (i % 2)
            snprintf(vocab[i], sizeof(vocab[i]), "%s%s", han[(i / 2) % 22], han[(i / 44) % 22]);
        else
            snprintf(vocab[i], sizeof(vocab[i]), "w%xq%x", i * 7919 % 65521, i);
        sum += 1.0 / (i + 1);
        zipf_cdf[i] = sum;
    }
    for (int i = 0; i < VOCAB; i++)
        zipf_cdf[i] /= sum;
}

static const char *word(void)
{
    double u = (double)(next() >> 11) / 9007199254740992.0;
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return vocab[lo];
}

static void text_of(char *out, size_t cap, int nwords)
{
    size_t n = 0;
    for (int i = 0; i < nwords && n + 32 < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%s", word(), i % 9 == 8 ? "。" : " ");
}

int main(void)
{
    size_t n = getenv("N") ? (size_t)atol(getenv("N")) : 100000;
    int dim = getenv("DIM") ? atoi(getenv("DIM")) : 1024;
    int nq = getenv("QUERIES") ? atoi(getenv("QUERIES")) : 300;
    const char *db_path = getenv("DB") ? getenv("DB") : "/tmp/sluice-kb-bench.db";
    char url[512], err[512];
    make_vocab();
    printf("N = %zu chunks, %d dimensions, %d queries, k = %d, one thread\n\n", n, dim, nq, K);

    /* ---- vectors ---- */
    long rss0 = rss_kb();
    struct sl_vec_index ix = {.dim = dim, .n = n};
    ix.f32 = malloc(n * (size_t)dim * sizeof(float));
    ix.ids = malloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
        for (int d = 0; d < dim; d++)
            ix.f32[i * (size_t)dim + (size_t)d] = frand();
        sl_vec_normalise(ix.f32 + i * (size_t)dim, dim);
        ix.ids[i] = (int64_t)i + 1;
    }
    long rss1 = rss_kb();
    float *qs = malloc((size_t)nq * (size_t)dim * sizeof(float));
    for (int q = 0; q < nq; q++) { /* near a random row, as a real question is near its passage */
        size_t r = next() % n;
        for (int d = 0; d < dim; d++)
            qs[(size_t)q * (size_t)dim + (size_t)d] = ix.f32[r * (size_t)dim + (size_t)d] + 0.5f * frand() / 32;
        sl_vec_normalise(qs + (size_t)q * (size_t)dim, dim);
    }
    double *ms = malloc((size_t)nq * sizeof(double)), *ms8 = malloc((size_t)nq * sizeof(double));
    struct sl_vec_hit hits[K], hits8[K];
    int64_t (*top32)[K] = malloc((size_t)nq * sizeof(*top32));
    for (int q = 0; q < nq; q++) {
        double t0 = now_ms();
        sl_vec_search(&ix, qs + (size_t)q * (size_t)dim, K, hits);
        ms[q] = now_ms() - t0;
        for (int i = 0; i < K; i++)
            top32[q][i] = hits[i].id;
    }
    double tq = now_ms();
    sl_vec_quantise(&ix);
    double quantise_ms = now_ms() - tq;
    long rss2 = rss_kb();
    double overlap = 0;
    for (int q = 0; q < nq; q++) {
        double t0 = now_ms();
        sl_vec_search(&ix, qs + (size_t)q * (size_t)dim, K, hits8);
        ms8[q] = now_ms() - t0;
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
                overlap += hits8[i].id == top32[q][j];
    }
    free(ix.q8);
    ix.q8 = NULL;
    double tb = now_ms();
    sl_vec_binarise(&ix);
    double binarise_ms = now_ms() - tb;
    long rss3 = rss_kb();
    double *msb = malloc((size_t)nq * sizeof(double)), overlap_b = 0;
    int first_b = 0;
    for (int q = 0; q < nq; q++) {
        double t0 = now_ms();
        sl_vec_search(&ix, qs + (size_t)q * (size_t)dim, K, hits8);
        msb[q] = now_ms() - t0;
        first_b += hits8[0].id == top32[q][0];
        for (int i = 0; i < K; i++)
            for (int j = 0; j < K; j++)
                overlap_b += hits8[i].id == top32[q][j];
    }
    printf("| stage 1 part | p50 ms | p99 ms | mean ms | max ms |\n|---|---|---|---|---|\n");
    report("vector scan, float32 (exact)", ms, nq);
    report("vector scan, int8 + float32 rescore of 4k", ms8, nq);
    report("vector scan, sign bits + float32 rescore of 2000 (the index's mode at >= 20k rows)", msb, nq);
    free(msb);

    /* ---- FTS5 and the store ---- */
    unlink(db_path);
    snprintf(url, sizeof(url), "sqlite://%s", db_path);
    char wal[600], shm[600];
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    snprintf(shm, sizeof(shm), "%s-shm", db_path);
    unlink(wal);
    unlink(shm);
    sqlite3 *db;
    if (sl_kbs_open(url, &db, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    struct sl_kb kb = {.recall_k = K, .top_k = 5, .context_tokens = 3000};
    snprintf(kb.name, sizeof(kb.name), "bench");
    snprintf(kb.embed_model, sizeof(kb.embed_model), "bench-embed");
    snprintf(kb.answer_model, sizeof(kb.answer_model), "bench-answer");
    snprintf(kb.profile, sizeof(kb.profile), "auto");
    struct sl_kb_doc doc = {.bytes = 1, .chunks = (int64_t)n};
    snprintf(doc.name, sizeof(doc.name), "corpus");
    snprintf(doc.type, sizeof(doc.type), "text");
    snprintf(doc.profile, sizeof(doc.profile), "default");
    if (sl_kbs_create(db, &kb, err, sizeof(err)) || sl_kbs_begin(db) ||
        sl_kbs_doc_insert(db, kb.id, &doc, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char text[4096];
    double t0 = now_ms();
    for (size_t i = 0; i < n; i++) {
        text_of(text, sizeof(text), 120);
        struct sl_kb_chunk_row row = {.ordinal = (int)i, .heading = "Section", .text = text,
                                      .text_len = strlen(text), .hash = "x"};
        int64_t id;
        if (sl_kbs_chunk_insert(db, kb.id, doc.id, &row, &id, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    sl_kbs_commit(db);
    double insert_ms = now_ms() - t0;
    int64_t *ids = malloc(K * sizeof(int64_t)), bm25_hits = 0;
    double *scores = malloc(K * sizeof(double));
    for (int q = 0; q < nq; q++) {
        char question[256];
        text_of(question, sizeof(question), 4);
        double t1 = now_ms();
        int got = sl_kb_bm25(db, &kb, question, K, ids, scores, err, sizeof(err));
        ms[q] = now_ms() - t1;
        bm25_hits += got > 0 ? got : 0;
        /* fusion with the vector list and reading the candidates back */
        struct sl_arena *a = sl_arena_new();
        struct sl_kb_hit fused[2 * K];
        int64_t vids[K];
        double vs[K];
        for (int i = 0; i < K; i++) {
            vids[i] = (int64_t)(next() % n) + 1;
            vs[i] = 0.5;
        }
        double t2 = now_ms();
        size_t m = sl_kb_rrf(vids, vs, K, ids, scores, got > 0 ? (size_t)got : 0, fused, K);
        for (size_t i = 0; i < m; i++)
            sl_kbs_chunk_fill(db, &fused[i], a, err, sizeof(err));
        ms8[q] = now_ms() - t2;
        sl_arena_free(a);
    }
    report("BM25 (FTS5 over CJK bigrams and words, common terms dropped), top 50", ms, nq);
    report("RRF fusion + reading 50 chunks back", ms8, nq);

    /* ---- loading vectors from the store (a sample) ---- */
    size_t nl = n < 20000 ? n : 20000;
    sl_kbs_begin(db);
    for (size_t i = 0; i < nl; i++)
        sl_kbs_vector_put(db, kb.id, (int64_t)i + 1, kb.embed_model, ix.f32 + i * (size_t)dim, dim, err, sizeof(err));
    sl_kbs_commit(db);
    struct sl_vec_index loaded;
    double t3 = now_ms();
    sl_kbs_load_index(db, kb.id, kb.embed_model, dim, &loaded, err, sizeof(err));
    double load_ms = now_ms() - t3;
    printf("\n| other | figure |\n|---|---|\n");
    printf("| chunk + FTS5 terms insert | %.0f chunks/s (%zu in %.1f s, one transaction) |\n",
           (double)n / (insert_ms / 1000), n, insert_ms / 1000);
    printf("| index load from SQLite | %.0f vectors/s (%zu in %.0f ms) |\n", (double)loaded.n / (load_ms / 1000),
           loaded.n, load_ms);
    printf("| BM25 hits per query (of 50) | %.1f |\n", (double)bm25_hits / nq);
    printf("| int8 copy build | %.0f ms |\n", quantise_ms);
    printf("| memory per chunk, float32 index | %zu bytes (vector %d + id 8); RSS grew %.0f bytes/chunk |\n",
           (size_t)dim * 4 + 8, dim * 4, (double)(rss1 - rss0) * 1024 / (double)n);
    printf("| memory per chunk, int8 copy | +%d bytes; RSS grew %.0f bytes/chunk |\n", dim,
           (double)(rss2 - rss1) * 1024 / (double)n);
    printf("| int8 top-50 agreement with float32 | %.1f%% |\n", 100.0 * overlap / ((double)nq * K));
    printf("| sign-bit copy build | %.0f ms; +%d bytes per chunk; RSS grew %.0f bytes/chunk |\n", binarise_ms,
           (dim + 63) / 64 * 8, (double)(rss3 - rss2 + (long)(n * (size_t)dim / 1024)) * 1024 / (double)n);
    printf("| sign-bit top-50 agreement with float32 | %.1f%% (top-1 %.1f%%) |\n",
           100.0 * overlap_b / ((double)nq * K), 100.0 * first_b / nq);
    sl_vec_index_release(&loaded);
    sl_vec_index_release(&ix);
    sl_kbs_close(db);
    free(qs);
    free(ms);
    free(ms8);
    free(top32);
    free(ids);
    free(scores);
    unlink(db_path);
    unlink(wal);
    unlink(shm);
    return 0;
}
