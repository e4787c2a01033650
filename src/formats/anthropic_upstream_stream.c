/* Anthropic Messages providers, reply side: a Message, an error body or a Messages
 * event stream becomes canonical OpenAI chat.completion(.chunk) objects (§4.3). */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "formats/anthropic.h"

enum block_kind { BLOCK_OTHER, BLOCK_TEXT, BLOCK_TOOL, BLOCK_THINKING };

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static void oom(struct sl_error *e)
{
    sl_error_set(e, 500, "api_error", "out of memory");
}

static cJSON *usage_json(const struct sl_usage *u)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "prompt_tokens", (double)u->prompt);
    cJSON_AddNumberToObject(o, "completion_tokens", (double)u->completion);
    cJSON_AddNumberToObject(o, "total_tokens", (double)(u->prompt + u->completion));
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "prompt_tokens_details"), "cached_tokens",
                            (double)u->cached);
    cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "completion_tokens_details"),
                            "reasoning_tokens", (double)u->reasoning);
    return o;
}

/* The arguments OpenAI clients expect: the input object as a JSON string. */
static cJSON *tool_call(const cJSON *block, int index)
{
    char *args = cJSON_PrintUnformatted(get(block, "input"));
    cJSON *call = cJSON_CreateObject();
    if (index >= 0)
        cJSON_AddNumberToObject(call, "index", index);
    cJSON_AddStringToObject(call, "id", sl_json_str(block, "id", ""));
    cJSON_AddStringToObject(call, "type", "function");
    cJSON *fn = cJSON_AddObjectToObject(call, "function");
    cJSON_AddStringToObject(fn, "name", sl_json_str(block, "name", ""));
    cJSON_AddStringToObject(fn, "arguments", args ? args : "{}");
    cJSON_free(args);
    return call;
}

/* Text blocks joined into content, thinking blocks into reasoning_content. */
static int reply_message(cJSON *msg, const cJSON *content)
{
    struct sl_buf text = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY), thinking = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    cJSON *calls = cJSON_CreateArray();
    const cJSON *b;
    int rc = calls ? 0 : -1;
    cJSON_ArrayForEach(b, content)
    {
        const char *type = sl_json_str(b, "type", "");
        if (strcmp(type, "text") == 0)
            rc |= sl_buf_puts(&text, sl_json_str(b, "text", ""));
        else if (strcmp(type, "thinking") == 0)
            rc |= sl_buf_puts(&thinking, sl_json_str(b, "thinking", ""));
        else if (strcmp(type, "tool_use") == 0 && calls)
            rc |= cJSON_AddItemToArray(calls, tool_call(b, -1)) ? 0 : -1;
    }
    if (text.ptr)
        cJSON_AddStringToObject(msg, "content", text.ptr);
    else
        cJSON_AddNullToObject(msg, "content"); /* as OpenAI does for a tool-calls-only turn */
    if (thinking.ptr)
        cJSON_AddStringToObject(msg, "reasoning_content", thinking.ptr);
    if (cJSON_GetArraySize(calls) == 0 || !cJSON_AddItemToObject(msg, "tool_calls", calls)) {
        rc |= cJSON_GetArraySize(calls) ? -1 : 0;
        cJSON_Delete(calls);
    }
    sl_buf_release(&text);
    sl_buf_release(&thinking);
    return rc;
}

static cJSON *completion(const cJSON *m, const char *model, struct sl_usage *u)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", sl_json_str(m, "id", "msg"));
    cJSON_AddStringToObject(c, "object", "chat.completion");
    cJSON_AddNumberToObject(c, "created", (double)(sl_wall_ms() / 1000));
    cJSON_AddStringToObject(c, "model", model && model[0] ? model : sl_json_str(m, "model", ""));
    cJSON *choice = cJSON_CreateObject();
    if (!cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "choices"), choice)) {
        cJSON_Delete(choice);
        cJSON_Delete(c);
        return NULL;
    }
    cJSON_AddNumberToObject(choice, "index", 0);
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    cJSON_AddStringToObject(msg, "role", "assistant");
    int rc = reply_message(msg, get(m, "content"));
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddStringToObject(choice, "finish_reason",
                            sl_anthropic_finish_reason(sl_json_str(m, "stop_reason", NULL)));
    sl_anthropic_usage(get(m, "usage"), u);
    cJSON *usage = usage_json(u);
    if (rc || !msg || !cJSON_AddItemToObject(c, "usage", usage)) {
        cJSON_Delete(usage);
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

cJSON *sl_anthropic_decode_reply(const char *body, size_t len, const char *model,
                                 struct sl_usage *u, struct sl_error *e)
{
    cJSON *m = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(m) || !cJSON_IsArray(get(m, "content"))) {
        cJSON_Delete(m);
        sl_error_set(e, 502, "upstream_error", "the Anthropic reply is not a Message");
        return NULL;
    }
    cJSON *c = completion(m, model, u);
    cJSON_Delete(m);
    if (!c)
        oom(e);
    return c;
}

