/* The SQLite store backend (sqlite://PATH): one file in WAL mode, schema created
 * and migrated on open, usage rows inserted with one prepared statement. */
#include "store/store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "core/clock.h"
#include "meter/ledger.h"
#include "store/sqlite_internal.h"

/* Migration i takes the schema from version i to version i + 1. To change the
 * schema, append a row (never edit one that has shipped) and update docs/usage.md. */
static const char *const migrations[] = {
    "CREATE TABLE usage ("
    " id TEXT NOT NULL, ts_ms INTEGER NOT NULL, key TEXT NOT NULL, model TEXT NOT NULL,"
    " provider TEXT NOT NULL, upstream_model TEXT NOT NULL,"
    " prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,"
    " cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL,"
    " estimated INTEGER NOT NULL, status INTEGER NOT NULL, stream INTEGER NOT NULL,"
    " client_gone INTEGER NOT NULL, latency_us INTEGER NOT NULL, ttft_us INTEGER NOT NULL,"
    " error TEXT NOT NULL);"
    "CREATE INDEX usage_ts ON usage(ts_ms);"
    "CREATE INDEX usage_model_ts ON usage(model, ts_ms);",
    /* 2: every attempt of a routed request, linked to its request. */
    "ALTER TABLE usage ADD COLUMN request_id TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE usage ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE usage ADD COLUMN final INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE usage ADD COLUMN why TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX usage_request ON usage(request_id);",
    /* 3: the cost of each row (src/meter/cost.c); older rows stay unpriced. */
    "ALTER TABLE usage ADD COLUMN cost_micros INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE usage ADD COLUMN currency TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE usage ADD COLUMN price_known INTEGER NOT NULL DEFAULT 0;",
    /* 4: virtual keys (src/meter/keys.c): the secret's SHA-256, never the secret. */
    "CREATE TABLE keys ("
    " id TEXT PRIMARY KEY, name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE,"
    " prefix TEXT NOT NULL, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
    " revoked_ms INTEGER NOT NULL, budget TEXT NOT NULL, rpm INTEGER NOT NULL,"
    " tpm INTEGER NOT NULL, models TEXT NOT NULL, tags TEXT NOT NULL);",
    /* 5: the tags of each request, a JSON array of "name=value" strings ('' = none). */
    "ALTER TABLE usage ADD COLUMN tags TEXT NOT NULL DEFAULT '';",
    /* 6: mirrored copies (src/server/mirror.c) and the answer hashes `sluice compare` matches. */
    "ALTER TABLE usage ADD COLUMN mirror_of TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE usage ADD COLUMN answer_hash TEXT NOT NULL DEFAULT '';"
    "CREATE INDEX usage_mirror_of ON usage(mirror_of);",
    /* 7: the response cache (src/cache/): cached answers and their semantic vectors, and
     * on each usage row whether it was answered from the cache and what that saved. */
    "ALTER TABLE usage ADD COLUMN cache TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE usage ADD COLUMN saved_micros INTEGER NOT NULL DEFAULT 0;"
    "CREATE TABLE cache_entries ("
    " key BLOB PRIMARY KEY, value BLOB NOT NULL, created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL, cost_micros INTEGER NOT NULL, currency TEXT NOT NULL,"
    " size INTEGER NOT NULL);"
    "CREATE INDEX cache_entries_created ON cache_entries(created_ms);"
    "CREATE TABLE cache_vectors ("
    " key BLOB PRIMARY KEY, scope INTEGER NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL);",
    /* 8: a key's limit on requests in flight at once (src/meter/govern.c); 0 = none. */
    "ALTER TABLE keys ADD COLUMN concurrency INTEGER NOT NULL DEFAULT 0;",
    /* 9: daily and hourly roll-ups kept by every insert (sqlite_rollup.c), filled from
     * the rows already there; the time before which retention deleted raw rows. */
    SL_SQLITE_ROLLUP_MIGRATION,
    /* 10: knowledge bases (src/kb/store.c): documents, chunks, FTS5 terms, vectors per
     * model, and the embedding cache by (model, content hash). */
    "CREATE TABLE kb ("
    " id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, embed_model TEXT NOT NULL,"
    " dim INTEGER NOT NULL, rerank TEXT NOT NULL, rerank_model TEXT NOT NULL,"
    " answer_model TEXT NOT NULL, temperature REAL NOT NULL, recall_k INTEGER NOT NULL,"
    " top_k INTEGER NOT NULL, recall_threshold REAL NOT NULL, rerank_threshold REAL NOT NULL,"
    " context_tokens INTEGER NOT NULL, profile TEXT NOT NULL, rev INTEGER NOT NULL,"
    " created_ms INTEGER NOT NULL);"
    "CREATE TABLE kb_document ("
    " id INTEGER PRIMARY KEY, kb INTEGER NOT NULL, name TEXT NOT NULL, type TEXT NOT NULL,"
    " profile TEXT NOT NULL, hash TEXT NOT NULL, bytes INTEGER NOT NULL,"
    " chunks INTEGER NOT NULL, added_ms INTEGER NOT NULL, UNIQUE (kb, name));"
    "CREATE TABLE kb_chunk ("
    " id INTEGER PRIMARY KEY, kb INTEGER NOT NULL, doc INTEGER NOT NULL,"
    " ordinal INTEGER NOT NULL, start INTEGER NOT NULL, end INTEGER NOT NULL,"
    " cstart INTEGER NOT NULL, cend INTEGER NOT NULL, heading TEXT NOT NULL,"
    " text TEXT NOT NULL, tokens INTEGER NOT NULL, hash TEXT NOT NULL);"
    "CREATE INDEX kb_chunk_doc ON kb_chunk(doc);"
    "CREATE TABLE kb_vector ("
    " chunk INTEGER NOT NULL, kb INTEGER NOT NULL, model TEXT NOT NULL, dim INTEGER NOT NULL,"
    " vec BLOB NOT NULL, PRIMARY KEY (chunk, model));"
    "CREATE INDEX kb_vector_kb ON kb_vector(kb, model);"
    "CREATE TABLE kb_embed_cache ("
    " model TEXT NOT NULL, hash TEXT NOT NULL, dim INTEGER NOT NULL, vec BLOB NOT NULL,"
    " PRIMARY KEY (model, hash));"
    "CREATE VIRTUAL TABLE kb_fts USING fts5(terms, kb UNINDEXED, tokenize = 'unicode61');",
};
#define NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

