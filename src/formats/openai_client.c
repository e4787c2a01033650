/* OpenAI-format clients: request validation (also used by the fast path), and the
 * encoders for replies that were translated from another provider format. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "formats/format.h"
#include "formats/openai.h"

struct stream {
    char id[96], model[128];
    long long created;
    int include_usage;
};

/* param may point into root: copied before root goes. */
static cJSON *invalid(cJSON *root, struct sl_error *e, const char *param, const char *msg)
{
    sl_error_set(e, 400, "invalid_request_error", "%s", msg);
    if (param)
        snprintf(e->param, sizeof(e->param), "%.63s", param);
    cJSON_Delete(root);
    return NULL;
}

static int messages_ok(const cJSON *messages)
{
    const cJSON *m;
    if (!cJSON_IsArray(messages) || cJSON_GetArraySize(messages) == 0)
        return 0;
    cJSON_ArrayForEach(m, messages)
    {
        if (!cJSON_IsObject(m) || !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(m, "role")))
            return 0;
    }
    return 1;
}

static cJSON *decode_request(const char *body, size_t len, struct sl_error *e)
{
    const char *end = NULL;
    char msg[160];
    long bad = sl_json_raw_control(body, len);
    if (bad >= 0) {
        snprintf(msg, sizeof(msg), "the request body has a raw control character at byte %ld", bad);
        return invalid(NULL, e, NULL, msg);
    }
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        snprintf(msg, sizeof(msg), "the request body is not valid JSON (near byte %zu)",
                 end ? (size_t)(end - body) : (size_t)0);
        return invalid(NULL, e, NULL, msg);
    }
    if (!cJSON_IsObject(root))
        return invalid(root, e, NULL, "the request body must be a JSON object");
    const char *dup = sl_json_duplicate_key(root);
    if (dup) {
        snprintf(msg, sizeof(msg), "the request has the key '%.64s' more than once", dup);
        return invalid(root, e, dup, msg);
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    if (!cJSON_IsString(model) || !model->valuestring[0])
        return invalid(root, e, "model", "'model' must be a non-empty string");
    if (!messages_ok(cJSON_GetObjectItemCaseSensitive(root, "messages")))
        return invalid(root, e, "messages",
                       "'messages' must be a non-empty array of objects with a string 'role'");
    const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, "stream");
    if (stream && !cJSON_IsBool(stream) && !cJSON_IsNull(stream))
        return invalid(root, e, "stream", "'stream' must be a boolean");
    const cJSON *so = cJSON_GetObjectItemCaseSensitive(root, "stream_options");
    if (so && !cJSON_IsObject(so) && !cJSON_IsNull(so))
        return invalid(root, e, "stream_options", "'stream_options' must be an object");
    return root;
}

static int append_json(struct sl_buf *out, const cJSON *obj)
{
    char *s = cJSON_PrintUnformatted(obj);
    int rc = s ? sl_buf_puts(out, s) : -1;
    cJSON_free(s);
    return rc;
}

static int encode_reply(const cJSON *completion, const struct sl_usage *u, struct sl_buf *out)
{
    return append_json(out, completion);
}

static void stream_init(void *st, const char *id, const char *model, int include_usage)
{
    struct stream *s = st;
    snprintf(s->id, sizeof(s->id), "%s", id);
    snprintf(s->model, sizeof(s->model), "%s", model);
    s->created = (long long)(sl_wall_ms() / 1000);
    s->include_usage = include_usage;
}

static int stream_chunk(void *st, const cJSON *chunk, struct sl_buf *out)
{
    return sl_buf_puts(out, "data: ") | append_json(out, chunk) | sl_buf_puts(out, "\n\n");
}

static int stream_end(void *st, const struct sl_usage *u, struct sl_buf *out)
{
    const struct stream *s = st;
    int rc = 0;
    if (s->include_usage) {
        rc |= sl_buf_puts(out, "data: {\"id\":");
        rc |= sl_json_quote(out, s->id, strlen(s->id));
        rc |= sl_buf_printf(out, ",\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":",
                            s->created);
        rc |= sl_json_quote(out, s->model, strlen(s->model));
        rc |= sl_buf_puts(out, ",\"choices\":[],\"usage\":");
        rc |= sl_openai_usage_json(out, u);
        rc |= sl_buf_puts(out, "}\n\n");
    }
    return rc | sl_buf_puts(out, "data: [DONE]\n\n");
}

static int error_body(const struct sl_error *e, struct sl_buf *out)
{
    return sl_openai_error(out, e->status, e->type[0] ? e->type : NULL, e->message,
                           e->param[0] ? e->param : NULL, e->code[0] ? e->code : NULL);
}

static int stream_error(void *st, const struct sl_error *e, struct sl_buf *out)
{
    return sl_buf_puts(out, "data: ") | error_body(e, out) | sl_buf_puts(out, "\n\ndata: [DONE]\n\n");
}

static void stream_release(void *st)
{
}

const struct sl_client_format sl_openai_client = {
    .name = "openai",
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
