/* Gemini upstream, reply side: GenerateContentResponse -> chat.completion, Gemini error
 * bodies -> sl_error, usageMetadata -> sl_usage; and the vtable. Requests are built in
 * gemini_request.c, streams decoded in gemini_stream.c. */
#include "formats/gemini.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "formats/openai.h"

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static int64_t count(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);
    return cJSON_IsNumber(v) && v->valuedouble > 0 ? sl_json_clamp_int(v->valuedouble) : 0;
}

int sl_gemini_usage(const cJSON *resp, struct sl_usage *u)
{
    const cJSON *um = get(resp, "usageMetadata");
    if (!cJSON_IsObject(um))
        return 0;
    /* promptTokenCount includes the cached part; candidatesTokenCount excludes thoughts,
     * while OpenAI's completion_tokens include reasoning. Zero counts are omitted. */
    u->prompt = count(um, "promptTokenCount");
    u->cached = count(um, "cachedContentTokenCount");
    u->reasoning = count(um, "thoughtsTokenCount");
    u->completion = count(um, "candidatesTokenCount") + u->reasoning;
    u->present = 1;
    return 1;
}

const char *sl_gemini_finish(const char *reason, int had_calls)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "LANGUAGE",
        "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
    };
    if (!reason)
        return NULL;
    if (strcmp(reason, "MAX_TOKENS") == 0)
        return "length";
    for (size_t i = 0; i < sizeof(filtered) / sizeof(filtered[0]); i++)
        if (strcmp(reason, filtered[i]) == 0)
            return "content_filter";
    /* STOP, and by policy OTHER, MALFORMED_FUNCTION_CALL and the rest: Gemini has no
     * finish reason of its own for function calls. */
    return had_calls ? "tool_calls" : "stop";
}

static int add_call(cJSON *calls, const cJSON *part, int *seq, int index)
{
    const cJSON *fc = get(part, "functionCall");
    char id[32];
    const char *gid = sl_json_str(fc, "id", NULL);
    snprintf(id, sizeof(id), "call_%d", (*seq)++);
    char *args = cJSON_IsObject(get(fc, "args")) ? cJSON_PrintUnformatted(get(fc, "args")) : NULL;
    cJSON *call = cJSON_CreateObject();
    int ok = call && cJSON_AddItemToArray(calls, call);
    if (!ok)
        cJSON_Delete(call);
    cJSON *fn = ok ? cJSON_AddObjectToObject(call, "function") : NULL;
    ok = fn && (index < 0 || cJSON_AddNumberToObject(call, "index", index)) &&
         cJSON_AddStringToObject(call, "id", gid && *gid ? gid : id) &&
         cJSON_AddStringToObject(call, "type", "function") &&
         cJSON_AddStringToObject(fn, "name", sl_json_str(fc, "name", "")) &&
         cJSON_AddStringToObject(fn, "arguments", args ? args : "{}");
    cJSON_free(args);
    /* The signature must come back with the next turn: it rides on the tool call in the
     * field Google's own OpenAI-compatible endpoint uses. */
    const char *sig = sl_json_str(part, "thoughtSignature", NULL);
    if (ok && sig) {
        cJSON *g = cJSON_AddObjectToObject(cJSON_AddObjectToObject(call, "extra_content"), "google");
        ok = g && cJSON_AddStringToObject(g, "thought_signature", sig);
    }
    return ok ? 0 : -1;
}

static int add_joined(cJSON *msg, const char *key, const struct sl_buf *b)
{
    return !b->len || cJSON_AddStringToObject(msg, key, b->ptr) ? 0 : -1;
}

int sl_gemini_parts(const cJSON *candidate, cJSON *msg, int *seq, int index_base)
{
    struct sl_buf text = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    struct sl_buf thought = SL_BUF_INIT(SL_MAX_UPSTREAM_BODY);
    cJSON *calls = cJSON_CreateArray();
    const cJSON *part;
    int rc = calls ? 0 : -1, n = 0;
    cJSON_ArrayForEach(part, get(get(candidate, "content"), "parts"))
    {
        const char *t = sl_json_str(part, "text", NULL);
        if (rc)
            break;
        if (get(part, "functionCall"))
            rc = add_call(calls, part, seq, index_base < 0 ? -1 : index_base + n++);
        else if (t)
            rc = sl_buf_puts(sl_json_bool(part, "thought", 0) ? &thought : &text, t);
        /* executableCode, inlineData and the like have no OpenAI Chat equivalent. */
    }
    rc = rc ? rc : add_joined(msg, "content", &text);
    rc = rc ? rc : add_joined(msg, "reasoning_content", &thought);
    if (!rc && cJSON_GetArraySize(calls) > 0) {
        n = cJSON_GetArraySize(calls);
        rc = cJSON_AddItemToObject(msg, "tool_calls", calls) ? 0 : -1;
        calls = rc ? calls : NULL;
    }
    cJSON_Delete(calls);
    sl_buf_release(&text);
    sl_buf_release(&thought);
    return rc ? -1 : n;
}