static const char insert_sql[] =
    "INSERT INTO usage (id, ts_ms, key, model, provider, upstream_model, prompt_tokens,"
    " completion_tokens, cached_tokens, reasoning_tokens, estimated, status, stream,"
    " client_gone, latency_us, ttft_us, error, request_id, attempt, final, why,"
    " cost_micros, currency, price_known, tags, mirror_of, answer_hash, cache, saved_micros)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?, ?)";

static const char totals_sql[] =
    "SELECT model, sum(final), sum(prompt_tokens), sum(completion_tokens), sum(cached_tokens),"
    " sum(reasoning_tokens), sum(estimated != 0 AND final), sum(status >= 400 AND final)"
    " FROM usage WHERE ts_ms >= ? GROUP BY model ORDER BY model";

/* Locked or out of space can go away by itself; the caller may retry those. */
static int map_error(sqlite3 *db, int rc, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "sqlite: %s: %s", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_FULL:
    case SQLITE_IOERR:
        return SL_STORE_BUSY;
    default:
        return SL_STORE_ERROR;
    }
}

int sl_sqlite_error(sqlite3 *db, int rc, const char *what, char *err, size_t errlen)
{
    return map_error(db, rc, what, err, errlen);
}

static int exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? SL_STORE_OK : map_error(db, rc, sql, err, errlen);
}

/* Runs a query returning one integer. */
static int query_int(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    int result = rc == SQLITE_OK ? SL_STORE_OK : map_error(db, rc, sql, err, errlen);
    sqlite3_finalize(st);
    return result;
}

/* 0 for a database that has never been migrated. */
static int schema_version(sqlite3 *db, int64_t *version, char *err, size_t errlen)
{
    int64_t exists = 0;
    int result = query_int(
        db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
        &exists, err, errlen);
    *version = 0;
    if (result == SL_STORE_OK && exists)
        result = query_int(db, "SELECT coalesce(max(version), 0) FROM schema_version", version,
                           err, errlen);
    return result;
}

