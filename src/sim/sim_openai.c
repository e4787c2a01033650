/* The OpenAI Chat Completions wire format of the simulator: request decoding, the
 * chat.completion object, chat.completion.chunk events, error bodies, the model list. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "sim/sim.h"
#include "sim/sim_internal.h"

#define FINGERPRINT   "fp_sim"
#define MODEL_CREATED 1700000000 /* fixed, so the model list is deterministic */

/* ---- decoding ---- */

/* A message's text: string content, or its text parts joined with a space. */
static const char *message_text(const cJSON *content, struct sl_arena *a)
{
    if (cJSON_IsString(content))
        return content->valuestring;
    struct sl_buf b = SL_BUF_INIT(SL_MAX_REQUEST_BODY);
    const cJSON *part;
    cJSON_ArrayForEach(part, content)
    {
        const char *text = sl_json_str(part, "text", NULL);
        if (!text || strcmp(sl_json_str(part, "type", "text"), "text") != 0)
            continue;
        if ((b.len && sl_buf_append(&b, " ", 1)) || sl_buf_puts(&b, text))
            break;
    }
    const char *out = sl_arena_strndup(a, b.ptr ? b.ptr : "", b.len);
    sl_buf_release(&b);
    return out;
}

static int decode_messages(const cJSON *body, struct sl_arena *a, struct sim_request *rq,
                           const char **err)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
    if (n == 0) {
        *err = "'messages' must be a non-empty array.";
        return -1;
    }
    struct sim_msg *out = sl_arena_alloc(a, sizeof(*out) * (size_t)n);
    if (!out) {
        *err = "Out of memory.";
        return -1;
    }
    int i = 0;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        out[i].role = sl_json_str(m, "role", NULL);
        out[i].text = message_text(cJSON_GetObjectItemCaseSensitive(m, "content"), a);
        if (!out[i].role || !out[i].text) {
            *err = out[i].role ? "Out of memory." : "Each message must have a string 'role'.";
            return -1;
        }
        i++;
    }
    rq->msgs = out;
    rq->n_msgs = n;
    return 0;
}

static int decode_tools(const cJSON *body, struct sl_arena *a, struct sim_request *rq)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    int n = cJSON_IsArray(tools) ? cJSON_GetArraySize(tools) : 0;
    struct sim_tool *out = n ? sl_arena_alloc(a, sizeof(*out) * (size_t)n) : NULL;
    if (n && !out)
        return -1;
    const cJSON *t;
    cJSON_ArrayForEach(t, tools)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const char *name = sl_json_str(fn, "name", NULL);
        if (name)
            out[rq->n_tools++] = (struct sim_tool){
                name, cJSON_GetObjectItemCaseSensitive(fn, "parameters")};
    }
    rq->tools = out;
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(body, "tool_choice");
    rq->tools_off = cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0;
    rq->forced_tool =
        sl_json_str(cJSON_GetObjectItemCaseSensitive(choice, "function"), "name", NULL);
    return 0;
}

static void decode_format(const cJSON *body, struct sim_request *rq)
{
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(body, "response_format");
    const char *type = sl_json_str(rf, "type", "text");
    if (strcmp(type, "json_object") == 0) {
        rq->format = SIM_FORMAT_JSON_OBJECT;
    } else if (strcmp(type, "json_schema") == 0) {
        rq->format = SIM_FORMAT_JSON_SCHEMA;
        rq->format_schema = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(rf, "json_schema"), "schema");
    }
}

static int decode(const cJSON *body, const char *arg, struct sl_arena *a,
                  struct sim_request *rq, const char **err, const char **param)
{
    memset(rq, 0, sizeof(*rq));
    *param = NULL;
    if (!cJSON_IsObject(body)) {
        *err = "The request body must be a JSON object.";
        return -1;
    }
    rq->model = sl_json_str(body, "model", sl_sim_models[0]);
    if (decode_messages(body, a, rq, err)) {
        *param = "messages";
        return -1;
    }
    if (decode_tools(body, a, rq)) {
        *err = "Out of memory.";
        return -1;
    }
    decode_format(body, rq);
    rq->stream = sl_json_bool(body, "stream", 0);
    rq->include_usage = sl_json_bool(
        cJSON_GetObjectItemCaseSensitive(body, "stream_options"), "include_usage", 0);
    return 0;
}

/* ---- chat.completion ---- */

