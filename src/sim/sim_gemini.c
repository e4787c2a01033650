/* The Gemini generateContent wire format of the simulator: the /v1beta/models/{model}:METHOD
 * route, request decoding and checking (contents and parts, systemInstruction, function
 * declarations, toolConfig, thought signatures), responses, CRLF-framed stream chunks, errors. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "sim/sim_internal.h"

#define SIGNATURE "c2ltLXRob3VnaHQtc2lnbmF0dXJl" /* base64("sim-thought-signature") */
#define MAX_KEY   64

/* ---- field names: the API takes lowerCamel and snake_case alike ---- */

/* The member camel of o, or its snake_case spelling. */
static const cJSON *get(const cJSON *o, const char *camel)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, camel);
    char snake[MAX_KEY * 2];
    size_t j = 0;
    for (size_t i = 0; v == NULL && camel[i] && j + 2 < sizeof(snake); i++) {
        if (isupper((unsigned char)camel[i]))
            snake[j++] = '_';
        snake[j++] = (char)tolower((unsigned char)camel[i]);
    }
    snake[j] = '\0';
    return v ? v : cJSON_GetObjectItemCaseSensitive(o, snake);
}

static const char *get_str(const cJSON *o, const char *camel)
{
    const cJSON *v = get(o, camel);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* To accept a new top-level request field: a row here (the API rejects unknown ones). */
static const char *const request_fields[] = {
    "contents", "systemInstruction", "tools", "toolConfig", "safetySettings",
    "cachedContent", "generationConfig", "labels", "model", NULL,
};

static int known_field(const char *name)
{
    char camel[MAX_KEY];
    size_t j = 0;
    for (size_t i = 0; name[i] && j + 1 < sizeof(camel); i++)
        camel[j++] = name[i] == '_' && name[i + 1] ? (char)toupper((unsigned char)name[++i])
                                                   : name[i];
    camel[j] = '\0';
    for (const char *const *f = request_fields; *f; f++)
        if (strcmp(*f, camel) == 0)
            return 1;
    return 0;
}

/* ---- decoding ---- */

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

static int unknown_name(struct decoder *d, const char *name, const char *where)
{
    return fail(d, sl_arena_sprintf(d->a, "Invalid JSON payload received. Unknown name \"%s\"%s%s"
                                          ": Cannot find field.",
                                    name, where ? " at " : "", where ? where : ""));
}

/* Text parts (not thoughts) joined with a space. */
static const char *parts_text(const cJSON *parts, struct sl_arena *a)
{
    struct sl_buf b = SL_BUF_INIT(SL_MAX_REQUEST_BODY);
    const cJSON *part;
    cJSON_ArrayForEach(part, parts)
    {
        const char *text = get_str(part, "text");
        if (!text || cJSON_IsTrue(get(part, "thought")))
            continue;
        if ((b.len && sl_buf_append(&b, " ", 1)) || sl_buf_puts(&b, text))
            break;
    }
    const char *out = sl_arena_strndup(a, b.ptr ? b.ptr : "", b.len);
    sl_buf_release(&b);
    return out;
}

/* A function response as the reply echoes it: the value of a lone string member
 * ({"result":"..."}), else the object as compact JSON. */
static const char *response_text(const cJSON *response, struct sl_arena *a)
{
    const cJSON *only = response->child;
    if (only && !only->next && cJSON_IsString(only))
        return only->valuestring;
    char *s = cJSON_PrintUnformatted(response);
    const char *out = s ? sl_arena_strndup(a, s, strlen(s)) : NULL;
    free(s);
    return out;
}

static int add_msg(struct decoder *d, const char *role, const char *text)
{
    if (!text)
        return fail(d, NULL);
    d->msgs[d->n++] = (struct sim_msg){role, text};
    return 0;
}

static const char *content_role(const cJSON *c)
{
    const char *role = get_str(c, "role");
    if (!role || strcmp(role, "user") == 0 || strcmp(role, "function") == 0)
        return "user";
    return strcmp(role, "model") == 0 ? "assistant" : NULL;
}

static int check_part(const cJSON *part, int i, int j, struct decoder *d)
{
    const cJSON *call = get(part, "functionCall"), *resp = get(part, "functionResponse");
    const cJSON *args = get(call, "args");
    if (!cJSON_IsObject(part))
        return fail(d, sl_arena_sprintf(d->a, "* GenerateContentRequest.contents[%d].parts[%d]: "
                                              "a part must be an object", i, j));
    if (call && (!get_str(call, "name") || (args && !cJSON_IsObject(args))))
        return fail(d, sl_arena_sprintf(d->a, "* GenerateContentRequest.contents[%d].parts[%d]"
                                              ".function_call: name and an args object are "
                                              "required", i, j));
    if (resp && (!get_str(resp, "name") || !cJSON_IsObject(get(resp, "response"))))
        return fail(d, sl_arena_sprintf(d->a, "* GenerateContentRequest.contents[%d].parts[%d]"
                                              ".function_response: name and a response object "
                                              "are required", i, j));
    return 0;
}

/* Content i becomes a "tool" message per functionResponse part, then (unless it holds
 * only function responses) one message of its role with its text. */
static int decode_content(const cJSON *c, int i, struct decoder *d)
{
    const char *role = content_role(c);
    const cJSON *parts = get(c, "parts"), *part;
    if (!role)
        return fail(d, "Please use a valid role: user, model.");
    if (!cJSON_IsArray(parts) || cJSON_GetArraySize(parts) == 0)
        return fail(d, sl_arena_sprintf(d->a, "* GenerateContentRequest.contents[%d].parts: "
                                              "contents.parts must not be empty.", i));
    int j = 0, others = 0;
    cJSON_ArrayForEach(part, parts)
    {
        const cJSON *resp = get(part, "functionResponse");
        if (check_part(part, i, j++, d))
            return -1;
        if (!resp)
            others = 1;
        else if (add_msg(d, "tool", response_text(get(resp, "response"), d->a)))
            return -1;
    }
    return others ? add_msg(d, role, parts_text(parts, d->a)) : 0;
}

static int has_text(const cJSON *c)
{
    const cJSON *part;
    cJSON_ArrayForEach(part, get(c, "parts"))
    {
        if (get_str(part, "text"))
            return 1;
    }
    return 0;
}

/* Like Gemini 3: in the current turn (after the last user text), the first function
 * call of each model step must carry the thoughtSignature it was sent with. */
static int check_signatures(const cJSON *contents, struct decoder *d)
{
    const cJSON *c, *turn = NULL;
    cJSON_ArrayForEach(c, contents)
    {
        if (strcmp(content_role(c), "user") == 0 && has_text(c))
            turn = c;
    }
    for (c = turn ? turn->next : contents->child; c; c = c->next) {
        const cJSON *part;
        cJSON_ArrayForEach(part, get(c, "parts"))
        {
            const char *sig = get_str(part, "thoughtSignature");
            if (!get(part, "functionCall"))
                continue;
            if (!sig || !*sig)
                return fail(d, sl_arena_sprintf(
                                   d->a, "Function call is missing a thought_signature in "
                                         "functionCall parts. This is required for tools to work "
                                         "correctly. Additional data, function call `%s`.",
                                   get_str(get(part, "functionCall"), "name")));
            break;
        }
    }
    return 0;
}

static int decode_contents(const cJSON *body, struct decoder *d)
{
    const cJSON *contents = get(body, "contents"), *c;
    int n = cJSON_IsArray(contents) ? cJSON_GetArraySize(contents) : 0, parts = 1, i = 0;
    if (n == 0)
        return fail(d, "* GenerateContentRequest.contents: contents is not specified");
    cJSON_ArrayForEach(c, contents) parts += 1 + cJSON_GetArraySize(get(c, "parts"));
    d->msgs = sl_arena_alloc(d->a, sizeof(*d->msgs) * (size_t)parts);
    if (!d->msgs)
        return fail(d, NULL);
    const cJSON *system = get(body, "systemInstruction");
    if (system && add_msg(d, "system", parts_text(get(system, "parts"), d->a)))
        return -1;
    cJSON_ArrayForEach(c, contents)
    {
        if (decode_content(c, i++, d))
            return -1;
    }
    return check_signatures(contents, d);
}

/* `parameters` is an OpenAPI subset: the API rejects JSON Schema's own keywords there. */
static int check_schema(const cJSON *schema, const char *where, struct decoder *d)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, schema)
    {
        int props = schema->string && strcmp(schema->string, "properties") == 0;
        if (!props && m->string &&
            (strcmp(m->string, "additionalProperties") == 0 || strcmp(m->string, "$schema") == 0))
            return unknown_name(d, m->string, where);
        if ((cJSON_IsObject(m) || cJSON_IsArray(m)) && check_schema(m, where, d))
            return -1;
    }
    return 0;
}

