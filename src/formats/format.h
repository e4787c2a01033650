/* Wire formats as small vtables: how sluice speaks to a provider of a kind (upstream
 * side) and how it answers a client of a format (client side). The canonical form in
 * between is OpenAI Chat Completions as a cJSON tree: requests, whole replies
 * (chat.completion) and stream chunks (chat.completion.chunk).
 *
 * When client and provider speak the same format, the server takes a pass-through path
 * instead (body spliced, events relayed unchanged) and only calls sniff_usage. */
#ifndef SL_FORMAT_H
#define SL_FORMAT_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "config/config.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/sse.h"
#include "meter/usage.h"

/* An error to report, in any format. */
struct sl_error {
    int status;        /* HTTP status */
    char type[64];     /* format-neutral: OpenAI's type names ("invalid_request_error"...) */
    char message[512];
    char code[64];     /* "" when none */
    char param[64];    /* "" when none */
    char retry_after[32]; /* Retry-After seconds from the body (Gemini RetryInfo); "" when none */
};

void sl_error_set(struct sl_error *e, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* What to send upstream. Strings live in the arena given to encode(). */
struct sl_encoded {
    const char *url;
    const char *body;
    size_t len;
    const char *headers[8]; /* "Name: value"; secrets included, never logged */
    int nheaders;
};

/* Receives one canonical chunk (a chat.completion.chunk object). Returns 0, or
 * non-zero to stop the decoder. The chunk is only valid during the call. */
typedef int (*sl_chunk_cb)(void *arg, const cJSON *chunk);

struct sl_upstream_format {
    enum sl_wire wire;

    /* Builds the provider request for model m (m->model is the provider's name for it)
     * from the canonical request req. stream: the client streams. Returns 0, or -1
     * with e filled (usually 400: the request cannot be expressed for this provider). */
    int (*encode)(const cJSON *req, const struct sl_model_cfg *m, int stream, struct sl_arena *a,
                  struct sl_encoded *out, struct sl_error *e);

    /* A whole 2xx reply -> a new chat.completion object (caller frees) and its usage.
     * NULL with e filled when the body is not what the format promises. */
    cJSON *(*decode_reply)(const char *body, size_t len, const char *model, struct sl_usage *u,
                           struct sl_error *e);

    /* A non-2xx reply -> e (status, type, message, code), in the provider's words. */
    void (*decode_error)(int status, const char *body, size_t len, struct sl_error *e);

    /* Stream decoding. The state (stream_size bytes, zeroed, in the request's arena)
     * is set up by stream_init and released by stream_release (which frees whatever
     * it allocated; the arena block itself is not freed). */
    size_t stream_size;
    void (*stream_init)(void *st, const char *id, const char *model);
    /* One upstream SSE event (comments included) -> zero or more canonical chunks.
     * Usage seen is written to u. Returns 0; 1 when the event ends the stream (the
     * format's terminator); -1 with e filled on a malformed event or an in-band
     * error event (e.g. Anthropic's `event: error`). */
    int (*stream_event)(void *st, const struct sl_sse_event *ev, sl_chunk_cb emit, void *arg,
                        struct sl_usage *u, struct sl_error *e);
    /* The upstream ended the connection: emits what is still pending (e.g. a finish
     * chunk). Returns 1 when the stream was complete, 0 when it was cut short. */
    int (*stream_end)(void *st, sl_chunk_cb emit, void *arg, struct sl_usage *u);
    void (*stream_release)(void *st);

    /* Pass-through only: reads usage from one event of this format's own stream, or
     * from a whole reply when ev is NULL (then body/len). */
    void (*sniff_usage)(const struct sl_sse_event *ev, const char *body, size_t len,
                        struct sl_usage *u);
};

struct sl_client_format {
    const char *name; /* "openai" | "anthropic" */

    /* The client's request body -> a new canonical request (caller frees), with
     * "model" and "stream" set. NULL with e filled (400) when invalid. */
    cJSON *(*decode_request)(const char *body, size_t len, struct sl_error *e);

    /* A canonical chat.completion -> the client's reply body. Returns 0 or -1. */
    int (*encode_reply)(const cJSON *completion, const struct sl_usage *u, struct sl_buf *out);

    /* Stream encoding; state as for the upstream side. */
    size_t stream_size;
    void (*stream_init)(void *st, const char *id, const char *model, int include_usage);
    /* Appends the client-format SSE bytes for one canonical chunk. */
    int (*stream_chunk)(void *st, const cJSON *chunk, struct sl_buf *out);
    /* Appends the stream's ending (usage where the format puts it, terminator). */
    int (*stream_end)(void *st, const struct sl_usage *u, struct sl_buf *out);
    /* Appends an in-band error and the terminator, for a failure after the first byte. */
    int (*stream_error)(void *st, const struct sl_error *e, struct sl_buf *out);
    void (*stream_release)(void *st);

    /* An error reply body in this format. Returns 0 or -1. */
    int (*error_body)(const struct sl_error *e, struct sl_buf *out);
};

/* The registries (format.c). To add a format: a file with its vtable, a row there,
 * wire cases in tests/cases/, and a section in docs/providers.md. */
const struct sl_upstream_format *sl_upstream_format(enum sl_wire w);
const struct sl_client_format *sl_client_format(const char *name);

/* The OpenAI formats, also used directly by the fast path (request validation,
 * error bodies). */
extern const struct sl_client_format sl_openai_client;
extern const struct sl_upstream_format sl_openai_upstream;

#endif
