/* Gemini upstream format: request encoding, reply and error decoding, alt=sse streams
 * fed at every odd split (CRLF framing, UTF-8 characters cut across reads). */
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
#include "formats/gemini.h"

static char base_url[] = "https://generativelanguage.googleapis.com/v1beta";
static char api_key[] = "gk-test";
static char model_name[] = "gemini-2.5-flash";

/* Encodes req (JSON text) and returns the upstream body parsed; url/headers in *out. */
static cJSON *encode(const char *req, int stream, struct sl_arena *a, struct sl_encoded *out,
                     struct sl_error *e, int want_rc)
{
    struct sl_provider_cfg p = {.name = "g", .kind = SL_WIRE_GEMINI, .base_url = base_url,
                                .api_key = api_key, .enabled = 1};
    struct sl_model_cfg m = {.name = "g", .model = model_name, .p = &p};
    cJSON *r = cJSON_Parse(req);
    assert_non_null(r);
    memset(out, 0, sizeof(*out));
    int rc = sl_gemini_upstream.encode(r, &m, stream, a, out, e);
    cJSON_Delete(r);
    assert_int_equal(rc, want_rc);
    return rc ? NULL : cJSON_ParseWithLength(out->body, out->len);
}

/* The value at a path like "contents.1.parts.0.text" (numbers index arrays). */
static const cJSON *at(const cJSON *v, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *tok = strtok(buf, "."); tok && v; tok = strtok(NULL, "."))
        v = (*tok >= '0' && *tok <= '9') ? cJSON_GetArrayItem(v, atoi(tok))
                                         : cJSON_GetObjectItemCaseSensitive(v, tok);
    return v;
}

static const char *str_at(const cJSON *v, const char *path)
{
    const cJSON *s = at(v, path);
    return cJSON_IsString(s) ? s->valuestring : "(missing)";
}

static double num_at(const cJSON *v, const char *path)
{
    const cJSON *n = at(v, path);
    return cJSON_IsNumber(n) ? n->valuedouble : -999;
}

static void test_encode_system_multiturn(void **state)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_encoded out;
    struct sl_error e;
    cJSON *b = encode("{\"model\":\"x\",\"max_tokens\":512,\"temperature\":0.3,\"top_p\":0.9,"
                      "\"stop\":\"<END>\",\"n\":1,\"seed\":7,\"stream_options\":{\"include_usage\":true},"
                      "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
                      "{\"role\":\"developer\",\"content\":[{\"type\":\"text\",\"text\":\"No lists.\"}]},"
                      "{\"role\":\"user\",\"content\":\"Name one museum in Kyoto.\"},"
                      "{\"role\":\"assistant\",\"content\":\"The Kyoto National Museum.\"},"
                      "{\"role\":\"user\",\"content\":\"And one garden?\"}]}",
                      0, a, &out, &e, 0);
    assert_string_equal(out.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                                 "gemini-2.5-flash:generateContent");
    assert_int_equal(out.nheaders, 2);
    assert_string_equal(out.headers[0], "content-type: application/json");
    assert_string_equal(out.headers[1], "x-goog-api-key: gk-test");
    assert_string_equal(str_at(b, "systemInstruction.parts.0.text"), "Be brief.");
    assert_string_equal(str_at(b, "systemInstruction.parts.1.text"), "No lists.");
    assert_int_equal(cJSON_GetArraySize(at(b, "contents")), 3);
    assert_string_equal(str_at(b, "contents.0.role"), "user");
    assert_string_equal(str_at(b, "contents.1.role"), "model");
    assert_string_equal(str_at(b, "contents.1.parts.0.text"), "The Kyoto National Museum.");
    assert_string_equal(str_at(b, "contents.2.parts.0.text"), "And one garden?");
    assert_true(num_at(b, "generationConfig.maxOutputTokens") == 512);
    assert_true(num_at(b, "generationConfig.temperature") == 0.3);
    assert_true(num_at(b, "generationConfig.topP") == 0.9);
    assert_true(num_at(b, "generationConfig.candidateCount") == 1);
    assert_true(num_at(b, "generationConfig.seed") == 7);
    assert_string_equal(str_at(b, "generationConfig.stopSequences.0"), "<END>");
    /* nothing of OpenAI's vocabulary leaks: Google rejects unknown fields */
    assert_null(at(b, "messages"));
    assert_null(at(b, "max_tokens"));
    assert_null(at(b, "stream_options"));
    assert_null(at(b, "model"));
    cJSON_Delete(b);

    b = encode("{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 1, a, &out,
               &e, 0);
    assert_string_equal(out.url, "https://generativelanguage.googleapis.com/v1beta/models/"
                                 "gemini-2.5-flash:streamGenerateContent?alt=sse");
    assert_null(at(b, "generationConfig"));
    assert_null(at(b, "systemInstruction"));
    cJSON_Delete(b);
    sl_arena_free(a);
}