static int add_declaration(const cJSON *fn, int i, int j, struct decoder *d,
                           struct sim_request *rq, struct sim_tool *out)
{
    const cJSON *params = get(fn, "parameters"), *json_schema = get(fn, "parametersJsonSchema");
    char where[96];
    snprintf(where, sizeof(where), "'tools[%d].function_declarations[%d].parameters'", i, j);
    if (!get_str(fn, "name"))
        return fail(d, sl_arena_sprintf(d->a, "* GenerateContentRequest.tools[%d]"
                                              ".function_declarations[%d].name: Field required",
                                        i, j));
    if (params && check_schema(params, sl_arena_sprintf(d->a, "%s", where), d))
        return -1;
    out[rq->n_tools++] = (struct sim_tool){get_str(fn, "name"), json_schema ? json_schema : params};
    return 0;
}

static int decode_tools(const cJSON *body, struct decoder *d, struct sim_request *rq)
{
    const cJSON *tools = get(body, "tools"), *t, *fn;
    int n = 0, i = 0;
    cJSON_ArrayForEach(t, tools) n += cJSON_GetArraySize(get(t, "functionDeclarations"));
    struct sim_tool *out = n ? sl_arena_alloc(d->a, sizeof(*out) * (size_t)n) : NULL;
    if (n && !out)
        return fail(d, NULL);
    cJSON_ArrayForEach(t, tools)
    {
        int j = 0;
        cJSON_ArrayForEach(fn, get(t, "functionDeclarations"))
        {
            if (add_declaration(fn, i, j++, d, rq, out))
                return -1;
        }
        i++;
    }
    rq->tools = out;
    const cJSON *fcc = get(get(body, "toolConfig"), "functionCallingConfig");
    const char *mode = get_str(fcc, "mode");
    const cJSON *allowed = get(fcc, "allowedFunctionNames");
    rq->tools_off = mode && strcmp(mode, "NONE") == 0;
    if (mode && strcmp(mode, "ANY") == 0 && cJSON_IsString(cJSON_GetArrayItem(allowed, 0)))
        rq->forced_tool = cJSON_GetArrayItem(allowed, 0)->valuestring;
    return 0;
}

