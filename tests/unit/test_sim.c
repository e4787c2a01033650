/* The simulated provider, driven over real HTTP with libcurl: reply text and usage by
 * the formula of docs/sim.md, streams, tool calls and the failure directives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>

#include "core/buf.h"
#include "core/clock.h"
#include "sim/sim.h"

static struct sl_sim *sim;

struct response {
    CURLcode rc;
    long status;
    struct sl_buf body, headers;
};

static size_t on_bytes(char *p, size_t size, size_t n, void *arg)
{
    return sl_buf_append(arg, p, size * n) ? 0 : size * n;
}

/* POSTs json to path (GET when json is NULL). Release r with response_release(). */
static void request(const char *path, const char *json, struct response *r)
{
    char url[256];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", sl_sim_port(sim), path);
    sl_buf_init(&r->body, 1 << 22);
    sl_buf_init(&r->headers, 1 << 16);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_bytes);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_bytes);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r->headers);
    if (json)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, json);
    r->rc = curl_easy_perform(c);
    r->status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

static void response_release(struct response *r)
{
    sl_buf_release(&r->body);
    sl_buf_release(&r->headers);
}

static char *chat_body(const char *user, const char *extra)
{
    static char body[4096];
    snprintf(body, sizeof(body),
             "{\"model\":\"sim-small\",\"messages\":[{\"role\":\"user\",\"content\":\"%s\"}]%s%s}",
             user, extra ? "," : "", extra ? extra : "");
    return body;
}

/* The JSON payloads of a stream's data: events, in order, as a cJSON array of strings. */
static cJSON *sse_data(const char *body)
{
    cJSON *events = cJSON_CreateArray();
    for (const char *p = body; (p = strstr(p, "data: ")) != NULL;) {
        p += 6;
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        char *data = strndup(p, (size_t)(end - p));
        cJSON_AddItemToArray(events, cJSON_CreateString(data));
        free(data);
        p = end + 2;
    }
    return events;
}

static cJSON *path(cJSON *v, const char *a, const char *b, const char *c)
{
    v = cJSON_GetObjectItemCaseSensitive(v, a);
    if (b)
        v = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, 0) : cJSON_GetObjectItemCaseSensitive(v, b);
    if (c)
        v = cJSON_GetObjectItemCaseSensitive(v, c);
    return v;
}

static int usage_of(cJSON *obj, const char *field)
{
    cJSON *v = path(obj, "usage", field, NULL);
    assert_true(cJSON_IsNumber(v));
    return v->valueint;
}

static void test_reply_and_usage(void **state)
{
    struct response r;
    request("/v1/chat/completions",
            "{\"model\":\"sim-large\",\"messages\":["
            "{\"role\":\"system\",\"content\":\"Be brief please\"},"
            "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hello  sim\"},"
            "{\"type\":\"text\",\"text\":\"world @sim:latency_unknown\"}]}]}",
            &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "object", NULL, NULL)->valuestring, "chat.completion");
    assert_string_equal(path(j, "model", NULL, NULL)->valuestring, "sim-large");
    assert_memory_equal(path(j, "id", NULL, NULL)->valuestring, "chatcmpl-sim-", 13);
    cJSON *msg = path(j, "choices", "x", "message");
    assert_string_equal(cJSON_GetObjectItem(msg, "content")->valuestring,
                        "This is a simulated reply to: Hello sim world");
    assert_string_equal(path(j, "choices", "x", "finish_reason")->valuestring, "stop");
    /* prompt: 3 + 3 words, 3 per message (directives count); completion: 9 words. */
    assert_int_equal(usage_of(j, "prompt_tokens"), 13);
    assert_int_equal(usage_of(j, "completion_tokens"), 9);
    assert_int_equal(usage_of(j, "total_tokens"), 22);
    cJSON_Delete(j);
    response_release(&r);
}

