/* The simulated provider, driven over real HTTP with libcurl: reply text and usage by
 * the formula of docs/sim.md in the OpenAI, Anthropic and Gemini formats, streams, tool
 * calls, the failure directives, and the deterministic embeddings and their endpoints. */
#include <setjmp.h>
#include <math.h>
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

/* ---- Anthropic Messages ---- */

/* The `event:` names of an Anthropic stream, comma-separated (caller frees). */
static char *event_names(const char *body)
{
    struct sl_buf names = SL_BUF_INIT(1 << 20);
    for (const char *p = body; (p = strstr(p, "event: ")) != NULL;) {
        p += 7;
        size_t n = strcspn(p, "\n");
        if (names.len)
            sl_buf_puts(&names, ",");
        sl_buf_append(&names, p, n);
        p += n;
    }
    return names.ptr ? names.ptr : strdup("");
}

/* The data payloads of events named name, parsed, in order, as a cJSON array. */
static cJSON *events_named(const char *body, const char *name)
{
    cJSON *out = cJSON_CreateArray();
    char marker[64];
    snprintf(marker, sizeof(marker), "event: %s\ndata: ", name);
    for (const char *p = body; (p = strstr(p, marker)) != NULL;) {
        p += strlen(marker);
        const char *end = strstr(p, "\n\n");
        assert_non_null(end);
        cJSON_AddItemToArray(out, cJSON_ParseWithLength(p, (size_t)(end - p)));
        p = end;
    }
    return out;
}

#define MESSAGES(extra, msgs)                                                              \
    "{\"model\":\"sim-small\",\"max_tokens\":256" extra ",\"messages\":[" msgs "]}"

static void test_anthropic_message(void **state)
{
    struct response r;
    request("/v1/messages",
            "{\"model\":\"sim-reasoner\",\"max_tokens\":256,\"system\":[{\"type\":\"text\","
            "\"text\":\"Be brief\"}],\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
            "\"text\",\"text\":\"Hello there\"},{\"type\":\"text\",\"text\":\"sim\"}]}]}",
            &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers.ptr, "request-id: req_sim_"));
    cJSON *j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "type", NULL, NULL)->valuestring, "message");
    assert_memory_equal(path(j, "id", NULL, NULL)->valuestring, "msg_sim_", 8);
    cJSON *content = cJSON_GetObjectItem(j, "content");
    assert_int_equal(cJSON_GetArraySize(content), 2);
    cJSON *thinking = cJSON_GetArrayItem(content, 0), *text = cJSON_GetArrayItem(content, 1);
    assert_string_equal(cJSON_GetObjectItem(thinking, "type")->valuestring, "thinking");
    assert_string_equal(cJSON_GetObjectItem(thinking, "thinking")->valuestring,
                        "Thinking about: Hello there sim");
    assert_true(strlen(cJSON_GetObjectItem(thinking, "signature")->valuestring) > 0);
    assert_string_equal(cJSON_GetObjectItem(text, "text")->valuestring,
                        "This is a simulated reply to: Hello there sim");
    assert_string_equal(path(j, "stop_reason", NULL, NULL)->valuestring, "end_turn");
    /* prompt: system 2 + 3, user 3 + 3; output: 9 reply + 5 thinking words */
    assert_int_equal(usage_of(j, "input_tokens"), 11);
    assert_int_equal(usage_of(j, "output_tokens"), 14);
    assert_int_equal(usage_of(j, "cache_read_input_tokens"), 0);
    assert_int_equal(path(j, "usage", "output_tokens_details", "thinking_tokens")->valueint, 5);
    cJSON_Delete(j);
    response_release(&r);

    /* max_tokens cuts the reply: 3 of its 9 words */
    request("/v1/messages",
            "{\"model\":\"sim-small\",\"max_tokens\":3,\"messages\":[{\"role\":\"user\","
            "\"content\":\"one two\"}]}", &r);
    j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "stop_reason", NULL, NULL)->valuestring, "max_tokens");
    assert_string_equal(path(j, "content", "x", "text")->valuestring, "This is a");
    assert_int_equal(usage_of(j, "output_tokens"), 3);
    cJSON_Delete(j);
    response_release(&r);
}

