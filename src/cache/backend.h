/* The cache's storage as a small vtable, one file per backend: memory.c (LRU under a
 * byte cap), sqlite.c (a table in the store's database). A Redis backend is one more
 * file with these functions (hiredis; keys as binary strings, TTL by EXPIRE). */
#ifndef SL_CACHE_BACKEND_H
#define SL_CACHE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#define SL_CACHE_KEY_LEN 32 /* a SHA-256 digest */

/* One cached answer: the canonical (OpenAI-shaped) chat.completion as JSON text, and
 * what it cost when a provider made it. */
struct sl_cache_entry {
    char *value;          /* get: malloc'd, the caller frees; put: the caller's */
    size_t len;
    int64_t created_ms;   /* wall clock */
    int64_t expires_ms;   /* a fresh answer until then; stale (max_stale) after */
    int64_t cost_micros;  /* what the answer cost, in currency */
    char currency[4];
};

struct sl_cache_backend;

/* Receives one stored vector at load time: the entry it points to, its scope, and
 * dim float32 values (valid during the call). */
typedef void (*sl_cache_vector_cb)(void *arg, const uint8_t *key, uint64_t scope,
                                   const float *v, int dim);

/* Every function returns 0 on success, 1 for "not there" (get) and -1 on an error.
 * A backend is called under the cache's lock: one caller at a time. */
struct sl_cache_backend_ops {
    const char *name;
    int (*get)(struct sl_cache_backend *b, const uint8_t *key, struct sl_cache_entry *out);
    /* Stores or replaces; may evict others to stay under the byte cap. An entry larger
     * than the cap is refused (-1). */
    int (*put)(struct sl_cache_backend *b, const uint8_t *key, const struct sl_cache_entry *e);
    int (*del)(struct sl_cache_backend *b, const uint8_t *key);
    /* Drops every entry that expired before before_ms (past its stale window). */
    int (*evict)(struct sl_cache_backend *b, int64_t before_ms);
    /* Semantic index persistence: the vector of entry key; a backend that cannot keep
     * vectors (memory) accepts and forgets them. */
    int (*put_vector)(struct sl_cache_backend *b, const uint8_t *key, uint64_t scope,
                      const float *v, int dim);
    int (*load_vectors)(struct sl_cache_backend *b, sl_cache_vector_cb cb, void *arg);
    void (*stats)(struct sl_cache_backend *b, size_t *entries, size_t *bytes);
    void (*free)(struct sl_cache_backend *b);
};

struct sl_cache_backend {
    const struct sl_cache_backend_ops *ops;
};

/* A memory backend holding at most max_bytes (values plus per-entry overhead),
 * least recently used evicted first. NULL when out of memory. */
struct sl_cache_backend *sl_cache_memory_new(size_t max_bytes);

/* Bytes the memory backend counts for one entry besides its value. */
size_t sl_cache_memory_overhead(void);

/* A SQLite backend over the database file at path (schema from the store's
 * migrations, src/store/sqlite.c), at most max_bytes of values, oldest first out.
 * NULL with a message in err. */
struct sl_cache_backend *sl_cache_sqlite_new(const char *path, size_t max_bytes, char *err,
                                             size_t errlen);

#endif
