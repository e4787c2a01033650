/* The knowledge base's threads: KB requests do blocking work (SQLite, model calls back
 * into sluice), so a worker hands them to this pool and gets them back on its own loop
 * when done. Each thread keeps its own SQLite connection. */
#ifndef SL_SERVER_KB_POOL_H
#define SL_SERVER_KB_POOL_H

#include "server/internal.h"

typedef struct sqlite3 sqlite3;
struct sl_kb_job;

/* run: on a pool thread, with that thread's connection to the store (NULL when it
 * cannot be opened: err says why). done: back on the job's worker, once. */
typedef void (*sl_kb_run_cb)(struct sl_kb_job *j, sqlite3 *db, const char *open_err);
typedef void (*sl_kb_done_cb)(struct sl_kb_job *j);

struct sl_kb_job {
    struct sl_kb_job *next;
    struct sl_worker *w;
    const char *store_url;
    sl_kb_run_cb run;
    sl_kb_done_cb done;
    void *arg;
};

/* Starts n threads. NULL when none could start. */
struct sl_kb_pool *sl_kb_pool_start(int n);
/* Queues j (its memory is the caller's until done runs). -1 when stopping. */
int sl_kb_pool_submit(struct sl_kb_pool *p, struct sl_kb_job *j);
/* Runs what is queued, then joins the threads and frees the pool. NULL is allowed. */
void sl_kb_pool_stop(struct sl_kb_pool *p);

#endif
