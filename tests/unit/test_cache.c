/* Unit tests for src/cache/: key canonicalisation, the policy, the semantic text and
 * scope, the memory backend's LRU eviction, the SQLite backend across a reopen, the
 * semantic index, and the cache: config section. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/index.h"
#include "config/config.h"
#include "store/store.h"

static void key_of(const char *json, const char *name, const char *tenant, uint8_t *k)
{
    cJSON *req = cJSON_Parse(json);
    assert_non_null(req);
    assert_int_equal(sl_cache_key(req, name, tenant, k), 0);
    cJSON_Delete(req);
}

static int same_key(const char *a, const char *b)
{
    uint8_t ka[SL_CACHE_KEY_LEN], kb[SL_CACHE_KEY_LEN];
    key_of(a, "g", "", ka);
    key_of(b, "g", "", kb);
    return memcmp(ka, kb, sizeof(ka)) == 0;
}

static void test_key_canonical(void **state)
{
    const char *base = "{\"model\":\"g\",\"temperature\":0,\"messages\":[{\"role\":\"user\","
                       "\"content\":\"hi\"}],\"max_tokens\":10}";
    /* key order, spelling of numbers and the fields that do not shape the answer */
    assert_true(same_key(base, "{\"max_tokens\":10,\"messages\":[{\"content\":\"hi\",\"role\":"
                               "\"user\"}],\"temperature\":0.0,\"model\":\"other\"}"));
    assert_true(same_key(base, "{\"model\":\"g\",\"temperature\":0,\"messages\":[{\"role\":"
                               "\"user\",\"content\":\"hi\"}],\"max_tokens\":10,\"stream\":true,"
                               "\"stream_options\":{\"include_usage\":true},\"user\":\"u1\"}"));
    /* anything that changes the answer changes the key */
    assert_false(same_key(base, "{\"model\":\"g\",\"temperature\":0,\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"hi!\"}],\"max_tokens\":10}"));
    assert_false(same_key(base, "{\"model\":\"g\",\"temperature\":0,\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"hi\"}],\"max_tokens\":11}"));
    assert_false(same_key(base, "{\"model\":\"g\",\"temperature\":0,\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"hi\"}],\"max_tokens\":10,\"seed\":1}"));
    assert_false(same_key(base, "{\"model\":\"g\",\"temperature\":0,\"messages\":[{\"role\":"
                                "\"user\",\"content\":\"hi\"}],\"max_tokens\":10,\"tools\":[]}"));
    /* a string is not the number it spells, nor an array its items */
    assert_false(same_key("{\"a\":\"1\"}", "{\"a\":1}"));
    assert_false(same_key("{\"a\":[\"x\",\"y\"]}", "{\"a\":[\"xy\"]}"));
    /* the name asked for and the tenant are part of the key */
    uint8_t k1[SL_CACHE_KEY_LEN], k2[SL_CACHE_KEY_LEN];
    key_of(base, "g", "key_a", k1);
    key_of(base, "g", "key_b", k2);
    assert_memory_not_equal(k1, k2, sizeof(k1));
    key_of(base, "h", "key_a", k2);
    assert_memory_not_equal(k1, k2, sizeof(k1));
}

