/* Anthropic-format clients, reply side: a canonical chat.completion becomes a Message,
 * canonical chunks become Anthropic's event grammar (FORMATS.md §2.4, §4.4), and errors
 * take Anthropic's envelope. Holds the sl_anthropic_client vtable. */
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "formats/anthropic.h"
#include "formats/anthropic_client.h"
#include "formats/format.h"
#include "formats/openai.h"

/* ---- pieces shared by replies and streams ----------------------------------------- */

static int quote(struct sl_buf *out, const char *s)
{
    return sl_json_quote(out, s, strlen(s));
}

/* Anthropic's input_tokens exclude cache reads (§2.3); OpenAI's prompt includes them. */
static int usage_json(struct sl_buf *out, const struct sl_usage *u)
{
    long long cached = u->cached > 0 ? u->cached : 0;
    long long input = u->prompt > cached ? u->prompt - cached : 0;
    return sl_buf_printf(out,
                         "{\"input_tokens\":%lld,\"cache_creation_input_tokens\":0,"
                         "\"cache_read_input_tokens\":%lld,\"output_tokens\":%lld}",
                         input, cached, (long long)(u->completion > 0 ? u->completion : 0));
}

/* A tool call's arguments as a tool_use input, which must be an object. Arguments
 * that are not a JSON object (a model's broken output) are kept as {"_raw": "..."}
 * rather than dropped, so the client still sees what the model said. */
static int tool_input(struct sl_buf *out, const char *args)
{
    cJSON *parsed = args[0] ? cJSON_ParseWithOpts(args, NULL, 1) : NULL; /* no trailing bytes */
    int is_object = cJSON_IsObject(parsed);
    cJSON_Delete(parsed);
    if (!args[0])
        return sl_buf_puts(out, "{}");
    if (is_object)
        return sl_buf_puts(out, args);
    return sl_buf_puts(out, "{\"_raw\":") | quote(out, args) | sl_buf_puts(out, "}");
}

static const char *reasoning_of(const cJSON *obj)
{
    const char *r = sl_json_str(obj, "reasoning_content", NULL);
    return r ? r : sl_json_str(obj, "reasoning", NULL); /* vLLM's newer name */
}

static const cJSON *first_choice(const cJSON *obj)
{
    const cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices");
    return cJSON_IsArray(choices) ? cJSON_GetArrayItem(choices, 0) : NULL;
}

/* OpenAI says "stop" for a turn that called a tool named by tool_choice (FORMATS.md
 * §1.7); Anthropic says tool_use, and agent loops run tools only on tool_use. */
static const char *stop_reason(const char *finish, int called_tools)
{
    if (called_tools && finish && strcmp(finish, "stop") == 0)
        return "tool_use";
    return sl_anthropic_stop_reason(finish);
}

/* "msg_" + the id without OpenAI's "chatcmpl-" prefix. */
static int message_id(struct sl_buf *out, const char *id)
{
    if (strncmp(id, "chatcmpl-", 9) == 0)
        id += 9;
    return sl_buf_puts(out, "\"msg_") | sl_buf_puts(out, id[0] ? id : "sluice") |
           sl_buf_puts(out, "\"");
}

/* ---- whole replies ------------------------------------------------------------------ */

static int text_block(struct sl_buf *out, int *n, const char *text)
{
    if (!text || !text[0])
        return 0;
    return sl_buf_puts(out, (*n)++ ? ",{\"type\":\"text\",\"text\":" : "{\"type\":\"text\",\"text\":") |
           quote(out, text) | sl_buf_puts(out, "}");
}

/* Thinking blocks carry an empty signature: nothing upstream can sign them, the SDKs
 * accept any string, and a thinking block sent back is read only for its text. */
static int thinking_block(struct sl_buf *out, int *n, const char *thinking)
{
    if (!thinking || !thinking[0])
        return 0;
    return sl_buf_puts(out, (*n)++ ? ",{\"type\":\"thinking\",\"thinking\":" : "{\"type\":\"thinking\",\"thinking\":") | quote(out, thinking) |
           sl_buf_puts(out, ",\"signature\":\"\"}");
}

