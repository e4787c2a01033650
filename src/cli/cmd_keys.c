/* sluice keys: create, list and revoke virtual keys in the store. The secret of a
 * new key is printed once here and exists nowhere else afterwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli/commands.h"
#include "config/config.h"
#include "core/buf.h"
#include "core/clock.h"
#include "meter/keys.h"


struct options {
    const char *store;
    const char *config;
    const char *id; /* revoke's argument */
    struct sl_key_spec spec;
};

/* create's options, which sl_key_spec_set knows by the name without dashes. */
static const char *const spec_options[] = {"--name", "--budget", "--rpm",    "--tpm",
                                           "--models", "--tags",  "--expires", "--concurrency"};
#define NSPEC (sizeof(spec_options) / sizeof(spec_options[0]))

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: sluice keys create --name NAME [--budget 100usd/month] [--rpm N] [--tpm N]\n"
            "                          [--concurrency N] [--models 'deepseek-*,qwen-*'] [--tags team=search]\n"
            "                          [--expires 30d] [--store URL | --config FILE]\n"
            "       sluice keys list [--store URL | --config FILE]\n"
            "       sluice keys revoke ID [--store URL | --config FILE]\n\n"
            "Manages virtual keys, the secrets clients send to sluice. create prints the new\n"
            "secret once: sluice keeps only its SHA-256 and cannot show it again.\n\n"
            "  --name NAME       who the key is for: letters, digits, '.', '_', '-' (required)\n"
            "  --budget B        AMOUNT usd|cny [/day|/month|/total], e.g. 100usd/month\n"
            "  --rpm N           requests per minute\n"
            "  --tpm N           tokens per minute\n"
            "  --concurrency N   requests in flight at once\n"
            "  --models LIST     comma-separated model names; * matches anything\n"
            "  --tags LIST       comma-separated KEY=VALUE tags recorded with its requests\n"
            "  --expires D       lifetime: 45s, 90m, 12h, 30d, or never (default)\n"
            "  --store URL       the store (default " SL_CLI_DEFAULT_STORE ")\n"
            "  --config FILE     use the store: key of this configuration file\n");
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

/* One argument of subcommand sub: a store option, a spec option (create only) or
 * the ID (revoke only). Returns 0 or -1 after saying why. */
static int parse_one(const char *sub, int argc, char **argv, int *i, struct options *o)
{
    int missing = 0;
    const char *v;
    char err[256];
    if ((v = option_value(argc, argv, i, "--store", &missing)) && !missing)
        return o->store = v, 0;
    if (!missing && (v = option_value(argc, argv, i, "--config", &missing)) && !missing)
        return o->config = v, 0;
    for (size_t k = 0; !missing && strcmp(sub, "create") == 0 && k < NSPEC; k++) {
        if (!(v = option_value(argc, argv, i, spec_options[k], &missing)) || missing)
            continue;
        if (sl_key_spec_set(&o->spec, spec_options[k] + 2, v, err, sizeof(err)) == 0)
            return 0;
        fprintf(stderr, "sluice keys %s: --%s\n", sub, err);
        return -1;
    }
    if (missing) {
        fprintf(stderr, "sluice keys %s: %s needs a value\n", sub, argv[*i]);
        return -1;
    }
    if (strcmp(sub, "revoke") == 0 && argv[*i][0] != '-' && !o->id)
        return o->id = argv[*i], 0;
    fprintf(stderr, "sluice keys %s: unexpected argument '%s'\n", sub, argv[*i]);
    return -1;
}

static int parse_args(const char *sub, int argc, char **argv, struct options *o)
{
    for (int i = 2; i < argc; i++)
        if (parse_one(sub, argc, argv, &i, o))
            return -1;
    if (o->store && o->config) {
        fprintf(stderr, "sluice keys %s: give --store or --config, not both\n", sub);
        return -1;
    }
    if (strcmp(sub, "create") == 0 && !o->spec.key.name[0]) {
        fprintf(stderr, "sluice keys create: --name is required\n");
        return -1;
    }
    if (strcmp(sub, "revoke") == 0 && !o->id) {
        fprintf(stderr, "sluice keys revoke: which key? Give its ID (see 'sluice keys list')\n");
        return -1;
    }
    return 0;
}