/* Whole seconds to wait, rounded up, from a RetryInfo detail ("26s", "0.5s"). */
static void retry_delay(const cJSON *details, char *out, size_t size)
{
    const cJSON *d;
    cJSON_ArrayForEach(d, details)
    {
        const char *type = sl_json_str(d, "@type", "");
        const char *delay = sl_json_str(d, "retryDelay", NULL);
        if (!strstr(type, "RetryInfo") || !delay)
            continue;
        double s = strtod(delay, NULL);
        if (s >= 0 && s < 86400.0 * 365)
            snprintf(out, size, "%lld", (long long)ceil(s));
        return;
    }
}

/* google.rpc status -> OpenAI error type; NULL = by HTTP status. */
static const char *error_type(const char *status, const cJSON *details)
{
    static const char *const map[][2] = {
        {"INVALID_ARGUMENT", "invalid_request_error"}, {"FAILED_PRECONDITION", "invalid_request_error"},
        {"OUT_OF_RANGE", "invalid_request_error"},     {"UNAUTHENTICATED", "authentication_error"},
        {"PERMISSION_DENIED", "permission_error"},     {"NOT_FOUND", "not_found_error"},
        {"RESOURCE_EXHAUSTED", "rate_limit_error"},    {"UNAVAILABLE", "api_error"},
        {"INTERNAL", "api_error"},                     {"DEADLINE_EXCEEDED", "timeout_error"},
    };
    const cJSON *d;
    /* A bad key is a 400 INVALID_ARGUMENT for Google; its ErrorInfo reason says what it is. */
    cJSON_ArrayForEach(d, details)
    {
        if (strcmp(sl_json_str(d, "reason", ""), "API_KEY_INVALID") == 0)
            return "authentication_error";
    }
    for (size_t i = 0; status && i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(status, map[i][0]) == 0)
            return map[i][1];
    return NULL;
}

void sl_gemini_error(const cJSON *err, int status, struct sl_error *e)
{
    const char *st = sl_json_str(err, "status", NULL);
    const char *msg = sl_json_str(err, "message", NULL);
    const cJSON *details = get(err, "details");
    if (status <= 0)
        status = (int)sl_json_int(err, "code", 502);
    const char *type = error_type(st, details);
    sl_error_set(e, status, type ? type : sl_openai_error_type(status), "%s",
                 msg ? msg : "Gemini reported an error");
    if (st)
        snprintf(e->code, sizeof(e->code), "%s", st);
    retry_delay(details, e->retry_after, sizeof(e->retry_after));
}

/* The error object of a body: {"error":{...}}, or [{"error":{...}}] from a streaming
 * request that failed before it started. */
static const cJSON *error_of(const cJSON *root)
{
    const cJSON *err = get(cJSON_IsArray(root) ? cJSON_GetArrayItem(root, 0) : root, "error");
    return cJSON_IsObject(err) ? err : NULL;
}

static void decode_error(int status, const char *body, size_t len, struct sl_error *e)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *err = error_of(root);
    if (err)
        sl_gemini_error(err, status, e);
    else
        sl_error_set(e, status, sl_openai_error_type(status), "Gemini answered HTTP %d: %.*s",
                     status, (int)(len < 200 ? len : 200), body);
    cJSON_Delete(root);
}

static int add_choice(cJSON *choices, const cJSON *cand, int pos, int *seq)
{
    cJSON *choice = cJSON_CreateObject();
    if (!choice || !cJSON_AddItemToArray(choices, choice)) {
        cJSON_Delete(choice);
        return -1;
    }
    cJSON *msg = cJSON_AddObjectToObject(choice, "message");
    if (!cJSON_AddNumberToObject(choice, "index", (double)sl_json_int(cand, "index", pos)) || !msg ||
        !cJSON_AddStringToObject(msg, "role", "assistant"))
        return -1;
    int calls = sl_gemini_parts(cand, msg, seq, -1);
    if (calls < 0)
        return -1;
    /* A candidate may have no content at all (thinking used the whole budget, a block). */
    if (!get(msg, "content") &&
        !(calls ? cJSON_AddNullToObject(msg, "content") : cJSON_AddStringToObject(msg, "content", "")))
        return -1;
    const char *fr = sl_gemini_finish(sl_json_str(cand, "finishReason", "STOP"), calls > 0);
    return cJSON_AddStringToObject(choice, "finish_reason", fr) ? 0 : -1;
}

