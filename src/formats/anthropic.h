/* Anthropic Messages wire format: what both sides of sluice share (stop reasons,
 * the error-type table, usage) and the parts of the upstream vtable split across
 * anthropic_upstream.c (requests) and anthropic_upstream_stream.c (replies). */
#ifndef SL_FORMAT_ANTHROPIC_H
#define SL_FORMAT_ANTHROPIC_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "formats/format.h"
#include "meter/usage.h"

#define SL_ANTHROPIC_VERSION "2023-06-01"

/* max_tokens sent when the client gave none: Anthropic requires the field, and 4096
 * fits the output limit of every current Claude model. */
#define SL_ANTHROPIC_DEFAULT_MAX_TOKENS 4096

/* An Anthropic stop_reason -> OpenAI finish_reason (FORMATS.md §4.1). NULL and
 * unknown reasons give "stop". Returns a static string. */
const char *sl_anthropic_finish_reason(const char *stop_reason);

/* An OpenAI finish_reason -> Anthropic stop_reason; NULL and unknown give "end_turn".
 * Returns a static string. */
const char *sl_anthropic_stop_reason(const char *finish_reason);

/* The Anthropic error type for an HTTP status (529 -> "overloaded_error"; other 4xx
 * -> "invalid_request_error", other 5xx -> "api_error"). Returns a static string. */
const char *sl_anthropic_error_type(int status);

/* The HTTP status Anthropic uses for an error type (e.g. "overloaded_error" -> 529),
 * or 0 when the type is unknown or NULL. */
int sl_anthropic_error_status(const char *type);

/* Reads an Anthropic usage object into u, in OpenAI's meaning: prompt = input +
 * cache writes + cache reads, cached = cache reads, completion = output (thinking
 * included), reasoning = output_tokens_details.thinking_tokens. Only the counts the
 * object carries are overwritten, so the start and delta usages of a stream can be
 * applied in turn. Returns 1 when usage was read (u->present set), else 0. */
int sl_anthropic_usage(const cJSON *usage, struct sl_usage *u);

/* Fills e from an Anthropic error object {"type","message"} (the "error" member of
 * an error body or of a stream's error event). status 0 = the status Anthropic uses
 * for that type, 502 when unknown. */
void sl_anthropic_error_from(const cJSON *err, int status, struct sl_error *e);

/* The upstream vtable's reply side (anthropic_upstream_stream.c), declared here only
 * so that anthropic_upstream.c can put it in the table. See format.h for the contracts.
 * The stream state is private to anthropic_upstream_stream.c; it is defined here
 * because the table needs its size as a constant. */
struct sl_anthropic_stream {
    char id[96], model[128];
    long long created;
    int started;   /* the role chunk was emitted */
    int finished;  /* the finish chunk was emitted */
    int stopped;   /* message_stop was seen */
    int block;     /* Anthropic index of the open content block, -1 when none */
    int kind;      /* what the open block is (enum in the .c file) */
    int tool;      /* OpenAI tool_calls index of the open tool_use block */
    int ntools;    /* tool_use blocks seen so far: the next tool index */
};

cJSON *sl_anthropic_decode_reply(const char *body, size_t len, const char *model,
                                 struct sl_usage *u, struct sl_error *e);
void sl_anthropic_decode_error(int status, const char *body, size_t len, struct sl_error *e);
void sl_anthropic_stream_init(void *st, const char *id, const char *model);
int sl_anthropic_stream_event(void *st, const struct sl_sse_event *ev, sl_chunk_cb emit,
                              void *arg, struct sl_usage *u, struct sl_error *e);
int sl_anthropic_stream_end(void *st, sl_chunk_cb emit, void *arg, struct sl_usage *u);
void sl_anthropic_stream_release(void *st);
void sl_anthropic_sniff_usage(const struct sl_sse_event *ev, const char *body, size_t len,
                              struct sl_usage *u);

extern const struct sl_upstream_format sl_anthropic_upstream;

#endif
