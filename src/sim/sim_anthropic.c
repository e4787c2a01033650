/* The Anthropic Messages wire format of the simulator: request decoding and checking
 * (system, content blocks, tool_use/tool_result pairing, tools, tool_choice, max_tokens),
 * the Message object, the named stream events and the error bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "sim/sim_internal.h"

#define SIGNATURE "c2ltLXRoaW5raW5nLXNpZ25hdHVyZQ==" /* base64("sim-thinking-signature") */

/* ---- decoding ---- */

/* To accept a new top-level request field: a row here (the API rejects unknown ones). */
static const char *const request_fields[] = {
    "model",         "messages",    "max_tokens", "system",  "stop_sequences",
    "stream",        "temperature", "top_p",      "top_k",   "metadata",
    "tools",         "tool_choice", "thinking",   "service_tier", "output_config",
    "container",     "mcp_servers", "context_management", "inference_geo", NULL,
};

struct decoder {
    struct sl_arena *a;
    struct sim_msg *msgs;
    int n;
    const char *err;
};

static int fail(struct decoder *d, const char *msg)
{
    d->err = msg ? msg : "Out of memory.";
    return -1;
}

static int known_field(const char *name)
{
    for (const char *const *f = request_fields; *f; f++)
        if (strcmp(*f, name) == 0)
            return 1;
    return 0;
}

static int check_fields(const cJSON *body, struct decoder *d)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, body)
    {
        if (!known_field(m->string))
            return fail(d, sl_arena_sprintf(d->a, "%s: Extra inputs are not permitted",
                                            m->string));
    }
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "model")))
        return fail(d, "model: Field required");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(body, "max_tokens");
    if (!cJSON_IsNumber(mt))
        return fail(d, "max_tokens: Field required");
    if (mt->valuedouble < 1)
        return fail(d, "max_tokens: Input should be greater than or equal to 1");
    return 0;
}

static const char *block_type(const cJSON *block)
{
    return sl_json_str(block, "type", "");
}

/* Text of a string, or of the text blocks of an array joined with a space. */
static const char *join_text(const cJSON *content, struct sl_arena *a)
{
    if (cJSON_IsString(content))
        return content->valuestring;
    struct sl_buf b = SL_BUF_INIT(SL_MAX_REQUEST_BODY);
    const cJSON *block;
    cJSON_ArrayForEach(block, content)
    {
        const char *text = sl_json_str(block, "text", NULL);
        if (!text || strcmp(block_type(block), "text") != 0)
            continue;
        if ((b.len && sl_buf_append(&b, " ", 1)) || sl_buf_puts(&b, text))
            break;
    }
    const char *out = sl_arena_strndup(a, b.ptr ? b.ptr : "", b.len);
    sl_buf_release(&b);
    return out;
}

static int add_msg(struct decoder *d, const char *role, const char *text)
{
    if (!text)
        return fail(d, NULL);
    d->msgs[d->n++] = (struct sim_msg){role, text};
    return 0;
}

/* Checks one content block of message i (at index j). */
static int check_block(const cJSON *b, const char *role, int i, int j, struct decoder *d)
{
    const char *type = block_type(b);
    if (strcmp(type, "text") == 0 && !*sl_json_str(b, "text", ""))
        return fail(d, sl_arena_sprintf(d->a, "messages.%d.content.%d: text content blocks "
                                              "must be non-empty", i, j));
    if (strcmp(type, "tool_use") == 0 &&
        (strcmp(role, "assistant") != 0 || !sl_json_str(b, "id", NULL) ||
         !sl_json_str(b, "name", NULL) ||
         !cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(b, "input"))))
        return fail(d, sl_arena_sprintf(d->a, "messages.%d.content.%d.tool_use: an assistant "
                                              "block with a string id and name and an input "
                                              "object (a valid dictionary) is required", i, j));
    if (strcmp(type, "tool_result") == 0 &&
        (strcmp(role, "user") != 0 || !sl_json_str(b, "tool_use_id", NULL)))
        return fail(d, sl_arena_sprintf(d->a, "messages.%d.content.%d.tool_result: a user "
                                              "block with a string tool_use_id is required",
                                        i, j));
    return 0;
}

static int has_block(const cJSON *content, const char *type, const char *key, const char *id)
{
    const cJSON *b;
    cJSON_ArrayForEach(b, content)
    {
        if (strcmp(block_type(b), type) == 0 && strcmp(sl_json_str(b, key, ""), id) == 0)
            return 1;
    }
    return 0;
}

