/* The response cache: exact answers keyed by the SHA-256 of everything in a request
 * that shapes its answer, plus a semantic index of the last user message's meaning.
 * One cache per server, shared by the workers behind short locks; it knows no
 * HTTP and no wire format (src/server/cached.c puts it on the request path). */
#ifndef SL_CACHE_H
#define SL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "cache/backend.h"
#include "config/config.h"

struct sl_cache;

/* The cache for cfg's cache: section: its backend (sqlite needs store_url to be
 * "sqlite://PATH", whose schema the ledger created) and, with an embedding model, a
 * semantic index reloaded from the backend. NULL with a message in err. */
struct sl_cache *sl_cache_new(const struct sl_cache_cfg *cfg, const char *store_url, char *err,
                              size_t errlen);
void sl_cache_free(struct sl_cache *c);

/* The rule in force for one request: the group's or model's (rule may be NULL),
 * unset fields from the global one. */
struct sl_cache_policy {
    int when;            /* enum sl_cache_when, never UNSET */
    int ttl_ms;
    int semantic;        /* 1 or 0 */
    double threshold;
    int stale_on_error;  /* 1 or 0 */
};
void sl_cache_policy_of(const struct sl_cache_cfg *cfg, const struct sl_cache_rule *rule,
                        struct sl_cache_policy *out);

/* Whether a request is looked up and stored: 1 or 0. header is the request's
 * x-sluice-cache value (NULL when absent): "skip" bypasses, "force" opts in. Requests
 * asking for several choices (n > 1) or log probabilities are never cached. */
int sl_cache_wanted(const struct sl_cache_policy *p, const cJSON *req, const char *header);

/* The exact key of canonical request req sent to name (the model or group the client
 * asked for), for tenant (a virtual key's id; "" when the cache is shared or there are
 * no keys). Fields that do not change the answer (stream, stream_options, user,
 * metadata, store) are left out; object keys are taken in sorted order, numbers by
 * value (0 and 0.0 are one number). Returns 0, or -1 when out of memory. */
int sl_cache_key(const cJSON *req, const char *name, const char *tenant,
                 uint8_t key[SL_CACHE_KEY_LEN]);

/* The text the semantic cache embeds: the last message's, when it is the user's.
 * NULL when the request may not use the semantic cache (tools or tool messages,
 * images, no trailing user text). The text is in req. */
const char *sl_cache_semantic_text(const cJSON *req);

/* The scope a semantic match must share: tenant, name, the response format and every
 * message before the last (the system prompt and earlier turns), hashed. */
uint64_t sl_cache_semantic_scope(const cJSON *req, const char *name, const char *tenant);

/* Looks key up at now_ms. Returns 0 with *out (out->value malloc'd, the caller frees)
 * for a fresh answer; 2 with *out for one expired less than max_stale_ms ago (only
 * when max_stale_ms > 0); 1 when there is none. */
int sl_cache_get(struct sl_cache *c, const uint8_t *key, int64_t now_ms, int64_t max_stale_ms,
                 struct sl_cache_entry *out);

/* Stores an answer under key (e->value is copied). Returns 0 or -1. */
int sl_cache_put(struct sl_cache *c, const uint8_t *key, const struct sl_cache_entry *e);

/* The semantic index's dimension (0: no semantic cache). */
int sl_cache_dim(struct sl_cache *c);

/* The best semantic match of q (dim values, normalised) in scope: 0 with its entry's
 * key and its cosine when that is at least threshold; 1 when none is. */
int sl_cache_semantic_find(struct sl_cache *c, uint64_t scope, const float *q, int dim,
                           double threshold, uint8_t key[SL_CACHE_KEY_LEN], float *score);

/* Adds q (normalised) as the meaning of entry key in scope; persisted by backends that
 * keep vectors. The first vector sets the index's dimension. Returns 0 or -1. */
int sl_cache_semantic_add(struct sl_cache *c, uint64_t scope, const float *q, int dim,
                          const uint8_t *key);

/* Forgets a semantic vector whose entry is gone. */
void sl_cache_semantic_forget(struct sl_cache *c, const uint8_t *key);

/* Entries, bytes and vectors held now (for /metrics and tests). */
void sl_cache_stats(struct sl_cache *c, size_t *entries, size_t *bytes, size_t *vectors);

#endif
