/* Raw member spans, duplicate keys, quoting. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/json.h"

static void test_members(void **state)
{
    const char *s = " { \"model\" : \"gpt\" , \"messages\":[{\"a\":\"}\"}],\"seed\":12345678901234567890,"
                    "\"n\":null, \"o\":{\"x\":[1,2]} } ";
    struct sl_json_member m[8];
    int n = sl_json_members(s, strlen(s), m, 8);
    assert_int_equal(n, 5);
    assert_int_equal(m[0].key.len, 5);
    assert_memory_equal(m[0].value.ptr, "\"gpt\"", 5);
    assert_int_equal(m[0].value.len, 5);
    assert_memory_equal(m[1].value.ptr, "[{\"a\":\"}\"}]", m[1].value.len);
    assert_int_equal(m[2].value.len, strlen("12345678901234567890"));
    assert_memory_equal(m[3].value.ptr, "null", 4);
    assert_memory_equal(m[4].value.ptr, "{\"x\":[1,2]}", m[4].value.len);
}

static void test_members_limits(void **state)
{
    struct sl_json_member m[2];
    assert_int_equal(sl_json_members("[1]", 3, m, 2), -1);
    assert_int_equal(sl_json_members("{\"a\":1,\"b\":2,\"c\":3}", 19, m, 2), -1);
    assert_int_equal(sl_json_members("{}", 2, m, 2), 0);
}

static void test_duplicates(void **state)
{
    cJSON *a = cJSON_Parse("{\"model\":\"a\",\"x\":1,\"model\":\"b\"}");
    cJSON *b = cJSON_Parse("{\"model\":\"a\",\"x\":{\"y\":1,\"y\":2}}");
    assert_string_equal(sl_json_duplicate_key(a), "model");
    assert_null(sl_json_duplicate_key(b)); /* only top-level keys are checked */
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_raw_control(void **state)
{
    assert_int_equal(sl_json_raw_control("{\"a\":\t\"b\"}\r\n", 12), -1);
    assert_int_equal(sl_json_raw_control("{\"mo\0del\":1}", 12), 4);
    assert_int_equal(sl_json_raw_control("{\"a\":\"\x1f\"}", 8), 6);
}

static void test_quote(void **state)
{
    struct sl_buf b = SL_BUF_INIT(1024);
    assert_int_equal(sl_json_quote(&b, "a\"b\\c\n\x01\xe4\xb8\xad", 10), 0);
    assert_string_equal(b.ptr, "\"a\\\"b\\\\c\\n\\u0001\xe4\xb8\xad\"");
    sl_buf_release(&b);
}

static void test_buf_cap(void **state)
{
    struct sl_buf b = SL_BUF_INIT(8);
    assert_int_equal(sl_buf_append(&b, "12345678", 8), 0);
    assert_int_equal(sl_buf_append(&b, "9", 1), -1);
    assert_int_equal(b.len, 8);
    sl_buf_consume(&b, 3);
    assert_string_equal(b.ptr, "45678");
    sl_buf_release(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_members_limits),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_raw_control),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_buf_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