static const char *tool_history =
    "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather in Paris and Rome?\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
    "{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\","
    "\"arguments\":\"{\\\"city\\\":\\\"Paris\\\"}\"},"
    "\"extra_content\":{\"google\":{\"thought_signature\":\"SIG-A\"}}},"
    "{\"id\":\"k9x2\",\"type\":\"function\",\"function\":{\"name\":\"get_time\","
    "\"arguments\":\"{\\\"city\\\":\\\"Rome\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_0\",\"content\":\"{\\\"temp_c\\\":18}\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"k9x2\",\"content\":\"14:05\"},"
    "{\"role\":\"user\",\"content\":\"Thanks\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"strict\":true,\"parameters\":{\"$schema\":\"http://json-schema.org/draft-07/schema#\","
    "\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},"
    "\"additionalProperties\":false}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}}],"
    "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}";

static void test_encode_tool_round_trip(void **state)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_encoded out;
    struct sl_error e;
    cJSON *b = encode(tool_history, 0, a, &out, &e, 0);
    assert_int_equal(cJSON_GetArraySize(at(b, "contents")), 4);
    /* the assistant turn: two functionCall parts with parsed args, the signature restored */
    assert_string_equal(str_at(b, "contents.1.role"), "model");
    assert_int_equal(cJSON_GetArraySize(at(b, "contents.1.parts")), 2);
    assert_string_equal(str_at(b, "contents.1.parts.0.functionCall.name"), "get_weather");
    assert_string_equal(str_at(b, "contents.1.parts.0.functionCall.args.city"), "Paris");
    assert_string_equal(str_at(b, "contents.1.parts.0.thoughtSignature"), "SIG-A");
    assert_null(at(b, "contents.1.parts.0.functionCall.id")); /* sluice's own id stays here */
    assert_string_equal(str_at(b, "contents.1.parts.1.functionCall.id"), "k9x2");
    assert_null(at(b, "contents.1.parts.1.thoughtSignature"));
    /* both results in one user turn, names recovered from the tool call ids */
    assert_string_equal(str_at(b, "contents.2.role"), "user");
    assert_int_equal(cJSON_GetArraySize(at(b, "contents.2.parts")), 2);
    assert_string_equal(str_at(b, "contents.2.parts.0.functionResponse.name"), "get_weather");
    assert_true(num_at(b, "contents.2.parts.0.functionResponse.response.temp_c") == 18);
    assert_string_equal(str_at(b, "contents.2.parts.1.functionResponse.name"), "get_time");
    assert_string_equal(str_at(b, "contents.2.parts.1.functionResponse.response.result"), "14:05");
    assert_string_equal(str_at(b, "contents.2.parts.1.functionResponse.id"), "k9x2");
    assert_string_equal(str_at(b, "contents.3.parts.0.text"), "Thanks");
    /* tools: JSON Schema kept whole in parametersJsonSchema, `strict` dropped */
    const cJSON *d0 = at(b, "tools.0.functionDeclarations.0");
    assert_string_equal(str_at(d0, "name"), "get_weather");
    assert_string_equal(str_at(d0, "description"), "Weather");
    assert_false(cJSON_IsTrue(at(d0, "parametersJsonSchema.additionalProperties")));
    assert_non_null(at(d0, "parametersJsonSchema.additionalProperties"));
    assert_null(at(d0, "strict"));
    assert_null(at(d0, "parameters"));
    assert_string_equal(str_at(b, "tools.0.functionDeclarations.1.name"), "get_time");
    assert_string_equal(str_at(b, "toolConfig.functionCallingConfig.mode"), "ANY");
    assert_string_equal(str_at(b, "toolConfig.functionCallingConfig.allowedFunctionNames.0"),
                        "get_weather");
    cJSON_Delete(b);
    sl_arena_free(a);
}