static cJSON *usage_object(const struct sim_answer *ans)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "prompt_tokens", ans->prompt_tokens);
    cJSON_AddNumberToObject(u, "completion_tokens", ans->completion_tokens);
    cJSON_AddNumberToObject(u, "total_tokens", ans->prompt_tokens + ans->completion_tokens);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "prompt_tokens_details"),
                            "cached_tokens", ans->cached_tokens);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "completion_tokens_details"),
                            "reasoning_tokens", ans->reasoning_tokens);
    return u;
}

static const char *finish_reason(const struct sim_answer *ans)
{
    return ans->n_calls && !ans->tool_forced ? "tool_calls" : "stop";
}

static cJSON *tool_calls_array(const struct sim_answer *ans)
{
    cJSON *calls = cJSON_CreateArray();
    for (int i = 0; i < ans->n_calls; i++) {
        cJSON *c = cJSON_CreateObject();
        char id[32];
        snprintf(id, sizeof(id), "call_sim_%d", i);
        cJSON_AddStringToObject(c, "id", id);
        cJSON_AddStringToObject(c, "type", "function");
        cJSON *fn = cJSON_AddObjectToObject(c, "function");
        cJSON_AddStringToObject(fn, "name", ans->calls[i].name);
        cJSON_AddStringToObject(fn, "arguments", ans->calls[i].arguments);
        cJSON_AddItemToArray(calls, c);
    }
    return calls;
}

static cJSON *message_object(const struct sim_answer *ans)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "assistant");
    if (ans->content)
        cJSON_AddStringToObject(m, "content", ans->content);
    else
        cJSON_AddNullToObject(m, "content");
    if (ans->reasoning)
        cJSON_AddStringToObject(m, "reasoning_content", ans->reasoning);
    if (ans->n_calls)
        cJSON_AddItemToObject(m, "tool_calls", tool_calls_array(ans));
    cJSON_AddNullToObject(m, "refusal");
    return m;
}

int sl_sim_append_json(cJSON *v, int pretty, struct sl_buf *out)
{
    char *s = !v ? NULL : pretty ? cJSON_Print(v) : cJSON_PrintUnformatted(v);
    int result = s ? sl_buf_puts(out, s) : -1;
    free(s);
    cJSON_Delete(v);
    return result;
}

static int append_json(cJSON *v, struct sl_buf *out)
{
    return sl_sim_append_json(v, 0, out);
}

static int reply(const struct sim_exchange *x, struct sl_buf *out)
{
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "id", x->id);
    cJSON_AddStringToObject(r, "object", "chat.completion");
    cJSON_AddNumberToObject(r, "created", (double)x->created);
    cJSON_AddStringToObject(r, "model", x->rq->model);
    cJSON *choice = cJSON_CreateObject();
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON_AddItemToObject(choice, "message", message_object(x->ans));
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason", finish_reason(x->ans));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "choices"), choice);
    if (!x->dir->no_usage)
        cJSON_AddItemToObject(r, "usage", usage_object(x->ans));
    cJSON_AddStringToObject(r, "system_fingerprint", FINGERPRINT);
    return append_json(r, out);
}

/* ---- chat.completion.chunk events, written by hand: they are the hot path ---- */

static int chunk_open(const struct sim_exchange *x, struct sl_buf *out)
{
    return sl_buf_printf(out, "data: {\"id\":\"%s\",\"object\":\"chat.completion.chunk\","
                              "\"created\":%lld,\"model\":",
                         x->id, (long long)x->created) ||
           sl_json_quote(out, x->rq->model, strlen(x->rq->model)) ||
           sl_buf_puts(out, ",\"system_fingerprint\":\"" FINGERPRINT "\",\"choices\":[");
}

static int chunk_close(const struct sim_exchange *x, struct sl_buf *out)
{
    return sl_buf_puts(out, x->usage ? "],\"usage\":null}\n\n" : "]}\n\n");
}

/* The delta object of a content-bearing piece. With @sim:stamp a reply-text piece carries
 * the time it is encoded (just before it is written), CLOCK_MONOTONIC microseconds. */