static void test_anthropic_stream(void **state)
{
    struct response r;
    request("/v1/messages",
            MESSAGES(",\"stream\":true", "{\"role\":\"user\",\"content\":\"count to three\"}"),
            &r);
    assert_int_equal(r.status, 200);
    char *names = event_names(r.body.ptr);
    assert_string_equal(names, "message_start,content_block_start,ping,content_block_delta,"
                               "content_block_delta,content_block_delta,content_block_delta,"
                               "content_block_delta,content_block_delta,content_block_delta,"
                               "content_block_delta,content_block_delta,content_block_stop,"
                               "message_delta,message_stop");
    free(names);
    assert_null(strstr(r.body.ptr, "[DONE]"));
    cJSON *start = events_named(r.body.ptr, "message_start");
    assert_int_equal(path(cJSON_GetArrayItem(start, 0), "message", "usage", "input_tokens")
                         ->valueint, 6);
    cJSON *deltas = events_named(r.body.ptr, "content_block_delta"), *d;
    struct sl_buf text = SL_BUF_INIT(4096);
    cJSON_ArrayForEach(d, deltas)
    {
        assert_string_equal(path(d, "delta", "type", NULL)->valuestring, "text_delta");
        sl_buf_puts(&text, path(d, "delta", "text", NULL)->valuestring);
    }
    assert_string_equal(text.ptr, "This is a simulated reply to: count to three");
    cJSON *md = events_named(r.body.ptr, "message_delta");
    cJSON *m = cJSON_GetArrayItem(md, 0);
    assert_string_equal(path(m, "delta", "stop_reason", NULL)->valuestring, "end_turn");
    assert_int_equal(usage_of(m, "output_tokens"), 9);
    sl_buf_release(&text);
    cJSON_Delete(start);
    cJSON_Delete(deltas);
    cJSON_Delete(md);
    response_release(&r);
}

#define ANTHROPIC_TOOL                                                                     \
    ",\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{\"type\":\"object\","         \
    "\"properties\":{\"city\":{\"type\":\"string\"},\"unit\":{\"type\":\"string\","        \
    "\"enum\":[\"c\",\"f\"]}},\"required\":[\"city\",\"unit\"]}}]"

static void test_anthropic_tool_stream(void **state)
{
    struct response r;
    request("/v1/messages",
            MESSAGES(ANTHROPIC_TOOL ",\"stream\":true,\"tool_choice\":{\"type\":\"any\"}",
                     "{\"role\":\"user\",\"content\":\"weather in Paris?\"}"),
            &r);
    cJSON *starts = events_named(r.body.ptr, "content_block_start");
    cJSON *block = path(cJSON_GetArrayItem(starts, 0), "content_block", NULL, NULL);
    assert_string_equal(cJSON_GetObjectItem(block, "type")->valuestring, "tool_use");
    assert_string_equal(cJSON_GetObjectItem(block, "id")->valuestring, "toolu_sim_0");
    assert_string_equal(cJSON_GetObjectItem(block, "name")->valuestring, "get_weather");
    cJSON *deltas = events_named(r.body.ptr, "content_block_delta"), *d;
    struct sl_buf args = SL_BUF_INIT(4096);
    cJSON_ArrayForEach(d, deltas)
    {
        assert_string_equal(path(d, "delta", "type", NULL)->valuestring, "input_json_delta");
        sl_buf_puts(&args, path(d, "delta", "partial_json", NULL)->valuestring);
    }
    assert_string_equal(args.ptr, "{\"city\":\"sim\",\"unit\":\"c\"}");
    assert_non_null(strstr(r.body.ptr, "\"stop_reason\":\"tool_use\""));
    sl_buf_release(&args);
    cJSON_Delete(starts);
    cJSON_Delete(deltas);
    response_release(&r);

    /* the result comes back in a user turn; the reply echoes it */
    request("/v1/messages",
            MESSAGES(ANTHROPIC_TOOL,
                     "{\"role\":\"user\",\"content\":\"weather in Paris?\"},"
                     "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\","
                     "\"name\":\"get_weather\",\"input\":{\"city\":\"Paris\"}}]},"
                     "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                     "\"tool_use_id\":\"t1\",\"content\":\"sunny\"}]}"),
            &r);
    cJSON *j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "content", "x", "text")->valuestring,
                        "Tool result received: sunny");
    assert_int_equal(usage_of(j, "input_tokens"), 3 + 3 + 3 + 0 + 3 + 1);
    cJSON_Delete(j);
    response_release(&r);
}