static void test_encode_signature_fallback_and_modes(void **state)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_encoded out;
    struct sl_error e;
    cJSON *b = encode("{\"tool_choice\":\"required\",\"messages\":[{\"role\":\"user\",\"content\":\"go\"},"
                      "{\"role\":\"assistant\",\"content\":\"Calling.\",\"tool_calls\":[{\"id\":\"call_abc\","
                      "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},"
                      "{\"role\":\"tool\",\"tool_call_id\":\"call_abc\",\"content\":[{\"type\":\"text\","
                      "\"text\":\"[1,2]\"}]}]}",
                      0, a, &out, &e, 0);
    assert_string_equal(str_at(b, "contents.1.parts.0.text"), "Calling.");
    assert_string_equal(str_at(b, "contents.1.parts.1.thoughtSignature"),
                        "skip_thought_signature_validator");
    assert_true(cJSON_IsObject(at(b, "contents.1.parts.1.functionCall.args")));
    assert_string_equal(str_at(b, "contents.2.parts.0.functionResponse.response.result"), "[1,2]");
    assert_string_equal(str_at(b, "toolConfig.functionCallingConfig.mode"), "ANY");
    assert_null(at(b, "toolConfig.functionCallingConfig.allowedFunctionNames"));
    cJSON_Delete(b);

    /* a result for a call nobody made cannot be named: 400, not a guess */
    b = encode("{\"messages\":[{\"role\":\"tool\",\"tool_call_id\":\"nope\",\"content\":\"x\"}]}", 0,
               a, &out, &e, -1);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    assert_non_null(strstr(e.message, "nope"));
    encode("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"sometimes\"}", 0,
           a, &out, &e, -1);
    assert_int_equal(e.status, 400);
    sl_arena_free(a);
}

static void test_encode_json_schema_and_thinking(void **state)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_encoded out;
    struct sl_error e;
    cJSON *b = encode("{\"messages\":[{\"role\":\"user\",\"content\":\"A city.\"}],"
                      "\"max_completion_tokens\":100,\"max_tokens\":5,\"reasoning_effort\":\"low\","
                      "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"c\","
                      "\"strict\":true,\"schema\":{\"type\":\"object\",\"properties\":{\"name\":"
                      "{\"type\":\"string\"}},\"required\":[\"name\"],\"additionalProperties\":false}}}}",
                      0, a, &out, &e, 0);
    assert_true(num_at(b, "generationConfig.maxOutputTokens") == 100);
    assert_string_equal(str_at(b, "generationConfig.responseMimeType"), "application/json");
    assert_string_equal(str_at(b, "generationConfig.responseJsonSchema.properties.name.type"), "string");
    assert_string_equal(str_at(b, "generationConfig.responseJsonSchema.required.0"), "name");
    assert_null(at(b, "generationConfig.responseSchema"));
    assert_true(num_at(b, "generationConfig.thinkingConfig.thinkingBudget") == 1024);
    assert_true(cJSON_IsTrue(at(b, "generationConfig.thinkingConfig.includeThoughts")));
    cJSON_Delete(b);
    b = encode("{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"reasoning_effort\":\"none\","
               "\"response_format\":{\"type\":\"json_object\"}}",
               0, a, &out, &e, 0);
    assert_true(num_at(b, "generationConfig.thinkingConfig.thinkingBudget") == 0);
    assert_null(at(b, "generationConfig.thinkingConfig.includeThoughts"));
    assert_string_equal(str_at(b, "generationConfig.responseMimeType"), "application/json");
    assert_null(at(b, "generationConfig.responseJsonSchema"));
    cJSON_Delete(b);
    sl_arena_free(a);
}