/* Every tool_use of the previous assistant turn (prev, or NULL) is answered by a
 * tool_result in this user turn, and every tool_result answers one of them. */
static int check_pairing(const cJSON *prev, const cJSON *m, int i, struct decoder *d)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    int user = strcmp(sl_json_str(m, "role", ""), "user") == 0;
    const cJSON *results = user && cJSON_IsArray(content) ? content : NULL, *b;
    int j = 0;
    cJSON_ArrayForEach(b, results)
    {
        if (strcmp(block_type(b), "tool_result") == 0 &&
            !has_block(prev, "tool_use", "id", sl_json_str(b, "tool_use_id", "")))
            return fail(d, sl_arena_sprintf(d->a, "messages.%d.content.%d: unexpected "
                                                  "`tool_use_id` found in `tool_result` blocks: "
                                                  "%s. Each `tool_result` block must have a "
                                                  "corresponding `tool_use` block in the "
                                                  "previous message.",
                                            i, j, sl_json_str(b, "tool_use_id", "")));
        j++;
    }
    cJSON_ArrayForEach(b, prev)
    {
        const char *id = sl_json_str(b, "id", "");
        if (strcmp(block_type(b), "tool_use") == 0 &&
            !(user && has_block(content, "tool_result", "tool_use_id", id)))
            return fail(d, sl_arena_sprintf(d->a, "messages.%d: `tool_use` ids were found "
                                                  "without `tool_result` blocks immediately "
                                                  "after: %s. Each `tool_use` block must have a "
                                                  "corresponding `tool_result` block in the next "
                                                  "message.",
                                            i - 1, id));
    }
    return 0;
}

/* Message i becomes a "tool" message per tool_result block, then (unless it holds only
 * tool results) one message of its role with its text. */
static int decode_message(const cJSON *m, int i, int last, struct decoder *d)
{
    const char *role = sl_json_str(m, "role", "");
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (strcmp(role, "user") != 0 && strcmp(role, "assistant") != 0)
        return fail(d, sl_arena_sprintf(d->a, "messages.%d.role: Input should be 'user' or "
                                              "'assistant'", i));
    if (!cJSON_IsString(content) && !cJSON_IsArray(content))
        return fail(d, sl_arena_sprintf(d->a, "messages.%d.content: Field required", i));
    int empty = cJSON_IsString(content) ? !*content->valuestring : !cJSON_GetArraySize(content);
    if (empty && !(last && strcmp(role, "assistant") == 0))
        return fail(d, sl_arena_sprintf(d->a, "messages.%d: all messages must have non-empty "
                                              "content except for the optional final "
                                              "assistant message", i));
    const cJSON *blocks = cJSON_IsArray(content) ? content : NULL, *b;
    int j = 0, others = cJSON_IsString(content);
    cJSON_ArrayForEach(b, blocks)
    {
        if (check_block(b, role, i, j++, d))
            return -1;
        if (strcmp(block_type(b), "tool_result") != 0)
            others = 1;
        else if (add_msg(d, "tool", join_text(cJSON_GetObjectItemCaseSensitive(b, "content"),
                                               d->a)))
            return -1;
    }
    return others || empty ? add_msg(d, role, join_text(content, d->a)) : 0;
}

static int count_msgs(const cJSON *msgs)
{
    int n = 1; /* the system prompt */
    const cJSON *m, *b;
    cJSON_ArrayForEach(m, msgs)
    {
        n++;
        cJSON_ArrayForEach(b, cJSON_GetObjectItemCaseSensitive(m, "content")) n++;
    }
    return n;
}

static int decode_messages(const cJSON *body, struct decoder *d)
{
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(body, "messages");
    int n = cJSON_IsArray(msgs) ? cJSON_GetArraySize(msgs) : 0;
    if (n == 0)
        return fail(d, "messages: at least one message is required");
    d->msgs = sl_arena_alloc(d->a, sizeof(*d->msgs) * (size_t)count_msgs(msgs));
    if (!d->msgs)
        return fail(d, NULL);
    const cJSON *system = cJSON_GetObjectItemCaseSensitive(body, "system");
    if (system && !cJSON_IsString(system) && !cJSON_IsArray(system))
        return fail(d, "system: Input should be a valid string or a list of text blocks");
    if (system && add_msg(d, "system", join_text(system, d->a)))
        return -1;
    const cJSON *m, *prev = NULL;
    int i = 0;
    cJSON_ArrayForEach(m, msgs)
    {
        if ((prev && check_pairing(prev, m, i, d)) || decode_message(m, i, i == n - 1, d))
            return -1;
        const char *role = sl_json_str(m, "role", "");
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
        prev = strcmp(role, "assistant") == 0 && cJSON_IsArray(content) ? content : NULL;
        i++;
    }
    return 0;
}