static void test_anthropic_errors(void **state)
{
    struct response r;
    request("/v1/messages",
            MESSAGES("", "{\"role\":\"user\","
                         "\"content\":\"@sim:status=529 @sim:retry_after=3 x\"}"),
            &r);
    assert_int_equal(r.status, 529);
    assert_non_null(strstr(r.headers.ptr, "Retry-After: 3\r\n"));
    cJSON *j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "type", NULL, NULL)->valuestring, "error");
    assert_string_equal(path(j, "error", "type", NULL)->valuestring, "overloaded_error");
    assert_memory_equal(path(j, "request_id", NULL, NULL)->valuestring, "req_sim_", 8);
    cJSON_Delete(j);
    response_release(&r);

    request("/v1/messages",
            "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.ptr, "max_tokens: Field required"));
    response_release(&r);

    /* a tool_use answered by no tool_result is the client's (or gateway's) error */
    request("/v1/messages",
            MESSAGES("", "{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\","
                         "\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\","
                         "\"input\":{}}]},{\"role\":\"user\",\"content\":\"b\"}"),
            &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.ptr, "invalid_request_error"));
    response_release(&r);

    request("/v1/messages",
            MESSAGES(",\"stream\":true,\"stream_options\":{}",
                     "{\"role\":\"user\",\"content\":\"x\"}"),
            &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.ptr, "stream_options: Extra inputs are not permitted"));
    response_release(&r);

    request("/v1/messages",
            MESSAGES(",\"stream\":true",
                     "{\"role\":\"user\",\"content\":\"@sim:error_after=1 x\"}"),
            &r);
    char *names = event_names(r.body.ptr);
    assert_string_equal(names, "message_start,content_block_start,ping,content_block_delta,error");
    free(names);
    cJSON *errors = events_named(r.body.ptr, "error");
    assert_string_equal(path(cJSON_GetArrayItem(errors, 0), "error", "type", NULL)->valuestring,
                        "overloaded_error");
    cJSON_Delete(errors);
    response_release(&r);
}

/* ---- Gemini ---- */

#define GEMINI_PATH(model, method) "/v1beta/models/" model ":" method

static void test_gemini_generate(void **state)
{
    struct response r;
    request(GEMINI_PATH("sim-reasoner", "generateContent"),
            "{\"systemInstruction\":{\"parts\":[{\"text\":\"Be brief\"}]},\"contents\":[{\"role\":"
            "\"user\",\"parts\":[{\"text\":\"Hello\"},{\"text\":\"there\"}]}]}",
            &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body.ptr);
    cJSON *cand = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "candidates"), 0);
    assert_string_equal(cJSON_GetObjectItem(cand, "finishReason")->valuestring, "STOP");
    cJSON *parts = path(cand, "content", "parts", NULL);
    assert_int_equal(cJSON_GetArraySize(parts), 1); /* thoughts only with includeThoughts */
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(parts, 0), "text")->valuestring,
                        "This is a simulated reply to: Hello there");
    cJSON *u = cJSON_GetObjectItem(j, "usageMetadata");
    assert_int_equal(cJSON_GetObjectItem(u, "promptTokenCount")->valueint, 10);
    assert_int_equal(cJSON_GetObjectItem(u, "candidatesTokenCount")->valueint, 8);
    assert_int_equal(cJSON_GetObjectItem(u, "thoughtsTokenCount")->valueint, 4);
    assert_int_equal(cJSON_GetObjectItem(u, "totalTokenCount")->valueint, 22);
    assert_string_equal(path(j, "modelVersion", NULL, NULL)->valuestring, "sim-reasoner");
    cJSON_Delete(j);
    response_release(&r);

    request(GEMINI_PATH("sim-small", "generateContent"), "{\"messages\":[]}", &r);
    assert_int_equal(r.status, 400);
    j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "error", "status", NULL)->valuestring, "INVALID_ARGUMENT");
    assert_int_equal(path(j, "error", "code", NULL)->valueint, 400);
    cJSON_Delete(j);
    response_release(&r);
}