static int apply_migration(sqlite3 *db, int64_t from, char *err, size_t errlen)
{
    char sql[160];
    int result = exec(db, migrations[from], err, errlen);
    if (result)
        return result;
    snprintf(sql, sizeof(sql),
             "INSERT INTO schema_version (version, applied_ms) VALUES (%lld, %lld)",
             (long long)(from + 1), (long long)sl_wall_ms());
    return exec(db, sql, err, errlen);
}

/* Brings the schema up to date in one write transaction. The version is read
 * again under the write lock, so two processes opening a new file at once do
 * not both apply a migration. */
static int migrate_locked(sqlite3 *db, char *err, size_t errlen)
{
    int64_t version;
    int result = exec(db, "BEGIN IMMEDIATE", err, errlen);
    if (result)
        return result;
    result = exec(db, "CREATE TABLE IF NOT EXISTS schema_version ("
                      " version INTEGER PRIMARY KEY, applied_ms INTEGER NOT NULL)",
                  err, errlen);
    if (result == SL_STORE_OK)
        result = schema_version(db, &version, err, errlen);
    for (; result == SL_STORE_OK && version < NMIGRATIONS; version++)
        result = apply_migration(db, version, err, errlen);
    if (result == SL_STORE_OK)
        result = exec(db, "COMMIT", err, errlen);
    if (result)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return result;
}

/* An up-to-date schema is only read, so opening takes no write lock then. */
static int migrate(sqlite3 *db, char *err, size_t errlen)
{
    int64_t version;
    int result = schema_version(db, &version, err, errlen);
    if (result)
        return result;
    if (version > NMIGRATIONS) {
        snprintf(err, errlen, "sqlite: schema version %lld is newer than this sluice knows (%d)",
                 (long long)version, NMIGRATIONS);
        return SL_STORE_ERROR;
    }
    return version == NMIGRATIONS ? SL_STORE_OK : migrate_locked(db, err, errlen);
}

/* WAL lets `sluice usage` read while the server writes; NORMAL is durable
 * across process crashes, which is what a ledger needs. */
static int configure(sqlite3 *db, char *err, size_t errlen)
{
    int rc = sqlite3_busy_timeout(db, 5000);
    if (rc != SQLITE_OK)
        return map_error(db, rc, "busy_timeout", err, errlen);
    int result = exec(db, "PRAGMA journal_mode=WAL", err, errlen);
    if (result == SL_STORE_OK)
        result = exec(db, "PRAGMA synchronous=NORMAL", err, errlen);
    return result;
}

