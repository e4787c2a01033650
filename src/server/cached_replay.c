/* A cached completion replayed as a stream in the client's format: canonical chunks
 * built from the stored chat.completion and encoded by the client format's stream
 * encoder, as if a provider had sent them. */
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "formats/format.h"
#include "server/cached.h"
#include "server/plan.h"

#define REPLAY_PIECE 48 /* bytes of content per replayed stream chunk */

static cJSON *chunk_new(struct sl_exchange *x, const char *model, cJSON **delta)
{
    cJSON *c = cJSON_CreateObject(), *choices = NULL, *choice = NULL;
    if (c && cJSON_AddStringToObject(c, "id", x->id) &&
        cJSON_AddStringToObject(c, "object", "chat.completion.chunk") &&
        cJSON_AddNumberToObject(c, "created", (double)(sl_wall_ms() / 1000)) &&
        cJSON_AddStringToObject(c, "model", model) && (choices = cJSON_AddArrayToObject(c, "choices")) &&
        (choice = cJSON_CreateObject()) && cJSON_AddItemToArray(choices, choice) &&
        cJSON_AddNumberToObject(choice, "index", 0) &&
        (*delta = cJSON_AddObjectToObject(choice, "delta")) &&
        cJSON_AddNullToObject(choice, "finish_reason"))
        return c;
    cJSON_Delete(c);
    return NULL;
}

/* Encodes one chunk with delta[key] = s[0..n) (key NULL: an empty delta). */
static int emit_piece(struct sl_exchange *x, const struct sl_client_format *cf, void *enc,
                      const char *model, const char *key, const char *s, size_t n,
                      const char *finish, struct sl_buf *out)
{
    cJSON *delta = NULL;
    cJSON *chunk = chunk_new(x, model, &delta);
    int rc = -1;
    char *text = key ? sl_arena_strndup(x->arena, s, n) : NULL;
    if (chunk && (!key || (text && cJSON_AddStringToObject(delta, key, text)))) {
        if (finish) {
            cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(chunk, "choices"), 0);
            cJSON_ReplaceItemInObjectCaseSensitive(choice, "finish_reason", cJSON_CreateString(finish));
        }
        rc = cf->stream_chunk(enc, chunk, out);
    }
    cJSON_Delete(chunk);
    return rc;
}

/* Pieces of s cut on UTF-8 character boundaries. */
static int emit_text(struct sl_exchange *x, const struct sl_client_format *cf, void *enc,
                     const char *model, const char *key, const char *s, struct sl_buf *out)
{
    size_t len = strlen(s), off = 0;
    int rc = 0;
    while (off < len && !rc) {
        size_t n = len - off > REPLAY_PIECE ? REPLAY_PIECE : len - off;
        while (off + n < len && ((unsigned char)s[off + n] & 0xC0) == 0x80)
            n++;
        rc = emit_piece(x, cf, enc, model, key, s + off, n, NULL, out);
        off += n;
    }
    return rc;
}

static int emit_tool_calls(struct sl_exchange *x, const struct sl_client_format *cf, void *enc,
                           const char *model, const cJSON *calls, struct sl_buf *out)
{
    cJSON *delta = NULL, *chunk = chunk_new(x, model, &delta), *copy = cJSON_Duplicate(calls, 1);
    int rc = -1, i = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, copy)
    {
        if (!cJSON_GetObjectItemCaseSensitive(it, "index"))
            cJSON_AddNumberToObject(it, "index", i);
        i++;
    }
    if (chunk && copy && cJSON_AddItemToObject(delta, "tool_calls", copy)) {
        copy = NULL;
        rc = cf->stream_chunk(enc, chunk, out);
    }
    cJSON_Delete(copy);
    cJSON_Delete(chunk);
    return rc;
}

static void on_enc_cleanup(void *arg)
{
    void **pair = arg;
    ((const struct sl_client_format *)pair[0])->stream_release(pair[1]);
}

/* A cached completion as a stream in the client's format: the role, the reasoning and
 * content in pieces, tool calls, the finish, then the format's ending (usage when the
 * client asked for it, [DONE] or message_stop). */
int sl_cached_replay_stream(struct sl_exchange *x, const struct sl_plan *p, const cJSON *comp,
                            const struct sl_usage *u, struct sl_buf *out)
{
    const struct sl_client_format *cf = p->cf;
    const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(comp, "choices"), 0);
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, "message");
    const char *model = sl_json_str(comp, "model", x->row.model);
    const char *finish = sl_json_str(choice, "finish_reason", "stop");
    void *enc = sl_arena_alloc(x->arena, cf->stream_size ? cf->stream_size : 1);
    void **pair = sl_arena_alloc(x->arena, 2 * sizeof(void *));
    if (!enc || !pair)
        return -1;
    int usage = sl_json_bool(cJSON_GetObjectItemCaseSensitive(p->req, "stream_options"),
                             "include_usage", 0);
    cf->stream_init(enc, x->id, model, usage);
    pair[0] = (void *)cf;
    pair[1] = enc;
    if (sl_arena_cleanup(x->arena, on_enc_cleanup, pair)) {
        cf->stream_release(enc);
        return -1;
    }
    int rc = emit_piece(x, cf, enc, model, "role", "assistant", 9, NULL, out);
    const char *reasoning = sl_json_str(msg, "reasoning_content", NULL);
    const char *content = sl_json_str(msg, "content", NULL);
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls");
    if (!rc && reasoning && reasoning[0])
        rc = emit_text(x, cf, enc, model, "reasoning_content", reasoning, out);
    if (!rc && content && content[0])
        rc = emit_text(x, cf, enc, model, "content", content, out);
    if (!rc && cJSON_GetArraySize(calls) > 0)
        rc = emit_tool_calls(x, cf, enc, model, calls, out);
    if (!rc)
        rc = emit_piece(x, cf, enc, model, NULL, NULL, 0, finish, out);
    return rc ? rc : cf->stream_end(enc, u, out);
}

