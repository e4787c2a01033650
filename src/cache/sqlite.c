/* The SQLite cache backend: entries and semantic vectors in two tables of the store's
 * database (created by its migrations, src/store/sqlite.c), on a connection of its
 * own. Kept under a byte cap by dropping the oldest entries first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "cache/backend.h"

struct sq {
    struct sl_cache_backend base;
    sqlite3 *db;
    sqlite3_stmt *get, *put, *del, *size_of;
    size_t max_bytes, bytes, entries;
};

static const char get_sql[] =
    "SELECT value, created_ms, expires_ms, cost_micros, currency FROM cache_entries WHERE key = ?";
static const char put_sql[] =
    "INSERT OR REPLACE INTO cache_entries (key, value, created_ms, expires_ms, cost_micros,"
    " currency, size) VALUES (?, ?, ?, ?, ?, ?, ?)";
static const char del_sql[] = "DELETE FROM cache_entries WHERE key = ?";
static const char size_sql[] = "SELECT size FROM cache_entries WHERE key = ?";

static int exec(sqlite3 *db, const char *sql)
{
    return sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static void recount(struct sq *s)
{
    sqlite3_stmt *st = NULL;
    s->bytes = s->entries = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT count(*), coalesce(sum(size), 0) FROM cache_entries", -1,
                           &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW) {
        s->entries = (size_t)sqlite3_column_int64(st, 0);
        s->bytes = (size_t)sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
}

static int sq_get(struct sl_cache_backend *base, const uint8_t *key, struct sl_cache_entry *out)
{
    struct sq *s = (struct sq *)base;
    int rc, result = 1;
    sqlite3_bind_blob(s->get, 1, key, SL_CACHE_KEY_LEN, SQLITE_STATIC);
    rc = sqlite3_step(s->get);
    if (rc == SQLITE_ROW) {
        int n = sqlite3_column_bytes(s->get, 0);
        const void *v = sqlite3_column_blob(s->get, 0);
        const unsigned char *cur = sqlite3_column_text(s->get, 4);
        memset(out, 0, sizeof(*out));
        out->value = malloc((size_t)n + 1);
        result = out->value ? 0 : -1;
        if (out->value) {
            if (n)
                memcpy(out->value, v, (size_t)n);
            out->value[n] = '\0';
            out->len = (size_t)n;
            out->created_ms = sqlite3_column_int64(s->get, 1);
            out->expires_ms = sqlite3_column_int64(s->get, 2);
            out->cost_micros = sqlite3_column_int64(s->get, 3);
            snprintf(out->currency, sizeof(out->currency), "%s", cur ? (const char *)cur : "");
        }
    } else if (rc != SQLITE_DONE) {
        result = -1;
    }
    sqlite3_reset(s->get);
    sqlite3_clear_bindings(s->get);
    return result;
}

static int64_t size_of(struct sq *s, const uint8_t *key)
{
    int64_t n = -1;
    sqlite3_bind_blob(s->size_of, 1, key, SL_CACHE_KEY_LEN, SQLITE_STATIC);
    if (sqlite3_step(s->size_of) == SQLITE_ROW)
        n = sqlite3_column_int64(s->size_of, 0);
    sqlite3_reset(s->size_of);
    sqlite3_clear_bindings(s->size_of);
    return n;
}

static int sq_del(struct sl_cache_backend *base, const uint8_t *key)
{
    struct sq *s = (struct sq *)base;
    int64_t old = size_of(s, key);
    if (old < 0)
        return 0;
    sqlite3_bind_blob(s->del, 1, key, SL_CACHE_KEY_LEN, SQLITE_STATIC);
    int rc = sqlite3_step(s->del);
    sqlite3_reset(s->del);
    sqlite3_clear_bindings(s->del);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(s->db, "DELETE FROM cache_vectors WHERE key = ?", -1, &st, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_blob(st, 1, key, SL_CACHE_KEY_LEN, SQLITE_STATIC);
        sqlite3_step(st);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return -1;
    s->bytes -= (size_t)old;
    s->entries--;
    return 0;
}

/* Oldest first, until need more bytes fit under the cap. */
static void make_room(struct sq *s, size_t need)
{
    if (s->bytes + need <= s->max_bytes)
        return;
    exec(s->db, "DELETE FROM cache_vectors WHERE key NOT IN (SELECT key FROM cache_entries)");
    char sql[256];
    /* Drops roughly the oldest tenth (at least what is needed), so a full cache does
     * not pay one DELETE per put. */
    size_t target = s->max_bytes - s->max_bytes / 10;
    target = target > need ? target - need : 0;
    snprintf(sql, sizeof(sql),
             "DELETE FROM cache_entries WHERE key IN (SELECT key FROM (SELECT key,"
             " sum(size) OVER (ORDER BY created_ms DESC, key) AS kept FROM cache_entries)"
             " WHERE kept > %zu)",
             target);
    exec(s->db, sql);
    exec(s->db, "DELETE FROM cache_vectors WHERE key NOT IN (SELECT key FROM cache_entries)");
    recount(s);
}

