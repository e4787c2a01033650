/* Anthropic upstream format: request translation, whole replies, errors, and event
 * streams fed byte by byte through the SSE reader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/json.h"
#include "core/sse.h"
#include "formats/anthropic.h"
#include "formats/format.h"

static const struct sl_upstream_format *F = &sl_anthropic_upstream;

struct encoded {
    struct sl_arena *a;
    struct sl_encoded out;
    struct sl_error e;
    cJSON *body; /* parsed out.body, NULL when encode failed */
    int rc;
};

static void encode_with(struct encoded *x, const char *req_json, int stream, const char *key)
{
    struct sl_provider_cfg p = {.name = "anthropic", .kind = SL_WIRE_ANTHROPIC,
                                .base_url = "https://api.anthropic.com", .api_key = (char *)key};
    struct sl_model_cfg m = {.name = "claude", .provider = "anthropic", .model = "claude-sonnet-4-5",
                             .p = &p};
    cJSON *req = cJSON_Parse(req_json);
    assert_non_null(req);
    memset(x, 0, sizeof(*x));
    x->a = sl_arena_new();
    x->rc = F->encode(req, &m, stream, x->a, &x->out, &x->e);
    cJSON_Delete(req);
    if (x->rc == 0) {
        x->body = cJSON_ParseWithLength(x->out.body, x->out.len);
        assert_non_null(x->body);
    }
}

static void encode_ok(struct encoded *x, const char *req_json)
{
    encode_with(x, req_json, 0, "sk-ant-test");
    if (x->rc)
        fail_msg("encode failed: %d %s", x->e.status, x->e.message);
}

static void encoded_free(struct encoded *x)
{
    cJSON_Delete(x->body);
    sl_arena_free(x->a);
}

/* The JSON text of obj[key], for comparisons that print both sides on failure. */
static char *json_at(const cJSON *obj, const char *key, char *buf, size_t n)
{
    char *s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(obj, key));
    snprintf(buf, n, "%s", s ? s : "(absent)");
    cJSON_free(s);
    return buf;
}

#define ASSERT_JSON(obj, key, expect)                                                        \
    do {                                                                                     \
        char buf_[2048];                                                                     \
        assert_string_equal(json_at((obj), (key), buf_, sizeof(buf_)), (expect));            \
    } while (0)

static int has_header(const struct sl_encoded *o, const char *h)
{
    for (int i = 0; i < o->nheaders; i++)
        if (strcmp(o->headers[i], h) == 0)
            return 1;
    return 0;
}

