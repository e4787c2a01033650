/* The fail_times counters: how many requests with a given last user message have been
 * seen, shared by every worker thread of one simulator behind a mutex. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sim/sim_internal.h"

#define BUCKETS  1024
#define MAX_KEYS 65536 /* past this the counts start over: memory stays bounded */

struct entry {
    struct entry *next;
    uint64_t hash;
    int count;
};

struct sim_failmap {
    pthread_mutex_t lock;
    struct entry *buckets[BUCKETS];
    int keys;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

struct sim_failmap *sl_sim_failmap_new(void)
{
    struct sim_failmap *m = calloc(1, sizeof(*m));
    if (m && pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NULL;
    }
    return m;
}

static void clear(struct sim_failmap *m)
{
    for (int i = 0; i < BUCKETS; i++) {
        while (m->buckets[i]) {
            struct entry *e = m->buckets[i];
            m->buckets[i] = e->next;
            free(e);
        }
    }
    m->keys = 0;
}

void sl_sim_failmap_free(struct sim_failmap *m)
{
    if (!m)
        return;
    clear(m);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Returns the count after this request, or 0 when out of memory. Caller holds the lock. */
static int bump(struct sim_failmap *m, uint64_t hash)
{
    struct entry **head = &m->buckets[hash % BUCKETS];
    for (struct entry *e = *head; e; e = e->next)
        if (e->hash == hash)
            return ++e->count;
    if (m->keys >= MAX_KEYS)
        clear(m);
    struct entry *e = malloc(sizeof(*e));
    if (!e)
        return 0;
    *e = (struct entry){*head, hash, 1};
    *head = e;
    m->keys++;
    return 1;
}

int sl_sim_failure_due(struct sim_failmap *m, const struct sim_directives *d, const char *key)
{
    if (d->fail_times < 0)
        return d->status >= 400 || d->reset;
    pthread_mutex_lock(&m->lock);
    int count = bump(m, fnv1a(key));
    pthread_mutex_unlock(&m->lock);
    return count > 0 && count <= d->fail_times;
}
