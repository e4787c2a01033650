/* The store's reads for a search: every chunk's FTS5 terms for the in-memory BM25 index,
 * the candidates' texts read back in one query, a knowledge base's token total. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "kb/bm25.h"
#include "kb/store.h"

static int fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "kb store: %s: %s", what, sqlite3_errmsg(db));
    return -1;
}

int sl_kbs_load_terms(sqlite3 *db, int64_t kb, struct sl_bm25_builder *b, char *err,
                      size_t errlen)
{
    /* The knowledge base's own term selects its rows through the FTS5 index (the kb
     * column is UNINDEXED, so filtering on it would read every row of the table). */
    sqlite3_stmt *st = NULL;
    char match[64];
    snprintf(match, sizeof(match), "\"" SL_KB_TERM "\"", (long long)kb);
    if (sqlite3_prepare_v2(db, "SELECT rowid, terms FROM kb_fts WHERE kb_fts MATCH ?", -1, &st, NULL) != SQLITE_OK)
        return fail(db, "load terms", err, errlen);
    sqlite3_bind_text(st, 1, match, -1, SQLITE_TRANSIENT);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *t = (const char *)sqlite3_column_text(st, 1);
        if (sl_bm25_add(b, sqlite3_column_int64(st, 0), t ? t : "", (size_t)sqlite3_column_bytes(st, 1))) {
            sqlite3_finalize(st);
            snprintf(err, errlen, "kb store: out of memory loading the BM25 index");
            return -1;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : fail(db, "load terms", err, errlen);
}

static const char *dup_col(sqlite3_stmt *st, int col, struct sl_arena *a)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return sl_arena_strndup(a, t ? (const char *)t : "", (size_t)sqlite3_column_bytes(st, col));
}

int sl_kbs_chunk_fill_many(sqlite3 *db, struct sl_kb_hit *h, size_t n, struct sl_arena *arena,
                           char *err, size_t errlen)
{
    if (!n)
        return 0;
    struct sl_buf sql = SL_BUF_INIT(256 + n * 2);
    int bad = sl_buf_puts(&sql, "SELECT c.id, c.doc, d.name, c.heading, c.text, c.cstart, c.cend,"
                                " c.ordinal, c.start, c.end FROM kb_chunk c JOIN kb_document d"
                                " ON d.id = c.doc WHERE c.id IN (?");
    for (size_t i = 1; i < n && !bad; i++)
        bad = sl_buf_puts(&sql, ",?");
    bad = bad || sl_buf_puts(&sql, ")");
    sqlite3_stmt *st = NULL;
    if (bad || sqlite3_prepare_v2(db, sql.ptr, (int)sql.len, &st, NULL) != SQLITE_OK) {
        sl_buf_release(&sql);
        return bad ? (snprintf(err, errlen, "kb store: too many candidates"), -1)
                   : fail(db, "read chunks", err, errlen);
    }
    sl_buf_release(&sql);
    for (size_t i = 0; i < n; i++) {
        sqlite3_bind_int64(st, (int)i + 1, h[i].chunk_id);
        h[i].doc = NULL;
    }
    int rc, result = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && !result) {
        int64_t id = sqlite3_column_int64(st, 0);
        for (size_t i = 0; i < n; i++) {
            if (h[i].chunk_id != id)
                continue;
            h[i].doc_id = sqlite3_column_int64(st, 1);
            h[i].doc = dup_col(st, 2, arena);
            h[i].heading = dup_col(st, 3, arena);
            h[i].text = dup_col(st, 4, arena);
            h[i].start = sqlite3_column_int64(st, 5);
            h[i].end = sqlite3_column_int64(st, 6);
            h[i].ordinal = sqlite3_column_int(st, 7);
            h[i].byte_start = sqlite3_column_int64(st, 8);
            h[i].byte_end = sqlite3_column_int64(st, 9);
            if (!h[i].doc || !h[i].heading || !h[i].text) {
                snprintf(err, errlen, "out of memory");
                result = -1;
            }
            break;
        }
    }
    sqlite3_finalize(st);
    if (!result && rc != SQLITE_DONE && rc != SQLITE_ROW)
        result = fail(db, "read chunks", err, errlen);
    return result;
}

int sl_kbs_chunk_tokens(sqlite3 *db, int64_t kb, int64_t *chunks, int64_t *tokens, char *err,
                        size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT count(*), coalesce(sum(tokens), 0) FROM kb_chunk WHERE kb = ?", -1,
                           &st, NULL) != SQLITE_OK)
        return fail(db, "chunk tokens", err, errlen);
    sqlite3_bind_int64(st, 1, kb);
    int rc = sqlite3_step(st);
    *chunks = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    *tokens = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : fail(db, "chunk tokens", err, errlen);
}