static void test_gemini_stream(void **state)
{
    struct response r;
    request(GEMINI_PATH("sim-reasoner", "streamGenerateContent?alt=sse"),
            "{\"contents\":[{\"parts\":[{\"text\":\"count to three\"}]}],\"generationConfig\":"
            "{\"thinkingConfig\":{\"includeThoughts\":true}}}",
            &r);
    assert_int_equal(r.status, 200);
    assert_null(strstr(r.body.ptr, "[DONE]"));
    struct sl_buf text = SL_BUF_INIT(4096), thoughts = SL_BUF_INIT(4096);
    int n = 0, last_total = 0;
    cJSON *last = NULL;
    for (const char *p = r.body.ptr; *p; n++) {
        assert_memory_equal(p, "data: ", 6);
        const char *end = strstr(p, "\r\n\r\n");
        assert_non_null(end);
        cJSON_Delete(last);
        last = cJSON_ParseWithLength(p + 6, (size_t)(end - p - 6));
        cJSON *part = path(cJSON_GetArrayItem(cJSON_GetObjectItem(last, "candidates"), 0),
                           "content", "parts", NULL);
        part = cJSON_GetArrayItem(part, 0);
        sl_buf_puts(cJSON_IsTrue(cJSON_GetObjectItem(part, "thought")) ? &thoughts : &text,
                    cJSON_GetObjectItem(part, "text")->valuestring);
        int total = path(last, "usageMetadata", "totalTokenCount", NULL)->valueint;
        assert_true(total >= last_total); /* cumulative */
        last_total = total;
        p = end + 4;
    }
    assert_int_equal(n, 5 + 9 + 1); /* thought words, reply words, the finish chunk */
    assert_string_equal(thoughts.ptr, "Thinking about: count to three");
    assert_string_equal(text.ptr, "This is a simulated reply to: count to three");
    assert_string_equal(path(cJSON_GetArrayItem(cJSON_GetObjectItem(last, "candidates"), 0),
                             "finishReason", NULL, NULL)->valuestring, "STOP");
    assert_int_equal(path(last, "usageMetadata", "thoughtsTokenCount", NULL)->valueint, 5);
    assert_int_equal(path(last, "usageMetadata", "candidatesTokenCount", NULL)->valueint, 9);
    assert_int_equal(last_total, 6 + 5 + 9);
    cJSON_Delete(last);
    sl_buf_release(&text);
    sl_buf_release(&thoughts);
    response_release(&r);
}

#define GEMINI_TOOLS                                                                       \
    "\"tools\":[{\"functionDeclarations\":[{\"name\":\"get_weather\",\"parameters\":"      \
    "{\"type\":\"OBJECT\",\"properties\":{\"city\":{\"type\":\"STRING\"},\"days\":"        \
    "{\"type\":\"INTEGER\"}},\"required\":[\"city\"]}}]}]"

static void test_gemini_function_call(void **state)
{
    struct response r;
    request(GEMINI_PATH("sim-small", "streamGenerateContent?alt=sse"),
            "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"weather?\"}]}]," GEMINI_TOOLS
            "}",
            &r);
    assert_int_equal(r.status, 200);
    cJSON *first = cJSON_ParseWithLength(r.body.ptr + 6, strcspn(r.body.ptr, "\r") - 6);
    cJSON *part = cJSON_GetArrayItem(
        path(cJSON_GetArrayItem(cJSON_GetObjectItem(first, "candidates"), 0), "content", "parts",
             NULL),
        0);
    assert_string_equal(path(part, "functionCall", "name", NULL)->valuestring, "get_weather");
    assert_string_equal(path(part, "functionCall", "args", "city")->valuestring, "sim");
    const char *sig = cJSON_GetObjectItem(part, "thoughtSignature")->valuestring;
    assert_true(strlen(sig) > 0);
    char body[2048];
#define GEMINI_HISTORY                                                                     \
    "{\"contents\":[{\"role\":\"user\",\"parts\":[{\"text\":\"weather?\"}]},"                  \
    "{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":\"get_weather\","           \
    "\"args\":{\"city\":\"sim\"}}%s%s%s}]},{\"role\":\"user\",\"parts\":[{"                   \
    "\"functionResponse\":{\"name\":\"get_weather\",\"response\":{\"result\":"               \
    "\"sunny\"}}}]}]," GEMINI_TOOLS "}"
    snprintf(body, sizeof(body), GEMINI_HISTORY, ",\"thoughtSignature\":\"", sig, "\"");
    cJSON_Delete(first);
    response_release(&r);

    request(GEMINI_PATH("sim-small", "generateContent"), body, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body.ptr, "\"Tool result received: sunny\""));
    response_release(&r);

    /* the signature left out: Gemini 3 refuses the history */
    snprintf(body, sizeof(body), GEMINI_HISTORY, "", "", "");
    request(GEMINI_PATH("sim-small", "generateContent"), body, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.ptr, "thought_signature"));
    response_release(&r);
}