static void test_stream_with_usage(void **state)
{
    struct response r;
    request("/v1/chat/completions",
            chat_body("count to three",
                      "\"stream\":true,\"stream_options\":{\"include_usage\":true}"),
            &r);
    assert_int_equal(r.rc, CURLE_OK);
    assert_non_null(strstr(r.headers.ptr, "text/event-stream"));
    cJSON *events = sse_data(r.body.ptr);
    int n = cJSON_GetArraySize(events);
    /* role, 9 words, finish, usage, [DONE] */
    assert_int_equal(n, 13);
    assert_string_equal(cJSON_GetArrayItem(events, n - 1)->valuestring, "[DONE]");
    struct sl_buf content = SL_BUF_INIT(4096);
    for (int i = 0; i < n - 1; i++) {
        cJSON *c = cJSON_Parse(cJSON_GetArrayItem(events, i)->valuestring);
        assert_non_null(cJSON_GetObjectItem(c, "usage"));
        if (i < n - 2) {
            assert_true(cJSON_IsNull(cJSON_GetObjectItem(c, "usage")));
            cJSON *text = path(c, "choices", "x", "delta");
            text = cJSON_GetObjectItem(text, "content");
            if (cJSON_IsString(text))
                sl_buf_puts(&content, text->valuestring);
        } else {
            assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(c, "choices")), 0);
            assert_int_equal(usage_of(c, "prompt_tokens"), 6);
            assert_int_equal(usage_of(c, "completion_tokens"), 9);
            assert_int_equal(usage_of(c, "total_tokens"), 15);
        }
        if (i == n - 3)
            assert_string_equal(path(c, "choices", "x", "finish_reason")->valuestring, "stop");
        cJSON_Delete(c);
    }
    assert_string_equal(content.ptr, "This is a simulated reply to: count to three");
    sl_buf_release(&content);
    cJSON_Delete(events);
    response_release(&r);
}

#define WEATHER_TOOL                                                                       \
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\","            \
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"},"  \
    "\"unit\":{\"type\":\"string\",\"enum\":[\"c\",\"f\"]},\"days\":{\"type\":\"integer\"}}," \
    "\"required\":[\"city\",\"unit\"]}}}]"

static void test_tool_call(void **state)
{
    struct response r;
    request("/v1/chat/completions", chat_body("weather in Paris?", WEATHER_TOOL), &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body.ptr);
    cJSON *msg = path(j, "choices", "x", "message");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(msg, "content")));
    cJSON *call = cJSON_GetArrayItem(cJSON_GetObjectItem(msg, "tool_calls"), 0);
    assert_string_equal(cJSON_GetObjectItem(call, "id")->valuestring, "call_sim_0");
    assert_string_equal(path(call, "function", "name", NULL)->valuestring, "get_weather");
    assert_string_equal(path(call, "function", "arguments", NULL)->valuestring,
                        "{\"city\":\"sim\",\"unit\":\"c\"}");
    assert_string_equal(path(j, "choices", "x", "finish_reason")->valuestring, "tool_calls");
    assert_int_equal(usage_of(j, "completion_tokens"), 2);
    cJSON_Delete(j);
    response_release(&r);

    request("/v1/chat/completions",
            chat_body("weather in Paris?", WEATHER_TOOL ",\"stream\":true"), &r);
    cJSON *events = sse_data(r.body.ptr);
    struct sl_buf args = SL_BUF_INIT(4096);
    for (int i = 0; i < cJSON_GetArraySize(events) - 1; i++) {
        cJSON *c = cJSON_Parse(cJSON_GetArrayItem(events, i)->valuestring);
        cJSON *tc = cJSON_GetObjectItem(path(c, "choices", "x", "delta"), "tool_calls");
        tc = cJSON_GetArrayItem(tc, 0);
        cJSON *frag = path(tc, "function", "arguments", NULL);
        if (cJSON_IsString(frag)) {
            assert_true(strlen(frag->valuestring) <= 8);
            sl_buf_puts(&args, frag->valuestring);
        }
        cJSON_Delete(c);
    }
    assert_string_equal(args.ptr, "{\"city\":\"sim\",\"unit\":\"c\"}");
    sl_buf_release(&args);
    cJSON_Delete(events);
    response_release(&r);
}

static void test_status_and_retry_after(void **state)
{
    struct response r;
    request("/v1/chat/completions", chat_body("@sim:status=429 @sim:retry_after=7 hi", NULL),
            &r);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.headers.ptr, "Retry-After: 7\r\n"));
    cJSON *j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "error", "type", NULL)->valuestring, "rate_limit_exceeded");
    assert_true(cJSON_IsString(path(j, "error", "message", NULL)));
    assert_true(cJSON_IsNull(path(j, "error", "param", NULL)));
    assert_true(cJSON_IsNull(path(j, "error", "code", NULL)));
    cJSON_Delete(j);
    response_release(&r);
}

