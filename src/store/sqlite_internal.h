/* What the SQLite backend's files share (sqlite.c, sqlite_rollup.c). Nothing outside
 * src/store includes this. */
#ifndef SL_SQLITE_INTERNAL_H
#define SL_SQLITE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sqlite3.h>

#include "store/store.h"

struct sl_usage_row;

struct sqlite_store {
    struct sl_store base; /* first, so a struct sl_store * is a struct sqlite_store * */
    sqlite3 *db;
    sqlite3_stmt *insert; /* prepared once: the ledger writer runs it for every row */
    sqlite3_stmt *rollup; /* the row's day in usage_daily, in the same transaction */
    sqlite3_stmt *hourly; /* and its hour in usage_hourly */
};

/* Formats "sqlite: what: message" into err; returns SL_STORE_BUSY for what may go away
 * by itself (locked, full, I/O), else SL_STORE_ERROR. */
int sl_sqlite_error(sqlite3 *db, int rc, const char *what, char *err, size_t errlen);

/* Binds a fixed-size string column (strnlen guards an array filled to the brim). */
void sl_sqlite_bind_text(sqlite3_stmt *st, int col, const char *s, size_t cap);
/* Copies a text column into out (an empty string for NULL). */
void sl_sqlite_read_text(sqlite3_stmt *st, int col, char *out, size_t size);

/* Steps a prepared statement to its end, reading each row into a growing array of
 * size-byte elements. Finalizes st. On success *out (the caller frees; NULL when *n
 * is 0); on failure nothing is returned and err says why. */
typedef void (*sl_sqlite_read_fn)(sqlite3_stmt *st, void *row);
int sl_sqlite_collect_rows(sqlite3 *db, sqlite3_stmt *st, size_t size, sl_sqlite_read_fn read,
                           const char *what, void **out, size_t *n, char *err, size_t errlen);

/* The key ops (sqlite_keys.c; store.h). */
struct sl_key;
int sl_sqlite_insert_key(struct sl_store *base, const struct sl_key *k, char *err, size_t errlen);
int sl_sqlite_list_keys(struct sl_store *base, struct sl_key **out, size_t *n, char *err,
                        size_t errlen);
int sl_sqlite_revoke_key(struct sl_store *base, const char *id, int64_t now_ms, char *err,
                         size_t errlen);

/* The roll-up tables (per UTC hour and per UTC day; ts_ms is the period's first
 * millisecond) and the retention mark, created and filled from the existing rows. */
#define SL_SQLITE_ROLLUP_TABLE(name)                                                        \
    "CREATE TABLE " name " ("                                                               \
    " ts_ms INTEGER NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL,"                      \
    " provider TEXT NOT NULL, upstream_model TEXT NOT NULL, tags TEXT NOT NULL,"            \
    " currency TEXT NOT NULL, requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,"   \
    " completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,"                  \
    " reasoning_tokens INTEGER NOT NULL, cost_micros INTEGER NOT NULL,"                     \
    " unpriced INTEGER NOT NULL, cache_hits INTEGER NOT NULL, saved_micros INTEGER NOT NULL,"\
    " PRIMARY KEY (ts_ms, key, model, provider, upstream_model, tags, currency))"           \
    " WITHOUT ROWID;"
#define SL_SQLITE_ROLLUP_FILL(name, period_ms)                                              \
    "INSERT INTO " name " SELECT ts_ms / " period_ms " * " period_ms ", key, model,"        \
    " provider, upstream_model, tags, currency, sum(final), sum(prompt_tokens),"            \
    " sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(cost_micros)," \
    " sum(price_known = 0 AND prompt_tokens + completion_tokens > 0),"                      \
    " sum(cache != '' AND final), sum(saved_micros) FROM usage"                             \
    " GROUP BY 1, 2, 3, 4, 5, 6, 7;"
#define SL_SQLITE_ROLLUP_MIGRATION                                                          \
    SL_SQLITE_ROLLUP_TABLE("usage_daily") SL_SQLITE_ROLLUP_FILL("usage_daily", "86400000")  \
    SL_SQLITE_ROLLUP_TABLE("usage_hourly") SL_SQLITE_ROLLUP_FILL("usage_hourly", "3600000") \
    "CREATE TABLE usage_retention (before_ms INTEGER NOT NULL);"

/* Prepares s->rollup. Returns a store code. */
int sl_sqlite_rollup_prepare(struct sqlite_store *s, char *err, size_t errlen);

/* Adds rows[0..n) to their hours' and days' roll-ups; the caller holds the write
 * transaction that inserts them. */
int sl_sqlite_rollup_rows(struct sqlite_store *s, const struct sl_usage_row *rows, size_t n,
                          char *err, size_t errlen);

/* Where the reports switch, for rows since since_ms, from raw rows to hourly roll-ups
 * (*hour: the next hour boundary) and from those to daily ones (*day: the next day
 * boundary); both are since's own day when retention deleted its raw rows. */
int sl_sqlite_rollup_boundary(struct sqlite_store *s, int64_t since_ms, int64_t *hour,
                              int64_t *day, char *err, size_t errlen);

/* The prune_usage op (store.h). */
int sl_sqlite_prune_usage(struct sl_store *base, int64_t before_ms, int64_t *deleted, char *err,
                          size_t errlen);

#endif
