/* Daily roll-ups of the usage table, kept by the same transaction that inserts the rows,
 * so reports read one row per day and group instead of every request; and retention,
 * which deletes old raw rows and keeps their roll-ups. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "meter/ledger.h"
#include "store/sqlite_internal.h"

#define DAY_MS  86400000LL
#define HOUR_MS 3600000LL

/* Adds one row to its period's roll-up in table. */
#define ROLLUP_SQL(table)                                                                    \
    "INSERT INTO " table " (ts_ms, key, model, provider, upstream_model, tags, currency,"    \
    " requests, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,"          \
    " cost_micros, unpriced, cache_hits, saved_micros)"                                     \
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"                               \
    " ON CONFLICT (ts_ms, key, model, provider, upstream_model, tags, currency) DO UPDATE"   \
    " SET requests = requests + excluded.requests,"                                          \
    " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"                               \
    " completion_tokens = completion_tokens + excluded.completion_tokens,"                   \
    " cached_tokens = cached_tokens + excluded.cached_tokens,"                               \
    " reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,"                      \
    " cost_micros = cost_micros + excluded.cost_micros,"                                     \
    " unpriced = unpriced + excluded.unpriced,"                                              \
    " cache_hits = cache_hits + excluded.cache_hits,"                                        \
    " saved_micros = saved_micros + excluded.saved_micros"

int sl_sqlite_rollup_prepare(struct sqlite_store *s, char *err, size_t errlen)
{
    int rc = sqlite3_prepare_v3(s->db, ROLLUP_SQL("usage_daily"), -1,
                                SQLITE_PREPARE_PERSISTENT, &s->rollup, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(s->db, ROLLUP_SQL("usage_hourly"), -1,
                                SQLITE_PREPARE_PERSISTENT, &s->hourly, NULL);
    return rc == SQLITE_OK ? SL_STORE_OK : sl_sqlite_error(s->db, rc, "prepare roll-up", err,
                                                           errlen);
}

static void text(sqlite3_stmt *st, int col, const char *s, size_t cap)
{
    sqlite3_bind_text(st, col, s, (int)strnlen(s, cap), SQLITE_STATIC);
}

/* One roll-up row being summed from a batch: the period, the row whose strings name the
 * group, and the sums (requests, prompt, completion, cached, reasoning, cost, unpriced,
 * cache hits, saved). */
#define NSUMS 9

struct agg {
    const struct sl_usage_row *r;
    int64_t period;
    int64_t v[NSUMS];
};

static int same_group(const struct sl_usage_row *a, const struct sl_usage_row *b)
{
    return strncmp(a->key, b->key, sizeof(a->key)) == 0 &&
           strncmp(a->model, b->model, sizeof(a->model)) == 0 &&
           strncmp(a->provider, b->provider, sizeof(a->provider)) == 0 &&
           strncmp(a->upstream_model, b->upstream_model, sizeof(a->upstream_model)) == 0 &&
           strncmp(a->tags, b->tags, sizeof(a->tags)) == 0 &&
           strncmp(a->currency, b->currency, sizeof(a->currency)) == 0;
}

static void add_row(struct agg *g, const struct sl_usage_row *r)
{
    const int64_t v[NSUMS] = {r->final != 0, r->prompt_tokens, r->completion_tokens,
                              r->cached_tokens, r->reasoning_tokens, r->cost_micros,
                              !r->price_known && (r->prompt_tokens > 0 || r->completion_tokens > 0),
                              r->cache[0] != 0 && r->final != 0, r->saved_micros};
    for (int i = 0; i < NSUMS; i++)
        if (__builtin_add_overflow(g->v[i], v[i], &g->v[i]))
            g->v[i] = v[i] > 0 ? INT64_MAX : INT64_MIN; /* pinned, visibly wrong, not wrapped */
}

static int write_agg(sqlite3 *db, sqlite3_stmt *st, const struct agg *g, char *err,
                     size_t errlen)
{
    const struct sl_usage_row *r = g->r;
    sqlite3_bind_int64(st, 1, g->period);
    text(st, 2, r->key, sizeof(r->key));
    text(st, 3, r->model, sizeof(r->model));
    text(st, 4, r->provider, sizeof(r->provider));
    text(st, 5, r->upstream_model, sizeof(r->upstream_model));
    text(st, 6, r->tags, sizeof(r->tags));
    text(st, 7, r->currency, sizeof(r->currency));
    for (int i = 0; i < NSUMS; i++)
        sqlite3_bind_int64(st, 8 + i, g->v[i]);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? SL_STORE_OK : sl_sqlite_error(db, rc, "roll-up", err, errlen);
}

/* Sums the batch per group and period first: a chunk of a thousand requests from a few
 * keys and models becomes a few upserts, not a thousand. */
static int rollup_batch(sqlite3 *db, sqlite3_stmt *st, int64_t period_ms, struct agg *a,
                        const struct sl_usage_row *rows, size_t n, char *err, size_t errlen)
{
    size_t m = 0, last = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t p = rows[i].ts_ms >= 0 ? rows[i].ts_ms / period_ms * period_ms : 0;
        size_t j = last;
        if (!(m && a[j].period == p && same_group(a[j].r, &rows[i])))
            for (j = 0; j < m && !(a[j].period == p && same_group(a[j].r, &rows[i])); j++)
                ;
        if (j == m)
            a[m++] = (struct agg){.r = &rows[i], .period = p};
        add_row(&a[j], &rows[i]);
        last = j;
    }
    int result = SL_STORE_OK;
    for (size_t j = 0; j < m && result == SL_STORE_OK; j++)
        result = write_agg(db, st, &a[j], err, errlen);
    return result;
}