static int open_db(const char *path, int flags, sqlite3 **db, char *err, size_t errlen)
{
    /* Only one thread uses a store at a time, so SQLite's own mutexes are not needed. */
    int oflags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    if (!(flags & SL_STORE_MUST_EXIST))
        oflags |= SQLITE_OPEN_CREATE;
    else if (access(path, F_OK) != 0 && errno == ENOENT) {
        snprintf(err, errlen, "no database at %s", path);
        return SL_STORE_MISSING;
    }
    int rc = sqlite3_open_v2(path, db, oflags, NULL);
    if (rc == SQLITE_OK)
        return SL_STORE_OK;
    snprintf(err, errlen, "sqlite: cannot open %s: %s", path,
             *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
    return SL_STORE_ERROR;
}

static const struct sl_store_ops sqlite_ops;

static int sqlite_open(const char *path, int flags, struct sl_store **out, char *err, size_t errlen)
{
    struct sqlite_store *s = calloc(1, sizeof(*s));
    int result = SL_STORE_ERROR;
    if (!s) {
        snprintf(err, errlen, "sqlite: out of memory");
        goto out;
    }
    s->base.ops = &sqlite_ops;
    result = open_db(path, flags, &s->db, err, errlen);
    if (result == SL_STORE_OK)
        result = configure(s->db, err, errlen);
    if (result == SL_STORE_OK)
        result = migrate(s->db, err, errlen);
    if (result == SL_STORE_OK) {
        int rc = sqlite3_prepare_v3(s->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->insert,
                                    NULL);
        if (rc != SQLITE_OK)
            result = map_error(s->db, rc, "prepare insert", err, errlen);
    }
    if (result == SL_STORE_OK)
        result = sl_sqlite_rollup_prepare(s, err, errlen);
out:
    if (result && s) {
        sqlite3_finalize(s->insert);
        sqlite3_finalize(s->rollup);
        sqlite3_finalize(s->hourly);
        sqlite3_close(s->db);
        free(s);
        s = NULL;
    }
    *out = s ? &s->base : NULL;
    return result;
}

/* The row's strings are fixed arrays; strnlen guards one filled to the brim. */
void sl_sqlite_bind_text(sqlite3_stmt *st, int col, const char *s, size_t cap)
{
    sqlite3_bind_text(st, col, s, (int)strnlen(s, cap), SQLITE_STATIC);
}

static void bind_row(sqlite3_stmt *st, const struct sl_usage_row *r)
{
    sl_sqlite_bind_text(st, 1, r->id, sizeof(r->id));
    sqlite3_bind_int64(st, 2, r->ts_ms);
    sl_sqlite_bind_text(st, 3, r->key, sizeof(r->key));
    sl_sqlite_bind_text(st, 4, r->model, sizeof(r->model));
    sl_sqlite_bind_text(st, 5, r->provider, sizeof(r->provider));
    sl_sqlite_bind_text(st, 6, r->upstream_model, sizeof(r->upstream_model));
    sqlite3_bind_int64(st, 7, r->prompt_tokens);
    sqlite3_bind_int64(st, 8, r->completion_tokens);
    sqlite3_bind_int64(st, 9, r->cached_tokens);
    sqlite3_bind_int64(st, 10, r->reasoning_tokens);
    sqlite3_bind_int(st, 11, r->estimated);
    sqlite3_bind_int(st, 12, r->status);
    sqlite3_bind_int(st, 13, r->stream);
    sqlite3_bind_int(st, 14, r->client_gone);
    sqlite3_bind_int64(st, 15, r->latency_us);
    sqlite3_bind_int64(st, 16, r->ttft_us);
    sl_sqlite_bind_text(st, 17, r->error, sizeof(r->error));
    sl_sqlite_bind_text(st, 18, r->request_id, sizeof(r->request_id));
    sqlite3_bind_int(st, 19, r->attempt);
    sqlite3_bind_int(st, 20, r->final);
    sl_sqlite_bind_text(st, 21, r->why, sizeof(r->why));
    sqlite3_bind_int64(st, 22, r->cost_micros);
    sl_sqlite_bind_text(st, 23, r->currency, sizeof(r->currency));
    sqlite3_bind_int(st, 24, r->price_known);
    sl_sqlite_bind_text(st, 25, r->tags, sizeof(r->tags));
    sl_sqlite_bind_text(st, 26, r->mirror_of, sizeof(r->mirror_of));
    sl_sqlite_bind_text(st, 27, r->answer_hash, sizeof(r->answer_hash));
    sl_sqlite_bind_text(st, 28, r->cache, sizeof(r->cache));
    sqlite3_bind_int64(st, 29, r->saved_micros);
}

static int insert_row(struct sqlite_store *s, const struct sl_usage_row *r, char *err,
                      size_t errlen)
{
    bind_row(s->insert, r);
    int rc = sqlite3_step(s->insert);
    sqlite3_reset(s->insert);
    sqlite3_clear_bindings(s->insert); /* the bound text belongs to the caller's row */
    return rc == SQLITE_DONE ? SL_STORE_OK : map_error(s->db, rc, "insert usage", err, errlen);
}

static int sqlite_insert_usage(struct sl_store *base, const struct sl_usage_row *rows, size_t n,
                               char *err, size_t errlen)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    int result = exec(s->db, "BEGIN IMMEDIATE", err, errlen);
    if (result)
        return result;
    for (size_t i = 0; i < n && result == SL_STORE_OK; i++)
        result = insert_row(s, &rows[i], err, errlen);
    if (result == SL_STORE_OK)
        result = sl_sqlite_rollup_rows(s, rows, n, err, errlen);
    if (result == SL_STORE_OK)
        result = exec(s->db, "COMMIT", err, errlen);
    /* A failed COMMIT leaves the transaction open; all or nothing means roll back. */
    if (result && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return result;
}

static void read_total(sqlite3_stmt *st, void *row)
{
    struct sl_usage_total *t = row;
    const unsigned char *model = sqlite3_column_text(st, 0);
    snprintf(t->model, sizeof(t->model), "%s", model ? (const char *)model : "");
    t->requests = sqlite3_column_int64(st, 1);
    t->prompt_tokens = sqlite3_column_int64(st, 2);
    t->completion_tokens = sqlite3_column_int64(st, 3);
    t->cached_tokens = sqlite3_column_int64(st, 4);
    t->reasoning_tokens = sqlite3_column_int64(st, 5);
    t->estimated = sqlite3_column_int64(st, 6);
    t->errors = sqlite3_column_int64(st, 7);
}

int sl_sqlite_collect_rows(sqlite3 *db, sqlite3_stmt *st, size_t size, sl_sqlite_read_fn read,
                           const char *what, void **out, size_t *n, char *err, size_t errlen)
{
    char *v = NULL;
    size_t len = 0, cap = 0;
    int rc, result = SL_STORE_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            char *nv = realloc(v, ncap * size);
            if (!nv) {
                snprintf(err, errlen, "sqlite: out of memory");
                result = SL_STORE_ERROR;
                break;
            }
            v = nv;
            cap = ncap;
        }
        read(st, v + len++ * size);
    }
    if (result == SL_STORE_OK && rc != SQLITE_DONE)
        result = map_error(db, rc, what, err, errlen);
    sqlite3_finalize(st);
    if (result) {
        free(v);
        v = NULL;
        len = 0;
    }
    *out = v;
    *n = len;
    return result;
}

