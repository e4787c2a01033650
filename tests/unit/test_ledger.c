/* Unit tests for src/meter/ledger.c and src/store/sqlite.c: concurrency, exact
 * round trips, group commit, flush at close, reopening, totals. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "meter/ledger.h"
#include "store/store.h"

#define THREADS 4
#define ROWS_PER_THREAD 2500

struct fixture {
    char dir[64];
    char path[128]; /* the database file */
    char url[160];  /* sqlite://path */
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/sl_ledger_XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/usage.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite://%s", f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    static const char *suffixes[] = {"", "-wal", "-shm"};
    char p[160];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Reads one integer straight from the file, bypassing the code under test. */
static int64_t query_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static struct sl_ledger *open_ledger(const struct fixture *f)
{
    char err[256] = "";
    struct sl_ledger *l = NULL;
    int rc = sl_ledger_open(f->url, &l, err, sizeof(err));
    if (rc)
        fprintf(stderr, "sl_ledger_open: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(l);
    return l;
}

static void make_row(struct sl_usage_row *r, int thread, int i)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "req-%d-%d", thread, i);
    r->ts_ms = 1700000000000 + i;
    snprintf(r->model, sizeof(r->model), "model-%d", i % 3);
    r->prompt_tokens = i;
    r->completion_tokens = 2 * (int64_t)i;
    r->status = 200;
    r->ttft_us = -1;
    snprintf(r->request_id, sizeof(r->request_id), "%s", r->id);
    r->attempt = 1;
    r->final = 1;
}

struct worker {
    struct sl_ledger *l;
    int thread;
};

static void *record_rows(void *arg)
{
    struct worker *w = arg;
    struct sl_usage_row r;
    for (int i = 0; i < ROWS_PER_THREAD; i++) {
        make_row(&r, w->thread, i);
        sl_ledger_record(w->l, &r);
    }
    return NULL;
}

static void test_concurrent_rows_committed_once(void **state)
{
    struct fixture *f = *state;
    struct sl_ledger *l = open_ledger(f);
    pthread_t tids[THREADS];
    struct worker w[THREADS];
    for (int t = 0; t < THREADS; t++) {
        w[t] = (struct worker){l, t};
        assert_int_equal(pthread_create(&tids[t], NULL, record_rows, &w[t]), 0);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(tids[t], NULL);
    sl_ledger_flush(l);
    const int64_t total = THREADS * ROWS_PER_THREAD;
    assert_int_equal(sl_ledger_committed(l), total);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM usage"), total);
    assert_int_equal(query_int(f->path, "SELECT count(DISTINCT id) FROM usage"), total);
    assert_int_equal(query_int(f->path, "SELECT sum(prompt_tokens) FROM usage"),
                     THREADS * (int64_t)ROWS_PER_THREAD * (ROWS_PER_THREAD - 1) / 2);
    assert_int_equal(sl_ledger_dropped(l), 0);
    sl_ledger_close(l);
}

static void test_group_commit_batches(void **state)
{
    struct fixture *f = *state;
    struct sl_ledger *l = open_ledger(f);
    struct sl_usage_row r;
    const uint64_t rows = 5000;
    for (int i = 0; i < (int)rows; i++) {
        make_row(&r, 0, i);
        sl_ledger_record(l, &r);
    }
    sl_ledger_flush(l);
    uint64_t tx = sl_ledger_transactions(l);
    fprintf(stderr, "group commit: %llu rows in %llu transactions\n", (unsigned long long)rows,
            (unsigned long long)tx);
    assert_int_equal(sl_ledger_committed(l), rows);
    assert_true(tx >= 5);         /* at most 1,000 rows a transaction */
    assert_true(tx * 10 <= rows); /* and far fewer transactions than rows */
    sl_ledger_close(l);
}

static void fill_odd_row(struct sl_usage_row *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->id, sizeof(r->id), "chatcmpl-'quoted' \"id\"");
    r->ts_ms = INT64_C(1712345678901);
    snprintf(r->key, sizeof(r->key), "team-\xc3\xa9quipe");              /* équipe */
    snprintf(r->model, sizeof(r->model), "\xe6\xa8\xa1\xe5\x9e\x8b-v3"); /* 模型 */
    snprintf(r->provider, sizeof(r->provider), "deepseek");
    memset(r->upstream_model, 'x', sizeof(r->upstream_model)); /* no NUL at all */
    r->prompt_tokens = INT64_MAX;
    r->completion_tokens = INT64_C(1) << 53 | 1; /* not representable as a double */
    r->cached_tokens = 0;
    r->reasoning_tokens = INT64_C(4294967297);
    r->estimated = 1;
    r->status = 429;
    r->stream = 1;
    r->client_gone = 1;
    r->latency_us = INT64_C(123456789012);
    r->ttft_us = -1;
    snprintf(r->error, sizeof(r->error),
             "upstream said \"slow down\"; it's\nbusy \xf0\x9f\x98\x80");
}