static void decode_generation(const cJSON *body, struct sim_request *rq)
{
    const cJSON *gc = get(body, "generationConfig");
    const cJSON *schema = get(gc, "responseJsonSchema");
    const char *mime = get_str(gc, "responseMimeType");
    if (!schema)
        schema = get(gc, "responseSchema");
    if (schema) {
        rq->format = SIM_FORMAT_JSON_SCHEMA;
        rq->format_schema = schema;
    } else if (mime && strcmp(mime, "application/json") == 0) {
        rq->format = SIM_FORMAT_JSON_OBJECT;
    }
    const cJSON *max = get(gc, "maxOutputTokens");
    rq->max_tokens = cJSON_IsNumber(max) && max->valuedouble > 0 ? max->valueint : 0;
    rq->reasoning_hidden = !cJSON_IsTrue(get(get(gc, "thinkingConfig"), "includeThoughts"));
}

/* arg is "{model}:{method}" (sl_sim_gemini_route has checked the method). */
static int decode(const cJSON *body, const char *arg, struct sl_arena *a, struct sim_request *rq,
                  const char **err, const char **param)
{
    memset(rq, 0, sizeof(*rq));
    *param = NULL;
    struct decoder d = {a, NULL, 0, NULL};
    const char *colon = strrchr(arg, ':');
    const cJSON *m;
    if (!cJSON_IsObject(body)) {
        *err = "Invalid JSON payload received. The body must be a JSON object.";
        return -1;
    }
    cJSON_ArrayForEach(m, body)
    {
        if (!known_field(m->string) && unknown_name(&d, m->string, NULL))
            break;
    }
    if (d.err || decode_contents(body, &d) || decode_tools(body, &d, rq)) {
        *err = d.err;
        return -1;
    }
    decode_generation(body, rq);
    rq->model = sl_arena_strndup(a, arg, colon ? (size_t)(colon - arg) : strlen(arg));
    rq->msgs = d.msgs;
    rq->n_msgs = d.n;
    rq->stream = colon && strcmp(colon + 1, "streamGenerateContent") == 0;
    rq->include_usage = 1;
    return rq->model ? 0 : (*err = "Out of memory.", -1);
}

