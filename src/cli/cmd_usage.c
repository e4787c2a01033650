/* sluice usage: token totals per model, read from the ledger's store, printed
 * as an aligned table, JSON or CSV. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "store/store.h"

#define NCOLS 7


/* The numeric columns, in print order: JSON/CSV names and table headers. */
static const char *const names[NCOLS] = {"requests",      "prompt_tokens",    "completion_tokens",
                                         "cached_tokens", "reasoning_tokens", "estimated",
                                         "errors"};
static const char *const headers[NCOLS] = {"REQUESTS",  "PROMPT",    "COMPLETION", "CACHED",
                                           "REASONING", "ESTIMATED", "ERRORS"};

struct options {
    const char *store;  /* NULL: from --config, else SL_CLI_DEFAULT_STORE */
    const char *config;
    int64_t since_ms;   /* 0: everything */
    enum sl_cli_format format;
};

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: sluice usage [--store sqlite://PATH | --config FILE] [--since DURATION]\n"
            "                    [--format table|json|csv]\n\n"
            "Prints token usage per model from the ledger: requests, prompt, completion,\n"
            "cached and reasoning tokens, how many rows had estimated tokens, and errors\n"
            "(status >= 400).\n\n"
            "  --store URL       the ledger's store (default " SL_CLI_DEFAULT_STORE ")\n"
            "  --config FILE     use the store: key of this configuration file\n"
            "  --since DURATION  only requests newer than this: 15m, 24h, 7d, 30d (default: all)\n"
            "  --format FORMAT   table (default), json or csv\n");
}



/* Matches "--name VALUE" and "--name=VALUE"; advances *i past a separate value.
 * Returns the value, NULL when argv[*i] is another option, or "" with *missing set. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (a[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return "";
    }
    return argv[++*i];
}

static int apply_option(struct options *o, const char *name, const char *value)
{
    int64_t ms = 0;
    int bad = 0;
    if (strcmp(name, "--store") == 0)
        o->store = value;
    else if (strcmp(name, "--config") == 0)
        o->config = value;
    else if (strcmp(name, "--format") == 0)
        bad = sl_cli_parse_format(value, &o->format);
    else if (!(bad = sl_cli_parse_age(value, &ms)))
        o->since_ms = sl_wall_ms() - ms;
    if (bad)
        fprintf(stderr, "sluice usage: bad value for %s: '%s'\n", name, value);
    return bad;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const char *const known[] = {"--store", "--config", "--since", "--format"};
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        int missing = 0;
        size_t k = 0;
        for (; k < 4 && !(value = option_value(argc, argv, &i, known[k], &missing)); k++)
            ;
        if (!value || missing) {
            fprintf(stderr, missing ? "sluice usage: %s needs a value\n"
                                    : "sluice usage: unknown option '%s'\n",
                    argv[i]);
            return -1;
        }
        if (apply_option(o, known[k], value))
            return -1;
    }
    if (o->store && o->config) {
        fprintf(stderr, "sluice usage: give --store or --config, not both\n");
        return -1;
    }
    return 0;
}

static int load_totals(const char *url, int64_t since_ms, struct sl_usage_total **t, size_t *n)
{
    char err[512] = "";
    struct sl_store *s = NULL;
    size_t slen = 0;
    int rc = sl_store_open(url, SL_STORE_MUST_EXIST, &s, err, sizeof(err));
    if (rc == SL_STORE_MISSING) {
        fprintf(stderr, "sluice usage: no ledger at %s yet\n", sl_store_parse_url(url, &slen));
        return -1;
    }
    if (rc == SL_STORE_OK)
        rc = sl_store_usage_totals(s, since_ms, t, n, err, sizeof(err));
    if (rc != SL_STORE_OK)
        fprintf(stderr, "sluice usage: %s\n", err);
    sl_store_close(s);
    return rc == SL_STORE_OK ? 0 : -1;
}

static void row_values(const struct sl_usage_total *t, int64_t v[NCOLS])
{
    v[0] = t->requests;
    v[1] = t->prompt_tokens;
    v[2] = t->completion_tokens;
    v[3] = t->cached_tokens;
    v[4] = t->reasoning_tokens;
    v[5] = t->estimated;
    v[6] = t->errors;
}

/* Sums across models saturate rather than wrap: a pinned maximum is visibly wrong. */
static void add_values(int64_t sum[NCOLS], const int64_t v[NCOLS])
{
    for (int c = 0; c < NCOLS; c++)
        if (__builtin_add_overflow(sum[c], v[c], &sum[c]))
            sum[c] = INT64_MAX;
}

/* Decodes one UTF-8 sequence at *s (advancing it); invalid bytes decode as themselves. */
static unsigned decode_utf8(const unsigned char **s)
{
    const unsigned char *p = *s;
    int extra = p[0] >= 0xf0 ? 3 : p[0] >= 0xe0 ? 2 : p[0] >= 0xc0 ? 1 : 0;
    unsigned cp = extra ? p[0] & (0x3f >> extra) : p[0];
    int i = 1;
    for (; i <= extra && (p[i] & 0xc0) == 0x80; i++)
        cp = cp << 6 | (p[i] & 0x3f);
    *s = p + (i <= extra ? 1 : i);
    return i <= extra ? p[0] : cp;
}