static void test_encode_images(void **state)
{
    struct sl_arena *a = sl_arena_new();
    struct sl_encoded out;
    struct sl_error e;
    cJSON *b = encode("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"What?\"},"
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
                      "{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x.test/a/cat.WEBP?v=2\"}}]}]}",
                      0, a, &out, &e, 0);
    assert_string_equal(str_at(b, "contents.0.parts.0.text"), "What?");
    assert_string_equal(str_at(b, "contents.0.parts.1.inlineData.mimeType"), "image/png");
    assert_string_equal(str_at(b, "contents.0.parts.1.inlineData.data"), "iVBORw0KGgo=");
    assert_string_equal(str_at(b, "contents.0.parts.2.fileData.mimeType"), "image/webp");
    assert_string_equal(str_at(b, "contents.0.parts.2.fileData.fileUri"), "https://x.test/a/cat.WEBP?v=2");
    cJSON_Delete(b);
    encode("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_audio\"}]}]}", 0, a, &out,
           &e, -1);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.message, "input_audio"));
    sl_arena_free(a);
}

static void test_decode_reply_calls_thoughts_usage(void **state)
{
    const char *body =
        "{\n  \"candidates\": [{\"content\": {\"role\": \"model\", \"parts\": ["
        "{\"text\": \"Let me check the weather.\", \"thought\": true},"
        "{\"text\": \"Checking \"}, {\"text\": \"now.\"},"
        "{\"functionCall\": {\"name\": \"get_weather\", \"args\": {\"city\": \"Paris\"}},"
        " \"thoughtSignature\": \"SIG-1\"},"
        "{\"functionCall\": {\"name\": \"get_time\", \"args\": {}, \"id\": \"g3id\"}}]},"
        "\"finishReason\": \"STOP\", \"index\": 0}],"
        "\"usageMetadata\": {\"promptTokenCount\": 1290, \"candidatesTokenCount\": 35,"
        "\"totalTokenCount\": 1410, \"cachedContentTokenCount\": 1024, \"thoughtsTokenCount\": 85},"
        "\"modelVersion\": \"gemini-2.5-flash\", \"responseId\": \"abc\"}\n";
    struct sl_usage u = {0};
    struct sl_error e;
    cJSON *c = sl_gemini_upstream.decode_reply(body, strlen(body), "gemini-2.5-flash", &u, &e);
    assert_non_null(c);
    assert_string_equal(str_at(c, "object"), "chat.completion");
    assert_string_equal(str_at(c, "id"), "chatcmpl-abc");
    assert_string_equal(str_at(c, "choices.0.message.role"), "assistant");
    assert_string_equal(str_at(c, "choices.0.message.content"), "Checking now.");
    assert_string_equal(str_at(c, "choices.0.message.reasoning_content"), "Let me check the weather.");
    assert_string_equal(str_at(c, "choices.0.finish_reason"), "tool_calls");
    assert_string_equal(str_at(c, "choices.0.message.tool_calls.0.id"), "call_0");
    assert_string_equal(str_at(c, "choices.0.message.tool_calls.0.type"), "function");
    assert_string_equal(str_at(c, "choices.0.message.tool_calls.0.function.name"), "get_weather");
    assert_string_equal(str_at(c, "choices.0.message.tool_calls.0.function.arguments"),
                        "{\"city\":\"Paris\"}");
    assert_string_equal(str_at(c, "choices.0.message.tool_calls.0.extra_content.google.thought_signature"),
                        "SIG-1");
    assert_string_equal(str_at(c, "choices.0.message.tool_calls.1.id"), "g3id");
    assert_string_equal(str_at(c, "choices.0.message.tool_calls.1.function.arguments"), "{}");
    assert_null(at(c, "choices.0.message.tool_calls.0.index"));
    assert_true(u.present);
    assert_int_equal(u.prompt, 1290);
    assert_int_equal(u.cached, 1024);
    assert_int_equal(u.completion, 120);
    assert_int_equal(u.reasoning, 85);
    assert_true(num_at(c, "usage.total_tokens") == 1410);
    assert_true(num_at(c, "usage.prompt_tokens_details.cached_tokens") == 1024);
    cJSON_Delete(c);
}

