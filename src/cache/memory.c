/* The memory cache backend: a hash table of entries on a least-recently-used list,
 * kept under a byte cap (each value plus its node). Vectors are not kept here: the
 * semantic index in memory is all there is, and it starts empty. */
#include <stdlib.h>
#include <string.h>

#include "cache/backend.h"

struct node {
    uint8_t key[SL_CACHE_KEY_LEN];
    struct sl_cache_entry e;      /* e.value owned by the node */
    struct node *hnext;           /* hash chain */
    struct node *prev, *next;     /* LRU list: head = most recent */
};

struct memory {
    struct sl_cache_backend base;
    struct node **buckets;
    size_t nbuckets;              /* a power of two */
    struct node *head, *tail;
    size_t entries, bytes, max_bytes;
};

size_t sl_cache_memory_overhead(void)
{
    return sizeof(struct node) + sizeof(struct node *); /* the node and its bucket share */
}

static size_t cost_of(const struct node *n)
{
    return n->e.len + sl_cache_memory_overhead();
}

static struct node **slot(struct memory *m, const uint8_t *key)
{
    uint64_t h;
    memcpy(&h, key, sizeof(h)); /* a SHA-256 digest: its first bytes are already uniform */
    return &m->buckets[h & (m->nbuckets - 1)];
}

static struct node *find(struct memory *m, const uint8_t *key, struct node ***where)
{
    struct node **pp = slot(m, key);
    for (; *pp; pp = &(*pp)->hnext)
        if (memcmp((*pp)->key, key, SL_CACHE_KEY_LEN) == 0)
            break;
    if (where)
        *where = pp;
    return *pp;
}

static void unlink_lru(struct memory *m, struct node *n)
{
    if (n->prev)
        n->prev->next = n->next;
    else
        m->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        m->tail = n->prev;
    n->prev = n->next = NULL;
}

static void push_front(struct memory *m, struct node *n)
{
    n->next = m->head;
    n->prev = NULL;
    if (m->head)
        m->head->prev = n;
    m->head = n;
    if (!m->tail)
        m->tail = n;
}

static void remove_node(struct memory *m, struct node *n)
{
    struct node **pp;
    find(m, n->key, &pp);
    *pp = n->hnext;
    unlink_lru(m, n);
    m->entries--;
    m->bytes -= cost_of(n);
    free(n->e.value);
    free(n);
}

static int grow(struct memory *m)
{
    size_t nb = m->nbuckets * 2;
    struct node **b = calloc(nb, sizeof(*b));
    if (!b)
        return -1; /* longer chains, still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (struct node *n = m->buckets[i], *next; n; n = next) {
            uint64_t h;
            next = n->hnext;
            memcpy(&h, n->key, sizeof(h));
            n->hnext = b[h & (nb - 1)];
            b[h & (nb - 1)] = n;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

static int mem_get(struct sl_cache_backend *base, const uint8_t *key, struct sl_cache_entry *out)
{
    struct memory *m = (struct memory *)base;
    struct node *n = find(m, key, NULL);
    if (!n)
        return 1;
    *out = n->e;
    out->value = malloc(n->e.len + 1);
    if (!out->value)
        return -1;
    memcpy(out->value, n->e.value, n->e.len);
    out->value[n->e.len] = '\0';
    unlink_lru(m, n);
    push_front(m, n);
    return 0;
}

static int mem_put(struct sl_cache_backend *base, const uint8_t *key, const struct sl_cache_entry *e)
{
    struct memory *m = (struct memory *)base;
    if (e->len + sl_cache_memory_overhead() > m->max_bytes)
        return -1;
    struct node *old = find(m, key, NULL);
    if (old)
        remove_node(m, old);
    struct node *n = calloc(1, sizeof(*n));
    char *v = n ? malloc(e->len + 1) : NULL;
    if (!v) {
        free(n);
        return -1;
    }
    memcpy(v, e->value, e->len);
    v[e->len] = '\0';
    memcpy(n->key, key, SL_CACHE_KEY_LEN);
    n->e = *e;
    n->e.value = v;
    while (m->tail && m->bytes + cost_of(n) > m->max_bytes)
        remove_node(m, m->tail);
    if (m->entries >= m->nbuckets)
        grow(m);
    struct node **pp = slot(m, key);
    n->hnext = *pp;
    *pp = n;
    push_front(m, n);
    m->entries++;
    m->bytes += cost_of(n);
    return 0;
}

static int mem_del(struct sl_cache_backend *base, const uint8_t *key)
{
    struct memory *m = (struct memory *)base;
    struct node *n = find(m, key, NULL);
    if (n)
        remove_node(m, n);
    return 0;
}

static int mem_evict(struct sl_cache_backend *base, int64_t before_ms)
{
    struct memory *m = (struct memory *)base;
    for (struct node *n = m->tail, *prev; n; n = prev) {
        prev = n->prev;
        if (n->e.expires_ms < before_ms)
            remove_node(m, n);
    }
    return 0;
}

static int mem_put_vector(struct sl_cache_backend *b, const uint8_t *key, uint64_t scope,
                          const float *v, int dim)
{
    return 0;
}

static int mem_load_vectors(struct sl_cache_backend *b, sl_cache_vector_cb cb, void *arg)
{
    return 0;
}

static void mem_stats(struct sl_cache_backend *base, size_t *entries, size_t *bytes)
{
    struct memory *m = (struct memory *)base;
    *entries = m->entries;
    *bytes = m->bytes;
}

static void mem_free(struct sl_cache_backend *base)
{
    struct memory *m = (struct memory *)base;
    while (m->head)
        remove_node(m, m->head);
    free(m->buckets);
    free(m);
}

static const struct sl_cache_backend_ops memory_ops = {
    "memory", mem_get, mem_put, mem_del, mem_evict, mem_put_vector, mem_load_vectors, mem_stats,
    mem_free,
};

struct sl_cache_backend *sl_cache_memory_new(size_t max_bytes)
{
    struct memory *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->nbuckets = 1024;
    m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    m->base.ops = &memory_ops;
    m->max_bytes = max_bytes;
    return &m->base;
}