void sl_anthropic_decode_error(int status, const char *body, size_t len, struct sl_error *e)
{
    cJSON *parsed = cJSON_ParseWithLength(body, len);
    const cJSON *err = get(parsed, "error");
    if (cJSON_IsObject(err)) {
        sl_anthropic_error_from(err, status, e);
    } else {
        /* 413 comes from Cloudflare before the API, and proxies answer in HTML. */
        int n = len > 200 ? 200 : (int)len;
        sl_error_set(e, status, sl_anthropic_error_type(status), "Anthropic answered HTTP %d: %.*s",
                     status, n, body ? body : "");
    }
    cJSON_Delete(parsed);
}

/* ---- streams ---- */

struct ctx {
    struct sl_anthropic_stream *s;
    sl_chunk_cb emit;
    void *arg;
    struct sl_usage *u;
    struct sl_error *e;
};

/* A chunk in OpenAI's shape; *delta is where its content goes. */
static cJSON *chunk_new(const struct sl_anthropic_stream *s, cJSON **delta)
{
    cJSON *c = cJSON_CreateObject(), *choice = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "id", s->id);
    cJSON_AddStringToObject(c, "object", "chat.completion.chunk");
    cJSON_AddNumberToObject(c, "created", (double)s->created);
    cJSON_AddStringToObject(c, "model", s->model);
    if (!cJSON_AddItemToArray(cJSON_AddArrayToObject(c, "choices"), choice)) {
        cJSON_Delete(choice);
        cJSON_Delete(c);
        return NULL;
    }
    cJSON_AddNumberToObject(choice, "index", 0);
    *delta = cJSON_AddObjectToObject(choice, "delta");
    cJSON_AddNullToObject(choice, "logprobs");
    cJSON_AddNullToObject(choice, "finish_reason");
    if (!*delta) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* Sends the chunk and frees it. A receiver that refuses it (its output is full) stops
 * the decoder like any failure, with e filled so the client is told why. */
static int deliver(struct ctx *x, cJSON *chunk)
{
    if (!chunk) {
        oom(x->e);
        return -1;
    }
    int rc = x->emit(x->arg, chunk);
    cJSON_Delete(chunk);
    if (rc)
        sl_error_set(x->e, 500, "api_error", "the reply could not be passed on to the client");
    return rc ? -1 : 0;
}

static int send_text(struct ctx *x, const char *key, const char *text)
{
    cJSON *delta, *c;
    if (!text || !text[0])
        return 0; /* Anthropic's opening "" deltas carry nothing */
    c = chunk_new(x->s, &delta);
    if (c && !cJSON_AddStringToObject(delta, key, text)) {
        cJSON_Delete(c);
        c = NULL;
    }
    return deliver(x, c);
}

/* One tool_calls fragment. OpenAI numbers tool calls on their own, while Anthropic's
 * block index counts every block: text before a tool_use makes block 1 tool 0. */
static int send_tool(struct ctx *x, const cJSON *block, const char *fragment)
{
    cJSON *delta, *c = chunk_new(x->s, &delta), *call;
    if (!c)
        return deliver(x, NULL);
    if (block) {
        call = tool_call(block, x->s->tool);
        cJSON *args = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(call, "function"), "arguments");
        /* The block opens with input:{}, which the fragments then spell out. */
        if (cJSON_IsString(args) && strcmp(args->valuestring, "{}") == 0)
            cJSON_SetValuestring(args, "");
    } else {
        call = cJSON_CreateObject();
        cJSON_AddNumberToObject(call, "index", x->s->tool);
        cJSON_AddStringToObject(cJSON_AddObjectToObject(call, "function"), "arguments", fragment);
    }
    if (!cJSON_AddItemToArray(cJSON_AddArrayToObject(delta, "tool_calls"), call)) {
        cJSON_Delete(call);
        cJSON_Delete(c);
        c = NULL;
    }
    return deliver(x, c);
}

