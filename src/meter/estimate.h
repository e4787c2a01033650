/* Token estimation without a tokenizer or a network call. */
#ifndef SL_ESTIMATE_H
#define SL_ESTIMATE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* Estimated tokens of UTF-8 text: ~0.3 per Latin character (about 4 characters a
 * token, words and punctuation counted), ~0.6 per CJK character. */
int64_t sl_estimate_text(const char *s, size_t n);

/* Estimated prompt tokens of an OpenAI messages array (text parts, tool calls,
 * names) plus the per-message framing overhead; 0 for NULL. */
int64_t sl_estimate_messages(const cJSON *messages);

#endif