static int sqlite_usage_totals(struct sl_store *base, int64_t since_ms,
                               struct sl_usage_total **out, size_t *n, char *err, size_t errlen)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    *n = 0;
    int rc = sqlite3_prepare_v2(s->db, totals_sql, -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(st, 1, since_ms);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        return map_error(s->db, rc, "usage totals", err, errlen);
    }
    return sl_sqlite_collect_rows(s->db, st, sizeof(**out), read_total, "usage totals",
                        (void **)out, n, err, errlen);
}

/* ---- grouped sums for the cost reports ----------------------------------------- */

/* What each grouping selects as its two key columns; fixed text, never user input. */
static const char *const group_exprs[][2] = {
    [SL_BY_MODEL] = {"model", "''"},
    [SL_BY_PROVIDER] = {"provider", "''"},
    [SL_BY_DAY] = {"strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')", "''"},
    [SL_BY_MONTH] = {"strftime('%Y-%m', ts_ms / 1000, 'unixepoch')", "''"},
    [SL_BY_KEY] = {"key", "''"},
    [SL_BY_TAG] = {"tag.value", "''"},
    [SL_BY_UPSTREAM] = {"CASE upstream_model WHEN '' THEN model ELSE upstream_model END",
                        "provider"},
};

void sl_sqlite_read_text(sqlite3_stmt *st, int col, char *out, size_t size)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(out, size, "%s", t ? (const char *)t : "");
}

static void read_group(sqlite3_stmt *st, void *row)
{
    struct sl_usage_group *g = row;
    sl_sqlite_read_text(st, 0, g->group, sizeof(g->group));
    sl_sqlite_read_text(st, 1, g->provider, sizeof(g->provider));
    sl_sqlite_read_text(st, 2, g->currency, sizeof(g->currency));
    g->requests = sqlite3_column_int64(st, 3);
    g->prompt_tokens = sqlite3_column_int64(st, 4);
    g->completion_tokens = sqlite3_column_int64(st, 5);
    g->cached_tokens = sqlite3_column_int64(st, 6);
    g->reasoning_tokens = sqlite3_column_int64(st, 7);
    g->cost_micros = sqlite3_column_int64(st, 8);
    g->unpriced = sqlite3_column_int64(st, 9);
    g->cache_hits = sqlite3_column_int64(st, 10);
    g->saved_micros = sqlite3_column_int64(st, 11);
}

