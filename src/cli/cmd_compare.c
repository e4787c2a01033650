/* sluice compare: mirrored traffic side by side. Per deployment (the requests' own
 * ones, then each mirror): requests, latency p50/p99, time to first token p50, tokens
 * per second, cost, error rate and how often a mirror's answer equals the request's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/json.h"
#include "core/limits.h"
#include "meter/compare.h"
#include "store/store.h"


struct options {
    const char *store, *config, *group;
    int64_t since_ms; /* 0: everything */
    enum sl_cli_format format;
};

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: sluice compare [--store sqlite://PATH | --config FILE] [--since DURATION]\n"
            "                      [--group NAME] [--format table|json|csv]\n\n"
            "Compares the deployments that served mirrored requests (a group's mirror:) with\n"
            "the mirrors that got copies of them: per deployment, requests, latency p50 and\n"
            "p99, time to first token p50, tokens per second, cost, error rate, and how often\n"
            "a mirror's answer was exactly the request's own.\n\n"
            "  --store URL       the ledger's store (default " SL_CLI_DEFAULT_STORE ")\n"
            "  --config FILE     use the store: key of this configuration file\n"
            "  --since DURATION  only requests newer than this: 15m, 24h, 1d, 30d (default: all)\n"
            "  --group NAME      only the requests of this group\n"
            "  --format FORMAT   table (default), json or csv\n");
}

static int apply_option(struct options *o, const char *name, const char *value)
{
    int64_t ms = 0;
    int bad = 0;
    if (strcmp(name, "--store") == 0)
        o->store = value;
    else if (strcmp(name, "--config") == 0)
        o->config = value;
    else if (strcmp(name, "--group") == 0)
        o->group = value;
    else if (strcmp(name, "--format") == 0)
        bad = sl_cli_parse_format(value, &o->format);
    else if (!(bad = sl_cli_parse_age(value, &ms)))
        o->since_ms = sl_wall_ms() - ms;
    if (bad)
        fprintf(stderr, "sluice compare: bad value for %s: '%s'\n", name, value);
    return bad;
}

static int parse_args(int argc, char **argv, struct options *o)
{
    static const char *const known[] = {"--store", "--config", "--since", "--format", "--group"};
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        size_t k = 0;
        for (; k < 5; k++) {
            size_t n = strlen(known[k]);
            if (strncmp(argv[i], known[k], n) == 0 && argv[i][n] == '=')
                value = argv[i] + n + 1;
            else if (strcmp(argv[i], known[k]) == 0 && i + 1 < argc)
                value = argv[++i];
            if (value)
                break;
        }
        if (!value) {
            fprintf(stderr, "sluice compare: unknown option or missing value '%s'\n", argv[i]);
            return -1;
        }
        if (apply_option(o, known[k], value))
            return -1;
    }
    if (o->store && o->config) {
        fprintf(stderr, "sluice compare: give --store or --config, not both\n");
        return -1;
    }
    return 0;
}

static int load(const char *url, const struct options *o, struct sl_compare_stat **stats,
                size_t *n)
{
    char err[512] = "";
    struct sl_store *s = NULL;
    struct sl_compare_row *rows = NULL;
    size_t nrows = 0, slen = 0;
    int rc = sl_store_open(url, SL_STORE_MUST_EXIST, &s, err, sizeof(err));
    if (rc == SL_STORE_MISSING) {
        fprintf(stderr, "sluice compare: no ledger at %s yet\n", sl_store_parse_url(url, &slen));
        return -1;
    }
    if (rc == SL_STORE_OK)
        rc = sl_store_compare_rows(s, o->since_ms, o->group, &rows, &nrows, err, sizeof(err));
    if (rc != SL_STORE_OK)
        fprintf(stderr, "sluice compare: %s\n", err);
    sl_store_close(s);
    if (rc == SL_STORE_OK && sl_compare_summarize(rows, nrows, stats, n)) {
        fprintf(stderr, "sluice compare: out of memory\n");
        rc = SL_STORE_ERROR;
    }
    free(rows);
    return rc == SL_STORE_OK ? 0 : -1;
}

/* ---- output ---- */

static double ms(int64_t us)
{
    return (double)us / 1000.0;
}

static double error_rate(const struct sl_compare_stat *s)
{
    return s->requests ? (double)s->errors / (double)s->requests : 0.0;
}

static void print_table(const struct sl_compare_stat *st, size_t n)
{
    int w = 10;
    char name[2 * SL_MAX_NAME + 2], v[5][32];
    for (size_t i = 0; i < n; i++) {
        int len = snprintf(name, sizeof(name), "%s/%s", st[i].provider, st[i].upstream_model);
        w = len > w ? len : w;
    }
    printf("%-7s  %-*s  %8s  %9s  %9s  %9s  %8s  %12s  %6s  %s\n", "ROLE", w, "DEPLOYMENT",
           "REQUESTS", "P50_MS", "P99_MS", "TTFT_P50", "TOK/S", "COST", "ERRORS", "AGREE");
    for (size_t i = 0; i < n; i++) {
        const struct sl_compare_stat *s = &st[i];
        snprintf(name, sizeof(name), "%s/%s", s->provider, s->upstream_model);
        int64_t q[3] = {s->latency_p50_us, s->latency_p99_us, s->ttft_p50_us};
        for (int k = 0; k < 3; k++)
            snprintf(v[k], sizeof(v[k]), q[k] < 0 ? "-" : "%.1f", ms(q[k]));
        snprintf(v[3], sizeof(v[3]), "%.6f%s%s", (double)s->cost_micros / 1e6,
                 s->currency[0] ? " " : "", s->currency);
        if (s->compared)
            snprintf(v[4], sizeof(v[4]), "%.1f%% (%lld/%lld)",
                     100.0 * (double)s->agreed / (double)s->compared, (long long)s->agreed,
                     (long long)s->compared);
        else
            snprintf(v[4], sizeof(v[4]), "-");
        printf("%-7s  %-*s  %8lld  %9s  %9s  %9s  %8.1f  %12s  %5.1f%%  %s\n",
               s->mirror ? "mirror" : "primary", w, name, (long long)s->requests, v[0], v[1],
               v[2], s->tokens_per_s, v[3], 100.0 * error_rate(s), v[4]);
    }
}