static int create(const char *url, const struct options *o)
{
    struct sl_key k;
    char secret[SL_KEY_SECRET_SIZE];
    char err[512] = "";
    if (sl_keys_create(url, &o->spec, sl_wall_ms(), &k, secret, err, sizeof(err))) {
        fprintf(stderr, "sluice keys create: %s\n", err);
        return 1;
    }
    printf("id:     %s\nname:   %s\nsecret: %s\n", k.id, k.name, secret);
    fflush(stdout);
    OPENSSL_cleanse(secret, sizeof(secret));
    fprintf(stderr, "Keep the secret now: sluice stores only its hash and cannot show it again.\n");
    return 0;
}

/* "2025-06-01 14:03" in UTC, or dflt for 0. */
static const char *format_time(int64_t ms, const char *dflt, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!ms || !gmtime_r(&t, &tm) || !strftime(out, n, "%Y-%m-%d %H:%M", &tm))
        return dflt;
    return out;
}

static void print_key(const struct sl_key *k, int name_width)
{
    char c[32], e[32], r[32];
    printf("%-20s  %-*s  %s…  %-16s  %-16s  %s\n", k->id, name_width, k->name, k->prefix,
           format_time(k->created_ms, "-", c, sizeof(c)),
           format_time(k->expires_ms, "never", e, sizeof(e)),
           format_time(k->revoked_ms, "-", r, sizeof(r)));
}

static int list(const char *url)
{
    struct sl_key *keys = NULL;
    size_t n = 0;
    char err[512] = "";
    int w = 4; /* "NAME" */
    if (sl_keys_list(url, &keys, &n, err, sizeof(err))) {
        fprintf(stderr, "sluice keys list: %s\n", err);
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        w = (int)strlen(keys[i].name) > w ? (int)strlen(keys[i].name) : w;
    printf("%-20s  %-*s  %-19s  %-16s  %-16s  %s\n", "ID", w, "NAME", "PREFIX", "CREATED (UTC)",
           "EXPIRES", "REVOKED");
    for (size_t i = 0; i < n; i++)
        print_key(&keys[i], w);
    free(keys);
    return 0;
}

static int revoke(const char *url, const char *id)
{
    char err[512] = "";
    if (sl_keys_revoke(url, id, sl_wall_ms(), err, sizeof(err))) {
        fprintf(stderr, "sluice keys revoke: %s\n", err);
        return 1;
    }
    printf("revoked %s\n", id);
    return 0;
}

int cmd_keys(int argc, char **argv)
{
    static const char *const subs[] = {"create", "list", "revoke"};
    struct options o;
    char url[SL_MAX_URL];
    const char *sub = argc > 1 ? argv[1] : "";
    int known = 0;
    for (size_t i = 0; i < 3; i++)
        known |= strcmp(sub, subs[i]) == 0;
    if (sl_cli_wants_help(argc, argv)) {
        print_help(stdout);
        return 0;
    }
    memset(&o, 0, sizeof(o));
    if (!known)
        fprintf(stderr, argc > 1 ? "sluice keys: unknown subcommand '%s'\n"
                                 : "sluice keys: give a subcommand: create, list or revoke\n",
                sub);
    if (!known || parse_args(sub, argc, argv, &o)) {
        fprintf(stderr, "Run 'sluice keys --help' for the options.\n");
        return 2;
    }
    if (sl_cli_store_url(o.store, o.config, "keys", url, sizeof(url)))
        return 1;
    if (strcmp(sub, "create") == 0)
        return create(url, &o);
    return strcmp(sub, "list") == 0 ? list(url) : revoke(url, o.id);
}