static int tool_blocks(struct sl_buf *out, int *n, const cJSON *calls)
{
    const cJSON *call;
    int rc = 0;
    cJSON_ArrayForEach(call, calls)
    {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(call, "function");
        rc |= sl_buf_puts(out, (*n)++ ? ",{\"type\":\"tool_use\",\"id\":" : "{\"type\":\"tool_use\",\"id\":");
        rc |= quote(out, sl_json_str(call, "id", "toolu_sluice"));
        rc |= sl_buf_puts(out, ",\"name\":") | quote(out, sl_json_str(fn, "name", ""));
        rc |= sl_buf_puts(out, ",\"input\":") | tool_input(out, sl_json_str(fn, "arguments", ""));
        rc |= sl_buf_puts(out, "}");
    }
    return rc;
}

static int encode_reply(const cJSON *completion, const struct sl_usage *u, struct sl_buf *out)
{
    const cJSON *choice = first_choice(completion);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    struct sl_usage use = {0};
    int n = 0, rc;
    if (u && u->present)
        use = *u;
    else if (!sl_openai_usage(completion, &use))
        use.completion = sl_openai_estimate_output(completion);
    rc = sl_buf_puts(out, "{\"id\":") | message_id(out, sl_json_str(completion, "id", ""));
    rc |= sl_buf_puts(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":");
    rc |= quote(out, sl_json_str(completion, "model", ""));
    rc |= sl_buf_puts(out, ",\"content\":[");
    rc |= thinking_block(out, &n, reasoning_of(msg));
    rc |= text_block(out, &n, sl_json_str(msg, "content", NULL));
    rc |= text_block(out, &n, sl_json_str(msg, "refusal", NULL));
    rc |= tool_blocks(out, &n, cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"));
    rc |= sl_buf_puts(out, "],\"stop_reason\":");
    rc |= quote(out, stop_reason(sl_json_str(choice, "finish_reason", NULL),
                                 cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(msg, "tool_calls")) > 0));
    rc |= sl_buf_puts(out, ",\"stop_sequence\":null,\"usage\":") | usage_json(out, &use);
    rc |= sl_buf_puts(out, "}");
    return rc ? -1 : 0;
}

/* ---- errors --------------------------------------------------------------------------- */

/* The status decides the type (Anthropic's table, anthropic.c): the canonical type
 * is OpenAI's vocabulary and would mislead an Anthropic SDK. */
static int error_json(const struct sl_error *e, struct sl_buf *out)
{
    return sl_buf_puts(out, "{\"type\":\"error\",\"error\":{\"type\":") |
           quote(out, sl_anthropic_error_type(e->status)) | sl_buf_puts(out, ",\"message\":") |
           quote(out, e->message) | sl_buf_puts(out, "}}");
}

static int error_body(const struct sl_error *e, struct sl_buf *out)
{
    return error_json(e, out) ? -1 : 0;
}

/* ---- streams -------------------------------------------------------------------------- */

enum block_kind { NO_BLOCK, TEXT_BLOCK, THINKING_BLOCK, TOOL_BLOCK };

struct stream {
    char id[100], model[128];
    int started;        /* message_start sent */
    enum block_kind kind;
    int index;          /* Anthropic index of the open block */
    int nblocks;        /* blocks started so far: the next index */
    int tool;           /* OpenAI tool_calls index of the open tool_use block */
    int ntools;         /* 1 + the highest tool index started */
    const char *stop;   /* Anthropic stop_reason once the finish chunk came */
    struct sl_usage seen; /* usage a chunk carried, when the pipeline left it there */
    int64_t est_output;
};

static void stream_init(void *st, const char *id, const char *model, int include_usage)
{
    struct stream *s = st;
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id ? id : "");
    snprintf(s->model, sizeof(s->model), "%s", model ? model : "");
    s->index = -1;
}

