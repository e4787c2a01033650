/* Anthropic Messages requests -> canonical OpenAI Chat requests (FORMATS.md §4.4), with
 * Anthropic's validation wording, and count_tokens on top of the same decoding. Replies
 * and streams go back to the client in anthropic_client_reply.c. */
#include "formats/anthropic_client.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/limits.h"
#include "meter/estimate.h"

/* Joined texts and data: URLs are built from the body, which the server already capped. */
#define TEXT_MAX SL_MAX_UPSTREAM_BODY

/* thinking.budget_tokens -> reasoning_effort. The thresholds sit between the budgets
 * Claude Code asks for ("think" 4000, "think hard" 10000, "ultrathink" 31999). */
#define EFFORT_LOW_BELOW    8000
#define EFFORT_MEDIUM_BELOW 16000

static int bad(struct sl_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(struct sl_error *e, const char *fmt, ...)
{
    char msg[sizeof(e->message)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sl_error_set(e, 400, "invalid_request_error", "%s", msg);
    return -1;
}

static int oom(struct sl_error *e)
{
    sl_error_set(e, 500, "api_error", "out of memory");
    return -1;
}

/* Adds item to an object (key) or an array (key NULL); frees the item when that fails,
 * so callers never leak on the error path. */
static int put(cJSON *to, const char *key, cJSON *item)
{
    if (!item)
        return -1;
    if (key ? cJSON_AddItemToObject(to, key, item) : cJSON_AddItemToArray(to, item))
        return 0;
    cJSON_Delete(item);
    return -1;
}

static int put_str(cJSON *to, const char *key, const char *s)
{
    return put(to, key, cJSON_CreateString(s));
}

static int join(struct sl_buf *b, const char *sep, const char *s)
{
    if (b->len && sl_buf_puts(b, sep))
        return -1;
    return sl_buf_puts(b, s);
}

/* Where an error is: the Anthropic message and block being converted. */
struct conv {
    cJSON *out; /* the canonical messages array */
    struct sl_error *e;
    int msg, block;
};

static int unsupported(struct conv *c, const char *type)
{
    return bad(c->e, "messages.%d.content.%d: content blocks of type '%.40s' cannot be sent to "
                     "an OpenAI-compatible model", c->msg, c->block, type);
}

static const char *str_field(struct conv *c, const cJSON *b, const char *key)
{
    const char *s = sl_json_str(b, key, NULL);
    if (!s)
        bad(c->e, "messages.%d.content.%d.%s: Field required (a string)", c->msg, c->block, key);
    return s;
}

/* ---- user turns ------------------------------------------------------------------ */

static int image_part(struct conv *c, const cJSON *b, cJSON *parts)
{
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(b, "source");
    const char *type = sl_json_str(src, "type", "");
    struct sl_buf url = SL_BUF_INIT(TEXT_MAX);
    int rc;
    if (strcmp(type, "base64") == 0) {
        const char *mt = sl_json_str(src, "media_type", NULL), *data = sl_json_str(src, "data", NULL);
        if (!mt || !data)
            return bad(c->e, "messages.%d.content.%d.source: media_type and data are required",
                       c->msg, c->block);
        rc = sl_buf_printf(&url, "data:%s;base64,", mt) | sl_buf_puts(&url, data);
    } else if (strcmp(type, "url") == 0 && sl_json_str(src, "url", NULL)) {
        rc = sl_buf_puts(&url, sl_json_str(src, "url", ""));
    } else {
        return bad(c->e, "messages.%d.content.%d.source.type: Input should be 'base64' or 'url'",
                   c->msg, c->block);
    }
    cJSON *part = cJSON_CreateObject(), *iu = cJSON_CreateObject();
    if (!rc && part && iu)
        rc = put_str(part, "type", "image_url") | put_str(iu, "url", url.ptr);
    else
        rc = -1;
    sl_buf_release(&url);
    if (!rc && put(part, "image_url", iu) == 0)
        return put(parts, NULL, part) ? oom(c->e) : 0;
    if (rc)
        cJSON_Delete(iu);
    cJSON_Delete(part);
    return oom(c->e);
}

/* A tool_result's content (string or blocks) as the text of a tool message; is_error
 * has no OpenAI field, so it is said in the text where the model reads it. */
static int tool_result_text(struct conv *c, const cJSON *b, struct sl_buf *t)
{
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(b, "content"), *x;
    int rc = sl_json_bool(b, "is_error", 0) ? sl_buf_puts(t, "Error: ") : 0;
    if (cJSON_IsString(content))
        return rc | sl_buf_puts(t, content->valuestring) ? oom(c->e) : 0;
    if (content && !cJSON_IsArray(content) && !cJSON_IsNull(content))
        return bad(c->e, "messages.%d.content.%d.content: Input should be a valid string or list",
                   c->msg, c->block);
    size_t start = t->len;
    cJSON_ArrayForEach(x, content)
    {
        const char *type = sl_json_str(x, "type", "");
        if (t->len > start)
            rc |= sl_buf_puts(t, "\n");
        if (strcmp(type, "text") == 0)
            rc |= sl_buf_puts(t, sl_json_str(x, "text", ""));
        else if (strcmp(type, "image") == 0) /* OpenAI tool messages carry text only */
            rc |= sl_buf_puts(t, "[image omitted: this model receives tool results as text]");
        else
            return unsupported(c, type);
    }
    return rc ? oom(c->e) : 0;
}

static int tool_result(struct conv *c, const cJSON *b)
{
    const char *id = str_field(c, b, "tool_use_id");
    if (!id)
        return -1;
    struct sl_buf text = SL_BUF_INIT(TEXT_MAX);
    if (tool_result_text(c, b, &text)) {
        sl_buf_release(&text);
        return -1;
    }
    cJSON *m = cJSON_CreateObject();
    int rc = !m || put_str(m, "role", "tool") || put_str(m, "tool_call_id", id) ||
             put_str(m, "content", text.ptr ? text.ptr : "");
    sl_buf_release(&text);
    if (rc) {
        cJSON_Delete(m);
        return oom(c->e);
    }
    return put(c->out, NULL, m) ? oom(c->e) : 0;
}

/* The user's text and images, after the tool messages: all-text turns become one
 * string (what every OpenAI-compatible provider accepts), others a parts array. */
static int add_user(struct conv *c, cJSON *parts, int only_text)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || put_str(m, "role", "user"))
        goto fail;
    if (only_text) {
        struct sl_buf t = SL_BUF_INIT(TEXT_MAX);
        const cJSON *p;
        int rc = 0;
        cJSON_ArrayForEach(p, parts) rc |= join(&t, "\n", sl_json_str(p, "text", ""));
        rc = rc || put_str(m, "content", t.ptr ? t.ptr : "");
        sl_buf_release(&t);
        cJSON_Delete(parts);
        if (rc)
            goto fail_m;
    } else if (put(m, "content", parts)) {
        goto fail_m;
    }
    return put(c->out, NULL, m) ? oom(c->e) : 0;
fail:
    cJSON_Delete(parts);
fail_m:
    cJSON_Delete(m);
    return oom(c->e);
}