static void test_decode_reply_edges(void **state)
{
    struct sl_usage u = {0};
    struct sl_error e;
    /* thinking took the whole budget: no content at all */
    const char *empty = "{\"candidates\":[{\"finishReason\":\"MAX_TOKENS\",\"index\":0}],"
                        "\"usageMetadata\":{\"promptTokenCount\":9,\"totalTokenCount\":59,"
                        "\"thoughtsTokenCount\":50}}";
    cJSON *c = sl_gemini_upstream.decode_reply(empty, strlen(empty), "m", &u, &e);
    assert_non_null(c);
    assert_string_equal(str_at(c, "choices.0.message.content"), "");
    assert_string_equal(str_at(c, "choices.0.finish_reason"), "length");
    assert_int_equal(u.completion, 50);
    cJSON_Delete(c);
    const char *blocked = "{\"promptFeedback\":{\"blockReason\":\"SAFETY\"}}";
    c = sl_gemini_upstream.decode_reply(blocked, strlen(blocked), "m", &u, &e);
    assert_string_equal(str_at(c, "choices.0.finish_reason"), "content_filter");
    cJSON_Delete(c);
    const char *safety = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Par\"}]},"
                         "\"finishReason\":\"RECITATION\"}]}";
    c = sl_gemini_upstream.decode_reply(safety, strlen(safety), "m", &u, &e);
    assert_string_equal(str_at(c, "choices.0.finish_reason"), "content_filter");
    cJSON_Delete(c);
    assert_null(sl_gemini_upstream.decode_reply("<html>", 6, "m", &u, &e));
    assert_int_equal(e.status, 502);
}

static void test_decode_error_retry_delay(void **state)
{
    const char *body =
        "{\n  \"error\": {\n    \"code\": 429,\n    \"message\": \"You exceeded your current quota.\",\n"
        "    \"status\": \"RESOURCE_EXHAUSTED\",\n    \"details\": [\n"
        "      {\"@type\": \"type.googleapis.com/google.rpc.QuotaFailure\", \"violations\": []},\n"
        "      {\"@type\": \"type.googleapis.com/google.rpc.RetryInfo\", \"retryDelay\": \"29.4s\"}\n"
        "    ]\n  }\n}\n";
    struct sl_error e;
    sl_gemini_upstream.decode_error(429, body, strlen(body), &e);
    assert_int_equal(e.status, 429);
    assert_string_equal(e.type, "rate_limit_error");
    assert_string_equal(e.message, "You exceeded your current quota.");
    assert_string_equal(e.code, "RESOURCE_EXHAUSTED");
    assert_string_equal(e.retry_after, "30");

    const char *key = "[{\"error\":{\"code\":400,\"message\":\"API key not valid.\",\"status\":"
                      "\"INVALID_ARGUMENT\",\"details\":[{\"@type\":\"type.googleapis.com/"
                      "google.rpc.ErrorInfo\",\"reason\":\"API_KEY_INVALID\"}]}}]";
    sl_gemini_upstream.decode_error(400, key, strlen(key), &e);
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "authentication_error");
    assert_string_equal(e.retry_after, "");
    const char *nf = "{\"error\":{\"code\":404,\"message\":\"models/x is not found\",\"status\":\"NOT_FOUND\"}}";
    sl_gemini_upstream.decode_error(404, nf, strlen(nf), &e);
    assert_string_equal(e.type, "not_found_error");
    sl_gemini_upstream.decode_error(503, "upstream connect error", 22, &e);
    assert_int_equal(e.status, 503);
    assert_string_equal(e.type, "api_error");
    assert_non_null(strstr(e.message, "upstream connect error"));
}