static int send_finish(struct ctx *x, const char *reason)
{
    cJSON *delta, *c = chunk_new(x->s, &delta);
    cJSON *choice = cJSON_GetArrayItem(get(c, "choices"), 0);
    cJSON *value = cJSON_CreateString(reason);
    x->s->finished = 1;
    if (!c || !cJSON_ReplaceItemInObjectCaseSensitive(choice, "finish_reason", value)) {
        cJSON_Delete(value);
        cJSON_Delete(c);
        c = NULL;
    }
    return deliver(x, c);
}

/* OpenAI streams open with a role chunk; a stream that skips message_start gets one too. */
static int ensure_started(struct ctx *x)
{
    cJSON *delta, *c;
    if (x->s->started)
        return 0;
    x->s->started = 1;
    c = chunk_new(x->s, &delta);
    cJSON_AddStringToObject(delta, "role", "assistant");
    cJSON_AddStringToObject(delta, "content", "");
    return deliver(x, c);
}

static int on_message_start(struct ctx *x, const cJSON *ev)
{
    const cJSON *m = get(ev, "message");
    if (!x->s->id[0])
        snprintf(x->s->id, sizeof(x->s->id), "%s", sl_json_str(m, "id", ""));
    if (!x->s->model[0])
        snprintf(x->s->model, sizeof(x->s->model), "%s", sl_json_str(m, "model", ""));
    sl_anthropic_usage(get(m, "usage"), x->u);
    return ensure_started(x);
}

static int on_block_start(struct ctx *x, const cJSON *ev)
{
    const cJSON *b = get(ev, "content_block");
    const char *type = sl_json_str(b, "type", "");
    int rc = ensure_started(x);
    x->s->block = (int)sl_json_int(ev, "index", 0);
    x->s->kind = BLOCK_OTHER; /* redacted_thinking, server tools: nothing for OpenAI */
    if (rc)
        return rc;
    if (strcmp(type, "text") == 0) {
        x->s->kind = BLOCK_TEXT;
        return send_text(x, "content", sl_json_str(b, "text", NULL));
    }
    if (strcmp(type, "thinking") == 0) {
        x->s->kind = BLOCK_THINKING;
        return send_text(x, "reasoning_content", sl_json_str(b, "thinking", NULL));
    }
    if (strcmp(type, "tool_use") == 0) {
        x->s->kind = BLOCK_TOOL;
        x->s->tool = x->s->ntools++;
        return send_tool(x, b, NULL);
    }
    return 0;
}

static int on_block_delta(struct ctx *x, const cJSON *ev)
{
    const cJSON *d = get(ev, "delta");
    const char *type = sl_json_str(d, "type", "");
    if (sl_json_int(ev, "index", -1) != x->s->block) {
        sl_error_set(x->e, 502, "upstream_error", "Anthropic sent a delta for a block that is not open");
        return -1;
    }
    if (strcmp(type, "text_delta") == 0)
        return send_text(x, "content", sl_json_str(d, "text", NULL));
    if (strcmp(type, "thinking_delta") == 0)
        return send_text(x, "reasoning_content", sl_json_str(d, "thinking", NULL));
    if (strcmp(type, "input_json_delta") == 0 && x->s->kind == BLOCK_TOOL) {
        const char *frag = sl_json_str(d, "partial_json", "");
        return frag[0] ? send_tool(x, NULL, frag) : 0;
    }
    return 0; /* signature_delta, citations_delta: OpenAI has no place for them */
}

static int on_block_stop(struct ctx *x, const cJSON *ev)
{
    x->s->block = -1;
    return 0;
}