static int decode_tools(const cJSON *body, struct decoder *d, struct sim_request *rq)
{
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(body, "tools");
    int n = cJSON_IsArray(tools) ? cJSON_GetArraySize(tools) : 0;
    struct sim_tool *out = n ? sl_arena_alloc(d->a, sizeof(*out) * (size_t)n) : NULL;
    if (n && !out)
        return fail(d, NULL);
    const cJSON *t;
    int i = 0;
    cJSON_ArrayForEach(t, tools)
    {
        const char *type = sl_json_str(t, "type", "custom");
        const cJSON *schema = cJSON_GetObjectItemCaseSensitive(t, "input_schema");
        if (strcmp(type, "custom") != 0) /* a server tool: the simulator never calls it */
            continue;
        if (!sl_json_str(t, "name", NULL) || !cJSON_IsObject(schema))
            return fail(d, sl_arena_sprintf(d->a, "tools.%d.custom.%s: Field required", i,
                                            sl_json_str(t, "name", NULL) ? "input_schema"
                                                                         : "name"));
        out[rq->n_tools++] = (struct sim_tool){sl_json_str(t, "name", NULL), schema};
        i++;
    }
    rq->tools = out;
    return 0;
}

static int decode_tool_choice(const cJSON *body, struct decoder *d, struct sim_request *rq)
{
    const cJSON *choice = cJSON_GetObjectItemCaseSensitive(body, "tool_choice");
    if (!choice)
        return 0;
    const char *type = sl_json_str(choice, "type", "");
    if (strcmp(type, "tool") == 0 && !(rq->forced_tool = sl_json_str(choice, "name", NULL)))
        return fail(d, "tool_choice.tool.name: Field required");
    rq->tools_off = strcmp(type, "none") == 0;
    if (strcmp(type, "auto") && strcmp(type, "any") && strcmp(type, "tool") && !rq->tools_off)
        return fail(d, "tool_choice: Input tag does not match any of the expected tags: "
                       "'auto', 'any', 'tool', 'none'");
    return 0;
}

static int decode(const cJSON *body, const char *arg, struct sl_arena *a, struct sim_request *rq,
                  const char **err, const char **param)
{
    memset(rq, 0, sizeof(*rq));
    *param = NULL;
    struct decoder d = {a, NULL, 0, NULL};
    if (!cJSON_IsObject(body)) {
        *err = "The request body must be a JSON object.";
        return -1;
    }
    if (check_fields(body, &d) || decode_messages(body, &d) || decode_tools(body, &d, rq) ||
        decode_tool_choice(body, &d, rq)) {
        *err = d.err;
        return -1;
    }
    rq->model = sl_json_str(body, "model", "");
    rq->msgs = d.msgs;
    rq->n_msgs = d.n;
    rq->max_tokens = (int)sl_json_int(body, "max_tokens", 0);
    rq->stream = sl_json_bool(body, "stream", 0);
    rq->include_usage = 1;
    return 0;
}

/* ---- the Message ---- */

static const char *stop_reason(const struct sim_answer *ans)
{
    return ans->truncated ? "max_tokens" : ans->n_calls ? "tool_use" : "end_turn";
}

/* Usage as the API reports it. The final counts (not a stream start's placeholder) of a
 * reasoner say how many output tokens were thinking, as the 2026 API does. */
static cJSON *usage_object(const struct sim_answer *ans, int output_tokens, int tier)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "input_tokens", ans->prompt_tokens);
    cJSON_AddNumberToObject(u, "cache_creation_input_tokens", 0);
    cJSON_AddNumberToObject(u, "cache_read_input_tokens", 0);
    cJSON_AddNumberToObject(u, "output_tokens", output_tokens);
    if (ans->reasoning && output_tokens == ans->completion_tokens)
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(u, "output_tokens_details"),
                                "thinking_tokens", ans->reasoning_tokens);
    if (tier)
        cJSON_AddStringToObject(u, "service_tier", "standard");
    return u;
}

static cJSON *text_block(const char *type, const char *key, const char *text)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "type", type);
    cJSON_AddStringToObject(b, key, text);
    return b;
}

