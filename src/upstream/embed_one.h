/* "Embed one text": a small internal call that asks an embedding model of the config
 * for one vector, over the worker's upstream pool and the embeddings encoders, without
 * blocking the loop. Used by the semantic cache; any module needing one vector may use
 * it (the knowledge base's query embedding, for one). */
#ifndef SL_UPSTREAM_EMBED_ONE_H
#define SL_UPSTREAM_EMBED_ONE_H

#include <stdint.h>

#include "config/config.h"
#include "upstream/upstream.h"

struct sl_embed_one;

/* What came back. v (dim float32 values, as the provider sent them) is valid only
 * during the callback. On failure v is NULL and error says why. tokens: the provider's
 * count, else an estimate (estimated = 1). */
struct sl_embed_one_result {
    const float *v;
    int dim;
    int64_t tokens;
    int estimated;
    int status;          /* the provider's HTTP status; 0 when none was received */
    const char *error;   /* NULL on success */
    int64_t latency_us;
};

typedef void (*sl_embed_one_cb)(void *arg, const struct sl_embed_one_result *r);

/* Starts embedding text with model m (a model of the config whose provider has an
 * embeddings API). The call owns its memory; cb runs exactly once, from the loop,
 * unless the call is cancelled first. Returns NULL (cb never runs) when m cannot
 * embed or the request cannot be started. */
struct sl_embed_one *sl_embed_one_start(struct sl_upstream *up, const struct sl_model_cfg *m,
                                        const char *text, sl_embed_one_cb cb, void *arg);

/* Stops the call; cb does not run. NULL is allowed. */
void sl_embed_one_cancel(struct sl_embed_one *e);

#endif