/* No candidates: the prompt itself was blocked (promptFeedback.blockReason). */
static int add_blocked(cJSON *choices)
{
    cJSON *c = cJSON_CreateObject();
    if (!c || !cJSON_AddItemToArray(choices, c)) {
        cJSON_Delete(c);
        return -1;
    }
    cJSON *msg = cJSON_AddObjectToObject(c, "message");
    return cJSON_AddNumberToObject(c, "index", 0) && msg &&
                   cJSON_AddStringToObject(msg, "role", "assistant") &&
                   cJSON_AddNullToObject(msg, "content") &&
                   cJSON_AddStringToObject(c, "finish_reason", "content_filter")
               ? 0
               : -1;
}

static int add_usage(cJSON *out, const struct sl_usage *u)
{
    cJSON *usage = cJSON_AddObjectToObject(out, "usage");
    cJSON *pd = cJSON_AddObjectToObject(usage, "prompt_tokens_details");
    cJSON *cd = cJSON_AddObjectToObject(usage, "completion_tokens_details");
    return usage && pd && cd && cJSON_AddNumberToObject(usage, "prompt_tokens", (double)u->prompt) &&
                   cJSON_AddNumberToObject(usage, "completion_tokens", (double)u->completion) &&
                   cJSON_AddNumberToObject(usage, "total_tokens", (double)(u->prompt + u->completion)) &&
                   cJSON_AddNumberToObject(pd, "cached_tokens", (double)u->cached) &&
                   cJSON_AddNumberToObject(cd, "reasoning_tokens", (double)u->reasoning)
               ? 0
               : -1;
}

static cJSON *completion(const cJSON *root, const char *model, struct sl_usage *u)
{
    char id[96];
    const char *rid = sl_json_str(root, "responseId", NULL);
    if (rid)
        snprintf(id, sizeof(id), "chatcmpl-%s", rid);
    else
        snprintf(id, sizeof(id), "chatcmpl-%llx", (unsigned long long)sl_now_us());
    cJSON *out = cJSON_CreateObject();
    cJSON *choices = cJSON_AddArrayToObject(out, "choices");
    int seq = 0, rc = !choices || !cJSON_AddStringToObject(out, "id", id) ||
                      !cJSON_AddStringToObject(out, "object", "chat.completion") ||
                      !cJSON_AddNumberToObject(out, "created", (double)(sl_wall_ms() / 1000)) ||
                      !cJSON_AddStringToObject(out, "model",
                                               model ? model : sl_json_str(root, "modelVersion", ""));
    const cJSON *cand, *cands = get(root, "candidates");
    int pos = 0;
    cJSON_ArrayForEach(cand, cands)
    {
        rc = rc ? rc : add_choice(choices, cand, pos++, &seq);
    }
    if (!rc && cJSON_GetArraySize(cands) == 0)
        rc = add_blocked(choices);
    if (!rc && sl_gemini_usage(root, u))
        rc = add_usage(out, u);
    if (rc) {
        cJSON_Delete(out);
        return NULL;
    }
    return out;
}

static cJSON *decode_reply(const char *body, size_t len, const char *model, struct sl_usage *u,
                           struct sl_error *e)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        sl_error_set(e, 502, "upstream_error", "the Gemini reply is not a GenerateContentResponse");
        return NULL;
    }
    const cJSON *err = error_of(root);
    cJSON *out = err ? NULL : completion(root, model, u);
    if (err)
        sl_gemini_error(err, 502, e);
    else if (!out)
        sl_error_set(e, 500, "api_error", "out of memory");
    cJSON_Delete(root);
    return out;
}

/* Pass-through only: the last usageMetadata of an event, a reply, or the JSON-array
 * form of a stream. */
static void sniff_usage(const struct sl_sse_event *ev, const char *body, size_t len,
                        struct sl_usage *u)
{
    cJSON *root = ev ? cJSON_ParseWithLength(ev->data, ev->data_len) : cJSON_ParseWithLength(body, len);
    const cJSON *item;
    if (cJSON_IsArray(root)) {
        cJSON_ArrayForEach(item, root)
        {
            sl_gemini_usage(item, u);
        }
    } else if (root) {
        sl_gemini_usage(root, u);
    }
    cJSON_Delete(root);
}

const struct sl_upstream_format sl_gemini_upstream = {
    .wire = SL_WIRE_GEMINI,
    .encode = sl_gemini_encode,
    .decode_reply = decode_reply,
    .decode_error = decode_error,
    .stream_size = sizeof(struct sl_gemini_stream),
    .stream_init = sl_gemini_stream_init,
    .stream_event = sl_gemini_stream_event,
    .stream_end = sl_gemini_stream_end,
    .stream_release = sl_gemini_stream_release,
    .sniff_usage = sniff_usage,
};