/* Terminal columns: CJK and fullwidth forms take two (model names from Chinese
 * providers are common), everything else one. Close enough to wcwidth without
 * depending on the locale. */
static int display_width(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    int w = 0;
    while (*s) {
        unsigned cp = decode_utf8(&s);
        int wide = (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) ||
                   (cp >= 0xac00 && cp <= 0xd7a3) || (cp >= 0xf900 && cp <= 0xfaff) ||
                   (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
                   (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) ||
                   (cp >= 0x20000 && cp <= 0x3fffd);
        w += 1 + wide;
    }
    return w;
}

static const char *model_label(const char *model)
{
    return model[0] ? model : "(none)";
}

static void print_table_row(const char *label, int mw, const int64_t v[NCOLS],
                            const int widths[NCOLS])
{
    /* printf pads by bytes, so pad multibyte names by hand. */
    printf("%s%*s", label, mw - display_width(label), "");
    for (int c = 0; c < NCOLS; c++)
        printf("  %*lld", widths[c], (long long)v[c]);
    printf("\n");
}

static void table_widths(const struct sl_usage_total *t, size_t n, const int64_t sum[NCOLS],
                         int *mw, int widths[NCOLS])
{
    char num[32];
    int64_t v[NCOLS];
    *mw = 5; /* "MODEL", "TOTAL" */
    for (int c = 0; c < NCOLS; c++)
        widths[c] = snprintf(num, sizeof(num), "%lld", (long long)sum[c]);
    for (int c = 0; c < NCOLS; c++)
        if (widths[c] < (int)strlen(headers[c]))
            widths[c] = (int)strlen(headers[c]);
    for (size_t i = 0; i < n; i++) {
        int w = display_width(model_label(t[i].model));
        *mw = w > *mw ? w : *mw;
        row_values(&t[i], v);
        for (int c = 0; c < NCOLS; c++) {
            w = snprintf(num, sizeof(num), "%lld", (long long)v[c]);
            widths[c] = w > widths[c] ? w : widths[c];
        }
    }
}

static void print_table(const struct sl_usage_total *t, size_t n)
{
    int64_t sum[NCOLS] = {0}, v[NCOLS];
    int mw, widths[NCOLS];
    for (size_t i = 0; i < n; i++) {
        row_values(&t[i], v);
        add_values(sum, v);
    }
    table_widths(t, n, sum, &mw, widths);
    printf("%-*s", mw, "MODEL");
    for (int c = 0; c < NCOLS; c++)
        printf("  %*s", widths[c], headers[c]);
    printf("\n");
    for (size_t i = 0; i < n; i++) {
        row_values(&t[i], v);
        print_table_row(model_label(t[i].model), mw, v, widths);
    }
    print_table_row("TOTAL", mw, sum, widths);
}

static int print_json(const struct sl_usage_total *t, size_t n)
{
    struct sl_buf b = SL_BUF_INIT(8 * SL_MAX_NAME + 512);
    int64_t v[NCOLS];
    int result = 0;
    printf("[");
    for (size_t i = 0; i < n && result == 0; i++) {
        sl_buf_reset(&b);
        row_values(&t[i], v);
        result = sl_json_quote(&b, t[i].model, strlen(t[i].model));
        for (int c = 0; c < NCOLS && result == 0; c++)
            result = sl_buf_printf(&b, ",\"%s\":%lld", names[c], (long long)v[c]);
        if (result == 0)
            printf("%s\n  {\"model\":%s}", i ? "," : "", b.ptr);
    }
    printf("%s]\n", n ? "\n" : "");
    sl_buf_release(&b);
    return result;
}

/* RFC 4180: quote a field holding a comma, quote or line break; double the quotes. */
static void print_csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_csv(const struct sl_usage_total *t, size_t n)
{
    int64_t v[NCOLS];
    printf("model");
    for (int c = 0; c < NCOLS; c++)
        printf(",%s", names[c]);
    printf("\n");
    for (size_t i = 0; i < n; i++) {
        print_csv_field(t[i].model);
        row_values(&t[i], v);
        for (int c = 0; c < NCOLS; c++)
            printf(",%lld", (long long)v[c]);
        printf("\n");
    }
}

int cmd_usage(int argc, char **argv)
{
    struct options o = {NULL, NULL, 0, SL_FORMAT_TABLE};
    struct sl_usage_total *t = NULL;
    size_t n = 0;
    char url[SL_MAX_URL];
    int status = 1;
    if (sl_cli_wants_help(argc, argv)) {
        print_help(stdout);
        return 0;
    }
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "Run 'sluice usage --help' for the options.\n");
        return 2;
    }
    if (sl_cli_store_url(o.store, o.config, "usage", url, sizeof(url)) || load_totals(url, o.since_ms, &t, &n))
        goto out;
    status = 0;
    if (o.format == SL_FORMAT_TABLE)
        print_table(t, n);
    else if (o.format == SL_FORMAT_CSV)
        print_csv(t, n);
    else if (print_json(t, n))
        status = 1;
out:
    free(t);
    return status;
}