static void test_fail_times(void **state)
{
    const char *body = chat_body("@sim:fail_times=1 @sim:status=503 flaky", NULL);
    struct response r;
    request("/v1/chat/completions", body, &r);
    assert_int_equal(r.status, 503);
    response_release(&r);
    request("/v1/chat/completions", body, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.ptr, "This is a simulated reply to: flaky"));
    response_release(&r);
}

static void test_malformed_after(void **state)
{
    struct response r;
    request("/v1/chat/completions", chat_body("@sim:malformed_after=2 go", "\"stream\":true"), &r);
    assert_int_equal(r.rc, CURLE_OK);
    cJSON *events = sse_data(r.body.ptr);
    /* role, "This", " is", then the broken event, then the rest and [DONE] */
    assert_string_equal(cJSON_GetArrayItem(events, 3)->valuestring, "{not json");
    assert_null(cJSON_Parse(cJSON_GetArrayItem(events, 3)->valuestring));
    assert_non_null(strstr(cJSON_GetArrayItem(events, 4)->valuestring, "\" a\""));
    int n = cJSON_GetArraySize(events);
    assert_string_equal(cJSON_GetArrayItem(events, n - 1)->valuestring, "[DONE]");
    assert_null(strstr(r.body.ptr, "\"usage\""));
    cJSON_Delete(events);
    response_release(&r);
}

static void test_resets(void **state)
{
    struct response r;
    request("/v1/chat/completions", chat_body("@sim:reset bye", NULL), &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    assert_int_equal(r.body.len, 0);
    response_release(&r);

    request("/v1/chat/completions", chat_body("@sim:reset_after=2 bye", "\"stream\":true"), &r);
    assert_int_not_equal(r.rc, CURLE_OK);
    cJSON *events = sse_data(r.body.ptr);
    assert_int_equal(cJSON_GetArraySize(events), 3); /* role and two words */
    cJSON_Delete(events);
    response_release(&r);
}

static void test_error_after_and_ttft(void **state)
{
    struct response r;
    int64_t t0 = sl_now_us();
    request("/v1/chat/completions",
            chat_body("@sim:error_after=1 @sim:ttft=120 x", "\"stream\":true"), &r);
    assert_true(sl_now_us() - t0 >= 120000);
    cJSON *events = sse_data(r.body.ptr);
    assert_int_equal(cJSON_GetArraySize(events), 4); /* role, "This", error, [DONE] */
    cJSON *e = cJSON_Parse(cJSON_GetArrayItem(events, 2)->valuestring);
    assert_string_equal(path(e, "error", "type", NULL)->valuestring, "server_error");
    cJSON_Delete(e);
    cJSON_Delete(events);
    response_release(&r);
}

static void test_bad_requests_and_models(void **state)
{
    struct response r;
    request("/v1/chat/completions", "{\"model\":", &r);
    assert_int_equal(r.status, 400);
    cJSON *j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "error", "type", NULL)->valuestring, "invalid_request_error");
    cJSON_Delete(j);
    response_release(&r);

    request("/v1/chat/completions", "{\"model\":\"sim-small\"}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.ptr, "\"param\":\"messages\""));
    response_release(&r);

    request("/v1/models", NULL, &r);
    assert_int_equal(r.status, 200);
    j = cJSON_Parse(r.body.ptr);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "data")), 3);
    assert_string_equal(path(j, "data", "x", "id")->valuestring, "sim-small");
    cJSON_Delete(j);
    response_release(&r);

    request("/nope", NULL, &r);
    assert_int_equal(r.status, 404);
    response_release(&r);
}

static int setup(void **state)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct sl_sim_opts o = {.host = "127.0.0.1", .port = 0, .threads = 2, .quiet = 1};
    return sl_sim_start(&o, &sim);
}

static int teardown(void **state)
{
    sl_sim_stop(sim);
    curl_global_cleanup();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reply_and_usage),
        cmocka_unit_test(test_stream_with_usage),
        cmocka_unit_test(test_tool_call),
        cmocka_unit_test(test_status_and_retry_after),
        cmocka_unit_test(test_fail_times),
        cmocka_unit_test(test_malformed_after),
        cmocka_unit_test(test_resets),
        cmocka_unit_test(test_error_after_and_ttft),
        cmocka_unit_test(test_bad_requests_and_models),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
