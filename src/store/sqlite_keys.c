/* The virtual keys' table of the SQLite backend (the keys rules are src/meter/keys.c). */
#include <stdint.h>
#include <stdio.h>

#include "store/sqlite_internal.h"

/* Keys change rarely (an admin creating or revoking one), so each call prepares its
 * statement instead of keeping it for the life of the store. */
static const char insert_key_sql[] =
    "INSERT INTO keys (id, name, hash, prefix, created_ms, expires_ms, revoked_ms, budget,"
    " rpm, tpm, models, tags, concurrency) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char list_keys_sql[] =
    "SELECT id, name, hash, prefix, created_ms, expires_ms, revoked_ms, budget, rpm, tpm,"
    " models, tags, concurrency FROM keys ORDER BY created_ms, id";
static const char revoke_key_sql[] =
    "UPDATE keys SET revoked_ms = CASE revoked_ms WHEN 0 THEN ? ELSE revoked_ms END"
    " WHERE id = ?";

static void bind_key(sqlite3_stmt *st, const struct sl_key *k)
{
    sl_sqlite_bind_text(st, 1, k->id, sizeof(k->id));
    sl_sqlite_bind_text(st, 2, k->name, sizeof(k->name));
    sl_sqlite_bind_text(st, 3, k->hash, sizeof(k->hash));
    sl_sqlite_bind_text(st, 4, k->prefix, sizeof(k->prefix));
    sqlite3_bind_int64(st, 5, k->created_ms);
    sqlite3_bind_int64(st, 6, k->expires_ms);
    sqlite3_bind_int64(st, 7, k->revoked_ms);
    sl_sqlite_bind_text(st, 8, k->budget, sizeof(k->budget));
    sqlite3_bind_int64(st, 9, k->rpm);
    sqlite3_bind_int64(st, 10, k->tpm);
    sl_sqlite_bind_text(st, 11, k->models, sizeof(k->models));
    sl_sqlite_bind_text(st, 12, k->tags, sizeof(k->tags));
    sqlite3_bind_int64(st, 13, k->concurrency);
}

int sl_sqlite_insert_key(struct sl_store *base, const struct sl_key *k, char *err, size_t errlen)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, insert_key_sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        bind_key(st, k);
        rc = sqlite3_step(st);
    }
    int result = rc == SQLITE_DONE ? SL_STORE_OK : sl_sqlite_error(s->db, rc, "insert key", err, errlen);
    sqlite3_finalize(st);
    return result;
}

static void read_key(sqlite3_stmt *st, void *row)
{
    struct sl_key *k = row;
    sl_sqlite_read_text(st, 0, k->id, sizeof(k->id));
    sl_sqlite_read_text(st, 1, k->name, sizeof(k->name));
    sl_sqlite_read_text(st, 2, k->hash, sizeof(k->hash));
    sl_sqlite_read_text(st, 3, k->prefix, sizeof(k->prefix));
    k->created_ms = sqlite3_column_int64(st, 4);
    k->expires_ms = sqlite3_column_int64(st, 5);
    k->revoked_ms = sqlite3_column_int64(st, 6);
    sl_sqlite_read_text(st, 7, k->budget, sizeof(k->budget));
    k->rpm = sqlite3_column_int64(st, 8);
    k->tpm = sqlite3_column_int64(st, 9);
    sl_sqlite_read_text(st, 10, k->models, sizeof(k->models));
    sl_sqlite_read_text(st, 11, k->tags, sizeof(k->tags));
    k->concurrency = sqlite3_column_int64(st, 12);
}

int sl_sqlite_list_keys(struct sl_store *base, struct sl_key **out, size_t *n, char *err,
                        size_t errlen)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    *n = 0;
    int rc = sqlite3_prepare_v2(s->db, list_keys_sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return sl_sqlite_error(s->db, rc, "list keys", err, errlen);
    }
    return sl_sqlite_collect_rows(s->db, st, sizeof(**out), read_key, "list keys", (void **)out,
                                  n, err, errlen);
}

int sl_sqlite_revoke_key(struct sl_store *base, const char *id, int64_t now_ms, char *err,
                         size_t errlen)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, revoke_key_sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, now_ms);
        sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
    }
    int result = rc == SQLITE_DONE ? SL_STORE_OK : sl_sqlite_error(s->db, rc, "revoke key", err, errlen);
    sqlite3_finalize(st);
    /* The CASE matches every row with the id, revoked or not: no change means no key. */
    if (result == SL_STORE_OK && sqlite3_changes(s->db) == 0) {
        snprintf(err, errlen, "no key with id '%.40s'", id);
        result = SL_STORE_NOT_FOUND;
    }
    return result;
}
