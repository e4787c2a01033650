/* Gemini upstream, stream side: each alt=sse event is a whole GenerateContentResponse
 * holding only the new parts; it becomes OpenAI chat.completion.chunk objects. Gemini
 * has no terminator: the finishReason, then the connection end, close the stream. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/json.h"
#include "formats/gemini.h"

static const cJSON *get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

void sl_gemini_stream_init(void *st, const char *id, const char *model)
{
    struct sl_gemini_stream *s = st;
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id ? id : "chatcmpl-gemini");
    snprintf(s->model, sizeof(s->model), "%s", model ? model : "");
    s->created = (long long)(sl_wall_ms() / 1000);
}

void sl_gemini_stream_release(void *st)
{
    /* Nothing on the heap: the state is plain data in the request's arena. */
}

static cJSON *new_chunk(const struct sl_gemini_stream *s, cJSON **choices)
{
    cJSON *c = cJSON_CreateObject();
    *choices = cJSON_AddArrayToObject(c, "choices");
    if (!*choices || !cJSON_AddStringToObject(c, "id", s->id) ||
        !cJSON_AddStringToObject(c, "object", "chat.completion.chunk") ||
        !cJSON_AddNumberToObject(c, "created", (double)s->created) ||
        !cJSON_AddStringToObject(c, "model", s->model)) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* A choice {index, delta} in chunk; the delta opens with the role the first time. */
static cJSON *add_choice(struct sl_gemini_stream *s, cJSON *choices, int idx)
{
    cJSON *ch = cJSON_CreateObject();
    if (!ch || !cJSON_AddItemToArray(choices, ch)) {
        cJSON_Delete(ch);
        return NULL;
    }
    cJSON *delta = cJSON_AddObjectToObject(ch, "delta");
    if (!cJSON_AddNumberToObject(ch, "index", idx) || !delta)
        return NULL;
    if (!(s->role_sent & (1u << idx))) {
        s->role_sent |= 1u << idx;
        if (!cJSON_AddStringToObject(delta, "role", "assistant"))
            return NULL;
    }
    return delta;
}

/* Content of one candidate into chunk, and its finish (if any) into fin. */
static int candidate(struct sl_gemini_stream *s, const cJSON *cand, int idx, cJSON *choices,
                     cJSON *fin)
{
    const cJSON *parts = get(get(cand, "content"), "parts");
    const char *reason = sl_json_str(cand, "finishReason", NULL);
    int n = 0;
    if (cJSON_GetArraySize(parts) > 0 || (!reason && !(s->role_sent & (1u << idx)))) {
        cJSON *delta = add_choice(s, choices, idx);
        n = delta ? sl_gemini_parts(cand, delta, &s->call_seq, s->calls[idx]) : -1;
        if (n < 0)
            return -1;
        s->calls[idx] += n;
        if (cJSON_GetArraySize(delta) == 0) /* e.g. Gemini 3's empty text part with a signature */
            cJSON_DeleteItemFromArray(choices, cJSON_GetArraySize(choices) - 1);
    }
    if (!reason)
        return 0;
    s->finished = 1;
    cJSON *delta = add_choice(s, fin, idx);
    cJSON *ch = cJSON_GetArrayItem(fin, cJSON_GetArraySize(fin) - 1);
    const char *fr = sl_gemini_finish(reason, s->calls[idx] > 0);
    return delta && cJSON_AddStringToObject(ch, "finish_reason", fr) ? 0 : -1;
}

/* Emits the content chunk, then (OpenAI's shape) a separate finish chunk. */
static int emit_candidates(struct sl_gemini_stream *s, const cJSON *root, sl_chunk_cb emit,
                           void *arg, struct sl_error *e)
{
    cJSON *choices, *fin_choices;
    cJSON *chunk = new_chunk(s, &choices), *fin = new_chunk(s, &fin_choices);
    const cJSON *cand;
    int pos = 0, rc = chunk && fin ? 0 : -1;
    cJSON_ArrayForEach(cand, get(root, "candidates"))
    {
        int idx = (int)sl_json_int(cand, "index", pos++);
        if (!rc && idx >= 0 && idx < SL_GEMINI_MAX_CANDIDATES)
            rc = candidate(s, cand, idx, choices, fin_choices);
    }
    if (rc)
        sl_error_set(e, 500, "api_error", "out of memory");
    if (!rc && cJSON_GetArraySize(choices) > 0 && emit(arg, chunk))
        rc = -1;
    if (!rc && cJSON_GetArraySize(fin_choices) > 0 && emit(arg, fin))
        rc = -1;
    if (rc && !e->message[0])
        sl_error_set(e, 500, "api_error", "the client stream could not take a chunk");
    cJSON_Delete(chunk);
    cJSON_Delete(fin);
    return rc;
}

int sl_gemini_stream_event(void *st, const struct sl_sse_event *ev, sl_chunk_cb emit, void *arg,
                           struct sl_usage *u, struct sl_error *e)
{
    struct sl_gemini_stream *s = st;
    if (ev->comment || ev->data_len == 0)
        return 0;
    cJSON *root = cJSON_ParseWithLength(ev->data, ev->data_len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        sl_error_set(e, 502, "upstream_error", "Gemini sent a malformed stream event");
        return -1;
    }
    const cJSON *err = get(root, "error");
    int rc;
    if (cJSON_IsObject(err)) {
        sl_gemini_error(err, 0, e); /* undocumented in-band form; its code is the status */
        rc = -1;
    } else {
        sl_gemini_usage(root, u); /* cumulative: the last one wins */
        e->message[0] = '\0';
        rc = emit_candidates(s, root, emit, arg, e);
    }
    cJSON_Delete(root);
    return rc;
}

int sl_gemini_stream_end(void *st, sl_chunk_cb emit, void *arg, struct sl_usage *u)
{
    const struct sl_gemini_stream *s = st;
    return s->finished;
}