static int text_part(struct conv *c, const cJSON *b, cJSON *parts)
{
    const char *text = str_field(c, b, "text");
    if (!text)
        return -1;
    if (!text[0])
        return 0; /* Anthropic refuses empty text blocks; some upstreams do too */
    cJSON *p = cJSON_CreateObject();
    if (!p || put_str(p, "type", "text") || put_str(p, "text", text) || put(parts, NULL, p)) {
        cJSON_Delete(p);
        return oom(c->e);
    }
    return 0;
}

static int user_block(struct conv *c, const cJSON *b, cJSON *parts, int *only_text, int *tools)
{
    const char *type = sl_json_str(b, "type", NULL);
    if (!type)
        return bad(c->e, "messages.%d.content.%d.type: Field required", c->msg, c->block);
    if (strcmp(type, "text") == 0)
        return text_part(c, b, parts);
    if (strcmp(type, "image") == 0) {
        *only_text = 0;
        return image_part(c, b, parts);
    }
    if (strcmp(type, "tool_result") == 0) {
        ++*tools;
        return tool_result(c, b);
    }
    return unsupported(c, type);
}

/* tool_result blocks become tool messages first, so that they directly follow the
 * assistant message that made the calls; the turn's other blocks come after. */
static int user_blocks(struct conv *c, const cJSON *blocks)
{
    cJSON *parts = cJSON_CreateArray();
    const cJSON *b;
    int only_text = 1, tools = 0, rc = 0;
    if (!parts)
        return oom(c->e);
    c->block = 0;
    cJSON_ArrayForEach(b, blocks)
    {
        if ((rc = user_block(c, b, parts, &only_text, &tools)))
            break;
        c->block++;
    }
    if (!rc && cJSON_GetArraySize(parts) > 0)
        return add_user(c, parts, only_text);
    cJSON_Delete(parts);
    if (!rc && tools == 0)
        return bad(c->e, "messages.%d: all messages must have non-empty content except for the "
                         "optional final assistant message", c->msg);
    return rc;
}