static cJSON *tool_block(const struct sim_answer *ans, int i, int with_input)
{
    char id[32];
    snprintf(id, sizeof(id), "toolu_sim_%d", i);
    cJSON *b = text_block("tool_use", "id", id);
    cJSON_AddStringToObject(b, "name", ans->calls[i].name);
    cJSON *input = with_input ? cJSON_Parse(ans->calls[i].arguments) : NULL;
    cJSON_AddItemToObject(b, "input", input ? input : cJSON_CreateObject());
    return b;
}

static cJSON *content_array(const struct sim_answer *ans)
{
    cJSON *content = cJSON_CreateArray();
    if (ans->reasoning) {
        cJSON *t = text_block("thinking", "thinking", ans->reasoning);
        cJSON_AddStringToObject(t, "signature", SIGNATURE);
        cJSON_AddItemToArray(content, t);
    }
    if (ans->content && *ans->content)
        cJSON_AddItemToArray(content, text_block("text", "text", ans->content));
    for (int i = 0; i < ans->n_calls; i++)
        cJSON_AddItemToArray(content, tool_block(ans, i, 1));
    return content;
}

/* The Message, finished (stop_reason set) or as message_start announces it. */
static cJSON *message_object(const struct sim_exchange *x, int finished)
{
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "id", x->id);
    cJSON_AddStringToObject(m, "type", "message");
    cJSON_AddStringToObject(m, "role", "assistant");
    cJSON_AddStringToObject(m, "model", x->rq->model);
    cJSON_AddItemToObject(m, "content", finished ? content_array(x->ans) : cJSON_CreateArray());
    if (finished)
        cJSON_AddStringToObject(m, "stop_reason", stop_reason(x->ans));
    else
        cJSON_AddNullToObject(m, "stop_reason");
    cJSON_AddNullToObject(m, "stop_sequence");
    if (!x->dir->no_usage) /* a stream's start has a placeholder output count */
        cJSON_AddItemToObject(m, "usage",
                              usage_object(x->ans, finished ? x->ans->completion_tokens : 1, 1));
    return m;
}

static int reply(const struct sim_exchange *x, struct sl_buf *out)
{
    return sl_sim_append_json(message_object(x, 1), 0, out);
}

/* ---- stream events ---- */

/* Appends `event: <type>` and the data object (deleted) whose "type" is that name. */
static int event(struct sl_buf *out, cJSON *data)
{
    const char *type = sl_json_str(data, "type", "");
    return sl_buf_printf(out, "event: %s\ndata: ", type) || sl_sim_append_json(data, 0, out) ||
           sl_buf_puts(out, "\n\n");
}

static cJSON *typed(const char *type)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", type);
    return o;
}

static int block_start(const struct sim_exchange *x, const struct sim_piece *p,
                       struct sl_buf *out)
{
    cJSON *e = typed("content_block_start"), *b;
    cJSON_AddNumberToObject(e, "index", p->block);
    if (p->kind == SIM_PIECE_REASONING) {
        b = text_block("thinking", "thinking", "");
        cJSON_AddStringToObject(b, "signature", "");
    } else if (p->kind == SIM_PIECE_TEXT) {
        b = text_block("text", "text", "");
    } else {
        b = tool_block(x->ans, p->call, 0);
    }
    cJSON_AddItemToObject(e, "content_block", b);
    /* the API pings right after the first block starts */
    return event(out, e) || (p->block == 0 && sl_buf_puts(out, "event: ping\n"
                                                               "data: {\"type\": \"ping\"}\n\n"));
}

/* A content_block_delta whose delta is {"type":type, key:<s>}; written by hand, it is
 * the one event a long reply repeats. */
static int block_delta(struct sl_buf *out, int index, const char *type, const char *key,
                       const char *s, size_t n)
{
    return sl_buf_printf(out, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                              "\"index\":%d,\"delta\":{\"type\":\"%s\",\"%s\":",
                         index, type, key) ||
           sl_json_quote(out, s ? s : "", n) || sl_buf_puts(out, "}}\n\n");
}

static int block_stop(const struct sim_piece *p, struct sl_buf *out)
{
    if (p->kind == SIM_PIECE_REASONING &&
        block_delta(out, p->block, "signature_delta", "signature", SIGNATURE,
                    sizeof(SIGNATURE) - 1))
        return -1;
    return sl_buf_printf(out, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                              "\"index\":%d}\n\n",
                         p->block);
}

/* A piece of a content block: its start when it opens one, its delta, its stop when it
 * closes it. With @sim:stamp a reply-text delta carries the time it is encoded. */
