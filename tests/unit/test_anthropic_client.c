/* Anthropic-format clients: Messages requests -> canonical, canonical replies and
 * chunks -> Messages and Anthropic's event grammar, error envelopes, count_tokens. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "formats/anthropic_client.h"
#include "formats/format.h"

static const struct sl_client_format *fmt(void)
{
    const struct sl_client_format *f = sl_client_format("anthropic");
    assert_non_null(f);
    return f;
}

/* The value at a dotted path ("messages.1.tool_calls.0.id"); digits index arrays. */
static const cJSON *at(const cJSON *v, const char *path)
{
    char buf[256], *save = NULL;
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *k = strtok_r(buf, ".", &save); k && v; k = strtok_r(NULL, ".", &save))
        v = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, atoi(k)) : cJSON_GetObjectItemCaseSensitive(v, k);
    return v;
}

static const char *str_at(const cJSON *v, const char *path)
{
    const cJSON *x = at(v, path);
    return cJSON_IsString(x) ? x->valuestring : "(not a string)";
}

static double num_at(const cJSON *v, const char *path)
{
    const cJSON *x = at(v, path);
    return cJSON_IsNumber(x) ? x->valuedouble : -12345;
}

static cJSON *decode(const char *body, struct sl_error *e)
{
    memset(e, 0, sizeof(*e));
    return fmt()->decode_request(body, strlen(body), e);
}

static void test_decode_system_and_scalars(void **state)
{
    struct sl_error e;
    cJSON *r = decode("{\"model\":\"deepseek-chat\",\"max_tokens\":1024,\"stream\":true,"
                      "\"system\":[{\"type\":\"text\",\"text\":\"You are terse.\",\"cache_control\":{\"type\":\"ephemeral\"}},"
                      "{\"type\":\"text\",\"text\":\"Cwd: /tmp\"}],"
                      "\"temperature\":0.2,\"top_p\":0.9,\"top_k\":5,\"stop_sequences\":[\"END\"],"
                      "\"metadata\":{\"user_id\":\"u-1\"},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}",
                      &e);
    assert_non_null(r);
    assert_string_equal(str_at(r, "model"), "deepseek-chat");
    assert_true(cJSON_IsTrue(at(r, "stream")));
    assert_int_equal((int)num_at(r, "max_tokens"), 1024);
    assert_string_equal(str_at(r, "messages.0.role"), "system");
    assert_string_equal(str_at(r, "messages.0.content"), "You are terse.\nCwd: /tmp");
    assert_string_equal(str_at(r, "messages.1.role"), "user");
    assert_string_equal(str_at(r, "messages.1.content"), "Hi");
    assert_int_equal(cJSON_GetArraySize(at(r, "messages")), 2);
    assert_true(num_at(r, "temperature") > 0.19 && num_at(r, "temperature") < 0.21);
    assert_string_equal(str_at(r, "stop.0"), "END");
    assert_string_equal(str_at(r, "user"), "u-1");
    assert_null(at(r, "top_k"));
    assert_null(at(r, "system"));
    assert_null(at(r, "stop_sequences"));
    cJSON_Delete(r);
}

/* tool_result blocks become tool messages right after the assistant's tool_calls,
 * before the turn's other text. */