/* ---- assistant turns ------------------------------------------------------------- */

static int tool_call(struct conv *c, const cJSON *b, cJSON *calls)
{
    const char *id = str_field(c, b, "id"), *name = id ? str_field(c, b, "name") : NULL;
    if (!name)
        return -1;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(b, "input");
    char *args = input ? cJSON_PrintUnformatted(input) : NULL;
    cJSON *call = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    int rc = !call || !fn || (input && !args) || put_str(call, "id", id) ||
             put_str(call, "type", "function") || put_str(fn, "name", name) ||
             put_str(fn, "arguments", args ? args : "{}");
    cJSON_free(args);
    if (!rc && put(call, "function", fn) == 0)
        return put(calls, NULL, call) ? oom(c->e) : 0;
    if (rc)
        cJSON_Delete(fn);
    cJSON_Delete(call);
    return oom(c->e);
}

static int assistant_block(struct conv *c, const cJSON *b, struct sl_buf *text,
                           struct sl_buf *reasoning, cJSON *calls)
{
    const char *type = sl_json_str(b, "type", NULL), *s;
    if (!type)
        return bad(c->e, "messages.%d.content.%d.type: Field required", c->msg, c->block);
    if (strcmp(type, "text") == 0)
        return (s = str_field(c, b, "text")) ? (sl_buf_puts(text, s) ? oom(c->e) : 0) : -1;
    if (strcmp(type, "thinking") == 0) /* DeepSeek wants it back in thinking tool turns */
        return sl_buf_puts(reasoning, sl_json_str(b, "thinking", "")) ? oom(c->e) : 0;
    if (strcmp(type, "redacted_thinking") == 0)
        return 0; /* encrypted for Claude only: meaningless to any other model */
    if (strcmp(type, "tool_use") == 0)
        return tool_call(c, b, calls);
    return unsupported(c, type);
}

static int add_assistant(struct conv *c, const struct sl_buf *text, const struct sl_buf *reasoning,
                         cJSON *calls)
{
    int ncalls = cJSON_GetArraySize(calls);
    cJSON *m = cJSON_CreateObject();
    int rc = !m || put_str(m, "role", "assistant") ||
             put(m, "content", text->len || !ncalls ? cJSON_CreateString(text->ptr ? text->ptr : "")
                                                    : cJSON_CreateNull());
    if (!rc && reasoning->len)
        rc = put_str(m, "reasoning_content", reasoning->ptr);
    if (!rc && ncalls) {
        rc = put(m, "tool_calls", calls);
        calls = NULL;
    }
    cJSON_Delete(calls);
    if (rc || put(c->out, NULL, m)) {
        if (rc)
            cJSON_Delete(m);
        return oom(c->e);
    }
    return 0;
}

/* text blocks -> content, tool_use -> tool_calls, thinking -> reasoning_content. */
static int assistant_blocks(struct conv *c, const cJSON *blocks)
{
    struct sl_buf text = SL_BUF_INIT(TEXT_MAX), reasoning = SL_BUF_INIT(TEXT_MAX);
    cJSON *calls = cJSON_CreateArray();
    const cJSON *b;
    int rc = calls ? 0 : oom(c->e);
    c->block = 0;
    cJSON_ArrayForEach(b, blocks)
    {
        if (rc || (rc = assistant_block(c, b, &text, &reasoning, calls)))
            break;
        c->block++;
    }
    if (!rc) {
        rc = add_assistant(c, &text, &reasoning, calls);
        calls = NULL;
    }
    cJSON_Delete(calls);
    sl_buf_release(&text);
    sl_buf_release(&reasoning);
    return rc;
}