static int event(struct sl_buf *out, const char *name)
{
    return sl_buf_printf(out, "event: %s\ndata: ", name);
}

/* message_start with empty content, then a ping as the API sends. Input tokens of an
 * OpenAI-compatible upstream are known only at the end: message_start says 0 and
 * message_delta carries the whole usage (current SDKs take input counts from it). */
static int start(struct stream *s, struct sl_buf *out)
{
    static const struct sl_usage none;
    if (s->started)
        return 0;
    s->started = 1;
    int rc = event(out, "message_start");
    rc |= sl_buf_puts(out, "{\"type\":\"message_start\",\"message\":{\"id\":") | message_id(out, s->id);
    rc |= sl_buf_puts(out, ",\"type\":\"message\",\"role\":\"assistant\",\"model\":") | quote(out, s->model);
    rc |= sl_buf_puts(out, ",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":");
    rc |= usage_json(out, &none) | sl_buf_puts(out, "}}\n\n");
    return rc | event(out, "ping") | sl_buf_puts(out, "{\"type\": \"ping\"}\n\n");
}

static int close_block(struct stream *s, struct sl_buf *out)
{
    if (s->kind == NO_BLOCK)
        return 0;
    s->kind = NO_BLOCK;
    return event(out, "content_block_stop") |
           sl_buf_printf(out, "{\"type\":\"content_block_stop\",\"index\":%d}\n\n", s->index);
}

/* Closes the open block and starts one of kind; the caller appends the block's body
 * ("type" first) and the closing "}}\n\n". */
static int open_block(struct stream *s, enum block_kind kind, struct sl_buf *out)
{
    int rc = close_block(s, out);
    s->kind = kind;
    s->index = s->nblocks++;
    return rc | event(out, "content_block_start") |
           sl_buf_printf(out, "{\"type\":\"content_block_start\",\"index\":%d,\"content_block\":",
                         s->index);
}

static int delta(struct stream *s, const char *type, const char *field, const char *text,
                 struct sl_buf *out)
{
    return event(out, "content_block_delta") |
           sl_buf_printf(out, "{\"type\":\"content_block_delta\",\"index\":%d,\"delta\":{\"type\":\"%s\",\"%s\":",
                         s->index, type, field) |
           quote(out, text) | sl_buf_puts(out, "}}\n\n");
}

/* Text and thinking: a block opens on the first non-empty piece (providers start with
 * empty deltas) and stays open while the kind does not change. */
static int text_piece(struct stream *s, enum block_kind kind, const char *text, struct sl_buf *out)
{
    int rc = 0;
    if (!text || !text[0])
        return 0;
    if (s->kind != kind) {
        rc = open_block(s, kind, out);
        rc |= sl_buf_puts(out, kind == THINKING_BLOCK ? "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}}\n\n"
                                                      : "{\"type\":\"text\",\"text\":\"\"}}\n\n");
    }
    return rc | (kind == THINKING_BLOCK ? delta(s, "thinking_delta", "thinking", text, out)
                                        : delta(s, "text_delta", "text", text, out));
}

static int open_tool(struct stream *s, int idx, const cJSON *tc, struct sl_buf *out)
{
    const char *id = sl_json_str(tc, "id", "");
    const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tc, "function");
    int rc = open_block(s, TOOL_BLOCK, out);
    s->tool = idx;
    s->ntools = idx + 1;
    rc |= sl_buf_puts(out, "{\"type\":\"tool_use\",\"id\":");
    if (id[0])
        rc |= quote(out, id);
    else /* DashScope-style fragments may lack an id: make one that is unique here */
        rc |= sl_buf_puts(out, "\"toolu_") | sl_buf_puts(out, s->id) | sl_buf_printf(out, "_%d\"", idx);
    rc |= sl_buf_puts(out, ",\"name\":") | quote(out, sl_json_str(fn, "name", ""));
    return rc | sl_buf_puts(out, ",\"input\":{}}}\n\n");
}

