/* Usage normalisation across OpenAI-compatible providers, error bodies, estimates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "formats/openai.h"
#include "meter/estimate.h"

static struct sl_usage usage_of(const char *json)
{
    struct sl_usage u = {0};
    cJSON *obj = cJSON_Parse(json);
    sl_openai_usage(obj, &u);
    cJSON_Delete(obj);
    return u;
}

static void test_openai_usage(void **state)
{
    struct sl_usage u = usage_of("{\"choices\":[],\"usage\":{\"prompt_tokens\":1310,\"completion_tokens\":7,"
                                 "\"prompt_tokens_details\":{\"cached_tokens\":1152},"
                                 "\"completion_tokens_details\":{\"reasoning_tokens\":2}}}");
    assert_true(u.present);
    assert_int_equal(u.prompt, 1310);
    assert_int_equal(u.completion, 7);
    assert_int_equal(u.cached, 1152);
    assert_int_equal(u.reasoning, 2);
}

static void test_deepseek_and_moonshot(void **state)
{
    struct sl_usage d = usage_of("{\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":5,"
                                 "\"prompt_cache_hit_tokens\":16,\"prompt_cache_miss_tokens\":4}}");
    assert_int_equal(d.cached, 16);
    struct sl_usage k = usage_of("{\"choices\":[{\"index\":0,\"usage\":{\"prompt_tokens\":9,"
                                 "\"completion_tokens\":3,\"cached_tokens\":8}}]}");
    assert_true(k.present);
    assert_int_equal(k.prompt, 9);
    assert_int_equal(k.cached, 8);
    struct sl_usage none = usage_of("{\"usage\":null,\"choices\":[{\"delta\":{}}]}");
    assert_false(none.present);
}

static void test_error_body(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1024);
    sl_openai_error(&b, 404, NULL, "no \"such\" model", "model", NULL);
    assert_string_equal(b.ptr, "{\"error\":{\"message\":\"no \\\"such\\\" model\",\"type\":"
                               "\"not_found_error\",\"param\":\"model\",\"code\":null}}");
    sl_buf_release(&b);
}

static void test_upstream_error_shapes(void **state)
{
    cJSON *p;
    const char *msg, *type, *code;
    const char *glm = "{\"error\":{\"code\":\"1305\",\"message\":\"busy\"}}";
    sl_openai_error_from_upstream(glm, strlen(glm), &p, &msg, &type, &code);
    assert_string_equal(msg, "busy");
    assert_string_equal(code, "1305");
    assert_null(type);
    cJSON_Delete(p);
    sl_openai_error_from_upstream("<html>", 6, &p, &msg, &type, &code);
    assert_null(msg);
    cJSON_Delete(p);
}

static void test_estimates(void **state)
{
    /* ~0.3 token per English character, ~0.6 per Chinese character */
    const char *en = "The quick brown fox jumps over the lazy dog";
    int64_t e = sl_estimate_text(en, strlen(en));
    assert_in_range(e, 9, 14);
    const char *zh = "杭州是浙江省省会"; /* 8 characters */
    assert_int_equal(sl_estimate_text(zh, strlen(zh)), 5);
    cJSON *msgs = cJSON_Parse("[{\"role\":\"user\",\"content\":\"hi\"}]");
    assert_int_equal(sl_estimate_messages(msgs), 4 + 1 + 3);
    cJSON_Delete(msgs);
}

static void on_cleanup(void *arg)
{
    (*(int *)arg)++;
}

static void test_arena(void **state)
{
    int ran = 0;
    struct sl_arena *a = sl_arena_new();
    for (int i = 0; i < 1000; i++)
        assert_non_null(sl_arena_alloc(a, (size_t)i * 7 + 1));
    assert_non_null(sl_arena_alloc(a, 1 << 20));
    assert_string_equal(sl_arena_sprintf(a, "%s-%d", "x", 42), "x-42");
    sl_arena_cleanup(a, on_cleanup, &ran);
    sl_arena_free(a);
    assert_int_equal(ran, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_usage),  cmocka_unit_test(test_deepseek_and_moonshot),
        cmocka_unit_test(test_error_body),    cmocka_unit_test(test_upstream_error_shapes),
        cmocka_unit_test(test_estimates),     cmocka_unit_test(test_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
