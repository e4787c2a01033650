/* Anthropic-format clients (POST /v1/messages, /v1/messages/count_tokens): what the
 * server needs beyond the sl_anthropic_client vtable in format.c's registry. */
#ifndef SL_FORMAT_ANTHROPIC_CLIENT_H
#define SL_FORMAT_ANTHROPIC_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "formats/format.h"

/* Estimates the input tokens of a count_tokens body (a Messages request; max_tokens
 * not required): the canonical messages by sl_estimate_messages plus the tool schemas.
 * Returns 0 with *input_tokens set, or -1 with e filled (400, Anthropic's wording). */
int sl_anthropic_count_tokens(const char *body, size_t len, int64_t *input_tokens,
                              struct sl_error *e);

/* The vtable's request decoder (anthropic_client.c), shared with the file that holds
 * the vtable (anthropic_client_reply.c). need_max_tokens: 0 for count_tokens.
 * Returns a new canonical request (caller frees), or NULL with e filled. */
cJSON *sl_anthropic_client_decode(const char *body, size_t len, int need_max_tokens,
                                  struct sl_error *e);

#endif
