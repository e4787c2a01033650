/* OpenAI-compatible providers on the translation path (a client of another format,
 * e.g. an Anthropic SDK, talking to DeepSeek, Qwen, Kimi or GLM). OpenAI clients of
 * these providers take the byte-preserving fast path in src/server/chat.c instead. */
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "formats/format.h"
#include "formats/openai.h"
#include "providers/providers.h"

struct stream {
    int saw_done, saw_finish;
};

static int encode(const cJSON *req, const struct sl_model_cfg *m, int stream, struct sl_arena *a,
                  struct sl_encoded *out, struct sl_error *e)
{
    struct sl_json_edit edits[8];
    int n = sl_provider_edits(m, req, stream, a, edits, 8);
    cJSON *copy = n >= 0 ? cJSON_Duplicate(req, 1) : NULL;
    if (!copy)
        goto oom;
    cJSON_DeleteItemFromObjectCaseSensitive(copy, "stream");
    cJSON_AddBoolToObject(copy, "stream", stream);
    if (!stream)
        cJSON_DeleteItemFromObjectCaseSensitive(copy, "stream_options");
    char *body = sl_json_apply_edits_tree(copy, edits, n) == 0 ? cJSON_PrintUnformatted(copy) : NULL;
    cJSON_Delete(copy);
    if (!body)
        goto oom;
    out->len = strlen(body);
    out->body = sl_arena_strndup(a, body, out->len);
    cJSON_free(body);
    out->url = sl_arena_sprintf(a, "%s/chat/completions", m->p->base_url);
    out->nheaders = 0;
    out->headers[out->nheaders++] = "Content-Type: application/json";
    out->headers[out->nheaders++] = stream ? "Accept: text/event-stream" : "Accept: application/json";
    if (m->p->api_key)
        out->headers[out->nheaders++] = sl_arena_sprintf(a, "Authorization: Bearer %s", m->p->api_key);
    return out->body && out->url ? 0 : -1;
oom:
    sl_error_set(e, 500, "api_error", "out of memory");
    return -1;
}

static cJSON *decode_reply(const char *body, size_t len, const char *model, struct sl_usage *u,
                           struct sl_error *e)
{
    while (len && (*body == ' ' || *body == '\n' || *body == '\r' || *body == '\t')) {
        body++; /* DeepSeek's blank lines while a non-stream request waits */
        len--;
    }
    cJSON *obj = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(obj) || !cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(obj, "choices"))) {
        cJSON_Delete(obj);
        sl_error_set(e, 502, "upstream_error", "the upstream reply is not a chat completion");
        return NULL;
    }
    sl_openai_usage(obj, u);
    return obj;
}

static void decode_error(int status, const char *body, size_t len, struct sl_error *e)
{
    cJSON *parsed;
    const char *message, *type, *code;
    sl_openai_error_from_upstream(body, len, &parsed, &message, &type, &code);
    if (message)
        sl_error_set(e, status, type ? type : sl_openai_error_type(status), "%s", message);
    else
        sl_error_set(e, status, sl_openai_error_type(status), "upstream answered HTTP %d: %.*s",
                     status, (int)(len < 200 ? len : 200), body);
    if (code)
        snprintf(e->code, sizeof(e->code), "%s", code);
    cJSON_Delete(parsed);
}

static void stream_init(void *st, const char *id, const char *model)
{
}

static int stream_event(void *st, const struct sl_sse_event *ev, sl_chunk_cb emit, void *arg,
                        struct sl_usage *u, struct sl_error *e)
{
    struct stream *s = st;
    if (ev->comment)
        return 0;
    if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
        s->saw_done = 1;
        return 1;
    }
    cJSON *obj = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (!cJSON_IsObject(obj)) {
        cJSON_Delete(obj);
        sl_error_set(e, 502, "upstream_error", "the upstream sent a malformed stream event");
        return -1;
    }
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(obj, "error");
    if (err && !cJSON_IsNull(err)) {
        const char *msg = sl_json_str(err, "message", cJSON_IsString(err) ? err->valuestring : NULL);
        sl_error_set(e, 502, sl_json_str(err, "type", "upstream_error"), "%s",
                     msg ? msg : "the upstream reported an error mid-stream");
        cJSON_Delete(obj);
        return -1;
    }
    int had_usage = sl_openai_usage(obj, u);
    cJSON *choices = cJSON_GetObjectItemCaseSensitive(obj, "choices");
    s->saw_finish |= sl_openai_has_finish(obj);
    int rc = 0;
    if (!had_usage || cJSON_GetArraySize(choices) > 0) {
        /* Usage is the encoder's business at the end; the chunk carries content only. */
        cJSON_DeleteItemFromObjectCaseSensitive(obj, "usage");
        cJSON_DeleteItemFromObjectCaseSensitive(cJSON_GetArrayItem(choices, 0), "usage");
        rc = emit(arg, obj);
    }
    cJSON_Delete(obj);
    if (rc)
        sl_error_set(e, 500, "api_error", "cannot encode the stream for the client");
    return rc ? -1 : 0;
}

static int stream_end(void *st, sl_chunk_cb emit, void *arg, struct sl_usage *u)
{
    const struct stream *s = st;
    return s->saw_done || s->saw_finish; /* some compatible servers omit [DONE] */
}

static void stream_release(void *st)
{
}

static void sniff_usage(const struct sl_sse_event *ev, const char *body, size_t len,
                        struct sl_usage *u)
{
    cJSON *obj = ev ? cJSON_ParseWithLength(ev->data, ev->data_len) : cJSON_ParseWithLength(body, len);
    if (obj)
        sl_openai_usage(obj, u);
    cJSON_Delete(obj);
}

const struct sl_upstream_format sl_openai_upstream = {
    .wire = SL_WIRE_OPENAI,
    .encode = encode,
    .decode_reply = decode_reply,
    .decode_error = decode_error,
    .stream_size = sizeof(struct stream),
    .stream_init = stream_init,
    .stream_event = stream_event,
    .stream_end = stream_end,
    .stream_release = stream_release,
    .sniff_usage = sniff_usage,
};
