/* Unit tests for src/formats/embeddings.c: reading the client's request, the batch
 * plan, the three upstream request shapes, reply and error parsing, and base64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "formats/embeddings.h"

/* A provider and a model of it, as the config would hold them. */
struct fixture {
    struct sl_provider_cfg p;
    struct sl_model_cfg m;
};

static void setup_model(struct fixture *f, enum sl_wire kind, enum sl_embed_wire emb,
                        const char *base_url, const char *model)
{
    memset(f, 0, sizeof(*f));
    f->p.name = "prov";
    f->p.kind = kind;
    f->p.embeddings = emb;
    f->p.base_url = (char *)base_url;
    f->p.api_key = "sk-test";
    f->m.name = "client-model";
    f->m.provider = "prov";
    f->m.model = (char *)model;
    f->m.p = &f->p;
}

/* Reads body into r (root returned, free with cJSON_Delete); rc is what read gave. */
static cJSON *read_req(const char *body, struct sl_embed_req *r, struct sl_error *e, int *rc)
{
    cJSON *root = cJSON_Parse(body);
    assert_non_null(root);
    *rc = sl_embed_request_read(root, body, strlen(body), r, e);
    return root;
}

static void expect_bad(const char *body, const char *param)
{
    struct sl_embed_req r;
    struct sl_error e;
    int rc;
    cJSON *root = read_req(body, &r, &e, &rc);
    if (rc != -1)
        print_error("accepted: %s\n", body);
    assert_int_equal(rc, -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.param, param);
    cJSON_Delete(root);
}