static void test_gemini_rate_limit(void **state)
{
    struct response r;
    request(GEMINI_PATH("sim-small", "generateContent"),
            "{\"contents\":[{\"parts\":[{\"text\":\"@sim:status=429 @sim:retry_after=7 hi\"}]}]}",
            &r);
    assert_int_equal(r.status, 429);
    assert_null(strstr(r.headers.ptr, "Retry-After"));
    cJSON *j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "error", "status", NULL)->valuestring, "RESOURCE_EXHAUSTED");
    cJSON *detail = cJSON_GetArrayItem(path(j, "error", "details", NULL), 0);
    assert_string_equal(cJSON_GetObjectItem(detail, "@type")->valuestring,
                        "type.googleapis.com/google.rpc.RetryInfo");
    assert_string_equal(cJSON_GetObjectItem(detail, "retryDelay")->valuestring, "7s");
    cJSON_Delete(j);
    response_release(&r);

    request(GEMINI_PATH("sim-small", "streamGenerateContent"), "{}", &r);
    assert_int_equal(r.status, 400); /* only the alt=sse form is served */
    response_release(&r);
    request(GEMINI_PATH("sim-small", "countTokens"), "{}", &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.ptr, "NOT_FOUND"));
    response_release(&r);
}

/* ---- embeddings ---- */

static double cosine(const float *a, const float *b, int n)
{
    double dot = 0;
    for (int i = 0; i < n; i++)
        dot += (double)a[i] * b[i];
    return dot;
}

static double similarity(const char *a, const char *b, int dims)
{
    float va[1024], vb[1024];
    sl_sim_embed(a, strlen(a), va, dims);
    sl_sim_embed(b, strlen(b), vb, dims);
    return cosine(va, vb, dims);
}

static void test_embed_vectors(void **state)
{
    const char *s = "the quick brown fox jumps over a lazy sleeping dog";
    float a[256], b[256];
    sl_sim_embed(s, strlen(s), a, 256);
    sl_sim_embed(s, strlen(s), b, 256);
    assert_memory_equal(a, b, sizeof(a));
    assert_true(fabs(cosine(a, a, 256) - 1.0) < 1e-5);
    static const char *const pairs[][2] = {
        {"the quick brown fox jumps over a lazy sleeping dog",
         "the quick brown fox jumps over a lazy sleeping cat"},
        {"please tell me what the capital city of France is",
         "please tell me what the capital city of Spain is"},
        {"how do I reset my password on the company portal",
         "how can I reset my password on the company portal"},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++)
        for (int dims = 256; dims <= 1024; dims *= 4) {
            double sim = similarity(pairs[i][0], pairs[i][1], dims);
            if (sim <= 0.9)
                fail_msg("pair %zu at %d dims: %f", i, dims, sim);
        }
    static const char *const unrelated[][2] = {
        {"the quick brown fox jumps over a lazy sleeping dog",
         "please tell me what the capital city of France is"},
        {"how do I reset my password on the company portal",
         "quarterly revenue grew by twelve percent in asia"},
    };
    for (size_t i = 0; i < sizeof(unrelated) / sizeof(unrelated[0]); i++) {
        double sim = similarity(unrelated[i][0], unrelated[i][1], 256);
        if (sim >= 0.3)
            fail_msg("unrelated pair %zu: %f", i, sim);
    }
    /* case and punctuation do not matter */
    assert_true(similarity("Hello, World!", "hello world", 256) > 0.9999);
}

