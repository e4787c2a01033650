/* The process-wide cache of loaded vector and BM25 indexes, behind one short lock. */
#include "kb/index.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/limits.h"
#include "kb/store.h"

struct sl_kb_index {
    struct sl_kb_index *next;
    atomic_int refs;          /* the cache's own reference + one per user */
    int64_t kb, rev, created;
    char model[SL_MAX_NAME];
    struct sl_vec_index v;
};

struct sl_kb_lex {
    struct sl_kb_lex *next;
    atomic_int refs;
    int64_t kb, rev, created;
    struct sl_bm25 *bm25;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct sl_kb_index *cached;
static struct sl_kb_lex *cached_lex;

void sl_kb_index_release(struct sl_kb_index *ix)
{
    if (ix && atomic_fetch_sub(&ix->refs, 1) == 1) {
        sl_vec_index_release(&ix->v);
        free(ix);
    }
}

/* Unlinks and returns the entry for (kb, model), or NULL. Under lock. */
static struct sl_kb_index *unlink_entry(int64_t kb, const char *model)
{
    for (struct sl_kb_index **p = &cached; *p; p = &(*p)->next)
        if ((*p)->kb == kb && strcmp((*p)->model, model) == 0) {
            struct sl_kb_index *e = *p;
            *p = e->next;
            return e;
        }
    return NULL;
}

struct sl_kb_index *sl_kb_index_get(sqlite3 *db, int64_t kb, const char *model, int dim,
                                    int64_t rev, int64_t created, char *err, size_t errlen)
{
    pthread_mutex_lock(&lock);
    for (struct sl_kb_index *e = cached; e; e = e->next)
        if (e->kb == kb && e->rev == rev && e->created == created && e->v.dim == dim &&
            strcmp(e->model, model) == 0) {
            atomic_fetch_add(&e->refs, 1);
            pthread_mutex_unlock(&lock);
            return e;
        }
    pthread_mutex_unlock(&lock);
    /* Loaded outside the lock: two threads may both load a stale index; the second
     * to finish replaces the first, which is freed when its users are done. */
    struct sl_kb_index *e = calloc(1, sizeof(*e));
    if (!e) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    e->kb = kb;
    e->rev = rev;
    e->created = created;
    snprintf(e->model, sizeof(e->model), "%s", model);
    if (sl_kbs_load_index(db, kb, model, dim, &e->v, err, errlen) ||
        (e->v.n >= SL_KB_BINARY_ROWS && sl_vec_binarise(&e->v))) {
        sl_vec_index_release(&e->v);
        free(e);
        return NULL;
    }
    atomic_init(&e->refs, 2);
    pthread_mutex_lock(&lock);
    struct sl_kb_index *old = unlink_entry(kb, model);
    e->next = cached;
    cached = e;
    pthread_mutex_unlock(&lock);
    sl_kb_index_release(old);
    return e;
}

const struct sl_vec_index *sl_kb_index_vectors(const struct sl_kb_index *ix)
{
    return &ix->v;
}

void sl_kb_lex_release(struct sl_kb_lex *lx)
{
    if (lx && atomic_fetch_sub(&lx->refs, 1) == 1) {
        sl_bm25_free(lx->bm25);
        free(lx);
    }
}

struct sl_kb_lex *sl_kb_lex_get(sqlite3 *db, int64_t kb, int64_t rev, int64_t created,
                                char *err, size_t errlen)
{
    pthread_mutex_lock(&lock);
    for (struct sl_kb_lex *e = cached_lex; e; e = e->next)
        if (e->kb == kb && e->rev == rev && e->created == created) {
            atomic_fetch_add(&e->refs, 1);
            pthread_mutex_unlock(&lock);
            return e;
        }
    pthread_mutex_unlock(&lock);
    /* Built outside the lock, as the vector index is. */
    struct sl_kb_lex *e = calloc(1, sizeof(*e));
    struct sl_bm25_builder *b = e ? sl_bm25_builder_new() : NULL;
    if (!b) {
        free(e);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (sl_kbs_load_terms(db, kb, b, err, errlen)) {
        sl_bm25_builder_free(b);
        free(e);
        return NULL;
    }
    e->bm25 = sl_bm25_finish(b);
    if (!e->bm25) {
        free(e);
        snprintf(err, errlen, "out of memory building the BM25 index");
        return NULL;
    }
    e->kb = kb;
    e->rev = rev;
    e->created = created;
    atomic_init(&e->refs, 2);
    pthread_mutex_lock(&lock);
    struct sl_kb_lex *old = NULL;
    for (struct sl_kb_lex **p = &cached_lex; *p; p = &(*p)->next)
        if ((*p)->kb == kb) {
            old = *p;
            *p = old->next;
            break;
        }
    e->next = cached_lex;
    cached_lex = e;
    pthread_mutex_unlock(&lock);
    sl_kb_lex_release(old);
    return e;
}

const struct sl_bm25 *sl_kb_lex_index(const struct sl_kb_lex *lx)
{
    return lx->bm25;
}

void sl_kb_index_clear(void)
{
    pthread_mutex_lock(&lock);
    struct sl_kb_index *e = cached;
    struct sl_kb_lex *lx = cached_lex;
    cached = NULL;
    cached_lex = NULL;
    pthread_mutex_unlock(&lock);
    while (lx) {
        struct sl_kb_lex *next = lx->next;
        sl_kb_lex_release(lx);
        lx = next;
    }
    while (e) {
        struct sl_kb_index *next = e->next;
        sl_kb_index_release(e);
        e = next;
    }
}