/* A new tool call index starts a new tool_use block. Fragments of a call whose block
 * is already closed cannot be placed (Anthropic blocks never reopen); OpenAI-compatible
 * providers send each call's fragments contiguously, so this does not happen in practice. */
static int tool_piece(struct stream *s, const cJSON *tc, struct sl_buf *out)
{
    int idx = (int)sl_json_int(tc, "index", 0), rc = 0;
    if (s->kind != TOOL_BLOCK || idx != s->tool) {
        if (idx < s->ntools)
            return 0;
        rc = open_tool(s, idx, tc, out);
    }
    const char *args = sl_json_str(cJSON_GetObjectItemCaseSensitive(tc, "function"), "arguments", "");
    return rc | (args[0] ? delta(s, "input_json_delta", "partial_json", args, out) : 0);
}

static int stream_chunk(void *st, const cJSON *chunk, struct sl_buf *out)
{
    struct stream *s = st;
    int rc = start(s, out);
    sl_openai_usage(chunk, &s->seen);
    s->est_output += sl_openai_estimate_output(chunk);
    const cJSON *choice = first_choice(chunk); /* Anthropic has no n: choice 0 only */
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(choice, "delta"), *tc;
    rc |= text_piece(s, THINKING_BLOCK, reasoning_of(d), out);
    rc |= text_piece(s, TEXT_BLOCK, sl_json_str(d, "content", NULL), out);
    rc |= text_piece(s, TEXT_BLOCK, sl_json_str(d, "refusal", NULL), out);
    cJSON_ArrayForEach(tc, cJSON_GetObjectItemCaseSensitive(d, "tool_calls")) rc |= tool_piece(s, tc, out);
    const char *finish = sl_json_str(choice, "finish_reason", NULL);
    if (finish) {
        rc |= close_block(s, out);
        s->stop = stop_reason(finish, s->ntools > 0);
    }
    return rc ? -1 : 0;
}

/* message_delta carries the stop reason and the whole usage: the upstream's, else what
 * a chunk carried, else the output estimated from the text sent. */
static int stream_end(void *st, const struct sl_usage *u, struct sl_buf *out)
{
    struct stream *s = st;
    struct sl_usage use = {0};
    int rc = start(s, out) | close_block(s, out);
    if (u && u->present)
        use = *u;
    else if (s->seen.present)
        use = s->seen;
    else
        use.completion = s->est_output;
    rc |= event(out, "message_delta") |
          sl_buf_puts(out, "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":") |
          quote(out, s->stop ? s->stop : "end_turn") |
          sl_buf_puts(out, ",\"stop_sequence\":null},\"usage\":") | usage_json(out, &use) |
          sl_buf_puts(out, "}\n\n");
    rc |= event(out, "message_stop") | sl_buf_puts(out, "{\"type\":\"message_stop\"}\n\n");
    return rc ? -1 : 0;
}

/* Anthropic ends a failed stream with the error event alone (§2.7): no message_stop,
 * which would tell the SDK the message is complete. */
static int stream_error(void *st, const struct sl_error *e, struct sl_buf *out)
{
    return event(out, "error") | error_json(e, out) | sl_buf_puts(out, "\n\n") ? -1 : 0;
}

static void stream_release(void *st)
{
}

static cJSON *decode_request(const char *body, size_t len, struct sl_error *e)
{
    return sl_anthropic_client_decode(body, len, 1, e);
}

const struct sl_client_format sl_anthropic_client = {
    .name = "anthropic",
    .decode_request = decode_request,
    .encode_reply = encode_reply,
    .stream_size = sizeof(struct stream),
    .stream_init = stream_init,
    .stream_chunk = stream_chunk,
    .stream_end = stream_end,
    .stream_error = stream_error,
    .stream_release = stream_release,
    .error_body = error_body,
};