static int sq_put(struct sl_cache_backend *base, const uint8_t *key, const struct sl_cache_entry *e)
{
    struct sq *s = (struct sq *)base;
    if (e->len > s->max_bytes)
        return -1;
    sq_del(base, key);
    make_room(s, e->len);
    sqlite3_stmt *st = s->put;
    sqlite3_bind_blob(st, 1, key, SL_CACHE_KEY_LEN, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, e->value, (int)e->len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, e->created_ms);
    sqlite3_bind_int64(st, 4, e->expires_ms);
    sqlite3_bind_int64(st, 5, e->cost_micros);
    sqlite3_bind_text(st, 6, e->currency, (int)strnlen(e->currency, sizeof(e->currency)),
                      SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, (sqlite3_int64)e->len);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE)
        return -1;
    s->bytes += e->len;
    s->entries++;
    return 0;
}

static int sq_evict(struct sl_cache_backend *base, int64_t before_ms)
{
    struct sq *s = (struct sq *)base;
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM cache_entries WHERE expires_ms < %lld",
             (long long)before_ms);
    int r = exec(s->db, sql);
    exec(s->db, "DELETE FROM cache_vectors WHERE key NOT IN (SELECT key FROM cache_entries)");
    recount(s);
    return r;
}

static int sq_put_vector(struct sl_cache_backend *base, const uint8_t *key, uint64_t scope,
                         const float *v, int dim)
{
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "INSERT OR REPLACE INTO cache_vectors (key, scope, dim, vec)"
                                " VALUES (?, ?, ?, ?)",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_blob(st, 1, key, SL_CACHE_KEY_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)scope);
        sqlite3_bind_int(st, 3, dim);
        sqlite3_bind_blob(st, 4, v, (int)((size_t)dim * sizeof(float)), SQLITE_STATIC);
        rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? 0 : -1;
}

static int sq_load_vectors(struct sl_cache_backend *base, sl_cache_vector_cb cb, void *arg)
{
    struct sq *s = (struct sq *)base;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db,
                                "SELECT v.key, v.scope, v.dim, v.vec FROM cache_vectors v"
                                " JOIN cache_entries e ON e.key = v.key ORDER BY e.created_ms",
                                -1, &st, NULL);
    while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int dim = sqlite3_column_int(st, 2);
        if (sqlite3_column_bytes(st, 0) != SL_CACHE_KEY_LEN || dim <= 0 ||
            sqlite3_column_bytes(st, 3) != (int)((size_t)dim * sizeof(float))) {
            rc = SQLITE_OK;
            continue;
        }
        /* The blob's alignment is SQLite's: copy before reading floats. */
        float *v = malloc((size_t)dim * sizeof(float));
        if (v) {
            memcpy(v, sqlite3_column_blob(st, 3), (size_t)dim * sizeof(float));
            cb(arg, sqlite3_column_blob(st, 0), (uint64_t)sqlite3_column_int64(st, 1), v, dim);
        }
        free(v);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

static void sq_stats(struct sl_cache_backend *base, size_t *entries, size_t *bytes)
{
    struct sq *s = (struct sq *)base;
    *entries = s->entries;
    *bytes = s->bytes;
}

static void sq_free(struct sl_cache_backend *base)
{
    struct sq *s = (struct sq *)base;
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->size_of);
    sqlite3_close(s->db);
    free(s);
}

static const struct sl_cache_backend_ops sqlite_ops = {
    "sqlite", sq_get, sq_put, sq_del, sq_evict, sq_put_vector, sq_load_vectors, sq_stats, sq_free,
};

struct sl_cache_backend *sl_cache_sqlite_new(const char *path, size_t max_bytes, char *err,
                                             size_t errlen)
{
    struct sq *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->base.ops = &sqlite_ops;
    s->max_bytes = max_bytes;
    /* The cache's lock serialises every call: SQLite's own mutexes are not needed. */
    int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_busy_timeout(s->db, 2000);
    if (rc == SQLITE_OK && (exec(s->db, "PRAGMA journal_mode=WAL") ||
                            exec(s->db, "PRAGMA synchronous=NORMAL")))
        rc = SQLITE_ERROR;
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db, get_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->get, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db, put_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->put, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db, del_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->del, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db, size_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->size_of,
                                NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite cache at %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sq_free(&s->base);
        return NULL;
    }
    recount(s);
    return &s->base;
}