/* The vector an endpoint serves for text: cut to keep and normalised again. */
static void expected_vector(const char *text, int full, int keep, float *out)
{
    float v[1024];
    sl_sim_embed(text, strlen(text), v, full);
    double norm = sqrt(cosine(v, v, keep));
    for (int i = 0; i < keep; i++)
        out[i] = (float)(v[i] / norm);
}

static void assert_vector(cJSON *values, const char *text, int full, int keep)
{
    float want[1024];
    expected_vector(text, full, keep, want);
    assert_int_equal(cJSON_GetArraySize(values), keep);
    for (int i = 0; i < keep; i++)
        assert_true(fabs(cJSON_GetArrayItem(values, i)->valuedouble - want[i]) < 1e-6);
}

static int b64_value(char c)
{
    const char *digits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    return (int)(strchr(digits, c) - digits);
}

static void test_embed_openai(void **state)
{
    struct response r;
    request("/v1/embeddings",
            "{\"model\":\"sim-embed-large\",\"input\":[\"hello world\",\"good bye\"]}", &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body.ptr);
    cJSON *data = cJSON_GetObjectItem(j, "data");
    assert_int_equal(cJSON_GetArraySize(data), 2);
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 1), "index")->valueint, 1);
    assert_vector(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 0), "embedding"), "hello world",
                  1024, 1024);
    assert_vector(cJSON_GetObjectItem(cJSON_GetArrayItem(data, 1), "embedding"), "good bye",
                  1024, 1024);
    assert_int_equal(usage_of(j, "prompt_tokens"), 6);
    assert_int_equal(usage_of(j, "total_tokens"), 6);
    cJSON_Delete(j);
    response_release(&r);

    request("/v1/embeddings",
            "{\"model\":\"sim-embed\",\"input\":\"hello\",\"dimensions\":8,"
            "\"encoding_format\":\"base64\"}", &r);
    j = cJSON_Parse(r.body.ptr);
    const char *b64 = path(j, "data", "x", "embedding")->valuestring;
    assert_int_equal(strlen(b64), 44); /* 32 bytes */
    unsigned char bytes[33];
    for (int i = 0, k = 0; i < 44; i += 4) {
        int v = b64_value(b64[i]) << 18 | b64_value(b64[i + 1]) << 12 |
                (b64[i + 2] == '=' ? 0 : b64_value(b64[i + 2]) << 6) |
                (b64[i + 3] == '=' ? 0 : b64_value(b64[i + 3]));
        bytes[k++] = (unsigned char)(v >> 16);
        bytes[k++] = (unsigned char)(v >> 8);
        bytes[k++] = (unsigned char)v;
    }
    float got[8], want[8];
    memcpy(got, bytes, sizeof(got)); /* little-endian host */
    expected_vector("hello", 256, 8, want);
    assert_memory_equal(got, want, sizeof(got));
    cJSON_Delete(j);
    response_release(&r);

    request("/v1/embeddings", "{\"model\":\"sim-embed\",\"input\":[[1,2,3]]}", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.ptr, "\"param\":\"input\""));
    response_release(&r);
    request("/v1/embeddings", "{\"model\":\"sim-embed\",\"input\":\"x\",\"dimensions\":300}", &r);
    assert_int_equal(r.status, 400);
    response_release(&r);
    request("/v1/embeddings", "{\"model\":\"sim-embed\",\"input\":\"@sim:status=429 x\"}", &r);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.body.ptr, "rate_limit_exceeded"));
    response_release(&r);
}

#define DASHSCOPE "/api/v1/services/embeddings/text-embedding/text-embedding"

static void test_embed_dashscope(void **state)
{
    struct response r;
    request(DASHSCOPE,
            "{\"model\":\"text-embedding-v3\",\"input\":{\"texts\":[\"a b\",\"c\"]},"
            "\"parameters\":{\"dimension\":64}}", &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body.ptr);
    cJSON *embs = path(j, "output", "embeddings", NULL);
    assert_int_equal(cJSON_GetArraySize(embs), 2);
    cJSON *second = cJSON_GetArrayItem(embs, 1);
    assert_int_equal(cJSON_GetObjectItem(second, "text_index")->valueint, 1);
    assert_vector(cJSON_GetObjectItem(second, "embedding"), "c", 256, 64);
    assert_int_equal(usage_of(j, "total_tokens"), 5);
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "request_id")));
    cJSON_Delete(j);
    response_release(&r);

    request(DASHSCOPE,
            "{\"model\":\"text-embedding-v3\",\"input\":{\"texts\":[\"1\",\"2\",\"3\",\"4\","
            "\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\"]}}", &r);
    assert_int_equal(r.status, 400);
    j = cJSON_Parse(r.body.ptr);
    assert_string_equal(path(j, "code", NULL, NULL)->valuestring, "InvalidParameter");
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "message")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "request_id")));
    cJSON_Delete(j);
    response_release(&r);
}

