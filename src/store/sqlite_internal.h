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
};

/* Formats "sqlite: what: message" into err; returns SL_STORE_BUSY for what may go away
 * by itself (locked, full, I/O), else SL_STORE_ERROR. */
int sl_sqlite_error(sqlite3 *db, int rc, const char *what, char *err, size_t errlen);

/* The roll-up table and the retention mark, created and filled from existing rows. */
#define SL_SQLITE_ROLLUP_MIGRATION                                                          \
    "CREATE TABLE usage_daily ("                                                            \
    " ts_ms INTEGER NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL,"                      \
    " provider TEXT NOT NULL, upstream_model TEXT NOT NULL, tags TEXT NOT NULL,"            \
    " currency TEXT NOT NULL, requests INTEGER NOT NULL, prompt_tokens INTEGER NOT NULL,"   \
    " completion_tokens INTEGER NOT NULL, cached_tokens INTEGER NOT NULL,"                  \
    " reasoning_tokens INTEGER NOT NULL, cost_micros INTEGER NOT NULL,"                     \
    " unpriced INTEGER NOT NULL,"                                                           \
    " PRIMARY KEY (ts_ms, key, model, provider, upstream_model, tags, currency))"           \
    " WITHOUT ROWID;"                                                                       \
    "INSERT INTO usage_daily SELECT ts_ms / 86400000 * 86400000, key, model, provider,"     \
    " upstream_model, tags, currency, sum(final), sum(prompt_tokens),"                      \
    " sum(completion_tokens), sum(cached_tokens), sum(reasoning_tokens), sum(cost_micros)," \
    " sum(price_known = 0 AND prompt_tokens + completion_tokens > 0) FROM usage"            \
    " GROUP BY 1, 2, 3, 4, 5, 6, 7;"                                                        \
    "CREATE TABLE usage_retention (before_ms INTEGER NOT NULL);"

/* Prepares s->rollup. Returns a store code. */
int sl_sqlite_rollup_prepare(struct sqlite_store *s, char *err, size_t errlen);

/* Adds row to its day's roll-up; the caller holds the write transaction. */
int sl_sqlite_rollup_row(struct sqlite_store *s, const struct sl_usage_row *r, char *err,
                         size_t errlen);

/* Where the reports switch from raw rows to roll-ups for rows since since_ms: the next
 * day boundary, or since's own day when retention deleted its raw rows. */
int sl_sqlite_rollup_boundary(struct sqlite_store *s, int64_t since_ms, int64_t *boundary,
                              char *err, size_t errlen);

/* The prune_usage op (store.h). */
int sl_sqlite_prune_usage(struct sl_store *base, int64_t before_ms, int64_t *deleted, char *err,
                          size_t errlen);

#endif