static void assert_text(sqlite3_stmt *st, int col, const char *want, size_t cap)
{
    size_t n = strnlen(want, cap);
    assert_int_equal(sqlite3_column_bytes(st, col), n);
    assert_memory_equal(sqlite3_column_text(st, col), want, n);
}

static void assert_row(sqlite3_stmt *st, const struct sl_usage_row *r)
{
    assert_text(st, 0, r->id, sizeof(r->id));
    assert_int_equal(sqlite3_column_int64(st, 1), r->ts_ms);
    assert_text(st, 2, r->key, sizeof(r->key));
    assert_text(st, 3, r->model, sizeof(r->model));
    assert_text(st, 4, r->provider, sizeof(r->provider));
    assert_text(st, 5, r->upstream_model, sizeof(r->upstream_model));
    assert_true(sqlite3_column_int64(st, 6) == r->prompt_tokens);
    assert_true(sqlite3_column_int64(st, 7) == r->completion_tokens);
    assert_int_equal(sqlite3_column_int64(st, 8), r->cached_tokens);
    assert_int_equal(sqlite3_column_int64(st, 9), r->reasoning_tokens);
    assert_int_equal(sqlite3_column_int(st, 10), r->estimated);
    assert_int_equal(sqlite3_column_int(st, 11), r->status);
    assert_int_equal(sqlite3_column_int(st, 12), r->stream);
    assert_int_equal(sqlite3_column_int(st, 13), r->client_gone);
    assert_int_equal(sqlite3_column_int64(st, 14), r->latency_us);
    assert_true(sqlite3_column_int64(st, 15) == r->ttft_us);
    assert_text(st, 16, r->error, sizeof(r->error));
}

static void test_fields_round_trip(void **state)
{
    struct fixture *f = *state;
    struct sl_usage_row r;
    fill_odd_row(&r);
    struct sl_ledger *l = open_ledger(f);
    sl_ledger_record(l, &r);
    sl_ledger_close(l);

    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT id, ts_ms, key, model, provider, upstream_model,"
                                        " prompt_tokens, completion_tokens, cached_tokens,"
                                        " reasoning_tokens, estimated, status, stream, client_gone,"
                                        " latency_us, ttft_us, error FROM usage",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_row(st, &r);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_close_flushes(void **state)
{
    struct fixture *f = *state;
    struct sl_ledger *l = open_ledger(f);
    struct sl_usage_row r;
    for (int i = 0; i < 3333; i++) {
        make_row(&r, 0, i);
        sl_ledger_record(l, &r);
    }
    sl_ledger_close(l); /* no flush first */
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM usage"), 3333);
    sl_ledger_close(NULL);
}

/* Another process holds the write lock past busy_timeout (5 s): the first write
 * fails with SQLITE_BUSY, so every row landing afterwards proves the retry. */
static void test_write_retried_while_locked(void **state)
{
    struct fixture *f = *state;
    struct sl_ledger *l = open_ledger(f);
    struct sl_usage_row r;
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < 100; i++) {
        make_row(&r, 0, i);
        sl_ledger_record(l, &r); /* must not block on the locked store */
    }
    usleep(5500 * 1000);
    assert_int_equal(sl_ledger_committed(l), 0);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    sl_ledger_flush(l);
    assert_int_equal(sl_ledger_committed(l), 100);
    assert_int_equal(sl_ledger_dropped(l), 0);
    sl_ledger_close(l);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM usage"), 100);
}

static void record_and_close(const struct fixture *f, int n)
{
    struct sl_ledger *l = open_ledger(f);
    struct sl_usage_row r;
    for (int i = 0; i < n; i++) {
        make_row(&r, 0, i);
        sl_ledger_record(l, &r);
    }
    sl_ledger_close(l);
}

static void test_reopen_keeps_rows_and_schema(void **state)
{
    struct fixture *f = *state;
    record_and_close(f, 10);
    int64_t applied = query_int(f->path, "SELECT applied_ms FROM schema_version");
    assert_true(applied > 0);
    record_and_close(f, 5);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM usage"), 15);
    /* One row per migration, each applied once; at least up to the knowledge base (10). */
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM schema_version"),
                     query_int(f->path, "SELECT max(version) FROM schema_version"));
    assert_true(query_int(f->path, "SELECT max(version) FROM schema_version") >= 10);
    assert_int_equal(query_int(f->path, "SELECT applied_ms FROM schema_version"), applied);
    /* WAL is recorded in the file header: bytes 18 and 19 are 2 (1 = rollback journal). */
    unsigned char header[20] = {0};
    FILE *fp = fopen(f->path, "rb");
    assert_non_null(fp);
    assert_int_equal(fread(header, 1, sizeof(header), fp), sizeof(header));
    fclose(fp);
    assert_int_equal(header[18], 2);
}

