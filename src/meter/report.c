/* Report sheets and the spend report (see report.h). */
#include "meter/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "meter/cost.h"

#define CELL SL_SHEET_CELL

void sl_sheet_col(struct sl_sheet *s, const char *name, const char *header, unsigned flags)
{
    s->names[s->ncols] = name;
    s->headers[s->ncols] = header;
    s->flags[s->ncols++] = flags;
}

char (*sl_sheet_row(struct sl_sheet *s, int total))[CELL]
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 16;
        void *c = realloc(s->cells, ncap * sizeof(*s->cells));
        if (c)
            s->cells = c;
        int *t = c ? realloc(s->total, ncap * sizeof(*s->total)) : NULL;
        if (!t)
            return NULL;
        s->total = t;
        s->cap = ncap;
    }
    memset(s->cells[s->n], 0, sizeof(s->cells[s->n]));
    s->total[s->n] = total;
    return s->cells[s->n++];
}

void sl_sheet_free(struct sl_sheet *s)
{
    free(s->cells);
    free(s->total);
}

void sl_sheet_int(char *cell, int64_t v)
{
    snprintf(cell, CELL, "%lld", (long long)v);
}

static int write_table(const struct sl_sheet *s, struct sl_buf *out)
{
    int w[SL_SHEET_COLS], rc = 0;
    for (int c = 0; c < s->ncols; c++) {
        w[c] = (int)strlen(s->headers[c]);
        for (size_t r = 0; r < s->n; r++)
            if ((int)strlen(s->cells[r][c]) > w[c])
                w[c] = (int)strlen(s->cells[r][c]);
    }
    for (size_t r = 0; r <= s->n; r++) {
        const char *sep = "";
        for (int c = 0; c < s->ncols; c++) {
            if (s->flags[c] & SL_COL_DATA_ONLY)
                continue;
            const char *v = r ? s->cells[r - 1][c] : s->headers[c];
            rc |= sl_buf_printf(out, c ? "%s%*s" : "%s%-*s", sep, w[c], v);
            sep = "  ";
        }
        rc |= sl_buf_puts(out, "\n");
    }
    return rc ? -1 : 0;
}

static int csv_field(struct sl_buf *out, const char *v)
{
    int rc = 0;
    if (!strpbrk(v, ",\"\r\n"))
        return sl_buf_puts(out, v);
    rc |= sl_buf_puts(out, "\"");
    for (; *v; v++)
        rc |= sl_buf_append(out, *v == '"' ? "\"\"" : v, *v == '"' ? 2 : 1);
    return rc | sl_buf_puts(out, "\"");
}

static int write_csv(const struct sl_sheet *s, struct sl_buf *out)
{
    int rc = 0;
    for (size_t r = 0; r <= s->n; r++) {
        if (r && s->total[r - 1])
            continue;
        const char *sep = "";
        for (int c = 0; c < s->ncols; c++) {
            if (s->flags[c] & SL_COL_TABLE_ONLY)
                continue;
            rc |= sl_buf_puts(out, sep) | csv_field(out, r ? s->cells[r - 1][c] : s->names[c]);
            sep = ",";
        }
        rc |= sl_buf_puts(out, "\n");
    }
    return rc ? -1 : 0;
}

static int write_json(const struct sl_sheet *s, struct sl_buf *out)
{
    int rc = sl_buf_puts(out, "["), first = 1;
    for (size_t r = 0; r < s->n && !rc; r++) {
        if (s->total[r])
            continue;
        rc |= sl_buf_puts(out, first ? "\n  {" : ",\n  {");
        first = 0;
        const char *sep = "";
        for (int c = 0; c < s->ncols && !rc; c++) {
            if (s->flags[c] & SL_COL_TABLE_ONLY)
                continue;
            rc |= sl_buf_printf(out, "%s\"%s\":", sep, s->names[c]);
            sep = ",";
            if (s->flags[c] & SL_COL_NUMBER)
                rc |= sl_buf_puts(out, s->cells[r][c]);
            else
                rc |= sl_json_quote(out, s->cells[r][c], strlen(s->cells[r][c]));
        }
        rc |= sl_buf_puts(out, "}");
    }
    rc |= sl_buf_puts(out, first ? "]\n" : "\n]\n");
    return rc ? -1 : 0;
}

int sl_sheet_write(const struct sl_sheet *s, enum sl_report_format f, struct sl_buf *out)
{
    if (f == SL_REPORT_TABLE)
        return write_table(s, out);
    return f == SL_REPORT_CSV ? write_csv(s, out) : write_json(s, out);
}

/* ---- option values ----------------------------------------------------------------- */

int sl_report_parse_format(const char *s, enum sl_report_format *f)
{
    static const char *const names[] = {"table", "json", "csv"};
    for (int i = 0; i < 3; i++) {
        if (!s || strcmp(s, names[i]) == 0) {
            *f = s ? (enum sl_report_format)i : SL_REPORT_TABLE;
            return 0;
        }
    }
    return -1;
}

int sl_report_parse_age(const char *s, int64_t *ms)
{
    static const struct { char unit; int64_t ms; } units[] = {
        {'s', 1000}, {'m', 60 * 1000}, {'h', 3600 * 1000}, {'d', 86400 * 1000},
    };
    char *end = NULL;
    long long n = s ? strtoll(s, &end, 10) : 0;
    if (!s || end == s || n <= 0 || end[0] == '\0' || end[1] != '\0')
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (*end == units[i].unit && n <= 36500LL * 86400 * 1000 / units[i].ms) {
            *ms = (int64_t)n * units[i].ms;
            return 0;
        }
    }
    return -1;
}

