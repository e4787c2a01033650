/* The knowledge base's tables in the SQLite store (schema: src/store/sqlite.c, the kb
 * migration). Statements are prepared per call: ingest and search cost is dominated by
 * the model calls, and the vectors are scanned in memory, not here. */
#include "kb/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "core/buf.h"
#include "core/clock.h"
#include "kb/lexical.h"
#include "kb/vec.h"
#include "store/store.h"

#define KB_TERM SL_KB_TERM

static int fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "kb store: %s: %s", what, sqlite3_errmsg(db));
    return -1;
}

int sl_kbs_open(const char *url, sqlite3 **db, char *err, size_t errlen)
{
    struct sl_store *s = NULL;
    size_t slen;
    *db = NULL;
    if (sl_store_open(url, 0, &s, err, errlen)) /* creates the file and runs migrations */
        return -1;
    sl_store_close(s);
    const char *path = sl_store_parse_url(url, &slen);
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "kb store: cannot open %s: %s", path,
                 *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return -1;
    }
    sqlite3_busy_timeout(*db, 10000);
    sqlite3_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL, NULL, NULL);
    return 0;
}

void sl_kbs_close(sqlite3 *db)
{
    sqlite3_close(db);
}

int sl_kbs_begin(sqlite3 *db)
{
    return sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

int sl_kbs_commit(sqlite3 *db)
{
    return sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

void sl_kbs_rollback(sqlite3 *db)
{
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
}

/* Prepares sql; NULL with err set on failure. */
static sqlite3_stmt *prep(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail(db, sql, err, errlen);
    return st;
}

/* Steps a statement that returns no rows, and finalises it. */
static int run(sqlite3 *db, sqlite3_stmt *st, const char *what, char *err, size_t errlen)
{
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR;
    int result = rc == SQLITE_DONE ? 0 : st ? fail(db, what, err, errlen) : -1;
    sqlite3_finalize(st);
    return result;
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static const char *rerank_name(enum sl_kb_rerank r)
{
    return r == SL_KB_RERANK_MODEL ? "model" : r == SL_KB_RERANK_EMBED ? "embed" : "none";
}

static enum sl_kb_rerank rerank_of(const char *s)
{
    return strcmp(s, "model") == 0 ? SL_KB_RERANK_MODEL
           : strcmp(s, "embed") == 0 ? SL_KB_RERANK_EMBED
                                     : SL_KB_RERANK_NONE;
}

/* ---- knowledge bases ---- */

#define KB_COLUMNS                                                                         \
    "id, name, embed_model, dim, rerank, rerank_model, answer_model, temperature, recall_k," \
    " top_k, recall_threshold, rerank_threshold, context_tokens, profile, rev, created_ms"

static void read_kb(sqlite3_stmt *st, struct sl_kb *kb)
{
    char rr[16];
    memset(kb, 0, sizeof(*kb));
    kb->id = sqlite3_column_int64(st, 0);
    copy_text(kb->name, sizeof(kb->name), st, 1);
    copy_text(kb->embed_model, sizeof(kb->embed_model), st, 2);
    kb->dim = sqlite3_column_int(st, 3);
    copy_text(rr, sizeof(rr), st, 4);
    kb->rerank = rerank_of(rr);
    copy_text(kb->rerank_model, sizeof(kb->rerank_model), st, 5);
    copy_text(kb->answer_model, sizeof(kb->answer_model), st, 6);
    kb->temperature = sqlite3_column_double(st, 7);
    kb->recall_k = sqlite3_column_int(st, 8);
    kb->top_k = sqlite3_column_int(st, 9);
    kb->recall_threshold = sqlite3_column_double(st, 10);
    kb->rerank_threshold = sqlite3_column_double(st, 11);
    kb->context_tokens = sqlite3_column_int(st, 12);
    copy_text(kb->profile, sizeof(kb->profile), st, 13);
    kb->rev = sqlite3_column_int64(st, 14);
    kb->created_ms = sqlite3_column_int64(st, 15);
}

int sl_kbs_create(sqlite3 *db, struct sl_kb *kb, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db,
                            "INSERT INTO kb (name, embed_model, dim, rerank, rerank_model,"
                            " answer_model, temperature, recall_k, top_k, recall_threshold,"
                            " rerank_threshold, context_tokens, profile, rev, created_ms)"
                            " VALUES (?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                            err, errlen);
    if (!st)
        return -1;
    kb->created_ms = sl_wall_ms();
    sqlite3_bind_text(st, 1, kb->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, kb->embed_model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, rerank_name(kb->rerank), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, kb->rerank_model, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, kb->answer_model, -1, SQLITE_STATIC);
    sqlite3_bind_double(st, 6, kb->temperature);
    sqlite3_bind_int(st, 7, kb->recall_k);
    sqlite3_bind_int(st, 8, kb->top_k);
    sqlite3_bind_double(st, 9, kb->recall_threshold);
    sqlite3_bind_double(st, 10, kb->rerank_threshold);
    sqlite3_bind_int(st, 11, kb->context_tokens);
    sqlite3_bind_text(st, 12, kb->profile, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 13, kb->created_ms);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT) {
        snprintf(err, errlen, "a knowledge base named '%s' exists already", kb->name);
        return -1;
    }
    if (rc != SQLITE_DONE)
        return fail(db, "create kb", err, errlen);
    kb->id = sqlite3_last_insert_rowid(db);
    return 0;
}

int sl_kbs_get(sqlite3 *db, const char *name, struct sl_kb *kb, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db, "SELECT " KB_COLUMNS " FROM kb WHERE name = ?", err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), result = 0;
    if (rc == SQLITE_ROW)
        read_kb(st, kb);
    else
        result = rc == SQLITE_DONE ? SL_KB_NOT_FOUND : fail(db, "get kb", err, errlen);
    sqlite3_finalize(st);
    return result;
}

int sl_kbs_list(sqlite3 *db, struct sl_kb **out, size_t *n, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db,
                            "SELECT " KB_COLUMNS ", (SELECT count(*) FROM kb_document d WHERE d.kb = kb.id),"
                            " (SELECT count(*) FROM kb_chunk c WHERE c.kb = kb.id) FROM kb ORDER BY name",
                            err, errlen);
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            struct sl_kb *grown = realloc(*out, cap * sizeof(**out));
            if (!grown)
                break;
            *out = grown;
        }
        read_kb(st, &(*out)[*n]);
        (*out)[*n].documents = sqlite3_column_int64(st, 16);
        (*out)[(*n)++].chunks = sqlite3_column_int64(st, 17);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return fail(db, "list kb", err, errlen);
    }
    return 0;
}