/* ---- responses ---- */

static cJSON *text_part(const char *text, size_t n, int thought)
{
    char *s = strndup(text ? text : "", n);
    cJSON *p = cJSON_CreateObject();
    cJSON_AddStringToObject(p, "text", s ? s : "");
    free(s);
    if (thought)
        cJSON_AddTrueToObject(p, "thought");
    return p;
}

/* Function calls are never fragmented; the first call carries the thought signature. */
static cJSON *call_part(const struct sim_answer *ans, int i)
{
    cJSON *p = cJSON_CreateObject();
    cJSON *fc = cJSON_AddObjectToObject(p, "functionCall");
    cJSON_AddStringToObject(fc, "name", ans->calls[i].name);
    cJSON *args = cJSON_Parse(ans->calls[i].arguments);
    cJSON_AddItemToObject(fc, "args", cJSON_IsObject(args) ? args : cJSON_CreateObject());
    if (!cJSON_IsObject(args))
        cJSON_Delete(args);
    if (i == 0)
        cJSON_AddStringToObject(p, "thoughtSignature", SIGNATURE);
    return p;
}

static int call_words(const struct sim_answer *ans, int upto)
{
    int n = 0;
    for (int i = 0; i < upto && i < ans->n_calls; i++)
        n += sl_sim_words(ans->calls[i].name, strlen(ans->calls[i].name)) +
             sl_sim_words(ans->calls[i].arguments, strlen(ans->calls[i].arguments));
    return n;
}

/* usageMetadata with these running counts; zero counters are left out, as proto3 does. */
static cJSON *usage_object(const struct sim_answer *ans, int candidates, int thoughts)
{
    cJSON *u = cJSON_CreateObject();
    cJSON_AddNumberToObject(u, "promptTokenCount", ans->prompt_tokens);
    if (candidates)
        cJSON_AddNumberToObject(u, "candidatesTokenCount", candidates);
    cJSON_AddNumberToObject(u, "totalTokenCount", ans->prompt_tokens + candidates + thoughts);
    if (thoughts)
        cJSON_AddNumberToObject(u, "thoughtsTokenCount", thoughts);
    cJSON *details = cJSON_CreateObject();
    cJSON_AddStringToObject(details, "modality", "TEXT");
    cJSON_AddNumberToObject(details, "tokenCount", ans->prompt_tokens);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(u, "promptTokensDetails"), details);
    return u;
}

static const char *finish_reason(const struct sim_answer *ans)
{
    return ans->truncated ? "MAX_TOKENS" : "STOP";
}

