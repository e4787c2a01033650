/* Gemini upstream, request side: a canonical OpenAI Chat request becomes a
 * GenerateContentRequest (contents, systemInstruction, generationConfig, tools, toolConfig).
 * Google rejects unknown fields, so nothing of the OpenAI body is copied blindly. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "formats/gemini.h"

/* Gemini 3 answers 400 to a replayed functionCall without its signature; Google documents
 * this value for history it did not sign (another provider's, or a client that lost it). */
#define SKIP_SIGNATURE "skip_thought_signature_validator"

struct enc {
    const cJSON *messages;
    cJSON *contents;
    cJSON *system;     /* systemInstruction.parts, created on first use */
    cJSON *tool_turn;  /* parts of the user turn being filled with tool results, or NULL */
    struct sl_error *e;
};

static int bad(struct sl_error *e, const char *fmt, const char *arg)
{
    sl_error_set(e, 400, "invalid_request_error", fmt, arg ? arg : "");
    return -1;
}

static int oom(struct sl_error *e)
{
    sl_error_set(e, 500, "api_error", "out of memory");
    return -1;
}

/* Adds item to an object (key) or an array (key NULL); on failure item is freed. */
static cJSON *put(cJSON *parent, const char *key, cJSON *item)
{
    if (!item)
        return NULL;
    int ok = key ? cJSON_AddItemToObject(parent, key, item) : cJSON_AddItemToArray(parent, item);
    if (!ok) {
        cJSON_Delete(item);
        return NULL;
    }
    return item;
}

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int add_text(cJSON *parts, const char *s)
{
    if (!s || !*s)
        return 0; /* Gemini refuses empty text parts */
    cJSON *p = put(parts, NULL, cJSON_CreateObject());
    return p && cJSON_AddStringToObject(p, "text", s) ? 0 : -1;
}

/* Guesses an image type from a URL's extension: fileData must name one. */
static const char *mime_of_url(const char *url)
{
    static const char *const map[][2] = {
        {".png", "image/png"},   {".webp", "image/webp"}, {".gif", "image/gif"},
        {".heic", "image/heic"}, {".heif", "image/heif"}, {".pdf", "application/pdf"},
    };
    size_t n = strcspn(url, "?#");
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        size_t k = strlen(map[i][0]);
        if (n > k && strncasecmp(url + n - k, map[i][0], k) == 0)
            return map[i][1];
    }
    return "image/jpeg";
}

/* data:<mime>;base64,<data> -> inlineData; http(s) -> fileData. */
static int media_part(cJSON *parts, const char *url, struct sl_error *e)
{
    cJSON *p = put(parts, NULL, cJSON_CreateObject());
    if (!p)
        return oom(e);
    if (strncmp(url, "data:", 5) == 0) {
        const char *semi = strstr(url, ";base64,");
        if (!semi)
            return bad(e, "only base64 data: URLs can be sent to Gemini%s", NULL);
        char mime[128];
        snprintf(mime, sizeof(mime), "%.*s", (int)(semi - url - 5), url + 5);
        cJSON *d = put(p, "inlineData", cJSON_CreateObject());
        if (!d || !cJSON_AddStringToObject(d, "mimeType", mime) ||
            !cJSON_AddStringToObject(d, "data", semi + 8))
            return oom(e);
        return 0;
    }
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return bad(e, "image URL scheme not supported by Gemini: %.60s", url);
    cJSON *f = put(p, "fileData", cJSON_CreateObject());
    if (!f || !cJSON_AddStringToObject(f, "mimeType", mime_of_url(url)) ||
        !cJSON_AddStringToObject(f, "fileUri", url))
        return oom(e);
    return 0;
}

static int content_part(cJSON *parts, const cJSON *p, struct sl_error *e)
{
    const char *type = sl_json_str(p, "type", "");
    if (strcmp(type, "text") == 0)
        return add_text(parts, sl_json_str(p, "text", "")) ? oom(e) : 0;
    if (strcmp(type, "image_url") == 0) {
        const cJSON *iu = get(p, "image_url");
        const char *url = cJSON_IsString(iu) ? iu->valuestring : sl_json_str(iu, "url", NULL);
        return url ? media_part(parts, url, e) : bad(e, "image_url part without a url%s", NULL);
    }
    if (strcmp(type, "file") == 0) {
        const char *data = sl_json_str(get(p, "file"), "file_data", NULL);
        return data ? media_part(parts, data, e)
                    : bad(e, "file parts need file_data (a data: URL) for Gemini%s", NULL);
    }
    return bad(e, "content part type '%s' is not supported by Gemini", type);
}

