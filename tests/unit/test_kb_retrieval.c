/* Knowledge-base retrieval parts: the flat vector scan (float32 and int8 against a
 * brute-force reference), the FTS5 terms (CJK bigrams, lower-cased words), reciprocal
 * rank fusion, and the context assembly within a token budget. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "kb/answer.h"
#include "kb/lexical.h"
#include "kb/rank.h"
#include "kb/vec.h"
#include "meter/estimate.h"

static uint64_t rng = 88172645463325252ull;

static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void make_index(struct sl_vec_index *ix, size_t n, int dim)
{
    memset(ix, 0, sizeof(*ix));
    ix->n = n;
    ix->dim = dim;
    ix->f32 = malloc(n * (size_t)dim * sizeof(float));
    ix->ids = malloc(n * sizeof(int64_t));
    for (size_t i = 0; i < n; i++) {
        for (int d = 0; d < dim; d++)
            ix->f32[i * (size_t)dim + (size_t)d] = frand();
        sl_vec_normalise(ix->f32 + i * (size_t)dim, dim);
        ix->ids[i] = (int64_t)(1000 + i);
    }
}

/* The best row by a plain double-precision loop. */
static size_t brute_best(const struct sl_vec_index *ix, const float *q)
{
    size_t best = 0;
    double bs = -2;
    for (size_t i = 0; i < ix->n; i++) {
        double s = 0;
        for (int d = 0; d < ix->dim; d++)
            s += (double)ix->f32[i * (size_t)ix->dim + (size_t)d] * q[d];
        if (s > bs) {
            bs = s;
            best = i;
        }
    }
    return best;
}

static void test_dot_matches_reference(void **state)
{
    float a[37], b[37]; /* not a multiple of 8 or 16: the tails count */
    double want = 0;
    for (int i = 0; i < 37; i++) {
        a[i] = frand();
        b[i] = frand();
        want += (double)a[i] * b[i];
    }
    assert_true(sl_vec_dot(a, b, 37) - want < 1e-5 && want - sl_vec_dot(a, b, 37) < 1e-5);
}

static void test_scan_finds_the_nearest(void **state)
{
    struct sl_vec_index ix;
    struct sl_vec_hit hits[10];
    make_index(&ix, 3000, 96);
    for (int trial = 0; trial < 20; trial++) {
        /* a query near row r: that row must come first, in float32 and in int8 */
        size_t r = (size_t)(trial * 149) % ix.n;
        float q[96];
        for (int d = 0; d < 96; d++)
            q[d] = ix.f32[r * 96 + (size_t)d] + 0.05f * frand();
        sl_vec_normalise(q, 96);
        size_t want = brute_best(&ix, q);
        assert_int_equal(sl_vec_search(&ix, q, 10, hits), 10);
        assert_int_equal(hits[0].row, want);
        assert_int_equal(hits[0].id, (int64_t)(1000 + want));
        for (int i = 1; i < 10; i++)
            assert_true(hits[i - 1].score >= hits[i].score);
        if (trial == 0)
            assert_int_equal(sl_vec_quantise(&ix), 0);
    }
    sl_vec_index_release(&ix);
}

static void test_scan_k_larger_than_n(void **state)
{
    struct sl_vec_index ix;
    struct sl_vec_hit hits[8];
    make_index(&ix, 3, 16);
    assert_int_equal(sl_vec_search(&ix, ix.f32, 8, hits), 3);
    assert_int_equal(hits[0].row, 0);
    assert_true(hits[0].score > 0.999f);
    sl_vec_index_release(&ix);
    struct sl_vec_index empty = {.dim = 16};
    float q[16] = {1};
    assert_int_equal(sl_vec_search(&empty, q, 8, hits), 0);
}

static void terms_of(const char *text, char *out, size_t cap)
{
    struct sl_buf b = SL_BUF_INIT(1 << 16);
    assert_int_equal(sl_kb_terms(text, strlen(text), &b), 0);
    snprintf(out, cap, "%s", b.ptr ? b.ptr : "");
    sl_buf_release(&b);
}

static void test_terms_bigrams_and_words(void **state)
{
    char t[512];
    terms_of("付款方式：Net-30 Days", t, sizeof(t));
    assert_string_equal(t, "付款 款方 方式 net 30 days");
    terms_of("第三条", t, sizeof(t));
    assert_string_equal(t, "第三 三条");
    terms_of("甲，乙", t, sizeof(t)); /* a lone character stands for itself */
    assert_string_equal(t, "甲 乙");
    terms_of("Straße über 東京", t, sizeof(t)); /* other letters stay words */
    assert_string_equal(t, "straße über 東京");
    terms_of("", t, sizeof(t));
    assert_string_equal(t, "");
    terms_of("a\xff" "b", t, sizeof(t)); /* a bad byte separates */
    assert_string_equal(t, "a b");
}

static void test_fts_query_dedups_and_quotes(void **state)
{
    struct sl_buf b = SL_BUF_INIT(4096);
    const char *q = "押金 押金退还? Deposit deposit";
    assert_int_equal(sl_kb_fts_query(q, strlen(q), 64, &b), 4);
    assert_string_equal(b.ptr, "\"押金\" OR \"金退\" OR \"退还\" OR \"deposit\"");
    sl_buf_reset(&b);
    assert_int_equal(sl_kb_fts_query(q, strlen(q), 2, &b), 2); /* at most max_terms */
    sl_buf_release(&b);
    struct sl_buf e = SL_BUF_INIT(64);
    assert_int_equal(sl_kb_fts_query("？！", strlen("？！"), 64, &e), 0);
    sl_buf_release(&e);
}