static void test_decode_tool_round_trip(void **state)
{
    struct sl_error e;
    cJSON *r = decode(
        "{\"model\":\"m\",\"max_tokens\":100,"
        "\"tools\":[{\"name\":\"Bash\",\"description\":\"Run\",\"input_schema\":{\"type\":\"object\","
        "\"properties\":{\"command\":{\"type\":\"string\"}}}}],"
        "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"List files\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Sure.\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Bash\",\"input\":{\"command\":\"ls\"}},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"Bash\",\"input\":{\"command\":\"pwd\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"and then?\"},"
        "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"a.txt\"},"
        "{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_2\",\"is_error\":true,"
        "\"content\":[{\"type\":\"text\",\"text\":\"denied\"}]}]}]}",
        &e);
    assert_non_null(r);
    const cJSON *m = at(r, "messages");
    assert_int_equal(cJSON_GetArraySize(m), 5);
    assert_string_equal(str_at(m, "1.role"), "assistant");
    assert_string_equal(str_at(m, "1.content"), "Sure.");
    assert_string_equal(str_at(m, "1.tool_calls.0.id"), "toolu_1");
    assert_string_equal(str_at(m, "1.tool_calls.0.type"), "function");
    assert_string_equal(str_at(m, "1.tool_calls.0.function.name"), "Bash");
    assert_string_equal(str_at(m, "1.tool_calls.0.function.arguments"), "{\"command\":\"ls\"}");
    assert_string_equal(str_at(m, "1.tool_calls.1.id"), "toolu_2");
    assert_string_equal(str_at(m, "2.role"), "tool");
    assert_string_equal(str_at(m, "2.tool_call_id"), "toolu_1");
    assert_string_equal(str_at(m, "2.content"), "a.txt");
    assert_string_equal(str_at(m, "3.role"), "tool");
    assert_string_equal(str_at(m, "3.tool_call_id"), "toolu_2");
    assert_string_equal(str_at(m, "3.content"), "Error: denied");
    assert_string_equal(str_at(m, "4.role"), "user");
    assert_string_equal(str_at(m, "4.content"), "and then?");
    assert_string_equal(str_at(r, "tools.0.type"), "function");
    assert_string_equal(str_at(r, "tools.0.function.name"), "Bash");
    assert_string_equal(str_at(r, "tools.0.function.description"), "Run");
    assert_string_equal(str_at(r, "tools.0.function.parameters.type"), "object");
    assert_string_equal(str_at(r, "tool_choice"), "required");
    assert_true(cJSON_IsFalse(at(r, "parallel_tool_calls")));
    cJSON_Delete(r);

    r = decode("{\"model\":\"m\",\"max_tokens\":1,\"tool_choice\":{\"type\":\"tool\",\"name\":\"Bash\"},"
               "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", &e);
    assert_non_null(r);
    assert_string_equal(str_at(r, "tool_choice.type"), "function");
    assert_string_equal(str_at(r, "tool_choice.function.name"), "Bash");
    assert_null(at(r, "parallel_tool_calls"));
    cJSON_Delete(r);
}

static void test_decode_images(void **state)
{
    struct sl_error e;
    cJSON *r = decode("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":["
                      "{\"type\":\"text\",\"text\":\"What is this?\"},"
                      "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0K\"}},"
                      "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x.test/a.jpg\"}}]}]}",
                      &e);
    assert_non_null(r);
    const cJSON *c = at(r, "messages.0.content");
    assert_true(cJSON_IsArray(c));
    assert_int_equal(cJSON_GetArraySize(c), 3);
    assert_string_equal(str_at(c, "0.type"), "text");
    assert_string_equal(str_at(c, "0.text"), "What is this?");
    assert_string_equal(str_at(c, "1.type"), "image_url");
    assert_string_equal(str_at(c, "1.image_url.url"), "data:image/png;base64,iVBORw0K");
    assert_string_equal(str_at(c, "2.image_url.url"), "https://x.test/a.jpg");
    cJSON_Delete(r);

    assert_null(decode("{\"model\":\"m\",\"max_tokens\":10,\"messages\":[{\"role\":\"user\",\"content\":["
                       "{\"type\":\"image\",\"source\":{\"type\":\"file\",\"file_id\":\"f\"}}]}]}", &e));
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.message, "messages.0.content.0.source.type"));
}

/* Thinking goes back as reasoning_content (DeepSeek wants it in thinking-mode tool
 * turns); redacted thinking is Claude's alone and is dropped. */
static void test_decode_thinking(void **state)
{
    struct sl_error e;
    cJSON *r = decode("{\"model\":\"m\",\"max_tokens\":20000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":10000},"
                      "\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
                      "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"Let me see.\",\"signature\":\"sig\"},"
                      "{\"type\":\"redacted_thinking\",\"data\":\"xxx\"},"
                      "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{}}]},"
                      "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"ok\"}]}]}",
                      &e);
    assert_non_null(r);
    assert_string_equal(str_at(r, "reasoning_effort"), "medium");
    assert_null(at(r, "thinking"));
    const cJSON *a = at(r, "messages.1");
    assert_string_equal(str_at(a, "reasoning_content"), "Let me see.");
    assert_true(cJSON_IsNull(at(a, "content")));
    assert_string_equal(str_at(a, "tool_calls.0.function.arguments"), "{}");
    assert_string_equal(str_at(r, "messages.2.role"), "tool");
    assert_int_equal(cJSON_GetArraySize(at(r, "messages")), 3);
    cJSON_Delete(r);

    r = decode("{\"model\":\"m\",\"max_tokens\":2,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":31999},"
               "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}", &e);
    assert_string_equal(str_at(r, "reasoning_effort"), "high");
    cJSON_Delete(r);
}