static void test_encode_system_stop_defaults(void **state)
{
    struct encoded x;
    encode_ok(&x, "{\"model\":\"claude\",\"temperature\":0.7,\"stop\":\"END\",\"n\":1,\"seed\":4,"
                  "\"logprobs\":false,\"frequency_penalty\":0,\"stream_options\":{\"include_usage\":true},"
                  "\"response_format\":{\"type\":\"text\"},\"user\":\"u-42\",\"messages\":["
                  "{\"role\":\"system\",\"content\":\"You are a poet.\"},"
                  "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"Be brief.\"}]},"
                  "{\"role\":\"user\",\"content\":\"Tea?\"}]}");
    assert_string_equal(x.out.url, "https://api.anthropic.com/v1/messages");
    assert_true(has_header(&x.out, "x-api-key: sk-ant-test"));
    assert_true(has_header(&x.out, "anthropic-version: 2023-06-01"));
    assert_true(has_header(&x.out, "content-type: application/json"));
    ASSERT_JSON(x.body, "model", "\"claude-sonnet-4-5\"");
    ASSERT_JSON(x.body, "system", "[{\"type\":\"text\",\"text\":\"You are a poet.\"},"
                                  "{\"type\":\"text\",\"text\":\"Be brief.\"}]");
    ASSERT_JSON(x.body, "messages",
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Tea?\"}]}]");
    ASSERT_JSON(x.body, "max_tokens", "4096");
    ASSERT_JSON(x.body, "stop_sequences", "[\"END\"]");
    ASSERT_JSON(x.body, "temperature", "0.7");
    ASSERT_JSON(x.body, "metadata", "{\"user_id\":\"u-42\"}");
    const char *never[] = {"stop", "n", "seed", "logprobs", "frequency_penalty", "stream_options",
                           "response_format", "user", "stream", "thinking", "tools"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        ASSERT_JSON(x.body, never[i], "(absent)");
    encoded_free(&x);
}

static void test_encode_max_tokens_and_stream(void **state)
{
    struct encoded x;
    encode_with(&x, "{\"model\":\"c\",\"max_completion_tokens\":77,\"max_tokens\":5,"
                    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 1, NULL);
    assert_int_equal(x.rc, 0);
    ASSERT_JSON(x.body, "max_tokens", "77");
    ASSERT_JSON(x.body, "stream", "true");
    for (int i = 0; i < x.out.nheaders; i++)
        assert_null(strstr(x.out.headers[i], "x-api-key")); /* no key configured */
    encoded_free(&x);
}

static void test_encode_tool_round_trip_grouping(void **state)
{
    struct encoded x;
    encode_ok(&x, "{\"model\":\"c\",\"messages\":["
                  "{\"role\":\"user\",\"content\":\"Weather in Paris and Rome?\"},"
                  "{\"role\":\"assistant\",\"content\":\"Checking.\",\"tool_calls\":["
                  "{\"id\":\"toolu_1\",\"type\":\"function\",\"function\":{\"name\":\"w\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
                  "{\"id\":\"toolu_2\",\"type\":\"function\",\"function\":{\"name\":\"w\",\"arguments\":\"\"}}]},"
                  "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\",\"content\":\"18C\"},"
                  "{\"role\":\"tool\",\"tool_call_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"21C\"}]},"
                  "{\"role\":\"user\",\"content\":\"Thanks\"}]}");
    ASSERT_JSON(x.body, "messages",
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Weather in Paris and Rome?\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
                "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"w\",\"input\":{\"city\":\"Paris\"}},"
                "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"w\",\"input\":{}}]},"
                "{\"role\":\"user\",\"content\":["
                "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":[{\"type\":\"text\",\"text\":\"18C\"}]},"
                "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"content\":[{\"type\":\"text\",\"text\":\"21C\"}]},"
                "{\"type\":\"text\",\"text\":\"Thanks\"}]}]");
    encoded_free(&x);
}

static void check_tool_choice(const char *choice, const char *parallel, const char *expect)
{
    char req[1024];
    struct encoded x;
    snprintf(req, sizeof(req),
             "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
             "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"description\":\"d\","
             "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]%s%s%s%s}",
             choice ? ",\"tool_choice\":" : "", choice ? choice : "",
             parallel ? ",\"parallel_tool_calls\":" : "", parallel ? parallel : "");
    encode_ok(&x, req);
    ASSERT_JSON(x.body, "tools", "[{\"name\":\"f\",\"description\":\"d\","
                                 "\"input_schema\":{\"type\":\"object\",\"properties\":{}}}]");
    ASSERT_JSON(x.body, "tool_choice", expect);
    ASSERT_JSON(x.body, "parallel_tool_calls", "(absent)");
    encoded_free(&x);
}

static void test_encode_tool_choice(void **state)
{
    check_tool_choice(NULL, NULL, "(absent)");
    check_tool_choice("\"none\"", NULL, "{\"type\":\"none\"}");
    check_tool_choice("\"auto\"", "false", "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
    check_tool_choice("\"required\"", NULL, "{\"type\":\"any\"}");
    check_tool_choice("{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", "true",
                      "{\"type\":\"tool\",\"name\":\"f\"}");
    check_tool_choice(NULL, "false", "{\"type\":\"auto\",\"disable_parallel_tool_use\":true}");
}

static void test_encode_images(void **state)
{
    struct encoded x;
    encode_ok(&x, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":["
                  "{\"type\":\"text\",\"text\":\"\"},"
                  "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0K\"}},"
                  "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://e.com/a.jpg\",\"detail\":\"low\"}},"
                  "{\"type\":\"text\",\"text\":\"What is this?\"}]}]}");
    ASSERT_JSON(x.body, "messages",
                "[{\"role\":\"user\",\"content\":["
                "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0K\"}},"
                "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://e.com/a.jpg\"}},"
                "{\"type\":\"text\",\"text\":\"What is this?\"}]}]");
    encoded_free(&x);
    encode_with(&x, "{\"model\":\"c\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
                    "\"image_url\",\"image_url\":{\"url\":\"data:image/png,rawbytes\"}}]}]}", 0, "k");
    assert_int_equal(x.rc, -1);
    assert_int_equal(x.e.status, 400);
    encoded_free(&x);
}

static void test_encode_merge_and_empty(void **state)
{
    struct encoded x;
    encode_ok(&x, "{\"model\":\"c\",\"messages\":["
                  "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":\"b\"},"
                  "{\"role\":\"assistant\",\"content\":\"\"},{\"role\":\"user\",\"content\":\"c\"},"
                  "{\"role\":\"assistant\",\"content\":\"The answer is \"}]}");
    ASSERT_JSON(x.body, "messages",
                "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                "{\"type\":\"text\",\"text\":\"b\"},{\"type\":\"text\",\"text\":\"c\"}]},"
                "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"The answer is\"}]}]");
    encoded_free(&x);
}

static void expect_reject(const char *req, const char *param, const char *words)
{
    struct encoded x;
    encode_with(&x, req, 0, "k");
    assert_int_equal(x.rc, -1);
    assert_int_equal(x.e.status, 400);
    assert_string_equal(x.e.type, "invalid_request_error");
    assert_string_equal(x.e.param, param);
    if (!strstr(x.e.message, words))
        fail_msg("message '%s' does not say '%s'", x.e.message, words);
    encoded_free(&x);
}

static void test_encode_rejects(void **state)
{
    expect_reject("{\"model\":\"c\",\"temperature\":1.5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                  "temperature", "outside 0..1");
    expect_reject("{\"model\":\"c\",\"n\":2,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "n", "one choice");
    expect_reject("{\"model\":\"c\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                  "max_tokens", "positive integer");
    expect_reject("{\"model\":\"c\",\"messages\":[{\"role\":\"system\",\"content\":\"only\"}]}", "messages",
                  "at least one");
    expect_reject("{\"model\":\"c\",\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\","
                  "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"[1\"}}]}]}",
                  "messages", "not a JSON object");
    expect_reject("{\"model\":\"c\",\"reasoning_effort\":\"huge\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
                  "reasoning_effort", "huge");
}

static void test_encode_thinking_and_formats(void **state)
{
    struct encoded x;
    encode_ok(&x, "{\"model\":\"c\",\"reasoning_effort\":\"high\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    ASSERT_JSON(x.body, "thinking", "{\"type\":\"enabled\",\"budget_tokens\":16384}");
    ASSERT_JSON(x.body, "max_tokens", "20480");
    ASSERT_JSON(x.body, "reasoning_effort", "(absent)");
    encoded_free(&x);
    encode_ok(&x, "{\"model\":\"c\",\"max_tokens\":2000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":3000},"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    ASSERT_JSON(x.body, "thinking", "{\"type\":\"enabled\",\"budget_tokens\":1999}");
    ASSERT_JSON(x.body, "max_tokens", "2000");
    encoded_free(&x);
    encode_ok(&x, "{\"model\":\"c\",\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"n\","
                  "\"schema\":{\"type\":\"object\"}}},\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    ASSERT_JSON(x.body, "output_config", "{\"format\":{\"type\":\"json_schema\",\"schema\":{\"type\":\"object\"}}}");
    ASSERT_JSON(x.body, "response_format", "(absent)");
    encoded_free(&x);
    encode_ok(&x, "{\"model\":\"c\",\"response_format\":{\"type\":\"json_object\"},"
                  "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
    const cJSON *sys = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(x.body, "system"), 0);
    assert_non_null(strstr(sl_json_str(sys, "text", ""), "JSON object"));
    ASSERT_JSON(x.body, "output_config", "(absent)");
    encoded_free(&x);
}

static void test_decode_reply_tools_thinking_cache(void **state)
{
    const char *body =
        "{\"model\":\"claude-sonnet-4-5-20250929\",\"id\":\"msg_01\",\"type\":\"message\",\"role\":\"assistant\","
        "\"content\":[{\"type\":\"thinking\",\"thinking\":\"Two cities.\",\"signature\":\"sig\"},"
        "{\"type\":\"text\",\"text\":\"Checking \"},{\"type\":\"text\",\"text\":\"both.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"w\",\"input\":{\"city\":\"Paris\"}},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_b\",\"name\":\"w\",\"input\":{\"city\":\"Rome\"}}],"
        "\"stop_reason\":\"tool_use\",\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,"
        "\"cache_creation_input_tokens\":200,\"cache_read_input_tokens\":1000,\"output_tokens\":55}}";
    struct sl_usage u = {0};
    struct sl_error e = {0};
    cJSON *c = F->decode_reply(body, strlen(body), "claude", &u, &e);
    assert_non_null(c);
    assert_int_equal(u.prompt, 1210);
    assert_int_equal(u.cached, 1000);
    assert_int_equal(u.completion, 55);
    assert_true(u.present);
    ASSERT_JSON(c, "object", "\"chat.completion\"");
    ASSERT_JSON(c, "usage", "{\"prompt_tokens\":1210,\"completion_tokens\":55,\"total_tokens\":1265,"
                            "\"prompt_tokens_details\":{\"cached_tokens\":1000},"
                            "\"completion_tokens_details\":{\"reasoning_tokens\":0}}");
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(c, "choices"), 0);
    ASSERT_JSON(ch, "finish_reason", "\"tool_calls\"");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(ch, "message");
    ASSERT_JSON(msg, "content", "\"Checking both.\"");
    ASSERT_JSON(msg, "reasoning_content", "\"Two cities.\"");
    ASSERT_JSON(msg, "tool_calls",
                "[{\"id\":\"toolu_a\",\"type\":\"function\",\"function\":{\"name\":\"w\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"}},"
                "{\"id\":\"toolu_b\",\"type\":\"function\",\"function\":{\"name\":\"w\",\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]");
    cJSON_Delete(c);
    assert_null(F->decode_reply("{\"type\":\"error\"}", 16, "m", &u, &e));
    assert_int_equal(e.status, 502);
}

static void test_stop_reasons_and_errors(void **state)
{
    assert_string_equal(sl_anthropic_finish_reason("end_turn"), "stop");
    assert_string_equal(sl_anthropic_finish_reason("stop_sequence"), "stop");
    assert_string_equal(sl_anthropic_finish_reason("max_tokens"), "length");
    assert_string_equal(sl_anthropic_finish_reason("refusal"), "content_filter");
    assert_string_equal(sl_anthropic_finish_reason("pause_turn"), "stop");
    assert_string_equal(sl_anthropic_stop_reason("tool_calls"), "tool_use");
    assert_string_equal(sl_anthropic_error_type(529), "overloaded_error");
    assert_int_equal(sl_anthropic_error_status("rate_limit_error"), 429);

    struct sl_error e;
    const char *b529 = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"},"
                       "\"request_id\":\"req_1\"}";
    F->decode_error(529, b529, strlen(b529), &e);
    assert_int_equal(e.status, 529);
    assert_string_equal(e.type, "overloaded_error");
    assert_string_equal(e.message, "Overloaded");
    const char *b401 = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\",\"message\":\"invalid x-api-key\"}}";
    F->decode_error(401, b401, strlen(b401), &e);
    assert_int_equal(e.status, 401);
    assert_string_equal(e.type, "authentication_error");
    F->decode_error(413, "<html>too big</html>", 20, &e);
    assert_int_equal(e.status, 413);
    assert_string_equal(e.type, "request_too_large");
    assert_non_null(strstr(e.message, "too big"));
}

/* ---- streams ---- */

struct assembled {
    char content[1024], reasoning[512];
    char tool_id[4][64], tool_name[4][32], tool_args[4][256];
    int ntools, chunks, role_chunks, done;
    char finish[32];
    struct sl_usage u;
    struct sl_error e;
    int rc; /* the last stream_event return */
    struct sl_anthropic_stream st; /* zeroed, as the pipeline hands it over */
};

static void cat(char *dst, size_t n, const char *s)
{
    size_t used = strlen(dst);
    snprintf(dst + used, n - used, "%s", s ? s : "");
}

static void take_tool_call(struct assembled *a, const cJSON *call)
{
    int i = (int)sl_json_int(call, "index", -1);
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
    assert_true(i >= 0 && i < 4);
    if (sl_json_str(call, "id", NULL)) {
        assert_string_equal(sl_json_str(call, "type", ""), "function");
        snprintf(a->tool_id[i], sizeof(a->tool_id[i]), "%s", sl_json_str(call, "id", ""));
        snprintf(a->tool_name[i], sizeof(a->tool_name[i]), "%s", sl_json_str(fn, "name", ""));
        if (i + 1 > a->ntools)
            a->ntools = i + 1;
    }
    cat(a->tool_args[i], sizeof(a->tool_args[i]), sl_json_str(fn, "arguments", ""));
}

static int on_chunk(void *arg, const cJSON *chunk)
{
    struct assembled *a = arg;
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0), *call;
    const cJSON *delta = cJSON_GetObjectItemCaseSensitive(ch, "delta");
    assert_string_equal(sl_json_str(chunk, "object", ""), "chat.completion.chunk");
    assert_string_equal(sl_json_str(chunk, "id", ""), "chatcmpl-test");
    assert_int_equal(sl_json_int(ch, "index", -1), 0);
    assert_non_null(delta);
    a->chunks++;
    if (sl_json_str(delta, "role", NULL))
        a->role_chunks++;
    cat(a->content, sizeof(a->content), sl_json_str(delta, "content", ""));
    cat(a->reasoning, sizeof(a->reasoning), sl_json_str(delta, "reasoning_content", ""));
    cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(delta, "tool_calls")) take_tool_call(a, call);
    if (sl_json_str(ch, "finish_reason", NULL)) {
        assert_string_equal(a->finish, ""); /* one finish chunk */
        snprintf(a->finish, sizeof(a->finish), "%s", sl_json_str(ch, "finish_reason", ""));
    }
    return 0;
}

static int on_event(void *arg, const struct sl_sse_event *ev)
{
    struct assembled *a = arg;
    assert_int_equal(a->done, 0); /* nothing is fed after the terminator */
    a->rc = F->stream_event(&a->st, ev, on_chunk, a, &a->u, &a->e);
    if (a->rc == 1)
        a->done = 1;
    return a->rc == -1 ? -1 : 0;
}

static void run_stream(struct assembled *a, const char *sse, size_t step)
{
    struct sl_sse_reader r;
    size_t n = strlen(sse);
    memset(a, 0, sizeof(*a));
    F->stream_init(&a->st, "chatcmpl-test", "claude");
    sl_sse_reader_init(&r, 1 << 20);
    for (size_t i = 0; i < n && a->rc != -1; i += step)
        sl_sse_feed(&r, sse + i, step < n - i ? step : n - i, on_event, a);
    sl_sse_reader_release(&r);
}

/* Recorded-style: padding before the closing brace, a ping, a thinking block, text,
 * then two tool_use blocks (Anthropic indexes 2 and 3, OpenAI tools 0 and 1). */
static const char *TOOL_STREAM =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"model\":\"claude-sonnet-4-5-20250929\",\"id\":\"msg_01\","
    "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,"
    "\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":300,"
    "\"output_tokens\":2}}    }\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Two \"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"cities.\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"EqQB\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":0   }\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking Paris \\u00e9 \"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"text_delta\",\"text\":\"and Rome.\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_a\","
    "\"name\":\"get_weather\",\"input\":{},\"caller\":{\"type\":\"direct\"}}         }\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"ci\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"ty\\\": \\\"Paris\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
    "event: content_block_start\n"
    "data: {\"type\":\"content_block_start\",\"index\":3,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_b\","
    "\"name\":\"get_weather\",\"input\":{}}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"city\\\": \\\"Ro\"}}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"index\":3,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"me\\\"}\"}}\n\n"
    "event: content_block_stop\n"
    "data: {\"type\":\"content_block_stop\",\"index\":3}\n\n"
    "event: message_delta\n"
    "data: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
    "\"usage\":{\"input_tokens\":12,\"cache_creation_input_tokens\":100,\"cache_read_input_tokens\":300,"
    "\"output_tokens\":87}            }\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"  }\n\n";

static void check_tool_stream(size_t step)
{
    struct assembled a;
    run_stream(&a, TOOL_STREAM, step);
    if (a.rc == -1)
        fail_msg("step %zu: stream error %d %s", step, a.e.status, a.e.message);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.role_chunks, 1);
    assert_string_equal(a.reasoning, "Two cities.");
    assert_string_equal(a.content, "Checking Paris \xc3\xa9 and Rome.");
    assert_int_equal(a.ntools, 2);
    assert_string_equal(a.tool_id[0], "toolu_a");
    assert_string_equal(a.tool_id[1], "toolu_b");
    assert_string_equal(a.tool_name[1], "get_weather");
    assert_string_equal(a.tool_args[0], "{\"city\": \"Paris\"}");
    assert_string_equal(a.tool_args[1], "{\"city\": \"Rome\"}");
    assert_string_equal(a.finish, "tool_calls");
    assert_true(a.u.present);
    assert_int_equal(a.u.prompt, 412);
    assert_int_equal(a.u.cached, 300);
    assert_int_equal(a.u.completion, 87);
    assert_int_equal(F->stream_end(&a.st, on_chunk, &a, &a.u), 1);
    F->stream_release(&a.st);
}

static void test_stream_tools_thinking_split(void **state)
{
    size_t steps[] = {1, 2, 7, 13, 64, 4096};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
        check_tool_stream(steps[i]);
}

static void test_stream_error_mid_stream(void **state)
{
    const char *sse =
        "event: message_start\n"
        "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"model\":\"m\",\"content\":[],"
        "\"usage\":{\"input_tokens\":9,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\n"
        "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}}\n\n"
        "event: error\n"
        "data: {\"type\": \"error\", \"error\": {\"type\": \"overloaded_error\", \"message\": \"Overloaded\"}}\n\n"
        "event: content_block_delta\n"
        "data: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"never\"}}\n\n";
    struct assembled a;
    run_stream(&a, sse, 3);
    assert_int_equal(a.rc, -1);
    assert_int_equal(a.e.status, 529);
    assert_string_equal(a.e.type, "overloaded_error");
    assert_string_equal(a.e.message, "Overloaded");
    assert_string_equal(a.content, "Hel");
    assert_string_equal(a.finish, "");
    assert_int_equal(a.u.prompt, 9);
    assert_int_equal(F->stream_end(&a.st, on_chunk, &a, &a.u), 0);
    F->stream_release(&a.st);
}

static void test_stream_cut_and_malformed(void **state)
{
    struct assembled a;
    run_stream(&a, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{}}}\n\n"
                   "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},"
                   "\"usage\":{\"output_tokens\":5}}\n\n", 5);
    assert_string_equal(a.finish, "length");
    assert_int_equal(a.u.completion, 5);
    assert_int_equal(F->stream_end(&a.st, on_chunk, &a, &a.u), 0); /* no message_stop */
    run_stream(&a, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":\n\n", 4);
    assert_int_equal(a.rc, -1);
    assert_int_equal(a.e.status, 502);
}

static void test_sniff_usage(void **state)
{
    struct sl_usage u = {0};
    const char *start = "{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":5,"
                        "\"cache_read_input_tokens\":20,\"output_tokens\":1}}}";
    const char *delta = "{\"type\":\"message_delta\",\"delta\":{},\"usage\":{\"output_tokens\":33}}";
    struct sl_sse_event ev = {"message_start", 13, start, strlen(start), 0};
    F->sniff_usage(&ev, NULL, 0, &u);
    struct sl_sse_event ev2 = {"message_delta", 13, delta, strlen(delta), 0};
    F->sniff_usage(&ev2, NULL, 0, &u);
    assert_int_equal(u.prompt, 25);
    assert_int_equal(u.cached, 20);
    assert_int_equal(u.completion, 33);
    struct sl_usage w = {0};
    const char *body = "{\"type\":\"message\",\"content\":[],\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}";
    F->sniff_usage(NULL, body, strlen(body), &w);
    assert_true(w.present);
    assert_int_equal(w.prompt, 3);
    assert_int_equal(w.completion, 4);
}

/* ---- torture: the Nth cJSON allocation fails; each call ends cleanly, leak-free ---- */

static long alloc_budget = -1; /* allocations left before failures; -1 = unlimited */

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void with_budget(long n)
{
    cJSON_Hooks hooks = {failing_malloc, free};
    alloc_budget = n;
    cJSON_InitHooks(n < 0 ? NULL : &hooks);
}

static int count_chunk(void *arg, const cJSON *chunk)
{
    (*(int *)arg)++;
    return 0;
}

static int torture_event(void *arg, const struct sl_sse_event *ev)
{
    struct sl_anthropic_stream *st = arg;
    struct sl_usage u = {0};
    struct sl_error e = {0};
    int chunks = 0;
    int rc = F->stream_event(st, ev, count_chunk, &chunks, &u, &e);
    if (rc == -1)
        assert_true(e.status >= 400);
    return rc == -1 ? -1 : 0;
}

static void test_torture_allocations(void **state)
{
    const char *req = "{\"model\":\"c\",\"stop\":[\"a\",\"b\"],\"temperature\":0.5,\"reasoning_effort\":\"low\","
                      "\"response_format\":{\"type\":\"json_object\"},\"tools\":[{\"type\":\"function\",\"function\":"
                      "{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"required\","
                      "\"messages\":[{\"role\":\"system\",\"content\":\"s\"},{\"role\":\"user\",\"content\":[{\"type\":"
                      "\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]},{\"role\":\"assistant\","
                      "\"tool_calls\":[{\"id\":\"t\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
                      "\"{\\\"a\\\":1}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"t\",\"content\":\"r\"}]}";
    const char *reply = "{\"id\":\"m\",\"type\":\"message\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\"},"
                        "{\"type\":\"text\",\"text\":\"x\"},{\"type\":\"tool_use\",\"id\":\"u\",\"name\":\"f\",\"input\":{\"a\":1}}],"
                        "\"stop_reason\":\"tool_use\",\"usage\":{\"input_tokens\":1,\"output_tokens\":2}}";
    cJSON *parsed = cJSON_Parse(req);
    int done = 0;
    for (long n = 0; !done && n < 5000; n++) {
        struct sl_provider_cfg p = {.base_url = "http://h", .api_key = "k"};
        struct sl_model_cfg m = {.model = "claude", .p = &p};
        struct sl_arena *a = sl_arena_new();
        struct sl_encoded out = {0};
        struct sl_error e = {0};
        struct sl_usage u = {0};
        struct sl_anthropic_stream st = {0};
        struct sl_sse_reader r;
        with_budget(n);
        int rc = F->encode(parsed, &m, 1, a, &out, &e);
        assert_true(rc == 0 || e.status >= 400);
        cJSON *c = F->decode_reply(reply, strlen(reply), "m", &u, &e);
        assert_true(c || e.status >= 400);
        F->stream_init(&st, "id", "m");
        sl_sse_reader_init(&r, 1 << 20);
        sl_sse_feed(&r, TOOL_STREAM, strlen(TOOL_STREAM), torture_event, &st);
        sl_sse_reader_release(&r);
        F->stream_release(&st);
        done = rc == 0 && c && st.stopped;
        with_budget(-1);
        cJSON_Delete(c);
        sl_arena_free(a);
    }
    assert_true(done);
    cJSON_Delete(parsed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_system_stop_defaults),
        cmocka_unit_test(test_encode_max_tokens_and_stream),
        cmocka_unit_test(test_encode_tool_round_trip_grouping),
        cmocka_unit_test(test_encode_tool_choice),
        cmocka_unit_test(test_encode_images),
        cmocka_unit_test(test_encode_merge_and_empty),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_encode_thinking_and_formats),
        cmocka_unit_test(test_decode_reply_tools_thinking_cache),
        cmocka_unit_test(test_stop_reasons_and_errors),
        cmocka_unit_test(test_stream_tools_thinking_split),
        cmocka_unit_test(test_stream_error_mid_stream),
        cmocka_unit_test(test_stream_cut_and_malformed),
        cmocka_unit_test(test_sniff_usage),
        cmocka_unit_test(test_torture_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