static void csv_field(const char *s)
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

static void print_csv(const struct sl_compare_stat *st, size_t n)
{
    printf("role,provider,upstream_model,requests,latency_p50_ms,latency_p99_ms,ttft_p50_ms,"
           "tokens_per_s,cost,currency,errors,error_rate,compared,agreed,agreement\n");
    for (size_t i = 0; i < n; i++) {
        const struct sl_compare_stat *s = &st[i];
        printf("%s,", s->mirror ? "mirror" : "primary");
        csv_field(s->provider);
        putchar(',');
        csv_field(s->upstream_model);
        printf(",%lld", (long long)s->requests);
        int64_t q[3] = {s->latency_p50_us, s->latency_p99_us, s->ttft_p50_us};
        for (int k = 0; k < 3; k++)
            q[k] < 0 ? printf(",") : printf(",%.3f", ms(q[k]));
        printf(",%.3f,%.6f,%s,%lld,%.4f,%lld,%lld,", s->tokens_per_s,
               (double)s->cost_micros / 1e6, s->currency, (long long)s->errors, error_rate(s),
               (long long)s->compared, (long long)s->agreed);
        if (s->compared)
            printf("%.4f", (double)s->agreed / (double)s->compared);
        putchar('\n');
    }
}

static int print_json(const struct sl_compare_stat *st, size_t n)
{
    struct sl_buf b = SL_BUF_INIT(4 * SL_MAX_NAME + 1024);
    int result = 0;
    printf("[");
    for (size_t i = 0; i < n && result == 0; i++) {
        const struct sl_compare_stat *s = &st[i];
        int64_t q[3] = {s->latency_p50_us, s->latency_p99_us, s->ttft_p50_us};
        static const char *const qn[3] = {"latency_p50_ms", "latency_p99_ms", "ttft_p50_ms"};
        sl_buf_reset(&b);
        result |= sl_buf_printf(&b, "{\"role\":\"%s\",\"provider\":", s->mirror ? "mirror" : "primary");
        result |= sl_json_quote(&b, s->provider, strlen(s->provider));
        result |= sl_buf_puts(&b, ",\"upstream_model\":");
        result |= sl_json_quote(&b, s->upstream_model, strlen(s->upstream_model));
        result |= sl_buf_printf(&b, ",\"requests\":%lld", (long long)s->requests);
        for (int k = 0; k < 3; k++)
            result |= q[k] < 0 ? sl_buf_printf(&b, ",\"%s\":null", qn[k])
                               : sl_buf_printf(&b, ",\"%s\":%.3f", qn[k], ms(q[k]));
        result |= sl_buf_printf(&b, ",\"tokens_per_s\":%.3f,\"cost\":%.6f,\"currency\":\"%s\","
                                    "\"errors\":%lld,\"error_rate\":%.4f,\"compared\":%lld,"
                                    "\"agreed\":%lld,",
                                s->tokens_per_s, (double)s->cost_micros / 1e6, s->currency,
                                (long long)s->errors, error_rate(s), (long long)s->compared,
                                (long long)s->agreed);
        result |= s->compared ? sl_buf_printf(&b, "\"agreement\":%.4f}",
                                              (double)s->agreed / (double)s->compared)
                              : sl_buf_puts(&b, "\"agreement\":null}");
        if (result == 0)
            printf("%s\n  %s", i ? "," : "", b.ptr);
    }
    printf("%s]\n", n ? "\n" : "");
    sl_buf_release(&b);
    return result ? -1 : 0;
}

int cmd_compare(int argc, char **argv)
{
    struct options o = {.format = SL_FORMAT_TABLE};
    struct sl_compare_stat *st = NULL;
    size_t n = 0;
    char url[SL_MAX_URL];
    int status = 1;
    if (sl_cli_wants_help(argc, argv)) {
        print_help(stdout);
        return 0;
    }
    if (parse_args(argc, argv, &o)) {
        fprintf(stderr, "Run 'sluice compare --help' for the options.\n");
        return 2;
    }
    if (sl_cli_store_url(o.store, o.config, "compare", url, sizeof(url)) || load(url, &o, &st, &n))
        goto out;
    status = 0;
    if (o.format == SL_FORMAT_TABLE)
        print_table(st, n);
    else if (o.format == SL_FORMAT_CSV)
        print_csv(st, n);
    else if (print_json(st, n))
        status = 1;
out:
    free(st);
    return status;
}