static int block_piece(const struct sim_exchange *x, const struct sim_piece *p,
                       struct sl_buf *out)
{
    char stamp[32];
    int result = p->opens ? block_start(x, p, out) : 0;
    if (!result && p->kind == SIM_PIECE_REASONING)
        result = block_delta(out, p->block, "thinking_delta", "thinking", p->text, p->len);
    else if (!result && p->kind == SIM_PIECE_TEXT && x->dir->stamp > 0)
        result = block_delta(out, p->block, "text_delta", "text", stamp,
                             (size_t)snprintf(stamp, sizeof(stamp), " %lld",
                                              (long long)sl_now_us()));
    else if (!result && p->kind == SIM_PIECE_TEXT)
        result = block_delta(out, p->block, "text_delta", "text", p->text, p->len);
    else if (!result) /* a tool call's first input_json_delta is empty, as the API's */
        result = block_delta(out, p->block, "input_json_delta", "partial_json",
                             p->kind == SIM_PIECE_TOOL_ARGS ? p->text : "",
                             p->kind == SIM_PIECE_TOOL_ARGS ? p->len : 0);
    return result || (p->closes && block_stop(p, out));
}

static int message_start(const struct sim_exchange *x, struct sl_buf *out)
{
    cJSON *e = typed("message_start");
    cJSON_AddItemToObject(e, "message", message_object(x, 0));
    return event(out, e);
}

/* The API's message_delta repeats the input counts beside the final output count. */
static int message_delta(const struct sim_exchange *x, struct sl_buf *out)
{
    cJSON *e = typed("message_delta");
    cJSON *d = cJSON_AddObjectToObject(e, "delta");
    cJSON_AddStringToObject(d, "stop_reason", stop_reason(x->ans));
    cJSON_AddNullToObject(d, "stop_sequence");
    if (!x->dir->no_usage)
        cJSON_AddItemToObject(e, "usage", usage_object(x->ans, x->ans->completion_tokens, 0));
    return event(out, e);
}

static int piece(const struct sim_exchange *x, const struct sim_piece *p, struct sl_buf *out)
{
    switch (p->kind) {
    case SIM_PIECE_KEEPALIVE:
        return sl_buf_puts(out, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    case SIM_PIECE_START:
        return message_start(x, out);
    case SIM_PIECE_FINISH:
        return message_delta(x, out);
    case SIM_PIECE_DONE: /* an error event is the last one */
        return p->failed ? 0 : sl_buf_puts(out, "event: message_stop\n"
                                                "data: {\"type\":\"message_stop\"}\n\n");
    case SIM_PIECE_MALFORMED:
        return sl_buf_puts(out, "event: content_block_delta\ndata: {not json\n\n");
    case SIM_PIECE_ERROR: {
        struct sim_error e = {529, "Overloaded (simulated error in the middle of the stream).",
                              NULL, NULL, -1};
        return sl_buf_puts(out, "event: error\ndata: ") || sl_sim_anthropic.error(&e, out) ||
               sl_buf_puts(out, "\n\n");
    }
    case SIM_PIECE_USAGE: /* in message_delta */
    case SIM_PIECE_CLOSE:
        return 0;
    default:
        return block_piece(x, p, out);
    }
}

/* ---- errors ---- */

static const char *error_type(int status)
{
    switch (status) {
    case 401:
        return "authentication_error";
    case 402:
        return "billing_error";
    case 403:
        return "permission_error";
    case 404:
        return "not_found_error";
    case 413:
        return "request_too_large";
    case 429:
        return "rate_limit_error";
    case 503:
    case 529:
        return "overloaded_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 ? "api_error" : "invalid_request_error";
    }
}

/* The one place that writes the simulator's Anthropic error JSON. */
static int error(const struct sim_error *err, struct sl_buf *out)
{
    cJSON *body = typed("error");
    cJSON *e = cJSON_AddObjectToObject(body, "error");
    cJSON_AddStringToObject(e, "type", error_type(err->status));
    cJSON_AddStringToObject(e, "message", err->message);
    if (err->request_id)
        cJSON_AddStringToObject(body, "request_id", err->request_id);
    return sl_sim_append_json(body, 0, out);
}

const struct sim_wire sl_sim_anthropic = {
    .id_prefix = "msg_sim_",
    .request_id_header = "request-id",
    .retry_after_header = 1,
    .decode = decode,
    .reply = reply,
    .piece = piece,
    .error = error,
};