/* ---- streams ------------------------------------------------------------------------- */

struct collected {
    char content[1024], reasoning[256], calls[512], finish[64];
    int chunks, roles, stop;
    struct sl_usage u;
    struct sl_error e;
    struct sl_gemini_stream st;
};

static int on_chunk(void *arg, const cJSON *chunk)
{
    struct collected *c = arg;
    const cJSON *ch;
    c->chunks++;
    assert_string_equal(str_at(chunk, "object"), "chat.completion.chunk");
    assert_string_equal(str_at(chunk, "id"), "req-1");
    cJSON_ArrayForEach(ch, at(chunk, "choices"))
    {
        const cJSON *d = at(ch, "delta"), *tc;
        if (at(d, "role"))
            c->roles++;
        if (at(d, "content"))
            strncat(c->content, str_at(d, "content"), sizeof(c->content) - strlen(c->content) - 1);
        if (at(d, "reasoning_content"))
            strncat(c->reasoning, str_at(d, "reasoning_content"),
                    sizeof(c->reasoning) - strlen(c->reasoning) - 1);
        cJSON_ArrayForEach(tc, at(d, "tool_calls"))
        {
            size_t n = strlen(c->calls);
            snprintf(c->calls + n, sizeof(c->calls) - n, "[%d %s %s %s]", (int)num_at(tc, "index"),
                     str_at(tc, "id"), str_at(tc, "function.name"), str_at(tc, "function.arguments"));
        }
        if (cJSON_IsString(at(ch, "finish_reason")))
            strncat(c->finish, str_at(ch, "finish_reason"), sizeof(c->finish) - strlen(c->finish) - 1);
    }
    return 0;
}

static int on_event(void *arg, const struct sl_sse_event *ev)
{
    struct collected *c = arg;
    c->stop = sl_gemini_upstream.stream_event(&c->st, ev, on_chunk, c, &c->u, &c->e);
    return c->stop;
}

static int feed(const char *in, size_t step, struct collected *c)
{
    struct sl_sse_reader r;
    memset(c, 0, sizeof(*c));
    sl_gemini_upstream.stream_init(&c->st, "req-1", "gemini-2.5-flash");
    sl_sse_reader_init(&r, 1 << 20);
    size_t n = strlen(in);
    for (size_t i = 0; i < n; i += step)
        assert_int_equal(sl_sse_feed(&r, in + i, step < n - i ? step : n - i, on_event, c), 0);
    sl_sse_reader_release(&r);
    int done = sl_gemini_upstream.stream_end(&c->st, on_chunk, c, &c->u);
    sl_gemini_upstream.stream_release(&c->st);
    return done;
}

/* "杭州" (e6 9d ad e5 b7 9e) lands at many split points across the odd-sized pieces. */
static const char *text_stream =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Thinking about it\",\"thought\": true}],"
    "\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 17,"
    "\"totalTokenCount\": 17}}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Rain on \xe6\x9d\xad\"}],"
    "\"role\": \"model\"},\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 17,"
    "\"candidatesTokenCount\": 7,\"totalTokenCount\": 135,\"thoughtsTokenCount\": 111}}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\xe5\xb7\x9e roofs.\"}],"
    "\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": "
    "{\"promptTokenCount\": 17,\"candidatesTokenCount\": 21,\"totalTokenCount\": 149,"
    "\"thoughtsTokenCount\": 111},\"modelVersion\": \"gemini-2.5-flash\"}\r\n\r\n";

