/* Anthropic Messages providers (kind: anthropic), request side: a canonical OpenAI
 * Chat request becomes a Messages request (FORMATS.md §4.2). Anthropic rejects unknown
 * fields, so this builds the request from scratch and copies only what it maps. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "formats/anthropic.h"
#include "formats/format.h"

/* Thinking budgets for OpenAI's reasoning_effort words. Anthropic's minimum budget is
 * 1024; the others grow by four so that "high" is clearly more than "medium". */
static const struct {
    const char *effort;
    int budget;
} efforts[] = {
    {"minimal", 1024}, {"low", 1024}, {"medium", 4096}, {"high", 16384}, {"xhigh", 32768},
};

#define MIN_THINKING_BUDGET 1024
#define DEFAULT_THINKING_BUDGET 4096 /* a thinking field without budget_tokens: "medium" */

/* Said to the model for response_format json_object: Anthropic has no JSON mode
 * without a schema, so the instruction goes into the system prompt. */
#define JSON_OBJECT_INSTRUCTION \
    "Reply with one valid JSON object and nothing else: no prose before or after it, no code fences."

struct enc {
    const cJSON *req;
    cJSON *out;      /* the Messages request */
    cJSON *system;   /* text blocks, attached to out at the end when non-empty */
    cJSON *messages; /* attached to out */
    int64_t max_tokens;
    int max_tokens_given; /* the client chose max_tokens (a thinking budget must fit it) */
    int oom;
    struct sl_error *e;
};

