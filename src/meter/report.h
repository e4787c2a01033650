/* The cost reports' tables: one sheet of columns and rows, written as an aligned table,
 * CSV or JSON, and the spend report built from the store's grouped sums. Shared by
 * `sluice cost` (src/cli/cmd_cost.c) and GET /admin/usage (src/server/admin_usage.c). */
#ifndef SL_REPORT_H
#define SL_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/limits.h"
#include "store/store.h"

#define SL_SHEET_COLS 16
#define SL_SHEET_CELL (SL_MAX_NAME + 32) /* a model name, or a number */

enum sl_report_format { SL_REPORT_TABLE, SL_REPORT_JSON, SL_REPORT_CSV };

/* Column flags: text or number (JSON quoting); shown only in the table, or only in
 * CSV and JSON. */
enum { SL_COL_TEXT = 1, SL_COL_NUMBER = 2, SL_COL_TABLE_ONLY = 4, SL_COL_DATA_ONLY = 8 };

struct sl_sheet {
    int ncols;
    const char *names[SL_SHEET_COLS];   /* JSON keys and CSV header */
    const char *headers[SL_SHEET_COLS]; /* table header */
    unsigned flags[SL_SHEET_COLS];
    char (*cells)[SL_SHEET_COLS][SL_SHEET_CELL];
    int *total; /* per row: 1 for a table-only total line */
    size_t n, cap;
};

/* Start from {0}; free with sl_sheet_free. */
void sl_sheet_col(struct sl_sheet *s, const char *name, const char *header, unsigned flags);
/* A new, empty row (total: a table-only TOTAL line); NULL when out of memory. */
char (*sl_sheet_row(struct sl_sheet *s, int total))[SL_SHEET_CELL];
void sl_sheet_int(char *cell, int64_t v);
/* Appends the sheet in format f to out. Returns 0, or -1 when out is full. */
int sl_sheet_write(const struct sl_sheet *s, enum sl_report_format f, struct sl_buf *out);
void sl_sheet_free(struct sl_sheet *s);

/* "table" | "json" | "csv" (NULL = table). Returns 0 or -1. */
int sl_report_parse_format(const char *s, enum sl_report_format *f);

/* An age, "45s", "15m", "24h", "30d", into milliseconds (at most ~100 years). 0 or -1. */
int sl_report_parse_age(const char *s, int64_t *ms);

/* "model" | "provider" | "day" | "key" | "tag" (NULL = model): *by and the word the
 * first column is named by. Returns 0 or -1. */
int sl_report_parse_by(const char *s, enum sl_usage_by *by, const char **word);

/* The spend report of groups g[0..n) (sl_store_usage_groups with by): one row per group
 * and currency, and in a table one TOTAL line per currency. Returns 0 or -1 (memory). */
int sl_report_spend(struct sl_sheet *s, const struct sl_usage_group *g, size_t n,
                    enum sl_usage_by by, const char *word, enum sl_report_format f);

#endif