/* Usage here is cumulative; the first stop_reason gives the finish chunk. */
static int on_message_delta(struct ctx *x, const cJSON *ev)
{
    const char *reason = sl_json_str(get(ev, "delta"), "stop_reason", NULL);
    sl_anthropic_usage(get(ev, "usage"), x->u);
    if (!reason || x->s->finished)
        return 0;
    int rc = ensure_started(x);
    return rc ? rc : send_finish(x, sl_anthropic_finish_reason(reason));
}

static int on_message_stop(struct ctx *x, const cJSON *ev)
{
    int rc = ensure_started(x);
    if (!rc && !x->s->finished)
        rc = send_finish(x, "stop");
    x->s->stopped = 1;
    return rc ? rc : 1;
}

/* An error after the 200: overloaded_error stands for what would have been a 529. */
static int on_error(struct ctx *x, const cJSON *ev)
{
    sl_anthropic_error_from(get(ev, "error"), 0, x->e);
    return -1;
}

/* Event types and their handlers; ping and types Anthropic may add are ignored. */
static const struct {
    const char *type;
    int (*fn)(struct ctx *x, const cJSON *ev);
} handlers[] = {
    {"message_start", on_message_start},
    {"content_block_start", on_block_start},
    {"content_block_delta", on_block_delta},
    {"content_block_stop", on_block_stop},
    {"message_delta", on_message_delta},
    {"message_stop", on_message_stop},
    {"error", on_error},
};

void sl_anthropic_stream_init(void *st, const char *id, const char *model)
{
    struct sl_anthropic_stream *s = st;
    snprintf(s->id, sizeof(s->id), "%s", id ? id : "");
    snprintf(s->model, sizeof(s->model), "%s", model ? model : "");
    s->created = (long long)(sl_wall_ms() / 1000);
    s->block = -1;
}

/* The data's "type" is what Anthropic documents; the event name is the fallback. */
static const char *event_type(const struct sl_sse_event *ev, const cJSON *obj, char *buf, size_t n)
{
    const char *type = sl_json_str(obj, "type", NULL);
    if (type)
        return type;
    snprintf(buf, n, "%.*s", (int)ev->type_len, ev->type ? ev->type : "");
    return buf;
}

int sl_anthropic_stream_event(void *st, const struct sl_sse_event *ev, sl_chunk_cb emit,
                              void *arg, struct sl_usage *u, struct sl_error *e)
{
    struct ctx x = {st, emit, arg, u, e};
    char name[64];
    if (ev->comment || ev->data_len == 0)
        return 0;
    cJSON *obj = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        sl_error_set(e, 502, "upstream_error", "Anthropic sent a malformed stream event");
        return -1;
    }
    const char *type = event_type(ev, obj, name, sizeof(name));
    int rc = 0;
    for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]); i++)
        if (strcmp(handlers[i].type, type) == 0)
            rc = handlers[i].fn(&x, obj);
    cJSON_Delete(obj);
    return rc;
}

/* The finish chunk went out with message_delta, so nothing is pending here; only a
 * stream that reached message_stop is complete. */
int sl_anthropic_stream_end(void *st, sl_chunk_cb emit, void *arg, struct sl_usage *u)
{
    const struct sl_anthropic_stream *s = st;
    return s->stopped;
}

void sl_anthropic_stream_release(void *st)
{
}

static int named(const struct sl_sse_event *ev, const char *name)
{
    return ev->type_len == strlen(name) && memcmp(ev->type, name, ev->type_len) == 0;
}

/* Pass-through streams: only the two events that carry usage are parsed. */
void sl_anthropic_sniff_usage(const struct sl_sse_event *ev, const char *body, size_t len,
                              struct sl_usage *u)
{
    if (ev && (ev->comment || (ev->type_len && !named(ev, "message_start") &&
                               !named(ev, "message_delta"))))
        return;
    cJSON *obj = ev ? cJSON_ParseWithLength(ev->data, ev->data_len) : cJSON_ParseWithLength(body, len);
    const char *type = sl_json_str(obj, "type", "");
    if (strcmp(type, "message_start") == 0)
        sl_anthropic_usage(get(get(obj, "message"), "usage"), u);
    else if (strcmp(type, "message_delta") == 0 || (!ev && strcmp(type, "message") == 0))
        sl_anthropic_usage(get(obj, "usage"), u);
    cJSON_Delete(obj);
}