/* A GenerateContentResponse with these parts (NULL: none), finished or not. */
static cJSON *response(const struct sim_exchange *x, cJSON *parts, int finished, cJSON *usage)
{
    cJSON *r = cJSON_CreateObject(), *cand = cJSON_CreateObject();
    cJSON *content = cJSON_AddObjectToObject(cand, "content");
    if (parts)
        cJSON_AddItemToObject(content, "parts", parts);
    cJSON_AddStringToObject(content, "role", "model");
    if (finished)
        cJSON_AddStringToObject(cand, "finishReason", finish_reason(x->ans));
    cJSON_AddNumberToObject(cand, "index", 0);
    cJSON_AddItemToArray(cJSON_AddArrayToObject(r, "candidates"), cand);
    if (x->dir->no_usage)
        cJSON_Delete(usage);
    else
        cJSON_AddItemToObject(r, "usageMetadata", usage);
    cJSON_AddStringToObject(r, "modelVersion", x->rq->model);
    cJSON_AddStringToObject(r, "responseId", x->id);
    return r;
}

static cJSON *all_parts(const struct sim_exchange *x)
{
    const struct sim_answer *ans = x->ans;
    cJSON *parts = cJSON_CreateArray();
    if (ans->reasoning && !x->rq->reasoning_hidden)
        cJSON_AddItemToArray(parts, text_part(ans->reasoning, strlen(ans->reasoning), 1));
    if (ans->content && *ans->content)
        cJSON_AddItemToArray(parts, text_part(ans->content, strlen(ans->content), 0));
    for (int i = 0; i < ans->n_calls; i++)
        cJSON_AddItemToArray(parts, call_part(ans, i));
    if (cJSON_GetArraySize(parts) == 0) {
        cJSON_Delete(parts);
        return NULL;
    }
    return parts;
}

/* Non-stream bodies are pretty-printed, as the API's are. */
static int reply(const struct sim_exchange *x, struct sl_buf *out)
{
    const struct sim_answer *ans = x->ans;
    cJSON *usage = usage_object(ans, ans->completion_tokens - ans->reasoning_tokens,
                                ans->reasoning_tokens);
    return sl_sim_append_json(response(x, all_parts(x), 1, usage), 1, out) ||
           sl_buf_puts(out, "\n");
}

/* ---- stream chunks: `data: <response>\r\n\r\n`, usage cumulative, no terminator ---- */

static int chunk(const struct sim_exchange *x, cJSON *part, int finished, int candidates,
                 int thoughts, struct sl_buf *out)
{
    cJSON *parts = cJSON_CreateArray();
    cJSON_AddItemToArray(parts, part);
    cJSON *r = response(x, parts, finished, usage_object(x->ans, candidates, thoughts));
    return sl_buf_puts(out, "data: ") || sl_sim_append_json(r, 0, out) ||
           sl_buf_puts(out, "\r\n\r\n");
}

static int content_chunk(const struct sim_exchange *x, const struct sim_piece *p,
                         struct sl_buf *out)
{
    char stamp[32];
    cJSON *part;
    int candidates = p->text_words;
    if (p->kind == SIM_PIECE_REASONING && x->rq->reasoning_hidden)
        return 0;
    if (p->kind == SIM_PIECE_TOOL_START) {
        part = call_part(x->ans, p->call);
        candidates += call_words(x->ans, p->call + 1);
    } else if (p->kind == SIM_PIECE_TEXT && x->dir->stamp > 0) {
        part = text_part(stamp, (size_t)snprintf(stamp, sizeof(stamp), " %lld",
                                                 (long long)sl_now_us()), 0);
    } else {
        part = text_part(p->text, p->len, p->kind == SIM_PIECE_REASONING);
    }
    return chunk(x, part, 0, candidates, p->reasoning_words, out);
}

static int piece(const struct sim_exchange *x, const struct sim_piece *p, struct sl_buf *out)
{
    const struct sim_answer *ans = x->ans;
    switch (p->kind) {
    case SIM_PIECE_KEEPALIVE:
        return sl_buf_puts(out, ": keep-alive\r\n\r\n");
    case SIM_PIECE_REASONING:
    case SIM_PIECE_TEXT:
    case SIM_PIECE_TOOL_START:
        return content_chunk(x, p, out);
    case SIM_PIECE_FINISH: /* as Gemini 3: an empty text part carries the finishReason */
        return chunk(x, text_part("", 0, 0), 1, ans->completion_tokens - ans->reasoning_tokens,
                     ans->reasoning_tokens, out);
    case SIM_PIECE_MALFORMED:
        return sl_buf_puts(out, "data: {not json\r\n\r\n");
    case SIM_PIECE_ERROR: {
        struct sim_error e = {500, "Simulated error in the middle of the stream.", NULL, NULL, -1};
        return sl_buf_puts(out, "data: ") || sl_sim_gemini.error(&e, out) ||
               sl_buf_puts(out, "\r\n\r\n");
    }
    default: /* start, argument fragments, usage, the end: nothing on this wire */
        return 0;
    }
}

