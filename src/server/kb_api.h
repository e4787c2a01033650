/* What the knowledge-base API's two halves share: the request as handed from the worker
 * (kb_api.c) to a KB thread (kb_jobs.c) and the result handed back. */
#ifndef SL_SERVER_KB_API_H
#define SL_SERVER_KB_API_H

#include "core/arena.h"
#include "core/buf.h"
#include "core/limits.h"
#include "formats/format.h"
#include "server/kb_pool.h"

enum kb_op {
    KB_CREATE, KB_LIST, KB_GET, KB_DELETE,
    KB_DOC_LIST, KB_DOC_ADD, KB_DOC_DELETE,
    KB_SEARCH, KB_CHAT,
};

struct kb_req {
    struct sl_kb_job job;
    struct sl_exchange *x;
    struct sl_arena *a;         /* the thread side's memory; freed with the request */
    enum kb_op op;
    char kb[SL_MAX_NAME];
    char doc[512];
    char *body;                 /* a copy of the client's body (a) */
    size_t len;
    char key[SL_MAX_NAME];      /* the client's virtual key id ("" = none): its calls are billed to it */
    char tags[1024];            /* the client's tags, comma-separated */
    char self_url[64];
    char token[65];
    const struct sl_config *cfg; /* the exchange's snapshot (alive while x is) */
    const struct sl_catalog *catalog;
    /* results */
    struct sl_error e;          /* e.status != 0: answer with this error */
    int status;
    struct sl_buf out;          /* the JSON reply */
    char *answer;               /* KB_CHAT: the answer model's request body (a) */
    char *sources;              /* KB_CHAT: the sources JSON array (a) */
    char answer_model[SL_MAX_NAME];
    int64_t recall_tokens, rerank_tokens; /* KB_SEARCH: what the stages' model calls used */
};

/* Runs r on a KB thread (kb_jobs.c). */
void sl_kb_run(struct sl_kb_job *j, sqlite3 *db, const char *open_err);

#endif