static int exec_id(sqlite3 *db, const char *sql, int64_t id, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db, sql, err, errlen);
    if (st)
        sqlite3_bind_int64(st, 1, id);
    return run(db, st, sql, err, errlen);
}

int sl_kbs_delete(sqlite3 *db, const char *name, char *err, size_t errlen)
{
    struct sl_kb kb;
    int rc = sl_kbs_get(db, name, &kb, err, errlen);
    if (rc)
        return rc;
    static const char *const sql[] = {
        "DELETE FROM kb_fts WHERE kb = ?",    "DELETE FROM kb_vector WHERE kb = ?",
        "DELETE FROM kb_chunk WHERE kb = ?",  "DELETE FROM kb_document WHERE kb = ?",
        "DELETE FROM kb WHERE id = ?",
    };
    if (sl_kbs_begin(db))
        return fail(db, "begin", err, errlen);
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
        if (exec_id(db, sql[i], kb.id, err, errlen)) {
            sl_kbs_rollback(db);
            return -1;
        }
    return sl_kbs_commit(db) ? fail(db, "commit", err, errlen) : 0;
}

int sl_kbs_set_dim(sqlite3 *db, int64_t kb, int dim, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db, "UPDATE kb SET dim = ? WHERE id = ?", err, errlen);
    if (st) {
        sqlite3_bind_int(st, 1, dim);
        sqlite3_bind_int64(st, 2, kb);
    }
    return run(db, st, "set dim", err, errlen);
}

int sl_kbs_bump(sqlite3 *db, int64_t kb, char *err, size_t errlen)
{
    return exec_id(db, "UPDATE kb SET rev = rev + 1 WHERE id = ?", kb, err, errlen);
}

/* ---- documents ---- */

