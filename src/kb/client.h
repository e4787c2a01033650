/* The knowledge base's model calls, made to sluice itself over HTTP (blocking libcurl,
 * on a KB thread), so routing, retries, the ledger, cost and tags apply unchanged. Each
 * call carries x-sluice-tag: kb=NAME,stage=STAGE and the process's internal credential. */
#ifndef SL_KB_CLIENT_H
#define SL_KB_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

#define SL_KB_MAX_DIM 8192 /* largest embedding dimension accepted */

struct sl_kb_client {
    const char *base_url;   /* "http://127.0.0.1:PORT" */
    const char *token;      /* bearer credential; NULL = none */
    const char *kb;         /* for the kb= tag */
    const char *key;        /* the client key the work is for (ledger attribution), or NULL */
    const char *extra_tags; /* the client's own tags, "a=b,c=d", or NULL */
    void *curl;             /* reused across calls (keep-alive) */
    int64_t calls;          /* model calls made */
    int64_t recall_tokens, rerank_tokens, ingest_tokens; /* as the replies' usage reported */
    int status;             /* HTTP status of the last call (0: none) */
    char err[512];
};

/* Releases the curl handle. */
void sl_kbc_release(struct sl_kb_client *c);

/* POSTs body to base_url + path with the stage tag; the reply body into out.
 * 0 on HTTP 2xx; -1 otherwise (c->status and c->err say why). */
int sl_kbc_post(struct sl_kb_client *c, const char *path, const char *stage, const char *body,
                size_t len, struct sl_buf *out);

/* The same with any method (GET and DELETE send no body); stage NULL sends only the
 * extra tags. */
int sl_kbc_request(struct sl_kb_client *c, const char *method, const char *path,
                   const char *stage, const char *body, size_t len, struct sl_buf *out);

/* Embeds n texts with model, in batches of at most batch inputs (sluice splits a batch
 * further by the provider's limit). out receives n vectors of *dim floats each, as the
 * provider gave them (malloc'd, caller frees). *dim must be 0 or the expected size.
 * Returns 0 or -1. */
int sl_kbc_embed(struct sl_kb_client *c, const char *model, const char *stage,
                 const char *const *texts, const size_t *lens, size_t n, size_t batch,
                 float **out, int *dim);

/* Scores n documents against query with a rerank model (POST /v1/rerank): scores[i] for
 * documents[i]. Returns 0 or -1. */
int sl_kbc_rerank(struct sl_kb_client *c, const char *model, const char *query,
                  const char *const *docs, size_t n, double *scores);

#endif