/* A message's content (string, null or array of parts) -> parts. */
static int content_parts(cJSON *parts, const cJSON *content, struct sl_error *e)
{
    if (cJSON_IsString(content))
        return add_text(parts, content->valuestring) ? oom(e) : 0;
    if (!content || cJSON_IsNull(content))
        return 0;
    if (!cJSON_IsArray(content))
        return bad(e, "message content must be a string or an array of parts%s", NULL);
    const cJSON *p;
    cJSON_ArrayForEach(p, content)
    {
        if (content_part(parts, p, e))
            return -1;
    }
    return 0;
}

/* The tool call with this id in an assistant message before `until`, or NULL. */
static const cJSON *find_call(const cJSON *messages, const cJSON *until, const char *id)
{
    const cJSON *m, *call, *found = NULL;
    cJSON_ArrayForEach(m, messages)
    {
        if (m == until)
            break;
        cJSON_ArrayForEach(call, get(m, "tool_calls"))
        {
            if (strcmp(sl_json_str(call, "id", ""), id) == 0)
                found = call;
        }
    }
    return found;
}

/* Ids sluice made up ("call_<n>") and OpenAI's own ("call_...") mean nothing to Gemini;
 * Gemini 3's short ids are sent back so it can pair parallel calls with results. */
static int gemini_id(const char *id)
{
    return id && *id && strncmp(id, "call_", 5) != 0;
}

static const char *signature_of(const cJSON *call)
{
    return sl_json_str(get(get(call, "extra_content"), "google"), "thought_signature", NULL);
}

/* Tool-call arguments (a JSON string) -> the args object Gemini wants. NULL when not one. */
static cJSON *parse_args(const char *s)
{
    size_t n = strspn(s, " \t\r\n");
    if (s[n] == '\0')
        return cJSON_CreateObject();
    cJSON *v = cJSON_Parse(s);
    if (cJSON_IsObject(v))
        return v;
    cJSON_Delete(v);
    return NULL;
}

static int call_part(cJSON *parts, const cJSON *call, int first, struct sl_error *e)
{
    const cJSON *fn = get(call, "function");
    const char *name = sl_json_str(fn, "name", NULL);
    if (!name || !*name)
        return bad(e, "an assistant tool call has no function name%s", NULL);
    cJSON *args = parse_args(sl_json_str(fn, "arguments", ""));
    if (!args)
        return bad(e, "the arguments of tool call '%s' are not a JSON object", name);
    cJSON *part = put(parts, NULL, cJSON_CreateObject());
    cJSON *fc = part ? put(part, "functionCall", cJSON_CreateObject()) : NULL;
    if (!fc || !cJSON_AddStringToObject(fc, "name", name)) {
        cJSON_Delete(args);
        return oom(e);
    }
    if (!put(fc, "args", args))
        return oom(e);
    const char *id = sl_json_str(call, "id", NULL);
    if (gemini_id(id) && !cJSON_AddStringToObject(fc, "id", id))
        return oom(e);
    /* Only the first call of a parallel set carries a signature (Gemini 3 behaviour). */
    const char *sig = signature_of(call);
    if ((sig || first) && !cJSON_AddStringToObject(part, "thoughtSignature", sig ? sig : SKIP_SIGNATURE))
        return oom(e);
    return 0;
}

/* Appends {role, parts} when parts is not empty (Gemini refuses empty turns). */
static int add_turn(struct enc *x, const char *role, cJSON *parts)
{
    if (cJSON_GetArraySize(parts) == 0) {
        cJSON_Delete(parts);
        return 0;
    }
    cJSON *turn = put(x->contents, NULL, cJSON_CreateObject());
    if (!turn || !cJSON_AddStringToObject(turn, "role", role)) {
        cJSON_Delete(parts);
        return oom(x->e);
    }
    return put(turn, "parts", parts) ? 0 : oom(x->e);
}

static int system_message(struct enc *x, const cJSON *msg)
{
    if (!x->system && !(x->system = cJSON_CreateArray()))
        return oom(x->e);
    return content_parts(x->system, get(msg, "content"), x->e);
}

static int chat_message(struct enc *x, const cJSON *msg, const char *role)
{
    cJSON *parts = cJSON_CreateArray();
    if (!parts)
        return oom(x->e);
    int rc = content_parts(parts, get(msg, "content"), x->e);
    const cJSON *call;
    int first = 1;
    cJSON_ArrayForEach(call, get(msg, "tool_calls"))
    {
        if (rc)
            break;
        rc = call_part(parts, call, first, x->e);
        first = 0;
    }
    if (rc) {
        cJSON_Delete(parts);
        return -1;
    }
    x->tool_turn = NULL;
    return add_turn(x, role, parts);
}

