/* Knowledge-base stage 1 without its embedding call, on one thread: the flat vector scan
 * (float32, int8 with a float32 rescore, sign bits with a float32 rescore) over N chunks
 * of DIM dimensions; then N chunks of real English and Chinese text in the store, BM25
 * in memory against an FTS5 query of the same terms, and the whole of stage 1 as search
 * runs it (sl_kb_stage1: vector scan + BM25 + fusion + reading the 50 candidates back).
 * Also insert and load rates and memory per chunk. Prints markdown. Knobs (environment):
 * N=100000 DIM=1024 QUERIES=300 FTS_QUERIES=100 DB=path CORPUS_EN=file CORPUS_ZH=file
 * QUERY_LOG=file (writes the questions). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "kb/bm25.h"
#include "kb/index.h"
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

/* This thread's CPU time: what the search cost, without the time other processes on a
 * shared machine took the core away. */
static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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

/* Real text: the extracted English and Chinese corpora run.sh writes (CORPUS_EN and
 * CORPUS_ZH, e.g. the Python docs and the Debian Reference in Chinese). A chunk is a
 * window of one of them, from a line start, of a real chunk's size, cut at a UTF-8
 * boundary; so the term distribution is the documents' own. */
#define EN_SHARE 0.75
struct corpus {
    char *text;
    size_t len;
    size_t min, max; /* window bytes */
};
static struct corpus corpora[2];

static int read_all(const char *env, struct corpus *c)
{
    const char *path = getenv(env);
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f) {
        fprintf(stderr, "kb_bench: set %s to an extracted text file\n", env);
        return -1;
    }
    fseek(f, 0, SEEK_END);
    c->len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    c->text = malloc(c->len + 1);
    if (!c->text || fread(c->text, 1, c->len, f) != c->len) {
        fclose(f);
        return -1;
    }
    c->text[c->len] = 0;
    fclose(f);
    return c->len > c->max * 2 ? 0 : -1;
}

static int load_corpus(void)
{
    corpora[0].min = 1000, corpora[0].max = 2400; /* ~300-700 estimated tokens of English */
    corpora[1].min = 900, corpora[1].max = 2700;  /* ~180-540 of Chinese (3 bytes a character) */
    return read_all("CORPUS_EN", &corpora[0]) || read_all("CORPUS_ZH", &corpora[1]);
}

/* A chunk: its corpus (0 English, 1 Chinese) and its window. */
static int chunk_of(size_t *start, size_t *len)
{
    int lang = (double)(next() % 1000) / 1000.0 >= EN_SHARE;
    const struct corpus *c = &corpora[lang];
    size_t want = c->min + next() % (c->max - c->min), at = next() % (c->len - c->max);
    while (at > 0 && c->text[at - 1] != '\n')
        at--;
    size_t end = at + want < c->len ? at + want : c->len;
    while (end < c->len && ((unsigned char)c->text[end] & 0xC0) == 0x80)
        end++;
    *start = at;
    *len = end - at;
    return lang;
}

/* A question from a random chunk: a run of 2-6 words (English) or 3-9 characters
 * (Chinese), with a question's opening words now and then. Returns the chunk's row. */