static void test_rrf(void **state)
{
    int64_t vec[] = {1, 2, 3}, bm[] = {3, 4};
    double vs[] = {0.9, 0.8, 0.7}, bs[] = {-5, -4};
    struct sl_kb_hit out[8];
    size_t n = sl_kb_rrf(vec, vs, 3, bm, bs, 2, out, 8);
    assert_int_equal(n, 4);
    /* 3 is found by both: 1/63 + 1/61 beats 1 alone at 1/61 */
    assert_int_equal(out[0].chunk_id, 3);
    assert_int_equal(out[0].vec_rank, 3);
    assert_int_equal(out[0].bm25_rank, 1);
    assert_true(out[0].rrf > 1.0 / 63 + 1.0 / 61 - 1e-12);
    assert_int_equal(out[1].chunk_id, 1); /* 1/61 */
    /* 2 and 4 tie at 1/62 and on their best rank: the lower id first */
    assert_int_equal(out[2].chunk_id, 2);
    assert_int_equal(out[3].chunk_id, 4);
    assert_int_equal(out[3].vec_rank, 0);
    assert_int_equal(sl_kb_rrf(vec, vs, 3, bm, bs, 2, out, 2), 2); /* capped */
    assert_int_equal(sl_kb_rrf(NULL, NULL, 0, bm, bs, 2, out, 8), 2);
    assert_int_equal(out[0].chunk_id, 3);
}

static void test_rerank_sort_is_stable(void **state)
{
    struct sl_kb_hit h[4] = {{.chunk_id = 1, .rerank_score = 0.5}, {.chunk_id = 2, .rerank_score = 0.9},
                             {.chunk_id = 3, .rerank_score = 0.5}, {.chunk_id = 4, .rerank_score = 0.1}};
    sl_kb_sort_reranked(h, 4);
    assert_int_equal(h[0].chunk_id, 2);
    assert_int_equal(h[1].chunk_id, 1);
    assert_int_equal(h[2].chunk_id, 3);
    assert_int_equal(h[3].chunk_id, 4);
}

static void test_context_budget(void **state)
{
    char big[4000];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    struct sl_kb_hit h[3] = {
        {.doc = "a.md", .heading = "Intro", .text = "first passage"},
        {.doc = "b.txt", .heading = "", .text = "second passage"},
        {.doc = "c.md", .heading = "Long", .text = big},
    };
    struct sl_buf b = SL_BUF_INIT(1 << 20);
    assert_int_equal(sl_kb_context(h, 3, 10000, &b), 3);
    assert_non_null(strstr(b.ptr, "[1] a.md > Intro\nfirst passage\n\n[2] b.txt\nsecond passage"));
    sl_buf_reset(&b);
    /* 3,999 x's are ~1,200 tokens: with 300 the third source is cut to fit */
    assert_int_equal(sl_kb_context(h, 3, 300, &b), 3);
    assert_true(sl_estimate_text(b.ptr, b.len) <= 300 + 2);
    assert_non_null(strstr(b.ptr, "[3] c.md > Long\nxxx"));
    sl_buf_reset(&b);
    /* the first source is always given, cut if need be */
    struct sl_kb_hit only[1] = {{.doc = "c.md", .heading = "", .text = big}};
    assert_int_equal(sl_kb_context(only, 1, 50, &b), 1);
    assert_true(b.len < 400);
    sl_buf_release(&b);
}

static void test_context_cuts_at_utf8_boundary(void **state)
{
    char zh[3 * 500 + 1] = "";
    for (int i = 0; i < 500; i++)
        strcat(zh, "合");
    struct sl_kb_hit h[1] = {{.doc = "d", .heading = "", .text = zh}};
    struct sl_buf b = SL_BUF_INIT(1 << 20);
    assert_int_equal(sl_kb_context(h, 1, 40, &b), 1);
    const char *body = strchr(b.ptr, '\n') + 1;
    size_t n = strlen(body) - 2; /* the "\n\n" after the source */
    assert_int_equal(n % 3, 0);
    sl_buf_release(&b);
}

static void test_sources_json(void **state)
{
    struct sl_kb_hit h[1] = {{.chunk_id = 7, .doc = "a \"b\".md", .heading = "H", .text = "t\n",
                              .start = 3, .end = 9, .vec_rank = 1, .vec_score = 0.5, .rrf = 0.02,
                              .reranked = 1, .rerank_score = 0.75}};
    struct sl_buf b = SL_BUF_INIT(1 << 16);
    assert_int_equal(sl_kb_sources_json(h, 1, &b), 0);
    assert_non_null(strstr(b.ptr, "\"document\":\"a \\\"b\\\".md\""));
    assert_non_null(strstr(b.ptr, "\"bm25\":null"));
    assert_non_null(strstr(b.ptr, "\"rerank\":0.75"));
    assert_non_null(strstr(b.ptr, "\"start\":3,\"end\":9"));
    sl_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dot_matches_reference),
        cmocka_unit_test(test_scan_finds_the_nearest),
        cmocka_unit_test(test_scan_k_larger_than_n),
        cmocka_unit_test(test_terms_bigrams_and_words),
        cmocka_unit_test(test_fts_query_dedups_and_quotes),
        cmocka_unit_test(test_rrf),
        cmocka_unit_test(test_rerank_sort_is_stable),
        cmocka_unit_test(test_context_budget),
        cmocka_unit_test(test_context_cuts_at_utf8_boundary),
        cmocka_unit_test(test_sources_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