static void test_request_forms(void **state)
{
    struct sl_embed_req r;
    struct sl_error e;
    int rc;
    cJSON *root = read_req("{\"model\":\"m\",\"input\":\"hello\"}", &r, &e, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(r.ninputs, 1);
    assert_true(r.single);
    assert_false(r.tokens);
    assert_string_equal(sl_embed_input(&r, 0)->valuestring, "hello");
    cJSON_Delete(root);

    root = read_req("{\"model\":\"m\",\"input\":[\"a\",\"b\",\"c\"],\"encoding_format\":\"base64\","
                    "\"dimensions\":256,\"user\":\"u1\"}", &r, &e, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(r.ninputs, 3);
    assert_false(r.single);
    assert_true(r.base64);
    assert_int_equal(r.dimensions, 256);
    assert_string_equal(sl_embed_input(&r, 2)->valuestring, "c");
    cJSON_Delete(root);

    root = read_req("{\"model\":\"m\",\"input\":[1,2,3]}", &r, &e, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(r.ninputs, 1);
    assert_true(r.single && r.tokens);
    cJSON_Delete(root);

    root = read_req("{\"model\":\"m\",\"input\":[[1,2],[3]],\"encoding_format\":\"float\"}", &r, &e,
                    &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(r.ninputs, 2);
    assert_true(r.tokens);
    assert_false(r.single || r.base64);
    cJSON_Delete(root);
}

static void test_request_errors(void **state)
{
    expect_bad("{\"model\":\"m\"}", "input");
    expect_bad("{\"model\":\"m\",\"input\":\"\"}", "input");
    expect_bad("{\"model\":\"m\",\"input\":[]}", "input");
    expect_bad("{\"model\":\"m\",\"input\":42}", "input");
    expect_bad("{\"model\":\"m\",\"input\":{\"text\":\"a\"}}", "input");
    expect_bad("{\"model\":\"m\",\"input\":[\"a\",\"\"]}", "input");
    expect_bad("{\"model\":\"m\",\"input\":[\"a\",[1]]}", "input");
    expect_bad("{\"model\":\"m\",\"input\":[[1],[]]}", "input");
    expect_bad("{\"model\":\"m\",\"input\":[1,\"a\"]}", "input");
    expect_bad("{\"model\":\"m\",\"input\":[1.5]}", "input");
    expect_bad("{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":\"int8\"}", "encoding_format");
    expect_bad("{\"model\":\"m\",\"input\":\"a\",\"dimensions\":0}", "dimensions");
    expect_bad("{\"model\":\"m\",\"input\":\"a\",\"dimensions\":\"256\"}", "dimensions");
    expect_bad("{\"model\":\"m\",\"input\":\"a\",\"user\":7}", "user");

    /* 2048 inputs are fine, 2049 are not */
    size_t cap = 16 + 4 * 2049 + 32;
    char *body = malloc(cap);
    for (int n = 2048; n <= 2049; n++) {
        size_t len = (size_t)snprintf(body, cap, "{\"model\":\"m\",\"input\":[");
        for (int i = 0; i < n; i++)
            len += (size_t)snprintf(body + len, cap - len, "%s\"x\"", i ? "," : "");
        snprintf(body + len, cap - len, "]}");
        struct sl_embed_req r;
        struct sl_error e;
        int rc;
        cJSON *root = read_req(body, &r, &e, &rc);
        assert_int_equal(rc, n == 2048 ? 0 : -1);
        cJSON_Delete(root);
    }
    free(body);
}

static void test_batch_plan(void **state)
{
    int off, cnt;
    assert_int_equal(sl_embed_nparts(25, 10), 3);
    sl_embed_part(25, 10, 0, &off, &cnt);
    assert_int_equal(off, 0);
    assert_int_equal(cnt, 10);
    sl_embed_part(25, 10, 1, &off, &cnt);
    assert_int_equal(off, 10);
    assert_int_equal(cnt, 10);
    sl_embed_part(25, 10, 2, &off, &cnt);
    assert_int_equal(off, 20);
    assert_int_equal(cnt, 5);
    assert_int_equal(sl_embed_nparts(20, 10), 2);
    assert_int_equal(sl_embed_nparts(1, 2048), 1);
    assert_int_equal(sl_embed_nparts(2048, 100), 21);
    sl_embed_part(2048, 100, 20, &off, &cnt);
    assert_int_equal(off, 2000);
    assert_int_equal(cnt, 48);
}

static void test_batch_limits(void **state)
{
    struct fixture f;
    setup_model(&f, SL_WIRE_OPENAI, SL_EMBED_DASHSCOPE, "https://x", "text-embedding-v3");
    assert_int_equal(sl_embed_batch_limit(SL_EMBED_DASHSCOPE, &f.m), 10);
    f.m.model = "text-embedding-v4";
    assert_int_equal(sl_embed_batch_limit(SL_EMBED_DASHSCOPE, &f.m), 10);
    f.m.model = "text-embedding-v2";
    assert_int_equal(sl_embed_batch_limit(SL_EMBED_DASHSCOPE, &f.m), 25);
    f.m.model = "text-embedding-v3"; /* DashScope's OpenAI-compatible endpoint too */
    assert_int_equal(sl_embed_batch_limit(SL_EMBED_OPENAI, &f.m), 10);
    f.m.max_batch = 6;
    assert_int_equal(sl_embed_batch_limit(SL_EMBED_DASHSCOPE, &f.m), 6);
    f.m.max_batch = 0;
    f.m.model = "text-embedding-3-small";
    assert_int_equal(sl_embed_batch_limit(SL_EMBED_OPENAI, &f.m), 2048);
    f.m.model = "gemini-embedding-001";
    assert_int_equal(sl_embed_batch_limit(SL_EMBED_GEMINI, &f.m), 100);

    assert_int_equal(sl_embed_wire_of(&f.p), SL_EMBED_DASHSCOPE);
    f.p.embeddings = SL_EMBED_AUTO;
    assert_int_equal(sl_embed_wire_of(&f.p), SL_EMBED_OPENAI);
    f.p.kind = SL_WIRE_GEMINI;
    assert_int_equal(sl_embed_wire_of(&f.p), SL_EMBED_GEMINI);
    f.p.kind = SL_WIRE_ANTHROPIC;
    assert_int_equal(sl_embed_wire_of(&f.p), SL_EMBED_AUTO);
}

static int has_header(const struct sl_encoded *enc, const char *line)
{
    for (int i = 0; i < enc->nheaders; i++)
        if (strcmp(enc->headers[i], line) == 0)
            return 1;
    return 0;
}

static void test_encode_openai(void **state)
{
    struct fixture f;
    struct sl_embed_req r;
    struct sl_error e;
    struct sl_encoded enc;
    struct sl_arena *a = sl_arena_new();
    int rc;
    setup_model(&f, SL_WIRE_OPENAI, SL_EMBED_AUTO, "https://api.example/v1", "text-embedding-3-small");
    const char *body = "{ \"input\" : [\"a\",\"b\",\"c\"], \"model\": \"alias\", \"x_vendor\": 12345678901234567890 }";
    cJSON *root = read_req(body, &r, &e, &rc);
    assert_int_equal(rc, 0);
    /* one request: the client's bytes, only model replaced */
    assert_int_equal(sl_embed_encode(SL_EMBED_OPENAI, &r, &f.m, 0, 3, a, &enc), 0);
    assert_string_equal(enc.url, "https://api.example/v1/embeddings");
    assert_string_equal(enc.body, "{ \"input\" : [\"a\",\"b\",\"c\"], \"model\": "
                                  "\"text-embedding-3-small\", \"x_vendor\": 12345678901234567890 }");
    assert_int_equal(enc.len, strlen(enc.body));
    assert_true(has_header(&enc, "Authorization: Bearer sk-test"));
    assert_true(has_header(&enc, "Content-Type: application/json"));
    /* a slice: re-printed with the part's inputs */
    assert_int_equal(sl_embed_encode(SL_EMBED_OPENAI, &r, &f.m, 1, 2, a, &enc), 0);
    cJSON *up = cJSON_Parse(enc.body);
    assert_string_equal(cJSON_GetObjectItem(up, "model")->valuestring, "text-embedding-3-small");
    cJSON *in = cJSON_GetObjectItem(up, "input");
    assert_int_equal(cJSON_GetArraySize(in), 2);
    assert_string_equal(cJSON_GetArrayItem(in, 0)->valuestring, "b");
    assert_string_equal(cJSON_GetArrayItem(in, 1)->valuestring, "c");
    assert_non_null(cJSON_GetObjectItem(up, "x_vendor"));
    cJSON_Delete(up);
    cJSON_Delete(root);
    sl_arena_free(a);
}

static void test_encode_dashscope(void **state)
{
    struct fixture f;
    struct sl_embed_req r;
    struct sl_error e;
    struct sl_encoded enc;
    struct sl_arena *a = sl_arena_new();
    int rc;
    setup_model(&f, SL_WIRE_OPENAI, SL_EMBED_DASHSCOPE, "https://dashscope.aliyuncs.com/compatible-mode/v1",
                "text-embedding-v4");
    cJSON *root = read_req("{\"model\":\"q\",\"input\":[\"风急天高\",\"b\\\"q\",\"c\"],\"dimensions\":512}",
                           &r, &e, &rc);
    assert_int_equal(sl_embed_encode(SL_EMBED_DASHSCOPE, &r, &f.m, 1, 2, a, &enc), 0);
    assert_string_equal(enc.url, SL_EMBED_DASHSCOPE_URL);
    assert_string_equal(enc.body, "{\"model\":\"text-embedding-v4\",\"input\":{\"texts\":[\"b\\\"q\",\"c\"]},"
                                  "\"parameters\":{\"dimension\":512}}");
    assert_true(has_header(&enc, "Authorization: Bearer sk-test"));
    char url[] = "https://dashscope-intl.aliyuncs.com/x";
    f.p.embeddings_url = url;
    assert_int_equal(sl_embed_encode(SL_EMBED_DASHSCOPE, &r, &f.m, 0, 1, a, &enc), 0);
    assert_string_equal(enc.url, "https://dashscope-intl.aliyuncs.com/x");
    assert_string_equal(enc.body, "{\"model\":\"text-embedding-v4\",\"input\":{\"texts\":[\"风急天高\"]},"
                                  "\"parameters\":{\"dimension\":512}}");
    cJSON_Delete(root);
    sl_arena_free(a);
}

static void test_encode_gemini(void **state)
{
    struct fixture f;
    struct sl_embed_req r;
    struct sl_error e;
    struct sl_encoded enc;
    struct sl_arena *a = sl_arena_new();
    int rc;
    setup_model(&f, SL_WIRE_GEMINI, SL_EMBED_AUTO, "https://generativelanguage.googleapis.com/v1beta",
                "gemini-embedding-001");
    cJSON *root = read_req("{\"model\":\"g\",\"input\":[\"one\",\"two\"],\"dimensions\":768}", &r, &e, &rc);
    assert_int_equal(sl_embed_encode(SL_EMBED_GEMINI, &r, &f.m, 0, 2, a, &enc), 0);
    assert_string_equal(enc.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                                 "gemini-embedding-001:batchEmbedContents");
    assert_string_equal(enc.body,
                        "{\"requests\":[{\"model\":\"models/gemini-embedding-001\",\"content\":{\"parts\":"
                        "[{\"text\":\"one\"}]},\"outputDimensionality\":768},{\"model\":\"models/"
                        "gemini-embedding-001\",\"content\":{\"parts\":[{\"text\":\"two\"}]},"
                        "\"outputDimensionality\":768}]}");
    assert_true(has_header(&enc, "x-goog-api-key: sk-test"));
    assert_false(has_header(&enc, "Authorization: Bearer sk-test"));
    cJSON_Delete(root);
    sl_arena_free(a);
}

static int parse(enum sl_embed_wire w, const char *body, int cnt, struct sl_embed_vec *vecs,
                 struct sl_embed_parsed *u, struct sl_error *e, struct sl_arena *a)
{
    memset(vecs, 0, (size_t)cnt * sizeof(*vecs));
    return sl_embed_parse_reply(w, body, strlen(body), cnt, SL_EMBED_MAX_VALUES, a, vecs, u, e);
}

static void test_parse_replies(void **state)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_embed_vec v[3];
    struct sl_embed_parsed u;
    struct sl_error e;
    /* OpenAI, indexes out of order */
    assert_int_equal(parse(SL_EMBED_OPENAI,
                           "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":1,\"embedding\":"
                           "[0.5,-1]},{\"object\":\"embedding\",\"index\":0,\"embedding\":[0.25,2]}],"
                           "\"usage\":{\"prompt_tokens\":7,\"total_tokens\":7}}", 2, v, &u, &e, a), 0);
    assert_int_equal(v[0].dim, 2);
    assert_true(v[0].v[0] == 0.25 && v[1].v[1] == -1.0);
    assert_true(u.usage_present);
    assert_int_equal(u.tokens, 7);
    assert_int_equal(u.values, 4);
    /* DashScope native */
    assert_int_equal(parse(SL_EMBED_DASHSCOPE,
                           "{\"output\":{\"embeddings\":[{\"text_index\":0,\"embedding\":[-0.0409708134829998]},"
                           "{\"text_index\":1,\"embedding\":[1e-3]}]},\"usage\":{\"total_tokens\":12},"
                           "\"request_id\":\"r\"}", 2, v, &u, &e, a), 0);
    assert_true(v[0].v[0] == -0.0409708134829998 && v[1].v[0] == 0.001);
    assert_int_equal(u.tokens, 12);
    /* Gemini: by position, no usage */
    assert_int_equal(parse(SL_EMBED_GEMINI, "{\"embeddings\":[{\"values\":[1,2,3]},{\"values\":[4,5,6]}]}",
                           2, v, &u, &e, a), 0);
    assert_true(v[1].v[2] == 6.0);
    assert_false(u.usage_present);
    /* OpenAI base64 (the client asked for it and the batch was split) */
    assert_int_equal(parse(SL_EMBED_OPENAI, "{\"data\":[{\"index\":0,\"embedding\":\"AACAPwAAAMAAAAA/zczMPQ==\"}]}",
                           1, v, &u, &e, a), 0);
    assert_int_equal(v[0].dim, 4);
    assert_true(v[0].v[0] == 1.0 && v[0].v[1] == -2.0 && v[0].v[2] == 0.5 && v[0].v[3] == (double)0.1f);
    /* malformed */
    assert_int_equal(parse(SL_EMBED_GEMINI, "{\"embeddings\":[{\"values\":[1]}]}", 2, v, &u, &e, a), -1);
    assert_int_equal(e.status, 502);
    assert_int_equal(parse(SL_EMBED_OPENAI, "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":0,"
                           "\"embedding\":[2]}]}", 2, v, &u, &e, a), -1);
    assert_int_equal(parse(SL_EMBED_OPENAI, "{\"data\":[{\"index\":5,\"embedding\":[1]}]}", 1, v, &u, &e, a), -1);
    assert_int_equal(parse(SL_EMBED_DASHSCOPE, "{\"output\":{\"embeddings\":[{\"embedding\":[\"x\"]}]}}", 1,
                           v, &u, &e, a), -1);
    assert_int_equal(parse(SL_EMBED_OPENAI, "{\"data\":[{\"embedding\":\"AAA\"}]}", 1, v, &u, &e, a), -1);
    assert_int_equal(parse(SL_EMBED_OPENAI, "[]", 1, v, &u, &e, a), -1);
    const char *big = "{\"embeddings\":[{\"values\":[1,2,3]}]}";
    memset(v, 0, sizeof(v));
    assert_int_equal(sl_embed_parse_reply(SL_EMBED_GEMINI, big, strlen(big), 1, 2, a, v, &u, &e),
                     -1); /* over the value budget */
    sl_arena_free(a);
}

static void test_parse_errors(void **state)
{
    struct sl_error e;
    const char *oa = "{\"error\":{\"message\":\"bad input\",\"type\":\"invalid_request_error\",\"code\":\"x\"}}";
    sl_embed_parse_error(SL_EMBED_OPENAI, 400, oa, strlen(oa), &e);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.message, "bad input");
    assert_string_equal(e.type, "invalid_request_error");
    assert_string_equal(e.code, "x");
    const char *ds = "{\"code\":\"InvalidParameter\",\"message\":\"batch size is invalid\",\"request_id\":\"r\"}";
    sl_embed_parse_error(SL_EMBED_DASHSCOPE, 400, ds, strlen(ds), &e);
    assert_string_equal(e.message, "batch size is invalid");
    assert_string_equal(e.code, "InvalidParameter");
    assert_string_equal(e.type, "invalid_request_error");
    const char *gm = "[{\"error\":{\"code\":429,\"message\":\"quota\",\"status\":\"RESOURCE_EXHAUSTED\"}}]";
    sl_embed_parse_error(SL_EMBED_GEMINI, 429, gm, strlen(gm), &e);
    assert_string_equal(e.message, "quota");
    assert_string_equal(e.code, "RESOURCE_EXHAUSTED");
    assert_string_equal(e.type, "rate_limit_error");
    sl_embed_parse_error(SL_EMBED_OPENAI, 502, "<html>", 6, &e);
    assert_string_equal(e.message, "");
}

/* A reference encoder, byte by byte, to check the chunked one against. */
static void naive_base64(const double *v, int n, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned char *bytes = malloc((size_t)n * 4);
    for (int i = 0; i < n; i++) {
        float f = (float)v[i];
        memcpy(bytes + 4 * i, &f, 4); /* the test machine is little-endian */
    }
    size_t nb = (size_t)n * 4, o = 0;
    for (size_t i = 0; i < nb; i += 3) {
        uint32_t x = (uint32_t)bytes[i] << 16 | (i + 1 < nb ? (uint32_t)bytes[i + 1] << 8 : 0) |
                     (i + 2 < nb ? bytes[i + 2] : 0);
        out[o++] = al[x >> 18 & 63];
        out[o++] = al[x >> 12 & 63];
        out[o++] = i + 1 < nb ? al[x >> 6 & 63] : '=';
        out[o++] = i + 2 < nb ? al[x & 63] : '=';
    }
    out[o] = '\0';
    free(bytes);
}

static void test_base64(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1 << 20);
    const double v[] = {1.0, -2.0, 0.5, 0.1};
    assert_int_equal(sl_embed_base64(v, 4, &b), 0);
    assert_string_equal(b.ptr, "AACAPwAAAMAAAAA/zczMPQ==");
    sl_buf_reset(&b);
    const double q = 0.25;
    sl_embed_base64(&q, 1, &b);
    assert_string_equal(b.ptr, "AACAPg==");
    /* past the 192-float chunk, odd lengths: equal to the byte-by-byte encoding */
    for (int n = 190; n <= 385; n += 13) {
        double *w = malloc((size_t)n * sizeof(double));
        char *want = malloc((size_t)n * 6 + 8);
        for (int i = 0; i < n; i++)
            w[i] = (i - 100) * 0.0123;
        naive_base64(w, n, want);
        sl_buf_reset(&b);
        assert_int_equal(sl_embed_base64(w, n, &b), 0);
        assert_string_equal(b.ptr, want);
        free(w);
        free(want);
    }
    sl_buf_release(&b);
}

static void test_reply(void **state)
{
    double a[] = {0.1, -0.0409708134829998, 1e-7}, c[] = {2, 0.5};
    struct sl_embed_vec v[] = {{a, 3}, {c, 2}};
    struct sl_buf b = SL_BUF_INIT(1 << 20);
    assert_int_equal(sl_embed_reply(v, 2, "text-embedding-v4", 9, 0, &b), 0);
    assert_string_equal(b.ptr, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                               "\"embedding\":[0.1,-0.0409708134829998,1e-07]},{\"object\":\"embedding\","
                               "\"index\":1,\"embedding\":[2,0.5]}],\"model\":\"text-embedding-v4\","
                               "\"usage\":{\"prompt_tokens\":9,\"total_tokens\":9}}");
    sl_buf_reset(&b);
    assert_int_equal(sl_embed_reply(v + 1, 1, "m", 0, 1, &b), 0);
    assert_string_equal(b.ptr, "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\",\"index\":0,"
                               "\"embedding\":\"AAAAQAAAAD8=\"}],\"model\":\"m\","
                               "\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0}}");
    sl_buf_release(&b);
}

static void test_config_keys(void **state)
{
    const char *yaml = "providers:\n"
                       "  - {name: qwen, kind: openai, base_url: https://dashscope.aliyuncs.com/compatible-mode/v1,\n"
                       "     embeddings: dashscope, embeddings_url: https://dashscope-intl.aliyuncs.com/api/v1/e/}\n"
                       "  - {name: oa, kind: openai, base_url: https://api.openai.com/v1}\n"
                       "models:\n"
                       "  - {name: q, provider: qwen, model: text-embedding-v4, max_batch: 6}\n"
                       "  - {name: o, provider: oa}\n";
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = NULL;
    assert_int_equal(sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors), 0);
    assert_int_equal(cfg->providers[0].embeddings, SL_EMBED_DASHSCOPE);
    assert_string_equal(cfg->providers[0].embeddings_url, "https://dashscope-intl.aliyuncs.com/api/v1/e");
    assert_int_equal(cfg->providers[1].embeddings, SL_EMBED_AUTO);
    assert_null(cfg->providers[1].embeddings_url);
    assert_int_equal(cfg->models[0].max_batch, 6);
    assert_int_equal(cfg->models[1].max_batch, 0);
    sl_config_free(cfg);
    cfg = NULL;

    const char *bad = "providers:\n"
                      "  - {name: p, kind: openai, base_url: https://x, embeddings: cohere, embeddings_url: ftp://x}\n"
                      "models:\n"
                      "  - {name: m, provider: p, max_batch: 0}\n"
                      "  - {name: n, provider: p, max_batch: 2049}\n";
    assert_int_equal(sl_config_parse(bad, strlen(bad), "t.yaml", &cfg, &errors), -1);
    assert_null(cfg);
    assert_non_null(strstr(errors.ptr, "t.yaml:2: providers[0].embeddings: 'cohere' is not one of openai, dashscope, gemini"));
    assert_non_null(strstr(errors.ptr, "providers[0].embeddings_url: expected an http:// or https:// URL"));
    assert_non_null(strstr(errors.ptr, "t.yaml:4: models[0].max_batch: '0' is not a number of inputs from 1 to 2048"));
    assert_non_null(strstr(errors.ptr, "t.yaml:5: models[1].max_batch: '2049'"));
    sl_buf_release(&errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_forms),   cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_batch_plan),      cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_encode_openai),   cmocka_unit_test(test_encode_dashscope),
        cmocka_unit_test(test_encode_gemini),   cmocka_unit_test(test_parse_replies),
        cmocka_unit_test(test_parse_errors),    cmocka_unit_test(test_base64),
        cmocka_unit_test(test_reply),           cmocka_unit_test(test_config_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