int sl_sqlite_rollup_rows(struct sqlite_store *s, const struct sl_usage_row *rows, size_t n,
                          char *err, size_t errlen)
{
    struct agg *a = malloc((n ? n : 1) * sizeof(*a));
    if (!a) {
        snprintf(err, errlen, "sqlite: out of memory");
        return SL_STORE_ERROR;
    }
    int result = rollup_batch(s->db, s->rollup, DAY_MS, a, rows, n, err, errlen);
    if (result == SL_STORE_OK)
        result = rollup_batch(s->db, s->hourly, HOUR_MS, a, rows, n, err, errlen);
    free(a);
    return result;
}

static int query_int64(sqlite3 *db, const char *sql, int64_t *out, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc == SQLITE_OK ? SL_STORE_OK : sl_sqlite_error(db, rc, sql, err, errlen);
}

int sl_sqlite_rollup_boundary(struct sqlite_store *s, int64_t since_ms, int64_t *hour,
                              int64_t *day, char *err, size_t errlen)
{
    int64_t pruned = 0;
    int result = query_int64(s->db, "SELECT coalesce(max(before_ms), 0) FROM usage_retention",
                             &pruned, err, errlen);
    if (since_ms <= 0) {
        *hour = *day = 0;
    } else if (since_ms < pruned) { /* its raw rows are gone: the whole day from the roll-up */
        *hour = *day = since_ms / DAY_MS * DAY_MS;
    } else {
        *hour = (since_ms + HOUR_MS - 1) / HOUR_MS * HOUR_MS;
        *day = (since_ms + DAY_MS - 1) / DAY_MS * DAY_MS;
    }
    return result;
}

/* Whole days only, so a day is either all raw rows or all roll-up at its start. */
int sl_sqlite_prune_usage(struct sl_store *base, int64_t before_ms, int64_t *deleted, char *err,
                          size_t errlen)
{
    struct sqlite_store *s = (struct sqlite_store *)base;
    char sql[160];
    int64_t day = before_ms > 0 ? before_ms / DAY_MS * DAY_MS : 0;
    *deleted = 0;
    if (day == 0)
        return SL_STORE_OK;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    /* hourly roll-ups go with the raw rows: reports read deleted days from the daily ones */
    snprintf(sql, sizeof(sql), "DELETE FROM usage_hourly WHERE ts_ms < %lld", (long long)day);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    snprintf(sql, sizeof(sql), "DELETE FROM usage WHERE ts_ms < %lld", (long long)day);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        *deleted = sqlite3_changes64(s->db);
    snprintf(sql, sizeof(sql), /* the mark only moves forward: older rows are gone already */
             "INSERT INTO usage_retention SELECT %lld WHERE %lld >"
             " (SELECT coalesce(max(before_ms), 0) FROM usage_retention)",
             (long long)day, (long long)day);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        int result = sl_sqlite_error(s->db, rc, "prune usage", err, errlen);
        if (!sqlite3_get_autocommit(s->db))
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return result;
    }
    return SL_STORE_OK;
}
