/* A small fixed pool of threads with one queue, for the knowledge base's requests. */
#include "server/kb_pool.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "kb/index.h"
#include "kb/store.h"

struct sl_kb_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct sl_kb_job *head, *tail;
    int stopping;
    int n;
    pthread_t *threads;
};

static void on_done(evutil_socket_t fd, short what, void *arg)
{
    struct sl_kb_job *j = arg;
    j->done(j);
}

static struct sl_kb_job *take(struct sl_kb_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (!p->head && !p->stopping)
        pthread_cond_wait(&p->cond, &p->lock);
    struct sl_kb_job *j = p->head;
    if (j) {
        p->head = j->next;
        if (!p->head)
            p->tail = NULL;
    }
    pthread_mutex_unlock(&p->lock);
    return j;
}

static void *pool_main(void *arg)
{
    struct sl_kb_pool *p = arg;
    sqlite3 *db = NULL;
    char url[4096] = "", err[512] = "";
    struct sl_kb_job *j;
    while ((j = take(p))) {
        if (!db || strcmp(url, j->store_url) != 0) {
            sl_kbs_close(db);
            snprintf(url, sizeof(url), "%s", j->store_url);
            err[0] = '\0';
            if (sl_kbs_open(url, &db, err, sizeof(err)))
                db = NULL;
        }
        j->run(j, db, db ? NULL : err);
        if (!db)
            url[0] = '\0'; /* try again for the next job */
        /* back to the worker's loop (event_base_once is safe across threads) */
        struct timeval now = {0, 0};
        if (event_base_once(j->w->base, -1, EV_TIMEOUT, on_done, j, &now))
            fprintf(stderr, "kb: cannot hand a job back to its worker\n");
    }
    sl_kbs_close(db);
    return NULL;
}

struct sl_kb_pool *sl_kb_pool_start(int n)
{
    struct sl_kb_pool *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->threads = calloc((size_t)n, sizeof(pthread_t));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    for (int i = 0; p->threads && i < n; i++) {
        if (pthread_create(&p->threads[i], NULL, pool_main, p))
            break;
        p->n++;
    }
    if (!p->n) {
        sl_kb_pool_stop(p);
        return NULL;
    }
    return p;
}

int sl_kb_pool_submit(struct sl_kb_pool *p, struct sl_kb_job *j)
{
    pthread_mutex_lock(&p->lock);
    int stopping = p->stopping;
    if (!stopping) {
        j->next = NULL;
        if (p->tail)
            p->tail->next = j;
        else
            p->head = j;
        p->tail = j;
        pthread_cond_signal(&p->cond);
    }
    pthread_mutex_unlock(&p->lock);
    return stopping ? -1 : 0;
}

void sl_kb_pool_stop(struct sl_kb_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->n; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
    sl_kb_index_clear();
}