static void test_stream_text_every_split(void **state)
{
    static const size_t steps[] = {1, 2, 3, 5, 7, 11, 13, 64, 4096};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct collected c;
        assert_int_equal(feed(text_stream, steps[i], &c), 1);
        assert_string_equal(c.content, "Rain on \xe6\x9d\xad\xe5\xb7\x9e roofs.");
        assert_string_equal(c.reasoning, "Thinking about it");
        assert_string_equal(c.finish, "stop");
        assert_int_equal(c.roles, 1);
        assert_int_equal(c.chunks, 4); /* three content chunks + the finish chunk */
        assert_true(c.u.present);
        assert_int_equal(c.u.prompt, 17);
        assert_int_equal(c.u.completion, 132); /* last usage wins: 21 + 111, never a sum */
        assert_int_equal(c.u.reasoning, 111);
        assert_string_equal(c.calls, "");
    }
}

/* Gemini 3 shape: a call with an id and signature, then an empty signed text part
 * with the finishReason in its own chunk. */
static const char *call_stream =
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"get_weather\","
    "\"args\": {\"city\": \"\xe6\x9d\xad\xe5\xb7\x9e\"}},\"thoughtSignature\": \"S1\"},"
    "{\"functionCall\": {\"name\": \"get_time\",\"args\": {},\"id\": \"ab12\"}}],\"role\": \"model\"},"
    "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 40,\"candidatesTokenCount\": 12}}\r\n\r\n"
    "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\",\"thoughtSignature\": \"S2\"}],"
    "\"role\": \"model\"},\"finishReason\": \"STOP\",\"index\": 0}],\"usageMetadata\": "
    "{\"promptTokenCount\": 40,\"candidatesTokenCount\": 12,\"totalTokenCount\": 52}}\r\n\r\n";

static void test_stream_function_calls(void **state)
{
    static const size_t steps[] = {1, 3, 7, 100000};
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct collected c;
        assert_int_equal(feed(call_stream, steps[i], &c), 1);
        assert_string_equal(c.calls, "[0 call_0 get_weather {\"city\":\"\xe6\x9d\xad\xe5\xb7\x9e\"}]"
                                     "[1 ab12 get_time {}]");
        assert_string_equal(c.finish, "tool_calls");
        assert_string_equal(c.content, "");
        assert_int_equal(c.roles, 1);
        assert_int_equal(c.chunks, 2); /* the empty signed part makes no chunk of its own */
        assert_int_equal(c.u.prompt, 40);
        assert_int_equal(c.u.completion, 12);
    }
}

static void test_stream_cut_and_errors(void **state)
{
    struct collected c;
    /* no finishReason before the connection ended: cut short */
    assert_int_equal(feed("data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hi\"}]}}]}\r\n\r\n",
                          5, &c),
                     0);
    assert_string_equal(c.content, "Hi");
    assert_string_equal(c.finish, "");

    struct sl_sse_event ev = {.type = "", .data = "{not json", .data_len = 9};
    memset(&c, 0, sizeof(c));
    sl_gemini_upstream.stream_init(&c.st, "req-1", "m");
    assert_int_equal(sl_gemini_upstream.stream_event(&c.st, &ev, on_chunk, &c, &c.u, &c.e), -1);
    assert_int_equal(c.e.status, 502);
    const char *err = "{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\","
                      "\"status\":\"UNAVAILABLE\"}}";
    ev.data = err;
    ev.data_len = strlen(err);
    assert_int_equal(sl_gemini_upstream.stream_event(&c.st, &ev, on_chunk, &c, &c.u, &c.e), -1);
    assert_int_equal(c.e.status, 503);
    assert_string_equal(c.e.message, "The model is overloaded.");
    struct sl_sse_event comment = {.type = "", .data = "keep-alive", .data_len = 10, .comment = 1};
    assert_int_equal(sl_gemini_upstream.stream_event(&c.st, &comment, on_chunk, &c, &c.u, &c.e), 0);
    assert_int_equal(c.chunks, 0);
}

