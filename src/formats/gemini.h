/* Google Gemini (Generative Language API, generateContent) as an upstream format.
 * The vtable is sl_gemini_upstream; the rest is shared by gemini*.c and unit tests. */
#ifndef SL_FORMAT_GEMINI_H
#define SL_FORMAT_GEMINI_H

#include <cjson/cJSON.h>

#include "core/limits.h"
#include "formats/format.h"

extern const struct sl_upstream_format sl_gemini_upstream;

/* candidateCount is at most 8 on Gemini; candidates beyond that are ignored. */
#define SL_GEMINI_MAX_CANDIDATES 8

/* Decoder state of one alt=sse stream (lives in the request's arena, no heap). */
struct sl_gemini_stream {
    char id[96];
    char model[SL_MAX_NAME + 1];
    long long created;
    int finished;  /* a finishReason was seen: the connection end is then the terminator */
    int call_seq;  /* synthesized tool-call ids, unique across the whole stream */
    unsigned role_sent;                     /* bit per candidate */
    int calls[SL_GEMINI_MAX_CANDIDATES];    /* tool calls so far, per candidate */
};

/* encode() of the vtable (gemini_request.c). */
int sl_gemini_encode(const cJSON *req, const struct sl_model_cfg *m, int stream,
                     struct sl_arena *a, struct sl_encoded *out, struct sl_error *e);

/* Adds to msg (a message or a stream delta) what a candidate's content parts carry:
 * "content" (text parts joined), "reasoning_content" (parts with thought:true) and
 * "tool_calls" (functionCall parts; ids are Gemini's or "call_<*seq>", signatures go
 * to extra_content.google.thought_signature). index_base >= 0 adds OpenAI's stream
 * "index" numbering from there. Returns the number of tool calls added, -1 when out
 * of memory. */
int sl_gemini_parts(const cJSON *candidate, cJSON *msg, int *seq, int index_base);

/* OpenAI finish_reason for a Gemini finishReason (NULL for NULL); a turn that made
 * function calls and stopped normally ends with "tool_calls". */
const char *sl_gemini_finish(const char *reason, int had_calls);

/* Reads usageMetadata of a GenerateContentResponse into u (overwrites: Gemini's
 * counts are cumulative). Returns 1 when found, else 0 and u untouched. */
int sl_gemini_usage(const cJSON *resp, struct sl_usage *u);

/* Fills e from a Gemini error object {"code","message","status","details"}; status
 * 0 takes the object's code (or 502). RetryInfo.retryDelay goes to e->retry_after
 * as whole seconds. */
void sl_gemini_error(const cJSON *err, int status, struct sl_error *e);

/* The stream half of the vtable (gemini_stream.c). */
void sl_gemini_stream_init(void *st, const char *id, const char *model);
int sl_gemini_stream_event(void *st, const struct sl_sse_event *ev, sl_chunk_cb emit, void *arg,
                           struct sl_usage *u, struct sl_error *e);
int sl_gemini_stream_end(void *st, sl_chunk_cb emit, void *arg, struct sl_usage *u);
void sl_gemini_stream_release(void *st);

#endif
