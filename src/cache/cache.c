/* The cache object: a backend behind a mutex, and the semantic index behind a
 * readers-writer lock, so that a scan (milliseconds) holds up neither exact lookups nor
 * other workers' scans. Workers call in for a few microseconds (a hash lookup and a
 * copy) or one flat scan; nothing here blocks on the network. */
#include "cache/cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/index.h"
#include "core/clock.h"
#include "core/log.h"

struct sl_cache {
    pthread_mutex_t lock;       /* the backend */
    pthread_rwlock_t ilock;     /* the index: scans share it, changes take it alone */
    struct sl_cache_backend *b;
    struct sl_cache_index ix;   /* dim 0 until the first vector */
    size_t max_vectors;
    int64_t max_stale_ms;
    int64_t next_sweep_ms;      /* when expired entries are next dropped */
};

#define SWEEP_EVERY_MS (60 * 1000)

static int index_ready(struct sl_cache *c, int dim)
{
    if (c->ix.dim)
        return c->ix.dim == dim ? 0 : -1;
    return sl_cache_index_init(&c->ix, dim, c->max_vectors);
}

static void on_loaded(void *arg, const uint8_t *key, uint64_t scope, const float *v, int dim)
{
    struct sl_cache *c = arg;
    if (index_ready(c, dim) == 0)
        sl_cache_index_add(&c->ix, key, scope, v, dim);
}

struct sl_cache *sl_cache_new(const struct sl_cache_cfg *cfg, const char *store_url, char *err,
                              size_t errlen)
{
    struct sl_cache *c = calloc(1, sizeof(*c));
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_rwlock_init(&c->ilock, NULL);
    c->max_vectors = cfg->semantic_max_entries > 0 ? (size_t)cfg->semantic_max_entries : 100000;
    c->max_stale_ms = cfg->max_stale_ms;
    if (cfg->backend == SL_CACHE_SQLITE) {
        if (!store_url || strncmp(store_url, "sqlite://", 9) != 0) {
            snprintf(err, errlen, "cache.backend sqlite needs an sqlite:// store");
            sl_cache_free(c);
            return NULL;
        }
        c->b = sl_cache_sqlite_new(store_url + 9, cfg->max_bytes, err, errlen);
    } else {
        c->b = sl_cache_memory_new(cfg->max_bytes);
        if (!c->b)
            snprintf(err, errlen, "out of memory");
    }
    if (!c->b) {
        sl_cache_free(c);
        return NULL;
    }
    c->b->ops->evict(c->b, sl_wall_ms() - c->max_stale_ms);
    if (cfg->embedding_model[0] && c->b->ops->load_vectors(c->b, on_loaded, c))
        sl_warn("cache: could not reload the semantic index; it starts empty");
    return c;
}

void sl_cache_free(struct sl_cache *c)
{
    if (!c)
        return;
    if (c->b)
        c->b->ops->free(c->b);
    sl_cache_index_release(&c->ix);
    pthread_mutex_destroy(&c->lock);
    pthread_rwlock_destroy(&c->ilock);
    free(c);
}

int sl_cache_get(struct sl_cache *c, const uint8_t *key, int64_t now_ms, int64_t max_stale_ms,
                 struct sl_cache_entry *out)
{
    pthread_mutex_lock(&c->lock);
    if (now_ms >= c->next_sweep_ms) {
        c->b->ops->evict(c->b, now_ms - c->max_stale_ms);
        c->next_sweep_ms = now_ms + SWEEP_EVERY_MS;
    }
    int r = c->b->ops->get(c->b, key, out);
    pthread_mutex_unlock(&c->lock);
    if (r)
        return 1;
    if (now_ms < out->expires_ms)
        return 0;
    if (max_stale_ms > 0 && now_ms < out->expires_ms + max_stale_ms)
        return 2;
    free(out->value);
    out->value = NULL;
    return 1;
}

int sl_cache_put(struct sl_cache *c, const uint8_t *key, const struct sl_cache_entry *e)
{
    pthread_mutex_lock(&c->lock);
    int r = c->b->ops->put(c->b, key, e);
    pthread_mutex_unlock(&c->lock);
    return r;
}

int sl_cache_dim(struct sl_cache *c)
{
    pthread_rwlock_rdlock(&c->ilock);
    int dim = c->ix.dim;
    pthread_rwlock_unlock(&c->ilock);
    return dim;
}

int sl_cache_semantic_find(struct sl_cache *c, uint64_t scope, const float *q, int dim,
                           double threshold, uint8_t key[SL_CACHE_KEY_LEN], float *score)
{
    int r = 1;
    pthread_rwlock_rdlock(&c->ilock);
    if (c->ix.dim == dim) {
        long i = sl_cache_index_search(&c->ix, scope, q, score);
        if (i >= 0 && *score >= (float)threshold) {
            memcpy(key, c->ix.keys[i], SL_CACHE_KEY_LEN);
            r = 0;
        }
    }
    pthread_rwlock_unlock(&c->ilock);
    return r;
}

int sl_cache_semantic_add(struct sl_cache *c, uint64_t scope, const float *q, int dim,
                          const uint8_t *key)
{
    int r = -1;
    pthread_rwlock_wrlock(&c->ilock);
    if (index_ready(c, dim) == 0)
        r = sl_cache_index_add(&c->ix, key, scope, q, dim);
    pthread_rwlock_unlock(&c->ilock);
    if (r == 0) {
        pthread_mutex_lock(&c->lock);
        r = c->b->ops->put_vector(c->b, key, scope, q, dim);
        pthread_mutex_unlock(&c->lock);
    }
    return r;
}

void sl_cache_semantic_forget(struct sl_cache *c, const uint8_t *key)
{
    pthread_rwlock_wrlock(&c->ilock);
    for (size_t i = 0; i < c->ix.n; i++) {
        if (memcmp(c->ix.keys[i], key, SL_CACHE_KEY_LEN) == 0) {
            sl_cache_index_remove(&c->ix, i);
            break;
        }
    }
    pthread_rwlock_unlock(&c->ilock);
}

void sl_cache_stats(struct sl_cache *c, size_t *entries, size_t *bytes, size_t *vectors)
{
    pthread_mutex_lock(&c->lock);
    c->b->ops->stats(c->b, entries, bytes);
    pthread_mutex_unlock(&c->lock);
    pthread_rwlock_rdlock(&c->ilock);
    *vectors = c->ix.n;
    pthread_rwlock_unlock(&c->ilock);
}
