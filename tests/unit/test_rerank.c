/* Unit tests for src/formats/rerank.c (reading the client's request, shapes and URLs per
 * provider, the three upstream bodies, reply and error parsing, merging and the client
 * reply) and for the sim's relevance score (src/sim/sim_rerank.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "formats/rerank.h"
#include "sim/sim.h"

struct fixture {
    struct sl_provider_cfg p;
    struct sl_model_cfg m;
};

static void setup_model(struct fixture *f, enum sl_rerank_wire w, const char *base_url,
                        const char *model)
{
    memset(f, 0, sizeof(*f));
    f->p.name = "prov";
    f->p.kind = SL_WIRE_OPENAI;
    f->p.rerank = w;
    f->p.base_url = (char *)base_url;
    f->p.api_key = "sk-test";
    f->m.name = "client-model";
    f->m.provider = "prov";
    f->m.model = (char *)model;
    f->m.p = &f->p;
}

/* Reads body into r; the tree is returned (free with cJSON_Delete). */
static cJSON *read_req(struct sl_arena *a, const char *body, struct sl_rerank_req *r,
                       struct sl_error *e, int *rc)
{
    cJSON *root = cJSON_Parse(body);
    assert_non_null(root);
    *rc = sl_rerank_request_read(root, a, r, e);
    return root;
}

static void expect_bad(const char *body, const char *param)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_rerank_req r;
    struct sl_error e;
    int rc;
    cJSON *root = read_req(a, body, &r, &e, &rc);
    if (rc != -1)
        print_error("accepted: %s\n", body);
    assert_int_equal(rc, -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.param, param);
    cJSON_Delete(root);
    sl_arena_free(a);
}

