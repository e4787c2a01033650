/* The in-memory BM25 scorer (kb/bm25.h): scores worked out by hand on a tiny corpus, and
 * the same ranking and scores as SQLite FTS5's bm25() on a fixture of English and Chinese
 * chunks stored through the knowledge-base store. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/buf.h"
#include "kb/bm25.h"
#include "kb/index.h"
#include "kb/kb.h"
#include "kb/lexical.h"
#include "kb/retrieve.h"
#include "kb/store.h"

static struct sl_bm25 *build(const char *const *docs, size_t n)
{
    struct sl_bm25_builder *b = sl_bm25_builder_new();
    assert_non_null(b);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sl_bm25_add(b, (int64_t)(i + 1), docs[i], strlen(docs[i])), 0);
    struct sl_bm25 *ix = sl_bm25_finish(b);
    assert_non_null(ix);
    return ix;
}

/* BM25 of one term in one document, FTS5's way. */
static double by_hand(double N, double df, double tf, double dl, double avgdl)
{
    double idf = log((N - df + 0.5) / (df + 0.5));
    if (idf <= 0)
        idf = 1e-6;
    return idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / avgdl));
}

static void test_scores_by_hand(void **state)
{
    (void)state;
    static const char *const docs[] = {
        "apple banana apple",     /* 1: apple x2, len 3 */
        "banana cherry",          /* 2 */
        "cherry date egg fig",    /* 3 */
        "apple fig",              /* 4 */
        "grape",                  /* 5 */
    };
    struct sl_bm25 *ix = build(docs, 5);
    double avgdl = 12.0 / 5;
    const char *q[] = {"apple", "fig", "nothing"};
    size_t ql[] = {5, 3, 7};
    int64_t ids[5];
    double sc[5];
    size_t n = sl_bm25_search(ix, q, ql, 3, 5, ids, sc);
    assert_int_equal(n, 3); /* docs 1, 3, 4 hold apple or fig */
    double s1 = by_hand(5, 2, 2, 3, avgdl), s3 = by_hand(5, 2, 1, 4, avgdl),
           s4 = by_hand(5, 2, 1, 2, avgdl) + by_hand(5, 2, 1, 2, avgdl);
    assert_int_equal(ids[0], 4); /* both terms */
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 3);
    assert_true(fabs(sc[0] + s4) < 1e-12 && fabs(sc[1] + s1) < 1e-12 && fabs(sc[2] + s3) < 1e-12);
    /* k smaller than the matches keeps the best */
    assert_int_equal(sl_bm25_search(ix, q, ql, 3, 1, ids, sc), 1);
    assert_int_equal(ids[0], 4);
    /* a term in more than half the chunks has FTS5's floor IDF, 1e-6 */
    static const char *const common[] = {"the a", "the b", "the c", "d"};
    struct sl_bm25 *cx = build(common, 4);
    const char *t[] = {"the"};
    size_t tl[] = {3};
    assert_int_equal(sl_bm25_search(cx, t, tl, 1, 10, ids, sc), 3);
    assert_true(fabs(sc[0] + by_hand(4, 3, 1, 2, 7.0 / 4)) < 1e-15);
    assert_true(ids[0] == 1 && ids[1] == 2 && ids[2] == 3); /* equal scores: by id */
    /* ... and is left out when the other terms already fill k */
    const char *t2[] = {"the", "a"};
    size_t tl2[] = {3, 1};
    assert_int_equal(sl_bm25_search(cx, t2, tl2, 2, 1, ids, sc), 1);
    assert_int_equal(ids[0], 1);
    assert_int_equal(sl_bm25_search(cx, t2, tl2, 2, 3, ids, sc), 3); /* not enough: scored */
    size_t nd, nt, np, bytes;
    sl_bm25_stats(ix, &nd, &nt, &np, &bytes);
    assert_true(nd == 5 && nt == 7 && np == 11 && bytes > 0);
    sl_bm25_free(ix);
    sl_bm25_free(cx);
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static unsigned next(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static const char *const en[] = {"the", "of", "and", "a", "to", "in", "is", "module", "function",
                                 "returns", "object", "string", "file", "socket", "thread", "lock",
                                 "buffer", "parser", "encoding", "default", "argument", "list",
                                 "dictionary", "iterator", "exception", "timeout", "path", "value"};
static const char *const zh[] = {"软件包", "安装", "系统", "配置", "文件", "网络", "内核", "用户",
                                 "命令", "服务", "违约金", "付款", "合同", "期限", "数据"};

/* A word from a skewed distribution: low indexes far more often. */
static const char *pick(const char *const *words, unsigned n)
{
    unsigned a = next(n), b = next(n);
    return words[a < b ? a : b];
}

static void test_agrees_with_fts5(void **state)
{
    (void)state;
    char path[] = "/tmp/sluice-bm25-XXXXXX", url[64], err[256];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    unlink(path);
    snprintf(url, sizeof(url), "sqlite://%s", path);
    sqlite3 *db;
    assert_int_equal(sl_kbs_open(url, &db, err, sizeof(err)), 0);
    struct sl_kb kb = {.recall_k = 50, .top_k = 5, .context_tokens = 3000};
    snprintf(kb.name, sizeof(kb.name), "fixture");
    snprintf(kb.embed_model, sizeof(kb.embed_model), "e");
    snprintf(kb.answer_model, sizeof(kb.answer_model), "a");
    snprintf(kb.profile, sizeof(kb.profile), "auto");
    struct sl_kb_doc doc = {.bytes = 1, .chunks = 400};
    snprintf(doc.name, sizeof(doc.name), "d");
    snprintf(doc.type, sizeof(doc.type), "txt");
    snprintf(doc.profile, sizeof(doc.profile), "default");
    assert_int_equal(sl_kbs_create(db, &kb, err, sizeof(err)), 0);
    assert_int_equal(sl_kbs_doc_insert(db, kb.id, &doc, err, sizeof(err)), 0);
    char text[2048];
    for (int i = 0; i < 400; i++) {
        size_t n = 0;
        int words = 5 + (int)next(60); /* lengths vary: the length norm counts */
        for (int w = 0; w < words; w++)
            n += (size_t)snprintf(text + n, sizeof(text) - n, "%s%s",
                                  next(3) ? pick(en, 28) : pick(zh, 15), w % 7 == 6 ? "。" : " ");
        struct sl_kb_chunk_row row = {.ordinal = i, .heading = i % 5 ? "Guide > 安装" : "",
                                      .text = text, .text_len = n, .hash = "x"};
        int64_t id;
        assert_int_equal(sl_kbs_chunk_insert(db, kb.id, doc.id, &row, &id, err, sizeof(err)), 0);
    }
    int compared = 0;
    for (int q = 0; q < 60; q++) {
        char question[256];
        size_t n = 0;
        for (int w = 0, nw = 1 + (int)next(5); w < nw; w++)
            n += (size_t)snprintf(question + n, sizeof(question) - n, "%s ",
                                  next(2) ? pick(en, 28) : pick(zh, 15));
        int64_t ids[50], fids[50];
        double sc[50], fsc[50];
        int got = sl_kb_bm25(db, &kb, question, 50, ids, sc, err, sizeof(err));
        struct sl_buf match = SL_BUF_INIT(4096);
        assert_true(sl_kb_fts_query(question, strlen(question), 64, &match) > 0);
        int fgot = sl_kbs_fts(db, kb.id, match.ptr, 50, fids, fsc, err, sizeof(err));
        sl_buf_release(&match);
        assert_int_equal(got, fgot);
        for (int i = 0; i < got; i++) {
            /* FTS5 adds the knowledge base's own term, at its 1e-6 floor: scores agree to
             * that, and the order does wherever two scores differ by more */
            assert_true(fabs(sc[i] - fsc[i]) < 1e-5);
            if (ids[i] != fids[i])
                assert_true(fabs(sc[i] - fsc[i + (i + 1 < got)]) < 1e-5 ||
                            fabs(sc[i] - fsc[i ? i - 1 : 0]) < 1e-5);
            compared++;
        }
    }
    assert_true(compared > 1000);
    sl_kbs_close(db);
    sl_kb_index_clear();
    char side[80];
    unlink(path);
    snprintf(side, sizeof(side), "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof(side), "%s-shm", path);
    unlink(side);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scores_by_hand),
        cmocka_unit_test(test_agrees_with_fts5),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