static const struct { const char *word; enum sl_usage_by by; } groupings[] = {
    {"model", SL_BY_MODEL}, {"provider", SL_BY_PROVIDER}, {"day", SL_BY_DAY},
    {"key", SL_BY_KEY},     {"tag", SL_BY_TAG},
};

int sl_report_parse_by(const char *s, enum sl_usage_by *by, const char **word)
{
    for (size_t i = 0; i < sizeof(groupings) / sizeof(groupings[0]); i++) {
        if (strcmp(s ? s : "model", groupings[i].word) == 0) {
            *by = groupings[i].by;
            *word = groupings[i].word;
            return 0;
        }
    }
    return -1;
}

/* ---- the spend report ----------------------------------------------------------------- */

static void spend_columns(struct sl_sheet *s, const char *word)
{
    sl_sheet_col(s, word, word[0] == 'm' ? "MODEL" : word[0] == 'p' ? "PROVIDER"
                          : word[0] == 'd' ? "DAY" : word[0] == 'k' ? "KEY" : "TAG", SL_COL_TEXT);
    sl_sheet_col(s, "requests", "REQUESTS", SL_COL_NUMBER);
    sl_sheet_col(s, "prompt_tokens", "PROMPT", SL_COL_NUMBER);
    sl_sheet_col(s, "cached_tokens", "CACHED", SL_COL_NUMBER);
    sl_sheet_col(s, "completion_tokens", "COMPLETION", SL_COL_NUMBER);
    sl_sheet_col(s, "reasoning_tokens", "REASONING", SL_COL_NUMBER);
    sl_sheet_col(s, "cost", "COST", SL_COL_TEXT);
    sl_sheet_col(s, "cost_micros", "", SL_COL_NUMBER | SL_COL_DATA_ONLY);
    sl_sheet_col(s, "currency", "CURRENCY", SL_COL_TEXT);
    sl_sheet_col(s, "unpriced", "UNPRICED", SL_COL_NUMBER);
    sl_sheet_col(s, "cache_hits", "CACHE HITS", SL_COL_NUMBER);
    sl_sheet_col(s, "hit_rate", "HIT RATE", SL_COL_TEXT);
    sl_sheet_col(s, "saved", "SAVED", SL_COL_TEXT);
    sl_sheet_col(s, "saved_micros", "", SL_COL_NUMBER | SL_COL_DATA_ONLY);
}

static void spend_row(char (*row)[CELL], const char *label, const struct sl_usage_group *g)
{
    snprintf(row[0], CELL, "%s", label);
    sl_sheet_int(row[1], g->requests);
    sl_sheet_int(row[2], g->prompt_tokens);
    sl_sheet_int(row[3], g->cached_tokens);
    sl_sheet_int(row[4], g->completion_tokens);
    sl_sheet_int(row[5], g->reasoning_tokens);
    sl_cost_format(g->cost_micros, row[6], CELL);
    sl_sheet_int(row[7], g->cost_micros);
    snprintf(row[8], CELL, "%s", g->currency[0] ? g->currency : "-");
    sl_sheet_int(row[9], g->unpriced);
    sl_sheet_int(row[10], g->cache_hits);
    int64_t tenths = g->requests ? g->cache_hits * 1000 / g->requests : 0;
    snprintf(row[11], CELL, "%lld.%lld%%", (long long)(tenths / 10), (long long)(tenths % 10));
    sl_cost_format(g->saved_micros, row[12], CELL);
    sl_sheet_int(row[13], g->saved_micros);
}

static void add_group(struct sl_usage_group *sum, const struct sl_usage_group *g)
{
    int64_t *a[] = {&sum->requests, &sum->prompt_tokens, &sum->completion_tokens,
                    &sum->cached_tokens, &sum->reasoning_tokens, &sum->cost_micros,
                    &sum->unpriced, &sum->cache_hits, &sum->saved_micros};
    const int64_t b[] = {g->requests, g->prompt_tokens, g->completion_tokens, g->cached_tokens,
                         g->reasoning_tokens, g->cost_micros, g->unpriced, g->cache_hits,
                         g->saved_micros};
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++)
        if (__builtin_add_overflow(*a[i], b[i], a[i]))
            *a[i] = INT64_MAX; /* a pinned maximum is visibly wrong, a wrapped sum is not */
}

/* One TOTAL line per currency: amounts in different currencies are not added. */
static int spend_totals(struct sl_sheet *s, const struct sl_usage_group *g, size_t n)
{
    static const char *const currencies[] = {"USD", "CNY", ""};
    for (size_t k = 0; k < 3; k++) {
        struct sl_usage_group sum = {.currency = ""};
        int any = 0;
        snprintf(sum.currency, sizeof(sum.currency), "%s", currencies[k]);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(g[i].currency, currencies[k]) == 0) {
                add_group(&sum, &g[i]);
                any = 1;
            }
        }
        char (*row)[CELL] = any ? sl_sheet_row(s, 1) : NULL;
        if (any && !row)
            return -1;
        if (row)
            spend_row(row, "TOTAL", &sum);
    }
    return 0;
}

int sl_report_spend(struct sl_sheet *s, const struct sl_usage_group *g, size_t n,
                    enum sl_usage_by by, const char *word, enum sl_report_format f)
{
    spend_columns(s, word);
    for (size_t i = 0; i < n; i++) {
        char (*row)[CELL] = sl_sheet_row(s, 0);
        if (!row)
            return -1;
        spend_row(row, g[i].group[0] || by != SL_BY_MODEL ? g[i].group : "(none)", &g[i]);
    }
    return f == SL_REPORT_TABLE ? spend_totals(s, g, n) : 0;
}