static void test_embed_gemini(void **state)
{
    struct response r;
    request(GEMINI_PATH("sim-embed", "embedContent"),
            "{\"content\":{\"parts\":[{\"text\":\"hello\"}]},\"outputDimensionality\":32}", &r);
    assert_int_equal(r.status, 200);
    cJSON *j = cJSON_Parse(r.body.ptr);
    assert_vector(path(j, "embedding", "values", NULL), "hello", 256, 32);
    cJSON_Delete(j);
    response_release(&r);

    request(GEMINI_PATH("sim-embed-large", "batchEmbedContents"),
            "{\"requests\":[{\"model\":\"models/sim-embed-large\",\"content\":{\"parts\":"
            "[{\"text\":\"one\"}]}},{\"model\":\"models/sim-embed-large\",\"content\":"
            "{\"parts\":[{\"text\":\"two\"}]}}]}", &r);
    assert_int_equal(r.status, 200);
    j = cJSON_Parse(r.body.ptr);
    cJSON *embs = cJSON_GetObjectItem(j, "embeddings");
    assert_int_equal(cJSON_GetArraySize(embs), 2);
    assert_vector(cJSON_GetObjectItem(cJSON_GetArrayItem(embs, 1), "values"), "two", 1024, 1024);
    cJSON_Delete(j);
    response_release(&r);

    struct sl_buf big = SL_BUF_INIT(1 << 20);
    sl_buf_puts(&big, "{\"requests\":[");
    for (int i = 0; i < 101; i++)
        sl_buf_printf(&big, "%s{\"content\":{\"parts\":[{\"text\":\"t%d\"}]}}", i ? "," : "", i);
    sl_buf_puts(&big, "]}");
    request(GEMINI_PATH("sim-embed", "batchEmbedContents"), big.ptr, &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.ptr, "INVALID_ARGUMENT"));
    sl_buf_release(&big);
    response_release(&r);
}

/* --format: the routes of formats not served answer 404. */
static void test_formats(void **state)
{
    struct sl_sim *all = sim;
    struct sl_sim_opts o = {.host = "127.0.0.1", .quiet = 1, .formats = SL_SIM_FORMAT_ANTHROPIC};
    assert_int_equal(sl_sim_start(&o, &sim), 0);
    struct response r;
    request("/v1/chat/completions", chat_body("hi", NULL), &r);
    assert_int_equal(r.status, 404);
    response_release(&r);
    request(GEMINI_PATH("sim-small", "generateContent"), "{}", &r);
    assert_int_equal(r.status, 404);
    assert_non_null(strstr(r.body.ptr, "NOT_FOUND"));
    response_release(&r);
    request("/v1/messages", MESSAGES("", "{\"role\":\"user\",\"content\":\"hi\"}"), &r);
    assert_int_equal(r.status, 200);
    response_release(&r);
    sl_sim_stop(sim);
    sim = all;
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
        cmocka_unit_test(test_anthropic_message),
        cmocka_unit_test(test_anthropic_stream),
        cmocka_unit_test(test_anthropic_tool_stream),
        cmocka_unit_test(test_anthropic_errors),
        cmocka_unit_test(test_gemini_generate),
        cmocka_unit_test(test_gemini_stream),
        cmocka_unit_test(test_gemini_function_call),
        cmocka_unit_test(test_gemini_rate_limit),
        cmocka_unit_test(test_embed_vectors),
        cmocka_unit_test(test_embed_openai),
        cmocka_unit_test(test_embed_dashscope),
        cmocka_unit_test(test_embed_gemini),
        cmocka_unit_test(test_formats),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
