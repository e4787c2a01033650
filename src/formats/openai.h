/* OpenAI Chat Completions wire format: error replies, usage, stream events.
 * The canonical shape inside sluice; the only place that writes OpenAI error JSON. */
#ifndef SL_FORMAT_OPENAI_H
#define SL_FORMAT_OPENAI_H

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "meter/usage.h"

/* The error type OpenAI uses for an HTTP status. */
const char *sl_openai_error_type(int status);

/* Appends {"error":{"message","type","param","code"}} to out. type NULL = by status;
 * param and code may be NULL (written as null). Returns 0 or -1. */
int sl_openai_error(struct sl_buf *out, int status, const char *type, const char *message,
                    const char *param, const char *code);

/* Reads usage from a reply or a stream chunk into u, across the providers' variants:
 * top-level usage (OpenAI, DashScope, GLM, DeepSeek's prompt_cache_hit_tokens),
 * Moonshot's usage inside choices[0] and its top-level cached_tokens.
 * Returns 1 when usage was found (u->present set), else 0 and u untouched. */
int sl_openai_usage(const cJSON *obj, struct sl_usage *u);

/* Reads a usage object itself (what sl_openai_usage finds). Returns 1 when it is one. */
int sl_openai_usage_object(const cJSON *usage, struct sl_usage *u);

/* True when a chunk or reply has a choice with a finish_reason. */
int sl_openai_has_finish(const cJSON *obj);

/* Appends a usage object in OpenAI's shape. */
int sl_openai_usage_json(struct sl_buf *out, const struct sl_usage *u);

/* Estimated completion tokens of what a chunk (delta) or a reply (message) carries:
 * content, reasoning_content, refusal and tool-call arguments. */
int64_t sl_openai_estimate_output(const cJSON *obj);

/* Turns an upstream error body of any OpenAI-compatible flavour into the message and
 * code to report: error.message / message / the raw text. Returns pointers into
 * body's parse (owned by *parsed, free with cJSON_Delete) or static text. */
void sl_openai_error_from_upstream(const char *body, size_t len, cJSON **parsed,
                                   const char **message, const char **type, const char **code);

#endif