/* ---- messages and system --------------------------------------------------------- */

static int plain_message(struct conv *c, const char *role, const char *content)
{
    cJSON *m = cJSON_CreateObject();
    if (!m || put_str(m, "role", role) || put_str(m, "content", content) || put(c->out, NULL, m)) {
        cJSON_Delete(m);
        return oom(c->e);
    }
    return 0;
}

static int message(struct conv *c, const cJSON *m)
{
    if (!cJSON_IsObject(m))
        return bad(c->e, "messages.%d: Input should be a valid dictionary", c->msg);
    const char *role = sl_json_str(m, "role", "");
    int user = strcmp(role, "user") == 0;
    if (!user && strcmp(role, "assistant") != 0)
        return bad(c->e, "messages.%d.role: Input should be 'user' or 'assistant'", c->msg);
    const cJSON *content = cJSON_GetObjectItemCaseSensitive(m, "content");
    if (cJSON_IsString(content))
        return plain_message(c, role, content->valuestring);
    if (!cJSON_IsArray(content))
        return bad(c->e, "messages.%d.content: Input should be a valid string or list of content "
                         "blocks", c->msg);
    return user ? user_blocks(c, content) : assistant_blocks(c, content);
}

static int system_message(const cJSON *sys, struct conv *c)
{
    struct sl_buf t = SL_BUF_INIT(TEXT_MAX);
    const cJSON *b;
    int i = 0, rc = 0;
    if (!sys || cJSON_IsNull(sys))
        return 0;
    if (cJSON_IsString(sys))
        return sys->valuestring[0] ? plain_message(c, "system", sys->valuestring) : 0;
    if (!cJSON_IsArray(sys))
        return bad(c->e, "system: Input should be a valid string or list of text blocks");
    cJSON_ArrayForEach(b, sys)
    {
        const char *text = sl_json_str(b, "text", NULL);
        if (strcmp(sl_json_str(b, "type", ""), "text") != 0 || !text) {
            sl_buf_release(&t);
            return bad(c->e, "system.%d: Input should be a text block with a string 'text'", i);
        }
        rc |= join(&t, "\n", text); /* cache_control has no OpenAI meaning: dropped */
        i++;
    }
    if (!rc && t.len)
        rc = plain_message(c, "system", t.ptr);
    else if (rc)
        rc = oom(c->e);
    sl_buf_release(&t);
    return rc;
}

static int messages(const cJSON *in, cJSON *out, struct sl_error *e)
{
    cJSON *msgs = cJSON_CreateArray();
    struct conv c = {msgs, e, 0, 0};
    const cJSON *m;
    if (!msgs || put(out, "messages", msgs))
        return oom(e);
    if (system_message(cJSON_GetObjectItemCaseSensitive(in, "system"), &c))
        return -1;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(in, "messages"))
    {
        if (message(&c, m))
            return -1;
        c.msg++;
    }
    return 0;
}

/* ---- tools ------------------------------------------------------------------------ */

static int tool(const cJSON *t, int i, cJSON *tools, struct sl_error *e)
{
    const char *name = sl_json_str(t, "name", NULL), *type = sl_json_str(t, "type", "custom");
    const cJSON *schema = cJSON_GetObjectItemCaseSensitive(t, "input_schema");
    if (strcmp(type, "custom") != 0)
        return bad(e, "tools.%d: the server tool '%.60s' cannot run on an OpenAI-compatible model",
                   i, type);
    if (!name)
        return bad(e, "tools.%d.name: Field required", i);
    if (!cJSON_IsObject(schema))
        return bad(e, "tools.%d.input_schema: Field required (an object)", i);
    cJSON *ft = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    const char *desc = sl_json_str(t, "description", NULL);
    int rc = !ft || !fn || put_str(ft, "type", "function") || put_str(fn, "name", name) ||
             (desc && put_str(fn, "description", desc)) ||
             put(fn, "parameters", cJSON_Duplicate(schema, 1));
    if (!rc && put(ft, "function", fn) == 0)
        return put(tools, NULL, ft) ? oom(e) : 0;
    if (rc)
        cJSON_Delete(fn);
    cJSON_Delete(ft);
    return oom(e);
}