static void expect_400(const char *body, const char *message)
{
    struct sl_error e;
    cJSON *r = decode(body, &e);
    if (r) {
        cJSON_Delete(r);
        fail_msg("accepted: %s", body);
    }
    assert_int_equal(e.status, 400);
    assert_string_equal(e.type, "invalid_request_error");
    if (!strstr(e.message, message))
        fail_msg("message \"%s\" lacks \"%s\"", e.message, message);
}

static void test_decode_errors(void **state)
{
    expect_400("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "max_tokens: Field required");
    expect_400("{\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "model: Field required");
    expect_400("{\"model\":\"m\",\"max_tokens\":5}", "messages: Field required");
    expect_400("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[]}", "messages: at least one message");
    expect_400("{\"model\":\"m\",\"max_tokens\":5,\"messages\":{}}", "messages: Input should be a valid list");
    expect_400("{\"model\":\"m\",\"max_tokens\":\"5\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               "max_tokens: Input should be a valid integer");
    expect_400("{\"model\":\"m\",\"max_tokens\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               "greater than or equal to 1");
    expect_400("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"system\",\"content\":\"x\"}]}",
               "messages.0.role: Input should be 'user' or 'assistant'");
    expect_400("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[]}]}",
               "messages.0: all messages must have non-empty content");
    expect_400("{\"model\":\"m\",\"max_tokens\":5,\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               "stream: Input should be a valid boolean");
    expect_400("{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"document\"}]}]}",
               "messages.0.content.0: content blocks of type 'document'");
    expect_400("{\"model\":\"m\",\"max_tokens\":5,\"tools\":[{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],"
               "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", "tools.0: the server tool");
    expect_400("{\"model\":\"m\",\"max_tokens\":5,\"model\":\"n\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               "more than once");
    expect_400("{\"model\":", "not valid JSON");
    expect_400("[1]", "JSON object");
}

static void test_count_tokens(void **state)
{
    struct sl_error e;
    int64_t plain = 0, with_tools = 0;
    const char *a = "{\"model\":\"m\",\"system\":\"Be brief.\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}]}";
    const char *b = "{\"model\":\"m\",\"system\":\"Be brief.\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello there\"}],"
                    "\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{\"type\":\"object\",\"properties\":"
                    "{\"city\":{\"type\":\"string\",\"description\":\"The city\"}}}}]}";
    assert_int_equal(sl_anthropic_count_tokens(a, strlen(a), &plain, &e), 0);
    assert_int_equal(sl_anthropic_count_tokens(b, strlen(b), &with_tools, &e), 0);
    assert_true(plain > 8);
    assert_true(with_tools > plain + 5);
    assert_int_equal(sl_anthropic_count_tokens("{\"model\":\"m\"}", 13, &plain, &e), -1);
    assert_int_equal(e.status, 400);
    assert_non_null(strstr(e.message, "messages: Field required"));
}

static cJSON *encode(const char *completion, const struct sl_usage *u)
{
    struct sl_buf out = SL_BUF_INIT(1 << 20);
    cJSON *c = cJSON_Parse(completion);
    assert_non_null(c);
    assert_int_equal(fmt()->encode_reply(c, u, &out), 0);
    cJSON *r = cJSON_Parse(out.ptr);
    if (!r)
        fail_msg("not JSON: %s", out.ptr);
    cJSON_Delete(c);
    sl_buf_release(&out);
    return r;
}

static void test_encode_reply(void **state)
{
    struct sl_usage u = {.prompt = 2450, .completion = 31, .cached = 2304, .present = 1};
    cJSON *r = encode("{\"id\":\"chatcmpl-abc\",\"object\":\"chat.completion\",\"model\":\"deepseek-reasoner\","
                      "\"choices\":[{\"index\":0,\"finish_reason\":\"tool_calls\",\"message\":{\"role\":\"assistant\","
                      "\"reasoning_content\":\"Think.\",\"content\":\"Let me look.\",\"tool_calls\":["
                      "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"Bash\",\"arguments\":\"{\\\"command\\\":\\\"ls\\\"}\"}},"
                      "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"Bash\",\"arguments\":\"{\\\"command\\\":\"}}]}}]}",
                      &u);
    assert_string_equal(str_at(r, "id"), "msg_abc");
    assert_string_equal(str_at(r, "type"), "message");
    assert_string_equal(str_at(r, "role"), "assistant");
    assert_string_equal(str_at(r, "model"), "deepseek-reasoner");
    assert_int_equal(cJSON_GetArraySize(at(r, "content")), 4);
    assert_string_equal(str_at(r, "content.0.type"), "thinking");
    assert_string_equal(str_at(r, "content.0.thinking"), "Think.");
    assert_string_equal(str_at(r, "content.0.signature"), "");
    assert_string_equal(str_at(r, "content.1.type"), "text");
    assert_string_equal(str_at(r, "content.1.text"), "Let me look.");
    assert_string_equal(str_at(r, "content.2.type"), "tool_use");
    assert_string_equal(str_at(r, "content.2.id"), "call_1");
    assert_string_equal(str_at(r, "content.2.name"), "Bash");
    assert_string_equal(str_at(r, "content.2.input.command"), "ls");
    assert_string_equal(str_at(r, "content.3.input._raw"), "{\"command\":");
    assert_string_equal(str_at(r, "stop_reason"), "tool_use");
    assert_true(cJSON_IsNull(at(r, "stop_sequence")));
    assert_int_equal((int)num_at(r, "usage.input_tokens"), 146);
    assert_int_equal((int)num_at(r, "usage.cache_read_input_tokens"), 2304);
    assert_int_equal((int)num_at(r, "usage.cache_creation_input_tokens"), 0);
    assert_int_equal((int)num_at(r, "usage.output_tokens"), 31);
    cJSON_Delete(r);

    /* usage from the completion itself when the pipeline has none; length -> max_tokens */
    r = encode("{\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"finish_reason\":\"length\",\"message\":"
               "{\"role\":\"assistant\",\"content\":\"Hi\"}}],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}",
               NULL);
    assert_string_equal(str_at(r, "stop_reason"), "max_tokens");
    assert_int_equal(cJSON_GetArraySize(at(r, "content")), 1);
    assert_int_equal((int)num_at(r, "usage.input_tokens"), 7);
    assert_int_equal((int)num_at(r, "usage.output_tokens"), 2);
    cJSON_Delete(r);

    /* a named tool_choice makes OpenAI say "stop"; the Anthropic turn is still tool_use */
    r = encode("{\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"finish_reason\":\"stop\",\"message\":{\"role\":\"assistant\","
               "\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
               NULL);
    assert_string_equal(str_at(r, "stop_reason"), "tool_use");
    assert_string_equal(str_at(r, "content.0.type"), "tool_use");
    assert_non_null(at(r, "content.0.input"));
    assert_int_equal(cJSON_GetArraySize(at(r, "content.0.input")), 0);
    cJSON_Delete(r);
}

/* Summarises an encoded stream as "name[index:block type]" joined by spaces, and
 * checks each event is "event: NAME" + JSON data whose type equals NAME. */
static char *summarise(const struct sl_buf *raw)
{
    struct sl_buf sum = SL_BUF_INIT(1 << 20);
    char *copy = strdup(raw->ptr), *save = NULL;
    for (char *ev = strtok_r(copy, "\n", &save); ev; ev = strtok_r(NULL, "\n", &save)) {
        char *data = strtok_r(NULL, "\n", &save);
        assert_non_null(data);
        assert_memory_equal(ev, "event: ", 7);
        assert_memory_equal(data, "data: ", 6);
        cJSON *j = cJSON_Parse(data + 6);
        if (!j)
            fail_msg("not JSON: %s", data);
        assert_string_equal(str_at(j, "type"), ev + 7);
        sl_buf_printf(&sum, "%s%s", sum.len ? " " : "", ev + 7);
        const cJSON *idx = at(j, "index");
        if (cJSON_IsNumber(idx))
            sl_buf_printf(&sum, "[%d%s%s]", idx->valueint,
                          at(j, "content_block.type") ? ":" : "",
                          at(j, "content_block.type") ? str_at(j, "content_block.type") : "");
        cJSON_Delete(j);
    }
    free(copy);
    char *r = strdup(sum.ptr);
    sl_buf_release(&sum);
    return r;
}

#define CHUNK(delta, finish) \
    "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish "}]}"

static void test_stream_events(void **state)
{
    const char *chunks[] = {
        CHUNK("{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":\"\"}", "null"),
        CHUNK("{\"reasoning_content\":\"Hmm,\"}", "null"),
        CHUNK("{\"reasoning_content\":\" files.\"}", "null"),
        CHUNK("{\"content\":\"I'll \"}", "null"),
        CHUNK("{\"content\":\"look.\"}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"Bash\",\"arguments\":\"\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"command\\\"\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":\\\"ls\\\"}\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"Read\",\"arguments\":\"{\\\"path\\\":\"}}]}", "null"),
        CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"\\\"a\\\"}\"}}]}", "null"),
        CHUNK("{}", "\"tool_calls\""),
        "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":20}}",
    };
    struct sl_usage u = {.prompt = 100, .completion = 30, .cached = 64, .reasoning = 3, .present = 1};
    struct sl_buf raw = SL_BUF_INIT(1 << 20);
    const struct sl_client_format *f = fmt();
    void *st = calloc(1, f->stream_size);
    f->stream_init(st, "req42", "deepseek-reasoner", 0);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        cJSON *c = cJSON_Parse(chunks[i]);
        assert_int_equal(f->stream_chunk(st, c, &raw), 0);
        cJSON_Delete(c);
    }
    assert_int_equal(f->stream_end(st, &u, &raw), 0);
    free(st);
    char *sum = summarise(&raw);
    assert_string_equal(sum,
                        "message_start ping "
                        "content_block_start[0:thinking] content_block_delta[0] content_block_delta[0] content_block_stop[0] "
                        "content_block_start[1:text] content_block_delta[1] content_block_delta[1] content_block_stop[1] "
                        "content_block_start[2:tool_use] content_block_delta[2] content_block_delta[2] content_block_stop[2] "
                        "content_block_start[3:tool_use] content_block_delta[3] content_block_delta[3] content_block_stop[3] "
                        "message_delta message_stop");
    free(sum);
    assert_non_null(strstr(raw.ptr, "\"message\":{\"id\":\"msg_req42\",\"type\":\"message\",\"role\":\"assistant\","
                                    "\"model\":\"deepseek-reasoner\",\"content\":[]"));
    assert_non_null(strstr(raw.ptr, "{\"type\":\"thinking_delta\",\"thinking\":\"Hmm,\"}"));
    assert_non_null(strstr(raw.ptr, "{\"type\":\"text_delta\",\"text\":\"I'll \"}"));
    assert_non_null(strstr(raw.ptr, "\"content_block\":{\"type\":\"tool_use\",\"id\":\"call_a\",\"name\":\"Bash\",\"input\":{}}"));
    assert_non_null(strstr(raw.ptr, "{\"type\":\"input_json_delta\",\"partial_json\":\":\\\"ls\\\"}\"}"));
    assert_non_null(strstr(raw.ptr, "\"id\":\"call_b\",\"name\":\"Read\""));
    assert_non_null(strstr(raw.ptr, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},"
                                    "\"usage\":{\"input_tokens\":36,\"cache_creation_input_tokens\":0,"
                                    "\"cache_read_input_tokens\":64,\"output_tokens\":30}}"));
    assert_non_null(strstr(raw.ptr, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    sl_buf_release(&raw);
}

/* A stream with no usage from anywhere still ends grammatically, output estimated. */
static void test_stream_text_only_and_no_usage(void **state)
{
    const char *chunks[] = {
        CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null"),
        CHUNK("{\"content\":\"Hello world, a few words here.\"}", "null"),
        CHUNK("{}", "\"stop\""),
    };
    struct sl_usage none = {0};
    struct sl_buf raw = SL_BUF_INIT(1 << 20);
    const struct sl_client_format *f = fmt();
    void *st = calloc(1, f->stream_size);
    f->stream_init(st, "r1", "m", 0);
    for (size_t i = 0; i < 3; i++) {
        cJSON *c = cJSON_Parse(chunks[i]);
        assert_int_equal(f->stream_chunk(st, c, &raw), 0);
        cJSON_Delete(c);
    }
    assert_int_equal(f->stream_end(st, &none, &raw), 0);
    free(st);
    char *sum = summarise(&raw);
    assert_string_equal(sum, "message_start ping content_block_start[0:text] content_block_delta[0] "
                             "content_block_stop[0] message_delta message_stop");
    free(sum);
    assert_non_null(strstr(raw.ptr, "\"stop_reason\":\"end_turn\""));
    assert_null(strstr(raw.ptr, "\"output_tokens\":0}}\n\nevent: message_stop"));
    sl_buf_release(&raw);
}

static void test_errors(void **state)
{
    static const struct {
        int status;
        const char *type;
    } rows[] = {{400, "invalid_request_error"}, {401, "authentication_error"}, {403, "permission_error"},
                {404, "not_found_error"},       {413, "request_too_large"},    {429, "rate_limit_error"},
                {500, "api_error"},             {502, "api_error"},            {529, "overloaded_error"}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct sl_error e;
        struct sl_buf b = SL_BUF_INIT(4096);
        sl_error_set(&e, rows[i].status, "whatever_openai_type", "it \"failed\"");
        assert_int_equal(fmt()->error_body(&e, &b), 0);
        char want[256];
        snprintf(want, sizeof(want), "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"it \\\"failed\\\"\"}}",
                 rows[i].type);
        assert_string_equal(b.ptr, want);
        sl_buf_release(&b);
    }
    /* mid-stream: the error event alone, no message_stop */
    struct sl_error e;
    struct sl_buf b = SL_BUF_INIT(4096);
    const struct sl_client_format *f = fmt();
    void *st = calloc(1, f->stream_size);
    f->stream_init(st, "r", "m", 0);
    sl_error_set(&e, 502, "upstream_error", "the upstream closed the stream before it finished");
    assert_int_equal(f->stream_error(st, &e, &b), 0);
    assert_string_equal(b.ptr, "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                               "\"message\":\"the upstream closed the stream before it finished\"}}\n\n");
    f->stream_release(st);
    free(st);
    sl_buf_release(&b);
}

/* curl's torture idea: fail the Nth cJSON allocation, for every N, and expect a clean
 * error (LeakSanitizer reports anything left behind at exit). */
static long alloc_budget = -1;

static void *failing_malloc(size_t n)
{
    if (alloc_budget == 0)
        return NULL;
    if (alloc_budget > 0)
        alloc_budget--;
    return malloc(n);
}

static void test_allocation_failures(void **state)
{
    const char *body =
        "{\"model\":\"m\",\"max_tokens\":9,\"system\":[{\"type\":\"text\",\"text\":\"s\"}],"
        "\"tools\":[{\"name\":\"f\",\"input_schema\":{\"type\":\"object\"}}],\"tool_choice\":{\"type\":\"tool\",\"name\":\"f\"},"
        "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":2000},\"stop_sequences\":[\"x\"],"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"http://i\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"t\"},"
        "{\"type\":\"tool_use\",\"id\":\"u\",\"name\":\"f\",\"input\":{\"k\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"u\",\"content\":\"r\"}]}]}";
    cJSON_Hooks hooks = {failing_malloc, free};
    cJSON_InitHooks(&hooks);
    int ok = 0;
    for (long n = 0; n < 2000 && !ok; n++) {
        struct sl_error e;
        memset(&e, 0, sizeof(e));
        alloc_budget = n;
        cJSON *r = fmt()->decode_request(body, strlen(body), &e);
        alloc_budget = -1;
        if (r) {
            ok = 1;
            assert_string_equal(str_at(r, "messages.3.role"), "tool");
            cJSON_Delete(r);
        } else {
            assert_true(e.status == 500 || e.status == 400);
        }
    }
    cJSON_InitHooks(NULL);
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_system_and_scalars),
        cmocka_unit_test(test_decode_tool_round_trip),
        cmocka_unit_test(test_decode_images),
        cmocka_unit_test(test_decode_thinking),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_count_tokens),
        cmocka_unit_test(test_encode_reply),
        cmocka_unit_test(test_stream_events),
        cmocka_unit_test(test_stream_text_only_and_no_usage),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_allocation_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
