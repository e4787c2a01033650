/* The response cache on the request path: looked up before routing, answers replayed
 * in the client's format (whole or as a stream), successful answers stored when the
 * exchange ends, and the stale answer served when every deployment failed. */
#ifndef SL_SERVER_CACHED_H
#define SL_SERVER_CACHED_H

#include <cjson/cJSON.h>

#include "server/internal.h"

struct sl_plan;
typedef void (*sl_plan_go_fn)(struct sl_exchange *x, struct sl_plan *p);

/* Looks p up in the cache (exact, then semantic: the embedding runs asynchronously).
 * Returns 1 when the cache took the request over: it has answered it, or it calls
 * go(x, p) once the semantic lookup missed. Returns 0 when the caller goes on
 * routing at once (bypassed, or an exact miss without a semantic lookup). */
int sl_cached_lookup(struct sl_exchange *x, struct sl_plan *p, sl_plan_go_fn go);

/* What the paths hand over as the answer takes shape, for storing at the end: a
 * whole reply as OpenAI JSON text, or a canonical one with its usage (either once), or
 * one canonical stream chunk at a time. No-ops when the request is not cached. */
void sl_cached_reply_text(struct sl_plan *p, const char *json, size_t len);
struct sl_usage;
void sl_cached_reply(struct sl_plan *p, const cJSON *completion, const struct sl_usage *u);
void sl_cached_chunk(struct sl_plan *p, const cJSON *chunk);

/* Called when the exchange ends: stores a complete successful answer. */
void sl_cached_finish(struct sl_exchange *x, struct sl_plan *p);

/* Every deployment failed: serves the cached answer, even expired within
 * cache.max_stale, when the request's group or model has stale_on_error. Returns 1
 * when it answered, 0 when the caller sends the error. */
int sl_cached_stale(struct sl_exchange *x, struct sl_plan *p);

/* cached_replay.c: appends the stream of completion comp (usage u) in p's client format
 * to out: the role, reasoning and content in pieces, tool calls, the finish, then the
 * format's ending (the usage chunk when asked for, [DONE] or message_stop). Returns 0
 * or -1. */
struct sl_buf;
int sl_cached_replay_stream(struct sl_exchange *x, const struct sl_plan *p, const cJSON *comp,
                            const struct sl_usage *u, struct sl_buf *out);

#endif