static int tools(const cJSON *in, cJSON *out, struct sl_error *e)
{
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(in, "tools"), *t;
    int i = 0;
    if (!list || cJSON_IsNull(list))
        return 0;
    if (!cJSON_IsArray(list))
        return bad(e, "tools: Input should be a valid list");
    if (cJSON_GetArraySize(list) == 0)
        return 0; /* some providers refuse an empty tools array */
    cJSON *arr = cJSON_CreateArray();
    if (!arr || put(out, "tools", arr))
        return oom(e);
    cJSON_ArrayForEach(t, list)
    {
        if (tool(t, i++, arr, e))
            return -1;
    }
    return 0;
}

static cJSON *named_choice(const char *name)
{
    cJSON *c = cJSON_CreateObject(), *fn = cJSON_CreateObject();
    if (!c || !fn || put_str(c, "type", "function") || put_str(fn, "name", name)) {
        cJSON_Delete(fn);
        cJSON_Delete(c);
        return NULL;
    }
    if (put(c, "function", fn)) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* auto -> "auto", any -> "required", tool -> a named function, none -> "none". */
static int tool_choice(const cJSON *in, cJSON *out, struct sl_error *e)
{
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(in, "tool_choice");
    if (!tc || cJSON_IsNull(tc))
        return 0;
    const char *type = sl_json_str(tc, "type", "");
    cJSON *v;
    if (strcmp(type, "auto") == 0 || strcmp(type, "none") == 0)
        v = cJSON_CreateString(type);
    else if (strcmp(type, "any") == 0)
        v = cJSON_CreateString("required");
    else if (strcmp(type, "tool") == 0 && sl_json_str(tc, "name", NULL))
        v = named_choice(sl_json_str(tc, "name", ""));
    else
        return bad(e, "tool_choice: Input should be an object with type 'auto', 'any', 'none', or "
                      "'tool' (with a name)");
    if (put(out, "tool_choice", v))
        return oom(e);
    if (sl_json_bool(tc, "disable_parallel_tool_use", 0) &&
        put(out, "parallel_tool_calls", cJSON_CreateFalse()))
        return oom(e);
    return 0;
}

/* ---- scalars ---------------------------------------------------------------------- */

static int is_int(const cJSON *v)
{
    return sl_json_is_int(v);
}

/* Extended thinking has no OpenAI-compatible equivalent that every provider takes;
 * reasoning_effort is the closest knob (OpenAI, Kimi and Qwen accept it, DeepSeek's
 * reasoner ignores it and always thinks). */
static int thinking(const cJSON *in, cJSON *out, struct sl_error *e)
{
    const cJSON *th = cJSON_GetObjectItemCaseSensitive(in, "thinking");
    if (!th || cJSON_IsNull(th))
        return 0;
    const char *type = sl_json_str(th, "type", "");
    if (strcmp(type, "disabled") == 0 || strcmp(type, "adaptive") == 0)
        return 0;
    const cJSON *budget = cJSON_GetObjectItemCaseSensitive(th, "budget_tokens");
    if (strcmp(type, "enabled") != 0)
        return bad(e, "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'");
    if (!is_int(budget))
        return bad(e, "thinking.enabled.budget_tokens: Field required (an integer)");
    double n = budget->valuedouble;
    const char *effort = n < EFFORT_LOW_BELOW ? "low" : n < EFFORT_MEDIUM_BELOW ? "medium" : "high";
    return put_str(out, "reasoning_effort", effort) ? oom(e) : 0;
}

static int number(const cJSON *in, const char *key, cJSON *out, const char *as, struct sl_error *e)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, key);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return bad(e, "%s: Input should be a valid number", key);
    return put(out, as, cJSON_CreateNumber(v->valuedouble)) ? oom(e) : 0;
}