static int prepare_groups(struct sqlite_store *s, enum sl_usage_by by, int64_t since_ms,
                          sqlite3_stmt **st, char *err, size_t errlen)
{
    char sql[2048];
    if ((unsigned)by >= sizeof(group_exprs) / sizeof(group_exprs[0])) {
        snprintf(err, errlen, "sqlite: unknown grouping");
        return SL_STORE_ERROR;
    }
    int64_t hour, day;
    int result = sl_sqlite_rollup_boundary(s, since_ms, &hour, &day, err, errlen);
    if (result)
        return result;
    /* Requests are counted on request rows (final = 1); tokens and money on every row,
     * since a failed attempt that the provider billed is real spend. Raw rows up to the
     * first whole hour, hourly roll-ups to the first whole day, daily ones from there
     * (sqlite_rollup.c): a report reads at most an hour of raw rows. */
    snprintf(sql, sizeof(sql),
             "SELECT %s, %s, currency, sum(final), sum(prompt_tokens), sum(completion_tokens),"
             " sum(cached_tokens), sum(reasoning_tokens), sum(cost_micros), sum(unpriced),"
             " sum(cache_hits), sum(saved_micros)"
             " FROM (SELECT ts_ms, key, model, provider, upstream_model, tags, currency, final,"
             " prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros,"
             " (price_known = 0 AND prompt_tokens + completion_tokens > 0) AS unpriced,"
             " (cache != '' AND final) AS cache_hits, saved_micros"
             " FROM usage WHERE ts_ms >= ?1 AND ts_ms < ?2 UNION ALL"
             " SELECT ts_ms, key, model, provider, upstream_model, tags, currency, requests,"
             " prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros,"
             " unpriced, cache_hits, saved_micros FROM usage_hourly WHERE ts_ms >= ?2 AND ts_ms < ?3"
             " UNION ALL"
             " SELECT ts_ms, key, model, provider, upstream_model, tags, currency, requests,"
             " prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, cost_micros,"
             " unpriced, cache_hits, saved_micros FROM usage_daily WHERE ts_ms >= ?3)%s"
             " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
             group_exprs[by][0], group_exprs[by][1],
             /* one row per tag: a request tagged twice counts under both */
             by == SL_BY_TAG ? ", json_each(CASE tags WHEN '' THEN '[\"\"]' ELSE tags END) AS tag"
                             : "");
    int rc = sqlite3_prepare_v2(s->db, sql, -1, st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(*st, 1, since_ms);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(*st, 2, hour);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int64(*st, 3, day);
    return rc == SQLITE_OK ? SL_STORE_OK : map_error(s->db, rc, "usage groups", err, errlen);
}

static int sqlite_usage_groups(struct sl_store *base, int64_t since_ms, enum sl_usage_by by,
                               struct sl_usage_group **out, size_t *n, char *err, size_t errlen)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    *n = 0;
    int result = prepare_groups(s, by, since_ms, &st, err, errlen);
    if (result) {
        sqlite3_finalize(st);
        return result;
    }
    return sl_sqlite_collect_rows(s->db, st, sizeof(**out), read_group, "usage groups",
                        (void **)out, n, err, errlen);
}

/* ---- sluice compare ---------------------------------------------------------------- */

/* Copies joined to their request's own row for the agreement; the own rows of mirrored
 * requests for the primary's side. ?2 NULL: every group. */
static const char compare_sql[] =
    "SELECT 1, m.provider, m.upstream_model, m.latency_us, m.ttft_us, m.completion_tokens,"
    " m.cost_micros, m.currency, m.status,"
    " CASE WHEN m.answer_hash = '' OR ifnull(p.answer_hash, '') = '' THEN -1"
    " WHEN m.answer_hash = p.answer_hash THEN 1 ELSE 0 END"
    " FROM usage m LEFT JOIN usage p ON p.request_id = m.mirror_of AND p.final = 1"
    " WHERE m.mirror_of != '' AND m.ts_ms >= ?1 AND (?2 IS NULL OR m.model = 'mirror:' || ?2)"
    " UNION ALL"
    " SELECT 0, provider, upstream_model, latency_us, ttft_us, completion_tokens, cost_micros,"
    " currency, status, -1 FROM usage"
    " WHERE final = 1 AND ts_ms >= ?1 AND (?2 IS NULL OR model = ?2) AND request_id IN"
    " (SELECT mirror_of FROM usage WHERE mirror_of != '' AND ts_ms >= ?1)";

