/* sluice cost: spend from the ledger (report), the same traffic priced on other
 * models (whatif), and the API bill against running the models yourself (selfhost). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/commands.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "meter/catalog.h"
#include "meter/cost.h"
#include "meter/report.h"
#include "store/store.h"

#define DEFAULT_CATALOG "catalog/prices.yaml"


/* Every option of the three subcommands; each accepts only its own (see known[]). */
struct options {
    const char *store, *config, *catalog, *since, *format, *by, *map;
    const char *gpus, *gpu_hourly, *power_kw, *kwh, *people;
};

struct option_row {
    const char *name;
    size_t off;
    const char *subs; /* the subcommands taking it, as "r" report, "w" whatif, "s" selfhost */
};

#define OPT(field) offsetof(struct options, field)
static const struct option_row option_rows[] = {
    {"--store", OPT(store), "rws"},         {"--config", OPT(config), "rws"},
    {"--catalog", OPT(catalog), "rws"},     {"--since", OPT(since), "rws"},
    {"--format", OPT(format), "rws"},       {"--by", OPT(by), "r"},
    {"--map", OPT(map), "w"},               {"--gpus", OPT(gpus), "s"},
    {"--gpu-hourly", OPT(gpu_hourly), "s"}, {"--power-kw", OPT(power_kw), "s"},
    {"--kwh", OPT(kwh), "s"},               {"--people-monthly", OPT(people), "s"},
};

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: sluice cost report   [COMMON] [--by model|provider|day|key|tag]\n"
            "       sluice cost whatif   [COMMON] --map 'FROM=TO,...'\n"
            "       sluice cost selfhost [COMMON] --gpus N --gpu-hourly PRICE [--power-kw KW]\n"
            "                            [--kwh PRICE] [--people-monthly PRICE]\n\n"
            "COMMON: [--store sqlite://PATH | --config FILE] [--catalog FILE]\n"
            "        [--since DURATION] [--format table|json|csv]\n\n"
            "  report    spend and tokens per group, as recorded in the ledger\n"
            "  whatif    the recorded tokens of each FROM model priced on TO, and the saving\n"
            "  selfhost  each month's API spend against GPUs, power and people for the month\n\n"
            "  --store URL       the ledger's store (default " SL_CLI_DEFAULT_STORE ")\n"
            "  --config FILE     take the store and pricing: from this configuration file\n"
            "  --catalog FILE    price catalog (default: the config's, or " DEFAULT_CATALOG ")\n"
            "  --since DURATION  only requests newer than this: 24h, 7d, 30d (default: all)\n"
            "  --format FORMAT   table (default), json or csv\n"
            "Prices and amounts are decimals in the reporting currency (pricing.currency,\n"
            "default USD). See docs/cost.md.\n");
}

/* ---- options ------------------------------------------------------------------------ */

static const char **field(struct options *o, const struct option_row *r)
{
    return (const char **)(void *)((char *)o + r->off);
}

/* "--name VALUE" or "--name=VALUE" of an option sub takes. 1 when argv[*i] was one,
 * 0 when not, -1 when its value is missing. */