static size_t question_of(char *out, size_t cap, const int *lang, const size_t *cstart,
                          const size_t *clen, size_t n)
{
    static const char *const en_open[] = {"", "how do I ", "what is ", "", "how to use ", "why does "};
    static const char *const zh_open[] = {"", "如何", "什么是", "", "怎么"};
    for (;;) {
        size_t row = next() % n;
        const char *t = corpora[lang[row]].text + cstart[row];
        size_t len = clen[row], o = 0, i = next() % (len / 2 + 1);
        if (lang[row] == 0) {
            o = (size_t)snprintf(out, cap, "%s", en_open[next() % 6]);
            int words = 2 + (int)(next() % 5), w = 0;
            while (i < len && !((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z')))
                i++;
            for (; i < len && w < words && o + 2 < cap; i++) {
                int letter = (t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z');
                if (letter)
                    out[o++] = t[i];
                else if (o && out[o - 1] != ' ') {
                    out[o++] = ' ';
                    w++;
                }
            }
            out[o] = 0;
            if (w >= 2)
                return row;
        } else {
            o = (size_t)snprintf(out, cap, "%s", zh_open[next() % 5]);
            int chars = 3 + (int)(next() % 7), got = 0;
            for (; i + 3 <= len && got < chars && o + 4 < cap; i++) {
                const unsigned char *u = (const unsigned char *)t + i;
                if (u[0] >= 0xE4 && u[0] <= 0xE9 && (u[1] & 0xC0) == 0x80) { /* a CJK ideograph */
                    memcpy(out + o, u, 3);
                    o += 3;
                    got++;
                    i += 2;
                } else if (got) {
                    break;
                }
            }
            if (got >= 3) {
                snprintf(out + o, cap - o, "%s", next() % 2 ? "？" : "");
                return row;
            }
        }
    }
}

int main(void)
{
    size_t n = getenv("N") ? (size_t)atol(getenv("N")) : 100000;
    int dim = getenv("DIM") ? atoi(getenv("DIM")) : 1024;
    int nq = getenv("QUERIES") ? atoi(getenv("QUERIES")) : 300;
    const char *db_path = getenv("DB") ? getenv("DB") : "/tmp/sluice-kb-bench.db";
    char url[512], err[512];
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

    /* ---- the store, BM25 and the whole of stage 1 ---- */
    if (load_corpus())
        return 1;
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
    struct sl_kb kb = {.recall_k = K, .top_k = 5, .context_tokens = 3000, .recall_threshold = -1};
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
    int *lang = malloc(n * sizeof(int));
    size_t *cstart = malloc(n * sizeof(size_t)), *clen = malloc(n * sizeof(size_t));
    double t0 = now_ms(), text_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        lang[i] = chunk_of(&cstart[i], &clen[i]);
        const struct corpus *c = &corpora[lang[i]];
        struct sl_kb_chunk_row row = {.ordinal = (int)i, .heading = "", .text = c->text + cstart[i],
                                      .text_len = clen[i], .hash = "x"};
        int64_t id;
        text_bytes += (double)clen[i];
        if (sl_kbs_chunk_insert(db, kb.id, doc.id, &row, &id, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
    }
    sl_kbs_commit(db);
    double insert_ms = now_ms() - t0;
    /* the vectors of the scan above, row i for chunk i + 1 */
    double tv = now_ms();
    sl_kbs_begin(db);
    for (size_t i = 0; i < n; i++)
        sl_kbs_vector_put(db, kb.id, (int64_t)i + 1, kb.embed_model, ix.f32 + i * (size_t)dim, dim, err, sizeof(err));
    sl_kbs_set_dim(db, kb.id, dim, err, sizeof(err));
    sl_kbs_commit(db);
    double vput_ms = now_ms() - tv;
    kb.dim = dim;
    double t3 = now_ms();
    struct sl_kb_index *vix = sl_kb_index_get(db, kb.id, kb.embed_model, dim, kb.rev, kb.created_ms, err,
                                              sizeof(err));
    double load_ms = now_ms() - t3;
    long rss4 = rss_kb();
    double t4 = now_ms();
    struct sl_kb_lex *lx = sl_kb_lex_get(db, kb.id, kb.rev, kb.created_ms, err, sizeof(err));
    double lex_ms = now_ms() - t4;
    long rss5 = rss_kb();
    if (!vix || !lx) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t lex_docs, lex_terms, lex_postings, lex_bytes;
    sl_bm25_stats(sl_kb_lex_index(lx), &lex_docs, &lex_terms, &lex_postings, &lex_bytes);

    int nfts = getenv("FTS_QUERIES") ? atoi(getenv("FTS_QUERIES")) : 100;
    if (nfts > nq)
        nfts = nq;
    double *msf = malloc((size_t)nq * sizeof(double)), *ms1 = malloc((size_t)nq * sizeof(double));
    double *msv = malloc((size_t)nq * sizeof(double)), *msr = malloc((size_t)nq * sizeof(double));
    double *cpu1 = malloc((size_t)nq * sizeof(double));
    double agree = 0, agree_n = 0, qterms = 0;
    int64_t *ids = malloc(K * sizeof(int64_t)), *fids = malloc(K * sizeof(int64_t)), bm25_hits = 0;
    double *scores = malloc(K * sizeof(double)), *fscores = malloc(K * sizeof(double));
    struct sl_kb_search_opts o;
    sl_kb_search_defaults(&kb, &o);
    o.rerank = 0;
    FILE *qlog = getenv("QUERY_LOG") ? fopen(getenv("QUERY_LOG"), "w") : NULL;
    for (int q = 0; q < nq; q++) {
        char question[512];
        size_t row = question_of(question, sizeof(question), lang, cstart, clen, n);
        float *qv = qs + (size_t)q * (size_t)dim;
        for (int d = 0; d < dim; d++) /* near the chunk the question was taken from */
            qv[d] = ix.f32[row * (size_t)dim + (size_t)d] + 0.5f * frand() / 32;
        sl_vec_normalise(qv, dim);
        if (qlog)
            fprintf(qlog, "%s\n", question);
        double t1 = now_ms();
        int got = sl_kb_bm25(db, &kb, question, K, ids, scores, err, sizeof(err));
        ms[q] = now_ms() - t1;
        bm25_hits += got > 0 ? got : 0;
        struct sl_vec_hit vh[K];
        int64_t vids[K];
        double vsc[K];
        double tv1 = now_ms();
        size_t nvh = sl_vec_search(sl_kb_index_vectors(vix), qv, K, vh);
        msv[q] = now_ms() - tv1;
        for (size_t i = 0; i < nvh; i++) {
            vids[i] = vh[i].id;
            vsc[i] = vh[i].score;
        }
        struct sl_arena *a = sl_arena_new();
        struct sl_kb_hit fused[2 * K];
        double tr = now_ms();
        size_t nf = sl_kb_rrf(vids, vsc, nvh, ids, scores, got > 0 ? (size_t)got : 0, fused, K);
        sl_kbs_chunk_fill_many(db, fused, nf, a, err, sizeof(err));
        msr[q] = now_ms() - tr;
        struct sl_kb_results r;
        memset(&r, 0, sizeof(r));
        double t2 = now_ms(), c2 = cpu_ms();
        if (sl_kb_stage1(db, &kb, question, qv, dim, &o, a, &r, err, sizeof(err))) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        ms1[q] = now_ms() - t2;
        cpu1[q] = cpu_ms() - c2;
        sl_arena_free(a);
        if (q < nfts) { /* the same ranking by an FTS5 query of all the terms */
            struct sl_buf match = SL_BUF_INIT(64 * 1024);
            int nt = sl_kb_fts_query(question, strlen(question), 64, &match);
            qterms += nt > 0 ? nt : 0;
            double t5 = now_ms();
            int fgot = nt > 0 ? sl_kbs_fts(db, kb.id, match.ptr, K, fids, fscores, err, sizeof(err)) : 0;
            msf[q] = now_ms() - t5;
            sl_buf_release(&match);
            for (int i = 0; i < fgot; i++)
                for (int j = 0; j < got; j++)
                    agree += fids[i] == ids[j];
            agree_n += fgot;
        }
    }
    if (qlog)
        fclose(qlog);
    printf("\nChunks: %zu from real text (%.0f%% English, %.0f bytes a chunk on average); questions "
           "are word runs from a chunk\n\n",
           n, 100.0 * EN_SHARE, text_bytes / (double)n);
    printf("| stage 1 part | p50 ms | p99 ms | mean ms | max ms |\n|---|---|---|---|---|\n");
    report("vector scan of the loaded index (sign bits + float32 rescore)", msv, nq);
    report("BM25, in memory (sl_kb_bm25), top 50", ms, nq);
    report("RRF fusion + reading the 50 candidates back (one query)", msr, nq);
    report("BM25 by an FTS5 query, all terms OR'ed, ORDER BY rank LIMIT 50 (reference)", msf, nfts);
    report("**stage 1 whole** (sl_kb_stage1: sign-bit scan + BM25 + RRF + reading 50 chunks back)", ms1, nq);
    report("**stage 1 whole, thread CPU time** (the same calls)", cpu1, nq);
    sl_kb_lex_release(lx);
    sl_kb_index_release(vix);

    printf("\n| other | figure |\n|---|---|\n");
    printf("| chunk + FTS5 terms insert | %.0f chunks/s (%zu in %.1f s, one transaction) |\n",
           (double)n / (insert_ms / 1000), n, insert_ms / 1000);
    printf("| vector insert | %.0f vectors/s (%zu in %.1f s) |\n", (double)n / (vput_ms / 1000), n,
           vput_ms / 1000);
    printf("| vector index load from SQLite (+ sign bits) | %.0f vectors/s (%zu in %.0f ms) |\n",
           (double)sl_kb_index_vectors(vix)->n / (load_ms / 1000), sl_kb_index_vectors(vix)->n, load_ms);
    printf("| BM25 index build from the FTS5 terms | %.0f ms: %zu chunks, %zu terms, %zu postings |\n",
           lex_ms, lex_docs, lex_terms, lex_postings);
    printf("| memory per chunk, BM25 index | %.0f bytes (RSS grew %.0f bytes/chunk) |\n",
           (double)lex_bytes / (double)n, (double)(rss5 - rss4) * 1024 / (double)n);
    printf("| BM25 hits per query (of 50); terms per question | %.1f; %.1f |\n", (double)bm25_hits / nq,
           nfts ? qterms / nfts : 0);
    printf("| in-memory BM25 top-50 agreement with FTS5's bm25 | %.1f%% |\n",
           agree_n ? 100.0 * agree / agree_n : 0);
    free(msf);
    free(ms1);
    free(msv);
    free(msr);
    free(cpu1);
    free(fids);
    free(fscores);
    free(lang);
    free(cstart);
    free(clen);
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
    sl_vec_index_release(&ix);
    sl_kb_index_clear();
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