static int fail(struct enc *x, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct enc *x, const char *param, const char *fmt, ...)
{
    char msg[sizeof(x->e->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl_error_set(x->e, 400, "invalid_request_error", "%s", msg);
    snprintf(x->e->param, sizeof(x->e->param), "%s", param ? param : "");
    return -1;
}

/* Attaches item to parent (an object when key is set, else an array). On failure
 * the item is freed and the encoder marked out of memory, so callers may chain. */
static cJSON *add(struct enc *x, cJSON *parent, const char *key, cJSON *item)
{
    int ok = item && parent &&
             (key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item));
    if (!ok) {
        cJSON_Delete(item);
        x->oom = 1;
        return NULL;
    }
    return item;
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Anthropic rejects empty text blocks, so they are never written. */
static void add_text(struct enc *x, cJSON *blocks, const char *text)
{
    if (!text || !text[0])
        return;
    cJSON *b = add(x, blocks, NULL, cJSON_CreateObject());
    add(x, b, "type", cJSON_CreateString("text"));
    add(x, b, "text", cJSON_CreateString(text));
}

/* data: URLs become base64 sources, http(s) URLs url sources. */
static int add_image(struct enc *x, cJSON *blocks, const cJSON *part)
{
    const char *url = sl_json_str(get(part, "image_url"), "url", NULL);
    if (!url)
        url = sl_json_str(part, "image_url", NULL);
    if (!url)
        return fail(x, "messages", "an image_url part has no url");
    cJSON *src = cJSON_CreateObject();
    if (strncmp(url, "data:", 5) == 0) {
        const char *comma = strchr(url, ',');
        const char *semi = strchr(url, ';');
        if (!comma || !semi || semi > comma || comma - semi < 7 ||
            strncmp(comma - 7, ";base64", 7) != 0) {
            cJSON_Delete(src);
            return fail(x, "messages", "an image data: URL must be base64 (data:TYPE;base64,...)");
        }
        char media[128];
        snprintf(media, sizeof(media), "%.*s", (int)(semi - url - 5), url + 5);
        add(x, src, "type", cJSON_CreateString("base64"));
        add(x, src, "media_type", cJSON_CreateString(media));
        add(x, src, "data", cJSON_CreateString(comma + 1));
    } else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
        add(x, src, "type", cJSON_CreateString("url"));
        add(x, src, "url", cJSON_CreateString(url));
    } else {
        cJSON_Delete(src);
        return fail(x, "messages", "an image url must be a data: URL or an http(s) URL");
    }
    cJSON *b = add(x, blocks, NULL, cJSON_CreateObject());
    add(x, b, "type", cJSON_CreateString("image"));
    add(x, b, "source", src);
    return 0;
}

/* A message's content (string, null or array of parts) -> blocks. */
static int add_content(struct enc *x, cJSON *blocks, const cJSON *content, int images)
{
    const cJSON *part;
    if (cJSON_IsString(content) || !content || cJSON_IsNull(content)) {
        add_text(x, blocks, cJSON_IsString(content) ? content->valuestring : NULL);
        return 0;
    }
    if (!cJSON_IsArray(content))
        return fail(x, "messages", "a message's content must be a string or an array of parts");
    cJSON_ArrayForEach(part, content)
    {
        const char *type = sl_json_str(part, "type", "");
        if (strcmp(type, "text") == 0)
            add_text(x, blocks, sl_json_str(part, "text", NULL));
        else if (strcmp(type, "refusal") == 0)
            continue; /* an earlier refusal is not something the model said to continue */
        else if (strcmp(type, "image_url") == 0 && images) {
            if (add_image(x, blocks, part))
                return -1;
        } else
            return fail(x, "messages", "content parts of type '%.40s' cannot be sent to Anthropic here",
                        type);
    }
    return 0;
}

static int add_tool_use(struct enc *x, cJSON *blocks, const cJSON *call)
{
    const cJSON *fn = get(call, "function");
    const char *id = sl_json_str(call, "id", NULL), *name = sl_json_str(fn, "name", NULL);
    const char *args = sl_json_str(fn, "arguments", "");
    if (!id || !name)
        return fail(x, "messages", "an assistant tool call needs an id and a function name");
    /* Anthropic wants the arguments as an object, OpenAI sends them as a JSON string. */
    cJSON *input = args[strspn(args, " \t\r\n")] ? cJSON_Parse(args) : cJSON_CreateObject();
    if (!cJSON_IsObject(input)) {
        cJSON_Delete(input);
        return fail(x, "messages", "the arguments of tool call '%.64s' are not a JSON object", id);
    }
    cJSON *b = add(x, blocks, NULL, cJSON_CreateObject());
    add(x, b, "type", cJSON_CreateString("tool_use"));
    add(x, b, "id", cJSON_CreateString(id));
    add(x, b, "name", cJSON_CreateString(name));
    add(x, b, "input", input);
    return 0;
}

/* The assistant's text, then its tool calls. reasoning_content is not sent back:
 * Anthropic only accepts thinking blocks with the signature OpenAI clients drop. */
static int assistant_blocks(struct enc *x, cJSON *blocks, const cJSON *msg)
{
    const cJSON *call;
    if (add_content(x, blocks, get(msg, "content"), 0))
        return -1;
    cJSON_ArrayForEach(call, get(msg, "tool_calls"))
    {
        if (add_tool_use(x, blocks, call))
            return -1;
    }
    return 0;
}

static int tool_result_block(struct enc *x, cJSON *blocks, const cJSON *msg)
{
    const char *id = sl_json_str(msg, "tool_call_id", NULL);
    if (!id)
        return fail(x, "messages", "a tool message needs a tool_call_id");
    cJSON *b = add(x, blocks, NULL, cJSON_CreateObject());
    add(x, b, "type", cJSON_CreateString("tool_result"));
    add(x, b, "tool_use_id", cJSON_CreateString(id));
    cJSON *content = cJSON_CreateArray();
    if (add_content(x, content, get(msg, "content"), 1)) {
        cJSON_Delete(content);
        return -1;
    }
    if (cJSON_GetArraySize(content) > 0)
        add(x, b, "content", content);
    else
        cJSON_Delete(content); /* an empty result is sent without content */
    return 0;
}

/* Appends a turn. Anthropic wants user and assistant turns to alternate, so a turn
 * of the previous turn's role is merged into it: this is also what groups
 * consecutive tool messages into one user message of tool_result blocks. */
static void append_turn(struct enc *x, const char *role, cJSON *blocks)
{
    cJSON *last = cJSON_GetArrayItem(x->messages, cJSON_GetArraySize(x->messages) - 1);
    if (cJSON_GetArraySize(blocks) == 0) {
        cJSON_Delete(blocks); /* empty content is rejected; the turn said nothing */
        return;
    }
    if (last && strcmp(sl_json_str(last, "role", ""), role) == 0) {
        cJSON *into = cJSON_GetObjectItemCaseSensitive(last, "content");
        cJSON *b;
        while ((b = cJSON_DetachItemFromArray(blocks, 0)))
            if (!cJSON_AddItemToArray(into, b)) /* into is NULL only after running out of memory */
                cJSON_Delete(b);
        cJSON_Delete(blocks);
        return;
    }
    cJSON *turn = add(x, x->messages, NULL, cJSON_CreateObject());
    add(x, turn, "role", cJSON_CreateString(role));
    add(x, turn, "content", blocks);
}

static int encode_message(struct enc *x, const cJSON *msg)
{
    const char *role = sl_json_str(msg, "role", "");
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
        return add_content(x, x->system, get(msg, "content"), 0); /* wherever it stood */
    cJSON *blocks = cJSON_CreateArray();
    int rc;
    if (!blocks) {
        x->oom = 1;
        return -1;
    }
    if (strcmp(role, "user") == 0)
        rc = add_content(x, blocks, get(msg, "content"), 1);
    else if (strcmp(role, "assistant") == 0)
        rc = assistant_blocks(x, blocks, msg);
    else if (strcmp(role, "tool") == 0)
        rc = tool_result_block(x, blocks, msg);
    else
        rc = fail(x, "messages", "messages of role '%.32s' cannot be sent to Anthropic", role);
    if (rc) {
        cJSON_Delete(blocks);
        return -1;
    }
    append_turn(x, strcmp(role, "assistant") == 0 ? "assistant" : "user", blocks);
    return 0;
}

/* A final assistant turn is a prefill, and Anthropic refuses one that ends in white
 * space; the trailing white space carries no meaning for the continuation. */
static void trim_prefill(cJSON *messages)
{
    int nturns = cJSON_GetArraySize(messages);
    cJSON *last = cJSON_GetArrayItem(messages, nturns - 1);
    cJSON *content = cJSON_GetObjectItemCaseSensitive(last, "content");
    int nblocks = cJSON_GetArraySize(content);
    cJSON *text = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(content, nblocks - 1), "text");
    if (strcmp(sl_json_str(last, "role", ""), "assistant") != 0 || !cJSON_IsString(text))
        return;
    size_t n = strlen(text->valuestring);
    while (n && strchr(" \t\r\n", text->valuestring[n - 1]))
        n--;
    text->valuestring[n] = '\0'; /* shortening in place keeps cJSON's allocation valid */
    if (n == 0) /* an empty text block would be rejected: drop it, and the turn if bare */
        cJSON_DeleteItemFromArray(nblocks > 1 ? content : messages, nblocks > 1 ? nblocks - 1 : nturns - 1);
}