static void read_doc(sqlite3_stmt *st, struct sl_kb_doc *d)
{
    d->id = sqlite3_column_int64(st, 0);
    copy_text(d->name, sizeof(d->name), st, 1);
    copy_text(d->type, sizeof(d->type), st, 2);
    copy_text(d->profile, sizeof(d->profile), st, 3);
    copy_text(d->hash, sizeof(d->hash), st, 4);
    d->bytes = sqlite3_column_int64(st, 5);
    d->chunks = sqlite3_column_int64(st, 6);
    d->added_ms = sqlite3_column_int64(st, 7);
}

#define DOC_COLUMNS "id, name, type, profile, hash, bytes, chunks, added_ms"

int sl_kbs_doc_get(sqlite3 *db, int64_t kb, const char *name, struct sl_kb_doc *d, char *err,
                   size_t errlen)
{
    sqlite3_stmt *st = prep(db, "SELECT " DOC_COLUMNS " FROM kb_document WHERE kb = ? AND name = ?",
                            err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, kb);
    sqlite3_bind_text(st, 2, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), result = 0;
    if (rc == SQLITE_ROW)
        read_doc(st, d);
    else
        result = rc == SQLITE_DONE ? SL_KB_NOT_FOUND : fail(db, "get document", err, errlen);
    sqlite3_finalize(st);
    return result;
}

int sl_kbs_doc_list(sqlite3 *db, int64_t kb, struct sl_kb_doc **out, size_t *n, char *err,
                    size_t errlen)
{
    sqlite3_stmt *st = prep(db, "SELECT " DOC_COLUMNS " FROM kb_document WHERE kb = ? ORDER BY name",
                            err, errlen);
    size_t cap = 0;
    int rc = SQLITE_ERROR;
    *out = NULL;
    *n = 0;
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, kb);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            struct sl_kb_doc *grown = realloc(*out, cap * sizeof(**out));
            if (!grown)
                break;
            *out = grown;
        }
        read_doc(st, &(*out)[(*n)++]);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        free(*out);
        *out = NULL;
        *n = 0;
        return fail(db, "list documents", err, errlen);
    }
    return 0;
}

int sl_kbs_doc_delete(sqlite3 *db, int64_t kb, int64_t doc, char *err, size_t errlen)
{
    static const char *const sql[] = {
        "DELETE FROM kb_fts WHERE rowid IN (SELECT id FROM kb_chunk WHERE doc = ?)",
        "DELETE FROM kb_vector WHERE chunk IN (SELECT id FROM kb_chunk WHERE doc = ?)",
        "DELETE FROM kb_chunk WHERE doc = ?",
        "DELETE FROM kb_document WHERE id = ?",
    };
    for (size_t i = 0; i < sizeof(sql) / sizeof(sql[0]); i++)
        if (exec_id(db, sql[i], doc, err, errlen))
            return -1;
    return sl_kbs_bump(db, kb, err, errlen);
}

int sl_kbs_doc_insert(sqlite3 *db, int64_t kb, struct sl_kb_doc *d, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db,
                            "INSERT INTO kb_document (kb, name, type, profile, hash, bytes, chunks,"
                            " added_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            err, errlen);
    if (!st)
        return -1;
    d->added_ms = sl_wall_ms();
    sqlite3_bind_int64(st, 1, kb);
    sqlite3_bind_text(st, 2, d->name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, d->type, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, d->profile, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, d->hash, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, d->bytes);
    sqlite3_bind_int64(st, 7, d->chunks);
    sqlite3_bind_int64(st, 8, d->added_ms);
    if (run(db, st, "insert document", err, errlen))
        return -1;
    d->id = sqlite3_last_insert_rowid(db);
    return sl_kbs_bump(db, kb, err, errlen);
}

/* ---- chunks, terms, vectors ---- */

