/* The answer step: the retrieved chunks as numbered sources within a token budget, the
 * chat request for the answer model, and the `sources` JSON returned to the client. */
#ifndef SL_KB_ANSWER_H
#define SL_KB_ANSWER_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "core/buf.h"
#include "kb/kb.h"

/* Appends "[i] document > heading\ntext\n\n" for hits in order while the estimated tokens
 * stay within budget; a hit that does not fit is cut to what does (at a UTF-8 boundary),
 * and the rest are left out. The first source is always given, cut if need be.
 * Returns the number of sources written. */
size_t sl_kb_context(const struct sl_kb_hit *hits, size_t n, int budget_tokens, struct sl_buf *out);

/* The answer model's request, built from the client's chat request (its messages and
 * options are kept; `model` becomes kb->answer_model, temperature kb->temperature unless
 * the client set one), with a system message holding the instructions and context.
 * Returns a new cJSON (caller frees) or NULL. */
cJSON *sl_kb_answer_request(const struct sl_kb *kb, const cJSON *client_req, const char *context);

/* The question of a chat request: the text of its last user message (arena-free: points
 * into req). NULL when it has none. */
const char *sl_kb_question(const cJSON *req);

/* `[{"index":1,"document":...,"heading":...,"text":...,"start":..,"end":..,
 *   "scores":{"vector":..,"bm25":..,"rrf":..,"rerank":..}}, ...]` for hits[0..n). */
int sl_kb_sources_json(const struct sl_kb_hit *hits, size_t n, struct sl_buf *out);

#endif