static int encode_messages(struct enc *x)
{
    const cJSON *msg;
    cJSON_ArrayForEach(msg, get(x->req, "messages"))
    {
        if (encode_message(x, msg))
            return -1;
    }
    if (cJSON_GetArraySize(x->messages) == 0)
        return fail(x, "messages", "Anthropic needs at least one user or assistant message with content");
    trim_prefill(x->messages);
    return 0;
}

static int encode_max_tokens(struct enc *x)
{
    const cJSON *v = get(x->req, "max_completion_tokens");
    const char *param = "max_completion_tokens";
    if (!v || cJSON_IsNull(v)) {
        v = get(x->req, "max_tokens");
        param = "max_tokens";
    }
    x->max_tokens = SL_ANTHROPIC_DEFAULT_MAX_TOKENS;
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!sl_json_is_int(v) || v->valuedouble < 1)
        return fail(x, param, "'%s' must be a positive integer", param);
    x->max_tokens = sl_json_clamp_int(v->valuedouble);
    x->max_tokens_given = 1;
    return 0;
}

static int encode_stop(struct enc *x)
{
    const cJSON *stop = get(x->req, "stop"), *s;
    if (!stop || cJSON_IsNull(stop))
        return 0;
    cJSON *seqs = add(x, x->out, "stop_sequences", cJSON_CreateArray());
    if (cJSON_IsString(stop)) {
        add(x, seqs, NULL, cJSON_CreateString(stop->valuestring));
        return 0;
    }
    if (!cJSON_IsArray(stop))
        return fail(x, "stop", "'stop' must be a string or an array of strings");
    cJSON_ArrayForEach(s, stop)
    {
        if (!cJSON_IsString(s))
            return fail(x, "stop", "'stop' must be a string or an array of strings");
        add(x, seqs, NULL, cJSON_CreateString(s->valuestring));
    }
    return 0;
}