int sl_kbs_chunk_insert(sqlite3 *db, int64_t kb, int64_t doc, const struct sl_kb_chunk_row *c,
                        int64_t *id, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db,
                            "INSERT INTO kb_chunk (kb, doc, ordinal, start, end, cstart, cend,"
                            " heading, text, tokens, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, kb);
    sqlite3_bind_int64(st, 2, doc);
    sqlite3_bind_int(st, 3, c->ordinal);
    sqlite3_bind_int64(st, 4, c->start);
    sqlite3_bind_int64(st, 5, c->end);
    sqlite3_bind_int64(st, 6, c->cstart);
    sqlite3_bind_int64(st, 7, c->cend);
    sqlite3_bind_text(st, 8, c->heading ? c->heading : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 9, c->text, (int)c->text_len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 10, c->tokens);
    sqlite3_bind_text(st, 11, c->hash, -1, SQLITE_STATIC);
    if (run(db, st, "insert chunk", err, errlen))
        return -1;
    *id = sqlite3_last_insert_rowid(db);
    /* The heading is searchable too: a question often names the section. */
    struct sl_buf terms = SL_BUF_INIT((c->text_len + 1024) * 4);
    /* The knowledge base is a term too: filtering on it inside the FTS5 query costs a
     * doclist merge, where the UNINDEXED column would cost a row read per match. */
    int bad = sl_buf_printf(&terms, KB_TERM " ", (long long)kb) ||
              (c->heading && sl_kb_terms(c->heading, strlen(c->heading), &terms)) ||
              sl_buf_puts(&terms, " ") || sl_kb_terms(c->text, c->text_len, &terms);
    st = bad ? NULL : prep(db, "INSERT INTO kb_fts (rowid, terms, kb) VALUES (?, ?, ?)", err, errlen);
    if (bad)
        snprintf(err, errlen, "kb store: the chunk's terms are too large");
    if (st) {
        sqlite3_bind_int64(st, 1, *id);
        sqlite3_bind_text(st, 2, terms.ptr ? terms.ptr : "", (int)terms.len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, kb);
    }
    int rc = run(db, st, "insert terms", err, errlen);
    sl_buf_release(&terms);
    return rc;
}

static int put_blob(sqlite3 *db, const char *sql, int64_t a, int64_t b, const char *model,
                    const char *hash, const float *v, int dim, char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db, sql, err, errlen);
    if (!st)
        return -1;
    int i = 1;
    if (hash) {
        sqlite3_bind_text(st, i++, model, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, i++, hash, -1, SQLITE_STATIC);
    } else {
        sqlite3_bind_int64(st, i++, a);
        sqlite3_bind_int64(st, i++, b);
        sqlite3_bind_text(st, i++, model, -1, SQLITE_STATIC);
    }
    sqlite3_bind_int(st, i++, dim);
    sqlite3_bind_blob(st, i, v, dim * (int)sizeof(float), SQLITE_STATIC);
    return run(db, st, "store vector", err, errlen);
}

int sl_kbs_vector_put(sqlite3 *db, int64_t kb, int64_t chunk, const char *model, const float *v,
                      int dim, char *err, size_t errlen)
{
    return put_blob(db,
                    "INSERT OR REPLACE INTO kb_vector (chunk, kb, model, dim, vec) VALUES (?, ?, ?, ?, ?)",
                    chunk, kb, model, NULL, v, dim, err, errlen);
}

int sl_kbs_cache_put(sqlite3 *db, const char *model, const char *hash, const float *v, int dim,
                     char *err, size_t errlen)
{
    return put_blob(db,
                    "INSERT OR REPLACE INTO kb_embed_cache (model, hash, dim, vec) VALUES (?, ?, ?, ?)",
                    0, 0, model, hash, v, dim, err, errlen);
}

/* Reads one vector of dim floats from a query's first column. */
static int get_blob(sqlite3 *db, sqlite3_stmt *st, float *v, int dim, char *err, size_t errlen)
{
    int rc = st ? sqlite3_step(st) : SQLITE_ERROR, result = SL_KB_NOT_FOUND;
    if (rc == SQLITE_ROW && sqlite3_column_bytes(st, 0) == dim * (int)sizeof(float)) {
        memcpy(v, sqlite3_column_blob(st, 0), (size_t)dim * sizeof(float));
        result = 0;
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        result = st ? fail(db, "read vector", err, errlen) : -1;
    }
    sqlite3_finalize(st);
    return result;
}

int sl_kbs_cache_get(sqlite3 *db, const char *model, const char *hash, float *v, int dim,
                     char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db, "SELECT vec FROM kb_embed_cache WHERE model = ? AND hash = ?", err,
                            errlen);
    if (st) {
        sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
    }
    return get_blob(db, st, v, dim, err, errlen);
}

int sl_kbs_vector_get(sqlite3 *db, int64_t chunk, const char *model, float *v, int dim,
                      char *err, size_t errlen)
{
    sqlite3_stmt *st = prep(db, "SELECT vec FROM kb_vector WHERE chunk = ? AND model = ?", err,
                            errlen);
    if (st) {
        sqlite3_bind_int64(st, 1, chunk);
        sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
    }
    return get_blob(db, st, v, dim, err, errlen);
}