static int stop_sequences(const cJSON *in, cJSON *out, struct sl_error *e)
{
    const cJSON *ss = cJSON_GetObjectItemCaseSensitive(in, "stop_sequences"), *s;
    int i = 0;
    if (!ss || cJSON_IsNull(ss))
        return 0;
    if (!cJSON_IsArray(ss))
        return bad(e, "stop_sequences: Input should be a valid list");
    cJSON_ArrayForEach(s, ss)
    {
        if (!cJSON_IsString(s))
            return bad(e, "stop_sequences.%d: Input should be a valid string", i);
        i++;
    }
    return i == 0 ? 0 : put(out, "stop", cJSON_Duplicate(ss, 1)) ? oom(e) : 0;
}

static int scalars(const cJSON *in, cJSON *out, struct sl_error *e)
{
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(in, "stream");
    if (stream && !cJSON_IsBool(stream) && !cJSON_IsNull(stream))
        return bad(e, "stream: Input should be a valid boolean");
    if (put_str(out, "model", sl_json_str(in, "model", "")) ||
        put(out, "stream", cJSON_CreateBool(cJSON_IsTrue(stream))))
        return oom(e);
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(in, "max_tokens");
    if (mt && put(out, "max_tokens", cJSON_CreateNumber(mt->valuedouble)))
        return oom(e);
    const char *user = sl_json_str(cJSON_GetObjectItemCaseSensitive(in, "metadata"), "user_id", NULL);
    if (user && put_str(out, "user", user))
        return oom(e);
    /* top_k has no OpenAI equivalent and is dropped. */
    return number(in, "temperature", out, "temperature", e) || number(in, "top_p", out, "top_p", e) ||
                   stop_sequences(in, out, e)
               ? -1
               : 0;
}

/* ---- the request ------------------------------------------------------------------ */

static int check_top(const cJSON *in, int need_max_tokens, struct sl_error *e)
{
    if (!cJSON_IsObject(in))
        return bad(e, "the request body must be a JSON object");
    const char *dup = sl_json_duplicate_key(in);
    if (dup)
        return bad(e, "%.64s: the key appears more than once", dup);
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(in, "model");
    if (!model)
        return bad(e, "model: Field required");
    if (!cJSON_IsString(model) || !model->valuestring[0])
        return bad(e, "model: Input should be a valid string");
    const cJSON *msgs = cJSON_GetObjectItemCaseSensitive(in, "messages");
    if (!msgs)
        return bad(e, "messages: Field required");
    if (!cJSON_IsArray(msgs))
        return bad(e, "messages: Input should be a valid list");
    if (cJSON_GetArraySize(msgs) == 0)
        return bad(e, "messages: at least one message is required");
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(in, "max_tokens");
    if (!mt && need_max_tokens)
        return bad(e, "max_tokens: Field required");
    if (mt && !is_int(mt))
        return bad(e, "max_tokens: Input should be a valid integer");
    if (mt && mt->valuedouble < 1)
        return bad(e, "max_tokens: Input should be greater than or equal to 1");
    return 0;
}

cJSON *sl_anthropic_client_decode(const char *body, size_t len, int need_max_tokens,
                                  struct sl_error *e)
{
    cJSON *in = cJSON_ParseWithLength(body, len), *out = NULL;
    int rc;
    if (!in) {
        bad(e, "the request body is not valid JSON");
        return NULL;
    }
    rc = check_top(in, need_max_tokens, e);
    if (!rc)
        rc = (out = cJSON_CreateObject()) ? 0 : oom(e);
    if (!rc)
        rc = scalars(in, out, e) || messages(in, out, e) || tools(in, out, e) ||
             tool_choice(in, out, e) || thinking(in, out, e);
    cJSON_Delete(in);
    if (rc) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

int sl_anthropic_count_tokens(const char *body, size_t len, int64_t *input_tokens,
                              struct sl_error *e)
{
    cJSON *req = sl_anthropic_client_decode(body, len, 0, e);
    if (!req)
        return -1;
    int64_t n = sl_estimate_messages(cJSON_GetObjectItemCaseSensitive(req, "messages"));
    const cJSON *tools = cJSON_GetObjectItemCaseSensitive(req, "tools");
    char *schema = tools ? cJSON_PrintUnformatted(tools) : NULL;
    if (schema)
        n += sl_estimate_text(schema, strlen(schema));
    cJSON_free(schema);
    cJSON_Delete(req);
    *input_tokens = n;
    return 0;
}