/* temperature, top_p, top_k (an extension OpenAI lacks), n. */
static int encode_sampling(struct enc *x)
{
    const cJSON *t = get(x->req, "temperature");
    if (cJSON_IsNumber(t)) {
        /* Silently clamping would change the answer's character without saying so. */
        if (t->valuedouble > 1 || t->valuedouble < 0)
            return fail(x, "temperature",
                        "temperature %g is outside 0..1, the range Anthropic models accept "
                        "(OpenAI allows up to 2); send a value between 0 and 1",
                        t->valuedouble);
        add(x, x->out, "temperature", cJSON_CreateNumber(t->valuedouble));
    } else if (t && !cJSON_IsNull(t))
        return fail(x, "temperature", "'temperature' must be a number");
    const cJSON *top_p = get(x->req, "top_p"), *top_k = get(x->req, "top_k");
    if (cJSON_IsNumber(top_p))
        add(x, x->out, "top_p", cJSON_CreateNumber(top_p->valuedouble));
    if (cJSON_IsNumber(top_k))
        add(x, x->out, "top_k", cJSON_CreateNumber(top_k->valuedouble));
    if (sl_json_int(x->req, "n", 1) > 1)
        return fail(x, "n", "Anthropic returns one choice per request; 'n' must be 1");
    return 0;
}

static int encode_tool(struct enc *x, cJSON *tools, const cJSON *tool)
{
    const cJSON *fn = get(tool, "function");
    const char *type = sl_json_str(tool, "type", "function");
    const char *name = sl_json_str(fn, "name", NULL);
    if (strcmp(type, "function") != 0 || !name)
        return fail(x, "tools", "only function tools with a name can be sent to Anthropic");
    const cJSON *params = get(fn, "parameters");
    const char *description = sl_json_str(fn, "description", NULL);
    cJSON *t = add(x, tools, NULL, cJSON_CreateObject());
    add(x, t, "name", cJSON_CreateString(name));
    if (description)
        add(x, t, "description", cJSON_CreateString(description));
    /* A function without parameters takes no arguments; Anthropic wants that said. */
    add(x, t, "input_schema",
        cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) : cJSON_Parse("{\"type\":\"object\"}"));
    return 0;
}

static int encode_tool_choice(struct enc *x)
{
    const cJSON *tc = get(x->req, "tool_choice");
    const char *type = "auto", *name = NULL;
    if (cJSON_IsString(tc)) {
        type = strcmp(tc->valuestring, "required") == 0 ? "any" : tc->valuestring;
        if (strcmp(type, "auto") != 0 && strcmp(type, "any") != 0 && strcmp(type, "none") != 0)
            return fail(x, "tool_choice", "tool_choice must be none, auto, required or a function");
    } else if (cJSON_IsObject(tc)) {
        name = sl_json_str(get(tc, "function"), "name", NULL);
        if (!name)
            return fail(x, "tool_choice", "a tool_choice object must name a function");
        type = "tool";
    } else if (tc && !cJSON_IsNull(tc))
        return fail(x, "tool_choice", "tool_choice must be none, auto, required or a function");
    int serial = cJSON_IsFalse(get(x->req, "parallel_tool_calls")) && strcmp(type, "none") != 0;
    if (!tc && !serial)
        return 0; /* Anthropic's default is auto already */
    cJSON *choice = add(x, x->out, "tool_choice", cJSON_CreateObject());
    add(x, choice, "type", cJSON_CreateString(type));
    if (name)
        add(x, choice, "name", cJSON_CreateString(name));
    if (serial)
        add(x, choice, "disable_parallel_tool_use", cJSON_CreateTrue());
    return 0;
}