static int take_option(int argc, char **argv, int *i, char sub, struct options *o)
{
    for (size_t k = 0; k < sizeof(option_rows) / sizeof(option_rows[0]); k++) {
        const struct option_row *r = &option_rows[k];
        size_t n = strlen(r->name);
        if (!strchr(r->subs, sub) || strncmp(argv[*i], r->name, n) != 0)
            continue;
        if (argv[*i][n] == '=') {
            *field(o, r) = argv[*i] + n + 1;
            return 1;
        }
        if (argv[*i][n] != '\0')
            continue;
        if (*i + 1 >= argc)
            return -1;
        *field(o, r) = argv[++*i];
        return 1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, char sub, struct options *o)
{
    for (int i = 2; i < argc; i++) {
        int r = take_option(argc, argv, &i, sub, o);
        if (r <= 0) {
            fprintf(stderr, r ? "sluice cost: %s needs a value\n"
                              : "sluice cost: unknown option '%s'\n", argv[i]);
            return -1;
        }
    }
    if (o->store && o->config) {
        fprintf(stderr, "sluice cost: give --store or --config, not both\n");
        return -1;
    }
    return 0;
}



/* ---- where the ledger and the prices come from ---------------------------------------- */

struct sources {
    char url[SL_MAX_URL];
    struct sl_catalog *catalog;
};

static struct sl_catalog *load_catalog(const struct options *o, const struct sl_config *cfg,
                                       struct sl_buf *errors)
{
    if (o->catalog) {
        struct sl_catalog *c = sl_catalog_load(o->catalog, errors);
        if (c && cfg)
            sl_catalog_configure(c, cfg->pricing.currency, cfg->pricing.usd_per_cny);
        return c;
    }
    if (cfg)
        return sl_catalog_from_config(cfg, errors);
    struct sl_config *def = sl_config_default(); /* the default pricing: block */
    struct sl_catalog *c = def ? sl_catalog_from_config(def, errors) : NULL;
    sl_config_free(def);
    return c;
}

static int open_sources(const struct options *o, struct sources *src)
{
    struct sl_buf errors = SL_BUF_INIT(64 * 1024);
    struct sl_config *cfg = NULL;
    int result = 0;
    if (o->config && sl_config_load(o->config, &cfg, &errors) != 0)
        result = -1;
    if (!result) {
        const char *store = cfg && cfg->store ? cfg->store : o->store;
        snprintf(src->url, sizeof(src->url), "%s", store ? store : SL_CLI_DEFAULT_STORE);
        if (!(src->catalog = load_catalog(o, cfg, &errors)))
            result = -1;
    }
    if (result)
        fprintf(stderr, "%s", errors.ptr ? errors.ptr : "sluice cost: cannot load prices\n");
    if (cfg)
        sl_config_release_pricing(cfg);
    sl_config_free(cfg);
    sl_buf_release(&errors);
    return result;
}

static int load_groups(const char *url, int64_t since_ms, enum sl_usage_by by,
                       struct sl_usage_group **g, size_t *n)
{
    char err[512] = "";
    struct sl_store *s = NULL;
    size_t slen = 0;
    int rc = sl_store_open(url, SL_STORE_MUST_EXIST, &s, err, sizeof(err));
    if (rc == SL_STORE_MISSING) {
        fprintf(stderr, "sluice cost: no ledger at %s yet\n", sl_store_parse_url(url, &slen));
        return -1;
    }
    if (rc == SL_STORE_OK)
        rc = sl_store_usage_groups(s, since_ms, by, g, n, err, sizeof(err));
    if (rc != SL_STORE_OK)
        fprintf(stderr, "sluice cost: %s\n", err);
    sl_store_close(s);
    return rc == SL_STORE_OK ? 0 : -1;
}

/* ---- sheets (src/meter/report.c) ------------------------------------------------------ */

static int print_sheet(const struct sl_sheet *s, enum sl_cli_format f)
{
    struct sl_buf b = SL_BUF_INIT(1024u * 1024 * 1024);
    int result = sl_sheet_write(s, (enum sl_report_format)f, &b);
    if (!result && b.len)
        fwrite(b.ptr, 1, b.len, stdout);
    sl_buf_release(&b);
    return result;
}

/* ---- report --------------------------------------------------------------------------- */

static int report(const struct options *o, const struct sources *src, int64_t since,
                  enum sl_cli_format f)
{
    struct sl_sheet s = {0};
    struct sl_usage_group *g = NULL;
    size_t n = 0;
    enum sl_usage_by by;
    const char *word;
    int result = -1;
    if (sl_report_parse_by(o->by, &by, &word)) {
        fprintf(stderr, "sluice cost: bad value for --by: '%s'\n", o->by);
        return 2;
    }
    if (load_groups(src->url, since, by, &g, &n) == 0)
        result = sl_report_spend(&s, g, n, by, word, (enum sl_report_format)f) ||
                 print_sheet(&s, f);
    free(g);
    sl_sheet_free(&s);
    return result ? 1 : 0;
}

/* ---- whatif --------------------------------------------------------------------------- */

struct whatif_sum {
    int64_t before, after;
};

static void put_saving(char (*row)[SL_SHEET_CELL], int64_t before, int64_t after)
{
    int64_t saving = before - after;
    sl_cost_format(before, row[5], SL_SHEET_CELL);
    sl_cost_format(after, row[6], SL_SHEET_CELL);
    sl_cost_format(saving, row[7], SL_SHEET_CELL);
    sl_sheet_int(row[8], saving);
    if (before > 0) { /* one decimal, rounded half away from zero, in integers */
        int64_t tenths = (saving * 1000 + (saving >= 0 ? before / 2 : -before / 2)) / before;
        snprintf(row[9], SL_SHEET_CELL, "%s%lld.%lld%%", tenths < 0 ? "-" : "",
                 (long long)llabs(tenths / 10), (long long)llabs(tenths % 10));
    }
}

static void whatif_columns(struct sl_sheet *s)
{
    sl_sheet_col(s, "from", "FROM", SL_COL_TEXT);
    sl_sheet_col(s, "to", "TO", SL_COL_TEXT);
    sl_sheet_col(s, "requests", "REQUESTS", SL_COL_NUMBER);
    sl_sheet_col(s, "prompt_tokens", "PROMPT", SL_COL_NUMBER);
    sl_sheet_col(s, "completion_tokens", "COMPLETION", SL_COL_NUMBER);
    sl_sheet_col(s, "before", "BEFORE", SL_COL_TEXT);
    sl_sheet_col(s, "after", "AFTER", SL_COL_TEXT);
    sl_sheet_col(s, "saving", "SAVING", SL_COL_TEXT);
    sl_sheet_col(s, "saving_micros", "", SL_COL_NUMBER | SL_COL_DATA_ONLY);
    sl_sheet_col(s, "saving_percent", "%", SL_COL_TEXT);
}

/* One mapped group: "before" is what the ledger recorded when every row of it was
 * priced in the reporting currency (the real bill), else the catalog's price of the
 * same tokens; "after" is the catalog's price on the target. 1 when it was added, 0
 * when its traffic stays, -1 on error. */
static int whatif_row(struct sl_sheet *s, const struct sl_catalog *c, const struct sl_cost_map *map,
                      const struct sl_usage_group *g, struct whatif_sum *sum)
{
    const char *to = sl_cost_map_target(map, g->group);
    int64_t before = 0, after = 0;
    if (!to)
        return 0;
    int recorded = g->unpriced == 0 && g->currency[0] && strcmp(g->currency, c->currency) == 0;
    if (recorded)
        before = g->cost_micros;
    if ((!recorded && sl_cost_reprice(c, g->group, g->provider, g, &before)) ||
        sl_cost_reprice(c, to, NULL, g, &after)) {
        fprintf(stderr, "sluice cost: no catalog price for %s or %s; left out of the totals\n",
                g->group, to);
        return 0;
    }
    char (*row)[SL_SHEET_CELL] = sl_sheet_row(s, 0);
    if (!row)
        return -1;
    snprintf(row[0], SL_SHEET_CELL, "%s", g->group);
    snprintf(row[1], SL_SHEET_CELL, "%s", to);
    sl_sheet_int(row[2], g->requests);
    sl_sheet_int(row[3], g->prompt_tokens);
    sl_sheet_int(row[4], g->completion_tokens);
    put_saving(row, before, after);
    sum->before += before;
    sum->after += after;
    return 1;
}

static int whatif(const struct options *o, const struct sources *src, int64_t since,
                  enum sl_cli_format f)
{
    struct sl_cost_map map;
    const char *why = "--map is required";
    struct sl_sheet s = {0};
    struct sl_usage_group *g = NULL;
    struct whatif_sum sum = {0, 0};
    size_t n = 0;
    int result = 0, rows = 0;
    if (!o->map || sl_cost_parse_map(o->map, &map, &why)) {
        fprintf(stderr, "sluice cost: --map: %s\n", why);
        return 2;
    }
    if (load_groups(src->url, since, SL_BY_UPSTREAM, &g, &n)) {
        free(g);
        return 1;
    }
    whatif_columns(&s);
    for (size_t i = 0; i < n && result >= 0; i++)
        rows += (result = whatif_row(&s, src->catalog, &map, &g[i], &sum)) > 0;
    char (*row)[SL_SHEET_CELL] = result >= 0 && f == SL_FORMAT_TABLE ? sl_sheet_row(&s, 1) : NULL;
    if (row) {
        snprintf(row[0], SL_SHEET_CELL, "TOTAL (%s)", src->catalog->currency);
        put_saving(row, sum.before, sum.after);
    }
    if (result >= 0)
        result = print_sheet(&s, f);
    if (result >= 0 && !rows)
        fprintf(stderr, "sluice cost: no recorded traffic on the mapped models\n");
    free(g);
    sl_sheet_free(&s);
    return result < 0 ? 1 : 0;
}

/* ---- selfhost ------------------------------------------------------------------------- */

static int parse_amount(const char *name, const char *v, int64_t max, int64_t *out)
{
    *out = 0;
    if (!v || sl_cost_parse_decimal(v, max, out) == 0)
        return 0;
    fprintf(stderr, "sluice cost: bad value for %s: '%s' (a decimal, at most 6 places)\n", name, v);
    return -1;
}

static int parse_selfhost(const struct options *o, struct sl_selfhost *sh)
{
    int64_t gpus = 0;
    const int64_t big = (int64_t)1000000000 * SL_MICROS;
    if (!o->gpus || !o->gpu_hourly) {
        fprintf(stderr, "sluice cost: selfhost needs --gpus and --gpu-hourly\n");
        return -1;
    }
    if (parse_amount("--gpus", o->gpus, (int64_t)100000 * SL_MICROS, &gpus) ||
        gpus % SL_MICROS || !gpus) {
        fprintf(stderr, "sluice cost: --gpus takes a whole number from 1 to 100000\n");
        return -1;
    }
    sh->gpus = gpus / SL_MICROS;
    return parse_amount("--gpu-hourly", o->gpu_hourly, big, &sh->gpu_hourly) ||
           parse_amount("--power-kw", o->power_kw, big, &sh->power_kw) ||
           parse_amount("--kwh", o->kwh, big, &sh->kwh) ||
           parse_amount("--people-monthly", o->people, big, &sh->people_monthly);
}

static void selfhost_columns(struct sl_sheet *s)
{
    sl_sheet_col(s, "month", "MONTH", SL_COL_TEXT);
    sl_sheet_col(s, "requests", "REQUESTS", SL_COL_NUMBER);
    sl_sheet_col(s, "api", "API SPEND", SL_COL_TEXT);
    sl_sheet_col(s, "selfhost", "SELF-HOSTED", SL_COL_TEXT);
    sl_sheet_col(s, "difference", "SELF - API", SL_COL_TEXT);
    sl_sheet_col(s, "api_micros", "", SL_COL_NUMBER | SL_COL_DATA_ONLY);
    sl_sheet_col(s, "selfhost_micros", "", SL_COL_NUMBER | SL_COL_DATA_ONLY);
    sl_sheet_col(s, "cheaper", "CHEAPER", SL_COL_TEXT);
}

static int selfhost_row(struct sl_sheet *s, const char *month, int64_t requests, int64_t api,
                        int64_t self, int total)
{
    char (*row)[SL_SHEET_CELL] = sl_sheet_row(s, total);
    if (!row)
        return -1;
    char now[8];
    time_t t = (time_t)(sl_wall_ms() / 1000);
    strftime(now, sizeof(now), "%Y-%m", gmtime(&t));
    /* the month in progress is marked: its API spend is not complete yet */
    snprintf(row[0], SL_SHEET_CELL, "%s%s", month, !total && strcmp(month, now) == 0 ? "*" : "");
    sl_sheet_int(row[1], requests);
    sl_cost_format(api, row[2], SL_SHEET_CELL);
    sl_cost_format(self, row[3], SL_SHEET_CELL);
    sl_cost_format(self - api, row[4], SL_SHEET_CELL);
    sl_sheet_int(row[5], api);
    sl_sheet_int(row[6], self);
    snprintf(row[7], SL_SHEET_CELL, "%s", api <= self ? "api" : "self-hosted");
    return 0;
}

/* Months arrive sorted, one group per currency: each is added up in the reporting
 * currency before its row is written. */
static int selfhost_rows(struct sl_sheet *s, const struct sl_catalog *c, const struct sl_selfhost *sh,
                         const struct sl_usage_group *g, size_t n)
{
    int64_t tot_req = 0, tot_api = 0, tot_self = 0;
    for (size_t i = 0; i < n;) {
        int64_t req = 0, api = 0;
        size_t j = i;
        for (; j < n && strcmp(g[j].group, g[i].group) == 0; j++) {
            req += g[j].requests;
            api += sl_cost_convert(g[j].cost_micros, g[j].currency[0] ? g[j].currency : c->currency,
                                   c->currency, c->usd_per_cny);
        }
        int64_t self = sl_cost_selfhost_month(sh, sl_cost_days_in_month(g[i].group));
        if (selfhost_row(s, g[i].group, req, api, self, 0))
            return -1;
        tot_req += req;
        tot_api += api;
        tot_self += self;
        i = j;
    }
    return selfhost_row(s, "TOTAL", tot_req, tot_api, tot_self, 1);
}

static int selfhost(const struct options *o, const struct sources *src, int64_t since,
                    enum sl_cli_format f)
{
    struct sl_selfhost sh;
    struct sl_sheet s = {0};
    struct sl_usage_group *g = NULL;
    size_t n = 0;
    int result = 1;
    if (parse_selfhost(o, &sh))
        return 2;
    if (load_groups(src->url, since, SL_BY_MONTH, &g, &n))
        goto out;
    selfhost_columns(&s);
    result = selfhost_rows(&s, src->catalog, &sh, g, n) || print_sheet(&s, f);
    if (!result && f == SL_FORMAT_TABLE)
        printf("(%s; * = month in progress; self-hosted = GPUs and power for every hour of "
               "the month, plus people)\n", src->catalog->currency);
out:
    free(g);
    sl_sheet_free(&s);
    return result ? 1 : 0;
}

/* ---- entry -------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    char letter;
    int (*run)(const struct options *o, const struct sources *src, int64_t since, enum sl_cli_format f);
} subcommands[] = {
    {"report", 'r', report},
    {"whatif", 'w', whatif},
    {"selfhost", 's', selfhost},
};

int cmd_cost(int argc, char **argv)
{
    struct options o = {0};
    struct sources src = {"", NULL};
    enum sl_cli_format f;
    int64_t since = 0;
    size_t k = 0;
    if (sl_cli_wants_help(argc, argv) || argc < 2) {
        print_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    while (k < sizeof(subcommands) / sizeof(subcommands[0]) && strcmp(argv[1], subcommands[k].name))
        k++;
    int bad = k == sizeof(subcommands) / sizeof(subcommands[0]);
    if (bad)
        fprintf(stderr, "sluice cost: unknown subcommand '%s'\n", argv[1]);
    else if ((bad = parse_args(argc, argv, subcommands[k].letter, &o)))
        ;
    else if (o.since && (bad = sl_cli_parse_age(o.since, &since)))
        fprintf(stderr, "sluice cost: bad value for --since: '%s'\n", o.since);
    else if ((bad = sl_cli_parse_format(o.format, &f)))
        fprintf(stderr, "sluice cost: bad value for --format: '%s'\n", o.format);
    if (bad) {
        fprintf(stderr, "Run 'sluice cost --help' for the subcommands and options.\n");
        return 2;
    }
    if (o.since)
        since = sl_wall_ms() - since; /* an age on the command line, a time in the ledger */
    if (open_sources(&o, &src))
        return 1;
    int status = subcommands[k].run(&o, &src, since, f);
    sl_catalog_free(src.catalog);
    return status;
}