static void read_compare(sqlite3_stmt *st, void *row)
{
    struct sl_compare_row *r = row;
    const unsigned char *provider = sqlite3_column_text(st, 1);
    const unsigned char *model = sqlite3_column_text(st, 2);
    const unsigned char *currency = sqlite3_column_text(st, 7);
    r->mirror = sqlite3_column_int(st, 0);
    snprintf(r->provider, sizeof(r->provider), "%s", provider ? (const char *)provider : "");
    snprintf(r->upstream_model, sizeof(r->upstream_model), "%s", model ? (const char *)model : "");
    r->latency_us = sqlite3_column_int64(st, 3);
    r->ttft_us = sqlite3_column_int64(st, 4);
    r->completion_tokens = sqlite3_column_int64(st, 5);
    r->cost_micros = sqlite3_column_int64(st, 6);
    snprintf(r->currency, sizeof(r->currency), "%s", currency ? (const char *)currency : "");
    r->status = sqlite3_column_int(st, 8);
    r->agree = sqlite3_column_int(st, 9);
}

static int sqlite_compare_rows(struct sl_store *base, int64_t since_ms, const char *group,
                               struct sl_compare_row **out, size_t *n, char *err, size_t errlen)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_stmt *st = NULL;
    *out = NULL;
    *n = 0;
    int rc = sqlite3_prepare_v2(s->db, compare_sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return map_error(s->db, rc, "compare", err, errlen);
    sqlite3_bind_int64(st, 1, since_ms);
    if (group)
        sqlite3_bind_text(st, 2, group, -1, SQLITE_STATIC);
    return sl_sqlite_collect_rows(s->db, st, sizeof(**out), read_compare, "compare", (void **)out, n, err,
                        errlen);
}

static void sqlite_close(struct sl_store *base)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    sqlite3_finalize(s->insert);
    sqlite3_finalize(s->rollup);
    sqlite3_finalize(s->hourly);
    sqlite3_close(s->db);
    free(s);
}

static const struct sl_store_ops sqlite_ops = {
    .scheme = "sqlite",
    .open = sqlite_open,
    .insert_usage = sqlite_insert_usage,
    .usage_totals = sqlite_usage_totals,
    .close = sqlite_close,
    .usage_groups = sqlite_usage_groups,
    .insert_key = sl_sqlite_insert_key,
    .list_keys = sl_sqlite_list_keys,
    .revoke_key = sl_sqlite_revoke_key,
    .compare_rows = sqlite_compare_rows,
    .prune_usage = sl_sqlite_prune_usage,
};

/* The store backends, by URL scheme. To add one: a row here, src/store/<name>.c
 * with its ops, the ledger tests run against it, and a line in docs/usage.md.
 * This table and sl_store_open move to store.c when the second backend lands. */
static const struct sl_store_ops *const backends[] = {
    &sqlite_ops,
};

const char *sl_store_parse_url(const char *url, size_t *scheme_len)
{
    const char *sep = strstr(url, "://");
    if (!sep || sep == url || sep[3] == '\0')
        return NULL;
    *scheme_len = (size_t)(sep - url);
    return sep + 3;
}

int sl_store_open(const char *url, int flags, struct sl_store **out, char *err, size_t errlen)
{
    size_t slen = 0;
    const char *rest = sl_store_parse_url(url, &slen);
    *out = NULL;
    for (size_t i = 0; rest && i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strlen(backends[i]->scheme) == slen && strncmp(url, backends[i]->scheme, slen) == 0)
            return backends[i]->open(rest, flags, out, err, errlen);
    snprintf(err, errlen, "unsupported store URL '%s' (expected sqlite://PATH)", url);
    return SL_STORE_ERROR;
}