/* Without tools, tool_choice and parallel_tool_calls mean nothing and are dropped. */
static int encode_tools(struct enc *x)
{
    const cJSON *tools = get(x->req, "tools"), *tool;
    if (!cJSON_IsArray(tools) || cJSON_GetArraySize(tools) == 0)
        return 0;
    cJSON *out = add(x, x->out, "tools", cJSON_CreateArray());
    cJSON_ArrayForEach(tool, tools)
    {
        if (encode_tool(x, out, tool))
            return -1;
    }
    return encode_tool_choice(x);
}

/* json_schema -> output_config.format (Anthropic's structured outputs); json_object
 * has no schema to give, so it becomes a system instruction. */
static int encode_response_format(struct enc *x)
{
    const cJSON *rf = get(x->req, "response_format");
    const char *type = sl_json_str(rf, "type", "text");
    if (!rf || cJSON_IsNull(rf) || strcmp(type, "text") == 0)
        return 0;
    if (strcmp(type, "json_object") == 0) {
        add_text(x, x->system, JSON_OBJECT_INSTRUCTION);
        return 0;
    }
    const cJSON *schema = get(get(rf, "json_schema"), "schema");
    if (strcmp(type, "json_schema") != 0 || !cJSON_IsObject(schema))
        return fail(x, "response_format",
                    "response_format must be text, json_object, or json_schema with a schema");
    cJSON *format = add(x, add(x, x->out, "output_config", cJSON_CreateObject()), "format",
                        cJSON_CreateObject());
    add(x, format, "type", cJSON_CreateString("json_schema"));
    add(x, format, "schema", cJSON_Duplicate(schema, 1));
    return 0;
}

static int effort_budget(struct enc *x, const char *effort, int *budget)
{
    *budget = 0;
    if (strcmp(effort, "none") == 0)
        return 0;
    for (size_t i = 0; i < sizeof(efforts) / sizeof(efforts[0]); i++)
        if (strcmp(efforts[i].effort, effort) == 0)
            return *budget = efforts[i].budget, 0;
    return fail(x, "reasoning_effort", "reasoning_effort '%.32s' is not one of none, minimal, low, "
                "medium, high, xhigh", effort);
}

/* A budget must stay below max_tokens: a chosen max_tokens bounds the budget, a
 * default one grows to leave room for the answer. */
static int fit_budget(struct enc *x, int64_t *budget)
{
    if (!x->max_tokens_given) {
        x->max_tokens = *budget + SL_ANTHROPIC_DEFAULT_MAX_TOKENS;
        return 0;
    }
    if (x->max_tokens <= MIN_THINKING_BUDGET)
        return fail(x, "max_tokens", "thinking on Anthropic needs max_tokens above %d",
                    MIN_THINKING_BUDGET);
    if (*budget >= x->max_tokens)
        *budget = x->max_tokens - 1;
    return 0;
}

/* The thinking extension field (Anthropic's own shape) wins over reasoning_effort. */
static int encode_thinking(struct enc *x)
{
    const cJSON *th = get(x->req, "thinking");
    const char *effort = sl_json_str(x->req, "reasoning_effort", NULL);
    const char *type = sl_json_str(th, "type", "enabled");
    int budget = 0;
    if (cJSON_IsObject(th) && strcmp(type, "enabled") != 0) {
        add(x, x->out, "thinking", cJSON_Duplicate(th, 1)); /* disabled, adaptive */
        return 0;
    }
    if (cJSON_IsObject(th))
        budget = (int)sl_json_int(th, "budget_tokens", 0);
    else if (effort && effort_budget(x, effort, &budget))
        return -1;
    if (!budget && !cJSON_IsObject(th))
        return 0;
    int64_t b = budget ? budget : DEFAULT_THINKING_BUDGET;
    if (fit_budget(x, &b))
        return -1;
    cJSON *out = add(x, x->out, "thinking", cJSON_CreateObject());
    add(x, out, "type", cJSON_CreateString("enabled"));
    add(x, out, "budget_tokens", cJSON_CreateNumber((double)b));
    return 0;
}