int sl_kbs_load_index(sqlite3 *db, int64_t kb, const char *model, int dim,
                      struct sl_vec_index *ix, char *err, size_t errlen)
{
    memset(ix, 0, sizeof(*ix));
    ix->dim = dim;
    sqlite3_stmt *st = prep(db, "SELECT chunk, vec FROM kb_vector WHERE kb = ? AND model = ? AND dim = ?"
                                " ORDER BY chunk", err, errlen);
    size_t cap = 0;
    int rc = SQLITE_ERROR;
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, kb);
    sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, dim);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (sqlite3_column_bytes(st, 1) != dim * (int)sizeof(float))
            continue;
        if (ix->n == cap) {
            cap = cap ? cap * 2 : 1024;
            float *f = realloc(ix->f32, cap * (size_t)dim * sizeof(float));
            int64_t *ids = f ? realloc(ix->ids, cap * sizeof(int64_t)) : NULL;
            if (f)
                ix->f32 = f;
            if (!ids)
                break;
            ix->ids = ids;
        }
        ix->ids[ix->n] = sqlite3_column_int64(st, 0);
        memcpy(ix->f32 + ix->n * (size_t)dim, sqlite3_column_blob(st, 1), (size_t)dim * sizeof(float));
        sl_vec_normalise(ix->f32 + ix->n * (size_t)dim, dim);
        ix->n++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        sl_vec_index_release(ix);
        return fail(db, "load vectors", err, errlen);
    }
    return 0;
}

int sl_kbs_fts(sqlite3 *db, int64_t kb, const char *match, int limit, int64_t *ids,
               double *scores, char *err, size_t errlen)
{
    /* ORDER BY rank (bm25 by default) lets FTS5 keep only the best `limit` rows */
    sqlite3_stmt *st = prep(db, "SELECT rowid, rank FROM kb_fts WHERE kb_fts MATCH ?"
                                " ORDER BY rank LIMIT ?", err, errlen);
    char *q = sqlite3_mprintf("\"" KB_TERM "\" AND (%s)", (long long)kb, match);
    int n = 0, rc;
    if (!st || !q) {
        sqlite3_finalize(st);
        sqlite3_free(q);
        return -1;
    }
    sqlite3_bind_text(st, 1, q, -1, sqlite3_free);
    sqlite3_bind_int(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW && n < limit) {
        ids[n] = sqlite3_column_int64(st, 0);
        scores[n++] = sqlite3_column_double(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? n : fail(db, "fts search", err, errlen);
}

static const char *dup_col(sqlite3_stmt *st, int col, struct sl_arena *a)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return sl_arena_strndup(a, t ? (const char *)t : "", (size_t)sqlite3_column_bytes(st, col));
}

int sl_kbs_chunk_fill(sqlite3 *db, struct sl_kb_hit *h, struct sl_arena *arena, char *err,
                      size_t errlen)
{
    sqlite3_stmt *st = prep(db, "SELECT c.doc, d.name, c.heading, c.text, c.cstart, c.cend, c.ordinal, c.start, c.end"
                                " FROM kb_chunk c JOIN kb_document d ON d.id = c.doc WHERE c.id = ?",
                            err, errlen);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, h->chunk_id);
    int rc = sqlite3_step(st), result = 0;
    if (rc == SQLITE_ROW) {
        h->doc_id = sqlite3_column_int64(st, 0);
        h->doc = dup_col(st, 1, arena);
        h->heading = dup_col(st, 2, arena);
        h->text = dup_col(st, 3, arena);
        h->start = sqlite3_column_int64(st, 4);
        h->end = sqlite3_column_int64(st, 5);
        h->ordinal = sqlite3_column_int(st, 6);
        h->byte_start = sqlite3_column_int64(st, 7);
        h->byte_end = sqlite3_column_int64(st, 8);
        if (!h->doc || !h->heading || !h->text)
            result = -1;
    } else {
        result = rc == SQLITE_DONE ? SL_KB_NOT_FOUND : fail(db, "read chunk", err, errlen);
    }
    sqlite3_finalize(st);
    return result;
}
