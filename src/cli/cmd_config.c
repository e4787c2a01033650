/* sluice config check FILE: loads a configuration exactly as serve would and says what
 * it found, or prints every problem as FILE:LINE: message. Never prints an api_key. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"
#include "config/config.h"

#define ERRORS_MAX (256u * 1024)

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice config check FILE\n"
            "\n"
            "Loads FILE as 'sluice serve --config FILE' would: substitutes ${VAR}s, types and\n"
            "validates every key, and reports each problem as FILE:LINE: message.\n"
            "Prints how many providers are enabled (a provider whose api_key: ${VAR} is\n"
            "unset is disabled, not an error) and why the others are not.\n"
            "\n"
            "Exit status: 0 the file is valid, 1 it is not, 2 usage error.\n"
            "See docs/config.md for every key.\n");
}

static void print_summary(const char *path, const struct sl_config *cfg)
{
    size_t enabled = 0;
    for (size_t i = 0; i < cfg->nproviders; i++)
        enabled += cfg->providers[i].enabled != 0;
    printf("%s: ok (%zu providers, %zu enabled; %zu models)\n", path, cfg->nproviders, enabled,
           cfg->nmodels);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct sl_provider_cfg *p = &cfg->providers[i];
        if (!p->enabled)
            printf("  disabled: %s (%s)\n", p->name, p->disabled_reason ? p->disabled_reason : "");
    }
    if (enabled == 0 && cfg->sim != 0)
        printf("  no provider is enabled: 'sluice serve' will start the built-in simulator "
               "(sim: %s)\n", cfg->sim < 0 ? "auto" : "true");
}

static int check(const char *path)
{
    struct sl_buf errors = SL_BUF_INIT(ERRORS_MAX);
    struct sl_config *cfg = NULL;
    if (sl_config_load(path, &cfg, &errors)) {
        fputs(errors.ptr ? errors.ptr : "", stderr);
        if (!errors.ptr)
            fprintf(stderr, "%s: invalid configuration\n", path);
        sl_buf_release(&errors);
        return 1;
    }
    print_summary(path, cfg);
    sl_config_free(cfg);
    sl_buf_release(&errors);
    return 0;
}

int cmd_config(int argc, char **argv)
{
    if (sl_cli_wants_help(argc, argv)) {
        usage(stdout);
        return 0;
    }
    if (argc != 3 || strcmp(argv[1], "check") != 0) {
        usage(stderr);
        return 2;
    }
    return check(argv[2]);
}