static void encode_metadata(struct enc *x)
{
    const char *user = sl_json_str(x->req, "user", NULL);
    if (!user)
        user = sl_json_str(x->req, "safety_identifier", NULL);
    if (user && user[0])
        add(x, add(x, x->out, "metadata", cJSON_CreateObject()), "user_id", cJSON_CreateString(user));
}

static int build(struct enc *x, const struct sl_model_cfg *m, int stream)
{
    add(x, x->out, "model", cJSON_CreateString(m->model));
    if (encode_max_tokens(x) || encode_messages(x) || encode_stop(x) || encode_sampling(x) ||
        encode_tools(x) || encode_response_format(x) || encode_thinking(x))
        return -1;
    encode_metadata(x);
    add(x, x->out, "max_tokens", cJSON_CreateNumber((double)x->max_tokens));
    if (cJSON_GetArraySize(x->system) > 0) {
        add(x, x->out, "system", x->system);
        x->system = NULL;
    }
    if (stream)
        add(x, x->out, "stream", cJSON_CreateTrue());
    return 0;
}

/* base_url is the API root (https://api.anthropic.com); one that already ends in
 * /v1, as some SDK settings are written, is accepted too. */
static const char *messages_url(struct sl_arena *a, const char *base)
{
    size_t n = strlen(base);
    int v1 = n >= 3 && strcmp(base + n - 3, "/v1") == 0;
    return sl_arena_sprintf(a, "%s%s", base, v1 ? "/messages" : "/v1/messages");
}

static int finish(struct enc *x, const struct sl_model_cfg *m, int stream, struct sl_arena *a,
                  struct sl_encoded *out)
{
    char *body = cJSON_PrintUnformatted(x->out);
    if (!body)
        return -1;
    out->len = strlen(body);
    out->body = sl_arena_strndup(a, body, out->len);
    cJSON_free(body);
    out->url = messages_url(a, m->p && m->p->base_url ? m->p->base_url : "");
    out->nheaders = 0;
    out->headers[out->nheaders++] = "content-type: application/json";
    out->headers[out->nheaders++] = "anthropic-version: " SL_ANTHROPIC_VERSION;
    out->headers[out->nheaders++] = stream ? "accept: text/event-stream" : "accept: application/json";
    if (m->p && m->p->api_key && m->p->api_key[0]) {
        out->headers[out->nheaders] = sl_arena_sprintf(a, "x-api-key: %s", m->p->api_key);
        if (!out->headers[out->nheaders++])
            return -1;
    }
    return out->body && out->url ? 0 : -1;
}

static int encode(const cJSON *req, const struct sl_model_cfg *m, int stream, struct sl_arena *a,
                  struct sl_encoded *out, struct sl_error *e)
{
    struct enc x = {.req = req, .e = e};
    x.out = cJSON_CreateObject();
    x.system = cJSON_CreateArray();
    x.messages = add(&x, x.out, "messages", cJSON_CreateArray());
    if (!x.out || !x.system)
        x.oom = 1;
    int rc = x.oom ? -1 : build(&x, m, stream);
    if (!rc && !x.oom && finish(&x, m, stream, a, out))
        x.oom = 1;
    if (x.oom)
        sl_error_set(e, 500, "api_error", "out of memory");
    cJSON_Delete(x.system);
    cJSON_Delete(x.out);
    return x.oom ? -1 : rc;
}

const struct sl_upstream_format sl_anthropic_upstream = {
    .wire = SL_WIRE_ANTHROPIC,
    .encode = encode,
    .decode_reply = sl_anthropic_decode_reply,
    .decode_error = sl_anthropic_decode_error,
    .stream_size = sizeof(struct sl_anthropic_stream),
    .stream_init = sl_anthropic_stream_init,
    .stream_event = sl_anthropic_stream_event,
    .stream_end = sl_anthropic_stream_end,
    .stream_release = sl_anthropic_stream_release,
    .sniff_usage = sl_anthropic_sniff_usage,
};