/* A tool result's content -> the functionResponse.response object (a protobuf Struct):
 * a JSON object as it is, anything else as {"result": text}. */
static cJSON *tool_response(const cJSON *content)
{
    struct sl_buf text = SL_BUF_INIT(SL_MAX_REQUEST_BODY);
    const cJSON *p;
    if (cJSON_IsString(content))
        sl_buf_puts(&text, content->valuestring);
    else if (cJSON_IsArray(content))
        cJSON_ArrayForEach(p, content)
        {
            sl_buf_puts(&text, sl_json_str(p, "text", ""));
        }
    const char *s = text.ptr ? text.ptr : "";
    cJSON *v = cJSON_Parse(s);
    if (!cJSON_IsObject(v)) {
        cJSON_Delete(v);
        v = cJSON_CreateObject();
        if (v && !cJSON_AddStringToObject(v, "result", s)) {
            cJSON_Delete(v);
            v = NULL;
        }
    }
    sl_buf_release(&text);
    return v;
}

/* Consecutive tool messages become one user turn of functionResponse parts. */
static int tool_message(struct enc *x, const cJSON *msg)
{
    const char *id = sl_json_str(msg, "tool_call_id", "");
    const cJSON *call = find_call(x->messages, msg, id);
    if (!call)
        return bad(x->e, "tool message '%s' answers no earlier assistant tool call", id);
    const char *name = sl_json_str(get(call, "function"), "name", "");
    if (!x->tool_turn) {
        cJSON *turn = put(x->contents, NULL, cJSON_CreateObject());
        if (!turn || !cJSON_AddStringToObject(turn, "role", "user") ||
            !(x->tool_turn = put(turn, "parts", cJSON_CreateArray())))
            return oom(x->e);
    }
    cJSON *part = put(x->tool_turn, NULL, cJSON_CreateObject());
    cJSON *fr = part ? put(part, "functionResponse", cJSON_CreateObject()) : NULL;
    if (!fr || !cJSON_AddStringToObject(fr, "name", name) ||
        !put(fr, "response", tool_response(get(msg, "content"))) ||
        (gemini_id(id) && !cJSON_AddStringToObject(fr, "id", id)))
        return oom(x->e);
    return 0;
}

static int message(struct enc *x, const cJSON *msg)
{
    const char *role = sl_json_str(msg, "role", "");
    if (strcmp(role, "system") == 0 || strcmp(role, "developer") == 0)
        return system_message(x, msg);
    if (strcmp(role, "user") == 0)
        return chat_message(x, msg, "user");
    if (strcmp(role, "assistant") == 0)
        return chat_message(x, msg, "model");
    if (strcmp(role, "tool") == 0)
        return tool_message(x, msg);
    return bad(x->e, "message role '%s' is not supported by Gemini", role);
}

static int encode_messages(struct enc *x, cJSON *body)
{
    const cJSON *msg;
    if (!cJSON_IsArray(x->messages))
        return bad(x->e, "'messages' must be an array%s", NULL);
    cJSON_ArrayForEach(msg, x->messages)
    {
        if (message(x, msg))
            return -1;
    }
    if (cJSON_GetArraySize(x->contents) == 0)
        return bad(x->e, "Gemini needs at least one user or assistant message with content%s", NULL);
    if (x->system) {
        cJSON *si = put(body, "systemInstruction", cJSON_CreateObject());
        cJSON *parts = x->system;
        x->system = NULL;
        if (!si || !put(si, "parts", parts)) {
            if (!si)
                cJSON_Delete(parts);
            return oom(x->e);
        }
    }
    return 0;
}

/* OpenAI sampling fields with a one-to-one Gemini name. */
static const char *const numbers[][2] = {
    {"temperature", "temperature"},
    {"top_p", "topP"},
    {"top_k", "topK"},
    {"n", "candidateCount"},
    {"seed", "seed"},
    {"presence_penalty", "presencePenalty"},
    {"frequency_penalty", "frequencyPenalty"},
    {"top_logprobs", "logprobs"},
};

static int copy_number(cJSON *gc, const cJSON *req, const char *from, const char *to,
                       struct sl_error *e)
{
    const cJSON *v = get(req, from);
    if (!v || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v))
        return bad(e, "'%s' must be a number", from);
    return put(gc, to, cJSON_Duplicate(v, 0)) ? 0 : oom(e);
}