static void test_policy(void **state)
{
    struct sl_cache_cfg cfg = {.rule = {.enabled = SL_CACHE_TEMP0, .ttl_ms = 1000,
                                        .semantic = SL_FLAG_NO, .threshold = 0.95,
                                        .stale_on_error = SL_FLAG_NO}};
    struct sl_cache_rule group = {.ttl_ms = 50, .stale_on_error = SL_FLAG_YES, .threshold = 0.9};
    struct sl_cache_policy p;
    sl_cache_policy_of(&cfg, &group, &p);
    assert_int_equal(p.when, SL_CACHE_TEMP0);
    assert_int_equal(p.ttl_ms, 50);
    assert_int_equal(p.stale_on_error, 1);
    assert_int_equal(p.semantic, 0);
    assert_true(fabs(p.threshold - 0.9) < 1e-9);
    cJSON *t0 = cJSON_Parse("{\"temperature\":0,\"messages\":[]}");
    cJSON *t7 = cJSON_Parse("{\"temperature\":0.7,\"messages\":[]}");
    cJSON *none = cJSON_Parse("{\"messages\":[]}");
    cJSON *n2 = cJSON_Parse("{\"temperature\":0,\"n\":2}");
    assert_true(sl_cache_wanted(&p, t0, NULL));
    assert_false(sl_cache_wanted(&p, t7, NULL));
    assert_false(sl_cache_wanted(&p, none, NULL));
    assert_true(sl_cache_wanted(&p, t7, "force"));
    assert_false(sl_cache_wanted(&p, t0, "skip"));
    assert_false(sl_cache_wanted(&p, n2, "force"));
    p.when = SL_CACHE_ALWAYS;
    assert_true(sl_cache_wanted(&p, t7, NULL));
    p.when = SL_CACHE_OFF;
    assert_false(sl_cache_wanted(&p, t0, "force"));
    cJSON_Delete(t0);
    cJSON_Delete(t7);
    cJSON_Delete(none);
    cJSON_Delete(n2);
}

