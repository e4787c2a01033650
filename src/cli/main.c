/* sluice: one binary, git-style subcommands. */
#include <stdio.h>
#include <string.h>

#include "cli/commands.h"

/* To add a subcommand: a row here, src/cli/cmd_<name>.c with its --help, a test,
 * and a line in README.md. */
static const struct command {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"serve", cmd_serve, "run the gateway"},
    {"sim", cmd_sim, "run the simulated provider"},
    {"config", cmd_config, "check a configuration file"},
    {"usage", cmd_usage, "print token usage from the ledger"},
    {"cost", cmd_cost, "cost reports, what-if and self-hosting comparisons"},
    {"keys", cmd_keys, "create, list and revoke virtual keys"},
    {"compare", cmd_compare, "mirrored traffic: deployments side by side"},
    {"kb", cmd_kb, "knowledge bases: create, add documents, search, chat, eval"},
    {"version", cmd_version, "print the version"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: sluice <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\nRun 'sluice <command> --help' for a command's options.\n");
}

int sl_cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(1, argv + 1);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "sluice: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