static int stop_sequences(cJSON *gc, const cJSON *stop, struct sl_error *e)
{
    if (!stop || cJSON_IsNull(stop))
        return 0;
    cJSON *arr = put(gc, "stopSequences", cJSON_IsString(stop) ? cJSON_CreateArray()
                                                               : cJSON_Duplicate(stop, 1));
    if (!arr)
        return oom(e);
    if (cJSON_IsString(stop))
        return put(arr, NULL, cJSON_CreateString(stop->valuestring)) ? 0 : oom(e);
    return cJSON_IsArray(stop) ? 0 : bad(e, "'stop' must be a string or an array%s", NULL);
}

/* json_object -> JSON mime type; json_schema -> also responseJsonSchema, which takes
 * JSON Schema as it is (responseSchema would need OpenAPI-subset rewriting). */
static int response_format(cJSON *gc, const cJSON *rf, struct sl_error *e)
{
    const char *type = sl_json_str(rf, "type", "text");
    if (strcmp(type, "text") == 0)
        return 0;
    if (strcmp(type, "json_object") && strcmp(type, "json_schema"))
        return bad(e, "response_format type '%s' is not supported by Gemini", type);
    if (!cJSON_AddStringToObject(gc, "responseMimeType", "application/json"))
        return oom(e);
    const cJSON *schema = get(get(rf, "json_schema"), "schema");
    if (strcmp(type, "json_schema") == 0 && cJSON_IsObject(schema))
        return put(gc, "responseJsonSchema", cJSON_Duplicate(schema, 1)) ? 0 : oom(e);
    return 0;
}

/* reasoning_effort -> thinkingBudget, the tokens Google's own OpenAI-compatible endpoint
 * uses (Gemini 3 still accepts budgets); thought summaries are asked for so they come
 * back as reasoning_content. */
static int thinking(cJSON *gc, const cJSON *req, struct sl_error *e)
{
    static const struct { const char *effort; int budget; } map[] = {
        {"none", 0}, {"minimal", 512}, {"low", 1024}, {"medium", 8192}, {"high", 24576},
    };
    const char *effort = sl_json_str(req, "reasoning_effort", NULL);
    if (!effort)
        return 0;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (strcmp(effort, map[i].effort))
            continue;
        cJSON *tc = put(gc, "thinkingConfig", cJSON_CreateObject());
        if (!tc || !cJSON_AddNumberToObject(tc, "thinkingBudget", map[i].budget) ||
            (map[i].budget && !cJSON_AddTrueToObject(tc, "includeThoughts")))
            return oom(e);
        return 0;
    }
    return bad(e, "reasoning_effort '%s' is not one of none, minimal, low, medium, high", effort);
}

static int generation_config(cJSON *body, const cJSON *req, struct sl_error *e)
{
    cJSON *gc = cJSON_CreateObject();
    if (!gc)
        return oom(e);
    int rc = 0;
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]) && !rc; i++)
        rc = copy_number(gc, req, numbers[i][0], numbers[i][1], e);
    const char *max = get(req, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
    rc = rc ? rc : copy_number(gc, req, max, "maxOutputTokens", e);
    rc = rc ? rc : stop_sequences(gc, get(req, "stop"), e);
    rc = rc ? rc : response_format(gc, get(req, "response_format"), e);
    rc = rc ? rc : thinking(gc, req, e);
    if (!rc && cJSON_IsTrue(get(req, "logprobs")) && !cJSON_AddTrueToObject(gc, "responseLogprobs"))
        rc = oom(e);
    if (rc || cJSON_GetArraySize(gc) == 0) {
        cJSON_Delete(gc);
        return rc;
    }
    return put(body, "generationConfig", gc) ? 0 : oom(e);
}

/* One function declaration; parametersJsonSchema takes the client's JSON Schema as it is
 * (additionalProperties, $schema...), where `parameters` would refuse those keywords. */
static int declaration(cJSON *decls, const cJSON *tool, struct sl_error *e)
{
    const char *type = sl_json_str(tool, "type", "function");
    if (strcmp(type, "function"))
        return bad(e, "tool type '%s' is not supported by Gemini", type);
    const cJSON *fn = get(tool, "function");
    const char *name = sl_json_str(fn, "name", NULL);
    if (!name)
        return bad(e, "a function tool has no name%s", NULL);
    cJSON *d = put(decls, NULL, cJSON_CreateObject());
    if (!d || !cJSON_AddStringToObject(d, "name", name))
        return oom(e);
    const char *desc = sl_json_str(fn, "description", NULL);
    if (desc && !cJSON_AddStringToObject(d, "description", desc))
        return oom(e);
    const cJSON *params = get(fn, "parameters");
    if (cJSON_IsObject(params) && !put(d, "parametersJsonSchema", cJSON_Duplicate(params, 1)))
        return oom(e);
    return 0;
}