static void test_request_read(void **state)
{
    (void)state;
    struct sl_arena *a = sl_arena_new();
    struct sl_rerank_req r;
    struct sl_error e;
    int rc;
    cJSON *root = read_req(a, "{\"model\":\"m\",\"query\":\"q\",\"documents\":[\"a\",{\"text\":\"b\"}],"
                              "\"top_n\":5,\"return_documents\":true}", &r, &e, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(r.query, "q");
    assert_int_equal(r.ndocs, 2);
    assert_string_equal(r.docs[0], "a");
    assert_string_equal(r.docs[1], "b");
    assert_int_equal(r.top_n, 2); /* cut to the documents there are */
    assert_int_equal(r.top_n_given, 1);
    assert_int_equal(r.return_documents, 1);
    cJSON_Delete(root);
    root = read_req(a, "{\"query\":\"q\",\"documents\":[\"a\",\"b\",\"c\"],\"top_n\":null}", &r, &e, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(r.top_n, 3);
    assert_int_equal(r.top_n_given, 0);
    assert_int_equal(r.return_documents, -1);
    cJSON_Delete(root);
    sl_arena_free(a);
}

static void test_request_errors(void **state)
{
    (void)state;
    expect_bad("{\"documents\":[\"a\"]}", "query");
    expect_bad("{\"query\":7,\"documents\":[\"a\"]}", "query");
    expect_bad("{\"query\":\"\",\"documents\":[\"a\"]}", "query");
    expect_bad("{\"query\":\"q\"}", "documents");
    expect_bad("{\"query\":\"q\",\"documents\":\"a\"}", "documents");
    expect_bad("{\"query\":\"q\",\"documents\":[]}", "documents");
    expect_bad("{\"query\":\"q\",\"documents\":[\"a\",\"\"]}", "documents");
    expect_bad("{\"query\":\"q\",\"documents\":[{\"title\":\"a\"}]}", "documents");
    expect_bad("{\"query\":\"q\",\"documents\":[1]}", "documents");
    expect_bad("{\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":0}", "top_n");
    expect_bad("{\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":2.5}", "top_n");
    expect_bad("{\"query\":\"q\",\"documents\":[\"a\"],\"top_n\":\"3\"}", "top_n");
    expect_bad("{\"query\":\"q\",\"documents\":[\"a\"],\"return_documents\":1}", "return_documents");
    /* one more than SL_RERANK_MAX_DOCS */
    size_t n = SL_RERANK_MAX_DOCS + 1, cap = n * 4 + 64;
    char *body = malloc(cap), *p = body;
    p += sprintf(p, "{\"query\":\"q\",\"documents\":[");
    for (size_t i = 0; i < n; i++)
        p += sprintf(p, i ? ",\"d\"" : "\"d\"");
    sprintf(p, "]}");
    expect_bad(body, "documents");
    free(body);
}

static void test_wire_and_url(void **state)
{
    (void)state;
    struct fixture f;
    struct sl_arena *a = sl_arena_new();
    setup_model(&f, SL_RERANK_AUTO, "https://api.jina.ai/v1", "jina-reranker-v2-base-multilingual");
    assert_int_equal(sl_rerank_wire_of(&f.p), SL_RERANK_JINA);
    assert_string_equal(sl_rerank_url(SL_RERANK_JINA, &f.m, a), "https://api.jina.ai/v1/rerank");
    setup_model(&f, SL_RERANK_AUTO, "https://api.cohere.com/v1", "rerank-v3.5");
    assert_int_equal(sl_rerank_wire_of(&f.p), SL_RERANK_COHERE);
    assert_string_equal(sl_rerank_url(SL_RERANK_COHERE, &f.m, a), "https://api.cohere.com/v2/rerank");
    setup_model(&f, SL_RERANK_AUTO, "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
                "gte-rerank-v2");
    assert_int_equal(sl_rerank_wire_of(&f.p), SL_RERANK_DASHSCOPE);
    assert_string_equal(sl_rerank_url(SL_RERANK_DASHSCOPE, &f.m, a),
                        "https://dashscope-intl.aliyuncs.com/api/v1/services/rerank/text-rerank/text-rerank");
    f.p.rerank_url = "http://127.0.0.1:9/own";
    assert_string_equal(sl_rerank_url(SL_RERANK_DASHSCOPE, &f.m, a), "http://127.0.0.1:9/own");
    setup_model(&f, SL_RERANK_AUTO, "https://api.anthropic.com", "claude");
    f.p.kind = SL_WIRE_ANTHROPIC;
    assert_int_equal(sl_rerank_wire_of(&f.p), SL_RERANK_AUTO);
    f.p.rerank = SL_RERANK_JINA; /* the rerank: key wins */
    assert_int_equal(sl_rerank_wire_of(&f.p), SL_RERANK_JINA);
    /* batch limits: max_batch, else the shape's */
    assert_int_equal(sl_rerank_batch_limit(SL_RERANK_DASHSCOPE, &f.m), 500);
    assert_int_equal(sl_rerank_batch_limit(SL_RERANK_COHERE, &f.m), 1000);
    assert_int_equal(sl_rerank_batch_limit(SL_RERANK_JINA, &f.m), 1024);
    f.m.max_batch = 7;
    assert_int_equal(sl_rerank_batch_limit(SL_RERANK_DASHSCOPE, &f.m), 7);
    sl_arena_free(a);
}

static void test_plan(void **state)
{
    (void)state;
    struct sl_arena *a = sl_arena_new();
    struct sl_rerank_req r;
    struct sl_error e;
    int rc, starts[8];
    /* "q" is 1 token; 100 ASCII letters are 30: each document counts 31 */
    char body[2048], doc[101], big[401];
    memset(doc, 'a', 100), doc[100] = 0;
    memset(big, 'b', 400), big[400] = 0;
    snprintf(body, sizeof(body), "{\"query\":\"q\",\"documents\":[\"%s\",\"%s\",\"%s\",\"%s\",\"%s\"]}",
             doc, doc, big, doc, doc);
    cJSON *root = read_req(a, body, &r, &e, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(sl_rerank_plan(&r, 2, 0, starts), 3); /* by count: 2 + 2 + 1 */
    assert_int_equal(starts[1], 2);
    assert_int_equal(starts[2], 4);
    assert_int_equal(starts[3], 5);
    /* by tokens (70): 31 + 31, then the big one (121) alone, then 31 + 31 */
    assert_int_equal(sl_rerank_plan(&r, 100, 70, starts), 3);
    assert_int_equal(starts[0], 0);
    assert_int_equal(starts[1], 2);
    assert_int_equal(starts[2], 3);
    assert_int_equal(starts[3], 5);
    assert_int_equal(sl_rerank_plan(&r, 1000, 0, starts), 1);
    assert_int_equal(starts[1], 5);
    assert_int_equal(sl_rerank_token_limit(SL_RERANK_DASHSCOPE), 24000);
    assert_int_equal(sl_rerank_token_limit(SL_RERANK_JINA), 0);
    cJSON_Delete(root);
    sl_arena_free(a);
}

static const char *REQ = "{\"query\":\"q \\\"x\\\"\",\"documents\":[\"d0\",\"d1\",{\"text\":\"d2\"}],"
                         "\"top_n\":2,\"return_documents\":true}";

static void encode(enum sl_rerank_wire w, int off, int cnt, const char *want_body)
{
    struct fixture f;
    struct sl_arena *a = sl_arena_new();
    struct sl_rerank_req r;
    struct sl_error e;
    struct sl_encoded enc;
    int rc;
    setup_model(&f, w, "http://h/v1", "up-model");
    cJSON *root = read_req(a, REQ, &r, &e, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(sl_rerank_encode(w, &r, &f.m, off, cnt, a, &enc), 0);
    assert_string_equal(enc.body, want_body);
    assert_int_equal(enc.len, strlen(want_body));
    assert_string_equal(enc.headers[2], "Authorization: Bearer sk-test");
    cJSON_Delete(root);
    sl_arena_free(a);
}

static void test_encode(void **state)
{
    (void)state;
    encode(SL_RERANK_JINA, 0, 3,
           "{\"model\":\"up-model\",\"query\":\"q \\\"x\\\"\",\"documents\":[\"d0\",\"d1\",\"d2\"],"
           "\"top_n\":2,\"return_documents\":true}");
    encode(SL_RERANK_COHERE, 0, 3,
           "{\"model\":\"up-model\",\"query\":\"q \\\"x\\\"\",\"documents\":[\"d0\",\"d1\",\"d2\"],"
           "\"top_n\":2}");
    /* a part of one document asks for one */
    encode(SL_RERANK_JINA, 2, 1,
           "{\"model\":\"up-model\",\"query\":\"q \\\"x\\\"\",\"documents\":[\"d2\"],\"top_n\":1,"
           "\"return_documents\":true}");
    encode(SL_RERANK_DASHSCOPE, 1, 2,
           "{\"model\":\"up-model\",\"input\":{\"query\":\"q \\\"x\\\"\",\"documents\":[\"d1\",\"d2\"]},"
           "\"parameters\":{\"top_n\":2,\"return_documents\":false}}");
}

/* Vendor options reach the flat shapes as they were; DashScope gets only its own fields. */
static void test_encode_extra_fields(void **state)
{
    (void)state;
    struct fixture f;
    struct sl_arena *a = sl_arena_new();
    struct sl_rerank_req r;
    struct sl_error e;
    struct sl_encoded enc;
    int rc;
    setup_model(&f, SL_RERANK_JINA, "http://h/v1", "up");
    cJSON *root = read_req(a, "{\"model\":\"m\",\"query\":\"q\",\"documents\":[\"d\"],"
                              "\"max_chunks_per_doc\":512,\"instruction\":\"rank \\\"it\\\"\"}",
                           &r, &e, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(sl_rerank_encode(SL_RERANK_JINA, &r, &f.m, 0, 1, a, &enc), 0);
    assert_string_equal(enc.body, "{\"model\":\"up\",\"query\":\"q\",\"documents\":[\"d\"],"
                                  "\"max_chunks_per_doc\":512,\"instruction\":\"rank \\\"it\\\"\"}");
    assert_int_equal(sl_rerank_encode(SL_RERANK_DASHSCOPE, &r, &f.m, 0, 1, a, &enc), 0);
    assert_null(strstr(enc.body, "max_chunks_per_doc"));
    cJSON_Delete(root);
    sl_arena_free(a);
}

static void test_parse_reply(void **state)
{
    (void)state;
    struct sl_rerank_hit hits[4];
    struct sl_rerank_parsed u;
    struct sl_error e;
    const char *jina = "{\"results\":[{\"index\":1,\"relevance_score\":0.5},{\"index\":0,"
                       "\"relevance_score\":0.25}],\"usage\":{\"total_tokens\":12}}";
    assert_int_equal(sl_rerank_parse_reply(SL_RERANK_JINA, jina, strlen(jina), 10, 2, hits, &u, &e), 0);
    assert_int_equal(u.nhits, 2);
    assert_int_equal(hits[0].index, 11); /* the part's offset added */
    assert_true(hits[0].score == 0.5);
    assert_int_equal(hits[1].index, 10);
    assert_int_equal(u.usage_present, 1);
    assert_int_equal(u.tokens, 12);
    const char *ds = "{\"output\":{\"results\":[{\"index\":0,\"relevance_score\":0.9,\"document\":"
                     "{\"text\":\"x\"}}]},\"usage\":{\"total_tokens\":7},\"request_id\":\"r\"}";
    assert_int_equal(sl_rerank_parse_reply(SL_RERANK_DASHSCOPE, ds, strlen(ds), 0, 1, hits, &u, &e), 0);
    assert_int_equal(u.nhits, 1);
    assert_int_equal(u.tokens, 7);
    const char *co = "{\"id\":\"x\",\"results\":[{\"index\":0,\"relevance_score\":0.1}],\"meta\":"
                     "{\"billed_units\":{\"search_units\":1}}}";
    assert_int_equal(sl_rerank_parse_reply(SL_RERANK_COHERE, co, strlen(co), 0, 1, hits, &u, &e), 0);
    assert_int_equal(u.usage_present, 0);
    assert_int_equal(u.search_units, 1);
    const char *sf = "{\"results\":[{\"index\":0,\"relevance_score\":0.1}],\"meta\":{\"tokens\":"
                     "{\"input_tokens\":33,\"output_tokens\":0}}}";
    assert_int_equal(sl_rerank_parse_reply(SL_RERANK_JINA, sf, strlen(sf), 0, 1, hits, &u, &e), 0);
    assert_int_equal(u.tokens, 33);
    static const char *broken[] = {
        "[]",
        "{\"data\":[]}",
        "{\"results\":[{\"index\":2,\"relevance_score\":0.1}]}",
        "{\"results\":[{\"index\":0,\"relevance_score\":0.1},{\"index\":0,\"relevance_score\":0.2}]}",
        "{\"results\":[{\"index\":0}]}",
        "{\"results\":[{\"index\":0.5,\"relevance_score\":0.1}]}",
        ("{\"results\":[{\"index\":0,\"relevance_score\":1},{\"index\":1,\"relevance_score\":1},"
         "{\"index\":1,\"relevance_score\":1}]}"),
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        int rc = sl_rerank_parse_reply(SL_RERANK_JINA, broken[i], strlen(broken[i]), 0, 2, hits, &u, &e);
        if (rc != -1)
            print_error("accepted: %s\n", broken[i]);
        assert_int_equal(rc, -1);
        assert_int_equal(e.status, 502);
    }
}

static void test_parse_error(void **state)
{
    (void)state;
    struct sl_error e;
    const char *openai = "{\"error\":{\"message\":\"bad\",\"type\":\"invalid_request_error\",\"code\":\"x1\"}}";
    sl_rerank_parse_error(400, openai, strlen(openai), &e);
    assert_string_equal(e.message, "bad");
    assert_string_equal(e.code, "x1");
    const char *ds = "{\"code\":\"Throttling.RateQuota\",\"message\":\"Requests rate limit exceeded\"}";
    sl_rerank_parse_error(429, ds, strlen(ds), &e);
    assert_int_equal(e.status, 429);
    assert_string_equal(e.message, "Requests rate limit exceeded");
    assert_string_equal(e.code, "Throttling.RateQuota");
    const char *sf = "{\"code\":20012,\"message\":\"Model does not exist.\",\"data\":null}";
    sl_rerank_parse_error(400, sf, strlen(sf), &e);
    assert_string_equal(e.code, "20012");
    const char *jina = "{\"detail\":\"No API key\"}";
    sl_rerank_parse_error(401, jina, strlen(jina), &e);
    assert_string_equal(e.message, "No API key");
    const char *co = "{\"id\":\"a\",\"message\":\"invalid request: too many documents\"}";
    sl_rerank_parse_error(400, co, strlen(co), &e);
    assert_string_equal(e.message, "invalid request: too many documents");
    sl_rerank_parse_error(502, "<html>", 6, &e);
    assert_string_equal(e.message, "");
}

static void test_sort_and_reply(void **state)
{
    (void)state;
    struct sl_arena *a = sl_arena_new();
    struct sl_rerank_req r;
    struct sl_error e;
    int rc;
    cJSON *root = read_req(a, REQ, &r, &e, &rc);
    struct sl_rerank_hit hits[] = {{0, 0.1}, {2, 0.7}, {1, 0.7}};
    sl_rerank_sort(hits, 3);
    assert_int_equal(hits[0].index, 1); /* equal scores: the lower index first */
    assert_int_equal(hits[1].index, 2);
    assert_int_equal(hits[2].index, 0);
    struct sl_buf out = SL_BUF_INIT(1 << 20);
    assert_int_equal(sl_rerank_reply(&r, hits, 3, "rerank-1", "up", 9, 1, &out), 0);
    assert_string_equal(out.ptr,
                        "{\"id\":\"rerank-1\",\"model\":\"up\",\"results\":["
                        "{\"index\":1,\"relevance_score\":0.7,\"document\":{\"text\":\"d1\"}},"
                        "{\"index\":2,\"relevance_score\":0.7,\"document\":{\"text\":\"d2\"}}],"
                        "\"usage\":{\"prompt_tokens\":9,\"total_tokens\":9},\"meta\":{\"api_version\":"
                        "{\"version\":\"2\"},\"billed_units\":{\"search_units\":1}}}");
    sl_buf_release(&out);
    cJSON_Delete(root);
    sl_arena_free(a);
}

static void test_sim_score(void **state)
{
    (void)state;
    /* Q = {cats, like, milk}; D = {cats, drink, milk, happily}: 0.9 * 2/3 + 0.1 * 2/4 */
    assert_true(sl_sim_rerank_score("Cats like milk", "cats drink MILK, happily") == 0.9 * 2 / 3 + 0.1 * 2 / 4.0);
    assert_true(sl_sim_rerank_score("cats", "dogs") == 0);
    assert_true(sl_sim_rerank_score("...", "dogs") == 0);
    assert_true(sl_sim_rerank_score("same words", "words same") == 1.0);
    /* CJK bigrams: 违约责任 -> 违约 约责 责任; the clause has all three */
    double rel = sl_sim_rerank_score("违约责任", "第五条 违约责任：违约方应赔偿损失。");
    double unrel = sl_sim_rerank_score("违约责任", "第九条 争议解决：提交仲裁。");
    assert_true(rel > 0.9);
    assert_true(unrel == 0);
    /* one CJK character alone is its own feature; punctuation splits runs */
    assert_true(sl_sim_rerank_score("猫", "猫。狗") == 0.9 + 0.1 / 2);
    /* @sim: directives are not text */
    assert_true(sl_sim_rerank_score("hello @sim:status=429", "hello") == 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_read),   cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_wire_and_url),   cmocka_unit_test(test_encode),
        cmocka_unit_test(test_parse_reply),    cmocka_unit_test(test_parse_error),
        cmocka_unit_test(test_sort_and_reply), cmocka_unit_test(test_sim_score),
        cmocka_unit_test(test_plan),           cmocka_unit_test(test_encode_extra_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