static void test_semantic_text_and_scope(void **state)
{
    cJSON *plain = cJSON_Parse("{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                               "{\"role\":\"user\",\"content\":\"capital of France?\"}]}");
    cJSON *other_sys = cJSON_Parse("{\"messages\":[{\"role\":\"system\",\"content\":\"be long\"},"
                                   "{\"role\":\"user\",\"content\":\"capital of Spain?\"}]}");
    cJSON *same_sys = cJSON_Parse("{\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                                  "{\"role\":\"user\",\"content\":\"capital of Spain?\"}]}");
    cJSON *tools = cJSON_Parse("{\"tools\":[{\"type\":\"function\"}],\"messages\":[{\"role\":"
                               "\"user\",\"content\":\"x\"}]}");
    cJSON *image = cJSON_Parse("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                               "\"image_url\",\"image_url\":{\"url\":\"data:\"}}]}]}");
    cJSON *tool_turn = cJSON_Parse("{\"messages\":[{\"role\":\"tool\",\"content\":\"42\"},"
                                   "{\"role\":\"user\",\"content\":\"x\"}]}");
    assert_string_equal(sl_cache_semantic_text(plain), "capital of France?");
    assert_null(sl_cache_semantic_text(tools));
    assert_null(sl_cache_semantic_text(image));
    assert_null(sl_cache_semantic_text(tool_turn));
    assert_true(sl_cache_semantic_scope(plain, "g", "") == sl_cache_semantic_scope(same_sys, "g", ""));
    assert_true(sl_cache_semantic_scope(plain, "g", "") != sl_cache_semantic_scope(other_sys, "g", ""));
    assert_true(sl_cache_semantic_scope(plain, "g", "a") != sl_cache_semantic_scope(plain, "g", "b"));
    assert_true(sl_cache_semantic_scope(plain, "g", "") != sl_cache_semantic_scope(plain, "h", ""));
    cJSON_Delete(plain);
    cJSON_Delete(other_sys);
    cJSON_Delete(same_sys);
    cJSON_Delete(tools);
    cJSON_Delete(image);
    cJSON_Delete(tool_turn);
}

static void put_value(struct sl_cache_backend *b, int i, size_t len)
{
    uint8_t k[SL_CACHE_KEY_LEN] = {0};
    char *v = malloc(len);
    assert_non_null(v);
    memset(v, 'a' + i % 26, len);
    memcpy(k, &i, sizeof(i));
    struct sl_cache_entry e = {.value = v, .len = len, .created_ms = 1000 + i,
                               .expires_ms = 5000 + i, .cost_micros = i, .currency = "USD"};
    assert_int_equal(b->ops->put(b, k, &e), 0);
    free(v);
}

static int has(struct sl_cache_backend *b, int i)
{
    uint8_t k[SL_CACHE_KEY_LEN] = {0};
    struct sl_cache_entry e;
    memcpy(k, &i, sizeof(i));
    int r = b->ops->get(b, k, &e);
    if (r == 0) {
        assert_int_equal(e.cost_micros, i);
        assert_int_equal(e.value[0], 'a' + i % 26);
        free(e.value);
    }
    return r == 0;
}

static void test_memory_lru_eviction(void **state)
{
    size_t per = 1000 + sl_cache_memory_overhead();
    struct sl_cache_backend *b = sl_cache_memory_new(per * 3);
    assert_non_null(b);
    put_value(b, 1, 1000);
    put_value(b, 2, 1000);
    put_value(b, 3, 1000);
    assert_true(has(b, 1)); /* 1 is now the most recently used */
    put_value(b, 4, 1000);  /* over the cap: the least recently used (2) goes */
    assert_true(has(b, 1));
    assert_false(has(b, 2));
    assert_true(has(b, 3));
    assert_true(has(b, 4));
    size_t n, bytes;
    b->ops->stats(b, &n, &bytes);
    assert_int_equal(n, 3);
    assert_true(bytes <= per * 3);
    /* larger than the whole cap: refused, nothing evicted for it */
    uint8_t k[SL_CACHE_KEY_LEN] = {9};
    char big[4096] = {0};
    struct sl_cache_entry e = {.value = big, .len = sizeof(big)};
    assert_int_equal(b->ops->put(b, k, &e), -1);
    assert_true(has(b, 3));
    /* expired past the stale window */
    b->ops->evict(b, 5003 + 1);
    assert_false(has(b, 1));
    assert_false(has(b, 3));
    assert_true(has(b, 4));
    /* many entries: the table grows and every one is still found */
    for (int i = 100; i < 3000; i++)
        put_value(b, i, 1);
    b->ops->free(b);
    b = sl_cache_memory_new(1u << 30);
    for (int i = 100; i < 3000; i++)
        put_value(b, i, 8);
    for (int i = 100; i < 3000; i++)
        assert_true(has(b, i));
    b->ops->free(b);
}

static void test_sqlite_backend_persists(void **state)
{
    char dir[] = "/tmp/sl_cache_XXXXXX", path[128], url[160], err[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/c.db", dir);
    snprintf(url, sizeof(url), "sqlite://%s", path);
    struct sl_store *s = NULL;
    assert_int_equal(sl_store_open(url, 0, &s, err, sizeof(err)), SL_STORE_OK);
    sl_store_close(s);
    struct sl_cache_backend *b = sl_cache_sqlite_new(path, 3500, err, sizeof(err));
    assert_non_null(b);
    put_value(b, 1, 1000);
    put_value(b, 2, 1000);
    put_value(b, 3, 1000);
    uint8_t k[SL_CACHE_KEY_LEN] = {0};
    int one = 1;
    memcpy(k, &one, sizeof(one));
    float v[4] = {1, 0, 0, 0};
    assert_int_equal(b->ops->put_vector(b, k, 77, v, 4), 0);
    b->ops->free(b);
    b = sl_cache_sqlite_new(path, 3500, err, sizeof(err));
    assert_non_null(b);
    assert_true(has(b, 1));
    assert_true(has(b, 3));
    size_t n, bytes;
    b->ops->stats(b, &n, &bytes);
    assert_int_equal(n, 3);
    assert_int_equal(bytes, 3000);
    put_value(b, 4, 1000); /* over 3500: the oldest go first */
    assert_false(has(b, 1));
    assert_true(has(b, 4));
    b->ops->free(b);
    static const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof(p), "%s%s", path, suffix[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void unit(float *v, int dim, int hot, float w)
{
    for (int i = 0; i < dim; i++)
        v[i] = 0.01f * (float)((i * 7 + hot) % 5);
    v[hot] += w;
    sl_cache_normalise(v, dim);
}

static void test_index(void **state)
{
    enum { DIM = 37 }; /* not a multiple of 8 or 16: the tails of the dot product count */
    struct sl_cache_index ix;
    float v[DIM], q[DIM], s = 0;
    uint8_t k[SL_CACHE_KEY_LEN] = {0};
    assert_int_equal(sl_cache_index_init(&ix, DIM, 4), 0);
    for (int i = 0; i < 4; i++) {
        unit(v, DIM, i, 1.0f);
        k[0] = (uint8_t)i;
        assert_int_equal(sl_cache_index_add(&ix, k, i < 3 ? 1 : 2, v, DIM), 0);
    }
    unit(q, DIM, 2, 1.0f);
    long best = sl_cache_index_search(&ix, 1, q, &s);
    assert_int_equal(best, 2);
    assert_true(fabsf(s - 1.0f) < 1e-4f);
    /* scope 2 holds only vector 3, however far from q */
    best = sl_cache_index_search(&ix, 2, q, &s);
    assert_int_equal(best, 3);
    assert_true(s < 0.9f);
    assert_int_equal(sl_cache_index_search(&ix, 9, q, &s), -1);
    /* full: the oldest slot (0) is overwritten */
    unit(v, DIM, 5, 1.0f);
    k[0] = 9;
    sl_cache_index_add(&ix, k, 1, v, DIM);
    assert_int_equal(ix.n, 4);
    assert_int_equal(ix.keys[0][0], 9);
    sl_cache_index_remove(&ix, 0);
    assert_int_equal(ix.n, 3);
    assert_int_equal(ix.keys[0][0], 3); /* the last moved in */
    assert_int_equal(sl_cache_index_add(&ix, k, 1, v, DIM + 1), -1);
    /* the dot product matches a plain loop */
    double want = 0;
    for (int i = 0; i < DIM; i++)
        want += (double)q[i] * v[i];
    assert_true(fabs(sl_cache_dot(q, v, DIM) - want) < 1e-5);
    sl_cache_index_release(&ix);
}

/* The two-stage scan finds what a plain float32 scan finds, over many vectors whose
 * best matches are close together; and the sign sketch is what it says. */
static void test_index_two_stage_matches_brute_force(void **state)
{
    enum { DIM = 100, N = 3000 };
    struct sl_cache_index ix;
    float *all = malloc((size_t)N * DIM * sizeof(float)), q[DIM];
    uint8_t k[SL_CACHE_KEY_LEN] = {0};
    uint64_t r = 12345;
    assert_int_equal(sl_cache_index_init(&ix, DIM, N), 0);
    for (int i = 0; i < N; i++) {
        for (int d = 0; d < DIM; d++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            all[i * DIM + d] = (float)((r >> 33) % 2001) / 1000.0f - 1.0f;
        }
        sl_cache_normalise(all + i * DIM, DIM);
        memcpy(k, &i, sizeof(i));
        sl_cache_index_add(&ix, k, 1, all + i * DIM, DIM);
    }
    for (int t = 0; t < 50; t++) {
        /* a query near vector t*37: it plus a little noise */
        for (int d = 0; d < DIM; d++)
            q[d] = all[(t * 37) * DIM + d] + 0.02f * (float)((d * 31 + t) % 7 - 3);
        sl_cache_normalise(q, DIM);
        long want = -1;
        float want_s = -2, got_s;
        for (int i = 0; i < N; i++) {
            float s = 0;
            for (int d = 0; d < DIM; d++)
                s += q[d] * all[i * DIM + d];
            if (s > want_s) {
                want_s = s;
                want = i;
            }
        }
        assert_int_equal(sl_cache_index_search(&ix, 1, q, &got_s), want);
        assert_true(fabsf(got_s - want_s) < 1e-4f);
    }
    /* the sign sketch: bit i set when value i > 0, the bits past dim clear */
    float v70[70];
    uint64_t sk[2];
    for (int i = 0; i < 70; i++)
        v70[i] = i % 3 == 0 ? 0.5f : (i % 3 == 1 ? -0.5f : 0.0f);
    sl_cache_sign(v70, 70, sk);
    for (int i = 0; i < 128; i++)
        assert_int_equal((int)(sk[i / 64] >> (i % 64) & 1), i < 70 && i % 3 == 0);
    sl_cache_index_release(&ix);
    free(all);
}

static uint64_t lcg = 777;
static float uniform01(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return ((float)(lcg >> 40) + 0.5f) / (float)(1 << 24);
}

/* out = normalise(base + s * g): g a Gaussian vector of length about 1. */
static void near_vec(const float *base, float s, float *out, int dim)
{
    for (int d = 0; d < dim; d += 2) {
        float r = sqrtf(-2.0f * logf(uniform01())) * s / sqrtf((float)dim), t = 6.2831853f * uniform01();
        out[d] = (base ? base[d] : 0) + r * cosf(t);
        if (d + 1 < dim)
            out[d + 1] = (base ? base[d + 1] : 0) + r * sinf(t);
    }
    sl_cache_normalise(out, dim);
}

/* Vectors shaped like paraphrase embeddings, many more than the sketch stage keeps:
 * all leaning towards one direction, in topics of very uneven size (one holds a fifth
 * of them) with near-duplicates, in two scopes; queries are paraphrases of stored
 * vectors. For every query the two-stage result in each scope is what a plain float32
 * scan of that scope finds whenever that best match is at least 0.9, and the score
 * returned is always the exact float32 cosine of the slot returned. */
static void test_index_two_stage_clustered(void **state)
{
    enum { DIM = 128, N = 8000, TOPICS = 40, QUERIES = 60 };
    struct sl_cache_index ix;
    float *all = malloc((size_t)N * DIM * sizeof(float)), *centres = malloc(TOPICS * DIM * sizeof(float));
    float mean[DIM], q[DIM];
    uint8_t k[SL_CACHE_KEY_LEN] = {0};
    int last[TOPICS], matched = 0;
    assert_int_equal(sl_cache_index_init(&ix, DIM, N), 0);
    near_vec(NULL, 1.0f, mean, DIM);
    for (int c = 0; c < TOPICS; c++) {
        near_vec(mean, 1.2f, centres + c * DIM, DIM);
        last[c] = -1;
    }
    for (int i = 0; i < N; i++) {
        float u = uniform01();
        int c = (int)(TOPICS * u * u * u); /* topic 0: a fifth of the vectors */
        if (last[c] >= 0 && uniform01() < 0.3f)
            near_vec(all + last[c] * DIM, 0.12f, all + i * DIM, DIM);
        else
            near_vec(centres + c * DIM, 0.2f + 0.6f * uniform01(), all + i * DIM, DIM);
        last[c] = i;
        memcpy(k, &i, sizeof(i));
        assert_int_equal(sl_cache_index_add(&ix, k, 1 + (uint64_t)(i % 2), all + i * DIM, DIM), 0);
    }
    for (int t = 0; t < QUERIES; t++) {
        int src = (int)(uniform01() * N) % N;
        near_vec(all + src * DIM, 0.05f + 0.4f * uniform01(), q, DIM);
        for (uint64_t scope = 1; scope <= 2; scope++) {
            long want = -1;
            float want_s = -2, got_s;
            for (int i = (int)scope - 1; i < N; i += 2) {
                float s = sl_cache_dot(q, all + i * DIM, DIM);
                if (s > want_s) {
                    want_s = s;
                    want = i;
                }
            }
            long got = sl_cache_index_search(&ix, scope, q, &got_s);
            assert_true(got >= 0 && (int)(got % 2) == (int)scope - 1);
            assert_true(got_s == sl_cache_dot(q, all + got * DIM, DIM));
            if (want_s >= 0.9f) {
                assert_int_equal(got, want);
                matched++;
            }
        }
    }
    assert_true(matched >= QUERIES / 2); /* the data does test matches above 0.9 */
    sl_cache_index_release(&ix);
    free(all);
    free(centres);
}

/* The same checks with the portable loops (what a CPU without AVX2 runs). */
static void test_index_portable_paths(void **state)
{
    int had = sl_cache_simd(1);
    assert_int_equal(sl_cache_simd(0), 0);
    test_index(state);
    test_index_two_stage_matches_brute_force(state);
    test_index_two_stage_clustered(state);
    assert_int_equal(sl_cache_simd(had), had);
}

static void test_cache_get_fresh_stale_missing(void **state)
{
    struct sl_cache_cfg cfg = {.max_bytes = 1 << 20, .max_stale_ms = 10000,
                               .backend = SL_CACHE_MEMORY, .semantic_max_entries = 10,
                               .embedding_model = "emb"};
    char err[128];
    struct sl_cache *c = sl_cache_new(&cfg, NULL, err, sizeof(err));
    assert_non_null(c);
    uint8_t k[SL_CACHE_KEY_LEN] = {1};
    int64_t now = 1700000000000;
    struct sl_cache_entry e = {.value = "{}", .len = 2, .created_ms = now, .expires_ms = now + 100};
    assert_int_equal(sl_cache_put(c, k, &e), 0);
    struct sl_cache_entry got;
    assert_int_equal(sl_cache_get(c, k, now + 50, 0, &got), 0);
    assert_string_equal(got.value, "{}");
    free(got.value);
    assert_int_equal(sl_cache_get(c, k, now + 200, 0, &got), 1);
    assert_int_equal(sl_cache_get(c, k, now + 200, 5000, &got), 2);
    free(got.value);
    assert_int_equal(sl_cache_get(c, k, now + 6000, 5000, &got), 1);
    float q[3] = {0.6f, 0.8f, 0}, r[3] = {0.8f, 0.6f, 0};
    uint8_t found[SL_CACHE_KEY_LEN];
    float score;
    assert_int_equal(sl_cache_semantic_add(c, 5, q, 3, k), 0);
    assert_int_equal(sl_cache_dim(c), 3);
    assert_int_equal(sl_cache_semantic_find(c, 5, r, 3, 0.97, found, &score), 1);
    assert_true(fabsf(score - 0.96f) < 1e-4f);
    assert_int_equal(sl_cache_semantic_find(c, 5, r, 3, 0.9, found, &score), 0);
    assert_memory_equal(found, k, sizeof(k));
    assert_int_equal(sl_cache_semantic_find(c, 6, r, 3, 0.5, found, &score), 1);
    sl_cache_semantic_forget(c, k);
    assert_int_equal(sl_cache_semantic_find(c, 5, q, 3, 0.5, found, &score), 1);
    sl_cache_free(c);
}

/* Workers share the cache: exact puts and gets, semantic adds and scans from several
 * threads at once (run under ThreadSanitizer too, see docs/testing.md). */
struct worker_arg {
    struct sl_cache *c;
    int id;
};

static void *worker(void *arg)
{
    struct worker_arg *w = arg;
    float v[16];
    uint8_t k[SL_CACHE_KEY_LEN] = {0}, found[SL_CACHE_KEY_LEN];
    for (int i = 0; i < 400; i++) {
        int n = w->id * 1000 + i;
        memcpy(k, &n, sizeof(n));
        struct sl_cache_entry e = {.value = "{\"x\":1}", .len = 7, .created_ms = 1,
                                   .expires_ms = (int64_t)1 << 60};
        sl_cache_put(w->c, k, &e);
        struct sl_cache_entry got;
        if (sl_cache_get(w->c, k, 2, 0, &got) == 0)
            free(got.value);
        for (int d = 0; d < 16; d++)
            v[d] = (float)((n * 7 + d * 13) % 17) + 1.0f;
        sl_cache_normalise(v, 16);
        sl_cache_semantic_add(w->c, (uint64_t)(i % 3), v, 16, k);
        float score;
        sl_cache_semantic_find(w->c, (uint64_t)(i % 3), v, 16, 0.99, found, &score);
        if (i % 50 == 0)
            sl_cache_semantic_forget(w->c, k);
    }
    return NULL;
}

static void test_cache_threads(void **state)
{
    struct sl_cache_cfg cfg = {.max_bytes = 1 << 16, .max_stale_ms = 1000,
                               .semantic_max_entries = 500, .embedding_model = "e"};
    char err[128];
    struct sl_cache *c = sl_cache_new(&cfg, NULL, err, sizeof(err));
    assert_non_null(c);
    pthread_t t[4];
    struct worker_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (struct worker_arg){c, i};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    size_t entries, bytes, vectors;
    sl_cache_stats(c, &entries, &bytes, &vectors);
    assert_true(bytes <= cfg.max_bytes);
    assert_true(vectors <= 500);
    assert_true(entries > 0);
    sl_cache_free(c);
}

static void test_config_section(void **state)
{
    const char *yaml =
        "providers:\n"
        "  - { name: p, kind: openai, base_url: \"http://127.0.0.1:1/v1\" }\n"
        "models:\n"
        "  - { name: m, provider: p, cache: { enabled: always, ttl: 5s } }\n"
        "groups:\n"
        "  - { name: g, deployments: [m], cache: { stale_on_error: true, threshold: 0.9 } }\n"
        "cache: { ttl: 10m, max_bytes: 1MiB, backend: sqlite, shared: true,\n"
        "         embedding_model: m, semantic: true, max_stale: 1h }\n";
    struct sl_config *cfg = NULL;
    struct sl_buf errors = SL_BUF_INIT(4096);
    int r = sl_config_parse(yaml, strlen(yaml), "t.yaml", &cfg, &errors);
    assert_int_equal(r, 0);
    assert_int_equal(cfg->cache.rule.ttl_ms, 600000);
    assert_int_equal(cfg->cache.rule.enabled, SL_CACHE_TEMP0);
    assert_true(fabs(cfg->cache.rule.threshold - 0.95) < 1e-9);
    assert_int_equal(cfg->cache.max_bytes, 1u << 20);
    assert_int_equal(cfg->cache.backend, SL_CACHE_SQLITE);
    assert_int_equal(cfg->cache.shared, SL_FLAG_YES);
    assert_int_equal(cfg->cache.max_stale_ms, 3600000);
    assert_string_equal(cfg->cache.embedding_model, "m");
    assert_int_equal(cfg->models[0].cache.enabled, SL_CACHE_ALWAYS);
    assert_int_equal(cfg->models[0].cache.ttl_ms, 5000);
    assert_int_equal(cfg->groups[0].cache.stale_on_error, SL_FLAG_YES);
    assert_int_equal(cfg->groups[0].cache.enabled, SL_CACHE_UNSET);
    sl_config_free(cfg);
    cfg = NULL;
    sl_buf_reset(&errors);
    const char *bad = "cache: { enabled: sometimes, threshold: 1.5, backend: redis,\n"
                      "         embedding_model: nope }\n";
    assert_int_equal(sl_config_parse(bad, strlen(bad), "t.yaml", &cfg, &errors), -1);
    assert_non_null(strstr(errors.ptr, "cache.enabled"));
    assert_non_null(strstr(errors.ptr, "cache.threshold"));
    assert_non_null(strstr(errors.ptr, "cache.backend"));
    assert_non_null(strstr(errors.ptr, "t.yaml:2: cache.embedding_model: 'nope' is not a model"));
    sl_buf_release(&errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_canonical),
        cmocka_unit_test(test_policy),
        cmocka_unit_test(test_semantic_text_and_scope),
        cmocka_unit_test(test_memory_lru_eviction),
        cmocka_unit_test(test_sqlite_backend_persists),
        cmocka_unit_test(test_index),
        cmocka_unit_test(test_index_two_stage_matches_brute_force),
        cmocka_unit_test(test_index_two_stage_clustered),
        cmocka_unit_test(test_index_portable_paths),
        cmocka_unit_test(test_cache_get_fresh_stale_missing),
        cmocka_unit_test(test_cache_threads),
        cmocka_unit_test(test_config_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