static int tools(cJSON *body, const cJSON *list, struct sl_error *e)
{
    const cJSON *t;
    if (!list || cJSON_IsNull(list) || cJSON_GetArraySize(list) == 0)
        return 0;
    if (!cJSON_IsArray(list))
        return bad(e, "'tools' must be an array%s", NULL);
    cJSON *arr = put(body, "tools", cJSON_CreateArray());
    cJSON *one = arr ? put(arr, NULL, cJSON_CreateObject()) : NULL;
    cJSON *decls = one ? put(one, "functionDeclarations", cJSON_CreateArray()) : NULL;
    if (!decls)
        return oom(e);
    cJSON_ArrayForEach(t, list)
    {
        if (declaration(decls, t, e))
            return -1;
    }
    return 0;
}

static int tool_choice(cJSON *body, const cJSON *tc, struct sl_error *e)
{
    static const char *const modes[][2] = {{"auto", "AUTO"}, {"required", "ANY"}, {"none", "NONE"}};
    const char *mode = NULL, *named = NULL;
    if (!tc || cJSON_IsNull(tc))
        return 0;
    for (size_t i = 0; i < 3 && cJSON_IsString(tc); i++)
        if (strcmp(tc->valuestring, modes[i][0]) == 0)
            mode = modes[i][1];
    if (cJSON_IsObject(tc) && (named = sl_json_str(get(tc, "function"), "name", NULL)))
        mode = "ANY";
    if (!mode)
        return bad(e, "tool_choice must be auto, required, none or a named function%s", NULL);
    cJSON *cfg = put(body, "toolConfig", cJSON_CreateObject());
    cJSON *fcc = cfg ? put(cfg, "functionCallingConfig", cJSON_CreateObject()) : NULL;
    if (!fcc || !cJSON_AddStringToObject(fcc, "mode", mode))
        return oom(e);
    cJSON *names = named ? put(fcc, "allowedFunctionNames", cJSON_CreateArray()) : NULL;
    if (named && (!names || !put(names, NULL, cJSON_CreateString(named))))
        return oom(e);
    return 0;
}

static int build(const cJSON *req, cJSON *body, struct sl_error *e)
{
    struct enc x = {.messages = get(req, "messages"), .e = e};
    x.contents = put(body, "contents", cJSON_CreateArray());
    if (!x.contents)
        return oom(e);
    int rc = encode_messages(&x, body);
    cJSON_Delete(x.system); /* only left when encode_messages failed */
    rc = rc ? rc : generation_config(body, req, e);
    rc = rc ? rc : tools(body, get(req, "tools"), e);
    return rc ? rc : tool_choice(body, get(req, "tool_choice"), e);
}

static int headers(const struct sl_model_cfg *m, struct sl_arena *a, struct sl_encoded *out)
{
    out->nheaders = 0;
    out->headers[out->nheaders++] = "content-type: application/json";
    if (m->p->api_key && *m->p->api_key) {
        const char *h = sl_arena_sprintf(a, "x-goog-api-key: %s", m->p->api_key);
        if (!h)
            return -1;
        out->headers[out->nheaders++] = h;
    }
    return 0;
}

int sl_gemini_encode(const cJSON *req, const struct sl_model_cfg *m, int stream,
                     struct sl_arena *a, struct sl_encoded *out, struct sl_error *e)
{
    cJSON *body = cJSON_CreateObject();
    if (!body)
        return oom(e);
    int rc = build(req, body, e);
    char *printed = rc ? NULL : cJSON_PrintUnformatted(body);
    cJSON_Delete(body);
    if (rc)
        return -1;
    if (!printed)
        return oom(e);
    out->len = strlen(printed);
    out->body = sl_arena_strndup(a, printed, out->len);
    cJSON_free(printed);
    /* The model is in the path; a configured "models/x" is accepted too. */
    const char *model = strncmp(m->model, "models/", 7) == 0 ? m->model + 7 : m->model;
    out->url = sl_arena_sprintf(a, "%s/models/%s:%s", m->p->base_url, model,
                                stream ? "streamGenerateContent?alt=sse" : "generateContent");
    if (!out->body || !out->url || headers(m, a, out))
        return oom(e);
    return 0;
}