/* ---- errors ---- */

static const char *error_status(int status)
{
    switch (status) {
    case 401:
        return "UNAUTHENTICATED";
    case 403:
        return "PERMISSION_DENIED";
    case 404:
        return "NOT_FOUND";
    case 409:
        return "ABORTED";
    case 429:
        return "RESOURCE_EXHAUSTED";
    case 499:
        return "CANCELLED";
    case 501:
        return "UNIMPLEMENTED";
    case 503:
    case 529:
        return "UNAVAILABLE";
    case 504:
        return "DEADLINE_EXCEEDED";
    default:
        return status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
    }
}

/* The one place that writes the simulator's Gemini error JSON. A 429 says when to retry
 * in a RetryInfo detail (@sim:retry_after, else 1 s): the API sends no Retry-After. */
static int error(const struct sim_error *err, struct sl_buf *out)
{
    cJSON *body = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(body, "error");
    cJSON_AddNumberToObject(e, "code", err->status);
    cJSON_AddStringToObject(e, "message", err->message);
    cJSON_AddStringToObject(e, "status", error_status(err->status));
    if (err->status == 429) {
        char delay[24];
        snprintf(delay, sizeof(delay), "%ds", err->retry_after >= 0 ? err->retry_after : 1);
        cJSON *info = cJSON_CreateObject();
        cJSON_AddStringToObject(info, "@type", "type.googleapis.com/google.rpc.RetryInfo");
        cJSON_AddStringToObject(info, "retryDelay", delay);
        cJSON_AddItemToArray(cJSON_AddArrayToObject(e, "details"), info);
    }
    return sl_sim_append_json(body, 1, out);
}

const struct sim_wire sl_sim_gemini = {
    .id_prefix = "sim-resp-",
    .request_id_header = NULL,
    .retry_after_header = 0,
    .decode = decode,
    .reply = reply,
    .piece = piece,
    .error = error,
};

/* ---- the route ---- */

static int wants_sse(struct evhttp_request *req)
{
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    if (!query || evhttp_parse_query_str(query, &q) != 0)
        return 0;
    const char *alt = evhttp_find_header(&q, "alt");
    int sse = alt && strcmp(alt, "sse") == 0;
    evhttp_clear_headers(&q);
    return sse;
}

void sl_sim_gemini_route(struct sim_loop *l, struct evhttp_request *req, const char *arg)
{
    const char *colon = strrchr(arg, ':');
    const char *method = colon ? colon + 1 : "";
    char model[SL_MAX_NAME + 1];
    snprintf(model, sizeof(model), "%.*s", colon ? (int)(colon - arg) : 0, arg);
    if (strcmp(method, "generateContent") == 0)
        sl_sim_chat(l, req, &sl_sim_gemini, arg);
    else if (strcmp(method, "streamGenerateContent") == 0 && wants_sse(req))
        sl_sim_chat(l, req, &sl_sim_gemini, arg);
    else if (strcmp(method, "streamGenerateContent") == 0)
        sl_sim_fail(l, req, &sl_sim_gemini, 400,
                    "The simulator streams only in the alt=sse form.", NULL);
    else if (strcmp(method, "embedContent") == 0 || strcmp(method, "batchEmbedContents") == 0)
        sl_sim_embed_gemini(l, req, model, method[0] == 'b');
    else {
        char msg[SL_MAX_NAME + 160];
        snprintf(msg, sizeof(msg), "models/%.128s is not found for API version v1beta, or is "
                                   "not supported for %.32s.", model, method);
        sl_sim_fail(l, req, &sl_sim_gemini, 404, msg, NULL);
    }
}