static void add_row(struct sl_ledger *l, const char *model, int64_t ts, int64_t prompt,
                    int estimated, int status)
{
    struct sl_usage_row r;
    make_row(&r, 9, (int)prompt);
    snprintf(r.model, sizeof(r.model), "%s", model);
    r.ts_ms = ts;
    r.prompt_tokens = prompt;
    r.completion_tokens = prompt * 10;
    r.cached_tokens = prompt / 2;
    r.reasoning_tokens = 1;
    r.estimated = estimated;
    r.status = status;
    sl_ledger_record(l, &r);
}

static void assert_total(const struct sl_usage_total *t, const char *model, int64_t requests,
                         int64_t prompt, int64_t estimated, int64_t errors)
{
    assert_string_equal(t->model, model);
    assert_int_equal(t->requests, requests);
    assert_int_equal(t->prompt_tokens, prompt);
    assert_int_equal(t->completion_tokens, prompt * 10);
    assert_int_equal(t->reasoning_tokens, requests);
    assert_int_equal(t->estimated, estimated);
    assert_int_equal(t->errors, errors);
}

/* Attempt rows (final = 0) add their tokens but are not requests or errors. */
static void test_attempt_rows_are_not_requests(void **state)
{
    struct fixture *f = *state;
    struct sl_ledger *l = open_ledger(f);
    struct sl_usage_row r;
    make_row(&r, 1, 3);
    r.status = 502;
    r.final = 0;
    r.attempt = 1;
    snprintf(r.why, sizeof(r.why), "fall over: 502");
    sl_ledger_record(l, &r);
    make_row(&r, 1, 3);
    r.attempt = 2;
    sl_ledger_record(l, &r);
    sl_ledger_close(l);
    assert_int_equal(query_int(f->path, "SELECT count(*) FROM usage WHERE request_id = 'req-1-3'"), 2);
    assert_int_equal(query_int(f->path, "SELECT attempt FROM usage WHERE final = 1"), 2);
    struct sl_store *s;
    char err[256];
    assert_int_equal(sl_store_open(f->url, 0, &s, err, sizeof(err)), SL_STORE_OK);
    struct sl_usage_total *t;
    size_t n;
    assert_int_equal(sl_store_usage_totals(s, 0, &t, &n, err, sizeof(err)), SL_STORE_OK);
    assert_int_equal(n, 1);
    assert_int_equal(t[0].requests, 1);
    assert_int_equal(t[0].errors, 0);
    free(t);
    sl_store_close(s);
}

static void test_usage_totals(void **state)
{
    struct fixture *f = *state;
    struct sl_ledger *l = open_ledger(f);
    add_row(l, "b", 1000, 4, 0, 200);
    add_row(l, "a", 2000, 10, 1, 200);
    add_row(l, "a", 3000, 20, 0, 502);
    add_row(l, "b", 4000, 6, 1, 429);
    add_row(l, "b", 5000, 8, 0, 399);
    sl_ledger_close(l);

    char err[256] = "";
    struct sl_store *s = NULL;
    struct sl_usage_total *t = NULL;
    size_t n = 0;
    assert_int_equal(sl_store_open(f->url, SL_STORE_MUST_EXIST, &s, err, sizeof(err)), 0);
    assert_int_equal(sl_store_usage_totals(s, 0, &t, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 2);
    assert_total(&t[0], "a", 2, 30, 1, 1);
    assert_total(&t[1], "b", 3, 18, 1, 1);
    assert_int_equal(t[0].cached_tokens, 15);
    free(t);
    assert_int_equal(sl_store_usage_totals(s, 3500, &t, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    assert_total(&t[0], "b", 2, 14, 1, 1);
    free(t);
    assert_int_equal(sl_store_usage_totals(s, 9999, &t, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    assert_null(t);
    sl_store_close(s);
}

static void test_store_urls(void **state)
{
    struct fixture *f = *state;
    char err[256] = "";
    char missing[200];
    struct sl_store *s = NULL;
    size_t slen = 0;
    assert_string_equal(sl_store_parse_url("sqlite://./sluice.db", &slen), "./sluice.db");
    assert_int_equal(slen, 6);
    assert_string_equal(sl_store_parse_url("sqlite:///var/lib/x.db", &slen), "/var/lib/x.db");
    assert_null(sl_store_parse_url("sqlite://", &slen));
    assert_null(sl_store_parse_url("./sluice.db", &slen));
    assert_int_equal(sl_store_open("mysql://x", 0, &s, err, sizeof(err)), SL_STORE_ERROR);
    assert_non_null(strstr(err, "mysql://x"));
    assert_null(s);
    snprintf(missing, sizeof(missing), "sqlite://%s/nope.db", f->dir);
    assert_int_equal(sl_store_open(missing, SL_STORE_MUST_EXIST, &s, err, sizeof(err)),
                     SL_STORE_MISSING);
    assert_null(s);
    assert_int_equal(access(f->path, F_OK), -1); /* nothing was created */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_concurrent_rows_committed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_batches, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fields_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_flushes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_retried_while_locked, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_rows_and_schema, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempt_rows_are_not_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_totals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_urls, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