static void test_sniff_usage(void **state)
{
    struct sl_usage u = {0};
    const char *arr = "[{\"usageMetadata\":{\"promptTokenCount\":5}},"
                      "{\"usageMetadata\":{\"promptTokenCount\":6,\"candidatesTokenCount\":2}}]";
    sl_gemini_upstream.sniff_usage(NULL, arr, strlen(arr), &u);
    assert_int_equal(u.prompt, 6);
    assert_int_equal(u.completion, 2);
    const char *one = "{\"usageMetadata\":{\"promptTokenCount\":8,\"cachedContentTokenCount\":4}}";
    struct sl_sse_event ev = {.type = "", .data = one, .data_len = strlen(one)};
    sl_gemini_upstream.sniff_usage(&ev, NULL, 0, &u);
    assert_int_equal(u.prompt, 8);
    assert_int_equal(u.cached, 4);
}

/* ---- allocation failures (curl's torture idea): fail the Nth cJSON allocation ------- */

static long alloc_left = -1; /* -1: never fail */

static void *failing_malloc(size_t n)
{
    if (alloc_left == 0)
        return NULL;
    if (alloc_left > 0)
        alloc_left--;
    return malloc(n);
}

static int ignore_chunk(void *arg, const cJSON *chunk)
{
    return 0;
}

/* Every path must end in success or a clean error; LeakSanitizer checks the rest. */
static void test_allocation_failures(void **state)
{
    const char *reply = "{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\",\"thought\":true},"
                        "{\"text\":\"b\"},{\"functionCall\":{\"name\":\"f\",\"args\":{\"x\":[1]}},"
                        "\"thoughtSignature\":\"S\"}]},\"finishReason\":\"STOP\"}],"
                        "\"usageMetadata\":{\"promptTokenCount\":3}}";
    cJSON_Hooks hooks = {failing_malloc, free};
    cJSON *req = cJSON_Parse(tool_history);
    struct sl_provider_cfg p = {.base_url = base_url, .api_key = api_key};
    struct sl_model_cfg m = {.model = model_name, .p = &p};
    cJSON_InitHooks(&hooks);
    int ok = 0;
    for (long n = 0; n < 1000; n++) {
        struct sl_arena *a = sl_arena_new();
        struct sl_encoded out;
        struct sl_error e;
        struct sl_usage u;
        struct sl_gemini_stream st;
        struct sl_sse_event ev = {.type = "", .data = reply, .data_len = strlen(reply)};
        alloc_left = n;
        if (sl_gemini_upstream.encode(req, &m, 0, a, &out, &e) == 0)
            ok++;
        else /* 400 when the failure hit a parse of the client's arguments */
            assert_true(e.status == 500 || e.status == 400);
        alloc_left = n;
        cJSON *c = sl_gemini_upstream.decode_reply(reply, strlen(reply), "m", &u, &e);
        cJSON_Delete(c);
        alloc_left = n;
        sl_gemini_upstream.stream_init(&st, "id", "m");
        sl_gemini_upstream.stream_event(&st, &ev, ignore_chunk, NULL, &u, &e);
        alloc_left = -1;
        sl_arena_free(a);
    }
    cJSON_InitHooks(NULL);
    cJSON_Delete(req);
    assert_true(ok > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_system_multiturn),
        cmocka_unit_test(test_encode_tool_round_trip),
        cmocka_unit_test(test_encode_signature_fallback_and_modes),
        cmocka_unit_test(test_encode_json_schema_and_thinking),
        cmocka_unit_test(test_encode_images),
        cmocka_unit_test(test_decode_reply_calls_thoughts_usage),
        cmocka_unit_test(test_decode_reply_edges),
        cmocka_unit_test(test_decode_error_retry_delay),
        cmocka_unit_test(test_stream_text_every_split),
        cmocka_unit_test(test_stream_function_calls),
        cmocka_unit_test(test_stream_cut_and_errors),
        cmocka_unit_test(test_sniff_usage),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