static int delta(const struct sim_exchange *x, const struct sim_piece *p, struct sl_buf *out)
{
    switch (p->kind) {
    case SIM_PIECE_START:
        return sl_buf_puts(out, "{\"role\":\"assistant\",\"content\":\"\"}");
    case SIM_PIECE_TEXT:
        if (x->dir->stamp > 0)
            return sl_buf_printf(out, "{\"content\":\" %lld\"}", (long long)sl_now_us());
        return sl_buf_puts(out, "{\"content\":") || sl_json_quote(out, p->text, p->len) ||
               sl_buf_puts(out, "}");
    case SIM_PIECE_REASONING:
        return sl_buf_puts(out, "{\"reasoning_content\":") ||
               sl_json_quote(out, p->text, p->len) || sl_buf_puts(out, "}");
    case SIM_PIECE_TOOL_START:
        return sl_buf_printf(out, "{\"tool_calls\":[{\"index\":%d,\"id\":\"call_sim_%d\","
                                  "\"type\":\"function\",\"function\":{\"name\":",
                             p->call, p->call) ||
               sl_json_quote(out, p->text, p->len) ||
               sl_buf_puts(out, ",\"arguments\":\"\"}}]}");
    case SIM_PIECE_TOOL_ARGS:
        return sl_buf_printf(out, "{\"tool_calls\":[{\"index\":%d,\"function\":{\"arguments\":",
                             p->call) ||
               sl_json_quote(out, p->text, p->len) || sl_buf_puts(out, "}}]}");
    default:
        return sl_buf_puts(out, "{}");
    }
}

static int choice_chunk(const struct sim_exchange *x, const struct sim_piece *p,
                        struct sl_buf *out)
{
    const char *fr = p->kind == SIM_PIECE_FINISH ? finish_reason(x->ans) : NULL;
    return chunk_open(x, out) || sl_buf_puts(out, "{\"index\":0,\"delta\":") ||
           delta(x, p, out) ||
           sl_buf_printf(out, ",\"logprobs\":null,\"finish_reason\":%s%s%s}", fr ? "\"" : "",
                         fr ? fr : "null", fr ? "\"" : "") ||
           chunk_close(x, out);
}

static int usage_chunk(const struct sim_exchange *x, struct sl_buf *out)
{
    return chunk_open(x, out) || sl_buf_puts(out, "],\"usage\":") ||
           append_json(usage_object(x->ans), out) || sl_buf_puts(out, "}\n\n");
}

static int piece(const struct sim_exchange *x, const struct sim_piece *p, struct sl_buf *out)
{
    switch (p->kind) {
    case SIM_PIECE_KEEPALIVE:
        return sl_buf_puts(out, ": keep-alive\n\n");
    case SIM_PIECE_USAGE:
        return usage_chunk(x, out);
    case SIM_PIECE_DONE:
        return sl_buf_puts(out, "data: [DONE]\n\n");
    case SIM_PIECE_MALFORMED:
        return sl_buf_puts(out, "data: {not json\n\n");
    case SIM_PIECE_ERROR: {
        struct sim_error e = {500, "Simulated error in the middle of the stream.", NULL, NULL, -1};
        return sl_buf_puts(out, "data: ") || sl_sim_openai.error(&e, out) ||
               sl_buf_puts(out, "\n\n");
    }
    case SIM_PIECE_CLOSE:
        return 0;
    default:
        return choice_chunk(x, p, out);
    }
}

/* ---- errors and models ---- */

static const char *error_type(int status)
{
    switch (status) {
    case 401:
    case 403:
        return "authentication_error";
    case 404:
        return "not_found_error";
    case 429:
        return "rate_limit_exceeded";
    case 503:
    case 529:
        return "overloaded";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

/* The one place that writes the simulator's OpenAI error JSON. */
static int error(const struct sim_error *err, struct sl_buf *out)
{
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "message", err->message);
    cJSON_AddStringToObject(e, "type", error_type(err->status));
    if (err->param)
        cJSON_AddStringToObject(e, "param", err->param);
    else
        cJSON_AddNullToObject(e, "param");
    cJSON_AddNullToObject(e, "code");
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "error", e);
    return append_json(body, out);
}

static cJSON *model_object(const char *id)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", id);
    cJSON_AddStringToObject(m, "object", "model");
    cJSON_AddNumberToObject(m, "created", MODEL_CREATED);
    cJSON_AddStringToObject(m, "owned_by", "sluice-sim");
    return m;
}

int sl_sim_openai_models(const char *id, struct sl_buf *out)
{
    if (id)
        return append_json(model_object(id), out);
    cJSON *list = cJSON_CreateObject();
    cJSON_AddStringToObject(list, "object", "list");
    cJSON *data = cJSON_AddArrayToObject(list, "data");
    for (const char *const *m = sl_sim_models; *m; m++)
        cJSON_AddItemToArray(data, model_object(*m));
    return append_json(list, out);
}

const struct sim_wire sl_sim_openai = {
    .id_prefix = "chatcmpl-sim-",
    .request_id_header = NULL,
    .retry_after_header = 1,
    .decode = decode,
    .reply = reply,
    .piece = piece,
    .error = error,
};
